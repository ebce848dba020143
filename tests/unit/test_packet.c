/* The packet pool: allocation, size classes, references across threads,
 * and the outstanding count the host checks for leaks at exit. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "check.h"
#include "packet.h"

TEST(alloc_sets_defaults)
{
	struct pp_packet *p = pp_packet_alloc(100);

	CHECK(p != NULL);
	CHECK(p->capacity >= 100);
	CHECK_EQ_INT(p->caplen, 0);
	CHECK_EQ_INT(p->count, 1);
	CHECK_EQ_INT(p->meta.flags, 0);
	CHECK_EQ_INT(((uintptr_t)p->data) % 16, 0);
	memset(p->data, 0xab, p->capacity); /* ASan: the whole capacity is ours */
	CHECK_EQ_INT(pp_packets_outstanding(), 1);
	pp_packet_unref(p);
	CHECK_EQ_INT(pp_packets_outstanding(), 0);
}

TEST(recycled_packets_are_reset)
{
	struct pp_packet *p = pp_packet_alloc(1500), *q;

	p->caplen = 1500;
	p->count = 7;
	p->meta.flags = PP_META_PREFIX;
	strcpy(p->meta.prefix, "old");
	pp_packet_unref(p);
	q = pp_packet_alloc(1000);
	CHECK_EQ_INT(q->caplen, 0);
	CHECK_EQ_INT(q->count, 1);
	CHECK_EQ_INT(q->meta.flags, 0);
	CHECK_EQ_INT(q->meta.prefix[0], 0);
	pp_packet_unref(q);
}

TEST(large_packets_bypass_the_pool)
{
	struct pp_packet *p = pp_packet_alloc(4u << 20);

	CHECK(p != NULL);
	CHECK(p->capacity >= (4u << 20));
	p->data[p->capacity - 1] = 1;
	pp_packet_unref(p);
	CHECK(pp_packet_alloc(PP_PACKET_MAX + 1u) == NULL);
	CHECK_EQ_INT(pp_packets_outstanding(), 0);
}

TEST(references_keep_a_packet_alive)
{
	struct pp_packet *p = pp_packet_alloc(64);

	pp_packet_ref(p);
	pp_packet_ref(p);
	CHECK_EQ_INT(pp_packet_refs(p), 3);
	pp_packet_unref(p);
	pp_packet_unref(p);
	CHECK_EQ_INT(pp_packets_outstanding(), 1);
	p->data[0] = 1; /* still ours: ASan would object otherwise */
	pp_packet_unref(p);
	CHECK_EQ_INT(pp_packets_outstanding(), 0);
	pp_packet_unref(NULL);
}

#define THREAD_PACKETS 20000
static struct pp_packet *shared[THREAD_PACKETS];

static void *unref_half(void *arg)
{
	(void)arg;
	for (int i = 0; i < THREAD_PACKETS; i++)
		pp_packet_unref(shared[i]);
	return NULL;
}

/* The last reference may drop on either thread; none is lost or freed
 * twice (ASan and the outstanding count tell). */
TEST(unref_from_two_threads)
{
	pthread_t t;

	for (int i = 0; i < THREAD_PACKETS; i++) {
		shared[i] = pp_packet_alloc((uint32_t)(i % 3000));
		pp_packet_ref(shared[i]);
	}
	pthread_create(&t, NULL, unref_half, NULL);
	for (int i = 0; i < THREAD_PACKETS; i++)
		pp_packet_unref(shared[i]);
	pthread_join(t, NULL);
	CHECK_EQ_INT(pp_packets_outstanding(), 0);
	pp_pool_trim();
}

/* ------------------------------------------------------------------ */
/* Sizes: every packet gets the room it asked for, and not much more    */

#define CLASS_MAX (256u * 1024u) /* the largest pooled size (packet.c) */
#define NCLASSES 92 /* 64 steps of 32 bytes to 2 KiB, four a doubling to 256 KiB */

/* Whether p holds capacity `want` and wastes at most a class's step: 32
 * bytes up to 2 KiB, a quarter above. The first and last byte asked for and
 * the last of the capacity are written: ASan objects if they are not ours. */
