/*
 * Unit tests of bootstrap/render.c: the rendered document's parts that
 * depend on the configuration and the environment (node, admin, the xDS
 * and agent clusters, the health listener, tracing), the same inputs
 * giving the same document and a changed certificate or mesh config a
 * different one, the override read at every render, IPv6 only; and its
 * helpers (protobuf durations, host:port).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootstrap.h"
#include "bootstrap_inputs.h"
#include "check.h"

static char tmp[] = "/tmp/test_render.XXXXXX";

static void
test_helpers(void)
{
	char	 buf[64], host[64];
	int	 port;

	bootstrap_pb_duration(45000000000LL, buf, sizeof(buf));
	CHECK_STR(buf, "45s");
	bootstrap_pb_duration(250000000LL, buf, sizeof(buf));
	CHECK_STR(buf, "0.250s");
	bootstrap_pb_duration(1500LL, buf, sizeof(buf));
	CHECK_STR(buf, "0.000001500s");
	bootstrap_pb_duration(1000LL, buf, sizeof(buf));
	CHECK_STR(buf, "0.000001s");
	bootstrap_pb_duration(0, buf, sizeof(buf));
	CHECK_STR(buf, "0s");

	CHECK(bootstrap_split_hostport("zipkin:9411", host, sizeof(host),
	    &port) == 0);
	CHECK_STR(host, "zipkin");
	CHECK(port == 9411);
	CHECK(bootstrap_split_hostport("[fd00::1]:80", host, sizeof(host),
	    &port) == 0);
	CHECK_STR(host, "fd00::1");
	CHECK(port == 80);
	CHECK(bootstrap_split_hostport("zipkin", host, sizeof(host),
	    &port) == -1);
	CHECK(bootstrap_split_hostport("fd00::1:80", host, sizeof(host),
	    &port) == -1);
	CHECK(bootstrap_split_hostport("z:0", host, sizeof(host), &port) == -1);
	CHECK(bootstrap_split_hostport("z:70000", host, sizeof(host),
	    &port) == -1);
	CHECK(bootstrap_split_hostport(":80", host, sizeof(host), &port) == -1);
	CHECK(bootstrap_split_hostport("[::1]80", host, sizeof(host),
	    &port) == -1);
}

static void
test_render(void)
{
	struct config	 cf;
	char		 err[512], dir[200], path[300], ov[300];
	json_t		*doc, *doc2;

	reset_env();
	snprintf(dir, sizeof(dir), "%s/certs", tmp);
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/root-cert.pem", dir);
	put(path, "root");
	CHECK(parse_args(&cf, err, sizeof(err), "router", "--certDir", dir,
	    "--configPath", "/cfg", "--connectTimeout", "1.5s",
	    "--proxyAdminPort", "15123", "--statusPort", "15124", NULL) == 0);
	setenv("ENVOY_STATUS_PORT", "15125", 1);	/* read by config_parse */
	doc = bootstrap_render(&cf, err, sizeof(err));
	CHECK(doc != NULL);
	CHECK_STR(gets_(doc, "node.id"), "router~10.0.0.5~pod-1.ns~ns.svc."
	    "cluster.local");
	CHECK_STR(gets_(doc, "node.cluster"), "istio-proxy");
	CHECK(geti(doc, "admin.address.socket_address.port_value") == 15123);
	CHECK_STR(gets_(doc, "admin.address.socket_address.address"),
	    "127.0.0.1");
	CHECK_STR(gets_(doc, "static_resources.clusters.1.name"), "xds-grpc");
	CHECK_STR(gets_(doc, "static_resources.clusters.1.connect_timeout"),
	    "1.500s");
	CHECK_STR(gets_(doc, "static_resources.clusters.1.load_assignment."
	    "endpoints.0.lb_endpoints.0.endpoint.address.pipe.path"),
	    "/cfg/XDS");
	CHECK(geti(doc, "static_resources.clusters.0.load_assignment."
	    "endpoints.0.lb_endpoints.0.endpoint.address.socket_address."
	    "port_value") == 15124);
	CHECK(geti(doc, "static_resources.listeners.0.address.socket_address."
	    "port_value") == 15021);	/* set before the variable */
	CHECK(get(doc, "tracing") == NULL);
	CHECK(get(doc, "static_resources.clusters.2") == NULL);
	CHECK(gets_(doc, "node.metadata.AGENT_CERTS_DIGEST") != NULL);

	/* Same inputs, same document; a certificate's new content differs. */
	doc2 = bootstrap_render(&cf, err, sizeof(err));
	CHECK(json_equal(doc, doc2));
	json_decref(doc2);
	put(path, "root");
	doc2 = bootstrap_render(&cf, err, sizeof(err));
	CHECK(json_equal(doc, doc2));
	json_decref(doc2);
	put(path, "rotated");
	doc2 = bootstrap_render(&cf, err, sizeof(err));
	CHECK(!json_equal(doc, doc2));
	json_decref(doc2);

	/* The override is read at every render. */
	snprintf(ov, sizeof(ov), "%s/override.json", tmp);
	put(ov, "{\"admin\":{\"profile_path\":\"/p\"},\"node\":{\"locality\":"
	    "{\"zone\":\"$(HOST_IP)\"}}}");
	cf.cf_bootstrap_override = xstrdup(ov);	/* config_parse reads it */
	doc2 = bootstrap_render(&cf, err, sizeof(err));
	CHECK(doc2 != NULL);
	CHECK_STR(gets_(doc2, "admin.profile_path"), "/p");
	CHECK_STR(gets_(doc2, "node.locality.zone"), "10.0.0.5");
	json_decref(doc2);
	cf.cf_host_ip = xstrdup("192.0.2.1");
	doc2 = bootstrap_render(&cf, err, sizeof(err));
	CHECK_STR(gets_(doc2, "node.locality.zone"), "192.0.2.1");
	json_decref(doc2);
	unlink(ov);
	CHECK(bootstrap_render(&cf, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "ISTIO_BOOTSTRAP_OVERRIDE") != NULL);
	json_decref(doc);
	config_free(&cf);

	/* IPv6 only: the health listener on "::"; tracing with a v6 host. */
	setenv("INSTANCE_IP", "fd00::1", 1);
	CHECK(parse_args(&cf, err, sizeof(err), "--zipkinAddress",
	    "[fd00::9]:9411", NULL) == 0);
	doc = bootstrap_render(&cf, err, sizeof(err));
	CHECK(doc != NULL);
	CHECK_STR(gets_(doc, "static_resources.listeners.0.address."
	    "socket_address.address"), "::");
	CHECK_STR(gets_(doc, "static_resources.clusters.2.name"), "zipkin");
	CHECK_STR(gets_(doc, "static_resources.clusters.2.dns_lookup_family"),
	    "V6_ONLY");
	CHECK_STR(gets_(doc, "static_resources.clusters.2.load_assignment."
	    "endpoints.0.lb_endpoints.0.endpoint.address.socket_address."
	    "address"), "fd00::9");
	CHECK_STR(gets_(doc, "tracing.http.name"), "envoy.tracers.zipkin");
	json_decref(doc);
	config_free(&cf);

	/* A mesh config's edit changes its digest, and so the document. */
	reset_env();
	snprintf(path, sizeof(path), "%s/mesh2.yaml", tmp);
	put(path, "defaultConfig: {concurrency: 2}\n");
	CHECK(parse_args(&cf, err, sizeof(err), "--meshConfig", path,
	    "--certDir", "/nonexistent", NULL) == 0);
	doc = bootstrap_render(&cf, err, sizeof(err));
	put(path, "defaultConfig: {concurrency: 3}\n");
	doc2 = bootstrap_render(&cf, err, sizeof(err));
	CHECK(doc != NULL && doc2 != NULL && !json_equal(doc, doc2));
	json_decref(doc);
	json_decref(doc2);
	config_free(&cf);
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
	test_helpers();
	test_render();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmp);
	return check_done("test_render");
}
