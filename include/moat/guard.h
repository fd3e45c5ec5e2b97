/* SPDX-License-Identifier: MIT */
/*
 * The topic guard: one per device connection, from the CONNECT on. The
 * caller cuts the device's stream into whole packets with mqtt_frame()
 * (capped at the largest packet it takes) and hands each one to
 * guard_up(), which decides what becomes of it:
 *
 *   GUARD_FORWARD            send the packet to the broker as it is
 *   GUARD_FORWARD_REWRITTEN  send act->out instead (a SUBSCRIBE holding
 *                            only the filters the policy allows)
 *   GUARD_ANSWER             send nothing to the broker; send act->out to
 *                            the device (SUBACK, PUBACK, PUBREC, PUBCOMP)
 *   GUARD_DROP               send nothing anywhere (a refused QoS 0
 *                            PUBLISH)
 *   GUARD_CLOSE              end the connection with act->reason; at
 *                            MQTT 5 send DISCONNECT act->rc first
 *
 * What it checks: a second CONNECT and AUTH packets are refused; PUBLISH
 * topics (MQTT 5 topic aliases included) and SUBSCRIBE filters go through
 * the policy's callbacks; PUBLISH, SUBSCRIBE and UNSUBSCRIBE must be well
 * formed. Every other packet goes through byte for byte. UNSUBSCRIBE is
 * only read, never judged: dropping a subscription cannot widen what a
 * device reaches.
 *
 * A partly refused SUBSCRIBE reaches the broker with the allowed filters
 * only; the guard remembers which positions it took out, and the broker's
 * SUBACK for that packet identifier comes back through guard_down() to be
 * put back into the device's order. guard_wants_down() tells the caller,
 * from a broker packet's first bytes, whether to collect it for that.
 *
 * Pure: no I/O; memory only for what a connection has outstanding (see
 * the caps below), never more than the caps allow whatever the device
 * sends.
 */
#ifndef MOAT_GUARD_H
#define MOAT_GUARD_H

#include <stddef.h>
#include <stdint.h>

#include "moat/mqtt.h"
#include "moat/reason.h"

/*
 * Caps, per connection:
 *   GUARD_PENDING_MAX   partly refused SUBSCRIBEs whose SUBACK the guard
 *                       waits for. One more is answered by moat itself
 *                       with a SUBACK refusing every filter (MQTT 5: 0x87
 *                       for the refused ones, 0x97 quota exceeded for the
 *                       others; 3.1.1: 0x80) and never reaches the broker.
 *   GUARD_ANSWERED_MAX  QoS 2 packet identifiers moat answered with a
 *                       PUBREC (3.1/3.1.1 with on_denied_publish = drop),
 *                       whose PUBREL moat answers with a PUBCOMP. Past it
 *                       the oldest is forgotten: its PUBREL then goes to
 *                       the broker, which answers an unknown identifier
 *                       (Mosquitto: with a PUBCOMP).
 *   GUARD_ALIAS_MAX     topic aliases tracked (MQTT 5), unless the policy
 *                       sets a lower alias_max. Two bits per alias, in a
 *                       table that grows with the highest alias the
 *                       device binds: none for a device that uses no
 *                       alias, 16 KiB at most.
 */
#define GUARD_PENDING_MAX  16
#define GUARD_ANSWERED_MAX 16
#define GUARD_ALIAS_MAX    65535

/*
 * The rules a guard applies. A callback answers 1 (allowed) or anything
 * else (refused) for a topic name or filter, given as bytes (not NUL
 * terminated, valid UTF-8, at least one byte); ctx is passed through. A
 * NULL may_publish turns PUBLISH checks off, a NULL may_subscribe
 * SUBSCRIBE and UNSUBSCRIBE checks: those packets then go through
 * unread, as if there were no guard. The second CONNECT and AUTH are
 * refused either way.
 */
struct guard_policy {
	int (*may_publish)(void *ctx, const uint8_t *topic, size_t len);
	int (*may_subscribe)(void *ctx, const uint8_t *filter, size_t len);
	void *ctx;                  /* not owned; must outlive the guard */
	int drop_denied;            /* 3.1/3.1.1 [policy] on_denied_publish
	                             * = drop; 0: disconnect */
	uint16_t alias_max;         /* topic alias maximum; 0: the cap */
};

enum guard_verdict {
	GUARD_FORWARD = 0,
	GUARD_FORWARD_REWRITTEN,
	GUARD_ANSWER,
	GUARD_DROP,
	GUARD_CLOSE,
};

/* What a refusal was about, for counters and metrics (X-macro). */
#define GUARD_KINDS(X)                                          \
	X(NONE, "none")                                         \
	X(PUBLISH, "publish")           /* refused PUBLISH */   \
	X(SUBSCRIBE, "subscribe")       /* refused filters */   \
	X(CONNECT, "connect")           /* second CONNECT */    \
	X(AUTH, "auth")                 /* AUTH packet */       \
	X(MALFORMED, "malformed")       /* closed: malformed */ \
	X(TOO_LARGE, "too_large")       /* closed: over cap */  \
	X(PROTOCOL, "protocol")         /* closed: alias, id */

#define X(name, text) GUARD_KIND_##name,
enum guard_kind { GUARD_KINDS(X) GUARD_NKINDS };
#undef X

/* One pending SUBACK merge; see guard.c. */
struct guard_pending;

/*
 * One connection's guard. Embed it (in struct conn) and set it up with
 * guard_init(); the fields are the guard's, read-only to others except
 * refused[], which the caller may read at any time.
 */
