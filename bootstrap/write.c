/*
 * Writing one epoch's bootstrap file. The proxy reads the file once, when it
 * starts, so a reader must never see a half-written document: the JSON goes
 * to a temporary file in the same directory (rename is atomic only within a
 * file system), is flushed to disk, and is renamed over the final name.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootstrap.h"

/* The document as the proxy reads it: a new string, freed with free(3). */
char *
bootstrap_dump(const json_t *doc)
{
	char	*s;

	if ((s = json_dumps(doc, JSON_INDENT(2))) == NULL)
		fatalx("json_dumps: out of memory");
	return s;
}

static int
write_all(int fd, const char *buf, size_t len)
{
	ssize_t	 n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes len bytes of buf to path atomically with the given mode. */
int
bootstrap_write_bytes(const char *path, const char *buf, size_t len,
    mode_t mode, char *err, size_t errlen)
{
	char	*tmp = NULL;
	int	 fd = -1, rc = -1, saved;

	xasprintf(&tmp, "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    mode);
	if (fd == -1) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	/* The umask must not widen or narrow the mode the proxy's user needs. */
	if (fchmod(fd, mode) == -1 || write_all(fd, buf, len) == -1 ||
	    fsync(fd) == -1) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) == -1) {
		fd = -1;
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (rc == -1) {
		saved = errno;
		if (fd != -1)
			close(fd);
		unlink(tmp);
		errno = saved;
	}
	free(tmp);
	return rc;
}

int
bootstrap_write(const char *path, const json_t *doc, char *err, size_t errlen)
{
	char	*s;
	size_t	 len;
	int	 rc;

	s = bootstrap_dump(doc);
	len = strlen(s);
	/* The file ends in a newline, as text files do. */
	s = xrealloc(s, len + 2);
	s[len++] = '\n';
	s[len] = '\0';
	rc = bootstrap_write_bytes(path, s, len, 0640, err, errlen);
	free(s);
	return rc;
}
