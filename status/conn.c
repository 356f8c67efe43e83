/*
 * The connections of one of the agent's HTTP servers, and the limits that
 * keep a client, or many, from locking the others out of the port (the
 * kubelet's readiness probe above all):
 *
 *  - at most sl_conns connections per port and sl_peer per source address;
 *  - a new connection over either cap is admitted by closing an idle one.
 *    A connection is idle when no request of its is with a handler: it has
 *    sent nothing yet, or part of a request, or waits between requests.
 *    Over its peer's share, the peer's own oldest idle connection goes
 *    (the new one when there is none). At the port's cap, the oldest idle
 *    connection of the peer holding the most goes, if that peer holds at
 *    least as many as the newcomer's did, and more than one: a flood
 *    cannot take the place of a lighter client, such as the kubelet's
 *    probe or a scraper that keeps its connection. With none to close,
 *    the new connection is kept a little over the cap (it may be a
 *    readiness request) and the port stops accepting until a connection
 *    is answered; further over, only a client's first connection is;
 *  - no connection is closed for a newcomer in the round in which it was
 *    accepted: it has not yet had its turn to be read, and its request
 *    may be waiting in the socket;
 *  - requests other than readiness hold at most sl_busy connections, so
 *    that room is always left for readiness, whose checks end within
 *    seconds; past that they are answered 503 and closed (status.c);
 *  - a connection that has not sent one whole request within the idle time
 *    of opening is closed: evhttp's own timeout restarts with every byte,
 *    so a client trickling its headers would otherwise hold it for ever;
 *  - when accept() fails (EMFILE, ENFILE: no descriptor left) the listener
 *    pauses and tries again CONN_RETRY_MS later, instead of being woken at
 *    once for the same pending connection, in a loop, for ever; each try
 *    closes one idle connection so that a new one can get in.
 *
 * evhttp 2.1 has no hook for a connection's start that gives its address,
 * nor one for its end, so we make each connection's bufferevent
 * (evhttp_set_bevcb) and keep a reference to it. The peer is read from the
 * socket once evhttp has set it, by an event that runs right after the
 * listener's accepts (ct_admit_ev: one round); at most ct_batch
 * connections are accepted before that, which bounds how far a burst goes
 * over the caps. When evhttp frees a connection, its
 * callbacks are cleared, which a sweep notices; dropping our reference then
 * closes the socket. To close one ourselves we free it through evhttp: the
 * argument of the callbacks evhttp sets on its bufferevent is the
 * connection (http.c of 2.1 passes it in every state), and only idle
 * connections are closed, so no handler's request goes with it.
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

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "status.h"

#define CONN_SWEEP_MS	200
#define CONN_RETRY_MS	200	/* after accept() failed */
#define CONN_BATCH	16	/* accepted before they are admitted */
#define CONN_LOG_EVERY	(10 * 1000000000LL)

/* Why the listener is paused; it accepts when none holds. */
enum {
	CONN_PAUSE_BATCH = 1,	/* accepted, not yet admitted */
	CONN_PAUSE_BUSY = 2,	/* at the cap, no connection idle */
	CONN_PAUSE_ACCEPT = 4	/* accept() failed; try again later */
};

struct conn_peer {
	struct in6_addr		 cp_addr;	/* IPv4 as v4-mapped */
	int			 cp_nconns;
	TAILQ_ENTRY(conn_peer)	 cp_entry;
};

TAILQ_HEAD(conn_peers, conn_peer);

struct conn {
	struct bufferevent	*cn_bev;	/* our reference */
	struct conn_peer	*cn_peer;	/* NULL until admitted */
	int64_t			 cn_opened;	/* monotonic ns */
	int64_t			 cn_idle_since;	/* opened, last answer */
	int			 cn_served;	/* a request came whole */
	int			 cn_busy;	/* one is with a handler */
	int			 cn_counted;	/* ... in ct_nbusy */
	int			 cn_close;	/* close once answered */
	unsigned		 cn_round;	/* admitted in it */
	void			(*cn_done_cb)(void *);
	void			*cn_done_arg;
	TAILQ_ENTRY(conn)	 cn_entry;
};

