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

#include "agent.h"

#define REQUEST_TIMEOUT_SECS	60

struct request_state {
	struct event_base	*req_base;
	struct http_result	 req_res;	/* a copy, hs_body dropped */
	int			 req_done;
	int			 req_write_error;
	int			 req_write_errno;
};

/* The answer's body goes to standard output as it arrives. */
static void
request_data(struct http_request *hr, struct evbuffer *in, void *arg)
{
	struct request_state	*rq = arg;

	(void)hr;
	while (evbuffer_get_length(in) > 0 && !rq->req_write_error) {
		if (evbuffer_write(in, 1) == -1 && errno != EINTR &&
		    errno != EAGAIN) {
			rq->req_write_error = 1;
			rq->req_write_errno = errno;
		}
	}
	evbuffer_drain(in, evbuffer_get_length(in));
}

static void
request_done(const struct http_result *res, void *arg)
{
	struct request_state	*rq = arg;

	rq->req_done = 1;
	rq->req_res = *res;
	rq->req_res.hs_body = NULL;
	rq->req_res.hs_headers = NULL;
	rq->req_res.hs_reason = NULL;
	event_base_loopbreak(rq->req_base);
}

static const struct flag request_flags[] = {
	{ .fl_name = "debug-port", .fl_type = FLAG_PORT, .fl_offset = 0 },
	{ NULL }
};

/*
 * Reads the command line: --debug-port into *port (which holds the
 * default), the method, path and body into pos (argv's words). Returns 0
 * to go on, 1 when --help was printed, -1 on a usage error (said).
 */
static int
request_parse(int argc, char **argv, int *port, const char **pos)
{
	struct flags	fs;
	char		err[512];
	int		i, rc = -1;

	memset(&fs, 0, sizeof(fs));
	fs.fs_usage = "pilot-agent request <method> <path> [<body>] [flags]";
	fs.fs_about = "Calls the proxy's admin API (or another local port) "
	    "and prints the answer.";
	fs.fs_table[0] = request_flags;
	fs.fs_base[0] = port;
	fs.fs_opts = FLAGS_GO_NAMES;
	if (flags_run(&fs, argc, argv, err, sizeof(err)) == -1)
		log_error("%s", err);
	else if (fs.fs_help) {
		flags_usage(&fs, stdout);
		rc = 1;
	} else if (fs.fs_nargs > 3)
		log_error("accepts at most 3 arg(s), received %d",
		    fs.fs_nargs);
	else if (fs.fs_nargs < 2)
		log_error("requires at least 2 arg(s), only received %d\n"
		    "usage: pilot-agent request <method> <path> [<body>] "
		    "[--debug-port port]", fs.fs_nargs);
	else {
		for (i = 0; i < fs.fs_nargs; i++)
			pos[i] = fs.fs_args[i];
		rc = 0;
	}
	flags_free(&fs);
	return rc;
}

/* argv[0] is "request". Returns the exit code. */
int
request_main(int argc, char **argv)
{
	struct request_state		 rq;
	struct http_request		*hr;
	const struct http_result	*res;
	const char			*pos[3] = { NULL, NULL, NULL }, *p;
	char				*path, hostport[32], err[256];
	long				 port;
	int				 debug_port = 15000, rc;

	if ((rc = request_parse(argc, argv, &debug_port, pos)) != 0)
		return rc == 1 ? 0 : EXIT_USAGE;
	rc = 1;
	port = debug_port;
	if (!http_method_valid(pos[0])) {
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
	if ((rq.req_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	hr = http_new(rq.req_base, pos[0], "127.0.0.1", (int)port, path,
	    REQUEST_TIMEOUT_SECS * CLOCK_SEC);
	snprintf(hostport, sizeof(hostport), "localhost:%ld", port);
	http_header(hr, "Host", hostport);
	if (pos[2] != NULL)
		http_body(hr, pos[2], strlen(pos[2]));
	http_callbacks(hr, request_data, request_done, &rq);
	if (http_start(hr, err, sizeof(err)) == -1) {
		/* Not started: still ours. */
		http_free(hr);
		log_error("%s http://localhost:%ld%s: %s", pos[0], port, path,
		    err);
		event_base_free(rq.req_base);
		free(path);
		return 1;
	}
	/* The client frees the request once it has called back. */
	event_base_dispatch(rq.req_base);
	res = &rq.req_res;
	if (!rq.req_done)
		log_error("%s http://localhost:%ld%s: no answer (is the proxy "
		    "running?)", pos[0], port, path);
	else if (res->hs_error == HTTP_ERR_MALFORMED && res->hs_code != 0)
		log_error("%s http://localhost:%ld%s: status code %d, but the "
		    "body is malformed (cut off after %llu bytes)", pos[0],
		    port, path, res->hs_code, res->hs_received);
	else if (res->hs_error != HTTP_ERR_NONE && res->hs_code != 0 &&
	    res->hs_length >= 0)
		log_error("%s http://localhost:%ld%s: status code %d, but the "
		    "body was cut off after %llu of %lld bytes", pos[0], port,
		    path, res->hs_code, res->hs_received, res->hs_length);
	else if (res->hs_error != HTTP_ERR_NONE && res->hs_code != 0)
		log_error("%s http://localhost:%ld%s: status code %d, but the "
		    "body was cut off after %llu bytes", pos[0], port, path,
		    res->hs_code, res->hs_received);
	else if (res->hs_error == HTTP_ERR_TIMEOUT)
		log_error("%s http://localhost:%ld%s: no answer within %d "
		    "seconds", pos[0], port, path, REQUEST_TIMEOUT_SECS);
	else if (res->hs_error != HTTP_ERR_NONE)
		log_error("%s http://localhost:%ld%s: no answer (is the proxy "
		    "running?)", pos[0], port, path);
	else if (res->hs_code < 200 || res->hs_code > 299)
		log_error("received unsuccessful status code %d", res->hs_code);
	else if (rq.req_write_error)
		log_error("writing the answer: %s",
		    strerror(rq.req_write_errno));
	else
		rc = 0;
	event_base_free(rq.req_base);
	free(path);
	return rc;
}
