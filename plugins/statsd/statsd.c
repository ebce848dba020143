/* statsd: report every node's counters to a statsd server over UDP.
 *
 * A service node: no input, no output. Every `interval` it walks all
 * counters of the graph through host->stats_foreach() and sends them as
 * statsd lines, several per datagram. Running totals go out as deltas since
 * what statsd last received (|c), levels as gauges (|g). The host stops a
 * service after every other node has finished, so the flush in stop()
 * carries the final counts and short runs report everything.
 *
 * statsd must never hurt the graph (the original's crashed its receiver):
 * the socket is non-blocking, a datagram that cannot go is counted in
 * send_errors and logged at most once a second, and its deltas are not
 * lost: an entry's `sent` only advances once its datagram went, so the next
 * flush carries them again. The socket is connected, which is what lets
 * Linux report a refusing port (ECONNREFUSED) on a later send.
 *
 * The original tools' names (raw_in.pkt, compress_out.bytes, ...) are
 * available through `names = legacy` and `legacy_map`, see README.md.
 * `stats_endpoint` (endpoint.c) serves the same counters as JSON on a unix
 * socket, with or without a statsd server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <pktpipe/plugin.h>

#include "endpoint.h"
#include "table.h"

#define SD_DEFAULT_PORT 8125
#define SD_NAME_MAX 256 /* a DNS name is at most 253 characters */
#define SD_ADDRS_MAX 8 /* addresses of a name we try in turn */
#define SD_PREFIX_MAX 200
#define SD_VALUE_MAX 24 /* ":" + 20 digits + "|ms" */
#define SD_LINE_MIN 8 /* "a.b:0|c" and its newline */
#define SD_HOST_KEY "{host}"

enum sd_type { SD_TYPE_C, SD_TYPE_G, SD_TYPE_D, SD_TYPE_MS };
static const char *const sd_type_names[] = { "c", "g", "d", "ms", NULL };

enum sd_names { SD_NAMES_PKTPIPE, SD_NAMES_LEGACY, SD_NAMES_BOTH };
static const char *const sd_names_names[] = { "pktpipe", "legacy", "both", NULL };

/* The original tools' metric stems; *_in take a node's packets_in and
 * bytes_in, *_out its packets_out and bytes_out. */
#define SD_STEMS 6
static const char *const sd_stems[SD_STEMS] = {
	"raw_in", "raw_out", "compress_in", "compress_out", "decompress_in", "decompress_out",
};

/* The `host` key: a name or numeric address (brackets removed) and port;
 * an empty name when no statsd server is wanted (stats_endpoint alone). */
struct sd_addr {
	char name[SD_NAME_MAX];
	uint16_t port;
};

struct sd_config {
	struct sd_addr host;
	uint64_t interval; /* ns */
	char *prefix;
	int type; /* enum sd_type */
	int names; /* enum sd_names */
	struct pp_list legacy_map;
	uint64_t datagram_size;
	char *stats_endpoint;
};

/* ------------------------------------------------------------------ */
/* Options                                                              */

static bool sd_is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.';
}

/* An IPv6 address, with a zone (fe80::1%eth0) allowed. */
static bool sd_is_ipv6(const char *s, size_t len)
{
	char buf[SD_NAME_MAX];
	struct in6_addr a;
	const char *zone = memchr(s, '%', len);

	if (len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[zone ? (size_t)(zone - s) : len] = '\0';
	return inet_pton(AF_INET6, buf, &a) == 1;
}

static int sd_parse_port(const char *text, uint16_t *port, char *err, size_t errlen)
{
	unsigned long v = 0;
	const char *p = text;

	for (; *p >= '0' && *p <= '9' && v <= 65535; p++)
		v = v * 10 + (unsigned long)(*p - '0');
	if (p == text || *p || v < 1 || v > 65535) {
		snprintf(err, errlen, "bad port '%s' (1 to 65535)", text);
		return -EINVAL;
	}
	*port = (uint16_t)v;
	return 0;
}

/* Where the name ends and the port (or NULL) begins: "name", "name:port",
 * "[v6]", "[v6]:port", or a bare IPv6 address, which has two colons or more. */
static int sd_split_host(const char *text, size_t *start, size_t *len, const char **port)
{
	const char *colon = strchr(text, ':');

	*start = 0;
	*port = NULL;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');

		if (!close || (close[1] && close[1] != ':'))
			return -EINVAL;
		*start = 1;
		*len = (size_t)(close - text) - 1;
		*port = close[1] ? close + 2 : NULL;
	} else if (colon && strchr(colon + 1, ':')) {
		*len = strlen(text);
	} else {
		*len = colon ? (size_t)(colon - text) : strlen(text);
		*port = colon ? colon + 1 : NULL;
	}
	return 0;
}

