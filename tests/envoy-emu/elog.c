/*
 * Logging in Envoy's way: spdlog pattern flags, given by --log-format
 * (default "[%Y-%m-%d %T.%e][%t][%l][%n] %v"), the level by -l, and per
 * logger ("component") levels by --component-log-level. pilot-agent passes
 * "[Envoy (Epoch N)] [%Y-%m-%d %T.%e][%t][%l][%n] %v" and reads these lines
 * from the proxy's standard error, so they must look like Envoy's.
 *
 * Supported flags: %Y %m %d %H %M %S %T %e %f %t %P %l %L %n %v %j %g %s %#
 * %@ %%. Anything else is copied as it stands. Each line is written with a
 * single write(2) so that lines of concurrent epochs do not interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "emu.h"

#define ELOG_LINE_MAX	8192
#define ELOG_DEFAULT_FORMAT	"[%Y-%m-%d %T.%e][%t][%l][%n] %v"

struct elog_component {
	char		*c_name;
	enum elog_level	 c_level;
};

static char			*elog_format;
static enum elog_level		 elog_level = ELOG_INFO;
static struct elog_component	*elog_components;
static size_t			 elog_ncomponents;

/* spdlog's level names as Envoy configures them. */
static const char *const elog_names[] = {
	[ELOG_TRACE] = "trace",
	[ELOG_DEBUG] = "debug",
	[ELOG_INFO] = "info",
	[ELOG_WARN] = "warning",
	[ELOG_ERROR] = "error",
	[ELOG_CRITICAL] = "critical",
	[ELOG_OFF] = "off",
};

