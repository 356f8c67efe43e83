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

static int
command_check_output(const void *v, char *why, size_t len)
{
	if (*(const char *)v != '\0')
		return 0;
	snprintf(why, len, "empty path");
	return -1;
}

/* bootstrap's flag beyond proxy's, stored into the const char * given. */
static const struct flag command_flags[] = {
	{ .fl_name = "output", .fl_type = FLAG_TEXT, .fl_offset = 0,
	  .fl_check = command_check_output, .fl_arg = "string",
	  .fl_help = "write the bootstrap to FILE, not stdout",
	  .fl_default = "" },
	{ NULL }
};

int
bootstrap_command(int argc, char **argv)
{
	struct config	 cf;
	json_t		*doc = NULL;
	const char	*output = NULL;
	char		 err[1024] = "", *s;
	int		 rc = EXIT_USAGE;
	size_t		 len;

	if (config_parse_extra(&cf, command_flags, &output, argc, argv, err,
	    sizeof(err)) == -1) {
		rc = command_usage(err);
		goto out;
	}
	if (cf.cf_help) {
		config_usage(stdout, "bootstrap", command_flags);
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
	return rc;
}
