/* SPDX-License-Identifier: MIT */
/*
 * The topic guard (guard.h): what a connection's device may send after its
 * CONNECT. One whole packet at a time, it reads what it must judge with
 * the codecs of mqtt.c, asks the policy's callbacks, and answers with a
 * verdict and, where moat speaks for the broker, the bytes to send.
 *
 * State kept per connection, all of it capped (guard.h):
 *   - partly refused SUBSCRIBEs waiting for the broker's SUBACK, each with
 *     a bitmap of the filters that went through, oldest first;
 *   - QoS 2 packet identifiers moat answered with a PUBREC itself, so
 *     that their PUBREL gets moat's PUBCOMP and never reaches the broker;
 *   - MQTT 5 topic aliases: per alias whether it is bound and whether the
 *     topic bound to it is allowed. A refused PUBLISH that binds an alias
 *     never reaches the broker, but the device believes the binding
 *     holds: the alias stays refused until a PUBLISH binds it again.
 *
 * Pure: no I/O. Memory is taken only for outstanding state and for the
 * bytes of an answer or a rewrite, which are never larger than the packet
 * they answer plus the refused codes.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moat/guard.h"
#include "moat/mqtt.h"
#include "moat/reason.h"

#define ALLOWED 1                  /* what a policy callback says yes with */

/* Topic alias states, two bits each. */
#define ALIAS_UNBOUND 0u
#define ALIAS_ALLOWED 1u
#define ALIAS_REFUSED 2u
#define ALIAS_BITS    2u
#define ALIAS_MASK    3u
#define ALIASES_PER_WORD (64u / ALIAS_BITS)
#define ALIAS_WORDS_MIN 1u

#define OUT_KEEP 256               /* an answer buffer larger is not kept */
#define HEAD_NEED_MAX 7            /* fixed header (5) and a packet id */

/* One partly refused SUBSCRIBE, waiting for its SUBACK. */
struct guard_pending {
	struct guard_pending *next;
	uint16_t packet_id;
	size_t count;              /* filters in the device's SUBSCRIBE */
	size_t nallowed;           /* of them forwarded to the broker */
	uint8_t allowed[];         /* bit i: filter i went to the broker */
};

static const char *const kind_names[] = {
#define X(name, text) text,
	GUARD_KINDS(X)
#undef X
};

const char *
guard_kind_name(enum guard_kind kind)
{
	return ((unsigned)kind < GUARD_NKINDS ? kind_names[kind] : "?");
}

void
guard_init(struct guard *g, uint8_t level, const struct guard_policy *pol)
{
	memset(g, 0, sizeof(*g));
	g->level = level;
	if (pol != NULL)
		g->pol = *pol;
	if (g->pol.alias_max == 0)
		g->pol.alias_max = GUARD_ALIAS_MAX;
}

void
guard_release(struct guard *g)
{
	struct guard_pending *p;

	if (g == NULL)
		return;
	while ((p = g->pending) != NULL) {
		g->pending = p->next;
		free(p);
	}
	g->npending = 0;
	free(g->alias);
	g->alias = NULL;
	g->alias_words = 0;
	free(g->out);
	g->out = NULL;
	g->out_cap = 0;
}

uint64_t
guard_refused_total(const struct guard *g)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < GUARD_NKINDS; i++)
		n += g->refused[i];
	return (n);
}

/* --- actions ---------------------------------------------------------- */

static int
is5(const struct guard *g)
{
	return (g->level == MQTT_LEVEL_5);
}

/* Count n refusals of kind in act and g. */
static void
refuse(struct guard *g, struct guard_action *act, enum guard_kind kind,
    size_t n)
{
	act->refused = kind;
	act->nrefused = n;
	g->refused[kind] += n;
}

/* Close: remembered, so that every later call says the same. */
static enum guard_verdict
close_with(struct guard *g, struct guard_action *act, uint8_t rc,
    enum conn_reason reason, enum guard_kind kind, const char *detail)
{
	if (kind != GUARD_KIND_NONE)
		refuse(g, act, kind, 1);
	g->closed = 1;
	g->close_rc = rc;
	g->close_reason = reason;
	g->close_detail = detail;
	act->verdict = GUARD_CLOSE;
	act->reason = reason;
	act->detail = detail;
	act->disconnect = is5(g);
	act->rc = rc;
	return (GUARD_CLOSE);
}

