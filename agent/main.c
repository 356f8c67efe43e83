/*
 * The pilot-agent binary: dispatches to its subcommands, and runs "proxy":
 * the one event base, the signals feeding one switch, and the order in which
 * the parts start and stop. Run under the name istio-iptables (a link), it
 * behaves as "pilot-agent istio-iptables".
 */
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "agent.h"
#include "bootstrap.h"
#include "status.h"

struct proxy_run {
	struct event_base	*px_base;
	struct supervise	*px_sv;
	struct relay		*px_relay;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pilot-agent <command> [flags]\n"
	    "\n"
	    "commands:\n"
	    "  proxy [sidecar|router]  run the sidecar: render, supervise and "
	    "hot-restart the proxy\n"
	    "  bootstrap               print the bootstrap the proxy would get\n"
	    "  wait                    wait until the sidecar is ready\n"
	    "  request METHOD PATH     call the proxy's admin API\n"
	    "  istio-iptables          set up traffic interception\n"
	    "  istio-clean-iptables    remove it\n"
	    "  version                 print the version\n"
	    "\n"
	    "See pilot-agent(8) for the flags of each command.\n");
}

static void
proxy_signal(evutil_socket_t sig, short what, void *arg)
{
	struct proxy_run	*pr = arg;

	(void)what;
	switch (sig) {
	case SIGTERM:
	case SIGINT:
		log_info("received %s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		supervise_shutdown(pr->px_sv, 0);
		break;
	case SIGHUP:
		log_info("received SIGHUP");
		supervise_restart(pr->px_sv, "SIGHUP", 1);
		break;
	case SIGUSR1:
		supervise_signal(pr->px_sv, SIGUSR1);
		break;
	case SIGCHLD:
		supervise_reap(pr->px_sv);
		break;
	}
}

/* mkdir -p, mode 0750 for what it creates. */
static int
mkdirs(const char *path)
{
	char	*p, *copy;
	int	 rc = 0;

	copy = xstrdup(path);
	for (p = copy + 1; *p != '\0' && rc == 0; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, 0750) == -1 && errno != EEXIST)
			rc = -1;
		*p = '/';
	}
	if (rc == 0 && mkdir(copy, 0750) == -1 && errno != EEXIST)
		rc = -1;
	free(copy);
	return rc;
}

/* --binaryPath must name an executable file. */
static int
proxy_check_binary(const struct config *cf, char *err, size_t errlen)
{
	struct stat	st;

	if (stat(cf->cf_binary_path, &st) == -1) {
		snprintf(err, errlen, "invalid argument \"%s\" for "
		    "\"--binaryPath\" flag: %s", cf->cf_binary_path,
		    strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode) || access(cf->cf_binary_path, X_OK) == -1) {
		snprintf(err, errlen, "invalid argument \"%s\" for "
		    "\"--binaryPath\" flag: not an executable file",
		    cf->cf_binary_path);
		return -1;
	}
	return 0;
}

/*
 * "pilot-agent proxy": every input is checked before anything is created,
 * bound or started (a bad one exits 2), then the parts start in order and
 * the event loop runs until the supervisor is done. One way out frees what
 * was made, in reverse order.
 */
