/* The output side of pcap-out; output.h says what it promises. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "output.h"

/* Below this much pending data we wait for the flush timer; above it a
 * write is worth its syscall (a pipe holds 64 KiB). */
#define OUT_WRITE_MIN (64u * 1024)
/* Records per writev: two iovecs each, plus the preamble and the buffer. */
#define OUT_CHUNK PP_BATCH_MAX
#define OUT_IOV_MAX (2 + 2 * OUT_CHUNK)
/* After a write error, retry no faster than this. */
#define OUT_ERROR_RETRY_NS 1000000000ull

/* One record in the buffer, oldest first. */
struct out_pend {
	size_t len; /* the whole record's bytes */
	uint64_t bytes; /* body bytes, counted as delivered */
};

struct out {
	struct pp_node *node;
	const struct pp_host *host;
	const char *path;
	struct pp_stats *stats;
	pp_counter *drop_slow, *drop_error, *drop_nomem;
	struct pp_log_limit slow_limit, error_limit, nomem_limit;

	int fd;
	bool nonblock; /* a FIFO: writes may stop with EAGAIN */
	bool blocked; /* the FIFO is full: wait for the watch */
	bool failed; /* the last write failed: retry slowly */
	bool draining; /* stop() returned -EINPROGRESS: finish when written */

	uint8_t pre[OUT_PREAMBLE_MAX];
	size_t pre_len, pre_done; /* preamble bytes, and how many went out */

	uint8_t *buf; /* pending bytes are buf[head, tail) */
	size_t head, tail, cap;
	uint64_t limit;

	struct out_pend *q; /* their records are q[qhead, qtail) */
	size_t qhead, qtail, qcap;
	size_t done; /* bytes of the oldest record already written: those are
		      * no longer in the buffer, and the rest must follow */

	uint64_t dpackets, dbytes; /* delivered, not yet reported */

	uint64_t flush_ns;
	struct pp_timer *timer;
	bool timer_armed;
	struct pp_watch *watch;
	struct iovec iov[OUT_IOV_MAX];
};

static void out_on_timer(void *arg);
static void out_on_writable(void *arg, int fd, unsigned events);

/* ------------------------------------------------------------------ */
/* Opening                                                              */

static int out_open_fd(struct out *o)
{
	struct stat st;
	int fd, err;

	/* O_NONBLOCK: a FIFO must not wait for its reader, here or later. */
	fd = open(o->path, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC, 0666);
	if (fd < 0) {
		err = errno;
		if (err == ENXIO)
			o->host->log(o->node, PP_LOG_ERROR,
				     "%s: FIFO has no reader yet: start the reader first", o->path);
		else
			o->host->log(o->node, PP_LOG_ERROR, "%s: cannot open: %s", o->path,
				     strerror(err));
		return -err;
	}
	if (fstat(fd, &st) < 0)
		goto err;
	o->nonblock = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
	/* A file or device takes what it is given: blocking writes are simpler. */
	if (!o->nonblock && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
		goto err;
	o->fd = fd;
	o->blocked = false;
	o->failed = false;
	o->pre_done = 0;
	return 0;
err:
	err = errno;
	o->host->log(o->node, PP_LOG_ERROR, "%s: %s", o->path, strerror(err));
	close(fd);
	return -err;
}

int out_open(struct out **op, struct pp_node *node, const struct pp_host *host, const char *path,
	     uint64_t limit, uint64_t flush_ns)
{
	struct out *o;
	int rc;

	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->node = node;
	o->host = host;
	o->path = path;
	o->limit = limit;
	o->flush_ns = flush_ns;
	o->fd = -1;
	o->stats = host->stats(node);
	o->drop_slow = host->drop_reason(node, "reader-slow");
	o->drop_error = host->drop_reason(node, "write-error");
	o->drop_nomem = host->drop_reason(node, "nomem");
	rc = out_open_fd(o);
	if (rc < 0) {
		free(o);
		return rc;
	}
	*op = o;
	return 0;
}

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
	return r->head_len + r->body_len;
}

static bool out_writable(const struct out *o)
{
	return o->fd >= 0 && !o->blocked;
}

