/*
 * The ADS streams of the test control plane. Every request is logged with
 * what it is (a request, an ACK or a NACK with its error); responses are
 * built when the stream's one send slot is free, so a push of many large
 * responses (the "repeat" knob) never piles up in memory here.
 *
 * State of the world: a request without a nonce (a subscription, or a
 * reconnect) is always answered with the current version; an ACK or NACK of
 * the latest nonce is only logged (answered too in "echo" mode, for the
 * bench); a stale nonce is ignored. Delta: the server tracks per stream the
 * version of each resource it sent, and sends what changed or was removed.
 *
 * The hostile knob (type flood): once a stream has sent its first request,
 * every free send slot carries a response of a type URL never used before,
 * with a long version and nonce and no resources, until the stream ends;
 * requests are then only read. Only one response in FLOOD_LOG_EVERY is
 * logged, or the log would outgrow the test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/string_util.h>
#include <grpc/support/time.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"

#include "agent.h"
#include "relay/relay.h"
#include "xds-server.h"

/*
 * The hostile responses: a type URL longer than any real one, and a version
 * and nonce of a kilobyte, each made unique by the response's number.
 */
#define FLOOD_URL_LEN		300
#define FLOOD_STR_LEN		1024
#define FLOOD_LOG_EVERY		10000

struct xs_sent {			/* delta: what the client has */
	char		*xe_name;
	char		 xe_version[17];
};

struct xs_sub {
	char		*xb_url;
	int		 xb_wildcard;
	char		**xb_names;
	size_t		 xb_nnames;
	int		 xb_owed;		/* responses owed */
	uint64_t	 xb_pushes;
	char		 xb_nonce[24];		/* the latest response's */
	char		*xb_version;
	struct xs_sent	*xb_sent;
	size_t		 xb_nsent;
};

struct xs_stream {
	TAILQ_ENTRY(xs_stream) xm_entry;
	struct xs_server *xm_srv;
	uint64_t	 xm_id;
	int		 xm_delta;
	grpc_call	*xm_call;
	struct relay_op	 xm_op_meta;
	struct relay_op	 xm_op_recv;
	struct relay_op	 xm_op_send;
	struct relay_op	 xm_op_close;
	struct relay_op	 xm_op_status;
	int		 xm_pending;
	int		 xm_recv_busy;
	int		 xm_send_busy;
	int		 xm_closed;
	int		 xm_ending;
	int		 xm_cancelled;
	grpc_byte_buffer *xm_sending;
	grpc_slice	 xm_status_slice;
	struct xs_sub	*xm_subs;
	size_t		 xm_nsubs;
	uint64_t	 xm_nonce;
	int		 xm_sent;
	struct event	*xm_delay;
	int		 xm_delaying;
	int		 xm_delay_done;
	int		 xm_noded;
	int		 xm_flooding;		/* hostile: a request came */
	uint64_t	 xm_flooded;		/* hostile responses sent */
};

struct xs_accept {
	struct relay_op	 xa_op;
	grpc_call	*xa_call;
	grpc_call_details xa_details;
	grpc_metadata_array xa_md;
};

struct xs_server {
	struct event_base *xv_base;
	struct relay_cq	*xv_cq;
	grpc_server	*xv_server;
	struct xs_config *xv_config;
	TAILQ_HEAD(, xs_stream) xv_streams;
	size_t		 xv_nstreams;
	uint64_t	 xv_next_id;
	struct xs_accept xv_accept;
	int		 xv_pending;
	int		 xv_shutdown;
	int		 xv_shutdown_done;
	struct relay_op	 xv_shutdown_op;
};

static void	serve_accept(struct xs_server *);
static void	serve_pump(struct xs_stream *);
static void	serve_recv(struct xs_stream *);
static void	serve_maybe_free(struct xs_stream *);

static int
serve_batch(struct xs_stream *xm, const grpc_op *ops, size_t n,
    struct relay_op *op)
{
	if (grpc_call_start_batch(xm->xm_call, ops, n, op, NULL) !=
	    GRPC_CALL_OK)
		return -1;
	xm->xm_pending++;
	return 0;
}

static int
serve_sub_has_type(const struct xs_stream *xm, const char *url)
{
	size_t	 i;

	for (i = 0; i < xm->xm_nsubs; i++)
		if (strcmp(xm->xm_subs[i].xb_url, url) == 0)
			return 1;
	return 0;
}

static struct xs_sub *
serve_sub(struct xs_stream *xm, const char *url)
{
	size_t	 i;

	for (i = 0; i < xm->xm_nsubs; i++)
		if (strcmp(xm->xm_subs[i].xb_url, url) == 0)
			return &xm->xm_subs[i];
	xm->xm_subs = xrealloc(xm->xm_subs, (xm->xm_nsubs + 1) *
	    sizeof(*xm->xm_subs));
	memset(&xm->xm_subs[xm->xm_nsubs], 0, sizeof(*xm->xm_subs));
	xm->xm_subs[xm->xm_nsubs].xb_url = xstrdup(url);
	return &xm->xm_subs[xm->xm_nsubs++];
}

