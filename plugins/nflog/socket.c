/* The netlink socket: one for every group and both address families, its
 * receive buffer, and binding the groups with their kernel settings.
 *
 * libnetfilter_log waits for the acknowledgement of each configuration
 * request by reading the socket (nfnl_catch), handing every packet queued
 * ahead of the acknowledgement to our callback. Two consequences shape this
 * file: its read buffer must hold the largest batch the kernel sends
 * (nfnl_set_rcv_buffer_size), and the socket is non-blocking from the start,
 * so that an acknowledgement the kernel could not queue (a full buffer) is
 * an error, not a hang.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "nflog.h"

#define NFL_ACK_ROUNDS 100000

void nfl_size_text(uint64_t bytes, char *buf, size_t len)
{
	if (bytes >= 1u << 20 && bytes % (1u << 20) == 0)
		snprintf(buf, len, "%" PRIu64 "MiB", bytes >> 20);
	else if (bytes >= 1u << 10 && bytes % (1u << 10) == 0)
		snprintf(buf, len, "%" PRIu64 "KiB", bytes >> 10);
	else
		snprintf(buf, len, "%" PRIu64 " bytes", bytes);
}

/* ------------------------------------------------------------------ */
/* The receive buffer                                                   */

static int nfl_actual_rcvbuf(int fd)
{
	int got = 0;
	socklen_t len = sizeof(got);

	if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) < 0)
		return 0;
	return got;
}

/* SO_RCVBUFFORCE passes net.core.rmem_max but needs CAP_NET_ADMIN; plain
 * SO_RCVBUF is what is left without it. The kernel doubles the value for
 * its bookkeeping and reports the doubled size. */
int nfl_set_rcvbuf(struct nfl_state *s, uint64_t bytes)
{
	int want = (int)bytes, got;
	char a[32], b[32];

	if (setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) < 0 &&
	    setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want)) < 0) {
		int rc = -errno;

		s->host->log(s->node, PP_LOG_ERROR, "cannot set the socket buffer: %s",
			     strerror(-rc));
		return rc;
	}
	s->rcvbuf = bytes;
	got = nfl_actual_rcvbuf(s->fd);
	pp_counter_set(s->rcvbuf_gauge, (uint64_t)got);
	if ((uint64_t)got / 2 < bytes) {
		nfl_size_text(bytes, a, sizeof(a));
		nfl_size_text((uint64_t)got / 2, b, sizeof(b));
		s->host->log(s->node, PP_LOG_WARNING,
			     "rcvbuf: asked for %s, the kernel granted %s: without CAP_NET_ADMIN "
			     "the socket buffer stops at net.core.rmem_max (sysctl)", a, b);
	}
	return 0;
}

/* On overflow, or when it fills up (why): double rcvbuf up to rcvbuf_max.
 * Says what it did in note. */
void nfl_grow_rcvbuf(struct nfl_state *s, const char *why, char *note, size_t len)
{
	uint64_t next = s->rcvbuf * 2;
	uint64_t before = pp_counter_get(s->rcvbuf_gauge);
	char a[32];

	if (s->rcvbuf_capped) {
		snprintf(note, len, "without CAP_NET_ADMIN rcvbuf cannot grow beyond "
			 "net.core.rmem_max: raise that sysctl, or rcvbuf (set while still root)");
		return;
	}
	if (s->rcvbuf >= s->cfg->rcvbuf_max) {
		nfl_size_text(s->cfg->rcvbuf_max, a, sizeof(a));
		snprintf(note, len, "raise rcvbuf_max (%s) or rcvbuf", a);
		return;
	}
	if (next > s->cfg->rcvbuf_max)
		next = s->cfg->rcvbuf_max;
	nfl_size_text(next, a, sizeof(a));
	if (nfl_set_rcvbuf(s, next) < 0 || pp_counter_get(s->rcvbuf_gauge) <= before) {
		/* Stop asking: the limit is the kernel's, not ours. */
		s->rcvbuf_capped = true;
		nfl_grow_rcvbuf(s, why, note, len);
		return;
	}
	snprintf(note, len, "rcvbuf raised to %s", a);
	s->host->log(s->node, PP_LOG_INFO, "%s: rcvbuf raised to %s", why, a);
}

/* The socket buffer overflowed, as the sequence gap WHAT describes: one
 * more overflow, a larger buffer while rcvbuf_max allows, and one warning
 * that tells both what was lost and what was done. */