TAILQ_HEAD(conns, conn);

struct conn_table {
	struct event_base	*ct_base;
	struct evhttp		*ct_http;
	struct evconnlistener	*ct_listener;	/* evhttp's */
	struct conns		 ct_conns;	/* oldest first */
	struct conn_peers	 ct_peers;
	struct event		*ct_sweep_ev;
	struct event		*ct_admit_ev;
	struct event		*ct_retry_ev;
	struct status_limits	 ct_limits;
	int			 ct_port;
	int			 ct_nconns;
	int			 ct_nnew;	/* not yet admitted */
	int			 ct_nbusy;	/* counted requests */
	int			 ct_batch;
	int			 ct_slack;	/* over the cap */
	unsigned		 ct_round;	/* of admission */
	int			 ct_pause;	/* CONN_PAUSE_* */
	int			 ct_enabled;	/* the listener is */
	int			 ct_accept_failing;
	int64_t			 ct_accept_logged;
	int64_t			 ct_shed_logged;
	int64_t			 ct_busy_logged;
	unsigned long		 ct_shed_peer;	/* since last logged */
	unsigned long		 ct_shed_port;
	unsigned long		 ct_refused;
	TAILQ_ENTRY(conn_table)	 ct_entry;
};

/*
 * Every table, for the listener's error callback: evhttp sets its own
 * argument on the listener (the evhttp), and the error callback gets it.
 */
static TAILQ_HEAD(, conn_table) conn_tables =
    TAILQ_HEAD_INITIALIZER(conn_tables);

static void
conn_listener_update(struct conn_table *ct)
{
	int	want = ct->ct_pause == 0;

	if (ct->ct_listener == NULL || want == ct->ct_enabled)
		return;
	ct->ct_enabled = want;
	if (want)
		evconnlistener_enable(ct->ct_listener);
	else
		evconnlistener_disable(ct->ct_listener);
}

