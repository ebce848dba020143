/* pktpipe-query: ask a ring node for the packets it holds; the capture goes
 * to stdout.
 *
 *   pktpipe-query [--filter EXPR] [--after T] [--before T] [--last D]
 *                 [--limit-packets N] [--limit-bytes N] [--format pcap|pcapng]
 *                 [--timeout D] [--legacy] [--curve-server-key KEY
 *                 --curve-secret-key FILE] [-v] ENDPOINT > out.pcap
 *
 * Every value is checked here first, with the ring's own parser
 * (../query.c), and sent in its canonical form. The wait for the answer is
 * bounded (--timeout, default 5 s): with nothing answering, it says so and
 * exits 1. --legacy asks as the original nflog-pcap-query did (works with
 * an original nflog-pcap-recv too) and writes the reply's frames as they
 * come. Exit status: 0 ok, 1 no answer or an error reply, 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "../query.h"
#include "zsock.h"

#define DEFAULT_TIMEOUT_NS (5 * UINT64_C(1000000000))
#define MAX_TIMEOUT_NS (86400 * UINT64_C(1000000000))
#define PARTS_MAX (1u << 24) /* frames of a reply we are ready to keep */

static const char *prog = "pktpipe-query";
static bool verbose;

struct args {
	struct query q;
	bool legacy;
	uint64_t timeout_ns;
	char timeout_text[32];
	const char *endpoint;
	struct zsock_curve curve;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [OPTIONS] ENDPOINT > out.pcap\n"
		"Ask a pktpipe ring for the packets it holds; the capture goes to stdout.\n\n"
		"  --filter EXPR          BPF filter (tcpdump's syntax)\n"
		"  --after T              packets at or after T: epoch seconds (1714564800.25)\n"
		"                         or RFC 3339 (2024-05-01T12:00:00.25Z)\n"
		"  --before T             packets before T\n"
		"  --last D               packets within D of the newest one (90s, 5min, 1.5h)\n"
		"  --limit-packets N      at most the newest N packets that match\n"
		"  --limit-bytes N        at most N bytes of packet data (KiB, MiB, GiB too)\n"
		"  --format pcap|pcapng   what to write (default pcap)\n"
		"  --timeout D            how long to wait for the answer (default 5s)\n"
		"  --legacy               ask as the original nflog-pcap-query (no options)\n"
		"  --curve-server-key KEY      the ring's CurveZMQ public key (Z85)\n"
		"  --curve-secret-key FILE     this client's CurveZMQ secret key file\n"
		"  -v, --verbose          say what the ring answered\n"
		"  -h, --help\n\n"
		"Exit status: 0 ok, 1 no answer or an error reply, 2 usage.\n",
		prog);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* zsock's host: it only logs, here to stderr                           */

static void host_vlog(int level, const char *fmt, va_list ap)
{
	if (level > PP_LOG_WARNING && !verbose)
		return;
	fprintf(stderr, "%s: ", prog);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void host_log(struct pp_node *node, int level, const char *fmt, ...)
{
	va_list ap;

	(void)node;
	va_start(ap, fmt);
	host_vlog(level, fmt, ap);
	va_end(ap);
}

static void host_log_limited(struct pp_node *node, struct pp_log_limit *lim, int level,
			     const char *fmt, ...)
{
	va_list ap;

	(void)node;
	(void)lim;
	va_start(ap, fmt);
	host_vlog(level, fmt, ap);
	va_end(ap);
}

static const struct pp_host host = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_host),
	.log = host_log,
	.log_limited = host_log_limited,
};

/* ------------------------------------------------------------------ */
/* Arguments                                                            */

enum {
	OPT_FILTER = 256,
	OPT_AFTER,
	OPT_BEFORE,
	OPT_LAST,
	OPT_LIMIT_PACKETS,
	OPT_LIMIT_BYTES,
	OPT_FORMAT,
	OPT_TIMEOUT,
	OPT_LEGACY,
	OPT_SERVER_KEY,
	OPT_SECRET_KEY,
};

