/*
 * The ProxyConfig layers of the configuration. Istio assembles a proxy's
 * ProxyConfig as defaults < the mesh config's defaultConfig (--meshConfig, a
 * JSON or YAML MeshConfig) < PROXY_CONFIG (a ProxyConfig as JSON, or YAML)
 * < flags; config_parse applies the defaults, calls proxyconfig_apply, then
 * applies the flags.
 *
 * Each layer sets the fields of struct config that carry a ProxyConfig name
 * in the flag table (config_flags' cg_field), through config_set, so a field
 * is checked exactly as the flag of the same meaning is. tracing.zipkin.address
 * is the one nested field the agent uses. Fields of ProxyConfig the agent has
 * no use for are kept (they reach the control plane in the PROXY_CONFIG node
 * metadata) and fields ProxyConfig does not have are warned about, not fatal.
 * Field names are matched as protobuf's JSON parser does: lowerCamelCase or
 * the original snake_case.
 *
 * A layer merges over the one below as protobuf's JSON unmarshalling into an
 * existing message does: objects member by member, other values replaced.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent.h"

/* ProxyConfig fields that this agent accepts and passes on without use. */
static const char *const proxyconfig_known[] = {
	"availabilityZone", "caCertificatesPem", "customConfigFile",
	"discoveryRefreshDelay", "envoyAccessLogService",
	"envoyMetricsService", "envoyMetricsServiceAddress", "extraStatTags",
	"fileFlushInterval", "fileFlushMinSizeKb", "gatewayTopology",
	"holdApplicationUntilProxyStarts", "image", "interceptionMode",
	"meshId", "privateKeyProvider", "proxyBootstrapTemplatePath",
	"proxyHeaders", "proxyMetadata", "proxyStatsMatcher", "readinessProbe",
	"runtimeValues", "sds", "statNameLength", "statsdUdpAddress",
	"tracing", "zipkinAddress", "trustDomain", "trustDomainAliases",
	"excludeInboundPorts", "clusterName", NULL
};

/* snake_case to lowerCamelCase, as protobuf's JSON names are derived. */
static void
proxyconfig_camel(const char *in, char *out, size_t len)
{
	size_t	 n = 0;
	int	 up = 0;

	for (; *in != '\0' && n + 1 < len; in++) {
		if (*in == '_') {
			up = 1;
			continue;
		}
		out[n++] = up && *in >= 'a' && *in <= 'z' ? *in - 'a' + 'A' :
		    *in;
		up = 0;
	}
	out[n] = '\0';
}

static const struct config_flag *
proxyconfig_field(const char *name)
{
	const struct config_flag *cg;

	for (cg = config_flags; cg->cg_name != NULL; cg++) {
		if (cg->cg_field != NULL && strcmp(cg->cg_field, name) == 0)
			return cg;
	}
	return NULL;
}

static int
proxyconfig_known_field(const char *name)
{
	const char *const *k;

	for (k = proxyconfig_known; *k != NULL; k++) {
		if (strcmp(*k, name) == 0)
			return 1;
	}
	return 0;
}

/*
 * The text config_set expects for a JSON value: durations and strings are
 * strings, numbers may be numbers or strings (protobuf's JSON accepts both),
 * booleans are booleans.
 */
static int
proxyconfig_text(const struct config_flag *cg, json_t *v, char *buf,
    size_t len)
{
	/* The one enum among the fields: protobuf's JSON allows its number. */
	if (strcmp(cg->cg_name, "controlPlaneAuthPolicy") == 0 &&
	    json_is_integer(v)) {
		switch (json_integer_value(v)) {
		case 0:
			snprintf(buf, len, "NONE");
			return 0;
		case 1:
			snprintf(buf, len, "MUTUAL_TLS");
			return 0;
		default:
			return -1;
		}
	}
	switch (cg->cg_type) {
	case CT_STRING:
	case CT_DURATION:
		if (!json_is_string(v))
			return -1;
		snprintf(buf, len, "%s", json_string_value(v));
		return 0;
	case CT_PORT:
	case CT_INT:
		if (json_is_integer(v))
			snprintf(buf, len, "%lld",
			    (long long)json_integer_value(v));
		else if (json_is_string(v))
			snprintf(buf, len, "%s", json_string_value(v));
		else
			return -1;
		return 0;
	case CT_BOOL:
		if (!json_is_boolean(v))
			return -1;
		snprintf(buf, len, "%s", json_is_true(v) ? "true" : "false");
		return 0;
	}
	return -1;
}

