/* tap-out: write packets to a Linux TAP interface as Ethernet frames, so
 * that an IDS capturing with AF_PACKET sees them as if from a mirror port.
 *
 * Ethernet packets go out as they are. Raw IP packets get an Ethernet
 * header (configured MACs, EtherType from the IP version nibble); Linux
 * "cooked" captures (SLL, SLL2) get one built from their own header. The
 * header is a few bytes on the stack and writev() joins it to the packet's
 * bytes, so nothing is copied in user space.
 *
 * A write to a TAP fd is handed to the kernel's receive path in the same
 * call; it never waits for a reader. The fd is non-blocking all the same:
 * EAGAIN is a counted drop ("tap-busy"), never a wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/if_tun.h>
#include <net/if.h>

#include <pktpipe/plugin.h>

#define TAP_DEVICE "/dev/net/tun"
#define TAP_ALEN 6 /* Ethernet address */
#define TAP_HLEN 14 /* Ethernet header: dst, src, type */
#define TAP_VLAN_HLEN 4 /* an 802.1Q tag: TPID, TCI */
#define TAP_MAX_LEN 1500 /* largest 802.3 length field; above it is an EtherType */
#define TAP_MIN_TYPE 0x0600 /* smallest EtherType */

#define LT_ETHERNET 1
#define LT_RAW_OLD 12 /* raw IP, as some BSDs numbered it */
#define LT_RAW 101
#define LT_LINUX_SLL 113
#define LT_IPV4 228
#define LT_IPV6 229
#define LT_LINUX_SLL2 276

#define SLL_HLEN 16
#define SLL2_HLEN 20
#define SLL_BROADCAST 1 /* pkttype: sent to the link-layer broadcast address */
#define SLL_802_3 0x0001 /* protocol: Novell 802.3 frame without 802.2 LLC */
#define SLL_802_2 0x0004 /* protocol: 802.2 LLC frame */

struct tap_mac {
	uint8_t b[TAP_ALEN];
};

enum tap_truncated { TAP_TRUNC_WRITE, TAP_TRUNC_DROP };

struct tap_config {
	char *ifname;
	int64_t mtu;
	bool up;
	bool persist;
	bool disable_ipv6;
	struct tap_mac src_mac, dst_mac;
	int64_t vlan;
	int truncated; /* enum tap_truncated */
};

static int tap_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Six hex pairs separated by ':' or '-': 02:00:00:00:00:01. */
static int tap_parse_mac(const char *text, void *dst, char *err, size_t errlen)
{
	struct tap_mac mac;
	const char *p = text;

	for (int i = 0; i < TAP_ALEN; i++, p += 2) {
		if (i && *p != ':' && *p != '-')
			goto bad;
		if (i)
			p++;
		if (tap_hex(p[0]) < 0 || tap_hex(p[1]) < 0)
			goto bad;
		mac.b[i] = (uint8_t)(tap_hex(p[0]) << 4 | tap_hex(p[1]));
	}
	if (*p)
		goto bad;
	memcpy(dst, &mac, sizeof(mac));
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not a MAC address (six hex pairs, as 02:00:00:00:00:01)",
		 text);
	return -EINVAL;
}

static const char *const tap_truncated_names[] = { "write", "drop", NULL };

static const struct pp_option tap_options[] = {
	{ .name = "ifname", .type = PP_OPT_STRING, .default_value = NULL,
	  .offset = offsetof(struct tap_config, ifname),
	  .help = "TAP interface to create, or attach to if it exists (tap%d: numbered)" },
	{ .name = "mtu", .type = PP_OPT_INT, .default_value = "1500", .min = 68, .max = 65521,
	  .offset = offsetof(struct tap_config, mtu),
	  .help = "interface MTU in bytes; longer packets are dropped under 'mtu'" },
	{ .name = "up", .type = PP_OPT_BOOL, .default_value = "yes",
	  .offset = offsetof(struct tap_config, up),
	  .help = "bring the interface up (no: leave its state alone)" },
	{ .name = "persist", .type = PP_OPT_BOOL, .default_value = "no",
	  .offset = offsetof(struct tap_config, persist),
	  .help = "keep the interface after exit (no: an interface we created goes with us)" },
	{ .name = "disable_ipv6", .type = PP_OPT_BOOL, .default_value = "yes",
	  .offset = offsetof(struct tap_config, disable_ipv6),
	  .help = "turn IPv6 off on the interface so the kernel sends nothing of its own there" },
	{ .name = "src_mac", .type = PP_OPT_CUSTOM, .default_value = "02:00:00:00:00:01",
	  .offset = offsetof(struct tap_config, src_mac), .parse = tap_parse_mac,
	  .value_hint = "MAC address",
	  .help = "source address of the Ethernet headers tap-out builds (raw IP, cooked)" },
	{ .name = "dst_mac", .type = PP_OPT_CUSTOM, .default_value = "02:00:00:00:00:02",
	  .offset = offsetof(struct tap_config, dst_mac), .parse = tap_parse_mac,
	  .value_hint = "MAC address",
	  .help = "destination address of the Ethernet headers tap-out builds (raw IP, cooked)" },
	{ .name = "vlan", .type = PP_OPT_INT, .default_value = "0", .min = 0, .max = 4094,
	  .offset = offsetof(struct tap_config, vlan),
	  .help = "tag every frame with this 802.1Q VLAN id; 0 = no tag" },
	{ .name = "truncated", .type = PP_OPT_ENUM, .default_value = "write",
	  .choices = tap_truncated_names, .offset = offsetof(struct tap_config, truncated),
	  .help = "packets captured shorter than they were: write what there is, or drop them" },
	PP_OPTION_END
};

