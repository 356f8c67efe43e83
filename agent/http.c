/*
 * The agent's one HTTP/1.1 client, over libevent's evhttp: the supervisor's
 * requests to the proxy's admin API (admin.c), the status server's
 * readiness checks, metrics scrapes and application probes (status/), and
 * the "wait" and "request" subcommands; in the tests, also the Envoy
 * stand-in's requests to its clusters (tests/envoy-emu/upstream.c). One
 * request per connection, with "Connection: close" (unless http_keepalive):
 * the admin port passes from one proxy epoch to the next during a hot
 * restart, and a kept-alive connection would go on talking to the old one.
 *
 * A request is made with http_new, set up (headers, body, TLS, how much
 * of the body to keep, a streaming data callback), and started. It ends
 * exactly once: its done callback runs, from the event loop and never
 * from inside http_start, with the status, the headers, the body kept and
 * an error in words; the client frees the request when that callback
 * returns. Or its owner calls http_free first, and no callback runs.
 *
 * The lifetime trap, and the one way out of it. evhttp calls its request,
 * header, chunk and error callbacks from inside its own code, and goes on
 * using the connection after they return (evhttp_connection_done frees
 * the request and may reset the connection after the request callback;
 * evhttp_read_body drains the input buffer after the chunk callback). So
 * freeing the connection from inside any of them is a use after free.
 * libevent's own answer, evhttp_connection_free_on_completion, covers only
 * a request that completed: after a failed connect 2.1 calls back and
 * keeps the connection. Here the connection is always the client's, and
 * it is freed in exactly two places (besides a failed http_start, before
 * evhttp has it): in hr_ev's callback, which runs from the top of the
 * event loop with no evhttp code on the stack, and in http_free when it is
 * called from outside this request's callbacks. The evhttp callbacks only
 * record what happened and make hr_ev active; the done callback runs from
 * hr_ev after the connection is gone. The only code of the owner that runs
 * with evhttp on the stack is the data callback, and http_free from there
 * becomes the same deferred end (HTTP_ENDING, hr_ev active), without a
 * done callback. The connect callback runs from an event of its own
 * (hr_connect_ev), also at the top of the loop.
 *
 * evhttp 2.1 tells its user nothing when the connection comes up; what
 * it does then, and only then, is write the request into the connection's
 * output buffer (evhttp_request_dispatch). A callback on that buffer
 * (hr_out_cb) sees the first bytes added, which is the moment the
 * connection (TCP, and TLS) is up and the request goes out on it.
 *
 * The timeout is for the whole request, from http_start to the end of the
 * body, as Go's http.Client.Timeout; hr_ev is also its timer. Its clock
 * stops while the owner pauses reading (http_pause), so a slow reader on
 * our side never times out the peer it holds back.
 *
 * With http_tls the request goes over TLS: evhttp is given an OpenSSL
 * bufferevent, which makes the handshake on the same event base before
 * evhttp writes the request. As Istio's prober (Go's InsecureSkipVerify),
 * the peer's certificate is not verified: the callers ask whether an
 * application answers, and its certificate is often self-signed or names
 * a service rather than the pod's address.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "agent.h"

enum http_stage {
	HTTP_NEW,		/* being set up; http_free frees at once */
	HTTP_RUNNING,		/* started: evhttp's callbacks are live */
	HTTP_ENDING,		/* the outcome is set, hr_ev is active */
	HTTP_DONE		/* inside the done callback */
};

