/* SPDX-License-Identifier: MIT */
/*
 * Inside one device connection: the struct and the functions that the
 * files of a connection (conn.c, the device side, states and teardown;
 * relay.c, the MQTT packets after the CONNECT; upstream.c, the broker
 * connection; deadline.c, the timer) call in each other. Not for use
 * outside them.
 */
#ifndef MOAT_CONN_INT_H
#define MOAT_CONN_INT_H

#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "moat/admit.h"
#include "moat/guard.h"
#include "moat/conn.h"
#include "moat/idconns.h"
#include "moat/identity.h"
#include "moat/mqtt.h"
#include "moat/pipe.h"
#include "moat/rate.h"

struct gate_result;
struct policy_set;
struct snapshot;
struct tls_session;
struct worker;

#define RX_CAP          16384           /* ciphertext read from the device
                                         * and not yet taken by TLS, at
                                         * most (worker.h: dev_in) */
#define DETAIL_MAX      600             /* the close line's detail */
#define PEND_SLACK      16384           /* room past max_connect_size for
                                         * what follows the CONNECT */
#define PEND_MIN        4096            /* first allocation of pend */
#define LINGER_MS       2000            /* closing: deadline for progress */
#define DRAIN_MAX_MS    30000           /* closing: deadline in all */
#define END_WAIT_MS     2000            /* conn_end: wait for a boundary */

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
	int dev_eof;                    /* device sent FIN */
	int dev_dead;                   /* device reset: write nothing more */
	int tls_up;                     /* handshake completed */
	int dev_shut, be_shut;          /* DRAINING: side finished */
	struct admit_entry adm;         /* in w->admit: handshake or slot */
	int open_handles;

	struct tls_session *tls;
	char *rx;                       /* ciphertext left over from a read,
	                                 * not yet taken by TLS; malloc'd,
	                                 * NULL when none */
	size_t rx_off, rx_len;
	const char *in;                 /* during on_dev_read: the rest of
	                                 * the read, in w->dev_in */
	size_t in_len;
	char *pend;                     /* plaintext waiting for the broker */
	size_t pend_len, pend_cap;
	uint8_t mqtt_level;             /* from the CONNECT; 0 until read */

	struct pipe up;                 /* device to broker; .paused: by
	                                 * backpressure from either queue */
	struct pipe down;               /* broker to device */
	struct mqtt_tracker down_mqtt;  /* packet boundaries of down */

	/* The packets after the CONNECT (relay.c). */
	struct guard guard;             /* topic policy, second CONNECT,
	                                 * AUTH, malformed packets */
	struct policy_set *policy;      /* this device's topic rules, or
	                                 * NULL: policy off */
	uint8_t *held;                  /* device bytes read, not yet
	                                 * judged; NULL when none */
	size_t held_off, held_len, held_cap;
	uint64_t pass_left;             /* bytes of the device's current
	                                 * packet to pass on unread */
	uint8_t *inject;                /* moat's packets for the device,
	                                 * waiting for a gap; NULL: none */
	size_t inject_len;
	uint8_t *collect;               /* broker bytes from the head of a
	                                 * packet the guard looks at */
	size_t collect_len;
	struct rate msg_rate, byte_rate; /* [limits] publish_rate, ... */
	uint64_t max_publish_size;      /* 0: none */
	uint64_t msg_tat, byte_tat;     /* their states (rate.h) */
	uint64_t throttle_until;        /* uv_now() when the device may be
	                                 * read again; 0: not throttled */
	int ending;                     /* conn_end() waits for a boundary */
	enum conn_reason end_why;
	uint8_t end_rc;                 /* the MQTT 5 DISCONNECT's reason */
	uint64_t t_start, last_active, t_drain;
	char peer[64];
	struct sockaddr_storage peer_sa;
	struct cert_identity cert;      /* of the device certificate */
	char *identity;                 /* the identity value, for the log */
	int64_t cert_days;              /* days left counted in its worker's
	                                 * days_left, or -1: not counted */
	char *username;                 /* mapped, for the log */
	char *client_id;
	char *device_cid;               /* as the device sent it, or NULL */
	uint8_t creds_digest[IDENTITY_DIGEST_LEN]; /* of the mapped
	                                 * credentials (gate.h) */
	struct idconns_node idn;        /* in w->shared->idconns from the
	                                 * CONNECT's acceptance to the close */
	int dup_wait;                   /* CONNECTING: waits for those it
	                                 * replaced to close (conndup.c) */
	enum conn_reason reason;
	char *detail;                   /* for the close line, DETAIL_MAX
	                                 * bytes malloc'd once there is
	                                 * one; NULL: none */
};

