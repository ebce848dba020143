/* zmq-in: receive packets over ZeroMQ (PULL or SUB): native frames from
 * zmq-out, or the legacy formats of nflog-zmq-pcap-pipe.
 *
 * The bytes come from the network: a message is decoded in two passes, the
 * first checking every length and record without allocating anything, the
 * second making packets. A message that fails the check is dropped whole
 * (see README.md: a damaged frame delivers none of its records), counted in
 * frames_bad and logged rate-limited; the next message is decoded as if
 * nothing happened.
 *
 * ZMQ_FD is edge-triggered: it fires when the socket's state changes, not
 * while messages wait. So every turn reads until ZMQ_EVENTS says nothing is
 * left, or until its budget is spent, and then arms a zero-delay timer to
 * come back on the next loop turn, so that other nodes get their share.
 *
 * Accounting (this node is a source and counts its own packets_in):
 *   frames_in = frames_ok + frames_bad, one per message;
 *   a frame whose header is sound counts its packets in, then out, or
 *   dropped "malformed" (records damaged) or "codec" (no decoder);
 *   a sequence gap of a sender counts the missing packets in and dropped
 *   "network"; a message with no sound header carries no packet count.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include <pktpipe/plugin.h>
#include <pktpipe/wire.h>

#include "framer.h"
#include "zsock.h"

#define ZIN_MSGS_PER_TURN 256
#define ZIN_STOP_DRAIN_MAX 100000 /* messages read when stopping */
/* Records from this size on become packets over the message's own bytes
 * (zero-copy); below it a copy is cheaper than the shared count. */
#define ZIN_WRAP_MIN 256

enum zin_socket { ZIN_PULL, ZIN_SUB };
enum zin_wire { ZIN_AUTO, ZIN_NATIVE, ZIN_LEGACY, ZIN_LEGACY_RC };

struct zin_config {
	struct pp_list endpoint;
	bool bind;
	int socket; /* enum zin_socket */
	int64_t rcvhwm;
	uint64_t max_message;
	int wire; /* enum zin_wire */
	struct zsock_curve curve;
};

static const char *const zin_sockets[] = { "pull", "sub", NULL };
static const char *const zin_wires[] = { "auto", "native", "legacy", "legacy-rc", NULL };

static const struct pp_option zin_options[] = {
	{ .name = "endpoint", .type = PP_OPT_LIST, .item_type = PP_OPT_ENDPOINT,
	  .default_value = NULL, .max_items = 64, .offset = offsetof(struct zin_config, endpoint),
	  .help = "where to receive: zmq endpoints; tcp://127.0.0.1:* binds a free port (logged)." },
	{ .name = "bind", .type = PP_OPT_BOOL, .default_value = "yes",
	  .offset = offsetof(struct zin_config, bind),
	  .help = "bind the endpoints (no: connect to them)" },
	{ .name = "socket", .type = PP_OPT_ENUM, .default_value = "pull", .choices = zin_sockets,
	  .offset = offsetof(struct zin_config, socket),
	  .help = "pull (from push senders) or sub (from pub senders; subscribes to everything)" },
	{ .name = "rcvhwm", .type = PP_OPT_INT, .default_value = "1000", .min = 1,
	  .max = 100000000, .offset = offsetof(struct zin_config, rcvhwm),
	  .help = "messages libzmq queues before senders are held back (push) or drop (pub)" },
	{ .name = "max_message", .type = PP_OPT_SIZE, .default_value = "16MiB", .min = 64,
	  .max = 1ll << 30, .offset = offsetof(struct zin_config, max_message),
	  .help = "largest message, and largest decompressed frame; larger ones are refused" },
	{ .name = "wire", .type = PP_OPT_ENUM, .default_value = "auto", .choices = zin_wires,
	  .offset = offsetof(struct zin_config, wire),
	  .help = "auto: native frames by their magic, anything else as legacy or legacy-rc; or only one of native, legacy, legacy-rc" },
	{ .name = "curve_secret_key", .type = PP_OPT_PATH, .default_value = "",
	  .offset = offsetof(struct zin_config, curve.secret_key),
	  .help = "CurveZMQ: this node's secret key file (Z85, mode 0600); enables encryption" },
	{ .name = "curve_server_key", .type = PP_OPT_STRING, .default_value = "",
	  .offset = offsetof(struct zin_config, curve.server_key),
	  .help = "CurveZMQ client: the server's public key (Z85)" },
	{ .name = "curve_allow", .type = PP_OPT_LIST, .item_type = PP_OPT_STRING,
	  .default_value = "", .offset = offsetof(struct zin_config, curve.allow),
	  .help = "CurveZMQ server: the client public keys (Z85) admitted; others deliver nothing" },
	PP_OPTION_END
};

