/*
 * Unit tests of status/: the parsers (admin stats, annotations, content
 * negotiation, complete lines, probers), then the servers themselves in
 * process, against a stand-in admin API and application served from the
 * same event base: readiness, the metrics merge (streamed, a source down, a
 * source failing mid-page), probes of each kind, the mutating and debug
 * endpoints. No supervisor or relay: status treats them as absent.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "status.h"
#include "check.h"

static struct event_base *base;

/* ---- The stand-in admin API and application ---- */

static int	admin_cds_ok, admin_cds_rej, admin_lds_ok, admin_state = 3;
static int	admin_workers, admin_series = 10, admin_cut;
static int	app_openmetrics;

static void
cut_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evhttp_connection_free(arg);
}

static void
fake_admin_cb(struct evhttp_request *req, void *arg)
{
	const char	*uri = evhttp_request_get_uri(req);
	struct evbuffer	*b = evbuffer_new();
	int		 i;

	(void)arg;
	if (strncmp(uri, "/stats?usedonly&filter=", 23) == 0) {
		char *dec = evhttp_decode_uri(uri + 23);

		if (strstr(dec, "cds") != NULL)
			evbuffer_add_printf(b, "cluster_manager.cds.update_"
			    "rejected: %d\ncluster_manager.cds.update_success: "
			    "%d\nlistener_manager.lds.update_rejected: 0\n"
			    "listener_manager.lds.update_success: %d\n",
			    admin_cds_rej, admin_cds_ok, admin_lds_ok);
		else
			evbuffer_add_printf(b, "listener_manager.workers_"
			    "started: %d\nserver.state: %d\n", admin_workers,
			    admin_state);
		free(dec);
		evhttp_send_reply(req, 200, "OK", b);
	} else if (strcmp(uri, "/stats/prometheus") == 0) {
		evhttp_send_reply_start(req, 200, "OK");
		evbuffer_add_printf(b, "# TYPE envoy_test_series counter\n");
		for (i = 0; i < admin_series; i++) {
			evbuffer_add_printf(b, "envoy_test_series{n=\"%d\"} "
			    "%d\n", i, i);
			if (evbuffer_get_length(b) > 8192) {
				evhttp_send_reply_chunk(req, b);
			}
		}
		if (admin_cut) {
			struct timeval tv = { 0, 100000 };

			evbuffer_add_printf(b, "envoy_partial_li");
			evhttp_send_reply_chunk(req, b);
			event_base_once(base, -1, EV_TIMEOUT, cut_cb,
			    evhttp_request_get_connection(req), &tv);
		} else {
			evhttp_send_reply_chunk(req, b);
			evhttp_send_reply_end(req);
		}
	} else
		evhttp_send_reply(req, 404, "Not Found", b);
	evbuffer_free(b);
}