static const struct option long_options[] = {
	{ "filter", required_argument, NULL, OPT_FILTER },
	{ "after", required_argument, NULL, OPT_AFTER },
	{ "before", required_argument, NULL, OPT_BEFORE },
	{ "last", required_argument, NULL, OPT_LAST },
	{ "limit-packets", required_argument, NULL, OPT_LIMIT_PACKETS },
	{ "limit-bytes", required_argument, NULL, OPT_LIMIT_BYTES },
	{ "format", required_argument, NULL, OPT_FORMAT },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "legacy", no_argument, NULL, OPT_LEGACY },
	{ "curve-server-key", required_argument, NULL, OPT_SERVER_KEY },
	{ "curve-secret-key", required_argument, NULL, OPT_SECRET_KEY },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const struct {
	const char *name;
	uint64_t mult;
} size_units[] = {
	{ "B", 1 },
	{ "KiB", UINT64_C(1) << 10 },
	{ "MiB", UINT64_C(1) << 20 },
	{ "GiB", UINT64_C(1) << 30 },
	{ "TiB", UINT64_C(1) << 40 },
	{ "KB", 1000 },
	{ "MB", 1000000 },
	{ "GB", 1000000000 },
	{ "TB", UINT64_C(1000000000000) },
};

/* A whole number of bytes, with an optional unit. */
static int parse_size(const char *text, uint64_t *v, char *err, size_t errlen)
{
	size_t digits = strspn(text, "0123456789");
	const char *unit = text + digits;

	if (!digits) {
		snprintf(err, errlen, "'%s' is not a size (1500, 64KiB, 2MiB)", text);
		return -EINVAL;
	}
	if (query_count(text, digits, v, err, errlen) < 0)
		return -EINVAL;
	for (size_t k = 0; k < sizeof(size_units) / sizeof(size_units[0]); k++) {
		if (strcasecmp(unit, size_units[k].name) != 0 && *unit)
			continue;
		if (*v > UINT64_MAX / size_units[k].mult) {
			snprintf(err, errlen, "'%s' is too large", text);
			return -EINVAL;
		}
		*v *= size_units[k].mult;
		return 0;
	}
	snprintf(err, errlen, "'%s': unknown unit (use B, KiB, MiB, GiB, KB, MB, GB)", text);
	return -EINVAL;
}

static int parse_filter(const char *text, struct query *q, char *err, size_t errlen)
{
	size_t n = strlen(text);

	if (!n || n > QUERY_FILTER_MAX) {
		snprintf(err, errlen, "must be 1 to %d bytes long", QUERY_FILTER_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)text[i];

		if ((c < 0x20 && c != '\t') || c >= 0x7f) {
			snprintf(err, errlen, "only printable ASCII (byte 0x%02x at %zu)", c, i);
			return -EINVAL;
		}
	}
	memcpy(q->filter, text, n + 1);
	return 0;
}

static int parse_format(const char *text, int *format, char *err, size_t errlen)
{
	if (!strcmp(text, "pcap"))
		*format = QUERY_PCAP;
	else if (!strcmp(text, "pcapng"))
		*format = QUERY_PCAPNG;
	else
		snprintf(err, errlen, "'%s' is not pcap or pcapng", text);
	return !strcmp(text, "pcap") || !strcmp(text, "pcapng") ? 0 : -EINVAL;
}

static int parse_timeout(const char *text, struct args *a, char *err, size_t errlen)
{
	if (query_duration(text, strlen(text), &a->timeout_ns, err, errlen) < 0)
		return -EINVAL;
	if (a->timeout_ns == 0 || a->timeout_ns > MAX_TIMEOUT_NS) {
		snprintf(err, errlen, "must be more than 0 and at most a day");
		return -EINVAL;
	}
	snprintf(a->timeout_text, sizeof(a->timeout_text), "%gs", (double)a->timeout_ns / 1e9);
	return 0;
}

/* A query option's value into q; which key it sets in *bit. */
static int parse_query_opt(int opt, const char *v, struct query *q, unsigned *bit, char *err,
			   size_t errlen)
{
	size_t n = strlen(v);

	switch (opt) {
	case OPT_FILTER:
		*bit = QUERY_FILTER;
		return parse_filter(v, q, err, errlen);
	case OPT_AFTER:
		*bit = QUERY_AFTER;
		return query_time(v, n, &q->after_ns, err, errlen);
	case OPT_BEFORE:
		*bit = QUERY_BEFORE;
		return query_time(v, n, &q->before_ns, err, errlen);
	case OPT_LAST:
		*bit = QUERY_LAST;
		return query_duration(v, n, &q->last_ns, err, errlen);
	case OPT_LIMIT_PACKETS:
		*bit = QUERY_LIMIT_PACKETS;
		return query_count(v, n, &q->limit_packets, err, errlen);
	case OPT_LIMIT_BYTES:
		*bit = QUERY_LIMIT_BYTES;
		return parse_size(v, &q->limit_bytes, err, errlen);
	default:
		*bit = QUERY_FORMAT;
		return parse_format(v, &q->format, err, errlen);
	}
}

