/* File names for rotation; names.h says what each function promises. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "names.h"

static char *expand(const char *pattern, uint64_t ns)
{
	char buf[PATH_MAX];
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;

	if (!localtime_r(&t, &tm))
		return NULL;
	/* strftime returns 0 both for no room and for an empty result; the
	 * pattern is never empty, so 0 is no room. */
	if (!strftime(buf, sizeof(buf), pattern, &tm)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	return strdup(buf);
}

char *names_next(struct names *n, uint64_t now_ns, bool bump, uint64_t *end_ns)
{
	uint64_t start = now_ns;
	char *base, *name;

	*end_ns = UINT64_MAX;
	if (n->interval_ns) {
		start = now_ns - now_ns % n->interval_ns;
		*end_ns = start + n->interval_ns;
	}
	base = expand(n->pattern, start);
	if (!base)
		return NULL;
	if (n->base && strcmp(base, n->base) == 0)
		n->seq += bump;
	else
		n->seq = 0;
	free(n->base);
	n->base = base;
	if (!n->numbered)
		return strdup(base);
	if (asprintf(&name, "%s.%llu", base, (unsigned long long)n->seq) < 0)
		return NULL;
	return name;
}

int names_opened(struct names *n, const char *name)
{
	char **made;

	if (n->count && strcmp(n->made[n->count - 1], name) == 0)
		return 0;
	made = realloc(n->made, (n->count + 1) * sizeof(*made));
	if (!made)
		return -ENOMEM;
	n->made = made;
	made[n->count] = strdup(name);
	if (!made[n->count])
		return -ENOMEM;
	n->count++;
	return 0;
}

char *names_expired(struct names *n)
{
	char *old;

	if (!n->keep || n->count <= n->keep)
		return NULL;
	old = n->made[0];
	memmove(n->made, n->made + 1, (n->count - 1) * sizeof(*n->made));
	n->count--;
	return old;
}

void names_free(struct names *n)
{
	for (size_t i = 0; i < n->count; i++)
		free(n->made[i]);
	free(n->made);
	free(n->base);
	n->made = NULL;
	n->base = NULL;
	n->count = 0;
}
