/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/core/mqtt.c, the CONNECT codec that reads the first bytes
 * an unauthenticated device sends. Accepted CONNECTs of every version must
 * come back byte for byte after a parse and an encode; each rule of the
 * parser has a refused twin in the table of bad packets; a packet cut
 * anywhere is only ever "incomplete". The framer is checked for every
 * packet type and flag value, every remaining-length boundary and wrong
 * form, its cap, and a stream of packets. Every vector is copied into a buffer
 * of exactly its size, so an AddressSanitizer build catches a read past the
 * bytes the parser was given.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/mqtt.h"

#define MAX     MQTT_CONNECT_MAX_DEFAULT
#define BIGMAX  (4u * 1024 * 1024)

TestSuite(mqtt);

/* A byte array literal and its size, for the tables below. */
#define B(...) (const uint8_t[]){ __VA_ARGS__ },                        \
	sizeof((const uint8_t[]){ __VA_ARGS__ })

/* Building blocks of CONNECT bodies (everything after the fixed header). */
#define MQTT4   0x00, 0x04, 'M', 'Q', 'T', 'T'
#define MQISDP  0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'p'
#define KA      0x00, 0x3c
#define H31(f)  MQISDP, 0x03, (f), KA
#define H311(f) MQTT4, 0x04, (f), KA
#define H5(f)   MQTT4, 0x05, (f), KA
#define CID     0x00, 0x01, 'c'

/* --- helpers ---------------------------------------------------------- */

/* A growing byte buffer for building packets in the tests. */
struct pb {
	uint8_t *b;
	size_t len, cap;
};

static void
pb_put(struct pb *p, const void *d, size_t n)
{
	if (p->len + n > p->cap) {
		p->cap = (p->len + n) * 2 + 64;
		p->b = realloc(p->b, p->cap);
		cr_assert_not_null(p->b);
	}
	if (n > 0)
		memcpy(p->b + p->len, d, n);
	p->len += n;
}

static void
pb_u8(struct pb *p, uint8_t v)
{
	pb_put(p, &v, 1);
}

static void
pb_u16(struct pb *p, size_t v)
{
	pb_u8(p, (uint8_t)(v >> 8));
	pb_u8(p, (uint8_t)v);
}

