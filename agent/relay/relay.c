/*
 * The xDS relay (DESIGN §6): its lifecycle, the gRPC server on
 * unix:<configPath>/XDS where the proxy's ADS streams arrive, and what it
 * shows (/debug/syncz, metrics). Each stream of the proxy is relayed by
 * relay_stream.c to its own upstream (relay_upstream.c); messages pass
 * unchanged and in order both ways, decoded on the way only to be observed
 * (relay_msg.c, relay_observe.c), with gRPC's completion queue served by a
 * thread of its own (relay_cq.c).
 *
 * Every function here runs on the libevent thread, but relay_grpc_log,
 * which gRPC may call from any thread (the log is thread-safe).
 */
#include <sys/stat.h>
#include <sys/un.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <jansson.h>

#include "agent.h"
#include "relay.h"

extern char **environ;

/* A call to a method the relay does not serve: answered UNIMPLEMENTED. */
struct relay_reject {
	struct relay	*rj_relay;
	grpc_call	*rj_call;
	struct relay_op	 rj_op;
	int		 rj_cancelled;
};

/* The one outstanding request for a new call. */
struct relay_accept {
	struct relay	*ac_relay;
	struct relay_op	 ac_op;
	grpc_call	*ac_call;
	grpc_call_details ac_details;
	grpc_metadata_array ac_md;
};


static void	relay_accept_next(struct relay *);

