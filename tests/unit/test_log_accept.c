/*
 * libevent's "Error from accept() call" through the agent's log: a listener
 * with no error callback of its own, out of file descriptors, is woken for
 * the same pending connection in a loop, and libevent says so each time.
 * The agent's log lets that one message through once every 10 seconds.
 */
#include <sys/resource.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "agent.h"
#include "check.h"

static void
accepted(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
    int len, void *arg)
{
	(void)lev;
	(void)sa;
	(void)len;
	(void)arg;
	close(fd);
}

/* Lines of the file that hold s. */
static int
count_lines(const char *path, const char *s)
{
	FILE	*f;
	char	 line[1024];
	int	 n = 0;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strstr(line, s) != NULL)
			n++;
	}
	fclose(f);
	return n;
}

int
main(void)
{
	struct event_base	*base;
	struct evconnlistener	*lev;
	struct sockaddr_in	 sin;
	struct rlimit		 rl, low;
	struct timeval		 tv = { 0, 300 * 1000 };
	socklen_t		 len = sizeof(sin);
	char			 path[] = "/tmp/test_log_accept.XXXXXX";
	int			 lfd, cfd, logfd, saved, lowest, n;

	log_init();
	base = event_base_new();
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	CHECK(listen(lfd, 8) == 0);
	CHECK(getsockname(lfd, (struct sockaddr *)&sin, &len) == 0);
	lev = evconnlistener_new(base, accepted, NULL, LEV_OPT_CLOSE_ON_FREE,
	    0, lfd);
	CHECK(lev != NULL);
	/* A connection waits in the backlog. */
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(connect(cfd, (struct sockaddr *)&sin, sizeof(sin)) == 0);

	/* The log to a file; then no descriptor left for accept(). */
	logfd = mkstemp(path);
	CHECK(logfd != -1);
	saved = dup(2);
	dup2(logfd, 2);
	lowest = dup(0);
	close(lowest);
	getrlimit(RLIMIT_NOFILE, &rl);
	low = rl;
	low.rlim_cur = (rlim_t)lowest;
	CHECK(setrlimit(RLIMIT_NOFILE, &low) == 0);
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	setrlimit(RLIMIT_NOFILE, &rl);
	dup2(saved, 2);
	close(saved);
	close(logfd);

	/* Without the limit, libevent says it thousands of times. */
	n = count_lines(path, "Error from accept() call");
	fprintf(stderr, "%d lines about accept() in 300ms\n", n);
	CHECK(n >= 1);
	CHECK(n <= 2);
	unlink(path);

	evconnlistener_free(lev);
	close(cfd);
	event_base_free(base);
	return check_done("test_log_accept");
}
