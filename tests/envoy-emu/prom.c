/*
 * /stats/prometheus as Envoy renders it (text format 0.0.4): tags are
 * extracted from stat names by Envoy's default tag extractors, names get the
 * "envoy_" prefix with every character outside [a-zA-Z0-9_] turned into '_',
 * series are grouped in families under one "# TYPE" line, counters first,
 * then gauges, families sorted by name; a series without tags prints "{}" as
 * Envoy's does:
 *
 *   listener.127.0.0.1_15021.downstream_cx_active 3   becomes
 *   envoy_listener_downstream_cx_active{
 *       envoy_listener_address="127.0.0.1_15021"} 3       (on one line)
 *
 * The extractors implemented are the ones whose stats the stand-in has:
 * envoy.cluster_name ^cluster\.((.*?)\.), envoy.listener_address
 * ^listener\.(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.),
 * envoy.http_conn_manager_prefix ^http\.((.*?)\.) and envoy.worker_id
 * (a "worker_<n>." component of listener stats).
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "agent.h"
#include "emu.h"

struct prom_series {
	char		*ps_metric;	/* envoy_server_state */
	char		*ps_labels;	/* without braces; "" for none */
	const char	*ps_name;	/* the stat's own name, for sorting */
	enum stats_type	 ps_type;
	uint64_t	 ps_value;
};

/* A family: real series [pg_first, pg_last) or synthetic metric pg_synth. */
struct prom_group {
	const char	*pg_metric;
	enum stats_type	 pg_type;
	size_t		 pg_first, pg_last;
	int		 pg_synth;	/* -1 for real series */
	char		*pg_synth_metric;	/* owned when synthetic */
};

struct prom_cursor {
	const regex_t		*pc_re;	/* borrowed from the stats cursor */
	struct prom_series	*pc_series;
	size_t			 pc_nseries;
	struct prom_group	*pc_groups;
	size_t			 pc_ngroups, pc_g;
	size_t			 pc_i;		/* next series in the group */
	uint64_t		 pc_cluster;	/* next synthetic cluster */
	uint64_t		 pc_synth_n;
	int			 pc_typed;	/* this group's TYPE is out */
};

struct prom_tags {
	char	*pt_buf;
	size_t	 pt_len;
};

static void
prom_tag_add(struct prom_tags *t, const char *key, const char *value,
    size_t vlen)
{
	size_t	i, need = strlen(key) + 2 * vlen + 8;

	t->pt_buf = xrealloc(t->pt_buf, t->pt_len + need + 1);
	if (t->pt_len > 0)
		t->pt_buf[t->pt_len++] = ',';
	t->pt_len += sprintf(t->pt_buf + t->pt_len, "%s=\"", key);
	for (i = 0; i < vlen; i++) {
		if (value[i] == '\\' || value[i] == '"') {
			t->pt_buf[t->pt_len++] = '\\';
			t->pt_buf[t->pt_len++] = value[i];
		} else if (value[i] == '\n') {
			t->pt_buf[t->pt_len++] = '\\';
			t->pt_buf[t->pt_len++] = 'n';
		} else
			t->pt_buf[t->pt_len++] = value[i];
	}
	t->pt_buf[t->pt_len++] = '"';
	t->pt_buf[t->pt_len] = '\0';
}

/* Removes n bytes at off from s (in place). */
static void
prom_cut(char *s, size_t off, size_t n)
{
	memmove(s + off, s + off + n, strlen(s + off + n) + 1);
}

/* ^<prefix>\.((.*?)\.): the first component after the prefix. */
static void
prom_extract_first(char *name, const char *prefix, const char *key,
    struct prom_tags *t)
{
	size_t	 plen = strlen(prefix);
	char	*dot;

	if (strncmp(name, prefix, plen) != 0)
		return;
	if ((dot = strchr(name + plen, '.')) == NULL)
		return;
	prom_tag_add(t, key, name + plen, dot - (name + plen));
	prom_cut(name, plen, dot + 1 - (name + plen));
}

