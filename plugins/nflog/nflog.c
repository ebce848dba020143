/* nflog: a source of the packets iptables/nftables NFLOG rules send to
 * netlink log groups, read with libnetfilter_log.
 *
 * One netlink socket serves every group. The host's loop watches it
 * (level-triggered); each wake-up reads large messages, each a kernel batch
 * of up to qthreshold packets, until the socket is empty or one turn's
 * budget is spent. Then it returns to the loop, which comes back at once if
 * data remains, so a flood on this socket never starves the other nodes.
 *
 * Loss is counted exactly: the kernel numbers each group's packets, and a
 * gap is what it could not deliver (socket buffer full), counted in
 * packets_in and dropped as "kernel". Each gap is also an overflow
 * ("overflows"), which doubles rcvbuf up to rcvbuf_max; so does a backlog
 * that fills half of the buffer, before anything is lost. The socket has
 * NETLINK_NO_ENOBUFS: without it, an overflow makes the kernel drop every
 * message until the queue is empty, far more than did not fit.
 *
 * Stopping: unbinding a group makes the kernel send what it still batches,
 * so nothing is left behind. Without privileges (user =) unbinding is not
 * allowed; then we wait qtimeout, by which the kernel has sent its batches.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>

#include "nflog.h"

#define NFL_TURN_READS 64 /* messages per wake-up, at most */
#define NFL_TURN_PACKETS 2048 /* packets per wake-up, about (whole messages) */
#define NFL_FLUSH_MARGIN 50000000u /* ns beyond qtimeout: timer slack, one jiffy */

static const char *const nfl_linktypes[] = { "raw", "nflog", NULL };

static const struct pp_option nfl_options[] = {
	{ .name = "groups", .type = PP_OPT_LIST, .item_type = PP_OPT_INT, .default_value = NULL,
	  .min = 0, .max = 65535, .max_items = 256, .offset = offsetof(struct nfl_config, groups),
	  .help = "NFLOG groups to read (iptables --nflog-group, nft log group); one socket "
		  "serves them all" },
	{ .name = "copy_range", .type = PP_OPT_SIZE, .default_value = "65535", .min = 1,
	  .max = 65535, .offset = offsetof(struct nfl_config, copy_range),
	  .help = "bytes of each packet the kernel copies (a rule's --nflog-size or nft snaplen "
		  "cuts further); cut packets keep their original length" },
	{ .name = "nlbufsiz", .type = PP_OPT_SIZE, .default_value = "128KiB", .min = 4096,
	  .max = 1ll << 30, .offset = offsetof(struct nfl_config, nlbufsiz),
	  .help = "kernel batch buffer per group, at most 131072 bytes (the kernel's limit); "
		  "not the socket buffer, see rcvbuf" },
	{ .name = "qthreshold", .type = PP_OPT_INT, .default_value = "64", .min = 1,
	  .max = 1000000, .offset = offsetof(struct nfl_config, qthreshold),
	  .help = "packets the kernel batches into one message (a rule's --nflog-threshold "
		  "overrides it)" },
	{ .name = "qtimeout", .type = PP_OPT_DURATION, .default_value = "100ms", .min = 0,
	  .max = 60000000000ll, .offset = offsetof(struct nfl_config, qtimeout),
	  .help = "longest a packet waits in a kernel batch; sent in 1/100 s, rounded up" },
	{ .name = "rcvbuf", .type = PP_OPT_SIZE, .default_value = "8MiB", .min = 4096,
	  .max = 1ll << 30, .offset = offsetof(struct nfl_config, rcvbuf),
	  .help = "socket receive buffer, what absorbs bursts (SO_RCVBUFFORCE; without "
		  "CAP_NET_ADMIN SO_RCVBUF, capped by net.core.rmem_max)" },
	{ .name = "rcvbuf_max", .type = PP_OPT_SIZE, .default_value = "64MiB", .min = 4096,
	  .max = 1ll << 30, .offset = offsetof(struct nfl_config, rcvbuf_max),
	  .help = "on overflow (a sequence gap) rcvbuf doubles up to this; set it to rcvbuf to "
		  "never grow" },
	{ .name = "user", .type = PP_OPT_STRING, .default_value = "",
	  .offset = offsetof(struct nfl_config, user),
	  .help = "user (name or uid) to become once the groups are bound; no capability "
		  "is kept" },
	{ .name = "group", .type = PP_OPT_STRING, .default_value = "",
	  .offset = offsetof(struct nfl_config, group),
	  .help = "group (name or gid) to become; default: the user's own group" },
	{ .name = "linktype", .type = PP_OPT_ENUM, .default_value = "raw",
	  .choices = nfl_linktypes, .offset = offsetof(struct nfl_config, linktype),
	  .help = "raw: IP packets (LINKTYPE_RAW 101); nflog: LINKTYPE_NFLOG (239) records "
		  "carrying prefix, group, interfaces, uid, ..." },
	PP_OPTION_END
};

