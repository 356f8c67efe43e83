/*
 * Decoding the xDS messages that pass through the relay, with protobuf-c and
 * the minimal .proto files of proto/, only to observe them: the relay
 * forwards the bytes it received, never a re-encoding. The one exception is
 * the replay after an upstream reconnect, which needs a request without the
 * old stream's nonce (relay_msg_for_replay): the request is decoded, edited
 * and encoded again. The .proto files declare only the fields this agent
 * reads, but protobuf-c keeps every other field of a message, at any depth,
 * in the message's unknown_fields and writes them back when it packs, so
 * they pass unchanged.
 *
 * Everything here is a pure function of its input and may run on any
 * thread; the completion queue thread decodes received messages with it.
 */
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>

#include "envoy/config/core/v3/base.pb-c.h"
#include "envoy/service/discovery/v3/discovery.pb-c.h"

#include "agent.h"
#include "relay.h"

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

/*
 * Observes a received message: relay_msg_decode on a flat copy of the byte
 * buffer. When flat is not NULL the copy is handed to the caller in *flat
 * (NULL when the buffer could not be read) and *flatlen; otherwise it is
 * freed. Returns 0 or -1 as relay_msg_decode.
 */
int
relay_msg_decode_buffer(enum relay_msg_kind kind, grpc_byte_buffer *bb,
    struct relay_msg *rm, uint8_t **flat, size_t *flatlen)
{
	uint8_t	*buf;
	size_t	 len;
	int	 rc;

	if ((buf = relay_msg_flatten(bb, &len)) == NULL) {
		memset(rm, 0, sizeof(*rm));
		rm->rm_bytes = len;
		rc = -1;
	} else
		rc = relay_msg_decode(kind, buf, len, rm);
	if (flat != NULL) {
		*flat = buf;
		*flatlen = buf != NULL ? len : 0;
	} else
		free(buf);
	return rc;
}

/*
 * Whether protobuf-c took a field numbered 0 as an unknown field: it accepts
 * one whose tag is encoded overlong, but would write it back as a tag that
 * no decoder accepts, so a message holding one is never encoded again.
 */
static int
relay_msg_field0(const ProtobufCMessage *m)
{
	unsigned	 i;

	for (i = 0; m != NULL && i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return 1;
	return 0;
}

/*
 * The node of a DiscoveryRequest, encoded (unknown fields included), in a
 * new buffer; -1 when there is none, the message does not decode, or the
 * node could not be encoded again as it came.
 */
int
relay_msg_node(const uint8_t *data, size_t len, uint8_t **node,
    size_t *nodelen)
{
	Envoy__Service__Discovery__V3__DiscoveryRequest *m;
	int	 rc = -1;

	m = envoy__service__discovery__v3__discovery_request__unpack(NULL, len,
	    data);
	if (m == NULL)
		return -1;
	if (m->node != NULL && !relay_msg_field0(&m->node->base)) {
		*nodelen = envoy__config__core__v3__node__get_packed_size(
		    m->node);
		*node = xmalloc(*nodelen);
		envoy__config__core__v3__node__pack(m->node, *node);
		rc = 0;
	}
	envoy__service__discovery__v3__discovery_request__free_unpacked(m,
	    NULL);
	return rc;
}

/*
 * A DiscoveryRequest as Envoy itself sends it first on a new stream: the
 * same message without the old stream's response_nonce and error_detail,
 * and with the given encoded node (the first request of the proxy's stream
 * had it) in place of any node it has. node may be NULL for none. Returns
 * -1 when the request or the node does not decode, or could not be encoded
 * again as it came.
 */
int
relay_msg_for_replay(const uint8_t *data, size_t len, const uint8_t *node,
    size_t nodelen, uint8_t **out, size_t *outlen)
{
	Envoy__Service__Discovery__V3__DiscoveryRequest *m;
	Envoy__Config__Core__V3__Node	*n = NULL, *old_node;
	Google__Rpc__Status		*old_error;
	char				*old_nonce;
	int				 rc = -1;

	m = envoy__service__discovery__v3__discovery_request__unpack(NULL, len,
	    data);
	if (m == NULL)
		return -1;
	if (relay_msg_field0(&m->base))
		goto out;
	if (node != NULL && (n = envoy__config__core__v3__node__unpack(NULL,
	    nodelen, node)) == NULL)
		goto out;
	/*
	 * The edited fields point elsewhere only while the message is packed;
	 * then the decoded ones are put back, for free_unpacked to free.
	 */
	old_node = m->node;
	old_nonce = m->response_nonce;
	old_error = m->error_detail;
	m->node = n;
	m->response_nonce = (char *)"";
	m->error_detail = NULL;
	*outlen = envoy__service__discovery__v3__discovery_request__get_packed_size(
	    m);
	*out = xmalloc(*outlen);
	envoy__service__discovery__v3__discovery_request__pack(m, *out);
	m->node = old_node;
	m->response_nonce = old_nonce;
	m->error_detail = old_error;
	rc = 0;
out:
	if (n != NULL)
		envoy__config__core__v3__node__free_unpacked(n, NULL);
	envoy__service__discovery__v3__discovery_request__free_unpacked(m,
	    NULL);
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