static int check_room(struct pp_packet *p, uint32_t want)
{
	uint64_t slack = want / 4 > 32 ? want / 4 : 32;

	if (!p || p->capacity < want || p->capacity > want + slack ||
	    ((uintptr_t)p->data) % 16 != 0) {
		fprintf(stderr, "size %u: got %s capacity %u\n", want, p ? "" : "no packet,",
			p ? p->capacity : 0);
		return 0;
	}
	p->data[0] = 0x5a;
	if (want)
		p->data[want - 1] = 0xa5;
	p->data[p->capacity - 1] = 0x3c;
	return 1;
}

/* Every size the pool classes, one by one: enough room, capacities that
 * never shrink as the size grows, and exactly NCLASSES distinct ones. */
TEST(every_pooled_size_gets_its_room)
{
	uint64_t start = pp_packets_outstanding();
	uint32_t last = 0, classes = 0, bad = 0;

	for (uint32_t want = 0; want <= CLASS_MAX; want++) {
		struct pp_packet *p = pp_packet_alloc(want);

		if (!check_room(p, want) || p->capacity < last)
			bad++;
		if (p && p->capacity != last)
			classes++;
		last = p ? p->capacity : last;
		pp_packet_unref(p);
		if (bad > 10)
			break; /* the messages above say enough */
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(classes, NCLASSES);
	CHECK_EQ_INT(pp_packets_outstanding(), start);
}

/* The class boundaries, and sizes past the pool up to the largest packet
 * (those go to malloc); one byte more than that is refused. */
TEST(boundary_sizes)
{
	static const uint32_t sizes[] = {
		0, 1, 32, 33, 2047, 2048, 2049, 2560, 2561, 65536, 65537, CLASS_MAX - 1,
		CLASS_MAX, CLASS_MAX + 1, 1u << 20, (1u << 20) + 1, 64u << 20,
		PP_PACKET_MAX - 1, PP_PACKET_MAX,
	};
	uint64_t start = pp_packets_outstanding();

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct pp_packet *p = pp_packet_alloc(sizes[i]);

		CHECK(check_room(p, sizes[i]));
		CHECK_EQ_INT(pp_packets_outstanding(), start + 1);
		pp_packet_unref(p);
	}
	CHECK(pp_packet_alloc(PP_PACKET_MAX + 1u) == NULL);
	CHECK(pp_packet_alloc(UINT32_MAX) == NULL);
	CHECK_EQ_INT(pp_packets_outstanding(), start);
}

/* ------------------------------------------------------------------ */
/* Threads: made on one, released on another                            */

#define HANDOFF_PACKETS 5000

static struct pp_packet *handoff[HANDOFF_PACKETS];
static pthread_barrier_t made, counted;

/* A packet's size: every class, and now and then one past the pool. */
static uint32_t handoff_size(int i)
{
	return i % 500 == 499 ? CLASS_MAX + 1u + (uint32_t)i : (uint32_t)i * 53u % CLASS_MAX;
}

/* Makes the packets, then stays alive until the count has been read with
 * its per-thread share still live. */
static void *maker(void *arg)
{
	int *bad = arg;

	for (int i = 0; i < HANDOFF_PACKETS; i++) {
		handoff[i] = pp_packet_alloc(handoff_size(i));
		if (!check_room(handoff[i], handoff_size(i)))
			(*bad)++;
		if (handoff[i])
			handoff[i]->caplen = (uint32_t)i;
	}
	pthread_barrier_wait(&made);
	pthread_barrier_wait(&counted);
	return NULL;
}

/* Releases what the maker made: this thread never allocated. */
static void *releaser(void *arg)
{
	int *bad = arg;

	for (int i = 0; i < HANDOFF_PACKETS; i++) {
		if (handoff[i] && handoff[i]->caplen != (uint32_t)i)
			(*bad)++;
		pp_packet_unref(handoff[i]);
	}
	return NULL;
}

/* The outstanding count sums live threads and ended ones: right while the
 * maker lives, after the releaser has ended, and once both have. */
