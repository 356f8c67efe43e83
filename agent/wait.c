/*
 * "pilot-agent wait": blocks until a URL (by default the proxy's readiness
 * listener, http://localhost:15021/healthz/ready) answers 200, as Istio's
 * "pilot-agent wait" does for a postStart hook that holds the application
 * back until the sidecar is ready. Every --periodMillis it makes one GET
 * with a --requestTimeoutMillis limit; it exits 0 once one answers 200, or
 * 1 when --timeoutSeconds have passed, saying what the last try got. As in
 * Istio, a try under way at the deadline is let finish, and its result is
 * the last one.
 *
 * The three flags are Go ints in Istio, and take the same range here.
 * Zero or less means: give up at once (--timeoutSeconds), try again at once
 * (--periodMillis), no limit but the deadline (--requestTimeoutMillis).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "agent.h"

/*
 * The longest wait given to libevent, ten years: it adds a timeout to the
 * current time, which a value near INT64_MAX seconds would overflow.
 */

struct wait_state {
	struct event_base		*wt_base;
	struct evhttp_uri		*wt_uri;
	const char			*wt_url;
	char				*wt_host;	/* without [ ] */
	char				*wt_path;
	struct evhttp_connection	*wt_evcon;	/* the try under way */
	struct event			*wt_try_ev;
	struct event			*wt_deadline_ev;
	struct timeval			 wt_period;
	int64_t				 wt_request_ms;	/* <= 0: no limit */
	char				 wt_last[512];
	int				 wt_error;	/* evhttp's, + 1 */
	int				 wt_expired;	/* deadline passed */
	int				 wt_code;	/* -1: still waiting */
};

static void	wait_schedule(struct wait_state *);

/* A Go int (64 bits), in decimal. */
static int
wait_int(const char *name, const char *v, int64_t *out)
{
	char		*end;
	long long	 n;

	errno = 0;
	n = strtoll(v, &end, 10);
	if (*v == '\0' || *v == ' ' || *v == '\t' || *end != '\0' ||
	    errno != 0) {
		log_error("invalid argument \"%s\" for \"--%s\" flag: not an "
		    "integer from %lld to %lld", v, name, (long long)INT64_MIN,
		    (long long)INT64_MAX);
		return -1;
	}
	*out = n;
	return 0;
}

/*
 * n units (unit of them a second) as a timeval, from 0 to the longest
 * timer (clock_tv); n may be any int64, as Go's int flags allow.
 */
static void
wait_tv(int64_t n, int64_t unit, struct timeval *tv)
{
	int64_t	per = CLOCK_SEC / unit;

	if (n <= 0)
		n = 0;
	*tv = clock_tv(n > INT64_MAX / per ? INT64_MAX : n * per);
}

static void
wait_end_try(struct wait_state *wt)
{
	if (wt->wt_evcon != NULL) {
		evhttp_connection_free(wt->wt_evcon);
		wt->wt_evcon = NULL;
	}
}

static void
wait_deferred_free(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evhttp_connection_free(arg);
}

static void
wait_error(enum evhttp_request_error error, void *arg)
{
	struct wait_state	*wt = arg;

	wt->wt_error = (int)error + 1;
}

static void
wait_response(struct evhttp_request *req, void *arg)
{
	struct wait_state		*wt = arg;
	struct evhttp_connection	*evcon = wt->wt_evcon;
	int				 code;

	/* The connection is freed from the loop, outside its callback. */
	wt->wt_evcon = NULL;
	event_base_once(wt->wt_base, -1, EV_TIMEOUT, wait_deferred_free, evcon,
	    NULL);
	if (wt->wt_code != -1)
		return;
	code = req != NULL ? evhttp_request_get_response_code(req) : 0;
	if (code == 200) {
		log_info("Envoy is ready!");
		wt->wt_code = 0;
		event_base_loopbreak(wt->wt_base);
		return;
	}
	if (code != 0)
		snprintf(wt->wt_last, sizeof(wt->wt_last), "HTTP status code "
		    "%d", code);
	else if (wt->wt_error == EVREQ_HTTP_TIMEOUT + 1)
		snprintf(wt->wt_last, sizeof(wt->wt_last), "Get \"%s\": no "
		    "answer within %lld ms (--requestTimeoutMillis)",
		    wt->wt_url, (long long)wt->wt_request_ms);
	else if (wt->wt_error == EVREQ_HTTP_EOF + 1)
		snprintf(wt->wt_last, sizeof(wt->wt_last), "Get \"%s\": the "
		    "connection closed before a whole answer", wt->wt_url);
	else if (wt->wt_error == 0)
		snprintf(wt->wt_last, sizeof(wt->wt_last), "Get \"%s\": "
		    "cannot connect (connection refused?)", wt->wt_url);
	else
		snprintf(wt->wt_last, sizeof(wt->wt_last), "Get \"%s\": the "
		    "request failed", wt->wt_url);
	log_debug("Not ready yet: %s", wt->wt_last);
	if (wt->wt_expired) {
		wt->wt_code = 1;
		event_base_loopbreak(wt->wt_base);
		return;
	}
	wait_schedule(wt);
}

