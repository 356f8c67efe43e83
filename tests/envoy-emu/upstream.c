/*
 * One request proxied to a cluster (route.c chose it, httpconn.c asked):
 * the part of Envoy's router a client of the stand-in can observe. The
 * HTTP/1.1 exchange itself is the agent's one client, agent/http.c (over
 * evhttp); what is here is Envoy's: the endpoint (cluster.c, names
 * resolved here), the headers Envoy adds and removes, the cluster's
 * connect_timeout and the route timeout, the cluster stats, and the local
 * reply for each way the exchange can fail.
 *
 * The request goes out on a connection of its own, closed once the
 * response is read (Envoy pools connections; nothing the agent sees
 * depends on that), without a "Connection" header, as Envoy's pooled
 * HTTP/1.1 sends it. What is sent: the method, the request target and the
 * downstream headers less the hop-by-hop ones (connection, keep-alive,
 * proxy-connection, transfer-encoding, upgrade, te) and less "expect:
 * 100-continue", which Envoy answers itself and removes; plus, as Envoy
 * adds them, x-forwarded-proto (when absent), x-request-id (when absent)
 * and x-envoy-expected-rq-timeout-ms (with a route timeout), and the body
 * with a content-length.
 *
 * What comes back is read whole by the client (content-length, chunked,
 * or up to the close; none for HEAD, 204 and 304; a "100 Continue"
 * skipped) and handed to httpconn.c, which relays it. Envoy's local
 * replies where Envoy makes them:
 *
 *   no endpoint, or the name does not resolve:
 *       503 "no healthy upstream"
 *   the connection is refused:
 *       503 "upstream connect error or disconnect/reset before headers.
 *       reset reason: remote connection failure, transport failure
 *       reason: delayed connect error: 111"
 *   the cluster's connect_timeout passes:
 *       503 "... reset reason: connection timeout"
 *   the upstream closes before a complete response head:
 *       503 "... reset reason: connection termination"
 *   the response head is malformed, or an interim 1xx evhttp ends on:
 *       503 "... reset reason: protocol error"
 *   the route timeout passes before the response head:
 *       504 "upstream request timeout"
 *
 * (the wording of Envoy 1.30). An upstream that fails after its response
 * head (the body cut off, malformed or over 64 MiB, or the route timeout)
 * is a reset: Envoy has started the downstream response by then and can
 * only reset it; the callback gets ur_code 0 and closes the downstream
 * connection without a reply.
 *
 * Life of a struct upstream: upstream_new starts it and never calls back
 * from within; the callback runs once, from the event loop, after which
 * the upstream frees itself. upstream_cancel frees it without a callback.
 */
#include <sys/socket.h>
#include <sys/queue.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include "agent.h"
#include "emu.h"

#define UPSTREAM_MAX_BODY	(64 * 1024 * 1024)
#define UPSTREAM_RESET \
	"upstream connect error or disconnect/reset before headers. " \
	"reset reason: "

enum upstream_phase {
	UP_RESOLVING,		/* a STRICT_DNS or LOGICAL_DNS name */
	UP_CONNECTING,		/* the client connects */
	UP_SENT,		/* on a connection: the response is awaited */
	UP_DONE			/* the callback is due */
};

