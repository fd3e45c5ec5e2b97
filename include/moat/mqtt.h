/* SPDX-License-Identifier: MIT */
/*
 * MQTT codec for what moat must understand of a device's stream: the
 * framer, which cuts a stream into whole packets of any type; the
 * CONNECT packet (MQTT 3.1 "MQIsdp" level 3, 3.1.1 level 4, 5.0 level 5),
 * parsed strictly from untrusted bytes and re-encoded with replaced
 * credentials; the CONNACK moat answers with when it refuses, and the
 * codes it puts in it. After the CONNECT: readers of whole PUBLISH,
 * SUBSCRIBE, UNSUBSCRIBE and SUBACK packets, and encoders of what the
 * topic guard (guard.h) answers or rewrites. Pure: bytes in, bytes out;
 * no I/O, no allocation.
 */
#ifndef MOAT_MQTT_H
#define MOAT_MQTT_H

#include <stddef.h>
#include <stdint.h>

#define MQTT_CONNECT_MAX_DEFAULT (64 * 1024)

/* Protocol levels (the byte after the protocol name). */
#define MQTT_LEVEL_31  3               /* MQTT 3.1, name "MQIsdp" */
#define MQTT_LEVEL_311 4               /* MQTT 3.1.1, name "MQTT" */
#define MQTT_LEVEL_5   5               /* MQTT 5.0, name "MQTT" */

/* Control packet types: the high nibble of the first byte. */
#define MQTT_PKT_CONNECT     1
#define MQTT_PKT_CONNACK     2
#define MQTT_PKT_PUBLISH     3
#define MQTT_PKT_PUBACK      4
#define MQTT_PKT_PUBREC      5
#define MQTT_PKT_PUBREL      6
#define MQTT_PKT_PUBCOMP     7
#define MQTT_PKT_SUBSCRIBE   8
#define MQTT_PKT_SUBACK      9
#define MQTT_PKT_UNSUBSCRIBE 10
#define MQTT_PKT_UNSUBACK    11
#define MQTT_PKT_PINGREQ     12
#define MQTT_PKT_PINGRESP    13
#define MQTT_PKT_DISCONNECT  14
#define MQTT_PKT_AUTH        15        /* MQTT 5 only */

/* PUBLISH fixed-header flags. */
#define MQTT_PUB_DUP    0x08
#define MQTT_PUB_QOS    0x06
#define MQTT_PUB_QOS_SHIFT 1           /* QoS = (flags & QOS) >> SHIFT */
#define MQTT_PUB_RETAIN 0x01

/* The largest remaining length a 4-byte variable byte integer holds. */
#define MQTT_REMAINING_MAX 268435455u

/*
 * CONNACK return codes of MQTT 3.1 and 3.1.1 (3.1.1 section 3.2.2.3),
 * sent in the 4-byte CONNACK to devices of levels 3 and 4 (and to levels
 * moat does not speak).
 */
#define MQTT_CONNACK_V3_ACCEPTED           0x00
#define MQTT_CONNACK_V3_REFUSED_PROTOCOL   0x01
#define MQTT_CONNACK_V3_REFUSED_IDENTIFIER 0x02
#define MQTT_CONNACK_V3_SERVER_UNAVAILABLE 0x03
#define MQTT_CONNACK_V3_BAD_CREDENTIALS    0x04
#define MQTT_CONNACK_V3_NOT_AUTHORIZED     0x05

/* MQTT 5 reason codes moat sends in a CONNACK (5.0 section 3.2.2.2). */
#define MQTT_RC_SUCCESS                    0x00
#define MQTT_RC_MALFORMED_PACKET           0x81
#define MQTT_RC_UNSUPPORTED_PROTOCOL       0x84
#define MQTT_RC_CLIENT_ID_NOT_VALID        0x85
#define MQTT_RC_NOT_AUTHORIZED             0x87
#define MQTT_RC_SERVER_UNAVAILABLE         0x88
#define MQTT_RC_BAD_AUTH_METHOD            0x8C
#define MQTT_RC_PACKET_TOO_LARGE           0x95
#define MQTT_RC_QUOTA_EXCEEDED             0x97
#define MQTT_RC_SERVER_SHUTTING_DOWN       0x8B
#define MQTT_RC_SESSION_TAKEN_OVER         0x8E
#define MQTT_RC_ADMINISTRATIVE_ACTION      0x98

