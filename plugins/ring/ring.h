/* ring: the newest `window` bytes of packets, answering queries over ZeroMQ.
 * Internal interfaces between the plugin's files:
 *   ring.c   options, lifecycle, taking packets in (the plugin itself)
 *   store.c  the packets held: a circular array of references
 *   dump.c   which packets a query selects (time, BPF, limits) and their
 *            encoding as pcap, pcapng or the original's legacy reply
 *   serve.c  the ZeroMQ REP socket, driven from the host's loop
 *   query.c  the request format (pure; shared with pktpipe-query) */
#ifndef PKTPIPE_RING_H
#define PKTPIPE_RING_H

#include <stdbool.h>
#include <stdint.h>

#include <pktpipe/plugin.h>

#include "query.h"
#include "zsock.h"

/* What a packet costs the window besides its caplen: the host's packet
 * header (struct pp_packet with its metadata, and the pool's own), and
 * the ring's slot. Fixed, so that a window means the same whatever the
 * host's version; ring.c checks it covers what it stands for. */
#define RING_RECORD_OVERHEAD 256

struct ring_config {
	uint64_t window;
	struct pp_list endpoint;
	bool allow_remote;
	uint64_t max_pending;
	struct zsock_curve curve; /* server_key has no key: always NULL */
};

/* ------------------------------------------------------------------ */
/* store.c                                                              */

struct store {
	struct pp_packet **slot;
	size_t cap; /* a power of two, or 0 */
	size_t head; /* the oldest packet's slot */
	size_t count;
	uint64_t cost; /* what the held packets count against the window */
	uint64_t window;
};

/* Packets and bytes (caplen) that left the store. */
struct store_gone {
	uint64_t packets, bytes;
};

static inline uint64_t store_cost(const struct pp_packet *p)
{
	return (uint64_t)p->caplen + RING_RECORD_OVERHEAD;
}

/* The i-th packet held, 0 the oldest. */
static inline struct pp_packet *store_at(const struct store *st, size_t i)
{
	return st->slot[(st->head + i) & (st->cap - 1)];
}

void store_init(struct store *st, uint64_t window);
/* Keep p (whose cost fits the window) with a reference of its own (a copy
 * when p is wrapped: host->packet_keep), after evicting the oldest packets
 * it needs room from (added to gone). -ENOMEM: p is not kept. */
int store_push(struct store *st, const struct pp_host *host, struct pp_node *node,
	       struct pp_packet *p, struct store_gone *gone);
/* Release every packet (added to gone) and the slots. */
void store_clear(struct store *st, const struct pp_host *host, struct store_gone *gone);

/* ------------------------------------------------------------------ */
/* dump.c                                                               */

enum dump_format {
	DUMP_PCAP, /* ns pcap, linktype of the newest packet selected */
	DUMP_PCAPNG, /* one interface per linktype, metadata as comments */
	DUMP_LEGACY, /* the original's: us pcap, snaplen 65535, raw IP as 12 */
};

struct selection {
	struct pp_packet **pkts; /* oldest first, borrowed from the store */
	size_t n, cap;
	uint64_t bytes; /* sum of their caplen */
	uint64_t skipped; /* matched, but another linktype than the file's */
	uint32_t linktype; /* a pcap file's (DUMP_PCAP, DUMP_LEGACY) */
	uint32_t *lts; /* pcapng: the interfaces' linktypes */
	size_t nlts;
};

/* The packets q selects (q NULL: all), for format. -EINVAL with a reason
 * in err (a filter libpcap refuses), -ENOMEM. */
int dump_select(const struct store *st, const struct query *q, enum dump_format format,
		struct selection *sel, char *err, size_t errlen);
/* The exact size of the selection encoded, then the encoding. */
size_t dump_size(const struct selection *sel, enum dump_format format);
void dump_encode(const struct selection *sel, enum dump_format format, uint8_t *out);
/* A record's bytes of data as the legacy reply carries them. */
uint32_t dump_legacy_caplen(const struct pp_packet *p);
void dump_free(struct selection *sel);

#define DUMP_PCAP_HEADER 24
#define DUMP_PCAP_RECORD 16

/* ------------------------------------------------------------------ */
/* The node's state                                                     */

struct ring {
	struct pp_node *node;
	const struct pp_host *host;
	const struct ring_config *cfg;
	struct pp_stats *stats;
	pp_counter *drop_frame, *drop_too_large, *drop_nomem;
	pp_counter *ring_bytes, *ring_packets, *ring_span_ns;
	pp_counter *queries, *queries_legacy, *query_errors, *reply_bytes;
	struct pp_log_limit drop_limit, query_limit;
	struct store store;
	/* Serving queries (serve.c); none without an endpoint. */
	bool serving;
	struct zsock z;
	struct pp_watch *watch;
	struct pp_timer *again;
	struct pp_list bound; /* the endpoints as bound (ports resolved) */
	uint64_t pending; /* reply bytes libzmq still holds; atomic */
	struct selection sel;
	struct query q;
};

/* serve.c */
int serve_open(struct ring *r);
int serve_start(struct ring *r);
/* Stop answering: the socket and what it still holds go. */
void serve_close(struct ring *r);
/* Whether an endpoint may be bound without allow_remote or CURVE. */
bool serve_endpoint_local(const char *endpoint);

#endif