/*
 * ProxyConfig's tracer is a oneof: a layer that picks one tracer replaces
 * the tracer of the layers below it, whichever that was.
 */
static const char *const proxyconfig_tracers[] = {
	"zipkin", "lightstep", "datadog", "stackdriver", "openCensusAgent",
	"open_census_agent", NULL
};

static int
proxyconfig_picks_tracer(json_t *tr)
{
	const char *const	*t;
	json_t			*v;

	for (t = proxyconfig_tracers; *t != NULL; t++) {
		if ((v = json_object_get(tr, *t)) != NULL && !json_is_null(v))
			return 1;
	}
	return 0;
}

/* Removes from tr every tracer but keep. */
void
proxyconfig_only_tracer(json_t *tr, const char *keep)
{
	const char *const	*t;

	for (t = proxyconfig_tracers; *t != NULL; t++) {
		if (strcmp(*t, keep) != 0)
			json_object_del(tr, *t);
	}
}

static int
proxyconfig_tracing(struct config *cf, json_t *tr, const char *where,
    char *err, size_t errlen)
{
	json_t	*zk, *addr;

	if (json_is_null(tr))
		return 0;
	if (!json_is_object(tr)) {
		snprintf(err, errlen, "%s.tracing: not an object", where);
		return -1;
	}
	if ((zk = json_object_get(tr, "zipkin")) == NULL || json_is_null(zk)) {
		/* Another tracer replaces a zipkin from below. */
		if (proxyconfig_picks_tracer(tr)) {
			free(cf->cf_zipkin_address);
			cf->cf_zipkin_address = NULL;
		}
		return 0;
	}
	if (!json_is_object(zk) || ((addr = json_object_get(zk, "address")) !=
	    NULL && !json_is_string(addr))) {
		snprintf(err, errlen, "%s.tracing.zipkin: expected "
		    "{\"address\": \"host:port\"}", where);
		return -1;
	}
	if (addr != NULL) {
		free(cf->cf_zipkin_address);
		cf->cf_zipkin_address = xstrdup(json_string_value(addr));
	}
	return 0;
}

/*
 * Applies one layer to cf. where names it in messages: the variable, or
 * the file and "defaultConfig".
 */
static int
proxyconfig_layer(struct config *cf, json_t *pc, const char *where, char *err,
    size_t errlen)
{
	const struct config_flag *cg;
	const char	*key;
	json_t		*v, *mv;
	char		 name[128], text[512], msg[512];
	const char	*mk;

	json_object_foreach(pc, key, v) {
		proxyconfig_camel(key, name, sizeof(name));
		if (strcmp(name, "tracing") == 0) {
			if (proxyconfig_tracing(cf, v, where, err, errlen) == -1)
				return -1;
			continue;
		}
		if (strcmp(name, "proxyMetadata") == 0) {
			if (!json_is_object(v) && !json_is_null(v)) {
				snprintf(err, errlen, "%s.proxyMetadata: not "
				    "an object", where);
				return -1;
			}
			json_object_foreach(v, mk, mv) {
				if (!json_is_string(mv)) {
					snprintf(err, errlen, "%s.proxyMetadata."
					    "%s: not a string", where, mk);
					return -1;
				}
			}
			continue;
		}
		if ((cg = proxyconfig_field(name)) == NULL) {
			if (!proxyconfig_known_field(name))
				log_warnx("%s: unknown ProxyConfig field \"%s\" "
				    "ignored", where, key);
			continue;
		}
		if (json_is_null(v))
			continue;
		if (proxyconfig_text(cg, v, text, sizeof(text)) == -1) {
			snprintf(err, errlen, "%s.%s: wrong type for this "
			    "field", where, key);
			return -1;
		}
		if (config_set(cf, cg, text, "field", msg, sizeof(msg)) == -1) {
			snprintf(err, errlen, "%s.%s: %s", where, key, msg);
			return -1;
		}
	}
	return 0;
}

