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
	struct event_base	*pr_base;
	struct supervise	*pr_sv;
	struct relay		*pr_relay;
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
		supervise_shutdown(pr->pr_sv, 0);
		break;
	case SIGHUP:
		log_info("received SIGHUP");
		supervise_restart(pr->pr_sv, "SIGHUP", 1);
		break;
	case SIGUSR1:
		supervise_signal(pr->pr_sv, SIGUSR1);
		break;
	case SIGCHLD:
		supervise_reap(pr->pr_sv);
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

static int
proxy_main(int argc, char **argv)
{
	static const int	 sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1,
				    SIGCHLD };
	struct proxy_run	 pr;
	struct config		 cf;
	struct watch		*watch;
	struct status		*status;
	struct event		*sigev[sizeof(sigs) / sizeof(sigs[0])];
	struct stat		 st;
	json_t			*doc;
	char			 err[1024];
	int			 code = 1;
	size_t			 i;

	if (config_parse(&cf, argc, argv, err, sizeof(err)) == -1) {
		log_error("%s", err);
		config_free(&cf);
		return EXIT_USAGE;
	}
	if (cf.cf_help) {
		config_usage(stdout, "proxy", NULL);
		config_free(&cf);
		return 0;
	}
	log_set_json(cf.cf_log_as_json);
	if (stat(cf.cf_binary_path, &st) == -1) {
		log_error("invalid argument \"%s\" for \"--binaryPath\" flag: "
		    "%s", cf.cf_binary_path, strerror(errno));
		config_free(&cf);
		return EXIT_USAGE;
	}
	if (!S_ISREG(st.st_mode) || access(cf.cf_binary_path, X_OK) == -1) {
		log_error("invalid argument \"%s\" for \"--binaryPath\" flag: "
		    "not an executable file", cf.cf_binary_path);
		config_free(&cf);
		return EXIT_USAGE;
	}
	/*
	 * The status servers' variables (limits, app probes, metrics
	 * annotations) are read and checked now, so a bad one is a usage
	 * error too; their ports are bound further down.
	 */
	if ((status = status_new(&cf, err, sizeof(err))) == NULL) {
		log_error("%s", err);
		config_free(&cf);
		return EXIT_USAGE;
	}
	/*
	 * Render once before anything is created, bound or written: an input
	 * that cannot be rendered (a variable, the mesh config, the override
	 * file) is a usage error now, as it is for "pilot-agent bootstrap",
	 * rather than a proxy that can never start.
	 */
	if ((doc = bootstrap_render(&cf, err, sizeof(err))) == NULL) {
		log_error("%s", err);
		status_free(status);
		config_free(&cf);
		return EXIT_USAGE;
	}
	if (mkdirs(cf.cf_config_path) == -1) {
		log_warn("creating --configPath %s", cf.cf_config_path);
		json_decref(doc);
		status_free(status);
		config_free(&cf);
		return 1;
	}
	log_info("pilot-agent %s: proxy %s, node %s", AGENT_VERSION,
	    config_role_name(cf.cf_role), cf.cf_node_id);

	/* The agent may be PID 1; orphans of the proxy are ours to reap. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) == -1)
		log_warn("PR_SET_CHILD_SUBREAPER");
	signal(SIGPIPE, SIG_IGN);

	if ((pr.pr_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	/* The proxy's xDS socket must be there before the proxy starts. */
	if ((pr.pr_relay = relay_new(pr.pr_base, &cf, err, sizeof(err))) ==
	    NULL) {
		log_error("xds relay: %s", err);
		json_decref(doc);
		status_free(status);
		event_base_free(pr.pr_base);
		config_free(&cf);
		return 1;
	}
	pr.pr_sv = supervise_new(pr.pr_base, &cf);
	/* Health, probes and metrics on the status and Prometheus ports. */
	if (status_listen(status, pr.pr_base, pr.pr_sv, pr.pr_relay, err,
	    sizeof(err)) == -1) {
		log_error("status server: %s", err);
		json_decref(doc);
		status_free(status);
		supervise_free(pr.pr_sv);
		relay_free(pr.pr_relay);
		event_base_free(pr.pr_base);
		config_free(&cf);
		return 1;
	}
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		sigev[i] = evsignal_new(pr.pr_base, sigs[i], proxy_signal, &pr);
		evsignal_add(sigev[i], NULL);
	}
	supervise_start(pr.pr_sv, doc);
	/* A change of the certificates, override or mesh config restarts. */
	watch = watch_new(pr.pr_base, &cf, pr.pr_sv);
	/* Children that ended before the SIGCHLD event was in place. */
	supervise_reap(pr.pr_sv);
	if (!supervise_finished(pr.pr_sv, &code))
		event_base_dispatch(pr.pr_base);
	if (!supervise_finished(pr.pr_sv, &code))
		code = 1;
	if (supervise_failure(pr.pr_sv) != NULL)
		log_error("pilot-agent exiting with code %d: the proxy keeps "
		    "failing: %s", code, supervise_failure(pr.pr_sv));
	else
		log_info("pilot-agent exiting with code %d", code);

	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		event_free(sigev[i]);
	watch_free(watch);
	status_free(status);
	supervise_free(pr.pr_sv);
	relay_free(pr.pr_relay);
	/* Last: the parts above may still hold admin requests of their own. */
	admin_cancel_all();
	event_base_free(pr.pr_base);
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
	if (strcmp(cmd, "wait") == 0)
		return wait_main(argc - 1, argv + 1);
	if (strcmp(cmd, "request") == 0)
		return request_main(argc - 1, argv + 1);
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
