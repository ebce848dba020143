/* One event loop per thread: epoll, a timerfd per timer, signalfd on the
 * main loop. Callbacks may add and remove watches and timers, their own
 * included: removed ones are freed only after the current turn, so an event
 * already fetched for them is ignored, never dispatched to freed memory. */
#ifndef PKTPIPE_CORE_LOOP_H
#define PKTPIPE_CORE_LOOP_H

#include <pktpipe/plugin.h>

struct pp_loop;

int pp_loop_new(struct pp_loop **out);
/* Every watch and timer must have been removed first. */
void pp_loop_free(struct pp_loop *loop);

/* Run until pp_loop_quit(); 0, or -errno if epoll itself failed. */
int pp_loop_run(struct pp_loop *loop);
void pp_loop_quit(struct pp_loop *loop);

/* Deliver these signals (blocked in the caller's thread, and so in threads
 * it starts later) to fn on this loop. */
typedef void (*pp_signal_fn)(void *arg, int signo);
int pp_loop_signals(struct pp_loop *loop, const int *signals, int n, pp_signal_fn fn, void *arg);

/* owner tags the watch or timer for pp_loop_release_owner(); a watch keeps
 * a duplicate of fd, so the caller may close fd whenever it likes. */
struct pp_watch *pp_loop_watch(struct pp_loop *loop, const void *owner, int fd, unsigned flags,
			       pp_watch_fn fn, void *arg);
int pp_loop_watch_modify(struct pp_watch *w, unsigned flags);
void pp_loop_unwatch(struct pp_watch *w);

struct pp_timer *pp_loop_timer_new(struct pp_loop *loop, const void *owner, pp_timer_fn fn,
				   void *arg);
int pp_loop_timer_arm(struct pp_timer *t, uint64_t delay_ns, uint64_t interval_ns);
void pp_loop_timer_disarm(struct pp_timer *t);
void pp_loop_timer_free(struct pp_timer *t);

/* Remove every watch and timer of owner still there (a node after close). */
void pp_loop_release_owner(struct pp_loop *loop, const void *owner);

/* Run fn(arg) on loop's thread, soon, in the order posted. Any thread may
 * post; the eventfd wakes the loop. -ENOMEM if the message cannot be made. */
typedef void (*pp_post_fn)(void *arg);
int pp_loop_post(struct pp_loop *loop, pp_post_fn fn, void *arg);

/* A message its sender keeps (kept = true, fn and arg set), so that posting
 * it cannot fail. Posted again only once its fn has begun to run: until
 * then it is linked in the mailbox, which is the sender's to know. */
struct pp_post {
	pp_post_fn fn;
	void *arg;
	struct pp_post *next;
	bool kept;
};
void pp_loop_post_kept(struct pp_loop *loop, struct pp_post *p);

/* The loop running on the calling thread (NULL outside any). */
struct pp_loop *pp_loop_current(void);

uint64_t pp_now_mono_ns(void);
uint64_t pp_now_real_ns(void);

#endif
