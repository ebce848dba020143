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
 * passed on untouched, after the pending batch, so order is kept. The
 * gathering is plugins/lib/framer.c's, which ratelimit shares.
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

#include <zlib.h>

#include <pktpipe/plugin.h>
#include <pktpipe/wire.h>

#include "framer.h"

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
	struct framer_config frame; /* codec, level, batch_* */
	uint64_t max_frame;
};

static const char *const zn_modes[] = { "compress", "decompress", NULL };

static const struct pp_option zn_options[] = {
	{ .name = "mode", .type = PP_OPT_ENUM, .default_value = "compress", .choices = zn_modes,
	  .offset = offsetof(struct zn_config, mode),
	  .help = "compress: packets into compressed native frames; decompress: frames back into packets" },
	{ .name = "codec", .type = PP_OPT_STRING, .default_value = "zlib",
	  .offset = offsetof(struct zn_config, frame.codec),
	  .help = "compress: the codec frames are made with (zlib, or any plugin's, e.g. zstd); decompress reads every codec a plugin offers" },
	{ .name = "level", .type = PP_OPT_INT, .default_value = "-1", .min = -1, .max = 22,
	  .offset = offsetof(struct zn_config, frame.level),
	  .help = "compress: the codec's level (zlib 0-9, zstd 1-19); -1 = the codec's default (zlib 6, zstd 3)" },
	{ .name = "batch_packets", .type = PP_OPT_INT, .default_value = "1024", .min = 1,
	  .max = 65536, .offset = offsetof(struct zn_config, frame.batch_packets),
	  .help = "compress: most packets per frame" },
	{ .name = "batch_bytes", .type = PP_OPT_SIZE, .default_value = "1MiB", .min = 64,
	  .max = 256ll << 20, .offset = offsetof(struct zn_config, frame.batch_bytes),
	  .help = "compress: most bytes per frame before compression (a larger packet goes alone); keep it below the receivers' max_message" },
	{ .name = "batch_delay", .type = PP_OPT_DURATION, .default_value = "100ms", .min = 0,
	  .max = 10000000000ll, .offset = offsetof(struct zn_config, frame.delay),
	  .help = "compress: a frame leaves at most this long after its first packet; 0 = with each input batch" },
	{ .name = "max_frame", .type = PP_OPT_SIZE, .default_value = "16MiB", .min = 64,
	  .max = 1ll << 30, .offset = offsetof(struct zn_config, max_frame),
	  .help = "decompress: largest frame once decompressed; larger ones are dropped (malformed)" },
	PP_OPTION_END
};

static int zn_validate(const void *config, char *err, size_t errlen)
{
	const struct zn_config *cfg = config;

	return framer_validate(&cfg->frame, err, errlen);
}

struct zn {
	struct pp_node *node;
	const struct pp_host *host;
	const struct zn_config *cfg;
	/* Compressing, the framer writes them; decompressing, zn_unframe()
	 * (frames is frames_out or frames_in by mode). */
	struct framer_counters fc;
	pp_counter *drop_malformed;
	struct pp_log_limit nomem_limit, codec_limit, bad_limit;
	struct framer fr; /* compress: the frame being gathered */
	struct frame_reader rd; /* decompress */
	struct outq out;
};

/* ------------------------------------------------------------------ */
/* Opening                                                              */

static void zn_counters(struct zn *s)
{
	const struct pp_host *h = s->host;
	bool comp = s->cfg->mode == ZN_COMPRESS;

	s->fc.frames = h->counter(s->node, comp ? "frames_out" : "frames_in", PP_COUNTER_TOTAL);
	s->fc.bytes_before = h->counter(s->node, "bytes_before", PP_COUNTER_TOTAL);
	s->fc.bytes_after = h->counter(s->node, "bytes_after", PP_COUNTER_TOTAL);
	s->fc.drop_nomem = h->drop_reason(s->node, "nomem");
	s->fc.drop_codec = h->drop_reason(s->node, "codec");
	s->drop_malformed = comp ? NULL : h->drop_reason(s->node, "malformed");
	s->fc.drop_stopped = comp ? h->drop_reason(s->node, "stopped") : NULL;
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
	outq_init(&s->out, node, host);
	zn_counters(s);
	/* Frames carry no sequence promise (framer.h): what happens to them
	 * after this node (zmq-out's hwm, fan-out) is not ours to vouch for. */
	if (cfg->mode == ZN_COMPRESS)
		rc = framer_open(&s->fr, &s->out, &cfg->frame, &s->fc);
	else
		frame_reader_init(&s->rd, node, host, cfg->max_frame);
	if (rc < 0) {
		zn_close(s);
		return rc;
	}
	*state = s;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Compressing                                                          */

static void zn_compress(struct zn *s, struct pp_batch *batch)
{
	for (uint32_t i = 0; i < batch->count; i++) {
		struct pp_packet *p = batch->pkts[i];

		if (p->linktype == PP_LINKTYPE_FRAME) {
			framer_flush(&s->fr); /* keep the order packets came in */
			outq_put(&s->out, p, false);
		} else {
			framer_add(&s->fr, p);
		}
	}
	if (!s->cfg->frame.delay)
		framer_flush(&s->fr);
}

/* ------------------------------------------------------------------ */
/* Decompressing                                                        */

static void zn_packet(struct zn *s, const struct wire_record *r)
{
	struct pp_packet *p = frame_reader_packet(&s->rd, r);

	if (!p) {
		outq_drop(&s->out, s->fc.drop_nomem, &s->nomem_limit, 1, "no packet buffer");
		return;
	}
	pp_counter_add(s->fc.bytes_after, r->caplen);
	outq_put(&s->out, p, true);
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
		rc = frame_reader_records(&s->rd, &h, &records);
	if (rc == -ENOPROTOOPT || rc == -ENOMEM) {
		bool nomem = rc == -ENOMEM;

		outq_drop(&s->out, nomem ? s->fc.drop_nomem : s->fc.drop_codec, &s->codec_limit,
			  f->count,
			  nomem ? "no memory to decompress a frame" : "a frame of a codec no plugin offers");
		return;
	}
	if (rc < 0) {
		outq_drop(&s->out, s->drop_malformed, &s->bad_limit, f->count, "a malformed frame");
		return;
	}
	pp_counter_add(s->fc.frames, 1);
	pp_counter_add(s->fc.bytes_before, f->caplen);
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
			outq_put(&s->out, p, false);
	}
}

static int zn_process(void *state, struct pp_batch *batch)
{
	struct zn *s = state;

	if (s->cfg->mode == ZN_COMPRESS)
		zn_compress(s, batch);
	else
		zn_decompress(s, batch);
	outq_emit(&s->out);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Stopping                                                             */

static int zn_stop(void *state)
{
	struct zn *s = state;

	framer_flush(&s->fr);
	outq_emit(&s->out);
	return 0;
}

/* Without stop() (a failed start) the pending batch was never sent. */
static void zn_close(void *state)
{
	struct zn *s = state;

	framer_release(&s->fr);
	frame_reader_release(&s->rd);
	outq_release(&s->out);
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
