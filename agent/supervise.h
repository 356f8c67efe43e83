/*
 * The supervisor's own declarations, shared by supervise.c (the state
 * machine), epoch.c (the proxy's processes) and drain.c (the drain before a
 * shutdown). main and the status server use only what agent.h exports;
 * the machine's unit test includes this to feed it events.
 */
#ifndef SUPERVISE_H
#define SUPERVISE_H

#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include "agent.h"

#define SUPERVISE_POLL		(100 * CLOCK_MSEC)	/* LIVE polling */
#define SUPERVISE_LIVE_WAIT	(20 * CLOCK_SEC)	/* a hot restart's */
#define SUPERVISE_KILL_GRACE	(5 * CLOCK_SEC)		/* SIGTERM → SIGKILL */
#define SUPERVISE_ADMIN_TIMEOUT	(1 * CLOCK_SEC)
#define SUPERVISE_MAX_BACKOFF	(300 * CLOCK_SEC)	/* the longest step */
#define SUPERVISE_REAP_WAIT	(10 * CLOCK_MSEC)	/* killed epochs */
#define SUPERVISE_MAX_CODES	16

/* The agent's states; what each means is in supervise.c. */
enum sv_state {
	SV_IDLE,
	SV_STARTING,
	SV_PENDING,
	SV_LIVE,
	SV_RETRY,
	SV_BACKOFF,
	SV_TERMINATING,
	SV_DRAINED,
	SV_STOPPING,
	SV_DONE
};

/*
 * What happens to the agent. Callbacks turn libevent's and the admin API's
 * results into these, and supervise_step alone decides what follows.
 */
enum sv_event {
	SE_START,		/* main: start the proxy */
	SE_RESTART,		/* SIGHUP, or a watched input changed */
	SE_LIVE,		/* the newest epoch answered LIVE */
	SE_LIVE_TIMEOUT,	/* a hot restart's epoch is not LIVE in time */
	SE_EXIT,		/* an epoch's process ended */
	SE_BACKOFF_DONE,	/* time for the cold start */
	SE_RETRY_DONE,		/* time to try the hot restart again */
	SE_STABLE,		/* an epoch stayed LIVE long enough */
	SE_TERM,		/* SIGTERM, SIGINT: drain, then stop */
	SE_TERM_NOW,		/* POST /quitquitquit: stop without a drain */
	SE_DRAIN,		/* POST /drain: drain and stay */
	SE_DRAIN_DONE,		/* the drain's time is up, or nothing is open */
	SE_KILL_TIMEOUT		/* the grace after SIGTERM is over */
};

enum epoch_state {
	EPOCH_STARTING,		/* forked, not yet LIVE */
	EPOCH_LIVE,		/* the newest epoch, serving */
	EPOCH_DRAINING,		/* replaced: a newer epoch drains it */
	EPOCH_EXITED
};

enum restart_reason {
	RESTART_SIGHUP,
	RESTART_INPUTS,
	RESTART_FAILURE,
	RESTART_NREASONS
};

struct epoch {
	TAILQ_ENTRY(epoch)	 ep_entry;
	int			 ep_num;
	pid_t			 ep_pid;	/* also its process group */
	enum epoch_state	 ep_state;
	enum restart_reason	 ep_reason;	/* why it was started */
	char			*ep_path;	/* its bootstrap file */
	int64_t			 ep_started;	/* monotonic ns */
	int64_t			 ep_live_at;	/* 0: never LIVE */
	time_t			 ep_wall_started;
	int			 ep_hot;	/* started while one was LIVE */
	int			 ep_signalled;	/* the agent sent a signal */
	int			 ep_timed_out;	/* killed: not LIVE in time */
};
TAILQ_HEAD(epochs, epoch);

/* What an event carries. */
struct sv_arg {
	struct epoch	*sg_ep;		/* SE_EXIT: out of the list already */
	int		 sg_status;	/* SE_EXIT: its wait status */
	int		 sg_newest;	/* SE_EXIT: it was the newest */
	const char	*sg_reason;	/* SE_RESTART: who asked */
	int		 sg_force;	/* SE_RESTART: even if nothing changed */
	struct json_t	*sg_doc;	/* SE_START: epoch 0's bootstrap */
};

struct drain;

struct supervise {
	struct event_base	*sv_base;
	struct config		*sv_cf;		/* the configuration in use */
	struct config		*sv_own;	/* a reloaded one, ours */
	enum sv_state		 sv_state;
	struct epochs		 sv_epochs;	/* alive, oldest first */
	struct json_t		*sv_rendered;	/* the newest's bootstrap */
	enum restart_reason	 sv_waiting;	/* PENDING, RETRY: why */

	struct event		*sv_poll_ev;	/* LIVE polling */
	struct admin_request	*sv_poll_req;
	struct event		*sv_backoff_ev;
	struct event		*sv_retry_ev;
	struct event		*sv_stable_ev;
	struct event		*sv_kill_ev;
	struct drain		*sv_drain;

	int			 sv_tries;	/* failed cold starts in a row */
	int64_t			 sv_backoff_delay;
	int64_t			 sv_backoff_until;
	int			 sv_fail_code;	/* the last failure's code */
	char			 sv_last_failure[512];
	int			 sv_hot_tries;	/* failed hot restarts in a row */
	int64_t			 sv_retry_delay;
	int64_t			 sv_retry_until;
	char			 sv_hot_failure[256];

	int			 sv_exit_code;	/* -1 until decided */
	const char		*sv_gave_up;	/* why, when the budget ran out */

	int64_t			 sv_created;
	int64_t			 sv_startup;	/* to the first LIVE, ns */
	unsigned long		 sv_restarts[RESTART_NREASONS];
	unsigned long		 sv_hot_failures;
	unsigned long		 sv_abnormal_drained;
	struct {
		char		 name[16];
		unsigned long	 count;
	}			 sv_exits[SUPERVISE_MAX_CODES];
};

/* supervise.c */
void	 supervise_step(struct supervise *, enum sv_event,
	    const struct sv_arg *);
const char *supervise_state_name(enum sv_state);
const char *supervise_reason_name(enum restart_reason);

/* epoch.c: the proxy's processes, one per epoch. */
struct epoch *epoch_start(struct supervise *, int, enum restart_reason,
	    struct json_t *, char *, size_t);
void	 epoch_set_state(struct epoch *, enum epoch_state);
const char *epoch_state_name(enum epoch_state);
void	 epoch_signal(struct epoch *, int);
void	 epoch_signal_all(struct supervise *, int, const char *);
struct epoch *epoch_newest(struct supervise *);
struct epoch *epoch_live(struct supervise *);
int	 epoch_count(struct supervise *);
int	 epoch_describe(int, char *, size_t);
void	 epoch_reap(struct supervise *);
void	 epoch_reap_leftovers(void);
void	 epoch_free(struct epoch *);

/* drain.c: the listeners' drain before a shutdown, or on request. */
struct drain *drain_new(struct supervise *);
void	 drain_free(struct drain *);
void	 drain_start(struct drain *, int);
void	 drain_stop(struct drain *);

#endif
