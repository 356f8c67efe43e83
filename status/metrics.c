/*
 * The merged Prometheus pages: GET /stats/prometheus (and /metrics) on the
 * status port, and GET /stats/prometheus on the Prometheus port. As in
 * Istio, the agent's metrics come first, then the proxy's (its admin
 * /stats/prometheus), then the application's (ISTIO_PROMETHEUS_ANNOTATIONS,
 * status port only); the application goes last because an OpenMetrics page
 * ends with "# EOF". The proxy and the application are fetched in parallel.
 *
 * The proxy's page can be very large, so it is streamed: what arrives is
 * passed on up to its last complete line, and reading from the proxy pauses
 * while the scraper has more than MERGE_HIGH bytes unread, so memory stays
 * bounded whatever the page's size. The response's content type depends on
 * the application's (OpenMetrics is passed through), so the reply starts
 * only once the application has answered; meanwhile at most MERGE_HOLD
 * bytes of the proxy's page are held. A source that fails or times out is
 * left out (a proxy failing mid-page ends its part at its last complete
 * line) and counted in istio_agent_scrape_failures_total.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/http_struct.h>
#include <jansson.h>

#include "status.h"

#define MERGE_HIGH		(256 * 1024)
#define MERGE_IO_SIZE		(128 * 1024)
#define MERGE_HOLD		(256 * 1024)
#define MERGE_APP_MAX		(32 * 1024 * 1024)
#define MERGE_DEFAULT_TIMEOUT	(10 * 1000000000LL)

#define TYPE_TEXT	"text/plain; version=0.0.4; charset=utf-8"

struct scrape {
	struct metrics			*sc_mt;
	struct evhttp_request		*sc_req;
	struct evhttp_connection	*sc_evcon;	/* the scraper's */
	struct http_request		*sc_proxy;
	struct http_request		*sc_app;
	struct evbuffer			*sc_pending;	/* proxy, not yet sent */
	struct evbuffer			*sc_app_body;
	char				*sc_app_type;
	int				 sc_with_app;
	int				 sc_started;
	int				 sc_proxy_done;
	int				 sc_app_done;
	int				 sc_app_ok;
	int				 sc_paused;
	int				 sc_aborting;	/* cut, not ended */
	struct event			*sc_abort_ev;
	TAILQ_ENTRY(scrape)		 sc_entry;
};

TAILQ_HEAD(scrapes, scrape);

struct metrics {
	struct status		*mt_st;
	struct metrics_app	 mt_app;	/* ma_port 0: none */
	unsigned long long	 mt_scrapes;
	unsigned long long	 mt_fail_envoy;
	unsigned long long	 mt_fail_app;
	unsigned long long	 mt_fail_agent;
	struct scrapes		 mt_scrapes_open;
};

static void	metrics_proxy_flush(struct scrape *);
static void	metrics_finish(struct scrape *);

/*
 * ISTIO_PROMETHEUS_ANNOTATIONS: {"scrape":"true","path":"/metrics",
 * "port":"8080"}. A "scrape" other than "true" turns the application's
 * part off (ma_port 0); the path defaults to /metrics.
 */
