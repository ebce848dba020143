/* pktpipe: load plugins, build the graph an ini file describes, run it. */
#include "compat.h"
#include "config.h"
#include "graph.h"
#include "loader.h"
#include "log.h"
#include "loop.h"
#include "options.h"
#include "packet.h"
#include "stats.h"

#include <errno.h>
#include <stddef.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PP_VERSION
#define PP_VERSION "0.1.0"
#endif
#ifndef PP_PLUGINDIR
#define PP_PLUGINDIR "/usr/local/lib/pktpipe"
#endif

enum exit_status { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

struct cli {
	const char *config;
	bool check;
	bool list_plugins;
	const char *describe;
	const char *format;
	uint64_t drain_ns;
};

static const char usage_text[] =
	"usage: pktpipe -c FILE [--check] [--stats-json PATH] [--plugin-path DIR] [-v|-q]\n"
	"       pktpipe --list-plugins | --describe PLUGIN | --version | --help\n"
	"\n"
	"  -c, --config FILE       the graph to run (ini; see pktpipe.ini(5))\n"
	"      --check             validate the graph and exit (0 ok, 2 errors)\n"
	"      --stats-json PATH   write counters as JSON at exit and on SIGUSR1\n"
	"      --plugin-path DIR   search DIR for plugins first (repeatable);\n"
	"                          PKTPIPE_PLUGIN_PATH=a:b adds more\n"
	"      --drain-timeout D   how long stopping may take (default 5s)\n"
	"      --list-plugins      name, roles and summary of every plugin found\n"
	"      --describe PLUGIN   every key of PLUGIN: type, default, bounds, help\n"
	"      --format FMT        for --describe: text (default), markdown, ini or man\n"
	"  -v, --verbose           more messages (twice: debug)\n"
	"  -q, --quiet             errors only\n"
	"      --version, --help\n"
	"      --gen-curve-key PATH  (zmq plugins) write a CurveZMQ key pair: PATH, PATH.pub\n"
	"\n"
	"Exit status: 0 ok, 1 runtime failure, 2 usage or configuration error.\n";

static void add_default_dirs(void)
{
	const char *env = getenv("PKTPIPE_PLUGIN_PATH");
	char exe[PATH_MAX], dir[PATH_MAX + 16];
	ssize_t len;
	struct stat st;

	if (env && *env)
		pp_loader_add_path(env);
	/* Run from the build tree: plugins sit beside the binary. */
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (len > 0) {
		exe[len] = '\0';
		snprintf(dir, sizeof(dir), "%s/plugins", dirname(exe));
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode)) {
			pp_loader_add_dir(dir);
			return;
		}
	}
	pp_loader_add_dir(PP_PLUGINDIR);
}

static int parse_args(int argc, char **argv, struct cli *cli)
{
	enum { O_CHECK = 256, O_STATS, O_PATH, O_LIST, O_DESCRIBE, O_VERSION, O_DRAIN, O_FORMAT };
	static const struct option longs[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, O_CHECK },
		{ "stats-json", required_argument, NULL, O_STATS },
		{ "plugin-path", required_argument, NULL, O_PATH },
		{ "drain-timeout", required_argument, NULL, O_DRAIN },
		{ "list-plugins", no_argument, NULL, O_LIST },
		{ "describe", required_argument, NULL, O_DESCRIBE },
		{ "format", required_argument, NULL, O_FORMAT },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, O_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "c:vqh", longs, NULL)) != -1) {
		switch (c) {
		case 'c': cli->config = optarg; break;
		case O_CHECK: cli->check = true; break;
		case O_STATS: pp_stats_json_path = optarg; break;
		case O_PATH:
			if (pp_loader_add_dir(optarg) < 0)
				return -ENOMEM;
			break;
		case O_DRAIN:
			if (pp_parse_duration(optarg, &cli->drain_ns) < 0) {
				fprintf(stderr, "pktpipe: bad --drain-timeout '%s'\n", optarg);
				return -EINVAL;
			}
			break;
		case O_LIST: cli->list_plugins = true; break;
		case O_DESCRIBE: cli->describe = optarg; break;
		case O_FORMAT: cli->format = optarg; break;
		case 'v': pp_log_level++; break;
		case 'q': pp_log_level = PP_LOG_ERROR; break;
		case O_VERSION: printf("pktpipe %s (plugin ABI %d)\n", PP_VERSION, PP_ABI_VERSION); exit(0);
		case 'h': fputs(usage_text, stdout); exit(0);
		default: fputs(usage_text, stderr); return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "pktpipe: unexpected argument '%s'\n%s", argv[optind], usage_text);
		return -EINVAL;
	}
	return 0;
}

