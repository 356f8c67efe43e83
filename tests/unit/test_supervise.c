/*
 * Unit tests of the supervisor's state machine (agent/supervise.c), fed one
 * event at a time. The epochs are real processes (a script that sleeps,
 * standing in for the proxy), so starts, signals and reaping are the real
 * ones; what the proxy would say (LIVE) and the timers are events the test
 * feeds, so every transition is reached on purpose, including the edges
 * the end-to-end tests found: SIGHUP before SIGCHLD, SIGHUP or SIGTERM
 * during the backoff, a hot restart that fails or hangs, the newest epoch
 * dying while an older one drains.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "supervise.h"
#include "bootstrap.h"
#include "check.h"

static char		 dir[] = "/tmp/test_supervise.XXXXXX";
static struct event_base *base;

/*
 * An agent with the stand-in script as its proxy. The command line is kept
 * (static) for as long as the configuration: restarts parse it again.
 */
static struct supervise *
make(struct config *cf, int retries)
{
	static char	 proxy[256], etc[256], retry_arg[32];
	static char	*argv[] = { "proxy", "sidecar", "--configPath", etc,
	    "--binaryPath", proxy, "--proxyAdminPort", "1",
	    "--discoveryAddress", "127.0.0.1:2", "--controlPlaneAuthPolicy",
	    "NONE", "--restartInitialInterval", "10ms",
	    "--restartMaxRetries", retry_arg, "--terminationDrainDuration",
	    "0s", NULL };
	char		 err[512];
	FILE		*f;

	snprintf(proxy, sizeof(proxy), "%s/proxy", dir);
	snprintf(etc, sizeof(etc), "%s/etc", dir);
	snprintf(retry_arg, sizeof(retry_arg), "%d", retries);
	mkdir(etc, 0750);
	if ((f = fopen(proxy, "w")) != NULL) {
		fputs("#!/bin/sh\nexec sleep 60\n", f);
		fclose(f);
	}
	chmod(proxy, 0755);
	if (config_parse(cf, (int)(sizeof(argv) / sizeof(argv[0])) - 1, argv,
	    err, sizeof(err)) == -1) {
		fprintf(stderr, "config: %s\n", err);
		exit(1);
	}
	return supervise_new(base, cf);
}

static void
start(struct supervise *sv)
{
	char	 err[512];
	json_t	*doc = bootstrap_render(sv->sv_cf, err, sizeof(err));

	CHECK(doc != NULL);
	supervise_start(sv, doc);
}

static void
feed(struct supervise *sv, enum sv_event ev)
{
	supervise_step(sv, ev, NULL);
}

/* Reaps and runs due timers until the agent is in want (2 s at most). */
static int
until(struct supervise *sv, enum sv_state want)
{
	struct timespec	ts = { 0, 5 * 1000000 };
	int		i;

	for (i = 0; i < 400; i++) {
		supervise_reap(sv);
		event_base_loop(base, EVLOOP_NONBLOCK);
		if (sv->sv_state == want)
			return 1;
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "state %s, want %s\n",
	    supervise_state_name(sv->sv_state), supervise_state_name(want));
	return 0;
}

/*
 * Kills an epoch's process as a crash would (not the agent's doing), and
 * waits until it is dead; WNOWAIT leaves it for the agent to reap.
 */
static void
crash(struct epoch *ep)
{
	siginfo_t	si;

	kill(ep->ep_pid, SIGKILL);
	while (waitid(P_PID, (id_t)ep->ep_pid, &si, WEXITED | WNOWAIT) == -1 &&
	    errno == EINTR)
		;
}

static struct epoch *
epoch_n(struct supervise *sv, int n)
{
	struct epoch	*ep;

	TAILQ_FOREACH(ep, &sv->sv_epochs, ep_entry) {
		if (ep->ep_num == n)
			return ep;
	}
	return NULL;
}

static void
done(struct supervise *sv, struct config *cf)
{
	int	code;

	if (sv->sv_state != SV_DONE) {
		feed(sv, SE_TERM_NOW);
		until(sv, SV_DONE);
	}
	CHECK(supervise_finished(sv, &code));
	supervise_free(sv);
	config_free(cf);
}