struct upstream {
	struct event_base	*u_base;
	struct cluster		*u_cluster;
	struct cluster_stats	*u_st;
	const struct cluster_endpoint *u_ep;
	enum upstream_phase	 u_phase;
	/* The request, kept until the endpoint's address is known. */
	char			*u_method;
	char			*u_target;
	char			*u_head;	/* the downstream head */
	struct evbuffer		*u_body;
	int64_t			 u_timeout;	/* the route's, ns; 0: none */
	int64_t			 u_start;	/* monotonic ns */
	struct http_request	*u_http;	/* connecting and sent */
	struct evdns_getaddrinfo_request *u_dns;
	/* Resolving: the route timeout; connecting: connect_timeout. */
	struct event		*u_timer;
	struct event		*u_done_ev;
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
upstream_is(const char *const *list, const char *name)
{
	for (; *list != NULL; list++) {
		if (strcasecmp(*list, name) == 0)
			return 1;
	}
	return 0;
}

/* Lets go of the request, the lookup and the timer. */
static void
upstream_release(struct upstream *u)
{
	if (u->u_dns != NULL) {
		/* The lookup's callback sees EVUTIL_EAI_CANCEL: see there. */
		evdns_getaddrinfo_cancel(u->u_dns);
		u->u_dns = NULL;
	}
	http_free(u->u_http);
	u->u_http = NULL;
	evtimer_del(u->u_timer);
}

static void
upstream_free(struct upstream *u)
{
	upstream_release(u);
	event_free(u->u_timer);
	event_free(u->u_done_ev);
	free(u->u_method);
	free(u->u_target);
	free(u->u_head);
	evbuffer_free(u->u_body);
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

/* A local reply of Envoy's with this code and body (text/plain). */
static void
upstream_local(struct upstream *u, int code, const char *body)
{
	u->u_resp.ur_code = code;
	u->u_resp.ur_length = -1;
	evbuffer_add(u->u_resp.ur_body, body, strlen(body));
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
	char	body[256];

	stats_inc(u->u_st->cs_cx_connect_fail);
	stats_inc(u->u_st->cs_rq_pending_fail);
	snprintf(body, sizeof(body), UPSTREAM_RESET "remote connection failure, "
	    "transport failure reason: delayed connect error: %d", err);
	upstream_local(u, 503, body);
}

static void
upstream_route_timeout(struct upstream *u, int head)
{
	stats_inc(u->u_st->cs_rq_timeout);
	if (head)
		upstream_reset(u, "route timeout");
	else
		upstream_local(u, 504, "upstream request timeout");
}

static void
upstream_no_host(struct upstream *u)
{
	stats_inc(u->u_st->cs_cx_none_healthy);
	upstream_local(u, 503, "no healthy upstream");
}

/*
 * The response, as httpconn.c relays it: the status, the headers with
 * their names in lower case as Envoy's HTTP/1 codec writes them, less the
 * hop-by-hop ones, content-length (httpconn.c writes its own) and date
 * and server (Envoy's own), and the body.
 */
static void
upstream_response(struct upstream *u, const struct http_result *res)
{
	struct evbuffer	*hb = evbuffer_new();
	struct evkeyval	*kv;
	size_t		 i;

	TAILQ_FOREACH(kv, res->hs_headers, next) {
		if (upstream_is(upstream_hop_headers, kv->key) ||
		    strcasecmp(kv->key, "content-length") == 0 ||
		    strcasecmp(kv->key, "date") == 0 ||
		    strcasecmp(kv->key, "server") == 0)
			continue;
		for (i = 0; kv->key[i] != '\0'; i++) {
			char	ch = kv->key[i];

			if (ch >= 'A' && ch <= 'Z')
				ch = (char)(ch - 'A' + 'a');
			evbuffer_add(hb, &ch, 1);
		}
		evbuffer_add_printf(hb, ": %s\r\n", kv->value);
	}
	evbuffer_add(hb, "", 1);
	u->u_resp.ur_headers = xstrdup((char *)evbuffer_pullup(hb, -1));
	evbuffer_free(hb);
	u->u_resp.ur_code = res->hs_code;
	u->u_resp.ur_length = res->hs_length;
	/*
	 * Measured to the end of the response, which the client hands over
	 * whole; Envoy's is to its head.
	 */
	u->u_resp.ur_service_ms = (uint64_t)((clock_now_ns() - u->u_start) /
	    CLOCK_MSEC);
	evbuffer_add_buffer(u->u_resp.ur_body, res->hs_body);
	stats_inc(u->u_st->cs_rq_completed);
	upstream_finish(u);
}

/* The client's outcome, mapped to what Envoy does (see the top). */
static void
upstream_http_done(const struct http_result *res, void *arg)
{
	struct upstream	*u = arg;

	/* The client frees the request when this returns. */
	u->u_http = NULL;
	if (res->hs_error != HTTP_ERR_NONE)
		elog_debug("router", "upstream %s: %s", u->u_ep->ce_desc,
		    res->hs_reason);
	switch (res->hs_error) {
	case HTTP_ERR_NONE:
		if (res->hs_code >= 200) {
			upstream_response(u, res);
			return;
		}
		/* An interim 1xx other than 100, which evhttp takes as final. */
		upstream_local(u, 503, UPSTREAM_RESET "protocol error");
		return;
	case HTTP_ERR_REFUSED:
		/*
		 * The client reports no errno: evhttp passes none on here.
		 * It lands here when connect() failed with ECONNREFUSED
		 * (evhttp_connection_cb tests errno for it), or at once
		 * (evhttp_connection_connect_), which on loopback is a
		 * refusal too. So ECONNREFUSED is the errno Envoy's reply
		 * would carry, and on Linux, the platform of both, it is
		 * the 111 of Envoy's text.
		 */
		upstream_connect_failed(u, ECONNREFUSED);
		return;
	case HTTP_ERR_CONNECT:
		/*
		 * With a numeric address: a connect() that failed later and
		 * otherwise (no route to the host, ...). Envoy would print
		 * its errno, which the client does not report; the
		 * stand-in's clusters are on loopback, where only a refusal
		 * happens.
		 */
		stats_inc(u->u_st->cs_cx_connect_fail);
		stats_inc(u->u_st->cs_rq_pending_fail);
		upstream_local(u, 503, UPSTREAM_RESET
		    "remote connection failure");
		return;
	case HTTP_ERR_TIMEOUT:
		/* The client's timeout is the route's (upstream_send). */
		upstream_route_timeout(u, res->hs_code != 0);
		return;
	case HTTP_ERR_CLOSED:
		upstream_local(u, 503, UPSTREAM_RESET "connection termination");
		return;
	case HTTP_ERR_MALFORMED:
		if (res->hs_code == 0) {
			upstream_local(u, 503, UPSTREAM_RESET "protocol error");
			return;
		}
		upstream_reset(u, res->hs_reason);
		return;
	case HTTP_ERR_CUT:
	case HTTP_ERR_TOO_LARGE:
		upstream_reset(u, res->hs_reason);
		return;
	}
}

/* The connection is up: the request is on its way (upstream_rq_total). */
static void
upstream_http_connected(struct http_request *hr, void *arg)
{
	struct upstream	*u = arg;

	(void)hr;
	evtimer_del(u->u_timer);
	u->u_phase = UP_SENT;
	stats_inc(u->u_st->cs_rq_total);
}

static void
upstream_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct upstream	*u = arg;

	(void)fd;
	(void)what;
	switch (u->u_phase) {
	case UP_RESOLVING:
		upstream_route_timeout(u, 0);
		break;
	case UP_CONNECTING:
		elog_debug("pool", "%s: connect timeout", u->u_ep->ce_desc);
		stats_inc(u->u_st->cs_cx_connect_fail);
		stats_inc(u->u_st->cs_cx_connect_timeout);
		stats_inc(u->u_st->cs_rq_pending_fail);
		upstream_local(u, 503, UPSTREAM_RESET "connection timeout");
		break;
	case UP_SENT:
	case UP_DONE:
		break;
	}
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

/*
 * The request's headers (see the top of the file), from the downstream
 * head, which this cuts into names and values.
 */
static void
upstream_headers(struct upstream *u, struct http_request *hr)
{
	char		*line, *end, *colon, *v, *e;
	char		 value[40];
	int		 xfp = 0, rid = 0;
	const char	*m = u->u_method;

	for (line = strstr(u->u_head, "\r\n"); line != NULL; line = end) {
		line += 2;
		if ((end = strstr(line, "\r\n")) == NULL || end == line)
			break;
		*end = '\0';
		if ((colon = strchr(line, ':')) == NULL)
			continue;
		*colon = '\0';
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		for (e = v + strlen(v); e > v && (e[-1] == ' ' ||
		    e[-1] == '\t'); e--)
			;
		*e = '\0';
		if (upstream_is(upstream_hop_headers, line) ||
		    strcasecmp(line, "content-length") == 0 ||
		    (strcasecmp(line, "expect") == 0 &&
		    strcasecmp(v, "100-continue") == 0))
			continue;
		if (strcasecmp(line, "x-forwarded-proto") == 0)
			xfp = 1;
		if (strcasecmp(line, "x-request-id") == 0)
			rid = 1;
		http_header_add(hr, line, v);
	}
	if (!xfp)
		http_header(hr, "x-forwarded-proto", "http");
	if (!rid) {
		upstream_uuid(value, sizeof(value));
		http_header(hr, "x-request-id", value);
	}
	if (u->u_timeout > 0) {
		snprintf(value, sizeof(value), "%lld",
		    (long long)(u->u_timeout / CLOCK_MSEC));
		http_header(hr, "x-envoy-expected-rq-timeout-ms", value);
	}
	if (evbuffer_get_length(u->u_body) > 0 || strcmp(m, "POST") == 0 ||
	    strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) {
		snprintf(value, sizeof(value), "%zu",
		    evbuffer_get_length(u->u_body));
		http_header(hr, "content-length", value);
	}
}

/* Sends the request to the endpoint's address sa. */
static void
upstream_send(struct upstream *u, const struct sockaddr *sa)
{
	struct timeval	 tv;
	char		 host[INET6_ADDRSTRLEN], err[256];
	const void	*addr;
	int64_t		 left = 0, ns = cluster_connect_timeout(u->u_cluster);
	int		 port;

	if (sa->sa_family == AF_INET6) {
		addr = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	} else if (sa->sa_family == AF_INET) {
		addr = &((const struct sockaddr_in *)sa)->sin_addr;
		port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
	} else {
		/* A pipe: evhttp (libevent 2.1) connects over TCP only. */
		elog_warn("upstream", "%s: envoy-emu cannot proxy to a pipe",
		    u->u_ep->ce_desc);
		upstream_no_host(u);
		return;
	}
	inet_ntop(sa->sa_family, addr, host, sizeof(host));
	/* The route timeout runs from upstream_new: what is left of it. */
	if (u->u_timeout > 0) {
		left = u->u_start + u->u_timeout - clock_now_ns();
		if (left <= 0) {
			upstream_route_timeout(u, 0);
			return;
		}
	}
	u->u_http = http_new(u->u_base, u->u_method, host, port, u->u_target,
	    left);
	upstream_headers(u, u->u_http);
	if (evbuffer_get_length(u->u_body) > 0)
		http_body(u->u_http, evbuffer_pullup(u->u_body, -1),
		    evbuffer_get_length(u->u_body));
	http_keep(u->u_http, UPSTREAM_MAX_BODY, 0);
	http_keepalive(u->u_http);
	http_callbacks(u->u_http, NULL, upstream_http_done, u);
	http_on_connect(u->u_http, upstream_http_connected);
	u->u_phase = UP_CONNECTING;
	stats_inc(u->u_st->cs_cx_total);
	if (http_start(u->u_http, err, sizeof(err)) == -1) {
		/* A port of 0, which connect() refuses as well. */
		elog_debug("pool", "%s: %s", u->u_ep->ce_desc, err);
		http_free(u->u_http);
		u->u_http = NULL;
		upstream_connect_failed(u, ECONNREFUSED);
		return;
	}
	if (ns > 0) {
		tv = clock_tv(ns);
		evtimer_add(u->u_timer, &tv);
	}
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
	evtimer_del(u->u_timer);
	if (result != 0 || ai == NULL) {
		elog_debug("upstream", "%s: %s", u->u_ep->ce_desc,
		    evutil_gai_strerror(result));
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		upstream_no_host(u);
		return;
	}
	upstream_send(u, ai->ai_addr);
	evutil_freeaddrinfo(ai);
}

static void
upstream_resolve(struct upstream *u)
{
	struct evutil_addrinfo		 hints;
	struct evdns_getaddrinfo_request *req;
	struct timeval			 tv;
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
	if (u->u_timeout > 0) {
		tv = clock_tv(u->u_timeout);
		evtimer_add(u->u_timer, &tv);
	}
	/* The callback may run before this returns (NULL then). */
	req = evdns_getaddrinfo(upstream_dns, u->u_ep->ce_host, port, &hints,
	    upstream_resolved_cb, u);
	if (req != NULL && u->u_phase == UP_RESOLVING)
		u->u_dns = req;
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
	static const struct cluster_endpoint none = {
		.ce_desc = (char *)"(none)"
	};
	struct upstream	*u;

	u = xcalloc(1, sizeof(*u));
	u->u_base = base;
	u->u_cluster = cl;
	u->u_st = cluster_stats(cl);
	u->u_ep = &none;
	u->u_cb = cb;
	u->u_arg = arg;
	u->u_method = xstrdup(method);
	u->u_target = xstrdup(target);
	u->u_head = xstrdup(head);
	u->u_body = evbuffer_new();
	evbuffer_add_buffer(u->u_body, body);
	u->u_timeout = timeout > 0 ? timeout : 0;
	u->u_start = clock_now_ns();
	u->u_resp.ur_body = evbuffer_new();
	u->u_resp.ur_length = -1;
	if ((u->u_timer = evtimer_new(base, upstream_timer_cb, u)) == NULL ||
	    (u->u_done_ev = event_new(base, -1, 0, upstream_done_cb, u)) ==
	    NULL)
		fatalx("event_new");
	if (!http_method_valid(method)) {
		/* The methods evhttp can send; Envoy would forward any. */
		elog_warn("upstream", "envoy-emu cannot proxy method %s",
		    method);
		upstream_local(u, 501, "");
		return u;
	}
	stats_inc(u->u_st->cs_rq_pending_total);
	if ((u->u_ep = cluster_pick(cl)) == NULL) {
		u->u_ep = &none;
		upstream_no_host(u);
	} else if (u->u_ep->ce_kind == CLUSTER_EP_DNS)
		upstream_resolve(u);
	else
		upstream_send(u, (const struct sockaddr *)&u->u_ep->ce_addr);
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
