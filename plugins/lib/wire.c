/* The wire formats; see wire.h for the contract and plugins/zmq-out/WIRE.md
 * for the native layout. Every multi-byte field is big-endian and read
 * through memcpy and a byte swap, so no input alignment or host byte order
 * matters, and the compiler makes one load of each. */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "wire.h"

#define NS_PER_S 1000000000ull
#define US_PER_S 1000000u
#define LINKTYPE_MAX 0xffffu /* larger numbers are pktpipe pseudo-linktypes */

/* ------------------------------------------------------------------ */
/* Byte order                                                           */

static inline uint16_t get16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return be16toh(v);
}

static inline uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return be32toh(v);
}

static inline uint64_t get64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

static uint8_t *put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return p + 4;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	return put32(p + 4, (uint32_t)v);
}

/* ------------------------------------------------------------------ */
/* Metadata TLVs                                                        */

/* The fixed-size fields of struct pp_meta and their TLV types. */
static const struct meta_field {
	uint8_t type;
	uint8_t len; /* 2 or 4 */
	uint32_t flag;
	size_t offset;
} meta_fields[] = {
	{ PP_WIRE_META_GROUP, 2, PP_META_GROUP, offsetof(struct pp_meta, group) },
	{ PP_WIRE_META_IFINDEX_IN, 4, PP_META_IFINDEX_IN, offsetof(struct pp_meta, ifindex_in) },
	{ PP_WIRE_META_IFINDEX_OUT, 4, PP_META_IFINDEX_OUT, offsetof(struct pp_meta, ifindex_out) },
	{ PP_WIRE_META_PHYSIN, 4, PP_META_PHYSIN, offsetof(struct pp_meta, physin) },
	{ PP_WIRE_META_PHYSOUT, 4, PP_META_PHYSOUT, offsetof(struct pp_meta, physout) },
	{ PP_WIRE_META_MARK, 4, PP_META_MARK, offsetof(struct pp_meta, mark) },
	{ PP_WIRE_META_UID, 4, PP_META_UID, offsetof(struct pp_meta, uid) },
	{ PP_WIRE_META_GID, 4, PP_META_GID, offsetof(struct pp_meta, gid) },
	{ PP_WIRE_META_HW_PROTOCOL, 2, PP_META_HW_PROTOCOL, offsetof(struct pp_meta, hw_protocol) },
	{ PP_WIRE_META_SEQ, 4, PP_META_SEQ, offsetof(struct pp_meta, seq) },
	{ PP_WIRE_META_SEQ_GLOBAL, 4, PP_META_SEQ_GLOBAL, offsetof(struct pp_meta, seq_global) },
};

#define META_FIELDS (sizeof(meta_fields) / sizeof(meta_fields[0]))

static size_t meta_prefix_len(const struct pp_meta *m)
{
	const void *nul = memchr(m->prefix, 0, PP_PREFIX_MAX - 1);

	return nul ? (size_t)((const char *)nul - m->prefix) : PP_PREFIX_MAX - 1;
}

static size_t meta_len_tlvs(const struct pp_meta *m)
{
	size_t n = 0;

	for (size_t i = 0; i < META_FIELDS; i++)
		if (m->flags & meta_fields[i].flag)
			n += 2u + meta_fields[i].len;
	if (m->flags & PP_META_PREFIX)
		n += 2 + meta_prefix_len(m);
	return n;
}

/* Most packets carry no metadata: they skip the table walk, inline. */
static inline size_t meta_len(const struct pp_meta *m)
{
	return m->flags ? meta_len_tlvs(m) : 0;
}

