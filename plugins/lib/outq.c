/* Batches handed downstream: see outq.h. */
#include "outq.h"

void outq_init(struct outq *q, struct pp_node *node, const struct pp_host *host)
{
	q->node = node;
	q->host = host;
	q->batch.pkts = q->pkts;
	q->batch.count = 0;
}

void outq_emit(struct outq *q)
{
	if (!q->batch.count)
		return;
	q->host->emit(q->node, &q->batch);
	/* emit() borrowed the batch: the references are ours again. */
	for (uint32_t i = 0; i < q->batch.count; i++)
		q->host->packet_unref(q->batch.pkts[i]);
	q->batch.count = 0;
}

void outq_put(struct outq *q, struct pp_packet *p, bool owned)
{
	if (!owned)
		q->host->packet_ref(p);
	q->batch.pkts[q->batch.count++] = p;
	if (q->batch.count == PP_BATCH_MAX)
		outq_emit(q);
}

void outq_drop(struct outq *q, pp_counter *reason, struct pp_log_limit *lim, uint64_t packets,
	       const char *why)
{
	pp_counter_add(reason, packets);
	q->host->log_limited(q->node, lim, PP_LOG_WARNING, "%s; dropped %llu packets", why,
			     (unsigned long long)packets);
}

void outq_release(struct outq *q)
{
	for (uint32_t i = 0; i < q->batch.count; i++)
		q->host->packet_unref(q->batch.pkts[i]);
	q->batch.count = 0;
}

bool outq_wait(struct outq *q, void (*resume)(void *arg), void *arg)
{
	return PP_HOST_HAS(q->host, downstream_wait) &&
	       q->host->downstream_wait(q->node, resume, arg);
}
