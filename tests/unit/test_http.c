/*
 * Unit tests of agent/http.c, the one HTTP client, against servers started
 * here on free loopback ports: an evhttp server (plain, and TLS with a
 * certificate made here), and a raw server that answers in ways evhttp
 * would not (closes at once, cuts the body, sends no HTTP). Each outcome
 * of the client: a whole answer, each error with its words, the body cap
 * both ways, streaming with pauses, and cancelling at every moment,
 * inside the request's own callbacks included; a proxy's request (repeated
 * headers, no "Connection: close", the connect callback); then admin.c's
 * layer over it. Runs under the sanitizers in the SANITIZE=1 build, which is what
 * checks the lifetimes.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "agent.h"
#include "check.h"

#define CHUNKS		20
#define CHUNK_SIZE	10000

static struct event_base	*base;
static struct evhttp_request	*held;	/* /never's, unanswered */

/* ---- The evhttp server ---- */

static void
serve_cb(struct evhttp_request *req, void *arg)
{
	const char	*uri = evhttp_request_get_uri(req);
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer	*b = evbuffer_new(), *body;
	const char	*h, *x;
	char		 chunk[CHUNK_SIZE];
	int		 i, n;

	(void)arg;
	if (strcmp(uri, "/hello") == 0) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "X-Test", "yes");
		evbuffer_add_printf(b, "hello");
		evhttp_send_reply(req, 200, "OK", b);
	} else if (strcmp(uri, "/echo") == 0) {
		body = evhttp_request_get_input_buffer(req);
		h = evhttp_find_header(in, "Host");
		x = evhttp_find_header(in, "X-In");
		evbuffer_add_printf(b, "%s %.*s host=%s x=%s",
		    evhttp_request_get_command(req) == EVHTTP_REQ_POST ?
		    "POST" : "other", (int)evbuffer_get_length(body),
		    (const char *)evbuffer_pullup(body, -1),
		    h != NULL ? h : "-", x != NULL ? x : "-");
		evhttp_send_reply(req, 200, "OK", b);
	} else if (sscanf(uri, "/big/%d", &n) == 1) {
		for (i = 0; i < n; i++)
			evbuffer_add(b, "x", 1);
		evhttp_send_reply(req, 200, "OK", b);
	} else if (strcmp(uri, "/chunks") == 0) {
		/* Chunked, no length: the streaming case. */
		memset(chunk, 'c', sizeof(chunk));
		evhttp_send_reply_start(req, 200, "OK");
		for (i = 0; i < CHUNKS; i++) {
			evbuffer_add(b, chunk, sizeof(chunk));
			evhttp_send_reply_chunk(req, b);
		}
		evhttp_send_reply_end(req);
	} else if (strcmp(uri, "/never") == 0)
		held = req;
	else
		evhttp_send_reply(req, 404, "Not Found", b);
	evbuffer_free(b);
}

