/* pcap-in's file maps (plugins/pcap-in/filemap.c): the bytes, the holds,
 * and the SIGBUS guard: a file truncated under its map costs zeros, not
 * the process, and a fault outside every map still reaches the handler
 * that was there before. */
#include "../../plugins/pcap-in/filemap.c"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "check.h"

static long page_size;
static sigjmp_buf outside_jump;
static volatile sig_atomic_t outside_faults;

/* The test's own SIGBUS handler, installed before the first map: the
 * guard must hand it the faults that are not in a map. */
static void outside_handler(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)si;
	(void)ctx;
	outside_faults++;
	siglongjmp(outside_jump, 1);
}

/* A temporary file of pages pages, page i filled with byte 'a' + i. */
static int temp_file(int pages)
{
	char path[] = "/tmp/pktpipe-filemap-XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	unlink(path);
	for (int i = 0; i < pages; i++) {
		char buf[65536];

		memset(buf, 'a' + i, (size_t)page_size);
		if (write(fd, buf, (size_t)page_size) != page_size) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

/* Whether [addr, addr + len) is mapped at all. */
static bool mapped(const void *addr, size_t len)
{
	unsigned char vec[16];

	return mincore((void *)((uintptr_t)addr & ~(uintptr_t)(page_size - 1)), len, vec) == 0;
}

TEST(maps_the_file_bytes)
{
	int fd = temp_file(3);
	struct filemap *m = NULL;

	CHECK(fd >= 0);
	CHECK_EQ_INT(filemap_open(&m, fd, (size_t)page_size * 3), 0);
	close(fd);
	if (!m)
		return;
	CHECK_EQ_INT(filemap_bytes(m)[0], 'a');
	CHECK_EQ_INT(filemap_bytes(m)[page_size * 2 + 7], 'c');
	CHECK(!filemap_damaged(m));
	filemap_release(m);
}

TEST(the_last_hold_unmaps)
{
	int fd = temp_file(2);
	struct filemap *m = NULL;
	const uint8_t *bytes;

	CHECK_EQ_INT(filemap_open(&m, fd, (size_t)page_size * 2), 0);
	close(fd);
	if (!m)
		return;
	bytes = filemap_bytes(m);
	filemap_ref(m);
	filemap_ref(m);
	filemap_release(m);
	filemap_release(m);
	CHECK(mapped(bytes, (size_t)page_size * 2));
	CHECK_EQ_INT(bytes[page_size], 'b');
	filemap_release(m);
	CHECK(!mapped(bytes, (size_t)page_size * 2));
}

/* The file loses its last two pages while mapped: reading them gives
 * zeros, the map says it is damaged, the pages before are intact. */
TEST(a_truncated_file_reads_as_zeros)
{
	int fd = temp_file(3);
	struct filemap *m = NULL;
	const volatile uint8_t *bytes;

	CHECK_EQ_INT(filemap_open(&m, fd, (size_t)page_size * 3), 0);
	if (!m) {
		close(fd);
		return;
	}
	bytes = filemap_bytes(m);
	CHECK_EQ_INT(ftruncate(fd, page_size), 0);
	close(fd);
	CHECK_EQ_INT(bytes[page_size * 2 + 1], 0);
	CHECK_EQ_INT(bytes[page_size + 5], 0);
	CHECK_EQ_INT(bytes[3], 'a');
	CHECK(filemap_damaged(m));
	filemap_release(m);
}

/* A mapping that is not a filemap faults as before: the handler installed
 * before the guard gets it. */
TEST(faults_elsewhere_reach_the_previous_handler)
{
	int fd = temp_file(2);
	struct filemap *m = NULL;
	volatile uint8_t *other;

	CHECK_EQ_INT(filemap_open(&m, fd, (size_t)page_size), 0);
	other = mmap(NULL, (size_t)page_size * 2, PROT_READ, MAP_SHARED, fd, 0);
	CHECK(other != MAP_FAILED);
	CHECK_EQ_INT(ftruncate(fd, 0), 0);
	close(fd);
	if (other == MAP_FAILED || !m)
		return;
	outside_faults = 0;
	if (!sigsetjmp(outside_jump, 1))
		(void)other[page_size + 1];
	CHECK_EQ_INT(outside_faults, 1);
	CHECK(!filemap_damaged(m));
	munmap((void *)other, (size_t)page_size * 2);
	filemap_release(m);
}

/* Resident kB of the mapping that starts at addr (/proc/self/smaps). */
static long rss_kb(const void *addr)
{
	char line[256], want[32];
	FILE *f = fopen("/proc/self/smaps", "re");
	bool in = false;
	long kb = -1;

	snprintf(want, sizeof(want), "%lx-", (unsigned long)(uintptr_t)addr);
	while (f && fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strchr(line, ' ') > strchr(line, '-'))
			in = strncmp(line, want, strlen(want)) == 0;
		if (in && sscanf(line, "Rss: %ld kB", &kb) == 1)
			break;
	}
	if (f)
		fclose(f);
	return kb;
}

/* Reading a 32 MiB file front to back keeps a window resident: filled
 * ahead of the reader, dropped behind it, the bytes intact either way. */
TEST(the_resident_part_follows_the_reader)
{
	size_t len = 32u << 20, pos;
	char path[] = "/tmp/pktpipe-filemap-XXXXXX";
	int fd = mkstemp(path);
	struct filemap *m = NULL;
	long before, after;

	CHECK(fd >= 0);
	unlink(path);
	CHECK_EQ_INT(ftruncate(fd, (off_t)len), 0);
	CHECK_EQ_INT(pwrite(fd, "x", 1, (off_t)len - 1), 1);
	CHECK_EQ_INT(filemap_open(&m, fd, len), 0);
	close(fd);
	if (!m)
		return;
	for (pos = 0; pos < len; pos += 256u << 10) {
		filemap_advance(m, pos);
		CHECK_EQ_INT(filemap_bytes(m)[pos], 0);
	}
	after = rss_kb(filemap_bytes(m));
	CHECK(after >= 0 && after <= (long)((FILEMAP_AHEAD + 2 * FILEMAP_BEHIND) >> 10));
	CHECK_EQ_INT(filemap_bytes(m)[len - 1], 'x');
	before = rss_kb(filemap_bytes(m));
	/* A dropped page is read again from the file. */
	CHECK_EQ_INT(filemap_bytes(m)[0], 0);
	CHECK(rss_kb(filemap_bytes(m)) > before);
	filemap_release(m);
}

/* The guard watches a bounded number of maps; past it, a map is refused
 * (the reader reads instead) and a released one frees its place. */
TEST(the_guard_watches_a_bounded_number)
{
	struct filemap *maps[FILEMAP_SLOTS + 1] = { 0 };
	int fd = temp_file(1), opened = 0;

	for (int i = 0; i < FILEMAP_SLOTS; i++)
		opened += filemap_open(&maps[i], fd, (size_t)page_size) == 0;
	CHECK_EQ_INT(opened, FILEMAP_SLOTS);
	CHECK_EQ_INT(filemap_open(&maps[FILEMAP_SLOTS], fd, (size_t)page_size), -ENOSPC);
	filemap_release(maps[0]);
	CHECK_EQ_INT(filemap_open(&maps[0], fd, (size_t)page_size), 0);
	for (int i = 0; i < FILEMAP_SLOTS; i++)
		if (maps[i])
			filemap_release(maps[i]);
	close(fd);
}

int main(void)
{
	static const struct check_test tests[] = {
		TEST_ENTRY(maps_the_file_bytes),
		TEST_ENTRY(the_last_hold_unmaps),
		TEST_ENTRY(a_truncated_file_reads_as_zeros),
		TEST_ENTRY(faults_elsewhere_reach_the_previous_handler),
		TEST_ENTRY(the_guard_watches_a_bounded_number),
		TEST_ENTRY(the_resident_part_follows_the_reader),
	};
	struct sigaction sa = { .sa_sigaction = outside_handler, .sa_flags = SA_SIGINFO };

	page_size = sysconf(_SC_PAGESIZE);
	/* Before the first map, so that the guard finds it and chains to it. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	return check_main("filemap", tests, sizeof(tests) / sizeof(tests[0]));
}
