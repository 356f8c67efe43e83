/*
 * What the status/ folder exports: the agent's HTTP servers on the status
 * port (15020) and the Prometheus port (15090).
 */
#ifndef STATUS_H
#define STATUS_H

#include <stddef.h>

#include "agent.h"

struct status;

struct status *status_new(struct event_base *, struct config *,
	    struct supervise *, struct relay *, char *, size_t);
void	status_free(struct status *);

#endif
