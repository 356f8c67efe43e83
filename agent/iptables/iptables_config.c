/*
 * The command line and environment of istio-iptables and
 * istio-clean-iptables, as Istio spells them: short flags (-p 15001), long
 * flags (--envoy-port 15001 or --envoy-port=15001) and, for every setting
 * no flag gives, Istio's environment variables. Everything is validated
 * here, before a single rule is written, so that bad input applies nothing.
 *
 * ipt_config_parse is pure: it reads the environment only through the
 * function it is given and resolves no user names, which lets the fuzzer
 * drive it. ipt_setup, shared by both subcommands, adds what a real run
 * needs: the process environment, ENVOY_USER's uid, the log settings.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iptables.h"

/* Every setting, each fed by at most one flag and a few variables. */
enum ipt_key {
	K_PROXY_PORT,
	K_INBOUND_PORT,
	K_UID,
	K_GID,
	K_MODE,
	K_INBOUND_PORTS,
	K_INBOUND_EXCLUDE,
	K_INCLUDE_CIDR,
	K_EXCLUDE_CIDR,
	K_OUTBOUND_PORTS,
	K_OUTBOUND_EXCLUDE,
	K_VIRT_IFACES,
	K_MARK,
	K_ROUTE_TABLE,
	K_DRY_RUN,
	K_DUAL_STACK,
	K_RESTORE_FORMAT,
	K_LOG_LEVEL,
	K_LOG_JSON,
	K_HELP,
	K_COUNT
};

struct ipt_flag {
	enum ipt_key	 fl_key;
	char		 fl_short;	/* '\0': long names only */
	const char	*fl_long[2];	/* Istio's old and new long names */
	const char	*fl_env[2];	/* variables read when no flag is given */
	int		 fl_bool;
};

static const struct ipt_flag ipt_flags[] = {
	{ K_PROXY_PORT, 'p', { "envoy-port", NULL },
	    { "ENVOY_PORT", NULL }, 0 },
	{ K_INBOUND_PORT, 'z', { "inbound-capture-port", NULL },
	    { "INBOUND_CAPTURE_PORT", NULL }, 0 },
	{ K_UID, 'u', { "proxy-uid", NULL }, { "PROXY_UID", NULL }, 0 },
	{ K_GID, 'g', { "proxy-gid", NULL }, { "PROXY_GID", NULL }, 0 },
	{ K_MODE, 'm', { "istio-inbound-interception-mode", NULL },
	    { "ISTIO_INBOUND_INTERCEPTION_MODE", NULL }, 0 },
	{ K_INBOUND_PORTS, 'b', { "istio-inbound-ports", NULL },
	    { "ISTIO_INBOUND_PORTS", NULL }, 0 },
	{ K_INBOUND_EXCLUDE, 'd', { "istio-local-exclude-ports", NULL },
	    { "ISTIO_LOCAL_EXCLUDE_PORTS", NULL }, 0 },
	{ K_INCLUDE_CIDR, 'i', { "istio-service-cidr", NULL },
	    { "ISTIO_SERVICE_CIDR", NULL }, 0 },
	{ K_EXCLUDE_CIDR, 'x', { "istio-service-exclude-cidr", NULL },
	    { "ISTIO_SERVICE_EXCLUDE_CIDR", NULL }, 0 },
	{ K_OUTBOUND_PORTS, 'q', { "outbound-ports", NULL },
	    { "ISTIO_OUTBOUND_PORTS", "OUTBOUND_PORTS" }, 0 },
	{ K_OUTBOUND_EXCLUDE, 'o', { "istio-local-outbound-ports-exclude", NULL },
	    { "ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE", NULL }, 0 },
	{ K_VIRT_IFACES, 'k', { "kube-virt-interfaces", NULL },
	    { "KUBE_VIRT_INTERFACES", NULL }, 0 },
	{ K_MARK, 't', { "istio-inbound-tproxy-mark", "inbound-tproxy-mark" },
	    { "ISTIO_INBOUND_TPROXY_MARK", "INBOUND_TPROXY_MARK" }, 0 },
	{ K_ROUTE_TABLE, 'r',
	    { "istio-inbound-tproxy-route-table", "inbound-tproxy-route-table" },
	    { "ISTIO_INBOUND_TPROXY_ROUTE_TABLE", "INBOUND_TPROXY_ROUTE_TABLE" },
	    0 },
	{ K_DRY_RUN, 'n', { "dry-run", NULL }, { "DRY_RUN", NULL }, 1 },
	{ K_DUAL_STACK, '\0', { "dual-stack", NULL },
	    { "ISTIO_AGENT_DUAL_STACK", NULL }, 1 },
	{ K_RESTORE_FORMAT, 'f', { "restore-format", NULL }, { NULL, NULL }, 1 },
	{ K_LOG_LEVEL, '\0', { "log_output_level", NULL }, { NULL, NULL }, 0 },
	{ K_LOG_JSON, '\0', { "log_as_json", NULL }, { NULL, NULL }, 1 },
	{ K_HELP, 'h', { "help", NULL }, { NULL, NULL }, 1 },
};
#define IPT_NFLAGS	(sizeof(ipt_flags) / sizeof(ipt_flags[0]))