void nfl_overflowed(struct nfl_state *s, const char *what)
{
	char size[32], note[160];

	pp_counter_add(s->overflows, 1);
	nfl_size_text(s->rcvbuf, size, sizeof(size));
	nfl_grow_rcvbuf(s, "receive buffer overflowed", note, sizeof(note));
	s->host->log_limited(s->node, &s->overflow_limit, PP_LOG_WARNING,
			     "%s: receive buffer overflowed (rcvbuf %s), counted as dropped "
			     "'kernel'; %s", what, size, note);
}

/* The kernel's accounting of the socket (SO_MEMINFO), or -errno; -ENODATA
 * from a kernel older than its drops field (4.14). */
static int nfl_meminfo(const struct nfl_state *s, uint32_t mem[SK_MEMINFO_VARS])
{
	socklen_t len = SK_MEMINFO_VARS * sizeof(mem[0]);

	if (s->fd < 0)
		return -EBADF;
	if (getsockopt(s->fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0)
		return -errno;
	return len > SK_MEMINFO_DROPS * sizeof(mem[0]) ? 0 : -ENODATA;
}

/* A reader that falls behind for a moment (the CPU was busy elsewhere) is
 * caught by the buffer; one that keeps falling behind fills it. Growing
 * once it is half full, rather than once it overflowed, loses nothing to
 * the growth itself. */
void nfl_watch_rcvbuf(struct nfl_state *s)
{
	uint32_t mem[SK_MEMINFO_VARS];
	char note[160];

	if (s->rcvbuf_capped || s->rcvbuf >= s->cfg->rcvbuf_max)
		return;
	if (nfl_meminfo(s, mem) < 0)
		return;
	if (mem[SK_MEMINFO_RMEM_ALLOC] >= mem[SK_MEMINFO_RCVBUF] / 2)
		nfl_grow_rcvbuf(s, "receive buffer more than half full", note, sizeof(note));
}

uint32_t nfl_socket_drops(const struct nfl_state *s)
{
	uint32_t mem[SK_MEMINFO_VARS];

	return nfl_meminfo(s, mem) < 0 ? 0 : mem[SK_MEMINFO_DROPS];
}

/* ------------------------------------------------------------------ */
/* Opening                                                              */

/* Binding a family makes nfnetlink_log the netns's default logger for it;
 * it is also the first request that needs CAP_NET_ADMIN, so it fails early
 * and clearly when that is missing. */
static int nfl_bind_families(struct nfl_state *s)
{
	static const struct {
		uint16_t pf;
		const char *name;
	} fams[] = { { AF_INET, "IPv4" }, { AF_INET6, "IPv6" } };

	for (size_t i = 0; i < sizeof(fams) / sizeof(fams[0]); i++) {
		int rc;

		errno = 0;
		if (nflog_bind_pf(s->h, fams[i].pf) >= 0)
			continue;
		rc = errno ? -errno : -EIO;
		if (rc == -EPERM)
			s->host->log(s->node, PP_LOG_ERROR,
				     "reading NFLOG groups needs CAP_NET_ADMIN in this network "
				     "namespace: run as root (user = drops it once bound)");
		else
			s->host->log(s->node, PP_LOG_ERROR, "cannot bind the %s family: %s",
				     fams[i].name, strerror(-rc));
		return rc;
	}
	return 0;
}

int nfl_socket_open(struct nfl_state *s)
{
	int rc, on = 1;

	errno = 0;
	s->h = nflog_open();
	if (!s->h) {
		rc = errno ? -errno : -ENOMEM;
		s->host->log(s->node, PP_LOG_ERROR, "cannot open a netfilter netlink socket: %s",
			     strerror(-rc));
		return rc;
	}
	s->fd = nflog_fd(s->h);
	if (fcntl(s->fd, F_SETFD, FD_CLOEXEC) < 0 ||
	    fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) | O_NONBLOCK) < 0) {
		rc = -errno;
		s->host->log(s->node, PP_LOG_ERROR, "cannot set up the netlink socket: %s",
			     strerror(-rc));
		goto err;
	}
	nfnl_set_rcv_buffer_size(nflog_nfnlh(s->h), NFL_RXBUF);
	/* An overflow then loses what did not fit, not all that comes until
	 * the queue is empty (NETLINK_S_CONGESTED); nor can it end the wait
	 * for an acknowledgement. Best effort: the sequence numbers count the
	 * loss either way. */
	setsockopt(s->fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, sizeof(on));
	rc = nfl_bind_families(s);
	if (rc == 0)
		rc = nfl_set_rcvbuf(s, s->cfg->rcvbuf);
	if (rc == 0)
		return 0;
