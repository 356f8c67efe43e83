/*
 * Unit tests of agent/relay/relay_observe.c: its classification of
 * requests (a request with error_detail is a NACK whatever its nonce; an
 * ACK echoes the nonce of the last response of its type; anything else is
 * a plain request), also of messages as decoded from the wire, with the
 * status, JSON and metrics that follow; and its bounds: the cap on type
 * URLs with the half kept for the proxy's types, the one "other" entry and
 * its one notice, strings cut with a marker and made valid UTF-8, and
 * metrics and JSON whose size does not grow with the number of type URLs a
 * control plane invents.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "agent.h"
#include "relay/relay.h"
#include "relay_pack.h"
#include "check.h"

#define CDS	"type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define LDS	"type.googleapis.com/envoy.config.listener.v3.Listener"

static struct relay_obs	ob;

/* A message of a type URL, decoded as relay_msg.c leaves it. */
static void
msg(struct relay_msg *rm, const char *url, const char *version,
    const char *nonce)
{
	memset(rm, 0, sizeof(*rm));
	rm->rm_decoded = 1;
	rm->rm_bytes = 100;
	rm->rm_type_url = (char *)url;
	rm->rm_version = (char *)version;
	rm->rm_nonce = (char *)nonce;
}

static void
respond_to(struct relay_obs *o, const char *url, const char *version,
    const char *nonce)
{
	struct relay_msg rm;

	msg(&rm, url, version, nonce);
	relay_observe_response(o, &rm);
}

static enum relay_req_class
request_of(struct relay_obs *o, const char *url, const char *nonce,
    const char *error)
{
	struct relay_msg rm;

	msg(&rm, url, "v", nonce);
	rm.rm_has_error = error != NULL;
	rm.rm_error = (char *)error;
	return relay_observe_request(o, &rm);
}

/* The size of the metrics of o, and the number of series of a family. */
static size_t
metrics_size(const struct relay_obs *o, size_t *series)
{
	struct evbuffer	*ev;
	char		*text, *p;
	size_t		 len;

	ev = evbuffer_new();
	relay_observe_metrics(o, ev);
	evbuffer_add(ev, "", 1);
	len = evbuffer_get_length(ev) - 1;
	text = (char *)evbuffer_pullup(ev, -1);
	*series = 0;
	for (p = text; (p = strstr(p, "\nistio_agent_xds_responses_total{"))
	    != NULL; p++)
		(*series)++;
	evbuffer_free(ev);
	return len;
}

static size_t
json_size(const struct relay_obs *o)
{
	json_t	*j;
	char	*text;
	size_t	 len;

	j = relay_observe_json(o);
	text = json_dumps(j, JSON_COMPACT);
	len = text != NULL ? strlen(text) : 0;
	free(text);
	json_decref(j);
	return len;
}

static void
respond(const char *nonce)
{
	struct relay_msg rm = { 0 };

	rm.rm_decoded = 1;
	rm.rm_type_url = (char *)CDS;
	rm.rm_version = (char *)"v";
	rm.rm_nonce = (char *)nonce;
	relay_observe_response(&ob, &rm);
}

static enum relay_req_class
request(const char *nonce, int nack)
{
	struct relay_msg rm = { 0 };

	rm.rm_decoded = 1;
	rm.rm_type_url = (char *)CDS;
	rm.rm_version = (char *)"v";
	rm.rm_nonce = (char *)nonce;
	rm.rm_has_error = nack;
	rm.rm_error = nack ? (char *)"bad cluster" : NULL;
	return relay_observe_request(&ob, &rm);
}

/*
 * A control plane inventing a type URL per response: the first half of the
 * table takes them, the rest is "other", told once; the proxy's own types
 * still get entries of their own up to the cap, then go to "other" too.
 */
