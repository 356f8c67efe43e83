/*
 * A static listener's HTTP connection manager: the http_connection_manager
 * filter of its filter chains (the first one found) with an inline
 * route_config, the way Envoy's router picks a route for a request:
 *
 *   - the virtual host by the Host header, as Envoy orders domains: an
 *     exact name (case-insensitive), then the longest suffix wildcard
 *     ("*.example.com"), then the longest prefix wildcard ("example.*"),
 *     then "*"; the port in the Host header is part of the name;
 *   - the first route of that virtual host whose match holds: prefix (on
 *     the path with its query string), path and path_separated_prefix (on
 *     the path without it), safe_regex (the whole path without the query;
 *     POSIX extended syntax, which covers the RE2 patterns tests use), each
 *     case_sensitive unless told otherwise;
 *   - its action: route.cluster (with route.timeout, Envoy's default 15s,
 *     "0s" for none) or direct_response (status, body.inline_string or
 *     body.filename). No match: 404 with an empty body.
 *
 * A route to a cluster that static_resources does not have is a
 * configuration error ("route: unknown cluster 'x'"), as Envoy's check of
 * static route tables; with validate_clusters false it answers 503 instead.
 * Whatever would change which route matches or what the upstream receives
 * and is not implemented (header matchers, rewrites, redirects, weighted
 * clusters...) is refused at start-up rather than ignored. A connection
 * manager with rds or scoped_routes instead of a route_config is not
 * modelled: the stand-in then answers that listener itself (listener.c).
 *
 * Stats, under "http.<stat_prefix>.": downstream_rq_total (every request
 * the connection manager decodes), no_route, no_cluster,
 * rq_direct_response (the router's).
 */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent.h"
#include "emu.h"

#define ROUTE_HCM_TYPE		".HttpConnectionManager"
#define ROUTE_HCM_NAME		"envoy.filters.network.http_connection_manager"
#define ROUTE_DEFAULT_TIMEOUT	(15 * 1000000000LL)	/* Envoy's */

enum route_match {
	RM_PREFIX,
	RM_PATH,
	RM_SEPARATED_PREFIX,
	RM_REGEX
};

struct route {
	enum route_match	 rt_match;
	char			*rt_value;
	regex_t			 rt_re;
	int			 rt_has_re;
	int			 rt_nocase;
	enum route_kind		 rt_kind;
	char			*rt_cluster_name;
	struct cluster		*rt_cluster;	/* NULL: unknown */
	int64_t			 rt_timeout;
	int			 rt_status;
	char			*rt_body;
	size_t			 rt_body_len;
};

struct route_vhost {
	char		 *vh_name;
	char		**vh_domains;
	size_t		  vh_ndomains;
	struct route	 *vh_routes;
	size_t		  vh_nroutes;
};

struct route_config {
	char			*rc_prefix;
	struct route_vhost	*rc_vhosts;
	size_t			 rc_nvhosts;
	struct stats_entry	*rc_rq_total, *rc_no_route, *rc_no_cluster;
	struct stats_entry	*rc_direct;
};

/* Match fields Envoy has and the stand-in does not implement. */
static const char *const route_match_known[] = {
	"prefix", "path", "safe_regex", "path_separated_prefix",
	"case_sensitive", NULL
};

/* Route action fields that would change what the upstream receives. */
static const char *const route_action_refused[] = {
	"cluster_header", "weighted_clusters", "cluster_specifier_plugin",
	"inline_cluster_specifier_plugin", "prefix_rewrite", "regex_rewrite",
	"path_rewrite_policy", "host_rewrite_literal", "host_rewrite_header",
	"host_rewrite_path_regex", "auto_host_rewrite", NULL
};

static int
route_in(const char *const *list, const char *key)
{
	for (; *list != NULL; list++) {
		if (strcmp(*list, key) == 0)
			return 1;
	}
	return 0;
}

