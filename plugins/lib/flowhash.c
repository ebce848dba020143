/* Flow hashing; see flowhash.h for the contract and the zmq-out README for
 * the rules as users read them. Every multi-byte field is big-endian and
 * read byte by byte; every read is preceded by a check of what is left. A
 * header cut short by the capture leaves nothing of what follows it, so
 * the walk goes on with zero bytes and decides by protocol alone. */
#include <string.h>

#include "flowhash.h"

#define FH_ETH_HLEN 14
#define FH_SLL_HLEN 16
#define FH_SLL2_HLEN 20
#define FH_LOOP_HLEN 4
#define FH_VLAN_HLEN 4
#define FH_IPV4_HLEN 20
#define FH_IPV6_HLEN 40
#define FH_ICMP_HLEN 8
#define FH_PORTS_LEN 4
#define FH_REDRAWS 32 /* failover: draws among all buckets before scanning */

enum fh_linktype {
	FH_LT_NULL = 0,
	FH_LT_ETHERNET = 1,
	FH_LT_RAW_OLD = 12,
	FH_LT_RAW = 101,
	FH_LT_LOOP = 108,
	FH_LT_SLL = 113,
	FH_LT_IPV4 = 228,
	FH_LT_IPV6 = 229,
	FH_LT_SLL2 = 276,
};

enum fh_ethertype {
	FH_ETH_IPV4 = 0x0800,
	FH_ETH_8021Q = 0x8100,
	FH_ETH_IPV6 = 0x86dd,
	FH_ETH_8021AD = 0x88a8,
	FH_ETH_QINQ_OLD = 0x9100,
};

enum fh_proto {
	FH_IP6_HOPOPTS = 0,
	FH_IP_ICMP = 1,
	FH_IP_TCP = 6,
	FH_IP_UDP = 17,
	FH_IP_DCCP = 33,
	FH_IP6_ROUTING = 43,
	FH_IP6_FRAGMENT = 44,
	FH_IP6_AH = 51,
	FH_IP_ICMPV6 = 58,
	FH_IP6_DSTOPTS = 60,
	FH_IP_SCTP = 132,
	FH_IP_UDPLITE = 136,
	FH_IP6_HIP = 139,
	FH_IP6_SHIM6 = 140,
};

static uint16_t fh_get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static enum flowhash_kind fh_ipv4(const uint8_t *p, size_t len, struct flowhash_tuple *t,
				  bool quoted);
static enum flowhash_kind fh_ipv6(const uint8_t *p, size_t len, struct flowhash_tuple *t,
				  bool quoted);

/* ------------------------------------------------------------------ */
/* Transport                                                            */

static bool fh_icmp_error(uint8_t proto, uint8_t type)
{
	if (proto == FH_IP_ICMP) /* unreachable, quench, redirect, time exceeded, parameter */
		return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
	return type >= 1 && type <= 4; /* unreachable, too big, time exceeded, parameter */
}

/* An ICMP error belongs to the flow of the packet it quotes; when that
 * cannot be read, it is any other protocol: addresses alone. */
static enum flowhash_kind fh_icmp(uint8_t proto, const uint8_t *p, size_t len,
				  struct flowhash_tuple *t)
{
	struct flowhash_tuple in;
	enum flowhash_kind k;

	if (len < FH_ICMP_HLEN || !fh_icmp_error(proto, p[0]))
		return FLOWHASH_ADDRS;
	memset(&in, 0, sizeof(in));
	if (proto == FH_IP_ICMP)
		k = fh_ipv4(p + FH_ICMP_HLEN, len - FH_ICMP_HLEN, &in, true);
	else
		k = fh_ipv6(p + FH_ICMP_HLEN, len - FH_ICMP_HLEN, &in, true);
	if (k != FLOWHASH_PORTS && k != FLOWHASH_ADDRS)
		return FLOWHASH_ADDRS;
	*t = in;
	return k;
}

/* quoted: inside an ICMP error already, whose own ICMP is not looked into. */
static enum flowhash_kind fh_transport(uint8_t proto, const uint8_t *p, size_t len,
				       struct flowhash_tuple *t, bool quoted)
{
	switch (proto) {
	case FH_IP_TCP:
	case FH_IP_UDP:
	case FH_IP_SCTP:
	case FH_IP_DCCP:
	case FH_IP_UDPLITE:
		if (len < FH_PORTS_LEN)
			return FLOWHASH_PARTIAL;
		t->proto = proto;
		t->sport = fh_get16(p);
		t->dport = fh_get16(p + 2);
		return FLOWHASH_PORTS;
	case FH_IP_ICMP:
	case FH_IP_ICMPV6:
		return quoted ? FLOWHASH_ADDRS : fh_icmp(proto, p, len, t);
	default:
		return FLOWHASH_ADDRS;
	}
}

/* ------------------------------------------------------------------ */
/* IP                                                                   */