static enum guard_verdict
malformed(struct guard *g, struct guard_action *act, const char *why)
{
	return (close_with(g, act, MQTT_RC_MALFORMED_PACKET,
	    CONN_CLOSE_PACKET_MALFORMED, GUARD_KIND_MALFORMED, why));
}

static enum guard_verdict
protocol_error(struct guard *g, struct guard_action *act, uint8_t rc,
    const char *why)
{
	return (close_with(g, act, rc, CONN_CLOSE_PROTOCOL_ERROR,
	    GUARD_KIND_PROTOCOL, why));
}

/* Room for n answer bytes: g->out, grown as needed; NULL without memory. */
static uint8_t *
out_room(struct guard *g, size_t n)
{
	uint8_t *p;

	if (n <= g->out_cap)
		return (g->out);
	if ((p = realloc(g->out, n)) == NULL)
		return (NULL);
	g->out = p;
	g->out_cap = n;
	return (p);
}

static enum guard_verdict
no_memory(struct guard *g, struct guard_action *act)
{
	return (close_with(g, act, MQTT_RC_UNSPECIFIED, CONN_CLOSE_NO_MEMORY,
	    GUARD_KIND_NONE, "the topic guard is out of memory"));
}

/* A PUBACK, PUBREC or PUBCOMP for the device. */
static enum guard_verdict
answer_ack(struct guard *g, struct guard_action *act, uint8_t type,
    uint16_t packet_id, uint8_t rc)
{
	act->verdict = GUARD_ANSWER;
	act->out_len = mqtt_ack_encode(type, g->level, packet_id, rc,
	    g->small);
	act->out = g->small;
	return (GUARD_ANSWER);
}

/* --- QoS 2 identifiers moat answered ---------------------------------- */

static int
answered_find(const struct guard *g, uint16_t id)
{
	unsigned i;

	for (i = 0; i < g->nanswered; i++)
		if (g->answered[i] == id)
			return ((int)i);
	return (-1);
}

static void
answered_drop(struct guard *g, int i)
{
	if (i < 0)
		return;
	memmove(&g->answered[i], &g->answered[i + 1],
	    (g->nanswered - (unsigned)i - 1) * sizeof(g->answered[0]));
	g->nanswered--;
}

/* Remember id; past the cap, forget the oldest (guard.h). */
static void
answered_add(struct guard *g, uint16_t id)
{
	if (answered_find(g, id) >= 0)
		return;
	if (g->nanswered == GUARD_ANSWERED_MAX)
		answered_drop(g, 0);
	g->answered[g->nanswered++] = id;
}

/* --- topic aliases ---------------------------------------------------- */

static unsigned
alias_get(const struct guard *g, uint16_t a)
{
	size_t w = a / ALIASES_PER_WORD;

	if (w >= g->alias_words)
		return (ALIAS_UNBOUND);
	return ((unsigned)(g->alias[w] >> (a % ALIASES_PER_WORD * ALIAS_BITS))
	    & ALIAS_MASK);
}

/* Bind alias a (<= alias_max) to state; grows the table; 0 or -1. */
static int
alias_set(struct guard *g, uint16_t a, unsigned state)
{
	size_t w = a / ALIASES_PER_WORD, n, cap;
	unsigned shift = a % ALIASES_PER_WORD * ALIAS_BITS;
	uint64_t *p;

	if (w >= g->alias_words) {
		cap = (size_t)g->pol.alias_max / ALIASES_PER_WORD + 1;
		for (n = g->alias_words ? g->alias_words : ALIAS_WORDS_MIN;
		    n <= w; n *= 2)
			;
		if (n > cap)
			n = cap;
		if ((p = realloc(g->alias, n * sizeof(*p))) == NULL)
			return (-1);
		memset(p + g->alias_words, 0,
		    (n - g->alias_words) * sizeof(*p));
		g->alias = p;
		g->alias_words = n;
	}
	g->alias[w] &= ~((uint64_t)ALIAS_MASK << shift);
	g->alias[w] |= (uint64_t)state << shift;
	return (0);
}