static uint8_t *meta_put(uint8_t *p, const struct pp_meta *m)
{
	if (!m->flags)
		return p;
	for (size_t i = 0; i < META_FIELDS; i++) {
		const struct meta_field *f = &meta_fields[i];
		const char *field = (const char *)m + f->offset;
		uint16_t v16;
		uint32_t v32;

		if (!(m->flags & f->flag))
			continue;
		*p++ = f->type;
		*p++ = f->len;
		if (f->len == 2) {
			memcpy(&v16, field, sizeof(v16));
			p = put16(p, v16);
		} else {
			memcpy(&v32, field, sizeof(v32));
			p = put32(p, v32);
		}
	}
	if (m->flags & PP_META_PREFIX) {
		size_t n = meta_prefix_len(m);

		*p++ = PP_WIRE_META_PREFIX;
		*p++ = (uint8_t)n;
		memcpy(p, m->prefix, n);
		p += n;
	}
	return p;
}

/* One TLV's value into m (m NULL: only checked); unknown types are
 * skipped. */
static int meta_field_get(struct pp_meta *m, uint8_t type, const uint8_t *v, uint8_t len)
{
	if (type == PP_WIRE_META_PREFIX) {
		if (len > PP_PREFIX_MAX - 1 || memchr(v, 0, len))
			return -EBADMSG;
		if (!m)
			return 0;
		/* Zero all of it: a second prefix TLV, shorter than the first,
		 * leaves no bytes of the first behind its NUL, so a decoded
		 * record is the same whatever the sender repeated. */
		memset(m->prefix, 0, sizeof(m->prefix));
		memcpy(m->prefix, v, len);
		m->flags |= PP_META_PREFIX;
		return 0;
	}
	for (size_t i = 0; i < META_FIELDS; i++) {
		const struct meta_field *f = &meta_fields[i];
		uint16_t v16;
		uint32_t v32;

		if (f->type != type)
			continue;
		if (len != f->len)
			return -EBADMSG;
		if (!m)
			return 0;
		if (len == 2) {
			v16 = get16(v);
			memcpy((char *)m + f->offset, &v16, sizeof(v16));
		} else {
			v32 = get32(v);
			memcpy((char *)m + f->offset, &v32, sizeof(v32));
		}
		m->flags |= f->flag;
		return 0;
	}
	return 0;
}

/* The TLVs p holds (len bytes) into m, or only checked when m is NULL. */
static int meta_get_tlvs(struct pp_meta *m, const uint8_t *p, size_t len)
{
	if (m)
		memset(m, 0, sizeof(*m));
	while (len) {
		uint8_t type, vlen;
		int rc;

		if (len < 2)
			return -EBADMSG;
		type = p[0];
		vlen = p[1];
		p += 2;
		len -= 2;
		if (vlen > len)
			return -EBADMSG;
		rc = meta_field_get(m, type, p, vlen);
		if (rc < 0)
			return rc;
		p += vlen;
		len -= vlen;
	}
	return 0;
}

/* Without TLVs (most records) only flags and the prefix's first byte are
 * set, inline: the rest of struct pp_meta is read only where flags say. */
static inline int meta_get(struct pp_meta *m, const uint8_t *p, size_t len)
{
	if (m && !len) {
		m->flags = 0;
		m->prefix[0] = '\0';
		return 0;
	}
	return meta_get_tlvs(m, p, len);
}

/* ------------------------------------------------------------------ */
/* Native frames: decoding                                              */

bool wire_is_native(const void *msg, size_t len)
{
	const uint8_t *p = msg;

	return len >= 5 && get32(p) == PP_WIRE_MAGIC && p[4] != 0;
}

int wire_native_header(const void *msg, size_t len, struct wire_header *h)
{
	const uint8_t *p = msg;

	if (len < PP_WIRE_HEADER_LEN || get32(p) != PP_WIRE_MAGIC || p[4] == 0)
		return -EBADMSG;
	if (p[4] != PP_WIRE_VERSION)
		return -EPROTONOSUPPORT;
	*h = (struct wire_header){
		.version = p[4],
		.codec = p[5],
		.flags = get16(p + 6),
		.sender = get64(p + 8),
		.seq = get64(p + 16),
		.count = get32(p + 24),
		.raw_len = get32(p + 28),
		.payload = p + PP_WIRE_HEADER_LEN,
		.payload_len = len - PP_WIRE_HEADER_LEN,
	};
	/* Every record takes at least its fixed part. */
	if (h->count > h->raw_len / PP_WIRE_RECORD_LEN)
		return -EBADMSG;
	if (h->codec == PP_CODEC_NONE ? h->payload_len != h->raw_len : h->payload_len == 0)
		return -EBADMSG;
	return 0;
}

