/*
 * The server's life, as Envoy's InstanceImpl leads it and as the agent sees
 * it through /ready, /server_info and the server.state stat:
 *
 *   PRE_INITIALIZING  the cluster manager is initializing: with ADS, until the
 *                     first CDS response (accepted or rejected) or CDS's
 *                     initial_fetch_timeout;
 *   INITIALIZING      the init manager runs: with ADS, until the first LDS
 *                     response or LDS's initial_fetch_timeout; and for
 *                     ENVOY_EMU_INIT_DELAY, or for ever with
 *                     ENVOY_EMU_NEVER_LIVE;
 *   LIVE              workers started (listener_manager.workers_started 1):
 *                     only now do the listeners accept (listener.c); a
 *                     hot-restarted child now drains its parent;
 *   DRAINING          LIVE but /healthcheck/fail was posted, as in Envoy's
 *                     Utility::serverState (/healthcheck/ok returns to LIVE).
 *
 * Envoy lets a rejected first update complete initialization too (the
 * agent's readiness then reports "config received ... but was rejected"),
 * and so does the stand-in. initial_fetch_timeout defaults to 15s as in
 * Envoy; Istio's bootstrap sets it to 0s (wait for ever).
 *
 * Also here: the signals (SIGTERM/SIGINT stop, SIGHUP is eaten, SIGUSR1
 * "reopens access logs") and the two ways to stop: at once, or, when the
 * hot restart child asks, after in-flight requests finished.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "agent.h"
#include "emu.h"

static struct emu	*emu;
static enum emu_state	 emu_init_state = EMU_PRE_INITIALIZING;
static int		 emu_live;		/* workers started */
static int		 emu_hc_failed;
static int		 emu_cds_done, emu_lds_done, emu_delay_done;
static int		 emu_stopping;
static struct event	*emu_delay_ev, *emu_cds_timeout_ev, *emu_lds_timeout_ev;
static struct event	*emu_signals[4];

static struct {
	struct stats_entry	*state, *live, *uptime, *epoch, *generation;
	struct stats_entry	*total_cx, *parent_cx, *concurrency;
	struct stats_entry	*workers, *cds_ok, *cds_rej, *cds_timeout;
	struct stats_entry	*lds_ok, *lds_rej, *lds_timeout;
} emu_st;

static const char *const emu_state_names[] = {
	[EMU_LIVE] = "LIVE",
	[EMU_DRAINING] = "DRAINING",
	[EMU_PRE_INITIALIZING] = "PRE_INITIALIZING",
	[EMU_INITIALIZING] = "INITIALIZING",
};

static void	emu_try_live(void);
static void	emu_clusters_initialized(void);

struct emu *
emu_get(void)
{
	return emu;
}

enum emu_state
emu_state(void)
{
	if (!emu_live)
		return emu_init_state;
	return emu_hc_failed ? EMU_DRAINING : EMU_LIVE;
}

const char *
emu_state_name(enum emu_state s)
{
	return emu_state_names[s];
}

/* Initialized as hot restart means it: a child may now take over. */
int
emu_initialized(void)
{
	return emu_live;
}

uint64_t
emu_uptime(void)
{
	time_t	now = time(NULL);

	return now > emu->e_start ? (uint64_t)(now - emu->e_start) : 0;
}

uint64_t
emu_uptime_all(void)
{
	time_t	now = time(NULL);

	return now > emu->e_original_start ?
	    (uint64_t)(now - emu->e_original_start) : 0;
}

/* Brings the stats Envoy computes on each flush up to date. */
void
emu_refresh_stats(void)
{
	stats_set(emu_st.state, emu_state());
	stats_set(emu_st.live, emu_live && !emu_hc_failed);
	stats_set(emu_st.uptime, emu_uptime());
	stats_set(emu_st.total_cx, listener_active_connections());
}

static void
emu_set_state(enum emu_state s)
{
	elog_debug("main", "server state %s -> %s",
	    emu_state_names[emu_init_state], emu_state_names[s]);
	emu_init_state = s;
	emu_refresh_stats();
}

static void
emu_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	switch (sig) {
	case SIGTERM:
		elog_warn("main", "caught ENVOY_SIGTERM");
		emu_shutdown(0, NULL);
		break;
	case SIGINT:
		elog_warn("main", "caught SIGINT");
		emu_shutdown(0, NULL);
		break;
	case SIGHUP:
		elog_warn("main", "caught and eating SIGHUP. See documentation "
		    "for how to hot restart.");
		break;
	case SIGUSR1:
		elog_info("main", "caught SIGUSR1. Reopening access logs.");
		break;
	}
}

