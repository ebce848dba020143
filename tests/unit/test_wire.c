/* The wire codecs (plugins/lib/wire.c): native round trips, every
 * malformed case the decoders must refuse, the legacy formats byte for
 * byte, sequence tracking. The unit test rule links only the core, so the
 * codec's source is included here; the zlib tests load the zlib plugin
 * built beside this binary (BUILD/plugins/zlib.so) and say so when it is
 * missing. */
#include "../../plugins/lib/wire.c"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "meta_same.h"

#define BUF_MAX (1u << 20)

static uint8_t buf[BUF_MAX], scratch[BUF_MAX];

/* ------------------------------------------------------------------ */
/* Helpers                                                              */

struct tpkt {
	struct pp_packet p;
	uint8_t data[2048];
};

static void tpkt_init(struct tpkt *t, uint32_t caplen, uint32_t seed)
{
	memset(t, 0, sizeof(*t));
	t->p.data = t->data;
	t->p.capacity = sizeof(t->data);
	t->p.caplen = caplen;
	t->p.origlen = caplen + seed % 3;
	t->p.ts_ns = 1700000000123456789ull + seed * 1001ull;
	t->p.linktype = seed % 2 ? 1 : 101;
	t->p.count = 1;
	for (uint32_t i = 0; i < caplen; i++)
		t->data[i] = (uint8_t)(i * 7 + seed);
}

static void tpkt_meta(struct tpkt *t)
{
	struct pp_meta *m = &t->p.meta;

	m->flags = PP_META_GROUP | PP_META_PREFIX | PP_META_IFINDEX_IN | PP_META_IFINDEX_OUT |
		   PP_META_MARK | PP_META_UID | PP_META_GID | PP_META_HW_PROTOCOL | PP_META_SEQ |
		   PP_META_SEQ_GLOBAL | PP_META_PHYSIN | PP_META_PHYSOUT;
	m->group = 7;
	m->hw_protocol = 0x86dd;
	m->ifindex_in = 3;
	m->ifindex_out = 0xfffffffe;
	m->physin = 11;
	m->physout = 12;
	m->mark = 0xdeadbeef;
	m->uid = 1000;
	m->gid = 100;
	m->seq = 42;
	m->seq_global = 4242;
	strcpy(m->prefix, "DROP in: ");
}

static bool record_equal(const struct wire_record *r, const struct pp_packet *p)
{
	return r->ts_ns == p->ts_ns && r->caplen == p->caplen && r->origlen == p->origlen &&
	       r->linktype == p->linktype && memcmp(r->data, p->data, p->caplen) == 0 &&
	       meta_same(&r->meta, &p->meta);
}

/* A frame of n test packets into buf; its length. */
static size_t make_frame(struct tpkt *t, uint32_t n, uint64_t seq)
{
	struct pp_packet *pkts[16];
	struct wire_header h = { .sender = 0x0102030405060708ull, .seq = seq,
				 .flags = PP_WIRE_FLAG_SEQ };

	for (uint32_t i = 0; i < n; i++) {
		tpkt_init(&t[i], 10 + i * 37, i);
		if (i % 2)
			tpkt_meta(&t[i]);
		pkts[i] = &t[i].p;
	}
	return wire_native_encode(buf, sizeof(buf), &h, pkts, n);
}

/* The whole decode a receiver does: header, records, check. */
static int decode_native(const uint8_t *msg, size_t len, const struct pp_codec *codec,
			 void *ctx, struct wire_header *h)
{
	const uint8_t *records;
	int rc = wire_native_header(msg, len, h);

	if (rc == 0)
		rc = wire_native_records(h, codec, ctx, scratch, sizeof(scratch), &records);
	if (rc == 0)
		rc = wire_native_check(records, h->raw_len, h->count);
	return rc;
}

static void be32(uint8_t *p, uint32_t v)
{
	put32(p, v);
}

/* ------------------------------------------------------------------ */
/* A stand-in codec: "compresses" by copying, so tests control its output */

static int copy_compress(void *ctx, const void *in, size_t len, void *out, size_t *outlen)
{
	(void)ctx;
	if (len > *outlen)
		return -ENOSPC;
	memcpy(out, in, len);
	*outlen = len;
	return 0;
}

static int copy_decompress(void *ctx, const void *in, size_t len, void *out, size_t *outlen)
{
	(void)ctx;
	if (len > *outlen)
		return -EMSGSIZE;
	memcpy(out, in, len);
	*outlen = len;
	return 0;
}