static void
pb_varint(struct pb *p, size_t v)
{
	do {
		pb_u8(p, (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
		v >>= 7;
	} while (v != 0);
}

static void
pb_str(struct pb *p, const void *d, size_t n)
{
	pb_u16(p, n);
	pb_put(p, d, n);
}

static size_t
varint_size(size_t v)
{
	return (v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4);
}

/*
 * A CONNECT: 0x10, the remaining length (body plus `missing` bytes that
 * are announced but not present) and the body, in a malloc'd buffer of
 * exactly the size present. *len is that size.
 */
static uint8_t *
packet(const uint8_t *body, size_t n, size_t missing, size_t *len)
{
	struct pb p = { NULL, 0, 0 };
	uint8_t *out;

	pb_u8(&p, 0x10);
	pb_varint(&p, n + missing);
	pb_put(&p, body, n);
	*len = p.len;
	out = malloc(p.len);
	cr_assert_not_null(out);
	memcpy(out, p.b, p.len);
	free(p.b);
	return (out);
}

/* A copy of b[0..n) in a buffer of exactly n bytes. */
static uint8_t *
exact(const uint8_t *b, size_t n)
{
	uint8_t *out = malloc(n > 0 ? n : 1);

	cr_assert_not_null(out);
	if (n > 0)
		memcpy(out, b, n);
	return (out);
}

/* An expected view: NULL for "absent". */
struct want {
	const char *s;
	size_t n;
};
#define S(lit) { (lit), sizeof(lit) - 1 }
#define ABSENT { NULL, 0 }

static void
check_view(const char *test, const char *field, const struct mqtt_str *v,
    const struct want *w)
{
	if (w->s == NULL) {
		cr_assert_null(v->p, "%s: %s should be absent", test, field);
		cr_assert_eq(v->len, 0, "%s: %s length", test, field);
		return;
	}
	cr_assert_not_null(v->p, "%s: %s missing", test, field);
	cr_assert_eq(v->len, w->n, "%s: %s length %zu, want %zu", test,
	    field, v->len, w->n);
	cr_assert(memcmp(v->p, w->s, w->n) == 0, "%s: %s differs", test,
	    field);
}

/* Encode c, expecting exactly the bytes want[0..n). */
static void
encode_same(const char *test, const struct mqtt_connect *c,
    const uint8_t *want, size_t n)
{
	uint8_t *out;
	size_t sz, w;

	sz = mqtt_connect_size(c);
	cr_assert_eq(sz, n, "%s: size %zu, want %zu", test, sz, n);
	out = malloc(n + 1);
	cr_assert_not_null(out);
	cr_assert_eq(mqtt_connect_encode(c, out, n - 1), 0,
	    "%s: encoded into a buffer one byte short", test);
	w = mqtt_connect_encode(c, out, n);
	cr_assert_eq(w, n, "%s: encoded %zu bytes, want %zu", test, w, n);
	cr_assert(memcmp(out, want, n) == 0, "%s: re-encoding differs", test);
	free(out);
}

/* --- accepted CONNECTs and the round trip ------------------------------ */

struct good {
	const char *name;
	const uint8_t *body;
	size_t len;
	uint8_t level, flags;
	uint16_t keepalive;
	int has_auth;
	size_t props_len, will_props_len;
	struct want client_id, will_topic, will_payload, username, password;
};

/* MQTT 5 CONNECT properties, all of them but authentication. */
#define V5_PROPS                                                        \
	0x11, 0x00, 0x00, 0x0e, 0x10,           /* session expiry */    \
	0x21, 0x00, 0x0a,                       /* receive maximum */   \
	0x27, 0x00, 0x00, 0x10, 0x00,           /* max packet size */   \
	0x22, 0x00, 0x05,                       /* topic alias max */   \
	0x19, 0x01,                             /* request response */  \
	0x17, 0x00,                             /* request problem */   \
	0x26, 0x00, 0x01, 'a', 0x00, 0x01, 'b', /* user property */     \
	0x26, 0x00, 0x01, 'a', 0x00, 0x02, 'c', 'd'
#define V5_PROPS_LEN 35

/* MQTT 5 will properties, all of them. */
#define V5_WILL_PROPS                                                   \
	0x18, 0x00, 0x00, 0x00, 0x05,           /* will delay */        \
	0x01, 0x01,                             /* payload format */    \
	0x02, 0x00, 0x00, 0x00, 0x3c,           /* message expiry */    \
	0x03, 0x00, 0x0a, 't', 'e', 'x', 't', '/', 'p', 'l', 'a', 'i',  \
	'n',                                    /* content type */      \
	0x08, 0x00, 0x05, 'r', 'e', 'p', 'l', 'y', /* response topic */ \
	0x09, 0x00, 0x02, 0x01, 0x02,           /* correlation data */  \
	0x26, 0x00, 0x01, 'k', 0x00, 0x01, 'v'  /* user property */
#define V5_WILL_PROPS_LEN 45

static const struct good goods[] = {
	{ "3.1 minimal",
	  B(H31(0x02), 0x00, 0x05, 'd', 'e', 'v', '-', '1'),
	  3, 0x02, 60, 0, 0, 0,
	  S("dev-1"), ABSENT, ABSENT, ABSENT, ABSENT },
	{ "3.1 will, username, password",
	  B(H31(0xee), 0x00, 0x03, 'c', 'i', 'd', 0x00, 0x03, 'a', '/', 'b',
	    0x00, 0x04, 'g', 'o', 'n', 'e', 0x00, 0x04, 'u', 's', 'e', 'r',
	    0x00, 0x06, 's', 'e', 'c', 'r', 'e', 't'),
	  3, 0xee, 60, 0, 0, 0,
	  S("cid"), S("a/b"), S("gone"), S("user"), S("secret") },
	{ "3.1.1 minimal",
	  B(H311(0x02), 0x00, 0x03, 'a', 'b', 'c'),
	  4, 0x02, 60, 0, 0, 0,
	  S("abc"), ABSENT, ABSENT, ABSENT, ABSENT },
	{ "3.1.1 empty client id",
	  B(H311(0x02), 0x00, 0x00),
	  4, 0x02, 60, 0, 0, 0,
	  S(""), ABSENT, ABSENT, ABSENT, ABSENT },
	{ "3.1.1 empty client id without clean session (policy, not syntax)",
	  B(MQTT4, 0x04, 0x00, 0xff, 0xff, 0x00, 0x00),
	  4, 0x00, 65535, 0, 0, 0,
	  S(""), ABSENT, ABSENT, ABSENT, ABSENT },
	{ "3.1.1 will QoS 2 retained, username only",
	  B(H311(0xb6), CID, 0x00, 0x03, 't', '/', '1', 0x00, 0x00,
	    0x00, 0x01, 'u'),
	  4, 0xb6, 60, 0, 0, 0,
	  S("c"), S("t/1"), S(""), S("u"), ABSENT },
	{ "3.1.1 will QoS 1, binary payload",
	  B(H311(0x0c), CID, 0x00, 0x01, 't', 0x00, 0x03, 0xff, 0x00, 0xfe),
	  4, 0x0c, 60, 0, 0, 0,
	  S("c"), S("t"), S("\xff\x00\xfe"), ABSENT, ABSENT },
	{ "3.1.1 username and password",
	  B(H311(0xc2), CID, 0x00, 0x04, 'u', 's', 'e', 'r',
	    0x00, 0x02, 0x00, 0xff),
	  4, 0xc2, 60, 0, 0, 0,
	  S("c"), ABSENT, ABSENT, S("user"), S("\x00\xff") },
	{ "3.1.1 empty username and password",
	  B(H311(0xc0), CID, 0x00, 0x00, 0x00, 0x00),
	  4, 0xc0, 60, 0, 0, 0,
	  S("c"), ABSENT, ABSENT, S(""), S("") },
	{ "3.1.1 multi-byte UTF-8 at the edges",
	  B(H311(0x02), 0x00, 0x15,
	    0xc2, 0x80,                 /* U+0080 */
	    0xc3, 0xa9,                 /* U+00E9 */
	    0xed, 0x9f, 0xbf,           /* U+D7FF */
	    0xee, 0x80, 0x80,           /* U+E000 */
	    0xef, 0xbf, 0xbf,           /* U+FFFF */
	    0xf0, 0x90, 0x80, 0x80,     /* U+10000 */
	    0xf4, 0x8f, 0xbf, 0xbf),    /* U+10FFFF */
	  4, 0x02, 60, 0, 0, 0,
	  S("\xc2\x80\xc3\xa9\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
	    "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"),
	  ABSENT, ABSENT, ABSENT, ABSENT },
	{ "5 no properties",
	  B(H5(0x02), 0x00, CID),
	  5, 0x02, 60, 0, 0, 0,
	  S("c"), ABSENT, ABSENT, ABSENT, ABSENT },
	{ "5 connect properties with user properties",
	  B(H5(0x02), V5_PROPS_LEN, V5_PROPS, 0x00, 0x02, 'i', 'd'),
	  5, 0x02, 60, 0, V5_PROPS_LEN, 0,
	  S("id"), ABSENT, ABSENT, ABSENT, ABSENT },
	{ "5 will properties, username, password",
	  B(H5(0xee), V5_PROPS_LEN, V5_PROPS, CID,
	    V5_WILL_PROPS_LEN, V5_WILL_PROPS,
	    0x00, 0x03, 'a', '/', 'b', 0x00, 0x02, 'o', 'n',
	    0x00, 0x01, 'u', 0x00, 0x01, 'p'),
	  5, 0xee, 60, 0, V5_PROPS_LEN, V5_WILL_PROPS_LEN,
	  S("c"), S("a/b"), S("on"), S("u"), S("p") },
	{ "5 will with empty will properties, empty client id",
	  B(H5(0x06), 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 't', 0x00, 0x00),
	  5, 0x06, 60, 0, 0, 0,
	  S(""), S("t"), S(""), ABSENT, ABSENT },
	{ "5 password without username",
	  B(H5(0x42), 0x00, CID, 0x00, 0x02, 'p', 'w'),
	  5, 0x42, 60, 0, 0, 0,
	  S("c"), ABSENT, ABSENT, ABSENT, S("pw") },
	{ "5 authentication method",
	  B(H5(0x02), 0x07, 0x15, 0x00, 0x04, 'S', 'C', 'R', 'A', CID),
	  5, 0x02, 60, 1, 7, 0,
	  S("c"), ABSENT, ABSENT, ABSENT, ABSENT },
	{ "5 authentication data alone",
	  B(H5(0x02), 0x04, 0x16, 0x00, 0x01, 0x00, CID),
	  5, 0x02, 60, 1, 4, 0,
	  S("c"), ABSENT, ABSENT, ABSENT, ABSENT },
	{ "5 authentication method and data",
	  B(H5(0x02), 0x08, 0x15, 0x00, 0x01, 'X', 0x16, 0x00, 0x01, 0x07,
	    CID),
	  5, 0x02, 60, 1, 8, 0,
	  S("c"), ABSENT, ABSENT, ABSENT, ABSENT },
	{ "5 empty user property",
	  B(H5(0x02), 0x05, 0x26, 0x00, 0x00, 0x00, 0x00, CID),
	  5, 0x02, 60, 0, 5, 0,
	  S("c"), ABSENT, ABSENT, ABSENT, ABSENT },
	{ "5 largest property values",
	  B(H5(0x02), 0x14, 0x11, 0xff, 0xff, 0xff, 0xff, 0x21, 0xff, 0xff,
	    0x27, 0xff, 0xff, 0xff, 0xff, 0x22, 0xff, 0xff, 0x19, 0x00,
	    0x17, 0x01, CID),
	  5, 0x02, 60, 0, 0x14, 0,
	  S("c"), ABSENT, ABSENT, ABSENT, ABSENT },
};

#define NGOODS (sizeof(goods) / sizeof(goods[0]))

static void
check_fields(const struct good *g, const struct mqtt_connect *c)
{
	cr_assert_eq(c->level, g->level, "%s: level", g->name);
	cr_assert_eq(c->flags, g->flags, "%s: flags", g->name);
	cr_assert_eq(c->keepalive, g->keepalive, "%s: keep alive", g->name);
	cr_assert_eq(c->has_auth, g->has_auth, "%s: has_auth", g->name);
	cr_assert_eq(c->props.len, g->props_len, "%s: props", g->name);
	cr_assert_eq(c->props.p != NULL, g->level == 5, "%s: props view",
	    g->name);
	cr_assert_eq(c->will_props.len, g->will_props_len,
	    "%s: will props", g->name);
	cr_assert_eq(c->will_props.p != NULL,
	    g->level == 5 && (g->flags & MQTT_CF_WILL) != 0,
	    "%s: will props view", g->name);
	check_view(g->name, "client id", &c->client_id, &g->client_id);
	check_view(g->name, "will topic", &c->will_topic, &g->will_topic);
	check_view(g->name, "will payload", &c->will_payload,
	    &g->will_payload);
	check_view(g->name, "username", &c->username, &g->username);
	check_view(g->name, "password", &c->password, &g->password);
}

Test(mqtt, round_trip)
{
	struct mqtt_connect c;
	const char *why;
	uint8_t *buf;
	size_t i, len, used;

	for (i = 0; i < NGOODS; i++) {
		const struct good *g = &goods[i];
		enum mqtt_status st;

		buf = packet(g->body, g->len, 0, &len);
		st = mqtt_connect_parse(buf, len, MAX, &c, &used, &why);
		cr_assert_eq(st, MQTT_OK, "%s: %s (%s)", g->name,
		    mqtt_status_str(st), why);
		cr_assert_eq(used, len, "%s: used %zu of %zu", g->name, used,
		    len);
		cr_assert_str_eq(why, "ok");
		check_fields(g, &c);
		encode_same(g->name, &c, buf, len);
		free(buf);
	}
}

/* The parser stops at the end of the CONNECT; what follows is the caller's. */
Test(mqtt, bytes_after_the_packet)
{
	static const uint8_t next[] = { 0x30, 0x03, 0x00, 0x01, 't' };
	struct mqtt_connect c;
	const char *why;
	uint8_t *pkt, *buf;
	size_t i, len, used;

	for (i = 0; i < NGOODS; i++) {
		pkt = packet(goods[i].body, goods[i].len, 0, &len);
		buf = malloc(len + sizeof(next));
		cr_assert_not_null(buf);
		memcpy(buf, pkt, len);
		memcpy(buf + len, next, sizeof(next));
		cr_assert_eq(mqtt_connect_parse(buf, len + sizeof(next), MAX,
		    &c, &used, &why), MQTT_OK, "%s: %s", goods[i].name, why);
		cr_assert_eq(used, len, "%s", goods[i].name);
		check_fields(&goods[i], &c);
		free(buf);
		free(pkt);
	}
}

/* Cut anywhere, a valid CONNECT is a valid prefix: only INCOMPLETE. */
Test(mqtt, truncated_everywhere)
{
	struct mqtt_connect c;
	const char *why;
	uint8_t *pkt, *buf;
	size_t i, k, len, used, n = 0;

	for (i = 0; i < NGOODS; i++) {
		pkt = packet(goods[i].body, goods[i].len, 0, &len);
		for (k = 0; k < len; k++) {
			enum mqtt_status st;

			buf = exact(pkt, k);
			memset(&c, 0x5a, sizeof(c));
			used = 99;
			st = mqtt_connect_parse(buf, k, MAX, &c, &used, &why);
			cr_assert_eq(st, MQTT_INCOMPLETE,
			    "%s cut at %zu of %zu: %s (%s)", goods[i].name,
			    k, len, mqtt_status_str(st), why);
			cr_assert_eq(used, 0);
			cr_assert_not_null(why);
			cr_assert_null(c.client_id.p);
			free(buf);
			n++;
		}
		free(pkt);
	}
	cr_log_info("truncations checked: %zu", n);
}

Test(mqtt, empty_input)
{
	struct mqtt_connect c;
	const char *why;
	size_t used;

	cr_assert_eq(mqtt_connect_parse(NULL, 0, MAX, &c, &used, &why),
	    MQTT_INCOMPLETE);
	cr_assert_eq(c.level, 0);
}

/* --- refused CONNECTs --------------------------------------------------- */

struct bad {
	const char *name;
	enum mqtt_status want;
	uint8_t level;      /* out->level expected */
	int raw;            /* body is the whole input, header included */
	size_t missing;     /* announced in the header but not present */
	size_t max;         /* 0: MQTT_CONNECT_MAX_DEFAULT */
	const uint8_t *body;
	size_t len;
};

#define MAL MQTT_MALFORMED
#define NOTC MQTT_NOT_CONNECT
#define BADP MQTT_BAD_PROTOCOL
#define BIG MQTT_TOO_LARGE
#define INC MQTT_INCOMPLETE

/* Table rows: B() the body after the fixed header, which is computed. */
#define BAD(name, st, lvl, ...) { name, st, lvl, 0, 0, 0, B(__VA_ARGS__) }
/* ... with `miss` more bytes announced in the header but not sent. */
#define LATE(name, st, lvl, miss, ...)                                  \
	{ name, st, lvl, 0, miss, 0, B(__VA_ARGS__) }
/* ... checked against a cap other than the default. */
#define CAP(name, st, lvl, cap, ...)                                    \
	{ name, st, lvl, 0, 0, cap, B(__VA_ARGS__) }
/* Raw input, fixed header included; level 0. */
#define RAW(name, st, ...) { name, st, 0, 1, 0, 0, B(__VA_ARGS__) }
#define RAWCAP(name, st, cap, ...) { name, st, 0, 1, 0, cap, B(__VA_ARGS__) }

static const struct bad bads[] = {
	/* Fixed header. */
	RAW("PUBLISH first", NOTC, 0x30, 0x05, 0x00, 0x01, 't', 'h', 'i'),
	RAW("PUBLISH first, one byte", NOTC, 0x30),
	RAW("reserved type 0", NOTC, 0x00, 0x00),
	RAW("CONNACK first", NOTC, 0x20, 0x02, 0x00, 0x00),
	RAW("SUBSCRIBE first", NOTC, 0x82, 0x06, 0x00, 0x01, 0x00, 0x01, '#',
	    0x00),
	RAW("PINGREQ first", NOTC, 0xc0, 0x00),
	RAW("DISCONNECT first", NOTC, 0xe0, 0x00),
	RAW("AUTH first", NOTC, 0xf0, 0x00),
	RAW("CONNECT with header flags 1", MAL, 0x11, 0x0f, H311(0x02), 0x00,
	    0x03, 'a', 'b', 'c'),
	RAW("CONNECT with header flags 2, one byte", MAL, 0x12),
	RAW("CONNECT with header flags 8", MAL, 0x18, 0x00),
	RAW("CONNECT with header flags 15", MAL, 0x1f),
	RAWCAP("remaining length of 5 bytes", MAL, SIZE_MAX, 0x10, 0xff, 0xff,
	    0xff, 0xff, 0x01),
	RAWCAP("remaining length with a 4th continuation, nothing after",
	    MAL, SIZE_MAX, 0x10, 0x80, 0x80, 0x80, 0x80),
	RAW("remaining length 0 in 2 bytes", MAL, 0x10, 0x80, 0x00),
	RAW("remaining length 15 in 2 bytes", MAL, 0x10, 0x8f, 0x00,
	    H311(0x02), 0x00, 0x03, 'a', 'b', 'c'),
	RAW("remaining length in 3 bytes, 2 would do", MAL, 0x10, 0x80, 0x80,
	    0x00),
	RAWCAP("remaining length in 4 bytes, 3 would do", MAL, SIZE_MAX, 0x10,
	    0xff, 0x80, 0x80, 0x00),
	RAW("remaining length 0", MAL, 0x10, 0x00),
	RAW("remaining length 1", MAL, 0x10, 0x01, 0x00),
	RAW("header only, over the cap", BIG, 0x10, 0xff, 0xff, 0x03),
	RAW("header only, cap plus one", BIG, 0x10, 0xfd, 0xff, 0x03),
	RAW("header only, exactly the cap", INC, 0x10, 0xfc, 0xff, 0x03),
	RAW("header only, largest remaining length", BIG, 0x10, 0xff, 0xff,
	    0xff, 0x7f),
	CAP("whole packet over a small cap: level read", BIG, 4, 20, H311(0x02), 0x00,
	    0x0a, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'),
	RAW("fixed header cut in the length", INC, 0x10, 0x80),
	RAWCAP("fixed header cut after 3 length bytes", INC, SIZE_MAX, 0x10,
	    0xff, 0xff, 0xff),
	RAW("type byte only", INC, 0x10),

	/* Protocol name and level. */
	BAD("name length 0", MAL, 0, 0x00, 0x00, 0x04, 0x02, KA, CID),
	BAD("name MQTTX", MAL, 0, 0x00, 0x05, 'M', 'Q', 'T', 'T', 'X', 0x04,
	    0x02, KA, CID),
	BAD("name MQTX", MAL, 0, 0x00, 0x04, 'M', 'Q', 'T', 'X', 0x04, 0x02,
	    KA, CID),
	BAD("name mqtt", MAL, 0, 0x00, 0x04, 'm', 'q', 't', 't', 0x04, 0x02,
	    KA, CID),
	BAD("name MQIsdq", MAL, 0, 0x00, 0x06, 'M', 'Q', 'I', 's', 'd', 'q',
	    0x03, 0x02, KA, CID),
	BAD("name MQTT with a NUL", MAL, 0, 0x00, 0x06, 'M', 'Q', 'T', 'T',
	    0x00, 0x00, 0x04, 0x02, KA, CID),
	BAD("name length overruns", MAL, 0, 0x00, 0x04, 'M', 'Q'),
	BAD("name length cut", MAL, 0, 0x00),
	LATE("wrong name length, rest not yet here", MAL, 0, 30, 0x00, 0x07),
	BAD("level missing", MAL, 0, MQTT4),
	BAD("MQTT level 3", BADP, 3, MQTT4, 0x03, 0x02, KA, CID),
	BAD("MQTT level 6", BADP, 6, MQTT4, 0x06, 0x02, KA, CID),
	LATE("MQTT level 6, rest not yet here", BADP, 6, 9, MQTT4, 0x06),
	BAD("MQTT level 0", BADP, 0, MQTT4, 0x00, 0x02, KA, CID),
	BAD("MQTT level 0x84 (bridge bit)", BADP, 0x84, MQTT4, 0x84, 0x02, KA,
	    CID),
	BAD("MQTT level 255", BADP, 0xff, MQTT4, 0xff, 0x02, KA, CID),
	BAD("MQIsdp level 4", BADP, 4, MQISDP, 0x04, 0x02, KA, CID),
	BAD("MQIsdp level 5", BADP, 5, MQISDP, 0x05, 0x02, KA, CID),

	/* Connect flags and keep alive. */
	BAD("flags missing", MAL, 4, MQTT4, 0x04),
	BAD("reserved flag", MAL, 4, H311(0x03), CID),
	BAD("reserved flag, 5", MAL, 5, H5(0x01), 0x00, CID),
	BAD("reserved flag, 3.1", MAL, 3, H31(0x01), CID),
	BAD("will QoS 3", MAL, 4, H311(0x1e), CID, 0x00, 0x01, 't', 0x00,
	    0x00),
	BAD("will QoS 1 without will", MAL, 4, H311(0x0a), CID),
	BAD("will QoS 2 without will", MAL, 4, H311(0x12), CID),
	BAD("will retain without will", MAL, 4, H311(0x22), CID),
	BAD("will retain without will, 5", MAL, 5, H5(0x20), 0x00, CID),
	BAD("password without username, 3.1.1", MAL, 4, H311(0x42), CID, 0x00,
	    0x02, 'p', 'w'),
	BAD("password without username, 3.1", MAL, 3, H31(0x42), CID, 0x00,
	    0x02, 'p', 'w'),
	BAD("keep alive cut", MAL, 4, MQTT4, 0x04, 0x02, 0x00),

	/* Client identifier. */
	BAD("client id missing", MAL, 4, H311(0x02)),
	BAD("client id length cut", MAL, 4, H311(0x02), 0x00),
	BAD("client id overruns", MAL, 4, H311(0x02), 0x00, 0x05, 'a', 'b',
	    'c'),
	BAD("client id length 65535", MAL, 4, H311(0x02), 0xff, 0xff, 'a'),
	BAD("client id overlong NUL", MAL, 4, H311(0x02), 0x00, 0x02, 0xc0,
	    0x80),
	BAD("client id overlong 2 bytes", MAL, 4, H311(0x02), 0x00, 0x02, 0xc1,
	    0xbf),
	BAD("client id overlong 3 bytes", MAL, 4, H311(0x02), 0x00, 0x03, 0xe0,
	    0x80, 0xaf),
	BAD("client id overlong 4 bytes", MAL, 4, H311(0x02), 0x00, 0x04, 0xf0,
	    0x80, 0x80, 0xaf),
	BAD("client id high surrogate", MAL, 4, H311(0x02), 0x00, 0x03, 0xed,
	    0xa0, 0x80),
	BAD("client id low surrogate", MAL, 4, H311(0x02), 0x00, 0x03, 0xed,
	    0xbf, 0xbf),
	BAD("client id NUL", MAL, 4, H311(0x02), 0x00, 0x03, 'a', 0x00, 'b'),
	BAD("client id 0xFF", MAL, 4, H311(0x02), 0x00, 0x01, 0xff),
	BAD("client id 0xFE", MAL, 4, H311(0x02), 0x00, 0x02, 'a', 0xfe),
	BAD("client id truncated sequence", MAL, 4, H311(0x02), 0x00, 0x03,
	    0xe2, 0x82, 'a'),
	BAD("client id sequence cut by its end", MAL, 4, H311(0x02), 0x00,
	    0x02, 0xe2, 0x82),
	BAD("client id lone lead byte", MAL, 4, H311(0x02), 0x00, 0x01, 0xc3),
	BAD("client id lone continuation", MAL, 4, H311(0x02), 0x00, 0x01,
	    0x80),
	BAD("client id above U+10FFFF", MAL, 4, H311(0x02), 0x00, 0x04, 0xf4,
	    0x90, 0x80, 0x80),
	BAD("client id lead byte 0xF5", MAL, 4, H311(0x02), 0x00, 0x04, 0xf5,
	    0x80, 0x80, 0x80),
	LATE("client id bad, rest not yet here", MAL, 4, 10, H311(0x02), 0x00,
	    0x02, 0xc0, 0x80),
	BAD("client id surrogate, 5", MAL, 5, H5(0x02), 0x00, 0x00, 0x03, 0xed,
	    0xa0, 0x80),

	/* Will. */
	BAD("will topic missing", MAL, 4, H311(0x06), CID),
	BAD("will topic overruns", MAL, 4, H311(0x06), CID, 0x00, 0x09, 't'),
	BAD("will topic empty", MAL, 4, H311(0x06), CID, 0x00, 0x00, 0x00,
	    0x00),
	BAD("will topic overlong", MAL, 4, H311(0x06), CID, 0x00, 0x02, 0xc1,
	    0x81, 0x00, 0x00),
	BAD("will topic surrogate", MAL, 4, H311(0x06), CID, 0x00, 0x03, 0xed,
	    0xb0, 0x80, 0x00, 0x00),
	BAD("will topic NUL", MAL, 4, H311(0x06), CID, 0x00, 0x02, 't', 0x00,
	    0x00, 0x00),
	BAD("will topic 0xFE", MAL, 4, H311(0x06), CID, 0x00, 0x01, 0xfe, 0x00,
	    0x00),
	BAD("will topic truncated sequence", MAL, 4, H311(0x06), CID, 0x00,
	    0x02, 0xf0, 0x9f, 0x00, 0x00),
	BAD("will payload missing", MAL, 4, H311(0x06), CID, 0x00, 0x01, 't'),
	BAD("will payload overruns", MAL, 4, H311(0x06), CID, 0x00, 0x01, 't',
	    0x00, 0x05, 'x'),

	/* Username and password. */
	BAD("username missing", MAL, 4, H311(0x82), CID),
	BAD("username overruns", MAL, 4, H311(0x82), CID, 0x00, 0x04, 'u'),
	BAD("username overlong", MAL, 4, H311(0x82), CID, 0x00, 0x02, 0xc0,
	    0xaf),
	BAD("username surrogate", MAL, 4, H311(0x82), CID, 0x00, 0x03, 0xed,
	    0xa0, 0xbf),
	BAD("username NUL", MAL, 4, H311(0x82), CID, 0x00, 0x01, 0x00),
	BAD("username 0xFF", MAL, 4, H311(0x82), CID, 0x00, 0x02, 'u', 0xff),
	BAD("username truncated sequence", MAL, 4, H311(0x82), CID, 0x00, 0x02,
	    'u', 0xdf),
	BAD("username bad, 3.1", MAL, 3, H31(0x82), CID, 0x00, 0x02, 0xc0,
	    0x80),
	BAD("password missing", MAL, 4, H311(0xc2), CID, 0x00, 0x01, 'u'),
	BAD("password length cut", MAL, 4, H311(0xc2), CID, 0x00, 0x01, 'u',
	    0x00),
	BAD("password overruns", MAL, 4, H311(0xc2), CID, 0x00, 0x01, 'u',
	    0x00, 0x03, 'p'),

	/* Leftovers inside the remaining length. */
	BAD("byte left after client id", MAL, 4, H311(0x02), CID, 'x'),
	BAD("bytes left after password", MAL, 4, H311(0xc2), CID, 0x00, 0x01,
	    'u', 0x00, 0x01, 'p', 'x', 'y'),
	BAD("byte left after will", MAL, 4, H311(0x06), CID, 0x00, 0x01, 't',
	    0x00, 0x00, 0x00),
	BAD("username without its flag (3.1)", MAL, 3, H31(0x02), CID, 0x00,
	    0x01, 'u'),
	LATE("leftover, rest not yet here", MAL, 4, 5, H311(0x02), CID),

	/* MQTT 5 CONNECT properties. */
	BAD("5 property length missing", MAL, 5, H5(0x02)),
	BAD("5 property length overruns", MAL, 5, H5(0x02), 0x05, 0x11, 0x00),
	BAD("5 property length of 5 bytes", MAL, 5, H5(0x02), 0xff, 0xff, 0xff,
	    0xff, 0x01, CID),
	BAD("5 property length in 2 bytes, 1 would do", MAL, 5, H5(0x02), 0x80,
	    0x00, CID),
	BAD("5 property length huge", MAL, 5, H5(0x02), 0xff, 0xff, 0xff, 0x7f,
	    CID),
	BAD("5 session expiry twice", MAL, 5, H5(0x02), 0x0a, 0x11, 0, 0, 0, 1,
	    0x11, 0, 0, 0, 2, CID),
	BAD("5 receive maximum twice", MAL, 5, H5(0x02), 0x06, 0x21, 0, 1,
	    0x21, 0, 2, CID),
	BAD("5 maximum packet size twice", MAL, 5, H5(0x02), 0x0a, 0x27, 0, 0,
	    1, 0, 0x27, 0, 0, 1, 0, CID),
	BAD("5 topic alias maximum twice", MAL, 5, H5(0x02), 0x06, 0x22, 0, 1,
	    0x22, 0, 1, CID),
	BAD("5 request problem information twice", MAL, 5, H5(0x02), 0x04,
	    0x17, 1, 0x17, 1, CID),
	BAD("5 request response information twice", MAL, 5, H5(0x02), 0x04,
	    0x19, 0, 0x19, 0, CID),
	BAD("5 authentication method twice", MAL, 5, H5(0x02), 0x08, 0x15, 0,
	    1, 'a', 0x15, 0, 1, 'b', CID),
	BAD("5 authentication data twice", MAL, 5, H5(0x02), 0x06, 0x16, 0, 0,
	    0x16, 0, 0, CID),
	BAD("5 unknown property 0x7f", MAL, 5, H5(0x02), 0x02, 0x7f, 0x00,
	    CID),
	BAD("5 unknown property 0x00", MAL, 5, H5(0x02), 0x01, 0x00, CID),
	BAD("5 two-byte property id", MAL, 5, H5(0x02), 0x03, 0x80, 0x01, 0x00,
	    CID),
	BAD("5 will property in CONNECT (payload format)", MAL, 5, H5(0x02),
	    0x02, 0x01, 0x00, CID),
	BAD("5 will property in CONNECT (will delay)", MAL, 5, H5(0x02), 0x05,
	    0x18, 0, 0, 0, 0, CID),
	BAD("5 PUBLISH property in CONNECT (topic alias)", MAL, 5, H5(0x02),
	    0x03, 0x23, 0, 1, CID),
	BAD("5 receive maximum 0", MAL, 5, H5(0x02), 0x03, 0x21, 0, 0, CID),
	BAD("5 maximum packet size 0", MAL, 5, H5(0x02), 0x05, 0x27, 0, 0, 0,
	    0, CID),
	BAD("5 request problem information 2", MAL, 5, H5(0x02), 0x02, 0x17, 2,
	    CID),
	BAD("5 request response information 255", MAL, 5, H5(0x02), 0x02, 0x19,
	    0xff, CID),
	BAD("5 session expiry cut by the property length", MAL, 5, H5(0x02),
	    0x04, 0x11, 0, 0, 0, CID),
	BAD("5 receive maximum cut by the property length", MAL, 5, H5(0x02),
	    0x02, 0x21, 0, CID),
	BAD("5 request problem information cut", MAL, 5, H5(0x02), 0x01, 0x17,
	    CID),
	BAD("5 user property key overruns", MAL, 5, H5(0x02), 0x04, 0x26, 0, 5,
	    'k', CID),
	BAD("5 user property value missing", MAL, 5, H5(0x02), 0x04, 0x26, 0,
	    1, 'k', CID),
	BAD("5 user property key overlong", MAL, 5, H5(0x02), 0x08, 0x26, 0, 2,
	    0xc0, 0x80, 0, 1, 'v', CID),
	BAD("5 user property value surrogate", MAL, 5, H5(0x02), 0x09, 0x26, 0,
	    1, 'k', 0, 3, 0xed, 0xa0, 0x80, CID),
	BAD("5 authentication method 0xFF", MAL, 5, H5(0x02), 0x04, 0x15, 0, 1,
	    0xff, CID),
	BAD("5 authentication data overruns", MAL, 5, H5(0x02), 0x04, 0x16, 0,
	    5, 'x', CID),
	LATE("5 bad property, rest not yet here", MAL, 5, 20, H5(0x02), 0x03,
	    0x21, 0, 0),

	/* MQTT 5 will properties. */
	BAD("5 will property length missing", MAL, 5, H5(0x06), 0x00, CID),
	BAD("5 will property length overruns", MAL, 5, H5(0x06), 0x00, CID,
	    0x09, 0x01, 0x00),
	BAD("5 will property length in 2 bytes", MAL, 5, H5(0x06), 0x00, CID,
	    0x80, 0x00, 0, 1, 't', 0, 0),
	BAD("5 CONNECT property in will (session expiry)", MAL, 5, H5(0x06),
	    0x00, CID, 0x05, 0x11, 0, 0, 0, 0, 0, 1, 't', 0, 0),
	BAD("5 authentication method in will", MAL, 5, H5(0x06), 0x00, CID,
	    0x04, 0x15, 0, 1, 'a', 0, 1, 't', 0, 0),
	BAD("5 payload format 2", MAL, 5, H5(0x06), 0x00, CID, 0x02, 0x01,
	    0x02, 0, 1, 't', 0, 0),
	BAD("5 will delay twice", MAL, 5, H5(0x06), 0x00, CID, 0x0a, 0x18, 0,
	    0, 0, 1, 0x18, 0, 0, 0, 1, 0, 1, 't', 0, 0),
	BAD("5 content type twice", MAL, 5, H5(0x06), 0x00, CID, 0x06, 0x03, 0,
	    0, 0x03, 0, 0, 0, 1, 't', 0, 0),
	BAD("5 content type overlong", MAL, 5, H5(0x06), 0x00, CID, 0x05, 0x03,
	    0, 2, 0xc0, 0x80, 0, 1, 't', 0, 0),
	BAD("5 response topic NUL", MAL, 5, H5(0x06), 0x00, CID, 0x04, 0x08, 0,
	    1, 0x00, 0, 1, 't', 0, 0),
	BAD("5 correlation data overruns", MAL, 5, H5(0x06), 0x00, CID, 0x04,
	    0x09, 0, 9, 'x', 0, 1, 't', 0, 0),
	BAD("5 message expiry cut", MAL, 5, H5(0x06), 0x00, CID, 0x03, 0x02, 0,
	    0, 0, 1, 't', 0, 0),
	BAD("5 will topic empty", MAL, 5, H5(0x06), 0x00, CID, 0x00, 0, 0, 0,
	    0),
	BAD("5 byte left after password", MAL, 5, H5(0x42), 0x00, CID, 0, 1,
	    'p', 'x'),

	/* Valid prefixes of packets announced longer: still incomplete. */
	LATE("prefix: name", INC, 0, 10, MQTT4),
	LATE("prefix: client id length", INC, 4, 3, H311(0x02), 0x00, 0x03),
	LATE("prefix: inside a property", INC, 5, 5, H5(0x02), 0x03, 0x21),
};

#define NBADS (sizeof(bads) / sizeof(bads[0]))

Test(mqtt, refused)
{
	struct mqtt_connect c;
	const char *why;
	uint8_t *buf;
	size_t i, len, used, nmal = 0;

	for (i = 0; i < NBADS; i++) {
		const struct bad *b = &bads[i];
		enum mqtt_status st;

		if (b->raw) {
			buf = exact(b->body, b->len);
			len = b->len;
		} else
			buf = packet(b->body, b->len, b->missing, &len);
		memset(&c, 0x5a, sizeof(c));
		used = 99;
		why = NULL;
		st = mqtt_connect_parse(buf, len, b->max ? b->max : MAX, &c,
		    &used, &why);
		cr_assert_eq(st, b->want, "%s: got %s (%s), want %s", b->name,
		    mqtt_status_str(st), why ? why : "-",
		    mqtt_status_str(b->want));
		cr_assert_eq(c.level, b->level, "%s: level %u, want %u",
		    b->name, c.level, b->level);
		cr_assert_eq(used, 0, "%s: used", b->name);
		cr_assert(why != NULL && why[0] != '\0', "%s: no reason",
		    b->name);
		/* Only the level survives a refusal. */
		cr_assert(c.flags == 0 && c.client_id.p == NULL &&
		    c.props.p == NULL && c.username.p == NULL &&
		    c.has_auth == 0, "%s: fields left set", b->name);
		free(buf);
		if (st != MQTT_INCOMPLETE)
			nmal++;
	}
	cr_assert_geq(nmal, 60);
	cr_log_info("refused CONNECTs: %zu (%zu tables rows)", nmal, NBADS);
}

/* --- remaining-length boundaries --------------------------------------- */

/*
 * A 3.1.1 CONNECT whose remaining length is rem, padded with the password;
 * for lengths beyond what 3.1.1 fields hold, an MQTT 5 CONNECT padded with
 * user properties.
 */
static uint8_t *
sized_connect(size_t rem, size_t *len)
{
	static const uint8_t h311[] = { H311(0xc2), CID, 0x00, 0x01, 'u' };
	static const uint8_t h5[] = { H5(0x02) };
	static uint8_t fill[65535];
	struct pb body = { NULL, 0, 0 };
	size_t props, left, v, n;
	uint8_t *out;

	memset(fill, 'x', sizeof(fill));
	if (rem < 65535) {
		pb_put(&body, h311, sizeof(h311));
		pb_str(&body, fill, rem - sizeof(h311) - 2);
	} else {
		pb_put(&body, h5, sizeof(h5));
		/* props + varint_size(props) + 10 + 3 == rem */
		for (v = 1; v <= 4; v++) {
			props = rem - sizeof(h5) - 3 - v;
			if (varint_size(props) == v)
				break;
		}
		cr_assert_leq(v, 4);
		pb_varint(&body, props);
		for (left = props; left > 0; left -= n) {
			/* id, key "k", value; never leave under 6 bytes */
			n = left < 6 + 65535 ? left : 6 + 65535;
			if (left - n != 0 && left - n < 6)
				n -= 6;
			pb_u8(&body, 0x26);
			pb_str(&body, "k", 1);
			pb_str(&body, fill, n - 6);
		}
		pb_put(&body, (const uint8_t[]){ CID }, 3);
	}
	cr_assert_eq(body.len, rem);
	out = packet(body.b, body.len, 0, len);
	free(body.b);
	return (out);
}

Test(mqtt, varint_boundaries)
{
	static const struct {
		size_t rem;
		uint8_t enc[4];
		size_t n;
	} cases[] = {
		{ 127, { 0x7f }, 1 },
		{ 128, { 0x80, 0x01 }, 2 },
		{ 16383, { 0xff, 0x7f }, 2 },
		{ 16384, { 0x80, 0x80, 0x01 }, 3 },
		{ 2097151, { 0xff, 0xff, 0x7f }, 3 },
		{ 2097152, { 0x80, 0x80, 0x80, 0x01 }, 4 },
	};
	struct mqtt_connect c;
	const char *why;
	uint8_t *buf;
	size_t i, len, used;
	char name[64];

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum mqtt_status st;

		snprintf(name, sizeof(name), "remaining length %zu",
		    cases[i].rem);
		buf = sized_connect(cases[i].rem, &len);
		cr_assert_eq(len, 1 + cases[i].n + cases[i].rem);
		cr_assert(memcmp(buf + 1, cases[i].enc, cases[i].n) == 0,
		    "%s: test vector header", name);
		st = mqtt_connect_parse(buf, len, BIGMAX, &c, &used, &why);
		cr_assert_eq(st, MQTT_OK, "%s: %s", name, why);
		cr_assert_eq(used, len);
		/* encode_same checks the varint along with every other byte */
		encode_same(name, &c, buf, len);
		/* one byte under the size: over the cap */
		cr_assert_eq(mqtt_connect_parse(buf, len, len - 1, &c, &used,
		    &why), MQTT_TOO_LARGE, "%s", name);
		free(buf);
	}
}

/* Limits of the encoder, checked through mqtt_connect_size alone. */
Test(mqtt, encode_limits)
{
	static const uint8_t dummy[1];
	struct mqtt_connect c;
	size_t base;

	memset(&c, 0, sizeof(c));
	c.level = 5;
	c.client_id.p = dummy;
	base = mqtt_connect_size(&c);
	cr_assert_eq(base, 2 + 10 + 1 + 2);

	/* Remaining length 268435455 is the largest; one more is refused. */
	c.props.p = dummy;
	c.props.len = 268435455 - 10 - 4 - 2;
	cr_assert_eq(mqtt_connect_size(&c), 1 + 4 + 268435455);
	c.props.len++;
	cr_assert_eq(mqtt_connect_size(&c), 0);
	c.props.len = 0;

	c.client_id.len = 65535;
	cr_assert_eq(mqtt_connect_size(&c), 1 + 3 + 10 + 1 + 2 + 65535);
	c.client_id.len = 65536;
	cr_assert_eq(mqtt_connect_size(&c), 0);
	c.client_id.len = 0;

	c.username.p = dummy;
	c.username.len = 65536;
	cr_assert_eq(mqtt_connect_size(&c), 0);
	c.username.len = 0;
	c.password.p = dummy;
	c.password.len = 65536;
	cr_assert_eq(mqtt_connect_size(&c), 0);
	c.password.len = 0;
	c.flags = MQTT_CF_WILL;
	c.will_topic.p = dummy;
	c.will_topic.len = 65536;
	cr_assert_eq(mqtt_connect_size(&c), 0);
	c.will_topic.len = 1;
	c.will_payload.p = dummy;
	c.will_payload.len = 65536;
	cr_assert_eq(mqtt_connect_size(&c), 0);
	c.will_payload.len = 0;
	cr_assert_neq(mqtt_connect_size(&c), 0);

	/* Things the parser would refuse. */
	c.flags = MQTT_CF_WILL | MQTT_CF_WILL_QOS;
	cr_assert_eq(mqtt_connect_size(&c), 0, "will QoS 3");
	c.flags = MQTT_CF_WILL;
	c.level = 6;
	cr_assert_eq(mqtt_connect_size(&c), 0, "level 6");
	c.level = 2;
	cr_assert_eq(mqtt_connect_size(&c), 0, "level 2");
	c.level = 4;
	c.username.p = NULL;
	cr_assert_eq(mqtt_connect_size(&c), 0, "password alone, 3.1.1");
	c.level = 3;
	cr_assert_eq(mqtt_connect_size(&c), 0, "password alone, 3.1");
	c.level = 5;
	cr_assert_neq(mqtt_connect_size(&c), 0, "password alone, 5");
	c.client_id.p = NULL;
	c.client_id.len = 3;
	cr_assert_eq(mqtt_connect_size(&c), 0, "NULL view with a length");
	c.client_id.len = 0;
	cr_assert_neq(mqtt_connect_size(&c), 0, "NULL client id is empty");
}

/* Will QoS and retain are dropped with the will; the encoding stays valid. */
Test(mqtt, encode_masks_will_bits)
{
	struct mqtt_connect c, d;
	const char *why;
	uint8_t out[64];
	size_t n, used;

	memset(&c, 0, sizeof(c));
	c.level = 4;
	c.flags = MQTT_CF_WILL_QOS | MQTT_CF_WILL_RETAIN | MQTT_CF_CLEAN |
	    MQTT_CF_USERNAME | MQTT_CF_PASSWORD | MQTT_CF_RESERVED;
	n = mqtt_connect_encode(&c, out, sizeof(out));
	cr_assert_eq(n, 2 + 10 + 2);
	cr_assert_eq(out[9], MQTT_CF_CLEAN);
	cr_assert_eq(mqtt_connect_parse(out, n, MAX, &d, &used, &why),
	    MQTT_OK, "%s", why);
	cr_assert_eq(d.client_id.len, 0);
	cr_assert_not_null(d.client_id.p);
}

/* --- replacing credentials ---------------------------------------------- */

static void
reencode(struct mqtt_connect *c, uint8_t *out, size_t outlen,
    struct mqtt_connect *back)
{
	const char *why;
	size_t n, used;

	n = mqtt_connect_encode(c, out, outlen);
	cr_assert_neq(n, 0);
	cr_assert_eq(n, mqtt_connect_size(c));
	cr_assert_eq(mqtt_connect_parse(out, n, MAX, back, &used, &why),
	    MQTT_OK, "re-encoded CONNECT refused: %s", why);
	cr_assert_eq(used, n);
}

static void
set_view(struct mqtt_str *v, const char *s)
{
	v->p = (const uint8_t *)s;
	v->len = s != NULL ? strlen(s) : 0;
}

static void
view_is(const struct mqtt_str *v, const char *s)
{
	struct want w = { s, s != NULL ? strlen(s) : 0 };

	check_view("replaced", "view", v, &w);
}

Test(mqtt, replace_credentials)
{
	struct mqtt_connect c, back;
	const char *why;
	uint8_t *buf, out[512];
	size_t i, len, used;

	for (i = 0; i < NGOODS; i++) {
		const struct good *g = &goods[i];

		buf = packet(g->body, g->len, 0, &len);
		cr_assert_eq(mqtt_connect_parse(buf, len, MAX, &c, &used,
		    &why), MQTT_OK);

		/* Add or replace the username, drop the password. */
		set_view(&c.username, "dev-0042");
		set_view(&c.password, NULL);
		set_view(&c.client_id, "sensor/0042");
		reencode(&c, out, sizeof(out), &back);
		view_is(&back.username, "dev-0042");
		view_is(&back.password, NULL);
		view_is(&back.client_id, "sensor/0042");
		cr_assert_eq(back.flags & (MQTT_CF_USERNAME |
		    MQTT_CF_PASSWORD), MQTT_CF_USERNAME, "%s", g->name);
		cr_assert_eq(back.level, g->level);
		cr_assert_eq(back.keepalive, g->keepalive);
		cr_assert_eq(back.flags & ~(MQTT_CF_USERNAME |
		    MQTT_CF_PASSWORD), g->flags & ~(MQTT_CF_USERNAME |
		    MQTT_CF_PASSWORD));
		cr_assert_eq(back.props.len, g->props_len);
		cr_assert_eq(back.has_auth, g->has_auth);
		check_view(g->name, "will topic", &back.will_topic,
		    &g->will_topic);
		check_view(g->name, "will payload", &back.will_payload,
		    &g->will_payload);
		if (g->props_len > 0)
			cr_assert(memcmp(back.props.p, c.props.p,
			    g->props_len) == 0, "%s: props", g->name);

		/* Username and password both set, client id emptied. */
		set_view(&c.password, "6b1f0c\xff");
		set_view(&c.client_id, "");
		reencode(&c, out, sizeof(out), &back);
		view_is(&back.username, "dev-0042");
		view_is(&back.password, "6b1f0c\xff");
		view_is(&back.client_id, "");

		/* Neither. */
		set_view(&c.username, NULL);
		set_view(&c.password, NULL);
		reencode(&c, out, sizeof(out), &back);
		view_is(&back.username, NULL);
		view_is(&back.password, NULL);
		cr_assert_eq(back.flags & (MQTT_CF_USERNAME |
		    MQTT_CF_PASSWORD), 0);
		free(buf);
	}
}

/* --- CONNACK ------------------------------------------------------------ */

Test(mqtt, connack)
{
	uint8_t out[8];

	memset(out, 0xaa, sizeof(out));
	cr_assert_eq(mqtt_connack_encode(3, 0x05, out), 4);
	cr_assert(memcmp(out, "\x20\x02\x00\x05", 4) == 0);
	cr_assert_eq(out[4], 0xaa);
	cr_assert_eq(mqtt_connack_encode(4, 0x01, out), 4);
	cr_assert(memcmp(out, "\x20\x02\x00\x01", 4) == 0);
	cr_assert_eq(mqtt_connack_encode(4, 0x00, out), 4);
	cr_assert(memcmp(out, "\x20\x02\x00\x00", 4) == 0);
	cr_assert_eq(mqtt_connack_encode(5, 0x87, out), 5);
	cr_assert(memcmp(out, "\x20\x03\x00\x87\x00", 5) == 0);
	cr_assert_eq(mqtt_connack_encode(5, 0x8c, out), 5);
	cr_assert(memcmp(out, "\x20\x03\x00\x8c\x00", 5) == 0);
	/* Unknown levels answer like 3.1.1. */
	cr_assert_eq(mqtt_connack_encode(0, 0x01, out), 4);
	cr_assert(memcmp(out, "\x20\x02\x00\x01", 4) == 0);
	cr_assert_eq(mqtt_connack_encode(6, 0x01, out), 4);
	cr_assert(memcmp(out, "\x20\x02\x00\x01", 4) == 0);
}

/* --- UTF-8 and names ---------------------------------------------------- */

Test(mqtt, utf8)
{
	static const struct {
		const char *s;
		int ok;
	} cases[] = {
		{ "", 1 }, { "plain ascii", 1 }, { "\x7f", 1 },
		{ "\xc2\x80", 1 }, { "\xdf\xbf", 1 }, { "\xe0\xa0\x80", 1 },
		{ "\xed\x9f\xbf", 1 }, { "\xee\x80\x80", 1 },
		{ "\xf0\x90\x80\x80", 1 }, { "\xf4\x8f\xbf\xbf", 1 },
		{ "\xc0\x80", 0 }, { "\xc1\xbf", 0 }, { "\xe0\x9f\xbf", 0 },
		{ "\xed\xa0\x80", 0 }, { "\xed\xbf\xbf", 0 },
		{ "\xf0\x8f\xbf\xbf", 0 }, { "\xf4\x90\x80\x80", 0 },
		{ "\xf5\x80\x80\x80", 0 }, { "\xf8\x88\x80\x80\x80", 0 },
		{ "\xfe", 0 }, { "\xff", 0 }, { "\x80", 0 }, { "\xbf", 0 },
		{ "\xc2", 0 }, { "\xe2\x82", 0 }, { "\xf0\x9f\x98", 0 },
		{ "\xc2\x41", 0 }, { "\xe2\x28\xa1", 0 },
		{ "\xe2\x82\x28", 0 },
		{ "\xf0\x9f\x28\x80", 0 }, { "\xf0\x9f\x98\x28", 0 },
	};
	uint8_t *buf;
	size_t i, n;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		n = strlen(cases[i].s);
		buf = exact((const uint8_t *)cases[i].s, n);
		cr_assert_eq(mqtt_utf8_valid(buf, n), cases[i].ok,
		    "case %zu", i);
		free(buf);
	}
	cr_assert_eq(mqtt_utf8_valid((const uint8_t *)"a\0b", 3), 0);
	cr_assert_eq(mqtt_utf8_valid(NULL, 0), 1);
}

Test(mqtt, status_names)
{
	cr_assert_str_eq(mqtt_status_str(MQTT_OK), "ok");
	cr_assert_str_eq(mqtt_status_str(MQTT_INCOMPLETE), "incomplete");
	cr_assert_str_eq(mqtt_status_str(MQTT_NOT_CONNECT), "not-connect");
	cr_assert_str_eq(mqtt_status_str(MQTT_MALFORMED), "malformed");
	cr_assert_str_eq(mqtt_status_str(MQTT_BAD_PROTOCOL), "bad-protocol");
	cr_assert_str_eq(mqtt_status_str(MQTT_TOO_LARGE), "too-large");
	cr_assert_str_eq(mqtt_status_str((enum mqtt_status)99), "unknown");
}

/* mqtt_connect_need reads only the fixed header. */
Test(mqtt, connect_need_reads_the_fixed_header)
{
	static const uint8_t short_pkt[] = { 0x10, 0x0c, 0x00 };
	static const uint8_t long_pkt[] = { 0x10, 0x80, 0x01 };
	static const uint8_t cut[] = { 0x10, 0x80 };
	static const uint8_t publish[] = { 0x30, 0x00 };
	static const uint8_t five[] = { 0x10, 0xff, 0xff, 0xff, 0xff, 0x01 };
	const char *why;
	size_t total;

	cr_assert_eq(mqtt_connect_need(short_pkt, sizeof(short_pkt), &total,
	    &why), MQTT_OK);
	cr_assert_eq(total, 14);
	cr_assert_eq(mqtt_connect_need(long_pkt, sizeof(long_pkt), &total,
	    &why), MQTT_OK);
	cr_assert_eq(total, 3 + 128);
	cr_assert_eq(mqtt_connect_need(cut, sizeof(cut), &total, &why),
	    MQTT_INCOMPLETE);
	cr_assert_eq(mqtt_connect_need(publish, sizeof(publish), &total,
	    &why), MQTT_NOT_CONNECT);
	cr_assert_eq(mqtt_connect_need(five, sizeof(five), &total, &why),
	    MQTT_MALFORMED);
}

/* --- the framer ---------------------------------------------------------- */

/* mqtt_frame() on a copy of b[0..n) in a buffer of exactly n bytes. */
static enum mqtt_status
frame(const uint8_t *b, size_t n, size_t max, struct mqtt_frame *f)
{
	uint8_t *buf = exact(b, n);
	const char *why = NULL;
	enum mqtt_status st;

	st = mqtt_frame(buf, n, max, f, &why);
	cr_assert(why != NULL && why[0] != '\0');
	free(buf);
	return (st);
}

/* Every type with the flags MQTT 3.1.1 and 5 fix for it frames. */
Test(mqtt, frame_every_type)
{
	static const uint8_t fixed[16] = { 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 2,
	    0, 0, 0, 0, 0 };
	struct mqtt_frame f;
	uint8_t pkt[4], t, fl;

	for (t = 1; t <= 15; t++) {
		for (fl = 0; fl < 16; fl++) {
			enum mqtt_status want;

			pkt[0] = (uint8_t)(t << 4 | fl);
			pkt[1] = 2;
			pkt[2] = pkt[3] = 0;
			if (t == MQTT_PKT_PUBLISH)
				want = (fl & MQTT_PUB_QOS) == MQTT_PUB_QOS ?
				    MQTT_MALFORMED : MQTT_OK;
			else
				want = fl == fixed[t] ? MQTT_OK :
				    MQTT_MALFORMED;
			cr_assert_eq(frame(pkt, 4, 4, &f), want,
			    "type %u flags %u", t, fl);
			if (want != MQTT_OK)
				continue;
			cr_assert_eq(f.type, t);
			cr_assert_eq(f.flags, fl);
			cr_assert_eq(f.hdr_len, 2);
			cr_assert_eq(f.rem_len, 2);
			cr_assert_eq(f.total, 4);
		}
	}
	/* Type 0 is reserved, whatever follows. */
	cr_assert_eq(frame((const uint8_t[]){ 0x00, 0x00 }, 2, 2, &f),
	    MQTT_MALFORMED);
	cr_assert_eq(frame((const uint8_t[]){ 0x00 }, 1, 2, &f),
	    MQTT_MALFORMED);
	cr_assert_str_eq(mqtt_type_name(MQTT_PKT_SUBSCRIBE), "SUBSCRIBE");
	cr_assert_str_eq(mqtt_type_name(MQTT_PKT_AUTH), "AUTH");
	cr_assert_str_eq(mqtt_type_name(0), "?");
	cr_assert_str_eq(mqtt_type_name(16), "?");
}

/* Remaining lengths at every varint boundary, and the wrong forms. */
Test(mqtt, frame_remaining_length)
{
	static const struct {
		uint8_t b[6];
		size_t n;
		enum mqtt_status want;
		size_t hdr, rem;
	} cases[] = {
		{ { 0xc0, 0x00 }, 2, MQTT_OK, 2, 0 },
		{ { 0x30, 0x7f }, 2, MQTT_INCOMPLETE, 2, 127 },
		{ { 0x30, 0x80, 0x01 }, 3, MQTT_INCOMPLETE, 3, 128 },
		{ { 0x30, 0xff, 0x7f }, 3, MQTT_INCOMPLETE, 3, 16383 },
		{ { 0x30, 0x80, 0x80, 0x01 }, 4, MQTT_INCOMPLETE, 4, 16384 },
		{ { 0x30, 0xff, 0xff, 0x7f }, 4, MQTT_INCOMPLETE, 4, 2097151 },
		{ { 0x30, 0x80, 0x80, 0x80, 0x01 }, 5, MQTT_INCOMPLETE, 5,
		    2097152 },
		{ { 0x30, 0xff, 0xff, 0xff, 0x7f }, 5, MQTT_INCOMPLETE, 5,
		    MQTT_REMAINING_MAX },
		/* Header not all in yet. */
		{ { 0x30 }, 1, MQTT_INCOMPLETE, 0, 0 },
		{ { 0x30, 0x80 }, 2, MQTT_INCOMPLETE, 0, 0 },
		{ { 0x30, 0xff, 0xff, 0xff }, 4, MQTT_INCOMPLETE, 0, 0 },
		/* A fifth varint byte, and longer forms than needed. */
		{ { 0x30, 0xff, 0xff, 0xff, 0xff, 0x01 }, 6, MQTT_MALFORMED,
		    0, 0 },
		{ { 0x30, 0x80, 0x80, 0x80, 0x80 }, 5, MQTT_MALFORMED, 0, 0 },
		{ { 0x30, 0x80, 0x00 }, 3, MQTT_MALFORMED, 0, 0 },
		{ { 0x30, 0xff, 0x80, 0x00 }, 4, MQTT_MALFORMED, 0, 0 },
		{ { 0x30, 0x80, 0x80, 0x80, 0x00 }, 5, MQTT_MALFORMED, 0, 0 },
		/* Bad flags are refused before the length is in. */
		{ { 0x82 }, 1, MQTT_INCOMPLETE, 0, 0 },
		{ { 0x80 }, 1, MQTT_MALFORMED, 0, 0 },
		{ { 0x36, 0x80 }, 2, MQTT_MALFORMED, 0, 0 },
	};
	struct mqtt_frame f;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(frame(cases[i].b, cases[i].n, SIZE_MAX, &f),
		    cases[i].want, "case %zu: %s", i,
		    mqtt_status_str(frame(cases[i].b, cases[i].n, SIZE_MAX,
		    &f)));
		cr_assert_eq(f.hdr_len, cases[i].hdr, "case %zu", i);
		cr_assert_eq(f.rem_len, cases[i].rem, "case %zu", i);
		cr_assert_eq(f.total, cases[i].hdr + cases[i].rem, "case %zu",
		    i);
	}
}

