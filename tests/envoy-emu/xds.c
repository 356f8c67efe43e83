/*
 * The stand-in's ADS client. When the bootstrap's ads_config names a
 * cluster with a pipe (or socket) address, the stand-in opens one
 * state-of-the-world stream there with gRPC core, as Envoy does: a CDS
 * request first (with the node: set_node_on_first_message_only), the LDS
 * request once the first CDS response is handled, an ACK for every response
 * it accepts and a NACK, with error_detail, for one it rejects. Each CDS and
 * LDS response goes to emu_xds_received (update_success, update_rejected,
 * and LIVE after the first of both).
 *
 * Test knobs (environment):
 *   a resource whose name starts with "reject" is rejected: the whole
 *     response is NACKed with "rejected resource <name>"; the name is field 1
 *     of the resource, as in Cluster, Listener, RouteConfiguration and
 *     ClusterLoadAssignment;
 *   ENVOY_EMU_XDS_READ_DELAY_MS=n   wait n ms before reading each response
 *     (a slow proxy);
 *   ENVOY_EMU_XDS_DELTA=1           use DeltaAggregatedResources instead.
 *
 * When the stream ends the client counts it (control_plane.stream_resets,
 * a stat of the stand-in's own) and reconnects after 500 ms, sending its
 * subscriptions again with the versions it accepted, as Envoy does.
 * control_plane.connected_state is 1 while a stream is up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
#include "emu.h"

#define XDS_CDS	"type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define XDS_LDS	"type.googleapis.com/envoy.config.listener.v3.Listener"
#define XDS_RETRY_MS	500
#define XDS_MAX_TYPES	2

struct xds_type {
	const char	*xt_url;
	int		 xt_is_lds;
	int		 xt_subscribed;
	char		*xt_version;	/* the latest accepted */
};

struct xds_out {
	struct xds_out	*xo_next;
	grpc_byte_buffer *xo_buf;
};

struct xds_client {
	struct emu	*xc_emu;
	struct relay_cq	*xc_cq;
	char		*xc_target;
	int		 xc_delta;
	int		 xc_read_delay_ms;
	grpc_channel	*xc_ch;
	grpc_call	*xc_call;
	int		 xc_pending;
	struct relay_op	 xc_op_start;
	struct relay_op	 xc_op_recv;
	struct relay_op	 xc_op_send;
	struct relay_op	 xc_op_status;
	grpc_metadata_array xc_md_initial;
	grpc_metadata_array xc_md_trailing;
	grpc_status_code xc_status;
	grpc_slice	 xc_details;
	struct xds_out	*xc_out_head;
	struct xds_out	**xc_out_tail;
	grpc_byte_buffer *xc_sending;
	int		 xc_send_busy;
	int		 xc_sent_node;
	int		 xc_ended;
	int		 xc_stopping;
	struct xds_type	 xc_types[XDS_MAX_TYPES];
	struct event	*xc_retry_ev;
	struct event	*xc_delay_ev;
	struct stats_entry *xc_resets;
	struct stats_entry *xc_connected;
};

static struct xds_client *xds;

static void	xds_connect(void);
static void	xds_recv(void);

/* The ADS cluster's address, as a gRPC target. */
static char *
xds_target(json_t *config)
{
	json_t		*grpc, *clusters, *c, *addr;
	const char	*name, *path, *host;
	char		*target = NULL;
	size_t		 i;

	grpc = json_array_get(json_object_get(json_object_get(json_object_get(
	    config, "dynamic_resources"), "ads_config"), "grpc_services"), 0);
	name = json_string_value(json_object_get(json_object_get(grpc,
	    "envoy_grpc"), "cluster_name"));
	if (name == NULL)
		return NULL;
	clusters = json_object_get(json_object_get(config, "static_resources"),
	    "clusters");
	json_array_foreach(clusters, i, c) {
		const char *cn = json_string_value(json_object_get(c, "name"));

		if (cn == NULL || strcmp(cn, name) != 0)
			continue;
		addr = json_object_get(json_object_get(json_array_get(
		    json_object_get(json_array_get(json_object_get(
		    json_object_get(c, "load_assignment"), "endpoints"), 0),
		    "lb_endpoints"), 0), "endpoint"), "address");
		path = json_string_value(json_object_get(json_object_get(addr,
		    "pipe"), "path"));
		host = json_string_value(json_object_get(json_object_get(addr,
		    "socket_address"), "address"));
		if (path != NULL)
			xasprintf(&target, "unix:%s", path);
		else if (host != NULL)
			xasprintf(&target, "%s:%lld", host, (long long)
			    json_integer_value(json_object_get(json_object_get(
			    addr, "socket_address"), "port_value")));
		break;
	}
	return target;
}

