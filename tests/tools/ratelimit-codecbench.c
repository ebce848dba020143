/* ratelimit-codecbench: ratio and speed of codec plugins on real traffic,
 * as the compressors use them: the packets of a capture laid out as native
 * frame records (22-byte record header + data, no metadata), cut into
 * batches of --batch bytes (1 MiB, the default batch_bytes), each batch
 * compressed as one stream with a context reused from batch to batch, then
 * decompressed into exactly its size and compared.
 *
 *   ratelimit-codecbench [--batch BYTES] [--max-caplen N] [--rounds N]
 *                        CAPTURE PLUGIN.so[:LEVEL]...
 *
 * --max-caplen N leaves out packets longer than N (the corpus' few huge,
 * zero-filled GSO packets would otherwise dominate the ratio). Speeds are
 * MiB/s of uncompressed records per CPU second of this process
 * (CLOCK_PROCESS_CPUTIME_ID), the best of --rounds (default 3) runs, so a
 * loaded machine slows them less than wall time would. One line per codec:
 *   NAME LEVEL ratio R compress C MiB/s decompress D MiB/s (IN -> OUT bytes)
 * Exit 1 when a round trip differs or a plugin cannot be used, 2 on usage.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pcap/pcap.h>

#include <pktpipe/plugin.h>

#define RECORD_HEAD 22

struct bench {
	size_t batch, max_caplen;
	int rounds;
	uint8_t *raw; /* every record, back to back */
	size_t raw_len;
	size_t *cuts; /* batch boundaries in raw */
	size_t ncuts;
};

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static int add_record(struct bench *b, const struct pcap_pkthdr *h, const u_char *data,
		      size_t *cap, size_t *batch_start)
{
	size_t need = RECORD_HEAD + h->caplen;
	uint64_t ts = (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec;
	uint8_t *p;

	if (b->raw_len + need > *cap) {
		*cap = (b->raw_len + need) * 2;
		if (!(p = realloc(b->raw, *cap)))
			return -ENOMEM;
		b->raw = p;
	}
	if (b->raw_len > *batch_start && b->raw_len - *batch_start + need > b->batch) {
		b->cuts[b->ncuts++] = b->raw_len;
		*batch_start = b->raw_len;
	}
	p = b->raw + b->raw_len;
	put32(p, (uint32_t)(ts >> 32));
	put32(p + 4, (uint32_t)ts);
	put32(p + 8, h->caplen);
	put32(p + 12, h->len);
	put32(p + 16, 1);
	p[20] = p[21] = 0;
	memcpy(p + RECORD_HEAD, data, h->caplen);
	b->raw_len += need;
	return 0;
}

static int load(struct bench *b, const char *path)
{
	char err[PCAP_ERRBUF_SIZE];
	pcap_t *pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, err);
	struct pcap_pkthdr *h;
	const u_char *data;
	size_t cap = 0, start = 0;

	if (!pc) {
		fprintf(stderr, "ratelimit-codecbench: %s\n", err);
		return -1;
	}
	b->cuts = calloc(1u << 20, sizeof(*b->cuts));
	while (b->cuts && pcap_next_ex(pc, &h, &data) == 1 && b->ncuts < (1u << 20) - 1)
		if ((!b->max_caplen || h->caplen <= b->max_caplen) &&
		    add_record(b, h, data, &cap, &start) < 0)
			break;
	pcap_close(pc);
	if (!b->cuts || !b->raw_len)
		return -1;
	b->cuts[b->ncuts++] = b->raw_len;
	return 0;
}

