/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/core/guard.c, the per-connection topic guard on the
 * device's stream after its CONNECT. A toy policy allows topics and
 * filters under "ok/" and refuses the rest. Every rule has its case: the
 * second CONNECT and AUTH, refused PUBLISH per version and per
 * on_denied_publish (with the PUBREL moat answers itself), MQTT 5 topic
 * aliases (the smuggling sequence among them), SUBSCRIBE split and its
 * SUBACK merged back for 3.1.1 and 5, the caps, malformed packets, and
 * the policy switched off. Packets are built in buffers of exactly their
 * size, so an AddressSanitizer build catches a read past them.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moat/guard.h"
#include "moat/mqtt.h"
#include "moat/reason.h"

#define L311 MQTT_LEVEL_311
#define L5   MQTT_LEVEL_5
#define NO_ALIAS (-1)

TestSuite(guard);

/* --- the toy policy ----------------------------------------------------- */

struct toy {
	int calls;
	int yes;                    /* what "allowed" is answered with */
};

static int
ok_prefix(void *ctx, const uint8_t *s, size_t len)
{
	struct toy *t = ctx;

	t->calls++;
	return (len >= 3 && memcmp(s, "ok/", 3) == 0 ? t->yes : 0);
}

static struct toy toy;

/* A guard for level with the toy policy (drop: on_denied_publish). */
static void
setup(struct guard *g, uint8_t level, int drop)
{
	struct guard_policy pol = { ok_prefix, ok_prefix, &toy, drop, 0 };

	toy.calls = 0;
	toy.yes = 1;
	guard_init(g, level, &pol);
}

/* --- building packets ---------------------------------------------------- */

struct pb {
	uint8_t b[4096];
	size_t len;
};

static void
put(struct pb *p, const void *d, size_t n)
{
	cr_assert_leq(p->len + n, sizeof(p->b));
	if (n > 0)
		memcpy(p->b + p->len, d, n);
	p->len += n;
}

static void
put8(struct pb *p, uint8_t v)
{
	put(p, &v, 1);
}

static void
put16(struct pb *p, size_t v)
{
	put8(p, (uint8_t)(v >> 8));
	put8(p, (uint8_t)v);
}

static void
putstr(struct pb *p, const char *s)
{
	put16(p, strlen(s));
	put(p, s, strlen(s));
}

/* A packet in a malloc'd buffer of exactly its size: first byte, body. */
static uint8_t *
wrap(uint8_t first, const struct pb *body, size_t *len)
{
	uint8_t *out, hdr[5];
	size_t n = 0, v = body->len;

	hdr[n++] = first;
	do {
		hdr[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			hdr[n] |= 0x80;
		n++;
	} while (v != 0);
	*len = n + body->len;
	out = malloc(*len);
	cr_assert_not_null(out);
	memcpy(out, hdr, n);
	memcpy(out + n, body->b, body->len);
	return (out);
}

/* Bytes in a malloc'd buffer of exactly their size. */
static uint8_t *
exact(const uint8_t *b, size_t n)
{
	uint8_t *out = malloc(n);

	cr_assert_not_null(out);
	memcpy(out, b, n);
	return (out);
}

/* A PUBLISH: topic (may be ""), QoS, packet id, alias or NO_ALIAS. */
static uint8_t *
publish(uint8_t level, const char *topic, int qos, uint16_t id, int alias,
    size_t *len)
{
	struct pb p = { .len = 0 };

	putstr(&p, topic);
	if (qos > 0)
		put16(&p, id);
	if (level == L5) {
		if (alias == NO_ALIAS)
			put8(&p, 0);
		else {
			put8(&p, 3);
			put8(&p, MQTT_PROP_TOPIC_ALIAS);
			put16(&p, (size_t)alias);
		}
	}
	put(&p, "payload", 7);
	return (wrap((uint8_t)(MQTT_PKT_PUBLISH << 4 | qos << 1), &p, len));
}

/* A SUBSCRIBE of n filters (options = QoS 1), v5 with props[0..np). */
static uint8_t *
subscribe(uint8_t level, uint16_t id, const char *const *f, size_t n,
    const uint8_t *props, size_t np, size_t *len)
{
	struct pb p = { .len = 0 };
	size_t i;

	put16(&p, id);
	if (level == L5) {
		put8(&p, (uint8_t)np);
		put(&p, props, np);
	}
	for (i = 0; i < n; i++) {
		putstr(&p, f[i]);
		put8(&p, 1);
	}
	return (wrap(MQTT_PKT_SUBSCRIBE << 4 | 0x02, &p, len));
}

/* Run guard_up on a packet and free it; the verdict. */
static enum guard_verdict
up(struct guard *g, uint8_t *pkt, size_t len, struct guard_action *act)
{
	enum guard_verdict v = guard_up(g, pkt, len, act);

	cr_assert_eq(v, act->verdict);
	free(pkt);
	return (v);
}

static void
want_bytes(const struct guard_action *act, const uint8_t *want, size_t n,
    const char *what)
{
	size_t i;

	cr_assert_not_null(act->out, "%s: no bytes", what);
	cr_assert_eq(act->out_len, n, "%s: %zu bytes, want %zu", what,
	    act->out_len, n);
	for (i = 0; i < n; i++)
		cr_assert_eq(act->out[i], want[i], "%s: byte %zu is %02x, "
		    "want %02x", what, i, act->out[i], want[i]);
}

#define BYTES(...) (const uint8_t[]){ __VA_ARGS__ },                    \
	sizeof((const uint8_t[]){ __VA_ARGS__ })

static void
want_close(const struct guard_action *act, enum conn_reason r, int disc,
    uint8_t rc)
{
	cr_assert_eq(act->verdict, GUARD_CLOSE);
	cr_assert_eq(act->reason, r, "reason %s, want %s",
	    conn_reason_name(act->reason), conn_reason_name(r));
	cr_assert_eq(act->disconnect, disc);
	if (disc)
		cr_assert_eq(act->rc, rc, "rc %02x, want %02x", act->rc, rc);
	cr_assert(act->detail != NULL && act->detail[0] != '\0');
	cr_assert_null(act->out);
}

/* --- packets that pass ---------------------------------------------------- */

Test(guard, other_packets_pass_byte_for_byte)
{
	static const uint8_t pkts[][5] = {
		{ 0xc0, 0x00 },                         /* PINGREQ */
		{ 0x40, 0x02, 0x00, 0x01 },             /* PUBACK */
		{ 0x50, 0x02, 0x00, 0x01 },             /* PUBREC */
		{ 0x62, 0x02, 0x00, 0x01 },             /* PUBREL */
		{ 0x70, 0x02, 0x00, 0x01 },             /* PUBCOMP */
		{ 0xe0, 0x00 },                         /* DISCONNECT */
		{ 0xe0, 0x01, 0x00 },                   /* v5 DISCONNECT */
		{ 0x20, 0x02, 0x00, 0x00 },             /* CONNACK */
	};
	static const size_t lens[] = { 2, 4, 4, 4, 4, 2, 3, 4 };
	struct guard_action act;
	struct guard g;
	size_t i, lv;

	for (lv = L311; lv <= L5; lv++) {
		setup(&g, (uint8_t)lv, 0);
		for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			cr_assert_eq(up(&g, exact(pkts[i], lens[i]), lens[i],
			    &act), GUARD_FORWARD, "packet %zu", i);
			cr_assert_null(act.out);
			cr_assert_eq(act.refused, GUARD_KIND_NONE);
			cr_assert_eq(act.is_publish, 0);
		}
		cr_assert_eq(guard_refused_total(&g), 0);
		guard_release(&g);
	}
}

