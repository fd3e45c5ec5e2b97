/* SPDX-License-Identifier: MIT */
/*
 * The MQTT CONNECT codec: the first packet a device sends, parsed strictly
 * from untrusted bytes (MQTT 3.1, 3.1.1 and 5.0) and re-encoded from views
 * after the identity layer has replaced the credentials, plus the CONNACK
 * moat answers with when it refuses a device. Under the CONNECT parser sits
 * the framer, mqtt_frame(), which reads the fixed header of any packet
 * type; it is the only fixed-header reader here. After the CONNECT, the
 * readers of whole PUBLISH, SUBSCRIBE, UNSUBSCRIBE and SUBACK packets and
 * the encoders of the answers and rewrites the topic guard (guard.c)
 * sends: SUBACK, PUBACK/PUBREC/PUBCOMP, a SUBSCRIBE with fewer filters.
 *
 * Every read goes through one bounds-checked cursor that knows two limits:
 * where the packet ends (from its remaining length) and how many of its
 * bytes have arrived. A field that would cross the packet's end is
 * MQTT_MALFORMED at once; one that crosses only the bytes received so far is
 * MQTT_INCOMPLETE. So a bad packet is refused as soon as the bad field is
 * wholly present, without waiting for the rest.
 *
 * Stricter than the letter of 3.1 / 3.1.1 in one place: a variable byte
 * integer (remaining length, property lengths) must use the fewest bytes,
 * as MQTT 5.0 requires, for every version. Hence any CONNECT the parser
 * accepts re-encodes to exactly the same bytes.
 *
 * Not checked here, by design: the client identifier's length and
 * characters (MQTT 3.1 allows 1..23; the identity layer owns client-id
 * policy) and an empty client identifier without clean session (a CONNACK
 * 0x02 matter, not a malformed packet).
 *
 * Pure: no I/O, no allocation; views point into the caller's buffer.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "moat/mqtt.h"
#include "moat/text.h"

#define CONNECT_BYTE   (MQTT_PKT_CONNECT << 4)         /* flags 0 */
#define VARINT_MAX     MQTT_REMAINING_MAX
#define STR_MAX        65535u

/* Where we are in a packet, and the two limits described above. */
struct cursor {
	const uint8_t *buf;
	size_t pos;        /* next byte to read */
	size_t end;        /* end of the packet (may lie beyond avail) */
	size_t avail;      /* end of the bytes received (<= end) */
	const char *why;   /* the problem, when a read fails */
};

/* --- reading ---------------------------------------------------------- */

/*
 * May n more bytes be read? MALFORMED when they would cross the end of the
 * packet (with "overrun" as the reason), INCOMPLETE when they have not all
 * arrived yet.
 */
static enum mqtt_status
need(struct cursor *c, size_t n, const char *overrun)
{
	if (n > c->end - c->pos) {
		c->why = overrun;
		return (MQTT_MALFORMED);
	}
	if (n > c->avail - c->pos) {
		c->why = "waiting for the rest of the CONNECT";
		return (MQTT_INCOMPLETE);
	}
	return (MQTT_OK);
}

static enum mqtt_status
get_u8(struct cursor *c, uint8_t *v, const char *overrun)
{
	enum mqtt_status st;

	if ((st = need(c, 1, overrun)) != MQTT_OK)
		return (st);
	*v = c->buf[c->pos++];
	return (MQTT_OK);
}

static enum mqtt_status
get_u16(struct cursor *c, uint16_t *v, const char *overrun)
{
	enum mqtt_status st;

	if ((st = need(c, 2, overrun)) != MQTT_OK)
		return (st);
	*v = (uint16_t)(c->buf[c->pos] << 8 | c->buf[c->pos + 1]);
	c->pos += 2;
	return (MQTT_OK);
}

static enum mqtt_status
get_u32(struct cursor *c, uint32_t *v, const char *overrun)
{
	enum mqtt_status st;

	if ((st = need(c, 4, overrun)) != MQTT_OK)
		return (st);
	*v = (uint32_t)c->buf[c->pos] << 24 |
	    (uint32_t)c->buf[c->pos + 1] << 16 |
	    (uint32_t)c->buf[c->pos + 2] << 8 | (uint32_t)c->buf[c->pos + 3];
	c->pos += 4;
	return (MQTT_OK);
}

/* n bytes as a view; the length was read by the caller. */
static enum mqtt_status
get_bytes(struct cursor *c, size_t n, struct mqtt_str *v,
    const char *overrun)
{
	enum mqtt_status st;

	if ((st = need(c, n, overrun)) != MQTT_OK)
		return (st);
	v->p = c->buf + c->pos;
	v->len = n;
	c->pos += n;
	return (MQTT_OK);
}

/* A two-byte length and that many bytes (MQTT "binary data"). */
static enum mqtt_status
get_binary(struct cursor *c, struct mqtt_str *v, const char *overrun)
{
	enum mqtt_status st;
	uint16_t n;

	if ((st = get_u16(c, &n, overrun)) != MQTT_OK)
		return (st);
	return (get_bytes(c, n, v, overrun));
}

/* Binary data that must also be UTF-8 (MQTT "UTF-8 encoded string"). */
static enum mqtt_status
get_string(struct cursor *c, struct mqtt_str *v, const char *overrun,
    const char *bad)
{
	enum mqtt_status st;

	if ((st = get_binary(c, v, overrun)) != MQTT_OK)
		return (st);
	if (!mqtt_utf8_valid(v->p, v->len)) {
		c->why = bad;
		return (MQTT_MALFORMED);
	}
	return (MQTT_OK);
}

/*
 * A variable byte integer: at most 4 bytes, and the fewest that hold the
 * value (a last byte of 0 after a continuation is a longer encoding).
 */
static enum mqtt_status
get_varint(struct cursor *c, uint32_t *v, const char *overrun)
{
	enum mqtt_status st;
	uint32_t val = 0;
	uint8_t b;
	int i;

	for (i = 0; i < 4; i++) {
		if ((st = get_u8(c, &b, overrun)) != MQTT_OK)
			return (st);
		val |= (uint32_t)(b & 0x7f) << (7 * i);
		if ((b & 0x80) == 0) {
			if (i > 0 && b == 0) {
				c->why = "variable byte integer is not in "
				    "its shortest form";
				return (MQTT_MALFORMED);
			}
			*v = val;
			return (MQTT_OK);
		}
	}
	c->why = "variable byte integer longer than 4 bytes";
	return (MQTT_MALFORMED);
}

