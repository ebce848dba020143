/* codec: speed and ratio of the codecs plugins offer, on corpus traffic.
 *
 *   codec [-r RUNS] [-l LEVELS] PLUGIN.so... -- CAPTURE...
 *
 * Plugins that offer no codec are skipped. Loads every packet of the CAPTUREs (any linktype) and cuts their bytes,
 * in order, into blocks the way zmq-out batches them (1024 packets or
 * 1 MiB, whichever comes first). Each PLUGIN.so is dlopen()ed as the host
 * would, its descriptor read, and every codec it offers (struct pp_codec)
 * timed: all blocks compressed, then all decompressed and compared, with
 * one context per direction as zmq-out and zmq-in keep them. Time is the
 * thread's CPU time, so other load on a shared machine does not count;
 * each figure is the median of RUNS passes (default 5). LEVELS is a comma
 * list handed to ctx_new(); -1 means the codec's default (default "1,-1").
 *
 * Prints one line per codec and level:
 *   codec NAME level L in BYTES out BYTES ratio R compress_MBps C decompress_MBps D
 * (MB = 10^6 bytes of uncompressed input per CPU second). Exit 0; 1 when
 * something could not be loaded or a round trip differs; 2 on usage.
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pcap/pcap.h>

#include <pktpipe/plugin.h>

#define BLOCK_PACKETS 1024
#define BLOCK_BYTES (1u << 20)
#define RUNS_MAX 51

struct block {
	uint8_t *data;
	size_t len;
	uint8_t *z; /* compressed */
	size_t zlen;
};

struct corpus {
	struct block *b;
	size_t n, cap;
	uint64_t bytes;
	uint32_t in_block; /* packets in the last block */
};

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct block *block_for(struct corpus *c, size_t len)
{
	struct block *b = c->n ? &c->b[c->n - 1] : NULL;

	if (b && c->in_block < BLOCK_PACKETS && b->len + len <= BLOCK_BYTES)
		return b;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->b = realloc(c->b, c->cap * sizeof(*c->b));
		if (!c->b)
			exit(1);
	}
	b = &c->b[c->n++];
	*b = (struct block){ .data = malloc(len > BLOCK_BYTES ? len : BLOCK_BYTES) };
	if (!b->data)
		exit(1);
	c->in_block = 0;
	return b;
}

