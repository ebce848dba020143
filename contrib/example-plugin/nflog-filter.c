/* nflog-filter: an out-of-tree pktpipe plugin, built against the installed
 * SDK alone (pkg-config pktpipe). It keeps the packets whose NFLOG group or
 * prefix is listed and drops the rest under the reason "filtered".
 *
 * Group and prefix come from the packet's metadata when its source knew
 * them (the nflog plugin, the native wire), else from the packet itself
 * when it is a LINKTYPE_NFLOG (239) record, as in a capture file. */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <pktpipe/plugin.h>

#define LINKTYPE_NFLOG 239
#define NFLOG_HDR_LEN 4 /* family, version, resource id (the group, BE) */
#define NFULA_PREFIX 10

struct filter_config {
	struct pp_list groups;
	struct pp_list prefixes;
	bool invert;
};

static const struct pp_option filter_options[] = {
	{ .name = "groups", .type = PP_OPT_LIST, .item_type = PP_OPT_INT, .default_value = "",
	  .min = 0, .max = 65535, .offset = offsetof(struct filter_config, groups),
	  .help = "keep packets logged to these NFLOG groups" },
	{ .name = "prefixes", .type = PP_OPT_LIST, .item_type = PP_OPT_STRING,
	  .default_value = "", .offset = offsetof(struct filter_config, prefixes),
	  .help = "keep packets whose NFLOG prefix starts with one of these" },
	{ .name = "invert", .type = PP_OPT_BOOL, .default_value = "no",
	  .offset = offsetof(struct filter_config, invert),
	  .help = "drop the matching packets and keep the others instead" },
	PP_OPTION_END,
};

struct filter {
	struct pp_node *node;
	const struct pp_host *host;
	const struct filter_config *cfg;
	pp_counter *filtered;
	struct pp_packet *keep[PP_BATCH_MAX];
};

static int filter_validate(const void *config, char *err, size_t errlen)
{
	const struct filter_config *cfg = config;

	if (!cfg->groups.count && !cfg->prefixes.count) {
		strncpy(err, "set groups, prefixes or both", errlen - 1);
		err[errlen - 1] = '\0';
		return -EINVAL;
	}
	return 0;
}

static int filter_open(struct pp_node *node, const struct pp_host *host, const void *config,
		       void **state)
{
	struct filter *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->node = node;
	f->host = host;
	f->cfg = config;
	f->filtered = host->drop_reason(node, "filtered");
	if (!f->filtered) {
		free(f);
		return -ENOMEM;
	}
	*state = f;
	return 0;
}

/* The prefix TLV of an NFLOG record, bounds-checked: captures are input. */
static const char *record_prefix(const struct pp_packet *p, size_t *len)
{
	size_t off = NFLOG_HDR_LEN;

	while (off + 4 <= p->caplen) {
		/* TLV lengths and types are host-endian on the wire (Linux). */
		uint16_t tlv_len, type;

		memcpy(&tlv_len, p->data + off, 2);
		memcpy(&type, p->data + off + 2, 2);
		if (tlv_len < 4 || tlv_len > p->caplen - off)
			return NULL;
		if ((type & 0x7fff) == NFULA_PREFIX) {
			*len = strnlen((const char *)p->data + off + 4, tlv_len - 4u);
			return (const char *)p->data + off + 4;
		}
		off += (tlv_len + 3u) & ~3u;
	}
	return NULL;
}

static bool group_of(const struct pp_packet *p, int64_t *group)
{
	if (p->meta.flags & PP_META_GROUP) {
		*group = p->meta.group;
		return true;
	}
	if (p->linktype != LINKTYPE_NFLOG || p->caplen < NFLOG_HDR_LEN)
		return false;
	*group = (int64_t)p->data[2] << 8 | p->data[3];
	return true;
}

static bool prefix_listed(const struct filter_config *cfg, const char *prefix, size_t len)
{
	for (size_t i = 0; i < cfg->prefixes.count; i++) {
		size_t want = strlen(cfg->prefixes.str[i]);

		if (want <= len && memcmp(prefix, cfg->prefixes.str[i], want) == 0)
			return true;
	}
	return false;
}

static bool matches(const struct filter_config *cfg, const struct pp_packet *p)
{
	const char *prefix = NULL;
	int64_t group;
	size_t len = 0;

	if (group_of(p, &group))
		for (size_t i = 0; i < cfg->groups.count; i++)
			if (cfg->groups.num[i] == group)
				return true;
	if (p->meta.flags & PP_META_PREFIX) {
		prefix = p->meta.prefix;
		len = strnlen(prefix, PP_PREFIX_MAX);
	} else if (p->linktype == LINKTYPE_NFLOG) {
		prefix = record_prefix(p, &len);
	}
	return prefix && prefix_listed(cfg, prefix, len);
}

static int filter_process(void *state, struct pp_batch *in)
{
	struct filter *f = state;
	struct pp_batch out = { .pkts = f->keep };
	uint64_t dropped = 0;

	for (uint32_t i = 0; i < in->count; i++) {
		if (matches(f->cfg, in->pkts[i]) != f->cfg->invert)
			f->keep[out.count++] = in->pkts[i];
		else
			dropped += in->pkts[i]->count;
		if (out.count == PP_BATCH_MAX) {
			f->host->emit(f->node, &out);
			out.count = 0;
		}
	}
	pp_counter_add(f->filtered, dropped);
	f->host->emit(f->node, &out);
	return 0;
}

static void filter_close(void *state)
{
	free(state);
}

PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "nflog-filter",
	.summary = "keep packets by NFLOG group or prefix (out-of-tree example)",
	.roles = PP_ROLE_FILTER,
	.options = filter_options,
	.config_size = sizeof(struct filter_config),
	.validate = filter_validate,
	.open = filter_open,
	.process = filter_process,
	.close = filter_close,
};
