/*
 * The application probes: GET /app-health/<container>/{livez,readyz,
 * startupz} and /app-lifecycle/<container>/{prestopz,poststartz}, from the
 * map in ISTIO_KUBE_APP_PROBERS that Istio's injector writes when it
 * rewrites the pod's probes to go through the agent. Each path runs one
 * kind of check against the application, as the kubelet would:
 *
 *   httpGet    GET path on the port; 2xx and 3xx answer 200, other codes
 *              are passed through with up to 10 KiB of the body, a
 *              transport error or timeout is 500. A redirect is followed
 *              (at most 10) when it stays on the same host. With scheme
 *              HTTPS the request goes over TLS without verifying the
 *              application's certificate, as Istio's prober.
 *   tcpSocket  a connection opens: 200, else 500.
 *   grpc       grpc.health.v1.Health/Check says SERVING: 200, else 500.
 *
 * Probes only reach the pod's own addresses: the instance IP (loopback
 * with REWRITE_PROBE_LEGACY_LOCALHOST_DESTINATION=true), or a host the
 * probe names that is loopback or one of the instance IPs.
 */
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "status.h"

#define PROBE_BODY_MAX		10240
#define PROBE_MAX_REDIRECTS	10
#define PROBE_DEFAULT_TIMEOUT	(1000000000LL)

struct probe_op {
	struct probe		*po_probe;
	struct evhttp_request	*po_req;
	struct probe_def	*po_def;
	/* httpGet */
	struct http_request	*po_http;
	char			*po_host;	/* where the request goes */
	int			 po_port;
	char			*po_path;
	char			*po_host_header;
	char			*po_location;	/* of a 3xx answer */
	char			*po_type;	/* its Content-Type */
	int			 po_redirects;
	int			 po_https;	/* this request over TLS */
	/* tcpSocket */
	int			 po_fd;
	struct event		*po_ev;
	/* grpc */
	int			 po_grpc;	/* a check is under way */
	TAILQ_ENTRY(probe_op)	 po_entry;
};

TAILQ_HEAD(probe_ops, probe_op);

struct probe {
	struct status		*pr_st;
	struct probe_def	*pr_defs;
	size_t			 pr_ndefs;
	char			*pr_dest;	/* the pod's address */
	struct probe_grpc	*pr_grpc;	/* made on first use */
	struct ssl_ctx_st	*pr_tls;	/* for HTTPS; ours, made once */
	struct probe_ops	 pr_ops;
};

static int
probe_path_valid(const char *path)
{
	static const char *const health[] = { "livez", "readyz", "startupz",
	    NULL };
	static const char *const lifecycle[] = { "prestopz", "poststartz",
	    NULL };
	const char *const *names;
	const char	*p, *slash;
	int		 i;

	if (strncmp(path, "/app-health/", 12) == 0) {
		p = path + 12;
		names = health;
	} else if (strncmp(path, "/app-lifecycle/", 15) == 0) {
		p = path + 15;
		names = lifecycle;
	} else
		return 0;
	if ((slash = strchr(p, '/')) == NULL || slash == p)
		return 0;
	for (i = 0; names[i] != NULL; i++) {
		if (strcmp(slash + 1, names[i]) == 0)
			return 1;
	}
	return 0;
}

/* A port as Kubernetes writes it: a number, or a string of digits. */
static int
probe_port(json_t *v)
{
	long long	 n = 0;
	const char	*s;
	char		*end;

	if (json_is_integer(v))
		n = json_integer_value(v);
	else if (json_is_string(v)) {
		s = json_string_value(v);
		n = strtoll(s, &end, 10);
		if (*s == '\0' || *end != '\0')
			return -1;
	} else
		return -1;
	return n >= 1 && n <= 65535 ? (int)n : -1;
}

static int
probe_string(json_t *obj, const char *key, char **out, const char *path,
    char *err, size_t errlen)
{
	json_t	*v;

	*out = NULL;
	if ((v = json_object_get(obj, key)) == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "invalid prober config for %s: \"%s\" is "
		    "not a string", path, key);
		return -1;
	}
	if (strlen(json_string_value(v)) != json_string_length(v)) {
		snprintf(err, errlen, "invalid prober config for %s: \"%s\" "
		    "holds a NUL", path, key);
		return -1;
	}
	*out = xstrdup(json_string_value(v));
	return 0;
}

