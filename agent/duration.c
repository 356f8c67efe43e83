/*
 * Go's time.ParseDuration and Duration.String, so that every duration flag
 * and field reads and prints exactly as in Istio: "45s", "1m0s", "300ms",
 * "1h2m3.5s". The grammar is [-+]?([0-9]*(\.[0-9]*)?unit)+ or "0", with the
 * units ns, us, µs, μs, ms, s, m, h; a value must fit in int64 nanoseconds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

#define DURATION_MAX	((uint64_t)1 << 63)

static const struct {
	const char	*name;
	uint64_t	 ns;
} duration_units[] = {
	{ "ns", 1 },
	{ "us", 1000 },
	{ "\xc2\xb5s", 1000 },		/* U+00B5 micro sign */
	{ "\xce\xbcs", 1000 },		/* U+03BC Greek mu */
	{ "ms", 1000000 },
	{ "s", 1000000000ULL },
	{ "m", 60 * 1000000000ULL },
	{ "h", 3600 * 1000000000ULL },
};

static int
duration_error(char *err, size_t errlen, const char *what, const char *orig)
{
	if (err != NULL)
		snprintf(err, errlen, "time: %s duration \"%s\"", what, orig);
	return -1;
}

/* Parses s into nanoseconds; on failure writes Go's message into err. */
int
duration_parse(const char *orig, int64_t *out, char *err, size_t errlen)
{
	const char	*s = orig;
	uint64_t	 d = 0;
	int		 neg = 0;

	if (*s == '-' || *s == '+') {
		neg = *s == '-';
		s++;
	}
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return 0;
	}
	if (*s == '\0')
		return duration_error(err, errlen, "invalid", orig);
	while (*s != '\0') {
		uint64_t	 v = 0, f = 0, unit = 0;
		double		 scale = 1;
		int		 pre = 0, post = 0, overflow = 0;
		size_t		 i, n;

		if (!(*s == '.' || (*s >= '0' && *s <= '9')))
			return duration_error(err, errlen, "invalid", orig);
		for (; *s >= '0' && *s <= '9'; s++) {
			pre = 1;
			if (v > DURATION_MAX / 10)
				return duration_error(err, errlen, "invalid",
				    orig);
			v = v * 10 + (uint64_t)(*s - '0');
			if (v > DURATION_MAX)
				return duration_error(err, errlen, "invalid",
				    orig);
		}
		if (*s == '.') {
			for (s++; *s >= '0' && *s <= '9'; s++) {
				post = 1;
				if (overflow)
					continue;
				if (f > (DURATION_MAX - 1) / 10) {
					overflow = 1;
					continue;
				}
				f = f * 10 + (uint64_t)(*s - '0');
				scale *= 10;
			}
		}
		if (!pre && !post)
			return duration_error(err, errlen, "invalid", orig);
		for (n = 0; s[n] != '\0' && s[n] != '.' &&
		    !(s[n] >= '0' && s[n] <= '9'); n++)
			;
		if (n == 0)
			return duration_error(err, errlen, "missing unit in",
			    orig);
		for (i = 0; i < sizeof(duration_units) /
		    sizeof(duration_units[0]); i++) {
			if (strlen(duration_units[i].name) == n &&
			    strncmp(s, duration_units[i].name, n) == 0) {
				unit = duration_units[i].ns;
				break;
			}
		}
		if (unit == 0) {
			if (err != NULL)
				snprintf(err, errlen, "time: unknown unit "
				    "\"%.*s\" in duration \"%s\"", (int)n, s,
				    orig);
			return -1;
		}
		s += n;
		if (v > DURATION_MAX / unit)
			return duration_error(err, errlen, "invalid", orig);
		v *= unit;
		if (f > 0) {
			v += (uint64_t)((double)f * ((double)unit / scale));
			if (v > DURATION_MAX)
				return duration_error(err, errlen, "invalid",
				    orig);
		}
		d += v;
		if (d > DURATION_MAX)
			return duration_error(err, errlen, "invalid", orig);
	}
	if (neg) {
		*out = d == DURATION_MAX ? INT64_MIN : -(int64_t)d;
		return 0;
	}
	if (d > DURATION_MAX - 1)
		return duration_error(err, errlen, "invalid", orig);
	*out = (int64_t)d;
	return 0;
}

/* Writes v/10^prec with trailing zeros of the fraction removed. */
static size_t
duration_frac(char *buf, size_t len, uint64_t v, int prec, uint64_t *rest)
{
	char	 digits[24];
	int	 i, print = 0;
	size_t	 n = 0;

	for (i = 0; i < prec; i++) {
		int digit = (int)(v % 10);

		print = print || digit != 0;
		if (print)
			digits[n++] = (char)('0' + digit);
		v /= 10;
	}
	*rest = v;
	if (n == 0 || len == 0)
		return 0;
	buf[0] = '.';
	for (i = 0; i < (int)n && (size_t)i + 1 < len; i++)
		buf[i + 1] = digits[n - 1 - (size_t)i];
	return n + 1 < len ? n + 1 : len - 1;
}

/* Formats nanoseconds as Go's Duration.String does. */
void
duration_format(int64_t d, char *buf, size_t len)
{
	uint64_t	 u, rest;
	char		 frac[24];
	const char	*sign = d < 0 ? "-" : "";
	size_t		 fl;

	u = d < 0 ? (uint64_t)0 - (uint64_t)d : (uint64_t)d;
	if (u == 0) {
		snprintf(buf, len, "0s");
		return;
	}
	if (u < 1000000000ULL) {
		int		 prec;
		const char	*unit;

		if (u < 1000) {
			snprintf(buf, len, "%s%lluns", sign,
			    (unsigned long long)u);
			return;
		}
		if (u < 1000000) {
			prec = 3;
			unit = "\xc2\xb5s";
		} else {
			prec = 6;
			unit = "ms";
		}
		fl = duration_frac(frac, sizeof(frac), u, prec, &rest);
		frac[fl] = '\0';
		snprintf(buf, len, "%s%llu%s%s", sign,
		    (unsigned long long)rest, frac, unit);
		return;
	}
	fl = duration_frac(frac, sizeof(frac), u, 9, &rest);
	frac[fl] = '\0';
	if (rest < 60) {
		snprintf(buf, len, "%s%llu%ss", sign, (unsigned long long)rest,
		    frac);
	} else if (rest < 3600) {
		snprintf(buf, len, "%s%llum%llu%ss", sign,
		    (unsigned long long)(rest / 60),
		    (unsigned long long)(rest % 60), frac);
	} else {
		snprintf(buf, len, "%s%lluh%llum%llu%ss", sign,
		    (unsigned long long)(rest / 3600),
		    (unsigned long long)(rest / 60 % 60),
		    (unsigned long long)(rest % 60), frac);
	}
}
