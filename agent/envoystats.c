/*
 * The one parser of the proxy's admin /stats text: a stat a line, "name:
 * value", as Envoy writes it ("cluster_manager.cds.update_success: 3").
 * Readiness (status/ready.c) looks up single stats by name; the drain sums
 * the listeners' active connections. The text is read where it lies, with
 * no copy and so no limit on a line's length: a long listener name is
 * never cut into another one.
 *
 * As Istio splits such lines, the name is what comes before the first
 * colon, the value what follows it, without the spaces around it. Lines
 * without a colon (blank ones, a last line cut short) are skipped. Values
 * that are not integers (histograms, text readouts) are passed through by
 * envoystats_each and are never taken for a number.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"

/*
 * Calls cb with each line's name and value (neither NUL-terminated) until
 * it returns non-zero, which is then returned; 0 when every line was seen.
 */
int
envoystats_each(const char *text, size_t len, envoystats_cb cb, void *arg)
{
	const char	*p = text, *end = text + len, *nl, *colon, *v, *ve;
	int		 rc;

	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if ((colon = memchr(p, ':', (size_t)(nl - p))) == NULL)
			continue;
		v = colon + 1;
		ve = nl;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' ||
		    ve[-1] == '\r'))
			ve--;
		if ((rc = cb(p, (size_t)(colon - p), v, (size_t)(ve - v),
		    arg)) != 0)
			return rc;
	}
	return 0;
}

/*
 * A value as an integer: decimal digits, a minus sign allowed, nothing
 * else. -1 for anything else, or a number past long long.
 */
int
envoystats_int(const char *v, size_t len, long long *out)
{
	unsigned long long	 n = 0, max = LLONG_MAX;
	size_t			 i = 0;
	int			 neg = 0, d;

	if (len > 0 && v[0] == '-') {
		neg = 1;
		max = (unsigned long long)LLONG_MAX + 1;
		i = 1;
	}
	if (i == len)
		return -1;
	for (; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		d = v[i] - '0';
		if (n > (max - (unsigned long long)d) / 10)
			return -1;
		n = n * 10 + (unsigned long long)d;
	}
	if (neg)
		*out = n == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN :
		    -(long long)n;
	else
		*out = (long long)n;
	return 0;
}

struct envoystats_find {
	const char	*ef_name;
	size_t		 ef_len;
	const char	*ef_value;	/* of the first line of that name */
	size_t		 ef_value_len;
};

static int
envoystats_find_cb(const char *name, size_t nlen, const char *v, size_t vlen,
    void *arg)
{
	struct envoystats_find	*ef = arg;

	if (nlen != ef->ef_len || memcmp(name, ef->ef_name, nlen) != 0)
		return 0;
	ef->ef_value = v;
	ef->ef_value_len = vlen;
	return 1;
}

/*
 * The value of the stat of exactly this name (the first line of it): 0, or
 * -1 when there is no such line or its value is not an integer.
 */
int
envoystats_get(const char *text, size_t len, const char *name,
    long long *out)
{
	struct envoystats_find	ef;

	memset(&ef, 0, sizeof(ef));
	ef.ef_name = name;
	ef.ef_len = strlen(name);
	if (envoystats_each(text, len, envoystats_find_cb, &ef) == 0)
		return -1;
	return envoystats_int(ef.ef_value, ef.ef_value_len, out);
}

struct envoystats_active {
	char		 ea_skip[2][16];	/* "_15021.", "" */
	long long	 ea_total;
	int		 ea_found;
};

static int
envoystats_has(const char *name, size_t nlen, const char *what)
{
	return *what != '\0' && memmem(name, nlen, what, strlen(what)) != NULL;
}

static int
envoystats_active_cb(const char *name, size_t nlen, const char *v,
    size_t vlen, void *arg)
{
	struct envoystats_active	*ea = arg;
	long long			 n;

	if (nlen < 9 || memcmp(name, "listener.", 9) != 0 ||
	    (nlen >= 15 && memcmp(name, "listener.admin.", 15) == 0) ||
	    envoystats_has(name, nlen, "worker_") ||
	    !envoystats_has(name, nlen, ".downstream_cx_active") ||
	    envoystats_has(name, nlen, ea->ea_skip[0]) ||
	    envoystats_has(name, nlen, ea->ea_skip[1]) ||
	    envoystats_int(v, vlen, &n) == -1 || n < 0)
		return 0;
	ea->ea_found = 1;
	/* Saturates: a hostile page cannot overflow the sum. */
	if (ea->ea_total > LLONG_MAX - n)
		ea->ea_total = LLONG_MAX;
	else
		ea->ea_total += n;
	return 0;
}

/*
 * The proxy's active downstream connections, summed as Istio's drain does:
 * the listener.<...>.downstream_cx_active stats, without the per-worker
 * copies ("worker_"), the admin listener ("listener.admin.") and the
 * listeners on the two given ports ("_<port>." in the name: the health
 * and Prometheus listeners, whose connections are the kubelet's and the
 * scraper's; 0 skips nothing). A value that is not a count (negative,
 * not an integer) is left out. -1 when there is no such stat.
 */
long long
envoystats_active(const char *text, size_t len, int port1, int port2)
{
	struct envoystats_active	ea;

	memset(&ea, 0, sizeof(ea));
	if (port1 > 0)
		snprintf(ea.ea_skip[0], sizeof(ea.ea_skip[0]), "_%d.", port1);
	if (port2 > 0)
		snprintf(ea.ea_skip[1], sizeof(ea.ea_skip[1]), "_%d.", port2);
	envoystats_each(text, len, envoystats_active_cb, &ea);
	return ea.ea_found ? ea.ea_total : -1;
}