static json_t *
route_chain_hcm(json_t *chain)
{
	json_t		*f, *tc;
	const char	*name, *type;
	size_t		 i, tl, sl = strlen(ROUTE_HCM_TYPE);

	json_array_foreach(json_object_get(chain, "filters"), i, f) {
		name = json_string_value(json_object_get(f, "name"));
		tc = json_object_get(f, "typed_config");
		type = json_string_value(json_object_get(tc, "@type"));
		tl = type != NULL ? strlen(type) : 0;
		if ((type != NULL && tl > sl &&
		    strcmp(type + tl - sl, ROUTE_HCM_TYPE) == 0) ||
		    (name != NULL && strcmp(name, ROUTE_HCM_NAME) == 0))
			return tc;
	}
	return NULL;
}

/* The typed_config of the listener's first HTTP connection manager. */
static json_t *
route_find_hcm(json_t *jl)
{
	json_t	*chain, *hcm;
	size_t	 i;

	json_array_foreach(json_object_get(jl, "filter_chains"), i, chain) {
		if ((hcm = route_chain_hcm(chain)) != NULL)
			return hcm;
	}
	return route_chain_hcm(json_object_get(jl, "default_filter_chain"));
}

/* direct_response.body, a DataSource; -1 with the reason in err. */
static int
route_body(struct route *rt, json_t *body, char *err, size_t errlen)
{
	const char	*s;
	FILE		*f;
	char		 buf[4096];
	size_t		 n;

	if (body == NULL)
		return 0;
	if ((s = json_string_value(json_object_get(body, "inline_string")))
	    != NULL) {
		rt->rt_body = xstrdup(s);
		rt->rt_body_len = strlen(s);
		return 0;
	}
	if ((s = json_string_value(json_object_get(body, "filename"))) ==
	    NULL) {
		snprintf(err, errlen, "direct_response.body: envoy-emu reads "
		    "inline_string or filename only");
		return -1;
	}
	if ((f = fopen(s, "r")) == NULL) {
		snprintf(err, errlen, "direct_response.body: cannot read "
		    "'%s'", s);
		return -1;
	}
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		rt->rt_body = xrealloc(rt->rt_body, rt->rt_body_len + n + 1);
		memcpy(rt->rt_body + rt->rt_body_len, buf, n);
		rt->rt_body_len += n;
		rt->rt_body[rt->rt_body_len] = '\0';
	}
	fclose(f);
	return 0;
}

static int
route_parse_match(struct route *rt, json_t *m, char *err, size_t errlen)
{
	const char	*key, *s = NULL;
	json_t		*v;
	char		*re;
	int		 n = 0, flags = REG_EXTENDED | REG_NOSUB;

	if (!json_is_object(m)) {
		snprintf(err, errlen, "route: no match");
		return -1;
	}
	json_object_foreach(m, key, v) {
		if (!route_in(route_match_known, key)) {
			snprintf(err, errlen, "route match '%s' is not "
			    "supported by envoy-emu", key);
			return -1;
		}
	}
	rt->rt_nocase = json_is_false(json_object_get(m, "case_sensitive"));
	if ((v = json_object_get(m, "prefix")) != NULL) {
		rt->rt_match = RM_PREFIX;
		s = json_string_value(v);
		n++;
	}
	if ((v = json_object_get(m, "path")) != NULL) {
		rt->rt_match = RM_PATH;
		s = json_string_value(v);
		n++;
	}
	if ((v = json_object_get(m, "path_separated_prefix")) != NULL) {
		rt->rt_match = RM_SEPARATED_PREFIX;
		s = json_string_value(v);
		n++;
	}
	if ((v = json_object_get(m, "safe_regex")) != NULL) {
		rt->rt_match = RM_REGEX;
		s = json_string_value(json_object_get(v, "regex"));
		n++;
	}
	if (n != 1 || s == NULL) {
		snprintf(err, errlen, "route match needs exactly one of prefix, "
		    "path, path_separated_prefix, safe_regex (a string)");
		return -1;
	}
	rt->rt_value = xstrdup(s);
	if (rt->rt_match != RM_REGEX)
		return 0;
	xasprintf(&re, "^(%s)$", s);
	if (rt->rt_nocase)
		flags |= REG_ICASE;
	n = regcomp(&rt->rt_re, re, flags);
	free(re);
	if (n != 0) {
		snprintf(err, errlen, "route match: bad regex '%s'", s);
		return -1;
	}
	rt->rt_has_re = 1;
	return 0;
}

