/*
 * Helpers for the unit tests of what the bootstrap is made from
 * (test_proxyconfig.c, test_metadata.c, test_render.c): a known
 * environment, config_parse on a list of arguments, a file written, and a
 * member of a JSON document read by its dotted path.
 */
#ifndef BOOTSTRAP_INPUTS_H
#define BOOTSTRAP_INPUTS_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent.h"

extern char **environ;

/* A known environment: the identity fixed, no metadata variables. */
static inline void
reset_env(void)
{
	static const char *const clean_vars[] = {
		"PROXY_CONFIG", "ISTIO_BOOTSTRAP_OVERRIDE", "HOST_IP",
		"POD_NAME", "POD_NAMESPACE", "INSTANCE_IP",
		"ISTIO_META_INSTANCE_IPS", "SERVICE_ACCOUNT",
		"ISTIO_META_CLUSTER_ID", "ENVOY_STATUS_PORT",
		"ENVOY_PROMETHEUS_PORT", NULL
	};
	const char *const *v;
	char	 name[256], **e;
	int	 again = 1;

	for (v = clean_vars; *v != NULL; v++)
		unsetenv(*v);
	while (again) {
		again = 0;
		for (e = environ; *e != NULL; e++) {
			if (strncmp(*e, "ISTIO_META", 10) == 0) {
				snprintf(name, sizeof(name), "%.*s",
				    (int)(strcspn(*e, "=")), *e);
				unsetenv(name);
				again = 1;
				break;
			}
		}
	}
	setenv("POD_NAME", "pod-1", 1);
	setenv("POD_NAMESPACE", "ns", 1);
	setenv("INSTANCE_IP", "10.0.0.5", 1);
}

/* config_parse on a NULL-terminated list; 0 or -1 with err. */
static inline int
parse_args(struct config *cf, char *err, size_t errlen, ...)
{
	char	*argv[32];
	int	 argc = 0;
	va_list	 ap;

	argv[argc++] = "bootstrap";
	va_start(ap, errlen);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	err[0] = '\0';
	return config_parse(cf, argc, argv, err, errlen);
}

static inline void
put(const char *path, const char *s)
{
	FILE	*f = fopen(path, "w");

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	fputs(s, f);
	fclose(f);
}

/* The member at a dotted path ("a.0.b": array elements by index), or NULL. */
static inline json_t *
get(json_t *v, const char *path)
{
	char	*copy = strdup(path), *p, *save = NULL;

	for (p = strtok_r(copy, ".", &save); p != NULL && v != NULL;
	    p = strtok_r(NULL, ".", &save)) {
		if (json_is_array(v))
			v = json_array_get(v, (size_t)atoi(p));
		else
			v = json_object_get(v, p);
	}
	free(copy);
	return v;
}

static inline const char *
gets_(json_t *v, const char *path)
{
	return json_string_value(get(v, path));
}

static inline long long
geti(json_t *v, const char *path)
{
	return json_integer_value(get(v, path));
}

#endif