/* --- PUBLISH ---------------------------------------------------------- */

static int
may_publish(const struct guard *g, const struct mqtt_str *topic)
{
	return (g->pol.may_publish(g->pol.ctx, topic->p, topic->len) ==
	    ALLOWED);
}

/*
 * Is p's topic allowed? Through its alias when it has one. Returns 1 or
 * 0, or -1 after closing (an alias out of range or never bound, or no
 * memory for the table).
 */
static int
judge_topic(struct guard *g, const struct mqtt_publish *p,
    struct guard_action *act)
{
	unsigned state;
	int ok;

	if (!p->has_alias)
		return (may_publish(g, &p->topic));
	if (p->alias == 0 || p->alias > g->pol.alias_max) {
		protocol_error(g, act, MQTT_RC_TOPIC_ALIAS_INVALID,
		    "topic alias 0 or above the maximum");
		return (-1);
	}
	if (p->topic.len > 0) {
		ok = may_publish(g, &p->topic);
		if (alias_set(g, p->alias, ok ? ALIAS_ALLOWED :
		    ALIAS_REFUSED) != 0) {
			no_memory(g, act);
			return (-1);
		}
		return (ok);
	}
	if ((state = alias_get(g, p->alias)) == ALIAS_UNBOUND) {
		protocol_error(g, act, MQTT_RC_PROTOCOL_ERROR,
		    "topic alias used before it was set");
		return (-1);
	}
	return (state == ALIAS_ALLOWED);
}

/* A refused PUBLISH, per version and on_denied_publish. */
static enum guard_verdict
refuse_publish(struct guard *g, const struct mqtt_publish *p,
    struct guard_action *act)
{
	act->topic = p->topic;
	if (!is5(g) && !g->pol.drop_denied)
		return (close_with(g, act, 0, CONN_CLOSE_TOPIC_REFUSED,
		    GUARD_KIND_PUBLISH, "PUBLISH to a topic the policy "
		    "refuses"));
	refuse(g, act, GUARD_KIND_PUBLISH, 1);
	switch (p->qos) {
	case 0:
		act->verdict = GUARD_DROP;
		return (GUARD_DROP);
	case 1:
		return (answer_ack(g, act, MQTT_PKT_PUBACK, p->packet_id,
		    MQTT_RC_NOT_AUTHORIZED));
	default:
		/* MQTT 5 ends the flow at a PUBREC >= 0x80; 3.1.1 goes on. */
		if (!is5(g))
			answered_add(g, p->packet_id);
		return (answer_ack(g, act, MQTT_PKT_PUBREC, p->packet_id,
		    MQTT_RC_NOT_AUTHORIZED));
	}
}

static enum guard_verdict
on_publish(struct guard *g, const uint8_t *pkt, size_t len,
    const struct mqtt_frame *f, struct guard_action *act)
{
	struct mqtt_publish p;
	const char *why;
	int ok;

	act->is_publish = 1;
	act->qos = (f->flags & MQTT_PUB_QOS) >> MQTT_PUB_QOS_SHIFT;
	if (mqtt_publish_read(pkt, len, g->level, &p, &why) != MQTT_OK) {
		act->publish_bytes = f->rem_len;
		if (g->pol.may_publish == NULL)
			return (GUARD_FORWARD);
		return (malformed(g, act, why));
	}
	act->publish_bytes = p.payload.len;
	if (g->pol.may_publish == NULL)
		return (GUARD_FORWARD);
	if ((ok = judge_topic(g, &p, act)) < 0)
		return (GUARD_CLOSE);
	if (!ok)
		return (refuse_publish(g, &p, act));
	/* The broker owns this identifier's flow now, not moat. */
	if (p.qos == 2)
		answered_drop(g, answered_find(g, p.packet_id));
	return (GUARD_FORWARD);
}