static void
fake_app_cb(struct evhttp_request *req, void *arg)
{
	const char	*uri = evhttp_request_get_uri(req);
	struct evkeyvalq *out = evhttp_request_get_output_headers(req);
	struct evbuffer	*b = evbuffer_new();
	int		 n;

	(void)arg;
	if (strcmp(uri, "/metrics") == 0) {
		if (app_openmetrics) {
			evhttp_add_header(out, "Content-Type",
			    "application/openmetrics-text; version=1.0.0; "
			    "charset=utf-8");
			evbuffer_add_printf(b, "# TYPE app_requests counter\n"
			    "app_requests_total 7\n# EOF\n");
		} else
			evbuffer_add_printf(b, "app_requests_total 7");
		evhttp_send_reply(req, 200, "OK", b);
	} else if (strcmp(uri, "/hello") == 0) {
		const char *h = evhttp_find_header(
		    evhttp_request_get_input_headers(req), "X-Probe");

		evbuffer_add_printf(b, "hello %s", h != NULL ? h : "-");
		evhttp_send_reply(req, 200, "OK", b);
	} else if (strcmp(uri, "/host") == 0) {
		evbuffer_add_printf(b, "%s", evhttp_find_header(
		    evhttp_request_get_input_headers(req), "Host"));
		evhttp_send_reply(req, 200, "OK", b);
	} else if (strcmp(uri, "/fail") == 0) {
		evbuffer_add_printf(b, "down");
		evhttp_send_reply(req, 503, "Unavailable", b);
	} else if (strcmp(uri, "/big") == 0) {
		char chunk[1000];

		memset(chunk, 'x', sizeof(chunk));
		for (n = 0; n < 50; n++)
			evbuffer_add(b, chunk, sizeof(chunk));
		evhttp_send_reply(req, 500, "Err", b);
	} else if (sscanf(uri, "/redir/%d", &n) == 1) {
		char loc[64];

		snprintf(loc, sizeof(loc), n > 0 ? "/redir/%d" : "/hello",
		    n - 1);
		evhttp_add_header(out, "Location", loc);
		evhttp_send_reply(req, 302, "Found", b);
	} else if (strcmp(uri, "/away") == 0) {
		evhttp_add_header(out, "Location", "http://192.0.2.1/x");
		evhttp_send_reply(req, 301, "Moved", b);
	} else
		evhttp_send_reply(req, 404, "Not Found", b);
	evbuffer_free(b);
}

static int
serve(void (*cb)(struct evhttp_request *, void *), struct evhttp **out)
{
	struct evhttp			*http = evhttp_new(base);
	struct evhttp_bound_socket	*bs;
	struct sockaddr_in		 sin;
	socklen_t			 len = sizeof(sin);

	evhttp_set_gencb(http, cb, NULL);
	bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
	if (bs == NULL)
		fatalx("bind");
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin,
	    &len);
	*out = http;
	return ntohs(sin.sin_port);
}

/* ---- A client that runs the loop until its answer arrives ---- */

struct answer {
	int	 done;
	int	 code;
	char	*type;
	char	*body;
};