/* Start, LIVE, a hot restart, the old epoch drains, SIGTERM, exit 0. */
static void
test_lifecycle(void)
{
	struct config		 cf;
	struct supervise	*sv = make(&cf, 3);
	int			 code;

	CHECK(sv->sv_state == SV_IDLE);
	start(sv);
	CHECK(sv->sv_state == SV_STARTING);
	CHECK(epoch_count(sv) == 1);
	feed(sv, SE_LIVE);
	CHECK(sv->sv_state == SV_LIVE);
	CHECK(supervise_live_epoch(sv) == 0);
	supervise_restart(sv, "SIGHUP", 1);
	CHECK(sv->sv_state == SV_STARTING);
	CHECK(epoch_newest(sv)->ep_num == 1 && epoch_newest(sv)->ep_hot);
	feed(sv, SE_LIVE);
	CHECK(sv->sv_state == SV_LIVE);
	CHECK(epoch_n(sv, 0)->ep_state == EPOCH_DRAINING);
	CHECK(epoch_n(sv, 1)->ep_state == EPOCH_LIVE);
	/* An unchanged input restarts nothing; SIGHUP always does. */
	supervise_restart(sv, "watched input changed", 0);
	CHECK(sv->sv_state == SV_LIVE);
	/* The draining epoch exits: normal, the newest stays. */
	crash(epoch_n(sv, 0));
	CHECK(until(sv, SV_LIVE) && epoch_count(sv) == 1);
	CHECK(sv->sv_abnormal_drained == 1);
	/* SIGTERM: drain (0s here), stop, exit 0 as asked. */
	feed(sv, SE_TERM);
	CHECK(sv->sv_state == SV_TERMINATING);
	CHECK(supervise_draining(sv));
	feed(sv, SE_DRAIN_DONE);
	CHECK(sv->sv_state == SV_STOPPING);
	CHECK(until(sv, SV_DONE));
	CHECK(supervise_finished(sv, &code) && code == 0);
	done(sv, &cf);
}

/* Triggers during a start coalesce into one restart, made once LIVE. */
static void
test_pending(void)
{
	struct config		 cf;
	struct supervise	*sv = make(&cf, 3);

	start(sv);
	supervise_restart(sv, "SIGHUP", 1);
	CHECK(sv->sv_state == SV_PENDING);
	supervise_restart(sv, "SIGHUP", 1);
	CHECK(sv->sv_state == SV_PENDING);
	CHECK(epoch_count(sv) == 1);
	feed(sv, SE_LIVE);
	CHECK(sv->sv_state == SV_STARTING);
	CHECK(epoch_count(sv) == 2 && epoch_newest(sv)->ep_num == 1);
	done(sv, &cf);
}

/*
 * A hot restart's epoch that dies, or hangs, before LIVE fails alone: the
 * LIVE epoch stays, the restart is retried, and a retry that goes LIVE
 * takes over.
 */
static void
test_hot_failure(void)
{
	struct config		 cf;
	struct supervise	*sv = make(&cf, 1);
	pid_t			 p0;

	start(sv);
	feed(sv, SE_LIVE);
	p0 = epoch_n(sv, 0)->ep_pid;
	supervise_restart(sv, "SIGHUP", 1);
	crash(epoch_n(sv, 1));
	CHECK(until(sv, SV_RETRY));
	CHECK(epoch_count(sv) == 1 && epoch_n(sv, 0)->ep_pid == p0);
	CHECK(supervise_live_epoch(sv) == 0);
	CHECK(sv->sv_hot_failures == 1 && sv->sv_hot_tries == 1);
	CHECK(strstr(sv->sv_hot_failure, "before it went LIVE") != NULL);
	{
		char why[128];

		CHECK(supervise_ready(sv, why, sizeof(why)) == 0);
	}
	/* Triggers meanwhile wait for the retry. */
	supervise_restart(sv, "SIGHUP", 1);
	CHECK(sv->sv_state == SV_RETRY && epoch_count(sv) == 1);
	/* The retry hangs: its deadline passes, it is stopped alone. */
	feed(sv, SE_RETRY_DONE);
	CHECK(sv->sv_state == SV_STARTING && epoch_newest(sv)->ep_num == 1);
	feed(sv, SE_LIVE_TIMEOUT);
	CHECK(until(sv, SV_RETRY));
	CHECK(strstr(sv->sv_hot_failure, "not LIVE after 20s") != NULL);
	CHECK(sv->sv_hot_tries == 2 && sv->sv_hot_failures == 2);
	/* The budget of cold starts (1) is not what limits hot retries. */
	CHECK(sv->sv_tries == 0);
	feed(sv, SE_RETRY_DONE);
	feed(sv, SE_LIVE);
	CHECK(sv->sv_state == SV_LIVE && supervise_live_epoch(sv) == 1);
	CHECK(sv->sv_hot_tries == 0);
	CHECK(epoch_n(sv, 0)->ep_state == EPOCH_DRAINING);
	done(sv, &cf);
}

/*
 * The newest epoch dies while an older one drains: everything is killed
 * and a cold start at epoch 0 follows the backoff; SIGHUP during the
 * backoff starts at once; the budget spent, the agent gives up with 1.
 */
