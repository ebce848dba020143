/* zlib: the "zlib" codec (wire id PP_CODEC_ZLIB) for other plugins, and a
 * node that compresses packets into native frames or turns frames back
 * into packets.
 *
 * The codec: zmq-in decodes compressed native frames and legacy-rc messages
 * with it, ratelimit squashes with it. Streams are zlib-wrapped deflate (RFC
 * 1950), what the original's compressobj() wrote. Decompression writes at
 * most *outlen bytes and stops there: a stream that would inflate further is
 * refused with -EMSGSIZE (a bomb), whatever its ratio; bytes after the end
 * of the stream are refused as -EBADMSG.
 *
 * The node (mode = compress): packets gather into a pending batch, bounded
 * like zmq-out's (batch_packets, batch_bytes, batch_delay), which leaves as
 * one packet of linktype PP_LINKTYPE_FRAME holding a native frame made with
 * the codec (any plugin's: codec = zstd works too). zmq-out sends such
 * frames as they are. Pending packets are packets_held. Frames arriving are
 * passed on untouched, after the pending batch, so order is kept.
 *
 * The node (mode = decompress): frames of any codec a plugin offers become
 * their packets again; other packets pass untouched. A frame is checked
 * whole before any packet is made (the bytes may come from the network):
 * a bad one is dropped with all its packets ("malformed", or "codec" when
 * no plugin decodes it). legacy-rc messages never reach a node: zmq-in
 * decodes them itself.
 *
 * Accounting counts packets: a frame counts as the packets inside it, in
 * and out, so packets_in = packets_out + dropped + held holds throughout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <zlib.h>

#include <pktpipe/plugin.h>
#include <pktpipe/wire.h>

#include "wire.h"

/* ------------------------------------------------------------------ */
/* The codec                                                            */

#define ZC_LEVEL_DEFAULT 6

/* One direction's stream, made on first use and reset between calls. */
struct zc_ctx {
	int level;
	bool have_deflate, have_inflate;
	z_stream def, inf;
};

static void *zc_ctx_new(int level)
{
	struct zc_ctx *c = calloc(1, sizeof(*c));

	if (c)
		c->level = level >= 0 && level <= 9 ? level : ZC_LEVEL_DEFAULT;
	return c;
}

static void zc_ctx_free(void *ctx)
{
	struct zc_ctx *c = ctx;

	if (!c)
		return;
	if (c->have_deflate)
		deflateEnd(&c->def);
	if (c->have_inflate)
		inflateEnd(&c->inf);
	free(c);
}

static size_t zc_bound(size_t len)
{
	/* compressBound() takes uLong, which is size_t wide on LP64. */
	return (size_t)compressBound((uLong)len);
}

static int zc_compress(void *ctx, const void *in, size_t len, void *out, size_t *outlen)
{
	struct zc_ctx *c = ctx;
	int rc;

	if (len > UINT32_MAX || *outlen > UINT32_MAX)
		return -EMSGSIZE;
	if (!c->have_deflate) {
		if (deflateInit(&c->def, c->level) != Z_OK)
			return -ENOMEM;
		c->have_deflate = true;
	} else if (deflateReset(&c->def) != Z_OK) {
		return -EINVAL;
	}
	c->def.next_in = (Bytef *)(uintptr_t)in;
	c->def.avail_in = (uInt)len;
	c->def.next_out = out;
	c->def.avail_out = (uInt)*outlen;
	rc = deflate(&c->def, Z_FINISH);
	if (rc != Z_STREAM_END)
		return -ENOSPC;
	*outlen -= c->def.avail_out;
	return 0;
}

static int zc_decompress(void *ctx, const void *in, size_t len, void *out, size_t *outlen)
{
	struct zc_ctx *c = ctx;
	int rc;

	if (len > UINT32_MAX)
		return -EBADMSG;
	if (!c->have_inflate) {
		if (inflateInit(&c->inf) != Z_OK)
			return -ENOMEM;
		c->have_inflate = true;
	} else if (inflateReset(&c->inf) != Z_OK) {
		return -EINVAL;
	}
	c->inf.next_in = (Bytef *)(uintptr_t)in;
	c->inf.avail_in = (uInt)len;
	c->inf.next_out = out;
	c->inf.avail_out = (uInt)(*outlen > UINT32_MAX ? UINT32_MAX : *outlen);
	rc = inflate(&c->inf, Z_FINISH);
	if (rc == Z_STREAM_END) {
		*outlen = c->inf.total_out;
		return c->inf.avail_in ? -EBADMSG : 0;
	}
	if (rc == Z_MEM_ERROR)
		return -ENOMEM;
	/* Out of room before the end: the stream wants more than allowed. */
	if (rc == Z_BUF_ERROR && c->inf.avail_out == 0)
		return -EMSGSIZE;
	return -EBADMSG;
}