static void
answer_done(struct evhttp_request *req, void *arg)
{
	struct answer	*a = arg;
	struct evbuffer	*b;
	const char	*t;
	size_t		 len;

	a->done = 1;
	if (req == NULL)
		return;
	a->code = evhttp_request_get_response_code(req);
	if ((t = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Type")) != NULL)
		a->type = xstrdup(t);
	b = evhttp_request_get_input_buffer(req);
	len = evbuffer_get_length(b);
	a->body = xmalloc(len + 1);
	evbuffer_remove(b, a->body, len);
	a->body[len] = '\0';
}

static void
request(int port, enum evhttp_cmd_type cmd, const char *path,
    struct answer *a)
{
	struct evhttp_connection	*evcon;
	struct evhttp_request		*req;

	memset(a, 0, sizeof(*a));
	evcon = evhttp_connection_base_new(base, NULL, "127.0.0.1",
	    (unsigned short)port);
	req = evhttp_request_new(answer_done, a);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host",
	    "pod:1");
	evhttp_add_header(evhttp_request_get_output_headers(req), "X-Probe",
	    "from-kubelet");
	evhttp_make_request(evcon, req, cmd, path);
	while (!a->done)
		event_base_loop(base, EVLOOP_ONCE);
	evhttp_connection_free(evcon);
}

static void
answer_free(struct answer *a)
{
	free(a->type);
	free(a->body);
}

/* ---- Tests ---- */

static void
test_parsers(void)
{
	long long		 v[4], state, workers;
	const char		*s;
	struct metrics_app	 app;
	struct probe_def	*defs;
	struct evbuffer		*b;
	size_t			 n;
	char			 err[256];

	s = "cluster_manager.cds.update_rejected: 2\n"
	    "cluster_manager.cds.update_success: 5\n"
	    "listener_manager.lds.update_success: 1\n";
	ready_parse_config(s, strlen(s), v);
	CHECK(v[0] == 5 && v[1] == 2 && v[2] == 1 && v[3] == 0);
	s = "listener_manager.workers_started: 1\nserver.state: 0";
	CHECK(ready_parse_server(s, strlen(s), &state, &workers) == 0);
	CHECK(state == 0 && workers == 1);
	s = "server.state: 0\n";
	CHECK(ready_parse_server(s, strlen(s), &state, &workers) == -1);

	CHECK(metrics_parse_annotations("{\"scrape\":\"true\",\"path\":"
	    "\"/m\",\"port\":\"8080\"}", &app, err, sizeof(err)) == 0);
	CHECK(app.ma_port == 8080 && strcmp(app.ma_path, "/m") == 0);
	free(app.ma_path);
	CHECK(metrics_parse_annotations("{\"port\":9090}", &app, err,
	    sizeof(err)) == 0);
	CHECK(app.ma_port == 9090 && strcmp(app.ma_path, "/metrics") == 0);
	free(app.ma_path);
	CHECK(metrics_parse_annotations("{\"scrape\":\"false\",\"port\":"
	    "\"1\"}", &app, err, sizeof(err)) == 0 && app.ma_port == 0);
	CHECK(metrics_parse_annotations("{\"port\":\"x\"}", &app, err,
	    sizeof(err)) == -1);
	CHECK(metrics_parse_annotations("[1]", &app, err, sizeof(err)) == -1);
	CHECK(metrics_parse_annotations("{", &app, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "failed to unmarshall");

	CHECK(strcmp(metrics_negotiate(NULL), "text/plain; version=0.0.4; "
	    "charset=utf-8") == 0);
	CHECK_CONTAINS(metrics_negotiate("application/openmetrics-text; "
	    "version=0.0.1; charset=utf-8"), "openmetrics-text; version=0.0.1");
	CHECK_CONTAINS(metrics_negotiate("application/openmetrics-text"),
	    "version=1.0.0");
	CHECK_CONTAINS(metrics_negotiate("application/openmetrics-text; "
	    "version=9"), "text/plain");
	CHECK_CONTAINS(metrics_negotiate("text/html"), "text/plain");

	b = evbuffer_new();
	CHECK(metrics_complete_lines(b) == 0);
	evbuffer_add_printf(b, "a 1\nb 2\nc");
	CHECK(metrics_complete_lines(b) == 8);
	evbuffer_add_printf(b, "\n");
	CHECK(metrics_complete_lines(b) == 10);
	evbuffer_add_printf(b, "d");
	metrics_stream_end(b, 0);
	CHECK(evbuffer_get_length(b) == 10 && memcmp(evbuffer_pullup(b, -1),
	    "a 1\nb 2\nc\n", 10) == 0);
	evbuffer_add_printf(b, "d 4");
	metrics_stream_end(b, 1);
	CHECK(evbuffer_get_length(b) == 14 && memcmp(evbuffer_pullup(b, -1),
	    "a 1\nb 2\nc\nd 4\n", 14) == 0);
	evbuffer_free(b);

	CHECK(probe_parse("{\"/app-health/web/livez\":{\"httpGet\":{\"path\":"
	    "\"hello\",\"port\":8080,\"scheme\":\"HTTP\",\"httpHeaders\":[{"
	    "\"name\":\"X-A\",\"value\":\"b\"}]},\"timeoutSeconds\":3},"
	    "\"/app-health/db/readyz\":{\"tcpSocket\":{\"port\":\"5432\"}},"
	    "\"/app-lifecycle/g/prestopz\":{\"grpc\":{\"port\":9000,"
	    "\"service\":\"s\"}}}", &defs, &n, err, sizeof(err)) == 0);
	CHECK(n == 3);
	if (n == 3) {
		CHECK(defs[0].pd_kind == PROBE_HTTP && defs[0].pd_port == 8080);
		CHECK(strcmp(defs[0].pd_http_path, "/hello") == 0);
		CHECK(defs[0].pd_timeout == 3000000000LL);
		CHECK(defs[0].pd_nheaders == 1);
		CHECK(defs[1].pd_kind == PROBE_TCP && defs[1].pd_port == 5432);
		CHECK(defs[1].pd_timeout == 1000000000LL);
		CHECK(defs[2].pd_kind == PROBE_GRPC &&
		    strcmp(defs[2].pd_service, "s") == 0);
	}
	probe_defs_free(defs, n);
	CHECK(probe_parse("{}", &defs, &n, err, sizeof(err)) == 0 && n == 0);
	CHECK(probe_parse("{\"/app-health/web/other\":{\"tcpSocket\":{"
	    "\"port\":1}}}", &defs, &n, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "invalid path");
	CHECK(probe_parse("{\"/app-health/web/livez\":{\"exec\":{}}}", &defs,
	    &n, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "invalid prober type");
	CHECK(probe_parse("{\"/app-health/web/livez\":{\"httpGet\":{\"port\":"
	    "\"http\"}}}", &defs, &n, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "port must be int");
	CHECK(probe_parse("not json", &defs, &n, err, sizeof(err)) == -1);
	CHECK(probe_parse("{\"/app-health/a/livez\":{\"httpGet\":{\"port\":"
	    "443,\"scheme\":\"HTTPS\"}},\"/app-health/b/livez\":{\"httpGet\""
	    ":{\"port\":80,\"scheme\":\"http\"}},\"/app-health/c/livez\":{"
	    "\"httpGet\":{\"port\":443,\"scheme\":\"https\"}}}", &defs, &n,
	    err, sizeof(err)) == 0);
	CHECK(n == 3);
	if (n == 3)
		CHECK(defs[0].pd_https && !defs[1].pd_https &&
		    defs[2].pd_https);
	probe_defs_free(defs, n);
	CHECK(probe_parse("{\"/app-health/a/livez\":{\"httpGet\":{\"port\":"
	    "21,\"scheme\":\"FTP\"}}}", &defs, &n, err, sizeof(err)) == -1);
	CHECK_CONTAINS(err, "is not HTTP or HTTPS");
}

static void
test_servers(void)
{
	struct evhttp	*admin, *app;
	struct config	 cf;
	struct status	*st;
	struct answer	 a;
	int		 admin_port, app_port, closed_port, status_port, prom_port;
	char		 err[512], env[2048], *p;
	int		 i, ok;

	admin_port = serve(fake_admin_cb, &admin);
	app_port = serve(fake_app_cb, &app);
	closed_port = check_free_port();
	status_port = check_free_port();
	prom_port = check_free_port();
	config_defaults(&cf);
	cf.cf_proxy_admin_port = admin_port;
	cf.cf_status_port = status_port;
	cf.cf_prometheus_port = prom_port;
	cf.cf_ips[cf.cf_nips++] = xstrdup("127.0.0.1");

	snprintf(env, sizeof(env), "{\"scrape\":\"true\",\"port\":\"%d\"}",
	    app_port);
	cf.cf_prom_annotations = xstrdup(env);
	snprintf(env, sizeof(env),
	    "{\"/app-health/web/livez\":{\"httpGet\":{\"path\":\"/hello\","
	    "\"port\":%d}},"
	    "\"/app-health/web/readyz\":{\"httpGet\":{\"path\":\"/fail\","
	    "\"port\":%d}},"
	    "\"/app-health/web/startupz\":{\"httpGet\":{\"path\":\"/redir/3\","
	    "\"port\":%d,\"httpHeaders\":[{\"name\":\"X-Probe\",\"value\":"
	    "\"custom\"}]}},"
	    "\"/app-health/loop/livez\":{\"httpGet\":{\"path\":\"/redir/11\","
	    "\"port\":%d}},"
	    "\"/app-health/away/livez\":{\"httpGet\":{\"path\":\"/away\","
	    "\"port\":%d}},"
	    "\"/app-health/big/livez\":{\"httpGet\":{\"path\":\"/big\","
	    "\"port\":%d}},"
	    "\"/app-health/host/livez\":{\"httpGet\":{\"path\":\"/host\","
	    "\"port\":%d}},"
	    "\"/app-health/tcp/livez\":{\"tcpSocket\":{\"port\":%d}},"
	    "\"/app-health/tcp/readyz\":{\"tcpSocket\":{\"port\":%d}},"
	    "\"/app-health/grpc/livez\":{\"grpc\":{\"port\":%d},"
	    "\"timeoutSeconds\":1},"
	    "\"/app-health/down/livez\":{\"httpGet\":{\"path\":\"/\","
	    "\"port\":%d}},"
	    "\"/app-health/tls/livez\":{\"httpGet\":{\"path\":\"/hello\","
	    "\"port\":%d,\"scheme\":\"HTTPS\"}},"
	    "\"/app-health/tls/readyz\":{\"httpGet\":{\"path\":\"/\","
	    "\"port\":%d,\"scheme\":\"HTTPS\"}}}",
	    app_port, app_port, app_port, app_port, app_port, app_port,
	    app_port, app_port, closed_port, closed_port, closed_port,
	    app_port, closed_port);
	cf.cf_app_probers = xstrdup(env);

	st = status_new(&cf, err, sizeof(err));
	CHECK(st != NULL);
	if (st == NULL) {
		fprintf(stderr, "status_new: %s\n", err);
		return;
	}
	ok = status_listen(st, base, NULL, NULL, err, sizeof(err)) == 0;
	CHECK(ok);
	if (!ok) {
		fprintf(stderr, "status_listen: %s\n", err);
		status_free(st);
		return;
	}

	/* Readiness, step by step. */
	request(status_port, EVHTTP_REQ_GET, "/healthz/ready", &a);
	CHECK(a.code == 503);
	CHECK_CONTAINS(a.body, "config not received from XDS server (is "
	    "Istiod running?): cds updates: 0 successful, 0 rejected; lds "
	    "updates: 0 successful, 0 rejected");
	answer_free(&a);
	admin_cds_rej = 1;
	request(status_port, EVHTTP_REQ_GET, "/healthz/ready", &a);
	CHECK(a.code == 503);
	CHECK_CONTAINS(a.body, "config received from XDS server, but was "
	    "rejected: cds updates: 0 successful, 1 rejected");
	answer_free(&a);
	admin_cds_ok = admin_lds_ok = 1;
	request(status_port, EVHTTP_REQ_GET, "/healthz/ready", &a);
	CHECK(a.code == 503);
	CHECK_CONTAINS(a.body, "server is not live, current state is: "
	    "INITIALIZING");
	answer_free(&a);
	admin_state = 0;
	request(status_port, EVHTTP_REQ_GET, "/healthz/ready", &a);
	CHECK(a.code == 503);
	CHECK_CONTAINS(a.body, "workers have not yet started");
	answer_free(&a);
	admin_workers = 1;
	request(status_port, EVHTTP_REQ_GET, "/healthz/ready", &a);
	CHECK(a.code == 200 && a.body != NULL && *a.body == '\0');
	answer_free(&a);
	/* Once ready, not asked again (as Istio). */
	admin_state = 1;
	request(status_port, EVHTTP_REQ_GET, "/healthz/ready", &a);
	CHECK(a.code == 200);
	answer_free(&a);

	/* The merge: agent, proxy, application, complete lines. */
	admin_series = 20000;
	request(status_port, EVHTTP_REQ_GET, "/stats/prometheus", &a);
	CHECK(a.code == 200);
	CHECK_CONTAINS(a.type, "text/plain; version=0.0.4");
	CHECK_CONTAINS(a.body, "istio_agent_scrapes_total 1\n");
	CHECK_CONTAINS(a.body, "envoy_test_series{n=\"19999\"} 19999\n");
	CHECK_CONTAINS(a.body, "istio_agent_process_open_fds ");
	CHECK(a.body != NULL && strstr(a.body, "istio_agent_") <
	    strstr(a.body, "envoy_test") && strstr(a.body, "envoy_test") <
	    strstr(a.body, "app_requests_total 7\n"));
	ok = 1;
	for (i = 0, p = a.body; p != NULL && (p = strstr(p, "envoy_test_"
	    "series{n=\"")) != NULL; i++, p++) {
		if (atoi(p + 21) != i) {
			ok = 0;
			break;
		}
	}
	CHECK(ok && i == 20000);
	answer_free(&a);
	app_openmetrics = 1;
	request(status_port, EVHTTP_REQ_GET, "/metrics", &a);
	CHECK(a.code == 200);
	CHECK_CONTAINS(a.type, "application/openmetrics-text; version=1.0.0");
	CHECK(a.body != NULL && strlen(a.body) > 6 &&
	    strcmp(a.body + strlen(a.body) - 6, "# EOF\n") == 0);
	answer_free(&a);

	/*
	 * The proxy failing mid-page, after the reply started: the reply is
	 * cut without its last chunk, so the scraper sees a failed scrape and
	 * never a short page that looks whole.
	 */
	admin_cut = 1;
	admin_series = 5000;
	request(status_port, EVHTTP_REQ_GET, "/stats/prometheus", &a);
	CHECK(a.body == NULL);
	answer_free(&a);
	admin_cut = 0;
	request(prom_port, EVHTTP_REQ_GET, "/stats/prometheus", &a);
	CHECK(a.code == 200);
	CHECK_CONTAINS(a.body, "istio_agent_scrape_failures_total{type="
	    "\"envoy\"} 1\n");
	CHECK_CONTAINS(a.body, "envoy_test_series{n=\"4999\"} 4999\n");
	CHECK(a.body != NULL && strstr(a.body, "app_requests") == NULL);
	answer_free(&a);
	request(prom_port, EVHTTP_REQ_GET, "/healthz/ready", &a);
	CHECK(a.code == 404);
	answer_free(&a);

	/* Probes. */
	request(status_port, EVHTTP_REQ_GET, "/app-health/web/livez", &a);
	CHECK(a.code == 200);
	CHECK_CONTAINS(a.body, "hello from-kubelet");
	answer_free(&a);
	request(status_port, EVHTTP_REQ_GET, "/app-health/web/readyz", &a);
	CHECK(a.code == 503);
	CHECK_CONTAINS(a.body, "down");
	answer_free(&a);
	request(status_port, EVHTTP_REQ_GET, "/app-health/web/startupz", &a);
	CHECK(a.code == 200);
	CHECK_CONTAINS(a.body, "hello custom");
	answer_free(&a);
	request(status_port, EVHTTP_REQ_GET, "/app-health/loop/livez", &a);
	CHECK(a.code == 500);
	answer_free(&a);
	request(status_port, EVHTTP_REQ_GET, "/app-health/away/livez", &a);
	CHECK(a.code == 200);
	answer_free(&a);
	request(status_port, EVHTTP_REQ_GET, "/app-health/big/livez", &a);
	CHECK(a.code == 500 && a.body != NULL && strlen(a.body) == 10240);
	answer_free(&a);
	request(status_port, EVHTTP_REQ_GET, "/app-health/host/livez", &a);
	CHECK(a.code == 200);
	CHECK_CONTAINS(a.body, "pod:1");
	answer_free(&a);
	request(status_port, EVHTTP_REQ_GET, "/app-health/tcp/livez", &a);
	CHECK(a.code == 200);
	answer_free(&a);
	request(status_port, EVHTTP_REQ_GET, "/app-health/tcp/readyz", &a);
	CHECK(a.code == 500);
	answer_free(&a);
	request(status_port, EVHTTP_REQ_GET, "/app-health/down/livez", &a);
	CHECK(a.code == 500);
	answer_free(&a);
	request(status_port, EVHTTP_REQ_GET, "/app-health/grpc/livez", &a);
	CHECK(a.code == 500);
	answer_free(&a);
	/* TLS to a plain HTTP server, and to no server: 500, not a hang. */
	request(status_port, EVHTTP_REQ_GET, "/app-health/tls/livez", &a);
	CHECK(a.code == 500);
	answer_free(&a);
	request(status_port, EVHTTP_REQ_GET, "/app-health/tls/readyz", &a);
	CHECK(a.code == 500);
	answer_free(&a);
	request(status_port, EVHTTP_REQ_GET, "/app-health/none/livez", &a);
	CHECK(a.code == 400);
	CHECK_CONTAINS(a.body, "app prober config does not exists for "
	    "/app-health/none/livez");
	answer_free(&a);

	/* Mutating endpoints from loopback; debug pages; unknown paths. */
	request(status_port, EVHTTP_REQ_GET, "/quitquitquit", &a);
	CHECK(a.code == 405);
	answer_free(&a);
	request(status_port, EVHTTP_REQ_PUT, "/drain", &a);
	CHECK(a.code == 405);
	answer_free(&a);
	request(status_port, EVHTTP_REQ_POST, "/drain", &a);
	CHECK(a.code == 200);
	answer_free(&a);
	request(status_port, EVHTTP_REQ_GET, "/debug/epochs", &a);
	CHECK(a.code == 200);
	CHECK_CONTAINS(a.type, "application/json");
	answer_free(&a);
	request(status_port, EVHTTP_REQ_GET, "/debug/syncz", &a);
	CHECK(a.code == 200);
	answer_free(&a);
	request(status_port, EVHTTP_REQ_GET, "/nope", &a);
	CHECK(a.code == 404);
	answer_free(&a);

	/* The application down: its part left out and counted. */
	evhttp_free(app);
	app = NULL;
	request(status_port, EVHTTP_REQ_GET, "/stats/prometheus", &a);
	CHECK(a.code == 200);
	CHECK_CONTAINS(a.type, "text/plain");
	CHECK_CONTAINS(a.body, "istio_agent_scrape_failures_total{type="
	    "\"application\"} 1\n");
	CHECK_CONTAINS(a.body, "envoy_test_series{n=\"4999\"} 4999\n");
	CHECK(a.body != NULL && strstr(a.body, "app_requests") == NULL);
	answer_free(&a);

	status_free(st);
	evhttp_free(admin);
	config_free(&cf);
}

static void
test_bad_config(void)
{
	struct config	 cf;
	char		 err[512] = "";

	/* config.c read the variables; status_new checks their JSON. */
	config_defaults(&cf);
	cf.cf_status_port = check_free_port();
	cf.cf_prometheus_port = check_free_port();
	cf.cf_app_probers = xstrdup("{\"/bad\":{}}");
	CHECK(status_new(&cf, err, sizeof(err)) == NULL);
	CHECK_CONTAINS(err, "ISTIO_KUBE_APP_PROBERS");
	CHECK_CONTAINS(err, "invalid path");
	free(cf.cf_app_probers);
	cf.cf_app_probers = NULL;
	cf.cf_prom_annotations = xstrdup("{\"port\":0}");
	CHECK(status_new(&cf, err, sizeof(err)) == NULL);
	CHECK_CONTAINS(err, "ISTIO_PROMETHEUS_ANNOTATIONS");
	config_free(&cf);
}

int
main(void)
{
	log_init();
	base = event_base_new();
	test_parsers();
	test_servers();
	test_bad_config();
	event_base_free(base);
	return check_done("test_status");
}