int wire_native_records(const struct wire_header *h, const struct pp_codec *codec, void *ctx,
			uint8_t *scratch, size_t scratch_len, const uint8_t **records)
{
	size_t outlen = h->raw_len;
	int rc;

	if (h->codec == PP_CODEC_NONE) {
		*records = h->payload;
		return 0;
	}
	if (!codec || codec->wire_id != h->codec)
		return -ENOPROTOOPT;
	if (h->raw_len > scratch_len)
		return -EMSGSIZE;
	/* Room for exactly raw_len: a stream that inflates further lies about
	 * its size, whatever its intent. */
	rc = codec->decompress(ctx, h->payload, h->payload_len, scratch, &outlen);
	if (rc < 0 || outlen != h->raw_len)
		return -EBADMSG;
	*records = scratch;
	return 0;
}

void wire_cursor_init(struct wire_cursor *c, const uint8_t *records, size_t len, uint32_t count)
{
	*c = (struct wire_cursor){ .p = records, .left = len, .todo = count };
}

/* The fixed part of the record at p (left bytes from there): its lengths,
 * checked against what is left. 0, or -EBADMSG. */
static inline int record_fixed(const uint8_t *p, size_t left, size_t *mlen, uint32_t *caplen)
{
	if (left < PP_WIRE_RECORD_LEN)
		return -EBADMSG;
	*caplen = get32(p + 8);
	*mlen = get16(p + 20);
	left -= PP_WIRE_RECORD_LEN;
	/* origlen may be below caplen: captures carry such records, and the
	 * wire hands them on as they are. */
	if (*mlen > left || get32(p + 16) > LINKTYPE_MAX || *caplen > left - *mlen)
		return -EBADMSG;
	return 0;
}

int wire_native_next(struct wire_cursor *c, struct wire_record *r)
{
	const uint8_t *p = c->p;
	size_t mlen, len;
	int rc;

	if (!c->todo)
		return c->left ? -EBADMSG : 0;
	rc = record_fixed(p, c->left, &mlen, &r->caplen);
	if (rc == 0)
		rc = meta_get(&r->meta, p + PP_WIRE_RECORD_LEN, mlen);
	if (rc < 0)
		return rc;
	r->ts_ns = get64(p);
	r->origlen = get32(p + 12);
	r->linktype = get32(p + 16);
	r->data = p + PP_WIRE_RECORD_LEN + mlen;
	len = PP_WIRE_RECORD_LEN + mlen + r->caplen;
	c->p = p + len;
	c->left -= len;
	c->todo--;
	return 1;
}

/* The check pass stores nothing: the records only have to be well-formed. */
int wire_native_check(const uint8_t *records, size_t len, uint32_t count)
{
	const uint8_t *p = records;
	uint32_t caplen;
	size_t mlen;

	for (; count; count--) {
		if (record_fixed(p, len, &mlen, &caplen) < 0 ||
		    (mlen && meta_get(NULL, p + PP_WIRE_RECORD_LEN, mlen) < 0))
			return -EBADMSG;
		p += PP_WIRE_RECORD_LEN + mlen + caplen;
		len -= PP_WIRE_RECORD_LEN + mlen + caplen;
	}
	return len ? -EBADMSG : 0;
}

/* ------------------------------------------------------------------ */
/* Native frames: encoding                                              */

