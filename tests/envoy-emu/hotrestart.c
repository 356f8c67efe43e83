/*
 * Hot restart between epochs, with Envoy's behaviour and sockets, over a
 * wire format of the stand-in's own (one fixed-size datagram per message).
 *
 * Each process binds "<socket-path>_parent_<base_id*10 + epoch%3>" to serve
 * its future child; epoch N>0 also binds "..._child_<base_id*10 + N%3>" and
 * talks to epoch N-1 at "..._parent_<base_id*10 + (N-1)%3>". A socket path
 * starting with '@' is in the abstract namespace (the default,
 * "@envoy_domain_socket"). The exchange, as Envoy's:
 *
 *  (a) N asks N-1 to shut down its admin listener. N-1 closes it, tells its
 *      own parent N-2 (if any) to terminate, and answers with the start time
 *      of epoch 0. If N-1 never became LIVE, it answers so and N exits 1
 *      with "previous envoy process is still initializing", N-1 unaffected.
 *  (b) For each static listener N asks N-1 for the listen socket of the same
 *      address, passed with SCM_RIGHTS, so that accepting never stops.
 *  (c) N binds its admin and initializes; once LIVE it tells N-1 to drain:
 *      N-1 stops accepting and closes kept-alive connections after their
 *      next response (per its --drain-strategy and --drain-time-s).
 *  (d) --parent-shutdown-time-s later N tells N-1 to terminate: N-1 lets
 *      in-flight requests finish (EMU_TERMINATE_GRACE_MS at most), closes
 *      idle connections, and exits 0.
 * So at most three processes take part: N-2 is told to go as N starts.
 *
 * A vanished parent. Envoy itself retries sendmsg() on ECONNREFUSED and then
 * aborts (or, with --skip-hot-restart-on-no-parent, starts cold). The
 * stand-in decides:
 *   - N>0 starting while nothing serves N-1's socket: after retrying for
 *     about a second it exits 1, printing "unable to connect to parent: hot
 *     restart failed ..." (a child cannot take over from nobody; the agent
 *     must start cold at epoch 0). With --skip-hot-restart-on-no-parent it
 *     logs Envoy's warning and starts cold instead.
 *   - N-1 not answering a request within EMU_HR_REPLY_TIMEOUT_MS during (a):
 *     exit 1 ("... did not answer"). (A parent that was only stopped and
 *     resumes later still acts on the request and closes its admin: it
 *     cannot know that the child gave up.)
 *   - N-1 vanishing after (a), during (b): N logs it and binds the remaining
 *     listeners itself.
 *   - N-1 vanishing after N holds the listen sockets (before (c) or (d)):
 *     N logs it once and carries on; nothing is lost, N serves everything.
 * tests/e2e/emu_hotrestart_parent.sh tests each case but the vanishing
 * during (b), which cannot be timed from outside.
 */
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent.h"
#include "emu.h"

#define HR_MAGIC	0x454d5531u	/* "EMU1" */
#define HR_RETRIES	5		/* connection refused: tries ... */
#define HR_RETRY_MS	200		/* ... this far apart */

enum hr_type {
	HR_SHUTDOWN_ADMIN = 1,
	HR_PASS_LISTEN_SOCKET,
	HR_DRAIN_LISTENERS,
	HR_TERMINATE,
	HR_REPLY_SHUTDOWN_ADMIN = 101,
	HR_REPLY_PASS_LISTEN_SOCKET
};

enum hr_status {
	HR_OK,
	HR_STILL_INITIALIZING,
	HR_NOT_FOUND
};

struct hr_msg {
	uint32_t	hm_magic;
	uint32_t	hm_type;
	uint32_t	hm_epoch;	/* the sender's */
	int32_t		hm_status;
	uint64_t	hm_start_time;	/* epoch 0's, unix seconds */
	char		hm_address[128];
};

struct hr_sock {
	int			 hs_fd;
	struct sockaddr_un	 hs_addr;	/* what it is bound to */
	socklen_t		 hs_len;
};

