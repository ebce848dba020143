/* Command lines of the original tools, translated into graphs. Each tool
 * keeps its positional arguments, options and defaults, including the
 * derived ones; what pktpipe does differently (it never blocks, never dies
 * on bad input, caps nlbufsiz at the kernel's limit) is said in a note
 * rather than by refusing a working command line. */
#include "compat.h"
#include "log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024.0 * 1024.0)
#define NLBUFSIZ_KERNEL_MAX 131072 /* the kernel refuses more */

enum {
	O_DEBUG = 256, O_PRINT, O_NLBUFSIZ, O_QTHRESH, O_TIMEOUT, O_ZMQBUF, O_RC, O_LWM, O_HWM,
	O_WMINT, O_BIF, O_BWIN, O_BTIMEOUT, O_STATS,
};

struct compat_opts {
	const char *src, *dst; /* positional */
	const char *user;
	double nlbufsiz_mib, qthresh, timeout_s, zmq_buffer; /* < 0: derive */
	bool nlbufsiz_given;
	bool rate_control;
	double lwm_mib, hwm_mib, wm_interval_mib;
	const char *bif;
	double bif_window_mib, bif_timeout_s;
	const char *statsd, *statsd_prefix, *statsd_sampling, *statsd_type;
	const char *stats_json; /* pktpipe's own addition */
	bool debug, print_only;
};

static const char *const tools[] = { "nflog-zmq-send", "nflog-pcap-recv", "nflog-zmq-compress",
				     "nflog-zmq-decompress", "nflog-pcap-query", NULL };

bool pp_compat_tool(const char *name)
{
	for (const char *const *t = tools; *t; t++)
		if (!strcmp(name, *t))
			return true;
	return false;
}

