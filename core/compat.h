/* The original nflog-zmq-pcap-pipe tools, drop-in: when pktpipe runs as
 * nflog-zmq-send, nflog-pcap-recv, nflog-zmq-compress or
 * nflog-zmq-decompress (argv[0]), their command line is turned into the
 * equivalent graph, as ini text, which the ordinary host then runs.
 * nflog-pcap-query hands over to pktpipe-query. */
#ifndef PKTPIPE_CORE_COMPAT_H
#define PKTPIPE_CORE_COMPAT_H

#include <stdbool.h>

/* Whether name (a basename) is one of the original tools. */
bool pp_compat_tool(const char *name);

struct pp_compat_result {
	char *ini; /* the graph, malloc'd; NULL on a usage error */
	bool print_only; /* --print-config */
	const char *stats_json; /* --stats-json, pktpipe's own addition */
	int log_level; /* --debug raises it */
	int status; /* exit status when ini is NULL (0 after --help) */
};

/* Build the graph for tool from its own argv. */
void pp_compat_build(const char *tool, int argc, char **argv, struct pp_compat_result *out);

#endif