static void
wait_try(evutil_socket_t fd, short what, void *arg)
{
	struct wait_state	*wt = arg;
	struct evhttp_request	*req;
	struct timeval		 tv;
	const char		*host = wt->wt_host;
	int			 port = evhttp_uri_get_port(wt->wt_uri);
	char			 hostport[300];

	(void)fd;
	(void)what;
	wait_end_try(wt);
	wt->wt_error = 0;
	if (port == -1)
		port = 80;
	wt->wt_evcon = evhttp_connection_base_new(wt->wt_base, NULL, host,
	    (unsigned short)port);
	if (wt->wt_evcon == NULL) {
		snprintf(wt->wt_last, sizeof(wt->wt_last), "cannot connect to "
		    "%s:%d", host, port);
		wait_schedule(wt);
		return;
	}
	/* No limit is the longest one, which the deadline cuts short. */
	wait_tv(wt->wt_request_ms > 0 ? wt->wt_request_ms : INT64_MAX, 1000,
	    &tv);
	evhttp_connection_set_timeout_tv(wt->wt_evcon, &tv);
	evhttp_connection_set_retries(wt->wt_evcon, 0);
	req = evhttp_request_new(wait_response, wt);
	evhttp_request_set_error_cb(req, wait_error);
	snprintf(hostport, sizeof(hostport), strchr(host, ':') != NULL ?
	    "[%s]:%d" : "%s:%d", host, port);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host",
	    hostport);
	evhttp_add_header(evhttp_request_get_output_headers(req),
	    "Connection", "close");
	if (evhttp_make_request(wt->wt_evcon, req, EVHTTP_REQ_GET,
	    wt->wt_path) == -1) {
		snprintf(wt->wt_last, sizeof(wt->wt_last), "cannot send a "
		    "request to %s", wt->wt_url);
		wait_end_try(wt);
		wait_schedule(wt);
	}
}

static void
wait_schedule(struct wait_state *wt)
{
	evtimer_add(wt->wt_try_ev, &wt->wt_period);
}

static void
wait_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct wait_state	*wt = arg;

	(void)fd;
	(void)what;
	wt->wt_expired = 1;
	/*
	 * A try under way ends by its own limit, and what it gets is the
	 * last error (or success). With no limit it is cut off here.
	 */
	if (wt->wt_evcon != NULL && wt->wt_request_ms > 0)
		return;
	if (wt->wt_evcon != NULL)
		snprintf(wt->wt_last, sizeof(wt->wt_last), "Get \"%s\": no "
		    "answer yet at the deadline", wt->wt_url);
	wt->wt_code = 1;
	event_base_loopbreak(wt->wt_base);
}

