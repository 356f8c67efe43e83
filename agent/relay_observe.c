/*
 * What the relay observes, per type URL: requests, responses, ACKs and
 * NACKs (with the proxy's error message), the versions and nonces last
 * sent, accepted and rejected, resource counts and bytes. Each relayed
 * stream keeps one struct relay_obs for /debug/syncz and the relay keeps
 * one more, of totals, for the metrics. Runs on the libevent thread.
 *
 * A request is classified as the xDS protocol defines it: one without a
 * response nonce subscribes (the first of a type, or a change of the names
 * wanted); one with a nonce answers that response, a NACK when it carries
 * error_detail and an ACK otherwise.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "agent.h"
#include "relay.h"

static int64_t
relay_observe_now_ms(void)
{
	struct timeval	 tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void
relay_observe_set(char **field, const char *value)
{
	free(*field);
	*field = xstrdup(value != NULL ? value : "");
}

void
relay_observe_init(struct relay_obs *ob)
{
	memset(ob, 0, sizeof(*ob));
	TAILQ_INIT(&ob->ob_types);
}

void
relay_observe_clear(struct relay_obs *ob)
{
	struct relay_type	*ty;

	while ((ty = TAILQ_FIRST(&ob->ob_types)) != NULL) {
		TAILQ_REMOVE(&ob->ob_types, ty, ty_entry);
		free(ty->ty_url);
		free(ty->ty_sent_version);
		free(ty->ty_sent_nonce);
		free(ty->ty_acked_version);
		free(ty->ty_acked_nonce);
		free(ty->ty_nack_version);
		free(ty->ty_nack_nonce);
		free(ty->ty_nack_error);
		free(ty->ty_last_request);
		free(ty);
	}
	relay_observe_init(ob);
}

/* The entry of a type URL, made on first use. */
struct relay_type *
relay_observe_type(struct relay_obs *ob, const char *url)
{
	struct relay_type	*ty;

	TAILQ_FOREACH(ty, &ob->ob_types, ty_entry) {
		if (strcmp(ty->ty_url, url) == 0)
			return ty;
	}
	ty = xcalloc(1, sizeof(*ty));
	ty->ty_url = xstrdup(url);
	TAILQ_INSERT_TAIL(&ob->ob_types, ty, ty_entry);
	ob->ob_ntypes++;
	return ty;
}

const char *
relay_observe_class_name(enum relay_req_class class)
{
	switch (class) {
	case RELAY_REQ_SUBSCRIBE:
		return "request";
	case RELAY_REQ_ACK:
		return "ACK";
	case RELAY_REQ_NACK:
		return "NACK";
	case RELAY_REQ_UNDECODABLE:
		return "undecodable";
	}
	return "?";
}

enum relay_req_class
relay_observe_request(struct relay_obs *ob, const struct relay_msg *rm)
{
	struct relay_type	*ty;
	const char		*nonce;

	ob->ob_requests++;
	if (!rm->rm_decoded) {
		ob->ob_undecodable_requests++;
		return RELAY_REQ_UNDECODABLE;
	}
	ty = relay_observe_type(ob, rm->rm_type_url);
	ty->ty_requests++;
	ty->ty_request_bytes += rm->rm_bytes;
	nonce = rm->rm_nonce != NULL ? rm->rm_nonce : "";
	/*
	 * A request with error_detail is a NACK whatever its nonce (a server
	 * may send responses without one). Otherwise it is an ACK only when it
	 * echoes the nonce of the last response of its type; one echoing an
	 * older nonce, or none while the server uses them, is a plain request.
	 */
	if (!rm->rm_has_error && (ty->ty_sent_nonce == NULL ||
	    strcmp(nonce, ty->ty_sent_nonce) != 0))
		return RELAY_REQ_SUBSCRIBE;
	if (rm->rm_has_error) {
		ty->ty_nacks++;
		relay_observe_set(&ty->ty_nack_version, rm->rm_version);
		relay_observe_set(&ty->ty_nack_nonce, rm->rm_nonce);
		relay_observe_set(&ty->ty_nack_error, rm->rm_error);
		ty->ty_last_nack = relay_observe_now_ms();
		return RELAY_REQ_NACK;
	}
	ty->ty_acks++;
	relay_observe_set(&ty->ty_acked_version, rm->rm_version);
	relay_observe_set(&ty->ty_acked_nonce, rm->rm_nonce);
	ty->ty_last_ack = relay_observe_now_ms();
	return RELAY_REQ_ACK;
}

