/*
 * The supervisor: the proxy's epochs as one state machine, as s6-supervise
 * keeps a service. supervise_step below is the whole of it: every
 * transition of the agent, and of an epoch, is made there, for one event
 * at a time. Callbacks (signals, timers, the admin API's answers, reaped
 * children) only turn what happened into an event; epoch.c starts and
 * reaps the processes, drain.c drains the listeners.
 *
 * Each epoch is one proxy process started with "--restart-epoch N". Envoy's
 * hot restart has epoch N+1 take the listen sockets of N, make N close its
 * admin listener (which makes N terminate N-1), and, once N+1 is LIVE, drain
 * N, which exits --parent-shutdown-time-s later. A new epoch is started only
 * when the newest is LIVE, so at most three processes exist, and briefly.
 *
 * The agent's states:
 *   IDLE         nothing started yet.
 *   STARTING     the newest epoch is starting (polled until LIVE). When
 *                another epoch is LIVE this is a hot restart, with a
 *                deadline: SUPERVISE_LIVE_WAIT.
 *   PENDING      the same, and a restart waits for the newest to be LIVE.
 *   LIVE         the newest epoch serves; older ones may still drain.
 *   RETRY        a hot restart failed before its epoch went LIVE; the LIVE
 *                epoch serves and the restart is tried again after a
 *                backoff, with the triggers that came meanwhile.
 *   BACKOFF      the newest failed and nothing is LIVE: a cold start at
 *                epoch 0 after a backoff, within --restartMaxRetries.
 *   TERMINATING  SIGTERM: the listeners drain for terminationDrainDuration.
 *   DRAINED      POST /drain: the listeners drained; staying until told.
 *   STOPPING     every epoch got SIGTERM (SIGKILL after a grace).
 *   DONE         nothing left: the agent exits with sv_exit_code.
 *
 * A LIVE epoch is never given up for one that has not gone LIVE (a control
 * plane that is down cannot configure a new epoch); the newest failing
 * after it went LIVE, or a cold start failing, kills every other epoch and
 * backs off. Restarts read the configuration again, so an edited input
 * reaches the next epoch; one that no longer parses keeps the proxy as it
 * is.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <event2/event.h>
#include <jansson.h>

#include "supervise.h"
#include "bootstrap.h"

static const char *const sv_state_names[] = {
	"idle", "starting", "pending", "live", "retry", "backoff",
	"terminating", "drained", "stopping", "done"
};

static const char *const restart_reason_names[] = {
	"sighup", "inputs_changed", "failure"
};

static void	supervise_poll_cb(evutil_socket_t, short, void *);
static void	supervise_backoff_cb(evutil_socket_t, short, void *);
static void	supervise_retry_cb(evutil_socket_t, short, void *);
static void	supervise_stable_cb(evutil_socket_t, short, void *);
static void	supervise_kill_cb(evutil_socket_t, short, void *);

const char *
supervise_state_name(enum sv_state state)
{
	return sv_state_names[state];
}

const char *
supervise_reason_name(enum restart_reason why)
{
	return restart_reason_names[why];
}

/* Every transition of the agent goes through here, and is logged. */
static void
supervise_set_state(struct supervise *sv, enum sv_state state)
{
	if (sv->sv_state == state)
		return;
	log_info("agent: %s → %s", sv_state_names[sv->sv_state],
	    sv_state_names[state]);
	sv->sv_state = state;
}

static void
supervise_arm(struct event *ev, int64_t ns)
{
	struct timeval	tv = clock_tv(ns);

	event_add(ev, &tv);
}

/*
 * The actions. None of them changes the agent's state: each says how it
 * went, and supervise_step decides where that leads.
 */

/* Epoch 0 from doc (NULL: render now). -1: it could not be started. */
static int
supervise_cold(struct supervise *sv, enum restart_reason why, json_t *doc)
{
	char	err[512];

	if (epoch_start(sv, 0, why, doc, err, sizeof(err)) != NULL)
		return 0;
	log_error("epoch 0: not started: %s", err);
	snprintf(sv->sv_last_failure, sizeof(sv->sv_last_failure), "%s", err);
	sv->sv_fail_code = 1;
	return -1;
}

