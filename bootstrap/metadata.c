/*
 * The proxy's node: its id, its cluster and the metadata the control plane
 * reads to know the workload. The metadata is assembled as Istio's
 * GetNodeMetaData does, in increasing precedence:
 *
 *   1. ProxyConfig's proxyMetadata entries named ISTIO_META_<NAME>;
 *   2. the ISTIO_META_<NAME> variables (config.c reads them), as strings;
 *   3. the ISTIO_METAJSON_<NAME> variables: each value is a
 *      JSON object whose members are merged into the metadata (Istio ignores
 *      the variable's name, and so does this agent);
 *   4. what the agent knows itself: NAME, NAMESPACE, INSTANCE_IPS,
 *      CLUSTER_ID, SERVICE_ACCOUNT, PROXY_CONFIG, the two proxy ports, the
 *      agent's version, and the digests of the watched inputs.
 *
 * Variables are taken in the order of their names, so the result does not
 * depend on the order of the environment.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"

#define META_PREFIX		"ISTIO_META_"
#define METAJSON_PREFIX		"ISTIO_METAJSON_"

static int
metadata_set_string(json_t *md, const char *entry, size_t plen, char *err,
    size_t errlen)
{
	const char	*eq;
	char		*key;
	json_t		*v;
	int		 rc = 0;

	if ((eq = strchr(entry, '=')) == NULL || (size_t)(eq - entry) == plen)
		return 0;
	xasprintf(&key, "%.*s", (int)(eq - entry - (ptrdiff_t)plen),
	    entry + plen);
	/* JSON strings are UTF-8; jansson refuses anything else. */
	if ((v = json_string(eq + 1)) == NULL ||
	    json_object_set_new(md, key, v) == -1) {
		snprintf(err, errlen, "invalid %.*s: not valid UTF-8",
		    (int)(eq - entry), entry);
		rc = -1;
	}
	free(key);
	return rc;
}

/*
 * An ISTIO_METAJSON_ value that is not a JSON object is ignored with a
 * warning naming the variable, as Istio's agent does (its json.Unmarshal
 * into a map fails): a pod that starts under Istio starts here. "null"
 * unmarshals into Go's map without an error and adds nothing; so here.
 */
