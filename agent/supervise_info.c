/*
 * What the supervisor tells the rest of the agent: its side of readiness,
 * whether it is starting, draining or done, /debug/epochs and its metrics.
 * Read only; every change of state is supervise.c's.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "supervise.h"

int
supervise_live_epoch(struct supervise *sv)
{
	struct epoch	*ep = epoch_live(sv);

	return ep != NULL ? ep->ep_num : -1;
}

/* Draining for a shutdown (or on request), or done: readiness is 503. */
int
supervise_draining(struct supervise *sv)
{
	return sv->sv_state == SV_TERMINATING || sv->sv_state == SV_DRAINED ||
	    sv->sv_state == SV_STOPPING || sv->sv_state == SV_DONE;
}

/* Whether the supervisor is stopping the proxy for good, or has. */
int
supervise_stopping(struct supervise *sv)
{
	return sv->sv_state == SV_STOPPING || sv->sv_state == SV_DONE;
}

/*
 * The newest epoch's number when it is only starting and nothing is LIVE,
 * else -1: readiness then asks the proxy itself why.
 */
int
supervise_starting(struct supervise *sv)
{
	struct epoch	*ep = epoch_newest(sv);

	if ((sv->sv_state != SV_STARTING && sv->sv_state != SV_PENDING) ||
	    ep == NULL || epoch_live(sv) != NULL)
		return -1;
	return ep->ep_num;
}

/* The agent's side of readiness: 0, or -1 with the reason. */
int
supervise_ready(struct supervise *sv, char *why, size_t len)
{
	struct epoch	*ep = epoch_newest(sv);
	char		 d[32];
	int64_t		 left;

	switch (sv->sv_state) {
	case SV_TERMINATING:
	case SV_DRAINED:
	case SV_STOPPING:
	case SV_DONE:
		snprintf(why, len, "agent is draining");
		return -1;
	case SV_BACKOFF:
		left = sv->sv_backoff_until - clock_now_ns();
		duration_format(left > 0 ? left / CLOCK_MSEC * CLOCK_MSEC : 0,
		    d, sizeof(d));
		snprintf(why, len, "proxy restart in %s (attempt %d of %d): "
		    "%s", d, sv->sv_tries, sv->sv_cf->cf_restart_max_retries,
		    sv->sv_last_failure);
		return -1;
	case SV_IDLE:
		snprintf(why, len, "proxy not started");
		return -1;
	case SV_STARTING:
	case SV_PENDING:
	case SV_LIVE:
	case SV_RETRY:
		break;
	}
	if (epoch_live(sv) != NULL)
		return 0;
	if (ep != NULL)
		snprintf(why, len, "epoch %d starting", ep->ep_num);
	else
		snprintf(why, len, "no proxy running");
	return -1;
}

/* Whether the agent is done, and its exit code. */
int
supervise_finished(struct supervise *sv, int *code)
{
	if (sv->sv_state != SV_DONE)
		return 0;
	*code = sv->sv_exit_code == -1 ? 0 : sv->sv_exit_code;
	return 1;
}

/* Why the agent gave up on the proxy, or NULL. */
const char *
supervise_failure(struct supervise *sv)
{
	return sv->sv_gave_up;
}