/* The first update or its timeout ends a subscription's initial fetch. */
static void
emu_fetch_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	int	is_lds = arg != NULL;

	(void)fd;
	(void)what;
	elog_warn("config", "%s: initial fetch timed out",
	    is_lds ? "lds" : "cds");
	if (is_lds) {
		stats_inc(emu_st.lds_timeout);
		emu_lds_done = 1;
		emu_try_live();
	} else {
		stats_inc(emu_st.cds_timeout);
		if (!emu_cds_done) {
			emu_cds_done = 1;
			emu_clusters_initialized();
		}
	}
}

/*
 * dynamic_resources.<cds|lds>_config.initial_fetch_timeout, a protobuf
 * Duration in its JSON form ("15s", "0.5s"); absent means Envoy's 15s and
 * 0 means no timeout.
 */
static void
emu_arm_fetch_timeout(const char *key, struct event **ev, int is_lds)
{
	json_t		*v;
	int64_t		 ns = 15 * 1000000000LL;
	struct timeval	 tv;
	char		 why[128];

	v = json_object_get(json_object_get(json_object_get(emu->e_config,
	    "dynamic_resources"), key), "initial_fetch_timeout");
	if (json_is_string(v) &&
	    duration_parse(json_string_value(v), &ns, why, sizeof(why)) == -1) {
		elog_warn("config", "%s.initial_fetch_timeout: %s", key, why);
		ns = 15 * 1000000000LL;
	}
	if (ns <= 0)
		return;
	tv.tv_sec = ns / 1000000000;
	tv.tv_usec = (ns % 1000000000) / 1000;
	*ev = evtimer_new(emu->e_base, emu_fetch_timeout_cb,
	    is_lds ? (void *)emu : NULL);
	evtimer_add(*ev, &tv);
}

static void
emu_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	emu_delay_done = 1;
	emu_try_live();
}

static void
emu_clusters_initialized(void)
{
	int64_t		ns = fault_init_delay_ns();
	struct timeval	tv;

	if (emu_cds_timeout_ev != NULL)
		evtimer_del(emu_cds_timeout_ev);
	elog_info("upstream", "cm init: all clusters initialized");
	elog_info("main",
	    "all clusters initialized. initializing init manager");
	emu_set_state(EMU_INITIALIZING);
	if (emu->e_ads && !emu_lds_done)
		emu_arm_fetch_timeout("lds_config", &emu_lds_timeout_ev, 1);
	if (ns > 0) {
		tv.tv_sec = ns / 1000000000;
		tv.tv_usec = (ns % 1000000000) / 1000;
		emu_delay_ev = evtimer_new(emu->e_base, emu_delay_cb, NULL);
		evtimer_add(emu_delay_ev, &tv);
	} else
		emu_delay_done = 1;
	emu_try_live();
}

static void
emu_try_live(void)
{
	if (emu_live || emu_stopping || emu_init_state != EMU_INITIALIZING)
		return;
	if (!emu_delay_done || fault_never_live())
		return;
	if (emu->e_ads && !emu_lds_done)
		return;
	if (emu_lds_timeout_ev != NULL)
		evtimer_del(emu_lds_timeout_ev);
	elog_info("init", "init manager Server initialized");
	elog_info("main", "all dependencies initialized. starting workers");
	emu_live = 1;
	listener_start_workers();
	stats_set(emu_st.workers, 1);
	emu_refresh_stats();
	hotrestart_live();
}

/*
 * The hook of the xDS client (xds.c): one call per CDS (is_lds 0) or LDS
 * (is_lds 1) response, accepted (update_success) or rejected
 * (update_rejected). The first of each, either way, completes that
 * subscription's part of initialization, as in Envoy.
 */
void
emu_xds_received(int is_lds, int accepted)
{
	if (is_lds)
		stats_inc(accepted ? emu_st.lds_ok : emu_st.lds_rej);
	else
		stats_inc(accepted ? emu_st.cds_ok : emu_st.cds_rej);
	elog_debug("config", "%s update %s", is_lds ? "lds" : "cds",
	    accepted ? "accepted" : "rejected");
	if (emu_stopping)
		return;
	if (is_lds && !emu_lds_done) {
		emu_lds_done = 1;
		emu_try_live();
	} else if (!is_lds && !emu_cds_done) {
		emu_cds_done = 1;
		emu_clusters_initialized();
	}
}