static void
metadata_merge_json(json_t *md, const char *entry)
{
	const char	*eq = strchr(entry, '=');
	json_error_t	 jerr;
	json_t		*v;

	if (eq == NULL)
		return;
	v = json_loads(eq + 1, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (v == NULL) {
		log_warnx("Env variable %.*s [%s] failed json unmarshal: line "
		    "%d column %d: %s", (int)(eq - entry), entry, eq + 1,
		    jerr.line, jerr.column, jerr.text);
		return;
	}
	if (json_is_object(v))
		json_object_update(md, v);
	else if (!json_is_null(v))
		log_warnx("Env variable %.*s [%s] failed json unmarshal: not "
		    "a JSON object", (int)(eq - entry), entry, eq + 1);
	json_decref(v);
}

/*
 * PROXY_CONFIG: the ProxyConfig layers as read (so fields this agent does
 * not use still reach the control plane), with the effective value of every
 * field the agent knows written over them.
 */
static json_t *
metadata_proxy_config(const struct config *cf)
{
	const struct config_flag *cg;
	json_t		*pc;
	const char	*base;
	char		 dur[48];

	pc = cf->cf_proxy_config != NULL ? json_deep_copy(cf->cf_proxy_config) :
	    json_object();
	for (cg = config_flags; cg->cg_name != NULL; cg++) {
		if (cg->cg_field == NULL || strchr(cg->cg_field, '.') != NULL)
			continue;
		base = (const char *)cf + cg->cg_offset;
		switch (cg->cg_type) {
		case CT_STRING:
			if (*(char *const *)base != NULL)
				json_object_set_new(pc, cg->cg_field,
				    json_string(*(char *const *)base));
			break;
		case CT_DURATION:
			bootstrap_pb_duration(*(const int64_t *)base, dur,
			    sizeof(dur));
			json_object_set_new(pc, cg->cg_field, json_string(dur));
			break;
		case CT_PORT:
		case CT_INT:
			if (*(const int *)base >= 0)
				json_object_set_new(pc, cg->cg_field,
				    json_integer(*(const int *)base));
			break;
		case CT_BOOL:
			json_object_set_new(pc, cg->cg_field,
			    json_boolean(*(const int *)base));
			break;
		}
	}
	if (cf->cf_zipkin_address != NULL && *cf->cf_zipkin_address != '\0') {
		json_t	*tr = json_object_get(pc, "tracing");

		if (!json_is_object(tr)) {
			tr = json_object();
			json_object_set_new(pc, "tracing", tr);
		}
		proxyconfig_only_tracer(tr, "zipkin");
		json_object_set_new(tr, "zipkin", json_pack("{s:s}",
		    "address", cf->cf_zipkin_address));
	}
	return pc;
}

json_t *
bootstrap_metadata(const struct config *cf, char *err, size_t errlen)
{
	json_t		*md, *pm, *v;
	const char	*k;
	char		*ips = NULL, *tmp, digest[BOOTSTRAP_DIGEST_LEN];
	size_t		 i, plen = strlen(META_PREFIX);

	md = json_object();
	pm = cf->cf_proxy_config != NULL ?
	    json_object_get(cf->cf_proxy_config, "proxyMetadata") : NULL;
	json_object_foreach(pm, k, v) {
		if (strncmp(k, META_PREFIX, plen) == 0 && k[plen] != '\0' &&
		    json_is_string(v))
			json_object_set(md, k + plen, v);
	}
	/* The variables, sorted by name (config.c collected them). */
	for (i = 0; i < cf->cf_nmeta_env; i++) {
		if (strncmp(cf->cf_meta_env[i], META_PREFIX, plen) == 0 &&
		    metadata_set_string(md, cf->cf_meta_env[i], plen, err,
		    errlen) == -1) {
			json_decref(md);
			return NULL;
		}
	}
	for (i = 0; i < cf->cf_nmeta_env; i++) {
		if (strncmp(cf->cf_meta_env[i], METAJSON_PREFIX,
		    strlen(METAJSON_PREFIX)) == 0)
			metadata_merge_json(md, cf->cf_meta_env[i]);
	}

	for (i = 0; i < (size_t)cf->cf_nips; i++) {
		xasprintf(&tmp, "%s%s%s", ips != NULL ? ips : "",
		    ips != NULL ? "," : "", cf->cf_ips[i]);
		free(ips);
		ips = tmp;
	}
	json_object_set_new(md, "NAME", json_string(cf->cf_pod_name));
	json_object_set_new(md, "NAMESPACE", json_string(cf->cf_pod_namespace));
	json_object_set_new(md, "INSTANCE_IPS", json_string(ips != NULL ? ips :
	    ""));
	free(ips);
	json_object_set_new(md, "CLUSTER_ID", json_string(cf->cf_cluster_id));
	if (cf->cf_service_account != NULL && *cf->cf_service_account != '\0')
		json_object_set_new(md, "SERVICE_ACCOUNT",
		    json_string(cf->cf_service_account));
	json_object_set_new(md, "PROXY_CONFIG", metadata_proxy_config(cf));
	json_object_set_new(md, "ENVOY_STATUS_PORT",
	    json_integer(cf->cf_envoy_status_port));
	json_object_set_new(md, "ENVOY_PROMETHEUS_PORT",
	    json_integer(cf->cf_prometheus_port));
	json_object_set_new(md, "PILOT_AGENT_VERSION",
	    json_string(AGENT_VERSION));
	/*
	 * The digests make the rendered document change when a watched input
	 * changes content, and only then: the supervisor restarts the proxy
	 * when the document differs from the live epoch's.
	 */
	if (cf->cf_cert_dir != NULL && bootstrap_digest_dir(cf->cf_cert_dir,
	    digest, sizeof(digest)) == 0)
		json_object_set_new(md, "AGENT_CERTS_DIGEST",
		    json_string(digest));
	if (cf->cf_mesh_config != NULL && bootstrap_digest_file(
	    cf->cf_mesh_config, digest, sizeof(digest)) == 0)
		json_object_set_new(md, "AGENT_MESH_CONFIG_DIGEST",
		    json_string(digest));
	return md;
}

json_t *
bootstrap_node(const struct config *cf, char *err, size_t errlen)
{
	json_t	*md;

	if ((md = bootstrap_metadata(cf, err, errlen)) == NULL)
		return NULL;
	return json_pack("{s:s, s:s, s:o}", "id", cf->cf_node_id,
	    "cluster", cf->cf_service_cluster, "metadata", md);
}