static void
test_cap(void)
{
	struct relay_obs	 o;
	struct relay_type	*ty, *other;
	char			 url[96];
	const char		*first;
	size_t			 i, series, msize, jsize;

	relay_observe_init(&o, RELAY_OBS_STREAM_TYPES);
	CHECK(request_of(&o, CDS, "", NULL) == RELAY_REQ_SUBSCRIBE);
	CHECK(relay_observe_overflow(&o) == NULL);
	for (i = 0; i < RELAY_OBS_STREAM_TYPES / 2 - 1; i++) {
		snprintf(url, sizeof(url), "type.example/flood.T%zu", i);
		respond_to(&o, url, "v", "n");
	}
	CHECK(o.ob_ntypes == RELAY_OBS_STREAM_TYPES / 2);
	CHECK(o.ob_other == NULL);
	CHECK(relay_observe_overflow(&o) == NULL);
	msize = metrics_size(&o, &series);
	jsize = json_size(&o);

	/* Past the half, every new type in a response is "other". */
	for (i = 0; i < 100000; i++) {
		snprintf(url, sizeof(url), "type.example/more.T%zu", i);
		respond_to(&o, url, "v", "n");
	}
	CHECK(o.ob_ntypes == RELAY_OBS_STREAM_TYPES / 2);
	other = o.ob_other;
	CHECK(other != NULL && other->ty_other);
	CHECK(other != NULL && other->ty_responses == 100000);
	CHECK(other != NULL && other->ty_response_bytes == 100000 * 100);
	CHECK(other != NULL && other->ty_sent_nonce == NULL);
	CHECK(relay_observe_find(&o, "type.example/more.T7") == NULL);
	CHECK(relay_observe_find(&o, "type.example/flood.T7") != NULL);
	first = relay_observe_overflow(&o);
	CHECK_STR(first, "type.example/more.T0");
	CHECK(relay_observe_overflow(&o) == NULL);

	/* One series more for "other", and the pages stay as they were. */
	CHECK(metrics_size(&o, &series) < msize + 7 * 200);
	CHECK(series == RELAY_OBS_STREAM_TYPES / 2 + 1);
	CHECK(json_size(&o) < jsize + 1000);

	/* A type already tracked keeps its entry. */
	respond_to(&o, "type.example/flood.T3", "v2", "n2");
	ty = relay_observe_find(&o, "type.example/flood.T3");
	CHECK(ty != NULL && ty->ty_responses == 2);
	CHECK(ty != NULL && strcmp(ty->ty_sent_version, "v2") == 0);

	/* The proxy's types have the other half. */
	respond_to(&o, LDS, "v1", "l1");
	CHECK(relay_observe_find(&o, LDS) == NULL);
	CHECK(other->ty_responses == 100001);
	CHECK(request_of(&o, LDS, "", NULL) == RELAY_REQ_SUBSCRIBE);
	respond_to(&o, LDS, "v1", "l2");
	CHECK(request_of(&o, LDS, "l2", NULL) == RELAY_REQ_ACK);
	ty = relay_observe_find(&o, LDS);
	CHECK(ty != NULL && ty->ty_acks == 1 && ty->ty_responses == 1);
	for (i = 0; o.ob_ntypes < RELAY_OBS_STREAM_TYPES; i++) {
		snprintf(url, sizeof(url), "type.example/asked.T%zu", i);
		CHECK(request_of(&o, url, "", NULL) == RELAY_REQ_SUBSCRIBE);
		CHECK(relay_observe_find(&o, url) != NULL);
	}
	/* Full: a new type the proxy asks for is "other" too. */
	CHECK(request_of(&o, "type.example/asked.more", "", NULL) ==
	    RELAY_REQ_SUBSCRIBE);
	CHECK(relay_observe_find(&o, "type.example/asked.more") == NULL);
	CHECK(request_of(&o, "type.example/asked.more", "x", "bad") ==
	    RELAY_REQ_NACK);
	CHECK(other->ty_requests == 2 && other->ty_nacks == 1);
	CHECK(o.ob_ntypes == RELAY_OBS_STREAM_TYPES);
	/* Every entry is found again through the table. */
	for (i = 0; i < RELAY_OBS_STREAM_TYPES / 2 - 1; i++) {
		snprintf(url, sizeof(url), "type.example/flood.T%zu", i);
		CHECK(relay_observe_find(&o, url) != NULL);
	}
	CHECK(relay_observe_find(&o, CDS) != NULL);

	/* A type URL named like the overflow entry is counted there. */
	respond_to(&o, RELAY_OBS_OTHER, "v", "n");
	CHECK(other->ty_responses == 100002);
	metrics_size(&o, &series);
	CHECK(series == RELAY_OBS_STREAM_TYPES + 1);
	relay_observe_clear(&o);

	/* ... without telling of an overflow when there is none. */
	relay_observe_init(&o, RELAY_OBS_STREAM_TYPES);
	respond_to(&o, RELAY_OBS_OTHER, "v", "n");
	CHECK(o.ob_other != NULL && o.ob_other->ty_responses == 1);
	CHECK(o.ob_ntypes == 0);
	CHECK(relay_observe_overflow(&o) == NULL);
	relay_observe_clear(&o);

	/* The totals' cap. */
	relay_observe_init(&o, RELAY_OBS_TOTAL_TYPES);
	for (i = 0; i < 1000; i++) {
		snprintf(url, sizeof(url), "type.example/flood.T%zu", i);
		respond_to(&o, url, "v", "n");
		request_of(&o, url, "n", NULL);
	}
	CHECK(o.ob_ntypes == RELAY_OBS_TOTAL_TYPES);
	CHECK(o.ob_other != NULL && o.ob_other->ty_responses == 1000 -
	    RELAY_OBS_TOTAL_TYPES / 2);
	relay_observe_clear(&o);
}