static const struct pp_codec copy_codec = {
	.struct_size = sizeof(struct pp_codec),
	.name = "zlib",
	.wire_id = PP_CODEC_ZLIB,
	.compress = copy_compress,
	.decompress = copy_decompress,
};

/* The real zlib codec from the plugin beside this binary, or NULL. */
static const struct pp_codec *zlib_codec(void)
{
	static const struct pp_codec *codec;
	static bool tried;
	char exe[PATH_MAX], path[PATH_MAX + 32];
	ssize_t n;
	void *so;
	const struct pp_plugin *pl;

	if (tried)
		return codec;
	tried = true;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(path, sizeof(path), "%s/../plugins/zlib.so", exe);
	so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	pl = so ? dlsym(so, PP_PLUGIN_SYMBOL) : NULL;
	if (pl && pl->codecs && pl->codecs[0])
		codec = pl->codecs[0];
	else
		fprintf(stderr, "test_wire: %s not loadable, zlib cases skipped\n", path);
	return codec;
}

/* ------------------------------------------------------------------ */
/* Native: round trips and layout                                       */

TEST(native_round_trip)
{
	struct tpkt t[5];
	struct wire_header h;
	struct wire_cursor c;
	struct wire_record r;
	size_t len = make_frame(t, 5, 99);
	uint32_t i = 0;

	CHECK(len > PP_WIRE_HEADER_LEN);
	CHECK(wire_is_native(buf, len));
	CHECK_EQ_INT(decode_native(buf, len, NULL, NULL, &h), 0);
	CHECK_EQ_INT(h.version, PP_WIRE_VERSION);
	CHECK_EQ_INT(h.codec, PP_CODEC_NONE);
	CHECK_EQ_INT(h.flags, PP_WIRE_FLAG_SEQ);
	CHECK(h.sender == 0x0102030405060708ull);
	CHECK_EQ_INT(h.seq, 99);
	CHECK_EQ_INT(h.count, 5);
	CHECK_EQ_INT(h.raw_len, len - PP_WIRE_HEADER_LEN);
	wire_cursor_init(&c, h.payload, h.raw_len, h.count);
	while (wire_native_next(&c, &r) == 1) {
		CHECK(record_equal(&r, &t[i].p));
		i++;
	}
	CHECK_EQ_INT(i, 5);
	CHECK_EQ_INT(wire_native_next(&c, &r), 0);
}

TEST(native_header_layout)
{
	static const uint8_t want[] = {
		'P', 'K', 'T', 'P', 1, 0, 0x00, 0x01, /* magic, version, codec, flags */
		1, 2, 3, 4, 5, 6, 7, 8, /* sender */
		0, 0, 0, 0, 0, 0, 0, 9, /* seq */
		0, 0, 0, 1, /* count */
	};
	struct tpkt t[1];
	size_t len = make_frame(t, 1, 9);
	const uint8_t *rec = buf + PP_WIRE_HEADER_LEN;

	CHECK_EQ_INT(memcmp(buf, want, sizeof(want)), 0);
	CHECK_EQ_INT(get32(buf + 28), len - PP_WIRE_HEADER_LEN);
	/* The record: ts_ns, caplen, origlen, linktype, meta_len, data. */
	CHECK(get64(rec) == t[0].p.ts_ns);
	CHECK_EQ_INT(get32(rec + 8), 10);
	CHECK_EQ_INT(get32(rec + 12), 10);
	CHECK_EQ_INT(get32(rec + 16), 101);
	CHECK_EQ_INT(get16(rec + 20), 0);
	CHECK_EQ_INT(memcmp(rec + 22, t[0].data, 10), 0);
	CHECK_EQ_INT(len, PP_WIRE_HEADER_LEN + PP_WIRE_RECORD_LEN + 10);
}

TEST(native_meta_tlvs)
{
	struct tpkt t;
	struct pp_packet *p = &t.p;
	struct wire_header h = { 0 };
	const uint8_t *m = buf + PP_WIRE_HEADER_LEN + PP_WIRE_RECORD_LEN;

	tpkt_init(&t, 4, 0);
	t.p.meta.flags = PP_META_GROUP | PP_META_PREFIX | PP_META_MARK;
	t.p.meta.group = 0x1234;
	t.p.meta.mark = 0xa0b0c0d0;
	strcpy(t.p.meta.prefix, "ab");
	CHECK(wire_native_encode(buf, sizeof(buf), &h, &p, 1) > 0);
	CHECK_EQ_INT(get16(m - 2), 4 + 6 + 4);
	/* group, mark, then prefix: table order, fixed widths. */
	CHECK(m[0] == PP_WIRE_META_GROUP && m[1] == 2 && get16(m + 2) == 0x1234);
	CHECK(m[4] == PP_WIRE_META_MARK && m[5] == 4 && get32(m + 6) == 0xa0b0c0d0);
	CHECK(m[10] == PP_WIRE_META_PREFIX && m[11] == 2 && m[12] == 'a' && m[13] == 'b');
}

