/*
 * One relayed stream: the proxy's (downstream) call and its upstream, the
 * two bounded queues between them, and the state machine of the upstream:
 * connecting -> connected -> (broken) backoff -> connecting ... or closed.
 *
 * Flow control: each direction has a bounded queue (RELAY_QUEUE_MAX_*,
 * relay_queue.c), and a side is read from only while the queue towards the
 * other side has room, so a slow proxy or a fast control plane holds at
 * most one queue and one message in flight per direction, plus gRPC's
 * HTTP/2 windows.
 *
 * When the upstream of a state-of-the-world stream breaks, the proxy's
 * stream stays open: the relay reconnects after a jittered exponential
 * backoff and replays, on the new upstream, the latest request of each type
 * URL in the order the types first appeared, each as Envoy sends it first on
 * a new stream (relay_msg_for_replay). The proxy sees only fresh responses.
 * --xdsEndStreamOnUpstreamFailure restores Istio's way (end the proxy's
 * stream); a delta stream is always ended, with UNAVAILABLE, since its
 * per-resource state cannot be replayed from the requests alone.
 *
 * Every function here runs on the libevent thread (relay_cq.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <jansson.h>

#include "agent.h"
#include "relay.h"

static void	relay_stream_pump_up(struct relay_stream *);
static void	relay_stream_pump_down(struct relay_stream *);
static void	relay_stream_recv(struct relay_stream *);
static void	relay_stream_up_recv(struct relay_stream *);
static void	relay_stream_end(struct relay_stream *, grpc_status_code,
		    const char *);
static void	relay_stream_connect(struct relay_stream *);

static const char *
relay_stream_kind(const struct relay_stream *st)
{
	return st->st_delta ? "delta" : "sotw";
}

const char *
relay_stream_state_name(enum relay_up_state s)
{
	switch (s) {
	case RELAY_UP_CONNECTING:
		return "connecting";
	case RELAY_UP_CONNECTED:
		return "connected";
	case RELAY_UP_BACKOFF:
		return "backoff";
	case RELAY_UP_CLOSED:
		return "closed";
	}
	return "?";
}

/* The upstream's state machine: every transition is logged. */
static void
relay_stream_set_state(struct relay_stream *st, enum relay_up_state to)
{
	if (st->st_up_state == to)
		return;
	log_info("xds stream %llu (%s): upstream %s → %s",
	    (unsigned long long)st->st_id, relay_stream_kind(st),
	    relay_stream_state_name(st->st_up_state),
	    relay_stream_state_name(to));
	st->st_up_state = to;
}

static int
relay_stream_batch(struct relay_stream *st, const grpc_op *ops, size_t nops,
    struct relay_op *op)
{
	grpc_call_error	 e;

	e = grpc_call_start_batch(st->st_call, ops, nops, op, NULL);
	if (e != GRPC_CALL_OK) {
		log_warnx("xds stream %llu: batch: %s",
		    (unsigned long long)st->st_id,
		    grpc_call_error_to_string(e));
		return -1;
	}
	st->st_pending++;
	return 0;
}

/* Downstream batches: the proxy's side. */

static void
relay_stream_meta_cb(struct relay_op *op)
{
	struct relay_stream	*st = op->op_arg;

	st->st_pending--;
	relay_stream_maybe_free(st);
}

static void
relay_stream_close_cb(struct relay_op *op)
{
	struct relay_stream	*st = op->op_arg;
	struct relay		*rl = st->st_relay;

	st->st_pending--;
	st->st_closed = 1;
	if (!st->st_status_sent) {
		if (st->st_cancelled)
			rl->rl_down_term_cancel++;
		else
			rl->rl_down_term_error++;
	}
	log_info("xds stream %llu (%s): proxy stream closed%s",
	    (unsigned long long)st->st_id, relay_stream_kind(st),
	    st->st_status_sent ? "" : " by the proxy");
	if (st->st_up != NULL) {
		relay_upstream_detach(st->st_up);
		st->st_up = NULL;
	}
	relay_stream_set_state(st, RELAY_UP_CLOSED);
	if (st->st_timer != NULL)
		evtimer_del(st->st_timer);
	relay_queue_clear(&st->st_to_up);
	relay_queue_clear(&st->st_to_down);
	relay_stream_maybe_free(st);
}

