/*
 * "pilot-agent request <METHOD> <PATH> [BODY] [--debug-port 15000]": one
 * HTTP request to the proxy's admin API on localhost (or, with
 * --debug-port, another local port such as the agent's status port), as
 * Istio's "pilot-agent request" does for operators inside the container.
 * The answer's body goes to standard output as it arrives; the exit code is
 * 0 for a 2xx answer, 1 otherwise (with the reason on standard error), 2
 * for a usage error.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "agent.h"

#define REQUEST_TIMEOUT_SECS	60

struct request_state {
	struct event_base	*rq_base;
	int			 rq_code;	/* 0: no answer */
	int			 rq_head_code;	/* the status line's */
	int			 rq_error;	/* evhttp's, + 1 */
	int			 rq_done;
	int			 rq_write_error;
	int			 rq_write_errno;
	long long		 rq_length;	/* Content-Length, -1: none */
	unsigned long long	 rq_got;	/* body bytes received */
};

static const struct {
	const char		*name;
	enum evhttp_cmd_type	 cmd;
} request_methods[] = {
	{ "GET", EVHTTP_REQ_GET },
	{ "POST", EVHTTP_REQ_POST },
	{ "PUT", EVHTTP_REQ_PUT },
	{ "DELETE", EVHTTP_REQ_DELETE },
	{ "HEAD", EVHTTP_REQ_HEAD },
	{ "OPTIONS", EVHTTP_REQ_OPTIONS },
	{ "PATCH", EVHTTP_REQ_PATCH },
};

static void
request_chunk(struct evhttp_request *req, void *arg)
{
	struct request_state	*rq = arg;
	struct evbuffer		*in = evhttp_request_get_input_buffer(req);

	rq->rq_got += evbuffer_get_length(in);
	while (evbuffer_get_length(in) > 0 && !rq->rq_write_error) {
		if (evbuffer_write(in, 1) == -1 && errno != EINTR &&
		    errno != EAGAIN) {
			rq->rq_write_error = 1;
			rq->rq_write_errno = errno;
		}
	}
	evbuffer_drain(in, evbuffer_get_length(in));
}

/*
 * The answer's head: kept, because when its body then fails, evhttp ends
 * the request without it (the status would be lost).
 */
static int
request_head(struct evhttp_request *req, void *arg)
{
	struct request_state	*rq = arg;
	const char		*v;
	char			*end;

	rq->rq_head_code = evhttp_request_get_response_code(req);
	v = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Length");
	rq->rq_length = -1;
	if (v != NULL) {
		errno = 0;
		rq->rq_length = strtoll(v, &end, 10);
		if (*v == '\0' || *end != '\0' || errno != 0)
			rq->rq_length = -1;
	}
	return 0;
}

static void
request_error(enum evhttp_request_error error, void *arg)
{
	struct request_state	*rq = arg;

	rq->rq_error = (int)error + 1;
}

static void
request_done(struct evhttp_request *req, void *arg)
{
	struct request_state	*rq = arg;

	rq->rq_done = 1;
	if (req != NULL) {
		rq->rq_code = evhttp_request_get_response_code(req);
		request_chunk(req, rq);
	}
	event_base_loopbreak(rq->rq_base);
}

