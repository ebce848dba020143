/* ZeroMQ plumbing shared by zmq-in and zmq-out; see zsock.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "zsock.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "pktpipe"
#define ZAP_PARTS 7 /* version, id, domain, address, identity, mechanism, key */
#define ZAP_PER_TURN 64
#define KEYFILE_MAX 4096

static int zsock_fail(struct zsock *z, const char *what)
{
	int rc = -zmq_errno();

	z->host->log(z->node, PP_LOG_ERROR, "%s: %s", what, zmq_strerror(-rc));
	return rc ? rc : -EIO;
}

int zsock_init(struct zsock *z, struct pp_node *node, const struct pp_host *host, int type)
{
	*z = (struct zsock){ .node = node, .host = host };
	z->ctx = zmq_ctx_new();
	if (!z->ctx)
		return zsock_fail(z, "cannot create a zmq context");
	z->sock = zmq_socket(z->ctx, type);
	if (!z->sock) {
		int rc = zsock_fail(z, "cannot create a zmq socket");

		zmq_ctx_term(z->ctx);
		z->ctx = NULL;
		return rc;
	}
	/* Until stop() says otherwise, closing drops what is queued. */
	return zsock_set(z, ZMQ_LINGER, 0, "linger");
}

int zsock_set(struct zsock *z, int opt, int value, const char *what)
{
	char msg[128];

	if (zmq_setsockopt(z->sock, opt, &value, sizeof(value)) == 0)
		return 0;
	snprintf(msg, sizeof(msg), "cannot set %s to %d", what, value);
	return zsock_fail(z, msg);
}

int zsock_attach(struct zsock *z, const struct pp_list *endpoints, bool bind)
{
	char msg[512], last[256];
	size_t len;

	for (size_t i = 0; i < endpoints->count; i++) {
		const char *ep = endpoints->str[i];

		if ((bind ? zmq_bind(z->sock, ep) : zmq_connect(z->sock, ep)) != 0) {
			snprintf(msg, sizeof(msg), "cannot %s %s", bind ? "bind" : "connect to", ep);
			return zsock_fail(z, msg);
		}
		len = sizeof(last);
		if (!bind || zmq_getsockopt(z->sock, ZMQ_LAST_ENDPOINT, last, &len) != 0)
			snprintf(last, sizeof(last), "%s", ep);
		z->host->log(z->node, PP_LOG_INFO, "%s %s", bind ? "bound to" : "connecting to",
			     last);
	}
	return 0;
}

int zsock_fd(struct zsock *z, int *fd)
{
	size_t len = sizeof(*fd);

	if (zmq_getsockopt(z->sock, ZMQ_FD, fd, &len) != 0)
		return zsock_fail(z, "cannot get the socket's ZMQ_FD");
	return 0;
}

static int sock_events(void *sock)
{
	int events = 0;
	size_t len = sizeof(events);

	if (zmq_getsockopt(sock, ZMQ_EVENTS, &events, &len) != 0)
		return 0;
	return events;
}

int zsock_events(struct zsock *z)
{
	return sock_events(z->sock);
}

/* ------------------------------------------------------------------ */
/* CurveZMQ keys                                                        */

bool zsock_curve_wanted(const struct zsock_curve *cfg)
{
	return cfg->secret_key || cfg->server_key || cfg->allow.count;
}

static bool z85_key_ok(const char *text)
{
	uint8_t key[32];

	return text && strlen(text) == ZSOCK_KEY_Z85 && zmq_z85_decode(key, text) != NULL;
}

int zsock_curve_validate(const struct zsock_curve *cfg, char *err, size_t errlen)
{
	if (!zsock_curve_wanted(cfg))
		return 0;
	if (!cfg->secret_key) {
		snprintf(err, errlen, "CurveZMQ needs curve_secret_key (this node's own key file)");
		return -EINVAL;
	}
	if (cfg->server_key && !z85_key_ok(cfg->server_key)) {
		snprintf(err, errlen, "curve_server_key is not a %d-character Z85 public key",
			 ZSOCK_KEY_Z85);
		return -EINVAL;
	}
	if (cfg->server_key && cfg->allow.count) {
		snprintf(err, errlen, "curve_allow is for servers; a node with curve_server_key "
				      "is a client");
		return -EINVAL;
	}
	if (!cfg->server_key && !cfg->allow.count) {
		snprintf(err, errlen, "a CurveZMQ server needs curve_allow (the client public "
				      "keys it admits)");
		return -EINVAL;
	}
	for (size_t i = 0; i < cfg->allow.count; i++) {
		if (!z85_key_ok(cfg->allow.str[i])) {
			snprintf(err, errlen, "curve_allow: '%s' is not a %d-character Z85 public key",
				 cfg->allow.str[i], ZSOCK_KEY_Z85);
			return -EINVAL;
		}
	}
	return 0;
}