struct http_request {
	struct event_base	*hr_base;
	struct evhttp_connection *hr_evcon;	/* NULL: not started, or freed */
	struct event		*hr_ev;		/* the timeout, and the end */
	enum http_stage		 hr_stage;
	char			*hr_method;
	char			*hr_host;
	int			 hr_port;
	char			*hr_path;
	struct evkeyvalq	 hr_headers;	/* to send */
	struct evbuffer		*hr_body;	/* to send, NULL: none */
	SSL_CTX			*hr_tls;	/* NULL: plain; not ours */
	int			 hr_keepalive;	/* no "Connection: close" */
	int64_t			 hr_timeout;	/* ns */
	int64_t			 hr_deadline;	/* monotonic ns, running */
	int64_t			 hr_left;	/* ns, while paused */
	int			 hr_paused;
	size_t			 hr_read_size;	/* 0: libevent's */
	size_t			 hr_keep;	/* body kept, 0: all */
	int			 hr_keep_first;	/* past hr_keep: cut */
	http_data_cb		 hr_data_cb;
	http_done_cb		 hr_done_cb;
	http_connect_cb		 hr_connect_cb;
	void			*hr_arg;
	struct event		*hr_connect_ev;	/* calls hr_connect_cb */
	struct evbuffer_cb_entry *hr_out_cb;	/* until the request goes out */
	int			 hr_in_data;	/* in the data callback */
	int			 hr_cancelled;	/* freed from there */
	int			 hr_connected;	/* TCP (and TLS) was up */
	int			 hr_evhttp_error; /* evhttp's error + 1 */
	struct http_result	 hr_res;
	struct evkeyvalq	 hr_in_headers;	/* the response's */
	char			 hr_reason[320];
	char			 hr_tls_reason[128]; /* OpenSSL's, or "" */
};

static const struct {
	const char		*hm_name;
	enum evhttp_cmd_type	 hm_cmd;
} http_methods[] = {
	{ "GET", EVHTTP_REQ_GET },
	{ "POST", EVHTTP_REQ_POST },
	{ "PUT", EVHTTP_REQ_PUT },
	{ "DELETE", EVHTTP_REQ_DELETE },
	{ "HEAD", EVHTTP_REQ_HEAD },
	{ "OPTIONS", EVHTTP_REQ_OPTIONS },
	{ "PATCH", EVHTTP_REQ_PATCH },
};

static void	http_end_cb(evutil_socket_t, short, void *);
static void	http_connected_cb(evutil_socket_t, short, void *);

/* The evhttp command of a method name (any case); -1 if unknown. */
static int
http_method_cmd(const char *method, enum evhttp_cmd_type *cmd)
{
	size_t	i;

	for (i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]); i++) {
		if (strcasecmp(method, http_methods[i].hm_name) == 0) {
			*cmd = http_methods[i].hm_cmd;
			return 0;
		}
	}
	return -1;
}

/* 1 when the client can send this method. */
int
http_method_valid(const char *method)
{
	enum evhttp_cmd_type	cmd;

	return http_method_cmd(method, &cmd) == 0;
}

/*
 * A request of method to host (a name, or an IPv4 or IPv6 literal without
 * brackets) and port, for path (with its query). timeout is for the whole
 * request in nanoseconds; 0 or less: none but libevent's longest timer.
 */
struct http_request *
http_new(struct event_base *base, const char *method, const char *host,
    int port, const char *path, int64_t timeout)
{
	struct http_request	*hr;

	hr = xcalloc(1, sizeof(*hr));
	hr->hr_base = base;
	hr->hr_method = xstrdup(method);
	hr->hr_host = xstrdup(host);
	hr->hr_port = port;
	hr->hr_path = xstrdup(path);
	hr->hr_timeout = timeout > 0 ? timeout : INT64_MAX;
	TAILQ_INIT(&hr->hr_headers);
	TAILQ_INIT(&hr->hr_in_headers);
	if ((hr->hr_ev = evtimer_new(base, http_end_cb, hr)) == NULL)
		fatalx("evtimer_new");
	hr->hr_res.hs_body = evbuffer_new();
	hr->hr_res.hs_headers = &hr->hr_in_headers;
	hr->hr_res.hs_length = -1;
	hr->hr_res.hs_reason = "";
	return hr;
}

/*
 * Sets a request header, replacing one of the same name. Without a Host
 * header the client sends "host:port"; "Connection: close" is always sent.
 */