/* argv[0] is "request". Returns the exit code. */
int
request_main(int argc, char **argv)
{
	struct request_state		 rq;
	struct evhttp_connection	*evcon;
	struct evhttp_request		*req;
	enum evhttp_cmd_type		 cmd = EVHTTP_REQ_GET;
	const char			*pos[3] = { NULL, NULL, NULL }, *p;
	char				*path, *end, hostport[32];
	long				 port = 15000;
	int				 npos = 0, i, found = 0, rc = 1;
	size_t				 m;

	for (i = 1; i < argc; i++) {
		const char *arg = argv[i], *v = NULL;

		if (strncmp(arg, "--debug-port", 12) == 0 &&
		    (arg[12] == '\0' || arg[12] == '=')) {
			if (arg[12] == '=')
				v = arg + 13;
			else if (i + 1 < argc)
				v = argv[++i];
			if (v == NULL) {
				log_error("flag needs an argument: "
				    "--debug-port");
				return EXIT_USAGE;
			}
			errno = 0;
			port = strtol(v, &end, 10);
			if (*v == '\0' || *end != '\0' || errno != 0 ||
			    port < 1 || port > 65535) {
				log_error("invalid argument \"%s\" for "
				    "\"--debug-port\" flag: not a port", v);
				return EXIT_USAGE;
			}
			continue;
		}
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			printf("usage: pilot-agent request <method> <path> "
			    "[<body>] [flags]\n\n"
			    "Calls the proxy's admin API (or another local port) "
			    "and prints the answer.\n\nflags:\n"
			    "  --debug-port port             (default 15000)\n"
			    "  -h, --help                    print this help\n");
			return 0;
		}
		if (arg[0] == '-' && arg[1] != '\0') {
			log_error("unknown flag: %s", arg);
			return EXIT_USAGE;
		}
		if (npos == 3) {
			log_error("accepts at most 3 arg(s), received %d",
			    npos + 1);
			return EXIT_USAGE;
		}
		pos[npos++] = arg;
	}
	if (npos < 2) {
		log_error("requires at least 2 arg(s), only received %d\n"
		    "usage: pilot-agent request <method> <path> [<body>] "
		    "[--debug-port port]", npos);
		return EXIT_USAGE;
	}
	for (m = 0; m < sizeof(request_methods) / sizeof(request_methods[0]);
	    m++) {
		if (strcasecmp(pos[0], request_methods[m].name) == 0) {
			cmd = request_methods[m].cmd;
			found = 1;
		}
	}
	if (!found) {
		log_error("invalid method \"%s\"", pos[0]);
		return EXIT_USAGE;
	}
	if (strpbrk(pos[1], " \t\r\n") != NULL) {
		log_error("invalid path \"%s\"", pos[1]);
		return EXIT_USAGE;
	}
	for (p = pos[1]; *p == '/'; p++)
		;
	xasprintf(&path, "/%s", p);

	memset(&rq, 0, sizeof(rq));
	if ((rq.rq_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	evcon = evhttp_connection_base_new(rq.rq_base, NULL, "127.0.0.1",
	    (unsigned short)port);
	if (evcon == NULL)
		fatalx("evhttp_connection_base_new");
	evhttp_connection_set_timeout(evcon, REQUEST_TIMEOUT_SECS);
	evhttp_connection_set_retries(evcon, 0);
	req = evhttp_request_new(request_done, &rq);
	evhttp_request_set_chunked_cb(req, request_chunk);
	evhttp_request_set_header_cb(req, request_head);
	evhttp_request_set_error_cb(req, request_error);
	snprintf(hostport, sizeof(hostport), "localhost:%ld", port);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host",
	    hostport);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Connection", "close");
	if (pos[2] != NULL)
		evbuffer_add(evhttp_request_get_output_buffer(req), pos[2],
		    strlen(pos[2]));
	if (evhttp_make_request(evcon, req, cmd, path) == 0)
		event_base_dispatch(rq.rq_base);
	if (rq.rq_code == 0 && rq.rq_head_code != 0 &&
	    rq.rq_error == EVREQ_HTTP_DATA_TOO_LONG + 1)
		log_error("%s http://localhost:%ld%s: status code %d, but the "
		    "body is too large (cut off after %llu bytes)", pos[0],
		    port, path, rq.rq_head_code, rq.rq_got);
	else if (rq.rq_code == 0 && rq.rq_head_code != 0 &&
	    rq.rq_length >= 0)
		log_error("%s http://localhost:%ld%s: status code %d, but the "
		    "body was cut off after %llu of %lld bytes", pos[0], port,
		    path, rq.rq_head_code, rq.rq_got, rq.rq_length);
	else if (rq.rq_code == 0 && rq.rq_head_code != 0)
		log_error("%s http://localhost:%ld%s: status code %d, but the "
		    "body was cut off after %llu bytes", pos[0], port, path,
		    rq.rq_head_code, rq.rq_got);
	else if (rq.rq_code == 0 && rq.rq_error == EVREQ_HTTP_TIMEOUT + 1)
		log_error("%s http://localhost:%ld%s: no answer within %d "
		    "seconds", pos[0], port, path, REQUEST_TIMEOUT_SECS);
	else if (rq.rq_code == 0)
		log_error("%s http://localhost:%ld%s: no answer (is the proxy "
		    "running?)", pos[0], port, path);
	else if (rq.rq_code < 200 || rq.rq_code > 299)
		log_error("received unsuccessful status code %d", rq.rq_code);
	else if (rq.rq_write_error)
		log_error("writing the answer: %s",
		    strerror(rq.rq_write_errno));
	else
		rc = 0;
	evhttp_connection_free(evcon);
	event_base_free(rq.rq_base);
	free(path);
	return rc;
}
