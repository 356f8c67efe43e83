/*
 * What the status/ folder exports: the agent's HTTP servers on the status
 * port (15020) and the Prometheus port (15090). The second half declares
 * what the files of this folder share among themselves; nothing outside
 * status/ (except its unit tests and fuzz harnesses) calls those.
 */
#ifndef STATUS_H
#define STATUS_H

#include <stddef.h>
#include <stdint.h>

#include "agent.h"

struct status;

/*
 * Two steps: status_new reads and checks the status servers' environment
 * and binds nothing (a bad variable is a usage error, found before anything
 * is created); status_listen then binds the ports and serves.
 */
struct status *status_new(struct config *, char *, size_t);
int	status_listen(struct status *, struct event_base *,
	    struct supervise *, struct relay *, char *, size_t);
void	status_free(struct status *);

/* ---- Internal to status/ ---- */

struct evhttp_request;
struct evkeyvalq;

/* status.c: the limits each server gets, from the environment. */
struct status_limits {
	int64_t			 sl_idle;	/* ns */
	int			 sl_conns;	/* per port */
	int			 sl_peer;	/* per source address */
	int			 sl_busy;	/* requests other than readiness */
};

/* status.c: the servers and the state every handler reaches. */
struct status {
	struct event_base	*st_base;	/* NULL until status_listen */
	struct config		*st_config;
	struct supervise	*st_sv;
	struct relay		*st_relay;
	struct status_server	*st_status;	/* 15020 */
	struct status_server	*st_prom;	/* 15090 */
	struct ready		*st_ready;
	struct metrics		*st_metrics;
	struct probe		*st_probe;
	struct event		*st_quit_ev;	/* deferred quit or drain */
	int			 st_quit_what;
	struct status_limits	 st_limits;
};

void	status_reply(struct evhttp_request *, int, const char *,
	    const char *);
int	status_from_loopback(struct evhttp_request *);

/*
 * conn.c: the connections of one server: the caps (per port, per source
 * address), closing idle connections to admit new ones, requests in
 * progress, and pausing accepts when descriptors run out.
 */
struct conn_table;
struct evhttp;
struct evconnlistener;

struct conn_table *conn_table_new(struct event_base *, struct evhttp *, int,
	    const struct status_limits *);
void	conn_table_listen(struct conn_table *, struct evconnlistener *);
void	conn_table_free(struct conn_table *);
int	conn_begin(struct conn_table *, struct evhttp_request *, int);
void	conn_after_reply(struct conn_table *, struct evhttp_request *,
	    void (*)(void *), void *);
void	conn_close_after_reply(struct conn_table *, struct evhttp_request *);

struct evbuffer;
struct ssl_ctx_st;	/* OpenSSL's SSL_CTX */

/* ready.c: GET /healthz/ready. */
struct ready *ready_new(struct status *);
void	ready_free(struct ready *);
void	ready_handle(struct ready *, struct evhttp_request *);
void	ready_metrics(struct ready *, struct evbuffer *);

/*
 * ready.c: what readiness reads of the proxy's admin /stats text (through
 * envoystats.c), exported for the unit tests. ready_parse_config fills cds
 * ok/rejected, lds ok/rejected.
 */
void	ready_parse_config(const char *, size_t, long long [4]);
int	ready_parse_server(const char *, size_t, long long *, long long *);

/* metrics.c: the merged Prometheus pages. */
struct metrics_app {
	char	*ma_path;
	int	 ma_port;
};

struct metrics *metrics_new(struct status *, char *, size_t);
void	metrics_free(struct metrics *);
void	metrics_handle(struct metrics *, struct evhttp_request *, int);
void	metrics_agent(struct metrics *, struct evbuffer *);
int	metrics_parse_annotations(const char *, struct metrics_app *, char *,
	    size_t);
const char *metrics_negotiate(const char *);
size_t	metrics_complete_lines(struct evbuffer *);
void	metrics_stream_feed(struct evbuffer *, struct evbuffer *,
	    struct evbuffer *);
void	metrics_stream_end(struct evbuffer *, int);

/* procstat.c: the agent's own process metrics. */
void	procstat_metrics(struct evbuffer *);
double	procstat_start_time(void);

/* probe.c: the application probes of ISTIO_KUBE_APP_PROBERS. */
enum probe_kind {
	PROBE_HTTP,
	PROBE_TCP,
	PROBE_GRPC
};

struct probe_header {
	char	*ph_name;
	char	*ph_value;
};

struct probe_def {
	char			*pd_path;	/* /app-health/web/livez */
	enum probe_kind		 pd_kind;
	char			*pd_host;	/* NULL: the pod's address */
	int			 pd_port;
	char			*pd_http_path;
	int			 pd_https;	/* scheme HTTPS */
	struct probe_header	*pd_headers;
	size_t			 pd_nheaders;
	char			*pd_service;	/* gRPC, may be NULL */
	int64_t			 pd_timeout;	/* nanoseconds */
};

struct probe *probe_new(struct status *, char *, size_t);
int	probe_start(struct probe *, char *, size_t);
void	probe_free(struct probe *);
int	probe_handle(struct probe *, struct evhttp_request *);
int	probe_parse(const char *, struct probe_def **, size_t *, char *,
	    size_t);
void	probe_defs_free(struct probe_def *, size_t);

/* probe_grpc.c: grpc.health.v1.Health/Check through gRPC core. */
struct probe_grpc;
typedef void (*probe_grpc_cb)(int, const char *, void *);

struct probe_grpc *probe_grpc_new(struct event_base *, char *, size_t);
void	probe_grpc_free(struct probe_grpc *);
int	probe_grpc_check(struct probe_grpc *, const char *, const char *,
	    int64_t, const char *, probe_grpc_cb, void *);

/* debug.c: GET /debug/epochs and /debug/syncz. */
void	debug_handle_epochs(struct status *, struct evhttp_request *);
void	debug_handle_syncz(struct status *, struct evhttp_request *);

#endif