void
http_header(struct http_request *hr, const char *name, const char *value)
{
	evhttp_remove_header(&hr->hr_headers, name);
	evhttp_add_header(&hr->hr_headers, name, value);
}

/*
 * Adds a request header after any of the same name: a proxy forwarding a
 * request passes repeated header lines on as they came.
 */
void
http_header_add(struct http_request *hr, const char *name, const char *value)
{
	evhttp_add_header(&hr->hr_headers, name, value);
}

/*
 * Sends no "Connection: close", as a client that pools its connections
 * (a proxy's request upstream) does not: the server may keep the
 * connection open after its answer. The client still closes it once the
 * response is read, and takes a body without a length up to the close.
 */
void
http_keepalive(struct http_request *hr)
{
	hr->hr_keepalive = 1;
}

/* The request's body (copied), sent with its Content-Length. */
void
http_body(struct http_request *hr, const void *data, size_t len)
{
	if (hr->hr_body == NULL)
		hr->hr_body = evbuffer_new();
	evbuffer_add(hr->hr_body, data, len);
}

/* The request goes over TLS with this context (NULL: plain HTTP). */
void
http_tls(struct http_request *hr, struct ssl_ctx_st *ctx)
{
	hr->hr_tls = ctx;
}

/*
 * Without a data callback the body is kept for the done callback: all of
 * it (max 0), or at most max bytes. Past max the request ends early: as a
 * success with the first max bytes and hs_capped set when first is 1 (as
 * a prober that reads only so much), else as HTTP_ERR_TOO_LARGE.
 */
void
http_keep(struct http_request *hr, size_t max, int first)
{
	hr->hr_keep = max;
	hr->hr_keep_first = first;
}

/*
 * Lets one read take up to size bytes (libevent's default is 16 KiB), for
 * a large streamed response: fewer, larger steps through the loop.
 */
void
http_read_size(struct http_request *hr, size_t size)
{
	hr->hr_read_size = size;
}

/*
 * data, when not NULL, gets the body as it arrives, in evhttp's buffer:
 * it takes what it wants, the rest is dropped, and nothing is kept for
 * done. done is called once at the end, unless the request is freed.
 */
void
http_callbacks(struct http_request *hr, http_data_cb data, http_done_cb done,
    void *arg)
{
	hr->hr_data_cb = data;
	hr->hr_done_cb = done;
	hr->hr_arg = arg;
}

/*
 * connect, when not NULL, is called once, from the event loop, when the
 * connection (TCP, and TLS) is up and the request goes out on it; never
 * after the done callback or http_free, and never for a request that
 * could not connect. It gets http_callbacks' argument.
 */
void
http_on_connect(struct http_request *hr, http_connect_cb connect)
{
	hr->hr_connect_cb = connect;
	if (connect != NULL && hr->hr_connect_ev == NULL &&
	    (hr->hr_connect_ev = event_new(hr->hr_base, -1, 0,
	    http_connected_cb, hr)) == NULL)
		fatalx("event_new");
}

/*
 * The one TLS client context of the agent's HTTPS requests; its owner
 * frees it with http_tls_free once it starts no more requests with it
 * (each connection holds a reference of its own). The lowest version is
 * TLS 1.2, Go's default for a client; the peer is not verified (above).
 */
