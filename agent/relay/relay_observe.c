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
 *
 * What is kept is bounded (relay.h says why and how much): a fixed number of
 * type URLs, found through a hash table of fixed size, then one overflow
 * entry; strings cut to a fixed length and made valid UTF-8 without control
 * characters, since jansson refuses invalid UTF-8 and a metric label or a
 * log line must stay on one line. The overflow entry counts messages, bytes
 * and NACKs, but keeps no versions or nonces: they would belong to types
 * that differ from one message to the next, so it cannot tell an ACK from a
 * plain request either.
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

/*
 * The length of the UTF-8 sequence at s if it is a valid one and no control
 * character, else 0. The bytes after a lead byte are read only while they
 * are continuation bytes, so the terminating NUL is never passed.
 */
static size_t
relay_observe_utf8(const unsigned char *s)
{
	size_t		 n, i;
	unsigned char	 lo = 0x80, hi = 0xbf;

	if (s[0] < 0x20 || s[0] == 0x7f)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;	/* no overlong form */
		else if (s[0] == 0xed)
			hi = 0x9f;	/* no surrogate */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90;
		else if (s[0] == 0xf4)
			hi = 0x8f;	/* nothing above U+10FFFF */
	} else
		return 0;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/*
 * Writes into buf (of size bytes) the string s as the relay keeps it, or
 * logs it: each byte that is
 * not part of valid UTF-8, or is a control character, becomes '?', and a
 * string longer than size - 1 bytes is cut at a character boundary and
 * ends in RELAY_OBS_CUT, the whole within size - 1 bytes. Only the first
 * size + 3 bytes of s at most are read, so the cost does not depend on the
 * length of s. size must leave room for the marker.
 */
void
relay_observe_cut(char *buf, size_t size, const char *s)
{
	const unsigned char	*p = (const unsigned char *)(s != NULL ? s :
				    "");
	size_t			 o = 0, cut = 0, n, keep;

	keep = size - 1 - (sizeof(RELAY_OBS_CUT) - 1);
	while (*p != '\0') {
		if ((n = relay_observe_utf8(p)) == 0) {
			if (o + 1 > size - 1)
				break;
			buf[o++] = '?';
			p++;
		} else {
			if (o + n > size - 1)
				break;
			memcpy(buf + o, p, n);
			o += n;
			p += n;
		}
		if (o <= keep)
			cut = o;
	}
	if (*p != '\0') {
		memcpy(buf + cut, RELAY_OBS_CUT, sizeof(RELAY_OBS_CUT));
		return;
	}
	buf[o] = '\0';
}

/* Sets a kept string: a cut copy of value (size as for _cut). */
static void
relay_observe_set(char **field, const char *value, size_t size)
{
	char	 buf[RELAY_OBS_MAX_ERROR + 1];

	if (size > sizeof(buf))
		size = sizeof(buf);
	relay_observe_cut(buf, size, value);
	free(*field);
	*field = xstrdup(buf);
}

/* ob tracks up to max type URLs; relay_observe_clear frees what it holds. */
void
relay_observe_init(struct relay_obs *ob, size_t max)
{
	memset(ob, 0, sizeof(*ob));
	TAILQ_INIT(&ob->ob_types);
	ob->ob_max = max;
	ob->ob_nslots = 2;
	while (ob->ob_nslots < 2 * max)
		ob->ob_nslots *= 2;
	ob->ob_slots = xcalloc(ob->ob_nslots, sizeof(*ob->ob_slots));
}

/* Frees what ob holds; relay_observe_init makes it usable again. */
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
	free(ob->ob_slots);
	free(ob->ob_first_other);
	memset(ob, 0, sizeof(*ob));
	TAILQ_INIT(&ob->ob_types);
}

/* FNV-1a: the hash of a (bounded) type URL. */
static size_t
relay_observe_hash(const char *s)
{
	uint64_t	 h = 14695981039346656037ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return (size_t)h;
}

/*
 * The slot of a type URL as kept (key): the slot of its entry, or the empty
 * slot where its entry would go. The table is never full, so the probe ends.
 */
static size_t
relay_observe_slot(const struct relay_obs *ob, const char *key)
{
	size_t	 i, mask = ob->ob_nslots - 1;

	i = relay_observe_hash(key) & mask;
	while (ob->ob_slots[i] != NULL &&
	    strcmp(ob->ob_slots[i]->ty_url, key) != 0)
		i = (i + 1) & mask;
	return i;
}

/* The entry of a type URL tracked on its own, or NULL. */
struct relay_type *
relay_observe_find(const struct relay_obs *ob, const char *url)
{
	char	 key[RELAY_OBS_MAX_STR + 1];

	relay_observe_cut(key, sizeof(key), url);
	return ob->ob_slots[relay_observe_slot(ob, key)];
}

/*
 * The entry that counts a message of a type URL: its own, made on first use
 * while there is room (for a type first seen in a response, while the
 * table is less than half full), else the overflow entry. A type URL that
 * is RELAY_OBS_OTHER itself goes there too, so that no two entries share a
 * label.
 */