static void
xds_pump(void)
{
	struct xds_out	*xo;
	grpc_op		 op;

	if (xds->xc_send_busy || xds->xc_call == NULL || xds->xc_ended ||
	    (xo = xds->xc_out_head) == NULL)
		return;
	if ((xds->xc_out_head = xo->xo_next) == NULL)
		xds->xc_out_tail = &xds->xc_out_head;
	xds->xc_sending = xo->xo_buf;
	free(xo);
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = xds->xc_sending;
	if (grpc_call_start_batch(xds->xc_call, &op, 1, &xds->xc_op_send,
	    NULL) == GRPC_CALL_OK) {
		xds->xc_pending++;
		xds->xc_send_busy = 1;
	} else {
		grpc_byte_buffer_destroy(xds->xc_sending);
		xds->xc_sending = NULL;
	}
}

static void
xds_queue(uint8_t *buf, size_t len)
{
	struct xds_out	*xo;

	xo = xcalloc(1, sizeof(*xo));
	xo->xo_buf = relay_msg_buffer(buf, len);
	*xds->xc_out_tail = xo;
	xds->xc_out_tail = &xo->xo_next;
	free(buf);
	xds_pump();
}

static void
xds_clear_queue(void)
{
	struct xds_out	*xo;

	while ((xo = xds->xc_out_head) != NULL) {
		xds->xc_out_head = xo->xo_next;
		grpc_byte_buffer_destroy(xo->xo_buf);
		free(xo);
	}
	xds->xc_out_tail = &xds->xc_out_head;
}

/* A request: version and nonce NULL for a subscription. */
static void
xds_request(struct xds_type *xt, const char *nonce, const char *error)
{
	Envoy__Config__Core__V3__Node node =
	    ENVOY__CONFIG__CORE__V3__NODE__INIT;
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	Envoy__Config__Core__V3__Node *np = NULL;
	Google__Rpc__Status *sp = NULL;
	uint8_t		*buf;
	size_t		 len;

	if (!xds->xc_sent_node) {
		node.id = xds->xc_emu->e_node_id;
		node.cluster = (char *)json_string_value(json_object_get(
		    xds->xc_emu->e_node, "cluster"));
		node.user_agent_name = (char *)"envoy";
		np = &node;
		xds->xc_sent_node = 1;
	}
	if (error != NULL) {
		st.code = GRPC_STATUS_INVALID_ARGUMENT;
		st.message = (char *)error;
		sp = &st;
	}
	if (xds->xc_delta) {
		Envoy__Service__Discovery__V3__DeltaDiscoveryRequest req =
		    ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;

		req.node = np;
		req.type_url = (char *)xt->xt_url;
		req.response_nonce = (char *)(nonce != NULL ? nonce : "");
		req.error_detail = sp;
		len = envoy__service__discovery__v3__delta_discovery_request__get_packed_size(
		    &req);
		buf = xmalloc(len);
		envoy__service__discovery__v3__delta_discovery_request__pack(
		    &req, buf);
	} else {
		Envoy__Service__Discovery__V3__DiscoveryRequest req =
		    ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;

		req.node = np;
		req.type_url = (char *)xt->xt_url;
		req.version_info = xt->xt_version != NULL ? xt->xt_version :
		    (char *)"";
		req.response_nonce = (char *)(nonce != NULL ? nonce : "");
		req.error_detail = sp;
		len = envoy__service__discovery__v3__discovery_request__get_packed_size(
		    &req);
		buf = xmalloc(len);
		envoy__service__discovery__v3__discovery_request__pack(&req,
		    buf);
	}
	xds_queue(buf, len);
}

static struct xds_type *
xds_type(const char *url)
{
	size_t	 i;

	for (i = 0; i < XDS_MAX_TYPES; i++)
		if (strcmp(xds->xc_types[i].xt_url, url) == 0)
			return &xds->xc_types[i];
	return NULL;
}

