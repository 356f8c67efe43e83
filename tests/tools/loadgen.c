/*
 * loadgen: HTTP/1.1 load for the supervisor tests and benchmarks.
 *
 *   loadgen --url http://127.0.0.1:PORT/path [--count N | --duration 10s]
 *           [--keepalive] [--concurrency C] [--stop-file PATH]
 *
 * C threads (default 1) send GET requests with plain blocking sockets, until
 * N requests were sent, the duration passed, PATH exists, or SIGINT/SIGTERM
 * arrives (at least one of these must be given). Without --keepalive every
 * request has a connection of its own ("connection: close"); with it a
 * connection is reused until the server says "connection: close".
 *
 * Retries follow the rule for idempotent requests: a request is retried
 * once, on a new connection, only if it was sent on a reused connection and
 * that connection closed before any byte of the response arrived (the
 * server closed an idle keep-alive connection as the request went out).
 * Everything else that is not a 200 counts as failed.
 *
 * At the end it prints one JSON line:
 *   {"sent":..,"ok":..,"failed":..,"retried":..,"p50_us":..,"p90_us":..,
 *    "p99_us":..,"max_us":..,"epochs":{"0":n,...},"errors":[...]}
 * where epochs counts the "epoch=<N>" found in response bodies and errors
 * holds the first few distinct errors. Exit 0 (the caller judges the
 * numbers), 2 on bad usage.
 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"

#define LG_MAX_ERRORS	8
#define LG_TIMEOUT_S	10
#define LG_MAX_RESPONSE	(1024 * 1024)

struct lg_opts {
	char		*lo_host;
	char		*lo_port;
	char		*lo_path;
	char		*lo_hostheader;
	int64_t		 lo_count;	/* -1: no limit */
	int64_t		 lo_duration;	/* ns; -1: no limit */
	int		 lo_keepalive;
	int		 lo_concurrency;
	char		*lo_stop_file;
};

struct lg_worker {
	pthread_t	 w_thread;
	uint64_t	 w_sent, w_ok, w_failed, w_retried;
	uint32_t	*w_lat;		/* microseconds */
	size_t		 w_nlat, w_caplat;
	uint64_t	*w_epochs;
	size_t		 w_nepochs;
};

/* What one exchange on a connection ended with. */
enum lg_result {
	LG_OK,			/* a complete response */
	LG_EARLY_CLOSE,		/* closed before any response byte */
	LG_ERROR		/* anything else; message given */
};

static struct lg_opts		 lg;
static struct addrinfo		*lg_addr;
static atomic_int		 lg_stop;
static atomic_llong		 lg_tickets;
static atomic_int		 lg_running;
static pthread_mutex_t		 lg_err_lock = PTHREAD_MUTEX_INITIALIZER;
static char			*lg_errors[LG_MAX_ERRORS];
static int			 lg_nerrors;

static void
loadgen_usage(const char *why)
{
	if (why != NULL)
		fprintf(stderr, "loadgen: %s\n", why);
	fprintf(stderr, "usage: loadgen --url http://HOST:PORT/PATH "
	    "[--count N | --duration D] [--keepalive]\n"
	    "               [--concurrency C] [--stop-file PATH]\n");
	exit(2);
}

static void
loadgen_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
loadgen_error(const char *fmt, ...)
{
	char	buf[256];
	va_list	ap;
	int	i;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&lg_err_lock);
	for (i = 0; i < lg_nerrors; i++) {
		if (strcmp(lg_errors[i], buf) == 0)
			break;
	}
	if (i == lg_nerrors && lg_nerrors < LG_MAX_ERRORS)
		lg_errors[lg_nerrors++] = xstrdup(buf);
	pthread_mutex_unlock(&lg_err_lock);
}

static uint64_t
loadgen_now_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* http://host[:port][/path]; IPv6 hosts in brackets. */
static void
loadgen_parse_url(const char *url)
{
	const char	*p, *end, *slash;

	if (strncmp(url, "http://", 7) != 0)
		loadgen_usage("--url must start with http://");
	p = url + 7;
	slash = strchr(p, '/');
	end = slash != NULL ? slash : p + strlen(p);
	lg.lo_hostheader = strndup(p, end - p);
	if (*p == '[') {
		const char *rb = memchr(p, ']', end - p);

		if (rb == NULL)
			loadgen_usage("bad IPv6 host in --url");
		lg.lo_host = strndup(p + 1, rb - p - 1);
		p = rb + 1;
	} else {
		const char *colon = memchr(p, ':', end - p);

		lg.lo_host = strndup(p, (colon != NULL ? colon : end) - p);
		p = colon != NULL ? colon : end;
	}
	if (p < end && *p == ':')
		lg.lo_port = strndup(p + 1, end - p - 1);
	else
		lg.lo_port = xstrdup("80");
	lg.lo_path = xstrdup(slash != NULL ? slash : "/");
	if (*lg.lo_host == '\0' || *lg.lo_port == '\0')
		loadgen_usage("bad --url");
}

