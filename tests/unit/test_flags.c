/*
 * Unit tests of agent/flags.c, the one command line parser: every syntax
 * form, the types, errors in both dialects, "--", booleans, short letters,
 * variables, unknown flags warned about, and --help.
 */
#include <stddef.h>
#include <stdlib.h>

#include "agent.h"
#include "check.h"

#define NSEC	1000000000LL

struct opts {
	char		*op_str;
	const char	*op_text;
	int		 op_bool;
	int		 op_other;
	int64_t		 op_dur;
	int		 op_port;
	int		 op_int;
	int64_t		 op_i64;
	int		 op_even;
	int		 op_sets;	/* how often op_even's setter ran */
};

/* A check: the string must not be "bad". */
static int
test_not_bad(const void *v, char *why, size_t len)
{
	if (strcmp(v, "bad") != 0)
		return 0;
	snprintf(why, len, "is bad");
	return -1;
}

/* A setter: an even number, the reason naming the value. */
static int
test_set_even(const struct flag *fl, void *base, const char *v, char *why,
    size_t len)
{
	struct opts	*op = base;
	char		*end;
	long		 n = strtol(v, &end, 10);

	(void)fl;
	op->op_sets++;
	if (*v == '\0' || *end != '\0' || n % 2 != 0) {
		snprintf(why, len, "\"%s\" is not even", v);
		return -1;
	}
	op->op_even = (int)n;
	return 0;
}

#define OFF(m)	offsetof(struct opts, m)

static const struct flag test_table[] = {
	{ .fl_name = "str", .fl_short = 's', .fl_type = FLAG_STRING,
	  .fl_offset = OFF(op_str), .fl_check = test_not_bad,
	  .fl_env = { "TEST_STR", "TEST_STR_OLD" }, .fl_help = "a string" },
	{ .fl_name = "text", .fl_alias = "old-text", .fl_type = FLAG_TEXT,
	  .fl_offset = OFF(op_text) },
	{ .fl_name = "bool", .fl_short = 'b', .fl_type = FLAG_BOOL,
	  .fl_offset = OFF(op_bool), .fl_env = { "TEST_BOOL", NULL } },
	{ .fl_name = "other", .fl_short = 'o', .fl_type = FLAG_BOOL,
	  .fl_offset = OFF(op_other) },
	{ .fl_name = "dur", .fl_type = FLAG_DURATION, .fl_offset = OFF(op_dur) },
	{ .fl_name = "port", .fl_short = 'p', .fl_type = FLAG_PORT,
	  .fl_offset = OFF(op_port), .fl_env = { "TEST_PORT", NULL } },
	{ .fl_name = "int", .fl_type = FLAG_INT, .fl_offset = OFF(op_int) },
	{ .fl_name = "i64", .fl_type = FLAG_INT64, .fl_offset = OFF(op_i64) },
	{ .fl_name = "even", .fl_short = 'e', .fl_type = FLAG_FUNC,
	  .fl_set = test_set_even, .fl_arg = "N", .fl_default = "0",
	  .fl_help = "an even number" },
	{ .fl_env = { "TEST_ONLY_VAR", NULL }, .fl_type = FLAG_INT,
	  .fl_offset = OFF(op_int) },
	{ .fl_name = "ignored", .fl_type = FLAG_IGNORED },
	{ .fl_name = "ignored-bool", .fl_type = FLAG_IGNORED_BOOL },
	{ NULL }
};

static const char *const test_words[] = { "sidecar", "router", NULL };

static struct opts	test_op;
static struct flags	test_fs;
static char		test_err[512];

/* Env for the tests: a fixed list, so the process environment is not used. */
static const char	*test_vars[16];

static char *
test_getenv(const char *name)
{
	size_t	i, len = strlen(name);

	for (i = 0; test_vars[i] != NULL; i++) {
		if (strncmp(test_vars[i], name, len) == 0 &&
		    test_vars[i][len] == '=')
			return (char *)(uintptr_t)(test_vars[i] + len + 1);
	}
	return NULL;
}

static void
test_reset(int opts)
{
	flags_free(&test_fs);
	free(test_op.op_str);
	memset(&test_op, 0, sizeof(test_op));
	test_op.op_port = 15000;
	test_op.op_str = xstrdup("dflt");
	memset(&test_fs, 0, sizeof(test_fs));
	test_fs.fs_usage = "test [flags]";
	test_fs.fs_table[0] = test_table;
	test_fs.fs_base[0] = &test_op;
	test_fs.fs_opts = opts;
	test_fs.fs_words = test_words;
	test_fs.fs_getenv = test_getenv;
	test_vars[0] = NULL;
	test_err[0] = '\0';
}

