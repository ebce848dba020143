/* The output side of pcap-out: one file or FIFO, and a bounded buffer of
 * whole records waiting for it.
 *
 * It knows nothing of pcap. A record is a header and a body that reach the
 * file whole: a record is dropped whole or not at all, and one that went out
 * in part is always finished (never torn). A preamble (the pcap file header)
 * starts every stream it opens, before any record.
 *
 * It keeps the node's accounting for every record it was handed: written
 * (host->delivered), waiting (packets_held), or dropped under "reader-slow"
 * (the buffer is full because a FIFO's reader lags), "write-error" (the
 * file refused the data) or "nomem". One record is one packet.
 *
 * Regular files are written with blocking writes, FIFOs without: data waits
 * in memory up to `limit` bytes while the FIFO is full. Small writes are
 * gathered and reach the file within `flush_ns`, from a host timer.
 */
#ifndef PKTPIPE_PCAP_OUT_OUTPUT_H
#define PKTPIPE_PCAP_OUT_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include <pktpipe/plugin.h>

struct out_rec {
	const void *head;
	size_t head_len;
	const void *body;
	size_t body_len;
};

struct out;

/* Open (create, truncate) path. A FIFO without a reader fails with -ENXIO.
 * Every failure is logged naming the path. */
int out_open(struct out **op, struct pp_node *node, const struct pp_host *host, const char *path,
	     uint64_t limit, uint64_t flush_ns);

/* Start flushing by timer: from start(), since a node that was opened but
 * never started is closed without stop(), and close() may not free a timer. */
int out_start(struct out *o);

/* Set the bytes that start each stream, and send them now. At most
 * OUT_PREAMBLE_MAX bytes; call it before the first record. */
#define OUT_PREAMBLE_MAX 64
int out_set_preamble(struct out *o, const void *data, size_t len);

/* Write, buffer or drop n records. The records' memory is only read during
 * the call. */
void out_submit(struct out *o, const struct out_rec *recs, size_t n);

/* SIGHUP: flush what can go, then reopen the path (truncating) and start
 * the new stream with the preamble. */
int out_reopen(struct out *o);

/* Write everything that can go: all of it to a regular file. 0 when done
 * (what could not go is dropped, the host's timer and watch released); for
 * a FIFO with data waiting, -EINPROGRESS: writing goes on as the reader
 * takes it, then host->finished(node, 0). */
int out_stop(struct out *o);

/* Close the file and free memory; what still waits (the host stopped
 * waiting for the drain) is counted as dropped. Calls no host function. */
void out_close(struct out *o);

#endif
