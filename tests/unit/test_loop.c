/* Timers armed for "the next turn" (delay 0) from the loop's own thread:
 * they skip the timerfd, so these pin down what the timerfd gave for free:
 * once per arming, a later turn, re-arming and disarming, freeing. And
 * one-shot timers with a delay, whose timerfd is only set again when it
 * fires too early: still once per arming, and never before their time. */
#include "check.h"
#include "loop.h"

struct fixture {
	struct pp_loop *loop;
	struct pp_timer *a, *b, *guard;
	int fired_a, fired_b, rearm_a;
	bool timed_out;
	uint64_t t0, a_at; /* when the test began, when A first fired */
	uint64_t b_arms_a_ns; /* B arms A with this delay, if not 0 */
	uint64_t first_ns, then_ns; /* A's two armings in check_rearmed() */
};

static void on_guard(void *arg)
{
	struct fixture *f = arg;

	/* A timer that never fires must not hang the test. */
	f->timed_out = true;
	pp_loop_quit(f->loop);
}

static void on_a(void *arg)
{
	struct fixture *f = arg;

	if (!f->fired_a++)
		f->a_at = pp_now_mono_ns();
	if (f->rearm_a && f->fired_a < f->rearm_a)
		pp_loop_timer_arm(f->a, 0, 0);
	if (f->rearm_a && f->fired_a == f->rearm_a)
		pp_loop_quit(f->loop);
}

/* B re-arms... nothing: it counts, and quits once A has had its turn. */
static void on_b(void *arg)
{
	struct fixture *f = arg;

	f->fired_b++;
	if (f->b_arms_a_ns)
		pp_loop_timer_arm(f->a, f->b_arms_a_ns, 0);
	if (f->fired_a)
		pp_loop_quit(f->loop);
}

static void fixture_run(struct fixture *f, pp_post_fn start, uint64_t guard_ns)
{
	CHECK_EQ_INT(pp_loop_new(&f->loop), 0);
	f->a = pp_loop_timer_new(f->loop, f, on_a, f);
	f->b = pp_loop_timer_new(f->loop, f, on_b, f);
	f->guard = pp_loop_timer_new(f->loop, f, on_guard, f);
	pp_loop_timer_arm(f->guard, guard_ns, 0);
	pp_loop_post(f->loop, start, f);
	CHECK_EQ_INT(pp_loop_run(f->loop), 0);
	pp_loop_release_owner(f->loop, f);
	pp_loop_free(f->loop);
}

static void start_a(void *arg)
{
	struct fixture *f = arg;

	pp_loop_timer_arm(f->a, 0, 0);
}

TEST(next_turn_fires_once_per_arming)
{
	struct fixture f = { .rearm_a = 5 };

	fixture_run(&f, start_a, 5000000000ull);
	CHECK(!f.timed_out);
	CHECK_EQ_INT(f.fired_a, 5);
}

/* A re-arms B while B waits on the same turn: B fires once, later. */
static void on_a_rearms_b(void *arg)
{
	struct fixture *f = arg;

	f->fired_a++;
	pp_loop_timer_arm(f->b, 0, 0);
}

/* Both wait a turn, then A runs first (the due list is a stack, and
 * waiting reverses it once). */
static void start_a_then_b(void *arg)
{
	struct fixture *f = arg;

	pp_loop_timer_arm(f->a, 0, 0);
	pp_loop_timer_arm(f->b, 0, 0);
}

TEST(rearmed_while_waiting_fires_once)
{
	struct fixture f = { 0 };

	CHECK_EQ_INT(pp_loop_new(&f.loop), 0);
	f.a = pp_loop_timer_new(f.loop, &f, on_a_rearms_b, &f);
	f.b = pp_loop_timer_new(f.loop, &f, on_b, &f);
	f.guard = pp_loop_timer_new(f.loop, &f, on_guard, &f);
	pp_loop_timer_arm(f.guard, 5000000000ull, 0);
	pp_loop_post(f.loop, start_a_then_b, &f);
	CHECK_EQ_INT(pp_loop_run(f.loop), 0);
	CHECK(!f.timed_out);
	CHECK_EQ_INT(f.fired_a, 1);
	CHECK_EQ_INT(f.fired_b, 1);
	pp_loop_release_owner(f.loop, &f);
	pp_loop_free(f.loop);
}

/* Disarmed, freed, or re-armed with a delay: a next-turn arming is gone. */
static void start_cancelled(void *arg)
{
	struct fixture *f = arg;

	pp_loop_timer_arm(f->a, 0, 0);
	pp_loop_timer_disarm(f->a);
	pp_loop_timer_arm(f->b, 0, 0);
	pp_loop_timer_free(f->b);
	f->b = NULL;
}

TEST(disarmed_or_freed_never_fires)
{
	struct fixture f = { 0 };

	fixture_run(&f, start_cancelled, 50000000ull);
	CHECK(f.timed_out);
	CHECK_EQ_INT(f.fired_a, 0);
	CHECK_EQ_INT(f.fired_b, 0);
}

static void start_rearmed(void *arg)
{
	struct fixture *f = arg;

	f->t0 = pp_now_mono_ns();
	pp_loop_timer_arm(f->a, f->first_ns, 0);
	pp_loop_timer_arm(f->a, f->then_ns, 0);
}

/* A armed for first_ns, then at once for then_ns: it fires once, and not
 * before then_ns. */
