/* pcap and pcapng bytes; format.h says what each function promises. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format.h"

#define PCAP_MAGIC_US 0xa1b2c3d4u
#define PCAP_MAGIC_NS 0xa1b23c4du
#define PCAPNG_SHB 0x0a0d0d0au
#define PCAPNG_IDB 1u
#define PCAPNG_EPB 6u
#define PCAPNG_BOM 0x1a2b3c4du
#define OPT_END 0
#define OPT_COMMENT 1
#define OPT_SHB_USERAPPL 4
#define OPT_IF_TSRESOL 9
/* A record or block beyond these sizes is damage, not a crash's torn end:
 * libpcap refuses such records too. */
#define RECORD_MAX (256u * 1024)
#define BLOCK_MAX (16u * 1024 * 1024)
#define SCAN_BUF (64u * 1024)

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

static uint8_t *put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, sizeof(v));
	return p + sizeof(v);
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
	return p + sizeof(v);
}

/* An option: code, length, value, zero padding to 4. */
static uint8_t *put_opt(uint8_t *p, uint16_t code, const void *val, size_t len)
{
	p = put16(p, code);
	p = put16(p, (uint16_t)len);
	if (len)
		memcpy(p, val, len);
	memset(p + len, 0, pad4(len) - len);
	return p + pad4(len);
}

/* ------------------------------------------------------------------ */
/* pcap                                                                 */

size_t fmt_pcap_header(uint8_t *out, const struct fmt_file *f, uint32_t linktype)
{
	uint8_t *p = out;

	p = put32(p, f->ns ? PCAP_MAGIC_NS : PCAP_MAGIC_US);
	p = put16(p, 2);
	p = put16(p, 4);
	p = put32(p, 0); /* thiszone */
	p = put32(p, 0); /* sigfigs */
	p = put32(p, f->snaplen);
	p = put32(p, linktype);
	return (size_t)(p - out);
}

size_t fmt_pcap_record(uint8_t *out, const struct fmt_file *f, uint64_t ts_ns, uint32_t caplen,
		       uint32_t origlen)
{
	uint64_t frac = ts_ns % 1000000000u;
	uint8_t *p = out;

	p = put32(p, (uint32_t)(ts_ns / 1000000000u));
	p = put32(p, (uint32_t)(f->ns ? frac : frac / 1000u));
	p = put32(p, caplen);
	p = put32(p, origlen);
	return (size_t)(p - out);
}

/* ------------------------------------------------------------------ */
/* pcapng                                                               */

size_t fmt_shb(uint8_t *out)
{
	static const char appl[] = "pktpipe";
	uint8_t *p = out;

	p = put32(p, PCAPNG_SHB);
	p = put32(p, FMT_SHB_LEN);
	p = put32(p, PCAPNG_BOM);
	p = put16(p, 1);
	p = put16(p, 0);
	/* Section length unknown: a stream is written as it goes. */
	p = put32(p, 0xffffffffu);
	p = put32(p, 0xffffffffu);
	p = put_opt(p, OPT_SHB_USERAPPL, appl, sizeof(appl) - 1);
	p = put_opt(p, OPT_END, NULL, 0);
	p = put32(p, FMT_SHB_LEN);
	return (size_t)(p - out);
}

size_t fmt_idb(uint8_t *out, const struct fmt_file *f, uint32_t linktype)
{
	uint8_t resol = f->ns ? 9 : 6; /* 10^-9 or 10^-6 s */
	uint8_t *p = out;

	p = put32(p, PCAPNG_IDB);
	p = put32(p, FMT_IDB_LEN);
	p = put16(p, (uint16_t)linktype);
	p = put16(p, 0);
	p = put32(p, f->snaplen);
	p = put_opt(p, OPT_IF_TSRESOL, &resol, 1);
	p = put_opt(p, OPT_END, NULL, 0);
	p = put32(p, FMT_IDB_LEN);
	return (size_t)(p - out);
}

/* Append to a bounded string; keeps it terminated, drops what does not fit. */
struct text {
	char *p;
	size_t len, size;
};

static void PP_PRINTF(2, 3) text_add(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->len + 1 >= t->size)
		return;
	va_start(ap, fmt);
	n = vsnprintf(t->p + t->len, t->size - t->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len = t->len + (size_t)n < t->size ? t->len + (size_t)n : t->size - 1;
}

/* The prefix is the rule author's bytes: quoted, with anything but
 * printable ASCII escaped, so the comment is valid UTF-8. */
static void text_prefix(struct text *t, const char *s)
{
	text_add(t, " prefix=\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			text_add(t, "\\%c", c);
		else if (c < 0x20 || c > 0x7e)
			text_add(t, "\\x%02x", c);
		else
			text_add(t, "%c", c);
	}
	text_add(t, "\"");
}