/* --- MQTT 5 properties ------------------------------------------------ */

enum prop_type {
	PT_BOOL,        /* byte, 0 or 1 */
	PT_U16,
	PT_U16_NZ,      /* two-byte integer, not 0: Receive Maximum */
	PT_U32,
	PT_U32_NZ,      /* four-byte integer, not 0: Maximum Packet Size */
	PT_STRING,
	PT_BINARY,
	PT_PAIR,        /* UTF-8 string pair */
	PT_VARINT_NZ,   /* variable byte integer, not 0: Subscription Id */
};

/* One property a packet may carry; ids are below 64 (a bit in `seen`). */
struct prop_rule {
	uint8_t id;
	uint8_t type;      /* enum prop_type */
	uint8_t repeat;    /* may appear more than once */
	uint8_t auth;      /* sets has_auth */
};

/* MQTT 5.0 section 3.1.2.11: properties of CONNECT. */
static const struct prop_rule connect_props[] = {
	{ 0x11, PT_U32,    0, 0 },   /* Session Expiry Interval */
	{ 0x21, PT_U16_NZ, 0, 0 },   /* Receive Maximum */
	{ 0x27, PT_U32_NZ, 0, 0 },   /* Maximum Packet Size */
	{ 0x22, PT_U16,    0, 0 },   /* Topic Alias Maximum */
	{ 0x19, PT_BOOL,   0, 0 },   /* Request Response Information */
	{ 0x17, PT_BOOL,   0, 0 },   /* Request Problem Information */
	{ 0x26, PT_PAIR,   1, 0 },   /* User Property */
	{ 0x15, PT_STRING, 0, 1 },   /* Authentication Method */
	{ 0x16, PT_BINARY, 0, 1 },   /* Authentication Data */
};

/* MQTT 5.0 section 3.1.3.2: will properties. */
static const struct prop_rule will_props[] = {
	{ 0x18, PT_U32,    0, 0 },   /* Will Delay Interval */
	{ 0x01, PT_BOOL,   0, 0 },   /* Payload Format Indicator */
	{ 0x02, PT_U32,    0, 0 },   /* Message Expiry Interval */
	{ 0x03, PT_STRING, 0, 0 },   /* Content Type */
	{ 0x08, PT_STRING, 0, 0 },   /* Response Topic */
	{ 0x09, PT_BINARY, 0, 0 },   /* Correlation Data */
	{ 0x26, PT_PAIR,   1, 0 },   /* User Property */
};

/* Read and check one property's value. */
static enum mqtt_status
prop_value(struct cursor *c, const struct prop_rule *r)
{
	static const char overrun[] = "property overruns the property list";
	static const char bad_utf8[] = "property string is not valid UTF-8";
	enum mqtt_status st;
	struct mqtt_str s;
	uint32_t u32;
	uint16_t u16;
	uint8_t u8;

	switch (r->type) {
	case PT_BOOL:
		if ((st = get_u8(c, &u8, overrun)) != MQTT_OK)
			return (st);
		if (u8 > 1) {
			c->why = "property value is not 0 or 1";
			return (MQTT_MALFORMED);
		}
		return (MQTT_OK);
	case PT_U16:
	case PT_U16_NZ:
		if ((st = get_u16(c, &u16, overrun)) != MQTT_OK)
			return (st);
		if (r->type == PT_U16_NZ && u16 == 0) {
			c->why = "Receive Maximum is 0";
			return (MQTT_MALFORMED);
		}
		return (MQTT_OK);
	case PT_U32:
	case PT_U32_NZ:
		if ((st = get_u32(c, &u32, overrun)) != MQTT_OK)
			return (st);
		if (r->type == PT_U32_NZ && u32 == 0) {
			c->why = "Maximum Packet Size is 0";
			return (MQTT_MALFORMED);
		}
		return (MQTT_OK);
	case PT_STRING:
		return (get_string(c, &s, overrun, bad_utf8));
	case PT_BINARY:
		return (get_binary(c, &s, overrun));
	case PT_PAIR:
		if ((st = get_string(c, &s, overrun, bad_utf8)) != MQTT_OK)
			return (st);
		return (get_string(c, &s, overrun, bad_utf8));
	case PT_VARINT_NZ:
		if ((st = get_varint(c, &u32, overrun)) != MQTT_OK)
			return (st);
		if (u32 == 0) {
			c->why = "Subscription Identifier is 0";
			return (MQTT_MALFORMED);
		}
		return (MQTT_OK);
	}
	c->why = "internal error: unknown property type";
	return (MQTT_MALFORMED);
}

/* A property a reader wants the value of: its id, and where it was. */
struct prop_pick {
	uint8_t id;
	int found;
	struct mqtt_str val;      /* the value's bytes, as in the list */
};

/*
 * Walk a complete property list p[0..n) against a rule set: every id known,
 * no repeats of the non-repeatable ones, every value well formed and
 * wholly inside the list. Sets *auth when a rule marked auth is present,
 * and fills pick (if not NULL) when its id is present.
 */
static enum mqtt_status
check_props(const struct mqtt_str *props, const struct prop_rule *rules,
    size_t nrules, int *auth, struct prop_pick *pick, const char **why)
{
	size_t start;
	struct cursor c = { props->p, 0, props->len, props->len, NULL };
	const struct prop_rule *r;
	enum mqtt_status st;
	uint64_t seen = 0;
	uint8_t id;
	size_t i;

	while (c.pos < c.end) {
		/*
		 * The identifier is a variable byte integer, but every id
		 * MQTT 5.0 defines is below 0x80: a byte with the top bit
		 * set starts an id we do not know, like any other unknown.
		 */
		id = c.buf[c.pos++];
		for (r = NULL, i = 0; i < nrules; i++) {
			if (rules[i].id == id) {
				r = &rules[i];
				break;
			}
		}
		if (r == NULL) {
			*why = "unknown or misplaced property";
			return (MQTT_MALFORMED);
		}
		if (!r->repeat && (seen & (UINT64_C(1) << id)) != 0) {
			*why = "property appears more than once";
			return (MQTT_MALFORMED);
		}
		seen |= UINT64_C(1) << id;
		if (r->auth)
			*auth = 1;
		start = c.pos;
		if ((st = prop_value(&c, r)) != MQTT_OK) {
			*why = c.why;
			return (st);
		}
		if (pick != NULL && pick->id == id) {
			pick->found = 1;
			pick->val.p = c.buf + start;
			pick->val.len = c.pos - start;
		}
	}
	return (MQTT_OK);
}