/* Where a raw value came from, for error messages that name it. */
struct ipt_raw {
	const char	*rw_value;
	char		 rw_origin[80];
};

static int	config_error(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

static int
config_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static const struct ipt_flag *
config_find_short(char c)
{
	size_t	i;

	for (i = 0; i < IPT_NFLAGS; i++)
		if (ipt_flags[i].fl_short == c)
			return &ipt_flags[i];
	return NULL;
}

static const struct ipt_flag *
config_find_long(const char *name, size_t len)
{
	size_t	i, j;

	for (i = 0; i < IPT_NFLAGS; i++) {
		for (j = 0; j < 2; j++) {
			const char *l = ipt_flags[i].fl_long[j];

			if (l != NULL && strlen(l) == len &&
			    strncmp(l, name, len) == 0)
				return &ipt_flags[i];
		}
	}
	return NULL;
}

static int
config_bool(const char *s, int *out)
{
	static const char *const yes[] = { "1", "t", "T", "true", "TRUE",
	    "True" };
	static const char *const no[] = { "0", "f", "F", "false", "FALSE",
	    "False" };
	size_t	i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* A decimal (or, with hex set, 0x-prefixed) number no larger than max. */
static int
config_number(const char *s, unsigned long long max, int hex,
    unsigned long long *out)
{
	unsigned long long	 v;
	char			*end;
	int			 base = 10;

	if (hex && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!isxdigit((unsigned char)s[0]) || (base == 10 && !isdigit(
	    (unsigned char)s[0])))
		return -1;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = v;
	return 0;
}

void
ipt_list_add(struct ipt_list *l, const char *item)
{
	l->il_items = xrealloc(l->il_items,
	    (l->il_len + 1) * sizeof(*l->il_items));
	l->il_items[l->il_len++] = xstrdup(item);
}

static void
ipt_list_clear(struct ipt_list *l)
{
	size_t	i;

	for (i = 0; i < l->il_len; i++)
		free(l->il_items[i]);
	free(l->il_items);
	memset(l, 0, sizeof(*l));
}

/*
 * Splits a comma separated list the way Istio does, ignoring empty items,
 * and also ignoring the blanks around each item that templates leave.
 * Calls check on each item; it appends the item's canonical text to its
 * list or fills err.
 */
typedef int (*ipt_item_fn)(struct ipt_config *, const char *, void *, char *,
    size_t);

static int
config_split(struct ipt_config *c, const char *value, ipt_item_fn check,
    void *arg, char *err, size_t errlen)
{
	char	*copy, *item, *save = NULL, *end;
	int	 rc = 0;

	copy = xstrdup(value);
	for (item = strtok_r(copy, ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*item))
			item++;
		end = item + strlen(item);
		while (end > item && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (*item == '\0')
			continue;
		if (check(c, item, arg, err, errlen) == -1) {
			rc = -1;
			break;
		}
	}
	free(copy);
	return rc;
}

static int
item_port(struct ipt_config *c, const char *item, void *arg, char *err,
    size_t errlen)
{
	unsigned long long	v;
	char			buf[24];

	(void)c;
	if (config_number(item, 65535, 0, &v) == -1 || v == 0)
		return config_error(err, errlen,
		    "\"%s\" is not a port (1-65535)", item);
	snprintf(buf, sizeof(buf), "%llu", v);
	ipt_list_add(arg, buf);
	return 0;
}

static int
item_id(struct ipt_config *c, const char *item, void *arg, char *err,
    size_t errlen)
{
	unsigned long long	v;
	char			buf[24];

	(void)c;
	if (config_number(item, 4294967294ULL, 0, &v) == -1)
		return config_error(err, errlen,
		    "\"%s\" is not a numeric id (0-4294967294)", item);
	snprintf(buf, sizeof(buf), "%llu", v);
	ipt_list_add(arg, buf);
	return 0;
}

/* Interface names as the kernel allows them, plus iptables' "+" suffix. */
static int
item_iface(struct ipt_config *c, const char *item, void *arg, char *err,
    size_t errlen)
{
	const char	*p;

	(void)c;
	if (strlen(item) > 15)
		return config_error(err, errlen,
		    "\"%s\" is not an interface name", item);
	for (p = item; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && strchr("_.-@+", *p) == NULL)
			return config_error(err, errlen,
			    "\"%s\" is not an interface name", item);
	}
	ipt_list_add(arg, item);
	return 0;
}

/*
 * A CIDR (a bare address counts as a single host), written back with its
 * host bits cleared as Go's net.IPNet prints it, into the list of its
 * family.
 */
static int
item_cidr(struct ipt_config *c, const char *item, void *arg, char *err,
    size_t errlen)
{
	struct ipt_list		**lists = arg;
	unsigned char		  addr[16];
	char			  text[INET6_ADDRSTRLEN + 8], buf[64];
	const char		 *slash;
	unsigned long long	  prefix;
	size_t			  alen, i;
	int			  family, max, bits;

	if (strcmp(item, "*") == 0)
		return config_error(err, errlen,
		    "\"*\" must be the whole list, not one of its items");
	slash = strchr(item, '/');
	alen = slash != NULL ? (size_t)(slash - item) : strlen(item);
	if (alen == 0 || alen >= sizeof(buf))
		return config_error(err, errlen, "\"%s\" is not a CIDR", item);
	memcpy(buf, item, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, addr) == 1) {
		family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, addr) == 1) {
		family = AF_INET6;
		max = 128;
	} else
		return config_error(err, errlen, "\"%s\" is not a CIDR", item);
	prefix = (unsigned long long)max;
	if (slash != NULL && config_number(slash + 1, (unsigned long long)max,
	    0, &prefix) == -1)
		return config_error(err, errlen,
		    "\"%s\" is not a CIDR: bad prefix length", item);
	if ((family == AF_INET && addr[0] == 127) || (family == AF_INET6 &&
	    memcmp(addr, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0))
		c->ic_include_loopback |= (lists[0] == &c->ic_include4);
	for (i = 0; i < (size_t)max / 8; i++) {
		bits = (int)prefix - (int)i * 8;
		if (bits <= 0)
			addr[i] = 0;
		else if (bits < 8)
			addr[i] &= (unsigned char)(0xff << (8 - bits));
	}
	inet_ntop(family, addr, text, sizeof(text));
	snprintf(buf, sizeof(buf), "%s/%llu", text, prefix);
	ipt_list_add(family == AF_INET ? lists[0] : lists[1], buf);
	return 0;
}