int
elog_parse_level(const char *s, enum elog_level *out)
{
	int	i;

	for (i = ELOG_TRACE; i <= ELOG_OFF; i++) {
		if (strcmp(s, elog_names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	if (strcmp(s, "warn") == 0) {
		*out = ELOG_WARN;
		return 0;
	}
	return -1;
}

const char *
elog_level_name(enum elog_level l)
{
	return elog_names[l];
}

void
elog_init(const char *format, enum elog_level level)
{
	free(elog_format);
	elog_format = xstrdup(format);
	elog_level = level;
}

/*
 * "upstream:debug,connection:trace": Envoy's --component-log-level. Envoy
 * checks the names against its list of loggers; the stand-in accepts any
 * lower-case name, since it has few loggers of its own.
 */
int
elog_set_components(const char *spec, char *err, size_t errlen)
{
	char		*copy, *item, *save = NULL, *colon;
	enum elog_level	 l;
	int		 rc = -1;

	copy = xstrdup(spec);
	for (item = strtok_r(copy, ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save)) {
		if ((colon = strchr(item, ':')) == NULL || colon == item) {
			snprintf(err, errlen, "error: component log level not "
			    "correctly specified '%s'", item);
			goto out;
		}
		*colon = '\0';
		if (elog_parse_level(colon + 1, &l) == -1) {
			snprintf(err, errlen, "error: invalid log level "
			    "specified '%s'", colon + 1);
			goto out;
		}
		if (strspn(item, "abcdefghijklmnopqrstuvwxyz0123456789_") !=
		    strlen(item)) {
			snprintf(err, errlen,
			    "error: invalid component specified '%s'", item);
			goto out;
		}
		elog_components = xrealloc(elog_components,
		    (elog_ncomponents + 1) * sizeof(*elog_components));
		elog_components[elog_ncomponents].c_name = xstrdup(item);
		elog_components[elog_ncomponents].c_level = l;
		elog_ncomponents++;
	}
	rc = 0;
out:
	free(copy);
	return rc;
}

void
elog_free(void)
{
	size_t	i;

	for (i = 0; i < elog_ncomponents; i++)
		free(elog_components[i].c_name);
	free(elog_components);
	elog_components = NULL;
	elog_ncomponents = 0;
	free(elog_format);
	elog_format = NULL;
}

static enum elog_level
elog_level_of(const char *logger)
{
	size_t	i;

	for (i = 0; i < elog_ncomponents; i++) {
		if (strcmp(elog_components[i].c_name, logger) == 0)
			return elog_components[i].c_level;
	}
	return elog_level;
}

/* Appends to buf at *off, never past len - 1; returns nothing, truncates. */
static void
elog_put(char *buf, size_t len, size_t *off, const char *s, size_t n)
{
	if (*off + 1 >= len)
		return;
	if (n > len - 1 - *off)
		n = len - 1 - *off;
	memcpy(buf + *off, s, n);
	*off += n;
}

static void
elog_putf(char *buf, size_t len, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
elog_putf(char *buf, size_t len, size_t *off, const char *fmt, ...)
{
	char	tmp[64];
	va_list	ap;
	int	n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		elog_put(buf, len, off, tmp, (size_t)n < sizeof(tmp) ?
		    (size_t)n : sizeof(tmp) - 1);
}

/* %j: the message escaped for a JSON string, as Envoy's extension does. */
static void
elog_put_json(char *buf, size_t len, size_t *off, const char *msg)
{
	const unsigned char	*p;

	for (p = (const unsigned char *)msg; *p != '\0'; p++) {
		switch (*p) {
		case '"':
			elog_put(buf, len, off, "\\\"", 2);
			break;
		case '\\':
			elog_put(buf, len, off, "\\\\", 2);
			break;
		case '\n':
			elog_put(buf, len, off, "\\n", 2);
			break;
		case '\r':
			elog_put(buf, len, off, "\\r", 2);
			break;
		case '\t':
			elog_put(buf, len, off, "\\t", 2);
			break;
		default:
			if (*p < 0x20)
				elog_putf(buf, len, off, "\\u%04x", *p);
			else
				elog_put(buf, len, off, (const char *)p, 1);
		}
	}
}

void
elog_write(enum elog_level level, const char *logger, const char *file,
    int line, const char *fmt, ...)
{
	char		 msg[ELOG_LINE_MAX], out[ELOG_LINE_MAX + 512];
	const char	*f, *base;
	struct timeval	 tv;
	struct tm	 tm;
	size_t		 off = 0;
	va_list		 ap;
	int		 saved = errno;

	if (level < elog_level_of(logger) || level >= ELOG_OFF)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	base = strrchr(file, '/') != NULL ? strrchr(file, '/') + 1 : file;

	f = elog_format != NULL ? elog_format : ELOG_DEFAULT_FORMAT;
	for (; *f != '\0'; f++) {
		if (*f != '%' || f[1] == '\0') {
			elog_put(out, sizeof(out), &off, f, 1);
			continue;
		}
		f++;
		switch (*f) {
		case 'Y':
			elog_putf(out, sizeof(out), &off, "%04d",
			    tm.tm_year + 1900);
			break;
		case 'm':
			elog_putf(out, sizeof(out), &off, "%02d",
			    tm.tm_mon + 1);
			break;
		case 'd':
			elog_putf(out, sizeof(out), &off, "%02d", tm.tm_mday);
			break;
		case 'H':
			elog_putf(out, sizeof(out), &off, "%02d", tm.tm_hour);
			break;
		case 'M':
			elog_putf(out, sizeof(out), &off, "%02d", tm.tm_min);
			break;
		case 'S':
			elog_putf(out, sizeof(out), &off, "%02d", tm.tm_sec);
			break;
		case 'T':
			elog_putf(out, sizeof(out), &off, "%02d:%02d:%02d",
			    tm.tm_hour, tm.tm_min, tm.tm_sec);
			break;
		case 'e':
			elog_putf(out, sizeof(out), &off, "%03ld",
			    (long)tv.tv_usec / 1000);
			break;
		case 'f':
			elog_putf(out, sizeof(out), &off, "%06ld",
			    (long)tv.tv_usec);
			break;
		case 't':
			elog_putf(out, sizeof(out), &off, "%ld",
			    (long)syscall(SYS_gettid));
			break;
		case 'P':
			elog_putf(out, sizeof(out), &off, "%ld",
			    (long)getpid());
			break;
		case 'l':
			elog_put(out, sizeof(out), &off, elog_names[level],
			    strlen(elog_names[level]));
			break;
		case 'L':
			elog_put(out, sizeof(out), &off, elog_names[level], 1);
			break;
		case 'n':
			elog_put(out, sizeof(out), &off, logger,
			    strlen(logger));
			break;
		case 'v':
			elog_put(out, sizeof(out), &off, msg, strlen(msg));
			break;
		case 'j':
			elog_put_json(out, sizeof(out), &off, msg);
			break;
		case 'g':
			elog_put(out, sizeof(out), &off, file, strlen(file));
			break;
		case 's':
			elog_put(out, sizeof(out), &off, base, strlen(base));
			break;
		case '#':
			elog_putf(out, sizeof(out), &off, "%d", line);
			break;
		case '@':
			elog_putf(out, sizeof(out), &off, "%.40s:%d", base,
			    line);
			break;
		case '%':
			elog_put(out, sizeof(out), &off, "%", 1);
			break;
		default:
			elog_put(out, sizeof(out), &off, f - 1, 2);
		}
	}
	if (off >= sizeof(out) - 1)
		off = sizeof(out) - 2;
	out[off++] = '\n';
	if (write(STDERR_FILENO, out, off) == -1) {
		/* Nowhere left to report it. */
	}
	errno = saved;
}
