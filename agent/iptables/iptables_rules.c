/*
 * The rules of Istio's traffic interception, for one address family, built
 * from a validated configuration, and the iptables-restore text that puts
 * them in place.
 *
 * The order is Istio's: in the nat table ISTIO_OUTPUT first lets the
 * inbound passthrough's 127.0.0.6 connections go, then sends the proxy's
 * own loopback connections to a pod address back to the inbound handler,
 * lets the proxy's other traffic and localhost traffic go, and redirects
 * the rest to the outbound port. Matches are written in the order and form
 * iptables-save prints them, so the nat table reads back exactly as
 * written. (In the mangle table marks stay decimal, as Istio writes them;
 * iptables-save prints them in hex.)
 *
 * The text declares each of our chains with ":NAME - [0:0]", which under
 * --noflush creates it or empties it: running twice leaves the same rules.
 * Rules in the built-in chains (the jumps into ours) cannot be made
 * idempotent that way; the caller marks those already in the kernel as
 * present and rendering skips them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iptables.h"

/* Istio's fixed mark for the proxy's outbound connections to the pod. */
#define IPT_OUTBOUND_MARK	1338

/* In the order iptables-save lists them, so the two read the same. */
static const char *const ipt_nat_chains[] = {
	"ISTIO_INBOUND", "ISTIO_IN_REDIRECT", "ISTIO_OUTPUT", "ISTIO_REDIRECT",
	NULL
};
static const char *const ipt_mangle_chains[] = {
	"ISTIO_DIVERT", "ISTIO_INBOUND", "ISTIO_TPROXY", NULL
};
static const char *const ipt_builtin_chains[] = {
	"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING", NULL
};

static void	rules_add(struct ipt_ruleset *, const char *, const char *, int,
		    const char *, ...) __attribute__((format(printf, 5, 6)));

static void
rules_add(struct ipt_ruleset *rs, const char *table, const char *chain,
    int insert, const char *fmt, ...)
{
	struct ipt_rule	*r;
	va_list		 ap;

	rs->rs_rules = xrealloc(rs->rs_rules,
	    (rs->rs_len + 1) * sizeof(*rs->rs_rules));
	r = &rs->rs_rules[rs->rs_len++];
	memset(r, 0, sizeof(*r));
	r->ir_table = table;
	r->ir_chain = chain;
	r->ir_insert = insert;
	va_start(ap, fmt);
	if (vasprintf(&r->ir_spec, fmt, ap) == -1)
		fatal("vasprintf");
	va_end(ap);
}

static const char *const *
rules_chains(const char *table)
{
	return strcmp(table, "nat") == 0 ? ipt_nat_chains : ipt_mangle_chains;
}

/* Whether name is one of the chains these rules create in table. */
int
ipt_chain_ours(const char *table, const char *name)
{
	const char *const	*c;

	if (strcmp(table, "nat") != 0 && strcmp(table, "mangle") != 0)
		return 0;
	for (c = rules_chains(table); *c != NULL; c++)
		if (strcmp(*c, name) == 0)
			return 1;
	return 0;
}

int
ipt_rule_builtin(const struct ipt_rule *r)
{
	const char *const	*c;

	for (c = ipt_builtin_chains; *c != NULL; c++)
		if (strcmp(*c, r->ir_chain) == 0)
			return 1;
	return 0;
}

/* The chain a rule's "-j" or "-g" names, or -1 when it names none. */
int
ipt_rule_target(const char *spec, char *buf, size_t len)
{
	const char	*p = spec, *end;
	size_t		 n;

	while ((p = strstr(p, "-")) != NULL) {
		if ((p == spec || p[-1] == ' ') && (p[1] == 'j' || p[1] == 'g') &&
		    p[2] == ' ') {
			p += 3;
			end = p + strcspn(p, " ");
			n = (size_t)(end - p);
			if (n == 0 || n >= len)
				return -1;
			memcpy(buf, p, n);
			buf[n] = '\0';
			return 0;
		}
		p++;
	}
	return -1;
}

