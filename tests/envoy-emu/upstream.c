/*
 * One request proxied to a cluster (route.c chose it, httpconn.c asked):
 * the part of Envoy's router and HTTP/1.1 connection pool a client of the
 * stand-in can observe.
 *
 * The request goes out as HTTP/1.1 on a connection of its own, closed once
 * the response is complete (Envoy pools connections; nothing the agent
 * sees depends on that). What is sent: the method, the request target and
 * the downstream headers less the hop-by-hop ones (connection, keep-alive,
 * proxy-connection, transfer-encoding, upgrade, te), plus, as Envoy adds
 * them, x-forwarded-proto (when absent), x-request-id (when absent) and
 * x-envoy-expected-rq-timeout-ms (with a route timeout), and the body with
 * a content-length.
 *
 * What comes back is read whole (content-length, chunked, or up to the
 * close; none for HEAD, 1xx, 204 and 304; interim 1xx responses skipped)
 * and handed to the callback, which relays it (httpconn.c). Envoy's local
 * replies where Envoy makes them:
 *
 *   no endpoint, or the name does not resolve:
 *       503 "no healthy upstream"
 *   connect() fails with errno N:
 *       503 "upstream connect error or disconnect/reset before headers.
 *       reset reason: remote connection failure, transport failure
 *       reason: delayed connect error: N"
 *   the cluster's connect_timeout passes:
 *       503 "... reset reason: connection timeout"
 *   the upstream closes before a complete response head:
 *       503 "... reset reason: connection termination"
 *   the response head is malformed or over 60 KiB:
 *       503 "... reset reason: protocol error"
 *   the route timeout passes:
 *       504 "upstream request timeout"
 *
 * (the wording of Envoy 1.30). An upstream that fails after its response
 * head is a reset: Envoy has started the downstream response by then and
 * can only reset it; the callback gets ur_code 0 and closes the downstream
 * connection without a reply.
 *
 * Life of a struct upstream: upstream_new starts it and never calls back
 * from within; the callback runs once, from the event loop, after which
 * the upstream frees itself. upstream_cancel frees it without a callback.
 *
 * A client of its own rather than the agent's (status/fetch.c, a GET
 * through evhttp, private to the status server): a proxy forwards any
 * method and body, relays the upstream's headers as they came, and needs
 * the connect() errno for Envoy's reply.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "agent.h"
#include "emu.h"

#define UPSTREAM_MAX_HEAD	(60 * 1024)
#define UPSTREAM_MAX_BODY	(64 * 1024 * 1024)
#define UPSTREAM_MAX_LINE	1024
#define UPSTREAM_RESET \
	"upstream connect error or disconnect/reset before headers. " \
	"reset reason: "

enum upstream_phase {
	UP_RESOLVING,
	UP_CONNECTING,
	UP_HEAD,		/* connected: waiting for the response head */
	UP_BODY,
	UP_DONE			/* the callback is due */
};

enum upstream_framing {
	UF_NONE,		/* no body */
	UF_LENGTH,
	UF_CHUNKED,
	UF_CLOSE		/* up to the close */
};

enum upstream_chunk {
	UC_SIZE,
	UC_DATA,
	UC_DATA_END,
	UC_TRAILER
};

struct upstream {
	struct event_base	*u_base;
	struct cluster		*u_cluster;
	struct cluster_stats	*u_st;
	const struct cluster_endpoint *u_ep;
	enum upstream_phase	 u_phase;
	struct evbuffer		*u_req;		/* sent once connected */
	int			 u_head_only;	/* a HEAD request */
	int			 u_fd;		/* while connecting */
	struct bufferevent	*u_bev;		/* once connected */
	struct evdns_getaddrinfo_request *u_dns;
	struct event		*u_connect_ev;
	struct event		*u_timeout_ev;
	struct event		*u_done_ev;
	struct timespec		 u_start;
	enum upstream_framing	 u_framing;
	enum upstream_chunk	 u_chunk;
	uint64_t		 u_left;
	struct upstream_response u_resp;
	upstream_cb		 u_cb;
	void			*u_arg;
};

static struct evdns_base	*upstream_dns;

