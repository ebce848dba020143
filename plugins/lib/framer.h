/* Native frames inside the graph: the zlib node and ratelimit squash
 * packets into compressed frames (struct framer), the zlib node and zmq-in
 * open frames again (struct frame_reader), and all three hand what they
 * make downstream through a struct outq (outq.h).
 *
 * Each is a struct the plugin embeds in its calloc'd state. All zeroes is a
 * valid "never opened" value: the release functions accept it, and a
 * framer that was never opened has nothing pending, so framer_flush() does
 * nothing. Nothing here blocks; the framer's only timer is its delay.
 *
 * Invariants, true outside every call:
 *   - Every packet a framer keeps carries one reference the framer owns.
 *     framer_flush() gives them up; framer_release() (for close(), when
 *     stop() never ran) drops them, counting them under "stopped".
 *   - A framer's pending packets are its node's packets_held, and never
 *     more than batch_packets of them, nor more than PP_WIRE_HEADER_LEN +
 *     batch_bytes bytes of records (a larger packet travels alone).
 *   - While packets are pending and delay is set, the timer is armed to
 *     fire delay after the first of them came: no frame waits longer.
 *     With delay 0 the plugin flushes at the end of every process().
 *   - Every packet a framer takes leaves inside a frame (the frame counts
 *     as the packets it carries) or is counted under a drop reason ("nomem",
 *     "codec"), so packets_in = packets_out + dropped + held holds.
 *   - A frame's header carries seq = the packets this framer put into
 *     frames before it; a frame that could not be made does not advance it.
 *     Frames never promise sequence (PP_WIRE_FLAG_SEQ clear): what happens
 *     after this node is not the framer's to vouch for.
 *   - A frame_reader trusts nothing in a frame: frame_reader_records()
 *     gives records only once every one of them has been checked, and
 *     decompresses into at most max bytes.
 */
#ifndef PKTPIPE_PLUGINS_LIB_FRAMER_H
#define PKTPIPE_PLUGINS_LIB_FRAMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pktpipe/plugin.h>

#include "outq.h"
#include "wire.h"

/* ------------------------------------------------------------------ */
/* Packets into compressed frames                                       */

/* A sender id that differs from run to run, so that a receiver tells a
 * restarted sender (sequence from 0) from losses (WIRE.md). zmq-out's
 * frames carry one too. */
uint64_t frame_sender_id(const struct pp_host *host);

/* The keys of a plugin that frames, as its option table fills them: a
 * plugin embeds this in its config struct. */
struct framer_config {
	char *codec; /* a codec plugin's name */
	int64_t level; /* the codec's; -1 = its default */
	int64_t batch_packets; /* most packets per frame, >= 1 */
	uint64_t batch_bytes; /* most bytes per frame before compression */
	uint64_t delay; /* ns; 0: the plugin flushes after each batch */
};

/* The node's counters the framer writes: frames made, bytes of the
 * packets before and of the frames after, and its drop reasons. A plugin
 * keeps them here and registers them itself, in its order. */
struct framer_counters {
	pp_counter *frames, *bytes_before, *bytes_after;
	pp_counter *drop_nomem, *drop_codec, *drop_stopped;
};

struct framer {
	struct outq *out; /* where frames go */
	struct pp_stats *stats;
	const struct framer_config *cfg;
	const struct framer_counters *c;
	const struct pp_codec *codec;
	void *ctx;
	struct wire_header head; /* sender; seq of the next frame */
	struct pp_packet **pending;
	uint32_t npending;
	size_t pending_len; /* bytes of their records */
	uint8_t *scratch; /* records before compression */
	size_t scratch_len;
	struct pp_timer *timer;
	struct pp_log_limit nomem_limit, codec_limit;
};

/* Cross-key checks for validate(): zlib knows levels 0 to 9 only (other
 * codecs judge their own). 0, or -EINVAL with a reason in err. */
int framer_validate(const struct framer_config *cfg, char *err, size_t errlen);
/* The codec (-ENOENT if no plugin offers it), its context, the pending
 * array and the delay timer (-ENOMEM). On failure framer_release() still
 * undoes what was made. cfg and c must outlive the framer. */
int framer_open(struct framer *f, struct outq *out, const struct framer_config *cfg,
		const struct framer_counters *c);
/* Take a packet (not a frame) into the pending batch, flushing before it
 * if it would not fit and after it if the batch is full. */
void framer_add(struct framer *f, struct pp_packet *p);
/* The pending packets, as one frame, into the outq (not emitted yet). */
void framer_flush(struct framer *f);
/* For close(): what is still pending never left (stop() did not run) and
 * counts as dropped "stopped"; everything is freed. */
void framer_release(struct framer *f);

/* ------------------------------------------------------------------ */
/* Frames back into packets                                             */

struct frame_reader {
	struct pp_node *node;
	const struct pp_host *host;
	size_t max; /* largest frame once decompressed: scratch's size */
	uint8_t *scratch; /* made on first use */
	/* A decoder per codec id, looked up on first use. */
	const struct pp_codec *codec[256];
	void *ctx[256];
	bool tried[256];
};

void frame_reader_init(struct frame_reader *r, struct pp_node *node, const struct pp_host *host,
		       size_t max);
/* The decoder of codec id, NULL if no plugin offers it. */
const struct pp_codec *frame_reader_codec(struct frame_reader *r, uint8_t id, void **ctx);
/* max bytes to decompress into; NULL without memory. */
uint8_t *frame_reader_scratch(struct frame_reader *r);
/* The records of a frame whose header is sound, all checked:
 * -ENOPROTOOPT (no decoder), -ENOMEM, or wire.h's decoding errors. */
int frame_reader_records(struct frame_reader *r, const struct wire_header *h,
			 const uint8_t **records);
/* A new packet (count 1) of a decoded record; NULL without memory. */
struct pp_packet *frame_reader_packet(struct frame_reader *r, const struct wire_record *rec);
/* The same over the record's bytes where they lie (host->packet_wrap():
 * release(arg) once the packet is gone); NULL without memory, and then
 * release is not called. */
struct pp_packet *frame_reader_wrap(struct frame_reader *r, const struct wire_record *rec,
				    void (*release)(void *arg), void *arg);
void frame_reader_release(struct frame_reader *r);

#endif