/* Why a packet was not written; TAP_OK: it was. */
enum tap_verdict {
	TAP_OK,
	TAP_FRAME,
	TAP_LINKTYPE,
	TAP_NOT_IP,
	TAP_RUNT,
	TAP_TRUNCATED,
	TAP_MTU,
	TAP_BUSY,
	TAP_DOWN,
	TAP_WRITE_ERROR,
	TAP_NVERDICTS,
};

static const char *const tap_drop_names[TAP_NVERDICTS] = {
	[TAP_FRAME] = "frame",
	[TAP_LINKTYPE] = "linktype",
	[TAP_NOT_IP] = "not-ip",
	[TAP_RUNT] = "runt",
	[TAP_TRUNCATED] = "truncated",
	[TAP_MTU] = "mtu",
	[TAP_BUSY] = "tap-busy",
	[TAP_DOWN] = "link-down",
	[TAP_WRITE_ERROR] = "write-error",
};

struct tap_state {
	struct pp_node *node;
	const struct pp_host *host;
	const struct tap_config *cfg;
	int fd;
	char ifname[IFNAMSIZ]; /* as the kernel named it */
	bool created; /* by us, rather than attached to */
	uint32_t max_len; /* longest frame without VLAN tags: mtu + header */
	pp_counter *drops[TAP_NVERDICTS];
	pp_counter *truncated_written;
	struct pp_log_limit down_limit, error_limit;
};

/* What the kernel accepts as a name (dev_valid_name), and at most one %d. */
static int tap_check_ifname(const char *name, char *err, size_t errlen)
{
	const char *pct = strchr(name, '%');

	if (!name[0] || strlen(name) >= IFNAMSIZ) {
		snprintf(err, errlen, "ifname '%s': 1 to %d characters", name, IFNAMSIZ - 1);
		return -EINVAL;
	}
	if (!strcmp(name, ".") || !strcmp(name, "..") || strpbrk(name, "/: \t") ||
	    (pct && (pct[1] != 'd' || strchr(pct + 1, '%')))) {
		snprintf(err, errlen, "ifname '%s' is not a valid interface name", name);
		return -EINVAL;
	}
	return 0;
}

