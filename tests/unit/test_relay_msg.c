/*
 * Unit tests of agent/relay/relay_msg.c: the decoding of messages from flat
 * bytes and from byte buffers cut in slices (what a decoded delta response
 * brings to the observations included), of delta messages, and the edit of
 * a request for the replay, unknown fields kept. The observations have
 * test_relay_observe.c, the queue test_relay_queue.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>

#include "envoy/service/discovery/v3/discovery.pb-c.h"

#include "agent.h"
#include "relay/relay.h"
#include "relay_pack.h"
#include "check.h"

#define CDS "type.googleapis.com/envoy.config.cluster.v3.Cluster"
#define LDS "type.googleapis.com/envoy.config.listener.v3.Listener"

static void
test_decode(void)
{
	struct relay_msg	 rm;
	uint8_t			*buf;
	size_t			 len;
	static const uint8_t	 junk[] = { 0xff, 0xff, 0xff, 0x07, 0x01 };

	buf = pack_request(CDS, "v1", "n1", "sidecar~1", "bad cluster", &len);
	CHECK(relay_msg_decode(RELAY_MSG_REQUEST, buf, len, &rm) == 0);
	CHECK(rm.rm_decoded);
	CHECK(rm.rm_bytes == len);
	CHECK(strcmp(rm.rm_type_url, CDS) == 0);
	CHECK(strcmp(rm.rm_version, "v1") == 0);
	CHECK(strcmp(rm.rm_nonce, "n1") == 0);
	CHECK(rm.rm_node_id != NULL && strcmp(rm.rm_node_id, "sidecar~1") == 0);
	CHECK(rm.rm_has_error && rm.rm_error_code == 3);
	CHECK(strcmp(rm.rm_error, "bad cluster") == 0);
	CHECK(rm.rm_nresources == 2);
	relay_msg_clear(&rm);
	free(buf);

	buf = pack_response(LDS, "v2", "n2", 3, &len);
	CHECK(relay_msg_decode(RELAY_MSG_RESPONSE, buf, len, &rm) == 0);
	CHECK(strcmp(rm.rm_type_url, LDS) == 0);
	CHECK(strcmp(rm.rm_version, "v2") == 0);
	CHECK(strcmp(rm.rm_nonce, "n2") == 0);
	CHECK(rm.rm_nresources == 3);
	CHECK(!rm.rm_has_error && rm.rm_node_id == NULL);
	relay_msg_clear(&rm);
	free(buf);

	CHECK(relay_msg_decode(RELAY_MSG_REQUEST, junk, sizeof(junk), &rm) ==
	    -1);
	CHECK(!rm.rm_decoded && rm.rm_bytes == sizeof(junk));
	CHECK(rm.rm_type_url == NULL);
	relay_msg_clear(&rm);
	CHECK(relay_msg_decode(RELAY_MSG_DELTA_RESPONSE, junk, sizeof(junk),
	    &rm) == -1);
	relay_msg_clear(&rm);
	/* An empty message is a valid one, with every field empty. */
	CHECK(relay_msg_decode(RELAY_MSG_DELTA_REQUEST, junk, 0, &rm) == 0);
	CHECK(strcmp(rm.rm_type_url, "") == 0);
	relay_msg_clear(&rm);
}

/* A byte buffer of data cut in n slices. */
static grpc_byte_buffer *
sliced(const uint8_t *data, size_t len, size_t n)
{
	grpc_slice		 slices[8];
	grpc_byte_buffer	*bb;
	size_t			 i, off = 0, k;

	for (i = 0; i < n; i++) {
		k = i == n - 1 ? len - off : len / n;
		slices[i] = grpc_slice_from_copied_buffer((const char *)data +
		    off, k);
		off += k;
	}
	bb = grpc_raw_byte_buffer_create(slices, n);
	for (i = 0; i < n; i++)
		grpc_slice_unref(slices[i]);
	return bb;
}

/*
 * A received message is decoded from a flat copy of its byte buffer, however
 * gRPC cut it in slices, with the same result as from its bytes; the copy
 * is handed over on request.
 */
