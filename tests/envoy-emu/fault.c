/*
 * Test-only fault knobs, read from the environment once at start-up (README.md
 * in this folder documents each one):
 *
 *   ENVOY_EMU_EXIT_CODE=<n>     exit with status n (0-255) ...
 *   ENVOY_EMU_EXIT_AFTER=<d>    ... d after start-up (Go duration, default 0s)
 *   ENVOY_EMU_CRASH_SIGNAL=<n>  die by signal n, default disposition ...
 *   ENVOY_EMU_CRASH_AFTER=<d>   ... d after start-up (default 0s)
 *   ENVOY_EMU_INIT_DELAY=<d>    stay INITIALIZING for d before LIVE
 *   ENVOY_EMU_NEVER_LIVE=1      stay INITIALIZING for ever
 *   ENVOY_EMU_FAULT_EPOCH=<n>   the four knobs above apply to epoch n only
 *   ENVOY_EMU_ASSUME_XDS=1      treat CDS and LDS as received (all epochs)
 *   ENVOY_EMU_EXTRA_STATS=<n>   n synthetic counter series (all epochs)
 *
 * A malformed value is a start-up error (exit 1), so that a typo in a test
 * does not silently test nothing.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent.h"
#include "emu.h"

static int		 fault_exit = -1;	/* -1: no exit fault */
static int64_t		 fault_exit_after;
static int		 fault_signal;		/* 0: no crash fault */
static int64_t		 fault_crash_after;
static int64_t		 fault_delay;
static int		 fault_never;
static int		 fault_xds;
static uint64_t		 fault_extra;
static struct event	*fault_exit_ev, *fault_crash_ev;

static int
fault_number(const char *name, uint64_t max, uint64_t *out, char *err,
    size_t errlen)
{
	const char		*v = getenv(name);
	char			*end;
	unsigned long long	 n;

	if (v == NULL || *v == '\0')
		return 0;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (*v == '-' || *end != '\0' || errno != 0 || n > max) {
		snprintf(err, errlen, "%s: bad value \"%s\" (a number up to "
		    "%llu)", name, v, (unsigned long long)max);
		return -1;
	}
	*out = n;
	return 1;
}

static int
fault_duration(const char *name, int64_t *out, char *err, size_t errlen)
{
	const char	*v = getenv(name);
	char		 why[128];
	int64_t		 d;

	if (v == NULL || *v == '\0')
		return 0;
	if (duration_parse(v, &d, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: %s", name, why);
		return -1;
	}
	if (d < 0) {
		snprintf(err, errlen, "%s: negative duration \"%s\"", name, v);
		return -1;
	}
	*out = d;
	return 1;
}

static int
fault_flag(const char *name)
{
	const char	*v = getenv(name);

	return v != NULL && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 ||
	    strcmp(v, "yes") == 0);
}

/* Reads the knobs for this restart epoch; -1 with a message on bad values. */
int
fault_init(uint32_t epoch, char *err, size_t errlen)
{
	uint64_t	n, only = 0;
	int		applies = 1, rc;

	if ((rc = fault_number("ENVOY_EMU_FAULT_EPOCH", UINT32_MAX, &only, err,
	    errlen)) == -1)
		return -1;
	if (rc == 1 && only != epoch)
		applies = 0;
	if (fault_number("ENVOY_EMU_EXTRA_STATS", 100000000, &fault_extra, err,
	    errlen) == -1)
		return -1;
	fault_xds = fault_flag("ENVOY_EMU_ASSUME_XDS");

	if ((rc = fault_number("ENVOY_EMU_EXIT_CODE", 255, &n, err,
	    errlen)) == -1)
		return -1;
	if (rc == 1 && applies)
		fault_exit = (int)n;
	if (fault_duration("ENVOY_EMU_EXIT_AFTER", &fault_exit_after, err,
	    errlen) == -1)
		return -1;
	if ((rc = fault_number("ENVOY_EMU_CRASH_SIGNAL", 64, &n, err,
	    errlen)) == -1)
		return -1;
	if (rc == 1 && n == 0) {
		snprintf(err, errlen, "ENVOY_EMU_CRASH_SIGNAL: signal 0");
		return -1;
	}
	if (rc == 1 && applies)
		fault_signal = (int)n;
	if (fault_duration("ENVOY_EMU_CRASH_AFTER", &fault_crash_after, err,
	    errlen) == -1)
		return -1;
	if (fault_duration("ENVOY_EMU_INIT_DELAY", &fault_delay, err,
	    errlen) == -1)
		return -1;
	if (!applies)
		fault_delay = 0;
	fault_never = applies && fault_flag("ENVOY_EMU_NEVER_LIVE");
	return 0;
}

static void
fault_exit_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	elog_warn("main", "envoy-emu fault: exiting with code %d "
	    "(ENVOY_EMU_EXIT_CODE)", fault_exit);
	emu_shutdown(fault_exit, NULL);
}

/*
 * Dies by the signal as an uncaught one would kill it: default disposition,
 * unblocked, no core file (tests should not litter the disk).
 */
static void
fault_crash_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rlimit	 rl = { 0, 0 };
	sigset_t	 set;

	(void)fd;
	(void)what;
	(void)arg;
	elog_warn("main", "envoy-emu fault: raising signal %d "
	    "(ENVOY_EMU_CRASH_SIGNAL)", fault_signal);
	setrlimit(RLIMIT_CORE, &rl);
	signal(fault_signal, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, fault_signal);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(fault_signal);
	/* A signal whose default is to be ignored does not kill. */
	_exit(128 + fault_signal);
}

static void
fault_timer(struct event_base *base, struct event **ev, int64_t ns,
    event_callback_fn cb)
{
	struct timeval	tv;

	tv.tv_sec = ns / 1000000000;
	tv.tv_usec = (ns % 1000000000) / 1000;
	*ev = evtimer_new(base, cb, NULL);
	evtimer_add(*ev, &tv);
}

/* Arms the exit and crash faults; called once the server is started. */
void
fault_start(struct event_base *base)
{
	if (fault_exit >= 0)
		fault_timer(base, &fault_exit_ev, fault_exit_after,
		    fault_exit_cb);
	if (fault_signal > 0)
		fault_timer(base, &fault_crash_ev, fault_crash_after,
		    fault_crash_cb);
}

void
fault_free(void)
{
	if (fault_exit_ev != NULL)
		event_free(fault_exit_ev);
	if (fault_crash_ev != NULL)
		event_free(fault_crash_ev);
	fault_exit_ev = fault_crash_ev = NULL;
}

int64_t
fault_init_delay_ns(void)
{
	return fault_delay;
}

int
fault_never_live(void)
{
	return fault_never;
}

int
fault_assume_xds(void)
{
	return fault_xds;
}

uint64_t
fault_extra_stats(void)
{
	return fault_extra;
}
