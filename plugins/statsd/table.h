/* The metrics a statsd node reports: one entry per (node, counter), found
 * by hash, kept in first-seen order so that datagrams list them in the
 * order the host walks them. An entry remembers the value last delivered,
 * which is what turns the host's running totals into statsd deltas. */
#ifndef PKTPIPE_STATSD_TABLE_H
#define PKTPIPE_STATSD_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include <pktpipe/plugin.h>

struct sd_entry {
	char *node; /* "" for a metric of the original's names */
	char *counter;
	char *name; /* the full metric name: PREFIX.NODE.COUNTER */
	size_t name_len;
	enum pp_counter_kind kind;
	uint64_t value; /* this flush's snapshot */
	uint64_t sent; /* the total statsd has had; deltas start from it */
	uint64_t seen; /* the flush that last set value */
};

struct sd_table {
	struct sd_entry *v;
	size_t count, cap;
	uint32_t *slots; /* index + 1 into v; 0 = empty */
	size_t nslots; /* a power of two, at least twice count */
};

/* The entry for (node, counter), created with the name prefix.node.counter
 * (prefix and node may be "") on first sight. NULL when out of memory. */
struct sd_entry *sd_table_get(struct sd_table *t, const char *prefix, const char *node,
			      const char *counter, enum pp_counter_kind kind);

void sd_table_free(struct sd_table *t);

#endif
