/* libFuzzer target for the ring's query parser (plugins/ring/query.c): the
 * bytes of a request, as they come from the network. Built outside the
 * Makefile with clang (tests/e2e/fuzz.sh does this):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -Iplugins/ring tests/fuzz/fuzz_query.c plugins/ring/query.c -o build/fuzz/fuzz_query
 *   build/fuzz/fuzz_query -max_total_time=20 CORPUS_DIR tests/fuzz/seeds/query
 *
 * Seeds: tests/fuzz/seeds/query, requests as pktpipe-query and a python
 * client write them, malformed ones and legacy ones.
 *
 * Besides "no crash, no sanitizer report", it checks properties:
 *   - a request without the prefix is legacy (0), one with it is parsed (1)
 *     or refused (-EINVAL) with a reason;
 *   - a parsed query written canonically parses to the same query, and
 *     writing that again gives the same bytes;
 *   - the whole input as a time or a duration, when it parses, survives
 *     its canonical form (epoch seconds, nanoseconds) unchanged. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"

static struct query q1, q2;
static char buf1[QUERY_REQUEST_MAX + QUERY_FILTER_MAX], buf2[sizeof(buf1)];

static bool same_query(const struct query *a, const struct query *b)
{
	return a->set == b->set && strcmp(a->filter, b->filter) == 0 &&
	       a->after_ns == b->after_ns && a->before_ns == b->before_ns &&
	       a->last_ns == b->last_ns && a->limit_packets == b->limit_packets &&
	       a->limit_bytes == b->limit_bytes && a->format == b->format;
}

static void check_request(const uint8_t *data, size_t size)
{
	size_t plen = strlen(QUERY_PREFIX), len1, len2;
	char err[256];
	int rc = query_parse(data, size, &q1, err, sizeof(err));

	if (rc == 0) {
		if (size >= plen && memcmp(data, QUERY_PREFIX, plen) == 0)
			abort();
		return;
	}
	if (rc < 0) {
		if (rc != -EINVAL || !err[0] || memchr(err, '\0', sizeof(err)) == NULL)
			abort();
		return;
	}
	len1 = query_write(&q1, buf1, sizeof(buf1));
	if (rc != 1 || !len1 || query_parse(buf1, len1, &q2, err, sizeof(err)) != 1 ||
	    !same_query(&q1, &q2))
		abort();
	len2 = query_write(&q2, buf2, sizeof(buf2));
	if (len2 != len1 || memcmp(buf1, buf2, len1) != 0)
		abort();
}

static void check_values(const uint8_t *data, size_t size)
{
	char err[256], text[64];
	uint64_t v, again;
	int n;

	if (query_time((const char *)data, size, &v, err, sizeof(err)) == 0) {
		n = snprintf(text, sizeof(text), "%" PRIu64 ".%09" PRIu64, v / 1000000000u,
			     v % 1000000000u);
		if (query_time(text, (size_t)n, &again, err, sizeof(err)) != 0 || again != v)
			abort();
	}
	if (query_duration((const char *)data, size, &v, err, sizeof(err)) == 0) {
		n = snprintf(text, sizeof(text), "%" PRIu64 "ns", v);
		if (query_duration(text, (size_t)n, &again, err, sizeof(err)) != 0 || again != v)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_request(data, size);
	if (size < 64)
		check_values(data, size);
	return 0;
}
