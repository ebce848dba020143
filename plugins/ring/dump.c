/* What a query selects from the ring, and its encoding.
 *
 * Selection walks the ring from the newest packet back, so that limits keep
 * the newest matching packets; the result is put back in arrival order.
 * A BPF filter is compiled with libpcap once per linktype met (a program
 * is only valid for the link layer it was compiled for); a linktype it
 * does not compile for matches nothing, and a filter that compiles for
 * none of them is an error, as tcpdump would say for such a file.
 *
 * Encodings are written into one buffer whose exact size dump_size() says
 * first: the reply is built whole before anything is sent. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include <pktpipe/wire.h>

#include "linktype.h"
#include "ring.h"

#define DUMP_SNAPLEN 262144 /* libpcap's largest; longer records are cut */
#define DUMP_MAGIC_US 0xa1b2c3d4u
#define DUMP_MAGIC_NS 0xa1b23c4du
#define DUMP_LINKTYPE_RAW 101
#define DUMP_COMMENT_MAX 512
#define NS_PER_S 1000000000u

/* ------------------------------------------------------------------ */
/* BPF, one program per linktype                                        */

struct prog {
	uint32_t linktype;
	bool ok;
	struct bpf_program bpf;
};

struct filter {
	const char *expr; /* NULL: everything matches */
	struct prog *progs;
	size_t n;
	bool any_ok;
	char err[PCAP_ERRBUF_SIZE + 64];
};

static void filter_compile(struct filter *f, struct prog *pr)
{
	pcap_t *dead = pcap_open_dead(linktype_to_dlt(pr->linktype), DUMP_SNAPLEN);

	pr->ok = false;
	if (!dead) {
		snprintf(f->err, sizeof(f->err), "out of memory");
		return;
	}
	if (pcap_compile(dead, &pr->bpf, f->expr, 1, PCAP_NETMASK_UNKNOWN) == 0) {
		pr->ok = true;
		f->any_ok = true;
	} else if (!f->err[0]) {
		const char *name = pcap_datalink_val_to_name(linktype_to_dlt(pr->linktype));

		snprintf(f->err, sizeof(f->err), "filter: %s (for linktype %u%s%s)",
			 pcap_geterr(dead), pr->linktype, name ? ", " : "", name ? name : "");
	}
	pcap_close(dead);
}

/* The program for a linktype, compiled on first use; NULL if out of memory. */
static struct prog *filter_prog(struct filter *f, uint32_t linktype)
{
	struct prog *progs;

	for (size_t i = 0; i < f->n; i++)
		if (f->progs[i].linktype == linktype)
			return &f->progs[i];
	progs = realloc(f->progs, (f->n + 1) * sizeof(*progs));
	if (!progs)
		return NULL;
	f->progs = progs;
	progs[f->n] = (struct prog){ .linktype = linktype };
	filter_compile(f, &progs[f->n]);
	return &progs[f->n++];
}

static int filter_match(struct filter *f, const struct pp_packet *p)
{
	struct pcap_pkthdr h = { .caplen = p->caplen, .len = p->origlen };
	struct prog *pr;

	if (!f->expr)
		return 1;
	pr = filter_prog(f, p->linktype);
	if (!pr)
		return -ENOMEM;
	return pr->ok && pcap_offline_filter(&pr->bpf, &h, p->data) != 0;
}

/* A filter no packet was tried against is still checked, for Ethernet. */
static int filter_verdict(struct filter *f, char *err, size_t errlen)
{
	if (!f->expr || f->any_ok)
		return 0;
	if (!f->n && !filter_prog(f, 1))
		return -ENOMEM;
	if (f->any_ok)
		return 0;
	snprintf(err, errlen, "%s", f->err);
	return -EINVAL;
}

static void filter_free(struct filter *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->progs[i].ok)
			pcap_freecode(&f->progs[i].bpf);
	free(f->progs);
}

/* ------------------------------------------------------------------ */
/* Selection                                                            */

