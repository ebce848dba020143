/* pktpipe plugin ABI.
 *
 * This is the one header a plugin needs. A plugin is a shared object that
 * exports exactly one symbol, `pp_plugin`, a const struct pp_plugin. The host
 * hands every node a const struct pp_host: a table of function pointers for
 * everything a plugin may ask of the host, so plugins link with -Wl,-z,defs
 * and the host exports nothing.
 *
 * How this ABI evolves
 *   - PP_ABI_VERSION is bumped only when an existing field changes meaning,
 *     type or position. Plugins built for another version are refused.
 *   - New fields are only ever appended to struct pp_plugin, struct pp_host,
 *     struct pp_codec and struct pp_option. Each of the first three carries
 *     its struct_size, so either side can tell whether a field exists: the
 *     host reads a plugin field only when the plugin's struct_size covers it,
 *     and a plugin calls a host function only when host->struct_size covers
 *     it (PP_HOST_HAS()).
 *   - struct pp_packet and struct pp_meta are allocated by the host only;
 *     fields may be appended to them as well.
 *   - tests/unit/test_abi.c pins the size and offsets of every public struct
 *     of ABI 1; a change that moves one fails there first.
 *
 * Packets and batches: ownership
 *   - A packet is allocated by host->packet_alloc() (or made over the
 *     caller's bytes by host->packet_wrap()) with a reference count of
 *     one, owned by the caller. packet_ref() takes another reference,
 *     packet_unref() drops one; the last unref returns it to the pool. Both
 *     may be called from any thread (zmq's I/O thread releases zero-copy
 *     sends).
 *   - Once a packet has been emitted it is shared and read-only: no node may
 *     change its bytes or metadata, since fan-out hands the same packet to
 *     several nodes. A node that wants to change a packet makes a new one.
 *   - process(state, batch) borrows the batch and its packets for the
 *     duration of the call. A node that keeps a packet after returning
 *     (ring buffer, batching, a queue) takes a reference first.
 *   - emit(node, batch) borrows too: when it returns, the batch array and
 *     the caller's references are the caller's again. Downstream nodes have
 *     processed the batch, or taken references of their own (a node on a
 *     worker thread).
 *   - A batch array is the caller's memory; PP_BATCH_MAX is the size the
 *     host's own batches never exceed and a good size for plugins'.
 *
 * Accounting: for every node, at all times outside a call,
 *     packets_in = packets_out + sum(dropped by reason) + packets_held
 *   - The host counts packets_in/bytes_in of a filter or sink when it hands
 *     it a batch, and packets_out/bytes_out whenever a node emits.
 *   - A source counts its own packets_in (what it took from outside,
 *     including what it lost, e.g. kernel sequence gaps).
 *   - A sink has nobody to emit to; it calls host->delivered() for what it
 *     wrote, which counts packets_out/bytes_out.
 *   - Every packet dropped is counted under a reason (host->drop_reason()).
 *   - packets_held is kept current by any node that keeps packets (ring,
 *     pending batch, write buffer).
 *   - Counters count packets: a frame (pp_packet with linktype
 *     PP_LINKTYPE_FRAME) counts as packet->count packets. Bytes count
 *     caplen of what passed, frames by their own size.
 *
 * Threads: every callback of a node runs on that node's thread (the main
 * loop, or its worker with `thread = yes`), and the host functions that take
 * a node act on that node's loop. A plugin that keeps no globals is ready to
 * run on a worker.
 *
 * Errors: every fallible call returns 0 (or a count) on success and -errno
 * on failure, with a message logged through host->log() naming the cause.
 */
#ifndef PKTPIPE_PLUGIN_H
#define PKTPIPE_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PP_ABI_VERSION 1

/* The name of the one symbol a plugin exports. */
#define PP_PLUGIN_SYMBOL "pp_plugin"

#if defined(__GNUC__)
#define PP_EXPORT __attribute__((visibility("default")))
#define PP_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define PP_EXPORT
#define PP_PRINTF(fmt, args)
#endif

/* ------------------------------------------------------------------ */
/* Packets                                                             */

/* Linktypes are LINKTYPE_* numbers from tcpdump.org (101 raw IP, 1
 * Ethernet, 239 NFLOG, ...). An encoded batch travelling through the graph
 * uses this pseudo-linktype, outside the 16-bit LINKTYPE space. */
#define PP_LINKTYPE_FRAME 0x10000u

#define PP_PREFIX_MAX 128 /* NFLOG prefix, NUL included (kernel's limit) */

