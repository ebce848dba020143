#include "packet.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Every thread that allocates or releases packets keeps a small cache of
 * free packets per size class, so that the common case, a packet made and
 * released on the same thread, takes no lock and no locked instruction.
 * Caches trade with a shared pool under a mutex, half a class at a time;
 * a thread's cache goes back to the pool when the thread ends.
 *
 * Free packets are memory nobody uses: caches and pool keep a bounded
 * number of bytes, and what does not fit goes back to malloc, which can
 * reuse it for any size. A ring that evicts large packets while small ones
 * arrive so holds its window, not its window plus a pool of the wrong size.
 *
 * The outstanding count is kept per thread too (allocated minus released
 * there, which may be negative where another thread allocated); the total
 * is the sum over live threads plus what ended threads left. */

struct pkt {
	uint32_t refs;
	uint16_t size_class; /* see class_capacity(), or NO_CLASS; free, a
			      * packet has its class's capacity */
	/* A wrapped packet: pub.data is the caller's, and its own data holds
	 * the struct wrap that gives them back (the padding here, not a
	 * field more: a ring holds many packets). */
	uint16_t wrapped;
	struct pp_packet pub;
	/* data follows, aligned for any header a plugin overlays */
	_Alignas(16) uint8_t data[];
};

/* How a wrapped packet's bytes go back to their owner. */
struct wrap {
	void (*release)(void *arg);
	void *arg;
};

/* Size classes: 32-byte steps up to 2 KiB, then four a doubling up to
 * 256 KiB (pcap's largest snaplen), so that a packet wastes little of its
 * allocation (a ring's window is counted in caplen and 256 bytes a packet);
 * larger packets and frames go straight to malloc. */
#define NSMALL 64 /* the 32-byte steps */
#define NCLASSES (NSMALL + 28)
#define CLASS_MAX_CAPACITY (256u * 1024u)
#define NO_CLASS 0xffff
#define CACHE_SLOTS 128 /* per class and thread, at most */
#define CACHE_BYTES (512u << 10) /* a thread's cache holds at most this */
#define POOL_MAX 8192 /* per class, at most */
#define POOL_BYTES (2u << 20) /* the pool holds at most this */

static unsigned size_class(uint32_t capacity)
{
	unsigned e;

	if (capacity <= 2048)
		return capacity ? (capacity - 1) / 32 : 0;
	e = 31u - (unsigned)__builtin_clz(capacity - 1); /* 11 and up */
	return NSMALL + (e - 11) * 4 + (((capacity - 1) >> (e - 2)) & 3);
}

static uint32_t class_capacity(unsigned c)
{
	if (c < NSMALL)
		return (c + 1) * 32;
	return (5u + (c - NSMALL) % 4) << (11 + (c - NSMALL) / 4 - 2);
}