static int
route_parse_action(struct route *rt, json_t *jr, int validate, char *err,
    size_t errlen)
{
	json_t		*ra, *dr, *v;
	const char	*key, *name, *timeout;
	char		 why[128];

	if ((ra = json_object_get(jr, "route")) != NULL) {
		json_object_foreach(ra, key, v) {
			if (route_in(route_action_refused, key)) {
				snprintf(err, errlen, "route action '%s' is "
				    "not supported by envoy-emu", key);
				return -1;
			}
		}
		if ((name = json_string_value(json_object_get(ra, "cluster")))
		    == NULL) {
			snprintf(err, errlen, "route action: no cluster");
			return -1;
		}
		rt->rt_kind = ROUTE_CLUSTER;
		rt->rt_cluster_name = xstrdup(name);
		rt->rt_cluster = cluster_find(name);
		if (rt->rt_cluster == NULL && validate) {
			snprintf(err, errlen, "route: unknown cluster '%s'",
			    name);
			return -1;
		}
		rt->rt_timeout = ROUTE_DEFAULT_TIMEOUT;
		timeout = json_string_value(json_object_get(ra, "timeout"));
		if (timeout != NULL && duration_parse(timeout,
		    &rt->rt_timeout, why, sizeof(why)) == -1) {
			snprintf(err, errlen, "route action timeout: %s", why);
			return -1;
		}
		return 0;
	}
	if ((dr = json_object_get(jr, "direct_response")) != NULL) {
		v = json_object_get(dr, "status");
		if (!json_is_integer(v) || json_integer_value(v) < 200 ||
		    json_integer_value(v) > 599) {
			snprintf(err, errlen, "direct_response.status must be "
			    "an integer in [200, 600)");
			return -1;
		}
		rt->rt_kind = ROUTE_DIRECT;
		rt->rt_status = (int)json_integer_value(v);
		return route_body(rt, json_object_get(dr, "body"), err,
		    errlen);
	}
	snprintf(err, errlen, "route: envoy-emu implements the route and "
	    "direct_response actions only");
	return -1;
}

static int
route_parse_vhost(struct route_vhost *vh, json_t *jv, int validate,
    char *err, size_t errlen)
{
	json_t		*d, *jr;
	const char	*name;
	size_t		 i;

	name = json_string_value(json_object_get(jv, "name"));
	vh->vh_name = xstrdup(name != NULL ? name : "");
	json_array_foreach(json_object_get(jv, "domains"), i, d) {
		if (!json_is_string(d) || *json_string_value(d) == '\0')
			continue;
		vh->vh_domains = xrealloc(vh->vh_domains,
		    (vh->vh_ndomains + 1) * sizeof(*vh->vh_domains));
		vh->vh_domains[vh->vh_ndomains++] =
		    xstrdup(json_string_value(d));
	}
	if (vh->vh_ndomains == 0) {
		snprintf(err, errlen, "virtual host '%s': no domains",
		    vh->vh_name);
		return -1;
	}
	json_array_foreach(json_object_get(jv, "routes"), i, jr) {
		struct route	*rt;

		vh->vh_routes = xrealloc(vh->vh_routes,
		    (vh->vh_nroutes + 1) * sizeof(*vh->vh_routes));
		rt = &vh->vh_routes[vh->vh_nroutes++];
		memset(rt, 0, sizeof(*rt));
		if (route_parse_match(rt, json_object_get(jr, "match"), err,
		    errlen) == -1 ||
		    route_parse_action(rt, jr, validate, err, errlen) == -1)
			return -1;
	}
	return 0;
}