TEST(native_empty_frame_and_zero_length_packet)
{
	struct tpkt t;
	struct pp_packet *p = &t.p;
	struct wire_header h = { 0 };
	struct wire_cursor c;
	struct wire_record r;
	size_t len = wire_native_encode(buf, sizeof(buf), &h, NULL, 0);

	CHECK_EQ_INT(len, PP_WIRE_HEADER_LEN);
	CHECK_EQ_INT(decode_native(buf, len, NULL, NULL, &h), 0);
	CHECK_EQ_INT(h.count, 0);
	tpkt_init(&t, 0, 0);
	len = wire_native_encode(buf, sizeof(buf), &h, &p, 1);
	CHECK_EQ_INT(decode_native(buf, len, NULL, NULL, &h), 0);
	wire_cursor_init(&c, h.payload, h.raw_len, h.count);
	CHECK_EQ_INT(wire_native_next(&c, &r), 1);
	CHECK_EQ_INT(r.caplen, 0);
}

TEST(native_encode_refuses_small_buffer)
{
	struct tpkt t[2];
	size_t len = make_frame(t, 2, 0);
	struct pp_packet *pkts[2] = { &t[0].p, &t[1].p };
	struct wire_header h = { 0 };

	CHECK_EQ_INT(wire_native_encode(buf, len - 1, &h, pkts, 2), 0);
	CHECK_EQ_INT(wire_native_encode(buf, len, &h, pkts, 2), len);
	CHECK_EQ_INT(wire_native_encode(buf, 3, &h, NULL, 0), 0);
}

/* ------------------------------------------------------------------ */
/* Native: malformed input                                              */

TEST(native_every_truncation_is_refused)
{
	struct tpkt t[3];
	struct wire_header h;
	size_t len = make_frame(t, 3, 0);

	for (size_t n = 0; n < len; n++)
		CHECK(decode_native(buf, n, NULL, NULL, &h) < 0);
	CHECK_EQ_INT(decode_native(buf, len, NULL, NULL, &h), 0);
}

TEST(native_trailing_bytes_are_refused)
{
	struct tpkt t[2];
	struct wire_header h;
	size_t len = make_frame(t, 2, 0);

	buf[len] = 0;
	CHECK_EQ_INT(decode_native(buf, len + 1, NULL, NULL, &h), -EBADMSG);
	/* Trailing bytes inside raw_len: the count says fewer records. */
	be32(buf + 24, 1);
	CHECK_EQ_INT(decode_native(buf, len, NULL, NULL, &h), -EBADMSG);
	/* More records than there are. */
	be32(buf + 24, 3);
	CHECK_EQ_INT(decode_native(buf, len, NULL, NULL, &h), -EBADMSG);
}

TEST(native_bad_header_fields)
{
	struct tpkt t[1];
	struct wire_header h;
	size_t len = make_frame(t, 1, 0);

	CHECK_EQ_INT(decode_native(buf, 0, NULL, NULL, &h), -EBADMSG);
	buf[0] = 'Q';
	CHECK(!wire_is_native(buf, len));
	CHECK_EQ_INT(decode_native(buf, len, NULL, NULL, &h), -EBADMSG);
	buf[0] = 'P';
	buf[4] = 0;
	CHECK(!wire_is_native(buf, len));
	CHECK_EQ_INT(decode_native(buf, len, NULL, NULL, &h), -EBADMSG);
	buf[4] = 2;
	CHECK(wire_is_native(buf, len));
	CHECK_EQ_INT(decode_native(buf, len, NULL, NULL, &h), -EPROTONOSUPPORT);
	buf[4] = 1;
	be32(buf + 28, (uint32_t)(len - PP_WIRE_HEADER_LEN + 1)); /* raw_len past the end */
	CHECK_EQ_INT(decode_native(buf, len, NULL, NULL, &h), -EBADMSG);
	be32(buf + 28, 0xffffffffu);
	CHECK_EQ_INT(decode_native(buf, len, NULL, NULL, &h), -EBADMSG);
	be32(buf + 28, (uint32_t)(len - PP_WIRE_HEADER_LEN));
	be32(buf + 24, 0xffffffffu); /* a count the bytes cannot hold */
	CHECK_EQ_INT(decode_native(buf, len, NULL, NULL, &h), -EBADMSG);
}

