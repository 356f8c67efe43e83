/*
 * Unit tests of bootstrap/'s smaller files: the override merge and text
 * (override.c), the digests of watched inputs (digest.c), the atomic write
 * (write.c), and the proxy's argv (argv.c). The bootstrap's inputs and
 * its rendering have theirs: test_proxyconfig.c, test_metadata.c and
 * test_render.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootstrap.h"
#include "check.h"

static json_t *
parse(const char *s)
{
	char	 err[256];
	json_t	*v;

	v = document_parse(s, strlen(s), "test", err, sizeof(err));
	if (v == NULL)
		fprintf(stderr, "parse: %s\n", err);
	return v;
}

static int
same(json_t *a, const char *b)
{
	json_t	*vb = parse(b);
	int	 eq = a != NULL && vb != NULL && json_equal(a, vb);

	if (!eq) {
		char *s = a != NULL ? json_dumps(a, JSON_SORT_KEYS) : NULL;

		fprintf(stderr, "got %s, want %s\n", s ? s : "(null)", b);
		free(s);
	}
	json_decref(vb);
	return eq;
}

static void
test_merge(void)
{
	json_t	*dst, *src;

	/* Objects merge, lists append, scalars replace. */
	dst = parse("{\"a\":{\"x\":1,\"y\":[1]},\"b\":\"s\",\"c\":[1,2]}");
	src = parse("{\"a\":{\"y\":[2],\"z\":true},\"b\":7,\"c\":[3],"
	    "\"d\":{\"n\":null}}");
	bootstrap_merge(dst, src);
	CHECK(same(dst, "{\"a\":{\"x\":1,\"y\":[1,2],\"z\":true},\"b\":7,"
	    "\"c\":[1,2,3],\"d\":{\"n\":null}}"));
	/* The source is copied, not shared. */
	json_object_set_new(json_object_get(src, "d"), "n", json_integer(1));
	CHECK(json_is_null(json_object_get(json_object_get(dst, "d"), "n")));
	json_decref(dst);
	json_decref(src);

	/* An object replaces a scalar and a scalar an object. */
	dst = parse("{\"a\":1,\"b\":{\"x\":1}}");
	src = parse("{\"a\":{\"x\":2},\"b\":\"flat\"}");
	bootstrap_merge(dst, src);
	CHECK(same(dst, "{\"a\":{\"x\":2},\"b\":\"flat\"}"));
	json_decref(dst);
	json_decref(src);

	/* Typed configs of different types do not mix; the same type merges. */
	dst = parse("{\"t\":{\"@type\":\"A\",\"x\":1},\"u\":{\"@type\":\"A\","
	    "\"x\":1}}");
	src = parse("{\"t\":{\"@type\":\"B\",\"y\":2},\"u\":{\"@type\":\"A\","
	    "\"y\":2}}");
	bootstrap_merge(dst, src);
	CHECK(same(dst, "{\"t\":{\"@type\":\"B\",\"y\":2},\"u\":{\"@type\":"
	    "\"A\",\"x\":1,\"y\":2}}"));
	json_decref(dst);
	json_decref(src);
	/* A oneof member clears its siblings, as MergeFrom does. */
	dst = parse("{\"admin\":{\"address\":{\"socket_address\":{\"port_"
	    "value\":15000}}},\"cds\":{\"ads\":{},\"initial_fetch_timeout\":"
	    "\"0s\"},\"log\":{\"path\":\"/dev/null\"}}");
	src = parse("{\"admin\":{\"address\":{\"pipe\":{\"path\":\"/x\"}}},"
	    "\"cds\":{\"path_config_source\":{\"path\":\"/c.yaml\"}},"
	    "\"log\":{\"path\":\"/tmp/a\"}}");
	bootstrap_merge(dst, src);
	CHECK(same(dst, "{\"admin\":{\"address\":{\"pipe\":{\"path\":"
	    "\"/x\"}}},\"cds\":{\"initial_fetch_timeout\":\"0s\",\"path_"
	    "config_source\":{\"path\":\"/c.yaml\"}},\"log\":{\"path\":"
	    "\"/tmp/a\"}}"));
	json_decref(dst);
	json_decref(src);
}