static const char *const upstream_hop_headers[] = {
	"connection", "keep-alive", "proxy-connection", "transfer-encoding",
	"upgrade", "te", NULL
};

static int
upstream_is(const char *const *list, const char *name, size_t len)
{
	for (; *list != NULL; list++) {
		if (strlen(*list) == len && strncasecmp(*list, name, len) == 0)
			return 1;
	}
	return 0;
}

static uint64_t
upstream_elapsed_ms(const struct upstream *u)
{
	struct timespec	now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)(now.tv_sec - u->u_start.tv_sec) * 1000 +
	    (uint64_t)((now.tv_nsec - u->u_start.tv_nsec) / 1000000);
}

/* Lets go of the connection, the lookup and the timers. */
static void
upstream_release(struct upstream *u)
{
	if (u->u_dns != NULL) {
		/* The lookup's callback sees EVUTIL_EAI_CANCEL: see there. */
		evdns_getaddrinfo_cancel(u->u_dns);
		u->u_dns = NULL;
	}
	if (u->u_connect_ev != NULL)
		event_free(u->u_connect_ev);
	u->u_connect_ev = NULL;
	if (u->u_fd != -1)
		close(u->u_fd);
	u->u_fd = -1;
	if (u->u_bev != NULL)
		bufferevent_free(u->u_bev);
	u->u_bev = NULL;
	if (u->u_timeout_ev != NULL)
		evtimer_del(u->u_timeout_ev);
}

static void
upstream_free(struct upstream *u)
{
	upstream_release(u);
	if (u->u_timeout_ev != NULL)
		event_free(u->u_timeout_ev);
	event_free(u->u_done_ev);
	evbuffer_free(u->u_req);
	evbuffer_free(u->u_resp.ur_body);
	free(u->u_resp.ur_headers);
	free(u);
}

static void
upstream_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream	*u = arg;

	(void)fd;
	(void)what;
	u->u_cb(&u->u_resp, u->u_arg);
	upstream_free(u);
}

/* The outcome is in u_resp: call back from the loop. */
static void
upstream_finish(struct upstream *u)
{
	upstream_release(u);
	u->u_phase = UP_DONE;
	event_active(u->u_done_ev, EV_TIMEOUT, 1);
}