static int
probe_parse_http(json_t *h, struct probe_def *pd, char *err, size_t errlen)
{
	json_t		*hs, *e;
	char		*scheme = NULL;
	size_t		 i;
	int		 rc = -1;

	pd->pd_kind = PROBE_HTTP;
	if ((pd->pd_port = probe_port(json_object_get(h, "port"))) == -1) {
		snprintf(err, errlen, "invalid prober config for %s, the port "
		    "must be int type", pd->pd_path);
		return -1;
	}
	if (probe_string(h, "path", &pd->pd_http_path, pd->pd_path, err,
	    errlen) == -1 || probe_string(h, "host", &pd->pd_host,
	    pd->pd_path, err, errlen) == -1 || probe_string(h, "scheme",
	    &scheme, pd->pd_path, err, errlen) == -1)
		goto out;
	if (pd->pd_http_path == NULL || *pd->pd_http_path != '/') {
		char *p;

		xasprintf(&p, "/%s", pd->pd_http_path != NULL ?
		    pd->pd_http_path : "");
		free(pd->pd_http_path);
		pd->pd_http_path = p;
	}
	if (strpbrk(pd->pd_http_path, " \t\r\n") != NULL) {
		snprintf(err, errlen, "invalid prober config for %s: the path "
		    "holds white space", pd->pd_path);
		goto out;
	}
	if (scheme != NULL && strcasecmp(scheme, "HTTPS") == 0)
		pd->pd_https = 1;
	else if (scheme != NULL && *scheme != '\0' &&
	    strcasecmp(scheme, "HTTP") != 0) {
		snprintf(err, errlen, "invalid prober config for %s: scheme "
		    "\"%s\" is not HTTP or HTTPS", pd->pd_path, scheme);
		goto out;
	}
	hs = json_object_get(h, "httpHeaders");
	if (hs != NULL && !json_is_null(hs)) {
		if (!json_is_array(hs)) {
			snprintf(err, errlen, "invalid prober config for %s: "
			    "httpHeaders is not a list", pd->pd_path);
			goto out;
		}
		pd->pd_headers = xcalloc(json_array_size(hs) + 1,
		    sizeof(*pd->pd_headers));
		json_array_foreach(hs, i, e) {
			struct probe_header *ph = &pd->pd_headers[i];

			if (!json_is_object(e)) {
				snprintf(err, errlen, "invalid prober config "
				    "for %s: a header is not an object",
				    pd->pd_path);
				goto out;
			}
			pd->pd_nheaders++;
			if (probe_string(e, "name", &ph->ph_name, pd->pd_path,
			    err, errlen) == -1 || probe_string(e, "value",
			    &ph->ph_value, pd->pd_path, err, errlen) == -1)
				goto out;
			if (ph->ph_name != NULL && (strpbrk(ph->ph_name,
			    " \t\r\n:") != NULL || (ph->ph_value != NULL &&
			    strpbrk(ph->ph_value, "\r\n") != NULL))) {
				snprintf(err, errlen, "invalid prober config "
				    "for %s: a malformed header", pd->pd_path);
				goto out;
			}
		}
	}
	rc = 0;
out:
	free(scheme);
	return rc;
}

