/*
 * The agent's two HTTP servers: the status port (--statusPort, 15020:
 * readiness, application probes, merged metrics, quit and drain, debug
 * pages) and the Prometheus port (ENVOY_PROMETHEUS_PORT, 15090: the proxy's
 * metrics and the agent's). Both are evhttp servers on the one event base.
 *
 * Limits keep a misbehaving client from hurting the agent: request headers
 * and bodies are capped (evhttp answers 400/413 and closes), an idle or
 * stalled connection is closed after STATUS_IDLE_TIMEOUT, and connections
 * are capped per port (STATUS_MAX_CONNECTIONS) and per source address
 * (STATUS_MAX_CONNECTIONS_PER_PEER), idle ones closed first to admit new
 * ones, with room kept for readiness: conn.c.
 *
 * The environment is read and checked by status_new, which binds nothing,
 * so that a bad variable is a usage error before anything is created;
 * status_listen then binds the ports.
 */
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <event2/keyvalq_struct.h>

#include "status.h"

#define STATUS_MAX_HEADERS	8192
#define STATUS_MAX_BODY		16384
#define STATUS_DEFAULT_CONNS	256	/* the most the default is */
#define STATUS_MIN_CONNS	8	/* the least */
#define STATUS_FD_RESERVE	128	/* descriptors for the rest */
#define STATUS_FDS_PER_CONN	3	/* a scrape's: client, proxy, app */
#define STATUS_QUIT_DELAY_MS	200
/*
 * The kernel's queue of connections not yet accepted. A client that keeps
 * it full (re-opening each connection we close) would have a new client's
 * SYN dropped, and that client wait a second or more for its retry; so it
 * holds more than a flood of a few hundred sockets can fill (the kernel
 * caps it at net.core.somaxconn).
 */
#define STATUS_BACKLOG		1024

enum status_kind {
	SERVER_STATUS,
	SERVER_PROMETHEUS
};

struct status_server {
	struct status		*ss_status;
	enum status_kind	 ss_kind;
	struct evhttp		*ss_http;
	struct conn_table	*ss_conns;
	int			 ss_port;
};

enum {
	QUIT_NONE,
	QUIT_EXIT,
};

/*
 * A listening socket on every address: IPv6 with IPv4 mapped where the host
 * has IPv6, else IPv4 only, like Go's ":15020".
 */
static int
status_socket(int port, char *err, size_t errlen)
{
	struct sockaddr_in6	 sin6;
	struct sockaddr_in	 sin;
	int			 fd, on = 1, off = 0;

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd != -1) {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)port);
		sin6.sin6_addr = in6addr_any;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off,
		    sizeof(off)) == 0 &&
		    bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0 &&
		    listen(fd, STATUS_BACKLOG) == 0)
			return fd;
		if (errno == EADDRINUSE)
			goto fail;
		close(fd);
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		goto fail;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_ANY);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    listen(fd, STATUS_BACKLOG) == 0)
		return fd;
fail:
	snprintf(err, errlen, "cannot listen on port %d: %s", port,
	    strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

void
status_reply(struct evhttp_request *req, int code, const char *type,
    const char *body)
{
	struct evbuffer	*buf;

	if (type != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", type);
	buf = evbuffer_new();
	if (body != NULL)
		evbuffer_add(buf, body, strlen(body));
	evhttp_send_reply(req, code, NULL, buf);
	evbuffer_free(buf);
}

/* Whether the peer is a loopback address (127/8, ::1, ::ffff:127/104). */
int
status_from_loopback(struct evhttp_request *req)
{
	struct evhttp_connection	*evcon;
	const struct sockaddr		*sa;
	const struct sockaddr_in6	*sin6;
	const uint8_t			*a;

	if ((evcon = evhttp_request_get_connection(req)) == NULL ||
	    (sa = evhttp_connection_get_addr(evcon)) == NULL)
		return 0;
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)(const void *)sa)->
		    sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family != AF_INET6)
		return 0;
	sin6 = (const struct sockaddr_in6 *)(const void *)sa;
	if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
		return 1;
	a = sin6->sin6_addr.s6_addr;
	return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && a[12] == 127;
}