static const struct option long_opts[] = {
	{ "user", required_argument, NULL, 'u' },
	{ "libnflog-nlbufsiz", required_argument, NULL, O_NLBUFSIZ },
	{ "libnflog-qthresh", required_argument, NULL, O_QTHRESH },
	{ "libnflog-timeout", required_argument, NULL, O_TIMEOUT },
	{ "zmq-buffer", required_argument, NULL, O_ZMQBUF },
	{ "rate-control", no_argument, NULL, O_RC },
	{ "lwm", required_argument, NULL, O_LWM },
	{ "hwm", required_argument, NULL, O_HWM },
	{ "wm-interval", required_argument, NULL, O_WMINT },
	{ "buffer-interface", required_argument, NULL, O_BIF },
	{ "buffer-window", required_argument, NULL, O_BWIN },
	{ "buffer-timeout", required_argument, NULL, O_BTIMEOUT },
	{ "statsd", required_argument, NULL, 'm' },
	{ "statsd-metrics-prefix", required_argument, NULL, 'n' },
	{ "statsd-sampling", required_argument, NULL, 'i' },
	{ "statsd-type", required_argument, NULL, 't' },
	{ "debug", no_argument, NULL, O_DEBUG },
	{ "print-config", no_argument, NULL, O_PRINT },
	{ "stats-json", required_argument, NULL, O_STATS },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Which options each tool takes, as the original's argparse had them. */
static bool tool_takes(const char *tool, int opt)
{
	bool send = !strcmp(tool, "nflog-zmq-send"), recv = !strcmp(tool, "nflog-pcap-recv");
	bool comp = !strcmp(tool, "nflog-zmq-compress");

	switch (opt) {
	case 'u': case O_NLBUFSIZ: case O_QTHRESH: case O_TIMEOUT:
		return send;
	case O_ZMQBUF:
		return send || comp || !strcmp(tool, "nflog-zmq-decompress");
	case O_RC:
		return send || recv;
	case O_LWM: case O_HWM: case O_WMINT:
		return send || comp;
	case O_BIF: case O_BWIN: case O_BTIMEOUT:
		return recv;
	default:
		return true;
	}
}

static const char *option_name(int c)
{
	for (const struct option *o = long_opts; o->name; o++)
		if (o->val == c)
			return o->name;
	return "?";
}

static void usage(const char *tool, FILE *f)
{
	if (!strcmp(tool, "nflog-zmq-send"))
		fprintf(f, "usage: nflog-zmq-send [-u USER] [--libnflog-nlbufsiz MiB] [--libnflog-qthresh N]\n"
			"  [--libnflog-timeout S] [--zmq-buffer N] [--rate-control [--lwm MiB/s] [--hwm MiB/s]\n"
			"  [--wm-interval MiB]] [-m HOST[:PORT] -n PREFIX -i N[/S] -t TYPE] [--debug]\n"
			"  [--print-config] [--stats-json PATH] GROUPS DST\n");
	else if (!strcmp(tool, "nflog-pcap-recv"))
		fprintf(f, "usage: nflog-pcap-recv [--rate-control] [--buffer-interface EP --buffer-window MiB\n"
			"  [--buffer-timeout S]] [-m HOST[:PORT] -n PREFIX -i N[/S] -t TYPE] [--debug]\n"
			"  [--print-config] [--stats-json PATH] SRC DST\n");
	else
		fprintf(f, "usage: %s [--zmq-buffer N]%s [-m HOST[:PORT] -n PREFIX -i N[/S] -t TYPE]\n"
			"  [--debug] [--print-config] [--stats-json PATH] SRC DST\n", tool,
			strcmp(tool, "nflog-zmq-compress") ? "" : " [--lwm MiB/s] [--hwm MiB/s] [--wm-interval MiB]");
}

static int number(const char *tool, const char *opt, const char *text, double *out)
{
	char *end;

	*out = strtod(text, &end);
	if (end == text || *end || *out < 0) {
		fprintf(stderr, "%s: --%s: not a non-negative number: '%s'\n", tool, opt, text);
		return -1;
	}
	return 0;
}

static int set_number(const char *tool, int c, const char *arg, struct compat_opts *o)
{
	static const struct {
		int opt;
		const char *name;
		size_t offset;
	} nums[] = {
		{ O_NLBUFSIZ, "libnflog-nlbufsiz", offsetof(struct compat_opts, nlbufsiz_mib) },
		{ O_QTHRESH, "libnflog-qthresh", offsetof(struct compat_opts, qthresh) },
		{ O_TIMEOUT, "libnflog-timeout", offsetof(struct compat_opts, timeout_s) },
		{ O_ZMQBUF, "zmq-buffer", offsetof(struct compat_opts, zmq_buffer) },
		{ O_LWM, "lwm", offsetof(struct compat_opts, lwm_mib) },
		{ O_HWM, "hwm", offsetof(struct compat_opts, hwm_mib) },
		{ O_WMINT, "wm-interval", offsetof(struct compat_opts, wm_interval_mib) },
		{ O_BWIN, "buffer-window", offsetof(struct compat_opts, bif_window_mib) },
		{ O_BTIMEOUT, "buffer-timeout", offsetof(struct compat_opts, bif_timeout_s) },
	};

	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		if (nums[i].opt == c)
			return number(tool, nums[i].name, arg, (double *)((char *)o + nums[i].offset));
	return 1; /* not a number option */
}

static int set_option(const char *tool, int c, const char *arg, struct compat_opts *o)
{
	int rc = set_number(tool, c, arg, o);

	if (c == O_NLBUFSIZ)
		o->nlbufsiz_given = true;
	if (rc <= 0)
		return rc;
	switch (c) {
	case 'u': o->user = arg; break;
	case O_RC: o->rate_control = true; break;
	case O_BIF: o->bif = arg; break;
	case 'm': o->statsd = arg; break;
	case 'n': o->statsd_prefix = arg; break;
	case 'i': o->statsd_sampling = arg; break;
	case 't': o->statsd_type = arg; break;
	case O_DEBUG: o->debug = true; break;
	case O_PRINT: o->print_only = true; break;
	case O_STATS: o->stats_json = arg; break;
	default: return -1;
	}
	return 0;
}

static void defaults(struct compat_opts *o)
{
	*o = (struct compat_opts){ .nlbufsiz_mib = 10, .qthresh = -1, .timeout_s = -1,
				   .zmq_buffer = -1, .lwm_mib = 1, .hwm_mib = 5,
				   .wm_interval_mib = -1, .bif_timeout_s = 1,
				   .statsd_prefix = "{host}.nflog_pipe.", .statsd_type = "d" };
}

/* 0, or the exit status to leave with (2 usage, 0 after --help). */
static int parse(const char *tool, int argc, char **argv, struct compat_opts *o)
{
	int c;

	defaults(o);
	optind = 1;
	while ((c = getopt_long(argc, argv, "u:m:n:i:t:h", long_opts, NULL)) != -1) {
		if (c == 'h') {
			usage(tool, stdout);
			return -1;
		}
		if (c == '?' || !tool_takes(tool, c) || set_option(tool, c, optarg, o) < 0) {
			if (c != '?' && !tool_takes(tool, c))
				fprintf(stderr, "%s: option '--%s' is not one of this tool's\n", tool,
					option_name(c));
			usage(tool, stderr);
			return 2;
		}
	}
	if (argc - optind != 2) {
		usage(tool, stderr);
		return 2;
	}
	o->src = argv[optind];
	o->dst = argv[optind + 1];
	return 0;
}

/* The original's derived defaults: qthresh = nlbufsiz(MiB) * 100, timeout
 * = nlbufsiz / 5 s, zmq buffer = qthresh / 10. Its nlbufsiz was meant as
 * a buffer size; the kernel caps the real nlbufsiz at 128 KiB, so what is
 * above goes to the socket receive buffer, where it does buffer. */
static void nflog_section(FILE *f, const struct compat_opts *o)
{
	double bytes = o->nlbufsiz_mib * MIB;
	double qthresh = o->qthresh >= 0 ? o->qthresh : (double)(long)(o->nlbufsiz_mib * 100);
	double timeout = o->timeout_s >= 0 ? o->timeout_s : (double)(long)(o->nlbufsiz_mib / 5);

	fprintf(f, "[nflog]\nplugin = nflog\ngroups = %s\n", o->src);
	if (bytes > NLBUFSIZ_KERNEL_MAX) {
		if (o->nlbufsiz_given)
			pp_log(PP_LOG_WARNING, "nflog-zmq-send",
			       "--libnflog-nlbufsiz %g MiB is above the kernel's 128 KiB limit: using "
			       "nlbufsiz 128KiB and a socket receive buffer of %g MiB",
			       o->nlbufsiz_mib, o->nlbufsiz_mib < 8 ? 8 : o->nlbufsiz_mib);
		fprintf(f, "nlbufsiz = %d\n", NLBUFSIZ_KERNEL_MAX);
		if (o->nlbufsiz_mib > 8)
			fprintf(f, "rcvbuf = %.0f\nrcvbuf_max = %.0f\n", bytes, bytes * 8);
	} else {
		fprintf(f, "nlbufsiz = %.0f\n", bytes < 4096 ? 4096 : bytes);
	}
	fprintf(f, "qthreshold = %.0f\nqtimeout = %.0fms\n", qthresh < 1 ? 1 : qthresh,
		timeout * 1000);
	if (o->user)
		fprintf(f, "user = %s\n", o->user);
}

/* The original measured its rate over wm-interval MiB of traffic
 * (default max(2 hwm, 4 lwm)); ratelimit measures over a time window: the
 * time that many MiB take at the highest watermark. */
static void shaper_section(FILE *f, const char *input, const struct compat_opts *o)
{
	double top = o->hwm_mib > o->lwm_mib ? o->hwm_mib : o->lwm_mib;
	double interval = o->wm_interval_mib >= 0 ? o->wm_interval_mib
			  : (o->hwm_mib * 2 > o->lwm_mib * 4 ? o->hwm_mib * 2 : o->lwm_mib * 4);
	double window_ms = top > 0 ? interval / top * 1000 : 1000;

	fprintf(f, "\n[shaper]\nplugin = ratelimit\ninput = %s\nlwm = %.0f\nhwm = %.0f\n"
		"window = %.0fms\ncodec = zlib\n", input, o->lwm_mib * MIB, o->hwm_mib * MIB,
		window_ms < 100 ? 100 : window_ms);
}

static void zmq_out_section(FILE *f, const char *name, const char *input, const char *dst,
			    const char *wire, double hwm)
{
	fprintf(f, "\n[%s]\nplugin = zmq-out\ninput = %s\nendpoint = %s\nsocket = push\n"
		"bind = no\nwire = %s\nsndhwm = %.0f\n", name, input, dst, wire, hwm < 1 ? 1 : hwm);
}

static void zmq_in_section(FILE *f, const char *name, const char *src, const char *wire)
{
	fprintf(f, "[%s]\nplugin = zmq-in\nendpoint = %s\nsocket = pull\nbind = yes\nwire = %s\n",
		name, src, wire);
}

/* -i count[/interval]: the original sampled per packet; counters are now
 * exact and sent every interval (default 10 s). */
static void statsd_section(FILE *f, const struct compat_opts *o, const char *map)
{
	const char *slash = o->statsd_sampling ? strchr(o->statsd_sampling, '/') : NULL;

	if (!o->statsd)
		return;
	fprintf(f, "\n[statsd]\nplugin = statsd\nhost = %s\nprefix = %s\ntype = %s\n"
		"names = legacy\nlegacy_map = %s\ninterval = %s\n", o->statsd, o->statsd_prefix,
		o->statsd_type, map, slash && slash[1] ? slash + 1 : "10");
}

static void graph_send(FILE *f, const struct compat_opts *o)
{
	double qthresh = o->qthresh >= 0 ? o->qthresh : (double)(long)(o->nlbufsiz_mib * 100);

	nflog_section(f, o);
	if (o->rate_control)
		shaper_section(f, "nflog", o);
	zmq_out_section(f, "zmq", o->rate_control ? "shaper" : "nflog", o->dst,
			o->rate_control ? "legacy-rc" : "legacy",
			o->zmq_buffer >= 0 ? o->zmq_buffer : (double)(long)(qthresh / 10));
	statsd_section(f, o, "nflog:raw_in");
}

/* The FIFO gets the original's pcap stream: native byte order, snaplen
 * 65535, linktype 12. The ring is fed beside it, not through it, so it
 * holds what arrived whether or not the IDS keeps up. */
static void graph_recv(FILE *f, const struct compat_opts *o)
{
	zmq_in_section(f, "zmq", o->src, o->rate_control ? "legacy-rc" : "legacy");
	fprintf(f, "\n[fifo]\nplugin = pcap-out\ninput = zmq\npath = %s\nlinktype = 12\n"
		"snaplen = 65535\nprecision = us\n", o->dst);
	if (o->bif && o->bif_window_mib > 0)
		fprintf(f, "\n[buffer]\nplugin = ring\ninput = zmq\nwindow = %.0f\nendpoint = %s\n"
			"allow_remote = yes\n", o->bif_window_mib * MIB, o->bif);
	statsd_section(f, o, "zmq:raw_in, fifo:raw_out");
}

static void graph_relay(FILE *f, const struct compat_opts *o, bool compress)
{
	zmq_in_section(f, "zmq-in", o->src, compress ? "legacy" : "legacy-rc");
	if (compress)
		shaper_section(f, "zmq-in", o);
	zmq_out_section(f, "zmq-out", compress ? "shaper" : "zmq-in", o->dst,
			compress ? "legacy-rc" : "legacy", o->zmq_buffer >= 0 ? o->zmq_buffer : 50);
	statsd_section(f, o, compress ? "zmq-in:compress_in, zmq-out:compress_out"
				      : "zmq-in:decompress_in, zmq-out:decompress_out");
}

void pp_compat_build(const char *tool, int argc, char **argv, struct pp_compat_result *out)
{
	struct compat_opts o;
	size_t len = 0;
	FILE *f;

	*out = (struct pp_compat_result){ .log_level = PP_LOG_WARNING };
	out->status = parse(tool, argc, argv, &o);
	if (out->status < 0) /* --help */
		out->status = 0;
	if (out->status || !argc || o.src == NULL)
		return;
	out->print_only = o.print_only;
	out->stats_json = o.stats_json;
	out->log_level = o.debug ? PP_LOG_DEBUG : PP_LOG_WARNING;
	f = open_memstream(&out->ini, &len);
	if (!f) {
		out->status = 1;
		return;
	}
	fprintf(f, "; %s, as pktpipe runs it\n", tool);
	if (!strcmp(tool, "nflog-zmq-send"))
		graph_send(f, &o);
	else if (!strcmp(tool, "nflog-pcap-recv"))
		graph_recv(f, &o);
	else
		graph_relay(f, &o, !strcmp(tool, "nflog-zmq-compress"));
	fclose(f);
}
