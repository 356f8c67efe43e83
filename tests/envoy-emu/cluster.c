/*
 * The static clusters (static_resources.clusters[]): where a route of a
 * static listener (route.c) sends a request. What is read of each cluster:
 *
 *   name                 required, unique
 *   type                 STATIC (the default): IP addresses or pipes only;
 *                        STRICT_DNS, LOGICAL_DNS: a name resolved when a
 *                        request needs it (upstream.c); EDS, ORIGINAL_DST
 *                        and custom cluster_type: no endpoints here
 *   connect_timeout      a protobuf Duration, Envoy's default 5s
 *   dns_lookup_family    V4_ONLY and V6_ONLY are honoured; otherwise the
 *                        first address the resolver gives
 *   load_assignment      endpoints[].lb_endpoints[].endpoint.address with
 *                        a socket_address (address, port_value) or a pipe
 *                        (path, '@' for the abstract namespace)
 *
 * Endpoints are taken in turn (round robin); a cluster without one answers
 * 503 "no healthy upstream", as Envoy does. Health checking, circuit
 * breakers, TLS and HTTP/2 upstreams are not modelled: requests go out as
 * HTTP/1.1 in clear text (see upstream.c).
 *
 * Each cluster has Envoy's stats, created with the cluster as Envoy does
 * (so unused until written): see struct cluster_stats in emu.h.
 */
#include <sys/socket.h>
#include <sys/un.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "emu.h"

#define CLUSTER_CONNECT_TIMEOUT	(5 * 1000000000LL)	/* Envoy's */

struct cluster {
	char			*cl_name;
	int64_t			 cl_connect_timeout;
	int			 cl_family;	/* for DNS: AF_UNSPEC, ... */
	struct cluster_endpoint	*cl_eps;
	size_t			 cl_neps, cl_next;
	struct cluster_stats	 cl_st;
};

static struct cluster	**cluster_all;
static size_t		  cluster_n;

struct cluster *
cluster_find(const char *name)
{
	size_t	i;

	for (i = 0; i < cluster_n; i++) {
		if (strcmp(cluster_all[i]->cl_name, name) == 0)
			return cluster_all[i];
	}
	return NULL;
}

const char *
cluster_name(const struct cluster *cl)
{
	return cl->cl_name;
}

int64_t
cluster_connect_timeout(const struct cluster *cl)
{
	return cl->cl_connect_timeout;
}

int
cluster_family(const struct cluster *cl)
{
	return cl->cl_family;
}

struct cluster_stats *
cluster_stats(struct cluster *cl)
{
	return &cl->cl_st;
}

/* The next endpoint in turn, or NULL when the cluster has none. */
const struct cluster_endpoint *
cluster_pick(struct cluster *cl)
{
	if (cl->cl_neps == 0)
		return NULL;
	return &cl->cl_eps[cl->cl_next++ % cl->cl_neps];
}

/* One endpoint.address; -1 with the reason in err. */
static int
cluster_address(struct cluster *cl, json_t *addr, int dns, char *err,
    size_t errlen)
{
	struct cluster_endpoint	 ep, *ce;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ep.ce_addr;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ep.ce_addr;
	struct sockaddr_un	*sun = (struct sockaddr_un *)&ep.ce_addr;
	json_t			*sa, *pipe, *port;
	const char		*host, *path;
	json_int_t		 p;

	memset(&ep, 0, sizeof(ep));
	if ((pipe = json_object_get(addr, "pipe")) != NULL) {
		path = json_string_value(json_object_get(pipe, "path"));
		if (path == NULL || *path == '\0' ||
		    strlen(path) >= sizeof(sun->sun_path)) {
			snprintf(err, errlen, "cluster '%s': a pipe needs a "
			    "path shorter than %zu bytes", cl->cl_name,
			    sizeof(sun->sun_path));
			return -1;
		}
		ep.ce_kind = CLUSTER_EP_PIPE;
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, path, strlen(path));
		ep.ce_addrlen = offsetof(struct sockaddr_un, sun_path) +
		    strlen(path);
		if (path[0] == '@')
			sun->sun_path[0] = '\0';	/* abstract */
		else
			ep.ce_addrlen++;		/* the NUL */
		ep.ce_desc = xstrdup(path);
		goto add;
	}
	if ((sa = json_object_get(addr, "socket_address")) == NULL) {
		elog_debug("upstream", "cluster '%s': an endpoint without a "
		    "socket_address or pipe: ignored", cl->cl_name);
		return 0;
	}
	host = json_string_value(json_object_get(sa, "address"));
	port = json_object_get(sa, "port_value");
	p = json_integer_value(port);
	if (host == NULL || !json_is_integer(port) || p < 0 || p > 65535) {
		snprintf(err, errlen, "cluster '%s': socket_address needs an "
		    "address and a port_value in 0-65535", cl->cl_name);
		return -1;
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		ep.ce_kind = CLUSTER_EP_ADDR;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		ep.ce_addrlen = sizeof(*sin);
		xasprintf(&ep.ce_desc, "%s:%d", host, (int)p);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		ep.ce_kind = CLUSTER_EP_ADDR;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		ep.ce_addrlen = sizeof(*sin6);
		xasprintf(&ep.ce_desc, "[%s]:%d", host, (int)p);
	} else if (dns) {
		ep.ce_kind = CLUSTER_EP_DNS;
		ep.ce_host = xstrdup(host);
		ep.ce_port = (int)p;
		xasprintf(&ep.ce_desc, "%s:%d", host, (int)p);
	} else {
		/* Envoy's message for a name in a STATIC cluster. */
		snprintf(err, errlen, "malformed IP address: %s", host);
		return -1;
	}
