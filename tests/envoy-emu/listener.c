/*
 * The static listeners (static_resources.listeners[] with a socket_address):
 * their sockets (bound, or taken over from the hot restart parent), their
 * stats, and Envoy's listener manager and drain manager: stop accepting
 * (stopListeners), drain (a response may close its connection, see
 * listener_drain_close), and, for a process its hot restart child
 * terminates, finish gently. The connections themselves are httpconn.c's,
 * and the routes of a listener with an HTTP connection manager route.c's.
 *
 * Nothing is accepted before the workers start (the server goes LIVE), as
 * in Envoy: a socket is bound when the listener is created, so that a bad
 * address fails the start, but listen() is only called just before the
 * workers start (Envoy's ListenSocketFactoryImpl::doFinalPreWorkerInit).
 * Until then a client's connect() is refused. A socket taken over from the
 * hot restart parent is listening already: the parent keeps accepting on
 * it until this process is LIVE and tells it to drain, and this process
 * accepts only from then on.
 *
 * Stats per listener, under "listener.<address>_<port>." (or the listener's
 * stat_prefix): downstream_cx_active, downstream_cx_total,
 * downstream_cx_destroy, and the same per worker ("worker_<i>."), workers
 * taking connections in turn.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "agent.h"
#include "emu.h"

#define LISTENER_BACKLOG	1024

struct emu_listener {
	char			*l_name;
	char			*l_address;
	int			 l_port;
	char			*l_key;		/* "127.0.0.1:80", "[::1]:80" */
	int			 l_inbound;
	int			 l_fd;		/* -1 once stopped */
	int			 l_listening;	/* listen() was called */
	struct evconnlistener	*l_evl;		/* accepting; owns l_fd */
	struct route_config	*l_routes;	/* NULL: answered by httpconn.c */
	int			 l_draining;
	struct timespec		 l_drain_start;
	struct stats_entry	*l_cx_active, *l_cx_total, *l_cx_destroy;
	struct stats_entry	**l_w_active, **l_w_total;
	uint64_t		 l_accepted;
	uint64_t		 l_nconns;
};

static struct emu		 *listener_emu;
static struct emu_listener	**listener_all;
static size_t			  listener_n;
static unsigned			  listener_workers;
static int			  listener_drain_started;
static int			  listener_drain_inbound;
static struct event		 *listener_drain_ev;
static int			  listener_terminating;
static void			(*listener_done)(void);
static struct event		 *listener_grace_ev;


size_t
listener_count(void)
{
	return listener_n;
}

struct emu_listener *
listener_at(size_t i)
{
	return listener_all[i];
}

const char *
listener_key(const struct emu_listener *l)
{
	return l->l_key;
}

const char *
listener_name(const struct emu_listener *l)
{
	return l->l_name;
}

const char *
listener_address(const struct emu_listener *l)
{
	return l->l_address;
}

int
listener_port(const struct emu_listener *l)
{
	return l->l_port;
}

/* The listen socket, for the hot restart child; -1 once stopped. */
int
listener_fd(const struct emu_listener *l)
{
	return l->l_fd;
}

/* The routes of l's HTTP connection manager, or NULL. */
struct route_config *
listener_routes(const struct emu_listener *l)
{
	return l->l_routes;
}

struct emu_listener *
listener_find(const char *key)
{
	size_t	i;

	for (i = 0; i < listener_n; i++) {
		if (strcmp(listener_all[i]->l_key, key) == 0)
			return listener_all[i];
	}
	return NULL;
}

uint64_t
listener_active_connections(void)
{
	uint64_t	n = 0;
	size_t		i;

	for (i = 0; i < listener_n; i++)
		n += listener_all[i]->l_nconns;
	return n;
}

/* Envoy's stat name of an address: ':' becomes '_'. */
static char *
listener_stat_name(const char *key)
{
	char	*s, *p;

	s = xstrdup(key);
	for (p = s; *p != '\0'; p++) {
		if (*p == ':')
			*p = '_';
	}
	return s;
}

