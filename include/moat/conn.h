/* SPDX-License-Identifier: MIT */
/*
 * One device connection: TLS from the device, the MQTT CONNECT rewritten
 * with the credentials mapped from its certificate, plaintext to the
 * broker, and the state machine, buffers, backpressure, deadlines and
 * teardown between them. States and close reasons come from X-macro lists so that logs print
 * names, never numbers.
 */
#ifndef MOAT_CONN_H
#define MOAT_CONN_H

#include <uv.h>

struct conn;
struct worker;

#define CONN_STATES(X)                          \
	X(HANDSHAKE, "handshake")               \
	X(AWAIT_CONNECT, "await_connect")       \
	X(CONNECTING, "connecting")             \
	X(PROXYING, "proxying")                 \
	X(DRAINING, "draining")                 \
	X(CLOSED, "closed")

#define CONN_REASONS(X)                                         \
	X(NONE, "none")                                         \
	X(SHUTDOWN, "shutdown")                                 \
	X(TOO_MANY_HANDSHAKES, "too_many_handshakes")           \
	X(HANDSHAKE_TIMEOUT, "handshake_timeout")               \
	X(TLS_HANDSHAKE_FAILED, "tls_handshake_failed")         \
	X(TLS_ERROR, "tls_error")                               \
	X(CONNECT_TIMEOUT, "connect_timeout")                   \
	X(MQTT_NOT_CONNECT, "mqtt_not_connect")                 \
	X(MQTT_MALFORMED, "mqtt_malformed")                     \
	X(CONNECT_TOO_LARGE, "connect_too_large")               \
	X(PROTOCOL_REFUSED, "protocol_refused")                 \
	X(AUTH_METHOD_REFUSED, "auth_method_refused")           \
	X(IDENTITY_REFUSED, "identity_refused")                 \
	X(CLIENT_ID_REFUSED, "client_id_refused")               \
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
 * The one teardown: stop reading the broker, flush what is queued
 * (close_notify to the device where TLS is up, FIN to both), and discard
 * what the device still sends until it closes too, all within a short
 * linger, so that a reset cannot destroy a last CONNACK in flight; then
 * close every handle, log one line, free. Safe to call again:
 * later calls do nothing. detail may be NULL.
 */
void conn_close(struct conn *c, enum conn_reason why, const char *detail);

/* Close every connection of w with reason why. */
void conn_close_all(struct worker *w, enum conn_reason why);

#endif
