/*
 * What the agent/ folder exports: logging, allocation wrappers, Go durations,
 * the command line and configuration, the proxy supervisor, and the other
 * subcommands. Every other folder includes this header for the log and the
 * configuration.
 */
#ifndef AGENT_H
#define AGENT_H

#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>

struct event_base;
struct evbuffer;
struct json_t;

#define AGENT_VERSION	"0.1.0"

/* Exit codes shared by every subcommand. */
#define EXIT_USAGE	2	/* bad flag, value, variable or file */

/* log.c */
enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
	LOG_LEVEL_NONE
};

void	log_init(void);
int	log_set_level(const char *);
void	log_set_json(int);
void	log_set_scope(const char *);
void	log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	log_error(const char *, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
int	log_format_time(char *, size_t);

/* xmalloc.c: allocation wrappers that never return NULL. */
void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
int	 xasprintf(char **, const char *, ...)
	    __attribute__((format(printf, 2, 3)));

/*
 * document.c: JSON or YAML documents (the mesh config, PROXY_CONFIG, the
 * bootstrap override) as jansson values.
 */
#define DOCUMENT_MAX_SIZE	(16 * 1024 * 1024)
struct json_t *document_parse(const char *, size_t, const char *, char *,
	    size_t);
struct json_t *document_load(const char *, char *, size_t);

/* clock.c: the monotonic clock, timevals, the one backoff. */
#define CLOCK_SEC	1000000000LL	/* nanoseconds */
#define CLOCK_MSEC	1000000LL

struct timeval;
int64_t	 clock_now_ns(void);
struct timeval clock_tv(int64_t);
int64_t	 clock_backoff(int64_t, int, int64_t);
int64_t	 clock_jitter(int64_t);

/* file.c: regular files only, opened without blocking. */
int	 file_open_regular(const char *, char *, size_t);
char	*file_read(const char *, size_t, size_t *, char *, size_t);

/* duration.c: Go's time.ParseDuration, to and from nanoseconds. */
int	duration_parse(const char *, int64_t *, char *, size_t);
void	duration_format(int64_t, char *, size_t);

/*
 * flags.c: the one command line parser of every subcommand, Go's pflag as
 * Istio uses it. A command describes its flags in tables of struct flag,
 * each ended by an entry with neither name nor variable.
 */
enum flag_type {
	FLAG_STRING,		/* char *, a copy (the old one is freed) */
	FLAG_TEXT,		/* const char *, the word itself, not copied */
	FLAG_BOOL,		/* int 0 or 1, Go's ParseBool */
	FLAG_DURATION,		/* int64_t ns, Go's syntax, not negative */
	FLAG_PORT,		/* int, 1-65535 */
	FLAG_INT,		/* int, 0 to INT_MAX */
	FLAG_INT64,		/* int64_t, Go's int */
	FLAG_FUNC,		/* fl_set parses and stores */
	FLAG_IGNORED,		/* accepted with its value, and ignored */
	FLAG_IGNORED_BOOL	/* accepted without a value, and ignored */
};

struct flag {
	const char	*fl_name;	/* long name; NULL: a variable only */
	const char	*fl_alias;	/* another long name, or NULL */
	char		 fl_short;	/* a letter, or '\0' */
	enum flag_type	 fl_type;
	size_t		 fl_offset;	/* of the value, from the table's base */
	const char	*fl_env[2];	/* read when the flag is not given */
	/*
	 * What the value must also be, once parsed (the string itself, or a
	 * pointer to the int or int64_t): 0, or -1 with the reason.
	 */
	int		(*fl_check)(const void *, char *, size_t);
	/* FLAG_FUNC: parses and stores at the base, or -1 with the reason. */
	int		(*fl_set)(const struct flag *, void *, const char *,
			    char *, size_t);
	const char	*fl_arg;	/* the value in --help; NULL: its type */
	const char	*fl_help;	/* what --help says of it, or NULL */
	const char	*fl_default;	/* --help's if not the base's; "": none */
};

#define FLAGS_TABLES		2
#define FLAGS_GO_NAMES		0x1	/* "-name" too, as Go's flag package */
#define FLAGS_WARN_UNKNOWN	0x2	/* an unknown flag is only a warning */
#define FLAGS_IPTABLES		0x4	/* istio-iptables' own messages */

struct flags_given;

struct flags {
	const char		*fs_usage;	/* "pilot-agent wait [flags]" */
	const char		*fs_about;	/* --help's paragraph, or NULL */
	const struct flag	*fs_table[FLAGS_TABLES];	/* NULL: none */
	void			*fs_base[FLAGS_TABLES];	/* what they fill */
	int			 fs_opts;	/* FLAGS_* */
	/* Words an unknown flag never takes as its value, while no
	 * positional argument has come (the proxy's role). */
	const char *const	*fs_words;
	char			*(*fs_getenv)(const char *);	/* NULL: getenv */

	/* What flags_parse found; flags_free releases it. */
	struct flags_given	*fs_given;
	size_t			 fs_ngiven;
	char			**fs_args;	/* the positional arguments */
	int			 fs_nargs;
	int			 fs_help;	/* --help: nothing applied */
};

int	flags_parse(struct flags *, int, char **, char *, size_t);
int	flags_apply(struct flags *, const char *, char *, size_t);
int	flags_environment(struct flags *, char *, size_t);
int	flags_run(struct flags *, int, char **, char *, size_t);
void	flags_free(struct flags *);
void	flags_usage(const struct flags *, FILE *);
int	flags_set(const struct flag *, void *, const char *, char *, size_t);
int	flags_bool(const char *, int *);

/* config.c: the command line and environment of "proxy" and "bootstrap". */
enum config_role {
	ROLE_SIDECAR,
	ROLE_ROUTER
};

#define CONFIG_MAX_IPS	8

struct config {
	enum config_role cf_role;
	char		*cf_config_path;
	char		*cf_binary_path;
	char		*cf_service_cluster;
	char		*cf_domain;
	char		*cf_discovery_address;
	char		*cf_zipkin_address;
	char		*cf_proxy_log_level;
	char		*cf_proxy_component_log_level;
	char		*cf_control_plane_auth_policy;
	char		*cf_trust_domain;
	char		*cf_mesh_config;
	char		*cf_drain_strategy;	/* NULL: Envoy's default */
	char		*cf_log_level;		/* --log_output_level */
	char		*cf_cert_dir;		/* --certDir */
	int64_t		 cf_drain_duration;	/* nanoseconds */
	int64_t		 cf_parent_shutdown_duration;
	int64_t		 cf_termination_drain_duration;
	int64_t		 cf_minimum_drain_duration;
	int64_t		 cf_connect_timeout;
	int64_t		 cf_dns_refresh_rate;
	int64_t		 cf_restart_initial_interval;
	int64_t		 cf_restart_stable_duration;
	int64_t		 cf_watch_debounce;
	int		 cf_restart_max_retries;
	int		 cf_proxy_admin_port;
	int		 cf_status_port;
	int		 cf_envoy_status_port;	/* ENVOY_STATUS_PORT */
	int		 cf_prometheus_port;	/* ENVOY_PROMETHEUS_PORT */
	int		 cf_concurrency;	/* -1: not set */
	int		 cf_control_plane_bootstrap;
	int		 cf_exit_on_zero_active;
	int		 cf_log_as_json;
	int		 cf_help;		/* --help: print and exit */
	int		 cf_argc;		/* the command line, to reload */
	char		**cf_argv;		/* (main's: not owned) */

	/* The xDS relay (relay*.c). */
	char		*cf_istiod_san;		/* ISTIOD_SAN */
	char		*cf_xds_root_ca;	/* XDS_ROOT_CA */
	int64_t		 cf_xds_reconnect_initial;	/* nanoseconds */
	int64_t		 cf_xds_reconnect_max;
	int64_t		 cf_xds_keepalive_interval;
	int64_t		 cf_xds_keepalive_timeout;
	int		 cf_xds_max_recv_size;	/* bytes, 0: no limit */
	int		 cf_xds_end_on_upstream_failure;	/* Istio's way */

	/*
	 * What the other parts read from the environment: every variable
	 * is read here, once, and a malformed one is a usage error.
	 */
	char		*cf_bootstrap_override;	/* ISTIO_BOOTSTRAP_OVERRIDE */
	char		*cf_host_ip;		/* HOST_IP, for the override */
	char		**cf_meta_env;		/* ISTIO_META_*, ISTIO_METAJSON_* */
	size_t		 cf_nmeta_env;		/* (entries, sorted by name) */
	int64_t		 cf_status_idle;	/* STATUS_IDLE_TIMEOUT */
	int		 cf_status_conns;	/* STATUS_MAX_CONNECTIONS, 0: auto */
	int		 cf_status_peer;	/* ..._PER_PEER, 0: a quarter */
	int		 cf_probe_localhost;	/* REWRITE_PROBE_LEGACY_... */
	char		*cf_app_probers;	/* ISTIO_KUBE_APP_PROBERS */
	char		*cf_prom_annotations;	/* ISTIO_PROMETHEUS_ANNOTATIONS */

	/* The pod's identity, from the environment or local defaults. */
	char		*cf_pod_name;
	char		*cf_pod_namespace;
	char		*cf_service_account;
	char		*cf_cluster_id;
	char		*cf_ips[CONFIG_MAX_IPS];
	int		 cf_nips;
	char		*cf_node_id;

	/*
	 * The ProxyConfig layers as read (mesh config's defaultConfig merged
	 * with PROXY_CONFIG), NULL when there are none; proxyconfig.c fills
	 * it, config_free releases it. The rendered PROXY_CONFIG metadata
	 * and proxyMetadata come from it.
	 */
	struct json_t	*cf_proxy_config;
};

/*
 * struct config's flags as the ProxyConfig layers and the bootstrap read
 * them; the parser's table (config.c) is made from the same list.
 */
enum config_type {
	CT_STRING,
	CT_DURATION,
	CT_PORT,
	CT_INT,
	CT_BOOL
};

struct config_flag {
	const char	*cg_name;	/* flag name without dashes */
	const char	*cg_field;	/* ProxyConfig field, NULL if none */
	enum config_type cg_type;
	size_t		 cg_offset;	/* into struct config */
};

extern const struct config_flag config_flags[];

void	config_defaults(struct config *);
int	config_set(struct config *, const struct config_flag *, const char *,
	    const char *, char *, size_t);
int	config_parse(struct config *, int, char **, char *, size_t);
int	config_parse_extra(struct config *, const struct flag *, void *, int,
	    char **, char *, size_t);
int	config_reload(const struct config *, struct config *, char *, size_t);
int	config_identity(struct config *, char *, size_t);
void	config_free(struct config *);
void	config_usage(FILE *, const char *, const struct flag *);
const char *config_role_name(enum config_role);
int	parse_bool(const char *, int *);	/* flags_bool's old name */

/* proxyconfig.c: the mesh config and PROXY_CONFIG layers of config_parse. */
int	proxyconfig_apply(struct config *, char *, size_t);
void	proxyconfig_only_tracer(struct json_t *, const char *);

/* watch.c: restarts the proxy when a watched input changes (debounced). */
struct watch;
struct supervise;

struct watch *watch_new(struct event_base *, const struct config *,
	    struct supervise *);
void	watch_free(struct watch *);

/*
 * supervise.c, supervise_info.c, epoch.c, drain.c: the proxy's epochs, hot
 * restarts, failures and shutdown, as one state machine (supervise.h).
 */
struct supervise;

struct supervise *supervise_new(struct event_base *, struct config *);
void	supervise_free(struct supervise *);
void	supervise_start(struct supervise *, struct json_t *);
void	supervise_restart(struct supervise *, const char *, int);
void	supervise_drain(struct supervise *);
void	supervise_shutdown(struct supervise *, int);
void	supervise_signal(struct supervise *, int);
void	supervise_reap(struct supervise *);
int	supervise_finished(struct supervise *, int *);
const char *supervise_failure(struct supervise *);
int	supervise_ready(struct supervise *, char *, size_t);
int	supervise_live_epoch(struct supervise *);
int	supervise_draining(struct supervise *);
int	supervise_stopping(struct supervise *);
int	supervise_starting(struct supervise *);
struct json_t *supervise_json(struct supervise *);
void	supervise_metrics(struct supervise *, struct evbuffer *);

/* spawn.c: fork and exec with the PID-1 duties of STYLE.md. */
pid_t	spawn_exec(const char *, char *const [], char *, size_t);

/*
 * admin.c: asynchronous requests to the proxy's admin API on 127.0.0.1,
 * over http.c. The callback gets the status code (-1 for a transport
 * error, a timeout or a body cut short) and the body; it is called once,
 * later, unless the request is cancelled, also from inside the callback.
 */
typedef void (*admin_cb)(int, const char *, size_t, void *);
struct admin_request;
struct admin_request *admin_request(struct event_base *, int, const char *,
	    const char *, int64_t, admin_cb, void *);
void	admin_cancel(struct admin_request *);
void	admin_cancel_all(void);

/*
 * http.c: the one HTTP/1.1 client (evhttp), plain or TLS without
 * verification, one request per connection. http_new, then the optional
 * setters, then http_start; the done callback runs once, from the event
 * loop, and the client frees the request when it returns. http_free
 * cancels (no callback runs after it) and is safe at any time, also from
 * inside the request's own connect, data and done callbacks (in done it
 * does nothing). http.c says how it avoids freeing evhttp's connection
 * from inside evhttp.
 */
struct http_request;
struct evkeyvalq;
struct ssl_ctx_st;	/* OpenSSL's SSL_CTX */

enum http_error {
	HTTP_ERR_NONE,		/* a whole response, or its first bytes (capped) */
	HTTP_ERR_REFUSED,	/* the connection was refused */
	HTTP_ERR_CONNECT,	/* no connection: unknown host, TLS handshake */
	HTTP_ERR_TIMEOUT,	/* no whole response within the timeout */
	HTTP_ERR_CLOSED,	/* closed before the status line and headers */
	HTTP_ERR_CUT,		/* closed after the headers, before the body ended */
	HTTP_ERR_MALFORMED,	/* not an HTTP response */
	HTTP_ERR_TOO_LARGE	/* the body went past http_keep's cap */
};

struct http_result {
	enum http_error	 hs_error;
	const char	*hs_reason;	/* the error in words, "" for none */
	int		 hs_code;	/* the status, 0: none arrived */
	struct evkeyvalq *hs_headers;	/* the response's (empty: none) */
	struct evbuffer	*hs_body;	/* what was kept; the callback may take it */
	unsigned long long hs_received;	/* body bytes that arrived */
	long long	 hs_length;	/* Content-Length, -1: none */
	int		 hs_capped;	/* only the first bytes were kept */
};

/* The end: the result is valid only during the call. */
typedef void (*http_done_cb)(const struct http_result *, void *);
/* Part of the body, in evhttp's buffer: take what you want from it. */
typedef void (*http_data_cb)(struct http_request *, struct evbuffer *,
	    void *);
/* The connection is up and the request is going out on it. */
typedef void (*http_connect_cb)(struct http_request *, void *);

struct http_request *http_new(struct event_base *, const char *,
	    const char *, int, const char *, int64_t);
void	http_header(struct http_request *, const char *, const char *);
void	http_header_add(struct http_request *, const char *, const char *);
void	http_keepalive(struct http_request *);
void	http_body(struct http_request *, const void *, size_t);
void	http_tls(struct http_request *, struct ssl_ctx_st *);
void	http_keep(struct http_request *, size_t, int);
void	http_read_size(struct http_request *, size_t);
void	http_callbacks(struct http_request *, http_data_cb, http_done_cb,
	    void *);
void	http_on_connect(struct http_request *, http_connect_cb);
int	http_start(struct http_request *, char *, size_t);
void	http_pause(struct http_request *, int);
void	http_free(struct http_request *);
int	http_method_valid(const char *);
struct ssl_ctx_st *http_tls_new(char *, size_t);
void	http_tls_free(struct ssl_ctx_st *);

/*
 * envoystats.c: the one parser of the proxy's admin /stats text ("name:
 * value" lines), with no limit on a line's length. envoystats_each calls
 * back with each line's name and value (not NUL-terminated) until the
 * callback returns non-zero; envoystats_get finds one stat by its exact
 * name (0, or -1: absent or not an integer); envoystats_int reads a value;
 * envoystats_active sums listener.<...>.downstream_cx_active as the drain
 * needs, leaving out "worker_" copies, "listener.admin." and the
 * listeners whose name has "_<port>." for either port given (0: none):
 * the total, or -1 when there is no such stat.
 */
typedef int (*envoystats_cb)(const char *, size_t, const char *, size_t,
	    void *);
int	envoystats_each(const char *, size_t, envoystats_cb, void *);
int	envoystats_int(const char *, size_t, long long *);
int	envoystats_get(const char *, size_t, const char *, long long *);
long long envoystats_active(const char *, size_t, int, int);

/*
 * cq.c: the one gRPC completion-queue thread, shared by every gRPC server
 * and client of the process. A user embeds a struct cq_op in its own
 * record for each operation it starts, and gives &op as the gRPC tag. The
 * queue's thread runs co_work, if set, as soon as the operation completes
 * (it may touch only what the operation alone owns); co_cb then runs on the
 * libevent thread. Everything else here is for the libevent thread only.
 * An operation's record must live until its callback has run (cq.c says
 * what becomes of operations that outlive their owner).
 */
struct cq_op;
struct grpc_completion_queue;
typedef void (*cq_op_cb)(struct cq_op *);

struct cq_op {
	TAILQ_ENTRY(cq_op) co_entry;	/* cq.c's hand-off list */
	cq_op_cb	 co_cb;		/* on the libevent thread */
	cq_op_cb	 co_work;	/* NULL, or first on the gRPC thread */
	void		*co_arg;	/* the owner's */
	int		 co_ok;		/* the batch's success */
};

int	 cq_start(struct event_base *, char *, size_t);
void	 cq_stop(void);
struct grpc_completion_queue *cq_queue(void);
void	 cq_op_init(struct cq_op *, cq_op_cb, void *);
int	 cq_dispatch(int);

/* relay/: the xDS relay between the proxy and the control plane. */
struct relay;

struct relay *relay_new(struct event_base *, const struct config *, char *,
	    size_t);
void	relay_free(struct relay *);
struct json_t *relay_syncz(struct relay *);
void	relay_metrics(struct relay *, struct evbuffer *);

/* wait.c and request.c: "pilot-agent wait" and "pilot-agent request". */
int	wait_main(int, char **);
int	request_main(int, char **);

/* iptables/: the istio-iptables and istio-clean-iptables subcommands. */
int	iptables_main(int, char **);
int	iptables_clean_main(int, char **);

#endif