static void
test_buffer(void)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse resp =
	    ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_RESPONSE__INIT;
	Envoy__Service__Discovery__V3__Resource res =
	    ENVOY__SERVICE__DISCOVERY__V3__RESOURCE__INIT;
	Envoy__Service__Discovery__V3__Resource *resv[] = { &res, &res, &res };
	char			*names[] = { (char *)"gone" };
	struct relay_obs	 ob;
	struct relay_msg	 a, b;
	grpc_byte_buffer	*bb;
	uint8_t			*buf, *flat, dbuf[512];
	size_t			 len, n, flen;

	buf = pack_response(CDS, "v7", "n7", 5, &len);
	CHECK(relay_msg_decode(RELAY_MSG_RESPONSE, buf, len, &a) == 0);
	for (n = 1; n <= 7; n++) {
		bb = sliced(buf, len, n);
		CHECK(relay_msg_decode_buffer(RELAY_MSG_RESPONSE, bb, &b, NULL,
		    NULL) == 0);
		CHECK(b.rm_decoded && b.rm_bytes == len);
		CHECK(strcmp(b.rm_type_url, a.rm_type_url) == 0);
		CHECK(strcmp(b.rm_version, "v7") == 0);
		CHECK(strcmp(b.rm_nonce, "n7") == 0);
		CHECK(b.rm_nresources == 5 && b.rm_nremoved == 0);
		relay_msg_clear(&b);
		/* The flat copy, for a request kept for the replay. */
		CHECK(relay_msg_decode_buffer(RELAY_MSG_RESPONSE, bb, &b,
		    &flat, &flen) == 0);
		CHECK(flat != NULL && flen == len &&
		    memcmp(flat, buf, len) == 0);
		free(flat);
		relay_msg_clear(&b);
		grpc_byte_buffer_destroy(bb);
		/* Cut short: not a message, but its size is known. */
		bb = sliced(buf, len - 3, n);
		CHECK(relay_msg_decode_buffer(RELAY_MSG_RESPONSE, bb, &b, NULL,
		    NULL) == -1);
		CHECK(!b.rm_decoded && b.rm_bytes == len - 3);
		CHECK(b.rm_type_url == NULL && b.rm_nresources == 0);
		relay_msg_clear(&b);
		grpc_byte_buffer_destroy(bb);
	}
	relay_msg_clear(&a);
	free(buf);

	/* No resources, and no fields at all. */
	buf = pack_response(LDS, "", "", 0, &len);
	bb = sliced(buf, len, 1);
	CHECK(relay_msg_decode_buffer(RELAY_MSG_RESPONSE, bb, &b, NULL,
	    NULL) == 0);
	CHECK(b.rm_nresources == 0 && strcmp(b.rm_type_url, LDS) == 0);
	CHECK(strcmp(b.rm_version, "") == 0 && strcmp(b.rm_nonce, "") == 0);
	relay_msg_clear(&b);
	grpc_byte_buffer_destroy(bb);
	free(buf);
	bb = sliced((const uint8_t *)"", 0, 1);
	CHECK(relay_msg_decode_buffer(RELAY_MSG_DELTA_RESPONSE, bb, &b, NULL,
	    NULL) == 0);
	CHECK(b.rm_decoded && b.rm_bytes == 0);
	relay_msg_clear(&b);
	grpc_byte_buffer_destroy(bb);

	/* A delta response: resources and removed names counted. */
	res.name = (char *)"r";
	res.version = (char *)"1";
	resp.type_url = (char *)CDS;
	resp.system_version_info = (char *)"sv9";
	resp.nonce = (char *)"d9";
	resp.n_resources = 3;
	resp.resources = resv;
	resp.n_removed_resources = 1;
	resp.removed_resources = names;
	len = envoy__service__discovery__v3__delta_discovery_response__pack(
	    &resp, dbuf);
	bb = sliced(dbuf, len, 3);
	CHECK(relay_msg_decode_buffer(RELAY_MSG_DELTA_RESPONSE, bb, &b, NULL,
	    NULL) == 0);
	CHECK(b.rm_bytes == len && strcmp(b.rm_version, "sv9") == 0);
	CHECK(strcmp(b.rm_nonce, "d9") == 0 && strcmp(b.rm_type_url, CDS) == 0);
	CHECK(b.rm_nresources == 3 && b.rm_nremoved == 1);
	relay_observe_init(&ob, RELAY_OBS_STREAM_TYPES);
	relay_observe_response(&ob, &b);
	relay_msg_clear(&b);
	grpc_byte_buffer_destroy(bb);

	/* Undecodable as a response: counted so, with its size. */
	bb = sliced((const uint8_t *)"\x12\x05" "ab", 4, 2);
	CHECK(relay_msg_decode_buffer(RELAY_MSG_DELTA_RESPONSE, bb, &b, NULL,
	    NULL) == -1);
	CHECK(!b.rm_decoded && b.rm_bytes == 4);
	relay_observe_response(&ob, &b);
	relay_msg_clear(&b);
	grpc_byte_buffer_destroy(bb);
	CHECK(ob.ob_responses == 2 && ob.ob_undecodable_responses == 1);
	CHECK(ob.ob_ntypes == 1);
	CHECK(TAILQ_FIRST(&ob.ob_types)->ty_resources == 3 &&
	    TAILQ_FIRST(&ob.ob_types)->ty_removed == 1);
	CHECK(strcmp(TAILQ_FIRST(&ob.ob_types)->ty_sent_version, "sv9") == 0);
	CHECK(TAILQ_FIRST(&ob.ob_types)->ty_response_bytes == len);
	relay_observe_clear(&ob);
}

