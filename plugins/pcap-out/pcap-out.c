/* pcap-out: write packets as a pcap or pcapng stream to a file or FIFO, for
 * an IDS or tcpdump to read.
 *
 * This file encodes: it picks the linktypes, decides which packets fit,
 * and turns each packet into a record (format.c has the bytes). Getting
 * records to the file or FIFO without blocking the loop (buffer, readers
 * that come and go, rotation, append, reopen) is output.c's work.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pcap/pcap.h>

#include <pktpipe/plugin.h>

#include "format.h"
#include "linktype.h"
#include "output.h"

#define POUT_SNAPLEN_MAX 262144 /* libpcap's largest for most linktypes */
#define POUT_IFACES_MAX 64 /* pcapng interfaces (linktypes) per stream */

enum pout_format { POUT_PCAP, POUT_PCAPNG };
enum pout_precision { POUT_US, POUT_NS };

/* The linktype key: unset means "the first packet's". */
struct pout_linktype {
	bool set;
	uint32_t value;
};

struct pout_config {
	char *path;
	int format; /* enum pout_format */
	struct pout_linktype linktype;
	uint64_t snaplen;
	int precision; /* enum pout_precision */
	bool append;
	uint64_t rotate_size; /* bytes */
	uint64_t rotate_interval; /* ns */
	int64_t rotate_count;
	uint64_t flush; /* ns */
	uint64_t buffer; /* bytes */
	uint64_t pipe_size; /* bytes */
	uint64_t retry; /* ns */
	bool wait;
};

/* A LINKTYPE number (1, 101, 0x71), or a libpcap name with or without its
 * DLT_/LINKTYPE_ prefix (EN10MB, RAW, LINUX_SLL), in any case. */
static int pout_parse_linktype(const char *text, void *dst, char *err, size_t errlen)
{
	struct pout_linktype *lt = dst;
	char *end;
	unsigned long v;
	int dlt;

	*lt = (struct pout_linktype){ 0 };
	if (!*text)
		return 0;
	errno = 0;
	v = strtoul(text, &end, 0);
	if (end != text && !*end && text[0] != '-') {
		if (errno || v > 0xffff) {
			snprintf(err, errlen, "linktype %s is out of range (0 to 65535)", text);
			return -EINVAL;
		}
		*lt = (struct pout_linktype){ .set = true, .value = (uint32_t)v };
		return 0;
	}
	if (!strncasecmp(text, "LINKTYPE_", 9))
		text += 9;
	else if (!strncasecmp(text, "DLT_", 4))
		text += 4;
	dlt = pcap_datalink_name_to_val(text);
	if (dlt < 0) {
		snprintf(err, errlen,
			 "unknown linktype '%s' (a number, or a name such as EN10MB, RAW, "
			 "LINUX_SLL)",
			 text);
		return -EINVAL;
	}
	*lt = (struct pout_linktype){ .set = true, .value = linktype_from_dlt(dlt) };
	return 0;
}

static const char *const pout_formats[] = { "pcap", "pcapng", NULL };
static const char *const pout_precisions[] = { "us", "ns", NULL };

#define POUT_OPT(field) .offset = offsetof(struct pout_config, field)

