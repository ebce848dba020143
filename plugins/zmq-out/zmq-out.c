/* zmq-out: send packets over ZeroMQ (PUSH or PUB), as native frames that
 * batch many packets per message, or in the legacy formats of
 * nflog-zmq-pcap-pipe (one message per packet).
 *
 * Nothing here ever waits for the network: every send is ZMQ_DONTWAIT, and
 * a message libzmq will not queue (sndhwm reached: the peer is slow or
 * away) is dropped and counted under "hwm". libzmq reconnects by itself.
 *
 * Accounting: packets waiting in the pending batch are packets_held; a
 * packet counts as delivered once libzmq has taken its message. What libzmq
 * still holds when the linger ends is lost without a count here; a native
 * receiver counts it as a sequence gap.
 *
 * Stopping: the pending batch is sent, the socket closed with ZMQ_LINGER =
 * linger, and the context terminated on a helper thread, since
 * zmq_ctx_term() blocks until the linger ends; an eventfd tells the loop
 * when it is done, and then the node reports itself finished.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include <zmq.h>

#include <pktpipe/plugin.h>
#include <pktpipe/wire.h>

#include "wire.h"
#include "zsock.h"

#define ZOUT_NS_PER_MS 1000000u

enum zout_socket { ZOUT_PUSH, ZOUT_PUB };
enum zout_wire { ZOUT_NATIVE, ZOUT_LEGACY, ZOUT_LEGACY_RC };

struct zout_config {
	struct pp_list endpoint;
	bool bind;
	int socket; /* enum zout_socket */
	int64_t sndhwm;
	int wire; /* enum zout_wire */
	int64_t batch_packets;
	uint64_t batch_bytes;
	uint64_t batch_delay; /* ns */
	uint64_t linger; /* ns */
	struct zsock_curve curve;
};

static const char *const zout_sockets[] = { "push", "pub", NULL };
static const char *const zout_wires[] = { "native", "legacy", "legacy-rc", NULL };

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
	{ .name = "sndhwm", .type = PP_OPT_INT, .default_value = "1000", .min = 1,
	  .max = 100000000, .offset = offsetof(struct zout_config, sndhwm),
	  .help = "messages queued while the peer is slow or away; beyond it packets are dropped (hwm)" },
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
	  .help = "on exit, how long libzmq may keep sending what it queued" },
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

struct zout {
	struct pp_node *node;
	const struct pp_host *host;
	const struct zout_config *cfg;
	struct pp_stats *stats;
	pp_counter *drop_hwm, *drop_error, *drop_nomem, *drop_frame, *drop_linktype;
	pp_counter *drop_stopped;
	pp_counter *packets_sent, *frames_sent, *bytes_sent;
	struct pp_log_limit hwm_limit, error_limit, nomem_limit, frame_limit, linktype_limit;
	struct zsock z;
	/* Native: the frame being gathered. */
	struct wire_header head; /* sender, flags; seq of the next frame */
	struct pp_packet **pending;
	uint32_t npending;
	size_t pending_len; /* bytes of its records */
	struct pp_timer *timer;
	/* Stopping: the thread that waits out the linger. */
	pthread_t term_thread;
	bool term_running;
	int term_fd;
	struct pp_watch *term_watch;
};

static int zout_validate(const void *config, char *err, size_t errlen)
{
	const struct zout_config *cfg = config;

	return zsock_curve_validate(&cfg->curve, err, errlen);
}

/* ------------------------------------------------------------------ */
/* Opening                                                              */

static void zout_counters(struct zout *s)
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
}

/* A sender id that differs from run to run, so that a receiver tells a
 * restarted sender (sequence from 0) from losses. */
static uint64_t zout_sender_id(const struct pp_host *host)
{
	uint64_t id;

	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id))
		id = host->now_real_ns() ^ ((uint64_t)getpid() << 32);
	return id;
}

/* Sequence numbers promise gap = loss only when every message reaches the
 * one receiver: PUB copies each to all, PUSH connecting to one endpoint
 * has one peer. PUSH to several spreads messages among them. */
static uint16_t zout_flags(const struct zout_config *cfg)
{
	if (cfg->socket == ZOUT_PUB || (!cfg->bind && cfg->endpoint.count == 1))
		return PP_WIRE_FLAG_SEQ;
	return 0;
}

