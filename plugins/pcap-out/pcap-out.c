/* pcap-out: write packets as a classic pcap stream to a file or FIFO, for
 * an IDS or tcpdump to read.
 *
 * This file encodes: it picks the file's linktype, decides which packets
 * fit, and turns each packet into a record [16-byte header][data]. Getting
 * records to the file without blocking the loop (buffer, non-blocking
 * writes, flush timer, reopen) is output.c's work.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pcap/pcap.h>

#include <pktpipe/plugin.h>

#include "output.h"

#define POUT_MAGIC_US 0xa1b2c3d4u
#define POUT_MAGIC_NS 0xa1b23c4du
#define POUT_SNAPLEN_MAX 262144 /* libpcap's largest for most linktypes */

enum pout_precision { POUT_US, POUT_NS };

/* The linktype key: unset means "the first packet's". */
struct pout_linktype {
	bool set;
	uint32_t value;
};

struct pout_config {
	char *path;
	struct pout_linktype linktype;
	uint64_t snaplen;
	int precision; /* enum pout_precision */
	uint64_t flush; /* ns */
	uint64_t buffer; /* bytes */
};

/* DLT values that are not their LINKTYPE number (on Linux; the DLT_ names
 * keep it right elsewhere). Every other DLT equals its LINKTYPE. */
static uint32_t pout_dlt_to_linktype(int dlt)
{
	static const struct {
		int dlt;
		uint32_t linktype;
	} map[] = {
		{ DLT_ATM_RFC1483, 100 }, { DLT_RAW, 101 },	  { DLT_SLIP_BSDOS, 102 },
		{ DLT_PPP_BSDOS, 103 },	  { DLT_ATM_CLIP, 106 },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (map[i].dlt == dlt)
			return map[i].linktype;
	return (uint32_t)dlt;
}

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
	*lt = (struct pout_linktype){ .set = true, .value = pout_dlt_to_linktype(dlt) };
	return 0;
}

static const char *const pout_precisions[] = { "us", "ns", NULL };

static const struct pp_option pout_options[] = {
	{ .name = "path", .type = PP_OPT_PATH, .default_value = NULL,
	  .offset = offsetof(struct pout_config, path),
	  .help = "file or FIFO to write; a file is truncated, a FIFO needs its reader first" },
	{ .name = "linktype", .type = PP_OPT_CUSTOM, .default_value = "",
	  .offset = offsetof(struct pout_config, linktype), .parse = pout_parse_linktype,
	  .value_hint = "number or name (EN10MB, RAW, LINUX_SLL)",
	  .help = "the file's LINKTYPE; empty = the first packet's" },
	{ .name = "snaplen", .type = PP_OPT_SIZE, .default_value = "256KiB", .min = 1,
	  .max = POUT_SNAPLEN_MAX, .offset = offsetof(struct pout_config, snaplen),
	  .help = "longer packets are cut to this many bytes (their length is kept)" },
	{ .name = "precision", .type = PP_OPT_ENUM, .default_value = "us",
	  .offset = offsetof(struct pout_config, precision), .choices = pout_precisions,
	  .help = "timestamp precision of the file; ns writes the nanosecond magic 0xa1b23c4d" },
	{ .name = "flush", .type = PP_OPT_DURATION, .default_value = "100ms", .min = 0,
	  .max = 60000000000, .offset = offsetof(struct pout_config, flush),
	  .help = "buffered packets reach the file within this delay; 0 = at once" },
	{ .name = "buffer", .type = PP_OPT_SIZE, .default_value = "4MiB", .min = 0,
	  .max = 1ll << 30, .offset = offsetof(struct pout_config, buffer),
	  .help = "data that may wait in memory while a FIFO's reader lags; "
		  "beyond it packets are dropped" },
	PP_OPTION_END
};

/* pcap's file and record headers, in native byte order. */
struct pout_file_header {
	uint32_t magic;
	uint16_t version_major, version_minor;
	int32_t thiszone;
	uint32_t sigfigs, snaplen, linktype;
};

struct pout_record_header {
	uint32_t ts_sec, ts_frac, caplen, origlen;
};

