/*
 * gRPC's completion queue, served by a thread of its own, and the hand-off
 * of each completed operation to the libevent thread (DESIGN §2).
 *
 * The thread blocks in grpc_completion_queue_next. For a completed batch
 * that received a message it decodes the message (relay_msg.c touches no
 * shared state, and this keeps the decoding of large responses off the
 * libevent thread); then it appends the operation to a locked list and, when
 * the list was empty, writes to an eventfd. The libevent thread reads the
 * eventfd, takes the whole list, and runs each operation's callback. So the
 * only state both threads touch is the list, under its lock, and each
 * operation, which the libevent thread does not look at between starting
 * its batch and running its callback.
 */
#include <sys/eventfd.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <grpc/byte_buffer.h>
#include <grpc/support/time.h>

#include "agent.h"
#include "relay.h"

struct relay_cq {
	struct event_base	*cq_base;
	grpc_completion_queue	*cq_queue;
	pthread_t		 cq_thread;
	int			 cq_started;
	int			 cq_efd;
	struct event		*cq_ev;
	pthread_mutex_t		 cq_lock;
	TAILQ_HEAD(, relay_op)	 cq_done;	/* under cq_lock */
};

static void *
relay_cq_thread(void *arg)
{
	struct relay_cq	*cq = arg;
	struct relay_op	*op;
	grpc_event	 ev;
	uint64_t	 one = 1;
	int		 was_empty;

	for (;;) {
		ev = grpc_completion_queue_next(cq->cq_queue,
		    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		op = ev.tag;
		op->op_ok = ev.success;
		if (op->op_decode >= 0 && op->op_buf != NULL)
			relay_msg_decode_buffer(
			    (enum relay_msg_kind)op->op_decode, op->op_buf,
			    &op->op_msg, op->op_keep_flat ? &op->op_flat : NULL,
			    &op->op_flat_len);
		pthread_mutex_lock(&cq->cq_lock);
		was_empty = TAILQ_EMPTY(&cq->cq_done);
		TAILQ_INSERT_TAIL(&cq->cq_done, op, op_entry);
		pthread_mutex_unlock(&cq->cq_lock);
		if (was_empty) {
			while (write(cq->cq_efd, &one, sizeof(one)) == -1 &&
			    errno == EINTR)
				;
		}
	}
	return NULL;
}

/* Runs the callbacks of every operation handed over so far. */
static int
relay_cq_run(struct relay_cq *cq)
{
	TAILQ_HEAD(, relay_op)	 done;
	struct relay_op		*op;
	uint64_t		 n;
	int			 count = 0;

	if (read(cq->cq_efd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		log_warn("xds relay: eventfd read");
	TAILQ_INIT(&done);
	pthread_mutex_lock(&cq->cq_lock);
	TAILQ_CONCAT(&done, &cq->cq_done, op_entry);
	pthread_mutex_unlock(&cq->cq_lock);
	while ((op = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, op, op_entry);
		count++;
		op->op_cb(op);
	}
	return count;
}

static void
relay_cq_event(int fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	relay_cq_run(arg);
}

struct relay_cq *
relay_cq_new(struct event_base *base, char *err, size_t errlen)
{
	struct relay_cq	*cq;

	cq = xcalloc(1, sizeof(*cq));
	cq->cq_base = base;
	cq->cq_efd = -1;
	TAILQ_INIT(&cq->cq_done);
	pthread_mutex_init(&cq->cq_lock, NULL);
	if ((cq->cq_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	cq->cq_ev = event_new(base, cq->cq_efd, EV_READ | EV_PERSIST,
	    relay_cq_event, cq);
	if (cq->cq_ev == NULL || event_add(cq->cq_ev, NULL) == -1) {
		snprintf(err, errlen, "cannot watch the completion eventfd");
		goto fail;
	}
	cq->cq_queue = grpc_completion_queue_create_for_next(NULL);
	if (pthread_create(&cq->cq_thread, NULL, relay_cq_thread, cq) != 0) {
		snprintf(err, errlen, "cannot start the gRPC thread");
		goto fail;
	}
	cq->cq_started = 1;
	return cq;
fail:
	relay_cq_free(cq);
	return NULL;
}

/*
 * Shuts the queue down and ends its thread. Every batch started on it must
 * have completed and been dispatched (relay_cq_dispatch) before, or its
 * operation would be left behind.
 */
void
relay_cq_free(struct relay_cq *cq)
{
	if (cq == NULL)
		return;
	if (cq->cq_queue != NULL) {
		grpc_completion_queue_shutdown(cq->cq_queue);
		if (cq->cq_started)
			pthread_join(cq->cq_thread, NULL);
		grpc_completion_queue_destroy(cq->cq_queue);
	}
	if (cq->cq_ev != NULL)
		event_free(cq->cq_ev);
	if (cq->cq_efd != -1)
		close(cq->cq_efd);
	pthread_mutex_destroy(&cq->cq_lock);
	free(cq);
}

grpc_completion_queue *
relay_cq_queue(struct relay_cq *cq)
{
	return cq->cq_queue;
}

void
relay_cq_take(struct relay_op *op, struct relay_recv *rr)
{
	rr->rr_ok = op->op_ok;
	rr->rr_buf = op->op_buf;
	rr->rr_msg = op->op_msg;
	rr->rr_flat = op->op_flat;
	rr->rr_flat_len = op->op_flat_len;
	op->op_buf = NULL;
	memset(&op->op_msg, 0, sizeof(op->op_msg));
	op->op_flat = NULL;
	op->op_flat_len = 0;
}

void
relay_cq_recv_clear(struct relay_recv *rr)
{
	if (rr->rr_buf != NULL)
		grpc_byte_buffer_destroy(rr->rr_buf);
	relay_msg_clear(&rr->rr_msg);
	free(rr->rr_flat);
	memset(rr, 0, sizeof(*rr));
}

void
relay_cq_op_init(struct relay_op *op, relay_op_cb cb, void *arg)
{
	memset(op, 0, sizeof(*op));
	op->op_cb = cb;
	op->op_arg = arg;
	op->op_decode = -1;
}

/*
 * Runs handed-over operations outside the event loop, for a shutdown that
 * must wait for its batches: waits up to timeout_ms for one to arrive.
 * Returns how many ran.
 */
int
relay_cq_dispatch(struct relay_cq *cq, int timeout_ms)
{
	struct pollfd	 pfd;

	pfd.fd = cq->cq_efd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return 0;
	return relay_cq_run(cq);
}