TEST(made_on_one_thread_released_on_another)
{
	uint64_t start = pp_packets_outstanding();
	int bad_made = 0, bad_seen = 0;
	pthread_t m, r;

	pthread_barrier_init(&made, NULL, 2);
	pthread_barrier_init(&counted, NULL, 2);
	CHECK_EQ_INT(pthread_create(&m, NULL, maker, &bad_made), 0);
	pthread_barrier_wait(&made);
	CHECK_EQ_INT(pp_packets_outstanding(), start + HANDOFF_PACKETS);
	CHECK_EQ_INT(pthread_create(&r, NULL, releaser, &bad_seen), 0);
	pthread_join(r, NULL);
	CHECK_EQ_INT(pp_packets_outstanding(), start); /* the maker still lives */
	pthread_barrier_wait(&counted);
	pthread_join(m, NULL);
	CHECK_EQ_INT(bad_made, 0);
	CHECK_EQ_INT(bad_seen, 0);
	CHECK_EQ_INT(pp_packets_outstanding(), start);
	pthread_barrier_destroy(&made);
	pthread_barrier_destroy(&counted);
}

/* What ended threads left in the pool serves this thread, whole. */
TEST(pool_serves_after_threads_end)
{
	uint64_t start = pp_packets_outstanding();
	int bad = 0;

	for (int i = 0; i < HANDOFF_PACKETS; i++) {
		handoff[i] = pp_packet_alloc(handoff_size(i));
		if (!check_room(handoff[i], handoff_size(i)))
			bad++;
	}
	CHECK_EQ_INT(pp_packets_outstanding(), start + HANDOFF_PACKETS);
	for (int i = 0; i < HANDOFF_PACKETS; i++)
		pp_packet_unref(handoff[i]);
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(pp_packets_outstanding(), start);
	pp_pool_trim();
	CHECK_EQ_INT(pp_packets_outstanding(), start);
}

/* ------------------------------------------------------------------ */
/* References taken and dropped on several threads at once              */

#define REF_THREADS 4
#define REF_ROUNDS 100000

static void *ref_churn(void *arg)
{
	struct pp_packet *p = arg;

	for (int i = 0; i < REF_ROUNDS; i++) {
		pp_packet_ref(p);
		pp_packet_ref(p);
		pp_packet_unref(p);
		pp_packet_unref(p);
	}
	/* The reference the main thread took for this thread. */
	pp_packet_unref(p);
	return NULL;
}

/* A lost update would leave the count off by some, or free the packet
 * under its holders (ASan); the last unref, on this thread, releases it. */
