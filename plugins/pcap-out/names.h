/* The names of the files an output writes: its path expanded by strftime(3)
 * at each file's start, numbered (NAME.0, NAME.1, ...) when files rotate by
 * size, and the newest `keep` of them kept: older ones this run wrote are
 * deleted. Files it did not write are never deleted.
 */
#ifndef PKTPIPE_PCAP_OUT_NAMES_H
#define PKTPIPE_PCAP_OUT_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct names {
	const char *pattern;
	bool numbered; /* rotation by size: a number follows the name */
	uint64_t interval_ns; /* rotation by time: names at multiples of it */
	uint32_t keep; /* files kept; 0 = all */
	char *base; /* the last expansion of pattern */
	uint64_t seq; /* the number of the last numbered file */
	char **made; /* the files opened, oldest first */
	size_t count;
};

/* The next file's name, for a file opened at now_ns (real time): the
 * pattern expanded at the start of now's interval; numbered, with the next
 * number when bump is set and the expansion did not change (else 0).
 * *end_ns is when its interval ends (UINT64_MAX without one). NULL and
 * errno set when it cannot be made. The caller frees it. */
char *names_next(struct names *n, uint64_t now_ns, bool bump, uint64_t *end_ns);

/* A file of that name was opened: remember it (once, if it is the newest
 * already). 0 or -ENOMEM. */
int names_opened(struct names *n, const char *name);

/* One file beyond the newest `keep`, for the caller to delete and free;
 * NULL when there is none. */
char *names_expired(struct names *n);

void names_free(struct names *n);

#endif