Test(guard, allowed_publish_and_subscribe_forwarded)
{
	static const char *const f[] = { "ok/a", "ok/+/b", "ok/#" };
	struct guard_action act;
	struct guard g;
	size_t len, lv;
	uint8_t *p;

	for (lv = L311; lv <= L5; lv++) {
		setup(&g, (uint8_t)lv, 0);
		p = publish((uint8_t)lv, "ok/t", 1, 5, NO_ALIAS, &len);
		cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD);
		cr_assert(act.is_publish && act.qos == 1 &&
		    act.publish_bytes == 7);
		p = subscribe((uint8_t)lv, 9, f, 3, NULL, 0, &len);
		cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD);
		cr_assert_eq(guard_wants_down(&g, NULL, 0), 0,
		    "nothing to merge");
		cr_assert_eq(toy.calls, 4);
		guard_release(&g);
	}
}

/* --- CONNECT and AUTH ---------------------------------------------------- */

static const uint8_t connect311[] = { 0x10, 0x0d, 0x00, 0x04, 'M', 'Q', 'T',
	'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x01, 'c' };

Test(guard, second_connect_closes)
{
	struct guard_action act;
	struct guard g;

	setup(&g, L5, 0);
	up(&g, exact(connect311, sizeof(connect311)), sizeof(connect311),
	    &act);
	want_close(&act, CONN_CLOSE_PROTOCOL_ERROR, 1,
	    MQTT_RC_PROTOCOL_ERROR);
	cr_assert_eq(act.refused, GUARD_KIND_CONNECT);
	cr_assert_eq(g.refused[GUARD_KIND_CONNECT], 1);
	/* Closed for good: even a PINGREQ closes now. */
	up(&g, exact(BYTES(0xc0, 0x00)), 2, &act);
	want_close(&act, CONN_CLOSE_PROTOCOL_ERROR, 1,
	    MQTT_RC_PROTOCOL_ERROR);
	guard_release(&g);

	setup(&g, L311, 1);
	up(&g, exact(connect311, sizeof(connect311)), sizeof(connect311),
	    &act);
	want_close(&act, CONN_CLOSE_PROTOCOL_ERROR, 0, 0);
	guard_release(&g);

	/* A CONNECT is refused whatever it looks like. */
	setup(&g, L311, 0);
	up(&g, exact(BYTES(0x10, 0x00)), 2, &act);
	want_close(&act, CONN_CLOSE_PROTOCOL_ERROR, 0, 0);
	guard_release(&g);
}

Test(guard, auth_closes)
{
	struct guard_action act;
	struct guard g;

	setup(&g, L5, 0);
	up(&g, exact(BYTES(0xf0, 0x02, 0x19, 0x00)), 4, &act);
	want_close(&act, CONN_CLOSE_AUTH_METHOD_REFUSED, 1,
	    MQTT_RC_BAD_AUTH_METHOD);
	cr_assert_eq(act.refused, GUARD_KIND_AUTH);
	guard_release(&g);

	setup(&g, L5, 0);
	up(&g, exact(BYTES(0xf0, 0x00)), 2, &act);
	want_close(&act, CONN_CLOSE_AUTH_METHOD_REFUSED, 1,
	    MQTT_RC_BAD_AUTH_METHOD);
	guard_release(&g);

	/* Type 15 does not exist before MQTT 5. */
	setup(&g, L311, 0);
	up(&g, exact(BYTES(0xf0, 0x00)), 2, &act);
	want_close(&act, CONN_CLOSE_PACKET_MALFORMED, 0, 0);
	cr_assert_eq(act.refused, GUARD_KIND_MALFORMED);
	guard_release(&g);
}

/* --- refused PUBLISH ------------------------------------------------------ */

Test(guard, publish_refused_mqtt5)
{
	struct guard_action act;
	struct guard g;
	size_t len;
	uint8_t *p;

	setup(&g, L5, 0);
	p = publish(L5, "no/t", 0, 0, NO_ALIAS, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_DROP);
	cr_assert(act.is_publish && act.publish_bytes == 7);
	cr_assert_eq(act.refused, GUARD_KIND_PUBLISH);
	cr_assert(act.topic.len == 4);

	p = publish(L5, "no/t", 1, 0x0102, NO_ALIAS, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_ANSWER);
	want_bytes(&act, BYTES(0x40, 0x03, 0x01, 0x02, 0x87), "PUBACK 0x87");

	p = publish(L5, "no/t", 2, 0x0103, NO_ALIAS, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_ANSWER);
	want_bytes(&act, BYTES(0x50, 0x03, 0x01, 0x03, 0x87), "PUBREC 0x87");
	/* The flow ends at a PUBREC >= 0x80: a PUBREL is the broker's. */
	cr_assert_eq(up(&g, exact(BYTES(0x62, 0x02, 0x01, 0x03)), 4, &act),
	    GUARD_FORWARD);
	cr_assert_eq(g.refused[GUARD_KIND_PUBLISH], 3);
	cr_assert_eq(guard_refused_total(&g), 3);
	guard_release(&g);
}

Test(guard, publish_refused_311_disconnect)
{
	struct guard_action act;
	struct guard g;
	size_t len, qos;
	uint8_t *p;

	for (qos = 0; qos <= 2; qos++) {
		setup(&g, L311, 0);
		p = publish(L311, "no/t", (int)qos, 4, NO_ALIAS, &len);
		up(&g, p, len, &act);
		want_close(&act, CONN_CLOSE_TOPIC_REFUSED, 0, 0);
		cr_assert(act.is_publish && act.refused == GUARD_KIND_PUBLISH);
		guard_release(&g);
	}
}

Test(guard, publish_refused_311_drop)
{
	struct guard_action act;
	struct guard g;
	size_t len;
	uint8_t *p;

	setup(&g, L311, 1);
	p = publish(L311, "no/t", 0, 0, NO_ALIAS, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_DROP);
	p = publish(L311, "no/t", 1, 0x0a0b, NO_ALIAS, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_ANSWER);
	want_bytes(&act, BYTES(0x40, 0x02, 0x0a, 0x0b), "PUBACK");
	p = publish(L311, "no/t", 2, 0x0a0c, NO_ALIAS, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_ANSWER);
	want_bytes(&act, BYTES(0x50, 0x02, 0x0a, 0x0c), "PUBREC");

	/* Another PUBREL goes to the broker; this one is moat's. */
	cr_assert_eq(up(&g, exact(BYTES(0x62, 0x02, 0x0a, 0x0d)), 4, &act),
	    GUARD_FORWARD);
	cr_assert_eq(up(&g, exact(BYTES(0x62, 0x02, 0x0a, 0x0c)), 4, &act),
	    GUARD_ANSWER);
	want_bytes(&act, BYTES(0x70, 0x02, 0x0a, 0x0c), "PUBCOMP");
	cr_assert_eq(act.refused, GUARD_KIND_NONE);
	/* Answered once: a repeated PUBREL is the broker's again. */
	cr_assert_eq(up(&g, exact(BYTES(0x62, 0x02, 0x0a, 0x0c)), 4, &act),
	    GUARD_FORWARD);
	cr_assert_eq(g.refused[GUARD_KIND_PUBLISH], 3);
	guard_release(&g);
}

/* An allowed QoS 2 PUBLISH takes its identifier back from moat. */
Test(guard, publish_qos2_allowed_reuses_the_identifier)
{
	struct guard_action act;
	struct guard g;
	size_t len;
	uint8_t *p;

	setup(&g, L311, 1);
	p = publish(L311, "no/t", 2, 3, NO_ALIAS, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_ANSWER);
	p = publish(L311, "ok/t", 2, 3, NO_ALIAS, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD);
	cr_assert_eq(up(&g, exact(BYTES(0x62, 0x02, 0x00, 0x03)), 4, &act),
	    GUARD_FORWARD);
	guard_release(&g);
}

/* Past GUARD_ANSWERED_MAX the oldest identifier is forgotten. */
Test(guard, publish_answered_cap)
{
	struct guard_action act;
	struct guard g;
	size_t len, i;
	uint8_t *p;

	setup(&g, L311, 1);
	for (i = 1; i <= GUARD_ANSWERED_MAX + 1; i++) {
		p = publish(L311, "no/t", 2, (uint16_t)i, NO_ALIAS, &len);
		cr_assert_eq(up(&g, p, len, &act), GUARD_ANSWER);
	}
	cr_assert_eq(g.nanswered, GUARD_ANSWERED_MAX);
	cr_assert_eq(up(&g, exact(BYTES(0x62, 0x02, 0x00, 0x01)), 4, &act),
	    GUARD_FORWARD, "the oldest was forgotten");
	for (i = 2; i <= GUARD_ANSWERED_MAX + 1; i++)
		cr_assert_eq(up(&g, exact(BYTES(0x62, 0x02, 0x00,
		    (uint8_t)i)), 4, &act), GUARD_ANSWER, "id %zu", i);
	guard_release(&g);
}

/* A callback answer other than 1 refuses (fail closed). */
Test(guard, only_one_allows)
{
	struct guard_action act;
	struct guard g;
	size_t len;
	uint8_t *p;

	setup(&g, L5, 0);
	toy.yes = -1;
	p = publish(L5, "ok/t", 0, 0, NO_ALIAS, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_DROP);
	toy.yes = 2;
	p = publish(L5, "ok/t", 0, 0, NO_ALIAS, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_DROP);
	guard_release(&g);
}

/* --- malformed packets ----------------------------------------------------- */

Test(guard, malformed_packets_close)
{
	static const struct {
		const char *name;
		uint8_t level;
		uint8_t b[16];
		size_t n;
	} rows[] = {
		{ "wildcard topic", L311, { 0x30, 0x04, 0x00, 0x01, '#', 'x' },
		    6 },
		{ "DUP at QoS 0", L311, { 0x38, 0x04, 0x00, 0x01, 'a', 'x' },
		    6 },
		{ "packet id 0", L5, { 0x32, 0x06, 0x00, 0x01, 'a', 0x00, 0x00,
		    0x00 }, 8 },
		{ "bad UTF-8 topic", L311, { 0x30, 0x03, 0x00, 0x01, 0xff }, 5 },
		{ "v5 property crosses the list", L5, { 0x30, 0x06, 0x00, 0x01,
		    'a', 0x02, 0x23, 0x00 }, 8 },
		{ "v5 empty topic, no alias", L5, { 0x30, 0x03, 0x00, 0x00,
		    0x00 }, 5 },
		{ "SUBSCRIBE without filters", L311, { 0x82, 0x02, 0x00,
		    0x01 }, 4 },
		{ "SUBSCRIBE reserved option bits", L311, { 0x82, 0x06, 0x00,
		    0x01, 0x00, 0x01, 'a', 0x04 }, 8 },
		{ "UNSUBSCRIBE without filters", L5, { 0xa2, 0x03, 0x00,
		    0x01, 0x00 }, 5 },
		{ "bytes after the packet", L311, { 0xc0, 0x00, 0xc0, 0x00 },
		    4 },
		{ "cut short", L311, { 0x30, 0x05, 0x00, 0x01, 'a' }, 5 },
		{ "reserved type 0", L311, { 0x00, 0x00 }, 2 },
	};
	struct guard_action act;
	struct guard g;
	size_t i;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		setup(&g, rows[i].level, 1);
		up(&g, exact(rows[i].b, rows[i].n), rows[i].n, &act);
		cr_assert_eq(act.verdict, GUARD_CLOSE, "%s", rows[i].name);
		want_close(&act, CONN_CLOSE_PACKET_MALFORMED,
		    rows[i].level == L5, MQTT_RC_MALFORMED_PACKET);
		cr_assert_eq(g.refused[GUARD_KIND_MALFORMED], 1);
		guard_release(&g);
	}
}