static struct emu		*hr_emu;
static struct hr_sock		 hr_parent_role = { -1, { 0 }, 0 };
static struct hr_sock		 hr_child_role = { -1, { 0 }, 0 };
static struct sockaddr_un	 hr_parent_addr, hr_child_addr;
static socklen_t		 hr_parent_len, hr_child_len;
static char			 hr_parent_name[256];
static int			 hr_have_parent;	/* parent is ours */
static int			 hr_parent_terminated;
static struct event		*hr_parent_ev, *hr_shutdown_ev;

/* "<socket-path>_<role>_<base_id*10 + epoch%3>" as a sockaddr_un. */
static int
hotrestart_addr(const char *role, uint32_t epoch, struct sockaddr_un *sun,
    socklen_t *len, char *name, size_t namelen)
{
	const struct emu_options	*o = hr_emu->e_opt;
	char				 buf[256];
	size_t				 n;

	snprintf(buf, sizeof(buf), "%s_%s_%llu", o->o_socket_path, role,
	    (unsigned long long)o->o_base_id * 10 + epoch % 3);
	if (name != NULL)
		snprintf(name, namelen, "%s", buf);
	n = strlen(buf);
	if (n >= sizeof(sun->sun_path))
		return -1;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (buf[0] == '@') {
		/* Abstract: a leading NUL, and no terminating one. */
		memcpy(sun->sun_path + 1, buf + 1, n - 1);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		memcpy(sun->sun_path, buf, n);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		    n + 1);
	}
	return 0;
}

static int
hotrestart_bind(struct hr_sock *hs, const char *role, uint32_t epoch, char *err,
    size_t errlen)
{
	const struct emu_options	*o = hr_emu->e_opt;

	if (hotrestart_addr(role, epoch, &hs->hs_addr, &hs->hs_len, NULL,
	    0) == -1) {
		snprintf(err, errlen, "--socket-path too long: %s",
		    o->o_socket_path);
		return -1;
	}
	if ((hs->hs_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	if (hs->hs_addr.sun_path[0] != '\0')
		unlink(hs->hs_addr.sun_path);
	if (bind(hs->hs_fd, (struct sockaddr *)&hs->hs_addr,
	    hs->hs_len) == -1) {
		snprintf(err, errlen, "unable to bind domain socket with "
		    "base_id=%llu, id=%u, errno=%d (see --base-id option)",
		    (unsigned long long)o->o_base_id * 10, epoch, errno);
		close(hs->hs_fd);
		hs->hs_fd = -1;
		return -1;
	}
	return 0;
}

static void
hotrestart_sock_close(struct hr_sock *hs)
{
	if (hs->hs_fd == -1)
		return;
	close(hs->hs_fd);
	hs->hs_fd = -1;
	if (hs->hs_addr.sun_path[0] != '\0')
		unlink(hs->hs_addr.sun_path);
}

/* Sends m (and fd, when not -1) to addr; 0, or -1 with errno. */
static int
hotrestart_send(int sock, const struct sockaddr_un *addr, socklen_t alen,
    const struct hr_msg *m, int fd)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	union {
		char		buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr	align;
	} ctl;
	struct cmsghdr	*cm;

	memset(&msg, 0, sizeof(msg));
	iov.iov_base = (void *)m;
	iov.iov_len = sizeof(*m);
	msg.msg_name = (void *)addr;
	msg.msg_namelen = alen;
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (fd != -1) {
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	}
	if (sendmsg(sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) !=
	    (ssize_t)sizeof(*m))
		return -1;
	return 0;
}

/* Receives one message; *fd gets a passed descriptor or -1. 0, or -1. */
static int
hotrestart_recv(int sock, struct hr_msg *m, int *fd)
{
	struct msghdr	 msg;
	struct iovec	 iov;
	union {
		char		buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr	align;
	} ctl;
	struct cmsghdr	*cm;
	ssize_t		 n;

	*fd = -1;
	memset(&msg, 0, sizeof(msg));
	iov.iov_base = m;
	iov.iov_len = sizeof(*m);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof(ctl.buf);
	if ((n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)) == -1)
		return -1;
	for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			memcpy(fd, CMSG_DATA(cm), sizeof(int));
	}
	if (n != (ssize_t)sizeof(*m) || m->hm_magic != HR_MAGIC) {
		if (*fd != -1)
			close(*fd);
		*fd = -1;
		errno = EPROTO;
		return -1;
	}
	m->hm_address[sizeof(m->hm_address) - 1] = '\0';
	return 0;
}