struct bounds {
	uint64_t lo; /* ts >= lo */
	uint64_t hi; /* ts < hi, when has_hi */
	bool has_hi;
};

static void bounds_of(const struct store *st, const struct query *q, struct bounds *b)
{
	uint64_t newest = 0;

	*b = (struct bounds){ 0 };
	if (!q)
		return;
	if (q->set & QUERY_AFTER)
		b->lo = q->after_ns;
	if (q->set & QUERY_BEFORE) {
		b->hi = q->before_ns;
		b->has_hi = true;
	}
	if (!(q->set & QUERY_LAST))
		return;
	for (size_t i = 0; i < st->count; i++)
		if (store_at(st, i)->ts_ns > newest)
			newest = store_at(st, i)->ts_ns;
	if (newest >= q->last_ns && newest - q->last_ns > b->lo)
		b->lo = newest - q->last_ns;
}

static bool raw_ip(uint32_t linktype)
{
	return linktype == 12 || linktype == 101 || linktype == 228 || linktype == 229;
}

/* A pcap file's linktype for packets of this one. */
static uint32_t file_linktype(uint32_t linktype, enum dump_format format)
{
	if (format == DUMP_LEGACY && raw_ip(linktype))
		return PP_LEGACY_PCAP_LINKTYPE;
	return linktype;
}

/* Raw IP records say their IP version: a 12 or 101 file takes them all. */
static bool file_fits(uint32_t file, uint32_t linktype)
{
	return file == linktype || ((file == 12 || file == 101) && raw_ip(linktype));
}

static int sel_add(struct selection *sel, struct pp_packet *p)
{
	if (sel->n == sel->cap) {
		size_t cap = sel->cap ? sel->cap * 2 : 256;
		struct pp_packet **pkts = realloc(sel->pkts, cap * sizeof(*pkts));

		if (!pkts)
			return -ENOMEM;
		sel->pkts = pkts;
		sel->cap = cap;
	}
	sel->pkts[sel->n++] = p;
	sel->bytes += p->caplen;
	return 0;
}

/* 1: the limits leave no room for p, so the walk ends. */
static bool sel_full(const struct selection *sel, const struct query *q, const struct pp_packet *p)
{
	if (!q)
		return false;
	if ((q->set & QUERY_LIMIT_PACKETS) && sel->n >= q->limit_packets)
		return true;
	return (q->set & QUERY_LIMIT_BYTES) && sel->bytes + p->caplen > q->limit_bytes;
}

/* 1 if p was taken, 0 if not, -ENOMEM; *stop when the limits are reached. */
static int sel_consider(struct selection *sel, const struct query *q, enum dump_format format,
			struct pp_packet *p, bool *stop)
{
	if (format != DUMP_PCAPNG) {
		if (!sel->n && !sel->skipped)
			sel->linktype = file_linktype(p->linktype, format);
		if (!file_fits(sel->linktype, p->linktype)) {
			sel->skipped++;
			return 0;
		}
	}
	*stop = sel_full(sel, q, p);
	return *stop ? 0 : (sel_add(sel, p) < 0 ? -ENOMEM : 1);
}

static void sel_reverse(struct selection *sel)
{
	for (size_t i = 0, j = sel->n; i + 1 < j; i++, j--) {
		struct pp_packet *t = sel->pkts[i];

		sel->pkts[i] = sel->pkts[j - 1];
		sel->pkts[j - 1] = t;
	}
}

/* With nothing selected, a file still needs a linktype: the newest held
 * packet's, else raw IP. */
static void sel_default_linktype(struct selection *sel, const struct store *st,
				 enum dump_format format)
{
	uint32_t lt = st->count ? store_at(st, st->count - 1)->linktype : DUMP_LINKTYPE_RAW;

	if (!sel->n && !sel->skipped)
		sel->linktype = file_linktype(lt, format);
}

static int sel_walk(const struct store *st, const struct query *q, enum dump_format format,
		    struct filter *f, struct selection *sel)
{
	struct bounds b;
	bool stop = false;
	int rc;