Test(guard, framer_refusals_close)
{
	struct guard_action act;
	struct guard g;

	setup(&g, L5, 0);
	cr_assert_eq(guard_up_refuse_frame(&g, MQTT_TOO_LARGE, "big", &act),
	    GUARD_CLOSE);
	want_close(&act, CONN_CLOSE_PACKET_TOO_LARGE, 1,
	    MQTT_RC_PACKET_TOO_LARGE);
	cr_assert_eq(g.refused[GUARD_KIND_TOO_LARGE], 1);
	guard_release(&g);
	setup(&g, L311, 0);
	guard_up_refuse_frame(&g, MQTT_MALFORMED, NULL, &act);
	want_close(&act, CONN_CLOSE_PACKET_MALFORMED, 0, 0);
	guard_release(&g);
}

/* --- topic aliases ------------------------------------------------------- */

/* Issue 10, acceptance 3: an alias cannot smuggle a refused topic. */
Test(guard, alias_smuggling)
{
	struct guard_action act;
	struct guard g;
	size_t len;
	uint8_t *p;

	setup(&g, L5, 0);
	p = publish(L5, "ok/t", 1, 1, 1, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD, "bind allowed");
	p = publish(L5, "", 1, 2, 1, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD, "use allowed");
	p = publish(L5, "no/t", 1, 3, 1, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_ANSWER, "rebind refused");
	want_bytes(&act, BYTES(0x40, 0x03, 0x00, 0x03, 0x87), "PUBACK");
	p = publish(L5, "", 1, 4, 1, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_ANSWER, "use refused");
	want_bytes(&act, BYTES(0x40, 0x03, 0x00, 0x04, 0x87), "PUBACK");
	cr_assert_eq(act.topic.len, 0);
	p = publish(L5, "", 0, 0, 1, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_DROP, "use refused, QoS 0");
	/* The device binds it again to an allowed topic: usable again. */
	p = publish(L5, "ok/u", 0, 0, 1, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD);
	p = publish(L5, "", 2, 5, 1, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD);
	cr_assert_eq(g.refused[GUARD_KIND_PUBLISH], 3);
	guard_release(&g);
}

