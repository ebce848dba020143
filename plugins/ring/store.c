/* The packets a ring holds: a circular array of packet references, oldest
 * at head, growing by doubling (its slots are what RING_RECORD_OVERHEAD
 * counts besides the packet's own header). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

#define STORE_MIN_SLOTS 1024

void store_init(struct store *st, uint64_t window)
{
	*st = (struct store){ .window = window };
}

/* Twice the slots, the held packets moved to the start. */
static int store_grow(struct store *st)
{
	size_t cap = st->cap ? st->cap * 2 : STORE_MIN_SLOTS;
	struct pp_packet **slot;

	if (cap > SIZE_MAX / sizeof(*slot))
		return -ENOMEM;
	slot = malloc(cap * sizeof(*slot));
	if (!slot)
		return -ENOMEM;
	for (size_t i = 0; i < st->count; i++)
		slot[i] = store_at(st, i);
	free(st->slot);
	st->slot = slot;
	st->cap = cap;
	st->head = 0;
	return 0;
}

static void store_drop_oldest(struct store *st, const struct pp_host *host,
			      struct store_gone *gone)
{
	struct pp_packet *p = st->slot[st->head];

	st->slot[st->head] = NULL;
	st->head = (st->head + 1) & (st->cap - 1);
	st->count--;
	st->cost -= store_cost(p);
	gone->packets++;
	gone->bytes += p->caplen;
	host->packet_unref(p);
}

/* A reference to keep: a copy of a packet made over a larger buffer
 * (zero-copy), so that the window is what the ring holds in memory. */
static struct pp_packet *store_keep(const struct pp_host *host, struct pp_node *node,
				    struct pp_packet *p)
{
	if (PP_HOST_HAS(host, packet_keep))
		return host->packet_keep(node, p);
	host->packet_ref(p);
	return p;
}

int store_push(struct store *st, const struct pp_host *host, struct pp_node *node,
	       struct pp_packet *p, struct store_gone *gone)
{
	uint64_t cost = store_cost(p);

	while (st->count && st->cost + cost > st->window)
		store_drop_oldest(st, host, gone);
	if (st->count == st->cap && store_grow(st) < 0)
		return -ENOMEM;
	p = store_keep(host, node, p);
	if (!p)
		return -ENOMEM;
	st->slot[(st->head + st->count) & (st->cap - 1)] = p;
	st->count++;
	st->cost += cost;
	return 0;
}

void store_clear(struct store *st, const struct pp_host *host, struct store_gone *gone)
{
	while (st->count)
		store_drop_oldest(st, host, gone);
	free(st->slot);
	st->slot = NULL;
	st->cap = 0;
	st->head = 0;
}