/*
 * A hot restart failed before its epoch went LIVE: the LIVE epoch keeps
 * serving and the restart is tried again after a backoff of its own, for
 * as long as it fails; the next try is the epoch after the LIVE one (the
 * failed one cannot be anyone's parent).
 */
static void
supervise_retry_later(struct supervise *sv, const char *why,
    enum restart_reason reason)
{
	char	when[32];

	snprintf(sv->sv_hot_failure, sizeof(sv->sv_hot_failure), "%s", why);
	sv->sv_hot_failures++;
	sv->sv_retry_delay = clock_backoff(sv->sv_cf->cf_restart_initial_interval,
	    sv->sv_hot_tries++, SUPERVISE_MAX_BACKOFF);
	sv->sv_retry_until = clock_now_ns() + sv->sv_retry_delay;
	sv->sv_waiting = reason;
	duration_format(sv->sv_retry_delay, when, sizeof(when));
	log_warnx("hot restart failed: %s; epoch %d keeps serving; trying "
	    "again in %s (attempt %d)", why, epoch_live(sv)->ep_num, when,
	    sv->sv_hot_tries);
	supervise_arm(sv->sv_retry_ev, sv->sv_retry_delay);
}

/*
 * The epoch after the LIVE one. -1: it could not be started, and a retry
 * is armed. At most three processes: an epoch two behind is killed.
 */
static int
supervise_hot(struct supervise *sv, enum restart_reason why)
{
	struct epoch	*ep;
	char		 err[512], msg[600];
	int		 n = epoch_live(sv)->ep_num + 1;

	TAILQ_FOREACH(ep, &sv->sv_epochs, ep_entry) {
		if (ep->ep_num < n - 2 && !ep->ep_signalled) {
			log_warnx("epoch %d: still alive when epoch %d starts; "
			    "killing it", ep->ep_num, n);
			epoch_signal(ep, SIGKILL);
		}
	}
	if (epoch_start(sv, n, why, NULL, err, sizeof(err)) != NULL)
		return 0;
	snprintf(msg, sizeof(msg), "epoch %d not started: %s", n, err);
	supervise_retry_later(sv, msg, why);
	return -1;
}

/*
 * The newest epoch failed with nothing LIVE to keep: kill the rest and arm
 * the cold start's backoff. -1: the budget is spent, the agent gives up.
 */
static int
supervise_backoff(struct supervise *sv, const char *why, int code)
{
	char	when[32];

	snprintf(sv->sv_last_failure, sizeof(sv->sv_last_failure), "%s", why);
	sv->sv_fail_code = code;
	epoch_signal_all(sv, SIGKILL, "killing");
	event_del(sv->sv_retry_ev);
	event_del(sv->sv_stable_ev);
	sv->sv_hot_tries = 0;
	if (sv->sv_tries >= sv->sv_cf->cf_restart_max_retries) {
		log_error("proxy failed %d times in a row, giving up: %s",
		    sv->sv_tries + 1, why);
		sv->sv_exit_code = 1;
		sv->sv_gave_up = sv->sv_last_failure;
		return -1;
	}
	sv->sv_backoff_delay = clock_backoff(
	    sv->sv_cf->cf_restart_initial_interval, sv->sv_tries++,
	    SUPERVISE_MAX_BACKOFF);
	sv->sv_backoff_until = clock_now_ns() + sv->sv_backoff_delay;
	duration_format(sv->sv_backoff_delay, when, sizeof(when));
	log_warnx("proxy failed: %s; cold start in %s (attempt %d of %d)",
	    why, when, sv->sv_tries, sv->sv_cf->cf_restart_max_retries);
	supervise_arm(sv->sv_backoff_ev, sv->sv_backoff_delay);
	return 0;
}

/*
 * A trigger asks for a restart: read the configuration again and render.
 * 1 when the restart should go ahead (forced, or the bootstrap changed);
 * 0 when the bootstrap is unchanged, or the new input is refused and the
 * proxy kept as it is.
 */