static enum flowhash_kind fh_ipv4(const uint8_t *p, size_t len, struct flowhash_tuple *t,
				  bool quoted)
{
	size_t hlen;

	if (len < FH_IPV4_HLEN || p[0] >> 4 != 4 || (p[0] & 0x0f) < 5)
		return FLOWHASH_NOT_IP;
	t->alen = 4;
	memcpy(t->src, p + 12, 4);
	memcpy(t->dst, p + 16, 4);
	/* More fragments, or an offset: only the first has ports, so none
	 * of them use them. */
	if (fh_get16(p + 6) & 0x3fff)
		return FLOWHASH_ADDRS;
	hlen = (size_t)(p[0] & 0x0f) * 4;
	if (hlen > len)
		hlen = len;
	return fh_transport(p[9], p + hlen, len - hlen, t, quoted);
}

static bool fh_ipv6_ext(uint8_t nh)
{
	return nh == FH_IP6_HOPOPTS || nh == FH_IP6_ROUTING || nh == FH_IP6_FRAGMENT ||
	       nh == FH_IP6_AH || nh == FH_IP6_DSTOPTS || nh == FH_IP6_HIP || nh == FH_IP6_SHIM6;
}

/* The length of the extension header at p (at least 2 bytes there), or 0
 * for a fragment that is not the whole datagram; 8 for an atomic one. */
static size_t fh_ipv6_ext_len(uint8_t nh, const uint8_t *p, size_t len)
{
	if (nh == FH_IP6_FRAGMENT) /* offset (13 bits), 2 reserved, M */
		return len >= 4 && !(fh_get16(p + 2) & 0xfff9) ? 8 : 0;
	if (nh == FH_IP6_AH)
		return ((size_t)p[1] + 2) * 4;
	return ((size_t)p[1] + 1) * 8;
}

static enum flowhash_kind fh_ipv6(const uint8_t *p, size_t len, struct flowhash_tuple *t,
				  bool quoted)
{
	size_t off = FH_IPV6_HLEN, ext;
	uint8_t nh;

	if (len < FH_IPV6_HLEN || p[0] >> 4 != 6)
		return FLOWHASH_NOT_IP;
	t->alen = 16;
	memcpy(t->src, p + 8, 16);
	memcpy(t->dst, p + 24, 16);
	nh = p[6];
	for (unsigned i = 0; fh_ipv6_ext(nh); i++) {
		if (i == FLOWHASH_EXT_MAX || len - off < 2)
			return FLOWHASH_PARTIAL;
		if (nh == FH_IP6_FRAGMENT && len - off < 4)
			return FLOWHASH_PARTIAL;
		ext = fh_ipv6_ext_len(nh, p + off, len - off);
		if (!ext)
			return FLOWHASH_ADDRS;
		nh = p[off];
		off += ext < len - off ? ext : len - off;
	}
	return fh_transport(nh, p + off, len - off, t, quoted);
}

static enum flowhash_kind fh_ip(const uint8_t *p, size_t len, struct flowhash_tuple *t)
{
	if (len < 1)
		return FLOWHASH_NOT_IP;
	if (p[0] >> 4 == 4)
		return fh_ipv4(p, len, t, false);
	if (p[0] >> 4 == 6)
		return fh_ipv6(p, len, t, false);
	return FLOWHASH_NOT_IP;
}

/* ------------------------------------------------------------------ */
/* Link layers                                                          */

static bool fh_vlan(uint16_t type)
{
	return type == FH_ETH_8021Q || type == FH_ETH_8021AD || type == FH_ETH_QINQ_OLD;
}

/* p: what follows an EtherType field holding type. */
static enum flowhash_kind fh_ethertype(uint16_t type, const uint8_t *p, size_t len,
				       struct flowhash_tuple *t)
{
	for (unsigned tags = 0; fh_vlan(type); tags++) {
		if (tags == FLOWHASH_VLAN_MAX || len < FH_VLAN_HLEN)
			return FLOWHASH_NOT_IP;
		type = fh_get16(p + 2); /* after the tag's TCI */
		p += FH_VLAN_HLEN;
		len -= FH_VLAN_HLEN;
	}
	if (type == FH_ETH_IPV4)
		return fh_ipv4(p, len, t, false);
	if (type == FH_ETH_IPV6)
		return fh_ipv6(p, len, t, false);
	return FLOWHASH_NOT_IP;
}

