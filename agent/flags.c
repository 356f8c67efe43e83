/*
 * The one command line parser of every subcommand, Go's pflag as Istio uses
 * it: "--name value" and "--name=value"; "-n value", "-nvalue", "-n=value"
 * and the letters of booleans run together ("-nf"); a boolean takes a value
 * only as "--name=value" (a bare "--name" is true); "--" ends the flags;
 * every other word is a positional argument, kept in order wherever it
 * stands. -h and --help are every command's.
 *
 * A command describes its flags in a table of struct flag: names, type,
 * where the value goes, the variables read when the flag is not given, a
 * check of the parsed value, and what --help says. Parsing is in two steps,
 * as the proxy needs: flags_parse reads the words and reports a bad flag
 * (unknown, or without its value) before any value is looked at;
 * flags_apply then stores the values in command line order, each one
 * checked, the last of a repeated flag winning; flags_environment fills in
 * the variables of the flags not given. So a command can put layers of its
 * own (the proxy's ProxyConfig) between the environment and its flags.
 *
 * Messages are pflag's, as Istio's pilot-agent prints them ("invalid
 * argument "x" for "--name" flag: ...", "flag needs an argument: --name"),
 * except for istio-iptables (FLAGS_IPTABLES), which keeps the messages of
 * its first parser that scripts and the tests match ("bad value for
 * -p/--envoy-port: ...").
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent.h"

/* --help's first column is never wider: longer names get a line of their own. */
#define FLAGS_COLUMN	38

/* One flag found on the command line, for flags_apply. */
struct flags_given {
	const struct flag	*fg_flag;
	void			*fg_base;
	const char		*fg_value;
};

/* -h and --help, which every command has; never stored. */
static const struct flag flags_help = {
	.fl_name = "help",
	.fl_short = 'h',
	.fl_type = FLAG_BOOL,
	.fl_help = "print this help"
};

static int	flags_error(char *, size_t, const char *, ...)
		    __attribute__((format(printf, 3, 4)));

static int
flags_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Go's strconv.ParseBool. */
int
flags_bool(const char *s, int *out)
{
	static const char *const yes[] = { "1", "t", "T", "TRUE", "true",
	    "True" };
	static const char *const no[] = { "0", "f", "F", "FALSE", "false",
	    "False" };
	size_t	i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* A table ends with an entry that has neither a name nor a variable. */
static int
flags_end(const struct flag *fl)
{
	return fl->fl_name == NULL && fl->fl_env[0] == NULL;
}

/* A decimal int from min to max, blanks before it allowed (strtol's). */
static int
flags_int(const char *s, long min, long max, int *out)
{
	char	*end;
	long	 v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		return -1;
	*out = (int)v;
	return 0;
}

/* Go's strconv.ParseInt(s, 10, 64): no blanks, the whole int64 range. */
static int
flags_int64(const char *s, int64_t *out)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (*s == '\0' || isspace((unsigned char)*s) || *end != '\0' ||
	    errno != 0)
		return -1;
	*out = v;
	return 0;
}

/* A boolean takes its value only after "=". */
static int
flags_is_bool(const struct flag *fl)
{
	return fl->fl_type == FLAG_BOOL || fl->fl_type == FLAG_IGNORED_BOOL;
}

static int
flags_store_int(const struct flag *fl, void *p, int v, char *why, size_t len)
{
	if (fl->fl_check != NULL && fl->fl_check(&v, why, len) == -1)
		return -1;
	*(int *)p = v;
	return 0;
}

static int
flags_store_int64(const struct flag *fl, void *p, int64_t v, char *why,
    size_t len)
{
	if (fl->fl_check != NULL && fl->fl_check(&v, why, len) == -1)
		return -1;
	*(int64_t *)p = v;
	return 0;
}

/*
 * Parses value as fl's type and stores it at base + fl_offset, after the
 * flag's own check; a refused value leaves the old one. Returns -1 with the
 * reason in why, which does not repeat the value (but an fl_set's names the
 * bad part of it).
 */