/* The cap counts the whole packet and is checked from the header on. */
Test(mqtt, frame_cap)
{
	uint8_t pkt[2 + 100];
	struct mqtt_frame f;

	memset(pkt, 'x', sizeof(pkt));
	pkt[0] = 0x30;
	pkt[1] = 100;
	cr_assert_eq(frame(pkt, sizeof(pkt), 102, &f), MQTT_OK);
	cr_assert_eq(f.total, 102);
	cr_assert_eq(frame(pkt, sizeof(pkt), 101, &f), MQTT_TOO_LARGE);
	cr_assert_eq(f.total, 102);
	cr_assert_eq(f.type, MQTT_PKT_PUBLISH);
	/* Too large as soon as the header says so. */
	cr_assert_eq(frame(pkt, 2, 101, &f), MQTT_TOO_LARGE);
	cr_assert_eq(frame(pkt, 2, 102, &f), MQTT_INCOMPLETE);
	cr_assert_eq(f.total, 102);
	/* A bad header is malformed, not too large. */
	cr_assert_eq(frame((const uint8_t[]){ 0x30, 0x80, 0x00 }, 3, 1, &f),
	    MQTT_MALFORMED);
	cr_assert_eq(frame((const uint8_t[]){ 0xc0, 0x00 }, 2, 1, &f),
	    MQTT_TOO_LARGE);
}

