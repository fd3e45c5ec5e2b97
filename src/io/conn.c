/* SPDX-License-Identifier: MIT */
/*
 * One device connection, from accept to the close log line.
 *
 *   HANDSHAKE      TLS with a verified client certificate (handshake_timeout);
 *                  the certificate's identity fields are read once
 *   AWAIT_CONNECT  the device's first MQTT packet must be a CONNECT, whole
 *                  within max_connect_size and connect_timeout; it is
 *                  rewritten with the credentials mapped from the identity
 *   CONNECTING     connect to the loopback broker (same deadline); device
 *                  bytes that arrive meanwhile wait in a capped buffer
 *   PROXYING       bytes both ways with backpressure (idle_timeout)
 *   DRAINING       flush close_notify / FIN, discard late input, linger
 *   CLOSED         handles closing; freed after the last close callback
 *
 * A refusal after the handshake answers with the CONNACK the device's MQTT
 * version expects, then drains like any other close.
 *
 * Backpressure: a side stops being read while the other side's write queue is
 * above HIGH_WATER and resumes below LOW_WATER, so a peer that stops reading
 * costs moat a bounded amount of memory, never an unbounded queue.
 *
 * Device-to-broker bytes pass through up_deliver(), a stage of its own, so
 * that MQTT framing (the CONNECT rewrite, topic policy) can later be put
 * there without touching the socket callbacks.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/admit.h"
#include "moat/backend.h"
#include "moat/config.h"
#include "moat/conn.h"
#include "moat/identity.h"
#include "moat/worker.h"
#include "moat/log.h"
#include "moat/mqtt.h"
#include "moat/snapshot.h"
#include "moat/tls.h"

#define RX_CAP          16384           /* ciphertext read from the device */
#define PEND_SLACK      16384           /* room past max_connect_size for
                                         * what follows the CONNECT */
#define PEND_MIN        4096            /* first allocation of pend */
#define HIGH_WATER      (256 * 1024)    /* pause the other side above this */
#define LOW_WATER       (64 * 1024)     /* and resume below this */
#define LINGER_MS       2000            /* closing: deadline for progress */
#define DRAIN_MAX_MS    30000           /* closing: deadline in all */

struct conn {
	struct worker *w;
	struct snapshot *snap;
	struct conn *prev, *next;       /* w->conns */
	uint64_t id;
	enum conn_state st;

	uv_tcp_t dev;
	union {
		uv_handle_t h;
		uv_stream_t s;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} be;
	uv_connect_t be_req;
	uv_timer_t timer;
	uv_shutdown_t dev_sreq, be_sreq;
	int be_init;                    /* be handle initialised */
	int be_connected;
	int dev_reading, be_reading;
	int dev_paused;                 /* by backpressure from the broker */
	int dev_eof;                    /* device sent FIN */
	int dev_dead;                   /* device reset: write nothing more */
	int tls_up;                     /* handshake completed */
	int dev_shut, be_shut;          /* DRAINING: side finished */
	struct admit_entry adm;         /* in w->admit */
	int open_handles;

	struct tls_session *tls;
	char rx[RX_CAP];                /* ciphertext not yet taken by TLS */
	size_t rx_off, rx_len;
	char *pend;                     /* plaintext waiting for the broker */
	size_t pend_len, pend_cap;
	uint8_t mqtt_level;             /* from the CONNECT; 0 until read */

	uint64_t bytes_up, bytes_down;
	uint64_t t_start, last_active, t_drain;
	char peer[64];
	struct sockaddr_storage peer_sa;
	struct cert_identity cert;      /* of the device certificate */
	char *username;                 /* mapped, for the log */
	char *client_id;
	enum conn_reason reason;
	char detail[600];
};

struct wreq {
	uv_write_t req;
	struct conn *c;
	char data[];
};

static const char *state_names[] = {
#define X(name, text) text,
	CONN_STATES(X)
#undef X
};
const char *
conn_state_name(enum conn_state st)
{
	return ((unsigned)st < sizeof(state_names) / sizeof(state_names[0]) ?
	    state_names[st] : "?");
}

static void pump_up(struct conn *c);
static void close_handles(struct conn *c);
static void drain_check(struct conn *c);
static void on_timer(uv_timer_t *t);

static void set_dev_reading(struct conn *c, int on);
static void set_be_reading(struct conn *c);

/* --- writes ------------------------------------------------------------ */

/*
 * A queue that paused reading the device has drained: take what waits in
 * TLS and rx, and read again unless pump_up() found another reason to
 * pause (it re-checks both queues).
 */
static void
resume_device(struct conn *c)
{
	if (!c->dev_paused || c->st == CONN_ST_HANDSHAKE ||
	    c->st >= CONN_ST_DRAINING)
		return;
	c->dev_paused = 0;
	pump_up(c);
	if (c->st < CONN_ST_DRAINING && !c->dev_paused)
		set_dev_reading(c, 1);
}

