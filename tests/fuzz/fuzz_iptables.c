/*
 * libFuzzer harness for istio-iptables' flags, environment variables,
 * port lists, CIDRs and rule builder. The input is lines: "NAME=value"
 * lines before a line "--" are the environment, the other lines are the
 * command line. Every input either fails with a message naming what was
 * bad, or gives a configuration whose rules render to iptables-restore
 * input of whole tables, in which every item of every list is valid.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "iptables/iptables.h"

#define FUZZ_MAX	64

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static char	*fuzz_env[FUZZ_MAX];
static size_t	 fuzz_nenv;

static char *
fuzz_getenv(const char *name)
{
	size_t	i, len = strlen(name);

	for (i = 0; i < fuzz_nenv; i++)
		if (strncmp(fuzz_env[i], name, len) == 0 &&
		    fuzz_env[i][len] == '=')
			return fuzz_env[i] + len + 1;
	return NULL;
}

static void
fuzz_check_ports(const struct ipt_list *l)
{
	size_t	i;
	long	v;

	for (i = 0; i < l->il_len; i++) {
		v = strtol(l->il_items[i], NULL, 10);
		if (v < 1 || v > 65535)
			abort();
	}
}

static void
fuzz_check_cidrs(const struct ipt_list *l, int family)
{
	unsigned char	 addr[16];
	char		 buf[64], *slash;
	size_t		 i;

	for (i = 0; i < l->il_len; i++) {
		if (strlen(l->il_items[i]) >= sizeof(buf))
			abort();
		strcpy(buf, l->il_items[i]);
		if ((slash = strchr(buf, '/')) == NULL)
			abort();
		*slash = '\0';
		if (inet_pton(family, buf, addr) != 1)
			abort();
	}
}

static void
fuzz_check_text(const char *text)
{
	size_t	len = strlen(text);

	if (strncmp(text, "*nat\n", 5) != 0 || len < 7 ||
	    strcmp(text + len - 7, "COMMIT\n") != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ipt_config	 c;
	struct ipt_ruleset	 rs;
	char			*copy, *line, *save = NULL, *argv[FUZZ_MAX + 1];
	char			 err[512], *text, target[64];
	size_t			 i;
	int			 argc = 0, in_env = 1, family;

	if (size > 4096)
		return 0;
	copy = malloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	fuzz_nenv = 0;
	argv[argc++] = "istio-iptables";
	for (line = strtok_r(copy, "\n", &save); line != NULL &&
	    argc < FUZZ_MAX; line = strtok_r(NULL, "\n", &save)) {
		if (in_env && strcmp(line, "--") == 0)
			in_env = 0;
		else if (in_env && strchr(line, '=') != NULL &&
		    line[0] != '-' && fuzz_nenv < FUZZ_MAX)
			fuzz_env[fuzz_nenv++] = line;
		else
			argv[argc++] = line;
	}
	argv[argc] = NULL;

	if (ipt_config_parse(&c, argc, argv, fuzz_getenv, err,
	    sizeof(err)) == -1) {
		if (strstr(err, "bad value for ") != err &&
		    strstr(err, "flag") == NULL &&
		    strstr(err, "unexpected argument") == NULL)
			abort();
	} else {
		fuzz_check_ports(&c.ic_inbound_ports);
		fuzz_check_ports(&c.ic_inbound_exclude);
		fuzz_check_ports(&c.ic_outbound_ports);
		fuzz_check_ports(&c.ic_outbound_exclude);
		fuzz_check_cidrs(&c.ic_include4, AF_INET);
		fuzz_check_cidrs(&c.ic_exclude4, AF_INET);
		fuzz_check_cidrs(&c.ic_include6, AF_INET6);
		fuzz_check_cidrs(&c.ic_exclude6, AF_INET6);
		if (c.ic_uids.il_len == 0 || c.ic_gids.il_len == 0)
			abort();
		for (family = 4; family <= 6; family += 2) {
			memset(&rs, 0, sizeof(rs));
			ipt_rules_build(&rs, &c, family);
			for (i = 0; i < rs.rs_len; i++) {
				if (strchr(rs.rs_rules[i].ir_spec, '\n') != NULL)
					abort();
				if (ipt_rule_target(rs.rs_rules[i].ir_spec,
				    target, sizeof(target)) == -1)
					abort();
			}
			text = ipt_rules_render(&rs);
			fuzz_check_text(text);
			free(text);
			ipt_rules_clear(&rs);
		}
	}
	ipt_config_clear(&c);
	free(copy);
	return 0;
}
