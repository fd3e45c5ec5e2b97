/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the topic guard (src/core/guard.c) and the codecs
 * under it. The input is a device's stream after its CONNECT, cut into
 * packets with mqtt_frame() as a connection would, each handed to
 * guard_up() with a toy policy: a topic or filter is allowed when it
 * starts with 'a'. SUBACK packets in the stream play the broker's part:
 * they go to guard_wants_down() (byte by byte) and guard_down(). The
 * first byte picks the protocol level, on_denied_publish, whether the
 * policy is on, whether rewritten SUBSCRIBEs get a SUBACK from the
 * broker at once, and the topic alias maximum; the second the packet cap.
 * It checks:
 *
 *   - what the broker sees is allowed: a forwarded PUBLISH's topic, or
 *     for an alias the topic the broker has bound to it (kept here from
 *     the forwarded PUBLISHes alone), starts with 'a'; a forwarded or
 *     rewritten SUBSCRIBE holds only allowed filters, the rewritten one
 *     a subset of the device's in order, with the same packet id;
 *   - answers are one whole packet of the type the verdict implies, and
 *     a merged SUBACK has the device's packet id, one code per filter of
 *     its SUBSCRIBE and the refusal code in the refused places;
 *   - sizes stay within the caps: outputs no larger than the packet cap
 *     plus its codes, the alias table within 16 KiB, pending merges and
 *     answered identifiers within their caps;
 *   - after a close every call closes.
 *
 * Any broken promise calls abort(). Build and run with tests/fuzz/run.sh.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moat/guard.h"
#include "moat/mqtt.h"
#include "moat/reason.h"

#define CAP_UNIT 16
#define CAP_NONE (64 * 1024)
#define ALIAS_UNIT 8
#define ALIAS_TABLE_MAX (16 * 1024)
#define ALLOWED_FIRST 'a'
#define BIND_NONE 0
#define BIND_OK 1
#define BIND_REFUSED 2

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Per alias, what the broker has bound to it (from forwarded PUBLISHes)
 * and what the device believes it bound (from every PUBLISH it sent).
 */
static uint8_t broker_alias[65536];
static uint8_t device_alias[65536];

/* What was asked of the broker and not yet answered: SUBSCRIBEs sent. */
struct sent {
	uint16_t id;
	size_t count;                   /* filters the device sent */
	size_t nallowed;
	uint8_t allowed[64];            /* positions, when count <= 512 */
};

static void
check(int ok)
{
	if (!ok)
		abort();
}

static int
toy(void *ctx, const uint8_t *s, size_t len)
{
	(void)ctx;
	check(s != NULL && len > 0);
	return (s[0] == ALLOWED_FIRST);
}

static int
allowed(const struct mqtt_str *s)
{
	return (s->len > 0 && s->p[0] == ALLOWED_FIRST);
}

/* out[0..n) is exactly one packet of type. */
static void
check_one(const uint8_t *out, size_t n, uint8_t type)
{
	struct mqtt_frame f;
	const char *why;

	check(out != NULL && n > 0);
	check(mqtt_frame(out, n, n, &f, &why) == MQTT_OK && f.total == n);
	check(f.type == type);
}

/*
 * A PUBLISH with the policy on: forwarded exactly when the topic the
 * device means (named, or bound to its alias by its last PUBLISH that
 * named one) is allowed, and then what the broker delivers to is allowed
 * too; closed only when malformed, for an alias error, or at 3.1/3.1.1
 * with on_denied_publish = disconnect.
 */
static void
check_publish(const struct guard *g, const struct guard_action *act,
    const uint8_t *pkt, size_t len)
{
	struct mqtt_publish p;
	const char *why;
	int means;

	if (mqtt_publish_read(pkt, len, g->level, &p, &why) != MQTT_OK) {
		check(act->verdict == GUARD_CLOSE);
		return;
	}
	check(act->publish_bytes == p.payload.len && act->qos == p.qos);
	if (p.has_alias && (p.alias == 0 || p.alias > g->pol.alias_max ||
	    (p.topic.len == 0 && device_alias[p.alias] == BIND_NONE))) {
		check(act->verdict == GUARD_CLOSE &&
		    act->reason == CONN_CLOSE_PROTOCOL_ERROR);
		return;
	}
	means = p.topic.len > 0 ? allowed(&p.topic) :
	    device_alias[p.alias] == BIND_OK;
	if (p.has_alias && p.topic.len > 0)
		device_alias[p.alias] = means ? BIND_OK : BIND_REFUSED;
	if (means) {
		check(act->verdict == GUARD_FORWARD);
		if (p.has_alias && p.topic.len > 0)
			broker_alias[p.alias] = BIND_OK;
		check(p.topic.len > 0 || broker_alias[p.alias] == BIND_OK);
		return;
	}
	if (g->level != MQTT_LEVEL_5 && !g->pol.drop_denied)
		check(act->verdict == GUARD_CLOSE &&
		    act->reason == CONN_CLOSE_TOPIC_REFUSED);
	else
		check(act->verdict == (p.qos == 0 ? GUARD_DROP :
		    GUARD_ANSWER));
}