/*
 * A stream of packets frames one after the other, each only once all of
 * it is in, and the framer never reads past what it is given.
 */
Test(mqtt, frame_a_stream)
{
	static const uint8_t stream[] = {
		0x10, 0x0d, MQTT4, 0x04, 0x02, KA, CID,   /* CONNECT */
		0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 't', 0x00, /* SUBSCRIBE */
		0x3b, 0x05, 0x00, 0x01, 't', 0x00, 0x07, /* PUBLISH QoS 1 */
		0x62, 0x02, 0x00, 0x07,                  /* PUBREL */
		0xc0, 0x00,                              /* PINGREQ */
		0xe0, 0x00,                              /* DISCONNECT */
	};
	static const uint8_t types[] = { MQTT_PKT_CONNECT, MQTT_PKT_SUBSCRIBE,
	    MQTT_PKT_PUBLISH, MQTT_PKT_PUBREL, MQTT_PKT_PINGREQ,
	    MQTT_PKT_DISCONNECT };
	struct mqtt_frame f;
	size_t off = 0, k = 0, n;

	while (off < sizeof(stream)) {
		cr_assert_eq(frame(stream + off, sizeof(stream) - off, 1024,
		    &f), MQTT_OK, "packet %zu", k);
		cr_assert_eq(f.type, types[k], "packet %zu", k);
		for (n = 0; n < f.total; n++)
			cr_assert_eq(frame(stream + off, n, 1024, &f),
			    MQTT_INCOMPLETE, "packet %zu cut at %zu", k, n);
		cr_assert_eq(frame(stream + off, sizeof(stream) - off, 1024,
		    &f), MQTT_OK);
		off += f.total;
		k++;
	}
	cr_assert_eq(k, sizeof(types));
	cr_assert_eq(off, sizeof(stream));
}

