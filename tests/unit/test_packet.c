/* The packet pool: allocation, size classes, references across threads,
 * and the outstanding count the host checks for leaks at exit. */
#include <pthread.h>
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

CHECK_MAIN("packet", TEST_ENTRY(alloc_sets_defaults), TEST_ENTRY(recycled_packets_are_reset),
	   TEST_ENTRY(large_packets_bypass_the_pool), TEST_ENTRY(references_keep_a_packet_alive),
	   TEST_ENTRY(unref_from_two_threads))
