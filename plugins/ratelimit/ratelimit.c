/* ratelimit: the original's --rate-control, done better. The input rate is
 * measured over a sliding window on the monotonic clock, and decides, per
 * packet as it arrives:
 *   below lwm          pass: packets go on unchanged;
 *   lwm .. hwm         compress: packets are squashed into native frames
 *                      compressed with the codec (zlib by default), which
 *                      zmq-out sends as they are;
 *   above hwm          shape: a token bucket filled at hwm lets the output
 *                      go on at hwm, the excess is dropped (reason "hwm");
 *                      what passes is still compressed (when lwm is set).
 * lwm = 0 never compresses, hwm = 0 never drops.
 *
 * Unlike the original, a mode change never loses the pending compressed
 * batch: leaving compression sends it first, so order is kept too; above
 * hwm the output keeps flowing at hwm instead of stopping until the next
 * window; a frame leaves at most max_delay after its first packet.
 *
 * The rate counts every byte arriving (caplen; frames from upstream by
 * their size), dropped or not. The bucket holds burst's worth of hwm and
 * starts empty when shaping begins: the window that crossed hwm has had
 * its share already. A packet passes while the bucket is not in debt (a
 * packet larger than the bucket still passes, and the debt waits it out).
 *
 * Accounting counts packets (a frame as those inside): packets_in =
 * packets_out + dropped + packets_held, the pending batch being held.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pktpipe/plugin.h>

#include "framer.h"

#define RL_SLOTS 10 /* the window, in slots that expire one at a time */
#define RL_NS_PER_S 1e9

enum rl_mode { RL_PASS, RL_COMPRESS, RL_SHAPE };

struct rl_config {
	uint64_t lwm, hwm; /* bytes/s */
	uint64_t window; /* ns */
	uint64_t burst; /* ns */
	struct framer_config frame; /* codec, level, batch_*, max_delay */
};

static const struct pp_option rl_options[] = {
	{ .name = "lwm", .type = PP_OPT_RATE, .default_value = "1MiB/s",
	  .offset = offsetof(struct rl_config, lwm),
	  .help = "below this input rate packets pass unchanged; from it up they are squashed into compressed frames; 0 = never compress" },
	{ .name = "hwm", .type = PP_OPT_RATE, .default_value = "5MiB/s",
	  .offset = offsetof(struct rl_config, hwm),
	  .help = "above this input rate the output is held at it and the excess dropped (reason hwm); 0 = never drop" },
	{ .name = "window", .type = PP_OPT_DURATION, .default_value = "1s", .min = 10000000,
	  .max = 3600000000000ll, .offset = offsetof(struct rl_config, window),
	  .help = "the input rate is measured over this much of the recent past (sliding, monotonic clock)" },
	{ .name = "burst", .type = PP_OPT_DURATION, .default_value = "100ms", .min = 0,
	  .max = 60000000000ll, .offset = offsetof(struct rl_config, burst),
	  .help = "above hwm, how far (in time at hwm) the output may run ahead to absorb uneven arrivals" },
	{ .name = "codec", .type = PP_OPT_STRING, .default_value = "zlib",
	  .offset = offsetof(struct rl_config, frame.codec),
	  .help = "the codec frames are compressed with (a plugin offering it: zlib, zstd)" },
	{ .name = "level", .type = PP_OPT_INT, .default_value = "-1", .min = -1, .max = 22,
	  .offset = offsetof(struct rl_config, frame.level),
	  .help = "the codec's level (zlib 0-9, zstd 1-19); -1 = the codec's default (zlib 6, zstd 3)" },
	{ .name = "max_delay", .type = PP_OPT_DURATION, .default_value = "100ms", .min = 0,
	  .max = 10000000000ll, .offset = offsetof(struct rl_config, frame.delay),
	  .help = "a compressed frame leaves at most this long after its first packet; 0 = with each input batch" },
	{ .name = "batch_packets", .type = PP_OPT_INT, .default_value = "1024", .min = 1,
	  .max = 65536, .offset = offsetof(struct rl_config, frame.batch_packets),
	  .help = "most packets per compressed frame" },
	{ .name = "batch_bytes", .type = PP_OPT_SIZE, .default_value = "1MiB", .min = 64,
	  .max = 256ll << 20, .offset = offsetof(struct rl_config, frame.batch_bytes),
	  .help = "most bytes per frame before compression (a larger packet goes alone); keep it below the receivers' max_message" },
	PP_OPTION_END
};

