/*
 * The command line and environment of istio-iptables and
 * istio-clean-iptables, as Istio spells them: short flags (-p 15001), long
 * flags (--envoy-port 15001 or --envoy-port=15001) and, for every setting
 * no flag gives, Istio's environment variables; flags.c reads them, with
 * the messages this command has always given. Everything is validated
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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "iptables.h"

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

/*
 * The setters of the flags (FLAG_FUNC). A flag given twice is set twice,
 * so each one replaces what it sets rather than adding to it. The reason a
 * value is refused names the bad part of it.
 */
#define IPT_LIST(c, fl)	((struct ipt_list *)(void *)((char *)(c) + \
			    (fl)->fl_offset))

/*
 * A number of one of the forms config_number takes; an empty one is its
 * default (fl_default), as in Istio.
 */
static int
config_set_number(const struct flag *fl, const char *v, unsigned long long max,
    int hex, unsigned long long *n)
{
	return config_number(*v == '\0' ? fl->fl_default : v, max, hex, n);
}

/* -p, -z: a port, into an unsigned. */
static int
config_set_port(const struct flag *fl, void *c, const char *v, char *why,
    size_t len)
{
	unsigned long long	n;

	if (config_set_number(fl, v, 65535, 0, &n) == -1 || n == 0)
		return config_error(why, len,
		    "\"%s\" is not a port (1-65535)", v);
	*(unsigned *)(void *)((char *)c + fl->fl_offset) = (unsigned)n;
	return 0;
}

/* -t: a packet mark, 0x for hexadecimal. */
static int
config_set_mark(const struct flag *fl, void *c, const char *v, char *why,
    size_t len)
{
	unsigned long long	n;

	if (config_set_number(fl, v, 0xffffffffULL, 1, &n) == -1 || n == 0)
		return config_error(why, len,
		    "\"%s\" is not a packet mark (1-4294967295)", v);
	((struct ipt_config *)c)->ic_mark = (uint32_t)n;
	return 0;
}

/* -r: 253-255 are the default, main and local tables. */
static int
config_set_table(const struct flag *fl, void *c, const char *v, char *why,
    size_t len)
{
	unsigned long long	n;

	if (config_set_number(fl, v, 0xffffffffULL, 0, &n) == -1 || n == 0 ||
	    (n >= 253 && n <= 255))
		return config_error(why, len,
		    "\"%s\" is not a free routing table number", v);
	((struct ipt_config *)c)->ic_route_table = (uint32_t)n;
	return 0;
}

/* -u, -g: an empty list keeps Istio's default, as in Istio. */
static int
config_set_ids(const struct flag *fl, void *arg, const char *v, char *why,
    size_t len)
{
	struct ipt_config	*c = arg;
	struct ipt_list		*l = IPT_LIST(c, fl);

	ipt_list_clear(l);
	if (config_split(c, v, item_id, l, why, len) == -1)
		return -1;
	if (l == &c->ic_uids)
		c->ic_uid_default = l->il_len == 0;
	else
		c->ic_gid_default = l->il_len == 0;
	return 0;
}

static int
config_set_mode(const struct flag *fl, void *arg, const char *v, char *why,
    size_t len)
{
	struct ipt_config	*c = arg;

	(void)fl;
	if (*v == '\0' || strcasecmp(v, "REDIRECT") == 0)
		c->ic_mode = IPT_MODE_REDIRECT;
	else if (strcasecmp(v, "TPROXY") == 0)
		c->ic_mode = IPT_MODE_TPROXY;
	else
		return config_error(why, len, "\"%s\" is not an interception "
		    "mode (REDIRECT or TPROXY)", v);
	return 0;
}

/* -b: the inbound ports, or '*'. */
static int
config_set_inbound(const struct flag *fl, void *arg, const char *v, char *why,
    size_t len)
{
	struct ipt_config	*c = arg;

	(void)fl;
	ipt_list_clear(&c->ic_inbound_ports);
	c->ic_inbound_all = 0;
	return config_list(c, v, 1, &c->ic_inbound_all, item_port,
	    &c->ic_inbound_ports, why, len);
}

/* -d, -q, -o: a list of ports. */
static int
config_set_ports(const struct flag *fl, void *c, const char *v, char *why,
    size_t len)
{
	ipt_list_clear(IPT_LIST(c, fl));
	return config_split(c, v, item_port, IPT_LIST(c, fl), why, len);
}

/* -i: the outbound ranges to capture, or '*'. */
static int
config_set_include(const struct flag *fl, void *arg, const char *v, char *why,
    size_t len)
{
	struct ipt_config	*c = arg;
	struct ipt_list		*lists[2] = { &c->ic_include4, &c->ic_include6 };

	(void)fl;
	ipt_list_clear(lists[0]);
	ipt_list_clear(lists[1]);
	c->ic_outbound_all = 0;
	c->ic_include_loopback = 0;
	return config_list(c, v, 1, &c->ic_outbound_all, item_cidr, lists, why,
	    len);
}