/* A SUBSCRIBE for the broker: only allowed filters; records it. */
static void
check_subscribe_out(uint8_t level, const uint8_t *dev, size_t devlen,
    const uint8_t *out, size_t n, struct sent *s)
{
	struct mqtt_subscribe a, b;
	struct mqtt_filter fa, fb;
	size_t pa = 0, pb = 0, i = 0;
	const char *why;

	check(mqtt_subscribe_read(dev, devlen, level, &a, &why) == MQTT_OK);
	check(mqtt_subscribe_read(out, n, level, &b, &why) == MQTT_OK);
	check(n <= devlen && a.packet_id == b.packet_id);
	check(a.props.len == b.props.len);
	memset(s, 0, sizeof(*s));
	s->id = a.packet_id;
	s->count = a.count;
	while (mqtt_filters_next(&b, &pb, &fb)) {
		check(allowed(&fb.filter));
		/* The next of the device's filters that is this one. */
		for (;;) {
			check(mqtt_filters_next(&a, &pa, &fa));
			if (fa.entry.len == fb.entry.len && memcmp(fa.entry.p,
			    fb.entry.p, fb.entry.len) == 0)
				break;
			i++;
		}
		if (i < sizeof(s->allowed) * 8)
			s->allowed[i / 8] |= (uint8_t)(1u << i % 8);
		s->nallowed++;
		i++;
	}
	check(s->nallowed == b.count);
}

/* The broker grants what the rewritten SUBSCRIBE s asked, in guard_down. */
static void
broker_suback(struct guard *g, const struct sent *s, uint8_t level)
{
	struct guard_action act;
	struct mqtt_suback m;
	const char *why;
	uint8_t *codes, *pkt;
	size_t size, i, j = 0;

	size = mqtt_suback_size(level, 0, s->nallowed);
	check(size > 0);
	pkt = malloc(size);
	codes = malloc(s->nallowed);
	check(pkt != NULL && codes != NULL);
	for (i = 0; i < s->nallowed; i++)
		codes[i] = (uint8_t)(i % 3);
	check(mqtt_suback_encode(level, s->id, NULL, codes, s->nallowed, pkt,
	    size) == size);
	check(guard_wants_down(g, pkt, size) == 1);
	check(guard_down(g, pkt, size, &act) == GUARD_FORWARD_REWRITTEN);
	check_one(act.out, act.out_len, MQTT_PKT_SUBACK);
	check(mqtt_suback_read(act.out, act.out_len, level, &m, &why) ==
	    MQTT_OK);
	check(m.packet_id == s->id && m.codes.len == s->count);
	for (i = 0; i < s->count && s->count <= sizeof(s->allowed) * 8; i++)
		if (s->allowed[i / 8] & (1u << i % 8))
			check(m.codes.p[i] == codes[j++]);
		else
			check(m.codes.p[i] == (level == MQTT_LEVEL_5 ?
			    MQTT_RC_NOT_AUTHORIZED : MQTT_SUBACK_V3_FAILURE));
	check(guard_wants_down(g, pkt, size) == 0);
	free(codes);
	free(pkt);
}

/* A SUBACK in the stream: the broker's, through the down side. */
static void
down(struct guard *g, const uint8_t *pkt, size_t len, size_t cap)
{
	struct guard_action act;
	size_t n;
	int w = -1;

	for (n = 0; n <= len && w < 0; n++) {
		w = guard_wants_down(g, pkt, n);
		check(w >= 0 || n < 7);
	}
	check(w >= 0);
	if (w == 0)
		return;
	switch (guard_down(g, pkt, len, &act)) {
	case GUARD_FORWARD_REWRITTEN:
		check_one(act.out, act.out_len, MQTT_PKT_SUBACK);
		check(act.out_len <= len + cap);
		break;
	case GUARD_CLOSE:
		check(act.reason == CONN_CLOSE_BACKEND_ERROR);
		break;
	default:
		check(0);
	}
}

