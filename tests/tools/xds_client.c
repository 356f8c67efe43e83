/*
 * A small synchronous ADS client for tests and the bench (build/tools/
 * xds_client). It opens one state-of-the-world stream, subscribes to the
 * given type URLs, ACKs every response (or NACKs when a resource's name
 * starts with "reject"), and prints what it saw as key=value lines.
 *
 *   xds_client --target addr [--type url]... [--responses n]
 *       [--timeout-ms n] [--read-delay-ms n] [--latency n] [--node id]
 *       [--quiet]
 *
 * --latency n: after the first response, n round trips of "ACK, then the
 * next response" (the server runs with --echo); prints p50_us and p99_us.
 * Otherwise it reads --responses responses (0: until the stream ends or the
 * timeout) and prints their count, bytes and rate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/string_util.h>
#include <grpc/support/time.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"

#include "agent.h"
#include "relay/relay.h"

struct cl {
	grpc_completion_queue	*cl_cq;
	grpc_channel		*cl_ch;
	grpc_call		*cl_call;
	int			 cl_timeout_ms;
	int			 cl_quiet;
	const char		*cl_node;
	int			 cl_sent_node;
};

static int64_t
now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static gpr_timespec
deadline(int ms)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
	    gpr_time_from_millis(ms, GPR_TIMESPAN));
}

/* Runs one batch to completion; 1 on success, 0 on failure, -1 timeout. */
static int
batch(struct cl *cl, grpc_op *ops, size_t n, int tag)
{
	grpc_event	 ev;

	if (grpc_call_start_batch(cl->cl_call, ops, n, (void *)(intptr_t)tag,
	    NULL) != GRPC_CALL_OK)
		return 0;
	ev = grpc_completion_queue_pluck(cl->cl_cq, (void *)(intptr_t)tag,
	    deadline(cl->cl_timeout_ms), NULL);
	if (ev.type == GRPC_QUEUE_TIMEOUT) {
		grpc_call_cancel(cl->cl_call, NULL);
		grpc_completion_queue_pluck(cl->cl_cq, (void *)(intptr_t)tag,
		    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		return -1;
	}
	return ev.success ? 1 : 0;
}

static int
send_request(struct cl *cl, const char *type, const char *version,
    const char *nonce, const char *error)
{
	Envoy__Service__Discovery__V3__DiscoveryRequest req =
	    ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
	Envoy__Config__Core__V3__Node node =
	    ENVOY__CONFIG__CORE__V3__NODE__INIT;
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	grpc_op		 op;
	uint8_t		*buf;
	size_t		 len;
	int		 rc;

	req.type_url = (char *)type;
	req.version_info = (char *)version;
	req.response_nonce = (char *)nonce;
	if (!cl->cl_sent_node) {
		node.id = (char *)cl->cl_node;
		node.cluster = (char *)"xds-client";
		req.node = &node;
		cl->cl_sent_node = 1;
	}
	if (error != NULL) {
		st.code = 3;
		st.message = (char *)error;
		req.error_detail = &st;
	}
	len = envoy__service__discovery__v3__discovery_request__get_packed_size(
	    &req);
	buf = xmalloc(len);
	envoy__service__discovery__v3__discovery_request__pack(&req, buf);
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = relay_msg_buffer(buf, len);
	rc = batch(cl, &op, 1, 2);
	grpc_byte_buffer_destroy(op.data.send_message.send_message);
	free(buf);
	return rc;
}

/* The next response, decoded; NULL at the end of the stream. */
static Envoy__Service__Discovery__V3__DiscoveryResponse *
recv_response(struct cl *cl, size_t *bytes)
{
	Envoy__Service__Discovery__V3__DiscoveryResponse *m;
	grpc_byte_buffer *bb = NULL;
	grpc_op		 op;
	uint8_t		*flat;
	size_t		 len;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &bb;
	if (batch(cl, &op, 1, 3) != 1 || bb == NULL)
		return NULL;
	flat = relay_msg_flatten(bb, &len);
	grpc_byte_buffer_destroy(bb);
	*bytes = len;
	m = envoy__service__discovery__v3__discovery_response__unpack(NULL,
	    len, flat);
	free(flat);
	return m;
}

/* A resource's name: field 1 of its payload, as in every xDS type. */
static int
resource_name(const Google__Protobuf__Any *a, char *buf, size_t len)
{
	const uint8_t	*p = a->value.data;
	size_t		 n;

	if (a->value.len < 2 || p[0] != ((1 << 3) | 2) || p[1] >= 0x80)
		return -1;
	n = p[1];
	if (n + 2 > a->value.len || n >= len)
		return -1;
	memcpy(buf, p + 2, n);
	buf[n] = '\0';
	return 0;
}

static int
answer(struct cl *cl, Envoy__Service__Discovery__V3__DiscoveryResponse *m,
    int *nacks)
{
	char	 name[256], err[300];
	size_t	 i;

	for (i = 0; i < m->n_resources; i++) {
		if (resource_name(m->resources[i], name, sizeof(name)) == 0 &&
		    strncmp(name, "reject", 6) == 0) {
			snprintf(err, sizeof(err), "rejected resource %s",
			    name);
			(*nacks)++;
			return send_request(cl, m->type_url, "", m->nonce, err);
		}
	}
	return send_request(cl, m->type_url, m->version_info, m->nonce, NULL);
}

static int
cmp64(const void *a, const void *b)
{
	int64_t	 x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	struct cl	 cl;
	Envoy__Service__Discovery__V3__DiscoveryResponse *m;
	const char	*target = NULL, *types[16];
	int		 ntypes = 0, i, want = 0, latency = 0, delay_ms = 0;
	int		 got = 0, nacks = 0, rc = 1;
	size_t		 bytes, total = 0;
	int64_t		 t0, t1, *lat = NULL;
	grpc_op		 ops[2];
	grpc_metadata_array md;
	grpc_channel_credentials *creds;
	grpc_arg	 arg;
	grpc_channel_args args;

	log_init();
	memset(&cl, 0, sizeof(cl));
	cl.cl_timeout_ms = 10000;
	cl.cl_node = "sidecar~127.0.0.1~xds-client.default~default.svc."
	    "cluster.local";
	for (i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : "";

		if (strcmp(argv[i], "--target") == 0)
			target = v, i++;
		else if (strcmp(argv[i], "--type") == 0 && ntypes < 16)
			types[ntypes++] = v, i++;
		else if (strcmp(argv[i], "--responses") == 0)
			want = atoi(v), i++;
		else if (strcmp(argv[i], "--timeout-ms") == 0)
			cl.cl_timeout_ms = atoi(v), i++;
		else if (strcmp(argv[i], "--read-delay-ms") == 0)
			delay_ms = atoi(v), i++;
		else if (strcmp(argv[i], "--latency") == 0)
			latency = atoi(v), i++;
		else if (strcmp(argv[i], "--node") == 0)
			cl.cl_node = v, i++;
		else if (strcmp(argv[i], "--quiet") == 0)
			cl.cl_quiet = 1;
		else {
			fprintf(stderr, "xds_client: unknown argument %s\n",
			    argv[i]);
			return EXIT_USAGE;
		}
	}
	if (target == NULL)
		return EXIT_USAGE;
	if (ntypes == 0) {
		types[ntypes++] = "type.googleapis.com/envoy.config.cluster.v3."
		    "Cluster";
		types[ntypes++] = "type.googleapis.com/envoy.config.listener."
		    "v3.Listener";
	}
	grpc_init();
	cl.cl_cq = grpc_completion_queue_create_for_pluck(NULL);
	creds = grpc_insecure_credentials_create();
	arg.type = GRPC_ARG_INTEGER;
	arg.key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	arg.value.integer = -1;
	args.num_args = 1;
	args.args = &arg;
	cl.cl_ch = grpc_channel_create(target, creds, &args);
	grpc_channel_credentials_release(creds);
	cl.cl_call = grpc_channel_create_call(cl.cl_ch, NULL,
	    GRPC_PROPAGATE_DEFAULTS, cl.cl_cq,
	    grpc_slice_from_static_string(RELAY_SOTW_METHOD), NULL,
	    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	grpc_metadata_array_init(&md);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
	if (batch(&cl, ops, 1, 1) != 1) {
		fprintf(stderr, "xds_client: cannot start the stream\n");
		goto out;
	}
	for (i = 0; i < ntypes; i++)
		send_request(&cl, types[i], "", "", NULL);
	ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[0].flags = 0;
	ops[0].data.recv_initial_metadata.recv_initial_metadata = &md;
	if (batch(&cl, ops, 1, 1) != 1) {
		fprintf(stderr, "xds_client: cannot start the stream\n");
		goto out;
	}
	t0 = now_us();
	if (latency > 0) {
		lat = xcalloc((size_t)latency, sizeof(*lat));
		if ((m = recv_response(&cl, &bytes)) == NULL)
			goto out;
		for (i = 0; i < latency; i++) {
			int64_t	 s = now_us();

			send_request(&cl, m->type_url, m->version_info,
			    m->nonce, NULL);
			envoy__service__discovery__v3__discovery_response__free_unpacked(
			    m, NULL);
			if ((m = recv_response(&cl, &bytes)) == NULL)
				break;
			lat[i] = now_us() - s;
			got++;
		}
		if (m != NULL)
			envoy__service__discovery__v3__discovery_response__free_unpacked(
			    m, NULL);
		if (got < latency) {
			fprintf(stderr, "xds_client: %d of %d round trips\n",
			    got, latency);
			goto out;
		}
		qsort(lat, (size_t)got, sizeof(*lat), cmp64);
		printf("round_trips=%d\np50_us=%lld\np99_us=%lld\n", got,
		    (long long)lat[got / 2], (long long)lat[got * 99 / 100]);
		rc = 0;
		goto out;
	}
	while (want == 0 || got < want) {
		if ((m = recv_response(&cl, &bytes)) == NULL)
			break;
		got++;
		total += bytes;
		if (!cl.cl_quiet)
			printf("response type=%s version=%s nonce=%s "
			    "resources=%zu bytes=%zu\n", m->type_url,
			    m->version_info, m->nonce, m->n_resources, bytes);
		fflush(stdout);
		if (delay_ms > 0)
			usleep((useconds_t)delay_ms * 1000);
		answer(&cl, m, &nacks);
		envoy__service__discovery__v3__discovery_response__free_unpacked(
		    m, NULL);
	}
	t1 = now_us();
	printf("responses=%d\nbytes=%zu\nnacks=%d\nseconds=%.6f\n"
	    "mib_per_s=%.2f\n", got, total, nacks, (double)(t1 - t0) / 1e6,
	    (double)total / (1 << 20) / ((double)(t1 - t0) / 1e6));
	rc = want == 0 || got >= want ? 0 : 1;
out:
	free(lat);
	grpc_call_cancel(cl.cl_call, NULL);
	grpc_call_unref(cl.cl_call);
	grpc_metadata_array_destroy(&md);
	grpc_channel_destroy(cl.cl_ch);
	grpc_completion_queue_shutdown(cl.cl_cq);
	while (grpc_completion_queue_pluck(cl.cl_cq, NULL,
	    gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	    GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cl.cl_cq);
	grpc_shutdown();
	return rc;
}