static uint32_t clamp(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Free packets of a class a thread keeps: a quarter of its budget. */
static uint32_t cache_max(unsigned c)
{
	return clamp(CACHE_BYTES / 4 / class_capacity(c), 2, CACHE_SLOTS);
}

static uint32_t pool_max(unsigned c)
{
	return clamp(POOL_BYTES / class_capacity(c), 2, POOL_MAX);
}

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t pool_bytes; /* under pool_lock */
static struct {
	uint32_t count;
	struct pkt **items; /* pool_max() of them, made on first use */
} pool[NCLASSES];

struct cache {
	int64_t outstanding; /* written by its thread only, read by any */
	struct cache *prev, *next; /* the live caches */
	uint64_t bytes; /* capacity of the packets it holds */
	uint32_t count[NCLASSES];
	uint32_t max[NCLASSES]; /* cache_max(), at hand */
	struct pkt *items[NCLASSES][CACHE_SLOTS];
};

static pthread_mutex_t caches_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cache *caches; /* live threads' */
static int64_t ended_outstanding; /* what ended threads left (atomic) */
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static _Thread_local struct cache *my_cache;

static struct pkt *to_pkt(const struct pp_packet *p)
{
	return (struct pkt *)((const char *)p - offsetof(struct pkt, pub));
}

/* ---- the shared pool ---- */

/* Up to want packets of class c from the pool into the cache. */
static void pool_take(struct cache *tc, unsigned c, uint32_t want)
{
	uint32_t n;

	pthread_mutex_lock(&pool_lock);
	n = pool[c].count < want ? pool[c].count : want;
	pool[c].count -= n;
	pool_bytes -= (uint64_t)n * class_capacity(c);
	if (n)
		memcpy(&tc->items[c][tc->count[c]], &pool[c].items[pool[c].count],
		       n * sizeof(struct pkt *));
	pthread_mutex_unlock(&pool_lock);
	tc->count[c] += n;
	tc->bytes += (uint64_t)n * class_capacity(c);
}

/* How many of n packets of class c the pool takes now; pool_lock held. */
static uint32_t pool_room(unsigned c, uint32_t n)
{
	uint64_t by_bytes;

	if (pool_bytes >= POOL_BYTES)
		return 0;
	by_bytes = (POOL_BYTES - pool_bytes) / class_capacity(c);
	if (!pool[c].items)
		pool[c].items = malloc(pool_max(c) * sizeof(struct pkt *));
	if (!pool[c].items)
		return 0;
	if (n > pool_max(c) - pool[c].count)
		n = pool_max(c) - pool[c].count;
	return by_bytes < n ? (uint32_t)by_bytes : n;
}

/* The last n packets of the cache's class c into the pool; what does not
 * fit there goes back to malloc. */
static void pool_give(struct cache *tc, unsigned c, uint32_t n)
{
	struct pkt **from = &tc->items[c][tc->count[c] - n];
	uint32_t fit;

	pthread_mutex_lock(&pool_lock);
	fit = pool_room(c, n);
	if (fit)
		memcpy(&pool[c].items[pool[c].count], from, fit * sizeof(struct pkt *));
	pool[c].count += fit;
	pool_bytes += (uint64_t)fit * class_capacity(c);
	pthread_mutex_unlock(&pool_lock);
	for (uint32_t i = fit; i < n; i++)
		free(from[i]);
	tc->count[c] -= n;
	tc->bytes -= (uint64_t)n * class_capacity(c);
}

/* ---- per-thread caches ---- */

static void cache_flush(struct cache *tc)
{
	for (unsigned c = 0; c < NCLASSES; c++)
		if (tc->count[c])
			pool_give(tc, c, tc->count[c]);
}

/* A thread ends: its free packets go to the pool, its count to the total. */
static void cache_end(void *arg)
{
	struct cache *tc = arg;

	cache_flush(tc);
	/* A later destructor that releases a packet makes a new cache. */
	my_cache = NULL;
	pthread_mutex_lock(&caches_lock);
	__atomic_add_fetch(&ended_outstanding, tc->outstanding, __ATOMIC_RELAXED);
	if (tc->prev)
		tc->prev->next = tc->next;
	else
		caches = tc->next;
	if (tc->next)
		tc->next->prev = tc->prev;
	pthread_mutex_unlock(&caches_lock);
	free(tc);
}

static void cache_key_new(void)
{
	pthread_key_create(&cache_key, cache_end);
}

/* The calling thread's cache, made on first use; NULL without memory. */
static struct cache *cache_get(void)
{
	struct cache *tc = my_cache;

	if (tc)
		return tc;
	pthread_once(&cache_once, cache_key_new);
	tc = calloc(1, sizeof(*tc));
	if (!tc)
		return NULL;
	for (unsigned c = 0; c < NCLASSES; c++)
		tc->max[c] = cache_max(c);
	pthread_mutex_lock(&caches_lock);
	tc->next = caches;
	if (caches)
		caches->prev = tc;
	caches = tc;
	pthread_mutex_unlock(&caches_lock);
	pthread_setspecific(cache_key, tc);
	my_cache = tc;
	return tc;
}

static void count_outstanding(struct cache *tc, int64_t d)
{
	if (tc)
		__atomic_store_n(&tc->outstanding, tc->outstanding + d, __ATOMIC_RELAXED);
	else
		__atomic_add_fetch(&ended_outstanding, d, __ATOMIC_RELAXED);
}

/* ---- packets ---- */

static struct pp_packet *init_pkt(struct cache *tc, struct pkt *k)
{
	k->refs = 1;
	k->wrapped = 0;
	k->pub.data = k->data;
	k->pub.caplen = k->pub.origlen = 0;
	k->pub.ts_ns = 0;
	k->pub.linktype = 0;
	k->pub.count = 1;
	k->pub.codec = 0;
	/* Metadata is only read where flags say so: clearing flags suffices. */
	k->pub.meta.flags = 0;
	k->pub.meta.prefix[0] = '\0';
	count_outstanding(tc, 1);
	return &k->pub;
}

static struct pp_packet *cached(struct cache *tc, unsigned c)
{
	struct pkt *k = tc->items[c][--tc->count[c]];

	/* Not k->pub.capacity, though equal (a free packet has its class's):
	 * k is often cold by now, and a load from it would stall here, where
	 * init_pkt()'s stores need not wait. */
	tc->bytes -= class_capacity(c);
	return init_pkt(tc, k);
}

/* Anything but a packet from the cache: refill it, or malloc. */
static __attribute__((noinline)) struct pp_packet *alloc_slow(uint32_t capacity)
{
	struct cache *tc = cache_get();
	unsigned c = capacity <= CLASS_MAX_CAPACITY ? size_class(capacity) : NO_CLASS;
	struct pkt *k;

	if (c != NO_CLASS && tc) {
		if (!tc->count[c])
			pool_take(tc, c, tc->max[c] / 2 ? tc->max[c] / 2 : 1);
		if (tc->count[c])
			return cached(tc, c);
	}
	if (capacity > PP_PACKET_MAX)
		return NULL;
	if (c != NO_CLASS)
		capacity = class_capacity(c);
	k = malloc(sizeof(*k) + capacity);
	if (!k)
		return NULL;
	k->size_class = (uint16_t)c;
	k->pub.capacity = capacity;
	return init_pkt(tc, k);
}

struct pp_packet *pp_packet_alloc(uint32_t capacity)
{
	struct cache *tc = my_cache;
	unsigned c;

	if (tc && capacity <= CLASS_MAX_CAPACITY) {
		c = size_class(capacity);
		if (tc->count[c])
			return cached(tc, c);
	}
	return alloc_slow(capacity);
}

static struct wrap *wrap_of(struct pkt *k)
{
	return (struct wrap *)(void *)k->data;
}

/* The smallest class carries wrapped packets; its room holds the wrap. */
_Static_assert(sizeof(struct wrap) <= 32, "the smallest class holds a struct wrap");

struct pp_packet *pp_packet_wrap(const uint8_t *data, uint32_t len, void (*release)(void *arg),
				 void *arg)
{
	struct pp_packet *p = pp_packet_alloc(0);
	struct pkt *k;

	if (!p)
		return NULL;
	k = to_pkt(p);
	k->wrapped = 1;
	*wrap_of(k) = (struct wrap){ .release = release, .arg = arg };
	/* Read-only like every emitted packet; the cast is the ABI's. */
	p->data = (uint8_t *)(uintptr_t)data;
	p->caplen = p->capacity = len;
	return p;
}

struct pp_packet *pp_packet_keep(struct pp_packet *p)
{
	struct pp_packet *q;

	if (!to_pkt(p)->wrapped) {
		pp_packet_ref(p);
		return p;
	}
	q = pp_packet_alloc(p->caplen);
	if (!q)
		return NULL;
	memcpy(q->data, p->data, p->caplen);
	q->caplen = p->caplen;
	q->origlen = p->origlen;
	q->ts_ns = p->ts_ns;
	q->linktype = p->linktype;
	q->count = p->count;
	q->codec = p->codec;
	if (p->meta.flags)
		q->meta = p->meta;
	return q;
}

void pp_packet_ref(struct pp_packet *p)
{
	__atomic_add_fetch(&to_pkt(p)->refs, 1, __ATOMIC_RELAXED);
}

static void cache_put(struct cache *tc, struct pkt *k)
{
	tc->items[k->size_class][tc->count[k->size_class]++] = k;
	tc->bytes += k->pub.capacity;
}

/* Its class is full, or the cache is: half the class, or this packet, go
 * to the pool first. */
static __attribute__((noinline)) void release_slow(struct pkt *k)
{
	struct cache *tc = cache_get();
	unsigned c = k->size_class;

	count_outstanding(tc, -1);
	if (c == NO_CLASS || !tc) {
		free(k);
		return;
	}
	if (tc->count[c] >= tc->max[c])
		pool_give(tc, c, tc->max[c] / 2 ? tc->max[c] / 2 : 1);
	cache_put(tc, k);
	if (tc->bytes > CACHE_BYTES)
		pool_give(tc, c, 1);
}

/* A wrapped packet's bytes go back to their owner; its struct is an
 * ordinary packet of the smallest class again. */
static __attribute__((noinline)) void unwrap(struct pkt *k)
{
	struct wrap w = *wrap_of(k);

	w.release(w.arg);
	k->wrapped = 0;
	k->pub.data = k->data;
	k->pub.capacity = class_capacity(k->size_class);
}

static void release(struct pkt *k)
{
	struct cache *tc = my_cache;
	unsigned c = k->size_class;

	if (k->wrapped)
		unwrap(k);

	if (!tc || c == NO_CLASS || tc->count[c] >= tc->max[c] ||
	    tc->bytes + k->pub.capacity > CACHE_BYTES) {
		release_slow(k);
		return;
	}
	count_outstanding(tc, -1);
	cache_put(tc, k);
}

void pp_packet_unref(struct pp_packet *p)
{
	struct pkt *k;

	if (!p)
		return;
	k = to_pkt(p);
	/* The only reference is ours: nobody else may touch the count, so
	 * no locked instruction is needed (acquire: what the holders before
	 * us wrote is seen before the packet is reused). */
	if (__atomic_load_n(&k->refs, __ATOMIC_ACQUIRE) == 1 ||
	    __atomic_sub_fetch(&k->refs, 1, __ATOMIC_ACQ_REL) == 0)
		release(k);
}

uint32_t pp_packet_refs(const struct pp_packet *p)
{
	return __atomic_load_n(&to_pkt(p)->refs, __ATOMIC_RELAXED);
}

uint64_t pp_packets_outstanding(void)
{
	int64_t n;

	pthread_mutex_lock(&caches_lock);
	n = __atomic_load_n(&ended_outstanding, __ATOMIC_RELAXED);
	for (const struct cache *tc = caches; tc; tc = tc->next)
		n += __atomic_load_n(&tc->outstanding, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&caches_lock);
	return (uint64_t)n;
}

void pp_pool_trim(void)
{
	if (my_cache)
		cache_flush(my_cache);
	pthread_mutex_lock(&pool_lock);
	for (unsigned c = 0; c < NCLASSES; c++) {
		for (uint32_t i = 0; i < pool[c].count; i++)
			free(pool[c].items[i]);
		free(pool[c].items);
		pool[c].items = NULL;
		pool[c].count = 0;
	}
	pool_bytes = 0;
	pthread_mutex_unlock(&pool_lock);
}
