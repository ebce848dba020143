/* zmq-keygen: make a CurveZMQ key pair the way zmq-in and zmq-out read it,
 * with the plugins' own code (plugins/lib/zsock.c): PATH gets the Z85
 * secret key (mode 0600), PATH.pub the public one. A test tool, and what
 * `pktpipe --gen-curve-key PATH` should do.
 *
 *   zmq-keygen PATH
 */
#include "../../plugins/lib/zsock.c"

int main(int argc, char **argv)
{
	char err[512];

	if (argc != 2) {
		fprintf(stderr, "usage: zmq-keygen PATH (writes PATH and PATH.pub)\n");
		return 2;
	}
	if (zsock_keygen(argv[1], err, sizeof(err)) < 0) {
		fprintf(stderr, "zmq-keygen: %s\n", err);
		return 1;
	}
	return 0;
}