/* A property length and the property bytes, checked against rules. */
static enum mqtt_status
get_props(struct cursor *c, struct mqtt_str *v,
    const struct prop_rule *rules, size_t nrules, int *auth,
    struct prop_pick *pick)
{
	static const char overrun[] = "property length overruns the packet";
	enum mqtt_status st;
	uint32_t n;

	if ((st = get_varint(c, &n, overrun)) != MQTT_OK)
		return (st);
	if ((st = get_bytes(c, n, v, overrun)) != MQTT_OK)
		return (st);
	return (check_props(v, rules, nrules, auth, pick, &c->why));
}

/* --- the framer ------------------------------------------------------ */

/*
 * The flag bits MQTT 3.1.1 (table 2.2) and 5.0 (table 2-2) fix for each
 * packet type; PUBLISH's flags are its own (DUP, QoS, RETAIN).
 */
static const struct {
	const char *name;
	uint8_t flags;
	const char *bad;      /* why, when the flags differ */
} types[16] = {
	{ "reserved", 0, "packet type 0 is reserved" },
	{ "CONNECT", 0x0, "CONNECT fixed header flags are not 0" },
	{ "CONNACK", 0x0, "CONNACK fixed header flags are not 0" },
	{ "PUBLISH", 0x0, "PUBLISH QoS is 3" },
	{ "PUBACK", 0x0, "PUBACK fixed header flags are not 0" },
	{ "PUBREC", 0x0, "PUBREC fixed header flags are not 0" },
	{ "PUBREL", 0x2, "PUBREL fixed header flags are not 2" },
	{ "PUBCOMP", 0x0, "PUBCOMP fixed header flags are not 0" },
	{ "SUBSCRIBE", 0x2, "SUBSCRIBE fixed header flags are not 2" },
	{ "SUBACK", 0x0, "SUBACK fixed header flags are not 0" },
	{ "UNSUBSCRIBE", 0x2, "UNSUBSCRIBE fixed header flags are not 2" },
	{ "UNSUBACK", 0x0, "UNSUBACK fixed header flags are not 0" },
	{ "PINGREQ", 0x0, "PINGREQ fixed header flags are not 0" },
	{ "PINGRESP", 0x0, "PINGRESP fixed header flags are not 0" },
	{ "DISCONNECT", 0x0, "DISCONNECT fixed header flags are not 0" },
	{ "AUTH", 0x0, "AUTH fixed header flags are not 0" },
};

const char *
mqtt_type_name(uint8_t type)
{
	return (type >= MQTT_PKT_CONNECT && type <= MQTT_PKT_AUTH ?
	    types[type].name : "?");
}

/* Type and flags of the first byte: MQTT_OK or MQTT_MALFORMED. */
static enum mqtt_status
first_byte(uint8_t b, const char **why)
{
	uint8_t type = b >> 4, flags = b & 0x0f;

	if (type == 0) {
		*why = types[0].bad;
		return (MQTT_MALFORMED);
	}
	if (type == MQTT_PKT_PUBLISH ? (flags & MQTT_PUB_QOS) ==
	    MQTT_PUB_QOS : flags != types[type].flags) {
		*why = types[type].bad;
		return (MQTT_MALFORMED);
	}
	return (MQTT_OK);
}

enum mqtt_status
mqtt_frame(const uint8_t *buf, size_t len, size_t max, struct mqtt_frame *f,
    const char **why)
{
	enum mqtt_status st;
	uint32_t val = 0;
	size_t i;

	memset(f, 0, sizeof(*f));
	*why = "waiting for the fixed header";
	if (len < 1)
		return (MQTT_INCOMPLETE);
	if ((st = first_byte(buf[0], why)) != MQTT_OK)
		return (st);
	for (i = 0; i < 4; i++) {
		if (1 + i >= len)
			return (MQTT_INCOMPLETE);
		val |= (uint32_t)(buf[1 + i] & 0x7f) << (7 * i);
		if ((buf[1 + i] & 0x80) == 0)
			break;
	}
	if (i == 4) {
		*why = "remaining length longer than 4 bytes";
		return (MQTT_MALFORMED);
	}
	/* A last byte of 0 after a continuation is a longer encoding. */
	if (i > 0 && buf[1 + i] == 0) {
		*why = "remaining length is not in its shortest form";
		return (MQTT_MALFORMED);
	}
	f->type = buf[0] >> 4;
	f->flags = buf[0] & 0x0f;
	f->hdr_len = 2 + i;
	f->rem_len = val;
	f->total = f->hdr_len + f->rem_len;
	if (f->total > max) {
		*why = "packet is larger than the limit";
		return (MQTT_TOO_LARGE);
	}
	if (f->total > len) {
		*why = "waiting for the rest of the packet";
		return (MQTT_INCOMPLETE);
	}
	*why = "ok";
	return (MQTT_OK);
}

/* --- parsing ---------------------------------------------------------- */

/*
 * The fixed header of a CONNECT, through the framer: sets *hdr to the
 * header's size and *rem to the remaining length once the header is in,
 * whether or not the rest is.
 */
static enum mqtt_status
fixed_header(const uint8_t *buf, size_t len, size_t *hdr, size_t *rem,
    const char **why)
{
	struct mqtt_frame f;
	enum mqtt_status st;

	/* Any other first packet is refused as such, however it looks. */
	if (len >= 1 && buf[0] >> 4 != MQTT_PKT_CONNECT) {
		*why = "the first packet is not a CONNECT";
		return (MQTT_NOT_CONNECT);
	}
	st = mqtt_frame(buf, len, SIZE_MAX, &f, why);
	if (st == MQTT_INCOMPLETE && f.hdr_len == 0)
		*why = "waiting for the fixed header";
	else if (st == MQTT_OK || st == MQTT_INCOMPLETE) {
		*hdr = f.hdr_len;
		*rem = f.rem_len;
		return (MQTT_OK);
	}
	return (st);
}

/* Protocol name and level: sets level, or says why not. */
static enum mqtt_status
protocol(struct cursor *c, uint8_t *level)
{
	static const char overrun[] = "protocol name overruns the packet";
	enum mqtt_status st;
	struct mqtt_str name;
	uint16_t n;
	int want;