static void
status_quit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct status	*st = arg;

	(void)fd;
	(void)what;
	if (st->st_quit_what != QUIT_EXIT)
		return;
	st->st_quit_what = QUIT_NONE;
	if (st->st_sv == NULL)
		return;
	/*
	 * Quit is idempotent: once the proxy is being stopped, a second
	 * shutdown would escalate to SIGKILL, as a repeated SIGTERM does.
	 */
	if (supervise_stopping(st->st_sv)) {
		log_info("POST /quitquitquit: already stopping");
		return;
	}
	log_info("POST /quitquitquit: stopping the proxy now, no drain");
	supervise_shutdown(st->st_sv, 1);
}

static void
status_quit_sent(void *arg)
{
	struct status	*st = arg;

	event_active(st->st_quit_ev, EV_TIMEOUT, 0);
}

/* POST /quitquitquit and POST /drain: loopback only, POST only. */
static void
status_handle_mutate(struct status *st, struct evhttp_request *req,
    int quit)
{
	struct timeval	tv = { 0, STATUS_QUIT_DELAY_MS * 1000 };

	if (!status_from_loopback(req)) {
		status_reply(req, 403, "text/plain; charset=utf-8",
		    "Only requests from localhost are allowed\n");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "POST");
		status_reply(req, 405, "text/plain; charset=utf-8",
		    "Method Not Allowed\n");
		return;
	}
	if (quit) {
		/*
		 * Stop once the answer has been written (or a moment later if
		 * the client went away), so the caller sees its 200.
		 */
		st->st_quit_what = QUIT_EXIT;
		conn_after_reply(st->st_status->ss_conns, req,
		    status_quit_sent, st);
		evtimer_add(st->st_quit_ev, &tv);
		status_reply(req, 200, "text/plain; charset=utf-8", "OK");
		return;
	}
	status_reply(req, 200, "text/plain; charset=utf-8", "OK");
	log_info("POST /drain: draining the proxy; a later SIGTERM exits at "
	    "once");
	if (st->st_sv != NULL)
		supervise_drain(st->st_sv);
}

static void
status_not_found(struct evhttp_request *req)
{
	status_reply(req, 404, "text/plain; charset=utf-8",
	    "404 page not found\n");
}

/*
 * An answer after which the connection is closed. The length is given
 * here because evhttp 2.1 leaves it out of an answer to CONNECT, whose
 * answer it takes for the start of a tunnel.
 */
static void
status_refuse(struct status_server *ss, struct evhttp_request *req,
    int code, const char *body)
{
	struct evkeyvalq	*out = evhttp_request_get_output_headers(req);
	char			 len[32];

	snprintf(len, sizeof(len), "%zu", strlen(body));
	evhttp_add_header(out, "Content-Length", len);
	evhttp_add_header(out, "Connection", "close");
	conn_close_after_reply(ss->ss_conns, req);
	status_reply(req, code, "text/plain; charset=utf-8", body);
}

/*
 * Whether the request's length is ambiguous: Content-Length twice with
 * different values, or with Transfer-Encoding. evhttp 2.1 reads the body
 * by the first Content-Length and ignores any other, so a proxy in front
 * that went by another one would see other requests than we do (request
 * smuggling); RFC 9112 (6.3) has such a request rejected.
 */
static int
status_length_ambiguous(struct evhttp_request *req)
{
	struct evkeyvalq	*in = evhttp_request_get_input_headers(req);
	struct evkeyval		*kv;
	const char		*len = NULL;

	TAILQ_FOREACH(kv, in, next) {
		if (strcasecmp(kv->key, "Content-Length") != 0)
			continue;
		if (len != NULL && strcmp(len, kv->value) != 0)
			return 1;
		len = kv->value;
	}
	return len != NULL &&
	    evhttp_find_header(in, "Transfer-Encoding") != NULL;
}