/* -x: the outbound ranges never captured. */
static int
config_set_exclude(const struct flag *fl, void *arg, const char *v, char *why,
    size_t len)
{
	struct ipt_config	*c = arg;
	struct ipt_list		*lists[2] = { &c->ic_exclude4, &c->ic_exclude6 };

	(void)fl;
	ipt_list_clear(lists[0]);
	ipt_list_clear(lists[1]);
	return config_list(c, v, 0, NULL, item_cidr, lists, why, len);
}

/* -k: interfaces. */
static int
config_set_ifaces(const struct flag *fl, void *c, const char *v, char *why,
    size_t len)
{
	ipt_list_clear(IPT_LIST(c, fl));
	return config_split(c, v, item_iface, IPT_LIST(c, fl), why, len);
}

#define IPT_FUNC(s, name, set, member, env, arg, dflt, help)		\
	{ .fl_name = name, .fl_short = s, .fl_type = FLAG_FUNC,		\
	  .fl_set = set, .fl_offset = offsetof(struct ipt_config, member), \
	  .fl_env = env, .fl_arg = arg, .fl_default = dflt, .fl_help = help }
#define IPT_ENV(a)	{ a, NULL }
#define IPT_ENV2(a, b)	{ a, b }

/* Istio's flags, in Istio's order; the setter validates each value. */
static const struct flag ipt_flags[] = {
	IPT_FUNC('p', "envoy-port", config_set_port, ic_proxy_port,
	    IPT_ENV("ENVOY_PORT"), "PORT", "15001",
	    "outbound capture port"),
	IPT_FUNC('z', "inbound-capture-port", config_set_port,
	    ic_inbound_port, IPT_ENV("INBOUND_CAPTURE_PORT"), "PORT", "15006",
	    "inbound capture port"),
	IPT_FUNC('u', "proxy-uid", config_set_ids, ic_uids,
	    IPT_ENV("PROXY_UID"), "UIDS", "ENVOY_USER's uid, else 1337",
	    "the proxy's uids, never captured"),
	IPT_FUNC('g', "proxy-gid", config_set_ids, ic_gids,
	    IPT_ENV("PROXY_GID"), "GIDS", "the uids", "the proxy's gids"),
	IPT_FUNC('m', "istio-inbound-interception-mode", config_set_mode,
	    ic_mode, IPT_ENV("ISTIO_INBOUND_INTERCEPTION_MODE"),
	    "REDIRECT|TPROXY", "REDIRECT", "how inbound traffic is captured"),
	IPT_FUNC('b', "istio-inbound-ports", config_set_inbound,
	    ic_inbound_ports, IPT_ENV("ISTIO_INBOUND_PORTS"), "PORTS", NULL,
	    "inbound ports to capture, '*' for all"),
	IPT_FUNC('d', "istio-local-exclude-ports", config_set_ports,
	    ic_inbound_exclude, IPT_ENV("ISTIO_LOCAL_EXCLUDE_PORTS"), "PORTS",
	    NULL, "inbound ports never captured with '*'"),
	IPT_FUNC('i', "istio-service-cidr", config_set_include, ic_include4,
	    IPT_ENV("ISTIO_SERVICE_CIDR"), "CIDRS", NULL,
	    "outbound ranges to capture, '*' for all"),
	IPT_FUNC('x', "istio-service-exclude-cidr", config_set_exclude,
	    ic_exclude4, IPT_ENV("ISTIO_SERVICE_EXCLUDE_CIDR"), "CIDRS", NULL,
	    "outbound ranges never captured"),
	IPT_FUNC('q', "outbound-ports", config_set_ports, ic_outbound_ports,
	    IPT_ENV2("ISTIO_OUTBOUND_PORTS", "OUTBOUND_PORTS"), "PORTS", NULL,
	    "outbound ports always captured"),
	IPT_FUNC('o', "istio-local-outbound-ports-exclude", config_set_ports,
	    ic_outbound_exclude, IPT_ENV("ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE"),
	    "PORTS", NULL, "outbound ports never captured"),
	IPT_FUNC('k', "kube-virt-interfaces", config_set_ifaces,
	    ic_virt_ifaces, IPT_ENV("KUBE_VIRT_INTERFACES"), "IFACES", NULL,
	    "interfaces whose traffic is outbound"),
	{ .fl_name = "istio-inbound-tproxy-mark",
	  .fl_alias = "inbound-tproxy-mark", .fl_short = 't',
	  .fl_type = FLAG_FUNC, .fl_set = config_set_mark,
	  .fl_env = { "ISTIO_INBOUND_TPROXY_MARK", "INBOUND_TPROXY_MARK" },
	  .fl_arg = "N", .fl_default = "1337", .fl_help = "TPROXY mark" },
	{ .fl_name = "istio-inbound-tproxy-route-table",
	  .fl_alias = "inbound-tproxy-route-table", .fl_short = 'r',
	  .fl_type = FLAG_FUNC, .fl_set = config_set_table,
	  .fl_env = { "ISTIO_INBOUND_TPROXY_ROUTE_TABLE",
	  "INBOUND_TPROXY_ROUTE_TABLE" },
	  .fl_arg = "N", .fl_default = "133",
	  .fl_help = "TPROXY routing table" },
	{ .fl_name = "dry-run", .fl_short = 'n', .fl_type = FLAG_BOOL,
	  .fl_offset = offsetof(struct ipt_config, ic_dry_run),
	  .fl_env = { "DRY_RUN", NULL },
	  .fl_help = "print the iptables-restore input only" },
	{ .fl_name = "dual-stack", .fl_type = FLAG_BOOL,
	  .fl_offset = offsetof(struct ipt_config, ic_dual_stack),
	  .fl_env = { "ISTIO_AGENT_DUAL_STACK", NULL },
	  .fl_help = "IPv6 rules even without IPv6 ranges" },
	{ .fl_name = "restore-format", .fl_short = 'f', .fl_type = FLAG_BOOL,
	  .fl_offset = offsetof(struct ipt_config, ic_restore_format),
	  .fl_help = "accepted and ignored, as in Istio" },
	{ .fl_name = "log_output_level", .fl_type = FLAG_STRING,
	  .fl_offset = offsetof(struct ipt_config, ic_log_level),
	  .fl_arg = "LEVEL", .fl_default = "",
	  .fl_help = "the log level (info, debug, ...)" },
	{ .fl_name = "log_as_json", .fl_type = FLAG_BOOL,
	  .fl_offset = offsetof(struct ipt_config, ic_log_json),
	  .fl_help = "log one JSON object per line" },
	{ NULL }
};

