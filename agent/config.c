/*
 * The command line and environment of "pilot-agent proxy" and "bootstrap".
 * Flags follow Go's pflag as Istio uses it: "--name value" or "--name=value";
 * a boolean takes its value only as "--name=false". Precedence is defaults,
 * then the ProxyConfig layers (mesh config, PROXY_CONFIG), then flags, so the
 * flags are collected first and applied last. A malformed value is a usage
 * error naming the flag; an unknown flag is a warning, as in Istio.
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
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"

#define F(name, field, type, member) \
	{ name, field, type, offsetof(struct config, member), NULL }
#define FC(name, field, type, member, check) \
	{ name, field, type, offsetof(struct config, member), check }

#define NSEC	1000000000LL
#define MSEC	1000000LL

static int	config_check_address(const void *, char *, size_t);
static int	config_check_auth_policy(const void *, char *, size_t);
static int	config_check_envoy_seconds(const void *, char *, size_t);
static int	config_check_connect_timeout(const void *, char *, size_t);

const struct config_flag config_flags[] = {
	F("configPath", "configPath", CT_STRING, cf_config_path),
	F("binaryPath", "binaryPath", CT_STRING, cf_binary_path),
	F("serviceCluster", "serviceCluster", CT_STRING, cf_service_cluster),
	F("domain", NULL, CT_STRING, cf_domain),
	FC("discoveryAddress", "discoveryAddress", CT_STRING,
	    cf_discovery_address, config_check_address),
	F("zipkinAddress", NULL, CT_STRING, cf_zipkin_address),
	F("proxyLogLevel", NULL, CT_STRING, cf_proxy_log_level),
	F("proxyComponentLogLevel", NULL, CT_STRING,
	    cf_proxy_component_log_level),
	FC("controlPlaneAuthPolicy", "controlPlaneAuthPolicy", CT_STRING,
	    cf_control_plane_auth_policy, config_check_auth_policy),
	F("trust-domain", NULL, CT_STRING, cf_trust_domain),
	F("meshConfig", NULL, CT_STRING, cf_mesh_config),
	F("drainStrategy", NULL, CT_STRING, cf_drain_strategy),
	F("log_output_level", NULL, CT_STRING, cf_log_level),
	F("certDir", NULL, CT_STRING, cf_cert_dir),
	F("watchDebounce", NULL, CT_DURATION, cf_watch_debounce),
	FC("drainDuration", "drainDuration", CT_DURATION, cf_drain_duration,
	    config_check_envoy_seconds),
	FC("parentShutdownDuration", "parentShutdownDuration", CT_DURATION,
	    cf_parent_shutdown_duration, config_check_envoy_seconds),
	F("terminationDrainDuration", "terminationDrainDuration", CT_DURATION,
	    cf_termination_drain_duration),
	FC("connectTimeout", "connectTimeout", CT_DURATION, cf_connect_timeout,
	    config_check_connect_timeout),
	F("dnsRefreshRate", "dnsRefreshRate", CT_DURATION,
	    cf_dns_refresh_rate),
	F("restartInitialInterval", NULL, CT_DURATION,
	    cf_restart_initial_interval),
	F("restartStableDuration", NULL, CT_DURATION,
	    cf_restart_stable_duration),
	F("restartMaxRetries", NULL, CT_INT, cf_restart_max_retries),
	F("proxyAdminPort", "proxyAdminPort", CT_PORT, cf_proxy_admin_port),
	F("statusPort", "statusPort", CT_PORT, cf_status_port),
	F("concurrency", "concurrency", CT_INT, cf_concurrency),
	F("controlPlaneBootstrap", NULL, CT_BOOL, cf_control_plane_bootstrap),
	F("log_as_json", NULL, CT_BOOL, cf_log_as_json),
	F("xdsReconnectInitialInterval", NULL, CT_DURATION,
	    cf_xds_reconnect_initial),
	F("xdsReconnectMaxInterval", NULL, CT_DURATION, cf_xds_reconnect_max),
	F("xdsKeepaliveInterval", NULL, CT_DURATION, cf_xds_keepalive_interval),
	F("xdsKeepaliveTimeout", NULL, CT_DURATION, cf_xds_keepalive_timeout),
	F("xdsMaxReceiveMessageSize", NULL, CT_INT, cf_xds_max_recv_size),
	F("xdsEndStreamOnUpstreamFailure", NULL, CT_BOOL,
	    cf_xds_end_on_upstream_failure),
	{ NULL, NULL, CT_STRING, 0, NULL }
};

/*
 * Flags of Istio's pilot-agent that this agent accepts and has no use for;
 * they are ignored without a warning. Booleans among them take no value.
 */