void
relay_observe_response(struct relay_obs *ob, const struct relay_msg *rm)
{
	struct relay_type	*ty;

	ob->ob_responses++;
	if (!rm->rm_decoded) {
		ob->ob_undecodable_responses++;
		return;
	}
	ty = relay_observe_type(ob, rm->rm_type_url);
	ty->ty_responses++;
	ty->ty_response_bytes += rm->rm_bytes;
	ty->ty_resources = rm->rm_nresources;
	ty->ty_removed = rm->rm_nremoved;
	relay_observe_set(&ty->ty_sent_version, rm->rm_version);
	relay_observe_set(&ty->ty_sent_nonce, rm->rm_nonce);
	ty->ty_last_response = relay_observe_now_ms();
}

static json_t *
relay_observe_time(int64_t ms)
{
	char		 buf[64];
	time_t		 t;
	struct tm	 tm;

	if (ms == 0)
		return json_null();
	t = (time_t)(ms / 1000);
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), ".%03dZ",
	    (int)(ms % 1000));
	return json_string(buf);
}

static json_t *
relay_observe_opt(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

/*
 * The state of each type as JSON. The sync status follows istioctl's
 * proxy-status words: SYNCED when the latest response was ACKed, NACKED
 * when it was rejected, STALE while it awaits its answer, and NOT SENT
 * before any response.
 */
json_t *
relay_observe_json(const struct relay_obs *ob)
{
	struct relay_type	*ty;
	json_t			*arr, *o;
	const char		*status;

	arr = json_array();
	TAILQ_FOREACH(ty, &ob->ob_types, ty_entry) {
		if (ty->ty_sent_nonce == NULL)
			status = "NOT SENT";
		else if (ty->ty_acked_nonce != NULL &&
		    strcmp(ty->ty_acked_nonce, ty->ty_sent_nonce) == 0)
			status = "SYNCED";
		else if (ty->ty_nack_nonce != NULL &&
		    strcmp(ty->ty_nack_nonce, ty->ty_sent_nonce) == 0)
			status = "NACKED";
		else
			status = "STALE";
		o = json_object();
		json_object_set_new(o, "type_url", json_string(ty->ty_url));
		json_object_set_new(o, "status", json_string(status));
		json_object_set_new(o, "requests",
		    json_integer((json_int_t)ty->ty_requests));
		json_object_set_new(o, "responses",
		    json_integer((json_int_t)ty->ty_responses));
		json_object_set_new(o, "acks",
		    json_integer((json_int_t)ty->ty_acks));
		json_object_set_new(o, "nacks",
		    json_integer((json_int_t)ty->ty_nacks));
		json_object_set_new(o, "request_bytes",
		    json_integer((json_int_t)ty->ty_request_bytes));
		json_object_set_new(o, "response_bytes",
		    json_integer((json_int_t)ty->ty_response_bytes));
		json_object_set_new(o, "resources",
		    json_integer((json_int_t)ty->ty_resources));
		json_object_set_new(o, "removed",
		    json_integer((json_int_t)ty->ty_removed));
		json_object_set_new(o, "sent_version",
		    relay_observe_opt(ty->ty_sent_version));
		json_object_set_new(o, "sent_nonce",
		    relay_observe_opt(ty->ty_sent_nonce));
		json_object_set_new(o, "acked_version",
		    relay_observe_opt(ty->ty_acked_version));
		json_object_set_new(o, "acked_nonce",
		    relay_observe_opt(ty->ty_acked_nonce));
		json_object_set_new(o, "nacked_version",
		    relay_observe_opt(ty->ty_nack_version));
		json_object_set_new(o, "nacked_nonce",
		    relay_observe_opt(ty->ty_nack_nonce));
		json_object_set_new(o, "nack_error",
		    relay_observe_opt(ty->ty_nack_error));
		json_object_set_new(o, "last_response",
		    relay_observe_time(ty->ty_last_response));
		json_object_set_new(o, "last_ack",
		    relay_observe_time(ty->ty_last_ack));
		json_object_set_new(o, "last_nack",
		    relay_observe_time(ty->ty_last_nack));
		json_array_append_new(arr, o);
	}
	return arr;
}

/* A label value in the exposition format's escaping. */
static void
relay_observe_label(struct evbuffer *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			evbuffer_add_printf(out, "\\%c", *s);
		else if (*s == '\n')
			evbuffer_add(out, "\\n", 2);
		else
			evbuffer_add(out, s, 1);
	}
}