int
flags_set(const struct flag *fl, void *base, const char *value, char *why,
    size_t len)
{
	void	*p = (char *)base + fl->fl_offset;
	int64_t	 d;
	int	 i;

	*why = '\0';
	switch (fl->fl_type) {
	case FLAG_STRING:
		if (fl->fl_check != NULL && fl->fl_check(value, why, len) == -1)
			return -1;
		free(*(char **)p);
		*(char **)p = xstrdup(value);
		return 0;
	case FLAG_TEXT:
		if (fl->fl_check != NULL && fl->fl_check(value, why, len) == -1)
			return -1;
		*(const char **)p = value;
		return 0;
	case FLAG_BOOL:
		if (flags_bool(value, &i) == -1)
			return flags_error(why, len, "not a boolean");
		return flags_store_int(fl, p, i, why, len);
	case FLAG_PORT:
		if (flags_int(value, 1, 65535, &i) == -1)
			return flags_error(why, len, "not a port (1-65535)");
		return flags_store_int(fl, p, i, why, len);
	case FLAG_INT:
		if (flags_int(value, 0, INT_MAX, &i) == -1)
			return flags_error(why, len, "not a whole number >= 0");
		return flags_store_int(fl, p, i, why, len);
	case FLAG_DURATION:
		if (duration_parse(value, &d, why, len) == -1)
			return -1;
		if (d < 0)
			return flags_error(why, len, "negative duration");
		return flags_store_int64(fl, p, d, why, len);
	case FLAG_INT64:
		if (flags_int64(value, &d) == -1)
			return flags_error(why, len, "not an integer from %lld "
			    "to %lld", (long long)INT64_MIN,
			    (long long)INT64_MAX);
		return flags_store_int64(fl, p, d, why, len);
	case FLAG_FUNC:
		return fl->fl_set(fl, base, value, why, len);
	case FLAG_IGNORED:
	case FLAG_IGNORED_BOOL:
		return 0;
	}
	return flags_error(why, len, "internal error: flag type %d",
	    (int)fl->fl_type);
}

/*
 * A refused value: the message names the flag (or the variable, when var is
 * set) in the command's words.
 */
static int
flags_refused(const struct flags *fs, const struct flag *fl, const char *var,
    const char *value, const char *why, char *err, size_t errlen)
{
	char	origin[128];

	if (!(fs->fs_opts & FLAGS_IPTABLES)) {
		if (var != NULL)
			return flags_error(err, errlen, "invalid argument \"%s\" "
			    "for \"%s\" variable: %s", value, var, why);
		return flags_error(err, errlen, "invalid argument \"%s\" for "
		    "\"--%s\" flag: %s", value, fl->fl_name, why);
	}
	if (var != NULL)
		snprintf(origin, sizeof(origin), "%s", var);
	else if (fl->fl_short != '\0')
		snprintf(origin, sizeof(origin), "-%c/--%s", fl->fl_short,
		    fl->fl_name);
	else
		snprintf(origin, sizeof(origin), "--%s", fl->fl_name);
	if (fl->fl_type == FLAG_FUNC)
		return flags_error(err, errlen, "bad value for %s: %s", origin,
		    why);
	return flags_error(err, errlen, "bad value for %s: \"%s\" is %s",
	    origin, value, why);
}

/* Whether s is name, of which len bytes are looked at. */
static int
flags_is(const char *s, const char *name, size_t len)
{
	return s != NULL && strlen(s) == len && strncmp(s, name, len) == 0;
}

static const struct flag *
flags_find_long(const struct flags *fs, const char *name, size_t len,
    void **base)
{
	const struct flag	*fl;
	size_t			 t;

	for (t = 0; t < FLAGS_TABLES && fs->fs_table[t] != NULL; t++) {
		for (fl = fs->fs_table[t]; !flags_end(fl); fl++) {
			if (flags_is(fl->fl_name, name, len) ||
			    flags_is(fl->fl_alias, name, len)) {
				*base = fs->fs_base[t];
				return fl;
			}
		}
	}
	*base = NULL;
	return flags_is("help", name, len) ? &flags_help : NULL;
}

static const struct flag *
flags_find_short(const struct flags *fs, char c, void **base)
{
	const struct flag	*fl;
	size_t			 t;

	for (t = 0; t < FLAGS_TABLES && fs->fs_table[t] != NULL; t++) {
		for (fl = fs->fs_table[t]; !flags_end(fl); fl++) {
			if (fl->fl_name != NULL && fl->fl_short == c) {
				*base = fs->fs_base[t];
				return fl;
			}
		}
	}
	*base = NULL;
	return c == 'h' ? &flags_help : NULL;
}