static const struct pp_option pout_options[] = {
	{ .name = "path", .type = PP_OPT_PATH, .default_value = NULL, POUT_OPT(path),
	  .help = "file or FIFO to write, expanded by strftime (%Y%m%d-%H%M%S) for each file; "
		  "a FIFO's reader may come and go" },
	{ .name = "format", .type = PP_OPT_ENUM, .default_value = "pcap", POUT_OPT(format),
	  .choices = pout_formats,
	  .help = "pcap (classic) or pcapng (an interface per linktype, nflog metadata as "
		  "packet comments)" },
	{ .name = "linktype", .type = PP_OPT_CUSTOM, .default_value = "", POUT_OPT(linktype),
	  .parse = pout_parse_linktype, .value_hint = "number or name (EN10MB, RAW, LINUX_SLL)",
	  .help = "the file's LINKTYPE (pcapng: its first interface's), written at open; "
		  "empty = the first packet's" },
	{ .name = "snaplen", .type = PP_OPT_SIZE, .default_value = "256KiB", .min = 1,
	  .max = POUT_SNAPLEN_MAX, POUT_OPT(snaplen),
	  .help = "longer packets are cut to this many bytes (their length is kept)" },
	{ .name = "precision", .type = PP_OPT_ENUM, .default_value = "us", POUT_OPT(precision),
	  .choices = pout_precisions,
	  .help = "timestamp precision; ns: pcap magic 0xa1b23c4d, pcapng if_tsresol 9" },
	{ .name = "append", .type = PP_OPT_BOOL, .default_value = "no", POUT_OPT(append),
	  .help = "continue an existing file whose header matches (else refuse) instead of "
		  "truncating it" },
	{ .name = "rotate_size", .type = PP_OPT_SIZE, .default_value = "0", .min = 0,
	  .max = 1ll << 50, POUT_OPT(rotate_size),
	  .help = "files are numbered PATH.0, PATH.1, ...: the next starts before one would "
		  "grow beyond this; 0 = no size rotation" },
	{ .name = "rotate_interval", .type = PP_OPT_DURATION, .default_value = "0", .min = 0,
	  .max = 366ll * 86400 * 1000000000, POUT_OPT(rotate_interval),
	  .help = "a new file at each multiple of this since the epoch (1h: on the hour), "
		  "named by strftime in path; 0 = no time rotation" },
	{ .name = "rotate_count", .type = PP_OPT_INT, .default_value = "0", .min = 0,
	  .max = 1000000, POUT_OPT(rotate_count),
	  .help = "keep the newest this many files written by this run, deleting older ones; "
		  "0 = keep all" },
	{ .name = "flush", .type = PP_OPT_DURATION, .default_value = "100ms", .min = 0,
	  .max = 60000000000, POUT_OPT(flush),
	  .help = "buffered packets reach the file within this delay; 0 = at once" },
	{ .name = "buffer", .type = PP_OPT_SIZE, .default_value = "4MiB", .min = 0,
	  .max = 1ll << 30, POUT_OPT(buffer),
	  .help = "data that may wait in memory while a FIFO's reader lags; "
		  "beyond it packets are dropped (reader-slow); the memory it takes may "
		  "reach twice this" },
	{ .name = "pipe_size", .type = PP_OPT_SIZE, .default_value = "1MiB", .min = 0,
	  .max = 1ll << 30, POUT_OPT(pipe_size),
	  .help = "FIFO: the pipe buffer to ask the kernel for (F_SETPIPE_SZ, best effort); "
		  "0 = its default" },
	{ .name = "retry", .type = PP_OPT_DURATION, .default_value = "250ms", .min = 10000000,
	  .max = 60000000000, POUT_OPT(retry),
	  .help = "FIFO without a reader: how often to look for one (packets are dropped "
		  "meanwhile, no-reader)" },
	{ .name = "wait", .type = PP_OPT_BOOL, .default_value = "no", POUT_OPT(wait),
	  .help = "FIFO: while its reader lags (buffer three quarters full), hold back the "
		  "sources that can wait (pcap-in, zmq-in, nflog) instead of dropping "
		  "(reader-slow); without a reader, packets are still dropped (no-reader)" },
	PP_OPTION_END
};

static int pout_validate(const void *config, char *err, size_t errlen)
{
	const struct pout_config *cfg = config;

	if (cfg->rotate_count && !cfg->rotate_size && !cfg->rotate_interval) {
		snprintf(err, errlen, "rotate_count needs rotate_size or rotate_interval");
		return -EINVAL;
	}
	if (cfg->rotate_interval && cfg->rotate_interval < 1000000000) {
		snprintf(err, errlen, "rotate_interval must be at least 1s (file names have "
				      "seconds at best)");
		return -EINVAL;
	}
	return 0;
}

/* One record's framing: pcap uses head only, pcapng head and tail. */
struct pout_slot {
	uint8_t head[FMT_EPB_HEAD_LEN];
	uint8_t tail[FMT_EPB_TAIL_MAX];
};

struct pout_state {
	struct pp_node *node;
	const struct pp_host *host;
	const struct pout_config *cfg;
	struct fmt_file file;
	struct out *out;
	pp_counter *drop_linktype, *drop_frame;
	struct pp_log_limit linktype_limit, frame_limit;
	bool have_linktype; /* pcap: the file's; pcapng: at least one interface */
	uint32_t linktype;
	uint32_t ifaces[POUT_IFACES_MAX]; /* pcapng: the interfaces' linktypes */
	uint32_t nifaces;
	char comment[FMT_COMMENT_MAX + 1];
	struct pout_slot slots[PP_BATCH_MAX];
	struct out_rec recs[PP_BATCH_MAX];
};

/* ------------------------------------------------------------------ */
/* Opening                                                              */

