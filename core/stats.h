/* Reporting the counters: --stats-json, the exit summary, the accounting
 * check and the walk statsd uses. */
#ifndef PKTPIPE_CORE_STATS_H
#define PKTPIPE_CORE_STATS_H

#include <pktpipe/plugin.h>

struct pp_graph;

/* Where --stats-json writes; NULL: nowhere. */
extern const char *pp_stats_json_path;

/* Write the JSON object atomically (temporary file, then rename). */
int pp_stats_write_json(const struct pp_graph *g, const char *path);
/* At exit: the JSON file and a one-line-per-node summary on stderr. */
void pp_stats_final(const struct pp_graph *g);
/* packets_in = packets_out + dropped + held for every node; logs each
 * node where it does not hold. */
bool pp_stats_balanced(const struct pp_graph *g);
void pp_stats_foreach(const struct pp_graph *g, pp_stat_fn fn, void *arg);

#endif