static int
proxy_main(int argc, char **argv)
{
	static const int	 sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1,
				    SIGCHLD };
	struct proxy_run	 pr;
	struct config		 cf;
	struct watch		*watch = NULL;
	struct status		*status = NULL;
	struct event		*sigev[sizeof(sigs) / sizeof(sigs[0])];
	json_t			*doc = NULL;
	char			 err[1024];
	int			 code = EXIT_USAGE;
	size_t			 i;

	memset(&pr, 0, sizeof(pr));
	memset(sigev, 0, sizeof(sigev));
	if (config_parse(&cf, argc, argv, err, sizeof(err)) == -1) {
		log_error("%s", err);
		goto out;
	}
	if (cf.cf_help) {
		config_usage(stdout, "proxy", NULL);
		code = 0;
		goto out;
	}
	log_set_json(cf.cf_log_as_json);
	if (proxy_check_binary(&cf, err, sizeof(err)) == -1) {
		log_error("%s", err);
		goto out;
	}
	/*
	 * The status servers' variables (limits, app probes, metrics
	 * annotations) are read and checked now, so a bad one is a usage
	 * error too; their ports are bound further down.
	 */
	if ((status = status_new(&cf, err, sizeof(err))) == NULL) {
		log_error("%s", err);
		goto out;
	}
	/*
	 * Render once before anything is created, bound or written: an input
	 * that cannot be rendered (a variable, the mesh config, the override
	 * file) is a usage error now, as it is for "pilot-agent bootstrap",
	 * rather than a proxy that can never start.
	 */
	if ((doc = bootstrap_render(&cf, err, sizeof(err))) == NULL) {
		log_error("%s", err);
		goto out;
	}

	/* From here on a failure is the machine's, not the input's. */
	code = 1;
	if (mkdirs(cf.cf_config_path) == -1) {
		log_warn("creating --configPath %s", cf.cf_config_path);
		goto out;
	}
	log_info("pilot-agent %s: proxy %s, node %s", AGENT_VERSION,
	    config_role_name(cf.cf_role), cf.cf_node_id);
	/* The agent may be PID 1; orphans of the proxy are ours to reap. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		log_warn("PR_SET_CHILD_SUBREAPER");
	signal(SIGPIPE, SIG_IGN);
	if ((pr.px_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	/* The proxy's xDS socket must be there before the proxy starts. */
	if ((pr.px_relay = relay_new(pr.px_base, &cf, err, sizeof(err))) ==
	    NULL) {
		log_error("xds relay: %s", err);
		goto out;
	}
	pr.px_sv = supervise_new(pr.px_base, &cf);
	/* Health, probes and metrics on the status and Prometheus ports. */
	if (status_listen(status, pr.px_base, pr.px_sv, pr.px_relay, err,
	    sizeof(err)) == -1) {
		log_error("status server: %s", err);
		goto out;
	}
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		sigev[i] = evsignal_new(pr.px_base, sigs[i], proxy_signal, &pr);
		evsignal_add(sigev[i], NULL);
	}
	supervise_start(pr.px_sv, doc);
	doc = NULL;
	/* A change of the certificates, override or mesh config restarts. */
	watch = watch_new(pr.px_base, &cf, pr.px_sv);
	/* Children that ended before the SIGCHLD event was in place. */
	supervise_reap(pr.px_sv);
	if (!supervise_finished(pr.px_sv, &code))
		event_base_dispatch(pr.px_base);
	if (!supervise_finished(pr.px_sv, &code))
		code = 1;
	if (supervise_failure(pr.px_sv) != NULL)
		log_error("pilot-agent exiting with code %d: the proxy keeps "
		    "failing: %s", code, supervise_failure(pr.px_sv));
	else
		log_info("pilot-agent exiting with code %d", code);

out:
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		if (sigev[i] != NULL)
			event_free(sigev[i]);
	}
	watch_free(watch);
	status_free(status);
	supervise_free(pr.px_sv);
	relay_free(pr.px_relay);
	if (pr.px_base != NULL) {
		/* Last: the parts above may still hold admin requests. */
		admin_cancel_all();
		event_base_free(pr.px_base);
	}
	json_decref(doc);
	config_free(&cf);
	return code;
}

int
main(int argc, char **argv)
{
	const char	*cmd;
	char		*name;

	log_init();
	evthread_use_pthreads();
	name = basename(argv[0]);
	if (strcmp(name, "istio-iptables") == 0)
		return iptables_main(argc, argv);
	if (strcmp(name, "istio-clean-iptables") == 0)
		return iptables_clean_main(argc, argv);
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[1];
	if (strcmp(cmd, "proxy") == 0)
		return proxy_main(argc - 1, argv + 1);
	if (strcmp(cmd, "bootstrap") == 0)
		return bootstrap_command(argc - 1, argv + 1);
	if (strcmp(cmd, "istio-iptables") == 0)
		return iptables_main(argc - 1, argv + 1);
	if (strcmp(cmd, "wait") == 0) {
		/* A peer that closes early is an error to report, not a death. */
		signal(SIGPIPE, SIG_IGN);
		return wait_main(argc - 1, argv + 1);
	}
	if (strcmp(cmd, "request") == 0) {
		signal(SIGPIPE, SIG_IGN);
		return request_main(argc - 1, argv + 1);
	}
	if (strcmp(cmd, "istio-clean-iptables") == 0)
		return iptables_clean_main(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0) {
		printf("pilot-agent version %s\n", AGENT_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 ||
	    strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	log_error("unknown command \"%s\" for \"pilot-agent\"", cmd);
	usage(stderr);
	return EXIT_USAGE;
}
