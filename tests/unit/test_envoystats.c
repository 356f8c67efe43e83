/*
 * Unit tests of agent/envoystats.c, the parser of the proxy's admin /stats
 * text: lines and values as Envoy writes them and as it does not, a name
 * longer than any fixed buffer, one stat by its exact name, and the sum of
 * active connections the drain waits on.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "check.h"

struct seen {
	int	 lines;
	char	 last_name[128];
	char	 last_value[128];
	int	 stop_at;
};

static int
seen_cb(const char *name, size_t nlen, const char *v, size_t vlen, void *arg)
{
	struct seen	*s = arg;

	s->lines++;
	snprintf(s->last_name, sizeof(s->last_name), "%.*s", (int)nlen, name);
	snprintf(s->last_value, sizeof(s->last_value), "%.*s", (int)vlen, v);
	return s->lines == s->stop_at ? 7 : 0;
}

static long long
get(const char *text, const char *name)
{
	long long	v = -12345;

	if (envoystats_get(text, strlen(text), name, &v) == -1)
		return -12345;
	return v;
}

static long long
active(const char *text)
{
	return envoystats_active(text, strlen(text), 15021, 15090);
}

int
main(void)
{
	struct seen	 s;
	const char	*t;
	char		*big;
	long long	 v;
	size_t		 n, i;

	/* Lines: the name before the first colon, the value trimmed. */
	memset(&s, 0, sizeof(s));
	t = "a.b: 1\n\nno colon here\nc.d:2\r\ne.f:   text value  \nlast: 9";
	CHECK(envoystats_each(t, strlen(t), seen_cb, &s) == 0);
	CHECK(s.lines == 4);
	CHECK_STR(s.last_name, "last");
	CHECK_STR(s.last_value, "9");
	/* The callback stops the walk, and its value is returned. */
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	CHECK(envoystats_each(t, strlen(t), seen_cb, &s) == 7);
	CHECK_STR(s.last_name, "c.d");
	CHECK_STR(s.last_value, "2");
	memset(&s, 0, sizeof(s));
	CHECK(envoystats_each("", 0, seen_cb, &s) == 0 && s.lines == 0);
	/* A histogram's value is passed through whole. */
	memset(&s, 0, sizeof(s));
	t = "cluster.x.upstream_rq_time: P0(nan,1) P25(nan,2.05)\n";
	envoystats_each(t, strlen(t), seen_cb, &s);
	CHECK_STR(s.last_value, "P0(nan,1) P25(nan,2.05)");

	/* Values. */
	CHECK(envoystats_int("0", 1, &v) == 0 && v == 0);
	CHECK(envoystats_int("42", 2, &v) == 0 && v == 42);
	CHECK(envoystats_int("-3", 2, &v) == 0 && v == -3);
	CHECK(envoystats_int("9223372036854775807", 19, &v) == 0 &&
	    v == LLONG_MAX);
	CHECK(envoystats_int("-9223372036854775808", 20, &v) == 0 &&
	    v == LLONG_MIN);
	CHECK(envoystats_int("9223372036854775808", 19, &v) == -1);
	CHECK(envoystats_int("18446744073709551616", 20, &v) == -1);
	CHECK(envoystats_int("", 0, &v) == -1);
	CHECK(envoystats_int("-", 1, &v) == -1);
	CHECK(envoystats_int("5x", 2, &v) == -1);
	CHECK(envoystats_int("1.5", 3, &v) == -1);
	CHECK(envoystats_int("+1", 2, &v) == -1);

	/* One stat by its exact name: not a prefix, not a suffix. */
	t = "server.state_x: 5\nx.server.state: 6\nserver.state: 0\n"
	    "server.state: 3\nlistener_manager.workers_started: 1\n"
	    "cluster_manager.cds.update_success: bad\n";
	CHECK(get(t, "server.state") == 0);
	CHECK(get(t, "listener_manager.workers_started") == 1);
	CHECK(get(t, "server") == -12345);
	CHECK(get(t, "cluster_manager.cds.update_success") == -12345);
	CHECK(get(t, "missing") == -12345);
	CHECK(get("", "server.state") == -12345);
	/* No trailing newline, CRLF, no space after the colon. */
	CHECK(get("a: 1\r\nb:2", "b") == 2);
	CHECK(get("a: 1\r\nb:2", "a") == 1);
	/* A name the text only starts: a cut last line is not a match. */
	CHECK(get("server.state: 0\nserver.sta", "server.sta") == -12345);

	/*
	 * A name far longer than any line buffer: read whole, never cut
	 * into a shorter name that would match.
	 */
	n = 5000;
	big = xmalloc(n + 64);
	memcpy(big, "listener.", 9);
	for (i = 9; i < n; i++)
		big[i] = 'a';
	snprintf(big + n, 64, "_15021.downstream_cx_active: 4\n");
	CHECK(active(big) == -1);
	snprintf(big + n, 64, ".downstream_cx_active: 4\n");
	CHECK(active(big) == 4);
	memcpy(big + 9, "admin.", 6);
	CHECK(active(big) == -1);
	free(big);

	/* The drain's sum, as Istio counts. */
	t = "listener.0.0.0.0_15006.downstream_cx_active: 3\n"
	    "listener.0.0.0.0_15001.downstream_cx_active: 2\n"
	    "listener.0.0.0.0_15006.worker_0.downstream_cx_active: 3\n"
	    "listener.0.0.0.0_15006.worker_1.downstream_cx_active: 0\n"
	    "listener.admin.downstream_cx_active: 1\n"
	    "listener.admin.main_thread.downstream_cx_active: 1\n"
	    "listener.0.0.0.0_15021.downstream_cx_active: 7\n"
	    "listener.0.0.0.0_15090.downstream_cx_active: 8\n"
	    "http.inbound_0.0.0.0_8080.downstream_cx_active: 9\n"
	    "listener.10.0.0.1_8080.downstream_cx_active_x: 1\n"
	    "listener.[__1]_9080.downstream_cx_active: 10\n";
	CHECK(active(t) == 3 + 2 + 1 + 10);
	/* Other ports, or none, change what is left out. */
	CHECK(envoystats_active(t, strlen(t), 0, 0) == 3 + 2 + 7 + 8 + 1 + 10);
	CHECK(envoystats_active(t, strlen(t), 15006, 15001) ==
	    7 + 8 + 1 + 10);
	/* Zero is a count; nothing to count is -1. */
	CHECK(active("listener.x_1.downstream_cx_active: 0\n") == 0);
	CHECK(active("") == -1);
	CHECK(active("listener.admin.downstream_cx_active: 2\n") == -1);
	CHECK(active("server.state: 0\n") == -1);
	/* A value that is not a count is left out, not read as 0. */
	CHECK(active("listener.x_1.downstream_cx_active: -1\n") == -1);
	CHECK(active("listener.x_1.downstream_cx_active: 5 6\n") == -1);
	/* The sum saturates. */
	CHECK(active("listener.a_1.downstream_cx_active: "
	    "9223372036854775807\nlistener.b_2.downstream_cx_active: 5\n") ==
	    LLONG_MAX);

	return check_done("test_envoystats");
}
