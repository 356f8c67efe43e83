/*
 * Unit test of agent/relay/relay.c (relay_new, relay_syncz, relay_metrics):
 * the relay in one process, a client stream through relay_new's socket to
 * an echo control plane (a gRPC core server that sends every message back).
 * Checks that messages pass byte for byte, in order, both ways: an
 * undecodable one (forwarded and counted), a valid request, and one of
 * 8 MiB (above gRPC's default 4 MiB receive limit); and that the
 * observations reach relay_syncz and relay_metrics.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <jansson.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"

#include "agent.h"
#include "relay/relay.h"
#include "check.h"

#define BIG	(8u << 20)

struct msg {
	uint8_t	*m_data;
	size_t	 m_len;
};

static struct msg	 msgs[3];
static char		 dir[] = "/tmp/test_relay.XXXXXX";
static struct event_base *base;
static grpc_server	*echo_server;
static grpc_completion_queue *echo_cq;

static int
run_batch(grpc_call *call, grpc_completion_queue *cq, grpc_op *ops, size_t n,
    intptr_t tag)
{
	grpc_event	 ev;

	if (grpc_call_start_batch(call, ops, n, (void *)tag, NULL) !=
	    GRPC_CALL_OK)
		return 0;
	ev = grpc_completion_queue_pluck(cq, (void *)tag,
	    gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
	    gpr_time_from_seconds(20, GPR_TIMESPAN)), NULL);
	return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* The echo control plane: one call, every message sent back. */