/* Inbound capture: into ISTIO_INBOUND of nat, or of mangle with TPROXY. */
static void
rules_inbound(struct ipt_ruleset *rs, const struct ipt_config *c,
    const char *localhost)
{
	const char	*table;
	size_t		 i;
	int		 tproxy = c->ic_mode == IPT_MODE_TPROXY;

	if (!c->ic_inbound_all && c->ic_inbound_ports.il_len == 0)
		return;
	if (tproxy) {
		/*
		 * Marked packets are routed to the loopback interface by the
		 * routing rule, so the proxy's transparent socket gets them.
		 */
		rules_add(rs, "mangle", "ISTIO_DIVERT", 0,
		    "-j MARK --set-mark %u", c->ic_mark);
		rules_add(rs, "mangle", "ISTIO_DIVERT", 0, "-j ACCEPT");
		rules_add(rs, "mangle", "ISTIO_TPROXY", 0,
		    "! -d %s -p tcp -j TPROXY --on-port %u --tproxy-mark "
		    "%u/0xffffffff", localhost, c->ic_inbound_port, c->ic_mark);
		table = "mangle";
	} else
		table = "nat";
	rules_add(rs, table, "PREROUTING", 0, "-p tcp -j ISTIO_INBOUND");
	if (c->ic_inbound_all) {
		/* Makes sure ssh is never redirected, as Istio does. */
		rules_add(rs, table, "ISTIO_INBOUND", 0,
		    "-p tcp -m tcp --dport 22 -j RETURN");
		for (i = 0; i < c->ic_inbound_exclude.il_len; i++)
			rules_add(rs, table, "ISTIO_INBOUND", 0,
			    "-p tcp -m tcp --dport %s -j RETURN",
			    c->ic_inbound_exclude.il_items[i]);
		if (tproxy) {
			rules_add(rs, table, "ISTIO_INBOUND", 0, "-p tcp -m "
			    "conntrack --ctstate RELATED,ESTABLISHED -j "
			    "ISTIO_DIVERT");
			rules_add(rs, table, "ISTIO_INBOUND", 0,
			    "-p tcp -j ISTIO_TPROXY");
		} else
			rules_add(rs, table, "ISTIO_INBOUND", 0,
			    "-p tcp -j ISTIO_IN_REDIRECT");
		return;
	}
	for (i = 0; i < c->ic_inbound_ports.il_len; i++) {
		const char *port = c->ic_inbound_ports.il_items[i];

		if (tproxy) {
			rules_add(rs, table, "ISTIO_INBOUND", 0, "-p tcp -m tcp "
			    "--dport %s -m conntrack --ctstate "
			    "RELATED,ESTABLISHED -j ISTIO_DIVERT", port);
			rules_add(rs, table, "ISTIO_INBOUND", 0,
			    "-p tcp -m tcp --dport %s -j ISTIO_TPROXY", port);
		} else
			rules_add(rs, table, "ISTIO_INBOUND", 0,
			    "-p tcp -m tcp --dport %s -j ISTIO_IN_REDIRECT",
			    port);
	}
}

/* The three rules of ISTIO_OUTPUT for each proxy uid, or each gid. */
static void
rules_owner(struct ipt_ruleset *rs, const struct ipt_config *c,
    const struct ipt_list *ids, const char *kind, const char *localhost)
{
	size_t	i;

	for (i = 0; i < ids->il_len; i++) {
		const char *id = ids->il_items[i];

		/* The proxy calling the pod's own address: app → proxy → app. */
		rules_add(rs, "nat", "ISTIO_OUTPUT", 0, "! -d %s -o lo -m owner "
		    "--%s-owner %s -j ISTIO_IN_REDIRECT", localhost, kind, id);
		/*
		 * The application calling itself over loopback stays direct,
		 * unless loopback was asked to be captured.
		 */
		if (!c->ic_include_loopback)
			rules_add(rs, "nat", "ISTIO_OUTPUT", 0,
			    "-o lo -m owner ! --%s-owner %s -j RETURN", kind,
			    id);
		/* The proxy's own outbound traffic: never back to itself. */
		rules_add(rs, "nat", "ISTIO_OUTPUT", 0,
		    "-m owner --%s-owner %s -j RETURN", kind, id);
	}
}