static void
relay_stream_status_cb(struct relay_op *op)
{
	struct relay_stream	*st = op->op_arg;

	st->st_pending--;
	relay_stream_maybe_free(st);
}

/*
 * The strings of a message are chosen by a control plane (and echoed by the
 * proxy): a NACK's line shows them as relay_observe.c keeps them, cut and
 * on one line; a debug line, written for every message, only cuts them
 * short, which costs nothing when debug is off.
 */
#define LOG_STR		(int)RELAY_OBS_MAX_STR

static void
relay_stream_log_nack(struct relay_stream *st, const struct relay_msg *rm)
{
	char	 url[RELAY_OBS_MAX_STR + 1], version[RELAY_OBS_MAX_STR + 1];
	char	 nonce[RELAY_OBS_MAX_STR + 1], error[RELAY_OBS_MAX_ERROR + 1];

	relay_observe_cut(url, sizeof(url), rm->rm_type_url);
	relay_observe_cut(version, sizeof(version), rm->rm_version);
	relay_observe_cut(nonce, sizeof(nonce), rm->rm_nonce);
	relay_observe_cut(error, sizeof(error), rm->rm_error);
	log_warnx("xds stream %llu: NACK %s version \"%s\" nonce \"%s\": %s",
	    (unsigned long long)st->st_id, url, version, nonce, error);
}

static void
relay_stream_log_request(struct relay_stream *st, const struct relay_msg *rm,
    enum relay_req_class class)
{
	unsigned long long id = (unsigned long long)st->st_id;

	switch (class) {
	case RELAY_REQ_UNDECODABLE:
		log_warnx("xds stream %llu: undecodable request of %zu bytes "
		    "forwarded", id, rm->rm_bytes);
		break;
	case RELAY_REQ_NACK:
		relay_stream_log_nack(st, rm);
		break;
	case RELAY_REQ_ACK:
		log_debug("xds stream %llu: ACK %.*s version \"%.*s\" nonce "
		    "\"%.*s\"", id, LOG_STR, rm->rm_type_url, LOG_STR,
		    rm->rm_version, LOG_STR, rm->rm_nonce);
		break;
	case RELAY_REQ_SUBSCRIBE:
		log_debug("xds stream %llu: request %.*s (%zu names)", id,
		    LOG_STR, rm->rm_type_url, rm->rm_nresources);
		break;
	}
}

/*
 * Says once per stream, and once for the relay's totals, that type URLs
 * past the cap are counted as "other": a flood of new type URLs is then
 * one line in the log, not one per message.
 */
static void
relay_stream_log_overflow(struct relay_stream *st)
{
	struct relay	*rl = st->st_relay;
	const char	*url;

	if ((url = relay_observe_overflow(&st->st_obs)) != NULL)
		log_warnx("xds stream %llu: %zu type URLs tracked; further types "
		    "are counted as \"" RELAY_OBS_OTHER "\" (the first: %s)",
		    (unsigned long long)st->st_id, st->st_obs.ob_ntypes, url);
	if ((url = relay_observe_overflow(&rl->rl_totals)) != NULL)
		log_warnx("xds relay: %zu type URLs tracked in all; further "
		    "types are counted as \"" RELAY_OBS_OTHER "\" in the "
		    "metrics (the first: %s)", rl->rl_totals.ob_ntypes, url);
}

