/* SPDX-License-Identifier: MIT */
/*
 * The CONNECT decision (gate.h): wait for a whole CONNECT, refuse it with
 * the CONNACK the device's MQTT version understands, or rewrite it with the
 * credentials mapped from the certificate and forward it.
 *
 * Every refusal is one row of a table: the close reason and the CONNACK
 * code in the 3.1.1 form and in the MQTT 5 form, where such a code exists.
 * Where MQTT 3.1.1 has no code that says what went wrong (a malformed or
 * oversized CONNECT, an authentication method), the device is closed
 * without a CONNACK, as the 3.1.1 specification asks.
 *
 * Pure: no sockets, no event loop; the only allocation is the rewritten
 * CONNECT handed to the caller. The mapped password passes through a
 * stack buffer that is wiped before returning.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/gate.h"
#include "moat/identity.h"
#include "moat/mqtt.h"
#include "moat/policy.h"
#include "moat/text.h"

/*
 * A CONNECT may arrive one byte per TLS record. Up to this many bytes it
 * is parsed on every piece, so that a bad protocol name or level is
 * answered at once; beyond, only once the fixed header says it is all
 * there (parsing every piece would cost quadratic time).
 */
#define EARLY_PARSE_MAX 64

/*
 * An oversized CONNECT is refused before its body arrives, but MQTT 5 has
 * a CONNACK for it (0x95): wait this long for the protocol level, which
 * ends at byte 13 at the latest (5-byte header, "MQIsdp").
 */
#define LEVEL_WITHIN 16

enum refusal {
	REF_NOT_CONNECT,
	REF_MALFORMED,
	REF_TOO_LARGE,
	REF_BAD_PROTOCOL,
	REF_AUTH_METHOD,
	REF_CLIENT_ID,
	REF_IDENTITY,
	REF_WILL_TOPIC,
	REF_ENCODE,
	REF_NO_MEMORY,
};

static const struct {
	enum conn_reason reason;
	uint8_t has_v3;        /* 3.1.1 has a CONNACK code for it */
	uint8_t v3;
	uint8_t has_v5;        /* MQTT 5 has a reason code for it */
	uint8_t v5;
} refusals[] = {
	[REF_NOT_CONNECT] = { CONN_CLOSE_MQTT_NOT_CONNECT, 0, 0, 0, 0 },
	[REF_MALFORMED] = { CONN_CLOSE_MQTT_MALFORMED, 0, 0,
	    1, MQTT_RC_MALFORMED_PACKET },
	[REF_TOO_LARGE] = { CONN_CLOSE_CONNECT_TOO_LARGE, 0, 0,
	    1, MQTT_RC_PACKET_TOO_LARGE },
	[REF_BAD_PROTOCOL] = { CONN_CLOSE_PROTOCOL_REFUSED,
	    1, MQTT_CONNACK_V3_REFUSED_PROTOCOL,
	    1, MQTT_RC_UNSUPPORTED_PROTOCOL },
	[REF_AUTH_METHOD] = { CONN_CLOSE_AUTH_METHOD_REFUSED, 0, 0,
	    1, MQTT_RC_BAD_AUTH_METHOD },
	[REF_CLIENT_ID] = { CONN_CLOSE_CLIENT_ID_REFUSED,
	    1, MQTT_CONNACK_V3_REFUSED_IDENTIFIER,
	    1, MQTT_RC_CLIENT_ID_NOT_VALID },
	[REF_IDENTITY] = { CONN_CLOSE_IDENTITY_REFUSED,
	    1, MQTT_CONNACK_V3_NOT_AUTHORIZED,
	    1, MQTT_RC_NOT_AUTHORIZED },
	[REF_WILL_TOPIC] = { CONN_CLOSE_TOPIC_REFUSED,
	    1, MQTT_CONNACK_V3_NOT_AUTHORIZED,
	    1, MQTT_RC_NOT_AUTHORIZED },
	/* Not the device's fault, or nothing a CONNACK could explain. */
	[REF_ENCODE] = { CONN_CLOSE_MQTT_MALFORMED, 0, 0, 0, 0 },
	[REF_NO_MEMORY] = { CONN_CLOSE_NO_MEMORY, 0, 0, 0, 0 },
};