static void roles_text(unsigned roles, char *buf, size_t len)
{
	static const char *const names[] = { "source", "filter", "sink", "service", "codec" };
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < 5; i++)
		if (roles & (1u << i))
			n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "," : "", names[i]);
}

static void warn_plugin(void *arg, const char *msg)
{
	(void)arg;
	pp_log(PP_LOG_WARNING, NULL, "%s", msg);
}

static int list_plugins(void)
{
	char roles[64];

	pp_loader_load_all(warn_plugin, NULL);
	for (const struct pp_loaded *l = pp_loader_first(); l; l = l->next) {
		roles_text(l->plugin->roles, roles, sizeof(roles));
		printf("%-14s %-22s %s\n", l->plugin->name, roles, l->plugin->summary);
	}
	if (!pp_loader_first())
		fprintf(stderr, "pktpipe: no plugins found in %s\n", pp_loader_dirs());
	return EXIT_OK;
}

/* The option table is the one source of --describe, the READMEs' key
 * tables and the conf/ examples: three formats of the same walk. */
static int describe_table(const struct pp_option *opts, const char *format, const char *title)
{
	if (format && !strcmp(format, "markdown")) {
		pp_options_describe_markdown(opts, stdout);
	} else if (format && !strcmp(format, "ini")) {
		pp_options_describe_ini(opts, stdout);
	} else if (format && !strcmp(format, "man")) {
		pp_options_describe_man(opts, stdout);
	} else if (format && strcmp(format, "text")) {
		fprintf(stderr, "pktpipe: --format: use text, markdown, ini or man\n");
		return EXIT_USAGE;
	} else {
		printf("%s\n", title);
		if (opts && opts->name)
			pp_options_describe(opts, stdout);
		else
			printf("(no keys)\n");
	}
	return EXIT_OK;
}

static int describe(const char *name, const char *format)
{
	const struct pp_loaded *l;
	char err[1024], roles[64], title[1024];

	if (!strcmp(name, "core"))
		return describe_table(pp_core_options, format, "core: keys every node has\n");
	if (pp_loader_load(name, &l, err, sizeof(err)) < 0) {
		fprintf(stderr, "pktpipe: %s\n", err);
		return EXIT_USAGE;
	}
	roles_text(l->plugin->roles, roles, sizeof(roles));
	snprintf(title, sizeof(title), "%s: %s\nroles: %s\nfile: %s\n", l->plugin->name,
		 l->plugin->summary, roles, l->path);
	return describe_table(l->plugin->options, format, title);
}

struct run_ctx {
	struct pp_graph *graph;
	struct pp_loop *loop;
	int term_signals;
};

static void on_signal(void *arg, int signo)
{
	struct run_ctx *ctx = arg;

	switch (signo) {
	case SIGTERM:
	case SIGINT:
		/* A second request means: do not wait for the drain. */
		if (ctx->term_signals++) {
			pp_log(PP_LOG_WARNING, NULL, "second signal: stopping without draining");
			ctx->graph->failed = true;
			pp_loop_quit(ctx->loop);
			return;
		}
		pp_log(PP_LOG_INFO, NULL, "signal %d: stopping, draining what is in flight", signo);
		pp_graph_shutdown(ctx->graph);
		break;
	case SIGHUP:
		pp_graph_reopen(ctx->graph);
		break;
	case SIGUSR1:
		if (pp_stats_json_path)
			pp_stats_write_json(ctx->graph, pp_stats_json_path);
		break;
	}
}