static int sd_parse_host(const char *text, void *dst, char *err, size_t errlen)
{
	struct sd_addr *a = dst;
	const char *port, *name;
	size_t start, len;
	bool v6;

	*a = (struct sd_addr){ 0 };
	if (!*text)
		return 0;
	if (sd_split_host(text, &start, &len, &port) < 0) {
		snprintf(err, errlen, "bad address '%s' (use name[:port] or [IPv6]:port)", text);
		return -EINVAL;
	}
	name = text + start;
	v6 = memchr(name, ':', len) != NULL;
	if (!len || len >= sizeof(a->name)) {
		snprintf(err, errlen, "host name of '%s' is empty or too long", text);
		return -EINVAL;
	}
	for (size_t i = 0; !v6 && i < len; i++) {
		if (!sd_is_name_char(name[i])) {
			snprintf(err, errlen, "bad character '%c' in host name '%s'", name[i], text);
			return -EINVAL;
		}
	}
	if (v6 && !sd_is_ipv6(name, len)) {
		snprintf(err, errlen, "'%.*s' is not an IPv6 address", (int)len, name);
		return -EINVAL;
	}
	a->port = SD_DEFAULT_PORT;
	if (port && sd_parse_port(port, &a->port, err, errlen) < 0)
		return -EINVAL;
	memcpy(a->name, name, len);
	a->name[len] = '\0';
	return 0;
}

static const struct pp_option sd_options[] = {
	{ .name = "host", .type = PP_OPT_CUSTOM, .default_value = "127.0.0.1:8125",
	  .offset = offsetof(struct sd_config, host), .parse = sd_parse_host,
	  .value_hint = "name[:port]",
	  .help = "statsd server: name, IPv4 or [IPv6] address, optional :port (default 8125); "
		  "empty: none (stats_endpoint only)" },
	{ .name = "interval", .type = PP_OPT_DURATION, .default_value = "10s",
	  .min = 10000000, .max = 86400000000000, .offset = offsetof(struct sd_config, interval),
	  .help = "how often counters are sent; a last flush follows the end of the run" },
	{ .name = "prefix", .type = PP_OPT_STRING, .default_value = "{host}.pktpipe",
	  .offset = offsetof(struct sd_config, prefix),
	  .help = "first part of every metric name; {host} is this machine's host name" },
	{ .name = "type", .type = PP_OPT_ENUM, .default_value = "c", .choices = sd_type_names,
	  .offset = offsetof(struct sd_config, type),
	  .help = "statsd type of running totals: c, d or ms send deltas, g the total itself" },
	{ .name = "names", .type = PP_OPT_ENUM, .default_value = "pktpipe",
	  .choices = sd_names_names, .offset = offsetof(struct sd_config, names),
	  .help = "pktpipe: PREFIX.NODE.COUNTER; legacy: the original tools' names (legacy_map); both" },
	{ .name = "legacy_map", .type = PP_OPT_LIST, .item_type = PP_OPT_STRING,
	  .default_value = "", .max_items = 64, .offset = offsetof(struct sd_config, legacy_map),
	  .help = "NODE:NAME, ...: the node whose in or out counters make NAME.pkt and "
		  "NAME.bytes; NAME is raw_in, raw_out, compress_in, compress_out, "
		  "decompress_in or decompress_out" },
	{ .name = "datagram_size", .type = PP_OPT_SIZE, .default_value = "1432", .min = 512,
	  .max = 65507, .offset = offsetof(struct sd_config, datagram_size),
	  .help = "largest UDP payload sent; 1432 fits an Ethernet MTU without fragments" },
	{ .name = "stats_endpoint", .type = PP_OPT_PATH, .default_value = "",
	  .offset = offsetof(struct sd_config, stats_endpoint),
	  .help = "unix socket answering each connection with a JSON snapshot of all counters" },
	PP_OPTION_END
};