static const char *const config_ignored[] = {
	"log_caller", "log_stacktrace_level", "log_target", "log_rotate",
	"log_rotate_max_age", "log_rotate_max_size", "log_rotate_max_backups",
	"outlierLogPath", "stsPort", "tokenManagerPlugin", "templateFile",
	"vklog", NULL
};
static const char *const config_ignored_bools[] = {
	"disableInternalTelemetry", "skipParseTokenEnv", NULL
};

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
}

const char *
config_role_name(enum config_role role)
{
	return role == ROLE_ROUTER ? "router" : "sidecar";
}

/* Go's strconv.ParseBool. */
int
parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "1", "t", "T", "TRUE", "true",
	    "True", NULL };
	static const char *const no[] = { "0", "f", "F", "FALSE", "false",
	    "False", NULL };

	if (config_in(s, yes))
		*out = 1;
	else if (config_in(s, no))
		*out = 0;
	else
		return -1;
	return 0;
}

static int
parse_int(const char *s, long min, long max, long *out)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		return -1;
	*out = v;
	return 0;
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
 * Sets one field from its text value. "what" names the source for the
 * message ("flag", "field", "variable") in pflag's words.
 */
int
config_set(struct config *cf, const struct config_flag *cg, const char *value,
    const char *what, char *err, size_t errlen)
{
	char	*base = (char *)cf + cg->cg_offset;
	char	 why[160] = "";
	long	 n;
	int64_t	 d;
	int	 b;

	switch (cg->cg_type) {
	case CT_STRING:
		if (cg->cg_check != NULL &&
		    cg->cg_check(value, why, sizeof(why)) == -1)
			break;
		free(*(char **)base);
		*(char **)base = xstrdup(value);
		return 0;
	case CT_DURATION:
		if (duration_parse(value, &d, why, sizeof(why)) == -1)
			break;
		if (d < 0) {
			snprintf(why, sizeof(why), "negative duration");
			break;
		}
		if (cg->cg_check != NULL &&
		    cg->cg_check(&d, why, sizeof(why)) == -1)
			break;
		*(int64_t *)base = d;
		return 0;
	case CT_PORT:
		if (parse_int(value, 1, 65535, &n) == -1) {
			snprintf(why, sizeof(why), "not a port (1-65535)");
			break;
		}
		*(int *)base = (int)n;
		return 0;
	case CT_INT:
		if (parse_int(value, 0, INT_MAX, &n) == -1) {
			snprintf(why, sizeof(why), "not a whole number >= 0");
			break;
		}
		*(int *)base = (int)n;
		return 0;
	case CT_BOOL:
		if (parse_bool(value, &b) == -1) {
			snprintf(why, sizeof(why), "not a boolean");
			break;
		}
		*(int *)base = b;
		return 0;
	}
	snprintf(err, errlen, "invalid argument \"%s\" for \"%s%s\" %s: %s",
	    value, strcmp(what, "flag") == 0 ? "--" : "", cg->cg_name, what,
	    why);
	return -1;
}

static const struct config_flag *
config_find(const char *name, size_t len)
{
	const struct config_flag *cg;

	for (cg = config_flags; cg->cg_name != NULL; cg++) {
		if (strlen(cg->cg_name) == len &&
		    strncmp(cg->cg_name, name, len) == 0)
			return cg;
	}
	return NULL;
}

