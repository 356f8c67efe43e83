/*
 * Rendering the Envoy bootstrap: the same document Istio's template
 * (tools/packaging/common/envoy_bootstrap.json) produces, built as a jansson
 * tree rather than by text substitution, so that no value from the
 * environment can break the JSON. Envoy parses it with the protobuf JSON
 * parser, which rejects unknown fields: every name here is one of
 * envoy.config.bootstrap.v3.Bootstrap's, and the tests check the output
 * against Envoy's own .proto files.
 *
 * What differs from Istio's template: no 15090 listener and no
 * prometheus_stats cluster (the agent serves 15090 itself), no SDS cluster
 * (certificates are files), and the admin and agent addresses are always
 * 127.0.0.1 because the agent talks to them there.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"

#define HTTP_PROTOCOL_OPTIONS \
	"envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
#define TYPE_URL(t)	"type.googleapis.com/" t

/* A reference to a new JSON object built by json_pack; the format is ours. */
static json_t *
render_pack(const char *fmt, ...)
{
	json_error_t	 error;
	json_t		*v;
	va_list		 ap;

	va_start(ap, fmt);
	v = json_vpack_ex(&error, 0, fmt, ap);
	va_end(ap);
	if (v == NULL)
		fatalx("bootstrap: json_pack: %s", error.text);
	return v;
}

/* A duration in the protobuf JSON form ("45s", "0.250s"). */
void
bootstrap_pb_duration(int64_t ns, char *buf, size_t len)
{
	int64_t	 s = ns / 1000000000LL, frac = ns % 1000000000LL;

	if (frac == 0)
		snprintf(buf, len, "%llds", (long long)s);
	else if (frac % 1000000 == 0)
		snprintf(buf, len, "%lld.%03llds", (long long)s,
		    (long long)(frac / 1000000));
	else if (frac % 1000 == 0)
		snprintf(buf, len, "%lld.%06llds", (long long)s,
		    (long long)(frac / 1000));
	else
		snprintf(buf, len, "%lld.%09llds", (long long)s,
		    (long long)frac);
}

/* True when every instance IP is IPv6: the proxy then listens on "::". */
int
bootstrap_ipv6_only(const struct config *cf)
{
	unsigned char	 addr[16];
	int		 i;

	if (cf->cf_nips == 0)
		return 0;
	for (i = 0; i < cf->cf_nips; i++) {
		if (inet_pton(AF_INET6, cf->cf_ips[i], addr) != 1)
			return 0;
	}
	return 1;
}

static json_t *
render_socket_address(const char *addr, int port)
{
	return render_pack("{s:{s:s, s:s, s:i}}", "socket_address",
	    "protocol", "TCP", "address", addr, "port_value", port);
}

static json_t *
render_load_assignment(const char *name, json_t *address)
{
	return render_pack("{s:s, s:[{s:[{s:{s:o}}]}]}", "cluster_name", name,
	    "endpoints", "lb_endpoints", "endpoint", "address", address);
}

static json_t *
render_http2_options(void)
{
	return render_pack("{s:{s:s, s:{s:{}}}}", HTTP_PROTOCOL_OPTIONS,
	    "@type", TYPE_URL(HTTP_PROTOCOL_OPTIONS),
	    "explicit_http_config", "http2_protocol_options");
}

static json_t *
render_static_cluster(const char *name, const char *timeout, json_t *address)
{
	return render_pack("{s:s, s:s, s:s, s:s, s:o}", "name", name,
	    "type", "STATIC", "connect_timeout", timeout,
	    "lb_policy", "ROUND_ROBIN",
	    "load_assignment", render_load_assignment(name, address));
}

