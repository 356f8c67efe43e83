/*
 * The supervisor: the proxy's epochs as an explicit state machine.
 *
 * Each epoch is one proxy process started with "--restart-epoch N". A hot
 * restart starts epoch latest+1 while an epoch is alive; Envoy's protocol then
 * has the new epoch take the listen sockets of the previous one, make it
 * close its admin listener (which terminates the one before it), and drain it
 * once the new one is initialized. The supervisor only ever starts a new
 * epoch when the newest one is LIVE, so at most three processes exist, and
 * only briefly. Triggers that arrive while the newest epoch is starting are
 * coalesced into one restart.
 *
 * The newest epoch failing (exit non-zero or by a signal) after it went LIVE
 * kills every other epoch and schedules a cold start at epoch 0 after an
 * exponential backoff; the budget of tries refills once a start has stayed
 * LIVE for --restartStableDuration. An older epoch exiting is normal.
 *
 * A LIVE epoch is never given up for one that has not gone LIVE. A hot
 * restart's new epoch that exits before it is LIVE, or is not LIVE within
 * SUPERVISE_LIVE_WAIT (a control plane that is down cannot configure it), has
 * failed alone: it is killed, the LIVE epoch keeps serving, and the hot
 * restart is tried again after a backoff of its own, at the epoch number
 * after the LIVE one (the failed epoch cannot be anyone's parent), with the
 * triggers that arrived meanwhile coalesced into it. It never gives up while
 * an epoch serves. A cold start that is not LIVE yet has nothing to protect
 * and no deadline: restarts wait for it, as Istio's agent waits for istiod.
 *
 * Each epoch runs in a process group of its own (spawn.c): signals go to the
 * whole group, and whatever the proxy left in it is killed when it exits, so
 * a wrapper's background children never outlive their epoch.
 *
 * Shutdown: drain the listeners through the admin API, wait, SIGTERM every
 * epoch, SIGKILL after a grace period; exit 0 when the proxy ended because the
 * agent asked, else with the proxy's own code.
 *
 * The agent's whole state: RUNNING (epochs alive or starting), BACKOFF
 * (waiting to cold start), DRAINING, STOPPING, DONE. Every transition of the
 * agent or of an epoch is one log line.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "agent.h"
#include "bootstrap.h"

#define NSEC			1000000000LL
#define MSEC			1000000LL
#define SUPERVISE_POLL		(100 * MSEC)	/* LIVE polling */
#define SUPERVISE_LIVE_WAIT	(20 * NSEC)	/* pending restart waits */
#define SUPERVISE_KILL_GRACE	(5 * NSEC)	/* SIGTERM → SIGKILL */
#define SUPERVISE_CX_POLL	(1 * NSEC)	/* active connections */
#define SUPERVISE_ADMIN_TIMEOUT	(1 * NSEC)
#define SUPERVISE_MAX_CODES	16
#define SUPERVISE_MAX_BACKOFF	(300 * NSEC)	/* the longest backoff step */

enum sv_state {
	SV_IDLE,
	SV_RUNNING,
	SV_BACKOFF,
	SV_DRAINING,
	SV_STOPPING,
	SV_DONE
};

static const char *const sv_state_names[] = {
	"idle", "running", "backoff", "draining", "stopping", "done"
};

static const char *const epoch_state_names[] = {
	"starting", "live", "draining", "exited"
};

enum restart_reason {
	RESTART_SIGHUP,
	RESTART_INPUTS,
	RESTART_FAILURE,
	RESTART_NREASONS
};

static const char *const restart_reason_names[] = {
	"sighup", "inputs_changed", "failure"
};

struct epoch {
	TAILQ_ENTRY(epoch)	 ep_entry;
	int			 ep_num;
	pid_t			 ep_pid;
	enum epoch_state	 ep_state;
	char			*ep_path;	/* its bootstrap file */
	int64_t			 ep_started;	/* monotonic ns */
	int64_t			 ep_live_at;
	time_t			 ep_wall_started;
	int			 ep_signalled;	/* the agent sent a signal */
	int			 ep_hot;	/* started while another was LIVE */
	enum restart_reason	 ep_reason;	/* why it was started */
	int			 ep_timed_out;	/* killed: not LIVE in time */
};
TAILQ_HEAD(epochs, epoch);

struct supervise {
	struct event_base	*sv_base;
	struct config		*sv_cf;		/* the configuration in use */
	struct config		*sv_own;	/* a reloaded one, ours to free */
	enum sv_state		 sv_state;
	struct epochs		 sv_epochs;	/* alive, oldest first */
	int			 sv_next;	/* the next hot restart's epoch */
	json_t			*sv_rendered;	/* the newest epoch's bootstrap */

	int			 sv_pending;	/* a coalesced restart */
	enum restart_reason	 sv_pending_reason;

	struct event		*sv_poll_ev;
	struct admin_request	*sv_poll_req;
	struct event		*sv_backoff_ev;
	struct event		*sv_stable_ev;
	struct event		*sv_drain_ev;
	struct event		*sv_kill_ev;
	struct event		*sv_retry_ev;	/* a failed hot restart's */
	struct admin_request	*sv_drain_req;
	struct admin_request	*sv_cx_req;

	int			 sv_tries;	/* failed starts in a row */
	int64_t			 sv_backoff_delay;
	int64_t			 sv_backoff_until;
	int			 sv_hot_tries;	/* failed hot restarts in a row */
	int64_t			 sv_retry_delay;
	int64_t			 sv_retry_until;
	enum restart_reason	 sv_retry_reason;
	unsigned long		 sv_hot_failures;
	char			 sv_hot_failure[256];
	int			 sv_drain_timed; /* drain ends by itself */
	int			 sv_exit_code;
	int			 sv_exit_set;
	int			 sv_gave_up;
	int			 sv_fail_code;	/* the last failure's exit code */
	char			 sv_last_failure[256];

	int64_t			 sv_created;
	int64_t			 sv_startup;	/* to the first LIVE, ns */
	unsigned long		 sv_restarts[RESTART_NREASONS];
	unsigned long		 sv_abnormal_drained;
	struct {
		char		 name[16];
		unsigned long	 count;
	}			 sv_exits[SUPERVISE_MAX_CODES];
};

static void	supervise_start_epoch(struct supervise *, int,
		    enum restart_reason, json_t *);
static void	supervise_poll(evutil_socket_t, short, void *);
static void	supervise_stop(struct supervise *);
static void	supervise_hot_failed(struct supervise *, const char *,
		    enum restart_reason);
static void	supervise_finish(struct supervise *);

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
epoch_set_state(struct epoch *ep, enum epoch_state state)
{
	if (ep->ep_state == state)
		return;
	log_info("epoch %d: %s → %s", ep->ep_num,
	    epoch_state_names[ep->ep_state], epoch_state_names[state]);
	ep->ep_state = state;
}