/* Damage one record field of a one-packet frame; the decode's result. */
static int damaged(size_t at, uint32_t value, int width)
{
	struct tpkt t[1];
	struct wire_header h;
	size_t len = make_frame(t, 1, 0);
	uint8_t *rec = buf + PP_WIRE_HEADER_LEN;

	if (width == 2)
		put16(rec + at, (uint16_t)value);
	else
		put32(rec + at, value);
	return decode_native(buf, len, NULL, NULL, &h);
}

TEST(native_bad_record_fields)
{
	CHECK_EQ_INT(damaged(8, 11, 4), -EBADMSG); /* caplen past the end */
	CHECK_EQ_INT(damaged(8, 0xffffffffu, 4), -EBADMSG);
	CHECK_EQ_INT(damaged(8, 9, 4), -EBADMSG); /* a byte left over */
	CHECK_EQ_INT(damaged(16, PP_LINKTYPE_FRAME, 4), -EBADMSG);
	CHECK_EQ_INT(damaged(20, 1, 2), -EBADMSG); /* meta_len: half a TLV */
	CHECK_EQ_INT(damaged(20, 0xffff, 2), -EBADMSG); /* meta_len past the end */
	CHECK_EQ_INT(damaged(12, 0xffffffffu, 4), 0); /* any origlen is carried */
	CHECK_EQ_INT(damaged(12, 0, 4), 0);
}

/* A one-packet frame whose metadata is tlv (n bytes); the decode's result. */
static int with_meta(const uint8_t *tlv, size_t n, struct pp_meta *out)
{
	uint8_t *q = buf + PP_WIRE_HEADER_LEN;
	struct wire_header h = { .count = 1, .raw_len = (uint32_t)(PP_WIRE_RECORD_LEN + n + 2) };
	struct wire_cursor c;
	struct wire_record r;
	int rc;

	wire_native_put_header(buf, &h);
	q = put64(q, 1);
	q = put32(q, 2);
	q = put32(q, 2);
	q = put32(q, 101);
	q = put16(q, (uint16_t)n);
	memcpy(q, tlv, n);
	memcpy(q + n, "\x45\x00", 2);
	rc = decode_native(buf, PP_WIRE_HEADER_LEN + h.raw_len, NULL, NULL, &h);
	if (rc == 0 && out) {
		wire_cursor_init(&c, h.payload, h.raw_len, h.count);
		wire_native_next(&c, &r);
		*out = r.meta;
	}
	return rc;
}

TEST(native_meta_checks)
{
	struct pp_meta m;
	uint8_t prefix[2 + 128];

	CHECK_EQ_INT(with_meta((const uint8_t *)"\x01\x02\x00\x05", 4, &m), 0);
	CHECK(m.flags == PP_META_GROUP && m.group == 5);
	/* Unknown types are skipped, whatever their length. */
	CHECK_EQ_INT(with_meta((const uint8_t *)"\xc8\x03xyz\x07\x04\x00\x00\x00\x09", 11, &m), 0);
	CHECK(m.flags == PP_META_MARK && m.mark == 9);
	CHECK_EQ_INT(with_meta((const uint8_t *)"\x01\x04\x00\x00\x00\x05", 6, NULL), -EBADMSG);
	CHECK_EQ_INT(with_meta((const uint8_t *)"\x03\x02\x00\x05", 4, NULL), -EBADMSG);
	CHECK_EQ_INT(with_meta((const uint8_t *)"\x07\x04\x00", 3, NULL), -EBADMSG);
	CHECK_EQ_INT(with_meta((const uint8_t *)"\x02\x03" "a\x00" "b", 5, NULL), -EBADMSG);
	CHECK_EQ_INT(with_meta((const uint8_t *)"\x02\x00", 2, &m), 0);
	CHECK(m.flags == PP_META_PREFIX && m.prefix[0] == '\0');
	prefix[0] = PP_WIRE_META_PREFIX;
	prefix[1] = 127;
	memset(prefix + 2, 'p', 128);
	CHECK_EQ_INT(with_meta(prefix, 2 + 127, &m), 0);
	CHECK_EQ_INT(strlen(m.prefix), 127);
	prefix[1] = 128;
	CHECK_EQ_INT(with_meta(prefix, 2 + 128, NULL), -EBADMSG);
	/* A repeated prefix replaces the first whole: nothing of "abcdef"
	 * stays behind the NUL of "ab". */
	CHECK_EQ_INT(with_meta((const uint8_t *)"\x02\x06" "abcdef" "\x02\x02" "ab", 12, &m), 0);
	CHECK(strcmp(m.prefix, "ab") == 0 && m.prefix[3] == '\0' && m.prefix[5] == '\0');
}

