/*
 * An asynchronous HTTP/1.1 GET through evhttp, for everything the status
 * server asks of others: the proxy's admin API (readiness, stats), the
 * application's metrics and its HTTP and HTTPS probes.
 *
 * A fetch ends exactly once: its done callback runs (success, HTTP error,
 * transport error, timeout, or fetch_stop), then the fetch is freed; or the
 * owner calls fetch_cancel and no callback runs. The connection is opened
 * for this one request ("Connection: close") and left to evhttp to free
 * (evhttp_connection_free_on_completion) once the request has ended; only a
 * fetch ended from outside evhttp's callbacks frees it here.
 *
 * Work that must not run inside evhttp's own callbacks (ending a fetch from
 * a data callback frees the connection evhttp is reading from) is deferred
 * to fe_ev, which runs from the top of the event loop.
 *
 * With fetch_tls the request goes over TLS: evhttp is given an OpenSSL
 * bufferevent, which does the handshake on the same event base before
 * evhttp writes the request, and is freed with the connection.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "status.h"

struct fetch {
	struct event_base	*fe_base;
	struct evhttp_connection *fe_evcon;	/* NULL once evhttp owns it */
	struct evhttp_request	*fe_req;	/* NULL once sent or ended */
	struct event		*fe_ev;		/* timeout and deferred end */
	char			*fe_host;
	char			*fe_path;
	int			 fe_port;
	int64_t			 fe_timeout;
	int64_t			 fe_deadline;	/* monotonic ns, while reading */
	int64_t			 fe_left;	/* ns, while paused */
	int			 fe_paused;
	SSL_CTX			*fe_tls;	/* NULL: plain HTTP; not ours */
	char			 fe_tls_error[128]; /* OpenSSL's reason */
	char			 fe_error_text[256];
	struct evkeyvalq	 fe_headers;
	struct evbuffer		*fe_body;
	size_t			 fe_limit;	/* buffered body cap, 0: none */
	int			 fe_code;
	int			 fe_stopping;	/* end at fe_ev with fe_code */
	int			 fe_refused;	/* end at fe_ev, connect failed */
	int			 fe_error;	/* enum evhttp_request_error + 1 */
	int			 fe_ended;
	fetch_head_cb		 fe_head_cb;
	fetch_data_cb		 fe_data_cb;
	fetch_done_cb		 fe_done_cb;
	void			*fe_arg;
};

static void	fetch_free(struct fetch *);

/* (Re)arms the timeout to fire after left nanoseconds. */
static void
fetch_clock(struct fetch *fe, int64_t left)
{
	struct timeval	tv;

	if (left < 0)
		left = 0;
	fe->fe_deadline = clock_now_ns() + left;
	tv = clock_tv(left);
	evtimer_add(fe->fe_ev, &tv);
}

struct fetch *
fetch_new(struct event_base *base, const char *host, int port,
    const char *path, int64_t timeout)
{
	struct fetch	*fe;

	fe = xcalloc(1, sizeof(*fe));
	fe->fe_base = base;
	fe->fe_host = xstrdup(host);
	fe->fe_port = port;
	fe->fe_path = xstrdup(path);
	fe->fe_timeout = timeout;
	fe->fe_body = evbuffer_new();
	TAILQ_INIT(&fe->fe_headers);
	return fe;
}

/* Adds a request header (replacing one of the same name). */
void
fetch_header(struct fetch *fe, const char *name, const char *value)
{
	evhttp_remove_header(&fe->fe_headers, name);
	evhttp_add_header(&fe->fe_headers, name, value);
}

/*
 * The one TLS client context of the agent's HTTPS fetches; its owner frees
 * it with fetch_tls_free once no fetch uses it. As Istio's prober (Go's
 * InsecureSkipVerify), the server's certificate is not verified: a probe
 * asks whether the application answers, and the application's certificate
 * is often self-signed or names a service rather than the pod's address.
 * The lowest version is TLS 1.2, Go's default for a client.
 */
SSL_CTX *
fetch_tls_new(char *err, size_t errlen)
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
fetch_tls_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

/* The request goes over TLS with this context (NULL: plain HTTP). */
void
fetch_tls(struct fetch *fe, SSL_CTX *ctx)
{
	fe->fe_tls = ctx;
}

void
fetch_callbacks(struct fetch *fe, fetch_head_cb head, fetch_data_cb data,
    fetch_done_cb done, void *arg)
{
	fe->fe_head_cb = head;
	fe->fe_data_cb = data;
	fe->fe_done_cb = done;
	fe->fe_arg = arg;
}