static int zout_socket(struct zout *s)
{
	const struct zout_config *cfg = s->cfg;
	int rc;

	rc = zsock_init(&s->z, s->node, s->host, cfg->socket == ZOUT_PUB ? ZMQ_PUB : ZMQ_PUSH);
	if (rc < 0)
		return rc;
	rc = zsock_set(&s->z, ZMQ_SNDHWM, (int)cfg->sndhwm, "sndhwm");
	if (rc == 0)
		rc = zsock_curve(&s->z, &cfg->curve);
	if (rc == 0)
		rc = zsock_attach(&s->z, &cfg->endpoint, cfg->bind);
	if (rc < 0)
		zsock_term(&s->z);
	return rc;
}

static void zout_batch_due(void *arg);

static int zout_open(struct pp_node *node, const struct pp_host *host, const void *config,
		     void **state)
{
	const struct zout_config *cfg = config;
	struct zout *s;
	int rc = -ENOMEM;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*s = (struct zout){ .node = node, .host = host, .cfg = cfg, .term_fd = -1 };
	zout_counters(s);
	s->head = (struct wire_header){ .sender = zout_sender_id(host), .flags = zout_flags(cfg) };
	s->pending = calloc((size_t)cfg->batch_packets, sizeof(*s->pending));
	if (!s->pending)
		goto err_free;
	s->timer = host->timer_new(node, zout_batch_due, s);
	if (!s->timer)
		goto err_free;
	rc = zout_socket(s);
	if (rc < 0)
		goto err_timer;
	*state = s;
	return 0;
err_timer:
	host->timer_free(s->timer);
err_free:
	free(s->pending);
	free(s);
	return rc;
}

static int zout_start(void *state)
{
	struct zout *s = state;

	return zsock_start(&s->z);
}

/* ------------------------------------------------------------------ */
/* Sending                                                              */

/* Hand msg to libzmq, never waiting; false if it was dropped.
 * packets/bytes: what it carries. */
static bool zout_send(struct zout *s, zmq_msg_t *msg, uint64_t packets, uint64_t bytes)
{
	size_t size = zmq_msg_size(msg);
	int err;

	if (zmq_msg_send(msg, s->z.sock, ZMQ_DONTWAIT) >= 0) {
		s->host->delivered(s->node, packets, bytes);
		pp_counter_add(s->packets_sent, packets);
		pp_counter_add(s->frames_sent, 1);
		pp_counter_add(s->bytes_sent, size);
		return true;
	}
	err = zmq_errno();
	zmq_msg_close(msg);
	if (err == EAGAIN) {
		pp_counter_add(s->drop_hwm, packets);
		s->host->log_limited(s->node, &s->hwm_limit, PP_LOG_WARNING,
				     "peer slow or away: %lld messages queued (sndhwm); dropping",
				     (long long)s->cfg->sndhwm);
		return false;
	}
	pp_counter_add(s->drop_error, packets);
	s->host->log_limited(s->node, &s->error_limit, PP_LOG_ERROR, "zmq_send: %s; dropping",
			     zmq_strerror(err));
	return false;
}

static void zout_nomem(struct zout *s, uint64_t packets, size_t len)
{
	pp_counter_add(s->drop_nomem, packets);
	s->host->log_limited(s->node, &s->nomem_limit, PP_LOG_ERROR,
			     "no memory for a message of %zu bytes; dropping", len);
}

/* The pending batch as one native frame. */
static void zout_flush(struct zout *s)
{
	uint32_t n = s->npending;
	size_t len = PP_WIRE_HEADER_LEN + s->pending_len;
	uint64_t bytes = 0;
	zmq_msg_t msg;

	if (!n)
		return;
	s->host->timer_disarm(s->timer);
	for (uint32_t i = 0; i < n; i++)
		bytes += s->pending[i]->caplen;
	if (zmq_msg_init_size(&msg, len) != 0) {
		zout_nomem(s, n, len);
	} else {
		wire_native_encode(zmq_msg_data(&msg), len, &s->head, s->pending, n);
		/* The sequence counts what went on the wire: a receiver must
		 * not count our own hwm drops as network losses. */
		if (zout_send(s, &msg, n, bytes))
			s->head.seq += n;
	}
	for (uint32_t i = 0; i < n; i++)
		s->host->packet_unref(s->pending[i]);
	s->npending = 0;
	s->pending_len = 0;
	pp_counter_set(&s->stats->packets_held, 0);
}

static void zout_batch_due(void *arg)
{
	zout_flush(arg);
}

