/* The output side of pcap-out: a stream of whole records into a file or a
 * FIFO, and a bounded buffer of those waiting for it.
 *
 * It knows nothing of pcap. A record is a head, a body and a tail that reach
 * the stream whole: a record is dropped whole or not at all, and one that
 * went out in part is always finished (never torn). A preamble (the file
 * header, and pcapng's interface blocks) starts every stream, before any
 * record: every file it opens, every reader a FIFO gets.
 *
 * A FIFO is opened without blocking. While it has no reader, the path is
 * tried again every retry_ns and packets are dropped under "no-reader";
 * a reader that leaves (EPIPE) takes the packets waiting for it with it
 * (also "no-reader"), and the next one gets a fresh stream.
 *
 * A regular file may be continued (append) when the format callback says
 * it can be, and is rotated by size and time, its name expanded by
 * strftime, keeping the newest rotate_count files.
 *
 * It keeps the node's accounting for every record it was handed: written
 * (host->delivered), waiting (packets_held), or dropped under "reader-slow"
 * (the buffer is full because a FIFO's reader lags), "no-reader",
 * "write-error" (the file refused the data, or could not be opened) or
 * "nomem". One record is one packet.
 *
 * Regular files are written with blocking writes, FIFOs without: data waits
 * in memory up to `limit` bytes while the FIFO is full. Small writes are
 * gathered and reach the file within `flush_ns`, from a host timer.
 */
#ifndef PKTPIPE_PCAP_OUT_OUTPUT_H
#define PKTPIPE_PCAP_OUT_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pktpipe/plugin.h>

struct out_rec {
	const void *head;
	size_t head_len;
	const void *body;
	size_t body_len;
	const void *tail;
	size_t tail_len;
};

/* Whether a file of size bytes (> 0, fd open for reading) can be continued:
 * 0 with *keep the bytes to keep (a record torn by a crash is cut off) and
 * *header whether the stream's preamble must still be written (pcapng: a
 * new section; pcap: no, the file's own header stands), or -EINVAL with the
 * reason in err. May call out_add_preamble(). */
typedef int (*out_resume_fn)(void *arg, int fd, uint64_t size, uint64_t *keep, bool *header,
			     char *err, size_t errlen);

struct out_config {
	const char *path; /* expanded by strftime(3) for each file */
	uint64_t limit; /* bytes that may wait for a slow FIFO reader */
	uint64_t flush_ns; /* small writes are gathered this long */
	uint64_t retry_ns; /* how often a FIFO without reader is tried */
	uint64_t pipe_size; /* F_SETPIPE_SZ wish; 0 = the kernel's default */
	bool append; /* continue existing files (resume decides how) */
	bool wait; /* a lagging FIFO reader holds back the sources (set_busy) */
	uint64_t rotate_size; /* bytes per file; 0 = no size rotation */
	uint64_t rotate_ns; /* a new file at each multiple; 0 = none */
	uint32_t rotate_count; /* files this run keeps; 0 = all */
	out_resume_fn resume;
	void *arg;
};

struct out;

/* Open the first stream. A FIFO without a reader is not an error: it is
 * waited for. Every failure is logged naming the path. cfg is copied; the
 * strings it points to must outlive the output. */
int out_open(struct out **op, struct pp_node *node, const struct pp_host *host,
	     const struct out_config *cfg);

/* Start the timers (flush, FIFO retries): from start(), since a node that
 * was opened but never started is closed without stop(), and close() may
 * not free a timer. */
int out_start(struct out *o);

/* Append bytes to the preamble (a pcap header, a pcapng block): they start
 * every later stream, and the current one gets them now, in order with its
 * records. */
int out_add_preamble(struct out *o, const void *data, size_t len);

/* Write, buffer or drop n records. The records' memory is only read during
 * the call. */
void out_submit(struct out *o, const struct out_rec *recs, size_t n);

/* SIGHUP: a file is closed and the next one opened (the same name again,
 * or with rotate_size the next number); a FIFO whose reader is connected is
 * left alone. */
int out_reopen(struct out *o);

/* Write everything that can go: all of it to a regular file. 0 when done
 * (what could not go is dropped, the host's timers and watch released); for
 * a FIFO with data waiting, -EINPROGRESS: writing goes on as the reader
 * takes it, then host->finished(node, 0). */
int out_stop(struct out *o);

/* Close the file and free memory; what still waits (the host stopped
 * waiting for the drain) is counted as dropped. Calls no host function. */
void out_close(struct out *o);

#endif