/* More MQTT 5 reason codes, for acknowledgements and DISCONNECT. */
#define MQTT_RC_UNSPECIFIED                0x80
#define MQTT_RC_PROTOCOL_ERROR             0x82
#define MQTT_RC_TOPIC_ALIAS_INVALID        0x94
#define MQTT_RC_QUOTA_EXCEEDED             0x97

/* The one failure code of a 3.1.1 SUBACK (3.1.1 section 3.9.3). */
#define MQTT_SUBACK_V3_FAILURE             0x80

/* MQTT 5 property identifiers (5.0 section 2.2.2.2). */
#define MQTT_PROP_PAYLOAD_FORMAT     0x01
#define MQTT_PROP_MESSAGE_EXPIRY     0x02
#define MQTT_PROP_CONTENT_TYPE       0x03
#define MQTT_PROP_RESPONSE_TOPIC     0x08
#define MQTT_PROP_CORRELATION_DATA   0x09
#define MQTT_PROP_SUBSCRIPTION_ID    0x0B
#define MQTT_PROP_REASON_STRING      0x1F
#define MQTT_PROP_TOPIC_ALIAS        0x23
#define MQTT_PROP_USER_PROPERTY      0x26

/* SUBSCRIBE options byte (3.1.1 section 3.8.3.1, 5.0 section 3.8.3.1). */
#define MQTT_SUBOPT_QOS              0x03
#define MQTT_SUBOPT_NO_LOCAL         0x04   /* MQTT 5 */
#define MQTT_SUBOPT_RETAIN_AS_PUB    0x08   /* MQTT 5 */
#define MQTT_SUBOPT_RETAIN_HANDLING  0x30   /* MQTT 5; 0x30 itself is bad */
#define MQTT_SUBOPT_RESERVED_V3      0xFC
#define MQTT_SUBOPT_RESERVED_V5      0xC0

/* Connect flags. */
#define MQTT_CF_USERNAME    0x80
#define MQTT_CF_PASSWORD    0x40
#define MQTT_CF_WILL_RETAIN 0x20
#define MQTT_CF_WILL_QOS    0x18
#define MQTT_CF_WILL        0x04
#define MQTT_CF_CLEAN       0x02
#define MQTT_CF_RESERVED    0x01

enum mqtt_status {
	MQTT_OK = 0,
	MQTT_INCOMPLETE,     /* a valid prefix: more bytes needed */
	MQTT_NOT_CONNECT,    /* the first packet is not a CONNECT */
	MQTT_MALFORMED,      /* violates the protocol */
	MQTT_BAD_PROTOCOL,   /* protocol name or level not supported */
	MQTT_TOO_LARGE,      /* remaining length over the cap */
};

/* A view into the packet; p == NULL when the field is absent. */
struct mqtt_str {
	const uint8_t *p;
	size_t len;
};

struct mqtt_connect {
	uint8_t level;                /* 3, 4 or 5; 0 until known */
	uint8_t flags;                /* connect flags as received */
	uint16_t keepalive;
	struct mqtt_str props;        /* v5 properties, without their length */
	struct mqtt_str client_id;
	struct mqtt_str will_props;   /* v5 will properties, without length */
	struct mqtt_str will_topic;
	struct mqtt_str will_payload;
	struct mqtt_str username;
	struct mqtt_str password;
	int has_auth;                 /* v5 Authentication Method/Data present */
};

/* The fixed header of one packet, as mqtt_frame() read it. */
struct mqtt_frame {
	uint8_t type;        /* MQTT_PKT_*, 1..15 */
	uint8_t flags;       /* the low four bits of the first byte */
	size_t hdr_len;      /* 2..5; 0 while the header is not all in */
	size_t rem_len;      /* remaining length: bytes after the header */
	size_t total;        /* hdr_len + rem_len, the whole packet */
};

/*
 * The framer, for any packet type: read the fixed header at the start of
 * buf[0..len) and say whether the whole packet is there.
 *
 *   MQTT_OK          the whole packet is buf[0..f->total)
 *   MQTT_INCOMPLETE  a valid prefix; once f->hdr_len != 0 the header is
 *                    complete and f says how many bytes to wait for
 *   MQTT_TOO_LARGE   the packet would be over max bytes in all; f is
 *                    filled in (nothing of it need be read)
 *   MQTT_MALFORMED   type 0, flag bits other than those MQTT 3.1.1 and 5
 *                    fix for the type (PUBLISH: QoS 3), or a remaining
 *                    length longer than 4 bytes or not in its shortest
 *                    form
 *
 * *why names the outcome (a static string). f is always cleared first and
 * f->total never exceeds len on MQTT_OK. DUP on a QoS 0 PUBLISH is left to
 * the PUBLISH reader. Reads at most 5 bytes of buf and allocates nothing.
 */
