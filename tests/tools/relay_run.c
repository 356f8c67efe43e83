/*
 * The xDS relay alone, for tests and the bench (build/tools/relay_run): the
 * same flags as "pilot-agent proxy", but no proxy is started; it serves
 * <configPath>/XDS until SIGTERM or SIGINT. SIGUSR1 prints /debug/syncz and
 * SIGUSR2 the relay's metrics on standard output.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>

#include "agent.h"

struct run {
	struct event_base	*rn_base;
	struct relay		*rn_relay;
};

static void
run_signal(evutil_socket_t sig, short what, void *arg)
{
	struct run	*rn = arg;
	struct evbuffer	*out;
	json_t		*j;

	(void)what;
	if (sig == SIGUSR1) {
		j = relay_syncz(rn->rn_relay);
		json_dumpf(j, stdout, JSON_INDENT(1) | JSON_SORT_KEYS);
		printf("\n");
		fflush(stdout);
		json_decref(j);
	} else if (sig == SIGUSR2) {
		out = evbuffer_new();
		relay_metrics(rn->rn_relay, out);
		evbuffer_write(out, 1);
		evbuffer_free(out);
	} else
		event_base_loopbreak(rn->rn_base);
}

int
main(int argc, char **argv)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGUSR1, SIGUSR2 };
	struct event	*ev[4];
	struct config	 cf;
	struct run	 rn;
	char		 err[1024];
	size_t		 i;

	log_init();
	evthread_use_pthreads();
	signal(SIGPIPE, SIG_IGN);
	if (config_parse(&cf, argc, argv, err, sizeof(err)) == -1) {
		log_error("%s", err);
		config_free(&cf);
		return EXIT_USAGE;
	}
	log_set_json(cf.cf_log_as_json);
	if ((rn.rn_base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if ((rn.rn_relay = relay_new(rn.rn_base, &cf, err, sizeof(err))) ==
	    NULL)
		fatalx("xds relay: %s", err);
	for (i = 0; i < 4; i++) {
		ev[i] = evsignal_new(rn.rn_base, sigs[i], run_signal, &rn);
		evsignal_add(ev[i], NULL);
	}
	event_base_dispatch(rn.rn_base);
	relay_free(rn.rn_relay);
	for (i = 0; i < 4; i++)
		event_free(ev[i]);
	event_base_free(rn.rn_base);
	config_free(&cf);
	libevent_global_shutdown();
	return 0;
}