static void load(struct corpus *c, const char *path)
{
	char err[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *data;
	pcap_t *pc = pcap_open_offline(path, err);

	if (!pc)
		return;
	while (pcap_next_ex(pc, &h, &data) == 1) {
		struct block *b = block_for(c, h->caplen);

		memcpy(b->data + b->len, data, h->caplen);
		b->len += h->caplen;
		c->bytes += h->caplen;
		c->in_block++;
	}
	pcap_close(pc);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[n / 2];
}

/* One pass each way over every block; CPU seconds in *ct and *dt. */
static int pass(const struct pp_codec *k, void *cctx, void *dctx, struct corpus *c,
		uint8_t *out, double *ct, double *dt, uint64_t *zbytes)
{
	double t0 = cpu_now();

	*zbytes = 0;
	for (size_t i = 0; i < c->n; i++) {
		struct block *b = &c->b[i];

		b->zlen = k->bound(b->len);
		if (k->compress(cctx, b->data, b->len, b->z, &b->zlen) < 0)
			return -1;
		*zbytes += b->zlen;
	}
	*ct = cpu_now() - t0;
	t0 = cpu_now();
	for (size_t i = 0; i < c->n; i++) {
		struct block *b = &c->b[i];
		size_t len = b->len;

		if (k->decompress(dctx, b->z, b->zlen, out, &len) < 0 || len != b->len)
			return -1;
	}
	*dt = cpu_now() - t0;
	/* Checked apart from the timing: a round trip that differs is a bug. */
	for (size_t i = 0; i < c->n; i++) {
		struct block *b = &c->b[i];
		size_t len = b->len;

		if (k->decompress(dctx, b->z, b->zlen, out, &len) < 0 ||
		    memcmp(out, b->data, b->len) != 0)
			return -1;
	}
	return 0;
}

static int bench(const struct pp_codec *k, int level, struct corpus *c, int runs)
{
	double ct[RUNS_MAX], dt[RUNS_MAX], mb = (double)c->bytes / 1e6;
	void *cctx = k->ctx_new(level), *dctx = k->ctx_new(-1);
	uint8_t *out = malloc(BLOCK_BYTES + 65536);
	uint64_t zbytes = 0;
	int rc = 0;

	for (size_t i = 0; i < c->n; i++) {
		free(c->b[i].z);
		c->b[i].z = malloc(k->bound(c->b[i].len));
		if (!c->b[i].z)
			rc = -1;
	}
	for (int r = 0; r < runs && rc == 0 && cctx && dctx && out; r++)
		rc = pass(k, cctx, dctx, c, out, &ct[r], &dt[r], &zbytes);
	if (rc < 0 || !cctx || !dctx || !out) {
		fprintf(stderr, "codec: %s level %d: round trip failed\n", k->name, level);
		rc = -1;
	} else {
		printf("codec %s level %d in %llu out %llu ratio %.2f compress_MBps %.1f "
		       "decompress_MBps %.1f\n",
		       k->name, level, (unsigned long long)c->bytes, (unsigned long long)zbytes,
		       (double)c->bytes / (double)zbytes, mb / median(ct, runs),
		       mb / median(dt, runs));
	}
	if (cctx)
		k->ctx_free(cctx);
	if (dctx)
		k->ctx_free(dctx);
	free(out);
	return rc;
}

/* The codecs of one plugin, as the host's loader would find them. */
static const struct pp_codec *const *plugin_codecs(const char *path)
{
	static const struct pp_codec *const none[] = { NULL };
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	const struct pp_plugin *p;

	if (!h) {
		fprintf(stderr, "codec: %s\n", dlerror());
		return NULL;
	}
	p = dlsym(h, PP_PLUGIN_SYMBOL);
	if (!p || p->abi_version != PP_ABI_VERSION) {
		fprintf(stderr, "codec: %s: not a plugin of ABI %d\n", path, PP_ABI_VERSION);
		return NULL;
	}
	/* A plugin that offers no codec has nothing to time. */
	if (p->struct_size < offsetof(struct pp_plugin, codecs) + sizeof(p->codecs) || !p->codecs)
		return none;
	return p->codecs;
}

static int run_levels(const struct pp_codec *k, const char *levels, struct corpus *c, int runs)
{
	char *list = strdup(levels), *save = NULL, *t;
	int rc = 0;

	for (t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (bench(k, atoi(t), c, runs) < 0)
			rc = -1;
	free(list);
	return rc;
}

int main(int argc, char **argv)
{
	const char *levels = "1,-1";
	struct corpus c = { 0 };
	int runs = 5, i = 1, sep, rc = 0;

	for (; i + 1 < argc && argv[i][0] == '-' && argv[i][1] != '-'; i += 2) {
		if (!strcmp(argv[i], "-r"))
			runs = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "-l"))
			levels = argv[i + 1];
		else
			break;
	}
	for (sep = i; sep < argc && strcmp(argv[sep], "--"); sep++)
		;
	if (sep == i || sep >= argc - 1 || runs < 1 || runs > RUNS_MAX) {
		fprintf(stderr, "usage: codec [-r RUNS] [-l LEVELS] PLUGIN.so... -- CAPTURE...\n");
		return 2;
	}
	for (int f = sep + 1; f < argc; f++)
		load(&c, argv[f]);
	if (!c.bytes) {
		fprintf(stderr, "codec: no packets in the captures given\n");
		return 1;
	}
	for (; i < sep; i++) {
		const struct pp_codec *const *k = plugin_codecs(argv[i]);

		if (!k) {
			rc = 1;
			continue;
		}
		for (; *k; k++)
			if ((*k)->struct_size >= sizeof(struct pp_codec) &&
			    run_levels(*k, levels, &c, runs) < 0)
				rc = 1;
	}
	return rc;
}