/* The key in a key file: czmq's `secret-key = "..."` line, or the file's
 * first word (what zsock_keygen writes). No comments: '#' is a Z85 digit. */
static int key_from_text(const char *text, char key[ZSOCK_KEY_Z85 + 1])
{
	const char *p = strstr(text, "secret-key = \"");

	p = p ? p + strlen("secret-key = \"") : text + strspn(text, " \t\r\n");
	if (strcspn(p, " \t\r\n\"") != ZSOCK_KEY_Z85)
		return -EINVAL;
	memcpy(key, p, ZSOCK_KEY_Z85);
	key[ZSOCK_KEY_Z85] = '\0';
	return z85_key_ok(key) ? 0 : -EINVAL;
}

/* The key file as an fd: a regular file only its owner may read. O_NONBLOCK
 * because a FIFO (or a device) named as the key would otherwise hold open()
 * or read(), and the loop with it, until someone writes; fstat() then tells
 * what it is before anything is read. */
static int open_key_file(struct zsock *z, const char *path)
{
	struct stat st;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = -errno;
		z->host->log(z->node, PP_LOG_ERROR, "key file %s: %s", path, strerror(-rc));
		goto err;
	}
	if (!S_ISREG(st.st_mode)) {
		z->host->log(z->node, PP_LOG_ERROR, "key file %s is not a regular file", path);
		rc = -EINVAL;
		goto err;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		z->host->log(z->node, PP_LOG_ERROR,
			     "key file %s is open to others (mode %04o): chmod 600 it", path,
			     (unsigned)(st.st_mode & 07777));
		rc = -EPERM;
		goto err;
	}
	return fd;
err:
	if (fd >= 0)
		close(fd);
	return rc;
}

static int read_key_file(struct zsock *z, const char *path, char key[ZSOCK_KEY_Z85 + 1])
{
	char text[KEYFILE_MAX + 1];
	ssize_t n;
	int fd, rc = 0;

	fd = open_key_file(z, path);
	if (fd < 0)
		return fd;
	n = read(fd, text, KEYFILE_MAX);
	text[n > 0 ? n : 0] = '\0';
	if (n < 0 || key_from_text(text, key) < 0) {
		z->host->log(z->node, PP_LOG_ERROR, "key file %s holds no Z85 secret key", path);
		rc = -EINVAL;
	}
	close(fd);
	explicit_bzero(text, sizeof(text));
	return rc;
}

static int curve_setkeys(struct zsock *z, const char *secret)
{
	char public[ZSOCK_KEY_Z85 + 1];

	if (zmq_curve_public(public, secret) != 0)
		return zsock_fail(z, "cannot derive the public key (libzmq without CURVE?)");
	if (zmq_setsockopt(z->sock, ZMQ_CURVE_SECRETKEY, secret, ZSOCK_KEY_Z85 + 1) != 0 ||
	    zmq_setsockopt(z->sock, ZMQ_CURVE_PUBLICKEY, public, ZSOCK_KEY_Z85 + 1) != 0)
		return zsock_fail(z, "cannot set the CurveZMQ keys");
	z->host->log(z->node, PP_LOG_INFO, "CurveZMQ public key %s", public);
	return 0;
}

static int curve_allow(struct zsock *z, const struct pp_list *allow)
{
	z->allow = calloc(allow->count, sizeof(*z->allow));
	if (!z->allow)
		return -ENOMEM;
	for (size_t i = 0; i < allow->count; i++)
		zmq_z85_decode(z->allow[z->nallow++], allow->str[i]);
	z->zap = zmq_socket(z->ctx, ZMQ_REP);
	if (!z->zap)
		return zsock_fail(z, "cannot create the ZAP socket");
	if (zmq_bind(z->zap, ZAP_ENDPOINT) != 0)
		return zsock_fail(z, "cannot bind the ZAP handler");
	if (zmq_setsockopt(z->sock, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)) != 0)
		return zsock_fail(z, "cannot set the ZAP domain");
	return zsock_set(z, ZMQ_CURVE_SERVER, 1, "curve_server");
}