static int tap_validate(const void *config, char *err, size_t errlen)
{
	const struct tap_config *cfg = config;

	if (cfg->src_mac.b[0] & 1) {
		snprintf(err, errlen, "src_mac must be a unicast address (first octet even)");
		return -EINVAL;
	}
	return tap_check_ifname(cfg->ifname, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Opening: the interface                                               */

static int tap_setiff(struct tap_state *s, int flags)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = (short)flags; /* IFF_TUN_EXCL is the sign bit */
	memcpy(ifr.ifr_name, s->cfg->ifname, strlen(s->cfg->ifname));
	if (ioctl(s->fd, TUNSETIFF, &ifr) < 0)
		return -errno;
	memcpy(s->ifname, ifr.ifr_name, IFNAMSIZ);
	s->ifname[IFNAMSIZ - 1] = '\0';
	return 0;
}

static void tap_attach_error(struct tap_state *s, int rc)
{
	const char *name = s->cfg->ifname, *why;

	if (rc == -EPERM)
		why = "creating or attaching a TAP interface needs CAP_NET_ADMIN";
	else if (rc == -EBUSY)
		why = "it exists and another process has it open";
	else if (rc == -EINVAL)
		why = "it exists and is not a single-queue TAP interface";
	else
		why = strerror(-rc);
	s->host->log(s->node, PP_LOG_ERROR, "cannot create or attach to interface %s: %s", name,
		     why);
}

/* Create the interface, or attach to an existing TAP of that name.
 * IFF_TUN_EXCL makes creation atomic: only EBUSY (it exists) leads to
 * attaching, so we know for sure whether it is ours to remove. */
static int tap_attach(struct tap_state *s)
{
	int rc;

	s->fd = open(TAP_DEVICE, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (s->fd < 0) {
		rc = -errno;
		s->host->log(s->node, PP_LOG_ERROR, "%s: %s%s", TAP_DEVICE, strerror(-rc),
			     rc == -ENOENT ? " (is the tun module loaded?)" : "");
		return rc;
	}
	rc = tap_setiff(s, IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL);
	if (rc == 0) {
		s->created = true;
	} else if (rc == -EBUSY) {
		rc = tap_setiff(s, IFF_TAP | IFF_NO_PI);
	}
	if (rc == 0 && s->cfg->persist && ioctl(s->fd, TUNSETPERSIST, 1) < 0) {
		rc = -errno;
		s->host->log(s->node, PP_LOG_ERROR, "%s: cannot make it persistent: %s", s->ifname,
			     strerror(-rc));
		return rc;
	}
	if (rc < 0)
		tap_attach_error(s, rc);
	return rc;
}

static int tap_ioctl(struct tap_state *s, int sock, unsigned long req, struct ifreq *ifr,
		     const char *what)
{
	int rc;

	memcpy(ifr->ifr_name, s->ifname, IFNAMSIZ);
	if (ioctl(sock, req, ifr) == 0)
		return 0;
	rc = -errno;
	s->host->log(s->node, PP_LOG_ERROR, "%s: cannot %s: %s%s", s->ifname, what, strerror(-rc),
		     rc == -EPERM ? " (needs CAP_NET_ADMIN)" : "");
	return rc;
}

/* Before the link goes up, so that no link-local address, router
 * solicitation or MLD report ever appears among the replayed packets. */
static void tap_disable_ipv6(struct tap_state *s)
{
	char path[128];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", s->ifname);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return; /* a kernel without IPv6 */
	if (fd < 0)
		rc = errno;
	else if (write(fd, "1", 1) != 1)
		rc = errno ? errno : EIO;
	if (fd >= 0)
		close(fd);
	if (rc)
		s->host->log(s->node, PP_LOG_WARNING, "%s: cannot disable IPv6 (%s): %s", s->ifname,
			     strerror(rc), "the kernel may send its own packets there");
}

/* MTU and link state go through an ordinary socket's ioctls. */
static int tap_configure(struct tap_state *s)
{
	struct ifreq ifr;
	int sock, rc;

	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0) {
		rc = -errno;
		s->host->log(s->node, PP_LOG_ERROR, "socket: %s", strerror(-rc));
		return rc;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_mtu = (int)s->cfg->mtu;
	rc = tap_ioctl(s, sock, SIOCSIFMTU, &ifr, "set the MTU");
	if (rc == 0 && s->cfg->disable_ipv6)
		tap_disable_ipv6(s);
	if (rc == 0 && s->cfg->up)
		rc = tap_ioctl(s, sock, SIOCGIFFLAGS, &ifr, "read its flags");
	if (rc == 0 && s->cfg->up && !(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		rc = tap_ioctl(s, sock, SIOCSIFFLAGS, &ifr, "bring it up");
	}
	close(sock);
	return rc;
}

static int tap_counters(struct tap_state *s)
{
	for (int v = TAP_OK + 1; v < TAP_NVERDICTS; v++) {
		s->drops[v] = s->host->drop_reason(s->node, tap_drop_names[v]);
		if (!s->drops[v])
			return -ENOMEM;
	}
	s->truncated_written = s->host->counter(s->node, "truncated_written", PP_COUNTER_TOTAL);
	return s->truncated_written ? 0 : -ENOMEM;
}

static int tap_open(struct pp_node *node, const struct pp_host *host, const void *config,
		    void **state)
{
	struct tap_state *s;
	int rc = -ENOMEM;

	s = calloc(1, sizeof(*s));
	if (!s)
		return rc;
	*s = (struct tap_state){ .node = node, .host = host, .cfg = config, .fd = -1 };
	s->max_len = (uint32_t)s->cfg->mtu + TAP_HLEN;
	rc = tap_counters(s);
	if (rc == 0)
		rc = tap_attach(s);
	if (rc == 0)
		rc = tap_configure(s);
	if (rc < 0)
		goto err;
	host->log(node, PP_LOG_INFO, "%s TAP interface %s (mtu %lld%s%s)",
		  s->created ? "created" : "attached to", s->ifname, (long long)s->cfg->mtu,
		  s->cfg->up ? ", up" : "", s->cfg->persist ? ", persistent" : "");
	*state = s;
	return 0;
err:
	/* Closing the fd removes an interface we created, once not persistent. */
	if (s->created && s->cfg->persist)
		ioctl(s->fd, TUNSETPERSIST, 0);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */

/* One frame as writev() pieces: our header bytes and the packet's. */
struct tap_frame {
	uint8_t head[TAP_HLEN + TAP_VLAN_HLEN];
	struct iovec iov[3];
	int iovcnt;
	unsigned tags; /* VLAN tags, each allowed beyond the MTU */
};

static void tap_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t tap_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void tap_piece(struct tap_frame *f, const void *data, size_t len)
{
	f->iov[f->iovcnt++] = (struct iovec){ .iov_base = (void *)data, .iov_len = len };
}

/* Our 802.1Q tag, at p. */
static size_t tap_put_tag(const struct tap_state *s, struct tap_frame *f, uint8_t *p)
{
	if (!s->cfg->vlan)
		return 0;
	tap_put16(p, 0x8100);
	tap_put16(p + 2, (uint16_t)s->cfg->vlan);
	f->tags++;
	return TAP_VLAN_HLEN;
}

/* The header given to a packet that has none: dst, src, [tag], type. */
static void tap_put_head(const struct tap_state *s, struct tap_frame *f, const uint8_t *dst,
			 const uint8_t *src, uint16_t type)
{
	size_t len = 2 * TAP_ALEN;

	memcpy(f->head, dst, TAP_ALEN);
	memcpy(f->head + TAP_ALEN, src, TAP_ALEN);
	len += tap_put_tag(s, f, f->head + len);
	tap_put16(f->head + len, type);
	tap_piece(f, f->head, len + 2);
}

/* As it is; our tag, if any, goes in front of the frame's own type. */
static int tap_ether(const struct tap_state *s, const struct pp_packet *p, struct tap_frame *f)
{
	const uint8_t *d = p->data;
	size_t tag;
	uint16_t type;

	if (p->caplen < TAP_HLEN)
		return TAP_RUNT;
	type = tap_get16(d + 2 * TAP_ALEN);
	if (type == 0x8100 || type == 0x88a8)
		f->tags++;
	tag = tap_put_tag(s, f, f->head);
	if (!tag) {
		tap_piece(f, d, p->caplen);
		return TAP_OK;
	}
	tap_piece(f, d, 2 * TAP_ALEN);
	tap_piece(f, f->head, tag);
	tap_piece(f, d + 2 * TAP_ALEN, p->caplen - 2 * TAP_ALEN);
	return TAP_OK;
}

/* The IP version nibble decides, whatever the linktype claims (228 and
 * 229 say which version to expect, but the packet knows better). */
static int tap_raw(const struct tap_state *s, const struct pp_packet *p, struct tap_frame *f)
{
	uint16_t type;

	if (!p->caplen)
		return TAP_NOT_IP;
	if (p->data[0] >> 4 == 4)
		type = 0x0800;
	else if (p->data[0] >> 4 == 6)
		type = 0x86dd;
	else
		return TAP_NOT_IP;
	tap_put_head(s, f, s->cfg->dst_mac.b, s->cfg->src_mac.b, type);
	tap_piece(f, p->data, p->caplen);
	return TAP_OK;
}

/* The fields of a LINUX_SLL or LINUX_SLL2 header that an Ethernet header
 * can use. */
struct tap_cooked {
	size_t hlen;
	uint16_t proto;
	uint8_t pkttype, halen;
	const uint8_t *addr;
};

static int tap_cooked_fields(const struct pp_packet *p, struct tap_cooked *c)
{
	const uint8_t *d = p->data;

	if (p->linktype == LT_LINUX_SLL) {
		if (p->caplen < SLL_HLEN)
			return TAP_RUNT;
		*c = (struct tap_cooked){ .hlen = SLL_HLEN, .proto = tap_get16(d + 14),
					  .pkttype = (uint8_t)tap_get16(d),
					  .halen = (uint8_t)tap_get16(d + 4), .addr = d + 6 };
		return TAP_OK;
	}
	if (p->caplen < SLL2_HLEN)
		return TAP_RUNT;
	*c = (struct tap_cooked){ .hlen = SLL2_HLEN, .proto = tap_get16(d), .pkttype = d[10],
				  .halen = d[11], .addr = d + 12 };
	return TAP_OK;
}

/* The sender's address when it is a MAC; broadcast when it was sent so;
 * else the configured addresses. 802.2/802.3 frames get a length field. */
static int tap_cooked(const struct tap_state *s, const struct pp_packet *p, struct tap_frame *f)
{
	static const uint8_t bcast[TAP_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct tap_cooked c;
	uint32_t len;
	int rc;

	rc = tap_cooked_fields(p, &c);
	if (rc != TAP_OK)
		return rc;
	len = p->origlen > c.hlen ? p->origlen - (uint32_t)c.hlen : 0;
	if (c.proto < TAP_MIN_TYPE) {
		if ((c.proto != SLL_802_3 && c.proto != SLL_802_2) || len > TAP_MAX_LEN)
			return TAP_LINKTYPE;
		c.proto = (uint16_t)len;
	}
	tap_put_head(s, f, c.pkttype == SLL_BROADCAST ? bcast : s->cfg->dst_mac.b,
		     c.halen == TAP_ALEN ? c.addr : s->cfg->src_mac.b, c.proto);
	tap_piece(f, p->data + c.hlen, p->caplen - c.hlen);
	return TAP_OK;
}

static int tap_shape(const struct tap_state *s, const struct pp_packet *p, struct tap_frame *f)
{
	switch (p->linktype) {
	case LT_ETHERNET:
		return tap_ether(s, p, f);
	case LT_RAW:
	case LT_RAW_OLD:
	case LT_IPV4:
	case LT_IPV6:
		return tap_raw(s, p, f);
	case LT_LINUX_SLL:
	case LT_LINUX_SLL2:
		return tap_cooked(s, p, f);
	case PP_LINKTYPE_FRAME:
		return TAP_FRAME;
	default:
		return TAP_LINKTYPE;
	}
}

/* The frame to write for p, or why there is none. */
static int tap_build(const struct tap_state *s, const struct pp_packet *p, struct tap_frame *f)
{
	size_t len = 0;
	int rc;

	f->iovcnt = 0;
	f->tags = 0;
	rc = tap_shape(s, p, f);
	if (rc != TAP_OK)
		return rc;
	if (p->caplen < p->origlen && s->cfg->truncated == TAP_TRUNC_DROP)
		return TAP_TRUNCATED;
	for (int i = 0; i < f->iovcnt; i++)
		len += f->iov[i].iov_len;
	if (len > s->max_len + TAP_VLAN_HLEN * f->tags)
		return TAP_MTU;
	return TAP_OK;
}

static int tap_write(struct tap_state *s, const struct tap_frame *f)
{
	ssize_t n;

	do
		n = writev(s->fd, f->iov, f->iovcnt);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		return TAP_OK;
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		return TAP_BUSY;
	if (errno == EIO) {
		s->host->log_limited(s->node, &s->down_limit, PP_LOG_WARNING,
				     "%s is down: dropping packets", s->ifname);
		return TAP_DOWN;
	}
	s->host->log_limited(s->node, &s->error_limit, PP_LOG_WARNING, "writing to %s: %s",
			     s->ifname, strerror(errno));
	return TAP_WRITE_ERROR;
}

static int tap_process(void *state, struct pp_batch *b)
{
	struct tap_state *s = state;
	uint64_t packets = 0, bytes = 0, truncated = 0;
	struct tap_frame f;

	for (uint32_t i = 0; i < b->count; i++) {
		const struct pp_packet *p = b->pkts[i];
		int v = tap_build(s, p, &f);

		if (v == TAP_OK)
			v = tap_write(s, &f);
		if (v != TAP_OK) {
			pp_counter_add(s->drops[v], p->count);
			continue;
		}
		packets += p->count;
		bytes += p->caplen;
		truncated += p->caplen < p->origlen;
	}
	if (truncated)
		pp_counter_add(s->truncated_written, truncated);
	s->host->delivered(s->node, packets, bytes);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Closing                                                              */

/* Writes are done when they return: nothing is pending at stop. Closing
 * the last fd of an interface we created, not persistent, removes it. */
static void tap_close(void *state)
{
	struct tap_state *s = state;

	close(s->fd);
	if (s->created && !s->cfg->persist)
		s->host->log(s->node, PP_LOG_INFO, "removed TAP interface %s", s->ifname);
	free(s);
}

PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "tap-out",
	.summary = "write packets as Ethernet frames to a TAP interface, for AF_PACKET IDSes",
	.roles = PP_ROLE_SINK,
	.options = tap_options,
	.config_size = sizeof(struct tap_config),
	.validate = tap_validate,
	.open = tap_open,
	.process = tap_process,
	.close = tap_close,
};
