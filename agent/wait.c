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
	struct http_request		*wt_http;	/* the try under way */
	struct event			*wt_try_ev;
	struct event			*wt_deadline_ev;
	struct timeval			 wt_period;
	int64_t				 wt_request_ms;	/* <= 0: no limit */
	char				 wt_last[512];
	int				 wt_expired;	/* deadline passed */
	int				 wt_code;	/* -1: still waiting */
};

static void	wait_schedule(struct wait_state *);

/* The command line: Istio's flags, Go ints but --url. */
struct wait_args {
	const char	*wp_url;
	int64_t		 wp_timeout;	/* seconds */
	int64_t		 wp_period;	/* milliseconds */
	int64_t		 wp_request;	/* milliseconds */
};

static const struct flag wait_flags[] = {
	{ .fl_name = "url", .fl_type = FLAG_TEXT,
	  .fl_offset = offsetof(struct wait_args, wp_url) },
	{ .fl_name = "timeoutSeconds", .fl_type = FLAG_INT64,
	  .fl_offset = offsetof(struct wait_args, wp_timeout) },
	{ .fl_name = "periodMillis", .fl_type = FLAG_INT64,
	  .fl_offset = offsetof(struct wait_args, wp_period) },
	{ .fl_name = "requestTimeoutMillis", .fl_type = FLAG_INT64,
	  .fl_offset = offsetof(struct wait_args, wp_request) },
	{ NULL }
};

/*
 * Reads the command line into wa, which holds the defaults. Returns 0 to go
 * on, 1 when --help was printed, -1 on a usage error (said).
 */
static int
wait_parse(int argc, char **argv, struct wait_args *wa)
{
	struct flags	fs;
	char		err[512];
	int		rc = -1;

	memset(&fs, 0, sizeof(fs));
	fs.fs_usage = "pilot-agent wait [flags]";
	fs.fs_about = "Waits until the URL answers 200; exits 0 then, 1 on "
	    "timeout.";
	fs.fs_table[0] = wait_flags;
	fs.fs_base[0] = wa;
	fs.fs_opts = FLAGS_GO_NAMES;
	if (flags_run(&fs, argc, argv, err, sizeof(err)) == -1)
		log_error("%s", err);
	else if (fs.fs_help) {
		flags_usage(&fs, stdout);
		rc = 1;
	} else if (fs.fs_nargs > 0)
		log_error("unknown command \"%s\" for \"pilot-agent wait\"",
		    fs.fs_args[0]);
	else
		rc = 0;
	flags_free(&fs);
	return rc;
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
	http_free(wt->wt_http);
	wt->wt_http = NULL;
}

static void
wait_response(const struct http_result *res, void *arg)
{
	struct wait_state	*wt = arg;

	/* The client frees the try when this returns. */
	wt->wt_http = NULL;
	if (wt->wt_code != -1)
		return;
	if (res->hs_error == HTTP_ERR_NONE && res->hs_code == 200) {
		log_info("Envoy is ready!");
		wt->wt_code = 0;
		event_base_loopbreak(wt->wt_base);
		return;
	}
	switch (res->hs_error) {
	case HTTP_ERR_NONE:
		snprintf(wt->wt_last, sizeof(wt->wt_last), "HTTP status code "
		    "%d", res->hs_code);
		break;
	case HTTP_ERR_TIMEOUT:
		snprintf(wt->wt_last, sizeof(wt->wt_last), "Get \"%s\": no "
		    "answer within %lld ms (--requestTimeoutMillis)",
		    wt->wt_url, (long long)wt->wt_request_ms);
		break;
	case HTTP_ERR_CLOSED:
	case HTTP_ERR_CUT:
		snprintf(wt->wt_last, sizeof(wt->wt_last), "Get \"%s\": the "
		    "connection closed before a whole answer", wt->wt_url);
		break;
	case HTTP_ERR_REFUSED:
		snprintf(wt->wt_last, sizeof(wt->wt_last), "Get \"%s\": "
		    "cannot connect (connection refused?)", wt->wt_url);
		break;
	case HTTP_ERR_CONNECT:
		snprintf(wt->wt_last, sizeof(wt->wt_last), "Get \"%s\": "
		    "cannot connect (%s)", wt->wt_url, res->hs_reason);
		break;
	default:
		snprintf(wt->wt_last, sizeof(wt->wt_last), "Get \"%s\": the "
		    "request failed (%s)", wt->wt_url, res->hs_reason);
		break;
	}
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
	int64_t			 limit = INT64_MAX;
	int			 port = evhttp_uri_get_port(wt->wt_uri);
	char			 err[256];

	(void)fd;
	(void)what;
	wait_end_try(wt);
	if (port == -1)
		port = 80;
	/* No limit is the longest one, which the deadline cuts short. */
	if (wt->wt_request_ms > 0)
		limit = wt->wt_request_ms > INT64_MAX / CLOCK_MSEC ? INT64_MAX :
		    wt->wt_request_ms * CLOCK_MSEC;
	wt->wt_http = http_new(wt->wt_base, "GET", wt->wt_host, port,
	    wt->wt_path, limit);
	/* Only the status matters: a long body is not waited for. */
	http_keep(wt->wt_http, 4096, 1);
	http_callbacks(wt->wt_http, NULL, wait_response, wt);
	if (http_start(wt->wt_http, err, sizeof(err)) == -1) {
		snprintf(wt->wt_last, sizeof(wt->wt_last), "Get \"%s\": %s",
		    wt->wt_url, err);
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
	if (wt->wt_http != NULL && wt->wt_request_ms > 0)
		return;
	if (wt->wt_http != NULL)
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
	struct wait_args	 wa = { "http://localhost:15021/healthz/ready",
				    60, 500, 500 };
	const char		*url;
	const char		*path, *query, *scheme, *host;
	size_t			 hlen;
	int64_t			 timeout, period, request;
	int			 rc;

	memset(&wt, 0, sizeof(wt));
	if ((rc = wait_parse(argc, argv, &wa)) != 0)
		return rc == 1 ? 0 : EXIT_USAGE;
	url = wa.wp_url;
	timeout = wa.wp_timeout;
	period = wa.wp_period;
	request = wa.wp_request;
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
	event_base_free(wt.wt_base);
	evhttp_uri_free(wt.wt_uri);
	free(wt.wt_host);
	free(wt.wt_path);
	return wt.wt_code == 0 ? 0 : 1;
}
