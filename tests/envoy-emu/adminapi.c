/*
 * The admin API, on admin.address.socket_address, served by evhttp: the
 * endpoints pilot-agent calls, answering as Envoy's admin does.
 *
 *   GET  /ready                 200 "LIVE\n", else 503 "<STATE>\n"
 *   GET  /server_info           admin.v3.ServerInfo as JSON
 *   GET  /stats                 "name: value" lines; usedonly, filter=,
 *                               format=json|prometheus
 *   GET  /stats/prometheus      Prometheus text; usedonly, filter=
 *   GET  /listeners             "name::address:port"; format=json
 *   GET  /config_dump           the bootstrap
 *   GET  /hot_restart_version, /help, /
 *   POST /drain_listeners       inboundonly, graceful, skip_exit
 *   POST /healthcheck/fail, /healthcheck/ok, /quitquitquit
 *
 * Endpoints that change state answer 405 to other methods; unknown paths 404
 * with the list of commands, as Envoy does. Stats replies stream in chunks
 * (see stats.c) when they do not fit one chunk.
 *
 * listener.admin.downstream_cx_total counts every accepted connection; evhttp
 * tells of a connection's end only once it has carried a request, so
 * listener.admin.downstream_cx_active counts those.
 */
#include <sys/queue.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "agent.h"
#include "emu.h"

#define ADMIN_CHUNK	(64 * 1024)
#define ADMIN_MAXQ	16

struct adminapi_conn {
	struct evhttp_connection	*ac_evcon;
	struct evhttp_request		*ac_req;	/* streaming reply */
	struct stats_cursor		*ac_cursor;
	struct evbuffer			*ac_buf;
	TAILQ_ENTRY(adminapi_conn)		 ac_entry;
};

struct adminapi_query {
	char	*aq_key[ADMIN_MAXQ];
	char	*aq_value[ADMIN_MAXQ];
	int	 aq_n;
};

static struct emu			*adminapi_emu;
static struct evhttp			*adminapi_http;
static TAILQ_HEAD(, adminapi_conn)		 adminapi_conns =
    TAILQ_HEAD_INITIALIZER(adminapi_conns);
static struct stats_entry		*adminapi_cx_active, *adminapi_cx_total;
static struct stats_entry		*adminapi_rq_total;
static struct event			*adminapi_quit_ev;

static const char adminapi_help[] =
    "admin commands are:\n"
    "  /: Admin home page\n"
    "  /config_dump: dump current Envoy configs\n"
    "  /drain_listeners (POST): drain listeners\n"
    "  /healthcheck/fail (POST): cause the server to fail health checks\n"
    "  /healthcheck/ok (POST): cause the server to pass health checks\n"
    "  /help: print out list of admin commands\n"
    "  /hot_restart_version: print the hot restart compatibility version\n"
    "  /listeners: print listener info\n"
    "  /quitquitquit (POST): exit the server\n"
    "  /ready: print server state, return 200 if LIVE, otherwise return 503\n"
    "  /server_info: print server version/status information\n"
    "  /stats: print server stats\n"
    "  /stats/prometheus: print server stats in prometheus format\n";

/* Query parameters; a bare key ("usedonly") has the value "". */
static void
adminapi_query_parse(const char *query, struct adminapi_query *q)
{
	char	*copy, *item, *save = NULL, *eq, *key, *value;
	size_t	 n;

	memset(q, 0, sizeof(*q));
	if (query == NULL)
		return;
	copy = xstrdup(query);
	for (item = strtok_r(copy, "&", &save); item != NULL &&
	    q->aq_n < ADMIN_MAXQ; item = strtok_r(NULL, "&", &save)) {
		if ((eq = strchr(item, '=')) != NULL)
			*eq = '\0';
		key = evhttp_uridecode(item, 0, &n);
		value = evhttp_uridecode(eq != NULL ? eq + 1 : "", 0, &n);
		if (key == NULL || value == NULL) {
			free(key);
			free(value);
			continue;
		}
		q->aq_key[q->aq_n] = key;
		q->aq_value[q->aq_n] = value;
		q->aq_n++;
	}
	free(copy);
}