static void
relay_stream_recv_cb(struct relay_op *op)
{
	struct relay_stream	*st = op->op_arg;
	struct relay		*rl = st->st_relay;
	struct relay_recv	 rr;
	struct relay_msg	*rm = &rr.rr_msg;
	struct relay_type	*ty;
	enum relay_req_class	 class;

	relay_cq_take(op, &rr);
	st->st_pending--;
	st->st_recv_busy = 0;
	if (!rr.rr_ok || st->st_closed || rr.rr_buf == NULL) {
		if (rr.rr_buf == NULL && rr.rr_ok && !st->st_closed) {
			/* The proxy has sent its last message. */
			st->st_halfclosed = 1;
			relay_stream_pump_up(st);
			if (st->st_up == NULL && !st->st_ending)
				relay_stream_end(st, GRPC_STATUS_OK, "");
		}
		goto out;
	}
	class = relay_observe_request(&st->st_obs, rm);
	relay_observe_request(&rl->rl_totals, rm);
	relay_stream_log_request(st, rm, class);
	relay_stream_log_overflow(st);
	if (rm->rm_node_id != NULL && st->st_node_id == NULL) {
		st->st_node_id = xstrdup(rm->rm_node_id);
		log_info("xds stream %llu (%s): node %s",
		    (unsigned long long)st->st_id, relay_stream_kind(st),
		    st->st_node_id);
	}
	/*
	 * A type counted as "other" has no entry of its own to keep its
	 * latest request in, so it is not replayed; the proxy always has room
	 * for far more types than Envoy uses (relay.h).
	 */
	if (!st->st_delta && rm->rm_decoded && rr.rr_flat != NULL) {
		if (st->st_node == NULL)
			relay_msg_node(rr.rr_flat, rr.rr_flat_len,
			    &st->st_node, &st->st_nodelen);
		ty = relay_observe_find(&st->st_obs, rm->rm_type_url);
	} else
		ty = NULL;
	if (ty != NULL) {
		free(ty->ty_last_request);
		ty->ty_last_request = rr.rr_flat;
		ty->ty_last_request_len = rr.rr_flat_len;
		rr.rr_flat = NULL;
	}
	/*
	 * While there is no upstream the request is only remembered: the
	 * replay sends the latest of its type when one is back.
	 */
	if (st->st_up != NULL && st->st_up_state != RELAY_UP_BACKOFF) {
		relay_queue_push(&st->st_to_up, rr.rr_buf, rm->rm_bytes);
		rr.rr_buf = NULL;
		relay_stream_pump_up(st);
	}
	relay_stream_recv(st);
out:
	relay_cq_recv_clear(&rr);
	relay_stream_maybe_free(st);
}

static void
relay_stream_send_cb(struct relay_op *op)
{
	struct relay_stream	*st = op->op_arg;

	st->st_pending--;
	st->st_send_busy = 0;
	grpc_byte_buffer_destroy(st->st_sending);
	st->st_sending = NULL;
	if (op->op_ok)
		relay_stream_pump_down(st);
	relay_stream_maybe_free(st);
}

/* Reads the next request unless the queue upstream is full. */
static void
relay_stream_recv(struct relay_stream *st)
{
	grpc_op		 op;

	if (st->st_recv_busy || st->st_closed || st->st_halfclosed ||
	    st->st_ending || relay_queue_full(&st->st_to_up))
		return;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &st->st_op_recv.op_buf;
	st->st_op_recv.op_buf = NULL;
	st->st_op_recv.op_decode = st->st_delta ? RELAY_MSG_DELTA_REQUEST :
	    RELAY_MSG_REQUEST;
	st->st_op_recv.op_keep_flat = !st->st_delta;
	if (relay_stream_batch(st, &op, 1, &st->st_op_recv) == 0)
		st->st_recv_busy = 1;
}

/* Sends the next queued request upstream, or the proxy's half-close. */
static void
relay_stream_pump_up(struct relay_stream *st)
{
	struct relay_upstream	*us = st->st_up;
	grpc_byte_buffer	*bb;

	if (us == NULL || us->us_send_busy || us->us_ended)
		return;
	if ((bb = relay_queue_pop(&st->st_to_up, NULL)) != NULL) {
		relay_upstream_send(us, bb);
		relay_stream_recv(st);
	} else if (st->st_halfclosed)
		relay_upstream_halfclose(us);
}

/* Sends the next queued response to the proxy, or the final status. */
static void
relay_stream_pump_down(struct relay_stream *st)
{
	grpc_op		 op;
	size_t		 len;

	if (st->st_send_busy || st->st_closed || st->st_status_sent)
		return;
	memset(&op, 0, sizeof(op));
	if ((st->st_sending = relay_queue_pop(&st->st_to_down, &len)) !=
	    NULL) {
		op.op = GRPC_OP_SEND_MESSAGE;
		op.data.send_message.send_message = st->st_sending;
		if (relay_stream_batch(st, &op, 1, &st->st_op_send) == 0)
			st->st_send_busy = 1;
		else {
			grpc_byte_buffer_destroy(st->st_sending);
			st->st_sending = NULL;
		}
		relay_stream_up_recv(st);
		return;
	}
	if (!st->st_ending)
		return;
	st->st_end_slice = grpc_slice_from_copied_string(st->st_end_msg);
	op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	op.data.send_status_from_server.status = st->st_end_code;
	op.data.send_status_from_server.status_details = &st->st_end_slice;
	if (relay_stream_batch(st, &op, 1, &st->st_op_status) == 0)
		st->st_status_sent = 1;
}

