/*
 * Asynchronous requests to the proxy's admin API on 127.0.0.1, for the
 * supervisor: a thin layer over the one HTTP client (http.c), which opens
 * a connection per request, as the admin port passes from one epoch to
 * the next during a hot restart. Requests in flight are kept on a list so
 * that admin_cancel_all can free them all before the event base goes.
 */
#include <stdlib.h>
#include <sys/queue.h>

#include <event2/buffer.h>

#include "agent.h"

struct admin_request {
	TAILQ_ENTRY(admin_request)	 ar_entry;
	struct http_request		*ar_http;
	admin_cb			 ar_cb;
	void				*ar_arg;
	int				 ar_calling; /* in ar_cb */
};

static TAILQ_HEAD(, admin_request) admin_requests =
    TAILQ_HEAD_INITIALIZER(admin_requests);

static void
admin_done(const struct http_result *res, void *arg)
{
	struct admin_request	*ar = arg;
	const char		*body = "";
	size_t			 len = 0;
	int			 code = -1;

	/* The client frees ar_http when this returns. */
	TAILQ_REMOVE(&admin_requests, ar, ar_entry);
	if (res->hs_error == HTTP_ERR_NONE && res->hs_code > 0) {
		code = res->hs_code;
		len = evbuffer_get_length(res->hs_body);
		if ((body = (const char *)evbuffer_pullup(res->hs_body, -1)) ==
		    NULL)
			body = "";
	}
	ar->ar_calling = 1;
	if (ar->ar_cb != NULL)
		ar->ar_cb(code, body, len, ar->ar_arg);
	free(ar);
}

/*
 * Sends "method path" to the admin port and calls cb with the status code
 * (-1 for a transport error, a timeout or a body cut short) and the body.
 * The callback is always called once, later, unless the request is
 * cancelled. NULL when the request cannot be made.
 */
struct admin_request *
admin_request(struct event_base *base, int port, const char *method,
    const char *path, int64_t timeout_ns, admin_cb cb, void *arg)
{
	struct admin_request	*ar;
	char			 err[256];

	ar = xcalloc(1, sizeof(*ar));
	ar->ar_cb = cb;
	ar->ar_arg = arg;
	ar->ar_http = http_new(base, method, "127.0.0.1", port, path,
	    timeout_ns);
	http_header(ar->ar_http, "Host", "127.0.0.1");
	http_callbacks(ar->ar_http, NULL, admin_done, ar);
	if (http_start(ar->ar_http, err, sizeof(err)) == -1) {
		log_warnx("admin %s %s: %s", method, path, err);
		http_free(ar->ar_http);
		free(ar);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&admin_requests, ar, ar_entry);
	return ar;
}

/*
 * Drops a request: its callback will not be called. Inside the request's
 * own callback it does nothing (the request is freed when it returns).
 */
void
admin_cancel(struct admin_request *ar)
{
	if (ar == NULL || ar->ar_calling)
		return;
	TAILQ_REMOVE(&admin_requests, ar, ar_entry);
	http_free(ar->ar_http);
	free(ar);
}

/* Frees every request in flight; for the end of the program. */
void
admin_cancel_all(void)
{
	struct admin_request	*ar;

	while ((ar = TAILQ_FIRST(&admin_requests)) != NULL)
		admin_cancel(ar);
}
