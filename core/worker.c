#include "worker.h"
#include "graph.h"
#include "log.h"
#include "loop.h"
#include "packet.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct worker {
	struct pp_node *node;
	struct pp_loop *loop;
	pthread_t thread;
	bool running;
};

struct batch_msg {
	struct pp_node *to;
	struct batch_msg *next; /* in to's held list */
	uint64_t packets;
	uint32_t count;
	struct pp_packet *pkts[];
};

struct state_msg {
	struct pp_node *node;
	int status;
};

static _Thread_local struct worker *current_worker;

static void run_held(void *arg);

bool pp_on_node_thread(const struct pp_node *n)
{
	return n->worker == current_worker;
}

bool pp_on_main_thread(void)
{
	return current_worker == NULL;
}

/* Any node that feeds another may be asked to wait: it counts its pauses. */
static int pause_counters(struct pp_graph *g)
{
	for (size_t i = 0; i < g->count; i++) {
		struct pp_node *n = g->nodes[i];

		if (!n->noutputs)
			continue;
		n->paused = pp_node_host_counter(n, "paused", false);
		if (!n->paused)
			return -ENOMEM;
	}
	return 0;
}

int pp_workers_create(struct pp_graph *g)
{
	for (size_t i = 0; i < g->count; i++) {
		struct pp_node *n = g->nodes[i];
		struct worker *w;

		if (!n->core.thread)
			continue;
		w = calloc(1, sizeof(*w));
		if (!w || pp_loop_new(&w->loop) < 0) {
			free(w);
			return -ENOMEM;
		}
		w->node = n;
		n->worker = w;
		n->loop = w->loop;
		n->queue_full = pp_node_host_counter(n, "queue-full", true);
		if (!n->queue_full)
			return -ENOMEM;
	}
	return pause_counters(g);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int rc;

	current_worker = w;
	rc = pp_loop_run(w->loop);
	if (rc < 0)
		pp_log(PP_LOG_ERROR, w->node->name, "worker loop: %s", strerror(-rc));
	return NULL;
}

int pp_workers_start(struct pp_graph *g)
{
	for (size_t i = 0; i < g->count; i++) {
		struct worker *w = g->nodes[i]->worker;
		int rc;

		if (!w)
			continue;
		rc = pthread_create(&w->thread, NULL, worker_main, w);
		if (rc) {
			pp_log(PP_LOG_ERROR, w->node->name, "cannot start its thread: %s",
			       strerror(rc));
			return -rc;
		}
		w->running = true;
	}
	return 0;
}

static void quit_loop(void *arg)
{
	pp_loop_quit(arg);
}

void pp_workers_join(struct pp_graph *g)
{
	for (size_t i = 0; i < g->count; i++) {
		struct worker *w = g->nodes[i]->worker;

		if (!w || !w->running)
			continue;
		if (pp_loop_post(w->loop, quit_loop, w->loop) == 0)
			pthread_join(w->thread, NULL);
		w->running = false;
	}
}

void pp_workers_free(struct pp_graph *g)
{
	/* No thread runs now; no wake may be posted any more either, since a
	 * loop may be freed before the last batches of another are let go. */
	for (size_t i = 0; i < g->count; i++)
		__atomic_store_n(&g->nodes[i]->wait_armed, 0, __ATOMIC_SEQ_CST);
	/* The nodes are closed: what they held goes through, counted as
	 * dropped (pp_node_process), like what is still in their mailboxes. */
	for (size_t i = 0; i < g->count; i++)
		run_held(g->nodes[i]);
	for (size_t i = 0; i < g->count; i++) {
		struct pp_node *n = g->nodes[i];

		if (!n->worker)
			continue;
		pp_loop_free(n->worker->loop);
		free(n->worker);
		n->worker = NULL;
		n->loop = NULL;
	}
}

/* ---- backpressure ---- */

static struct pp_loop *loop_of(const struct pp_node *n)
{
	return n->worker ? n->worker->loop : n->graph->loop;
}

/* A waiting producer pauses at three quarters of a queue, which leaves
 * room for what one read of its brings (several batches of a message),
 * and resumes a sixteenth below, so that it does not flip on every batch.
 * Not lower: what waits meanwhile must fit where the producer leaves it,
 * and a socket buffer is smaller than a large queue (nflog: resuming at a
 * quarter of 512 batches overflowed its 64 MiB while the writer drained
 * 92 MB of queue, and lost 1-4 % of row 3a of make bench). */
static uint32_t queue_high(const struct pp_node *n)
{
	uint32_t q = (uint32_t)n->core.queue;

	return q - q / 4;
}

static uint32_t queue_low(const struct pp_node *n)
{
	uint32_t q = (uint32_t)n->core.queue, gap = q / 16 ? q / 16 : 1;

	return queue_high(n) > gap ? queue_high(n) - gap : 0;
}

/* Whether o, fed by from, takes no more for now: it said so (set_busy),
 * or it is on another thread and its queue is at the high mark. */
