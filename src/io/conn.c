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
 * Backpressure: a side stops being read while the other side's write queue
 * is above PIPE_HIGH_WATER and resumes below PIPE_LOW_WATER, so a peer that
 * stops reading costs moat a bounded amount of memory, never an unbounded
 * queue.
 *
 * Each direction is a pipe (pipe.h): device to broker ("up") and broker to
 * device ("down"), each with its delivery hook. The up hook is the CONNECT
 * rewrite until the CONNECT is done, then pass-through; the down hook
 * hands the broker's bytes to TLS. This file keeps the device side: the
 * state machine, the TLS memory-I/O glue, the hooks and the one teardown;
 * upstream.c keeps the broker connection, deadline.c the timer.
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/admit.h"
#include "moat/backend.h"
#include "moat/cert.h"
#include "moat/config.h"
#include "moat/conn.h"
#include "moat/gate.h"
#include "moat/identity.h"
#include "moat/log.h"
#include "moat/mqtt.h"
#include "moat/pipe.h"
#include "moat/snapshot.h"
#include "moat/text.h"
#include "moat/tls.h"
#include "moat/worker.h"

#include "conn_int.h"

/* Move c to state st, keeping the worker's count by state. */
static void
conn_enter(struct conn *c, enum conn_state st)
{
	WORKER_COUNT(c->w, state[c->st], -1);
	WORKER_COUNT(c->w, state[st], 1);
	c->st = st;
}

static void close_handles(struct conn *c);
static void drain_check(struct conn *c);

static void set_dev_reading(struct conn *c, int on);

/* --- writes ------------------------------------------------------------ */

/*
 * A queue that paused reading the device has drained: take what waits in
 * TLS and rx, and read again unless conn_pump_up() found another reason to
 * pause (it re-checks both queues).
 */
void
conn_resume_device(struct conn *c)
{
	if (!c->up.paused || c->st == CONN_ST_HANDSHAKE ||
	    c->st >= CONN_ST_DRAINING || c->ending)
		return;
	c->up.paused = 0;
	conn_pump_up(c);
	if (c->st < CONN_ST_DRAINING && !c->up.paused)
		set_dev_reading(c, 1);
}

/* A write to the device failed: it is gone, write nothing more. */
static void
down_failed(struct pipe *p, int status)
{
	struct conn *c = p->owner;

	if (c->st < CONN_ST_DRAINING) {
		c->dev_dead = 1;
		conn_close(c, CONN_CLOSE_DEVICE_RESET, uv_strerror(status));
	}
}

/*
 * Closing, and a slow device still takes what moat holds for it: the
 * linger counts from the last progress, within DRAIN_MAX_MS.
 */
static void
down_progress(struct pipe *p)
{
	struct conn *c = p->owner;

	if (c->st == CONN_ST_DRAINING &&
	    uv_now(c->w->loop) - c->t_drain < DRAIN_MAX_MS)
		conn_arm_timer(c, LINGER_MS);
}

static void
down_drained(struct pipe *p)
{
	struct conn *c = p->owner;

	int r;

	/* The device reads again: resume reading the broker... */
	if (c->st == CONN_ST_PROXYING && !c->down.reading &&
	    (r = pipe_read(&c->down, 1)) != 0) {
		conn_close(c, CONN_CLOSE_BACKEND_ERROR, uv_strerror(r));
		return;
	}
	/* ...and the device itself, if its own backlog paused it. */
	conn_resume_device(c);
}

static void
up_failed(struct pipe *p, int status)
{
	struct conn *c = p->owner;

	if (c->st < CONN_ST_DRAINING)
		conn_close(c, CONN_CLOSE_BACKEND_ERROR, uv_strerror(status));
}

/* The broker reads again: resume the device. */
static void
up_drained(struct pipe *p)
{
	conn_resume_device(p->owner);
}

/* --- TLS I/O over the device socket ------------------------------------ */

_Static_assert(RX_CAP <= WORKER_DEV_IN_LEN, "a device read fits dev_in");

/* The leftover is all taken: an idle connection holds no buffer. */
static void
rx_release(struct conn *c)
{
	free(c->rx);
	c->rx = NULL;
	c->rx_off = c->rx_len = 0;
}

