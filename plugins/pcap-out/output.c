/* The output side of pcap-out; output.h says what it promises. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "names.h"
#include "output.h"

/* Below this much pending data we wait for the flush timer; above it a
 * write is worth its syscall. */
#define OUT_WRITE_MIN (64u * 1024)
/* Records per writev: three iovecs each, plus the preamble and the buffer. */
#define OUT_CHUNK PP_BATCH_MAX
#define OUT_IOV_MAX (2 + 3 * OUT_CHUNK)
/* Records up to this long are copied into one staging segment per writev
 * rather than given two or three iovecs each: the kernel's per-segment
 * cost (copy_folio_from_iter) exceeds a memcpy of a small record. At
 * 2 KiB, 1500-byte records cost more copied than given their iovecs. */
#define OUT_COALESCE_MAX 1024u
#define OUT_STAGE_SIZE (OUT_CHUNK * OUT_COALESCE_MAX)
/* After a write error, retry no faster than this. */
#define OUT_ERROR_RETRY_NS 1000000000ull
/* Files tried in a row when each is full already (append = yes). */
#define OUT_ROTATE_TRIES 64

/* One record in the buffer, oldest first. */
struct out_pend {
	size_t len; /* the whole record's bytes */
	uint64_t bytes; /* body bytes, counted as delivered */
	bool ctl; /* a preamble block sent mid-stream: not a packet */
};

struct out {
	struct pp_node *node;
	const struct pp_host *host;
	struct out_config cfg;
	struct names names;
	struct pp_stats *stats;
	pp_counter *drop_slow, *drop_error, *drop_nomem, *drop_noreader;
	pp_counter *sessions, *connected, *files, *buffered, *pipe_size;
	struct pp_log_limit slow_limit, error_limit, nomem_limit, open_limit;
	struct pp_log_limit join_limit, leave_limit;

	int fd;
	char *name; /* the file or FIFO open, or to be opened */
	bool fifo; /* it is a FIFO: readers come and go, writes never block */
	bool blocked; /* the FIFO is full: wait for the watch */
	bool failed; /* the last write failed: retry slowly */
	bool draining; /* stop() returned -EINPROGRESS: finish when written */
	bool busy; /* told the host so (cfg.wait): the reader lags */
	dev_t dev; /* the FIFO open, to tell on SIGHUP whether it changed */
	ino_t ino;

	uint8_t *pre; /* the preamble; pre_done bytes of it are in this stream */
	size_t pre_len, pre_cap, pre_done;

	uint8_t *buf; /* pending bytes are buf[head, tail) */
	size_t head, tail, cap;

	struct out_pend *q; /* their records are q[qhead, qtail) */
	size_t qhead, qtail, qcap;
	size_t done; /* bytes of the oldest record already written: those are
		      * no longer in the buffer, and the rest must follow */
	size_t held; /* packets among the queued records */

	uint64_t dpackets, dbytes; /* delivered, not yet reported */

	uint64_t file_bytes, file_records; /* in the file open, for rotate_size */
	uint64_t file_end_ns; /* when its interval ends, for rotate_interval */

	struct pp_timer *timer, *retry;
	bool timer_armed, retry_armed;
	struct pp_watch *watch;
	unsigned watch_flags;
	struct iovec iov[OUT_IOV_MAX];
	uint8_t *stage; /* OUT_STAGE_SIZE bytes, or NULL: no coalescing */
	size_t stage_len; /* used by the writev being built */
};

static void out_on_timer(void *arg);
static void out_on_retry(void *arg);
static void out_on_writable(void *arg, int fd, unsigned events);

/* ------------------------------------------------------------------ */
/* Buffer and queue                                                     */

static size_t out_pending(const struct out *o)
{
	return o->tail - o->head;
}

static size_t out_queued(const struct out *o)
{
	return o->qtail - o->qhead;
}

static size_t out_rec_len(const struct out_rec *r)
{
	return r->head_len + r->body_len + r->tail_len;
}

static bool out_writable(const struct out *o)
{
	return o->fd >= 0 && !o->blocked;
}

static int out_grow(void **p, size_t *cap, size_t want, size_t unit, size_t first)
{
	size_t n = *cap ? *cap : first;
	void *np;

	if (want <= *cap)
		return 0;
	while (n < want)
		n *= 2;
	np = realloc(*p, n * unit);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = n;
	return 0;
}

/* Room for len more bytes and nrec more records. Sliding what is pending
 * to the front costs its length, so it is done only once at least as much
 * went out before it (head >= pending): each byte then moves at most once
 * on average. Else the buffer grows, to about twice the limit at most.
 * Sliding whenever the end was reached copied the whole of a large buffer
 * for every pipe's worth a slow reader took (buffer = 64MiB: 70 % of the
 * CPU in memmove). The queue of records follows the same rule. */
