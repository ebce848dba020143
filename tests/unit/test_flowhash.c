/* The flow hash (plugins/lib/flowhash.c): both directions alike, every
 * link layer it knows giving the same hash for the same IP packet, VLAN
 * tags, IPv6 extension headers, fragments (first and others alike), ICMP
 * errors joining the flow they quote, every truncation of a packet (each
 * prefix in a heap buffer of exactly its size, so the sanitizer build
 * catches any read past caplen), random bytes, and the buckets: even,
 * consistent, failover moving only a dead bucket's flows. The unit test
 * rule links only the core, so the source is included here. */
#include "../../plugins/lib/flowhash.c"

#include <stdlib.h>
#include <string.h>

#include <pktpipe/plugin.h>

#include "check.h"

#define BUF 512

/* ------------------------------------------------------------------ */
/* Packets                                                              */

struct flow {
	int v; /* 4 or 6 */
	uint8_t a[16], b[16];
	uint8_t proto;
	uint16_t pa, pb;
};

static const struct flow tcp4 = { 4, { 10, 0, 0, 1 }, { 192, 168, 7, 9 }, 6, 40000, 80 };
static const struct flow udp6 = {
	6,
	{ 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
	{ 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x99 },
	17,
	5353,
	53,
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* 8 bytes of transport: ports first, as TCP, UDP and SCTP have them. */
static size_t mk_ports(uint8_t *p, uint16_t src, uint16_t dst)
{
	memset(p, 0, 8);
	put16(p, src);
	put16(p + 2, dst);
	return 8;
}

/* An IPv4 header (ihl words) from src to dst; frag: the flags+offset field. */
static size_t mk_ipv4(uint8_t *p, const uint8_t *src, const uint8_t *dst, uint8_t proto,
		      uint16_t frag, unsigned ihl)
{
	memset(p, 0, ihl * 4);
	p[0] = (uint8_t)(0x40 | ihl);
	put16(p + 6, frag);
	p[8] = 64;
	p[9] = proto;
	memcpy(p + 12, src, 4);
	memcpy(p + 16, dst, 4);
	return ihl * 4;
}

static size_t mk_ipv6(uint8_t *p, const uint8_t *src, const uint8_t *dst, uint8_t nh)
{
	memset(p, 0, 40);
	p[0] = 0x60;
	p[6] = nh;
	p[7] = 64;
	memcpy(p + 8, src, 16);
	memcpy(p + 24, dst, 16);
	return 40;
}

/* The flow's packet, forwards or backwards (rev). */
static size_t mk_ip(uint8_t *p, const struct flow *f, bool rev)
{
	const uint8_t *s = rev ? f->b : f->a, *d = rev ? f->a : f->b;
	size_t n;

	n = f->v == 4 ? mk_ipv4(p, s, d, f->proto, 0x4000, 5) : mk_ipv6(p, s, d, f->proto);
	n += mk_ports(p + n, rev ? f->pb : f->pa, rev ? f->pa : f->pb);
	memset(p + n, 0xab, 12); /* payload */
	return n + 12;
}

/* Wrap len bytes of IP in a link layer: Ethernet with vlans tags of tpid. */
static size_t mk_eth(uint8_t *p, const uint8_t *ip, size_t len, int v, unsigned vlans,
		     uint16_t tpid)
{
	size_t n = 12;

	memset(p, 0x02, 12);
	for (unsigned i = 0; i < vlans; i++, n += 4) {
		put16(p + n, i == 0 ? tpid : 0x8100);
		put16(p + n + 2, (uint16_t)(100 + i));
	}
	put16(p + n, v == 4 ? 0x0800 : 0x86dd);
	memcpy(p + n + 2, ip, len);
	return n + 2 + len;
}

static size_t mk_sll(uint8_t *p, const uint8_t *ip, size_t len, int v, bool sll2)
{
	size_t hl = sll2 ? 20 : 16;

	memset(p, 0, hl);
	put16(p + (sll2 ? 0 : 14), v == 4 ? 0x0800 : 0x86dd);
	memcpy(p + hl, ip, len);
	return hl + len;
}

static uint64_t hash_of(uint32_t lt, const uint8_t *p, size_t len, enum flowhash_kind want)
{
	enum flowhash_kind kind;
	uint64_t h = flowhash_packet(lt, p, len, false, &kind);

	CHECK_EQ_INT(kind, want);
	return h;
}

/* ------------------------------------------------------------------ */
/* Flows                                                                */

TEST(symmetric_ipv4_tcp)
{
	uint8_t fwd[BUF], rev[BUF];
	size_t nf = mk_ip(fwd, &tcp4, false), nr = mk_ip(rev, &tcp4, true);
	struct flowhash_tuple t;

	CHECK_EQ_INT(flowhash_parse(101, fwd, nf, &t), FLOWHASH_PORTS);
	CHECK_EQ_INT(t.alen, 4);
	CHECK(memcmp(t.src, tcp4.a, 4) == 0 && memcmp(t.dst, tcp4.b, 4) == 0);
	CHECK_EQ_INT(t.proto, 6);
	CHECK_EQ_INT(t.sport, 40000);
	CHECK_EQ_INT(t.dport, 80);
	CHECK(hash_of(101, fwd, nf, FLOWHASH_PORTS) == hash_of(101, rev, nr, FLOWHASH_PORTS));
}

TEST(symmetric_ipv6_udp)
{
	uint8_t fwd[BUF], rev[BUF];
	size_t nf = mk_ip(fwd, &udp6, false), nr = mk_ip(rev, &udp6, true);
	struct flowhash_tuple t;

	CHECK_EQ_INT(flowhash_parse(101, rev, nr, &t), FLOWHASH_PORTS);
	CHECK_EQ_INT(t.alen, 16);
	CHECK(memcmp(t.src, udp6.b, 16) == 0 && memcmp(t.dst, udp6.a, 16) == 0);
	CHECK_EQ_INT(t.sport, 53);
	CHECK(hash_of(229, fwd, nf, FLOWHASH_PORTS) == hash_of(229, rev, nr, FLOWHASH_PORTS));
}

/* The same address both ways (loopback): the ports order the key. */
TEST(symmetric_same_address)
{
	struct flow f = tcp4;
	uint8_t fwd[BUF], rev[BUF];
	size_t nf, nr;

	memcpy(f.b, f.a, 4);
	nf = mk_ip(fwd, &f, false);
	nr = mk_ip(rev, &f, true);
	CHECK(hash_of(101, fwd, nf, FLOWHASH_PORTS) == hash_of(101, rev, nr, FLOWHASH_PORTS));
}

/* Any part of the tuple changed makes another flow (another hash); in
 * addresses mode, only the addresses count. */
TEST(tuple_parts_matter)
{
	struct flow f[5] = { tcp4, tcp4, tcp4, tcp4, tcp4 };
	uint8_t p[5][BUF];
	size_t n[5];
	enum flowhash_kind k;
	uint64_t h[5], addr0;

	f[1].pa++;
	f[2].pb++;
	f[3].proto = 17;
	f[4].a[3]++;
	for (int i = 0; i < 5; i++) {
		n[i] = mk_ip(p[i], &f[i], false);
		h[i] = hash_of(101, p[i], n[i], FLOWHASH_PORTS);
	}
	for (int i = 0; i < 5; i++)
		for (int j = i + 1; j < 5; j++)
			CHECK(h[i] != h[j]);
	addr0 = flowhash_packet(101, p[0], n[0], true, &k);
	for (int i = 1; i < 4; i++)
		CHECK(flowhash_packet(101, p[i], n[i], true, &k) == addr0);
	CHECK(flowhash_packet(101, p[4], n[4], true, &k) != addr0);
}

/* Other transports with ports; ESP, GRE, ICMP echo by addresses alone. */
TEST(protocols)
{
	static const uint8_t with_ports[] = { 6, 17, 33, 132, 136 };
	static const uint8_t without[] = { 47, 50, 1, 89 };
	struct flow f = tcp4;
	uint8_t p[BUF], q[BUF];
	size_t n, m;
	uint64_t addrs;

	f.proto = 47;
	n = mk_ip(p, &f, false);
	addrs = hash_of(101, p, n, FLOWHASH_ADDRS);
	for (size_t i = 0; i < sizeof(with_ports); i++) {
		f.proto = with_ports[i];
		n = mk_ip(p, &f, false);
		m = mk_ip(q, &f, true);
		CHECK(hash_of(101, p, n, FLOWHASH_PORTS) == hash_of(101, q, m, FLOWHASH_PORTS));
	}
	for (size_t i = 0; i < sizeof(without); i++) {
		f.proto = without[i];
		n = mk_ip(p, &f, false);
		p[n - 20] = 8; /* ICMP: an echo request, not an error */
		m = mk_ip(q, &f, true);
		q[m - 20] = 0;
		CHECK(hash_of(101, p, n, FLOWHASH_ADDRS) == addrs);
		CHECK(hash_of(101, q, m, FLOWHASH_ADDRS) == addrs);
	}
}

TEST(ipv4_header)
{
	uint8_t p[BUF];
	size_t n = mk_ip(p, &tcp4, false);
	uint8_t o[BUF];
	size_t no;
	uint64_t h = hash_of(101, p, n, FLOWHASH_PORTS);

	/* Options: the ports move with the header length. */
	no = mk_ipv4(o, tcp4.a, tcp4.b, 6, 0, 7);
	no += mk_ports(o + no, tcp4.pa, tcp4.pb);
	CHECK(hash_of(101, o, no, FLOWHASH_PORTS) == h);
	p[0] = 0x44; /* header length below 20 */
	hash_of(101, p, n, FLOWHASH_NOT_IP);
	p[0] = 0x55; /* version 5 */
	hash_of(101, p, n, FLOWHASH_NOT_IP);
	hash_of(228, p, n, FLOWHASH_NOT_IP);
	p[0] = 0x4f; /* 60 bytes of header, more than captured: ports out of reach */
	hash_of(101, p, 40, FLOWHASH_PARTIAL);
	p[9] = 47; /* ... but GRE goes by addresses anyway */
	hash_of(101, p, 40, FLOWHASH_ADDRS);
}

/* ------------------------------------------------------------------ */
/* Link layers                                                          */

TEST(link_layers_agree)
{
	const struct flow *flows[] = { &tcp4, &udp6 };

	for (int k = 0; k < 2; k++) {
		const struct flow *f = flows[k];
		uint8_t ip[BUF], p[BUF];
		size_t n = mk_ip(ip, f, k == 1), m;
		uint64_t h = hash_of(101, ip, n, FLOWHASH_PORTS);

		CHECK(hash_of(12, ip, n, FLOWHASH_PORTS) == h);
		CHECK(hash_of(f->v == 4 ? 228 : 229, ip, n, FLOWHASH_PORTS) == h);
		m = mk_eth(p, ip, n, f->v, 0, 0);
		CHECK(hash_of(1, p, m, FLOWHASH_PORTS) == h);
		m = mk_eth(p, ip, n, f->v, 1, 0x8100);
		CHECK(hash_of(1, p, m, FLOWHASH_PORTS) == h);
		m = mk_eth(p, ip, n, f->v, 2, 0x88a8); /* QinQ */
		CHECK(hash_of(1, p, m, FLOWHASH_PORTS) == h);
		m = mk_eth(p, ip, n, f->v, 2, 0x9100);
		CHECK(hash_of(1, p, m, FLOWHASH_PORTS) == h);
		m = mk_eth(p, ip, n, f->v, FLOWHASH_VLAN_MAX, 0x88a8);
		CHECK(hash_of(1, p, m, FLOWHASH_PORTS) == h);
		m = mk_sll(p, ip, n, f->v, false);
		CHECK(hash_of(113, p, m, FLOWHASH_PORTS) == h);
		m = mk_sll(p, ip, n, f->v, true);
		CHECK(hash_of(276, p, m, FLOWHASH_PORTS) == h);
		memset(p, 0, 4);
		memcpy(p + 4, ip, n);
		CHECK(hash_of(0, p, n + 4, FLOWHASH_PORTS) == h);
		CHECK(hash_of(108, p, n + 4, FLOWHASH_PORTS) == h);
	}
}

TEST(link_layers_refused)
{
	uint8_t ip[BUF], p[BUF];
	size_t n = mk_ip(ip, &tcp4, false), m;
	struct flowhash_tuple t;

	m = mk_eth(p, ip, n, 4, FLOWHASH_VLAN_MAX + 1, 0x8100); /* too many tags */
	hash_of(1, p, m, FLOWHASH_NOT_IP);
	m = mk_eth(p, ip, n, 4, 0, 0);
	put16(p + 12, 0x0806); /* ARP */
	hash_of(1, p, m, FLOWHASH_NOT_IP);
	put16(p + 12, 0x86dd); /* says IPv6, holds IPv4 */
	hash_of(1, p, m, FLOWHASH_NOT_IP);
	hash_of(147, ip, n, FLOWHASH_NOT_IP); /* a linktype it does not know */
	hash_of(239, ip, n, FLOWHASH_NOT_IP);
	hash_of(PP_LINKTYPE_FRAME, ip, n, FLOWHASH_NOT_IP);
	CHECK_EQ_INT(flowhash_parse(101, NULL, 0, &t), FLOWHASH_NOT_IP);
	CHECK_EQ_INT(t.alen, 0);
	/* Nothing to hash: one constant, whatever the bytes. */
	CHECK(hash_of(1, p, m, FLOWHASH_NOT_IP) == hash_of(147, ip, n, FLOWHASH_NOT_IP));
}

/* ------------------------------------------------------------------ */
/* Fragments                                                            */

/* First, middle and last fragments, both directions, and any other
 * protocol between the two hosts: one hash. */
TEST(ipv4_fragments)
{
	static const uint16_t frags[] = { 0x2000, 0x2000 | 185, 370, 0x6000 | 3 };
	uint8_t p[BUF], q[BUF];
	size_t n, m;
	struct flow gre = tcp4;
	uint64_t h;

	gre.proto = 47;
	n = mk_ip(p, &gre, true);
	h = hash_of(101, p, n, FLOWHASH_ADDRS);
	for (size_t i = 0; i < sizeof(frags) / sizeof(frags[0]); i++) {
		n = mk_ip(p, &tcp4, false);
		put16(p + 6, frags[i]);
		m = mk_ip(q, &tcp4, true);
		put16(q + 6, frags[i]);
		CHECK(hash_of(101, p, n, FLOWHASH_ADDRS) == h);
		CHECK(hash_of(101, q, m, FLOWHASH_ADDRS) == h);
		/* A middle fragment is payload: no ports to read, 20 bytes do. */
		CHECK(hash_of(101, p, 20, FLOWHASH_ADDRS) == h);
	}
	/* Don't-fragment alone is not a fragment. */
	n = mk_ip(p, &tcp4, false);
	put16(p + 6, 0x4000);
	hash_of(101, p, n, FLOWHASH_PORTS);
}

/* IPv6 with a fragment header, and other extension headers before it. */
static size_t mk_ipv6_frag(uint8_t *p, const struct flow *f, bool rev, uint16_t offm, bool hbh)
{
	size_t n = mk_ipv6(p, rev ? f->b : f->a, rev ? f->a : f->b, hbh ? 0 : 44);

	if (hbh) {
		memset(p + n, 0, 8);
		p[n] = 44;
		n += 8;
	}
	memset(p + n, 0, 8);
	p[n] = f->proto;
	put16(p + n + 2, offm);
	n += 8;
	return n + mk_ports(p + n, rev ? f->pb : f->pa, rev ? f->pa : f->pb);
}

TEST(ipv6_fragments)
{
	static const uint16_t frags[] = { 0x0001, 185 << 3 | 1, 370 << 3, 0x0007 };
	uint8_t p[BUF];
	struct flow esp = udp6;
	size_t n;
	uint64_t addrs, ports;

	esp.proto = 50;
	n = mk_ip(p, &esp, false);
	addrs = hash_of(101, p, n, FLOWHASH_ADDRS);
	n = mk_ip(p, &udp6, false);
	ports = hash_of(101, p, n, FLOWHASH_PORTS);
	for (size_t i = 0; i < sizeof(frags) / sizeof(frags[0]); i++) {
		for (int rev = 0; rev < 2; rev++) {
			n = mk_ipv6_frag(p, &udp6, rev, frags[i], false);
			CHECK(hash_of(229, p, n, FLOWHASH_ADDRS) == addrs);
			n = mk_ipv6_frag(p, &udp6, rev, frags[i], true);
			CHECK(hash_of(229, p, n, FLOWHASH_ADDRS) == addrs);
			CHECK(hash_of(229, p, 40 + 8 + 4, FLOWHASH_ADDRS) == addrs);
		}
	}
	/* An atomic fragment (offset 0, no more) holds the whole datagram. */
	n = mk_ipv6_frag(p, &udp6, true, 0, true);
	CHECK(hash_of(229, p, n, FLOWHASH_PORTS) == ports);
	n = mk_ipv6_frag(p, &udp6, true, 0x0006, false); /* reserved bits set */
	CHECK(hash_of(229, p, n, FLOWHASH_PORTS) == ports);
}

/* ------------------------------------------------------------------ */
/* IPv6 extension headers                                               */

/* Headers of the given next-header values, each len8 8-byte units (AH:
 * 4-byte units + 2), then the flow's transport. */
static size_t mk_ipv6_ext(uint8_t *p, const struct flow *f, bool rev, const uint8_t *ext,
			  size_t next, uint8_t len_field)
{
	size_t n = mk_ipv6(p, rev ? f->b : f->a, rev ? f->a : f->b, next ? ext[0] : f->proto);

	for (size_t i = 0; i < next; i++) {
		size_t hl = ext[i] == 51 ? ((size_t)len_field + 2) * 4 : ((size_t)len_field + 1) * 8;

		memset(p + n, 0x5a, hl);
		p[n] = i + 1 < next ? ext[i + 1] : f->proto;
		p[n + 1] = len_field;
		n += hl;
	}
	return n + mk_ports(p + n, rev ? f->pb : f->pa, rev ? f->pa : f->pb);
}

TEST(ipv6_extension_headers)
{
	static const uint8_t chain[] = { 0, 60, 43, 51, 139, 140, 60 };
	uint8_t p[1024], q[1024];
	uint8_t many[FLOWHASH_EXT_MAX + 1];
	size_t n, m;
	uint64_t h;

	n = mk_ip(p, &udp6, false);
	h = hash_of(229, p, n, FLOWHASH_PORTS);
	for (size_t len = 1; len <= sizeof(chain); len++) {
		n = mk_ipv6_ext(p, &udp6, false, chain, len, 1);
		m = mk_ipv6_ext(q, &udp6, true, chain, len, 3);
		CHECK(hash_of(229, p, n, FLOWHASH_PORTS) == h);
		CHECK(hash_of(229, q, m, FLOWHASH_PORTS) == h);
		hash_of(229, p, n - 8 + 3, FLOWHASH_PARTIAL); /* 3 bytes of ports */
	}
	memset(many, 60, sizeof(many));
	n = mk_ipv6_ext(p, &udp6, false, many, FLOWHASH_EXT_MAX, 0);
	CHECK(hash_of(229, p, n, FLOWHASH_PORTS) == h);
	n = mk_ipv6_ext(p, &udp6, false, many, FLOWHASH_EXT_MAX + 1, 0);
	hash_of(229, p, n, FLOWHASH_PARTIAL);
	/* A header longer than the capture: what follows is out of reach. */
	n = mk_ipv6_ext(p, &udp6, false, chain, 1, 1);
	p[41] = 200;
	hash_of(229, p, n, FLOWHASH_PARTIAL);
}

/* ------------------------------------------------------------------ */
/* ICMP errors join the flow they quote                                 */

static size_t mk_icmp_error(uint8_t *p, const struct flow *f, bool rev, uint8_t type,
			    const uint8_t *router, size_t quote)
{
	uint8_t inner[BUF];
	size_t in = mk_ip(inner, f, rev), n;
	const uint8_t *to = rev ? f->b : f->a; /* back to the quoted packet's source */

	if (f->v == 4)
		n = mk_ipv4(p, router, to, 1, 0, 5);
	else
		n = mk_ipv6(p, router, to, 58);
	memset(p + n, 0, 8);
	p[n] = type;
	n += 8;
	quote = quote < in ? quote : in;
	memcpy(p + n, inner, quote);
	return n + quote;
}

TEST(icmp_errors)
{
	static const uint8_t router[16] = { 172, 16, 0, 1, 0xfe, 0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
	static const uint8_t errors4[] = { 3, 4, 5, 11, 12 };
	static const uint8_t errors6[] = { 1, 2, 3, 4 };
	uint8_t p[BUF];
	size_t n;
	uint64_t h4, h6;

	n = mk_ip(p, &tcp4, false);
	h4 = hash_of(101, p, n, FLOWHASH_PORTS);
	n = mk_ip(p, &udp6, false);
	h6 = hash_of(101, p, n, FLOWHASH_PORTS);
	for (size_t i = 0; i < sizeof(errors4); i++) {
		for (int rev = 0; rev < 2; rev++) {
			n = mk_icmp_error(p, &tcp4, rev, errors4[i], router, 28);
			CHECK(hash_of(101, p, n, FLOWHASH_PORTS) == h4);
		}
	}
	for (size_t i = 0; i < sizeof(errors6); i++) {
		n = mk_icmp_error(p, &udp6, i % 2, errors6[i], router, BUF);
		CHECK(hash_of(101, p, n, FLOWHASH_PORTS) == h6);
	}
}

/* Echo is no error; an error quoting too little, or quoting an error, is
 * any other ICMP packet: by the outer addresses. */
TEST(icmp_not_joining)
{
	static const uint8_t router[4] = { 172, 16, 0, 1 };
	static const uint8_t far[4] = { 203, 0, 113, 5 };
	uint8_t p[BUF], outer[BUF];
	size_t n, m;
	uint64_t h4, outer4;

	n = mk_ip(p, &tcp4, false);
	h4 = hash_of(101, p, n, FLOWHASH_PORTS);
	n = mk_icmp_error(p, &tcp4, false, 8, router, 28);
	outer4 = hash_of(101, p, n, FLOWHASH_ADDRS);
	CHECK(outer4 != h4);
	n = mk_icmp_error(p, &tcp4, false, 3, router, 23);
	CHECK(hash_of(101, p, n, FLOWHASH_ADDRS) == outer4);
	n = mk_icmp_error(p, &tcp4, false, 3, router, 19);
	CHECK(hash_of(101, p, n, FLOWHASH_ADDRS) == outer4);
	/* A quoted fragment: its addresses, as the fragments went. */
	n = mk_icmp_error(p, &tcp4, true, 11, router, 28);
	put16(p + 28 + 6, 0x2000);
	CHECK(hash_of(101, p, n, FLOWHASH_ADDRS) ==
	      flowhash_hash(FLOWHASH_ADDRS, &(struct flowhash_tuple){ .alen = 4, .src = { 10, 0, 0, 1 },
								  .dst = { 192, 168, 7, 9 } },
			    false));
	/* An error quoting an error: the quote's ICMP is not looked into,
	 * its addresses are those of the echo above. */
	n = mk_icmp_error(p, &tcp4, false, 3, router, 28);
	m = mk_ipv4(outer, far, router, 1, 0, 5);
	memset(outer + m, 0, 8);
	outer[m] = 3;
	memcpy(outer + m + 8, p, n);
	CHECK(hash_of(101, outer, m + 8 + n, FLOWHASH_ADDRS) == outer4);
}

/* ------------------------------------------------------------------ */
/* Truncation and garbage                                               */

/* Every prefix of a packet, copied to a heap buffer of exactly its size:
 * the kind only ever improves with length, and nothing reads beyond. */
static void every_prefix(uint32_t lt, const uint8_t *p, size_t len, size_t ip_at, size_t ports_at)
{
	uint64_t full = hash_of(lt, p, len, FLOWHASH_PORTS), addrs;
	enum flowhash_kind k;

	addrs = flowhash_packet(lt, p, len, true, &k);
	for (size_t cut = 0; cut <= len; cut++) {
		uint8_t *b = malloc(cut ? cut : 1);
		enum flowhash_kind kind, want;
		uint64_t h;

		memcpy(b, p, cut);
		h = flowhash_packet(lt, b, cut, false, &kind);
		want = cut < ip_at ? FLOWHASH_NOT_IP
				   : cut < ports_at + 4 ? FLOWHASH_PARTIAL : FLOWHASH_PORTS;
		CHECK_EQ_INT(kind, want);
		if (kind == FLOWHASH_PORTS)
			CHECK(h == full);
		if (kind == FLOWHASH_PARTIAL) /* by addresses, as fragments go */
			CHECK(h == addrs);
		free(b);
	}
}

TEST(truncation)
{
	uint8_t ip[BUF], p[BUF];
	size_t n = mk_ip(ip, &tcp4, false), m;
	static const uint8_t chain[] = { 0, 44, 60 };

	every_prefix(101, ip, n, 20, 20);
	m = mk_eth(p, ip, n, 4, 2, 0x88a8);
	every_prefix(1, p, m, 22 + 20, 22 + 20);
	n = mk_ipv6_ext(ip, &udp6, false, chain, 3, 0);
	ip[40 + 8 + 2] = 0; /* the fragment header: atomic */
	ip[40 + 8 + 3] = 0;
	every_prefix(229, ip, n, 40, 64);
	m = mk_sll(p, ip, n, 6, true);
	every_prefix(276, p, m, 60, 84);
}

static uint32_t rnd_state = 12345;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/* Random bytes behind plausible headers, every linktype, exact buffers. */
TEST(garbage)
{
	static const uint32_t lts[] = { 0, 1, 12, 101, 108, 113, 228, 229, 276, 147 };
	int seen[4] = { 0 };

	for (int i = 0; i < 40000; i++) {
		size_t len = rnd() % 160;
		uint8_t *b = malloc(len ? len : 1);
		uint32_t lt = lts[rnd() % (sizeof(lts) / sizeof(lts[0]))];
		enum flowhash_kind kind;

		for (size_t j = 0; j < len; j++)
			b[j] = (uint8_t)rnd();
		if (len > 20 && rnd() % 2) { /* steer towards IP */
			size_t at = lt == 1 ? 14 : lt == 113 ? 16 : lt == 276 ? 20 : lt == 0 || lt == 108 ? 4 : 0;

			if (lt == 1)
				put16(b + 12, rnd() % 2 ? 0x0800 : 0x8100);
			if (at < len)
				b[at] = (uint8_t)((rnd() % 2 ? 0x45 : 0x60) | (b[at] & 0x0f));
		}
		flowhash_packet(lt, b, len, rnd() % 2, &kind);
		CHECK(kind <= FLOWHASH_NOT_IP);
		seen[kind]++;
		free(b);
	}
	CHECK(seen[FLOWHASH_PORTS] && seen[FLOWHASH_ADDRS] && seen[FLOWHASH_PARTIAL]);
}

/* ------------------------------------------------------------------ */
/* Buckets                                                              */

static uint64_t mix_i(uint64_t i)
{
	return fh_mix(i * 0x9e3779b97f4a7c15ull + 1);
}

TEST(buckets_even_and_consistent)
{
	enum { N = 60000 };
	uint32_t count[8] = { 0 };

	for (uint64_t i = 0; i < N; i++) {
		uint32_t b3 = flowhash_bucket(mix_i(i), 3), b4 = flowhash_bucket(mix_i(i), 4);

		CHECK(b3 < 3);
		count[b3]++;
		/* Growing 3 -> 4 moves flows only to the new bucket. */
		CHECK(b4 == b3 || b4 == 3);
		CHECK_EQ_INT(flowhash_bucket(mix_i(i), 1), 0);
		CHECK(flowhash_bucket(mix_i(i), 64) < 64);
	}
	for (int b = 0; b < 3; b++)
		CHECK(count[b] > N / 3 - N / 50 && count[b] < N / 3 + N / 50);
	CHECK_EQ_INT(flowhash_bucket(12345, 0), 0);
	CHECK(flowhash_bucket(~0ull, UINT32_MAX) < UINT32_MAX);
}

TEST(buckets_failover)
{
	enum { N = 60000 };
	bool dead[5] = { false, true, false, false, false };
	bool all[3] = { true, true, true };
	uint32_t count[5] = { 0 };

	for (uint64_t i = 0; i < N; i++) {
		uint64_t h = mix_i(i);
		uint32_t home = flowhash_bucket(h, 5), to = flowhash_bucket_alive(h, 5, dead);

		CHECK(!dead[to]);
		if (home != 1)
			CHECK_EQ_INT(to, home); /* the living keep their flows */
		else
			count[to]++;
		CHECK_EQ_INT(flowhash_bucket_alive(h, 3, all), flowhash_bucket(h, 3));
	}
	/* The dead one's fifth spreads evenly over the four others. */
	for (int b = 0; b < 5; b++)
		if (b != 1)
			CHECK(count[b] > N / 20 - N / 100 && count[b] < N / 20 + N / 100);
	/* Nearly all dead: the one alive takes everything. */
	{
		bool most[64];

		memset(most, 1, sizeof(most));
		most[37] = false;
		for (uint64_t i = 0; i < 2000; i++)
			CHECK_EQ_INT(flowhash_bucket_alive(mix_i(i), 64, most), 37);
	}
}

CHECK_MAIN("flowhash", TEST_ENTRY(symmetric_ipv4_tcp), TEST_ENTRY(symmetric_ipv6_udp),
	   TEST_ENTRY(symmetric_same_address), TEST_ENTRY(tuple_parts_matter), TEST_ENTRY(protocols),
	   TEST_ENTRY(ipv4_header), TEST_ENTRY(link_layers_agree), TEST_ENTRY(link_layers_refused),
	   TEST_ENTRY(ipv4_fragments), TEST_ENTRY(ipv6_fragments),
	   TEST_ENTRY(ipv6_extension_headers), TEST_ENTRY(icmp_errors), TEST_ENTRY(icmp_not_joining),
	   TEST_ENTRY(truncation),
	   TEST_ENTRY(garbage), TEST_ENTRY(buckets_even_and_consistent),
	   TEST_ENTRY(buckets_failover))