static int
probe_parse_one(const char *path, json_t *v, struct probe_def *pd,
    char *err, size_t errlen)
{
	json_t		*h, *t;
	long long	 secs;

	pd->pd_path = xstrdup(path);
	if (!probe_path_valid(path)) {
		snprintf(err, errlen, "invalid path %s, must be in form of "
		    "/app-health/<container>/(livez|readyz|startupz) or "
		    "/app-lifecycle/<container>/(prestopz|poststartz)", path);
		return -1;
	}
	if (!json_is_object(v)) {
		snprintf(err, errlen, "invalid prober config for %s: not an "
		    "object", path);
		return -1;
	}
	pd->pd_timeout = PROBE_DEFAULT_TIMEOUT;
	if ((t = json_object_get(v, "timeoutSeconds")) != NULL &&
	    !json_is_null(t)) {
		if (!json_is_integer(t) || (secs = json_integer_value(t)) < 0 ||
		    secs > 86400) {
			snprintf(err, errlen, "invalid prober config for %s: "
			    "timeoutSeconds is not a number of seconds", path);
			return -1;
		}
		if (secs > 0)
			pd->pd_timeout = secs * 1000000000LL;
	}
	if ((h = json_object_get(v, "httpGet")) != NULL && json_is_object(h))
		return probe_parse_http(h, pd, err, errlen);
	if ((h = json_object_get(v, "tcpSocket")) != NULL &&
	    json_is_object(h)) {
		pd->pd_kind = PROBE_TCP;
		if ((pd->pd_port = probe_port(json_object_get(h, "port"))) ==
		    -1) {
			snprintf(err, errlen, "invalid prober config for %s, "
			    "the port must be int type", path);
			return -1;
		}
		return probe_string(h, "host", &pd->pd_host, path, err,
		    errlen);
	}
	if ((h = json_object_get(v, "grpc")) != NULL && json_is_object(h)) {
		pd->pd_kind = PROBE_GRPC;
		if ((pd->pd_port = probe_port(json_object_get(h, "port"))) ==
		    -1) {
			snprintf(err, errlen, "invalid prober config for %s, "
			    "the port must be int type", path);
			return -1;
		}
		return probe_string(h, "service", &pd->pd_service, path, err,
		    errlen);
	}
	snprintf(err, errlen, "invalid prober type for %s, must be one of type "
	    "httpGet, tcpSocket or gRPC", path);
	return -1;
}

void
probe_defs_free(struct probe_def *defs, size_t n)
{
	size_t	i, j;

	if (defs == NULL)
		return;
	for (i = 0; i < n; i++) {
		struct probe_def *pd = &defs[i];

		free(pd->pd_path);
		free(pd->pd_host);
		free(pd->pd_http_path);
		free(pd->pd_service);
		for (j = 0; j < pd->pd_nheaders; j++) {
			free(pd->pd_headers[j].ph_name);
			free(pd->pd_headers[j].ph_value);
		}
		free(pd->pd_headers);
	}
	free(defs);
}

/*
 * Parses ISTIO_KUBE_APP_PROBERS into *out (*n definitions; NULL for an
 * empty map). Returns -1 with a message on an error.
 */
int
probe_parse(const char *text, struct probe_def **out, size_t *n, char *err,
    size_t errlen)
{
	json_t		*root, *v;
	json_error_t	 jerr;
	const char	*key;
	struct probe_def *defs = NULL;
	size_t		 count = 0;

	*n = 0;
	*out = NULL;
	if ((root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		snprintf(err, errlen, "failed to decode app prober: %s (line "
		    "%d)", jerr.text, jerr.line);
		return -1;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "failed to decode app prober: not a JSON "
		    "object");
		goto fail;
	}
	if (json_object_size(root) == 0) {
		json_decref(root);
		return 0;
	}
	defs = xcalloc(json_object_size(root), sizeof(*defs));
	json_object_foreach(root, key, v) {
		if (probe_parse_one(key, v, &defs[count++], err, errlen) == -1)
			goto fail;
	}
	json_decref(root);
	*n = count;
	*out = defs;
	return 0;
fail:
	probe_defs_free(defs, count);
	json_decref(root);
	return -1;
}

/* Whether host is loopback or one of the pod's addresses. */
static int
probe_host_own(struct probe *pr, const char *host)
{
	struct config	*cf = pr->pr_st->st_config;
	struct in_addr	 a4;
	struct in6_addr	 a6;
	int		 i;

	if (inet_pton(AF_INET, host, &a4) == 1 &&
	    (ntohl(a4.s_addr) >> 24) == 127)
		return 1;
	if (inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6))
		return 1;
	for (i = 0; i < cf->cf_nips; i++) {
		if (strcmp(cf->cf_ips[i], host) == 0)
			return 1;
	}
	return 0;
}

/*
 * The TLS context every HTTPS probe shares, made once: at start-up when a
 * probe says HTTPS, so that an agent without one never loads OpenSSL's
 * configuration, or at the first redirect of an HTTP probe to https.
 */
