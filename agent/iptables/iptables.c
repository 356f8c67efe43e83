/*
 * istio-iptables and istio-clean-iptables: the traffic interception rules
 * of a pod, as Istio's init container sets them up and takes them down.
 *
 * Everything is validated and the whole iptables-restore input built in
 * memory before anything is run, so bad input applies nothing. Each family
 * is applied with one "iptables-restore --noflush". iptables-restore
 * commits table by table, so before changing anything the nat and mangle
 * tables are saved, and on any failure they are restored as they were:
 * either all the rules are in place or none.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iptables.h"

#define IPT_MAX_ARGS	64

/* One address family's tools and state. */
struct ipt_family {
	int		 fa_family;	/* 4 or 6 */
	const char	*fa_iptables;
	const char	*fa_save;
	const char	*fa_restore;
	const char	*fa_inet;	/* ip's -f argument */
	struct ipt_ruleset fa_rules;
	char		*fa_snapshot;	/* nat and mangle before any change */
	int		 fa_fresh;	/* none of our jumps was in place */
	int		 fa_rule_added;	/* TPROXY's ip rule, added by us */
	int		 fa_route_added;	/* and its route */
	int		 fa_addr_added;	/* ::6 on lo, added by us */
};

static void
ipt_family_init(struct ipt_family *fa, int family)
{
	memset(fa, 0, sizeof(*fa));
	fa->fa_family = family;
	fa->fa_iptables = family == 4 ? "iptables" : "ip6tables";
	fa->fa_save = family == 4 ? "iptables-save" : "ip6tables-save";
	fa->fa_restore = family == 4 ? "iptables-restore" : "ip6tables-restore";
	fa->fa_inet = family == 4 ? "inet" : "inet6";
}

static void
ipt_family_clear(struct ipt_family *fa)
{
	ipt_rules_clear(&fa->fa_rules);
	free(fa->fa_snapshot);
	fa->fa_snapshot = NULL;
}

/* Splits a rule's spec at its blanks into argv after the given words. */
static void
ipt_argv(char **argv, char *spec, const char *const *words)
{
	char	*tok, *save = NULL;
	int	 n = 0;

	while (*words != NULL && n < IPT_MAX_ARGS - 1)
		argv[n++] = (char *)*words++;
	for (tok = strtok_r(spec, " ", &save); tok != NULL &&
	    n < IPT_MAX_ARGS - 1; tok = strtok_r(NULL, " ", &save))
		argv[n++] = tok;
	argv[n] = NULL;
}

/* Whether a rule is in the kernel's table, as "iptables -C" judges it. */
static int
ipt_rule_exists(const struct ipt_family *fa, const struct ipt_rule *r)
{
	const char	*words[] = { fa->fa_iptables, "-w", "-t", r->ir_table,
	    "-C", r->ir_chain, NULL };
	char		*argv[IPT_MAX_ARGS], *spec;
	int		 rc;

	spec = xstrdup(r->ir_spec);
	ipt_argv(argv, spec, words);
	rc = ipt_exec(argv, NULL, NULL, 1);
	free(spec);
	return rc == 0;
}

/*
 * The lines of one table in iptables-save output, from its "*table" line to
 * its COMMIT, or NULL when the save has no such table.
 */
static const char *
ipt_section(const char *saved, const char *table, size_t *len)
{
	const char	*line, *end;
	size_t		 tlen = strlen(table);

	for (line = saved; *line != '\0'; line += strcspn(line, "\n") + 1) {
		if (line[0] == '*' && strncmp(line + 1, table, tlen) == 0 &&
		    (line[1 + tlen] == '\n' || line[1 + tlen] == '\0'))
			break;
		if (line[strcspn(line, "\n")] == '\0')
			return NULL;
	}
	if (*line == '\0')
		return NULL;
	if ((end = strstr(line, "\nCOMMIT\n")) != NULL)
		end += strlen("\nCOMMIT\n");
	else
		end = line + strlen(line);
	*len = (size_t)(end - line);
	return line;
}

/*
 * Saves the nat and mangle tables as iptables-restore input which, without
 * --noflush, puts them back exactly; a table the save lacks goes back
 * empty. Returns the whole save in *saved when not NULL.
 */