/*
 * Keep what TLS did not take of the read at hand (it stopped for
 * backpressure) until reading resumes: appended to the leftover, which
 * stays within RX_CAP (on_dev_alloc offers no more). Returns 0, or -1
 * out of memory.
 */
static int
rx_keep(struct conn *c)
{
	size_t have = c->rx_len - c->rx_off;
	char *p;

	if (c->in_len == 0)
		return (0);
	if (c->rx_off > 0) {
		memmove(c->rx, c->rx + c->rx_off, have);
		c->rx_off = 0;
		c->rx_len = have;
	}
	if ((p = realloc(c->rx, have + c->in_len)) == NULL)
		return (-1);
	memcpy(p + have, c->in, c->in_len);
	c->rx = p;
	c->rx_len = have + c->in_len;
	c->in = NULL;
	c->in_len = 0;
	return (0);
}

/* Ciphertext for TLS: the leftover of earlier reads first, then the rest
 * of the read at hand (on_dev_read). */
static long
dev_recv(void *arg, char *buf, size_t len)
{
	struct conn *c = arg;
	size_t have = c->rx_len - c->rx_off;

	if (have > 0) {
		if (len > have)
			len = have;
		memcpy(buf, c->rx + c->rx_off, len);
		c->rx_off += len;
		if (c->rx_off == c->rx_len)
			rx_release(c);
		return ((long)len);
	}
	if (c->in_len == 0)
		return (c->dev_eof ? -1 : 0);
	if (len > c->in_len)
		len = c->in_len;
	memcpy(buf, c->in, len);
	c->in += len;
	c->in_len -= len;
	return ((long)len);
}