/* Ends the proxy's stream once the responses queued for it are sent. */
static void
relay_stream_end(struct relay_stream *st, grpc_status_code code,
    const char *msg)
{
	if (st->st_ending)
		return;
	st->st_ending = 1;
	st->st_end_code = code;
	st->st_end_msg = xstrdup(msg);
	relay_stream_set_state(st, RELAY_UP_CLOSED);
	if (st->st_timer != NULL)
		evtimer_del(st->st_timer);
	log_info("xds stream %llu (%s): ending the proxy's stream: code %d%s%s",
	    (unsigned long long)st->st_id, relay_stream_kind(st), (int)code,
	    *msg != '\0' ? ": " : "", msg);
	relay_stream_pump_down(st);
}

static void
relay_stream_up_recv(struct relay_stream *st)
{
	if (st->st_up != NULL && !st->st_closed &&
	    !relay_queue_full(&st->st_to_down))
		relay_upstream_recv(st->st_up);
}

/* Upstream events (relay_upstream.c calls these for an attached one). */

void
relay_stream_up_started(struct relay_stream *st, int ok)
{
	if (ok && st->st_up_state == RELAY_UP_CONNECTING) {
		relay_stream_set_state(st, RELAY_UP_CONNECTED);
		st->st_up_since = relay_now_ms();
	}
}

void
relay_stream_up_message(struct relay_stream *st, struct relay_recv *rr)
{
	struct relay		*rl = st->st_relay;
	struct relay_msg	*rm = &rr->rr_msg;

	if (!rr->rr_ok || rr->rr_buf == NULL)
		return;		/* the status follows */
	relay_stream_up_started(st, 1);
	st->st_attempt = 0;
	relay_observe_response(&st->st_obs, rm);
	relay_observe_response(&rl->rl_totals, rm);
	relay_stream_log_overflow(st);
	if (!rm->rm_decoded)
		log_warnx("xds stream %llu: undecodable response of %zu bytes "
		    "forwarded", (unsigned long long)st->st_id, rm->rm_bytes);
	else
		log_debug("xds stream %llu: response %.*s version \"%.*s\" "
		    "nonce \"%.*s\" (%zu resources, %zu bytes)",
		    (unsigned long long)st->st_id, LOG_STR, rm->rm_type_url,
		    LOG_STR, rm->rm_version, LOG_STR, rm->rm_nonce,
		    rm->rm_nresources, rm->rm_bytes);
	relay_queue_push(&st->st_to_down, rr->rr_buf, rm->rm_bytes);
	rr->rr_buf = NULL;
	if (st->st_to_down.rq_high_bytes > rl->rl_queue_high)
		rl->rl_queue_high = st->st_to_down.rq_high_bytes;
	relay_stream_pump_down(st);
	relay_stream_up_recv(st);
}

void
relay_stream_up_sent(struct relay_stream *st)
{
	relay_stream_pump_up(st);
}