/*
 * Without a data callback the body is buffered; past this many bytes the
 * fetch ends early with what it has (as a prober reading at most 10 KiB).
 */
void
fetch_body_limit(struct fetch *fe, size_t limit)
{
	fe->fe_limit = limit;
}

static const char *
fetch_error_name(int error)
{
	switch (error - 1) {
	case EVREQ_HTTP_TIMEOUT:
		return "timeout";
	case EVREQ_HTTP_EOF:
		return "connection closed before the response ended";
	case EVREQ_HTTP_INVALID_HEADER:
		return "malformed response";
	case EVREQ_HTTP_BUFFER_ERROR:
		return "connection error";
	case EVREQ_HTTP_DATA_TOO_LONG:
		return "response too large";
	default:
		return "connection failed";
	}
}

/* What went wrong, with OpenSSL's reason when TLS was the cause. */
static const char *
fetch_error_text(struct fetch *fe, const char *what)
{
	if (fe->fe_tls_error[0] == '\0')
		return what;
	snprintf(fe->fe_error_text, sizeof(fe->fe_error_text), "%s (TLS: %s)",
	    what, fe->fe_tls_error);
	return fe->fe_error_text;
}

/*
 * Keeps OpenSSL's reason a TLS connection failed. The bufferevent keeps
 * its own queue of errors, so this reads nothing left behind by another
 * connection. libevent also queues SSL_get_error's bare code (of no
 * library), which says nothing evhttp's error does not; it is skipped.
 */
static void
fetch_tls_error(struct fetch *fe)
{
	struct bufferevent	*bev;
	unsigned long		 e, found = 0;

	if (fe->fe_tls == NULL || fe->fe_evcon == NULL)
		return;
	bev = evhttp_connection_get_bufferevent(fe->fe_evcon);
	while ((e = bufferevent_get_openssl_error(bev)) != 0) {
		if (found == 0 && ERR_GET_LIB(e) != 0)
			found = e;
	}
	if (found == 0 || fe->fe_tls_error[0] != '\0')
		return;
	e = found;
	if (ERR_reason_error_string(e) != NULL)
		snprintf(fe->fe_tls_error, sizeof(fe->fe_tls_error), "%s",
		    ERR_reason_error_string(e));
	else
		ERR_error_string_n(e, fe->fe_tls_error,
		    sizeof(fe->fe_tls_error));
}

/* Ends the fetch: one call of the done callback, then free. */
static void
fetch_end(struct fetch *fe, int code, const char *error)
{
	if (fe->fe_ended)
		return;
	fe->fe_ended = 1;
	if (fe->fe_done_cb != NULL)
		fe->fe_done_cb(fe, code, error == NULL ? fe->fe_body : NULL,
		    error, fe->fe_arg);
}

static void
fetch_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct fetch	*fe = arg;

	(void)fd;
	(void)what;
	/* From the top of the loop: freeing the connection is safe here. */
	if (fe->fe_evcon != NULL) {
		if (fe->fe_refused)
			fetch_tls_error(fe);
		evhttp_connection_free(fe->fe_evcon);
		fe->fe_evcon = NULL;
		fe->fe_req = NULL;
	}
	if (fe->fe_refused)
		fetch_end(fe, 0, fetch_error_text(fe, "connection failed"));
	else if (fe->fe_stopping)
		fetch_end(fe, fe->fe_code, NULL);
	else
		fetch_end(fe, 0, "timeout");
	fetch_free(fe);
}

static void
fetch_error_cb(enum evhttp_request_error error, void *arg)
{
	struct fetch	*fe = arg;

	fe->fe_error = (int)error + 1;
	/* The connection is still evhttp's, and alive, during this call. */
	fetch_tls_error(fe);
}

static int
fetch_header_cb(struct evhttp_request *req, void *arg)
{
	struct fetch	*fe = arg;

	fe->fe_code = evhttp_request_get_response_code(req);
	if (fe->fe_head_cb != NULL && fe->fe_head_cb(fe, fe->fe_code,
	    evhttp_request_get_input_headers(req), fe->fe_arg) == -1) {
		fe->fe_error = EVREQ_HTTP_INVALID_HEADER + 1;
		return -1;
	}
	return 0;
}