static void
xds_subscribe(struct xds_type *xt)
{
	xt->xt_subscribed = 1;
	elog_info("upstream", "%s: subscribing", xt->xt_is_lds ? "lds" :
	    "cds");
	xds_request(xt, NULL, NULL);
}

/* field 1 of an encoded resource: its name. */
static int
xds_resource_name(const uint8_t *p, size_t len, char *name, size_t nlen)
{
	uint64_t	 n = 0;
	size_t		 i = 1;
	int		 shift = 0;

	if (len < 2 || p[0] != ((1 << 3) | 2))
		return -1;
	while (i < len && shift < 63) {
		n |= (uint64_t)(p[i] & 0x7f) << shift;
		shift += 7;
		if ((p[i++] & 0x80) == 0)
			break;
	}
	if (n >= nlen || n > len - i)
		return -1;
	memcpy(name, p + i, (size_t)n);
	name[n] = '\0';
	return 0;
}

/* Handles one response: NACK when a resource is marked, else ACK. */
static void
xds_response(const uint8_t *data, size_t len)
{
	Envoy__Service__Discovery__V3__DiscoveryResponse *m = NULL;
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *d = NULL;
	struct xds_type	*xt;
	const char	*url, *version, *nonce;
	char		 name[256], err[320] = "";
	size_t		 i, n;
	int		 first;

	if (xds->xc_delta) {
		d = envoy__service__discovery__v3__delta_discovery_response__unpack(
		    NULL, len, data);
		if (d == NULL)
			goto bad;
		url = d->type_url;
		version = d->system_version_info;
		nonce = d->nonce;
		n = d->n_resources;
		for (i = 0; i < n && *err == '\0'; i++) {
			if (strncmp(d->resources[i]->name, "reject", 6) == 0)
				snprintf(err, sizeof(err), "rejected resource "
				    "%s", d->resources[i]->name);
		}
	} else {
		m = envoy__service__discovery__v3__discovery_response__unpack(
		    NULL, len, data);
		if (m == NULL)
			goto bad;
		url = m->type_url;
		version = m->version_info;
		nonce = m->nonce;
		n = m->n_resources;
		for (i = 0; i < n && *err == '\0'; i++) {
			if (xds_resource_name(m->resources[i]->value.data,
			    m->resources[i]->value.len, name,
			    sizeof(name)) == 0 &&
			    strncmp(name, "reject", 6) == 0)
				snprintf(err, sizeof(err), "rejected resource "
				    "%s", name);
		}
	}
	if ((xt = xds_type(url)) == NULL) {
		elog_warn("config", "ignoring unexpected type %s", url);
		goto out;
	}
	first = xt->xt_version == NULL;
	if (*err != '\0') {
		elog_warn("config", "gRPC config for %s rejected: %s", url, err);
		xds_request(xt, nonce, err);
		emu_xds_received(xt->xt_is_lds, 0);
	} else {
		free(xt->xt_version);
		xt->xt_version = xstrdup(version);
		elog_info("upstream", "%s: add/update %zu resource(s), version "
		    "%s", xt->xt_is_lds ? "lds" : "cds", n, version);
		xds_request(xt, nonce, NULL);
		emu_xds_received(xt->xt_is_lds, 1);
	}
	/* As Envoy: LDS once clusters are initialized. */
	if (!xt->xt_is_lds && !xds->xc_types[1].xt_subscribed && (first ||
	    *err != '\0'))
		xds_subscribe(&xds->xc_types[1]);
	goto out;
bad:
	elog_warn("config", "undecodable xDS response of %zu bytes", len);
out:
	if (m != NULL)
		envoy__service__discovery__v3__discovery_response__free_unpacked(
		    m, NULL);
	if (d != NULL)
		envoy__service__discovery__v3__delta_discovery_response__free_unpacked(
		    d, NULL);
}

static void
xds_maybe_reconnect(void)
{
	struct timeval	 tv = { XDS_RETRY_MS / 1000,
	    (XDS_RETRY_MS % 1000) * 1000 };

	if (!xds->xc_ended || xds->xc_pending > 0 || xds->xc_stopping)
		return;
	grpc_call_unref(xds->xc_call);
	xds->xc_call = NULL;
	grpc_slice_unref(xds->xc_details);
	grpc_metadata_array_destroy(&xds->xc_md_initial);
	grpc_metadata_array_destroy(&xds->xc_md_trailing);
	evtimer_add(xds->xc_retry_ev, &tv);
}