static int
ipt_snapshot(struct ipt_family *fa, int quiet, char **savedp)
{
	static const char *const tables[] = { "nat", "mangle" };
	char		*argv[] = { (char *)fa->fa_save, NULL };
	char		*saved, *text = NULL;
	const char	*sec;
	size_t		 len = 0, slen, i;
	FILE		*f;

	if (ipt_exec(argv, NULL, &saved, quiet) != 0) {
		if (!quiet)
			log_warnx("%s failed", fa->fa_save);
		free(saved);
		return -1;
	}
	if ((f = open_memstream(&text, &len)) == NULL)
		fatal("open_memstream");
	for (i = 0; i < 2; i++) {
		if ((sec = ipt_section(saved, tables[i], &slen)) != NULL)
			fwrite(sec, 1, slen, f);
		else
			fprintf(f, "*%s\nCOMMIT\n", tables[i]);
	}
	if (fclose(f) != 0)
		fatal("snapshot");
	free(fa->fa_snapshot);
	fa->fa_snapshot = text;
	if (savedp != NULL)
		*savedp = saved;
	else
		free(saved);
	return 0;
}

static int
ipt_restore(const struct ipt_family *fa, const char *text, int noflush)
{
	char	*argv[] = { (char *)fa->fa_restore, noflush ? "--noflush" : NULL,
	    NULL };

	return ipt_exec(argv, text, NULL, 0) == 0 ? 0 : -1;
}

/* Puts the nat and mangle tables back as ipt_snapshot found them. */
static void
ipt_rollback(const struct ipt_family *fa)
{
	if (fa->fa_snapshot == NULL)
		return;
	if (ipt_restore(fa, fa->fa_snapshot, 0) == -1)
		log_warnx("%s: could not restore the previous rules",
		    fa->fa_restore);
	else
		log_info("%s: previous rules restored", fa->fa_restore);
}

/* Runs "ip -f <family>" with the NULL-terminated words that follow. */
static int	ipt_ip(const struct ipt_family *, int, char **, ...)
		    __attribute__((sentinel));

