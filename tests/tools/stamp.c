/*
 * A benchmark shim used as --binaryPath: appends "<pid> <CLOCK_REALTIME ns>"
 * to $STAMP_FILE the moment the agent's exec reaches it, then execs
 * $STAMP_EXEC with the same arguments (so the pid stays the proxy's).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct timespec	 ts;
	const char	*file = getenv("STAMP_FILE"), *exe = getenv("STAMP_EXEC");
	char		 line[64];
	int		 fd, n;

	clock_gettime(CLOCK_REALTIME, &ts);
	(void)argc;
	if (file != NULL &&
	    (fd = open(file, O_WRONLY | O_APPEND | O_CREAT, 0644)) != -1) {
		n = snprintf(line, sizeof(line), "%d %lld\n", (int)getpid(),
		    (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
		if (write(fd, line, (size_t)n) != n)
			perror("stamp: write");
		close(fd);
	}
	if (exe == NULL) {
		fprintf(stderr, "stamp: STAMP_EXEC not set\n");
		return 127;
	}
	argv[0] = (char *)exe;
	execv(exe, argv);
	perror("stamp: exec");
	return 127;
}