/* Records one flag and its value; --help stops the parse. */
static int
flags_found(struct flags *fs, const struct flag *fl, void *base,
    const char *value, char *err, size_t errlen)
{
	struct flags_given	*fg;
	int			 b;

	if (fl == &flags_help) {
		if (flags_bool(value, &b) == -1)
			return flags_refused(fs, fl, NULL, value,
			    "not a boolean", err, errlen);
		fs->fs_help = b;
		return 0;
	}
	fs->fs_given = xrealloc(fs->fs_given, (fs->fs_ngiven + 1) *
	    sizeof(*fs->fs_given));
	fg = &fs->fs_given[fs->fs_ngiven++];
	fg->fg_flag = fl;
	fg->fg_base = base;
	fg->fg_value = value;
	return 0;
}

static int
flags_in(const char *s, const char *const *list)
{
	for (; list != NULL && *list != NULL; list++) {
		if (strcmp(s, *list) == 0)
			return 1;
	}
	return 0;
}

/*
 * An unknown long name: an error, or for the proxy a warning, as in Istio
 * (an unknown letter is always an error). Its value cannot be told from a
 * positional argument; like a string flag, it takes the next word unless
 * that word is a flag or the first positional argument still to come (the
 * proxy's role).
 */
static int
flags_unknown(struct flags *fs, int argc, char **argv, int *i, size_t len,
    char *err, size_t errlen)
{
	const char	*arg = argv[*i], *next;

	if (!(fs->fs_opts & FLAGS_WARN_UNKNOWN)) {
		if (fs->fs_opts & FLAGS_IPTABLES)
			return flags_error(err, errlen, "unknown flag \"%s\"",
			    arg);
		return flags_error(err, errlen, "unknown flag: %.*s",
		    (int)len, arg);
	}
	log_warnx("unknown flag \"%s\" ignored", arg);
	if (strchr(arg, '=') == NULL && *i + 1 < argc) {
		next = argv[*i + 1];
		if (next[0] != '-' && !(fs->fs_nargs == 0 &&
		    flags_in(next, fs->fs_words)))
			(*i)++;
	}
	return 0;
}

/* "--name[=value]", or "-name[=value]" with FLAGS_GO_NAMES. */
static int
flags_long(struct flags *fs, int argc, char **argv, int *i, char *err,
    size_t errlen)
{
	const struct flag	*fl;
	const char		*arg = argv[*i], *name, *eq, *value;
	void			*base;
	size_t			 len;

	name = arg + (arg[1] == '-' ? 2 : 1);
	eq = strchr(name, '=');
	len = eq != NULL ? (size_t)(eq - name) : strlen(name);
	if ((fl = flags_find_long(fs, name, len, &base)) == NULL)
		return flags_unknown(fs, argc, argv, i,
		    (size_t)(name - arg) + len, err, errlen);
	if (eq != NULL)
		value = eq + 1;
	else if (flags_is_bool(fl))
		value = "true";
	else if (*i + 1 < argc)
		value = argv[++*i];
	else if (fl->fl_type == FLAG_IGNORED)
		return 0;	/* not worth failing for */
	else if (fs->fs_opts & FLAGS_IPTABLES)
		return flags_error(err, errlen, "flag \"%s\" needs a value",
		    arg);
	else
		return flags_error(err, errlen, "flag needs an argument: --%.*s",
		    (int)len, name);
	return flags_found(fs, fl, base, value, err, errlen);
}

/* "-n value", "-nvalue", "-n=value", and booleans run together: "-nf". */
static int
flags_short(struct flags *fs, int argc, char **argv, int *i, char *err,
    size_t errlen)
{
	const struct flag	*fl;
	const char		*arg = argv[*i], *p, *value;
	void			*base;

	for (p = arg + 1; *p != '\0' && !fs->fs_help; ) {
		if ((fl = flags_find_short(fs, *p, &base)) == NULL) {
			if (fs->fs_opts & FLAGS_IPTABLES)
				return flags_error(err, errlen,
				    "unknown flag \"%s\"", arg);
			return flags_error(err, errlen, "unknown shorthand "
			    "flag: '%c' in %s", *p, arg);
		}
		if (p[1] == '=') {
			value = p + 2;
			p += strlen(p);
		} else if (flags_is_bool(fl)) {
			value = "true";
			p++;
		} else if (p[1] != '\0') {
			value = p + 1;
			p += strlen(p);
		} else if (*i + 1 < argc) {
			value = argv[++*i];
			p++;
		} else if (fs->fs_opts & FLAGS_IPTABLES)
			return flags_error(err, errlen, "flag \"%s\" needs a "
			    "value", arg);
		else
			return flags_error(err, errlen, "flag needs an "
			    "argument: '%c' in %s", *p, arg);
		if (flags_found(fs, fl, base, value, err, errlen) == -1)
			return -1;
	}
	return 0;
}

