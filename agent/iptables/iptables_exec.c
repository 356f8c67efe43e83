/*
 * Runs iptables-restore, iptables-save, iptables and ip as child processes
 * for istio-iptables: fork and execvp, never a shell, with standard input
 * fed from memory and standard output collected into memory through pipes.
 * The subcommand is a one-shot process, so waiting here is fine.
 */
#include <sys/prctl.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iptables.h"

/*
 * Init containers often have a PATH without the sbin directories, where
 * iptables and ip live.
 */
static const char *const exec_fallback[] = { "/usr/sbin/", "/sbin/", NULL };

static void __attribute__((noreturn))
exec_child(char *const argv[], int in, int out, int quiet,
    const sigset_t *oldmask)
{
	const char *const	*dir;
	char			 path[PATH_MAX];
	int			 sig, null;

	for (sig = 1; sig < NSIG; sig++)
		signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, oldmask, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);

	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (dup2(in >= 0 ? in : null, STDIN_FILENO) == -1 ||
	    (out >= 0 && dup2(out, STDOUT_FILENO) == -1) ||
	    (quiet && dup2(null, STDERR_FILENO) == -1))
		_exit(127);
	closefrom(STDERR_FILENO + 1);

	execvp(argv[0], argv);
	if (errno == ENOENT && strchr(argv[0], '/') == NULL) {
		for (dir = exec_fallback; *dir != NULL; dir++) {
			snprintf(path, sizeof(path), "%s%s", *dir, argv[0]);
			execv(path, argv);
		}
	}
	_exit(127);
}

/*
 * Pumps in into the child's standard input and its standard output into
 * *out until both are done. Writing is non-blocking so a child that
 * writes a lot before reading cannot deadlock us.
 */
static int
exec_pump(int infd, const char *in, int outfd, char **out)
{
	struct pollfd	 pfd[2];
	size_t		 inlen = in != NULL ? strlen(in) : 0, done = 0;
	size_t		 len = 0, cap = 0;
	char		*buf = NULL;
	ssize_t		 n;
	int		 nfd, i, rc = 0;

	if (infd >= 0)
		fcntl(infd, F_SETFL, fcntl(infd, F_GETFL) | O_NONBLOCK);
	while (infd >= 0 || outfd >= 0) {
		nfd = 0;
		if (infd >= 0) {
			pfd[nfd].fd = infd;
			pfd[nfd++].events = POLLOUT;
		}
		if (outfd >= 0) {
			pfd[nfd].fd = outfd;
			pfd[nfd++].events = POLLIN;
		}
		if (poll(pfd, (nfds_t)nfd, -1) == -1) {
			if (errno == EINTR)
				continue;
			rc = -1;
			break;
		}
		for (i = 0; i < nfd; i++) {
			if (pfd[i].revents == 0)
				continue;
			if (pfd[i].fd == infd) {
				n = done < inlen ? write(infd, in + done,
				    inlen - done) : 0;
				if (n > 0)
					done += (size_t)n;
				else if (n == -1 && (errno == EAGAIN ||
				    errno == EINTR))
					continue;
				if (n <= 0 || done == inlen) {
					/* EPIPE: the child stopped reading. */
					close(infd);
					infd = -1;
				}
				continue;
			}
			if (cap - len < 4096) {
				cap = cap == 0 ? 8192 : cap * 2;
				buf = xrealloc(buf, cap);
			}
			n = read(outfd, buf + len, cap - len - 1);
			if (n > 0)
				len += (size_t)n;
			else if (n == -1 && errno == EINTR)
				continue;
			else {
				close(outfd);
				outfd = -1;
			}
		}
	}
	if (infd >= 0)
		close(infd);
	if (outfd >= 0)
		close(outfd);
	if (out != NULL) {
		if (buf == NULL)
			buf = xcalloc(1, 1);
		buf[len] = '\0';
		*out = buf;
	} else
		free(buf);
	return rc;
}

/*
 * Runs argv[0] from PATH (or /usr/sbin, /sbin) with argv. Feeds it in as
 * standard input when not NULL, collects its standard output into *out
 * (NUL-terminated, the caller frees it) when out is not NULL, and silences
 * its standard error when quiet. Returns its exit code, 128+n when killed
 * by signal n, or -1 with a warning when it could not be run.
 */
int
ipt_exec(char *const argv[], const char *in, char **out, int quiet)
{
	sigset_t	 all, old;
	int		 inpipe[2] = { -1, -1 }, outpipe[2] = { -1, -1 };
	int		 status, rc = -1;
	pid_t		 pid;

	if (out != NULL)
		*out = NULL;
	if ((in != NULL && pipe2(inpipe, O_CLOEXEC) == -1) ||
	    (out != NULL && pipe2(outpipe, O_CLOEXEC) == -1)) {
		log_warn("pipe");
		goto out;
	}
	/* Nothing may run a handler in the child before exec. */
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);
	pid = fork();
	if (pid == 0)
		exec_child(argv, inpipe[0], outpipe[1], quiet, &old);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid == -1) {
		log_warn("fork %s", argv[0]);
		goto out;
	}
	if (inpipe[0] >= 0) {
		close(inpipe[0]);
		inpipe[0] = -1;
	}
	if (outpipe[1] >= 0) {
		close(outpipe[1]);
		outpipe[1] = -1;
	}
	exec_pump(inpipe[1], in, outpipe[0], out);
	inpipe[1] = outpipe[0] = -1;	/* closed by exec_pump */
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR) {
			log_warn("waitpid %s", argv[0]);
			goto out;
		}
	}
	if (WIFEXITED(status))
		rc = WEXITSTATUS(status);
	else
		rc = 128 + WTERMSIG(status);
	if (rc == 127)
		log_warnx("could not run %s", argv[0]);
out:
	if (inpipe[0] >= 0)
		close(inpipe[0]);
	if (inpipe[1] >= 0)
		close(inpipe[1]);
	if (outpipe[0] >= 0)
		close(outpipe[0]);
	if (outpipe[1] >= 0)
		close(outpipe[1]);
	return rc;
}
