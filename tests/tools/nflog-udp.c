/* nflog-udp: a bounded UDP flood on loopback, for the nflog tests and the
 * buffer measurements in plugins/nflog/README.md.
 *
 *   nflog-udp [-6] [-c COUNT] [-t SECONDS] [-s SIZE] [-p PORT] [-r PPS]
 *
 * Sends UDP datagrams of SIZE payload bytes (default 100) to 127.0.0.1 (or
 * ::1 with -6) PORT (default 9999), COUNT of them (default 1000) or, with
 * -t, for that many seconds at most; -r paces to PPS packets per second,
 * else as fast as sendmmsg() goes. A socket bound to PORT first (and never
 * read) keeps the kernel from answering with ICMP port unreachable.
 *
 * Prints "sent N packets, B bytes" (B at the IP layer: headers included) and
 * exits 0; 2 on bad arguments, 1 when a socket call fails.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define UDP_BATCH 64

struct udp_args {
	bool v6;
	uint64_t count, size, port, pps;
	double seconds;
};

static int udp_usage(void)
{
	fprintf(stderr, "usage: nflog-udp [-6] [-c COUNT] [-t SECONDS] [-s SIZE] [-p PORT] "
			"[-r PPS]\n");
	return 2;
}

static int udp_parse(int argc, char **argv, struct udp_args *a)
{
	int opt;

	*a = (struct udp_args){ .count = 1000, .size = 100, .port = 9999 };
	while ((opt = getopt(argc, argv, "6c:t:s:p:r:")) != -1) {
		switch (opt) {
		case '6': a->v6 = true; break;
		case 'c': a->count = strtoull(optarg, NULL, 10); break;
		case 't': a->seconds = atof(optarg); a->count = UINT64_MAX; break;
		case 's': a->size = strtoull(optarg, NULL, 10); break;
		case 'p': a->port = strtoull(optarg, NULL, 10); break;
		case 'r': a->pps = strtoull(optarg, NULL, 10); break;
		default: return -1;
		}
	}
	if (optind != argc || a->size > 65000 || !a->port || a->port > 65535)
		return -1;
	return 0;
}

static socklen_t udp_addr(const struct udp_args *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)a->port);
		s6->sin6_addr = in6addr_loopback;
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)a->port);
	s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sizeof(*s4);
}

static double udp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Pace: sleep until `sent` packets are due at pps since start. */
static void udp_pace(const struct udp_args *a, double start, uint64_t sent)
{
	double wait = start + (double)sent / (double)a->pps - udp_now();
	struct timespec ts;

	if (wait <= 0)
		return;
	ts.tv_sec = (time_t)wait;
	ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

static int udp_send(const struct udp_args *a, int fd, uint64_t *sent)
{
	static char payload[65000];
	struct mmsghdr msgs[UDP_BATCH];
	struct iovec iov = { .iov_base = payload, .iov_len = a->size };
	double start = udp_now();

	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < UDP_BATCH; i++)
		msgs[i].msg_hdr = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1 };
	while (*sent < a->count && (!a->seconds || udp_now() - start < a->seconds)) {
		uint64_t left = a->count - *sent;
		unsigned n = left < UDP_BATCH ? (unsigned)left : UDP_BATCH;
		int rc;

		if (a->pps) {
			n = 1;
			udp_pace(a, start, *sent);
		}
		memcpy(payload, sent, sizeof(*sent)); /* a counter, for eyes reading dumps */
		rc = sendmmsg(fd, msgs, n, 0);
		if (rc < 0 && errno != EINTR && errno != ENOBUFS) {
			perror("nflog-udp: sendmmsg");
			return 1;
		}
		if (rc > 0)
			*sent += (uint64_t)rc;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct udp_args a;
	struct sockaddr_storage ss;
	socklen_t len;
	uint64_t sent = 0;
	int sink, fd, rc;

	if (udp_parse(argc, argv, &a) < 0)
		return udp_usage();
	len = udp_addr(&a, &ss);
	sink = socket(ss.ss_family, SOCK_DGRAM, 0);
	fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	if (sink < 0 || fd < 0 || bind(sink, (struct sockaddr *)&ss, len) < 0 ||
	    connect(fd, (struct sockaddr *)&ss, len) < 0) {
		perror("nflog-udp: socket");
		return 1;
	}
	rc = udp_send(&a, fd, &sent);
	printf("sent %llu packets, %llu bytes\n", (unsigned long long)sent,
	       (unsigned long long)(sent * (a.size + (a.v6 ? 48 : 28))));
	close(fd);
	close(sink);
	return rc;
}
