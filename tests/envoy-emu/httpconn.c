/*
 * One downstream connection of a static listener: a small HTTP/1.1 server
 * on a bufferevent. A listener with an HTTP connection manager (route.c)
 * is served as Envoy's router would: the route's direct_response, the
 * request proxied to the route's cluster (upstream.c) and its response
 * relayed, or 404 with an empty body when no route matches; HTTP/1.0 gets
 * Envoy's 426 Upgrade Required. Any other listener is the stand-in's own
 * test listener: every request gets 200 with the body
 * "epoch=<N> pid=<pid> listener=<name>\n".
 *
 * The connection is kept alive unless the client asks otherwise (or speaks
 * HTTP/1.0), or the listener drains (listener_drain_close decides, as
 * Envoy's drain manager does): then the response carries
 * "connection: close" and the connection closes once it is flushed.
 * Requests are handled one at a time (no reading while one is proxied), so
 * closing never cuts a request.
 *
 * Its own HTTP code rather than evhttp, because draining and hot restart
 * need to know, per connection, whether a request is in flight.
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "agent.h"
#include "emu.h"

#define HTTPCONN_MAX_HEAD	(60 * 1024)	/* Envoy's header limit */
#define HTTPCONN_MAX_BODY	(64 * 1024 * 1024)

struct httpconn {
	struct emu_listener	*c_listener;
	struct bufferevent	*c_bev;
	unsigned		 c_worker;
	uint64_t		 c_served;	/* requests answered */
	int			 c_closing;	/* free once flushed */
	struct upstream		*c_upstream;	/* the request being proxied */
	int			 c_head_req;	/* ... is a HEAD */
	int			 c_close_after;	/* ... closes the connection */
	TAILQ_ENTRY(httpconn)	 c_entry;
};

static TAILQ_HEAD(, httpconn)	 httpconn_all =
    TAILQ_HEAD_INITIALIZER(httpconn_all);

static void
httpconn_free(struct httpconn *c)
{
	struct emu_listener	*l = c->c_listener;
	unsigned		 w = c->c_worker;

	TAILQ_REMOVE(&httpconn_all, c, c_entry);
	upstream_cancel(c->c_upstream);
	bufferevent_free(c->c_bev);
	free(c);
	/* Last: this may find the terminating process done. */
	listener_conn_closed(l, w);
}

/*
 * Idle: between requests on a kept-alive connection. A connection that has
 * not carried a request yet is not idle: its client is about to send one,
 * and closing it would fail a request that was never sent on a reused
 * connection, which a client may not retry.
 */
static int
httpconn_idle(struct httpconn *c)
{
	return !c->c_closing && c->c_served > 0 && c->c_upstream == NULL &&
	    evbuffer_get_length(bufferevent_get_input(c->c_bev)) == 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->c_bev)) == 0;
}

/* The reason phrase Envoy's HTTP/1 codec writes for a code. */
static const char *
httpconn_reason(int code)
{
	static const struct {
		int		 code;
		const char	*reason;
	} reasons[] = {
		{ 101, "Switching Protocols" }, { 200, "OK" },
		{ 201, "Created" }, { 202, "Accepted" }, { 204, "No Content" },
		{ 206, "Partial Content" }, { 301, "Moved Permanently" },
		{ 302, "Found" }, { 303, "See Other" },
		{ 304, "Not Modified" }, { 307, "Temporary Redirect" },
		{ 308, "Permanent Redirect" }, { 400, "Bad Request" },
		{ 401, "Unauthorized" }, { 403, "Forbidden" },
		{ 404, "Not Found" }, { 405, "Method Not Allowed" },
		{ 408, "Request Timeout" }, { 409, "Conflict" },
		{ 413, "Payload Too Large" }, { 418, "I'm a teapot" },
		{ 426, "Upgrade Required" }, { 429, "Too Many Requests" },
		{ 431, "Request Header Fields Too Large" },
		{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
		{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
		{ 504, "Gateway Timeout" },
	};
	size_t	i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		if (reasons[i].code == code)
			return reasons[i].reason;
	}
	return "";
}

/*
 * The status line and headers of a response whose body has len bytes;
 * ctype NULL for none, extra: more header lines ("name: value\r\n").
 */
static void
httpconn_head(struct httpconn *c, int code, const char *ctype,
    const char *extra, size_t len, int close)
{
	struct evbuffer	*out = bufferevent_get_output(c->c_bev);
	char		 date[64];
	struct tm	 tm;
	time_t		 now = time(NULL);

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", code,
	    httpconn_reason(code));
	if (code >= 200 && code != 204)
		evbuffer_add_printf(out, "content-length: %zu\r\n", len);
	if (ctype != NULL)
		evbuffer_add_printf(out, "content-type: %s\r\n", ctype);
	evbuffer_add_printf(out, "date: %s\r\nserver: envoy\r\n%s%s\r\n",
	    date, extra != NULL ? extra : "",
	    close ? "connection: close\r\n" : "");
}