static void
test_failure(void)
{
	struct config		 cf;
	struct supervise	*sv = make(&cf, 2);
	int			 code;

	start(sv);
	feed(sv, SE_LIVE);
	supervise_restart(sv, "SIGHUP", 1);
	feed(sv, SE_LIVE);
	CHECK(epoch_n(sv, 0)->ep_state == EPOCH_DRAINING);
	crash(epoch_n(sv, 1));
	CHECK(until(sv, SV_BACKOFF));
	CHECK(sv->sv_tries == 1 && sv->sv_fail_code == 137);
	CHECK(strstr(sv->sv_last_failure, "epoch 1") != NULL);
	/* The draining epoch was killed; the cold start waits for it. */
	CHECK(until(sv, SV_STARTING));
	CHECK(epoch_count(sv) == 1 && epoch_newest(sv)->ep_num == 0);
	CHECK(sv->sv_restarts[RESTART_FAILURE] == 1);
	/* It fails again: SIGHUP in the backoff starts at once. */
	crash(epoch_newest(sv));
	CHECK(until(sv, SV_BACKOFF));
	CHECK(sv->sv_tries == 2);
	supervise_restart(sv, "SIGHUP", 1);
	CHECK(until(sv, SV_STARTING));
	/* A third failure spends the budget of two. */
	crash(epoch_newest(sv));
	CHECK(until(sv, SV_DONE));
	CHECK(supervise_finished(sv, &code) && code == 1);
	CHECK(supervise_failure(sv) != NULL &&
	    strstr(supervise_failure(sv), "signal 9") != NULL);
	done(sv, &cf);
}

/* SIGHUP before SIGCHLD: the dead epoch is handled first, cold start. */
static void
test_sighup_before_sigchld(void)
{
	struct config		 cf;
	struct supervise	*sv = make(&cf, 3);

	start(sv);
	feed(sv, SE_LIVE);
	supervise_restart(sv, "SIGHUP", 1);
	feed(sv, SE_LIVE);
	crash(epoch_n(sv, 1));		/* dead, not reaped: no SIGCHLD yet */
	supervise_restart(sv, "SIGHUP", 1);
	CHECK(sv->sv_state == SV_BACKOFF);
	CHECK(epoch_n(sv, 2) == NULL);
	done(sv, &cf);
}

/* SIGTERM during the backoff exits with the proxy's own code. */
static void
test_term_in_backoff(void)
{
	struct config		 cf;
	struct supervise	*sv = make(&cf, 3);
	int			 code;

	start(sv);
	feed(sv, SE_LIVE);
	crash(epoch_newest(sv));
	CHECK(until(sv, SV_BACKOFF));
	feed(sv, SE_TERM);
	CHECK(sv->sv_state == SV_DONE);
	CHECK(supervise_finished(sv, &code) && code == 137);
	done(sv, &cf);
}

/*
 * The drains: a second SIGTERM cuts one short; POST /drain stays until a
 * shutdown; the proxy ending by itself during a drain gives its code.
 */
static void
test_drains(void)
{
	struct config		 cf;
	struct supervise	*sv = make(&cf, 3);
	int			 code;

	start(sv);
	feed(sv, SE_LIVE);
	feed(sv, SE_TERM);
	CHECK(sv->sv_state == SV_TERMINATING);
	supervise_restart(sv, "SIGHUP", 1);
	CHECK(sv->sv_state == SV_TERMINATING && epoch_count(sv) == 1);
	feed(sv, SE_TERM);
	CHECK(sv->sv_state == SV_STOPPING);
	CHECK(until(sv, SV_DONE));
	CHECK(supervise_finished(sv, &code) && code == 0);
	done(sv, &cf);

	sv = make(&cf, 3);
	start(sv);
	feed(sv, SE_LIVE);
	feed(sv, SE_DRAIN);
	CHECK(sv->sv_state == SV_DRAINED);
	feed(sv, SE_DRAIN_DONE);	/* nothing ends it but a shutdown */
	CHECK(sv->sv_state == SV_DRAINED);
	crash(epoch_newest(sv));
	CHECK(until(sv, SV_DONE));
	CHECK(supervise_finished(sv, &code) && code == 137);
	done(sv, &cf);
}

int
main(void)
{
	if (mkdtemp(dir) == NULL)
		return 1;
	base = event_base_new();
	test_lifecycle();
	test_pending();
	test_hot_failure();
	test_failure();
	test_sighup_before_sigchld();
	test_term_in_backoff();
	test_drains();
	event_base_free(base);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return check_done("test_supervise");
}