static const struct pp_codec zc_codec = {
	.struct_size = sizeof(struct pp_codec),
	.name = "zlib",
	.wire_id = PP_CODEC_ZLIB,
	.ctx_new = zc_ctx_new,
	.ctx_free = zc_ctx_free,
	.bound = zc_bound,
	.compress = zc_compress,
	.decompress = zc_decompress,
};


static const struct pp_codec *const zc_codecs[] = { &zc_codec, NULL };

/* ------------------------------------------------------------------ */
/* The node: configuration                                              */

enum zn_mode { ZN_COMPRESS, ZN_DECOMPRESS };

struct zn_config {
	int mode; /* enum zn_mode */
	char *codec;
	int64_t level;
	int64_t batch_packets;
	uint64_t batch_bytes;
	uint64_t batch_delay; /* ns */
	uint64_t max_frame;
};

static const char *const zn_modes[] = { "compress", "decompress", NULL };

static const struct pp_option zn_options[] = {
	{ .name = "mode", .type = PP_OPT_ENUM, .default_value = "compress", .choices = zn_modes,
	  .offset = offsetof(struct zn_config, mode),
	  .help = "compress: packets into compressed native frames; decompress: frames back into packets" },
	{ .name = "codec", .type = PP_OPT_STRING, .default_value = "zlib",
	  .offset = offsetof(struct zn_config, codec),
	  .help = "compress: the codec frames are made with (zlib, or any plugin's, e.g. zstd); decompress reads every codec a plugin offers" },
	{ .name = "level", .type = PP_OPT_INT, .default_value = "-1", .min = -1, .max = 22,
	  .offset = offsetof(struct zn_config, level),
	  .help = "compress: the codec's level (zlib 0-9, zstd 1-19); -1 = the codec's default (zlib 6, zstd 3)" },
	{ .name = "batch_packets", .type = PP_OPT_INT, .default_value = "1024", .min = 1,
	  .max = 65536, .offset = offsetof(struct zn_config, batch_packets),
	  .help = "compress: most packets per frame" },
	{ .name = "batch_bytes", .type = PP_OPT_SIZE, .default_value = "1MiB", .min = 64,
	  .max = 256ll << 20, .offset = offsetof(struct zn_config, batch_bytes),
	  .help = "compress: most bytes per frame before compression (a larger packet goes alone); keep it below the receivers' max_message" },
	{ .name = "batch_delay", .type = PP_OPT_DURATION, .default_value = "100ms", .min = 0,
	  .max = 10000000000ll, .offset = offsetof(struct zn_config, batch_delay),
	  .help = "compress: a frame leaves at most this long after its first packet; 0 = with each input batch" },
	{ .name = "max_frame", .type = PP_OPT_SIZE, .default_value = "16MiB", .min = 64,
	  .max = 1ll << 30, .offset = offsetof(struct zn_config, max_frame),
	  .help = "decompress: largest frame once decompressed; larger ones are dropped (malformed)" },
	PP_OPTION_END
};

/* zlib knows levels 0 to 9 only; other codecs judge their own. */
static int zn_validate(const void *config, char *err, size_t errlen)
{
	const struct zn_config *cfg = config;

	if (cfg->codec && strcmp(cfg->codec, "zlib") == 0 && cfg->level > 9) {
		snprintf(err, errlen, "level: zlib's levels are 0 to 9 (or -1), not %lld",
			 (long long)cfg->level);
		return -EINVAL;
	}
	return 0;
}

/* A decoder per codec id, made on first use. */
struct zn_decoder {
	const struct pp_codec *codec;
	void *ctx;
	bool tried;
};