/* A response is out: count it; a closing connection reads no more. */
static void
httpconn_sent(struct httpconn *c, int close)
{
	c->c_served++;
	if (close) {
		c->c_closing = 1;
		bufferevent_disable(c->c_bev, EV_READ);
	}
}

/* A local reply of Envoy's (404, 426, direct_response, a failed upstream):
 * a body is text/plain, as Envoy's. */
static void
httpconn_local(struct httpconn *c, int code, const char *body, size_t len,
    int head, int close)
{
	httpconn_head(c, code, len > 0 ? "text/plain" : NULL, NULL, len,
	    close);
	if (!head && len > 0)
		evbuffer_add(bufferevent_get_output(c->c_bev), body, len);
	httpconn_sent(c, close);
}

/* The test listener's answer, or one of its errors (the reason as body). */
static void
httpconn_respond(struct httpconn *c, int code, int head, int close)
{
	char	body[512];
	int	n;

	if (code == 200)
		n = snprintf(body, sizeof(body),
		    "epoch=%u pid=%ld listener=%s\n",
		    emu_get()->e_opt->o_restart_epoch, (long)getpid(),
		    listener_name(c->c_listener));
	else
		n = snprintf(body, sizeof(body), "%s\n",
		    httpconn_reason(code));
	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)strlen(body);
	httpconn_head(c, code, "text/plain", NULL, (size_t)n, close);
	if (!head)
		evbuffer_add(bufferevent_get_output(c->c_bev), body, n);
	httpconn_sent(c, close);
}

/* The value of header name in head (NUL-terminated), copied into out. */
static int
httpconn_header(const char *head, const char *name, char *out, size_t len)
{
	const char	*line, *end, *v;
	size_t		 nlen = strlen(name), vlen;

	for (line = strstr(head, "\r\n"); line != NULL; line = end) {
		line += 2;
		if ((end = strstr(line, "\r\n")) == NULL || end == line)
			break;
		if ((size_t)(end - line) <= nlen || line[nlen] != ':' ||
		    strncasecmp(line, name, nlen) != 0)
			continue;
		for (v = line + nlen + 1; *v == ' ' || *v == '\t'; v++)
			;
		vlen = end - v;
		while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		if (vlen >= len)
			vlen = len - 1;
		memcpy(out, v, vlen);
		out[vlen] = '\0';
		return 1;
	}
	return 0;
}

static void	httpconn_read_cb(struct bufferevent *, void *);

/* The proxied request is over: relay what came back. */
static void
httpconn_upstream_cb(struct upstream_response *ur, void *arg)
{
	struct httpconn	*c = arg;
	struct evbuffer	*out = bufferevent_get_output(c->c_bev);
	char		*extra;
	size_t		 len;
	int		 close;

	c->c_upstream = NULL;
	if (ur->ur_code == 0) {
		/* Reset after the response started: Envoy resets too. */
		httpconn_free(c);
		return;
	}
	close = c->c_close_after || listener_drain_close(c->c_listener);
	if (ur->ur_headers == NULL) {
		httpconn_local(c, ur->ur_code,
		    (const char *)evbuffer_pullup(ur->ur_body, -1),
		    evbuffer_get_length(ur->ur_body), c->c_head_req, close);
	} else {
		len = evbuffer_get_length(ur->ur_body);
		if (c->c_head_req)
			len = ur->ur_length >= 0 ? (size_t)ur->ur_length : 0;
		xasprintf(&extra, "%sx-envoy-upstream-service-time: %llu\r\n",
		    ur->ur_headers, (unsigned long long)ur->ur_service_ms);
		httpconn_head(c, ur->ur_code, NULL, extra, len, close);
		free(extra);
		if (!c->c_head_req)
			evbuffer_add_buffer(out, ur->ur_body);
		httpconn_sent(c, close);
	}
	if (c->c_closing)
		return;
	/* Requests that came meanwhile (pipelined) are handled now. */
	bufferevent_enable(c->c_bev, EV_READ);
	httpconn_read_cb(c->c_bev, c);
}

