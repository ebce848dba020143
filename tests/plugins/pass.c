/* Test filter: forwards batches, dropping every n-th packet (reason
 * "test") and optionally holding the last packet of each batch until the
 * next one or until stop(), to exercise packets_held and draining. */
#include <errno.h>
#include <stdlib.h>
#include <pktpipe/plugin.h>

struct pass_config {
	int64_t drop_every;
	bool hold_last;
	bool slow_stop; /* stop() returns -EINPROGRESS and finishes on a timer */
};

static const struct pp_option pass_options[] = {
	{ .name = "drop_every", .type = PP_OPT_INT, .default_value = "0", .min = 0, .max = 1000000,
	  .offset = offsetof(struct pass_config, drop_every), .help = "drop every n-th packet; 0 = none" },
	{ .name = "hold_last", .type = PP_OPT_BOOL, .default_value = "no",
	  .offset = offsetof(struct pass_config, hold_last), .help = "keep one packet back" },
	{ .name = "slow_stop", .type = PP_OPT_BOOL, .default_value = "no",
	  .offset = offsetof(struct pass_config, slow_stop), .help = "drain on a timer" },
	PP_OPTION_END,
};

struct pass {
	struct pp_node *node;
	const struct pp_host *host;
	const struct pass_config *cfg;
	pp_counter *dropped;
	struct pp_packet *held;
	struct pp_timer *timer;
	uint64_t seen;
};

static void pass_release_held(void *arg);

static int pass_open(struct pp_node *node, const struct pp_host *host, const void *config,
		     void **state)
{
	struct pass *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->node = node;
	p->host = host;
	p->cfg = config;
	p->dropped = host->drop_reason(node, "test");
	p->timer = host->timer_new(node, pass_release_held, p);
	if (!p->dropped || !p->timer) {
		free(p);
		return -ENOMEM;
	}
	*state = p;
	return 0;
}

static void emit_one(struct pass *p, struct pp_packet *pkt)
{
	struct pp_batch b = { .pkts = &pkt, .count = 1 };

	p->host->emit(p->node, &b);
}

static void pass_release_held(void *arg)
{
	struct pass *p = arg;
	struct pp_packet *pkt = p->held;

	p->held = NULL;
	pp_counter_set(&p->host->stats(p->node)->packets_held, 0);
	if (pkt) {
		emit_one(p, pkt);
		p->host->packet_unref(pkt);
	}
	if (p->cfg->slow_stop)
		p->host->finished(p->node, 0);
}

static int pass_process(void *state, struct pp_batch *in)
{
	struct pass *p = state;
	struct pp_packet *keep[PP_BATCH_MAX];
	struct pp_batch out = { .pkts = keep };

	for (uint32_t i = 0; i < in->count && out.count < PP_BATCH_MAX; i++) {
		if (p->cfg->drop_every && ++p->seen % (uint64_t)p->cfg->drop_every == 0)
			pp_counter_add(p->dropped, in->pkts[i]->count);
		else
			keep[out.count++] = in->pkts[i];
	}
	if (p->cfg->hold_last && out.count) {
		struct pp_packet *last = keep[--out.count];

		if (p->held) {
			emit_one(p, p->held);
			p->host->packet_unref(p->held);
		}
		p->host->packet_ref(last);
		p->held = last;
		pp_counter_set(&p->host->stats(p->node)->packets_held, last->count);
	}
	p->host->emit(p->node, &out);
	return 0;
}

static int pass_stop(void *state)
{
	struct pass *p = state;

	if (p->cfg->slow_stop) {
		p->host->timer_arm(p->timer, 50 * 1000000ull, 0);
		return -EINPROGRESS;
	}
	pass_release_held(p);
	return 0;
}

static void pass_close(void *state)
{
	struct pass *p = state;

	p->host->timer_free(p->timer);
	p->host->packet_unref(p->held);
	free(p);
}

PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "pass",
	.summary = "test filter: forwards, drops every n-th, can hold one back",
	.roles = PP_ROLE_FILTER,
	.options = pass_options,
	.config_size = sizeof(struct pass_config),
	.open = pass_open,
	.process = pass_process,
	.stop = pass_stop,
	.close = pass_close,
};
