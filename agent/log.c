/*
 * Logging in Istio's format: one line per message, "<RFC 3339 time with
 * microseconds>Z<TAB><level><TAB>[<scope><TAB>]<message>", or one JSON object
 * per line with --log_as_json. Every message goes to standard error, so that
 * subcommands which print results on standard output stay clean.
 * libevent's own warnings are routed here too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "agent.h"

static enum log_level	 log_level = LOG_LEVEL_INFO;
static int		 log_json;
static const char	*log_scope;

static const char *const log_names[] = {
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_NONE] = "none",
};

static void	log_vwrite(enum log_level, const char *, va_list, int)
		    __attribute__((format(printf, 2, 0)));
static void	log_event_cb(int, const char *);

void
log_init(void)
{
	event_set_log_callback(log_event_cb);
}

/*
 * Accepts Istio's --log_output_level forms: "info", or a comma separated list
 * of "scope:level" where the "default" scope (or "all") sets our level and
 * other scopes are accepted and ignored.
 */
int
log_set_level(const char *spec)
{
	char	*copy, *item, *save = NULL, *colon;
	int	 i, found, rc = -1;

	copy = xstrdup(spec);
	for (item = strtok_r(copy, ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save)) {
		const char *scope = "default", *level = item;

		if ((colon = strchr(item, ':')) != NULL) {
			*colon = '\0';
			scope = item;
			level = colon + 1;
		}
		found = 0;
		for (i = 0; i <= LOG_LEVEL_NONE; i++) {
			if (strcmp(level, log_names[i]) == 0) {
				found = 1;
				break;
			}
		}
		if (!found && strcmp(level, "warning") == 0) {
			i = LOG_LEVEL_WARN;
			found = 1;
		}
		if (!found && strcmp(level, "fatal") == 0) {
			i = LOG_LEVEL_ERROR;
			found = 1;
		}
		if (!found)
			goto out;
		if (strcmp(scope, "default") == 0 || strcmp(scope, "all") == 0)
			log_level = (enum log_level)i;
	}
	rc = 0;
out:
	free(copy);
	return rc;
}

void
log_set_json(int on)
{
	log_json = on;
}

/* The scope names the program in each line; NULL for none (the agent). */
void
log_set_scope(const char *scope)
{
	log_scope = scope;
}

int
log_format_time(char *buf, size_t len)
{
	struct timeval	tv;
	struct tm	tm;
	char		date[32];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	return snprintf(buf, len, "%s.%06ldZ", date, (long)tv.tv_usec);
}

static void
log_vwrite(enum log_level level, const char *fmt, va_list ap, int with_errno)
{
	char	 msg[4096], when[48];
	int	 saved_errno = errno;
	size_t	 n;

	if (level < log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (with_errno) {
		n = strlen(msg);
		snprintf(msg + n, sizeof(msg) - n, ": %s",
		    strerror(saved_errno));
	}
	log_format_time(when, sizeof(when));
	if (log_json) {
		json_t	*o;
		char	*s;

		o = json_pack("{s:s, s:s, s:s}", "level", log_names[level],
		    "time", when, "msg", msg);
		if (o != NULL && log_scope != NULL)
			json_object_set_new(o, "scope", json_string(log_scope));
		s = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) :
		    NULL;
		if (s != NULL)
			fprintf(stderr, "%s\n", s);
		free(s);
		json_decref(o);
	} else if (log_scope != NULL)
		fprintf(stderr, "%s\t%s\t%s\t%s\n", when, log_names[level],
		    log_scope, msg);
	else
		fprintf(stderr, "%s\t%s\t%s\n", when, log_names[level], msg);
	fflush(stderr);
	errno = saved_errno;
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_DEBUG, fmt, ap, 0);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_INFO, fmt, ap, 0);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_WARN, fmt, ap, 1);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_WARN, fmt, ap, 0);
	va_end(ap);
}

void
log_error(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, fmt, ap, 0);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, fmt, ap, 1);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, fmt, ap, 0);
	va_end(ap);
	exit(1);
}

static void
log_event_cb(int severity, const char *msg)
{
	switch (severity) {
	case EVENT_LOG_DEBUG:
		log_debug("libevent: %s", msg);
		break;
	case EVENT_LOG_MSG:
		log_info("libevent: %s", msg);
		break;
	case EVENT_LOG_WARN:
		log_warnx("libevent: %s", msg);
		break;
	default:
		log_error("libevent: %s", msg);
		break;
	}
}
