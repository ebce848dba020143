/* Native frames inside the graph: see framer.h for the invariants. */
#include "framer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <pktpipe/wire.h>

/* ------------------------------------------------------------------ */
/* Packets into compressed frames                                       */

int framer_validate(const struct framer_config *cfg, char *err, size_t errlen)
{
	if (cfg->codec && strcmp(cfg->codec, "zlib") == 0 && cfg->level > 9) {
		snprintf(err, errlen, "level: zlib's levels are 0 to 9 (or -1), not %lld",
			 (long long)cfg->level);
		return -EINVAL;
	}
	return 0;
}

uint64_t frame_sender_id(const struct pp_host *host)
{
	uint64_t id;

	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id))
		id = host->now_real_ns() ^ ((uint64_t)getpid() << 32);
	return id;
}

/* The delay ran out: the frame leaves now, not with the next batch. */
static void framer_due(void *arg)
{
	struct framer *f = arg;

	framer_flush(f);
	outq_emit(f->out);
}

int framer_open(struct framer *f, struct outq *out, const struct framer_config *cfg,
		const struct framer_counters *c)
{
	const struct pp_host *host = out->host;

	f->out = out;
	f->stats = host->stats(out->node);
	f->cfg = cfg;
	f->c = c;
	f->codec = host->codec_find(out->node, cfg->codec);
	if (!f->codec)
		return -ENOENT;
	f->ctx = f->codec->ctx_new((int)cfg->level);
	f->pending = calloc((size_t)cfg->batch_packets, sizeof(*f->pending));
	f->timer = host->timer_new(out->node, framer_due, f);
	if (!f->ctx || !f->pending || !f->timer)
		return -ENOMEM;
	f->head = (struct wire_header){ .sender = frame_sender_id(host) };
	return 0;
}

static bool framer_scratch(struct framer *f, size_t len)
{
	uint8_t *p;

	if (len <= f->scratch_len)
		return true;
	p = realloc(f->scratch, len);
	if (!p)
		return false;
	f->scratch = p;
	f->scratch_len = len;
	return true;
}

/* The pending packets as one frame packet, or NULL (their drop counted). */
static struct pp_packet *framer_frame(struct framer *f)
{
	const struct pp_host *host = f->out->host;
	uint32_t n = f->npending;
	size_t len = wire_native_compress_bound(f->codec, f->pending_len);
	struct pp_packet *p = NULL;
	uint64_t bytes = 0;

	if (len <= UINT32_MAX && framer_scratch(f, f->pending_len))
		p = host->packet_alloc(f->out->node, (uint32_t)len);
	if (!p) {
		outq_drop(f->out, f->c->drop_nomem, &f->nomem_limit, n, "no memory for a frame");
		return NULL;
	}
	if (wire_native_compress(p->data, &len, &f->head, f->pending, n, f->scratch,
				 f->scratch_len, f->codec, f->ctx) < 0) {
		host->packet_unref(p);
		outq_drop(f->out, f->c->drop_codec, &f->codec_limit, n, "the codec failed");
		return NULL;
	}
	for (uint32_t i = 0; i < n; i++)
		bytes += f->pending[i]->caplen;
	p->caplen = p->origlen = (uint32_t)len;
	p->ts_ns = f->pending[0]->ts_ns;
	p->linktype = PP_LINKTYPE_FRAME;
	p->count = n;
	p->codec = f->codec->wire_id;
	f->head.seq += n;
	pp_counter_add(f->c->frames, 1);
	pp_counter_add(f->c->bytes_before, bytes);
	pp_counter_add(f->c->bytes_after, len);
	return p;
}

void framer_flush(struct framer *f)
{
	struct pp_packet *p;

	if (!f->npending)
		return;
	f->out->host->timer_disarm(f->timer);
	p = framer_frame(f);
	for (uint32_t i = 0; i < f->npending; i++)
		f->out->host->packet_unref(f->pending[i]);
	f->npending = 0;
	f->pending_len = 0;
	pp_counter_set(&f->stats->packets_held, 0);
	if (p)
		outq_put(f->out, p, true);
}