static int parse_opt(int opt, const char *v, struct args *a, char *err, size_t errlen)
{
	unsigned bit = 0;
	int rc;

	switch (opt) {
	case OPT_TIMEOUT:
		return parse_timeout(v, a, err, errlen);
	case OPT_LEGACY:
		a->legacy = true;
		return 0;
	case OPT_SERVER_KEY:
		a->curve.server_key = (char *)v;
		return 0;
	case OPT_SECRET_KEY:
		a->curve.secret_key = (char *)v;
		return 0;
	case 'v':
		verbose = true;
		return 0;
	}
	rc = parse_query_opt(opt, v, &a->q, &bit, err, errlen);
	if (rc == 0 && (a->q.set & bit)) {
		snprintf(err, errlen, "given twice");
		rc = -EINVAL;
	}
	a->q.set |= bit;
	return rc;
}

/* Cross-option checks, once every option is in. */
static int check_args(struct args *a, char *err, size_t errlen)
{
	if (a->legacy && a->q.set) {
		snprintf(err, errlen, "--legacy takes no query option: the original protocol has none");
		return -EINVAL;
	}
	if ((a->q.set & QUERY_AFTER) && (a->q.set & QUERY_BEFORE) && a->q.after_ns >= a->q.before_ns) {
		snprintf(err, errlen, "--after must be earlier than --before");
		return -EINVAL;
	}
	if (!a->curve.server_key != !a->curve.secret_key) {
		snprintf(err, errlen, "--curve-server-key and --curve-secret-key go together");
		return -EINVAL;
	}
	return zsock_curve_validate(&a->curve, err, errlen);
}