static void
supervise_iso_time(time_t t, char *buf, size_t len)
{
	struct tm	tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The epoch a hot restart would start now. */
static int
supervise_next_epoch(struct supervise *sv)
{
	struct epoch	*ep = epoch_live(sv);

	if (ep == NULL)
		ep = epoch_newest(sv);
	return ep != NULL ? ep->ep_num + 1 : 0;
}

/* A new reference: the supervisor's state for /debug/epochs. */
json_t *
supervise_json(struct supervise *sv)
{
	json_t		*o, *list, *restarts, *e, *hot;
	struct epoch	*ep;
	char		 when[32];
	int		 i;
	int64_t		 left, now = clock_now_ns();

	list = json_array();
	TAILQ_FOREACH(ep, &sv->sv_epochs, ep_entry) {
		supervise_iso_time(ep->ep_wall_started, when, sizeof(when));
		e = json_pack("{s:i, s:i, s:s, s:s, s:s}", "epoch", ep->ep_num,
		    "pid", (int)ep->ep_pid, "state",
		    epoch_state_name(ep->ep_state), "started", when,
		    "bootstrap", ep->ep_path);
		if (ep->ep_live_at != 0)
			json_object_set_new(e, "live_after_ms", json_integer(
			    (ep->ep_live_at - ep->ep_started) / CLOCK_MSEC));
		json_array_append_new(list, e);
	}
	restarts = json_object();
	for (i = 0; i < RESTART_NREASONS; i++)
		json_object_set_new(restarts,
		    supervise_reason_name((enum restart_reason)i),
		    json_integer((json_int_t)sv->sv_restarts[i]));
	left = sv->sv_state == SV_RETRY ? sv->sv_retry_until - now : 0;
	hot = json_pack("{s:i, s:I, s:I, s:s, s:I}", "attempt",
	    sv->sv_hot_tries, "delay_ms", (json_int_t)(sv->sv_retry_delay /
	    CLOCK_MSEC), "next_try_in_ms", (json_int_t)(left > 0 ?
	    left / CLOCK_MSEC : 0), "last_failure", sv->sv_hot_failure,
	    "failures", (json_int_t)sv->sv_hot_failures);
	left = sv->sv_state == SV_BACKOFF ? sv->sv_backoff_until - now : 0;
	o = json_pack("{s:s, s:o, s:i, s:i, s:o, s:{s:i, s:i, s:I, s:I}, "
	    "s:s, s:b, s:o}",
	    "state", supervise_state_name(sv->sv_state),
	    "epochs", list,
	    "live_epoch", supervise_live_epoch(sv),
	    "next_epoch", supervise_next_epoch(sv),
	    "restarts", restarts,
	    "backoff", "attempt", sv->sv_tries, "max_retries",
	    sv->sv_cf->cf_restart_max_retries, "delay_ms",
	    (json_int_t)(sv->sv_backoff_delay / CLOCK_MSEC), "next_try_in_ms",
	    (json_int_t)(left > 0 ? left / CLOCK_MSEC : 0),
	    "last_failure", sv->sv_last_failure,
	    "restart_pending", sv->sv_state == SV_PENDING ||
	    sv->sv_state == SV_RETRY,
	    "hot_restart_retry", hot);
	return o;
}

/* The supervisor's metrics, Prometheus text 0.0.4. */
void
supervise_metrics(struct supervise *sv, struct evbuffer *out)
{
	int	 i;

	evbuffer_add_printf(out,
	    "# HELP istio_agent_startup_duration_seconds Time from the agent's "
	    "start to the first LIVE proxy epoch.\n"
	    "# TYPE istio_agent_startup_duration_seconds gauge\n"
	    "istio_agent_startup_duration_seconds %.6f\n",
	    (double)sv->sv_startup / CLOCK_SEC);
	evbuffer_add_printf(out,
	    "# HELP istio_agent_proxy_epoch The LIVE proxy epoch, -1 if none.\n"
	    "# TYPE istio_agent_proxy_epoch gauge\n"
	    "istio_agent_proxy_epoch %d\n", supervise_live_epoch(sv));
	evbuffer_add_printf(out,
	    "# HELP istio_agent_proxy_processes Proxy processes alive.\n"
	    "# TYPE istio_agent_proxy_processes gauge\n"
	    "istio_agent_proxy_processes %d\n", epoch_count(sv));
	evbuffer_add_printf(out,
	    "# HELP istio_agent_proxy_restarts_total Proxy restarts by "
	    "reason.\n"
	    "# TYPE istio_agent_proxy_restarts_total counter\n");
	for (i = 0; i < RESTART_NREASONS; i++)
		evbuffer_add_printf(out,
		    "istio_agent_proxy_restarts_total{reason=\"%s\"} %lu\n",
		    supervise_reason_name((enum restart_reason)i),
		    sv->sv_restarts[i]);
	evbuffer_add_printf(out,
	    "# HELP istio_agent_proxy_exits_total Proxy processes ended, by "
	    "exit code (or signal).\n"
	    "# TYPE istio_agent_proxy_exits_total counter\n");
	for (i = 0; i < SUPERVISE_MAX_CODES && sv->sv_exits[i].name[0]; i++)
		evbuffer_add_printf(out,
		    "istio_agent_proxy_exits_total{code=\"%s\"} %lu\n",
		    sv->sv_exits[i].name, sv->sv_exits[i].count);
	evbuffer_add_printf(out,
	    "# HELP istio_agent_proxy_abnormal_drained_exits_total Draining "
	    "epochs that exited abnormally.\n"
	    "# TYPE istio_agent_proxy_abnormal_drained_exits_total counter\n"
	    "istio_agent_proxy_abnormal_drained_exits_total %lu\n",
	    sv->sv_abnormal_drained);
	evbuffer_add_printf(out,
	    "# HELP istio_agent_proxy_hot_restart_failures_total Hot restarts "
	    "whose new epoch failed before it went LIVE (the LIVE epoch kept "
	    "serving).\n"
	    "# TYPE istio_agent_proxy_hot_restart_failures_total counter\n"
	    "istio_agent_proxy_hot_restart_failures_total %lu\n",
	    sv->sv_hot_failures);
	evbuffer_add_printf(out,
	    "# HELP istio_agent_proxy_backoff_attempt Failed starts in a row "
	    "(0 when healthy).\n"
	    "# TYPE istio_agent_proxy_backoff_attempt gauge\n"
	    "istio_agent_proxy_backoff_attempt %d\n"
	    "# HELP istio_agent_proxy_backoff_seconds The current backoff "
	    "delay before a cold start.\n"
	    "# TYPE istio_agent_proxy_backoff_seconds gauge\n"
	    "istio_agent_proxy_backoff_seconds %.3f\n",
	    sv->sv_tries, sv->sv_state == SV_BACKOFF ?
	    (double)sv->sv_backoff_delay / CLOCK_SEC : 0.0);
	evbuffer_add_printf(out,
	    "# HELP istio_agent_draining 1 while the agent drains the proxy "
	    "for shutdown.\n"
	    "# TYPE istio_agent_draining gauge\n"
	    "istio_agent_draining %d\n", supervise_draining(sv));
}