/*
 * The routes of listener jl (named name, for messages). *out is NULL when
 * the listener has no HTTP connection manager with an inline route_config.
 * -1 with the reason in err; *out is then freed already.
 */
int
route_config_new(json_t *jl, const char *name, struct route_config **out,
    char *err, size_t errlen)
{
	struct route_config	*rc;
	json_t			*hcm, *jrc, *jv;
	const char		*prefix;
	size_t			 i;
	int			 validate;

	*out = NULL;
	if ((hcm = route_find_hcm(jl)) == NULL)
		return 0;
	prefix = json_string_value(json_object_get(hcm, "stat_prefix"));
	if (prefix == NULL || *prefix == '\0') {
		snprintf(err, errlen, "listener '%s': HttpConnectionManager "
		    "needs a stat_prefix", name);
		return -1;
	}
	if ((jrc = json_object_get(hcm, "route_config")) == NULL) {
		elog_warn("config", "listener '%s': a connection manager "
		    "without route_config (rds, scoped_routes) is not "
		    "modelled; envoy-emu answers it itself", name);
		return 0;
	}
	rc = xcalloc(1, sizeof(*rc));
	rc->rc_prefix = xstrdup(prefix);
	rc->rc_rq_total = stats_counter("http.%s.downstream_rq_total", prefix);
	rc->rc_no_route = stats_counter("http.%s.no_route", prefix);
	rc->rc_no_cluster = stats_counter("http.%s.no_cluster", prefix);
	rc->rc_direct = stats_counter("http.%s.rq_direct_response", prefix);
	validate = !json_is_false(json_object_get(jrc, "validate_clusters"));
	json_array_foreach(json_object_get(jrc, "virtual_hosts"), i, jv) {
		rc->rc_vhosts = xrealloc(rc->rc_vhosts,
		    (rc->rc_nvhosts + 1) * sizeof(*rc->rc_vhosts));
		memset(&rc->rc_vhosts[rc->rc_nvhosts], 0,
		    sizeof(*rc->rc_vhosts));
		rc->rc_nvhosts++;
		if (route_parse_vhost(&rc->rc_vhosts[rc->rc_nvhosts - 1], jv,
		    validate, err, errlen) == -1) {
			route_config_free(rc);
			return -1;
		}
	}
	*out = rc;
	return 0;
}

void
route_config_free(struct route_config *rc)
{
	struct route_vhost	*vh;
	struct route		*rt;
	size_t			 i, j;

	if (rc == NULL)
		return;
	for (i = 0; i < rc->rc_nvhosts; i++) {
		vh = &rc->rc_vhosts[i];
		for (j = 0; j < vh->vh_ndomains; j++)
			free(vh->vh_domains[j]);
		for (j = 0; j < vh->vh_nroutes; j++) {
			rt = &vh->vh_routes[j];
			if (rt->rt_has_re)
				regfree(&rt->rt_re);
			free(rt->rt_value);
			free(rt->rt_cluster_name);
			free(rt->rt_body);
		}
		free(vh->vh_domains);
		free(vh->vh_routes);
		free(vh->vh_name);
	}
	free(rc->rc_vhosts);
	free(rc->rc_prefix);
	free(rc);
}

/* A request reached the connection manager. */
void
route_request(struct route_config *rc)
{
	stats_inc(rc->rc_rq_total);
}

static int
route_has_suffix(const char *s, size_t slen, const char *suffix, size_t n)
{
	return slen >= n && strncasecmp(s + slen - n, suffix, n) == 0;
}