static struct epoch *
supervise_newest(struct supervise *sv)
{
	return TAILQ_LAST(&sv->sv_epochs, epochs);
}

static int
supervise_alive(struct supervise *sv)
{
	struct epoch	*ep;
	int		 n = 0;

	TAILQ_FOREACH(ep, &sv->sv_epochs, ep_entry)
		n++;
	return n;
}

/*
 * Signals the epoch's process group: spawn made the proxy its leader, so
 * this reaches whatever a wrapper around the proxy started too.
 */
static void
epoch_signal(struct epoch *ep, int sig)
{
	ep->ep_signalled = 1;
	if (kill(-ep->ep_pid, sig) == -1 && errno != ESRCH)
		log_warn("epoch %d: kill %d", ep->ep_num, sig);
}

struct supervise *
supervise_new(struct event_base *base, struct config *cf)
{
	struct supervise	*sv;

	sv = xcalloc(1, sizeof(*sv));
	sv->sv_base = base;
	sv->sv_cf = cf;
	sv->sv_state = SV_IDLE;
	TAILQ_INIT(&sv->sv_epochs);
	sv->sv_created = clock_now_ns();
	/* Armed only while the newest epoch is starting. */
	sv->sv_poll_ev = evtimer_new(base, supervise_poll, sv);
	return sv;
}

void
supervise_free(struct supervise *sv)
{
	struct epoch	*ep;

	if (sv == NULL)
		return;
	admin_cancel(sv->sv_poll_req);
	admin_cancel(sv->sv_drain_req);
	admin_cancel(sv->sv_cx_req);
	while ((ep = TAILQ_FIRST(&sv->sv_epochs)) != NULL) {
		TAILQ_REMOVE(&sv->sv_epochs, ep, ep_entry);
		free(ep->ep_path);
		free(ep);
	}
	if (sv->sv_poll_ev != NULL)
		event_free(sv->sv_poll_ev);
	if (sv->sv_backoff_ev != NULL)
		event_free(sv->sv_backoff_ev);
	if (sv->sv_stable_ev != NULL)
		event_free(sv->sv_stable_ev);
	if (sv->sv_drain_ev != NULL)
		event_free(sv->sv_drain_ev);
	if (sv->sv_kill_ev != NULL)
		event_free(sv->sv_kill_ev);
	if (sv->sv_retry_ev != NULL)
		event_free(sv->sv_retry_ev);
	json_decref(sv->sv_rendered);
	if (sv->sv_own != NULL) {
		config_free(sv->sv_own);
		free(sv->sv_own);
	}
	free(sv);
}

/* From now on the supervisor renders and starts epochs from cf. */
static void
supervise_use_config(struct supervise *sv, struct config *cf)
{
	if (sv->sv_own != NULL) {
		config_free(sv->sv_own);
		free(sv->sv_own);
	}
	sv->sv_own = cf;
	sv->sv_cf = cf;
}

static void
supervise_drop_config(struct config *cf)
{
	config_free(cf);
	free(cf);
}

/* The proxy's argv for epoch n, exactly as DESIGN §4 gives it. */
static char **
supervise_argv(struct supervise *sv, int n, const char *path)
{
	struct config	*cf = sv->sv_cf;
	char		**argv;
	int		 i = 0, v6 = 1, k;

	for (k = 0; k < cf->cf_nips; k++) {
		if (strchr(cf->cf_ips[k], ':') == NULL)
			v6 = 0;
	}
	argv = xcalloc(32, sizeof(*argv));
	argv[i++] = xstrdup(cf->cf_binary_path);
	argv[i++] = xstrdup("-c");
	argv[i++] = xstrdup(path);
	argv[i++] = xstrdup("--restart-epoch");
	xasprintf(&argv[i++], "%d", n);
	argv[i++] = xstrdup("--drain-time-s");
	xasprintf(&argv[i++], "%lld", (long long)(cf->cf_drain_duration / NSEC));
	argv[i++] = xstrdup("--parent-shutdown-time-s");
	xasprintf(&argv[i++], "%lld",
	    (long long)(cf->cf_parent_shutdown_duration / NSEC));
	argv[i++] = xstrdup("--service-cluster");
	argv[i++] = xstrdup(cf->cf_service_cluster);
	argv[i++] = xstrdup("--service-node");
	argv[i++] = xstrdup(cf->cf_node_id);
	argv[i++] = xstrdup("--local-address-ip-version");
	argv[i++] = xstrdup(v6 ? "v6" : "v4");
	argv[i++] = xstrdup("--file-flush-interval-msec");
	argv[i++] = xstrdup("1000");
	argv[i++] = xstrdup("--log-format");
	xasprintf(&argv[i++], "[Envoy (Epoch %d)] [%%Y-%%m-%%d %%T.%%e][%%t]"
	    "[%%l][%%n] %%v", n);
	argv[i++] = xstrdup("-l");
	argv[i++] = xstrdup(cf->cf_proxy_log_level);
	if (cf->cf_proxy_component_log_level != NULL &&
	    *cf->cf_proxy_component_log_level != '\0') {
		argv[i++] = xstrdup("--component-log-level");
		argv[i++] = xstrdup(cf->cf_proxy_component_log_level);
	}
	if (cf->cf_concurrency >= 0) {
		argv[i++] = xstrdup("--concurrency");
		xasprintf(&argv[i++], "%d", cf->cf_concurrency);
	}
	if (cf->cf_drain_strategy != NULL) {
		argv[i++] = xstrdup("--drain-strategy");
		argv[i++] = xstrdup(cf->cf_drain_strategy);
	}
	argv[i] = NULL;
	return argv;
}

static void
supervise_argv_free(char **argv)
{
	char	**p;

	for (p = argv; *p != NULL; p++)
		free(*p);
	free(argv);
}

static void
supervise_count_exit(struct supervise *sv, const char *name)
{
	int	i;

	for (i = 0; i < SUPERVISE_MAX_CODES; i++) {
		if (sv->sv_exits[i].name[0] == '\0') {
			snprintf(sv->sv_exits[i].name,
			    sizeof(sv->sv_exits[i].name), "%s", name);
		}
		if (strcmp(sv->sv_exits[i].name, name) == 0) {
			sv->sv_exits[i].count++;
			return;
		}
	}
}

/* "exit 3", "signal 9": how a process ended, and its shell-style code. */
static int
supervise_describe(int status, char *buf, size_t len)
{
	if (WIFEXITED(status)) {
		snprintf(buf, len, "exit code %d", WEXITSTATUS(status));
		return WEXITSTATUS(status);
	}
	if (WIFSIGNALED(status)) {
		snprintf(buf, len, "signal %d (%s)", WTERMSIG(status),
		    strsignal(WTERMSIG(status)));
		return 128 + WTERMSIG(status);
	}
	snprintf(buf, len, "status %d", status);
	return 1;
}