/* Runs argv (NULL-terminated, argv[0] the command) through flags_run. */
static int
test_run(int opts, char **argv)
{
	int	argc = 0;

	test_reset(opts);
	while (argv[argc] != NULL)
		argc++;
	return flags_run(&test_fs, argc, argv, test_err, sizeof(test_err));
}

#define RUN(opts, ...)	test_run(opts, (char *[]){ "test", __VA_ARGS__, NULL })
#define PFLAG		0
#define GO		FLAGS_GO_NAMES
#define IPT		FLAGS_IPTABLES

static void
test_error(const char *want, int opts, char **argv)
{
	CHECK(test_run(opts, argv) == -1);
	if (strcmp(test_err, want) != 0) {
		check_failures++;
		fprintf(stderr, "error \"%s\", want \"%s\"\n", test_err, want);
	}
}

#define ERR(want, opts, ...) \
	test_error(want, opts, (char *[]){ "test", __VA_ARGS__, NULL })

static void
test_syntax(void)
{
	/* Long names, both forms; the last of a repeated flag wins. */
	CHECK(RUN(PFLAG, "--str", "a", "--port=81", "--str=b") == 0);
	CHECK_STR(test_op.op_str, "b");
	CHECK(test_op.op_port == 81);
	/* A value may start with a dash, and be empty. */
	CHECK(RUN(PFLAG, "--str", "-x", "--text=") == 0);
	CHECK_STR(test_op.op_str, "-x");
	CHECK_STR(test_op.op_text, "");
	/* The alias. */
	CHECK(RUN(PFLAG, "--old-text", "t") == 0);
	CHECK_STR(test_op.op_text, "t");

	/* Short letters: "-p 1", "-p1", "-p=1", and booleans together. */
	CHECK(RUN(PFLAG, "-p", "82") == 0 && test_op.op_port == 82);
	CHECK(RUN(PFLAG, "-p83") == 0 && test_op.op_port == 83);
	CHECK(RUN(PFLAG, "-p=84") == 0 && test_op.op_port == 84);
	CHECK(RUN(PFLAG, "-bo") == 0 && test_op.op_bool && test_op.op_other);
	CHECK(RUN(PFLAG, "-bp", "85") == 0 && test_op.op_bool &&
	    test_op.op_port == 85);
	CHECK(RUN(PFLAG, "-bp86") == 0 && test_op.op_port == 86);
	CHECK(RUN(PFLAG, "-b=false") == 0 && !test_op.op_bool);
	CHECK(RUN(PFLAG, "-ss", "x") == 0);	/* -s takes "s" */
	CHECK_STR(test_op.op_str, "s");
	CHECK(test_fs.fs_nargs == 1);

	/* Booleans take a value only after "=". */
	CHECK(RUN(PFLAG, "--bool") == 0 && test_op.op_bool == 1);
	CHECK(RUN(PFLAG, "--bool=false") == 0 && test_op.op_bool == 0);
	CHECK(RUN(PFLAG, "--bool=T", "--other=0") == 0 && test_op.op_bool);
	CHECK(RUN(PFLAG, "--bool", "false") == 0 && test_op.op_bool == 1);
	CHECK(test_fs.fs_nargs == 1);
	CHECK_STR(test_fs.fs_args[0], "false");

	/* Positional arguments, in order, wherever they stand; "-" is one. */
	CHECK(RUN(PFLAG, "a", "--port", "87", "-", "b", "--bool", "c") == 0);
	CHECK(test_fs.fs_nargs == 4);
	CHECK_STR(test_fs.fs_args[0], "a");
	CHECK_STR(test_fs.fs_args[1], "-");
	CHECK_STR(test_fs.fs_args[2], "b");
	CHECK_STR(test_fs.fs_args[3], "c");
	CHECK(test_op.op_port == 87);

	/* "--" ends the flags. */
	CHECK(RUN(PFLAG, "--port", "88", "--", "--port", "89", "-b") == 0);
	CHECK(test_op.op_port == 88 && !test_op.op_bool);
	CHECK(test_fs.fs_nargs == 3);
	CHECK_STR(test_fs.fs_args[0], "--port");
	CHECK_STR(test_fs.fs_args[2], "-b");
	CHECK(RUN(PFLAG, "--") == 0 && test_fs.fs_nargs == 0);

	/* Go's flag package: "-name" is "--name", -h still help. */
	CHECK(RUN(GO, "-port", "90", "-str=g", "-bool") == 0);
	CHECK(test_op.op_port == 90 && test_op.op_bool);
	CHECK_STR(test_op.op_str, "g");
	CHECK(RUN(GO, "-h", "--port", "x") == 0 && test_fs.fs_help);

	/* Ignored flags: with a value, without, lenient at the end. */
	CHECK(RUN(PFLAG, "--ignored", "v", "--ignored-bool", "x",
	    "--ignored") == 0);
	CHECK(test_fs.fs_nargs == 1);
	CHECK_STR(test_fs.fs_args[0], "x");
	CHECK(RUN(PFLAG, "--ignored=v", "--ignored-bool=maybe") == 0);
}

