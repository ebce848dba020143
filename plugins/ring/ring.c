/* ring: a sink that keeps the newest `window` bytes of packets, with their
 * metadata, and answers queries about them over ZeroMQ (serve.c): native
 * queries (BPF filter, time bounds, limits; pcap or pcapng back) and the
 * original nflog-pcap-recv --buffer-interface's legacy reply.
 *
 * It holds references to the packets themselves: independent of every
 * other sink, it holds what came in whether or not an IDS read it.
 *
 * Accounting: a packet evicted to make room has served its time in the
 * ring and is counted out, as delivered (packets_out, bytes_out: caplen);
 * held packets are packets_held; what stop() releases is delivered too. So
 * at all times packets_in = packets_out + packets_held + dropped, where
 * the drops are "frame" (encoded frames: decode them first), "too-large"
 * (a packet that alone exceeds the window) and "nomem". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pktpipe/plugin.h>

#include "ring.h"

/* RING_RECORD_OVERHEAD stands for the packet's header and the slot. */
_Static_assert(sizeof(struct pp_packet) + 2 * sizeof(void *) + sizeof(struct pp_packet *) <=
		       RING_RECORD_OVERHEAD,
	       "RING_RECORD_OVERHEAD no longer covers a packet's header");

static const struct pp_option ring_options[] = {
	{ .name = "window", .type = PP_OPT_SIZE, .default_value = "64MiB", .min = 64 << 10,
	  .max = 1ll << 40, .offset = offsetof(struct ring_config, window),
	  .help = "packets kept: the newest whose caplen plus 256 bytes each (their header) "
		  "add up to at most this" },
	{ .name = "endpoint", .type = PP_OPT_LIST, .item_type = PP_OPT_ENDPOINT,
	  .default_value = "", .max_items = 16, .offset = offsetof(struct ring_config, endpoint),
	  .help = "where to answer queries (zmq REP, bound); none: no queries. "
		  "tcp://127.0.0.1:* binds a free port (logged)." },
	{ .name = "allow_remote", .type = PP_OPT_BOOL, .default_value = "no",
	  .offset = offsetof(struct ring_config, allow_remote),
	  .help = "allow a tcp endpoint that is not loopback without CurveZMQ: anyone who "
		  "reaches it reads the traffic" },
	{ .name = "max_pending", .type = PP_OPT_SIZE, .default_value = "256MiB", .min = 0,
	  .max = 1ll << 40, .offset = offsetof(struct ring_config, max_pending),
	  .help = "replies not yet sent beyond which new queries are refused as busy" },
	{ .name = "curve_secret_key", .type = PP_OPT_PATH, .default_value = "",
	  .offset = offsetof(struct ring_config, curve.secret_key),
	  .help = "CurveZMQ: this node's secret key file (Z85, mode 0600); queries are then "
		  "encrypted and only curve_allow's clients are answered" },
	{ .name = "curve_allow", .type = PP_OPT_LIST, .item_type = PP_OPT_STRING,
	  .default_value = "", .offset = offsetof(struct ring_config, curve.allow),
	  .help = "CurveZMQ: the client public keys (Z85) answered" },
	PP_OPTION_END
};

/* A ring answers anyone who reaches its endpoint with the traffic it
 * holds: only loopback and local sockets are allowed by default. */
