/* Running a built graph: open, start, move batches, shut down in order.
 * Node states are moved by the main thread only (workers report to it
 * through its mailbox); other threads only read them. */
#include "graph.h"
#include "log.h"
#include "loop.h"
#include "packet.h"
#include "stats.h"
#include "worker.h"

#include <errno.h>
#include <string.h>

static void set_state(struct pp_node *n, enum node_state st)
{
	__atomic_store_n(&n->st, st, __ATOMIC_RELEASE);
}

static enum node_state get_state(const struct pp_node *n)
{
	return __atomic_load_n(&n->st, __ATOMIC_ACQUIRE);
}

void pp_node_fail(struct pp_node *n, int rc, const char *what)
{
	if (!pp_on_main_thread()) {
		__atomic_store_n(&n->failed, true, __ATOMIC_RELAXED);
		pp_report_failed(n, rc);
		return;
	}
	if (!n->graph->failed)
		pp_log(PP_LOG_ERROR, n->name, "%s failed: %s", what, strerror(-rc));
	n->failed = true;
	n->graph->failed = true;
	pp_graph_shutdown(n->graph);
}

/* Several threads may feed one node: the host's own counting of a node's
 * input is atomic. */
void pp_node_count_in(struct pp_node *n, uint64_t packets, uint64_t bytes)
{
	__atomic_fetch_add(&n->stats.packets_in, packets, __ATOMIC_RELAXED);
	__atomic_fetch_add(&n->stats.bytes_in, bytes, __ATOMIC_RELAXED);
}

pp_counter *pp_node_failed_counter(struct pp_node *n)
{
	return n->failed_drops;
}

uint64_t pp_node_held(const struct pp_node *n)
{
	return pp_counter_get(&n->stats.packets_held) + pp_counter_get(&n->queued_packets);
}

void pp_node_process(struct pp_node *to, struct pp_batch *b)
{
	enum node_state st = get_state(to);
	int rc;

	/* A failed or finished node takes nothing more; its input is counted
	 * as dropped so that nothing vanishes unaccounted. */
	if (__atomic_load_n(&to->failed, __ATOMIC_RELAXED) || st >= NODE_FINISHED ||
	    st < NODE_RUNNING) {
		__atomic_fetch_add(to->failed_drops, pp_batch_packets(b), __ATOMIC_RELAXED);
		return;
	}
	rc = to->plugin->process(to->state, b);
	if (rc < 0) {
		/* The ABI: a failing process() has accounted for none of it. */
		__atomic_fetch_add(to->failed_drops, pp_batch_packets(b), __ATOMIC_RELAXED);
		pp_node_fail(to, rc, "process");
	}
}

static void deliver(struct pp_node *to, struct pp_batch *b, uint64_t packets, uint64_t bytes)
{
	if (!pp_on_node_thread(to)) {
		pp_deliver_remote(to, b, packets, bytes);
		return;
	}
	pp_node_count_in(to, packets, bytes);
	pp_node_process(to, b);
}

/* The batch is walked once, for every output's counts as well. */
void pp_node_emit(struct pp_node *n, struct pp_batch *b)
{
	uint64_t packets, bytes;

	if (!b->count)
		return;
	pp_batch_totals(b, &packets, &bytes);
	pp_counter_add(&n->stats.packets_out, packets);
	pp_counter_add(&n->stats.bytes_out, bytes);
	for (size_t i = 0; i < n->noutputs; i++)
		deliver(n->outputs[i], b, packets, bytes);
}

/* ---- shutting down ---- */

static bool inputs_finished(const struct pp_node *n)
{
	for (size_t i = 0; i < n->ninputs; i++)
		if (n->inputs[i]->st < NODE_FINISHED)
			return false;
	return true;
}

static bool only_services_left(const struct pp_graph *g)
{
	for (size_t i = 0; i < g->count; i++) {
		const struct pp_node *n = g->nodes[i];

		if (n->st < NODE_FINISHED && (n->ninputs || n->noutputs))
			return false;
	}
	return true;
}

static bool all_finished(const struct pp_graph *g)
{
	for (size_t i = 0; i < g->count; i++)
		if (g->nodes[i]->st < NODE_FINISHED)
			return false;
	return true;
}

static bool due_to_stop(const struct pp_node *n)
{
	const struct pp_graph *g = n->graph;

	if (n->st != NODE_RUNNING)
		return false;
	if (n->ninputs)
		return inputs_finished(n);
	if (!n->noutputs) /* a service: reports until the last packet settled */
		return only_services_left(g);
	return g->shutting_down;
}

static void drain_expired(void *arg)
{
	struct pp_graph *g = arg;

	for (size_t i = 0; i < g->count; i++)
		if (g->nodes[i]->st < NODE_FINISHED && (g->nodes[i]->ninputs || g->nodes[i]->noutputs))
			pp_log(PP_LOG_ERROR, g->nodes[i]->name,
			       "still draining when the deadline passed; closing it anyway");
	/* Services (statsd) still get their last word, about what did settle. */
	for (size_t i = 0; i < g->count; i++) {
		struct pp_node *n = g->nodes[i];

		if (n->st == NODE_RUNNING && !n->ninputs && !n->noutputs && !n->worker) {
			set_state(n, NODE_STOPPING);
			pp_node_stop_here(n);
		}
	}
	g->failed = true;
	pp_loop_quit(g->loop);
}

/* Whoever stops first, a signal or a source at its end, starts the clock
 * that bounds how long draining may take. */
