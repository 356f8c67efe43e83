/*
 * The xDS relay's private interface, shared by agent/relay*.c, their unit
 * tests and fuzz harness, and the test tools (tests/xds-server,
 * tests/envoy-emu) that speak the same messages. What the rest of the agent
 * uses is declared in agent.h (relay_new, relay_free, relay_syncz,
 * relay_metrics).
 *
 * Threads: gRPC's completion queue is served by one thread of its own
 * (relay_cq.c). It only waits for completions, decodes received messages
 * into a struct relay_msg (which touches nothing shared), and hands each
 * completed operation to the libevent thread through a locked list and an
 * eventfd. Every other function here runs on the libevent thread.
 */
#ifndef RELAY_H
#define RELAY_H

#include <sys/queue.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <grpc/grpc.h>

struct event_base;
struct evbuffer;
struct json_t;

#define RELAY_SOTW_METHOD \
	"/envoy.service.discovery.v3.AggregatedDiscoveryService/" \
	"StreamAggregatedResources"
#define RELAY_DELTA_METHOD \
	"/envoy.service.discovery.v3.AggregatedDiscoveryService/" \
	"DeltaAggregatedResources"

/*
 * The bound of each direction's queue of one stream: a side that is ahead is
 * not read from while its queue holds this many messages or bytes. One
 * message is always let in, however large, or a message larger than the
 * byte bound could never pass.
 */
#define RELAY_QUEUE_MAX_MSGS	16
#define RELAY_QUEUE_MAX_BYTES	(4u << 20)

/* relay_msg.c: decoding xDS messages, only to observe them. */
enum relay_msg_kind {
	RELAY_MSG_REQUEST,		/* DiscoveryRequest */
	RELAY_MSG_RESPONSE,		/* DiscoveryResponse */
	RELAY_MSG_DELTA_REQUEST,	/* DeltaDiscoveryRequest */
	RELAY_MSG_DELTA_RESPONSE	/* DeltaDiscoveryResponse */
};

/* What the relay learns from one message. Strings are owned. */
struct relay_msg {
	int		 rm_decoded;	/* 0: undecodable, fields empty */
	size_t		 rm_bytes;	/* size on the wire */
	char		*rm_type_url;
	char		*rm_version;	/* version_info, system_version_info */
	char		*rm_nonce;	/* nonce, or the request's response_nonce */
	char		*rm_node_id;	/* NULL unless the request has a node */
	int		 rm_has_error;	/* a request with error_detail: a NACK */
	int		 rm_error_code;
	char		*rm_error;
	size_t		 rm_nresources;	/* resources, or names subscribed */
	size_t		 rm_nremoved;	/* removed, or names unsubscribed */
};

int	 relay_msg_decode(enum relay_msg_kind, const uint8_t *, size_t,
	    struct relay_msg *);
int	 relay_msg_decode_buffer(enum relay_msg_kind, grpc_byte_buffer *,
	    struct relay_msg *, uint8_t **, size_t *);
void	 relay_msg_clear(struct relay_msg *);
int	 relay_msg_node(const uint8_t *, size_t, uint8_t **, size_t *);
int	 relay_msg_for_replay(const uint8_t *, size_t, const uint8_t *,
	    size_t, uint8_t **, size_t *);
uint8_t	*relay_msg_flatten(grpc_byte_buffer *, size_t *);
grpc_byte_buffer *relay_msg_buffer(const uint8_t *, size_t);
const char *relay_msg_kind_name(enum relay_msg_kind);

/* relay_cq.c: the completion queue thread and its hand-off. */
struct relay_op;
typedef void (*relay_op_cb)(struct relay_op *);

struct relay_op {
	TAILQ_ENTRY(relay_op) op_entry;
	relay_op_cb	 op_cb;		/* run on the libevent thread */
	void		*op_arg;
	int		 op_ok;		/* the batch's success */
	/*
	 * A batch that receives a message names the buffer, and a kind to
	 * decode it as (op_decode >= 0); the thread fills op_msg and, for
	 * requests, keeps the flat bytes in op_flat for the caller.
	 */
	grpc_byte_buffer *op_buf;
	int		 op_decode;
	int		 op_keep_flat;
	struct relay_msg op_msg;
	uint8_t		*op_flat;
	size_t		 op_flat_len;
};