static int out_reserve(struct out *o, size_t len, size_t nrec)
{
	if (o->tail + len > o->cap && o->head && o->head >= out_pending(o)) {
		memmove(o->buf, o->buf + o->head, out_pending(o));
		o->tail -= o->head;
		o->head = 0;
	}
	if (o->qtail + nrec > o->qcap && o->qhead && o->qhead >= out_queued(o)) {
		memmove(o->q, o->q + o->qhead, out_queued(o) * sizeof(*o->q));
		o->qtail -= o->qhead;
		o->qhead = 0;
	}
	if (out_grow((void **)&o->buf, &o->cap, o->tail + len, 1, OUT_WRITE_MIN) < 0 ||
	    out_grow((void **)&o->q, &o->qcap, o->qtail + nrec, sizeof(*o->q), 256) < 0)
		return -ENOMEM;
	return 0;
}

/* A record's entry into the queue, its bytes already in the buffer. */
static void out_enqueue(struct out *o, const struct out_rec *r, bool ctl)
{
	o->q[o->qtail++] = (struct out_pend){ .len = out_rec_len(r),
					      .bytes = ctl ? 0 : r->body_len,
					      .ctl = ctl };
	o->held += !ctl;
}

/* A whole record into reserved room, and its entry into the queue. */
static void out_copy(struct out *o, const struct out_rec *r, bool ctl)
{
	uint8_t *at = o->buf + o->tail;

	memcpy(at, r->head, r->head_len);
	if (r->body_len)
		memcpy(at + r->head_len, r->body, r->body_len);
	if (r->tail_len)
		memcpy(at + r->head_len + r->body_len, r->tail, r->tail_len);
	o->tail += out_rec_len(r);
	out_enqueue(o, r, ctl);
}

/* Queue a record, less its first skip bytes, which already went out: only
 * ever the oldest record, so the queue is empty then. */
static int out_append(struct out *o, const struct out_rec *r, size_t skip, bool ctl)
{
	const struct iovec part[3] = { { (void *)r->head, r->head_len },
				       { (void *)r->body, r->body_len },
				       { (void *)r->tail, r->tail_len } };
	size_t s = skip;

	if (out_reserve(o, out_rec_len(r) - skip, 1) < 0)
		return -ENOMEM;
	if (!skip) {
		out_copy(o, r, ctl);
		return 0;
	}
	for (int i = 0; i < 3; i++) {
		if (s >= part[i].iov_len) {
			s -= part[i].iov_len;
			continue;
		}
		memcpy(o->buf + o->tail, (uint8_t *)part[i].iov_base + s, part[i].iov_len - s);
		o->tail += part[i].iov_len - s;
		s = 0;
	}
	out_enqueue(o, r, ctl);
	o->done = skip;
	return 0;
}

/* Queue n records of len bytes in all with one reservation: small records
 * arrive a batch at a time and are buffered until OUT_WRITE_MIN. */
static int out_append_all(struct out *o, const struct out_rec *r, size_t n, size_t len)
{
	if (out_reserve(o, len, n) < 0)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++)
		out_copy(o, &r[k], false);
	return 0;
}

static void out_pop(struct out *o)
{
	o->held -= !o->q[o->qhead].ctl;
	o->head += o->q[o->qhead].len - o->done;
	o->qhead++;
	o->done = 0;
	if (o->qhead == o->qtail) {
		o->qhead = o->qtail = 0;
		o->head = o->tail = 0;
	}
}

static void out_deliver(struct out *o, uint64_t bytes)
{
	o->dpackets++;
	o->dbytes += bytes;
}

/* Keep the queued packets (keep_packets) and preamble blocks (keep_ctl),
 * and the oldest record if part of it went out: its rest must follow, or
 * the stream is torn. Packets not kept are dropped under reason. */
static void out_filter(struct out *o, bool keep_packets, bool keep_ctl, pp_counter *reason)
{
	size_t src = o->head, dst = o->head, qd = o->qhead, dropped = 0;

	for (size_t i = o->qhead; i < o->qtail; i++) {
		struct out_pend p = o->q[i];
		size_t inbuf = p.len - (i == o->qhead ? o->done : 0);

		if ((i == o->qhead && o->done) || (p.ctl ? keep_ctl : keep_packets)) {
			memmove(o->buf + dst, o->buf + src, inbuf);
			dst += inbuf;
			o->q[qd++] = p;
		} else {
			dropped += !p.ctl;
		}
		src += inbuf;
	}
	o->tail = dst;
	o->qtail = qd;
	o->held -= dropped;
	if (dropped && reason)
		pp_counter_add(reason, dropped);
	if (o->qtail == o->qhead)
		o->qhead = o->qtail = o->head = o->tail = 0;
}

