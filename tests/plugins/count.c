/* Test sink: counts what it receives as delivered; with fail_after it
 * fails process() once that many packets arrived. Logs its totals at stop
 * so tests can compare them with the stats. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <pktpipe/plugin.h>

struct count_config {
	int64_t fail_after;
	uint64_t delay;
};

static const struct pp_option count_options[] = {
	{ .name = "fail_after", .type = PP_OPT_INT, .default_value = "0", .min = 0,
	  .max = 1000000000, .offset = offsetof(struct count_config, fail_after),
	  .help = "fail process() after this many packets; 0 = never" },
	{ .name = "delay", .type = PP_OPT_DURATION, .default_value = "0", .max = 1000000000,
	  .offset = offsetof(struct count_config, delay),
	  .help = "sleep this long per batch: a slow consumer (only with thread = yes)" },
	PP_OPTION_END,
};

struct count {
	struct pp_node *node;
	const struct pp_host *host;
	const struct count_config *cfg;
	uint64_t packets, bytes;
};

static int count_open(struct pp_node *node, const struct pp_host *host, const void *config,
		      void **state)
{
	struct count *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->node = node;
	c->host = host;
	c->cfg = config;
	*state = c;
	return 0;
}

static int count_process(void *state, struct pp_batch *b)
{
	struct count *c = state;
	uint64_t n = pp_batch_packets(b);

	if (c->cfg->fail_after && c->packets + n > (uint64_t)c->cfg->fail_after)
		return -EIO;
	if (c->cfg->delay)
		nanosleep(&(struct timespec){ .tv_nsec = (long)c->cfg->delay }, NULL);
	c->packets += n;
	c->bytes += pp_batch_bytes(b);
	c->host->delivered(c->node, n, pp_batch_bytes(b));
	return 0;
}

static int count_stop(void *state)
{
	struct count *c = state;

	c->host->log(c->node, PP_LOG_INFO, "received %llu packets, %llu bytes",
		     (unsigned long long)c->packets, (unsigned long long)c->bytes);
	return 0;
}

static void count_close(void *state)
{
	free(state);
}

PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "count",
	.summary = "test sink: counts packets",
	.roles = PP_ROLE_SINK,
	.options = count_options,
	.config_size = sizeof(struct count_config),
	.open = count_open,
	.process = count_process,
	.stop = count_stop,
	.close = count_close,
};
