/*
 * The stats store: counters and gauges by name, kept sorted, each with
 * Envoy's "used" flag (set by any write, even of zero) that /stats?usedonly
 * reads. pilot-agent's readiness check depends on that flag: a CDS counter
 * never written is absent from /stats?usedonly, not 0.
 *
 * Renderings stream: a cursor produces the reply a chunk at a time, so that
 * the ENVOY_EMU_EXTRA_STATS synthetic series (100 000 of them for the
 * metrics-merge benchmark) are generated as they are sent, never held.
 * The synthetic series are counters named
 * "cluster.emu_<6 digit cluster>.<metric>", ten metrics per cluster.
 */
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "agent.h"
#include "emu.h"

struct stats_entry {
	char		*se_name;
	enum stats_type	 se_type;
	uint64_t	 se_value;
	int		 se_used;
};

static struct stats_entry	**stats_all;
static size_t			  stats_n, stats_cap;

/* Sorted, so that a cluster's series come out in name order. */
static const char *const stats_synth_metrics[] = {
	"upstream_cx_connect_fail",
	"upstream_cx_destroy",
	"upstream_cx_rx_bytes_total",
	"upstream_cx_total",
	"upstream_cx_tx_bytes_total",
	"upstream_rq_completed",
	"upstream_rq_pending_total",
	"upstream_rq_retry",
	"upstream_rq_timeout",
	"upstream_rq_total",
};
#define STATS_SYNTH_PREFIX	"cluster.emu_"

enum stats_phase {
	STATS_PHASE_HEAD,	/* JSON opening */
	STATS_PHASE_BEFORE,	/* real stats before the synthetic ones */
	STATS_PHASE_SYNTH,
	STATS_PHASE_AFTER,
	STATS_PHASE_TAIL,	/* JSON closing */
	STATS_PHASE_DONE
};

struct stats_cursor {
	enum stats_format	 sc_format;
	int			 sc_usedonly;
	int			 sc_has_re;
	regex_t			 sc_re;
	struct stats_entry	**sc_list;	/* matching real stats */
	size_t			 sc_n, sc_i;
	uint64_t		 sc_synth, sc_synth_n;
	enum stats_phase	 sc_phase;
	int			 sc_first;	/* JSON: no comma yet */
	struct prom_cursor	*sc_prom;
};