/*
 * What a completed receive produced, taken out of its operation before the
 * next receive is started on it (relay_cq_take): the operation is then free
 * for the completion queue thread to fill again.
 */
struct relay_recv {
	int		 rr_ok;
	grpc_byte_buffer *rr_buf;	/* NULL: the end of the stream */
	struct relay_msg rr_msg;
	uint8_t		*rr_flat;
	size_t		 rr_flat_len;
};

struct relay_cq;

void	 relay_cq_take(struct relay_op *, struct relay_recv *);
void	 relay_cq_recv_clear(struct relay_recv *);
struct relay_cq *relay_cq_new(struct event_base *, char *, size_t);
void	 relay_cq_free(struct relay_cq *);
grpc_completion_queue *relay_cq_queue(struct relay_cq *);
void	 relay_cq_op_init(struct relay_op *, relay_op_cb, void *);
int	 relay_cq_dispatch(struct relay_cq *, int);

/* relay_queue.c: a bounded queue of messages waiting for their send. */
struct relay_qmsg {
	TAILQ_ENTRY(relay_qmsg) qm_entry;
	grpc_byte_buffer *qm_buf;
	size_t		 qm_len;
};

struct relay_queue {
	TAILQ_HEAD(, relay_qmsg) rq_msgs;
	size_t		 rq_count;
	size_t		 rq_bytes;
	size_t		 rq_max_count;
	size_t		 rq_max_bytes;
	size_t		 rq_high_bytes;	/* the most ever held */
};

void	 relay_queue_init(struct relay_queue *, size_t, size_t);
void	 relay_queue_push(struct relay_queue *, grpc_byte_buffer *, size_t);
grpc_byte_buffer *relay_queue_pop(struct relay_queue *, size_t *);
int	 relay_queue_full(const struct relay_queue *);
int	 relay_queue_empty(const struct relay_queue *);
void	 relay_queue_clear(struct relay_queue *);

/*
 * relay_observe.c: per type URL counters and state.
 *
 * What the relay keeps of what it observes is bounded, whatever the control
 * plane sends (it forwards every message all the same). Envoy and istiod
 * use about ten type URLs (clusters, endpoints, listeners, routes, secrets,
 * extension configs, the name table, a few more), so each stream tracks at
 * most RELAY_OBS_STREAM_TYPES of them, and the relay's totals, which
 * outlive the streams and feed the metrics, RELAY_OBS_TOTAL_TYPES; every
 * further type URL is counted under the one entry RELAY_OBS_OTHER, which is
 * also the label of its metrics. A type URL first seen in a response takes
 * a slot only while the table is less than half full: the other half is
 * kept for the types the proxy asks for, so that a control plane sending
 * types nobody asked for cannot crowd out the proxy's own types (their
 * counters, and the latest request of each, which the replay needs).
 * Strings kept from messages (type URL, version, nonce) are cut to
 * RELAY_OBS_MAX_STR bytes and a NACK's error message to RELAY_OBS_MAX_ERROR,
 * ending in RELAY_OBS_CUT when cut. So the memory, the metrics and the
 * /debug/syncz of the relay are bounded by these caps.
 */
#define RELAY_OBS_STREAM_TYPES	64
#define RELAY_OBS_TOTAL_TYPES	128
#define RELAY_OBS_MAX_STR	128
#define RELAY_OBS_MAX_ERROR	1024
#define RELAY_OBS_OTHER		"other"
#define RELAY_OBS_CUT		"...[truncated]"

enum relay_req_class {
	RELAY_REQ_SUBSCRIBE,	/* not echoing the last response: first, change, stale */
	RELAY_REQ_ACK,
	RELAY_REQ_NACK,
	RELAY_REQ_UNDECODABLE
};