static void
xds_start_cb(struct relay_op *op)
{
	xds->xc_pending--;
	if (op->op_ok && !xds->xc_ended)
		stats_set(xds->xc_connected, 1);
	xds_maybe_reconnect();
}

static void
xds_delay_cb(int fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	xds_recv();
}

static void
xds_recv_cb(struct relay_op *op)
{
	struct relay_recv	 rr;
	struct timeval		 tv;

	relay_cq_take(op, &rr);
	xds->xc_pending--;
	if (rr.rr_ok && rr.rr_buf != NULL && !xds->xc_stopping) {
		if (rr.rr_flat != NULL)
			xds_response(rr.rr_flat, rr.rr_flat_len);
		if (xds->xc_read_delay_ms > 0) {
			tv.tv_sec = xds->xc_read_delay_ms / 1000;
			tv.tv_usec = (xds->xc_read_delay_ms % 1000) * 1000;
			evtimer_add(xds->xc_delay_ev, &tv);
		} else
			xds_recv();
	}
	relay_cq_recv_clear(&rr);
	xds_maybe_reconnect();
}

static void
xds_recv(void)
{
	grpc_op		 op;

	if (xds->xc_call == NULL || xds->xc_ended || xds->xc_stopping)
		return;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &xds->xc_op_recv.op_buf;
	xds->xc_op_recv.op_buf = NULL;
	xds->xc_op_recv.op_decode = xds->xc_delta ?
	    RELAY_MSG_DELTA_RESPONSE : RELAY_MSG_RESPONSE;
	xds->xc_op_recv.op_keep_flat = 1;
	if (grpc_call_start_batch(xds->xc_call, &op, 1, &xds->xc_op_recv,
	    NULL) == GRPC_CALL_OK)
		xds->xc_pending++;
}

static void
xds_send_cb(struct relay_op *op)
{
	(void)op;
	xds->xc_pending--;
	xds->xc_send_busy = 0;
	grpc_byte_buffer_destroy(xds->xc_sending);
	xds->xc_sending = NULL;
	xds_pump();
	xds_maybe_reconnect();
}

static void
xds_status_cb(struct relay_op *op)
{
	char	*details;

	(void)op;
	xds->xc_pending--;
	xds->xc_ended = 1;
	stats_set(xds->xc_connected, 0);
	xds_clear_queue();
	if (!xds->xc_stopping) {
		details = grpc_slice_to_c_string(xds->xc_details);
		stats_inc(xds->xc_resets);
		elog_warn("config", "StreamAggregatedResources gRPC config "
		    "stream to xds-grpc closed: %d, %s", (int)xds->xc_status,
		    details);
		gpr_free(details);
	}
	xds_maybe_reconnect();
}

static void
xds_connect(void)
{
	grpc_op		 ops[2];
	size_t		 i;

	xds->xc_ended = 0;
	xds->xc_sent_node = 0;
	xds->xc_details = grpc_empty_slice();
	grpc_metadata_array_init(&xds->xc_md_initial);
	grpc_metadata_array_init(&xds->xc_md_trailing);
	xds->xc_call = grpc_channel_create_call(xds->xc_ch, NULL,
	    GRPC_PROPAGATE_DEFAULTS, relay_cq_queue(xds->xc_cq),
	    grpc_slice_from_static_string(xds->xc_delta ? RELAY_DELTA_METHOD :
	    RELAY_SOTW_METHOD), NULL, gpr_inf_future(GPR_CLOCK_REALTIME),
	    NULL);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[1].data.recv_initial_metadata.recv_initial_metadata =
	    &xds->xc_md_initial;
	if (grpc_call_start_batch(xds->xc_call, ops, 2, &xds->xc_op_start,
	    NULL) == GRPC_CALL_OK)
		xds->xc_pending++;
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata =
	    &xds->xc_md_trailing;
	ops[0].data.recv_status_on_client.status = &xds->xc_status;
	ops[0].data.recv_status_on_client.status_details = &xds->xc_details;
	if (grpc_call_start_batch(xds->xc_call, ops, 1, &xds->xc_op_status,
	    NULL) == GRPC_CALL_OK)
		xds->xc_pending++;
	elog_info("upstream", "xDS: connecting to %s", xds->xc_target);
	/* The subscriptions so far, with the versions accepted. */
	if (!xds->xc_types[0].xt_subscribed)
		xds_subscribe(&xds->xc_types[0]);
	else
		for (i = 0; i < XDS_MAX_TYPES; i++)
			if (xds->xc_types[i].xt_subscribed)
				xds_request(&xds->xc_types[i], NULL, NULL);
	xds_recv();
}

