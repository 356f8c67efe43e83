/*
 * Opening and reading the files the agent is pointed at (the mesh config,
 * the bootstrap override, certificates): regular files only, without ever
 * blocking. open() of a FIFO waits for a writer, and the agent must not wait
 * on its event loop for anyone: a FIFO there froze both ports and ignored
 * SIGTERM. A device is refused before it is opened, since opening some
 * devices does things. The type is checked again on the open descriptor,
 * in case the path was replaced in between.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

static const char *
file_kind(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	return "not a regular file";
}

static int
file_refuse(const char *path, mode_t mode, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: not a regular file (it is %s)", path,
	    file_kind(mode));
	return -1;
}

/* A descriptor of the regular file at path, or -1 with the reason in err. */
int
file_open_regular(const char *path, char *err, size_t errlen)
{
	struct stat	st;
	int		fd;

	if (stat(path, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode))
		return file_refuse(path, st.st_mode, err, errlen);
	/* O_NONBLOCK: a FIFO put there since the stat does not hang us. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return file_refuse(path, st.st_mode, err, errlen);
	}
	return fd;
}

/*
 * The whole regular file at path, NUL-terminated, at most max bytes; its
 * length in *lenp. NULL with the reason in err. The caller frees it.
 */
char *
file_read(const char *path, size_t max, size_t *lenp, char *err,
    size_t errlen)
{
	char	*buf = NULL;
	size_t	 len = 0, cap = 0;
	ssize_t	 n;
	int	 fd;

	if ((fd = file_open_regular(path, err, errlen)) == -1)
		return NULL;
	for (;;) {
		if (len + 1 >= cap) {
			cap = cap == 0 ? 4096 : cap * 2;
			buf = xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			snprintf(err, errlen, "%s: larger than %zu bytes", path,
			    max);
			goto fail;
		}
	}
	close(fd);
	buf[len] = '\0';
	*lenp = len;
	return buf;
fail:
	close(fd);
	free(buf);
	return NULL;
}