static void
supervise_kill_others(struct supervise *sv, struct epoch *keep)
{
	struct epoch	*ep;

	TAILQ_FOREACH(ep, &sv->sv_epochs, ep_entry) {
		if (ep == keep)
			continue;
		log_warnx("epoch %d: killing pid %d", ep->ep_num,
		    (int)ep->ep_pid);
		epoch_signal(ep, SIGKILL);
	}
}

static void
supervise_backoff_fire(evutil_socket_t fd, short what, void *arg)
{
	struct supervise	*sv = arg;

	(void)fd;
	(void)what;
	if (sv->sv_state != SV_BACKOFF)
		return;
	/* The killed epochs must be gone before epoch 0 takes their ports. */
	if (!TAILQ_EMPTY(&sv->sv_epochs)) {
		struct timeval tv = clock_tv(10 * MSEC);

		event_add(sv->sv_backoff_ev, &tv);
		return;
	}
	supervise_set_state(sv, SV_RUNNING);
	supervise_start_epoch(sv, 0, RESTART_FAILURE, NULL);
}

/*
 * The newest epoch failed (or could not start): kill the rest and schedule a
 * cold start, or give up once the budget is spent.
 */
static void
supervise_failed(struct supervise *sv, const char *why, int code)
{
	struct timeval	tv;
	char		when[32];

	snprintf(sv->sv_last_failure, sizeof(sv->sv_last_failure), "%s", why);
	sv->sv_fail_code = code;
	supervise_kill_others(sv, NULL);
	sv->sv_pending = 0;
	sv->sv_hot_tries = 0;
	if (sv->sv_retry_ev != NULL)
		event_del(sv->sv_retry_ev);
	if (sv->sv_stable_ev != NULL)
		event_del(sv->sv_stable_ev);
	if (sv->sv_tries >= sv->sv_cf->cf_restart_max_retries) {
		log_error("proxy failed %d times in a row, giving up: %s",
		    sv->sv_tries + 1, why);
		sv->sv_exit_code = 1;
		sv->sv_exit_set = 1;
		sv->sv_gave_up = 1;
		supervise_set_state(sv, SV_STOPPING);
		if (TAILQ_EMPTY(&sv->sv_epochs))
			supervise_finish(sv);
		return;
	}
	sv->sv_backoff_delay = clock_backoff(
	    sv->sv_cf->cf_restart_initial_interval, sv->sv_tries,
	    SUPERVISE_MAX_BACKOFF);
	sv->sv_tries++;
	sv->sv_backoff_until = clock_now_ns() + sv->sv_backoff_delay;
	duration_format(sv->sv_backoff_delay, when, sizeof(when));
	log_warnx("proxy failed: %s; cold start in %s (attempt %d of %d)",
	    why, when, sv->sv_tries, sv->sv_cf->cf_restart_max_retries);
	supervise_set_state(sv, SV_BACKOFF);
	if (sv->sv_backoff_ev == NULL)
		sv->sv_backoff_ev = evtimer_new(sv->sv_base,
		    supervise_backoff_fire, sv);
	tv = clock_tv(sv->sv_backoff_delay);
	event_add(sv->sv_backoff_ev, &tv);
}

/*
 * The next try of a hot restart that failed: the epoch after the LIVE one,
 * for the triggers that arrived meanwhile or else the failed one's reason.
 */
static void
supervise_retry_fire(evutil_socket_t fd, short what, void *arg)
{
	struct supervise	*sv = arg;
	struct epoch		*ep;
	enum restart_reason	 why;
	int			 live;

	(void)fd;
	(void)what;
	ep = supervise_newest(sv);
	live = supervise_live_epoch(sv);
	if (sv->sv_state != SV_RUNNING || ep == NULL ||
	    ep->ep_state != EPOCH_LIVE)
		return;
	why = sv->sv_pending ? sv->sv_pending_reason : sv->sv_retry_reason;
	sv->sv_pending = 0;
	log_info("hot restart: trying again with epoch %d (attempt %d)",
	    live + 1, sv->sv_hot_tries + 1);
	supervise_start_epoch(sv, live + 1, why, NULL);
}

/*
 * A hot restart failed before its epoch went LIVE (it exited, hung, or
 * could not be started): the LIVE epoch keeps serving and the restart is
 * tried again after a backoff, for as long as it fails.
 */
static void
supervise_hot_failed(struct supervise *sv, const char *why,
    enum restart_reason reason)
{
	struct timeval	tv;
	char		when[32];
	int		live = supervise_live_epoch(sv);

	snprintf(sv->sv_hot_failure, sizeof(sv->sv_hot_failure), "%s", why);
	sv->sv_hot_failures++;
	sv->sv_retry_delay = clock_backoff(
	    sv->sv_cf->cf_restart_initial_interval, sv->sv_hot_tries,
	    SUPERVISE_MAX_BACKOFF);
	sv->sv_hot_tries++;
	sv->sv_retry_until = clock_now_ns() + sv->sv_retry_delay;
	sv->sv_retry_reason = reason;
	sv->sv_next = live + 1;
	duration_format(sv->sv_retry_delay, when, sizeof(when));
	log_warnx("hot restart failed: %s; epoch %d keeps serving; trying "
	    "again in %s (attempt %d)", why, live, when, sv->sv_hot_tries);
	if (sv->sv_retry_ev == NULL)
		sv->sv_retry_ev = evtimer_new(sv->sv_base,
		    supervise_retry_fire, sv);
	tv = clock_tv(sv->sv_retry_delay);
	event_add(sv->sv_retry_ev, &tv);
}

/* Whether a failed hot restart waits for its next try. */
static int
supervise_retrying(struct supervise *sv)
{
	return sv->sv_retry_ev != NULL &&
	    event_pending(sv->sv_retry_ev, EV_TIMEOUT, NULL);
}

static void
supervise_stable(evutil_socket_t fd, short what, void *arg)
{
	struct supervise	*sv = arg;
	struct epoch		*ep = supervise_newest(sv);

	(void)fd;
	(void)what;
	if (ep != NULL && ep->ep_state == EPOCH_LIVE && sv->sv_tries > 0) {
		log_info("epoch %d: stable; restart budget refilled",
		    ep->ep_num);
		sv->sv_tries = 0;
	}
}

/*
 * Starts epoch n from doc (a reference this takes; NULL: render now): write
 * its bootstrap file, exec. A hot restart (n > 0) requires the previous epoch
 * to be alive; a cold start is epoch 0. Failing before the exec is a failure
 * of the newest epoch only for a cold start: during a hot restart the epochs
 * alive keep serving (a typo in an input must not kill a healthy proxy), and
 * the trigger is dropped with the reason in the log.
 */
