/*
 * The gRPC application probe: grpc.health.v1.Health/Check through gRPC
 * core, as the kubelet does it (insecure, waiting for the connection until
 * the probe's deadline). Each check opens its own channel, as Istio does.
 *
 * gRPC core completes calls on a completion queue, which a thread of ours
 * waits on; that thread does nothing but queue the finished checks and
 * wake the event loop through a pipe. Everything else (reading the answer,
 * freeing the call, the callback) runs on the event loop's thread, which is
 * the only one that touches agent state.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/event.h>
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "status.h"

#define GRPC_HEALTH_METHOD	"/grpc.health.v1.Health/Check"

struct grpc_check {
	struct probe_grpc	*gc_pg;
	grpc_channel		*gc_channel;
	grpc_call		*gc_call;
	grpc_metadata_array	 gc_initial;
	grpc_metadata_array	 gc_trailing;
	grpc_byte_buffer	*gc_send;
	grpc_byte_buffer	*gc_recv;
	grpc_status_code	 gc_status;
	grpc_slice		 gc_details;
	int			 gc_ok;		/* the batch succeeded */
	int			 gc_cancelled;	/* no callback */
	probe_grpc_cb		 gc_cb;
	void			*gc_arg;
	TAILQ_ENTRY(grpc_check)	 gc_entry;	/* pg_active */
	TAILQ_ENTRY(grpc_check)	 gc_done;	/* pg_done */
};

TAILQ_HEAD(grpc_checks, grpc_check);

struct probe_grpc {
	struct event_base	*pg_base;
	grpc_completion_queue	*pg_cq;
	pthread_t		 pg_thread;
	int			 pg_pipe[2];
	struct event		*pg_ev;
	pthread_mutex_t		 pg_lock;
	struct grpc_checks	 pg_done;	/* under pg_lock */
	struct grpc_checks	 pg_active;	/* event loop only */
};

