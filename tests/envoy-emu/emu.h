/*
 * What the files of the Envoy stand-in share. The stand-in (build/envoy-emu)
 * behaves like Envoy wherever pilot-agent can observe it: command line, log
 * format, admin API, stats, listeners, hot restart, signals. See README.md in
 * this folder for the test-only knobs.
 *
 *   main.c        command line, bootstrap loading, start-up order, clean-up
 *   elog.c        logging in Envoy's (spdlog's) pattern format
 *   emu.c         server state machine, xDS hook, signals, shutdown
 *   fault.c       the ENVOY_EMU_* fault knobs
 *   stats.c       the stats store and the text and JSON renderings
 *   prom.c        the Prometheus rendering, with Envoy's tag extraction
 *   adminapi.c    the admin API (evhttp)
 *   listener.c    the static listeners: sockets, stats, stop, drain
 *   httpconn.c    a listener's connection: a small HTTP/1.1 server
 *   route.c       a static listener's http_connection_manager routes
 *   cluster.c     the static clusters that routes send requests to
 *   upstream.c    one request proxied to a cluster (over agent/http.c)
 *   hotrestart.c  the hot restart protocol between epochs
 *   xds.c         the ADS client (optional, see xds_start below)
 */
#ifndef EMU_H
#define EMU_H

#include <sys/socket.h>

#include <regex.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

struct event_base;
struct evbuffer;

#define EMU_VERSION	"0000000000000000000000000000000000000000" \
			"/1.30.1/Clean/RELEASE/BoringSSL"
#define EMU_HOT_RESTART_VERSION	"11.104"

/* How long a child waits for its parent's reply, and how long a terminating
 * process lets in-flight requests finish. */
#define EMU_HR_REPLY_TIMEOUT_MS	5000
#define EMU_TERMINATE_GRACE_MS	1000

/* elog.c */
enum elog_level {
	ELOG_TRACE,
	ELOG_DEBUG,
	ELOG_INFO,
	ELOG_WARN,
	ELOG_ERROR,
	ELOG_CRITICAL,
	ELOG_OFF
};

int	 elog_parse_level(const char *, enum elog_level *);
const char *elog_level_name(enum elog_level);
void	 elog_init(const char *, enum elog_level);
int	 elog_set_components(const char *, char *, size_t);
void	 elog_free(void);
void	 elog_write(enum elog_level, const char *, const char *, int,
	    const char *, ...) __attribute__((format(printf, 5, 6)));

/* elog_info("main", "format", ...): level, logger name (%n), message. */
#define elog_trace(n, ...)	\
	elog_write(ELOG_TRACE, n, __FILE__, __LINE__, __VA_ARGS__)
#define elog_debug(n, ...)	\
	elog_write(ELOG_DEBUG, n, __FILE__, __LINE__, __VA_ARGS__)
#define elog_info(n, ...)	\
	elog_write(ELOG_INFO, n, __FILE__, __LINE__, __VA_ARGS__)
#define elog_warn(n, ...)	\
	elog_write(ELOG_WARN, n, __FILE__, __LINE__, __VA_ARGS__)
#define elog_error(n, ...)	\
	elog_write(ELOG_ERROR, n, __FILE__, __LINE__, __VA_ARGS__)
#define elog_critical(n, ...)	\
	elog_write(ELOG_CRITICAL, n, __FILE__, __LINE__, __VA_ARGS__)

/* The command line, as main.c parsed it. */
struct emu_options {
	char		*o_config_path;
	uint32_t	 o_restart_epoch;
	uint32_t	 o_base_id;
	uint64_t	 o_drain_time_s;
	uint64_t	 o_parent_shutdown_time_s;
	char		*o_service_cluster;
	char		*o_service_node;
	int		 o_ipv6;
	uint64_t	 o_file_flush_ms;
	char		*o_log_format;
	enum elog_level	 o_log_level;
	char		*o_component_log_level;
	uint32_t	 o_concurrency;
	int		 o_drain_immediate;
	char		*o_socket_path;
	int		 o_disable_hot_restart;
	int		 o_allow_unknown_static;
	int		 o_skip_hr_no_parent;
};

/* Envoy's admin.v3.ServerInfo.State numbering, as the server.state stat. */
enum emu_state {
	EMU_LIVE = 0,
	EMU_DRAINING = 1,
	EMU_PRE_INITIALIZING = 2,
	EMU_INITIALIZING = 3
};