static long
dev_send(void *arg, const char *buf, size_t len)
{
	struct conn *c = arg;

	if (c->dev_dead || c->st == CONN_ST_CLOSED)
		return (-1);
	if (pipe_write(&c->down, buf, len) != 0) {
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
	/* The worker's buffer: what TLS does not take of it before the
	 * next read is kept by rx_keep(); together within RX_CAP. */
	*buf = uv_buf_init(c->w->dev_in,
	    (unsigned)(RX_CAP - (c->rx_len - c->rx_off)));
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
		c->in = buf->base;
		c->in_len = (size_t)nread;
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
	conn_pump_up(c);
	/* dev_in is the next read's: keep what is left of this one. */
	if (c->st < CONN_ST_DRAINING && rx_keep(c) != 0)
		conn_close(c, CONN_CLOSE_NO_MEMORY, "holding the device's bytes");
	c->in = NULL;
	c->in_len = 0;
}

static void
set_dev_reading(struct conn *c, int on)
{
	int r;

	if (on && !c->up.reading && !c->dev_eof && !c->dev_dead) {
		if (c->rx_len - c->rx_off >= RX_CAP)
			return;         /* full: pump_up will make room */
		if ((r = pipe_read(&c->up, 1)) != 0)
			conn_close(c, CONN_CLOSE_DEVICE_ERROR, uv_strerror(r));
	} else if (!on) {
		(void)pipe_read(&c->up, 0);
	}
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
	text_wipe_free(c->pend, c->pend_cap);
	c->pend = NULL;
	c->pend_len = c->pend_cap = 0;
}

/* Send a CONNACK with code in level's form; close_notify follows it. */
static void
send_connack(struct conn *c, uint8_t level, uint8_t code)
{
	uint8_t ack[8];
	size_t n;

	n = mqtt_connack_encode(level, code, ack);
	(void)tls_write(c->tls, ack, n);
}

void
conn_refuse(struct conn *c, uint8_t v3_code, uint8_t v5_code,
    enum conn_reason why, const char *detail)
{
	/* Levels moat does not speak are answered in the 3.1.1 form. */
	if (c->mqtt_level == MQTT_LEVEL_5)
		send_connack(c, MQTT_LEVEL_5, v5_code);
	else
		send_connack(c, MQTT_LEVEL_311, v3_code);
	conn_close(c, why, detail);
}

void
conn_refuse_unavailable(struct conn *c, enum conn_reason why,
    const char *detail)
{
	conn_refuse(c, MQTT_CONNACK_V3_SERVER_UNAVAILABLE,
	    MQTT_RC_SERVER_UNAVAILABLE, why, detail);
}

/* Keep a printable copy of a mapped name for the close line. */
static char *
dup_name(const char *s)
{
	return (s != NULL && *s != '\0' ? strdup(s) : NULL);
}

/*
 * pend becomes what the gate forwards (the rewritten CONNECT and the bytes
 * that followed it), with room for more while the broker connection comes
 * up. Takes res->out (wiped and freed here). Returns 0 or -1.
 */
static int
pend_take(struct conn *c, struct gate_result *res)
{
	size_t cap = res->out_len + PEND_MIN;
	char *p;

	if (cap > pend_limit(c))
		cap = pend_limit(c) > res->out_len ? pend_limit(c) :
		    res->out_len;
	if ((p = malloc(cap)) == NULL) {
		gate_result_release(res);
		return (-1);
	}
	memcpy(p, res->out, res->out_len);
	pend_free(c);
	c->pend = p;
	c->pend_len = res->out_len;
	c->pend_cap = cap;
	gate_result_release(res);
	return (0);
}

/*
 * The first packet: the gate (gate.h) decides on what the device sent so
 * far. A refusal answers with the CONNACK the device's version expects
 * (the drain keeps the socket open while the device may still be sending);
 * a forward replaces pend with the CONNECT carrying the mapped credentials
 * and connects to the broker. Returns 0, or -1 when closed.
 */
static int
take_connect(struct conn *c)
{
	struct gate_result res;
	int wait;

	switch (gate_connect((const uint8_t *)c->pend, c->pend_len,
	    (size_t)c->snap->cfg->max_connect_size, c->snap->ident, &c->cert,
	    &res)) {
	case GATE_WAIT:
		return (0);
	case GATE_REFUSE:
		c->mqtt_level = res.level;
		c->identity = dup_name(res.identity);
		if (res.send_connack)
			send_connack(c, res.connack_level, res.connack_code);
		conn_close(c, res.reason, res.detail);
		return (-1);
	case GATE_FORWARD:
		break;
	}
	c->mqtt_level = res.level;
	c->identity = dup_name(res.identity);
	c->username = dup_name(res.username);
	c->client_id = dup_name(res.client_id);
	c->device_cid = dup_name(res.device_cid);
	memcpy(c->creds_digest, res.creds_digest, sizeof(c->creds_digest));
	if (relay_start(c, &res) != 0) {
		gate_result_release(&res);
		conn_close(c, CONN_CLOSE_NO_MEMORY, "the rate limits");
		return (-1);
	}
	if (pend_take(c, &res) != 0) {
		conn_close(c, CONN_CLOSE_NO_MEMORY, "holding the CONNECT");
		return (-1);
	}
	if ((wait = conn_dup_join(c)) < 0)
		return (-1);
	conn_enter(c, CONN_ST_CONNECTING);
	if (wait == 0)
		upstream_connect(c);
	return (c->st >= CONN_ST_DRAINING ? -1 : 0);
}

/*
 * The up pipe's hook: decrypted device bytes on their way to the broker.
 * The CONNECT stage first, then held in pend until the broker connection
 * is up, then packet by packet through the relay (relay.c). Returns 0,
 * or -1 when the connection was closed.
 */
static int
up_hook(struct pipe *p, const char *data, size_t len)
{
	struct conn *c = p->owner;

	if (c->st == CONN_ST_AWAIT_CONNECT || c->st == CONN_ST_CONNECTING) {
		if (pend_append(c, data, len) != 0) {
			conn_close(c, CONN_CLOSE_NO_MEMORY, NULL);
			return (-1);
		}
		if (c->st == CONN_ST_AWAIT_CONNECT)
			return (take_connect(c));
		return (0);
	}
	return (relay_up(c, (const uint8_t *)data, len));
}

/* conn_end() at a boundary: the DISCONNECT, then the one teardown. */
void
conn_end_now(struct conn *c)
{
	uint8_t pkt[4];
	size_t n;

	n = mqtt_disconnect_encode(c->end_rc, pkt);
	(void)tls_write(c->tls, pkt, n);
	conn_close(c, c->end_why, NULL);
}

/*
 * The down pipe's hook: the broker's bytes, passed through to the device
 * over TLS by the relay (relay.c), which tracks their packet boundaries so
 * that moat may put its own packets (an answer, a DISCONNECT) between two
 * of them. Reading the broker pauses while the queue towards the device is
 * above the high-water mark. Returns 0, or -1 when closed.
 */
static int
down_hook(struct pipe *p, const char *data, size_t len)
{
	struct conn *c = p->owner;

	if (relay_down(c, (const uint8_t *)data, len) != 0)
		return (-1);
	if (pipe_full(&c->down))
		(void)pipe_read(&c->down, 0);
	return (0);
}

/*
 * The close line's detail: text replaces it, or with append follows it
 * after "; ", cut at DETAIL_MAX. Allocated on first use, so that only a
 * closing connection pays for it; out of memory leaves it as it was.
 */
static void
detail_put(struct conn *c, int append, const char *text)
{
	size_t n;

	if (c->detail == NULL) {
		if ((c->detail = malloc(DETAIL_MAX)) == NULL)
			return;
		c->detail[0] = '\0';
	}
	n = append ? strlen(c->detail) : 0;
	snprintf(c->detail + n, DETAIL_MAX - n, "%s%s", n > 0 ? "; " : "",
	    text);
}

void
conn_end(struct conn *c, uint8_t mqtt5_reason, enum conn_reason why,
    const char *detail)
{
	if (c->st >= CONN_ST_DRAINING || c->ending)
		return;
	if (c->st != CONN_ST_PROXYING || c->mqtt_level != MQTT_LEVEL_5 ||
	    c->dev_dead || c->down_mqtt.bad) {
		conn_close(c, why, detail);
		return;
	}
	c->end_rc = mqtt5_reason;
	c->end_why = why;
	if (detail != NULL)
		detail_put(c, 0, detail);
	/* Between two of the broker's packets, and never before its
	 * CONNACK: a DISCONNECT must not be the device's first packet. */
	if (c->down_mqtt.first_done &&
	    mqtt_tracker_at_boundary(&c->down_mqtt)) {
		conn_end_now(c);
		return;
	}
	/*
	 * A packet from the broker is half through: let the rest of it
	 * alone pass (it is at most what the broker has in flight), then
	 * the DISCONNECT. Stop taking the device's bytes meanwhile. A
	 * device that does not read, or a broker that stalls, must not
	 * hold this open: after END_WAIT_MS it is closed without one.
	 */
	c->ending = 1;
	c->up.paused = 1;
	(void)pipe_read(&c->up, 0);
	if (!c->down.reading && !pipe_full(&c->down))
		(void)pipe_read(&c->down, 1);
	conn_arm_timer(c, END_WAIT_MS);
}

void
conn_end_overdue(struct conn *c)
{
	char t[128];

	snprintf(t, sizeof(t), "no packet boundary from the broker within "
	    "%d ms: closed without the DISCONNECT", END_WAIT_MS);
	detail_put(c, 1, t);
	conn_close(c, c->end_why, NULL);
}

static const struct pipe_ops up_ops = {
	.deliver = up_hook,
	.drained = up_drained,
	.failed = up_failed,
	.alloc = on_dev_alloc,
	.read = on_dev_read,
};

static const struct pipe_ops down_ops = {
	.deliver = down_hook,
	.progress = down_progress,
	.drained = down_drained,
	.failed = down_failed,
	.alloc = upstream_alloc,
	.read = upstream_read,
};

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
	if (c->ending || pipe_full(&c->down))
		return (0);
	if (c->st == CONN_ST_AWAIT_CONNECT || c->st == CONN_ST_CONNECTING)
		return (c->pend_len >= pend_limit(c) ? 0 :
		    pend_limit(c) - c->pend_len);
	if (pipe_full(&c->up) || !relay_may_read(c))
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
	const struct config *cfg = c->snap->cfg;
	char why[256];

	c->tls_up = 1;
	switch (cert_peer_identity(c->tls, c->snap->cfg, &c->cert, why,
	    sizeof(why))) {
	case CERT_OK:
		break;
	case CERT_REFUSED:
	case CERT_UNTRUSTED:
		conn_close(c, CONN_CLOSE_IDENTITY_REFUSED, why);
		return;
	default:
		conn_close(c, CONN_CLOSE_NO_MEMORY, "reading the certificate");
		return;
	}
	/* Authenticated: from now on it holds a max_connections slot. */
	if (admit_connected(c->w->admit, &c->adm, cfg->max_connections) != 0) {
		snprintf(why, sizeof(why), "max_connections (%llu) reached",
		    (unsigned long long)cfg->max_connections);
		refused_warning(c->w, LIMIT_CONNECTIONS, why);
		conn_close(c, CONN_CLOSE_TOO_MANY_CONNECTIONS, why);
		return;
	}
	c->cert_days = worker_count_cert(c->w, c->cert.not_after);
	if (log_enabled(LOG_LVL_DEBUG))
		log_kv(LOG_LVL_DEBUG, "tls_established", "peer", c->peer,
		    "subject", c->cert.dn, "fingerprint", c->cert.fingerprint,
		    "version", tls_session_version(c->tls), "cipher",
		    tls_session_cipher(c->tls), NULL);
	/* The identity is read: drop what only the handshake needed. */
	tls_session_trim(c->tls);
	/* One deadline for the CONNECT and the broker connection. */
	conn_enter(c, CONN_ST_AWAIT_CONNECT);
	conn_arm_timer(c, c->snap->cfg->connect_timeout_ms);
}

