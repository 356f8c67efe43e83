/*
 * ISTIO_BOOTSTRAP_OVERRIDE: a JSON or YAML file merged over the rendered
 * bootstrap. Istio hands such a document to Envoy as --config-yaml, which
 * Envoy applies with protobuf's MergeFrom; this agent applies the same
 * merge itself and writes the result into the epoch's file, so that nothing
 * in the override (it may hold credentials) shows on the proxy's command
 * line. The rules, as MergeFrom's on JSON:
 *
 *   - an object merges into an object member by member, recursively;
 *   - a list is appended to a list (repeated fields are concatenated);
 *   - anything else replaces what was there.
 *
 * Two refinements: two typed configs ("@type") of different types do not
 * mix, the override's replaces the rendered one whole; and a member of a
 * oneof the bootstrap commonly overrides (an address's kind, a config
 * source's kind, a cluster's discovery type) clears its siblings, as
 * MergeFrom does, so the merged document never sets two of them.
 *
 * "$(HOST_IP)" in a string value is replaced by the HOST_IP variable
 * (Kubernetes' downward API), or the first instance IP without it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"

#define HOST_IP_VAR	"$(HOST_IP)"

/*
 * Oneof groups of Envoy's API by their JSON member names. A group is only
 * acted on when the destination already has another of its members, which
 * only an object of that message type can have.
 */
static const char *const override_oneofs[][6] = {
	/* envoy.config.core.v3.Address */
	{ "socket_address", "pipe", "envoy_internal_address", NULL },
	/* envoy.config.core.v3.ConfigSource */
	{ "path", "path_config_source", "api_config_source", "ads", "self",
	    NULL },
	/* envoy.config.cluster.v3.Cluster */
	{ "type", "cluster_type", NULL },
	/* envoy.config.core.v3.GrpcService */
	{ "envoy_grpc", "google_grpc", NULL },
	/* envoy.config.core.v3.DataSource */
	{ "filename", "inline_bytes", "inline_string", "environment_variable",
	    NULL },
};

static void
override_clear_oneof(json_t *dst, const char *key)
{
	size_t	 g, i, j;

	for (g = 0; g < sizeof(override_oneofs) / sizeof(override_oneofs[0]);
	    g++) {
		for (i = 0; override_oneofs[g][i] != NULL; i++) {
			if (strcmp(override_oneofs[g][i], key) != 0)
				continue;
			for (j = 0; override_oneofs[g][j] != NULL; j++) {
				if (j != i)
					json_object_del(dst,
					    override_oneofs[g][j]);
			}
			return;
		}
	}
}

void
bootstrap_merge(json_t *dst, json_t *src)
{
	const char	*key;
	json_t		*sv, *dv, *st, *dt;
	size_t		 i;

	json_object_foreach(src, key, sv) {
		override_clear_oneof(dst, key);
		dv = json_object_get(dst, key);
		if (json_is_object(dv) && json_is_object(sv)) {
			st = json_object_get(sv, "@type");
			dt = json_object_get(dv, "@type");
			if (st != NULL && dt != NULL && !json_equal(st, dt))
				json_object_set_new(dst, key,
				    json_deep_copy(sv));
			else
				bootstrap_merge(dv, sv);
		} else if (json_is_array(dv) && json_is_array(sv)) {
			for (i = 0; i < json_array_size(sv); i++)
				json_array_append_new(dv,
				    json_deep_copy(json_array_get(sv, i)));
		} else
			json_object_set_new(dst, key, json_deep_copy(sv));
	}
}

/* Replaces every "$(HOST_IP)" in the string values of v, in place. */
static json_t *
override_substitute(json_t *v, const char *ip)
{
	const char	*key, *s, *p;
	json_t		*child, *repl;
	char		*out;
	size_t		 i, n, vlen = strlen(HOST_IP_VAR), iplen = strlen(ip);

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		json_object_foreach(v, key, child) {
			repl = override_substitute(child, ip);
			if (repl != child)
				json_object_set_new(v, key, repl);
		}
		return v;
	case JSON_ARRAY:
		for (i = 0; i < json_array_size(v); i++) {
			child = json_array_get(v, i);
			repl = override_substitute(child, ip);
			if (repl != child)
				json_array_set_new(v, i, repl);
		}
		return v;
	case JSON_STRING:
		s = json_string_value(v);
		if (strstr(s, HOST_IP_VAR) == NULL)
			return v;
		n = 0;
		for (p = s; (p = strstr(p, HOST_IP_VAR)) != NULL; p += vlen)
			n++;
		out = xmalloc(strlen(s) + n * iplen + 1);
		out[0] = '\0';
		n = 0;
		while ((p = strstr(s, HOST_IP_VAR)) != NULL) {
			memcpy(out + n, s, (size_t)(p - s));
			n += (size_t)(p - s);
			memcpy(out + n, ip, iplen);
			n += iplen;
			s = p + vlen;
		}
		strcpy(out + n, s);
		repl = json_string(out);
		free(out);
		return repl != NULL ? repl : v;
	default:
		return v;
	}
}

/*
 * Parses an override document (JSON or YAML) from memory and merges it into
 * doc. name labels the messages. An empty document changes nothing.
 */
int
bootstrap_override_text(json_t *doc, const char *text, size_t len,
    const char *name, const char *host_ip, char *err, size_t errlen)
{
	json_t	*ov;

	if ((ov = document_parse(text, len, name, err, errlen)) == NULL)
		return -1;
	if (json_is_null(ov)) {
		json_decref(ov);
		return 0;
	}
	if (!json_is_object(ov)) {
		snprintf(err, errlen, "%s: line 1 column 1: the override must "
		    "be an object (a Bootstrap message)", name);
		json_decref(ov);
		return -1;
	}
	override_substitute(ov, host_ip);
	bootstrap_merge(doc, ov);
	json_decref(ov);
	return 0;
}

int
bootstrap_override(json_t *doc, const char *path, const char *host_ip,
    char *err, size_t errlen)
{
	char	*text, *name;
	size_t	 len;
	int	 rc;

	if ((text = file_read(path, DOCUMENT_MAX_SIZE, &len, err, errlen)) ==
	    NULL) {
		/* Name the variable: the path alone may not say where it came from. */
		name = xstrdup(err);
		snprintf(err, errlen, "ISTIO_BOOTSTRAP_OVERRIDE: %s", name);
		free(name);
		return -1;
	}
	rc = bootstrap_override_text(doc, text, len, path, host_ip, err,
	    errlen);
	free(text);
	return rc;
}
