/*
 * Unit tests of agent/relay/relay_queue.c, the bounded queue of messages
 * towards the proxy: full by count or by bytes (one message over the byte
 * bound is always let in), its high-water mark, and emptied by a clear.
 */
#include <stdint.h>

#include <grpc/byte_buffer.h>

#include "agent.h"
#include "relay/relay.h"
#include "check.h"

static void
test_queue(void)
{
	struct relay_queue	 rq;
	size_t			 len;
	int			 i;
	uint8_t			 b[10] = { 0 };

	relay_queue_init(&rq, 3, 100);
	CHECK(relay_queue_empty(&rq) && !relay_queue_full(&rq));
	relay_queue_push(&rq, relay_msg_buffer(b, 10), 500);
	/* One message over the byte bound fills it; one is always let in. */
	CHECK(relay_queue_full(&rq));
	grpc_byte_buffer_destroy(relay_queue_pop(&rq, &len));
	CHECK(len == 500 && relay_queue_empty(&rq));
	for (i = 0; i < 3; i++)
		relay_queue_push(&rq, relay_msg_buffer(b, 10), 10);
	CHECK(relay_queue_full(&rq) && rq.rq_count == 3 && rq.rq_bytes == 30);
	CHECK(rq.rq_high_bytes == 500);
	relay_queue_clear(&rq);
	CHECK(relay_queue_empty(&rq) && rq.rq_bytes == 0);
}

int
main(void)
{
	test_queue();
	return check_done("test_relay_queue");
}