/*
 * Drive TLS with what the device sent: the handshake, then application data
 * towards the broker for as long as there is room on the way.
 */
void
conn_pump_up(struct conn *c)
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
			c->up.paused = 1;
			set_dev_reading(c, 0);
			return;
		}
		if (room > c->w->scratch_len)
			room = c->w->scratch_len;
		r = tls_read(c->tls, c->w->scratch, room, &n);
		if (r == TLS_DONE) {
			if (pipe_deliver(&c->up, c->w->scratch, n) != 0)
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

/* --- broker up ----------------------------------------------------------- */

/*
 * The broker accepted: proxy. Send what the device sent meanwhile (the
 * rewritten CONNECT first), read the broker, and take what waits in TLS
 * or in rx while the broker was away.
 */
void
conn_broker_up(struct conn *c)
{
	int r;

	struct mqtt_frame f;
	const char *why;
	size_t n;

	conn_enter(c, CONN_ST_PROXYING);
	conn_arm_proxying(c);
	/* The CONNECT the gate wrote goes as it is, what followed it
	 * through the relay like everything the device sends from now on. */
	n = mqtt_frame((const uint8_t *)c->pend, c->pend_len, c->pend_len, &f,
	    &why) == MQTT_OK ? f.total : c->pend_len;
	if (pipe_write(&c->up, c->pend, n) != 0) {
		conn_close(c, CONN_CLOSE_BACKEND_ERROR, "write failed");
		return;
	}
	r = relay_up(c, (const uint8_t *)c->pend + n, c->pend_len - n);
	pend_free(c);
	if (r != 0 || c->st != CONN_ST_PROXYING)
		return;
	if ((r = pipe_read(&c->down, 1)) != 0) {
		conn_close(c, CONN_CLOSE_BACKEND_ERROR, uv_strerror(r));
		return;
	}
	c->up.paused = 0;
	conn_pump_up(c);
}

/*
 * The linger of a closing connection ran out: say so if the device did not
 * get everything, and close (deadline.c calls this).
 */
void
conn_linger_over(struct conn *c)
{
	char t[64];

	if (pipe_queued(&c->down) > 0) {
		snprintf(t, sizeof(t), "%zu bytes to the device unsent",
		    pipe_queued(&c->down));
		detail_put(c, 1, t);
	}
	close_handles(c);
}

/* --- teardown ------------------------------------------------------------ */

static void
conn_free(struct conn *c)
{
	struct worker *w = c->w;
	char up[24], down[24], dur[24], id[24], wid[12], ack[12], ref[24];
	int code = mqtt_tracker_connack_code(&c->down_mqtt);

	/* The broker's CONNACK code; "-" (text) or null (JSON): none came. */
	if (code >= 0)
		snprintf(ack, sizeof(ack), "%d", code);
	snprintf(id, sizeof(id), "%llu", (unsigned long long)c->id);
	snprintf(wid, sizeof(wid), "%u", w->index);
	snprintf(up, sizeof(up), "%llu", (unsigned long long)c->up.bytes);
	snprintf(down, sizeof(down), "%llu",
	    (unsigned long long)c->down.bytes);
	snprintf(dur, sizeof(dur), "%llu",
	    (unsigned long long)(uv_now(w->loop) - c->t_start));
	snprintf(ref, sizeof(ref), "%llu",
	    (unsigned long long)guard_refused_total(&c->guard));
	/*
	 * Passwords are never here: only mapped names and the certificate.
	 * Turned-away floods log at debug level (a warning says it happens).
	 */
	log_kv(c->reason == CONN_CLOSE_TOO_MANY_HANDSHAKES ? LOG_LVL_DEBUG :
	    LOG_LVL_INFO, "conn_closed", "id", id, "worker", wid,
	    "peer", c->peer,
	    "subject", c->cert.dn, "username", c->username,
	    "client_id", c->client_id, "up", up, "down", down,
	    "duration_ms", dur, "reason", conn_reason_name(c->reason),
	    "detail", c->detail != NULL && c->detail[0] != '\0' ?
	    c->detail : NULL,
	    "fingerprint", c->cert.fingerprint, "identity", c->identity,
	    "connack", code >= 0 ? ack : NULL, "refused", ref, NULL);

	worker_count_close(w, c->reason, c->cert_days);
	(void)conn_dup_leave(c, NULL, 0);       /* no-op: conn_close() did */

	if (w->sweep == c)
		w->sweep = c->next;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	w->nconns--;
	WORKER_COUNT(w, open, -1);
	WORKER_COUNT(w, state[c->st], -1);

	tls_session_free(c->tls);
	relay_free(c);
	cert_identity_clear(&c->cert);
	free(c->identity);
	free(c->username);
	free(c->client_id);
	free(c->device_cid);
	free(c->detail);
	rx_release(c);
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
	conn_enter(c, CONN_ST_CLOSED);
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
	char taken[GATE_DETAIL_MAX];

	if (c->st >= CONN_ST_DRAINING)
		return;
	handshake_uncount(c);
	/* Replaced by a newer one: that is why, whoever closes it first
	 * (moat, or the broker taking over the same client id). */
	if (conn_dup_leave(c, taken, sizeof(taken)) != 0) {
		why = CONN_CLOSE_SESSION_TAKEN_OVER;
		detail = taken;
	}
	conn_enter(c, CONN_ST_DRAINING);
	c->t_drain = uv_now(c->w->loop);
	c->reason = why;
	if (detail != NULL)
		detail_put(c, 0, detail);
	uv_timer_stop(&c->timer);
	(void)pipe_read(&c->down, 0);

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
	c->up.paused = 0;
	if (!c->dev_dead && !c->dev_eof)
		(void)pipe_read(&c->up, 1);

	/* Let the broker have what the device sent, then FIN. */
	c->be_shut = 1;
	if (c->be_connected && why != CONN_CLOSE_BACKEND_ERROR) {
		c->be_sreq.data = c;
		if (uv_shutdown(&c->be_sreq, &c->be.s, on_be_shutdown) == 0)
			c->be_shut = 0;
	}
	conn_arm_timer(c, LINGER_MS);
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

/* --- re-checks after a reload ------------------------------------------- */

/*
 * One connection against the worker's newest snapshot: its certificate
 * revoked by the new CRL, its identity now denied or no longer mapping,
 * or mapping to other credentials ends it (MQTT 5: DISCONNECT 0x98).
 * Connections before their CONNECT was mapped go on under the snapshot
 * they started with: the new rules are not theirs yet to break.
 */
static void
recheck_one(struct conn *c, const struct snapshot *snap)
{
	char detail[GATE_DETAIL_MAX];
	enum conn_reason why;

	if (c->st != CONN_ST_CONNECTING && c->st != CONN_ST_PROXYING)
		return;
	if (cert_crl_revoked(snap->crl, &c->cert)) {
		snprintf(detail, sizeof(detail), "after reload: the "
		    "certificate (serial %s) is revoked by the CRL",
		    c->cert.serial);
		conn_end(c, MQTT_RC_ADMINISTRATIVE_ACTION, CONN_CLOSE_REVOKED,
		    detail);
		return;
	}
	why = gate_recheck(snap->ident, &c->cert, c->device_cid != NULL ?
	    c->device_cid : "", c->mqtt_level, c->creds_digest, c->policy,
	    detail, sizeof(detail));
	if (why != CONN_CLOSE_NONE)
		conn_end(c, MQTT_RC_ADMINISTRATIVE_ACTION, why, detail);
}

int
conn_recheck(struct worker *w, unsigned max)
{
	struct conn *c;

	while (w->sweep != NULL && max-- > 0) {
		c = w->sweep;
		w->sweep = c->next;
		recheck_one(c, w->snap);
	}
	return (w->sweep != NULL);
}

void
conn_close_unauthenticated(struct worker *w, enum conn_reason why)
{
	struct conn *c, *next;

	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		if (c->st == CONN_ST_HANDSHAKE ||
		    c->st == CONN_ST_AWAIT_CONNECT)
			conn_close(c, why, "moat is stopping");
	}
}

void
conn_end_all(struct worker *w, uint8_t mqtt5_reason, enum conn_reason why)
{
	struct conn *c, *next;

	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		conn_end(c, mqtt5_reason, why, "drain_timeout reached");
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
 * room); warn at most once a second per limit.
 */
static void
refused_warning(struct worker *w, enum limit which, const char *why)
{
	uint64_t now = uv_now(w->loop), *at = &w->refused_logged_at[which];

	WORKER_COUNT(w, refused, 1);
	if (*at == 0 || now - *at >= 1000) {
		*at = now;
		log_warn("connection turned away: %s; %llu so far by worker "
		    "%u", why, (unsigned long long)atomic_load_explicit(
		    &w->count.refused, memory_order_relaxed), w->index);
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
	const struct config *cfg = w->snap->cfg;
	char detail[160];

	if (why == ADMIT_PER_ADDRESS)
		snprintf(detail, sizeof(detail), "max_handshakes_per_address "
		    "(%llu) reached: closed the oldest handshake from %s",
		    (unsigned long long)cfg->max_handshakes_per_address,
		    c->peer);
	else
		snprintf(detail, sizeof(detail), "max_handshakes (%llu) "
		    "reached: closed the oldest handshake, from %s",
		    (unsigned long long)cfg->max_handshakes, c->peer);
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
	int len = sizeof(c->peer_sa), r = 0;

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
	c->cert_days = -1;
	pipe_init(&c->up, &up_ops, c, (uv_stream_t *)&c->dev, &c->be.s);
	pipe_init(&c->down, &down_ops, c, &c->be.s, (uv_stream_t *)&c->dev);
	c->up.total = &w->count.bytes_up;
	c->down.total = &w->count.bytes_down;
	if (uv_accept(server, (uv_stream_t *)&c->dev) != 0 ||
	    (r = uv_timer_init(w->loop, &c->timer)) != 0) {
		if (r != 0)
			log_warn("connection refused: timer: %s",
			    uv_strerror(r));
		uv_close((uv_handle_t *)&c->dev, on_unaccepted_closed);
		return;
	}
	WORKER_COUNT(w, accepted, 1);
	c->timer.data = c;
	c->snap = snapshot_ref(w->snap);
	c->id = worker_conn_id(w);
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
	WORKER_COUNT(w, open, 1);
	WORKER_COUNT(w, state[c->st], 1);

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
	conn_arm_timer(c, cfg->handshake_timeout_ms);
	set_dev_reading(c, 1);
}
