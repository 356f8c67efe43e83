/*
 * Unit tests of agent/relay_observe.c's classification of requests: a
 * request with error_detail is a NACK whatever its nonce; an ACK echoes the
 * nonce of the last response of its type; anything else is a plain request.
 */
#include <stdlib.h>

#include "agent.h"
#include "relay.h"
#include "check.h"

#define CDS	"type.googleapis.com/envoy.config.cluster.v3.Cluster"

static struct relay_obs	ob;

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

int
main(void)
{
	struct relay_type *ty;

	relay_observe_init(&ob);
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
	ty = relay_observe_type(&ob, CDS);
	CHECK(ty->ty_acks == 3);
	CHECK(ty->ty_nacks == 2);
	CHECK(ty->ty_requests == 9);
	relay_observe_clear(&ob);
	return check_done("test_relay_observe");
}