size_t fmt_comment(char *out, size_t size, const struct pp_meta *m)
{
	struct text t = { .p = out, .size = size };
	uint32_t f = m->flags;

	if (!size)
		return 0;
	out[0] = '\0';
	if (!(f & (PP_META_GROUP | PP_META_PREFIX | PP_META_IFINDEX_IN | PP_META_IFINDEX_OUT |
		   PP_META_PHYSIN | PP_META_PHYSOUT | PP_META_MARK | PP_META_UID | PP_META_GID |
		   PP_META_HW_PROTOCOL | PP_META_SEQ | PP_META_SEQ_GLOBAL)))
		return 0;
	text_add(&t, "nflog");
	if (f & PP_META_GROUP)
		text_add(&t, " group=%u", m->group);
	if (f & PP_META_PREFIX)
		text_prefix(&t, m->prefix);
	if (f & PP_META_IFINDEX_IN)
		text_add(&t, " in=%u", m->ifindex_in);
	if (f & PP_META_IFINDEX_OUT)
		text_add(&t, " out=%u", m->ifindex_out);
	if (f & PP_META_PHYSIN)
		text_add(&t, " physin=%u", m->physin);
	if (f & PP_META_PHYSOUT)
		text_add(&t, " physout=%u", m->physout);
	if (f & PP_META_MARK)
		text_add(&t, " mark=0x%x", m->mark);
	if (f & PP_META_UID)
		text_add(&t, " uid=%u", m->uid);
	if (f & PP_META_GID)
		text_add(&t, " gid=%u", m->gid);
	if (f & PP_META_HW_PROTOCOL)
		text_add(&t, " hw_protocol=0x%04x", m->hw_protocol);
	if (f & PP_META_SEQ)
		text_add(&t, " seq=%u", m->seq);
	if (f & PP_META_SEQ_GLOBAL)
		text_add(&t, " seq_global=%u", m->seq_global);
	return t.len;
}

size_t fmt_epb_tail(uint8_t *out, uint32_t caplen, const char *comment, size_t comment_len)
{
	size_t pad = pad4(caplen) - caplen;
	uint8_t *p = out;

	if (comment_len > FMT_COMMENT_MAX)
		comment_len = FMT_COMMENT_MAX;
	memset(p, 0, pad);
	p += pad;
	if (comment_len) {
		p = put_opt(p, OPT_COMMENT, comment, comment_len);
		p = put_opt(p, OPT_END, NULL, 0);
	}
	/* The trailing total length: head, data and this tail. */
	p = put32(p, (uint32_t)(FMT_EPB_HEAD_LEN + caplen + (size_t)(p - out) + 4));
	return (size_t)(p - out);
}

size_t fmt_epb_head(uint8_t *out, const struct fmt_file *f, uint32_t ifid, uint64_t ts_ns,
		    uint32_t caplen, uint32_t origlen, size_t tail_len)
{
	uint64_t ts = f->ns ? ts_ns : ts_ns / 1000u;
	uint8_t *p = out;

	p = put32(p, PCAPNG_EPB);
	p = put32(p, (uint32_t)(FMT_EPB_HEAD_LEN + caplen + tail_len));
	p = put32(p, ifid);
	p = put32(p, (uint32_t)(ts >> 32));
	p = put32(p, (uint32_t)ts);
	p = put32(p, caplen);
	p = put32(p, origlen);
	return (size_t)(p - out);
}

/* ------------------------------------------------------------------ */
/* Files to continue                                                    */

/* Reads a file front to back through one buffer: a syscall per 64 KiB,
 * not per record. */
struct reader {
	int fd;
	uint64_t size, base;
	size_t len;
	uint8_t *buf;
};

/* n bytes at off; -ENODATA when the file ends first. */
static int rd(struct reader *r, uint64_t off, void *dst, size_t n)
{
	ssize_t got;

	if (off + n > r->size)
		return -ENODATA;
	if (off < r->base || off + n > r->base + r->len) {
		do
			got = pread(r->fd, r->buf, SCAN_BUF, (off_t)off);
		while (got < 0 && errno == EINTR);
		if (got < 0)
			return -errno;
		r->base = off;
		r->len = (size_t)got;
		if (r->len < n)
			return -ENODATA;
	}
	memcpy(dst, r->buf + (off - r->base), n);
	return 0;
}

static uint32_t get32(const uint8_t *p, bool swap)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return swap ? __builtin_bswap32(v) : v;
}