static void check_rearmed(uint64_t first_ns, uint64_t then_ns)
{
	struct fixture f = { .first_ns = first_ns, .then_ns = then_ns };

	fixture_run(&f, start_rearmed, 100000000ull);
	CHECK(f.timed_out);
	CHECK_EQ_INT(f.fired_a, 1);
	CHECK(f.a_at >= f.t0 + then_ns);
}

/* The next-turn arming replaces the 10 ms one, which must not fire too. */
TEST(next_turn_replaces_a_delay)
{
	check_rearmed(10000000ull, 0);
}

TEST(delay_replaces_next_turn)
{
	check_rearmed(0, 10000000ull);
}

/* The timerfd still fires at 5 ms: it must be set again, not fire A. */
TEST(rearmed_later_fires_once_not_before)
{
	check_rearmed(5000000ull, 30000000ull);
}

TEST(rearmed_earlier_fires_once)
{
	check_rearmed(60000000ull, 10000000ull);
}

TEST(armed_before_the_loop_runs)
{
	struct fixture f = { .rearm_a = 1 };

	CHECK_EQ_INT(pp_loop_new(&f.loop), 0);
	f.a = pp_loop_timer_new(f.loop, &f, on_a, &f);
	f.guard = pp_loop_timer_new(f.loop, &f, on_guard, &f);
	pp_loop_timer_arm(f.guard, 5000000000ull, 0);
	pp_loop_timer_arm(f.a, 0, 0);
	CHECK_EQ_INT(pp_loop_run(f.loop), 0);
	CHECK(!f.timed_out);
	CHECK_EQ_INT(f.fired_a, 1);
	pp_loop_release_owner(f.loop, &f);
	pp_loop_free(f.loop);
}

static void start_disarmed_then_armed(void *arg)
{
	struct fixture *f = arg;

	f->t0 = pp_now_mono_ns();
	f->b_arms_a_ns = 10000000ull;
	pp_loop_timer_arm(f->a, 5000000ull, 0);
	pp_loop_timer_disarm(f->a);
	pp_loop_timer_arm(f->b, 20000000ull, 0);
}

/* A disarmed at 0 ms, its timerfd firing unheeded at 5, armed again by B
 * at 20 ms for 10 more: it fires once, at 30 ms or later. */
TEST(armed_again_after_an_unheeded_firing)
{
	struct fixture f = { 0 };

	fixture_run(&f, start_disarmed_then_armed, 200000000ull);
	CHECK(f.timed_out);
	CHECK_EQ_INT(f.fired_b, 1);
	CHECK_EQ_INT(f.fired_a, 1);
	CHECK(f.a_at >= f.t0 + 30000000ull);
}

/* A message its sender keeps (the wake of a paused source): it runs in
 * the order posted among heap messages, may be posted again from its own
 * fn, and is never freed by the loop, not even when still pending as the
 * loop is freed (ASan would see that free). */
struct kept {
	struct pp_loop *loop;
	struct pp_post msg;
	int runs;
	char order[8];
	size_t n;
};

static void on_kept(void *arg)
{
	struct kept *k = arg;

	if (k->n < sizeof(k->order) - 1)
		k->order[k->n++] = 'k';
	if (++k->runs < 3)
		pp_loop_post_kept(k->loop, &k->msg);
	else
		pp_loop_quit(k->loop);
}

static void on_heap(void *arg)
{
	struct kept *k = arg;

	if (k->n < sizeof(k->order) - 1)
		k->order[k->n++] = 'h';
}

static void on_kept_guard(void *arg)
{
	pp_loop_quit(((struct kept *)arg)->loop);
}

TEST(kept_message_in_order_again_never_freed)
{
	struct kept k = { .msg = { .fn = on_kept, .arg = &k, .kept = true } };
	struct pp_timer *guard;

	CHECK_EQ_INT(pp_loop_new(&k.loop), 0);
	guard = pp_loop_timer_new(k.loop, &k, on_kept_guard, &k);
	pp_loop_timer_arm(guard, 5000000000ull, 0);
	pp_loop_post(k.loop, on_heap, &k);
	pp_loop_post_kept(k.loop, &k.msg);
	pp_loop_post(k.loop, on_heap, &k);
	CHECK_EQ_INT(pp_loop_run(k.loop), 0);
	CHECK_EQ_STR(k.order, "hkhkk");
	CHECK_EQ_INT(k.runs, 3);
	pp_loop_post_kept(k.loop, &k.msg);
	pp_loop_release_owner(k.loop, &k);
	pp_loop_free(k.loop);
	CHECK_EQ_INT(k.runs, 4);
}

CHECK_MAIN("loop", TEST_ENTRY(next_turn_fires_once_per_arming),
	   TEST_ENTRY(rearmed_while_waiting_fires_once), TEST_ENTRY(disarmed_or_freed_never_fires),
	   TEST_ENTRY(next_turn_replaces_a_delay), TEST_ENTRY(delay_replaces_next_turn),
	   TEST_ENTRY(armed_before_the_loop_runs), TEST_ENTRY(rearmed_later_fires_once_not_before),
	   TEST_ENTRY(rearmed_earlier_fires_once), TEST_ENTRY(armed_again_after_an_unheeded_firing),
	   TEST_ENTRY(kept_message_in_order_again_never_freed))