/* Which fields of struct pp_meta are valid. */
enum pp_meta_flags {
	PP_META_GROUP = 1u << 0,
	PP_META_PREFIX = 1u << 1,
	PP_META_IFINDEX_IN = 1u << 2,
	PP_META_IFINDEX_OUT = 1u << 3,
	PP_META_MARK = 1u << 4,
	PP_META_UID = 1u << 5,
	PP_META_GID = 1u << 6,
	PP_META_HW_PROTOCOL = 1u << 7,
	PP_META_SEQ = 1u << 8,
	PP_META_SEQ_GLOBAL = 1u << 9,
	PP_META_PHYSIN = 1u << 10,
	PP_META_PHYSOUT = 1u << 11,
};

/* Metadata of a packet, where its source knew it (nflog, native wire). */
struct pp_meta {
	uint32_t flags; /* enum pp_meta_flags */
	uint16_t group; /* nflog group */
	uint16_t hw_protocol; /* EtherType, host byte order */
	uint32_t ifindex_in, ifindex_out;
	uint32_t physin, physout; /* bridge ports */
	uint32_t mark;
	uint32_t uid, gid;
	uint32_t seq, seq_global; /* kernel sequence numbers */
	char prefix[PP_PREFIX_MAX]; /* NUL-terminated when PP_META_PREFIX */
};

struct pp_packet {
	uint8_t *data; /* caplen bytes; capacity bytes available */
	uint32_t caplen;
	uint32_t origlen; /* length on the wire, as the source said (normally >= caplen) */
	uint64_t ts_ns; /* capture time, ns since the Unix epoch */
	uint32_t linktype; /* LINKTYPE_* or PP_LINKTYPE_FRAME */
	uint32_t count; /* packets carried: 1, or those inside a frame */
	uint32_t capacity; /* set by the host */
	uint32_t codec; /* frames: the wire codec id (wire.h); else 0 */
	struct pp_meta meta;
};

/* Largest batch the host builds; a good size for plugins' own. */
#define PP_BATCH_MAX 256

struct pp_batch {
	struct pp_packet **pkts;
	uint32_t count;
};

/* Packets a batch carries, frames counted by their content. */
static inline uint64_t pp_batch_packets(const struct pp_batch *b)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < b->count; i++)
		n += b->pkts[i]->count;
	return n;
}

static inline uint64_t pp_batch_bytes(const struct pp_batch *b)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < b->count; i++)
		n += b->pkts[i]->caplen;
	return n;
}

/* Both at once, for a caller that needs both: one walk of the batch. */
static inline void pp_batch_totals(const struct pp_batch *b, uint64_t *packets, uint64_t *bytes)
{
	*packets = *bytes = 0;
	for (uint32_t i = 0; i < b->count; i++) {
		*packets += b->pkts[i]->count;
		*bytes += b->pkts[i]->caplen;
	}
}

/* ------------------------------------------------------------------ */
/* Counters                                                            */

/* A counter is written by its node's thread only and read by any thread
 * (stats dumps, statsd): single writer, so a relaxed load and store need no
 * locked instruction and are still race-free. */
typedef uint64_t pp_counter;