static int
listener_add(json_t *jl, size_t index, char *err, size_t errlen)
{
	struct emu_listener	*l;
	json_t			*sa;
	const char		*addr, *name, *dir, *prefix;
	json_int_t		 port;
	char			*stat;
	unsigned		 w;

	sa = json_object_get(json_object_get(jl, "address"), "socket_address");
	if (sa == NULL) {
		elog_debug("config", "listener %zu: no socket_address, skipped",
		    index);
		return 0;
	}
	addr = json_string_value(json_object_get(sa, "address"));
	port = json_integer_value(json_object_get(sa, "port_value"));
	if (addr == NULL || !json_is_integer(json_object_get(sa,
	    "port_value")) || port < 0 || port > 65535) {
		snprintf(err, errlen, "listener %zu: socket_address needs an "
		    "address and a port_value in 0-65535", index);
		return -1;
	}
	l = xcalloc(1, sizeof(*l));
	l->l_fd = -1;
	l->l_address = xstrdup(addr);
	l->l_port = (int)port;
	if (strchr(addr, ':') != NULL)
		xasprintf(&l->l_key, "[%s]:%d", addr, (int)port);
	else
		xasprintf(&l->l_key, "%s:%d", addr, (int)port);
	name = json_string_value(json_object_get(jl, "name"));
	l->l_name = xstrdup(name != NULL ? name : l->l_key);
	dir = json_string_value(json_object_get(jl, "traffic_direction"));
	l->l_inbound = (dir != NULL && strcmp(dir, "INBOUND") == 0) ||
	    strcmp(l->l_name, "virtualInbound") == 0;
	prefix = json_string_value(json_object_get(jl, "stat_prefix"));
	stat = prefix != NULL && *prefix != '\0' ? xstrdup(prefix) :
	    listener_stat_name(l->l_key);
	l->l_cx_active = stats_gauge("listener.%s.downstream_cx_active", stat);
	l->l_cx_total = stats_counter("listener.%s.downstream_cx_total", stat);
	l->l_cx_destroy = stats_counter("listener.%s.downstream_cx_destroy",
	    stat);
	l->l_w_active = xcalloc(listener_workers, sizeof(*l->l_w_active));
	l->l_w_total = xcalloc(listener_workers, sizeof(*l->l_w_total));
	for (w = 0; w < listener_workers; w++) {
		l->l_w_active[w] = stats_gauge(
		    "listener.%s.worker_%u.downstream_cx_active", stat, w);
		l->l_w_total[w] = stats_counter(
		    "listener.%s.worker_%u.downstream_cx_total", stat, w);
	}
	free(stat);
	listener_all = xrealloc(listener_all,
	    (listener_n + 1) * sizeof(*listener_all));
	listener_all[listener_n++] = l;
	return route_config_new(jl, l->l_name, &l->l_routes, err, errlen);
}

/* Reads static_resources.listeners; binds nothing yet. */
int
listener_configure(struct emu *e, char *err, size_t errlen)
{
	json_t	*arr, *jl;
	size_t	 i;

	listener_emu = e;
	listener_workers = e->e_opt->o_concurrency > 0 ?
	    e->e_opt->o_concurrency : 1;
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	arr = json_object_get(json_object_get(e->e_config, "static_resources"),
	    "listeners");
	json_array_foreach(arr, i, jl) {
		if (listener_add(jl, i, err, errlen) == -1)
			return -1;
	}
	stats_set(stats_gauge("listener_manager.total_listeners_active"),
	    listener_n);
	stats_set(stats_gauge("listener_manager.total_listeners_warming"), 0);
	stats_set(stats_gauge("listener_manager.total_listeners_draining"), 0);
	stats_add(stats_counter("listener_manager.listener_added"), listener_n);
	return 0;
}

/*
 * Whether the next response on l closes its connection: Envoy's drain
 * manager. Always while terminating or with --drain-strategy immediate; with
 * gradual, with a probability growing from 0 to 1 over --drain-time-s.
 */
int
listener_drain_close(struct emu_listener *l)
{
	struct timespec	now;
	uint64_t	elapsed_ms, drain_ms;

	if (listener_terminating)
		return 1;
	if (!l->l_draining)
		return 0;
	if (listener_emu->e_opt->o_drain_immediate)
		return 1;
	drain_ms = listener_emu->e_opt->o_drain_time_s * 1000;
	if (drain_ms == 0)
		return 1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	elapsed_ms = (uint64_t)(now.tv_sec - l->l_drain_start.tv_sec) * 1000 +
	    (uint64_t)(now.tv_nsec - l->l_drain_start.tv_nsec) / 1000000;
	return elapsed_ms > (uint64_t)random() % drain_ms;
}