struct guard {
	uint8_t level;                      /* MQTT level of the CONNECT */
	struct guard_policy pol;
	uint64_t refused[GUARD_NKINDS];     /* refusals so far, by kind */

	struct guard_pending *pending;      /* oldest first */
	unsigned npending;
	uint16_t answered[GUARD_ANSWERED_MAX]; /* QoS 2 ids moat answered */
	unsigned nanswered;
	uint64_t *alias;                    /* 2 bits per alias, or NULL */
	size_t alias_words;

	uint8_t *out;                       /* act->out when it is long */
	size_t out_cap;
	uint8_t small[MQTT_ACK_MAX];        /* act->out when it is short */

	int closed;                         /* a GUARD_CLOSE was given */
	uint8_t close_rc;
	enum conn_reason close_reason;
	const char *close_detail;
};

/* What to do with one packet. */
struct guard_action {
	enum guard_verdict verdict;
	/*
	 * FORWARD_REWRITTEN: the bytes for the broker; ANSWER: the bytes for
	 * the device. Owned by the guard, valid until the next call on it
	 * (copy them, as pipe_write() and TLS do). NULL otherwise.
	 */
	const uint8_t *out;
	size_t out_len;

	/* GUARD_CLOSE */
	enum conn_reason reason;
	const char *detail;         /* static text for the close line */
	int disconnect;             /* level 5: send DISCONNECT rc first */
	uint8_t rc;                 /* its MQTT 5 reason code */

	/* Refusals in this packet (also added to guard.refused[]). */
	enum guard_kind refused;    /* GUARD_KIND_NONE when none */
	size_t nrefused;            /* 1, or refused filters of a SUBSCRIBE */
	struct mqtt_str topic;      /* refused PUBLISH: its topic (a view
	                             * into the packet; empty when it came
	                             * by alias) */

	/* Every PUBLISH, whatever the verdict, for the rate limiter. */
	int is_publish;
	uint8_t qos;
	size_t publish_bytes;       /* payload size (the remaining length
	                             * when the policy is off and it does
	                             * not read) */
};

/*
 * Set g up for a connection whose CONNECT had protocol level (3, 4 or
 * 5) with the rules in pol (copied; pol->ctx is not owned). Allocates
 * nothing.
 */
void guard_init(struct guard *g, uint8_t level,
    const struct guard_policy *pol);

/* Free what g holds; g may be set up again. NULL and twice are fine. */
void guard_release(struct guard *g);

/*
 * Judge one whole packet from the device, pkt[0..len) exactly as
 * mqtt_frame() cut it (anything else is GUARD_CLOSE, malformed). Fills act
 * (cleared first) and returns act->verdict. pkt is only read, and only
 * during the call. After a GUARD_CLOSE every later call closes again.
 *
 * What the caller does:
 *   FORWARD            write pkt to the broker
 *   FORWARD_REWRITTEN  write act->out to the broker instead
 *   ANSWER             write act->out to the device, between two of the
 *                      broker's packets (never inside one)
 *   DROP               nothing
 *   CLOSE              conn_end(c, act->rc, act->reason, act->detail):
 *                      DISCONNECT first when act->disconnect
 * and in every case, when act->is_publish, charge the rate limits (the
 * relay charges the whole remaining length, as for a PUBLISH it passes
 * unread, so that [policy] does not change what a device may send).
 */
enum guard_verdict guard_up(struct guard *g, const uint8_t *pkt,
    size_t len, struct guard_action *act);

/*
 * The verdict when mqtt_frame() refuses the device's stream (st is its
 * MQTT_TOO_LARGE or MQTT_MALFORMED, why its text): GUARD_CLOSE with
 * packet_too_large (MQTT 5: 0x95) or packet_malformed (0x81).
 */
enum guard_verdict guard_up_refuse_frame(struct guard *g,
    enum mqtt_status st, const char *why, struct guard_action *act);

/*
 * Must the broker packet that starts with head[0..n) go to guard_down()?
 * 1: collect it whole and call guard_down(); 0: pass it through; -1: give
 * more of its first bytes (never needs more than 7: the fixed header and
 * a packet identifier). Only a SUBACK whose packet identifier the guard
 * waits for is wanted; with nothing pending the answer is 0 at once,
 * even for n == 0.
 */
int guard_wants_down(const struct guard *g, const uint8_t *head,
    size_t n);

/*
 * A whole broker packet that guard_wants_down() wanted: the SUBACK for a
 * SUBSCRIBE the guard rewrote. GUARD_FORWARD_REWRITTEN with act->out the
 * SUBACK for the device (the packet identifier and MQTT 5 properties
 * kept, the broker's codes in the allowed filters' places, 0x80 (3.1.1)
 * or 0x87 (5) in the refused ones), to be written instead of pkt;
 * GUARD_FORWARD when the guard waits for no such SUBACK (pass pkt on);
 * GUARD_CLOSE (backend_error) when pkt is not a SUBACK that fits the
 * SUBSCRIBE: malformed, or another number of codes.
 */
enum guard_verdict guard_down(struct guard *g, const uint8_t *pkt,
    size_t len, struct guard_action *act);

/* All refusals so far (the sum of refused[]), for the close line. */
uint64_t guard_refused_total(const struct guard *g);

/* The kind's name ("publish"), "?" out of range. */
const char *guard_kind_name(enum guard_kind kind);

#endif