static void
serve_sub_names_free(struct xs_sub *xb)
{
	size_t	 i;

	for (i = 0; i < xb->xb_nnames; i++)
		free(xb->xb_names[i]);
	free(xb->xb_names);
	xb->xb_names = NULL;
	xb->xb_nnames = 0;
}

static int
serve_sub_has(const struct xs_sub *xb, const char *name)
{
	size_t	 i;

	for (i = 0; i < xb->xb_nnames; i++)
		if (strcmp(xb->xb_names[i], name) == 0)
			return 1;
	return 0;
}

static void
serve_sub_add(struct xs_sub *xb, const char *name)
{
	if (strcmp(name, "*") == 0) {
		xb->xb_wildcard = 1;
		return;
	}
	if (serve_sub_has(xb, name))
		return;
	xb->xb_names = xrealloc(xb->xb_names, (xb->xb_nnames + 1) *
	    sizeof(*xb->xb_names));
	xb->xb_names[xb->xb_nnames++] = xstrdup(name);
}

static void
serve_sub_remove(struct xs_sub *xb, const char *name)
{
	size_t	 i;

	if (strcmp(name, "*") == 0)
		xb->xb_wildcard = 0;
	for (i = 0; i < xb->xb_nnames; i++) {
		if (strcmp(xb->xb_names[i], name) == 0) {
			free(xb->xb_names[i]);
			xb->xb_names[i] = xb->xb_names[--xb->xb_nnames];
			return;
		}
	}
}

static int
serve_wants(const struct xs_sub *xb, const char *name)
{
	return xb->xb_wildcard || serve_sub_has(xb, name);
}

/* Whether a request's names differ from the subscription's. */
static int
serve_names_differ(const struct xs_sub *xb, char **names, size_t n)
{
	size_t	 i;

	if ((n == 0) != xb->xb_wildcard && !(n == 1 &&
	    strcmp(names[0], "*") == 0 && xb->xb_wildcard))
		return 1;
	if (xb->xb_wildcard)
		return 0;
	if (n != xb->xb_nnames)
		return 1;
	for (i = 0; i < n; i++)
		if (!serve_sub_has(xb, names[i]))
			return 1;
	return 0;
}

static void
serve_sotw_names(struct xs_sub *xb, char **names, size_t n)
{
	size_t	 i;

	serve_sub_names_free(xb);
	xb->xb_wildcard = n == 0;
	for (i = 0; i < n; i++)
		serve_sub_add(xb, names[i]);
}

static void
serve_log_names(char *buf, size_t len, const struct xs_sub *xb)
{
	size_t	 i, n;

	snprintf(buf, len, "%s", xb->xb_wildcard ? "*" : "");
	for (i = 0; i < xb->xb_nnames; i++) {
		n = strlen(buf);
		snprintf(buf + n, len - n, "%s%s", n > 0 ? "," : "",
		    xb->xb_names[i]);
	}
}

static void
serve_sotw_request(struct xs_stream *xm, const uint8_t *data, size_t len)
{
	Envoy__Service__Discovery__V3__DiscoveryRequest *m;
	struct xs_sub	*xb;
	struct xs_knobs	*k = &xm->xm_srv->xv_config->xc_knobs;
	char		 names[512];
	unsigned long long id = (unsigned long long)xm->xm_id;

	m = envoy__service__discovery__v3__discovery_request__unpack(NULL, len,
	    data);
	if (m == NULL) {
		log_warnx("stream %llu: undecodable request", id);
		return;
	}
	if (m->node != NULL && !xm->xm_noded) {
		xm->xm_noded = 1;
		log_info("stream %llu: node %s", id, m->node->id);
	}
	xb = serve_sub(xm, m->type_url);
	if (*m->response_nonce == '\0') {
		serve_sotw_names(xb, m->resource_names, m->n_resource_names);
		serve_log_names(names, sizeof(names), xb);
		log_info("stream %llu: request %s version \"%s\" names [%s]",
		    id, m->type_url, m->version_info, names);
		xb->xb_owed = k->xk_repeat;
	} else if (strcmp(m->response_nonce, xb->xb_nonce) != 0) {
		log_info("stream %llu: stale nonce \"%s\" for %s ignored", id,
		    m->response_nonce, m->type_url);
	} else {
		if (m->error_detail != NULL)
			log_info("stream %llu: NACK %s version \"%s\" nonce "
			    "\"%s\": %s", id, m->type_url, m->version_info,
			    m->response_nonce, m->error_detail->message);
		else
			log_info("stream %llu: ACK %s version \"%s\" nonce "
			    "\"%s\"", id, m->type_url, m->version_info,
			    m->response_nonce);
		if (serve_names_differ(xb, m->resource_names,
		    m->n_resource_names)) {
			serve_sotw_names(xb, m->resource_names,
			    m->n_resource_names);
			if (xb->xb_owed == 0)
				xb->xb_owed = 1;
		}
		if (k->xk_echo)
			xb->xb_owed++;
	}
	envoy__service__discovery__v3__discovery_request__free_unpacked(m,
	    NULL);
}

