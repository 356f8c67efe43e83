/*
 * envoy-emu: a stand-in for Envoy in tests. This file reads the command line
 * the way Envoy's TCLAP parser does (both "--flag value" and "--flag=value"),
 * loads and checks the bootstrap (-c, JSON), and brings the server up in
 * Envoy's order: hot restart sockets, the parent's admin shut down, listen
 * sockets taken over or bound, admin bound, initialization, main loop. At
 * the end it frees everything, so that AddressSanitizer's leak check stays
 * quiet.
 *
 * Exit codes, as Envoy's: 0 after SIGTERM/SIGINT, /quitquitquit or a hot
 * restart child's request; 1 for a bad command line, a bad bootstrap or a
 * failed start.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent.h"
#include "emu.h"

#define MAIN_DEFAULT_LOG_FORMAT	"[%Y-%m-%d %T.%e][%t][%l][%n] %v"

enum main_flag_id {
	F_CONFIG, F_EPOCH, F_DRAIN_TIME, F_PARENT_SHUTDOWN, F_CLUSTER, F_NODE,
	F_IP_VERSION, F_FLUSH, F_LOG_FORMAT, F_LOG_LEVEL, F_COMPONENT_LEVEL,
	F_CONCURRENCY, F_DRAIN_STRATEGY, F_BASE_ID, F_SOCKET_PATH,
	F_DISABLE_HR, F_ALLOW_UNKNOWN, F_SKIP_NO_PARENT, F_VERSION,
	F_HR_VERSION, F_HELP
};

static const struct main_flag {
	const char		*f_long;
	const char		*f_short;
	int			 f_value;	/* takes a value */
	enum main_flag_id	 f_id;
	const char		*f_usage;
} main_flags[] = {
	{ "--config-path", "-c", 1, F_CONFIG, "<string>" },
	{ "--restart-epoch", NULL, 1, F_EPOCH, "<uint32_t>" },
	{ "--drain-time-s", NULL, 1, F_DRAIN_TIME, "<uint32_t>" },
	{ "--parent-shutdown-time-s", NULL, 1, F_PARENT_SHUTDOWN,
	  "<uint32_t>" },
	{ "--service-cluster", NULL, 1, F_CLUSTER, "<string>" },
	{ "--service-node", NULL, 1, F_NODE, "<string>" },
	{ "--local-address-ip-version", NULL, 1, F_IP_VERSION, "<string>" },
	{ "--file-flush-interval-msec", NULL, 1, F_FLUSH, "<uint32_t>" },
	{ "--log-format", NULL, 1, F_LOG_FORMAT, "<string>" },
	{ "--log-level", "-l", 1, F_LOG_LEVEL, "<string>" },
	{ "--component-log-level", NULL, 1, F_COMPONENT_LEVEL, "<string>" },
	{ "--concurrency", NULL, 1, F_CONCURRENCY, "<uint32_t>" },
	{ "--drain-strategy", NULL, 1, F_DRAIN_STRATEGY, "<string>" },
	{ "--base-id", NULL, 1, F_BASE_ID, "<uint32_t>" },
	{ "--socket-path", NULL, 1, F_SOCKET_PATH, "<string>" },
	{ "--disable-hot-restart", NULL, 0, F_DISABLE_HR, NULL },
	{ "--allow-unknown-static-fields", NULL, 0, F_ALLOW_UNKNOWN, NULL },
	{ "--skip-hot-restart-on-no-parent", NULL, 0, F_SKIP_NO_PARENT, NULL },
	{ "--version", NULL, 0, F_VERSION, NULL },
	{ "--hot-restart-version", NULL, 0, F_HR_VERSION, NULL },
	{ "--help", "-h", 0, F_HELP, NULL },
};
#define MAIN_NFLAGS	(sizeof(main_flags) / sizeof(main_flags[0]))