struct ssl_ctx_st *
http_tls_new(char *err, size_t errlen)
{
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		snprintf(err, errlen, "cannot make a TLS context: %s",
		    ERR_reason_error_string(ERR_get_error()));
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		snprintf(err, errlen, "cannot set the TLS version: %s",
		    ERR_reason_error_string(ERR_get_error()));
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

void
http_tls_free(struct ssl_ctx_st *ctx)
{
	SSL_CTX_free(ctx);
}

/* (Re)arms the timeout to fire after left nanoseconds. */
static void
http_clock(struct http_request *hr, int64_t left)
{
	struct timeval	tv;
	int64_t		now = clock_now_ns();

	if (left < 0)
		left = 0;
	hr->hr_deadline = left > INT64_MAX - now ? INT64_MAX : now + left;
	tv = clock_tv(left);
	evtimer_add(hr->hr_ev, &tv);
}

/*
 * Keeps OpenSSL's reason a TLS connection failed. The bufferevent keeps
 * its own queue of errors, so this reads nothing left behind by another
 * connection. libevent also queues SSL_get_error's bare code (of no
 * library), which says nothing evhttp's error does not; it is skipped.
 */
static void
http_tls_reason(struct http_request *hr)
{
	struct bufferevent	*bev;
	unsigned long		 e, found = 0;

	if (hr->hr_tls == NULL || hr->hr_evcon == NULL)
		return;
	bev = evhttp_connection_get_bufferevent(hr->hr_evcon);
	while ((e = bufferevent_get_openssl_error(bev)) != 0) {
		if (found == 0 && ERR_GET_LIB(e) != 0)
			found = e;
	}
	if (found == 0 || hr->hr_tls_reason[0] != '\0')
		return;
	if (ERR_reason_error_string(found) != NULL)
		snprintf(hr->hr_tls_reason, sizeof(hr->hr_tls_reason), "%s",
		    ERR_reason_error_string(found));
	else
		ERR_error_string_n(found, hr->hr_tls_reason,
		    sizeof(hr->hr_tls_reason));
}

/* Sets the outcome of a running request; the first one set wins. */
static void
http_outcome(struct http_request *hr, enum http_error error,
    const char *reason)
{
	hr->hr_stage = HTTP_ENDING;
	hr->hr_res.hs_error = error;
	snprintf(hr->hr_reason, sizeof(hr->hr_reason), "%s", reason);
}

/*
 * Sets the outcome and ends the request from the top of the loop. Safe
 * from anywhere, evhttp's callbacks included: it frees nothing.
 */
static void
http_finish(struct http_request *hr, enum http_error error,
    const char *reason)
{
	if (hr->hr_stage != HTTP_RUNNING)
		return;
	http_outcome(hr, error, reason);
	/* Activating a pending timer runs it once, now, and deletes it. */
	event_active(hr->hr_ev, EV_TIMEOUT, 0);
}

/* Appends OpenSSL's reason to the error's text, when TLS was the cause. */
static void
http_reason_tls(struct http_request *hr)
{
	size_t	n = strlen(hr->hr_reason);

	if (hr->hr_res.hs_error == HTTP_ERR_NONE ||
	    hr->hr_tls_reason[0] == '\0')
		return;
	snprintf(hr->hr_reason + n, sizeof(hr->hr_reason) - n, " (TLS: %s)",
	    hr->hr_tls_reason);
}

static void
http_evcon_free(struct http_request *hr)
{
	if (hr->hr_evcon == NULL)
		return;
	/* The close callback would only tell us what no longer matters. */
	evhttp_connection_set_closecb(hr->hr_evcon, NULL, NULL);
	evhttp_connection_free(hr->hr_evcon);
	hr->hr_evcon = NULL;
}

static void
http_destroy(struct http_request *hr)
{
	http_evcon_free(hr);
	event_free(hr->hr_ev);
	if (hr->hr_connect_ev != NULL)
		event_free(hr->hr_connect_ev);
	evhttp_clear_headers(&hr->hr_headers);
	evhttp_clear_headers(&hr->hr_in_headers);
	if (hr->hr_body != NULL)
		evbuffer_free(hr->hr_body);
	evbuffer_free(hr->hr_res.hs_body);
	free(hr->hr_method);
	free(hr->hr_host);
	free(hr->hr_path);
	free(hr);
}

/*
 * The end of every started request, from the top of the loop: no evhttp
 * code is on the stack, so the connection can go. Fired as a timer, it is
 * the timeout.
 */
static void
http_end_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_request	*hr = arg;

	(void)fd;
	(void)what;
	if (hr->hr_stage == HTTP_RUNNING)
		http_outcome(hr, HTTP_ERR_TIMEOUT, "timeout");
	if (hr->hr_res.hs_error != HTTP_ERR_NONE)
		http_tls_reason(hr);
	http_evcon_free(hr);
	if (hr->hr_cancelled || hr->hr_done_cb == NULL) {
		http_destroy(hr);
		return;
	}
	http_reason_tls(hr);
	hr->hr_res.hs_reason = hr->hr_reason;
	hr->hr_stage = HTTP_DONE;
	hr->hr_done_cb(&hr->hr_res, hr->hr_arg);
	http_destroy(hr);
}

