/*
 * The command line and environment of "pilot-agent proxy" and "bootstrap".
 * The flags are parsed by flags.c (Go's pflag as Istio uses it, "-name" too
 * as Go's flag package has it); an unknown flag is a warning, as in Istio.
 * Precedence is defaults, then the environment, then the ProxyConfig layers
 * (mesh config, PROXY_CONFIG), then flags: the flags are read first, so that
 * a bad one stops everything, and applied last. A malformed value is a usage
 * error naming its flag, variable or ProxyConfig field.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <limits.h>
#include <net/if.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"

#define NSEC	1000000000LL
#define MSEC	1000000LL

static int	config_check_address(const void *, char *, size_t);
static int	config_check_auth_policy(const void *, char *, size_t);
static int	config_check_envoy_seconds(const void *, char *, size_t);
static int	config_check_connect_timeout(const void *, char *, size_t);
static int	config_check_positive(const void *, char *, size_t);
static int	config_check_count(const void *, char *, size_t);

/*
 * Every flag of struct config, once: X(name, ProxyConfig field, type,
 * member, check). The list makes two tables in the same order: config_flags,
 * which the ProxyConfig layers and the bootstrap read, and config_cli, the
 * parser's. The check is what Istio's validation (or Envoy) also requires of
 * a parsed value, wherever it comes from.
 */
#define CONFIG_FLAGS(X)							\
	X("configPath", "configPath", STRING, cf_config_path, NULL)	\
	X("binaryPath", "binaryPath", STRING, cf_binary_path, NULL)	\
	X("serviceCluster", "serviceCluster", STRING,			\
	    cf_service_cluster, NULL)					\
	X("domain", NULL, STRING, cf_domain, NULL)			\
	X("discoveryAddress", "discoveryAddress", STRING,		\
	    cf_discovery_address, config_check_address)			\
	X("zipkinAddress", NULL, STRING, cf_zipkin_address, NULL)	\
	X("proxyLogLevel", NULL, STRING, cf_proxy_log_level, NULL)	\
	X("proxyComponentLogLevel", NULL, STRING,			\
	    cf_proxy_component_log_level, NULL)				\
	X("controlPlaneAuthPolicy", "controlPlaneAuthPolicy", STRING,	\
	    cf_control_plane_auth_policy, config_check_auth_policy)	\
	X("trust-domain", NULL, STRING, cf_trust_domain, NULL)		\
	X("meshConfig", NULL, STRING, cf_mesh_config, NULL)		\
	X("drainStrategy", NULL, STRING, cf_drain_strategy, NULL)	\
	X("log_output_level", NULL, STRING, cf_log_level, NULL)	\
	X("certDir", NULL, STRING, cf_cert_dir, NULL)			\
	X("watchDebounce", NULL, DURATION, cf_watch_debounce, NULL)	\
	X("drainDuration", "drainDuration", DURATION,			\
	    cf_drain_duration, config_check_envoy_seconds)		\
	X("parentShutdownDuration", "parentShutdownDuration", DURATION, \
	    cf_parent_shutdown_duration, config_check_envoy_seconds)	\
	X("terminationDrainDuration", "terminationDrainDuration",	\
	    DURATION, cf_termination_drain_duration, NULL)		\
	X("connectTimeout", "connectTimeout", DURATION,			\
	    cf_connect_timeout, config_check_connect_timeout)		\
	X("dnsRefreshRate", "dnsRefreshRate", DURATION,			\
	    cf_dns_refresh_rate, NULL)					\
	X("restartInitialInterval", NULL, DURATION,			\
	    cf_restart_initial_interval, NULL)				\
	X("restartStableDuration", NULL, DURATION,			\
	    cf_restart_stable_duration, NULL)				\
	X("restartMaxRetries", NULL, INT, cf_restart_max_retries, NULL) \
	X("proxyAdminPort", "proxyAdminPort", PORT, cf_proxy_admin_port, \
	    NULL)							\
	X("statusPort", "statusPort", PORT, cf_status_port, NULL)	\
	X("concurrency", "concurrency", INT, cf_concurrency, NULL)	\
	X("controlPlaneBootstrap", NULL, BOOL,				\
	    cf_control_plane_bootstrap, NULL)				\
	X("log_as_json", NULL, BOOL, cf_log_as_json, NULL)		\
	X("xdsReconnectInitialInterval", NULL, DURATION,		\
	    cf_xds_reconnect_initial, NULL)				\
	X("xdsReconnectMaxInterval", NULL, DURATION,			\
	    cf_xds_reconnect_max, NULL)					\
	X("xdsKeepaliveInterval", NULL, DURATION,			\
	    cf_xds_keepalive_interval, NULL)				\
	X("xdsKeepaliveTimeout", NULL, DURATION,			\
	    cf_xds_keepalive_timeout, NULL)				\
	X("xdsMaxReceiveMessageSize", NULL, INT, cf_xds_max_recv_size,	\
	    NULL)							\
	X("xdsEndStreamOnUpstreamFailure", NULL, BOOL,			\
	    cf_xds_end_on_upstream_failure, NULL)