/* The cluster of the ADS stream: the agent's relay on <configPath>/XDS. */
static json_t *
render_xds_cluster(const struct config *cf)
{
	json_t	*c, *thresholds;
	char	*pipe, timeout[32];

	xasprintf(&pipe, "%s/XDS", cf->cf_config_path);
	bootstrap_pb_duration(cf->cf_connect_timeout, timeout,
	    sizeof(timeout));
	c = render_static_cluster("xds-grpc", timeout,
	    render_pack("{s:{s:s}}", "pipe", "path", pipe));
	free(pipe);
	thresholds = render_pack("[{s:s, s:i, s:i, s:i}, {s:s, s:i, s:i, s:i}]",
	    "priority", "DEFAULT", "max_connections", 100000,
	    "max_pending_requests", 100000, "max_requests", 100000,
	    "priority", "HIGH", "max_connections", 100000,
	    "max_pending_requests", 100000, "max_requests", 100000);
	json_object_set_new(c, "circuit_breakers",
	    render_pack("{s:o}", "thresholds", thresholds));
	json_object_set_new(c, "upstream_connection_options",
	    render_pack("{s:{s:i}}", "tcp_keepalive", "keepalive_time", 300));
	json_object_set_new(c, "typed_extension_protocol_options",
	    render_http2_options());
	return c;
}

/*
 * Splits "host:port" or "[v6]:port" as Go's net.SplitHostPort does. The
 * host is copied into host, the port checked.
 */
int
bootstrap_split_hostport(const char *s, char *host, size_t hostlen,
    int *port)
{
	const char	*colon, *h = s, *p;
	size_t		 n;
	char		*end;
	long		 v;

	if (*s == '[') {
		if ((p = strchr(s, ']')) == NULL || p[1] != ':')
			return -1;
		h = s + 1;
		n = (size_t)(p - h);
		colon = p + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL ||
		    memchr(s, ':', (size_t)(colon - s)) != NULL)
			return -1;
		n = (size_t)(colon - s);
	}
	if (n == 0 || n >= hostlen)
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	v = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || v < 1 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

static json_t *
render_zipkin_cluster(const struct config *cf, const char *host, int port)
{
	json_t	*c;

	c = render_pack("{s:s, s:s, s:b, s:s, s:s, s:s, s:s}", "name", "zipkin",
	    "type", "STRICT_DNS", "respect_dns_ttl", 1,
	    "dns_lookup_family", bootstrap_ipv6_only(cf) ? "V6_ONLY" :
	    "V4_ONLY", "dns_refresh_rate", "30s", "connect_timeout", "1s",
	    "lb_policy", "ROUND_ROBIN");
	json_object_set_new(c, "load_assignment",
	    render_load_assignment("zipkin", render_pack("{s:{s:s, s:i}}",
	    "socket_address", "address", host, "port_value", port)));
	return c;
}

static json_t *
render_tracing(void)
{
	return render_pack("{s:{s:s, s:{s:s, s:s, s:s, s:s, s:b, s:b}}}",
	    "http", "name", "envoy.tracers.zipkin", "typed_config",
	    "@type", TYPE_URL("envoy.config.trace.v3.ZipkinConfig"),
	    "collector_cluster", "zipkin",
	    "collector_endpoint", "/api/v2/spans",
	    "collector_endpoint_version", "HTTP_JSON",
	    "trace_id_128bit", 1, "shared_span_context", 0);
}

/*
 * The proxy's health listener (ENVOY_STATUS_PORT, 15021): Kubernetes probes
 * it, and it forwards /healthz/ready to the agent's status port, so the
 * probe sees the agent's view of readiness through the proxy.
 */
static json_t *
render_health_listener(const struct config *cf)
{
	const char	*wildcard = bootstrap_ipv6_only(cf) ? "::" : "0.0.0.0";
	json_t		*hcm, *l;

	hcm = render_pack("{s:s, s:s, s:s, s:{s:[{s:s, s:[s], s:[{s:{s:s},"
	    " s:{s:s}}]}]}, s:[{s:s, s:{s:s}}]}",
	    "@type", TYPE_URL("envoy.extensions.filters.network."
	    "http_connection_manager.v3.HttpConnectionManager"),
	    "codec_type", "AUTO", "stat_prefix", "agent",
	    "route_config", "virtual_hosts", "name", "backend",
	    "domains", "*", "routes", "match", "prefix", "/healthz/ready",
	    "route", "cluster", "agent",
	    "http_filters", "name", "envoy.filters.http.router",
	    "typed_config", "@type",
	    TYPE_URL("envoy.extensions.filters.http.router.v3.Router"));
	/*
	 * No name, as in Istio's template: Envoy names it itself. A static
	 * listener named like one istiod sends ("0.0.0.0_15021") would make
	 * Envoy ignore that LDS listener.
	 */
	l = render_pack("{s:o, s:[{s:[{s:s, s:o}]}]}",
	    "address", render_socket_address(wildcard,
	    cf->cf_envoy_status_port), "filter_chains", "filters",
	    "name", "envoy.filters.network.http_connection_manager",
	    "typed_config", hcm);
	return l;
}

