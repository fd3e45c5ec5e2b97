/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for gate_connect() in src/core/gate.c, the CONNECT
 * decision, with real identity rules (built once, from a map file written
 * to $TMPDIR and removed again) and certificate identities built in
 * memory. The first input byte picks the rules, the certificate's CN and
 * the CONNECT cap; the rest is what the device sent. It checks:
 *
 *   - only GATE_FORWARD hands out bytes; a wait says nothing else;
 *   - a refusal has a reason and a detail, and its CONNACK (when there is
 *     one) is in the device's form with a code moat sends in that form;
 *   - a forwarded CONNECT parses, carries exactly the mapped username,
 *     password and client id, keeps level, flags, keep alive, properties
 *     and will, and is followed by exactly the bytes that followed the
 *     device's CONNECT; none of it came from a prefix of the CONNECT.
 *
 * Any broken promise calls abort(). Build and run with tests/fuzz/run.sh.
 */
#define _GNU_SOURCE             /* memmem */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moat/config.h"
#include "moat/gate.h"
#include "moat/identity.h"
#include "moat/mqtt.h"

#define MAP_PASSWORD "pw-1-secret"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char map_text[] =
	"[sensor-1]\nusername = alice\npassword = " MAP_PASSWORD "\n"
	"[sensor-2]\ndeny = true\n"
	"[sensor-3]\n";

/* The certificate CNs the first byte chooses from. */
static const char *const cns[] = { "sensor-1", "sensor-2", "sensor-9",
    NULL };

/* The caps it chooses from. */
static const size_t caps[] = { MQTT_CONNECT_MAX_DEFAULT, 16, 64, 256 };

/* [0]: map, require-prefix, unknown = reject; [1]: template, prefix. */
static struct identity_rules *rules[2];

static void
check(int ok)
{
	if (!ok)
		abort();
}

static struct identity_rules *
make_rules(int with_map)
{
	char path[] = "/tmp/moat-fuzz-gate-XXXXXX", err[512];
	struct identity_rules *r;
	struct config cfg;
	FILE *f;
	int fd;

	memset(&cfg, 0, sizeof(cfg));
	cfg.id_source = ID_SRC_CN;
	if (!with_map) {
		cfg.id_client_id = ID_CID_PREFIX;
		cfg.id_unknown_template = 1;
		cfg.id_username = (char *)"dev-{identity}";
		r = identity_rules_new(&cfg, err, sizeof(err));
		check(r != NULL);
		return (r);
	}
	cfg.id_client_id = ID_CID_REQUIRE_PREFIX;
	check((fd = mkstemp(path)) != -1);
	check((f = fdopen(fd, "w")) != NULL);
	check(fputs(map_text, f) >= 0 && fclose(f) == 0);
	cfg.path = path;
	cfg.id_map = path;
	r = identity_rules_new(&cfg, err, sizeof(err));
	unlink(path);
	check(r != NULL);
	return (r);
}

static int
view_is(const struct mqtt_str *v, const char *s)
{
	if (s == NULL)
		return (v->p == NULL);
	return (v->p != NULL && v->len == strlen(s) &&
	    memcmp(v->p, s, v->len) == 0);
}

static int
same_view(const struct mqtt_str *a, const struct mqtt_str *b)
{
	return ((a->p == NULL) == (b->p == NULL) && a->len == b->len &&
	    (a->len == 0 || memcmp(a->p, b->p, a->len) == 0));
}

/* A CONNACK code moat sends in that form. */
static int
known_code(uint8_t level, uint8_t code)
{
	if (level == MQTT_LEVEL_5)
		return (code == MQTT_RC_MALFORMED_PACKET ||
		    code == MQTT_RC_UNSUPPORTED_PROTOCOL ||
		    code == MQTT_RC_CLIENT_ID_NOT_VALID ||
		    code == MQTT_RC_NOT_AUTHORIZED ||
		    code == MQTT_RC_BAD_AUTH_METHOD ||
		    code == MQTT_RC_PACKET_TOO_LARGE);
	return (level == MQTT_LEVEL_311 &&
	    (code == MQTT_CONNACK_V3_REFUSED_PROTOCOL ||
	    code == MQTT_CONNACK_V3_REFUSED_IDENTIFIER ||
	    code == MQTT_CONNACK_V3_NOT_AUTHORIZED));
}