static void *
echo_thread(void *arg)
{
	grpc_call		*call = NULL;
	grpc_call_details	 details;
	grpc_metadata_array	 md;
	grpc_byte_buffer	*bb;
	grpc_op			 op;
	grpc_event		 ev;
	grpc_slice		 status;
	int			 cancelled = 0;

	(void)arg;
	grpc_call_details_init(&details);
	grpc_metadata_array_init(&md);
	grpc_server_request_call(echo_server, &call, &details, &md, echo_cq,
	    echo_cq, (void *)1);
	ev = grpc_completion_queue_pluck(echo_cq, (void *)1,
	    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (!ev.success || call == NULL)
		goto out;
	CHECK(grpc_slice_str_cmp(details.method, RELAY_SOTW_METHOD) == 0);
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_INITIAL_METADATA;
	run_batch(call, echo_cq, &op, 1, 2);
	for (;;) {
		bb = NULL;
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_RECV_MESSAGE;
		op.data.recv_message.recv_message = &bb;
		if (!run_batch(call, echo_cq, &op, 1, 3) || bb == NULL)
			break;
		memset(&op, 0, sizeof(op));
		op.op = GRPC_OP_SEND_MESSAGE;
		op.data.send_message.send_message = bb;
		run_batch(call, echo_cq, &op, 1, 4);
		grpc_byte_buffer_destroy(bb);
	}
	status = grpc_slice_from_static_string("");
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	op.data.send_status_from_server.status = GRPC_STATUS_OK;
	op.data.send_status_from_server.status_details = &status;
	run_batch(call, echo_cq, &op, 1, 5);
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	op.data.recv_close_on_server.cancelled = &cancelled;
	run_batch(call, echo_cq, &op, 1, 6);
	grpc_call_unref(call);
out:
	grpc_call_details_destroy(&details);
	grpc_metadata_array_destroy(&md);
	return NULL;
}

/* The proxy: sends each message, and checks each echo. */
static void *
client_thread(void *arg)
{
	grpc_completion_queue	*cq;
	grpc_channel_credentials *creds;
	grpc_channel		*ch;
	grpc_call		*call;
	grpc_metadata_array	 md, trailing;
	grpc_byte_buffer	*bb;
	grpc_status_code	 code;
	grpc_slice		 details;
	grpc_arg		 a;
	grpc_channel_args	 args;
	grpc_op			 ops[2];
	char			*target;
	uint8_t			*flat;
	size_t			 i, len;

	(void)arg;
	xasprintf(&target, "unix:%s/XDS", dir);
	cq = grpc_completion_queue_create_for_pluck(NULL);
	creds = grpc_insecure_credentials_create();
	a.type = GRPC_ARG_INTEGER;
	a.key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	a.value.integer = -1;
	args.num_args = 1;
	args.args = &a;
	ch = grpc_channel_create(target, creds, &args);
	grpc_channel_credentials_release(creds);
	call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
	    grpc_slice_from_static_string(RELAY_SOTW_METHOD), NULL,
	    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_metadata_array_init(&md);
	grpc_metadata_array_init(&trailing);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
	CHECK(run_batch(call, cq, ops, 1, 1));
	for (i = 0; i < 3; i++) {
		memset(ops, 0, sizeof(ops));
		ops[0].op = GRPC_OP_SEND_MESSAGE;
		ops[0].data.send_message.send_message = relay_msg_buffer(
		    msgs[i].m_data, msgs[i].m_len);
		CHECK(run_batch(call, cq, ops, 1, 2));
		grpc_byte_buffer_destroy(ops[0].data.send_message.send_message);
		if (i == 0) {
			memset(ops, 0, sizeof(ops));
			ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
			ops[0].data.recv_initial_metadata.recv_initial_metadata =
			    &md;
			CHECK(run_batch(call, cq, ops, 1, 3));
		}
		bb = NULL;
		memset(ops, 0, sizeof(ops));
		ops[0].op = GRPC_OP_RECV_MESSAGE;
		ops[0].data.recv_message.recv_message = &bb;
		CHECK(run_batch(call, cq, ops, 1, 4));
		CHECK(bb != NULL);
		if (bb == NULL)
			break;
		flat = relay_msg_flatten(bb, &len);
		CHECK(len == msgs[i].m_len);
		CHECK(flat != NULL && memcmp(flat, msgs[i].m_data, len) == 0);
		free(flat);
		grpc_byte_buffer_destroy(bb);
	}
	/* The proxy finishes: the relay passes the half-close and status. */
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[1].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[1].data.recv_status_on_client.trailing_metadata = &trailing;
	ops[1].data.recv_status_on_client.status = &code;
	ops[1].data.recv_status_on_client.status_details = &details;
	CHECK(run_batch(call, cq, ops, 2, 5));
	CHECK(code == GRPC_STATUS_OK);
	grpc_slice_unref(details);
	grpc_call_unref(call);
	grpc_metadata_array_destroy(&md);
	grpc_metadata_array_destroy(&trailing);
	grpc_channel_destroy(ch);
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_pluck(cq, NULL,
	    gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	    GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	free(target);
	event_base_loopexit(base, NULL);
	return NULL;
}

static void
make_messages(void)
{
	Envoy__Service__Discovery__V3__DiscoveryRequest req =
	    ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
	size_t	 i;

	msgs[0].m_data = xmalloc(3);
	memcpy(msgs[0].m_data, "\xff\xff\xff", 3);
	msgs[0].m_len = 3;
	req.type_url = (char *)"type.googleapis.com/envoy.config.cluster.v3."
	    "Cluster";
	req.version_info = (char *)"v1";
	msgs[1].m_len =
	    envoy__service__discovery__v3__discovery_request__get_packed_size(
	    &req);
	msgs[1].m_data = xmalloc(msgs[1].m_len);
	envoy__service__discovery__v3__discovery_request__pack(&req,
	    msgs[1].m_data);
	/* 8 MiB: an unknown field 1000 of bytes, after the type URL. */
	msgs[2].m_data = xmalloc(BIG);
	memcpy(msgs[2].m_data, msgs[1].m_data, msgs[1].m_len);
	i = msgs[1].m_len;
	msgs[2].m_data[i++] = 0xc2;	/* field 1000, wire type 2 */
	msgs[2].m_data[i++] = 0x3e;
	{
		/* The length takes 4 bytes of varint; the rest is value. */
		size_t	 n = BIG - i - 4, v = n;

		while (v >= 0x80) {
			msgs[2].m_data[i++] = (uint8_t)(v | 0x80);
			v >>= 7;
		}
		msgs[2].m_data[i++] = (uint8_t)v;
		memset(msgs[2].m_data + i, 'r', n);
		msgs[2].m_len = i + n;
	}
}

int
main(void)
{
	struct config	 cf;
	struct relay	*rl;
	struct evbuffer	*ev;
	pthread_t	 echo, client;
	json_t		*j;
	char		 err[256], *cp, *text;
	grpc_server_credentials *creds;
	size_t		 i;

	log_init();
	evthread_use_pthreads();
	if (mkdtemp(dir) == NULL)
		fatal("mkdtemp");
	make_messages();
	grpc_init();
	base = event_base_new();

	xasprintf(&cp, "unix:%s/cp.sock", dir);
	echo_cq = grpc_completion_queue_create_for_pluck(NULL);
	/* The control plane takes what the proxy sends, of any size. */
	{
		grpc_arg		 a;
		grpc_channel_args	 args;

		a.type = GRPC_ARG_INTEGER;
		a.key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
		a.value.integer = -1;
		args.num_args = 1;
		args.args = &a;
		echo_server = grpc_server_create(&args, NULL);
	}
	grpc_server_register_completion_queue(echo_server, echo_cq, NULL);
	creds = grpc_insecure_server_credentials_create();
	CHECK(grpc_server_add_http2_port(echo_server, cp, creds));
	grpc_server_credentials_release(creds);
	grpc_server_start(echo_server);
	pthread_create(&echo, NULL, echo_thread, NULL);

	config_defaults(&cf);
	free(cf.cf_config_path);
	cf.cf_config_path = xstrdup(dir);
	free(cf.cf_discovery_address);
	cf.cf_discovery_address = xstrdup(cp);
	free(cf.cf_control_plane_auth_policy);
	cf.cf_control_plane_auth_policy = xstrdup("NONE");
	rl = relay_new(base, &cf, err, sizeof(err));
	CHECK(rl != NULL);
	if (rl == NULL) {
		fprintf(stderr, "relay_new: %s\n", err);
		return 1;
	}
	pthread_create(&client, NULL, client_thread, NULL);
	event_base_dispatch(base);
	pthread_join(client, NULL);

	j = relay_syncz(rl);
	CHECK(json_integer_value(json_object_get(j, "undecodable_requests")) ==
	    1);
	CHECK(json_integer_value(json_object_get(j,
	    "undecodable_responses")) >= 1);
	text = json_dumps(json_object_get(j, "totals"), JSON_COMPACT);
	CHECK(strstr(text, "\"requests\":2") != NULL);
	CHECK(strstr(text, "envoy.config.cluster.v3.Cluster") != NULL);
	free(text);
	json_decref(j);
	ev = evbuffer_new();
	relay_metrics(rl, ev);
	evbuffer_add(ev, "", 1);
	text = (char *)evbuffer_pullup(ev, -1);
	CHECK(strstr(text, "istio_agent_xds_undecodable_total{direction="
	    "\"request\"} 1\n") != NULL);
	CHECK(strstr(text, "istio_agent_xds_proxy_requests_total 3\n") != NULL);
	CHECK(strstr(text, "# TYPE istio_agent_xds_streams gauge\n") != NULL);
	evbuffer_free(ev);
	relay_free(rl);

	grpc_server_shutdown_and_notify(echo_server, echo_cq, (void *)9);
	grpc_server_cancel_all_calls(echo_server);
	pthread_join(echo, NULL);
	grpc_completion_queue_pluck(echo_cq, (void *)9,
	    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_server_destroy(echo_server);
	grpc_completion_queue_shutdown(echo_cq);
	while (grpc_completion_queue_pluck(echo_cq, NULL,
	    gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	    GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(echo_cq);
	grpc_shutdown();
	event_base_free(base);
	config_free(&cf);
	for (i = 0; i < 3; i++)
		free(msgs[i].m_data);
	free(cp);
	xasprintf(&cp, "%s/cp.sock", dir);
	unlink(cp);
	free(cp);
	rmdir(dir);
	libevent_global_shutdown();
	return check_done("test_relay");
}