/* Tag extraction as in Istio's template, so that metric names match. */
static json_t *
render_stats_config(void)
{
	static const char *const tags[][2] = {
		{ "cluster_name",
		  "^cluster\\.((.+?(\\..+?\\.svc\\.cluster\\.local)?)\\.)" },
		{ "tcp_prefix", "^tcp\\.((.*?)\\.)\\w+?$" },
		{ "response_code", "_rq(_(\\d{3}))$" },
		{ "response_code_class", "_rq(_(\\dxx))$" },
		{ "http_conn_manager_listener_prefix",
		  "^listener(?=\\.).*?\\.http\\.(((?:[_.[:digit:]]*|"
		  "[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)" },
		{ "http_conn_manager_prefix",
		  "^http\\.(((?:[_.[:digit:]]*|"
		  "[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)" },
		{ "listener_address",
		  "^listener\\.(((?:[_.[:digit:]]*|"
		  "[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)" },
		{ "mongo_prefix",
		  "^mongo\\.(.+?)\\.(collection|cmd|cx_|op_|delays_|"
		  "decoding_)(.*?)$" },
		{ "cache", "(cache\\.(.+?)\\.)" },
		{ "component", "(component\\.(.+?)\\.)" },
		{ "tag", "(tag\\.(.+?);\\.)" },
		{ "wasm_filter", "(wasm_filter\\.(.+?)\\.)" },
		{ "authz_enforce_result", "rbac(\\.(allowed|denied))" },
		{ "authz_dry_run_action", "(\\.istio_dry_run_(allow|deny)_)" },
		{ "authz_dry_run_result", "(\\.shadow_(allowed|denied))" },
	};
	json_t	*list;
	size_t	 i;

	list = json_array();
	for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
		json_array_append_new(list, render_pack("{s:s, s:s}",
		    "tag_name", tags[i][0], "regex", tags[i][1]));
	return render_pack("{s:b, s:o, s:{s:{s:[{s:s}, {s:s}, {s:s}]}}}",
	    "use_all_default_tags", 0, "stats_tags", list,
	    "stats_matcher", "inclusion_list", "patterns",
	    "prefix", "reporter=", "prefix", "component", "prefix", "istio");
}

/*
 * The runtime: a static layer with Istio's global settings, then an admin
 * layer so that "POST /runtime_modify" works.
 */
static json_t *
render_runtime(void)
{
	return render_pack("{s:[{s:s, s:{s:i, s:i}}, {s:s, s:{}}]}", "layers",
	    "name", "global config", "static_layer",
	    "overload.global_downstream_max_connections", 2147483647,
	    "re2.max_program_size.error_level", 32768,
	    "name", "admin", "admin_layer");
}

static int
render_utf8(const char *s)
{
	json_t	*v;

	if (s == NULL)
		return 1;
	if ((v = json_string(s)) == NULL)
		return 0;
	json_decref(v);
	return 1;
}

/*
 * Every text of the configuration that reaches the document must be UTF-8,
 * as JSON's strings are: flags and variables are checked here, so that a
 * stray byte is a message naming its source rather than a broken render.
 */