enum mqtt_status mqtt_frame(const uint8_t *buf, size_t len, size_t max,
    struct mqtt_frame *f, const char **why);

/* A packet type's name ("PUBLISH"), "?" outside 1..15. */
const char *mqtt_type_name(uint8_t type);

/*
 * Parse the CONNECT at the start of buf[0..len). On MQTT_OK, *used is the
 * size of the whole packet and out's views point into buf. On any other
 * result out->level is set when it was read (to pick the CONNACK version)
 * and *why names the problem (a static string). MQTT_TOO_LARGE is returned
 * as soon as the fixed header announces a packet over max bytes, before the
 * rest arrives (with out->level set if the protocol name and level are
 * already there). Never reads past len; allocates nothing.
 *
 * A field that is wrong is reported as soon as it has wholly arrived, so
 * MQTT_NOT_CONNECT / MQTT_MALFORMED / MQTT_BAD_PROTOCOL may come before the
 * whole packet has. MQTT_BAD_PROTOCOL means the name was "MQTT" or "MQIsdp"
 * with a level moat does not speak; out->level is then the level received,
 * and the caller answers mqtt_connack_encode(level, level == 5 ?
 * MQTT_RC_UNSUPPORTED_PROTOCOL : MQTT_CONNACK_V3_REFUSED_PROTOCOL): 0x84
 * in MQTT 5 form for level 5, else 0x01 in 3.1.1 form (as Mosquitto does
 * for, say, level 6). Variable byte integers must be in
 * their shortest form for every version, so an accepted CONNECT re-encodes
 * byte for byte. The client identifier may be empty and is not limited to
 * 23 bytes for MQTT 3.1: that is client-id policy, not syntax. Bytes after
 * *used belong to the caller.
 */
enum mqtt_status mqtt_connect_parse(const uint8_t *buf, size_t len,
    size_t max, struct mqtt_connect *out, size_t *used, const char **why);

/*
 * Read only the fixed header at buf: MQTT_OK with *total the size of the
 * whole packet it announces, MQTT_INCOMPLETE, MQTT_NOT_CONNECT or
 * MQTT_MALFORMED. Lets a caller that receives a CONNECT piecemeal wait
 * until all of it is there before parsing, instead of parsing every piece.
 */
enum mqtt_status mqtt_connect_need(const uint8_t *buf, size_t len,
    size_t *total, const char **why);

/*
 * Size of c encoded as a CONNECT, with the username and password flags
 * taken from whether username.p / password.p are set; will QoS and will
 * retain are kept only with the will flag. 0 when c cannot be encoded as a
 * valid CONNECT: a field over 65535 bytes, a property list or remaining
 * length over 268435455, a level other than 3, 4 or 5, will QoS 3, a
 * password without a username below level 5, or a view with p == NULL and
 * len != 0. A NULL client_id (or props, will field) encodes as empty.
 */
size_t mqtt_connect_size(const struct mqtt_connect *c);

/*
 * Encode c into out (outlen >= mqtt_connect_size(c)). Returns the bytes
 * written, or 0 when it does not fit. The protocol name follows c->level.
 */
size_t mqtt_connect_encode(const struct mqtt_connect *c, uint8_t *out,
    size_t outlen);

/*
 * Where a stream of whole MQTT packets stands, fed piece by piece (the
 * broker's stream towards a device, which moat passes through unframed):
 * the fixed-header bytes of the next packet read so far, and how many
 * bytes of the current packet are still to come. A zeroed struct is at a
 * boundary. A header that mqtt_frame() refuses sets bad for good. The
 * type of the stream's first packet and its first MQTT_TRACKER_KEEP body
 * bytes are kept (the broker's CONNACK code, for the close line); nothing
 * else of the stream is.
 */
#define MQTT_TRACKER_KEEP 2
struct mqtt_tracker {
	uint8_t hdr[5];      /* fixed header of the next packet, so far */
	uint8_t nhdr;
	int bad;             /* the stream does not frame: never a boundary */
	size_t left;         /* bytes of the current packet after its header */
	uint8_t first_type;  /* MQTT_PKT_* of the first packet; 0 until its
	                      * fixed header is whole */
	int first_done;      /* the first packet has ended */
	uint8_t first_body[MQTT_TRACKER_KEEP]; /* its first body bytes */
	uint8_t nfirst;      /* how many of them were read */
};