static void
test_delta(void)
{
	Envoy__Service__Discovery__V3__DeltaDiscoveryRequest req =
	    ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_REQUEST__INIT;
	Envoy__Service__Discovery__V3__DeltaDiscoveryResponse resp =
	    ENVOY__SERVICE__DISCOVERY__V3__DELTA_DISCOVERY_RESPONSE__INIT;
	Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
	char		*names[] = { (char *)"x", (char *)"y", (char *)"z" };
	struct relay_msg rm;
	uint8_t		 buf[512];
	size_t		 len;

	req.type_url = (char *)CDS;
	req.response_nonce = (char *)"7";
	req.n_resource_names_subscribe = 3;
	req.resource_names_subscribe = names;
	req.n_resource_names_unsubscribe = 1;
	req.resource_names_unsubscribe = names;
	st.message = (char *)"nope";
	req.error_detail = &st;
	len = envoy__service__discovery__v3__delta_discovery_request__pack(&req,
	    buf);
	CHECK(relay_msg_decode(RELAY_MSG_DELTA_REQUEST, buf, len, &rm) == 0);
	CHECK(rm.rm_nresources == 3 && rm.rm_nremoved == 1);
	CHECK(rm.rm_has_error && strcmp(rm.rm_error, "nope") == 0);
	CHECK(strcmp(rm.rm_nonce, "7") == 0);
	relay_msg_clear(&rm);

	resp.type_url = (char *)CDS;
	resp.system_version_info = (char *)"sv";
	resp.nonce = (char *)"8";
	resp.n_removed_resources = 2;
	resp.removed_resources = names;
	len = envoy__service__discovery__v3__delta_discovery_response__pack(
	    &resp, buf);
	CHECK(relay_msg_decode(RELAY_MSG_DELTA_RESPONSE, buf, len, &rm) == 0);
	CHECK(strcmp(rm.rm_version, "sv") == 0 && rm.rm_nremoved == 2);
	relay_msg_clear(&rm);
}

static void
test_replay(void)
{
	struct relay_msg	 rm;
	uint8_t			*first, *later, *node, *out, *out2;
	size_t			 flen, llen, nlen, olen, olen2;

	first = pack_request(CDS, "", "", "sidecar~node", NULL, &flen);
	later = pack_request(LDS, "v3", "n9", NULL, "rejected", &llen);
	CHECK(relay_msg_node(first, flen, &node, &nlen) == 0);
	CHECK(relay_msg_node(later, llen, &out, &olen) == -1);

	/* The later request gets the node, loses nonce and error. */
	CHECK(relay_msg_for_replay(later, llen, node, nlen, &out, &olen) == 0);
	CHECK(relay_msg_decode(RELAY_MSG_REQUEST, out, olen, &rm) == 0);
	CHECK(strcmp(rm.rm_type_url, LDS) == 0);
	CHECK(strcmp(rm.rm_version, "v3") == 0);
	CHECK(strcmp(rm.rm_nonce, "") == 0);
	CHECK(!rm.rm_has_error);
	CHECK(rm.rm_node_id != NULL &&
	    strcmp(rm.rm_node_id, "sidecar~node") == 0);
	CHECK(rm.rm_nresources == 2);
	relay_msg_clear(&rm);

	/* Without a node, a request with one loses it. */
	CHECK(relay_msg_for_replay(first, flen, NULL, 0, &out2, &olen2) == 0);
	CHECK(relay_msg_decode(RELAY_MSG_REQUEST, out2, olen2, &rm) == 0);
	CHECK(rm.rm_node_id == NULL);
	relay_msg_clear(&rm);

	/* Malformed input is refused, never read past its end. */
	CHECK(relay_msg_for_replay(later, llen - 1, NULL, 0, &out2, &olen2) ==
	    -1 || olen2 <= llen);
	free(first);
	free(later);
	free(node);
	free(out);
	free(out2);
}

