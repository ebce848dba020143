#include "stats.h"
#include "graph.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *pp_stats_json_path;

static uint64_t dropped_total(const struct pp_node *n)
{
	uint64_t sum = 0;

	for (const struct node_counter *c = n->counters; c; c = c->next)
		if (c->is_drop)
			sum += pp_counter_get(&c->value);
	return sum;
}

/* Names are [A-Za-z0-9_.-] (checked where they are made); escaping anyway
 * keeps the output JSON whatever a plugin passes. */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static bool shown(const struct node_counter *c)
{
	return !c->hide_zero || pp_counter_get(&c->value);
}

static void json_counters(FILE *f, const struct pp_node *n, bool drops)
{
	bool first = true;

	for (const struct node_counter *c = n->counters; c; c = c->next) {
		if (c->is_drop != drops || !shown(c))
			continue;
		fputs(first ? "" : ", ", f);
		json_string(f, c->name);
		fprintf(f, ": %llu", (unsigned long long)pp_counter_get(&c->value));
		first = false;
	}
}

static void json_node(FILE *f, const struct pp_node *n)
{
	const struct pp_stats *s = &n->stats;

	json_string(f, n->name);
	fputs(": {\"plugin\": ", f);
	json_string(f, n->plugin->name);
	fprintf(f,
		", \"packets_in\": %llu, \"packets_out\": %llu, \"packets_held\": %llu"
		", \"bytes_in\": %llu, \"bytes_out\": %llu, \"dropped\": {",
		(unsigned long long)pp_counter_get(&s->packets_in),
		(unsigned long long)pp_counter_get(&s->packets_out),
		(unsigned long long)pp_node_held(n),
		(unsigned long long)pp_counter_get(&s->bytes_in),
		(unsigned long long)pp_counter_get(&s->bytes_out));
	json_counters(f, n, true);
	fputs("}", f);
	for (const struct node_counter *c = n->counters; c; c = c->next) {
		if (c->is_drop || !shown(c))
			continue;
		fputs(", ", f);
		json_string(f, c->name);
		fprintf(f, ": %llu", (unsigned long long)pp_counter_get(&c->value));
	}
	fputs("}", f);
}

int pp_stats_write_json(const struct pp_graph *g, const char *path)
{
	char tmp[4096];
	FILE *f;
	int rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	f = fopen(tmp, "w");
	if (!f)
		goto fail;
	fputs("{\"nodes\": {", f);
	for (size_t i = 0; i < g->count; i++) {
		fputs(i ? ",\n  " : "\n  ", f);
		json_node(f, g->nodes[i]);
	}
	fputs("\n}}\n", f);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		goto fail;
	return 0;
fail:
	rc = -errno;
	pp_log(PP_LOG_ERROR, NULL, "cannot write stats to %s: %s", path, strerror(errno));
	unlink(tmp);
	return rc;
}

static void summary_line(const struct pp_node *n)
{
	const struct pp_stats *s = &n->stats;
	char drops[512] = "";
	size_t len = 0;

	for (const struct node_counter *c = n->counters; c && len < sizeof(drops) - 1; c = c->next)
		if (c->is_drop && pp_counter_get(&c->value))
			len += (size_t)snprintf(drops + len, sizeof(drops) - len, " %s=%llu", c->name,
						(unsigned long long)pp_counter_get(&c->value));
	pp_log(PP_LOG_INFO, n->name,
	       "summary (%s): in %llu out %llu held %llu dropped %llu%s%s%s", n->plugin->name,
	       (unsigned long long)pp_counter_get(&s->packets_in),
	       (unsigned long long)pp_counter_get(&s->packets_out),
	       (unsigned long long)pp_node_held(n),
	       (unsigned long long)dropped_total(n), len ? " (" : "", drops + (len ? 1 : 0),
	       len ? ")" : "");
}

void pp_stats_final(const struct pp_graph *g)
{
	if (pp_stats_json_path)
		pp_stats_write_json(g, pp_stats_json_path);
	for (size_t i = 0; i < g->count; i++)
		summary_line(g->nodes[i]);
}

bool pp_stats_balanced(const struct pp_graph *g)
{
	bool ok = true;

	for (size_t i = 0; i < g->count; i++) {
		const struct pp_node *n = g->nodes[i];
		uint64_t in = pp_counter_get(&n->stats.packets_in);
		uint64_t out = pp_counter_get(&n->stats.packets_out);
		uint64_t held = pp_node_held(n);
		uint64_t dropped = dropped_total(n);

		if (in != out + dropped + held) {
			pp_log(PP_LOG_ERROR, n->name,
			       "accounting does not balance: in %llu != out %llu + dropped %llu + held %llu",
			       (unsigned long long)in, (unsigned long long)out,
			       (unsigned long long)dropped, (unsigned long long)held);
			ok = false;
		}
	}
	return ok;
}

static void foreach_node(const struct pp_node *n, pp_stat_fn fn, void *arg)
{
	static const struct {
		const char *name;
		size_t offset;
		enum pp_counter_kind kind;
	} std[] = {
		{ "packets_in", offsetof(struct pp_stats, packets_in), PP_COUNTER_TOTAL },
		{ "packets_out", offsetof(struct pp_stats, packets_out), PP_COUNTER_TOTAL },
		{ "bytes_in", offsetof(struct pp_stats, bytes_in), PP_COUNTER_TOTAL },
		{ "bytes_out", offsetof(struct pp_stats, bytes_out), PP_COUNTER_TOTAL },
	};
	char name[256];

	for (size_t i = 0; i < sizeof(std) / sizeof(std[0]); i++)
		fn(arg, n->name, n->plugin->name, std[i].name, std[i].kind,
		   pp_counter_get((const pp_counter *)((const char *)&n->stats + std[i].offset)));
	fn(arg, n->name, n->plugin->name, "packets_held", PP_COUNTER_GAUGE, pp_node_held(n));
	for (const struct node_counter *c = n->counters; c; c = c->next) {
		if (!shown(c))
			continue;
		snprintf(name, sizeof(name), "%s%s", c->is_drop ? "dropped." : "", c->name);
		fn(arg, n->name, n->plugin->name, name, c->kind, pp_counter_get(&c->value));
	}
}

void pp_stats_foreach(const struct pp_graph *g, pp_stat_fn fn, void *arg)
{
	for (size_t i = 0; i < g->count; i++)
		foreach_node(g->nodes[i], fn, arg);
}