/* A PUBREL for a QoS 2 PUBLISH moat answered gets moat's PUBCOMP. */
static enum guard_verdict
on_pubrel(struct guard *g, const uint8_t *pkt, const struct mqtt_frame *f,
    struct guard_action *act)
{
	uint16_t id;
	int i;

	if (g->nanswered == 0 || f->rem_len < 2)
		return (GUARD_FORWARD);
	id = (uint16_t)(pkt[f->hdr_len] << 8 | pkt[f->hdr_len + 1]);
	if ((i = answered_find(g, id)) < 0)
		return (GUARD_FORWARD);
	answered_drop(g, i);
	return (answer_ack(g, act, MQTT_PKT_PUBCOMP, id, MQTT_RC_SUCCESS));
}

/* --- SUBSCRIBE and its SUBACK ------------------------------------------ */

static int
bit(const uint8_t *map, size_t i)
{
	return ((map[i / 8] >> (i % 8)) & 1);
}

static struct guard_pending *
pending_find(const struct guard *g, uint16_t id)
{
	struct guard_pending *p;

	for (p = g->pending; p != NULL; p = p->next)
		if (p->packet_id == id)
			return (p);
	return (NULL);
}

static void
pending_append(struct guard *g, struct guard_pending *n)
{
	struct guard_pending **pp = &g->pending;

	while (*pp != NULL)
		pp = &(*pp)->next;
	n->next = NULL;
	*pp = n;
	g->npending++;
}

static void
pending_remove(struct guard *g, struct guard_pending *n)
{
	struct guard_pending **pp = &g->pending;

	while (*pp != n)
		pp = &(*pp)->next;
	*pp = n->next;
	g->npending--;
	free(n);
}

/* The refusal code of a filter the policy refused. */
static uint8_t
refusal(const struct guard *g)
{
	return (is5(g) ? MQTT_RC_NOT_AUTHORIZED : MQTT_SUBACK_V3_FAILURE);
}

/*
 * moat answers the SUBSCRIBE n itself: every filter refused, the allowed
 * ones (only when over the pending cap) with quota exceeded at MQTT 5.
 */
static enum guard_verdict
answer_suback(struct guard *g, const struct guard_pending *n,
    struct guard_action *act)
{
	size_t size = mqtt_suback_size(g->level, 0, n->count), i;
	uint8_t *o, *codes;

	if (size == 0 || (o = out_room(g, size)) == NULL)
		return (no_memory(g, act));
	codes = o + size - n->count;
	for (i = 0; i < n->count; i++)
		codes[i] = !bit(n->allowed, i) ? refusal(g) : is5(g) ?
		    MQTT_RC_QUOTA_EXCEEDED : MQTT_SUBACK_V3_FAILURE;
	act->out_len = mqtt_suback_encode(g->level, n->packet_id, NULL,
	    codes, n->count, o, size);
	act->out = o;
	act->verdict = GUARD_ANSWER;
	return (GUARD_ANSWER);
}

/* Ask the policy about each filter of s, into a new pending record. */
static struct guard_pending *
judge_filters(const struct guard *g, const struct mqtt_subscribe *s)
{
	struct guard_pending *n;
	struct mqtt_filter f;
	size_t pos = 0, i = 0;

	n = calloc(1, sizeof(*n) + (s->count + 7) / 8);
	if (n == NULL)
		return (NULL);
	n->packet_id = s->packet_id;
	n->count = s->count;
	while (mqtt_filters_next(s, &pos, &f)) {
		if (g->pol.may_subscribe(g->pol.ctx, f.filter.p,
		    f.filter.len) == ALLOWED) {
			n->allowed[i / 8] |= (uint8_t)(1u << i % 8);
			n->nallowed++;
		}
		i++;
	}
	return (n);
}

static enum guard_verdict
on_subscribe(struct guard *g, const uint8_t *pkt, size_t len,
    struct guard_action *act)
{
	struct guard_pending *n;
	struct mqtt_subscribe s;
	enum guard_verdict v;
	const char *why;
	uint8_t *o;