static void
relay_observe_family(const struct relay_obs *ob, struct evbuffer *out,
    const char *name, const char *type, const char *help, size_t offset)
{
	struct relay_type	*ty;

	evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help,
	    name, type);
	TAILQ_FOREACH(ty, &ob->ob_types, ty_entry) {
		evbuffer_add_printf(out, "%s{type_url=\"", name);
		relay_observe_label(out, ty->ty_url);
		evbuffer_add_printf(out, "\"} %llu\n", (unsigned long long)
		    *(const uint64_t *)(const void *)((const char *)ty +
		    offset));
	}
}

/* The per type families, in Prometheus text format 0.0.4. */
void
relay_observe_metrics(const struct relay_obs *ob, struct evbuffer *out)
{
	static const struct {
		const char	*name;
		const char	*type;
		const char	*help;
		size_t		 offset;
	} fams[] = {
		{ "istio_agent_xds_requests_total", "counter",
		    "xDS requests relayed from the proxy, by type URL.",
		    offsetof(struct relay_type, ty_requests) },
		{ "istio_agent_xds_responses_total", "counter",
		    "xDS responses relayed to the proxy, by type URL.",
		    offsetof(struct relay_type, ty_responses) },
		{ "istio_agent_xds_acks_total", "counter",
		    "Responses the proxy accepted, by type URL.",
		    offsetof(struct relay_type, ty_acks) },
		{ "istio_agent_xds_nacks_total", "counter",
		    "Responses the proxy rejected, by type URL.",
		    offsetof(struct relay_type, ty_nacks) },
		{ "istio_agent_xds_request_bytes_total", "counter",
		    "Bytes of xDS requests relayed, by type URL.",
		    offsetof(struct relay_type, ty_request_bytes) },
		{ "istio_agent_xds_response_bytes_total", "counter",
		    "Bytes of xDS responses relayed, by type URL.",
		    offsetof(struct relay_type, ty_response_bytes) },
		{ "istio_agent_xds_resources", "gauge",
		    "Resources in the latest response, by type URL.",
		    offsetof(struct relay_type, ty_resources) },
	};
	size_t	 i;

	for (i = 0; i < sizeof(fams) / sizeof(fams[0]); i++)
		relay_observe_family(ob, out, fams[i].name, fams[i].type,
		    fams[i].help, fams[i].offset);
	evbuffer_add_printf(out, "# HELP istio_agent_xds_undecodable_total "
	    "Relayed messages that did not decode (forwarded all the same)."
	    "\n# TYPE istio_agent_xds_undecodable_total counter\n"
	    "istio_agent_xds_undecodable_total{direction=\"request\"} %llu\n"
	    "istio_agent_xds_undecodable_total{direction=\"response\"} %llu\n",
	    (unsigned long long)ob->ob_undecodable_requests,
	    (unsigned long long)ob->ob_undecodable_responses);
}
