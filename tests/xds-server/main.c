/*
 * The test control plane's command line:
 *
 *   xds-server --listen 127.0.0.1:15010|unix:/path --config resources.json
 *       [--cert server.pem --key server-key.pem [--client-ca ca.pem]]
 *       [--close-after N] [--refuse] [--delay-ms N] [--repeat N] [--echo]
 *       [--hostile-type-flood] [--log-level debug|info|warn]
 *
 * --hostile-type-flood makes it a hostile control plane: from the first
 * request of a stream on, it answers with responses without end, each of a
 * type URL never seen before and with long version and nonce (serve.c).
 *
 * SIGHUP re-reads the resources file (and its knobs) and pushes the types
 * that changed to every stream; SIGTERM and SIGINT stop it. Every request
 * is logged on standard error with what it was: request, ACK or NACK.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <grpc/grpc.h>

#include "agent.h"
#include "relay/relay.h"
#include "xds-server.h"

struct xs_main {
	struct event_base *xn_base;
	struct xs_server *xn_server;
	struct xs_config  xn_config[2];		/* current and previous */
	int		  xn_cur;
	const char	*xn_path;
	struct xs_knobs	  xn_knobs;
};

static void
usage(void)
{
	fprintf(stderr, "usage: xds-server --listen addr --config file "
	    "[--cert file --key file [--client-ca file]] [--close-after n] "
	    "[--refuse] [--delay-ms n] [--repeat n] [--echo] "
	    "[--hostile-type-flood] [--log-level level]\n");
	exit(EXIT_USAGE);
}

static void
signal_cb(int sig, short what, void *arg)
{
	struct xs_main	*xn = arg;
	char		 err[512];
	int		 next;

	(void)what;
	if (sig != SIGHUP) {
		log_info("signal %d: stopping", sig);
		event_base_loopbreak(xn->xn_base);
		return;
	}
	next = 1 - xn->xn_cur;
	if (resource_load(xn->xn_path, &xn->xn_knobs, &xn->xn_config[next],
	    err, sizeof(err)) == -1) {
		log_warnx("SIGHUP: %s; keeping the resources", err);
		return;
	}
	log_info("SIGHUP: reloaded %s", xn->xn_path);
	serve_reload(xn->xn_server, &xn->xn_config[next]);
	resource_free(&xn->xn_config[xn->xn_cur]);
	xn->xn_cur = next;
}

int
main(int argc, char **argv)
{
	struct xs_main	 xn;
	struct event	*sig[3];
	const char	*listen = NULL, *cert = NULL, *key = NULL, *ca = NULL;
	char		 err[512];
	int		 i, sigs[3] = { SIGHUP, SIGTERM, SIGINT };
	size_t		 t;

	log_init();
	log_set_scope("xds-server");
	memset(&xn, 0, sizeof(xn));
	xn.xn_knobs.xk_repeat = 1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--refuse") == 0)
			xn.xn_knobs.xk_refuse = 1;
		else if (strcmp(a, "--echo") == 0)
			xn.xn_knobs.xk_echo = 1;
		else if (strcmp(a, "--hostile-type-flood") == 0)
			xn.xn_knobs.xk_type_flood = 1;
		else if (v == NULL)
			usage();
		else if (strcmp(a, "--listen") == 0)
			listen = v, i++;
		else if (strcmp(a, "--config") == 0)
			xn.xn_path = v, i++;
		else if (strcmp(a, "--cert") == 0)
			cert = v, i++;
		else if (strcmp(a, "--key") == 0)
			key = v, i++;
		else if (strcmp(a, "--client-ca") == 0)
			ca = v, i++;
		else if (strcmp(a, "--close-after") == 0)
			xn.xn_knobs.xk_close_after = atoi(v), i++;
		else if (strcmp(a, "--delay-ms") == 0)
			xn.xn_knobs.xk_delay_ms = atoi(v), i++;
		else if (strcmp(a, "--repeat") == 0)
			xn.xn_knobs.xk_repeat = atoi(v), i++;
		else if (strcmp(a, "--log-level") == 0) {
			if (log_set_level(v) == -1)
				usage();
			i++;
		} else
			usage();
	}
	if (listen == NULL || xn.xn_path == NULL)
		usage();
	if (xn.xn_knobs.xk_repeat < 1)
		xn.xn_knobs.xk_repeat = 1;
	if (resource_load(xn.xn_path, &xn.xn_knobs, &xn.xn_config[0], err,
	    sizeof(err)) == -1)
		fatalx("%s", err);
	for (t = 0; t < xn.xn_config[0].xc_ntypes; t++)
		xn.xn_config[0].xc_types[t].xt_gen = 1;
	evthread_use_pthreads();
	signal(SIGPIPE, SIG_IGN);
	if ((xn.xn_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	grpc_init();
	xn.xn_server = serve_new(xn.xn_base, listen, cert, key, ca,
	    &xn.xn_config[0], err, sizeof(err));
	if (xn.xn_server == NULL)
		fatalx("%s", err);
	for (i = 0; i < 3; i++) {
		sig[i] = evsignal_new(xn.xn_base, sigs[i], signal_cb, &xn);
		evsignal_add(sig[i], NULL);
	}
	log_info("listening on %s (%s), %zu types from %s", listen,
	    cert != NULL ? (ca != NULL ? "mutual TLS" : "TLS") : "plaintext",
	    xn.xn_config[0].xc_ntypes, xn.xn_path);
	event_base_dispatch(xn.xn_base);
	serve_free(xn.xn_server);
	for (i = 0; i < 3; i++)
		event_free(sig[i]);
	resource_free(&xn.xn_config[xn.xn_cur]);
	event_base_free(xn.xn_base);
	grpc_shutdown();
	libevent_global_shutdown();
	return 0;
}
