/*
 * Unit tests of agent/proxyconfig.c, through config_parse, which applies
 * it: the ProxyConfig layers (the mesh config's defaultConfig <
 * PROXY_CONFIG < flags) field by field, the merged ProxyConfig kept in
 * camelCase, YAML or JSON in either layer, and errors that name the source
 * and the field.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "bootstrap_inputs.h"
#include "check.h"

static char tmp[] = "/tmp/test_proxyconfig.XXXXXX";

static void
test_layers(void)
{
	struct config	 cf;
	char		 err[512], mesh[300];

	/* Defaults. */
	reset_env();
	CHECK(parse_args(&cf, err, sizeof(err), "--certDir", "/nonexistent",
	    NULL) == 0);
	CHECK(cf.cf_drain_duration == 45000000000LL);
	CHECK(cf.cf_proxy_config == NULL);
	config_free(&cf);

	/* mesh config < PROXY_CONFIG < flags, field by field. */
	snprintf(mesh, sizeof(mesh), "%s/mesh.yaml", tmp);
	put(mesh, "defaultConfig:\n"
	    "  drainDuration: 30s\n"
	    "  parentShutdownDuration: 50s\n"
	    "  proxyAdminPort: 15100\n"
	    "  discoveryAddress: mesh:15012\n"
	    "  proxyMetadata: {ISTIO_META_A: mesh, ISTIO_META_B: mesh}\n"
	    "  tracing: {zipkin: {address: 'zipkin.mesh:9411'}}\n"
	    "  meshOnly: 1\n"
	    "enableTracing: true\n");
	setenv("PROXY_CONFIG", "{\"drainDuration\":\"20s\",\"proxy_admin_port\":"
	    "15200,\"proxyMetadata\":{\"ISTIO_META_B\":\"pc\"},"
	    "\"concurrency\":\"3\"}", 1);
	CHECK(parse_args(&cf, err, sizeof(err), "--meshConfig", mesh,
	    "--proxyAdminPort=15300", "--certDir", "/nonexistent", NULL) == 0);
	CHECK(cf.cf_drain_duration == 20000000000LL);
	CHECK(cf.cf_parent_shutdown_duration == 50000000000LL);
	CHECK(cf.cf_proxy_admin_port == 15300);
	CHECK(cf.cf_concurrency == 3);
	CHECK_STR(cf.cf_discovery_address, "mesh:15012");
	CHECK_STR(cf.cf_zipkin_address, "zipkin.mesh:9411");
	/* The merged layers keep every field, in camelCase. */
	CHECK_STR(gets_(cf.cf_proxy_config, "proxyMetadata.ISTIO_META_A"),
	    "mesh");
	CHECK_STR(gets_(cf.cf_proxy_config, "proxyMetadata.ISTIO_META_B"), "pc");
	CHECK(geti(cf.cf_proxy_config, "proxyAdminPort") == 15200);
	CHECK(get(cf.cf_proxy_config, "proxy_admin_port") == NULL);
	CHECK(geti(cf.cf_proxy_config, "meshOnly") == 1);
	config_free(&cf);

	/* A flag beats both layers for zipkin too. */
	CHECK(parse_args(&cf, err, sizeof(err), "--meshConfig", mesh,
	    "--zipkinAddress", "flag:9411", NULL) == 0);
	CHECK_STR(cf.cf_zipkin_address, "flag:9411");
	config_free(&cf);

	/* An empty mesh config and a JSON one. */
	put(mesh, "");
	unsetenv("PROXY_CONFIG");
	CHECK(parse_args(&cf, err, sizeof(err), "--meshConfig", mesh, NULL) ==
	    0);
	CHECK(cf.cf_proxy_config == NULL);
	config_free(&cf);
	put(mesh, "{\"defaultConfig\": {\"statusPort\": 15555}}");
	CHECK(parse_args(&cf, err, sizeof(err), "--meshConfig", mesh, NULL) ==
	    0);
	CHECK(cf.cf_status_port == 15555);
	config_free(&cf);

	/* Errors name the source and the field. */
	put(mesh, "defaultConfig:\n  concurrency: -1\n");
	CHECK(parse_args(&cf, err, sizeof(err), "--meshConfig", mesh, NULL) ==
	    -1);
	CHECK(strstr(err, "mesh.yaml: defaultConfig.concurrency") != NULL);
	config_free(&cf);
	put(mesh, "defaultConfig: 5\n");
	CHECK(parse_args(&cf, err, sizeof(err), "--meshConfig", mesh, NULL) ==
	    -1);
	CHECK(strstr(err, "defaultConfig: not an object") != NULL);
	config_free(&cf);
	setenv("PROXY_CONFIG", "{\"tracing\":{\"zipkin\":\"x\"}}", 1);
	CHECK(parse_args(&cf, err, sizeof(err), NULL) == -1);
	CHECK(strstr(err, "PROXY_CONFIG.tracing.zipkin") != NULL);
	config_free(&cf);
	setenv("PROXY_CONFIG", "{\"statusPort\":true}", 1);
	CHECK(parse_args(&cf, err, sizeof(err), NULL) == -1);
	CHECK(strstr(err, "PROXY_CONFIG.statusPort: wrong type") != NULL);
	config_free(&cf);
	/* PROXY_CONFIG may be YAML, as Istio accepts. */
	setenv("PROXY_CONFIG", "drainDuration: 1m0s\nconcurrency: 2\n", 1);
	CHECK(parse_args(&cf, err, sizeof(err), NULL) == 0);
	CHECK(cf.cf_drain_duration == 60000000000LL);
	CHECK(cf.cf_concurrency == 2);
	config_free(&cf);
	unsetenv("PROXY_CONFIG");
}

int
main(void)
{
	char	 cmd[300];

	log_init();
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_layers();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmp);
	return check_done("test_proxyconfig");
}