/* A local reply of Envoy's with this code and body. */
static void
upstream_local(struct upstream *u, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
upstream_local(struct upstream *u, int code, const char *fmt, ...)
{
	va_list	ap;

	u->u_resp.ur_code = code;
	free(u->u_resp.ur_headers);
	u->u_resp.ur_headers = NULL;
	evbuffer_drain(u->u_resp.ur_body,
	    evbuffer_get_length(u->u_resp.ur_body));
	va_start(ap, fmt);
	evbuffer_add_vprintf(u->u_resp.ur_body, fmt, ap);
	va_end(ap);
	u->u_resp.ur_length = -1;
	upstream_finish(u);
}

/* A failure after the response head: Envoy resets the downstream. */
static void
upstream_reset(struct upstream *u, const char *why)
{
	elog_debug("router", "upstream %s reset after the response started: "
	    "%s", u->u_ep->ce_desc, why);
	u->u_resp.ur_code = 0;
	upstream_finish(u);
}

static void
upstream_connect_failed(struct upstream *u, int err)
{
	elog_debug("pool", "%s: connection failure: %s", u->u_ep->ce_desc,
	    strerror(err));
	stats_inc(u->u_st->cs_cx_connect_fail);
	stats_inc(u->u_st->cs_rq_pending_fail);
	upstream_local(u, 503, UPSTREAM_RESET "remote connection failure, "
	    "transport failure reason: delayed connect error: %d", err);
}

static void
upstream_complete(struct upstream *u)
{
	stats_inc(u->u_st->cs_rq_completed);
	upstream_finish(u);
}

/* The head in head (NUL-terminated): status, relayed headers, framing. */
static int
upstream_head(struct upstream *u, const char *head, int code)
{
	struct evbuffer	*hb;
	const char	*line, *end, *colon, *v;
	char		 value[64];
	long long	 clen = -1;
	int		 chunked = 0;
	size_t		 nlen, vlen, i;

	hb = evbuffer_new();
	for (line = strstr(head, "\r\n"); line != NULL; line = end) {
		line += 2;
		if ((end = strstr(line, "\r\n")) == NULL || end == line)
			break;
		if ((colon = memchr(line, ':', end - line)) == NULL)
			continue;
		nlen = colon - line;
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		vlen = end - v;
		while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
			vlen--;
		if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0) {
			snprintf(value, sizeof(value), "%.*s", (int)vlen, v);
			clen = strtoll(value, NULL, 10);
			continue;
		}
		if (nlen == 17 &&
		    strncasecmp(line, "transfer-encoding", 17) == 0 &&
		    vlen >= 7 && strncasecmp(v + vlen - 7, "chunked", 7) == 0)
			chunked = 1;
		if (upstream_is(upstream_hop_headers, line, nlen) ||
		    (nlen == 4 && strncasecmp(line, "date", 4) == 0) ||
		    (nlen == 6 && strncasecmp(line, "server", 6) == 0))
			continue;
		/* Envoy's HTTP/1 codec writes header names in lower case. */
		for (i = 0; i < nlen; i++) {
			char	ch = line[i];

			if (ch >= 'A' && ch <= 'Z')
				ch = (char)(ch - 'A' + 'a');
			evbuffer_add(hb, &ch, 1);
		}
		evbuffer_add_printf(hb, ": %.*s\r\n", (int)vlen, v);
	}
	evbuffer_add(hb, "", 1);
	free(u->u_resp.ur_headers);
	u->u_resp.ur_headers = xstrdup((char *)evbuffer_pullup(hb, -1));
	evbuffer_free(hb);
	u->u_resp.ur_code = code;
	u->u_resp.ur_length = clen;
	u->u_resp.ur_service_ms = upstream_elapsed_ms(u);
	u->u_phase = UP_BODY;
	if (u->u_head_only || code == 204 || code == 304 || code < 200)
		u->u_framing = UF_NONE;
	else if (chunked) {
		u->u_framing = UF_CHUNKED;
		u->u_chunk = UC_SIZE;
	} else if (clen >= 0) {
		if (clen > UPSTREAM_MAX_BODY)
			return -1;
		u->u_framing = UF_LENGTH;
		u->u_left = (uint64_t)clen;
	} else
		u->u_framing = UF_CLOSE;
	return 0;
}

/* 1: a final response head was read, 0: more is needed, -1: finished. */
static int
upstream_read_head(struct upstream *u, struct evbuffer *in)
{
	struct evbuffer_ptr	 p;
	char			*head;
	size_t			 hlen;
	int			 code;

	for (;;) {
		p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
		if (p.pos < 0) {
			if (evbuffer_get_length(in) <= UPSTREAM_MAX_HEAD)
				return 0;
			upstream_local(u, 503, UPSTREAM_RESET
			    "protocol error");
			return -1;
		}
		hlen = (size_t)p.pos + 4;
		head = xmalloc(hlen + 1);
		evbuffer_remove(in, head, hlen);
		head[hlen] = '\0';
		if (sscanf(head, "HTTP/1.%*d %3d", &code) != 1 || code < 100) {
			free(head);
			upstream_local(u, 503, UPSTREAM_RESET
			    "protocol error");
			return -1;
		}
		if (code < 200 && code != 101) {	/* interim */
			free(head);
			continue;
		}
		code = upstream_head(u, head, code) == -1 ? -1 : 1;
		free(head);
		if (code == -1) {
			upstream_reset(u, "response too large");
			return -1;
		}
		return 1;
	}
}

/* Moves up to n bytes of in to the body; -1 when it grows too large. */
static int
upstream_take(struct upstream *u, struct evbuffer *in, uint64_t n)
{
	struct evbuffer	*body = u->u_resp.ur_body;

	if (n > evbuffer_get_length(in))
		n = evbuffer_get_length(in);
	if (evbuffer_get_length(body) + n > UPSTREAM_MAX_BODY)
		return -1;
	evbuffer_remove_buffer(in, body, n);
	if (u->u_framing != UF_CLOSE)
		u->u_left -= n;
	return 0;
}