TEST(native_every_byte_flip_is_survived)
{
	struct tpkt t[3];
	struct wire_header h;
	size_t len = make_frame(t, 3, 0);
	static uint8_t copy[BUF_MAX];

	/* ASan/UBSan watch: every outcome is fine as long as it is clean. */
	for (size_t i = 0; i < len; i++) {
		for (unsigned bit = 0; bit < 8; bit += 3) {
			memcpy(copy, buf, len);
			copy[i] ^= (uint8_t)(1u << bit);
			int rc = decode_native(copy, len, NULL, NULL, &h);
			CHECK(rc == 0 || rc == -EBADMSG || rc == -EPROTONOSUPPORT ||
			      rc == -ENOPROTOOPT);
		}
	}
}

/* ------------------------------------------------------------------ */
/* Native: codecs                                                       */

/* A frame of t's packets, "compressed" by codec into out. */
static size_t sealed(const struct pp_codec *codec, void *ctx, struct tpkt *t, uint32_t n,
		     uint8_t *out, size_t outlen)
{
	size_t len = make_frame(t, n, 0);
	struct wire_header h = { .sender = 5, .count = n };

	CHECK_EQ_INT(wire_native_seal(out, &outlen, &h, buf + PP_WIRE_HEADER_LEN,
				      len - PP_WIRE_HEADER_LEN, codec, ctx), 0);
	return outlen;
}

TEST(native_codec_paths)
{
	static uint8_t frame[BUF_MAX];
	struct tpkt t[3];
	struct wire_header h;
	const uint8_t *records;
	size_t len = sealed(&copy_codec, NULL, t, 3, frame, sizeof(frame));

	CHECK_EQ_INT(frame[5], PP_CODEC_ZLIB);
	CHECK_EQ_INT(decode_native(frame, len, &copy_codec, NULL, &h), 0);
	CHECK_EQ_INT(decode_native(frame, len, NULL, NULL, &h), -ENOPROTOOPT);
	/* The codec's output is larger or smaller than raw_len said. */
	be32(frame + 28, get32(frame + 28) - 1);
	CHECK_EQ_INT(decode_native(frame, len, &copy_codec, NULL, &h), -EBADMSG);
	be32(frame + 28, get32(frame + 28) + 2);
	CHECK_EQ_INT(decode_native(frame, len, &copy_codec, NULL, &h), -EBADMSG);
	/* raw_len beyond the room given (max_message) is refused unread. */
	be32(frame + 28, get32(frame + 28) - 1);
	CHECK_EQ_INT(wire_native_header(frame, len, &h), 0);
	CHECK_EQ_INT(wire_native_records(&h, &copy_codec, NULL, scratch, h.raw_len - 1, &records),
		     -EMSGSIZE);
	/* A compressed frame with nothing after the header. */
	CHECK_EQ_INT(wire_native_header(frame, PP_WIRE_HEADER_LEN, &h), -EBADMSG);
}

TEST(native_zlib_round_trip_and_bomb)
{
	static uint8_t frame[BUF_MAX], zeros[BUF_MAX / 2];
	const struct pp_codec *z = zlib_codec();
	struct tpkt t[4];
	struct wire_header h = { .count = 0 };
	void *ctx;
	size_t len;

	if (!z)
		return;
	ctx = z->ctx_new(6);
	len = sealed(z, ctx, t, 4, frame, sizeof(frame));
	CHECK_EQ_INT(decode_native(frame, len, z, ctx, &h), 0);
	CHECK_EQ_INT(h.count, 4);
	/* A bomb: 512 KiB of zeros claiming to be 100 bytes. */
	len = sizeof(frame);
	h = (struct wire_header){ .count = 0 };
	CHECK_EQ_INT(wire_native_seal(frame, &len, &h, zeros, sizeof(zeros), z, ctx), 0);
	CHECK(len < 4096);
	be32(frame + 28, 100);
	CHECK_EQ_INT(decode_native(frame, len, z, ctx, &h), -EBADMSG);
	/* Damaged compressed bytes. */
	be32(frame + 28, sizeof(zeros));
	frame[PP_WIRE_HEADER_LEN + 3] ^= 0xff;
	CHECK(decode_native(frame, len, z, ctx, &h) < 0);
	z->ctx_free(ctx);
}

/* ------------------------------------------------------------------ */
/* Sequence tracking                                                    */

