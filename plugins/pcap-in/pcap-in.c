/* pcap-in: replay a pcap or pcapng file (or FIFO) into the graph.
 *
 * libpcap does the reading, with nanosecond timestamps. Each loop turn reads
 * at most PP_BATCH_MAX packets (fewer when paced), emits them as one batch
 * and comes back through a host timer, so a large file never holds the loop.
 *
 * Linktype: libpcap hands out DLT_* values, which differ from the file's
 * LINKTYPE_* number for a few types (LINKTYPE_RAW 101 reads as DLT_RAW 12 on
 * Linux). We keep the file's own number: for classic pcap we read it from the
 * file header, which we capture on its way into libpcap (see pin_stream); for
 * pcapng we map the DLT back with the short table below.
 *
 * Speed: libpcap reads a classic file with two fread()s per record. For the
 * common files (native byte order, version 2.4, a linktype libpcap does not
 * rewrite) we read the records ourselves from a large buffer, exactly as
 * libpcap would deliver them; at the first record that is not plain (longer
 * than the snapshot length or 256 KiB, cut short, a read error) the rest of
 * the stream, buffered bytes first, goes to libpcap, which handles it and
 * words its errors as always. See pin_fast_start(). A regular file may be
 * read through a map of it (filemap.h; mmap = yes): its records of
 * PIN_WRAP_MIN bytes and more become packets over the file's own bytes.
 * Not the default: where a first touch of a mapped page is dear (some
 * hypervisors), that costs more than the copy it saves.
 * Read with read() (mmap = no, or bytes appended after the map was made),
 * a large record that the file holds whole is read straight into its
 * packet, not through the buffer: one copy less.
 *
 * FIFOs: a writer may be slow, silent or not there yet, and the loop must
 * not wait for it. A FIFO is opened with O_NONBLOCK, watched, and read into
 * a bounded buffer in which we frame whole units (header, records, pcapng
 * blocks) by their lengths; the parsers above (the fast reader, libpcap's
 * stream) are only given framed bytes and only run when the next packet is
 * framed, so they never see EAGAIN. Regular files do not take this path.
 */
#include <byteswap.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <pcap/pcap.h>

#include <pktpipe/plugin.h>

#include "filemap.h"
#include "linktype.h"
#include "outq.h"

#define PIN_HEAD_LEN 24 /* a classic pcap file header */
#define PIN_PCAPNG_MAGIC 0x0a0d0d0au /* a palindrome: no byte order */
#define PIN_QUANTA_PER_S 100 /* paced: emit 10 ms worth of bytes per turn */
#define PIN_MAGIC_US 0xa1b2c3d4u
#define PIN_MAGIC_NS 0xa1b23c4du
#define PIN_RBUF (512u * 1024u) /* fast reader: holds any record up to 256 KiB */
#define PIN_DIRECT_MIN (16u * 1024u) /* records this large skip the buffer */
#define PIN_READ (64u * 1024u) /* a regular file's reads */
#define PIN_WRAP_MIN 256u /* a mapped file's records this large are not copied */
#define PIN_DLT_USB_MMAPPED 220 /* libpcap fixes its lengths up: not plain */
#define PIN_CAPLEN_MAX 262144u /* libpcap's smallest largest snapshot length */
#define PIN_BLOCK_MAX (PIN_CAPLEN_MAX + 65536u) /* a pcapng block: packet and options */
#define PIN_FIFO_CAP (1024u * 1024u) /* a FIFO's buffer: several of the largest units */
#define PIN_MAGIC_MOD 0xa1b2cd34u /* "modified" pcap: 24-byte record headers */
#define PIN_NG_BOM 0x1a2b3c4du

struct pin_config {
	char *path;
	uint64_t rate; /* bytes/s of caplen; 0 = as fast as possible */
	int64_t loop; /* times to play the file; 0 = endlessly */
	bool mmap; /* read a regular file through a map */
};

static const struct pp_option pin_options[] = {
	{ .name = "path", .type = PP_OPT_PATH, .default_value = NULL,
	  .offset = offsetof(struct pin_config, path),
	  .help = "capture file or FIFO to read (pcap or pcapng)" },
	{ .name = "rate", .type = PP_OPT_RATE, .default_value = "0",
	  .offset = offsetof(struct pin_config, rate),
	  .help = "pace replay to this many bytes/s of captured data; 0 = as fast as possible" },
	{ .name = "loop", .type = PP_OPT_INT, .default_value = "1", .min = 0, .max = INT64_MAX,
	  .offset = offsetof(struct pin_config, loop),
	  .help = "how many times to play the file; 0 = endlessly" },
	{ .name = "mmap", .type = PP_OPT_BOOL, .default_value = "no",
	  .offset = offsetof(struct pin_config, mmap),
	  .help = "read a regular file through a memory map: packets of 256 bytes and more are "
		  "made over the file's bytes, not copied; no: read() it, in large reads" },
	PP_OPTION_END
};