/* Strings from a control plane are kept cut, marked, and valid UTF-8. */
static void
test_strings(void)
{
	struct relay_obs	 o;
	struct relay_type	*ty;
	char			 big[5000], url[600], url2[600];
	json_t			*j;
	const char		*s;
	size_t			 cut = sizeof(RELAY_OBS_CUT) - 1;

	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memset(url, 'u', sizeof(url) - 1);
	url[sizeof(url) - 1] = '\0';
	memcpy(url2, url, sizeof(url));
	url2[500] = 'X';

	relay_observe_init(&o, RELAY_OBS_STREAM_TYPES);
	respond_to(&o, url, big, big);
	/* Two type URLs alike in their first bytes share the entry. */
	respond_to(&o, url2, "v", "n");
	CHECK(o.ob_ntypes == 1);
	ty = TAILQ_FIRST(&o.ob_types);
	CHECK(strlen(ty->ty_url) == RELAY_OBS_MAX_STR);
	CHECK(strcmp(ty->ty_url + RELAY_OBS_MAX_STR - cut, RELAY_OBS_CUT) ==
	    0);
	CHECK(ty->ty_responses == 2);
	CHECK(relay_observe_find(&o, url) == ty);
	respond_to(&o, url, big, big);
	CHECK(strlen(ty->ty_sent_version) == RELAY_OBS_MAX_STR);
	CHECK(strlen(ty->ty_sent_nonce) == RELAY_OBS_MAX_STR);
	/* The proxy echoes the long nonce: an ACK, kept cut too. */
	CHECK(request_of(&o, url, big, NULL) == RELAY_REQ_ACK);
	CHECK(strlen(ty->ty_acked_nonce) == RELAY_OBS_MAX_STR);
	CHECK(request_of(&o, url, big, big) == RELAY_REQ_NACK);
	CHECK(strlen(ty->ty_nack_error) == RELAY_OBS_MAX_ERROR);
	CHECK(strcmp(ty->ty_nack_error + RELAY_OBS_MAX_ERROR - cut,
	    RELAY_OBS_CUT) == 0);
	/* A string that fits is kept whole, however close to the bound. */
	memset(big, 'w', RELAY_OBS_MAX_STR);
	big[RELAY_OBS_MAX_STR] = '\0';
	respond_to(&o, url, big, "n");
	CHECK_STR(ty->ty_sent_version, big);
	relay_observe_clear(&o);

	/*
	 * Invalid UTF-8, control characters and a cut in a multibyte
	 * character: the JSON still holds every string.
	 */
	relay_observe_init(&o, RELAY_OBS_STREAM_TYPES);
	respond_to(&o, "type.example/bad\xff\xc3(\n\"q\"", "v\xe2\x82",
	    "n\x01\xc3\xa9");
	ty = TAILQ_FIRST(&o.ob_types);
	/* (Split strings: no trigraphs.) */
	CHECK_STR(ty->ty_url, "type.example/bad?" "?(?\"q\"");
	CHECK_STR(ty->ty_sent_version, "v?" "?");
	CHECK_STR(ty->ty_sent_nonce, "n?\xc3\xa9");
	memset(big, 'a', sizeof(big));
	for (s = big; s < big + 400; s += 2)
		memcpy((char *)s, "\xc3\xa9", 2);
	big[400] = '\0';
	respond_to(&o, CDS, big, "n");
	ty = relay_observe_find(&o, CDS);
	CHECK(ty != NULL && strlen(ty->ty_sent_version) <= RELAY_OBS_MAX_STR);
	j = relay_observe_json(&o);
	CHECK(json_array_size(j) == 2);
	CHECK(json_is_string(json_object_get(json_array_get(j, 0), "type_url")));
	CHECK(json_is_string(json_object_get(json_array_get(j, 0),
	    "sent_version")));
	CHECK(json_is_string(json_object_get(json_array_get(j, 0),
	    "sent_nonce")));
	s = json_string_value(json_object_get(json_array_get(j, 1),
	    "sent_version"));
	CHECK(s != NULL && strstr(s, RELAY_OBS_CUT) != NULL);
	json_decref(j);
	relay_observe_clear(&o);
}

/*
 * Requests and responses as decoded from the wire by relay_msg.c: each
 * kind of request classified, the types' status in the JSON (SYNCED,
 * NACKED with the error), and the metrics.
 */