void
emu_healthcheck_fail(int fail)
{
	emu_hc_failed = fail;
	emu_refresh_stats();
}

void
emu_init(struct emu *e)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	size_t	i;

	emu = e;
	emu_st.state = stats_gauge("server.state");
	emu_st.live = stats_gauge("server.live");
	emu_st.uptime = stats_gauge("server.uptime");
	emu_st.epoch = stats_gauge("server.hot_restart_epoch");
	emu_st.generation = stats_gauge("server.hot_restart_generation");
	emu_st.total_cx = stats_gauge("server.total_connections");
	emu_st.parent_cx = stats_gauge("server.parent_connections");
	emu_st.concurrency = stats_gauge("server.concurrency");
	emu_st.workers = stats_gauge("listener_manager.workers_started");
	emu_st.cds_ok = stats_counter("cluster_manager.cds.update_success");
	emu_st.cds_rej = stats_counter("cluster_manager.cds.update_rejected");
	emu_st.cds_timeout =
	    stats_counter("cluster_manager.cds.init_fetch_timeout");
	emu_st.lds_ok = stats_counter("listener_manager.lds.update_success");
	emu_st.lds_rej = stats_counter("listener_manager.lds.update_rejected");
	emu_st.lds_timeout =
	    stats_counter("listener_manager.lds.init_fetch_timeout");
	stats_set(emu_st.epoch, e->e_opt->o_restart_epoch);
	stats_set(emu_st.generation, (uint64_t)e->e_opt->o_restart_epoch + 1);
	stats_set(emu_st.parent_cx, 0);
	stats_set(emu_st.concurrency, e->e_opt->o_concurrency);
	emu_refresh_stats();

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		emu_signals[i] = evsignal_new(e->e_base, sigs[i], emu_signal_cb,
		    NULL);
		evsignal_add(emu_signals[i], NULL);
	}
}

/* Starts initialization; called with listeners and admin in place. */
void
emu_start(void)
{
	elog_info("main", "starting main dispatch loop");
	if (!emu->e_ads) {
		emu_cds_done = emu_lds_done = 1;
		emu_clusters_initialized();
		return;
	}
	elog_info("upstream", "cm init: initializing cds");
	if (fault_assume_xds()) {
		elog_info("config", "ENVOY_EMU_ASSUME_XDS: treating CDS and "
		    "LDS as received");
		emu_xds_received(0, 1);
		emu_xds_received(1, 1);
		return;
	}
	emu_arm_fetch_timeout("cds_config", &emu_cds_timeout_ev, 0);
	if (xds_start == NULL) {
		elog_warn("config", "this envoy-emu has no xDS client: "
		    "waiting for CDS for ever (set ENVOY_EMU_ASSUME_XDS=1 to "
		    "skip xDS)");
		return;
	}
	if (xds_start(emu) == -1)
		elog_error("config", "xDS client failed to start");
}

static void
emu_terminated(void)
{
	emu_shutdown(0, NULL);
}

/*
 * The hot restart child asks this process to go: no new connections, no
 * admin, finish what is in flight (bounded), then exit 0.
 */
void
emu_terminate(void)
{
	if (emu_stopping)
		return;
	elog_warn("main", "shutting down due to child request");
	hotrestart_close();
	adminapi_close();
	listener_terminate(emu_terminated);
}

/*
 * Stops the server now: the event loop ends and main frees everything and
 * exits with code.
 */
void
emu_shutdown(int code, const char *why)
{
	if (emu_stopping)
		return;
	emu_stopping = 1;
	if (why != NULL)
		elog_info("main", "%s", why);
	elog_info("main", "shutting down server instance");
	emu->e_exit_code = code;
	event_base_loopbreak(emu->e_base);
}

void
emu_free(void)
{
	size_t	i;

	if (xds_stop != NULL)
		xds_stop();
	for (i = 0; i < sizeof(emu_signals) / sizeof(emu_signals[0]); i++) {
		if (emu_signals[i] != NULL)
			event_free(emu_signals[i]);
		emu_signals[i] = NULL;
	}
	if (emu_delay_ev != NULL)
		event_free(emu_delay_ev);
	if (emu_cds_timeout_ev != NULL)
		event_free(emu_cds_timeout_ev);
	if (emu_lds_timeout_ev != NULL)
		event_free(emu_lds_timeout_ev);
	emu_delay_ev = emu_cds_timeout_ev = emu_lds_timeout_ev = NULL;
}