static void out_drop_queued(struct out *o, pp_counter *reason)
{
	out_filter(o, false, true, reason);
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */

/* Write the iovecs: all of them to a blocking fd, what fits to a FIFO.
 * Bytes written, or -errno when nothing could be. */
static ssize_t out_write(struct out *o, struct iovec *iov, int cnt)
{
	size_t total = 0;

	while (cnt > 0) {
		ssize_t n = writev(o->fd, iov, cnt);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			o->blocked = true;
			break;
		}
		if (n < 0)
			return total ? (ssize_t)total : -errno;
		if (n == 0)
			break; /* nothing taken: the flush timer retries */
		total += (size_t)n;
		while (cnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			cnt--;
		}
		if (cnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
			/* A short write to a FIFO means it is full. */
			o->blocked = o->fifo;
		}
		if (o->blocked)
			break;
	}
	return (ssize_t)total;
}

/* The preamble's rest and the buffer, as iovecs; how many. */
static int out_iov_pending(struct out *o)
{
	int cnt = 0;

	if (o->pre_done < o->pre_len)
		o->iov[cnt++] = (struct iovec){ o->pre + o->pre_done, o->pre_len - o->pre_done };
	if (out_pending(o))
		o->iov[cnt++] = (struct iovec){ o->buf + o->head, out_pending(o) };
	return cnt;
}

/* Account n written bytes against the preamble and the buffer; returns the
 * bytes left over, which belong to records that were not queued. */
static size_t out_consume(struct out *o, size_t n)
{
	size_t pre = o->pre_len - o->pre_done;

	pre = n < pre ? n : pre;
	o->pre_done += pre;
	n -= pre;
	while (n && out_queued(o)) {
		size_t rest = o->q[o->qhead].len - o->done;
		if (n < rest) {
			o->done += n;
			o->head += n;
			return 0;
		}
		n -= rest;
		if (!o->q[o->qhead].ctl)
			out_deliver(o, o->q[o->qhead].bytes);
		out_pop(o);
	}
	return n;
}

static void out_fail(struct out *o, int err)
{
	o->failed = true;
	o->host->log_limited(o->node, &o->error_limit, PP_LOG_ERROR,
			     "%s: write failed: %s; dropping buffered packets", o->name,
			     strerror(err));
	out_drop_queued(o, o->drop_error);
}

static void out_reader_gone(struct out *o, int err);

/* A FIFO that refuses data has lost its reader; a file is retried. */
static void out_write_failed(struct out *o, int err)
{
	if (o->fifo)
		out_reader_gone(o, err);
	else
		out_fail(o, err);
}

static void out_flush(struct out *o)
{
	int cnt;
	ssize_t n;

	if (!out_writable(o))
		return;
	cnt = out_iov_pending(o);
	if (!cnt)
		return;
	n = out_write(o, o->iov, cnt);
	if (n < 0) {
		out_write_failed(o, (int)-n);
		return;
	}
	o->failed = false;
	out_consume(o, (size_t)n);
}

/* Copy a small record into the staging segment, growing the last iovec
 * when it already ends there. False when the record is to be given its
 * own iovecs. */
static bool out_iov_stage(struct out *o, int *cnt, const struct out_rec *r)
{
	size_t len = out_rec_len(r);
	uint8_t *at = o->stage + o->stage_len;
	struct iovec *last = *cnt ? &o->iov[*cnt - 1] : NULL;

	if (!o->stage || len > OUT_COALESCE_MAX)
		return false;
	memcpy(at, r->head, r->head_len);
	if (r->body_len)
		memcpy(at + r->head_len, r->body, r->body_len);
	if (r->tail_len)
		memcpy(at + r->head_len + r->body_len, r->tail, r->tail_len);
	o->stage_len += len;
	if (last && (uint8_t *)last->iov_base + last->iov_len == at)
		last->iov_len += len;
	else
		o->iov[(*cnt)++] = (struct iovec){ at, len };
	return true;
}

static int out_iov_rec(struct out *o, int cnt, const struct out_rec *r)
{
	if (out_iov_stage(o, &cnt, r))
		return cnt;
	if (r->head_len)
		o->iov[cnt++] = (struct iovec){ (void *)r->head, r->head_len };
	if (r->body_len)
		o->iov[cnt++] = (struct iovec){ (void *)r->body, r->body_len };
	if (r->tail_len)
		o->iov[cnt++] = (struct iovec){ (void *)r->tail, r->tail_len };
	return cnt;
}

/* Write what is pending and the records in one writev. Returns how many
 * records are settled: written, or queued (the one that went out in part);
 * after a write error none, and the caller buffers or drops them. */
