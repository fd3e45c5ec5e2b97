/* SPDX-License-Identifier: MIT */
/*
 * A device that floods moat with TLS 1.3 KeyUpdate requests and never reads;
 * built and run by t_keyupdate.py.
 *
 *   keyupdate_client PORT CA CERT KEY COUNT
 *
 * Connects to 127.0.0.1:PORT over TLS 1.3 with the client certificate CERT
 * and KEY (the server must present a certificate for "localhost" signed by
 * CA), sends an MQTT 3.1.1 CONNECT, then sends COUNT KeyUpdate messages with
 * update_requested set, each of which asks the server to answer with a
 * KeyUpdate of its own. It never reads, and its receive buffer is small, so
 * the answers pile up on the server's side.
 *
 * A server that stops reading (as moat does when its queue towards the
 * device is full) blocks the sends; after STALL_S seconds without progress
 * the client gives up sending. Either way it then keeps the connection open
 * for $HOLD seconds (default 3, at most 60) and exits 0. Setup errors exit 1.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define RCVBUF	4096	/* the kernel rounds it up to its minimum */
#define STALL_S	2	/* a send blocked this long: the server stopped reading */

static int
die(const char *what)
{
	fprintf(stderr, "keyupdate_client: %s\n", what);
	ERR_print_errors_fp(stderr);
	return (1);
}

int
main(int argc, char **argv)
{
	/* CONNECT, MQTT 3.1.1, clean session, keepalive 60, id "ku-flood" */
	static const unsigned char connect_pkt[] = {
		0x10, 20, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60,
		0, 8, 'k', 'u', '-', 'f', 'l', 'o', 'o', 'd'
	};
	struct sockaddr_in sa;
	struct timeval tv = { STALL_S, 0 };
	SSL_CTX *ctx;
	SSL *ssl;
	const char *hold_env;
	long count, sent, hold;
	int fd, port, r, rcvbuf = RCVBUF;

	if (argc != 6) {
		fprintf(stderr, "usage: keyupdate_client PORT CA CERT KEY "
		    "COUNT\n");
		return (2);
	}
	port = atoi(argv[1]);
	count = atol(argv[5]);
	hold_env = getenv("HOLD");
	hold = hold_env ? atol(hold_env) : 3;
	if (port <= 0 || port > 65535 || count < 0 || hold < 0 || hold > 60) {
		fprintf(stderr, "keyupdate_client: bad PORT, COUNT or HOLD\n");
		return (2);
	}

	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    SSL_CTX_load_verify_locations(ctx, argv[2], NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, argv[3]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, argv[4], SSL_FILETYPE_PEM) != 1)
		return (die("cannot set up the TLS context"));
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

	/* Small receive buffer before connect(), so that it is advertised. */
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))) {
		perror("keyupdate_client: socket");
		return (1);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("keyupdate_client: connect");
		return (1);
	}

	if ((ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(ssl, fd) ||
	    !SSL_set1_host(ssl, "localhost"))
		return (die("cannot set up the TLS connection"));
	if (SSL_connect(ssl) != 1)
		return (die("TLS handshake failed"));
	if (SSL_write(ssl, connect_pkt, sizeof(connect_pkt)) !=
	    (int)sizeof(connect_pkt))
		return (die("cannot send CONNECT"));

	for (sent = 0; sent < count; sent++) {
		if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1)
			return (die("SSL_key_update failed"));
		if ((r = SSL_do_handshake(ssl)) != 1) {
			/* WANT_WRITE: blocked for STALL_S seconds (EAGAIN). */
			fprintf(stderr, "keyupdate_client: sending stopped after "
			    "%ld: %s\n", sent,
			    SSL_get_error(ssl, r) == SSL_ERROR_WANT_WRITE ?
			    "the server stopped reading" :
			    "the connection failed");
			ERR_clear_error();
			break;
		}
	}
	printf("sent %ld of %ld KeyUpdate requests\n", sent, count);
	fflush(stdout);

	sleep((unsigned int)hold);
	close(fd);	/* no close_notify: a write could block again */
	return (0);
}