/* A refused first binding leaves the alias bound, and refused. */
Test(guard, alias_refused_binding)
{
	struct guard_action act;
	struct guard g;
	size_t len;
	uint8_t *p;

	setup(&g, L5, 0);
	p = publish(L5, "no/t", 0, 0, 200, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_DROP);
	p = publish(L5, "", 0, 0, 200, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_DROP);
	/* Other aliases in the same word are untouched. */
	p = publish(L5, "", 0, 0, 201, &len);
	up(&g, p, len, &act);
	want_close(&act, CONN_CLOSE_PROTOCOL_ERROR, 1,
	    MQTT_RC_PROTOCOL_ERROR);
	guard_release(&g);
}

Test(guard, alias_errors_close)
{
	struct guard_policy pol = { ok_prefix, ok_prefix, &toy, 0, 10 };
	struct guard_action act;
	struct guard g;
	size_t len;
	uint8_t *p;

	setup(&g, L5, 0);
	p = publish(L5, "", 0, 0, 1, &len);
	up(&g, p, len, &act);
	want_close(&act, CONN_CLOSE_PROTOCOL_ERROR, 1,
	    MQTT_RC_PROTOCOL_ERROR);
	cr_assert_eq(act.refused, GUARD_KIND_PROTOCOL);
	guard_release(&g);

	setup(&g, L5, 0);
	p = publish(L5, "ok/t", 0, 0, 0, &len);
	up(&g, p, len, &act);
	want_close(&act, CONN_CLOSE_PROTOCOL_ERROR, 1,
	    MQTT_RC_TOPIC_ALIAS_INVALID);
	guard_release(&g);

	guard_init(&g, L5, &pol);
	p = publish(L5, "ok/t", 0, 0, 10, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD);
	p = publish(L5, "ok/t", 0, 0, 11, &len);
	up(&g, p, len, &act);
	want_close(&act, CONN_CLOSE_PROTOCOL_ERROR, 1,
	    MQTT_RC_TOPIC_ALIAS_INVALID);
	guard_release(&g);
}