static void
loadgen_options(int argc, char **argv)
{
	char		 why[128];
	const char	*url = NULL;
	int		 a;

	lg.lo_count = -1;
	lg.lo_duration = -1;
	lg.lo_concurrency = 1;
	for (a = 1; a < argc; a++) {
		const char	*arg = argv[a], *v = NULL, *eq;
		char		 name[64];
		size_t		 n;

		eq = strchr(arg, '=');
		n = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
		if (n >= sizeof(name))
			loadgen_usage("unknown flag");
		memcpy(name, arg, n);
		name[n] = '\0';
		if (strcmp(name, "--keepalive") == 0) {
			lg.lo_keepalive = 1;
			continue;
		}
		if (eq != NULL)
			v = eq + 1;
		else if (a + 1 < argc)
			v = argv[++a];
		if (strcmp(name, "--url") == 0 ||
		    strcmp(name, "--count") == 0 ||
		    strcmp(name, "--duration") == 0 ||
		    strcmp(name, "--concurrency") == 0 ||
		    strcmp(name, "--stop-file") == 0) {
			if (v == NULL) {
				fprintf(stderr, "loadgen: %s needs a value\n",
				    name);
				loadgen_usage(NULL);
			}
		} else {
			fprintf(stderr, "loadgen: unknown flag %s\n", arg);
			loadgen_usage(NULL);
		}
		if (strcmp(name, "--url") == 0)
			url = v;
		else if (strcmp(name, "--count") == 0) {
			char	*end;

			lg.lo_count = strtoll(v, &end, 10);
			if (*v == '\0' || *end != '\0' || lg.lo_count < 0)
				loadgen_usage("bad --count");
		} else if (strcmp(name, "--duration") == 0) {
			if (duration_parse(v, &lg.lo_duration, why,
			    sizeof(why)) == -1 || lg.lo_duration < 0)
				loadgen_usage("bad --duration");
		} else if (strcmp(name, "--concurrency") == 0) {
			char	*end;
			long	 c = strtol(v, &end, 10);

			if (*v == '\0' || *end != '\0' || c < 1 || c > 1024)
				loadgen_usage("bad --concurrency (1-1024)");
			lg.lo_concurrency = (int)c;
		} else
			lg.lo_stop_file = xstrdup(v);
	}
	if (url == NULL)
		loadgen_usage("--url is required");
	if (lg.lo_count < 0 && lg.lo_duration < 0 && lg.lo_stop_file == NULL)
		loadgen_usage("one of --count, --duration, --stop-file is "
		    "required");
	loadgen_parse_url(url);
}