/*
 * Reads argv[1..] (argv[0] is the command): the flags into fs_given, the
 * positional arguments into fs_args, --help into fs_help (which ends the
 * parse: nothing after it is looked at). No value is checked yet. Returns
 * -1 with the message in err for an unknown flag (unless warned about) or
 * a missing value. flags_free releases what it found, either way.
 */
int
flags_parse(struct flags *fs, int argc, char **argv, char *err, size_t errlen)
{
	const char	*arg;
	int		 i, rc;

	fs->fs_given = NULL;
	fs->fs_ngiven = 0;
	fs->fs_args = xcalloc((size_t)argc + 1, sizeof(*fs->fs_args));
	fs->fs_nargs = 0;
	fs->fs_help = 0;
	for (i = 1; i < argc && !fs->fs_help; i++) {
		arg = argv[i];
		if (strcmp(arg, "--") == 0) {
			while (++i < argc)
				fs->fs_args[fs->fs_nargs++] = argv[i];
			break;
		}
		if (arg[0] != '-' || arg[1] == '\0') {
			fs->fs_args[fs->fs_nargs++] = argv[i];
			continue;
		}
		if (arg[1] == '-' || ((fs->fs_opts & FLAGS_GO_NAMES) &&
		    strcmp(arg, "-h") != 0))
			rc = flags_long(fs, argc, argv, &i, err, errlen);
		else
			rc = flags_short(fs, argc, argv, &i, err, errlen);
		if (rc == -1)
			return -1;
	}
	return 0;
}

/*
 * Stores the values of the flags found, in command line order (so the last
 * of a repeated flag wins), each checked; only the flag named only, if
 * set. Returns -1 with a message naming the first refused one.
 */
int
flags_apply(struct flags *fs, const char *only, char *err, size_t errlen)
{
	const struct flags_given	*fg;
	char				 why[256];
	size_t				 i;

	for (i = 0; i < fs->fs_ngiven; i++) {
		fg = &fs->fs_given[i];
		if (only != NULL && strcmp(fg->fg_flag->fl_name, only) != 0)
			continue;
		if (flags_set(fg->fg_flag, fg->fg_base, fg->fg_value, why,
		    sizeof(why)) == -1)
			return flags_refused(fs, fg->fg_flag, NULL,
			    fg->fg_value, why, err, errlen);
	}
	return 0;
}

static int
flags_was_given(const struct flags *fs, const struct flag *fl)
{
	size_t	i;

	for (i = 0; i < fs->fs_ngiven; i++) {
		if (fs->fs_given[i].fg_flag == fl)
			return 1;
	}
	return 0;
}

/*
 * For each flag of the tables not on the command line, the first of its
 * variables that is set and not empty. A flag wins even when empty; an
 * empty variable counts as unset.
 */
int
flags_environment(struct flags *fs, char *err, size_t errlen)
{
	char			*(*get)(const char *);
	const struct flag	*fl;
	const char		*v;
	char			 why[256];
	size_t			 t, j;

	get = fs->fs_getenv != NULL ? fs->fs_getenv : getenv;
	for (t = 0; t < FLAGS_TABLES && fs->fs_table[t] != NULL; t++) {
		for (fl = fs->fs_table[t]; !flags_end(fl); fl++) {
			if (flags_was_given(fs, fl))
				continue;
			for (j = 0; j < 2 && fl->fl_env[j] != NULL; j++) {
				if ((v = get(fl->fl_env[j])) == NULL ||
				    *v == '\0')
					continue;
				if (flags_set(fl, fs->fs_base[t], v, why,
				    sizeof(why)) == -1)
					return flags_refused(fs, fl,
					    fl->fl_env[j], v, why, err,
					    errlen);
				break;
			}
		}
	}
	return 0;
}

/* Parse, then (unless --help) the flags' values, then the environment. */
int
flags_run(struct flags *fs, int argc, char **argv, char *err, size_t errlen)
{
	if (flags_parse(fs, argc, argv, err, errlen) == -1)
		return -1;
	if (fs->fs_help)
		return 0;
	if (flags_apply(fs, NULL, err, errlen) == -1)
		return -1;
	return flags_environment(fs, err, errlen);
}