/* Delta: owes a response when a wanted resource is new or gone. */
static int
serve_delta_diff(struct xs_stream *xm, struct xs_sub *xb)
{
	struct xs_type	*xt;
	size_t		 i, j;

	xt = resource_type(xm->xm_srv->xv_config, xb->xb_url);
	for (i = 0; xt != NULL && i < xt->xt_nres; i++) {
		if (!serve_wants(xb, xt->xt_res[i].xr_name))
			continue;
		for (j = 0; j < xb->xb_nsent; j++)
			if (strcmp(xb->xb_sent[j].xe_name,
			    xt->xt_res[i].xr_name) == 0)
				break;
		if (j == xb->xb_nsent || strcmp(xb->xb_sent[j].xe_version,
		    xt->xt_res[i].xr_version) != 0)
			return 1;
	}
	for (j = 0; j < xb->xb_nsent; j++) {
		for (i = 0; xt != NULL && i < xt->xt_nres; i++)
			if (strcmp(xb->xb_sent[j].xe_name,
			    xt->xt_res[i].xr_name) == 0)
				break;
		if (xt == NULL || i == xt->xt_nres)
			return 1;
	}
	return 0;
}

static void
serve_delta_request(struct xs_stream *xm, const uint8_t *data, size_t len)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *m;
	struct xs_sub	*xb;
	size_t		 i;
	int		 first;
	unsigned long long id = (unsigned long long)xm->xm_id;

	m = envoy__service__discovery__v3__delta_discovery_request__unpack(NULL,
	    len, data);
	if (m == NULL) {
		log_warnx("stream %llu: undecodable delta request", id);
		return;
	}
	if (m->node != NULL && !xm->xm_noded) {
		xm->xm_noded = 1;
		log_info("stream %llu: node %s", id, m->node->id);
	}
	first = serve_sub_has_type(xm, m->type_url) == 0;
	xb = serve_sub(xm, m->type_url);
	if (first && m->n_resource_names_subscribe == 0)
		xb->xb_wildcard = 1;
	for (i = 0; i < m->n_resource_names_subscribe; i++)
		serve_sub_add(xb, m->resource_names_subscribe[i]);
	for (i = 0; i < m->n_resource_names_unsubscribe; i++)
		serve_sub_remove(xb, m->resource_names_unsubscribe[i]);
	for (i = 0; first && i < m->n_initial_resource_versions; i++) {
		xb->xb_sent = xrealloc(xb->xb_sent, (xb->xb_nsent + 1) *
		    sizeof(*xb->xb_sent));
		xb->xb_sent[xb->xb_nsent].xe_name = xstrdup(
		    m->initial_resource_versions[i]->key);
		snprintf(xb->xb_sent[xb->xb_nsent].xe_version,
		    sizeof(xb->xb_sent[0].xe_version), "%s",
		    m->initial_resource_versions[i]->value);
		xb->xb_nsent++;
	}
	if (*m->response_nonce == '\0')
		log_info("stream %llu: delta request %s subscribe %zu "
		    "unsubscribe %zu", id, m->type_url,
		    m->n_resource_names_subscribe,
		    m->n_resource_names_unsubscribe);
	else if (m->error_detail != NULL)
		log_info("stream %llu: NACK %s nonce \"%s\": %s", id,
		    m->type_url, m->response_nonce, m->error_detail->message);
	else
		log_info("stream %llu: ACK %s nonce \"%s\"", id, m->type_url,
		    m->response_nonce);
	if (serve_delta_diff(xm, xb) && xb->xb_owed == 0)
		xb->xb_owed = 1;
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(
	    m, NULL);
}

