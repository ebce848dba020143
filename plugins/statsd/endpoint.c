#include "endpoint.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define EP_CLIENTS 16 /* answers being written at once */
#define EP_ACCEPTS_PER_TURN 32 /* the rest wait for the next loop turn */
#define EP_CLIENT_NS 5000000000ull /* time a client has to read its answer */
#define EP_CHECK_NS 1000000000ull /* how often slow clients are looked at */

struct ep_client {
	struct sd_endpoint *ep;
	int fd; /* -1: a free slot */
	struct pp_watch *w;
	char *buf;
	size_t len, off;
	uint64_t since;
};

struct sd_endpoint {
	struct pp_node *node;
	const struct pp_host *host;
	char *path;
	bool bound; /* the socket file is ours to remove */
	int fd;
	struct pp_watch *w;
	struct pp_timer *timer;
	struct ep_client clients[EP_CLIENTS];
	pp_counter *c_queries, *c_errors;
	struct pp_log_limit limit;
};

/* ------------------------------------------------------------------ */
/* The snapshot                                                         */

struct ep_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void ep_put(struct ep_buf *b, const char *fmt, ...) PP_PRINTF(2, 3);

static void ep_put(struct ep_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || b->oom)
		return;
	if (b->len + (size_t)n + 1 > b->cap) {
		size_t cap = (b->len + (size_t)n + 1) * 2;
		char *p = realloc(b->p, cap);

		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* The host walks node by node; drops go in an object of their own. Names
 * are [A-Za-z0-9_.-] (the host checks them), so they need no escaping. */
struct ep_snap {
	struct ep_buf out, drops;
	char *node; /* the node being written, NULL before the first */
	size_t nodes;
};

static void ep_end_node(struct ep_snap *sn)
{
	if (!sn->node)
		return;
	ep_put(&sn->out, ", \"dropped\": {%s}}", sn->drops.len ? sn->drops.p : "");
	sn->drops.len = 0;
	free(sn->node);
	sn->node = NULL;
}

static void ep_collect(void *arg, const char *node, const char *plugin, const char *counter,
		       enum pp_counter_kind kind, uint64_t value)
{
	struct ep_snap *sn = arg;
	unsigned long long v = value;

	(void)kind;
	if (!sn->node || strcmp(node, sn->node) != 0) {
		ep_end_node(sn);
		ep_put(&sn->out, "%s\n  \"%s\": {\"plugin\": \"%s\"", sn->nodes++ ? "," : "", node,
		       plugin);
		sn->node = strdup(node);
		sn->out.oom |= !sn->node;
	}
	if (strncmp(counter, "dropped.", 8) == 0)
		ep_put(&sn->drops, "%s\"%s\": %llu", sn->drops.len ? ", " : "", counter + 8, v);
	else
		ep_put(&sn->out, ", \"%s\": %llu", counter, v);
}

/* The answer, in --stats-json's shape; NULL when out of memory. */
static char *ep_snapshot(struct sd_endpoint *ep, size_t *len)
{
	struct ep_snap sn = { 0 };

	ep_put(&sn.out, "{\"nodes\": {");
	ep->host->stats_foreach(ep->node, ep_collect, &sn);
	ep_end_node(&sn);
	ep_put(&sn.out, "\n}}\n");
	free(sn.drops.p);
	if (sn.out.oom || sn.drops.oom) {
		free(sn.out.p);
		return NULL;
	}
	*len = sn.out.len;
	return sn.out.p;
}

/* ------------------------------------------------------------------ */
/* Clients                                                              */

static void ep_drop(struct ep_client *cl, bool failed)
{
	struct sd_endpoint *ep = cl->ep;

	if (cl->w)
		ep->host->unwatch(cl->w);
	close(cl->fd);
	free(cl->buf);
	*cl = (struct ep_client){ .ep = ep, .fd = -1 };
	if (failed)
		pp_counter_add(ep->c_errors, 1);
}

static void ep_writable(void *arg, int fd, unsigned events);

/* Write what the socket takes; the rest when it is writable again. */
static void ep_write(struct ep_client *cl)
{
	struct sd_endpoint *ep = cl->ep;

	while (cl->off < cl->len) {
		ssize_t n = send(cl->fd, cl->buf + cl->off, cl->len - cl->off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!cl->w)
				cl->w = ep->host->watch_fd(ep->node, cl->fd, PP_WATCH_WRITE,
							   ep_writable, cl);
			if (!cl->w)
				ep_drop(cl, true);
			else
				ep->host->timer_arm(ep->timer, EP_CHECK_NS, 0);
			return;
		}
		if (n < 0) {
			ep_drop(cl, true); /* the client went away */
			return;
		}
		cl->off += (size_t)n;
	}
	pp_counter_add(ep->c_queries, 1);
	ep_drop(cl, false);
}

static void ep_writable(void *arg, int fd, unsigned events)
{
	(void)fd, (void)events;
	ep_write(arg);
}

static void ep_serve(struct sd_endpoint *ep, int fd)
{
	struct ep_client *cl = NULL;

	for (size_t i = 0; i < EP_CLIENTS && !cl; i++)
		if (ep->clients[i].fd < 0)
			cl = &ep->clients[i];
	if (!cl) {
		close(fd);
		pp_counter_add(ep->c_errors, 1);
		ep->host->log_limited(ep->node, &ep->limit, PP_LOG_WARNING,
				      "%s: %d clients are still reading: refused another",
				      ep->path, EP_CLIENTS);
		return;
	}
	*cl = (struct ep_client){ .ep = ep, .fd = fd, .since = ep->host->now_mono_ns() };
	cl->buf = ep_snapshot(ep, &cl->len);
	if (!cl->buf) {
		ep->host->log_limited(ep->node, &ep->limit, PP_LOG_WARNING,
				      "%s: no memory for a snapshot", ep->path);
		ep_drop(cl, true);
		return;
	}
	ep_write(cl);
}