int
listener_is_terminating(void)
{
	return listener_terminating;
}

/* A connection of l opened: count it; its worker index. */
unsigned
listener_conn_opened(struct emu_listener *l)
{
	unsigned	w = (unsigned)(l->l_accepted++ % listener_workers);

	l->l_nconns++;
	stats_inc(l->l_cx_total);
	stats_inc(l->l_cx_active);
	stats_inc(l->l_w_total[w]);
	stats_inc(l->l_w_active[w]);
	return w;
}

/* A connection of l closed; a terminating process may be done. */
void
listener_conn_closed(struct emu_listener *l, unsigned w)
{
	void	(*done)(void) = listener_done;

	l->l_nconns--;
	stats_dec(l->l_cx_active);
	stats_dec(l->l_w_active[w]);
	stats_inc(l->l_cx_destroy);
	if (listener_terminating && done != NULL &&
	    listener_active_connections() == 0) {
		listener_done = NULL;
		done();
	}
}

static void
listener_accept_cb(struct evconnlistener *evl, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	(void)evl;
	(void)sa;
	(void)salen;
	httpconn_new(arg, fd);
}

static void
listener_accept_error_cb(struct evconnlistener *evl, void *arg)
{
	struct emu_listener	*l = arg;

	(void)evl;
	elog_warn("connection", "listener %s: accept: %s", l->l_name,
	    strerror(errno));
}

/* Takes the listening socket fd passed by the hot restart parent (owned
 * from now on); it is served once the workers start. */
int
listener_adopt(struct emu_listener *l, int fd)
{
	evutil_make_socket_nonblocking(fd);
	evutil_make_socket_closeonexec(fd);
	l->l_fd = fd;
	l->l_listening = 1;
	return 0;
}

/*
 * Envoy's startWorkers for the listeners: listen() where not done yet, then
 * accept. A listener that cannot listen is logged and removed, as Envoy's
 * listener manager does; the others carry on.
 */
void
listener_start_workers(void)
{
	size_t	i;

	for (i = 0; i < listener_n; i++) {
		struct emu_listener	*l = listener_all[i];

		if (l->l_fd == -1 || l->l_evl != NULL)
			continue;
		if (!l->l_listening && listen(l->l_fd, LISTENER_BACKLOG) == -1) {
			elog_error("config", "final pre-worker listener init "
			    "for listener '%s' failed: cannot listen() "
			    "errno=%d", l->l_name, errno);
			close(l->l_fd);
			l->l_fd = -1;
			stats_inc(stats_counter(
			    "listener_manager.listener_create_failure"));
			stats_dec(stats_gauge(
			    "listener_manager.total_listeners_active"));
			continue;
		}
		l->l_listening = 1;
		/* Backlog 0: libevent leaves the socket's listen() alone. */
		l->l_evl = evconnlistener_new(listener_emu->e_base,
		    listener_accept_cb, l, LEV_OPT_CLOSE_ON_FREE |
		    LEV_OPT_CLOSE_ON_EXEC, 0, l->l_fd);
		if (l->l_evl == NULL) {
			elog_error("config", "listener '%s': cannot accept on "
			    "%s", l->l_name, l->l_key);
			close(l->l_fd);
			l->l_fd = -1;
			continue;
		}
		evconnlistener_set_error_cb(l->l_evl, listener_accept_error_cb);
	}
}

/* Binds l's address (listen() waits for the workers); -1 with Envoy's
 * message in err. */
int
listener_bind(struct emu_listener *l, char *err, size_t errlen)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 slen;
	int			 fd, on = 1;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, l->l_address, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(l->l_port);
		slen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, l->l_address, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(l->l_port);
		slen = sizeof(*sin6);
	} else {
		snprintf(err, errlen, "malformed IP address: %s", l->l_address);
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&ss, slen) == -1) {
		snprintf(err, errlen, "cannot bind '%s': %s", l->l_key,
		    strerror(errno));
		close(fd);
		return -1;
	}
	evutil_make_socket_nonblocking(fd);
	l->l_fd = fd;
	l->l_listening = 0;
	return 0;
}

static int
listener_selected(const struct emu_listener *l, int inbound_only)
{
	return !inbound_only || l->l_inbound;
}

/* Closes l's socket, accepting or not. */
static void
listener_close(struct emu_listener *l)
{
	if (l->l_evl != NULL)
		evconnlistener_free(l->l_evl);	/* closes l_fd */
	else if (l->l_fd != -1)
		close(l->l_fd);
	l->l_evl = NULL;
	l->l_fd = -1;
}