/* conn_end() waited for a packet boundary in vain: close without the
 * DISCONNECT (conn.c). */
void conn_end_overdue(struct conn *c);

/* Drive TLS with what the device sent (conn.c). */
void conn_pump_up(struct conn *c);

/* (Re)start the connection's one timer for ms (deadline.c). */
void conn_arm_timer(struct conn *c, uint64_t ms);

/* PROXYING: arm the timer for the earliest of the idle, lifetime and
 * certificate expiry deadlines, or stop it when there is none
 * (deadline.c). */
void conn_arm_proxying(struct conn *c);

/* DRAINING's linger ran out: note what the device did not get and close
 * every handle (conn.c). */
void conn_linger_over(struct conn *c);

/* The broker accepted: proxy from now on (conn.c). */
void conn_broker_up(struct conn *c);

/* Answer "server unavailable" (the CONNACK for the device's MQTT version)
 * and close with why and detail (conn.c). */
void conn_refuse_unavailable(struct conn *c, enum conn_reason why,
    const char *detail);

/* Answer with a CONNACK refusal, v3_code in the 3.1.1 form or v5_code
 * for MQTT 5, and close with why and detail (conn.c). */
void conn_refuse(struct conn *c, uint8_t v3_code, uint8_t v5_code,
    enum conn_reason why, const char *detail);

/*
 * The CONNECT was accepted: count c under its identity, across the
 * workers (idconns.h). Over [limits] max_connections_per_identity, with
 * on_duplicate = refuse c is refused (CONNACK 0x03 / 0x97) and closed;
 * with replace the oldest of its identity are marked for their workers
 * to end. Returns 0 (connect to the broker), 1 (c replaced others: it
 * waits, and conn_end_replaced() connects it once they are gone), or -1
 * when c was closed (conndup.c).
 */
int conn_dup_join(struct conn *c);

/*
 * Take c out of that count (once; later calls return 0). Returns 1 when a
 * newer connection had replaced c, with a detail naming it in detail
 * (conndup.c).
 */
int conn_dup_leave(struct conn *c, char *detail, size_t len);

/* conn_end() at a boundary of the broker's stream: the DISCONNECT, then
 * the one teardown (conn.c). */
void conn_end_now(struct conn *c);

/* A reason to stop reading the device has gone: take what waits in TLS
 * and read again, unless another reason holds (conn.c). */
void conn_resume_device(struct conn *c);

/*
 * relay.c, the packets after the CONNECT:
 *   relay_start     at the gate's forward: take res->policy, set up the
 *                   guard and the rates; 0 or -1 (bad rate: a bug)
 *   relay_up        device bytes while PROXYING; 0, or -1 when closed
 *   relay_down      broker bytes for the device; 0, or -1 when closed
 *   relay_to_device moat's own packet for the device, sent at the next
 *                   gap between the broker's packets; 0 or -1 (closed)
 *   relay_may_read  0 while the device must not be read (throttled, or
 *                   too many answers waiting)
 *   relay_throttle_over  the rate allows more: go on, read again
 *   relay_free      free what the relay holds
 */
int relay_start(struct conn *c, struct gate_result *res);
int relay_up(struct conn *c, const uint8_t *data, size_t len);
int relay_down(struct conn *c, const uint8_t *data, size_t len);
int relay_to_device(struct conn *c, const uint8_t *p, size_t n);
int relay_may_read(const struct conn *c);
void relay_throttle_over(struct conn *c);
void relay_free(struct conn *c);

/* Connect to the snapshot's broker; on failure the device is refused
 * (upstream.c). */
void upstream_connect(struct conn *c);

/* Reading the broker: the down pipe's source callbacks (upstream.c). */
void upstream_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
void upstream_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

#endif