/* Parses a list which may instead be "*"; *all is set for "*". */
static int
config_list(struct ipt_config *c, const char *value, int wildcard, int *all,
    ipt_item_fn check, void *arg, char *err, size_t errlen)
{
	const char	*p = value;

	while (isspace((unsigned char)*p))
		p++;
	if (p[0] == '*' && p[1 + strspn(p + 1, " \t")] == '\0') {
		if (!wildcard)
			return config_error(err, errlen,
			    "\"*\" is not allowed here");
		*all = 1;
		return 0;
	}
	return config_split(c, value, check, arg, err, errlen);
}

/* Validates one setting into the configuration. */
static int
config_apply(struct ipt_config *c, enum ipt_key key, const char *v, char *err,
    size_t errlen)
{
	unsigned long long	 n;
	struct ipt_list		*lists[2];
	int			 b;

	/* An empty number keeps its default, as an empty list means none. */
	if (*v == '\0' && (key == K_PROXY_PORT || key == K_INBOUND_PORT ||
	    key == K_MARK || key == K_ROUTE_TABLE))
		return 0;
	switch (key) {
	case K_PROXY_PORT:
	case K_INBOUND_PORT:
		if (config_number(v, 65535, 0, &n) == -1 || n == 0)
			return config_error(err, errlen,
			    "\"%s\" is not a port (1-65535)", v);
		if (key == K_PROXY_PORT)
			c->ic_proxy_port = (unsigned)n;
		else
			c->ic_inbound_port = (unsigned)n;
		return 0;
	case K_UID:
		/* An empty list keeps Istio's default, as in Istio. */
		if (config_split(c, v, item_id, &c->ic_uids, err, errlen) == -1)
			return -1;
		c->ic_uid_default = c->ic_uids.il_len == 0;
		return 0;
	case K_GID:
		if (config_split(c, v, item_id, &c->ic_gids, err, errlen) == -1)
			return -1;
		c->ic_gid_default = c->ic_gids.il_len == 0;
		return 0;
	case K_MODE:
		if (*v == '\0' || strcasecmp(v, "REDIRECT") == 0)
			c->ic_mode = IPT_MODE_REDIRECT;
		else if (strcasecmp(v, "TPROXY") == 0)
			c->ic_mode = IPT_MODE_TPROXY;
		else
			return config_error(err, errlen,
			    "\"%s\" is not an interception mode (REDIRECT or "
			    "TPROXY)", v);
		return 0;
	case K_INBOUND_PORTS:
		return config_list(c, v, 1, &c->ic_inbound_all, item_port,
		    &c->ic_inbound_ports, err, errlen);
	case K_INBOUND_EXCLUDE:
		return config_split(c, v, item_port, &c->ic_inbound_exclude,
		    err, errlen);
	case K_INCLUDE_CIDR:
		lists[0] = &c->ic_include4;
		lists[1] = &c->ic_include6;
		return config_list(c, v, 1, &c->ic_outbound_all, item_cidr,
		    lists, err, errlen);
	case K_EXCLUDE_CIDR:
		lists[0] = &c->ic_exclude4;
		lists[1] = &c->ic_exclude6;
		return config_list(c, v, 0, NULL, item_cidr, lists, err,
		    errlen);
	case K_OUTBOUND_PORTS:
		return config_split(c, v, item_port, &c->ic_outbound_ports,
		    err, errlen);
	case K_OUTBOUND_EXCLUDE:
		return config_split(c, v, item_port, &c->ic_outbound_exclude,
		    err, errlen);
	case K_VIRT_IFACES:
		return config_split(c, v, item_iface, &c->ic_virt_ifaces,
		    err, errlen);
	case K_MARK:
		if (config_number(v, 0xffffffffULL, 1, &n) == -1 || n == 0)
			return config_error(err, errlen,
			    "\"%s\" is not a packet mark (1-4294967295)", v);
		c->ic_mark = (uint32_t)n;
		return 0;
	case K_ROUTE_TABLE:
		/* 253-255 are the default, main and local tables. */
		if (config_number(v, 0xffffffffULL, 0, &n) == -1 || n == 0 ||
		    (n >= 253 && n <= 255))
			return config_error(err, errlen,
			    "\"%s\" is not a free routing table number", v);
		c->ic_route_table = (uint32_t)n;
		return 0;
	case K_DRY_RUN:
	case K_DUAL_STACK:
	case K_RESTORE_FORMAT:
	case K_LOG_JSON:
	case K_HELP:
		if (config_bool(v, &b) == -1)
			return config_error(err, errlen,
			    "\"%s\" is not a boolean", v);
		if (key == K_DRY_RUN)
			c->ic_dry_run = b;
		else if (key == K_DUAL_STACK)
			c->ic_dual_stack = b;
		else if (key == K_LOG_JSON)
			c->ic_log_json = b;
		else if (key == K_HELP)
			c->ic_help = b;
		return 0;
	case K_LOG_LEVEL:
		free(c->ic_log_level);
		c->ic_log_level = xstrdup(v);
		return 0;
	case K_COUNT:
		break;
	}
	return config_error(err, errlen, "internal error: key %d", (int)key);
}