/* The bootstrap's top-level fields (envoy.config.bootstrap.v3.Bootstrap). */
static const char *const main_bootstrap_fields[] = {
	"node", "node_context_params", "static_resources", "dynamic_resources",
	"cluster_manager", "hds_config", "flags_path", "stats_sinks",
	"deferred_stat_options", "stats_config", "stats_flush_interval",
	"stats_flush_on_admin", "watchdog", "watchdogs", "tracing", "runtime",
	"layered_runtime", "admin", "overload_manager",
	"enable_dispatcher_stats", "header_prefix",
	"stats_server_version_override", "use_tcp_for_dns_lookups",
	"dns_resolution_config", "typed_dns_resolver_config",
	"bootstrap_extensions", "fatal_actions", "config_sources",
	"default_config_source", "default_socket_interface",
	"certificate_provider_instances", "inline_headers",
	"perf_tracing_file_path", "default_regex_engine",
	"xds_delegate_extension", "xds_config_tracker_extension",
	"listener_manager", "application_log_config",
	"grpc_async_client_manager_config", "memory_allocator_manager",
};

static void
main_brief_usage(const char *prog)
{
	size_t	i;

	fprintf(stderr, "\nBrief USAGE: \n   %s  ", prog);
	for (i = 0; i < MAIN_NFLAGS; i++) {
		if (main_flags[i].f_value)
			fprintf(stderr, "[%s %s] ", main_flags[i].f_long,
			    main_flags[i].f_usage);
		else
			fprintf(stderr, "[%s] ", main_flags[i].f_long);
	}
	fprintf(stderr, "\n\nFor complete USAGE and HELP type: \n   %s --help"
	    "\n\n", prog);
}

/* TCLAP's report of a bad argument; the caller exits 1. */
static int
main_parse_error(const char *prog, const char *arg, const char *why)
{
	fprintf(stderr, "PARSE ERROR: Argument: %s\n             %s\n", arg,
	    why);
	main_brief_usage(prog);
	return -1;
}

static int
main_uint32(const char *prog, const struct main_flag *f, const char *v,
    uint32_t *out)
{
	char			*end, arg[128], why[256];
	unsigned long long	 n;

	errno = 0;
	n = strtoull(v, &end, 10);
	if (*v == '\0' || *v == '-' || *v == '+' || *end != '\0' ||
	    errno != 0 || n > UINT32_MAX) {
		if (f->f_short != NULL)
			snprintf(arg, sizeof(arg), "%s (%s)", f->f_short,
			    f->f_long);
		else
			snprintf(arg, sizeof(arg), "(%s)", f->f_long);
		snprintf(why, sizeof(why), "Couldn't read argument value from "
		    "string '%s'", v);
		return main_parse_error(prog, arg, why);
	}
	*out = (uint32_t)n;
	return 0;
}

static void
main_set(char **field, const char *v)
{
	free(*field);
	*field = xstrdup(v);
}

/*
 * Fills o from argv. Returns 0 to run, 1 when a flag such as --version was
 * served (exit 0), -1 on an error already printed (exit 1).
 */