/* The fast reader: unread bytes are buf[pos, len). */
struct pin_fast {
	bool on; /* records come from here, not from libpcap */
	bool nano; /* the file has nanosecond timestamps */
	uint32_t snapshot; /* longer records are not plain */
	const uint8_t *buf; /* own, or the bytes of map */
	uint8_t *own; /* PIN_RBUF bytes, kept from play to play */
	struct filemap *map; /* the file as it was at open, or NULL */
	size_t pos, len;
	bool regular; /* a regular file of size bytes, read up to fd_off */
	uint64_t size, fd_off;
};

/* A FIFO is read without blocking into buf; framed marks the end of the
 * whole units (header, records, blocks) in it, and the parser is only given
 * bytes before framed, so it never meets a half-written unit. */
struct pin_fifo {
	bool on; /* path is a FIFO */
	int fd;
	struct pp_watch *watch;
	uint8_t *buf; /* PIN_FIFO_CAP bytes; unread: [pos, len) */
	size_t pos, len, framed;
	int phase; /* 0: magic; 1: classic header; 2: records; 3: pcapng; 4: not a capture */
	bool swapped; /* the file's (or section's) byte order is not ours */
	uint32_t rec_hdr; /* classic record header length */
	uint64_t pkts; /* packet units framed this play */
	bool eof; /* the writer left: everything buffered is given out */
	bool waiting; /* pin_turn parked until more is framed */
	int err; /* -errno: framing or reading failed */
};

struct pin_state {
	struct pp_node *node;
	const struct pp_host *host;
	const struct pin_config *cfg;
	struct pp_stats *stats;
	pp_counter *drop_nomem;
	struct pp_log_limit nomem_limit;
	bool can_wrap; /* the host has packet_wrap() */
	char err[PCAP_ERRBUF_SIZE]; /* the fast reader's, when it failed */
	pcap_t *pcap;
	struct pin_stream *stream; /* libpcap's, while pcap is open */
	struct pin_fast fast;
	struct pin_fifo fifo;
	bool classic; /* classic pcap, not pcapng */
	uint32_t linktype;
	uint8_t head[PIN_HEAD_LEN]; /* the file's first bytes, as read */
	size_t head_len;
	uint64_t played; /* complete plays of the file so far */
	uint64_t packets; /* read in the current play, for error messages */
	uint64_t quantum; /* bytes per turn */
	uint64_t next_ns; /* paced: monotonic time the next turn is due */
	struct pp_timer *timer;
	bool done;
	struct outq out; /* this turn's packets */
};

/* ------------------------------------------------------------------ */
/* Opening the file                                                     */

/* A stdio stream over the file that first replays the header bytes we
 * already read, so libpcap sees the whole file even when it is a FIFO that
 * cannot be rewound. */
struct pin_stream {
	int fd; /* -1: the bytes come from fifo */
	struct pin_fifo *fifo;
	const uint8_t *head;
	size_t len, pos;
	bool fd_read; /* bytes beyond head were asked of fd */
};

/* Up to len framed bytes of a FIFO; 0 only once the writer has left. */
static ssize_t pin_fifo_take(struct pin_fifo *q, void *buf, size_t len)
{
	size_t n = q->framed - q->pos;

	if (!n && !q->eof) {
		errno = EAGAIN;
		return -1;
	}
	if (n > len)
		n = len;
	memcpy(buf, q->buf + q->pos, n);
	q->pos += n;
	return (ssize_t)n;
}

/* The parser's reads: a regular file's fd, or a FIFO's framed bytes. */
static ssize_t pin_src_read(int fd, struct pin_fifo *q, void *buf, size_t len)
{
	if (q)
		return pin_fifo_take(q, buf, len);
	return read(fd, buf, len);
}

static ssize_t pin_stream_read(void *cookie, char *buf, size_t size)
{
	struct pin_stream *st = cookie;
	ssize_t n;

	if (st->pos < st->len) {
		n = (ssize_t)(size < st->len - st->pos ? size : st->len - st->pos);
		memcpy(buf, st->head + st->pos, (size_t)n);
		st->pos += (size_t)n;
		return n;
	}
	st->fd_read = true;
	do
		n = pin_src_read(st->fd, st->fifo, buf, size);
	while (n < 0 && errno == EINTR);
	return n;
}

static int pin_stream_close(void *cookie)
{
	struct pin_stream *st = cookie;

	if (st->fd >= 0)
		close(st->fd);
	free(st);
	return 0;
}

/* Read up to len bytes; fewer only at end of file. */
static ssize_t pin_read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* The first bytes into s->head: from the file, or from a FIFO's buffer,
 * which holds them whole by now (see pin_fifo_ready()). */