static void
test_decoded(void)
{
	struct relay_obs	 o;
	struct relay_msg	 rm;
	struct evbuffer		*ev;
	json_t			*j;
	uint8_t			*buf;
	size_t			 len;
	char			*text;

	relay_observe_init(&o, RELAY_OBS_STREAM_TYPES);
	buf = pack_request(CDS, "", "", "n", NULL, &len);
	relay_msg_decode(RELAY_MSG_REQUEST, buf, len, &rm);
	CHECK(relay_observe_request(&o, &rm) == RELAY_REQ_SUBSCRIBE);
	relay_msg_clear(&rm);
	free(buf);

	buf = pack_response(CDS, "v1", "n1", 2, &len);
	relay_msg_decode(RELAY_MSG_RESPONSE, buf, len, &rm);
	relay_observe_response(&o, &rm);
	relay_msg_clear(&rm);
	free(buf);

	buf = pack_request(CDS, "v1", "n1", NULL, NULL, &len);
	relay_msg_decode(RELAY_MSG_REQUEST, buf, len, &rm);
	CHECK(relay_observe_request(&o, &rm) == RELAY_REQ_ACK);
	relay_msg_clear(&rm);
	free(buf);

	buf = pack_response(LDS, "v2", "n2", 1, &len);
	relay_msg_decode(RELAY_MSG_RESPONSE, buf, len, &rm);
	relay_observe_response(&o, &rm);
	relay_msg_clear(&rm);
	free(buf);

	buf = pack_request(LDS, "", "n2", NULL, "bad listener", &len);
	relay_msg_decode(RELAY_MSG_REQUEST, buf, len, &rm);
	CHECK(relay_observe_request(&o, &rm) == RELAY_REQ_NACK);
	relay_msg_clear(&rm);
	free(buf);

	relay_msg_decode(RELAY_MSG_REQUEST, (const uint8_t *)"\xff", 1, &rm);
	CHECK(relay_observe_request(&o, &rm) == RELAY_REQ_UNDECODABLE);
	relay_msg_clear(&rm);

	CHECK(o.ob_ntypes == 2);
	CHECK(o.ob_undecodable_requests == 1);
	j = relay_observe_json(&o);
	CHECK(json_array_size(j) == 2);
	CHECK(strcmp(json_string_value(json_object_get(json_array_get(j, 0),
	    "status")), "SYNCED") == 0);
	CHECK(strcmp(json_string_value(json_object_get(json_array_get(j, 1),
	    "status")), "NACKED") == 0);
	CHECK(strcmp(json_string_value(json_object_get(json_array_get(j, 1),
	    "nack_error")), "bad listener") == 0);
	CHECK(json_integer_value(json_object_get(json_array_get(j, 0),
	    "resources")) == 2);
	json_decref(j);

	ev = evbuffer_new();
	relay_observe_metrics(&o, ev);
	evbuffer_add(ev, "", 1);
	text = (char *)evbuffer_pullup(ev, -1);
	CHECK(strstr(text, "istio_agent_xds_nacks_total{type_url=\"" LDS
	    "\"} 1\n") != NULL);
	CHECK(strstr(text, "istio_agent_xds_acks_total{type_url=\"" CDS
	    "\"} 1\n") != NULL);
	CHECK(strstr(text, "# TYPE istio_agent_xds_resources gauge\n") != NULL);
	CHECK(strstr(text, "istio_agent_xds_undecodable_total{direction="
	    "\"request\"} 1\n") != NULL);
	evbuffer_free(ev);
	relay_observe_clear(&o);
}

int
main(void)
{
	struct relay_type *ty;

	relay_observe_init(&ob, RELAY_OBS_STREAM_TYPES);
	CHECK(request("", 0) == RELAY_REQ_SUBSCRIBE);
	respond("n1");
	CHECK(request("n1", 0) == RELAY_REQ_ACK);
	respond("n2");
	/* Echoing an older nonce, or one never sent, is no ACK. */
	CHECK(request("n1", 0) == RELAY_REQ_SUBSCRIBE);
	CHECK(request("bogus", 0) == RELAY_REQ_SUBSCRIBE);
	CHECK(request("", 0) == RELAY_REQ_SUBSCRIBE);
	CHECK(request("n2", 0) == RELAY_REQ_ACK);
	CHECK(request("n2", 1) == RELAY_REQ_NACK);
	/* A server without nonces: an empty echo ACKs, an error NACKs. */
	respond("");
	CHECK(request("", 0) == RELAY_REQ_ACK);
	CHECK(request("", 1) == RELAY_REQ_NACK);
	ty = relay_observe_find(&ob, CDS);
	CHECK(ty != NULL && ty->ty_acks == 3);
	CHECK(ty != NULL && ty->ty_nacks == 2);
	CHECK(ty != NULL && ty->ty_requests == 9);
	relay_observe_clear(&ob);
	test_cap();
	test_strings();
	test_decoded();
	return check_done("test_relay_observe");
}
