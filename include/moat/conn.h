/* SPDX-License-Identifier: MIT */
/*
 * One device connection: TLS from the device, plaintext to the broker, and
 * the state machine, buffers, backpressure, deadlines and teardown between
 * them. States and close reasons come from X-macro lists so that logs print
 * names, never numbers.
 */
#ifndef MOAT_CONN_H
#define MOAT_CONN_H

#include <uv.h>

struct conn;
struct worker;

#define CONN_STATES(X)                  \
	X(HANDSHAKE, "handshake")       \
	X(CONNECTING, "connecting")     \
	X(PROXYING, "proxying")         \
	X(DRAINING, "draining")         \
	X(CLOSED, "closed")

#define CONN_REASONS(X)                                         \
	X(NONE, "none")                                         \
	X(SHUTDOWN, "shutdown")                                 \
	X(HANDSHAKE_TIMEOUT, "handshake_timeout")               \
	X(TLS_HANDSHAKE_FAILED, "tls_handshake_failed")         \
	X(TLS_ERROR, "tls_error")                               \
	X(CONNECT_TIMEOUT, "connect_timeout")                   \
	X(BACKEND_REFUSED, "backend_refused")                   \
	X(BACKEND_CLOSED, "backend_closed")                     \
	X(BACKEND_ERROR, "backend_error")                       \
	X(DEVICE_CLOSED, "device_closed")                       \
	X(DEVICE_EOF, "device_eof")                             \
	X(DEVICE_RESET, "device_reset")                         \
	X(DEVICE_ERROR, "device_error")                         \
	X(IDLE_TIMEOUT, "idle_timeout")                         \
	X(NO_MEMORY, "out_of_memory")

#define X(name, text) CONN_ST_##name,
enum conn_state { CONN_STATES(X) };
#undef X
#define X(name, text) CONN_CLOSE_##name,
enum conn_reason { CONN_REASONS(X) };
#undef X

/* Names for logs. */
const char *conn_state_name(enum conn_state st);
const char *conn_reason_name(enum conn_reason why);

/*
 * Accept one pending connection from server into a new connection on w.
 * Over the connection cap, the socket is accepted and closed at once.
 */
void conn_accept(struct worker *w, uv_stream_t *server);

/*
 * The one teardown: stop reading both sides, flush what is queued
 * (close_notify to the device where TLS is up, FIN to the broker) within a
 * short linger, close every handle, log one line, free. Safe to call again:
 * later calls do nothing. detail may be NULL.
 */
void conn_close(struct conn *c, enum conn_reason why, const char *detail);

/* Close every connection of w with reason why. */
void conn_close_all(struct worker *w, enum conn_reason why);

#endif
