/*
 * Unit tests of agent/spawn.c: exec failures are reported with their
 * reason, the child runs in its own process group, inherits no descriptor
 * beyond 0-2, and starts with default signal dispositions and an empty mask
 * even when the agent ignores or blocks signals.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "check.h"

static int
run(char *const argv[], int *status)
{
	char	 err[256];
	pid_t	 pid;

	if ((pid = spawn_exec(argv[0], argv, err, sizeof(err))) == -1) {
		fprintf(stderr, "spawn: %s\n", err);
		return -1;
	}
	while (waitpid(pid, status, 0) == -1 && errno == EINTR)
		;
	return 0;
}

int
main(void)
{
	char		 err[256], fdarg[64];
	int		 status, fd;
	pid_t		 pid;
	sigset_t	 block;

	/* A missing binary: -1 with the reason, nothing left to reap. */
	CHECK(spawn_exec("/nonexistent/envoy", (char *[]){ "/nonexistent/envoy",
	    NULL }, err, sizeof(err)) == -1);
	CHECK(strstr(err, "/nonexistent/envoy") != NULL);
	CHECK(strstr(err, "No such file or directory") != NULL);
	CHECK(waitpid(-1, &status, WNOHANG) == -1 && errno == ECHILD);

	/* Not executable. */
	{
		char	 plain[] = "/tmp/test_spawn.XXXXXX";
		int	 pfd = mkstemp(plain);

		CHECK(pfd != -1 && fchmod(pfd, 0644) == 0);
		close(pfd);
		CHECK(spawn_exec(plain, (char *[]){ plain, NULL }, err,
		    sizeof(err)) == -1);
		CHECK(strstr(err, "Permission denied") != NULL);
		unlink(plain);
	}

	/* The exit code comes through. */
	CHECK(run((char *[]){ "/bin/sh", "-c", "exit 3", NULL }, &status) == 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 3);

	/* Its own process group. */
	CHECK(run((char *[]){ "/bin/sh", "-c",
	    "[ \"$(ps -o pgid= -p $$ | tr -d ' ')\" = \"$$\" ]", NULL },
	    &status) == 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	/* A descriptor without close-on-exec is not inherited. */
	fd = open("/dev/null", O_RDONLY);
	CHECK(fd > 2);
	snprintf(fdarg, sizeof(fdarg), "[ ! -e /proc/self/fd/%d ]", fd);
	CHECK(run((char *[]){ "/bin/sh", "-c", fdarg, NULL }, &status) == 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fd);

	/* Ignored and blocked signals are not: SIGUSR2 kills the child. */
	signal(SIGUSR2, SIG_IGN);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, NULL);
	CHECK(run((char *[]){ "/bin/sh", "-c", "kill -USR2 $$; sleep 1",
	    NULL }, &status) == 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGUSR2);
	CHECK(run((char *[]){ "/bin/sh", "-c", "kill -TERM $$; sleep 1",
	    NULL }, &status) == 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);

	/* The parent's own mask is unchanged by spawning. */
	pid = fork();
	if (pid == 0) {
		sigset_t now;

		sigprocmask(SIG_SETMASK, NULL, &now);
		_exit(sigismember(&now, SIGTERM) ? 0 : 1);
	}
	CHECK(waitpid(pid, &status, 0) == pid && WEXITSTATUS(status) == 0);
	return check_done("test_spawn");
}
