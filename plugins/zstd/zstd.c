/* zstd: the "zstd" codec (wire id PP_CODEC_ZSTD) for other plugins: the
 * zlib node (codec = zstd) and ratelimit compress with it, zmq-in and the
 * zlib node decode native frames made with it. Not a node.
 *
 * A stream is one zstd frame (RFC 8878) with its content size, nothing
 * after it. Decompression is one-shot into the room it is given: a frame
 * that would need more is refused with -EMSGSIZE (a bomb), whatever it
 * claims; anything that is not exactly one valid frame is -EBADMSG. The
 * one-shot decoder writes straight into that room, so a hostile frame
 * cannot make it allocate a window of its choosing. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include <zstd.h>
#include <zstd_errors.h>

#include <pktpipe/plugin.h>
#include <pktpipe/wire.h>

#define ZS_LEVEL_DEFAULT 3

static uint32_t zs_le32(const void *p)
{
	const uint8_t *b = p;

	return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* One direction's context, made on first use and reused. */
struct zs_ctx {
	int level;
	ZSTD_CCtx *c;
	ZSTD_DCtx *d;
};

static void *zs_ctx_new(int level)
{
	struct zs_ctx *c = calloc(1, sizeof(*c));

	if (c)
		c->level = level >= 1 && level <= ZSTD_maxCLevel() ? level : ZS_LEVEL_DEFAULT;
	return c;
}

static void zs_ctx_free(void *ctx)
{
	struct zs_ctx *c = ctx;

	if (!c)
		return;
	ZSTD_freeCCtx(c->c);
	ZSTD_freeDCtx(c->d);
	free(c);
}

static size_t zs_bound(size_t len)
{
	return ZSTD_compressBound(len);
}

static int zs_compress(void *ctx, const void *in, size_t len, void *out, size_t *outlen)
{
	struct zs_ctx *c = ctx;
	size_t n;

	if (!c->c && !(c->c = ZSTD_createCCtx()))
		return -ENOMEM;
	n = ZSTD_compressCCtx(c->c, out, *outlen, in, len, c->level);
	if (ZSTD_isError(n))
		return ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall ? -ENOSPC : -EINVAL;
	*outlen = n;
	return 0;
}

static int zs_decompress(void *ctx, const void *in, size_t len, void *out, size_t *outlen)
{
	struct zs_ctx *c = ctx;
	size_t n;

	/* A current zstd frame only, not the legacy formats libzstd may still
	 * read, and exactly one: ZSTD_decompressDCtx() would go on into a
	 * second. */
	if (len < 4 || zs_le32(in) != ZSTD_MAGICNUMBER)
		return -EBADMSG;
	n = ZSTD_findFrameCompressedSize(in, len);
	if (ZSTD_isError(n) || n != len)
		return -EBADMSG;
	if (!c->d && !(c->d = ZSTD_createDCtx()))
		return -ENOMEM;
	n = ZSTD_decompressDCtx(c->d, out, *outlen, in, len);
	if (ZSTD_isError(n))
		return ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall ? -EMSGSIZE : -EBADMSG;
	*outlen = n;
	return 0;
}

static const struct pp_codec zs_codec = {
	.struct_size = sizeof(struct pp_codec),
	.name = "zstd",
	.wire_id = PP_CODEC_ZSTD,
	.ctx_new = zs_ctx_new,
	.ctx_free = zs_ctx_free,
	.bound = zs_bound,
	.compress = zs_compress,
	.decompress = zs_decompress,
};

static const struct pp_codec *const zs_codecs[] = { &zs_codec, NULL };

PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "zstd",
	.summary = "zstd codec for compressed frames (codec = zstd in the zlib node and ratelimit)",
	.roles = PP_ROLE_CODEC,
	.codecs = zs_codecs,
};
