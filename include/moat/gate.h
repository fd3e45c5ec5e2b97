/* SPDX-License-Identifier: MIT */
/*
 * The CONNECT decision, as a pure function. Given the plaintext a device has
 * sent so far after its TLS handshake, the limits and identity rules of the
 * running configuration, and the identity fields of its verified
 * certificate, gate_connect() answers one of:
 *
 *   GATE_WAIT     no whole CONNECT yet (and nothing wrong so far)
 *   GATE_REFUSE   answer with a CONNACK (or close without one) and close,
 *                 with the close reason and a detail for the log
 *   GATE_FORWARD  send these bytes to the broker: the CONNECT re-encoded
 *                 with the mapped credentials, then whatever followed it
 *
 * No sockets, no event loop, no TLS session: unit tests and the fuzzer drive
 * it directly.
 */
#ifndef MOAT_GATE_H
#define MOAT_GATE_H

#include <stddef.h>
#include <stdint.h>

#include "moat/identity.h"
#include "moat/reason.h"

struct cert_identity;
struct identity_rules;
struct policy_set;

enum gate_verdict {
	GATE_WAIT = 0,
	GATE_REFUSE,
	GATE_FORWARD,
};

#define GATE_DETAIL_MAX 600

struct gate_result {
	enum gate_verdict verdict;
	uint8_t level;                  /* MQTT level read, 0 if not yet */

	/* GATE_REFUSE */
	int send_connack;               /* 0: close without a CONNACK */
	uint8_t connack_level;          /* 4 (3.1/3.1.1 form) or 5 */
	uint8_t connack_code;           /* reason code for that form */
	enum conn_reason reason;
	char detail[GATE_DETAIL_MAX];

	/* GATE_FORWARD */
	uint8_t *out;                   /* malloc'd; the caller wipes and
	                                 * frees it (it holds a password) */
	size_t out_len;
	struct policy_set *policy;      /* the device's topic rules, or
	                                 * NULL when topic policy is off; the
	                                 * caller takes it (and sets this to
	                                 * NULL) or gate_result_release()
	                                 * frees it */
	char username[IDENTITY_MAX];    /* mapped names, for the close line */
	char client_id[IDENTITY_MAX];
	uint8_t creds_digest[IDENTITY_DIGEST_LEN]; /* identity.h */
	char device_cid[IDENTITY_MAX];  /* the client id the device sent,
	                                 * for gate_recheck(); empty when it
	                                 * sent none or one too long to map */

	/* GATE_REFUSE and GATE_FORWARD, once the identity rules ran */
	char rule[IDENTITY_MAX];        /* "map entry [x]", "template", ...
	                                 * for logs */
	enum identity_rule rule_kind;   /* the same, to decide on */
	char identity[IDENTITY_MAX];    /* the identity value taken from
	                                 * the certificate, for the close
	                                 * line; empty when none was */
};

/*
 * Decide on buf[0..len), all the plaintext the device sent since its
 * handshake. max_connect_size caps the CONNECT. rules and id must stay
 * valid for the call only. Fills res (cleared first) and returns its
 * verdict. On GATE_FORWARD res->out holds out_len bytes that the caller
 * owns (allocated at exactly that size; release with
 * gate_result_release()); on every other verdict res->out is NULL. On
 * GATE_REFUSE, when send_connack is set, the caller answers
 * mqtt_connack_encode(connack_level, connack_code) before closing with
 * reason and detail. Never reads past len.
 */
enum gate_verdict gate_connect(const uint8_t *buf, size_t len,
    size_t max_connect_size, const struct identity_rules *rules,
    const struct cert_identity *id, struct gate_result *res);

/*
 * A live connection against new identity rules: map the certificate id
 * again with the client id the device sent (device_cid, level as in its
 * CONNECT) and compare with digest, the creds_digest of its CONNECT, and
 * with policy, the topic rules it was given (NULL: policy was off).
 * Returns CONN_CLOSE_NONE when the same credentials and rules come out,
 * CONN_CLOSE_REVOKED when the identity is now denied or no longer maps,
 * CONN_CLOSE_CREDENTIALS_CHANGED, or CONN_CLOSE_TOPIC_RULES_CHANGED (the
 * broker keeps what the device subscribed to, so narrower rules only
 * hold once it connects again), with a detail for the log in detail
 * (never a password).
 */
enum conn_reason gate_recheck(const struct identity_rules *rules,
    const struct cert_identity *id, const char *device_cid, uint8_t level,
    const uint8_t digest[IDENTITY_DIGEST_LEN],
    const struct policy_set *policy, char *detail, size_t detaillen);

/* Wipe and free res->out, free res->policy; safe on a cleared or
 * already released res. */
void gate_result_release(struct gate_result *res);

#endif
