/* One logged packet, from libnetfilter_log's callback to the node's batch:
 * first what the kernel lost before it (a gap in the group's sequence
 * numbers), then the packet itself, with its metadata.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "nflog.h"

/* The kernel numbers each group's packets from 0 once NFULNL_CFG_F_SEQ is
 * set, and skips the numbers of those it could not deliver (a full socket
 * buffer). A number lower than expected means the group was bound anew:
 * nothing to count, start again from it. */
static void nfl_seq(struct nfl_state *s, struct nfl_group *g, struct nflog_data *nfd)
{
	char what[96];
	uint32_t seq, gap;

	if (nflog_get_seq(nfd, &seq) < 0)
		return; /* logged before the flag took effect */
	gap = seq - g->next_seq;
	g->next_seq = seq + 1;
	if (!gap)
		return;
	if (gap >= 1u << 31) {
		s->host->log_limited(s->node, &s->seq_limit, PP_LOG_WARNING,
				     "group %u: sequence number went back to %u; counting on from "
				     "it", g->num, seq);
		return;
	}
	pp_counter_add(&s->stats->packets_in, gap);
	pp_counter_add(s->drop_kernel, gap);
	snprintf(what, sizeof(what),
		 "group %u: the kernel could not deliver %u packets (sequence %u to %u)", g->num,
		 gap, seq - gap, seq - 1);
	nfl_overflowed(s, what);
	/* What the socket dropped up to now, this gap (and earlier ones)
	 * accounts for; see nfl_count_unseen(). */
	s->drops_seen = nfl_socket_drops(s);
}

/* The length the packet had before copy_range or the rule's --nflog-size
 * cut it, from its IP header; never less than what we have. */
static uint32_t nfl_ip_length(const uint8_t *d, uint32_t len)
{
	uint32_t ip = 0;

	if (len >= 4 && d[0] >> 4 == 4)
		ip = (uint32_t)d[2] << 8 | d[3];
	else if (len >= 6 && d[0] >> 4 == 6 && (d[4] || d[5]))
		ip = 40 + ((uint32_t)d[4] << 8 | d[5]);
	return ip > len ? ip : len;
}

static bool nfl_is_ip(const uint8_t *d, uint32_t len)
{
	return len >= 1 && (d[0] >> 4 == 4 || d[0] >> 4 == 6);
}

/* Kernel time when the packet has one (input and forward hooks, with
 * timestamping on), else the time we read it; never zero. */