static bool refuses(const struct pp_node *from, const struct pp_node *o)
{
	if (__atomic_load_n(&o->busy, __ATOMIC_SEQ_CST))
		return true;
	return o->worker && o->worker != from->worker &&
	       __atomic_load_n(&o->queued_batches, __ATOMIC_SEQ_CST) >= queue_high(o);
}

/* Nodes on n's thread take a batch at once, so look past them too. */
static bool downstream_busy(const struct pp_node *n)
{
	for (size_t i = 0; i < n->noutputs; i++) {
		const struct pp_node *o = n->outputs[i];

		if (refuses(n, o) || (o->worker == n->worker && downstream_busy(o)))
			return true;
	}
	return false;
}

/* The armed flag is stored before the queues are looked at again, and a
 * consumer claims it after its count has dropped: one of the two sees the
 * other, so a wake is never lost, and the claim makes it come once. */
bool pp_downstream_wait(struct pp_node *n, pp_timer_fn fn, void *arg)
{
	if (!n->wait_pending && !downstream_busy(n))
		return false;
	n->wait_fn = fn;
	n->wait_arg = arg;
	if (n->wait_pending)
		return true;
	__atomic_store_n(&n->wait_armed, 1, __ATOMIC_SEQ_CST);
	if (!downstream_busy(n) && __atomic_exchange_n(&n->wait_armed, 0, __ATOMIC_SEQ_CST))
		return false;
	n->wait_pending = true;
	if (n->paused)
		pp_counter_add(n->paused, 1);
	return true;
}

/* On the waiting node's thread. A node that finished (pp_node_finished()
 * cleared wait_pending), or was closed while this message waited in its
 * mailbox, is not called. */
static void run_wake(void *arg)
{
	struct pp_node *n = arg;
	enum node_state st = __atomic_load_n(&n->st, __ATOMIC_ACQUIRE);

	__atomic_store_n(&n->wake_posted, 0, __ATOMIC_SEQ_CST);
	if (!n->wait_pending)
		return;
	n->wait_pending = false;
	if (st >= NODE_RUNNING && st < NODE_FINISHED)
		n->wait_fn(n->wait_arg);
}

/* n and the nodes upstream of it on its thread: all of them may be
 * waiting for the queue that n's batches go to. */
static void wake_chain(struct pp_node *n)
{
	/* One wake in the mailbox at a time: a second would find it there
	 * (run_wake then looks at the node as it is). */
	if (__atomic_load_n(&n->wait_armed, __ATOMIC_SEQ_CST) &&
	    __atomic_exchange_n(&n->wait_armed, 0, __ATOMIC_SEQ_CST) &&
	    !__atomic_exchange_n(&n->wake_posted, 1, __ATOMIC_SEQ_CST)) {
		n->wake = (struct pp_post){ .fn = run_wake, .arg = n, .kept = true };
		pp_loop_post_kept(loop_of(n), &n->wake);
	}
	for (size_t i = 0; i < n->ninputs; i++)
		if (n->inputs[i]->worker == n->worker)
			wake_chain(n->inputs[i]);
}

/* n takes more again: wake who may wait for it. Producers on n's own
 * thread only wait for its busy flag, not for its queue. */
static void wake_producers(struct pp_node *n, bool queue_only)
{
	for (size_t i = 0; i < n->ninputs; i++)
		if (!queue_only || n->inputs[i]->worker != n->worker)
			wake_chain(n->inputs[i]);
}

/* A batch left n's queue: at the low mark, wake who waits for it. */
static void queue_left(struct pp_node *n, struct batch_msg *m)
{
	uint32_t queued = __atomic_sub_fetch(&n->queued_batches, 1, __ATOMIC_SEQ_CST);

	__atomic_sub_fetch(&n->queued_packets, m->packets, __ATOMIC_RELAXED);
	if (queued == queue_low(n) && n->worker)
		wake_producers(n, true);
}

/* host->set_busy(), on n's thread: the flag is cleared before the armed
 * flags are looked at, the mirror of pp_downstream_wait(). */
void pp_node_set_busy(struct pp_node *n, bool busy)
{
	if (busy)
		__atomic_store_n(&n->busy, 1, __ATOMIC_SEQ_CST);
	else if (__atomic_exchange_n(&n->busy, 0, __ATOMIC_SEQ_CST))
		wake_producers(n, false);
}

/* ---- batches across threads ---- */

/* The references a batch message took, and the message. */
static void free_batch(struct batch_msg *m)
{
	for (uint32_t i = 0; i < m->count; i++)
		pp_packet_unref(m->pkts[i]);
	free(m);
}

static void take_batch(struct batch_msg *m)
{
	struct pp_batch b = { .pkts = m->pkts, .count = m->count };

	queue_left(m->to, m);
	pp_node_process(m->to, &b);
	free_batch(m);
}

/* Whether n, on its own thread, leaves its batches waiting because a node
 * ahead takes no more. They stay in n's queue and its count, so that n's
 * producers see that queue fill and wait in turn: backpressure passes one
 * thread at a time, however many there are. Not once n has finished:
 * then (and at close) its batches go through, to be counted as dropped. */