static const char *
adminapi_query_get(const struct adminapi_query *q, const char *key)
{
	int	i;

	for (i = 0; i < q->aq_n; i++) {
		if (strcmp(q->aq_key[i], key) == 0)
			return q->aq_value[i];
	}
	return NULL;
}

static void
adminapi_query_free(struct adminapi_query *q)
{
	int	i;

	for (i = 0; i < q->aq_n; i++) {
		free(q->aq_key[i]);
		free(q->aq_value[i]);
	}
	q->aq_n = 0;
}

static void
adminapi_headers(struct evhttp_request *req, const char *type)
{
	struct evkeyvalq	*h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "content-type", type);
	evhttp_add_header(h, "cache-control", "no-cache, max-age=0");
	evhttp_add_header(h, "x-content-type-options", "nosniff");
	evhttp_add_header(h, "server", "envoy");
}

static void
adminapi_reply(struct evhttp_request *req, int code, const char *type,
    const char *body)
{
	struct evbuffer	*buf = evbuffer_new();

	adminapi_headers(req, type);
	evbuffer_add(buf, body, strlen(body));
	evhttp_send_reply(req, code, NULL, buf);
	evbuffer_free(buf);
}

static void
adminapi_reply_json(struct evhttp_request *req, json_t *j)
{
	char	*s;

	s = json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	adminapi_reply(req, 200, "application/json", s);
	free(s);
	json_decref(j);
}

/* The end of a connection that carried a request (see the top comment). */
static void
adminapi_conn_closed(struct evhttp_connection *evcon, void *arg)
{
	struct adminapi_conn	*ac = arg;

	(void)evcon;
	stats_dec(adminapi_cx_active);
	if (ac->ac_req != NULL &&
	    evhttp_request_get_connection(ac->ac_req) == NULL) {
		/*
		 * The peer went away during a streaming reply: evhttp has
		 * disowned the request, which is ours to free now.
		 */
		evhttp_send_reply_end(ac->ac_req);
	}
	stats_cursor_free(ac->ac_cursor);
	if (ac->ac_buf != NULL)
		evbuffer_free(ac->ac_buf);
	TAILQ_REMOVE(&adminapi_conns, ac, ac_entry);
	free(ac);
}

static struct adminapi_conn *
adminapi_conn_get(struct evhttp_request *req)
{
	struct evhttp_connection	*evcon;
	struct adminapi_conn		*ac;

	evcon = evhttp_request_get_connection(req);
	TAILQ_FOREACH(ac, &adminapi_conns, ac_entry) {
		if (ac->ac_evcon == evcon)
			return ac;
	}
	ac = xcalloc(1, sizeof(*ac));
	ac->ac_evcon = evcon;
	TAILQ_INSERT_TAIL(&adminapi_conns, ac, ac_entry);
	stats_inc(adminapi_cx_active);
	evhttp_connection_set_closecb(evcon, adminapi_conn_closed, ac);
	return ac;
}