	if ((st = get_u16(c, &n, overrun)) != MQTT_OK)
		return (st);
	/* Refuse a wrong length before waiting for the name itself. */
	if (n != 4 && n != 6) {
		c->why = "unknown protocol name";
		return (MQTT_MALFORMED);
	}
	if ((st = get_bytes(c, n, &name, overrun)) != MQTT_OK)
		return (st);
	if (n == 4 && memcmp(name.p, "MQTT", 4) == 0)
		want = MQTT_LEVEL_311;
	else if (n == 6 && memcmp(name.p, "MQIsdp", 6) == 0)
		want = MQTT_LEVEL_31;
	else {
		c->why = "unknown protocol name";
		return (MQTT_MALFORMED);
	}
	if ((st = get_u8(c, level, "protocol level missing")) != MQTT_OK)
		return (st);
	if (want == MQTT_LEVEL_31 ? *level != MQTT_LEVEL_31 :
	    *level != MQTT_LEVEL_311 && *level != MQTT_LEVEL_5) {
		c->why = "unsupported protocol level";
		return (MQTT_BAD_PROTOCOL);
	}
	return (MQTT_OK);
}

/* Connect flags: reserved bit, will QoS and retain, password rule. */
static enum mqtt_status
check_flags(struct cursor *c, uint8_t level, uint8_t f)
{
	if (f & MQTT_CF_RESERVED) {
		c->why = "reserved connect flag is set";
		return (MQTT_MALFORMED);
	}
	if ((f & MQTT_CF_WILL_QOS) == MQTT_CF_WILL_QOS) {
		c->why = "will QoS is 3";
		return (MQTT_MALFORMED);
	}
	if ((f & MQTT_CF_WILL) == 0 &&
	    (f & (MQTT_CF_WILL_QOS | MQTT_CF_WILL_RETAIN)) != 0) {
		c->why = "will QoS or will retain set without a will";
		return (MQTT_MALFORMED);
	}
	/* MQTT-3.1.2-22; MQTT 5 allows a password alone. */
	if (level < MQTT_LEVEL_5 && (f & MQTT_CF_PASSWORD) &&
	    (f & MQTT_CF_USERNAME) == 0) {
		c->why = "password flag set without the username flag";
		return (MQTT_MALFORMED);
	}
	return (MQTT_OK);
}

/* Everything after the fixed header; fills out as it goes. */
static enum mqtt_status
body(struct cursor *c, struct mqtt_connect *out)
{
	enum mqtt_status st;

	if ((st = protocol(c, &out->level)) != MQTT_OK)
		return (st);
	if ((st = get_u8(c, &out->flags, "connect flags missing")) !=
	    MQTT_OK)
		return (st);
	if ((st = check_flags(c, out->level, out->flags)) != MQTT_OK)
		return (st);
	if ((st = get_u16(c, &out->keepalive, "keep alive missing")) !=
	    MQTT_OK)
		return (st);
	if (out->level == MQTT_LEVEL_5 && (st = get_props(c, &out->props,
	    connect_props, sizeof(connect_props) / sizeof(connect_props[0]),
	    &out->has_auth, NULL)) != MQTT_OK)
		return (st);

	if ((st = get_string(c, &out->client_id,
	    "client identifier overruns the packet",
	    "client identifier is not valid UTF-8")) != MQTT_OK)
		return (st);
	if (out->flags & MQTT_CF_WILL) {
		if (out->level == MQTT_LEVEL_5 &&
		    (st = get_props(c, &out->will_props,
		    will_props, sizeof(will_props) / sizeof(will_props[0]),
		    &out->has_auth, NULL)) != MQTT_OK)
			return (st);
		if ((st = get_string(c, &out->will_topic,
		    "will topic overruns the packet",
		    "will topic is not valid UTF-8")) != MQTT_OK)
			return (st);
		if (out->will_topic.len == 0) {
			c->why = "will topic is empty";
			return (MQTT_MALFORMED);
		}
		if ((st = get_binary(c, &out->will_payload,
		    "will payload overruns the packet")) != MQTT_OK)
			return (st);
	}
	if ((out->flags & MQTT_CF_USERNAME) && (st = get_string(c,
	    &out->username, "username overruns the packet",
	    "username is not valid UTF-8")) != MQTT_OK)
		return (st);
	if ((out->flags & MQTT_CF_PASSWORD) && (st = get_binary(c,
	    &out->password, "password overruns the packet")) != MQTT_OK)
		return (st);

	/* Every field is here, so extra bytes are wrong even if not all in. */
	if (c->pos != c->end) {
		c->why = "bytes left over after the last CONNECT field";
		return (MQTT_MALFORMED);
	}
	return (MQTT_OK);
}

enum mqtt_status
mqtt_connect_parse(const uint8_t *buf, size_t len, size_t max,
    struct mqtt_connect *out, size_t *used, const char **why)
{
	struct cursor c;
	enum mqtt_status st;
	size_t hdr, rem;
	uint8_t level;

	memset(out, 0, sizeof(*out));
	*used = 0;
	if ((st = fixed_header(buf, len, &hdr, &rem, why)) != MQTT_OK)
		return (st);
	if (rem > max || hdr > max - rem) {
		/* Read the level if it is there: it picks the CONNACK. */
		c.buf = buf;
		c.pos = hdr;
		c.end = hdr + rem;
		c.avail = len < c.end ? len : c.end;
		c.why = NULL;
		if (protocol(&c, &level) == MQTT_OK)
			out->level = level;
		*why = "CONNECT is larger than the limit";
		return (MQTT_TOO_LARGE);
	}
	c.buf = buf;
	c.pos = hdr;
	c.end = hdr + rem;
	c.avail = len < c.end ? len : c.end;
	c.why = NULL;
	if ((st = body(&c, out)) != MQTT_OK) {
		/* Keep only the level: it picks the CONNACK's version. */
		level = out->level;
		memset(out, 0, sizeof(*out));
		out->level = level;
		*why = c.why;
		return (st);
	}
	*used = c.end;
	*why = "ok";
	return (MQTT_OK);
}

enum mqtt_status
mqtt_connect_need(const uint8_t *buf, size_t len, size_t *total,
    const char **why)
{
	enum mqtt_status st;
	size_t hdr, rem;

	*total = 0;
	if ((st = fixed_header(buf, len, &hdr, &rem, why)) == MQTT_OK)
		*total = hdr + rem;
	return (st);
}