static void
test_types(void)
{
	CHECK(RUN(PFLAG, "--dur", "1m30s") == 0);
	CHECK(test_op.op_dur == 90 * NSEC);
	CHECK(RUN(PFLAG, "--int", "0", "--i64", "-9223372036854775808") == 0);
	CHECK(test_op.op_int == 0 && test_op.op_i64 == INT64_MIN);
	CHECK(RUN(PFLAG, "--i64", "+9223372036854775807") == 0);
	CHECK(test_op.op_i64 == INT64_MAX);
	CHECK(RUN(PFLAG, "--even", "4", "-e", "6") == 0);
	CHECK(test_op.op_even == 6 && test_op.op_sets == 2);

	ERR("invalid argument \"forty\" for \"--dur\" flag: time: invalid "
	    "duration \"forty\"", PFLAG, "--dur", "forty");
	ERR("invalid argument \"-5s\" for \"--dur\" flag: negative duration",
	    PFLAG, "--dur=-5s");
	ERR("invalid argument \"0\" for \"--port\" flag: not a port (1-65535)",
	    PFLAG, "--port", "0");
	ERR("invalid argument \"65536\" for \"--port\" flag: not a port "
	    "(1-65535)", PFLAG, "-p65536");
	ERR("invalid argument \"-1\" for \"--int\" flag: not a whole number "
	    ">= 0", PFLAG, "--int", "-1");
	ERR("invalid argument \"9223372036854775808\" for \"--i64\" flag: not "
	    "an integer from -9223372036854775808 to 9223372036854775807",
	    PFLAG, "--i64", "9223372036854775808");
	ERR("invalid argument \" 5\" for \"--i64\" flag: not an integer from "
	    "-9223372036854775808 to 9223372036854775807", PFLAG, "--i64",
	    " 5");
	ERR("invalid argument \"maybe\" for \"--bool\" flag: not a boolean",
	    PFLAG, "--bool=maybe");
	ERR("invalid argument \"bad\" for \"--str\" flag: is bad", PFLAG,
	    "--str", "bad");
	ERR("invalid argument \"3\" for \"--even\" flag: \"3\" is not even",
	    PFLAG, "-e3");
	/* Every occurrence is checked, as pflag sets each one. */
	ERR("invalid argument \"x\" for \"--port\" flag: not a port (1-65535)",
	    PFLAG, "--port", "x", "--port", "1");
	/* A refused check keeps the old value. */
	CHECK_STR(test_op.op_str, "dflt");
}

static void
test_errors(void)
{
	ERR("unknown flag: --nope", PFLAG, "--nope=1");
	ERR("unknown flag: -nope", GO, "-nope");
	ERR("unknown shorthand flag: 'z' in -bz", PFLAG, "-bz");
	ERR("flag needs an argument: --str", PFLAG, "--str");
	ERR("flag needs an argument: --str", GO, "-str");
	ERR("flag needs an argument: 'p' in -bp", PFLAG, "-bp");
	/* A bad flag is found before any value is looked at. */
	ERR("unknown flag: --nope", PFLAG, "--port", "x", "--nope");

	/* istio-iptables' messages. */
	ERR("unknown flag \"--nope=1\"", IPT, "--nope=1");
	ERR("unknown flag \"-Z\"", IPT, "-Z", "1");
	ERR("flag \"-p\" needs a value", IPT, "-p");
	ERR("flag \"--port\" needs a value", IPT, "--port");
	ERR("bad value for -p/--port: \"0\" is not a port (1-65535)", IPT,
	    "--port=0");
	ERR("bad value for --dur: \"x\" is time: invalid duration \"x\"", IPT,
	    "--dur", "x");
	ERR("bad value for -e/--even: \"5\" is not even", IPT, "-e", "5");
	ERR("bad value for -b/--bool: \"maybe\" is not a boolean", IPT,
	    "--bool=maybe");
}

