/*
 * Starting the proxy: exec with no shell, as tini and s6 do it, but through
 * clone(CLONE_VM | CLONE_VFORK) on a stack of our own, as posix_spawn does.
 * The child shares our memory until it execs, so nothing is copied and no
 * fork handler runs (gRPC's would stop its threads): the agent stays
 * suspended for the microseconds between clone and exec.
 *
 * The child may therefore only make system calls: it resets every signal
 * disposition (all signals are blocked around the clone, so no handler of
 * ours can run in it), leaves the agent's process group (a terminal's Ctrl-C
 * must reach only the agent, which then drains), asks to be killed when the
 * agent dies, marks every inherited descriptor close-on-exec, restores an
 * empty signal mask and execs. An exec failure is left in shared memory, so
 * the caller knows at once whether the binary ran, and why not.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC	(1U << 2)
#endif

#define SPAWN_STACK	(64 * 1024)

struct spawn_args {
	const char	*sp_path;
	char *const	*sp_argv;
	pid_t		 sp_parent;
	volatile int	 sp_errno;	/* set by the child if exec fails */
};

/*
 * Not instrumented by the sanitizers: their bookkeeping assumes a thread's
 * own stack, and this runs on ours, sharing the agent's memory.
 */
__attribute__((no_sanitize("address", "undefined")))
static int
spawn_child(void *arg)
{
	struct spawn_args	*sp = arg;
	struct sigaction	 dfl;
	sigset_t		 none;
	struct rlimit		 rl;
	int			 sig, fd;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &dfl, NULL);
	(void)setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 ||
	    getppid() != sp->sp_parent) {
		sp->sp_errno = ESRCH;
		_exit(127);
	}
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == -1) {
		if (getrlimit(RLIMIT_NOFILE, &rl) == -1 ||
		    rl.rlim_cur > 65536)
			rl.rlim_cur = 65536;
		for (fd = 3; fd < (int)rl.rlim_cur; fd++)
			(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	execv(sp->sp_path, sp->sp_argv);
	sp->sp_errno = errno;
	_exit(127);
}

/*
 * Execs path with argv in a new process. Returns the child's pid once the
 * exec has succeeded, or -1 with a message (the child is then reaped).
 */
pid_t
spawn_exec(const char *path, char *const argv[], char *err, size_t errlen)
{
	/* Only the libevent thread spawns, one child at a time. */
	static char		 stack[SPAWN_STACK] __attribute__((aligned(16)));
	struct spawn_args	 sp;
	sigset_t		 all, old;
	int			 status, saved;
	pid_t			 pid;

	sp.sp_path = path;
	sp.sp_argv = argv;
	sp.sp_parent = getpid();
	sp.sp_errno = 0;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	saved = errno;
	pid = clone(spawn_child, stack + sizeof(stack),
	    CLONE_VM | CLONE_VFORK | SIGCHLD, &sp);
	if (pid == -1)
		saved = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid == -1) {
		snprintf(err, errlen, "clone: %s", strerror(saved));
		return -1;
	}
	/* CLONE_VFORK: the child has exec'd or exited by now. */
	if (sp.sp_errno != 0) {
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
		snprintf(err, errlen, "exec %s: %s", path,
		    strerror(sp.sp_errno));
		errno = saved;
		return -1;
	}
	errno = saved;
	return pid;
}