/* The completion queue's thread. */
static void *
probe_grpc_thread(void *arg)
{
	struct probe_grpc	*pg = arg;
	struct grpc_check	*gc;
	grpc_event		 ev;
	char			 c = 'x';

	for (;;) {
		ev = grpc_completion_queue_next(pg->pg_cq,
		    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		gc = ev.tag;
		gc->gc_ok = ev.success;
		pthread_mutex_lock(&pg->pg_lock);
		TAILQ_INSERT_TAIL(&pg->pg_done, gc, gc_done);
		pthread_mutex_unlock(&pg->pg_lock);
		/* A full pipe already holds a wake-up; nothing is lost. */
		if (write(pg->pg_pipe[1], &c, 1) == -1 && errno != EAGAIN)
			break;
	}
	return NULL;
}

static void
probe_grpc_check_free(struct grpc_check *gc)
{
	if (gc->gc_call != NULL)
		grpc_call_unref(gc->gc_call);
	if (gc->gc_channel != NULL)
		grpc_channel_destroy(gc->gc_channel);
	grpc_metadata_array_destroy(&gc->gc_initial);
	grpc_metadata_array_destroy(&gc->gc_trailing);
	if (gc->gc_send != NULL)
		grpc_byte_buffer_destroy(gc->gc_send);
	if (gc->gc_recv != NULL)
		grpc_byte_buffer_destroy(gc->gc_recv);
	grpc_slice_unref(gc->gc_details);
	free(gc);
}

/* HealthCheckResponse.status (field 1, varint); -1 if absent or bad. */
static int
probe_grpc_decode(const uint8_t *p, size_t len)
{
	size_t		 i = 0;
	uint64_t	 key, v;
	int		 shift, status = 0;

	while (i < len) {
		for (key = 0, shift = 0; i < len && shift < 64; shift += 7) {
			key |= (uint64_t)(p[i] & 0x7f) << shift;
			if ((p[i++] & 0x80) == 0)
				break;
		}
		switch (key & 7) {
		case 0:
			for (v = 0, shift = 0; i < len && shift < 64;
			    shift += 7) {
				v |= (uint64_t)(p[i] & 0x7f) << shift;
				if ((p[i++] & 0x80) == 0)
					break;
			}
			if ((key >> 3) == 1)
				status = (int)v;
			break;
		case 1:
			i += 8;
			break;
		case 2:
			for (v = 0, shift = 0; i < len && shift < 64;
			    shift += 7) {
				v |= (uint64_t)(p[i] & 0x7f) << shift;
				if ((p[i++] & 0x80) == 0)
					break;
			}
			if (v > len - i)
				return -1;
			i += v;
			break;
		case 5:
			i += 4;
			break;
		default:
			return -1;
		}
	}
	return i == len ? status : -1;
}

static const char *
probe_grpc_status_name(int status)
{
	switch (status) {
	case 0:
		return "UNKNOWN";
	case 1:
		return "SERVING";
	case 2:
		return "NOT_SERVING";
	case 3:
		return "SERVICE_UNKNOWN";
	default:
		return "an unknown status";
	}
}

/* A finished check, on the event loop's thread. */
static void
probe_grpc_finish(struct grpc_check *gc)
{
	grpc_byte_buffer_reader	 reader;
	grpc_slice		 all;
	char			 why[512], *details;
	int			 serving = 0, status;

	details = grpc_slice_to_c_string(gc->gc_details);
	if (!gc->gc_ok)
		snprintf(why, sizeof(why), "grpc probe failed: the call did "
		    "not complete");
	else if (gc->gc_status == GRPC_STATUS_UNIMPLEMENTED)
		snprintf(why, sizeof(why), "server does not implement the "
		    "grpc health protocol (grpc.health.v1.Health): %s",
		    details);
	else if (gc->gc_status == GRPC_STATUS_DEADLINE_EXCEEDED)
		snprintf(why, sizeof(why), "grpc request not finished within "
		    "timeout: %s", details);
	else if (gc->gc_status != GRPC_STATUS_OK)
		snprintf(why, sizeof(why), "grpc probe failed: status %d: %s",
		    (int)gc->gc_status, details);
	else if (gc->gc_recv == NULL)
		snprintf(why, sizeof(why), "grpc probe failed: no response");
	else {
		grpc_byte_buffer_reader_init(&reader, gc->gc_recv);
		all = grpc_byte_buffer_reader_readall(&reader);
		grpc_byte_buffer_reader_destroy(&reader);
		status = probe_grpc_decode(GRPC_SLICE_START_PTR(all),
		    GRPC_SLICE_LENGTH(all));
		grpc_slice_unref(all);
		if (status == 1)
			serving = 1;
		else if (status == -1)
			snprintf(why, sizeof(why), "grpc probe failed: "
			    "malformed response");
		else
			snprintf(why, sizeof(why), "service unhealthy "
			    "(responded with \"%s\")",
			    probe_grpc_status_name(status));
	}
	gpr_free(details);
	if (serving)
		*why = '\0';
	TAILQ_REMOVE(&gc->gc_pg->pg_active, gc, gc_entry);
	if (!gc->gc_cancelled)
		gc->gc_cb(serving, why, gc->gc_arg);
	probe_grpc_check_free(gc);
}

static void
probe_grpc_wake(evutil_socket_t fd, short what, void *arg)
{
	struct probe_grpc	*pg = arg;
	struct grpc_checks	 done;
	struct grpc_check	*gc;
	char			 buf[64];

	(void)what;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	TAILQ_INIT(&done);
	pthread_mutex_lock(&pg->pg_lock);
	TAILQ_CONCAT(&done, &pg->pg_done, gc_done);
	pthread_mutex_unlock(&pg->pg_lock);
	while ((gc = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, gc, gc_done);
		probe_grpc_finish(gc);
	}
}

struct probe_grpc *
probe_grpc_new(struct event_base *base, char *err, size_t errlen)
{
	struct probe_grpc	*pg;

	pg = xcalloc(1, sizeof(*pg));
	pg->pg_base = base;
	TAILQ_INIT(&pg->pg_done);
	TAILQ_INIT(&pg->pg_active);
	pthread_mutex_init(&pg->pg_lock, NULL);
	if (pipe2(pg->pg_pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		pthread_mutex_destroy(&pg->pg_lock);
		free(pg);
		return NULL;
	}
	grpc_init();
	pg->pg_cq = grpc_completion_queue_create_for_next(NULL);
	if (pthread_create(&pg->pg_thread, NULL, probe_grpc_thread, pg) != 0) {
		snprintf(err, errlen, "cannot start the gRPC probe thread");
		grpc_completion_queue_shutdown(pg->pg_cq);
		grpc_completion_queue_destroy(pg->pg_cq);
		grpc_shutdown();
		close(pg->pg_pipe[0]);
		close(pg->pg_pipe[1]);
		pthread_mutex_destroy(&pg->pg_lock);
		free(pg);
		return NULL;
	}
	pg->pg_ev = event_new(base, pg->pg_pipe[0], EV_READ | EV_PERSIST,
	    probe_grpc_wake, pg);
	event_add(pg->pg_ev, NULL);
	return pg;
}

/* Cancels every check under way (no callbacks) and stops the thread. */
void
probe_grpc_free(struct probe_grpc *pg)
{
	struct grpc_check	*gc;

	if (pg == NULL)
		return;
	TAILQ_FOREACH(gc, &pg->pg_active, gc_entry) {
		gc->gc_cancelled = 1;
		grpc_call_cancel(gc->gc_call, NULL);
	}
	/* The queue shuts down once every cancelled call has completed. */
	grpc_completion_queue_shutdown(pg->pg_cq);
	pthread_join(pg->pg_thread, NULL);
	probe_grpc_wake(pg->pg_pipe[0], EV_READ, pg);
	grpc_completion_queue_destroy(pg->pg_cq);
	event_free(pg->pg_ev);
	close(pg->pg_pipe[0]);
	close(pg->pg_pipe[1]);
	pthread_mutex_destroy(&pg->pg_lock);
	free(pg);
	grpc_shutdown();
}

/*
 * Starts a check of target ("ipv4:127.0.0.1:50051") for service (NULL:
 * the server as a whole). cb gets 1 for SERVING, else 0 and the reason.
 */
int
probe_grpc_check(struct probe_grpc *pg, const char *target,
    const char *service, int64_t timeout, const char *user_agent,
    probe_grpc_cb cb, void *arg)
{
	struct grpc_check	*gc;
	grpc_channel_credentials *creds;
	grpc_channel_args	 args;
	grpc_arg		 ua;
	grpc_op			 ops[6];
	grpc_slice		 msg, method;
	gpr_timespec		 deadline;
	uint8_t			 req[2 + 1024];
	size_t			 slen = service != NULL ? strlen(service) : 0,
				 len = 0;

	if (slen >= sizeof(req) - 2 || slen > 127) {
		log_warnx("grpc probe: service name too long");
		return -1;
	}
	if (slen > 0) {
		req[0] = 0x0a;	/* field 1, length-delimited */
		req[1] = (uint8_t)slen;
		memcpy(req + 2, service, slen);
		len = slen + 2;
	}
	gc = xcalloc(1, sizeof(*gc));
	gc->gc_pg = pg;
	gc->gc_cb = cb;
	gc->gc_arg = arg;
	gc->gc_details = grpc_empty_slice();
	grpc_metadata_array_init(&gc->gc_initial);
	grpc_metadata_array_init(&gc->gc_trailing);

	memset(&args, 0, sizeof(args));
	if (user_agent != NULL && *user_agent != '\0') {
		ua.type = GRPC_ARG_STRING;
		ua.key = (char *)GRPC_ARG_PRIMARY_USER_AGENT_STRING;
		ua.value.string = (char *)user_agent;
		args.num_args = 1;
		args.args = &ua;
	}
	creds = grpc_insecure_credentials_create();
	gc->gc_channel = grpc_channel_create(target, creds, &args);
	grpc_channel_credentials_release(creds);
	deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
	    gpr_time_from_millis(timeout / 1000000, GPR_TIMESPAN));
	method = grpc_slice_from_static_string(GRPC_HEALTH_METHOD);
	gc->gc_call = grpc_channel_create_call(gc->gc_channel, NULL,
	    GRPC_PROPAGATE_DEFAULTS, pg->pg_cq, method, NULL, deadline, NULL);
	msg = grpc_slice_from_copied_buffer((const char *)req, len);
	gc->gc_send = grpc_raw_byte_buffer_create(&msg, 1);
	grpc_slice_unref(msg);

	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY |
	    GRPC_INITIAL_METADATA_WAIT_FOR_READY_EXPLICITLY_SET;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = gc->gc_send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata =
	    &gc->gc_initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &gc->gc_recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata =
	    &gc->gc_trailing;
	ops[5].data.recv_status_on_client.status = &gc->gc_status;
	ops[5].data.recv_status_on_client.status_details = &gc->gc_details;
	TAILQ_INSERT_TAIL(&pg->pg_active, gc, gc_entry);
	if (grpc_call_start_batch(gc->gc_call, ops, 6, gc, NULL) !=
	    GRPC_CALL_OK) {
		log_warnx("grpc probe: cannot start the call to %s", target);
		TAILQ_REMOVE(&pg->pg_active, gc, gc_entry);
		probe_grpc_check_free(gc);
		return -1;
	}
	return 0;
}