/* --- encoding --------------------------------------------------------- */

static size_t
varint_len(size_t v)
{
	if (v < 128)
		return (1);
	if (v < 16384)
		return (2);
	if (v < 2097152)
		return (3);
	return (4);
}

/*
 * What c encodes to: the connect flags and the remaining length. Returns
 * 0 when c cannot be encoded as a CONNECT that mqtt_connect_parse would
 * accept in the ways the encoder controls (see mqtt.h).
 */
static int
plan(const struct mqtt_connect *c, uint8_t *flags, size_t *rem)
{
	const struct mqtt_str *strs[] = { &c->client_id, &c->will_topic,
	    &c->will_payload, &c->username, &c->password, &c->props,
	    &c->will_props };
	size_t n, i;

	if (c->level < MQTT_LEVEL_31 || c->level > MQTT_LEVEL_5)
		return (0);
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		if (strs[i]->p == NULL && strs[i]->len != 0)
			return (0);
		if (strs[i]->len > (i < 5 ? STR_MAX : VARINT_MAX))
			return (0);
	}

	*flags = c->flags & MQTT_CF_CLEAN;
	if (c->flags & MQTT_CF_WILL)
		*flags |= c->flags &
		    (MQTT_CF_WILL | MQTT_CF_WILL_QOS | MQTT_CF_WILL_RETAIN);
	if (c->username.p != NULL)
		*flags |= MQTT_CF_USERNAME;
	if (c->password.p != NULL)
		*flags |= MQTT_CF_PASSWORD;
	if ((*flags & MQTT_CF_WILL_QOS) == MQTT_CF_WILL_QOS)
		return (0);
	if (c->level < MQTT_LEVEL_5 && (*flags & MQTT_CF_PASSWORD) &&
	    (*flags & MQTT_CF_USERNAME) == 0)
		return (0);

	n = 2 + (c->level == MQTT_LEVEL_31 ? 6 : 4) + 1 + 1 + 2;
	if (c->level == MQTT_LEVEL_5)
		n += varint_len(c->props.len) + c->props.len;
	n += 2 + c->client_id.len;
	if (*flags & MQTT_CF_WILL) {
		if (c->level == MQTT_LEVEL_5)
			n += varint_len(c->will_props.len) +
			    c->will_props.len;
		n += 2 + c->will_topic.len + 2 + c->will_payload.len;
	}
	if (*flags & MQTT_CF_USERNAME)
		n += 2 + c->username.len;
	if (*flags & MQTT_CF_PASSWORD)
		n += 2 + c->password.len;
	if (n > VARINT_MAX)
		return (0);
	*rem = n;
	return (1);
}

size_t
mqtt_connect_size(const struct mqtt_connect *c)
{
	uint8_t flags;
	size_t rem;

	if (!plan(c, &flags, &rem))
		return (0);
	return (1 + varint_len(rem) + rem);
}

static uint8_t *
put_varint(uint8_t *o, size_t v)
{
	do {
		*o = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			*o |= 0x80;
		o++;
	} while (v != 0);
	return (o);
}

static uint8_t *
put_u16(uint8_t *o, size_t v)
{
	o[0] = (uint8_t)(v >> 8);
	o[1] = (uint8_t)v;
	return (o + 2);
}

/* Raw bytes; a NULL view is empty (memcpy must not see NULL). */
static uint8_t *
put_raw(uint8_t *o, const struct mqtt_str *s)
{
	if (s->len > 0)
		memcpy(o, s->p, s->len);
	return (o + s->len);
}

static uint8_t *
put_str(uint8_t *o, const struct mqtt_str *s)
{
	return (put_raw(put_u16(o, s->len), s));
}

static uint8_t *
put_props(uint8_t *o, const struct mqtt_str *s)
{
	return (put_raw(put_varint(o, s->len), s));
}

size_t
mqtt_connect_encode(const struct mqtt_connect *c, uint8_t *out,
    size_t outlen)
{
	uint8_t flags, *o = out;
	size_t rem;

	if (!plan(c, &flags, &rem) || outlen < 1 + varint_len(rem) + rem)
		return (0);
	*o++ = CONNECT_BYTE;
	o = put_varint(o, rem);
	if (c->level == MQTT_LEVEL_31) {
		memcpy(o, "\0\6MQIsdp", 8);
		o += 8;
	} else {
		memcpy(o, "\0\4MQTT", 6);
		o += 6;
	}
	*o++ = c->level;
	*o++ = flags;
	o = put_u16(o, c->keepalive);
	if (c->level == MQTT_LEVEL_5)
		o = put_props(o, &c->props);
	o = put_str(o, &c->client_id);
	if (flags & MQTT_CF_WILL) {
		if (c->level == MQTT_LEVEL_5)
			o = put_props(o, &c->will_props);
		o = put_str(o, &c->will_topic);
		o = put_str(o, &c->will_payload);
	}
	if (flags & MQTT_CF_USERNAME)
		o = put_str(o, &c->username);
	if (flags & MQTT_CF_PASSWORD)
		o = put_str(o, &c->password);
	return ((size_t)(o - out));
}

size_t
mqtt_connack_encode(uint8_t level, uint8_t reason, uint8_t out[8])
{
	out[0] = MQTT_PKT_CONNACK << 4;
	out[2] = 0x00;          /* session present: never, when refusing */
	out[3] = reason;
	if (level == MQTT_LEVEL_5) {
		out[1] = 3;
		out[4] = 0x00;  /* no properties */
		return (5);
	}
	out[1] = 2;
	return (4);
}

size_t
mqtt_disconnect_encode(uint8_t reason, uint8_t out[4])
{
	out[0] = MQTT_PKT_DISCONNECT << 4;
	out[1] = 1;             /* remaining length: the reason code alone */
	out[2] = reason;
	return (3);
}

/* --- packets after the CONNECT ----------------------------------------- */

#define SUBSCRIBE_BYTE (MQTT_PKT_SUBSCRIBE << 4 | 0x02)
#define SUBACK_BYTE    (MQTT_PKT_SUBACK << 4)
#define PUBREL_FLAGS   0x02
#define WILD_ONE       '+'
#define WILD_ALL       '#'
#define LEVEL_SEP      '/'