static void
hotrestart_msg_init(struct hr_msg *m, enum hr_type type)
{
	memset(m, 0, sizeof(*m));
	m->hm_magic = HR_MAGIC;
	m->hm_type = type;
	m->hm_epoch = hr_emu->e_opt->o_restart_epoch;
}

static void
hotrestart_parent_vanished(const char *what)
{
	if (!hr_have_parent)
		return;
	elog_warn("main", "hot restart: parent (epoch %u) has vanished (%s: "
	    "%s); carrying on without it", hr_emu->e_opt->o_restart_epoch - 1,
	    what, strerror(errno));
	hr_have_parent = 0;
	if (hr_shutdown_ev != NULL)
		evtimer_del(hr_shutdown_ev);
}

/* Child side: a request to the parent. */
static int
hotrestart_to_parent(const struct hr_msg *m)
{
	return hotrestart_send(hr_child_role.hs_fd, &hr_parent_addr,
	    hr_parent_len, m, -1);
}

/*
 * Child side: waits for the reply of type want, up to the reply timeout.
 * 0 with the reply, -1 on timeout or error (errno set).
 */
static int
hotrestart_wait_reply(enum hr_type want, struct hr_msg *reply, int *fd)
{
	struct pollfd	pfd = { hr_child_role.hs_fd, POLLIN, 0 };
	struct timespec	start, now;
	long		left;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = EMU_HR_REPLY_TIMEOUT_MS -
		    ((now.tv_sec - start.tv_sec) * 1000 +
		    (now.tv_nsec - start.tv_nsec) / 1000000);
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		if (poll(&pfd, 1, (int)left) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (!(pfd.revents & POLLIN))
			continue;
		if (hotrestart_recv(hr_child_role.hs_fd, reply, fd) == -1) {
			if (errno == EAGAIN || errno == EPROTO)
				continue;
			return -1;
		}
		if (reply->hm_type == (uint32_t)want)
			return 0;
		if (*fd != -1)
			close(*fd);
	}
}

static void
hotrestart_reply(const struct hr_msg *m, int fd)
{
	if (hotrestart_send(hr_parent_role.hs_fd, &hr_child_addr,
	    hr_child_len, m, fd) == -1)
		elog_warn("main", "hot restart: cannot answer the child: %s",
		    strerror(errno));
}

/* Tells the parent to terminate (once). */
void
hotrestart_terminate_parent(void)
{
	struct hr_msg	m;

	if (!hr_have_parent || hr_parent_terminated)
		return;
	hr_parent_terminated = 1;
	if (hr_shutdown_ev != NULL)
		evtimer_del(hr_shutdown_ev);
	hotrestart_msg_init(&m, HR_TERMINATE);
	if (hotrestart_to_parent(&m) == -1)
		hotrestart_parent_vanished("terminate");
}

static void
hotrestart_shutdown_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	elog_info("main", "hot restart: parent shutdown time reached, "
	    "terminating the parent (epoch %u)",
	    hr_emu->e_opt->o_restart_epoch - 1);
	hotrestart_terminate_parent();
}