static int
supervise_reload(struct supervise *sv, const struct sv_arg *a)
{
	struct config	*fresh;
	json_t		*doc;
	char		 err[512];

	fresh = xcalloc(1, sizeof(*fresh));
	if (config_reload(sv->sv_cf, fresh, err, sizeof(err)) == -1) {
		log_warnx("restart (%s): %s; keeping the proxy as it is",
		    a->sg_reason, err);
		free(fresh);
		return 0;
	}
	if ((doc = bootstrap_render(fresh, err, sizeof(err))) == NULL) {
		log_warnx("restart (%s): rendering the bootstrap: %s; keeping "
		    "the proxy as it is", a->sg_reason, err);
		config_free(fresh);
		free(fresh);
		return 0;
	}
	if (!a->sg_force && sv->sv_rendered != NULL &&
	    json_equal(doc, sv->sv_rendered)) {
		log_info("restart (%s): bootstrap unchanged; no restart",
		    a->sg_reason);
		json_decref(doc);
		config_free(fresh);
		free(fresh);
		return 0;
	}
	/* The restart renders again from the new configuration. */
	json_decref(doc);
	if (sv->sv_own != NULL) {
		config_free(sv->sv_own);
		free(sv->sv_own);
	}
	sv->sv_own = sv->sv_cf = fresh;
	return 1;
}

/* The newest epoch is LIVE: the older ones drain from now on. */
static void
supervise_went_live(struct supervise *sv)
{
	struct epoch	*ep = epoch_newest(sv), *old;

	ep->ep_live_at = clock_now_ns();
	epoch_set_state(ep, EPOCH_LIVE);
	TAILQ_FOREACH(old, &sv->sv_epochs, ep_entry) {
		if (old != ep)
			epoch_set_state(old, EPOCH_DRAINING);
	}
	if (sv->sv_startup == 0)
		sv->sv_startup = ep->ep_live_at - sv->sv_created;
	sv->sv_hot_tries = 0;
	supervise_arm(sv->sv_stable_ev, sv->sv_cf->cf_restart_stable_duration);
}

/* SIGTERM to every epoch, SIGKILL after the grace. */
static void
supervise_stop(struct supervise *sv)
{
	struct epoch	*ep;

	drain_stop(sv->sv_drain);
	event_del(sv->sv_backoff_ev);
	event_del(sv->sv_retry_ev);
	TAILQ_FOREACH(ep, &sv->sv_epochs, ep_entry) {
		log_info("epoch %d: sending SIGTERM to pid %d", ep->ep_num,
		    (int)ep->ep_pid);
		epoch_signal(ep, SIGTERM);
	}
	supervise_arm(sv->sv_kill_ev, SUPERVISE_KILL_GRACE);
}

/* Nothing left to do: the event loop ends and main exits. */
static void
supervise_finish(struct supervise *sv)
{
	admin_cancel(sv->sv_poll_req);
	sv->sv_poll_req = NULL;
	drain_stop(sv->sv_drain);
	event_del(sv->sv_poll_ev);
	event_del(sv->sv_backoff_ev);
	event_del(sv->sv_retry_ev);
	event_del(sv->sv_stable_ev);
	event_del(sv->sv_kill_ev);
	if (sv->sv_exit_code == -1)
		sv->sv_exit_code = 0;
	epoch_reap_leftovers();
	event_base_loopexit(sv->sv_base, NULL);
}

