/*
 * The one set of time helpers: the monotonic clock in nanoseconds (every
 * duration of the agent is a Go duration, kept as int64 nanoseconds),
 * nanoseconds as libevent's timeval, and the one exponential backoff that
 * the supervisor's restarts and the relay's reconnects share.
 */
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

#include "agent.h"

/*
 * A timer longer than this is as good as for ever, and stays far from any
 * overflow in libevent's arithmetic (which adds it to the current time).
 */
#define CLOCK_LONGEST	(10LL * 365 * 24 * 3600 * CLOCK_SEC)

int64_t
clock_now_ns(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * CLOCK_SEC + ts.tv_nsec;
}

/* ns as a timeval for evtimer_add: 0 for a negative time, capped. */
struct timeval
clock_tv(int64_t ns)
{
	struct timeval	tv;

	if (ns < 0)
		ns = 0;
	if (ns > CLOCK_LONGEST)
		ns = CLOCK_LONGEST;
	tv.tv_sec = (time_t)(ns / CLOCK_SEC);
	tv.tv_usec = (suseconds_t)(ns % CLOCK_SEC / 1000);
	return tv;
}

/*
 * The delay before try number tries (0 for the first retry): initial,
 * doubled per earlier try, at most max. Doubling stops at max, so no number
 * of tries overflows.
 */
int64_t
clock_backoff(int64_t initial, int tries, int64_t max)
{
	int64_t	d = initial;

	while (tries-- > 0 && d < max)
		d *= 2;
	return d > max ? max : d;
}

/*
 * d with jitter: half of it fixed, half random, so that many agents that
 * lost the same control plane do not come back to it in step.
 */
int64_t
clock_jitter(int64_t d)
{
	if (d < 2)
		return d;
	return d / 2 + (int64_t)((unsigned long)random() %
	    (unsigned long)(d / 2 + 1));
}