struct zn {
	struct pp_node *node;
	const struct pp_host *host;
	const struct zn_config *cfg;
	struct pp_stats *stats;
	pp_counter *frames, *bytes_before, *bytes_after;
	pp_counter *drop_nomem, *drop_codec, *drop_malformed, *drop_stopped;
	struct pp_log_limit nomem_limit, codec_limit, bad_limit;
	/* compress: the frame being gathered */
	const struct pp_codec *codec;
	void *ctx;
	struct wire_header head; /* sender; seq of the next frame */
	struct pp_packet **pending;
	uint32_t npending;
	size_t pending_len; /* bytes of their records */
	uint8_t *scratch; /* records before compression */
	size_t scratch_len;
	struct pp_timer *timer;
	/* decompress */
	struct zn_decoder dec[256];
	uint8_t *raw; /* max_frame bytes, on first use */
	/* what goes downstream, each with a reference of ours */
	struct pp_batch out;
	struct pp_packet *outp[PP_BATCH_MAX];
};

/* ------------------------------------------------------------------ */
/* Opening                                                              */

static void zn_counters(struct zn *s)
{
	const struct pp_host *h = s->host;
	bool comp = s->cfg->mode == ZN_COMPRESS;

	s->stats = h->stats(s->node);
	s->frames = h->counter(s->node, comp ? "frames_out" : "frames_in", PP_COUNTER_TOTAL);
	s->bytes_before = h->counter(s->node, "bytes_before", PP_COUNTER_TOTAL);
	s->bytes_after = h->counter(s->node, "bytes_after", PP_COUNTER_TOTAL);
	s->drop_nomem = h->drop_reason(s->node, "nomem");
	s->drop_codec = h->drop_reason(s->node, "codec");
	s->drop_malformed = comp ? NULL : h->drop_reason(s->node, "malformed");
	s->drop_stopped = comp ? h->drop_reason(s->node, "stopped") : NULL;
}

/* A sender id that differs from run to run (WIRE.md). */
static uint64_t zn_sender_id(const struct pp_host *host)
{
	uint64_t id;

	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id))
		id = host->now_real_ns() ^ ((uint64_t)getpid() << 32);
	return id;
}

static void zn_batch_due(void *arg);

/* The codec, its context, the pending batch and its timer. Frames carry no
 * sequence promise (flag clear): what happens to them after this node
 * (zmq-out's hwm, fan-out) is not ours to vouch for. */
static int zn_open_compress(struct zn *s)
{
	const struct zn_config *cfg = s->cfg;

	s->codec = s->host->codec_find(s->node, cfg->codec);
	if (!s->codec)
		return -ENOENT;
	s->ctx = s->codec->ctx_new((int)cfg->level);
	s->pending = calloc((size_t)cfg->batch_packets, sizeof(*s->pending));
	s->timer = s->host->timer_new(s->node, zn_batch_due, s);
	if (!s->ctx || !s->pending || !s->timer)
		return -ENOMEM;
	s->head = (struct wire_header){ .sender = zn_sender_id(s->host) };
	return 0;
}

static void zn_close(void *state);

