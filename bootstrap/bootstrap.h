/*
 * What the bootstrap/ folder exports: rendering the Envoy bootstrap JSON from
 * the configuration, merging ISTIO_BOOTSTRAP_OVERRIDE over it, writing each
 * epoch's file atomically, and the "pilot-agent bootstrap" subcommand.
 */
#ifndef BOOTSTRAP_H
#define BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "agent.h"

/* A new reference to the rendered bootstrap, or NULL with a message. */
json_t	*bootstrap_render(const struct config *, char *, size_t);
/* Writes it to path atomically (temporary file, fsync, rename), mode 0640. */
int	 bootstrap_write(const char *, const json_t *, char *, size_t);
/* "pilot-agent bootstrap": returns the exit code. */
int	 bootstrap_command(int, char **);

/* argv.c: the proxy's command line for an epoch (DESIGN §4). */
char	**bootstrap_argv(const struct config *, int, const char *);
void	 bootstrap_argv_free(char **);

/* render.c: helpers shared by the files of this folder. */
void	 bootstrap_pb_duration(int64_t, char *, size_t);
int	 bootstrap_ipv6_only(const struct config *);
int	 bootstrap_split_hostport(const char *, char *, size_t, int *);

/* metadata.c: the node and its metadata (see the file for the layers). */
json_t	*bootstrap_node(const struct config *, char *, size_t);
json_t	*bootstrap_metadata(const struct config *, char *, size_t);

/* digest.c: digests of the watched inputs, "fnv1a64:<16 hex digits>". */
#define BOOTSTRAP_DIGEST_LEN	32
int	 bootstrap_digest_file(const char *, char *, size_t);
int	 bootstrap_digest_dir(const char *, char *, size_t);

/* override.c: protobuf merge semantics (objects merge, lists append). */
void	 bootstrap_merge(json_t *, json_t *);
int	 bootstrap_override(json_t *, const char *, const char *, char *,
	    size_t);
int	 bootstrap_override_text(json_t *, const char *, size_t, const char *,
	    const char *, char *, size_t);

/* write.c: the serialized form of every written bootstrap. */
char	*bootstrap_dump(const json_t *);
int	 bootstrap_write_bytes(const char *, const char *, size_t, mode_t,
	    char *, size_t);


#endif