/*
 * sent (len bytes) is what the device sent: the detail may quote its own
 * client id, so the password may appear there only when the device itself
 * wrote it.
 */
static void
check_refusal(const struct gate_result *res, const uint8_t *sent,
    size_t len)
{
	check(res->reason != CONN_CLOSE_NONE && res->detail[0] != '\0');
	check(strstr(res->detail, MAP_PASSWORD) == NULL ||
	    memmem(sent, len, MAP_PASSWORD, strlen(MAP_PASSWORD)) != NULL);
	if (!res->send_connack)
		return;
	check(res->connack_level == (res->level == MQTT_LEVEL_5 ?
	    MQTT_LEVEL_5 : MQTT_LEVEL_311));
	check(known_code(res->connack_level, res->connack_code));
}

/* What went out against what came in; returns the CONNECT's size. */
static size_t
check_forward(const uint8_t *in, size_t len, size_t max,
    const struct gate_result *res, const char *password)
{
	struct mqtt_connect a, b;
	const char *why;
	size_t used, used2;

	check(mqtt_connect_parse(in, len, max, &a, &used, &why) == MQTT_OK);
	check(res->out != NULL && res->level == a.level);
	check(mqtt_connect_parse(res->out, res->out_len, SIZE_MAX, &b,
	    &used2, &why) == MQTT_OK);
	check(res->out_len - used2 == len - used);
	check(len == used ||
	    memcmp(res->out + used2, in + used, len - used) == 0);
	check(view_is(&b.username, res->username));
	check(view_is(&b.client_id, res->client_id));
	check(view_is(&b.password, password));
	check(b.level == a.level && b.keepalive == a.keepalive);
	check((b.flags & ~(MQTT_CF_USERNAME | MQTT_CF_PASSWORD)) ==
	    (a.flags & ~(MQTT_CF_USERNAME | MQTT_CF_PASSWORD)));
	check(same_view(&a.props, &b.props));
	check(same_view(&a.will_props, &b.will_props));
	check(same_view(&a.will_topic, &b.will_topic));
	check(same_view(&a.will_payload, &b.will_payload));
	return (used);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cert_identity id;
	struct gate_result res, pre;
	const struct identity_rules *r;
	const char *password;
	enum gate_verdict v;
	uint8_t *buf;
	size_t max, used;
	int set;

	if (rules[0] == NULL) {
		rules[0] = make_rules(1);
		rules[1] = make_rules(0);
	}
	if (size < 1)
		return (0);
	set = data[0] >> 2 & 1;
	r = rules[set];
	max = caps[data[0] >> 3 & 3];
	memset(&id, 0, sizeof(id));
	id.cn = (char *)cns[data[0] & 3];
	password = set == 0 && data[0] % 4 == 0 ? MAP_PASSWORD : NULL;
	size--;
	check((buf = malloc(size > 0 ? size : 1)) != NULL);
	if (size > 0)
		memcpy(buf, data + 1, size);

	v = gate_connect(buf, size, max, r, &id, &res);
	check(v == res.verdict);
	check((res.out != NULL) == (v == GATE_FORWARD));
	switch (v) {
	case GATE_WAIT:
		check(!res.send_connack && res.reason == CONN_CLOSE_NONE);
		break;
	case GATE_REFUSE:
		check_refusal(&res, buf, size);
		break;
	case GATE_FORWARD:
		used = check_forward(buf, size, max, &res, password);
		/* One byte short of the CONNECT is only worth waiting. */
		check(gate_connect(buf, used - 1, max, r, &id, &pre) ==
		    GATE_WAIT && pre.out == NULL);
		break;
	}
	gate_result_release(&res);
	check(res.out == NULL);
	free(buf);
	return (0);
}
