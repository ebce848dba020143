/* runtime: run a command and measure it, for the benchmark.
 *
 *   runtime [-w FILE SIZE [-f HEAD]] [-t SECONDS] -- COMMAND [ARG...]
 *
 * Prints one line when COMMAND has exited:
 *   wall S cpu S maxrss KB [until S] [first S first_size B]
 * wall: seconds from the fork to its exit; cpu: its user + system time
 * (children included); maxrss: its peak resident set. With -w, also
 * until: seconds from the fork until FILE first had SIZE bytes or more
 * (polled every 200 us), "until -1" if that never happened within -t
 * SECONDS (default 120) or 5 s after COMMAND exited. With -f, also
 * first: seconds from the fork until FILE first had more than HEAD bytes
 * (a file header), and first_size: its size then; so that what moved
 * between first and until is a rate of the steady state, without the
 * start of the command (-1 and 0 if never). Exit status: the command's,
 * 125 when it could not run, 124 when -w timed out.
 */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double tv(struct timeval t)
{
	return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

static int usage(void)
{
	fprintf(stderr, "usage: runtime [-w FILE SIZE] [-t SECONDS] -- COMMAND [ARG...]\n");
	return 125;
}

/* The size of path, or -1. */
static long long file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

struct watch {
	const char *file; /* -w FILE SIZE */
	long long size;
	long long head; /* -f; -1: not asked */
	double limit; /* -t */
	double wall, until, first; /* the results; -1: never */
	long long first_size;
	int status;
};

/* Notes when w->file first grows past its header, and when it is full:
 * elapsed seconds from the fork. */
static void watch_file(struct watch *w, double elapsed)
{
	long long size = file_size(w->file);

	if (w->head >= 0 && w->first < 0 && size > w->head) {
		w->first = elapsed;
		w->first_size = size;
	}
	if (size >= w->size)
		w->until = elapsed;
}

/* Wait for pid to exit, and for the file to grow, within the limits. */
static void watch_child(struct watch *w, pid_t pid, double start)
{
	double exited = 0;
	bool done = false;

	for (;;) {
		double t = now();

		if (!done && waitpid(pid, &w->status, WNOHANG) == pid) {
			done = true;
			exited = t;
			w->wall = t - start;
		}
		if (w->file && w->until < 0)
			watch_file(w, t - start);
		if (done && (!w->file || w->until >= 0 || t - exited > 5 || t - start > w->limit))
			return;
		if (!done && w->file && w->until < 0 && t - start > w->limit)
			kill(pid, SIGKILL);
		usleep(w->file && w->until < 0 ? 200 : 1000);
	}
}

int main(int argc, char **argv)
{
	struct watch w = { .limit = 120, .until = -1, .head = -1, .first = -1 };
	struct rusage ru;
	double start;
	int i = 1;
	pid_t pid;

	for (; i < argc && strcmp(argv[i], "--"); i++) {
		if (!strcmp(argv[i], "-w") && i + 2 < argc) {
			w.file = argv[++i];
			w.size = atoll(argv[++i]);
		} else if (!strcmp(argv[i], "-f") && i + 1 < argc) {
			w.head = atoll(argv[++i]);
		} else if (!strcmp(argv[i], "-t") && i + 1 < argc) {
			w.limit = atof(argv[++i]);
		} else {
			return usage();
		}
	}
	if (i + 1 >= argc)
		return usage();
	start = now();
	pid = fork();
	if (pid < 0)
		return 125;
	if (pid == 0) {
		execvp(argv[i + 1], argv + i + 1);
		perror(argv[i + 1]);
		_exit(125);
	}
	watch_child(&w, pid, start);
	getrusage(RUSAGE_CHILDREN, &ru);
	printf("wall %.6f cpu %.6f maxrss %ld", w.wall, tv(ru.ru_utime) + tv(ru.ru_stime),
	       ru.ru_maxrss);
	if (w.file)
		printf(" until %.6f", w.until);
	if (w.file && w.head >= 0)
		printf(" first %.6f first_size %lld", w.first, w.first_size);
	printf("\n");
	if (w.file && w.until < 0)
		return 124;
	return WIFEXITED(w.status) ? WEXITSTATUS(w.status) : 128 + WTERMSIG(w.status);
}