static int PP_PRINTF(3, 4) refuse(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int pcap_header_check(const uint8_t *h, const struct fmt_want *want, char *err,
			     size_t errlen)
{
	uint32_t magic = get32(h, false), snaplen = get32(h + 16, false);
	uint32_t linktype = get32(h + 20, false);
	bool ns = magic == PCAP_MAGIC_NS;

	if (magic == PCAPNG_SHB)
		return refuse(err, errlen, "it is a pcapng file (format = pcapng continues it)");
	if (magic == __builtin_bswap32(PCAP_MAGIC_US) || magic == __builtin_bswap32(PCAP_MAGIC_NS))
		return refuse(err, errlen, "it is in the other byte order than this machine's");
	if (magic != PCAP_MAGIC_US && magic != PCAP_MAGIC_NS)
		return refuse(err, errlen, "it is not a pcap file (magic 0x%08x)", magic);
	if (ns != want->file.ns)
		return refuse(err, errlen, "it has %s timestamps, precision = %s",
			      ns ? "nanosecond" : "microsecond", want->file.ns ? "ns" : "us");
	if (h[4] != 2 || h[5] != 0)
		return refuse(err, errlen, "its pcap version is not 2.x");
	if (want->have_linktype && linktype != want->linktype)
		return refuse(err, errlen, "it has linktype %u, this stream %u", linktype,
			      want->linktype);
	if (snaplen < want->file.snaplen)
		return refuse(err, errlen, "its snaplen %u is below snaplen = %u", snaplen,
			      want->file.snaplen);
	return 0;
}

static int pcap_scan(struct reader *r, uint64_t *keep, char *err, size_t errlen)
{
	uint64_t off = FMT_PCAP_HEADER_LEN;
	uint8_t h[FMT_PCAP_RECORD_LEN];
	int rc;

	while (off < r->size) {
		rc = rd(r, off, h, sizeof(h));
		if (rc == -ENODATA)
			break;
		if (rc < 0)
			return refuse(err, errlen, "cannot read it: %s", strerror(-rc));
		uint32_t caplen = get32(h + 8, false);
		if (caplen > RECORD_MAX)
			return refuse(err, errlen, "it is damaged: the record at byte %llu claims %u bytes",
				      (unsigned long long)off, caplen);
		if (off + sizeof(h) + caplen > r->size)
			break; /* torn by a crash: cut off */
		off += sizeof(h) + caplen;
	}
	*keep = off;
	return 0;
}

int fmt_pcap_resume(int fd, uint64_t size, const struct fmt_want *want, uint32_t *linktype,
		    uint64_t *keep, char *err, size_t errlen)
{
	struct reader r = { .fd = fd, .size = size, .buf = malloc(SCAN_BUF) };
	uint8_t h[FMT_PCAP_HEADER_LEN];
	int rc;

	if (!r.buf)
		return refuse(err, errlen, "out of memory");
	rc = rd(&r, 0, h, sizeof(h));
	if (rc == -ENODATA)
		rc = refuse(err, errlen, "it is too short for a pcap file (%llu bytes)",
			    (unsigned long long)size);
	else if (rc < 0)
		rc = refuse(err, errlen, "cannot read it: %s", strerror(-rc));
	else
		rc = pcap_header_check(h, want, err, errlen);
	if (rc == 0) {
		*linktype = get32(h + 20, false);
		rc = pcap_scan(&r, keep, err, errlen);
	}
	free(r.buf);
	return rc;
}

/* One block at off: its length, or 0 when the file ends inside it (torn);
 * a section header sets the byte order that follows. */
static int block_at(struct reader *r, uint64_t off, bool *swap, uint32_t *len, char *err,
		    size_t errlen)
{
	uint8_t h[12];
	uint8_t t[4];
	int rc = rd(r, off, h, off + 12 <= r->size ? 12 : 8);

	*len = 0;
	if (rc == -ENODATA)
		return 0;
	if (rc < 0)
		return refuse(err, errlen, "cannot read it: %s", strerror(-rc));
	if (get32(h, false) == PCAPNG_SHB) {
		if (off + 12 > r->size)
			return 0;
		if (get32(h + 8, false) != PCAPNG_BOM && get32(h + 8, true) != PCAPNG_BOM)
			return refuse(err, errlen, "it is damaged: bad section header at byte %llu",
				      (unsigned long long)off);
		*swap = get32(h + 8, false) != PCAPNG_BOM;
	}
	uint32_t n = get32(h + 4, *swap);
	if (n < 12 || n % 4 || n > BLOCK_MAX)
		return refuse(err, errlen, "it is damaged: the block at byte %llu claims %u bytes",
			      (unsigned long long)off, n);
	if (off + n > r->size)
		return 0;
	rc = rd(r, off + n - 4, t, sizeof(t));
	if (rc < 0)
		return refuse(err, errlen, "cannot read it: %s", strerror(-rc));
	if (get32(t, *swap) != n)
		return refuse(err, errlen, "it is damaged: the block at byte %llu ends badly",
			      (unsigned long long)off);
	*len = n;
	return 0;
}

int fmt_pcapng_resume(int fd, uint64_t size, uint64_t *keep, char *err, size_t errlen)
{
	struct reader r = { .fd = fd, .size = size, .buf = malloc(SCAN_BUF) };
	uint8_t h[4] = { 0 };
	uint64_t off = 0;
	bool swap = false;
	uint32_t len;
	int rc;

	if (!r.buf)
		return refuse(err, errlen, "out of memory");
	rc = rd(&r, 0, h, sizeof(h));
	if (rc < 0 || get32(h, false) != PCAPNG_SHB) {
		rc = refuse(err, errlen, "it is not a pcapng file%s",
			    get32(h, false) == PCAP_MAGIC_US || get32(h, false) == PCAP_MAGIC_NS ?
				    " (format = pcap continues it)" :
				    "");
		goto out;
	}
	while (off < size) {
		rc = block_at(&r, off, &swap, &len, err, errlen);
		if (rc < 0 || !len)
			break;
		off += len;
	}
	*keep = off;
out:
	free(r.buf);
	return rc;
}