/* The CONNECT parser reads its fixed header through the framer. */
Test(mqtt, connect_fixed_header_through_the_framer)
{
	static const uint8_t pub_bad_qos[] = { 0x36, 0x00 };
	static const uint8_t connect_flags[] = { 0x11 };
	static const uint8_t type0[] = { 0x00, 0x00 };
	struct mqtt_connect c;
	const char *why;
	size_t used, total;

	/* Not a CONNECT wins over whatever else is wrong with it. */
	cr_assert_eq(mqtt_connect_parse(pub_bad_qos, 2, MAX, &c, &used, &why),
	    MQTT_NOT_CONNECT);
	cr_assert_eq(mqtt_connect_parse(type0, 2, MAX, &c, &used, &why),
	    MQTT_NOT_CONNECT);
	cr_assert_eq(mqtt_connect_need(connect_flags, 1, &total, &why),
	    MQTT_MALFORMED);
	cr_assert_str_eq(why, "CONNECT fixed header flags are not 0");
	cr_assert_eq(mqtt_connect_need(NULL, 0, &total, &why),
	    MQTT_INCOMPLETE);
}

/* The server's MQTT 5 DISCONNECT: type 14, reason code only. */
Test(mqtt, disconnect_encode)
{
	uint8_t out[4];
	struct mqtt_frame f;
	const char *why = NULL;

	cr_assert_eq(mqtt_disconnect_encode(MQTT_RC_ADMINISTRATIVE_ACTION,
	    out), 3);
	cr_assert_eq(out[0], 0xE0);
	cr_assert_eq(out[1], 1);
	cr_assert_eq(out[2], 0x98);
	cr_assert_eq(mqtt_frame(out, 3, 16, &f, &why), MQTT_OK);
	cr_assert_eq(f.type, MQTT_PKT_DISCONNECT);
	cr_assert_eq(f.total, 3);
}