/* MQTT 5.0 section 3.3.2.3: properties of a PUBLISH from a client. */
static const struct prop_rule publish_props[] = {
	{ MQTT_PROP_PAYLOAD_FORMAT,   PT_BOOL,   0, 0 },
	{ MQTT_PROP_MESSAGE_EXPIRY,   PT_U32,    0, 0 },
	{ MQTT_PROP_TOPIC_ALIAS,      PT_U16,    0, 0 },
	{ MQTT_PROP_RESPONSE_TOPIC,   PT_STRING, 0, 0 },
	{ MQTT_PROP_CORRELATION_DATA, PT_BINARY, 0, 0 },
	{ MQTT_PROP_USER_PROPERTY,    PT_PAIR,   1, 0 },
	{ MQTT_PROP_CONTENT_TYPE,     PT_STRING, 0, 0 },
};

/* MQTT 5.0 section 3.8.2.1: properties of SUBSCRIBE. */
static const struct prop_rule subscribe_props[] = {
	{ MQTT_PROP_SUBSCRIPTION_ID,  PT_VARINT_NZ, 0, 0 },
	{ MQTT_PROP_USER_PROPERTY,    PT_PAIR,   1, 0 },
};

/* MQTT 5.0 section 3.10.2.1: properties of UNSUBSCRIBE. */
static const struct prop_rule unsubscribe_props[] = {
	{ MQTT_PROP_USER_PROPERTY,    PT_PAIR,   1, 0 },
};

/* MQTT 5.0 section 3.9.2.1: properties of SUBACK. */
static const struct prop_rule suback_props[] = {
	{ MQTT_PROP_REASON_STRING,    PT_STRING, 0, 0 },
	{ MQTT_PROP_USER_PROPERTY,    PT_PAIR,   1, 0 },
};

#define NRULES(r) (sizeof(r) / sizeof((r)[0]))

/*
 * Frame pkt[0..len) as one whole packet of type: sets *flags and a cursor
 * over its body. MQTT_MALFORMED when it is not exactly one such packet.
 */
static enum mqtt_status
whole(const uint8_t *pkt, size_t len, uint8_t type, struct cursor *c,
    uint8_t *flags, const char **why)
{
	struct mqtt_frame f;

	if (mqtt_frame(pkt, len, len, &f, why) != MQTT_OK || f.total != len) {
		*why = "not one whole packet";
		return (MQTT_MALFORMED);
	}
	if (f.type != type) {
		*why = "not the packet type expected";
		return (MQTT_MALFORMED);
	}
	*flags = f.flags;
	c->buf = pkt;
	c->pos = f.hdr_len;
	c->end = c->avail = len;
	c->why = NULL;
	return (MQTT_OK);
}

/* A topic name: no wildcard anywhere (its UTF-8 was checked). */
static int
topic_name_ok(const struct mqtt_str *t)
{
	return (memchr(t->p, WILD_ONE, t->len) == NULL &&
	    memchr(t->p, WILD_ALL, t->len) == NULL);
}

/*
 * A topic filter: not empty, each wildcard alone in its level, '#' only
 * as the last level.
 */
static int
filter_ok(const struct mqtt_str *t)
{
	size_t i;

	if (t->len == 0)
		return (0);
	for (i = 0; i < t->len; i++) {
		if (t->p[i] != WILD_ONE && t->p[i] != WILD_ALL)
			continue;
		if (i > 0 && t->p[i - 1] != LEVEL_SEP)
			return (0);
		if (t->p[i] == WILD_ALL ? i + 1 != t->len :
		    i + 1 < t->len && t->p[i + 1] != LEVEL_SEP)
			return (0);
	}
	return (1);
}

static uint16_t
be16(const uint8_t *p)
{
	return ((uint16_t)(p[0] << 8 | p[1]));
}

/* Topic, packet identifier and properties of a PUBLISH. */
static enum mqtt_status
publish_fields(struct cursor *c, uint8_t level, struct mqtt_publish *out)
{
	struct prop_pick alias = { MQTT_PROP_TOPIC_ALIAS, 0, { NULL, 0 } };
	enum mqtt_status st;
	int auth = 0;

	if ((st = get_string(c, &out->topic, "topic overruns the packet",
	    "topic is not valid UTF-8")) != MQTT_OK)
		return (st);
	if (!topic_name_ok(&out->topic)) {
		c->why = "topic name holds a wildcard";
		return (MQTT_MALFORMED);
	}
	if (out->qos > 0) {
		if ((st = get_u16(c, &out->packet_id,
		    "packet identifier overruns the packet")) != MQTT_OK)
			return (st);
		if (out->packet_id == 0) {
			c->why = "packet identifier is 0";
			return (MQTT_MALFORMED);
		}
	}
	if (level == MQTT_LEVEL_5 && (st = get_props(c, &out->props,
	    publish_props, NRULES(publish_props), &auth, &alias)) != MQTT_OK)
		return (st);
	if (alias.found) {
		out->has_alias = 1;
		out->alias = be16(alias.val.p);
	}
	if (out->topic.len == 0 && !out->has_alias) {
		c->why = level == MQTT_LEVEL_5 ? "empty topic without a "
		    "topic alias" : "topic is empty";
		return (MQTT_MALFORMED);
	}
	return (MQTT_OK);
}

enum mqtt_status
mqtt_publish_read(const uint8_t *pkt, size_t len, uint8_t level,
    struct mqtt_publish *out, const char **why)
{
	struct cursor c;
	uint8_t flags;

	memset(out, 0, sizeof(*out));
	if (whole(pkt, len, MQTT_PKT_PUBLISH, &c, &flags, why) != MQTT_OK)
		return (MQTT_MALFORMED);
	out->qos = (flags & MQTT_PUB_QOS) >> MQTT_PUB_QOS_SHIFT;
	out->dup = (flags & MQTT_PUB_DUP) != 0;
	out->retain = (flags & MQTT_PUB_RETAIN) != 0;
	if (out->dup && out->qos == 0) {
		*why = "DUP set on a QoS 0 PUBLISH";
		return (MQTT_MALFORMED);
	}
	if (publish_fields(&c, level, out) != MQTT_OK) {
		memset(out, 0, sizeof(*out));
		*why = c.why;
		return (MQTT_MALFORMED);
	}
	out->payload.p = pkt + c.pos;
	out->payload.len = len - c.pos;
	*why = "ok";
	return (MQTT_OK);
}