int
metrics_parse_annotations(const char *text, struct metrics_app *app,
    char *err, size_t errlen)
{
	json_t		*root, *v;
	json_error_t	 jerr;
	const char	*s;
	long long	 port = 0;
	char		*end;
	int		 rc = -1;

	memset(app, 0, sizeof(*app));
	if ((root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		snprintf(err, errlen, "failed to unmarshall "
		    "ISTIO_PROMETHEUS_ANNOTATIONS: %s", jerr.text);
		return -1;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "failed to unmarshall "
		    "ISTIO_PROMETHEUS_ANNOTATIONS: not a JSON object");
		goto out;
	}
	if ((v = json_object_get(root, "scrape")) != NULL) {
		if (!json_is_string(v)) {
			snprintf(err, errlen, "ISTIO_PROMETHEUS_ANNOTATIONS: "
			    "\"scrape\" is not a string");
			goto out;
		}
		if (strcmp(json_string_value(v), "true") != 0) {
			rc = 0;
			goto out;
		}
	}
	if ((v = json_object_get(root, "port")) == NULL) {
		snprintf(err, errlen, "ISTIO_PROMETHEUS_ANNOTATIONS: no "
		    "\"port\"");
		goto out;
	}
	if (json_is_integer(v))
		port = json_integer_value(v);
	else if (json_is_string(v)) {
		s = json_string_value(v);
		port = strtoll(s, &end, 10);
		if (*s == '\0' || *end != '\0')
			port = 0;
	}
	if (port < 1 || port > 65535) {
		snprintf(err, errlen, "ISTIO_PROMETHEUS_ANNOTATIONS: \"port\" "
		    "is not a port (1-65535)");
		goto out;
	}
	s = "/metrics";
	if ((v = json_object_get(root, "path")) != NULL) {
		if (!json_is_string(v)) {
			snprintf(err, errlen, "ISTIO_PROMETHEUS_ANNOTATIONS: "
			    "\"path\" is not a string");
			goto out;
		}
		if (*json_string_value(v) != '\0')
			s = json_string_value(v);
	}
	if (strpbrk(s, " \t\r\n") != NULL || strlen(s) > 1024) {
		snprintf(err, errlen, "ISTIO_PROMETHEUS_ANNOTATIONS: \"path\" "
		    "is not a URL path");
		goto out;
	}
	if (*s == '/')
		app->ma_path = xstrdup(s);
	else
		xasprintf(&app->ma_path, "/%s", s);
	app->ma_port = (int)port;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/*
 * The response's content type from the application's: OpenMetrics (of a
 * version Prometheus knows) is passed through, anything else is text 0.0.4.
 */
const char *
metrics_negotiate(const char *type)
{
	const char	*p, *semi;
	char		 version[32] = "";
	size_t		 len;

	if (type == NULL)
		return TYPE_TEXT;
	while (*type == ' ')
		type++;
	semi = strchr(type, ';');
	len = semi != NULL ? (size_t)(semi - type) : strlen(type);
	while (len > 0 && type[len - 1] == ' ')
		len--;
	if (len != strlen("application/openmetrics-text") ||
	    strncasecmp(type, "application/openmetrics-text", len) != 0)
		return TYPE_TEXT;
	for (p = semi; p != NULL; p = strchr(p + 1, ';')) {
		const char *q = p + 1;

		while (*q == ' ')
			q++;
		if (strncasecmp(q, "version=", 8) == 0) {
			q += 8;
			len = strcspn(q, "; ");
			if (len >= sizeof(version))
				return TYPE_TEXT;
			memcpy(version, q, len);
			version[len] = '\0';
		}
	}
	if (*version == '\0' || strcmp(version, "1.0.0") == 0)
		return "application/openmetrics-text; version=1.0.0; "
		    "charset=utf-8";
	if (strcmp(version, "0.0.1") == 0)
		return "application/openmetrics-text; version=0.0.1; "
		    "charset=utf-8";
	return TYPE_TEXT;
}

/* How many bytes of buf are complete lines (up to its last newline). */
size_t
metrics_complete_lines(struct evbuffer *buf)
{
	struct evbuffer_iovec	*vec;
	int			 n, i;
	size_t			 before = 0, total = 0, found = 0;
	const char		*nl;

	if (evbuffer_get_length(buf) == 0)
		return 0;
	n = evbuffer_peek(buf, -1, NULL, NULL, 0);
	if (n <= 0)
		return 0;
	vec = xcalloc((size_t)n, sizeof(*vec));
	n = evbuffer_peek(buf, -1, NULL, vec, n);
	for (i = 0; i < n; i++)
		total += vec[i].iov_len;
	before = total;
	for (i = n - 1; i >= 0; i--) {
		before -= vec[i].iov_len;
		nl = memrchr(vec[i].iov_base, '\n', vec[i].iov_len);
		if (nl != NULL) {
			found = before + (size_t)(nl -
			    (const char *)vec[i].iov_base) + 1;
			break;
		}
	}
	free(vec);
	return found;
}

/*
 * The streaming merge of one source: what arrives (in) joins pending, and
 * pending's complete lines move to out (when out is not NULL).
 */
void
metrics_stream_feed(struct evbuffer *pending, struct evbuffer *in,
    struct evbuffer *out)
{
	size_t	n;

	if (in != NULL)
		evbuffer_add_buffer(pending, in);
	if (out != NULL && (n = metrics_complete_lines(pending)) > 0)
		evbuffer_remove_buffer(pending, out, n);
}

/*
 * The source ended: a success completes its last line, a failure drops the
 * incomplete one, so that the page is never cut mid-line.
 */
void
metrics_stream_end(struct evbuffer *pending, int ok)
{
	size_t	len = evbuffer_get_length(pending), n;

	if (len == 0)
		return;
	n = metrics_complete_lines(pending);
	if (ok && n != len)
		evbuffer_add(pending, "\n", 1);
	else if (!ok && n != len) {
		/* evbuffer_drain takes from the front: keep the front aside. */
		struct evbuffer *keep = evbuffer_new();

		evbuffer_remove_buffer(pending, keep, n);
		evbuffer_drain(pending, len - n);
		evbuffer_add_buffer(pending, keep);
		evbuffer_free(keep);
	}
}

struct metrics *
metrics_new(struct status *st, char *err, size_t errlen)
{
	struct metrics	*mt;
	const char	*v;

	mt = xcalloc(1, sizeof(*mt));
	mt->mt_st = st;
	TAILQ_INIT(&mt->mt_scrapes_open);
	if ((v = st->st_config->cf_prom_annotations) != NULL && *v != '\0') {
		if (metrics_parse_annotations(v, &mt->mt_app, err,
		    errlen) == -1) {
			free(mt);
			return NULL;
		}
		if (mt->mt_app.ma_port != 0)
			log_info("application metrics: merging "
			    "http://127.0.0.1:%d%s", mt->mt_app.ma_port,
			    mt->mt_app.ma_path);
	}
	return mt;
}

static void
metrics_scrape_free(struct scrape *sc)
{
	TAILQ_REMOVE(&sc->sc_mt->mt_scrapes_open, sc, sc_entry);
	http_free(sc->sc_proxy);
	http_free(sc->sc_app);
	if (sc->sc_abort_ev != NULL)
		event_free(sc->sc_abort_ev);
	evbuffer_free(sc->sc_pending);
	evbuffer_free(sc->sc_app_body);
	free(sc->sc_app_type);
	free(sc);
}

/* Scrapes under way are evhttp's to end; only our records go here. */
void
metrics_free(struct metrics *mt)
{
	struct scrape	*sc;

	if (mt == NULL)
		return;
	while ((sc = TAILQ_FIRST(&mt->mt_scrapes_open)) != NULL) {
		if (sc->sc_evcon != NULL)
			evhttp_connection_set_closecb(sc->sc_evcon, NULL,
			    NULL);
		metrics_scrape_free(sc);
	}
	free(mt->mt_app.ma_path);
	free(mt);
}

/* The agent's own metrics: ours, the supervisor's, the relay's. */
void
metrics_agent(struct metrics *mt, struct evbuffer *out)
{
	struct status	*st = mt->mt_st;

	evbuffer_add_printf(out,
	    "# HELP istio_agent_scrapes_total The total number of scrapes.\n"
	    "# TYPE istio_agent_scrapes_total counter\n"
	    "istio_agent_scrapes_total %llu\n"
	    "# HELP istio_agent_scrape_failures_total The total number of "
	    "failed scrapes.\n"
	    "# TYPE istio_agent_scrape_failures_total counter\n"
	    "istio_agent_scrape_failures_total{type=\"agent\"} %llu\n"
	    "istio_agent_scrape_failures_total{type=\"application\"} %llu\n"
	    "istio_agent_scrape_failures_total{type=\"envoy\"} %llu\n",
	    mt->mt_scrapes, mt->mt_fail_agent, mt->mt_fail_app,
	    mt->mt_fail_envoy);
	ready_metrics(st->st_ready, out);
	procstat_metrics(out);
	if (st->st_sv != NULL)
		supervise_metrics(st->st_sv, out);
	if (st->st_relay != NULL)
		relay_metrics(st->st_relay, out);
}

static void
metrics_closecb(struct evhttp_connection *evcon, void *arg)
{
	struct scrape	*sc = arg;

	(void)evcon;
	/*
	 * The scraper went away. A request evhttp has detached from the
	 * connection (the client failed before the reply ended) is left to
	 * us to free; one still attached is freed with the connection.
	 */
	log_debug("metrics: scraper closed the connection mid-response");
	if (evhttp_request_get_connection(sc->sc_req) == NULL)
		evhttp_request_free(sc->sc_req);
	sc->sc_req = NULL;
	sc->sc_evcon = NULL;
	metrics_scrape_free(sc);
}

static size_t
metrics_unsent(struct scrape *sc)
{
	if (sc->sc_evcon == NULL)
		return 0;
	return evbuffer_get_length(bufferevent_get_output(
	    evhttp_connection_get_bufferevent(sc->sc_evcon)));
}

static void
metrics_pause(struct scrape *sc, int paused)
{
	if (sc->sc_proxy == NULL || sc->sc_paused == paused)
		return;
	sc->sc_paused = paused;
	http_pause(sc->sc_proxy, paused);
}

/* The scraper has read everything sent so far. */
static void
metrics_sent_cb(struct evhttp_connection *evcon, void *arg)
{
	struct scrape	*sc = arg;

	(void)evcon;
	if (sc->sc_aborting) {
		/* Not from inside the connection's own callback. */
		event_active(sc->sc_abort_ev, EV_TIMEOUT, 0);
		return;
	}
	metrics_pause(sc, 0);
}

/* The page was sent as far as it goes: close without ending it. */
static void
metrics_abort_cb(evutil_socket_t fd, short what, void *arg)
{
	struct scrape			*sc = arg;
	struct evhttp_connection	*evcon = sc->sc_evcon;

	(void)fd;
	(void)what;
	evhttp_connection_set_closecb(evcon, NULL, NULL);
	sc->sc_evcon = NULL;
	metrics_scrape_free(sc);
	/* Frees the request too; the scraper sees no final chunk. */
	evhttp_connection_free(evcon);
}

/*
 * A source failed after the reply started: what was sent cannot be taken
 * back, so the reply is cut rather than ended, once its complete lines
 * have been written. A chunked reply then lacks its last chunk and the
 * scraper sees a failed scrape, not a short page that looks whole.
 */
static void
metrics_abort(struct scrape *sc)
{
	sc->sc_aborting = 1;
	sc->sc_abort_ev = evtimer_new(sc->sc_mt->mt_st->st_base,
	    metrics_abort_cb, sc);
	if (metrics_unsent(sc) == 0)
		event_active(sc->sc_abort_ev, EV_TIMEOUT, 0);
}

static void
metrics_send(struct scrape *sc, struct evbuffer *buf)
{
	if (evbuffer_get_length(buf) == 0)
		return;
	evhttp_send_reply_chunk_with_cb(sc->sc_req, buf, metrics_sent_cb, sc);
}

static void
metrics_start_reply(struct scrape *sc)
{
	struct evbuffer	*buf;
	const char	*type = TYPE_TEXT;

	if (sc->sc_app_ok)
		type = metrics_negotiate(sc->sc_app_type);
	evhttp_add_header(evhttp_request_get_output_headers(sc->sc_req),
	    "Content-Type", type);
	/*
	 * HTTP/1.0 has no chunks: the streamed page ends with the connection.
	 * With "Connection: keep-alive" evhttp would instead announce the
	 * length of its (empty) output buffer, "Content-Length: 0", so the
	 * request's wish is dropped and the connection closes at the end.
	 */
	if (sc->sc_req->major == 1 && sc->sc_req->minor == 0)
		evhttp_remove_header(evhttp_request_get_input_headers(
		    sc->sc_req), "Connection");
	evhttp_send_reply_start(sc->sc_req, 200, "OK");
	sc->sc_started = 1;
	buf = evbuffer_new();
	metrics_agent(sc->sc_mt, buf);
	metrics_send(sc, buf);
	evbuffer_free(buf);
	metrics_proxy_flush(sc);
	if (sc->sc_proxy_done)
		metrics_finish(sc);
	else
		metrics_pause(sc, metrics_unsent(sc) > MERGE_HIGH);
}

/* Sends the complete lines of the proxy's page received so far. */
static void
metrics_proxy_flush(struct scrape *sc)
{
	struct evbuffer	*chunk;

	chunk = evbuffer_new();
	metrics_stream_feed(sc->sc_pending, NULL, chunk);
	metrics_send(sc, chunk);
	evbuffer_free(chunk);
}

static void
metrics_proxy_data(struct http_request *hr, struct evbuffer *in, void *arg)
{
	struct scrape	*sc = arg;

	(void)hr;
	metrics_stream_feed(sc->sc_pending, in, NULL);
	if (!sc->sc_started) {
		if (evbuffer_get_length(sc->sc_pending) > MERGE_HOLD)
			metrics_pause(sc, 1);
		return;
	}
	metrics_proxy_flush(sc);
	if (metrics_unsent(sc) > MERGE_HIGH)
		metrics_pause(sc, 1);
}

static void
metrics_proxy_done(const struct http_result *res, void *arg)
{
	struct scrape	*sc = arg;

	sc->sc_proxy = NULL;
	sc->sc_proxy_done = 1;
	if (res->hs_error == HTTP_ERR_NONE && res->hs_code == 200) {
		metrics_stream_feed(sc->sc_pending, res->hs_body, NULL);
		metrics_stream_end(sc->sc_pending, 1);
	} else {
		sc->sc_mt->mt_fail_envoy++;
		if (res->hs_error == HTTP_ERR_NONE)
			log_warnx("failed scraping envoy metrics: HTTP status "
			    "%d", res->hs_code);
		else
			log_warnx("failed scraping envoy metrics: %s",
			    res->hs_reason);
		/* Before the reply nothing of it was sent: leave it all out. */
		if (!sc->sc_started)
			evbuffer_drain(sc->sc_pending,
			    evbuffer_get_length(sc->sc_pending));
		else {
			metrics_stream_end(sc->sc_pending, 0);
			metrics_proxy_flush(sc);
			metrics_abort(sc);
			return;
		}
	}
	if (!sc->sc_started)
		return;
	metrics_proxy_flush(sc);
	if (!sc->sc_with_app || sc->sc_app_done)
		metrics_finish(sc);
}

/* The application's page, kept whole (up to MERGE_APP_MAX). */
static void
metrics_app_done(const struct http_result *res, void *arg)
{
	struct scrape	*sc = arg;
	const char	*type;

	sc->sc_app = NULL;
	sc->sc_app_done = 1;
	if (res->hs_error == HTTP_ERR_NONE && res->hs_code == 200) {
		sc->sc_app_ok = 1;
		if ((type = evhttp_find_header(res->hs_headers,
		    "Content-Type")) != NULL)
			sc->sc_app_type = xstrdup(type);
		evbuffer_add_buffer(sc->sc_app_body, res->hs_body);
		metrics_stream_end(sc->sc_app_body, 1);
	} else {
		sc->sc_mt->mt_fail_app++;
		if (res->hs_error == HTTP_ERR_TOO_LARGE)
			log_warnx("failed scraping application metrics: "
			    "larger than %d bytes", MERGE_APP_MAX);
		else if (res->hs_error == HTTP_ERR_NONE)
			log_warnx("failed scraping application metrics: HTTP "
			    "status %d", res->hs_code);
		else
			log_warnx("failed scraping application metrics: %s",
			    res->hs_reason);
	}
	if (!sc->sc_started)
		metrics_start_reply(sc);
	else if (sc->sc_proxy_done)
		metrics_finish(sc);
}

/* Every part is in: the application's page, then the end of the reply. */
static void
metrics_finish(struct scrape *sc)
{
	if (sc->sc_app_ok)
		metrics_send(sc, sc->sc_app_body);
	evhttp_connection_set_closecb(sc->sc_evcon, NULL, NULL);
	evhttp_send_reply_end(sc->sc_req);
	sc->sc_evcon = NULL;
	metrics_scrape_free(sc);
}

/* X-Prometheus-Scrape-Timeout-Seconds, as Istio reads it. */
static int64_t
metrics_timeout(struct evhttp_request *req)
{
	const char	*v;
	char		*end;
	double		 secs;

	v = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "X-Prometheus-Scrape-Timeout-Seconds");
	if (v == NULL)
		return MERGE_DEFAULT_TIMEOUT;
	secs = strtod(v, &end);
	if (*v == '\0' || *end != '\0' || !isfinite(secs) || secs <= 0 ||
	    secs > 3600)
		return MERGE_DEFAULT_TIMEOUT;
	return (int64_t)(secs * 1e9);
}

