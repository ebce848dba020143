/* Test source: emits `count` synthetic raw-IP packets of `size` bytes in
 * batches of `batch`, one batch per loop turn, then finishes (count 0:
 * never finishes, for signal tests). Its keys cover every option type so
 * that graph tests can exercise the parser through a real plugin. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pktpipe/plugin.h>

struct gen_config {
	int64_t count;
	uint64_t size;
	int64_t batch;
	uint64_t rate;
	uint64_t interval;
	int pattern;
	bool fail_open;
	struct pp_list tags;
	char *label;
};

static const char *const patterns[] = { "zero", "counter", NULL };

static const struct pp_option gen_options[] = {
	{ .name = "count", .type = PP_OPT_INT, .default_value = "100", .min = 0, .max = 1000000000,
	  .offset = offsetof(struct gen_config, count), .help = "packets to emit; 0 = endless" },
	{ .name = "size", .type = PP_OPT_SIZE, .default_value = "100", .min = 20, .max = 65535,
	  .offset = offsetof(struct gen_config, size), .help = "bytes per packet" },
	{ .name = "batch", .type = PP_OPT_INT, .default_value = "64", .min = 1, .max = PP_BATCH_MAX,
	  .offset = offsetof(struct gen_config, batch), .help = "packets per batch" },
	{ .name = "rate", .type = PP_OPT_RATE, .default_value = "0",
	  .offset = offsetof(struct gen_config, rate), .help = "unused; parser coverage" },
	{ .name = "interval", .type = PP_OPT_DURATION, .default_value = "0",
	  .offset = offsetof(struct gen_config, interval), .help = "pause between batches" },
	{ .name = "pattern", .type = PP_OPT_ENUM, .default_value = "counter", .choices = patterns,
	  .offset = offsetof(struct gen_config, pattern), .help = "payload bytes" },
	{ .name = "fail_open", .type = PP_OPT_BOOL, .default_value = "no",
	  .offset = offsetof(struct gen_config, fail_open), .help = "open() fails (tests)" },
	{ .name = "tags", .type = PP_OPT_LIST, .item_type = PP_OPT_INT, .default_value = "",
	  .min = 0, .max = 65535, .offset = offsetof(struct gen_config, tags),
	  .help = "unused; list parser coverage" },
	{ .name = "label", .type = PP_OPT_STRING, .default_value = "",
	  .offset = offsetof(struct gen_config, label), .help = "unused" },
	PP_OPTION_END,
};

struct gen {
	struct pp_node *node;
	const struct pp_host *host;
	const struct gen_config *cfg;
	struct pp_timer *timer;
	int64_t sent;
	bool stopped;
};

/* Cross-key checks run at --check time; this one exists for the tests. */
static int gen_validate(const void *config, char *err, size_t errlen)
{
	const struct gen_config *cfg = config;

	if (cfg->label && strcmp(cfg->label, "invalid") == 0) {
		snprintf(err, errlen, "label 'invalid' is refused by validate()");
		return -EINVAL;
	}
	return 0;
}

static void gen_turn(void *arg);

static int gen_open(struct pp_node *node, const struct pp_host *host, const void *config,
		    void **state)
{
	const struct gen_config *cfg = config;
	struct gen *g;

	if (cfg->fail_open) {
		host->log(node, PP_LOG_ERROR, "fail_open is set");
		return -EIO;
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->node = node;
	g->host = host;
	g->cfg = cfg;
	g->timer = host->timer_new(node, gen_turn, g);
	if (!g->timer) {
		free(g);
		return -ENOMEM;
	}
	*state = g;
	return 0;
}

static struct pp_packet *make_packet(struct gen *g)
{
	struct pp_packet *p = g->host->packet_alloc(g->node, (uint32_t)g->cfg->size);

	if (!p)
		return NULL;
	p->caplen = p->origlen = (uint32_t)g->cfg->size;
	p->linktype = 101;
	p->ts_ns = 1700000000000000000ull + (uint64_t)g->sent * 1000;
	memset(p->data, 0, p->caplen);
	p->data[0] = 0x45;
	if (g->cfg->pattern == 1)
		memcpy(p->data + 12, &g->sent, sizeof(g->sent));
	return p;
}

static void gen_turn(void *arg)
{
	struct gen *g = arg;
	struct pp_packet *pkts[PP_BATCH_MAX];
	struct pp_batch b = { .pkts = pkts };
	struct pp_stats *st = g->host->stats(g->node);

	while (b.count < g->cfg->batch && (!g->cfg->count || g->sent < g->cfg->count)) {
		if (!(pkts[b.count] = make_packet(g)))
			break;
		b.count++;
		g->sent++;
	}
	pp_counter_add(&st->packets_in, b.count);
	pp_counter_add(&st->bytes_in, pp_batch_bytes(&b));
	g->host->emit(g->node, &b);
	for (uint32_t i = 0; i < b.count; i++)
		g->host->packet_unref(pkts[i]);
	if (g->stopped)
		return;
	if (g->cfg->count && g->sent >= g->cfg->count)
		g->host->finished(g->node, 0);
	else
		g->host->timer_arm(g->timer, g->cfg->interval, 0);
}

static int gen_start(void *state)
{
	struct gen *g = state;

	return g->host->timer_arm(g->timer, 0, 0);
}

static int gen_stop(void *state)
{
	struct gen *g = state;

	g->stopped = true;
	g->host->timer_disarm(g->timer);
	return 0;
}

static void gen_close(void *state)
{
	struct gen *g = state;

	g->host->timer_free(g->timer);
	free(g);
}

PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "gen",
	.summary = "test source of synthetic packets",
	.roles = PP_ROLE_SOURCE,
	.options = gen_options,
	.config_size = sizeof(struct gen_config),
	.validate = gen_validate,
	.open = gen_open,
	.start = gen_start,
	.stop = gen_stop,
	.close = gen_close,
};
