/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/core/gate.c, the CONNECT decision. A table of cases
 * drives gate_connect() with CONNECT bytes built here, identity rules
 * built from a moat.ini and a map file written to /tmp, and certificate
 * identities built in memory: every refusal with its CONNACK in both MQTT
 * forms and its close reason, the waits (each case is also fed one byte
 * more at a time, and must wait until it reaches the same answer), and the
 * rewrite (mapped credentials in, the device's own out, the bytes after
 * the CONNECT kept behind it) for MQTT 3.1, 3.1.1 and 5; and the re-check
 * of a live connection against new rules (gate_recheck): same
 * credentials, denied, no longer mapped, other username or password.
 */
#define _GNU_SOURCE             /* memmem */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moat/config.h"
#include "moat/gate.h"
#include "moat/policy.h"
#include "moat/identity.h"
#include "moat/mqtt.h"

#define MAX      MQTT_CONNECT_MAX_DEFAULT
#define DEV_USER "device-own-user"
#define DEV_PASS "device-own-secret-7f3a"
#define MAP_PASS "mapped-secret-1"

/* The map every case uses unless it brings its own settings. */
#define MAP                                                             \
	"[sensor-1]\n"                                                  \
	"username = alice\n"                                            \
	"password = " MAP_PASS "\n"                                     \
	"[sensor-2]\n"                                                  \
	"deny = true\n"                                                 \
	"[sensor-3]\n"

#define MAX_TMP 4

static char tmp[MAX_TMP][64];
static int ntmp;
static struct config *cfg;
static struct identity_rules *rules;
static struct cert_identity cert;
static struct gate_result res;

static void
setup(void)
{
	ntmp = 0;
	cfg = NULL;
	rules = NULL;
	memset(&cert, 0, sizeof(cert));
	memset(&res, 0, sizeof(res));
}

static void
teardown(void)
{
	int i;

	gate_result_release(&res);
	identity_rules_free(rules);
	config_free(cfg);
	cert_identity_clear(&cert);
	for (i = 0; i < ntmp; i++)
		unlink(tmp[i]);
}

TestSuite(gate, .init = setup, .fini = teardown);

/* --- fixtures --------------------------------------------------------- */