/* The exit code of the proxy's own ending, unless one was decided. */
static void
supervise_exit_code(struct supervise *sv, int status, int asked)
{
	char	how[96];
	int	code = epoch_describe(status, how, sizeof(how));

	if (sv->sv_exit_code != -1)
		return;
	/* 0 when the proxy ended because the agent asked it to. */
	if (asked && ((WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
	    (WIFSIGNALED(status) && (WTERMSIG(status) == SIGTERM ||
	    WTERMSIG(status) == SIGKILL))))
		code = 0;
	sv->sv_exit_code = code;
}

/* Moves to STOPPING, or straight to DONE when no epoch is left. */
static void
supervise_stopping_or_done(struct supervise *sv)
{
	supervise_set_state(sv, SV_STOPPING);
	if (TAILQ_EMPTY(&sv->sv_epochs)) {
		supervise_set_state(sv, SV_DONE);
		supervise_finish(sv);
	} else
		supervise_stop(sv);
}

static enum restart_reason
supervise_trigger(const struct sv_arg *a)
{
	return a->sg_force ? RESTART_SIGHUP : RESTART_INPUTS;
}

/*
 * The state machine. Read it by event; under each, the states that act on
 * it. Anything else is ignored (a late timer, a second request).
 */
void
supervise_step(struct supervise *sv, enum sv_event ev, const struct sv_arg *a)
{
	enum sv_state	 s = sv->sv_state;
	struct epoch	*ep = a != NULL ? a->sg_ep : NULL;
	char		 how[96], why[200];
	int		 code, clean;

	switch (ev) {
	case SE_START:
		if (s != SV_IDLE)
			break;
		if (supervise_cold(sv, RESTART_SIGHUP, a->sg_doc) == 0)
			supervise_set_state(sv, SV_STARTING);
		else if (supervise_backoff(sv, sv->sv_last_failure, 1) == 0)
			supervise_set_state(sv, SV_BACKOFF);
		else
			supervise_stopping_or_done(sv);
		break;

	case SE_RESTART:
		switch (s) {
		case SV_LIVE:
			if (!supervise_reload(sv, a))
				break;
			log_info("restart (%s): hot restart to epoch %d",
			    a->sg_reason, epoch_live(sv)->ep_num + 1);
			supervise_set_state(sv, supervise_hot(sv,
			    supervise_trigger(a)) == 0 ? SV_STARTING : SV_RETRY);
			break;
		case SV_STARTING:
		case SV_PENDING:
		case SV_RETRY:
			/* Coalesced into the one restart that waits. */
			if (!supervise_reload(sv, a))
				break;
			if (s != SV_PENDING)
				sv->sv_waiting = supervise_trigger(a);
			if (s == SV_RETRY) {
				log_info("restart (%s) pending: a failed hot "
				    "restart is tried again in %lldms",
				    a->sg_reason, (long long)((sv->sv_retry_until -
				    clock_now_ns()) / CLOCK_MSEC));
				break;
			}
			log_info("restart (%s) pending: epoch %d is not LIVE "
			    "yet", a->sg_reason, epoch_newest(sv)->ep_num);
			supervise_set_state(sv, SV_PENDING);
			break;
		case SV_BACKOFF:
			if (a->sg_force && supervise_reload(sv, a)) {
				log_info("restart (%s): cold start now instead "
				    "of after the backoff", a->sg_reason);
				supervise_arm(sv->sv_backoff_ev, 0);
			} else if (!a->sg_force)
				log_info("restart (%s) ignored: agent is %s",
				    a->sg_reason, sv_state_names[s]);
			break;
		default:
			log_info("restart (%s) ignored: agent is %s",
			    a->sg_reason, sv_state_names[s]);
			break;
		}
		break;

	case SE_LIVE:
		if (s != SV_STARTING && s != SV_PENDING)
			break;
		supervise_went_live(sv);
		supervise_set_state(sv, SV_LIVE);
		if (s == SV_PENDING)
			supervise_set_state(sv, supervise_hot(sv,
			    sv->sv_waiting) == 0 ? SV_STARTING : SV_RETRY);
		break;

	case SE_LIVE_TIMEOUT:
		/* Its end, once reaped, is this hot restart's failure. */
		if ((s == SV_STARTING || s == SV_PENDING) &&
		    epoch_newest(sv)->ep_hot) {
			ep = epoch_newest(sv);
			log_warnx("epoch %d: not LIVE after %llds; stopping it",
			    ep->ep_num,
			    (long long)(SUPERVISE_LIVE_WAIT / CLOCK_SEC));
			ep->ep_timed_out = 1;
			epoch_signal(ep, SIGKILL);
		}
		break;

	case SE_EXIT:
		code = epoch_describe(a->sg_status, how, sizeof(how));
		clean = WIFEXITED(a->sg_status) &&
		    WEXITSTATUS(a->sg_status) == 0;
		switch (s) {
		case SV_STARTING:
		case SV_PENDING:
		case SV_LIVE:
		case SV_RETRY:
			if (!a->sg_newest) {
				/* A draining epoch: normal when it exits 0. */
				if (!clean && !ep->ep_signalled)
					sv->sv_abnormal_drained++;
			} else if (ep->ep_live_at == 0 &&
			    epoch_live(sv) != NULL) {
				/* A hot restart's epoch: its failure alone. */
				if (ep->ep_timed_out)
					snprintf(why, sizeof(why), "epoch %d "
					    "(pid %d) not LIVE after %llds",
					    ep->ep_num, (int)ep->ep_pid,
					    (long long)(SUPERVISE_LIVE_WAIT /
					    CLOCK_SEC));
				else
					snprintf(why, sizeof(why), "epoch %d "
					    "(pid %d) %s before it went LIVE",
					    ep->ep_num, (int)ep->ep_pid, how);
				supervise_retry_later(sv, why, s == SV_PENDING ?
				    sv->sv_waiting : ep->ep_reason);
				supervise_set_state(sv, SV_RETRY);
			} else if (clean && !ep->ep_signalled) {
				log_info("proxy exited on its own with code 0; "
				    "stopping");
				sv->sv_exit_code = 0;
				supervise_stopping_or_done(sv);
			} else {
				/* The newest failed, and nothing LIVE is left. */
				snprintf(why, sizeof(why), "epoch %d (pid %d) %s",
				    ep->ep_num, (int)ep->ep_pid, how);
				if (supervise_backoff(sv, why, code) == 0)
					supervise_set_state(sv, SV_BACKOFF);
				else
					supervise_stopping_or_done(sv);
			}
			break;
		case SV_TERMINATING:
		case SV_DRAINED:
			/* The proxy ended by itself during the drain. */
			if (a->sg_newest) {
				supervise_exit_code(sv, a->sg_status, 0);
				log_warnx("proxy exited during the drain: %s",
				    how);
			}
			if (a->sg_newest || TAILQ_EMPTY(&sv->sv_epochs))
				supervise_stopping_or_done(sv);
			break;
		case SV_STOPPING:
			if (a->sg_newest)
				supervise_exit_code(sv, a->sg_status,
				    ep->ep_signalled);
			if (TAILQ_EMPTY(&sv->sv_epochs)) {
				supervise_set_state(sv, SV_DONE);
				supervise_finish(sv);
			}
			break;
		default:	/* IDLE, BACKOFF (the killed), DONE */
			break;
		}
		break;

	case SE_BACKOFF_DONE:
		if (s != SV_BACKOFF)
			break;
		/* The killed epochs must be gone before epoch 0 takes ports. */
		if (!TAILQ_EMPTY(&sv->sv_epochs))
			supervise_arm(sv->sv_backoff_ev, SUPERVISE_REAP_WAIT);
		else if (supervise_cold(sv, RESTART_FAILURE, NULL) == 0)
			supervise_set_state(sv, SV_STARTING);
		else if (supervise_backoff(sv, sv->sv_last_failure, 1) == -1)
			supervise_stopping_or_done(sv);
		break;

	case SE_RETRY_DONE:
		if (s != SV_RETRY)
			break;
		log_info("hot restart: trying again with epoch %d (attempt %d)",
		    epoch_live(sv)->ep_num + 1, sv->sv_hot_tries + 1);
		if (supervise_hot(sv, sv->sv_waiting) == 0)
			supervise_set_state(sv, SV_STARTING);
		break;

	case SE_STABLE:
		if ((ep = epoch_live(sv)) != NULL && sv->sv_tries > 0) {
			log_info("epoch %d: stable; restart budget refilled",
			    ep->ep_num);
			sv->sv_tries = 0;
		}
		break;

	case SE_TERM:
	case SE_TERM_NOW:
		switch (s) {
		case SV_STARTING:
		case SV_PENDING:
		case SV_LIVE:
		case SV_RETRY:
			event_del(sv->sv_retry_ev);
			if (ev == SE_TERM && !TAILQ_EMPTY(&sv->sv_epochs)) {
				supervise_set_state(sv, SV_TERMINATING);
				drain_start(sv->sv_drain, 1);
			} else
				supervise_stopping_or_done(sv);
			break;
		case SV_BACKOFF:
			/* The proxy's last ending was its own, not asked for. */
			sv->sv_exit_code = sv->sv_fail_code;
			supervise_stopping_or_done(sv);
			break;
		case SV_TERMINATING:
			log_info("shutdown: drain cut short");
			supervise_stopping_or_done(sv);
			break;
		case SV_IDLE:
		case SV_DRAINED:
			supervise_stopping_or_done(sv);
			break;
		case SV_STOPPING:
			/* A third signal kills; a second quit changes nothing. */
			if (ev == SE_TERM)
				epoch_signal_all(sv, SIGKILL, "killing");
			break;
		case SV_DONE:
			break;
		}
		break;

	case SE_DRAIN:
		if ((s == SV_STARTING || s == SV_PENDING || s == SV_LIVE ||
		    s == SV_RETRY) && !TAILQ_EMPTY(&sv->sv_epochs)) {
			event_del(sv->sv_retry_ev);
			supervise_set_state(sv, SV_DRAINED);
			drain_start(sv->sv_drain, 0);
		}
		break;

	case SE_DRAIN_DONE:
		if (s == SV_TERMINATING)
			supervise_stopping_or_done(sv);
		break;

	case SE_KILL_TIMEOUT:
		if (s == SV_STOPPING)
			epoch_signal_all(sv, SIGKILL,
			    "still alive after SIGTERM; SIGKILL to");
		break;
	}
}

/* The timers: each is one event. */
static void
supervise_backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	supervise_step(arg, SE_BACKOFF_DONE, NULL);
}

