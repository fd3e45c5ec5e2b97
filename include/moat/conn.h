/* SPDX-License-Identifier: MIT */
/*
 * One device connection: TLS from the device, the MQTT CONNECT rewritten
 * with the credentials mapped from its certificate, plaintext to the
 * broker, and the state machine, buffers, backpressure, deadlines and
 * teardown between them. States and close reasons come from reason.h's
 * X-macro lists so that logs print names, never numbers.
 */
#ifndef MOAT_CONN_H
#define MOAT_CONN_H

#include <stdint.h>

#include <uv.h>

#include "moat/reason.h"

struct conn;
struct worker;

/*
 * Accept one pending connection from server into a new connection on w,
 * counted in w->admit as a handshake (a full budget closes the oldest).
 * Out of memory, the socket is accepted and closed at once.
 */
void conn_accept(struct worker *w, uv_stream_t *server);

/*
 * The admission state for w's connections (admit.h), whose full budgets
 * close connections of w; NULL when out of memory. Free with admit_free().
 */
struct admit *conn_admit_new(struct worker *w);

/*
 * The admission state for w's connections (admit.h), whose full budgets
 * close connections of w; NULL when out of memory. Free with admit_free().
 */
struct admit *conn_admit_new(struct worker *w);

/*
 * The one teardown: stop reading the broker, flush what is queued
 * (close_notify to the device where TLS is up, FIN to both), and discard
 * what the device still sends until it closes too, all within a short
 * linger, so that a reset cannot destroy a last CONNACK in flight; then
 * close every handle, log one line, free. Safe to call again:
 * later calls do nothing. detail may be NULL.
 */
void conn_close(struct conn *c, enum conn_reason why, const char *detail);

/*
 * End a connection on moat's own initiative (a revocation, a lifetime,
 * shutdown). An MQTT 5 device whose session is proxied gets a DISCONNECT
 * with mqtt5_reason first (MQTT_RC_*), written only at a packet boundary
 * of the broker's stream: when a packet from the broker is half through,
 * moat passes the rest of that packet alone and then sends the
 * DISCONNECT, or, when it does not come within END_WAIT_MS, closes
 * without it. Other devices (MQTT 3.x has no DISCONNECT from the server)
 * and other states are closed at once. Then as conn_close(c, why,
 * detail); detail may be NULL.
 */
void conn_end(struct conn *c, uint8_t mqtt5_reason, enum conn_reason why,
    const char *detail);

/*
 * Re-check up to max connections of w, from w->sweep on, against w's
 * current snapshot (after a reload): a certificate now revoked by the
 * CRL, an identity now denied or no longer mapping (CONN_CLOSE_REVOKED),
 * or one mapping to other credentials (CONN_CLOSE_CREDENTIALS_CHANGED)
 * is ended with conn_end(MQTT_RC_ADMINISTRATIVE_ACTION). Returns 1 when
 * connections remain to be checked, else 0.
 */
int conn_recheck(struct worker *w, unsigned max);

/* Close the connections of w still in their handshake or waiting for
 * their CONNECT with reason why (a drain: they hold nothing yet). */
void conn_close_unauthenticated(struct worker *w, enum conn_reason why);

/* conn_end() every connection of w with mqtt5_reason and why. */
void conn_end_all(struct worker *w, uint8_t mqtt5_reason,
    enum conn_reason why);

/*
 * On w's loop: end w's connections that newer ones of their identity
 * replaced (idconns.h, [limits] on_duplicate = replace) with
 * conn_end(MQTT_RC_SESSION_TAKEN_OVER, CONN_CLOSE_SESSION_TAKEN_OVER),
 * the detail naming the newer connection, and connect to the broker
 * those of w's newer ones whose replaced connections have all closed
 * (conndup.c).
 */
void conn_end_replaced(struct worker *w);

/* Close every connection of w with reason why. */
void conn_close_all(struct worker *w, enum conn_reason why);

/*
 * On w's loop: w's connections past their handshake, at most limit, as
 * JSON objects, one per line ("{...}\n"): id, worker, state, peer,
 * subject, identity (the certificate CN), username, client_id, since
 * (seconds since the epoch), up, down, not_after. Returns a malloc'd
 * string ("" for none; the caller frees it), or NULL when out of memory
 * (connlist.c).
 */
char *conn_list_json(struct worker *w, unsigned limit);

#endif
