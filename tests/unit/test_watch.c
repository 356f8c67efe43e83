/*
 * Unit test of agent/watch.c: which changes of the watched inputs reach the
 * supervisor, and how the debounce coalesces them. The supervisor is
 * replaced by a supervise_restart that counts calls (the linker takes it
 * before the archive's).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent.h"
#include "check.h"

static int	 restarts;
static char	 last_reason[256];

void
supervise_restart(struct supervise *sv, const char *reason, int force)
{
	(void)sv;
	if (force)
		abort();
	restarts++;
	snprintf(last_reason, sizeof(last_reason), "%s", reason);
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

static struct event_base *base;

/* Runs the loop for ms milliseconds. */
static void
run(int ms)
{
	struct timeval	 tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

int
main(void)
{
	char		 tmp[] = "/tmp/test_watch.XXXXXX";
	char		 certs[128], path[192], ov[192], mesh[192], cmd[192];
	struct config	 cf;
	struct watch	*wa;

	log_init();
	log_set_level("warn");
	if (mkdtemp(tmp) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	base = event_base_new();
	snprintf(certs, sizeof(certs), "%s/certs", tmp);
	snprintf(ov, sizeof(ov), "%s/override.yaml", tmp);
	snprintf(mesh, sizeof(mesh), "%s/mesh.yaml", tmp);
	put(ov, "a: 1\n");
	put(mesh, "defaultConfig: {}\n");

	config_defaults(&cf);
	free(cf.cf_cert_dir);
	cf.cf_cert_dir = xstrdup(certs);	/* missing for now */
	cf.cf_mesh_config = xstrdup(mesh);
	cf.cf_bootstrap_override = xstrdup(ov);	/* ISTIO_BOOTSTRAP_OVERRIDE */
	cf.cf_watch_debounce = 200 * 1000000LL;
	wa = watch_new(base, &cf, NULL);

	/* Nothing happens: no call. */
	run(300);
	CHECK(restarts == 0);

	/* The certificate directory appears with files: one call. */
	mkdir(certs, 0700);
	snprintf(path, sizeof(path), "%s/cert.pem", certs);
	put(path, "1");
	run(500);
	CHECK(restarts == 1);
	CHECK(strstr(last_reason, "certificate directory") != NULL);

	/* Writes 100 ms apart: the debounce waits for quiet, one call. */
	put(path, "2");
	run(100);
	put(path, "3");
	run(100);
	put(path, "4");
	run(100);
	CHECK(restarts == 1);
	run(400);
	CHECK(restarts == 2);

	/* The override and the mesh config, replaced by a rename. */
	put(ov, "a: 2\n");
	run(400);
	CHECK(restarts == 3);
	CHECK(strstr(last_reason, "bootstrap override") != NULL);
	snprintf(path, sizeof(path), "%s/mesh.yaml.new", tmp);
	put(path, "defaultConfig: {concurrency: 2}\n");
	rename(path, mesh);
	run(400);
	CHECK(restarts == 4);
	CHECK(strstr(last_reason, "mesh config") != NULL);

	/* Another file of the override's directory is not an input. */
	snprintf(path, sizeof(path), "%s/unrelated.txt", tmp);
	put(path, "x");
	run(400);
	CHECK(restarts == 4);

	/* The directory removed (and its watch gone), then back: calls. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certs);
	if (system(cmd) != 0)
		perror("rm");
	run(400);
	CHECK(restarts == 5);
	mkdir(certs, 0700);
	snprintf(path, sizeof(path), "%s/cert.pem", certs);
	put(path, "5");
	run(400);
	CHECK(restarts == 6);
	put(path, "6");
	run(400);
	CHECK(restarts == 7);

	watch_free(wa);
	config_free(&cf);
	event_base_free(base);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmp);
	return check_done("test_watch");
}
