/* libFuzzer targets for the wire decoders (plugins/lib/wire.c): one binary
 * per decoder, chosen at build time. Built outside the Makefile with clang:
 *
 *   for t in native legacy legacy_rc; do
 *     clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *       -Iinclude -Iplugins/lib -DFUZZ_$(echo $t | tr a-z A-Z) \
 *       tests/fuzz/fuzz_wire.c plugins/lib/wire.c plugins/lib/framer.c plugins/lib/outq.c plugins/zlib/zlib.c -lz \
 *       -o build/fuzz/fuzz_$t
 *   done
 *   build/fuzz/fuzz_native -max_total_time=20 CORPUS_DIR tests/fuzz/seeds/native
 *
 * (tests/e2e/fuzz.sh does this.) Seeds: tests/fuzz/seeds/{native,legacy,
 * legacy-rc}, written by tests/fuzz/mkseeds_wire.c from real encoder output.
 *
 * Besides "no crash, no sanitizer report", each target checks a property:
 * what decodes re-encodes into something that decodes to the same records.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pktpipe/plugin.h>

#include "wire.h"
#include "../unit/meta_same.h"

#define FUZZ_SCRATCH (1u << 20) /* the receiver's max_message, scaled down */
#define FUZZ_MAX_RECORDS 4096
#define FUZZ_UNUSED __attribute__((unused)) /* not every target needs it */

/* The zlib plugin, linked in: its descriptor carries the codec. */
extern const struct pp_plugin pp_plugin;

static FUZZ_UNUSED uint8_t scratch[FUZZ_SCRATCH];
static FUZZ_UNUSED uint8_t again[FUZZ_SCRATCH + 64];

static FUZZ_UNUSED const struct pp_codec *zlib(void **ctx)
{
	static void *c;
	const struct pp_codec *z = pp_plugin.codecs[0];

	if (!c)
		c = z->ctx_new(6);
	*ctx = c;
	return z;
}

static FUZZ_UNUSED bool same_record(const struct wire_record *a, const struct wire_record *b)
{
	return a->ts_ns == b->ts_ns && a->caplen == b->caplen && a->origlen == b->origlen &&
	       a->linktype == b->linktype && memcmp(a->data, b->data, a->caplen) == 0 &&
	       meta_same(&a->meta, &b->meta);
}

static FUZZ_UNUSED void packet_of(struct pp_packet *p, const struct wire_record *r)
{
	memset(p, 0, sizeof(*p));
	p->data = (uint8_t *)(uintptr_t)r->data;
	p->caplen = r->caplen;
	p->origlen = r->origlen;
	p->ts_ns = r->ts_ns;
	p->linktype = r->linktype;
	p->count = 1;
	p->meta = r->meta;
}

#if defined(FUZZ_NATIVE)

static struct pp_packet pkts[FUZZ_MAX_RECORDS];
static struct pp_packet *ptrs[FUZZ_MAX_RECORDS];
static struct wire_record recs[FUZZ_MAX_RECORDS];

/* Decoded records re-encoded: the new frame decodes to the same. */
static void reencode(const struct wire_header *h, uint32_t n)
{
	struct wire_header h2 = { .sender = h->sender, .seq = h->seq, .flags = h->flags };
	struct wire_cursor c;
	struct wire_record r;
	size_t len;
	uint32_t i = 0;

	for (uint32_t k = 0; k < n; k++) {
		packet_of(&pkts[k], &recs[k]);
		ptrs[k] = &pkts[k];
	}
	len = wire_native_encode(again, sizeof(again), &h2, ptrs, n);
	if (!len || wire_native_header(again, len, &h2) != 0 ||
	    wire_native_check(h2.payload, h2.raw_len, h2.count) != 0)
		abort();
	wire_cursor_init(&c, h2.payload, h2.raw_len, h2.count);
	while (wire_native_next(&c, &r) == 1)
		if (!same_record(&r, &recs[i++]))
			abort();
	if (i != n)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct wire_senders senders;
	struct wire_header h;
	struct wire_cursor c;
	const uint8_t *records;
	uint64_t lost;
	uint32_t n = 0;
	void *ctx;
	const struct pp_codec *z = zlib(&ctx);

	if (wire_native_header(data, size, &h) != 0)
		return 0;
	wire_seq_track(&senders, h.sender, h.seq, h.count, &lost);
	if (wire_native_records(&h, h.codec == z->wire_id ? z : NULL, ctx, scratch,
				sizeof(scratch), &records) != 0 ||
	    wire_native_check(records, h.raw_len, h.count) != 0)
		return 0;
	wire_cursor_init(&c, records, h.raw_len, h.count);
	while (n < FUZZ_MAX_RECORDS && wire_native_next(&c, &recs[n]) == 1)
		n++;
	if (n < FUZZ_MAX_RECORDS)
		reencode(&h, n);
	return 0;
}

#elif defined(FUZZ_LEGACY)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_record r, r2;
	struct pp_packet p;
	size_t len;

	if (wire_legacy_decode(data, size, &r) != 0)
		return 0;
	/* Exactly the padded length; the same again after a round trip,
	 * byte for byte but for the padding's value. */
	if (size != wire_legacy_len(r.caplen) || size > sizeof(again))
		abort();
	packet_of(&p, &r);
	len = wire_legacy_put(again, &p);
	if (len != size || memcmp(again, data, 8) != 0 || memcmp(again + 12, data + 12, 4) != 0 ||
	    wire_legacy_decode(again, len, &r2) != 0 || !same_record(&r, &r2))
		abort();
	return 0;
}

#elif defined(FUZZ_LEGACY_RC)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_rc_cursor c;
	struct wire_record r;
	uint32_t count, seen = 0;
	void *ctx;
	const struct pp_codec *z = zlib(&ctx);

	if (wire_rc_open(&c, data, size, z, ctx, scratch, sizeof(scratch)) != 0 ||
	    wire_rc_check(&c, &count) != 0)
		return 0;
	while (wire_rc_next(&c, &r) == 1) {
		if (r.linktype != PP_LEGACY_LINKTYPE || (r.origlen == 0 && r.caplen))
			abort();
		seen++;
	}
	if (seen != count)
		abort();
	return 0;
}

#else
#error "define FUZZ_NATIVE, FUZZ_LEGACY or FUZZ_LEGACY_RC"
#endif