/* The one server of this process; main.c owns it. */
struct emu {
	struct event_base	*e_base;
	struct emu_options	*e_opt;
	json_t			*e_config;	/* the bootstrap */
	json_t			*e_node;	/* as /server_info shows it */
	char			*e_node_id;
	int			 e_ads;		/* has dynamic_resources */
	time_t			 e_start;	/* this process */
	time_t			 e_original_start;	/* epoch 0's */
	int			 e_exit_code;
};

/* emu.c: the server state machine. */
void		 emu_init(struct emu *);
void		 emu_start(void);
void		 emu_free(void);
enum emu_state	 emu_state(void);
const char	*emu_state_name(enum emu_state);
int		 emu_initialized(void);
void		 emu_xds_received(int, int);
void		 emu_healthcheck_fail(int);
void		 emu_shutdown(int, const char *);
void		 emu_terminate(void);
void		 emu_refresh_stats(void);
uint64_t	 emu_uptime(void);
uint64_t	 emu_uptime_all(void);
struct emu	*emu_get(void);

/*
 * xds.c (optional; another file): the ADS client. When the bootstrap has
 * dynamic_resources and ENVOY_EMU_ASSUME_XDS is not set, emu.c calls
 * xds_start once, when the server starts initializing; the client calls
 * emu_xds_received(is_lds, accepted) for every CDS or LDS response it
 * applies or rejects. xds_stop is called once at shutdown. Both are weak so
 * that the stand-in links without the client.
 */
int	xds_start(struct emu *) __attribute__((weak));
void	xds_stop(void) __attribute__((weak));

/* fault.c */
int	 fault_init(uint32_t, char *, size_t);
void	 fault_start(struct event_base *);
void	 fault_free(void);
int64_t	 fault_init_delay_ns(void);
int	 fault_never_live(void);
int	 fault_assume_xds(void);
uint64_t fault_extra_stats(void);

/* stats.c */
enum stats_type {
	STATS_COUNTER,
	STATS_GAUGE
};

struct stats_entry;

struct stats_entry *stats_counter(const char *, ...)
	    __attribute__((format(printf, 1, 2)));
struct stats_entry *stats_gauge(const char *, ...)
	    __attribute__((format(printf, 1, 2)));
void		 stats_inc(struct stats_entry *);
void		 stats_add(struct stats_entry *, uint64_t);
void		 stats_dec(struct stats_entry *);
void		 stats_set(struct stats_entry *, uint64_t);
uint64_t	 stats_value(const struct stats_entry *);
const char	*stats_name(const struct stats_entry *);
void		 stats_free(void);

/* A rendering in progress: /stats, /stats?format=json, /stats/prometheus. */
enum stats_format {
	STATS_TEXT,
	STATS_JSON,
	STATS_PROMETHEUS
};
struct stats_cursor;

struct stats_cursor *stats_cursor_new(enum stats_format, int, const char *,
		    char *, size_t);
int		 stats_cursor_next(struct stats_cursor *, struct evbuffer *,
		    size_t);
void		 stats_cursor_free(struct stats_cursor *);

/* What stats.c lends prom.c. */
size_t		 stats_collect(int, const regex_t *, struct stats_entry ***);
int		 stats_matches(const regex_t *, const char *);
enum stats_type	 stats_type(const struct stats_entry *);
uint64_t	 stats_synthetic_count(void);
size_t		 stats_synthetic_metrics(void);
const char	*stats_synthetic_metric(size_t);
void		 stats_synthetic_name(uint64_t, char *, size_t);
uint64_t	 stats_synthetic_value(uint64_t);

/* prom.c */
struct prom_cursor;

struct prom_cursor *prom_cursor_new(int, const regex_t *);
int		 prom_cursor_next(struct prom_cursor *, struct evbuffer *,
		    size_t);
void		 prom_cursor_free(struct prom_cursor *);
void		 prom_extract(const char *, char **, char **);

/* adminapi.c */
int	adminapi_start(struct emu *, char *, size_t);
void	adminapi_close(void);
int	adminapi_is_open(void);

/* listener.c */
struct emu_listener;

