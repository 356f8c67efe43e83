/*
 * One relayed stream's upstream: a gRPC channel to --discoveryAddress and
 * the stream on it, plaintext (--controlPlaneAuthPolicy NONE), or TLS with
 * the root CA and, when the certificate directory has them, the client
 * certificate and key (MUTUAL_TLS). Each attempt gets a channel of its own,
 * built from the files as they are now: a rotated certificate is used by
 * the next reconnect, and a new channel does not inherit gRPC's own
 * reconnect backoff from a failed one (the relay has its own, jittered).
 *
 * An upstream outlives its stream when the stream lets go of it
 * (relay_upstream_detach): it is cancelled, and freed once its last batch
 * has come back from the completion queue.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/string_util.h>
#include <grpc/support/time.h>

#include "agent.h"
#include "relay.h"

#define RELAY_CERT_ROOT		"root-cert.pem"
#define RELAY_CERT_CHAIN	"cert-chain.pem"
#define RELAY_CERT_KEY		"key.pem"

static void	relay_upstream_maybe_free(struct relay_upstream *);

#define RELAY_PEM_MAX	(1024 * 1024)	/* a certificate chain, generously */

/* A whole PEM file as a string; NULL with the reason in err. */
static char *
relay_upstream_read(const char *path, char *err, size_t errlen)
{
	char	why[512];
	char	*buf;
	size_t	 len;

	if ((buf = file_read(path, RELAY_PEM_MAX, &len, why, sizeof(why))) ==
	    NULL)
		snprintf(err, errlen, "cannot read %s", why);
	return buf;
}

