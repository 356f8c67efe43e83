/*
 * Starting the proxy: fork and exec with no shell, as tini and s6 do it.
 * Signals are blocked around fork so that no libevent handler runs in the
 * child; the child resets every disposition, restores an empty mask, leaves
 * the agent's process group (a terminal's Ctrl-C must reach only the agent,
 * which then drains), asks to be killed when the agent dies, closes every
 * inherited descriptor and execs. The child may only make async-signal-safe
 * calls: gRPC's threads could hold the allocator's lock at fork time.
 *
 * An exec failure is reported through a close-on-exec pipe, so the caller
 * knows at once whether the binary ran, and why not.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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

static void
spawn_child(const char *path, char *const argv[], int errfd, pid_t parent)
{
	struct sigaction	 sa;
	sigset_t		 none;
	struct rlimit		 rl;
	int			 sig, fd, e;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &sa, NULL);
	(void)setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
		_exit(127);

	/* Everything from 3 up closes at exec; errfd already does. */
	if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == -1) {
		if (getrlimit(RLIMIT_NOFILE, &rl) == -1 ||
		    rl.rlim_cur > 65536)
			rl.rlim_cur = 65536;
		for (fd = 3; fd < (int)rl.rlim_cur; fd++)
			(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	execv(path, argv);
	e = errno;
	(void)write(errfd, &e, sizeof(e));
	_exit(127);
}

/*
 * Forks and execs path with argv. Returns the child's pid once the exec has
 * succeeded, or -1 with a message (the child is then already reaped).
 */
pid_t
spawn_exec(const char *path, char *const argv[], char *err, size_t errlen)
{
	sigset_t	 all, old;
	int		 fds[2], e = 0, status;
	pid_t		 pid, parent = getpid();
	ssize_t		 n;

	if (pipe2(fds, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		spawn_child(path, argv, fds[1], parent);
	}
	e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(fds[1]);
	if (pid == -1) {
		close(fds[0]);
		snprintf(err, errlen, "fork: %s", strerror(e));
		return -1;
	}
	/* Returns as soon as the exec closes the pipe: microseconds. */
	do {
		n = read(fds[0], &e, sizeof(e));
	} while (n == -1 && errno == EINTR);
	close(fds[0]);
	if (n == (ssize_t)sizeof(e)) {
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
		snprintf(err, errlen, "exec %s: %s", path, strerror(e));
		return -1;
	}
	return pid;
}