static int sd_check_prefix(const char *prefix, char *err, size_t errlen)
{
	const char *p = prefix ? prefix : "";

	if (strlen(p) > SD_PREFIX_MAX || p[0] == '.' || strstr(p, "..")) {
		snprintf(err, errlen, "prefix '%s': at most %d characters, no empty part between dots",
			 p, SD_PREFIX_MAX);
		return -EINVAL;
	}
	while (*p) {
		if (strncmp(p, SD_HOST_KEY, strlen(SD_HOST_KEY)) == 0) {
			p += strlen(SD_HOST_KEY);
		} else if (sd_is_name_char(*p)) {
			p++;
		} else {
			snprintf(err, errlen, "prefix '%s': bad character '%c' (use letters, digits, "
				 "- _ . and {host})", prefix, *p);
			return -EINVAL;
		}
	}
	return 0;
}

/* NODE:NAME -> the stem's index, and the node's span in item; -1 if bad. */
static int sd_map_split(const char *item, size_t *node_len)
{
	const char *colon = strchr(item, ':'), *stem;
	size_t n;

	if (!colon)
		return -1;
	for (n = (size_t)(colon - item); n && item[n - 1] == ' '; n--)
		;
	for (size_t i = 0; i < n; i++)
		if (!sd_is_name_char(item[i]))
			return -1;
	for (stem = colon + 1; *stem == ' '; stem++)
		;
	*node_len = n;
	for (int i = 0; n && i < SD_STEMS; i++)
		if (strcmp(stem, sd_stems[i]) == 0)
			return i;
	return -1;
}

/* The same NODE:NAME twice would count the node twice. */
static bool sd_map_repeats(const struct pp_list *l, size_t i)
{
	size_t len, len_j;
	int stem = sd_map_split(l->str[i], &len);

	for (size_t j = 0; j < i; j++)
		if (sd_map_split(l->str[j], &len_j) == stem && len_j == len &&
		    memcmp(l->str[i], l->str[j], len) == 0)
			return true;
	return false;
}

static int sd_check_map(const struct sd_config *c, char *err, size_t errlen)
{
	size_t len;

	if (c->names == SD_NAMES_PKTPIPE && c->legacy_map.count) {
		snprintf(err, errlen, "legacy_map is set, but names = pktpipe does not use it");
		return -EINVAL;
	}
	if (c->names != SD_NAMES_PKTPIPE && !c->legacy_map.count) {
		snprintf(err, errlen, "names = %s needs legacy_map (NODE:NAME, ...)",
			 sd_names_names[c->names]);
		return -EINVAL;
	}
	for (size_t i = 0; i < c->legacy_map.count; i++) {
		if (sd_map_split(c->legacy_map.str[i], &len) < 0) {
			snprintf(err, errlen, "legacy_map: '%s' is not NODE:NAME with NAME one of "
				 "raw_in, raw_out, compress_in, compress_out, decompress_in, "
				 "decompress_out", c->legacy_map.str[i]);
			return -EINVAL;
		}
		if (sd_map_repeats(&c->legacy_map, i)) {
			snprintf(err, errlen, "legacy_map: '%s' is given twice", c->legacy_map.str[i]);
			return -EINVAL;
		}
	}
	return 0;
}