/* pcap: fix the file's linktype and start the stream with its header. */
static int pout_set_linktype(struct pout_state *s, uint32_t linktype)
{
	uint8_t h[FMT_PCAP_HEADER_LEN];

	s->linktype = linktype;
	s->have_linktype = true;
	return out_add_preamble(s->out, h, fmt_pcap_header(h, &s->file, linktype));
}

/* pcapng: an interface for this linktype; the section header comes first. */
static int pout_add_iface(struct pout_state *s, uint32_t linktype)
{
	uint8_t b[FMT_SHB_LEN + FMT_IDB_LEN];
	size_t len = 0;

	if (s->nifaces == POUT_IFACES_MAX)
		return -ENOSPC;
	if (!s->nifaces)
		len = fmt_shb(b);
	len += fmt_idb(b + len, &s->file, linktype);
	s->ifaces[s->nifaces++] = linktype;
	s->have_linktype = true;
	return out_add_preamble(s->out, b, len);
}

/* append = yes: whether the file can be continued, from format.c's check. */
static int pout_resume(void *arg, int fd, uint64_t size, uint64_t *keep, bool *header,
		       char *err, size_t errlen)
{
	struct pout_state *s = arg;
	struct fmt_want want = { .file = s->file, .have_linktype = s->have_linktype,
				 .linktype = s->linktype };
	uint32_t linktype;
	int rc;

	*header = s->cfg->format == POUT_PCAPNG;
	if (*header)
		return fmt_pcapng_resume(fd, size, keep, err, errlen);
	if (!want.have_linktype && s->cfg->linktype.set)
		want = (struct fmt_want){ .file = s->file, .have_linktype = true,
					  .linktype = s->cfg->linktype.value };
	rc = fmt_pcap_resume(fd, size, &want, &linktype, keep, err, errlen);
	if (rc == 0 && !s->have_linktype)
		rc = pout_set_linktype(s, linktype);
	return rc;
}

static int pout_open_out(struct pout_state *s)
{
	const struct pout_config *cfg = s->cfg;
	struct out_config oc = {
		.path = cfg->path,
		.limit = cfg->buffer,
		.flush_ns = cfg->flush,
		.retry_ns = cfg->retry,
		.pipe_size = cfg->pipe_size,
		.append = cfg->append,
		.wait = cfg->wait,
		.rotate_size = cfg->rotate_size,
		.rotate_ns = cfg->rotate_interval,
		.rotate_count = (uint32_t)cfg->rotate_count,
		.resume = pout_resume,
		.arg = s,
	};

	return out_open(&s->out, s->node, s->host, &oc);
}

static int pout_open(struct pp_node *node, const struct pp_host *host, const void *config,
		     void **state)
{
	const struct pout_config *cfg = config;
	struct pout_state *s;
	int rc = -ENOMEM;

	s = calloc(1, sizeof(*s));
	if (!s)
		goto err;
	s->node = node;
	s->host = host;
	s->cfg = cfg;
	s->file = (struct fmt_file){ .ns = cfg->precision == POUT_NS,
				     .snaplen = (uint32_t)cfg->snaplen };
	s->drop_linktype = host->drop_reason(node, "linktype");
	s->drop_frame = host->drop_reason(node, "frame");
	rc = pout_open_out(s);
	if (rc < 0)
		goto err_free;
	if (cfg->linktype.set && !s->have_linktype) {
		rc = cfg->format == POUT_PCAPNG ? pout_add_iface(s, cfg->linktype.value) :
						  pout_set_linktype(s, cfg->linktype.value);
		if (rc < 0)
			goto err_out;
	}
	*state = s;
	return 0;
err_out:
	out_close(s->out);
err_free:
	free(s);
err:
	return rc;
}

static int pout_start(void *state)
{
	struct pout_state *s = state;

	return out_start(s->out);
}

/* ------------------------------------------------------------------ */
/* Encoding                                                             */

static bool pout_raw_ip(uint32_t linktype)
{
	return linktype == 12 || linktype == 101 || linktype == 228 || linktype == 229;
}

/* pcap: whether a packet of this linktype may go into the file as it is.
 * Raw IP records carry their IP version, so a 12 or 101 file takes the
 * whole raw IP family; a 228 or 229 file takes only its own. */
static bool pout_fits(const struct pout_state *s, uint32_t linktype)
{
	if (linktype == s->linktype)
		return true;
	return (s->linktype == 12 || s->linktype == 101) && pout_raw_ip(linktype);
}