static int
main_options(int argc, char **argv, struct emu_options *o)
{
	const struct main_flag	*f;
	const char		*prog = argv[0], *v;
	char			 name[128], err[256];
	size_t			 i, nlen;
	uint32_t		 n;
	int			 a;
	long			 cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(o, 0, sizeof(*o));
	o->o_drain_time_s = 600;
	o->o_parent_shutdown_time_s = 900;
	o->o_file_flush_ms = 10000;
	o->o_log_level = ELOG_INFO;
	o->o_concurrency = cpus > 0 ? (uint32_t)cpus : 1;
	o->o_config_path = xstrdup("");
	o->o_service_cluster = xstrdup("");
	o->o_service_node = xstrdup("");
	o->o_log_format = xstrdup(MAIN_DEFAULT_LOG_FORMAT);
	o->o_component_log_level = xstrdup("");
	o->o_socket_path = xstrdup("@envoy_domain_socket");

	for (a = 1; a < argc; a++) {
		const char	*arg = argv[a], *eq = strchr(arg, '=');

		nlen = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		if (nlen >= sizeof(name))
			nlen = sizeof(name) - 1;
		memcpy(name, arg, nlen);
		name[nlen] = '\0';
		f = NULL;
		for (i = 0; i < MAIN_NFLAGS; i++) {
			if (strcmp(name, main_flags[i].f_long) == 0 ||
			    (main_flags[i].f_short != NULL &&
			    strcmp(name, main_flags[i].f_short) == 0)) {
				f = &main_flags[i];
				break;
			}
		}
		if (f == NULL || (!f->f_value && eq != NULL))
			return main_parse_error(prog, arg,
			    "Couldn't find match for argument");
		v = NULL;
		if (f->f_value) {
			if (eq != NULL)
				v = eq + 1;
			else if (a + 1 < argc)
				v = argv[++a];
			else
				return main_parse_error(prog, f->f_long,
				    "Missing a value for this argument!");
		}
		switch (f->f_id) {
		case F_CONFIG:
			main_set(&o->o_config_path, v);
			break;
		case F_EPOCH:
			if (main_uint32(prog, f, v, &o->o_restart_epoch) == -1)
				return -1;
			break;
		case F_DRAIN_TIME:
			if (main_uint32(prog, f, v, &n) == -1)
				return -1;
			o->o_drain_time_s = n;
			break;
		case F_PARENT_SHUTDOWN:
			if (main_uint32(prog, f, v, &n) == -1)
				return -1;
			o->o_parent_shutdown_time_s = n;
			break;
		case F_CLUSTER:
			main_set(&o->o_service_cluster, v);
			break;
		case F_NODE:
			main_set(&o->o_service_node, v);
			break;
		case F_IP_VERSION:
			if (strcmp(v, "v4") != 0 && strcmp(v, "v6") != 0) {
				fprintf(stderr, "error: unknown IP address "
				    "version '%s'\n", v);
				return -1;
			}
			o->o_ipv6 = strcmp(v, "v6") == 0;
			break;
		case F_FLUSH:
			if (main_uint32(prog, f, v, &n) == -1)
				return -1;
			o->o_file_flush_ms = n;
			break;
		case F_LOG_FORMAT:
			main_set(&o->o_log_format, v);
			break;
		case F_LOG_LEVEL:
			if (elog_parse_level(v, &o->o_log_level) == -1) {
				fprintf(stderr, "error: invalid log level "
				    "specified '%s'\n", v);
				return -1;
			}
			break;
		case F_COMPONENT_LEVEL:
			if (elog_set_components(v, err, sizeof(err)) == -1) {
				fprintf(stderr, "%s\n", err);
				return -1;
			}
			main_set(&o->o_component_log_level, v);
			break;
		case F_CONCURRENCY:
			if (main_uint32(prog, f, v, &o->o_concurrency) == -1)
				return -1;
			break;
		case F_DRAIN_STRATEGY:
			if (strcmp(v, "immediate") == 0)
				o->o_drain_immediate = 1;
			else if (strcmp(v, "gradual") == 0)
				o->o_drain_immediate = 0;
			else {
				fprintf(stderr, "error: unknown drain-strategy "
				    "'%s'\n", v);
				return -1;
			}
			break;
		case F_BASE_ID:
			if (main_uint32(prog, f, v, &o->o_base_id) == -1)
				return -1;
			break;
		case F_SOCKET_PATH:
			if (*v == '\0') {
				fprintf(stderr, "error: --socket-path must not "
				    "be empty\n");
				return -1;
			}
			main_set(&o->o_socket_path, v);
			break;
		case F_DISABLE_HR:
			o->o_disable_hot_restart = 1;
			break;
		case F_ALLOW_UNKNOWN:
			o->o_allow_unknown_static = 1;
			break;
		case F_SKIP_NO_PARENT:
			o->o_skip_hr_no_parent = 1;
			break;
		case F_VERSION:
			printf("\n%s  version: %s\n\n", prog, EMU_VERSION);
			return 1;
		case F_HR_VERSION:
			printf("%s\n", EMU_HOT_RESTART_VERSION);
			return 1;
		case F_HELP:
			printf("USAGE: \n\n   %s  ", prog);
			for (i = 0; i < MAIN_NFLAGS; i++)
				printf("[%s%s%s] ", main_flags[i].f_long,
				    main_flags[i].f_value ? " " : "",
				    main_flags[i].f_value ?
				    main_flags[i].f_usage : "");
			printf("\n\n(envoy-emu: the Envoy stand-in of "
			    "pilot-agent's tests)\n");
			return 1;
		}
	}
	return 0;
}