int64_t
relay_now_ms(void)
{
	struct timeval	 tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* gRPC's own log lines, in ours. */
static void
relay_grpc_log(gpr_log_func_args *args)
{
	switch (args->severity) {
	case GPR_LOG_SEVERITY_ERROR:
		log_warnx("grpc: %s", args->message);
		break;
	case GPR_LOG_SEVERITY_INFO:
		log_info("grpc: %s", args->message);
		break;
	default:
		log_debug("grpc: %s", args->message);
		break;
	}
}


static void
relay_reject_cb(struct relay_op *op)
{
	struct relay_reject	*rj = op->op_arg;

	rj->rj_relay->rl_pending--;
	grpc_call_unref(rj->rj_call);
	free(rj);
}

static void
relay_reject(struct relay *rl, grpc_call *call)
{
	struct relay_reject	*rj;
	grpc_op			 ops[3];
	grpc_slice		 details;

	rj = xcalloc(1, sizeof(*rj));
	rj->rj_relay = rl;
	rj->rj_call = call;
	relay_cq_op_init(&rj->rj_op, relay_reject_cb, rj);
	details = grpc_slice_from_static_string("method not served by the "
	    "xDS relay");
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[1].data.send_status_from_server.status = GRPC_STATUS_UNIMPLEMENTED;
	ops[1].data.send_status_from_server.status_details = &details;
	ops[2].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[2].data.recv_close_on_server.cancelled = &rj->rj_cancelled;
	if (grpc_call_start_batch(call, ops, 3, &rj->rj_op, NULL) !=
	    GRPC_CALL_OK) {
		grpc_call_unref(call);
		free(rj);
		return;
	}
	rl->rl_pending++;
}

static void
relay_accept_cb(struct relay_op *op)
{
	struct relay_accept	*ac = op->op_arg;
	struct relay		*rl = ac->ac_relay;
	grpc_call		*call = ac->ac_call;

	rl->rl_pending--;
	ac->ac_call = NULL;
	if (op->op_ok && call != NULL) {
		if (grpc_slice_str_cmp(ac->ac_details.method,
		    RELAY_SOTW_METHOD) == 0)
			relay_stream_new(rl, call, 0);
		else if (grpc_slice_str_cmp(ac->ac_details.method,
		    RELAY_DELTA_METHOD) == 0)
			relay_stream_new(rl, call, 1);
		else
			relay_reject(rl, call);
	} else if (call != NULL)
		grpc_call_unref(call);
	grpc_call_details_destroy(&ac->ac_details);
	grpc_metadata_array_destroy(&ac->ac_md);
	if (!rl->rl_shutdown && op->op_ok)
		relay_accept_next(rl);
}

static void
relay_accept_next(struct relay *rl)
{
	struct relay_accept	*ac = rl->rl_accept;
	grpc_completion_queue	*cq = relay_cq_queue(rl->rl_cq);

	ac->ac_relay = rl;
	relay_cq_op_init(&ac->ac_op, relay_accept_cb, ac);
	grpc_call_details_init(&ac->ac_details);
	grpc_metadata_array_init(&ac->ac_md);
	if (grpc_server_request_call(rl->rl_server, &ac->ac_call,
	    &ac->ac_details, &ac->ac_md, cq, cq, &ac->ac_op) !=
	    GRPC_CALL_OK) {
		log_warnx("xds relay: cannot accept more streams");
		grpc_call_details_destroy(&ac->ac_details);
		grpc_metadata_array_destroy(&ac->ac_md);
		return;
	}
	rl->rl_pending++;
}

/* XDS_HEADER_<NAME>=value: metadata "<name>" on every upstream stream. */
static void
relay_headers(struct relay *rl)
{
	static const char prefix[] = "XDS_HEADER_";
	char		**e, *key, *eq;
	size_t		 i;
	grpc_slice	 ks;

	for (e = environ; *e != NULL; e++) {
		if (strncmp(*e, prefix, sizeof(prefix) - 1) != 0 ||
		    (eq = strchr(*e, '=')) == NULL)
			continue;
		key = xmalloc((size_t)(eq - *e) - sizeof(prefix) + 2);
		for (i = 0; *e + sizeof(prefix) - 1 + i < eq; i++)
			key[i] = (char)tolower((unsigned char)
			    (*e)[sizeof(prefix) - 1 + i]);
		key[i] = '\0';
		ks = grpc_slice_from_copied_string(key);
		if (*key == '\0' || !grpc_header_key_is_legal(ks)) {
			log_warnx("xds relay: %.*s is not a valid header "
			    "name; ignored", (int)(eq - *e), *e);
			grpc_slice_unref(ks);
			free(key);
			continue;
		}
		rl->rl_headers = xrealloc(rl->rl_headers,
		    (rl->rl_nheaders + 1) * sizeof(*rl->rl_headers));
		memset(&rl->rl_headers[rl->rl_nheaders], 0,
		    sizeof(*rl->rl_headers));
		rl->rl_headers[rl->rl_nheaders].key = ks;
		rl->rl_headers[rl->rl_nheaders].value =
		    grpc_slice_from_copied_string(eq + 1);
		rl->rl_nheaders++;
		log_info("xds relay: sending header %s upstream", key);
		free(key);
	}
}

/* The socket's directory (0750 when made here) and no stale socket. */
static int
relay_socket_path(struct relay *rl, char *err, size_t errlen)
{
	const char	*dir = rl->rl_cf->cf_config_path;
	char		*p, *s;

	xasprintf(&rl->rl_socket, "%s/XDS", dir);
	if (strlen(rl->rl_socket) >= sizeof(((struct sockaddr_un *)0)->
	    sun_path)) {
		snprintf(err, errlen, "xDS socket path %s is too long",
		    rl->rl_socket);
		return -1;
	}
	p = xstrdup(dir);
	for (s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;

			*s = '\0';
			if (mkdir(p, 0750) == -1 && errno != EEXIST) {
				snprintf(err, errlen, "mkdir %s: %s", p,
				    strerror(errno));
				free(p);
				return -1;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	free(p);
	if (unlink(rl->rl_socket) == -1 && errno != ENOENT) {
		snprintf(err, errlen, "cannot remove stale %s: %s",
		    rl->rl_socket, strerror(errno));
		return -1;
	}
	return 0;
}

struct relay *
relay_new(struct event_base *base, const struct config *cf, char *err,
    size_t errlen)
{
	struct relay		*rl;
	grpc_server_credentials	*creds;
	grpc_arg		 arg;
	grpc_channel_args	 args;
	char			*addr = NULL;

	rl = xcalloc(1, sizeof(*rl));
	rl->rl_base = base;
	rl->rl_cf = cf;
	TAILQ_INIT(&rl->rl_streams);
	relay_observe_init(&rl->rl_totals, RELAY_OBS_TOTAL_TYPES);
	srandom((unsigned)(getpid() ^ relay_now_ms()));
	gpr_set_log_function(relay_grpc_log);
	grpc_init();
	if (relay_socket_path(rl, err, errlen) == -1)
		goto fail;
	rl->rl_target = xstrdup(cf->cf_discovery_address);
	rl->rl_accept = xcalloc(1, sizeof(*rl->rl_accept));
	relay_headers(rl);
	if ((rl->rl_cq = relay_cq_new(base, err, errlen)) == NULL)
		goto fail;

	/* The proxy is local and trusted: no limit on what it sends. */
	arg.type = GRPC_ARG_INTEGER;
	arg.key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	arg.value.integer = -1;
	args.num_args = 1;
	args.args = &arg;
	rl->rl_server = grpc_server_create(&args, NULL);
	grpc_server_register_completion_queue(rl->rl_server,
	    relay_cq_queue(rl->rl_cq), NULL);
	xasprintf(&addr, "unix:%s", rl->rl_socket);
	creds = grpc_insecure_server_credentials_create();
	if (!grpc_server_add_http2_port(rl->rl_server, addr, creds)) {
		grpc_server_credentials_release(creds);
		snprintf(err, errlen, "cannot listen on %s", addr);
		goto fail;
	}
	grpc_server_credentials_release(creds);
	grpc_server_start(rl->rl_server);
	relay_accept_next(rl);
	log_info("xds relay: listening on %s, upstream %s (%s)", addr,
	    rl->rl_target, strcmp(cf->cf_control_plane_auth_policy, "NONE") ==
	    0 ? "plaintext" : "TLS");
	free(addr);
	return rl;
fail:
	free(addr);
	relay_free(rl);
	return NULL;
}

static void
relay_shutdown_cb(struct relay_op *op)
{
	struct relay	*rl = op->op_arg;

	rl->rl_shutdown_done = 1;
}

/*
 * Stops serving and waits, outside the event loop, until every batch has
 * come back, so that gRPC can shut down with nothing left behind.
 */
void
relay_free(struct relay *rl)
{
	struct relay_stream	*st;
	size_t			 i;
	int			 waited = 0;

	if (rl == NULL)
		return;
	rl->rl_shutdown = 1;
	if (rl->rl_server != NULL) {
		relay_cq_op_init(&rl->rl_shutdown_op, relay_shutdown_cb, rl);
		grpc_server_shutdown_and_notify(rl->rl_server,
		    relay_cq_queue(rl->rl_cq), &rl->rl_shutdown_op);
		grpc_server_cancel_all_calls(rl->rl_server);
	} else
		rl->rl_shutdown_done = 1;
	TAILQ_FOREACH(st, &rl->rl_streams, st_entry) {
		if (st->st_timer != NULL)
			evtimer_del(st->st_timer);
		if (st->st_up != NULL) {
			relay_upstream_detach(st->st_up);
			st->st_up = NULL;
		}
		grpc_call_cancel(st->st_call, NULL);
	}
	if (rl->rl_cq != NULL) {
		while ((!rl->rl_shutdown_done || rl->rl_pending > 0 ||
		    rl->rl_nstreams > 0 || rl->rl_nupstreams > 0) &&
		    waited < 10000)
			if (relay_cq_dispatch(rl->rl_cq, 100) == 0)
				waited += 100;
		if (waited >= 10000)
			log_warnx("xds relay: gRPC calls still pending at "
			    "exit");
	}
	if (rl->rl_server != NULL)
		grpc_server_destroy(rl->rl_server);
	relay_cq_free(rl->rl_cq);
	if (rl->rl_socket != NULL)
		unlink(rl->rl_socket);
	for (i = 0; i < rl->rl_nheaders; i++) {
		grpc_slice_unref(rl->rl_headers[i].key);
		grpc_slice_unref(rl->rl_headers[i].value);
	}
	free(rl->rl_headers);
	relay_observe_clear(&rl->rl_totals);
	free(rl->rl_socket);
	free(rl->rl_target);
	free(rl->rl_accept);
	free(rl);
	grpc_shutdown();
}


/* /debug/syncz: a new reference for the caller. */
json_t *
relay_syncz(struct relay *rl)
{
	struct relay_stream	*st;
	json_t			*o, *streams;

	streams = json_array();
	TAILQ_FOREACH(st, &rl->rl_streams, st_entry)
		json_array_append_new(streams, relay_stream_json(st));
	o = json_pack("{s:s, s:s, s:s, s:o, s:o}",
	    "discovery_address", rl->rl_target,
	    "socket", rl->rl_socket,
	    "auth_policy", rl->rl_cf->cf_control_plane_auth_policy,
	    "streams", streams,
	    "totals", relay_observe_json(&rl->rl_totals));
	json_object_set_new(o, "undecodable_requests",
	    json_integer((json_int_t)rl->rl_totals.ob_undecodable_requests));
	json_object_set_new(o, "undecodable_responses",
	    json_integer((json_int_t)rl->rl_totals.ob_undecodable_responses));
	return o;
}

static void
relay_metric(struct evbuffer *out, const char *name, const char *type,
    const char *help, unsigned long long v)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n",
	    name, help, name, type, name, v);
}

/* The relay's metrics in Prometheus text format 0.0.4. */
/* A counter of stream terminations by type, cancelled or error. */
static void
relay_terminations(struct evbuffer *out, const char *name, const char *help,
    unsigned long long cancelled, unsigned long long error)
{
	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s counter\n"
	    "%s{type=\"cancelled\"} %llu\n%s{type=\"error\"} %llu\n",
	    name, help, name, name, cancelled, name, error);
}