/* --- the boundary tracker ------------------------------------------------ */

/* A stream of four packets (bodies of 0, 3, 200 and 20000 bytes, so that
 * remaining lengths take 1, 2 and 3 bytes) and where each one ends. */
static size_t
tracker_stream(uint8_t *out, size_t *ends)
{
	static const size_t body[] = { 0, 3, 200, 20000 };
	static const uint8_t first[] = { 0xd0, 0x30, 0x32, 0x90 };
	size_t n = 0, i, rem;

	for (i = 0; i < 4; i++) {
		out[n++] = first[i];
		rem = body[i];
		do {
			out[n] = rem & 0x7f;
			rem >>= 7;
			if (rem > 0)
				out[n] |= 0x80;
			n++;
		} while (rem > 0);
		memset(out + n, 0xd0, body[i]);     /* looks like a header */
		n += body[i];
		ends[i] = n;
	}
	return (n);
}

static int
is_end(const size_t *ends, size_t at)
{
	return (at == 0 || at == ends[0] || at == ends[1] || at == ends[2] ||
	    at == ends[3]);
}

Test(mqtt, tracker_split_at_every_byte)
{
	static uint8_t s[20300];
	struct mqtt_tracker t;
	size_t ends[4], n, cut;

	n = tracker_stream(s, ends);
	for (cut = 0; cut <= n; cut++) {
		memset(&t, 0, sizeof(t));
		cr_assert_eq(mqtt_tracker_feed(&t, s, cut, 0), cut);
		cr_assert_eq(mqtt_tracker_at_boundary(&t), is_end(ends, cut),
		    "cut at %zu", cut);
		cr_assert_eq(mqtt_tracker_feed(&t, s + cut, n - cut, 0),
		    n - cut);
		cr_assert(mqtt_tracker_at_boundary(&t), "cut at %zu", cut);
	}
}

Test(mqtt, tracker_byte_by_byte)
{
	static uint8_t s[20300];
	struct mqtt_tracker t;
	size_t ends[4], n, i;

	n = tracker_stream(s, ends);
	memset(&t, 0, sizeof(t));
	for (i = 0; i < n; i++) {
		cr_assert_eq(mqtt_tracker_feed(&t, s + i, 1, 0), 1);
		cr_assert_eq(mqtt_tracker_at_boundary(&t), is_end(ends, i + 1),
		    "after byte %zu", i);
	}
}

Test(mqtt, tracker_stops_at_the_boundary)
{
	static uint8_t s[20300];
	struct mqtt_tracker t;
	size_t ends[4], n, cut, took;
	int k;

	n = tracker_stream(s, ends);
	for (cut = 1; cut < n; cut++) {
		memset(&t, 0, sizeof(t));
		(void)mqtt_tracker_feed(&t, s, cut, 0);
		if (mqtt_tracker_at_boundary(&t))
			continue;
		took = mqtt_tracker_feed(&t, s + cut, n - cut, 1);
		for (k = 0; k < 4 && ends[k] <= cut; k++)
			;
		cr_assert_eq(cut + took, ends[k], "cut at %zu", cut);
		cr_assert(mqtt_tracker_at_boundary(&t));
	}
}

Test(mqtt, tracker_bad_stream_is_never_a_boundary)
{
	static const uint8_t zero_type[] = { 0x00, 0x00 };
	static const uint8_t long_len[] = { 0x30, 0xff, 0xff, 0xff, 0xff, 0x7f };
	struct mqtt_tracker t;

	memset(&t, 0, sizeof(t));
	cr_assert_eq(mqtt_tracker_feed(&t, zero_type, 2, 1), 2);
	cr_assert_not(mqtt_tracker_at_boundary(&t));
	memset(&t, 0, sizeof(t));
	cr_assert_eq(mqtt_tracker_feed(&t, long_len, 6, 0), 6);
	cr_assert_not(mqtt_tracker_at_boundary(&t));
}

/* --- the broker's first packet ------------------------------------------- */

/* Feed s[0..n) to a zeroed tracker in pieces of step bytes. */
static int
connack_code_fed(const uint8_t *s, size_t n, size_t step)
{
	struct mqtt_tracker t;
	size_t i, k;

	memset(&t, 0, sizeof(t));
	for (i = 0; i < n; i += k) {
		k = n - i < step ? n - i : step;
		cr_assert_eq(mqtt_tracker_feed(&t, s + i, k, 0), k);
	}
	return (mqtt_tracker_connack_code(&t));
}

Test(mqtt, tracker_connack_code_every_version_and_split)
{
	/* 3.1.1 refused (5), then a PUBLISH whose body looks like one */
	static const uint8_t v3[] = { 0x20, 0x02, 0x00, 0x05,
	    0x30, 0x03, 0x00, 0x01, 0x87 };
	/* 5: session present, 0x87, empty properties */
	static const uint8_t v5[] = { 0x20, 0x03, 0x01, 0x87, 0x00 };
	static const uint8_t ok[] = { 0x20, 0x02, 0x00, 0x00 };
	size_t step;

	for (step = 1; step <= sizeof(v3); step++) {
		cr_assert_eq(connack_code_fed(v3, sizeof(v3), step),
		    MQTT_CONNACK_V3_NOT_AUTHORIZED, "step %zu", step);
		cr_assert_eq(connack_code_fed(v5, sizeof(v5), step),
		    MQTT_RC_NOT_AUTHORIZED, "step %zu", step);
		cr_assert_eq(connack_code_fed(ok, sizeof(ok), step),
		    MQTT_CONNACK_V3_ACCEPTED, "step %zu", step);
	}
}

Test(mqtt, tracker_connack_code_only_from_the_first_packet)
{
	/* a PUBLISH first, then a CONNACK: no code */
	static const uint8_t pub_first[] = { 0x30, 0x03, 0x00, 0x01, 0x41,
	    0x20, 0x02, 0x00, 0x05 };
	/* a CONNACK too short to carry a code, then another packet */
	static const uint8_t short_ack[] = { 0x20, 0x01, 0x00,
	    0x30, 0x02, 0x00, 0x00 };
	static const uint8_t half[] = { 0x20, 0x02, 0x00 };
	static const uint8_t zero_type[] = { 0x00, 0x02, 0x00, 0x05 };
	struct mqtt_tracker t;

	cr_assert_eq(connack_code_fed(pub_first, sizeof(pub_first), 1), -1);
	cr_assert_eq(connack_code_fed(short_ack, sizeof(short_ack), 1), -1);
	cr_assert_eq(connack_code_fed(half, sizeof(half), 1), -1);
	cr_assert_eq(connack_code_fed(zero_type, sizeof(zero_type), 4), -1);
	memset(&t, 0, sizeof(t));
	cr_assert_eq(mqtt_tracker_connack_code(&t), -1);
}

/* --- packets after the CONNECT: readers and encoders ------------------- */

/*
 * A packet of any type: first byte, the remaining length of body and the
 * body, in a malloc'd buffer of exactly its size (*len).
 */
static uint8_t *
wrap(uint8_t first, const uint8_t *body, size_t n, size_t *len)
{
	struct pb p = { NULL, 0, 0 };
	uint8_t *out;

	pb_u8(&p, first);
	pb_varint(&p, n);
	pb_put(&p, body, n);
	out = exact(p.b, p.len);
	*len = p.len;
	free(p.b);
	return (out);
}

#define L311 MQTT_LEVEL_311
#define L5   MQTT_LEVEL_5
#define L31  MQTT_LEVEL_31

/* Packet bodies: a topic or filter "a/b", a packet identifier of 7. */
#define T_AB    0x00, 0x03, 'a', '/', 'b'
#define PID7    0x00, 0x07

struct pub_good {
	const char *name;
	uint8_t level, first;
	const uint8_t *body;
	size_t len;
	uint8_t qos, retain, dup;
	uint16_t packet_id;
	struct want topic;
	int has_alias;
	uint16_t alias;
	size_t props_len;
	struct want payload;
};

#define PUBG(name, lvl, first, qos, ret, dup, pid, topic, ha, alias, pl,  \
    payload, ...)                                                        \
	{ name, lvl, first, B(__VA_ARGS__), qos, ret, dup, pid, topic, ha, \
	  alias, pl, payload }

static const struct pub_good pub_goods[] = {
	PUBG("3.1.1 QoS 0", L311, 0x30, 0, 0, 0, 0, S("a/b"), 0, 0, 0,
	    S("hi"), T_AB, 'h', 'i'),
	PUBG("3.1 QoS 0 retained, empty payload", L31, 0x31, 0, 1, 0, 0,
	    S("a/b"), 0, 0, 0, ABSENT, T_AB),
	PUBG("3.1.1 QoS 1 DUP", L311, 0x3a, 1, 0, 1, 7, S("a/b"), 0, 0, 0,
	    S("x"), T_AB, PID7, 'x'),
	PUBG("3.1.1 QoS 2", L311, 0x34, 2, 0, 0, 7, S("a/b"), 0, 0, 0,
	    S("x"), T_AB, PID7, 'x'),
	PUBG("3.1.1 $ topic and UTF-8", L311, 0x30, 0, 0, 0, 0,
	    S("$x/\xc3\xa9"), 0, 0, 0, S("p"),
	    0x00, 0x05, '$', 'x', '/', 0xc3, 0xa9, 'p'),
	PUBG("5 QoS 0 no properties", L5, 0x30, 0, 0, 0, 0, S("a/b"), 0, 0,
	    0, S("hi"), T_AB, 0x00, 'h', 'i'),
	PUBG("5 QoS 1 alias 3 with topic", L5, 0x32, 1, 0, 0, 7, S("a/b"),
	    1, 3, 3, S("x"), T_AB, PID7, 0x03, 0x23, 0x00, 0x03, 'x'),
	PUBG("5 empty topic with alias 9", L5, 0x30, 0, 0, 0, 0, S(""), 1, 9,
	    3, S("x"), 0x00, 0x00, 0x03, 0x23, 0x00, 0x09, 'x'),
	PUBG("5 alias 0 is read (the caller refuses it)", L5, 0x30, 0, 0, 0,
	    0, S("a/b"), 1, 0, 3, ABSENT, T_AB, 0x03, 0x23, 0x00, 0x00),
	PUBG("5 every PUBLISH property", L5, 0x30, 0, 0, 0, 0, S("a/b"), 1,
	    2, 28, S("z"), T_AB, 28,
	    0x01, 0x01,                                 /* payload format */
	    0x02, 0x00, 0x00, 0x00, 0x3c,               /* expiry */
	    0x23, 0x00, 0x02,                           /* topic alias */
	    0x08, 0x00, 0x01, 'r',                      /* response topic */
	    0x09, 0x00, 0x01, 0xff,                     /* correlation */
	    0x26, 0x00, 0x01, 'k', 0x00, 0x00,          /* user property */
	    0x03, 0x00, 0x01, 't',                      /* content type */
	    'z'),
};

