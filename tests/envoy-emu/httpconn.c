/*
 * One downstream connection of a static listener: a small HTTP/1.1 server
 * on a bufferevent. Every request gets 200 with the body
 * "epoch=<N> pid=<pid> listener=<name>\n" and a Content-Length; the
 * connection is kept alive unless the client asks otherwise (or speaks
 * HTTP/1.0), or the listener drains (listener_drain_close decides, as
 * Envoy's drain manager does): then the response carries
 * "connection: close" and the connection closes once it is flushed.
 * Requests are handled one at a time, so closing never cuts a request.
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
	return !c->c_closing && c->c_served > 0 &&
	    evbuffer_get_length(bufferevent_get_input(c->c_bev)) == 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->c_bev)) == 0;
}

static void
httpconn_respond(struct httpconn *c, int code, const char *reason, int head,
    int close)
{
	struct evbuffer	*out = bufferevent_get_output(c->c_bev);
	char		 date[64], body[512];
	struct tm	 tm;
	time_t		 now = time(NULL);
	int		 n;

	if (code == 200)
		n = snprintf(body, sizeof(body),
		    "epoch=%u pid=%ld listener=%s\n",
		    emu_get()->e_opt->o_restart_epoch, (long)getpid(),
		    listener_name(c->c_listener));
	else
		n = snprintf(body, sizeof(body), "%s\n", reason);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = (int)strlen(body);
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\ncontent-length: %d\r\n"
	    "content-type: text/plain\r\ndate: %s\r\nserver: envoy\r\n%s\r\n",
	    code, reason, n, date, close ? "connection: close\r\n" : "");
	if (!head)
		evbuffer_add(out, body, n);
	c->c_served++;
	if (close) {
		c->c_closing = 1;
		bufferevent_disable(c->c_bev, EV_READ);
	}
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

/*
 * Handles one complete request at the front of the input, if there is one.
 * Returns 1 when it consumed a request, 0 when more bytes are needed, -1 when
 * the connection is closing.
 */
static int
httpconn_one(struct httpconn *c)
{
	struct evbuffer		*in = bufferevent_get_input(c->c_bev);
	struct evbuffer_ptr	 p;
	char			*head = NULL, value[256];
	char			 method[16], version[16];
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
			httpconn_respond(c, 431,
			    "Request Header Fields Too Large", 0, 1);
			return -1;
		}
		return 0;
	}
	hlen = (size_t)p.pos + 4;
	head = xmalloc(hlen + 1);
	evbuffer_copyout(in, head, hlen);
	head[hlen] = '\0';
	if (sscanf(head, "%15s %*s %15s", method, version) != 2 ||
	    strncmp(version, "HTTP/1.", 7) != 0) {
		httpconn_respond(c, 400, "Bad Request", 0, 1);
		rc = -1;
		goto out;
	}
	if (httpconn_header(head, "transfer-encoding", value, sizeof(value))) {
		/* Chunked request bodies: not needed by any test client. */
		httpconn_respond(c, 501, "Not Implemented", 0, 1);
		rc = -1;
		goto out;
	}
	if (httpconn_header(head, "content-length", value, sizeof(value))) {
		char	*end;

		clen = strtoull(value, &end, 10);
		if (*value == '\0' || *end != '\0' ||
		    clen > HTTPCONN_MAX_BODY) {
			httpconn_respond(c, 400, "Bad Request", 0, 1);
			rc = -1;
			goto out;
		}
	}
	if (evbuffer_get_length(in) < hlen + clen)
		goto out;
	evbuffer_drain(in, hlen + clen);
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
	httpconn_respond(c, 200, "OK", strcmp(method, "HEAD") == 0, close);
	rc = close ? -1 : 1;
out:
	free(head);
	return rc;
}

static void
httpconn_read_cb(struct bufferevent *bev, void *arg)
{
	struct httpconn	*c = arg;

	(void)bev;
	while (!c->c_closing && httpconn_one(c) == 1)
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
