/* stats_endpoint: a unix stream socket that answers every connection with
 * a JSON snapshot of all counters, in --stats-json's shape, then closes.
 * Served from the loop: non-blocking, a bounded number of clients, each
 * given a bounded time to read its answer. */
#ifndef PKTPIPE_STATSD_ENDPOINT_H
#define PKTPIPE_STATSD_ENDPOINT_H

#include <pktpipe/plugin.h>

struct sd_endpoint;

/* Listen on path; a socket file nobody listens on any more is replaced,
 * anything else at path is left alone and refused. In open(). */
int sd_endpoint_open(struct sd_endpoint **out, const char *path, struct pp_node *node,
		     const struct pp_host *host);
/* Watch for connections. In start(). */
int sd_endpoint_start(struct sd_endpoint *ep);
/* Stop listening, drop clients. In stop(). */
void sd_endpoint_stop(struct sd_endpoint *ep);
/* Close what is left, remove the socket file. No host call. */
void sd_endpoint_close(struct sd_endpoint *ep);

#endif
