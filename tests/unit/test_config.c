/* Unit tests of agent/config.c: flags, environment, identity, errors. */
#include <stdlib.h>

#include "agent.h"
#include "check.h"

#define NSEC 1000000000LL

static int
parse(struct config *cf, char *err, size_t len, char **argv)
{
	int	argc = 0;

	while (argv[argc] != NULL)
		argc++;
	return config_parse(cf, argc, argv, err, len);
}

static void
bad(const char *want, char **argv)
{
	struct config	cf;
	char		err[512] = "";

	CHECK(parse(&cf, err, sizeof(err), argv) == -1);
	if (strstr(err, want) == NULL) {
		check_failures++;
		fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, want);
	}
	config_free(&cf);
}

int
main(void)
{
	struct config	 cf;
	char		 err[512];

	unsetenv("POD_NAME");
	unsetenv("INSTANCE_IP");
	setenv("POD_NAMESPACE", "shop", 1);

	/* The seeds' command line, both flag forms. */
	CHECK(parse(&cf, err, sizeof(err), (char *[]){ "proxy", "sidecar",
	    "--domain", "shop.svc.cluster.local", "--configPath", "/tmp/x",
	    "--binaryPath", "/bin/true", "--serviceCluster", "productpage.shop",
	    "--drainDuration", "45s", "--parentShutdownDuration", "1m0s",
	    "--discoveryAddress", "istiod.istio-system.svc:15012",
	    "--zipkinAddress", "zipkin.istio-system:9411",
	    "--proxyLogLevel=warning", "--proxyComponentLogLevel=misc:error",
	    "--connectTimeout", "10s", "--proxyAdminPort", "15000",
	    "--concurrency", "2", "--controlPlaneAuthPolicy", "NONE",
	    "--dnsRefreshRate", "300s", "--statusPort", "15020",
	    "--trust-domain=cluster.local", "--controlPlaneBootstrap=false",
	    NULL }) == 0);
	CHECK(cf.cf_role == ROLE_SIDECAR);
	CHECK_STR(cf.cf_config_path, "/tmp/x");
	CHECK_STR(cf.cf_service_cluster, "productpage.shop");
	CHECK(cf.cf_drain_duration == 45 * NSEC);
	CHECK(cf.cf_parent_shutdown_duration == 60 * NSEC);
	CHECK(cf.cf_concurrency == 2);
	CHECK(cf.cf_control_plane_bootstrap == 0);
	CHECK_STR(cf.cf_proxy_component_log_level, "misc:error");
	CHECK_STR(cf.cf_control_plane_auth_policy, "NONE");
	CHECK(cf.cf_nips == 1);
	config_free(&cf);

	/* Defaults and identity from the environment. */
	setenv("POD_NAME", "web-1", 1);
	setenv("INSTANCE_IP", "10.1.2.3", 1);
	CHECK(parse(&cf, err, sizeof(err), (char *[]){ "proxy", "router",
	    NULL }) == 0);
	CHECK(cf.cf_role == ROLE_ROUTER);
	CHECK_STR(cf.cf_config_path, "./etc/istio/proxy");
	CHECK_STR(cf.cf_binary_path, "/usr/local/bin/envoy");
	CHECK_STR(cf.cf_service_cluster, "istio-proxy");
	CHECK(cf.cf_drain_duration == 45 * NSEC);
	CHECK(cf.cf_parent_shutdown_duration == 60 * NSEC);
	CHECK(cf.cf_termination_drain_duration == 5 * NSEC);
	CHECK(cf.cf_proxy_admin_port == 15000);
	CHECK(cf.cf_status_port == 15020);
	CHECK(cf.cf_envoy_status_port == 15021);
	CHECK(cf.cf_prometheus_port == 15090);
	CHECK_STR(cf.cf_proxy_log_level, "warning");
	CHECK(cf.cf_concurrency == -1);
	CHECK_STR(cf.cf_node_id,
	    "router~10.1.2.3~web-1.shop~shop.svc.cluster.local");
	config_free(&cf);

	/* --domain sets the node id's last part; env knobs. */
	setenv("EXIT_ON_ZERO_ACTIVE_CONNECTIONS", "true", 1);
	setenv("MINIMUM_DRAIN_DURATION", "2s", 1);
	setenv("ENVOY_STATUS_PORT", "25021", 1);
	CHECK(parse(&cf, err, sizeof(err), (char *[]){ "proxy",
	    "--domain=example.com", "--unknownThing", "v", "--log_target",
	    "stdout", NULL }) == 0);
	CHECK_STR(cf.cf_node_id, "sidecar~10.1.2.3~web-1.shop~example.com");
	CHECK(cf.cf_exit_on_zero_active == 1);
	CHECK(cf.cf_minimum_drain_duration == 2 * NSEC);
	CHECK(cf.cf_envoy_status_port == 25021);
	CHECK(cf.cf_role == ROLE_SIDECAR);
	config_free(&cf);

	/* An unknown flag does not take the role for its value. */
	CHECK(parse(&cf, err, sizeof(err), (char *[]){ "proxy",
	    "--someUnknownBool", "router", NULL }) == 0);
	CHECK(cf.cf_role == ROLE_ROUTER);
	config_free(&cf);

	/*
	 * Go's single-dash names, "--", --help, and a table of extra flags
	 * (bootstrap's --output) beside the proxy's.
	 */
	{
		static const struct flag extra[] = {
			{ .fl_name = "output", .fl_type = FLAG_TEXT },
			{ NULL }
		};
		const char	*output = NULL;

		CHECK(config_parse_extra(&cf, extra, &output, 6, (char *[]){
		    "bootstrap", "-configPath", "/tmp/y", "--output=o", "--",
		    "router", NULL }, err, sizeof(err)) == 0);
		CHECK_STR(cf.cf_config_path, "/tmp/y");
		CHECK_STR(output, "o");
		CHECK(cf.cf_role == ROLE_ROUTER);
		config_free(&cf);
		CHECK(config_parse(&cf, 3, (char *[]){ "proxy", "--output",
		    "o", NULL }, err, sizeof(err)) == 0);	/* warned */
		config_free(&cf);
		CHECK(config_parse(&cf, 4, (char *[]){ "proxy",
		    "--drainDuration", "x", "--help", NULL }, err,
		    sizeof(err)) == 0 && cf.cf_help);
		config_free(&cf);
	}

	/* Every malformed value names its flag or variable. */
	bad("invalid argument \"forty\" for \"--drainDuration\" flag: "
	    "time: invalid duration \"forty\"", (char *[]){ "proxy",
	    "--drainDuration", "forty", NULL });
	bad("\"--parentShutdownDuration\" flag: time: missing unit",
	    (char *[]){ "proxy", "--parentShutdownDuration=60", NULL });
	bad("\"--proxyAdminPort\" flag", (char *[]){ "proxy",
	    "--proxyAdminPort", "70000", NULL });
	bad("\"--statusPort\" flag", (char *[]){ "proxy", "--statusPort=x",
	    NULL });
	bad("\"--concurrency\" flag", (char *[]){ "proxy", "--concurrency",
	    "-1", NULL });
	bad("\"--controlPlaneBootstrap\" flag", (char *[]){ "proxy",
	    "--controlPlaneBootstrap=maybe", NULL });
	bad("\"--proxyLogLevel\" flag", (char *[]){ "proxy", "--proxyLogLevel",
	    "loud", NULL });
	bad("\"--controlPlaneAuthPolicy\" flag", (char *[]){ "proxy",
	    "--controlPlaneAuthPolicy", "SOMETIMES", NULL });
	bad("flag needs an argument: --configPath", (char *[]){ "proxy",
	    "--configPath", NULL });
	bad("invalid proxy type \"gateway\"", (char *[]){ "proxy", "gateway",
	    NULL });
	bad("unexpected argument \"x\"", (char *[]){ "proxy", "sidecar", "x",
	    NULL });
	bad("\"--drainDuration\" flag: negative duration", (char *[]){ "proxy",
	    "--drainDuration=-5s", NULL });
	setenv("MINIMUM_DRAIN_DURATION", "soon", 1);
	bad("\"MINIMUM_DRAIN_DURATION\" variable", (char *[]){ "proxy", NULL });
	unsetenv("MINIMUM_DRAIN_DURATION");
	setenv("ENVOY_PROMETHEUS_PORT", "0", 1);
	bad("\"ENVOY_PROMETHEUS_PORT\" variable", (char *[]){ "proxy", NULL });
	unsetenv("ENVOY_PROMETHEUS_PORT");
	/* The status servers' variables are read here too. */
	setenv("STATUS_IDLE_TIMEOUT", "0s", 1);
	bad("\"STATUS_IDLE_TIMEOUT\" variable: not a positive duration",
	    (char *[]){ "proxy", NULL });
	unsetenv("STATUS_IDLE_TIMEOUT");
	setenv("STATUS_MAX_CONNECTIONS_PER_PEER", "0", 1);
	bad("\"STATUS_MAX_CONNECTIONS_PER_PEER\" variable: not a number from 1 "
	    "to 100000", (char *[]){ "proxy", NULL });
	unsetenv("STATUS_MAX_CONNECTIONS_PER_PEER");
	setenv("REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION", "maybe", 1);
	bad("\"REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION\" variable",
	    (char *[]){ "proxy", NULL });
	unsetenv("REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION");
	setenv("INSTANCE_IP", "10.1.2", 1);
	bad("invalid value \"10.1.2\" in INSTANCE_IP", (char *[]){ "proxy",
	    NULL });
	return check_done("test_config");
}