/* 1: the body is complete, 0: more is needed, -1: broken. */
static int
upstream_read_body(struct upstream *u, struct evbuffer *in)
{
	char			*line, *end;
	unsigned long long	 size;

	switch (u->u_framing) {
	case UF_NONE:
		return 1;
	case UF_LENGTH:
		if (upstream_take(u, in, u->u_left) == -1)
			return -1;
		return u->u_left == 0;
	case UF_CLOSE:
		return upstream_take(u, in, evbuffer_get_length(in));
	case UF_CHUNKED:
		break;
	}
	for (;;) {
		switch (u->u_chunk) {
		case UC_SIZE:
		case UC_DATA_END:
		case UC_TRAILER:
			line = evbuffer_readln(in, NULL, EVBUFFER_EOL_CRLF);
			if (line == NULL)
				return evbuffer_get_length(in) >
				    UPSTREAM_MAX_LINE ? -1 : 0;
			if (u->u_chunk == UC_DATA_END) {
				free(line);
				u->u_chunk = UC_SIZE;
				continue;
			}
			if (u->u_chunk == UC_TRAILER) {
				size = *line == '\0';
				free(line);
				if (size)
					return 1;
				continue;
			}
			errno = 0;
			size = strtoull(line, &end, 16);
			if (end == line || errno != 0 ||
			    (*end != '\0' && *end != ';' && *end != ' ')) {
				free(line);
				return -1;
			}
			free(line);
			u->u_left = size;
			u->u_chunk = size == 0 ? UC_TRAILER : UC_DATA;
			break;
		case UC_DATA:
			if (upstream_take(u, in, u->u_left) == -1)
				return -1;
			if (u->u_left > 0)
				return 0;
			u->u_chunk = UC_DATA_END;
			break;
		}
	}
}

static void
upstream_read_cb(struct bufferevent *bev, void *arg)
{
	struct upstream	*u = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);
	int		 r;

	if (u->u_phase == UP_HEAD && upstream_read_head(u, in) != 1)
		return;
	if (u->u_phase != UP_BODY)
		return;
	if ((r = upstream_read_body(u, in)) == -1)
		upstream_reset(u, "bad response body");
	else if (r == 1 && u->u_framing != UF_CLOSE)
		upstream_complete(u);
}

static void
upstream_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct upstream	*u = arg;
	int		 err = EVUTIL_SOCKET_ERROR();

	(void)bev;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (u->u_phase == UP_HEAD) {
		elog_debug("router", "upstream %s closed before a response "
		    "(%s)", u->u_ep->ce_desc, (what & BEV_EVENT_ERROR) ?
		    strerror(err) : "EOF");
		upstream_local(u, 503, UPSTREAM_RESET "connection termination");
	} else if (u->u_phase == UP_BODY && u->u_framing == UF_CLOSE &&
	    !(what & BEV_EVENT_ERROR))
		upstream_complete(u);
	else if (u->u_phase == UP_BODY)
		upstream_reset(u, "closed before the end of the body");
}

static void
upstream_connected(struct upstream *u)
{
	if (u->u_connect_ev != NULL)
		event_free(u->u_connect_ev);
	u->u_connect_ev = NULL;
	u->u_bev = bufferevent_socket_new(u->u_base, u->u_fd,
	    BEV_OPT_CLOSE_ON_FREE);
	u->u_fd = -1;
	bufferevent_setcb(u->u_bev, upstream_read_cb, NULL, upstream_event_cb,
	    u);
	u->u_phase = UP_HEAD;
	stats_inc(u->u_st->cs_rq_total);
	evbuffer_add_buffer(bufferevent_get_output(u->u_bev), u->u_req);
	bufferevent_enable(u->u_bev, EV_READ | EV_WRITE);
}

