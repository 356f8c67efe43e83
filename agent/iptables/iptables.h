/*
 * The iptables/ folder's own declarations: istio-iptables' configuration,
 * its rules and the commands that apply them. Only the files of iptables/
 * (and the tests) include this; agent.h exports the two subcommands.
 */
#ifndef IPTABLES_H
#define IPTABLES_H

#include <stddef.h>
#include <stdint.h>

#include "agent.h"

/* iptables_config.c: their flags and environment, validated. */
enum ipt_mode {
	IPT_MODE_REDIRECT,
	IPT_MODE_TPROXY
};

struct ipt_list {			/* a parsed comma separated list */
	char		**il_items;	/* each item in canonical form */
	size_t		  il_len;
};

struct ipt_config {
	unsigned	 ic_proxy_port;		/* -p: outbound capture */
	unsigned	 ic_inbound_port;	/* -z: inbound capture */
	struct ipt_list	 ic_uids;		/* -u */
	struct ipt_list	 ic_gids;		/* -g */
	int		 ic_uid_default;	/* no -u: ENVOY_USER's uid */
	int		 ic_gid_default;	/* no -g: the uids */
	char		*ic_envoy_user;		/* set when ic_uid_default */
	enum ipt_mode	 ic_mode;		/* -m */
	int		 ic_inbound_all;	/* -b '*' */
	struct ipt_list	 ic_inbound_ports;	/* -b */
	struct ipt_list	 ic_inbound_exclude;	/* -d */
	int		 ic_outbound_all;	/* -i '*' */
	struct ipt_list	 ic_include4;		/* -i, by family */
	struct ipt_list	 ic_include6;
	int		 ic_include_loopback;	/* -i names a loopback range */
	struct ipt_list	 ic_exclude4;		/* -x, by family */
	struct ipt_list	 ic_exclude6;
	struct ipt_list	 ic_outbound_ports;	/* -q */
	struct ipt_list	 ic_outbound_exclude;	/* -o */
	struct ipt_list	 ic_virt_ifaces;	/* -k */
	uint32_t	 ic_mark;		/* -t: TPROXY packet mark */
	uint32_t	 ic_route_table;	/* -r: TPROXY routing table */
	int		 ic_dual_stack;		/* --dual-stack */
	int		 ic_ipv6;		/* ip6tables rules too */
	int		 ic_dry_run;		/* -n */
	int		 ic_restore_format;	/* -f: accepted, unused */
	int		 ic_help;		/* -h */
	int		 ic_log_json;		/* --log_as_json */
	char		*ic_log_level;		/* --log_output_level */
};

int	ipt_config_parse(struct ipt_config *, int, char **,
	    char *(*)(const char *), char *, size_t);
void	ipt_config_clear(struct ipt_config *);
void	ipt_config_set_uid(struct ipt_config *, unsigned long);
int	ipt_setup(struct ipt_config *, int, char **);
void	ipt_list_add(struct ipt_list *, const char *);

/* iptables_rules.c: the rules, and iptables-restore text for them. */
struct ipt_rule {
	const char	*ir_table;	/* "nat" or "mangle" */
	const char	*ir_chain;
	int		 ir_insert;	/* "-I <chain> 1" rather than "-A" */
	char		*ir_spec;	/* what follows the chain name */
	int		 ir_present;	/* already in the kernel: not added */
};

struct ipt_ruleset {
	int		 rs_family;	/* 4 or 6 */
	int		 rs_tproxy;	/* the mangle table is ours too */
	struct ipt_rule	*rs_rules;
	size_t		 rs_len;
};

void	ipt_rules_build(struct ipt_ruleset *, const struct ipt_config *, int);
char	*ipt_rules_render(const struct ipt_ruleset *);
void	ipt_rules_clear(struct ipt_ruleset *);
int	ipt_rule_builtin(const struct ipt_rule *);
int	ipt_rule_target(const char *, char *, size_t);
int	ipt_chain_ours(const char *, const char *);

/* iptables_exec.c: iptables-restore, iptables-save and ip as children. */
int	ipt_exec(char *const [], const char *, char **, int);

#endif
