/*
 * libFuzzer harness for agent/flags.c, the command line parser. The first
 * byte picks the options (pflag's or istio-iptables' messages, Go's
 * single-dash names, unknown flags warned about); the rest is argv, one
 * word per line ("NAME=value" lines before a line "--env--" are the
 * environment). Every input either fails with a message or leaves each
 * value of the table within its type's range; --help is printed too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

#define FUZZ_MAX	64

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct fuzz_opts {
	char		*fo_str;
	const char	*fo_text;
	int		 fo_bool;
	int		 fo_other;
	int64_t		 fo_dur;
	int		 fo_port;
	int		 fo_int;
	int64_t		 fo_i64;
	int		 fo_odd;
};

static int
fuzz_check(const void *v, char *why, size_t len)
{
	if (strchr(v, ',') == NULL)
		return 0;
	snprintf(why, len, "no commas");
	return -1;
}

static int
fuzz_set_odd(const struct flag *fl, void *base, const char *v, char *why,
    size_t len)
{
	struct fuzz_opts	*fo = base;

	(void)fl;
	if (strlen(v) % 2 == 0) {
		snprintf(why, len, "\"%s\" is not of odd length", v);
		return -1;
	}
	fo->fo_odd = (int)strlen(v);
	return 0;
}

#define OFF(m)	offsetof(struct fuzz_opts, m)

static const struct flag fuzz_table[] = {
	{ .fl_name = "str", .fl_short = 's', .fl_type = FLAG_STRING,
	  .fl_offset = OFF(fo_str), .fl_check = fuzz_check,
	  .fl_env = { "STR", "STR2" }, .fl_help = "a string" },
	{ .fl_name = "text", .fl_alias = "txt", .fl_type = FLAG_TEXT,
	  .fl_offset = OFF(fo_text) },
	{ .fl_name = "bool", .fl_short = 'b', .fl_type = FLAG_BOOL,
	  .fl_offset = OFF(fo_bool), .fl_env = { "BOOL", NULL } },
	{ .fl_name = "other", .fl_short = 'o', .fl_type = FLAG_BOOL,
	  .fl_offset = OFF(fo_other) },
	{ .fl_name = "dur", .fl_short = 'd', .fl_type = FLAG_DURATION,
	  .fl_offset = OFF(fo_dur), .fl_env = { "DUR", NULL } },
	{ .fl_name = "port", .fl_short = 'p', .fl_type = FLAG_PORT,
	  .fl_offset = OFF(fo_port), .fl_env = { "PORT", NULL } },
	{ .fl_name = "int", .fl_type = FLAG_INT, .fl_offset = OFF(fo_int) },
	{ .fl_name = "i64", .fl_type = FLAG_INT64, .fl_offset = OFF(fo_i64) },
	{ .fl_name = "odd", .fl_short = 'x', .fl_type = FLAG_FUNC,
	  .fl_set = fuzz_set_odd, .fl_arg = "TEXT", .fl_default = "1" },
	{ .fl_env = { "INT", NULL }, .fl_type = FLAG_INT,
	  .fl_offset = OFF(fo_int) },
	{ .fl_name = "ign", .fl_type = FLAG_IGNORED },
	{ .fl_name = "ignb", .fl_type = FLAG_IGNORED_BOOL },
	{ NULL }
};

static const char *const fuzz_words[] = { "sidecar", "router", NULL };

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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int	 opts[] = { 0, FLAGS_GO_NAMES, FLAGS_IPTABLES,
				    FLAGS_GO_NAMES | FLAGS_WARN_UNKNOWN };
	struct fuzz_opts	 fo;
	struct flags		 fs;
	char			*copy, *line, *save = NULL, *argv[FUZZ_MAX + 1];
	char			 err[512];
	int			 argc = 0, in_env = 1, i;
	FILE			*null;

	if (size < 1 || size > 4096)
		return 0;
	log_set_level("none");
	copy = malloc(size);
	memcpy(copy, data + 1, size - 1);
	copy[size - 1] = '\0';
	fuzz_nenv = 0;
	argv[argc++] = "fuzz";
	for (line = strtok_r(copy, "\n", &save); line != NULL &&
	    argc < FUZZ_MAX; line = strtok_r(NULL, "\n", &save)) {
		if (in_env && strcmp(line, "--env--") == 0)
			in_env = 0;
		else if (in_env && strchr(line, '=') != NULL &&
		    line[0] != '-' && fuzz_nenv < FUZZ_MAX)
			fuzz_env[fuzz_nenv++] = line;
		else
			argv[argc++] = line;
	}
	argv[argc] = NULL;

	memset(&fo, 0, sizeof(fo));
	fo.fo_port = 15000;
	memset(&fs, 0, sizeof(fs));
	fs.fs_usage = "fuzz [flags]";
	fs.fs_table[0] = fuzz_table;
	fs.fs_base[0] = &fo;
	fs.fs_opts = opts[data[0] % 4];
	fs.fs_words = fuzz_words;
	fs.fs_getenv = fuzz_getenv;
	err[0] = '\0';
	if (flags_run(&fs, argc, argv, err, sizeof(err)) == -1) {
		if (err[0] == '\0')
			abort();
	} else {
		if (fo.fo_port < 1 || fo.fo_port > 65535 || fo.fo_int < 0 ||
		    fo.fo_dur < 0 || (fo.fo_bool & ~1) || (fo.fo_other & ~1) ||
		    (fo.fo_str != NULL && strchr(fo.fo_str, ',') != NULL) ||
		    fs.fs_nargs < 0 || fs.fs_nargs >= argc)
			abort();
		for (i = 0; i < fs.fs_nargs; i++)
			if (fs.fs_args[i] == NULL)
				abort();
		if (fs.fs_help && (null = fopen("/dev/null", "w")) != NULL) {
			flags_usage(&fs, null);
			fclose(null);
		}
	}
	flags_free(&fs);
	free(fo.fo_str);
	free(copy);
	return 0;
}
