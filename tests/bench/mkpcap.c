/* mkpcap: capture files for the benchmark.
 *
 *   mkpcap raw COUNT SIZE OUT          COUNT raw IPv4/UDP packets of SIZE bytes
 *                                      (LINKTYPE_RAW 101), 1 us apart
 *   mkpcap corpus COUNT OUT FILE...    COUNT packets taken in turn from the
 *                                      Ethernet (LINKTYPE 1) captures among
 *                                      FILE..., timestamps made monotonic
 *   mkpcap count FILE                  the complete records of a classic pcap
 *                                      file in native byte order (ulogd's);
 *                                      a FIFO is read as a stream until EOF
 *
 * Writes classic microsecond pcap in native byte order, as tcpdump -w does.
 * Prints "PACKETS BYTES" (bytes: the sum of caplen). Exit 0, 1 on I/O
 * errors, 2 on bad arguments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pcap/pcap.h>

struct file_header {
	uint32_t magic;
	uint16_t major, minor;
	int32_t zone;
	uint32_t sigfigs, snaplen, linktype;
};

struct rec_header {
	uint32_t sec, usec, caplen, len;
};

struct pkt {
	uint32_t caplen, len;
	uint8_t *data;
};

static int usage(void)
{
	fprintf(stderr, "usage: mkpcap raw COUNT SIZE OUT | mkpcap corpus COUNT OUT FILE...\n");
	return 2;
}

static FILE *open_out(const char *path, uint32_t linktype)
{
	struct file_header fh = { 0xa1b2c3d4u, 2, 4, 0, 0, 262144, linktype };
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(&fh, sizeof(fh), 1, f) != 1) {
		perror(path);
		if (f)
			fclose(f);
		return NULL;
	}
	setvbuf(f, NULL, _IOFBF, 1 << 20);
	return f;
}

static int put(FILE *f, uint64_t i, const struct pkt *p, uint64_t *bytes)
{
	uint64_t us = 1700000000ull * 1000000u + i;
	struct rec_header h = { (uint32_t)(us / 1000000u), (uint32_t)(us % 1000000u), p->caplen,
				p->len };

	*bytes += p->caplen;
	if (fwrite(&h, sizeof(h), 1, f) != 1 ||
	    (p->caplen && fwrite(p->data, p->caplen, 1, f) != 1))
		return -1;
	return 0;
}

static int finish(FILE *f, const char *path, uint64_t n, uint64_t bytes)
{
	if (fclose(f) != 0) {
		perror(path);
		return 1;
	}
	printf("%llu %llu\n", (unsigned long long)n, (unsigned long long)bytes);
	return 0;
}

/* An IPv4/UDP packet of size bytes (at least 28), 10.0.0.1 -> 10.0.0.2. */
static void make_udp(uint8_t *d, uint32_t size)
{
	uint32_t sum = 0;

	memset(d, 0, size);
	d[0] = 0x45;
	d[2] = (uint8_t)(size >> 8);
	d[3] = (uint8_t)size;
	d[8] = 64;
	d[9] = 17;
	memcpy(d + 12, (uint8_t[]){ 10, 0, 0, 1, 10, 0, 0, 2 }, 8);
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)d[i] << 8 | d[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	d[10] = (uint8_t)(~sum >> 8);
	d[11] = (uint8_t)~sum;
	d[20] = 0x30, d[21] = 0x39; /* 12345 */
	d[22] = 0x27, d[23] = 0x0f; /* 9999 */
	d[24] = (uint8_t)((size - 20) >> 8);
	d[25] = (uint8_t)(size - 20);
	for (uint32_t i = 28; i < size; i++)
		d[i] = (uint8_t)i;
}

static int gen_raw(uint64_t count, uint32_t size, const char *out)
{
	uint8_t buf[65536];
	struct pkt p = { size, size, buf };
	uint64_t bytes = 0;
	FILE *f;

	if (size < 28 || size > sizeof(buf))
		return usage();
	make_udp(buf, size);
	f = open_out(out, 101);
	if (!f)
		return 1;
	for (uint64_t i = 0; i < count; i++) {
		/* The IP id field changes, as it would on a wire. */
		buf[4] = (uint8_t)(i >> 8);
		buf[5] = (uint8_t)i;
		if (put(f, i, &p, &bytes) < 0) {
			perror(out);
			return 1;
		}
	}
	return finish(f, out, count, bytes);
}