static grpc_byte_buffer *
serve_sotw_response(struct xs_stream *xm, struct xs_sub *xb)
{
	Envoy__Service__Discovery__V3__DiscoveryResponse resp =
	    ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
	struct xs_server *xv = xm->xm_srv;
	struct xs_type	*xt;
	Google__Protobuf__Any *anys = NULL, **ptrs = NULL;
	grpc_byte_buffer *bb;
	char		 version[64];
	uint8_t		*buf;
	size_t		 i, n = 0, len;

	xt = resource_type(xv->xv_config, xb->xb_url);
	if (xt != NULL) {
		anys = xcalloc(xt->xt_nres + 1, sizeof(*anys));
		ptrs = xcalloc(xt->xt_nres + 1, sizeof(*ptrs));
		for (i = 0; i < xt->xt_nres; i++) {
			if (!serve_wants(xb, xt->xt_res[i].xr_name))
				continue;
			google__protobuf__any__init(&anys[n]);
			anys[n].type_url = xt->xt_url;
			anys[n].value.data = xt->xt_res[i].xr_payload;
			anys[n].value.len = xt->xt_res[i].xr_len;
			ptrs[n] = &anys[n];
			n++;
		}
	}
	xb->xb_pushes++;
	if (xv->xv_config->xc_knobs.xk_echo ||
	    xv->xv_config->xc_knobs.xk_repeat > 1)
		snprintf(version, sizeof(version), "v%llu.%llu",
		    (unsigned long long)(xt != NULL ? xt->xt_gen : 0),
		    (unsigned long long)xb->xb_pushes);
	else
		snprintf(version, sizeof(version), "v%llu",
		    (unsigned long long)(xt != NULL ? xt->xt_gen : 0));
	snprintf(xb->xb_nonce, sizeof(xb->xb_nonce), "%llu",
	    (unsigned long long)++xm->xm_nonce);
	free(xb->xb_version);
	xb->xb_version = xstrdup(version);
	resp.version_info = version;
	resp.type_url = xb->xb_url;
	resp.nonce = xb->xb_nonce;
	resp.n_resources = n;
	resp.resources = ptrs;
	len = envoy__service__discovery__v3__discovery_response__get_packed_size(
	    &resp);
	buf = xmalloc(len);
	envoy__service__discovery__v3__discovery_response__pack(&resp, buf);
	bb = relay_msg_buffer(buf, len);
	log_info("stream %llu: response %s version \"%s\" nonce \"%s\" "
	    "(%zu resources, %zu bytes)", (unsigned long long)xm->xm_id,
	    xb->xb_url, version, xb->xb_nonce, n, len);
	free(buf);
	free(anys);
	free(ptrs);
	return bb;
}

static grpc_byte_buffer *
serve_delta_response(struct xs_stream *xm, struct xs_sub *xb)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse resp =
	    ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_RESPONSE__INIT;
	struct xs_type	*xt;
	Envoy__Service__Discovery__V3__Resource *res = NULL, **ptrs = NULL;
	Google__Protobuf__Any *anys = NULL;
	char		**removed = NULL, version[32];
	grpc_byte_buffer *bb;
	uint8_t		*buf;
	size_t		 i, j, n = 0, nrem = 0, len;

	xt = resource_type(xm->xm_srv->xv_config, xb->xb_url);
	removed = xcalloc(xb->xb_nsent + 1, sizeof(*removed));
	for (j = 0; j < xb->xb_nsent; j++) {
		for (i = 0; xt != NULL && i < xt->xt_nres; i++)
			if (strcmp(xb->xb_sent[j].xe_name,
			    xt->xt_res[i].xr_name) == 0)
				break;
		if (xt == NULL || i == xt->xt_nres) {
			removed[nrem++] = xb->xb_sent[j].xe_name;
			xb->xb_sent[j].xe_version[0] = '\0';
		}
	}
	if (xt != NULL) {
		res = xcalloc(xt->xt_nres + 1, sizeof(*res));
		ptrs = xcalloc(xt->xt_nres + 1, sizeof(*ptrs));
		anys = xcalloc(xt->xt_nres + 1, sizeof(*anys));
	}
	for (i = 0; xt != NULL && i < xt->xt_nres; i++) {
		struct xs_resource *xr = &xt->xt_res[i];

		if (!serve_wants(xb, xr->xr_name))
			continue;
		for (j = 0; j < xb->xb_nsent; j++)
			if (strcmp(xb->xb_sent[j].xe_name, xr->xr_name) == 0)
				break;
		if (j < xb->xb_nsent && strcmp(xb->xb_sent[j].xe_version,
		    xr->xr_version) == 0)
			continue;
		if (j == xb->xb_nsent) {
			xb->xb_sent = xrealloc(xb->xb_sent, (xb->xb_nsent + 1) *
			    sizeof(*xb->xb_sent));
			xb->xb_sent[j].xe_name = xstrdup(xr->xr_name);
			xb->xb_nsent++;
		}
		memcpy(xb->xb_sent[j].xe_version, xr->xr_version,
		    sizeof(xr->xr_version));
		envoy__service__discovery__v3__resource__init(&res[n]);
		google__protobuf__any__init(&anys[n]);
		anys[n].type_url = xt->xt_url;
		anys[n].value.data = xr->xr_payload;
		anys[n].value.len = xr->xr_len;
		res[n].name = xr->xr_name;
		res[n].version = xr->xr_version;
		res[n].resource = &anys[n];
		ptrs[n] = &res[n];
		n++;
	}
	snprintf(version, sizeof(version), "v%llu",
	    (unsigned long long)(xt != NULL ? xt->xt_gen : 0));
	snprintf(xb->xb_nonce, sizeof(xb->xb_nonce), "%llu",
	    (unsigned long long)++xm->xm_nonce);
	resp.system_version_info = version;
	resp.type_url = xb->xb_url;
	resp.nonce = xb->xb_nonce;
	resp.n_resources = n;
	resp.resources = ptrs;
	resp.n_removed_resources = nrem;
	resp.removed_resources = removed;
	len = envoy__service__discovery__v3__delta_discovery_response__get_packed_size(
	    &resp);
	buf = xmalloc(len);
	envoy__service__discovery__v3__delta_discovery_response__pack(&resp,
	    buf);
	bb = relay_msg_buffer(buf, len);
	log_info("stream %llu: delta response %s nonce \"%s\" (%zu resources, "
	    "%zu removed)", (unsigned long long)xm->xm_id, xb->xb_url,
	    xb->xb_nonce, n, nrem);
	/* Forget what was removed, now that the client is told. */
	for (j = 0; j < xb->xb_nsent; ) {
		if (xb->xb_sent[j].xe_version[0] == '\0') {
			free(xb->xb_sent[j].xe_name);
			xb->xb_sent[j] = xb->xb_sent[--xb->xb_nsent];
		} else
			j++;
	}
	free(buf);
	free(res);
	free(ptrs);
	free(anys);
	free(removed);
	return bb;
}