static void ep_accept(void *arg, int fd, unsigned events)
{
	struct sd_endpoint *ep = arg;

	(void)events;
	for (int i = 0; i < EP_ACCEPTS_PER_TURN; i++) {
		int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (c >= 0) {
			ep_serve(ep, c);
			continue;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED)
			ep->host->log_limited(ep->node, &ep->limit, PP_LOG_WARNING,
					      "%s: accept: %s", ep->path, strerror(errno));
		return;
	}
}

/* A client that does not read its answer loses its slot. */
static void ep_expire(void *arg)
{
	struct sd_endpoint *ep = arg;
	uint64_t now = ep->host->now_mono_ns();
	bool waiting = false;

	for (size_t i = 0; i < EP_CLIENTS; i++) {
		struct ep_client *cl = &ep->clients[i];

		if (cl->fd >= 0 && now - cl->since >= EP_CLIENT_NS) {
			ep->host->log_limited(ep->node, &ep->limit, PP_LOG_WARNING,
					      "%s: a client did not read its answer in time",
					      ep->path);
			ep_drop(cl, true);
		}
		waiting |= cl->fd >= 0;
	}
	if (waiting)
		ep->host->timer_arm(ep->timer, EP_CHECK_NS, 0);
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                            */

/* A socket file whose listener is gone (a crash) refuses connections:
 * it may be replaced. Anything else is someone's. */
static int ep_take_path(struct sd_endpoint *ep, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, rc;

	if (lstat(ep->path, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		ep->host->log(ep->node, PP_LOG_ERROR, "stats_endpoint %s exists and is not a socket",
			      ep->path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ? 0 : -errno;
	close(fd);
	if (rc != -ECONNREFUSED) {
		ep->host->log(ep->node, PP_LOG_ERROR, "stats_endpoint %s is in use", ep->path);
		return -EADDRINUSE;
	}
	return unlink(ep->path) < 0 ? -errno : 0;
}

static int ep_listen(struct sd_endpoint *ep)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int rc;

	if (strlen(ep->path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, ep->path, strlen(ep->path) + 1);
	ep->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ep->fd < 0)
		return -errno;
	rc = bind(ep->fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
	if (rc == -EADDRINUSE) {
		rc = ep_take_path(ep, &sa);
		if (rc == 0)
			rc = bind(ep->fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 : -errno;
	}
	if (rc < 0)
		return rc;
	ep->bound = true;
	return listen(ep->fd, EP_CLIENTS) == 0 ? 0 : -errno;
}

int sd_endpoint_open(struct sd_endpoint **out, const char *path, struct pp_node *node,
		     const struct pp_host *host)
{
	struct sd_endpoint *ep = calloc(1, sizeof(*ep));
	int rc = -ENOMEM;

	if (!ep)
		return rc;
	*ep = (struct sd_endpoint){ .node = node, .host = host, .fd = -1 };
	for (size_t i = 0; i < EP_CLIENTS; i++)
		ep->clients[i] = (struct ep_client){ .ep = ep, .fd = -1 };
	ep->path = strdup(path);
	ep->c_queries = host->counter(node, "endpoint_queries", PP_COUNTER_TOTAL);
	ep->c_errors = host->counter(node, "endpoint_errors", PP_COUNTER_TOTAL);
	if (!ep->path || !ep->c_queries || !ep->c_errors)
		goto err;
	rc = ep_listen(ep);
	if (rc < 0) {
		host->log(node, PP_LOG_ERROR, "cannot listen on stats_endpoint %s: %s", path,
			  strerror(-rc));
		goto err;
	}
	ep->timer = host->timer_new(node, ep_expire, ep);
	if (!ep->timer) {
		rc = -ENOMEM;
		goto err;
	}
	*out = ep;
	return 0;
err:
	sd_endpoint_close(ep);
	return rc;
}

int sd_endpoint_start(struct sd_endpoint *ep)
{
	ep->w = ep->host->watch_fd(ep->node, ep->fd, PP_WATCH_READ, ep_accept, ep);
	return ep->w ? 0 : -ENOMEM;
}

void sd_endpoint_stop(struct sd_endpoint *ep)
{
	if (ep->w)
		ep->host->unwatch(ep->w);
	ep->w = NULL;
	if (ep->timer)
		ep->host->timer_free(ep->timer);
	ep->timer = NULL;
	for (size_t i = 0; i < EP_CLIENTS; i++)
		if (ep->clients[i].fd >= 0)
			ep_drop(&ep->clients[i], true);
}

/* Watches and a timer still here (stop() never ran) are the host's. */
void sd_endpoint_close(struct sd_endpoint *ep)
{
	if (!ep)
		return;
	for (size_t i = 0; i < EP_CLIENTS; i++) {
		if (ep->clients[i].fd >= 0)
			close(ep->clients[i].fd);
		free(ep->clients[i].buf);
	}
	if (ep->fd >= 0)
		close(ep->fd);
	if (ep->bound)
		unlink(ep->path);
	free(ep->path);
	free(ep);
}