static void
test_unknown_warned(void)
{
	/* Takes the next word as its value... */
	CHECK(RUN(GO | FLAGS_WARN_UNKNOWN, "--nope", "v", "--port", "91") == 0);
	CHECK(test_fs.fs_nargs == 0 && test_op.op_port == 91);
	/* ...unless it is a flag, */
	CHECK(RUN(GO | FLAGS_WARN_UNKNOWN, "--nope", "--bool") == 0);
	CHECK(test_op.op_bool);
	/* or the first positional argument still to come, */
	CHECK(RUN(GO | FLAGS_WARN_UNKNOWN, "--nope", "router") == 0);
	CHECK(test_fs.fs_nargs == 1);
	/* which it may take once that has come, */
	CHECK(RUN(GO | FLAGS_WARN_UNKNOWN, "sidecar", "--nope", "router") ==
	    0);
	CHECK(test_fs.fs_nargs == 1);
	/* or when its value came after "=". */
	CHECK(RUN(GO | FLAGS_WARN_UNKNOWN, "--nope=1", "v") == 0);
	CHECK(test_fs.fs_nargs == 1);
	CHECK(RUN(GO | FLAGS_WARN_UNKNOWN, "-x") == 0);
	/* An unknown letter is an error all the same. */
	ERR("unknown shorthand flag: 'z' in -bz", FLAGS_WARN_UNKNOWN, "-bz");
}

static void
test_environment(void)
{
	/* A variable fills in a flag not given... */
	test_reset(PFLAG);
	test_vars[0] = "TEST_PORT=92";
	test_vars[1] = "TEST_STR_OLD=old";
	test_vars[2] = "TEST_BOOL=";
	test_vars[3] = NULL;
	CHECK(flags_run(&test_fs, 1, (char *[]){ "test", NULL }, test_err,
	    sizeof(test_err)) == 0);
	CHECK(test_op.op_port == 92);
	CHECK_STR(test_op.op_str, "old");	/* the second variable */
	CHECK(test_op.op_bool == 0);		/* empty is unset */

	/* ...the first variable before the second; a flag wins, even empty. */
	test_reset(PFLAG);
	test_vars[0] = "TEST_STR=new";
	test_vars[1] = "TEST_STR_OLD=old";
	test_vars[2] = "TEST_PORT=93";
	test_vars[3] = "TEST_ONLY_VAR=7";
	test_vars[4] = NULL;
	CHECK(flags_run(&test_fs, 3, (char *[]){ "test", "--port", "94",
	    NULL }, test_err, sizeof(test_err)) == 0);
	CHECK_STR(test_op.op_str, "new");
	CHECK(test_op.op_port == 94);
	CHECK(test_op.op_int == 7);		/* a variable without a flag */
	test_reset(PFLAG);
	test_vars[0] = "TEST_STR=new";
	test_vars[1] = NULL;
	CHECK(flags_run(&test_fs, 2, (char *[]){ "test", "--str=", NULL },
	    test_err, sizeof(test_err)) == 0);
	CHECK_STR(test_op.op_str, "");

	/* A bad variable names itself, in either dialect. */
	test_reset(PFLAG);
	test_vars[0] = "TEST_PORT=x";
	test_vars[1] = NULL;
	CHECK(flags_run(&test_fs, 1, (char *[]){ "test", NULL }, test_err,
	    sizeof(test_err)) == -1);
	CHECK_STR(test_err, "invalid argument \"x\" for \"TEST_PORT\" "
	    "variable: not a port (1-65535)");
	test_reset(IPT);
	test_vars[0] = "TEST_ONLY_VAR=-3";
	test_vars[1] = NULL;
	CHECK(flags_run(&test_fs, 1, (char *[]){ "test", NULL }, test_err,
	    sizeof(test_err)) == -1);
	CHECK_STR(test_err, "bad value for TEST_ONLY_VAR: \"-3\" is not a "
	    "whole number >= 0");

	/* A variable has no flag: "--TEST_ONLY_VAR" is unknown. */
	ERR("unknown flag: --TEST_ONLY_VAR", PFLAG, "--TEST_ONLY_VAR=1");
}