static int
render_check_text(const struct config *cf, char *err, size_t errlen)
{
	const struct config_flag *cg;
	const struct {
		const char	*name;
		const char	*value;
	} vars[] = {
		{ "POD_NAME", cf->cf_pod_name },
		{ "POD_NAMESPACE", cf->cf_pod_namespace },
		{ "SERVICE_ACCOUNT", cf->cf_service_account },
		{ "ISTIO_META_CLUSTER_ID", cf->cf_cluster_id },
		{ "HOST_IP", cf->cf_host_ip },
	};
	size_t	 i;

	for (cg = config_flags; cg->cg_name != NULL; cg++) {
		if (cg->cg_type == CT_STRING && !render_utf8(*(char *const *)
		    (const void *)((const char *)cf + cg->cg_offset))) {
			snprintf(err, errlen, "invalid argument for \"--%s\" "
			    "flag: not valid UTF-8", cg->cg_name);
			return -1;
		}
	}
	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		if (!render_utf8(vars[i].value)) {
			snprintf(err, errlen, "invalid %s: not valid UTF-8",
			    vars[i].name);
			return -1;
		}
	}
	return 0;
}

json_t *
bootstrap_render(const struct config *cf, char *err, size_t errlen)
{
	json_t		*doc = NULL, *node = NULL, *clusters, *listeners, *admin;
	json_t		*source;
	char		 zhost[256];
	int		 zport = 0;
	const char	*path, *host_ip;

	if (render_check_text(cf, err, errlen) == -1)
		return NULL;
	if (cf->cf_zipkin_address != NULL && *cf->cf_zipkin_address != '\0' &&
	    bootstrap_split_hostport(cf->cf_zipkin_address, zhost,
	    sizeof(zhost), &zport) == -1) {
		snprintf(err, errlen, "invalid argument \"%s\" for "
		    "\"--zipkinAddress\" flag: expected host:port",
		    cf->cf_zipkin_address);
		return NULL;
	}
	if ((node = bootstrap_node(cf, err, errlen)) == NULL)
		return NULL;

	admin = render_pack("{s:[{s:s, s:{s:s, s:s}}], s:o}", "access_log",
	    "name", "envoy.access_loggers.file", "typed_config",
	    "@type", TYPE_URL("envoy.extensions.access_loggers.file.v3."
	    "FileAccessLog"), "path", "/dev/null",
	    "address", render_socket_address("127.0.0.1",
	    cf->cf_proxy_admin_port));

	clusters = json_array();
	json_array_append_new(clusters, render_static_cluster("agent",
	    "0.250s", render_socket_address("127.0.0.1",
	    cf->cf_status_port)));
	json_array_append_new(clusters, render_xds_cluster(cf));
	if (zport != 0)
		json_array_append_new(clusters,
		    render_zipkin_cluster(cf, zhost, zport));
	listeners = json_array();
	json_array_append_new(listeners, render_health_listener(cf));

	source = render_pack("{s:{}, s:s, s:s}", "ads", "initial_fetch_timeout",
	    "0s", "resource_api_version", "V3");
	doc = render_pack("{s:o, s:o, s:o, s:o, s:{s:O, s:o, s:{s:s, s:b, s:s,"
	    " s:[{s:{s:s}}]}}, s:{s:o, s:o}}",
	    "node", node, "layered_runtime", render_runtime(),
	    "stats_config", render_stats_config(), "admin", admin,
	    "dynamic_resources", "lds_config", source,
	    "cds_config", json_deep_copy(source),
	    "ads_config", "api_type", "GRPC",
	    "set_node_on_first_message_only", 1,
	    "transport_api_version", "V3",
	    "grpc_services", "envoy_grpc", "cluster_name", "xds-grpc",
	    "static_resources", "clusters", clusters, "listeners", listeners);
	json_decref(source);
	if (zport != 0)
		json_object_set_new(doc, "tracing", render_tracing());

	if ((path = cf->cf_bootstrap_override) != NULL && *path != '\0') {
		if ((host_ip = cf->cf_host_ip) == NULL || *host_ip == '\0')
			host_ip = cf->cf_nips > 0 ? cf->cf_ips[0] : "127.0.0.1";
		if (bootstrap_override(doc, path, host_ip, err, errlen) == -1) {
			json_decref(doc);
			return NULL;
		}
	}
	return doc;
}