/* Parent side: the child's requests. */
static void
hotrestart_parent_read_cb(evutil_socket_t sock, short what, void *arg)
{
	struct emu_listener	*l;
	struct hr_msg		 m, r;
	int			 fd;

	(void)what;
	(void)arg;
	while (hotrestart_recv(sock, &m, &fd) == 0) {
		if (fd != -1)
			close(fd);
		switch (m.hm_type) {
		case HR_SHUTDOWN_ADMIN:
			hotrestart_msg_init(&r, HR_REPLY_SHUTDOWN_ADMIN);
			if (!emu_initialized()) {
				elog_warn("main", "hot restart: child "
				    "(epoch %u) started while still "
				    "initializing", m.hm_epoch);
				r.hm_status = HR_STILL_INITIALIZING;
				hotrestart_reply(&r, -1);
				break;
			}
			if (adminapi_is_open()) {
				elog_warn("main", "shutting down admin due to "
				    "child startup");
				adminapi_close();
			}
			if (hr_have_parent && !hr_parent_terminated) {
				elog_warn("main", "terminating parent process");
				hotrestart_terminate_parent();
			}
			r.hm_start_time = (uint64_t)hr_emu->e_original_start;
			hotrestart_reply(&r, -1);
			break;
		case HR_PASS_LISTEN_SOCKET:
			hotrestart_msg_init(&r, HR_REPLY_PASS_LISTEN_SOCKET);
			snprintf(r.hm_address, sizeof(r.hm_address), "%s",
			    m.hm_address);
			l = listener_find(m.hm_address);
			fd = l != NULL ? listener_fd(l) : -1;
			r.hm_status = fd != -1 ? HR_OK : HR_NOT_FOUND;
			elog_debug("main", "hot restart: %s listen socket %s",
			    fd != -1 ? "passing" : "no", m.hm_address);
			hotrestart_reply(&r, fd);
			break;
		case HR_DRAIN_LISTENERS:
			listener_drain_parent();
			break;
		case HR_TERMINATE:
			emu_terminate();
			/* hotrestart_close() ran: sock is closed. */
			return;
		default:
			elog_warn("main", "hot restart: unknown message %u",
			    m.hm_type);
		}
	}
}

/*
 * Binds this process's hot restart sockets (none with
 * --disable-hot-restart). -1 with Envoy's message in err.
 */