static void
on_dev_written(uv_write_t *req, int status)
{
	struct wreq *wr = (struct wreq *)req;
	struct conn *c = wr->c;

	free(wr);
	if (status < 0) {
		if (status != UV_ECANCELED && c->st < CONN_ST_DRAINING) {
			c->dev_dead = 1;
			conn_close(c, CONN_CLOSE_DEVICE_RESET, uv_strerror(status));
		}
		return;
	}
	/*
	 * Closing, and a slow device still takes what moat holds for it:
	 * the linger counts from the last progress, within DRAIN_MAX_MS.
	 */
	if (c->st == CONN_ST_DRAINING &&
	    uv_now(c->w->loop) - c->t_drain < DRAIN_MAX_MS)
		uv_timer_start(&c->timer, on_timer, LINGER_MS, 0);
	if (c->dev.write_queue_size > LOW_WATER)
		return;
	/* The device reads again: resume reading the broker... */
	if (c->st == CONN_ST_PROXYING && !c->be_reading)
		set_be_reading(c);
	/* ...and the device itself, if its own backlog paused it. */
	resume_device(c);
}

static void
on_be_written(uv_write_t *req, int status)
{
	struct wreq *wr = (struct wreq *)req;
	struct conn *c = wr->c;

	free(wr);
	if (status < 0) {
		if (status != UV_ECANCELED && c->st < CONN_ST_DRAINING)
			conn_close(c, CONN_CLOSE_BACKEND_ERROR,
			    uv_strerror(status));
		return;
	}
	/* The broker reads again: resume the device. */
	if (c->be.s.write_queue_size <= LOW_WATER)
		resume_device(c);
}

/*
 * Write len bytes to stream: as much as the kernel takes now, the rest
 * copied into a queued request. Returns 0 or -1.
 */
static int
queue_write(struct conn *c, uv_stream_t *stream, const char *data,
    size_t len, uv_write_cb cb)
{
	struct wreq *wr;
	uv_buf_t b;
	int n;

	if (stream->write_queue_size == 0) {
		b = uv_buf_init((char *)data, (unsigned)len);
		n = uv_try_write(stream, &b, 1);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		} else if (n != UV_EAGAIN && n != UV_ENOSYS) {
			return (-1);
		}
		if (len == 0)
			return (0);
	}
	if ((wr = malloc(sizeof(*wr) + len)) == NULL)
		return (-1);
	wr->c = c;
	memcpy(wr->data, data, len);
	b = uv_buf_init(wr->data, (unsigned)len);
	if (uv_write(&wr->req, stream, &b, 1, cb) != 0) {
		free(wr);
		return (-1);
	}
	return (0);
}

/* --- TLS I/O over the device socket ------------------------------------ */

static long
dev_recv(void *arg, char *buf, size_t len)
{
	struct conn *c = arg;
	size_t have = c->rx_len - c->rx_off;

	if (have == 0)
		return (c->dev_eof ? -1 : 0);
	if (len > have)
		len = have;
	memcpy(buf, c->rx + c->rx_off, len);
	c->rx_off += len;
	if (c->rx_off == c->rx_len)
		c->rx_off = c->rx_len = 0;
	return ((long)len);
}

static long
dev_send(void *arg, const char *buf, size_t len)
{
	struct conn *c = arg;

	if (c->dev_dead || c->st == CONN_ST_CLOSED)
		return (-1);
	if (queue_write(c, (uv_stream_t *)&c->dev, buf, len,
	    on_dev_written) != 0) {
		c->dev_dead = 1;
		return (-1);
	}
	return ((long)len);
}

static const struct tls_io dev_io = { dev_recv, dev_send };

/* --- reading ----------------------------------------------------------- */

static void
on_dev_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)suggested;
	if (c->st >= CONN_ST_DRAINING) {
		/* Discarded: see conn_close(). */
		*buf = uv_buf_init(c->w->scratch, (unsigned)c->w->scratch_len);
		return;
	}
	if (c->rx_off > 0) {
		memmove(c->rx, c->rx + c->rx_off, c->rx_len - c->rx_off);
		c->rx_len -= c->rx_off;
		c->rx_off = 0;
	}
	*buf = uv_buf_init(c->rx + c->rx_len, (unsigned)(RX_CAP - c->rx_len));
}

static void
on_dev_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	(void)buf;
	if (c->st >= CONN_ST_DRAINING) {
		if (nread < 0) {
			if (nread != UV_EOF)
				c->dev_dead = 1;
			c->dev_eof = 1;
			set_dev_reading(c, 0);
			drain_check(c);
		}
		return;
	}
	if (nread > 0) {
		c->rx_len += (size_t)nread;
		c->last_active = uv_now(c->w->loop);
	} else if (nread == UV_EOF) {
		c->dev_eof = 1;
		set_dev_reading(c, 0);
	} else if (nread < 0) {
		c->dev_dead = 1;
		conn_close(c, nread == UV_ECONNRESET ? CONN_CLOSE_DEVICE_RESET :
		    CONN_CLOSE_DEVICE_ERROR, uv_strerror((int)nread));
		return;
	} else {
		return;
	}
	pump_up(c);
}