static void
fetch_chunk_cb(struct evhttp_request *req, void *arg)
{
	struct fetch	*fe = arg;
	struct evbuffer	*in = evhttp_request_get_input_buffer(req);

	if (fe->fe_stopping || fe->fe_ended)
		return;
	if (fe->fe_data_cb != NULL) {
		fe->fe_data_cb(fe, in, fe->fe_arg);
		return;
	}
	if (fe->fe_limit == 0) {
		evbuffer_add_buffer(fe->fe_body, in);
		return;
	}
	/* Keep the first fe_limit bytes, as a reader stopping there would. */
	evbuffer_remove_buffer(in, fe->fe_body, fe->fe_limit -
	    evbuffer_get_length(fe->fe_body));
	if (evbuffer_get_length(in) > 0) {
		evbuffer_drain(in, evbuffer_get_length(in));
		fetch_stop(fe);
	}
}

/*
 * The request ended, well or not; evhttp owns the connection from here,
 * except after a failed connect: libevent 2.1 then calls back with a
 * request without a status and does not free the connection even with
 * free_on_completion, so it is freed from fe_ev.
 */
static void
fetch_request_cb(struct evhttp_request *req, void *arg)
{
	struct fetch	*fe = arg;
	int		 code;

	if (req != NULL && evhttp_request_get_response_code(req) == 0 &&
	    fe->fe_error == 0 && !fe->fe_stopping) {
		fe->fe_req = NULL;
		fe->fe_refused = 1;
		fe->fe_stopping = 1;
		event_active(fe->fe_ev, EV_TIMEOUT, 0);
		return;
	}
	fe->fe_evcon = NULL;
	fe->fe_req = NULL;
	if (fe->fe_stopping) {
		/* fe_ev is already active and will end the fetch. */
		return;
	}
	code = req != NULL ? evhttp_request_get_response_code(req) : 0;
	if (code == 0 || fe->fe_error != 0)
		fetch_end(fe, 0, fetch_error_text(fe,
		    fetch_error_name(fe->fe_error)));
	else {
		/* Any body evhttp held without a chunk callback call. */
		if (req != NULL)
			fetch_chunk_cb(req, fe);
		if (!fe->fe_stopping)
			fetch_end(fe, code, NULL);
	}
	if (fe->fe_stopping)
		return;
	fetch_free(fe);
}

/*
 * The TLS connection: an OpenSSL bufferevent without a socket yet (evhttp
 * connects it), handed to evhttp, which frees it, and with it the SSL,
 * when it frees the connection.
 */
static struct evhttp_connection *
fetch_tls_connection(struct fetch *fe, char *err, size_t errlen)
{
	struct evhttp_connection *evcon;
	struct bufferevent	*bev;
	struct in6_addr		 a6;
	SSL			*ssl;

	if ((ssl = SSL_new(fe->fe_tls)) == NULL) {
		snprintf(err, errlen, "cannot start TLS to %s:%d: %s",
		    fe->fe_host, fe->fe_port,
		    ERR_reason_error_string(ERR_get_error()));
		return NULL;
	}
	/* SNI names a host, never an address (RFC 6066, as Go does). */
	if (inet_pton(AF_INET, fe->fe_host, &a6) != 1 &&
	    inet_pton(AF_INET6, fe->fe_host, &a6) != 1 &&
	    SSL_set_tlsext_host_name(ssl, fe->fe_host) != 1) {
		snprintf(err, errlen, "cannot set the TLS server name %s",
		    fe->fe_host);
		SSL_free(ssl);
		return NULL;
	}
	/* From here the SSL is the bufferevent's, even when this fails. */
	bev = bufferevent_openssl_socket_new(fe->fe_base, -1, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE |
	    BEV_OPT_DEFER_CALLBACKS);
	if (bev == NULL) {
		snprintf(err, errlen, "cannot start TLS to %s:%d",
		    fe->fe_host, fe->fe_port);
		return NULL;
	}
	/*
	 * Many servers close without a TLS close_notify; as Go's client, the
	 * end of the connection still ends a response read to the end.
	 */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	evcon = evhttp_connection_base_bufferevent_new(fe->fe_base, NULL, bev,
	    fe->fe_host, (unsigned short)fe->fe_port);
	if (evcon == NULL) {
		bufferevent_free(bev);
		snprintf(err, errlen, "cannot make a connection to %s:%d",
		    fe->fe_host, fe->fe_port);
	}
	return evcon;
}

