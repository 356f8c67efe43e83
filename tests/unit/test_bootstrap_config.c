/*
 * Unit tests of the inputs of the bootstrap: the ProxyConfig layers
 * (agent/proxyconfig.c), the node metadata from the environment
 * (bootstrap/metadata.c) and the rendered document's parts that depend on
 * them (bootstrap/render.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootstrap.h"
#include "check.h"

static char tmp[] = "/tmp/test_bootstrap_config.XXXXXX";

static const char *const clean_vars[] = {
	"PROXY_CONFIG", "ISTIO_BOOTSTRAP_OVERRIDE", "HOST_IP", "POD_NAME",
	"POD_NAMESPACE", "INSTANCE_IP", "ISTIO_META_INSTANCE_IPS",
	"SERVICE_ACCOUNT", "ISTIO_META_CLUSTER_ID", "ENVOY_STATUS_PORT",
	"ENVOY_PROMETHEUS_PORT", NULL
};

extern char **environ;

/* A known environment: the identity fixed, no metadata variables. */
static void
reset_env(void)
{
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
static int
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

static void
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

static json_t *
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

static const char *
gets_(json_t *v, const char *path)
{
	return json_string_value(get(v, path));
}

static long long
geti(json_t *v, const char *path)
{
	return json_integer_value(get(v, path));
}

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
	setenv("ISTIO_BOOTSTRAP_OVERRIDE", ov, 1);
	doc2 = bootstrap_render(&cf, err, sizeof(err));
	CHECK(doc2 != NULL);
	CHECK_STR(gets_(doc2, "admin.profile_path"), "/p");
	CHECK_STR(gets_(doc2, "node.locality.zone"), "10.0.0.5");
	json_decref(doc2);
	setenv("HOST_IP", "192.0.2.1", 1);
	doc2 = bootstrap_render(&cf, err, sizeof(err));
	CHECK_STR(gets_(doc2, "node.locality.zone"), "192.0.2.1");
	json_decref(doc2);
	unlink(ov);
	CHECK(bootstrap_render(&cf, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "ISTIO_BOOTSTRAP_OVERRIDE") != NULL);
	unsetenv("ISTIO_BOOTSTRAP_OVERRIDE");
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
	test_layers();
	test_metadata();
	test_render();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmp);
	return check_done("test_bootstrap_config");
}