static void
supervise_start_epoch(struct supervise *sv, int n, enum restart_reason why,
    json_t *doc)
{
	struct config	*cf = sv->sv_cf;
	struct epoch	*ep, *old, *next;
	char		 err[512], why_failed[600], **argv, *path = NULL;
	pid_t		 pid;

	/* At most three processes: the newest may only have one elder. */
	for (old = TAILQ_FIRST(&sv->sv_epochs); old != NULL; old = next) {
		next = TAILQ_NEXT(old, ep_entry);
		if (old->ep_num < n - 2 && !old->ep_signalled) {
			log_warnx("epoch %d: still alive when epoch %d starts; "
			    "killing it", old->ep_num, n);
			epoch_signal(old, SIGKILL);
		}
	}
	if (doc == NULL &&
	    (doc = bootstrap_render(cf, err, sizeof(err))) == NULL)
		goto failed;
	xasprintf(&path, "%s/envoy-rev%d.json", cf->cf_config_path, n);
	if (bootstrap_write(path, doc, err, sizeof(err)) == -1)
		goto failed;
	argv = supervise_argv(sv, n, path);
	pid = spawn_exec(cf->cf_binary_path, argv, err, sizeof(err));
	supervise_argv_free(argv);
	if (pid == -1) {
		unlink(path);
		goto failed;
	}
	json_decref(sv->sv_rendered);
	sv->sv_rendered = doc;
	ep = xcalloc(1, sizeof(*ep));
	ep->ep_num = n;
	ep->ep_pid = pid;
	ep->ep_state = EPOCH_STARTING;
	ep->ep_path = path;
	ep->ep_started = clock_now_ns();
	ep->ep_wall_started = time(NULL);
	ep->ep_hot = supervise_live_epoch(sv) >= 0;
	ep->ep_reason = why;
	TAILQ_INSERT_TAIL(&sv->sv_epochs, ep, ep_entry);
	sv->sv_next = n + 1;
	if (n > 0 || why == RESTART_FAILURE)
		sv->sv_restarts[why]++;
	log_info("epoch %d: started pid %d (%s)", n, (int)pid,
	    n == 0 ? (why == RESTART_FAILURE ? "cold start after failure" :
	    "cold start") : restart_reason_names[why]);
	if (!event_pending(sv->sv_poll_ev, EV_TIMEOUT, NULL)) {
		struct timeval tv = clock_tv(SUPERVISE_POLL);

		event_add(sv->sv_poll_ev, &tv);
	}
	return;

failed:
	json_decref(doc);
	free(path);
	if (n > 0 && supervise_live_epoch(sv) >= 0) {
		snprintf(why_failed, sizeof(why_failed), "epoch %d not "
		    "started: %s", n, err);
		supervise_hot_failed(sv, why_failed, why);
		return;
	}
	if (n > 0 && !TAILQ_EMPTY(&sv->sv_epochs)) {
		log_error("epoch %d: not started: %s; epoch %d keeps serving",
		    n, err, supervise_newest(sv)->ep_num);
		return;
	}
	log_error("epoch %d: not started: %s", n, err);
	supervise_failed(sv, err, 1);
}

/* Starts epoch 0 from doc, the bootstrap main rendered (a reference this takes). */
int
supervise_start(struct supervise *sv, json_t *doc)
{
	supervise_set_state(sv, SV_RUNNING);
	supervise_start_epoch(sv, 0, RESTART_SIGHUP, doc);
	return sv->sv_state == SV_DONE ? -1 : 0;
}

static void
supervise_went_live(struct supervise *sv, struct epoch *ep)
{
	struct epoch	*old;
	struct timeval	 tv;

	ep->ep_live_at = clock_now_ns();
	epoch_set_state(ep, EPOCH_LIVE);
	sv->sv_hot_tries = 0;
	if (sv->sv_startup == 0)
		sv->sv_startup = ep->ep_live_at - sv->sv_created;
	TAILQ_FOREACH(old, &sv->sv_epochs, ep_entry) {
		if (old != ep && old->ep_state != EPOCH_DRAINING)
			epoch_set_state(old, EPOCH_DRAINING);
	}
	if (sv->sv_stable_ev == NULL)
		sv->sv_stable_ev = evtimer_new(sv->sv_base, supervise_stable,
		    sv);
	tv = clock_tv(sv->sv_cf->cf_restart_stable_duration);
	event_add(sv->sv_stable_ev, &tv);
	if (sv->sv_pending && sv->sv_state == SV_RUNNING) {
		sv->sv_pending = 0;
		supervise_start_epoch(sv, sv->sv_next, sv->sv_pending_reason,
		    NULL);
	}
}

/* Parses the admin /server_info answer of the epoch being polled. */
static void
supervise_poll_done(int code, const char *body, size_t len, void *arg)
{
	struct supervise	*sv = arg;
	struct epoch		*ep = supervise_newest(sv);
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
		supervise_went_live(sv, ep);
	json_decref(doc);
}

static void
supervise_poll(evutil_socket_t fd, short what, void *arg)
{
	struct supervise	*sv = arg;
	struct epoch		*ep = supervise_newest(sv);
	struct timeval		 tv;

	(void)fd;
	(void)what;
	if (ep == NULL || ep->ep_state != EPOCH_STARTING ||
	    sv->sv_state != SV_RUNNING || ep->ep_timed_out)
		return;
	/*
	 * A hot restart that does not reach LIVE in time has failed; the
	 * epoch it would replace keeps serving (its exit, once reaped, is
	 * handled by supervise_hot_failed). A cold start has no deadline.
	 */
	if (ep->ep_hot && clock_now_ns() - ep->ep_started > SUPERVISE_LIVE_WAIT) {
		log_warnx("epoch %d: not LIVE after %llds; stopping it",
		    ep->ep_num, (long long)(SUPERVISE_LIVE_WAIT / NSEC));
		ep->ep_timed_out = 1;
		epoch_signal(ep, SIGKILL);
		return;
	}
	if (sv->sv_poll_req == NULL)
		sv->sv_poll_req = admin_request(sv->sv_base,
		    sv->sv_cf->cf_proxy_admin_port, "GET", "/server_info",
		    SUPERVISE_ADMIN_TIMEOUT, supervise_poll_done, sv);
	tv = clock_tv(SUPERVISE_POLL);
	event_add(sv->sv_poll_ev, &tv);
}

/*
 * A trigger: SIGHUP (force) or a change of watched inputs, which restarts
 * only if the rendered bootstrap differs from the newest epoch's.
 */