static uint64_t nfl_timestamp(struct nfl_state *s, struct nflog_data *nfd)
{
	struct timeval tv;

	if (nflog_get_timestamp(nfd, &tv) == 0 && (tv.tv_sec > 0 || tv.tv_usec > 0))
		return (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u;
	if (!s->rx_ns)
		s->rx_ns = s->host->now_real_ns();
	return s->rx_ns;
}

/* The kernel leaves out an ifindex or mark of 0, and 0 is no valid
 * ifindex: a zero from libnetfilter_log means "absent". */
static void nfl_meta_ids(struct pp_meta *m, struct nflog_data *nfd)
{
	uint32_t v;

	if ((v = nflog_get_indev(nfd)) != 0) {
		m->ifindex_in = v;
		m->flags |= PP_META_IFINDEX_IN;
	}
	if ((v = nflog_get_outdev(nfd)) != 0) {
		m->ifindex_out = v;
		m->flags |= PP_META_IFINDEX_OUT;
	}
	if ((v = nflog_get_physindev(nfd)) != 0) {
		m->physin = v;
		m->flags |= PP_META_PHYSIN;
	}
	if ((v = nflog_get_physoutdev(nfd)) != 0) {
		m->physout = v;
		m->flags |= PP_META_PHYSOUT;
	}
	if ((v = nflog_get_nfmark(nfd)) != 0) {
		m->mark = v;
		m->flags |= PP_META_MARK;
	}
}

static void nfl_meta(struct pp_meta *m, const struct nfl_group *g, struct nflog_data *nfd)
{
	struct nfulnl_msg_packet_hdr *ph = nflog_get_msg_packet_hdr(nfd);
	const char *prefix = nflog_get_prefix(nfd);

	m->flags = PP_META_GROUP;
	m->group = g->num;
	if (ph) {
		m->hw_protocol = ntohs(ph->hw_protocol);
		m->flags |= PP_META_HW_PROTOCOL;
	}
	if (prefix) {
		/* The kernel caps prefixes at our size (NUL included); it sends
		 * one with every packet, most often empty: no printf here. */
		size_t n = strnlen(prefix, sizeof(m->prefix) - 1);

		memcpy(m->prefix, prefix, n);
		m->prefix[n] = '\0';
		m->flags |= PP_META_PREFIX;
	}
	nfl_meta_ids(m, nfd);
	if (nflog_get_uid(nfd, &m->uid) == 0)
		m->flags |= PP_META_UID;
	if (nflog_get_gid(nfd, &m->gid) == 0)
		m->flags |= PP_META_GID;
	if (nflog_get_seq(nfd, &m->seq) == 0)
		m->flags |= PP_META_SEQ;
	if (nflog_get_seq_global(nfd, &m->seq_global) == 0)
		m->flags |= PP_META_SEQ_GLOBAL;
}

/* What goes into the packet: the IP packet (raw), or the whole LINKTYPE_NFLOG
 * record, which is the netlink message after its header: nfgenmsg (family,
 * version, group) and the attributes, exactly the layout tcpdump and
 * Wireshark read (TLV headers in host order, values in network order). */
struct nfl_bytes {
	const uint8_t *data;
	uint32_t len, extra; /* extra: what copy_range cut off */
};

static void nfl_bytes(const struct nfl_state *s, const struct nfgenmsg *nfmsg,
		      struct nflog_data *nfd, struct nfl_bytes *b)
{
	char *payload = NULL;
	int plen = nflog_get_payload(nfd, &payload);
	const struct nlmsghdr *nlh;

	if (plen < 0 || !payload)
		plen = 0;
	b->extra = nfl_ip_length((const uint8_t *)payload, (uint32_t)plen) - (uint32_t)plen;
	b->data = (const uint8_t *)payload;
	b->len = (uint32_t)plen;
	if (s->cfg->linktype != NFL_NFLOG)
		return;
	/* libnfnetlink hands us NLMSG_DATA() of the message. */
	nlh = (const struct nlmsghdr *)(const void *)((const char *)nfmsg - NLMSG_HDRLEN);
	b->data = (const uint8_t *)nfmsg;
	b->len = nlh->nlmsg_len - NLMSG_HDRLEN;
}

/* Raw IP files cannot hold what is not IP (an ARP or bridge family rule
 * logging to our group, a rule copying no payload). */
static void nfl_not_ip(struct nfl_state *s, const struct nfl_group *g, struct nflog_data *nfd,
		       uint32_t len)
{
	struct nfulnl_msg_packet_hdr *ph = nflog_get_msg_packet_hdr(nfd);

	pp_counter_add(s->drop_not_ip, 1);
	s->host->log_limited(s->node, &s->not_ip_limit, PP_LOG_WARNING,
			     "group %u: a packet that is not IP (%u bytes, hw protocol 0x%04x) "
			     "cannot go out as raw IP: dropped; linktype = nflog keeps it", g->num,
			     len, ph ? ntohs(ph->hw_protocol) : 0);
}

static struct pp_packet *nfl_packet(struct nfl_state *s, const struct nfl_group *g,
				    const struct nfgenmsg *nfmsg, struct nflog_data *nfd)
{
	struct nfl_bytes b;
	struct pp_packet *p;

	nfl_bytes(s, nfmsg, nfd, &b);
	pp_counter_add(&s->stats->packets_in, 1);
	pp_counter_add(&s->stats->bytes_in, b.len);
	if (s->cfg->linktype == NFL_RAW && !nfl_is_ip(b.data, b.len)) {
		nfl_not_ip(s, g, nfd, b.len);
		return NULL;
	}
	p = s->host->packet_alloc(s->node, b.len ? b.len : 1);
	if (!p) {
		pp_counter_add(s->drop_nomem, 1);
		s->host->log_limited(s->node, &s->nomem_limit, PP_LOG_WARNING,
				     "no packet buffer for %u bytes: dropped", b.len);
		return NULL;
	}
	if (b.len)
		memcpy(p->data, b.data, b.len);
	p->caplen = b.len;
	p->origlen = b.len + b.extra;
	p->ts_ns = nfl_timestamp(s, nfd);
	p->linktype = s->cfg->linktype == NFL_NFLOG ? NFL_LINKTYPE_NFLOG : NFL_LINKTYPE_RAW;
	p->count = 1;
	nfl_meta(&p->meta, g, nfd);
	return p;
}

int nfl_on_packet(struct nflog_g_handle *gh, struct nfgenmsg *nfmsg, struct nflog_data *nfd,
		  void *data)
{
	struct nfl_group *g = data;
	struct nfl_state *s = g->s;
	struct pp_packet *p;

	(void)gh;
	nfl_seq(s, g, nfd);
	p = nfl_packet(s, g, nfmsg, nfd);
	s->turn_packets++;
	if (p)
		outq_put(&s->out, p, true);
	/* libnfnetlink goes on to the next message only on a positive return
	 * (NFNL_CB_CONTINUE): 0 would also end a configuration request's wait
	 * for its acknowledgement, leaving that to be read as data. */
	return 1;
}
