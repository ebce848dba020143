/* ZeroMQ plumbing shared by zmq-in and zmq-out: one context per node (so a
 * node on a worker thread shares nothing, and CurveZMQ's ZAP handler, which
 * is per context, serves that node's allow-list only), one socket, its
 * endpoints, and the non-blocking ways in and out of it.
 *
 * Every function logs its failures through the host, naming the endpoint or
 * option, and returns 0 or -errno. */
#ifndef PKTPIPE_PLUGINS_LIB_ZSOCK_H
#define PKTPIPE_PLUGINS_LIB_ZSOCK_H

#include <stdbool.h>
#include <stdint.h>

#include <pktpipe/plugin.h>

/* CurveZMQ keys as configured; unset strings are NULL, an empty list has
 * count 0. A node with a server key is a client; else a node with a secret
 * key is a server, which admits only the clients in allow. */
struct zsock_curve {
	char *secret_key; /* path of a Z85 secret key file */
	char *server_key; /* the server's public key, Z85 */
	struct pp_list allow; /* client public keys, Z85 */
};

#define ZSOCK_KEY_Z85 40 /* a Curve25519 key in Z85, without the NUL */

struct zsock {
	struct pp_node *node;
	const struct pp_host *host;
	void *ctx, *sock;
	/* CurveZMQ server: the ZAP handler's socket and its watch. */
	void *zap;
	struct pp_watch *zap_watch;
	struct pp_timer *zap_timer;
	uint8_t (*allow)[32];
	size_t nallow;
	struct pp_log_limit zap_limit;
};

/* A context and a socket of type (ZMQ_PUSH, ...). */
int zsock_init(struct zsock *z, struct pp_node *node, const struct pp_host *host, int type);
/* An integer socket option; what names it in messages. */
int zsock_set(struct zsock *z, int opt, int value, const char *what);
/* Key files and keys checked, the socket set up as CURVE client or server
 * (a server also binds its ZAP handler). Call before zsock_attach. */
int zsock_curve(struct zsock *z, const struct zsock_curve *cfg);
/* Whether a curve config asks for anything; cross-key checks for validate(). */
bool zsock_curve_wanted(const struct zsock_curve *cfg);
int zsock_curve_validate(const struct zsock_curve *cfg, char *err, size_t errlen);
/* Bind or connect every endpoint. A bound endpoint is logged as libzmq
 * resolved it, so "tcp://127.0.0.1:*" reports the port it got. */
int zsock_attach(struct zsock *z, const struct pp_list *endpoints, bool bind);
/* Start the ZAP handler's watch (a server only); 0 otherwise. */
int zsock_start(struct zsock *z);
/* The socket's ZMQ_FD, for an edge-triggered watch. */
int zsock_fd(struct zsock *z, int *fd);
/* ZMQ_EVENTS: ZMQ_POLLIN / ZMQ_POLLOUT now; 0 on error. */
int zsock_events(struct zsock *z);
/* Close the socket, letting libzmq send what it holds for linger_ms, and
 * the ZAP handler; host watches and timers are released here. */
void zsock_close(struct zsock *z, int linger_ms);
/* Terminate the context: blocks until the linger of closed sockets ends.
 * No host call: safe on any thread and from close(). */
void zsock_term(struct zsock *z);

/* Generate a key pair: secret to path (mode 0600), public to path.pub. */
int zsock_keygen(const char *path, char *err, size_t errlen);

#endif
