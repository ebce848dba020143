/* The graph: nodes built from ini sections, checked as a whole before any
 * node opens, then run on the loop.
 *
 * Node states only move forward:
 *   NEW -> OPEN -> RUNNING -> STOPPING -> FINISHED -> CLOSED
 * A node is stopped once all its inputs have FINISHED (sources: once the
 * run shuts down); a source may also finish by itself (end of file). The
 * run ends when every node has FINISHED, or the drain deadline passes. */
#ifndef PKTPIPE_CORE_GRAPH_H
#define PKTPIPE_CORE_GRAPH_H

#include <pktpipe/plugin.h>

#include "config.h"
#include "loader.h"

struct pp_loop;

enum node_state { NODE_NEW, NODE_OPEN, NODE_RUNNING, NODE_STOPPING, NODE_FINISHED, NODE_CLOSED };

struct node_counter {
	char *name;
	enum pp_counter_kind kind;
	bool is_drop;
	pp_counter value;
	struct node_counter *next;
};

struct pp_node {
	char *name;
	const char *conf_path;
	int line; /* of its section header */
	const struct pp_plugin *plugin;
	void *config;
	void *state;
	struct pp_node **inputs, **outputs;
	size_t ninputs, noutputs;
	struct pp_stats stats;
	struct node_counter *counters;
	pp_counter *failed_drops; /* batches reaching a failed node */
	enum node_state st;
	bool failed;
	struct pp_graph *graph;
	struct pp_loop *loop;
};

struct pp_graph {
	struct pp_node **nodes; /* in topological order, sources first */
	size_t count;
	struct pp_loop *loop;
	bool shutting_down;
	bool failed; /* exit status 1 */
	uint64_t drain_ns;
	struct pp_timer *drain_timer;
};

/* Build and check the graph of conf; every problem is printed as
 * FILE:LINE: message. -EINVAL when any was found. */
int pp_graph_build(const struct pp_conf *conf, struct pp_graph **out);
void pp_graph_free(struct pp_graph *g);

/* Open, start, run until done, stop and close. Returns the exit status:
 * 0, or 1 if a node failed. */
int pp_graph_run(struct pp_graph *g, struct pp_loop *loop);

/* Begin an orderly shutdown (SIGTERM, SIGINT). */
void pp_graph_shutdown(struct pp_graph *g);
/* SIGHUP: every node with reopen(). */
void pp_graph_reopen(struct pp_graph *g);

/* Host side of the pp_host calls. */
void pp_node_emit(struct pp_node *n, struct pp_batch *b);
void pp_node_finished(struct pp_node *n, int status);
pp_counter *pp_node_counter(struct pp_node *n, const char *name, enum pp_counter_kind kind,
			    bool is_drop);

extern const struct pp_host pp_host_table;

#endif
