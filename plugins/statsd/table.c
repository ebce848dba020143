#include "table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SD_SLOTS_MIN 64

/* FNV-1a over node, a separator no name contains, then counter: node "a.b"
 * with counter "c" and node "a" with counter "b.c" stay two entries. */
static uint32_t sd_hash(const char *node, const char *counter)
{
	uint32_t h = 2166136261u;

	for (const char *p = node; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ 0xffu) * 16777619u;
	for (const char *p = counter; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return h;
}

static void sd_slot_put(uint32_t *slots, size_t nslots, uint32_t hash, uint32_t index1)
{
	size_t i = hash & (nslots - 1);

	while (slots[i])
		i = (i + 1) & (nslots - 1);
	slots[i] = index1;
}

/* Keeps the slots at most half full, so probes stay short. */
static int sd_table_grow(struct sd_table *t)
{
	size_t nslots = t->nslots ? t->nslots * 2 : SD_SLOTS_MIN;
	size_t cap = nslots / 2;
	struct sd_entry *v;
	uint32_t *slots;

	if (t->count + 1 <= t->cap)
		return 0;
	slots = calloc(nslots, sizeof(*slots));
	v = realloc(t->v, cap * sizeof(*v));
	if (!slots || !v) {
		free(slots);
		if (v)
			t->v = v;
		return -1;
	}
	t->v = v;
	t->cap = cap;
	for (size_t i = 0; i < t->count; i++)
		sd_slot_put(slots, nslots, sd_hash(v[i].node, v[i].counter), (uint32_t)i + 1);
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
	return 0;
}

static char *sd_join(const char *prefix, const char *node, const char *counter)
{
	size_t len = strlen(prefix) + strlen(node) + strlen(counter) + 3;
	char *name = malloc(len);

	if (name)
		snprintf(name, len, "%s%s%s%s%s", prefix, *prefix ? "." : "", node, *node ? "." : "",
			 counter);
	return name;
}

static struct sd_entry *sd_table_add(struct sd_table *t, uint32_t hash, const char *prefix,
				     const char *node, const char *counter,
				     enum pp_counter_kind kind)
{
	struct sd_entry e = { .kind = kind };

	if (sd_table_grow(t) < 0)
		return NULL;
	e.node = strdup(node);
	e.counter = strdup(counter);
	e.name = sd_join(prefix, node, counter);
	if (!e.node || !e.counter || !e.name) {
		free(e.node);
		free(e.counter);
		free(e.name);
		return NULL;
	}
	e.name_len = strlen(e.name);
	t->v[t->count] = e;
	sd_slot_put(t->slots, t->nslots, hash, (uint32_t)++t->count);
	return &t->v[t->count - 1];
}

struct sd_entry *sd_table_get(struct sd_table *t, const char *prefix, const char *node,
			      const char *counter, enum pp_counter_kind kind)
{
	uint32_t hash = sd_hash(node, counter);

	for (size_t i = t->nslots ? hash & (t->nslots - 1) : 0; t->nslots && t->slots[i];
	     i = (i + 1) & (t->nslots - 1)) {
		struct sd_entry *e = &t->v[t->slots[i] - 1];

		if (strcmp(e->node, node) == 0 && strcmp(e->counter, counter) == 0)
			return e;
	}
	return sd_table_add(t, hash, prefix, node, counter, kind);
}

void sd_table_free(struct sd_table *t)
{
	for (size_t i = 0; i < t->count; i++) {
		free(t->v[i].node);
		free(t->v[i].counter);
		free(t->v[i].name);
	}
	free(t->v);
	free(t->slots);
	*t = (struct sd_table){ 0 };
}
