/*
 * The bootstrap's figures (make bench, through tests/bench/bootstrap.sh):
 *
 *   bench_bootstrap [-n N] [AGENT STAMP]
 *
 * 1. the median time to render and write one bootstrap with a full
 *    configuration (mesh config, PROXY_CONFIG, metadata of every form, an
 *    override file, a certificate directory, tracing), over N iterations
 *    (2000 by default), into a tmpfs (where Istio puts it) and into /tmp;
 *    goal <= 200 us;
 * 2. given the agent and tests/tools/stamp, the median time from the fork
 *    of "pilot-agent proxy" with that configuration to the exec of epoch 0
 *    (stamp records it), over 20 starts; goal <= 10 ms.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bootstrap.h"

#define STARTS	20

static char	 dir[] = "/tmp/bench_bootstrap.XXXXXX";

static int64_t
now_ns(int clock)
{
	struct timespec	 ts;

	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void
put(const char *name, const char *s)
{
	char	 path[256];
	FILE	*f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		fatal("%s", path);
	fputs(s, f);
	fclose(f);
}

static int
cmp64(const void *a, const void *b)
{
	int64_t	 x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int
free_port(void)
{
	struct sockaddr_in sin;
	socklen_t	 len = sizeof(sin);
	int		 fd, port;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
		fatal("free_port");
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* The inputs of a full configuration, in dir and the environment. */
static void
setup(void)
{
	char	 path[256], pem[2048];
	size_t	 i;

	for (i = 0; i + 65 < sizeof(pem); i += 65)
		memcpy(pem + i, "MIIBszCCAVmgAwIBAgIUSxXc5wGZb4mH3vR0V9lYbQ2qK8QwCgYIKoZIzj0EAwIw\n",
		    65);
	pem[i] = '\0';
	snprintf(path, sizeof(path), "%s/certs", dir);
	mkdir(path, 0700);
	put("certs/cert-chain.pem", pem);
	put("certs/key.pem", pem);
	put("certs/root-cert.pem", pem);
	put("mesh.yaml",
	    "defaultConfig:\n"
	    "  discoveryAddress: istiod.istio-system.svc:15012\n"
	    "  drainDuration: 45s\n"
	    "  tracing:\n"
	    "    zipkin: {address: zipkin.istio-system:9411}\n"
	    "    sampling: 1.0\n"
	    "  proxyMetadata:\n"
	    "    ISTIO_META_DNS_CAPTURE: \"true\"\n"
	    "    ISTIO_META_DNS_AUTO_ALLOCATE: \"true\"\n"
	    "  holdApplicationUntilProxyStarts: true\n"
	    "enableTracing: true\n"
	    "accessLogFile: /dev/stdout\n");
	put("override.yaml",
	    "static_resources:\n"
	    "  listeners:\n"
	    "  - name: extra\n"
	    "    address: {socket_address: {address: \"$(HOST_IP)\", "
	    "port_value: 15999}}\n"
	    "    filter_chains:\n"
	    "    - filters:\n"
	    "      - name: envoy.filters.network.tcp_proxy\n"
	    "        typed_config:\n"
	    "          \"@type\": type.googleapis.com/envoy.extensions.filters."
	    "network.tcp_proxy.v3.TcpProxy\n"
	    "          stat_prefix: extra\n"
	    "          cluster: agent\n");
	snprintf(path, sizeof(path), "%s/override.yaml", dir);
	setenv("ISTIO_BOOTSTRAP_OVERRIDE", path, 1);
	setenv("POD_NAME", "productpage-v1-6b746f74dc-9stvs", 1);
	setenv("POD_NAMESPACE", "default", 1);
	setenv("INSTANCE_IP", "10.244.1.6", 1);
	setenv("SERVICE_ACCOUNT", "bookinfo-productpage", 1);
	setenv("HOST_IP", "172.18.0.2", 1);
	setenv("ISTIO_META_CLUSTER_ID", "Kubernetes", 1);
	setenv("ISTIO_META_APP_CONTAINERS", "productpage", 1);
	setenv("ISTIO_META_INTERCEPTION_MODE", "REDIRECT", 1);
	setenv("ISTIO_META_WORKLOAD_NAME", "productpage-v1", 1);
	setenv("ISTIO_META_OWNER", "kubernetes://apis/apps/v1/namespaces/"
	    "default/deployments/productpage-v1", 1);
	setenv("ISTIO_META_MESH_ID", "cluster.local", 1);
	setenv("ISTIO_METAJSON_LABELS", "{\"LABELS\":{\"app\":\"productpage\","
	    "\"version\":\"v1\",\"security.istio.io/tlsMode\":\"istio\"}}", 1);
	setenv("PROXY_CONFIG", "{\"concurrency\":2,\"terminationDrainDuration\":"
	    "\"5s\",\"proxyMetadata\":{\"ISTIO_META_X\":\"y\"}}", 1);
}