/* Frames of up to a MiB or more are allocated and freed at a high rate (our
 * zmq-out frames, libzmq's receive buffers, codec blocks). glibc's default
 * hands the free space at the top of a heap back to the kernel once it
 * exceeds twice the largest such block, so a steady stream of them faults
 * in and zeroes fresh pages again and again: a quarter to a half of the
 * pages of a 1500 B ZeroMQ transfer did, a fifth of the sender's CPU. Keep
 * up to PP_MALLOC_KEEP free per heap instead, and take blocks below
 * PP_MALLOC_MMAP from the heaps. Whoever tunes malloc through the
 * environment keeps their settings. */
#define PP_MALLOC_KEEP (8u << 20)
#define PP_MALLOC_MMAP (4u << 20)

static void tune_malloc(void)
{
	const char *t = getenv("GLIBC_TUNABLES");

	if ((t && strstr(t, "glibc.malloc.")) || getenv("MALLOC_TRIM_THRESHOLD_") ||
	    getenv("MALLOC_MMAP_THRESHOLD_"))
		return;
#if defined(M_TRIM_THRESHOLD) && defined(M_MMAP_THRESHOLD)
	mallopt(M_MMAP_THRESHOLD, PP_MALLOC_MMAP);
	mallopt(M_TRIM_THRESHOLD, PP_MALLOC_KEEP);
#endif
}

static int run_graph(struct pp_graph *g, uint64_t drain_ns)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	struct run_ctx ctx = { .graph = g };
	int rc;

	/* A FIFO or socket whose reader left must give EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	tune_malloc();
	if (pp_loop_new(&ctx.loop) < 0) {
		pp_log(PP_LOG_ERROR, NULL, "cannot create the event loop");
		return EXIT_RUNTIME;
	}
	if (pp_loop_signals(ctx.loop, sigs, 4, on_signal, &ctx) < 0) {
		pp_log(PP_LOG_ERROR, NULL, "cannot set up signal handling");
		pp_loop_free(ctx.loop);
		return EXIT_RUNTIME;
	}
	g->drain_ns = drain_ns;
	rc = pp_graph_run(g, ctx.loop);
	pp_loop_free(ctx.loop);
	return rc ? EXIT_RUNTIME : EXIT_OK;
}

static int run_config(const struct cli *cli)
{
	struct pp_conf *conf = NULL;
	struct pp_graph *g = NULL;
	int status = EXIT_USAGE;

	if (pp_conf_read(cli->config, &conf) == 0 && pp_graph_build(conf, &g) == 0) {
		status = EXIT_OK;
		if (!cli->check)
			status = run_graph(g, cli->drain_ns);
		else
			printf("%s: ok (%zu nodes)\n", cli->config, g->count);
	}
	pp_graph_free(g);
	pp_conf_free(conf);
	return status;
}

/* Commands plugins add: a plugin reads its own field only when its
 * descriptor is large enough to have it. */
static const struct pp_command *find_command(const char *name)
{
	const size_t need = offsetof(struct pp_plugin, commands) + sizeof(void *);

	pp_loader_load_all(warn_plugin, NULL);
	for (const struct pp_loaded *l = pp_loader_first(); l; l = l->next) {
		if (l->plugin->struct_size < need || !l->plugin->commands)
			continue;
		for (const struct pp_command *c = l->plugin->commands; c->name; c++)
			if (!strcmp(c->name, name))
				return c;
	}
	return NULL;
}

static int run_command(int argc, char **argv)
{
	const struct pp_command *c;

	add_default_dirs();
	c = find_command(argv[1] + 2);
	if (!c) {
		fprintf(stderr, "pktpipe: unknown option '%s'\n%s", argv[1], usage_text);
		return EXIT_USAGE;
	}
	return c->run(argc - 2, argv + 2);
}