static void
config_origin(const struct ipt_flag *f, char *buf, size_t len)
{
	if (f->fl_short != '\0')
		snprintf(buf, len, "-%c/--%s", f->fl_short, f->fl_long[0]);
	else
		snprintf(buf, len, "--%s", f->fl_long[0]);
}

/* Reads the flags of argv[1..] into raw, the last of a repeated flag winning. */
static int
config_flags_read(int argc, char **argv, struct ipt_raw *raw, char *err,
    size_t errlen)
{
	const struct ipt_flag	*f;
	const char		*arg, *value, *eq;
	int			 i;

	for (i = 1; i < argc; i++) {
		arg = argv[i];
		value = NULL;
		if (strcmp(arg, "--") == 0) {
			if (i + 1 < argc)
				return config_error(err, errlen,
				    "unexpected argument \"%s\"", argv[i + 1]);
			break;
		}
		if (arg[0] == '-' && arg[1] == '-') {
			eq = strchr(arg + 2, '=');
			f = config_find_long(arg + 2, eq != NULL ?
			    (size_t)(eq - arg - 2) : strlen(arg + 2));
			if (f == NULL)
				return config_error(err, errlen,
				    "unknown flag \"%s\"", arg);
			if (eq != NULL)
				value = eq + 1;
		} else if (arg[0] == '-' && arg[1] != '\0') {
			if ((f = config_find_short(arg[1])) == NULL)
				return config_error(err, errlen,
				    "unknown flag \"%s\"", arg);
			if (arg[2] != '\0') {
				if (f->fl_bool)
					return config_error(err, errlen,
					    "unknown flag \"%s\"", arg);
				value = arg + 2;
			}
		} else
			return config_error(err, errlen,
			    "unexpected argument \"%s\"", arg);
		if (value == NULL && f->fl_bool)
			value = "true";
		if (value == NULL) {
			if (i + 1 >= argc)
				return config_error(err, errlen,
				    "flag \"%s\" needs a value", arg);
			value = argv[++i];
		}
		raw[f->fl_key].rw_value = value;
		config_origin(f, raw[f->fl_key].rw_origin,
		    sizeof(raw[f->fl_key].rw_origin));
	}
	return 0;
}

