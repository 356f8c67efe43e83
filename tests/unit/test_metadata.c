/*
 * Unit tests of bootstrap/metadata.c: the node metadata from the
 * environment (ISTIO_META_ and ISTIO_METAJSON_ variables, proxyMetadata,
 * the agent's own keys, which win) and the PROXY_CONFIG it carries; a
 * broken ISTIO_METAJSON_ variable is ignored, as Istio does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrap.h"
#include "bootstrap_inputs.h"
#include "check.h"

static void
test_metadata(void)
{
	struct config	 cf;
	char		 err[512];
	json_t		*md, *pc;

	reset_env();
	setenv("ISTIO_META_ZED", "z", 1);
	setenv("ISTIO_META_A", "env", 1);
	setenv("ISTIO_META_NAME", "ignored: the agent's own wins", 1);
	setenv("ISTIO_META_", "no name: skipped", 1);
	setenv("ISTIO_METAJSON_LABELS", "{\"LABELS\":{\"app\":\"web\"},"
	    "\"A\":\"json\"}", 1);
	setenv("ISTIO_METAJSON_B", "{\"NUM\":5,\"LIST\":[1,\"x\"]}", 1);
	setenv("SERVICE_ACCOUNT", "sa", 1);
	setenv("ISTIO_META_CLUSTER_ID", "c1", 1);
	setenv("INSTANCE_IP", "10.0.0.5,fd00::5", 1);
	setenv("PROXY_CONFIG", "{\"proxyMetadata\":{\"ISTIO_META_PM\":\"pm\","
	    "\"ISTIO_META_ZED\":\"pm\",\"NOT_META\":\"x\"},\"image\":{\"a\":1}}",
	    1);
	CHECK(parse_args(&cf, err, sizeof(err), "--concurrency", "2",
	    "--zipkinAddress", "z:1", "--certDir", "/nonexistent", NULL) == 0);
	md = bootstrap_metadata(&cf, err, sizeof(err));
	CHECK(md != NULL);
	CHECK_STR(gets_(md, "ZED"), "z");		/* env over proxyMetadata */
	CHECK_STR(gets_(md, "PM"), "pm");
	CHECK(get(md, "NOT_META") == NULL);
	CHECK_STR(gets_(md, "A"), "json");		/* METAJSON over META */
	CHECK_STR(gets_(md, "LABELS.app"), "web");
	CHECK(geti(md, "NUM") == 5);
	CHECK_STR(gets_(md, "LIST.1"), "x");
	CHECK(json_object_get(md, "") == NULL);
	CHECK_STR(gets_(md, "NAME"), "pod-1");
	CHECK_STR(gets_(md, "NAMESPACE"), "ns");
	CHECK_STR(gets_(md, "INSTANCE_IPS"), "10.0.0.5,fd00::5");
	CHECK_STR(gets_(md, "CLUSTER_ID"), "c1");
	CHECK_STR(gets_(md, "SERVICE_ACCOUNT"), "sa");
	CHECK_STR(gets_(md, "PILOT_AGENT_VERSION"), AGENT_VERSION);
	CHECK(geti(md, "ENVOY_STATUS_PORT") == 15021);
	CHECK(geti(md, "ENVOY_PROMETHEUS_PORT") == 15090);
	CHECK(get(md, "AGENT_CERTS_DIGEST") == NULL);	/* no directory */
	pc = get(md, "PROXY_CONFIG");
	CHECK(geti(pc, "concurrency") == 2);
	CHECK_STR(gets_(pc, "drainDuration"), "45s");
	CHECK_STR(gets_(pc, "tracing.zipkin.address"), "z:1");
	CHECK(geti(pc, "image.a") == 1);
	CHECK_STR(gets_(pc, "proxyMetadata.NOT_META"), "x");
	json_decref(md);

	/*
	 * A broken ISTIO_METAJSON_ variable is ignored (with a warning), as
	 * Istio does; the others still count.
	 */
	setenv("ISTIO_METAJSON_BAD", "{\"x\":", 1);
	setenv("ISTIO_METAJSON_LIST", "[1]", 1);
	CHECK((md = bootstrap_metadata(&cf, err, sizeof(err))) != NULL);
	CHECK(get(md, "x") == NULL);
	CHECK_STR(gets_(md, "A"), "json");
	json_decref(md);
	unsetenv("ISTIO_METAJSON_BAD");
	unsetenv("ISTIO_METAJSON_LIST");
	config_free(&cf);
	reset_env();
}

int
main(void)
{
	log_init();
	test_metadata();
	return check_done("test_metadata");
}
