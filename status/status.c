/*
 * The agent's two HTTP servers: the status port (--statusPort, 15020:
 * readiness, application probes, merged metrics, quit and drain, debug
 * pages) and the Prometheus port (ENVOY_PROMETHEUS_PORT, 15090: the proxy's
 * metrics and the agent's). Both are evhttp servers on the one event base.
 *
 * Limits keep a misbehaving client from hurting the agent: request headers
 * and bodies are capped (evhttp answers 400/413 and closes), an idle or
 * stalled connection is closed after STATUS_IDLE_TIMEOUT, and at most
 * STATUS_MAX_CONNECTIONS connections are open per port. evhttp 2.1 has no
 * connection limit and no hook for a connection's end, so we make each
 * connection's bufferevent (evhttp_set_bevcb) and keep a reference to it:
 * when evhttp frees it, its callbacks are cleared (and evhttp has already
 * shut down the sending side, so the client sees the end at once), which a
 * sweep notices; dropping our reference then closes the socket. At the
 * limit the listener is disabled, so further clients wait in the kernel's
 * backlog instead of being dropped.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include "status.h"

#define STATUS_MAX_HEADERS	8192
#define STATUS_MAX_BODY		16384
#define STATUS_DEFAULT_IDLE	(15 * 1000000000LL)
#define STATUS_DEFAULT_CONNS	256
#define STATUS_QUIT_DELAY_MS	200
#define STATUS_SWEEP_MS		200

enum status_kind {
	SERVER_STATUS,
	SERVER_PROMETHEUS
};

struct status_conn {
	struct bufferevent		*sc_bev;	/* our reference */
	int64_t				 sc_opened;	/* monotonic ns */
	int				 sc_served;	/* a request came whole */
	int				 sc_cut;
	TAILQ_ENTRY(status_conn)	 sc_entry;
};

TAILQ_HEAD(status_conns, status_conn);

struct status_server {
	struct status		*ss_status;
	struct status_conns	 ss_conns;
	struct event		*ss_sweep_ev;
	enum status_kind	 ss_kind;
	struct evhttp		*ss_http;
	struct evconnlistener	*ss_listener;
	int			 ss_port;
	int			 ss_nconns;
	int			 ss_maxconns;
	int			 ss_paused;
	int64_t			 ss_idle;	/* ns */
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
status_listen(int port, char *err, size_t errlen)
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
		    listen(fd, 128) == 0)
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
	    listen(fd, 128) == 0)
		return fd;
fail:
	snprintf(err, errlen, "cannot listen on port %d: %s", port,
	    strerror(errno));
	if (fd != -1)
		close(fd);
	return -1;
}

static int64_t
status_now(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * A client that has not sent one whole request within the idle time of
 * opening its connection is cut off: evhttp's own timeout restarts with
 * every byte, so a client trickling its headers would otherwise hold a
 * connection, and at the limit the port, for ever. Shutting the socket
 * down lets evhttp see the end and free the connection itself.
 */
static void
status_cut_slow(struct status_server *ss, struct status_conn *c, int64_t now)
{
	evutil_socket_t	fd;

	if (c->sc_served || c->sc_cut || now - c->sc_opened < ss->ss_idle)
		return;
	if ((fd = bufferevent_getfd(c->sc_bev)) == -1)
		return;
	c->sc_cut = 1;
	log_debug("port %d: no whole request within the idle time; closing",
	    ss->ss_port);
	(void)shutdown(fd, SHUT_RDWR);
}

/*
 * Drops the connections evhttp has freed (their callbacks are cleared);
 * with all, every one (the server is going away).
 */
static void
status_sweep(struct status_server *ss, int all)
{
	struct status_conn	*c, *next;
	bufferevent_data_cb	 rcb, wcb;
	bufferevent_event_cb	 ecb;
	void			*arg;
	int64_t			 now = status_now();

	for (c = TAILQ_FIRST(&ss->ss_conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, sc_entry);
		bufferevent_getcb(c->sc_bev, &rcb, &wcb, &ecb, &arg);
		if (!all && (rcb != NULL || wcb != NULL || ecb != NULL)) {
			status_cut_slow(ss, c, now);
			continue;
		}
		TAILQ_REMOVE(&ss->ss_conns, c, sc_entry);
		bufferevent_decref(c->sc_bev);
		free(c);
		ss->ss_nconns--;
	}
	if (ss->ss_paused && ss->ss_nconns < ss->ss_maxconns) {
		ss->ss_paused = 0;
		evconnlistener_enable(ss->ss_listener);
	}
}

static void
status_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct status_server	*ss = arg;
	struct timeval		 tv = { 0, STATUS_SWEEP_MS * 1000 };

	(void)fd;
	(void)what;
	status_sweep(ss, 0);
	if (!TAILQ_EMPTY(&ss->ss_conns))
		evtimer_add(ss->ss_sweep_ev, &tv);
}

