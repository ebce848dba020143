/* Writes the fuzzers' seed corpus (tests/fuzz/seeds/) from the real
 * encoders: native frames plain and zlib-compressed, with and without
 * metadata, legacy and legacy-rc messages plain and zlib. Rerun it when the
 * formats change:
 *
 *   clang -Iinclude -Iplugins/lib tests/fuzz/mkseeds_wire.c plugins/lib/wire.c \
 *     plugins/lib/framer.c plugins/lib/outq.c plugins/zlib/zlib.c -lz -o build/fuzz/mkseeds_wire && build/fuzz/mkseeds_wire tests/fuzz/seeds
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pktpipe/plugin.h>

#include "wire.h"

extern const struct pp_plugin pp_plugin;

static uint8_t data[8][300];
static struct pp_packet pkts[8];
static uint8_t out[1 << 16], raw[1 << 16];

static void save(const char *dir, const char *kind, const char *name, const void *buf,
		 size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, kind, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static void make_packets(void)
{
	for (int i = 0; i < 8; i++) {
		struct pp_packet *p = &pkts[i];

		p->data = data[i];
		p->caplen = (uint32_t)(20 + i * 37);
		p->origlen = p->caplen + (uint32_t)(i % 2) * 100;
		p->ts_ns = 1700000000000000000ull + (uint64_t)i * 1234567;
		p->linktype = i < 6 ? 101 : 1;
		p->count = 1;
		for (uint32_t k = 0; k < p->caplen; k++)
			data[i][k] = (uint8_t)(k == 0 ? 0x45 : k * 13 + i);
		if (i % 3 == 0) {
			p->meta.flags = PP_META_GROUP | PP_META_PREFIX | PP_META_MARK |
					PP_META_IFINDEX_IN | PP_META_UID | PP_META_HW_PROTOCOL;
			p->meta.group = (uint16_t)i;
			p->meta.mark = 0x1000u + (uint32_t)i;
			p->meta.ifindex_in = 2;
			p->meta.uid = 1000;
			p->meta.hw_protocol = 0x0800;
			snprintf(p->meta.prefix, sizeof(p->meta.prefix), "seed-%d ", i);
		}
	}
}

static void native_seeds(const char *dir, const struct pp_codec *z, void *ctx)
{
	struct pp_packet *ptrs[8];
	struct wire_header h = { .sender = 0x1122334455667788ull, .flags = PP_WIRE_FLAG_SEQ };
	size_t len;

	for (int i = 0; i < 8; i++)
		ptrs[i] = &pkts[i];
	save(dir, "native", "empty", out, wire_native_encode(out, sizeof(out), &h, ptrs, 0));
	save(dir, "native", "one", out, wire_native_encode(out, sizeof(out), &h, ptrs + 1, 1));
	h.seq = 1;
	save(dir, "native", "meta", out, wire_native_encode(out, sizeof(out), &h, ptrs, 1));
	h.seq = 2;
	len = wire_native_encode(out, sizeof(out), &h, ptrs, 8);
	save(dir, "native", "eight", out, len);
	memcpy(raw, out + PP_WIRE_HEADER_LEN, len - PP_WIRE_HEADER_LEN);
	h.seq = 10;
	len = sizeof(out);
	if (wire_native_seal(out, &len, &h, raw, h.raw_len, z, ctx) != 0)
		exit(1);
	save(dir, "native", "eight-zlib", out, len);
}

static void legacy_seeds(const char *dir, const struct pp_codec *z, void *ctx)
{
	size_t at = 0, len;

	save(dir, "legacy", "short", out, wire_legacy_put(out, &pkts[0]));
	save(dir, "legacy", "padded", out, wire_legacy_put(out, &pkts[1]));
	save(dir, "legacy-rc", "plain", out, wire_legacy_rc_put(out, &pkts[2]));
	for (int i = 0; i < 6; i++) {
		len = wire_legacy_put(raw + at + 4, &pkts[i]);
		raw[at] = (uint8_t)(len >> 24);
		raw[at + 1] = (uint8_t)(len >> 16);
		raw[at + 2] = (uint8_t)(len >> 8);
		raw[at + 3] = (uint8_t)len;
		at += 4 + len;
	}
	out[0] = PP_LEGACY_RC_ZLIB;
	len = sizeof(out) - 1;
	if (z->compress(ctx, raw, at, out + 1, &len) != 0)
		exit(1);
	save(dir, "legacy-rc", "zlib", out, 1 + len);
}

int main(int argc, char **argv)
{
	const struct pp_codec *z = pp_plugin.codecs[0];
	void *ctx = z->ctx_new(9);

	if (argc != 2) {
		fprintf(stderr, "usage: mkseeds_wire DIR (makes DIR/native, legacy, legacy-rc)\n");
		return 2;
	}
	make_packets();
	native_seeds(argv[1], z, ctx);
	legacy_seeds(argv[1], z, ctx);
	z->ctx_free(ctx);
	return 0;
}