static void
main_options_free(struct emu_options *o)
{
	free(o->o_config_path);
	free(o->o_service_cluster);
	free(o->o_service_node);
	free(o->o_log_format);
	free(o->o_component_log_level);
	free(o->o_socket_path);
}

static int
main_known_field(const char *key)
{
	size_t	i, j, k;
	char	snake[128];

	for (i = 0; i < sizeof(main_bootstrap_fields) /
	    sizeof(main_bootstrap_fields[0]); i++) {
		if (strcmp(key, main_bootstrap_fields[i]) == 0)
			return 1;
	}
	/* Protobuf's JSON mapping accepts lowerCamelCase names too. */
	for (j = 0, k = 0; key[j] != '\0' && k + 2 < sizeof(snake); j++) {
		if (key[j] >= 'A' && key[j] <= 'Z') {
			snake[k++] = '_';
			snake[k++] = (char)(key[j] - 'A' + 'a');
		} else
			snake[k++] = key[j];
	}
	snake[k] = '\0';
	if (strcmp(snake, key) == 0)
		return 0;
	return main_known_field(snake);
}

/*
 * Loads the bootstrap into e; -1 with the reason in err (the caller logs
 * "error initializing configuration").
 */
static int
main_config(struct emu *e, char *err, size_t errlen)
{
	const struct emu_options	*o = e->e_opt;
	json_error_t			 jerr;
	json_t				*node, *sa, *dyn, *v;
	const char			*key, *id, *cluster;

	if (*o->o_config_path == '\0') {
		snprintf(err, errlen, "At least one of --config-path or "
		    "--config-yaml or Options::configProto() should be "
		    "non-empty");
		return -1;
	}
	if (access(o->o_config_path, R_OK) == -1) {
		snprintf(err, errlen, "Invalid path: %s", o->o_config_path);
		return -1;
	}
	if ((e->e_config = json_load_file(o->o_config_path,
	    JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		snprintf(err, errlen, "Unable to parse JSON as proto "
		    "(INVALID_ARGUMENT:%s at line %d column %d): %s", jerr.text,
		    jerr.line, jerr.column, o->o_config_path);
		return -1;
	}
	if (!json_is_object(e->e_config)) {
		snprintf(err, errlen, "Unable to parse JSON as proto "
		    "(INVALID_ARGUMENT:expected a JSON object): %s",
		    o->o_config_path);
		return -1;
	}
	json_object_foreach(e->e_config, key, v) {
		if (main_known_field(key))
			continue;
		if (!o->o_allow_unknown_static) {
			snprintf(err, errlen, "Unable to parse JSON as proto "
			    "(INVALID_ARGUMENT:%s: Cannot find field.): %s",
			    key, o->o_config_path);
			return -1;
		}
		elog_warn("misc", "Unknown field \"%s\" in the bootstrap "
		    "(ignored: --allow-unknown-static-fields)", key);
	}

	node = json_object_get(e->e_config, "node");
	id = *o->o_service_node != '\0' ? o->o_service_node :
	    json_string_value(json_object_get(node, "id"));
	if (id == NULL || *id == '\0') {
		snprintf(err, errlen, "node 'id' is required. Set it either in "
		    "'node' config or via --service-node");
		return -1;
	}
	cluster = *o->o_service_cluster != '\0' ? o->o_service_cluster :
	    json_string_value(json_object_get(node, "cluster"));
	e->e_node_id = xstrdup(id);
	e->e_node = json_is_object(node) ? json_deep_copy(node) : json_object();
	json_object_set_new(e->e_node, "id", json_string(id));
	if (cluster != NULL)
		json_object_set_new(e->e_node, "cluster", json_string(cluster));
	json_object_set_new(e->e_node, "user_agent_name", json_string("envoy"));
	json_object_set_new(e->e_node, "user_agent_build_version", json_pack(
	    "{s:{s:i, s:i, s:i}, s:{s:s, s:s, s:s}}", "version", "major_number",
	    1, "minor_number", 30, "patch", 1, "metadata", "build.type",
	    "RELEASE", "revision.status", "Clean", "ssl.version", "BoringSSL"));

	sa = json_object_get(json_object_get(json_object_get(e->e_config,
	    "admin"), "address"), "socket_address");
	if (!json_is_string(json_object_get(sa, "address")) ||
	    !json_is_integer(json_object_get(sa, "port_value")) ||
	    json_integer_value(json_object_get(sa, "port_value")) < 0 ||
	    json_integer_value(json_object_get(sa, "port_value")) > 65535) {
		snprintf(err, errlen, "admin.address.socket_address (address "
		    "and port_value) is required: envoy-emu serves its admin "
		    "API there");
		return -1;
	}
	dyn = json_object_get(e->e_config, "dynamic_resources");
	e->e_ads = json_is_object(dyn) && json_object_size(dyn) > 0;
	return 0;
}

static void
main_critical_config(const struct emu *e, const char *err)
{
	elog_critical("main", "error initializing configuration '%s': %s",
	    e->e_opt->o_config_path, err);
}

/* Takes over the parent's listen sockets or binds them (step (b)). */
static int
main_listeners(struct emu *e, char *err, size_t errlen)
{
	struct emu_listener	*l;
	size_t			 i;
	int			 fd;

	for (i = 0; i < listener_count(); i++) {
		l = listener_at(i);
		fd = hotrestart_parent_listen_socket(listener_key(l));
		if (fd != -1) {
			if (listener_adopt(l, fd) == -1) {
				snprintf(err, errlen, "cannot listen on the "
				    "socket of '%s' passed by the parent",
				    listener_key(l));
				return -1;
			}
			continue;
		}
		if (listener_bind(l, err, errlen) == -1)
			return -1;
	}
	(void)e;
	return 0;
}

int
main(int argc, char **argv)
{
	struct emu_options	 opt;
	struct emu		 e;
	char			 err[512];
	int			 rc, code = 1;

	signal(SIGPIPE, SIG_IGN);
	memset(&e, 0, sizeof(e));
	e.e_opt = &opt;
	if ((rc = main_options(argc, argv, &opt)) != 0) {
		code = rc == 1 ? 0 : 1;
		goto out_options;
	}
	elog_init(opt.o_log_format, opt.o_log_level);
	if (fault_init(opt.o_restart_epoch, err, sizeof(err)) == -1) {
		fprintf(stderr, "envoy-emu: %s\n", err);
		goto out_options;
	}
	e.e_start = e.e_original_start = time(NULL);
	elog_info("main", "initializing epoch %u (base id=%u, hot restart "
	    "version=%s)", opt.o_restart_epoch, opt.o_base_id,
	    opt.o_disable_hot_restart ? "disabled" : EMU_HOT_RESTART_VERSION);
	if (main_config(&e, err, sizeof(err)) == -1) {
		main_critical_config(&e, err);
		goto out_config;
	}
	if ((e.e_base = event_base_new()) == NULL) {
		elog_critical("main", "event_base_new failed");
		goto out_config;
	}
	emu_init(&e);
	/* Clusters first: the listeners' routes refer to them. */
	if (cluster_configure(&e, err, sizeof(err)) == -1 ||
	    listener_configure(&e, err, sizeof(err)) == -1) {
		main_critical_config(&e, err);
		goto out;
	}
	/*
	 * Hot restart failures are exceptions that Envoy's main prints
	 * as they stand on standard error.
	 */
	if (hotrestart_init(&e, err, sizeof(err)) == -1 ||
	    hotrestart_shutdown_parent_admin(err, sizeof(err)) == -1) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	if (main_listeners(&e, err, sizeof(err)) == -1 ||
	    adminapi_start(&e, err, sizeof(err)) == -1) {
		main_critical_config(&e, err);
		goto out;
	}
	emu_start();
	fault_start(e.e_base);
	event_base_dispatch(e.e_base);
	elog_info("main", "main dispatch loop exited");
	code = e.e_exit_code;
out:
	fault_free();
	hotrestart_close();
	adminapi_close();
	listener_free();	/* cancels the requests in flight upstream */
	upstream_shutdown();
	cluster_free();
	emu_free();
	event_base_free(e.e_base);
	libevent_global_shutdown();
	if (code == 0)
		elog_info("main", "exiting");
out_config:
	stats_free();
	json_decref(e.e_config);
	json_decref(e.e_node);
	free(e.e_node_id);
out_options:
	main_options_free(&opt);
	elog_free();
	return code;
}