/*
 * Parses argv (argv[0] is the subcommand's name) and, for the settings no
 * flag gives, the variables env returns. On error fills err with a message
 * naming the flag or variable and the bad value, and returns -1; the
 * configuration must be cleared with ipt_config_clear either way.
 */
int
ipt_config_parse(struct ipt_config *c, int argc, char **argv,
    char *(*env)(const char *), char *err, size_t errlen)
{
	struct ipt_raw		 raw[K_COUNT];
	const struct ipt_flag	*f;
	const char		*v;
	char			 why[256];
	size_t			 i, j;

	memset(c, 0, sizeof(*c));
	c->ic_proxy_port = 15001;
	c->ic_inbound_port = 15006;
	c->ic_mode = IPT_MODE_REDIRECT;
	c->ic_mark = 1337;
	c->ic_route_table = 133;
	c->ic_uid_default = 1;
	c->ic_gid_default = 1;
	memset(raw, 0, sizeof(raw));
	if (config_flags_read(argc, argv, raw, err, errlen) == -1)
		return -1;

	/* A flag wins, even an empty one; an empty variable counts as unset. */
	for (i = 0; i < IPT_NFLAGS; i++) {
		f = &ipt_flags[i];
		for (j = 0; j < 2 && raw[f->fl_key].rw_value == NULL; j++) {
			if (f->fl_env[j] == NULL || env == NULL ||
			    (v = env(f->fl_env[j])) == NULL || *v == '\0')
				continue;
			raw[f->fl_key].rw_value = v;
			snprintf(raw[f->fl_key].rw_origin,
			    sizeof(raw[f->fl_key].rw_origin), "%s",
			    f->fl_env[j]);
		}
	}
	for (i = 0; i < K_COUNT; i++) {
		if (raw[i].rw_value == NULL)
			continue;
		if (config_apply(c, (enum ipt_key)i, raw[i].rw_value, why,
		    sizeof(why)) == -1)
			return config_error(err, errlen, "bad value for %s: %s",
			    raw[i].rw_origin, why);
	}

	/*
	 * Istio's defaults: the proxy's uid is ENVOY_USER's (the caller
	 * resolves the name), else 1337, and the gid list is the uid list.
	 */
	if (c->ic_uid_default) {
		v = env != NULL ? env("ENVOY_USER") : NULL;
		c->ic_envoy_user = xstrdup(v != NULL && *v != '\0' ? v :
		    "istio-proxy");
		ipt_list_add(&c->ic_uids, "1337");
	}
	if (c->ic_gid_default)
		for (i = 0; i < c->ic_uids.il_len; i++)
			ipt_list_add(&c->ic_gids, c->ic_uids.il_items[i]);
	c->ic_ipv6 = c->ic_dual_stack || c->ic_include6.il_len > 0 ||
	    c->ic_exclude6.il_len > 0;
	return 0;
}