/* The verdict's promises for one device packet. */
static void
check_action(struct guard *g, const struct guard_action *act,
    const uint8_t *pkt, size_t len, size_t cap, int policy, int at_once)
{
	uint8_t type = pkt[0] >> 4;
	struct sent s;

	check(act->is_publish == (type == MQTT_PKT_PUBLISH));
	if (policy && type == MQTT_PKT_PUBLISH)
		check_publish(g, act, pkt, len);
	switch (act->verdict) {
	case GUARD_FORWARD:
		check(act->out == NULL);
		if (policy && type == MQTT_PKT_SUBSCRIBE)
			check_subscribe_out(g->level, pkt, len, pkt, len, &s);
		check(type != MQTT_PKT_CONNECT && type != MQTT_PKT_AUTH);
		break;
	case GUARD_FORWARD_REWRITTEN:
		check(policy && type == MQTT_PKT_SUBSCRIBE);
		check(act->out_len <= len && act->out_len <= cap);
		check_subscribe_out(g->level, pkt, len, act->out, act->out_len,
		    &s);
		check(s.nallowed < s.count);
		if (at_once)
			broker_suback(g, &s, g->level);
		break;
	case GUARD_ANSWER:
		check(policy && act->out != NULL);
		check(act->out_len <= len || act->out_len <= MQTT_ACK_MAX);
		check(act->out[0] >> 4 == MQTT_PKT_SUBACK ||
		    act->out[0] >> 4 == MQTT_PKT_PUBACK ||
		    act->out[0] >> 4 == MQTT_PKT_PUBREC ||
		    act->out[0] >> 4 == MQTT_PKT_PUBCOMP);
		check_one(act->out, act->out_len, act->out[0] >> 4);
		break;
	case GUARD_DROP:
		check(policy && type == MQTT_PKT_PUBLISH && act->qos == 0);
		check(act->out == NULL);
		break;
	case GUARD_CLOSE:
		check(act->reason != CONN_CLOSE_NONE && act->detail != NULL);
		check(act->disconnect == (g->level == MQTT_LEVEL_5));
		break;
	}
	check(g->npending <= GUARD_PENDING_MAX);
	check(g->nanswered <= GUARD_ANSWERED_MAX);
	check(g->alias_words * sizeof(uint64_t) <= ALIAS_TABLE_MAX);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t levels[] = { MQTT_LEVEL_31, MQTT_LEVEL_311,
	    MQTT_LEVEL_5, MQTT_LEVEL_5 };
	struct guard_policy pol = { toy, toy, NULL, 0, 0 };
	struct guard_action act;
	struct mqtt_frame f;
	struct guard g;
	const char *why;
	enum mqtt_status st;
	size_t cap, off = 0;
	int policy, at_once;
	uint8_t *pkt;

	if (size < 2)
		return (0);
	pol.drop_denied = (data[0] >> 2) & 1;
	policy = !((data[0] >> 3) & 1);
	at_once = (data[0] >> 4) & 1;
	pol.alias_max = (uint16_t)((data[0] >> 5) * ALIAS_UNIT);
	if (!policy)
		pol.may_publish = pol.may_subscribe = NULL;
	cap = data[1] == 0 ? CAP_NONE : (size_t)data[1] * CAP_UNIT;
	memset(broker_alias, BIND_NONE, sizeof(broker_alias));
	memset(device_alias, BIND_NONE, sizeof(device_alias));
	guard_init(&g, levels[data[0] & 3], &pol);
	data += 2;
	size -= 2;

	while ((st = mqtt_frame(data + off, size - off, cap, &f, &why)) ==
	    MQTT_OK) {
		/* An exact copy: ASan sees any read past the packet. */
		pkt = malloc(f.total);
		check(pkt != NULL);
		memcpy(pkt, data + off, f.total);
		off += f.total;
		if (f.type == MQTT_PKT_SUBACK) {
			down(&g, pkt, f.total, cap);
		} else {
			check(guard_up(&g, pkt, f.total, &act) ==
			    act.verdict);
			check_action(&g, &act, pkt, f.total, cap, policy,
			    at_once);
		}
		free(pkt);
		if (g.closed)
			break;
	}
	if (g.closed) {
		check(guard_up(&g, data, 0, &act) == GUARD_CLOSE);
	} else if (st == MQTT_TOO_LARGE || st == MQTT_MALFORMED) {
		check(guard_up_refuse_frame(&g, st, why, &act) ==
		    GUARD_CLOSE);
		check(act.reason == (st == MQTT_TOO_LARGE ?
		    CONN_CLOSE_PACKET_TOO_LARGE : CONN_CLOSE_PACKET_MALFORMED));
	}
	guard_release(&g);
	return (0);
}
