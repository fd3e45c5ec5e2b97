/* SPDX-License-Identifier: MIT */
/*
 * A device that changes its TLS 1.3 keys between large messages and checks
 * that every message comes back intact; built and run by
 * t_keyupdate_data.py.
 *
 *   keyupdate_echo PORT CA CERT KEY ROUNDS SIZE
 *
 * Connects to 127.0.0.1:PORT over TLS 1.3 with the client certificate CERT
 * and KEY (the server must present a certificate for "localhost" signed by
 * CA), sends an MQTT 3.1.1 CONNECT and subscribes to ku/echo. Then ROUNDS
 * times: a KeyUpdate with update_requested (the server must change its
 * keys too), a QoS 0 PUBLISH of SIZE bytes to ku/echo, and the same
 * message read back from the broker, compared byte for byte. Exit 0 when
 * every round matched, 1 otherwise (the reason on stderr).
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

#define TIMEOUT_S	20		/* no progress this long: fail */
#define TOPIC		"ku/echo"
#define MQTT_PUBLISH	0x30
#define MQTT_SUBSCRIBE	0x82
#define MQTT_CONNACK	0x20
#define MQTT_SUBACK	0x90

static int
die(const char *what)
{
	fprintf(stderr, "keyupdate_echo: %s\n", what);
	ERR_print_errors_fp(stderr);
	return (1);
}

/* Read exactly len bytes; 0 or -1. */
static int
read_all(SSL *ssl, unsigned char *buf, size_t len)
{
	int r;

	while (len > 0) {
		if ((r = SSL_read(ssl, buf, len > 65536 ? 65536 : (int)len)) <= 0)
			return (-1);
		buf += r;
		len -= (size_t)r;
	}
	return (0);
}

static int
write_all(SSL *ssl, const unsigned char *buf, size_t len)
{
	return (SSL_write(ssl, buf, (int)len) == (int)len ? 0 : -1);
}

/* MQTT remaining length into out; returns its bytes. */
static size_t
varint(size_t n, unsigned char *out)
{
	size_t i = 0;

	do {
		out[i] = n % 128;
		n /= 128;
		if (n > 0)
			out[i] |= 0x80;
		i++;
	} while (n > 0);
	return (i);
}

/* One packet's type and body (malloc'd into *body); 0 or -1. */
static int
read_packet(SSL *ssl, unsigned char *type, unsigned char **body,
    size_t *len)
{
	unsigned char b;
	size_t n = 0, mul = 1;
	int i;

	if (read_all(ssl, type, 1) != 0)
		return (-1);
	for (i = 0; i < 4; i++) {
		if (read_all(ssl, &b, 1) != 0)
			return (-1);
		n += (b & 0x7f) * mul;
		mul *= 128;
		if ((b & 0x80) == 0)
			break;
	}
	if ((*body = malloc(n + 1)) == NULL || read_all(ssl, *body, n) != 0)
		return (-1);
	*len = n;
	return (0);
}

static int
setup(SSL **sslp, int port, char **argv)
{
	struct sockaddr_in sa;
	struct timeval tv = { TIMEOUT_S, 0 };
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;

	ctx = SSL_CTX_new(TLS_client_method());
	if (ctx == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    SSL_CTX_load_verify_locations(ctx, argv[2], NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(ctx, argv[3]) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, argv[4], SSL_FILETYPE_PEM) != 1)
		return (die("cannot set up the TLS context"));
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))) {
		perror("keyupdate_echo: socket");
		return (1);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("keyupdate_echo: connect");
		return (1);
	}
	if ((ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(ssl, fd) ||
	    !SSL_set1_host(ssl, "localhost"))
		return (die("cannot set up the TLS connection"));
	if (SSL_connect(ssl) != 1)
		return (die("TLS handshake failed"));
	*sslp = ssl;
	return (0);
}