static struct ssl_ctx_st *
probe_tls(struct probe *pr, char *err, size_t errlen)
{
	if (pr->pr_tls == NULL)
		pr->pr_tls = http_tls_new(err, errlen);
	return pr->pr_tls;
}

struct probe *
probe_new(struct status *st, char *err, size_t errlen)
{
	struct probe	*pr;
	const char	*v;
	char		 why[512];
	size_t		 i;

	pr = xcalloc(1, sizeof(*pr));
	pr->pr_st = st;
	TAILQ_INIT(&pr->pr_ops);
	if (st->st_config->cf_probe_localhost || st->st_config->cf_nips == 0)
		pr->pr_dest = xstrdup("127.0.0.1");
	else
		pr->pr_dest = xstrdup(st->st_config->cf_ips[0]);
	if ((v = st->st_config->cf_app_probers) == NULL || *v == '\0')
		return pr;
	if (probe_parse(v, &pr->pr_defs, &pr->pr_ndefs, why,
	    sizeof(why)) == -1) {
		snprintf(err, errlen, "invalid value for "
		    "ISTIO_KUBE_APP_PROBERS: %s", why);
		free(pr->pr_dest);
		free(pr);
		return NULL;
	}
	for (i = 0; i < pr->pr_ndefs; i++) {
		struct probe_def *pd = &pr->pr_defs[i];

		if (pd->pd_host != NULL && strcmp(pd->pd_host, "localhost") ==
		    0) {
			free(pd->pd_host);
			pd->pd_host = xstrdup("127.0.0.1");
		}
		if (pd->pd_host != NULL && (*pd->pd_host == '\0' ||
		    !probe_host_own(pr, pd->pd_host))) {
			if (*pd->pd_host != '\0')
				log_warnx("app probe %s: host %s is not this "
				    "pod's; probing %s instead", pd->pd_path,
				    pd->pd_host, pr->pr_dest);
			free(pd->pd_host);
			pd->pd_host = NULL;
		}
	}
	log_info("app probes: %zu configured, sent to %s", pr->pr_ndefs,
	    pr->pr_dest);
	return pr;
}

/*
 * Makes the TLS context when a probe says HTTPS. Not in probe_new, which
 * only checks the environment: this is the first step that loads anything.
 */
int
probe_start(struct probe *pr, char *err, size_t errlen)
{
	size_t	i;

	for (i = 0; i < pr->pr_ndefs; i++) {
		if (pr->pr_defs[i].pd_https && probe_tls(pr, err, errlen) ==
		    NULL)
			return -1;
	}
	return 0;
}

static void
probe_op_free(struct probe_op *po)
{
	TAILQ_REMOVE(&po->po_probe->pr_ops, po, po_entry);
	http_free(po->po_http);
	if (po->po_ev != NULL)
		event_free(po->po_ev);
	if (po->po_fd != -1)
		close(po->po_fd);
	free(po->po_host);
	free(po->po_path);
	free(po->po_host_header);
	free(po->po_location);
	free(po->po_type);
	free(po);
}

/* Requests under way are evhttp's to free; only our records go here. */
void
probe_free(struct probe *pr)
{
	struct probe_op	*po;

	if (pr == NULL)
		return;
	while ((po = TAILQ_FIRST(&pr->pr_ops)) != NULL)
		probe_op_free(po);
	/* Cancels the checks under way; their callbacks do not run. */
	probe_grpc_free(pr->pr_grpc);
	/*
	 * A TLS connection evhttp still holds keeps the context alive: each
	 * SSL holds a reference to it.
	 */
	http_tls_free(pr->pr_tls);
	probe_defs_free(pr->pr_defs, pr->pr_ndefs);
	free(pr->pr_dest);
	free(pr);
}

static void
probe_finish(struct probe_op *po, int code, const char *type,
    struct evbuffer *body)
{
	if (type != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(
		    po->po_req), "Content-Type", type);
	evhttp_send_reply(po->po_req, code, NULL, body);
	probe_op_free(po);
}

static void	probe_http_start(struct probe_op *);