static size_t out_write_direct(struct out *o, const struct out_rec *r, size_t n)
{
	int cnt = out_iov_pending(o);
	size_t i = 0, left;
	ssize_t w;

	o->stage_len = 0;
	for (size_t k = 0; k < n; k++)
		cnt = out_iov_rec(o, cnt, &r[k]);
	w = out_write(o, o->iov, cnt);
	if (w < 0) {
		out_write_failed(o, (int)-w);
		return 0;
	}
	o->failed = false;
	left = out_consume(o, (size_t)w);
	for (; i < n && left >= out_rec_len(&r[i]); i++) {
		left -= out_rec_len(&r[i]);
		out_deliver(o, r[i].body_len);
	}
	if (left) {
		/* Part of it is out: the rest goes next, whatever the limit. */
		if (out_append(o, &r[i], left, false) < 0)
			pp_counter_add(o->drop_nomem, 1);
		i++;
	}
	return i;
}

static void out_drop(struct out *o, pp_counter *reason, struct pp_log_limit *lim, const char *why)
{
	pp_counter_add(reason, 1);
	o->host->log_limited(o->node, lim, PP_LOG_WARNING, "%s: %s: dropping packets", o->name,
			     why);
}

/* One record: into the buffer if it fits (after a flush, if that helps),
 * straight out if it could never fit, else dropped whole. */
static void out_take(struct out *o, const struct out_rec *r)
{
	size_t len = out_rec_len(r);

	if (o->fd >= 0 && out_pending(o) + len > o->cfg.limit)
		out_flush(o);
	if (o->fd >= 0 && out_pending(o) + len <= o->cfg.limit) {
		if (out_append(o, r, 0, false) < 0)
			out_drop(o, o->drop_nomem, &o->nomem_limit, "out of memory");
		return;
	}
	if (out_writable(o) && !out_pending(o) && !o->failed && out_write_direct(o, r, 1))
		return;
	if (o->fd < 0 && o->fifo)
		pp_counter_add(o->drop_noreader, 1);
	else if (o->fd < 0)
		out_drop(o, o->drop_error, &o->error_limit, "no file open");
	else if (o->failed)
		out_drop(o, o->drop_error, &o->error_limit, "write failed");
	else
		out_drop(o, o->drop_slow, &o->slow_limit, "reader too slow, buffer full");
}

/* Tell the host what was written and what waits. */
static void out_report(struct out *o)
{
	if (o->dpackets)
		o->host->delivered(o->node, o->dpackets, o->dbytes);
	o->dpackets = o->dbytes = 0;
	pp_counter_set(&o->stats->packets_held, o->held);
	pp_counter_set(o->buffered, out_pending(o));
}

/* ------------------------------------------------------------------ */
/* Streams: a file, or one reader's session of a FIFO                   */

/* Why what is still queued gets lost when the stream ends. */
static pp_counter *out_loss_reason(const struct out *o)
{
	if (o->fifo)
		return o->fd < 0 ? o->drop_noreader : o->drop_slow;
	return o->drop_error;
}

/* Drop the oldest record, which went out in part to the stream being
 * closed: its rest would tear the next one. */
static void out_drop_torn(struct out *o, pp_counter *reason)
{
	if (!o->done)
		return;
	if (!o->q[o->qhead].ctl)
		pp_counter_add(reason, 1);
	out_pop(o);
}

static void out_close_fd(struct out *o)
{
	/* The watch holds a copy of the fd: while it lives, a new reader
	 * would join the old stream. */
	if (o->watch) {
		o->host->unwatch(o->watch);
		o->watch = NULL;
	}
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
	o->blocked = false;
	pp_counter_set(o->connected, 0);
}

/* Close the stream. A file's waiting records follow into the next file; a
 * FIFO's go with its reader. */
static void out_end(struct out *o)
{
	out_drop_torn(o, o->fifo ? o->drop_noreader : out_loss_reason(o));
	if (o->fifo)
		out_filter(o, false, false, o->drop_noreader);
	out_close_fd(o);
}

/* A new stream on fd: the preamble first (unless the file already has it),
 * then what waits. Blocks queued for the last stream are in the preamble. */
static void out_begin_stream(struct out *o, int fd, uint64_t keep, bool header)
{
	o->fd = fd;
	o->blocked = false;
	o->failed = false;
	out_filter(o, true, false, NULL);
	o->pre_done = header ? 0 : o->pre_len;
	o->file_bytes = keep + (header ? o->pre_len : 0) + out_pending(o);
	o->file_records = (keep > 0) + o->held;
}

static void out_reader_gone(struct out *o, int err)
{
	size_t lost = o->held;

	out_end(o);
	if (err == EPIPE)
		o->host->log_limited(o->node, &o->leave_limit, PP_LOG_INFO,
				     "%s: the reader left (%zu packets waiting for it dropped); "
				     "waiting for the next one",
				     o->name, lost);
	else
		o->host->log_limited(o->node, &o->leave_limit, PP_LOG_WARNING,
				     "%s: write failed: %s; closed it, waiting for a reader",
				     o->name, strerror(err));
}