static void
set_dev_reading(struct conn *c, int on)
{
	if (on && !c->dev_reading && !c->dev_eof && !c->dev_dead) {
		if (c->rx_len == RX_CAP && c->rx_off == 0)
			return;         /* full: pump_up will make room */
		if (uv_read_start((uv_stream_t *)&c->dev, on_dev_alloc,
		    on_dev_read) == 0)
			c->dev_reading = 1;
	} else if (!on && c->dev_reading) {
		uv_read_stop((uv_stream_t *)&c->dev);
		c->dev_reading = 0;
	}
}

static void
on_be_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)suggested;
	/* Consumed before on_be_read returns, so one buffer per loop. */
	*buf = uv_buf_init(c->w->scratch, (unsigned)c->w->scratch_len);
}

static void
on_be_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	if (c->st != CONN_ST_PROXYING)
		return;
	if (nread > 0) {
		c->bytes_down += (uint64_t)nread;
		c->last_active = uv_now(c->w->loop);
		if (tls_write(c->tls, buf->base, (size_t)nread) != TLS_DONE) {
			char e[128];

			conn_close(c, c->dev_dead ? CONN_CLOSE_DEVICE_RESET :
			    CONN_CLOSE_TLS_ERROR,
			    tls_session_error(c->tls, e, sizeof(e)));
			return;
		}
		if (c->dev.write_queue_size > HIGH_WATER && c->be_reading) {
			uv_read_stop(&c->be.s);
			c->be_reading = 0;
		}
	} else if (nread == UV_EOF) {
		conn_close(c, CONN_CLOSE_BACKEND_CLOSED, NULL);
	} else if (nread < 0) {
		conn_close(c, CONN_CLOSE_BACKEND_ERROR,
		    uv_strerror((int)nread));
	}
}

static void
set_be_reading(struct conn *c)
{
	if (!c->be_reading && uv_read_start(&c->be.s, on_be_alloc,
	    on_be_read) == 0)
		c->be_reading = 1;
}

/* --- device to broker --------------------------------------------------- */

/* Most plaintext held before the broker connection is up. */
static size_t
pend_limit(const struct conn *c)
{
	return ((size_t)c->snap->cfg->max_connect_size + PEND_SLACK);
}

/* Append to pend, growing it as bytes actually arrive (never from a
 * length the peer announced). Returns 0 or -1 (out of memory). */
static int
pend_append(struct conn *c, const char *data, size_t len)
{
	size_t need = c->pend_len + len, cap;
	char *p;

	if (need > c->pend_cap) {
		cap = c->pend_cap > 0 ? c->pend_cap * 2 : PEND_MIN;
		if (cap < need)
			cap = need;
		if (cap > pend_limit(c))
			cap = pend_limit(c);
		if (cap < need || (p = realloc(c->pend, cap)) == NULL)
			return (-1);
		c->pend = p;
		c->pend_cap = cap;
	}
	memcpy(c->pend + c->pend_len, data, len);
	c->pend_len += len;
	return (0);
}

/* Wipe and free pend: it may hold a device's password. */
static void
pend_free(struct conn *c)
{
	if (c->pend != NULL) {
		explicit_bzero(c->pend, c->pend_cap);
		free(c->pend);
	}
	c->pend = NULL;
	c->pend_len = c->pend_cap = 0;
}

/*
 * Answer with a CONNACK carrying code (for the device's MQTT version), then
 * close with why. The CONNACK goes out before close_notify, and the drain
 * keeps the socket open while the device may still be sending.
 */
static void
refuse(struct conn *c, uint8_t code_v3, uint8_t code_v5,
    enum conn_reason why, const char *detail)
{
	uint8_t ack[8];
	size_t n;
	/* Levels moat does not speak are answered in the 3.1.1 form. */
	uint8_t level = c->mqtt_level == 5 ? 5 : 4;

	if (level == 4 && code_v3 == 0) {
		/* No MQTT 3 code says this: close without a CONNACK. */
		conn_close(c, why, detail);
		return;
	}
	n = mqtt_connack_encode(level, level == 5 ? code_v5 : code_v3, ack);
	(void)tls_write(c->tls, ack, n);
	conn_close(c, why, detail);
}

static void connect_backend(struct conn *c);

/* Keep a printable copy of a mapped name for the close line. */
static char *
dup_name(const char *s)
{
	return (s != NULL && *s != '\0' ? strdup(s) : NULL);
}

/*
 * The first packet: once a whole CONNECT is in pend, map the certificate to
 * credentials and replace the CONNECT with one that carries them; the bytes
 * that followed it stay behind it. Returns 0, or -1 when closed.
 */