void
supervise_restart(struct supervise *sv, const char *reason, int force)
{
	struct epoch		*ep;
	struct config		*fresh;
	enum restart_reason	 why = force ? RESTART_SIGHUP : RESTART_INPUTS;
	char			 err[512];
	json_t			*doc;

	/*
	 * A death not yet reaped (libevent runs SIGHUP before SIGCHLD) must be
	 * handled first: a child whose parent is gone cannot hot-restart.
	 */
	supervise_reap(sv);
	ep = supervise_newest(sv);
	if (!(sv->sv_state == SV_RUNNING && ep != NULL) &&
	    !(sv->sv_state == SV_BACKOFF && force)) {
		log_info("restart (%s) ignored: agent is %s", reason,
		    sv_state_names[sv->sv_state]);
		return;
	}
	/*
	 * The configuration is read again (mesh config, PROXY_CONFIG, flags),
	 * so that an edited input reaches the next epoch. Bad input keeps
	 * the epochs that serve now.
	 */
	fresh = xcalloc(1, sizeof(*fresh));
	if (config_reload(sv->sv_cf, fresh, err, sizeof(err)) == -1) {
		log_warnx("restart (%s): %s; keeping the proxy as it is",
		    reason, err);
		free(fresh);
		return;
	}
	if ((doc = bootstrap_render(fresh, err, sizeof(err))) == NULL) {
		log_warnx("restart (%s): rendering the bootstrap: %s; keeping "
		    "the proxy as it is", reason, err);
		supervise_drop_config(fresh);
		return;
	}
	if (!force && sv->sv_rendered != NULL &&
	    json_equal(doc, sv->sv_rendered)) {
		log_info("restart (%s): bootstrap unchanged; no restart",
		    reason);
		json_decref(doc);
		supervise_drop_config(fresh);
		return;
	}
	supervise_use_config(sv, fresh);
	if (sv->sv_state == SV_BACKOFF) {
		log_info("restart (%s): cold start now instead of after the "
		    "backoff", reason);
		json_decref(doc);
		event_active(sv->sv_backoff_ev, EV_TIMEOUT, 0);
		return;
	}
	if (supervise_retrying(sv)) {
		/* Coalesced into the retry, which renders again. */
		json_decref(doc);
		if (!sv->sv_pending)
			sv->sv_pending_reason = why;
		sv->sv_pending = 1;
		log_info("restart (%s) pending: a failed hot restart is tried "
		    "again in %lldms", reason, (long long)((sv->sv_retry_until -
		    clock_now_ns()) / MSEC));
		return;
	}
	if (ep->ep_state != EPOCH_LIVE) {
		/* The restart renders again when it happens. */
		json_decref(doc);
		if (!sv->sv_pending)
			sv->sv_pending_reason = why;
		sv->sv_pending = 1;
		log_info("restart (%s) pending: epoch %d is not LIVE yet",
		    reason, ep->ep_num);
		return;
	}
	log_info("restart (%s): hot restart to epoch %d", reason, sv->sv_next);
	supervise_start_epoch(sv, sv->sv_next, why, doc);
}

static void
supervise_kill_fire(evutil_socket_t fd, short what, void *arg)
{
	struct supervise	*sv = arg;
	struct epoch		*ep;

	(void)fd;
	(void)what;
	TAILQ_FOREACH(ep, &sv->sv_epochs, ep_entry) {
		log_warnx("epoch %d: still alive after SIGTERM; SIGKILL",
		    ep->ep_num);
		epoch_signal(ep, SIGKILL);
	}
}

/* Drain is over (or skipped): SIGTERM every epoch, SIGKILL later. */
static void
supervise_stop(struct supervise *sv)
{
	struct epoch	*ep;
	struct timeval	 tv;

	if (sv->sv_drain_ev != NULL)
		event_del(sv->sv_drain_ev);
	admin_cancel(sv->sv_cx_req);
	sv->sv_cx_req = NULL;
	if (sv->sv_backoff_ev != NULL)
		event_del(sv->sv_backoff_ev);
	if (sv->sv_retry_ev != NULL)
		event_del(sv->sv_retry_ev);
	supervise_set_state(sv, SV_STOPPING);
	if (TAILQ_EMPTY(&sv->sv_epochs)) {
		supervise_finish(sv);
		return;
	}
	TAILQ_FOREACH(ep, &sv->sv_epochs, ep_entry) {
		log_info("epoch %d: sending SIGTERM to pid %d", ep->ep_num,
		    (int)ep->ep_pid);
		epoch_signal(ep, SIGTERM);
	}
	if (sv->sv_kill_ev == NULL)
		sv->sv_kill_ev = evtimer_new(sv->sv_base, supervise_kill_fire,
		    sv);
	tv = clock_tv(SUPERVISE_KILL_GRACE);
	event_add(sv->sv_kill_ev, &tv);
}

/*
 * The agent is about to exit: reap what the epochs' process groups left
 * (they were killed as each epoch ended), so that nothing outlives the
 * agent as a zombie of whoever inherits it. Bounded: a child that is not
 * ours to kill (a grandchild that left its group) is not waited for long.
 */
static void
supervise_reap_leftovers(void)
{
	struct timespec	 ts = { 0, 10 * MSEC };
	pid_t		 pid;
	int		 i, status;

	for (i = 0; i < 50; i++) {
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
			log_debug("reaped pid %d", (int)pid);
		if (pid == -1 && errno == ECHILD)
			return;
		nanosleep(&ts, NULL);
	}
}

static void
supervise_finish(struct supervise *sv)
{
	supervise_set_state(sv, SV_DONE);
	supervise_reap_leftovers();
	admin_cancel(sv->sv_poll_req);
	admin_cancel(sv->sv_drain_req);
	admin_cancel(sv->sv_cx_req);
	sv->sv_poll_req = sv->sv_drain_req = sv->sv_cx_req = NULL;
	event_del(sv->sv_poll_ev);
	if (sv->sv_stable_ev != NULL)
		event_del(sv->sv_stable_ev);
	if (sv->sv_kill_ev != NULL)
		event_del(sv->sv_kill_ev);
	if (sv->sv_backoff_ev != NULL)
		event_del(sv->sv_backoff_ev);
	if (sv->sv_drain_ev != NULL)
		event_del(sv->sv_drain_ev);
	if (sv->sv_retry_ev != NULL)
		event_del(sv->sv_retry_ev);
	event_base_loopexit(sv->sv_base, NULL);
}

/*
 * Sums the listeners' downstream_cx_active as Istio does: listener stats
 * only, no per-worker copies, not the admin, health or metrics listeners.
 */
