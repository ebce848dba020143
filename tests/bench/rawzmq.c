/* rawzmq: the baseline of the ZeroMQ row. A minimal libzmq PUSH/PULL pair
 * moving the packets of a capture one message each, as the original
 * nflog-zmq-pcap-pipe did, with nothing else in the way.
 *
 *   rawzmq FILE ENDPOINT
 *
 * Loads every packet of FILE into memory first (not timed), then a PULL
 * socket bound to ENDPOINT (its own context and thread; tcp://127.0.0.1:*
 * picks a free port) receives while a
 * PUSH socket connected to it (its own context: as two processes would be)
 * sends each packet's bytes as one message with plain blocking zmq_send(),
 * default high-water marks. The clock runs from the first send to the last
 * receive. Prints
 *   messages N bytes B seconds S msgs_per_s R
 * Exit 0; 1 on errors; 2 on bad arguments.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pcap/pcap.h>
#include <zmq.h>

struct msg {
	uint32_t len;
	uint8_t *data;
};

struct run {
	const char *endpoint;
	char bound[256]; /* what the PULL side bound: tcp://127.0.0.1:* picks a port */
	struct msg *msgs;
	size_t n;
	uint64_t bytes;
	double end;
	int ready; /* the PULL side is bound */
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int load(const char *path, struct run *r)
{
	char err[PCAP_ERRBUF_SIZE];
	struct pcap_pkthdr *h;
	const u_char *data;
	size_t cap = 0;
	pcap_t *pc = pcap_open_offline(path, err);

	if (!pc) {
		fprintf(stderr, "rawzmq: %s: %s\n", path, err);
		return -1;
	}
	while (pcap_next_ex(pc, &h, &data) == 1) {
		if (r->n == cap) {
			cap = cap ? cap * 2 : 65536;
			r->msgs = realloc(r->msgs, cap * sizeof(*r->msgs));
			if (!r->msgs)
				return -1;
		}
		r->msgs[r->n].len = h->caplen;
		r->msgs[r->n].data = malloc(h->caplen ? h->caplen : 1);
		if (!r->msgs[r->n].data)
			return -1;
		memcpy(r->msgs[r->n].data, data, h->caplen);
		r->bytes += h->caplen;
		r->n++;
	}
	pcap_close(pc);
	return 0;
}

static void set_ready(struct run *r, int v)
{
	pthread_mutex_lock(&r->lock);
	r->ready = v;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void *receiver(void *arg)
{
	struct run *r = arg;
	void *ctx = zmq_ctx_new();
	void *pull = zmq_socket(ctx, ZMQ_PULL);
	size_t len = sizeof(r->bound);
	zmq_msg_t m;

	if (!pull || zmq_bind(pull, r->endpoint) != 0 ||
	    zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, r->bound, &len) != 0) {
		fprintf(stderr, "rawzmq: bind %s: %s\n", r->endpoint, zmq_strerror(zmq_errno()));
		set_ready(r, -1);
		return NULL;
	}
	set_ready(r, 1);
	zmq_msg_init(&m);
	for (size_t i = 0; i < r->n; i++)
		if (zmq_msg_recv(&m, pull, 0) < 0) {
			fprintf(stderr, "rawzmq: recv: %s\n", zmq_strerror(zmq_errno()));
			break;
		}
	r->end = now();
	zmq_msg_close(&m);
	zmq_close(pull);
	zmq_ctx_term(ctx);
	return NULL;
}

static int send_all(struct run *r, double *start)
{
	void *ctx = zmq_ctx_new();
	void *push = zmq_socket(ctx, ZMQ_PUSH);
	int rc = 0;

	if (!push || zmq_connect(push, r->bound) != 0) {
		fprintf(stderr, "rawzmq: connect %s: %s\n", r->bound, zmq_strerror(zmq_errno()));
		return -1;
	}
	*start = now();
	for (size_t i = 0; i < r->n && rc == 0; i++)
		if (zmq_send(push, r->msgs[i].data, r->msgs[i].len, 0) < 0) {
			fprintf(stderr, "rawzmq: send: %s\n", zmq_strerror(zmq_errno()));
			rc = -1;
		}
	zmq_close(push); /* linger: everything queued is delivered */
	zmq_ctx_term(ctx);
	return rc;
}

int main(int argc, char **argv)
{
	struct run r = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	pthread_t t;
	double start = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: rawzmq FILE ENDPOINT\n");
		return 2;
	}
	r.endpoint = argv[2];
	if (load(argv[1], &r) < 0 || !r.n)
		return 1;
	if (pthread_create(&t, NULL, receiver, &r) != 0)
		return 1;
	pthread_mutex_lock(&r.lock);
	while (!r.ready)
		pthread_cond_wait(&r.cond, &r.lock);
	pthread_mutex_unlock(&r.lock);
	if (r.ready < 0 || send_all(&r, &start) < 0)
		return 1;
	pthread_join(t, NULL);
	printf("messages %zu bytes %llu seconds %.6f msgs_per_s %.0f\n", r.n,
	       (unsigned long long)r.bytes, r.end - start, (double)r.n / (r.end - start));
	return 0;
}
