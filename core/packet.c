#include "packet.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct pkt {
	uint32_t refs;
	uint16_t size_class; /* index into class_capacity, or NO_CLASS */
	struct pkt *next_free;
	struct pp_packet pub;
	/* data follows, aligned for any header a plugin overlays */
	_Alignas(16) uint8_t data[];
};

#define NO_CLASS 0xffff
#define FREE_MAX 8192 /* per class: what a burst leaves pooled at most */

static const uint32_t class_capacity[] = { 256, 2048, 16384, 65536 + 256 };
#define NCLASSES (sizeof(class_capacity) / sizeof(class_capacity[0]))

static struct {
	pthread_mutex_t lock;
	struct pkt *head;
	uint32_t count;
} free_lists[NCLASSES] = {
	{ PTHREAD_MUTEX_INITIALIZER, NULL, 0 }, { PTHREAD_MUTEX_INITIALIZER, NULL, 0 },
	{ PTHREAD_MUTEX_INITIALIZER, NULL, 0 }, { PTHREAD_MUTEX_INITIALIZER, NULL, 0 },
};

static uint64_t outstanding;

static struct pkt *to_pkt(const struct pp_packet *p)
{
	return (struct pkt *)((const char *)p - offsetof(struct pkt, pub));
}

static struct pkt *take_free(unsigned c)
{
	struct pkt *k;

	pthread_mutex_lock(&free_lists[c].lock);
	k = free_lists[c].head;
	if (k) {
		free_lists[c].head = k->next_free;
		free_lists[c].count--;
	}
	pthread_mutex_unlock(&free_lists[c].lock);
	return k;
}

static struct pkt *new_pkt(uint32_t capacity)
{
	unsigned c = 0;
	struct pkt *k;

	while (c < NCLASSES && class_capacity[c] < capacity)
		c++;
	if (c < NCLASSES && (k = take_free(c)) != NULL)
		return k;
	if (c < NCLASSES)
		capacity = class_capacity[c];
	k = malloc(sizeof(*k) + capacity);
	if (!k)
		return NULL;
	k->size_class = c < NCLASSES ? (uint16_t)c : NO_CLASS;
	k->pub.capacity = capacity;
	return k;
}

struct pp_packet *pp_packet_alloc(uint32_t capacity)
{
	struct pkt *k;

	if (capacity > PP_PACKET_MAX)
		return NULL;
	k = new_pkt(capacity);
	if (!k)
		return NULL;
	k->refs = 1;
	k->pub.data = k->data;
	k->pub.caplen = k->pub.origlen = 0;
	k->pub.ts_ns = 0;
	k->pub.linktype = 0;
	k->pub.count = 1;
	k->pub.codec = 0;
	/* Metadata is only read where flags say so: clearing flags suffices. */
	k->pub.meta.flags = 0;
	k->pub.meta.prefix[0] = '\0';
	__atomic_add_fetch(&outstanding, 1, __ATOMIC_RELAXED);
	return &k->pub;
}

void pp_packet_ref(struct pp_packet *p)
{
	__atomic_add_fetch(&to_pkt(p)->refs, 1, __ATOMIC_RELAXED);
}

static void release(struct pkt *k)
{
	unsigned c = k->size_class;

	__atomic_sub_fetch(&outstanding, 1, __ATOMIC_RELAXED);
	if (c == NO_CLASS) {
		free(k);
		return;
	}
	pthread_mutex_lock(&free_lists[c].lock);
	if (free_lists[c].count < FREE_MAX) {
		k->next_free = free_lists[c].head;
		free_lists[c].head = k;
		free_lists[c].count++;
		k = NULL;
	}
	pthread_mutex_unlock(&free_lists[c].lock);
	free(k);
}

void pp_packet_unref(struct pp_packet *p)
{
	struct pkt *k;

	if (!p)
		return;
	k = to_pkt(p);
	if (__atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) == 0)
		release(k);
}

uint32_t pp_packet_refs(const struct pp_packet *p)
{
	return __atomic_load_n(&to_pkt(p)->refs, __ATOMIC_RELAXED);
}

uint64_t pp_packets_outstanding(void)
{
	return __atomic_load_n(&outstanding, __ATOMIC_RELAXED);
}

void pp_pool_trim(void)
{
	for (unsigned c = 0; c < NCLASSES; c++) {
		struct pkt *k;

		while ((k = take_free(c)) != NULL)
			free(k);
	}
}