/* s: "<prefix><n>-" padded with 'x' to len - 1 characters. */
static void
serve_flood_str(char *s, size_t len, const char *prefix, uint64_t n)
{
	size_t	 used;

	snprintf(s, len, "%s%llu-", prefix, (unsigned long long)n);
	used = strlen(s);
	memset(s + used, 'x', len - 1 - used);
	s[len - 1] = '\0';
}

/* The next hostile response: a new type URL, no resources. */
static grpc_byte_buffer *
serve_flood_response(struct xs_stream *xm)
{
	char		 url[FLOOD_URL_LEN + 1];
	char		 version[FLOOD_STR_LEN + 1], nonce[FLOOD_STR_LEN + 1];
	grpc_byte_buffer *bb;
	uint8_t		*buf;
	size_t		 len;
	uint64_t	 n = ++xm->xm_flooded;

	serve_flood_str(url, sizeof(url),
	    "type.googleapis.com/hostile.flood.v1.Type", n);
	serve_flood_str(version, sizeof(version), "version", n);
	serve_flood_str(nonce, sizeof(nonce), "nonce", n);
	if (xm->xm_delta) {
		Envoy__Service__Discovery__V3__DeltaDiscoveryResponse resp =
		    ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_RESPONSE__INIT;

		resp.system_version_info = version;
		resp.type_url = url;
		resp.nonce = nonce;
		len = envoy__service__discovery__v3__delta_discovery_response__get_packed_size(
		    &resp);
		buf = xmalloc(len);
		envoy__service__discovery__v3__delta_discovery_response__pack(
		    &resp, buf);
	} else {
		Envoy__Service__Discovery__V3__DiscoveryResponse resp =
		    ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;

		resp.version_info = version;
		resp.type_url = url;
		resp.nonce = nonce;
		len = envoy__service__discovery__v3__discovery_response__get_packed_size(
		    &resp);
		buf = xmalloc(len);
		envoy__service__discovery__v3__discovery_response__pack(&resp,
		    buf);
	}
	bb = relay_msg_buffer(buf, len);
	free(buf);
	if (n == 1 || n % FLOOD_LOG_EVERY == 0)
		log_info("stream %llu: hostile response %llu, type %.60s... "
		    "(%zu bytes)", (unsigned long long)xm->xm_id,
		    (unsigned long long)n, url, len);
	return bb;
}

static void
serve_end(struct xs_stream *xm, grpc_status_code code, const char *msg)
{
	grpc_op		 op;

	if (xm->xm_ending || xm->xm_closed)
		return;
	xm->xm_ending = 1;
	log_info("stream %llu: ending with code %d: %s",
	    (unsigned long long)xm->xm_id, (int)code, msg);
	xm->xm_status_slice = grpc_slice_from_copied_string(msg);
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	op.data.send_status_from_server.status = code;
	op.data.send_status_from_server.status_details = &xm->xm_status_slice;
	serve_batch(xm, &op, 1, &xm->xm_op_status);
}

static void
serve_delay_cb(int fd, short what, void *arg)
{
	struct xs_stream	*xm = arg;

	(void)fd;
	(void)what;
	xm->xm_delaying = 0;
	xm->xm_delay_done = 1;
	serve_pump(xm);
}

/* Sends the next response owed, if the send slot is free. */
static void
serve_pump(struct xs_stream *xm)
{
	struct xs_knobs	*k = &xm->xm_srv->xv_config->xc_knobs;
	struct xs_sub	*xb = NULL;
	struct timeval	 tv;
	grpc_op		 op;
	size_t		 i;

	if (xm->xm_send_busy || xm->xm_delaying || xm->xm_closed ||
	    xm->xm_ending)
		return;
	if (k->xk_type_flood) {
		if (!xm->xm_flooding)
			return;
		xm->xm_sending = serve_flood_response(xm);
		goto send;
	}
	for (i = 0; i < xm->xm_nsubs && xb == NULL; i++)
		if (xm->xm_subs[i].xb_owed > 0)
			xb = &xm->xm_subs[i];
	if (xb == NULL)
		return;
	if (k->xk_delay_ms > 0 && !xm->xm_delay_done) {
		xm->xm_delaying = 1;
		tv.tv_sec = k->xk_delay_ms / 1000;
		tv.tv_usec = (k->xk_delay_ms % 1000) * 1000;
		evtimer_add(xm->xm_delay, &tv);
		return;
	}
	xm->xm_delay_done = 0;
	xb->xb_owed--;
	xm->xm_sending = xm->xm_delta ? serve_delta_response(xm, xb) :
	    serve_sotw_response(xm, xb);
send:
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = xm->xm_sending;
	if (serve_batch(xm, &op, 1, &xm->xm_op_send) == 0)
		xm->xm_send_busy = 1;
	else {
		grpc_byte_buffer_destroy(xm->xm_sending);
		xm->xm_sending = NULL;
	}
}