/* pcapng: the interface of this linktype, made if new; -1 if none can be. */
static int64_t pout_iface(struct pout_state *s, uint32_t linktype)
{
	for (uint32_t i = 0; i < s->nifaces; i++)
		if (s->ifaces[i] == linktype)
			return i;
	if (pout_add_iface(s, linktype) < 0)
		return -1;
	return s->nifaces - 1;
}

static bool pout_drop_linktype(struct pout_state *s, const struct pp_packet *p)
{
	pp_counter_add(s->drop_linktype, 1);
	if (s->cfg->format == POUT_PCAPNG)
		s->host->log_limited(s->node, &s->linktype_limit, PP_LOG_WARNING,
				     "packet of linktype %u: no room for another interface; "
				     "dropping",
				     p->linktype);
	else
		s->host->log_limited(s->node, &s->linktype_limit, PP_LOG_WARNING,
				     "packet of linktype %u does not fit the file's linktype %u; "
				     "dropping",
				     p->linktype, s->linktype);
	return false;
}

/* Whether the packet goes into the stream (its pcapng interface in
 * *ifid); counts and logs it if not. */
static bool pout_keep(struct pout_state *s, const struct pp_packet *p, uint32_t *ifid)
{
	int64_t id;

	if (p->linktype == PP_LINKTYPE_FRAME) {
		pp_counter_add(s->drop_frame, p->count);
		s->host->log_limited(s->node, &s->frame_limit, PP_LOG_WARNING,
				     "encoded frames cannot be written as pcap: put a decoder "
				     "before this node; dropping them");
		return false;
	}
	if (s->cfg->format == POUT_PCAPNG) {
		id = pout_iface(s, p->linktype);
		*ifid = (uint32_t)id;
		return id >= 0 || pout_drop_linktype(s, p);
	}
	if (!s->have_linktype)
		pout_set_linktype(s, p->linktype);
	return pout_fits(s, p->linktype) || pout_drop_linktype(s, p);
}

static void pout_encode(struct pout_state *s, const struct pp_packet *p, uint32_t ifid,
			struct pout_slot *slot, struct out_rec *r)
{
	uint32_t caplen = p->caplen < s->file.snaplen ? p->caplen : s->file.snaplen;
	size_t clen, tlen;

	*r = (struct out_rec){ .head = slot->head, .body = p->data, .body_len = caplen };
	if (s->cfg->format == POUT_PCAP) {
		r->head_len = fmt_pcap_record(slot->head, &s->file, p->ts_ns, caplen, p->origlen);
		return;
	}
	clen = fmt_comment(s->comment, sizeof(s->comment), &p->meta);
	tlen = fmt_epb_tail(slot->tail, caplen, s->comment, clen);
	r->head_len = fmt_epb_head(slot->head, &s->file, ifid, p->ts_ns, caplen, p->origlen,
				   tlen);
	r->tail = slot->tail;
	r->tail_len = tlen;
}

/* At most PP_BATCH_MAX packets: one record array, one submission. */
static void pout_write(struct pout_state *s, struct pp_packet **pkts, uint32_t n)
{
	size_t k = 0;
	uint32_t ifid = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (!pout_keep(s, pkts[i], &ifid))
			continue;
		pout_encode(s, pkts[i], ifid, &s->slots[k], &s->recs[k]);
		k++;
	}
	out_submit(s->out, s->recs, k);
}

static int pout_process(void *state, struct pp_batch *batch)
{
	struct pout_state *s = state;

	for (uint32_t i = 0; i < batch->count; i += PP_BATCH_MAX) {
		uint32_t n = batch->count - i < PP_BATCH_MAX ? batch->count - i : PP_BATCH_MAX;
		pout_write(s, batch->pkts + i, n);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Stopping                                                             */

static int pout_stop(void *state)
{
	struct pout_state *s = state;

	return out_stop(s->out);
}

static void pout_reopen(void *state)
{
	struct pout_state *s = state;

	/* out_reopen logs its failures, and tries again every `retry`. */
	out_reopen(s->out);
}

static void pout_close(void *state)
{
	struct pout_state *s = state;

	out_close(s->out);
	free(s);
}

PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "pcap-out",
	.summary = "write packets as a pcap or pcapng stream to a file or FIFO",
	.roles = PP_ROLE_SINK,
	.options = pout_options,
	.config_size = sizeof(struct pout_config),
	.validate = pout_validate,
	.open = pout_open,
	.start = pout_start,
	.process = pout_process,
	.stop = pout_stop,
	.close = pout_close,
	.reopen = pout_reopen,
};
