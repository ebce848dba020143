/* A regular file read through a read-only shared mapping, so that packets
 * can be made over the file's own bytes (host->packet_wrap()) instead of
 * copies of them.
 *
 * Invariants:
 *   - A map is held by whoever made it and by every packet made over it
 *     (filemap_ref() per packet, filemap_release() as the packet's release
 *     callback); the last release unmaps it, on whatever thread that is.
 *   - Its bytes never change under a reader, except that a file truncated
 *     while mapped loses the pages beyond its new end. Touching such a page
 *     would raise SIGBUS; the guard below maps a page of zeros in its place
 *     instead and marks the map damaged, so a shrinking file costs garbage
 *     bytes in packets already made, never the process. A reader checks the
 *     file's size itself (fstat) before it trusts bytes it has not read yet.
 *   - The guard is one process-wide SIGBUS handler, installed with the first
 *     map and left in place; a fault outside every map goes to the handler
 *     that was there before (or to the default action, which ends the
 *     process as it would have). */
#ifndef PKTPIPE_PCAP_IN_FILEMAP_H
#define PKTPIPE_PCAP_IN_FILEMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct filemap;

/* Map the first len bytes (len > 0) of fd, a regular file opened for
 * reading. 0 or -errno; -ENOSPC when the guard watches as many maps as it
 * can (the caller reads the file instead). */
int filemap_open(struct filemap **out, int fd, size_t len);

const uint8_t *filemap_bytes(const struct filemap *m);

/* The reader is at offset pos: the map's page tables are filled ahead of
 * it (a fault per page costs more than filling many at once), and dropped
 * far enough behind it, so that the process's resident size counts a
 * window of the file, not all of it. Dropped pages are still the file's:
 * a packet that reads them again faults them back in. Reader's thread. */
void filemap_advance(struct filemap *m, size_t pos);

/* One more holder: a packet made over the bytes. */
void filemap_ref(struct filemap *m);

/* Drop a hold; the last unmaps. Any thread. Takes void * to serve as
 * host->packet_wrap()'s release callback. */
void filemap_release(void *m);

/* Whether a read of the map faulted and got zeros (the file shrank). */
bool filemap_damaged(const struct filemap *m);

#endif