static double cpu_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One round: every batch compressed, then decompressed and compared. */
static int round_trip(const struct bench *b, const struct pp_codec *c, void *ctx, uint8_t *out,
		      size_t *sizes, uint8_t *back, double *tc, double *td)
{
	size_t at = 0, oat = 0;
	double t0 = cpu_now();

	for (size_t i = 0; i < b->ncuts; at = b->cuts[i++]) {
		sizes[i] = c->bound(b->cuts[i] - at);
		if (c->compress(ctx, b->raw + at, b->cuts[i] - at, out + oat, &sizes[i]) < 0)
			return -1;
		oat += sizes[i];
	}
	*tc = cpu_now() - t0;
	at = oat = 0;
	t0 = cpu_now();
	for (size_t i = 0; i < b->ncuts; oat += sizes[i], at = b->cuts[i++]) {
		size_t n = b->cuts[i] - at;

		if (c->decompress(ctx, out + oat, sizes[i], back + at, &n) < 0 || n != b->cuts[i] - at)
			return -1;
	}
	*td = cpu_now() - t0;
	return memcmp(back, b->raw, b->raw_len) == 0 ? 0 : -1;
}

static const struct pp_codec *codec_of(const char *spec, int *level)
{
	char path[4096];
	const char *colon = strrchr(spec, ':');
	const struct pp_plugin *p;
	void *h;

	snprintf(path, sizeof(path), "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
	*level = colon ? atoi(colon + 1) : -1;
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	p = h ? dlsym(h, PP_PLUGIN_SYMBOL) : NULL;
	if (!p || !p->codecs || !p->codecs[0]) {
		fprintf(stderr, "ratelimit-codecbench: %s: %s\n", path, h ? "no codec" : dlerror());
		return NULL;
	}
	return p->codecs[0];
}

static int bench_one(const struct bench *b, const char *spec)
{
	int level, rc = -1;
	const struct pp_codec *c = codec_of(spec, &level);
	size_t outcap = 0, total = 0, *sizes = calloc(b->ncuts, sizeof(*sizes));
	uint8_t *out = NULL, *back = malloc(b->raw_len);
	double best_c = 1e30, best_d = 1e30, tc = 0, td = 0, mib = (double)b->raw_len / (1 << 20);
	void *ctx = c ? c->ctx_new(level) : NULL;

	for (size_t i = 0, at = 0; c && i < b->ncuts; at = b->cuts[i++])
		outcap += c->bound(b->cuts[i] - at);
	if (ctx && sizes && back && (out = malloc(outcap))) {
		rc = 0;
		for (int r = 0; r < b->rounds && rc == 0; r++) {
			rc = round_trip(b, c, ctx, out, sizes, back, &tc, &td);
			best_c = tc < best_c ? tc : best_c;
			best_d = td < best_d ? td : best_d;
		}
	}
	for (size_t i = 0; rc == 0 && i < b->ncuts; i++)
		total += sizes[i];
	if (rc == 0)
		printf("%s %s ratio %.2f compress %.0f MiB/s decompress %.0f MiB/s (%zu -> %zu bytes)\n",
		       c->name, strrchr(spec, ':') ? strrchr(spec, ':') + 1 : "default",
		       (double)b->raw_len / (double)total, mib / best_c, mib / best_d, b->raw_len,
		       total);
	else
		fprintf(stderr, "ratelimit-codecbench: %s: round trip failed\n", spec);
	if (ctx)
		c->ctx_free(ctx);
	free(out);
	free(back);
	free(sizes);
	return rc;
}

int main(int argc, char **argv)
{
	struct bench b = { .batch = 1u << 20, .rounds = 3 };
	int i = 1, status = 0;

	for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (strcmp(argv[i], "--batch") == 0)
			b.batch = strtoull(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--max-caplen") == 0)
			b.max_caplen = strtoull(argv[i + 1], NULL, 0);
		else if (strcmp(argv[i], "--rounds") == 0)
			b.rounds = atoi(argv[i + 1]);
		else
			break;
	}
	if (argc - i < 2 || !b.batch || b.rounds < 1) {
		fprintf(stderr, "usage: ratelimit-codecbench [--batch BYTES] [--max-caplen N] "
				"[--rounds N] CAPTURE PLUGIN.so[:LEVEL]...\n");
		return 2;
	}
	if (load(&b, argv[i]) < 0)
		return 1;
	for (i++; i < argc; i++)
		if (bench_one(&b, argv[i]) < 0)
			status = 1;
	free(b.raw);
	free(b.cuts);
	return status;
}
