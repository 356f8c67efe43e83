/*
 * Protobuf messages of the xDS protocol, packed as they travel, for the
 * unit tests of the relay's decoding (test_relay_msg.c) and of its
 * observations of decoded messages (test_relay_observe.c).
 */
#ifndef RELAY_PACK_H
#define RELAY_PACK_H

#include <stddef.h>
#include <stdint.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"

#include "agent.h"

/*
 * A DiscoveryRequest as the proxy sends it, packed (xmalloc'd, *len bytes):
 * two resource names, a node when node_id is set, an error_detail when
 * error is.
 */
static inline uint8_t *
pack_request(const char *type, const char *version, const char *nonce,
    const char *node_id, const char *error, size_t *len)
{
	Envoy__Service__Discovery__V3__DiscoveryRequest req =
	    ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_REQUEST__INIT;
	Envoy__Config__Core__V3__Node node =
	    ENVOY__CONFIG__CORE__V3__NODE__INIT;
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	char	*names[] = { (char *)"a", (char *)"b" };
	uint8_t	*buf;

	req.type_url = (char *)type;
	req.version_info = (char *)version;
	req.response_nonce = (char *)nonce;
	req.n_resource_names = 2;
	req.resource_names = names;
	if (node_id != NULL) {
		node.id = (char *)node_id;
		node.cluster = (char *)"c";
		req.node = &node;
	}
	if (error != NULL) {
		st.code = 3;
		st.message = (char *)error;
		req.error_detail = &st;
	}
	*len = envoy__service__discovery__v3__discovery_request__get_packed_size(
	    &req);
	buf = xmalloc(*len);
	envoy__service__discovery__v3__discovery_request__pack(&req, buf);
	return buf;
}

/* A DiscoveryResponse of nres resources of 100 bytes each, packed. */
static inline uint8_t *
pack_response(const char *type, const char *version, const char *nonce,
    size_t nres, size_t *len)
{
	Envoy__Service__Discovery__V3__DiscoveryResponse resp =
	    ENVOY__SERVICE__DISCOVERY__V3__DISCOVERY_RESPONSE__INIT;
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	Google__Protobuf__Any *anys[8];
	uint8_t	 payload[100];
	uint8_t	*buf;
	size_t	 i;

	memset(payload, 'x', sizeof(payload));
	any.type_url = (char *)type;
	any.value.data = payload;
	any.value.len = sizeof(payload);
	for (i = 0; i < nres; i++)
		anys[i] = &any;
	resp.type_url = (char *)type;
	resp.version_info = (char *)version;
	resp.nonce = (char *)nonce;
	resp.n_resources = nres;
	resp.resources = anys;
	*len = envoy__service__discovery__v3__discovery_response__get_packed_size(
	    &resp);
	buf = xmalloc(*len);
	envoy__service__discovery__v3__discovery_response__pack(&resp, buf);
	return buf;
}

#endif