/*
 * A request on a listener with routes (rc): Envoy's connection manager and
 * router. Takes body.
 */
static void
httpconn_route(struct httpconn *c, struct route_config *rc,
    const char *method, const char *target, const char *version,
    const char *head, struct evbuffer *body, int close)
{
	struct route_result	 rr;
	char			 host[256];
	int			 head_req = strcmp(method, "HEAD") == 0;

	route_request(rc);
	if (strcmp(version, "HTTP/1.0") == 0) {
		/* Envoy's default: no HTTP/1.0 (accept_http_10 false). */
		httpconn_local(c, 426, NULL, 0, head_req, 1);
		return;
	}
	if (!httpconn_header(head, "host", host, sizeof(host)))
		host[0] = '\0';
	route_select(rc, host, target, &rr);
	switch (rr.rr_kind) {
	case ROUTE_NONE:
		httpconn_local(c, 404, NULL, 0, head_req, close);
		return;
	case ROUTE_DIRECT:
		httpconn_local(c, rr.rr_status, rr.rr_body, rr.rr_body_len,
		    head_req, close);
		return;
	case ROUTE_CLUSTER:
		break;
	}
	if (rr.rr_cluster == NULL) {
		/* validate_clusters false: cluster_not_found_response_code. */
		httpconn_local(c, 503, NULL, 0, head_req, close);
		return;
	}
	c->c_head_req = head_req;
	c->c_close_after = close;
	/* One request at a time: read again once it is answered. */
	bufferevent_disable(c->c_bev, EV_READ);
	c->c_upstream = upstream_new(emu_get()->e_base, rr.rr_cluster, method,
	    target, head, body, rr.rr_timeout_ns, httpconn_upstream_cb, c);
}

/*
 * Handles one complete request at the front of the input, if there is one.
 * Returns 1 when it consumed a request, 0 when more bytes are needed, -1 when
 * the connection is closing.
 */
