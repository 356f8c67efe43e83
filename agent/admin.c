/*
 * Asynchronous requests to the proxy's admin API on 127.0.0.1, with evhttp.
 * Each request gets its own connection and "Connection: close": during a hot
 * restart the admin port passes from one epoch to the next, and a kept-alive
 * connection would keep talking to the old one.
 *
 * The connection is freed by a zero-timeout event after the request's
 * callback: libevent still uses it when the callback returns, and its own
 * free-on-completion covers only successful requests, not failed ones.
 * Requests are kept on a list until then, so that admin_cancel_all can free
 * them all before the event base goes.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "agent.h"

struct admin_request {
	TAILQ_ENTRY(admin_request)	 ar_entry;
	struct evhttp_connection	*ar_conn;
	struct evhttp_request		*ar_req;
	struct event			*ar_free_ev;
	admin_cb			 ar_cb;
	void				*ar_arg;
	int				 ar_done;
};

static TAILQ_HEAD(, admin_request) admin_requests =
    TAILQ_HEAD_INITIALIZER(admin_requests);

static void
admin_free(struct admin_request *ar)
{
	TAILQ_REMOVE(&admin_requests, ar, ar_entry);
	if (!ar->ar_done)
		evhttp_cancel_request(ar->ar_req);
	evhttp_connection_free(ar->ar_conn);
	event_free(ar->ar_free_ev);
	free(ar);
}

static void
admin_free_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	admin_free(arg);
}

static void
admin_done(struct evhttp_request *req, void *arg)
{
	struct admin_request	*ar = arg;
	struct evbuffer		*buf;
	int			 code = -1;
	size_t			 len = 0;
	const char		*body = "";
	struct timeval		 now = { 0, 0 };

	ar->ar_done = 1;
	event_add(ar->ar_free_ev, &now);
	if (req != NULL && evhttp_request_get_response_code(req) > 0) {
		code = evhttp_request_get_response_code(req);
		buf = evhttp_request_get_input_buffer(req);
		len = evbuffer_get_length(buf);
		body = (const char *)evbuffer_pullup(buf, -1);
		if (body == NULL)
			body = "";
	}
	if (ar->ar_cb != NULL)
		ar->ar_cb(code, body, len, ar->ar_arg);
}

/*
 * Sends "method path" to the admin port and calls cb with the status code
 * (-1 for a transport error or a timeout) and the body. The callback is
 * always called once, later, unless the request is cancelled.
 */
struct admin_request *
admin_request(struct event_base *base, int port, const char *method,
    const char *path, int64_t timeout_ns, admin_cb cb, void *arg)
{
	struct admin_request	*ar;
	struct timeval		 tv;
	enum evhttp_cmd_type	 type;

	type = strcmp(method, "POST") == 0 ? EVHTTP_REQ_POST : EVHTTP_REQ_GET;
	ar = xcalloc(1, sizeof(*ar));
	ar->ar_cb = cb;
	ar->ar_arg = arg;
	ar->ar_conn = evhttp_connection_base_new(base, NULL, "127.0.0.1",
	    (unsigned short)port);
	if (ar->ar_conn == NULL)
		fatalx("evhttp_connection_base_new");
	tv = clock_tv(timeout_ns);
	evhttp_connection_set_timeout_tv(ar->ar_conn, &tv);
	evhttp_connection_set_retries(ar->ar_conn, 0);
	ar->ar_free_ev = evtimer_new(base, admin_free_cb, ar);
	ar->ar_req = evhttp_request_new(admin_done, ar);
	evhttp_add_header(evhttp_request_get_output_headers(ar->ar_req),
	    "Host", "127.0.0.1");
	evhttp_add_header(evhttp_request_get_output_headers(ar->ar_req),
	    "Connection", "close");
	TAILQ_INSERT_TAIL(&admin_requests, ar, ar_entry);
	if (evhttp_make_request(ar->ar_conn, ar->ar_req, type, path) == -1) {
		/* evhttp has freed the request. */
		ar->ar_done = 1;
		admin_free(ar);
		return NULL;
	}
	return ar;
}

/* Drops a request: its callback will not be called. */
void
admin_cancel(struct admin_request *ar)
{
	if (ar == NULL)
		return;
	/* A finished request waits only for its deferred free. */
	if (ar->ar_done)
		ar->ar_cb = NULL;
	else
		admin_free(ar);
}

/* Frees every request in flight; for the end of the program. */
void
admin_cancel_all(void)
{
	struct admin_request	*ar;

	while ((ar = TAILQ_FIRST(&admin_requests)) != NULL)
		admin_free(ar);
}