/* The peer's address as an IPv6 one, IPv4 mapped, so one key fits both. */
static int
conn_peer_addr(const struct sockaddr_storage *ss, struct in6_addr *a)
{
	const struct sockaddr_in	*sin;

	if (ss->ss_family == AF_INET6) {
		*a = ((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr;
		return 0;
	}
	if (ss->ss_family != AF_INET)
		return -1;
	sin = (const struct sockaddr_in *)(const void *)ss;
	memset(a, 0, sizeof(*a));
	a->s6_addr[10] = 0xff;
	a->s6_addr[11] = 0xff;
	memcpy(&a->s6_addr[12], &sin->sin_addr, 4);
	return 0;
}

static struct conn_peer *
conn_peer_get(struct conn_table *ct, const struct in6_addr *a)
{
	struct conn_peer	*p;

	TAILQ_FOREACH(p, &ct->ct_peers, cp_entry) {
		if (memcmp(&p->cp_addr, a, sizeof(*a)) == 0)
			return p;
	}
	p = xcalloc(1, sizeof(*p));
	p->cp_addr = *a;
	TAILQ_INSERT_TAIL(&ct->ct_peers, p, cp_entry);
	return p;
}

static void
conn_peer_name(const struct conn_peer *p, char *buf, size_t len)
{
	if (IN6_IS_ADDR_V4MAPPED(&p->cp_addr))
		inet_ntop(AF_INET, &p->cp_addr.s6_addr[12], buf, len);
	else
		inet_ntop(AF_INET6, &p->cp_addr, buf, len);
}

/* evhttp's connection, or NULL once evhttp has freed it. */
static struct evhttp_connection *
conn_evcon(struct conn *c)
{
	bufferevent_data_cb	 rcb, wcb;
	bufferevent_event_cb	 ecb;
	void			*arg;

	bufferevent_getcb(c->cn_bev, &rcb, &wcb, &ecb, &arg);
	if (rcb == NULL && wcb == NULL && ecb == NULL)
		return NULL;
	return arg;
}

/* Forgets a connection; dropping our reference closes its socket. */
static void
conn_drop(struct conn_table *ct, struct conn *c)
{
	TAILQ_REMOVE(&ct->ct_conns, c, cn_entry);
	if (c->cn_peer == NULL)
		ct->ct_nnew--;
	else if (--c->cn_peer->cp_nconns == 0) {
		TAILQ_REMOVE(&ct->ct_peers, c->cn_peer, cp_entry);
		free(c->cn_peer);
	}
	if (c->cn_counted)
		ct->ct_nbusy--;
	ct->ct_nconns--;
	bufferevent_decref(c->cn_bev);
	free(c);
}

/* Closes an idle connection now. */
static void
conn_close(struct conn_table *ct, struct conn *c)
{
	struct evhttp_connection	*evcon;

	if ((evcon = conn_evcon(c)) != NULL)
		evhttp_connection_free(evcon);
	conn_drop(ct, c);
}

/*
 * The idle connection to close first: of peer p if given, else of the peer
 * holding the most connections, and at least min of them; the oldest of
 * those. One admitted in this round is never chosen: evhttp has not yet
 * read it, and a burst would otherwise close a client's connection with
 * its request unread.
 */
static struct conn *
conn_victim(struct conn_table *ct, struct conn_peer *p, int min)
{
	struct conn	*c, *best = NULL;

	TAILQ_FOREACH(c, &ct->ct_conns, cn_entry) {
		if (c->cn_peer == NULL || c->cn_busy ||
		    c->cn_round == ct->ct_round ||
		    (p != NULL && c->cn_peer != p) ||
		    c->cn_peer->cp_nconns < min)
			continue;
		if (best == NULL ||
		    c->cn_peer->cp_nconns > best->cn_peer->cp_nconns ||
		    (c->cn_peer->cp_nconns == best->cn_peer->cp_nconns &&
		    c->cn_idle_since < best->cn_idle_since))
			best = c;
	}
	return best;
}

/* Under a flood this happens at every accept: one line every 10s. */
static void
conn_shed_log(struct conn_table *ct, struct conn_peer *p)
{
	int64_t	now = clock_now_ns();
	char	name[INET6_ADDRSTRLEN];

	if (ct->ct_shed_logged != 0 &&
	    now - ct->ct_shed_logged < CONN_LOG_EVERY)
		return;
	ct->ct_shed_logged = now;
	conn_peer_name(p, name, sizeof(name));
	log_warnx("port %d: connection limits reached (last from %s): "
	    "closed %lu idle connections of peers over their share of %d and "
	    "%lu at the port's limit of %d to admit new ones; refused %lu new "
	    "ones of peers with no idle connection to give", ct->ct_port, name,
	    ct->ct_shed_peer, ct->ct_limits.sl_peer, ct->ct_shed_port,
	    ct->ct_limits.sl_conns, ct->ct_refused);
	ct->ct_shed_peer = ct->ct_shed_port = ct->ct_refused = 0;
}

/* A connection just accepted: its peer's share, then the port's cap. */
static void
conn_admit(struct conn_table *ct, struct conn *c)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	struct in6_addr		 a;
	struct conn_peer	*p;
	struct conn		*v;
	evutil_socket_t		 fd;
	int64_t			 now;
	int			 admitted;

	if ((fd = bufferevent_getfd(c->cn_bev)) == -1 ||
	    getpeername(fd, (struct sockaddr *)&ss, &len) == -1 ||
	    conn_peer_addr(&ss, &a) == -1) {
		conn_close(ct, c);
		return;
	}
	p = conn_peer_get(ct, &a);
	c->cn_peer = p;
	c->cn_round = ct->ct_round;
	p->cp_nconns++;
	ct->ct_nnew--;
	if (p->cp_nconns > ct->ct_limits.sl_peer) {
		/* With none to give, the peer's newest goes. */
		if ((v = conn_victim(ct, p, 0)) == NULL) {
			v = c;
			ct->ct_refused++;
		} else
			ct->ct_shed_peer++;
		conn_shed_log(ct, p);
		conn_close(ct, v);
		return;
	}
	admitted = ct->ct_nconns - ct->ct_nnew;
	if (admitted <= ct->ct_limits.sl_conns)
		return;
	/*
	 * At the port's cap, a peer takes the place of an idle connection of
	 * a peer holding at least as many as it held, never of a lighter one,
	 * nor a peer's only one: a flood cannot take the place of a probe, or
	 * of a scraper's kept-alive connection.
	 */
	if ((v = conn_victim(ct, NULL, p->cp_nconns > 2 ? p->cp_nconns - 1 :
	    2)) != NULL) {
		ct->ct_shed_port++;
		conn_shed_log(ct, p);
		conn_close(ct, v);
		return;
	}
	/*
	 * Every connection is busy, or new. A little over the cap, c is kept
	 * and may still be a readiness request (others are then answered
	 * 503 and closed at once, as more than sl_busy are in progress);
	 * past that, only a client's first connection is, and past twice
	 * that, none.
	 */
	if ((admitted > ct->ct_limits.sl_conns + ct->ct_slack &&
	    p->cp_nconns > 1) ||
	    admitted > ct->ct_limits.sl_conns + 2 * ct->ct_slack) {
		ct->ct_refused++;
		conn_shed_log(ct, p);
		conn_close(ct, c);
		return;
	}
	ct->ct_pause |= CONN_PAUSE_BUSY;
	now = clock_now_ns();
	if (ct->ct_busy_logged == 0 ||
	    now - ct->ct_busy_logged >= CONN_LOG_EVERY) {
		ct->ct_busy_logged = now;
		log_warnx("port %d: %d connections open, none idle; not "
		    "accepting more until one is answered", ct->ct_port,
		    ct->ct_nconns);
	}
}

/*
 * Drops the connections evhttp has freed, and closes those that have not
 * sent one whole request within the idle time of opening.
 */
static void
conn_sweep(struct conn_table *ct)
{
	struct conn	*c, *next;
	int64_t		 now = clock_now_ns();

	for (c = TAILQ_FIRST(&ct->ct_conns); c != NULL; c = next) {
		next = TAILQ_NEXT(c, cn_entry);
		if (conn_evcon(c) == NULL)
			conn_drop(ct, c);
		else if (!c->cn_served && !c->cn_busy &&
		    now - c->cn_opened >= ct->ct_limits.sl_idle) {
			log_debug("port %d: no whole request within the idle "
			    "time; closing", ct->ct_port);
			conn_close(ct, c);
		}
	}
	/*
	 * Connections are kept over the cap only while none is idle; one
	 * may be by now, which the next accept finds out.
	 */
	if (ct->ct_pause & CONN_PAUSE_BUSY) {
		ct->ct_pause &= ~CONN_PAUSE_BUSY;
		conn_listener_update(ct);
	}
}

static void
conn_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn_table	*ct = arg;
	struct timeval		 tv = { 0, CONN_SWEEP_MS * 1000 };

	(void)fd;
	(void)what;
	conn_sweep(ct);
	if (!TAILQ_EMPTY(&ct->ct_conns))
		evtimer_add(ct->ct_sweep_ev, &tv);
}