	if (g->pol.may_subscribe == NULL)
		return (GUARD_FORWARD);
	if (mqtt_subscribe_read(pkt, len, g->level, &s, &why) != MQTT_OK)
		return (malformed(g, act, why));
	/* Its SUBACK could not be told from the one moat waits for. */
	if (pending_find(g, s.packet_id) != NULL)
		return (protocol_error(g, act, MQTT_RC_PROTOCOL_ERROR,
		    "SUBSCRIBE reuses a packet identifier still in use"));
	if ((n = judge_filters(g, &s)) == NULL)
		return (no_memory(g, act));
	if (n->nallowed == n->count) {
		free(n);
		return (GUARD_FORWARD);
	}
	refuse(g, act, GUARD_KIND_SUBSCRIBE, n->count - n->nallowed);
	if (n->nallowed == 0 || g->npending == GUARD_PENDING_MAX) {
		v = answer_suback(g, n, act);
		free(n);
		return (v);
	}
	/* The rewrite is never longer than what it rewrites. */
	if ((o = out_room(g, len)) == NULL) {
		free(n);
		return (no_memory(g, act));
	}
	act->out_len = mqtt_subscribe_encode_some(&s, n->allowed, o, len);
	act->out = o;
	act->verdict = GUARD_FORWARD_REWRITTEN;
	pending_append(g, n);
	return (GUARD_FORWARD_REWRITTEN);
}

static enum guard_verdict
on_unsubscribe(struct guard *g, const uint8_t *pkt, size_t len,
    struct guard_action *act)
{
	struct mqtt_subscribe s;
	const char *why;

	if (g->pol.may_subscribe == NULL)
		return (GUARD_FORWARD);
	if (mqtt_unsubscribe_read(pkt, len, g->level, &s, &why) != MQTT_OK)
		return (malformed(g, act, why));
	return (GUARD_FORWARD);
}

/* Put the broker's SUBACK codes back into the device's order. */
static enum guard_verdict
merge_suback(struct guard *g, struct guard_pending *n,
    const struct mqtt_suback *b, struct guard_action *act)
{
	size_t size, i, j = 0;
	uint8_t *o, *codes;

	size = mqtt_suback_size(g->level, b->props.len, n->count);
	if (size == 0 || (o = out_room(g, size)) == NULL)
		return (no_memory(g, act));
	codes = o + size - n->count;
	for (i = 0; i < n->count; i++)
		codes[i] = bit(n->allowed, i) ? b->codes.p[j++] : refusal(g);
	act->out_len = mqtt_suback_encode(g->level, b->packet_id, &b->props,
	    codes, n->count, o, size);
	act->out = o;
	act->verdict = GUARD_FORWARD_REWRITTEN;
	pending_remove(g, n);
	return (GUARD_FORWARD_REWRITTEN);
}

/* --- entry points ------------------------------------------------------ */

/* Clear act; drop a large answer buffer the last call left. */
static void
begin(struct guard *g, struct guard_action *act)
{
	memset(act, 0, sizeof(*act));
	act->verdict = GUARD_FORWARD;
	act->refused = GUARD_KIND_NONE;
	if (g->out_cap > OUT_KEEP) {
		free(g->out);
		g->out = NULL;
		g->out_cap = 0;
	}
}

static enum guard_verdict
closed_again(struct guard *g, struct guard_action *act)
{
	act->verdict = GUARD_CLOSE;
	act->reason = g->close_reason;
	act->detail = g->close_detail;
	act->disconnect = is5(g);
	act->rc = g->close_rc;
	return (GUARD_CLOSE);
}

/* pkt[0..len) must be exactly one packet: fills f. */
static int
one_packet(const uint8_t *pkt, size_t len, struct mqtt_frame *f,
    const char **why)
{
	enum mqtt_status st = mqtt_frame(pkt, len, len, f, why);

	if (st == MQTT_MALFORMED)
		return (0);
	if (st != MQTT_OK || f->total != len) {
		*why = "not one whole packet";
		return (0);
	}
	return (1);
}

enum guard_verdict
guard_up(struct guard *g, const uint8_t *pkt, size_t len,
    struct guard_action *act)
{
	struct mqtt_frame f;
	const char *why;