static int
take_connect(struct conn *c)
{
	const struct config *cfg = c->snap->cfg;
	struct mqtt_connect pc;
	struct identity_creds cr;
	const char *why = "";
	size_t used = 0, n, rest;
	char *out;
	enum mqtt_status ms;
	enum identity_verdict v;

	/*
	 * A CONNECT may arrive a byte per TLS record: parse it whole once,
	 * not once per piece (which would cost quadratic time). The fixed
	 * header alone says how much to wait for, and whether it is too big.
	 */
	if (mqtt_connect_need((const uint8_t *)c->pend, c->pend_len, &n,
	    &why) == MQTT_OK && n <= cfg->max_connect_size &&
	    c->pend_len < n && c->pend_len > 64)
		return (0);

	memset(&pc, 0, sizeof(pc));
	ms = mqtt_connect_parse((const uint8_t *)c->pend, c->pend_len,
	    (size_t)cfg->max_connect_size, &pc, &used, &why);
	if (pc.level != 0)
		c->mqtt_level = pc.level;
	switch (ms) {
	case MQTT_INCOMPLETE:
		return (0);
	case MQTT_NOT_CONNECT:
		conn_close(c, CONN_CLOSE_MQTT_NOT_CONNECT, why);
		return (-1);
	case MQTT_MALFORMED:
		refuse(c, 0, 0x81, CONN_CLOSE_MQTT_MALFORMED, why);
		return (-1);
	case MQTT_TOO_LARGE:
		/* MQTT 5 has a CONNACK for this: wait for the level. */
		if (pc.level == 0 && c->pend_len < 16)
			return (0);
		refuse(c, 0, 0x95, CONN_CLOSE_CONNECT_TOO_LARGE, why);
		return (-1);
	case MQTT_BAD_PROTOCOL:
		refuse(c, 0x01, 0x84, CONN_CLOSE_PROTOCOL_REFUSED, why);
		return (-1);
	case MQTT_OK:
		break;
	}
	if (pc.has_auth) {
		refuse(c, 0, 0x8C, CONN_CLOSE_AUTH_METHOD_REFUSED,
		    "MQTT 5 authentication method in CONNECT: moat owns "
		    "authentication");
		return (-1);
	}

	memset(&cr, 0, sizeof(cr));
	v = identity_map(c->snap->ident, &c->cert, pc.client_id.p,
	    pc.client_id.len, pc.level, &cr);
	if (v != ID_OK) {
		char detail[sizeof(cr.why) + sizeof(cr.rule) + 8];

		/* Name the map entry that refused, if one did. */
		snprintf(detail, sizeof(detail), "%s%s%s%s", cr.why,
		    strncmp(cr.rule, "map entry", 9) == 0 ? " (" : "",
		    strncmp(cr.rule, "map entry", 9) == 0 ? cr.rule : "",
		    strncmp(cr.rule, "map entry", 9) == 0 ? ")" : "");
		explicit_bzero(&cr, sizeof(cr));
		if (v == ID_CLIENT_ID_REFUSED)
			refuse(c, 0x02, 0x85, CONN_CLOSE_CLIENT_ID_REFUSED,
			    detail);
		else
			refuse(c, 0x05, 0x87, CONN_CLOSE_IDENTITY_REFUSED,
			    detail);
		return (-1);
	}

	/* The device's own username and password are dropped here. */
	pc.username.p = (const uint8_t *)cr.username;
	pc.username.len = strlen(cr.username);
	pc.password.p = cr.has_password ? (const uint8_t *)cr.password : NULL;
	pc.password.len = cr.has_password ? strlen(cr.password) : 0;
	pc.client_id.p = (const uint8_t *)cr.client_id;
	pc.client_id.len = strlen(cr.client_id);
	rest = c->pend_len - used;
	if ((n = mqtt_connect_size(&pc)) == 0 ||
	    (out = malloc(n + rest + PEND_MIN)) == NULL ||
	    mqtt_connect_encode(&pc, (uint8_t *)out, n) != n) {
		if (n != 0)
			free(out);
		explicit_bzero(&cr, sizeof(cr));
		conn_close(c, n == 0 ? CONN_CLOSE_MQTT_MALFORMED :
		    CONN_CLOSE_NO_MEMORY, "cannot encode the CONNECT");
		return (-1);
	}
	memcpy(out + n, c->pend + used, rest);
	c->username = dup_name(cr.username);
	c->client_id = dup_name(cr.client_id);
	explicit_bzero(&cr, sizeof(cr));
	pend_free(c);
	c->pend = out;
	c->pend_len = n + rest;
	c->pend_cap = n + rest + PEND_MIN;
	if (c->pend_cap > pend_limit(c))
		c->pend_cap = pend_limit(c) > c->pend_len ? pend_limit(c) :
		    c->pend_len;

	c->st = CONN_ST_CONNECTING;
	connect_backend(c);
	return (c->st >= CONN_ST_DRAINING ? -1 : 0);
}