static long
supervise_active(struct supervise *sv, const char *body, size_t len)
{
	const char	*p = body, *end = body + len, *nl;
	char		 line[512], skip[3][64];
	long		 total = 0, v;
	int		 found = 0;

	snprintf(skip[0], sizeof(skip[0]), "_%d.", sv->sv_cf->cf_envoy_status_port);
	snprintf(skip[1], sizeof(skip[1]), "_%d.", sv->sv_cf->cf_prometheus_port);
	snprintf(skip[2], sizeof(skip[2]), "listener.admin.");
	for (; p < end; p = nl + 1) {
		char *colon;

		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		snprintf(line, sizeof(line), "%.*s", (int)(nl - p), p);
		if ((colon = strstr(line, ": ")) == NULL)
			continue;
		*colon = '\0';
		if (strncmp(line, "listener.", 9) != 0 ||
		    strstr(line, "worker_") != NULL ||
		    strstr(line, ".downstream_cx_active") == NULL ||
		    strstr(line, skip[0]) != NULL ||
		    strstr(line, skip[1]) != NULL ||
		    strncmp(line, skip[2], strlen(skip[2])) == 0)
			continue;
		v = strtol(colon + 2, NULL, 10);
		total += v;
		found = 1;
	}
	return found ? total : -1;
}

static void supervise_drain_fire(evutil_socket_t, short, void *);

static void
supervise_cx_done(int code, const char *body, size_t len, void *arg)
{
	struct supervise	*sv = arg;
	struct timeval		 tv;
	long			 active;

	sv->sv_cx_req = NULL;
	if (sv->sv_state != SV_DRAINING)
		return;
	if (code != 200) {
		log_warnx("drain: cannot read active connections (admin "
		    "answered %d); stopping the proxy", code);
		supervise_stop(sv);
		return;
	}
	active = supervise_active(sv, body, len);
	if (active <= 0) {
		log_info("drain: %s; stopping the proxy", active == 0 ?
		    "no more active connections" :
		    "downstream_cx_active not available");
		supervise_stop(sv);
		return;
	}
	log_info("drain: %ld active connections remain", active);
	tv = clock_tv(SUPERVISE_CX_POLL);
	event_add(sv->sv_drain_ev, &tv);
}

static void
supervise_drain_fire(evutil_socket_t fd, short what, void *arg)
{
	struct supervise	*sv = arg;

	(void)fd;
	(void)what;
	if (sv->sv_state != SV_DRAINING)
		return;
	if (!sv->sv_cf->cf_exit_on_zero_active) {
		log_info("drain: terminationDrainDuration elapsed");
		supervise_stop(sv);
		return;
	}
	if (sv->sv_cx_req == NULL)
		sv->sv_cx_req = admin_request(sv->sv_base,
		    sv->sv_cf->cf_proxy_admin_port, "GET",
		    "/stats?usedonly&filter=downstream_cx_active$",
		    SUPERVISE_ADMIN_TIMEOUT, supervise_cx_done, sv);
	if (sv->sv_cx_req == NULL)
		supervise_stop(sv);
}

static void
supervise_drain_sent(int code, const char *body, size_t len, void *arg)
{
	struct supervise	*sv = arg;

	(void)body;
	(void)len;
	sv->sv_drain_req = NULL;
	if (code != 200)
		log_warnx("drain: admin /drain_listeners answered %d", code);
	else
		log_info("drain: proxy is draining its listeners");
}

/* Enters DRAINING; timed is whether the drain ends by itself. */
static void
supervise_enter_drain(struct supervise *sv, int timed)
{
	struct timeval	 tv;
	const char	*path;
	char		 d[32];

	event_del(sv->sv_poll_ev);
	if (sv->sv_backoff_ev != NULL)
		event_del(sv->sv_backoff_ev);
	if (sv->sv_retry_ev != NULL)
		event_del(sv->sv_retry_ev);
	sv->sv_pending = 0;
	supervise_set_state(sv, SV_DRAINING);
	sv->sv_drain_timed = timed;
	path = sv->sv_cf->cf_role == ROLE_ROUTER ?
	    "/drain_listeners?graceful&skip_exit" :
	    "/drain_listeners?inboundonly&graceful&skip_exit";
	sv->sv_drain_req = admin_request(sv->sv_base,
	    sv->sv_cf->cf_proxy_admin_port, "POST", path,
	    SUPERVISE_ADMIN_TIMEOUT, supervise_drain_sent, sv);
	if (!timed)
		return;
	if (sv->sv_drain_ev == NULL)
		sv->sv_drain_ev = evtimer_new(sv->sv_base,
		    supervise_drain_fire, sv);
	if (sv->sv_cf->cf_exit_on_zero_active) {
		duration_format(sv->sv_cf->cf_minimum_drain_duration, d,
		    sizeof(d));
		log_info("drain: waiting %s, then for active connections to "
		    "close", d);
		tv = clock_tv(sv->sv_cf->cf_minimum_drain_duration);
	} else {
		duration_format(sv->sv_cf->cf_termination_drain_duration, d,
		    sizeof(d));
		log_info("drain: waiting %s (terminationDrainDuration)", d);
		tv = clock_tv(sv->sv_cf->cf_termination_drain_duration);
	}
	event_add(sv->sv_drain_ev, &tv);
}

/* POST /drain: drain now and stay; a later shutdown stops at once. */
void
supervise_drain(struct supervise *sv)
{
	if (sv->sv_state == SV_RUNNING && !TAILQ_EMPTY(&sv->sv_epochs))
		supervise_enter_drain(sv, 0);
}

/*
 * SIGTERM or SIGINT (or /quitquitquit with skip): the first drains, a second
 * cuts the drain short, a third kills.
 */
void
supervise_shutdown(struct supervise *sv, int skip_drain)
{
	switch (sv->sv_state) {
	case SV_DONE:
		return;
	case SV_STOPPING:
		supervise_kill_fire(-1, 0, sv);
		return;
	case SV_DRAINING:
		log_info("shutdown: drain cut short");
		supervise_stop(sv);
		return;
	case SV_BACKOFF:
		/* The proxy's last ending was its own, not one we asked for. */
		sv->sv_exit_code = sv->sv_fail_code;
		sv->sv_exit_set = 1;
		supervise_stop(sv);
		return;
	case SV_IDLE:
		supervise_stop(sv);
		return;
	case SV_RUNNING:
		if (TAILQ_EMPTY(&sv->sv_epochs) || skip_drain)
			supervise_stop(sv);
		else
			supervise_enter_drain(sv, 1);
		return;
	}
}

/* SIGUSR1 (and others to pass on) go to every epoch alive. */
void
supervise_signal(struct supervise *sv, int sig)
{
	struct epoch	*ep;

	TAILQ_FOREACH(ep, &sv->sv_epochs, ep_entry) {
		log_info("epoch %d: forwarding signal %d", ep->ep_num, sig);
		if (kill(-ep->ep_pid, sig) == -1 && errno != ESRCH)
			log_warn("epoch %d: kill %d", ep->ep_num, sig);
	}
}