/* Room for len more bytes and one more record; moves before it grows. */
static int out_reserve(struct out *o, size_t len)
{
	if (o->tail + len > o->cap && o->head) {
		memmove(o->buf, o->buf + o->head, out_pending(o));
		o->tail -= o->head;
		o->head = 0;
	}
	if (o->tail + len > o->cap) {
		size_t cap = o->cap ? o->cap * 2 : OUT_WRITE_MIN;
		while (cap < o->tail + len)
			cap *= 2;
		uint8_t *buf = realloc(o->buf, cap);
		if (!buf)
			return -ENOMEM;
		o->buf = buf;
		o->cap = cap;
	}
	if (o->qtail == o->qcap && o->qhead) {
		memmove(o->q, o->q + o->qhead, out_queued(o) * sizeof(*o->q));
		o->qtail -= o->qhead;
		o->qhead = 0;
	}
	if (o->qtail == o->qcap) {
		size_t qcap = o->qcap ? o->qcap * 2 : 256;
		struct out_pend *q = realloc(o->q, qcap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		o->q = q;
		o->qcap = qcap;
	}
	return 0;
}

static void out_put(struct out *o, const void *src, size_t len)
{
	if (len)
		memcpy(o->buf + o->tail, src, len);
	o->tail += len;
}

/* Queue a record, less its first skip bytes, which already went out: only
 * ever the oldest record, so the queue is empty then. */
static int out_append(struct out *o, const struct out_rec *r, size_t skip)
{
	size_t hskip = skip < r->head_len ? skip : r->head_len, bskip = skip - hskip;
	int rc = out_reserve(o, out_rec_len(r) - skip);

	if (rc < 0)
		return rc;
	out_put(o, (const uint8_t *)r->head + hskip, r->head_len - hskip);
	out_put(o, (const uint8_t *)r->body + bskip, r->body_len - bskip);
	o->q[o->qtail++] = (struct out_pend){ .len = out_rec_len(r), .bytes = r->body_len };
	if (skip)
		o->done = skip;
	return 0;
}

static void out_pop(struct out *o)
{
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

/* Drop queued records, keeping the oldest if part of it went out: its rest
 * must follow, or the stream is torn. */
static void out_drop_queued(struct out *o, pp_counter *reason)
{
	size_t keep = o->done ? 1 : 0, n = out_queued(o) - keep;

	if (!n)
		return;
	pp_counter_add(reason, n);
	o->qtail = o->qhead + keep;
	o->tail = keep ? o->head + o->q[o->qhead].len - o->done : o->head;
	if (!keep)
		o->qhead = o->qtail = o->head = o->tail = 0;
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
			o->blocked = o->nonblock;
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
		out_deliver(o, o->q[o->qhead].bytes);
		out_pop(o);
	}
	return n;
}

static void out_fail(struct out *o, int err)
{
	o->failed = true;
	o->host->log_limited(o->node, &o->error_limit, PP_LOG_ERROR,
			     "%s: write failed: %s; dropping buffered packets", o->path,
			     strerror(err));
	out_drop_queued(o, o->drop_error);
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
		out_fail(o, (int)-n);
		return;
	}
	o->failed = false;
	out_consume(o, (size_t)n);
}

/* Write what is pending and the records in one writev. Returns how many
 * records are settled: written, queued (the one that went out in part), or
 * dropped on a write error. */
static size_t out_write_direct(struct out *o, const struct out_rec *r, size_t n)
{
	int cnt = out_iov_pending(o);
	size_t i = 0, left;
	ssize_t w;

	for (size_t k = 0; k < n; k++) {
		o->iov[cnt++] = (struct iovec){ (void *)r[k].head, r[k].head_len };
		o->iov[cnt++] = (struct iovec){ (void *)r[k].body, r[k].body_len };
	}
	w = out_write(o, o->iov, cnt);
	if (w < 0) {
		out_fail(o, (int)-w);
		pp_counter_add(o->drop_error, n);
		return n;
	}
	o->failed = false;
	left = out_consume(o, (size_t)w);
	for (; i < n && left >= out_rec_len(&r[i]); i++) {
		left -= out_rec_len(&r[i]);
		out_deliver(o, r[i].body_len);
	}
	if (left) {
		/* Part of it is out: the rest goes next, whatever the limit. */
		if (out_append(o, &r[i], left) < 0)
			pp_counter_add(o->drop_nomem, 1);
		i++;
	}
	return i;
}

static void out_drop(struct out *o, pp_counter *reason, struct pp_log_limit *lim, const char *why)
{
	pp_counter_add(reason, 1);
	o->host->log_limited(o->node, lim, PP_LOG_WARNING, "%s: %s: dropping packets", o->path,
			     why);
}

/* One record: into the buffer if it fits (after a flush, if that helps),
 * straight out if it could never fit, else dropped whole. */
static void out_take(struct out *o, const struct out_rec *r)
{
	size_t len = out_rec_len(r);

	if (o->fd < 0) {
		out_drop(o, o->drop_error, &o->error_limit, "no output open");
		return;
	}
	if (out_pending(o) + len > o->limit)
		out_flush(o);
	if (out_pending(o) + len <= o->limit) {
		if (out_append(o, r, 0) < 0)
			out_drop(o, o->drop_nomem, &o->nomem_limit, "out of memory");
	} else if (out_writable(o) && !out_pending(o)) {
		out_write_direct(o, r, 1);
	} else {
		out_drop(o, o->drop_slow, &o->slow_limit, "reader too slow, buffer full");
	}
}

/* Tell the host what was written and what waits. */
static void out_report(struct out *o)
{
	if (o->dpackets)
		o->host->delivered(o->node, o->dpackets, o->dbytes);
	o->dpackets = o->dbytes = 0;
	pp_counter_set(&o->stats->packets_held, out_queued(o));
}