static void
test_steps(void)
{
	/* flags_apply may apply one flag first, then all in order. */
	test_reset(PFLAG);
	CHECK(flags_parse(&test_fs, 5, (char *[]){ "test", "--port", "95",
	    "--str", "s", NULL }, test_err, sizeof(test_err)) == 0);
	CHECK(test_fs.fs_ngiven == 2);
	CHECK(flags_apply(&test_fs, "str", test_err, sizeof(test_err)) == 0);
	CHECK_STR(test_op.op_str, "s");
	CHECK(test_op.op_port == 15000);
	CHECK(flags_apply(&test_fs, NULL, test_err, sizeof(test_err)) == 0);
	CHECK(test_op.op_port == 95);

	/* flags_set, as the ProxyConfig layers use it. */
	CHECK(flags_set(&test_table[5], &test_op, "96", test_err,
	    sizeof(test_err)) == 0 && test_op.op_port == 96);
	CHECK(flags_set(&test_table[5], &test_op, "x", test_err,
	    sizeof(test_err)) == -1);
	CHECK_STR(test_err, "not a port (1-65535)");
}

static void
test_help(void)
{
	CHECK(RUN(PFLAG, "--help") == 0 && test_fs.fs_help);
	CHECK(RUN(PFLAG, "-h") == 0 && test_fs.fs_help);
	CHECK(RUN(PFLAG, "-bh") == 0 && test_fs.fs_help);
	CHECK(RUN(GO, "-help") == 0 && test_fs.fs_help);
	/* --help ends the parse: nothing after it is looked at or applied. */
	CHECK(RUN(PFLAG, "--port", "97", "--help", "--nope", "--port") == 0);
	CHECK(test_fs.fs_help && test_op.op_port == 15000);
	CHECK(RUN(PFLAG, "--help=false", "--port", "98") == 0);
	CHECK(!test_fs.fs_help && test_op.op_port == 98);
	ERR("invalid argument \"maybe\" for \"--help\" flag: not a boolean",
	    PFLAG, "--help=maybe");
	ERR("bad value for -h/--help: \"maybe\" is not a boolean", IPT,
	    "-h=maybe");
	/* A bad flag before it is still an error. */
	ERR("unknown flag: --nope", PFLAG, "--nope", "--help");
}

static void
test_usage(void)
{
	const char	*want = "usage: test [flags]\n\nWhat it does.\n\n"
			    "flags:\n";
	char		*text = NULL;
	size_t		 len = 0;
	FILE		*f;

	test_reset(PFLAG);
	test_fs.fs_about = "What it does.";
	if ((f = open_memstream(&text, &len)) == NULL)
		fatal("open_memstream");
	flags_usage(&test_fs, f);
	fclose(f);
	CHECK(strncmp(text, want, strlen(want)) == 0);
	/* Sorted by long name; the long-only names line up after "-x, ". */
	CHECK(strstr(text, "  -b, --bool bool") != NULL);
	CHECK(strstr(text, "      --dur duration") != NULL);
	CHECK(strstr(text, "--bool bool") < strstr(text, "--dur duration"));
	CHECK(strstr(text, "--dur duration") < strstr(text, "--even N"));
	/* Defaults from the base or the table, variables, help texts. */
	CHECK(strstr(text, "(default 15000; $TEST_PORT)\n") != NULL);
	CHECK(strstr(text, "a string (default \"dflt\"; $TEST_STR or "
	    "$TEST_STR_OLD)\n") != NULL);
	CHECK(strstr(text, "an even number (default 0)\n") != NULL);
	CHECK(strstr(text, "--old-text string") != NULL);
	CHECK(strstr(text, "the same as --text\n") != NULL);
	CHECK(strstr(text, "  -h, --help") != NULL);
	CHECK(strstr(text, "TEST_ONLY_VAR") == NULL);
	CHECK(strstr(text, "\naccepted and ignored, as Istio's: --ignored "
	    "--ignored-bool\n") != NULL);
	CHECK(strstr(text, "\nSee pilot-agent(8)") != NULL);
	free(text);
}

int
main(void)
{
	int	b;

	log_set_level("none");
	CHECK(flags_bool("True", &b) == 0 && b == 1);
	CHECK(flags_bool("0", &b) == 0 && b == 0);
	CHECK(flags_bool("yes", &b) == -1);
	test_syntax();
	test_types();
	test_errors();
	test_unknown_warned();
	test_environment();
	test_steps();
	test_help();
	test_usage();
	test_reset(PFLAG);
	flags_free(&test_fs);
	free(test_op.op_str);
	return check_done("test_flags");
}