static void
supervise_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	supervise_step(arg, SE_RETRY_DONE, NULL);
}

static void
supervise_stable_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	supervise_step(arg, SE_STABLE, NULL);
}

static void
supervise_kill_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	supervise_step(arg, SE_KILL_TIMEOUT, NULL);
}

/* /server_info of the epoch being polled: SE_LIVE when it says LIVE. */
static void
supervise_poll_done(int code, const char *body, size_t len, void *arg)
{
	struct supervise	*sv = arg;
	struct epoch		*ep = epoch_newest(sv);
	json_t			*doc, *state, *epoch;
	json_error_t		 jerr;

	sv->sv_poll_req = NULL;
	if (code != 200 || ep == NULL || ep->ep_state != EPOCH_STARTING)
		return;
	if ((doc = json_loadb(body, len, 0, &jerr)) == NULL)
		return;
	state = json_object_get(doc, "state");
	epoch = json_object_get(json_object_get(doc, "command_line_options"),
	    "restart_epoch");
	/* The admin port belongs to whichever epoch bound it last. */
	if (json_is_string(state) && strcmp(json_string_value(state),
	    "LIVE") == 0 && json_is_integer(epoch) &&
	    json_integer_value(epoch) == ep->ep_num)
		supervise_step(sv, SE_LIVE, NULL);
	json_decref(doc);
}