/* Whether path is there to be read (a FIFO or a device is not). */
static int
relay_upstream_exists(const char *path)
{
	struct stat	st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/*
 * The channel's credentials. The root CA is XDS_ROOT_CA when set ("SYSTEM"
 * for the system's roots), else root-cert.pem in --certDir; the client
 * certificate is used when cert-chain.pem and key.pem are both there.
 */
static grpc_channel_credentials *
relay_upstream_creds(const struct config *cf, int *tls, char *err,
    size_t errlen)
{
	grpc_channel_credentials	*creds = NULL;
	grpc_ssl_pem_key_cert_pair	 pair;
	char	*root_path = NULL, *chain_path = NULL, *key_path = NULL;
	char	*root = NULL, *chain = NULL, *key = NULL;

	*tls = 0;
	if (strcmp(cf->cf_control_plane_auth_policy, "NONE") == 0)
		return grpc_insecure_credentials_create();
	*tls = 1;
	if (cf->cf_xds_root_ca != NULL && *cf->cf_xds_root_ca != '\0')
		root_path = xstrdup(cf->cf_xds_root_ca);
	else
		xasprintf(&root_path, "%s/%s", cf->cf_cert_dir,
		    RELAY_CERT_ROOT);
	xasprintf(&chain_path, "%s/%s", cf->cf_cert_dir, RELAY_CERT_CHAIN);
	xasprintf(&key_path, "%s/%s", cf->cf_cert_dir, RELAY_CERT_KEY);
	if (strcmp(root_path, "SYSTEM") != 0 &&
	    (root = relay_upstream_read(root_path, err, errlen)) == NULL)
		goto out;
	if (relay_upstream_exists(chain_path) &&
	    relay_upstream_exists(key_path)) {
		if ((chain = relay_upstream_read(chain_path, err,
		    errlen)) == NULL ||
		    (key = relay_upstream_read(key_path, err, errlen)) == NULL)
			goto out;
		pair.private_key = key;
		pair.cert_chain = chain;
	}
	creds = grpc_ssl_credentials_create(root, chain != NULL ? &pair : NULL,
	    NULL, NULL);
	if (creds == NULL)
		snprintf(err, errlen, "invalid TLS credentials from %s",
		    cf->cf_cert_dir);
out:
	free(root);
	free(chain);
	free(key);
	free(root_path);
	free(chain_path);
	free(key_path);
	return creds;
}

static int
relay_upstream_ms(int64_t ns)
{
	int64_t	 ms = ns / 1000000;

	return ms > INT_MAX ? INT_MAX : (int)ms;
}

static grpc_channel *
relay_upstream_channel(struct relay *rl, char *err, size_t errlen)
{
	const struct config	*cf = rl->rl_cf;
	grpc_channel_credentials *creds;
	grpc_channel		*ch;
	grpc_arg		 args[12];
	grpc_channel_args	 cargs;
	size_t			 n = 0;
	int			 tls;

	if ((creds = relay_upstream_creds(cf, &tls, err, errlen)) == NULL)
		return NULL;
#define ARG_INT(k, v) do {						\
	args[n].type = GRPC_ARG_INTEGER;				\
	args[n].key = (char *)(k);					\
	args[n].value.integer = (v);					\
	n++;								\
} while (0)
#define ARG_STR(k, v) do {						\
	args[n].type = GRPC_ARG_STRING;					\
	args[n].key = (char *)(k);					\
	args[n].value.string = (v);					\
	n++;								\
} while (0)
	ARG_INT(GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
	    cf->cf_xds_max_recv_size == 0 ? -1 : cf->cf_xds_max_recv_size);
	ARG_INT(GRPC_ARG_MAX_SEND_MESSAGE_LENGTH, -1);
	ARG_INT(GRPC_ARG_KEEPALIVE_TIME_MS,
	    relay_upstream_ms(cf->cf_xds_keepalive_interval));
	ARG_INT(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
	    relay_upstream_ms(cf->cf_xds_keepalive_timeout));
	ARG_INT(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
	ARG_INT(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
	/* Retries would buffer every request of a stream that never ends. */
	ARG_INT(GRPC_ARG_ENABLE_RETRIES, 0);
	ARG_STR(GRPC_ARG_PRIMARY_USER_AGENT_STRING, (char *)"pilot-agent");
	if (cf->cf_istiod_san != NULL && *cf->cf_istiod_san != '\0') {
		ARG_STR(GRPC_ARG_DEFAULT_AUTHORITY, cf->cf_istiod_san);
		if (tls)
			ARG_STR(GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
			    cf->cf_istiod_san);
	}
#undef ARG_INT
#undef ARG_STR
	cargs.num_args = n;
	cargs.args = args;
	ch = grpc_channel_create(rl->rl_target, creds, &cargs);
	grpc_channel_credentials_release(creds);
	if (ch == NULL)
		snprintf(err, errlen, "cannot make a channel to %s",
		    rl->rl_target);
	return ch;
}

static int
relay_upstream_batch(struct relay_upstream *us, const grpc_op *ops,
    size_t nops, struct relay_op *op)
{
	grpc_call_error	 e;

	e = grpc_call_start_batch(us->us_call, ops, nops, op, NULL);
	if (e != GRPC_CALL_OK) {
		log_warnx("xds relay: upstream batch: %s",
		    grpc_call_error_to_string(e));
		return -1;
	}
	us->us_pending++;
	return 0;
}

/*
 * Each callback decrements us_pending only at its end: what it calls may
 * detach the upstream, which must not free it while it is still in use.
 */
static void
relay_upstream_start_cb(struct relay_op *op)
{
	struct relay_upstream	*us = op->op_arg;

	if (us->us_stream != NULL)
		relay_stream_up_started(us->us_stream, op->op_ok);
	us->us_pending--;
	relay_upstream_maybe_free(us);
}

static void
relay_upstream_recv_cb(struct relay_op *op)
{
	struct relay_upstream	*us = op->op_arg;
	struct relay_recv	 rr;

	relay_cq_take(op, &rr);
	us->us_recv_busy = 0;
	if (rr.rr_ok && rr.rr_buf != NULL)
		us->us_responses++;
	if (us->us_stream != NULL)
		relay_stream_up_message(us->us_stream, &rr);
	relay_cq_recv_clear(&rr);
	us->us_pending--;
	relay_upstream_maybe_free(us);
}

static void
relay_upstream_send_cb(struct relay_op *op)
{
	struct relay_upstream	*us = op->op_arg;

	us->us_send_busy = 0;
	grpc_byte_buffer_destroy(us->us_sending);
	us->us_sending = NULL;
	if (us->us_stream != NULL && op->op_ok)
		relay_stream_up_sent(us->us_stream);
	us->us_pending--;
	relay_upstream_maybe_free(us);
}

static void
relay_upstream_halfclose_cb(struct relay_op *op)
{
	struct relay_upstream	*us = op->op_arg;

	us->us_pending--;
	relay_upstream_maybe_free(us);
}

static void
relay_upstream_status_cb(struct relay_op *op)
{
	struct relay_upstream	*us = op->op_arg;
	char			*details;

	/*
	 * The stream lets go of the upstream in relay_stream_up_ended; this
	 * batch still counts until then, so that does not free it under us.
	 */
	us->us_ended = 1;
	if (us->us_stream != NULL) {
		details = grpc_slice_to_c_string(us->us_details);
		relay_stream_up_ended(us->us_stream, us->us_status, details);
		gpr_free(details);
	}
	us->us_pending--;
	relay_upstream_maybe_free(us);
}

/*
 * Starts the upstream stream of st: channel, call, initial metadata (the
 * XDS_HEADER_* headers). Returns NULL with the reason in err when it cannot
 * even start; a failure to connect arrives later as the call's status.
 */
struct relay_upstream *
relay_upstream_open(struct relay_stream *st, char *err, size_t errlen)
{
	struct relay		*rl = st->st_relay;
	struct relay_upstream	*us;
	grpc_op			 ops[2];
	grpc_slice		 method;

	us = xcalloc(1, sizeof(*us));
	us->us_relay = rl;
	us->us_stream = st;
	us->us_details = grpc_empty_slice();
	grpc_metadata_array_init(&us->us_md_initial);
	grpc_metadata_array_init(&us->us_md_trailing);
	relay_cq_op_init(&us->us_op_start, relay_upstream_start_cb, us);
	relay_cq_op_init(&us->us_op_recv, relay_upstream_recv_cb, us);
	relay_cq_op_init(&us->us_op_send, relay_upstream_send_cb, us);
	relay_cq_op_init(&us->us_op_status, relay_upstream_status_cb, us);
	relay_cq_op_init(&us->us_op_halfclose, relay_upstream_halfclose_cb,
	    us);
	rl->rl_nupstreams++;
	if ((us->us_channel = relay_upstream_channel(rl, err, errlen)) ==
	    NULL) {
		us->us_stream = NULL;
		relay_upstream_maybe_free(us);
		return NULL;
	}
	method = grpc_slice_from_static_string(st->st_delta ?
	    RELAY_DELTA_METHOD : RELAY_SOTW_METHOD);
	us->us_call = grpc_channel_create_call(us->us_channel, NULL,
	    GRPC_PROPAGATE_DEFAULTS, relay_cq_queue(rl->rl_cq), method, NULL,
	    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = rl->rl_nheaders;
	ops[0].data.send_initial_metadata.metadata = rl->rl_headers;
	ops[1].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[1].data.recv_initial_metadata.recv_initial_metadata =
	    &us->us_md_initial;
	if (relay_upstream_batch(us, ops, 2, &us->us_op_start) == -1)
		goto fail;
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata =
	    &us->us_md_trailing;
	ops[0].data.recv_status_on_client.status = &us->us_status;
	ops[0].data.recv_status_on_client.status_details = &us->us_details;
	if (relay_upstream_batch(us, ops, 1, &us->us_op_status) == -1)
		goto fail;
	return us;
fail:
	snprintf(err, errlen, "cannot start the upstream call");
	relay_upstream_detach(us);
	return NULL;
}

/* Lets go of the upstream: it is cancelled and frees itself. */
void
relay_upstream_detach(struct relay_upstream *us)
{
	us->us_stream = NULL;
	if (us->us_call != NULL && !us->us_ended)
		grpc_call_cancel(us->us_call, NULL);
	relay_upstream_maybe_free(us);
}

static void
relay_upstream_maybe_free(struct relay_upstream *us)
{
	if (us->us_stream != NULL || us->us_pending > 0)
		return;
	if (us->us_call != NULL)
		grpc_call_unref(us->us_call);
	if (us->us_channel != NULL)
		grpc_channel_destroy(us->us_channel);
	if (us->us_sending != NULL)
		grpc_byte_buffer_destroy(us->us_sending);
	grpc_metadata_array_destroy(&us->us_md_initial);
	grpc_metadata_array_destroy(&us->us_md_trailing);
	grpc_slice_unref(us->us_details);
	us->us_relay->rl_nupstreams--;
	free(us);
}

/* Asks for the next response; it arrives in relay_stream_up_message. */
void
relay_upstream_recv(struct relay_upstream *us)
{
	grpc_op		 op;

	if (us->us_recv_busy || us->us_ended)
		return;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &us->us_op_recv.op_buf;
	us->us_op_recv.op_buf = NULL;
	us->us_op_recv.op_decode = us->us_stream->st_delta ?
	    RELAY_MSG_DELTA_RESPONSE : RELAY_MSG_RESPONSE;
	if (relay_upstream_batch(us, &op, 1, &us->us_op_recv) == 0)
		us->us_recv_busy = 1;
}

/* Sends one request; takes ownership of bb. */
void
relay_upstream_send(struct relay_upstream *us, grpc_byte_buffer *bb)
{
	grpc_op		 op;

	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = bb;
	us->us_sending = bb;
	if (relay_upstream_batch(us, &op, 1, &us->us_op_send) == 0)
		us->us_send_busy = 1;
	else {
		grpc_byte_buffer_destroy(bb);
		us->us_sending = NULL;
	}
}

void
relay_upstream_halfclose(struct relay_upstream *us)
{
	grpc_op		 op;

	if (us->us_halfclosed)
		return;
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	if (relay_upstream_batch(us, &op, 1, &us->us_op_halfclose) == 0)
		us->us_halfclosed = 1;
}

const char *
relay_upstream_channel_state(struct relay_upstream *us)
{
	if (us == NULL || us->us_channel == NULL)
		return "NONE";
	switch (grpc_channel_check_connectivity_state(us->us_channel, 0)) {
	case GRPC_CHANNEL_IDLE:
		return "IDLE";
	case GRPC_CHANNEL_CONNECTING:
		return "CONNECTING";
	case GRPC_CHANNEL_READY:
		return "READY";
	case GRPC_CHANNEL_TRANSIENT_FAILURE:
		return "TRANSIENT_FAILURE";
	case GRPC_CHANNEL_SHUTDOWN:
		return "SHUTDOWN";
	}
	return "?";
}
