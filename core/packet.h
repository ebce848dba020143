/* The packet pool. Packets and their data are one allocation; sizes up to
 * the largest class are recycled through per-class free lists, larger ones
 * go back to malloc. Reference counts are atomic: the last unref may happen
 * on any thread (zmq's I/O thread, a worker).
 *
 * Invariant: pp_packets_outstanding() is the number of packets allocated
 * and not yet released; it is 0 once a graph has been closed, and the host
 * reports a leak otherwise. */
#ifndef PKTPIPE_CORE_PACKET_H
#define PKTPIPE_CORE_PACKET_H

#include <pktpipe/plugin.h>

/* NULL only when memory is exhausted or capacity exceeds PP_PACKET_MAX. */
struct pp_packet *pp_packet_alloc(uint32_t capacity);
/* Over the caller's bytes: see struct pp_host's packet_wrap. */
struct pp_packet *pp_packet_wrap(const uint8_t *data, uint32_t len, void (*release)(void *arg),
				 void *arg);
/* A reference worth keeping: see struct pp_host's packet_keep. */
struct pp_packet *pp_packet_keep(struct pp_packet *p);
void pp_packet_ref(struct pp_packet *p);
void pp_packet_unref(struct pp_packet *p);
/* References held on p (tests). */
uint32_t pp_packet_refs(const struct pp_packet *p);

/* Largest packet or frame: 1 GiB. */
#define PP_PACKET_MAX (1u << 30)

uint64_t pp_packets_outstanding(void);
/* Return every pooled free packet to malloc (at exit, for leak checkers). */
void pp_pool_trim(void);

#endif