/* ------------------------------------------------------------------ */
/* The end of a stream                                                  */

/* Why what is still queued gets lost when the stream ends. */
static pp_counter *out_loss_reason(const struct out *o)
{
	return o->fd < 0 || o->failed ? o->drop_error : o->drop_slow;
}

/* Drop the oldest record, which went out in part to the stream being
 * closed: its rest would tear the next one. */
static void out_drop_torn(struct out *o)
{
	if (!o->done)
		return;
	pp_counter_add(out_loss_reason(o), 1);
	out_pop(o);
}

static void out_close_fd(struct out *o)
{
	if (o->watch) {
		o->host->unwatch(o->watch);
		o->watch = NULL;
	}
	if (o->fd >= 0)
		close(o->fd);
	o->fd = -1;
}

/* Done writing: drop what could not go, release the host's timer and watch. */
static void out_finish(struct out *o)
{
	size_t left = out_queued(o);

	if (left) {
		o->host->log(o->node, PP_LOG_WARNING, "%s: %zu packets could not be written",
			     o->path, left);
		out_drop_queued(o, out_loss_reason(o));
		out_drop_torn(o);
	}
	out_report(o);
	out_close_fd(o);
	if (o->timer)
		o->host->timer_free(o->timer);
	o->timer = NULL;
}

/* ------------------------------------------------------------------ */
/* Timer, watch and accounting, after every entry point                 */

static bool out_waiting(const struct out *o)
{
	return out_pending(o) || o->pre_done < o->pre_len;
}

static void out_rearm(struct out *o)
{
	/* The timer exists from start() on: watch no earlier either. */
	if (o->blocked && !o->watch && o->timer)
		o->watch = o->host->watch_fd(o->node, o->fd, PP_WATCH_WRITE, out_on_writable, o);
	if (!o->blocked && o->watch) {
		/* Unwatched while not full: a FIFO without reader reports
		 * an error on every loop turn. */
		o->host->unwatch(o->watch);
		o->watch = NULL;
	}
	if (out_waiting(o) && o->timer && o->fd >= 0 && !o->timer_armed &&
	    (!o->blocked || !o->watch)) {
		uint64_t delay = o->flush_ns;
		if (o->failed && delay < OUT_ERROR_RETRY_NS)
			delay = OUT_ERROR_RETRY_NS;
		o->timer_armed = o->host->timer_arm(o->timer, delay, 0) == 0;
	}
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

static void out_on_writable(void *arg, int fd, unsigned events)
{
	struct out *o = arg;

	(void)fd;
	(void)events;
	o->blocked = false;
	out_flush(o);
	out_settle(o);
}

/* ------------------------------------------------------------------ */
/* Entry points                                                         */

int out_start(struct out *o)
{
	o->timer = o->host->timer_new(o->node, out_on_timer, o);
	if (!o->timer)
		return -ENOMEM;
	out_settle(o);
	return 0;
}

int out_set_preamble(struct out *o, const void *data, size_t len)
{
	if (len > sizeof(o->pre))
		return -EINVAL;
	memcpy(o->pre, data, len);
	o->pre_len = len;
	o->pre_done = 0;
	out_flush(o);
	out_settle(o);
	return 0;
}

static void out_submit_chunk(struct out *o, const struct out_rec *r, size_t n)
{
	size_t i = 0, bytes = out_pending(o);
	/* After an error, leave retries to the timer. */
	bool eager = out_writable(o) && !o->failed;

	for (size_t k = 0; k < n; k++)
		bytes += out_rec_len(&r[k]);
	if (eager && (bytes >= OUT_WRITE_MIN || !o->flush_ns))
		i = out_write_direct(o, r, n);
	for (; i < n; i++)
		out_take(o, &r[i]);
	if (eager && (out_pending(o) >= OUT_WRITE_MIN || !o->flush_ns))
		out_flush(o);
}

void out_submit(struct out *o, const struct out_rec *recs, size_t n)
{
	for (size_t i = 0; i < n; i += OUT_CHUNK)
		out_submit_chunk(o, recs + i, n - i < OUT_CHUNK ? n - i : OUT_CHUNK);
	out_settle(o);
}

int out_reopen(struct out *o)
{
	int rc;

	out_flush(o);
	out_drop_torn(o);
	out_close_fd(o);
	rc = out_open_fd(o);
	if (rc < 0)
		out_fail(o, -rc);
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
	if (out_waiting(o) && o->nonblock && o->fd >= 0 && !o->failed && o->timer) {
		o->draining = true;
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
	if (out_queued(o)) {
		pp_counter_add(out_loss_reason(o), out_queued(o));
		pp_counter_set(&o->stats->packets_held, 0);
	}
	if (o->fd >= 0)
		close(o->fd);
	free(o->buf);
	free(o->q);
	free(o);
}
