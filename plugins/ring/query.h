/* The ring's native query: its request format, parsed and written by pure
 * functions over bytes (no allocation, no I/O), shared by the ring plugin,
 * pktpipe-query and the fuzz target tests/fuzz/fuzz_query.c.
 *
 * A request is one ZeroMQ frame of ASCII text (README.md, "Native query"):
 *
 *     pktpipe-query 1\n
 *     key=value\n            zero or more, each key at most once
 *
 * Keys: filter (a BPF expression), after and before (absolute times: epoch
 * seconds with up to 9 decimals, or RFC 3339), last (a duration back from
 * the newest packet: 90s, 1.5min, 250ms; a bare number is seconds),
 * limit_packets and limit_bytes (decimal integers, at least 1), format
 * (pcap or pcapng). The final newline is optional; nothing else is
 * accepted: no blank lines, spaces around '=', CR, NUL or non-ASCII bytes.
 * A request that does not begin with "pktpipe-query " is not a native
 * query: the ring answers it with the original tool's legacy reply. */
#ifndef PKTPIPE_RING_QUERY_H
#define PKTPIPE_RING_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUERY_PREFIX "pktpipe-query " /* what makes a request native */
#define QUERY_VERSION "1"
#define QUERY_FILTER_MAX 8192 /* bytes of a BPF expression */
#define QUERY_REQUEST_MAX 65536 /* bytes of a request; larger ones never arrive */

enum query_format { QUERY_PCAP, QUERY_PCAPNG };

/* Which keys a request set. */
enum query_keys {
	QUERY_FILTER = 1u << 0,
	QUERY_AFTER = 1u << 1,
	QUERY_BEFORE = 1u << 2,
	QUERY_LAST = 1u << 3,
	QUERY_LIMIT_PACKETS = 1u << 4,
	QUERY_LIMIT_BYTES = 1u << 5,
	QUERY_FORMAT = 1u << 6,
};

struct query {
	unsigned set; /* enum query_keys */
	char filter[QUERY_FILTER_MAX + 1]; /* NUL-terminated; "" unless set */
	uint64_t after_ns, before_ns; /* ns since the epoch: ts >= after, ts < before */
	uint64_t last_ns; /* ts >= newest - last */
	uint64_t limit_packets, limit_bytes; /* newest matching packets kept */
	int format; /* enum query_format; QUERY_PCAP unless set */
};

/* 1: a native query, parsed into q; 0: not a native query (a legacy
 * request); -EINVAL: a malformed native query, the reason in err (always
 * NUL-terminated when errlen > 0). */
int query_parse(const void *req, size_t len, struct query *q, char *err, size_t errlen);

/* The canonical request for q (times as epoch seconds with 9 decimals) into
 * buf: its length, or 0 if it does not fit. query_parse() of it gives q. */
size_t query_write(const struct query *q, char *buf, size_t size);

/* Values, as the request takes them (text of n bytes, no NUL needed);
 * 0 or -EINVAL with the reason in err. */
int query_time(const char *s, size_t n, uint64_t *ns, char *err, size_t errlen);
int query_duration(const char *s, size_t n, uint64_t *ns, char *err, size_t errlen);
int query_count(const char *s, size_t n, uint64_t *v, char *err, size_t errlen);

#endif
