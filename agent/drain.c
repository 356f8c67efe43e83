/*
 * The drain before a shutdown, as Istio's agent does it: ask the proxy to
 * drain its listeners (POST /drain_listeners, inbound only for a sidecar,
 * gracefully, without exiting), then wait terminationDrainDuration, or,
 * with EXIT_ON_ZERO_ACTIVE_CONNECTIONS, MINIMUM_DRAIN_DURATION and then
 * until the listeners' downstream_cx_active reaches zero (checked every
 * second). The end of the wait is the machine's SE_DRAIN_DONE. POST /drain
 * starts an untimed drain: the listeners drain, nothing ends it but a
 * shutdown.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "supervise.h"

#define DRAIN_CX_POLL	(1 * CLOCK_SEC)

struct drain {
	struct supervise	*dr_sv;
	struct event		*dr_timer;	/* the wait, then each poll */
	struct admin_request	*dr_post;	/* POST /drain_listeners */
	struct admin_request	*dr_poll;	/* GET the active connections */
};

static void	drain_timer_cb(evutil_socket_t, short, void *);

struct drain *
drain_new(struct supervise *sv)
{
	struct drain	*dr;

	dr = xcalloc(1, sizeof(*dr));
	dr->dr_sv = sv;
	dr->dr_timer = evtimer_new(sv->sv_base, drain_timer_cb, dr);
	return dr;
}

void
drain_free(struct drain *dr)
{
	if (dr == NULL)
		return;
	drain_stop(dr);
	event_free(dr->dr_timer);
	free(dr);
}

/* Stops waiting; the proxy's listeners stay as they are. */
void
drain_stop(struct drain *dr)
{
	event_del(dr->dr_timer);
	admin_cancel(dr->dr_post);
	admin_cancel(dr->dr_poll);
	dr->dr_post = dr->dr_poll = NULL;
}

static void
drain_done(struct drain *dr)
{
	drain_stop(dr);
	supervise_step(dr->dr_sv, SE_DRAIN_DONE, NULL);
}

static void
drain_poll_done(int code, const char *body, size_t len, void *arg)
{
	struct drain	*dr = arg;
	const struct config *cf = dr->dr_sv->sv_cf;
	struct timeval	 tv;
	long long	 active;

	dr->dr_poll = NULL;
	if (code != 200) {
		log_warnx("drain: cannot read active connections (admin "
		    "answered %d); stopping the proxy", code);
		drain_done(dr);
		return;
	}
	/* The listeners' downstream_cx_active, as Istio sums them. */
	active = envoystats_active(body, len, cf->cf_envoy_status_port,
	    cf->cf_prometheus_port);
	if (active <= 0) {
		log_info("drain: %s; stopping the proxy", active == 0 ?
		    "no more active connections" :
		    "downstream_cx_active not available");
		drain_done(dr);
		return;
	}
	log_info("drain: %lld active connections remain", active);
	tv = clock_tv(DRAIN_CX_POLL);
	event_add(dr->dr_timer, &tv);
}

static void
drain_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct drain		*dr = arg;
	const struct config	*cf = dr->dr_sv->sv_cf;

	(void)fd;
	(void)what;
	if (!cf->cf_exit_on_zero_active) {
		log_info("drain: terminationDrainDuration elapsed");
		drain_done(dr);
		return;
	}
	if (dr->dr_poll == NULL)
		dr->dr_poll = admin_request(dr->dr_sv->sv_base,
		    cf->cf_proxy_admin_port, "GET",
		    "/stats?usedonly&filter=downstream_cx_active$",
		    SUPERVISE_ADMIN_TIMEOUT, drain_poll_done, dr);
	if (dr->dr_poll == NULL)
		drain_done(dr);
}

static void
drain_posted(int code, const char *body, size_t len, void *arg)
{
	struct drain	*dr = arg;

	(void)body;
	(void)len;
	dr->dr_post = NULL;
	if (code != 200)
		log_warnx("drain: admin /drain_listeners answered %d", code);
	else
		log_info("drain: proxy is draining its listeners");
}

/* Asks the proxy to drain; timed: SE_DRAIN_DONE when the wait is over. */
void
drain_start(struct drain *dr, int timed)
{
	const struct config	*cf = dr->dr_sv->sv_cf;
	struct timeval		 tv;
	const char		*path;
	char			 d[32];

	drain_stop(dr);
	path = cf->cf_role == ROLE_ROUTER ?
	    "/drain_listeners?graceful&skip_exit" :
	    "/drain_listeners?inboundonly&graceful&skip_exit";
	dr->dr_post = admin_request(dr->dr_sv->sv_base,
	    cf->cf_proxy_admin_port, "POST", path, SUPERVISE_ADMIN_TIMEOUT,
	    drain_posted, dr);
	if (!timed)
		return;
	if (cf->cf_exit_on_zero_active) {
		duration_format(cf->cf_minimum_drain_duration, d, sizeof(d));
		log_info("drain: waiting %s, then for active connections to "
		    "close", d);
		tv = clock_tv(cf->cf_minimum_drain_duration);
	} else {
		duration_format(cf->cf_termination_drain_duration, d,
		    sizeof(d));
		log_info("drain: waiting %s (terminationDrainDuration)", d);
		tv = clock_tv(cf->cf_termination_drain_duration);
	}
	event_add(dr->dr_timer, &tv);
}