/* envoy.listener_address, with RE2's leftmost-first, greedy semantics. */
static void
prom_extract_listener(char *name, struct prom_tags *t)
{
	const char	*rest = name + strlen("listener.");
	size_t		 run, k, vlen = 0;
	int		 found = 0;

	if (strncmp(name, "listener.", strlen("listener.")) != 0)
		return;
	run = strspn(rest, "_.0123456789");
	for (k = run; k > 0; k--) {
		if (rest[k - 1] == '.' && k - 1 > 0) {
			vlen = k - 1;
			found = 1;
			break;
		}
	}
	if (!found) {
		run = strspn(rest, "_[]aAbBcCdDeEfF0123456789");
		if (run > 0 && rest[run] == '.') {
			vlen = run;
			found = 1;
		}
	}
	if (!found)
		return;
	prom_tag_add(t, "envoy_listener_address", rest, vlen);
	prom_cut(name, rest - name, vlen + 1);
}

/* envoy.worker_id: a "worker_<digits>." component of a listener stat. */
static void
prom_extract_worker(char *name, struct prom_tags *t)
{
	char	*w;
	size_t	 n;

	if (strncmp(name, "listener.", strlen("listener.")) != 0)
		return;
	for (w = strstr(name, ".worker_"); w != NULL;
	    w = strstr(w + 1, ".worker_")) {
		n = strspn(w + 8, "0123456789");
		if (n > 0 && w[8 + n] == '.') {
			prom_tag_add(t, "envoy_worker_id", w + 8, n);
			prom_cut(name, w + 1 - name, 8 + n);
			return;
		}
	}
}

/*
 * The Prometheus metric name and tags of a stat name; both allocated, the
 * caller frees them.
 */
void
prom_extract(const char *stat, char **metric, char **labels)
{
	struct prom_tags	 t = { NULL, 0 };
	char			*name, *m, *p;

	name = xstrdup(stat);
	prom_extract_first(name, "cluster.", "envoy_cluster_name", &t);
	prom_extract_listener(name, &t);
	prom_extract_first(name, "http.", "envoy_http_conn_manager_prefix", &t);
	prom_extract_worker(name, &t);
	xasprintf(&m, "envoy_%s", name);
	for (p = m; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '_'))
			*p = '_';
	}
	free(name);
	*metric = m;
	*labels = t.pt_buf != NULL ? t.pt_buf : xstrdup("");
}

static int
prom_series_cmp(const void *a, const void *b)
{
	const struct prom_series	*x = a, *y = b;
	int				 c;

	if (x->ps_type != y->ps_type)
		return x->ps_type == STATS_COUNTER ? -1 : 1;
	if ((c = strcmp(x->ps_metric, y->ps_metric)) != 0)
		return c;
	return strcmp(x->ps_name, y->ps_name);
}

/*
 * Families by type and metric; a real family and the synthetic one of the
 * same metric (a static cluster's upstream_rq_total and the emu_ clusters')
 * come one after the other, real first, and print as one family.
 */
static int
prom_group_cmp(const void *a, const void *b)
{
	const struct prom_group	*x = a, *y = b;
	int			 c;

	if (x->pg_type != y->pg_type)
		return x->pg_type == STATS_COUNTER ? -1 : 1;
	if ((c = strcmp(x->pg_metric, y->pg_metric)) != 0)
		return c;
	return (x->pg_synth >= 0) - (y->pg_synth >= 0);
}

struct prom_cursor *
prom_cursor_new(int usedonly, const regex_t *re)
{
	struct prom_cursor	*pc;
	struct stats_entry	**list;
	struct prom_group	*g;
	size_t			  n, i, m, nm;

	pc = xcalloc(1, sizeof(*pc));
	pc->pc_re = re;
	n = stats_collect(usedonly, re, &list);
	pc->pc_series = xcalloc(n + 1, sizeof(*pc->pc_series));
	for (i = 0; i < n; i++) {
		struct prom_series	*ps = &pc->pc_series[i];

		prom_extract(stats_name(list[i]), &ps->ps_metric,
		    &ps->ps_labels);
		ps->ps_name = stats_name(list[i]);
		ps->ps_type = stats_type(list[i]);
		ps->ps_value = stats_value(list[i]);
	}
	free(list);
	pc->pc_nseries = n;
	qsort(pc->pc_series, n, sizeof(*pc->pc_series), prom_series_cmp);

	pc->pc_synth_n = stats_synthetic_count();
	nm = stats_synthetic_metrics();
	pc->pc_groups = xcalloc(n + nm + 1, sizeof(*pc->pc_groups));
	for (i = 0; i < n; i = g->pg_last) {
		g = &pc->pc_groups[pc->pc_ngroups++];
		g->pg_metric = pc->pc_series[i].ps_metric;
		g->pg_type = pc->pc_series[i].ps_type;
		g->pg_first = i;
		g->pg_synth = -1;
		for (g->pg_last = i + 1; g->pg_last < n &&
		    pc->pc_series[g->pg_last].ps_type == g->pg_type &&
		    strcmp(pc->pc_series[g->pg_last].ps_metric,
		    g->pg_metric) == 0; g->pg_last++)
			;
	}
	for (m = 0; m < nm && m < pc->pc_synth_n; m++) {
		g = &pc->pc_groups[pc->pc_ngroups++];
		xasprintf(&g->pg_synth_metric, "envoy_cluster_%s",
		    stats_synthetic_metric(m));
		g->pg_metric = g->pg_synth_metric;
		g->pg_type = STATS_COUNTER;
		g->pg_synth = (int)m;
	}
	qsort(pc->pc_groups, pc->pc_ngroups, sizeof(*pc->pc_groups),
	    prom_group_cmp);
	return pc;
}

