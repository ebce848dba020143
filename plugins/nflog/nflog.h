/* nflog: what the files of the plugin share.
 *
 *   nflog.c    options, lifecycle, the read loop
 *   packet.c   one logged packet: sequence accounting, metadata, batching
 *   socket.c   the netlink socket: groups, buffers, who owns a busy group
 *   privs.c    user and group lookup, dropping privileges
 */
#ifndef PKTPIPE_NFLOG_H
#define PKTPIPE_NFLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <libnfnetlink/libnfnetlink.h>
#include <libnetfilter_log/libnetfilter_log.h>

#include <pktpipe/plugin.h>

#include "outq.h"

#define NFL_LINKTYPE_RAW 101 /* LINKTYPE_RAW: the packet from its IP header */
#define NFL_LINKTYPE_NFLOG 239 /* LINKTYPE_NFLOG: nfgenmsg + TLVs, as the kernel sent it */

/* The kernel refuses a larger nlbufsiz (nfulnl_set_nlbufsiz). */
#define NFL_NLBUFSIZ_KERNEL_MAX 131072

/* One recv() never returns more than one kernel skb. With nlbufsiz at its
 * maximum the kernel's allocation rounds up to 256 KiB and it fills all of
 * it, so twice that leaves room; MSG_TRUNC still catches the impossible. */
#define NFL_RXBUF (512u * 1024u)

enum nfl_linktype { NFL_RAW, NFL_NFLOG };

struct nfl_config {
	struct pp_list groups;
	uint64_t copy_range;
	uint64_t nlbufsiz;
	int64_t qthreshold;
	uint64_t qtimeout; /* ns; the kernel takes 1/100 s */
	uint64_t rcvbuf;
	uint64_t rcvbuf_max;
	char *user;
	char *group;
	int linktype; /* enum nfl_linktype */
};

/* Who to become after binding; set is false when neither key is given. */
struct nfl_ids {
	bool set, change_uid;
	uid_t uid;
	gid_t gid;
};

struct nfl_state;

struct nfl_group {
	struct nfl_state *s;
	uint16_t num;
	uint32_t next_seq; /* the kernel numbers from 0 per bound group */
	struct nflog_g_handle *gh; /* NULL once unbound */
	bool unbound; /* ... or this, when libnetfilter_log kept the handle */
};

struct nfl_state {
	struct pp_node *node;
	const struct pp_host *host;
	const struct nfl_config *cfg;
	struct pp_stats *stats;
	pp_counter *drop_kernel, *drop_nomem, *drop_not_ip;
	pp_counter *overflows, *rcvbuf_gauge, *unseen;
	struct pp_log_limit nomem_limit, not_ip_limit, overflow_limit;
	struct pp_log_limit seq_limit, read_limit;

	struct nflog_handle *h;
	int fd;
	struct pp_watch *watch;
	struct pp_timer *timer; /* stop(): waiting for the kernel's last batch */
	struct nfl_group *groups; /* sorted by num */
	size_t ngroups;
	struct nfl_ids ids;
	bool privileged; /* may still configure the kernel (CAP_NET_ADMIN) */
	uint64_t rcvbuf; /* requested; the kernel reports twice this */
	bool rcvbuf_capped; /* it stopped growing: net.core.rmem_max */
	uint32_t drops_seen; /* the socket's dropped messages when a gap last showed */

	bool final, done; /* final: stopping, the kernel's last batch is in */
	bool held_back; /* not reading until a full queue ahead drains */
	uint64_t final_budget; /* bytes still worth reading once final */
	uint64_t rx_ns; /* receive time of the message being handled; 0: take it now */
	uint32_t turn_packets;

	uint8_t *buf;
	struct outq out; /* the packets of this turn, handed on by 256 */
};

/* packet.c */
int nfl_on_packet(struct nflog_g_handle *gh, struct nfgenmsg *nfmsg, struct nflog_data *nfd,
		  void *data);

/* socket.c */
void nfl_size_text(uint64_t bytes, char *buf, size_t len); /* "8MiB", "416KiB", "1000 bytes" */
int nfl_socket_open(struct nfl_state *s);
int nfl_set_rcvbuf(struct nfl_state *s, uint64_t bytes);
void nfl_grow_rcvbuf(struct nfl_state *s, const char *why, char *note, size_t notelen);
void nfl_watch_rcvbuf(struct nfl_state *s); /* grows it when half full */
void nfl_overflowed(struct nfl_state *s, const char *what); /* a gap: count, grow, log */
/* Messages the kernel could not queue on the socket so far (0: unknown). */
uint32_t nfl_socket_drops(const struct nfl_state *s);
int nfl_bind_groups(struct nfl_state *s);
bool nfl_unbind_groups(struct nfl_state *s);
void nfl_socket_close(struct nfl_state *s);

/* privs.c */
int nfl_ids_resolve(const char *user, const char *group, struct nfl_ids *ids, char *err,
		    size_t errlen);
int nfl_drop_privileges(const struct nfl_ids *ids, char *err, size_t errlen);

#endif
