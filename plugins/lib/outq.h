/* What a node sends downstream: packets gathered into batches of up to
 * PP_BATCH_MAX and emitted, the caller's references dropped once emit()
 * has returned. A struct the plugin embeds; all zeroes before outq_init()
 * is a valid empty queue for outq_release().
 *
 * Invariants, true outside every call:
 *   - Every packet an outq holds carries one reference the outq owns.
 *     outq_emit() gives them up; outq_release() (for close(), when stop()
 *     never ran) drops them.
 *   - An outq holds fewer than PP_BATCH_MAX packets: it emits when full.
 */
#ifndef PKTPIPE_PLUGINS_LIB_OUTQ_H
#define PKTPIPE_PLUGINS_LIB_OUTQ_H

#include <stdbool.h>
#include <stdint.h>

#include <pktpipe/plugin.h>


struct outq {
	struct pp_node *node;
	const struct pp_host *host;
	struct pp_batch batch;
	struct pp_packet *pkts[PP_BATCH_MAX];
};

void outq_init(struct outq *q, struct pp_node *node, const struct pp_host *host);
/* Queue p; owned: the reference is the caller's to give, else one is taken. */
void outq_put(struct outq *q, struct pp_packet *p, bool owned);
void outq_emit(struct outq *q);
/* True while a node this one's batches reach takes no more for now (the
 * host's downstream_wait): resume(arg) then runs once on this node's
 * thread when it does. False with a host that cannot tell. */
bool outq_wait(struct outq *q, void (*resume)(void *arg), void *arg);
/* Count packets dropped under reason and say why (rate-limited by lim):
 * "WHY; dropped N packets". */
void outq_drop(struct outq *q, pp_counter *reason, struct pp_log_limit *lim, uint64_t packets,
	       const char *why);
/* Drop the references of what was never emitted. */
void outq_release(struct outq *q);

#endif