static int nfl_validate(const void *config, char *err, size_t errlen)
{
	const struct nfl_config *c = config;
	struct nfl_ids ids;

	if (c->nlbufsiz > NFL_NLBUFSIZ_KERNEL_MAX) {
		snprintf(err, errlen, "nlbufsiz %" PRIu64 " is above %d bytes (128KiB), the "
			 "largest batch buffer the kernel accepts; to absorb bursts, raise rcvbuf",
			 c->nlbufsiz, NFL_NLBUFSIZ_KERNEL_MAX);
		return -EINVAL;
	}
	if (c->rcvbuf_max < c->rcvbuf) {
		snprintf(err, errlen, "rcvbuf_max (%" PRIu64 " bytes) is below rcvbuf (%" PRIu64
			 " bytes)", c->rcvbuf_max, c->rcvbuf);
		return -EINVAL;
	}
	if (!c->groups.count) {
		snprintf(err, errlen, "groups: name at least one NFLOG group");
		return -EINVAL;
	}
	for (size_t i = 0; i < c->groups.count; i++)
		for (size_t j = 0; j < i; j++)
			if (c->groups.num[i] == c->groups.num[j]) {
				snprintf(err, errlen, "groups: group %" PRId64 " is listed twice",
					 c->groups.num[i]);
				return -EINVAL;
			}
	return nfl_ids_resolve(c->user, c->group, &ids, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Opening                                                              */

static int nfl_counters(struct nfl_state *s)
{
	const struct pp_host *h = s->host;

	s->stats = h->stats(s->node);
	s->drop_kernel = h->drop_reason(s->node, "kernel");
	s->drop_nomem = h->drop_reason(s->node, "nomem");
	s->drop_not_ip = h->drop_reason(s->node, "not-ip");
	s->overflows = h->counter(s->node, "overflows", PP_COUNTER_TOTAL);
	s->rcvbuf_gauge = h->counter(s->node, "rcvbuf", PP_COUNTER_GAUGE);
	s->unseen = h->counter(s->node, "unseen_batches", PP_COUNTER_TOTAL);
	if (!s->stats || !s->drop_kernel || !s->drop_nomem || !s->drop_not_ip || !s->overflows ||
	    !s->rcvbuf_gauge || !s->unseen)
		return -ENOMEM;
	return 0;
}

static int nfl_group_cmp(const void *a, const void *b)
{
	const struct nfl_group *x = a, *y = b;

	return (int)x->num - (int)y->num;
}

static int nfl_groups_new(struct nfl_state *s)
{
	const struct pp_list *l = &s->cfg->groups;

	s->groups = calloc(l->count, sizeof(*s->groups));
	if (!s->groups)
		return -ENOMEM;
	for (size_t i = 0; i < l->count; i++)
		s->groups[i] = (struct nfl_group){ .s = s, .num = (uint16_t)l->num[i] };
	s->ngroups = l->count;
	qsort(s->groups, s->ngroups, sizeof(*s->groups), nfl_group_cmp);
	return 0;
}

static void nfl_free(struct nfl_state *s)
{
	free(s->groups);
	free(s->buf);
	free(s);
}

static int nfl_open(struct pp_node *node, const struct pp_host *host, const void *config,
		    void **state)
{
	struct nfl_state *s;
	char err[256];
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct nfl_state){ .node = node, .host = host, .cfg = config, .fd = -1,
				 .privileged = true };
	outq_init(&s->out, node, host);
	rc = nfl_ids_resolve(s->cfg->user, s->cfg->group, &s->ids, err, sizeof(err));
	if (rc < 0) {
		host->log(node, PP_LOG_ERROR, "%s", err);
		goto err;
	}
	rc = -ENOMEM;
	if (nfl_counters(s) < 0 || nfl_groups_new(s) < 0 || !(s->buf = malloc(NFL_RXBUF)))
		goto err;
	rc = nfl_socket_open(s);
	if (rc < 0)
		goto err;
	*state = s;
	return 0;
err:
	nfl_free(s);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */

/* One kernel message into s->buf: its length; 0 when there was nothing to
 * handle (EINTR, ENOBUFS, a sender other than the kernel); -EAGAIN when the
 * socket is empty; another -errno when it failed. ENOBUFS comes only where
 * NETLINK_NO_ENOBUFS could not be set: the sequence gap counts the loss. */
static ssize_t nfl_recv(struct nfl_state *s)
{
	struct sockaddr_nl from = { 0 };
	socklen_t fromlen = sizeof(from);
	ssize_t n;

	n = recvfrom(s->fd, s->buf, NFL_RXBUF, MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
	if (n < 0) {
		int err = errno;

		if (err == EINTR || err == ENOBUFS)
			return 0;
		return err == EWOULDBLOCK ? -EAGAIN : -err;
	}
	if (from.nl_pid != 0) {
		s->host->log_limited(s->node, &s->read_limit, PP_LOG_WARNING,
				     "ignored a message from netlink port %" PRIu32
				     ", which is not the kernel", from.nl_pid);
		return 0;
	}
	if ((size_t)n > NFL_RXBUF) {
		/* Cannot happen with nlbufsiz <= 128 KiB; the sequence numbers
		 * would count what the cut message held. */
		s->host->log_limited(s->node, &s->read_limit, PP_LOG_WARNING,
				     "a %zd-byte message did not fit the %u-byte buffer", n,
				     NFL_RXBUF);
		n = NFL_RXBUF;
	}
	return n;
}

/* Once final: false when the bytes worth reading are spent. */
static bool nfl_spend(struct nfl_state *s, uint64_t n)
{
	s->final_budget = n < s->final_budget ? s->final_budget - n : 0;
	return s->final_budget > 0;
}

static void nfl_resume(void *arg);

/* A queue ahead is nearly full: leave the packets in the socket, whose
 * buffer (rcvbuf) holds them meanwhile instead of the queue dropping them;
 * the host calls nfl_resume() once that queue has drained. */
static bool nfl_held_back(struct nfl_state *s)
{
	if (!outq_wait(&s->out, nfl_resume, s))
		return false;
	if (!s->held_back && s->watch)
		s->host->watch_modify(s->watch, 0);
	s->held_back = true;
	return true;
}

/* Read until the socket is empty (1), or one turn's budget is spent (0),
 * or it fails (-errno). Once final, also stop after final_budget bytes. */
static int nfl_drain(struct nfl_state *s)
{
	unsigned reads = 0;
	int rc = 0;

	s->turn_packets = 0;
	while (reads++ < NFL_TURN_READS && s->turn_packets < NFL_TURN_PACKETS) {
		ssize_t n;

		/* Asked before every message: one turn holds several batches. */
		if (nfl_held_back(s))
			break;
		n = nfl_recv(s);

		if (n < 0) {
			rc = n == -EAGAIN ? 1 : (int)n;
			break;
		}
		if (n == 0)
			continue;
		s->rx_ns = s->host->now_real_ns();
		nflog_handle_packet(s->h, (char *)s->buf, (int)n);
		if (s->final && !nfl_spend(s, (uint64_t)n))
			break;
	}
	s->rx_ns = 0;
	outq_emit(&s->out);
	/* The turn's budget is spent with data left: a backlog. */
	if (rc == 0 && !s->final)
		nfl_watch_rcvbuf(s);
	return rc;
}

/* Messages the kernel dropped after the last sequence gap we saw: no
 * later packet numbers them, so their packets are not in 'kernel'. Their
 * count (at least this many: a drop just before a gap's reading counts as
 * seen) is all the kernel tells; each held up to qthreshold packets. */
static void nfl_count_unseen(struct nfl_state *s)
{
	uint32_t n = nfl_socket_drops(s) - s->drops_seen;

	if (n == 0 || n >= 1u << 31)
		return;
	pp_counter_add(s->unseen, n);
	s->host->log(s->node, PP_LOG_WARNING,
		     "the kernel dropped %" PRIu32 " batches (each up to qthreshold = %" PRId64
		     " packets) after the last packet that could show them as a sequence gap; "
		     "counted in unseen_batches, not in dropped 'kernel'",
		     n, s->cfg->qthreshold);
}

/* Read no more: release what the loop holds for us. */
static void nfl_release(struct nfl_state *s)
{
	if (!s->done)
		nfl_count_unseen(s);
	s->done = true;
	outq_emit(&s->out);
	if (s->watch)
		s->host->unwatch(s->watch);
	s->watch = NULL;
	if (s->timer)
		s->host->timer_free(s->timer);
	s->timer = NULL;
}

static void nfl_finish(struct nfl_state *s, int status)
{
	nfl_release(s);
	s->host->finished(s->node, status);
}

static void nfl_turn(struct nfl_state *s)
{
	int rc;

	if (s->done)
		return;
	rc = nfl_drain(s);
	if (rc < 0) {
		s->host->log(s->node, PP_LOG_ERROR, "reading the netlink socket: %s",
			     strerror(-rc));
		nfl_finish(s, rc);
	} else if (s->final && (rc == 1 || s->final_budget == 0)) {
		nfl_finish(s, 0);
	}
}

static void nfl_readable(void *arg, int fd, unsigned events)
{
	(void)fd;
	(void)events;
	nfl_turn(arg);
}

static void nfl_final(void *arg);

static void nfl_resume(void *arg)
{
	struct nfl_state *s = arg;

	s->held_back = false;
	if (s->done)
		return;
	if (s->watch)
		s->host->watch_modify(s->watch, PP_WATCH_READ);
	if (s->final)
		nfl_final(s);
	else
		nfl_turn(s);
}

/* ------------------------------------------------------------------ */
/* Starting                                                             */

static int nfl_become_user(struct nfl_state *s)
{
	char err[256];
	int rc;

	if (!s->ids.set)
		return 0;
	rc = nfl_drop_privileges(&s->ids, err, sizeof(err));
	if (rc < 0) {
		s->host->log(s->node, PP_LOG_ERROR, "%s", err);
		return rc;
	}
	s->privileged = !s->ids.change_uid;
	s->host->log(s->node, PP_LOG_INFO, "running as uid %u, gid %u%s", (unsigned)getuid(),
		     (unsigned)getgid(), s->ids.change_uid ? ", without capabilities" : "");
	return 0;
}

static int nfl_start(void *state)
{
	struct nfl_state *s = state;
	int rc;

	s->rx_ns = 0;
	rc = nfl_bind_groups(s);
	if (rc < 0)
		goto out;
	rc = -ENOMEM;
	s->watch = s->host->watch_fd(s->node, s->fd, PP_WATCH_READ, nfl_readable, s);
	if (!s->watch)
		goto unbind;
	rc = nfl_become_user(s);
	if (rc == 0)
		goto out;
	s->host->unwatch(s->watch);
	s->watch = NULL;
unbind:
	nfl_unbind_groups(s);
out:
	/* Packets that came while the kernel acknowledged our settings. */
	s->rx_ns = 0;
	outq_emit(&s->out);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Stopping                                                             */

static void nfl_final(void *arg)
{
	struct nfl_state *s = arg;

	if (!s->final) {
		s->final = true;
		/* The socket held at most its buffer's worth when the kernel's
		 * last batch was in: reading more than that is only a flood
		 * that goes on, not something we owe. */
		s->final_budget = pp_counter_get(s->rcvbuf_gauge) + NFL_RXBUF;
	}
	nfl_turn(s);
	if (!s->done && !s->held_back)
		s->host->timer_arm(s->timer, 0, 0);
}

static int nfl_stop(void *state)
{
	struct nfl_state *s = state;
	uint64_t wait = 0;

	if (s->done)
		return 0;
	s->rx_ns = 0;
	if (!s->privileged || !nfl_unbind_groups(s))
		wait = s->cfg->qtimeout + NFL_FLUSH_MARGIN;
	s->rx_ns = 0;
	outq_emit(&s->out);
	s->timer = s->host->timer_new(s->node, nfl_final, s);
	if (!s->timer || s->host->timer_arm(s->timer, wait, 0) < 0) {
		/* No timer: what was read is out; the rest stays unread. */
		nfl_release(s);
		return 0;
	}
	return -EINPROGRESS;
}

/* A watch or timer still here (start or stop never completed) is the
 * host's now: close() may not call it. */
static void nfl_close(void *state)
{
	struct nfl_state *s = state;

	nfl_socket_close(s);
	nfl_free(s);
}

PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "nflog",
	.summary = "read packets from netfilter NFLOG groups (iptables, nftables)",
	.roles = PP_ROLE_SOURCE,
	.options = nfl_options,
	.config_size = sizeof(struct nfl_config),
	.validate = nfl_validate,
	.open = nfl_open,
	.start = nfl_start,
	.stop = nfl_stop,
	.close = nfl_close,
};