static void
serve_send_cb(struct relay_op *op)
{
	struct xs_stream	*xm = op->op_arg;
	struct xs_knobs		*k = &xm->xm_srv->xv_config->xc_knobs;

	xm->xm_pending--;
	xm->xm_send_busy = 0;
	grpc_byte_buffer_destroy(xm->xm_sending);
	xm->xm_sending = NULL;
	if (op->op_ok) {
		xm->xm_sent++;
		if (k->xk_close_after > 0 && xm->xm_sent >= k->xk_close_after)
			serve_end(xm, GRPC_STATUS_UNAVAILABLE, "xds-server: "
			    "closing the stream after its responses (test "
			    "knob close_after)");
		serve_pump(xm);
	}
	serve_maybe_free(xm);
}

static void
serve_recv_cb(struct relay_op *op)
{
	struct xs_stream	*xm = op->op_arg;
	struct relay_recv	 rr;

	relay_cq_take(op, &rr);
	xm->xm_pending--;
	xm->xm_recv_busy = 0;
	if (rr.rr_ok && rr.rr_buf != NULL && !xm->xm_closed) {
		if (xm->xm_srv->xv_config->xc_knobs.xk_type_flood) {
			if (!xm->xm_flooding)
				log_info("stream %llu: hostile: flooding it "
				    "with new type URLs",
				    (unsigned long long)xm->xm_id);
			xm->xm_flooding = 1;
		} else if (rr.rr_flat != NULL) {
			if (xm->xm_delta)
				serve_delta_request(xm, rr.rr_flat,
				    rr.rr_flat_len);
			else
				serve_sotw_request(xm, rr.rr_flat,
				    rr.rr_flat_len);
		}
		serve_recv(xm);
		serve_pump(xm);
	} else if (rr.rr_ok && rr.rr_buf == NULL && !xm->xm_closed)
		serve_end(xm, GRPC_STATUS_OK, "");
	relay_cq_recv_clear(&rr);
	serve_maybe_free(xm);
}

static void
serve_recv(struct xs_stream *xm)
{
	grpc_op		 op;

	if (xm->xm_recv_busy || xm->xm_closed || xm->xm_ending)
		return;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &xm->xm_op_recv.op_buf;
	xm->xm_op_recv.op_buf = NULL;
	xm->xm_op_recv.op_decode = xm->xm_delta ? RELAY_MSG_DELTA_REQUEST :
	    RELAY_MSG_REQUEST;
	xm->xm_op_recv.op_keep_flat = 1;
	if (serve_batch(xm, &op, 1, &xm->xm_op_recv) == 0)
		xm->xm_recv_busy = 1;
}

static void
serve_simple_cb(struct relay_op *op)
{
	struct xs_stream	*xm = op->op_arg;

	xm->xm_pending--;
	serve_maybe_free(xm);
}

static void
serve_close_cb(struct relay_op *op)
{
	struct xs_stream	*xm = op->op_arg;

	xm->xm_pending--;
	xm->xm_closed = 1;
	log_info("stream %llu: closed%s", (unsigned long long)xm->xm_id,
	    xm->xm_cancelled ? " (cancelled by the client)" : "");
	if (xm->xm_flooded > 0)
		log_info("stream %llu: %llu hostile responses sent",
		    (unsigned long long)xm->xm_id,
		    (unsigned long long)xm->xm_flooded);
	if (xm->xm_delaying) {
		evtimer_del(xm->xm_delay);
		xm->xm_delaying = 0;
	}
	serve_maybe_free(xm);
}

static void
serve_maybe_free(struct xs_stream *xm)
{
	struct xs_server	*xv = xm->xm_srv;
	size_t			 i, j;

	if (!xm->xm_closed || xm->xm_pending > 0)
		return;
	TAILQ_REMOVE(&xv->xv_streams, xm, xm_entry);
	xv->xv_nstreams--;
	for (i = 0; i < xm->xm_nsubs; i++) {
		serve_sub_names_free(&xm->xm_subs[i]);
		for (j = 0; j < xm->xm_subs[i].xb_nsent; j++)
			free(xm->xm_subs[i].xb_sent[j].xe_name);
		free(xm->xm_subs[i].xb_sent);
		free(xm->xm_subs[i].xb_url);
		free(xm->xm_subs[i].xb_version);
	}
	free(xm->xm_subs);
	if (xm->xm_ending)
		grpc_slice_unref(xm->xm_status_slice);
	event_free(xm->xm_delay);
	grpc_call_unref(xm->xm_call);
	free(xm);
}