static void zout_add(struct zout *s, struct pp_packet *p)
{
	size_t rec = wire_native_record_len(p);

	if (s->npending && PP_WIRE_HEADER_LEN + s->pending_len + rec > s->cfg->batch_bytes)
		zout_flush(s);
	s->host->packet_ref(p);
	s->pending[s->npending++] = p;
	s->pending_len += rec;
	pp_counter_set(&s->stats->packets_held, s->npending);
	if (s->npending == 1 && s->cfg->batch_delay)
		s->host->timer_arm(s->timer, s->cfg->batch_delay, 0);
	if (s->npending >= (uint64_t)s->cfg->batch_packets ||
	    PP_WIRE_HEADER_LEN + s->pending_len >= s->cfg->batch_bytes)
		zout_flush(s);
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
 * reference until its I/O thread has written it. */
static void zout_frame(struct zout *s, struct pp_packet *p)
{
	struct zout_ref *ref;
	zmq_msg_t msg;

	if (s->cfg->wire != ZOUT_NATIVE) {
		pp_counter_add(s->drop_frame, p->count);
		s->host->log_limited(s->node, &s->frame_limit, PP_LOG_WARNING,
				     "native frames cannot be sent on a legacy wire; dropping");
		return;
	}
	zout_flush(s); /* keep the order packets came in */
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
	zout_send(s, &msg, p->count, p->caplen);
}

static bool zout_raw_ip(uint32_t linktype)
{
	return linktype == 12 || linktype == 101 || linktype == 228 || linktype == 229;
}

/* Legacy: one message per packet. The format has no linktype: receivers
 * take raw IP, so anything else would reach them as garbage. */
static void zout_legacy(struct zout *s, struct pp_packet *p)
{
	bool rc_tag = s->cfg->wire == ZOUT_LEGACY_RC;
	size_t len = rc_tag ? wire_legacy_rc_len(p->caplen) : wire_legacy_len(p->caplen);
	zmq_msg_t msg;

	if (!zout_raw_ip(p->linktype)) {
		pp_counter_add(s->drop_linktype, 1);
		s->host->log_limited(s->node, &s->linktype_limit, PP_LOG_WARNING,
				     "the legacy wire carries raw IP only, not linktype %u; dropping",
				     p->linktype);
		return;
	}
	if (zmq_msg_init_size(&msg, len) != 0) {
		zout_nomem(s, 1, len);
		return;
	}
	if (rc_tag)
		wire_legacy_rc_put(zmq_msg_data(&msg), p);
	else
		wire_legacy_put(zmq_msg_data(&msg), p);
	zout_send(s, &msg, 1, p->caplen);
}

static int zout_process(void *state, struct pp_batch *batch)
{
	struct zout *s = state;

	for (uint32_t i = 0; i < batch->count; i++) {
		struct pp_packet *p = batch->pkts[i];

		if (p->linktype == PP_LINKTYPE_FRAME)
			zout_frame(s, p);
		else if (s->cfg->wire == ZOUT_NATIVE)
			zout_add(s, p);
		else
			zout_legacy(s, p);
	}
	if (!s->cfg->batch_delay)
		zout_flush(s);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Stopping                                                             */

static void *zout_term_main(void *arg)
{
	struct zout *s = arg;
	uint64_t one = 1;

	zsock_term(&s->z);
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
	zsock_term(&s->z);
	return 0;
}

static int zout_stop(void *state)
{
	struct zout *s = state;
	uint64_t linger_ms = s->cfg->linger / ZOUT_NS_PER_MS;

	zout_flush(s);
	s->host->timer_free(s->timer);
	s->timer = NULL;
	zsock_close(&s->z, (int)linger_ms);
	if (!linger_ms) {
		zsock_term(&s->z);
		return 0;
	}
	return zout_linger(s);
}

/* close() without stop() (a failed start): what is pending was never
 * sent. A timer or watch still here belongs to the host. */
static void zout_close(void *state)
{
	struct zout *s = state;

	if (s->term_running)
		pthread_join(s->term_thread, NULL);
	else
		zsock_term(&s->z);
	if (s->term_fd >= 0)
		close(s->term_fd);
	pp_counter_add(s->drop_stopped, s->npending);
	for (uint32_t i = 0; i < s->npending; i++)
		s->host->packet_unref(s->pending[i]);
	pp_counter_set(&s->stats->packets_held, 0);
	free(s->pending);
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