int
fetch_start(struct fetch *fe, char *err, size_t errlen)
{
	struct evkeyvalq	*out;
	struct evkeyval		*kv;
	char			 host[300];

	if (fe->fe_tls != NULL) {
		if ((fe->fe_evcon = fetch_tls_connection(fe, err, errlen)) ==
		    NULL)
			return -1;
	} else if ((fe->fe_evcon = evhttp_connection_base_new(fe->fe_base,
	    NULL, fe->fe_host, (unsigned short)fe->fe_port)) == NULL) {
		snprintf(err, errlen, "cannot make a connection to %s:%d",
		    fe->fe_host, fe->fe_port);
		return -1;
	}
	evhttp_connection_set_retries(fe->fe_evcon, 0);
	evhttp_connection_free_on_completion(fe->fe_evcon);
	fe->fe_req = evhttp_request_new(fetch_request_cb, fe);
	evhttp_request_set_header_cb(fe->fe_req, fetch_header_cb);
	evhttp_request_set_chunked_cb(fe->fe_req, fetch_chunk_cb);
	evhttp_request_set_error_cb(fe->fe_req, fetch_error_cb);
	out = evhttp_request_get_output_headers(fe->fe_req);
	TAILQ_FOREACH(kv, &fe->fe_headers, next)
		evhttp_add_header(out, kv->key, kv->value);
	if (evhttp_find_header(out, "Host") == NULL) {
		if (strchr(fe->fe_host, ':') != NULL)
			snprintf(host, sizeof(host), "[%s]:%d", fe->fe_host,
			    fe->fe_port);
		else
			snprintf(host, sizeof(host), "%s:%d", fe->fe_host,
			    fe->fe_port);
		evhttp_add_header(out, "Host", host);
	}
	evhttp_remove_header(out, "Connection");
	evhttp_add_header(out, "Connection", "close");
	fe->fe_ev = evtimer_new(fe->fe_base, fetch_event_cb, fe);
	fetch_clock(fe, fe->fe_timeout);
	if (evhttp_make_request(fe->fe_evcon, fe->fe_req, EVHTTP_REQ_GET,
	    fe->fe_path) == -1) {
		/* evhttp freed the request; the connection is still ours. */
		fe->fe_req = NULL;
		snprintf(err, errlen, "cannot send a request to %s:%d",
		    fe->fe_host, fe->fe_port);
		evhttp_connection_free(fe->fe_evcon);
		fe->fe_evcon = NULL;
		return -1;
	}
	return 0;
}

/*
 * Lets one read take up to size bytes (libevent's default is 16 KiB), for a
 * large streamed response: fewer, larger steps through the loop.
 */
void
fetch_read_size(struct fetch *fe, size_t size)
{
	if (fe->fe_evcon != NULL)
		bufferevent_set_max_single_read(
		    evhttp_connection_get_bufferevent(fe->fe_evcon), size);
}

/*
 * Stops (1) or resumes (0) reading the response, for flow control. The
 * timeout measures the peer, not us: its clock stops while we pause, so a
 * slow reader on our side never times out the source it holds back.
 */
void
fetch_pause(struct fetch *fe, int paused)
{
	struct bufferevent	*bev;

	if (fe->fe_evcon == NULL || fe->fe_ended || fe->fe_stopping ||
	    fe->fe_paused == paused)
		return;
	fe->fe_paused = paused;
	bev = evhttp_connection_get_bufferevent(fe->fe_evcon);
	if (paused) {
		bufferevent_disable(bev, EV_READ);
		fe->fe_left = fe->fe_deadline - clock_now_ns();
		evtimer_del(fe->fe_ev);
	} else {
		bufferevent_enable(bev, EV_READ);
		fetch_clock(fe, fe->fe_left);
	}
}

/*
 * Ends the fetch early as a success with what has arrived; safe from inside
 * the fetch's own callbacks. The done callback runs from the event loop.
 */
void
fetch_stop(struct fetch *fe)
{
	if (fe->fe_stopping || fe->fe_ended)
		return;
	fe->fe_stopping = 1;
	if (fe->fe_code == 0)
		fe->fe_code = 200;
	event_active(fe->fe_ev, EV_TIMEOUT, 0);
}

/*
 * Ends the fetch without calling back. Not from inside this fetch's own
 * callbacks (use fetch_stop there).
 */
void
fetch_cancel(struct fetch *fe)
{
	if (fe == NULL)
		return;
	if (fe->fe_evcon != NULL)
		evhttp_connection_free(fe->fe_evcon);
	fe->fe_evcon = NULL;
	fe->fe_req = NULL;
	fe->fe_ended = 1;
	fetch_free(fe);
}

static void
fetch_free(struct fetch *fe)
{
	if (fe->fe_ev != NULL)
		event_free(fe->fe_ev);
	evhttp_clear_headers(&fe->fe_headers);
	evbuffer_free(fe->fe_body);
	free(fe->fe_host);
	free(fe->fe_path);
	free(fe);
}
