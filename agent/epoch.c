/*
 * The proxy's processes, one per restart epoch: starting one (its bootstrap
 * file written, its command line from bootstrap/, the exec through spawn.c),
 * signalling them, and reaping them. What an epoch's start or end means for
 * the agent is the state machine's to decide (supervise.c): this file only
 * keeps the books and reports each end as an SE_EXIT event.
 *
 * Each epoch is the leader of a process group of its own (spawn.c), so a
 * signal reaches whatever a wrapper around the proxy started, and what the
 * epoch leaves in its group when it ends is killed: nothing of an epoch
 * outlives it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "supervise.h"
#include "bootstrap.h"

static const char *const epoch_state_names[] = {
	"starting", "live", "draining", "exited"
};

void
epoch_set_state(struct epoch *ep, enum epoch_state state)
{
	if (ep->ep_state == state)
		return;
	log_info("epoch %d: %s → %s", ep->ep_num,
	    epoch_state_names[ep->ep_state], epoch_state_names[state]);
	ep->ep_state = state;
}

const char *
epoch_state_name(enum epoch_state state)
{
	return epoch_state_names[state];
}

struct epoch *
epoch_newest(struct supervise *sv)
{
	return TAILQ_LAST(&sv->sv_epochs, epochs);
}

/* The epoch that serves, or NULL. */
struct epoch *
epoch_live(struct supervise *sv)
{
	struct epoch	*ep, *live = NULL;

	TAILQ_FOREACH(ep, &sv->sv_epochs, ep_entry) {
		if (ep->ep_state == EPOCH_LIVE)
			live = ep;
	}
	return live;
}

int
epoch_count(struct supervise *sv)
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
void
epoch_signal(struct epoch *ep, int sig)
{
	ep->ep_signalled = 1;
	if (kill(-ep->ep_pid, sig) == -1 && errno != ESRCH)
		log_warn("epoch %d: kill %d", ep->ep_num, sig);
}

/* Every epoch alive gets sig; why, when not NULL, is logged for each. */
void
epoch_signal_all(struct supervise *sv, int sig, const char *why)
{
	struct epoch	*ep;

	TAILQ_FOREACH(ep, &sv->sv_epochs, ep_entry) {
		if (why != NULL)
			log_warnx("epoch %d: %s pid %d", ep->ep_num, why,
			    (int)ep->ep_pid);
		epoch_signal(ep, sig);
	}
}

/* "exit code 3", "signal 9 (Killed)": how a process ended; its shell code. */
int
epoch_describe(int status, char *buf, size_t len)
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

/*
 * Starts epoch n from doc (a reference this takes; NULL: render now):
 * write its bootstrap file, exec the proxy. NULL with the reason in err
 * when it could not be started.
 */
struct epoch *
epoch_start(struct supervise *sv, int n, enum restart_reason why,
    json_t *doc, char *err, size_t errlen)
{
	struct config	*cf = sv->sv_cf;
	struct epoch	*ep = NULL;
	struct timeval	 tv;
	char		**argv = NULL, *path = NULL;
	pid_t		 pid;

	if (doc == NULL && (doc = bootstrap_render(cf, err, errlen)) == NULL)
		goto out;
	xasprintf(&path, "%s/envoy-rev%d.json", cf->cf_config_path, n);
	if (bootstrap_write(path, doc, err, errlen) == -1)
		goto out;
	argv = bootstrap_argv(cf, n, path);
	if ((pid = spawn_exec(cf->cf_binary_path, argv, err, errlen)) == -1) {
		unlink(path);
		goto out;
	}
	ep = xcalloc(1, sizeof(*ep));
	ep->ep_num = n;
	ep->ep_pid = pid;
	ep->ep_state = EPOCH_STARTING;
	ep->ep_reason = why;
	ep->ep_path = path;
	path = NULL;
	ep->ep_started = clock_now_ns();
	ep->ep_wall_started = time(NULL);
	ep->ep_hot = epoch_live(sv) != NULL;
	TAILQ_INSERT_TAIL(&sv->sv_epochs, ep, ep_entry);
	json_decref(sv->sv_rendered);
	sv->sv_rendered = doc;
	doc = NULL;
	if (n > 0 || why == RESTART_FAILURE)
		sv->sv_restarts[why]++;
	log_info("epoch %d: started pid %d (%s)", n, (int)pid, n == 0 ?
	    (why == RESTART_FAILURE ? "cold start after failure" :
	    "cold start") : supervise_reason_name(why));
	/* Polled until LIVE (supervise.c's poll callback). */
	if (!event_pending(sv->sv_poll_ev, EV_TIMEOUT, NULL)) {
		tv = clock_tv(SUPERVISE_POLL);
		event_add(sv->sv_poll_ev, &tv);
	}
out:
	bootstrap_argv_free(argv);
	free(path);
	json_decref(doc);
	return ep;
}

void
epoch_free(struct epoch *ep)
{
	if (ep == NULL)
		return;
	free(ep->ep_path);
	free(ep);
}

static void
epoch_count_exit(struct supervise *sv, int status)
{
	char	name[16];
	int	i;

	if (WIFEXITED(status))
		snprintf(name, sizeof(name), "%d", WEXITSTATUS(status));
	else
		snprintf(name, sizeof(name), "signal");
	for (i = 0; i < SUPERVISE_MAX_CODES; i++) {
		if (sv->sv_exits[i].name[0] == '\0')
			snprintf(sv->sv_exits[i].name,
			    sizeof(sv->sv_exits[i].name), "%s", name);
		if (strcmp(sv->sv_exits[i].name, name) == 0) {
			sv->sv_exits[i].count++;
			return;
		}
	}
}

/*
 * An epoch's process ended: its books are closed here (out of the list,
 * its bootstrap file removed, its group killed, the exit counted and
 * logged), then the machine is told.
 */
static void
epoch_exited(struct supervise *sv, struct epoch *ep, int status)
{
	struct sv_arg	 arg;
	char		 how[96];
	int		 clean;

	memset(&arg, 0, sizeof(arg));
	arg.sg_ep = ep;
	arg.sg_status = status;
	arg.sg_newest = ep == epoch_newest(sv);
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
	epoch_count_exit(sv, status);
	epoch_describe(status, how, sizeof(how));
	clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	if (clean || ep->ep_signalled)
		log_info("epoch %d: %s → exited (pid %d, %s)", ep->ep_num,
		    epoch_state_names[ep->ep_state], (int)ep->ep_pid, how);
	else
		log_warnx("epoch %d: %s → exited (pid %d, %s)", ep->ep_num,
		    epoch_state_names[ep->ep_state], (int)ep->ep_pid, how);
	ep->ep_state = EPOCH_EXITED;
	supervise_step(sv, SE_EXIT, &arg);
	epoch_free(ep);
}

/* SIGCHLD: reap every child, ours or an orphan we inherited as subreaper. */
void
epoch_reap(struct supervise *sv)
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
			epoch_exited(sv, ep, status);
		else
			log_debug("reaped pid %d", (int)pid);
	}
}

/*
 * The agent is about to exit: reap what the epochs' process groups left
 * (they were killed as each epoch ended), so that nothing outlives the
 * agent as a zombie of whoever inherits it. Bounded: a child that is not
 * ours to kill (a grandchild that left its group) is not waited for long.
 */
void
epoch_reap_leftovers(void)
{
	struct timespec	 ts = { 0, 10 * CLOCK_MSEC };
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
