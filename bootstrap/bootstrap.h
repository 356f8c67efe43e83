/*
 * What the bootstrap/ folder exports: rendering the Envoy bootstrap JSON from
 * the configuration, merging ISTIO_BOOTSTRAP_OVERRIDE over it, writing each
 * epoch's file atomically, and the "pilot-agent bootstrap" subcommand.
 */
#ifndef BOOTSTRAP_H
#define BOOTSTRAP_H

#include <stddef.h>

#include <jansson.h>

#include "agent.h"

/* A new reference to the rendered bootstrap, or NULL with a message. */
json_t	*bootstrap_render(const struct config *, char *, size_t);
/* Writes it to path atomically (temporary file, fsync, rename), mode 0640. */
int	 bootstrap_write(const char *, const json_t *, char *, size_t);
/* "pilot-agent bootstrap": returns the exit code. */
int	 bootstrap_command(int, char **);

#endif
