/*
 * The proxy's command line for one epoch, exactly as DESIGN §4 gives it,
 * from the same configuration the bootstrap is rendered from, so that the
 * two cannot disagree (the address family above all: bootstrap_ipv6_only is
 * the one rule, "v6 only when every instance IP is IPv6").
 */
#include <stdlib.h>

#include "bootstrap.h"

#define ARGV_MAX	32

/* A new NULL-terminated argv; bootstrap_argv_free frees it. */
char **
bootstrap_argv(const struct config *cf, int epoch, const char *path)
{
	char	**argv;
	int	  i = 0;

	argv = xcalloc(ARGV_MAX, sizeof(*argv));
	argv[i++] = xstrdup(cf->cf_binary_path);
	argv[i++] = xstrdup("-c");
	argv[i++] = xstrdup(path);
	argv[i++] = xstrdup("--restart-epoch");
	xasprintf(&argv[i++], "%d", epoch);
	/* Whole seconds: config.c refuses anything else Envoy cannot take. */
	argv[i++] = xstrdup("--drain-time-s");
	xasprintf(&argv[i++], "%lld", (long long)(cf->cf_drain_duration /
	    CLOCK_SEC));
	argv[i++] = xstrdup("--parent-shutdown-time-s");
	xasprintf(&argv[i++], "%lld",
	    (long long)(cf->cf_parent_shutdown_duration / CLOCK_SEC));
	argv[i++] = xstrdup("--service-cluster");
	argv[i++] = xstrdup(cf->cf_service_cluster);
	argv[i++] = xstrdup("--service-node");
	argv[i++] = xstrdup(cf->cf_node_id);
	argv[i++] = xstrdup("--local-address-ip-version");
	argv[i++] = xstrdup(bootstrap_ipv6_only(cf) ? "v6" : "v4");
	argv[i++] = xstrdup("--file-flush-interval-msec");
	argv[i++] = xstrdup("1000");
	argv[i++] = xstrdup("--log-format");
	xasprintf(&argv[i++], "[Envoy (Epoch %d)] [%%Y-%%m-%%d %%T.%%e][%%t]"
	    "[%%l][%%n] %%v", epoch);
	argv[i++] = xstrdup("-l");
	argv[i++] = xstrdup(cf->cf_proxy_log_level);
	if (cf->cf_proxy_component_log_level != NULL &&
	    *cf->cf_proxy_component_log_level != '\0') {
		argv[i++] = xstrdup("--component-log-level");
		argv[i++] = xstrdup(cf->cf_proxy_component_log_level);
	}
	if (cf->cf_concurrency >= 0) {
		argv[i++] = xstrdup("--concurrency");
		xasprintf(&argv[i++], "%d", cf->cf_concurrency);
	}
	if (cf->cf_drain_strategy != NULL) {
		argv[i++] = xstrdup("--drain-strategy");
		argv[i++] = xstrdup(cf->cf_drain_strategy);
	}
	argv[i] = NULL;
	return argv;
}

void
bootstrap_argv_free(char **argv)
{
	char	**p;

	if (argv == NULL)
		return;
	for (p = argv; *p != NULL; p++)
		free(*p);
	free(argv);
}