static void
serve_stream_new(struct xs_server *xv, grpc_call *call, int delta)
{
	struct xs_stream	*xm;
	grpc_op			 op;

	xm = xcalloc(1, sizeof(*xm));
	xm->xm_srv = xv;
	xm->xm_id = ++xv->xv_next_id;
	xm->xm_delta = delta;
	xm->xm_call = call;
	relay_cq_op_init(&xm->xm_op_meta, serve_simple_cb, xm);
	relay_cq_op_init(&xm->xm_op_recv, serve_recv_cb, xm);
	relay_cq_op_init(&xm->xm_op_send, serve_send_cb, xm);
	relay_cq_op_init(&xm->xm_op_close, serve_close_cb, xm);
	relay_cq_op_init(&xm->xm_op_status, serve_simple_cb, xm);
	xm->xm_delay = evtimer_new(xv->xv_base, serve_delay_cb, xm);
	TAILQ_INSERT_TAIL(&xv->xv_streams, xm, xm_entry);
	xv->xv_nstreams++;
	log_info("stream %llu: new %s stream", (unsigned long long)xm->xm_id,
	    delta ? "delta" : "sotw");
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &xm->xm_cancelled;
	if (serve_batch(xm, &op, 1, &xm->xm_op_close) == -1) {
		xm->xm_closed = 1;
		serve_maybe_free(xm);
		return;
	}
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_INITIAL_METADATA;
	serve_batch(xm, &op, 1, &xm->xm_op_meta);
	if (xv->xv_config->xc_knobs.xk_refuse) {
		serve_end(xm, GRPC_STATUS_UNAVAILABLE, "xds-server: refusing "
		    "streams (test knob refuse)");
		return;
	}
	serve_recv(xm);
}

/* Logs the stream's metadata but gRPC's own, for the XDS_HEADER_* tests. */
static void
serve_log_metadata(uint64_t id, const grpc_metadata_array *md)
{
	size_t		 i;
	char		*k, *v;

	for (i = 0; i < md->count; i++) {
		k = grpc_slice_to_c_string(md->metadata[i].key);
		v = grpc_slice_to_c_string(md->metadata[i].value);
		if (strncmp(k, "grpc-", 5) != 0 && strcmp(k, "user-agent") != 0)
			log_info("stream %llu: header %s=%s",
			    (unsigned long long)id, k, v);
		gpr_free(k);
		gpr_free(v);
	}
}

static void
serve_accept_cb(struct relay_op *op)
{
	struct xs_server	*xv = op->op_arg;
	struct xs_accept	*xa = &xv->xv_accept;
	grpc_call		*call = xa->xa_call;

	xv->xv_pending--;
	if (op->op_ok && call != NULL) {
		serve_log_metadata(xv->xv_next_id + 1, &xa->xa_md);
		if (grpc_slice_str_cmp(xa->xa_details.method,
		    RELAY_SOTW_METHOD) == 0)
			serve_stream_new(xv, call, 0);
		else if (grpc_slice_str_cmp(xa->xa_details.method,
		    RELAY_DELTA_METHOD) == 0)
			serve_stream_new(xv, call, 1);
		else {
			log_warnx("unknown method; cancelling the call");
			grpc_call_cancel_with_status(call,
			    GRPC_STATUS_UNIMPLEMENTED, "unknown method", NULL);
			grpc_call_unref(call);
		}
	} else if (call != NULL)
		grpc_call_unref(call);
	grpc_call_details_destroy(&xa->xa_details);
	grpc_metadata_array_destroy(&xa->xa_md);
	if (op->op_ok && !xv->xv_shutdown)
		serve_accept(xv);
}

static void
serve_accept(struct xs_server *xv)
{
	struct xs_accept	*xa = &xv->xv_accept;
	grpc_completion_queue	*cq = relay_cq_queue(xv->xv_cq);

	relay_cq_op_init(&xa->xa_op, serve_accept_cb, xv);
	grpc_call_details_init(&xa->xa_details);
	grpc_metadata_array_init(&xa->xa_md);
	xa->xa_call = NULL;
	if (grpc_server_request_call(xv->xv_server, &xa->xa_call,
	    &xa->xa_details, &xa->xa_md, cq, cq, &xa->xa_op) ==
	    GRPC_CALL_OK)
		xv->xv_pending++;
}