TEST(sequence_gaps)
{
	static struct wire_senders t;
	uint64_t lost;

	CHECK_EQ_INT(wire_seq_track(&t, 1, 500, 10, &lost), WIRE_SEQ_NEW);
	CHECK_EQ_INT(wire_seq_track(&t, 1, 510, 5, &lost), WIRE_SEQ_IN_ORDER);
	CHECK_EQ_INT(lost, 0);
	CHECK_EQ_INT(wire_seq_track(&t, 1, 520, 1, &lost), WIRE_SEQ_GAP);
	CHECK_EQ_INT(lost, 5);
	CHECK_EQ_INT(wire_seq_track(&t, 2, 0, 1, &lost), WIRE_SEQ_NEW);
	CHECK_EQ_INT(wire_seq_track(&t, 1, 521, 1, &lost), WIRE_SEQ_IN_ORDER);
	CHECK_EQ_INT(wire_seq_track(&t, 1, 3, 1, &lost), WIRE_SEQ_RESYNC);
	CHECK_EQ_INT(lost, 0);
	CHECK_EQ_INT(wire_seq_track(&t, 1, 4, 1, &lost), WIRE_SEQ_IN_ORDER);
	CHECK_EQ_INT(wire_seq_track(&t, 1, 5 + WIRE_GAP_MAX, 1, &lost), WIRE_SEQ_RESYNC);
	CHECK_EQ_INT(lost, 0);
	CHECK_EQ_INT(wire_seq_track(&t, 2, 1, 1, &lost), WIRE_SEQ_IN_ORDER);
}

TEST(sequence_table_keeps_recent_senders)
{
	static struct wire_senders t;
	uint64_t lost;

	for (uint64_t id = 0; id < WIRE_SENDERS_MAX; id++)
		wire_seq_track(&t, id, 0, 1, &lost);
	/* Sender 0 is used again: the least recent is now sender 1. */
	CHECK_EQ_INT(wire_seq_track(&t, 0, 1, 1, &lost), WIRE_SEQ_IN_ORDER);
	CHECK_EQ_INT(wire_seq_track(&t, 1000, 0, 1, &lost), WIRE_SEQ_NEW);
	CHECK_EQ_INT(wire_seq_track(&t, 0, 2, 1, &lost), WIRE_SEQ_IN_ORDER);
	CHECK_EQ_INT(wire_seq_track(&t, 2, 1, 1, &lost), WIRE_SEQ_IN_ORDER);
	CHECK_EQ_INT(wire_seq_track(&t, 1, 1, 1, &lost), WIRE_SEQ_NEW);
}

/* ------------------------------------------------------------------ */
/* Legacy                                                               */

TEST(legacy_exact_bytes)
{
	static const uint8_t want[] = {
		0x65, 0x53, 0xf1, 0x00, /* ts_sec 1700000000 */
		0x00, 0x01, 0xe2, 0x40, /* ts_usec 123456 */
		0x00, 0x00, 0x05, 0xdc, /* pkt_len 1500 */
		0x00, 0x00, 0x00, 0x05, /* data_len 5 */
		0x45, 0x00, 0x00, 0x14, 0x99, 0, 0, 0, /* data, zero padding */
	};
	struct tpkt t;

	tpkt_init(&t, 5, 0);
	t.p.ts_ns = 1700000000123456789ull; /* microseconds: truncated */
	t.p.origlen = 1500;
	memcpy(t.data, "\x45\x00\x00\x14\x99", 5);
	memset(buf, 0xaa, 64);
	CHECK_EQ_INT(wire_legacy_len(5), sizeof(want));
	CHECK_EQ_INT(wire_legacy_put(buf, &t.p), sizeof(want));
	CHECK_EQ_INT(memcmp(buf, want, sizeof(want)), 0);
	CHECK_EQ_INT(wire_legacy_rc_len(5), 1 + sizeof(want));
	CHECK_EQ_INT(wire_legacy_rc_put(buf, &t.p), 1 + sizeof(want));
	CHECK_EQ_INT(buf[0], PP_LEGACY_RC_PLAIN);
	CHECK_EQ_INT(memcmp(buf + 1, want, sizeof(want)), 0);
	tpkt_init(&t, 8, 0);
	CHECK_EQ_INT(wire_legacy_put(buf, &t.p), 24); /* no padding needed */
}