static int zn_open(struct pp_node *node, const struct pp_host *host, const void *config,
		   void **state)
{
	const struct zn_config *cfg = config;
	struct zn *s;
	int rc = 0;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->node = node;
	s->host = host;
	s->cfg = cfg;
	s->out.pkts = s->outp;
	zn_counters(s);
	if (cfg->mode == ZN_COMPRESS)
		rc = zn_open_compress(s);
	if (rc < 0) {
		zn_close(s);
		return rc;
	}
	*state = s;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Output                                                               */

static void zn_emit(struct zn *s)
{
	if (!s->out.count)
		return;
	s->host->emit(s->node, &s->out);
	for (uint32_t i = 0; i < s->out.count; i++)
		s->host->packet_unref(s->out.pkts[i]);
	s->out.count = 0;
}

/* Queue p for downstream; owned: the reference is ours already. */
static void zn_out(struct zn *s, struct pp_packet *p, bool owned)
{
	if (!owned)
		s->host->packet_ref(p);
	s->out.pkts[s->out.count++] = p;
	if (s->out.count == PP_BATCH_MAX)
		zn_emit(s);
}

static void zn_drop(struct zn *s, pp_counter *reason, struct pp_log_limit *lim, uint64_t packets,
		    const char *why)
{
	pp_counter_add(reason, packets);
	s->host->log_limited(s->node, lim, PP_LOG_WARNING, "%s; dropped %llu packets", why,
			     (unsigned long long)packets);
}

/* ------------------------------------------------------------------ */
/* Compressing                                                          */

static bool zn_scratch(struct zn *s, size_t len)
{
	uint8_t *p;

	if (len <= s->scratch_len)
		return true;
	p = realloc(s->scratch, len);
	if (!p)
		return false;
	s->scratch = p;
	s->scratch_len = len;
	return true;
}

/* The pending packets as one frame packet, or NULL (their drop counted). */
static struct pp_packet *zn_frame(struct zn *s)
{
	uint32_t n = s->npending;
	size_t len = wire_native_compress_bound(s->codec, s->pending_len);
	struct pp_packet *f = NULL;
	uint64_t bytes = 0;
	int rc;

	if (len <= UINT32_MAX && zn_scratch(s, s->pending_len))
		f = s->host->packet_alloc(s->node, (uint32_t)len);
	if (!f) {
		zn_drop(s, s->drop_nomem, &s->nomem_limit, n, "no memory for a frame");
		return NULL;
	}
	rc = wire_native_compress(f->data, &len, &s->head, s->pending, n, s->scratch,
				  s->scratch_len, s->codec, s->ctx);
	if (rc < 0) {
		s->host->packet_unref(f);
		zn_drop(s, s->drop_codec, &s->codec_limit, n, "the codec failed");
		return NULL;
	}
	for (uint32_t i = 0; i < n; i++)
		bytes += s->pending[i]->caplen;
	f->caplen = f->origlen = (uint32_t)len;
	f->ts_ns = s->pending[0]->ts_ns;
	f->linktype = PP_LINKTYPE_FRAME;
	f->count = n;
	f->codec = s->codec->wire_id;
	s->head.seq += n;
	pp_counter_add(s->frames, 1);
	pp_counter_add(s->bytes_before, bytes);
	pp_counter_add(s->bytes_after, len);
	return f;
}

static void zn_flush(struct zn *s)
{
	struct pp_packet *f;

	if (!s->npending)
		return;
	s->host->timer_disarm(s->timer);
	f = zn_frame(s);
	for (uint32_t i = 0; i < s->npending; i++)
		s->host->packet_unref(s->pending[i]);
	s->npending = 0;
	s->pending_len = 0;
	pp_counter_set(&s->stats->packets_held, 0);
	if (f)
		zn_out(s, f, true);
}

static void zn_batch_due(void *arg)
{
	struct zn *s = arg;

	zn_flush(s);
	zn_emit(s);
}

static void zn_add(struct zn *s, struct pp_packet *p)
{
	const struct zn_config *cfg = s->cfg;
	size_t rec = wire_native_record_len(p);

	if (s->npending && PP_WIRE_HEADER_LEN + s->pending_len + rec > cfg->batch_bytes)
		zn_flush(s);
	s->host->packet_ref(p);
	s->pending[s->npending++] = p;
	s->pending_len += rec;
	pp_counter_set(&s->stats->packets_held, s->npending);
	if (s->npending == 1 && cfg->batch_delay)
		s->host->timer_arm(s->timer, cfg->batch_delay, 0);
	if (s->npending >= (uint64_t)cfg->batch_packets ||
	    PP_WIRE_HEADER_LEN + s->pending_len >= cfg->batch_bytes)
		zn_flush(s);
}

static void zn_compress(struct zn *s, struct pp_batch *batch)
{
	for (uint32_t i = 0; i < batch->count; i++) {
		struct pp_packet *p = batch->pkts[i];

		if (p->linktype == PP_LINKTYPE_FRAME) {
			zn_flush(s); /* keep the order packets came in */
			zn_out(s, p, false);
		} else {
			zn_add(s, p);
		}
	}
	if (!s->cfg->batch_delay)
		zn_flush(s);
}

/* ------------------------------------------------------------------ */
/* Decompressing                                                        */

static const struct pp_codec *zn_decoder(struct zn *s, uint8_t id, void **ctx)
{
	struct zn_decoder *d = &s->dec[id];

	if (!d->tried) {
		d->tried = true;
		d->codec = s->host->codec_by_id(s->node, id);
		if (d->codec)
			d->ctx = d->codec->ctx_new(-1);
		if (!d->ctx)
			d->codec = NULL;
	}
	*ctx = d->ctx;
	return d->codec;
}

/* The records of a frame whose header is sound, checked whole. */
static int zn_records(struct zn *s, const struct wire_header *h, const uint8_t **records)
{
	const struct pp_codec *codec = NULL;
	void *ctx = NULL;
	int rc;

	if (h->codec != PP_CODEC_NONE) {
		codec = zn_decoder(s, h->codec, &ctx);
		if (!codec)
			return -ENOPROTOOPT;
		if (!s->raw)
			s->raw = malloc(s->cfg->max_frame);
		if (!s->raw)
			return -ENOMEM;
	}
	rc = wire_native_records(h, codec, ctx, s->raw, s->cfg->max_frame, records);
	if (rc == 0)
		rc = wire_native_check(*records, h->raw_len, h->count);
	return rc;
}

static void zn_packet(struct zn *s, const struct wire_record *r)
{
	struct pp_packet *p = s->host->packet_alloc(s->node, r->caplen);

	if (!p) {
		zn_drop(s, s->drop_nomem, &s->nomem_limit, 1, "no packet buffer");
		return;
	}
	memcpy(p->data, r->data, r->caplen);
	p->caplen = r->caplen;
	p->origlen = r->origlen;
	p->ts_ns = r->ts_ns;
	p->linktype = r->linktype;
	p->count = 1;
	p->meta = r->meta;
	pp_counter_add(s->bytes_after, r->caplen);
	zn_out(s, p, true);
}

/* A frame must hold exactly the packets the graph counted for it. */
static void zn_unframe(struct zn *s, struct pp_packet *f)
{
	const uint8_t *records = NULL;
	struct wire_header h;
	struct wire_cursor c;
	struct wire_record r;
	int rc;

	rc = wire_native_header(f->data, f->caplen, &h);
	if (rc == 0 && h.count != f->count)
		rc = -EBADMSG;
	if (rc == 0)
		rc = zn_records(s, &h, &records);
	if (rc == -ENOPROTOOPT || rc == -ENOMEM) {
		zn_drop(s, rc == -ENOMEM ? s->drop_nomem : s->drop_codec, &s->codec_limit, f->count,
			rc == -ENOMEM ? "no memory to decompress a frame"
				      : "a frame of a codec no plugin offers");
		return;
	}
	if (rc < 0) {
		zn_drop(s, s->drop_malformed, &s->bad_limit, f->count, "a malformed frame");
		return;
	}
	pp_counter_add(s->frames, 1);
	pp_counter_add(s->bytes_before, f->caplen);
	wire_cursor_init(&c, records, h.raw_len, h.count);
	while (wire_native_next(&c, &r) == 1)
		zn_packet(s, &r);
}

static void zn_decompress(struct zn *s, struct pp_batch *batch)
{
	for (uint32_t i = 0; i < batch->count; i++) {
		struct pp_packet *p = batch->pkts[i];

		if (p->linktype == PP_LINKTYPE_FRAME)
			zn_unframe(s, p);
		else
			zn_out(s, p, false);
	}
}

static int zn_process(void *state, struct pp_batch *batch)
{
	struct zn *s = state;

	if (s->cfg->mode == ZN_COMPRESS)
		zn_compress(s, batch);
	else
		zn_decompress(s, batch);
	zn_emit(s);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Stopping                                                             */

static int zn_stop(void *state)
{
	struct zn *s = state;

	if (s->cfg->mode == ZN_COMPRESS)
		zn_flush(s);
	zn_emit(s);
	return 0;
}

/* Without stop() (a failed start) the pending batch was never sent. */
static void zn_close(void *state)
{
	struct zn *s = state;

	if (s->npending)
		pp_counter_add(s->drop_stopped, s->npending);
	for (uint32_t i = 0; i < s->npending; i++)
		s->host->packet_unref(s->pending[i]);
	for (uint32_t i = 0; i < s->out.count; i++)
		s->host->packet_unref(s->out.pkts[i]);
	if (s->stats)
		pp_counter_set(&s->stats->packets_held, 0);
	if (s->timer)
		s->host->timer_free(s->timer);
	if (s->ctx)
		s->codec->ctx_free(s->ctx);
	for (int i = 0; i < 256; i++)
		if (s->dec[i].ctx)
			s->dec[i].codec->ctx_free(s->dec[i].ctx);
	free(s->pending);
	free(s->scratch);
	free(s->raw);
	free(s);
}

PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "zlib",
	.summary = "zlib codec; as a node, packets into compressed native frames and back",
	.roles = PP_ROLE_FILTER | PP_ROLE_CODEC,
	.options = zn_options,
	.config_size = sizeof(struct zn_config),
	.validate = zn_validate,
	.open = zn_open,
	.process = zn_process,
	.stop = zn_stop,
	.close = zn_close,
	.codecs = zc_codecs,
};