static struct bufferevent *
adminapi_bevcb(struct event_base *base, void *arg)
{
	(void)arg;
	stats_inc(adminapi_cx_total);
	return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

static void
adminapi_stream_end(struct adminapi_conn *ac)
{
	struct evhttp_request	*req = ac->ac_req;

	stats_cursor_free(ac->ac_cursor);
	evbuffer_free(ac->ac_buf);
	ac->ac_cursor = NULL;
	ac->ac_buf = NULL;
	ac->ac_req = NULL;
	evhttp_send_reply_end(req);
}

/* A chunk went out: send the next one, or end the reply. */
static void
adminapi_stream_cb(struct evhttp_connection *evcon, void *arg)
{
	struct adminapi_conn	*ac = arg;
	int			 more;

	(void)evcon;
	if (ac->ac_req == NULL)
		return;
	more = stats_cursor_next(ac->ac_cursor, ac->ac_buf, ADMIN_CHUNK);
	if (evbuffer_get_length(ac->ac_buf) > 0)
		evhttp_send_reply_chunk_with_cb(ac->ac_req, ac->ac_buf,
		    more ? adminapi_stream_cb : NULL, ac);
	if (!more)
		adminapi_stream_end(ac);
}

static void
adminapi_stats(struct evhttp_request *req, const struct adminapi_query *q,
    int prometheus)
{
	struct adminapi_conn	*ac = adminapi_conn_get(req);
	struct stats_cursor	*sc;
	struct evbuffer		*buf;
	enum stats_format	 format = STATS_TEXT;
	const char		*f, *type = "text/plain; charset=UTF-8";
	char			 err[256];

	f = adminapi_query_get(q, "format");
	if (prometheus || (f != NULL && strcmp(f, "prometheus") == 0))
		format = STATS_PROMETHEUS;
	else if (f != NULL && strcmp(f, "json") == 0) {
		format = STATS_JSON;
		type = "application/json";
	} else if (f != NULL && strcmp(f, "text") != 0) {
		adminapi_reply(req, 400, type, "usage: /stats?format=(html|"
		    "active-html|json|prometheus|text)\n");
		return;
	}
	emu_refresh_stats();
	if ((sc = stats_cursor_new(format, adminapi_query_get(q, "usedonly") !=
	    NULL, adminapi_query_get(q, "filter"), err, sizeof(err))) == NULL) {
		char	*body;

		xasprintf(&body, "%s\n", err);
		adminapi_reply(req, 400, type, body);
		free(body);
		return;
	}
	buf = evbuffer_new();
	adminapi_headers(req, type);
	/*
	 * evhttp never completes the chunks of a reply without a body
	 * (HEAD): answer those with the first chunk, which it drops.
	 */
	if (!stats_cursor_next(sc, buf, ADMIN_CHUNK) ||
	    evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		/* It all fits: a plain reply with a Content-Length. */
		evhttp_send_reply(req, 200, NULL, buf);
		evbuffer_free(buf);
		stats_cursor_free(sc);
		return;
	}
	ac->ac_req = req;
	ac->ac_cursor = sc;
	ac->ac_buf = buf;
	evhttp_send_reply_start(req, 200, NULL);
	evhttp_send_reply_chunk_with_cb(req, buf, adminapi_stream_cb, ac);
}

static void
adminapi_server_info(struct evhttp_request *req)
{
	struct emu_options	*o = adminapi_emu->e_opt;
	json_t			*j, *opts;
	char			 buf[64];

	opts = json_object();
	snprintf(buf, sizeof(buf), "%u", o->o_base_id);
	json_object_set_new(opts, "base_id", json_string(buf));
	json_object_set_new(opts, "use_dynamic_base_id", json_false());
	json_object_set_new(opts, "skip_hot_restart_on_no_parent",
	    json_boolean(o->o_skip_hr_no_parent));
	json_object_set_new(opts, "skip_hot_restart_parent_stats",
	    json_false());
	json_object_set_new(opts, "base_id_path", json_string(""));
	json_object_set_new(opts, "concurrency",
	    json_integer(o->o_concurrency));
	json_object_set_new(opts, "config_path", json_string(o->o_config_path));
	json_object_set_new(opts, "config_yaml", json_string(""));
	json_object_set_new(opts, "allow_unknown_static_fields",
	    json_boolean(o->o_allow_unknown_static));
	json_object_set_new(opts, "reject_unknown_dynamic_fields",
	    json_false());
	json_object_set_new(opts, "ignore_unknown_dynamic_fields",
	    json_false());
	json_object_set_new(opts, "admin_address_path", json_string(""));
	json_object_set_new(opts, "local_address_ip_version",
	    json_string(o->o_ipv6 ? "v6" : "v4"));
	json_object_set_new(opts, "log_level",
	    json_string(elog_level_name(o->o_log_level)));
	json_object_set_new(opts, "component_log_level",
	    json_string(o->o_component_log_level));
	json_object_set_new(opts, "log_format", json_string(o->o_log_format));
	json_object_set_new(opts, "log_format_escaped", json_false());
	json_object_set_new(opts, "log_path", json_string(""));
	json_object_set_new(opts, "service_cluster",
	    json_string(o->o_service_cluster));
	json_object_set_new(opts, "service_node",
	    json_string(o->o_service_node));
	json_object_set_new(opts, "service_zone", json_string(""));
	snprintf(buf, sizeof(buf), "%gs", (double)o->o_file_flush_ms / 1000);
	json_object_set_new(opts, "file_flush_interval", json_string(buf));
	snprintf(buf, sizeof(buf), "%llus",
	    (unsigned long long)o->o_drain_time_s);
	json_object_set_new(opts, "drain_time", json_string(buf));
	json_object_set_new(opts, "drain_strategy",
	    json_string(o->o_drain_immediate ? "Immediate" : "Gradual"));
	snprintf(buf, sizeof(buf), "%llus",
	    (unsigned long long)o->o_parent_shutdown_time_s);
	json_object_set_new(opts, "parent_shutdown_time", json_string(buf));
	json_object_set_new(opts, "mode", json_string("Serve"));
	json_object_set_new(opts, "disable_hot_restart",
	    json_boolean(o->o_disable_hot_restart));
	json_object_set_new(opts, "enable_mutex_tracing", json_false());
	json_object_set_new(opts, "restart_epoch",
	    json_integer(o->o_restart_epoch));
	json_object_set_new(opts, "cpuset_threads", json_false());
	json_object_set_new(opts, "disabled_extensions", json_array());
	json_object_set_new(opts, "enable_fine_grain_logging", json_false());
	json_object_set_new(opts, "socket_path", json_string(o->o_socket_path));
	json_object_set_new(opts, "socket_mode", json_integer(0));
	json_object_set_new(opts, "enable_core_dump", json_false());
	json_object_set_new(opts, "stats_tag", json_array());

	j = json_object();
	json_object_set_new(j, "version", json_string(EMU_VERSION));
	json_object_set_new(j, "state",
	    json_string(emu_state_name(emu_state())));
	snprintf(buf, sizeof(buf), "%llus", (unsigned long long)emu_uptime());
	json_object_set_new(j, "uptime_current_epoch", json_string(buf));
	snprintf(buf, sizeof(buf), "%llus",
	    (unsigned long long)emu_uptime_all());
	json_object_set_new(j, "uptime_all_epochs", json_string(buf));
	json_object_set_new(j, "hot_restart_version",
	    json_string(o->o_disable_hot_restart ? "disabled" :
	    EMU_HOT_RESTART_VERSION));
	json_object_set_new(j, "command_line_options", opts);
	json_object_set(j, "node", adminapi_emu->e_node);
	adminapi_reply_json(req, j);
}

static void
adminapi_listeners(struct evhttp_request *req, const struct adminapi_query *q)
{
	const char	*f = adminapi_query_get(q, "format");
	struct evbuffer	*buf;
	json_t		*j, *arr, *l;
	size_t		 i;

	if (f != NULL && strcmp(f, "json") == 0) {
		arr = json_array();
		for (i = 0; i < listener_count(); i++) {
			l = json_pack("{s:s, s:{s:{s:s, s:i}}}", "name",
			    listener_name(listener_at(i)), "local_address",
			    "socket_address", "address",
			    listener_address(listener_at(i)), "port_value",
			    listener_port(listener_at(i)));
			json_array_append_new(arr, l);
		}
		j = json_pack("{s:o}", "listener_statuses", arr);
		adminapi_reply_json(req, j);
		return;
	}
	buf = evbuffer_new();
	for (i = 0; i < listener_count(); i++)
		evbuffer_add_printf(buf, "%s::%s\n",
		    listener_name(listener_at(i)),
		    listener_key(listener_at(i)));
	adminapi_headers(req, "text/plain; charset=UTF-8");
	evhttp_send_reply(req, 200, NULL, buf);
	evbuffer_free(buf);
}

static void
adminapi_config_dump(struct evhttp_request *req)
{
	json_t	*j;

	j = json_pack("{s:[{s:s, s:O}]}", "configs", "@type",
	    "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump",
	    "bootstrap", adminapi_emu->e_config);
	adminapi_reply_json(req, j);
}

static void
adminapi_drain(struct evhttp_request *req, const struct adminapi_query *q)
{
	int	graceful = adminapi_query_get(q, "graceful") != NULL;
	int	skip_exit = adminapi_query_get(q, "skip_exit") != NULL;
	int	inbound = adminapi_query_get(q, "inboundonly") != NULL;

	if (skip_exit && !graceful) {
		adminapi_reply(req, 400, "text/plain; charset=UTF-8",
		    "skip_exit requires graceful\n");
		return;
	}
	if (graceful)
		listener_drain(inbound, !skip_exit);
	else
		listener_stop(inbound);
	adminapi_reply(req, 200, "text/plain; charset=UTF-8", "OK\n");
}

static void
adminapi_quit_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	emu_shutdown(0, NULL);
}

