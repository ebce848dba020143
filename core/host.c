/* The services table every node receives: thin adapters from the public
 * ABI onto the loop, the pool, the counters and the loader. */
#include "graph.h"
#include "log.h"
#include "loop.h"
#include "packet.h"
#include "stats.h"
#include "worker.h"

#include <pktpipe/wire.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void host_log(struct pp_node *n, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pp_vlog(level, n ? n->name : NULL, fmt, ap);
	va_end(ap);
}

static void host_log_limited(struct pp_node *n, struct pp_log_limit *lim, int level,
			     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pp_vlog_limited(lim, level, n ? n->name : NULL, fmt, ap);
	va_end(ap);
}

static const char *host_node_name(const struct pp_node *n)
{
	return n->name;
}

static void host_delivered(struct pp_node *n, uint64_t packets, uint64_t bytes)
{
	pp_counter_add(&n->stats.packets_out, packets);
	pp_counter_add(&n->stats.bytes_out, bytes);
}

static struct pp_stats *host_stats(struct pp_node *n)
{
	return &n->stats;
}

static bool valid_counter_name(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
		      *s == '-' || *s == '.'))
			return false;
	return true;
}

pp_counter *pp_node_counter(struct pp_node *n, const char *name, enum pp_counter_kind kind,
			    bool is_drop)
{
	struct node_counter *c, **tail;

	if (!valid_counter_name(name)) {
		pp_log(PP_LOG_ERROR, n->name, "bad counter name '%s' (use [a-z0-9_.-])",
		       name ? name : "(null)");
		return NULL;
	}
	for (tail = &n->counters; *tail; tail = &(*tail)->next)
		if ((*tail)->is_drop == is_drop && strcmp((*tail)->name, name) == 0)
			return &(*tail)->value;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->name = strdup(name))) {
		free(c);
		return NULL;
	}
	c->kind = kind;
	c->is_drop = is_drop;
	*tail = c;
	return &c->value;
}

pp_counter *pp_node_host_counter(struct pp_node *n, const char *name, bool is_drop)
{
	pp_counter *c = pp_node_counter(n, name, PP_COUNTER_TOTAL, is_drop);

	if (c)
		((struct node_counter *)((char *)c - offsetof(struct node_counter, value)))->hide_zero =
			true;
	return c;
}

static pp_counter *host_drop_reason(struct pp_node *n, const char *reason)
{
	return pp_node_counter(n, reason, PP_COUNTER_TOTAL, true);
}

static pp_counter *host_counter(struct pp_node *n, const char *name, enum pp_counter_kind kind)
{
	return pp_node_counter(n, name, kind, false);
}

static void host_stats_foreach(struct pp_node *n, pp_stat_fn fn, void *arg)
{
	pp_stats_foreach(n->graph, fn, arg);
}

static struct pp_watch *host_watch_fd(struct pp_node *n, int fd, unsigned flags,
				      pp_watch_fn fn, void *arg)
{
	struct pp_watch *w = pp_loop_watch(n->loop, n, fd, flags, fn, arg);

	if (!w)
		pp_log(PP_LOG_ERROR, n->name, "cannot watch fd %d", fd);
	return w;
}

static struct pp_timer *host_timer_new(struct pp_node *n, pp_timer_fn fn, void *arg)
{
	struct pp_timer *t = pp_loop_timer_new(n->loop, n, fn, arg);

	if (!t)
		pp_log(PP_LOG_ERROR, n->name, "cannot create a timer");
	return t;
}

static struct pp_packet *host_packet_alloc(struct pp_node *n, uint32_t capacity)
{
	struct pp_packet *p = pp_packet_alloc(capacity);

	if (!p)
		pp_log(PP_LOG_ERROR, n->name, "cannot allocate a packet of %u bytes", capacity);
	return p;
}