Test(mqtt, publish_read)
{
	struct mqtt_publish p;
	const char *why;
	uint8_t *buf;
	size_t i, len;

	for (i = 0; i < sizeof(pub_goods) / sizeof(pub_goods[0]); i++) {
		const struct pub_good *g = &pub_goods[i];

		buf = wrap(g->first, g->body, g->len, &len);
		why = NULL;
		cr_assert_eq(mqtt_publish_read(buf, len, g->level, &p, &why),
		    MQTT_OK, "%s: %s", g->name, why ? why : "-");
		cr_assert(p.qos == g->qos && p.retain == g->retain &&
		    p.dup == g->dup, "%s: flags", g->name);
		cr_assert_eq(p.packet_id, g->packet_id, "%s: id", g->name);
		check_view(g->name, "topic", &p.topic, &g->topic);
		cr_assert_eq(p.has_alias, g->has_alias, "%s: alias", g->name);
		cr_assert_eq(p.alias, g->alias, "%s: alias value", g->name);
		cr_assert_eq(p.props.len, g->props_len, "%s: props", g->name);
		cr_assert_eq(p.payload.len, g->payload.n, "%s: payload",
		    g->name);
		if (g->payload.n > 0)
			cr_assert(memcmp(p.payload.p, g->payload.s,
			    g->payload.n) == 0, "%s: payload", g->name);
		cr_assert(p.payload.p + p.payload.len == buf + len);
		free(buf);
	}
}

struct pkt_bad {
	const char *name;
	uint8_t level, first;
	const uint8_t *body;
	size_t len;
};

#define PBAD(name, lvl, first, ...) { name, lvl, first, B(__VA_ARGS__) }

static const struct pkt_bad pub_bads[] = {
	PBAD("topic length crosses the end", L311, 0x30, 0x00, 0x05, 'a'),
	PBAD("one byte of topic length", L311, 0x30, 0x00),
	PBAD("empty body", L311, 0x30),
	PBAD("packet id cut", L311, 0x32, T_AB, 0x00),
	PBAD("packet id 0 at QoS 1", L311, 0x32, T_AB, 0x00, 0x00),
	PBAD("packet id 0 at QoS 2", L5, 0x34, T_AB, 0x00, 0x00, 0x00),
	PBAD("DUP at QoS 0", L311, 0x38, T_AB),
	PBAD("empty topic, 3.1.1", L311, 0x30, 0x00, 0x00, 'x'),
	PBAD("empty topic, 5, no alias", L5, 0x30, 0x00, 0x00, 0x00, 'x'),
	PBAD("'+' in topic", L311, 0x30, 0x00, 0x03, 'a', '/', '+'),
	PBAD("'#' in topic", L5, 0x30, 0x00, 0x01, '#', 0x00),
	PBAD("'+' inside a level", L311, 0x30, 0x00, 0x02, 'a', '+'),
	PBAD("bad UTF-8 topic", L311, 0x30, 0x00, 0x02, 'a', 0xff),
	PBAD("overlong UTF-8 topic", L311, 0x30, 0x00, 0x02, 0xc0, 0xaf),
	PBAD("U+0000 in topic", L311, 0x30, 0x00, 0x02, 'a', 0x00),
	PBAD("surrogate in topic", L311, 0x30, 0x00, 0x03, 0xed, 0xa0,
	    0x80),
	PBAD("5: property length crosses the end", L5, 0x30, T_AB, 0x05,
	    0x23, 0x00),
	PBAD("5: property length missing", L5, 0x30, T_AB),
	PBAD("5: property length not shortest", L5, 0x30, T_AB, 0x80, 0x00),
	PBAD("5: property value crosses the list", L5, 0x30, T_AB, 0x02,
	    0x23, 0x00, 0x01),
	PBAD("5: topic alias twice", L5, 0x30, T_AB, 0x06, 0x23, 0x00, 0x01,
	    0x23, 0x00, 0x02),
	PBAD("5: subscription identifier from a client", L5, 0x30, T_AB,
	    0x02, 0x0b, 0x01),
	PBAD("5: CONNECT property in a PUBLISH", L5, 0x30, T_AB, 0x05,
	    0x11, 0x00, 0x00, 0x00, 0x01),
	PBAD("5: unknown property", L5, 0x30, T_AB, 0x02, 0x7f, 0x00),
	PBAD("5: payload format 2", L5, 0x30, T_AB, 0x02, 0x01, 0x02),
	PBAD("5: bad UTF-8 content type", L5, 0x30, T_AB, 0x04, 0x03, 0x00,
	    0x01, 0xff),
	PBAD("not a PUBLISH", L311, 0x40, T_AB),
};

/* Every row must be refused, with a reason and the output cleared. */
Test(mqtt, publish_refused)
{
	struct mqtt_publish p;
	const char *why;
	uint8_t *buf;
	size_t i, len;

	for (i = 0; i < sizeof(pub_bads) / sizeof(pub_bads[0]); i++) {
		const struct pkt_bad *b = &pub_bads[i];

		buf = wrap(b->first, b->body, b->len, &len);
		why = NULL;
		cr_assert_eq(mqtt_publish_read(buf, len, b->level, &p, &why),
		    MQTT_MALFORMED, "%s: accepted", b->name);
		cr_assert(why != NULL && why[0] != '\0', "%s", b->name);
		cr_assert(p.topic.p == NULL && p.qos == 0 &&
		    p.payload.p == NULL, "%s: fields left set", b->name);
		free(buf);
	}
}

/* QoS 3 and a PUBLISH cut short or with bytes after it: the framer's. */
Test(mqtt, publish_not_one_whole_packet)
{
	static const uint8_t qos3[] = { 0x36, 0x07, T_AB, PID7 };
	static const uint8_t ok[] = { 0x32, 0x08, T_AB, PID7, 'x' };
	struct mqtt_publish p;
	const char *why;
	uint8_t *buf;
	size_t n;

	buf = exact(qos3, sizeof(qos3));
	cr_assert_eq(mqtt_publish_read(buf, sizeof(qos3), L311, &p, &why),
	    MQTT_MALFORMED);
	free(buf);
	for (n = 0; n < sizeof(ok); n++) {
		buf = exact(ok, n);
		cr_assert_eq(mqtt_publish_read(buf, n, L311, &p, &why),
		    MQTT_MALFORMED, "cut at %zu", n);
		free(buf);
	}
	buf = exact((const uint8_t[]){ 0x32, 0x08, T_AB, PID7, 'x', 0xc0,
	    0x00 }, sizeof(ok) + 2);
	cr_assert_eq(mqtt_publish_read(buf, sizeof(ok) + 2, L311, &p, &why),
	    MQTT_MALFORMED, "bytes after the packet");
	cr_assert_eq(mqtt_publish_read(buf, sizeof(ok), L311, &p, &why),
	    MQTT_OK, "%s", why);
	free(buf);
}

/* --- SUBSCRIBE and UNSUBSCRIBE ------------------------------------------ */

struct sub_good {
	const char *name;
	uint8_t level, first;
	const uint8_t *body;
	size_t len;
	size_t count, props_len;
	const char *filters[4];
	uint8_t options[4];
};

#define SUBG(name, lvl, first, n, pl, f, o, ...)                         \
	{ name, lvl, first, B(__VA_ARGS__), n, pl, f, o }
#define F(...) { __VA_ARGS__ }

static const struct sub_good sub_goods[] = {
	SUBG("3.1.1 one filter", L311, 0x82, 1, 0, F("a/b"), F(1),
	    PID7, T_AB, 0x01),
	SUBG("3.1 three filters with wildcards", L31, 0x82, 3, 0,
	    F("#", "+", "a/+/#"), F(0, 2, 1),
	    PID7, 0x00, 0x01, '#', 0x00, 0x00, 0x01, '+', 0x02,
	    0x00, 0x05, 'a', '/', '+', '/', '#', 0x01),
	SUBG("3.1.1 shared subscription and empty levels", L311, 0x82, 2, 0,
	    F("$share/g/a", "a//"), F(0, 0),
	    PID7, 0x00, 0x0a, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/',
	    'a', 0x00, 0x00, 0x03, 'a', '/', '/', 0x00),
	SUBG("5 every option and properties", L5, 0x82, 2, 9,
	    F("a/b", "+/+"), F(0x2e, 0x1d),
	    PID7, 0x09, 0x0b, 0x81, 0x01, 0x26, 0x00, 0x01, 'k', 0x00, 0x00,
	    T_AB, 0x2e, 0x00, 0x03, '+', '/', '+', 0x1d),
	SUBG("3.1.1 UNSUBSCRIBE", L311, 0xa2, 2, 0, F("a/b", "#"), F(0, 0),
	    PID7, T_AB, 0x00, 0x01, '#'),
	SUBG("5 UNSUBSCRIBE with a user property", L5, 0xa2, 1, 5,
	    F("a/b"), F(0),
	    PID7, 0x05, 0x26, 0x00, 0x00, 0x00, 0x00, T_AB),
};

static enum mqtt_status
filters_read_any(const uint8_t *buf, size_t len, uint8_t level,
    uint8_t first, struct mqtt_subscribe *s, const char **why)
{
	if (first >> 4 == MQTT_PKT_UNSUBSCRIBE)
		return (mqtt_unsubscribe_read(buf, len, level, s, why));
	return (mqtt_subscribe_read(buf, len, level, s, why));
}

Test(mqtt, subscribe_read)
{
	struct mqtt_subscribe s;
	struct mqtt_filter f;
	const char *why;
	uint8_t *buf;
	size_t i, k, len, pos;

	for (i = 0; i < sizeof(sub_goods) / sizeof(sub_goods[0]); i++) {
		const struct sub_good *g = &sub_goods[i];

		buf = wrap(g->first, g->body, g->len, &len);
		why = NULL;
		cr_assert_eq(filters_read_any(buf, len, g->level, g->first,
		    &s, &why), MQTT_OK, "%s: %s", g->name, why ? why : "-");
		cr_assert_eq(s.packet_id, 7, "%s", g->name);
		cr_assert_eq(s.count, g->count, "%s: count", g->name);
		cr_assert_eq(s.props.len, g->props_len, "%s: props", g->name);
		for (pos = 0, k = 0; mqtt_filters_next(&s, &pos, &f); k++) {
			cr_assert_lt(k, g->count, "%s: too many", g->name);
			cr_assert_eq(f.filter.len, strlen(g->filters[k]));
			cr_assert(memcmp(f.filter.p, g->filters[k],
			    f.filter.len) == 0, "%s: filter %zu", g->name, k);
			cr_assert_eq(f.options, g->options[k], "%s: %zu",
			    g->name, k);
			cr_assert_eq(f.entry.p, f.filter.p - 2);
		}
		cr_assert_eq(k, g->count, "%s: walked %zu", g->name, k);
		cr_assert_eq(pos, s.list.len);
		free(buf);
	}
}

static const struct pkt_bad sub_bads[] = {
	PBAD("no filter", L311, 0x82, PID7),
	PBAD("5: no filter", L5, 0x82, PID7, 0x00),
	PBAD("packet id 0", L311, 0x82, 0x00, 0x00, T_AB, 0x00),
	PBAD("packet id cut", L311, 0x82, 0x00),
	PBAD("options byte missing", L311, 0x82, PID7, T_AB),
	PBAD("filter crosses the end", L311, 0x82, PID7, 0x00, 0x09, 'a',
	    0x00),
	PBAD("empty filter", L311, 0x82, PID7, 0x00, 0x00, 0x00),
	PBAD("QoS 3", L311, 0x82, PID7, T_AB, 0x03),
	PBAD("3.1.1 reserved option bit 2", L311, 0x82, PID7, T_AB, 0x04),
	PBAD("3.1.1 reserved option bit 7", L311, 0x82, PID7, T_AB, 0x80),
	PBAD("5 reserved option bit 6", L5, 0x82, PID7, 0x00, T_AB, 0x40),
	PBAD("5 retain handling 3", L5, 0x82, PID7, 0x00, T_AB, 0x30),
	PBAD("'#' not last", L311, 0x82, PID7, 0x00, 0x03, '#', '/', 'a',
	    0x00),
	PBAD("'#' inside a level", L311, 0x82, PID7, 0x00, 0x02, 'a', '#',
	    0x00),
	PBAD("'+' inside a level", L311, 0x82, PID7, 0x00, 0x03, '+', 'a',
	    '/', 0x00),
	PBAD("bad UTF-8 filter", L311, 0x82, PID7, 0x00, 0x01, 0x80, 0x00),
	PBAD("5: subscription identifier 0", L5, 0x82, PID7, 0x02, 0x0b,
	    0x00, T_AB, 0x00),
	PBAD("5: subscription identifier twice", L5, 0x82, PID7, 0x04, 0x0b,
	    0x01, 0x0b, 0x02, T_AB, 0x00),
	PBAD("5: topic alias in a SUBSCRIBE", L5, 0x82, PID7, 0x03, 0x23,
	    0x00, 0x01, T_AB, 0x00),
	PBAD("5: property list crosses the end", L5, 0x82, PID7, 0x09),
	PBAD("UNSUBSCRIBE: no filter", L311, 0xa2, PID7),
	PBAD("UNSUBSCRIBE: empty filter", L311, 0xa2, PID7, 0x00, 0x00),
	PBAD("UNSUBSCRIBE: filter crosses the end", L311, 0xa2, PID7, 0x00,
	    0x04, 'a'),
	PBAD("UNSUBSCRIBE: packet id 0", L311, 0xa2, 0x00, 0x00, T_AB),
	PBAD("5 UNSUBSCRIBE: subscription identifier", L5, 0xa2, PID7, 0x02,
	    0x0b, 0x01, T_AB),
};