int zsock_curve(struct zsock *z, const struct zsock_curve *cfg)
{
	char secret[ZSOCK_KEY_Z85 + 1];
	int rc;

	if (!zsock_curve_wanted(cfg))
		return 0;
	if (!zmq_has("curve")) {
		z->host->log(z->node, PP_LOG_ERROR, "this libzmq was built without CURVE");
		return -ENOTSUP;
	}
	rc = read_key_file(z, cfg->secret_key, secret);
	if (rc == 0)
		rc = curve_setkeys(z, secret);
	explicit_bzero(secret, sizeof(secret));
	if (rc < 0)
		return rc;
	if (cfg->server_key) {
		if (zmq_setsockopt(z->sock, ZMQ_CURVE_SERVERKEY, cfg->server_key,
				   ZSOCK_KEY_Z85 + 1) != 0)
			return zsock_fail(z, "cannot set curve_server_key");
		return 0;
	}
	return curve_allow(z, &cfg->allow);
}

/* ------------------------------------------------------------------ */
/* The ZAP handler: libzmq asks it about every CURVE client             */

static bool zap_allowed(const struct zsock *z, const zmq_msg_t *key)
{
	if (zmq_msg_size((zmq_msg_t *)key) != 32)
		return false;
	for (size_t i = 0; i < z->nallow; i++)
		if (memcmp(z->allow[i], zmq_msg_data((zmq_msg_t *)key), 32) == 0)
			return true;
	return false;
}

static void zap_send(struct zsock *z, const char *part, size_t len, bool more)
{
	zmq_send(z->zap, part, len, more ? ZMQ_SNDMORE : 0);
}

/* One request, whole (every part read), then its reply. A malformed one
 * is refused; the REP socket must answer whatever it read. */
static void zap_handle(struct zsock *z, zmq_msg_t *parts, int n)
{
	bool ok = n == ZAP_PARTS && zmq_msg_size(&parts[0]) == 3 &&
		  memcmp(zmq_msg_data(&parts[0]), "1.0", 3) == 0 &&
		  zmq_msg_size(&parts[5]) == 5 && memcmp(zmq_msg_data(&parts[5]), "CURVE", 5) == 0 &&
		  zap_allowed(z, &parts[6]);
	char key[ZSOCK_KEY_Z85 + 1] = "?";

	zap_send(z, "1.0", 3, true);
	zap_send(z, n > 1 ? zmq_msg_data(&parts[1]) : "", n > 1 ? zmq_msg_size(&parts[1]) : 0,
		 true);
	zap_send(z, ok ? "200" : "400", 3, true);
	zap_send(z, ok ? "OK" : "key not allowed", ok ? 2 : 15, true);
	zap_send(z, "", 0, true);
	zap_send(z, "", 0, false);
	if (ok)
		return;
	if (n == ZAP_PARTS && zmq_msg_size(&parts[6]) == 32)
		zmq_z85_encode(key, zmq_msg_data(&parts[6]), 32);
	z->host->log_limited(z->node, &z->zap_limit, PP_LOG_WARNING,
			     "refused a CurveZMQ client whose key is not in curve_allow: %s", key);
}