#define CONFIG_FLAG(name, field, type, member, check)			\
	{ name, field, CT_##type, offsetof(struct config, member) },
#define CONFIG_CLI(name, field, type, member, check)			\
	{ .fl_name = name, .fl_type = FLAG_##type,			\
	  .fl_offset = offsetof(struct config, member), .fl_check = check },
#define CONFIG_IGNORED(name)	{ .fl_name = name, .fl_type = FLAG_IGNORED },
#define CONFIG_IGNORED_BOOL(name) \
	{ .fl_name = name, .fl_type = FLAG_IGNORED_BOOL },

const struct config_flag config_flags[] = {
	CONFIG_FLAGS(CONFIG_FLAG)
	{ NULL, NULL, CT_STRING, 0 }
};

static const struct flag config_cli[] = {
	CONFIG_FLAGS(CONFIG_CLI)

	/* Variables of DESIGN §3 that no flag sets and are not identity. */
	{ .fl_env = { "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", NULL },
	  .fl_type = FLAG_BOOL,
	  .fl_offset = offsetof(struct config, cf_exit_on_zero_active) },
	{ .fl_env = { "MINIMUM_DRAIN_DURATION", NULL },
	  .fl_type = FLAG_DURATION,
	  .fl_offset = offsetof(struct config, cf_minimum_drain_duration) },
	{ .fl_env = { "ENVOY_STATUS_PORT", NULL },
	  .fl_type = FLAG_PORT,
	  .fl_offset = offsetof(struct config, cf_envoy_status_port) },
	{ .fl_env = { "ENVOY_PROMETHEUS_PORT", NULL },
	  .fl_type = FLAG_PORT,
	  .fl_offset = offsetof(struct config, cf_prometheus_port) },
	{ .fl_env = { "ISTIOD_SAN", NULL },
	  .fl_type = FLAG_STRING,
	  .fl_offset = offsetof(struct config, cf_istiod_san) },
	{ .fl_env = { "XDS_ROOT_CA", NULL },
	  .fl_type = FLAG_STRING,
	  .fl_offset = offsetof(struct config, cf_xds_root_ca) },
	{ .fl_env = { "ISTIO_BOOTSTRAP_OVERRIDE", NULL },
	  .fl_type = FLAG_STRING,
	  .fl_offset = offsetof(struct config, cf_bootstrap_override) },
	{ .fl_env = { "HOST_IP", NULL },
	  .fl_type = FLAG_STRING,
	  .fl_offset = offsetof(struct config, cf_host_ip) },
	/* The status servers'; their JSON is checked by status_new. */
	{ .fl_env = { "STATUS_IDLE_TIMEOUT", NULL },
	  .fl_type = FLAG_DURATION, .fl_check = config_check_positive,
	  .fl_offset = offsetof(struct config, cf_status_idle) },
	{ .fl_env = { "STATUS_MAX_CONNECTIONS", NULL },
	  .fl_type = FLAG_INT, .fl_check = config_check_count,
	  .fl_offset = offsetof(struct config, cf_status_conns) },
	{ .fl_env = { "STATUS_MAX_CONNECTIONS_PER_PEER", NULL },
	  .fl_type = FLAG_INT, .fl_check = config_check_count,
	  .fl_offset = offsetof(struct config, cf_status_peer) },
	{ .fl_env = { "REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION", NULL },
	  .fl_type = FLAG_BOOL,
	  .fl_offset = offsetof(struct config, cf_probe_localhost) },
	{ .fl_env = { "ISTIO_KUBE_APP_PROBERS", NULL },
	  .fl_type = FLAG_STRING,
	  .fl_offset = offsetof(struct config, cf_app_probers) },
	{ .fl_env = { "ISTIO_PROMETHEUS_ANNOTATIONS", NULL },
	  .fl_type = FLAG_STRING,
	  .fl_offset = offsetof(struct config, cf_prom_annotations) },

	/*
	 * Flags of Istio's pilot-agent that this agent accepts and has no
	 * use for; they are ignored without a warning.
	 */
	CONFIG_IGNORED("log_caller")
	CONFIG_IGNORED("log_stacktrace_level")
	CONFIG_IGNORED("log_target")
	CONFIG_IGNORED("log_rotate")
	CONFIG_IGNORED("log_rotate_max_age")
	CONFIG_IGNORED("log_rotate_max_size")
	CONFIG_IGNORED("log_rotate_max_backups")
	CONFIG_IGNORED("outlierLogPath")
	CONFIG_IGNORED("stsPort")
	CONFIG_IGNORED("tokenManagerPlugin")
	CONFIG_IGNORED("templateFile")
	CONFIG_IGNORED("vklog")
	CONFIG_IGNORED_BOOL("disableInternalTelemetry")
	CONFIG_IGNORED_BOOL("skipParseTokenEnv")
	{ NULL }
};

/* The positional argument of "proxy", which an unknown flag never takes. */
static const char *const config_roles[] = { "sidecar", "router", NULL };

static const char *const config_envoy_levels[] = {
	"trace", "debug", "info", "warning", "warn", "error", "critical",
	"off", NULL
};

static int
config_in(const char *s, const char *const *list)
{
	for (; *list != NULL; list++) {
		if (strcmp(s, *list) == 0)
			return 1;
	}
	return 0;
}

void
config_defaults(struct config *cf)
{
	memset(cf, 0, sizeof(*cf));
	cf->cf_role = ROLE_SIDECAR;
	cf->cf_config_path = xstrdup("./etc/istio/proxy");
	cf->cf_binary_path = xstrdup("/usr/local/bin/envoy");
	cf->cf_service_cluster = xstrdup("istio-proxy");
	cf->cf_discovery_address = xstrdup("istiod.istio-system.svc:15012");
	cf->cf_proxy_log_level = xstrdup("warning");
	cf->cf_control_plane_auth_policy = xstrdup("MUTUAL_TLS");
	cf->cf_trust_domain = xstrdup("cluster.local");
	cf->cf_cert_dir = xstrdup("/etc/certs");
	cf->cf_watch_debounce = 10 * 1000000000LL;
	cf->cf_drain_duration = 45 * 1000000000LL;
	cf->cf_parent_shutdown_duration = 60 * 1000000000LL;
	cf->cf_termination_drain_duration = 5 * 1000000000LL;
	cf->cf_minimum_drain_duration = 5 * 1000000000LL;
	cf->cf_connect_timeout = 10 * 1000000000LL;
	cf->cf_dns_refresh_rate = 300 * 1000000000LL;
	cf->cf_restart_initial_interval = 200 * 1000000LL;
	cf->cf_restart_stable_duration = 10 * 1000000000LL;
	cf->cf_restart_max_retries = 10;
	cf->cf_proxy_admin_port = 15000;
	cf->cf_status_port = 15020;
	cf->cf_envoy_status_port = 15021;
	cf->cf_prometheus_port = 15090;
	cf->cf_concurrency = -1;
	cf->cf_xds_reconnect_initial = 100 * 1000000LL;
	cf->cf_xds_reconnect_max = 1000 * 1000000LL;
	cf->cf_xds_keepalive_interval = 30 * 1000000000LL;
	cf->cf_xds_keepalive_timeout = 10 * 1000000000LL;
	cf->cf_xds_max_recv_size = INT_MAX;
	cf->cf_status_idle = 15 * 1000000000LL;
}

static int
config_meta_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The node metadata's variables, ISTIO_META_<NAME> and
 * ISTIO_METAJSON_<NAME>, sorted by name so that the bootstrap does not
 * depend on the order of the environment (bootstrap/metadata.c reads them).
 */
static void
config_meta_env(struct config *cf)
{
	extern char	**environ;
	char		**e;

	for (e = environ; e != NULL && *e != NULL; e++) {
		if (strncmp(*e, "ISTIO_META_", 11) != 0 &&
		    strncmp(*e, "ISTIO_METAJSON_", 15) != 0)
			continue;
		cf->cf_meta_env = xrealloc(cf->cf_meta_env,
		    (cf->cf_nmeta_env + 1) * sizeof(*cf->cf_meta_env));
		cf->cf_meta_env[cf->cf_nmeta_env++] = xstrdup(*e);
	}
	if (cf->cf_nmeta_env > 0)
		qsort(cf->cf_meta_env, cf->cf_nmeta_env,
		    sizeof(*cf->cf_meta_env), config_meta_cmp);
}

const char *
config_role_name(enum config_role role)
{
	return role == ROLE_ROUTER ? "router" : "sidecar";
}

/* Go's strconv.ParseBool, by the name status/ still calls it. */
int
parse_bool(const char *s, int *out)
{
	return flags_bool(s, out);
}

/*
 * The checks of Istio's ProxyConfig validation that a value's type does not
 * make, and Envoy's limits on what reaches its command line. A value Envoy
 * would refuse must be refused here, at start, with exit 2: passed on, it
 * makes every epoch fail and the agent give up after its whole budget.
 */
static int
config_check_auth_policy(const void *v, char *why, size_t len)
{
	if (strcmp(v, "NONE") == 0 || strcmp(v, "MUTUAL_TLS") == 0)
		return 0;
	snprintf(why, len, "not NONE or MUTUAL_TLS");
	return -1;
}

/* Envoy's --drain-time-s and --parent-shutdown-time-s: whole uint32 seconds. */
static int
config_check_envoy_seconds(const void *v, char *why, size_t len)
{
	int64_t	d = *(const int64_t *)v;

	if (d < NSEC || d % NSEC != 0) {
		snprintf(why, len, "must be whole seconds, at least 1s");
		return -1;
	}
	if (d / NSEC > UINT32_MAX) {
		snprintf(why, len, "more than Envoy's limit of %lus",
		    (unsigned long)UINT32_MAX);
		return -1;
	}
	return 0;
}

static int
config_check_connect_timeout(const void *v, char *why, size_t len)
{
	int64_t	d = *(const int64_t *)v;

	if (d < MSEC || d > 30 * NSEC || d % MSEC != 0) {
		snprintf(why, len, "must be from 1ms to 30s, in whole "
		    "milliseconds");
		return -1;
	}
	return 0;
}

static int
config_check_positive(const void *v, char *why, size_t len)
{
	if (*(const int64_t *)v > 0)
		return 0;
	snprintf(why, len, "not a positive duration");
	return -1;
}

static int
config_check_count(const void *v, char *why, size_t len)
{
	int	n = *(const int *)v;

	if (n >= 1 && n <= 100000)
		return 0;
	snprintf(why, len, "not a number from 1 to 100000");
	return -1;
}

/*
 * Istio's ValidateProxyAddress: host:port, the port 1-65535. The relay also
 * takes gRPC's own targets (unix:/path, unix-abstract:name, dns:///host:port),
 * which are left to gRPC.
 */
static int
config_check_address(const void *v, char *why, size_t len)
{
	const char	*s = v, *colon, *host_end;
	char		*end;
	long		 port;

	if (*s == '\0') {
		snprintf(why, len, "discovery address must be set to the "
		    "proxy discovery service");
		return -1;
	}
	if ((strncmp(s, "unix:", 5) == 0 && s[5] != '\0') ||
	    (strncmp(s, "unix-abstract:", 14) == 0 && s[14] != '\0') ||
	    ((colon = strstr(s, ":///")) != NULL && colon[4] != '\0'))
		return 0;
	if (*s == '[') {
		if ((host_end = strchr(s, ']')) == NULL || host_end[1] != ':') {
			snprintf(why, len, "not host:port");
			return -1;
		}
		colon = host_end + 1;
	} else if ((colon = strrchr(s, ':')) == NULL || colon == s ||
	    memchr(s, ':', (size_t)(colon - s)) != NULL) {
		snprintf(why, len, "not host:port");
		return -1;
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || errno != 0 || port < 1 ||
	    port > 65535) {
		snprintf(why, len, "port \"%s\" is not in the range 1..65535",
		    colon + 1);
		return -1;
	}
	return 0;
}

/*
 * Sets one field from its text value, as its flag would. "what" names the
 * source for the message ("field": a ProxyConfig layer's) in pflag's words.
 */
int
config_set(struct config *cf, const struct config_flag *cg, const char *value,
    const char *what, char *err, size_t errlen)
{
	char	why[160];

	if (flags_set(&config_cli[cg - config_flags], cf, value, why,
	    sizeof(why)) == 0)
		return 0;
	snprintf(err, errlen, "invalid argument \"%s\" for \"%s%s\" %s: %s",
	    value, strcmp(what, "flag") == 0 ? "--" : "", cg->cg_name, what,
	    why);
	return -1;
}

static int
config_validate(struct config *cf, char *err, size_t errlen)
{
	if (!config_in(cf->cf_proxy_log_level, config_envoy_levels)) {
		snprintf(err, errlen, "invalid argument \"%s\" for "
		    "\"--proxyLogLevel\" flag: not one of trace, debug, info, "
		    "warning, error, critical, off", cf->cf_proxy_log_level);
		return -1;
	}
	if (cf->cf_drain_strategy != NULL &&
	    strcmp(cf->cf_drain_strategy, "immediate") != 0 &&
	    strcmp(cf->cf_drain_strategy, "gradual") != 0) {
		snprintf(err, errlen, "invalid argument \"%s\" for "
		    "\"--drainStrategy\" flag: not immediate or gradual",
		    cf->cf_drain_strategy);
		return -1;
	}
	if (cf->cf_log_level != NULL && log_set_level(cf->cf_log_level) == -1) {
		snprintf(err, errlen, "invalid argument \"%s\" for "
		    "\"--log_output_level\" flag: expected scope:level with "
		    "level one of debug, info, warn, error, none",
		    cf->cf_log_level);
		return -1;
	}
	if (*cf->cf_config_path == '\0') {
		snprintf(err, errlen, "invalid argument \"\" for "
		    "\"--configPath\" flag: empty path");
		return -1;
	}
	if (cf->cf_restart_initial_interval == 0) {
		snprintf(err, errlen, "invalid argument \"0s\" for "
		    "\"--restartInitialInterval\" flag: must be positive");
		return -1;
	}
	if (cf->cf_xds_reconnect_initial == 0 ||
	    cf->cf_xds_reconnect_max < cf->cf_xds_reconnect_initial) {
		snprintf(err, errlen, "invalid --xdsReconnectInitialInterval or "
		    "--xdsReconnectMaxInterval: the first must be positive and "
		    "not above the second");
		return -1;
	}
	return 0;
}

static void
config_flags_init(struct flags *fs, struct config *cf,
    const struct flag *extra, void *extra_base)
{
	memset(fs, 0, sizeof(*fs));
	fs->fs_table[0] = config_cli;
	fs->fs_base[0] = cf;
	fs->fs_table[1] = extra;
	fs->fs_base[1] = extra_base;
	fs->fs_opts = FLAGS_GO_NAMES | FLAGS_WARN_UNKNOWN;
	fs->fs_words = config_roles;
}

/* The one positional argument: the proxy's role. */
static int
config_role(struct config *cf, const struct flags *fs, char *err,
    size_t errlen)
{
	if (fs->fs_nargs == 0 || strcmp(fs->fs_args[0], "sidecar") == 0)
		cf->cf_role = ROLE_SIDECAR;
	else if (strcmp(fs->fs_args[0], "router") == 0)
		cf->cf_role = ROLE_ROUTER;
	else {
		snprintf(err, errlen, "invalid proxy type \"%s\": expected "
		    "sidecar or router", fs->fs_args[0]);
		return -1;
	}
	if (fs->fs_nargs > 1) {
		snprintf(err, errlen, "unexpected argument \"%s\"",
		    fs->fs_args[1]);
		return -1;
	}
	return 0;
}

/*
 * Parses "proxy" arguments (argv[0] is the subcommand). Returns -1 with the
 * message in err on a usage error, before anything is forked or written.
 */
int
config_parse(struct config *cf, int argc, char **argv, char *err,
    size_t errlen)
{
	return config_parse_extra(cf, NULL, NULL, argc, argv, err, errlen);
}

/*
 * The same, with the flags of extra (bootstrap's own) stored into
 * extra_base.
 */
int
config_parse_extra(struct config *cf, const struct flag *extra,
    void *extra_base, int argc, char **argv, char *err, size_t errlen)
{
	struct flags	fs;
	int		rc = -1;

	config_defaults(cf);
	config_flags_init(&fs, cf, extra, extra_base);
	if (flags_parse(&fs, argc, argv, err, errlen) == -1)
		goto out;
	if (fs.fs_help) {
		cf->cf_help = 1;
		rc = 0;
		goto out;
	}
	if (config_role(cf, &fs, err, errlen) == -1)
		goto out;
	if (flags_environment(&fs, err, errlen) == -1)
		goto out;
	config_meta_env(cf);
	/*
	 * The ProxyConfig layers (mesh config, PROXY_CONFIG); the mesh config
	 * file is named by a flag, so that one flag is applied first.
	 */
	if (flags_apply(&fs, "meshConfig", err, errlen) == -1)
		goto out;
	if (proxyconfig_apply(cf, err, errlen) == -1)
		goto out;
	if (flags_apply(&fs, NULL, err, errlen) == -1)
		goto out;
	if (config_validate(cf, err, errlen) == -1)
		goto out;
	if (config_identity(cf, err, errlen) == -1)
		goto out;
	cf->cf_argc = argc;
	cf->cf_argv = argv;
	rc = 0;
out:
	flags_free(&fs);
	return rc;
}

/*
 * Parses the command line of cf again, with the files and environment as
 * they are now, into fresh: a changed mesh config reaches the next epoch.
 */
int
config_reload(const struct config *cf, struct config *fresh, char *err,
    size_t errlen)
{
	if (config_parse(fresh, cf->cf_argc, cf->cf_argv, err, errlen) == -1) {
		config_free(fresh);
		return -1;
	}
	return 0;
}

static int
config_first_ip(char *buf, size_t len)
{
	struct ifaddrs	*ifa, *i;
	int		 found = 0;

	if (getifaddrs(&ifa) == -1)
		return -1;
	for (i = ifa; i != NULL && !found; i = i->ifa_next) {
		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET ||
		    (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
			continue;
		found = inet_ntop(AF_INET,
		    &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr,
		    buf, (socklen_t)len) != NULL;
	}
	freeifaddrs(ifa);
	return found ? 0 : -1;
}

static int
config_add_ips(struct config *cf, const char *list, const char *var,
    char *err, size_t errlen)
{
	char	*copy, *ip, *save = NULL;
	unsigned char addr[16];
	int	 rc = -1;

	copy = xstrdup(list);
	for (ip = strtok_r(copy, ", ", &save); ip != NULL;
	    ip = strtok_r(NULL, ", ", &save)) {
		if (inet_pton(AF_INET, ip, addr) != 1 &&
		    inet_pton(AF_INET6, ip, addr) != 1) {
			snprintf(err, errlen, "invalid value \"%s\" in %s: not "
			    "an IP address", ip, var);
			goto out;
		}
		if (cf->cf_nips == CONFIG_MAX_IPS)
			break;
		cf->cf_ips[cf->cf_nips++] = xstrdup(ip);
	}
	rc = 0;
out:
	free(copy);
	return rc;
}

/*
 * The pod's identity. Outside Kubernetes every variable may be missing; the
 * defaults are said once in the log.
 */
int
config_identity(struct config *cf, char *err, size_t errlen)
{
	static int	 said_defaults;
	const char	*v, *domain;
	char		 host[256], ip[INET6_ADDRSTRLEN], defaults[640] = "";
	size_t		 n;
	char		*dflt_domain = NULL;

	if ((v = getenv("POD_NAME")) != NULL && *v != '\0')
		cf->cf_pod_name = xstrdup(v);
	else {
		if (gethostname(host, sizeof(host)) == -1 || *host == '\0')
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		cf->cf_pod_name = xstrdup(host);
		n = strlen(defaults);
		snprintf(defaults + n, sizeof(defaults) - n, " POD_NAME=%s",
		    host);
	}
	if ((v = getenv("POD_NAMESPACE")) != NULL && *v != '\0')
		cf->cf_pod_namespace = xstrdup(v);
	else {
		cf->cf_pod_namespace = xstrdup("default");
		n = strlen(defaults);
		snprintf(defaults + n, sizeof(defaults) - n,
		    " POD_NAMESPACE=default");
	}
	if ((v = getenv("INSTANCE_IP")) != NULL && *v != '\0') {
		if (config_add_ips(cf, v, "INSTANCE_IP", err, errlen) == -1)
			return -1;
	}
	if ((v = getenv("ISTIO_META_INSTANCE_IPS")) != NULL && *v != '\0') {
		if (config_add_ips(cf, v, "ISTIO_META_INSTANCE_IPS", err,
		    errlen) == -1)
			return -1;
	}
	if (cf->cf_nips == 0) {
		if (config_first_ip(ip, sizeof(ip)) == -1)
			snprintf(ip, sizeof(ip), "127.0.0.1");
		cf->cf_ips[cf->cf_nips++] = xstrdup(ip);
		n = strlen(defaults);
		snprintf(defaults + n, sizeof(defaults) - n, " INSTANCE_IP=%s",
		    ip);
	}
	cf->cf_service_account = xstrdup((v = getenv("SERVICE_ACCOUNT")) !=
	    NULL ? v : "");
	cf->cf_cluster_id = xstrdup((v = getenv("ISTIO_META_CLUSTER_ID")) !=
	    NULL && *v != '\0' ? v : "Kubernetes");
	if (cf->cf_domain != NULL && *cf->cf_domain != '\0')
		domain = cf->cf_domain;
	else {
		xasprintf(&dflt_domain, "%s.svc.cluster.local",
		    cf->cf_pod_namespace);
		domain = dflt_domain;
	}
	free(cf->cf_node_id);
	xasprintf(&cf->cf_node_id, "%s~%s~%s.%s~%s",
	    cf->cf_role == ROLE_ROUTER ? "router" : "sidecar", cf->cf_ips[0],
	    cf->cf_pod_name, cf->cf_pod_namespace, domain);
	free(dflt_domain);
	/* Said once per process, though restarts read the configuration again. */
	if (*defaults != '\0' && !said_defaults) {
		said_defaults = 1;
		log_info("not running in Kubernetes (or variables missing); "
		    "using defaults:%s", defaults);
	}
	return 0;
}

/*
 * The flags of "proxy" (or "bootstrap", with its extra flags) and their
 * defaults, from the tables the parser uses, so that the two cannot drift
 * apart.
 */
void
config_usage(FILE *f, const char *cmd, const struct flag *extra)
{
	struct flags	fs;
	struct config	cf;

	config_defaults(&cf);
	config_flags_init(&fs, &cf, extra, NULL);
	fs.fs_usage = strcmp(cmd, "proxy") == 0 ?
	    "pilot-agent proxy [sidecar|router] [flags]" :
	    "pilot-agent bootstrap [flags]";
	flags_usage(&fs, f);
	config_free(&cf);
}

void
config_free(struct config *cf)
{
	const struct config_flag *cg;
	int		 i;

	for (cg = config_flags; cg->cg_name != NULL; cg++) {
		if (cg->cg_type == CT_STRING) {
			char **p = (char **)((char *)cf + cg->cg_offset);

			free(*p);
			*p = NULL;
		}
	}
	free(cf->cf_pod_name);
	free(cf->cf_pod_namespace);
	free(cf->cf_service_account);
	free(cf->cf_cluster_id);
	for (i = 0; i < cf->cf_nips; i++)
		free(cf->cf_ips[i]);
	free(cf->cf_node_id);
	free(cf->cf_istiod_san);
	free(cf->cf_xds_root_ca);
	free(cf->cf_bootstrap_override);
	free(cf->cf_host_ip);
	free(cf->cf_app_probers);
	free(cf->cf_prom_annotations);
	for (i = 0; i < (int)cf->cf_nmeta_env; i++)
		free(cf->cf_meta_env[i]);
	free(cf->cf_meta_env);
	json_decref(cf->cf_proxy_config);
	memset(cf, 0, sizeof(*cf));
}