static struct bufferevent *
status_bevcb(struct event_base *base, void *arg)
{
	struct status_server	*ss = arg;
	struct status_conn	*c;
	struct bufferevent	*bev;
	struct timeval		 tv = { 0, STATUS_SWEEP_MS * 1000 };

	if (ss->ss_nconns + 1 >= ss->ss_maxconns)
		status_sweep(ss, 0);
	/* evhttp sets the socket on it; our reference keeps it open. */
	if ((bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) ==
	    NULL)
		return NULL;
	bufferevent_incref(bev);
	c = xcalloc(1, sizeof(*c));
	c->sc_bev = bev;
	c->sc_opened = status_now();
	TAILQ_INSERT_TAIL(&ss->ss_conns, c, sc_entry);
	if (!evtimer_pending(ss->ss_sweep_ev, NULL))
		evtimer_add(ss->ss_sweep_ev, &tv);
	if (++ss->ss_nconns >= ss->ss_maxconns && !ss->ss_paused) {
		ss->ss_paused = 1;
		evconnlistener_disable(ss->ss_listener);
		log_warnx("port %d: %d connections open, not accepting more "
		    "until one closes", ss->ss_port, ss->ss_nconns);
	}
	return bev;
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
status_quit_sent(struct evhttp_request *req, void *arg)
{
	struct status	*st = arg;

	(void)req;
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
		evhttp_request_set_on_complete_cb(req, status_quit_sent, st);
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

static void
status_gencb(struct evhttp_request *req, void *arg)
{
	struct status_server	*ss = arg;
	struct status		*st = ss->ss_status;
	const struct evhttp_uri	*uri;
	const char		*path;
	struct bufferevent	*bev;
	struct status_conn	*c;

	/* This connection has sent a whole request: no longer suspect. */
	bev = evhttp_connection_get_bufferevent(
	    evhttp_request_get_connection(req));
	TAILQ_FOREACH(c, &ss->ss_conns, sc_entry) {
		if (c->sc_bev == bev) {
			c->sc_served = 1;
			break;
		}
	}
	uri = evhttp_request_get_evhttp_uri(req);
	path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	if (path == NULL || *path == '\0')
		path = "/";
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

/* A Go duration or count from the environment, for the limits. */
static int
status_env_limits(int64_t *idle, int *conns, char *err, size_t errlen)
{
	const char	*v;
	char		 why[128], *end;
	long		 n;

	*idle = STATUS_DEFAULT_IDLE;
	*conns = STATUS_DEFAULT_CONNS;
	if ((v = getenv("STATUS_IDLE_TIMEOUT")) != NULL && *v != '\0') {
		if (duration_parse(v, idle, why, sizeof(why)) == -1 ||
		    *idle <= 0) {
			snprintf(err, errlen, "invalid value \"%s\" for "
			    "STATUS_IDLE_TIMEOUT: not a positive duration", v);
			return -1;
		}
	}
	if ((v = getenv("STATUS_MAX_CONNECTIONS")) != NULL && *v != '\0') {
		errno = 0;
		n = strtol(v, &end, 10);
		if (*end != '\0' || errno != 0 || n < 1 || n > 100000) {
			snprintf(err, errlen, "invalid value \"%s\" for "
			    "STATUS_MAX_CONNECTIONS: not a number from 1 to "
			    "100000", v);
			return -1;
		}
		*conns = (int)n;
	}
	return 0;
}

static struct status_server *
status_server_new(struct status *st, enum status_kind kind, int port,
    int64_t idle, int conns, char *err, size_t errlen)
{
	struct status_server	*ss;
	struct evhttp_bound_socket *bound;
	struct timeval		 tv;
	int			 fd;

	ss = xcalloc(1, sizeof(*ss));
	ss->ss_status = st;
	ss->ss_kind = kind;
	ss->ss_port = port;
	ss->ss_maxconns = conns;
	ss->ss_idle = idle;
	TAILQ_INIT(&ss->ss_conns);
	ss->ss_sweep_ev = evtimer_new(st->st_base, status_sweep_cb, ss);
	if ((ss->ss_http = evhttp_new(st->st_base)) == NULL) {
		snprintf(err, errlen, "cannot make an HTTP server");
		event_free(ss->ss_sweep_ev);
		free(ss);
		return NULL;
	}
	evhttp_set_max_headers_size(ss->ss_http, STATUS_MAX_HEADERS);
	evhttp_set_max_body_size(ss->ss_http, STATUS_MAX_BODY);
	tv.tv_sec = idle / 1000000000LL;
	tv.tv_usec = (idle % 1000000000LL) / 1000;
	evhttp_set_timeout_tv(ss->ss_http, &tv);
	/* Every method reaches our handlers, which answer 405 themselves. */
	evhttp_set_allowed_methods(ss->ss_http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_bevcb(ss->ss_http, status_bevcb, ss);
	evhttp_set_gencb(ss->ss_http, status_gencb, ss);
	if ((fd = status_listen(port, err, errlen)) == -1)
		goto fail;
	if ((bound = evhttp_accept_socket_with_handle(ss->ss_http, fd)) ==
	    NULL) {
		close(fd);
		snprintf(err, errlen, "cannot serve HTTP on port %d", port);
		goto fail;
	}
	ss->ss_listener = evhttp_bound_socket_get_listener(bound);
	return ss;
fail:
	evhttp_free(ss->ss_http);
	event_free(ss->ss_sweep_ev);
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
	status_sweep(ss, 1);
	event_free(ss->ss_sweep_ev);
	free(ss);
}

struct status *
status_new(struct event_base *base, struct config *cf, struct supervise *sv,
    struct relay *relay, char *err, size_t errlen)
{
	struct status	*st;
	int64_t		 idle;
	int		 conns;

	if (status_env_limits(&idle, &conns, err, errlen) == -1)
		return NULL;
	st = xcalloc(1, sizeof(*st));
	st->st_base = base;
	st->st_config = cf;
	st->st_sv = sv;
	st->st_relay = relay;
	st->st_quit_ev = evtimer_new(base, status_quit_cb, st);
	if ((st->st_probe = probe_new(st, err, errlen)) == NULL)
		goto fail;
	if ((st->st_metrics = metrics_new(st, err, errlen)) == NULL)
		goto fail;
	st->st_ready = ready_new(st);
	if ((st->st_status = status_server_new(st, SERVER_STATUS,
	    cf->cf_status_port, idle, conns, err, errlen)) == NULL)
		goto fail;
	if (cf->cf_prometheus_port != cf->cf_status_port &&
	    (st->st_prom = status_server_new(st, SERVER_PROMETHEUS,
	    cf->cf_prometheus_port, idle, conns, err, errlen)) == NULL)
		goto fail;
	log_info("status server on port %d, Prometheus metrics on port %d",
	    cf->cf_status_port, cf->cf_prometheus_port);
	return st;
fail:
	status_free(st);
	return NULL;
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
	event_free(st->st_quit_ev);
	free(st);
}