/*
 * The fields the minimal .proto does not declare survive the replay as they
 * were: field 7 (resource_locators in Envoy's) and a varint field 9 of the
 * request, field 3 (metadata in Envoy's) of its node.
 */
static void
test_replay_unknown(void)
{
	Envoy__Config__Core__V3__Node node =
	    ENVOY__CONFIG__CORE__V3__NODE__INIT;
	static const uint8_t	 unode[] = { 0x1a, 0x04, 'm', 'e', 't', 'a' };
	static const uint8_t	 ureq[] = { 0x3a, 0x03, 'l', 'o', 'c',
	    0x48, 0x96, 0x01 };
	uint8_t			 nbuf[128], first[512], later[512], want[512];
	uint8_t			*p, *got, *got2, *kept;
	size_t			 nlen, flen, llen, wlen, glen, glen2, klen;

	/* The node: known fields, then one unknown. */
	node.id = (char *)"sidecar~node";
	node.cluster = (char *)"c";
	nlen = envoy__config__core__v3__node__pack(&node, nbuf);
	memcpy(nbuf + nlen, unode, sizeof(unode));
	nlen += sizeof(unode);

	/* A first request: the node, then fields 3 and 4. */
	first[0] = 0x12;
	first[1] = (uint8_t)nlen;
	memcpy(first + 2, nbuf, nlen);
	p = pack_request(CDS, "", "", NULL, NULL, &flen);
	memcpy(first + 2 + nlen, p, flen);
	flen += 2 + nlen;
	free(p);
	CHECK(relay_msg_node(first, flen, &kept, &klen) == 0);
	CHECK(klen == nlen && memcmp(kept, nbuf, nlen) == 0);

	/* A later request, with nonce, error and the unknown fields. */
	p = pack_request(LDS, "", "n9", NULL, "rejected", &llen);
	memcpy(later, p, llen);
	free(p);
	memcpy(later + llen, ureq, sizeof(ureq));
	llen += sizeof(ureq);

	/* What it must become: the node first (field 2), fields 3 and 4, the
	 * unknown fields as they were. */
	want[0] = 0x12;
	want[1] = (uint8_t)nlen;
	memcpy(want + 2, nbuf, nlen);
	p = pack_request(LDS, "", "", NULL, NULL, &wlen);
	memcpy(want + 2 + nlen, p, wlen);
	free(p);
	wlen += 2 + nlen;
	memcpy(want + wlen, ureq, sizeof(ureq));
	wlen += sizeof(ureq);
	CHECK(relay_msg_for_replay(later, llen, kept, klen, &got, &glen) == 0);
	CHECK(glen == wlen && memcmp(got, want, wlen) == 0);
	/* The edit is stable: a replayed request replays the same. */
	CHECK(relay_msg_for_replay(got, glen, kept, klen, &got2, &glen2) == 0);
	CHECK(glen2 == glen && memcmp(got2, got, glen) == 0);
	free(got2);
	free(got);

	/* Without a node: the same less field 2. */
	CHECK(relay_msg_for_replay(later, llen, NULL, 0, &got, &glen) == 0);
	CHECK(glen == wlen - 2 - nlen &&
	    memcmp(got, want + 2 + nlen, glen) == 0);
	free(got);
	/* A node that does not decode is refused. */
	CHECK(relay_msg_for_replay(later, llen, (const uint8_t *)"\x0a\x09",
	    2, &got, &glen) == -1);
	/* Field 0 with an overlong tag decodes but cannot be written back. */
	CHECK(relay_msg_for_replay((const uint8_t *)"\x22\x01t\x80\x00\x05",
	    6, NULL, 0, &got, &glen) == -1);
	free(kept);
}

int
main(void)
{
	test_decode();
	test_buffer();
	test_delta();
	test_replay();
	test_replay_unknown();
	return check_done("test_relay_msg");
}