/* /quitquitquit: stop once the reply is out (or after a second anyway). */
static void
adminapi_quit_done(struct evhttp_request *req, void *arg)
{
	(void)req;
	(void)arg;
	emu_shutdown(0, NULL);
}

static void
adminapi_quit(struct evhttp_request *req)
{
	struct timeval	tv = { 1, 0 };

	if (adminapi_quit_ev == NULL) {
		adminapi_quit_ev = evtimer_new(adminapi_emu->e_base,
		    adminapi_quit_cb, NULL);
		evtimer_add(adminapi_quit_ev, &tv);
	}
	evhttp_request_set_on_complete_cb(req, adminapi_quit_done, NULL);
	adminapi_reply(req, 200, "text/plain; charset=UTF-8", "OK\n");
}

static const char *
adminapi_method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "UNKNOWN";
}

static void
adminapi_request(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	enum evhttp_cmd_type	 method = evhttp_request_get_command(req);
	const char		*path = NULL;
	const char		*text = "text/plain; charset=UTF-8";
	struct adminapi_query	 q;
	enum emu_state		 st;
	char			*body;
	int			 mutates;

	(void)arg;
	adminapi_conn_get(req);
	stats_inc(adminapi_rq_total);
	if (uri != NULL)
		path = evhttp_uri_get_path(uri);
	if (path == NULL || *path == '\0')
		path = "/";
	adminapi_query_parse(uri != NULL ? evhttp_uri_get_query(uri) : NULL,
	    &q);
	elog_debug("admin", "%s %s", adminapi_method_name(method), path);

	mutates = strcmp(path, "/drain_listeners") == 0 ||
	    strcmp(path, "/healthcheck/fail") == 0 ||
	    strcmp(path, "/healthcheck/ok") == 0 ||
	    strcmp(path, "/quitquitquit") == 0;
	if (mutates && method != EVHTTP_REQ_POST) {
		elog_error("admin", "admin path \"%s\" mutates state, "
		    "method=%s rather than POST", path,
		    adminapi_method_name(method));
		xasprintf(&body, "Method %s not allowed, POST required.",
		    adminapi_method_name(method));
		adminapi_reply(req, 405, text, body);
		free(body);
	} else if (strcmp(path, "/ready") == 0) {
		st = emu_state();
		xasprintf(&body, "%s\n", emu_state_name(st));
		adminapi_reply(req, st == EMU_LIVE ? 200 : 503, text, body);
		free(body);
	} else if (strcmp(path, "/server_info") == 0)
		adminapi_server_info(req);
	else if (strcmp(path, "/stats") == 0)
		adminapi_stats(req, &q, 0);
	else if (strcmp(path, "/stats/prometheus") == 0)
		adminapi_stats(req, &q, 1);
	else if (strcmp(path, "/listeners") == 0)
		adminapi_listeners(req, &q);
	else if (strcmp(path, "/config_dump") == 0)
		adminapi_config_dump(req);
	else if (strcmp(path, "/hot_restart_version") == 0)
		adminapi_reply(req, 200, text,
		    adminapi_emu->e_opt->o_disable_hot_restart ?
		    "disabled\n" : EMU_HOT_RESTART_VERSION "\n");
	else if (strcmp(path, "/help") == 0 || strcmp(path, "/") == 0)
		adminapi_reply(req, 200, text, adminapi_help);
	else if (strcmp(path, "/drain_listeners") == 0)
		adminapi_drain(req, &q);
	else if (strcmp(path, "/healthcheck/fail") == 0) {
		emu_healthcheck_fail(1);
		adminapi_reply(req, 200, text, "OK\n");
	} else if (strcmp(path, "/healthcheck/ok") == 0) {
		emu_healthcheck_fail(0);
		adminapi_reply(req, 200, text, "OK\n");
	} else if (strcmp(path, "/quitquitquit") == 0)
		adminapi_quit(req);
	else {
		xasprintf(&body, "invalid path. %s", adminapi_help);
		adminapi_reply(req, 404, text, body);
		free(body);
	}
	adminapi_query_free(&q);
}

