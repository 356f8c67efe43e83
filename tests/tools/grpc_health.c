/*
 * A gRPC health server for the probe tests, through gRPC core:
 *
 *   grpc_health PORT [SERVICE=STATUS ...]
 *
 * serves grpc.health.v1.Health/Check on 127.0.0.1:PORT. Each argument sets
 * the status (1 SERVING, 2 NOT_SERVING, 0 UNKNOWN) of a service name; the
 * empty name ("=1") is the server as a whole and defaults to SERVING. An
 * unknown service gets NOT_FOUND, any other method UNIMPLEMENTED, as
 * grpc-go's health server does. One call at a time is enough for tests.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>

#define MAX_SERVICES	16

static char	*names[MAX_SERVICES];
static int	 statuses[MAX_SERVICES];
static int	 nservices;

static void
wait_tag(grpc_completion_queue *cq, void *tag)
{
	grpc_event	ev;

	do {
		ev = grpc_completion_queue_next(cq,
		    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	} while (ev.type == GRPC_OP_COMPLETE && ev.tag != tag);
}

/* HealthCheckRequest.service (field 1); "" when absent. */
static void
decode_service(grpc_byte_buffer *bb, char *out, size_t len)
{
	grpc_byte_buffer_reader	 r;
	grpc_slice		 s;
	const uint8_t		*p;
	size_t			 n, i = 0, l;

	*out = '\0';
	if (bb == NULL)
		return;
	grpc_byte_buffer_reader_init(&r, bb);
	s = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	p = GRPC_SLICE_START_PTR(s);
	n = GRPC_SLICE_LENGTH(s);
	while (i + 2 <= n) {
		if (p[i] == 0x0a && p[i + 1] < 0x80) {
			l = p[i + 1];
			if (i + 2 + l <= n && l < len) {
				memcpy(out, p + i + 2, l);
				out[l] = '\0';
			}
			break;
		}
		i++;
	}
	grpc_slice_unref(s);
}

static void
serve_one(grpc_server *server, grpc_completion_queue *cq)
{
	grpc_call		*call = NULL;
	grpc_call_details	 details;
	grpc_metadata_array	 md;
	grpc_byte_buffer	*req = NULL, *resp = NULL;
	grpc_op			 ops[3];
	grpc_slice		 method, msg, status_details;
	grpc_status_code	 code = GRPC_STATUS_OK;
	int			 cancelled = 0, i, status = -1;
	char			 service[256];
	uint8_t			 out[2];

	grpc_call_details_init(&details);
	grpc_metadata_array_init(&md);
	if (grpc_server_request_call(server, &call, &details, &md, cq, cq,
	    (void *)1) != GRPC_CALL_OK)
		exit(1);
	wait_tag(cq, (void *)1);
	method = grpc_slice_from_static_string("/grpc.health.v1.Health/Check");
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_RECV_MESSAGE;
	ops[1].data.recv_message.recv_message = &req;
	grpc_call_start_batch(call, ops, 2, (void *)2, NULL);
	wait_tag(cq, (void *)2);
	if (!grpc_slice_eq(details.method, method))
		code = GRPC_STATUS_UNIMPLEMENTED;
	else {
		decode_service(req, service, sizeof(service));
		for (i = 0; i < nservices; i++) {
			if (strcmp(names[i], service) == 0)
				status = statuses[i];
		}
		if (status == -1 && *service == '\0')
			status = 1;
		if (status == -1)
			code = GRPC_STATUS_NOT_FOUND;
	}
	memset(ops, 0, sizeof(ops));
	i = 0;
	if (code == GRPC_STATUS_OK) {
		out[0] = 0x08;	/* field 1, varint */
		out[1] = (uint8_t)status;
		msg = grpc_slice_from_copied_buffer((const char *)out, 2);
		resp = grpc_raw_byte_buffer_create(&msg, 1);
		grpc_slice_unref(msg);
		ops[i].op = GRPC_OP_SEND_MESSAGE;
		ops[i++].data.send_message.send_message = resp;
	}
	status_details = grpc_slice_from_static_string(code ==
	    GRPC_STATUS_NOT_FOUND ? "unknown service" : "");
	ops[i].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[i].data.send_status_from_server.status = code;
	ops[i++].data.send_status_from_server.status_details =
	    &status_details;
	ops[i].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[i++].data.recv_close_on_server.cancelled = &cancelled;
	grpc_call_start_batch(call, ops, (size_t)i, (void *)3, NULL);
	wait_tag(cq, (void *)3);
	if (req != NULL)
		grpc_byte_buffer_destroy(req);
	if (resp != NULL)
		grpc_byte_buffer_destroy(resp);
	grpc_call_unref(call);
	grpc_call_details_destroy(&details);
	grpc_metadata_array_destroy(&md);
}

int
main(int argc, char **argv)
{
	grpc_server			*server;
	grpc_completion_queue		*cq;
	grpc_server_credentials		*creds;
	char				 addr[64], *eq;
	int				 i;

	if (argc < 2) {
		fprintf(stderr, "usage: grpc_health PORT [SERVICE=STATUS ...]\n");
		return 2;
	}
	for (i = 2; i < argc && nservices < MAX_SERVICES; i++) {
		if ((eq = strchr(argv[i], '=')) == NULL)
			return 2;
		*eq = '\0';
		names[nservices] = argv[i];
		statuses[nservices++] = atoi(eq + 1);
	}
	grpc_init();
	server = grpc_server_create(NULL, NULL);
	cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(server, cq, NULL);
	creds = grpc_insecure_server_credentials_create();
	snprintf(addr, sizeof(addr), "127.0.0.1:%s", argv[1]);
	if (grpc_server_add_http2_port(server, addr, creds) == 0) {
		fprintf(stderr, "grpc_health: cannot listen on %s\n", addr);
		return 1;
	}
	grpc_server_credentials_release(creds);
	grpc_server_start(server);
	fprintf(stderr, "grpc_health: serving on %s\n", addr);
	for (;;)
		serve_one(server, cq);
}