/*
 * The connection is up (see the top of the file). The owner hears of it
 * from the top of the loop, where it may free the request.
 */
static void
http_out_cb(struct evbuffer *out, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct http_request	*hr = arg;

	if (info->n_added == 0)
		return;
	/* evbuffer_run_callbacks allows a callback to remove itself. */
	evbuffer_remove_cb_entry(out, hr->hr_out_cb);
	hr->hr_out_cb = NULL;
	event_active(hr->hr_connect_ev, EV_WRITE, 0);
}

static void
http_connected_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_request	*hr = arg;

	(void)fd;
	(void)what;
	/* Also when the outcome is set but done has not run yet. */
	if ((hr->hr_stage == HTTP_RUNNING || hr->hr_stage == HTTP_ENDING) &&
	    !hr->hr_cancelled)
		hr->hr_connect_cb(hr, hr->hr_arg);
}

/* The body as it arrives: to the data callback, or kept. */
static void
http_take(struct http_request *hr, struct evbuffer *in)
{
	struct http_result	*res = &hr->hr_res;
	size_t			 len, kept, room;
	char			 why[64];

	len = evbuffer_get_length(in);
	if (hr->hr_stage != HTTP_RUNNING || len == 0)
		return;
	res->hs_received += len;
	if (hr->hr_data_cb != NULL) {
		hr->hr_in_data = 1;
		hr->hr_data_cb(hr, in, hr->hr_arg);
		hr->hr_in_data = 0;
		return;
	}
	kept = evbuffer_get_length(res->hs_body);
	if (hr->hr_keep == 0 || kept + len <= hr->hr_keep) {
		evbuffer_add_buffer(res->hs_body, in);
		return;
	}
	if (!hr->hr_keep_first) {
		snprintf(why, sizeof(why), "response body larger than %zu "
		    "bytes", hr->hr_keep);
		http_finish(hr, HTTP_ERR_TOO_LARGE, why);
		return;
	}
	/* Keep the first bytes, as a reader stopping there would. */
	room = hr->hr_keep > kept ? hr->hr_keep - kept : 0;
	evbuffer_remove_buffer(in, res->hs_body, room);
	res->hs_capped = 1;
	http_finish(hr, HTTP_ERR_NONE, "");
}

static int
http_header_cb(struct evhttp_request *req, void *arg)
{
	struct http_request	*hr = arg;
	struct evkeyval		*kv;
	const char		*v;
	char			*end;
	long long		 n;

	/* A "100 Continue" comes first, then the real answer. */
	hr->hr_res.hs_code = evhttp_request_get_response_code(req);
	evhttp_clear_headers(&hr->hr_in_headers);
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
		evhttp_add_header(&hr->hr_in_headers, kv->key, kv->value);
	hr->hr_res.hs_length = -1;
	if ((v = evhttp_find_header(&hr->hr_in_headers, "Content-Length")) !=
	    NULL) {
		errno = 0;
		n = strtoll(v, &end, 10);
		if (*v != '\0' && *end == '\0' && errno == 0 && n >= 0)
			hr->hr_res.hs_length = n;
	}
	return 0;
}

static void
http_chunk_cb(struct evhttp_request *req, void *arg)
{
	http_take(arg, evhttp_request_get_input_buffer(req));
}

