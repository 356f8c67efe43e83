/*
 * rss_peak PID STOPFILE [INTERVAL_MS]: samples RssAnon of PID (from
 * /proc/PID/status) every INTERVAL_MS (default 2) until STOPFILE exists or
 * PID is gone, then prints "start_kb peak_kb". For the status bench: how
 * much anonymous memory the agent grows while merging a large page.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long
rss_anon(const char *path)
{
	FILE	*f;
	char	 line[256];
	long	 kb = -1;

	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, "RssAnon:", 8) == 0) {
			kb = strtol(line + 8, NULL, 10);
			break;
		}
	}
	fclose(f);
	return kb;
}

int
main(int argc, char **argv)
{
	struct timespec	 ts;
	char		 path[64];
	long		 start, peak, kb;
	int		 ms = argc > 3 ? atoi(argv[3]) : 2;

	if (argc < 3) {
		fprintf(stderr, "usage: rss_peak PID STOPFILE [INTERVAL_MS]\n");
		return 2;
	}
	snprintf(path, sizeof(path), "/proc/%s/status", argv[1]);
	if ((start = rss_anon(path)) < 0)
		return 1;
	peak = start;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (access(argv[2], F_OK) != 0) {
		if ((kb = rss_anon(path)) < 0)
			break;
		if (kb > peak)
			peak = kb;
		nanosleep(&ts, NULL);
	}
	printf("%ld %ld\n", start, peak);
	return 0;
}