static struct http_request *
metrics_fetch(struct scrape *sc, int port, const char *path,
    int64_t timeout, const char *what)
{
	struct http_request	*hr;
	char			 err[256];

	hr = http_new(sc->sc_mt->mt_st->st_base, "GET", "127.0.0.1", port,
	    path, timeout);
	if (strcmp(what, "application") == 0) {
		struct evkeyvalq *in = evhttp_request_get_input_headers(
		    sc->sc_req);
		static const char *const fwd[] = { "Accept", "User-Agent",
		    "X-Prometheus-Scrape-Timeout-Seconds", NULL };
		const char *v;
		int i;

		for (i = 0; fwd[i] != NULL; i++) {
			if ((v = evhttp_find_header(in, fwd[i])) != NULL)
				http_header(hr, fwd[i], v);
		}
		http_keep(hr, MERGE_APP_MAX, 0);
		http_callbacks(hr, NULL, metrics_app_done, sc);
	} else
		http_callbacks(hr, metrics_proxy_data, metrics_proxy_done, sc);
	http_read_size(hr, MERGE_IO_SIZE);
	if (http_start(hr, err, sizeof(err)) == -1) {
		http_free(hr);
		log_warnx("failed scraping %s metrics: %s", what, err);
		return NULL;
	}
	return hr;
}