/* Runs right after the listener's accepts: admits what they brought. */
static void
conn_admit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn_table	*ct = arg;
	struct conn		*c, *next;

	(void)fd;
	(void)what;
	ct->ct_round++;
	conn_sweep(ct);
	TAILQ_FOREACH(c, &ct->ct_conns, cn_entry) {
		if (c->cn_peer == NULL)
			break;
	}
	/*
	 * The new ones are the last of the list; admitting one closes only
	 * an older one, or itself, so next stays valid.
	 */
	for (; c != NULL; c = next) {
		next = TAILQ_NEXT(c, cn_entry);
		conn_admit(ct, c);
	}
	ct->ct_pause &= ~CONN_PAUSE_BATCH;
	conn_listener_update(ct);
}

static void
conn_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn_table	*ct = arg;

	(void)fd;
	(void)what;
	ct->ct_pause &= ~CONN_PAUSE_ACCEPT;
	conn_listener_update(ct);
}

/*
 * accept() failed for a reason libevent does not retry by itself, most
 * often EMFILE or ENFILE. The pending connection stays in the backlog, so
 * the listener would be woken again at once, for ever: pause it instead,
 * and say so once for the whole episode (at most once every 10s).
 */
static void
conn_accept_error(struct evconnlistener *lev, void *arg)
{
	struct conn_table	*ct;
	struct conn		*v;
	struct timeval		 tv = { 0, CONN_RETRY_MS * 1000 };
	int			 err = EVUTIL_SOCKET_ERROR();
	int64_t			 now = clock_now_ns();

	(void)arg;
	TAILQ_FOREACH(ct, &conn_tables, ct_entry) {
		if (ct->ct_listener == lev)
			break;
	}
	if (ct == NULL)
		return;
	if (!ct->ct_accept_failing && (ct->ct_accept_logged == 0 ||
	    now - ct->ct_accept_logged >= CONN_LOG_EVERY)) {
		ct->ct_accept_logged = now;
		log_warnx("port %d: cannot accept connections: %s; trying "
		    "again every %d ms", ct->ct_port, strerror(err),
		    CONN_RETRY_MS);
	}
	ct->ct_accept_failing = 1;
	/* Idle connections may be what holds every descriptor. */
	if ((err == EMFILE || err == ENFILE) &&
	    (v = conn_victim(ct, NULL, 0)) != NULL)
		conn_close(ct, v);
	ct->ct_pause |= CONN_PAUSE_ACCEPT;
	conn_listener_update(ct);
	evtimer_add(ct->ct_retry_ev, &tv);
}

