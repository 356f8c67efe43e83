/*
 * The agent's own process metrics, in the Prometheus client's usual names
 * under the istio_agent_ prefix: resident and virtual memory (from
 * /proc/self/statm), CPU seconds (getrusage), open and maximum file
 * descriptors (/proc/self/fd, RLIMIT_NOFILE) and the start time (from
 * /proc/self/stat and the boot time in /proc/stat). Reading procfs does not
 * block on anything but the kernel.
 */
#include <sys/resource.h>
#include <sys/time.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "status.h"

static double	procstat_started;

/* Seconds since the epoch at which this process started. */
double
procstat_start_time(void)
{
	FILE			*f;
	char			 buf[1024], *p;
	unsigned long long	 ticks = 0, btime = 0;
	int			 i;
	long			 hz;

	if (procstat_started != 0)
		return procstat_started;
	if ((f = fopen("/proc/self/stat", "r")) != NULL) {
		if (fgets(buf, sizeof(buf), f) != NULL &&
		    (p = strrchr(buf, ')')) != NULL) {
			/* Field 22 (starttime); p is at the end of field 2. */
			for (i = 2; i < 22 && p != NULL; i++)
				p = strchr(p + 1, ' ');
			if (p != NULL)
				ticks = strtoull(p + 1, NULL, 10);
		}
		fclose(f);
	}
	if ((f = fopen("/proc/stat", "r")) != NULL) {
		while (fgets(buf, sizeof(buf), f) != NULL) {
			if (strncmp(buf, "btime ", 6) == 0) {
				btime = strtoull(buf + 6, NULL, 10);
				break;
			}
		}
		fclose(f);
	}
	hz = sysconf(_SC_CLK_TCK);
	if (btime != 0 && hz > 0)
		procstat_started = (double)btime + (double)ticks / (double)hz;
	else {
		struct timeval tv;

		gettimeofday(&tv, NULL);
		procstat_started = (double)tv.tv_sec + tv.tv_usec / 1e6;
	}
	return procstat_started;
}

static long
procstat_open_fds(void)
{
	DIR		*d;
	struct dirent	*de;
	long		 n = 0;

	if ((d = opendir("/proc/self/fd")) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	/* Not counting the descriptor opendir itself used. */
	return n > 0 ? n - 1 : 0;
}

void
procstat_metrics(struct evbuffer *out)
{
	struct rusage		 ru;
	struct rlimit		 rl;
	FILE			*f;
	unsigned long long	 size = 0, resident = 0;
	long			 page = sysconf(_SC_PAGESIZE), fds;
	double			 cpu = 0;

	if ((f = fopen("/proc/self/statm", "r")) != NULL) {
		if (fscanf(f, "%llu %llu", &size, &resident) != 2)
			size = resident = 0;
		fclose(f);
	}
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	evbuffer_add_printf(out,
	    "# HELP istio_agent_process_cpu_seconds_total Total user and "
	    "system CPU time spent by the agent in seconds.\n"
	    "# TYPE istio_agent_process_cpu_seconds_total counter\n"
	    "istio_agent_process_cpu_seconds_total %.6f\n", cpu);
	evbuffer_add_printf(out,
	    "# HELP istio_agent_process_resident_memory_bytes Resident memory "
	    "size of the agent in bytes.\n"
	    "# TYPE istio_agent_process_resident_memory_bytes gauge\n"
	    "istio_agent_process_resident_memory_bytes %llu\n",
	    resident * (unsigned long long)page);
	evbuffer_add_printf(out,
	    "# HELP istio_agent_process_virtual_memory_bytes Virtual memory "
	    "size of the agent in bytes.\n"
	    "# TYPE istio_agent_process_virtual_memory_bytes gauge\n"
	    "istio_agent_process_virtual_memory_bytes %llu\n",
	    size * (unsigned long long)page);
	if ((fds = procstat_open_fds()) >= 0)
		evbuffer_add_printf(out,
		    "# HELP istio_agent_process_open_fds Number of open file "
		    "descriptors of the agent.\n"
		    "# TYPE istio_agent_process_open_fds gauge\n"
		    "istio_agent_process_open_fds %ld\n", fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		evbuffer_add_printf(out,
		    "# HELP istio_agent_process_max_fds Maximum number of open "
		    "file descriptors of the agent.\n"
		    "# TYPE istio_agent_process_max_fds gauge\n"
		    "istio_agent_process_max_fds %llu\n",
		    (unsigned long long)rl.rlim_cur);
	evbuffer_add_printf(out,
	    "# HELP istio_agent_process_start_time_seconds Start time of the "
	    "agent since the Unix epoch in seconds.\n"
	    "# TYPE istio_agent_process_start_time_seconds gauge\n"
	    "istio_agent_process_start_time_seconds %.2f\n",
	    procstat_start_time());
}
