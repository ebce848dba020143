/* The ring's query socket: ZeroMQ REP, driven from the host's loop.
 *
 * A REP socket alternates strictly: receive a request, send its reply. So
 * every request read is answered at once, whatever it was (a malformed
 * query gets an error reply), and a reply that cannot be sent whole is
 * ended with an empty frame; if even that fails the socket is made anew on
 * the endpoints it had bound. The socket can never be left waiting for a
 * reply that is not coming.
 *
 * ZMQ_FD is edge-triggered (see zmq-in): each turn answers what is waiting,
 * at most SERVE_PER_TURN requests, then comes back through a zero-delay
 * timer so that packets keep flowing between expensive queries.
 *
 * Replies are built whole in one buffer (a consistent snapshot: the loop
 * takes no packet while it is built) and handed to libzmq without a copy;
 * the frames of a legacy reply are slices of it. `pending` counts the bytes
 * libzmq still holds (released on its I/O thread); above max_pending new
 * queries are refused as busy, so that clients that never read cannot make
 * the daemon hold copies of the ring without bound. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include <pktpipe/wire.h>

#include "ring.h"

#define SERVE_PER_TURN 8
#define SERVE_ERR_MAX 512

/* ------------------------------------------------------------------ */
/* Endpoints                                                            */

/* Only a few numeric loopback forms: anything else may face a network. */
bool serve_endpoint_local(const char *ep)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *host, *colon;
	struct in6_addr a6;
	struct in_addr a4;
	size_t len;

	if (!strncmp(ep, "ipc://", 6) || !strncmp(ep, "inproc://", 9))
		return true;
	if (strncmp(ep, "tcp://", 6) != 0)
		return false;
	host = ep + 6;
	colon = strrchr(host, ':');
	if (!colon)
		return false;
	len = (size_t)(colon - host);
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
		host++;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(addr))
		return false;
	memcpy(addr, host, len);
	addr[len] = '\0';
	if (inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, addr, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* ------------------------------------------------------------------ */
/* The socket                                                           */

/* Bind one endpoint at a time, to learn each one's resolved address. */
static int serve_bind(struct ring *r, const struct pp_list *eps, bool record)
{
	char last[512];
	size_t len;
	int rc;

	for (size_t i = 0; i < eps->count; i++) {
		struct pp_list one = { .count = 1, .str = &eps->str[i] };

		rc = zsock_attach(&r->z, &one, true);
		if (rc < 0)
			return rc;
		if (!record)
			continue;
		len = sizeof(last);
		if (zmq_getsockopt(r->z.sock, ZMQ_LAST_ENDPOINT, last, &len) != 0)
			snprintf(last, sizeof(last), "%s", eps->str[i]);
		r->bound.str[i] = strdup(last);
		if (!r->bound.str[i])
			return -ENOMEM;
	}
	return 0;
}

static int serve_socket(struct ring *r, const struct pp_list *eps, bool record)
{
	int64_t max = QUERY_REQUEST_MAX;
	int rc;

	rc = zsock_init(&r->z, r->node, r->host, ZMQ_REP);
	if (rc < 0)
		return rc;
	/* libzmq drops the connection of a peer that sends more. */
	if (zmq_setsockopt(r->z.sock, ZMQ_MAXMSGSIZE, &max, sizeof(max)) != 0) {
		r->host->log(r->node, PP_LOG_ERROR, "cannot set the largest request: %s",
			     zmq_strerror(zmq_errno()));
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = zsock_curve(&r->z, &r->cfg->curve);
	if (rc == 0)
		rc = serve_bind(r, eps, record);
	if (rc < 0)
		zsock_term(&r->z);
	return rc;
}

static void serve_turn(void *arg);

int serve_open(struct ring *r)
{
	const struct pp_list *eps = &r->cfg->endpoint;
	int rc;

	if (!eps->count) {
		r->host->log(r->node, PP_LOG_INFO, "no endpoint: holding packets, answering no query");
		return 0;
	}
	r->bound.str = calloc(eps->count, sizeof(*r->bound.str));
	r->again = r->host->timer_new(r->node, serve_turn, r);
	if (!r->bound.str || !r->again)
		return -ENOMEM;
	r->bound.count = eps->count;
	rc = serve_socket(r, eps, true);
	if (rc == 0)
		r->serving = true;
	return rc;
}

static void serve_ready(void *arg, int fd, unsigned events)
{
	(void)fd;
	(void)events;
	serve_turn(arg);
}

static int serve_watch(struct ring *r)
{
	int fd, rc;

	rc = zsock_fd(&r->z, &fd);
	if (rc < 0)
		return rc;
	r->watch = r->host->watch_fd(r->node, fd, PP_WATCH_READ | PP_WATCH_EDGE, serve_ready, r);
	if (!r->watch)
		return -ENOMEM;
	rc = zsock_start(&r->z);
	if (rc < 0)
		return rc;
	/* Requests that came before the watch raise no new edge. */
	return r->host->timer_arm(r->again, 0, 0);
}

int serve_start(struct ring *r)
{
	return r->serving ? serve_watch(r) : 0;
}

static void serve_unwatch(struct ring *r)
{
	if (r->watch)
		r->host->unwatch(r->watch);
	r->watch = NULL;
	zsock_close(&r->z, 0);
	zsock_term(&r->z);
}

void serve_close(struct ring *r)
{
	serve_unwatch(r);
	if (r->again)
		r->host->timer_free(r->again);
	r->again = NULL;
	for (size_t i = 0; r->bound.str && i < r->bound.count; i++)
		free(r->bound.str[i]);
	free(r->bound.str);
	r->bound = (struct pp_list){ 0 };
	r->serving = false;
}

/* The socket failed in a way only a new one mends. */
static void serve_reset(struct ring *r)
{
	int rc;

	r->host->log(r->node, PP_LOG_ERROR, "the query socket failed (%s); making a new one",
		     zmq_strerror(zmq_errno()));
	serve_unwatch(r);
	rc = serve_socket(r, &r->bound, false);
	if (rc == 0)
		rc = serve_watch(r);
	if (rc < 0) {
		r->serving = false;
		r->host->log(r->node, PP_LOG_ERROR, "no query socket: queries go unanswered");
	}
}

/* ------------------------------------------------------------------ */
/* Sending                                                              */

/* A reply, shared by the frames that are slices of it. */
struct reply_buf {
	struct ring *r;
	uint32_t refs; /* frames not yet released; atomic */
	size_t len;
	uint8_t data[];
};

/* libzmq is done with a frame (on its I/O thread, or ours). */
static void reply_free(void *data, void *hint)
{
	struct reply_buf *b = hint;

	(void)data;
	if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	__atomic_sub_fetch(&b->r->pending, b->len, __ATOMIC_RELAXED);
	free(b);
}

static struct reply_buf *reply_new(struct ring *r, size_t len, uint32_t frames)
{
	struct reply_buf *b = malloc(sizeof(*b) + len);

	if (!b)
		return NULL;
	*b = (struct reply_buf){ .r = r, .refs = frames, .len = len };
	__atomic_add_fetch(&r->pending, len, __ATOMIC_RELAXED);
	pp_counter_add(r->reply_bytes, len);
	return b;
}

static bool serve_busy(struct ring *r)
{
	return __atomic_load_n(&r->pending, __ATOMIC_RELAXED) > r->cfg->max_pending;
}

static bool send_msg(struct ring *r, zmq_msg_t *m, bool more)
{
	if (zmq_msg_send(m, r->z.sock, (more ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) >= 0)
		return true;
	zmq_msg_close(m);
	return false;
}

static bool send_copy(struct ring *r, const void *data, size_t len, bool more)
{
	zmq_msg_t m;

	if (zmq_msg_init_size(&m, len) != 0)
		return false;
	if (len)
		memcpy(zmq_msg_data(&m), data, len);
	return send_msg(r, &m, more);
}

/* A slice of b as one frame, without a copy; it carries one of b's refs. */
static bool send_slice(struct ring *r, struct reply_buf *b, size_t off, size_t len, bool more)
{
	zmq_msg_t m;

	if (!len) {
		reply_free(NULL, b);
		return send_copy(r, NULL, 0, more);
	}
	if (zmq_msg_init_data(&m, b->data + off, len, reply_free, b) != 0) {
		reply_free(NULL, b);
		return false;
	}
	return send_msg(r, &m, more);
}

/* A reply could not go out whole: end the message, or mend the socket. */
static void serve_failed(struct ring *r)
{
	pp_counter_add(r->query_errors, 1);
	r->host->log_limited(r->node, &r->query_limit, PP_LOG_WARNING,
			     "cannot send a reply: %s", zmq_strerror(zmq_errno()));
	if (!send_copy(r, NULL, 0, false))
		serve_reset(r);
}

/* ------------------------------------------------------------------ */
/* Replies                                                              */

static void serve_error(struct ring *r, const char *why)
{
	char text[SERVE_ERR_MAX + 8];
	int n = snprintf(text, sizeof(text), "ERR %s", why);

	pp_counter_add(r->query_errors, 1);
	r->host->log_limited(r->node, &r->query_limit, PP_LOG_INFO, "refused a query: %s", why);
	if (!send_copy(r, text, n < (int)sizeof(text) ? (size_t)n : sizeof(text) - 1, false))
		serve_failed(r);
}

/* Two frames: a status line, then the capture. */
static void serve_native(struct ring *r)
{
	enum dump_format format = r->q.format == QUERY_PCAPNG ? DUMP_PCAPNG : DUMP_PCAP;
	char err[SERVE_ERR_MAX], status[160];
	struct reply_buf *b;
	size_t len;
	int n;

	if (serve_busy(r)) {
		serve_error(r, "busy: earlier replies are still being sent (max_pending)");
		return;
	}
	if (dump_select(&r->store, &r->q, format, &r->sel, err, sizeof(err)) < 0) {
		serve_error(r, err);
		return;
	}
	len = dump_size(&r->sel, format);
	b = reply_new(r, len, 1);
	if (!b) {
		serve_error(r, "out of memory");
		return;
	}
	dump_encode(&r->sel, format, b->data);
	n = snprintf(status, sizeof(status), "OK packets=%zu bytes=%" PRIu64 " skipped=%" PRIu64,
		     r->sel.n, r->sel.bytes, r->sel.skipped);
	if (!send_copy(r, status, (size_t)n, true)) {
		reply_free(NULL, b);
		serve_failed(r);
		return;
	}
	if (!send_slice(r, b, 0, len, false))
		serve_failed(r);
}

/* The original's reply with no packet: a pcap header, then the end. */
static void serve_legacy_empty(struct ring *r)
{
	struct selection none = { .linktype = PP_LEGACY_PCAP_LINKTYPE };
	uint8_t header[DUMP_PCAP_HEADER];

	dump_encode(&none, DUMP_LEGACY, header);
	if (!send_copy(r, header, sizeof(header), true) || !send_copy(r, NULL, 0, false))
		serve_failed(r);
}

/* Header frame, a record-header and a data frame per packet, an empty frame. */
static void serve_legacy_frames(struct ring *r, struct reply_buf *b)
{
	size_t off = DUMP_PCAP_HEADER;
	bool ok = send_slice(r, b, 0, DUMP_PCAP_HEADER, true);

	for (size_t i = 0; i < r->sel.n; i++) {
		uint32_t caplen = dump_legacy_caplen(r->sel.pkts[i]);

		if (ok)
			ok = send_slice(r, b, off, DUMP_PCAP_RECORD, true);
		else
			reply_free(NULL, b);
		off += DUMP_PCAP_RECORD;
		if (ok)
			ok = send_slice(r, b, off, caplen, true);
		else
			reply_free(NULL, b);
		off += caplen;
	}
	if (!ok || !send_copy(r, NULL, 0, false))
		serve_failed(r);
}

static void serve_legacy(struct ring *r)
{
	char err[SERVE_ERR_MAX];
	struct reply_buf *b = NULL;

	pp_counter_add(r->queries_legacy, 1);
	if (serve_busy(r)) {
		snprintf(err, sizeof(err), "busy: earlier replies are still being sent (max_pending)");
	} else if (dump_select(&r->store, NULL, DUMP_LEGACY, &r->sel, err, sizeof(err)) == 0) {
		b = reply_new(r, dump_size(&r->sel, DUMP_LEGACY), (uint32_t)(1 + 2 * r->sel.n));
		if (!b)
			snprintf(err, sizeof(err), "out of memory");
	}
	if (!b) {
		/* The legacy reply has no way to say why: an empty capture. */
		pp_counter_add(r->query_errors, 1);
		r->host->log_limited(r->node, &r->query_limit, PP_LOG_WARNING,
				     "legacy query answered with no packets: %s", err);
		serve_legacy_empty(r);
		return;
	}
	dump_encode(&r->sel, DUMP_LEGACY, b->data);
	serve_legacy_frames(r, b);
}

/* ------------------------------------------------------------------ */
/* Requests                                                             */

/* The rest of a multi-part request, read and dropped: how many parts. */
static int serve_drain(struct ring *r, zmq_msg_t *first)
{
	bool more = zmq_msg_more(first);
	zmq_msg_t part;
	int parts = 1;

	while (more) {
		zmq_msg_init(&part);
		if (zmq_msg_recv(&part, r->z.sock, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&part);
			break;
		}
		more = zmq_msg_more(&part);
		zmq_msg_close(&part);
		parts++;
	}
	return parts;
}

static void serve_request(struct ring *r, const void *req, size_t len, int parts)
{
	char err[SERVE_ERR_MAX];
	int rc = query_parse(req, len, &r->q, err, sizeof(err));

	pp_counter_add(r->queries, 1);
	if (rc == 0) {
		serve_legacy(r);
		return;
	}
	if (rc > 0 && parts > 1) {
		rc = -EINVAL;
		snprintf(err, sizeof(err), "a native query is a single frame");
	}
	if (rc < 0) {
		serve_error(r, err);
		return;
	}
	serve_native(r);
}

/* 1 if a request was answered, 0 if none waits. */
static int serve_one(struct ring *r)
{
	zmq_msg_t req;
	int parts;

	if (!r->serving || !(zsock_events(&r->z) & ZMQ_POLLIN))
		return 0;
	zmq_msg_init(&req);
	if (zmq_msg_recv(&req, r->z.sock, ZMQ_DONTWAIT) < 0) {
		int e = zmq_errno();

		zmq_msg_close(&req);
		if (e != EAGAIN && e != EINTR)
			r->host->log_limited(r->node, &r->query_limit, PP_LOG_ERROR,
					     "zmq_recv: %s", zmq_strerror(e));
		return e == EINTR;
	}
	parts = serve_drain(r, &req);
	serve_request(r, zmq_msg_data(&req), zmq_msg_size(&req), parts);
	zmq_msg_close(&req);
	return 1;
}

static void serve_turn(void *arg)
{
	struct ring *r = arg;

	for (int i = 0; i < SERVE_PER_TURN; i++)
		if (!serve_one(r))
			return;
	/* Budget spent with requests left: edge-triggered, no new event. */
	r->host->timer_arm(r->again, 0, 0);
}