size_t wire_native_record_len(const struct pp_packet *p)
{
	return PP_WIRE_RECORD_LEN + meta_len(&p->meta) + p->caplen;
}

size_t wire_native_put_record(uint8_t *out, const struct pp_packet *p)
{
	uint8_t *q = out;

	q = put64(q, p->ts_ns);
	q = put32(q, p->caplen);
	q = put32(q, p->origlen);
	q = put32(q, p->linktype);
	q = put16(q, (uint16_t)meta_len(&p->meta));
	q = meta_put(q, &p->meta);
	memcpy(q, p->data, p->caplen);
	return (size_t)(q - out) + p->caplen;
}

void wire_native_put_header(uint8_t *out, const struct wire_header *h)
{
	uint8_t *q = put32(out, PP_WIRE_MAGIC);

	*q++ = PP_WIRE_VERSION;
	*q++ = h->codec;
	q = put16(q, h->flags);
	q = put64(q, h->sender);
	q = put64(q, h->seq);
	q = put32(q, h->count);
	put32(q, h->raw_len);
}

size_t wire_native_encode(uint8_t *out, size_t outlen, struct wire_header *h,
			  struct pp_packet *const *pkts, uint32_t n)
{
	size_t raw = 0, at = PP_WIRE_HEADER_LEN;

	for (uint32_t i = 0; i < n; i++)
		raw += wire_native_record_len(pkts[i]);
	if (raw > UINT32_MAX || outlen < PP_WIRE_HEADER_LEN || raw > outlen - PP_WIRE_HEADER_LEN)
		return 0;
	h->codec = PP_CODEC_NONE;
	h->count = n;
	h->raw_len = (uint32_t)raw;
	wire_native_put_header(out, h);
	for (uint32_t i = 0; i < n; i++)
		at += wire_native_put_record(out + at, pkts[i]);
	return at;
}

int wire_native_seal(uint8_t *out, size_t *outlen, struct wire_header *h, const uint8_t *raw,
		     size_t raw_len, const struct pp_codec *codec, void *ctx)
{
	size_t clen;
	int rc;

	if (!codec)
		return -EINVAL;
	if (raw_len > UINT32_MAX)
		return -EMSGSIZE;
	if (*outlen <= PP_WIRE_HEADER_LEN)
		return -ENOSPC;
	clen = *outlen - PP_WIRE_HEADER_LEN;
	rc = codec->compress(ctx, raw, raw_len, out + PP_WIRE_HEADER_LEN, &clen);
	if (rc < 0)
		return rc;
	h->codec = codec->wire_id;
	h->raw_len = (uint32_t)raw_len;
	wire_native_put_header(out, h);
	*outlen = PP_WIRE_HEADER_LEN + clen;
	return 0;
}

size_t wire_native_records_len(struct pp_packet *const *pkts, uint32_t n)
{
	size_t len = 0;

	for (uint32_t i = 0; i < n; i++)
		len += wire_native_record_len(pkts[i]);
	return len;
}

size_t wire_native_compress_bound(const struct pp_codec *codec, size_t records_len)
{
	return PP_WIRE_HEADER_LEN + codec->bound(records_len);
}

int wire_native_compress(uint8_t *out, size_t *outlen, struct wire_header *h,
			 struct pp_packet *const *pkts, uint32_t n, uint8_t *scratch,
			 size_t scratch_len, const struct pp_codec *codec, void *ctx)
{
	size_t raw = wire_native_records_len(pkts, n), at = 0;

	if (!codec)
		return -EINVAL;
	if (raw > UINT32_MAX)
		return -EMSGSIZE;
	if (raw > scratch_len)
		return -ENOSPC;
	for (uint32_t i = 0; i < n; i++)
		at += wire_native_put_record(scratch + at, pkts[i]);
	h->count = n;
	return wire_native_seal(out, outlen, h, scratch, raw, codec, ctx);
}

/* ------------------------------------------------------------------ */
/* Sequence tracking                                                    */