static void
http_error_cb(enum evhttp_request_error error, void *arg)
{
	struct http_request	*hr = arg;

	hr->hr_evhttp_error = (int)error + 1;
	/* The connection is still ours, and alive, during this call. */
	http_tls_reason(hr);
}

/*
 * evhttp resets a connection that was up (state past connecting) through
 * this callback, before it reports a failure: what tells "closed before an
 * answer" from "could not connect", which evhttp reports alike.
 */
static void
http_close_cb(struct evhttp_connection *evcon, void *arg)
{
	struct http_request	*hr = arg;

	(void)evcon;
	hr->hr_connected = 1;
}

/* What a failure evhttp reported means, in words. */
static void
http_failed(struct http_request *hr)
{
	struct http_result	*res = &hr->hr_res;
	struct bufferevent	*bev;
	char			 why[300];
	int			 dns;

	switch (hr->hr_evhttp_error - 1) {
	case EVREQ_HTTP_TIMEOUT:
		http_finish(hr, HTTP_ERR_TIMEOUT, "timeout");
		return;
	case EVREQ_HTTP_INVALID_HEADER:
		http_finish(hr, HTTP_ERR_MALFORMED, "malformed response");
		return;
	case EVREQ_HTTP_DATA_TOO_LONG:
		/*
		 * evhttp's name for a corrupt chunk: no body size limit is
		 * set on the connection, so no body is ever too long to it.
		 */
		http_finish(hr, HTTP_ERR_MALFORMED, "malformed response body");
		return;
	case EVREQ_HTTP_BUFFER_ERROR:
		http_finish(hr, HTTP_ERR_CLOSED, "connection error");
		return;
	default:
		break;
	}
	if (res->hs_code != 0 && res->hs_length >= 0) {
		snprintf(why, sizeof(why), "the body was cut off after %llu of "
		    "%lld bytes", res->hs_received, res->hs_length);
		http_finish(hr, HTTP_ERR_CUT, why);
	} else if (res->hs_code != 0) {
		snprintf(why, sizeof(why), "the body was cut off after %llu "
		    "bytes", res->hs_received);
		http_finish(hr, HTTP_ERR_CUT, why);
	} else if (hr->hr_connected)
		http_finish(hr, HTTP_ERR_CLOSED, "connection closed before the "
		    "response");
	else {
		bev = evhttp_connection_get_bufferevent(hr->hr_evcon);
		if ((dns = bufferevent_socket_get_dns_error(bev)) != 0) {
			snprintf(why, sizeof(why), "cannot resolve %s: %s",
			    hr->hr_host, evutil_gai_strerror(dns));
			http_finish(hr, HTTP_ERR_CONNECT, why);
		} else
			http_finish(hr, HTTP_ERR_CONNECT, "cannot connect");
	}
}

/*
 * The request ended, well or not. After a refused connect libevent 2.1
 * calls back with a request without a status and without its error
 * callback; after any other failure, with no request.
 */
static void
http_request_cb(struct evhttp_request *req, void *arg)
{
	struct http_request	*hr = arg;

	if (hr->hr_stage != HTTP_RUNNING)
		return;
	/* Any body evhttp held without a chunk callback call. */
	if (req != NULL)
		http_take(hr, evhttp_request_get_input_buffer(req));
	if (req != NULL && evhttp_request_get_response_code(req) != 0 &&
	    hr->hr_evhttp_error == 0)
		http_finish(hr, HTTP_ERR_NONE, "");
	else if (req != NULL && hr->hr_evhttp_error == 0)
		http_finish(hr, HTTP_ERR_REFUSED, "connection refused");
	else
		http_failed(hr);
}

/*
 * The TLS connection: an OpenSSL bufferevent without a socket yet (evhttp
 * connects it), handed to evhttp, which frees it, and with it the SSL,
 * when it frees the connection.
 */
