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

/* The length of the valid UTF-8 sequence at p (at most left bytes), or 0. */
static size_t
log_utf8_len(const unsigned char *p, size_t left)
{
	size_t		n, i;
	unsigned char	lo = 0x80, hi = 0xbf;

	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		if (p[0] == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (p[0] == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		if (p[0] == 0xf0)
			lo = 0x90;	/* overlong */
		else if (p[0] == 0xf4)
			hi = 0x8f;	/* past U+10FFFF */
	} else
		return 0;
	if (n > left || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	}
	return n;
}

/*
 * Messages carry values from outside (a control plane's nonces and error
 * texts, file names, variables): none may forge a log line or break the
 * JSON form. Bytes that are not UTF-8 become \xHH in both forms; control
 * characters become \n, \r, \t or \xHH in the text form (jansson escapes
 * them in JSON). A backslash is left alone: it cannot end a line.
 */
static void
log_sanitize(const char *in, char *out, size_t outlen, int controls)
{
	const unsigned char	*p = (const unsigned char *)in;
	size_t			 o = 0, n, left = strlen(in);
	char			 esc[8];

	while (*p != '\0') {
		esc[0] = '\0';
		n = 1;
		if (*p >= 0x80) {
			if ((n = log_utf8_len(p, left)) == 0) {
				snprintf(esc, sizeof(esc), "\\x%02x", *p);
				n = 1;
			}
		} else if (controls && (*p < 0x20 || *p == 0x7f)) {
			if (*p == '\n')
				snprintf(esc, sizeof(esc), "\\n");
			else if (*p == '\r')
				snprintf(esc, sizeof(esc), "\\r");
			else if (*p == '\t')
				snprintf(esc, sizeof(esc), "\\t");
			else
				snprintf(esc, sizeof(esc), "\\x%02x", *p);
		}
		if (esc[0] != '\0') {
			if (o + strlen(esc) >= outlen)
				break;
			memcpy(out + o, esc, strlen(esc));
			o += strlen(esc);
		} else {
			if (o + n >= outlen)
				break;
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
		left -= n;
	}
	out[o] = '\0';
}

static void
log_vwrite(enum log_level level, const char *fmt, va_list ap, int with_errno)
{
	char	 raw[4096], msg[8192], when[48];
	int	 saved_errno = errno;
	size_t	 n;

	if (level < log_level)
		return;
	vsnprintf(raw, sizeof(raw), fmt, ap);
	if (with_errno) {
		n = strlen(raw);
		snprintf(raw + n, sizeof(raw) - n, ": %s",
		    strerror(saved_errno));
	}
	log_sanitize(raw, msg, sizeof(msg), !log_json);
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

/*
 * libevent says "Error from accept() call" each time a listener without an
 * error callback of its own fails to accept, and when that is for want of
 * descriptors (EMFILE) the pending connection wakes the listener again at
 * once: hundreds of thousands of lines a second. The status servers pause
 * their listeners instead (status/conn.c); for any other, this one message
 * is let through at most once every 10 seconds, with the count of those
 * held back. Every other message passes unchanged.
 */
static int
log_event_flood(const char *msg)
{
	static const char	 prefix[] = "Error from accept() call";
	static int64_t		 last;
	static int		 seen;
	static unsigned long	 held;
	int64_t			 now;

	if (strncmp(msg, prefix, sizeof(prefix) - 1) != 0)
		return 0;
	now = clock_now_ns();
	if (seen && now - last < 10 * CLOCK_SEC) {
		held++;
		return 1;
	}
	seen = 1;
	last = now;
	if (held > 0)
		log_warnx("libevent: %lu more \"%s\" messages held back in the "
		    "last 10s", held, prefix);
	held = 0;
	return 0;
}

static void
log_event_cb(int severity, const char *msg)
{
	if (log_event_flood(msg))
		return;
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