/*
 * Hand decrypted device bytes on towards the broker: the CONNECT stage
 * first, then held in pend until the broker connection is up, then written
 * straight through. Returns 0, or -1 when the connection was closed.
 */
static int
up_deliver(struct conn *c, const char *data, size_t len)
{
	c->bytes_up += len;
	if (c->st == CONN_ST_AWAIT_CONNECT || c->st == CONN_ST_CONNECTING) {
		if (pend_append(c, data, len) != 0) {
			conn_close(c, CONN_CLOSE_NO_MEMORY, NULL);
			return (-1);
		}
		if (c->st == CONN_ST_AWAIT_CONNECT)
			return (take_connect(c));
		return (0);
	}
	if (queue_write(c, &c->be.s, data, len, on_be_written) != 0) {
		conn_close(c, CONN_CLOSE_BACKEND_ERROR, "write failed");
		return (-1);
	}
	return (0);
}

/*
 * Room for plaintext before the next read must wait; 0 means pause. Reading
 * the device also pauses while moat's queue towards the device is full:
 * TLS itself answers some records (a KeyUpdate request, an alert), so a
 * device that sends those and never reads would otherwise grow that queue
 * without bound.
 */
static size_t
up_room(struct conn *c)
{
	if (c->dev.write_queue_size > HIGH_WATER)
		return (0);
	if (c->st == CONN_ST_AWAIT_CONNECT || c->st == CONN_ST_CONNECTING)
		return (c->pend_len >= pend_limit(c) ? 0 :
		    pend_limit(c) - c->pend_len);
	if (c->be.s.write_queue_size > HIGH_WATER)
		return (0);
	return (c->w->scratch_len);
}

/* The connection closes: give back its handshake or max_connections slot. */
static void
handshake_uncount(struct conn *c)
{
	admit_leave(c->w->admit, &c->adm);
}

/* The limits that turn connections away, each warned about on its own. */
enum limit {
	LIMIT_RESOURCES,                /* out of memory or handles */
	LIMIT_PER_ADDRESS,              /* max_handshakes_per_address */
	LIMIT_HANDSHAKES,               /* max_handshakes */
	LIMIT_CONNECTIONS               /* max_connections */
};
_Static_assert(LIMIT_CONNECTIONS < WORKER_NWARN, "a warning slot per limit");

static void refused_warning(struct worker *w, enum limit which,
    const char *why);

static void
handshake_done(struct conn *c)
{
	const char *why;
	char detail[96];

	c->tls_up = 1;
	switch (tls_peer_identity(c->tls, &c->cert, &why)) {
	case 0:
		break;
	case -2:
		conn_close(c, CONN_CLOSE_IDENTITY_REFUSED, why);
		return;
	default:
		conn_close(c, CONN_CLOSE_NO_MEMORY, "reading the certificate");
		return;
	}
	/* Authenticated: from now on it holds a max_connections slot. */
	if (admit_connected(c->w->admit, &c->adm,
	    c->snap->cfg->max_connections) != 0) {
		snprintf(detail, sizeof(detail), "max_connections (%llu) "
		    "reached", (unsigned long long)c->snap->cfg->max_connections);
		refused_warning(c->w, LIMIT_CONNECTIONS, detail);
		conn_close(c, CONN_CLOSE_TOO_MANY_CONNECTIONS, detail);
		return;
	}
	if (log_enabled(LOG_LVL_DEBUG))
		log_kv(LOG_LVL_DEBUG, "tls_established", "peer", c->peer,
		    "subject", c->cert.dn, "fingerprint", c->cert.fingerprint,
		    "version", tls_session_version(c->tls), "cipher",
		    tls_session_cipher(c->tls), NULL);
	/* One deadline for the CONNECT and the broker connection. */
	c->st = CONN_ST_AWAIT_CONNECT;
	uv_timer_start(&c->timer, on_timer, c->snap->cfg->connect_timeout_ms,
	    0);
}

/*
 * Drive TLS with what the device sent: the handshake, then application data
 * towards the broker for as long as there is room on the way.
 */