/* The virtual host for host, in Envoy's order (see the top). */
static struct route_vhost *
route_vhost_for(struct route_config *rc, const char *host)
{
	struct route_vhost	*vh, *suffix = NULL, *prefix = NULL;
	struct route_vhost	*any = NULL;
	size_t			 i, j, dl, hl = strlen(host);
	size_t			 best_suffix = 0, best_prefix = 0;
	const char		*d;

	for (i = 0; i < rc->rc_nvhosts; i++) {
		vh = &rc->rc_vhosts[i];
		for (j = 0; j < vh->vh_ndomains; j++) {
			d = vh->vh_domains[j];
			dl = strlen(d);
			if (strcmp(d, "*") == 0) {
				if (any == NULL)
					any = vh;
			} else if (d[0] == '*') {
				/* The wildcard stands for one byte or more. */
				if (hl > dl - 1 && dl - 1 > best_suffix &&
				    route_has_suffix(host, hl, d + 1, dl - 1)) {
					suffix = vh;
					best_suffix = dl - 1;
				}
			} else if (d[dl - 1] == '*') {
				if (hl > dl - 1 && dl - 1 > best_prefix &&
				    strncasecmp(host, d, dl - 1) == 0) {
					prefix = vh;
					best_prefix = dl - 1;
				}
			} else if (strcasecmp(d, host) == 0)
				return vh;
		}
	}
	if (suffix != NULL)
		return suffix;
	if (prefix != NULL)
		return prefix;
	return any;
}

static int
route_matches(struct route *rt, const char *target)
{
	size_t	plen = strcspn(target, "?#"), vlen = strlen(rt->rt_value);
	char	*path;
	int	 rc;

	switch (rt->rt_match) {
	case RM_PREFIX:
		return (rt->rt_nocase ? strncasecmp(target, rt->rt_value,
		    vlen) : strncmp(target, rt->rt_value, vlen)) == 0;
	case RM_PATH:
		return plen == vlen && (rt->rt_nocase ? strncasecmp(target,
		    rt->rt_value, vlen) : strncmp(target, rt->rt_value,
		    vlen)) == 0;
	case RM_SEPARATED_PREFIX:
		return plen >= vlen && (rt->rt_nocase ? strncasecmp(target,
		    rt->rt_value, vlen) : strncmp(target, rt->rt_value,
		    vlen)) == 0 && (plen == vlen || target[vlen] == '/');
	case RM_REGEX:
		path = xmalloc(plen + 1);
		memcpy(path, target, plen);
		path[plen] = '\0';
		rc = regexec(&rt->rt_re, path, 0, NULL, 0) == 0;
		free(path);
		return rc;
	}
	return 0;
}

/* The route for a request with this Host header and target, or NULL. */
static struct route *
route_find(struct route_config *rc, const char *host, const char *target)
{
	struct route_vhost	*vh;
	size_t			 i;

	if ((vh = route_vhost_for(rc, host)) == NULL)
		return NULL;
	for (i = 0; i < vh->vh_nroutes; i++) {
		if (route_matches(&vh->vh_routes[i], target))
			return &vh->vh_routes[i];
	}
	return NULL;
}

/*
 * Picks the route for a request with this Host header and request target,
 * and counts the router's stats.
 */
void
route_select(struct route_config *rc, const char *host, const char *target,
    struct route_result *res)
{
	struct route	*rt;

	memset(res, 0, sizeof(*res));
	res->rr_kind = ROUTE_NONE;
	if ((rt = route_find(rc, host, target)) == NULL) {
		elog_debug("router", "no route match for URL '%s'", target);
		stats_inc(rc->rc_no_route);
		return;
	}
	res->rr_kind = rt->rt_kind;
	if (rt->rt_kind == ROUTE_DIRECT) {
		res->rr_status = rt->rt_status;
		res->rr_body = rt->rt_body;
		res->rr_body_len = rt->rt_body_len;
		stats_inc(rc->rc_direct);
		return;
	}
	res->rr_cluster_name = rt->rt_cluster_name;
	res->rr_cluster = rt->rt_cluster;
	res->rr_timeout_ns = rt->rt_timeout;
	if (rt->rt_cluster == NULL) {
		elog_debug("router", "unknown cluster '%s'",
		    rt->rt_cluster_name);
		stats_inc(rc->rc_no_cluster);
		return;
	}
	elog_debug("router", "cluster '%s' match for URL '%s'",
	    rt->rt_cluster_name, target);
}