static inline void pp_counter_add(pp_counter *c, uint64_t n)
{
	__atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

static inline void pp_counter_set(pp_counter *c, uint64_t v)
{
	__atomic_store_n(c, v, __ATOMIC_RELAXED);
}

static inline uint64_t pp_counter_get(const pp_counter *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

enum pp_counter_kind {
	PP_COUNTER_TOTAL, /* only grows; statsd sends deltas */
	PP_COUNTER_GAUGE, /* a level (queue depth, buffer fill) */
};

/* The standard counters of a node; host->stats() returns its node's. */
struct pp_stats {
	pp_counter packets_in, bytes_in;
	pp_counter packets_out, bytes_out;
	pp_counter packets_held;
};

/* ------------------------------------------------------------------ */
/* Options: a typed table the host parses, validates and documents      */

enum pp_opt_type {
	PP_OPT_STRING, /* char *                                         */
	PP_OPT_PATH, /* char *, a file system path                      */
	PP_OPT_ENDPOINT, /* char *, transport://address (zmq style)       */
	PP_OPT_BOOL, /* bool: yes/no, true/false, on/off, 1/0          */
	PP_OPT_INT, /* int64_t, decimal or 0x hex, within [min, max]  */
	PP_OPT_SIZE, /* uint64_t bytes: 4096, 64KiB, 4MiB, 1.5GiB, 1MB */
	PP_OPT_RATE, /* uint64_t bytes/s: 5MiB/s, 800KiB/s, 100Mbit/s  */
	PP_OPT_DURATION, /* uint64_t ns: 200ms, 2s, 1.5 (seconds), 5min   */
	PP_OPT_ENUM, /* int: index into choices                        */
	PP_OPT_LIST, /* struct pp_list, comma-separated, items of item_type */
	PP_OPT_CUSTOM, /* whatever parse() stores                        */
};

/* A parsed list. str[] always holds the items' trimmed text; num[] holds
 * their values when item_type is numeric (INT, SIZE, RATE, DURATION, BOOL,
 * ENUM), else it is NULL. */
struct pp_list {
	size_t count;
	char **str;
	int64_t *num;
};

struct pp_option {
	const char *name;
	enum pp_opt_type type;
	/* As it would be written in the ini file. NULL: the key is required.
	 * "": optional with no value (strings NULL, lists empty). */
	const char *default_value;
	/* Bounds of INT, SIZE, RATE, DURATION (in bytes, bytes/s, ns) and of
	 * the numeric items of a LIST; min == max == 0 means unbounded. For a
	 * LIST, the item count is bounded by max_items (0 = unbounded). */
	int64_t min, max;
	size_t offset; /* offsetof(your config struct, field) */
	const char *help; /* one line; units and meaning */
	const char *const *choices; /* ENUM: NULL-terminated names */
	enum pp_opt_type item_type; /* LIST: each item's type */
	uint32_t max_items; /* LIST */
	/* CUSTOM: parse text into dst; 0 or -EINVAL with a reason in err. */
	int (*parse)(const char *text, void *dst, char *err, size_t errlen);
	const char *value_hint; /* CUSTOM: how a value looks, for --describe */
};

/* Terminates an option table. */
#define PP_OPTION_END { .name = NULL }

/* ------------------------------------------------------------------ */
/* Codecs: compression offered by one plugin to others                  */

struct pp_codec {
	uint32_t struct_size; /* sizeof(struct pp_codec) when built */
	const char *name; /* "zlib" */
	uint8_t wire_id; /* PP_CODEC_* in wire.h */
	/* A context per thread and direction; level is codec-specific. */
	void *(*ctx_new)(int level);
	void (*ctx_free)(void *ctx);
	/* Worst-case output size for len bytes of input. */
	size_t (*bound)(size_t len);
	/* out has *outlen bytes; on success *outlen is what was written. */
	int (*compress)(void *ctx, const void *in, size_t len, void *out, size_t *outlen);
	/* -EMSGSIZE when the output would exceed *outlen (a bomb); -EBADMSG
	 * when the input is not valid. Never reads past in + len. */
	int (*decompress)(void *ctx, const void *in, size_t len, void *out, size_t *outlen);
};

/* ------------------------------------------------------------------ */
/* Host services                                                        */

struct pp_node; /* opaque: one node of the graph */
struct pp_watch; /* opaque: an fd watched by the loop */
struct pp_timer; /* opaque: a timer of the loop */

enum pp_log_level { PP_LOG_ERROR, PP_LOG_WARNING, PP_LOG_INFO, PP_LOG_DEBUG };

/* State for host->log_limited(): zero-initialise, keep per message kind. */
struct pp_log_limit {
	uint64_t next_ns;
	uint64_t suppressed;
};

enum pp_watch_flags {
	PP_WATCH_READ = 1u << 0,
	PP_WATCH_WRITE = 1u << 1,
	/* Edge-triggered (zmq's ZMQ_FD): the callback must drain, or arm a
	 * zero-delay timer to come back, before returning. */
	PP_WATCH_EDGE = 1u << 2,
};

/* events: PP_WATCH_READ/WRITE that are ready; hangup and error report as
 * both, so the next read or write tells what happened. */
typedef void (*pp_watch_fn)(void *arg, int fd, unsigned events);
typedef void (*pp_timer_fn)(void *arg);

/* Called by stats_foreach() once per counter. value is a snapshot. */
typedef void (*pp_stat_fn)(void *arg, const char *node, const char *plugin,
			   const char *counter, enum pp_counter_kind kind, uint64_t value);

/* PP_HOST_HAS(host, fn): whether this host provides that function. */
#define PP_HOST_HAS(host, fn) \
	((host)->struct_size >= offsetof(struct pp_host, fn) + sizeof((host)->fn) && (host)->fn)

struct pp_host {
	uint32_t abi_version; /* PP_ABI_VERSION of the host */
	uint32_t struct_size; /* sizeof(struct pp_host) of the host */

	/* Logging; the node's name is prefixed. One line per call. */
	void (*log)(struct pp_node *node, int level, const char *fmt, ...) PP_PRINTF(3, 4);
	/* At most one line a second per lim; says how many were suppressed. */
	void (*log_limited)(struct pp_node *node, struct pp_log_limit *lim, int level,
			    const char *fmt, ...) PP_PRINTF(4, 5);
	const char *(*node_name)(const struct pp_node *node);

	/* Hand a batch to every node downstream; counts packets_out. */
	void (*emit)(struct pp_node *node, struct pp_batch *batch);
	/* A sink wrote these: counts packets_out/bytes_out. */
	void (*delivered)(struct pp_node *node, uint64_t packets, uint64_t bytes);
	/* The node's standard counters; valid from open() to close(). */
	struct pp_stats *(*stats)(struct pp_node *node);
	/* A counter of drops for reason (a short lowercase word, e.g. "hwm");
	 * the same pointer for the same reason. Call in open() or start(). */
	pp_counter *(*drop_reason)(struct pp_node *node, const char *reason);
	/* A plugin counter, reported in stats and to statsd. */
	pp_counter *(*counter)(struct pp_node *node, const char *name, enum pp_counter_kind kind);
	/* Every counter of every node, for reporters (statsd). */
	void (*stats_foreach)(struct pp_node *node, pp_stat_fn fn, void *arg);

	/* The node is done: a source reached its end, or a stop() that
	 * returned -EINPROGRESS has drained. status < 0: it failed (-errno),
	 * and the run will exit 1. */
	void (*finished)(struct pp_node *node, int status);

	/* Event loop. fds must be non-blocking. */
	struct pp_watch *(*watch_fd)(struct pp_node *node, int fd, unsigned flags, pp_watch_fn fn,
				     void *arg);
	int (*watch_modify)(struct pp_watch *w, unsigned flags);
	void (*unwatch)(struct pp_watch *w);
	struct pp_timer *(*timer_new)(struct pp_node *node, pp_timer_fn fn, void *arg);
	/* Fire once after delay_ns (0: on the next loop turn), then every
	 * interval_ns if it is not 0. Re-arming replaces the previous arming. */
	int (*timer_arm)(struct pp_timer *t, uint64_t delay_ns, uint64_t interval_ns);
	void (*timer_disarm)(struct pp_timer *t);
	void (*timer_free)(struct pp_timer *t);
	uint64_t (*now_mono_ns)(void);
	uint64_t (*now_real_ns)(void);

	/* Packets: data has room for capacity bytes; caplen starts at 0. */
	struct pp_packet *(*packet_alloc)(struct pp_node *node, uint32_t capacity);
	void (*packet_ref)(struct pp_packet *p);
	void (*packet_unref)(struct pp_packet *p);

	/* Codecs, provided by any plugin whose descriptor lists them; the host
	 * loads that plugin when asked. NULL with a logged reason if none. */
	const struct pp_codec *(*codec_find)(struct pp_node *node, const char *name);
	const struct pp_codec *(*codec_by_id)(struct pp_node *node, uint8_t wire_id);

	/* Zero-copy (appended; a plugin checks PP_HOST_HAS(host, packet_wrap)):
	 * a packet whose len bytes are data, memory the caller owns and keeps
	 * unchanged until release(arg) is called, exactly once per wrapped
	 * packet, on the thread that drops its last reference. caplen and
	 * capacity are len; the rest is as packet_alloc() leaves it. NULL if
	 * memory is exhausted (release is then not called). A wrapped packet
	 * pins all of what release frees: worth it for bytes the source holds
	 * anyway (a received message, a read buffer) and would otherwise copy.
	 * A node that keeps packets for long takes them with packet_keep(). */
	struct pp_packet *(*packet_wrap)(struct pp_node *node, const uint8_t *data, uint32_t len,
					 void (*release)(void *arg), void *arg);
	/* A reference to keep p for long (a ring, a deep queue): p itself with
	 * one more reference, or, when p is wrapped, a copy that owns its
	 * bytes (reference count one), so that what a node keeps never pins
	 * more memory than its packets. NULL without memory. Either way the
	 * caller drops it with packet_unref(). */
	struct pp_packet *(*packet_keep)(struct pp_node *node, struct pp_packet *p);

	/* Backpressure (appended; check PP_HOST_HAS(host, downstream_wait)):
	 * whether a node that this node's batches reach (directly or through
	 * nodes on its own thread) takes no more for now: it runs on another
	 * thread (`thread = yes`) and its queue is three quarters full, or it
	 * said it is busy (set_busy). If so, returns true and calls fn(arg)
	 * once, on this node's thread, when such a node takes more again (a
	 * queue drained a sixteenth below that mark, a busy node no longer
	 * busy); the node then asks again. A later call before fn came only replaces fn and
	 * arg. If not, returns false and fn is not called. A source whose
	 * input can wait where it is (a file; a socket that the kernel or the
	 * peer buffers) asks before each read and pauses while it is true, so
	 * that a slow consumer holds its packets back instead of dropping
	 * them (queue-full, or the consumer's own reason). The host counts
	 * each wait in the node's `paused` counter. fn is not called once the
	 * node has finished (finished(), or stop() returned anything but
	 * -EINPROGRESS). The host waits so itself for a node on its own
	 * thread that is given batches: they stay in its queue while a node
	 * ahead refuses, so that the nodes feeding it wait in turn, however
	 * many threads away the refusing node is; such a node does not call
	 * downstream_wait itself. */
	bool (*downstream_wait)(struct pp_node *node, pp_timer_fn fn, void *arg);
	/* The other side of downstream_wait (appended; PP_HOST_HAS(host,
	 * set_busy)): this node takes no more for now (busy true: a socket
	 * whose queue is full), so nodes whose batches reach it wait as for a
	 * full queue; set_busy(node, false) when it takes more again wakes
	 * them. Call it on the node's own thread. A node that finishes is no
	 * longer busy. */
	void (*set_busy)(struct pp_node *node, bool busy);
};

/* ------------------------------------------------------------------ */
/* The plugin descriptor                                                */

enum pp_role {
	PP_ROLE_SOURCE = 1u << 0, /* no input; produces packets */
	PP_ROLE_FILTER = 1u << 1, /* input and downstream */
	PP_ROLE_SINK = 1u << 2, /* input; nothing downstream */
	PP_ROLE_SERVICE = 1u << 3, /* no input, no output (statsd) */
	PP_ROLE_CODEC = 1u << 4, /* offers codecs; need not be a node */
};

/* A command a plugin adds to pktpipe's command line, run instead of a
 * graph: `pktpipe --NAME ARGS...` calls run() with the arguments after
 * --NAME; its return is the exit status (0 ok, 1 failure, 2 usage). */
struct pp_command {
	const char *name; /* "gen-curve-key" */
	const char *args; /* "PATH", for --help */
	const char *help; /* one line */
	int (*run)(int argc, char **argv);
};

struct pp_plugin {
	uint32_t abi_version; /* PP_ABI_VERSION, set explicitly */
	uint32_t struct_size; /* sizeof(struct pp_plugin) */
	const char *name; /* [a-z0-9-]+, as written after plugin = */
	const char *summary; /* one line */
	uint32_t roles; /* enum pp_role */
	const struct pp_option *options; /* ends with PP_OPTION_END */
	size_t config_size; /* the host allocates, fills and frees it */

	/* Cross-key checks on a parsed config (lwm <= hwm), run by --check
	 * before anything opens. 0, or -EINVAL with a reason in err. Optional. */
	int (*validate)(const void *config, char *err, size_t errlen);
	/* Set up: allocate state, open what can fail early. config stays
	 * valid until close(). Required for nodes. */
	int (*open)(struct pp_node *node, const struct pp_host *host, const void *config,
		    void **state);
	/* All nodes are open; begin work (sources start producing). */
	int (*start)(void *state);
	/* Filters and sinks: a batch from upstream. A negative return is a
	 * fatal failure of the node: it must then have emitted and counted
	 * nothing of this batch, which the host counts as dropped for reason
	 * "node-failed", as it does every later batch. Per-packet trouble is
	 * a counted drop and returns 0. */
	int (*process)(void *state, struct pp_batch *batch);
	/* Stop producing; emit or write what is pending. Called once every
	 * input has finished (a source: once the run shuts down), and never
	 * for a node that already called host->finished(). 0: done.
	 * -EINPROGRESS: the node calls host->finished() when drained (the
	 * host waits a bounded time, then closes it anyway). */
	int (*stop)(void *state);
	/* Release everything. Host calls allowed here: packet_unref, log,
	 * delivered, unwatch and timer_free, and counters may still be
	 * written (to account for what was held); watches and timers left
	 * over are removed by the host after close() returns. close() follows a successful open()
	 * whether or not start() or stop() ever ran. */
	void (*close)(void *state);
	/* SIGHUP: reopen files. Optional. */
	void (*reopen)(void *state);
	/* Codecs this plugin offers, NULL-terminated. Optional. */
	const struct pp_codec *const *codecs;
	/* Commands it adds to the command line, ending with a NULL name.
	 * Optional. */
	const struct pp_command *commands;
};

#ifdef __cplusplus
}
#endif
#endif /* PKTPIPE_PLUGIN_H */