struct rl {
	struct pp_node *node;
	const struct pp_host *host;
	const struct rl_config *cfg;
	pp_counter *mode_switches, *mode_gauge, *rate_gauge, *drop_hwm;
	struct framer_counters fc;
	struct pp_log_limit hwm_limit;
	int mode; /* enum rl_mode */
	uint64_t now; /* the batch's arrival, monotonic ns */
	/* The window: bytes per slot; slot is the current one's number. */
	uint64_t slot_ns, slot, slot_bytes[RL_SLOTS], window_bytes;
	/* The bucket, in bytes; negative: in debt. */
	double tokens, depth;
	uint64_t filled_ns;
	/* Compression (lwm set): the frame being gathered. */
	struct framer fr;
	struct outq out;
};

static int rl_validate(const void *config, char *err, size_t errlen)
{
	const struct rl_config *cfg = config;

	if (cfg->lwm && cfg->hwm && cfg->lwm > cfg->hwm) {
		snprintf(err, errlen, "lwm (%llu B/s) is above hwm (%llu B/s)",
			 (unsigned long long)cfg->lwm, (unsigned long long)cfg->hwm);
		return -EINVAL;
	}
	return framer_validate(&cfg->frame, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Opening                                                              */

static void rl_counters(struct rl *s)
{
	const struct pp_host *h = s->host;

	s->fc.frames = h->counter(s->node, "frames_compressed", PP_COUNTER_TOTAL);
	s->fc.bytes_before = h->counter(s->node, "bytes_before", PP_COUNTER_TOTAL);
	s->fc.bytes_after = h->counter(s->node, "bytes_after", PP_COUNTER_TOTAL);
	s->mode_switches = h->counter(s->node, "mode_switches", PP_COUNTER_TOTAL);
	s->mode_gauge = h->counter(s->node, "mode", PP_COUNTER_GAUGE);
	s->rate_gauge = h->counter(s->node, "rate", PP_COUNTER_GAUGE);
	s->drop_hwm = h->drop_reason(s->node, "hwm");
	s->fc.drop_nomem = h->drop_reason(s->node, "nomem");
	s->fc.drop_codec = h->drop_reason(s->node, "codec");
	s->fc.drop_stopped = h->drop_reason(s->node, "stopped");
}

static void rl_close(void *state);

static int rl_open(struct pp_node *node, const struct pp_host *host, const void *config,
		   void **state)
{
	const struct rl_config *cfg = config;
	struct rl *s;
	int rc = 0;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->node = node;
	s->host = host;
	s->cfg = cfg;
	outq_init(&s->out, node, host);
	rl_counters(s);
	s->slot_ns = cfg->window / RL_SLOTS;
	s->slot = host->now_mono_ns() / s->slot_ns;
	s->depth = (double)cfg->hwm * (double)cfg->burst / RL_NS_PER_S;
	/* Frames carry no sequence promise (framer.h): zmq-out's own drops
	 * and fan-out after this node are not ours to vouch for. */
	if (cfg->lwm)
		rc = framer_open(&s->fr, &s->out, &cfg->frame, &s->fc);
	if (rc < 0) {
		rl_close(s);
		return rc;
	}
	*state = s;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Measuring and deciding                                               */

/* Move the window to now: slots that fell out of it are emptied. */
static void rl_window_advance(struct rl *s)
{
	uint64_t slot = s->now / s->slot_ns, gap;

	if (slot <= s->slot)
		return;
	gap = slot - s->slot < RL_SLOTS ? slot - s->slot : RL_SLOTS;
	for (uint64_t k = 1; k <= gap; k++) {
		uint64_t *b = &s->slot_bytes[(s->slot + k) % RL_SLOTS];

		s->window_bytes -= *b;
		*b = 0;
	}
	s->slot = slot;
}

/* Bytes/s over the window: the full slots before this one, and as much of
 * this one as has passed. */
static double rl_rate(const struct rl *s)
{
	uint64_t span = (RL_SLOTS - 1) * s->slot_ns + (s->now - s->slot * s->slot_ns);

	return (double)s->window_bytes * RL_NS_PER_S / (double)span;
}

static int rl_mode_for(const struct rl *s, double rate)
{
	if (s->cfg->hwm && rate > (double)s->cfg->hwm)
		return RL_SHAPE;
	if (s->cfg->lwm && rate >= (double)s->cfg->lwm)
		return RL_COMPRESS;
	return RL_PASS;
}

/* Leaving compression sends what is pending first: nothing is lost and
 * the order holds. Shaping starts with an empty bucket. */
static void rl_set_mode(struct rl *s, int mode)
{
	if (mode == s->mode)
		return;
	if (mode == RL_PASS)
		framer_flush(&s->fr);
	if (mode == RL_SHAPE) {
		s->tokens = 0;
		s->filled_ns = s->now;
	}
	s->mode = mode;
	pp_counter_add(s->mode_switches, 1);
	pp_counter_set(s->mode_gauge, (uint64_t)mode);
}

/* Whether the bucket lets len bytes through now. */
static bool rl_admit(struct rl *s, uint32_t len)
{
	s->tokens += (double)(s->now - s->filled_ns) * (double)s->cfg->hwm / RL_NS_PER_S;
	s->filled_ns = s->now;
	if (s->tokens > s->depth)
		s->tokens = s->depth;
	if (s->tokens < 0)
		return false;
	s->tokens -= len;
	return true;
}

/* ------------------------------------------------------------------ */
/* Processing                                                           */

static void rl_packet(struct rl *s, struct pp_packet *p)
{
	s->slot_bytes[s->slot % RL_SLOTS] += p->caplen;
	s->window_bytes += p->caplen;
	rl_set_mode(s, rl_mode_for(s, rl_rate(s)));
	if (s->mode == RL_SHAPE && !rl_admit(s, p->caplen)) {
		outq_drop(&s->out, s->drop_hwm, &s->hwm_limit, p->count, "input above hwm");
		return;
	}
	if (s->mode != RL_PASS && s->fr.codec && p->linktype != PP_LINKTYPE_FRAME) {
		framer_add(&s->fr, p);
		return;
	}
	framer_flush(&s->fr); /* a frame from upstream: after what is pending */
	outq_put(&s->out, p, false);
}

static int rl_process(void *state, struct pp_batch *batch)
{
	struct rl *s = state;

	s->now = s->host->now_mono_ns();
	rl_window_advance(s);
	for (uint32_t i = 0; i < batch->count; i++)
		rl_packet(s, batch->pkts[i]);
	if (!s->cfg->frame.delay)
		framer_flush(&s->fr);
	outq_emit(&s->out);
	pp_counter_set(s->rate_gauge, (uint64_t)rl_rate(s));
	return 0;
}

/* ------------------------------------------------------------------ */
/* Stopping                                                             */

static int rl_stop(void *state)
{
	struct rl *s = state;

	framer_flush(&s->fr);
	outq_emit(&s->out);
	return 0;
}

/* Without stop() (a failed start) the pending batch was never sent. */
static void rl_close(void *state)
{
	struct rl *s = state;

	framer_release(&s->fr);
	outq_release(&s->out);
	free(s);
}

PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "ratelimit",
	.summary = "rate control: pass below lwm, compress between lwm and hwm, shape to hwm above",
	.roles = PP_ROLE_FILTER,
	.options = rl_options,
	.config_size = sizeof(struct rl_config),
	.validate = rl_validate,
	.open = rl_open,
	.process = rl_process,
	.stop = rl_stop,
	.close = rl_close,
};