void
relay_stream_up_ended(struct relay_stream *st, grpc_status_code code,
    const char *details)
{
	struct relay		*rl = st->st_relay;
	struct relay_upstream	*us = st->st_up;
	char			 msg[1024];
	struct timeval		 tv;
	int64_t			 ms;

	if (code != GRPC_STATUS_OK)
		snprintf(msg, sizeof(msg), "upstream %s failed: code %d: %s",
		    rl->rl_target, (int)code, details);
	else
		snprintf(msg, sizeof(msg), "upstream %s ended the stream%s%s",
		    rl->rl_target, *details != '\0' ? ": " : "", details);
	free(st->st_last_error);
	st->st_last_error = xstrdup(msg);
	if (us != NULL && (us->us_responses > 0 ||
	    st->st_up_state == RELAY_UP_CONNECTED)) {
		if (code == GRPC_STATUS_CANCELLED)
			rl->rl_up_term_cancel++;
		else
			rl->rl_up_term_error++;
	} else
		rl->rl_conn_failures++;
	if (us != NULL)
		relay_upstream_detach(us);
	st->st_up = NULL;
	relay_queue_clear(&st->st_to_up);
	if (st->st_closed || st->st_ending)
		return;
	if (st->st_halfclosed) {
		relay_stream_end(st, code, details);
		return;
	}
	if (st->st_delta) {
		log_warnx("xds stream %llu (delta): %s", (unsigned long long)
		    st->st_id, msg);
		relay_stream_end(st, GRPC_STATUS_UNAVAILABLE, msg);
		return;
	}
	if (rl->rl_cf->cf_xds_end_on_upstream_failure) {
		log_warnx("xds stream %llu (sotw): %s", (unsigned long long)
		    st->st_id, msg);
		relay_stream_end(st, code != GRPC_STATUS_OK ? code :
		    GRPC_STATUS_UNAVAILABLE, msg);
		return;
	}
	ms = clock_jitter(clock_backoff(rl->rl_cf->cf_xds_reconnect_initial,
	    st->st_attempt++, rl->rl_cf->cf_xds_reconnect_max)) / CLOCK_MSEC;
	relay_stream_set_state(st, RELAY_UP_BACKOFF);
	log_warnx("xds stream %llu (sotw): %s; reconnecting in %lldms "
	    "(attempt %d), the proxy's stream stays open",
	    (unsigned long long)st->st_id, msg, (long long)ms, st->st_attempt);
	tv = clock_tv(ms * CLOCK_MSEC);
	evtimer_add(st->st_timer, &tv);
	/* Reading may have paused on the full queue just emptied. */
	relay_stream_recv(st);
}

/*
 * The replay: the latest request of each type, in the order the types
 * first appeared, queued for the new upstream before anything else.
 */
static void
relay_stream_replay(struct relay_stream *st)
{
	struct relay_type	*ty;
	const uint8_t		*node;
	uint8_t			*buf;
	size_t			 len, n = 0;

	node = st->st_node;
	TAILQ_FOREACH(ty, &st->st_obs.ob_types, ty_entry) {
		if (ty->ty_last_request == NULL)
			continue;
		if (relay_msg_for_replay(ty->ty_last_request,
		    ty->ty_last_request_len, node, node != NULL ?
		    st->st_nodelen : 0, &buf, &len) == -1)
			continue;
		node = NULL;
		relay_queue_push(&st->st_to_up, relay_msg_buffer(buf, len),
		    len);
		free(buf);
		n++;
	}
	st->st_replayed += n;
	st->st_relay->rl_replayed += n;
	if (n > 0)
		log_info("xds stream %llu (sotw): replaying %zu requests on "
		    "the new upstream", (unsigned long long)st->st_id, n);
}

static void
relay_stream_connect(struct relay_stream *st)
{
	char		 err[512];

	relay_stream_set_state(st, RELAY_UP_CONNECTING);
	if ((st->st_up = relay_upstream_open(st, err, sizeof(err))) == NULL) {
		/*
		 * Nothing was started (no credentials, say): the same path as
		 * a failure to connect.
		 */
		relay_stream_up_ended(st, GRPC_STATUS_UNAVAILABLE, err);
		return;
	}
	if (st->st_reconnects > 0 || st->st_attempt > 0)
		relay_stream_replay(st);
	relay_stream_pump_up(st);
	relay_stream_up_recv(st);
	/* An empty replay leaves nothing whose sending would resume reading. */
	relay_stream_recv(st);
}

static void
relay_stream_timer_cb(int fd, short what, void *arg)
{
	struct relay_stream	*st = arg;

	(void)fd;
	(void)what;
	if (st->st_closed || st->st_ending || st->st_up != NULL)
		return;
	st->st_reconnects++;
	st->st_relay->rl_reconnects++;
	relay_stream_connect(st);
}

void
relay_stream_maybe_free(struct relay_stream *st)
{
	struct relay	*rl = st->st_relay;

	if (!st->st_closed || st->st_pending > 0 || st->st_up != NULL)
		return;
	TAILQ_REMOVE(&rl->rl_streams, st, st_entry);
	rl->rl_nstreams--;
	relay_queue_clear(&st->st_to_up);
	relay_queue_clear(&st->st_to_down);
	if (st->st_sending != NULL)
		grpc_byte_buffer_destroy(st->st_sending);
	if (st->st_status_sent)
		grpc_slice_unref(st->st_end_slice);
	if (st->st_timer != NULL)
		event_free(st->st_timer);
	grpc_call_unref(st->st_call);
	relay_observe_clear(&st->st_obs);
	free(st->st_end_msg);
	free(st->st_node);
	free(st->st_node_id);
	free(st->st_last_error);
	free(st);
}