	begin(g, act);
	if (g->closed)
		return (closed_again(g, act));
	if (!one_packet(pkt, len, &f, &why))
		return (malformed(g, act, why));
	switch (f.type) {
	case MQTT_PKT_CONNECT:
		return (close_with(g, act, MQTT_RC_PROTOCOL_ERROR,
		    CONN_CLOSE_PROTOCOL_ERROR, GUARD_KIND_CONNECT,
		    "a second CONNECT"));
	case MQTT_PKT_AUTH:
		if (!is5(g))
			return (malformed(g, act, "packet type 15 before "
			    "MQTT 5"));
		return (close_with(g, act, MQTT_RC_BAD_AUTH_METHOD,
		    CONN_CLOSE_AUTH_METHOD_REFUSED, GUARD_KIND_AUTH,
		    "an AUTH packet: moat owns authentication"));
	case MQTT_PKT_PUBLISH:
		return (act->verdict = on_publish(g, pkt, len, &f, act));
	case MQTT_PKT_PUBREL:
		return (act->verdict = on_pubrel(g, pkt, &f, act));
	case MQTT_PKT_SUBSCRIBE:
		return (act->verdict = on_subscribe(g, pkt, len, act));
	case MQTT_PKT_UNSUBSCRIBE:
		return (act->verdict = on_unsubscribe(g, pkt, len, act));
	default:
		return (GUARD_FORWARD);
	}
}

enum guard_verdict
guard_up_refuse_frame(struct guard *g, enum mqtt_status st,
    const char *why, struct guard_action *act)
{
	begin(g, act);
	if (g->closed)
		return (closed_again(g, act));
	if (st == MQTT_TOO_LARGE)
		return (close_with(g, act, MQTT_RC_PACKET_TOO_LARGE,
		    CONN_CLOSE_PACKET_TOO_LARGE, GUARD_KIND_TOO_LARGE,
		    why != NULL ? why : "packet is larger than the limit"));
	return (malformed(g, act, why != NULL ? why : "malformed packet"));
}

int
guard_wants_down(const struct guard *g, const uint8_t *head, size_t n)
{
	struct mqtt_frame f;
	const char *why;
	enum mqtt_status st;
	size_t at;

	if (g->pending == NULL)
		return (0);
	if (n == 0)
		return (-1);
	if (head[0] >> 4 != MQTT_PKT_SUBACK)
		return (0);
	st = mqtt_frame(head, n, SIZE_MAX, &f, &why);
	if (st == MQTT_INCOMPLETE && f.hdr_len == 0)
		return (n < HEAD_NEED_MAX ? -1 : 0);
	if (st != MQTT_OK && st != MQTT_INCOMPLETE)
		return (0);
	if (f.rem_len < 2)
		return (0);
	at = f.hdr_len;
	if (n < at + 2)
		return (-1);
	return (pending_find(g, (uint16_t)(head[at] << 8 | head[at + 1])) !=
	    NULL);
}

enum guard_verdict
guard_down(struct guard *g, const uint8_t *pkt, size_t len,
    struct guard_action *act)
{
	struct guard_pending *n;
	struct mqtt_suback b;
	const char *why;

	begin(g, act);
	if (g->closed)
		return (closed_again(g, act));
	if (len < 1 || pkt[0] >> 4 != MQTT_PKT_SUBACK || g->pending == NULL)
		return (GUARD_FORWARD);
	if (mqtt_suback_read(pkt, len, g->level, &b, &why) != MQTT_OK)
		return (close_with(g, act, MQTT_RC_UNSPECIFIED,
		    CONN_CLOSE_BACKEND_ERROR, GUARD_KIND_NONE, why));
	if ((n = pending_find(g, b.packet_id)) == NULL)
		return (GUARD_FORWARD);
	if (b.codes.len != n->nallowed)
		return (close_with(g, act, MQTT_RC_UNSPECIFIED,
		    CONN_CLOSE_BACKEND_ERROR, GUARD_KIND_NONE,
		    "the broker's SUBACK does not fit the SUBSCRIBE moat "
		    "sent"));
	return (merge_suback(g, n, &b, act));
}