/*
 * Account for buf[0..len). With stop set, stop at the first packet
 * boundary reached (len bytes may hold several packets). Returns how many
 * bytes were taken: len, or fewer when it stopped at a boundary.
 */
size_t mqtt_tracker_feed(struct mqtt_tracker *t, const uint8_t *buf,
    size_t len, int stop);

/* 1 when the bytes fed so far end exactly after a whole packet. */
int mqtt_tracker_at_boundary(const struct mqtt_tracker *t);

/*
 * The return code (3.1, 3.1.1) or reason code (5) of the stream's first
 * packet when it is a CONNACK whose code was read, else -1 (no packet
 * yet, another type first, or a CONNACK too short to carry one).
 */
int mqtt_tracker_connack_code(const struct mqtt_tracker *t);

/*
 * An MQTT 5 DISCONNECT from the server with reason and no properties:
 * 3 bytes. Returns the length written to out. (MQTT 3.1.1 has no server
 * DISCONNECT: the server just closes.)
 */
size_t mqtt_disconnect_encode(uint8_t reason, uint8_t out[4]);

/*
 * A CONNACK refusing (or accepting, reason 0) for protocol level: 4 bytes
 * for levels 3 and 4, 5 bytes (empty properties) for level 5. Returns the
 * length written to out.
 */
size_t mqtt_connack_encode(uint8_t level, uint8_t reason, uint8_t out[8]);

/*
 * 1 when p[0..len) is well-formed UTF-8 with no U+0000 and no surrogates
 * (overlong forms and code points above U+10FFFF are refused too).
 */
int mqtt_utf8_valid(const uint8_t *p, size_t len);

/*
 * Readers for packets a device sends after its CONNECT, and the encoders
 * moat answers or rewrites with. Each reader takes ONE WHOLE packet,
 * pkt[0..len) with len exactly the total mqtt_frame() reported, and the
 * protocol level of the connection (3, 4 or 5; 3 reads like 4). It returns
 * MQTT_OK with views into pkt, or MQTT_MALFORMED with *why naming the
 * problem (a static string): another packet type, a length that is not the
 * packet's, a field crossing the end, bytes left over, bad UTF-8, a bad
 * property list. Never reads outside pkt[0..len); allocates nothing.
 */

/* A PUBLISH, as mqtt_publish_read() saw it. */
struct mqtt_publish {
	uint8_t qos;                /* 0, 1 or 2 */
	uint8_t retain;             /* 0 or 1 */
	uint8_t dup;                /* 0 or 1 */
	uint16_t packet_id;         /* not 0 for QoS 1 and 2; 0 for QoS 0 */
	struct mqtt_str topic;      /* the topic name; empty only at level 5
	                             * with a Topic Alias */
	struct mqtt_str props;      /* level 5: the property list without
	                             * its length; empty below */
	int has_alias;              /* a Topic Alias property is present */
	uint16_t alias;             /* its value (may be 0: the caller's
	                             * protocol error), 0 when absent */
	struct mqtt_str payload;    /* the application message */
};

/*
 * Read a PUBLISH. Refused as malformed besides the general rules: QoS 3,
 * DUP with QoS 0, packet identifier 0 with QoS 1 or 2, a topic with '+'
 * or '#' or bad UTF-8, an empty topic below level 5 or without a Topic
 * Alias at level 5, and at level 5 a property that a PUBLISH from a client
 * may not carry (Subscription Identifier, any id not of PUBLISH), a
 * repeated one, or one whose value is out of range or crosses the list.
 */
enum mqtt_status mqtt_publish_read(const uint8_t *pkt, size_t len,
    uint8_t level, struct mqtt_publish *out, const char **why);

/*
 * A SUBSCRIBE or UNSUBSCRIBE, as mqtt_subscribe_read() or
 * mqtt_unsubscribe_read() saw it. The filters are walked with
 * mqtt_filters_next(), which cannot fail once the reader said MQTT_OK.
 */
struct mqtt_subscribe {
	uint8_t type;               /* MQTT_PKT_SUBSCRIBE or _UNSUBSCRIBE */
	uint8_t level;              /* as given to the reader */
	uint16_t packet_id;         /* never 0 */
	struct mqtt_str props;      /* level 5: property list, no length */
	struct mqtt_str list;       /* the payload: every filter entry */
	size_t count;               /* filters in list, at least 1 */
};