void
relay_stream_new(struct relay *rl, grpc_call *call, int delta)
{
	struct relay_stream	*st;
	grpc_op			 op;

	st = xcalloc(1, sizeof(*st));
	st->st_relay = rl;
	st->st_id = ++rl->rl_next_id;
	st->st_delta = delta;
	st->st_call = call;
	st->st_started = relay_now_ms();
	relay_queue_init(&st->st_to_up, RELAY_QUEUE_MAX_MSGS,
	    RELAY_QUEUE_MAX_BYTES);
	relay_queue_init(&st->st_to_down, RELAY_QUEUE_MAX_MSGS,
	    RELAY_QUEUE_MAX_BYTES);
	relay_observe_init(&st->st_obs, RELAY_OBS_STREAM_TYPES);
	relay_cq_op_init(&st->st_op_meta, relay_stream_meta_cb, st);
	relay_cq_op_init(&st->st_op_recv, relay_stream_recv_cb, st);
	relay_cq_op_init(&st->st_op_send, relay_stream_send_cb, st);
	relay_cq_op_init(&st->st_op_close, relay_stream_close_cb, st);
	relay_cq_op_init(&st->st_op_status, relay_stream_status_cb, st);
	st->st_timer = evtimer_new(rl->rl_base, relay_stream_timer_cb, st);
	TAILQ_INSERT_TAIL(&rl->rl_streams, st, st_entry);
	rl->rl_nstreams++;
	rl->rl_streams_total++;
	if (delta)
		rl->rl_delta_streams_total++;
	log_info("xds stream %llu (%s): proxy connected",
	    (unsigned long long)st->st_id, relay_stream_kind(st));

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &st->st_cancelled;
	if (relay_stream_batch(st, &op, 1, &st->st_op_close) == -1) {
		/* Without it the end of the call would never be seen. */
		grpc_call_cancel(call, NULL);
		st->st_closed = 1;
		relay_stream_maybe_free(st);
		return;
	}
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_INITIAL_METADATA;
	relay_stream_batch(st, &op, 1, &st->st_op_meta);
	relay_stream_recv(st);
	relay_stream_connect(st);
}

/* One stream for /debug/syncz: a new reference. */
json_t *
relay_stream_json(struct relay_stream *st)
{
	json_t	*o, *up;

	up = json_pack("{s:s, s:s, s:I, s:i, s:I}",
	    "state", relay_stream_state_name(st->st_up_state),
	    "channel", relay_upstream_channel_state(st->st_up),
	    "reconnects", (json_int_t)st->st_reconnects,
	    "failed_attempts", st->st_attempt,
	    "replayed_requests", (json_int_t)st->st_replayed);
	json_object_set_new(up, "last_error", st->st_last_error != NULL ?
	    json_string(st->st_last_error) : json_null());
	json_object_set_new(up, "connected_since_ms", st->st_up_since != 0 ?
	    json_integer(st->st_up_since) : json_null());
	o = json_pack("{s:I, s:s, s:I, s:o, s:I, s:I, s:I, s:I}",
	    "id", (json_int_t)st->st_id,
	    "kind", relay_stream_kind(st),
	    "started_ms", (json_int_t)st->st_started,
	    "upstream", up,
	    "queued_requests", (json_int_t)st->st_to_up.rq_count,
	    "queued_responses", (json_int_t)st->st_to_down.rq_count,
	    "queued_response_bytes", (json_int_t)st->st_to_down.rq_bytes,
	    "queue_high_bytes", (json_int_t)st->st_to_down.rq_high_bytes);
	json_object_set_new(o, "node", st->st_node_id != NULL ?
	    json_string(st->st_node_id) : json_null());
	json_object_set_new(o, "undecodable_requests",
	    json_integer((json_int_t)st->st_obs.ob_undecodable_requests));
	json_object_set_new(o, "undecodable_responses",
	    json_integer((json_int_t)st->st_obs.ob_undecodable_responses));
	json_object_set_new(o, "types", relay_observe_json(&st->st_obs));
	return o;
}