/* The table grows with the highest alias, and no further than the cap. */
Test(guard, alias_table_size)
{
	struct guard_action act;
	struct guard g;
	size_t len;
	uint8_t *p;

	setup(&g, L5, 0);
	cr_assert_null(g.alias);
	p = publish(L5, "ok/t", 0, 0, 3, &len);
	up(&g, p, len, &act);
	cr_assert_eq(g.alias_words, 1, "%zu words", g.alias_words);
	p = publish(L5, "ok/t", 0, 0, 65535, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD);
	cr_assert_leq(g.alias_words * sizeof(uint64_t), 16 * 1024);
	p = publish(L5, "", 0, 0, 65535, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD);
	p = publish(L5, "", 0, 0, 3, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD, "kept on growth");
	guard_release(&g);
	guard_release(&g);
	guard_release(NULL);
}

/* --- SUBSCRIBE and the SUBACK merge ---------------------------------------- */

static const char *const three[] = { "ok/a", "no/b", "ok/c" };

/* Issue 10, acceptance 2, in 3.1.1: three filters, the middle refused. */
Test(guard, suback_merge_311)
{
	static const uint8_t suback[] = { 0x90, 0x04, 0x12, 0x34, 0x01, 0x00 };
	struct guard_action act;
	struct guard g;
	size_t len, n;
	uint8_t *p;

	setup(&g, L311, 0);
	p = subscribe(L311, 0x1234, three, 3, NULL, 0, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD_REWRITTEN);
	want_bytes(&act, BYTES(0x82, 0x10, 0x12, 0x34,
	    0x00, 0x04, 'o', 'k', '/', 'a', 0x01,
	    0x00, 0x04, 'o', 'k', '/', 'c', 0x01), "rewritten SUBSCRIBE");
	cr_assert(act.refused == GUARD_KIND_SUBSCRIBE && act.nrefused == 1);

	for (n = 0; n < 4; n++)
		cr_assert_eq(guard_wants_down(&g, suback, n), -1, "n %zu", n);
	cr_assert_eq(guard_wants_down(&g, suback, 4), 1);
	cr_assert_eq(guard_wants_down(&g, BYTES(0x90, 0x03, 0x12, 0x35)), 0,
	    "another identifier");
	cr_assert_eq(guard_wants_down(&g, BYTES(0x30, 0x03)), 0, "PUBLISH");
	cr_assert_eq(guard_wants_down(&g, BYTES(0xb0, 0x02, 0x12, 0x34)), 0,
	    "UNSUBACK");

	p = exact(suback, sizeof(suback));
	cr_assert_eq(guard_down(&g, p, sizeof(suback), &act),
	    GUARD_FORWARD_REWRITTEN);
	free(p);
	want_bytes(&act, BYTES(0x90, 0x05, 0x12, 0x34, 0x01, 0x80, 0x00),
	    "merged SUBACK");
	cr_assert_eq(guard_wants_down(&g, suback, 4), 0, "merged once");
	p = exact(suback, sizeof(suback));
	cr_assert_eq(guard_down(&g, p, sizeof(suback), &act), GUARD_FORWARD);
	free(p);
	guard_release(&g);
}