/* argv[0] is "wait". Returns the exit code. */
int
wait_main(int argc, char **argv)
{
	struct wait_state	 wt;
	struct timeval		 tv;
	const char		*url = "http://localhost:15021/healthz/ready";
	const char		*path, *query, *scheme, *host;
	size_t			 hlen;
	int64_t			 timeout = 60, period = 500, request = 500;
	int			 i;

	memset(&wt, 0, sizeof(wt));
	for (i = 1; i < argc; i++) {
		const char	*arg = argv[i], *name, *eq, *v;
		size_t		 len;

		if (arg[0] != '-') {
			log_error("unknown command \"%s\" for \"pilot-agent "
			    "wait\"", arg);
			return EXIT_USAGE;
		}
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			printf("usage: pilot-agent wait [flags]\n\n"
			    "Waits until the URL answers 200; exits 0 then, 1 on "
			    "timeout.\n\nflags:\n"
			    "  --url string                  (default \"%s\")\n"
			    "  --timeoutSeconds int          (default 60)\n"
			    "  --periodMillis int            (default 500)\n"
			    "  --requestTimeoutMillis int    (default 500)\n"
			    "  -h, --help                    print this help\n",
			    url);
			return 0;
		}
		name = arg + (arg[1] == '-' ? 2 : 1);
		eq = strchr(name, '=');
		len = eq != NULL ? (size_t)(eq - name) : strlen(name);
		if (eq != NULL)
			v = eq + 1;
		else if (i + 1 < argc)
			v = argv[++i];
		else {
			log_error("flag needs an argument: %s", arg);
			return EXIT_USAGE;
		}
#define IS(s)	(len == strlen(s) && strncmp(name, s, len) == 0)
		if (IS("url"))
			url = v;
		else if (IS("timeoutSeconds")) {
			if (wait_int("timeoutSeconds", v, &timeout) == -1)
				return EXIT_USAGE;
		} else if (IS("periodMillis")) {
			if (wait_int("periodMillis", v, &period) == -1)
				return EXIT_USAGE;
		} else if (IS("requestTimeoutMillis")) {
			if (wait_int("requestTimeoutMillis", v, &request) == -1)
				return EXIT_USAGE;
		} else {
			log_error("unknown flag: --%.*s", (int)len, name);
			return EXIT_USAGE;
		}
#undef IS
	}
	if ((wt.wt_uri = evhttp_uri_parse(url)) == NULL ||
	    (scheme = evhttp_uri_get_scheme(wt.wt_uri)) == NULL ||
	    strcasecmp(scheme, "http") != 0 ||
	    evhttp_uri_get_host(wt.wt_uri) == NULL) {
		log_error("invalid argument \"%s\" for \"--url\" flag: not an "
		    "http:// URL", url);
		if (wt.wt_uri != NULL)
			evhttp_uri_free(wt.wt_uri);
		return EXIT_USAGE;
	}
	/*
	 * evhttp keeps an IPv6 literal's brackets ("[::1]"), which the
	 * resolver does not take.
	 */
	host = evhttp_uri_get_host(wt.wt_uri);
	hlen = strlen(host);
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']')
		xasprintf(&wt.wt_host, "%.*s", (int)(hlen - 2), host + 1);
	else
		wt.wt_host = xstrdup(host);
	path = evhttp_uri_get_path(wt.wt_uri);
	query = evhttp_uri_get_query(wt.wt_uri);
	xasprintf(&wt.wt_path, "%s%s%s", path != NULL && *path != '\0' ? path :
	    "/", query != NULL ? "?" : "", query != NULL ? query : "");
	wt.wt_url = url;
	wt.wt_code = -1;
	wt.wt_request_ms = request;
	wait_tv(period, 1000, &wt.wt_period);
	snprintf(wt.wt_last, sizeof(wt.wt_last), "no attempt made");
	if ((wt.wt_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	wt.wt_try_ev = evtimer_new(wt.wt_base, wait_try, &wt);
	wt.wt_deadline_ev = evtimer_new(wt.wt_base, wait_deadline, &wt);
	wait_tv(timeout, 1, &tv);
	evtimer_add(wt.wt_deadline_ev, &tv);
	log_info("Waiting for Envoy proxy to be ready (timeout: %lld "
	    "seconds)...", (long long)timeout);
	wait_schedule(&wt);
	event_base_dispatch(wt.wt_base);
	if (wt.wt_code != 0)
		log_error("timeout waiting for Envoy proxy to become ready. "
		    "Last error: %s", wt.wt_last);
	wait_end_try(&wt);
	event_free(wt.wt_try_ev);
	event_free(wt.wt_deadline_ev);
	/* Runs the deferred frees still queued. */
	event_base_loop(wt.wt_base, EVLOOP_NONBLOCK);
	event_base_free(wt.wt_base);
	evhttp_uri_free(wt.wt_uri);
	free(wt.wt_host);
	free(wt.wt_path);
	return wt.wt_code == 0 ? 0 : 1;
}