static void
pump_up(struct conn *c)
{
	char e[160];
	enum tls_result r;
	size_t n, room;

	if (c->st == CONN_ST_HANDSHAKE) {
		r = tls_handshake(c->tls);
		if (r == TLS_WANT)
			return;
		if (r == TLS_ERR) {
			conn_close(c, c->dev_eof ? CONN_CLOSE_DEVICE_EOF :
			    CONN_CLOSE_TLS_HANDSHAKE_FAILED,
			    tls_session_error(c->tls, e, sizeof(e)));
			return;
		}
		handshake_done(c);
		if (c->st >= CONN_ST_DRAINING)
			return;
	}
	for (;;) {
		if ((room = up_room(c)) == 0) {
			c->dev_paused = 1;
			set_dev_reading(c, 0);
			return;
		}
		if (room > c->w->scratch_len)
			room = c->w->scratch_len;
		r = tls_read(c->tls, c->w->scratch, room, &n);
		if (r == TLS_DONE) {
			if (up_deliver(c, c->w->scratch, n) != 0)
				return;
			continue;
		}
		if (r == TLS_WANT) {
			if (c->dev_eof)
				conn_close(c, CONN_CLOSE_DEVICE_EOF, NULL);
			else
				set_dev_reading(c, 1);
			return;
		}
		if (r == TLS_CLOSED)
			conn_close(c, CONN_CLOSE_DEVICE_CLOSED, NULL);
		else
			conn_close(c, c->dev_eof ? CONN_CLOSE_DEVICE_EOF :
			    CONN_CLOSE_TLS_ERROR,
			    tls_session_error(c->tls, e, sizeof(e)));
		return;
	}
}

/* --- broker connection --------------------------------------------------- */

static void
on_be_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	const struct config *cfg = c->snap->cfg;
	char detail[256];

	if (status == UV_ECANCELED || c->st != CONN_ST_CONNECTING)
		return;
	if (status < 0) {
		snprintf(detail, sizeof(detail), "broker %s: %s",
		    c->snap->backend.text, uv_strerror(status));
		refuse(c, 0x03, 0x88, CONN_CLOSE_BACKEND_REFUSED, detail);
		return;
	}
	c->be_connected = 1;
	c->st = CONN_ST_PROXYING;
	uv_timer_stop(&c->timer);
	if (cfg->idle_timeout_ms > 0)
		uv_timer_start(&c->timer, on_timer, cfg->idle_timeout_ms, 0);
	if (!c->snap->backend.is_unix)
		uv_tcp_nodelay(&c->be.tcp, 1);
	if (c->pend_len > 0 && queue_write(c, &c->be.s, c->pend,
	    c->pend_len, on_be_written) != 0) {
		conn_close(c, CONN_CLOSE_BACKEND_ERROR, "write failed");
		return;
	}
	pend_free(c);
	set_be_reading(c);
	/* Bytes may be waiting in TLS or in rx while the broker was away. */
	c->dev_paused = 0;
	pump_up(c);
}

static void
connect_backend(struct conn *c)
{
	const struct backend_addr *b = &c->snap->backend;
	uv_loop_t *loop = c->w->loop;
	char detail[256];
	int r;

	c->be_req.data = c;
	if (b->is_unix) {
		r = uv_pipe_init(loop, &c->be.pipe, 0);
		if (r == 0) {
			c->be_init = 1;
			c->be.h.data = c;
			uv_pipe_connect(&c->be_req, &c->be.pipe, b->path,
			    on_be_connect);
		}
	} else {
		r = uv_tcp_init(loop, &c->be.tcp);
		if (r == 0) {
			c->be_init = 1;
			c->be.h.data = c;
			r = uv_tcp_connect(&c->be_req, &c->be.tcp,
			    (const struct sockaddr *)&b->sa, on_be_connect);
		}
	}
	if (r != 0) {
		snprintf(detail, sizeof(detail), "broker %s: %s", b->text,
		    uv_strerror(r));
		refuse(c, 0x03, 0x88, CONN_CLOSE_BACKEND_ERROR, detail);
	}
}

/* --- deadlines ----------------------------------------------------------- */

static void
on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	const struct config *cfg = c->snap->cfg;
	char detail[256];
	uint64_t now, idle;

	switch (c->st) {
	case CONN_ST_HANDSHAKE:
		conn_close(c, CONN_CLOSE_HANDSHAKE_TIMEOUT, NULL);
		break;
	case CONN_ST_AWAIT_CONNECT:
		snprintf(detail, sizeof(detail),
		    "no whole MQTT CONNECT within %llu ms",
		    (unsigned long long)cfg->connect_timeout_ms);
		conn_close(c, CONN_CLOSE_CONNECT_TIMEOUT, detail);
		break;
	case CONN_ST_CONNECTING:
		snprintf(detail, sizeof(detail),
		    "broker %s did not accept within %llu ms",
		    c->snap->backend.text,
		    (unsigned long long)cfg->connect_timeout_ms);
		refuse(c, 0x03, 0x88, CONN_CLOSE_CONNECT_TIMEOUT, detail);
		break;
	case CONN_ST_PROXYING:
		now = uv_now(c->w->loop);
		idle = now - c->last_active;
		if (idle >= cfg->idle_timeout_ms)
			conn_close(c, CONN_CLOSE_IDLE_TIMEOUT, NULL);
		else
			uv_timer_start(&c->timer, on_timer,
			    cfg->idle_timeout_ms - idle, 0);
		break;
	case CONN_ST_DRAINING:
		/* Linger over: say so if the device did not get everything. */
		if (c->dev.write_queue_size > 0) {
			size_t n = strlen(c->detail);

			snprintf(c->detail + n, sizeof(c->detail) - n,
			    "%s%zu bytes to the device unsent", n > 0 ?
			    "; " : "", c->dev.write_queue_size);
		}
		close_handles(c);
		break;
	case CONN_ST_CLOSED:
		break;
	}
}