static struct evhttp_connection *
http_tls_connection(struct http_request *hr, char *err, size_t errlen)
{
	struct evhttp_connection *evcon;
	struct bufferevent	*bev;
	struct in6_addr		 a6;
	SSL			*ssl;

	if ((ssl = SSL_new(hr->hr_tls)) == NULL) {
		snprintf(err, errlen, "cannot start TLS to %s:%d: %s",
		    hr->hr_host, hr->hr_port,
		    ERR_reason_error_string(ERR_get_error()));
		return NULL;
	}
	/* SNI names a host, never an address (RFC 6066, as Go does). */
	if (inet_pton(AF_INET, hr->hr_host, &a6) != 1 &&
	    inet_pton(AF_INET6, hr->hr_host, &a6) != 1 &&
	    SSL_set_tlsext_host_name(ssl, hr->hr_host) != 1) {
		snprintf(err, errlen, "cannot set the TLS server name %s",
		    hr->hr_host);
		SSL_free(ssl);
		return NULL;
	}
	/* From here the SSL is the bufferevent's, even when this fails. */
	bev = bufferevent_openssl_socket_new(hr->hr_base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		snprintf(err, errlen, "cannot start TLS to %s:%d",
		    hr->hr_host, hr->hr_port);
		return NULL;
	}
	/*
	 * Many servers close without a TLS close_notify; as Go's client, the
	 * end of the connection still ends a response read to the end.
	 */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	evcon = evhttp_connection_base_bufferevent_new(hr->hr_base, NULL, bev,
	    hr->hr_host, (unsigned short)hr->hr_port);
	if (evcon == NULL) {
		bufferevent_free(bev);
		snprintf(err, errlen, "cannot make a connection to %s:%d",
		    hr->hr_host, hr->hr_port);
	}
	return evcon;
}

/*
 * Sends the request. On failure (-1 with the reason) nothing was sent and
 * the request is still the caller's to free; on success the done callback
 * runs later, from the event loop, even when the connection fails at once.
 */
