/*
 * GET /healthz/ready: whether the pod should get traffic. The agent's own
 * state comes first (an epoch LIVE, not draining: supervise_ready), then
 * Istio's two checks against the proxy's admin API: CDS and LDS have each
 * had a successful update, then the server is LIVE with its workers
 * started. Like Istio, a check that has passed is not asked again; here
 * that holds per live epoch, so a new epoch is checked afresh. While the
 * newest epoch is only starting, the checks still run so the answer says
 * why (most often: no config from istiod); only when the admin port does
 * not answer is it the supervisor's "epoch N starting".
 *
 * Requests that arrive while a check is under way wait for it, so a burst
 * of probes costs the proxy one admin request. The answer is 200 with an
 * empty body, or 503 with the reason; each change of the reason is logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "status.h"

#define READY_ADMIN_TIMEOUT	(3 * 1000000000LL)
#define READY_STARTING		(-2)	/* no epoch live, the newest starting */

#define READY_CONFIG_FILTER	"^(cluster_manager\\.cds|listener_manager" \
				"\\.lds)\\.(update_success|update_rejected)$"
#define READY_SERVER_FILTER	"^(server\\.state|listener_manager\\." \
				"workers_started)"

struct ready_waiter {
	struct evhttp_request		*rw_req;
	TAILQ_ENTRY(ready_waiter)	 rw_entry;
};

TAILQ_HEAD(ready_waiters, ready_waiter);

struct ready {
	struct status		*rd_st;
	struct http_request	*rd_http;	/* the check under way */
	int			 rd_step;	/* 1: config, 2: server */
	int			 rd_epoch;	/* the epoch being checked */
	int			 rd_unreachable; /* the admin port did not answer */
	int			 rd_config_epoch; /* step 1 passed for it */
	int			 rd_ready_epoch;  /* both passed for it */
	struct ready_waiters	 rd_waiters;
	char			*rd_last;	/* last reason logged */
	double			 rd_startup;	/* seconds, 0: not yet */
};

static void	ready_check(struct ready *);

struct ready *
ready_new(struct status *st)
{
	struct ready	*rd;

	rd = xcalloc(1, sizeof(*rd));
	rd->rd_st = st;
	rd->rd_config_epoch = -1;
	rd->rd_ready_epoch = -1;
	TAILQ_INIT(&rd->rd_waiters);
	return rd;
}

/* Pending requests are evhttp's to free; only our records go here. */
void
ready_free(struct ready *rd)
{
	struct ready_waiter	*rw;

	if (rd == NULL)
		return;
	http_free(rd->rd_http);
	while ((rw = TAILQ_FIRST(&rd->rd_waiters)) != NULL) {
		TAILQ_REMOVE(&rd->rd_waiters, rw, rw_entry);
		free(rw);
	}
	free(rd->rd_last);
	free(rd);
}

static void
ready_note(struct ready *rd, const char *reason)
{
	struct timespec	ts;

	if (rd->rd_last != NULL && strcmp(rd->rd_last, reason) == 0)
		return;
	free(rd->rd_last);
	rd->rd_last = xstrdup(reason);
	if (*reason == '\0') {
		if (rd->rd_startup == 0) {
			clock_gettime(CLOCK_REALTIME, &ts);
			rd->rd_startup = (double)ts.tv_sec + ts.tv_nsec / 1e9 -
			    procstat_start_time();
			if (rd->rd_startup <= 0)
				rd->rd_startup = 1e-6;
			log_info("readiness: ready (%.3fs after the agent "
			    "started)", rd->rd_startup);
		} else
			log_info("readiness: ready");
	} else
		log_info("readiness: not ready: %s", reason);
}

static void
ready_answer(struct ready *rd, struct evhttp_request *req,
    const char *reason)
{
	ready_note(rd, reason);
	if (*reason == '\0')
		status_reply(req, 200, "text/plain; charset=utf-8", NULL);
	else
		status_reply(req, 503, "text/plain; charset=utf-8", reason);
}

static void
ready_answer_all(struct ready *rd, const char *reason)
{
	struct ready_waiter	*rw;

	while ((rw = TAILQ_FIRST(&rd->rd_waiters)) != NULL) {
		TAILQ_REMOVE(&rd->rd_waiters, rw, rw_entry);
		ready_answer(rd, rw->rw_req, reason);
		free(rw);
	}
}