/* The same in MQTT 5, with properties on both sides. */
Test(guard, suback_merge_5)
{
	static const uint8_t subprops[] = { MQTT_PROP_SUBSCRIPTION_ID, 0x05 };
	static const uint8_t suback[] = { 0x90, 0x0a, 0x00, 0x07, 0x05,
	    0x1f, 0x00, 0x02, 'o', 'k', 0x02, 0x01 };
	struct guard_action act;
	struct guard g;
	size_t len;
	uint8_t *p;

	setup(&g, L5, 0);
	p = subscribe(L5, 7, three, 3, subprops, 2, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD_REWRITTEN);
	want_bytes(&act, BYTES(0x82, 0x13, 0x00, 0x07, 0x02, 0x0b, 0x05,
	    0x00, 0x04, 'o', 'k', '/', 'a', 0x01,
	    0x00, 0x04, 'o', 'k', '/', 'c', 0x01), "rewritten SUBSCRIBE");
	cr_assert_eq(guard_wants_down(&g, suback, 4), 1);
	p = exact(suback, sizeof(suback));
	cr_assert_eq(guard_down(&g, p, sizeof(suback), &act),
	    GUARD_FORWARD_REWRITTEN);
	free(p);
	want_bytes(&act, BYTES(0x90, 0x0b, 0x00, 0x07, 0x05,
	    0x1f, 0x00, 0x02, 'o', 'k', 0x02, 0x87, 0x01), "merged SUBACK");
	guard_release(&g);
}

Test(guard, subscribe_all_refused_answered)
{
	static const char *const f[] = { "#", "no/x", "$SYS/#" };
	struct guard_action act;
	struct guard g;
	size_t len;
	uint8_t *p;

	setup(&g, L311, 0);
	p = subscribe(L311, 3, f, 3, NULL, 0, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_ANSWER);
	want_bytes(&act, BYTES(0x90, 0x05, 0x00, 0x03, 0x80, 0x80, 0x80),
	    "SUBACK");
	cr_assert_eq(act.nrefused, 3);
	cr_assert_eq(g.refused[GUARD_KIND_SUBSCRIBE], 3);
	cr_assert_eq(guard_wants_down(&g, BYTES(0x90, 0x03, 0x00, 0x03)), 0);
	guard_release(&g);

	setup(&g, L5, 0);
	p = subscribe(L5, 3, f, 1, NULL, 0, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_ANSWER);
	want_bytes(&act, BYTES(0x90, 0x04, 0x00, 0x03, 0x00, 0x87), "SUBACK");
	guard_release(&g);
}

/* Over GUARD_PENDING_MAX moat answers the SUBSCRIBE itself. */
Test(guard, subscribe_pending_cap)
{
	struct guard_action act;
	struct guard g;
	size_t len, i, lv;
	uint8_t *p;

	for (lv = L311; lv <= L5; lv++) {
		setup(&g, (uint8_t)lv, 0);
		for (i = 1; i <= GUARD_PENDING_MAX; i++) {
			p = subscribe((uint8_t)lv, (uint16_t)i, three, 3,
			    NULL, 0, &len);
			cr_assert_eq(up(&g, p, len, &act),
			    GUARD_FORWARD_REWRITTEN);
		}
		p = subscribe((uint8_t)lv, 100, three, 3, NULL, 0, &len);
		cr_assert_eq(up(&g, p, len, &act), GUARD_ANSWER);
		if (lv == L5)
			want_bytes(&act, BYTES(0x90, 0x06, 0x00, 0x64, 0x00,
			    0x97, 0x87, 0x97), "SUBACK, quota exceeded");
		else
			want_bytes(&act, BYTES(0x90, 0x05, 0x00, 0x64, 0x80,
			    0x80, 0x80), "SUBACK");
		cr_assert_eq(g.npending, GUARD_PENDING_MAX);
		/* An allowed SUBSCRIBE needs no room: still forwarded. */
		p = subscribe((uint8_t)lv, 101, three, 1, NULL, 0, &len);
		cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD);
		guard_release(&g);
	}
}