/* Stops accepting (Envoy's stopListeners); open connections carry on. */
void
listener_stop(int inbound_only)
{
	size_t	i;

	for (i = 0; i < listener_n; i++) {
		struct emu_listener	*l = listener_all[i];

		if (!listener_selected(l, inbound_only) || l->l_fd == -1)
			continue;
		elog_info("config", "stopping listener %s on %s", l->l_name,
		    l->l_key);
		listener_close(l);
	}
}

static void
listener_mark_draining(int inbound_only)
{
	size_t	i;

	for (i = 0; i < listener_n; i++) {
		struct emu_listener	*l = listener_all[i];

		if (!listener_selected(l, inbound_only) || l->l_draining)
			continue;
		l->l_draining = 1;
		clock_gettime(CLOCK_MONOTONIC, &l->l_drain_start);
	}
}

static void
listener_drain_done_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	elog_info("main", "drain sequence complete: stopping listeners");
	listener_stop(listener_drain_inbound);
}

/*
 * /drain_listeners?graceful: start the drain sequence (once; later calls
 * are ignored, as in Envoy) and, unless skip_exit, stop the listeners when
 * --drain-time-s has passed.
 */
void
listener_drain(int inbound_only, int stop_after)
{
	struct timeval	tv;

	if (listener_drain_started)
		return;
	listener_drain_started = 1;
	listener_drain_inbound = inbound_only;
	elog_info("main", "starting drain sequence%s",
	    inbound_only ? " (inbound listeners)" : "");
	listener_mark_draining(inbound_only);
	if (!stop_after)
		return;
	tv.tv_sec = (time_t)listener_emu->e_opt->o_drain_time_s;
	tv.tv_usec = 0;
	listener_drain_ev = evtimer_new(listener_emu->e_base,
	    listener_drain_done_cb, NULL);
	evtimer_add(listener_drain_ev, &tv);
}

/* The hot restart child is live: stop accepting and drain every listener. */
void
listener_drain_parent(void)
{
	elog_info("main", "closing and draining listeners");
	listener_stop(0);
	listener_drain_started = 1;
	listener_mark_draining(0);
}

static void
listener_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	void	(*done)(void) = listener_done;

	(void)fd;
	(void)what;
	(void)arg;
	elog_warn("main", "%llu connection(s) still busy after %d ms; closing",
	    (unsigned long long)listener_active_connections(),
	    EMU_TERMINATE_GRACE_MS);
	listener_done = NULL;
	if (done != NULL)
		done();
}

/*
 * Stop for good, gently: no new connections, idle keep-alive connections
 * closed now, a connection with a request in flight (or a fresh one whose
 * first request has not arrived yet) answered with "connection: close".
 * done runs when none is left, or after EMU_TERMINATE_GRACE_MS.
 */
void
listener_terminate(void (*done)(void))
{
	struct timeval	tv;

	listener_terminating = 1;
	listener_done = done;
	listener_stop(0);
	httpconn_close_idle();
	if (listener_done == NULL)
		return;		/* the last idle connection was the last one */
	if (listener_active_connections() == 0) {
		listener_done = NULL;
		done();
		return;
	}
	tv.tv_sec = EMU_TERMINATE_GRACE_MS / 1000;
	tv.tv_usec = (EMU_TERMINATE_GRACE_MS % 1000) * 1000;
	listener_grace_ev = evtimer_new(listener_emu->e_base, listener_grace_cb,
	    NULL);
	evtimer_add(listener_grace_ev, &tv);
}

void
listener_free(void)
{
	size_t	i;

	listener_done = NULL;
	httpconn_free_all();
	for (i = 0; i < listener_n; i++) {
		struct emu_listener	*l = listener_all[i];

		listener_close(l);
		route_config_free(l->l_routes);
		free(l->l_w_active);
		free(l->l_w_total);
		free(l->l_name);
		free(l->l_address);
		free(l->l_key);
		free(l);
	}
	free(listener_all);
	listener_all = NULL;
	listener_n = 0;
	if (listener_drain_ev != NULL)
		event_free(listener_drain_ev);
	if (listener_grace_ev != NULL)
		event_free(listener_grace_ev);
	listener_drain_ev = listener_grace_ev = NULL;
}
