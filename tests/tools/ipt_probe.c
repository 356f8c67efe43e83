/*
 * A TCP listener and client for the istio-iptables end-to-end tests.
 *
 *   ipt_probe listen [-6] [-t] [-r READYFILE] NAME PORT
 *	Listens on every address of one family (IPv6 only with -6), with
 *	IP_TRANSPARENT as a TPROXY proxy's socket has it with -t. To each
 *	connection it answers one line and closes:
 *	    NAME orig=ADDR:PORT peer=ADDR:PORT
 *	where orig is the destination the client asked for: SO_ORIGINAL_DST
 *	(conntrack's original destination, which for TPROXY and direct
 *	connections is the local address), else the local address. It
 *	creates READYFILE once listening.
 *
 *   ipt_probe connect [-s SOURCE] ADDR PORT
 *	Connects (binding SOURCE first when given), prints the line it gets
 *	and exits 0; exits 1 when it cannot connect or read within 3 seconds.
 */
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROBE_SO_ORIGINAL_DST	80	/* SO_ORIGINAL_DST, IP6T_SO_ORIGINAL_DST */

static void
probe_addr(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char	host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const void *)ss;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
	}
}

static int
probe_listen(int argc, char **argv)
{
	struct sockaddr_storage	 ss, orig, peer;
	socklen_t		 slen;
	const char		*ready = NULL, *name;
	char			 o[80], p[80], line[256];
	int			 six = 0, transparent = 0, on = 1, ch, fd, c;
	FILE			*f;

	while ((ch = getopt(argc, argv, "6tr:")) != -1) {
		switch (ch) {
		case '6':
			six = 1;
			break;
		case 't':
			transparent = 1;
			break;
		case 'r':
			ready = optarg;
			break;
		default:
			return 2;
		}
	}
	if (argc - optind != 2)
		return 2;
	name = argv[optind];
	memset(&ss, 0, sizeof(ss));
	if (six) {
		struct sockaddr_in6 *s6 = (void *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_any;
		s6->sin6_port = htons((uint16_t)atoi(argv[optind + 1]));
	} else {
		struct sockaddr_in *s4 = (void *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_ANY);
		s4->sin_port = htons((uint16_t)atoi(argv[optind + 1]));
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM, 0)) == -1) {
		perror("socket");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (six)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
	if (transparent && setsockopt(fd, six ? SOL_IPV6 : SOL_IP,
	    six ? IPV6_TRANSPARENT : IP_TRANSPARENT, &on, sizeof(on)) == -1) {
		perror("IP_TRANSPARENT");
		return 1;
	}
	if (bind(fd, (struct sockaddr *)&ss, six ? sizeof(struct sockaddr_in6)
	    : sizeof(struct sockaddr_in)) == -1 || listen(fd, 64) == -1) {
		perror("bind");
		return 1;
	}
	if (ready != NULL && (f = fopen(ready, "w")) != NULL)
		fclose(f);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		slen = sizeof(peer);
		if ((c = accept(fd, (struct sockaddr *)&peer, &slen)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			perror("accept");
			return 1;
		}
		slen = sizeof(orig);
		if (getsockopt(c, six ? SOL_IPV6 : SOL_IP,
		    PROBE_SO_ORIGINAL_DST, &orig, &slen) == -1) {
			slen = sizeof(orig);
			getsockname(c, (struct sockaddr *)&orig, &slen);
		}
		probe_addr(&orig, o, sizeof(o));
		probe_addr(&peer, p, sizeof(p));
		snprintf(line, sizeof(line), "%s orig=%s peer=%s\n", name, o,
		    p);
		if (write(c, line, strlen(line)) == -1)
			perror("write");
		close(c);
	}
}

static int
probe_sockaddr(const char *host, const char *port, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct sockaddr_in	*s4 = (void *)ss;
	struct sockaddr_in6	*s6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)atoi(port));
		*len = sizeof(*s4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)atoi(port));
		*len = sizeof(*s6);
		return 0;
	}
	fprintf(stderr, "bad address %s\n", host);
	return -1;
}

static int
probe_connect(int argc, char **argv)
{
	struct sockaddr_storage	 dst, src;
	struct timeval		 tv = { 3, 0 };
	struct pollfd		 pfd;
	socklen_t		 dlen, slen;
	const char		*source = NULL;
	char			 buf[512];
	ssize_t			 n;
	size_t			 got = 0;
	int			 ch, fd, err = 0;

	while ((ch = getopt(argc, argv, "s:")) != -1) {
		if (ch != 's')
			return 2;
		source = optarg;
	}
	if (argc - optind != 2 || probe_sockaddr(argv[optind],
	    argv[optind + 1], &dst, &dlen) == -1)
		return 2;
	if ((fd = socket(dst.ss_family, SOCK_STREAM, 0)) == -1) {
		perror("socket");
		return 1;
	}
	if (source != NULL) {
		if (probe_sockaddr(source, "0", &src, &slen) == -1)
			return 2;
		if (bind(fd, (struct sockaddr *)&src, slen) == -1) {
			perror("bind");
			return 1;
		}
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	if (connect(fd, (struct sockaddr *)&dst, dlen) == -1 &&
	    errno != EINPROGRESS) {
		perror("connect");
		return 1;
	}
	pfd.fd = fd;
	pfd.events = POLLOUT;
	slen = sizeof(err);
	if (poll(&pfd, 1, 3000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR,
	    &err, &slen) == -1 || err != 0) {
		fprintf(stderr, "connect: %s\n", err != 0 ? strerror(err) :
		    "timed out");
		return 1;
	}
	fcntl(fd, F_SETFL, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (got < sizeof(buf) - 1 &&
	    (n = read(fd, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (got == 0) {
		fprintf(stderr, "no answer\n");
		return 1;
	}
	buf[got] = '\0';
	fputs(buf, stdout);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "listen") == 0)
		return probe_listen(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "connect") == 0)
		return probe_connect(argc - 1, argv + 1);
	fprintf(stderr, "usage: ipt_probe listen|connect ...\n");
	return 2;
}