Test(guard, subscribe_reusing_a_pending_identifier_closes)
{
	struct guard_action act;
	struct guard g;
	size_t len;
	uint8_t *p;

	setup(&g, L5, 0);
	p = subscribe(L5, 7, three, 3, NULL, 0, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD_REWRITTEN);
	p = subscribe(L5, 7, three, 1, NULL, 0, &len);
	up(&g, p, len, &act);
	want_close(&act, CONN_CLOSE_PROTOCOL_ERROR, 1,
	    MQTT_RC_PROTOCOL_ERROR);
	guard_release(&g);
}

Test(guard, suback_that_does_not_fit_closes)
{
	static const uint8_t three_codes[] = { 0x90, 0x05, 0x00, 0x07, 0x00,
	    0x00, 0x00 };
	static const uint8_t no_code[] = { 0x90, 0x02, 0x00, 0x07 };
	struct guard_action act;
	struct guard g;
	size_t len;
	uint8_t *p;

	setup(&g, L311, 0);
	p = subscribe(L311, 7, three, 3, NULL, 0, &len);
	up(&g, p, len, &act);
	p = exact(three_codes, sizeof(three_codes));
	guard_down(&g, p, sizeof(three_codes), &act);
	free(p);
	want_close(&act, CONN_CLOSE_BACKEND_ERROR, 0, 0);
	guard_release(&g);

	setup(&g, L311, 0);
	p = subscribe(L311, 7, three, 3, NULL, 0, &len);
	up(&g, p, len, &act);
	p = exact(no_code, sizeof(no_code));
	guard_down(&g, p, sizeof(no_code), &act);
	free(p);
	want_close(&act, CONN_CLOSE_BACKEND_ERROR, 0, 0);
	guard_release(&g);
}

/* Unsubscribing cannot widen access: any filter goes through. */
Test(guard, unsubscribe_forwarded)
{
	static const uint8_t unsub[] = { 0xa2, 0x05, 0x00, 0x02, 0x00, 0x01,
	    '#' };
	static const uint8_t unsub5[] = { 0xa2, 0x06, 0x00, 0x02, 0x00, 0x00,
	    0x01, '#' };
	struct guard_action act;
	struct guard g;

	setup(&g, L311, 0);
	cr_assert_eq(up(&g, exact(unsub, sizeof(unsub)), sizeof(unsub), &act),
	    GUARD_FORWARD);
	cr_assert_eq(toy.calls, 0);
	guard_release(&g);
	setup(&g, L5, 0);
	cr_assert_eq(up(&g, exact(unsub5, sizeof(unsub5)), sizeof(unsub5),
	    &act), GUARD_FORWARD);
	guard_release(&g);
}

/* --- the policy switched off -------------------------------------------- */

Test(guard, policy_off)
{
	static const char *const f[] = { "#" };
	static const uint8_t bad_pub[] = { 0x30, 0x04, 0x00, 0x01, '#', 'x' };
	static const uint8_t bad_sub[] = { 0x82, 0x02, 0x00, 0x01 };
	struct guard_action act;
	struct guard g;
	size_t len;
	uint8_t *p;

	guard_init(&g, L5, NULL);
	p = publish(L5, "no/t", 1, 1, 1, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD);
	cr_assert(act.is_publish && act.publish_bytes == 7);
	p = publish(L5, "", 1, 2, 9, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD, "unbound alias");
	cr_assert_eq(up(&g, exact(bad_pub, sizeof(bad_pub)), sizeof(bad_pub),
	    &act), GUARD_FORWARD, "malformed, left to the broker");
	cr_assert(act.is_publish && act.publish_bytes == 4);
	p = subscribe(L5, 3, f, 1, NULL, 0, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD);
	cr_assert_eq(up(&g, exact(bad_sub, sizeof(bad_sub)), sizeof(bad_sub),
	    &act), GUARD_FORWARD);
	cr_assert_eq(guard_refused_total(&g), 0);
	cr_assert_null(g.alias);
	/* CONNECT and AUTH are refused all the same. */
	up(&g, exact(BYTES(0xf0, 0x00)), 2, &act);
	want_close(&act, CONN_CLOSE_AUTH_METHOD_REFUSED, 1,
	    MQTT_RC_BAD_AUTH_METHOD);
	guard_release(&g);
	guard_init(&g, L311, NULL);
	up(&g, exact(connect311, sizeof(connect311)), sizeof(connect311),
	    &act);
	want_close(&act, CONN_CLOSE_PROTOCOL_ERROR, 0, 0);
	guard_release(&g);
}