static char *
serve_read(const char *path, char *err, size_t errlen)
{
	FILE	*f;
	char	*buf;
	long	 n;

	if ((f = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "cannot read %s", path);
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = xcalloc(1, (size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		snprintf(err, errlen, "cannot read %s", path);
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/*
 * Listens on addr ("host:port" or "unix:path"); TLS when cert and key are
 * given, requiring a client certificate signed by client_ca when that is.
 * The server keeps xc (the caller's, replaced by serve_reload).
 */
struct xs_server *
serve_new(struct event_base *base, const char *addr, const char *cert,
    const char *key, const char *client_ca, struct xs_config *xc, char *err,
    size_t errlen)
{
	struct xs_server	*xv;
	grpc_server_credentials	*creds;
	grpc_ssl_pem_key_cert_pair pair;
	char			*c = NULL, *k = NULL, *ca = NULL;
	grpc_arg		 args[3];
	grpc_channel_args	 cargs;

	xv = xcalloc(1, sizeof(*xv));
	xv->xv_base = base;
	xv->xv_config = xc;
	TAILQ_INIT(&xv->xv_streams);
	if ((xv->xv_cq = relay_cq_new(base, err, errlen)) == NULL) {
		free(xv);
		return NULL;
	}
	/* Allow the clients' keepalive pings; take messages of any size. */
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[0].value.integer = -1;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = (char *)GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS;
	args[1].value.integer = 1000;
	args[2].type = GRPC_ARG_INTEGER;
	args[2].key = (char *)GRPC_ARG_HTTP2_MAX_PING_STRIKES;
	args[2].value.integer = 0;
	cargs.num_args = 3;
	cargs.args = args;
	xv->xv_server = grpc_server_create(&cargs, NULL);
	grpc_server_register_completion_queue(xv->xv_server,
	    relay_cq_queue(xv->xv_cq), NULL);
	if (cert != NULL && key != NULL) {
		if ((c = serve_read(cert, err, errlen)) == NULL ||
		    (k = serve_read(key, err, errlen)) == NULL ||
		    (client_ca != NULL &&
		    (ca = serve_read(client_ca, err, errlen)) == NULL))
			goto fail;
		pair.private_key = k;
		pair.cert_chain = c;
		creds = grpc_ssl_server_credentials_create_ex(ca, &pair, 1,
		    ca != NULL ?
		    GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY :
		    GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE, NULL);
	} else
		creds = grpc_insecure_server_credentials_create();
	if (creds == NULL || !grpc_server_add_http2_port(xv->xv_server, addr,
	    creds)) {
		if (creds != NULL)
			grpc_server_credentials_release(creds);
		snprintf(err, errlen, "cannot listen on %s", addr);
		goto fail;
	}
	grpc_server_credentials_release(creds);
	free(c);
	free(k);
	free(ca);
	grpc_server_start(xv->xv_server);
	serve_accept(xv);
	return xv;
fail:
	free(c);
	free(k);
	free(ca);
	serve_free(xv);
	return NULL;
}

/* Takes the new resources; pushes the types that changed. */
void
serve_reload(struct xs_server *xv, struct xs_config *xc)
{
	struct xs_config	*old = xv->xv_config;
	struct xs_stream	*xm;
	size_t			 i;

	for (i = 0; i < xc->xc_ntypes; i++) {
		struct xs_type *ot = resource_type(old, xc->xc_types[i].xt_url);

		xc->xc_types[i].xt_gen = ot == NULL ? 1 : ot->xt_gen +
		    (resource_changed(old, xc, xc->xc_types[i].xt_url) ? 1 : 0);
	}
	xv->xv_config = xc;
	TAILQ_FOREACH(xm, &xv->xv_streams, xm_entry) {
		for (i = 0; i < xm->xm_nsubs; i++) {
			struct xs_sub *xb = &xm->xm_subs[i];

			if (!resource_changed(old, xc, xb->xb_url))
				continue;
			if (xm->xm_delta) {
				if (serve_delta_diff(xm, xb) &&
				    xb->xb_owed == 0)
					xb->xb_owed = 1;
			} else
				xb->xb_owed = xc->xc_knobs.xk_repeat;
			log_info("stream %llu: pushing %s",
			    (unsigned long long)xm->xm_id, xb->xb_url);
		}
		serve_pump(xm);
	}
}

static void
serve_simple_shutdown(struct relay_op *op)
{
	struct xs_server	*xv = op->op_arg;

	xv->xv_shutdown_done = 1;
}

void
serve_free(struct xs_server *xv)
{
	struct xs_stream	*xm;
	int			 waited = 0;

	if (xv == NULL)
		return;
	xv->xv_shutdown = 1;
	if (xv->xv_server != NULL) {
		relay_cq_op_init(&xv->xv_shutdown_op, serve_simple_shutdown,
		    xv);
		grpc_server_shutdown_and_notify(xv->xv_server,
		    relay_cq_queue(xv->xv_cq), &xv->xv_shutdown_op);
		grpc_server_cancel_all_calls(xv->xv_server);
	} else
		xv->xv_shutdown_done = 1;
	TAILQ_FOREACH(xm, &xv->xv_streams, xm_entry)
		grpc_call_cancel(xm->xm_call, NULL);
	while ((!xv->xv_shutdown_done || xv->xv_pending > 0 ||
	    xv->xv_nstreams > 0) && waited < 5000)
		if (relay_cq_dispatch(xv->xv_cq, 100) == 0)
			waited += 100;
	if (xv->xv_server != NULL)
		grpc_server_destroy(xv->xv_server);
	relay_cq_free(xv->xv_cq);
	free(xv);
}