static void
supervise_exited(struct supervise *sv, struct epoch *ep, int status)
{
	char	 how[96], why[160], name[16];
	int	 code, newest = ep == supervise_newest(sv);
	int	 clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;

	code = supervise_describe(status, how, sizeof(how));
	if (WIFEXITED(status))
		snprintf(name, sizeof(name), "%d", WEXITSTATUS(status));
	else
		snprintf(name, sizeof(name), "signal");
	supervise_count_exit(sv, name);
	TAILQ_REMOVE(&sv->sv_epochs, ep, ep_entry);
	/*
	 * Nothing of an epoch outlives it. The group's id stays reserved
	 * while any member lives, so this cannot reach a stranger's group.
	 */
	if (kill(-ep->ep_pid, SIGKILL) == 0)
		log_info("epoch %d: killed what was left in its process group",
		    ep->ep_num);
	if (unlink(ep->ep_path) == -1 && errno != ENOENT)
		log_warn("removing %s", ep->ep_path);
	if (clean || ep->ep_signalled)
		log_info("epoch %d: %s → exited (pid %d, %s)", ep->ep_num,
		    epoch_state_names[ep->ep_state], (int)ep->ep_pid, how);
	else
		log_warnx("epoch %d: %s → exited (pid %d, %s)", ep->ep_num,
		    epoch_state_names[ep->ep_state], (int)ep->ep_pid, how);
	ep->ep_state = EPOCH_EXITED;

	switch (sv->sv_state) {
	case SV_RUNNING:
		if (!newest) {
			if (!clean && !ep->ep_signalled)
				sv->sv_abnormal_drained++;
			break;
		}
		if (ep->ep_live_at == 0 && supervise_live_epoch(sv) >= 0) {
			if (ep->ep_timed_out)
				snprintf(why, sizeof(why), "epoch %d (pid %d) "
				    "not LIVE after %llds", ep->ep_num,
				    (int)ep->ep_pid,
				    (long long)(SUPERVISE_LIVE_WAIT / NSEC));
			else
				snprintf(why, sizeof(why), "epoch %d (pid %d) "
				    "%s before it went LIVE", ep->ep_num,
				    (int)ep->ep_pid, how);
			supervise_hot_failed(sv, why, ep->ep_reason);
			break;
		}
		if (clean && !ep->ep_signalled) {
			log_info("proxy exited on its own with code 0; "
			    "stopping");
			sv->sv_exit_code = 0;
			sv->sv_exit_set = 1;
			supervise_stop(sv);
			break;
		}
		snprintf(why, sizeof(why), "epoch %d (pid %d) %s", ep->ep_num,
		    (int)ep->ep_pid, how);
		supervise_failed(sv, why, code);
		break;
	case SV_DRAINING:
		if (newest && !sv->sv_exit_set) {
			sv->sv_exit_code = code;
			sv->sv_exit_set = 1;
			log_warnx("proxy exited during the drain: %s", how);
		}
		if (TAILQ_EMPTY(&sv->sv_epochs))
			supervise_finish(sv);
		else if (newest)
			supervise_stop(sv);
		break;
	case SV_STOPPING:
		if (newest && !sv->sv_exit_set) {
			sv->sv_exit_code = ep->ep_signalled &&
			    (clean || (WIFSIGNALED(status) &&
			    (WTERMSIG(status) == SIGTERM ||
			    WTERMSIG(status) == SIGKILL))) ? 0 : code;
			sv->sv_exit_set = 1;
		}
		if (TAILQ_EMPTY(&sv->sv_epochs))
			supervise_finish(sv);
		break;
	case SV_BACKOFF:
	case SV_IDLE:
	case SV_DONE:
		break;
	}
	free(ep->ep_path);
	free(ep);
}

/* SIGCHLD: reap every child, ours or an orphan we inherited as subreaper. */
void
supervise_reap(struct supervise *sv)
{
	struct epoch	*ep;
	pid_t		 pid;
	int		 status;

	for (;;) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid == 0)
			break;
		if (pid == -1) {
			if (errno == EINTR)
				continue;
			break;
		}
		TAILQ_FOREACH(ep, &sv->sv_epochs, ep_entry) {
			if (ep->ep_pid == pid)
				break;
		}
		if (ep != NULL)
			supervise_exited(sv, ep, status);
		else
			log_debug("reaped pid %d", (int)pid);
	}
}

/* Whether the agent is done, and its exit code. */
int
supervise_finished(struct supervise *sv, int *code)
{
	if (sv->sv_state != SV_DONE)
		return 0;
	*code = sv->sv_exit_set ? sv->sv_exit_code : 0;
	return 1;
}

/* Why the agent gave up on the proxy, or NULL. */
const char *
supervise_failure(struct supervise *sv)
{
	return sv->sv_gave_up ? sv->sv_last_failure : NULL;
}

int
supervise_live_epoch(struct supervise *sv)
{
	struct epoch	*ep;
	int		 live = -1;

	TAILQ_FOREACH(ep, &sv->sv_epochs, ep_entry) {
		if (ep->ep_state == EPOCH_LIVE)
			live = ep->ep_num;
	}
	return live;
}

int
supervise_draining(struct supervise *sv)
{
	return sv->sv_state == SV_DRAINING || sv->sv_state == SV_STOPPING ||
	    sv->sv_state == SV_DONE;
}

/* Whether the supervisor is stopping the proxy for good, or has. */
/*
 * The newest epoch's number when it is only starting (the agent runs, no
 * epoch is LIVE yet), else -1: readiness then asks the proxy itself why.
 */
int
supervise_starting(struct supervise *sv)
{
	struct epoch	*ep = supervise_newest(sv);

	if (sv->sv_state != SV_RUNNING || ep == NULL ||
	    ep->ep_state != EPOCH_STARTING || supervise_live_epoch(sv) >= 0)
		return -1;
	return ep->ep_num;
}

int
supervise_stopping(struct supervise *sv)
{
	return sv->sv_state == SV_STOPPING || sv->sv_state == SV_DONE;
}

/* The agent's side of readiness: 0, or -1 with the reason. */
int
supervise_ready(struct supervise *sv, char *why, size_t len)
{
	struct epoch	*ep = supervise_newest(sv);
	char		 d[32];
	int64_t		 left;

	switch (sv->sv_state) {
	case SV_DRAINING:
	case SV_STOPPING:
	case SV_DONE:
		snprintf(why, len, "agent is draining");
		return -1;
	case SV_BACKOFF:
		left = sv->sv_backoff_until - clock_now_ns();
		duration_format(left > 0 ? left / MSEC * MSEC : 0, d,
		    sizeof(d));
		snprintf(why, len, "proxy restart in %s (attempt %d of %d): "
		    "%s", d, sv->sv_tries, sv->sv_cf->cf_restart_max_retries,
		    sv->sv_last_failure);
		return -1;
	case SV_IDLE:
		snprintf(why, len, "proxy not started");
		return -1;
	case SV_RUNNING:
		break;
	}
	if (supervise_live_epoch(sv) >= 0)
		return 0;
	if (ep != NULL)
		snprintf(why, len, "epoch %d starting", ep->ep_num);
	else
		snprintf(why, len, "no proxy running");
	return -1;
}