static void
xds_retry_cb(int fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (!xds->xc_stopping)
		xds_connect();
}

int
xds_start(struct emu *e)
{
	grpc_channel_credentials *creds;
	grpc_arg	 arg;
	grpc_channel_args args;
	char		 err[256];
	const char	*v;

	xds = xcalloc(1, sizeof(*xds));
	xds->xc_emu = e;
	xds->xc_out_tail = &xds->xc_out_head;
	xds->xc_types[0].xt_url = XDS_CDS;
	xds->xc_types[1].xt_url = XDS_LDS;
	xds->xc_types[1].xt_is_lds = 1;
	xds->xc_resets = stats_counter("control_plane.stream_resets");
	xds->xc_connected = stats_gauge("control_plane.connected_state");
	stats_set(xds->xc_resets, 0);
	stats_set(xds->xc_connected, 0);
	if ((v = getenv("ENVOY_EMU_XDS_READ_DELAY_MS")) != NULL)
		xds->xc_read_delay_ms = atoi(v);
	xds->xc_delta = (v = getenv("ENVOY_EMU_XDS_DELTA")) != NULL &&
	    strcmp(v, "1") == 0;
	if ((xds->xc_target = xds_target(e->e_config)) == NULL) {
		elog_error("config", "xDS: no address for the ads_config "
		    "cluster");
		return -1;
	}
	grpc_init();
	if ((xds->xc_cq = relay_cq_new(e->e_base, err, sizeof(err))) ==
	    NULL) {
		elog_error("config", "xDS: %s", err);
		return -1;
	}
	relay_cq_op_init(&xds->xc_op_start, xds_start_cb, NULL);
	relay_cq_op_init(&xds->xc_op_recv, xds_recv_cb, NULL);
	relay_cq_op_init(&xds->xc_op_send, xds_send_cb, NULL);
	relay_cq_op_init(&xds->xc_op_status, xds_status_cb, NULL);
	xds->xc_retry_ev = evtimer_new(e->e_base, xds_retry_cb, NULL);
	xds->xc_delay_ev = evtimer_new(e->e_base, xds_delay_cb, NULL);
	creds = grpc_insecure_credentials_create();
	arg.type = GRPC_ARG_INTEGER;
	arg.key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	arg.value.integer = -1;
	args.num_args = 1;
	args.args = &arg;
	xds->xc_ch = grpc_channel_create(xds->xc_target, creds, &args);
	grpc_channel_credentials_release(creds);
	xds_connect();
	return 0;
}

void
xds_stop(void)
{
	int	 waited = 0;
	size_t	 i;

	if (xds == NULL)
		return;
	xds->xc_stopping = 1;
	if (xds->xc_call != NULL)
		grpc_call_cancel(xds->xc_call, NULL);
	while (xds->xc_cq != NULL && xds->xc_pending > 0 && waited < 5000)
		if (relay_cq_dispatch(xds->xc_cq, 100) == 0)
			waited += 100;
	if (xds->xc_call != NULL) {
		grpc_call_unref(xds->xc_call);
		grpc_slice_unref(xds->xc_details);
		grpc_metadata_array_destroy(&xds->xc_md_initial);
		grpc_metadata_array_destroy(&xds->xc_md_trailing);
	}
	xds_clear_queue();
	if (xds->xc_ch != NULL)
		grpc_channel_destroy(xds->xc_ch);
	relay_cq_free(xds->xc_cq);
	if (xds->xc_retry_ev != NULL)
		event_free(xds->xc_retry_ev);
	if (xds->xc_delay_ev != NULL)
		event_free(xds->xc_delay_ev);
	for (i = 0; i < XDS_MAX_TYPES; i++)
		free(xds->xc_types[i].xt_version);
	if (xds->xc_cq != NULL)
		grpc_shutdown();
	free(xds->xc_target);
	free(xds);
	xds = NULL;
}