/* Whether the FIFO's reader is gone: its write end then reports an error. */
static bool out_no_reader(const struct out *o)
{
	struct pollfd p = { .fd = o->fd, .events = POLLOUT };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP | POLLNVAL));
}

/* Best effort: a large pipe takes more records per wakeup of the reader. */
static void out_pipe_size(struct out *o)
{
	uint64_t want = o->cfg.pipe_size < INT_MAX ? o->cfg.pipe_size : INT_MAX;
	long max = 0;
	FILE *f;
	int got;

	if (want && fcntl(o->fd, F_SETPIPE_SZ, (int)want) < 0) {
		/* Unprivileged, the kernel grants up to pipe-max-size. */
		f = fopen("/proc/sys/fs/pipe-max-size", "re");
		if (f && fscanf(f, "%ld", &max) != 1)
			max = 0;
		if (f)
			fclose(f);
		if (max > 0 && (uint64_t)max < want)
			fcntl(o->fd, F_SETPIPE_SZ, (int)max);
	}
	got = fcntl(o->fd, F_GETPIPE_SZ);
	if (got > 0)
		pp_counter_set(o->pipe_size, (uint64_t)got);
	if (got > 0 && (uint64_t)got < want)
		o->host->log_limited(o->node, &o->open_limit, PP_LOG_INFO,
				     "%s: pipe buffer %d bytes, not the %llu asked for", o->name,
				     got, (unsigned long long)want);
}