/*
 * Fill res for refusal k. The CONNACK takes the device's form: MQTT 5 for
 * level 5, else 3.1.1 (also for levels moat does not speak, as Mosquitto
 * answers them).
 */
static enum gate_verdict
refuse(struct gate_result *res, enum refusal k, const char *detail)
{
	int v5 = res->level == MQTT_LEVEL_5;

	res->verdict = GATE_REFUSE;
	res->reason = refusals[k].reason;
	res->connack_level = v5 ? MQTT_LEVEL_5 : MQTT_LEVEL_311;
	res->send_connack = v5 ? refusals[k].has_v5 : refusals[k].has_v3;
	res->connack_code = !res->send_connack ? 0 :
	    v5 ? refusals[k].v5 : refusals[k].v3;
	snprintf(res->detail, sizeof(res->detail), "%s", detail);
	return (res->verdict);
}

/* The refusal for a CONNECT the parser did not accept, or GATE_WAIT. */
static enum gate_verdict
parse_refusal(struct gate_result *res, enum mqtt_status ms, size_t len,
    const char *why)
{
	switch (ms) {
	case MQTT_NOT_CONNECT:
		return (refuse(res, REF_NOT_CONNECT, why));
	case MQTT_MALFORMED:
		return (refuse(res, REF_MALFORMED, why));
	case MQTT_TOO_LARGE:
		/* MQTT 5 has a CONNACK for this: wait for the level. */
		if (res->level == 0 && len < LEVEL_WITHIN)
			return (GATE_WAIT);
		return (refuse(res, REF_TOO_LARGE, why));
	case MQTT_BAD_PROTOCOL:
		return (refuse(res, REF_BAD_PROTOCOL, why));
	case MQTT_INCOMPLETE:
	case MQTT_OK:
		break;
	}
	return (GATE_WAIT);
}

/* An identity refusal, naming the map entry that refused, if one did. */
static enum gate_verdict
identity_refusal(struct gate_result *res, enum identity_verdict v,
    const struct identity_creds *cr)
{
	char detail[GATE_DETAIL_MAX];

	if (cr->rule_kind == ID_RULE_MAP_ENTRY)
		snprintf(detail, sizeof(detail), "%s (%s)", cr->why, cr->rule);
	else
		snprintf(detail, sizeof(detail), "%s", cr->why);
	return (refuse(res, v == ID_CLIENT_ID_REFUSED ? REF_CLIENT_ID :
	    REF_IDENTITY, detail));
}

/*
 * The CONNECT re-encoded with cr's credentials, then the rest of buf
 * after it, into res->out. The device's own username and password are
 * dropped here.
 */
static enum gate_verdict
rewrite(struct gate_result *res, struct mqtt_connect *pc,
    const struct identity_creds *cr, const uint8_t *rest, size_t nrest)
{
	size_t n;

	pc->username.p = (const uint8_t *)cr->username;
	pc->username.len = strlen(cr->username);
	pc->password.p = cr->has_password ? (const uint8_t *)cr->password :
	    NULL;
	pc->password.len = cr->has_password ? strlen(cr->password) : 0;
	pc->client_id.p = (const uint8_t *)cr->client_id;
	pc->client_id.len = strlen(cr->client_id);
	if ((n = mqtt_connect_size(pc)) == 0)
		return (refuse(res, REF_ENCODE, "cannot encode the CONNECT"));
	if ((res->out = malloc(n + nrest)) == NULL)
		return (refuse(res, REF_NO_MEMORY,
		    "cannot encode the CONNECT"));
	res->out_len = n + nrest;
	if (mqtt_connect_encode(pc, res->out, n) != n) {
		gate_result_release(res);
		return (refuse(res, REF_ENCODE, "cannot encode the CONNECT"));
	}
	if (nrest > 0)
		memcpy(res->out + n, rest, nrest);
	if (identity_creds_digest(cr, res->creds_digest) != 0) {
		gate_result_release(res);
		return (refuse(res, REF_NO_MEMORY, "cannot hash the "
		    "credentials"));
	}
	snprintf(res->username, sizeof(res->username), "%s", cr->username);
	snprintf(res->client_id, sizeof(res->client_id), "%s", cr->client_id);
	res->verdict = GATE_FORWARD;
	return (res->verdict);
}