enum flowhash_kind flowhash_parse(uint32_t linktype, const uint8_t *data, size_t caplen,
				  struct flowhash_tuple *t)
{
	memset(t, 0, sizeof(*t));
	if (!data)
		return FLOWHASH_NOT_IP;
	switch (linktype) {
	case FH_LT_RAW:
	case FH_LT_RAW_OLD:
	case FH_LT_IPV4:
	case FH_LT_IPV6:
		return fh_ip(data, caplen, t);
	case FH_LT_NULL:
	case FH_LT_LOOP: /* a 4-byte address family, in either byte order */
		if (caplen < FH_LOOP_HLEN)
			return FLOWHASH_NOT_IP;
		return fh_ip(data + FH_LOOP_HLEN, caplen - FH_LOOP_HLEN, t);
	case FH_LT_ETHERNET:
		if (caplen < FH_ETH_HLEN)
			return FLOWHASH_NOT_IP;
		return fh_ethertype(fh_get16(data + 12), data + FH_ETH_HLEN, caplen - FH_ETH_HLEN, t);
	case FH_LT_SLL:
		if (caplen < FH_SLL_HLEN)
			return FLOWHASH_NOT_IP;
		return fh_ethertype(fh_get16(data + 14), data + FH_SLL_HLEN, caplen - FH_SLL_HLEN, t);
	case FH_LT_SLL2:
		if (caplen < FH_SLL2_HLEN)
			return FLOWHASH_NOT_IP;
		return fh_ethertype(fh_get16(data), data + FH_SLL2_HLEN, caplen - FH_SLL2_HLEN, t);
	default:
		return FLOWHASH_NOT_IP;
	}
}

/* ------------------------------------------------------------------ */
/* Hashing                                                              */

#define FH_FNV_OFFSET 0xcbf29ce484222325ull
#define FH_FNV_PRIME 0x100000001b3ull
#define FH_GOLDEN 0x9e3779b97f4a7c15ull

/* MurmurHash3's finaliser: every input bit reaches every output bit, which
 * FNV-1a alone does poorly for the low bits the buckets use. */
static uint64_t fh_mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return k;
}

static uint64_t fh_fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= FH_FNV_PRIME;
	}
	return h;
}

/* The key hashed: alen, the lower address, the higher one, and with ports
 * the protocol, the lower endpoint's port and the higher's (big-endian).
 * Lower: by address, then by port; so both directions make the same key. */
uint64_t flowhash_hash(enum flowhash_kind kind, const struct flowhash_tuple *t, bool addrs_only)
{
	bool ports = kind == FLOWHASH_PORTS && !addrs_only;
	const uint8_t *a = t->src, *b = t->dst;
	uint16_t pa = t->sport, pb = t->dport;
	uint8_t key[1 + 16 + 16 + 1 + 4];
	size_t n = 0;
	int c;

	if (kind == FLOWHASH_NOT_IP || (t->alen != 4 && t->alen != 16))
		return fh_mix(FH_FNV_OFFSET);
	c = memcmp(a, b, t->alen);
	if (c > 0 || (c == 0 && ports && pa > pb)) {
		a = t->dst;
		b = t->src;
		pa = t->dport;
		pb = t->sport;
	}
	key[n++] = t->alen;
	memcpy(key + n, a, t->alen);
	n += t->alen;
	memcpy(key + n, b, t->alen);
	n += t->alen;
	if (ports) {
		key[n++] = t->proto;
		key[n++] = (uint8_t)(pa >> 8);
		key[n++] = (uint8_t)pa;
		key[n++] = (uint8_t)(pb >> 8);
		key[n++] = (uint8_t)pb;
	}
	return fh_mix(fh_fnv(FH_FNV_OFFSET, key, n));
}

uint64_t flowhash_packet(uint32_t linktype, const uint8_t *data, size_t caplen, bool addrs_only,
			 enum flowhash_kind *kind)
{
	struct flowhash_tuple t;

	*kind = flowhash_parse(linktype, data, caplen, &t);
	return flowhash_hash(*kind, &t, addrs_only);
}

/* ------------------------------------------------------------------ */
/* Buckets                                                              */

uint32_t flowhash_bucket(uint64_t hash, uint32_t n)
{
	uint64_t b = 0;
	double next = 0;

	if (n <= 1)
		return 0;
	/* Lamping and Veach, "A Fast, Minimal Memory, Consistent Hash
	 * Algorithm": jump forward while the next jump stays below n. */
	for (;;) {
		hash = hash * 2862933555777941757ull + 1;
		next = (double)(b + 1) * ((double)(1ull << 31) / (double)((hash >> 33) + 1));
		if (next >= (double)n)
			return (uint32_t)b;
		b = (uint64_t)next;
	}
}

uint32_t flowhash_bucket_alive(uint64_t hash, uint32_t n, const bool *dead)
{
	uint32_t home = flowhash_bucket(hash, n), b;

	if (!dead[home])
		return home;
	/* Draws uniform over all n find a living bucket in n / living draws
	 * on average, and spread the dead one's flows evenly. */
	for (uint64_t i = 1; i <= FH_REDRAWS; i++) {
		b = flowhash_bucket(fh_mix(hash + i * FH_GOLDEN), n);
		if (!dead[b])
			return b;
	}
	for (uint32_t i = 1; i < n; i++) { /* nearly all dead: the next living */
		b = (uint32_t)((home + (uint64_t)i) % n);
		if (!dead[b])
			return b;
	}
	return home;
}