TEST(legacy_round_trip)
{
	struct tpkt t;
	struct wire_record r;

	for (uint32_t caplen = 0; caplen < 9; caplen++) {
		tpkt_init(&t, caplen, caplen);
		t.p.ts_ns = 1700000000123456000ull;
		t.p.origlen = caplen + 100;
		size_t len = wire_legacy_put(buf, &t.p);
		CHECK_EQ_INT(len % 4, 0);
		CHECK_EQ_INT(wire_legacy_decode(buf, len, &r), 0);
		CHECK(r.ts_ns == t.p.ts_ns);
		CHECK_EQ_INT(r.caplen, caplen);
		CHECK_EQ_INT(r.origlen, caplen + 100);
		CHECK_EQ_INT(r.linktype, PP_LEGACY_LINKTYPE);
		CHECK_EQ_INT(memcmp(r.data, t.data, caplen), 0);
		CHECK_EQ_INT(r.meta.flags, 0);
	}
}

TEST(legacy_malformed)
{
	struct tpkt t;
	struct wire_record r;
	size_t len;

	tpkt_init(&t, 5, 0);
	len = wire_legacy_put(buf, &t.p);
	for (size_t n = 0; n < len; n++)
		CHECK_EQ_INT(wire_legacy_decode(buf, n, &r), -EBADMSG);
	CHECK_EQ_INT(wire_legacy_decode(buf, len + 4, &r), -EBADMSG); /* trailing bytes */
	be32(buf + 12, 9); /* data_len past the end */
	CHECK_EQ_INT(wire_legacy_decode(buf, len, &r), -EBADMSG);
	be32(buf + 12, 0xffffffffu);
	CHECK_EQ_INT(wire_legacy_decode(buf, len, &r), -EBADMSG);
	be32(buf + 12, 4); /* a whole padding word left over */
	CHECK_EQ_INT(wire_legacy_decode(buf, len, &r), -EBADMSG);
	be32(buf + 12, 5);
	be32(buf + 4, 1000000); /* microseconds out of range */
	CHECK_EQ_INT(wire_legacy_decode(buf, len, &r), -EBADMSG);
	be32(buf + 4, 999999);
	CHECK_EQ_INT(wire_legacy_decode(buf, len, &r), 0);
	buf[16 + 6] = 0x77; /* padding is not checked, as xdrlib did not */
	CHECK_EQ_INT(wire_legacy_decode(buf, len, &r), 0);
}

TEST(legacy_short_pkt_len)
{
	struct tpkt t;
	struct wire_record r;
	size_t len;

	tpkt_init(&t, 6, 0);
	len = wire_legacy_put(buf, &t.p);
	be32(buf + 8, 0); /* the original sent 0 when it did not know */
	CHECK_EQ_INT(wire_legacy_decode(buf, len, &r), 0);
	CHECK_EQ_INT(r.origlen, 6);
	be32(buf + 8, 2); /* written as it came, as the original did */
	CHECK_EQ_INT(wire_legacy_decode(buf, len, &r), 0);
	CHECK_EQ_INT(r.origlen, 2);
}

/* ------------------------------------------------------------------ */
/* legacy-rc                                                            */

/* A [u32 length][legacy message] stream of n packets into out. */
static size_t rc_records(uint8_t *out, uint32_t n)
{
	struct tpkt t;
	size_t at = 0;

	for (uint32_t i = 0; i < n; i++) {
		tpkt_init(&t, 3 + i, i);
		size_t len = wire_legacy_put(out + at + 4, &t.p);
		put32(out + at, (uint32_t)len);
		at += 4 + len;
	}
	return at;
}

static int rc_decode(const uint8_t *msg, size_t len, const struct pp_codec *codec, void *ctx,
		     uint32_t *count)
{
	struct wire_rc_cursor c;
	int rc = wire_rc_open(&c, msg, len, codec, ctx, scratch, sizeof(scratch));

	*count = 0;
	return rc ? rc : wire_rc_check(&c, count);
}

TEST(legacy_rc_plain)
{
	struct tpkt t;
	struct wire_rc_cursor c;
	struct wire_record r;
	uint32_t n;
	size_t len;

	tpkt_init(&t, 7, 0);
	len = wire_legacy_rc_put(buf, &t.p);
	CHECK_EQ_INT(rc_decode(buf, len, NULL, NULL, &n), 0);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(wire_rc_open(&c, buf, len, NULL, NULL, scratch, sizeof(scratch)), 0);
	CHECK_EQ_INT(wire_rc_next(&c, &r), 1);
	CHECK_EQ_INT(r.caplen, 7);
	CHECK_EQ_INT(wire_rc_next(&c, &r), 0);
	CHECK_EQ_INT(rc_decode(buf, 0, NULL, NULL, &n), -EBADMSG);
	CHECK_EQ_INT(rc_decode(buf, 1, NULL, NULL, &n), -EBADMSG);
	CHECK_EQ_INT(rc_decode(buf, len - 1, NULL, NULL, &n), -EBADMSG);
	buf[0] = 0x02;
	CHECK_EQ_INT(rc_decode(buf, len, NULL, NULL, &n), -EBADMSG);
}