void
flags_free(struct flags *fs)
{
	free(fs->fs_given);
	free(fs->fs_args);
	fs->fs_given = NULL;
	fs->fs_ngiven = 0;
	fs->fs_args = NULL;
	fs->fs_nargs = 0;
}

/* One flag's line of --help. */
struct flags_line {
	const char	*fn_sort;	/* the long name it is sorted by */
	char		*fn_names;	/* "-p, --envoy-port PORT" */
	char		*fn_help;	/* what it is for, or NULL */
	char		*fn_paren;	/* "default 15001; $ENVOY_PORT", or "" */
};

static int
flags_line_cmp(const void *a, const void *b)
{
	const struct flags_line *x = a, *y = b;

	return strcasecmp(x->fn_sort, y->fn_sort);
}

static const char *
flags_type_name(const struct flag *fl)
{
	if (fl->fl_arg != NULL)
		return fl->fl_arg;
	switch (fl->fl_type) {
	case FLAG_STRING:
	case FLAG_TEXT:
		return "string";
	case FLAG_BOOL:
	case FLAG_IGNORED_BOOL:
		return "bool";
	case FLAG_DURATION:
		return "duration";
	case FLAG_PORT:
		return "port";
	case FLAG_INT:
	case FLAG_INT64:
		return "int";
	case FLAG_FUNC:
	case FLAG_IGNORED:
		break;
	}
	return "value";
}

/* The value at base as --help shows a default; "" when it cannot. */
static void
flags_value_text(const struct flag *fl, const void *base, char *buf,
    size_t len)
{
	const char	*p = (const char *)base + fl->fl_offset;
	const char	*s;

	*buf = '\0';
	if (base == NULL)
		return;
	switch (fl->fl_type) {
	case FLAG_STRING:
	case FLAG_TEXT:
		s = *(const char *const *)(const void *)p;
		snprintf(buf, len, "\"%s\"", s != NULL ? s : "");
		break;
	case FLAG_BOOL:
		snprintf(buf, len, "%s", *(const int *)(const void *)p ?
		    "true" : "false");
		break;
	case FLAG_DURATION:
		duration_format(*(const int64_t *)(const void *)p, buf, len);
		break;
	case FLAG_PORT:
	case FLAG_INT:
		snprintf(buf, len, "%d", *(const int *)(const void *)p);
		break;
	case FLAG_INT64:
		snprintf(buf, len, "%lld",
		    (long long)*(const int64_t *)(const void *)p);
		break;
	case FLAG_FUNC:
	case FLAG_IGNORED:
	case FLAG_IGNORED_BOOL:
		break;
	}
}

/* "default X; $VAR" for what --help says of fl, or "". */
static char *
flags_paren(const struct flag *fl, const void *base)
{
	char	 dflt[256], buf[512];
	size_t	 n = 0, j;

	if (fl->fl_default != NULL)
		snprintf(dflt, sizeof(dflt), "%s", fl->fl_default);
	else
		flags_value_text(fl, base, dflt, sizeof(dflt));
	*buf = '\0';
	if (*dflt != '\0')
		n = (size_t)snprintf(buf, sizeof(buf), "default %s", dflt);
	for (j = 0; j < 2 && fl->fl_env[j] != NULL && n < sizeof(buf); j++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s$%s",
		    j > 0 ? " or " : n > 0 ? "; " : "", fl->fl_env[j]);
	return xstrdup(buf);
}

static void
flags_add_line(struct flags_line **lines, size_t *n, const char *sort,
    char *names, char *help, char *paren)
{
	*lines = xrealloc(*lines, (*n + 1) * sizeof(**lines));
	(*lines)[*n].fn_sort = sort;
	(*lines)[*n].fn_names = names;
	(*lines)[*n].fn_help = help;
	(*lines)[*n].fn_paren = paren;
	(*n)++;
}

/*
 * The lines of the flags of fs's tables, sorted by name as pflag sorts
 * them, with -h last; *ignored tells whether some flag is ignored.
 */