/* Binds the admin listener; -1 with Envoy's message in err. */
int
adminapi_start(struct emu *e, char *err, size_t errlen)
{
	json_t		*sa;
	const char	*addr;
	json_int_t	 port;

	adminapi_emu = e;
	adminapi_cx_active = stats_gauge("listener.admin.downstream_cx_active");
	adminapi_cx_total = stats_counter("listener.admin.downstream_cx_total");
	adminapi_rq_total = stats_counter("http.admin.downstream_rq_total");
	sa = json_object_get(json_object_get(json_object_get(e->e_config,
	    "admin"), "address"), "socket_address");
	addr = json_string_value(json_object_get(sa, "address"));
	port = json_integer_value(json_object_get(sa, "port_value"));

	adminapi_http = evhttp_new(e->e_base);
	evhttp_set_allowed_methods(adminapi_http, EVHTTP_REQ_GET |
	    EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
	    EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
	evhttp_set_bevcb(adminapi_http, adminapi_bevcb, NULL);
	evhttp_set_gencb(adminapi_http, adminapi_request, NULL);
	if (evhttp_bind_socket_with_handle(adminapi_http, addr,
	    (ev_uint16_t)port) == NULL) {
		snprintf(err, errlen, "cannot bind '%s:%lld': %s", addr,
		    (long long)port, strerror(errno));
		evhttp_free(adminapi_http);
		adminapi_http = NULL;
		return -1;
	}
	elog_info("main", "admin address: %s:%lld", addr, (long long)port);
	return 0;
}

int
adminapi_is_open(void)
{
	return adminapi_http != NULL;
}

/* Closes the admin listener and its connections (hot restart, exit). */
void
adminapi_close(void)
{
	if (adminapi_http != NULL) {
		/* Runs adminapi_conn_closed for every tracked connection. */
		evhttp_free(adminapi_http);
		adminapi_http = NULL;
	}
	if (adminapi_quit_ev != NULL) {
		event_free(adminapi_quit_ev);
		adminapi_quit_ev = NULL;
	}
}