/* One SUBSCRIBE options byte. */
static int
options_ok(uint8_t level, uint8_t o)
{
	if ((o & MQTT_SUBOPT_QOS) == MQTT_SUBOPT_QOS)
		return (0);
	if (level != MQTT_LEVEL_5)
		return ((o & MQTT_SUBOPT_RESERVED_V3) == 0);
	return ((o & MQTT_SUBOPT_RESERVED_V5) == 0 &&
	    (o & MQTT_SUBOPT_RETAIN_HANDLING) != MQTT_SUBOPT_RETAIN_HANDLING);
}

/* The payload of a SUBSCRIBE or UNSUBSCRIBE: entries until the end. */
static enum mqtt_status
filter_list(struct cursor *c, struct mqtt_subscribe *out)
{
	enum mqtt_status st;
	struct mqtt_str f;
	uint8_t o;

	out->list.p = c->buf + c->pos;
	out->list.len = c->end - c->pos;
	while (c->pos < c->end) {
		if ((st = get_string(c, &f, "topic filter overruns the packet",
		    "topic filter is not valid UTF-8")) != MQTT_OK)
			return (st);
		if (!filter_ok(&f)) {
			c->why = "topic filter is empty or has a misplaced "
			    "wildcard";
			return (MQTT_MALFORMED);
		}
		if (out->type == MQTT_PKT_SUBSCRIBE) {
			if ((st = get_u8(c, &o, "subscription options "
			    "missing")) != MQTT_OK)
				return (st);
			if (!options_ok(out->level, o)) {
				c->why = "subscription options are not valid";
				return (MQTT_MALFORMED);
			}
		}
		out->count++;
	}
	if (out->count == 0) {
		c->why = "no topic filter";
		return (MQTT_MALFORMED);
	}
	return (MQTT_OK);
}

static enum mqtt_status
filters_read(const uint8_t *pkt, size_t len, uint8_t level, uint8_t type,
    struct mqtt_subscribe *out, const char **why)
{
	struct cursor c;
	enum mqtt_status st;
	uint8_t flags;
	int auth = 0;

	memset(out, 0, sizeof(*out));
	if (whole(pkt, len, type, &c, &flags, why) != MQTT_OK)
		return (MQTT_MALFORMED);
	out->type = type;
	out->level = level;
	st = get_u16(&c, &out->packet_id,
	    "packet identifier overruns the packet");
	if (st == MQTT_OK && out->packet_id == 0) {
		c.why = "packet identifier is 0";
		st = MQTT_MALFORMED;
	}
	if (st == MQTT_OK && level == MQTT_LEVEL_5)
		st = type == MQTT_PKT_SUBSCRIBE ?
		    get_props(&c, &out->props, subscribe_props,
		    NRULES(subscribe_props), &auth, NULL) :
		    get_props(&c, &out->props, unsubscribe_props,
		    NRULES(unsubscribe_props), &auth, NULL);
	if (st == MQTT_OK)
		st = filter_list(&c, out);
	if (st != MQTT_OK) {
		memset(out, 0, sizeof(*out));
		*why = c.why;
		return (MQTT_MALFORMED);
	}
	*why = "ok";
	return (MQTT_OK);
}

enum mqtt_status
mqtt_subscribe_read(const uint8_t *pkt, size_t len, uint8_t level,
    struct mqtt_subscribe *out, const char **why)
{
	return (filters_read(pkt, len, level, MQTT_PKT_SUBSCRIBE, out, why));
}

enum mqtt_status
mqtt_unsubscribe_read(const uint8_t *pkt, size_t len, uint8_t level,
    struct mqtt_subscribe *out, const char **why)
{
	return (filters_read(pkt, len, level, MQTT_PKT_UNSUBSCRIBE, out,
	    why));
}

int
mqtt_filters_next(const struct mqtt_subscribe *s, size_t *pos,
    struct mqtt_filter *f)
{
	const uint8_t *p = s->list.p + *pos;
	size_t n, left = s->list.len - *pos;

	/* The reader checked every entry; these guard a misuse only. */
	if (*pos >= s->list.len || left < 2)
		return (0);
	n = be16(p);
	if (left - 2 < n + (s->type == MQTT_PKT_SUBSCRIBE))
		return (0);
	f->filter.p = p + 2;
	f->filter.len = n;
	f->options = s->type == MQTT_PKT_SUBSCRIBE ? p[2 + n] : 0;
	f->entry.p = p;
	f->entry.len = 2 + n + (s->type == MQTT_PKT_SUBSCRIBE);
	*pos += f->entry.len;
	return (1);
}

/* Remaining length of a packet id, a level 5 property list and n more. */
static size_t
idprops_rem(uint8_t level, size_t props_len, size_t n)
{
	size_t rem = 2 + n;

	if (level == MQTT_LEVEL_5)
		rem += varint_len(props_len) + props_len;
	return (rem);
}

/* Fixed header, packet id and (level 5) property list. */
static uint8_t *
put_idprops(uint8_t *o, uint8_t first, size_t rem, uint16_t packet_id,
    uint8_t level, const struct mqtt_str *props)
{
	static const struct mqtt_str none = { NULL, 0 };

	*o++ = first;
	o = put_varint(o, rem);
	o = put_u16(o, packet_id);
	if (level == MQTT_LEVEL_5)
		o = put_props(o, props != NULL ? props : &none);
	return (o);
}

size_t
mqtt_subscribe_encode_some(const struct mqtt_subscribe *s,
    const uint8_t *keep, uint8_t *out, size_t outlen)
{
	struct mqtt_filter f;
	size_t pos = 0, i = 0, kept = 0, rem;
	uint8_t *o;

	while (mqtt_filters_next(s, &pos, &f)) {
		if (keep[i / 8] & (1u << i % 8))
			kept += f.entry.len;
		i++;
	}
	if (kept == 0)
		return (0);
	rem = idprops_rem(s->level, s->props.len, kept);
	if (rem > VARINT_MAX || outlen < 1 + varint_len(rem) + rem)
		return (0);
	o = put_idprops(out, SUBSCRIBE_BYTE, rem, s->packet_id, s->level,
	    &s->props);
	for (pos = 0, i = 0; mqtt_filters_next(s, &pos, &f); i++)
		if (keep[i / 8] & (1u << i % 8))
			o = put_raw(o, &f.entry);
	return ((size_t)(o - out));
}