static void
status_gencb(struct evhttp_request *req, void *arg)
{
	struct status_server	*ss = arg;
	struct status		*st = ss->ss_status;
	const struct evhttp_uri	*uri;
	const char		*path;
	int			 ready;

	/*
	 * We are no proxy: a request in absolute form ("GET http://host/p")
	 * is for us, as RFC 9112 (3.2.2) has it. evhttp 2.1 marks one for a
	 * host it does not know as a proxy request, and then goes by
	 * Proxy-Connection instead of Connection, so the client's
	 * "Connection: close" is left out of the answer.
	 */
	req->flags &= ~EVHTTP_PROXY_REQUEST;
	uri = evhttp_request_get_evhttp_uri(req);
	path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	if (path == NULL || *path == '\0')
		path = "/";
	ready = ss->ss_kind == SERVER_STATUS &&
	    strcmp(path, "/healthz/ready") == 0;
	if (conn_begin(ss->ss_conns, req, ready) == -1) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Retry-After", "1");
		status_refuse(ss, req, 503, "too many requests in progress\n");
		return;
	}
	if (evhttp_request_get_command(req) == EVHTTP_REQ_CONNECT) {
		status_refuse(ss, req, 501, "CONNECT is not supported\n");
		return;
	}
	if (status_length_ambiguous(req)) {
		status_refuse(ss, req, 400, "conflicting Content-Length or "
		    "Transfer-Encoding headers\n");
		return;
	}
	if (ss->ss_kind == SERVER_PROMETHEUS) {
		if (strcmp(path, "/stats/prometheus") == 0)
			metrics_handle(st->st_metrics, req, 0);
		else
			status_not_found(req);
		return;
	}
	if (strcmp(path, "/healthz/ready") == 0)
		ready_handle(st->st_ready, req);
	else if (strncmp(path, "/app-health/", 12) == 0 ||
	    strncmp(path, "/app-lifecycle/", 15) == 0)
		probe_handle(st->st_probe, req);
	else if (strcmp(path, "/stats/prometheus") == 0 ||
	    strcmp(path, "/metrics") == 0)
		metrics_handle(st->st_metrics, req, 1);
	else if (strcmp(path, "/quitquitquit") == 0)
		status_handle_mutate(st, req, 1);
	else if (strcmp(path, "/drain") == 0)
		status_handle_mutate(st, req, 0);
	else if (strcmp(path, "/debug/epochs") == 0)
		debug_handle_epochs(st, req);
	else if (strcmp(path, "/debug/syncz") == 0)
		debug_handle_syncz(st, req);
	else
		status_not_found(req);
}

/*
 * How many connections each port has descriptors for, by the open file
 * limit (RLIMIT_NOFILE): STATUS_FD_RESERVE descriptors are left to the
 * rest of the agent (standard streams, the event loop, the relay's gRPC
 * channels and threads, the supervisor's admin requests, the bootstrap and
 * watched files), and the remainder is shared by the two ports, each
 * connection counted as STATUS_FDS_PER_CONN descriptors: its own, and a
 * metrics scrape's requests to the proxy and the application. So
 * (nofile - 128) / 6; the default cap is that, at most 256 (149 for 1024,
 * 256 from 1664 up) and at least 8: below that, accepts pause when
 * descriptors run out (conn.c).
 */
static long long
status_fd_conns(void)
{
	struct rlimit	rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 ||
	    rl.rlim_cur == RLIM_INFINITY)
		return LLONG_MAX;
	if (rl.rlim_cur <= STATUS_FD_RESERVE)
		return 0;
	return (long long)((rl.rlim_cur - STATUS_FD_RESERVE) /
	    (2 * STATUS_FDS_PER_CONN));
}

/*
 * The limits of both ports, from the configuration (config.c read and
 * checked the variables). A peer's share defaults to a quarter of the
 * port's cap. An eighth of the status port's connections is kept for
 * readiness: other requests may hold the rest (sl_busy).
 */
static void
status_limits(const struct config *cf, struct status_limits *sl)
{
	long long	 fd_conns = status_fd_conns();

	memset(sl, 0, sizeof(*sl));
	sl->sl_idle = cf->cf_status_idle;
	sl->sl_conns = cf->cf_status_conns;
	sl->sl_peer = cf->cf_status_peer;
	if (sl->sl_conns == 0) {
		sl->sl_conns = STATUS_DEFAULT_CONNS;
		if (fd_conns < sl->sl_conns)
			sl->sl_conns = fd_conns < STATUS_MIN_CONNS ?
			    STATUS_MIN_CONNS : (int)fd_conns;
	} else if (sl->sl_conns > fd_conns)
		log_warnx("STATUS_MAX_CONNECTIONS=%d: more than the open file "
		    "limit leaves room for (%lld per port); accepts pause when "
		    "descriptors run out", sl->sl_conns, fd_conns);
	if (sl->sl_peer == 0)
		sl->sl_peer = sl->sl_conns / 4 > 0 ? sl->sl_conns / 4 : 1;
	sl->sl_busy = sl->sl_conns - sl->sl_conns / 8;
}