struct pout_state {
	struct pp_node *node;
	const struct pp_host *host;
	const struct pout_config *cfg;
	struct out *out;
	pp_counter *drop_linktype, *drop_frame;
	struct pp_log_limit linktype_limit, frame_limit;
	bool have_linktype;
	uint32_t linktype;
	struct pout_record_header heads[PP_BATCH_MAX];
	struct out_rec recs[PP_BATCH_MAX];
};

/* ------------------------------------------------------------------ */
/* Opening                                                              */

/* Fix the file's linktype and start the stream with its header. */
static int pout_set_linktype(struct pout_state *s, uint32_t linktype)
{
	struct pout_file_header fh = {
		.magic = s->cfg->precision == POUT_NS ? POUT_MAGIC_NS : POUT_MAGIC_US,
		.version_major = 2,
		.version_minor = 4,
		.snaplen = (uint32_t)s->cfg->snaplen,
	};

	fh.linktype = linktype;
	s->linktype = linktype;
	s->have_linktype = true;
	return out_set_preamble(s->out, &fh, sizeof(fh));
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
	s->drop_linktype = host->drop_reason(node, "linktype");
	s->drop_frame = host->drop_reason(node, "frame");
	rc = out_open(&s->out, node, host, cfg->path, cfg->buffer, cfg->flush);
	if (rc < 0)
		goto err_free;
	if (cfg->linktype.set) {
		rc = pout_set_linktype(s, cfg->linktype.value);
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

/* Whether a packet of this linktype may go into the file as it is. Raw IP
 * records carry their IP version, so a 12 or 101 file takes the whole raw
 * IP family; a 228 or 229 file takes only its own. */
static bool pout_fits(const struct pout_state *s, uint32_t linktype)
{
	if (linktype == s->linktype)
		return true;
	return (s->linktype == 12 || s->linktype == 101) && pout_raw_ip(linktype);
}

/* Whether the packet goes into the file; counts and logs it if not. */
static bool pout_keep(struct pout_state *s, const struct pp_packet *p)
{
	if (p->linktype == PP_LINKTYPE_FRAME) {
		pp_counter_add(s->drop_frame, p->count);
		s->host->log_limited(s->node, &s->frame_limit, PP_LOG_WARNING,
				     "encoded frames cannot be written as pcap: put a decoder "
				     "before this node; dropping them");
		return false;
	}
	if (!s->have_linktype)
		pout_set_linktype(s, p->linktype);
	if (pout_fits(s, p->linktype))
		return true;
	pp_counter_add(s->drop_linktype, 1);
	s->host->log_limited(s->node, &s->linktype_limit, PP_LOG_WARNING,
			     "packet of linktype %u does not fit the file's linktype %u; dropping",
			     p->linktype, s->linktype);
	return false;
}

static void pout_encode(const struct pout_state *s, const struct pp_packet *p,
			struct pout_record_header *h, struct out_rec *r)
{
	uint32_t caplen = p->caplen < s->cfg->snaplen ? p->caplen : (uint32_t)s->cfg->snaplen;
	uint64_t frac = p->ts_ns % 1000000000u;

	h->ts_sec = (uint32_t)(p->ts_ns / 1000000000u);
	h->ts_frac = (uint32_t)(s->cfg->precision == POUT_NS ? frac : frac / 1000u);
	h->caplen = caplen;
	h->origlen = p->origlen;
	*r = (struct out_rec){ .head = h, .head_len = sizeof(*h), .body = p->data,
			       .body_len = caplen };
}

/* At most PP_BATCH_MAX packets: one record array, one submission. */
static void pout_write(struct pout_state *s, struct pp_packet **pkts, uint32_t n)
{
	size_t k = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (!pout_keep(s, pkts[i]))
			continue;
		pout_encode(s, pkts[i], &s->heads[k], &s->recs[k]);
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

	/* out_reopen logs its failures; packets are dropped until the next
	 * SIGHUP opens the path again. */
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
	.summary = "write packets as a pcap stream to a file or FIFO",
	.roles = PP_ROLE_SINK,
	.options = pout_options,
	.config_size = sizeof(struct pout_config),
	.open = pout_open,
	.start = pout_start,
	.process = pout_process,
	.stop = pout_stop,
	.close = pout_close,
	.reopen = pout_reopen,
};