/*
 * Merges src over dst as protobuf's JSON unmarshalling into dst does. The
 * top level's names are made lowerCamelCase, so that one field has one name
 * in the PROXY_CONFIG metadata whichever spelling each layer used.
 */
static void
proxyconfig_merge(json_t *dst, json_t *src, int top)
{
	const char	*key, *nk;
	json_t		*sv, *dv;
	char		 name[128];

	json_object_foreach(src, key, sv) {
		nk = key;
		if (top && strlen(key) < sizeof(name)) {
			proxyconfig_camel(key, name, sizeof(name));
			nk = name;
		}
		dv = json_object_get(dst, nk);
		if (top && strcmp(nk, "tracing") == 0 && json_is_object(dv) &&
		    json_is_object(sv) && proxyconfig_picks_tracer(sv))
			proxyconfig_only_tracer(dv, "");
		if (json_is_object(dv) && json_is_object(sv))
			proxyconfig_merge(dv, sv, 0);
		else
			json_object_set_new(dst, nk, json_deep_copy(sv));
	}
}

static int
proxyconfig_mesh(struct config *cf, json_t *layers, char *err, size_t errlen)
{
	json_t	*mesh, *dc;
	char	*where;
	int	 rc = -1;

	if ((mesh = document_load(cf->cf_mesh_config, err, errlen)) == NULL)
		return -1;
	xasprintf(&where, "%s: defaultConfig", cf->cf_mesh_config);
	if (json_is_null(mesh)) {
		rc = 0;		/* an empty mesh config: all defaults */
		goto out;
	}
	if (!json_is_object(mesh)) {
		snprintf(err, errlen, "%s: line 1 column 1: a mesh config must "
		    "be an object", cf->cf_mesh_config);
		goto out;
	}
	dc = json_object_get(mesh, "defaultConfig");
	if (dc == NULL)
		dc = json_object_get(mesh, "default_config");
	if (dc == NULL || json_is_null(dc)) {
		rc = 0;
		goto out;
	}
	if (!json_is_object(dc)) {
		snprintf(err, errlen, "%s: not an object", where);
		goto out;
	}
	if (proxyconfig_layer(cf, dc, where, err, errlen) == -1)
		goto out;
	proxyconfig_merge(layers, dc, 1);
	rc = 0;
out:
	free(where);
	json_decref(mesh);
	return rc;
}

int
proxyconfig_apply(struct config *cf, char *err, size_t errlen)
{
	json_t		*layers, *pc = NULL;
	const char	*env;
	int		 rc = -1;

	layers = json_object();
	if (cf->cf_mesh_config != NULL && *cf->cf_mesh_config != '\0' &&
	    proxyconfig_mesh(cf, layers, err, errlen) == -1)
		goto out;
	if ((env = getenv("PROXY_CONFIG")) != NULL && *env != '\0') {
		pc = document_parse(env, strlen(env), "PROXY_CONFIG", err,
		    errlen);
		if (pc == NULL)
			goto out;
		if (!json_is_object(pc) && !json_is_null(pc)) {
			snprintf(err, errlen, "PROXY_CONFIG: line 1 column 1: "
			    "a ProxyConfig must be an object");
			goto out;
		}
		if (json_is_object(pc)) {
			if (proxyconfig_layer(cf, pc, "PROXY_CONFIG", err,
			    errlen) == -1)
				goto out;
			proxyconfig_merge(layers, pc, 1);
		}
	}
	json_decref(cf->cf_proxy_config);
	cf->cf_proxy_config = NULL;
	if (json_object_size(layers) > 0) {
		cf->cf_proxy_config = layers;
		layers = NULL;
	}
	rc = 0;
out:
	json_decref(pc);
	json_decref(layers);
	return rc;
}