/* One entry of a SUBSCRIBE or UNSUBSCRIBE payload. */
struct mqtt_filter {
	struct mqtt_str filter;     /* the topic filter */
	uint8_t options;            /* SUBSCRIBE: options byte; else 0 */
	struct mqtt_str entry;      /* the whole entry: length, filter and
	                             * (SUBSCRIBE) options, as received */
};

/*
 * Read a SUBSCRIBE. Malformed besides the general rules: packet
 * identifier 0, no filter, an empty filter or one with bad UTF-8 or a
 * wildcard not alone in its level ('#' also last), an options byte with
 * reserved bits set, QoS 3 or (level 5) retain handling 3, and at level 5
 * a property other than Subscription Identifier (once, not 0) and User
 * Property.
 */
enum mqtt_status mqtt_subscribe_read(const uint8_t *pkt, size_t len,
    uint8_t level, struct mqtt_subscribe *out, const char **why);

/* Read an UNSUBSCRIBE: as a SUBSCRIBE without options bytes; at level 5
 * only User Property. */
enum mqtt_status mqtt_unsubscribe_read(const uint8_t *pkt, size_t len,
    uint8_t level, struct mqtt_subscribe *out, const char **why);

/*
 * The filter at *pos of s (start with *pos = 0): fills f, moves *pos on
 * and returns 1; returns 0 after the last one.
 */
int mqtt_filters_next(const struct mqtt_subscribe *s, size_t *pos,
    struct mqtt_filter *f);

/*
 * Encode a SUBSCRIBE with s's packet identifier and properties holding
 * only the filters i (0-based, in s's order) whose bit keep[i / 8] &
 * (1 << i % 8) is set, each entry as received. s must have come from
 * mqtt_subscribe_read(). Returns the bytes written to out, or 0 when no
 * filter is kept or outlen is too small; never more than the size of the
 * SUBSCRIBE s was read from.
 */
size_t mqtt_subscribe_encode_some(const struct mqtt_subscribe *s,
    const uint8_t *keep, uint8_t *out, size_t outlen);

/* A SUBACK, as mqtt_suback_read() saw it. */
struct mqtt_suback {
	uint16_t packet_id;
	struct mqtt_str props;      /* level 5: property list, no length */
	struct mqtt_str codes;      /* one return / reason code per filter,
	                             * at least one; any value is taken */
};

/*
 * Read a SUBACK (from the broker). Malformed besides the general rules:
 * no code, and at level 5 a property other than Reason String (once) and
 * User Property.
 */
enum mqtt_status mqtt_suback_read(const uint8_t *pkt, size_t len,
    uint8_t level, struct mqtt_suback *out, const char **why);

/* Size of a SUBACK for level with a property list of props_len bytes
 * (level 5 only) and n codes; 0 when it cannot be encoded (n == 0, or the
 * remaining length would be over MQTT_REMAINING_MAX). */
size_t mqtt_suback_size(uint8_t level, size_t props_len, size_t n);

/*
 * Encode a SUBACK: packet_id, at level 5 the property list props (NULL
 * or empty: none), and codes[0..n). codes may already lie in out, at the
 * end where they belong (the bytes are moved, not copied). Returns the
 * bytes written, or 0 when outlen < mqtt_suback_size() or that is 0.
 */
size_t mqtt_suback_encode(uint8_t level, uint16_t packet_id,
    const struct mqtt_str *props, const uint8_t *codes, size_t n,
    uint8_t *out, size_t outlen);

/* The largest PUBACK, PUBREC, PUBREL or PUBCOMP mqtt_ack_encode writes. */
#define MQTT_ACK_MAX 5

/*
 * A PUBACK, PUBREC, PUBREL or PUBCOMP (type) for packet_id: 4 bytes below
 * level 5; at level 5 4 bytes for reason 0 (MQTT_RC_SUCCESS, left out)
 * and 5 with any other reason, never with properties. Returns the length
 * written to out, 0 for another type.
 */
size_t mqtt_ack_encode(uint8_t type, uint8_t level, uint16_t packet_id,
    uint8_t reason, uint8_t out[MQTT_ACK_MAX]);

/* The status as a short static name for logs, e.g. "malformed". */
const char *mqtt_status_str(enum mqtt_status st);

#endif