/* --NAME not among the host's own options may be a plugin's command. */
static bool is_plugin_command(int argc, char **argv)
{
	static const char *const own[] = { "--config", "--check", "--stats-json", "--plugin-path",
					   "--drain-timeout", "--list-plugins", "--describe",
					   "--format", "--verbose", "--quiet", "--version",
					   "--help", NULL };

	if (argc < 2 || strncmp(argv[1], "--", 2) || !argv[1][2] || strchr(argv[1], '='))
		return false;
	for (const char *const *o = own; *o; o++)
		if (!strcmp(argv[1], *o))
			return false;
	return true;
}

/* nflog-pcap-query EP: the query program, in the original's protocol and
 * with a bounded wait instead of the original's endless one. */
static int exec_query(int argc, char **argv)
{
	char exe[PATH_MAX], prog[PATH_MAX + 32];
	char *args[8] = { prog, "--legacy", "--timeout", "5" };
	int n = 4;
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	for (int i = 1; i < argc && n < 7; i++) {
		if (!strcmp(argv[i], "--debug"))
			continue;
		if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			args[3] = argv[++i];
			continue;
		}
		args[n++] = argv[i];
	}
	if (len <= 0)
		return EXIT_RUNTIME;
	exe[len] = '\0';
	snprintf(prog, sizeof(prog), "%s/pktpipe-query", dirname(exe));
	execv(prog, args);
	fprintf(stderr, "nflog-pcap-query: cannot run %s: %s\n", prog, strerror(errno));
	return EXIT_RUNTIME;
}

/* The graph an original tool's command line stands for, run like any. */
static int run_compat(const char *tool, int argc, char **argv)
{
	struct pp_compat_result r;
	struct cli cli = { .drain_ns = 5000000000ull };
	char path[64];
	int fd, status;

	if (!strcmp(tool, "nflog-pcap-query"))
		return exec_query(argc, argv);
	pp_log_level = PP_LOG_WARNING;
	pp_compat_build(tool, argc, argv, &r);
	if (!r.ini)
		return r.status;
	pp_log_level = r.log_level;
	pp_stats_json_path = r.stats_json;
	if (r.print_only) {
		fputs(r.ini, stdout);
		free(r.ini);
		return EXIT_OK;
	}
	fd = memfd_create(tool, MFD_CLOEXEC);
	if (fd < 0 || write(fd, r.ini, strlen(r.ini)) != (ssize_t)strlen(r.ini)) {
		fprintf(stderr, "%s: cannot hold the graph in memory\n", tool);
		free(r.ini);
		return EXIT_RUNTIME;
	}
	free(r.ini);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	add_default_dirs();
	cli.config = path;
	status = run_config(&cli);
	close(fd);
	return status;
}

int main(int argc, char **argv)
{
	struct cli cli = { .drain_ns = 5000000000ull };
	int status;

	if (pp_loader_init() < 0) {
		fprintf(stderr, "pktpipe: cannot initialise libltdl\n");
		return EXIT_RUNTIME;
	}
	if (pp_compat_tool(basename(argv[0]))) {
		status = run_compat(basename(argv[0]), argc, argv);
		goto out;
	}
	if (is_plugin_command(argc, argv)) {
		status = run_command(argc, argv);
		goto out;
	}
	if (parse_args(argc, argv, &cli) < 0) {
		status = EXIT_USAGE;
		goto out;
	}
	add_default_dirs();
	if (cli.list_plugins)
		status = list_plugins();
	else if (cli.describe)
		status = describe(cli.describe, cli.format);
	else if (cli.config)
		status = run_config(&cli);
	else {
		fputs(usage_text, stderr);
		status = EXIT_USAGE;
	}
out:
	pp_loader_exit();
	pp_pool_trim();
	if (pp_packets_outstanding()) {
		pp_log(PP_LOG_ERROR, NULL, "%llu packets were never released",
		       (unsigned long long)pp_packets_outstanding());
		status = status ? status : EXIT_RUNTIME;
	}
	return status;
}