void
ipt_config_clear(struct ipt_config *c)
{
	ipt_list_clear(&c->ic_uids);
	ipt_list_clear(&c->ic_gids);
	ipt_list_clear(&c->ic_inbound_ports);
	ipt_list_clear(&c->ic_inbound_exclude);
	ipt_list_clear(&c->ic_include4);
	ipt_list_clear(&c->ic_include6);
	ipt_list_clear(&c->ic_exclude4);
	ipt_list_clear(&c->ic_exclude6);
	ipt_list_clear(&c->ic_outbound_ports);
	ipt_list_clear(&c->ic_outbound_exclude);
	ipt_list_clear(&c->ic_virt_ifaces);
	free(c->ic_envoy_user);
	free(c->ic_log_level);
	memset(c, 0, sizeof(*c));
}

/* Replaces the default uid (and the gids that follow it) with ENVOY_USER's. */
void
ipt_config_set_uid(struct ipt_config *c, unsigned long uid)
{
	char	buf[16];

	snprintf(buf, sizeof(buf), "%lu", uid);
	ipt_list_clear(&c->ic_uids);
	ipt_list_add(&c->ic_uids, buf);
	if (c->ic_gid_default) {
		ipt_list_clear(&c->ic_gids);
		ipt_list_add(&c->ic_gids, buf);
	}
}