/* Binary search: the index of name, or where it would go. */
static size_t
stats_find(const char *name, int *found)
{
	size_t	lo = 0, hi = stats_n, mid;
	int	c;

	*found = 0;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(stats_all[mid]->se_name, name);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct stats_entry *
stats_get(enum stats_type type, const char *fmt, va_list ap)
{
	struct stats_entry	*se;
	char			*name;
	size_t			 at;
	int			 found;

	if (vasprintf(&name, fmt, ap) == -1)
		fatal("vasprintf");
	at = stats_find(name, &found);
	if (found) {
		free(name);
		return stats_all[at];
	}
	if (stats_n == stats_cap) {
		stats_cap = stats_cap == 0 ? 64 : stats_cap * 2;
		stats_all = xrealloc(stats_all, stats_cap * sizeof(*stats_all));
	}
	memmove(stats_all + at + 1, stats_all + at,
	    (stats_n - at) * sizeof(*stats_all));
	se = xcalloc(1, sizeof(*se));
	se->se_name = name;
	se->se_type = type;
	stats_all[at] = se;
	stats_n++;
	return se;
}

struct stats_entry *
stats_counter(const char *fmt, ...)
{
	struct stats_entry	*se;
	va_list			 ap;

	va_start(ap, fmt);
	se = stats_get(STATS_COUNTER, fmt, ap);
	va_end(ap);
	return se;
}

struct stats_entry *
stats_gauge(const char *fmt, ...)
{
	struct stats_entry	*se;
	va_list			 ap;

	va_start(ap, fmt);
	se = stats_get(STATS_GAUGE, fmt, ap);
	va_end(ap);
	return se;
}

void
stats_inc(struct stats_entry *se)
{
	stats_add(se, 1);
}

void
stats_add(struct stats_entry *se, uint64_t n)
{
	se->se_value += n;
	se->se_used = 1;
}

void
stats_dec(struct stats_entry *se)
{
	if (se->se_value > 0)
		se->se_value--;
	se->se_used = 1;
}

void
stats_set(struct stats_entry *se, uint64_t v)
{
	se->se_value = v;
	se->se_used = 1;
}

uint64_t
stats_value(const struct stats_entry *se)
{
	return se->se_value;
}

const char *
stats_name(const struct stats_entry *se)
{
	return se->se_name;
}

enum stats_type
stats_type(const struct stats_entry *se)
{
	return se->se_type;
}

void
stats_free(void)
{
	size_t	i;

	for (i = 0; i < stats_n; i++) {
		free(stats_all[i]->se_name);
		free(stats_all[i]);
	}
	free(stats_all);
	stats_all = NULL;
	stats_n = stats_cap = 0;
}

/* The synthetic series: how many, and the name and value of the i-th. */
uint64_t
stats_synthetic_count(void)
{
	return fault_extra_stats();
}

size_t
stats_synthetic_metrics(void)
{
	return sizeof(stats_synth_metrics) / sizeof(stats_synth_metrics[0]);
}

const char *
stats_synthetic_metric(size_t m)
{
	return stats_synth_metrics[m];
}

/* Series i belongs to cluster i / 10 and is metric i % 10. */
void
stats_synthetic_name(uint64_t i, char *buf, size_t len)
{
	size_t	nm = stats_synthetic_metrics();

	snprintf(buf, len, STATS_SYNTH_PREFIX "%06llu.%s",
	    (unsigned long long)(i / nm), stats_synth_metrics[i % nm]);
}

/* A counter that grows with uptime, different for each series. */
uint64_t
stats_synthetic_value(uint64_t i)
{
	return i % 997 + emu_uptime();
}

int
stats_matches(const regex_t *re, const char *name)
{
	return re == NULL || regexec(re, name, 0, NULL, 0) == 0;
}

/* The real stats that pass usedonly and the filter, sorted by name. */
size_t
stats_collect(int usedonly, const regex_t *re, struct stats_entry ***out)
{
	struct stats_entry	**list;
	size_t			  i, n = 0;

	list = xcalloc(stats_n + 1, sizeof(*list));
	for (i = 0; i < stats_n; i++) {
		if (usedonly && !stats_all[i]->se_used)
			continue;
		if (!stats_matches(re, stats_all[i]->se_name))
			continue;
		list[n++] = stats_all[i];
	}
	*out = list;
	return n;
}

/*
 * A new rendering. filter is Envoy's filter= (a regular expression searched
 * in each name; POSIX extended syntax here); NULL or "" for none. On a bad
 * expression, returns NULL with the reason in err.
 */
struct stats_cursor *
stats_cursor_new(enum stats_format format, int usedonly, const char *filter,
    char *err, size_t errlen)
{
	struct stats_cursor	*sc;
	int			 rc;

	sc = xcalloc(1, sizeof(*sc));
	sc->sc_format = format;
	sc->sc_usedonly = usedonly;
	sc->sc_first = 1;
	if (filter != NULL && *filter != '\0') {
		if ((rc = regcomp(&sc->sc_re, filter,
		    REG_EXTENDED | REG_NOSUB)) != 0) {
			char	msg[128];

			regerror(rc, &sc->sc_re, msg, sizeof(msg));
			snprintf(err, errlen, "Invalid regex: %s", msg);
			free(sc);
			return NULL;
		}
		sc->sc_has_re = 1;
	}
	if (format == STATS_PROMETHEUS) {
		sc->sc_prom = prom_cursor_new(usedonly,
		    sc->sc_has_re ? &sc->sc_re : NULL);
		return sc;
	}
	sc->sc_n = stats_collect(usedonly, sc->sc_has_re ? &sc->sc_re : NULL,
	    &sc->sc_list);
	sc->sc_synth_n = stats_synthetic_count();
	sc->sc_phase = format == STATS_JSON ? STATS_PHASE_HEAD :
	    STATS_PHASE_BEFORE;
	return sc;
}

void
stats_cursor_free(struct stats_cursor *sc)
{
	if (sc == NULL)
		return;
	if (sc->sc_prom != NULL)
		prom_cursor_free(sc->sc_prom);
	if (sc->sc_has_re)
		regfree(&sc->sc_re);
	free(sc->sc_list);
	free(sc);
}

static void
stats_emit(struct stats_cursor *sc, struct evbuffer *out, const char *name,
    uint64_t value)
{
	if (sc->sc_format == STATS_TEXT) {
		evbuffer_add_printf(out, "%s: %llu\n", name,
		    (unsigned long long)value);
		return;
	}
	/* Stat names hold no character that JSON needs escaped but these. */
	evbuffer_add_printf(out, "%s{\"name\":\"", sc->sc_first ? "" : ",");
	for (; *name != '\0'; name++) {
		if (*name == '"' || *name == '\\')
			evbuffer_add(out, "\\", 1);
		evbuffer_add(out, name, 1);
	}
	evbuffer_add_printf(out, "\",\"value\":%llu}",
	    (unsigned long long)value);
	sc->sc_first = 0;
}

/*
 * Appends about budget bytes of the reply to out. Returns 1 while more is to
 * come, 0 once the reply is complete.
 */
int
stats_cursor_next(struct stats_cursor *sc, struct evbuffer *out,
    size_t budget)
{
	size_t			 start = evbuffer_get_length(out);
	char			 name[128];
	const regex_t		*re = sc->sc_has_re ? &sc->sc_re : NULL;
	struct stats_entry	*se;

	if (sc->sc_prom != NULL)
		return prom_cursor_next(sc->sc_prom, out, budget);
	while (evbuffer_get_length(out) - start < budget) {
		switch (sc->sc_phase) {
		case STATS_PHASE_HEAD:
			evbuffer_add_printf(out, "{\"stats\":[");
			sc->sc_phase = STATS_PHASE_BEFORE;
			break;
		case STATS_PHASE_BEFORE:
			se = sc->sc_i < sc->sc_n ? sc->sc_list[sc->sc_i] : NULL;
			if (se != NULL &&
			    strcmp(se->se_name, STATS_SYNTH_PREFIX) < 0) {
				stats_emit(sc, out, se->se_name, se->se_value);
				sc->sc_i++;
			} else
				sc->sc_phase = STATS_PHASE_SYNTH;
			break;
		case STATS_PHASE_SYNTH:
			if (sc->sc_synth >= sc->sc_synth_n) {
				sc->sc_phase = STATS_PHASE_AFTER;
				break;
			}
			stats_synthetic_name(sc->sc_synth, name, sizeof(name));
			if (stats_matches(re, name))
				stats_emit(sc, out, name,
				    stats_synthetic_value(sc->sc_synth));
			sc->sc_synth++;
			break;
		case STATS_PHASE_AFTER:
			if (sc->sc_i < sc->sc_n) {
				se = sc->sc_list[sc->sc_i++];
				stats_emit(sc, out, se->se_name, se->se_value);
			} else
				sc->sc_phase = sc->sc_format == STATS_JSON ?
				    STATS_PHASE_TAIL : STATS_PHASE_DONE;
			break;
		case STATS_PHASE_TAIL:
			evbuffer_add_printf(out, "]}\n");
			sc->sc_phase = STATS_PHASE_DONE;
			break;
		case STATS_PHASE_DONE:
			return 0;
		}
	}
	return sc->sc_phase != STATS_PHASE_DONE;
}