static void
rules_outbound(struct ipt_ruleset *rs, const struct ipt_config *c,
    const char *passthrough, const char *localhost)
{
	const struct ipt_list	*include, *exclude;
	size_t			 i, j;

	include = rs->rs_family == 4 ? &c->ic_include4 : &c->ic_include6;
	exclude = rs->rs_family == 4 ? &c->ic_exclude4 : &c->ic_exclude6;

	rules_add(rs, "nat", "OUTPUT", 0, "-p tcp -j ISTIO_OUTPUT");
	/* Port exclusions come before connections back to self. */
	for (i = 0; i < c->ic_outbound_exclude.il_len; i++)
		rules_add(rs, "nat", "ISTIO_OUTPUT", 0,
		    "-p tcp -m tcp --dport %s -j RETURN",
		    c->ic_outbound_exclude.il_items[i]);
	/* The inbound passthrough binds this address to reach the app. */
	rules_add(rs, "nat", "ISTIO_OUTPUT", 0, "-s %s -o lo -j RETURN",
	    passthrough);
	rules_owner(rs, c, &c->ic_uids, "uid", localhost);
	rules_owner(rs, c, &c->ic_gids, "gid", localhost);
	rules_add(rs, "nat", "ISTIO_OUTPUT", 0, "-d %s -j RETURN", localhost);
	for (i = 0; i < exclude->il_len; i++)
		rules_add(rs, "nat", "ISTIO_OUTPUT", 0, "-d %s -j RETURN",
		    exclude->il_items[i]);
	for (i = 0; i < c->ic_outbound_ports.il_len; i++)
		rules_add(rs, "nat", "ISTIO_OUTPUT", 0,
		    "-p tcp -m tcp --dport %s -j ISTIO_REDIRECT",
		    c->ic_outbound_ports.il_items[i]);
	if (c->ic_outbound_all) {
		rules_add(rs, "nat", "ISTIO_OUTPUT", 0, "-j ISTIO_REDIRECT");
		/* Traffic from these interfaces is outbound traffic too. */
		for (j = 0; j < c->ic_virt_ifaces.il_len; j++)
			rules_add(rs, "nat", "PREROUTING", 1,
			    "-i %s -j ISTIO_REDIRECT",
			    c->ic_virt_ifaces.il_items[j]);
	} else if (include->il_len > 0) {
		for (i = 0; i < include->il_len; i++) {
			for (j = 0; j < c->ic_virt_ifaces.il_len; j++)
				rules_add(rs, "nat", "PREROUTING", 1,
				    "-d %s -i %s -j ISTIO_REDIRECT",
				    include->il_items[i],
				    c->ic_virt_ifaces.il_items[j]);
			rules_add(rs, "nat", "ISTIO_OUTPUT", 0,
			    "-d %s -j ISTIO_REDIRECT", include->il_items[i]);
		}
		rules_add(rs, "nat", "ISTIO_OUTPUT", 0, "-j RETURN");
	}
}

/*
 * With TPROXY the proxy's connections to the pod's own address are marked
 * so that ISTIO_INBOUND can tell them from the application's, and the
 * connection mark of proxied connections is kept for their replies.
 */
static void
rules_tproxy_marks(struct ipt_ruleset *rs, const struct ipt_config *c,
    const char *passthrough)
{
	/* These come first in ISTIO_INBOUND: no loop, no passthrough. */
	rules_add(rs, "mangle", "ISTIO_INBOUND", 0,
	    "-p tcp -m mark --mark %u -j RETURN", c->ic_mark);
	rules_add(rs, "mangle", "ISTIO_INBOUND", 0,
	    "-s %s -i lo -p tcp -j RETURN", passthrough);
	rules_add(rs, "mangle", "ISTIO_INBOUND", 0,
	    "-i lo -p tcp -m mark ! --mark %d -j RETURN", IPT_OUTBOUND_MARK);
}

static void
rules_tproxy_builtin(struct ipt_ruleset *rs, const struct ipt_config *c,
    const char *localhost)
{
	const struct ipt_list	*lists[2] = { &c->ic_uids, &c->ic_gids };
	static const char *const kinds[2] = { "uid", "gid" };
	size_t			 i, k;

	rules_add(rs, "mangle", "PREROUTING", 0,
	    "-p tcp -m mark --mark %u -j CONNMARK --save-mark", c->ic_mark);
	rules_add(rs, "mangle", "OUTPUT", 0,
	    "-o lo -p tcp -m mark --mark %u -j RETURN", c->ic_mark);
	for (k = 0; k < 2; k++)
		for (i = 0; i < lists[k]->il_len; i++)
			rules_add(rs, "mangle", "OUTPUT", 0, "! -d %s -o lo "
			    "-p tcp -m owner --%s-owner %s -j MARK --set-mark "
			    "%d", localhost, kinds[k], lists[k]->il_items[i],
			    IPT_OUTBOUND_MARK);
	rules_add(rs, "mangle", "OUTPUT", 0,
	    "-p tcp -m connmark --mark %u -j CONNMARK --restore-mark",
	    c->ic_mark);
}