/* 0, or 2 (usage) with the reason said; -1 for --help. */
static int parse_args(int argc, char **argv, struct args *a)
{
	char err[512];
	int opt;

	a->timeout_ns = DEFAULT_TIMEOUT_NS;
	snprintf(a->timeout_text, sizeof(a->timeout_text), "5s");
	while ((opt = getopt_long(argc, argv, "vh", long_options, NULL)) != -1) {
		if (opt == 'h')
			return -1;
		if (opt == '?')
			return 2;
		if (parse_opt(opt, optarg, a, err, sizeof(err)) < 0) {
			say("--%s: %s", opt == 'v' ? "verbose" : long_options[opt - OPT_FILTER].name,
			    err);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		say(optind == argc ? "which ENDPOINT? (tcp://host:port, ipc://path)"
				   : "one ENDPOINT only");
		return 2;
	}
	a->endpoint = argv[optind];
	if (check_args(a, err, sizeof(err)) < 0) {
		say("%s", err);
		return 2;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Asking                                                               */

struct reply {
	zmq_msg_t *parts;
	size_t n, cap;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Wait for the first frame until the deadline: 0, or -ETIMEDOUT. */
static int wait_reply(void *sock, uint64_t deadline)
{
	zmq_pollitem_t item = { .socket = sock, .events = ZMQ_POLLIN };

	for (;;) {
		uint64_t now = now_ns();
		int rc;

		if (now >= deadline)
			return -ETIMEDOUT;
		rc = zmq_poll(&item, 1, (long)((deadline - now + 999999) / 1000000));
		if (rc > 0)
			return 0;
		if (rc < 0 && zmq_errno() != EINTR)
			return -zmq_errno();
	}
}

/* Every frame of the reply (they arrive together). */
static int read_reply(void *sock, struct reply *r)
{
	bool more = true;

	while (more) {
		if (r->n == r->cap) {
			size_t cap = r->cap ? r->cap * 2 : 64;
			zmq_msg_t *parts = cap <= PARTS_MAX ? realloc(r->parts, cap * sizeof(*parts)) : NULL;

			if (!parts)
				return -ENOMEM;
			r->parts = parts;
			r->cap = cap;
		}
		zmq_msg_init(&r->parts[r->n]);
		if (zmq_msg_recv(&r->parts[r->n], sock, 0) < 0) {
			zmq_msg_close(&r->parts[r->n]);
			return -zmq_errno();
		}
		more = zmq_msg_more(&r->parts[r->n++]);
	}
	return 0;
}

static void reply_free(struct reply *r)
{
	for (size_t i = 0; i < r->n; i++)
		zmq_msg_close(&r->parts[i]);
	free(r->parts);
}

static int write_all(const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(STDOUT_FILENO, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			say("cannot write the capture: %s", n < 0 ? strerror(errno) : "short write");
			return -EIO;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The ring's words after skip bytes, printable whatever it sent. */
static void say_status(const char *what, const zmq_msg_t *m, size_t skip)
{
	char text[600];
	size_t n = zmq_msg_size((zmq_msg_t *)m) - skip;
	const char *s = (const char *)zmq_msg_data((zmq_msg_t *)m) + skip;

	n = n < sizeof(text) - 1 ? n : sizeof(text) - 1;
	for (size_t i = 0; i < n; i++)
		text[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	text[n] = '\0';
	say("%s%s", what, text);
}

static bool starts(const zmq_msg_t *m, const char *prefix)
{
	size_t n = strlen(prefix);

	return zmq_msg_size((zmq_msg_t *)m) >= n && !memcmp(zmq_msg_data((zmq_msg_t *)m), prefix, n);
}

/* A native reply: "OK ..." and the capture, or "ERR reason". */
static int native_reply(const struct args *a, struct reply *r)
{
	const char *status = zmq_msg_data(&r->parts[0]), *skipped;
	size_t len = zmq_msg_size(&r->parts[0]);

	if (r->n == 1 && starts(&r->parts[0], "ERR ")) {
		say_status("the ring refused the query: ", &r->parts[0], 4);
		return 1;
	}
	if (r->n != 2 || !starts(&r->parts[0], "OK")) {
		say("%s answered something that is not a ring's reply (an original "
		    "nflog-pcap-recv? try --legacy)", a->endpoint);
		return 1;
	}
	if (verbose)
		say_status("", &r->parts[0], 0);
	skipped = memmem(status, len, " skipped=", 9);
	if (skipped && skipped + 9 < status + len && skipped[9] != '0')
		say("some packets matched but have another linktype than the file's; "
		    "--format pcapng keeps them all");
	return write_all(zmq_msg_data(&r->parts[1]), zmq_msg_size(&r->parts[1])) < 0 ? 1 : 0;
}

static int legacy_reply(struct reply *r)
{
	for (size_t i = 0; i < r->n; i++)
		if (write_all(zmq_msg_data(&r->parts[i]), zmq_msg_size(&r->parts[i])) < 0)
			return 1;
	return 0;
}

static int ask(const struct args *a, struct zsock *z, const char *req, size_t len)
{
	uint64_t deadline = now_ns() + a->timeout_ns;
	struct reply r = { 0 };
	int rc;

	if (zmq_send(z->sock, req, len, 0) < 0) {
		say("cannot send the query to %s: %s", a->endpoint, zmq_strerror(zmq_errno()));
		return 1;
	}
	rc = wait_reply(z->sock, deadline);
	if (rc == -ETIMEDOUT)
		say("no answer from %s within %s (nothing listening there, or CurveZMQ keys it "
		    "does not accept?)", a->endpoint, a->timeout_text);
	else if (rc == 0 && (rc = read_reply(z->sock, &r)) < 0)
		say("cannot read the reply from %s: %s", a->endpoint, strerror(-rc));
	else if (rc < 0)
		say("waiting for %s: %s", a->endpoint, zmq_strerror(-rc));
	if (rc == 0)
		rc = a->legacy ? legacy_reply(&r) : native_reply(a, &r);
	else
		rc = 1;
	reply_free(&r);
	return rc;
}

static int run(const struct args *a, const char *req, size_t len)
{
	struct pp_list one = { .count = 1, .str = (char **)&a->endpoint };
	int ms = (int)(a->timeout_ns / 1000000), rc;
	struct zsock z;

	if (zsock_init(&z, NULL, &host, ZMQ_REQ) < 0)
		return 1;
	rc = zsock_set(&z, ZMQ_SNDTIMEO, ms ? ms : 1, "the send timeout");
	if (rc == 0)
		rc = zsock_curve(&z, &a->curve);
	if (rc == 0)
		rc = zsock_attach(&z, &one, false);
	rc = rc == 0 ? ask(a, &z, req, len) : 1;
	zsock_term(&z);
	return rc;
}

int main(int argc, char **argv)
{
	static struct args a;
	char req[QUERY_REQUEST_MAX];
	size_t len;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	rc = parse_args(argc, argv, &a);
	if (rc) {
		usage(rc < 0 ? stdout : stderr);
		return rc < 0 ? 0 : 2;
	}
	if (isatty(STDOUT_FILENO)) {
		say("stdout is a terminal: send the capture to a file or a pipe (> out.pcap)");
		return 2;
	}
	len = a.legacy ? 1 : query_write(&a.q, req, sizeof(req));
	if (a.legacy)
		req[0] = 'q'; /* what the original sent; any non-query will do */
	if (!len) {
		say("the query does not fit in %d bytes", QUERY_REQUEST_MAX);
		return 2;
	}
	return run(&a, req, len);
}
