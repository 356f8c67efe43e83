/* Unit tests of agent/duration.c against Go's time.ParseDuration. */
#include <stdint.h>

#include "agent.h"
#include "check.h"

static void
ok(const char *s, int64_t want)
{
	int64_t	 got = -12345;
	char	 err[128] = "";
	int	 rc = duration_parse(s, &got, err, sizeof(err));

	CHECK(rc == 0);
	CHECK(got == want);
	if (rc != 0 || got != want)
		fprintf(stderr, "  parsing \"%s\": rc %d got %lld want %lld "
		    "(%s)\n", s, rc, (long long)got, (long long)want, err);
}

static void
bad(const char *s, const char *msg)
{
	int64_t	 got;
	char	 err[160] = "";

	CHECK(duration_parse(s, &got, err, sizeof(err)) == -1);
	CHECK_STR(err, msg);
}

static void
fmt(int64_t ns, const char *want)
{
	char	buf[64];

	duration_format(ns, buf, sizeof(buf));
	CHECK_STR(buf, want);
}

int
main(void)
{
	const int64_t ms = 1000000, s = 1000 * ms;

	ok("0", 0);
	ok("+0", 0);
	ok("-0", 0);
	ok("45s", 45 * s);
	ok("1m0s", 60 * s);
	ok("300ms", 300 * ms);
	ok("1h2m3.5s", 3723 * s + 500 * ms);
	ok("1.5h", 5400 * s);
	ok(".5s", 500 * ms);
	ok("1.s", 1 * s);
	ok("10ns", 10);
	ok("10us", 10000);
	ok("10\xc2\xb5s", 10000);
	ok("10\xce\xbcs", 10000);
	ok("-1.5s", -1500 * ms);
	ok("0.000000001s", 1);
	ok("9223372036854775807ns", INT64_MAX);
	ok("2562047h47m16.854775807s", INT64_MAX);
	ok("-9223372036854775808ns", INT64_MIN);
	ok("1h1h", 7200 * s);

	bad("", "time: invalid duration \"\"");
	bad("abc", "time: invalid duration \"abc\"");
	bad("10", "time: missing unit in duration \"10\"");
	bad("10x", "time: unknown unit \"x\" in duration \"10x\"");
	bad("10sec", "time: unknown unit \"sec\" in duration \"10sec\"");
	bad(".s", "time: invalid duration \".s\"");
	bad("-", "time: invalid duration \"-\"");
	bad("1s ", "time: unknown unit \"s \" in duration \"1s \"");
	bad(" 1s", "time: invalid duration \" 1s\"");
	bad("9223372036854775808ns",
	    "time: invalid duration \"9223372036854775808ns\"");
	bad("3000000h", "time: invalid duration \"3000000h\"");
	bad("1e3s", "time: unknown unit \"e\" in duration \"1e3s\"");

	fmt(0, "0s");
	fmt(45 * s, "45s");
	fmt(60 * s, "1m0s");
	fmt(300 * ms, "300ms");
	fmt(3723 * s + 500 * ms, "1h2m3.5s");
	fmt(1500, "1.5\xc2\xb5s");
	fmt(10, "10ns");
	fmt(-1500 * ms, "-1.5s");
	fmt(INT64_MAX, "2562047h47m16.854775807s");
	return check_done("test_duration");
}
