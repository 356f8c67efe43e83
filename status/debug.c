/*
 * The debug pages of the status port, as JSON: GET /debug/epochs (the
 * supervisor's epochs, pids, states, start times, restarts and backoff) and
 * GET /debug/syncz (what the xDS relay has observed, per type URL).
 */
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <jansson.h>

#include "status.h"

/* Answers with the JSON value, consuming the reference. */
static void
debug_reply_json(struct evhttp_request *req, json_t *v)
{
	char	*s;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
	    evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		json_decref(v);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Allow", "GET");
		status_reply(req, 405, "text/plain; charset=utf-8",
		    "Method Not Allowed\n");
		return;
	}
	if (v == NULL)
		v = json_object();
	s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(v);
	if (s == NULL) {
		status_reply(req, 500, "text/plain; charset=utf-8",
		    "cannot encode JSON\n");
		return;
	}
	s = xrealloc(s, strlen(s) + 2);
	strcat(s, "\n");
	status_reply(req, 200, "application/json", s);
	free(s);
}

void
debug_handle_epochs(struct status *st, struct evhttp_request *req)
{
	json_t	*v = NULL;

	if (st->st_sv != NULL && (evhttp_request_get_command(req) ==
	    EVHTTP_REQ_GET || evhttp_request_get_command(req) ==
	    EVHTTP_REQ_HEAD))
		v = supervise_json(st->st_sv);
	debug_reply_json(req, v);
}

void
debug_handle_syncz(struct status *st, struct evhttp_request *req)
{
	json_t	*v = NULL;

	if (st->st_relay != NULL && (evhttp_request_get_command(req) ==
	    EVHTTP_REQ_GET || evhttp_request_get_command(req) ==
	    EVHTTP_REQ_HEAD))
		v = relay_syncz(st->st_relay);
	debug_reply_json(req, v);
}