static struct bufferevent *
conn_bevcb(struct event_base *base, void *arg)
{
	struct conn_table	*ct = arg;
	struct conn		*c;
	struct bufferevent	*bev;
	struct timeval		 tv = { 0, CONN_SWEEP_MS * 1000 };

	/* evhttp sets the socket on it; our reference keeps it open. */
	if ((bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) ==
	    NULL)
		return NULL;
	bufferevent_incref(bev);
	c = xcalloc(1, sizeof(*c));
	c->cn_bev = bev;
	c->cn_opened = c->cn_idle_since = clock_now_ns();
	TAILQ_INSERT_TAIL(&ct->ct_conns, c, cn_entry);
	ct->ct_nconns++;
	ct->ct_nnew++;
	if (ct->ct_accept_failing) {
		ct->ct_accept_failing = 0;
		log_debug("port %d: accepting connections again", ct->ct_port);
	}
	/* Admitted from the loop, once evhttp has given it its socket. */
	event_active(ct->ct_admit_ev, EV_TIMEOUT, 0);
	if (ct->ct_nnew >= ct->ct_batch) {
		ct->ct_pause |= CONN_PAUSE_BATCH;
		conn_listener_update(ct);
	}
	if (!evtimer_pending(ct->ct_sweep_ev, NULL))
		evtimer_add(ct->ct_sweep_ev, &tv);
	return bev;
}

static struct conn *
conn_of(struct conn_table *ct, struct evhttp_request *req)
{
	struct evhttp_connection	*evcon;
	struct bufferevent		*bev;
	struct conn			*c;

	if ((evcon = evhttp_request_get_connection(req)) == NULL)
		return NULL;
	bev = evhttp_connection_get_bufferevent(evcon);
	TAILQ_FOREACH(c, &ct->ct_conns, cn_entry) {
		if (c->cn_bev == bev)
			return c;
	}
	return NULL;
}

/* The answer has been written: the connection is idle again. */
static void
conn_done(struct evhttp_request *req, void *arg)
{
	struct conn_table	*ct = arg;
	struct conn		*c;
	void			(*cb)(void *);
	void			*cbarg;
	evutil_socket_t		 fd;

	if ((c = conn_of(ct, req)) == NULL)
		return;
	c->cn_busy = 0;
	if (c->cn_counted) {
		c->cn_counted = 0;
		ct->ct_nbusy--;
	}
	c->cn_idle_since = clock_now_ns();
	/*
	 * evhttp reads the next request unless the answer said close, which
	 * it does not heed for every request (CONNECT): the client sees the
	 * end after the answer, evhttp reads it and frees the connection.
	 */
	if (c->cn_close && (fd = bufferevent_getfd(c->cn_bev)) != -1)
		(void)shutdown(fd, SHUT_RDWR);
	/* A new client can now be admitted by closing this one. */
	if (ct->ct_pause & CONN_PAUSE_BUSY) {
		ct->ct_pause &= ~CONN_PAUSE_BUSY;
		conn_listener_update(ct);
	}
	cb = c->cn_done_cb;
	cbarg = c->cn_done_arg;
	c->cn_done_cb = NULL;
	if (cb != NULL)
		cb(cbarg);
}