/* Only one of the two checks on. */
Test(guard, policy_half_on)
{
	static const char *const f[] = { "#" };
	struct guard_policy pol = { NULL, ok_prefix, &toy, 0, 0 };
	struct guard_action act;
	struct guard g;
	size_t len;
	uint8_t *p;

	guard_init(&g, L311, &pol);
	p = publish(L311, "no/t", 1, 1, NO_ALIAS, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD);
	p = subscribe(L311, 3, f, 1, NULL, 0, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_ANSWER);
	guard_release(&g);
}

Test(guard, kind_names)
{
	cr_assert_str_eq(guard_kind_name(GUARD_KIND_PUBLISH), "publish");
	cr_assert_str_eq(guard_kind_name(GUARD_KIND_SUBSCRIBE), "subscribe");
	cr_assert_str_eq(guard_kind_name(GUARD_NKINDS), "?");
	cr_assert_str_eq(conn_reason_name(CONN_CLOSE_TOPIC_REFUSED),
	    "topic_refused");
	cr_assert_str_eq(conn_reason_name(CONN_CLOSE_PROTOCOL_ERROR),
	    "protocol_error");
	cr_assert_str_eq(conn_reason_name(CONN_CLOSE_PACKET_MALFORMED),
	    "packet_malformed");
	cr_assert_str_eq(conn_reason_name(CONN_CLOSE_PACKET_TOO_LARGE),
	    "packet_too_large");
}

/* Two merges waiting: the broker may answer them in any order. */
Test(guard, suback_merges_by_identifier)
{
	static const uint8_t ack2[] = { 0x90, 0x04, 0x00, 0x02, 0x01, 0x01 };
	static const uint8_t ack1[] = { 0x90, 0x04, 0x00, 0x01, 0x00, 0x02 };
	struct guard_action act;
	struct guard g;
	size_t len;
	uint8_t *p;

	setup(&g, L311, 0);
	p = subscribe(L311, 1, three, 3, NULL, 0, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD_REWRITTEN);
	p = subscribe(L311, 2, three, 3, NULL, 0, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD_REWRITTEN);
	cr_assert_eq(g.npending, 2);
	p = exact(ack2, sizeof(ack2));
	cr_assert_eq(guard_down(&g, p, sizeof(ack2), &act),
	    GUARD_FORWARD_REWRITTEN);
	free(p);
	want_bytes(&act, BYTES(0x90, 0x05, 0x00, 0x02, 0x01, 0x80, 0x01),
	    "second");
	p = exact(ack1, sizeof(ack1));
	cr_assert_eq(guard_down(&g, p, sizeof(ack1), &act),
	    GUARD_FORWARD_REWRITTEN);
	free(p);
	want_bytes(&act, BYTES(0x90, 0x05, 0x00, 0x01, 0x00, 0x80, 0x02),
	    "first");
	cr_assert_eq(g.npending, 0);
	cr_assert_null(g.pending);
	guard_release(&g);
}

/* Broken headers from the broker are not the guard's: passed on. */
Test(guard, wants_down_on_odd_headers)
{
	struct guard_action act;
	struct guard g;
	size_t len;
	uint8_t *p;

	setup(&g, L311, 0);
	p = subscribe(L311, 1, three, 3, NULL, 0, &len);
	up(&g, p, len, &act);
	cr_assert_eq(guard_wants_down(&g, BYTES(0x91, 0x02, 0x00, 0x01)), 0,
	    "flags");
	cr_assert_eq(guard_wants_down(&g, BYTES(0x90, 0x80, 0x80, 0x80, 0x80,
	    0x01)), 0, "length of five bytes");
	cr_assert_eq(guard_wants_down(&g, BYTES(0x90, 0x01, 0x00)), 0,
	    "no room for an identifier");
	cr_assert_eq(guard_wants_down(&g, BYTES(0x90, 0x80)), -1);
	cr_assert_eq(guard_wants_down(&g, BYTES(0x90, 0x80, 0x01, 0x00)), -1);
	cr_assert_eq(guard_wants_down(&g, BYTES(0x90, 0x80, 0x01, 0x00,
	    0x01)), 1);
	guard_release(&g);
}

/* A large rewrite's buffer is given back on the next call. */
Test(guard, large_answer_buffer_not_kept)
{
	static const char *many[100];
	struct guard_action act;
	struct guard g;
	size_t len, i;
	uint8_t *p;

	for (i = 0; i < 100; i++)
		many[i] = i % 2 ? "no/x" : "ok/x";
	setup(&g, L5, 0);
	p = subscribe(L5, 1, many, 100, NULL, 0, &len);
	cr_assert_eq(up(&g, p, len, &act), GUARD_FORWARD_REWRITTEN);
	cr_assert_eq(act.nrefused, 50);
	cr_assert_leq(act.out_len, len);
	cr_assert_gt(g.out_cap, 256);
	up(&g, exact(BYTES(0xc0, 0x00)), 2, &act);
	cr_assert_eq(g.out_cap, 0);
	cr_assert_null(g.out);
	guard_release(&g);
}