/*
 * Topic policy, once the identity maps: the device's rules with their
 * placeholders filled (kept in res->policy for the connection), and its
 * Will, which the broker would publish for it, held to the publish rules
 * like any PUBLISH. Returns GATE_FORWARD to go on, or the refusal.
 */
static enum gate_verdict
topic_rules(struct gate_result *res, const struct mqtt_connect *pc,
    const struct identity_rules *rules, const struct cert_identity *id)
{
	struct policy_rules pr;
	struct policy_values pv;
	char err[GATE_DETAIL_MAX - 64], q[TEXT_QUOTE_BUF];
	char detail[GATE_DETAIL_MAX];

	if (!identity_policy_rules(rules, res->identity, &pr))
		return (GATE_FORWARD);
	pv.identity = res->identity;
	pv.cn = id->cn;
	pv.serial = id->serial;
	pv.fingerprint = id->fingerprint;
	if ((res->policy = policy_expand(&pr, &pv, err, sizeof(err))) ==
	    NULL) {
		snprintf(detail, sizeof(detail), "topic rules: %s", err);
		return (refuse(res, REF_IDENTITY, detail));
	}
	if ((pc->flags & MQTT_CF_WILL) && !policy_may_publish(res->policy,
	    pc->will_topic.p, pc->will_topic.len)) {
		snprintf(detail, sizeof(detail), "the Will topic \"%s\" is "
		    "not allowed by the publish rules", text_quote((const char *)
		    pc->will_topic.p, pc->will_topic.len, TEXT_QUOTE_MAX,
		    TEXT_QUOTE_ESCAPES, q, sizeof(q)));
		policy_set_free(res->policy);
		res->policy = NULL;
		return (refuse(res, REF_WILL_TOPIC, detail));
	}
	return (GATE_FORWARD);
}

/* A whole, well-formed CONNECT: map the certificate and rewrite. */
static enum gate_verdict
decide(struct gate_result *res, struct mqtt_connect *pc,
    const uint8_t *rest, size_t nrest, const struct identity_rules *rules,
    const struct cert_identity *id)
{
	struct identity_creds cr;
	enum identity_verdict v;
	enum gate_verdict gv;

	if (pc->has_auth)
		return (refuse(res, REF_AUTH_METHOD, "MQTT 5 authentication "
		    "method in CONNECT: moat owns authentication"));
	if (pc->client_id.len < sizeof(res->device_cid)) {
		memcpy(res->device_cid, pc->client_id.p, pc->client_id.len);
		res->device_cid[pc->client_id.len] = '\0';
	}
	v = identity_map(rules, id, pc->client_id.p, pc->client_id.len,
	    pc->level, &cr);
	snprintf(res->rule, sizeof(res->rule), "%s", cr.rule);
	res->rule_kind = cr.rule_kind;
	snprintf(res->identity, sizeof(res->identity), "%s", cr.identity);
	if (v != ID_OK)
		gv = identity_refusal(res, v, &cr);
	else if ((gv = topic_rules(res, pc, rules, id)) == GATE_FORWARD)
		gv = rewrite(res, pc, &cr, rest, nrest);
	explicit_bzero(&cr, sizeof(cr));
	return (gv);
}

enum gate_verdict
gate_connect(const uint8_t *buf, size_t len, size_t max_connect_size,
    const struct identity_rules *rules, const struct cert_identity *id,
    struct gate_result *res)
{
	struct mqtt_connect pc;
	const char *why = "";
	size_t used = 0, need;
	enum mqtt_status ms;