void
relay_metrics(struct relay *rl, struct evbuffer *out)
{
	struct relay_stream	*st;
	unsigned long long	 connected = 0;

	TAILQ_FOREACH(st, &rl->rl_streams, st_entry)
		if (st->st_up_state == RELAY_UP_CONNECTED)
			connected++;
	relay_metric(out, "istio_agent_xds_proxy_requests_total", "counter",
	    "The total number of Xds Proxy Requests",
	    (unsigned long long)rl->rl_totals.ob_requests);
	relay_metric(out, "istio_agent_xds_proxy_responses_total", "counter",
	    "The total number of Xds Proxy Responses",
	    (unsigned long long)rl->rl_totals.ob_responses);
	relay_metric(out, "istio_agent_istiod_connection_failures_total",
	    "counter", "The total number of connection failures to Istiod",
	    (unsigned long long)rl->rl_conn_failures);
	relay_terminations(out, "istio_agent_istiod_connection_terminations_total",
	    "The total number of connection errors to Istiod",
	    rl->rl_up_term_cancel, rl->rl_up_term_error);
	relay_terminations(out, "istio_agent_envoy_connection_terminations_total",
	    "The total number of connection errors from envoy",
	    rl->rl_down_term_cancel, rl->rl_down_term_error);
	relay_metric(out, "istio_agent_xds_streams", "gauge",
	    "xDS streams from the proxy open now.",
	    (unsigned long long)rl->rl_nstreams);
	relay_metric(out, "istio_agent_xds_streams_total", "counter",
	    "xDS streams the proxy opened.",
	    (unsigned long long)rl->rl_streams_total);
	relay_metric(out, "istio_agent_xds_upstream_connected", "gauge",
	    "Relayed streams whose control plane stream is up.", connected);
	relay_metric(out, "istio_agent_xds_upstream_reconnects_total",
	    "counter", "Reconnects of upstream streams the proxy kept open.",
	    (unsigned long long)rl->rl_reconnects);
	relay_metric(out, "istio_agent_xds_replayed_requests_total", "counter",
	    "Requests replayed on a new upstream stream.",
	    (unsigned long long)rl->rl_replayed);
	relay_metric(out, "istio_agent_xds_queue_high_bytes", "gauge",
	    "The most bytes one stream's response queue has held.",
	    (unsigned long long)rl->rl_queue_high);
	relay_observe_metrics(&rl->rl_totals, out);
}

