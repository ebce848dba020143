/* pcapcmp: compare two capture files packet by packet, through libpcap with
 * nanosecond timestamps. A test tool: what a round trip must preserve.
 *
 *   pcapcmp [--snaplen N] [--count N] A B
 *
 * Compares the linktype (raw IP 12 and 101 count as equal), then for each
 * packet the timestamp in ns, caplen, original length and bytes. Seconds
 * count modulo 2^32, as classic pcap stores them (unsigned: libpcap reads
 * them signed), so a pcapng time after 2106 matches its classic copy.
 * --snaplen N: B was written with snaplen N: compare min(caplen, N) bytes.
 * --count N: compare only the first N packets (both must have them).
 *
 * Exit 0 and "N packets identical"; 1 and the first difference; 2 when a
 * file cannot be opened or the arguments are wrong.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

struct cmp_args {
	const char *path[2];
	uint64_t snaplen; /* 0: none */
	uint64_t count; /* 0: all */
	bool have_count;
};

struct cmp_pkt {
	int rc; /* pcap_next_ex's */
	struct pcap_pkthdr *h;
	const u_char *data;
};

static int cmp_number(const char *text, uint64_t *out)
{
	char *end;

	errno = 0;
	*out = strtoull(text, &end, 0);
	return errno || end == text || *end || text[0] == '-' ? -EINVAL : 0;
}

static int cmp_parse_args(int argc, char **argv, struct cmp_args *a)
{
	int n = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--snaplen") && i + 1 < argc) {
			if (cmp_number(argv[++i], &a->snaplen) < 0)
				return -EINVAL;
		} else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
			if (cmp_number(argv[++i], &a->count) < 0)
				return -EINVAL;
			a->have_count = true;
		} else if (n < 2 && argv[i][0] != '-') {
			a->path[n++] = argv[i];
		} else {
			return -EINVAL;
		}
	}
	return n == 2 ? 0 : -EINVAL;
}

static pcap_t *cmp_open(const char *path)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *p;

	p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (!p)
		fprintf(stderr, "pcapcmp: %s: %s\n", path, errbuf);
	return p;
}

static bool cmp_raw_ip(int dlt)
{
	return dlt == DLT_RAW || dlt == 101;
}

static int cmp_linktypes(pcap_t *const p[2], const struct cmp_args *a)
{
	int l0 = pcap_datalink(p[0]), l1 = pcap_datalink(p[1]);

	if (l0 == l1 || (cmp_raw_ip(l0) && cmp_raw_ip(l1)))
		return 0;
	printf("linktype differs: %s: %d (%s), %s: %d (%s)\n", a->path[0], l0,
	       pcap_datalink_val_to_name(l0) ? pcap_datalink_val_to_name(l0) : "?", a->path[1], l1,
	       pcap_datalink_val_to_name(l1) ? pcap_datalink_val_to_name(l1) : "?");
	return 1;
}

static uint64_t cmp_ts(const struct pcap_pkthdr *h)
{
	return (uint64_t)(uint32_t)h->ts.tv_sec * 1000000000u + (uint64_t)h->ts.tv_usec;
}

/* Header fields of packet i; 0 if equal, else 1 with the difference told. */
static int cmp_headers(const struct cmp_pkt *k, const struct cmp_args *a, uint64_t i)
{
	const struct pcap_pkthdr *h0 = k[0].h, *h1 = k[1].h;
	uint64_t c0 = h0->caplen;

	if (a->snaplen && c0 > a->snaplen)
		c0 = a->snaplen;
	if (cmp_ts(h0) != cmp_ts(h1)) {
		printf("packet %" PRIu64 ": ts differs: %" PRIu64 " ns, %" PRIu64 " ns\n", i,
		       cmp_ts(h0), cmp_ts(h1));
		return 1;
	}
	if (c0 != h1->caplen) {
		printf("packet %" PRIu64 ": caplen differs: %" PRIu64 ", %u\n", i, c0, h1->caplen);
		return 1;
	}
	if (h0->len != h1->len) {
		printf("packet %" PRIu64 ": len differs: %u, %u\n", i, h0->len, h1->len);
		return 1;
	}
	return 0;
}

static int cmp_bytes(const struct cmp_pkt *k, uint64_t i)
{
	for (uint32_t off = 0; off < k[1].h->caplen; off++) {
		if (k[0].data[off] != k[1].data[off]) {
			printf("packet %" PRIu64 ": bytes differ at offset %u: 0x%02x, 0x%02x\n", i,
			       off, k[0].data[off], k[1].data[off]);
			return 1;
		}
	}
	return 0;
}

/* Both files have ended or failed at packet i: tell which. */
static int cmp_ends(pcap_t *const p[2], const struct cmp_pkt *k, const struct cmp_args *a,
		    uint64_t i)
{
	for (int f = 0; f < 2; f++) {
		if (k[f].rc == PCAP_ERROR) {
			printf("%s: read error at packet %" PRIu64 ": %s\n", a->path[f], i,
			       pcap_geterr(p[f]));
			return 1;
		}
	}
	if (k[0].rc != k[1].rc) {
		printf("packet %" PRIu64 ": %s has it, %s has ended\n", i,
		       a->path[k[0].rc == 1 ? 0 : 1], a->path[k[0].rc == 1 ? 1 : 0]);
		return 1;
	}
	if (a->have_count && i < a->count) {
		printf("both files end at packet %" PRIu64 ", before %" PRIu64 "\n", i, a->count);
		return 1;
	}
	printf("%" PRIu64 " packets identical\n", i);
	return 0;
}

static int cmp_files(pcap_t *const p[2], const struct cmp_args *a)
{
	struct cmp_pkt k[2];
	uint64_t i;

	if (cmp_linktypes(p, a))
		return 1;
	for (i = 0; !a->have_count || i < a->count; i++) {
		for (int f = 0; f < 2; f++)
			k[f].rc = pcap_next_ex(p[f], &k[f].h, &k[f].data);
		if (k[0].rc != 1 || k[1].rc != 1)
			return cmp_ends(p, k, a, i);
		if (cmp_headers(k, a, i) || cmp_bytes(k, i))
			return 1;
	}
	printf("%" PRIu64 " packets identical\n", i);
	return 0;
}

int main(int argc, char **argv)
{
	struct cmp_args a = { 0 };
	pcap_t *p[2] = { NULL, NULL };
	int rc = 2;

	if (cmp_parse_args(argc, argv, &a) < 0) {
		fprintf(stderr, "usage: pcapcmp [--snaplen N] [--count N] A B\n");
		return 2;
	}
	p[0] = cmp_open(a.path[0]);
	if (!p[0])
		goto out;
	p[1] = cmp_open(a.path[1]);
	if (!p[1])
		goto out;
	rc = cmp_files(p, &a);
out:
	for (int f = 0; f < 2; f++)
		if (p[f])
			pcap_close(p[f]);
	return rc;
}