int
hotrestart_init(struct emu *e, char *err, size_t errlen)
{
	uint32_t	epoch = e->e_opt->o_restart_epoch;

	hr_emu = e;
	if (e->e_opt->o_disable_hot_restart)
		return 0;
	/* As Envoy: never outlive whoever launched us. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (hotrestart_bind(&hr_parent_role, "parent", epoch, err,
	    errlen) == -1)
		return -1;
	hotrestart_addr("child", epoch + 1, &hr_child_addr, &hr_child_len,
	    NULL, 0);
	if (epoch > 0) {
		if (hotrestart_bind(&hr_child_role, "child", epoch, err,
		    errlen) == -1)
			return -1;
		hotrestart_addr("parent", epoch - 1, &hr_parent_addr,
		    &hr_parent_len, hr_parent_name, sizeof(hr_parent_name));
	}
	hr_parent_ev = event_new(e->e_base, hr_parent_role.hs_fd,
	    EV_READ | EV_PERSIST, hotrestart_parent_read_cb, NULL);
	event_add(hr_parent_ev, NULL);
	return 0;
}

/*
 * Step (a), for epoch N>0: 0 once the parent closed its admin, or when
 * there is no parent to take over from and --skip-hot-restart-on-no-parent
 * allows a cold start; -1 with the message for standard error otherwise.
 */
int
hotrestart_shutdown_parent_admin(char *err, size_t errlen)
{
	const struct emu_options	*o = hr_emu->e_opt;
	struct hr_msg			 m, r;
	int				 i, fd, rc = -1;

	if (o->o_disable_hot_restart || o->o_restart_epoch == 0)
		return 0;
	hotrestart_msg_init(&m, HR_SHUTDOWN_ADMIN);
	for (i = 0; i < HR_RETRIES; i++) {
		if ((rc = hotrestart_to_parent(&m)) == 0)
			break;
		if (errno != ECONNREFUSED && errno != ENOENT)
			break;
		elog_error("main", "hot restart sendmsg() connection refused, "
		    "retrying");
		usleep(HR_RETRY_MS * 1000);
	}
	if (rc == -1) {
		if ((errno == ECONNREFUSED || errno == ENOENT) &&
		    o->o_skip_hr_no_parent) {
			elog_warn("main", "hot restart sendmsg() connection "
			    "refused, falling back to regular restart");
			return 0;
		}
		snprintf(err, errlen, "unable to connect to parent: hot "
		    "restart failed (epoch %u: no envoy serves %s: %s)",
		    o->o_restart_epoch, hr_parent_name, strerror(errno));
		return -1;
	}
	if (hotrestart_wait_reply(HR_REPLY_SHUTDOWN_ADMIN, &r, &fd) == -1) {
		snprintf(err, errlen, "hot restart failed: parent envoy (epoch "
		    "%u) did not answer on %s: %s", o->o_restart_epoch - 1,
		    hr_parent_name, strerror(errno));
		return -1;
	}
	if (fd != -1)
		close(fd);
	if (r.hm_status == HR_STILL_INITIALIZING) {
		snprintf(err, errlen,
		    "previous envoy process is still initializing");
		return -1;
	}
	hr_have_parent = 1;
	if (r.hm_start_time > 0)
		hr_emu->e_original_start = (time_t)r.hm_start_time;
	elog_info("main", "hot restart: parent (epoch %u) closed its admin",
	    o->o_restart_epoch - 1);
	return 0;
}

/*
 * Step (b): the parent's listen socket for address key ("127.0.0.1:80"),
 * or -1 when there is none (or no parent any more: the caller binds).
 */
int
hotrestart_parent_listen_socket(const char *key)
{
	struct hr_msg	m, r;
	int		fd;

	if (!hr_have_parent)
		return -1;
	hotrestart_msg_init(&m, HR_PASS_LISTEN_SOCKET);
	snprintf(m.hm_address, sizeof(m.hm_address), "%s", key);
	if (hotrestart_to_parent(&m) == -1) {
		hotrestart_parent_vanished("pass listen socket");
		return -1;
	}
	if (hotrestart_wait_reply(HR_REPLY_PASS_LISTEN_SOCKET, &r, &fd) == -1) {
		hotrestart_parent_vanished("pass listen socket");
		return -1;
	}
	if (r.hm_status != HR_OK || fd == -1 ||
	    strcmp(r.hm_address, key) != 0) {
		if (fd != -1)
			close(fd);
		return -1;
	}
	elog_info("main", "hot restart: took over listen socket %s", key);
	return fd;
}

/* Step (c): this epoch is LIVE. Drain the parent, and plan its end. */
void
hotrestart_live(void)
{
	struct hr_msg	m;
	struct timeval	tv;

	if (!hr_have_parent || hr_parent_terminated)
		return;
	hotrestart_msg_init(&m, HR_DRAIN_LISTENERS);
	if (hotrestart_to_parent(&m) == -1) {
		hotrestart_parent_vanished("drain listeners");
		return;
	}
	elog_info("main", "hot restart: draining the parent (epoch %u); "
	    "terminating it in %llus", hr_emu->e_opt->o_restart_epoch - 1,
	    (unsigned long long)hr_emu->e_opt->o_parent_shutdown_time_s);
	tv.tv_sec = (time_t)hr_emu->e_opt->o_parent_shutdown_time_s;
	tv.tv_usec = 0;
	hr_shutdown_ev = evtimer_new(hr_emu->e_base, hotrestart_shutdown_cb,
	    NULL);
	evtimer_add(hr_shutdown_ev, &tv);
}

/*
 * Closes the sockets: at exit, and as soon as the child asks this process to
 * terminate, so that a later epoch with the same socket names can bind them.
 */
void
hotrestart_close(void)
{
	if (hr_parent_ev != NULL)
		event_free(hr_parent_ev);
	if (hr_shutdown_ev != NULL)
		event_free(hr_shutdown_ev);
	hr_parent_ev = hr_shutdown_ev = NULL;
	hotrestart_sock_close(&hr_parent_role);
	hotrestart_sock_close(&hr_child_role);
	hr_have_parent = 0;
}
