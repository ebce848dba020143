/* zmq-out: send packets over ZeroMQ (PUSH or PUB), as native frames that
 * batch many packets per message, or in the legacy formats of
 * nflog-zmq-pcap-pipe (one message per packet).
 *
 * Nothing here ever waits for the network: every send is ZMQ_DONTWAIT, and
 * a message libzmq will not queue (sndhwm reached: the peer is slow or
 * away) is dropped and counted under "hwm". libzmq reconnects by itself.
 * With wait = yes the node instead tells the host it is busy once
 * libzmq's queue is full (host->set_busy), so that the sources that can
 * wait pause until it has room again.
 *
 * Sharding (shard = flow or addresses): one socket, with its own context,
 * per endpoint, and a symmetric flow hash (flowhash.c) picks each packet's
 * endpoint, so every flow lands whole on one receiver. Each endpoint has
 * its own pending batch, sequence and sndhwm: one that is down fills its
 * own queue and drops its own share while the others flow. A socket
 * monitor counts each endpoint's connections; one without any for
 * dead_after is dead, and with failover its flows go to the living ones.
 *
 * A CurveZMQ client (curve_server_key) monitors its sockets too, for the
 * handshakes that fail: a server that refuses our key answers with an
 * error, libzmq stops trying and only queues, and without a line here the
 * sender would look healthy while nothing arrives.
 *
 * Accounting: packets waiting in pending batches (encoded already, the
 * packets themselves not kept) are packets_held; a
 * packet counts as delivered once libzmq has taken its message. What libzmq
 * still holds when the linger ends is lost without a count here; a native
 * receiver counts it as a sequence gap.
 *
 * Stopping: the pending batches are sent, the sockets closed with
 * ZMQ_LINGER = linger, and the contexts terminated on a helper thread,
 * since zmq_ctx_term() blocks until the linger ends (the sockets linger
 * side by side, so that is one linger, not one per endpoint); an eventfd
 * tells the loop when it is done, and then the node reports itself
 * finished.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <zmq.h>

#include <pktpipe/plugin.h>
#include <pktpipe/wire.h>

#include "flowhash.h"
#include "framer.h"
#include "zsock.h"

#define ZOUT_NS_PER_MS 1000000u
#define ZOUT_MON_ENDPOINT "inproc://pktpipe-zmq-out-monitor" /* one per context */
#define ZOUT_MON_SHARD_EVENTS (ZMQ_EVENT_CONNECTED | ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED)
#define ZOUT_MON_CURVE_EVENTS                                                          \
	(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | \
	 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
#define ZOUT_MON_EVENT_LEN 6 /* u16 event, u32 value, in host byte order */
#define ZOUT_MON_ADDRESS 128 /* of the peer, as logged; longer ones are cut */
#define ZOUT_MON_PER_TURN 64
#define ZOUT_COUNTER_NAME 32
/* wait = yes: messages an endpoint keeps while libzmq takes no more. The
 * sources pause once it is full, so what still comes is the rest of one
 * input batch: at most a message per packet. */
#define ZOUT_HOLD_MAX PP_BATCH_MAX

enum zout_socket { ZOUT_PUSH, ZOUT_PUB };
enum zout_wire { ZOUT_NATIVE, ZOUT_LEGACY, ZOUT_LEGACY_RC };
enum zout_shard { ZOUT_SHARD_NONE, ZOUT_SHARD_FLOW, ZOUT_SHARD_ADDRESSES };

struct zout_config {
	struct pp_list endpoint;
	bool bind;
	int socket; /* enum zout_socket */
	int shard; /* enum zout_shard */
	bool failover;
	uint64_t dead_after; /* ns */
	int64_t sndhwm;
	bool wait;
	int wire; /* enum zout_wire */
	int64_t batch_packets;
	uint64_t batch_bytes;
	uint64_t batch_delay; /* ns */
	uint64_t linger; /* ns */
	struct zsock_curve curve;
};

static const char *const zout_sockets[] = { "push", "pub", NULL };
static const char *const zout_wires[] = { "native", "legacy", "legacy-rc", NULL };
static const char *const zout_shards[] = { "none", "flow", "addresses", NULL };

static const struct pp_option zout_options[] = {
	{ .name = "endpoint", .type = PP_OPT_LIST, .item_type = PP_OPT_ENDPOINT,
	  .default_value = NULL, .max_items = 64, .offset = offsetof(struct zout_config, endpoint),
	  .help = "where to send: one or more zmq endpoints (tcp://host:port, ipc://path)." },
	{ .name = "bind", .type = PP_OPT_BOOL, .default_value = "no",
	  .offset = offsetof(struct zout_config, bind),
	  .help = "bind the endpoints instead of connecting to them" },
	{ .name = "socket", .type = PP_OPT_ENUM, .default_value = "push", .choices = zout_sockets,
	  .offset = offsetof(struct zout_config, socket),
	  .help = "push: one receiver gets each message; pub: every subscriber gets all" },
	{ .name = "shard", .type = PP_OPT_ENUM, .default_value = "none", .choices = zout_shards,
	  .offset = offsetof(struct zout_config, shard),
	  .help = "none: libzmq deals messages over the endpoints; flow: a socket per endpoint, and "
		  "each flow (both directions) to one of them by a symmetric hash of addresses, "
		  "protocol and ports; addresses: the same by the address pair alone" },
	{ .name = "failover", .type = PP_OPT_BOOL, .default_value = "no",
	  .offset = offsetof(struct zout_config, failover),
	  .help = "shard: send the flows of a dead endpoint to the living ones until it is back "
		  "(such flows are split between receivers)" },
	{ .name = "dead_after", .type = PP_OPT_DURATION, .default_value = "2s", .min = 0,
	  .max = 3600000000000ll, .offset = offsetof(struct zout_config, dead_after),
	  .help = "shard: an endpoint without a connection this long is dead; connected again "
		  "this long, it is alive" },
	{ .name = "sndhwm", .type = PP_OPT_INT, .default_value = "1000", .min = 1,
	  .max = 100000000, .offset = offsetof(struct zout_config, sndhwm),
	  .help = "messages queued (per endpoint with shard) while the peer is slow or away; beyond "
		  "it packets are dropped (hwm)" },
	{ .name = "wait", .type = PP_OPT_BOOL, .default_value = "no",
	  .offset = offsetof(struct zout_config, wait),
	  .help = "at sndhwm, hold back the sources that can wait (pcap-in, zmq-in, nflog) until "
		  "libzmq takes more, instead of dropping (hwm); a peer that is away then holds them "
		  "back too" },
	{ .name = "wire", .type = PP_OPT_ENUM, .default_value = "native", .choices = zout_wires,
	  .offset = offsetof(struct zout_config, wire),
	  .help = "native frames, or nflog-zmq-pcap-pipe's legacy or legacy-rc (raw IP only)" },
	{ .name = "batch_packets", .type = PP_OPT_INT, .default_value = "1024", .min = 1,
	  .max = 65536, .offset = offsetof(struct zout_config, batch_packets),
	  .help = "native: most packets per message" },
	{ .name = "batch_bytes", .type = PP_OPT_SIZE, .default_value = "1MiB", .min = 64,
	  .max = 256ll << 20, .offset = offsetof(struct zout_config, batch_bytes),
	  .help = "native: most bytes per message (a larger packet goes alone); keep it below the receivers' max_message" },
	{ .name = "batch_delay", .type = PP_OPT_DURATION, .default_value = "1ms", .min = 0,
	  .max = 10000000000ll, .offset = offsetof(struct zout_config, batch_delay),
	  .help = "native: a message leaves at most this long after its first packet; 0 = with each input batch" },
	{ .name = "linger", .type = PP_OPT_DURATION, .default_value = "2s", .min = 0,
	  .max = 3600000000000ll, .offset = offsetof(struct zout_config, linger),
	  .help = "on exit, how long libzmq may keep sending what it queued; the stop as a whole "
		  "is bounded by --drain-timeout (default 5s), and a run still lingering then exits 1" },
	{ .name = "curve_secret_key", .type = PP_OPT_PATH, .default_value = "",
	  .offset = offsetof(struct zout_config, curve.secret_key),
	  .help = "CurveZMQ: this node's secret key file (Z85, mode 0600); enables encryption" },
	{ .name = "curve_server_key", .type = PP_OPT_STRING, .default_value = "",
	  .offset = offsetof(struct zout_config, curve.server_key),
	  .help = "CurveZMQ client: the server's public key (Z85)" },
	{ .name = "curve_allow", .type = PP_OPT_LIST, .item_type = PP_OPT_STRING,
	  .default_value = "", .offset = offsetof(struct zout_config, curve.allow),
	  .help = "CurveZMQ server: the client public keys (Z85) admitted; others get nothing" },
	PP_OPTION_END
};

struct zout;

struct zout_held {
	zmq_msg_t msg;
	uint64_t packets, bytes;
};

/* One socket: every endpoint without sharding, one endpoint with. */
struct zout_ep {
	struct zout *s;
	uint32_t index;
	char *label; /* "" without sharding, else "ep1 (tcp://...): ", for logs */
	struct zsock z;
	struct pp_log_limit hwm_limit, handshake_limit;
	/* Native: the frame being gathered, its records encoded into buf (after
	 * room for the header) as packets come, so that none is kept; the
	 * flush hands buf to libzmq, which frees it once sent. */
	struct wire_header head; /* sender, flags; seq of the next frame */
	uint8_t *buf; /* NULL between frames */
	size_t cap; /* of buf */
	size_t last_len; /* the previous frame's length: buf's first size */
	uint32_t npending;
	size_t pending_len; /* bytes of its records */
	uint64_t pending_bytes; /* caplen of its packets, for delivered() */
	struct pp_timer *timer;
	/* wait = yes (with a host that has set_busy; else hold is NULL):
	 * libzmq takes no more or messages wait in the hold (full), the watch
	 * of ZMQ_FD that tells when it takes more, and the hold: a ring of
	 * messages, in order, sent before any new one. */
	bool full;
	struct pp_watch *room_watch;
	struct zout_held *hold;
	uint32_t hold_head, hold_count;
	/* Sharding or a CurveZMQ client: the socket monitor; sharding: the
	 * timer that judges life. */
	void *mon;
	struct pp_watch *mon_watch;
	struct pp_timer *mon_timer, *judge_timer;
	uint32_t connections;
	/* Sharding: this endpoint's counters (NULL without). */
	pp_counter *packets_sent, *frames_sent, *bytes_sent, *dropped_hwm, *failed_over;
	pp_counter *connections_gauge, *dead_gauge;
};

struct zout {
	struct pp_node *node;
	const struct pp_host *host;
	const struct zout_config *cfg;
	struct pp_stats *stats;
	pp_counter *drop_hwm, *drop_error, *drop_nomem, *drop_frame, *drop_linktype;
	pp_counter *drop_stopped;
	pp_counter *packets_sent, *frames_sent, *bytes_sent;
	pp_counter *flow_not_ip, *flow_partial; /* sharding only */
	struct pp_log_limit error_limit, nomem_limit, frame_limit, linktype_limit;
	struct zout_ep *eps;
	uint32_t neps;
	bool *dead; /* per endpoint: no connection for dead_after */
	uint64_t held; /* packets in pending batches */
	uint32_t nfull; /* endpoints that are full: the node is busy */
	bool stopping; /* stop() waits for the holds to empty */
	/* Stopping: the thread that waits out the linger. */
	pthread_t term_thread;
	bool term_running;
	int term_fd;
	struct pp_watch *term_watch;
};

static int zout_validate(const void *config, char *err, size_t errlen)
{
	const struct zout_config *cfg = config;

	if (cfg->wait && cfg->socket != ZOUT_PUSH) {
		snprintf(err, errlen, "wait = yes needs socket = push: a pub socket drops at its "
				      "sndhwm by itself and never says it is full");
		return -EINVAL;
	}
	if (cfg->failover && cfg->wait) {
		snprintf(err, errlen, "wait = yes would hold the sources back for a dead endpoint, "
				      "which failover is there to route around");
		return -EINVAL;
	}
	if (cfg->failover && cfg->shard == ZOUT_SHARD_NONE) {
		snprintf(err, errlen, "failover moves flows between endpoints: it needs shard = flow "
				      "or addresses");
		return -EINVAL;
	}
	return zsock_curve_validate(&cfg->curve, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Opening                                                              */

static int zout_counters(struct zout *s)
{
	const struct pp_host *h = s->host;

	s->stats = h->stats(s->node);
	s->drop_hwm = h->drop_reason(s->node, "hwm");
	s->drop_error = h->drop_reason(s->node, "error");
	s->drop_nomem = h->drop_reason(s->node, "nomem");
	s->drop_frame = h->drop_reason(s->node, "frame");
	s->drop_linktype = h->drop_reason(s->node, "linktype");
	s->drop_stopped = h->drop_reason(s->node, "stopped");
	s->packets_sent = h->counter(s->node, "packets_sent", PP_COUNTER_TOTAL);
	s->frames_sent = h->counter(s->node, "frames_sent", PP_COUNTER_TOTAL);
	s->bytes_sent = h->counter(s->node, "bytes_sent", PP_COUNTER_TOTAL);
	if (!s->drop_hwm || !s->drop_error || !s->drop_nomem || !s->drop_frame ||
	    !s->drop_linktype || !s->drop_stopped || !s->packets_sent || !s->frames_sent ||
	    !s->bytes_sent)
		return -ENOMEM;
	if (s->cfg->shard == ZOUT_SHARD_NONE)
		return 0;
	s->flow_not_ip = h->counter(s->node, "flow_not_ip", PP_COUNTER_TOTAL);
	s->flow_partial = h->counter(s->node, "flow_partial", PP_COUNTER_TOTAL);
	return s->flow_not_ip && s->flow_partial ? 0 : -ENOMEM;
}

/* "ep1.packets_sent" and the like. */
static pp_counter *zout_ep_counter(struct zout_ep *e, const char *what, enum pp_counter_kind kind)
{
	char name[ZOUT_COUNTER_NAME];

	snprintf(name, sizeof(name), "ep%u.%s", e->index, what);
	return e->s->host->counter(e->s->node, name, kind);
}

static int zout_ep_counters(struct zout_ep *e)
{
	e->packets_sent = zout_ep_counter(e, "packets_sent", PP_COUNTER_TOTAL);
	e->frames_sent = zout_ep_counter(e, "frames_sent", PP_COUNTER_TOTAL);
	e->bytes_sent = zout_ep_counter(e, "bytes_sent", PP_COUNTER_TOTAL);
	e->dropped_hwm = zout_ep_counter(e, "dropped_hwm", PP_COUNTER_TOTAL);
	e->failed_over = zout_ep_counter(e, "failed_over", PP_COUNTER_TOTAL);
	e->connections_gauge = zout_ep_counter(e, "connections", PP_COUNTER_GAUGE);
	e->dead_gauge = zout_ep_counter(e, "dead", PP_COUNTER_GAUGE);
	if (!e->packets_sent || !e->frames_sent || !e->bytes_sent || !e->dropped_hwm ||
	    !e->failed_over || !e->connections_gauge || !e->dead_gauge)
		return -ENOMEM;
	return 0;
}

/* Sequence numbers promise gap = loss only when every message reaches the
 * one receiver: PUB copies each to all, PUSH connecting to one endpoint
 * has one peer (so has each socket of a sharding node). PUSH to several
 * spreads messages among them. */
static uint16_t zout_flags(const struct zout_config *cfg)
{
	if (cfg->socket == ZOUT_PUB ||
	    (!cfg->bind && (cfg->shard != ZOUT_SHARD_NONE || cfg->endpoint.count == 1)))
		return PP_WIRE_FLAG_SEQ;
	return 0;
}

static int zout_zfail(struct zout_ep *e, const char *what)
{
	int rc = -zmq_errno();

	e->s->host->log(e->s->node, PP_LOG_ERROR, "%s%s: %s", e->label, what, zmq_strerror(-rc));
	return rc ? rc : -EIO;
}

/* Watch the socket's events (ZMQ_EVENT_*), from before it connects. */
static int zout_monitor_open(struct zout_ep *e, int events)
{
	int zero = 0;

	if (zmq_socket_monitor(e->z.sock, ZOUT_MON_ENDPOINT, events) != 0)
		return zout_zfail(e, "cannot monitor the socket");
	e->mon = zmq_socket(e->z.ctx, ZMQ_PAIR);
	if (!e->mon)
		return zout_zfail(e, "cannot create the monitor socket");
	zmq_setsockopt(e->mon, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_connect(e->mon, ZOUT_MON_ENDPOINT) != 0)
		return zout_zfail(e, "cannot connect the monitor socket");
	return 0;
}

/* Idempotent; host calls only those close() may make. */
static void zout_monitor_close(struct zout_ep *e)
{
	const struct pp_host *h = e->s->host;

	if (e->mon_watch)
		h->unwatch(e->mon_watch);
	if (e->mon_timer)
		h->timer_free(e->mon_timer);
	if (e->judge_timer)
		h->timer_free(e->judge_timer);
	e->mon_watch = NULL;
	e->mon_timer = e->judge_timer = NULL;
	if (e->mon && e->z.sock)
		zmq_socket_monitor(e->z.sock, NULL, 0);
	if (e->mon)
		zmq_close(e->mon);
	e->mon = NULL;
}

static int zout_ep_socket(struct zout_ep *e)
{
	const struct zout_config *cfg = e->s->cfg;
	struct pp_list one = { .count = 1, .str = &cfg->endpoint.str[e->index] };
	bool shard = cfg->shard != ZOUT_SHARD_NONE;
	int events = (shard ? ZOUT_MON_SHARD_EVENTS : 0) |
		     (cfg->curve.server_key ? ZOUT_MON_CURVE_EVENTS : 0);
	int rc;

	rc = zsock_init(&e->z, e->s->node, e->s->host, cfg->socket == ZOUT_PUB ? ZMQ_PUB : ZMQ_PUSH);
	if (rc < 0)
		return rc;
	rc = zsock_set(&e->z, ZMQ_SNDHWM, (int)cfg->sndhwm, "sndhwm");
	if (rc == 0)
		rc = zsock_curve(&e->z, &cfg->curve);
	if (rc == 0 && events)
		rc = zout_monitor_open(e, events);
	if (rc == 0)
		rc = zsock_attach(&e->z, shard ? &one : &cfg->endpoint, cfg->bind);
	if (rc < 0) {
		zout_monitor_close(e);
		zsock_term(&e->z);
	}
	return rc;
}

static char *zout_label(const struct zout_config *cfg, uint32_t i)
{
	size_t len;
	char *label;

	if (cfg->shard == ZOUT_SHARD_NONE)
		return strdup("");
	len = strlen(cfg->endpoint.str[i]) + 32;
	label = malloc(len);
	if (label)
		snprintf(label, len, "ep%u (%s): ", i, cfg->endpoint.str[i]);
	return label;
}

static void zout_batch_due(void *arg);

/* Everything an endpoint needs but its socket; undone by zout_ep_free. */
static int zout_ep_init(struct zout *s, struct zout_ep *e, uint32_t i)
{
	bool waits = s->cfg->wait && PP_HOST_HAS(s->host, set_busy);

	*e = (struct zout_ep){ .s = s, .index = i };
	e->head = (struct wire_header){ .sender = frame_sender_id(s->host),
					.flags = zout_flags(s->cfg) };
	e->label = zout_label(s->cfg, i);
	e->timer = s->host->timer_new(s->node, zout_batch_due, e);
	if (waits)
		e->hold = calloc(ZOUT_HOLD_MAX, sizeof(*e->hold));
	if (!e->label || !e->timer || (waits && !e->hold))
		return -ENOMEM;
	return s->cfg->shard == ZOUT_SHARD_NONE ? 0 : zout_ep_counters(e);
}

/* Release an endpoint whose socket is closed or was never made. */
static void zout_ep_free(struct zout_ep *e)
{
	if (e->timer)
		e->s->host->timer_free(e->timer);
	e->timer = NULL;
	free(e->buf);
	e->buf = NULL;
	free(e->hold);
	e->hold = NULL;
	free(e->label);
}

static int zout_eps_open(struct zout *s)
{
	uint32_t i;
	int rc = -ENOMEM;

	s->neps = s->cfg->shard == ZOUT_SHARD_NONE ? 1 : (uint32_t)s->cfg->endpoint.count;
	s->eps = calloc(s->neps, sizeof(*s->eps));
	s->dead = calloc(s->neps, sizeof(*s->dead));
	if (!s->eps || !s->dead)
		return -ENOMEM;
	for (i = 0; i < s->neps; i++) {
		rc = zout_ep_init(s, &s->eps[i], i);
		if (rc == 0)
			rc = zout_ep_socket(&s->eps[i]);
		if (rc < 0) {
			zout_ep_free(&s->eps[i]);
			break;
		}
	}
	if (rc == 0)
		return 0;
	while (i-- > 0) {
		zout_monitor_close(&s->eps[i]);
		zsock_term(&s->eps[i].z);
		zout_ep_free(&s->eps[i]);
	}
	return rc;
}

static int zout_open(struct pp_node *node, const struct pp_host *host, const void *config,
		     void **state)
{
	const struct zout_config *cfg = config;
	struct zout *s;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct zout){ .node = node, .host = host, .cfg = cfg, .term_fd = -1 };
	rc = zout_counters(s);
	if (rc == 0)
		rc = zout_eps_open(s);
	if (rc < 0) {
		free(s->eps);
		free(s->dead);
		free(s);
		return rc;
	}
	*state = s;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Starting: the monitors                                               */

/* A CurveZMQ handshake failed. A server that refuses our key says so (a
 * ZAP status, 400), and libzmq gives up on it for good. One with another
 * key than curve_server_key cannot read our hello and hangs up (no detail,
 * an errno), again at each reconnection; so may a peer that is not a
 * CurveZMQ server, or one that restarts mid-handshake (a protocol error). */
static void zout_handshake_failed(struct zout_ep *e, uint16_t event, uint32_t value,
				  const char *peer)
{
	struct zout *s = e->s;

	if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
		s->host->log_limited(s->node, &e->handshake_limit, PP_LOG_ERROR,
				     "%sthe CurveZMQ server %s refused our key (ZAP status %u): "
				     "is our public key in its curve_allow? Nothing goes there",
				     e->label, peer, (unsigned)value);
	else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
		s->host->log_limited(s->node, &e->handshake_limit, PP_LOG_WARNING,
				     "%sCurveZMQ handshake with %s failed (%s): is it a CurveZMQ "
				     "server, and curve_server_key its public key?",
				     e->label, peer, zmq_strerror((int)value));
	else
		s->host->log_limited(s->node, &e->handshake_limit, PP_LOG_WARNING,
				     "%sCurveZMQ handshake with %s failed (protocol error 0x%x): "
				     "is it a CurveZMQ server?",
				     e->label, peer, (unsigned)value);
}

/* A monitor event. A failed handshake is logged; for sharding, when the
 * endpoint's connections changed from none to some or back, it is judged
 * once that has lasted dead_after. */
static void zout_ep_event(struct zout_ep *e, uint16_t event, uint32_t value, const char *peer)
{
	bool had = e->connections > 0;

	if (event & ZOUT_MON_CURVE_EVENTS) {
		zout_handshake_failed(e, event, value, peer);
		return;
	}
	if (!e->judge_timer) /* not sharding */
		return;
	if (event == ZMQ_EVENT_CONNECTED || event == ZMQ_EVENT_ACCEPTED)
		e->connections++;
	else if (event == ZMQ_EVENT_DISCONNECTED && e->connections)
		e->connections--;
	pp_counter_set(e->connections_gauge, e->connections);
	if (had != (e->connections > 0))
		e->s->host->timer_arm(e->judge_timer, e->s->cfg->dead_after, 0);
}

static void zout_judge(void *arg)
{
	struct zout_ep *e = arg;
	struct zout *s = e->s;
	bool dead = e->connections == 0;
	unsigned long long ms = (unsigned long long)(s->cfg->dead_after / ZOUT_NS_PER_MS);

	if (dead == s->dead[e->index])
		return;
	s->dead[e->index] = dead;
	pp_counter_set(e->dead_gauge, dead);
	if (dead)
		s->host->log(s->node, PP_LOG_WARNING, "%sno connection for %llu ms: dead; %s",
			     e->label, ms,
			     s->cfg->failover ? "its flows go to the living endpoints"
					      : "its share queues up to sndhwm, then is dropped");
	else
		s->host->log(s->node, PP_LOG_INFO, "%sconnected for %llu ms: alive again%s", e->label,
			     ms, s->cfg->failover ? "; its flows come back" : "");
}

/* The rest of a monitor event: its first further part (the peer's
 * address) into peer, cut to fit; any parts after it are dropped. */
static void zout_mon_peer(struct zout_ep *e, char *peer, size_t cap)
{
	zmq_msg_t part;
	size_t len;
	int more, first = 1;

	do {
		zmq_msg_init(&part);
		more = zmq_msg_recv(&part, e->mon, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&part);
		if (first) {
			len = zmq_msg_size(&part) < cap ? zmq_msg_size(&part) : cap - 1;
			memcpy(peer, zmq_msg_data(&part), len);
			peer[len] = '\0';
			first = 0;
		}
		zmq_msg_close(&part);
	} while (more);
}

/* 1: an event was read; 0: none waiting. An event is two parts: the
 * event and its value, then the peer's address. */
static int zout_mon_one(struct zout_ep *e)
{
	char peer[ZOUT_MON_ADDRESS] = "";
	zmq_msg_t part;
	uint16_t event = 0;
	uint32_t value = 0;
	int more;

	zmq_msg_init(&part);
	if (zmq_msg_recv(&part, e->mon, ZMQ_DONTWAIT) < 0) {
		zmq_msg_close(&part);
		return 0;
	}
	if (zmq_msg_size(&part) >= ZOUT_MON_EVENT_LEN) {
		memcpy(&event, zmq_msg_data(&part), sizeof(event));
		memcpy(&value, (const uint8_t *)zmq_msg_data(&part) + sizeof(event), sizeof(value));
	}
	more = zmq_msg_more(&part);
	zmq_msg_close(&part);
	if (more)
		zout_mon_peer(e, peer, sizeof(peer));
	zout_ep_event(e, event, value, peer);
	return 1;
}

static void zout_mon_turn(void *arg)
{
	struct zout_ep *e = arg;

	for (int i = 0; i < ZOUT_MON_PER_TURN; i++)
		if (!zout_mon_one(e))
			return;
	/* Edge-triggered: come back for the rest on the next turn. */
	e->s->host->timer_arm(e->mon_timer, 0, 0);
}

static void zout_mon_ready(void *arg, int fd, unsigned events)
{
	(void)fd;
	(void)events;
	zout_mon_turn(arg);
}

static int zout_monitor_start(struct zout_ep *e)
{
	const struct pp_host *h = e->s->host;
	bool shard = e->s->cfg->shard != ZOUT_SHARD_NONE;
	size_t len;
	int fd;

	len = sizeof(fd);
	if (zmq_getsockopt(e->mon, ZMQ_FD, &fd, &len) != 0)
		return zout_zfail(e, "cannot get the monitor's ZMQ_FD");
	e->mon_timer = h->timer_new(e->s->node, zout_mon_turn, e);
	if (shard)
		e->judge_timer = h->timer_new(e->s->node, zout_judge, e);
	if (!e->mon_timer || (shard && !e->judge_timer))
		return -ENOMEM;
	e->mon_watch = h->watch_fd(e->s->node, fd, PP_WATCH_READ | PP_WATCH_EDGE, zout_mon_ready, e);
	if (!e->mon_watch)
		return -ENOMEM;
	/* Events that came before the watch raise no new edge; and an
	 * endpoint that never connects is judged dead_after from now. */
	if (shard)
		h->timer_arm(e->judge_timer, e->s->cfg->dead_after, 0);
	return h->timer_arm(e->mon_timer, 0, 0);
}

static int zout_start(void *state)
{
	struct zout *s = state;
	int rc = 0;

	for (uint32_t i = 0; i < s->neps && rc == 0; i++) {
		rc = zsock_start(&s->eps[i].z);
		if (rc == 0 && s->eps[i].mon)
			rc = zout_monitor_start(&s->eps[i]);
	}
	return rc;
}

/* ------------------------------------------------------------------ */
/* Counting what is sent                                                */

static void zout_count(pp_counter *c, uint64_t n)
{
	if (c)
		pp_counter_add(c, n);
}

/* A message libzmq took: packets/bytes are what it carries, size its
 * length on the wire. */
static void zout_sent(struct zout_ep *e, uint64_t packets, uint64_t bytes, size_t size)
{
	struct zout *s = e->s;

	s->host->delivered(s->node, packets, bytes);
	pp_counter_add(s->packets_sent, packets);
	pp_counter_add(s->frames_sent, 1);
	pp_counter_add(s->bytes_sent, size);
	zout_count(e->packets_sent, packets);
	zout_count(e->frames_sent, 1);
	zout_count(e->bytes_sent, size);
}

static void zout_dropped(struct zout_ep *e, int err, uint64_t packets)
{
	struct zout *s = e->s;

	if (err == EAGAIN) {
		pp_counter_add(s->drop_hwm, packets);
		zout_count(e->dropped_hwm, packets);
		s->host->log_limited(s->node, &e->hwm_limit, PP_LOG_WARNING,
				     "%speer slow or away: %lld messages queued (sndhwm); dropping",
				     e->label, (long long)s->cfg->sndhwm);
		return;
	}
	pp_counter_add(s->drop_error, packets);
	s->host->log_limited(s->node, &s->error_limit, PP_LOG_ERROR, "%szmq_send: %s; dropping",
			     e->label, zmq_strerror(err));
}

/* ------------------------------------------------------------------ */
/* Waiting for room (wait = yes)                                        */

/* While an endpoint is full, the node tells the host it is busy, so that
 * the sources that can wait pause instead of having it drop. */
static void zout_room_event(void *arg, int fd, unsigned events);

/* false without a watch on ZMQ_FD: nothing would say when room came back,
 * so the endpoint drops at sndhwm as with wait = no. */
static bool zout_ep_full(struct zout_ep *e)
{
	struct zout *s = e->s;
	int fd;

	if (!e->room_watch && zsock_fd(&e->z, &fd) == 0)
		e->room_watch = s->host->watch_fd(s->node, fd, PP_WATCH_READ | PP_WATCH_EDGE,
						  zout_room_event, e);
	if (!e->room_watch)
		return false;
	if (!e->full && s->nfull++ == 0)
		s->host->set_busy(s->node, true);
	e->full = true;
	return true;
}

static void zout_ep_room(struct zout_ep *e)
{
	struct zout *s = e->s;

	if (!e->full)
		return;
	e->full = false;
	if (--s->nfull == 0)
		s->host->set_busy(s->node, false);
}

/* Packets waiting in pending batches and holds: s->held and its gauge. */
static void zout_held_packets(struct zout *s, int64_t delta)
{
	s->held += (uint64_t)delta;
	pp_counter_set(&s->stats->packets_held, s->held);
}

/* Keep msg (moved) behind what the hold has; false if it may not. */
static bool zout_hold(struct zout_ep *e, zmq_msg_t *msg, uint64_t packets, uint64_t bytes)
{
	struct zout_held *h;

	if (!e->hold || e->hold_count == ZOUT_HOLD_MAX || !zout_ep_full(e))
		return false;
	h = &e->hold[(e->hold_head + e->hold_count++) % ZOUT_HOLD_MAX];
	zmq_msg_init(&h->msg);
	zmq_msg_move(&h->msg, msg);
	h->packets = packets;
	h->bytes = bytes;
	zout_held_packets(e->s, (int64_t)packets);
	return true;
}

/* The oldest held message has left (its msg sent or closed). */
static void zout_hold_pop(struct zout_ep *e)
{
	zout_held_packets(e->s, -(int64_t)e->hold[e->hold_head].packets);
	e->hold_head = (e->hold_head + 1) % ZOUT_HOLD_MAX;
	e->hold_count--;
}

/* Send what the hold keeps, in order, until libzmq refuses one. Returns
 * how many left the hold. */
static uint32_t zout_hold_send(struct zout_ep *e)
{
	uint32_t before = e->hold_count;

	while (e->hold_count) {
		struct zout_held *h = &e->hold[e->hold_head];
		size_t size = zmq_msg_size(&h->msg);

		if (zmq_msg_send(&h->msg, e->z.sock, ZMQ_DONTWAIT) >= 0) {
			zout_sent(e, h->packets, h->bytes, size);
		} else if (zmq_errno() == EAGAIN) {
			break;
		} else {
			zout_dropped(e, zmq_errno(), h->packets);
			zmq_msg_close(&h->msg);
		}
		zout_hold_pop(e);
	}
	return before - e->hold_count;
}

/* Drop what the hold keeps: the node stops without room for it. */
static void zout_hold_drop(struct zout_ep *e)
{
	while (e->hold_count) {
		struct zout_held *h = &e->hold[e->hold_head];

		pp_counter_add(e->s->drop_stopped, h->packets);
		zmq_msg_close(&h->msg);
		zout_hold_pop(e);
	}
}

static bool zout_holding(const struct zout *s)
{
	for (uint32_t i = 0; i < s->neps; i++)
		if (s->eps[i].hold_count)
			return true;
	return false;
}

static void zout_stop_now(struct zout *s);

/* After every send and every ZMQ_FD event: send what is held while there
 * is room, then say whether there is. ZMQ_EVENTS comes first each time:
 * it takes in libzmq's pending commands (a send may leave them), among
 * them the one that gives room back, and with it the edge of ZMQ_FD; so
 * its answer must be acted on now, as no new event will repeat it. */
static void zout_check_room(struct zout_ep *e)
{
	struct zout *s = e->s;
	int ev;

	if (!e->hold)
		return;
	ev = zsock_events(&e->z);
	while ((ev & ZMQ_POLLOUT) && e->hold_count && zout_hold_send(e))
		ev = zsock_events(&e->z);
	if (e->hold_count || !(ev & ZMQ_POLLOUT))
		zout_ep_full(e);
	else
		zout_ep_room(e);
	if (s->stopping && !zout_holding(s))
		zout_stop_now(s);
}

static void zout_room_event(void *arg, int fd, unsigned events)
{
	(void)fd;
	(void)events;
	zout_check_room(arg);
}

/* ------------------------------------------------------------------ */
/* Sending                                                              */

/* Hand msg to the endpoint's socket, never waiting: false if it was
 * dropped. Behind held messages, or refused with wait = yes, it is held.
 * packets/bytes: what it carries. */
static bool zout_send(struct zout_ep *e, zmq_msg_t *msg, uint64_t packets, uint64_t bytes)
{
	size_t size = zmq_msg_size(msg);
	int err = EAGAIN;

	if (!e->hold_count) {
		if (zmq_msg_send(msg, e->z.sock, ZMQ_DONTWAIT) >= 0) {
			zout_sent(e, packets, bytes, size);
			zout_check_room(e);
			return true;
		}
		err = zmq_errno();
	}
	if (err == EAGAIN && zout_hold(e, msg, packets, bytes)) {
		zout_check_room(e);
		return true;
	}
	zmq_msg_close(msg);
	zout_dropped(e, err, packets);
	return false;
}

static void zout_nomem(struct zout *s, uint64_t packets, size_t len)
{
	pp_counter_add(s->drop_nomem, packets);
	s->host->log_limited(s->node, &s->nomem_limit, PP_LOG_ERROR,
			     "no memory for a message of %zu bytes; dropping", len);
}

static void zout_free_buf(void *data, void *hint)
{
	(void)hint;
	free(data);
}

/* The endpoint's pending batch as one native frame. */
static void zout_flush(struct zout_ep *e)
{
	struct zout *s = e->s;
	uint32_t n = e->npending;
	size_t len = PP_WIRE_HEADER_LEN + e->pending_len;
	uint8_t *buf = e->buf, *fit;
	zmq_msg_t msg;

	if (!n)
		return;
	s->host->timer_disarm(e->timer);
	e->head.count = n;
	e->head.raw_len = (uint32_t)e->pending_len;
	wire_native_put_header(buf, &e->head);
	/* Shrinking keeps the bytes where they are (glibc: in place, or
	 * mremap); what the frame did not use goes back now. */
	fit = len < e->cap ? realloc(buf, len) : NULL;
	if (fit)
		buf = fit;
	e->buf = NULL;
	e->last_len = len;
	if (zmq_msg_init_data(&msg, buf, len, zout_free_buf, NULL) != 0) {
		free(buf);
		zout_nomem(s, n, len);
	} else if (zout_send(e, &msg, n, e->pending_bytes)) {
		/* The sequence counts what went on the wire: a receiver must
		 * not count our own hwm drops as network losses. */
		e->head.seq += n;
	}
	e->npending = 0;
	e->pending_len = 0;
	e->pending_bytes = 0;
	zout_held_packets(s, -(int64_t)n);
}

static void zout_flush_all(struct zout *s)
{
	for (uint32_t i = 0; i < s->neps; i++)
		zout_flush(&s->eps[i]);
}

static void zout_batch_due(void *arg)
{
	zout_flush(arg);
}

/* Room in buf for want bytes in all. A new frame's buffer starts at the
 * size of the previous frame (steady traffic makes frames alike, so it
 * rarely grows), at least 64 KiB, at most a whole batch; a packet larger
 * than a batch gets a frame of its own size. */
static int zout_room(struct zout_ep *e, size_t want)
{
	size_t batch = PP_WIRE_HEADER_LEN + e->s->cfg->batch_bytes, cap;
	uint8_t *nb;

	if (want <= e->cap && e->buf)
		return 0;
	cap = e->buf ? e->cap * 2 : e->last_len > (64u << 10) ? e->last_len : 64u << 10;
	if (cap > batch)
		cap = batch;
	if (cap < want)
		cap = want;
	nb = realloc(e->buf, cap);
	if (!nb)
		return -ENOMEM;
	e->buf = nb;
	e->cap = cap;
	return 0;
}

/* A packet's record into the endpoint's frame; the packet is not kept. */
static void zout_add(struct zout_ep *e, struct pp_packet *p)
{
	struct zout *s = e->s;
	size_t rec = wire_native_record_len(p);

	if (e->npending && PP_WIRE_HEADER_LEN + e->pending_len + rec > s->cfg->batch_bytes)
		zout_flush(e);
	if (zout_room(e, PP_WIRE_HEADER_LEN + e->pending_len + rec) < 0) {
		zout_nomem(s, 1, PP_WIRE_HEADER_LEN + e->pending_len + rec);
		return;
	}
	wire_native_put_record(e->buf + PP_WIRE_HEADER_LEN + e->pending_len, p);
	e->npending++;
	e->pending_len += rec;
	e->pending_bytes += p->caplen;
	zout_held_packets(s, 1);
	if (e->npending == 1 && s->cfg->batch_delay)
		s->host->timer_arm(e->timer, s->cfg->batch_delay, 0);
	if (e->npending >= (uint64_t)s->cfg->batch_packets ||
	    PP_WIRE_HEADER_LEN + e->pending_len >= s->cfg->batch_bytes)
		zout_flush(e);
}

/* What libzmq's I/O thread needs to release a frame it has sent. */
struct zout_ref {
	const struct pp_host *host;
	struct pp_packet *p;
};

static void zout_release_ref(void *data, void *hint)
{
	struct zout_ref *ref = hint;

	(void)data;
	ref->host->packet_unref(ref->p);
	free(ref);
}

/* A frame made upstream goes out as it is, without a copy: libzmq holds a
 * reference until its I/O thread has written it. Its packets cannot be
 * told apart without decoding it, so a sharding node drops it: sending it
 * anywhere would break the promise that each flow lands whole. */
/* The uncompressed records of a native frame made upstream, checked;
 * *records points into p or into *scratch (malloc'd, the caller frees). */
static int zout_frame_records(struct zout *s, const struct pp_packet *p, struct wire_header *h,
			      const uint8_t **records, uint8_t **scratch)
{
	const struct pp_codec *codec = NULL;
	void *ctx = NULL;
	int rc;

	*scratch = NULL;
	rc = wire_native_header(p->data, p->caplen, h);
	if (rc < 0 || h->count != p->count)
		return -EBADMSG;
	if (h->codec) {
		codec = s->host->codec_by_id(s->node, h->codec);
		if (!codec || !(ctx = codec->ctx_new(0)))
			return -ENOTSUP;
	}
	*scratch = malloc(h->raw_len ? h->raw_len : 1);
	rc = *scratch ? wire_native_records(h, codec, ctx, *scratch, h->raw_len, records) : -ENOMEM;
	if (rc == 0)
		rc = wire_native_check(*records, h->raw_len, h->count);
	if (ctx)
		codec->ctx_free(ctx);
	return rc;
}

/* legacy-rc: a frame from upstream (ratelimit, zlib) becomes the original's
 * compressed batch, so --rate-control keeps the original's bytes on the
 * wire. What the legacy format cannot carry is dropped as 'linktype'. */
static void zout_frame_rc(struct zout *s, struct pp_packet *p)
{
	const struct pp_codec *zlib = s->host->codec_find(s->node, "zlib");
	uint8_t *scratch = NULL, *plain = NULL, *out = NULL;
	const uint8_t *records;
	struct wire_header h;
	size_t bound, out_len;
	uint32_t skipped = 0;
	void *ctx = NULL;
	zmq_msg_t msg;

	if (!zlib || zout_frame_records(s, p, &h, &records, &scratch) < 0)
		goto bad;
	bound = wire_rc_records_bound(h.raw_len, h.count);
	out_len = 1 + zlib->bound(bound);
	plain = malloc(bound);
	out = malloc(out_len);
	ctx = zlib->ctx_new(-1);
	if (!plain || !out || !ctx ||
	    wire_rc_from_native(out, &out_len, records, h.raw_len, h.count, plain, bound, zlib, ctx,
				&skipped) < 0 || zmq_msg_init_size(&msg, out_len) != 0)
		goto bad;
	memcpy(zmq_msg_data(&msg), out, out_len);
	pp_counter_add(s->drop_linktype, skipped);
	zout_send(&s->eps[0], &msg, p->count - skipped, p->caplen);
	goto out;
bad:
	pp_counter_add(s->drop_frame, p->count);
	s->host->log_limited(s->node, &s->frame_limit, PP_LOG_WARNING,
			     "a frame from upstream could not become a legacy-rc message; dropping");
out:
	if (ctx)
		zlib->ctx_free(ctx);
	free(out);
	free(plain);
	free(scratch);
}

static void zout_frame(struct zout *s, struct pp_packet *p)
{
	struct zout_ep *e = &s->eps[0];
	struct zout_ref *ref;
	zmq_msg_t msg;

	if (s->cfg->wire == ZOUT_LEGACY_RC && s->cfg->shard == ZOUT_SHARD_NONE) {
		zout_frame_rc(s, p);
		return;
	}
	if (s->cfg->wire != ZOUT_NATIVE || s->cfg->shard != ZOUT_SHARD_NONE) {
		pp_counter_add(s->drop_frame, p->count);
		s->host->log_limited(s->node, &s->frame_limit, PP_LOG_WARNING, "%s; dropping",
				     s->cfg->wire != ZOUT_NATIVE
					     ? "native frames cannot be sent on the plain legacy wire"
					     : "frames made upstream cannot be sharded by flow");
		return;
	}
	zout_flush(e); /* keep the order packets came in */
	ref = malloc(sizeof(*ref));
	if (!ref) {
		zout_nomem(s, p->count, p->caplen);
		return;
	}
	*ref = (struct zout_ref){ .host = s->host, .p = p };
	s->host->packet_ref(p);
	if (zmq_msg_init_data(&msg, p->data, p->caplen, zout_release_ref, ref) != 0) {
		s->host->packet_unref(p);
		free(ref);
		zout_nomem(s, p->count, p->caplen);
		return;
	}
	zout_send(e, &msg, p->count, p->caplen);
}

static bool zout_raw_ip(uint32_t linktype)
{
	return linktype == 12 || linktype == 101 || linktype == 228 || linktype == 229;
}

/* Legacy: one message per packet. */
static void zout_legacy(struct zout_ep *e, struct pp_packet *p)
{
	bool rc_tag = e->s->cfg->wire == ZOUT_LEGACY_RC;
	size_t len = rc_tag ? wire_legacy_rc_len(p->caplen) : wire_legacy_len(p->caplen);
	zmq_msg_t msg;

	if (zmq_msg_init_size(&msg, len) != 0) {
		zout_nomem(e->s, 1, len);
		return;
	}
	if (rc_tag)
		wire_legacy_rc_put(zmq_msg_data(&msg), p);
	else
		wire_legacy_put(zmq_msg_data(&msg), p);
	zout_send(e, &msg, 1, p->caplen);
}

/* The endpoint a packet's flow goes to; with failover, a living one. A
 * packet without an IP header goes to endpoint 0 (or the first living). */
static struct zout_ep *zout_route(struct zout *s, const struct pp_packet *p)
{
	bool addrs = s->cfg->shard == ZOUT_SHARD_ADDRESSES;
	enum flowhash_kind kind;
	uint64_t hash = flowhash_packet(p->linktype, p->data, p->caplen, addrs, &kind);
	uint32_t home = 0, to;

	if (kind == FLOWHASH_NOT_IP)
		pp_counter_add(s->flow_not_ip, 1);
	else
		home = flowhash_bucket(hash, s->neps);
	if (kind == FLOWHASH_PARTIAL)
		pp_counter_add(s->flow_partial, 1);
	if (!s->cfg->failover || !s->dead[home])
		return &s->eps[home];
	to = home;
	if (kind != FLOWHASH_NOT_IP)
		to = flowhash_bucket_alive(hash, s->neps, s->dead);
	else
		while (to + 1 < s->neps && s->dead[to])
			to++;
	if (s->dead[to])
		return &s->eps[home]; /* all dead: it queues at home */
	pp_counter_add(s->eps[home].failed_over, 1);
	return &s->eps[to];
}

static void zout_packet(struct zout *s, struct pp_packet *p)
{
	struct zout_ep *e = &s->eps[0];

	if (p->linktype == PP_LINKTYPE_FRAME) {
		zout_frame(s, p);
		return;
	}
	/* The legacy formats carry no linktype and receivers take raw IP:
	 * anything else would reach them as garbage. */
	if (s->cfg->wire != ZOUT_NATIVE && !zout_raw_ip(p->linktype)) {
		pp_counter_add(s->drop_linktype, 1);
		s->host->log_limited(s->node, &s->linktype_limit, PP_LOG_WARNING,
				     "the legacy wire carries raw IP only, not linktype %u; dropping",
				     p->linktype);
		return;
	}
	if (s->cfg->shard != ZOUT_SHARD_NONE)
		e = zout_route(s, p);
	if (s->cfg->wire == ZOUT_NATIVE)
		zout_add(e, p);
	else
		zout_legacy(e, p);
}

static int zout_process(void *state, struct pp_batch *batch)
{
	struct zout *s = state;

	for (uint32_t i = 0; i < batch->count; i++)
		zout_packet(s, batch->pkts[i]);
	if (!s->cfg->batch_delay)
		zout_flush_all(s);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Stopping                                                             */

static void *zout_term_main(void *arg)
{
	struct zout *s = arg;
	uint64_t one = 1;

	for (uint32_t i = 0; i < s->neps; i++)
		zsock_term(&s->eps[i].z);
	if (write(s->term_fd, &one, sizeof(one)) < 0)
		return NULL; /* the loop's drain deadline covers it */
	return NULL;
}

static void zout_termed(void *arg, int fd, unsigned events)
{
	struct zout *s = arg;

	(void)fd;
	(void)events;
	s->host->unwatch(s->term_watch);
	s->term_watch = NULL;
	pthread_join(s->term_thread, NULL);
	s->term_running = false;
	s->host->finished(s->node, 0);
}

static void zout_term_all(struct zout *s)
{
	for (uint32_t i = 0; i < s->neps; i++)
		zsock_term(&s->eps[i].z);
}

/* Wait out the linger off the loop; 0 if it is over already. */
static int zout_linger(struct zout *s)
{
	s->term_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->term_fd < 0)
		goto inline_term;
	s->term_watch = s->host->watch_fd(s->node, s->term_fd, PP_WATCH_READ, zout_termed, s);
	if (!s->term_watch)
		goto inline_term;
	if (pthread_create(&s->term_thread, NULL, zout_term_main, s) != 0) {
		s->host->unwatch(s->term_watch);
		s->term_watch = NULL;
		goto inline_term;
	}
	s->term_running = true;
	return -EINPROGRESS;
inline_term:
	s->host->log(s->node, PP_LOG_WARNING, "no thread for the linger: waiting for it here");
	zout_term_all(s);
	return 0;
}

/* Close the sockets, letting libzmq send what it queued for linger. */
static int zout_close_sockets(struct zout *s)
{
	uint64_t linger_ms = s->cfg->linger / ZOUT_NS_PER_MS;

	for (uint32_t i = 0; i < s->neps; i++) {
		struct zout_ep *e = &s->eps[i];

		s->host->timer_free(e->timer);
		e->timer = NULL;
		if (e->room_watch)
			s->host->unwatch(e->room_watch);
		e->room_watch = NULL;
		zout_ep_room(e);
		zout_monitor_close(e);
		zsock_close(&e->z, (int)linger_ms);
	}
	if (!linger_ms) {
		zout_term_all(s);
		return 0;
	}
	return zout_linger(s);
}

/* The holds are empty: stop() goes on from where it waited. */
static void zout_stop_now(struct zout *s)
{
	s->stopping = false;
	if (zout_close_sockets(s) == 0)
		s->host->finished(s->node, 0);
}

/* With wait = yes, what the holds keep goes out first: the room events
 * finish the stop (zout_check_room()), within the host's drain deadline. */
static int zout_stop(void *state)
{
	struct zout *s = state;

	zout_flush_all(s);
	if (zout_holding(s)) {
		s->stopping = true;
		return -EINPROGRESS;
	}
	return zout_close_sockets(s);
}

/* close() without stop() (a failed start): what is pending was never
 * sent. */
static void zout_close(void *state)
{
	struct zout *s = state;

	if (s->term_running)
		pthread_join(s->term_thread, NULL);
	for (uint32_t i = 0; i < s->neps; i++) {
		struct zout_ep *e = &s->eps[i];

		zout_monitor_close(e);
		zout_hold_drop(e);
		zsock_term(&e->z);
		pp_counter_add(s->drop_stopped, e->npending);
		zout_ep_free(e);
	}
	if (s->term_fd >= 0)
		close(s->term_fd);
	pp_counter_set(&s->stats->packets_held, 0);
	free(s->eps);
	free(s->dead);
	free(s);
}

/* pktpipe --gen-curve-key PATH */
static int zout_gen_curve_key(int argc, char **argv)
{
	char err[512];

	if (argc != 1) {
		fprintf(stderr, "usage: pktpipe --gen-curve-key PATH (writes PATH and PATH.pub)\n");
		return 2;
	}
	if (zsock_keygen(argv[0], err, sizeof(err)) < 0) {
		fprintf(stderr, "pktpipe: --gen-curve-key: %s\n", err);
		return 1;
	}
	printf("secret key: %s (mode 0600)\npublic key: %s.pub\n", argv[0], argv[0]);
	return 0;
}

static const struct pp_command zout_commands[] = {
	{ .name = "gen-curve-key", .args = "PATH",
	  .help = "write a CurveZMQ key pair: the secret key to PATH (0600), the public to PATH.pub",
	  .run = zout_gen_curve_key },
	{ .name = NULL },
};

PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "zmq-out",
	.summary = "send packets over ZeroMQ (push/pub), native or legacy wire",
	.roles = PP_ROLE_SINK,
	.options = zout_options,
	.config_size = sizeof(struct zout_config),
	.validate = zout_validate,
	.open = zout_open,
	.start = zout_start,
	.process = zout_process,
	.stop = zout_stop,
	.close = zout_close,
	.commands = zout_commands,
};