/* CONNECT and CONNACK, SUBSCRIBE and SUBACK; 0 or 1. */
static int
mqtt_start(SSL *ssl)
{
	static const unsigned char connect_pkt[] = {
		0x10, 19, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60,
		0, 7, 'k', 'u', '-', 'e', 'c', 'h', 'o'
	};
	static const unsigned char sub_pkt[] = {
		MQTT_SUBSCRIBE, 12, 0, 1, 0, 7, 'k', 'u', '/', 'e', 'c', 'h',
		'o', 0
	};
	unsigned char type, *body = NULL;
	size_t len;

	if (write_all(ssl, connect_pkt, sizeof(connect_pkt)) != 0)
		return (die("cannot send CONNECT"));
	if (read_packet(ssl, &type, &body, &len) != 0 ||
	    type != MQTT_CONNACK || len != 2 || body[1] != 0)
		return (die("no CONNACK accepting the device"));
	free(body);
	if (write_all(ssl, sub_pkt, sizeof(sub_pkt)) != 0)
		return (die("cannot send SUBSCRIBE"));
	if (read_packet(ssl, &type, &body, &len) != 0 ||
	    type != MQTT_SUBACK || len != 3 || body[2] != 0)
		return (die("no SUBACK granting QoS 0"));
	free(body);
	return (0);
}

/* One round: KeyUpdate, PUBLISH, the same message back; 0 or 1. */
static int
round_trip(SSL *ssl, long round, size_t size)
{
	unsigned char *pkt, *body = NULL, type;
	size_t i, n, rl = 2 + strlen(TOPIC) + size, len;
	char e[96];

	if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1)
		return (die("SSL_key_update failed"));
	if ((pkt = malloc(1 + 4 + rl)) == NULL)
		return (die("out of memory"));
	pkt[0] = MQTT_PUBLISH;
	n = 1 + varint(rl, pkt + 1);
	pkt[n++] = 0;
	pkt[n++] = (unsigned char)strlen(TOPIC);
	memcpy(pkt + n, TOPIC, strlen(TOPIC));
	n += strlen(TOPIC);
	for (i = 0; i < size; i++)
		pkt[n + i] = (unsigned char)(round * 7 + i * 13);
	if (write_all(ssl, pkt, n + size) != 0)
		return (die("cannot send PUBLISH"));
	if (read_packet(ssl, &type, &body, &len) != 0) {
		snprintf(e, sizeof(e), "round %ld: no message back", round);
		return (die(e));
	}
	if ((type & 0xf0) != MQTT_PUBLISH || len != rl ||
	    memcmp(body, pkt + n - 2 - strlen(TOPIC), rl) != 0) {
		snprintf(e, sizeof(e), "round %ld: the message came back "
		    "changed (%zu bytes, sent %zu)", round, len, rl);
		return (die(e));
	}
	free(body);
	free(pkt);
	return (0);
}

int
main(int argc, char **argv)
{
	SSL *ssl = NULL;
	long rounds, i;
	size_t size;
	int port;

	if (argc != 7) {
		fprintf(stderr, "usage: keyupdate_echo PORT CA CERT KEY ROUNDS "
		    "SIZE\n");
		return (2);
	}
	port = atoi(argv[1]);
	rounds = atol(argv[5]);
	size = (size_t)atol(argv[6]);
	if (port <= 0 || port > 65535 || rounds < 1 || size < 1 ||
	    size > 4 * 1024 * 1024) {
		fprintf(stderr, "keyupdate_echo: bad PORT, ROUNDS or SIZE\n");
		return (2);
	}
	if (setup(&ssl, port, argv) != 0 || mqtt_start(ssl) != 0)
		return (1);
	for (i = 0; i < rounds; i++)
		if (round_trip(ssl, i, size) != 0)
			return (1);
	printf("%ld rounds of KeyUpdate and %zu bytes there and back\n",
	    rounds, size);
	SSL_shutdown(ssl);
	return (0);
}
