/*
 * A minimal harness for the unit tests: CHECK records a failure with its
 * line and goes on; check_done prints the count and gives the exit code.
 */
#ifndef CHECK_H
#define CHECK_H

#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int check_failures, check_count;

#define CHECK(cond) do {						\
	check_count++;							\
	if (!(cond)) {							\
		check_failures++;					\
		fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__,	\
		    __LINE__, #cond);					\
	}								\
} while (0)

#define CHECK_STR(a, b) do {						\
	const char *check_a = (a), *check_b = (b);			\
	check_count++;							\
	if (check_a == NULL || check_b == NULL ||			\
	    strcmp(check_a, check_b) != 0) {				\
		check_failures++;					\
		fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__,	\
		    __LINE__, check_a ? check_a : "(null)",		\
		    check_b ? check_b : "(null)");			\
	}								\
} while (0)

#define CHECK_CONTAINS(hay, needle) do {				\
	const char *check_h = (hay);					\
	check_count++;							\
	if (check_h == NULL || strstr(check_h, (needle)) == NULL) {	\
		check_failures++;					\
		fprintf(stderr, "%s:%d: \"%s\" not in \"%.300s\"\n",	\
		    __FILE__, __LINE__, (needle),			\
		    check_h ? check_h : "(null)");			\
	}								\
} while (0)

/*
 * A TCP port nothing listens on, chosen below the kernel's ephemeral range
 * as tests/tools/free_port.py chooses them: a port from bind(0) is an
 * ephemeral port, which any outgoing connection of a parallel test may take
 * before this test binds it.
 */
static inline int
check_free_port(void)
{
	static unsigned		 seed;
	struct sockaddr_in	 sin;
	FILE			*f;
	int			 first = 32768, low, high, port, fd, i, one = 1;

	if (seed == 0)
		seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	if ((f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")) != NULL) {
		if (fscanf(f, "%d", &first) != 1)
			first = 32768;
		fclose(f);
	}
	low = first > 12000 ? 10000 : first;
	high = first > 12000 ? first : 65535;
	for (i = 0; i < 10000; i++) {
		port = low + (int)(rand_r(&seed) % (unsigned)(high - low));
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin.sin_port = htons((unsigned short)port);
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
			close(fd);
			return port;
		}
		close(fd);
	}
	return -1;
}

static inline int
check_done(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, check_count,
	    check_failures);
	return check_failures == 0 ? 0 : 1;
}

#endif
