/* libFuzzer target: arbitrary bytes as a capture file, replayed by the
 * real pcap-in plugin through the real core (graph run, event loop, timers,
 * packet pool, accounting) into a counting sink.
 *
 * clang's sanitizer runtime cannot host the gcc-built plugin, so
 * plugins/pcap-in/pcap-in.c (with plugins/lib/linktype.c) is compiled into
 * this binary with the core sources (tests/e2e/fuzz.sh has the command
 * line) and its descriptor is used directly: the graph [in] pcap-in ->
 * [sink] is built by hand, since the loader only knows .so files. The
 * input is a memfd; pcap-in opens it by its /proc/self/fd path, twice
 * (loop = 2), so the end-of-file reopen runs too. Inputs of even length
 * are read through pcap-in's file map (mmap = yes), odd ones
 * with read() (mmap = no), so both readers meet every kind of input.
 *
 * Besides "no crash, no sanitizer report, no hang, no leak", each input
 * checks properties against libpcap reading the same bytes on its own:
 *   - pcap-in delivers exactly the packets libpcap reads before the end or
 *     the damage (the same count, lengths and bytes), every play;
 *   - the run's status is 0 for a file read to its end, 1 otherwise;
 *   - every node balances (in = out + dropped + held) and no packet is
 *     left outstanding in the pool. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include "graph.h"
#include "log.h"
#include "loop.h"
#include "options.h"
#include "packet.h"
#include "stats.h"

#define FUZZ_LOOPS 2

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* pcap-in's descriptor, compiled in. */
extern const struct pp_plugin pp_plugin;

/* What a reader saw: packets, and a digest of their lengths and bytes. */
struct seen {
	uint64_t packets;
	uint64_t digest;
};

static int fd = -1;
static char path[64];
static const char *use_mmap;
static struct pp_loop *loop;
static struct seen sink_seen;

static uint64_t mix(uint64_t h, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static void see(struct seen *s, uint32_t caplen, uint32_t origlen, const void *data)
{
	s->digest = mix(s->digest, &caplen, sizeof(caplen));
	s->digest = mix(s->digest, &origlen, sizeof(origlen));
	s->digest = mix(s->digest, data, caplen);
	s->packets++;
}

/* ---- the sink: counts and digests, checks each packet ---- */

static int sink_open(struct pp_node *node, const struct pp_host *host, const void *config,
		     void **state)
{
	(void)host;
	(void)config;
	*state = node;
	return 0;
}

static int sink_process(void *state, struct pp_batch *b)
{
	uint64_t bytes = 0;

	for (uint32_t i = 0; i < b->count; i++) {
		const struct pp_packet *p = b->pkts[i];

		if (p->count != 1 || p->caplen > p->capacity || p->linktype > 0xffff)
			abort();
		see(&sink_seen, p->caplen, p->origlen, p->data);
		bytes += p->caplen;
	}
	pp_host_table.delivered(state, b->count, bytes);
	return 0;
}

static void sink_close(void *state)
{
	(void)state;
}

static const struct pp_option sink_options[] = { PP_OPTION_END };

static const struct pp_plugin sink_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "count",
	.summary = "counts",
	.roles = PP_ROLE_SINK,
	.options = sink_options,
	.config_size = 1,
	.open = sink_open,
	.process = sink_process,
	.close = sink_close,
};

/* ---- the graph, by hand ---- */

static int configure(const struct pp_plugin *p, void *config)
{
	char err[256], loops[16];

	for (const struct pp_option *o = p->options; o->name; o++)
		if (o->default_value && *o->default_value &&
		    pp_option_parse(o, o->default_value, config, err, sizeof(err)) < 0)
			return -1;
	if (p != &pp_plugin)
		return 0;
	snprintf(loops, sizeof(loops), "%d", FUZZ_LOOPS);
	if (pp_option_parse(pp_option_find(p->options, "path"), path, config, err, sizeof(err)) < 0 ||
	    pp_option_parse(pp_option_find(p->options, "loop"), loops, config, err, sizeof(err)) < 0 ||
	    pp_option_parse(pp_option_find(p->options, "mmap"), use_mmap, config, err, sizeof(err)) < 0)
		return -1;
	return 0;
}

static struct pp_node *new_node(struct pp_graph *g, const char *name, const struct pp_plugin *p)
{
	struct pp_node *n = calloc(1, sizeof(*n));

	if (!n || !(n->name = strdup(name)) || !(n->config = calloc(1, p->config_size)))
		abort();
	n->conf_path = "fuzz";
	n->line = 1;
	n->plugin = p;
	n->graph = g;
	n->core.queue = 64;
	if (configure(p, n->config) < 0)
		abort();
	g->nodes[g->count++] = n;
	return n;
}

static struct pp_graph *build(void)
{
	struct pp_graph *g = calloc(1, sizeof(*g));
	struct pp_node *in, *sink;

	if (!g || !(g->nodes = calloc(2, sizeof(*g->nodes))))
		abort();
	in = new_node(g, "in", &pp_plugin);
	sink = new_node(g, "sink", &sink_plugin);
	in->outputs = malloc(sizeof(*in->outputs));
	sink->inputs = malloc(sizeof(*sink->inputs));
	if (!in->outputs || !sink->inputs)
		abort();
	in->outputs[in->noutputs++] = sink;
	sink->inputs[sink->ninputs++] = in;
	g->drain_ns = 5000000000ull;
	return g;
}

/* ---- the oracle: libpcap on its own ---- */

/* 0: read to the end; 1: damaged after s->packets; -1: not a capture. */
static int oracle(struct seen *s)
{
	char errbuf[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *data;
	pcap_t *p;
	int rc;

	p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (!p)
		return -1;
	while ((rc = pcap_next_ex(p, &h, &data)) == 1)
		see(s, h->caplen, h->len, data);
	pcap_close(p);
	return rc == PCAP_ERROR_BREAK ? 0 : 1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	pp_log_level = getenv("FUZZ_VERBOSE") ? PP_LOG_DEBUG : -1;
	fd = memfd_create("fuzz.pcap", 0);
	if (fd < 0 || pp_loop_new(&loop) < 0)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen want = { 0 };
	struct pp_graph *g;
	int how = 0, status;

	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	/* Read to the end: every play delivers it all. Damaged: the first
	 * play delivers what comes before the damage and the run fails. Not
	 * a capture: nothing opens, nothing is delivered. */
	for (int i = 0; i < FUZZ_LOOPS && how == 0; i++)
		how = oracle(&want);
	sink_seen = (struct seen){ 0 };
	use_mmap = size % 2 ? "no" : "yes";
	g = build();
	status = pp_graph_run(g, loop);
	if (!pp_stats_balanced(g) || pp_packets_outstanding() != 0)
		abort();
	if (status != (how == 0 ? 0 : 1) || sink_seen.packets != want.packets ||
	    sink_seen.digest != want.digest)
		abort();
	pp_graph_free(g);
	pp_pool_trim();
	return 0;
}