static void
config_flags_init(struct flags *fs, struct ipt_config *c, const char *name,
    char *(*env)(const char *))
{
	memset(fs, 0, sizeof(*fs));
	fs->fs_usage = strcmp(name, "istio-clean-iptables") == 0 ?
	    "istio-clean-iptables [flags]" : "istio-iptables [flags]";
	if (strcmp(name, "istio-clean-iptables") == 0)
		fs->fs_about = "Give it the flags istio-iptables had, so that "
		    "it knows every rule to remove.";
	fs->fs_table[0] = ipt_flags;
	fs->fs_base[0] = c;
	fs->fs_opts = FLAGS_IPTABLES;
	fs->fs_getenv = env;
}

/*
 * Parses argv (argv[0] is the subcommand's name) and, for the settings no
 * flag gives, the variables env returns. On error fills err with a message
 * naming the flag or variable and the bad value, and returns -1; the
 * configuration must be cleared with ipt_config_clear either way. --help
 * sets ic_help and leaves every setting at its default.
 */
int
ipt_config_parse(struct ipt_config *c, int argc, char **argv,
    char *(*env)(const char *), char *err, size_t errlen)
{
	struct flags	 fs;
	const char	*v;
	size_t		 i;
	int		 rc = -1;

	memset(c, 0, sizeof(*c));
	c->ic_proxy_port = 15001;
	c->ic_inbound_port = 15006;
	c->ic_mode = IPT_MODE_REDIRECT;
	c->ic_mark = 1337;
	c->ic_route_table = 133;
	c->ic_uid_default = 1;
	c->ic_gid_default = 1;
	config_flags_init(&fs, c, argc > 0 ? argv[0] : "istio-iptables", env);
	if (flags_parse(&fs, argc, argv, err, errlen) == -1)
		goto out;
	if (!fs.fs_help && fs.fs_nargs > 0) {
		config_error(err, errlen, "unexpected argument \"%s\"",
		    fs.fs_args[0]);
		goto out;
	}
	c->ic_help = fs.fs_help;
	if (!fs.fs_help && (flags_apply(&fs, NULL, err, errlen) == -1 ||
	    (env != NULL && flags_environment(&fs, err, errlen) == -1)))
		goto out;

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
	rc = 0;
out:
	flags_free(&fs);
	return rc;
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
	struct flags		fs;
	struct ipt_config	c;

	memset(&c, 0, sizeof(c));
	config_flags_init(&fs, &c, name, NULL);
	flags_usage(&fs, f);
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