/* Renders and writes into outdir n times; label says what outdir is. */
static void
bench_render(int n, const char *outdir, const char *label)
{
	struct config	 cf;
	char		 err[512], mesh[256], certs[256], out[300];
	char		*argv[] = { "bootstrap", "sidecar", "--meshConfig", mesh,
			    "--certDir", certs, "--configPath", dir,
			    "--serviceCluster", "productpage.default", NULL };
	int64_t		*t, t0;
	json_t		*doc;
	int		 i;

	snprintf(mesh, sizeof(mesh), "%s/mesh.yaml", dir);
	snprintf(certs, sizeof(certs), "%s/certs", dir);
	snprintf(out, sizeof(out), "%s/envoy-rev0.json", outdir);
	if (config_parse(&cf, 10, argv, err, sizeof(err)) == -1)
		fatalx("config_parse: %s", err);
	t = xcalloc((size_t)n, sizeof(*t));
	for (i = 0; i < n; i++) {
		t0 = now_ns(CLOCK_MONOTONIC);
		if ((doc = bootstrap_render(&cf, err, sizeof(err))) == NULL)
			fatalx("render: %s", err);
		if (bootstrap_write(out, doc, err, sizeof(err)) == -1)
			fatalx("write: %s", err);
		t[i] = now_ns(CLOCK_MONOTONIC) - t0;
		json_decref(doc);
	}
	qsort(t, (size_t)n, sizeof(*t), cmp64);
	printf("bootstrap: render + write (full configuration, %s): median "
	    "%.1f us, p90 %.1f us (goal <= 200 us, n=%d)\n", label,
	    (double)t[n / 2] / 1e3, (double)t[n * 9 / 10] / 1e3, n);
	unlink(out);
	free(t);
	config_free(&cf);
}

/* The first stamp's time, or -1 when none came within 5 seconds. */
static int64_t
wait_stamp(const char *path)
{
	char		 buf[128];
	long long	 pid, ns;
	int		 i, fd;
	ssize_t		 n;

	for (i = 0; i < 5000; i++) {
		if ((fd = open(path, O_RDONLY)) != -1) {
			n = read(fd, buf, sizeof(buf) - 1);
			close(fd);
			if (n > 0) {
				buf[n] = '\0';
				if (sscanf(buf, "%lld %lld", &pid, &ns) == 2)
					return ns;
			}
		}
		usleep(1000);
	}
	return -1;
}

static void
bench_start(const char *agent, const char *stamp)
{
	char	 mesh[256], certs[256], cfgdir[256], stamps[300], sleeper[256];
	char	 admin[16], status[16], envoy_status[16], prom[16];
	int64_t	 t[STARTS], t0, ts;
	int	 i, got = 0, st;
	pid_t	 pid;

	snprintf(mesh, sizeof(mesh), "%s/mesh.yaml", dir);
	snprintf(certs, sizeof(certs), "%s/certs", dir);
	snprintf(sleeper, sizeof(sleeper), "%s/proxy.sh", dir);
	put("proxy.sh", "#!/bin/sh\nexec sleep 30\n");
	chmod(sleeper, 0755);
	setenv("STAMP_EXEC", sleeper, 1);
	for (i = 0; i < STARTS; i++) {
		char	*argv[] = { (char *)agent, "proxy", "sidecar",
			    "--meshConfig", mesh, "--certDir", certs,
			    "--configPath", cfgdir, "--binaryPath", (char *)stamp,
			    "--serviceCluster", "productpage.default",
			    "--proxyAdminPort", admin, "--statusPort", status,
			    "--discoveryAddress", "127.0.0.1:1",
			    "--controlPlaneAuthPolicy", "NONE", NULL };

		snprintf(cfgdir, sizeof(cfgdir), "%s/run%d", dir, i);
		mkdir(cfgdir, 0750);
		snprintf(stamps, sizeof(stamps), "%s/stamps", cfgdir);
		setenv("STAMP_FILE", stamps, 1);
		snprintf(admin, sizeof(admin), "%d", free_port());
		snprintf(status, sizeof(status), "%d", free_port());
		snprintf(envoy_status, sizeof(envoy_status), "%d", free_port());
		snprintf(prom, sizeof(prom), "%d", free_port());
		setenv("ENVOY_STATUS_PORT", envoy_status, 1);
		setenv("ENVOY_PROMETHEUS_PORT", prom, 1);
		t0 = now_ns(CLOCK_REALTIME);
		if ((pid = fork()) == -1)
			fatal("fork");
		if (pid == 0) {
			int fd = open("/dev/null", O_WRONLY);

			if (fd != -1) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
			execv(agent, argv);
			_exit(127);
		}
		ts = wait_stamp(stamps);
		/* The proxy dies with the agent (PR_SET_PDEATHSIG). */
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		if (ts != -1)
			t[got++] = ts - t0;
	}
	if (got == 0) {
		printf("bootstrap: agent start -> exec of epoch 0: no epoch "
		    "started\n");
		return;
	}
	qsort(t, (size_t)got, sizeof(t[0]), cmp64);
	printf("bootstrap: agent start -> exec of epoch 0 (full configuration): "
	    "median %.3f ms (goal <= 10 ms, n=%d)\n", (double)t[got / 2] / 1e6,
	    got);
}

int
main(int argc, char **argv)
{
	char	 cmd[300], shmdir[] = "/dev/shm/bench_bootstrap.XXXXXX", *shm;
	int	 n = 2000, c;

	log_init();
	log_set_level("error");
	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c == 'n')
			n = atoi(optarg);
		else {
			fprintf(stderr, "usage: bench_bootstrap [-n N] "
			    "[AGENT STAMP]\n");
			return 2;
		}
	}
	if (n < 1)
		n = 1;
	if (mkdtemp(dir) == NULL)
		fatal("mkdtemp");
	setup();
	/*
	 * Istio mounts <configPath> (istio-envoy) as an emptyDir of medium
	 * Memory, a tmpfs, where fsync costs nothing; on a disk file system
	 * the fsync of every epoch's file dominates, so both are shown.
	 */
	if ((shm = mkdtemp(shmdir)) != NULL) {
		bench_render(n, shm, "tmpfs, as Istio's istio-envoy volume");
		rmdir(shm);
	}
	bench_render(n, dir, "disk file system, with its fsync");
	if (optind + 2 <= argc)
		bench_start(argv[optind], argv[optind + 1]);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	return 0;
}
