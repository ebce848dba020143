/* Nodes with `thread = yes`: each runs on a thread of its own with its own
 * loop. Batches crossing between threads travel as posted messages holding
 * references, through a queue bounded per node; a full queue drops the
 * arriving batch (reason queue-full) instead of ever blocking a producer.
 * Stop requests and finished/failed reports cross the same way, so the
 * main thread alone moves node states. Mailboxes are FIFO: every batch
 * posted before a stop request is processed before it.
 *
 * A source that can leave its input waiting (a file, a socket buffered by
 * the kernel or by its peer) asks pp_downstream_wait() before reading and
 * pauses while a queue ahead is nearly full, so that those packets wait
 * where they are instead of being dropped at the queue. A threaded node
 * given batches waits the same way for the nodes ahead of it, leaving its
 * batches in its queue (held, in order), so that the wait reaches the
 * sources one thread at a time. */
#ifndef PKTPIPE_CORE_WORKER_H
#define PKTPIPE_CORE_WORKER_H

#include <pktpipe/plugin.h>

struct pp_graph;
struct pp_node;

/* Give every threaded node a loop (before open) and a thread (after start). */
int pp_workers_create(struct pp_graph *g);
int pp_workers_start(struct pp_graph *g);
/* Stop and join every thread, then (after close) free their loops. */
void pp_workers_join(struct pp_graph *g);
void pp_workers_free(struct pp_graph *g);

/* Whether the calling thread is n's own. */
bool pp_on_node_thread(const struct pp_node *n);
/* Whether the calling thread is the main one. */
bool pp_on_main_thread(void);

/* Hand b to n on n's thread (references taken), or drop it if n's queue is
 * full. packets_in is counted here either way. */
void pp_deliver_remote(struct pp_node *n, struct pp_batch *b, uint64_t packets, uint64_t bytes);
/* host->downstream_wait(): whether a node n's batches reach takes no more
 * (on another thread with its queue three quarters full, or busy); then
 * fn(arg) is called on n's thread once it takes more (the queue a sixteenth
 * below that, or no longer busy). For sources that can leave their input
 * waiting, and for threaded nodes holding their batches (worker.c). */
bool pp_downstream_wait(struct pp_node *n, pp_timer_fn fn, void *arg);
/* host->set_busy(): n takes no more for now (busy), or again. */
void pp_node_set_busy(struct pp_node *n, bool busy);
/* Run n's stop() on its thread. */
void pp_stop_remote(struct pp_node *n);
/* From a worker: tell the main thread that n finished or failed. */
void pp_report_finished(struct pp_node *n, int status);
void pp_report_failed(struct pp_node *n, int status);

#endif
