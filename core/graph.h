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
#include "loop.h"

struct pp_loop;

enum node_state { NODE_NEW, NODE_OPEN, NODE_RUNNING, NODE_STOPPING, NODE_FINISHED, NODE_CLOSED };

struct node_counter {
	char *name;
	enum pp_counter_kind kind;
	bool is_drop;
	bool hide_zero; /* host-made: shown once it counts something */
	pp_counter value;
	struct node_counter *next;
};

/* The keys every node has, read by the host (pp_core_options). */
struct node_core {
	char *plugin;
	struct pp_list input;
	bool thread;
	int64_t queue; /* batches */
};

extern const struct pp_option pp_core_options[];

struct worker;

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
	enum node_state st; /* written by the main thread only */
	bool failed;
	struct pp_graph *graph;
	struct pp_loop *loop; /* the loop its callbacks run on */
	struct node_core core;
	struct worker *worker; /* NULL: the main loop */
	uint32_t queued_batches; /* cross-thread batches waiting (atomic) */
	pp_counter queued_packets; /* ... and the packets in them (atomic) */
	pp_counter *queue_full;
	/* A wait for queues downstream (host->downstream_wait, worker.c).
	 * wait_armed: set by the node's thread, claimed (exchanged to 0) by
	 * whichever thread drains a queue first, which then posts the wake.
	 * The rest belongs to the node's thread. */
	int wait_armed;
	int busy; /* host->set_busy(); written by the node's thread (atomic) */
	bool wait_pending; /* the wake will come: fn not yet called */
	struct pp_post wake; /* the wake's message: posting cannot fail */
	int wake_posted; /* wake is in the mailbox (atomic; run_wake clears) */
	pp_timer_fn wait_fn;
	void *wait_arg;
	pp_counter *paused; /* waits begun; NULL: no queue ahead to wait for */
	/* Batches a threaded node leaves in its queue while a node ahead
	 * refuses, in order, and a stop that waits for them (its thread's). */
	struct batch_msg *held, **held_tail;
	bool stop_held;
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
/* Count a batch into n (atomic: any thread may). */
void pp_node_count_in(struct pp_node *n, uint64_t packets, uint64_t bytes);
/* Run n's process() on the calling thread, its own; input already counted. */
void pp_node_process(struct pp_node *n, struct pp_batch *b);
/* Run n's stop() on the calling thread, its own, and report. */
void pp_node_stop_here(struct pp_node *n);
/* n failed (from any thread): exit status 1, orderly shutdown. */
void pp_node_fail(struct pp_node *n, int rc, const char *what);
/* Drops of batches a failed or closed node could not take. */
pp_counter *pp_node_failed_counter(struct pp_node *n);
/* Packets the plugin holds plus those queued for its thread. */
uint64_t pp_node_held(const struct pp_node *n);
void pp_node_finished(struct pp_node *n, int status);
pp_counter *pp_node_counter(struct pp_node *n, const char *name, enum pp_counter_kind kind,
			    bool is_drop);
/* A total the host counts (a drop reason when is_drop); reported once it
 * is not zero. */
pp_counter *pp_node_host_counter(struct pp_node *n, const char *name, bool is_drop);

extern const struct pp_host pp_host_table;

#endif