/*
 * The live epoch, or 0 when there is no supervisor (unit tests); -1 when
 * the agent's own state says not ready (why says so). READY_STARTING when
 * the newest epoch is only starting: the proxy's admin port then says more
 * than the supervisor can (most often that istiod has sent no config), so
 * Istio's checks still run; why keeps the supervisor's text in case the
 * admin port does not answer.
 */
static int
ready_epoch(struct ready *rd, char *why, size_t len)
{
	struct supervise	*sv = rd->rd_st->st_sv;

	*why = '\0';
	if (sv == NULL)
		return 0;
	if (supervise_ready(sv, why, len) == -1) {
		if (*why == '\0')
			snprintf(why, len, "proxy not ready");
		/* Whatever epoch goes live next is checked afresh. */
		rd->rd_ready_epoch = -1;
		if (supervise_starting(sv) >= 0) {
			if (rd->rd_config_epoch != READY_STARTING)
				rd->rd_config_epoch = -1;
			return READY_STARTING;
		}
		rd->rd_config_epoch = -1;
		return -1;
	}
	return supervise_live_epoch(sv);
}

void
ready_parse_config(const char *text, size_t len, long long v[4])
{
	static const char *const names[4] = {
		"cluster_manager.cds.update_success",
		"cluster_manager.cds.update_rejected",
		"listener_manager.lds.update_success",
		"listener_manager.lds.update_rejected",
	};
	int	i;

	for (i = 0; i < 4; i++) {
		if (envoystats_get(text, len, names[i], &v[i]) == -1)
			v[i] = 0;
	}
}

/* 0 when both stats are present, with server.state and workers_started. */
int
ready_parse_server(const char *text, size_t len, long long *state,
    long long *workers)
{
	if (envoystats_get(text, len, "server.state", state) == -1 ||
	    envoystats_get(text, len, "listener_manager.workers_started",
	    workers) == -1)
		return -1;
	return 0;
}

static const char *
ready_state_name(long long state)
{
	switch (state) {
	case 0:
		return "LIVE";
	case 1:
		return "DRAINING";
	case 2:
		return "PRE_INITIALIZING";
	case 3:
		return "INITIALIZING";
	default:
		return "UNKNOWN";
	}
}

/* Ends a check: cache what passed, answer everyone waiting. */
static void
ready_done(struct ready *rd, int passed, const char *reason)
{
	char	why[512];
	int	epoch;

	rd->rd_http = NULL;
	epoch = ready_epoch(rd, why, sizeof(why));
	if (epoch == -1) {
		ready_answer_all(rd, why);
		return;
	}
	if (epoch != rd->rd_epoch) {
		/* A new epoch went live meanwhile: check that one. */
		ready_check(rd);
		return;
	}
	if (epoch == READY_STARTING) {
		/*
		 * Not live yet: the admin port's reason when it has one, the
		 * supervisor's when it does not answer or has nothing to add.
		 */
		if (passed && rd->rd_step == 1) {
			rd->rd_config_epoch = epoch;
			ready_check(rd);
		} else
			ready_answer_all(rd, passed || rd->rd_unreachable ?
			    why : reason);
		return;
	}
	if (passed && rd->rd_step == 1) {
		rd->rd_config_epoch = epoch;
		ready_check(rd);
		return;
	}
	if (passed)
		rd->rd_ready_epoch = epoch;
	ready_answer_all(rd, passed ? "" : reason);
}