static int sd_check_endpoint(const struct sd_config *c, char *err, size_t errlen)
{
	const char *path = c->stats_endpoint;

	if (!c->host.name[0] && !path) {
		snprintf(err, errlen, "host is empty and there is no stats_endpoint: nothing to do");
		return -EINVAL;
	}
	if (path && strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(err, errlen, "stats_endpoint: a unix socket path has at most %zu bytes",
			 sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		return -EINVAL;
	}
	return 0;
}

static int sd_validate(const void *config, char *err, size_t errlen)
{
	const struct sd_config *c = config;
	int rc = sd_check_prefix(c->prefix, err, errlen);

	if (!rc)
		rc = sd_check_map(c, err, errlen);
	return rc ? rc : sd_check_endpoint(c, err, errlen);
}

/* ------------------------------------------------------------------ */
/* State                                                                */

struct sd_map {
	char *node;
	int stem;
	bool found;
};

struct sd_state {
	struct pp_node *node;
	const struct pp_host *host;
	const struct sd_config *cfg;
	char *prefix; /* {host} expanded, no trailing dot */
	struct sd_map *map;
	size_t nmap;
	uint64_t legacy[SD_STEMS][2]; /* this flush's totals: packets, bytes */
	struct sd_table table;
	uint64_t flush_no;
	struct sockaddr_storage addr[SD_ADDRS_MAX];
	socklen_t addrlen[SD_ADDRS_MAX];
	size_t naddrs, cur;
	char where[SD_NAME_MAX + 16]; /* the current address, for messages */
	int fd;
	char *dg; /* the datagram being filled: dg_len bytes of dg_size */
	size_t dg_size, dg_len;
	uint32_t *dg_idx; /* the table entries it carries */
	size_t dg_count, dg_cap;
	bool send_failed; /* this flush stops; what is left waits for the next */
	struct pp_timer *timer;
	struct sd_endpoint *endpoint; /* NULL without stats_endpoint */
	pp_counter *c_flushes, *c_datagrams, *c_metrics, *c_errors, *c_skipped;
	struct pp_log_limit send_limit, skip_limit;
};

/* ------------------------------------------------------------------ */
/* Opening                                                              */

/* The host name as one or more metric name parts. */
static void sd_hostname(char *buf, size_t len)
{
	if (gethostname(buf, len) < 0 || !buf[0])
		snprintf(buf, len, "unknown");
	buf[len - 1] = '\0';
	for (char *p = buf; *p; p++)
		if (!sd_is_name_char(*p))
			*p = '_';
}

static int sd_expand_prefix(struct sd_state *s)
{
	const char *p = s->cfg->prefix ? s->cfg->prefix : "";
	char host[256], *out;
	size_t len = 0, keylen = strlen(SD_HOST_KEY);

	sd_hostname(host, sizeof(host));
	out = malloc(strlen(p) / keylen * strlen(host) + strlen(p) + 1);
	if (!out)
		return -ENOMEM;
	while (*p) {
		if (strncmp(p, SD_HOST_KEY, keylen) == 0) {
			len += (size_t)sprintf(out + len, "%s", host);
			p += keylen;
		} else {
			out[len++] = *p++;
		}
	}
	while (len && out[len - 1] == '.') /* the original's prefixes end in a dot */
		len--;
	out[len] = '\0';
	s->prefix = out;
	return 0;
}

static int sd_gai_errno(int rc)
{
	switch (rc) {
	case EAI_AGAIN:
		return -EAGAIN;
	case EAI_MEMORY:
		return -ENOMEM;
	case EAI_SYSTEM:
		return errno ? -errno : -EIO;
	default:
		return -EHOSTUNREACH;
	}
}

/* Numeric hosts and names alike; every address is kept, so that a name
 * resolving to ::1 and 127.0.0.1 reaches a statsd listening on either. */
static int sd_resolve(struct sd_state *s)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	char port[8];
	int rc;

	snprintf(port, sizeof(port), "%u", (unsigned)s->cfg->host.port);
	rc = getaddrinfo(s->cfg->host.name, port, &hints, &res);
	if (rc != 0) {
		s->host->log(s->node, PP_LOG_ERROR, "cannot resolve statsd host '%s': %s",
			     s->cfg->host.name, gai_strerror(rc));
		return sd_gai_errno(rc);
	}
	for (ai = res; ai && s->naddrs < SD_ADDRS_MAX; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(s->addr[0]))
			continue;
		memcpy(&s->addr[s->naddrs], ai->ai_addr, ai->ai_addrlen);
		s->addrlen[s->naddrs++] = ai->ai_addrlen;
	}
	freeaddrinfo(res);
	return s->naddrs ? 0 : -EHOSTUNREACH;
}