static void
upstream_connect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream	*u = arg;
	socklen_t	 len = sizeof(int);
	int		 err = 0;

	if (what & EV_TIMEOUT) {
		elog_debug("pool", "%s: connect timeout", u->u_ep->ce_desc);
		stats_inc(u->u_st->cs_cx_connect_fail);
		stats_inc(u->u_st->cs_cx_connect_timeout);
		stats_inc(u->u_st->cs_rq_pending_fail);
		upstream_local(u, 503, UPSTREAM_RESET "connection timeout");
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == -1)
		err = errno;
	if (err != 0)
		upstream_connect_failed(u, err);
	else
		upstream_connected(u);
}

/*
 * Connects with a socket of its own rather than bufferevent_socket_connect,
 * which loses the errno of a connection refused at once (as connect() on
 * loopback does): Envoy's reply carries it.
 */
static void
upstream_connect(struct upstream *u, const struct sockaddr *sa,
    socklen_t salen)
{
	struct timeval	tv;
	int64_t		ns = cluster_connect_timeout(u->u_cluster);

	u->u_phase = UP_CONNECTING;
	stats_inc(u->u_st->cs_cx_total);
	u->u_fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (u->u_fd == -1) {
		upstream_connect_failed(u, errno);
		return;
	}
	if (connect(u->u_fd, sa, salen) == 0) {
		upstream_connected(u);
		return;
	}
	if (errno != EINPROGRESS) {
		upstream_connect_failed(u, errno);
		return;
	}
	u->u_connect_ev = event_new(u->u_base, u->u_fd, EV_WRITE,
	    upstream_connect_cb, u);
	tv.tv_sec = ns / 1000000000;
	tv.tv_usec = (ns % 1000000000) / 1000;
	event_add(u->u_connect_ev, ns > 0 ? &tv : NULL);
}

static void
upstream_no_host(struct upstream *u)
{
	stats_inc(u->u_st->cs_cx_none_healthy);
	upstream_local(u, 503, "no healthy upstream");
}