static void
test_override_text(void)
{
	char	 err[256];
	json_t	*doc;
	const char *ov =
	    "static_resources:\n"
	    "  listeners:\n"
	    "  - name: extra\n"
	    "    address: {socket_address: {address: \"$(HOST_IP)\", "
	    "port_value: 1}}\n"
	    "node:\n"
	    "  metadata: {A: \"x-$(HOST_IP)-$(HOST_IP)\"}\n";

	doc = parse("{\"node\":{\"id\":\"n\",\"metadata\":{\"B\":1}},"
	    "\"static_resources\":{\"listeners\":[{\"name\":\"h\"}]}}");
	CHECK(bootstrap_override_text(doc, ov, strlen(ov), "ov", "10.0.0.9",
	    err, sizeof(err)) == 0);
	CHECK(same(doc, "{\"node\":{\"id\":\"n\",\"metadata\":{\"B\":1,"
	    "\"A\":\"x-10.0.0.9-10.0.0.9\"}},\"static_resources\":"
	    "{\"listeners\":[{\"name\":\"h\"},{\"name\":\"extra\",\"address\":"
	    "{\"socket_address\":{\"address\":\"10.0.0.9\",\"port_value\":1}}}]}}"));
	/* Empty changes nothing; a list or a broken document is an error. */
	CHECK(bootstrap_override_text(doc, "", 0, "ov", "1", err,
	    sizeof(err)) == 0);
	CHECK(bootstrap_override_text(doc, "# only a comment\n", 17, "ov", "1",
	    err, sizeof(err)) == 0);
	CHECK(bootstrap_override_text(doc, "[1]", 3, "ov", "1", err,
	    sizeof(err)) == -1);
	CHECK(strstr(err, "ov: line 1 column 1") != NULL);
	CHECK(bootstrap_override_text(doc, "a: b: c", 7, "ov", "1", err,
	    sizeof(err)) == -1);
	CHECK(strstr(err, "ov: line 1 column") != NULL);
	json_decref(doc);
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

static void
test_digest(const char *tmp)
{
	char	 dir[256], path[300], d1[BOOTSTRAP_DIGEST_LEN];
	char	 d2[BOOTSTRAP_DIGEST_LEN], d3[BOOTSTRAP_DIGEST_LEN];

	snprintf(dir, sizeof(dir), "%s/certs", tmp);
	CHECK(bootstrap_digest_dir(dir, d1, sizeof(d1)) == -1);
	CHECK(mkdir(dir, 0700) == 0);
	CHECK(bootstrap_digest_dir(dir, d1, sizeof(d1)) == 0);
	CHECK(strncmp(d1, "fnv1a64:", 8) == 0 && strlen(d1) == 24);
	snprintf(path, sizeof(path), "%s/cert.pem", dir);
	put(path, "one");
	CHECK(bootstrap_digest_dir(dir, d2, sizeof(d2)) == 0);
	CHECK(strcmp(d1, d2) != 0);
	/* Same bytes again, a new time: the same digest. */
	put(path, "one");
	CHECK(bootstrap_digest_dir(dir, d3, sizeof(d3)) == 0);
	CHECK_STR(d2, d3);
	put(path, "two");
	CHECK(bootstrap_digest_dir(dir, d3, sizeof(d3)) == 0);
	CHECK(strcmp(d2, d3) != 0);
	/* Dot names (Kubernetes' ..data) are skipped, the links followed. */
	put(path, "one");
	snprintf(path, sizeof(path), "%s/..data", dir);
	put(path, "ignored");
	CHECK(bootstrap_digest_dir(dir, d3, sizeof(d3)) == 0);
	CHECK_STR(d2, d3);
	/* A name is part of it: moving content to another name changes it. */
	snprintf(path, sizeof(path), "%s/cert.pem", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/other.pem", dir);
	put(path, "one");
	CHECK(bootstrap_digest_dir(dir, d3, sizeof(d3)) == 0);
	CHECK(strcmp(d2, d3) != 0);

	CHECK(bootstrap_digest_file(path, d1, sizeof(d1)) == 0);
	put(path, "one");
	CHECK(bootstrap_digest_file(path, d2, sizeof(d2)) == 0);
	CHECK_STR(d1, d2);
	snprintf(path, sizeof(path), "%s/nope", dir);
	CHECK(bootstrap_digest_file(path, d1, sizeof(d1)) == -1);
}

static void
test_write(const char *tmp)
{
	char	 path[300], err[256], buf[256];
	json_t	*doc = parse("{\"a\":[1,2],\"b\":\"c\"}");
	struct stat st;
	FILE	*f;
	size_t	 n;
	mode_t	 old;

	snprintf(path, sizeof(path), "%s/envoy-rev0.json", tmp);
	old = umask(077);
	CHECK(bootstrap_write(path, doc, err, sizeof(err)) == 0);
	umask(old);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0640);
	f = fopen(path, "r");
	n = f != NULL ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[n] = '\0';
	if (f != NULL)
		fclose(f);
	CHECK_STR(buf, "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": \"c\"\n}\n");
	/* Overwriting replaces; no temporary file stays behind. */
	CHECK(bootstrap_write(path, doc, err, sizeof(err)) == 0);
	snprintf(buf, sizeof(buf), "%s/envoy-rev0.json.tmp.%ld", tmp,
	    (long)getpid());
	CHECK(access(buf, F_OK) == -1 && errno == ENOENT);
	/* A missing directory is an error naming the file. */
	snprintf(path, sizeof(path), "%s/no/such.json", tmp);
	CHECK(bootstrap_write(path, doc, err, sizeof(err)) == -1);
	CHECK(strstr(err, "no/such.json") != NULL);
	json_decref(doc);
}

/*
 * The argv's --local-address-ip-version and the rendered clusters' DNS
 * family follow one rule: v6 only when every instance IP is IPv6.
 */
static const char *
ip_version(struct config *cf)
{
	static char	 v[8];
	char		**argv = bootstrap_argv(cf, 3, "/etc/envoy-rev3.json");
	int		 i;

	v[0] = '\0';
	for (i = 0; argv[i] != NULL; i++) {
		if (strcmp(argv[i], "--local-address-ip-version") == 0 &&
		    argv[i + 1] != NULL)
			snprintf(v, sizeof(v), "%s", argv[i + 1]);
	}
	CHECK_STR(argv[4], "3");
	bootstrap_argv_free(argv);
	return v;
}

static void
test_argv(void)
{
	struct config	cf;

	config_defaults(&cf);
	free(cf.cf_node_id);
	cf.cf_node_id = xstrdup("sidecar~10.0.0.1~p.ns~ns.svc.cluster.local");
	cf.cf_nips = 0;
	CHECK_STR(ip_version(&cf), "v4");
	CHECK(!bootstrap_ipv6_only(&cf));
	cf.cf_ips[cf.cf_nips++] = xstrdup("fd00::1");
	CHECK_STR(ip_version(&cf), "v6");
	CHECK(bootstrap_ipv6_only(&cf));
	cf.cf_ips[cf.cf_nips++] = xstrdup("10.0.0.1");
	CHECK_STR(ip_version(&cf), "v4");
	CHECK(!bootstrap_ipv6_only(&cf));
	config_free(&cf);
}

int
main(void)
{
	char	 tmp[] = "/tmp/test_bootstrap.XXXXXX";
	char	 cmd[300];

	log_init();
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_merge();
	test_override_text();
	test_argv();
	test_digest(tmp);
	test_write(tmp);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmp);
	return check_done("test_bootstrap");
}