static int
loadgen_connect(void)
{
	struct timeval	tv = { LG_TIMEOUT_S, 0 };
	int		fd, on = 1;

	if ((fd = socket(lg_addr->ai_family, SOCK_STREAM | SOCK_CLOEXEC,
	    0)) == -1) {
		loadgen_error("socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (connect(fd, lg_addr->ai_addr, lg_addr->ai_addrlen) == -1) {
		loadgen_error("connect: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int
loadgen_send_all(int fd, const char *buf, size_t len)
{
	ssize_t	n;

	while (len > 0) {
		if ((n = send(fd, buf, len, MSG_NOSIGNAL)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The value of header name in the head [h, h+len), copied, or 0. */
static int
loadgen_header(const char *head, const char *name, char *out, size_t outlen)
{
	const char	*line, *end, *v;
	size_t		 nlen = strlen(name), vlen;

	for (line = strstr(head, "\r\n"); line != NULL; line = end) {
		line += 2;
		if ((end = strstr(line, "\r\n")) == NULL || end == line)
			return 0;
		if ((size_t)(end - line) <= nlen || line[nlen] != ':' ||
		    strncasecmp(line, name, nlen) != 0)
			continue;
		for (v = line + nlen + 1; *v == ' ' || *v == '\t'; v++)
			;
		vlen = (size_t)(end - v);
		if (vlen >= outlen)
			vlen = outlen - 1;
		memcpy(out, v, vlen);
		out[vlen] = '\0';
		return 1;
	}
	return 0;
}

struct lg_buf {
	char	*b_data;
	size_t	 b_len, b_cap;
};

/* Reads more into b; bytes read, 0 on EOF, -1 on error. */
static ssize_t
loadgen_read(int fd, struct lg_buf *b)
{
	ssize_t	n;

	if (b->b_cap - b->b_len < 4096) {
		b->b_cap = b->b_cap == 0 ? 8192 : b->b_cap * 2;
		b->b_data = xrealloc(b->b_data, b->b_cap + 1);
	}
	do {
		n = recv(fd, b->b_data + b->b_len, b->b_cap - b->b_len, 0);
	} while (n == -1 && errno == EINTR);
	if (n > 0) {
		b->b_len += (size_t)n;
		b->b_data[b->b_len] = '\0';
	}
	return n;
}

/* Decodes a chunked body in place; the decoded length, or -1 if incomplete
 * (or malformed, *bad set). */
static long
loadgen_dechunk(char *p, size_t len, int *bad)
{
	size_t	in = 0, out = 0, n;
	char	*end;

	*bad = 0;
	for (;;) {
		char	*crlf = memmem(p + in, len - in, "\r\n", 2);

		if (crlf == NULL)
			return -1;
		n = strtoul(p + in, &end, 16);
		if (end == p + in) {
			*bad = 1;
			return -1;
		}
		in = (size_t)(crlf - p) + 2;
		if (n == 0) {
			if (len - in < 2 || memmem(p + in, len - in, "\r\n",
			    2) == NULL)
				return -1;
			return (long)out;
		}
		if (len - in < n + 2)
			return -1;
		memmove(p + out, p + in, n);
		out += n;
		in += n + 2;
	}
}

/*
 * One request on fd; *keep tells whether the connection may be reused.
 * status and body (allocated) on LG_OK.
 */
static enum lg_result
loadgen_exchange(int fd, int *keep, int *status, char **body)
{
	struct lg_buf	 b = { NULL, 0, 0 };
	char		*req, value[64], *hend, *nl;
	size_t		 hlen, clen = 0;
	int		 have_clen = 0, chunked = 0, close_after = 0, bad;
	ssize_t		 n;
	long		 dl;
	enum lg_result	 rc = LG_ERROR;

	*keep = 0;
	*body = NULL;
	xasprintf(&req, "GET %s HTTP/1.1\r\nhost: %s\r\nuser-agent: loadgen\r\n"
	    "%s\r\n", lg.lo_path, lg.lo_hostheader,
	    lg.lo_keepalive ? "" : "connection: close\r\n");
	if (loadgen_send_all(fd, req, strlen(req)) == -1) {
		rc = errno == EPIPE || errno == ECONNRESET ? LG_EARLY_CLOSE :
		    LG_ERROR;
		if (rc == LG_ERROR)
			loadgen_error("send: %s", strerror(errno));
		free(req);
		return rc;
	}
	free(req);
	while ((hend = b.b_data != NULL ? strstr(b.b_data, "\r\n\r\n") :
	    NULL) == NULL) {
		if ((n = loadgen_read(fd, &b)) <= 0) {
			if (b.b_len == 0 && (n == 0 || errno == ECONNRESET))
				rc = LG_EARLY_CLOSE;
			else if (n == 0)
				loadgen_error("connection closed in the "
				    "response headers");
			else
				loadgen_error("recv: %s", errno == EAGAIN ?
				    "timeout" : strerror(errno));
			goto out;
		}
		if (b.b_len > LG_MAX_RESPONSE) {
			loadgen_error("response headers too long");
			goto out;
		}
	}
	hlen = (size_t)(hend - b.b_data) + 4;
	if (sscanf(b.b_data, "HTTP/1.%*d %d", status) != 1) {
		nl = strstr(b.b_data, "\r\n");
		loadgen_error("bad status line: %.*s", (int)(nl - b.b_data),
		    b.b_data);
		goto out;
	}
	hend[2] = '\0';		/* for loadgen_header; restored below */
	if (loadgen_header(b.b_data, "content-length", value, sizeof(value))) {
		have_clen = 1;
		clen = strtoul(value, NULL, 10);
	}
	if (loadgen_header(b.b_data, "transfer-encoding", value,
	    sizeof(value)) && strcasecmp(value, "chunked") == 0)
		chunked = 1;
	if (loadgen_header(b.b_data, "connection", value, sizeof(value)) &&
	    strcasecmp(value, "close") == 0)
		close_after = 1;
	if (strncmp(b.b_data, "HTTP/1.0", 8) == 0 &&
	    !(loadgen_header(b.b_data, "connection", value, sizeof(value)) &&
	    strcasecmp(value, "keep-alive") == 0))
		close_after = 1;
	hend[2] = '\r';
	for (;;) {
		size_t	have = b.b_len - hlen;

		if (chunked) {
			char	*copy = xmalloc(have + 1);

			memcpy(copy, b.b_data + hlen, have);
			dl = loadgen_dechunk(copy, have, &bad);
			if (dl >= 0) {
				copy[dl] = '\0';
				*body = copy;
				break;
			}
			free(copy);
			if (bad) {
				loadgen_error("bad chunked body");
				goto out;
			}
		} else if (have_clen && have >= clen) {
			*body = strndup(b.b_data + hlen, clen);
			break;
		}
		if (b.b_len > LG_MAX_RESPONSE) {
			loadgen_error("response too long");
			goto out;
		}
		if ((n = loadgen_read(fd, &b)) <= 0) {
			if (n == 0 && !have_clen && !chunked) {
				/* The body ends with the connection. */
				*body = strndup(b.b_data + hlen,
				    b.b_len - hlen);
				close_after = 1;
				break;
			}
			loadgen_error("%s in the response body", n == 0 ?
			    "connection closed" : errno == EAGAIN ? "timeout" :
			    strerror(errno));
			goto out;
		}
	}
	*keep = lg.lo_keepalive && !close_after;
	rc = LG_OK;
out:
	free(b.b_data);
	return rc;
}

static void
loadgen_count_epoch(struct lg_worker *w, const char *body)
{
	const char	*p = strstr(body, "epoch=");
	char		*end;
	unsigned long	 e;

	if (p == NULL)
		return;
	e = strtoul(p + 6, &end, 10);
	if (end == p + 6 || e > 1000000)
		return;
	if (e >= w->w_nepochs) {
		w->w_epochs = xrealloc(w->w_epochs, (e + 1) * sizeof(uint64_t));
		memset(w->w_epochs + w->w_nepochs, 0,
		    (e + 1 - w->w_nepochs) * sizeof(uint64_t));
		w->w_nepochs = e + 1;
	}
	w->w_epochs[e]++;
}

static void
loadgen_record(struct lg_worker *w, uint64_t us)
{
	if (w->w_nlat == w->w_caplat) {
		w->w_caplat = w->w_caplat == 0 ? 4096 : w->w_caplat * 2;
		w->w_lat = xrealloc(w->w_lat, w->w_caplat * sizeof(*w->w_lat));
	}
	w->w_lat[w->w_nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void *
loadgen_worker_main(void *arg)
{
	struct lg_worker	*w = arg;
	int			 fd = -1, reused = 0, keep, status, retried;
	char			*body;
	uint64_t		 t0;
	enum lg_result		 r;

	while (!atomic_load(&lg_stop)) {
		if (lg.lo_count >= 0 &&
		    atomic_fetch_add(&lg_tickets, 1) >= lg.lo_count)
			break;
		w->w_sent++;
		t0 = loadgen_now_us();
		retried = 0;
		for (;;) {
			if (fd == -1) {
				if ((fd = loadgen_connect()) == -1) {
					r = LG_ERROR;
					break;
				}
				reused = 0;
			}
			r = loadgen_exchange(fd, &keep, &status, &body);
			if (r == LG_OK && keep) {
				reused = 1;
				break;
			}
			close(fd);
			fd = -1;
			if (r != LG_EARLY_CLOSE)
				break;
			if (!reused || retried) {
				loadgen_error("connection closed before the "
				    "response (%s connection)",
				    reused ? "reused" : "new");
				r = LG_ERROR;
				break;
			}
			retried = 1;
			w->w_retried++;
		}
		loadgen_record(w, loadgen_now_us() - t0);
		if (r != LG_OK) {
			w->w_failed++;
			continue;
		}
		if (status == 200) {
			w->w_ok++;
			loadgen_count_epoch(w, body);
		} else {
			w->w_failed++;
			loadgen_error("status %d", status);
		}
		free(body);
	}
	if (fd != -1)
		close(fd);
	atomic_fetch_sub(&lg_running, 1);
	return NULL;
}

static int
loadgen_cmp_u32(const void *a, const void *b)
{
	uint32_t	x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint32_t
loadgen_percentile(const uint32_t *v, size_t n, double p)
{
	size_t	i;

	if (n == 0)
		return 0;
	i = (size_t)(p * (double)n + 0.999999);
	if (i == 0)
		i = 1;
	if (i > n)
		i = n;
	return v[i - 1];
}

static void
loadgen_report(struct lg_worker *ws, int nw)
{
	uint64_t	 sent = 0, ok = 0, failed = 0, retried = 0;
	uint64_t	*epochs = NULL;
	uint32_t	*lat = NULL;
	size_t		 nlat = 0, nepochs = 0, e;
	json_t		*j, *je, *jerr;
	char		*s, key[32];
	int		 i;

	for (i = 0; i < nw; i++) {
		sent += ws[i].w_sent;
		ok += ws[i].w_ok;
		failed += ws[i].w_failed;
		retried += ws[i].w_retried;
		lat = xrealloc(lat, (nlat + ws[i].w_nlat + 1) * sizeof(*lat));
		memcpy(lat + nlat, ws[i].w_lat, ws[i].w_nlat * sizeof(*lat));
		nlat += ws[i].w_nlat;
		if (ws[i].w_nepochs > nepochs) {
			epochs = xrealloc(epochs,
			    ws[i].w_nepochs * sizeof(*epochs));
			memset(epochs + nepochs, 0,
			    (ws[i].w_nepochs - nepochs) * sizeof(*epochs));
			nepochs = ws[i].w_nepochs;
		}
		for (e = 0; e < ws[i].w_nepochs; e++)
			epochs[e] += ws[i].w_epochs[e];
	}
	if (nlat > 0)
		qsort(lat, nlat, sizeof(*lat), loadgen_cmp_u32);
	je = json_object();
	for (e = 0; e < nepochs; e++) {
		if (epochs[e] == 0)
			continue;
		snprintf(key, sizeof(key), "%zu", e);
		json_object_set_new(je, key,
		    json_integer((json_int_t)epochs[e]));
	}
	jerr = json_array();
	for (i = 0; i < lg_nerrors && i < 5; i++)
		json_array_append_new(jerr, json_string(lg_errors[i]));
	j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
	    "sent", (json_int_t)sent, "ok", (json_int_t)ok,
	    "failed", (json_int_t)failed, "retried", (json_int_t)retried,
	    "p50_us", (json_int_t)loadgen_percentile(lat, nlat, 0.50),
	    "p90_us", (json_int_t)loadgen_percentile(lat, nlat, 0.90),
	    "p99_us", (json_int_t)loadgen_percentile(lat, nlat, 0.99),
	    "max_us", (json_int_t)(nlat > 0 ? lat[nlat - 1] : 0),
	    "epochs", je, "errors", jerr);
	s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
	printf("%s\n", s);
	fflush(stdout);
	free(s);
	json_decref(j);
	free(lat);
	free(epochs);
}

int
main(int argc, char **argv)
{
	struct addrinfo	 hints;
	struct lg_worker *ws;
	struct timespec	 tick = { 0, 20 * 1000 * 1000 };
	struct stat	 sb;
	sigset_t	 set;
	uint64_t	 start;
	int		 i, rc, sig;

	loadgen_options(argc, argv);
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(lg.lo_host, lg.lo_port, &hints, &lg_addr)) != 0) {
		fprintf(stderr, "loadgen: %s:%s: %s\n", lg.lo_host, lg.lo_port,
		    gai_strerror(rc));
		return 2;
	}
	/* Workers never see the signals; this thread waits for them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	ws = xcalloc((size_t)lg.lo_concurrency, sizeof(*ws));
	start = loadgen_now_us();
	atomic_store(&lg_running, lg.lo_concurrency);
	for (i = 0; i < lg.lo_concurrency; i++) {
		if (pthread_create(&ws[i].w_thread, NULL, loadgen_worker_main,
		    &ws[i]) != 0) {
			fprintf(stderr, "loadgen: pthread_create failed\n");
			exit(1);
		}
	}
	while (atomic_load(&lg_running) > 0 && !atomic_load(&lg_stop)) {
		sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGINT || sig == SIGTERM)
			atomic_store(&lg_stop, 1);
		if (lg.lo_stop_file != NULL && stat(lg.lo_stop_file, &sb) == 0)
			atomic_store(&lg_stop, 1);
		if (lg.lo_duration >= 0 && (int64_t)(loadgen_now_us() -
		    start) * 1000 >= lg.lo_duration)
			atomic_store(&lg_stop, 1);
	}
	for (i = 0; i < lg.lo_concurrency; i++)
		pthread_join(ws[i].w_thread, NULL);
	loadgen_report(ws, lg.lo_concurrency);

	for (i = 0; i < lg.lo_concurrency; i++) {
		free(ws[i].w_lat);
		free(ws[i].w_epochs);
	}
	free(ws);
	for (i = 0; i < lg_nerrors; i++)
		free(lg_errors[i]);
	freeaddrinfo(lg_addr);
	free(lg.lo_host);
	free(lg.lo_port);
	free(lg.lo_path);
	free(lg.lo_hostheader);
	free(lg.lo_stop_file);
	return 0;
}