static void
upstream_resolved_cb(int result, struct evutil_addrinfo *ai, void *arg)
{
	struct upstream	*u = arg;

	if (result == EVUTIL_EAI_CANCEL) {
		/* Cancelled by upstream_release: u may be gone already. */
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		return;
	}
	u->u_dns = NULL;
	if (result != 0 || ai == NULL) {
		elog_debug("upstream", "%s: %s", u->u_ep->ce_desc,
		    evutil_gai_strerror(result));
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		upstream_no_host(u);
		return;
	}
	upstream_connect(u, ai->ai_addr, (socklen_t)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
}

static void
upstream_resolve(struct upstream *u)
{
	struct evutil_addrinfo		 hints;
	struct evdns_getaddrinfo_request *req;
	char				 port[16];

	if (upstream_dns == NULL &&
	    (upstream_dns = evdns_base_new(u->u_base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS |
	    EVDNS_BASE_DISABLE_WHEN_INACTIVE)) == NULL)
		upstream_dns = evdns_base_new(u->u_base, 0);
	if (upstream_dns == NULL) {
		upstream_no_host(u);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = cluster_family(u->u_cluster);
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	snprintf(port, sizeof(port), "%d", u->u_ep->ce_port);
	u->u_phase = UP_RESOLVING;
	/* The callback may run before this returns (NULL then). */
	req = evdns_getaddrinfo(upstream_dns, u->u_ep->ce_host, port, &hints,
	    upstream_resolved_cb, u);
	if (req != NULL && u->u_phase == UP_RESOLVING)
		u->u_dns = req;
}

static void
upstream_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream	*u = arg;

	(void)fd;
	(void)what;
	stats_inc(u->u_st->cs_rq_timeout);
	if (u->u_phase == UP_BODY)
		upstream_reset(u, "route timeout");
	else
		upstream_local(u, 504, "upstream request timeout");
}

/* A random version 4 UUID, as Envoy's x-request-id. */
static void
upstream_uuid(char *buf, size_t len)
{
	unsigned char	b[16];
	size_t		i;

	for (i = 0; i < sizeof(b); i++)
		b[i] = (unsigned char)random();
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(buf, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
	    b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* The request to send: see the top of the file. */
static struct evbuffer *
upstream_request(const char *method, const char *target, const char *head,
    struct evbuffer *body, int64_t timeout)
{
	struct evbuffer	*req = evbuffer_new();
	const char	*line, *end, *colon;
	size_t		 nlen;
	int		 xfp = 0, rid = 0;
	char		 uuid[40];

	evbuffer_add_printf(req, "%s %s HTTP/1.1\r\n", method, target);
	for (line = strstr(head, "\r\n"); line != NULL; line = end) {
		line += 2;
		if ((end = strstr(line, "\r\n")) == NULL || end == line)
			break;
		if ((colon = memchr(line, ':', end - line)) == NULL)
			continue;
		nlen = colon - line;
		if (upstream_is(upstream_hop_headers, line, nlen) ||
		    (nlen == 14 && strncasecmp(line, "content-length", 14) == 0))
			continue;
		if (nlen == 17 && strncasecmp(line, "x-forwarded-proto", 17) == 0)
			xfp = 1;
		if (nlen == 12 && strncasecmp(line, "x-request-id", 12) == 0)
			rid = 1;
		evbuffer_add(req, line, end - line + 2);
	}
	if (!xfp)
		evbuffer_add_printf(req, "x-forwarded-proto: http\r\n");
	if (!rid) {
		upstream_uuid(uuid, sizeof(uuid));
		evbuffer_add_printf(req, "x-request-id: %s\r\n", uuid);
	}
	if (timeout > 0)
		evbuffer_add_printf(req, "x-envoy-expected-rq-timeout-ms: "
		    "%lld\r\n", (long long)(timeout / 1000000));
	if (evbuffer_get_length(body) > 0 || strcmp(method, "POST") == 0 ||
	    strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0)
		evbuffer_add_printf(req, "content-length: %zu\r\n",
		    evbuffer_get_length(body));
	evbuffer_add(req, "\r\n", 2);
	evbuffer_add_buffer(req, body);
	return req;
}

/*
 * Proxies a request to cluster cl: method, target, the downstream request
 * head (request line and headers, for the headers), its body (emptied
 * here), the route timeout (0: none). cb runs once, from the event loop.
 */
struct upstream *
upstream_new(struct event_base *base, struct cluster *cl, const char *method,
    const char *target, const char *head, struct evbuffer *body,
    int64_t timeout, upstream_cb cb, void *arg)
{
	struct upstream	*u;
	struct timeval	 tv;

	u = xcalloc(1, sizeof(*u));
	u->u_base = base;
	u->u_cluster = cl;
	u->u_st = cluster_stats(cl);
	u->u_fd = -1;
	u->u_cb = cb;
	u->u_arg = arg;
	u->u_head_only = strcmp(method, "HEAD") == 0;
	u->u_req = upstream_request(method, target, head, body, timeout);
	u->u_resp.ur_body = evbuffer_new();
	u->u_resp.ur_length = -1;
	u->u_done_ev = event_new(base, -1, 0, upstream_done_cb, u);
	clock_gettime(CLOCK_MONOTONIC, &u->u_start);
	stats_inc(u->u_st->cs_rq_pending_total);
	if (timeout > 0) {
		u->u_timeout_ev = evtimer_new(base, upstream_timeout_cb, u);
		tv.tv_sec = timeout / 1000000000;
		tv.tv_usec = (timeout % 1000000000) / 1000;
		evtimer_add(u->u_timeout_ev, &tv);
	}
	if ((u->u_ep = cluster_pick(cl)) == NULL) {
		static const struct cluster_endpoint none = {
			.ce_desc = (char *)"(none)"
		};

		u->u_ep = &none;
		upstream_no_host(u);
	} else if (u->u_ep->ce_kind == CLUSTER_EP_DNS)
		upstream_resolve(u);
	else
		upstream_connect(u, (const struct sockaddr *)&u->u_ep->ce_addr,
		    u->u_ep->ce_addrlen);
	return u;
}

/* Drops a request whose downstream went away: no callback. */
void
upstream_cancel(struct upstream *u)
{
	if (u != NULL)
		upstream_free(u);
}

/* At exit, once every upstream is gone. */
void
upstream_shutdown(void)
{
	if (upstream_dns != NULL)
		evdns_base_free(upstream_dns, 0);
	upstream_dns = NULL;
}
