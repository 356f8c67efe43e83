/*
 * Watching the inputs of the bootstrap: the certificate directory
 * (--certDir), the ISTIO_BOOTSTRAP_OVERRIDE file and the mesh config file
 * (--meshConfig). A change asks the supervisor for a restart after a quiet
 * period (--watchDebounce, 10s by default): every event pushes the deadline
 * back, so a rotation that writes a certificate and then its key causes one
 * restart, not two. The supervisor re-renders and restarts only if the
 * bootstrap differs from the live epoch's; the node metadata carries digests
 * of the watched contents (bootstrap/digest.c), so a touch or a rewrite with
 * the same bytes ends there.
 *
 * Files are watched through their directory, filtered by name, because
 * editors and Kubernetes replace a file rather than write it in place:
 * a ConfigMap or Secret volume swaps a "..data" link, so events on names
 * starting with ".." count too. A directory that is missing (no
 * certificates mounted), or that was deleted or renamed away, is looked for
 * again every second and after every event of its parent; when it appears
 * it counts as a change. A missing directory is not an error.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <event2/event.h>

#include "agent.h"

#define WATCH_DIR_EVENTS	(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | \
	IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF | \
	IN_MOVE_SELF | IN_ONLYDIR)

enum watch_kind {
	WK_CERTS,		/* every name in the directory */
	WK_CERTS_PARENT,	/* the certificate directory's own name */
	WK_FILE			/* one name in the directory */
};

struct watch_item {
	enum watch_kind	 wi_kind;
	char		*wi_dir;	/* the directory watched */
	char		*wi_name;	/* the name that matters, or NULL */
	const char	*wi_what;	/* for the restart's reason */
	int		 wi_wd;		/* -1 when not watched */
};

#define WATCH_MAX_ITEMS	4
#define WATCH_REARM_MS	1000	/* looking again for a missing directory */

struct watch {
	struct event_base	*wa_base;
	const struct config	*wa_cf;
	struct supervise	*wa_sv;
	int			 wa_fd;
	struct event		*wa_ev;
	struct event		*wa_timer;
	struct event		*wa_rearm;	/* while a directory is missing */
	struct watch_item	 wa_items[WATCH_MAX_ITEMS];
	int			 wa_nitems;
	unsigned int		 wa_changed;	/* bit per item since the last restart */
};

static void
watch_split(const char *path, char **dir, char **name)
{
	const char	*slash = strrchr(path, '/');

	if (slash == NULL) {
		*dir = xstrdup(".");
		*name = xstrdup(path);
	} else if (slash == path) {
		*dir = xstrdup("/");
		*name = xstrdup(slash + 1);
	} else {
		xasprintf(dir, "%.*s", (int)(slash - path), path);
		*name = xstrdup(slash + 1);
	}
}

static void
watch_add_item(struct watch *wa, enum watch_kind kind, char *dir, char *name,
    const char *what)
{
	struct watch_item *wi;

	if (wa->wa_nitems == WATCH_MAX_ITEMS)
		fatalx("watch: too many items");
	wi = &wa->wa_items[wa->wa_nitems++];
	wi->wi_kind = kind;
	wi->wi_dir = dir;
	wi->wi_name = name;
	wi->wi_what = what;
	wi->wi_wd = -1;
}

static void	watch_debounce(struct watch *);

/*
 * (Re)adds the inotify watches of the items that have none. With mark, an
 * item that appears counts as changed. While any is missing, the re-arm
 * timer looks again.
 */
static void
watch_arm(struct watch *wa, int mark)
{
	struct watch_item *wi;
	struct timeval	 tv = { 0, WATCH_REARM_MS * 1000 };
	int		 i, missing = 0, appeared = 0;

	for (i = 0; i < wa->wa_nitems; i++) {
		wi = &wa->wa_items[i];
		if (wi->wi_wd != -1)
			continue;
		wi->wi_wd = inotify_add_watch(wa->wa_fd, wi->wi_dir,
		    WATCH_DIR_EVENTS);
		if (wi->wi_wd == -1) {
			if (errno != ENOENT && errno != ENOTDIR)
				log_warn("watch: %s", wi->wi_dir);
			missing = 1;
			continue;
		}
		log_debug("watch: watching %s for %s", wi->wi_dir,
		    wi->wi_what);
		if (mark) {
			/* The parent's item stands for the directory. */
			wa->wa_changed |= 1u << (wi->wi_kind ==
			    WK_CERTS_PARENT ? i - 1 : i);
			appeared = 1;
		}
	}
	if (appeared)
		watch_debounce(wa);
	if (missing && wa->wa_rearm != NULL &&
	    !evtimer_pending(wa->wa_rearm, NULL))
		evtimer_add(wa->wa_rearm, &tv);
}

static void
watch_rearm_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	watch_arm(arg, 1);
}

/* Restarts the quiet period. */
static void
watch_debounce(struct watch *wa)
{
	struct timeval	 tv;

	tv = clock_tv(wa->wa_cf->cf_watch_debounce);
	evtimer_add(wa->wa_timer, &tv);
}

static int
watch_relevant(const struct watch_item *wi, const struct inotify_event *ie)
{
	const char	*name = ie->len > 0 ? ie->name : "";

	switch (wi->wi_kind) {
	case WK_CERTS:
		return 1;
	case WK_CERTS_PARENT:
	case WK_FILE:
		return strcmp(name, wi->wi_name) == 0 ||
		    strncmp(name, "..", 2) == 0;
	}
	return 0;
}