	bounds_of(st, q, &b);
	for (size_t i = st->count; i-- > 0 && !stop;) {
		struct pp_packet *p = store_at(st, i);

		if (p->ts_ns < b.lo || (b.has_hi && p->ts_ns >= b.hi))
			continue;
		rc = filter_match(f, p);
		if (rc == 1)
			rc = sel_consider(sel, q, format, p, &stop);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int ng_interfaces(struct selection *sel);

int dump_select(const struct store *st, const struct query *q, enum dump_format format,
		struct selection *sel, char *err, size_t errlen)
{
	struct filter f = { .expr = q && (q->set & QUERY_FILTER) ? q->filter : NULL };
	int rc;

	sel->n = sel->nlts = 0;
	sel->bytes = sel->skipped = 0;
	rc = sel_walk(st, q, format, &f, sel);
	if (rc == 0)
		rc = filter_verdict(&f, err, errlen);
	filter_free(&f);
	if (rc == 0) {
		sel_reverse(sel);
		sel_default_linktype(sel, st, format);
	}
	if (rc == 0 && format == DUMP_PCAPNG)
		rc = ng_interfaces(sel);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	return rc;
}

void dump_free(struct selection *sel)
{
	free(sel->pkts);
	free(sel->lts);
	*sel = (struct selection){ 0 };
}

/* ------------------------------------------------------------------ */
/* pcap and the legacy reply                                            */

struct pcap_file_header_ne {
	uint32_t magic;
	uint16_t major, minor;
	int32_t thiszone;
	uint32_t sigfigs, snaplen, linktype;
};

struct pcap_record_ne {
	uint32_t sec, frac, caplen, origlen;
};

uint32_t dump_legacy_caplen(const struct pp_packet *p)
{
	return p->caplen < PP_LEGACY_PCAP_SNAPLEN ? p->caplen : PP_LEGACY_PCAP_SNAPLEN;
}

static uint32_t pcap_caplen(const struct pp_packet *p, enum dump_format format)
{
	if (format == DUMP_LEGACY)
		return dump_legacy_caplen(p);
	return p->caplen < DUMP_SNAPLEN ? p->caplen : DUMP_SNAPLEN;
}

static size_t pcap_size(const struct selection *sel, enum dump_format format)
{
	size_t len = DUMP_PCAP_HEADER;

	for (size_t i = 0; i < sel->n; i++)
		len += DUMP_PCAP_RECORD + pcap_caplen(sel->pkts[i], format);
	return len;
}

/* The original wrote the captured length where the sender said 0. */
static void pcap_encode(const struct selection *sel, enum dump_format format, uint8_t *out)
{
	bool legacy = format == DUMP_LEGACY;
	struct pcap_file_header_ne fh = {
		.magic = legacy ? DUMP_MAGIC_US : DUMP_MAGIC_NS, .major = 2, .minor = 4,
		.snaplen = legacy ? PP_LEGACY_PCAP_SNAPLEN : DUMP_SNAPLEN, .linktype = sel->linktype,
	};

	memcpy(out, &fh, sizeof(fh));
	out += sizeof(fh);
	for (size_t i = 0; i < sel->n; i++) {
		const struct pp_packet *p = sel->pkts[i];
		uint32_t frac = (uint32_t)(p->ts_ns % NS_PER_S);
		struct pcap_record_ne rh = {
			.sec = (uint32_t)(p->ts_ns / NS_PER_S), .frac = legacy ? frac / 1000 : frac,
			.caplen = pcap_caplen(p, format),
			.origlen = legacy && !p->origlen ? p->caplen : p->origlen,
		};

		memcpy(out, &rh, sizeof(rh));
		memcpy(out + sizeof(rh), p->data, rh.caplen);
		out += sizeof(rh) + rh.caplen;
	}
}

/* ------------------------------------------------------------------ */
/* pcapng                                                               */

#define NG_SHB 0x0a0d0d0au
#define NG_IDB 1u
#define NG_EPB 6u
#define NG_BOM 0x1a2b3c4du
#define NG_SHB_LEN 28
#define NG_IDB_LEN 32 /* with if_tsresol = 9 (ns) and the end of options */
#define NG_EPB_FIXED 32 /* type, length, interface, ts x2, caplen, origlen; length */
#define NG_OPT_COMMENT 1
#define NG_OPT_TSRESOL 9

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* A linktype's interface: they are numbered in order of first appearance. */
static uint32_t ng_iface(const struct selection *sel, uint32_t linktype)
{
	uint32_t i = 0;

	while (i + 1 < sel->nlts && sel->lts[i] != linktype)
		i++;
	return i;
}

static int ng_add_interface(struct selection *sel, uint32_t linktype)
{
	uint32_t *lts = realloc(sel->lts, (sel->nlts + 1) * sizeof(*lts));

	if (!lts)
		return -ENOMEM;
	sel->lts = lts;
	sel->lts[sel->nlts++] = linktype;
	return 0;
}

/* The interface table of a pcapng selection. Readers refuse a file with
 * no interface at all: an empty one still has the default linktype's. */
static int ng_interfaces(struct selection *sel)
{
	if (!sel->n)
		return ng_add_interface(sel, sel->linktype);
	for (size_t i = 0; i < sel->n; i++) {
		uint32_t lt = sel->pkts[i]->linktype;

		if (sel->nlts && sel->lts[ng_iface(sel, lt)] == lt)
			continue;
		if (ng_add_interface(sel, lt) < 0)
			return -ENOMEM;
	}
	return 0;
}

struct text {
	char *buf;
	size_t size, len;
};

static void text_put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(t->buf + t->len, t->size - t->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		t->len += (size_t)n < t->size - t->len ? (size_t)n : t->size - t->len - 1;
}

/* The prefix as printable ASCII: pcapng comments are UTF-8. */
static void text_prefix(struct text *t, const char *prefix)
{
	char clean[PP_PREFIX_MAX];
	size_t i;

	for (i = 0; i + 1 < sizeof(clean) && prefix[i]; i++)
		clean[i] = prefix[i] >= 0x20 && prefix[i] < 0x7f && prefix[i] != '"' ? prefix[i] : '?';
	clean[i] = '\0';
	text_put(t, " prefix=\"%s\"", clean);
}

/* The packet's metadata as a comment ("" if it has none). */
static size_t ng_comment(const struct pp_packet *p, char buf[DUMP_COMMENT_MAX])
{
	const struct pp_meta *m = &p->meta;
	struct text t = { .buf = buf, .size = DUMP_COMMENT_MAX };

	buf[0] = '\0';
	if (m->flags & PP_META_GROUP)
		text_put(&t, " group=%u", m->group);
	if (m->flags & PP_META_PREFIX)
		text_prefix(&t, m->prefix);
	if (m->flags & PP_META_IFINDEX_IN)
		text_put(&t, " in=%u", m->ifindex_in);
	if (m->flags & PP_META_IFINDEX_OUT)
		text_put(&t, " out=%u", m->ifindex_out);
	if (m->flags & PP_META_PHYSIN)
		text_put(&t, " physin=%u", m->physin);
	if (m->flags & PP_META_PHYSOUT)
		text_put(&t, " physout=%u", m->physout);
	if (m->flags & PP_META_MARK)
		text_put(&t, " mark=0x%x", m->mark);
	if (m->flags & PP_META_UID)
		text_put(&t, " uid=%u", m->uid);
	if (m->flags & PP_META_GID)
		text_put(&t, " gid=%u", m->gid);
	if (m->flags & PP_META_HW_PROTOCOL)
		text_put(&t, " hw_protocol=0x%04x", m->hw_protocol);
	if (m->flags & PP_META_SEQ)
		text_put(&t, " seq=%u", m->seq);
	if (m->flags & PP_META_SEQ_GLOBAL)
		text_put(&t, " seq_global=%u", m->seq_global);
	if (!t.len)
		return 0;
	memmove(buf, buf + 1, t.len); /* the leading space, and the NUL with it */
	return t.len - 1;
}

static size_t ng_epb_size(const struct pp_packet *p)
{
	char comment[DUMP_COMMENT_MAX];
	size_t clen = ng_comment(p, comment);
	size_t len = NG_EPB_FIXED + pad4(pcap_caplen(p, DUMP_PCAPNG));

	return clen ? len + 4 + pad4(clen) + 4 : len;
}

static size_t ng_size(const struct selection *sel)
{
	size_t len = NG_SHB_LEN + sel->nlts * NG_IDB_LEN;

	for (size_t i = 0; i < sel->n; i++)
		len += ng_epb_size(sel->pkts[i]);
	return len;
}

static uint8_t *put32(uint8_t *out, uint32_t v)
{
	memcpy(out, &v, 4);
	return out + 4;
}

static uint8_t *put16(uint8_t *out, uint16_t v)
{
	memcpy(out, &v, 2);
	return out + 2;
}

static uint8_t *ng_put_shb(uint8_t *out)
{
	int64_t section = -1;

	out = put32(out, NG_SHB);
	out = put32(out, NG_SHB_LEN);
	out = put32(out, NG_BOM);
	out = put16(out, 1);
	out = put16(out, 0);
	memcpy(out, &section, 8);
	return put32(out + 8, NG_SHB_LEN);
}

static uint8_t *ng_put_idb(uint8_t *out, uint32_t linktype)
{
	out = put32(out, NG_IDB);
	out = put32(out, NG_IDB_LEN);
	out = put16(out, (uint16_t)linktype);
	out = put16(out, 0);
	out = put32(out, DUMP_SNAPLEN);
	out = put16(out, NG_OPT_TSRESOL);
	out = put16(out, 1);
	out[0] = 9; /* 10^-9 s, then padding */
	memset(out + 1, 0, 3);
	out += 4;
	out = put32(out, 0); /* opt_endofopt */
	return put32(out, NG_IDB_LEN);
}

static uint8_t *put_padded(uint8_t *out, const void *data, size_t len)
{
	memcpy(out, data, len);
	memset(out + len, 0, pad4(len) - len);
	return out + pad4(len);
}

static uint8_t *ng_put_epb(uint8_t *out, const struct pp_packet *p, uint32_t iface)
{
	char comment[DUMP_COMMENT_MAX];
	size_t clen = ng_comment(p, comment);
	uint32_t len = (uint32_t)ng_epb_size(p), caplen = pcap_caplen(p, DUMP_PCAPNG);

	out = put32(out, NG_EPB);
	out = put32(out, len);
	out = put32(out, iface);
	out = put32(out, (uint32_t)(p->ts_ns >> 32));
	out = put32(out, (uint32_t)p->ts_ns);
	out = put32(out, caplen);
	out = put32(out, p->origlen);
	out = put_padded(out, p->data, caplen);
	if (clen) {
		out = put16(out, NG_OPT_COMMENT);
		out = put16(out, (uint16_t)clen);
		out = put_padded(out, comment, clen);
		out = put32(out, 0);
	}
	return put32(out, len);
}

/* Interface blocks first, then the packets. */
static void ng_encode(const struct selection *sel, uint8_t *out)
{
	out = ng_put_shb(out);
	for (size_t i = 0; i < sel->nlts; i++)
		out = ng_put_idb(out, sel->lts[i]);
	for (size_t i = 0; i < sel->n; i++)
		out = ng_put_epb(out, sel->pkts[i], ng_iface(sel, sel->pkts[i]->linktype));
}

/* ------------------------------------------------------------------ */
/* Either                                                               */

size_t dump_size(const struct selection *sel, enum dump_format format)
{
	return format == DUMP_PCAPNG ? ng_size(sel) : pcap_size(sel, format);
}

void dump_encode(const struct selection *sel, enum dump_format format, uint8_t *out)
{
	if (format == DUMP_PCAPNG)
		ng_encode(sel, out);
	else
		pcap_encode(sel, format, out);
}
