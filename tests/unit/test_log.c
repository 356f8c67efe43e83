/*
 * Unit tests of agent/log.c: Istio's line format, --log_as_json, levels,
 * scope:level specs, strerror for log_warn, and errno preserved.
 */
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"
#include "check.h"

static char	logfile[] = "/tmp/test_log.XXXXXX";

/* Everything written to stderr since the last call. */
static char *
captured(void)
{
	static long	 off;
	FILE		*f = fopen(logfile, "r");
	char		*buf;
	long		 end;

	fflush(stderr);
	fseek(f, 0, SEEK_END);
	end = ftell(f);
	buf = calloc(1, (size_t)(end - off) + 1);
	fseek(f, off, SEEK_SET);
	if (fread(buf, 1, (size_t)(end - off), f) != (size_t)(end - off))
		buf[0] = '\0';
	off = end;
	fclose(f);
	return buf;
}

static int
matches(const char *s, const char *re)
{
	regex_t	r;
	int	ok;

	regcomp(&r, re, REG_EXTENDED | REG_NOSUB);
	ok = regexec(&r, s, 0, NULL, 0) == 0;
	regfree(&r);
	return ok;
}

int
main(void)
{
	char	*s;
	json_t	*j;
	int	 fd, saved = dup(STDERR_FILENO);

	fd = mkstemp(logfile);
	if (fd == -1 || dup2(fd, STDERR_FILENO) == -1)
		return 1;
	log_init();

	log_info("hello %d", 42);
	s = captured();
	CHECK(matches(s, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:"
	    "[0-9]{2}\\.[0-9]{6}Z\tinfo\thello 42\n$"));
	free(s);

	errno = ENOENT;
	log_warn("opening %s", "x");
	CHECK(errno == ENOENT);
	s = captured();
	CHECK(matches(s, "\twarn\topening x: No such file or directory\n$"));
	free(s);

	log_debug("hidden");
	s = captured();
	CHECK(*s == '\0');
	free(s);

	CHECK(log_set_level("default:debug,foo:error") == 0);
	log_debug("shown");
	s = captured();
	CHECK(matches(s, "\tdebug\tshown\n$"));
	free(s);
	CHECK(log_set_level("warning") == 0);
	log_info("quiet");
	s = captured();
	CHECK(*s == '\0');
	free(s);
	CHECK(log_set_level("default:loud") == -1);
	CHECK(log_set_level("info") == 0);

	log_set_scope("emu");
	log_error("scoped");
	s = captured();
	CHECK(matches(s, "Z\terror\temu\tscoped\n$"));
	free(s);
	log_set_scope(NULL);

	/*
	 * A value from outside cannot forge a line: control characters and
	 * bytes that are not UTF-8 are escaped; valid UTF-8 passes as it is.
	 */
	log_warnx("NACK nonce %s", "n1\n2026-01-01T00:00:00.000000Z\tinfo\tforged");
	s = captured();
	CHECK(matches(s, "\twarn\tNACK nonce n1\\\\n2026-01-01T00:00:00"
	    "\\.000000Z\\\\tinfo\\\\tforged\n$"));
	CHECK(strchr(s, '\n') == s + strlen(s) - 1);
	free(s);
	log_info("bytes %s|%s|%s", "\xff\x01", "caf\xc3\xa9", "\xed\xa0\x80");
	s = captured();
	CHECK(matches(s, "\tinfo\tbytes \\\\xff\\\\x01[|]caf\xc3\xa9[|]"
	    "\\\\xed\\\\xa0\\\\x80\n$"));
	free(s);

	log_set_json(1);
	/* Not UTF-8: still a line, with the bytes escaped. */
	log_warnx("bad \xff byte");
	s = captured();
	j = json_loads(s, 0, NULL);
	CHECK(j != NULL);
	CHECK_STR(json_string_value(json_object_get(j, "msg")), "bad \\xff byte");
	json_decref(j);
	free(s);
	log_warnx("a \"quoted\"\tvalue");
	s = captured();
	j = json_loads(s, 0, NULL);
	CHECK(j != NULL);
	CHECK_STR(json_string_value(json_object_get(j, "level")), "warn");
	CHECK_STR(json_string_value(json_object_get(j, "msg")),
	    "a \"quoted\"\tvalue");
	CHECK(matches(json_string_value(json_object_get(j, "time")),
	    "^[0-9-]{10}T[0-9:]{8}\\.[0-9]{6}Z$"));
	json_decref(j);
	free(s);
	unlink(logfile);
	/* Failures are reported on the real standard error. */
	dup2(saved, STDERR_FILENO);
	return check_done("test_log");
}
