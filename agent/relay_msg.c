/*
 * Decoding the xDS messages that pass through the relay, only to observe
 * them: the relay forwards the bytes it received, never a re-encoding. The
 * one exception is the replay after an upstream reconnect, which needs a
 * request without the old stream's nonce; that edit is done on the wire
 * format (relay_msg_for_replay), field by field, so every field this agent
 * does not know passes unchanged.
 *
 * Everything here is a pure function of its input and may run on any
 * thread; the completion queue thread decodes received messages with it.
 */
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"

#include "agent.h"
#include "relay.h"

/* Field numbers of DiscoveryRequest the replay edits. */
#define DREQ_NODE		2
#define DREQ_RESPONSE_NONCE	5
#define DREQ_ERROR_DETAIL	6

static size_t	relay_msg_put_varint(uint8_t *, uint64_t);

const char *
relay_msg_kind_name(enum relay_msg_kind kind)
{
	switch (kind) {
	case RELAY_MSG_REQUEST:
		return "DiscoveryRequest";
	case RELAY_MSG_RESPONSE:
		return "DiscoveryResponse";
	case RELAY_MSG_DELTA_REQUEST:
		return "DeltaDiscoveryRequest";
	case RELAY_MSG_DELTA_RESPONSE:
		return "DeltaDiscoveryResponse";
	}
	return "?";
}

static char *
relay_msg_str(const char *s)
{
	return xstrdup(s != NULL ? s : "");
}

static void
relay_msg_status(struct relay_msg *rm, const Google__Rpc__Status *st)
{
	if (st == NULL)
		return;
	rm->rm_has_error = 1;
	rm->rm_error_code = st->code;
	rm->rm_error = relay_msg_str(st->message);
}

static int
relay_msg_request(struct relay_msg *rm, const uint8_t *data, size_t len)
{
	Envoy__Service__Discovery__V3__DiscoveryRequest *m;

	m = envoy__service__discovery__v3__discovery_request__unpack(NULL, len,
	    data);
	if (m == NULL)
		return -1;
	rm->rm_type_url = relay_msg_str(m->type_url);
	rm->rm_version = relay_msg_str(m->version_info);
	rm->rm_nonce = relay_msg_str(m->response_nonce);
	if (m->node != NULL)
		rm->rm_node_id = relay_msg_str(m->node->id);
	relay_msg_status(rm, m->error_detail);
	rm->rm_nresources = m->n_resource_names;
	envoy__service__discovery__v3__discovery_request__free_unpacked(m,
	    NULL);
	return 0;
}

static int
relay_msg_response(struct relay_msg *rm, const uint8_t *data, size_t len)
{
	Envoy__Service__Discovery__V3__DiscoveryResponse *m;

	m = envoy__service__discovery__v3__discovery_response__unpack(NULL,
	    len, data);
	if (m == NULL)
		return -1;
	rm->rm_type_url = relay_msg_str(m->type_url);
	rm->rm_version = relay_msg_str(m->version_info);
	rm->rm_nonce = relay_msg_str(m->nonce);
	rm->rm_nresources = m->n_resources;
	envoy__service__discovery__v3__discovery_response__free_unpacked(m,
	    NULL);
	return 0;
}

static int
relay_msg_delta_request(struct relay_msg *rm, const uint8_t *data,
    size_t len)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest *m;

	m = envoy__service__discovery__v3__delta_discovery_request__unpack(NULL,
	    len, data);
	if (m == NULL)
		return -1;
	rm->rm_type_url = relay_msg_str(m->type_url);
	rm->rm_version = relay_msg_str("");
	rm->rm_nonce = relay_msg_str(m->response_nonce);
	if (m->node != NULL)
		rm->rm_node_id = relay_msg_str(m->node->id);
	relay_msg_status(rm, m->error_detail);
	rm->rm_nresources = m->n_resource_names_subscribe;
	rm->rm_nremoved = m->n_resource_names_unsubscribe;
	envoy__service__discovery__v3__delta_discovery_request__free_unpacked(
	    m, NULL);
	return 0;
}