enum mqtt_status
mqtt_suback_read(const uint8_t *pkt, size_t len, uint8_t level,
    struct mqtt_suback *out, const char **why)
{
	struct cursor c;
	enum mqtt_status st;
	uint8_t flags;
	int auth = 0;

	memset(out, 0, sizeof(*out));
	if (whole(pkt, len, MQTT_PKT_SUBACK, &c, &flags, why) != MQTT_OK)
		return (MQTT_MALFORMED);
	st = get_u16(&c, &out->packet_id,
	    "packet identifier overruns the packet");
	if (st == MQTT_OK && level == MQTT_LEVEL_5)
		st = get_props(&c, &out->props, suback_props,
		    NRULES(suback_props), &auth, NULL);
	if (st == MQTT_OK && c.pos == c.end) {
		c.why = "SUBACK without a code";
		st = MQTT_MALFORMED;
	}
	if (st != MQTT_OK) {
		memset(out, 0, sizeof(*out));
		*why = c.why;
		return (MQTT_MALFORMED);
	}
	out->codes.p = pkt + c.pos;
	out->codes.len = len - c.pos;
	*why = "ok";
	return (MQTT_OK);
}

size_t
mqtt_suback_size(uint8_t level, size_t props_len, size_t n)
{
	size_t rem;

	if (n == 0 || n > VARINT_MAX || props_len > VARINT_MAX)
		return (0);
	rem = idprops_rem(level, props_len, n);
	if (rem > VARINT_MAX)
		return (0);
	return (1 + varint_len(rem) + rem);
}

size_t
mqtt_suback_encode(uint8_t level, uint16_t packet_id,
    const struct mqtt_str *props, const uint8_t *codes, size_t n,
    uint8_t *out, size_t outlen)
{
	size_t plen = level == MQTT_LEVEL_5 && props != NULL ? props->len : 0;
	size_t size = mqtt_suback_size(level, plen, n);

	if (size == 0 || outlen < size)
		return (0);
	/* The codes go last: move them first, they may already be there. */
	memmove(out + size - n, codes, n);
	(void)put_idprops(out, SUBACK_BYTE, idprops_rem(level, plen, n),
	    packet_id, level, props);
	return (size);
}

size_t
mqtt_ack_encode(uint8_t type, uint8_t level, uint16_t packet_id,
    uint8_t reason, uint8_t out[MQTT_ACK_MAX])
{
	int with_reason = level == MQTT_LEVEL_5 && reason != MQTT_RC_SUCCESS;

	if (type != MQTT_PKT_PUBACK && type != MQTT_PKT_PUBREC &&
	    type != MQTT_PKT_PUBREL && type != MQTT_PKT_PUBCOMP)
		return (0);
	out[0] = (uint8_t)(type << 4 |
	    (type == MQTT_PKT_PUBREL ? PUBREL_FLAGS : 0));
	out[1] = with_reason ? 3 : 2;
	(void)put_u16(out + 2, packet_id);
	if (!with_reason)
		return (4);
	out[4] = reason;
	return (5);
}

/* --- tracking packet boundaries ------------------------------------- */

int
mqtt_tracker_at_boundary(const struct mqtt_tracker *t)
{
	return (!t->bad && t->nhdr == 0 && t->left == 0);
}

/* One more byte of a fixed header: the header may now be complete. */
static void
tracker_header_byte(struct mqtt_tracker *t, uint8_t b)
{
	struct mqtt_frame f;
	const char *why;

	t->hdr[t->nhdr++] = b;
	switch (mqtt_frame(t->hdr, t->nhdr, SIZE_MAX, &f, &why)) {
	case MQTT_OK:                   /* a packet with no body */
		if (t->first_type == 0) {
			t->first_type = t->hdr[0] >> 4;
			t->first_done = 1;
		}
		t->nhdr = 0;
		break;
	case MQTT_INCOMPLETE:
		if (f.hdr_len != 0) {
			if (t->first_type == 0)
				t->first_type = t->hdr[0] >> 4;
			t->nhdr = 0;
			t->left = f.rem_len;
		} else if (t->nhdr == sizeof(t->hdr)) {
			t->bad = 1;
		}
		break;
	default:
		t->bad = 1;
		break;
	}
}

/*
 * n body bytes of the first packet go by: keep the first few, and note its
 * end (t->left still counts these n).
 */
static void
keep_first(struct mqtt_tracker *t, const uint8_t *p, size_t n)
{
	size_t k = sizeof(t->first_body) - t->nfirst;

	if (k > n)
		k = n;
	memcpy(t->first_body + t->nfirst, p, k);
	t->nfirst += (uint8_t)k;
	if (n == t->left)
		t->first_done = 1;
}

int
mqtt_tracker_connack_code(const struct mqtt_tracker *t)
{
	/* CONNACK: acknowledge flags, then the code, in every version. */
	if (t->first_type != MQTT_PKT_CONNACK ||
	    t->nfirst < MQTT_TRACKER_KEEP)
		return (-1);
	return (t->first_body[1]);
}

size_t
mqtt_tracker_feed(struct mqtt_tracker *t, const uint8_t *buf, size_t len,
    int stop)
{
	size_t i = 0, n;

	while (i < len && !t->bad) {
		if (t->left > 0) {
			n = len - i < t->left ? len - i : t->left;
			if (t->first_type != 0 && !t->first_done)
				keep_first(t, buf + i, n);
			t->left -= n;
			i += n;
		} else {
			tracker_header_byte(t, buf[i++]);
		}
		if (stop && mqtt_tracker_at_boundary(t))
			return (i);
	}
	return (t->bad ? len : i);
}

/* --- UTF-8 ------------------------------------------------------------ */

int
mqtt_utf8_valid(const uint8_t *p, size_t len)
{
	size_t i, k;
	uint32_t cp;

	for (i = 0; i < len; i += k)
		if ((k = text_utf8_next(p + i, len - i, &cp)) == 0 || cp == 0)
			return (0);
	return (1);
}

const char *
mqtt_status_str(enum mqtt_status st)
{
	switch (st) {
	case MQTT_OK:
		return ("ok");
	case MQTT_INCOMPLETE:
		return ("incomplete");
	case MQTT_NOT_CONNECT:
		return ("not-connect");
	case MQTT_MALFORMED:
		return ("malformed");
	case MQTT_BAD_PROTOCOL:
		return ("bad-protocol");
	case MQTT_TOO_LARGE:
		return ("too-large");
	}
	return ("unknown");
}