	memset(res, 0, sizeof(*res));
	res->verdict = GATE_WAIT;
	/* The fixed header alone says how much to wait for. */
	if (mqtt_connect_need(buf, len, &need, &why) == MQTT_OK &&
	    need <= max_connect_size && len < need && len > EARLY_PARSE_MAX)
		return (GATE_WAIT);

	ms = mqtt_connect_parse(buf, len, max_connect_size, &pc, &used, &why);
	res->level = pc.level;
	if (ms != MQTT_OK)
		return (parse_refusal(res, ms, len, why));
	return (decide(res, &pc, buf + used, len - used, rules, id));
}

/* The same rules, in the same order, in a and b? */
static int
same_rules(const struct policy_set *a, const struct policy_set *b)
{
	static const enum policy_kind kinds[] = { POLICY_PUBLISH,
	    POLICY_SUBSCRIBE };
	const char *ra, *rb;
	size_t i, k, la, lb;

	for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		for (i = 0;; i++) {
			ra = policy_set_rule(a, kinds[k], i, &la);
			rb = policy_set_rule(b, kinds[k], i, &lb);
			if (ra == NULL || rb == NULL) {
				if (ra != rb)
					return (0);
				break;
			}
			if (la != lb || memcmp(ra, rb, la) != 0)
				return (0);
		}
	return (1);
}

/* Would the identity get other topic rules now than cur? */
static int
rules_changed(const struct identity_rules *rules,
    const struct cert_identity *id, const char *identity,
    const struct policy_set *cur)
{
	struct policy_rules pr;
	struct policy_values pv = { identity, id->cn, id->serial,
	    id->fingerprint };
	struct policy_set *now;
	char err[GATE_DETAIL_MAX];
	int changed;

	if (!identity_policy_rules(rules, identity, &pr))
		return (cur != NULL);
	if (cur == NULL ||
	    (now = policy_expand(&pr, &pv, err, sizeof(err))) == NULL)
		return (1);
	changed = !same_rules(now, cur);
	policy_set_free(now);
	return (changed);
}

enum conn_reason
gate_recheck(const struct identity_rules *rules,
    const struct cert_identity *id, const char *device_cid, uint8_t level,
    const uint8_t digest[IDENTITY_DIGEST_LEN],
    const struct policy_set *policy, char *detail, size_t detaillen)
{
	uint8_t now[IDENTITY_DIGEST_LEN];
	struct identity_creds cr;
	enum identity_verdict v;
	enum conn_reason why = CONN_CLOSE_NONE;

	v = identity_map(rules, id, (const uint8_t *)device_cid,
	    strlen(device_cid), level, &cr);
	if (v == ID_DENIED || v == ID_UNKNOWN || v == ID_BAD_NAME ||
	    v == ID_CLIENT_ID_REFUSED) {
		why = CONN_CLOSE_REVOKED;
		if (cr.rule_kind == ID_RULE_MAP_ENTRY)
			snprintf(detail, detaillen, "after reload: %s (%s)",
			    cr.why, cr.rule);
		else
			snprintf(detail, detaillen, "after reload: %s", cr.why);
	} else if (identity_creds_digest(&cr, now) != 0 ||
	    memcmp(now, digest, sizeof(now)) != 0) {
		why = CONN_CLOSE_CREDENTIALS_CHANGED;
		snprintf(detail, detaillen, "after reload the identity maps "
		    "to other broker credentials (%s)", cr.rule);
	} else if (rules_changed(rules, id, cr.identity, policy)) {
		why = CONN_CLOSE_TOPIC_RULES_CHANGED;
		snprintf(detail, detaillen, "after reload the identity has "
		    "other topic rules; the broker would keep what it "
		    "subscribed to under the old ones");
	}
	explicit_bzero(&cr, sizeof(cr));
	explicit_bzero(now, sizeof(now));
	return (why);
}

void
gate_result_release(struct gate_result *res)
{
	if (res == NULL)
		return;
	policy_set_free(res->policy);
	res->policy = NULL;
	if (res->out == NULL)
		return;
	text_wipe_free(res->out, res->out_len);
	res->out = NULL;
	res->out_len = 0;
}