int
http_start(struct http_request *hr, char *err, size_t errlen)
{
	struct evhttp_request	*req;
	struct evkeyvalq	*out;
	struct evkeyval		*kv;
	enum evhttp_cmd_type	 cmd;
	struct timeval		 tv;
	char			 host[300], length[32];

	if (hr->hr_stage != HTTP_NEW) {
		snprintf(err, errlen, "request already started");
		return -1;
	}
	if (http_method_cmd(hr->hr_method, &cmd) == -1) {
		snprintf(err, errlen, "unknown method %s", hr->hr_method);
		return -1;
	}
	if (hr->hr_port < 1 || hr->hr_port > 65535) {
		snprintf(err, errlen, "invalid port %d", hr->hr_port);
		return -1;
	}
	if (hr->hr_tls != NULL) {
		if ((hr->hr_evcon = http_tls_connection(hr, err, errlen)) ==
		    NULL)
			return -1;
	} else if ((hr->hr_evcon = evhttp_connection_base_new(hr->hr_base,
	    NULL, hr->hr_host, (unsigned short)hr->hr_port)) == NULL) {
		snprintf(err, errlen, "cannot make a connection to %s:%d",
		    hr->hr_host, hr->hr_port);
		return -1;
	}
	/*
	 * evhttp's own timeouts (per connect, read and write) are set past
	 * the request's, which hr_ev enforces; left unset they would be
	 * libevent's 45 and 50 seconds, shorter than some callers' limits.
	 */
	tv = clock_tv(hr->hr_timeout > INT64_MAX - CLOCK_SEC ? INT64_MAX :
	    hr->hr_timeout + CLOCK_SEC);
	evhttp_connection_set_timeout_tv(hr->hr_evcon, &tv);
	evhttp_connection_set_retries(hr->hr_evcon, 0);
	evhttp_connection_set_closecb(hr->hr_evcon, http_close_cb, hr);
	if (hr->hr_read_size > 0)
		bufferevent_set_max_single_read(
		    evhttp_connection_get_bufferevent(hr->hr_evcon),
		    hr->hr_read_size);
	/* Freed with the connection's buffer, if it has not fired. */
	if (hr->hr_connect_cb != NULL)
		hr->hr_out_cb = evbuffer_add_cb(bufferevent_get_output(
		    evhttp_connection_get_bufferevent(hr->hr_evcon)),
		    http_out_cb, hr);

	req = evhttp_request_new(http_request_cb, hr);
	evhttp_request_set_header_cb(req, http_header_cb);
	evhttp_request_set_chunked_cb(req, http_chunk_cb);
	evhttp_request_set_error_cb(req, http_error_cb);
	out = evhttp_request_get_output_headers(req);
	TAILQ_FOREACH(kv, &hr->hr_headers, next)
		evhttp_add_header(out, kv->key, kv->value);
	if (evhttp_find_header(out, "Host") == NULL) {
		snprintf(host, sizeof(host), strchr(hr->hr_host, ':') != NULL ?
		    "[%s]:%d" : "%s:%d", hr->hr_host, hr->hr_port);
		evhttp_add_header(out, "Host", host);
	}
	if (!hr->hr_keepalive) {
		evhttp_remove_header(out, "Connection");
		evhttp_add_header(out, "Connection", "close");
	}
	/* evhttp adds Content-Length to POST and PUT only: any body has it. */
	if (hr->hr_body != NULL &&
	    evhttp_find_header(out, "Content-Length") == NULL) {
		snprintf(length, sizeof(length), "%zu",
		    evbuffer_get_length(hr->hr_body));
		evhttp_add_header(out, "Content-Length", length);
	}
	if (hr->hr_body != NULL)
		evbuffer_add_buffer(evhttp_request_get_output_buffer(req),
		    hr->hr_body);

	/*
	 * Running before the request is made: evhttp may fail it (a refused
	 * connect to a local address) and call back from inside
	 * evhttp_make_request, which only makes hr_ev active.
	 */
	hr->hr_stage = HTTP_RUNNING;
	http_clock(hr, hr->hr_timeout);
	if (evhttp_make_request(hr->hr_evcon, req, cmd, hr->hr_path) == -1) {
		/* evhttp has dropped the request; the connection is ours. */
		snprintf(err, errlen, "cannot send a request to %s:%d",
		    hr->hr_host, hr->hr_port);
		evtimer_del(hr->hr_ev);
		hr->hr_stage = HTTP_NEW;
		http_evcon_free(hr);
		return -1;
	}
	return 0;
}

/*
 * Stops (1) or resumes (0) reading the response, for flow control. The
 * timeout measures the peer, not us: its clock stops while we pause.
 */
void
http_pause(struct http_request *hr, int paused)
{
	struct bufferevent	*bev;

	if (hr->hr_stage != HTTP_RUNNING || hr->hr_evcon == NULL ||
	    hr->hr_paused == paused)
		return;
	hr->hr_paused = paused;
	bev = evhttp_connection_get_bufferevent(hr->hr_evcon);
	if (paused) {
		bufferevent_disable(bev, EV_READ);
		hr->hr_left = hr->hr_deadline - clock_now_ns();
		evtimer_del(hr->hr_ev);
	} else {
		bufferevent_enable(bev, EV_READ);
		http_clock(hr, hr->hr_left);
	}
}

/*
 * Cancels and frees a request whose done callback has not returned: no
 * callback runs after this. Safe at any time: before http_start, while
 * the request runs, inside its data callback (the end is then deferred to
 * hr_ev, as the top comment says), and inside its done callback, where it
 * does nothing (the client frees the request when done returns).
 */
void
http_free(struct http_request *hr)
{
	if (hr == NULL || hr->hr_stage == HTTP_DONE)
		return;
	if (hr->hr_in_data) {
		hr->hr_cancelled = 1;
		if (hr->hr_stage == HTTP_RUNNING)
			http_finish(hr, HTTP_ERR_NONE, "");
		return;
	}
	http_destroy(hr);
}
