/* zlib: the "zlib" codec (wire id PP_CODEC_ZLIB) for other plugins: zmq-in
 * decodes compressed native frames and legacy-rc messages with it. Streams
 * are zlib-wrapped deflate (RFC 1950), what the original's compressobj()
 * wrote. Not a node: it only offers the codec.
 *
 * Decompression writes at most *outlen bytes and stops there: a stream that
 * would inflate further is refused with -EMSGSIZE (a bomb), whatever its
 * ratio; bytes after the end of the stream are refused as -EBADMSG. */
#include <errno.h>
#include <stdlib.h>

#include <zlib.h>

#include <pktpipe/plugin.h>
#include <pktpipe/wire.h>

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

PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "zlib",
	.summary = "zlib codec for compressed frames and legacy-rc messages",
	.roles = PP_ROLE_CODEC,
	.codecs = zc_codecs,
};