static int ring_validate(const void *config, char *err, size_t errlen)
{
	const struct ring_config *cfg = config;
	int rc = zsock_curve_validate(&cfg->curve, err, errlen);

	if (rc < 0 || cfg->allow_remote || zsock_curve_wanted(&cfg->curve))
		return rc;
	for (size_t i = 0; i < cfg->endpoint.count; i++) {
		if (serve_endpoint_local(cfg->endpoint.str[i]))
			continue;
		snprintf(err, errlen, "endpoint %s is not loopback: anyone who reaches it could "
			 "read the traffic; set allow_remote = yes, or CurveZMQ keys "
			 "(curve_secret_key, curve_allow)", cfg->endpoint.str[i]);
		return -EINVAL;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Opening                                                              */

static void ring_counters(struct ring *r)
{
	const struct pp_host *h = r->host;
	struct pp_node *n = r->node;

	r->stats = h->stats(n);
	r->drop_frame = h->drop_reason(n, "frame");
	r->drop_too_large = h->drop_reason(n, "too-large");
	r->drop_nomem = h->drop_reason(n, "nomem");
	r->ring_bytes = h->counter(n, "ring_bytes", PP_COUNTER_GAUGE);
	r->ring_packets = h->counter(n, "ring_packets", PP_COUNTER_GAUGE);
	r->ring_span_ns = h->counter(n, "ring_span_ns", PP_COUNTER_GAUGE);
	r->queries = h->counter(n, "queries", PP_COUNTER_TOTAL);
	r->queries_legacy = h->counter(n, "queries_legacy", PP_COUNTER_TOTAL);
	r->query_errors = h->counter(n, "query_errors", PP_COUNTER_TOTAL);
	r->reply_bytes = h->counter(n, "reply_bytes", PP_COUNTER_TOTAL);
}

static void ring_free(struct ring *r)
{
	serve_close(r);
	dump_free(&r->sel);
	free(r);
}

static int ring_open(struct pp_node *node, const struct pp_host *host, const void *config,
		     void **state)
{
	struct ring *r;
	int rc;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->node = node;
	r->host = host;
	r->cfg = config;
	ring_counters(r);
	store_init(&r->store, r->cfg->window);
	rc = serve_open(r);
	if (rc < 0) {
		ring_free(r);
		return rc;
	}
	*state = r;
	return 0;
}

static int ring_start(void *state)
{
	return serve_start(state);
}

/* ------------------------------------------------------------------ */
/* Taking packets in                                                    */

/* Gauges and packets_held, after packets came or went. */
static void ring_levels(struct ring *r)
{
	const struct store *st = &r->store;
	uint64_t span = 0;

	if (st->count) {
		uint64_t oldest = store_at(st, 0)->ts_ns, newest = store_at(st, st->count - 1)->ts_ns;

		span = newest > oldest ? newest - oldest : 0;
	}
	pp_counter_set(&r->stats->packets_held, st->count);
	pp_counter_set(r->ring_packets, st->count);
	pp_counter_set(r->ring_bytes, st->cost);
	pp_counter_set(r->ring_span_ns, span);
}

static void ring_drop(struct ring *r, pp_counter *reason, const struct pp_packet *p,
		      const char *why)
{
	pp_counter_add(reason, p->count);
	r->host->log_limited(r->node, &r->drop_limit, PP_LOG_WARNING,
			     "dropped a packet of %u bytes: %s", p->caplen, why);
}

static void ring_take(struct ring *r, struct pp_packet *p, struct store_gone *gone)
{
	if (p->linktype == PP_LINKTYPE_FRAME)
		ring_drop(r, r->drop_frame, p, "an encoded frame (put a decoder before the ring)");
	else if (store_cost(p) > r->store.window)
		ring_drop(r, r->drop_too_large, p, "larger than the whole window");
	else if (store_push(&r->store, r->host, r->node, p, gone) < 0)
		ring_drop(r, r->drop_nomem, p, "out of memory");
}

static int ring_process(void *state, struct pp_batch *batch)
{
	struct ring *r = state;
	struct store_gone gone = { 0 };

	for (uint32_t i = 0; i < batch->count; i++)
		ring_take(r, batch->pkts[i], &gone);
	if (gone.packets)
		r->host->delivered(r->node, gone.packets, gone.bytes);
	ring_levels(r);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Stopping                                                             */

/* No more packets will come: stop answering, and let everything go. */
static int ring_stop(void *state)
{
	struct ring *r = state;
	struct store_gone gone = { 0 };

	serve_close(r);
	store_clear(&r->store, r->host, &gone);
	if (gone.packets)
		r->host->delivered(r->node, gone.packets, gone.bytes);
	ring_levels(r);
	return 0;
}

/* Only a ring that was never stopped still holds packets here; delivered()
 * is not a call close() may make, so they are counted out directly. */
static void ring_close(void *state)
{
	struct ring *r = state;
	struct store_gone gone = { 0 };

	serve_close(r);
	store_clear(&r->store, r->host, &gone);
	pp_counter_add(&r->stats->packets_out, gone.packets);
	pp_counter_add(&r->stats->bytes_out, gone.bytes);
	pp_counter_set(&r->stats->packets_held, 0);
	ring_free(r);
}

PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "ring",
	.summary = "keep the newest packets in memory and answer queries (BPF, time) over ZeroMQ",
	.roles = PP_ROLE_SINK,
	.options = ring_options,
	.config_size = sizeof(struct ring_config),
	.validate = ring_validate,
	.open = ring_open,
	.start = ring_start,
	.process = ring_process,
	.stop = ring_stop,
	.close = ring_close,
};