/*
 * A whole request came and goes to a handler: the connection is busy until
 * its answer is written. ready says it is a readiness request, which is
 * always taken; others are taken while fewer than sl_busy are in progress.
 * Returns -1 when it is not taken: the caller answers 503.
 */
int
conn_begin(struct conn_table *ct, struct evhttp_request *req, int ready)
{
	struct conn	*c;

	evhttp_request_set_on_complete_cb(req, conn_done, ct);
	if ((c = conn_of(ct, req)) == NULL)
		return 0;
	c->cn_served = 1;
	c->cn_busy = 1;
	if (ready)
		return 0;
	if (ct->ct_nbusy >= ct->ct_limits.sl_busy)
		return -1;
	c->cn_counted = 1;
	ct->ct_nbusy++;
	return 0;
}

/* cb(arg) once the answer to req has been written (not if it never is). */
void
conn_after_reply(struct conn_table *ct, struct evhttp_request *req,
    void (*cb)(void *), void *arg)
{
	struct conn	*c;

	if ((c = conn_of(ct, req)) == NULL)
		return;
	c->cn_done_cb = cb;
	c->cn_done_arg = arg;
}

/* The connection is closed once the answer to req has been written. */
void
conn_close_after_reply(struct conn_table *ct, struct evhttp_request *req)
{
	struct conn	*c;

	if ((c = conn_of(ct, req)) != NULL)
		c->cn_close = 1;
}

struct conn_table *
conn_table_new(struct event_base *base, struct evhttp *http, int port,
    const struct status_limits *limits)
{
	struct conn_table	*ct;

	ct = xcalloc(1, sizeof(*ct));
	ct->ct_base = base;
	ct->ct_http = http;
	ct->ct_port = port;
	ct->ct_limits = *limits;
	ct->ct_batch = limits->sl_peer / 2;
	if (ct->ct_batch > CONN_BATCH)
		ct->ct_batch = CONN_BATCH;
	if (ct->ct_batch < 1)
		ct->ct_batch = 1;
	ct->ct_slack = limits->sl_conns / 4;
	if (ct->ct_slack < CONN_BATCH)
		ct->ct_slack = CONN_BATCH;
	TAILQ_INIT(&ct->ct_conns);
	TAILQ_INIT(&ct->ct_peers);
	ct->ct_sweep_ev = evtimer_new(base, conn_sweep_cb, ct);
	ct->ct_admit_ev = evtimer_new(base, conn_admit_cb, ct);
	ct->ct_retry_ev = evtimer_new(base, conn_retry_cb, ct);
	evhttp_set_bevcb(http, conn_bevcb, ct);
	TAILQ_INSERT_TAIL(&conn_tables, ct, ct_entry);
	return ct;
}

/* The listener evhttp made for the port; it starts enabled. */
void
conn_table_listen(struct conn_table *ct, struct evconnlistener *lev)
{
	ct->ct_listener = lev;
	ct->ct_enabled = 1;
	evconnlistener_set_error_cb(lev, conn_accept_error);
}

/* After evhttp_free, which has freed every connection and the listener. */
void
conn_table_free(struct conn_table *ct)
{
	struct conn	*c;

	if (ct == NULL)
		return;
	TAILQ_REMOVE(&conn_tables, ct, ct_entry);
	while ((c = TAILQ_FIRST(&ct->ct_conns)) != NULL)
		conn_drop(ct, c);
	event_free(ct->ct_sweep_ev);
	event_free(ct->ct_admit_ev);
	event_free(ct->ct_retry_ev);
	free(ct);
}