static struct flags_line *
flags_lines(const struct flags *fs, size_t *n, int *ignored)
{
	struct flags_line	*lines = NULL;
	const struct flag	*fl;
	const char		*pad = "";
	char			*names, *help;
	size_t			 t;

	*n = 0;
	*ignored = 0;
	/* Long names line up after the short ones, as in pflag. */
	for (t = 0; t < FLAGS_TABLES && fs->fs_table[t] != NULL; t++)
		for (fl = fs->fs_table[t]; !flags_end(fl); fl++)
			if (fl->fl_short != '\0')
				pad = "    ";
	for (t = 0; t < FLAGS_TABLES && fs->fs_table[t] != NULL; t++) {
		for (fl = fs->fs_table[t]; !flags_end(fl); fl++) {
			if (fl->fl_name == NULL)
				continue;
			if (fl->fl_type == FLAG_IGNORED ||
			    fl->fl_type == FLAG_IGNORED_BOOL) {
				*ignored = 1;
				continue;
			}
			if (fl->fl_short != '\0')
				xasprintf(&names, "-%c, --%s %s", fl->fl_short,
				    fl->fl_name, flags_type_name(fl));
			else
				xasprintf(&names, "%s--%s %s", pad,
				    fl->fl_name, flags_type_name(fl));
			flags_add_line(&lines, n, fl->fl_name, names,
			    fl->fl_help != NULL ? xstrdup(fl->fl_help) : NULL,
			    flags_paren(fl, fs->fs_base[t]));
			if (fl->fl_alias == NULL)
				continue;
			xasprintf(&names, "%s--%s %s", pad, fl->fl_alias,
			    flags_type_name(fl));
			xasprintf(&help, "the same as --%s", fl->fl_name);
			flags_add_line(&lines, n, fl->fl_alias, names, help,
			    xstrdup(""));
		}
	}
	qsort(lines, *n, sizeof(*lines), flags_line_cmp);
	flags_add_line(&lines, n, "help", xstrdup("-h, --help"),
	    xstrdup(flags_help.fl_help), xstrdup(""));
	return lines;
}

/*
 * "  names  help (paren)", the names padded to col; names longer than col
 * get a line of their own, and the parenthesis goes to the next line
 * when the whole would be wider than a terminal.
 */
static void
flags_print_line(FILE *f, size_t col, const struct flags_line *ln)
{
	size_t	len = 2 + col + 1;

	if (strlen(ln->fn_names) > col)
		fprintf(f, "  %s\n  %-*s", ln->fn_names, (int)col, "");
	else
		fprintf(f, "  %-*s", (int)col, ln->fn_names);
	if (ln->fn_help != NULL) {
		fprintf(f, " %s", ln->fn_help);
		len += strlen(ln->fn_help) + 1;
	}
	if (*ln->fn_paren == '\0')
		fprintf(f, "\n");
	else if (ln->fn_help == NULL)
		fprintf(f, " (%s)\n", ln->fn_paren);
	else if (len + 2 + strlen(ln->fn_paren) + 1 > 80)
		fprintf(f, "\n  %-*s (%s)\n", (int)col, "", ln->fn_paren);
	else
		fprintf(f, " (%s)\n", ln->fn_paren);
}

/*
 * --help, made from the tables: every flag with its value's type, what it
 * is for, its default (the value at the table's base, which holds the
 * defaults when --help is asked for) and its variables; then the flags
 * accepted and ignored.
 */
void
flags_usage(const struct flags *fs, FILE *f)
{
	struct flags_line	*lines;
	const struct flag	*fl;
	size_t			 n, i, t, col = 0;
	int			 ignored;

	lines = flags_lines(fs, &n, &ignored);
	for (i = 0; i < n; i++) {
		if (strlen(lines[i].fn_names) > col)
			col = strlen(lines[i].fn_names);
	}
	if (col > FLAGS_COLUMN)
		col = FLAGS_COLUMN;
	fprintf(f, "usage: %s\n\n", fs->fs_usage);
	if (fs->fs_about != NULL)
		fprintf(f, "%s\n\n", fs->fs_about);
	fprintf(f, "flags:\n");
	for (i = 0; i < n; i++) {
		flags_print_line(f, col, &lines[i]);
		free(lines[i].fn_names);
		free(lines[i].fn_help);
		free(lines[i].fn_paren);
	}
	free(lines);
	if (ignored) {
		fprintf(f, "\naccepted and ignored, as Istio's:");
		for (t = 0; t < FLAGS_TABLES && fs->fs_table[t] != NULL; t++)
			for (fl = fs->fs_table[t]; !flags_end(fl); fl++)
				if (fl->fl_type == FLAG_IGNORED ||
				    fl->fl_type == FLAG_IGNORED_BOOL)
					fprintf(f, " --%s", fl->fl_name);
		fprintf(f, "\n");
	}
	fprintf(f, "\nSee pilot-agent(8) for what each flag does.\n");
}