struct relay_type {
	TAILQ_ENTRY(relay_type) ty_entry;
	char		*ty_url;		/* cut, or RELAY_OBS_OTHER */
	int		 ty_other;		/* the entry of the overflow */
	uint64_t	 ty_requests;
	uint64_t	 ty_responses;
	uint64_t	 ty_acks;
	uint64_t	 ty_nacks;
	uint64_t	 ty_request_bytes;
	uint64_t	 ty_response_bytes;
	uint64_t	 ty_resources;		/* in the latest response */
	uint64_t	 ty_removed;		/* in the latest delta response */
	char		*ty_sent_version;	/* latest response's */
	char		*ty_sent_nonce;
	char		*ty_acked_version;	/* latest ACK's */
	char		*ty_acked_nonce;
	char		*ty_nack_version;	/* latest NACK's */
	char		*ty_nack_nonce;
	char		*ty_nack_error;
	int64_t		 ty_last_response;	/* unix ms, 0: never */
	int64_t		 ty_last_ack;
	int64_t		 ty_last_nack;
	/* The latest request of this type, kept for the replay (SotW). */
	uint8_t		*ty_last_request;
	size_t		 ty_last_request_len;
};

struct relay_obs {
	TAILQ_HEAD(, relay_type) ob_types;	/* in order of appearance */
	size_t		 ob_ntypes;		/* "other" not included */
	size_t		 ob_max;		/* the cap of ob_ntypes */
	/*
	 * The entries by type URL: open addressing with linear probing, in
	 * a table of a power of two slots at least twice ob_max, so it is
	 * never more than half full and a lookup is O(1).
	 */
	struct relay_type **ob_slots;
	size_t		 ob_nslots;
	struct relay_type *ob_other;		/* NULL until the cap is hit */
	char		*ob_first_other;	/* the first type URL past it */
	int		 ob_other_told;		/* relay_observe_overflow said so */
	uint64_t	 ob_undecodable_requests;
	uint64_t	 ob_undecodable_responses;
	uint64_t	 ob_requests;
	uint64_t	 ob_responses;
};

void	 relay_observe_init(struct relay_obs *, size_t);
void	 relay_observe_clear(struct relay_obs *);
struct relay_type *relay_observe_find(const struct relay_obs *,
	    const char *);
const char *relay_observe_overflow(struct relay_obs *);
void	 relay_observe_cut(char *, size_t, const char *);
enum relay_req_class relay_observe_request(struct relay_obs *,
	    const struct relay_msg *);
void	 relay_observe_response(struct relay_obs *, const struct relay_msg *);
struct json_t *relay_observe_json(const struct relay_obs *);
void	 relay_observe_metrics(const struct relay_obs *, struct evbuffer *);
const char *relay_observe_class_name(enum relay_req_class);

/* relay.c, relay_stream.c, relay_upstream.c: the relay, its streams, their
 * upstreams. */
enum relay_up_state {
	RELAY_UP_CONNECTING,	/* upstream call started, nothing received */
	RELAY_UP_CONNECTED,	/* the control plane answered on it */
	RELAY_UP_BACKOFF,	/* broken; waiting to reconnect */
	RELAY_UP_CLOSED		/* no upstream any more: the stream ends */
};

struct relay_upstream;
struct relay_accept;

struct relay_stream {
	TAILQ_ENTRY(relay_stream) st_entry;
	struct relay	*st_relay;
	uint64_t	 st_id;
	int		 st_delta;
	grpc_call	*st_call;		/* the proxy's (downstream) call */
	int		 st_pending;		/* downstream batches in flight */
	struct relay_op	 st_op_meta;
	struct relay_op	 st_op_recv;
	struct relay_op	 st_op_send;
	struct relay_op	 st_op_close;
	struct relay_op	 st_op_status;
	int		 st_recv_busy;
	int		 st_send_busy;
	int		 st_cancelled;		/* filled by RECV_CLOSE_ON_SERVER */
	int		 st_closed;		/* the downstream call is over */
	int		 st_halfclosed;		/* the proxy sent its last message */
	int		 st_ending;		/* a status waits for the queue */
	int		 st_status_sent;
	grpc_status_code st_end_code;
	char		*st_end_msg;
	grpc_slice	 st_end_slice;
	grpc_byte_buffer *st_sending;		/* in flight to the proxy */
	struct relay_queue st_to_up;		/* requests */
	struct relay_queue st_to_down;		/* responses */
	struct relay_upstream *st_up;		/* NULL while none */
	enum relay_up_state st_up_state;
	struct event	*st_timer;		/* the reconnect */
	int		 st_attempt;		/* failed attempts in a row */
	uint64_t	 st_reconnects;
	uint64_t	 st_replayed;
	uint8_t		*st_node;		/* encoded node of the first request */
	size_t		 st_nodelen;
	char		*st_node_id;
	char		*st_last_error;
	int64_t		 st_started;		/* unix ms */
	int64_t		 st_up_since;
	struct relay_obs st_obs;
};