/* 1: a request was handled; 0: none waiting. */
static int zap_one(struct zsock *z)
{
	zmq_msg_t parts[ZAP_PARTS];
	zmq_msg_t extra;
	int n = 0, more = 1;
	size_t len = sizeof(more);

	if (!(sock_events(z->zap) & ZMQ_POLLIN))
		return 0;
	while (more) {
		zmq_msg_t *m = n < ZAP_PARTS ? &parts[n] : &extra;

		zmq_msg_init(m);
		if (zmq_msg_recv(m, z->zap, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(m);
			break;
		}
		if (zmq_getsockopt(z->zap, ZMQ_RCVMORE, &more, &len) != 0)
			more = 0;
		if (n < ZAP_PARTS)
			n++;
		else
			zmq_msg_close(m);
	}
	if (n)
		zap_handle(z, parts, n);
	for (int i = 0; i < n; i++)
		zmq_msg_close(&parts[i]);
	return n ? 1 : 0;
}

static void zap_turn(void *arg)
{
	struct zsock *z = arg;

	for (int i = 0; i < ZAP_PER_TURN; i++)
		if (!zap_one(z))
			return;
	/* Edge-triggered: come back for the rest on the next turn. */
	z->host->timer_arm(z->zap_timer, 0, 0);
}

static void zap_ready(void *arg, int fd, unsigned events)
{
	(void)fd;
	(void)events;
	zap_turn(arg);
}

int zsock_start(struct zsock *z)
{
	int fd;
	size_t len = sizeof(fd);

	if (!z->zap)
		return 0;
	if (zmq_getsockopt(z->zap, ZMQ_FD, &fd, &len) != 0)
		return zsock_fail(z, "cannot get the ZAP socket's ZMQ_FD");
	z->zap_timer = z->host->timer_new(z->node, zap_turn, z);
	if (!z->zap_timer)
		return -ENOMEM;
	z->zap_watch = z->host->watch_fd(z->node, fd, PP_WATCH_READ | PP_WATCH_EDGE, zap_ready, z);
	if (!z->zap_watch)
		return -ENOMEM;
	/* Requests that came before the watch raise no new edge. */
	return z->host->timer_arm(z->zap_timer, 0, 0);
}

/* ------------------------------------------------------------------ */
/* Closing                                                              */

void zsock_close(struct zsock *z, int linger_ms)
{
	if (z->zap_watch)
		z->host->unwatch(z->zap_watch);
	if (z->zap_timer)
		z->host->timer_free(z->zap_timer);
	z->zap_watch = NULL;
	z->zap_timer = NULL;
	if (z->sock) {
		zmq_setsockopt(z->sock, ZMQ_LINGER, &linger_ms, sizeof(linger_ms));
		zmq_close(z->sock);
	}
	z->sock = NULL;
}

void zsock_term(struct zsock *z)
{
	int zero = 0;

	if (z->sock) {
		zmq_setsockopt(z->sock, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_close(z->sock);
		z->sock = NULL;
	}
	/* The ZAP socket last: the server socket may still ask it while its
	 * handshakes wind down, and nothing lingers on it. */
	if (z->zap) {
		zmq_setsockopt(z->zap, ZMQ_LINGER, &zero, sizeof(zero));
		zmq_close(z->zap);
		z->zap = NULL;
	}
	if (z->ctx)
		while (zmq_ctx_term(z->ctx) != 0 && zmq_errno() == EINTR)
			;
	z->ctx = NULL;
	free(z->allow);
	z->allow = NULL;
	z->nallow = 0;
}

/* ------------------------------------------------------------------ */
/* Key generation                                                       */

static int write_key(const char *path, const char *text, mode_t mode, char *err, size_t errlen)
{
	size_t len = strlen(text);
	int fd, rc = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
		rc = errno ? -errno : -EIO;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
	}
	close(fd);
	return rc;
}

int zsock_keygen(const char *path, char *err, size_t errlen)
{
	char public[ZSOCK_KEY_Z85 + 1], secret[ZSOCK_KEY_Z85 + 1], line[ZSOCK_KEY_Z85 + 2];
	char pub_path[4096];
	int rc;

	if (snprintf(pub_path, sizeof(pub_path), "%s.pub", path) >= (int)sizeof(pub_path)) {
		snprintf(err, errlen, "%s: path too long", path);
		return -ENAMETOOLONG;
	}
	if (zmq_curve_keypair(public, secret) != 0) {
		snprintf(err, errlen, "cannot generate a key pair: %s", zmq_strerror(zmq_errno()));
		return -ENOTSUP;
	}
	snprintf(line, sizeof(line), "%s\n", secret);
	rc = write_key(path, line, 0600, err, errlen);
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(line, sizeof(line));
	if (rc < 0)
		return rc;
	snprintf(line, sizeof(line), "%s\n", public);
	rc = write_key(pub_path, line, 0644, err, errlen);
	if (rc < 0)
		unlink(path);
	return rc;
}
