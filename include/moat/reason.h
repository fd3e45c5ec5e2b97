/* SPDX-License-Identifier: MIT */
/*
 * Why a device connection ended, and the states it passes through, from
 * X-macro lists so that logs, metrics and tests print names, never numbers. Pure: the CONNECT decision
 * (gate.h) returns these as well as the event loop.
 */
#ifndef MOAT_REASON_H
#define MOAT_REASON_H

#define CONN_REASONS(X)                                         \
	X(NONE, "none")                                         \
	X(SHUTDOWN, "shutdown")                                 \
	X(TOO_MANY_HANDSHAKES, "too_many_handshakes")           \
	X(TOO_MANY_CONNECTIONS, "too_many_connections")         \
	X(TOO_MANY_PER_IDENTITY, "too_many_per_identity")       \
	X(HANDSHAKE_TIMEOUT, "handshake_timeout")               \
	X(TLS_HANDSHAKE_FAILED, "tls_handshake_failed")         \
	X(TLS_ERROR, "tls_error")                               \
	X(CONNECT_TIMEOUT, "connect_timeout")                   \
	X(MQTT_NOT_CONNECT, "mqtt_not_connect")                 \
	X(MQTT_MALFORMED, "mqtt_malformed")                     \
	X(CONNECT_TOO_LARGE, "connect_too_large")               \
	X(PROTOCOL_REFUSED, "protocol_refused")                 \
	X(AUTH_METHOD_REFUSED, "auth_method_refused")           \
	X(PACKET_MALFORMED, "packet_malformed")                 \
	X(PACKET_TOO_LARGE, "packet_too_large")                 \
	X(PROTOCOL_ERROR, "protocol_error")                     \
	X(TOPIC_REFUSED, "topic_refused")                       \
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
	X(NO_MEMORY, "out_of_memory")                          \
	X(REVOKED, "revoked")                                   \
	X(TOPIC_RULES_CHANGED, "topic_rules_changed")           \
	X(CREDENTIALS_CHANGED, "credentials_changed")           \
	X(SESSION_TAKEN_OVER, "session_taken_over")             \
	X(LIFETIME, "lifetime")                                 \
	X(CERT_EXPIRED, "cert_expired")

#define X(name, text) CONN_CLOSE_##name,
enum conn_reason { CONN_REASONS(X) CONN_NREASONS };
#undef X

/* The reason's name ("idle_timeout"), "?" for a value out of range. */
const char *conn_reason_name(enum conn_reason why);

/* The states of a device connection (conn.c says what each means); here
 * so that the workers' counters and /metrics can name them too. */
#define CONN_STATES(X)                          \
	X(HANDSHAKE, "handshake")               \
	X(AWAIT_CONNECT, "await_connect")       \
	X(CONNECTING, "connecting")             \
	X(PROXYING, "proxying")                 \
	X(DRAINING, "draining")                 \
	X(CLOSED, "closed")

#define X(name, text) CONN_ST_##name,
enum conn_state { CONN_STATES(X) CONN_NSTATES };
#undef X

/* The state's name ("proxying"), "?" for a value out of range. */
const char *conn_state_name(enum conn_state st);

#endif