void
prom_cursor_free(struct prom_cursor *pc)
{
	size_t	i;

	if (pc == NULL)
		return;
	for (i = 0; i < pc->pc_nseries; i++) {
		free(pc->pc_series[i].ps_metric);
		free(pc->pc_series[i].ps_labels);
	}
	for (i = 0; i < pc->pc_ngroups; i++)
		free(pc->pc_groups[i].pg_synth_metric);
	free(pc->pc_series);
	free(pc->pc_groups);
	free(pc);
}

static void
prom_type_line(struct prom_cursor *pc, struct evbuffer *out,
    const struct prom_group *g)
{
	if (pc->pc_typed)
		return;
	evbuffer_add_printf(out, "# TYPE %s %s\n", g->pg_metric,
	    g->pg_type == STATS_COUNTER ? "counter" : "gauge");
	pc->pc_typed = 1;
}

/* Moves to the next group: a new family unless it has the same metric. */
static void
prom_next_group(struct prom_cursor *pc)
{
	const struct prom_group	*g = &pc->pc_groups[pc->pc_g++];

	if (pc->pc_g >= pc->pc_ngroups ||
	    pc->pc_groups[pc->pc_g].pg_type != g->pg_type ||
	    strcmp(pc->pc_groups[pc->pc_g].pg_metric, g->pg_metric) != 0)
		pc->pc_typed = 0;
	pc->pc_i = 0;
	pc->pc_cluster = 0;
}

/* Appends about budget bytes; 1 while more is to come, 0 when complete. */
int
prom_cursor_next(struct prom_cursor *pc, struct evbuffer *out, size_t budget)
{
	size_t		 start = evbuffer_get_length(out), nm;
	char		 name[128];
	uint64_t	 series;

	nm = stats_synthetic_metrics();
	while (pc->pc_g < pc->pc_ngroups &&
	    evbuffer_get_length(out) - start < budget) {
		const struct prom_group	*g = &pc->pc_groups[pc->pc_g];

		if (g->pg_synth < 0) {
			const struct prom_series *ps;

			if (g->pg_first + pc->pc_i >= g->pg_last) {
				prom_next_group(pc);
				continue;
			}
			ps = &pc->pc_series[g->pg_first + pc->pc_i++];
			prom_type_line(pc, out, g);
			evbuffer_add_printf(out, "%s{%s} %llu\n", ps->ps_metric,
			    ps->ps_labels, (unsigned long long)ps->ps_value);
			continue;
		}
		series = pc->pc_cluster * nm + (uint64_t)g->pg_synth;
		if (series >= pc->pc_synth_n) {
			prom_next_group(pc);
			continue;
		}
		pc->pc_cluster++;
		stats_synthetic_name(series, name, sizeof(name));
		if (!stats_matches(pc->pc_re, name))
			continue;
		prom_type_line(pc, out, g);
		evbuffer_add_printf(out,
		    "%s{envoy_cluster_name=\"emu_%06llu\"} %llu\n",
		    g->pg_metric,
		    (unsigned long long)(pc->pc_cluster - 1),
		    (unsigned long long)stats_synthetic_value(series));
	}
	return pc->pc_g < pc->pc_ngroups;
}
