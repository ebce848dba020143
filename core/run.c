/* Running a built graph: open, start, move batches, shut down in order. */
#include "graph.h"
#include "log.h"
#include "loop.h"
#include "packet.h"
#include "stats.h"

#include <errno.h>
#include <string.h>

static void fail_node(struct pp_node *n, int rc, const char *what)
{
	if (!n->failed)
		pp_log(PP_LOG_ERROR, n->name, "%s failed: %s", what, strerror(-rc));
	n->failed = true;
	n->graph->failed = true;
	pp_graph_shutdown(n->graph);
}

static void count_failed(struct pp_node *n, uint64_t packets)
{
	if (!n->failed_drops)
		n->failed_drops = pp_node_counter(n, "node-failed", PP_COUNTER_TOTAL, true);
	if (n->failed_drops)
		pp_counter_add(n->failed_drops, packets);
}

static void deliver(struct pp_node *to, struct pp_batch *b)
{
	uint64_t packets = pp_batch_packets(b);
	int rc;

	pp_counter_add(&to->stats.packets_in, packets);
	pp_counter_add(&to->stats.bytes_in, pp_batch_bytes(b));
	/* A failed or finished node takes nothing more; its input is counted
	 * as dropped so that nothing vanishes unaccounted. */
	if (to->failed || to->st >= NODE_FINISHED || to->st < NODE_RUNNING) {
		count_failed(to, packets);
		return;
	}
	rc = to->plugin->process(to->state, b);
	if (rc < 0) {
		/* The ABI: a failing process() has accounted for none of it. */
		count_failed(to, packets);
		fail_node(to, rc, "process");
	}
}

void pp_node_emit(struct pp_node *n, struct pp_batch *b)
{
	if (!b->count)
		return;
	pp_counter_add(&n->stats.packets_out, pp_batch_packets(b));
	pp_counter_add(&n->stats.bytes_out, pp_batch_bytes(b));
	for (size_t i = 0; i < n->noutputs; i++)
		deliver(n->outputs[i], b);
}

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

static bool due_to_stop(const struct pp_node *n)
{
	const struct pp_graph *g = n->graph;

	if (n->st != NODE_RUNNING)
		return false;
	if (n->ninputs)
		return inputs_finished(n);
	if (!n->noutputs) /* a service: stays while there is traffic to watch */
		return g->shutting_down || only_services_left(g);
	return g->shutting_down;
}

static void drain_expired(void *arg);

/* Whoever stops first, a signal or a source at its end, starts the clock
 * that bounds how long draining may take. */
static void arm_drain(struct pp_graph *g)
{
	if (g->drain_timer || !g->loop || !g->drain_ns)
		return;
	g->drain_timer = pp_loop_timer_new(g->loop, drain_expired, g);
	if (g->drain_timer)
		pp_loop_timer_arm(g->drain_timer, g->drain_ns, 0);
}

static void stop_node(struct pp_node *n)
{
	int rc;

	n->st = NODE_STOPPING;
	rc = n->plugin->stop ? n->plugin->stop(n->state) : 0;
	if (rc == -EINPROGRESS) {
		arm_drain(n->graph);
		return;
	}
	if (rc < 0) {
		pp_log(PP_LOG_ERROR, n->name, "stop failed: %s", strerror(-rc));
		n->failed = true;
		n->graph->failed = true;
	}
	n->st = NODE_FINISHED;
}

/* Stop whatever is due, in order; a node that finishes at once lets its
 * consumers stop in the same sweep, since they come later in the order. */
static void sweep(struct pp_graph *g)
{
	bool all_done = true;

	for (size_t i = 0; i < g->count; i++) {
		if (due_to_stop(g->nodes[i]))
			stop_node(g->nodes[i]);
		all_done &= g->nodes[i]->st >= NODE_FINISHED;
	}
	if (all_done && g->loop)
		pp_loop_quit(g->loop);
}

static bool only_all_finished(const struct pp_graph *g)
{
	for (size_t i = 0; i < g->count; i++)
		if (g->nodes[i]->st < NODE_FINISHED)
			return false;
	return true;
}

void pp_node_finished(struct pp_node *n, int status)
{
	if (n->st >= NODE_FINISHED)
		return;
	if (status < 0) {
		n->failed = true;
		n->graph->failed = true;
	}
	n->st = NODE_FINISHED;
	sweep(n->graph);
}

static void drain_expired(void *arg)
{
	struct pp_graph *g = arg;

	for (size_t i = 0; i < g->count; i++)
		if (g->nodes[i]->st < NODE_FINISHED)
			pp_log(PP_LOG_ERROR, g->nodes[i]->name,
			       "still draining when the deadline passed; closing it anyway");
	g->failed = true;
	pp_loop_quit(g->loop);
}

void pp_graph_shutdown(struct pp_graph *g)
{
	if (g->shutting_down)
		return;
	g->shutting_down = true;
	arm_drain(g);
	sweep(g);
}

void pp_graph_reopen(struct pp_graph *g)
{
	for (size_t i = 0; i < g->count; i++)
		if (g->nodes[i]->plugin->reopen && g->nodes[i]->st == NODE_RUNNING)
			g->nodes[i]->plugin->reopen(g->nodes[i]->state);
}

static int open_all(struct pp_graph *g)
{
	for (size_t i = 0; i < g->count; i++) {
		struct pp_node *n = g->nodes[i];
		int rc;

		n->loop = g->loop;
		rc = n->plugin->open(n, &pp_host_table, n->config, &n->state);
		if (rc < 0) {
			pp_log(PP_LOG_ERROR, n->name, "cannot open (plugin %s): %s", n->plugin->name,
			       strerror(-rc));
			return rc;
		}
		n->st = NODE_OPEN;
	}
	return 0;
}

/* Consumers start before their producers, so nothing is emitted into a
 * node that is not ready. */
static int start_all(struct pp_graph *g)
{
	for (size_t i = g->count; i-- > 0;) {
		struct pp_node *n = g->nodes[i];
		int rc = n->plugin->start ? n->plugin->start(n->state) : 0;

		if (rc < 0) {
			pp_log(PP_LOG_ERROR, n->name, "cannot start: %s", strerror(-rc));
			return rc;
		}
		n->st = NODE_RUNNING;
	}
	return 0;
}

static void close_all(struct pp_graph *g)
{
	for (size_t i = 0; i < g->count; i++) {
		struct pp_node *n = g->nodes[i];

		if (n->st >= NODE_OPEN && n->st < NODE_CLOSED && n->plugin->close)
			n->plugin->close(n->state);
		n->state = NULL;
		n->st = NODE_CLOSED;
	}
	if (g->drain_timer)
		pp_loop_timer_free(g->drain_timer);
	g->drain_timer = NULL;
}

int pp_graph_run(struct pp_graph *g, struct pp_loop *loop)
{
	int rc;

	g->loop = loop;
	rc = open_all(g);
	if (rc == 0)
		rc = start_all(g);
	if (rc == 0) {
		sweep(g); /* a graph of services alone, or already finished */
		if (!only_all_finished(g))
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