err:
	nflog_close(s->h);
	s->h = NULL;
	s->fd = -1;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Groups                                                               */

/* A socket's first port id is its process id unless that was taken, so
 * the process is named as a likely owner only. */
static void nfl_describe_port(uint32_t portid, char *out, size_t len)
{
	char path[64], comm[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/comm", portid);
	f = fopen(path, "re");
	if (f && fgets(comm, sizeof(comm), f)) {
		comm[strcspn(comm, "\n")] = '\0';
		snprintf(out, len, "netlink port %" PRIu32 ", likely pid %" PRIu32 " '%s'", portid,
			 portid, comm);
	} else {
		snprintf(out, len, "netlink port %" PRIu32, portid);
	}
	if (f)
		fclose(f);
}

/* Who else has this group in our network namespace; -ENOENT if nobody. */
static int nfl_group_owner(struct nfl_state *s, uint16_t group, char *out, size_t len)
{
	struct sockaddr_nl me = { 0 };
	socklen_t melen = sizeof(me);
	unsigned num, portid;
	char line[256];
	int rc = -ENOENT;
	FILE *f;

	getsockname(s->fd, (struct sockaddr *)&me, &melen);
	f = fopen("/proc/net/netfilter/nfnetlink_log", "re");
	if (!f)
		return -errno;
	while (rc && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%u %u", &num, &portid) != 2 || num != group ||
		    portid == me.nl_pid)
			continue;
		nfl_describe_port(portid, out, len);
		rc = 0;
	}
	fclose(f);
	return rc;
}

/* The kernel refuses a group bound by another socket with EPERM, the same
 * error as a missing capability: /proc tells the two apart. Returns the
 * error to report: -EBUSY for a group taken. */
static int nfl_bind_failed(struct nfl_state *s, uint16_t group, int rc)
{
	char owner[160];

	if (nfl_group_owner(s, group, owner, sizeof(owner)) == 0) {
		s->host->log(s->node, PP_LOG_ERROR,
			     "group %u is already bound by another process (%s): an NFLOG "
			     "group has one reader per network namespace", group, owner);
		return -EBUSY;
	}
	s->host->log(s->node, PP_LOG_ERROR, "cannot bind group %u: %s", group, strerror(-rc));
	return rc;
}

/* libnfnetlink ends its wait for an acknowledgement at the NLMSG_DONE that
 * closes a kernel batch of several packets, failing with ENOENT (it takes
 * DONE for a message of no subsystem): the acknowledgement is still to
 * come. Wait on for it; an empty socket (EAGAIN) means a real error was
 * the acknowledgement. Each round reads at least one message, and only
 * what was queued before the acknowledgement comes ahead of it: the bound
 * is never reached in practice. */
static int nfl_acked(struct nfl_state *s, int rc)
{
	for (unsigned i = 0; rc < 0 && errno == ENOENT && i < NFL_ACK_ROUNDS; i++)
		rc = nfnl_catch(nflog_nfnlh(s->h));
	return rc < 0 ? -1 : 0;
}

static int nfl_refused(struct nfl_state *s, const struct nfl_group *g, const char *what)
{
	int rc = errno ? -errno : -EIO;

	if (strcmp(what, "nlbufsiz") == 0 && rc == -ERANGE)
		s->host->log(s->node, PP_LOG_ERROR,
			     "group %u: the kernel refused nlbufsiz %" PRIu64 ": it takes one page "
			     "(less its overhead) up to %d bytes", g->num, s->cfg->nlbufsiz,
			     NFL_NLBUFSIZ_KERNEL_MAX);
	else
		s->host->log(s->node, PP_LOG_ERROR, "group %u: the kernel refused %s: %s", g->num,
			     what, strerror(-rc));
	return rc;
}