static int
bound_port(evutil_socket_t fd)
{
	struct sockaddr_storage	ss;
	socklen_t		len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int
serve(struct evhttp *http, const char *addr)
{
	struct evhttp_bound_socket	*bs;

	evhttp_set_gencb(http, serve_cb, NULL);
	if ((bs = evhttp_bind_socket_with_handle(http, addr, 0)) == NULL)
		return -1;
	return bound_port(evhttp_bound_socket_get_fd(bs));
}

/* ---- The TLS server: a self-signed certificate made here ---- */

static SSL_CTX *
tls_server_ctx(void)
{
	SSL_CTX		*ctx;
	EVP_PKEY	*key;
	X509		*x;
	X509_NAME	*name;

	if ((key = EVP_EC_gen("P-256")) == NULL)
		return NULL;
	x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_sign(x, key, EVP_sha256());
	ctx = SSL_CTX_new(TLS_server_method());
	if (SSL_CTX_use_certificate(ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, key) != 1) {
		SSL_CTX_free(ctx);
		ctx = NULL;
	}
	X509_free(x);
	EVP_PKEY_free(key);
	return ctx;
}

static struct bufferevent *
tls_bevcb(struct event_base *b, void *arg)
{
	return bufferevent_openssl_socket_new(b, -1, SSL_new(arg),
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

/* ---- The raw server: answers evhttp would never give ---- */

enum raw_mode {
	RAW_CLOSE,	/* close as soon as the request arrives */
	RAW_CUT,	/* 200 with a length of 100, 10 bytes, close */
	RAW_GARBAGE,	/* not HTTP */
	RAW_HEAD	/* 200 with the request's head as the body */
};

static enum raw_mode	raw_mode;

static void
raw_write_cb(struct bufferevent *bev, void *arg)
{
	(void)arg;
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		bufferevent_free(bev);
}

static void
raw_send(struct bufferevent *bev, const char *s)
{
	bufferevent_write(bev, s, strlen(s));
}

static void
raw_read_cb(struct bufferevent *bev, void *arg)
{
	struct evbuffer	*in = bufferevent_get_input(bev);
	struct evbuffer	*out = bufferevent_get_output(bev);
	ev_ssize_t	 end;

	(void)arg;
	/* Wait for the whole request head. */
	if ((end = evbuffer_search(in, "\r\n\r\n", 4, NULL).pos) == -1)
		return;
	if (raw_mode == RAW_HEAD) {
		evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\nContent-Length: "
		    "%zd\r\n\r\n", end + 4);
		evbuffer_remove_buffer(in, out, (size_t)end + 4);
	}
	evbuffer_drain(in, evbuffer_get_length(in));
	switch (raw_mode) {
	case RAW_CLOSE:
		bufferevent_free(bev);
		return;
	case RAW_CUT:
		raw_send(bev, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
		    "\r\n0123456789");
		break;
	case RAW_GARBAGE:
		raw_send(bev, "NOT HTTP AT ALL\r\n\r\n");
		break;
	case RAW_HEAD:
		break;
	}
	bufferevent_setcb(bev, NULL, raw_write_cb, NULL, NULL);
}

static void
raw_event_cb(struct bufferevent *bev, short what, void *arg)
{
	(void)what;
	(void)arg;
	bufferevent_free(bev);
}

static void
raw_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int len, void *arg)
{
	struct bufferevent	*bev;

	(void)l;
	(void)sa;
	(void)len;
	(void)arg;
	bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(bev, raw_read_cb, NULL, raw_event_cb, NULL);
	bufferevent_enable(bev, EV_READ);
}

static struct evconnlistener *
raw_serve(int *port)
{
	struct evconnlistener	*l;
	struct sockaddr_in	 sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = evconnlistener_new_bind(base, raw_accept_cb, NULL,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
	    (struct sockaddr *)&sin, sizeof(sin));
	if (l == NULL)
		return NULL;
	*port = bound_port(evconnlistener_get_fd(l));
	return l;
}

/* ---- The client side: one request, its outcome ---- */

struct outcome {
	int			 calls;		/* done callbacks */
	int			 in_start;	/* in http_start */
	int			 called_in_start;
	enum http_error		 err;
	int			 code;
	char			 reason[256];
	char			*body;
	size_t			 len;
	int			 capped;
	long long		 length;
	unsigned long long	 received;
	char			 header[64];
	/* The connect callback. */
	int			 connects;
	int			 connects_at_done;
	int			 free_in_connect;
	/* Streaming. */
	struct http_request	*hr;
	size_t			 streamed;
	int			 data_calls;
	int			 free_in_data;	/* at this data call */
	int			 free_in_done;
	int			 pause_once;	/* at the first data */
	int64_t			 pause_ns;
	struct event		*resume_ev;
};

static void
outcome_done(const struct http_result *res, void *arg)
{
	struct outcome	*o = arg;
	const char	*h;

	o->calls++;
	o->connects_at_done = o->connects;
	if (getenv("TEST_TRACE") != NULL)
		fprintf(stderr, "done: error %d, status %d, \"%s\"\n",
		    (int)res->hs_error, res->hs_code, res->hs_reason);
	if (o->in_start)
		o->called_in_start = 1;
	o->err = res->hs_error;
	o->code = res->hs_code;
	snprintf(o->reason, sizeof(o->reason), "%s", res->hs_reason);
	o->len = evbuffer_get_length(res->hs_body);
	free(o->body);
	o->body = xmalloc(o->len + 1);
	evbuffer_copyout(res->hs_body, o->body, o->len);
	o->body[o->len] = '\0';
	o->capped = res->hs_capped;
	o->length = res->hs_length;
	o->received = res->hs_received;
	if ((h = evhttp_find_header(res->hs_headers, "X-Test")) != NULL)
		snprintf(o->header, sizeof(o->header), "%s", h);
	if (o->free_in_done)
		http_free(o->hr);	/* does nothing: freed on return */
}

static void
outcome_connect(struct http_request *hr, void *arg)
{
	struct outcome	*o = arg;

	CHECK(hr == o->hr);
	CHECK(o->calls == 0);
	o->connects++;
	if (o->free_in_connect) {
		http_free(hr);
		o->hr = NULL;
	}
}

static void
outcome_resume(evutil_socket_t fd, short what, void *arg)
{
	struct outcome	*o = arg;

	(void)fd;
	(void)what;
	http_pause(o->hr, 0);
}

static void
outcome_data(struct http_request *hr, struct evbuffer *in, void *arg)
{
	struct outcome	*o = arg;
	struct timeval	 tv;

	CHECK(hr == o->hr);
	o->data_calls++;
	o->streamed += evbuffer_get_length(in);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (o->free_in_data != 0 && o->data_calls == o->free_in_data) {
		http_free(hr);
		o->hr = NULL;
		return;
	}
	if (o->pause_once && o->data_calls == 1) {
		http_pause(hr, 1);
		o->resume_ev = evtimer_new(base, outcome_resume, o);
		tv = clock_tv(o->pause_ns);
		evtimer_add(o->resume_ev, &tv);
	}
}

static void
outcome_clear(struct outcome *o)
{
	free(o->body);
	if (o->resume_ev != NULL)
		event_free(o->resume_ev);
	memset(o, 0, sizeof(*o));
}

static int	guard_fired;

static void
guard_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	guard_fired = 1;
}

