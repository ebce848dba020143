/* ratelimit-legacyrc: checks wire_rc_from_native(), what turns a compressed
 * native frame into the original's compressed legacy-rc message (for a
 * zmq-out with wire = legacy-rc after ratelimit or the zlib node).
 *
 *   ratelimit-legacyrc ZLIB.so OUT.msg CAPTURE...
 *
 * The packets of the captures, in order, become one native frame
 * (wire_native_encode), which is decoded and checked as a receiver would
 * (wire_native_header, wire_native_check) and transcoded with the zlib
 * codec of ZLIB.so; the message is decoded again (wire_rc_open, wire_rc_next)
 * and compared with the raw-IP packets, and written to OUT.msg for an
 * independent decoder. Prints "PACKETS SKIPPED"; exit 1 on a difference.
 * The unit test rule links only the core, so the wire code is included
 * here, as tests/unit/test_wire.c does. */
#include "../../plugins/lib/wire.c"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include <pcap/pcap.h>

#define MAX_PKTS 65536

static struct pp_packet pkts[MAX_PKTS];
static struct pp_packet *ptrs[MAX_PKTS];

static uint32_t load(const char *path, uint32_t n)
{
	char err[PCAP_ERRBUF_SIZE];
	pcap_t *pc = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, err);
	struct pcap_pkthdr *h;
	const u_char *data;

	if (!pc) {
		fprintf(stderr, "ratelimit-legacyrc: %s\n", err);
		exit(2);
	}
	while (n < MAX_PKTS && pcap_next_ex(pc, &h, &data) == 1) {
		struct pp_packet *p = &pkts[n];

		p->data = malloc(h->caplen ? h->caplen : 1);
		memcpy(p->data, data, h->caplen);
		p->caplen = h->caplen;
		p->origlen = h->len;
		p->ts_ns = (uint64_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec;
		/* libpcap says DLT_RAW (12) for LINKTYPE_RAW files: both are raw IP */
		p->linktype = (uint32_t)pcap_datalink(pc);
		p->count = 1;
		ptrs[n++] = p;
	}
	pcap_close(pc);
	return n;
}

static const struct pp_codec *zlib_codec(const char *so)
{
	void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
	const struct pp_plugin *p = h ? dlsym(h, PP_PLUGIN_SYMBOL) : NULL;

	if (!p || !p->codecs || !p->codecs[0]) {
		fprintf(stderr, "ratelimit-legacyrc: %s: %s\n", so, h ? "no codec" : dlerror());
		exit(2);
	}
	return p->codecs[0];
}

/* The message decoded again: exactly the raw-IP packets, in order. */
static int compare(const uint8_t *msg, size_t len, uint32_t n, const struct pp_codec *z, void *ctx)
{
	size_t room = 64u << 20;
	uint8_t *scratch = malloc(room);
	struct wire_rc_cursor c;
	struct wire_record r;
	uint32_t i = 0;
	int rc = wire_rc_open(&c, msg, len, z, ctx, scratch, room);

	while (rc == 0 && (rc = wire_rc_next(&c, &r)) == 1) {
		while (i < n && !wire_legacy_linktype(pkts[i].linktype))
			i++;
		if (i == n || r.caplen != pkts[i].caplen ||
		    r.origlen != (pkts[i].origlen ? pkts[i].origlen : pkts[i].caplen) ||
		    r.ts_ns != pkts[i].ts_ns / 1000 * 1000 || memcmp(r.data, pkts[i].data, r.caplen)) {
			fprintf(stderr, "ratelimit-legacyrc: packet %u differs\n", i);
			rc = -1;
			break;
		}
		i++;
		rc = 0;
	}
	while (rc == 0 && i < n && !wire_legacy_linktype(pkts[i].linktype))
		i++;
	free(scratch);
	return rc == 0 && i == n ? 0 : -1;
}

/* The frame as a receiver would check it, transcoded into *msg. */
static int transcode(uint32_t n, const struct pp_codec *z, void *ctx, uint8_t **msg, size_t *msglen,
		     uint32_t *skipped)
{
	struct wire_header h = { .sender = 1 };
	size_t cap = PP_WIRE_HEADER_LEN + wire_native_records_len(ptrs, n), room;
	uint8_t *frame = malloc(cap), *scratch = NULL;
	const uint8_t *records;
	int rc = -1;

	*msg = NULL;
	if (!frame || !wire_native_encode(frame, cap, &h, ptrs, n))
		goto out;
	if (wire_native_header(frame, cap, &h) < 0 ||
	    wire_native_records(&h, NULL, NULL, NULL, 0, &records) < 0 ||
	    wire_native_check(records, h.raw_len, h.count) < 0)
		goto out;
	room = wire_rc_records_bound(h.raw_len, h.count);
	scratch = malloc(room);
	*msglen = 1 + z->bound(room);
	*msg = malloc(*msglen);
	if (scratch && *msg)
		rc = wire_rc_from_native(*msg, msglen, records, h.raw_len, h.count, scratch, room, z,
					 ctx, skipped);
out:
	free(frame);
	free(scratch);
	return rc;
}

int main(int argc, char **argv)
{
	const struct pp_codec *z;
	uint32_t n = 0, skipped = 0;
	uint8_t *msg = NULL;
	size_t len = 0;
	int status = 1;
	void *ctx;
	FILE *f;

	if (argc < 4) {
		fprintf(stderr, "usage: ratelimit-legacyrc ZLIB.so OUT.msg CAPTURE...\n");
		return 2;
	}
	z = zlib_codec(argv[1]);
	for (int i = 3; i < argc; i++)
		n = load(argv[i], n);
	ctx = z->ctx_new(6);
	if (ctx && transcode(n, z, ctx, &msg, &len, &skipped) == 0 &&
	    compare(msg, len, n, z, ctx) == 0 && (f = fopen(argv[2], "wb"))) {
		bool written = fwrite(msg, 1, len, f) == len;

		if (fclose(f) == 0 && written)
			status = 0;
	}
	if (status == 0)
		printf("%u %u\n", n - skipped, skipped);
	else
		fprintf(stderr, "ratelimit-legacyrc: transcoding failed\n");
	if (ctx)
		z->ctx_free(ctx);
	free(msg);
	for (uint32_t i = 0; i < n; i++)
		free(pkts[i].data);
	return status;
}