static void
watch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct watch	*wa = arg;
	char		 reason[256] = "watched input changed:";
	size_t		 n;
	int		 i;

	(void)fd;
	(void)what;
	watch_arm(wa, 0);
	for (i = 0; i < wa->wa_nitems; i++) {
		if (!(wa->wa_changed & (1u << i)))
			continue;
		n = strlen(reason);
		snprintf(reason + n, sizeof(reason) - n, " %s",
		    wa->wa_items[i].wi_what);
	}
	wa->wa_changed = 0;
	log_info("%s", reason);
	supervise_restart(wa->wa_sv, reason, 0);
}

static void
watch_event(struct watch *wa, const struct inotify_event *ie)
{
	struct watch_item *wi;
	int		 i, hit = 0;

	for (i = 0; i < wa->wa_nitems; i++) {
		wi = &wa->wa_items[i];
		if (wi->wi_wd != ie->wd || ie->wd == -1)
			continue;
		if (ie->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)) {
			/*
			 * The directory went away, or was renamed (the watch
			 * would follow it to its new name): drop the watch;
			 * the path is looked for again.
			 */
			if (ie->mask & IN_MOVE_SELF)
				(void)inotify_rm_watch(wa->wa_fd, ie->wd);
			wi->wi_wd = -1;
			wa->wa_changed |= 1u << (wi->wi_kind ==
			    WK_CERTS_PARENT ? i - 1 : i);
			hit = 1;
			continue;
		}
		if (!watch_relevant(wi, ie))
			continue;
		/*
		 * The certificate directory appeared or went: it counts as a
		 * change of the directory, the item added just before.
		 */
		if (wi->wi_kind == WK_CERTS_PARENT) {
			watch_arm(wa, 0);
			wa->wa_changed |= 1u << (i - 1);
		} else
			wa->wa_changed |= 1u << i;
		hit = 1;
	}
	if (ie->mask & IN_Q_OVERFLOW) {
		wa->wa_changed = (1u << wa->wa_nitems) - 1;
		hit = 1;
	}
	if (!hit)
		return;
	watch_arm(wa, 1);
	watch_debounce(wa);
}

static void
watch_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct watch	*wa = arg;
	char		 buf[8192]
	    __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ie;
	ssize_t		 n;
	char		*p;

	(void)what;
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == -1 && errno != EAGAIN)
				log_warn("watch: read");
			return;
		}
		for (p = buf; p < buf + n;
		    p += sizeof(struct inotify_event) + ie->len) {
			ie = (const struct inotify_event *)(void *)p;
			watch_event(wa, ie);
		}
	}
}

/*
 * Starts watching. Never NULL: without inotify the agent runs on, says so,
 * and restarts only on SIGHUP. The caller frees it with watch_free.
 */
struct watch *
watch_new(struct event_base *base, const struct config *cf,
    struct supervise *sv)
{
	struct watch	*wa;
	const char	*ov;
	char		*dir, *name;

	wa = xcalloc(1, sizeof(*wa));
	wa->wa_base = base;
	wa->wa_cf = cf;
	wa->wa_sv = sv;
	wa->wa_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (wa->wa_fd == -1) {
		log_warn("watch: inotify_init1; inputs are not watched");
		return wa;
	}
	if (cf->cf_cert_dir != NULL && *cf->cf_cert_dir != '\0') {
		watch_add_item(wa, WK_CERTS, xstrdup(cf->cf_cert_dir), NULL,
		    "certificate directory");
		watch_split(cf->cf_cert_dir, &dir, &name);
		watch_add_item(wa, WK_CERTS_PARENT, dir, name,
		    "certificate directory");
	}
	if ((ov = cf->cf_bootstrap_override) != NULL && *ov != '\0') {
		watch_split(ov, &dir, &name);
		watch_add_item(wa, WK_FILE, dir, name, "bootstrap override");
	}
	if (cf->cf_mesh_config != NULL && *cf->cf_mesh_config != '\0') {
		watch_split(cf->cf_mesh_config, &dir, &name);
		watch_add_item(wa, WK_FILE, dir, name, "mesh config");
	}
	wa->wa_ev = event_new(base, wa->wa_fd, EV_READ | EV_PERSIST,
	    watch_read_cb, wa);
	wa->wa_timer = evtimer_new(base, watch_timer_cb, wa);
	wa->wa_rearm = evtimer_new(base, watch_rearm_cb, wa);
	if (wa->wa_ev == NULL || wa->wa_timer == NULL || wa->wa_rearm == NULL)
		fatalx("watch: event_new");
	watch_arm(wa, 0);
	event_add(wa->wa_ev, NULL);
	return wa;
}

void
watch_free(struct watch *wa)
{
	int	 i;

	if (wa == NULL)
		return;
	if (wa->wa_ev != NULL)
		event_free(wa->wa_ev);
	if (wa->wa_timer != NULL)
		event_free(wa->wa_timer);
	if (wa->wa_rearm != NULL)
		event_free(wa->wa_rearm);
	if (wa->wa_fd != -1)
		close(wa->wa_fd);
	for (i = 0; i < wa->wa_nitems; i++) {
		free(wa->wa_items[i].wi_dir);
		free(wa->wa_items[i].wi_name);
	}
	free(wa);
}