struct relay_upstream {
	struct relay	*us_relay;
	struct relay_stream *us_stream;		/* NULL once detached */
	grpc_channel	*us_channel;
	grpc_call	*us_call;
	int		 us_pending;		/* batches in flight */
	struct relay_op	 us_op_start;
	struct relay_op	 us_op_recv;
	struct relay_op	 us_op_send;
	struct relay_op	 us_op_status;
	struct relay_op	 us_op_halfclose;
	grpc_metadata_array us_md_initial;
	grpc_metadata_array us_md_trailing;
	grpc_status_code us_status;
	grpc_slice	 us_details;
	grpc_byte_buffer *us_sending;
	int		 us_recv_busy;
	int		 us_send_busy;
	int		 us_halfclosed;
	int		 us_ended;		/* its status arrived */
	uint64_t	 us_responses;
};

struct relay {
	struct event_base *rl_base;
	const struct config *rl_cf;
	struct relay_cq	*rl_cq;
	grpc_server	*rl_server;
	char		*rl_socket;		/* <configPath>/XDS */
	char		*rl_target;		/* upstream gRPC target */
	grpc_metadata	*rl_headers;		/* from XDS_HEADER_* */
	size_t		 rl_nheaders;
	TAILQ_HEAD(, relay_stream) rl_streams;
	size_t		 rl_nstreams;
	size_t		 rl_nupstreams;		/* alive, attached or not */
	int		 rl_pending;		/* server-level batches */
	struct relay_accept *rl_accept;		/* the request for a new call */
	struct relay_op	 rl_shutdown_op;
	int		 rl_shutdown_done;
	int		 rl_shutdown;
	uint64_t	 rl_next_id;
	struct relay_obs rl_totals;
	uint64_t	 rl_streams_total;
	uint64_t	 rl_delta_streams_total;
	uint64_t	 rl_conn_failures;	/* upstream never answered */
	uint64_t	 rl_up_term_error;	/* upstream broke after answering */
	uint64_t	 rl_up_term_cancel;
	uint64_t	 rl_down_term_error;
	uint64_t	 rl_down_term_cancel;
	uint64_t	 rl_reconnects;
	uint64_t	 rl_replayed;
	size_t		 rl_queue_high;		/* the most bytes one queue held */
};

struct relay_upstream *relay_upstream_open(struct relay_stream *, char *,
	    size_t);
void	 relay_upstream_detach(struct relay_upstream *);
void	 relay_upstream_recv(struct relay_upstream *);
void	 relay_upstream_send(struct relay_upstream *, grpc_byte_buffer *);
void	 relay_upstream_halfclose(struct relay_upstream *);
const char *relay_upstream_channel_state(struct relay_upstream *);

/* relay_stream.c: one relayed stream. */
void	 relay_stream_new(struct relay *, grpc_call *, int);
void	 relay_stream_maybe_free(struct relay_stream *);
struct json_t *relay_stream_json(struct relay_stream *);
const char *relay_stream_state_name(enum relay_up_state);
/* Called back by relay_upstream.c for an attached upstream. */
void	 relay_stream_up_started(struct relay_stream *, int);
void	 relay_stream_up_message(struct relay_stream *, struct relay_recv *);
void	 relay_stream_up_sent(struct relay_stream *);
void	 relay_stream_up_ended(struct relay_stream *, grpc_status_code,
	    const char *);
int64_t	 relay_now_ms(void);

#endif