/* --- teardown ------------------------------------------------------------ */

static void
conn_free(struct conn *c)
{
	struct worker *w = c->w;
	char up[24], down[24], dur[24], id[24];

	snprintf(id, sizeof(id), "%llu", (unsigned long long)c->id);
	snprintf(up, sizeof(up), "%llu", (unsigned long long)c->bytes_up);
	snprintf(down, sizeof(down), "%llu",
	    (unsigned long long)c->bytes_down);
	snprintf(dur, sizeof(dur), "%llu",
	    (unsigned long long)(uv_now(w->loop) - c->t_start));
	/*
	 * Passwords are never here: only mapped names and the certificate.
	 * Turned-away floods log at debug level (a warning says it happens).
	 */
	log_kv(c->reason == CONN_CLOSE_TOO_MANY_HANDSHAKES ? LOG_LVL_DEBUG :
	    LOG_LVL_INFO, "conn_closed", "id", id, "peer", c->peer,
	    "subject", c->cert.dn, "username", c->username,
	    "client_id", c->client_id, "up", up, "down", down,
	    "duration_ms", dur, "reason", conn_reason_name(c->reason),
	    "detail", c->detail[0] != '\0' ? c->detail : NULL,
	    "fingerprint", c->cert.fingerprint, NULL);

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	w->nconns--;

	tls_session_free(c->tls);
	cert_identity_clear(&c->cert);
	free(c->username);
	free(c->client_id);
	pend_free(c);
	snapshot_unref(c->snap);
	free(c);
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	if (--c->open_handles == 0)
		conn_free(c);
}

static void
close_handles(struct conn *c)
{
	if (c->st == CONN_ST_CLOSED)
		return;
	c->st = CONN_ST_CLOSED;
	c->open_handles = c->be_init ? 3 : 2;
	uv_close((uv_handle_t *)&c->dev, on_handle_closed);
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	if (c->be_init)
		uv_close(&c->be.h, on_handle_closed);
}

/* DRAINING ends when both sides are done, or when the linger runs out. */
static void
drain_check(struct conn *c)
{
	if (c->st == CONN_ST_DRAINING && c->dev_shut && c->be_shut &&
	    (c->dev_eof || c->dev_dead))
		close_handles(c);
}

static void
on_dev_shutdown(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;

	if (status < 0)
		c->dev_dead = 1;
	c->dev_shut = 1;
	drain_check(c);
}

static void
on_be_shutdown(uv_shutdown_t *req, int status)
{
	struct conn *c = req->data;

	(void)status;
	c->be_shut = 1;
	drain_check(c);
}

void
conn_close(struct conn *c, enum conn_reason why, const char *detail)
{
	if (c->st >= CONN_ST_DRAINING)
		return;
	handshake_uncount(c);
	c->st = CONN_ST_DRAINING;
	c->t_drain = uv_now(c->w->loop);
	c->reason = why;
	if (detail != NULL)
		snprintf(c->detail, sizeof(c->detail), "%s", detail);
	uv_timer_stop(&c->timer);
	if (c->be_reading) {
		uv_read_stop(&c->be.s);
		c->be_reading = 0;
	}

	/*
	 * Tell the device (close_notify where TLS is up), after whatever is
	 * still queued for it (a CONNACK, a handshake alert); then FIN. Keep
	 * reading and discarding until it closes too: closing a socket with
	 * unread input sends a reset, which can destroy what is in flight.
	 */
	if (c->tls_up && !c->dev_dead)
		tls_close_notify(c->tls);
	c->dev_shut = 1;
	if (!c->dev_dead) {
		c->dev_sreq.data = c;
		if (uv_shutdown(&c->dev_sreq, (uv_stream_t *)&c->dev,
		    on_dev_shutdown) == 0)
			c->dev_shut = 0;
		else
			c->dev_dead = 1;
	}
	c->dev_paused = 0;
	if (!c->dev_dead && !c->dev_eof && !c->dev_reading &&
	    uv_read_start((uv_stream_t *)&c->dev, on_dev_alloc,
	    on_dev_read) == 0)
		c->dev_reading = 1;

	/* Let the broker have what the device sent, then FIN. */
	c->be_shut = 1;
	if (c->be_connected && why != CONN_CLOSE_BACKEND_ERROR) {
		c->be_sreq.data = c;
		if (uv_shutdown(&c->be_sreq, &c->be.s, on_be_shutdown) == 0)
			c->be_shut = 0;
	}
	uv_timer_start(&c->timer, on_timer, LINGER_MS, 0);
	drain_check(c);
}

