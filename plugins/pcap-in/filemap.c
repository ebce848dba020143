/* filemap.h says what a map promises; this file keeps it, SIGBUS included. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "filemap.h"

/* Maps open at once (several pcap-in nodes, plays not yet released). */
#define FILEMAP_SLOTS 64
/* Page tables filled this far ahead of the reader, in steps of half. */
#define FILEMAP_AHEAD (4u << 20)
/* Pages this far behind the reader are dropped, in steps of as much. */
#define FILEMAP_BEHIND (8u << 20)

/* A map's range as the guard sees it: start 0 is a free slot. A slot is
 * claimed with start 1 (a range no address is in, end being 0), then gets
 * its end, then its start; it is emptied end first, so that it is never
 * claimed again before it is wholly empty, and a handler never finds an
 * address inside a range that is not a map's. */
struct filemap_slot {
	_Atomic uintptr_t start, end;
	atomic_bool damaged;
};

struct filemap {
	const uint8_t *bytes;
	size_t len;
	atomic_uint refs;
	struct filemap_slot *slot;
	size_t filled, dropped; /* page tables filled up to, dropped up to */
};

static struct filemap_slot filemap_slots[FILEMAP_SLOTS];
static pthread_once_t filemap_guard_once = PTHREAD_ONCE_INIT;
static struct sigaction filemap_guard_prev;
static bool filemap_guard_on;
static uintptr_t filemap_page = 4096;

/* ------------------------------------------------------------------ */
/* The SIGBUS guard                                                     */

/* Zeros in place of the page that vanished: the faulting read is retried
 * when the handler returns, and now succeeds. mmap is a plain system call,
 * safe in a handler. */
static bool filemap_patch(uintptr_t addr)
{
	void *page = (void *)(addr & ~(filemap_page - 1));

	return mmap(page, filemap_page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
		    0) != MAP_FAILED;
}

/* Not ours: whoever handled SIGBUS before, or the default action, which
 * the faulting instruction meets again once this returns. */
static void filemap_chain(int sig, siginfo_t *si, void *ctx)
{
	const struct sigaction *prev = &filemap_guard_prev;

	if ((prev->sa_flags & SA_SIGINFO) && prev->sa_sigaction) {
		prev->sa_sigaction(sig, si, ctx);
		return;
	}
	if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
		prev->sa_handler(sig);
		return;
	}
	signal(SIGBUS, SIG_DFL);
}

static void filemap_on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	uintptr_t addr = (uintptr_t)si->si_addr;
	int saved = errno;

	for (size_t i = 0; si->si_code == BUS_ADRERR && i < FILEMAP_SLOTS; i++) {
		struct filemap_slot *s = &filemap_slots[i];
		uintptr_t start = atomic_load(&s->start);

		if (start && addr >= start && addr < atomic_load(&s->end) &&
		    filemap_patch(addr)) {
			atomic_store(&s->damaged, true);
			errno = saved;
			return;
		}
	}
	filemap_chain(sig, si, ctx);
	errno = saved;
}

static void filemap_guard_install(void)
{
	struct sigaction sa = { .sa_sigaction = filemap_on_sigbus,
				.sa_flags = SA_SIGINFO | SA_ONSTACK };
	long page = sysconf(_SC_PAGESIZE);

	if (page > 0)
		filemap_page = (uintptr_t)page;
	sigemptyset(&sa.sa_mask);
	filemap_guard_on = sigaction(SIGBUS, &sa, &filemap_guard_prev) == 0;
}

/* The plugin is unloaded: its handler must not outlive its code. */
__attribute__((destructor)) static void filemap_guard_remove(void)
{
	if (filemap_guard_on)
		sigaction(SIGBUS, &filemap_guard_prev, NULL);
	filemap_guard_on = false;
}

static struct filemap_slot *filemap_watch(uintptr_t start, size_t len)
{
	for (size_t i = 0; i < FILEMAP_SLOTS; i++) {
		struct filemap_slot *s = &filemap_slots[i];
		uintptr_t none = 0;

		if (!atomic_compare_exchange_strong(&s->start, &none, (uintptr_t)1))
			continue;
		atomic_store(&s->damaged, false);
		atomic_store(&s->end, start + len);
		atomic_store(&s->start, start);
		return s;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Maps                                                                 */

int filemap_open(struct filemap **out, int fd, size_t len)
{
	struct filemap *m;
	void *bytes;
	int rc = -ENOMEM;

	pthread_once(&filemap_guard_once, filemap_guard_install);
	if (!filemap_guard_on)
		return -ENOTSUP;
	m = calloc(1, sizeof(*m));
	if (!m)
		goto err;
	bytes = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (bytes == MAP_FAILED) {
		rc = -errno;
		goto err_free;
	}
	/* Read once, front to back: read ahead, drop behind. */
	madvise(bytes, len, MADV_SEQUENTIAL);
	m->slot = filemap_watch((uintptr_t)bytes, len);
	if (!m->slot) {
		rc = -ENOSPC;
		goto err_unmap;
	}
	m->bytes = bytes;
	m->len = len;
	atomic_init(&m->refs, 1);
	*out = m;
	return 0;
err_unmap:
	munmap(bytes, len);
err_free:
	free(m);
err:
	return rc;
}

const uint8_t *filemap_bytes(const struct filemap *m)
{
	return m->bytes;
}

/* Best effort: without MADV_POPULATE_READ (before Linux 5.14) pages are
 * faulted in one by one, as the reader reaches them. A reader that went
 * past what was filled (a turn of large records) has read those pages
 * already: filling starts at the reader. */
static void filemap_fill(struct filemap *m, size_t pos)
{
	size_t end = pos + FILEMAP_AHEAD < m->len ? pos + FILEMAP_AHEAD : m->len;
	size_t from = (m->filled > pos ? m->filled : pos) & ~(size_t)(filemap_page - 1);

	if (m->filled >= m->len || m->filled >= pos + FILEMAP_AHEAD / 2)
		return;
#ifdef MADV_POPULATE_READ
	if (end > from)
		madvise((void *)(m->bytes + from), end - from, MADV_POPULATE_READ);
#endif
	m->filled = end;
}

static void filemap_drop(struct filemap *m, size_t pos)
{
	size_t upto;

	if (pos < m->dropped + 2 * FILEMAP_BEHIND)
		return;
	upto = (pos - FILEMAP_BEHIND) & ~(size_t)(filemap_page - 1);
	madvise((void *)(m->bytes + m->dropped), upto - m->dropped, MADV_DONTNEED);
	m->dropped = upto;
}

void filemap_advance(struct filemap *m, size_t pos)
{
	filemap_fill(m, pos);
	filemap_drop(m, pos);
}

void filemap_ref(struct filemap *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void filemap_release(void *arg)
{
	struct filemap *m = arg;

	if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
		return;
	/* Out of the guard's sight before the range can be mapped again. */
	atomic_store(&m->slot->end, 0);
	atomic_store(&m->slot->start, 0);
	munmap((void *)m->bytes, m->len);
	free(m);
}

bool filemap_damaged(const struct filemap *m)
{
	return atomic_load(&m->slot->damaged);
}
