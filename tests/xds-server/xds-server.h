/*
 * The test control plane (build/xds-server): a gRPC core server of
 * state-of-the-world and delta ADS, serving the resources of a JSON file.
 *
 *   main.c      command line, the event loop, signals
 *   resource.c  the resources file and its test knobs
 *   serve.c     the ADS streams
 *
 * It reuses the relay's completion queue thread and message decoding
 * (agent/relay.h), so it runs on one libevent thread like the agent.
 */
#ifndef XDS_SERVER_H
#define XDS_SERVER_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

/* One resource: its name and its encoded message (an Any's value). */
struct xs_resource {
	char		*xr_name;
	uint8_t		*xr_payload;
	size_t		 xr_len;
	char		 xr_version[17];	/* a digest of the payload */
};

struct xs_type {
	char		*xt_url;
	struct xs_resource *xt_res;
	size_t		 xt_nres;
	uint64_t	 xt_digest;		/* of every resource */
	uint64_t	 xt_gen;		/* bumped on every change */
};

/* The knobs of a test; the file's "knobs" override the command line's. */
struct xs_knobs {
	int		 xk_close_after;	/* end streams after N responses */
	int		 xk_refuse;		/* answer streams UNAVAILABLE */
	int		 xk_delay_ms;		/* before each response */
	int		 xk_repeat;		/* responses per push of a type */
	int		 xk_echo;		/* answer every request (bench) */
	int		 xk_type_flood;		/* hostile: a new type URL per
						   response, without end */
};

struct xs_config {
	struct xs_type	*xc_types;
	size_t		 xc_ntypes;
	struct xs_knobs	 xc_knobs;
};

/* resource.c */
int	 resource_load(const char *, const struct xs_knobs *,
	    struct xs_config *, char *, size_t);
void	 resource_free(struct xs_config *);
struct xs_type *resource_type(struct xs_config *, const char *);
int	 resource_changed(const struct xs_config *, const struct xs_config *,
	    const char *);

/* serve.c */
struct xs_server;

struct xs_server *serve_new(struct event_base *, const char *,
	    const char *, const char *, const char *, struct xs_config *,
	    char *, size_t);
void	 serve_reload(struct xs_server *, struct xs_config *);
void	 serve_free(struct xs_server *);

#endif