static void
iso_time(time_t t, char *buf, size_t len)
{
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A new reference: the supervisor's state for /debug/epochs. */
json_t *
supervise_json(struct supervise *sv)
{
	json_t		*o, *list, *restarts, *e, *hot;
	struct epoch	*ep;
	char		 when[32];
	int		 i;
	int64_t		 left;

	list = json_array();
	TAILQ_FOREACH(ep, &sv->sv_epochs, ep_entry) {
		iso_time(ep->ep_wall_started, when, sizeof(when));
		e = json_pack("{s:i, s:i, s:s, s:s, s:s}", "epoch", ep->ep_num,
		    "pid", (int)ep->ep_pid, "state",
		    epoch_state_names[ep->ep_state], "started", when,
		    "bootstrap", ep->ep_path);
		if (ep->ep_live_at != 0)
			json_object_set_new(e, "live_after_ms", json_integer(
			    (ep->ep_live_at - ep->ep_started) / MSEC));
		json_array_append_new(list, e);
	}
	restarts = json_object();
	for (i = 0; i < RESTART_NREASONS; i++)
		json_object_set_new(restarts, restart_reason_names[i],
		    json_integer((json_int_t)sv->sv_restarts[i]));
	left = supervise_retrying(sv) ? sv->sv_retry_until - clock_now_ns() : 0;
	hot = json_pack("{s:i, s:I, s:I, s:s, s:I}", "attempt",
	    sv->sv_hot_tries, "delay_ms", (json_int_t)(sv->sv_retry_delay /
	    MSEC), "next_try_in_ms", (json_int_t)(left > 0 ? left / MSEC : 0),
	    "last_failure", sv->sv_hot_failure, "failures",
	    (json_int_t)sv->sv_hot_failures);
	left = sv->sv_state == SV_BACKOFF ? sv->sv_backoff_until - clock_now_ns() : 0;
	o = json_pack("{s:s, s:o, s:i, s:i, s:o, s:{s:i, s:i, s:I, s:I}, "
	    "s:s, s:b, s:o}",
	    "state", sv_state_names[sv->sv_state],
	    "epochs", list,
	    "live_epoch", supervise_live_epoch(sv),
	    "next_epoch", sv->sv_next,
	    "restarts", restarts,
	    "backoff", "attempt", sv->sv_tries, "max_retries",
	    sv->sv_cf->cf_restart_max_retries, "delay_ms",
	    (json_int_t)(sv->sv_backoff_delay / MSEC), "next_try_in_ms",
	    (json_int_t)(left > 0 ? left / MSEC : 0),
	    "last_failure", sv->sv_last_failure,
	    "restart_pending", sv->sv_pending,
	    "hot_restart_retry", hot);
	return o;
}

/* The supervisor's metrics, Prometheus text 0.0.4. */
void
supervise_metrics(struct supervise *sv, struct evbuffer *out)
{
	int	 i;

	evbuffer_add_printf(out,
	    "# HELP istio_agent_startup_duration_seconds Time from the agent's "
	    "start to the first LIVE proxy epoch.\n"
	    "# TYPE istio_agent_startup_duration_seconds gauge\n"
	    "istio_agent_startup_duration_seconds %.6f\n",
	    (double)sv->sv_startup / NSEC);
	evbuffer_add_printf(out,
	    "# HELP istio_agent_proxy_epoch The LIVE proxy epoch, -1 if none.\n"
	    "# TYPE istio_agent_proxy_epoch gauge\n"
	    "istio_agent_proxy_epoch %d\n", supervise_live_epoch(sv));
	evbuffer_add_printf(out,
	    "# HELP istio_agent_proxy_processes Proxy processes alive.\n"
	    "# TYPE istio_agent_proxy_processes gauge\n"
	    "istio_agent_proxy_processes %d\n", supervise_alive(sv));
	evbuffer_add_printf(out,
	    "# HELP istio_agent_proxy_restarts_total Proxy restarts by "
	    "reason.\n"
	    "# TYPE istio_agent_proxy_restarts_total counter\n");
	for (i = 0; i < RESTART_NREASONS; i++)
		evbuffer_add_printf(out,
		    "istio_agent_proxy_restarts_total{reason=\"%s\"} %lu\n",
		    restart_reason_names[i], sv->sv_restarts[i]);
	evbuffer_add_printf(out,
	    "# HELP istio_agent_proxy_exits_total Proxy processes ended, by "
	    "exit code (or signal).\n"
	    "# TYPE istio_agent_proxy_exits_total counter\n");
	for (i = 0; i < SUPERVISE_MAX_CODES && sv->sv_exits[i].name[0]; i++)
		evbuffer_add_printf(out,
		    "istio_agent_proxy_exits_total{code=\"%s\"} %lu\n",
		    sv->sv_exits[i].name, sv->sv_exits[i].count);
	evbuffer_add_printf(out,
	    "# HELP istio_agent_proxy_abnormal_drained_exits_total Draining "
	    "epochs that exited abnormally.\n"
	    "# TYPE istio_agent_proxy_abnormal_drained_exits_total counter\n"
	    "istio_agent_proxy_abnormal_drained_exits_total %lu\n",
	    sv->sv_abnormal_drained);
	evbuffer_add_printf(out,
	    "# HELP istio_agent_proxy_hot_restart_failures_total Hot restarts "
	    "whose new epoch failed before it went LIVE (the LIVE epoch kept "
	    "serving).\n"
	    "# TYPE istio_agent_proxy_hot_restart_failures_total counter\n"
	    "istio_agent_proxy_hot_restart_failures_total %lu\n",
	    sv->sv_hot_failures);
	evbuffer_add_printf(out,
	    "# HELP istio_agent_proxy_backoff_attempt Failed starts in a row "
	    "(0 when healthy).\n"
	    "# TYPE istio_agent_proxy_backoff_attempt gauge\n"
	    "istio_agent_proxy_backoff_attempt %d\n"
	    "# HELP istio_agent_proxy_backoff_seconds The current backoff "
	    "delay before a cold start.\n"
	    "# TYPE istio_agent_proxy_backoff_seconds gauge\n"
	    "istio_agent_proxy_backoff_seconds %.3f\n",
	    sv->sv_tries, sv->sv_state == SV_BACKOFF ?
	    (double)sv->sv_backoff_delay / NSEC : 0.0);
	evbuffer_add_printf(out,
	    "# HELP istio_agent_draining 1 while the agent drains the proxy "
	    "for shutdown.\n"
	    "# TYPE istio_agent_draining gauge\n"
	    "istio_agent_draining %d\n", supervise_draining(sv));
}