static void sd_describe_addr(struct sd_state *s)
{
	char host[96], port[8]; /* room for a zone: fe80::1%eth0 */
	const struct sockaddr *sa = (const struct sockaddr *)&s->addr[s->cur];

	if (getnameinfo(sa, s->addrlen[s->cur], host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(s->where, sizeof(s->where), "%s", s->cfg->host.name);
	else if (sa->sa_family == AF_INET6)
		snprintf(s->where, sizeof(s->where), "[%s]:%s", host, port);
	else
		snprintf(s->where, sizeof(s->where), "%s:%s", host, port);
}

/* A connected socket to the current address. Failing here (no route) is
 * a send error like any other: the next flush tries again. */
static int sd_connect(struct sd_state *s)
{
	const struct sockaddr *sa = (const struct sockaddr *)&s->addr[s->cur];

	if (s->fd >= 0)
		close(s->fd);
	sd_describe_addr(s);
	s->fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -errno;
	if (connect(s->fd, sa, s->addrlen[s->cur]) < 0) {
		int rc = -errno;

		close(s->fd);
		s->fd = -1;
		return rc;
	}
	return 0;
}

static int sd_load_map(struct sd_state *s)
{
	const struct pp_list *l = &s->cfg->legacy_map;
	size_t len;

	s->map = calloc(l->count ? l->count : 1, sizeof(*s->map));
	if (!s->map)
		return -ENOMEM;
	for (; s->nmap < l->count; s->nmap++) {
		struct sd_map *m = &s->map[s->nmap];

		m->stem = sd_map_split(l->str[s->nmap], &len);
		m->node = strndup(l->str[s->nmap], len);
		if (!m->node)
			return -ENOMEM;
	}
	return 0;
}

static void sd_find_mapped(void *arg, const char *node, const char *plugin,
			   const char *counter, enum pp_counter_kind kind, uint64_t value)
{
	struct sd_state *s = arg;

	(void)plugin, (void)kind, (void)value;
	if (strcmp(counter, "packets_in") != 0)
		return;
	for (size_t i = 0; i < s->nmap; i++)
		if (strcmp(s->map[i].node, node) == 0)
			s->map[i].found = true;
}

/* Nodes are known once the graph is built, so a misspelt node in
 * legacy_map stops the run before anything flows. */
static int sd_check_mapped(struct sd_state *s)
{
	s->host->stats_foreach(s->node, sd_find_mapped, s);
	for (size_t i = 0; i < s->nmap; i++) {
		if (!s->map[i].found) {
			s->host->log(s->node, PP_LOG_ERROR, "legacy_map: there is no node [%s]",
				     s->map[i].node);
			return -EINVAL;
		}
	}
	return 0;
}

static int sd_make_counters(struct sd_state *s)
{
	struct pp_node *n = s->node;

	s->c_flushes = s->host->counter(n, "flushes", PP_COUNTER_TOTAL);
	s->c_datagrams = s->host->counter(n, "datagrams_sent", PP_COUNTER_TOTAL);
	s->c_metrics = s->host->counter(n, "metrics_sent", PP_COUNTER_TOTAL);
	s->c_errors = s->host->counter(n, "send_errors", PP_COUNTER_TOTAL);
	s->c_skipped = s->host->counter(n, "metrics_skipped", PP_COUNTER_TOTAL);
	if (!s->c_flushes || !s->c_datagrams || !s->c_metrics || !s->c_errors || !s->c_skipped)
		return -ENOMEM;
	return 0;
}

static void sd_free(struct sd_state *s)
{
	for (size_t i = 0; i < s->nmap; i++)
		free(s->map[i].node);
	free(s->map);
	sd_endpoint_close(s->endpoint);
	sd_table_free(&s->table);
	if (s->fd >= 0)
		close(s->fd);
	free(s->dg_idx);
	free(s->dg);
	free(s->prefix);
	free(s);
}

static int sd_alloc(struct sd_state *s)
{
	s->dg_size = (size_t)s->cfg->datagram_size;
	s->dg_cap = s->dg_size / SD_LINE_MIN + 1;
	s->dg = malloc(s->dg_size);
	s->dg_idx = calloc(s->dg_cap, sizeof(*s->dg_idx));
	return s->dg && s->dg_idx ? 0 : -ENOMEM;
}

static void sd_tick(void *arg);

/* What sending to a statsd server needs; nothing without a host. */
static int sd_open_server(struct sd_state *s)
{
	int rc;

	if (!s->cfg->host.name[0])
		return 0;
	rc = sd_make_counters(s);
	if (rc == 0)
		rc = sd_resolve(s);
	if (rc == 0)
		rc = sd_alloc(s);
	if (rc == 0) {
		s->timer = s->host->timer_new(s->node, sd_tick, s);
		rc = s->timer ? 0 : -ENOMEM;
	}
	return rc;
}

static int sd_open(struct pp_node *node, const struct pp_host *host, const void *config,
		   void **state)
{
	struct sd_state *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	*s = (struct sd_state){ .node = node, .host = host, .cfg = config, .fd = -1 };
	rc = -ENOTSUP;
	if (!PP_HOST_HAS(host, stats_foreach) || !PP_HOST_HAS(host, counter)) {
		host->log(node, PP_LOG_ERROR, "this host cannot walk counters (stats_foreach)");
		goto err;
	}
	rc = sd_expand_prefix(s);
	if (rc)
		goto err;
	rc = sd_load_map(s);
	if (rc)
		goto err;
	rc = sd_check_mapped(s);
	if (rc)
		goto err;
	rc = sd_open_server(s);
	if (rc)
		goto err;
	if (s->cfg->stats_endpoint) {
		rc = sd_endpoint_open(&s->endpoint, s->cfg->stats_endpoint, node, host);
		if (rc)
			goto err;
	}
	*state = s;
	return 0;
err:
	sd_free(s);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Running                                                              */

static int sd_start(void *state)
{
	struct sd_state *s = state;
	int rc = s->endpoint ? sd_endpoint_start(s->endpoint) : 0;

	if (rc == 0 && s->endpoint)
		s->host->log(s->node, PP_LOG_INFO, "counters as JSON on unix socket %s",
			     s->cfg->stats_endpoint);
	if (rc < 0 || !s->cfg->host.name[0])
		return rc;
	rc = sd_connect(s);
	if (rc < 0)
		s->host->log(s->node, PP_LOG_WARNING, "cannot reach statsd at %s yet: %s", s->where,
			     strerror(-rc));
	s->host->log(s->node, PP_LOG_INFO, "counters to statsd at %s every %llu ms as %s%s*",
		     s->where, (unsigned long long)(s->cfg->interval / 1000000), s->prefix,
		     s->prefix[0] ? "." : "");
	return s->host->timer_arm(s->timer, s->cfg->interval, s->cfg->interval);
}

/* Collecting: one snapshot of every counter per flush. */

static void sd_track(struct sd_state *s, const char *node, const char *counter,
		     enum pp_counter_kind kind, uint64_t value)
{
	struct sd_entry *e = sd_table_get(&s->table, s->prefix, node, counter, kind);

	if (!e) {
		pp_counter_add(s->c_skipped, 1);
		s->host->log_limited(s->node, &s->skip_limit, PP_LOG_WARNING,
				     "no memory to track %s.%s: not sent", node, counter);
		return;
	}
	e->value = value;
	e->seen = s->flush_no;
}

/* Stems alternate: even ones are *_in, odd ones *_out. */
static void sd_legacy_add(struct sd_state *s, const char *node, const char *counter,
			  uint64_t value)
{
	static const char *const std[] = { "packets_in", "bytes_in", "packets_out", "bytes_out" };
	int w = -1;

	for (int i = 0; i < 4; i++)
		if (strcmp(counter, std[i]) == 0)
			w = i;
	if (w < 0)
		return;
	for (size_t i = 0; i < s->nmap; i++) {
		const struct sd_map *m = &s->map[i];

		if ((w >= 2) == (m->stem % 2 == 1) && strcmp(m->node, node) == 0)
			s->legacy[m->stem][w % 2] += value;
	}
}

static void sd_collect(void *arg, const char *node, const char *plugin, const char *counter,
		       enum pp_counter_kind kind, uint64_t value)
{
	struct sd_state *s = arg;

	(void)plugin;
	if (s->cfg->names != SD_NAMES_LEGACY)
		sd_track(s, node, counter, kind, value);
	if (s->cfg->names != SD_NAMES_PKTPIPE)
		sd_legacy_add(s, node, counter, value);
}

/* The original's names: PREFIX.STEM.pkt and PREFIX.STEM.bytes, summed over
 * the nodes mapped to the stem. */
static void sd_legacy_track(struct sd_state *s)
{
	char name[32];

	for (int stem = 0; stem < SD_STEMS; stem++) {
		bool used = false;

		for (size_t i = 0; i < s->nmap; i++)
			used |= s->map[i].stem == stem;
		if (!used)
			continue;
		snprintf(name, sizeof(name), "%s.pkt", sd_stems[stem]);
		sd_track(s, "", name, PP_COUNTER_TOTAL, s->legacy[stem][0]);
		snprintf(name, sizeof(name), "%s.bytes", sd_stems[stem]);
		sd_track(s, "", name, PP_COUNTER_TOTAL, s->legacy[stem][1]);
	}
}

/* Sending */

static void sd_send_error(struct sd_state *s, int rc)
{
	pp_counter_add(s->c_errors, 1);
	s->host->log_limited(s->node, &s->send_limit, PP_LOG_WARNING,
			     "cannot send to statsd at %s: %s%s", s->where, strerror(-rc),
			     rc == -ECONNREFUSED ? " (is statsd listening there?)" : "");
}

static int sd_send_once(struct sd_state *s)
{
	int rc;

	if (s->fd < 0) {
		rc = sd_connect(s);
		if (rc < 0)
			return rc;
	}
	if (send(s->fd, s->dg, s->dg_len, MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

/* statsd has these deltas now: the next ones start from here. */
static void sd_commit(struct sd_state *s)
{
	for (size_t i = 0; i < s->dg_count; i++) {
		struct sd_entry *e = &s->table.v[s->dg_idx[i]];

		e->sent = e->value;
	}
	pp_counter_add(s->c_datagrams, 1);
	pp_counter_add(s->c_metrics, s->dg_count);
}

/* A refusal reports an earlier datagram; this one has not gone yet, so it
 * is tried again, on the next address when the name had several. Any
 * other failure ends this flush: what is left goes with the next one. */
static void sd_send(struct sd_state *s)
{
	int rc;

	if (!s->dg_count)
		return;
	rc = sd_send_once(s);
	if (rc == -ECONNREFUSED) {
		sd_send_error(s, rc);
		if (s->naddrs > 1) {
			s->cur = (s->cur + 1) % s->naddrs;
			rc = sd_connect(s);
		}
		if (rc == 0 || rc == -ECONNREFUSED)
			rc = sd_send_once(s);
	}
	if (rc < 0) {
		sd_send_error(s, rc);
		s->send_failed = true;
	} else {
		sd_commit(s);
	}
	s->dg_len = 0;
	s->dg_count = 0;
}

/* c, d, ms: what statsd has not had yet; g: the total itself, which a lost
 * datagram cannot spoil. Levels are always gauges. */
static void sd_format_value(const struct sd_state *s, const struct sd_entry *e, char *buf,
			    size_t len)
{
	uint64_t delta = e->value >= e->sent ? e->value - e->sent : e->value;

	if (e->kind == PP_COUNTER_GAUGE || s->cfg->type == SD_TYPE_G)
		snprintf(buf, len, "%llu|g", (unsigned long long)e->value);
	else
		snprintf(buf, len, "%llu|%s", (unsigned long long)delta,
			 sd_type_names[s->cfg->type]);
}

static void sd_add_line(struct sd_state *s, uint32_t idx)
{
	const struct sd_entry *e = &s->table.v[idx];
	char value[SD_VALUE_MAX];
	size_t vlen, need;

	sd_format_value(s, e, value, sizeof(value));
	vlen = strlen(value);
	need = e->name_len + 1 + vlen;
	if (need > s->dg_size) {
		pp_counter_add(s->c_skipped, 1);
		s->host->log_limited(s->node, &s->skip_limit, PP_LOG_WARNING,
				     "metric %.64s... does not fit a %zu-byte datagram: not sent",
				     e->name, s->dg_size);
		return;
	}
	if (s->dg_len + !!s->dg_len + need > s->dg_size || s->dg_count == s->dg_cap)
		sd_send(s);
	if (s->send_failed)
		return;
	if (s->dg_len)
		s->dg[s->dg_len++] = '\n';
	memcpy(s->dg + s->dg_len, e->name, e->name_len);
	s->dg_len += e->name_len;
	s->dg[s->dg_len++] = ':';
	memcpy(s->dg + s->dg_len, value, vlen);
	s->dg_len += vlen;
	s->dg_idx[s->dg_count++] = idx;
}

static void sd_flush(struct sd_state *s)
{
	s->flush_no++;
	s->send_failed = false;
	memset(s->legacy, 0, sizeof(s->legacy));
	pp_counter_add(s->c_flushes, 1);
	s->host->stats_foreach(s->node, sd_collect, s);
	if (s->cfg->names != SD_NAMES_PKTPIPE)
		sd_legacy_track(s);
	for (size_t i = 0; i < s->table.count && !s->send_failed; i++)
		if (s->table.v[i].seen == s->flush_no)
			sd_add_line(s, (uint32_t)i);
	if (!s->send_failed)
		sd_send(s);
	s->dg_len = 0;
	s->dg_count = 0;
}

static void sd_tick(void *arg)
{
	sd_flush(arg);
}

/* ------------------------------------------------------------------ */
/* Stopping                                                             */

/* Every other node has finished: this flush carries the final counts. */
static int sd_stop(void *state)
{
	struct sd_state *s = state;
	socklen_t len = sizeof(int);
	int err = 0;

	if (s->endpoint)
		sd_endpoint_stop(s->endpoint);
	if (!s->cfg->host.name[0])
		return 0;
	s->host->timer_free(s->timer);
	s->timer = NULL;
	sd_flush(s);
	/* A refusal of the last datagram comes back at once from a local
	 * statsd; counting it makes a run against a dead port show it. */
	if (s->fd >= 0 && getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err)
		sd_send_error(s, -err);
	s->host->log(s->node, PP_LOG_INFO,
		     "sent %llu metrics in %llu datagrams to %s; %llu send errors",
		     (unsigned long long)pp_counter_get(s->c_metrics),
		     (unsigned long long)pp_counter_get(s->c_datagrams), s->where,
		     (unsigned long long)pp_counter_get(s->c_errors));
	return 0;
}

/* A timer still here (stop() never ran) belongs to the host now. */
static void sd_close(void *state)
{
	sd_free(state);
}

PP_EXPORT const struct pp_plugin pp_plugin = {
	.abi_version = PP_ABI_VERSION,
	.struct_size = sizeof(struct pp_plugin),
	.name = "statsd",
	.summary = "send every node's counters to a statsd server over UDP",
	.roles = PP_ROLE_SERVICE,
	.options = sd_options,
	.config_size = sizeof(struct sd_config),
	.validate = sd_validate,
	.open = sd_open,
	.start = sd_start,
	.stop = sd_stop,
	.close = sd_close,
};