static ssize_t pin_read_head(struct pin_state *s, int *fd)
{
	ssize_t n;

	if (s->fifo.on) {
		*fd = -1;
		n = pin_fifo_take(&s->fifo, s->head, sizeof(s->head));
		return n < 0 ? -errno : n;
	}
	*fd = open(s->cfg->path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	return pin_read_full(*fd, s->head, sizeof(s->head));
}

/* Open the path and wrap it in a pin_stream; s->head gets the first bytes. */
static int pin_fopen(struct pin_state *s, FILE **fp)
{
	struct pin_stream *st;
	ssize_t n;
	int fd, rc;

	n = pin_read_head(s, &fd);
	if (n < 0 && fd < 0)
		return (int)n;
	if (n < 0) {
		rc = (int)n;
		goto err_fd;
	}
	s->head_len = (size_t)n;
	rc = -ENOMEM;
	st = calloc(1, sizeof(*st));
	if (!st)
		goto err_fd;
	*st = (struct pin_stream){ .fd = fd, .head = s->head, .len = s->head_len,
				   .fifo = s->fifo.on ? &s->fifo : NULL };
	s->stream = st;
	*fp = fopencookie(st, "r", (cookie_io_functions_t){ .read = pin_stream_read,
							      .close = pin_stream_close });
	if (!*fp)
		goto err_st;
	/* libpcap reads record by record: a larger buffer saves syscalls. */
	setvbuf(*fp, NULL, _IOFBF, 1 << 16);
	return 0;
err_st:
	free(st);
err_fd:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Classic pcap: the header's own number (offset 20, low 16 bits; the high
 * bits carry FCS flags). pcapng: libpcap's DLT mapped back. */
static uint32_t pin_file_linktype(struct pin_state *s)
{
	uint32_t magic, lt;

	memcpy(&magic, s->head, sizeof(magic));
	if (s->head_len < PIN_HEAD_LEN || magic == PIN_PCAPNG_MAGIC)
		return linktype_from_dlt(pcap_datalink(s->pcap));
	s->classic = true;
	memcpy(&lt, s->head + 20, sizeof(lt));
	if (pcap_is_swapped(s->pcap))
		lt = bswap_32(lt);
	return lt & 0xffffu;
}

/* A regular file is read through a map of what it holds now (filemap.h);
 * what it grows by later is read from the fd, which is moved past the map.
 * Without a map (none wanted, or it failed) the file is read as always. */
static void pin_fast_map(struct pin_state *s)
{
	struct pin_fast *f = &s->fast;

	if (!s->cfg->mmap || !f->regular || f->size <= PIN_HEAD_LEN || f->size > SIZE_MAX / 2 ||
	    filemap_open(&f->map, s->stream->fd, (size_t)f->size) < 0)
		return;
	if (lseek(s->stream->fd, (off_t)f->size, SEEK_SET) < 0) {
		filemap_release(f->map);
		f->map = NULL;
		return;
	}
	f->buf = filemap_bytes(f->map);
	f->pos = PIN_HEAD_LEN;
	f->len = (size_t)f->size;
	f->fd_off = f->size;
}

/* Reading goes on from the fd into our own buffer. */
static void pin_fast_unmap(struct pin_fast *f)
{
	if (f->map)
		filemap_release(f->map);
	f->map = NULL;
	f->buf = f->own;
}

/* Whether we read the records ourselves: a classic file libpcap takes as
 * it is (native byte order, so no pseudo-header is swapped; version 2.4, so
 * lengths are not swapped; not the patched format; no length fix-ups), and
 * libpcap has read its 24-byte header and nothing more, so the stream's
 * next byte is the first record's. */
static void pin_fast_start(struct pin_state *s)
{
	struct pin_fast *f = &s->fast;
	struct stat st;
	uint32_t magic;
	uint16_t major, minor;

	f->on = false;
	if (!s->classic || pcap_is_swapped(s->pcap) || s->stream->fd_read ||
	    s->stream->pos != PIN_HEAD_LEN || pcap_datalink(s->pcap) == PIN_DLT_USB_MMAPPED ||
	    pcap_snapshot(s->pcap) <= 0)
		return;
	memcpy(&magic, s->head, sizeof(magic));
	memcpy(&major, s->head + 4, sizeof(major));
	memcpy(&minor, s->head + 6, sizeof(minor));
	if ((magic != PIN_MAGIC_US && magic != PIN_MAGIC_NS) || major != 2 || minor != 4)
		return;
	if (!f->own && !(f->own = malloc(PIN_RBUF)))
		return;
	f->buf = f->own;
	f->nano = magic == PIN_MAGIC_NS;
	/* libpcap refuses a record above its largest snapshot for the
	 * linktype (262144 bytes, more for a few), even below the file's own
	 * snapshot length, and cuts one above the latter: both are its. */
	f->snapshot = (uint32_t)pcap_snapshot(s->pcap);
	if (f->snapshot > PIN_CAPLEN_MAX)
		f->snapshot = PIN_CAPLEN_MAX;
	f->pos = f->len = 0;
	f->regular = s->stream->fd >= 0 && fstat(s->stream->fd, &st) == 0 &&
		     S_ISREG(st.st_mode);
	f->size = f->regular ? (uint64_t)st.st_size : 0;
	f->fd_off = PIN_HEAD_LEN;
	f->on = true;
	pin_fast_map(s);
}

/* From here on libpcap reads: the bytes we buffered first, then the fd. */
static void pin_fast_stop(struct pin_state *s)
{
	struct pin_fast *f = &s->fast;

	f->on = false;
	s->stream->head = f->buf + f->pos;
	s->stream->len = f->len - f->pos;
	s->stream->pos = 0;
}

/* ------------------------------------------------------------------ */
/* FIFOs: read without blocking, framed into whole units                 */

static uint32_t pin_fifo_u32(const struct pin_fifo *q, size_t off)
{
	uint32_t v;

	memcpy(&v, q->buf + off, sizeof(v));
	return q->swapped ? bswap_32(v) : v;
}

/* The stream's first four bytes say how it is framed. Not a capture file:
 * everything is given out as it comes, for libpcap to refuse in its words. */
static void pin_fifo_magic(struct pin_fifo *q, uint32_t magic)
{
	uint32_t m = magic;

	if (magic == PIN_PCAPNG_MAGIC) {
		q->phase = 3;
		return;
	}
	q->swapped = m != PIN_MAGIC_US && m != PIN_MAGIC_NS && m != PIN_MAGIC_MOD;
	if (q->swapped)
		m = bswap_32(magic);
	q->phase = m == PIN_MAGIC_US || m == PIN_MAGIC_NS || m == PIN_MAGIC_MOD ? 1 : 4;
	q->rec_hdr = m == PIN_MAGIC_MOD ? 24 : 16;
}

/* pcapng: a block's length is at 4..7 in its section's byte order, which
 * a Section Header Block sets with its byte-order magic at 8..11. */
static int pin_fifo_block(struct pin_state *s, size_t at, uint32_t *len, bool *pkt)
{
	struct pin_fifo *q = &s->fifo;
	uint32_t type, bom;

	memcpy(&type, q->buf + at, sizeof(type));
	if (type == PIN_PCAPNG_MAGIC) {
		memcpy(&bom, q->buf + at + 8, sizeof(bom));
		q->swapped = bom != PIN_NG_BOM;
		if (q->swapped && bswap_32(bom) != PIN_NG_BOM) {
			snprintf(s->err, sizeof(s->err), "bad pcapng byte-order magic 0x%08x", bom);
			return -EBADMSG;
		}
	}
	type = pin_fifo_u32(q, at);
	*len = pin_fifo_u32(q, at + 4);
	*pkt = type == 2 || type == 3 || type == 6; /* obsolete, simple, enhanced */
	if (*len >= 12 && *len <= PIN_BLOCK_MAX)
		return 0;
	snprintf(s->err, sizeof(s->err), "pcapng block of %u bytes (limit %u)", *len, PIN_BLOCK_MAX);
	return -EBADMSG;
}

/* The length of the unit at framed, or 0 while too little of it is there
 * to tell; *pkt: it holds a packet. -EBADMSG for a length no file has. */
static int pin_fifo_unit(struct pin_state *s, size_t have, size_t *unit, bool *pkt)
{
	struct pin_fifo *q = &s->fifo;
	uint32_t len, magic;
	int rc;

	*unit = 0;
	*pkt = false;
	if (q->phase == 0 && have >= 4) {
		memcpy(&magic, q->buf + q->framed, sizeof(magic));
		pin_fifo_magic(q, magic);
	}
	if (q->phase == 1 && have >= PIN_HEAD_LEN)
		*unit = PIN_HEAD_LEN;
	if (q->phase == 2 && have >= q->rec_hdr) {
		len = pin_fifo_u32(q, q->framed + 8);
		if (len > PIN_CAPLEN_MAX) {
			snprintf(s->err, sizeof(s->err), "record of %u captured bytes (limit %u)",
				 len, PIN_CAPLEN_MAX);
			return -EBADMSG;
		}
		*unit = q->rec_hdr + len;
		*pkt = true;
	}
	if (q->phase == 3 && have >= 12) {
		rc = pin_fifo_block(s, q->framed, &len, pkt);
		if (rc < 0)
			return rc;
		*unit = len;
	}
	if (q->phase == 4)
		*unit = have;
	return 0;
}

/* Move framed over every whole unit that is buffered. */
static int pin_fifo_frame(struct pin_state *s)
{
	struct pin_fifo *q = &s->fifo;
	size_t unit;
	bool pkt;
	int rc;

	for (;;) {
		rc = pin_fifo_unit(s, q->len - q->framed, &unit, &pkt);
		if (rc < 0 || !unit || unit > q->len - q->framed)
			return rc;
		q->framed += unit;
		q->pkts += pkt;
		if (q->phase == 1)
			q->phase = 2;
	}
}

/* Room at the end of the buffer, made by dropping what was read once it
 * is worth a memmove. */
static void pin_fifo_compact(struct pin_fifo *q)
{
	if (!q->pos || PIN_FIFO_CAP - q->len >= PIN_FIFO_CAP / 2)
		return;
	memmove(q->buf, q->buf + q->pos, q->len - q->pos);
	q->len -= q->pos;
	q->framed -= q->pos;
	q->pos = 0;
}

/* Read what the writer has sent, until EAGAIN or a full buffer. */
static int pin_fifo_fill(struct pin_state *s)
{
	struct pin_fifo *q = &s->fifo;
	ssize_t n;
	int rc;

	pin_fifo_compact(q);
	while (q->len < PIN_FIFO_CAP && !q->eof) {
		n = read(q->fd, q->buf + q->len, PIN_FIFO_CAP - q->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			rc = -errno;
			snprintf(s->err, sizeof(s->err), "read: %s", strerror(-rc));
			return rc;
		}
		q->eof = n == 0;
		q->len += (size_t)n;
	}
	rc = pin_fifo_frame(s);
	/* A partial unit at the end goes to the parser, which calls it cut. */
	if (rc == 0 && q->eof)
		q->framed = q->len;
	return rc;
}

/* Whether the parser may run: it will not meet a missing byte, since the
 * next packet and every block before it are framed, or the writer left. */
static bool pin_fifo_ready(const struct pin_state *s)
{
	const struct pin_fifo *q = &s->fifo;

	return q->err || q->eof || q->phase == 4 || q->pkts > s->packets;
}

static void pin_fifo_unwatch(struct pin_state *s)
{
	if (s->fifo.watch)
		s->host->unwatch(s->fifo.watch);
	s->fifo.watch = NULL;
}

static void pin_fifo_event(void *arg, int fd, unsigned events);

/* Watch the FIFO, once started, while there is something to wait for. */
static int pin_fifo_watch(struct pin_state *s)
{
	struct pin_fifo *q = &s->fifo;

	if (q->watch || !s->timer || q->fd < 0 || q->eof || q->err || q->len >= PIN_FIFO_CAP)
		return 0;
	q->watch = s->host->watch_fd(s->node, q->fd, PP_WATCH_READ, pin_fifo_event, s);
	return q->watch ? 0 : -ENOMEM;
}

/* After a turn: the parser made room, so read again (a full buffer is
 * not watched: that is how a paced or slow graph holds the writer back). */
static void pin_fifo_resume(struct pin_state *s)
{
	pin_fifo_compact(&s->fifo);
	if (pin_fifo_watch(s) == 0)
		return;
	snprintf(s->err, sizeof(s->err), "cannot watch the FIFO: %s", strerror(ENOMEM));
	s->fifo.err = -ENOMEM;
}

/* The parked turn runs again, when pacing allows. */
static void pin_fifo_wake(struct pin_state *s)
{
	uint64_t now = s->host->now_mono_ns();

	s->fifo.waiting = false;
	s->host->timer_arm(s->timer, s->next_ns > now ? s->next_ns - now : 0, 0);
}

static void pin_fifo_event(void *arg, int fd, unsigned events)
{
	struct pin_state *s = arg;
	struct pin_fifo *q = &s->fifo;
	int rc;

	(void)fd;
	(void)events;
	if (s->done) {
		pin_fifo_unwatch(s);
		return;
	}
	rc = pin_fifo_fill(s);
	if (rc < 0)
		q->err = rc;
	/* Level-triggered: a hangup or a full buffer would fire forever. */
	if (rc < 0 || q->eof || q->len >= PIN_FIFO_CAP)
		pin_fifo_unwatch(s);
	if (q->waiting && pin_fifo_ready(s))
		pin_fifo_wake(s);
}

/* O_NONBLOCK: the open does not wait for a writer. Until one comes, epoll
 * reports nothing on the read end (no hangup), so the node just waits. */
static int pin_fifo_open(struct pin_state *s)
{
	struct pin_fifo *q = &s->fifo;

	if (!q->buf && !(q->buf = malloc(PIN_FIFO_CAP)))
		return -ENOMEM;
	q->fd = open(s->cfg->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (q->fd < 0) {
		s->host->log(s->node, PP_LOG_ERROR, "%s: %s", s->cfg->path, strerror(errno));
		return -errno;
	}
	q->pos = q->len = q->framed = 0;
	q->phase = 0;
	q->pkts = 0;
	q->eof = q->waiting = false;
	q->err = 0;
	s->packets = 0;
	return pin_fifo_watch(s);
}

static void pin_fifo_close(struct pin_state *s)
{
	pin_fifo_unwatch(s);
	if (s->fifo.fd >= 0)
		close(s->fifo.fd);
	s->fifo.fd = -1;
}

static int pin_pcap_open(struct pin_state *s)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	FILE *fp = NULL;
	int rc;

	rc = pin_fopen(s, &fp);
	if (rc < 0) {
		s->host->log(s->node, PP_LOG_ERROR, "%s: %s", s->cfg->path, strerror(-rc));
		return rc;
	}
	s->pcap = pcap_fopen_offline_with_tstamp_precision(fp, PCAP_TSTAMP_PRECISION_NANO, errbuf);
	if (!s->pcap) {
		/* libpcap leaves fp to us when it refuses it. */
		fclose(fp);
		s->stream = NULL;
		s->host->log(s->node, PP_LOG_ERROR, "%s: not a readable capture file: %s",
			     s->cfg->path, errbuf);
		return -EBADMSG;
	}
	s->classic = false;
	s->linktype = pin_file_linktype(s);
	s->packets = 0;
	pin_fast_start(s);
	return 0;
}

static void pin_close_file(struct pin_state *s)
{
	if (s->pcap)
		pcap_close(s->pcap);
	s->pcap = NULL;
	s->stream = NULL;
	s->fast.on = false;
	pin_fast_unmap(&s->fast);
	pin_fifo_close(s);
}

/* A FIFO's capture is opened by libpcap later, once its header is here. */
static int pin_open_file(struct pin_state *s)
{
	if (s->fifo.on)
		return pin_fifo_open(s);
	return pin_pcap_open(s);
}

static int pin_open(struct pp_node *node, const struct pp_host *host, const void *config,
		    void **state)
{
	struct pin_state *s;
	struct stat st;
	int rc = -ENOMEM;

	s = calloc(1, sizeof(*s));
	if (!s)
		goto err;
	*s = (struct pin_state){ .node = node, .host = host, .cfg = config };
	s->fifo.fd = -1;
	s->can_wrap = PP_HOST_HAS(host, packet_wrap);
	outq_init(&s->out, node, host);
	s->fifo.on = stat(s->cfg->path, &st) == 0 && S_ISFIFO(st.st_mode);
	s->stats = host->stats(node);
	s->drop_nomem = host->drop_reason(node, "nomem");
	s->quantum = s->cfg->rate ? s->cfg->rate / PIN_QUANTA_PER_S + 1 : UINT64_MAX;
	rc = pin_open_file(s);
	if (rc < 0)
		goto err_free;
	*state = s;
	return 0;
err_free:
	free(s->fifo.buf);
	free(s);
err:
	return rc;
}

/* ------------------------------------------------------------------ */
/* Producing                                                            */

static void pin_turn(void *arg);

/* The timer is made here, not in open(): a node that was opened but never
 * started is closed without stop(), and close() may not free it. */
static int pin_start(void *state)
{
	struct pin_state *s = state;

	s->timer = s->host->timer_new(s->node, pin_turn, s);
	if (!s->timer)
		return -ENOMEM;
	s->next_ns = s->host->now_mono_ns();
	if (s->fifo.on && pin_fifo_watch(s) < 0)
		return -ENOMEM;
	return s->host->timer_arm(s->timer, 0, 0);
}

/* With nanosecond precision, libpcap's tv_usec holds nanoseconds. Classic
 * pcap stores seconds as an unsigned 32-bit number (good until 2106) but
 * libpcap reads them as signed: undo that. */
static uint64_t pin_ts_ns(const struct pin_state *s, const struct pcap_pkthdr *h)
{
	uint64_t sec = s->classic ? (uint32_t)h->ts.tv_sec : (uint64_t)h->ts.tv_sec;

	return sec * 1000000000u + (uint64_t)h->ts.tv_usec;
}

/* How much to read: a regular file in steps of PIN_READ, so that a large
 * record is seldom buffered whole and goes straight to its packet. */
static size_t pin_fast_room(const struct pin_fast *f, size_t need)
{
	size_t room = PIN_RBUF - f->len;

	if (!f->regular || need > f->len + PIN_READ)
		return room;
	return room < PIN_READ ? room : PIN_READ;
}

/* At least need unread bytes in the buffer. 0: there are; 1: the file
 * ended cleanly, between records; -1: it did not (cut short, read error). */
static int pin_fast_fill(struct pin_state *s, size_t need)
{
	struct pin_fast *f = &s->fast;

	if (f->len - f->pos >= need)
		return 0;
	/* A map's unread rest is less than a record: it fits. */
	if (f->pos || f->map) {
		memmove(f->own, f->buf + f->pos, f->len - f->pos);
		f->len -= f->pos;
		f->pos = 0;
		pin_fast_unmap(f);
	}
	while (f->len < need) {
		ssize_t n = pin_src_read(s->stream->fd, s->stream->fifo, f->own + f->len,
					 pin_fast_room(f, need));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 && f->len == 0 ? 1 : -1;
		f->len += (size_t)n;
		f->fd_off += (uint64_t)n;
	}
	return 0;
}

/* Whether the rest of a record's body may be read straight from the file:
 * it is large, and the file holds it all (else libpcap says it is cut). */
static bool pin_fast_direct(const struct pin_fast *f, uint32_t caplen, size_t have)
{
	return caplen >= PIN_DIRECT_MIN && f->regular && f->fd_off + (caplen - have) <= f->size;
}

/* The body of the record pin_fast_next() left for us (*data NULL): what is
 * buffered, then the rest from the file, into dst (or skipped, dst NULL). */
static int pin_fast_body(struct pin_state *s, uint8_t *dst, uint32_t caplen)
{
	struct pin_fast *f = &s->fast;
	size_t have = f->len - f->pos, rest = caplen - have;
	ssize_t n;

	if (dst)
		memcpy(dst, f->buf + f->pos, have);
	f->pos = f->len = 0;
	if (dst)
		n = pin_read_full(s->stream->fd, dst + have, rest);
	else
		n = lseek(s->stream->fd, (off_t)rest, SEEK_CUR) < 0 ? -errno : (ssize_t)rest;
	if (n >= 0)
		f->fd_off += (uint64_t)n;
	if (n == (ssize_t)rest)
		return 0;
	/* The file shrank under us. */
	snprintf(s->err, sizeof(s->err), "truncated dump file; tried to read %u captured bytes, "
		 "only got %zu", caplen, n < 0 ? have : have + (size_t)n);
	f->on = false;
	return -EBADMSG;
}

/* The next record, as libpcap's pcap_next_ex() would give it. 0: a record;
 * 1: end of file; -1: not plain, libpcap must take over from here. */
static int pin_fast_next(struct pin_state *s, struct pcap_pkthdr *h, const u_char **data)
{
	struct pin_fast *f = &s->fast;
	uint32_t r[4]; /* seconds, micro- or nanoseconds, caplen, len */
	int rc;

	if (f->len - f->pos < sizeof(r) && (rc = pin_fast_fill(s, sizeof(r))) != 0)
		return rc;
	memcpy(r, f->buf + f->pos, sizeof(r));
	if (r[2] > f->snapshot || r[2] > PIN_RBUF - sizeof(r))
		return -1;
	/* libpcap reads both time fields as signed 32-bit numbers. */
	h->ts.tv_sec = (int32_t)r[0];
	h->ts.tv_usec = f->nano ? (int32_t)r[1] : (long)(int32_t)r[1] * 1000;
	h->caplen = r[2];
	h->len = r[3];
	*data = NULL;
	if (f->len - f->pos < sizeof(r) + r[2]) {
		if (pin_fast_direct(f, r[2], f->len - f->pos - sizeof(r))) {
			f->pos += sizeof(r);
			return 0;
		}
		if (pin_fast_fill(s, sizeof(r) + r[2]) != 0)
			return -1;
	}
	*data = f->buf + f->pos + sizeof(r);
	f->pos += sizeof(r) + r[2];
	return 0;
}

/* The next record's header and bytes (*data NULL: pin_fast_body() has
 * them). 0, 1 at the end, -EBADMSG. */
static int pin_next(struct pin_state *s, struct pcap_pkthdr *fh, struct pcap_pkthdr **h,
		    const u_char **data)
{
	int rc;

	if (s->fast.on) {
		*h = fh;
		rc = pin_fast_next(s, fh, data);
		if (rc >= 0)
			return rc;
		pin_fast_stop(s);
	}
	rc = pcap_next_ex(s->pcap, h, data);
	if (rc == PCAP_ERROR_BREAK)
		return 1;
	return rc == 1 ? 0 : -EBADMSG;
}

/* The record's packet into *p (NULL without memory): made over a mapped
 * file's bytes when it is large enough for that to beat a copy, else a
 * copy (with data NULL, of what pin_fast_body() reads). 0 or -EBADMSG. */
static int pin_packet(struct pin_state *s, uint32_t caplen, const u_char *data,
		      struct pp_packet **p)
{
	struct pin_fast *f = &s->fast;

	if (data && f->on && f->map && s->can_wrap && caplen >= PIN_WRAP_MIN) {
		filemap_ref(f->map);
		*p = s->host->packet_wrap(s->node, data, caplen, filemap_release, f->map);
		if (!*p)
			filemap_release(f->map);
		return 0;
	}
	*p = s->host->packet_alloc(s->node, caplen);
	if (data && *p) {
		memcpy((*p)->data, data, caplen);
	} else if (!data && pin_fast_body(s, *p ? (*p)->data : NULL, caplen) < 0) {
		s->host->packet_unref(*p);
		*p = NULL;
		return -EBADMSG;
	}
	return 0;
}

/* One packet into *out (NULL if it could not be kept).
 * 0: a packet was read; 1: end of file; -EBADMSG: the file is damaged. */
static int pin_read(struct pin_state *s, struct pp_packet **out)
{
	struct pcap_pkthdr fh, *h;
	const u_char *data;
	struct pp_packet *p;
	int rc;

	*out = NULL;
	rc = pin_next(s, &fh, &h, &data);
	if (rc != 0)
		return rc;
	rc = pin_packet(s, h->caplen, data, &p);
	if (rc < 0)
		return rc;
	s->packets++;
	pp_counter_add(&s->stats->packets_in, 1);
	pp_counter_add(&s->stats->bytes_in, h->caplen);
	if (!p) {
		pp_counter_add(s->drop_nomem, 1);
		s->host->log_limited(s->node, &s->nomem_limit, PP_LOG_WARNING,
				     "no packet buffer for %u bytes: dropped", h->caplen);
		return 0;
	}
	p->caplen = h->caplen;
	p->origlen = h->len;
	p->ts_ns = pin_ts_ns(s, h);
	p->linktype = s->linktype;
	p->count = 1;
	*out = p;
	return 0;
}

/* Each turn, a mapped file's resident window follows the reader; and if
 * the file shrank since the last turn, the reader ends where it now ends,
 * as read() would, never reaching the pages that are gone. */
static void pin_map_turn(struct pin_state *s)
{
	struct pin_fast *f = &s->fast;
	struct stat st;

	if (!f->on || !f->map)
		return;
	filemap_advance(f->map, f->pos);
	if (fstat(s->stream->fd, &st) < 0 || (uint64_t)st.st_size >= f->len)
		return;
	s->host->log(s->node, PP_LOG_WARNING, "%s: the file shrank to %llu bytes while it was read%s",
		     s->cfg->path, (unsigned long long)st.st_size,
		     filemap_damaged(f->map) ? "; packets read before hold zeros for the bytes lost"
					     : "");
	f->len = f->pos > (size_t)st.st_size ? f->pos : (size_t)st.st_size;
}

/* Read one turn's worth (at most PP_BATCH_MAX records) into s->out;
 * returns pin_read's status of the last read, or 2: a FIFO has no whole
 * packet buffered yet. */
static int pin_fill(struct pin_state *s, uint64_t *bytes)
{
	struct pp_packet *p;
	int rc = 0;

	pin_map_turn(s);
	for (uint32_t n = 0; n < PP_BATCH_MAX && *bytes < s->quantum; n++) {
		if (s->fifo.on && (rc = s->fifo.err ? s->fifo.err : !pin_fifo_ready(s) ? 2 : 0))
			break;
		rc = pin_read(s, &p);
		if (rc != 0)
			break;
		if (p) {
			*bytes += p->caplen;
			outq_put(&s->out, p, true);
		}
	}
	return rc;
}


static void pin_release_timer(struct pin_state *s)
{
	if (s->timer)
		s->host->timer_free(s->timer);
	s->timer = NULL;
}

/* A node that finished is not stopped: release the timer here (the host
 * allows that from within its own callback). */
static void pin_finish(struct pin_state *s, int status)
{
	s->done = true;
	pin_release_timer(s);
	pin_fifo_unwatch(s);
	s->host->finished(s->node, status);
}

/* End of one play: start the next one, or finish. */
static int pin_end_of_file(struct pin_state *s)
{
	int rc;

	s->played++;
	if (s->cfg->loop && s->played >= (uint64_t)s->cfg->loop) {
		pin_finish(s, 0);
		return 1;
	}
	pin_close_file(s);
	rc = pin_open_file(s);
	if (rc < 0)
		pin_finish(s, rc);
	return rc;
}

/* Paced: the next turn is due when this one's bytes have had their time.
 * Time lost to a busy loop is not made up with a burst. */
static uint64_t pin_delay(struct pin_state *s, uint64_t bytes)
{
	uint64_t now = s->host->now_mono_ns();

	if (!s->cfg->rate)
		return 0;
	if (s->next_ns < now)
		s->next_ns = now;
	s->next_ns += (uint64_t)((double)bytes * 1e9 / (double)s->cfg->rate);
	return s->next_ns - now;
}

/* A FIFO's capture is opened once its header (and first packet) is
 * buffered, so libpcap's reads of it all succeed. -1: it failed, finished. */
static int pin_fifo_pcap(struct pin_state *s)
{
	int rc;

	if (!s->fifo.on || s->pcap || s->fifo.err || !pin_fifo_ready(s))
		return 0;
	rc = pin_pcap_open(s);
	if (rc < 0)
		pin_finish(s, rc);
	return rc < 0 ? -1 : 0;
}

/* Nothing whole to read: the watch wakes the turn (pin_fifo_wake()). The
 * bytes emitted still count towards the pace. */
static void pin_fifo_park(struct pin_state *s, uint64_t bytes)
{
	pin_delay(s, bytes);
	s->fifo.waiting = true;
	pin_fifo_resume(s);
	if (s->fifo.err || pin_fifo_ready(s))
		pin_fifo_wake(s);
}

/* A queue ahead is nearly full: the rest of the input waits where it is
 * (a FIFO's writer blocks once the pipe and our buffer are full), and the
 * host calls pin_turn() again once that queue has drained. */
static bool pin_held_back(struct pin_state *s)
{
	return outq_wait(&s->out, pin_turn, s);
}

static void pin_turn(void *arg)
{
	struct pin_state *s = arg;
	uint64_t bytes = 0;
	int rc;

	if (s->done || pin_held_back(s) || pin_fifo_pcap(s) < 0)
		return;
	rc = pin_fill(s, &bytes);
	outq_emit(&s->out);
	if (rc == 2) {
		pin_fifo_park(s, bytes);
		return;
	}
	if (rc < 0) {
		s->host->log(s->node, PP_LOG_ERROR, "%s: damaged capture after %llu packets: %s",
			     s->cfg->path, (unsigned long long)s->packets,
			     s->err[0] ? s->err : pcap_geterr(s->pcap));
		pin_finish(s, -EBADMSG);
		return;
	}
	if (rc == 1 && pin_end_of_file(s) != 0)
		return;
	if (s->fifo.on)
		pin_fifo_resume(s);
	s->host->timer_arm(s->timer, pin_delay(s, bytes), 0);
}

/* ------------------------------------------------------------------ */
/* Stopping                                                             */

static int pin_stop(void *state)
{
	struct pin_state *s = state;

	s->done = true;
	pin_release_timer(s);
	pin_fifo_unwatch(s);
	return 0;
}

static void pin_close(void *state)
{
	struct pin_state *s = state;

	outq_release(&s->out);
	pin_close_file(s);
	free(s->fast.own);
	free(s->fifo.buf);
	free(s);
}

PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "pcap-in",
	.summary = "read packets from a pcap or pcapng file or FIFO",
	.roles = PP_ROLE_SOURCE,
	.options = pin_options,
	.config_size = sizeof(struct pin_config),
	.open = pin_open,
	.start = pin_start,
	.stop = pin_stop,
	.close = pin_close,
};