/*
 * Runs the loop until the request has called back, or a guard of 20s has
 * passed (a hung client: the check that follows fails). Not a measure of
 * time, only a bound on the test.
 */
static void
wait_done(struct outcome *o)
{
	struct event	*guard = evtimer_new(base, guard_cb, NULL);
	struct timeval	 tv = { 20, 0 };

	guard_fired = 0;
	evtimer_add(guard, &tv);
	while (o->calls == 0 && !guard_fired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
	CHECK(!guard_fired);
}

/* Runs the loop for a moment: what is due now, and a bit more. */
static void
spin(int64_t ns)
{
	struct event	*guard = evtimer_new(base, guard_cb, NULL);
	struct timeval	 tv = clock_tv(ns);

	guard_fired = 0;
	evtimer_add(guard, &tv);
	while (!guard_fired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
}

static struct http_request *
start(struct outcome *o, const char *method, const char *host, int port,
    const char *path, int64_t timeout, void (*setup)(struct http_request *))
{
	struct http_request	*hr;
	char			 err[256];

	hr = http_new(base, method, host, port, path, timeout);
	http_callbacks(hr, NULL, outcome_done, o);
	if (setup != NULL)
		setup(hr);
	o->hr = hr;
	o->in_start = 1;
	if (http_start(hr, err, sizeof(err)) == -1) {
		fprintf(stderr, "http_start: %s\n", err);
		CHECK(0);
		http_free(hr);
		o->hr = NULL;
		return NULL;
	}
	o->in_start = 0;
	return hr;
}

static void
setup_echo(struct http_request *hr)
{
	http_header(hr, "X-In", "v1");
	http_header(hr, "X-In", "v2");		/* replaces */
	http_body(hr, "abc", 3);
}

static void
setup_first(struct http_request *hr)
{
	http_keep(hr, 1000, 1);
}

static void
setup_strict(struct http_request *hr)
{
	http_keep(hr, 1000, 0);
}

static void
setup_exact(struct http_request *hr)
{
	http_keep(hr, 5000, 0);
}

/* As a proxy forwards a request (tests/envoy-emu/upstream.c). */
static void
setup_proxy(struct http_request *hr)
{
	http_header_add(hr, "X-Dup", "one");
	http_header_add(hr, "X-Dup", "two");
	http_keepalive(hr);
	http_on_connect(hr, outcome_connect);
}

static void
setup_connect(struct http_request *hr)
{
	http_on_connect(hr, outcome_connect);
}

static struct outcome	*streaming;

static void
setup_stream(struct http_request *hr)
{
	http_callbacks(hr, outcome_data, outcome_done, streaming);
	http_read_size(hr, 4096);
}

static SSL_CTX	*client_tls;

/* ---- admin.c, the layer over the client ---- */

struct admin_seen {
	int			 as_calls;
	int			 as_code;
	char			 as_body[64];
	struct admin_request	*as_req;
};

static void
admin_seen_cb(int code, const char *body, size_t len, void *arg)
{
	struct admin_seen	*as = arg;

	as->as_calls++;
	as->as_code = code;
	snprintf(as->as_body, sizeof(as->as_body), "%.*s", (int)len, body);
	/* Inside its own callback: does nothing. */
	admin_cancel(as->as_req);
}

static void
admin_wait(struct admin_seen *as)
{
	struct event	*guard = evtimer_new(base, guard_cb, NULL);
	struct timeval	 tv = { 20, 0 };

	guard_fired = 0;
	evtimer_add(guard, &tv);
	while (as->as_calls == 0 && !guard_fired)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(guard);
	CHECK(!guard_fired);
}

static void
test_admin(int port, int dead)
{
	struct admin_seen	as;

	memset(&as, 0, sizeof(as));
	as.as_req = admin_request(base, port, "GET", "/hello", 5 * CLOCK_SEC,
	    admin_seen_cb, &as);
	CHECK(as.as_req != NULL);
	admin_wait(&as);
	CHECK(as.as_calls == 1 && as.as_code == 200);
	CHECK_STR(as.as_body, "hello");

	/* A transport error is -1 with an empty body. */
	memset(&as, 0, sizeof(as));
	as.as_req = admin_request(base, dead, "POST", "/drain_listeners",
	    5 * CLOCK_SEC, admin_seen_cb, &as);
	admin_wait(&as);
	CHECK(as.as_calls == 1 && as.as_code == -1);
	CHECK_STR(as.as_body, "");

	/* Cancelled in flight, one by one or all at the end. */
	memset(&as, 0, sizeof(as));
	as.as_req = admin_request(base, port, "GET", "/never", 5 * CLOCK_SEC,
	    admin_seen_cb, &as);
	spin(20 * CLOCK_MSEC);
	admin_cancel(as.as_req);
	as.as_req = admin_request(base, port, "GET", "/never", 5 * CLOCK_SEC,
	    admin_seen_cb, &as);
	CHECK(admin_request(base, dead, "GET", "/", 5 * CLOCK_SEC,
	    admin_seen_cb, &as) != NULL);
	admin_cancel_all();
	spin(50 * CLOCK_MSEC);
	CHECK(as.as_calls == 0);
}

static void
setup_tls(struct http_request *hr)
{
	http_tls(hr, client_tls);
}

int
main(void)
{
	struct evhttp		*http, *https, *http6;
	struct evconnlistener	*raw;
	struct outcome		 o;
	struct http_request	*hr;
	SSL_CTX			*server_tls;
	char			 err[256], expect[128];
	int			 port, tls_port, raw_port = 0, port6, dead;

	/* As the agent: a peer's early close is an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	log_init();
	log_set_level("error");
	base = event_base_new();
	memset(&o, 0, sizeof(o));
	http = evhttp_new(base);
	port = serve(http, "127.0.0.1");
	CHECK(port > 0);
	raw = raw_serve(&raw_port);
	CHECK(raw != NULL);
	/* Below the ephemeral range: no parallel test connects from it. */
	dead = check_free_port();
	CHECK(dead > 0);

	/* Methods. */
	CHECK(http_method_valid("GET") && http_method_valid("patch"));
	CHECK(!http_method_valid("FROB") && !http_method_valid(""));
	hr = http_new(base, "FROB", "127.0.0.1", port, "/", CLOCK_SEC);
	CHECK(http_start(hr, err, sizeof(err)) == -1);
	CHECK(strstr(err, "unknown method FROB") != NULL);
	http_free(hr);
	/* Freed before it starts: nothing to call back. */
	hr = http_new(base, "GET", "127.0.0.1", port, "/", CLOCK_SEC);
	http_header(hr, "X", "y");
	http_body(hr, "z", 1);
	http_free(hr);
	http_free(NULL);

	/* A whole answer, its headers, and the default Host. */
	start(&o, "GET", "127.0.0.1", port, "/hello", 5 * CLOCK_SEC, NULL);
	wait_done(&o);
	CHECK(o.calls == 1 && !o.called_in_start);
	CHECK(o.err == HTTP_ERR_NONE && o.code == 200);
	CHECK_STR(o.body, "hello");
	CHECK_STR(o.reason, "");
	CHECK_STR(o.header, "yes");
	CHECK(o.length == 5 && o.received == 5 && !o.capped);
	outcome_clear(&o);

	/* A method, a header replaced, a body. */
	start(&o, "post", "127.0.0.1", port, "/echo", 5 * CLOCK_SEC,
	    setup_echo);
	wait_done(&o);
	snprintf(expect, sizeof(expect), "POST abc host=127.0.0.1:%d x=v2",
	    port);
	CHECK(o.err == HTTP_ERR_NONE && o.code == 200);
	CHECK_STR(o.body, expect);
	outcome_clear(&o);

	/* Another status is an answer like any other. */
	start(&o, "GET", "127.0.0.1", port, "/nope", 5 * CLOCK_SEC, NULL);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_NONE && o.code == 404);
	outcome_clear(&o);

	/* Refused: called back later, never from inside http_start. */
	start(&o, "GET", "127.0.0.1", dead, "/", 5 * CLOCK_SEC, NULL);
	wait_done(&o);
	CHECK(o.calls == 1 && !o.called_in_start);
	CHECK(o.err == HTTP_ERR_REFUSED && o.code == 0);
	CHECK_STR(o.reason, "connection refused");
	outcome_clear(&o);

	/* Refused, then freed before the deferred end ran: no callback. */
	hr = start(&o, "GET", "127.0.0.1", dead, "/", 5 * CLOCK_SEC, NULL);
	http_free(hr);
	spin(50 * CLOCK_MSEC);
	CHECK(o.calls == 0);
	outcome_clear(&o);

	/* No answer: the timeout. */
	start(&o, "GET", "127.0.0.1", port, "/never", 200 * CLOCK_MSEC, NULL);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_TIMEOUT && o.code == 0);
	CHECK_STR(o.reason, "timeout");
	outcome_clear(&o);

	/* Freed while waiting for an answer, from outside: no callback. */
	hr = start(&o, "GET", "127.0.0.1", port, "/never", 5 * CLOCK_SEC,
	    NULL);
	spin(50 * CLOCK_MSEC);
	http_free(hr);
	spin(50 * CLOCK_MSEC);
	CHECK(o.calls == 0);
	outcome_clear(&o);

	/* Closed before any answer. */
	raw_mode = RAW_CLOSE;
	start(&o, "GET", "127.0.0.1", raw_port, "/", 5 * CLOCK_SEC, NULL);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_CLOSED && o.code == 0);
	CHECK_STR(o.reason, "connection closed before the response");
	outcome_clear(&o);

	/* The body cut off: the status and the length are known. */
	raw_mode = RAW_CUT;
	start(&o, "GET", "127.0.0.1", raw_port, "/", 5 * CLOCK_SEC, NULL);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_CUT && o.code == 200);
	CHECK(o.length == 100 && o.received == 10);
	CHECK_STR(o.reason, "the body was cut off after 10 of 100 bytes");
	outcome_clear(&o);

	/* Not HTTP. */
	raw_mode = RAW_GARBAGE;
	start(&o, "GET", "127.0.0.1", raw_port, "/", 5 * CLOCK_SEC, NULL);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_MALFORMED);
	CHECK_STR(o.reason, "malformed response");
	outcome_clear(&o);

	/*
	 * By default the request asks for the close; a proxy's keeps its
	 * repeated headers, asks nothing of the connection, and hears of
	 * the connection before the done callback.
	 */
	raw_mode = RAW_HEAD;
	start(&o, "GET", "127.0.0.1", raw_port, "/", 5 * CLOCK_SEC, NULL);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_NONE && o.code == 200);
	CHECK(strstr(o.body, "\r\nConnection: close\r\n") != NULL);
	CHECK(o.connects == 0);
	outcome_clear(&o);
	start(&o, "GET", "127.0.0.1", raw_port, "/", 5 * CLOCK_SEC,
	    setup_proxy);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_NONE && o.code == 200);
	CHECK(strstr(o.body, "\r\nX-Dup: one\r\nX-Dup: two\r\n") != NULL);
	CHECK(strstr(o.body, "Connection") == NULL);
	CHECK(o.connects == 1 && o.connects_at_done == 1);
	outcome_clear(&o);
	/*
	 * A body has its Content-Length whatever the method: evhttp adds
	 * one to POST and PUT only.
	 */
	start(&o, "PATCH", "127.0.0.1", raw_port, "/", 5 * CLOCK_SEC,
	    setup_echo);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_NONE && o.code == 200);
	CHECK(strstr(o.body, "\r\nContent-Length: 3\r\n") != NULL);
	outcome_clear(&o);
	/* No connection, no connect callback. */
	start(&o, "GET", "127.0.0.1", dead, "/", 5 * CLOCK_SEC,
	    setup_connect);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_REFUSED && o.connects == 0);
	outcome_clear(&o);
	/* Freed inside its connect callback: no done. */
	o.free_in_connect = 1;
	start(&o, "GET", "127.0.0.1", port, "/never", 5 * CLOCK_SEC,
	    setup_connect);
	spin(200 * CLOCK_MSEC);
	CHECK(o.connects == 1 && o.calls == 0 && o.hr == NULL);
	outcome_clear(&o);

	/* The body cap: the first bytes as a success, or an error. */
	start(&o, "GET", "127.0.0.1", port, "/big/100000", 5 * CLOCK_SEC,
	    setup_first);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_NONE && o.code == 200);
	CHECK(o.capped && o.len == 1000 && o.length == 100000);
	outcome_clear(&o);
	start(&o, "GET", "127.0.0.1", port, "/big/100000", 5 * CLOCK_SEC,
	    setup_strict);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_TOO_LARGE && o.code == 200);
	CHECK_STR(o.reason, "response body larger than 1000 bytes");
	outcome_clear(&o);
	/* A body of exactly the cap is whole. */
	start(&o, "GET", "127.0.0.1", port, "/big/5000", 5 * CLOCK_SEC,
	    setup_exact);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_NONE && o.len == 5000 && !o.capped);
	outcome_clear(&o);

	/* Streaming: every byte to the data callback, nothing kept. */
	streaming = &o;
	start(&o, "GET", "127.0.0.1", port, "/chunks", 5 * CLOCK_SEC,
	    setup_stream);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_NONE && o.code == 200);
	CHECK(o.streamed == CHUNKS * CHUNK_SIZE && o.len == 0);
	CHECK(o.received == CHUNKS * CHUNK_SIZE && o.data_calls > 1);
	outcome_clear(&o);

	/*
	 * Paused longer than the timeout: the clock stops while the reader
	 * holds the peer back, so the request still ends well.
	 */
	o.pause_once = 1;
	o.pause_ns = 1500 * CLOCK_MSEC;
	start(&o, "GET", "127.0.0.1", port, "/chunks", 1000 * CLOCK_MSEC,
	    setup_stream);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_NONE);
	CHECK(o.streamed == CHUNKS * CHUNK_SIZE);
	outcome_clear(&o);

	/* Freed inside its own data callback: no done, no use after free. */
	o.free_in_data = 2;
	start(&o, "GET", "127.0.0.1", port, "/chunks", 5 * CLOCK_SEC,
	    setup_stream);
	spin(200 * CLOCK_MSEC);
	CHECK(o.calls == 0 && o.data_calls == 2 && o.hr == NULL);
	outcome_clear(&o);

	/* Freed inside its done callback: nothing more happens. */
	o.free_in_done = 1;
	start(&o, "GET", "127.0.0.1", port, "/hello", 5 * CLOCK_SEC, NULL);
	wait_done(&o);
	spin(20 * CLOCK_MSEC);
	CHECK(o.calls == 1 && o.code == 200);
	outcome_clear(&o);
	streaming = NULL;

	test_admin(port, dead);

	/* TLS, without verifying the self-signed certificate. */
	server_tls = tls_server_ctx();
	CHECK(server_tls != NULL);
	client_tls = http_tls_new(err, sizeof(err));
	CHECK(client_tls != NULL);
	https = evhttp_new(base);
	evhttp_set_bevcb(https, tls_bevcb, server_tls);
	tls_port = serve(https, "127.0.0.1");
	CHECK(tls_port > 0);
	start(&o, "GET", "127.0.0.1", tls_port, "/hello", 5 * CLOCK_SEC,
	    setup_tls);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_NONE && o.code == 200);
	CHECK_STR(o.body, "hello");
	outcome_clear(&o);
	start(&o, "GET", "127.0.0.1", tls_port, "/big/50000", 5 * CLOCK_SEC,
	    setup_tls);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_NONE && o.len == 50000);
	outcome_clear(&o);
	/* TLS to a plain server: no connection, with OpenSSL's reason. */
	start(&o, "GET", "127.0.0.1", port, "/hello", 5 * CLOCK_SEC,
	    setup_tls);
	wait_done(&o);
	CHECK(o.err == HTTP_ERR_CONNECT || o.err == HTTP_ERR_CLOSED);
	CHECK(strstr(o.reason, "(TLS: ") != NULL);
	outcome_clear(&o);

	/* An IPv6 literal, where the host has IPv6. */
	http6 = evhttp_new(base);
	if ((port6 = serve(http6, "::1")) > 0) {
		start(&o, "GET", "::1", port6, "/echo", 5 * CLOCK_SEC, NULL);
		wait_done(&o);
		snprintf(expect, sizeof(expect), "other  host=[::1]:%d x=-",
		    port6);
		CHECK(o.err == HTTP_ERR_NONE);
		CHECK_STR(o.body, expect);
		outcome_clear(&o);
	} else
		printf("test_http: no IPv6 loopback, skipped\n");

	evhttp_free(http6);
	evhttp_free(https);
	evhttp_free(http);
	evconnlistener_free(raw);
	http_tls_free(client_tls);
	SSL_CTX_free(server_tls);
	event_base_free(base);
	(void)held;
	return check_done("test_http");
}