static void
ready_http_done(const struct http_result *res, void *arg)
{
	struct ready	*rd = arg;
	char		 reason[512];
	const char	*text = "";
	size_t		 len = 0;
	long long	 v[4], state, workers;
	int		 admin = rd->rd_st->st_config->cf_proxy_admin_port;
	int		 ok = res->hs_error == HTTP_ERR_NONE;

	rd->rd_unreachable = !ok || res->hs_code != 200;
	if (ok) {
		len = evbuffer_get_length(res->hs_body);
		text = (const char *)evbuffer_pullup(res->hs_body, -1);
		if (text == NULL)
			text = "";
	}
	if (!ok || res->hs_code != 200) {
		char detail[64];

		if (ok)
			snprintf(detail, sizeof(detail), "HTTP status %d",
			    res->hs_code);
		else
			snprintf(detail, sizeof(detail), "%s",
			    res->hs_reason);
		if (rd->rd_step == 1)
			snprintf(reason, sizeof(reason), "failed to get config "
			    "status from the proxy admin port %d: %s", admin,
			    detail);
		else
			snprintf(reason, sizeof(reason), "failed to get "
			    "readiness stats: %s", detail);
		ready_done(rd, 0, reason);
		return;
	}
	if (rd->rd_step == 1) {
		ready_parse_config(text, len, v);
		if (v[0] > 0 && v[2] > 0) {
			ready_done(rd, 1, "");
			return;
		}
		snprintf(reason, sizeof(reason), "config %s: cds updates: %lld "
		    "successful, %lld rejected; lds updates: %lld successful, "
		    "%lld rejected", v[1] > 0 || v[3] > 0 ? "received from "
		    "XDS server, but was rejected" : "not received from XDS "
		    "server (is Istiod running?)", v[0], v[1], v[2], v[3]);
		ready_done(rd, 0, reason);
		return;
	}
	if (memmem(text, len, "server.state", 12) == NULL) {
		ready_done(rd, 0, "server.state is not yet updated");
		return;
	}
	if (memmem(text, len, "listener_manager.workers_started", 32) ==
	    NULL) {
		ready_done(rd, 0, "listener_manager.workers_started is not "
		    "yet updated");
		return;
	}
	if (ready_parse_server(text, len, &state, &workers) == -1) {
		ready_done(rd, 0, "failed to get readiness stats: malformed "
		    "stats");
		return;
	}
	if (state != 0) {
		snprintf(reason, sizeof(reason), "server is not live, current "
		    "state is: %s", ready_state_name(state));
		ready_done(rd, 0, reason);
		return;
	}
	if (workers != 1) {
		ready_done(rd, 0, "workers have not yet started");
		return;
	}
	ready_done(rd, 1, "");
}

/* Starts the next step of the check for the live epoch. */
static void
ready_check(struct ready *rd)
{
	struct config	*cf = rd->rd_st->st_config;
	char		 why[512], err[512], path[512], *enc;
	int		 epoch;

	epoch = ready_epoch(rd, why, sizeof(why));
	if (epoch == -1) {
		ready_answer_all(rd, why);
		return;
	}
	if (epoch >= 0 && rd->rd_ready_epoch == epoch) {
		ready_answer_all(rd, "");
		return;
	}
	rd->rd_epoch = epoch;
	rd->rd_step = rd->rd_config_epoch == epoch ? 2 : 1;
	enc = evhttp_uriencode(rd->rd_step == 1 ? READY_CONFIG_FILTER :
	    READY_SERVER_FILTER, -1, 0);
	snprintf(path, sizeof(path), "/stats?usedonly&filter=%s", enc);
	free(enc);
	rd->rd_http = http_new(rd->rd_st->st_base, "GET", "127.0.0.1",
	    cf->cf_proxy_admin_port, path, READY_ADMIN_TIMEOUT);
	http_callbacks(rd->rd_http, NULL, ready_http_done, rd);
	http_keep(rd->rd_http, 65536, 1);
	if (http_start(rd->rd_http, err, sizeof(err)) == -1) {
		http_free(rd->rd_http);
		rd->rd_http = NULL;
		ready_answer_all(rd, epoch == READY_STARTING ? why : err);
	}
}

void
ready_handle(struct ready *rd, struct evhttp_request *req)
{
	struct ready_waiter	*rw;
	char			 why[512];
	int			 epoch;

	epoch = ready_epoch(rd, why, sizeof(why));
	if (epoch == -1) {
		ready_answer(rd, req, why);
		return;
	}
	if (epoch >= 0 && rd->rd_ready_epoch == epoch && rd->rd_http == NULL) {
		ready_answer(rd, req, "");
		return;
	}
	rw = xcalloc(1, sizeof(*rw));
	rw->rw_req = req;
	TAILQ_INSERT_TAIL(&rd->rd_waiters, rw, rw_entry);
	if (rd->rd_http == NULL)
		ready_check(rd);
}

void
ready_metrics(struct ready *rd, struct evbuffer *out)
{
	if (rd == NULL || rd->rd_startup == 0)
		return;
	evbuffer_add_printf(out, "# HELP istio_agent_ready_duration_seconds "
	    "Time from the agent's start to its first ready answer.\n"
	    "# TYPE istio_agent_ready_duration_seconds gauge\n"
	    "istio_agent_ready_duration_seconds %.6f\n", rd->rd_startup);
}