struct zin {
	struct pp_node *node;
	const struct pp_host *host;
	const struct zin_config *cfg;
	struct pp_stats *stats;
	pp_counter *frames_in, *frames_ok, *frames_bad, *bytes_received;
	pp_counter *drop_network, *drop_malformed, *drop_codec, *drop_nomem;
	struct pp_log_limit bad_limit, gap_limit, nomem_limit, codec_limit, recv_limit;
	struct zsock z;
	struct pp_watch *watch;
	struct pp_timer *again;
	struct wire_senders senders;
	/* Decompression: a decoder per codec id; max_message bytes. */
	struct frame_reader rd;
	uint8_t *joined; /* a multi-part message, put together */
	struct outq out;
	bool can_wrap; /* the host offers packet_wrap */
	/* The message being decoded, while its records may become packets
	 * over its bytes; NULL otherwise. */
	struct zin_held *held;
};

/* A received message that packets point into: closed when the decoder and
 * the last of those packets are done with it, on whichever thread. */
struct zin_held {
	uint32_t refs;
	zmq_msg_t msg;
};

static void zin_held_release(void *arg)
{
	struct zin_held *m = arg;

	if (__atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		zmq_msg_close(&m->msg);
		free(m);
	}
}

static int zin_validate(const void *config, char *err, size_t errlen)
{
	const struct zin_config *cfg = config;

	return zsock_curve_validate(&cfg->curve, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Opening                                                              */

static void zin_counters(struct zin *s)
{
	const struct pp_host *h = s->host;

	s->stats = h->stats(s->node);
	s->frames_in = h->counter(s->node, "frames_in", PP_COUNTER_TOTAL);
	s->frames_ok = h->counter(s->node, "frames_ok", PP_COUNTER_TOTAL);
	s->frames_bad = h->counter(s->node, "frames_bad", PP_COUNTER_TOTAL);
	s->bytes_received = h->counter(s->node, "bytes_received", PP_COUNTER_TOTAL);
	s->drop_network = h->drop_reason(s->node, "network");
	s->drop_malformed = h->drop_reason(s->node, "malformed");
	s->drop_codec = h->drop_reason(s->node, "codec");
	s->drop_nomem = h->drop_reason(s->node, "nomem");
}

static int zin_socket(struct zin *s)
{
	const struct zin_config *cfg = s->cfg;
	int64_t max = (int64_t)cfg->max_message;
	int rc;

	rc = zsock_init(&s->z, s->node, s->host, cfg->socket == ZIN_SUB ? ZMQ_SUB : ZMQ_PULL);
	if (rc < 0)
		return rc;
	rc = zsock_set(&s->z, ZMQ_RCVHWM, (int)cfg->rcvhwm, "rcvhwm");
	/* libzmq drops the connection of a peer that sends more. */
	if (rc == 0 && zmq_setsockopt(s->z.sock, ZMQ_MAXMSGSIZE, &max, sizeof(max)) != 0)
		rc = -EINVAL;
	if (rc == 0 && cfg->socket == ZIN_SUB && zmq_setsockopt(s->z.sock, ZMQ_SUBSCRIBE, "", 0) != 0)
		rc = -EINVAL;
	if (rc == -EINVAL)
		s->host->log(s->node, PP_LOG_ERROR, "cannot set up the socket: %s",
			     zmq_strerror(zmq_errno()));
	if (rc == 0)
		rc = zsock_curve(&s->z, &cfg->curve);
	if (rc == 0)
		rc = zsock_attach(&s->z, &cfg->endpoint, cfg->bind);
	if (rc < 0)
		zsock_term(&s->z);
	return rc;
}

static void zin_turn(void *arg);

static int zin_open(struct pp_node *node, const struct pp_host *host, const void *config,
		    void **state)
{
	struct zin *s;
	int rc;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->node = node;
	s->host = host;
	s->cfg = config;
	outq_init(&s->out, node, host);
	frame_reader_init(&s->rd, node, host, s->cfg->max_message);
	zin_counters(s);
	s->can_wrap = PP_HOST_HAS(host, packet_wrap);
	s->again = host->timer_new(node, zin_turn, s);
	if (!s->again) {
		free(s);
		return -ENOMEM;
	}
	rc = zin_socket(s);
	if (rc < 0) {
		host->timer_free(s->again);
		free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static void zin_ready(void *arg, int fd, unsigned events)
{
	(void)fd;
	(void)events;
	zin_turn(arg);
}

static int zin_start(void *state)
{
	struct zin *s = state;
	int fd, rc;

	rc = zsock_fd(&s->z, &fd);
	if (rc < 0)
		return rc;
	s->watch = s->host->watch_fd(s->node, fd, PP_WATCH_READ | PP_WATCH_EDGE, zin_ready, s);
	if (!s->watch)
		return -ENOMEM;
	rc = zsock_start(&s->z);
	if (rc < 0)
		return rc;
	/* Whatever arrived before the watch existed raises no new edge. */
	return s->host->timer_arm(s->again, 0, 0);
}

/* ------------------------------------------------------------------ */
/* Producing packets                                                    */

/* A packet of a record: over the held message's bytes when they are
 * there and worth it, else a copy. */
static struct pp_packet *zin_make(struct zin *s, const struct wire_record *r)
{
	struct pp_packet *p;

	if (!s->held || r->caplen < ZIN_WRAP_MIN)
		return frame_reader_packet(&s->rd, r);
	__atomic_add_fetch(&s->held->refs, 1, __ATOMIC_RELAXED);
	p = frame_reader_wrap(&s->rd, r, zin_held_release, s->held);
	if (!p)
		zin_held_release(s->held);
	return p;
}

/* One decoded record into the batch (its packets_in is counted already). */
static void zin_packet(struct zin *s, const struct wire_record *r)
{
	struct pp_packet *p = zin_make(s, r);

	if (!p) {
		pp_counter_add(s->drop_nomem, 1);
		s->host->log_limited(s->node, &s->nomem_limit, PP_LOG_ERROR,
				     "no packet buffer for %u bytes; dropping", r->caplen);
		return;
	}
	outq_put(&s->out, p, true);
}

static void zin_packets_in(struct zin *s, uint64_t packets, uint64_t bytes)
{
	pp_counter_add(&s->stats->packets_in, packets);
	pp_counter_add(&s->stats->bytes_in, bytes);
}

static void zin_bad(struct zin *s, const char *what, int rc, size_t len)
{
	pp_counter_add(s->frames_bad, 1);
	s->host->log_limited(s->node, &s->bad_limit, PP_LOG_WARNING,
			     "dropped a malformed %s message of %zu bytes: %s", what, len,
			     rc == -EMSGSIZE ? "larger than max_message once decompressed"
			     : rc == -EPROTONOSUPPORT ? "unsupported native version"
						      : "lengths or fields do not add up");
}

/* ------------------------------------------------------------------ */
/* Native frames                                                        */

static void zin_sequence(struct zin *s, const struct wire_header *h)
{
	uint64_t lost;

	if (!(h->flags & PP_WIRE_FLAG_SEQ))
		return;
	switch (wire_seq_track(&s->senders, h->sender, h->seq, h->count, &lost)) {
	case WIRE_SEQ_GAP:
		zin_packets_in(s, lost, 0);
		pp_counter_add(s->drop_network, lost);
		s->host->log_limited(s->node, &s->gap_limit, PP_LOG_WARNING,
				     "sender %016llx: %llu packets lost on the way",
				     (unsigned long long)h->sender, (unsigned long long)lost);
		break;
	case WIRE_SEQ_RESYNC:
		s->host->log_limited(s->node, &s->gap_limit, PP_LOG_INFO,
				     "sender %016llx: sequence restarted", (unsigned long long)h->sender);
		break;
	default:
		break;
	}
}

/* Records of a sound header: checked, then made into packets. */
static int zin_records(struct zin *s, const struct wire_header *h)
{
	const uint8_t *records = NULL;
	struct wire_cursor c;
	struct wire_record r;
	struct zin_held *held = s->held;
	int rc;

	rc = frame_reader_records(&s->rd, h, &records);
	if (rc < 0)
		return rc;
	/* Decompressed records lie in scratch, which the next frame reuses. */
	if (records != h->payload)
		s->held = NULL;
	wire_cursor_init(&c, records, h->raw_len, h->count);
	while (wire_native_next(&c, &r) == 1) {
		pp_counter_add(&s->stats->bytes_in, r.caplen);
		zin_packet(s, &r);
	}
	s->held = held;
	return 0;
}

static void zin_native(struct zin *s, const uint8_t *msg, size_t len)
{
	struct wire_header h;
	int rc;

	rc = wire_native_header(msg, len, &h);
	if (rc < 0) {
		zin_bad(s, "native", rc, len);
		return;
	}
	zin_sequence(s, &h);
	pp_counter_add(&s->stats->packets_in, h.count);
	rc = zin_records(s, &h);
	if (rc == 0) {
		pp_counter_add(s->frames_ok, 1);
		return;
	}
	if (rc == -ENOPROTOOPT || rc == -ENOMEM) {
		pp_counter_add(rc == -ENOMEM ? s->drop_nomem : s->drop_codec, h.count);
		pp_counter_add(s->frames_bad, 1);
		s->host->log_limited(s->node, &s->codec_limit, PP_LOG_ERROR,
				     "cannot decode a frame of codec %u (%s): %s; dropping", h.codec,
				     pp_codec_name(h.codec) ? pp_codec_name(h.codec) : "unknown",
				     rc == -ENOMEM ? "out of memory" : "no such codec plugin");
		return;
	}
	pp_counter_add(s->drop_malformed, h.count);
	zin_bad(s, "native", rc, len);
}

/* ------------------------------------------------------------------ */
/* Legacy messages                                                      */

static int zin_legacy(struct zin *s, const uint8_t *msg, size_t len)
{
	struct wire_record r;
	int rc = wire_legacy_decode(msg, len, &r);

	if (rc < 0)
		return rc;
	zin_packets_in(s, 1, r.caplen);
	zin_packet(s, &r);
	return 0;
}

static int zin_legacy_rc(struct zin *s, const uint8_t *msg, size_t len)
{
	struct wire_rc_cursor c;
	struct wire_record r;
	uint8_t *scratch = NULL;
	void *ctx = NULL;
	const struct pp_codec *codec = NULL;
	uint32_t count;
	int rc;

	if (len && msg[0] == PP_LEGACY_RC_ZLIB) {
		codec = frame_reader_codec(&s->rd, PP_CODEC_ZLIB, &ctx);
		scratch = frame_reader_scratch(&s->rd);
		if (!scratch)
			return -ENOMEM;
	}
	rc = wire_rc_open(&c, msg, len, codec, ctx, scratch, s->cfg->max_message);
	if (rc == 0)
		rc = wire_rc_check(&c, &count);
	if (rc < 0)
		return rc;
	zin_packets_in(s, count, 0);
	while (wire_rc_next(&c, &r) == 1) {
		pp_counter_add(&s->stats->bytes_in, r.caplen);
		zin_packet(s, &r);
	}
	return 0;
}

/* auto: legacy messages are multiples of 4 bytes and parse strictly;
 * legacy-rc ones start with their tag. Whichever decodes is right: a
 * message cannot be both. */
static void zin_message(struct zin *s, const uint8_t *msg, size_t len)
{
	int wire = s->cfg->wire, rc;

	pp_counter_add(s->frames_in, 1);
	pp_counter_add(s->bytes_received, len);
	if (wire == ZIN_NATIVE || (wire == ZIN_AUTO && wire_is_native(msg, len))) {
		zin_native(s, msg, len);
		return;
	}
	rc = -EBADMSG;
	if (wire == ZIN_LEGACY || wire == ZIN_AUTO)
		rc = zin_legacy(s, msg, len);
	if (rc < 0 && (wire == ZIN_LEGACY_RC || wire == ZIN_AUTO))
		rc = zin_legacy_rc(s, msg, len);
	if (rc == 0) {
		pp_counter_add(s->frames_ok, 1);
		return;
	}
	if (rc == -ENOPROTOOPT) {
		pp_counter_add(s->frames_bad, 1);
		s->host->log_limited(s->node, &s->codec_limit, PP_LOG_ERROR,
				     "cannot decode a zlib legacy-rc message: no zlib codec plugin");
		return;
	}
	zin_bad(s, wire == ZIN_AUTO ? "non-native" : zin_wires[wire], rc, len);
}

/* ------------------------------------------------------------------ */
/* Reading the socket                                                   */

/* The rest of a multi-part message, appended to the first part (as the
 * original receiver joined them); false if the whole exceeds max_message.
 * libzmq delivers the parts of a message together: they are all here. */
static bool zin_join(struct zin *s, zmq_msg_t *first, size_t *len)
{
	size_t max = s->cfg->max_message, n;
	bool more = zmq_msg_more(first), fits;
	zmq_msg_t part;

	if (!s->joined)
		s->joined = malloc(max);
	*len = zmq_msg_size(first);
	fits = s->joined && *len <= max;
	if (fits)
		memcpy(s->joined, zmq_msg_data(first), *len);
	while (more) {
		zmq_msg_init(&part);
		if (zmq_msg_recv(&part, s->z.sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&part);
			break;
		}
		more = zmq_msg_more(&part);
		n = zmq_msg_size(&part);
		fits = fits && n <= max - *len;
		if (fits)
			memcpy(s->joined + *len, zmq_msg_data(&part), n);
		*len += n;
		zmq_msg_close(&part);
	}
	return fits;
}

/* A single-part native message, decoded with its bytes held so that its
 * records can become packets without a copy. Without memory for the hold,
 * it is decoded with copies like any other. */
static void zin_native_held(struct zin *s, zmq_msg_t *msg)
{
	struct zin_held *m = malloc(sizeof(*m));

	if (!m) {
		zin_message(s, zmq_msg_data(msg), zmq_msg_size(msg));
		return;
	}
	m->refs = 1; /* the decoder's */
	zmq_msg_init(&m->msg);
	zmq_msg_move(&m->msg, msg);
	s->held = m;
	zin_message(s, zmq_msg_data(&m->msg), zmq_msg_size(&m->msg));
	s->held = NULL;
	zin_held_release(m);
}

/* Whether a message is worth holding: native, one part, with room for a
 * record worth wrapping. */
static bool zin_holdable(const struct zin *s, zmq_msg_t *msg)
{
	size_t len = zmq_msg_size(msg);

	return s->can_wrap && !zmq_msg_more(msg) && s->cfg->wire != ZIN_LEGACY &&
	       s->cfg->wire != ZIN_LEGACY_RC &&
	       len >= PP_WIRE_HEADER_LEN + PP_WIRE_RECORD_LEN + ZIN_WRAP_MIN &&
	       wire_is_native(zmq_msg_data(msg), len);
}

/* One message off the socket: 1 if one was handled, 0 if none waits. */
static int zin_one(struct zin *s)
{
	zmq_msg_t msg;
	size_t len;
	int rc = 1;

	if (!(zsock_events(&s->z) & ZMQ_POLLIN))
		return 0;
	zmq_msg_init(&msg);
	if (zmq_msg_recv(&msg, s->z.sock, ZMQ_DONTWAIT) < 0) {
		if (zmq_errno() != EAGAIN && zmq_errno() != EINTR)
			s->host->log_limited(s->node, &s->recv_limit, PP_LOG_ERROR, "zmq_recv: %s",
					     zmq_strerror(zmq_errno()));
		rc = zmq_errno() == EINTR ? 1 : 0;
	} else if (zin_holdable(s, &msg)) {
		zin_native_held(s, &msg);
	} else if (!zmq_msg_more(&msg)) {
		zin_message(s, zmq_msg_data(&msg), zmq_msg_size(&msg));
	} else if (zin_join(s, &msg, &len)) {
		zin_message(s, s->joined, len);
	} else {
		pp_counter_add(s->frames_in, 1);
		zin_bad(s, "multi-part", -EMSGSIZE, len);
	}
	zmq_msg_close(&msg);
	return rc;
}

/* A queue ahead is nearly full: messages stay in libzmq's queue (rcvhwm),
 * then in TCP's buffers, and so hold the senders back; the host calls
 * zin_turn() again once that queue has drained. */
static bool zin_held_back(struct zin *s)
{
	return outq_wait(&s->out, zin_turn, s);
}

static void zin_turn(void *arg)
{
	struct zin *s = arg;

	for (int i = 0; i < ZIN_MSGS_PER_TURN; i++) {
		/* Asked before every message: one may hold several batches. */
		if (zin_held_back(s) || !zin_one(s)) {
			outq_emit(&s->out);
			return;
		}
	}
	outq_emit(&s->out);
	/* Budget spent with messages left: edge-triggered, so no new event
	 * would come for them. */
	s->host->timer_arm(s->again, 0, 0);
}

/* ------------------------------------------------------------------ */
/* Stopping                                                             */

static int zin_stop(void *state)
{
	struct zin *s = state;

	/* What libzmq already received is ours: deliver it, within bounds. */
	for (int i = 0; i < ZIN_STOP_DRAIN_MAX && zin_one(s); i++)
		;
	outq_emit(&s->out);
	if (s->watch)
		s->host->unwatch(s->watch);
	s->watch = NULL;
	s->host->timer_free(s->again);
	s->again = NULL;
	zsock_close(&s->z, 0);
	zsock_term(&s->z);
	return 0;
}

static void zin_close(void *state)
{
	struct zin *s = state;

	zsock_term(&s->z);
	frame_reader_release(&s->rd);
	free(s->joined);
	free(s);
}

PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "zmq-in",
	.summary = "receive packets over ZeroMQ (pull/sub), native or legacy wire",
	.roles = PP_ROLE_SOURCE,
	.options = zin_options,
	.config_size = sizeof(struct zin_config),
	.validate = zin_validate,
	.open = zin_open,
	.start = zin_start,
	.stop = zin_stop,
	.close = zin_close,
};
