#include "loop.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* Watches, timers and the signal fd share one shape in epoll's data. */
/* Every source owns its fd (a watch holds a dup of the plugin's): burying
 * one closes it, so the loop can release any source at any time without
 * touching an fd number its owner may have closed and reused. */
struct source {
	void (*dispatch)(struct source *s, uint32_t events);
	struct pp_loop *loop;
	const void *owner; /* released together by pp_loop_release_owner() */
	struct source *prev, *next; /* the loop's live sources */
	struct source *next_dead;
	int fd;
	bool dead;
};

struct pp_watch {
	struct source src;
	pp_watch_fn fn;
	void *arg;
	int plugin_fd; /* what the callback is told */
};

struct pp_timer {
	struct source src;
	pp_timer_fn fn;
	void *arg;
	/* "Next turn" arming skips the timerfd (three syscalls and an
	 * interrupt a turn): the timer waits on the loop's due list. */
	bool due; /* fires on turn due_turn or later */
	bool queued; /* on a due list */
	bool periodic; /* the timerfd fires every interval: each firing is due */
	uint64_t due_turn;
	struct pp_timer *next_due;
	/* A one-shot arming is kept lazily: at is when the timer is due (0:
	 * it is not armed), fd_at when its timerfd fires (0: it does not).
	 * Arming it for later than the timerfd fires, or disarming it, makes
	 * no system call: the timerfd fires, finds it not due yet (or not
	 * armed), and is set again (or left). A batch timer armed and
	 * disarmed with every message so costs a system call or two a delay,
	 * not two a message. */
	uint64_t at, fd_at;
};

struct signal_source {
	struct source src;
	pp_signal_fn fn;
	void *arg;
};

/* Messages from other threads: a FIFO under a mutex, an eventfd to wake. */
struct mailbox {
	struct source src;
	pthread_mutex_t lock;
	struct pp_post *head, **tail;
};

struct pp_loop {
	int epfd;
	bool quit;
	struct source *dead; /* freed after the current turn */
	struct source *live;
	struct signal_source *signals;
	struct mailbox *mailbox;
	struct pp_timer *due; /* timers armed for the next turn */
	uint64_t turn;
};

static _Thread_local struct pp_loop *current_loop;

struct pp_loop *pp_loop_current(void)
{
	return current_loop;
}

#define EVENTS_PER_TURN 64

uint64_t pp_now_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t pp_now_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int mailbox_new(struct pp_loop *loop);
static void mailbox_dispatch(struct source *s, uint32_t events);

int pp_loop_new(struct pp_loop **out)
{
	struct pp_loop *loop = calloc(1, sizeof(*loop));
	int rc;

	if (!loop)
		return -ENOMEM;
	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0) {
		rc = -errno;
		goto fail_alloc;
	}
	rc = mailbox_new(loop);
	if (rc < 0)
		goto fail_epoll;
	*out = loop;
	return 0;
fail_epoll:
	close(loop->epfd);
fail_alloc:
	free(loop);
	return rc;
}

static void timer_dispatch(struct source *s, uint32_t events);
static void due_unlink(struct pp_loop *loop, struct pp_timer *t);