void
conn_close_all(struct worker *w, enum conn_reason why)
{
	struct conn *c, *next;

	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		conn_close(c, why, NULL);
	}
}

/* --- accept -------------------------------------------------------------- */

static void
on_refused_closed(uv_handle_t *h)
{
	free(h);
}

/*
 * Count a connection turned away by a limit (refused, or closed to make
 * room); warn at most once a second.
 */
static void
refused_warning(struct worker *w, enum limit which, const char *why)
{
	uint64_t now = uv_now(w->loop), *at = &w->refused_logged_at[which];

	w->refused++;
	if (*at == 0 || now - *at >= 1000) {
		*at = now;
		log_warn("connection turned away: %s; %llu so far", why,
		    (unsigned long long)w->refused);
	}
}

static void
turn_away(struct worker *w, uv_stream_t *server, const char *why)
{
	uv_tcp_t *t;

	if ((t = malloc(sizeof(*t))) == NULL)
		return;
	if (uv_tcp_init(w->loop, t) != 0) {
		free(t);
		return;
	}
	(void)uv_accept(server, (uv_stream_t *)t);
	uv_close((uv_handle_t *)t, on_refused_closed);
	refused_warning(w, LIMIT_RESOURCES, why);
}

/*
 * A handshake budget is full: close the oldest handshake of the peer (or
 * of all) at once, without linger, to make room for the newcomer.
 */
static void
on_admit_close(struct admit_entry *e, enum admit_cause why, void *arg)
{
	struct conn *c = (struct conn *)(void *)((char *)e -
	    offsetof(struct conn, adm));
	struct worker *w = arg;
	char detail[160];

	if (why == ADMIT_PER_ADDRESS)
		snprintf(detail, sizeof(detail), "max_handshakes_per_address "
		    "(%llu) reached: closed the oldest handshake from %s",
		    (unsigned long long)w->snap->cfg->max_handshakes_per_address,
		    c->peer);
	else
		snprintf(detail, sizeof(detail), "max_handshakes (%llu) "
		    "reached: closed the oldest handshake, from %s",
		    (unsigned long long)w->snap->cfg->max_handshakes, c->peer);
	refused_warning(w, why == ADMIT_PER_ADDRESS ? LIMIT_PER_ADDRESS :
	    LIMIT_HANDSHAKES, detail);
	c->dev_dead = 1;        /* close at once: no linger */
	conn_close(c, CONN_CLOSE_TOO_MANY_HANDSHAKES, detail);
}

struct admit *
conn_admit_new(struct worker *w)
{
	return (admit_new(on_admit_close, w));
}

static void
on_unaccepted_closed(uv_handle_t *h)
{
	free(h->data);
}

void
conn_accept(struct worker *w, uv_stream_t *server)
{
	const struct config *cfg = w->snap->cfg;
	struct admit_limits lim;
	struct conn *c;
	int len = sizeof(c->peer_sa);

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		turn_away(w, server, "out of memory");
		return;
	}
	if (uv_tcp_init(w->loop, &c->dev) != 0) {
		free(c);
		turn_away(w, server, "cannot make a socket handle");
		return;
	}
	c->dev.data = c;
	c->w = w;
	if (uv_accept(server, (uv_stream_t *)&c->dev) != 0) {
		uv_close((uv_handle_t *)&c->dev, on_unaccepted_closed);
		return;
	}
	uv_timer_init(w->loop, &c->timer);
	c->timer.data = c;
	c->snap = snapshot_ref(w->snap);
	c->id = ++w->next_id;
	c->t_start = c->last_active = uv_now(w->loop);
	if (uv_tcp_getpeername(&c->dev, (struct sockaddr *)&c->peer_sa,
	    &len) == 0)
		backend_format((struct sockaddr *)&c->peer_sa, c->peer,
		    sizeof(c->peer));
	else
		snprintf(c->peer, sizeof(c->peer), "unknown");
	uv_tcp_nodelay(&c->dev, 1);

	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;

	if ((c->tls = tls_session_new(c->snap->tls, &dev_io, c)) == NULL) {
		conn_close(c, CONN_CLOSE_NO_MEMORY, NULL);
		return;
	}
	/*
	 * Unauthenticated connections have their own budget, and one address
	 * only so much of it; a full one closes its oldest (on_admit_close).
	 */
	lim.max_handshakes = cfg->max_handshakes;
	lim.max_handshakes_per_address = cfg->max_handshakes_per_address;
	if (admit_handshake(w->admit, &c->adm,
	    (struct sockaddr *)&c->peer_sa, &lim) != 0) {
		refused_warning(w, LIMIT_RESOURCES,
		    "out of memory counting handshakes");
		c->dev_dead = 1;        /* close at once: no linger */
		conn_close(c, CONN_CLOSE_NO_MEMORY, "counting handshakes");
		return;
	}
	uv_timer_start(&c->timer, on_timer, cfg->handshake_timeout_ms, 0);
	set_dev_reading(c, 1);
}