static struct pp_packet *host_packet_wrap(struct pp_node *n, const uint8_t *data, uint32_t len,
					  void (*release)(void *arg), void *arg)
{
	struct pp_packet *p = pp_packet_wrap(data, len, release, arg);

	if (!p)
		pp_log(PP_LOG_ERROR, n->name, "cannot allocate a packet");
	return p;
}

static struct pp_packet *host_packet_keep(struct pp_node *n, struct pp_packet *p)
{
	struct pp_packet *q = pp_packet_keep(p);

	if (!q)
		pp_log(PP_LOG_ERROR, n->name, "cannot allocate a packet of %u bytes", p->caplen);
	return q;
}

static const struct pp_codec *codec_in(const struct pp_plugin *p, const char *name, int id)
{
	if (!p->codecs)
		return NULL;
	for (const struct pp_codec *const *c = p->codecs; *c; c++)
		if (name ? strcmp((*c)->name, name) == 0 : (*c)->wire_id == id)
			return *c;
	return NULL;
}

static const struct pp_codec *codec_search(const char *name, int id)
{
	for (const struct pp_loaded *l = pp_loader_first(); l; l = l->next) {
		const struct pp_codec *c = codec_in(l->plugin, name, id);

		if (c)
			return c;
	}
	return NULL;
}

/* Nodes on worker threads may look codecs up at run time, and a lookup
 * may load a plugin: one at a time. */
static pthread_mutex_t codec_lock = PTHREAD_MUTEX_INITIALIZER;

/* A codec's plugin need not run as a node: load it by the codec's name. */
static const struct pp_codec *codec_find_locked(struct pp_node *n, const char *name)
{
	const struct pp_codec *c = codec_search(name, -1);
	const struct pp_loaded *l;
	char err[1024];

	if (c)
		return c;
	if (pp_loader_load(name, &l, err, sizeof(err)) < 0) {
		pp_log(PP_LOG_ERROR, n->name, "codec '%s': %s", name, err);
		return NULL;
	}
	c = codec_in(l->plugin, name, -1);
	if (!c)
		pp_log(PP_LOG_ERROR, n->name, "plugin '%s' offers no codec '%s'", name, name);
	return c;
}

static const struct pp_codec *host_codec_find(struct pp_node *n, const char *name)
{
	const struct pp_codec *c;

	pthread_mutex_lock(&codec_lock);
	c = codec_find_locked(n, name);
	pthread_mutex_unlock(&codec_lock);
	return c;
}

static const struct pp_codec *host_codec_by_id(struct pp_node *n, uint8_t id)
{
	const struct pp_codec *c;

	pthread_mutex_lock(&codec_lock);
	c = codec_search(NULL, id);
	if (!c && pp_codec_name(id))
		c = codec_find_locked(n, pp_codec_name(id));
	pthread_mutex_unlock(&codec_lock);
	return c;
}

const struct pp_host pp_host_table = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_host),
	.log = host_log,
	.log_limited = host_log_limited,
	.node_name = host_node_name,
	.emit = pp_node_emit,
	.delivered = host_delivered,
	.stats = host_stats,
	.drop_reason = host_drop_reason,
	.counter = host_counter,
	.stats_foreach = host_stats_foreach,
	.finished = pp_node_finished,
	.watch_fd = host_watch_fd,
	.watch_modify = pp_loop_watch_modify,
	.unwatch = pp_loop_unwatch,
	.timer_new = host_timer_new,
	.timer_arm = pp_loop_timer_arm,
	.timer_disarm = pp_loop_timer_disarm,
	.timer_free = pp_loop_timer_free,
	.now_mono_ns = pp_now_mono_ns,
	.now_real_ns = pp_now_real_ns,
	.packet_alloc = host_packet_alloc,
	.packet_ref = pp_packet_ref,
	.packet_unref = pp_packet_unref,
	.codec_find = host_codec_find,
	.codec_by_id = host_codec_by_id,
	.packet_wrap = host_packet_wrap,
	.packet_keep = host_packet_keep,
	.downstream_wait = pp_downstream_wait,
	.set_busy = pp_node_set_busy,
};