/* Environment variables of DESIGN §3 that are not identity. */
static int
config_environment(struct config *cf, char *err, size_t errlen)
{
	static const struct {
		const char		*name;
		struct config_flag	 cg;
	} vars[] = {
		{ "EXIT_ON_ZERO_ACTIVE_CONNECTIONS", F("EXIT_ON_ZERO_ACTIVE_"
		    "CONNECTIONS", NULL, CT_BOOL, cf_exit_on_zero_active) },
		{ "MINIMUM_DRAIN_DURATION", F("MINIMUM_DRAIN_DURATION", NULL,
		    CT_DURATION, cf_minimum_drain_duration) },
		{ "ENVOY_STATUS_PORT", F("ENVOY_STATUS_PORT", NULL, CT_PORT,
		    cf_envoy_status_port) },
		{ "ENVOY_PROMETHEUS_PORT", F("ENVOY_PROMETHEUS_PORT", NULL,
		    CT_PORT, cf_prometheus_port) },
		{ "ISTIOD_SAN", F("ISTIOD_SAN", NULL, CT_STRING,
		    cf_istiod_san) },
		{ "XDS_ROOT_CA", F("XDS_ROOT_CA", NULL, CT_STRING,
		    cf_xds_root_ca) },
	};
	const char	*v;
	size_t		 i;

	for (i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		if ((v = getenv(vars[i].name)) == NULL || *v == '\0')
			continue;
		if (config_set(cf, &vars[i].cg, v, "variable", err,
		    errlen) == -1)
			return -1;
	}
	return 0;
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

/*
 * Parses "proxy" arguments (argv[0] is the subcommand). Returns -1 with the
 * message in err on a usage error, before anything is forked or written.
 */
int
config_parse(struct config *cf, int argc, char **argv, char *err,
    size_t errlen)
{
	struct flagval {
		const struct config_flag	*fv_flag;
		const char			*fv_value;
	}		*vals;
	int		 i, nvals = 0, npos = 0, rc = -1;
	const char	*arg, *name, *eq, *value;
	size_t		 len;
	char		 lname[64];

	config_defaults(cf);
	vals = xcalloc((size_t)argc, sizeof(*vals));
	for (i = 1; i < argc; i++) {
		const struct config_flag *cg;

		arg = argv[i];
		if (arg[0] != '-' || arg[1] == '\0') {
			if (npos++ > 0) {
				snprintf(err, errlen, "unexpected argument "
				    "\"%s\"", arg);
				goto out;
			}
			if (strcmp(arg, "sidecar") == 0)
				cf->cf_role = ROLE_SIDECAR;
			else if (strcmp(arg, "router") == 0)
				cf->cf_role = ROLE_ROUTER;
			else {
				snprintf(err, errlen, "invalid proxy type "
				    "\"%s\": expected sidecar or router", arg);
				goto out;
			}
			continue;
		}
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			cf->cf_help = 1;
			rc = 0;
			goto out;
		}
		name = arg + (arg[1] == '-' ? 2 : 1);
		eq = strchr(name, '=');
		len = eq != NULL ? (size_t)(eq - name) : strlen(name);
		snprintf(lname, sizeof(lname), "%.*s", (int)len, name);
		if ((cg = config_find(name, len)) == NULL) {
			if (config_in(lname, config_ignored_bools))
				continue;
			if (config_in(lname, config_ignored)) {
				if (eq == NULL && i + 1 < argc)
					i++;
				continue;
			}
			/*
			 * An unknown flag's value cannot be told from a
			 * positional argument; like a string flag, it takes
			 * the next word unless that word is a flag or the
			 * role still to come.
			 */
			log_warnx("unknown flag \"%s\" ignored", arg);
			if (eq == NULL && i + 1 < argc &&
			    argv[i + 1][0] != '-' && !(npos == 0 &&
			    (strcmp(argv[i + 1], "sidecar") == 0 ||
			    strcmp(argv[i + 1], "router") == 0)))
				i++;
			continue;
		}
		if (eq != NULL)
			value = eq + 1;
		else if (cg->cg_type == CT_BOOL)
			value = "true";
		else if (i + 1 < argc)
			value = argv[++i];
		else {
			snprintf(err, errlen, "flag needs an argument: --%s",
			    lname);
			goto out;
		}
		vals[nvals].fv_flag = cg;
		vals[nvals].fv_value = value;
		nvals++;
	}
	if (config_environment(cf, err, errlen) == -1)
		goto out;
	/*
	 * The ProxyConfig layers (mesh config, PROXY_CONFIG); the mesh config
	 * file is named by a flag, so that one flag is applied first.
	 */
	for (i = 0; i < nvals; i++) {
		if (vals[i].fv_flag->cg_offset ==
		    offsetof(struct config, cf_mesh_config) &&
		    config_set(cf, vals[i].fv_flag, vals[i].fv_value, "flag",
		    err, errlen) == -1)
			goto out;
	}
	if (proxyconfig_apply(cf, err, errlen) == -1)
		goto out;
	for (i = 0; i < nvals; i++) {
		if (config_set(cf, vals[i].fv_flag, vals[i].fv_value, "flag",
		    err, errlen) == -1)
			goto out;
	}
	if (config_validate(cf, err, errlen) == -1)
		goto out;
	if (config_identity(cf, err, errlen) == -1)
		goto out;
	cf->cf_argc = argc;
	cf->cf_argv = argv;
	rc = 0;
out:
	free(vals);
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

static int
config_flag_cmp(const void *a, const void *b)
{
	const struct config_flag *const *x = a, *const *y = b;

	return strcasecmp((*x)->cg_name, (*y)->cg_name);
}

/*
 * The flags of "proxy" and "bootstrap" with their defaults, from the same
 * table the parser uses, so that the two cannot drift apart.
 */
void
config_usage(FILE *f, const char *cmd, const char *extra)
{
	static const char *const types[] = {
		[CT_STRING] = "string", [CT_DURATION] = "duration",
		[CT_PORT] = "port", [CT_INT] = "int", [CT_BOOL] = "bool"
	};
	const struct config_flag	**sorted, *cg;
	struct config			  cf;
	char				  dflt[256], name[64];
	size_t				  n = 0, i;
	const char			 *const *ig;

	config_defaults(&cf);
	for (cg = config_flags; cg->cg_name != NULL; cg++)
		n++;
	sorted = xcalloc(n, sizeof(*sorted));
	for (i = 0; i < n; i++)
		sorted[i] = &config_flags[i];
	qsort(sorted, n, sizeof(*sorted), config_flag_cmp);
	fprintf(f, "usage: pilot-agent %s%s [flags]\n\nflags:\n", cmd,
	    strcmp(cmd, "proxy") == 0 ? " [sidecar|router]" : "");
	for (i = 0; i < n; i++) {
		const char *base = (const char *)&cf + sorted[i]->cg_offset;

		cg = sorted[i];
		switch (cg->cg_type) {
		case CT_STRING:
			snprintf(dflt, sizeof(dflt), "\"%s\"",
			    *(char *const *)base != NULL ?
			    *(char *const *)base : "");
			break;
		case CT_DURATION:
			duration_format(*(const int64_t *)base, dflt,
			    sizeof(dflt));
			break;
		case CT_BOOL:
			snprintf(dflt, sizeof(dflt), "%s",
			    *(const int *)base ? "true" : "false");
			break;
		case CT_PORT:
		case CT_INT:
			snprintf(dflt, sizeof(dflt), "%d", *(const int *)base);
			break;
		}
		snprintf(name, sizeof(name), "--%s %s", cg->cg_name,
		    types[cg->cg_type]);
		fprintf(f, "  %-38s (default %s)\n", name, dflt);
	}
	if (extra != NULL)
		fputs(extra, f);
	fprintf(f, "  %-38s print this help\n", "-h, --help");
	fprintf(f, "\naccepted and ignored, as Istio's:");
	for (ig = config_ignored; *ig != NULL; ig++)
		fprintf(f, " --%s", *ig);
	for (ig = config_ignored_bools; *ig != NULL; ig++)
		fprintf(f, " --%s", *ig);
	fprintf(f, "\n\nSee pilot-agent(8) for what each flag does.\n");
	free(sorted);
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
	json_decref(cf->cf_proxy_config);
	memset(cf, 0, sizeof(*cf));
}
