/* ballast: keep a tmpfs's pages in the guest while a file grows there.
 *
 *   ballast FILE MIB WATCH [HEAD_MIB]
 *
 * Writes FILE to MIB MiB, prints "ready" on stdout, then shrinks FILE as
 * WATCH grows (polled every 2 ms), so that FILE and WATCH together stay
 * at MIB MiB less HEAD_MIB (default 256) free ahead of WATCH's writer.
 * Removes FILE and exits 0 on SIGTERM or SIGINT, or once FILE is empty,
 * printing "cpu S": its CPU seconds since "ready" (what giving the pages
 * up cost, on the machine the capture shares).
 *
 * Why: a VM guest that reports freed pages to its host (free page
 * reporting) gets them back one fault at a time, at about 400 MB/s here
 * against 5 GB/s for pages it kept (RESULTS.md, "Where 3a's packets go").
 * A capture whose file grows into such memory measures the host, not the
 * capture. Pages just freed are taken again before they are reported, so
 * the pages FILE gives up, a little ahead of WATCH's writer, are the ones
 * WATCH's next pages come from. Exit status 1 when FILE cannot be made.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024L * 1024L)

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* FILE at SIZE bytes of written (not sparse) pages, or -errno. */
static int fill(int fd, off_t size)
{
	static char block[MIB];
	off_t done = 0;

	memset(block, 0xa5, sizeof(block));
	while (done < size) {
		ssize_t n = write(fd, block, sizeof(block));

		if (n < 0 && errno == EINTR && !stopping)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENOSPC;
		done += n;
	}
	return 0;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static off_t size_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : 0;
}

/* Shrink FILE as WATCH grows until told to stop or FILE is empty. */
static void follow(int fd, off_t total, off_t head, const char *watch)
{
	const struct timespec tick = { 0, 2 * 1000 * 1000 };
	off_t have = total;

	while (!stopping && have > 0) {
		off_t want = total - head - size_of(watch);

		if (want < 0)
			want = 0;
		if (want < have && ftruncate(fd, want) == 0)
			have = want;
		nanosleep(&tick, NULL);
	}
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	off_t total, head;
	double cpu0;
	int fd, rc;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: ballast FILE MIB WATCH [HEAD_MIB]\n");
		return 2;
	}
	total = atol(argv[2]) * MIB;
	head = (argc == 5 ? atol(argv[4]) : 256) * MIB;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "ballast: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	rc = fill(fd, total);
	if (rc < 0 && !stopping) {
		fprintf(stderr, "ballast: %s: %s\n", argv[1], strerror(-rc));
		unlink(argv[1]);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	cpu0 = cpu_seconds();
	follow(fd, total, head, argv[3]);
	unlink(argv[1]);
	close(fd);
	printf("cpu %.3f\n", cpu_seconds() - cpu0);
	return 0;
}