/* Open the FIFO if a reader is there: 0, -ENXIO when none is, or -errno. */
static int out_open_fifo(struct out *o)
{
	struct stat st;
	int fd = open(o->name, O_WRONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	o->dev = st.st_dev;
	o->ino = st.st_ino;
	out_begin_stream(o, fd, 0, true);
	out_pipe_size(o);
	pp_counter_add(o->sessions, 1);
	pp_counter_set(o->connected, 1);
	o->host->log_limited(o->node, &o->join_limit, PP_LOG_INFO,
			     "%s: a reader connected (session %llu)", o->name,
			     (unsigned long long)pp_counter_get(o->sessions));
	return 0;
}

/* Look for a reader; quietly while there is none. */
static int out_try_fifo(struct out *o, bool first)
{
	int rc = out_open_fifo(o);

	if (rc == 0 || (rc == -ENXIO && !first))
		return 0;
	if (rc == -ENXIO) {
		o->host->log(o->node, PP_LOG_INFO,
			     "%s: FIFO has no reader yet: waiting for one, dropping packets "
			     "(no-reader) meanwhile",
			     o->name);
		return 0;
	}
	o->host->log_limited(o->node, &o->open_limit, PP_LOG_ERROR, "%s: cannot open: %s",
			     o->name, rc == -EINVAL ? "it is no longer a FIFO" : strerror(-rc));
	return rc;
}

static int out_resume(struct out *o, int fd, uint64_t size, uint64_t *keep, bool *header)
{
	char err[256] = "cannot be continued";
	int rc = 0;

	*keep = size;
	*header = false;
	if (o->cfg.resume)
		rc = o->cfg.resume(o->cfg.arg, fd, size, keep, header, err, sizeof(err));
	if (rc < 0) {
		o->host->log(o->node, PP_LOG_ERROR,
			     "%s: cannot append to it: %s; append = no would start it afresh",
			     o->name, err);
		return rc;
	}
	if (*keep >= size)
		return 0;
	o->host->log(o->node, PP_LOG_WARNING,
		     "%s: cutting %llu bytes off its end: a record torn when it was last written",
		     o->name, (unsigned long long)(size - *keep));
	if (ftruncate(fd, (off_t)*keep) < 0) {
		rc = -errno;
		o->host->log(o->node, PP_LOG_ERROR, "%s: cannot cut it: %s", o->name,
			     strerror(errno));
	}
	return rc;
}

/* Forget the oldest files beyond rotate_count. */
static void out_keep_newest(struct out *o)
{
	char *old;

	if (names_opened(&o->names, o->name) < 0)
		return;
	while ((old = names_expired(&o->names))) {
		if (unlink(old) < 0 && errno != ENOENT)
			o->host->log(o->node, PP_LOG_WARNING, "%s: cannot delete it: %s", old,
				     strerror(errno));
		else
			o->host->log(o->node, PP_LOG_INFO, "%s: deleted (rotate_count)", old);
		free(old);
	}
}

static int out_open_file(struct out *o)
{
	int flags = O_CREAT | O_CLOEXEC | (o->cfg.append ? O_RDWR : O_WRONLY | O_TRUNC);
	uint64_t keep = 0;
	bool header = true;
	struct stat st;
	int fd, rc;

	fd = open(o->name, flags, 0666);
	if (fd < 0 || fstat(fd, &st) < 0)
		goto err;
	if (o->cfg.append && S_ISREG(st.st_mode) && st.st_size > 0) {
		rc = out_resume(o, fd, (uint64_t)st.st_size, &keep, &header);
		if (rc < 0) {
			close(fd);
			return rc;
		}
	}
	if (S_ISREG(st.st_mode) && lseek(fd, (off_t)keep, SEEK_SET) < 0)
		goto err;
	out_begin_stream(o, fd, keep, header);
	pp_counter_add(o->files, 1);
	out_keep_newest(o);
	return 0;
err:
	rc = -errno;
	o->host->log_limited(o->node, &o->open_limit, PP_LOG_ERROR, "%s: cannot open: %s",
			     o->name, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

static bool out_rotating(const struct out *o)
{
	return o->cfg.rotate_size || o->cfg.rotate_ns;
}

/* Open name, ending at end_ns: a FIFO (whose reader may not be there yet)
 * or a file. */
static int out_switch(struct out *o, char *name, uint64_t end_ns, bool first)
{
	struct stat st;

	free(o->name);
	o->name = name;
	o->file_end_ns = end_ns;
	if (out_rotating(o) && stat(o->names.base, &st) == 0 && !S_ISREG(st.st_mode)) {
		o->host->log_limited(o->node, &o->open_limit, PP_LOG_ERROR,
				     "%s: rotation needs regular files, and it is not one",
				     o->names.base);
		return -EINVAL;
	}
	o->fifo = stat(name, &st) == 0 && S_ISFIFO(st.st_mode);
	return o->fifo ? out_try_fifo(o, first) : out_open_file(o);
}

/* Open what the path names now; bump: the next number, with rotate_size. */
static int out_begin(struct out *o, bool bump, bool first)
{
	uint64_t end;
	char *name = names_next(&o->names, o->host->now_real_ns(), bump, &end);

	if (!name) {
		int err = errno ? errno : ENOMEM;
		o->host->log_limited(o->node, &o->open_limit, PP_LOG_ERROR,
				     "%s: cannot make a file name of it: %s", o->cfg.path,
				     strerror(err));
		return -err;
	}
	return out_switch(o, name, end, first);
}

/* The next file: by size (bump) or time; one that would have the same name
 * (time rotation, no conversion changed) is the file open now. */
static void out_rotate(struct out *o, bool bump)
{
	uint64_t end;
	char *name = names_next(&o->names, o->host->now_real_ns(), bump, &end);

	if (name && !bump && o->fd >= 0 && o->name && strcmp(name, o->name) == 0) {
		o->file_end_ns = end;
		free(name);
		return;
	}
	out_flush(o);
	out_end(o);
	if (!name) {
		o->host->log_limited(o->node, &o->open_limit, PP_LOG_ERROR,
				     "%s: cannot make a file name of it: %s", o->cfg.path,
				     strerror(errno));
		return;
	}
	out_switch(o, name, end, false);
}

/* ------------------------------------------------------------------ */
/* The end of the output                                                */

static void out_free_timers(struct out *o)
{
	if (o->timer)
		o->host->timer_free(o->timer);
	if (o->retry)
		o->host->timer_free(o->retry);
	o->timer = o->retry = NULL;
	o->timer_armed = o->retry_armed = false;
}

/* Done writing: drop what could not go, release the host's timers and
 * watch. */
static void out_finish(struct out *o)
{
	size_t left = o->held;

	if (left)
		o->host->log(o->node, PP_LOG_WARNING, "%s: %zu packets could not be written",
			     o->name, left);
	out_drop_torn(o, out_loss_reason(o));
	out_filter(o, false, false, out_loss_reason(o));
	out_report(o);
	out_close_fd(o);
	out_free_timers(o);
}

/* ------------------------------------------------------------------ */
/* Timers, watch and accounting, after every entry point                */

static bool out_waiting(const struct out *o)
{
	return out_pending(o) || o->pre_done < o->pre_len;
}

/* A FIFO is watched while open: for room when it is full, and always for
 * errors, which say its reader left. */
static void out_rearm_watch(struct out *o)
{
	unsigned want = o->blocked ? PP_WATCH_WRITE : 0;

	if (!o->fifo || o->fd < 0)
		return;
	if (!o->watch) {
		o->watch = o->host->watch_fd(o->node, o->fd, want, out_on_writable, o);
		o->watch_flags = want;
	} else if (o->watch_flags != want && o->host->watch_modify(o->watch, want) == 0) {
		o->watch_flags = want;
	}
}

static void out_rearm(struct out *o)
{
	/* The timers exist from start() on: watch no earlier either. */
	if (!o->timer)
		return;
	out_rearm_watch(o);
	if (out_waiting(o) && o->fd >= 0 && !o->timer_armed && (!o->blocked || !o->watch)) {
		uint64_t delay = o->cfg.flush_ns;
		if (o->failed && delay < OUT_ERROR_RETRY_NS)
			delay = OUT_ERROR_RETRY_NS;
		o->timer_armed = o->host->timer_arm(o->timer, delay, 0) == 0;
	}
	/* No reader, or no file after a failed open: look again regularly. */
	if (o->fd < 0 && !o->draining && !o->retry_armed)
		o->retry_armed = o->host->timer_arm(o->retry, o->cfg.retry_ns, o->cfg.retry_ns) == 0;
	if (o->fd >= 0 && o->retry_armed) {
		o->host->timer_disarm(o->retry);
		o->retry_armed = false;
	}
}

/* wait = yes: busy from three quarters of the buffer until half of it
 * is left, so that what the sources still send before they pause (the
 * rest of a batch) finds room, and one write does not flip it back and
 * forth. A FIFO without a reader is not waited for: its packets drop
 * (no-reader), or an IDS that is away would hold the capture back. */
static void out_update_busy(struct out *o)
{
	uint64_t pending;
	bool busy;

	if (!o->cfg.wait || !o->fifo || !PP_HOST_HAS(o->host, set_busy))
		return;
	pending = out_pending(o);
	busy = o->fd >= 0 && !o->draining &&
	       (o->busy ? pending > o->cfg.limit / 2 : pending > o->cfg.limit - o->cfg.limit / 4);
	if (busy == o->busy)
		return;
	o->busy = busy;
	o->host->set_busy(o->node, busy);
}

static void out_settle(struct out *o)
{
	if (o->draining && (!out_waiting(o) || o->failed || o->fd < 0)) {
		/* A write error while draining ends it: the reader is gone. */
		o->draining = false;
		out_finish(o);
		o->host->finished(o->node, 0);
		return;
	}
	out_update_busy(o);
	out_report(o);
	out_rearm(o);
}

static void out_on_timer(void *arg)
{
	struct out *o = arg;

	o->timer_armed = false;
	/* Without a watch (it could not be made), the timer polls. */
	if (!o->watch)
		o->blocked = false;
	out_flush(o);
	out_settle(o);
}

static void out_on_retry(void *arg)
{
	struct out *o = arg;

	if (o->fd >= 0)
		return;
	if (o->fifo)
		out_try_fifo(o, false);
	else
		out_begin(o, false, false);
	out_settle(o);
}

static void out_on_writable(void *arg, int fd, unsigned events)
{
	struct out *o = arg;

	(void)fd;
	(void)events;
	o->blocked = false;
	if (out_no_reader(o))
		out_reader_gone(o, EPIPE);
	else
		out_flush(o);
	out_settle(o);
}

/* ------------------------------------------------------------------ */
/* Entry points                                                         */

int out_open(struct out **op, struct pp_node *node, const struct pp_host *host,
	     const struct out_config *cfg)
{
	struct out *o;
	int rc;

	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->node = node;
	o->host = host;
	o->cfg = *cfg;
	o->fd = -1;
	/* Without it records are written as they are, only more slowly. */
	o->stage = malloc(OUT_STAGE_SIZE);
	o->names = (struct names){ .pattern = cfg->path, .numbered = cfg->rotate_size > 0,
				   .interval_ns = cfg->rotate_ns, .keep = cfg->rotate_count };
	o->stats = host->stats(node);
	o->drop_slow = host->drop_reason(node, "reader-slow");
	o->drop_noreader = host->drop_reason(node, "no-reader");
	o->drop_error = host->drop_reason(node, "write-error");
	o->drop_nomem = host->drop_reason(node, "nomem");
	o->sessions = host->counter(node, "reader_sessions", PP_COUNTER_TOTAL);
	o->connected = host->counter(node, "reader_connected", PP_COUNTER_GAUGE);
	o->files = host->counter(node, "files", PP_COUNTER_TOTAL);
	o->buffered = host->counter(node, "buffer_bytes", PP_COUNTER_GAUGE);
	o->pipe_size = host->counter(node, "pipe_size", PP_COUNTER_GAUGE);
	if (!o->drop_slow || !o->drop_noreader || !o->drop_error || !o->drop_nomem ||
	    !o->sessions || !o->connected || !o->files || !o->buffered || !o->pipe_size) {
		rc = -ENOMEM;
		goto err;
	}
	/* Set first: the format's resume callback may add to the preamble. */
	*op = o;
	rc = out_begin(o, false, true);
	if (rc < 0)
		goto err;
	return 0;
err:
	*op = NULL;
	out_close(o);
	return rc;
}

int out_start(struct out *o)
{
	o->timer = o->host->timer_new(o->node, out_on_timer, o);
	o->retry = o->host->timer_new(o->node, out_on_retry, o);
	if (!o->timer || !o->retry) {
		out_free_timers(o);
		return -ENOMEM;
	}
	out_settle(o);
	return 0;
}

int out_add_preamble(struct out *o, const void *data, size_t len)
{
	/* Records wait behind what was sent: the block must follow them. */
	bool behind = o->fd >= 0 && o->pre_done == o->pre_len && out_queued(o);

	if (out_grow((void **)&o->pre, &o->pre_cap, o->pre_len + len, 1, 256) < 0)
		return -ENOMEM;
	memcpy(o->pre + o->pre_len, data, len);
	o->pre_len += len;
	if (o->fd < 0)
		return 0;
	o->file_bytes += len;
	if (behind) {
		o->pre_done = o->pre_len;
		if (out_append(o, &(struct out_rec){ .head = data, .head_len = len }, 0, true) < 0) {
			o->host->log(o->node, PP_LOG_ERROR,
				     "%s: out of memory: the stream lacks a block", o->name);
			return -ENOMEM;
		}
	}
	if (!o->failed)
		out_flush(o);
	out_settle(o);
	return 0;
}

static void out_submit_chunk(struct out *o, const struct out_rec *r, size_t n)
{
	size_t i = 0, bytes = out_pending(o);
	/* After an error, leave retries to the timer. */
	bool eager = out_writable(o) && !o->failed;

	if (o->fd < 0 && o->fifo) {
		pp_counter_add(o->drop_noreader, n);
		return;
	}
	for (size_t k = 0; k < n; k++)
		bytes += out_rec_len(&r[k]);
	if (eager && (bytes >= OUT_WRITE_MIN || !o->cfg.flush_ns))
		i = out_write_direct(o, r, n);
	else if (o->fd >= 0 && bytes <= o->cfg.limit &&
		 out_append_all(o, r, n, bytes - out_pending(o)) == 0)
		i = n;
	for (; i < n; i++)
		out_take(o, &r[i]);
	if (out_writable(o) && !o->failed && (out_pending(o) >= OUT_WRITE_MIN || !o->cfg.flush_ns))
		out_flush(o);
}

/* How many of n records fit the file open before it would grow beyond
 * rotate_size: at least one while it holds none. Counts them in. */
static size_t out_fit(struct out *o, const struct out_rec *r, size_t n)
{
	size_t k;

	if (!o->cfg.rotate_size || o->fd < 0 || o->fifo)
		return n;
	for (k = 0; k < n; k++) {
		uint64_t len = out_rec_len(&r[k]);
		if (o->file_records && o->file_bytes + len > o->cfg.rotate_size)
			break;
		o->file_bytes += len;
		o->file_records++;
	}
	return k;
}

void out_submit(struct out *o, const struct out_rec *recs, size_t n)
{
	size_t i = 0, k;

	if (o->cfg.rotate_ns && o->fd >= 0 && !o->fifo &&
	    o->host->now_real_ns() >= o->file_end_ns)
		out_rotate(o, false);
	while (i < n) {
		size_t max = n - i < OUT_CHUNK ? n - i : OUT_CHUNK;
		/* An appended file may be full already: so may the next. */
		k = out_fit(o, recs + i, max);
		for (int tries = 0; !k && tries < OUT_ROTATE_TRIES; tries++) {
			out_rotate(o, true);
			k = out_fit(o, recs + i, max);
		}
		k = k ? k : 1;
		out_submit_chunk(o, recs + i, k);
		i += k;
	}
	out_settle(o);
}

int out_reopen(struct out *o)
{
	struct stat st;
	int rc;

	if (o->fifo && o->fd >= 0 && stat(o->name, &st) == 0 && st.st_dev == o->dev &&
	    st.st_ino == o->ino) {
		o->host->log(o->node, PP_LOG_INFO, "%s: its reader is connected: nothing to reopen",
			     o->name);
		return 0;
	}
	out_flush(o);
	out_end(o);
	rc = out_begin(o, true, true);
	out_flush(o);
	out_settle(o);
	return rc;
}

int out_stop(struct out *o)
{
	if (o->fd >= 0)
		o->blocked = false;
	out_flush(o);
	/* A FIFO's reader may still take what waits: keep writing as it
	 * does, within the host's drain timeout. */
	if (out_waiting(o) && o->fifo && o->fd >= 0 && o->timer) {
		o->draining = true;
		if (o->retry_armed)
			o->host->timer_disarm(o->retry);
		o->retry_armed = false;
		out_report(o);
		out_rearm(o);
		return -EINPROGRESS;
	}
	out_finish(o);
	return 0;
}

void out_close(struct out *o)
{
	if (!o)
		return;
	/* The host gave up waiting for a drain: what still waits is lost. */
	if (o->held) {
		pp_counter_add(out_loss_reason(o), o->held);
		pp_counter_set(&o->stats->packets_held, 0);
	}
	if (o->fd >= 0)
		close(o->fd);
	names_free(&o->names);
	free(o->name);
	free(o->pre);
	free(o->buf);
	free(o->stage);
	free(o->q);
	free(o);
}