static size_t seq_slot(struct wire_senders *t, uint64_t sender, bool *found)
{
	size_t victim = 0;

	for (size_t i = 0; i < WIRE_SENDERS_MAX; i++) {
		if (t->slot[i].used && t->slot[i].id == sender) {
			*found = true;
			return i;
		}
		/* A free slot, else the least recently used. */
		if (!t->slot[victim].used)
			continue;
		if (!t->slot[i].used || t->slot[i].last_use < t->slot[victim].last_use)
			victim = i;
	}
	*found = false;
	return victim;
}

enum wire_seq_status wire_seq_track(struct wire_senders *t, uint64_t sender, uint64_t seq,
				    uint32_t count, uint64_t *lost)
{
	bool found;
	size_t i = seq_slot(t, sender, &found);
	uint64_t expected = t->slot[i].next_seq;
	enum wire_seq_status st;

	*lost = 0;
	if (!found)
		st = WIRE_SEQ_NEW;
	else if (seq == expected)
		st = WIRE_SEQ_IN_ORDER;
	else if (seq > expected && seq - expected < WIRE_GAP_MAX)
		st = WIRE_SEQ_GAP;
	else
		st = WIRE_SEQ_RESYNC;
	if (st == WIRE_SEQ_GAP)
		*lost = seq - expected;
	t->slot[i].used = true;
	t->slot[i].id = sender;
	t->slot[i].next_seq = seq + count;
	t->slot[i].last_use = ++t->clock;
	return st;
}

/* ------------------------------------------------------------------ */
/* Legacy                                                               */

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

size_t wire_legacy_len(uint32_t caplen)
{
	return PP_LEGACY_HEADER_LEN + pad4(caplen);
}

size_t wire_legacy_put(uint8_t *out, const struct pp_packet *p)
{
	uint8_t *q = out;
	size_t len = wire_legacy_len(p->caplen);

	q = put32(q, (uint32_t)(p->ts_ns / NS_PER_S));
	q = put32(q, (uint32_t)(p->ts_ns % NS_PER_S / 1000u));
	q = put32(q, p->origlen);
	q = put32(q, p->caplen);
	memcpy(q, p->data, p->caplen);
	memset(q + p->caplen, 0, len - PP_LEGACY_HEADER_LEN - p->caplen);
	return len;
}

int wire_legacy_decode(const uint8_t *msg, size_t len, struct wire_record *r)
{
	uint32_t sec, usec, pkt_len, data_len;

	if (len < PP_LEGACY_HEADER_LEN)
		return -EBADMSG;
	sec = get32(msg);
	usec = get32(msg + 4);
	pkt_len = get32(msg + 8);
	data_len = get32(msg + 12);
	/* Exactly the padded data, nothing after it (the original's xdrlib
	 * done()); the padding's value is not checked, as xdrlib did not. */
	if (usec >= US_PER_S || data_len > len - PP_LEGACY_HEADER_LEN ||
	    pad4(data_len) != len - PP_LEGACY_HEADER_LEN)
		return -EBADMSG;
	memset(r, 0, sizeof(*r));
	r->ts_ns = (uint64_t)sec * NS_PER_S + (uint64_t)usec * 1000u;
	r->caplen = data_len;
	/* What the original receiver wrote: `pkt_len or caplen`. */
	r->origlen = pkt_len ? pkt_len : data_len;
	r->linktype = PP_LEGACY_LINKTYPE;
	r->data = msg + PP_LEGACY_HEADER_LEN;
	return 0;
}

size_t wire_legacy_rc_len(uint32_t caplen)
{
	return 1 + wire_legacy_len(caplen);
}

size_t wire_legacy_rc_put(uint8_t *out, const struct pp_packet *p)
{
	out[0] = PP_LEGACY_RC_PLAIN;
	return 1 + wire_legacy_put(out + 1, p);
}