static int
httpconn_one(struct httpconn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->c_bev);
	struct evbuffer		*body = NULL;
	struct route_config	*routes = listener_routes(c->c_listener);
	struct evbuffer_ptr	 p;
	char			*head = NULL, *target = NULL, value[256];
	char			 method[16], version[16];
	const char		*eol, *sp1, *sp2;
	size_t			 hlen;
	unsigned long long	 clen = 0;
	int			 close = 0, rc = 0;

	/* Tolerate blank lines before a request line (RFC 9112 2.2). */
	while (evbuffer_get_length(in) >= 2) {
		char	crlf[2];

		evbuffer_copyout(in, crlf, 2);
		if (crlf[0] != '\r' || crlf[1] != '\n')
			break;
		evbuffer_drain(in, 2);
	}
	p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (p.pos < 0) {
		if (evbuffer_get_length(in) > HTTPCONN_MAX_HEAD) {
			httpconn_respond(c, 431, 0, 1);
			return -1;
		}
		return 0;
	}
	hlen = (size_t)p.pos + 4;
	head = xmalloc(hlen + 1);
	evbuffer_copyout(in, head, hlen);
	head[hlen] = '\0';
	/* "METHOD SP request-target SP HTTP-version" */
	eol = strstr(head, "\r\n");
	sp1 = memchr(head, ' ', eol - head);
	sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', eol - sp1 - 1) : NULL;
	if (sp1 == NULL || sp2 == NULL || sp1 == head || sp2 == sp1 + 1 ||
	    (size_t)(sp1 - head) >= sizeof(method) ||
	    (size_t)(eol - sp2 - 1) >= sizeof(version) ||
	    strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
		httpconn_respond(c, 400, 0, 1);
		rc = -1;
		goto out;
	}
	memcpy(method, head, sp1 - head);
	method[sp1 - head] = '\0';
	memcpy(version, sp2 + 1, eol - sp2 - 1);
	version[eol - sp2 - 1] = '\0';
	target = xmalloc(sp2 - sp1);
	memcpy(target, sp1 + 1, sp2 - sp1 - 1);
	target[sp2 - sp1 - 1] = '\0';
	if (httpconn_header(head, "transfer-encoding", value, sizeof(value))) {
		/* Chunked request bodies: not needed by any test client. */
		httpconn_respond(c, 501, 0, 1);
		rc = -1;
		goto out;
	}
	if (httpconn_header(head, "content-length", value, sizeof(value))) {
		char	*end;

		clen = strtoull(value, &end, 10);
		if (*value == '\0' || *end != '\0' ||
		    clen > HTTPCONN_MAX_BODY) {
			httpconn_respond(c, 400, 0, 1);
			rc = -1;
			goto out;
		}
	}
	if (evbuffer_get_length(in) < hlen + clen)
		goto out;
	evbuffer_drain(in, hlen);
	body = evbuffer_new();
	evbuffer_remove_buffer(in, body, clen);
	if (httpconn_header(head, "connection", value, sizeof(value))) {
		if (strcasecmp(value, "close") == 0)
			close = 1;
		else if (strcmp(version, "HTTP/1.0") == 0 &&
		    strcasecmp(value, "keep-alive") != 0)
			close = 1;
	} else if (strcmp(version, "HTTP/1.0") == 0)
		close = 1;
	if (listener_drain_close(c->c_listener))
		close = 1;
	if (routes != NULL)
		httpconn_route(c, routes, method, target, version, head, body,
		    close);
	else
		httpconn_respond(c, 200, strcmp(method, "HEAD") == 0, close);
	rc = c->c_closing ? -1 : 1;
out:
	if (body != NULL)
		evbuffer_free(body);
	free(target);
	free(head);
	return rc;
}

static void
httpconn_read_cb(struct bufferevent *bev, void *arg)
{
	struct httpconn	*c = arg;

	(void)bev;
	while (!c->c_closing && c->c_upstream == NULL && httpconn_one(c) == 1)
		;
}

/*
 * Output flushed: a closing connection may go now, an idle one too when
 * the process is terminating.
 */
static void
httpconn_write_cb(struct bufferevent *bev, void *arg)
{
	struct httpconn	*c = arg;

	(void)bev;
	if (c->c_closing || (listener_is_terminating() && httpconn_idle(c)))
		httpconn_free(c);
}

static void
httpconn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct httpconn	*c = arg;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		/* The peer half-closed; let its last response out. */
		c->c_closing = 1;
		bufferevent_disable(bev, EV_READ);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		httpconn_free(c);
}

/* Serves an accepted connection fd of listener l (which counts it). */
void
httpconn_new(struct emu_listener *l, int fd)
{
	struct httpconn	*c;

	c = xcalloc(1, sizeof(*c));
	c->c_listener = l;
	c->c_worker = listener_conn_opened(l);
	c->c_bev = bufferevent_socket_new(emu_get()->e_base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->c_bev, httpconn_read_cb, httpconn_write_cb,
	    httpconn_event_cb, c);
	bufferevent_enable(c->c_bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&httpconn_all, c, c_entry);
}

/* Closes the idle connections (see httpconn_idle), for a terminating
 * process; the others close after their next response. */
void
httpconn_close_idle(void)
{
	struct httpconn	*c, *next;

	for (c = TAILQ_FIRST(&httpconn_all); c != NULL; c = next) {
		next = TAILQ_NEXT(c, c_entry);
		if (httpconn_idle(c))
			httpconn_free(c);
	}
}

void
httpconn_free_all(void)
{
	struct httpconn	*c;

	while ((c = TAILQ_FIRST(&httpconn_all)) != NULL)
		httpconn_free(c);
}