/* Every packet of one Ethernet capture, appended to *pkts. */
static void load_file(const char *path, struct pkt **pkts, size_t *n, size_t *cap)
{
	char err[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *data;
	pcap_t *pc = pcap_open_offline(path, err);

	if (!pc)
		return;
	if (pcap_datalink(pc) != DLT_EN10MB) {
		pcap_close(pc);
		return;
	}
	while (pcap_next_ex(pc, &h, &data) == 1) {
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 4096;
			*pkts = realloc(*pkts, *cap * sizeof(**pkts));
			if (!*pkts)
				exit(1);
		}
		(*pkts)[*n] = (struct pkt){ h->caplen, h->len, malloc(h->caplen ? h->caplen : 1) };
		if (!(*pkts)[*n].data)
			exit(1);
		memcpy((*pkts)[*n].data, data, h->caplen);
		(*n)++;
	}
	pcap_close(pc);
}

static int gen_corpus(uint64_t count, const char *out, char **files, int nfiles)
{
	struct pkt *pkts = NULL;
	size_t n = 0, cap = 0;
	uint64_t bytes = 0;
	FILE *f;

	for (int i = 0; i < nfiles; i++)
		load_file(files[i], &pkts, &n, &cap);
	if (!n) {
		fprintf(stderr, "mkpcap: no Ethernet packets in the corpus files given\n");
		return 1;
	}
	f = open_out(out, 1);
	if (!f)
		return 1;
	for (uint64_t i = 0; i < count; i++)
		if (put(f, i, &pkts[i % n], &bytes) < 0) {
			perror(out);
			return 1;
		}
	return finish(f, out, count, bytes);
}

static bool native_magic(uint32_t magic)
{
	return magic == 0xa1b2c3d4u || magic == 0xa1b23c4du;
}

/* Records of a stream (a FIFO), read in large pieces as a reader of
 * pktpipe's FIFO would, so that the reader costs the writer little. */
static int count_stream(int fd, const char *path)
{
	static uint8_t buf[1 << 20];
	struct file_header fh;
	struct rec_header h;
	uint64_t n = 0, bytes = 0;
	size_t have = 0, off = 0;
	bool head = false;
	ssize_t got;

	while ((got = read(fd, buf + have, sizeof(buf) - have)) > 0) {
		have += (size_t)got;
		if (!head && have >= sizeof(fh)) {
			memcpy(&fh, buf, sizeof(fh));
			if (!native_magic(fh.magic))
				break;
			head = true, off = sizeof(fh);
		}
		while (head && have - off >= sizeof(h)) {
			memcpy(&h, buf + off, sizeof(h));
			if (have - off - sizeof(h) < h.caplen)
				break;
			off += sizeof(h) + h.caplen;
			n++;
			bytes += h.caplen;
		}
		memmove(buf, buf + off, have - off);
		have -= off, off = 0;
	}
	if (got < 0 || !head) {
		fprintf(stderr, "mkpcap: %s: %s\n", path,
			got < 0 ? strerror(errno) : "not a native-order pcap stream");
		return 1;
	}
	printf("%llu %llu\n", (unsigned long long)n, (unsigned long long)bytes);
	return 0;
}

static int count(const char *path)
{
	struct file_header fh;
	struct rec_header h;
	uint64_t n = 0, bytes = 0;
	size_t off = sizeof(fh);
	struct stat st;
	const uint8_t *m;
	int fd = open(path, O_RDONLY);
	bool opened = fd >= 0 && fstat(fd, &st) == 0;

	if (opened && S_ISFIFO(st.st_mode))
		return count_stream(fd, path);
	if (!opened || (size_t)st.st_size < sizeof(fh)) {
		fprintf(stderr, "mkpcap: %s: cannot read\n", path);
		return 1;
	}
	m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		return 1;
	memcpy(&fh, m, sizeof(fh));
	if (!native_magic(fh.magic)) {
		fprintf(stderr, "mkpcap: %s: not a native-order pcap file\n", path);
		return 1;
	}
	/* A record cut at the end of the file is not counted. */
	while (off + sizeof(h) <= (size_t)st.st_size) {
		memcpy(&h, m + off, sizeof(h));
		if ((size_t)st.st_size - off - sizeof(h) < h.caplen)
			break;
		off += sizeof(h) + h.caplen;
		n++;
		bytes += h.caplen;
	}
	printf("%llu %llu\n", (unsigned long long)n, (unsigned long long)bytes);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "count") == 0)
		return count(argv[2]);
	if (argc == 5 && strcmp(argv[1], "raw") == 0)
		return gen_raw(strtoull(argv[2], NULL, 10), (uint32_t)strtoul(argv[3], NULL, 10),
			       argv[4]);
	if (argc >= 5 && strcmp(argv[1], "corpus") == 0)
		return gen_corpus(strtoull(argv[2], NULL, 10), argv[3], argv + 4, argc - 4);
	return usage();
}
