/*
 * The pilot-agent binary: dispatches to its subcommands. Run under the name
 * istio-iptables (a link), it behaves as "pilot-agent istio-iptables".
 */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"

int
main(int argc, char **argv)
{
	log_init();
	(void)argc;
	(void)argv;
	return 0;
}
