/* A symmetric flow hash over captured packets, to shard traffic so that
 * every flow, both directions, lands whole on one receiver (zmq-out's
 * `shard`). Pure functions over bytes: no I/O, no allocation, no host.
 *
 * The input is network traffic: every header is checked against the
 * captured length before it is read, loops are bounded, and lengths the
 * packet claims (IP total length, payload length) are never trusted; only
 * caplen bounds the walk. The rules are those of the zmq-out README
 * ("Sharding by flow"):
 *
 *   - link layers: raw IP (LINKTYPE 101, 12, 228, 229: the version nibble
 *     decides), Ethernet (1) with up to FLOWHASH_VLAN_MAX VLAN tags (802.1Q
 *     0x8100, 802.1ad 0x88a8, old QinQ 0x9100), Linux cooked SLL (113) and
 *     SLL2 (276) (VLAN tags there too), BSD loopback (0, 108);
 *   - IPv4 and IPv6; IPv6 extension headers (hop-by-hop, routing,
 *     destination options, fragment, AH, HIP, shim6) are walked, at most
 *     FLOWHASH_EXT_MAX of them;
 *   - TCP, UDP, SCTP, DCCP and UDP-Lite: addresses, protocol and ports;
 *   - fragments (first, middle and last alike: only the first has ports)
 *     and every other protocol: the two addresses alone, so that all
 *     fragments of a datagram land together;
 *   - ICMP and ICMPv6 errors (unreachable, time exceeded, parameter
 *     problem, redirect, source quench, packet too big): the flow of the
 *     packet they quote, so an error lands with the flow it is about.
 */
#ifndef PKTPIPE_PLUGINS_LIB_FLOWHASH_H
#define PKTPIPE_PLUGINS_LIB_FLOWHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FLOWHASH_VLAN_MAX 8 /* VLAN tags walked before giving up */
#define FLOWHASH_EXT_MAX 16 /* IPv6 extension headers walked before giving up */

/* How far a packet was understood. */
enum flowhash_kind {
	FLOWHASH_PORTS, /* addresses, protocol and ports */
	FLOWHASH_ADDRS, /* addresses alone, by rule: a fragment, another protocol */
	FLOWHASH_PARTIAL, /* addresses alone, as the ports were out of reach
			     (truncated capture, too many extension headers) */
	FLOWHASH_NOT_IP, /* no IPv4 or IPv6 header found: nothing to hash */
};

/* The flow as parsed; src and dst as the packet has them. */
struct flowhash_tuple {
	uint8_t alen; /* 4, 16, or 0 (FLOWHASH_NOT_IP) */
	uint8_t proto; /* with FLOWHASH_PORTS */
	uint16_t sport, dport; /* with FLOWHASH_PORTS */
	uint8_t src[16], dst[16]; /* alen bytes */
};

/* Parse caplen bytes of a packet of that linktype. */
enum flowhash_kind flowhash_parse(uint32_t linktype, const uint8_t *data, size_t caplen,
				  struct flowhash_tuple *t);

/* The same value for both directions of a flow: FLOWHASH_PORTS hashes
 * addresses, protocol and ports, unless addrs_only; the other kinds hash the
 * addresses alone; FLOWHASH_NOT_IP hashes to a constant. */
uint64_t flowhash_hash(enum flowhash_kind kind, const struct flowhash_tuple *t, bool addrs_only);

/* Both steps. */
uint64_t flowhash_packet(uint32_t linktype, const uint8_t *data, size_t caplen, bool addrs_only,
			 enum flowhash_kind *kind);

/* Which of n buckets (n >= 1) a hash goes to: a jump consistent hash
 * (Lamping and Veach), so that growing n to n + 1 moves only a 1/(n + 1)
 * share of the flows, all of them to the new bucket. */
uint32_t flowhash_bucket(uint64_t hash, uint32_t n);

/* The bucket of a hash when some are down (dead[i] true): its own bucket
 * when that is alive; else one of the living, picked by the hash alone, so
 * a dead bucket's flows spread evenly over the living and the living keep
 * their own. All dead: its own bucket. */
uint32_t flowhash_bucket_alive(uint64_t hash, uint32_t n, const bool *dead);

#endif