static int
ipt_ip(const struct ipt_family *fa, int quiet, char **out, ...)
{
	char	*argv[16];
	va_list	 ap;
	int	 n = 0;

	argv[n++] = "ip";
	argv[n++] = "-f";
	argv[n++] = (char *)fa->fa_inet;
	va_start(ap, out);
	while (n < 15 && (argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	return ipt_exec(argv, NULL, out, quiet);
}

/* How many "ip rule" entries send the TPROXY mark to its table. */
static int
ipt_route_rules(const struct ipt_family *fa, const struct ipt_config *c)
{
	char		*out, *line, *save = NULL, *p;
	unsigned long	 v;
	char		 table[16];
	int		 n = 0;

	if (ipt_ip(fa, 1, &out, "rule", "show", NULL) != 0) {
		free(out);
		return 0;
	}
	snprintf(table, sizeof(table), "%u", c->ic_route_table);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((p = strstr(line, " fwmark ")) == NULL)
			continue;
		v = strtoul(p + 8, &p, 0);
		if (strncmp(p, "/0xffffffff", 11) == 0)
			p += 11;
		if (v != c->ic_mark || strncmp(p, " lookup ", 8) != 0)
			continue;
		p += 8;
		if (strncmp(p, table, strlen(table)) == 0 &&
		    (p[strlen(table)] == '\0' || p[strlen(table)] == ' '))
			n++;
	}
	free(out);
	return n;
}

static int
ipt_route_present(const struct ipt_family *fa, const struct ipt_config *c)
{
	char	 table[16], *out;
	int	 found;

	snprintf(table, sizeof(table), "%u", c->ic_route_table);
	if (ipt_ip(fa, 1, &out, "route", "show", "table", table, NULL) != 0) {
		free(out);
		return 0;
	}
	found = strstr(out, "local default dev lo") != NULL;
	free(out);
	return found;
}

/*
 * TPROXY: packets with the mark are routed by a table whose only route
 * delivers everything locally, which is how they reach the proxy.
 */
static int
ipt_route_setup(struct ipt_family *fa, const struct ipt_config *c)
{
	char	mark[16], table[16];

	snprintf(mark, sizeof(mark), "%u", c->ic_mark);
	snprintf(table, sizeof(table), "%u", c->ic_route_table);
	if (ipt_route_rules(fa, c) == 0) {
		if (ipt_ip(fa, 0, NULL, "rule", "add", "fwmark", mark,
		    "lookup", table, NULL) != 0) {
			log_warnx("ip -f %s rule add fwmark %s lookup %s failed",
			    fa->fa_inet, mark, table);
			return -1;
		}
		fa->fa_rule_added = 1;
	}
	if (!ipt_route_present(fa, c)) {
		if (ipt_ip(fa, 0, NULL, "route", "add", "local", "default",
		    "dev", "lo", "table", table, NULL) != 0) {
			log_warnx("ip -f %s route add local default dev lo "
			    "table %s failed", fa->fa_inet, table);
			return -1;
		}
		fa->fa_route_added = 1;
	}
	return 0;
}

/*
 * Removes the TPROXY routing rule (every copy) and route: when all is set
 * whoever added them, else only what this run added.
 */
static void
ipt_route_remove(struct ipt_family *fa, const struct ipt_config *c, int all)
{
	char	mark[16], table[16];
	int	n;

	snprintf(mark, sizeof(mark), "%u", c->ic_mark);
	snprintf(table, sizeof(table), "%u", c->ic_route_table);
	if (all || fa->fa_rule_added)
		for (n = ipt_route_rules(fa, c); n > 0; n--)
			ipt_ip(fa, 1, NULL, "rule", "del", "fwmark", mark,
			    "lookup", table, NULL);
	if ((all || fa->fa_route_added) && ipt_route_present(fa, c))
		ipt_ip(fa, 1, NULL, "route", "del", "local", "default", "dev",
		    "lo", "table", table, NULL);
	fa->fa_rule_added = fa->fa_route_added = 0;
}

/* The IPv6 inbound passthrough binds ::6, as IPv4's binds 127.0.0.6. */
static int
ipt_passthrough_present(struct ipt_family *fa)
{
	char	*out;
	int	 found;

	if (ipt_ip(fa, 1, &out, "addr", "show", "dev", "lo", NULL) != 0) {
		free(out);
		return 0;
	}
	found = strstr(out, " ::6/128 ") != NULL;
	free(out);
	return found;
}

static int
ipt_tproxy_routes(const struct ipt_config *c)
{
	return c->ic_mode == IPT_MODE_TPROXY && (c->ic_inbound_all ||
	    c->ic_inbound_ports.il_len > 0);
}

static void
ipt_print(const struct ipt_config *c, const struct ipt_family *fa,
    const char *text)
{
	if (fa->fa_family == 6)
		printf("# ip -f inet6 addr add ::6/128 dev lo\n");
	if (ipt_tproxy_routes(c)) {
		printf("# ip -f %s rule add fwmark %u lookup %u\n",
		    fa->fa_inet, c->ic_mark, c->ic_route_table);
		printf("# ip -f %s route add local default dev lo table %u\n",
		    fa->fa_inet, c->ic_route_table);
	}
	printf("# %s --noflush\n%s", fa->fa_restore, text);
}

/* Undoes what ipt_apply did to every family, after a failure. */
static void
ipt_undo(struct ipt_family *fams, int n, const struct ipt_config *c)
{
	int	i;

	for (i = 0; i < n; i++) {
		ipt_rollback(&fams[i]);
		ipt_route_remove(&fams[i], c, 0);
		if (fams[i].fa_addr_added)
			ipt_ip(&fams[i], 1, NULL, "addr", "del", "::6/128",
			    "dev", "lo", NULL);
	}
}

static int
ipt_apply(struct ipt_family *fams, int n, const struct ipt_config *c)
{
	struct ipt_family	*fa;
	struct ipt_rule		*r;
	char			*text;
	char			 target[64];
	size_t			 j;
	int			 i;

	for (i = 0; i < n; i++) {
		fa = &fams[i];
		if (ipt_snapshot(fa, 0, NULL) == -1)
			return -1;
		fa->fa_fresh = 1;
		for (j = 0; j < fa->fa_rules.rs_len; j++) {
			r = &fa->fa_rules.rs_rules[j];
			if (!ipt_rule_builtin(r))
				continue;
			r->ir_present = ipt_rule_exists(fa, r);
			if (r->ir_present && ipt_rule_target(r->ir_spec,
			    target, sizeof(target)) == 0 &&
			    ipt_chain_ours(r->ir_table, target))
				fa->fa_fresh = 0;
		}
	}
	for (i = 0; i < n; i++) {
		fa = &fams[i];
		if (fa->fa_family == 6 && !ipt_passthrough_present(fa)) {
			if (ipt_ip(fa, 0, NULL, "addr", "add", "::6/128",
			    "dev", "lo", NULL) == 0)
				fa->fa_addr_added = 1;
			else
				log_warnx("could not add ::6/128 to lo: the "
				    "IPv6 inbound passthrough will fail");
		}
		if (ipt_tproxy_routes(c) && ipt_route_setup(fa, c) == -1) {
			ipt_undo(fams, n, c);
			return -1;
		}
	}
	for (i = 0; i < n; i++) {
		fa = &fams[i];
		text = ipt_rules_render(&fa->fa_rules);
		if (ipt_restore(fa, text, 1) == -1) {
			log_warnx("%s --noflush failed; undoing every change",
			    fa->fa_restore);
			free(text);
			ipt_undo(fams, n, c);
			return -1;
		}
		free(text);
		log_info("%s: %zu rules in place%s", fa->fa_restore,
		    fa->fa_rules.rs_len, fa->fa_fresh ? "" : " (updated)");
	}
	return 0;
}

int
iptables_main(int argc, char **argv)
{
	struct ipt_config	 c;
	struct ipt_family	 fams[2];
	char			*text;
	int			 i, n, rc;

	if ((rc = ipt_setup(&c, argc, argv)) != 0) {
		ipt_config_clear(&c);
		return rc == 1 ? 0 : EXIT_USAGE;
	}
	n = c.ic_ipv6 ? 2 : 1;
	for (i = 0; i < n; i++) {
		ipt_family_init(&fams[i], i == 0 ? 4 : 6);
		ipt_rules_build(&fams[i].fa_rules, &c, fams[i].fa_family);
	}
	log_info("istio-iptables: %s mode, outbound to port %u, inbound to "
	    "port %u, proxy uid %s, gid %s%s%s",
	    c.ic_mode == IPT_MODE_TPROXY ? "TPROXY" : "REDIRECT",
	    c.ic_proxy_port, c.ic_inbound_port,
	    c.ic_uids.il_len > 0 ? c.ic_uids.il_items[0] : "-",
	    c.ic_gids.il_len > 0 ? c.ic_gids.il_items[0] : "-",
	    c.ic_ipv6 ? ", IPv6 too" : "", c.ic_dry_run ? " (dry run)" : "");
	rc = 0;
	if (c.ic_dry_run) {
		for (i = 0; i < n; i++) {
			text = ipt_rules_render(&fams[i].fa_rules);
			ipt_print(&c, &fams[i], text);
			free(text);
		}
		if (fflush(stdout) != 0)
			rc = 1;
	} else if (ipt_apply(fams, n, &c) == -1)
		rc = 1;
	for (i = 0; i < n; i++)
		ipt_family_clear(&fams[i]);
	ipt_config_clear(&c);
	return rc;
}

/*
 * A saved "-A CHAIN spec" line of a chain not ours that jumps into one of
 * ours becomes "-D CHAIN spec". Returns 1 when it did.
 */
static int
clean_jump(FILE *f, const char *table, const char *line, size_t len)
{
	char	*copy, *chain, *spec, target[64];
	int	 done = 0;

	if (len < 4 || strncmp(line, "-A ", 3) != 0)
		return 0;
	copy = xmalloc(len + 1);
	memcpy(copy, line, len);
	copy[len] = '\0';
	chain = copy + 3;
	if ((spec = strchr(chain, ' ')) != NULL) {
		*spec++ = '\0';
		if (!ipt_chain_ours(table, chain) && ipt_rule_target(spec,
		    target, sizeof(target)) == 0 &&
		    ipt_chain_ours(table, target)) {
			fprintf(f, "-D %s %s\n", chain, spec);
			done = 1;
		}
	}
	free(copy);
	return done;
}

/*
 * istio-clean-iptables, for one table: deletes every rule outside our
 * chains that jumps into them, the other rules our configuration puts in
 * built-in chains, then empties and deletes our chains. Writes the
 * iptables-restore input to f; returns how many changes it holds.
 */
static int
clean_table(FILE *f, const struct ipt_family *fa, const char *saved,
    const char *table, const struct ipt_ruleset *rs)
{
	const struct ipt_rule	*r;
	const char		*sec, *line, *end;
	char			 chain[64], target[64], *chains[8];
	size_t			 slen, n, i, nchains = 0;
	int			 changes = 0;

	if ((sec = ipt_section(saved, table, &slen)) == NULL)
		return 0;
	fprintf(f, "*%s\n", table);
	for (line = sec; line < sec + slen; line = end + 1) {
		end = line + strcspn(line, "\n");
		if (line[0] == ':' && (n = strcspn(line + 1, " \n")) <
		    sizeof(chain)) {
			memcpy(chain, line + 1, n);
			chain[n] = '\0';
			if (ipt_chain_ours(table, chain) && nchains < 8)
				chains[nchains++] = xstrdup(chain);
			continue;
		}
		changes += clean_jump(f, table, line, (size_t)(end - line));
	}
	for (i = 0; i < rs->rs_len; i++) {
		r = &rs->rs_rules[i];
		if (strcmp(r->ir_table, table) != 0 || !ipt_rule_builtin(r))
			continue;
		if (ipt_rule_target(r->ir_spec, target, sizeof(target)) == 0 &&
		    ipt_chain_ours(table, target))
			continue;	/* found in the save above */
		if (ipt_rule_exists(fa, r)) {
			fprintf(f, "-D %s %s\n", r->ir_chain, r->ir_spec);
			changes++;
		}
	}
	for (i = 0; i < nchains; i++)
		fprintf(f, ":%s - [0:0]\n", chains[i]);
	for (i = 0; i < nchains; i++) {
		fprintf(f, "-X %s\n", chains[i]);
		free(chains[i]);
	}
	fprintf(f, "COMMIT\n");
	return changes + (int)nchains;
}

/* Cleans one family; *touched says whether anything of ours was there. */
static int
clean_family(struct ipt_family *fa, const struct ipt_config *c, int *touched)
{
	struct ipt_config	 mode = *c;
	char			*saved, *text = NULL;
	size_t			 len = 0;
	FILE			*f;
	int			 tproxy, ours, rc = 0, addr;

	*touched = 0;
	/* Without IPv6 support in the kernel there is nothing to clean. */
	if (ipt_snapshot(fa, fa->fa_family == 6, &saved) == -1)
		return fa->fa_family == 6 ? 0 : -1;
	tproxy = strstr(saved, "\n:ISTIO_DIVERT ") != NULL ||
	    strstr(saved, "\n:ISTIO_TPROXY ") != NULL;
	if (tproxy)
		mode.ic_mode = IPT_MODE_TPROXY;
	ipt_rules_build(&fa->fa_rules, &mode, fa->fa_family);

	if ((f = open_memstream(&text, &len)) == NULL)
		fatal("open_memstream");
	ours = clean_table(f, fa, saved, "nat", &fa->fa_rules);
	ours += clean_table(f, fa, saved, "mangle", &fa->fa_rules);
	if (fclose(f) != 0)
		fatal("clean");
	addr = fa->fa_family == 6 && ours > 0 && ipt_passthrough_present(fa);
	*touched = ours > 0;

	if (c->ic_dry_run) {
		if (ours > 0)
			printf("# %s --noflush\n%s", fa->fa_restore, text);
		if (tproxy || mode.ic_mode == IPT_MODE_TPROXY)
			printf("# ip -f %s rule del fwmark %u lookup %u\n"
			    "# ip -f %s route del local default dev lo table "
			    "%u\n", fa->fa_inet, c->ic_mark, c->ic_route_table,
			    fa->fa_inet, c->ic_route_table);
		if (addr)
			printf("# ip -f inet6 addr del ::6/128 dev lo\n");
	} else {
		if (ours > 0 && ipt_restore(fa, text, 1) == -1) {
			log_warnx("%s --noflush failed; undoing every change",
			    fa->fa_restore);
			ipt_rollback(fa);
			rc = -1;
		} else {
			if (mode.ic_mode == IPT_MODE_TPROXY)
				ipt_route_remove(fa, c, 1);
			if (addr)
				ipt_ip(fa, 1, NULL, "addr", "del", "::6/128",
				    "dev", "lo", NULL);
		}
	}
	free(text);
	free(saved);
	return rc;
}

int
iptables_clean_main(int argc, char **argv)
{
	struct ipt_config	 c;
	struct ipt_family	 fams[2];
	int			 i, rc, touched, any = 0;

	if ((rc = ipt_setup(&c, argc, argv)) != 0) {
		ipt_config_clear(&c);
		return rc == 1 ? 0 : EXIT_USAGE;
	}
	rc = 0;
	for (i = 0; i < 2 && rc == 0; i++) {
		ipt_family_init(&fams[i], i == 0 ? 4 : 6);
		if (clean_family(&fams[i], &c, &touched) == -1)
			rc = 1;
		any |= touched;
		ipt_family_clear(&fams[i]);
	}
	if (rc == 0 && !c.ic_dry_run)
		log_info("istio-clean-iptables: %s", any ?
		    "the interception rules are gone" : "nothing to clean");
	if (fflush(stdout) != 0)
		rc = 1;
	ipt_config_clear(&c);
	return rc;
}