/* Sequence numbers first: every packet after them is accounted for. */
static int nfl_config_group(struct nfl_state *s, struct nfl_group *g)
{
	const struct nfl_config *c = s->cfg;
	/* 1/100 s, rounded up so that a short timeout is not zero. */
	uint32_t cs = (uint32_t)((c->qtimeout + 9999999u) / 10000000u);

	errno = 0;
	if (nfl_acked(s, nflog_set_flags(g->gh, NFULNL_CFG_F_SEQ | NFULNL_CFG_F_SEQ_GLOBAL)) < 0)
		return nfl_refused(s, g, "sequence numbers");
	if (nfl_acked(s, nflog_set_mode(g->gh, NFULNL_COPY_PACKET, (unsigned)c->copy_range)) < 0)
		return nfl_refused(s, g, "copy_range");
	if (nfl_acked(s, nflog_set_nlbufsiz(g->gh, (uint32_t)c->nlbufsiz)) < 0)
		return nfl_refused(s, g, "nlbufsiz");
	if (nfl_acked(s, nflog_set_timeout(g->gh, cs)) < 0)
		return nfl_refused(s, g, "qtimeout");
	if (nfl_acked(s, nflog_set_qthresh(g->gh, (uint32_t)c->qthreshold)) < 0)
		return nfl_refused(s, g, "qthreshold");
	return 0;
}

static int nfl_bind_group(struct nfl_state *s, struct nfl_group *g)
{
	errno = 0;
	g->gh = nflog_bind_group(s->h, g->num);
	if (g->gh) {
		/* At once: packets flow from the bind on, and libnfnetlink
		 * drops those of a group without a callback. */
		nflog_callback_register(g->gh, nfl_on_packet, g);
		return 0;
	}
	if (errno == ENOENT && nfl_acked(s, -1) == 0) {
		/* Bound, but libnetfilter_log took it for a failure and
		 * dropped its handle; closing the socket unbinds it. */
		s->host->log(s->node, PP_LOG_ERROR,
			     "group %u: a kernel batch of another group (a rule with "
			     "--nflog-threshold) cut into binding it; start again", g->num);
		return -EAGAIN;
	}
	return nfl_bind_failed(s, g->num, errno ? -errno : -EIO);
}

/* All binds first: until qthreshold is raised the kernel sends packets one
 * by one, without the NLMSG_DONE that unsettles libnetfilter_log's binding
 * (see nfl_acked), and qthreshold comes last for each group. */
int nfl_bind_groups(struct nfl_state *s)
{
	int rc = 0;

	for (size_t i = 0; i < s->ngroups && rc == 0; i++)
		rc = nfl_bind_group(s, &s->groups[i]);
	for (size_t i = 0; i < s->ngroups && rc == 0; i++)
		rc = nfl_config_group(s, &s->groups[i]);
	/* nflog_set_nlbufsiz() also set the receive buffer, to ten times
	 * nlbufsiz: ours is the one that counts. */
	if (rc == 0)
		rc = nfl_set_rcvbuf(s, s->cfg->rcvbuf);
	if (rc < 0)
		nfl_unbind_groups(s);
	return rc;
}

static bool nfl_unbind_group(struct nfl_state *s, struct nfl_group *g)
{
	errno = 0;
	if (nflog_unbind_group(g->gh) == 0) {
		g->gh = NULL;
		return true;
	}
	/* Unbound, but libnetfilter_log kept the handle: freed at close. */
	if (errno == ENOENT && nfl_acked(s, -1) == 0) {
		g->unbound = true;
		return true;
	}
	return false;
}

/* Unbinding makes the kernel send what it still batches for a group before
 * it acknowledges, and libnetfilter_log hands that to our callback: once
 * every group is unbound, nothing of ours is left in the kernel. False if
 * some group stays bound (privileges are gone). */
bool nfl_unbind_groups(struct nfl_state *s)
{
	bool all = true;

	for (size_t i = 0; i < s->ngroups; i++) {
		struct nfl_group *g = &s->groups[i];

		if (g->gh && !g->unbound && !nfl_unbind_group(s, g))
			all = false;
	}
	return all;
}

/* Closing the socket ends every binding in the kernel. libnetfilter_log
 * frees a group handle only when the kernel acknowledges its unbinding,
 * which it never does once privileges are gone: the handle is a plain
 * calloc() block of the library's, and nothing refers to it after close. */
void nfl_socket_close(struct nfl_state *s)
{
	if (!s->h)
		return;
	nflog_close(s->h);
	s->h = NULL;
	s->fd = -1;
	for (size_t i = 0; i < s->ngroups; i++) {
		free(s->groups[i].gh);
		s->groups[i].gh = NULL;
	}
}