/* Every SUPERVISE_POLL while the newest epoch starts. */
static void
supervise_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	struct supervise	*sv = arg;
	struct epoch		*ep = epoch_newest(sv);

	(void)fd;
	(void)what;
	if (ep == NULL || ep->ep_state != EPOCH_STARTING || ep->ep_timed_out)
		return;
	if (ep->ep_hot && clock_now_ns() - ep->ep_started >
	    SUPERVISE_LIVE_WAIT) {
		supervise_step(sv, SE_LIVE_TIMEOUT, NULL);
		return;
	}
	if (sv->sv_poll_req == NULL)
		sv->sv_poll_req = admin_request(sv->sv_base,
		    sv->sv_cf->cf_proxy_admin_port, "GET", "/server_info",
		    SUPERVISE_ADMIN_TIMEOUT, supervise_poll_done, sv);
	supervise_arm(sv->sv_poll_ev, SUPERVISE_POLL);
}

struct supervise *
supervise_new(struct event_base *base, struct config *cf)
{
	struct supervise	*sv;

	sv = xcalloc(1, sizeof(*sv));
	sv->sv_base = base;
	sv->sv_cf = cf;
	sv->sv_state = SV_IDLE;
	sv->sv_exit_code = -1;
	TAILQ_INIT(&sv->sv_epochs);
	sv->sv_created = clock_now_ns();
	sv->sv_poll_ev = evtimer_new(base, supervise_poll_cb, sv);
	sv->sv_backoff_ev = evtimer_new(base, supervise_backoff_cb, sv);
	sv->sv_retry_ev = evtimer_new(base, supervise_retry_cb, sv);
	sv->sv_stable_ev = evtimer_new(base, supervise_stable_cb, sv);
	sv->sv_kill_ev = evtimer_new(base, supervise_kill_cb, sv);
	sv->sv_drain = drain_new(sv);
	return sv;
}

