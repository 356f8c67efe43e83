/*
 * "pilot-agent bootstrap": renders the bootstrap that "proxy" would render
 * for epoch 0, from the same flags and environment, and prints it (or writes
 * it atomically to --output FILE). Nothing is written when the input is bad:
 * the exit code is then 2 and the message names the flag, variable or file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bootstrap.h"

static int
command_usage(const char *msg)
{
	fprintf(stderr, "pilot-agent bootstrap: error: %s\n", msg);
	return EXIT_USAGE;
}

/*
 * Takes --output out of argv (in place, keeping the order of the rest), as
 * config_parse does not know it. Returns -1 when it lacks its value.
 */
static int
command_strip_output(int *argcp, char **argv, const char **output)
{
	int	 i, j, argc = *argcp;

	for (i = 1, j = 1; i < argc; i++) {
		if (strcmp(argv[i], "--output") == 0 ||
		    strcmp(argv[i], "-output") == 0) {
			if (i + 1 >= argc)
				return -1;
			*output = argv[++i];
			continue;
		}
		if (strncmp(argv[i], "--output=", 9) == 0 ||
		    strncmp(argv[i], "-output=", 8) == 0) {
			*output = strchr(argv[i], '=') + 1;
			continue;
		}
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[j++] = argv[i++];
			break;
		}
		argv[j++] = argv[i];
	}
	argv[j] = NULL;
	*argcp = j;
	return 0;
}

int
bootstrap_command(int argc, char **argv)
{
	struct config	 cf;
	json_t		*doc = NULL;
	const char	*output = NULL;
	char		 err[1024] = "", **args, *s;
	int		 i, rc = EXIT_USAGE;
	size_t		 len;

	/* A copy of argv: the caller's stays as it was. */
	args = xcalloc((size_t)argc + 1, sizeof(*args));
	for (i = 0; i < argc; i++)
		args[i] = argv[i];
	if (command_strip_output(&argc, args, &output) == -1) {
		free(args);
		return command_usage("flag needs an argument: --output");
	}
	if (output != NULL && *output == '\0') {
		free(args);
		return command_usage("invalid argument \"\" for \"--output\" "
		    "flag: empty path");
	}
	if (config_parse(&cf, argc, args, err, sizeof(err)) == -1) {
		rc = command_usage(err);
		goto out;
	}
	if (cf.cf_help) {
		config_usage(stdout, "bootstrap", "  --output string                        "
		    "write the bootstrap to FILE, not stdout\n");
		rc = 0;
		goto out;
	}
	if ((doc = bootstrap_render(&cf, err, sizeof(err))) == NULL) {
		rc = command_usage(err);
		goto out;
	}
	if (output != NULL) {
		if (bootstrap_write(output, doc, err, sizeof(err)) == -1) {
			fprintf(stderr, "pilot-agent bootstrap: error: %s\n",
			    err);
			rc = 1;
			goto out;
		}
	} else {
		s = bootstrap_dump(doc);
		len = strlen(s);
		if (fwrite(s, 1, len, stdout) != len || putchar('\n') == EOF ||
		    fflush(stdout) == EOF) {
			fprintf(stderr, "pilot-agent bootstrap: error: "
			    "writing the output failed\n");
			free(s);
			rc = 1;
			goto out;
		}
		free(s);
	}
	rc = 0;
out:
	json_decref(doc);
	config_free(&cf);
	free(args);
	return rc;
}