Test(mqtt, subscribe_refused)
{
	struct mqtt_subscribe s;
	const char *why;
	uint8_t *buf;
	size_t i, len;

	for (i = 0; i < sizeof(sub_bads) / sizeof(sub_bads[0]); i++) {
		const struct pkt_bad *b = &sub_bads[i];

		buf = wrap(b->first, b->body, b->len, &len);
		why = NULL;
		cr_assert_eq(filters_read_any(buf, len, b->level, b->first,
		    &s, &why), MQTT_MALFORMED, "%s: accepted", b->name);
		cr_assert(why != NULL && why[0] != '\0', "%s", b->name);
		cr_assert(s.count == 0 && s.list.p == NULL, "%s: fields",
		    b->name);
		free(buf);
	}
	/* A SUBSCRIBE is not an UNSUBSCRIBE, nor the other way round. */
	buf = wrap(0x82, (const uint8_t[]){ PID7, T_AB, 0x00 }, 8, &len);
	cr_assert_eq(mqtt_unsubscribe_read(buf, len, L311, &s, &why),
	    MQTT_MALFORMED);
	free(buf);
}

/* Keep filters 0 and 2 of three: same id, properties, entries. */
Test(mqtt, subscribe_encode_some)
{
	static const uint8_t v3[] = { PID7, 0x00, 0x01, 'a', 0x01,
	    0x00, 0x01, 'b', 0x00, 0x00, 0x01, 'c', 0x02 };
	static const uint8_t v3_want[] = { 0x82, 0x0a, PID7,
	    0x00, 0x01, 'a', 0x01, 0x00, 0x01, 'c', 0x02 };
	static const uint8_t v5[] = { PID7, 0x02, 0x0b, 0x05,
	    0x00, 0x01, 'a', 0x01, 0x00, 0x01, 'b', 0x00,
	    0x00, 0x01, 'c', 0x22 };
	static const uint8_t v5_want[] = { 0x82, 0x0d, PID7, 0x02, 0x0b, 0x05,
	    0x00, 0x01, 'a', 0x01, 0x00, 0x01, 'c', 0x22 };
	const uint8_t keep = 0x05, none = 0x00, all = 0x07;
	struct mqtt_subscribe s, again;
	uint8_t *buf, out[64];
	const char *why;
	size_t len, n;

	buf = wrap(0x82, v3, sizeof(v3), &len);
	cr_assert_eq(mqtt_subscribe_read(buf, len, L311, &s, &why), MQTT_OK);
	n = mqtt_subscribe_encode_some(&s, &keep, out, sizeof(out));
	cr_assert_eq(n, sizeof(v3_want));
	cr_assert(memcmp(out, v3_want, n) == 0);
	cr_assert_eq(mqtt_subscribe_read(out, n, L311, &again, &why),
	    MQTT_OK, "%s", why);
	cr_assert_eq(again.count, 2);
	cr_assert_eq(mqtt_subscribe_encode_some(&s, &keep, out, n - 1), 0,
	    "one byte short");
	cr_assert_eq(mqtt_subscribe_encode_some(&s, &none, out, sizeof(out)),
	    0, "nothing kept");
	n = mqtt_subscribe_encode_some(&s, &all, out, sizeof(out));
	cr_assert(n == len && memcmp(out, buf, len) == 0, "all kept");
	free(buf);

	buf = wrap(0x82, v5, sizeof(v5), &len);
	cr_assert_eq(mqtt_subscribe_read(buf, len, L5, &s, &why), MQTT_OK);
	n = mqtt_subscribe_encode_some(&s, &keep, out, sizeof(out));
	cr_assert_eq(n, sizeof(v5_want));
	cr_assert(memcmp(out, v5_want, n) == 0);
	free(buf);
}

/* The remaining length shrinks to fewer bytes when filters go. */
Test(mqtt, subscribe_encode_some_shorter_header)
{
	struct pb p = { NULL, 0, 0 };
	struct mqtt_subscribe s;
	uint8_t *buf, *out, keep[8] = { 0x01 };
	const char *why;
	size_t len, n, i;
	char f[30];

	pb_u16(&p, 9);
	for (i = 0; i < 40; i++) {       /* 40 entries of 33 bytes */
		memset(f, 'a' + (int)(i % 26), sizeof(f));
		pb_str(&p, f, sizeof(f));
		pb_u8(&p, 0);
	}
	buf = wrap(0x82, p.b, p.len, &len);
	cr_assert_eq(len, 1 + 2 + p.len);
	cr_assert_eq(mqtt_subscribe_read(buf, len, L311, &s, &why), MQTT_OK);
	cr_assert_eq(s.count, 40);
	out = malloc(len);
	cr_assert_not_null(out);
	n = mqtt_subscribe_encode_some(&s, keep, out, len);
	cr_assert_eq(n, 1 + 1 + 2 + 33);
	cr_assert_eq(out[1], 2 + 33);
	free(out);
	free(buf);
	free(p.b);
}

/* --- SUBACK and the acknowledgements ------------------------------------ */

Test(mqtt, suback_read)
{
	static const uint8_t v3[] = { 0x90, 0x05, PID7, 0x00, 0x80, 0x02 };
	static const uint8_t v5[] = { 0x90, 0x0b, PID7, 0x05, 0x1f, 0x00,
	    0x02, 'n', 'o', 0x00, 0x87, 0x01 };
	struct mqtt_suback a;
	const char *why;
	uint8_t *buf;

	buf = exact(v3, sizeof(v3));
	cr_assert_eq(mqtt_suback_read(buf, sizeof(v3), L311, &a, &why),
	    MQTT_OK, "%s", why);
	cr_assert(a.packet_id == 7 && a.codes.len == 3 &&
	    a.codes.p == buf + 4 && a.props.len == 0);
	free(buf);
	buf = exact(v5, sizeof(v5));
	cr_assert_eq(mqtt_suback_read(buf, sizeof(v5), L5, &a, &why),
	    MQTT_OK, "%s", why);
	cr_assert(a.packet_id == 7 && a.codes.len == 3 &&
	    a.props.len == 5 && a.props.p == buf + 5);
	free(buf);
}

static const struct pkt_bad suback_bads[] = {
	PBAD("no code", L311, 0x90, PID7),
	PBAD("5: no code", L5, 0x90, PID7, 0x00),
	PBAD("packet id cut", L311, 0x90, 0x00),
	PBAD("5: property list crosses the end", L5, 0x90, PID7, 0x04, 0x00),
	PBAD("5: reason string twice", L5, 0x90, PID7, 0x06, 0x1f, 0x00,
	    0x00, 0x1f, 0x00, 0x00, 0x00),
	PBAD("5: topic alias in a SUBACK", L5, 0x90, PID7, 0x03, 0x23, 0x00,
	    0x01, 0x00),
	PBAD("not a SUBACK", L311, 0xb0, PID7, 0x00),
};

Test(mqtt, suback_refused)
{
	struct mqtt_suback a;
	const char *why;
	uint8_t *buf;
	size_t i, len;

	for (i = 0; i < sizeof(suback_bads) / sizeof(suback_bads[0]); i++) {
		const struct pkt_bad *b = &suback_bads[i];

		buf = wrap(b->first, b->body, b->len, &len);
		why = NULL;
		cr_assert_eq(mqtt_suback_read(buf, len, b->level, &a, &why),
		    MQTT_MALFORMED, "%s: accepted", b->name);
		cr_assert(why != NULL && a.codes.p == NULL, "%s", b->name);
		free(buf);
	}
}

Test(mqtt, suback_encode)
{
	static const uint8_t codes[] = { 0x00, 0x80, 0x02 };
	static const uint8_t v3_want[] = { 0x90, 0x05, PID7, 0x00, 0x80,
	    0x02 };
	static const uint8_t v5_want[] = { 0x90, 0x06, PID7, 0x00, 0x00, 0x80,
	    0x02 };
	static const uint8_t v5p_want[] = { 0x90, 0x0a, PID7, 0x04, 0x1f, 0x00,
	    0x01, 'x', 0x00, 0x80, 0x02 };
	const struct mqtt_str props = { v5p_want + 5, 4 };
	uint8_t out[32];
	size_t n;

	cr_assert_eq(mqtt_suback_size(L311, 0, 3), sizeof(v3_want));
	n = mqtt_suback_encode(L311, 7, NULL, codes, 3, out, sizeof(out));
	cr_assert(n == sizeof(v3_want) && memcmp(out, v3_want, n) == 0);
	n = mqtt_suback_encode(L5, 7, NULL, codes, 3, out, sizeof(out));
	cr_assert(n == sizeof(v5_want) && memcmp(out, v5_want, n) == 0);
	cr_assert_eq(mqtt_suback_size(L5, 4, 3), sizeof(v5p_want));
	n = mqtt_suback_encode(L5, 7, &props, codes, 3, out, sizeof(out));
	cr_assert(n == sizeof(v5p_want) && memcmp(out, v5p_want, n) == 0);
	cr_assert_eq(mqtt_suback_encode(L5, 7, &props, codes, 3, out,
	    sizeof(v5p_want) - 1), 0, "one byte short");
	cr_assert_eq(mqtt_suback_size(L311, 0, 0), 0, "no code");
	cr_assert_eq(mqtt_suback_encode(L311, 7, NULL, codes, 0, out,
	    sizeof(out)), 0, "no code");
	cr_assert_eq(mqtt_suback_size(L311, 0, MQTT_REMAINING_MAX), 0);

	/* The codes already in place at the end of out. */
	memset(out, 0xee, sizeof(out));
	memcpy(out + sizeof(v5_want) - 3, codes, 3);
	n = mqtt_suback_encode(L5, 7, NULL, out + sizeof(v5_want) - 3, 3, out,
	    sizeof(v5_want));
	cr_assert(n == sizeof(v5_want) && memcmp(out, v5_want, n) == 0);
}

Test(mqtt, ack_encode)
{
	static const struct {
		uint8_t type, level, reason;
		uint8_t want[MQTT_ACK_MAX];
		size_t n;
	} rows[] = {
		{ MQTT_PKT_PUBACK, L311, 0x00, { 0x40, 0x02, 0x01, 0x02 }, 4 },
		{ MQTT_PKT_PUBACK, L311, MQTT_RC_NOT_AUTHORIZED,
		    { 0x40, 0x02, 0x01, 0x02 }, 4 },
		{ MQTT_PKT_PUBREC, L31, 0x00, { 0x50, 0x02, 0x01, 0x02 }, 4 },
		{ MQTT_PKT_PUBREL, L311, 0x00, { 0x62, 0x02, 0x01, 0x02 }, 4 },
		{ MQTT_PKT_PUBCOMP, L311, 0x00, { 0x70, 0x02, 0x01, 0x02 }, 4 },
		{ MQTT_PKT_PUBACK, L5, MQTT_RC_SUCCESS,
		    { 0x40, 0x02, 0x01, 0x02 }, 4 },
		{ MQTT_PKT_PUBACK, L5, MQTT_RC_NOT_AUTHORIZED,
		    { 0x40, 0x03, 0x01, 0x02, 0x87 }, 5 },
		{ MQTT_PKT_PUBREC, L5, MQTT_RC_NOT_AUTHORIZED,
		    { 0x50, 0x03, 0x01, 0x02, 0x87 }, 5 },
		{ MQTT_PKT_PUBCOMP, L5, MQTT_RC_SUCCESS,
		    { 0x70, 0x02, 0x01, 0x02 }, 4 },
	};
	uint8_t out[MQTT_ACK_MAX];
	struct mqtt_frame f;
	const char *why;
	size_t i, n;

	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		n = mqtt_ack_encode(rows[i].type, rows[i].level, 0x0102,
		    rows[i].reason, out);
		cr_assert_eq(n, rows[i].n, "row %zu", i);
		cr_assert(memcmp(out, rows[i].want, n) == 0, "row %zu", i);
		cr_assert_eq(mqtt_frame(out, n, n, &f, &why), MQTT_OK);
	}
	cr_assert_eq(mqtt_ack_encode(MQTT_PKT_SUBACK, L5, 1, 0, out), 0);
	cr_assert_eq(mqtt_ack_encode(MQTT_PKT_CONNECT, L311, 1, 0, out), 0);
}