/*
 * A 3xx with a Location on the same host is followed; returns 1 when a new
 * request is under way.
 */
static int
probe_http_redirect(struct probe_op *po)
{
	struct evhttp_uri	*u;
	const char		*scheme, *host, *path, *query;
	char			*newpath;
	int			 port, rc = 0;

	if (po->po_location == NULL)
		return 0;
	if ((u = evhttp_uri_parse_with_flags(po->po_location,
	    EVHTTP_URI_NONCONFORMANT)) == NULL)
		return 0;
	scheme = evhttp_uri_get_scheme(u);
	host = evhttp_uri_get_host(u);
	port = evhttp_uri_get_port(u);
	if (scheme != NULL && strcasecmp(scheme, "http") != 0 &&
	    strcasecmp(scheme, "https") != 0)
		goto out;	/* another scheme: not followed */
	if (host != NULL && strcasecmp(host, po->po_host) != 0)
		goto out;	/* another host: not followed, as Kubernetes */
	if (scheme != NULL)
		po->po_https = strcasecmp(scheme, "https") == 0;
	if (host != NULL) {
		if (port == -1)
			port = po->po_https ? 443 : 80;
		po->po_port = port;
		free(po->po_host_header);
		if (strchr(host, ':') != NULL)
			xasprintf(&po->po_host_header, "[%s]:%d", host, port);
		else
			xasprintf(&po->po_host_header, "%s:%d", host, port);
	}
	path = evhttp_uri_get_path(u);
	query = evhttp_uri_get_query(u);
	if (path == NULL || *path == '\0')
		path = "/";
	if (*path != '/') {
		/* Relative to the directory of the current path. */
		const char *slash = strrchr(po->po_path, '/');
		int dirlen = slash != NULL ? (int)(slash - po->po_path) : 0;

		xasprintf(&newpath, "%.*s/%s%s%s", dirlen, po->po_path, path,
		    query != NULL ? "?" : "", query != NULL ? query : "");
	} else
		xasprintf(&newpath, "%s%s%s", path, query != NULL ? "?" : "",
		    query != NULL ? query : "");
	free(po->po_path);
	po->po_path = newpath;
	rc = 1;
out:
	evhttp_uri_free(u);
	return rc;
}

static void
probe_http_done(const struct http_result *res, void *arg)
{
	struct probe_op	*po = arg;
	const char	*v;
	int		 code = res->hs_code;

	po->po_http = NULL;
	if (res->hs_error != HTTP_ERR_NONE) {
		log_warnx("request to probe app failed: %s, original URL path "
		    "= %s, app URL path = %s", res->hs_reason,
		    po->po_def->pd_path, po->po_path);
		probe_finish(po, 500, NULL, NULL);
		return;
	}
	free(po->po_location);
	free(po->po_type);
	po->po_location = (v = evhttp_find_header(res->hs_headers,
	    "Location")) != NULL ? xstrdup(v) : NULL;
	po->po_type = (v = evhttp_find_header(res->hs_headers,
	    "Content-Type")) != NULL ? xstrdup(v) : NULL;
	if (code >= 300 && code < 400 && probe_http_redirect(po)) {
		if (++po->po_redirects > PROBE_MAX_REDIRECTS) {
			log_warnx("request to probe app failed: stopped after "
			    "%d redirects, original URL path = %s",
			    PROBE_MAX_REDIRECTS, po->po_def->pd_path);
			probe_finish(po, 500, NULL, NULL);
			return;
		}
		probe_http_start(po);
		return;
	}
	if (code >= 200 && code < 400)
		code = 200;
	else if (code < 100 || code > 599)
		code = 500;
	probe_finish(po, code, po->po_type, res->hs_body);
}

/* Headers of the kubelet's request that are passed on to the app. */
static int
probe_forwardable(const char *name)
{
	static const char *const hop[] = { "Host", "Connection", "Keep-Alive",
	    "Proxy-Connection", "Proxy-Authorization", "TE", "Trailer",
	    "Transfer-Encoding", "Upgrade", "Content-Length", NULL };
	int	i;

	for (i = 0; hop[i] != NULL; i++) {
		if (strcasecmp(name, hop[i]) == 0)
			return 0;
	}
	return 1;
}