static void
ipt_usage(FILE *f, const char *name)
{
	fprintf(f,
"usage: %s [flags]\n"
"  -p, --envoy-port PORT              outbound capture port (ENVOY_PORT, 15001)\n"
"  -z, --inbound-capture-port PORT    inbound capture port (INBOUND_CAPTURE_PORT,\n"
"                                     15006)\n"
"  -u, --proxy-uid UIDS               the proxy's uids, never captured (PROXY_UID,\n"
"                                     else ENVOY_USER's uid, else 1337)\n"
"  -g, --proxy-gid GIDS               the proxy's gids (PROXY_GID, else the uids)\n"
"  -m, --istio-inbound-interception-mode REDIRECT|TPROXY\n"
"                                     (ISTIO_INBOUND_INTERCEPTION_MODE)\n"
"  -b, --istio-inbound-ports PORTS    inbound ports to capture, '*' for all\n"
"                                     (ISTIO_INBOUND_PORTS)\n"
"  -d, --istio-local-exclude-ports PORTS  inbound ports never captured with '*'\n"
"                                     (ISTIO_LOCAL_EXCLUDE_PORTS)\n"
"  -i, --istio-service-cidr CIDRS     outbound ranges to capture, '*' for all\n"
"                                     (ISTIO_SERVICE_CIDR)\n"
"  -x, --istio-service-exclude-cidr CIDRS  outbound ranges never captured\n"
"                                     (ISTIO_SERVICE_EXCLUDE_CIDR)\n"
"  -q, --outbound-ports PORTS         outbound ports always captured\n"
"                                     (ISTIO_OUTBOUND_PORTS)\n"
"  -o, --istio-local-outbound-ports-exclude PORTS  outbound ports never captured\n"
"                                     (ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE)\n"
"  -k, --kube-virt-interfaces IFACES  interfaces whose traffic is outbound\n"
"                                     (KUBE_VIRT_INTERFACES)\n"
"  -t, --istio-inbound-tproxy-mark N  TPROXY mark (ISTIO_INBOUND_TPROXY_MARK, 1337)\n"
"      --inbound-tproxy-mark N        the same\n"
"  -r, --istio-inbound-tproxy-route-table N  TPROXY routing table\n"
"                                     (ISTIO_INBOUND_TPROXY_ROUTE_TABLE, 133)\n"
"      --inbound-tproxy-route-table N the same\n"
"      --dual-stack                   IPv6 rules even without IPv6 ranges\n"
"                                     (ISTIO_AGENT_DUAL_STACK)\n"
"  -n, --dry-run                      print the iptables-restore input only\n"
"  -f, --restore-format               accepted and ignored, as in Istio\n"
"      --log_output_level LEVEL       the log level (info, debug, ...)\n"
"      --log_as_json                  log one JSON object per line\n"
"  -h, --help                         this text\n", name);
	if (strcmp(name, "istio-clean-iptables") == 0)
		fprintf(f, "Give it the flags istio-iptables had, so that it "
		    "knows every rule to remove.\n");
}

/*
 * Parses the command line and environment and applies the log settings.
 * Returns 0 to go on, 1 when help was printed, -1 on bad input.
 */
int
ipt_setup(struct ipt_config *c, int argc, char **argv)
{
	const char	*name = argc > 0 ? argv[0] : "istio-iptables";
	struct passwd	*pw;
	char		 err[512];

	if (strrchr(name, '/') != NULL)
		name = strrchr(name, '/') + 1;

	/* A child that stops reading its input must not kill us. */
	signal(SIGPIPE, SIG_IGN);
	if (ipt_config_parse(c, argc, argv, getenv, err, sizeof(err)) == -1) {
		log_warnx("%s: %s (see %s --help)", name, err, name);
		return -1;
	}
	if (c->ic_help) {
		ipt_usage(stdout, name);
		return 1;
	}
	if (c->ic_log_level != NULL && log_set_level(c->ic_log_level) == -1) {
		log_warnx("%s: bad value for --log_output_level: \"%s\"", name,
		    c->ic_log_level);
		return -1;
	}
	log_set_json(c->ic_log_json);
	if (c->ic_uid_default && (pw = getpwnam(c->ic_envoy_user)) != NULL)
		ipt_config_set_uid(c, (unsigned long)pw->pw_uid);
	return 0;
}