void framer_add(struct framer *f, struct pp_packet *p)
{
	size_t rec = wire_native_record_len(p);

	if (f->npending && PP_WIRE_HEADER_LEN + f->pending_len + rec > f->cfg->batch_bytes)
		framer_flush(f);
	f->out->host->packet_ref(p);
	f->pending[f->npending++] = p;
	f->pending_len += rec;
	pp_counter_set(&f->stats->packets_held, f->npending);
	if (f->npending == 1 && f->cfg->delay)
		f->out->host->timer_arm(f->timer, f->cfg->delay, 0);
	if (f->npending >= (uint64_t)f->cfg->batch_packets ||
	    PP_WIRE_HEADER_LEN + f->pending_len >= f->cfg->batch_bytes)
		framer_flush(f);
}

void framer_release(struct framer *f)
{
	const struct pp_host *host = f->out ? f->out->host : NULL;

	if (!host)
		return; /* never opened: nothing was made */
	if (f->npending)
		pp_counter_add(f->c->drop_stopped, f->npending);
	for (uint32_t i = 0; i < f->npending; i++)
		host->packet_unref(f->pending[i]);
	f->npending = 0;
	f->pending_len = 0;
	pp_counter_set(&f->stats->packets_held, 0);
	if (f->timer)
		host->timer_free(f->timer);
	if (f->ctx)
		f->codec->ctx_free(f->ctx);
	free(f->pending);
	free(f->scratch);
	*f = (struct framer){ 0 };
}

/* ------------------------------------------------------------------ */
/* Frames back into packets                                             */

void frame_reader_init(struct frame_reader *r, struct pp_node *node, const struct pp_host *host,
		       size_t max)
{
	r->node = node;
	r->host = host;
	r->max = max;
}

const struct pp_codec *frame_reader_codec(struct frame_reader *r, uint8_t id, void **ctx)
{
	if (!r->tried[id]) {
		r->tried[id] = true;
		if (PP_HOST_HAS(r->host, codec_by_id))
			r->codec[id] = r->host->codec_by_id(r->node, id);
		/* The level is the compressor's: decoding takes none. */
		if (r->codec[id])
			r->ctx[id] = r->codec[id]->ctx_new(-1);
		if (!r->ctx[id])
			r->codec[id] = NULL;
	}
	*ctx = r->ctx[id];
	return r->codec[id];
}

uint8_t *frame_reader_scratch(struct frame_reader *r)
{
	if (!r->scratch)
		r->scratch = malloc(r->max);
	return r->scratch;
}

int frame_reader_records(struct frame_reader *r, const struct wire_header *h,
			 const uint8_t **records)
{
	const struct pp_codec *codec = NULL;
	uint8_t *scratch = NULL;
	void *ctx = NULL;
	int rc;

	if (h->codec != PP_CODEC_NONE) {
		codec = frame_reader_codec(r, h->codec, &ctx);
		if (!codec)
			return -ENOPROTOOPT;
		scratch = frame_reader_scratch(r);
		if (!scratch)
			return -ENOMEM;
	}
	rc = wire_native_records(h, codec, ctx, scratch, r->max, records);
	if (rc == 0)
		rc = wire_native_check(*records, h->raw_len, h->count);
	return rc;
}

/* A record's fields but its bytes into a fresh packet. */
static struct pp_packet *record_fields(struct pp_packet *p, const struct wire_record *rec)
{
	p->caplen = rec->caplen;
	p->origlen = rec->origlen;
	p->ts_ns = rec->ts_ns;
	p->linktype = rec->linktype;
	p->count = 1;
	/* A fresh packet has no metadata (flags 0): most records carry none,
	 * and the struct is large. */
	if (rec->meta.flags)
		p->meta = rec->meta;
	return p;
}

struct pp_packet *frame_reader_packet(struct frame_reader *r, const struct wire_record *rec)
{
	struct pp_packet *p = r->host->packet_alloc(r->node, rec->caplen);

	if (!p)
		return NULL;
	memcpy(p->data, rec->data, rec->caplen);
	return record_fields(p, rec);
}

struct pp_packet *frame_reader_wrap(struct frame_reader *r, const struct wire_record *rec,
				    void (*release)(void *arg), void *arg)
{
	struct pp_packet *p = r->host->packet_wrap(r->node, rec->data, rec->caplen, release, arg);

	return p ? record_fields(p, rec) : NULL;
}

void frame_reader_release(struct frame_reader *r)
{
	for (int i = 0; i < 256; i++)
		if (r->codec[i] && r->ctx[i])
			r->codec[i]->ctx_free(r->ctx[i]);
	free(r->scratch);
	memset(r, 0, sizeof(*r));
}