static void
probe_http_start(struct probe_op *po)
{
	struct probe_def	*pd = po->po_def;
	struct ssl_ctx_st	*tls = NULL;
	struct evkeyvalq	*in;
	struct evkeyval		*kv;
	char			 err[256];
	size_t			 i;

	if (po->po_https && (tls = probe_tls(po->po_probe, err,
	    sizeof(err))) == NULL) {
		log_warnx("request to probe app failed: %s", err);
		probe_finish(po, 500, NULL, NULL);
		return;
	}
	po->po_http = http_new(po->po_probe->pr_st->st_base, "GET",
	    po->po_host, po->po_port, po->po_path, pd->pd_timeout);
	http_tls(po->po_http, tls);
	in = evhttp_request_get_input_headers(po->po_req);
	TAILQ_FOREACH(kv, in, next) {
		if (probe_forwardable(kv->key))
			http_header(po->po_http, kv->key, kv->value);
	}
	for (i = 0; i < pd->pd_nheaders; i++) {
		struct probe_header *ph = &pd->pd_headers[i];

		if (ph->ph_name == NULL || *ph->ph_name == '\0')
			continue;
		if (strcasecmp(ph->ph_name, "Host") == 0) {
			free(po->po_host_header);
			po->po_host_header = xstrdup(ph->ph_value != NULL ?
			    ph->ph_value : "");
		} else if (probe_forwardable(ph->ph_name))
			http_header(po->po_http, ph->ph_name,
			    ph->ph_value != NULL ? ph->ph_value : "");
	}
	if (po->po_host_header != NULL)
		http_header(po->po_http, "Host", po->po_host_header);
	http_callbacks(po->po_http, NULL, probe_http_done, po);
	/* Up to 10 KiB of the body is passed on, as the kubelet reads. */
	http_keep(po->po_http, PROBE_BODY_MAX, 1);
	if (http_start(po->po_http, err, sizeof(err)) == -1) {
		http_free(po->po_http);
		po->po_http = NULL;
		log_warnx("request to probe app failed: %s", err);
		probe_finish(po, 500, NULL, NULL);
	}
}

/*
 * The Host header: the kubelet's, with the status port replaced by the
 * app's port, as Istio does.
 */
static char *
probe_host_header(struct probe_op *po)
{
	const char	*h = evhttp_find_header(evhttp_request_get_input_headers(
	    po->po_req), "Host");
	const char	*colon;
	char		*out;
	int		 status_port = po->po_probe->pr_st->st_config->
			    cf_status_port;

	if (h == NULL || *h == '\0' || strpbrk(h, "\r\n") != NULL)
		return NULL;
	colon = strrchr(h, ':');
	if (colon != NULL && strchr(colon, ']') == NULL &&
	    atoi(colon + 1) == status_port) {
		xasprintf(&out, "%.*s:%d", (int)(colon - h), h,
		    po->po_def->pd_port);
		return out;
	}
	return xstrdup(h);
}

static void
probe_tcp_cb(evutil_socket_t fd, short what, void *arg)
{
	struct probe_op	*po = arg;
	int		 error = 0;
	socklen_t	 len = sizeof(error);

	if (what & EV_TIMEOUT) {
		log_warnx("app probe %s: TCP connect to %s:%d timed out",
		    po->po_def->pd_path, po->po_host, po->po_port);
		probe_finish(po, 500, NULL, NULL);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) == -1)
		error = errno;
	if (error != 0) {
		log_warnx("app probe %s: TCP connect to %s:%d: %s",
		    po->po_def->pd_path, po->po_host, po->po_port,
		    strerror(error));
		probe_finish(po, 500, NULL, NULL);
		return;
	}
	probe_finish(po, 200, NULL, NULL);
}