static int
relay_msg_delta_response(struct relay_msg *rm, const uint8_t *data,
    size_t len)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse *m;

	m = envoy__service__discovery__v3__delta_discovery_response__unpack(
	    NULL, len, data);
	if (m == NULL)
		return -1;
	rm->rm_type_url = relay_msg_str(m->type_url);
	rm->rm_version = relay_msg_str(m->system_version_info);
	rm->rm_nonce = relay_msg_str(m->nonce);
	rm->rm_nresources = m->n_resources;
	rm->rm_nremoved = m->n_removed_resources;
	envoy__service__discovery__v3__delta_discovery_response__free_unpacked(
	    m, NULL);
	return 0;
}

/*
 * Fills rm from one message. Returns 0, or -1 for a message that does not
 * decode as the kind, with rm cleared but for its size, so that the caller
 * can still count (and forward) it.
 */
int
relay_msg_decode(enum relay_msg_kind kind, const uint8_t *data, size_t len,
    struct relay_msg *rm)
{
	int	 rc = -1;

	memset(rm, 0, sizeof(*rm));
	switch (kind) {
	case RELAY_MSG_REQUEST:
		rc = relay_msg_request(rm, data, len);
		break;
	case RELAY_MSG_RESPONSE:
		rc = relay_msg_response(rm, data, len);
		break;
	case RELAY_MSG_DELTA_REQUEST:
		rc = relay_msg_delta_request(rm, data, len);
		break;
	case RELAY_MSG_DELTA_RESPONSE:
		rc = relay_msg_delta_response(rm, data, len);
		break;
	}
	if (rc == -1) {
		relay_msg_clear(rm);
		rm->rm_bytes = len;
		return -1;
	}
	rm->rm_decoded = 1;
	rm->rm_bytes = len;
	return 0;
}

void
relay_msg_clear(struct relay_msg *rm)
{
	free(rm->rm_type_url);
	free(rm->rm_version);
	free(rm->rm_nonce);
	free(rm->rm_node_id);
	free(rm->rm_error);
	memset(rm, 0, sizeof(*rm));
}

/* One varint; returns its length, or 0 when it runs past the end. */
static size_t
relay_msg_varint(const uint8_t *p, size_t len, uint64_t *v)
{
	size_t	 i;

	*v = 0;
	for (i = 0; i < len && i < 10; i++) {
		*v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if ((p[i] & 0x80) == 0)
			return i + 1;
	}
	return 0;
}

/*
 * The extent of the field at p: its number and its total length, tag
 * included. Returns -1 for a malformed field.
 */
static int
relay_msg_field(const uint8_t *p, size_t len, uint64_t *number,
    size_t *total, size_t *value_off, size_t *value_len)
{
	uint64_t	 tag, v;
	size_t		 n, m;

	if ((n = relay_msg_varint(p, len, &tag)) == 0 || (tag >> 3) == 0)
		return -1;
	*number = tag >> 3;
	switch (tag & 7) {
	case 0:
		if ((m = relay_msg_varint(p + n, len - n, &v)) == 0)
			return -1;
		*value_off = n;
		*value_len = m;
		*total = n + m;
		return 0;
	case 1:
		m = 8;
		break;
	case 5:
		m = 4;
		break;
	case 2:
		if ((m = relay_msg_varint(p + n, len - n, &v)) == 0 ||
		    v > len - n - m)
			return -1;
		*value_off = n + m;
		*value_len = (size_t)v;
		*total = n + m + (size_t)v;
		return 0;
	default:
		return -1;
	}
	if (m > len - n)
		return -1;
	*value_off = n;
	*value_len = m;
	*total = n + m;
	return 0;
}

/*
 * The encoded node of a DiscoveryRequest (the bytes of field 2, without
 * its tag), in a new buffer; -1 when there is none or the message is
 * malformed.
 */
int
relay_msg_node(const uint8_t *data, size_t len, uint8_t **node,
    size_t *nodelen)
{
	uint64_t	 number;
	size_t		 off = 0, total, voff, vlen;
	int		 found = 0;

	while (off < len) {
		if (relay_msg_field(data + off, len - off, &number, &total,
		    &voff, &vlen) == -1)
			return -1;
		if (number == DREQ_NODE && (data[off] & 7) == 2) {
			/* Several occurrences merge; the last is enough here. */
			if (found)
				free(*node);
			*node = xmalloc(vlen);
			memcpy(*node, data + off + voff, vlen);
			*nodelen = vlen;
			found = 1;
		}
		off += total;
	}
	return found ? 0 : -1;
}

