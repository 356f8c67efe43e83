/*
 * A bounded queue of messages waiting for their send, one per direction of
 * a relayed stream. The bound is not enforced here: the relay stops
 * reading from the side that is ahead while relay_queue_full() says so, so
 * a push never fails and memory stays bounded by what one read can add.
 */
#include <stdlib.h>

#include <grpc/byte_buffer.h>

#include "agent.h"
#include "relay.h"

void
relay_queue_init(struct relay_queue *rq, size_t max_count, size_t max_bytes)
{
	TAILQ_INIT(&rq->rq_msgs);
	rq->rq_count = 0;
	rq->rq_bytes = 0;
	rq->rq_max_count = max_count;
	rq->rq_max_bytes = max_bytes;
	rq->rq_high_bytes = 0;
}

/* Takes ownership of bb. */
void
relay_queue_push(struct relay_queue *rq, grpc_byte_buffer *bb, size_t len)
{
	struct relay_qmsg	*qm;

	qm = xmalloc(sizeof(*qm));
	qm->qm_buf = bb;
	qm->qm_len = len;
	TAILQ_INSERT_TAIL(&rq->rq_msgs, qm, qm_entry);
	rq->rq_count++;
	rq->rq_bytes += len;
	if (rq->rq_bytes > rq->rq_high_bytes)
		rq->rq_high_bytes = rq->rq_bytes;
}

/* The oldest message, now the caller's; NULL when empty. */
grpc_byte_buffer *
relay_queue_pop(struct relay_queue *rq, size_t *len)
{
	struct relay_qmsg	*qm;
	grpc_byte_buffer	*bb;

	if ((qm = TAILQ_FIRST(&rq->rq_msgs)) == NULL)
		return NULL;
	TAILQ_REMOVE(&rq->rq_msgs, qm, qm_entry);
	rq->rq_count--;
	rq->rq_bytes -= qm->qm_len;
	bb = qm->qm_buf;
	if (len != NULL)
		*len = qm->qm_len;
	free(qm);
	return bb;
}

int
relay_queue_full(const struct relay_queue *rq)
{
	return rq->rq_count >= rq->rq_max_count ||
	    (rq->rq_count > 0 && rq->rq_bytes >= rq->rq_max_bytes);
}

int
relay_queue_empty(const struct relay_queue *rq)
{
	return rq->rq_count == 0;
}

void
relay_queue_clear(struct relay_queue *rq)
{
	grpc_byte_buffer	*bb;

	while ((bb = relay_queue_pop(rq, NULL)) != NULL)
		grpc_byte_buffer_destroy(bb);
}