void
supervise_free(struct supervise *sv)
{
	struct epoch	*ep;

	if (sv == NULL)
		return;
	admin_cancel(sv->sv_poll_req);
	drain_free(sv->sv_drain);
	while ((ep = TAILQ_FIRST(&sv->sv_epochs)) != NULL) {
		TAILQ_REMOVE(&sv->sv_epochs, ep, ep_entry);
		epoch_free(ep);
	}
	event_free(sv->sv_poll_ev);
	event_free(sv->sv_backoff_ev);
	event_free(sv->sv_retry_ev);
	event_free(sv->sv_stable_ev);
	event_free(sv->sv_kill_ev);
	json_decref(sv->sv_rendered);
	if (sv->sv_own != NULL) {
		config_free(sv->sv_own);
		free(sv->sv_own);
	}
	free(sv);
}

/*
 * The entry points main, the watcher and the status server call; each is
 * one event.
 */

/*
 * Starts epoch 0 from doc, the bootstrap main rendered (this takes it); if
 * that fails for good, supervise_finished says so at once.
 */
void
supervise_start(struct supervise *sv, json_t *doc)
{
	struct sv_arg	a;

	memset(&a, 0, sizeof(a));
	a.sg_doc = doc;
	supervise_step(sv, SE_START, &a);
}

/*
 * A trigger: SIGHUP (force) or a change of watched inputs, which restarts
 * only if the rendered bootstrap differs from the newest epoch's.
 */
void
supervise_restart(struct supervise *sv, const char *reason, int force)
{
	struct sv_arg	a;

	/*
	 * A death not yet reaped (libevent runs SIGHUP before SIGCHLD) is
	 * handled first: a child whose parent is gone cannot hot-restart.
	 */
	epoch_reap(sv);
	memset(&a, 0, sizeof(a));
	a.sg_reason = reason;
	a.sg_force = force;
	supervise_step(sv, SE_RESTART, &a);
}

/* POST /drain: drain now and stay; a later shutdown stops at once. */
void
supervise_drain(struct supervise *sv)
{
	supervise_step(sv, SE_DRAIN, NULL);
}

/*
 * SIGTERM or SIGINT: the first drains, a second cuts the drain short, a
 * third kills. POST /quitquitquit (skip_drain) stops without a drain.
 */
void
supervise_shutdown(struct supervise *sv, int skip_drain)
{
	supervise_step(sv, skip_drain ? SE_TERM_NOW : SE_TERM, NULL);
}

/* SIGCHLD. */
void
supervise_reap(struct supervise *sv)
{
	epoch_reap(sv);
}

/* SIGUSR1 (and others to pass on) go to every epoch alive. */
void
supervise_signal(struct supervise *sv, int sig)
{
	struct epoch	*ep;

	TAILQ_FOREACH(ep, &sv->sv_epochs, ep_entry) {
		log_info("epoch %d: forwarding signal %d", ep->ep_num, sig);
		if (kill(-ep->ep_pid, sig) == -1)
			log_warn("epoch %d: kill %d", ep->ep_num, sig);
	}
}
