/*
 * Digests of the watched inputs (the certificate directory, the mesh config
 * file), written into the node metadata so that the rendered bootstrap
 * changes exactly when their contents change. A rewrite with the same bytes,
 * a touch, or a new modification time gives the same digest, and so no hot
 * restart. The digest is 64-bit FNV-1a: it detects edits, it is not meant to
 * resist someone crafting a collision, which would gain them nothing.
 *
 * Kubernetes mounts secrets as symbolic links into a "..data" directory that
 * is swapped atomically; following the links of the visible names (and
 * skipping names that start with a dot) digests what a reader of the
 * directory sees.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bootstrap.h"

#define FNV_OFFSET	0xcbf29ce484222325ULL
#define FNV_PRIME	0x100000001b3ULL

static uint64_t
digest_update(uint64_t h, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len-- > 0) {
		h ^= *p++;
		h *= FNV_PRIME;
	}
	return h;
}

/* Folds a file's contents into h; -1 when it cannot be read. */
static int
digest_fold_file(const char *path, uint64_t *h)
{
	char	 buf[8192], err[256];
	ssize_t	 n;
	uint64_t total = 0;
	int	 fd;

	if ((fd = file_open_regular(path, err, sizeof(err))) == -1)
		return -1;
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		*h = digest_update(*h, buf, (size_t)n);
		total += (uint64_t)n;
	}
	close(fd);
	if (n == -1)
		return -1;
	/* The length separates one file's bytes from the next file's name. */
	*h = digest_update(*h, &total, sizeof(total));
	return 0;
}

static void
digest_format(uint64_t h, char *out, size_t len)
{
	snprintf(out, len, "fnv1a64:%016llx", (unsigned long long)h);
}

int
bootstrap_digest_file(const char *path, char *out, size_t len)
{
	uint64_t h = FNV_OFFSET;

	if (digest_fold_file(path, &h) == -1)
		return -1;
	digest_format(h, out, len);
	return 0;
}

static int
digest_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The digest of the regular files directly in dir, by name and content. A
 * missing directory is -1 (nothing to digest); an empty one has a digest.
 */
int
bootstrap_digest_dir(const char *dir, char *out, size_t len)
{
	DIR		*d;
	struct dirent	*de;
	struct stat	 st;
	char		**names = NULL, *path;
	size_t		 n = 0, i;
	uint64_t	 h = FNV_OFFSET;

	if ((d = opendir(dir)) == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), digest_cmp);
	for (i = 0; i < n; i++) {
		xasprintf(&path, "%s/%s", dir, names[i]);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			uint64_t saved = h;

			h = digest_update(h, names[i], strlen(names[i]) + 1);
			/* A file that vanished meanwhile counts as absent. */
			if (digest_fold_file(path, &h) == -1)
				h = saved;
		}
		free(path);
		free(names[i]);
	}
	free(names);
	digest_format(h, out, len);
	return 0;
}