int		 listener_configure(struct emu *, char *, size_t);
void		 listener_start_workers(void);
struct route_config *listener_routes(const struct emu_listener *);
size_t		 listener_count(void);
struct emu_listener *listener_at(size_t);
struct emu_listener *listener_find(const char *);
const char	*listener_key(const struct emu_listener *);
const char	*listener_name(const struct emu_listener *);
const char	*listener_address(const struct emu_listener *);
int		 listener_port(const struct emu_listener *);
int		 listener_fd(const struct emu_listener *);
int		 listener_bind(struct emu_listener *, char *, size_t);
int		 listener_adopt(struct emu_listener *, int);
void		 listener_stop(int);
void		 listener_drain(int, int);
void		 listener_drain_parent(void);
void		 listener_terminate(void (*)(void));
uint64_t	 listener_active_connections(void);
void		 listener_free(void);
int		 listener_drain_close(struct emu_listener *);
int		 listener_is_terminating(void);
unsigned	 listener_conn_opened(struct emu_listener *);
void		 listener_conn_closed(struct emu_listener *, unsigned);

/* httpconn.c */
void	httpconn_new(struct emu_listener *, int);
void	httpconn_close_idle(void);
void	httpconn_free_all(void);

/* route.c */
struct route_config;
struct cluster;

enum route_kind {
	ROUTE_NONE,		/* no virtual host or route matched: 404 */
	ROUTE_CLUSTER,		/* proxy to rr_cluster */
	ROUTE_DIRECT		/* direct_response */
};

struct route_result {
	enum route_kind	 rr_kind;
	const char	*rr_cluster_name;
	struct cluster	*rr_cluster;	/* NULL: no such cluster */
	int64_t		 rr_timeout_ns;	/* 0: none */
	int		 rr_status;
	const char	*rr_body;
	size_t		 rr_body_len;
};

int	 route_config_new(json_t *, const char *, struct route_config **,
	    char *, size_t);
void	 route_config_free(struct route_config *);
void	 route_request(struct route_config *);
void	 route_select(struct route_config *, const char *, const char *,
	    struct route_result *);

/* cluster.c */
enum cluster_ep_kind {
	CLUSTER_EP_ADDR,	/* an IP address and port */
	CLUSTER_EP_DNS,		/* a name to resolve, and port */
	CLUSTER_EP_PIPE		/* a unix socket */
};

struct cluster_endpoint {
	enum cluster_ep_kind	 ce_kind;
	struct sockaddr_storage	 ce_addr;	/* ADDR and PIPE */
	socklen_t		 ce_addrlen;
	char			*ce_host;	/* DNS */
	int			 ce_port;	/* DNS */
	char			*ce_desc;	/* "127.0.0.1:15020", for logs */
};

/* Envoy's cluster stats that upstream.c keeps ("cluster.<name>.<stat>"). */
struct cluster_stats {
	struct stats_entry	*cs_rq_total, *cs_rq_completed, *cs_rq_timeout;
	struct stats_entry	*cs_rq_pending_total, *cs_rq_pending_fail;
	struct stats_entry	*cs_cx_total, *cs_cx_connect_fail;
	struct stats_entry	*cs_cx_connect_timeout, *cs_cx_none_healthy;
};

int		 cluster_configure(struct emu *, char *, size_t);
struct cluster	*cluster_find(const char *);
const char	*cluster_name(const struct cluster *);
int64_t		 cluster_connect_timeout(const struct cluster *);
int		 cluster_family(const struct cluster *);
struct cluster_stats *cluster_stats(struct cluster *);
const struct cluster_endpoint *cluster_pick(struct cluster *);
void		 cluster_free(void);

/* upstream.c */
struct upstream;

/*
 * What came back. ur_code 0: the upstream reset after its response
 * started (the downstream connection is to be closed without a reply).
 * ur_headers NULL: a local reply (Envoy's own, body in ur_body).
 */
struct upstream_response {
	int		 ur_code;
	char		*ur_headers;	/* relayed lines, "name: value\r\n" */
	struct evbuffer	*ur_body;
	long long	 ur_length;	/* the upstream's content-length, or -1 */
	uint64_t	 ur_service_ms;
};

typedef void	(*upstream_cb)(struct upstream_response *, void *);

struct upstream	*upstream_new(struct event_base *, struct cluster *,
		    const char *, const char *, const char *, struct evbuffer *,
		    int64_t, upstream_cb, void *);
void		 upstream_cancel(struct upstream *);
void		 upstream_shutdown(void);

/* hotrestart.c */
int	hotrestart_init(struct emu *, char *, size_t);
int	hotrestart_shutdown_parent_admin(char *, size_t);
int	hotrestart_parent_listen_socket(const char *);
void	hotrestart_live(void);
void	hotrestart_terminate_parent(void);
void	hotrestart_close(void);

#endif