static struct status_server *
status_server_new(struct status *st, enum status_kind kind, int port,
    char *err, size_t errlen)
{
	struct status_server	*ss;
	struct evhttp_bound_socket *bound;
	struct status_limits	 sl = st->st_limits;
	struct timeval		 tv;
	int			 fd;

	ss = xcalloc(1, sizeof(*ss));
	ss->ss_status = st;
	ss->ss_kind = kind;
	ss->ss_port = port;
	if ((ss->ss_http = evhttp_new(st->st_base)) == NULL) {
		snprintf(err, errlen, "cannot make an HTTP server");
		free(ss);
		return NULL;
	}
	/* No readiness here: every connection may do the other work. */
	if (kind == SERVER_PROMETHEUS)
		sl.sl_busy = sl.sl_conns;
	ss->ss_conns = conn_table_new(st->st_base, ss->ss_http, port, &sl);
	evhttp_set_max_headers_size(ss->ss_http, STATUS_MAX_HEADERS);
	evhttp_set_max_body_size(ss->ss_http, STATUS_MAX_BODY);
	tv = clock_tv(sl.sl_idle);
	evhttp_set_timeout_tv(ss->ss_http, &tv);
	/*
	 * Every method reaches our handlers, which answer 405 themselves;
	 * CONNECT too, which evhttp would refuse with an answer that has no
	 * length on a connection it keeps open.
	 */
	evhttp_set_allowed_methods(ss->ss_http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH |
	    EVHTTP_REQ_CONNECT);
	evhttp_set_gencb(ss->ss_http, status_gencb, ss);
	if ((fd = status_socket(port, err, errlen)) == -1)
		goto fail;
	if ((bound = evhttp_accept_socket_with_handle(ss->ss_http, fd)) ==
	    NULL) {
		close(fd);
		snprintf(err, errlen, "cannot serve HTTP on port %d", port);
		goto fail;
	}
	conn_table_listen(ss->ss_conns, evhttp_bound_socket_get_listener(
	    bound));
	return ss;
fail:
	evhttp_free(ss->ss_http);
	conn_table_free(ss->ss_conns);
	free(ss);
	return NULL;
}

static void
status_server_free(struct status_server *ss)
{
	if (ss == NULL)
		return;
	/* Frees every connection; then our references go. */
	evhttp_free(ss->ss_http);
	conn_table_free(ss->ss_conns);
	free(ss);
}

/*
 * Checks what the status servers were given (the probers' and the metrics
 * annotations' JSON); binds nothing. The result is freed with status_free,
 * listening or not.
 */
struct status *
status_new(struct config *cf, char *err, size_t errlen)
{
	struct status	*st;

	st = xcalloc(1, sizeof(*st));
	st->st_config = cf;
	status_limits(cf, &st->st_limits);
	if ((st->st_probe = probe_new(st, err, errlen)) == NULL)
		goto fail;
	if ((st->st_metrics = metrics_new(st, err, errlen)) == NULL)
		goto fail;
	st->st_ready = ready_new(st);
	return st;
fail:
	status_free(st);
	return NULL;
}

/* Binds the status and Prometheus ports and serves them on base. */
int
status_listen(struct status *st, struct event_base *base,
    struct supervise *sv, struct relay *relay, char *err, size_t errlen)
{
	struct config	*cf = st->st_config;

	st->st_base = base;
	st->st_sv = sv;
	st->st_relay = relay;
	st->st_quit_ev = evtimer_new(base, status_quit_cb, st);
	if (probe_start(st->st_probe, err, errlen) == -1)
		return -1;
	if ((st->st_status = status_server_new(st, SERVER_STATUS,
	    cf->cf_status_port, err, errlen)) == NULL)
		return -1;
	if (cf->cf_prometheus_port != cf->cf_status_port &&
	    (st->st_prom = status_server_new(st, SERVER_PROMETHEUS,
	    cf->cf_prometheus_port, err, errlen)) == NULL)
		return -1;
	log_info("status server on port %d, Prometheus metrics on port %d "
	    "(at most %d connections each, %d per client address)",
	    cf->cf_status_port, cf->cf_prometheus_port, st->st_limits.sl_conns,
	    st->st_limits.sl_peer);
	return 0;
}

void
status_free(struct status *st)
{
	if (st == NULL)
		return;
	status_server_free(st->st_prom);
	status_server_free(st->st_status);
	ready_free(st->st_ready);
	metrics_free(st->st_metrics);
	probe_free(st->st_probe);
	if (st->st_quit_ev != NULL)
		event_free(st->st_quit_ev);
	free(st);
}
