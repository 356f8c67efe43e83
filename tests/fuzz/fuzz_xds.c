/*
 * libFuzzer harness for what the xDS relay decodes of outside input, all
 * with protobuf-c: the four message kinds it observes (relay_msg_decode,
 * and relay_observe on the result), the same from a byte buffer cut in
 * slices as gRPC hands it over (relay_msg_decode_buffer), the node it keeps
 * from a request (relay_msg_node) and the edited request of the replay
 * (relay_msg_for_replay). The first byte picks the kind (and the number of
 * slices); the rest is the message. Properties: nothing reads out of
 * bounds; the decoding of a byte buffer agrees with that of the flat bytes
 * in every field and in success; a replayed request never grows beyond
 * input plus node, decodes when the input did, carries no nonce or error,
 * and replays again to the same bytes; what is observed shows in JSON with
 * every string kept (valid UTF-8) and cut to its bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer.h>
#include <grpc/slice.h>
#include <jansson.h>

#include "agent.h"
#include "relay/relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
fuzz_same(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/*
 * Every type in the JSON has each of its strings (jansson drops one that is
 * not valid UTF-8), within its bound.
 */
static void
fuzz_json(const struct relay_obs *ob)
{
	static const char *const keys[] = { "type_url", "sent_version",
	    "sent_nonce", "acked_version", "acked_nonce", "nacked_version",
	    "nacked_nonce", "nack_error" };
	json_t		*j, *t, *v;
	size_t		 i, k, max;

	j = relay_observe_json(ob);
	json_array_foreach(j, i, t) {
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			max = k == sizeof(keys) / sizeof(keys[0]) - 1 ?
			    RELAY_OBS_MAX_ERROR : RELAY_OBS_MAX_STR;
			if ((v = json_object_get(t, keys[k])) == NULL ||
			    (k == 0 && !json_is_string(v)) ||
			    (json_is_string(v) && strlen(json_string_value(v)) >
			    max))
				abort();
		}
	}
	json_decref(j);
}

static void
fuzz_buffer(enum relay_msg_kind kind, const uint8_t *data, size_t size,
    const struct relay_msg *full, unsigned cuts)
{
	grpc_slice		 slices[4];
	grpc_byte_buffer	*bb;
	struct relay_msg	 rm;
	uint8_t			*flat;
	size_t			 i, n = cuts % 4 + 1, off = 0, k, flatlen;
	int			 rc;

	for (i = 0; i < n; i++) {
		k = i == n - 1 ? size - off : size / n;
		slices[i] = grpc_slice_from_copied_buffer((const char *)data +
		    off, k);
		off += k;
	}
	bb = grpc_raw_byte_buffer_create(slices, n);
	for (i = 0; i < n; i++)
		grpc_slice_unref(slices[i]);
	rc = relay_msg_decode_buffer(kind, bb, &rm, (cuts & 4) ? &flat : NULL,
	    &flatlen);
	if ((rc == 0) != full->rm_decoded || rm.rm_decoded != full->rm_decoded ||
	    rm.rm_bytes != size)
		abort();
	if (!fuzz_same(rm.rm_type_url, full->rm_type_url) ||
	    !fuzz_same(rm.rm_nonce, full->rm_nonce) ||
	    !fuzz_same(rm.rm_version, full->rm_version) ||
	    !fuzz_same(rm.rm_node_id, full->rm_node_id) ||
	    !fuzz_same(rm.rm_error, full->rm_error) ||
	    rm.rm_has_error != full->rm_has_error ||
	    rm.rm_nresources != full->rm_nresources ||
	    rm.rm_nremoved != full->rm_nremoved)
		abort();
	if (cuts & 4) {
		if (flat == NULL || flatlen != size ||
		    (size > 0 && memcmp(flat, data, size) != 0))
			abort();
		free(flat);
	}
	relay_msg_clear(&rm);
	grpc_byte_buffer_destroy(bb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct relay_obs	 ob;
	struct relay_msg	 rm, again;
	enum relay_msg_kind	 kind;
	uint8_t			*node = NULL, *out = NULL, *again_out, *copy;
	size_t			 nodelen = 0, outlen = 0, again_len;
	int			 decoded;

	if (size < 1)
		return 0;
	kind = (enum relay_msg_kind)(data[0] & 3);
	/* An exact-size copy, so that any overread is caught. */
	copy = malloc(size - 1 + 1);
	memcpy(copy, data + 1, size - 1);
	size--;
	relay_observe_init(&ob, RELAY_OBS_STREAM_TYPES);
	decoded = relay_msg_decode(kind, copy, size, &rm) == 0;
	if (rm.rm_bytes != size || decoded != rm.rm_decoded)
		abort();
	if (kind == RELAY_MSG_REQUEST || kind == RELAY_MSG_DELTA_REQUEST)
		relay_observe_request(&ob, &rm);
	else
		relay_observe_response(&ob, &rm);
	fuzz_json(&ob);
	fuzz_buffer(kind, copy, size, &rm, data[0] >> 2);
	if (kind == RELAY_MSG_REQUEST) {
		relay_msg_node(copy, size, &node, &nodelen);
		if (relay_msg_for_replay(copy, size, node, nodelen, &out,
		    &outlen) == 0) {
			if (outlen > size + nodelen + 11)
				abort();
			if (decoded) {
				if (relay_msg_decode(kind, out, outlen,
				    &again) != 0)
					abort();
				if (*again.rm_nonce != '\0' ||
				    again.rm_has_error ||
				    strcmp(again.rm_type_url,
				    rm.rm_type_url) != 0)
					abort();
				relay_msg_clear(&again);
			}
			if (relay_msg_for_replay(out, outlen, node, nodelen,
			    &again_out, &again_len) != 0 ||
			    again_len != outlen ||
			    memcmp(again_out, out, outlen) != 0)
				abort();
			free(again_out);
			free(out);
		}
		free(node);
	}
	relay_msg_clear(&rm);
	relay_observe_clear(&ob);
	free(copy);
	return 0;
}