/* Builds the rules of one family (4 or 6) into rs, which must be zeroed. */
void
ipt_rules_build(struct ipt_ruleset *rs, const struct ipt_config *c,
    int family)
{
	const char	*passthrough, *localhost;
	size_t		 i;

	rs->rs_family = family;
	rs->rs_tproxy = c->ic_mode == IPT_MODE_TPROXY;
	passthrough = family == 4 ? "127.0.0.6/32" : "::6/128";
	localhost = family == 4 ? "127.0.0.1/32" : "::1/128";

	/* Interfaces of virtual machines are never inbound traffic. */
	for (i = 0; i < c->ic_virt_ifaces.il_len; i++)
		rules_add(rs, "nat", "PREROUTING", 1, "-i %s -j RETURN",
		    c->ic_virt_ifaces.il_items[i]);
	rules_add(rs, "nat", "ISTIO_REDIRECT", 0,
	    "-p tcp -j REDIRECT --to-ports %u", c->ic_proxy_port);
	rules_add(rs, "nat", "ISTIO_IN_REDIRECT", 0,
	    "-p tcp -j REDIRECT --to-ports %u", c->ic_inbound_port);
	if (rs->rs_tproxy)
		rules_tproxy_marks(rs, c, passthrough);
	rules_inbound(rs, c, localhost);
	rules_outbound(rs, c, passthrough, localhost);
	if (rs->rs_tproxy)
		rules_tproxy_builtin(rs, c, localhost);
}

static void
render_table(FILE *f, const struct ipt_ruleset *rs, const char *table)
{
	const char *const	*chain;
	const struct ipt_rule	*r;
	size_t			 i;

	fprintf(f, "*%s\n", table);
	for (chain = rules_chains(table); *chain != NULL; chain++)
		fprintf(f, ":%s - [0:0]\n", *chain);
	for (chain = rules_chains(table); *chain != NULL; chain++) {
		for (i = 0; i < rs->rs_len; i++) {
			r = &rs->rs_rules[i];
			if (strcmp(r->ir_table, table) == 0 &&
			    strcmp(r->ir_chain, *chain) == 0)
				fprintf(f, "-A %s %s\n", r->ir_chain,
				    r->ir_spec);
		}
	}
	for (chain = ipt_builtin_chains; *chain != NULL; chain++) {
		for (i = 0; i < rs->rs_len; i++) {
			r = &rs->rs_rules[i];
			if (strcmp(r->ir_table, table) != 0 ||
			    strcmp(r->ir_chain, *chain) != 0 || r->ir_present)
				continue;
			if (r->ir_insert)
				fprintf(f, "-I %s 1 %s\n", r->ir_chain,
				    r->ir_spec);
			else
				fprintf(f, "-A %s %s\n", r->ir_chain,
				    r->ir_spec);
		}
	}
	fprintf(f, "COMMIT\n");
}

/* The iptables-restore --noflush input for rs; the caller frees it. */
char *
ipt_rules_render(const struct ipt_ruleset *rs)
{
	FILE	*f;
	char	*text = NULL;
	size_t	 len = 0;

	if ((f = open_memstream(&text, &len)) == NULL)
		fatal("open_memstream");
	render_table(f, rs, "nat");
	if (rs->rs_tproxy)
		render_table(f, rs, "mangle");
	if (fclose(f) != 0)
		fatal("render");
	return text;
}

void
ipt_rules_clear(struct ipt_ruleset *rs)
{
	size_t	i;

	for (i = 0; i < rs->rs_len; i++)
		free(rs->rs_rules[i].ir_spec);
	free(rs->rs_rules);
	memset(rs, 0, sizeof(*rs));
}