static struct relay_type *
relay_observe_get(struct relay_obs *ob, const char *url, int from_proxy)
{
	struct relay_type	*ty;
	char			 key[RELAY_OBS_MAX_STR + 1];
	size_t			 i, room;

	relay_observe_cut(key, sizeof(key), url);
	if (strcmp(key, RELAY_OBS_OTHER) != 0) {
		i = relay_observe_slot(ob, key);
		if (ob->ob_slots[i] != NULL)
			return ob->ob_slots[i];
		room = from_proxy ? ob->ob_max : ob->ob_max / 2;
		if (ob->ob_ntypes < room) {
			ty = xcalloc(1, sizeof(*ty));
			ty->ty_url = xstrdup(key);
			ob->ob_slots[i] = ty;
			TAILQ_INSERT_TAIL(&ob->ob_types, ty, ty_entry);
			ob->ob_ntypes++;
			return ty;
		}
		if (ob->ob_first_other == NULL)
			ob->ob_first_other = xstrdup(key);
	}
	if (ob->ob_other == NULL) {
		ty = xcalloc(1, sizeof(*ty));
		ty->ty_url = xstrdup(RELAY_OBS_OTHER);
		ty->ty_other = 1;
		TAILQ_INSERT_TAIL(&ob->ob_types, ty, ty_entry);
		ob->ob_other = ty;
	}
	return ob->ob_other;
}

/*
 * Once, after a type URL was first counted as "other": that type URL, for
 * the caller to log. NULL before, and after it was returned.
 */
const char *
relay_observe_overflow(struct relay_obs *ob)
{
	if (ob->ob_first_other == NULL || ob->ob_other_told)
		return NULL;
	ob->ob_other_told = 1;
	return ob->ob_first_other;
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
	char			 key[RELAY_OBS_MAX_STR + 1];

	ob->ob_requests++;
	if (!rm->rm_decoded) {
		ob->ob_undecodable_requests++;
		return RELAY_REQ_UNDECODABLE;
	}
	ty = relay_observe_get(ob, rm->rm_type_url, 1);
	ty->ty_requests++;
	ty->ty_request_bytes += rm->rm_bytes;
	if (ty->ty_other) {
		if (!rm->rm_has_error)
			return RELAY_REQ_SUBSCRIBE;
		ty->ty_nacks++;
		ty->ty_last_nack = relay_observe_now_ms();
		return RELAY_REQ_NACK;
	}
	relay_observe_cut(key, sizeof(key), rm->rm_nonce);
	nonce = key;
	/*
	 * A request with error_detail is a NACK whatever its nonce (a server
	 * may send responses without one). Otherwise it is an ACK only when it
	 * echoes the nonce of the last response of its type; one echoing an
	 * older nonce, or none while the server uses them, is a plain request.
	 * Nonces compare as kept, cut: two alike in their first
	 * RELAY_OBS_MAX_STR bytes are the same here, which only a control
	 * plane with nonces far longer than any real one can bring about.
	 */
	if (!rm->rm_has_error && (ty->ty_sent_nonce == NULL ||
	    strcmp(nonce, ty->ty_sent_nonce) != 0))
		return RELAY_REQ_SUBSCRIBE;
	if (rm->rm_has_error) {
		ty->ty_nacks++;
		relay_observe_set(&ty->ty_nack_version, rm->rm_version,
		    RELAY_OBS_MAX_STR + 1);
		relay_observe_set(&ty->ty_nack_nonce, rm->rm_nonce,
		    RELAY_OBS_MAX_STR + 1);
		relay_observe_set(&ty->ty_nack_error, rm->rm_error,
		    RELAY_OBS_MAX_ERROR + 1);
		ty->ty_last_nack = relay_observe_now_ms();
		return RELAY_REQ_NACK;
	}
	ty->ty_acks++;
	relay_observe_set(&ty->ty_acked_version, rm->rm_version,
	    RELAY_OBS_MAX_STR + 1);
	relay_observe_set(&ty->ty_acked_nonce, rm->rm_nonce,
	    RELAY_OBS_MAX_STR + 1);
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
	ty = relay_observe_get(ob, rm->rm_type_url, 0);
	ty->ty_responses++;
	ty->ty_response_bytes += rm->rm_bytes;
	ty->ty_last_response = relay_observe_now_ms();
	if (ty->ty_other)
		return;
	ty->ty_resources = rm->rm_nresources;
	ty->ty_removed = rm->rm_nremoved;
	relay_observe_set(&ty->ty_sent_version, rm->rm_version,
	    RELAY_OBS_MAX_STR + 1);
	relay_observe_set(&ty->ty_sent_nonce, rm->rm_nonce,
	    RELAY_OBS_MAX_STR + 1);
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
 * before any response. The overflow entry, which mixes types, is UNTRACKED.
 */
json_t *
relay_observe_json(const struct relay_obs *ob)
{
	struct relay_type	*ty;
	json_t			*arr, *o;
	const char		*status;

	arr = json_array();
	TAILQ_FOREACH(ty, &ob->ob_types, ty_entry) {
		if (ty->ty_other)
			status = "UNTRACKED";
		else if (ty->ty_sent_nonce == NULL)
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