static size_t
relay_msg_put_varint(uint8_t *p, uint64_t v)
{
	size_t	 n = 0;

	do {
		p[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			p[n] |= 0x80;
		n++;
	} while (v != 0);
	return n;
}

/*
 * A DiscoveryRequest as Envoy itself sends it first on a new stream: the
 * same message without the old stream's response_nonce and error_detail,
 * and with the given node (the first request of the proxy's stream had it)
 * in place of any node it has. node may be NULL for none.
 */
int
relay_msg_for_replay(const uint8_t *data, size_t len, const uint8_t *node,
    size_t nodelen, uint8_t **out, size_t *outlen)
{
	uint64_t	 number;
	size_t		 off = 0, total, voff, vlen, n = 0;
	uint8_t		*buf;

	buf = xmalloc(len + nodelen + 11);
	if (node != NULL) {
		buf[n++] = (DREQ_NODE << 3) | 2;
		n += relay_msg_put_varint(buf + n, nodelen);
		memcpy(buf + n, node, nodelen);
		n += nodelen;
	}
	while (off < len) {
		if (relay_msg_field(data + off, len - off, &number, &total,
		    &voff, &vlen) == -1) {
			free(buf);
			return -1;
		}
		if (number != DREQ_NODE && number != DREQ_RESPONSE_NONCE &&
		    number != DREQ_ERROR_DETAIL) {
			memcpy(buf + n, data + off, total);
			n += total;
		}
		off += total;
	}
	*out = buf;
	*outlen = n;
	return 0;
}

/*
 * Responses can be large (a mesh's worth of clusters, many MiB), so they are
 * not copied to be observed: a first pass walks the top-level fields over
 * the byte buffer's slices, counts the resources (field 2) without touching
 * their bytes, and copies every other field into a small buffer, which
 * protobuf-c decodes as the same message without resources. Only the
 * framing of the resources is checked, not their content.
 */
struct relay_scan {
	grpc_byte_buffer_reader	 sc_reader;
	const uint8_t		*sc_p;		/* the current slice */
	size_t			 sc_left;	/* bytes left in it */
	uint8_t			*sc_out;	/* the fields kept */
	size_t			 sc_len;
	size_t			 sc_cap;
};

static int
relay_scan_more(struct relay_scan *sc)
{
	grpc_slice	*slice;

	while (sc->sc_left == 0) {
		if (!grpc_byte_buffer_reader_peek(&sc->sc_reader, &slice))
			return -1;
		sc->sc_p = GRPC_SLICE_START_PTR(*slice);
		sc->sc_left = GRPC_SLICE_LENGTH(*slice);
	}
	return 0;
}

static void
relay_scan_keep(struct relay_scan *sc, const uint8_t *p, size_t n)
{
	if (sc->sc_cap - sc->sc_len < n) {
		while (sc->sc_cap - sc->sc_len < n)
			sc->sc_cap = sc->sc_cap == 0 ? 256 : sc->sc_cap * 2;
		sc->sc_out = xrealloc(sc->sc_out, sc->sc_cap);
	}
	memcpy(sc->sc_out + sc->sc_len, p, n);
	sc->sc_len += n;
}

/*
 * One varint, its bytes as they were in raw (10 at most); -1 at the end or
 * when malformed. The bytes are kept as they came, not re-encoded, so that
 * protobuf-c sees what it would have seen in the whole message.
 */
static int
relay_scan_varint(struct relay_scan *sc, uint64_t *v, uint8_t *raw,
    size_t *rawlen)
{
	int	 i;
	uint8_t	 b;

	*v = 0;
	for (i = 0; i < 10; i++) {
		if (relay_scan_more(sc) == -1)
			return -1;
		b = *sc->sc_p++;
		sc->sc_left--;
		raw[i] = b;
		*v |= (uint64_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			*rawlen = (size_t)i + 1;
			return 0;
		}
	}
	return -1;
}

/* Skips or keeps n bytes; -1 when the message ends first. */
static int
relay_scan_bytes(struct relay_scan *sc, uint64_t n, int keep)
{
	size_t	 k;

	while (n > 0) {
		if (relay_scan_more(sc) == -1)
			return -1;
		k = sc->sc_left < n ? sc->sc_left : (size_t)n;
		if (keep)
			relay_scan_keep(sc, sc->sc_p, k);
		sc->sc_p += k;
		sc->sc_left -= k;
		n -= k;
	}
	return 0;
}

/* Whether the kind's field is one of resources, counted and not kept. */
static int
relay_scan_counted(enum relay_msg_kind kind, uint64_t number)
{
	return number == 2 && (kind == RELAY_MSG_RESPONSE ||
	    kind == RELAY_MSG_DELTA_RESPONSE);
}

/*
 * Observes a response in a byte buffer, as relay_msg_decode would but
 * without copying its resources. Returns 0 or -1 as relay_msg_decode.
 */
int
relay_msg_decode_response(enum relay_msg_kind kind, grpc_byte_buffer *bb,
    struct relay_msg *rm)
{
	struct relay_scan	 sc;
	uint64_t		 tag, len, number;
	uint8_t			 raw[10], lraw[10];
	size_t			 total, counted = 0, rawlen, lrawlen;
	int			 rc = -1, keep;

	memset(&sc, 0, sizeof(sc));
	total = grpc_byte_buffer_length(bb);
	if (!grpc_byte_buffer_reader_init(&sc.sc_reader, bb)) {
		memset(rm, 0, sizeof(*rm));
		rm->rm_bytes = total;
		return -1;
	}
	for (;;) {
		if (relay_scan_more(&sc) == -1) {
			rc = 0;		/* the end, between fields */
			break;
		}
		/* Field 0 is kept: protobuf-c may take it as unknown. */
		if (relay_scan_varint(&sc, &tag, raw, &rawlen) == -1)
			break;
		number = tag >> 3;
		keep = !relay_scan_counted(kind, number);
		if (keep)
			relay_scan_keep(&sc, raw, rawlen);
		if ((tag & 7) == 0) {
			if (relay_scan_varint(&sc, &len, lraw, &lrawlen) == -1)
				break;
			if (keep)
				relay_scan_keep(&sc, lraw, lrawlen);
		} else if ((tag & 7) == 1 || (tag & 7) == 5) {
			if (relay_scan_bytes(&sc, (tag & 7) == 1 ? 8 : 4,
			    keep) == -1)
				break;
		} else if ((tag & 7) == 2) {
			if (relay_scan_varint(&sc, &len, lraw, &lrawlen) == -1 ||
			    len > total)
				break;
			if (keep)
				relay_scan_keep(&sc, lraw, lrawlen);
			if (relay_scan_bytes(&sc, len, keep) == -1)
				break;
			if (!keep)
				counted++;
		} else
			break;
	}
	grpc_byte_buffer_reader_destroy(&sc.sc_reader);
	if (rc == 0)
		rc = relay_msg_decode(kind, sc.sc_out != NULL ? sc.sc_out :
		    (const uint8_t *)"", sc.sc_len, rm);
	else {
		memset(rm, 0, sizeof(*rm));
	}
	free(sc.sc_out);
	rm->rm_bytes = total;
	if (rc == 0)
		rm->rm_nresources = counted;
	return rc;
}

/* A received message as one contiguous buffer (a copy); NULL for none. */
uint8_t *
relay_msg_flatten(grpc_byte_buffer *bb, size_t *len)
{
	grpc_byte_buffer_reader	 reader;
	grpc_slice		 slice;
	uint8_t			*buf;
	size_t			 n = 0, sl;

	*len = grpc_byte_buffer_length(bb);
	buf = xmalloc(*len);
	if (!grpc_byte_buffer_reader_init(&reader, bb)) {
		free(buf);
		return NULL;
	}
	while (grpc_byte_buffer_reader_next(&reader, &slice)) {
		sl = GRPC_SLICE_LENGTH(slice);
		if (sl > *len - n)
			sl = *len - n;
		memcpy(buf + n, GRPC_SLICE_START_PTR(slice), sl);
		n += sl;
		grpc_slice_unref(slice);
	}
	grpc_byte_buffer_reader_destroy(&reader);
	*len = n;
	return buf;
}

/* A new byte buffer holding a copy of data; the caller destroys it. */
grpc_byte_buffer *
relay_msg_buffer(const uint8_t *data, size_t len)
{
	grpc_slice		 slice;
	grpc_byte_buffer	*bb;

	slice = grpc_slice_from_copied_buffer((const char *)data, len);
	bb = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return bb;
}