static void
probe_tcp_start(struct probe_op *po)
{
	struct sockaddr_storage	 ss;
	struct sockaddr_in	*sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t		 sslen;
	struct timeval		 tv;
	int64_t			 t = po->po_def->pd_timeout;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, po->po_host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)po->po_port);
		sslen = sizeof(*sin);
	} else if (inet_pton(AF_INET6, po->po_host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)po->po_port);
		sslen = sizeof(*sin6);
	} else {
		log_warnx("app probe %s: %s is not an address",
		    po->po_def->pd_path, po->po_host);
		probe_finish(po, 500, NULL, NULL);
		return;
	}
	po->po_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (po->po_fd == -1 || (connect(po->po_fd, (struct sockaddr *)&ss,
	    sslen) == -1 && errno != EINPROGRESS)) {
		log_warnx("app probe %s: TCP connect to %s:%d: %s",
		    po->po_def->pd_path, po->po_host, po->po_port,
		    strerror(errno));
		probe_finish(po, 500, NULL, NULL);
		return;
	}
	po->po_ev = event_new(po->po_probe->pr_st->st_base, po->po_fd,
	    EV_WRITE, probe_tcp_cb, po);
	tv = clock_tv(t);
	event_add(po->po_ev, &tv);
}

static void
probe_grpc_done(int serving, const char *why, void *arg)
{
	struct probe_op	*po = arg;

	po->po_grpc = 0;
	if (!serving)
		log_warnx("app probe %s: %s", po->po_def->pd_path, why);
	probe_finish(po, serving ? 200 : 500, NULL, NULL);
}

static void
probe_grpc_start(struct probe_op *po)
{
	struct probe	*pr = po->po_probe;
	const char	*ua;
	char		 err[256], target[300];

	if (pr->pr_grpc == NULL &&
	    (pr->pr_grpc = probe_grpc_new(pr->pr_st->st_base, err,
	    sizeof(err))) == NULL) {
		log_warnx("app probe %s: %s", po->po_def->pd_path, err);
		probe_finish(po, 500, NULL, NULL);
		return;
	}
	if (strchr(po->po_host, ':') != NULL)
		snprintf(target, sizeof(target), "ipv6:[%s]:%d", po->po_host,
		    po->po_port);
	else
		snprintf(target, sizeof(target), "ipv4:%s:%d", po->po_host,
		    po->po_port);
	ua = evhttp_find_header(evhttp_request_get_input_headers(po->po_req),
	    "User-Agent");
	po->po_grpc = 1;
	if (probe_grpc_check(pr->pr_grpc, target, po->po_def->pd_service,
	    po->po_def->pd_timeout, ua, probe_grpc_done, po) == -1) {
		po->po_grpc = 0;
		probe_finish(po, 500, NULL, NULL);
	}
}

/* Answers one /app-health/ or /app-lifecycle/ request. */
int
probe_handle(struct probe *pr, struct evhttp_request *req)
{
	const struct evhttp_uri	*uri = evhttp_request_get_evhttp_uri(req);
	const char		*path = evhttp_uri_get_path(uri);
	struct probe_def	*pd = NULL;
	struct probe_op		*po;
	char			 msg[512];
	size_t			 i;

	for (i = 0; path != NULL && i < pr->pr_ndefs; i++) {
		if (strcmp(pr->pr_defs[i].pd_path, path) == 0) {
			pd = &pr->pr_defs[i];
			break;
		}
	}
	if (pd == NULL) {
		log_warnx("prober does not exist for URL %s", path);
		snprintf(msg, sizeof(msg), "app prober config does not exists "
		    "for %s", path);
		status_reply(req, 400, "text/plain; charset=utf-8", msg);
		return -1;
	}
	po = xcalloc(1, sizeof(*po));
	po->po_probe = pr;
	po->po_req = req;
	po->po_def = pd;
	po->po_fd = -1;
	po->po_host = xstrdup(pd->pd_host != NULL ? pd->pd_host :
	    pr->pr_dest);
	po->po_port = pd->pd_port;
	TAILQ_INSERT_TAIL(&pr->pr_ops, po, po_entry);
	switch (pd->pd_kind) {
	case PROBE_HTTP:
		po->po_https = pd->pd_https;
		po->po_path = xstrdup(pd->pd_http_path);
		po->po_host_header = probe_host_header(po);
		probe_http_start(po);
		break;
	case PROBE_TCP:
		probe_tcp_start(po);
		break;
	case PROBE_GRPC:
		probe_grpc_start(po);
		break;
	}
	return 0;
}