static void bury(struct source *s)
{
	if (s->dead)
		return;
	/* Freed after this turn: it must not stay on the due list. */
	if (s->dispatch == timer_dispatch)
		due_unlink(s->loop, (struct pp_timer *)s);
	s->dead = true;
	epoll_ctl(s->loop->epfd, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	if (s->prev)
		s->prev->next = s->next;
	else
		s->loop->live = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->next_dead = s->loop->dead;
	s->loop->dead = s;
}

void pp_loop_release_owner(struct pp_loop *loop, const void *owner)
{
	struct source *s = loop->live, *next;

	for (; s; s = next) {
		next = s->next;
		if (s->owner == owner)
			bury(s);
	}
}

static void free_dead(struct pp_loop *loop)
{
	while (loop->dead) {
		struct source *s = loop->dead;

		loop->dead = s->next_dead;
		free(s);
	}
}

void pp_loop_free(struct pp_loop *loop)
{
	if (!loop)
		return;
	if (loop->signals)
		bury(&loop->signals->src);
	/* Posts still queued run now, so that what they carry is released
	 * and accounted for (a late batch finds its node closed). */
	mailbox_dispatch(&loop->mailbox->src, 0);
	pthread_mutex_destroy(&loop->mailbox->lock);
	while (loop->live)
		bury(loop->live);
	free_dead(loop);
	close(loop->epfd);
	free(loop);
}

static int add_source(struct pp_loop *loop, struct source *s, int fd, uint32_t events,
		      void (*dispatch)(struct source *, uint32_t))
{
	struct epoll_event ev = { .events = events, .data.ptr = s };

	s->dispatch = dispatch;
	s->loop = loop;
	s->fd = fd;
	if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	s->prev = NULL;
	s->next = loop->live;
	if (loop->live)
		loop->live->prev = s;
	loop->live = s;
	return 0;
}

static void due_push(struct pp_loop *loop, struct pp_timer *t)
{
	t->next_due = loop->due;
	loop->due = t;
	t->queued = true;
}

static void due_unlink(struct pp_loop *loop, struct pp_timer *t)
{
	struct pp_timer **pp = &loop->due;

	t->due = false;
	if (!t->queued)
		return;
	while (*pp && *pp != t)
		pp = &(*pp)->next_due;
	/* Not found: it is on the list run_due() is walking, which skips
	 * it once it is dead or disarmed. */
	if (*pp) {
		*pp = t->next_due;
		t->queued = false;
	}
}

/* Timers armed for the next turn, once the turn's events ran. One armed
 * again while waiting here waits for the turn after, as a timerfd
 * re-armed before it was read would. */
static void run_due(struct pp_loop *loop)
{
	struct pp_timer *list = loop->due;

	loop->due = NULL;
	while (list) {
		struct pp_timer *t = list;

		list = t->next_due;
		t->queued = false;
		if (t->src.dead || !t->due)
			continue;
		if (t->due_turn > loop->turn) {
			due_push(loop, t);
			continue;
		}
		t->due = false;
		t->fn(t->arg);
	}
}

int pp_loop_run(struct pp_loop *loop)
{
	struct epoll_event evs[EVENTS_PER_TURN];

	loop->quit = false;
	current_loop = loop;
	while (!loop->quit) {
		int n = epoll_wait(loop->epfd, evs, EVENTS_PER_TURN, loop->due ? 0 : -1);

		if (n < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < n; i++) {
			struct source *s = evs[i].data.ptr;

			if (!s->dead)
				s->dispatch(s, evs[i].events);
		}
		run_due(loop);
		loop->turn++;
		free_dead(loop);
	}
	current_loop = NULL;
	return 0;
}

void pp_loop_quit(struct pp_loop *loop)
{
	loop->quit = true;
}

/* ---- signals ---- */

static void signal_dispatch(struct source *s, uint32_t events)
{
	struct signal_source *ss = (struct signal_source *)s;
	struct signalfd_siginfo si;

	(void)events;
	while (read(s->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		ss->fn(ss->arg, (int)si.ssi_signo);
}

int pp_loop_signals(struct pp_loop *loop, const int *signals, int n, pp_signal_fn fn, void *arg)
{
	struct signal_source *ss;
	sigset_t set;
	int fd, rc;

	sigemptyset(&set);
	for (int i = 0; i < n; i++)
		sigaddset(&set, signals[i]);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -EINVAL;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	ss = calloc(1, sizeof(*ss));
	if (!ss) {
		rc = -ENOMEM;
		goto fail_fd;
	}
	ss->fn = fn;
	ss->arg = arg;
	rc = add_source(loop, &ss->src, fd, EPOLLIN, signal_dispatch);
	if (rc < 0)
		goto fail_alloc;
	loop->signals = ss;
	return 0;
fail_alloc:
	free(ss);
fail_fd:
	close(fd);
	return rc;
}

/* ---- fd watches ---- */

static uint32_t epoll_events(unsigned flags)
{
	uint32_t ev = 0;

	if (flags & PP_WATCH_READ)
		ev |= EPOLLIN;
	if (flags & PP_WATCH_WRITE)
		ev |= EPOLLOUT;
	if (flags & PP_WATCH_EDGE)
		ev |= EPOLLET;
	return ev;
}

static void watch_dispatch(struct source *s, uint32_t events)
{
	struct pp_watch *w = (struct pp_watch *)s;
	unsigned ready = 0;

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		ready |= PP_WATCH_READ;
	if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		ready |= PP_WATCH_WRITE;
	w->fn(w->arg, w->plugin_fd, ready);
}

struct pp_watch *pp_loop_watch(struct pp_loop *loop, const void *owner, int fd, unsigned flags,
			       pp_watch_fn fn, void *arg)
{
	struct pp_watch *w = calloc(1, sizeof(*w));
	int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	if (!w || own < 0)
		goto fail;
	w->fn = fn;
	w->arg = arg;
	w->plugin_fd = fd;
	w->src.owner = owner;
	if (add_source(loop, &w->src, own, epoll_events(flags), watch_dispatch) < 0)
		goto fail;
	return w;
fail:
	if (own >= 0)
		close(own);
	free(w);
	return NULL;
}

int pp_loop_watch_modify(struct pp_watch *w, unsigned flags)
{
	struct epoll_event ev = { .events = epoll_events(flags), .data.ptr = &w->src };

	if (epoll_ctl(w->src.loop->epfd, EPOLL_CTL_MOD, w->src.fd, &ev) < 0)
		return -errno;
	return 0;
}

void pp_loop_unwatch(struct pp_watch *w)
{
	if (w)
		bury(&w->src);
}

/* ---- timers ---- */

static int timer_fd_set(struct pp_timer *t, uint64_t at);

static void timer_dispatch(struct source *s, uint32_t events)
{
	struct pp_timer *t = (struct pp_timer *)s;
	uint64_t expirations;

	(void)events;
	/* A timerfd set again since it fired reads nothing: not due. */
	if (read(s->fd, &expirations, sizeof(expirations)) != (ssize_t)sizeof(expirations))
		return;
	if (t->periodic) {
		t->fn(t->arg);
		return;
	}
	t->fd_at = 0;
	if (!t->at)
		return;
	/* Armed for later since the timerfd was set: set it for then. Should
	 * that fail, firing early beats never firing. */
	if (t->at > pp_now_mono_ns() && timer_fd_set(t, t->at) == 0)
		return;
	t->at = 0;
	t->fn(t->arg);
}

struct pp_timer *pp_loop_timer_new(struct pp_loop *loop, const void *owner, pp_timer_fn fn,
				   void *arg)
{
	struct pp_timer *t = calloc(1, sizeof(*t));
	int fd;

	if (!t)
		return NULL;
	fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (fd < 0)
		goto fail;
	t->fn = fn;
	t->arg = arg;
	t->src.owner = owner;
	if (add_source(loop, &t->src, fd, EPOLLIN, timer_dispatch) < 0) {
		close(fd);
		goto fail;
	}
	return t;
fail:
	free(t);
	return NULL;
}

static struct timespec to_timespec(uint64_t ns)
{
	return (struct timespec){ .tv_sec = (time_t)(ns / 1000000000u),
				  .tv_nsec = (long)(ns % 1000000000u) };
}

/* The timerfd fires once, at the monotonic time at. */
static int timer_fd_set(struct pp_timer *t, uint64_t at)
{
	struct itimerspec its = { .it_value = to_timespec(at) };

	if (timerfd_settime(t->src.fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		return -errno;
	t->fd_at = at;
	return 0;
}

/* Only a periodic timerfd must be stopped: a one-shot one that fires
 * finds its timer not armed. */
static void timer_stop_periodic(struct pp_timer *t)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };

	if (t->periodic)
		timerfd_settime(t->src.fd, 0, &its, NULL);
	t->periodic = false;
}

static int timer_arm_periodic(struct pp_timer *t, uint64_t delay_ns, uint64_t interval_ns)
{
	/* it_value 0 would disarm: "next turn" is the shortest real delay. */
	struct itimerspec its = { .it_value = to_timespec(delay_ns ? delay_ns : 1),
				  .it_interval = to_timespec(interval_ns) };

	if (timerfd_settime(t->src.fd, 0, &its, NULL) < 0)
		return -errno;
	t->periodic = true;
	t->fd_at = 0;
	return 0;
}

int pp_loop_timer_arm(struct pp_timer *t, uint64_t delay_ns, uint64_t interval_ns)
{
	struct pp_loop *loop = t->src.loop;
	uint64_t at;

	t->due = false;
	t->at = 0;
	if (interval_ns)
		return timer_arm_periodic(t, delay_ns, interval_ns);
	timer_stop_periodic(t);
	/* Only the loop's own thread may touch its due list, and only it is
	 * sure to wake for it. */
	if (!delay_ns && loop == current_loop) {
		t->due = true;
		t->due_turn = loop->turn + 1;
		if (!t->queued)
			due_push(loop, t);
		return 0;
	}
	at = pp_now_mono_ns() + (delay_ns ? delay_ns : 1);
	t->at = at;
	if (t->fd_at && t->fd_at <= at)
		return 0;
	return timer_fd_set(t, at);
}

void pp_loop_timer_disarm(struct pp_timer *t)
{
	t->due = false;
	t->at = 0;
	timer_stop_periodic(t);
}

void pp_loop_timer_free(struct pp_timer *t)
{
	if (t)
		bury(&t->src);
}

/* ---- mailbox ---- */

static void mailbox_dispatch(struct source *s, uint32_t events)
{
	struct mailbox *m = (struct mailbox *)s;
	struct pp_post *list;
	uint64_t n;

	(void)events;
	if (read(s->fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	pthread_mutex_lock(&m->lock);
	list = m->head;
	m->head = NULL;
	m->tail = &m->head;
	pthread_mutex_unlock(&m->lock);
	while (list) {
		struct pp_post *p = list;
		bool kept = p->kept;

		/* A kept message may be posted again once fn runs: p is not
		 * ours from then on. */
		list = p->next;
		p->fn(p->arg);
		if (!kept)
			free(p);
	}
}

static int mailbox_new(struct pp_loop *loop)
{
	struct mailbox *m = calloc(1, sizeof(*m));
	int fd, rc;

	if (!m)
		return -ENOMEM;
	fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto fail_alloc;
	}
	pthread_mutex_init(&m->lock, NULL);
	m->tail = &m->head;
	rc = add_source(loop, &m->src, fd, EPOLLIN, mailbox_dispatch);
	if (rc < 0)
		goto fail_fd;
	loop->mailbox = m;
	return 0;
fail_fd:
	pthread_mutex_destroy(&m->lock);
	close(fd);
fail_alloc:
	free(m);
	return rc;
}

void pp_loop_post_kept(struct pp_loop *loop, struct pp_post *p)
{
	struct mailbox *m = loop->mailbox;
	uint64_t one = 1;

	p->next = NULL;
	pthread_mutex_lock(&m->lock);
	*m->tail = p;
	m->tail = &p->next;
	pthread_mutex_unlock(&m->lock);
	/* The counter cannot overflow in practice; a failed wake-up would
	 * only mean EAGAIN on a counter already non-zero, i.e. awake. */
	if (write(m->src.fd, &one, sizeof(one)) < 0)
		return;
}

int pp_loop_post(struct pp_loop *loop, pp_post_fn fn, void *arg)
{
	struct pp_post *p = malloc(sizeof(*p));

	if (!p)
		return -ENOMEM;
	*p = (struct pp_post){ .fn = fn, .arg = arg };
	pp_loop_post_kept(loop, p);
	return 0;
}