TEST(references_from_several_threads)
{
	uint64_t start = pp_packets_outstanding();
	struct pp_packet *p = pp_packet_alloc(256);
	pthread_t t[REF_THREADS];

	for (int i = 0; i < REF_THREADS; i++)
		pp_packet_ref(p);
	CHECK_EQ_INT(pp_packet_refs(p), 1 + REF_THREADS);
	for (int i = 0; i < REF_THREADS; i++)
		CHECK_EQ_INT(pthread_create(&t[i], NULL, ref_churn, p), 0);
	for (int i = 0; i < REF_THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK_EQ_INT(pp_packet_refs(p), 1);
	CHECK_EQ_INT(pp_packets_outstanding(), start + 1);
	p->data[255] = 1; /* still ours */
	pp_packet_unref(p);
	CHECK_EQ_INT(pp_packets_outstanding(), start);
}

/* ------------------------------------------------------------------ */
/* Wrapped packets: the caller's bytes, given back once                 */

struct owner {
	uint8_t bytes[1500];
	int released; /* release() calls */
};

static void owner_release(void *arg)
{
	__atomic_add_fetch(&((struct owner *)arg)->released, 1, __ATOMIC_RELAXED);
}

TEST(wrapped_packets_release_once_on_the_last_unref)
{
	static struct owner o;
	uint64_t start = pp_packets_outstanding();
	struct pp_packet *p = pp_packet_wrap(o.bytes + 10, 1400, owner_release, &o), *q;

	CHECK(p && p->data == o.bytes + 10 && p->caplen == 1400 && p->capacity == 1400);
	CHECK(p->count == 1 && p->meta.flags == 0 && p->linktype == 0 && p->ts_ns == 0);
	CHECK_EQ_INT(pp_packets_outstanding(), start + 1);
	pp_packet_ref(p);
	pp_packet_unref(p);
	CHECK_EQ_INT(o.released, 0);
	pp_packet_unref(p);
	CHECK_EQ_INT(o.released, 1);
	CHECK_EQ_INT(pp_packets_outstanding(), start);
	/* Its struct serves again as an ordinary packet with its own room. */
	q = pp_packet_alloc(0);
	CHECK(q->data != o.bytes + 10 && q->capacity >= 32 && q->caplen == 0);
	memset(q->data, 1, q->capacity); /* ASan: the room is real */
	pp_packet_unref(q);
	CHECK_EQ_INT(o.released, 1);
}

#define WRAP_PACKETS 5000
static struct owner wrap_owner;
static struct pp_packet *wrapped[WRAP_PACKETS];

static void *unref_wrapped(void *arg)
{
	(void)arg;
	for (int i = 0; i < WRAP_PACKETS; i++)
		pp_packet_unref(wrapped[i]);
	return NULL;
}

/* Whichever thread drops the last reference gives the bytes back, once. */
TEST(wrapped_packets_released_from_two_threads)
{
	uint64_t start = pp_packets_outstanding();
	pthread_t t;

	for (int i = 0; i < WRAP_PACKETS; i++) {
		wrapped[i] = pp_packet_wrap(wrap_owner.bytes + i % 1000, (uint32_t)(i % 500),
					    owner_release, &wrap_owner);
		pp_packet_ref(wrapped[i]);
	}
	CHECK_EQ_INT(pthread_create(&t, NULL, unref_wrapped, NULL), 0);
	for (int i = 0; i < WRAP_PACKETS; i++)
		pp_packet_unref(wrapped[i]);
	pthread_join(t, NULL);
	CHECK_EQ_INT(wrap_owner.released, WRAP_PACKETS);
	CHECK_EQ_INT(pp_packets_outstanding(), start);
}

/* What is kept for long never pins the owner's bytes: a wrapped packet is
 * copied, an ordinary one shared. */
TEST(keeping_copies_only_wrapped_packets)
{
	static struct owner o;
	uint64_t start = pp_packets_outstanding();
	struct pp_packet *p = pp_packet_alloc(100), *w, *k;

	CHECK(pp_packet_keep(p) == p && pp_packet_refs(p) == 2);
	pp_packet_unref(p);
	pp_packet_unref(p);
	memset(o.bytes, 0x5a, 300);
	w = pp_packet_wrap(o.bytes, 300, owner_release, &o);
	w->ts_ns = 7;
	w->linktype = 101;
	w->origlen = 1500;
	w->meta.flags = PP_META_GROUP | PP_META_PREFIX;
	w->meta.group = 3;
	strcpy(w->meta.prefix, "in: ");
	k = pp_packet_keep(w);
	CHECK(k && k != w && k->data != o.bytes && pp_packet_refs(w) == 1);
	CHECK(k->caplen == 300 && k->origlen == 1500 && k->ts_ns == 7 && k->linktype == 101);
	CHECK(k->count == 1 && k->meta.group == 3 && strcmp(k->meta.prefix, "in: ") == 0);
	pp_packet_unref(w);
	CHECK_EQ_INT(o.released, 1);
	memset(o.bytes, 0, 300); /* the owner reuses its bytes: the copy stays */
	CHECK(k->data[0] == 0x5a && k->data[299] == 0x5a);
	pp_packet_unref(k);
	CHECK_EQ_INT(pp_packets_outstanding(), start);
}

CHECK_MAIN("packet", TEST_ENTRY(alloc_sets_defaults), TEST_ENTRY(recycled_packets_are_reset),
	   TEST_ENTRY(large_packets_bypass_the_pool), TEST_ENTRY(references_keep_a_packet_alive),
	   TEST_ENTRY(unref_from_two_threads), TEST_ENTRY(every_pooled_size_gets_its_room),
	   TEST_ENTRY(boundary_sizes), TEST_ENTRY(made_on_one_thread_released_on_another),
	   TEST_ENTRY(pool_serves_after_threads_end), TEST_ENTRY(references_from_several_threads),
	   TEST_ENTRY(wrapped_packets_release_once_on_the_last_unref),
	   TEST_ENTRY(wrapped_packets_released_from_two_threads),
	   TEST_ENTRY(keeping_copies_only_wrapped_packets))