static const char *
write_tmp(const char *text)
{
	FILE *f;
	int fd;

	cr_assert_lt(ntmp, MAX_TMP);
	snprintf(tmp[ntmp], sizeof(tmp[ntmp]), "/tmp/moat-gate-XXXXXX");
	fd = mkstemp(tmp[ntmp]);
	cr_assert_neq(fd, -1);
	f = fdopen(fd, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fputs(text, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
	return (tmp[ntmp++]);
}

/*
 * Rules from a moat.ini whose [identity] section holds ident (plus
 * "map = ..." when map is not NULL).
 */
static void
load_rules(const char *ident, const char *map)
{
	char ini[1024], line[128], err[1024];

	identity_rules_free(rules);
	config_free(cfg);
	line[0] = '\0';
	if (map != NULL)
		snprintf(line, sizeof(line), "map = %s\n", write_tmp(map));
	snprintf(ini, sizeof(ini), "[tls]\ncert = /etc/moat/server.crt\n"
	    "key = /etc/moat/server.key\nca = /etc/moat/ca.crt\n"
	    "[identity]\n%s%s", ident, line);
	cfg = config_load(write_tmp(ini), err, sizeof(err));
	cr_assert_not_null(cfg, "config_load: %s", err);
	rules = identity_rules_new(cfg, err, sizeof(err));
	cr_assert_not_null(rules, "identity_rules_new: %s", err);
}

/* load_rules() with a [policy] section after [identity]. */
static void
load_rules_policy(const char *ident, const char *map, const char *policy)
{
	char ini[1024], line[128], err[1024];

	identity_rules_free(rules);
	config_free(cfg);
	snprintf(line, sizeof(line), "map = %s\n", write_tmp(map));
	snprintf(ini, sizeof(ini), "[tls]\ncert = /etc/moat/server.crt\n"
	    "key = /etc/moat/server.key\nca = /etc/moat/ca.crt\n"
	    "[identity]\n%s%s%s", ident, line, policy);
	cfg = config_load(write_tmp(ini), err, sizeof(err));
	cr_assert_not_null(cfg, "config_load: %s", err);
	rules = identity_rules_new(cfg, err, sizeof(err));
	cr_assert_not_null(rules, "identity_rules_new: %s", err);
}

static void
set_cn(const char *cn)
{
	cert_identity_clear(&cert);
	if (cn != NULL)
		cert.cn = strdup(cn);
	cert.dn = strdup("CN=test");
	cert.serial = strdup("01");
	cert.fingerprint = strdup("00");
}

/* --- building CONNECTs ------------------------------------------------ */

struct pb {
	uint8_t b[4096];
	size_t len;
};

static void
pb_put(struct pb *p, const void *d, size_t n)
{
	cr_assert_leq(p->len + n, sizeof(p->b));
	if (n == 0)
		return;         /* d may be NULL for an empty field */
	memcpy(p->b + p->len, d, n);
	p->len += n;
}

static void
pb_u8(struct pb *p, uint8_t v)
{
	pb_put(p, &v, 1);
}

static void
pb_str(struct pb *p, const char *s, size_t n)
{
	pb_u8(p, (uint8_t)(n >> 8));
	pb_u8(p, (uint8_t)n);
	pb_put(p, s, n);
}

static void
pb_varint(struct pb *p, size_t v)
{
	do {
		pb_u8(p, (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0)));
		v >>= 7;
	} while (v != 0);
}

/* What a case sends. level 0: raw bytes only. */
struct spec {
	uint8_t level;
	const char *cid;
	const char *user, *pass;     /* NULL: flag not set */
	const uint8_t *props;        /* MQTT 5 CONNECT properties */
	size_t nprops;
	uint8_t more_flags;          /* OR'd into the connect flags */
	const uint8_t *raw;
	size_t nraw;
};

/* A CONNECT from s, followed by tail[0..ntail). */
static void
build(const struct spec *s, const uint8_t *tail, size_t ntail, struct pb *out)
{
	struct pb body = { .len = 0 };
	uint8_t flags = MQTT_CF_CLEAN | s->more_flags;

	out->len = 0;
	if (s->level == 0) {
		pb_put(out, s->raw, s->nraw);
		return;
	}
	if (s->level == MQTT_LEVEL_31)
		pb_str(&body, "MQIsdp", 6);
	else
		pb_str(&body, "MQTT", 4);
	pb_u8(&body, s->level);
	if (s->user != NULL)
		flags |= MQTT_CF_USERNAME;
	if (s->pass != NULL)
		flags |= MQTT_CF_PASSWORD;
	pb_u8(&body, flags);
	pb_u8(&body, 0);
	pb_u8(&body, 60);
	if (s->level == MQTT_LEVEL_5) {
		pb_varint(&body, s->nprops);
		pb_put(&body, s->props, s->nprops);
	}
	pb_str(&body, s->cid, strlen(s->cid));
	if (s->user != NULL)
		pb_str(&body, s->user, strlen(s->user));
	if (s->pass != NULL)
		pb_str(&body, s->pass, strlen(s->pass));
	pb_u8(out, MQTT_PKT_CONNECT << 4);
	pb_varint(out, body.len);
	pb_put(out, body.b, body.len);
	pb_put(out, tail, ntail);
}

/* gate_connect() on a copy of b[0..n) in a buffer of exactly n bytes. */
static enum gate_verdict
run(const uint8_t *b, size_t n, size_t max)
{
	uint8_t *copy = malloc(n > 0 ? n : 1);
	enum gate_verdict v;

	cr_assert_not_null(copy);
	if (n > 0)
		memcpy(copy, b, n);
	gate_result_release(&res);
	v = gate_connect(copy, n, max, rules, &cert, &res);
	free(copy);
	cr_assert_eq(v, res.verdict);
	if (v != GATE_FORWARD)
		cr_assert_null(res.out);
	return (v);
}

/* --- the table -------------------------------------------------------- */

#define BYTES(...) (const uint8_t[]){ __VA_ARGS__ },                    \
	sizeof((const uint8_t[]){ __VA_ARGS__ })

/* Bytes a device may send right behind its CONNECT. */
static const uint8_t tail[] = { 0xc0, 0x00, 0x30, 0x05, 0x00, 0x01 };

/* MQTT 5 Authentication Method "SCRAM". */
#define AUTH_PROP BYTES(0x15, 0x00, 0x05, 'S', 'C', 'R', 'A', 'M')
/* MQTT 5 Session Expiry twice: malformed. */
#define TWICE_PROP BYTES(0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 1)

struct gcase {
	const char *name;
	const char *cn;              /* certificate CN */
	struct spec s;
	size_t max;                  /* 0: MAX */
	enum gate_verdict want;
	enum conn_reason reason;
	int connack;                 /* a CONNACK is sent */
	uint8_t ack_level, code;
	const char *detail;          /* must be in res.detail */
	int map_entry;               /* detail names the map entry */
};

#define OK(name, lvl, cid, user)                                        \
	{ name, "sensor-1", { lvl, cid, user, DEV_PASS, NULL, 0, 0,      \
	    NULL, 0 }, 0, GATE_FORWARD, CONN_CLOSE_NONE, 0, 0, 0, NULL, 0 }

static const struct gcase cases[] = {
	OK("3.1 forward", MQTT_LEVEL_31, "sensor-1", DEV_USER),
	OK("3.1.1 forward", MQTT_LEVEL_311, "sensor-1:a", DEV_USER),
	OK("5 forward", MQTT_LEVEL_5, "sensor-1", DEV_USER),
	OK("5 forward, password alone", MQTT_LEVEL_5, "sensor-1", NULL),
	{ "not a CONNECT", "sensor-1",
	    { 0, NULL, NULL, NULL, NULL, 0, 0, BYTES(0x30, 0x03, 0, 1, 't') },
	    0, GATE_REFUSE, CONN_CLOSE_MQTT_NOT_CONNECT, 0, 0, 0,
	    "not a CONNECT", 0 },
	{ "3.1.1 reserved flag", "sensor-1",
	    { MQTT_LEVEL_311, "sensor-1", NULL, NULL, NULL, 0,
	    MQTT_CF_RESERVED, NULL, 0 },
	    0, GATE_REFUSE, CONN_CLOSE_MQTT_MALFORMED, 0, 0, 0,
	    "reserved connect flag", 0 },
	{ "5 reserved flag", "sensor-1",
	    { MQTT_LEVEL_5, "sensor-1", NULL, NULL, NULL, 0,
	    MQTT_CF_RESERVED, NULL, 0 },
	    0, GATE_REFUSE, CONN_CLOSE_MQTT_MALFORMED, 1, MQTT_LEVEL_5,
	    MQTT_RC_MALFORMED_PACKET, "reserved connect flag", 0 },
	{ "5 property twice", "sensor-1",
	    { MQTT_LEVEL_5, "sensor-1", NULL, NULL, TWICE_PROP, 0, NULL, 0 },
	    0, GATE_REFUSE, CONN_CLOSE_MQTT_MALFORMED, 1, MQTT_LEVEL_5,
	    MQTT_RC_MALFORMED_PACKET, "more than once", 0 },
	{ "bad protocol name", "sensor-1",
	    { 0, NULL, NULL, NULL, NULL, 0, 0, BYTES(0x10, 0x0c, 0, 4, 'M',
	    'Q', 'T', 'X', 4, 2, 0, 60, 0, 0) },
	    0, GATE_REFUSE, CONN_CLOSE_MQTT_MALFORMED, 0, 0, 0,
	    "unknown protocol name", 0 },
	{ "3.1.1 too large", "sensor-1",
	    { MQTT_LEVEL_311, "sensor-1", DEV_USER, DEV_PASS, NULL, 0, 0,
	    NULL, 0 },
	    24, GATE_REFUSE, CONN_CLOSE_CONNECT_TOO_LARGE, 0, 0, 0,
	    "larger than the limit", 0 },
	{ "5 too large", "sensor-1",
	    { MQTT_LEVEL_5, "sensor-1", DEV_USER, DEV_PASS, NULL, 0, 0,
	    NULL, 0 },
	    24, GATE_REFUSE, CONN_CLOSE_CONNECT_TOO_LARGE, 1, MQTT_LEVEL_5,
	    MQTT_RC_PACKET_TOO_LARGE, "larger than the limit", 0 },
	{ "too large, no protocol name", "sensor-1",
	    { 0, NULL, NULL, NULL, NULL, 0, 0, BYTES(0x10, 0xff, 0x7f, 0, 4,
	    'X', 'X', 'X', 'X', 5, 2, 0, 60, 0, 0, 0, 0, 0, 0) },
	    1024, GATE_REFUSE, CONN_CLOSE_CONNECT_TOO_LARGE, 0, 0, 0,
	    "larger than the limit", 0 },
	{ "level 6", "sensor-1",
	    { 6, "sensor-1", NULL, NULL, NULL, 0, 0, NULL, 0 },
	    0, GATE_REFUSE, CONN_CLOSE_PROTOCOL_REFUSED, 1, MQTT_LEVEL_311,
	    MQTT_CONNACK_V3_REFUSED_PROTOCOL, "unsupported protocol level",
	    0 },
	{ "MQIsdp level 4", "sensor-1",
	    { 0, NULL, NULL, NULL, NULL, 0, 0, BYTES(0x10, 0x0e, 0, 6, 'M',
	    'Q', 'I', 's', 'd', 'p', 4, 2, 0, 60, 0, 0) },
	    0, GATE_REFUSE, CONN_CLOSE_PROTOCOL_REFUSED, 1, MQTT_LEVEL_311,
	    MQTT_CONNACK_V3_REFUSED_PROTOCOL, "unsupported protocol level",
	    0 },
	{ "5 authentication method", "sensor-1",
	    { MQTT_LEVEL_5, "sensor-1", NULL, NULL, AUTH_PROP, 0, NULL, 0 },
	    0, GATE_REFUSE, CONN_CLOSE_AUTH_METHOD_REFUSED, 1, MQTT_LEVEL_5,
	    MQTT_RC_BAD_AUTH_METHOD, "moat owns authentication", 0 },
	{ "3.1.1 unknown identity", "sensor-9",
	    { MQTT_LEVEL_311, "sensor-9", NULL, NULL, NULL, 0, 0, NULL, 0 },
	    0, GATE_REFUSE, CONN_CLOSE_IDENTITY_REFUSED, 1, MQTT_LEVEL_311,
	    MQTT_CONNACK_V3_NOT_AUTHORIZED, "has no entry in the map", 0 },
	{ "5 unknown identity", "sensor-9",
	    { MQTT_LEVEL_5, "sensor-9", NULL, NULL, NULL, 0, 0, NULL, 0 },
	    0, GATE_REFUSE, CONN_CLOSE_IDENTITY_REFUSED, 1, MQTT_LEVEL_5,
	    MQTT_RC_NOT_AUTHORIZED, "has no entry in the map", 0 },
	{ "3.1 no CN", NULL,
	    { MQTT_LEVEL_31, "x", NULL, NULL, NULL, 0, 0, NULL, 0 },
	    0, GATE_REFUSE, CONN_CLOSE_IDENTITY_REFUSED, 1, MQTT_LEVEL_311,
	    MQTT_CONNACK_V3_NOT_AUTHORIZED, "the certificate has no CN", 0 },
	{ "3.1.1 denied", "sensor-2",
	    { MQTT_LEVEL_311, "sensor-2", NULL, NULL, NULL, 0, 0, NULL, 0 },
	    0, GATE_REFUSE, CONN_CLOSE_IDENTITY_REFUSED, 1, MQTT_LEVEL_311,
	    MQTT_CONNACK_V3_NOT_AUTHORIZED, "deny = true", 1 },
	{ "5 denied", "sensor-2",
	    { MQTT_LEVEL_5, "sensor-2", NULL, NULL, NULL, 0, 0, NULL, 0 },
	    0, GATE_REFUSE, CONN_CLOSE_IDENTITY_REFUSED, 1, MQTT_LEVEL_5,
	    MQTT_RC_NOT_AUTHORIZED, "deny = true", 1 },
	{ "3.1.1 client id refused", "sensor-1",
	    { MQTT_LEVEL_311, "sensor-7", NULL, NULL, NULL, 0, 0, NULL, 0 },
	    0, GATE_REFUSE, CONN_CLOSE_CLIENT_ID_REFUSED, 1, MQTT_LEVEL_311,
	    MQTT_CONNACK_V3_REFUSED_IDENTIFIER, "does not start with", 1 },
	{ "5 client id refused", "sensor-1",
	    { MQTT_LEVEL_5, "sensor-1x", NULL, NULL, NULL, 0, 0, NULL, 0 },
	    0, GATE_REFUSE, CONN_CLOSE_CLIENT_ID_REFUSED, 1, MQTT_LEVEL_5,
	    MQTT_RC_CLIENT_ID_NOT_VALID, "does not start with", 1 },
	{ "3.1 client id refused", "sensor-1",
	    { MQTT_LEVEL_31, "other", NULL, NULL, NULL, 0, 0, NULL, 0 },
	    0, GATE_REFUSE, CONN_CLOSE_CLIENT_ID_REFUSED, 1, MQTT_LEVEL_311,
	    MQTT_CONNACK_V3_REFUSED_IDENTIFIER, "does not start with", 1 },
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

static void
rules_for_table(void)
{
	load_rules("client_id = require-prefix\n", MAP);
}

/* The whole of c's bytes: the answer c wants. */
static void
check_answer(const struct gcase *c)
{
	cr_assert_eq(res.verdict, c->want, "%s: verdict %d, want %d (%s)",
	    c->name, res.verdict, c->want, res.detail);
	if (c->want != GATE_REFUSE)
		return;
	cr_assert_eq(res.reason, c->reason, "%s: reason %s, want %s",
	    c->name, conn_reason_name(res.reason),
	    conn_reason_name(c->reason));
	cr_assert_eq(res.send_connack, c->connack, "%s: send_connack",
	    c->name);
	if (c->connack) {
		cr_assert_eq(res.connack_level, c->ack_level, "%s: level %u",
		    c->name, res.connack_level);
		cr_assert_eq(res.connack_code, c->code, "%s: code 0x%02x",
		    c->name, res.connack_code);
	}
	cr_assert_not_null(strstr(res.detail, c->detail),
	    "%s: detail \"%s\" lacks \"%s\"", c->name, res.detail, c->detail);
	cr_assert_eq(strstr(res.detail, "(map entry [") != NULL,
	    c->map_entry, "%s: detail \"%s\"", c->name, res.detail);
	cr_assert_null(strstr(res.detail, MAP_PASS), "%s", c->name);
}

Test(gate, table)
{
	struct pb p;
	size_t i;

	rules_for_table();
	for (i = 0; i < NCASES; i++) {
		const struct gcase *c = &cases[i];

		set_cn(c->cn);
		build(&c->s, tail, c->want == GATE_FORWARD ? sizeof(tail) : 0,
		    &p);
		run(p.b, p.len, c->max ? c->max : MAX);
		check_answer(c);
	}
}

/*
 * Fed one byte more at a time, every case waits (and hands out nothing)
 * until it reaches its answer, and keeps that answer from then on.
 */
Test(gate, byte_by_byte)
{
	enum gate_verdict v;
	struct pb p;
	size_t i, n, first;

	rules_for_table();
	for (i = 0; i < NCASES; i++) {
		const struct gcase *c = &cases[i];

		set_cn(c->cn);
		build(&c->s, NULL, 0, &p);
		first = p.len + 1;
		for (n = 0; n <= p.len; n++) {
			v = run(p.b, n, c->max ? c->max : MAX);
			if (v == GATE_WAIT) {
				cr_assert_eq(first, p.len + 1,
				    "%s: waits at %zu after answering at %zu",
				    c->name, n, first);
				cr_assert_eq(res.send_connack, 0);
				continue;
			}
			if (first > n)
				first = n;
			check_answer(c);
		}
		cr_assert_leq(first, p.len, "%s: no answer", c->name);
		if (c->want == GATE_FORWARD)
			cr_assert_eq(first, p.len, "%s: forwarded a part",
			    c->name);
	}
}

/* --- the rewrite ------------------------------------------------------ */

/* res.out parses as a CONNECT followed by tail. */
static void
parse_out(struct mqtt_connect *pc)
{
	const char *why;
	size_t used;

	cr_assert_not_null(res.out);
	cr_assert_eq(mqtt_connect_parse(res.out, res.out_len, MAX, pc, &used,
	    &why), MQTT_OK, "%s", why);
	cr_assert_eq(res.out_len - used, sizeof(tail));
	cr_assert_eq(memcmp(res.out + used, tail, sizeof(tail)), 0);
}

static void
assert_view(const struct mqtt_str *v, const char *want)
{
	if (want == NULL) {
		cr_assert_null(v->p);
		return;
	}
	cr_assert_not_null(v->p);
	cr_assert_eq(v->len, strlen(want), "\"%.*s\" vs \"%s\"",
	    (int)v->len, v->p, want);
	cr_assert_eq(memcmp(v->p, want, v->len), 0);
}

/* The device's own credentials appear nowhere in what goes on. */
static void
assert_device_creds_gone(void)
{
	cr_assert_null(memmem(res.out, res.out_len, DEV_PASS,
	    strlen(DEV_PASS)));
	cr_assert_null(memmem(res.out, res.out_len, DEV_USER,
	    strlen(DEV_USER)));
}

Test(gate, forward_map_entry)
{
	static const uint8_t levels[] = { MQTT_LEVEL_31, MQTT_LEVEL_311,
	    MQTT_LEVEL_5 };
	struct mqtt_connect pc;
	struct pb p;
	size_t i;

	rules_for_table();
	set_cn("sensor-1");
	for (i = 0; i < sizeof(levels); i++) {
		struct spec s = { levels[i], "sensor-1:x", DEV_USER, DEV_PASS,
		    NULL, 0, 0, NULL, 0 };

		build(&s, tail, sizeof(tail), &p);
		cr_assert_eq(run(p.b, p.len, MAX), GATE_FORWARD, "%s",
		    res.detail);
		cr_assert_eq(res.level, levels[i]);
		parse_out(&pc);
		cr_assert_eq(pc.level, levels[i]);
		cr_assert_eq(pc.keepalive, 60);
		assert_view(&pc.username, "alice");
		assert_view(&pc.password, MAP_PASS);
		assert_view(&pc.client_id, "sensor-1:x");
		assert_device_creds_gone();
		cr_assert_str_eq(res.username, "alice");
		cr_assert_str_eq(res.client_id, "sensor-1:x");
		cr_assert_str_eq(res.rule, "map entry [sensor-1]");
		cr_assert_eq(res.rule_kind, ID_RULE_MAP_ENTRY);
		cr_assert_null(memmem(res.username, sizeof(res.username),
		    MAP_PASS, strlen(MAP_PASS)));
	}
}

/* Template credentials without a password: the password flag goes. */
Test(gate, forward_template_drops_password)
{
	struct spec s = { MQTT_LEVEL_311, "whatever", DEV_USER, DEV_PASS,
	    NULL, 0, 0, NULL, 0 };
	struct mqtt_connect pc;
	struct pb p;

	load_rules("unknown = template\nusername = dev-{identity}\n", NULL);
	set_cn("sensor-9");
	build(&s, tail, sizeof(tail), &p);
	cr_assert_eq(run(p.b, p.len, MAX), GATE_FORWARD, "%s", res.detail);
	parse_out(&pc);
	assert_view(&pc.username, "dev-sensor-9");
	assert_view(&pc.password, NULL);
	cr_assert_eq(pc.flags & MQTT_CF_PASSWORD, 0);
	/* client_id = identity (the default) replaces the device's. */
	assert_view(&pc.client_id, "sensor-9");
	assert_device_creds_gone();
	cr_assert_eq(res.rule_kind, ID_RULE_TEMPLATE);
	cr_assert_str_eq(res.rule, "template");
}

/* MQTT 5 properties and the will pass through unchanged. */
Test(gate, forward_keeps_properties_and_will)
{
	static const uint8_t in[] = {
		0x10, 0x2e, 0, 4, 'M', 'Q', 'T', 'T', 5,
		MQTT_CF_CLEAN | MQTT_CF_WILL | 0x08 | MQTT_CF_USERNAME |
		    MQTT_CF_PASSWORD, 0, 30,
		5, 0x11, 0, 0, 0, 9,                  /* session expiry */
		0, 1, 'c',                            /* client id */
		2, 0x01, 1,                           /* will: format 1 */
		0, 3, 'w', '/', 't', 0, 2, 'h', 'i',  /* will topic, payload */
		0, 2, 'u', 'u', 0, 9, 'p', 'a', 's', 's', 'w', 'o', 'r', 'd',
		'X',
	};
	struct mqtt_connect pc;
	const char *why;
	size_t used;

	load_rules("unknown = template\n", NULL);
	set_cn("sensor-5");
	cr_assert_eq(run(in, sizeof(in), MAX), GATE_FORWARD, "%s",
	    res.detail);
	cr_assert_eq(mqtt_connect_parse(res.out, res.out_len, MAX, &pc,
	    &used, &why), MQTT_OK, "%s", why);
	cr_assert_eq(used, res.out_len);
	cr_assert_eq(pc.keepalive, 30);
	cr_assert_eq(pc.flags & (MQTT_CF_WILL | MQTT_CF_WILL_QOS),
	    MQTT_CF_WILL | 0x08);
	cr_assert_eq(pc.props.len, 5);
	cr_assert_eq(memcmp(pc.props.p, "\x11\0\0\0\x09", 5), 0);
	assert_view(&pc.will_topic, "w/t");
	assert_view(&pc.will_payload, "hi");
	assert_view(&pc.username, "sensor-5");
	assert_view(&pc.password, NULL);
	assert_view(&pc.client_id, "sensor-5");
	cr_assert_null(memmem(res.out, res.out_len, "passwordX", 9));
}

/* --- the wait rules --------------------------------------------------- */

Test(gate, nothing_yet)
{
	rules_for_table();
	set_cn("sensor-1");
	cr_assert_eq(run(NULL, 0, MAX), GATE_WAIT);
	cr_assert_eq(res.level, 0);
}

/*
 * Up to 64 bytes a CONNECT is parsed on every piece, so a bad field is
 * answered as soon as it is in; past that, only once the fixed header says
 * it is all there.
 */
Test(gate, long_connect_is_parsed_once_whole)
{
	char pass[300];
	struct spec s = { MQTT_LEVEL_311, "sensor-1", "u", pass, NULL, 0,
	    MQTT_CF_RESERVED, NULL, 0 };
	struct pb p;
	size_t n;

	memset(pass, 'p', sizeof(pass) - 1);
	pass[sizeof(pass) - 1] = '\0';
	rules_for_table();
	set_cn("sensor-1");
	build(&s, NULL, 0, &p);
	cr_assert_gt(p.len, 200);
	for (n = 0; n <= p.len; n++) {
		/* The flags are byte 10 (3-byte fixed header). */
		enum gate_verdict want = n < 11 ? GATE_WAIT : n <= 64 ?
		    GATE_REFUSE : n < p.len ? GATE_WAIT : GATE_REFUSE;

		cr_assert_eq(run(p.b, n, MAX), want, "at %zu", n);
		if (want == GATE_REFUSE)
			cr_assert_eq(res.reason, CONN_CLOSE_MQTT_MALFORMED);
	}
}

/*
 * Too large: refused from the fixed header on, once the level says which
 * CONNACK to send, or after 16 bytes without one.
 */
Test(gate, too_large_waits_for_the_level)
{
	static const uint8_t v5[] = { 0x10, 0xff, 0x7f, 0, 4, 'M', 'Q', 'T',
	    'T', 5, 2, 0, 60, 0, 0, 0, 0, 0 };
	static const uint8_t nolevel[] = { 0x10, 0xff, 0x7f, 0, 200, 'M', 'Q',
	    'T', 'T', 5, 2, 0, 60, 0, 0, 0, 0, 0 };
	size_t n;

	rules_for_table();
	set_cn("sensor-1");
	for (n = 0; n <= sizeof(v5); n++) {
		enum gate_verdict v = run(v5, n, 1024);

		cr_assert_eq(v, n < 10 ? GATE_WAIT : GATE_REFUSE, "at %zu", n);
		if (v == GATE_REFUSE) {
			cr_assert_eq(res.connack_level, MQTT_LEVEL_5);
			cr_assert_eq(res.connack_code,
			    MQTT_RC_PACKET_TOO_LARGE);
			cr_assert_eq(res.send_connack, 1);
		}
	}
	/* A name length moat does not know: no level will come. */
	for (n = 0; n <= sizeof(nolevel); n++) {
		enum gate_verdict v = run(nolevel, n, 1024);

		cr_assert_eq(v, n < 16 ? GATE_WAIT : GATE_REFUSE, "at %zu", n);
		if (v == GATE_REFUSE) {
			cr_assert_eq(res.reason, CONN_CLOSE_CONNECT_TOO_LARGE);
			cr_assert_eq(res.send_connack, 0);
		}
	}
}

/* The cap holds at its edge: max_connect_size bytes pass, one more not. */
Test(gate, cap_edge)
{
	struct spec s = { MQTT_LEVEL_311, "sensor-1", NULL, NULL, NULL, 0, 0,
	    NULL, 0 };
	struct pb p;

	rules_for_table();
	set_cn("sensor-1");
	build(&s, NULL, 0, &p);
	cr_assert_eq(run(p.b, p.len, p.len), GATE_FORWARD, "%s", res.detail);
	cr_assert_eq(run(p.b, p.len, p.len - 1), GATE_REFUSE);
	cr_assert_eq(res.reason, CONN_CLOSE_CONNECT_TOO_LARGE);
}

/* Release is safe on a cleared result and twice. */
Test(gate, release)
{
	struct gate_result r;

	memset(&r, 0, sizeof(r));
	gate_result_release(&r);
	gate_result_release(NULL);
	rules_for_table();
	set_cn("sensor-1");
	{
		struct spec s = { MQTT_LEVEL_311, "sensor-1", NULL, NULL, NULL,
		    0, 0, NULL, 0 };
		struct pb p;

		build(&s, NULL, 0, &p);
		cr_assert_eq(gate_connect(p.b, p.len, MAX, rules, &cert, &r),
		    GATE_FORWARD);
	}
	cr_assert_not_null(r.out);
	gate_result_release(&r);
	cr_assert_null(r.out);
	cr_assert_eq(r.out_len, 0);
	gate_result_release(&r);
}

/* --- re-checking a live connection after a reload ---------------------- */

/* Remove the files written so far (what was loaded from them stays). */
static void
forget_tmp(void)
{
	while (ntmp > 0)
		unlink(tmp[--ntmp]);
}

/* Forward sensor-1's CONNECT under the current rules; its digest. */
static void
forward_sensor1(const char *cid, uint8_t digest[IDENTITY_DIGEST_LEN])
{
	struct spec s = { MQTT_LEVEL_5, cid, NULL, NULL, NULL, 0, 0, NULL,
	    0 };
	struct pb p;

	set_cn("sensor-1");
	build(&s, NULL, 0, &p);
	cr_assert_eq(run(p.b, p.len, MAX), GATE_FORWARD, "%s", res.detail);
	cr_assert_str_eq(res.device_cid, cid);
	memcpy(digest, res.creds_digest, IDENTITY_DIGEST_LEN);
	/* The digest is not the password, nor holds it. */
	cr_assert_null(memmem(digest, IDENTITY_DIGEST_LEN, MAP_PASS,
	    strlen(MAP_PASS)));
}

Test(gate, recheck)
{
	static const struct {
		const char *map;
		enum conn_reason want;
		const char *detail;
	} rc[] = {
		{ MAP, CONN_CLOSE_NONE, "" },
		{ "[sensor-1]\nusername = alice\npassword = " MAP_PASS "\n"
		    "[sensor-4]\n", CONN_CLOSE_NONE, "" },
		{ "[sensor-1]\ndeny = true\n", CONN_CLOSE_REVOKED,
		    "[sensor-1]" },
		{ "[sensor-3]\n", CONN_CLOSE_REVOKED, "after reload" },
		{ "[sensor-1]\nusername = bob\npassword = " MAP_PASS "\n",
		    CONN_CLOSE_CREDENTIALS_CHANGED, "other broker credentials" },
		{ "[sensor-1]\nusername = alice\npassword = other\n",
		    CONN_CLOSE_CREDENTIALS_CHANGED, "other broker credentials" },
		{ "[sensor-1]\nusername = alice\n",
		    CONN_CLOSE_CREDENTIALS_CHANGED, "other broker credentials" },
	};
	uint8_t digest[IDENTITY_DIGEST_LEN];
	char detail[GATE_DETAIL_MAX];
	size_t i;

	for (i = 0; i < sizeof(rc) / sizeof(rc[0]); i++) {
		forget_tmp();
		load_rules("unknown = reject\nclient_id = keep\n", MAP);
		forward_sensor1("sensor-1:x", digest);
		load_rules("unknown = reject\nclient_id = keep\n",
		    rc[i].map);
		detail[0] = '\0';
		cr_assert_eq(gate_recheck(rules, &cert, "sensor-1:x",
		    MQTT_LEVEL_5, digest, NULL, detail, sizeof(detail)),
		    rc[i].want, "case %zu: %s", i, detail);
		cr_assert_not_null(strstr(detail, rc[i].detail),
		    "case %zu: %s", i, detail);
		cr_assert_null(strstr(detail, MAP_PASS));
	}
}

/* client_id = prefix maps the device's own client id: the re-check maps
 * that one again, not the mapped one (which would be prefixed twice). */
Test(gate, recheck_maps_the_device_client_id)
{
	uint8_t digest[IDENTITY_DIGEST_LEN];
	char detail[GATE_DETAIL_MAX];

	load_rules("unknown = reject\nclient_id = prefix\n", MAP);
	forward_sensor1("x", digest);
	cr_assert_eq(gate_recheck(rules, &cert, "x", MQTT_LEVEL_5, digest,
	    NULL, detail, sizeof(detail)), CONN_CLOSE_NONE, "%s", detail);
	cr_assert_eq(gate_recheck(rules, &cert, "y", MQTT_LEVEL_5, digest,
	    NULL, detail, sizeof(detail)), CONN_CLOSE_CREDENTIALS_CHANGED);
}

/* Topic rules that change under a live connection end it: the broker
 * keeps its subscriptions, so narrower rules hold only on a new CONNECT. */
Test(gate, recheck_topic_rules)
{
	static const char *pol = "[policy]\npublish = devices/{identity}/#\n"
	    "subscribe = devices/{identity}/#\n";
	static const char *ident = "unknown = reject\nclient_id = keep\n";
	uint8_t digest[IDENTITY_DIGEST_LEN];
	char detail[GATE_DETAIL_MAX];
	struct policy_set *given;

	forget_tmp();
	load_rules_policy(ident, MAP, pol);
	forward_sensor1("c", digest);
	cr_assert_not_null(res.policy, "policy on: the gate gives rules");
	given = res.policy;
	res.policy = NULL;

	/* The same rules, reloaded: nothing happens. */
	forget_tmp();
	load_rules_policy(ident, MAP, pol);
	cr_assert_eq(gate_recheck(rules, &cert, "c", MQTT_LEVEL_5, digest,
	    given, detail, sizeof(detail)), CONN_CLOSE_NONE, "%s", detail);
	/* The map entry gets its own publish list. */
	forget_tmp();
	load_rules_policy(ident, "[sensor-1]\nusername = alice\npassword = "
	    MAP_PASS "\npublish = other/{identity}/#\n", pol);
	cr_assert_eq(gate_recheck(rules, &cert, "c", MQTT_LEVEL_5, digest,
	    given, detail, sizeof(detail)), CONN_CLOSE_TOPIC_RULES_CHANGED);
	cr_assert_not_null(strstr(detail, "other topic rules"), "%s", detail);
	/* [policy] changes. */
	forget_tmp();
	load_rules_policy(ident, MAP, "[policy]\npublish = devices/{identity}/#"
	    "\nsubscribe = devices/{identity}/#, broadcast/#\n");
	cr_assert_eq(gate_recheck(rules, &cert, "c", MQTT_LEVEL_5, digest,
	    given, detail, sizeof(detail)), CONN_CLOSE_TOPIC_RULES_CHANGED);
	/* Policy turned off: the broker's ACL alone would now judge. */
	forget_tmp();
	load_rules(ident, MAP);
	cr_assert_eq(gate_recheck(rules, &cert, "c", MQTT_LEVEL_5, digest,
	    given, detail, sizeof(detail)), CONN_CLOSE_TOPIC_RULES_CHANGED);
	/* ...and on for a connection that had none. */
	forget_tmp();
	load_rules_policy(ident, MAP, pol);
	cr_assert_eq(gate_recheck(rules, &cert, "c", MQTT_LEVEL_5, digest,
	    NULL, detail, sizeof(detail)), CONN_CLOSE_TOPIC_RULES_CHANGED);
	policy_set_free(given);
}