static void arm_drain(struct pp_graph *g)
{
	if (g->drain_timer || !g->loop || !g->drain_ns)
		return;
	g->drain_timer = pp_loop_timer_new(g->loop, g, drain_expired, g);
	if (g->drain_timer)
		pp_loop_timer_arm(g->drain_timer, g->drain_ns, 0);
}

void pp_node_stop_here(struct pp_node *n)
{
	int rc = n->plugin->stop ? n->plugin->stop(n->state) : 0;

	if (rc == -EINPROGRESS)
		return;
	if (rc < 0)
		pp_log(PP_LOG_ERROR, n->name, "stop failed: %s", strerror(-rc));
	pp_node_finished(n, rc);
}

static void stop_node(struct pp_node *n)
{
	set_state(n, NODE_STOPPING);
	arm_drain(n->graph);
	if (n->worker)
		pp_stop_remote(n);
	else
		pp_node_stop_here(n);
}

/* Stop whatever is due, in order; a node that finishes at once lets its
 * consumers stop in the same sweep, since they come later in the order. */
static void sweep(struct pp_graph *g)
{
	for (size_t i = 0; i < g->count; i++)
		if (due_to_stop(g->nodes[i]))
			stop_node(g->nodes[i]);
	if (all_finished(g) && g->loop)
		pp_loop_quit(g->loop);
}

void pp_node_finished(struct pp_node *n, int status)
{
	/* Finished on its own thread (stop() returned, or its input ended):
	 * a wake still on its way must not call the plugin any more, and one
	 * that said it was busy no longer holds its producers back. */
	if (pp_on_node_thread(n)) {
		n->wait_pending = false;
		pp_node_set_busy(n, false);
	}
	if (!pp_on_main_thread()) {
		pp_report_finished(n, status);
		return;
	}
	if (n->st >= NODE_FINISHED)
		return;
	if (status < 0) {
		n->failed = true;
		n->graph->failed = true;
	}
	set_state(n, NODE_FINISHED);
	sweep(n->graph);
}

void pp_graph_shutdown(struct pp_graph *g)
{
	if (g->shutting_down)
		return;
	g->shutting_down = true;
	arm_drain(g);
	sweep(g);
}

static void reopen_here(void *arg)
{
	struct pp_node *n = arg;

	if (get_state(n) == NODE_RUNNING)
		n->plugin->reopen(n->state);
}

void pp_graph_reopen(struct pp_graph *g)
{
	for (size_t i = 0; i < g->count; i++) {
		struct pp_node *n = g->nodes[i];

		if (!n->plugin->reopen || n->st != NODE_RUNNING)
			continue;
		if (n->worker)
			pp_loop_post(n->loop, reopen_here, n);
		else
			reopen_here(n);
	}
}

/* ---- the run ---- */

static int open_all(struct pp_graph *g)
{
	for (size_t i = 0; i < g->count; i++) {
		struct pp_node *n = g->nodes[i];
		int rc;

		if (!n->worker)
			n->loop = g->loop;
		n->failed_drops = pp_node_host_counter(n, "node-failed", true);
		if (!n->failed_drops)
			return -ENOMEM;
		rc = n->plugin->open(n, &pp_host_table, n->config, &n->state);
		if (rc < 0) {
			pp_log(PP_LOG_ERROR, n->name, "cannot open (plugin %s): %s", n->plugin->name,
			       strerror(-rc));
			return rc;
		}
		set_state(n, NODE_OPEN);
	}
	return 0;
}

/* Consumers start before their producers, so nothing is emitted into a
 * node that is not ready; worker threads start last, on started nodes. */
static int start_all(struct pp_graph *g)
{
	for (size_t i = g->count; i-- > 0;) {
		struct pp_node *n = g->nodes[i];
		int rc = n->plugin->start ? n->plugin->start(n->state) : 0;

		if (rc < 0) {
			pp_log(PP_LOG_ERROR, n->name, "cannot start: %s", strerror(-rc));
			return rc;
		}
		set_state(n, NODE_RUNNING);
	}
	return pp_workers_start(g);
}

/* Workers are joined first: close() runs with no other thread in the node. */
static void close_all(struct pp_graph *g)
{
	pp_workers_join(g);
	for (size_t i = 0; i < g->count; i++) {
		struct pp_node *n = g->nodes[i];

		if (n->st >= NODE_OPEN && n->st < NODE_CLOSED && n->plugin->close)
			n->plugin->close(n->state);
		/* What the plugin did not release (never stopped, or stopped
		 * by the deadline) goes with it. */
		if (n->loop)
			pp_loop_release_owner(n->loop, n);
		n->state = NULL;
		set_state(n, NODE_CLOSED);
	}
	if (g->drain_timer)
		pp_loop_timer_free(g->drain_timer);
	g->drain_timer = NULL;
	pp_workers_free(g);
}

int pp_graph_run(struct pp_graph *g, struct pp_loop *loop)
{
	int rc;

	g->loop = loop;
	rc = pp_workers_create(g);
	if (rc == 0)
		rc = open_all(g);
	if (rc == 0)
		rc = start_all(g);
	if (rc == 0) {
		sweep(g); /* a graph of services alone, or already finished */
		if (!all_finished(g))
			rc = pp_loop_run(loop);
		if (rc < 0)
			pp_log(PP_LOG_ERROR, NULL, "event loop: %s", strerror(-rc));
	}
	/* After close: a plugin may account there for what it still held. */
	close_all(g);
	pp_stats_final(g);
	g->loop = NULL;
	return (rc < 0 || g->failed || !pp_stats_balanced(g)) ? 1 : 0;
}