add:
	cl->cl_eps = xrealloc(cl->cl_eps,
	    (cl->cl_neps + 1) * sizeof(*cl->cl_eps));
	ce = &cl->cl_eps[cl->cl_neps++];
	*ce = ep;
	return 0;
}

static int
cluster_endpoints(struct cluster *cl, json_t *jc, int dns, char *err,
    size_t errlen)
{
	json_t	*eps, *le, *lbs, *lb;
	size_t	 i, j;

	eps = json_object_get(json_object_get(jc, "load_assignment"),
	    "endpoints");
	json_array_foreach(eps, i, le) {
		lbs = json_object_get(le, "lb_endpoints");
		json_array_foreach(lbs, j, lb) {
			if (cluster_address(cl, json_object_get(
			    json_object_get(lb, "endpoint"), "address"), dns,
			    err, errlen) == -1)
				return -1;
		}
	}
	return 0;
}

static void
cluster_make_stats(struct cluster *cl)
{
	struct cluster_stats	*cs = &cl->cl_st;
	const char		*n = cl->cl_name;

	cs->cs_rq_total = stats_counter("cluster.%s.upstream_rq_total", n);
	cs->cs_rq_completed = stats_counter("cluster.%s.upstream_rq_completed",
	    n);
	cs->cs_rq_timeout = stats_counter("cluster.%s.upstream_rq_timeout", n);
	cs->cs_rq_pending_total =
	    stats_counter("cluster.%s.upstream_rq_pending_total", n);
	cs->cs_rq_pending_fail =
	    stats_counter("cluster.%s.upstream_rq_pending_failure_eject", n);
	cs->cs_cx_total = stats_counter("cluster.%s.upstream_cx_total", n);
	cs->cs_cx_connect_fail =
	    stats_counter("cluster.%s.upstream_cx_connect_fail", n);
	cs->cs_cx_connect_timeout =
	    stats_counter("cluster.%s.upstream_cx_connect_timeout", n);
	cs->cs_cx_none_healthy =
	    stats_counter("cluster.%s.upstream_cx_none_healthy", n);
}

static int
cluster_add(json_t *jc, size_t index, char *err, size_t errlen)
{
	struct cluster	*cl;
	const char	*name, *type, *family, *timeout;
	char		 why[128];
	int		 dns;

	name = json_string_value(json_object_get(jc, "name"));
	if (name == NULL || *name == '\0') {
		snprintf(err, errlen, "cluster %zu: no name", index);
		return -1;
	}
	if (cluster_find(name) != NULL) {
		snprintf(err, errlen, "cluster manager: duplicate cluster "
		    "'%s' found", name);
		return -1;
	}
	cl = xcalloc(1, sizeof(*cl));
	cl->cl_name = xstrdup(name);
	cl->cl_connect_timeout = CLUSTER_CONNECT_TIMEOUT;
	cl->cl_family = AF_UNSPEC;
	cluster_all = xrealloc(cluster_all,
	    (cluster_n + 1) * sizeof(*cluster_all));
	cluster_all[cluster_n++] = cl;
	cluster_make_stats(cl);

	timeout = json_string_value(json_object_get(jc, "connect_timeout"));
	if (timeout != NULL && duration_parse(timeout,
	    &cl->cl_connect_timeout, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "cluster '%s': connect_timeout: %s",
		    name, why);
		return -1;
	}
	family = json_string_value(json_object_get(jc, "dns_lookup_family"));
	if (family != NULL && strcmp(family, "V4_ONLY") == 0)
		cl->cl_family = AF_INET;
	else if (family != NULL && strcmp(family, "V6_ONLY") == 0)
		cl->cl_family = AF_INET6;
	type = json_string_value(json_object_get(jc, "type"));
	if (json_object_get(jc, "cluster_type") != NULL ||
	    (type != NULL && (strcmp(type, "EDS") == 0 ||
	    strcmp(type, "ORIGINAL_DST") == 0))) {
		elog_debug("upstream", "cluster '%s': no static endpoints",
		    name);
		return 0;
	}
	dns = type != NULL && (strcmp(type, "STRICT_DNS") == 0 ||
	    strcmp(type, "LOGICAL_DNS") == 0);
	return cluster_endpoints(cl, jc, dns, err, errlen);
}

/* Reads static_resources.clusters; -1 with the reason in err. */
int
cluster_configure(struct emu *e, char *err, size_t errlen)
{
	json_t	*arr, *jc;
	size_t	 i;

	arr = json_object_get(json_object_get(e->e_config, "static_resources"),
	    "clusters");
	json_array_foreach(arr, i, jc) {
		if (cluster_add(jc, i, err, errlen) == -1)
			return -1;
	}
	return 0;
}

void
cluster_free(void)
{
	size_t	i, j;

	for (i = 0; i < cluster_n; i++) {
		struct cluster	*cl = cluster_all[i];

		for (j = 0; j < cl->cl_neps; j++) {
			free(cl->cl_eps[j].ce_host);
			free(cl->cl_eps[j].ce_desc);
		}
		free(cl->cl_eps);
		free(cl->cl_name);
		free(cl);
	}
	free(cluster_all);
	cluster_all = NULL;
	cluster_n = 0;
}