int wire_rc_open(struct wire_rc_cursor *c, const uint8_t *msg, size_t len,
		 const struct pp_codec *codec, void *ctx, uint8_t *scratch, size_t scratch_len)
{
	size_t outlen = scratch_len;
	int rc;

	*c = (struct wire_rc_cursor){ 0 };
	if (len < 1)
		return -EBADMSG;
	if (msg[0] == PP_LEGACY_RC_PLAIN) {
		*c = (struct wire_rc_cursor){ .p = msg + 1, .left = len - 1, .single = true };
		return 0;
	}
	if (msg[0] != PP_LEGACY_RC_ZLIB)
		return -EBADMSG;
	if (!codec)
		return -ENOPROTOOPT;
	rc = codec->decompress(ctx, msg + 1, len - 1, scratch, &outlen);
	if (rc == -EMSGSIZE)
		return rc;
	if (rc < 0)
		return -EBADMSG;
	*c = (struct wire_rc_cursor){ .p = scratch, .left = outlen };
	return 0;
}

int wire_rc_next(struct wire_rc_cursor *c, struct wire_record *r)
{
	uint32_t n;
	int rc;

	if (c->single) {
		rc = wire_legacy_decode(c->p, c->left, r);
		if (rc < 0)
			return rc;
		*c = (struct wire_rc_cursor){ 0 };
		return 1;
	}
	if (!c->left)
		return 0;
	if (c->left < 4)
		return -EBADMSG;
	n = get32(c->p);
	if (n > c->left - 4)
		return -EBADMSG;
	rc = wire_legacy_decode(c->p + 4, n, r);
	if (rc < 0)
		return rc;
	c->p += 4 + (size_t)n;
	c->left -= 4 + (size_t)n;
	return 1;
}

int wire_rc_check(const struct wire_rc_cursor *c, uint32_t *count)
{
	struct wire_rc_cursor k = *c;
	struct wire_record r;
	int rc;

	*count = 0;
	while ((rc = wire_rc_next(&k, &r)) == 1)
		(*count)++;
	return rc;
}

bool wire_legacy_linktype(uint32_t lt)
{
	return lt == 12 || lt == 101 || lt == 228 || lt == 229;
}

/* A legacy message takes 16 bytes and the data padded to 4, its length
 * prefix 4: at most one byte more than the native record's 22 + data. */
size_t wire_rc_records_bound(size_t len, uint32_t count)
{
	return len + count;
}

int wire_rc_from_native(uint8_t *out, size_t *outlen, const uint8_t *records, size_t len,
			uint32_t count, uint8_t *scratch, size_t scratch_len,
			const struct pp_codec *codec, void *ctx, uint32_t *skipped)
{
	struct wire_cursor c;
	struct wire_record r;
	struct pp_packet p;
	size_t at = 0, clen;
	int rc;

	*skipped = 0;
	if (!codec)
		return -ENOPROTOOPT;
	if (*outlen < 1 || scratch_len < wire_rc_records_bound(len, count))
		return -ENOSPC;
	wire_cursor_init(&c, records, len, count);
	while ((rc = wire_native_next(&c, &r)) == 1) {
		if (!wire_legacy_linktype(r.linktype)) {
			(*skipped)++;
			continue;
		}
		p = (struct pp_packet){ .data = (uint8_t *)(uintptr_t)r.data, .caplen = r.caplen,
					.origlen = r.origlen, .ts_ns = r.ts_ns };
		put32(scratch + at, (uint32_t)wire_legacy_len(r.caplen));
		at += 4 + wire_legacy_put(scratch + at + 4, &p);
	}
	if (rc < 0)
		return rc;
	clen = *outlen - 1;
	rc = codec->compress(ctx, scratch, at, out + 1, &clen);
	if (rc < 0)
		return rc;
	out[0] = PP_LEGACY_RC_ZLIB;
	*outlen = 1 + clen;
	return 0;
}