static bool holds(struct pp_node *n)
{
	return n->worker && __atomic_load_n(&n->st, __ATOMIC_ACQUIRE) < NODE_FINISHED &&
	       pp_downstream_wait(n, run_held, n);
}

static void hold_batch(struct pp_node *n, struct batch_msg *m)
{
	m->next = NULL;
	if (!n->held)
		n->held_tail = &n->held;
	*n->held_tail = m;
	n->held_tail = &m->next;
}

static void run_stop(void *arg);

/* On n's thread, when the node ahead takes more: what n held, in order,
 * until it refuses again; then a stop that waited for them. */
static void run_held(void *arg)
{
	struct pp_node *n = arg;

	while (n->held && !holds(n)) {
		struct batch_msg *m = n->held;

		n->held = m->next;
		take_batch(m);
	}
	if (!n->held && n->stop_held) {
		n->stop_held = false;
		run_stop(n);
	}
}

/* Batches that arrive while n holds some join them, to keep the order. */
static void run_batch(void *arg)
{
	struct batch_msg *m = arg;

	if (m->to->held || holds(m->to))
		hold_batch(m->to, m);
	else
		take_batch(m);
}

static void drop_remote(struct pp_node *n, pp_counter *reason, uint64_t packets)
{
	__atomic_fetch_add(reason ? reason : pp_node_failed_counter(n), packets,
			   __ATOMIC_RELAXED);
}

/* A batch that could not be posted: undo the queue counts, count it as
 * dropped, release it. */
static void run_batch_dropped(struct batch_msg *m)
{
	queue_left(m->to, m);
	drop_remote(m->to, NULL, m->packets);
	free_batch(m);
}

/* A queue bound applies to threaded nodes; batches from workers back to
 * the main loop are bounded by the workers' own queues upstream. */
static bool queue_full(struct pp_node *n)
{
	uint32_t q = __atomic_add_fetch(&n->queued_batches, 1, __ATOMIC_RELAXED);

	if (!n->worker || q <= (uint64_t)n->core.queue)
		return false;
	__atomic_sub_fetch(&n->queued_batches, 1, __ATOMIC_RELAXED);
	return true;
}

/* packets and bytes: b's totals, which the emitter has at hand. */
void pp_deliver_remote(struct pp_node *n, struct pp_batch *b, uint64_t packets, uint64_t bytes)
{
	struct batch_msg *m;

	pp_node_count_in(n, packets, bytes);
	if (queue_full(n)) {
		drop_remote(n, n->queue_full, packets);
		return;
	}
	m = malloc(sizeof(*m) + b->count * sizeof(m->pkts[0]));
	if (!m) {
		__atomic_sub_fetch(&n->queued_batches, 1, __ATOMIC_RELAXED);
		drop_remote(n, NULL, packets);
		return;
	}
	m->to = n;
	m->packets = packets;
	m->count = b->count;
	for (uint32_t i = 0; i < b->count; i++) {
		m->pkts[i] = b->pkts[i];
		pp_packet_ref(b->pkts[i]);
	}
	__atomic_add_fetch(&n->queued_packets, packets, __ATOMIC_RELAXED);
	if (pp_loop_post(loop_of(n), run_batch, m) < 0) {
		run_batch_dropped(m);
	}
}

/* A stop request left in the mailbox of a node already closed (the drain
 * deadline passed) must not reach the plugin; one that finds batches held
 * waits for them (run_held), as they came before it. */
static void run_stop(void *arg)
{
	struct pp_node *n = arg;

	if (__atomic_load_n(&n->st, __ATOMIC_ACQUIRE) != NODE_STOPPING)
		return;
	if (n->held)
		n->stop_held = true;
	else
		pp_node_stop_here(n);
}

void pp_stop_remote(struct pp_node *n)
{
	if (pp_loop_post(n->worker->loop, run_stop, n) < 0)
		pp_log(PP_LOG_ERROR, n->name, "cannot reach its thread to stop it");
}

static void post_state(struct pp_node *n, int status, pp_post_fn fn)
{
	struct state_msg *m = malloc(sizeof(*m));

	if (m) {
		m->node = n;
		m->status = status;
	}
	if (!m || pp_loop_post(n->graph->loop, fn, m) < 0) {
		free(m);
		pp_log(PP_LOG_ERROR, n->name, "cannot report to the main thread");
	}
}

static void run_finished(void *arg)
{
	struct state_msg *m = arg;

	pp_node_finished(m->node, m->status);
	free(m);
}

static void run_failed(void *arg)
{
	struct state_msg *m = arg;

	pp_node_fail(m->node, m->status, "process");
	free(m);
}

void pp_report_finished(struct pp_node *n, int status)
{
	post_state(n, status, run_finished);
}

void pp_report_failed(struct pp_node *n, int status)
{
	post_state(n, status, run_failed);
}