/* with_app: the status port's page, which includes the application's. */
void
metrics_handle(struct metrics *mt, struct evhttp_request *req, int with_app)
{
	struct scrape	*sc;
	int64_t		 timeout;

	mt->mt_scrapes++;
	timeout = metrics_timeout(req);
	sc = xcalloc(1, sizeof(*sc));
	sc->sc_mt = mt;
	sc->sc_req = req;
	sc->sc_evcon = evhttp_request_get_connection(req);
	sc->sc_pending = evbuffer_new();
	sc->sc_app_body = evbuffer_new();
	sc->sc_with_app = with_app && mt->mt_app.ma_port != 0;
	TAILQ_INSERT_TAIL(&mt->mt_scrapes_open, sc, sc_entry);
	evhttp_connection_set_closecb(sc->sc_evcon, metrics_closecb, sc);
	bufferevent_set_max_single_write(evhttp_connection_get_bufferevent(
	    sc->sc_evcon), MERGE_IO_SIZE);

	sc->sc_proxy = metrics_fetch(sc, mt->mt_st->st_config->
	    cf_proxy_admin_port, "/stats/prometheus", timeout, "envoy");
	if (sc->sc_proxy == NULL) {
		mt->mt_fail_envoy++;
		sc->sc_proxy_done = 1;
	}
	if (sc->sc_with_app) {
		/*
		 * The reply starts once the application has answered, so it
		 * gets half the time: a slow application is left out while
		 * the proxy's page still has time to be sent.
		 */
		sc->sc_app = metrics_fetch(sc, mt->mt_app.ma_port,
		    mt->mt_app.ma_path, timeout / 2, "application");
		if (sc->sc_app == NULL) {
			mt->mt_fail_app++;
			sc->sc_app_done = 1;
		}
	}
	if (!sc->sc_with_app || sc->sc_app_done)
		metrics_start_reply(sc);
}