TEST(legacy_rc_records)
{
	static uint8_t msg[BUF_MAX];
	uint32_t n;
	size_t len;

	msg[0] = PP_LEGACY_RC_ZLIB;
	len = 1 + rc_records(msg + 1, 3);
	CHECK_EQ_INT(rc_decode(msg, len, &copy_codec, NULL, &n), 0);
	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(rc_decode(msg, len, NULL, NULL, &n), -ENOPROTOOPT);
	CHECK_EQ_INT(rc_decode(msg, 1, &copy_codec, NULL, &n), 0); /* no records */
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(rc_decode(msg, len - 1, &copy_codec, NULL, &n), -EBADMSG);
	CHECK_EQ_INT(rc_decode(msg, 3, &copy_codec, NULL, &n), -EBADMSG); /* half a length */
	put32(msg + 1, 0xfffffff0u); /* a record past the end */
	CHECK_EQ_INT(rc_decode(msg, len, &copy_codec, NULL, &n), -EBADMSG);
	put32(msg + 1, 4); /* a record too short to be a legacy message */
	CHECK_EQ_INT(rc_decode(msg, len, &copy_codec, NULL, &n), -EBADMSG);
}

TEST(legacy_rc_zlib)
{
	static uint8_t raw[BUF_MAX], msg[BUF_MAX];
	const struct pp_codec *z = zlib_codec();
	struct wire_rc_cursor c;
	size_t rawlen, len;
	uint32_t n;
	void *ctx;

	if (!z)
		return;
	ctx = z->ctx_new(6);
	rawlen = rc_records(raw, 20);
	len = sizeof(msg) - 1;
	msg[0] = PP_LEGACY_RC_ZLIB;
	CHECK_EQ_INT(z->compress(ctx, raw, rawlen, msg + 1, &len), 0);
	CHECK_EQ_INT(rc_decode(msg, 1 + len, z, ctx, &n), 0);
	CHECK_EQ_INT(n, 20);
	/* Bytes after the end of the zlib stream. */
	msg[1 + len] = 0;
	CHECK_EQ_INT(rc_decode(msg, 2 + len, z, ctx, &n), -EBADMSG);
	/* A truncated stream, a damaged one. */
	CHECK_EQ_INT(rc_decode(msg, len, z, ctx, &n), -EBADMSG);
	msg[1] ^= 0x55;
	CHECK_EQ_INT(rc_decode(msg, 1 + len, z, ctx, &n), -EBADMSG);
	/* A bomb: more than the room given (max_message). */
	memset(raw, 0, sizeof(raw));
	len = sizeof(msg) - 1;
	msg[0] = PP_LEGACY_RC_ZLIB;
	CHECK_EQ_INT(z->compress(ctx, raw, sizeof(raw), msg + 1, &len), 0);
	CHECK_EQ_INT(wire_rc_open(&c, msg, 1 + len, z, ctx, scratch, 4096), -EMSGSIZE);
	z->ctx_free(ctx);
}

CHECK_MAIN("test_wire", TEST_ENTRY(native_round_trip), TEST_ENTRY(native_header_layout),
	   TEST_ENTRY(native_meta_tlvs), TEST_ENTRY(native_empty_frame_and_zero_length_packet),
	   TEST_ENTRY(native_encode_refuses_small_buffer),
	   TEST_ENTRY(native_every_truncation_is_refused),
	   TEST_ENTRY(native_trailing_bytes_are_refused), TEST_ENTRY(native_bad_header_fields),
	   TEST_ENTRY(native_bad_record_fields), TEST_ENTRY(native_meta_checks),
	   TEST_ENTRY(native_every_byte_flip_is_survived), TEST_ENTRY(native_codec_paths),
	   TEST_ENTRY(native_zlib_round_trip_and_bomb), TEST_ENTRY(sequence_gaps),
	   TEST_ENTRY(sequence_table_keeps_recent_senders), TEST_ENTRY(legacy_exact_bytes),
	   TEST_ENTRY(legacy_round_trip), TEST_ENTRY(legacy_malformed),
	   TEST_ENTRY(legacy_short_pkt_len), TEST_ENTRY(legacy_rc_plain),
	   TEST_ENTRY(legacy_rc_records), TEST_ENTRY(legacy_rc_zlib))
