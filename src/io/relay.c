/* SPDX-License-Identifier: MIT */
/*
 * The MQTT packets of a live connection, both ways, after the CONNECT.
 *
 * Device to broker: the stream is cut into packets by the strict framer,
 * capped at [limits] max_packet_size. A packet the guard (guard.h) must
 * judge whole is held until it is: a PUBLISH under topic policy, a
 * SUBSCRIBE or UNSUBSCRIBE, a PUBREL that moat itself may have to answer,
 * a second CONNECT, an AUTH. Any other packet goes on as it arrives, its
 * body passed through unread, so that without topic policy no packet is
 * held at all. Each PUBLISH is charged to the device's rates (rate.h);
 * over a rate moat stops reading the device until the rate allows more,
 * keeping the rest of the read it already took: a flooder is slowed by
 * TCP and loses nothing.
 *
 * Broker to device: bytes pass through as they come, and the broker
 * stream's packet boundaries are tracked (mqtt_tracker). A packet moat
 * answers with (SUBACK, PUBACK, PUBREC, PUBCOMP) waits in a small queue
 * until the broker's stream is between two packets and past its CONNACK.
 * While the guard waits for the SUBACK of a SUBSCRIBE it rewrote, the
 * first bytes of each broker packet are looked at, and that SUBACK is
 * collected whole and sent on in the device's order.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/config.h"
#include "moat/gate.h"
#include "moat/guard.h"
#include "moat/idconns.h"
#include "moat/identity.h"
#include "moat/log.h"
#include "moat/mqtt.h"
#include "moat/policy.h"
#include "moat/rate.h"
#include "moat/snapshot.h"
#include "moat/text.h"
#include "moat/tls.h"
#include "moat/worker.h"

#include "conn_int.h"

#define NS_PER_MS       1000000ULL
#define INJECT_HIGH     4096            /* moat's answers waiting: stop
                                         * reading the device above */
#define INJECT_MAX      (256 * 1024)    /* and never hold more */
#define DOWN_HEAD_MAX   7               /* guard_wants_down() looks at */

static size_t
min_size(size_t a, size_t b)
{
	return (a < b ? a : b);
}

/* --- start and end ------------------------------------------------------ */

int
relay_start(struct conn *c, struct gate_result *res)
{
	const struct config *cfg = c->snap->cfg;
	struct identity_publish_limits lim;
	struct guard_policy pol;

	memset(&pol, 0, sizeof(pol));
	c->policy = res->policy;
	res->policy = NULL;
	if (c->policy != NULL) {
		pol.may_publish = policy_publish_cb;
		pol.may_subscribe = policy_subscribe_cb;
		pol.ctx = c->policy;
		pol.drop_denied = cfg->policy_on_denied ==
		    POLICY_DENIED_DROP;
	}
	guard_init(&c->guard, res->level, &pol);
	identity_publish_limits(c->snap->ident, cfg, res->identity, &lim);
	c->max_publish_size = lim.max_size;
	if (rate_init(&c->msg_rate, lim.rate, lim.burst != 0 ? lim.burst :
	    lim.rate) != 0 || rate_init(&c->byte_rate, lim.bytes_rate,
	    lim.bytes_rate) != 0)
		return (-1);
	return (0);
}

void
relay_free(struct conn *c)
{
	guard_release(&c->guard);
	policy_set_free(c->policy);
	c->policy = NULL;
	free(c->held);
	free(c->inject);
	free(c->collect);
	c->held = c->inject = c->collect = NULL;
	c->held_len = c->inject_len = c->collect_len = 0;
}

/* --- the device's packets ----------------------------------------------- */

static int
up_write(struct conn *c, const uint8_t *p, size_t n)
{
	if (pipe_write(&c->up, (const char *)p, n) != 0) {
		conn_close(c, CONN_CLOSE_BACKEND_ERROR, "write failed");
		return (-1);
	}
	return (0);
}

/*
 * Bytes that go to the broker as they are, collected while they follow
 * each other in the buffer so that a read full of small packets costs one
 * write, not one per packet.
 */
struct span {
	const uint8_t *p;
	size_t n;
};

/* Write what sp holds. Returns 0 or -1 (closed). */
static int
span_flush(struct conn *c, struct span *sp)
{
	size_t n = sp->n;

	sp->n = 0;
	return (n > 0 ? up_write(c, sp->p, n) : 0);
}

/* Add p[0..n) to sp, writing sp first when p does not follow it. */
static int
span_add(struct conn *c, struct span *sp, const uint8_t *p, size_t n)
{
	if (sp->n > 0 && sp->p + sp->n == p) {
		sp->n += n;
		return (0);
	}
	if (span_flush(c, sp) != 0)
		return (-1);
	sp->p = p;
	sp->n = n;
	return (0);
}

/*
 * The guard said close: count what it refused (a packet too large or
 * malformed is told from its header, before the guard judges anything),
 * then DISCONNECT first under MQTT 5 (conn_end).
 */
static int
up_close(struct conn *c, const struct guard_action *act)
{
	if (act->refused != GUARD_KIND_NONE)
		WORKER_COUNT(c->w, refused_packets[act->refused],
		    act->nrefused);
	conn_end(c, act->rc, act->reason, act->detail);
	return (-1);
}

/* Must the guard see this packet whole? */
static int
must_judge(const struct conn *c, const struct mqtt_frame *f)
{
	const struct guard *g = &c->guard;

	switch (f->type) {
	case MQTT_PKT_PUBLISH:
		return (g->pol.may_publish != NULL);
	case MQTT_PKT_SUBSCRIBE:
	case MQTT_PKT_UNSUBSCRIBE:
		return (g->pol.may_subscribe != NULL);
	case MQTT_PKT_PUBREL:
		return (g->nanswered > 0);
	case MQTT_PKT_CONNECT:
	case MQTT_PKT_AUTH:
		return (1);
	default:
		return (0);
	}
}

/*
 * A PUBLISH of bytes payload went on: charge the rates and, over one,
 * stop reading the device until it is paid for.
 */
static void
charge(struct conn *c, size_t bytes)
{
	uint64_t now = uv_now(c->w->loop), wait, w2;
	struct idconns_rates *sh;

	if (!rate_on(&c->msg_rate) && !rate_on(&c->byte_rate))
		return;
	/* Per identity: its connections share one state, whichever
	 * worker holds them; a connection not (or no longer) counted keeps
	 * its own. */
	if ((sh = idconns_rates(&c->idn)) != NULL) {
		wait = rate_charge_shared(&c->msg_rate, &sh->msg_tat,
		    now * NS_PER_MS, 1);
		w2 = rate_charge_shared(&c->byte_rate, &sh->byte_tat,
		    now * NS_PER_MS, bytes);
	} else {
		wait = rate_charge(&c->msg_rate, &c->msg_tat,
		    now * NS_PER_MS, 1);
		w2 = rate_charge(&c->byte_rate, &c->byte_tat,
		    now * NS_PER_MS, bytes);
	}
	if (w2 > wait)
		wait = w2;
	if (wait == 0)
		return;
	wait = (wait + NS_PER_MS - 1) / NS_PER_MS;
	c->throttle_until = now + wait;
	WORKER_COUNT(c->w, throttled_ms, wait);
	conn_arm_proxying(c);
}

/* A PUBLISH over max_publish_size, told from its fixed header. */
static int
publish_too_large(const struct conn *c, const struct mqtt_frame *f)
{
	return (f->type == MQTT_PKT_PUBLISH && c->max_publish_size != 0 &&
	    f->rem_len > c->max_publish_size);
}

/*
 * One whole packet f at pkt, which the guard must judge; what goes on
 * unchanged joins sp. Returns 0 or -1 (closed).
 */
static int
judge(struct conn *c, struct span *sp, const struct mqtt_frame *f,
    const uint8_t *pkt)
{
	size_t len = f->total;
	struct guard_action act;
	char detail[TEXT_QUOTE_BUF + 64], q[TEXT_QUOTE_BUF];
	int r = 0;

	switch (guard_up(&c->guard, pkt, len, &act)) {
	case GUARD_FORWARD:
		r = span_add(c, sp, pkt, len);
		break;
	case GUARD_FORWARD_REWRITTEN:
		if ((r = span_flush(c, sp)) == 0)
			r = up_write(c, act.out, act.out_len);
		break;
	case GUARD_ANSWER:
		r = relay_to_device(c, act.out, act.out_len);
		break;
	case GUARD_DROP:
		break;
	case GUARD_CLOSE:
		if (act.refused == GUARD_KIND_PUBLISH && act.topic.len > 0) {
			snprintf(detail, sizeof(detail), "PUBLISH to \"%s\", "
			    "which the publish rules do not allow",
			    text_quote((const char *)act.topic.p,
			    act.topic.len, TEXT_QUOTE_MAX, TEXT_QUOTE_ESCAPES,
			    q, sizeof(q)));
			act.detail = detail;
		}
		if (span_flush(c, sp) != 0)
			return (-1);
		return (up_close(c, &act));
	}
	if (act.refused != GUARD_KIND_NONE) {
		WORKER_COUNT(c->w, refused_packets[act.refused],
		    act.nrefused);
		if (log_enabled(LOG_LVL_DEBUG))
			log_kv(LOG_LVL_DEBUG, "packet_refused", "peer",
			    c->peer, "identity", c->identity, "kind",
			    guard_kind_name(act.refused), NULL);
	}
	/* The same bytes as a PUBLISH passed through unread: all of it
	 * after the fixed header (act.publish_bytes is the payload alone). */
	if (r == 0 && act.is_publish)
		charge(c, f->rem_len);
	return (r);
}

/*
 * Judge or pass the packets at p[0..len). Returns the bytes taken (whole
 * packets, or up to the end when the last one passes through unread), or
 * -1 when the connection was closed or is ending. Stops early while the
 * device is throttled and when the last packet must be whole to be judged.
 */
static ssize_t
up_packets(struct conn *c, const uint8_t *p, size_t len)
{
	uint64_t max = c->snap->cfg->max_packet_size;
	struct span sp = { NULL, 0 };
	struct guard_action act;
	char detail[160];
	struct mqtt_frame f;
	enum mqtt_status st;
	const char *why = "";
	size_t used = 0, n;

	while (used < len) {
		if (c->pass_left > 0) {
			n = (size_t)min_size(len - used, c->pass_left);
			if (span_add(c, &sp, p + used, n) != 0)
				return (-1);
			c->pass_left -= n;
			used += n;
			continue;
		}
		if (c->throttle_until != 0 || c->ending)
			break;
		st = mqtt_frame(p + used, len - used, max, &f, &why);
		if (st == MQTT_TOO_LARGE || st == MQTT_MALFORMED) {
			(void)guard_up_refuse_frame(&c->guard, st, why, &act);
			if (st == MQTT_TOO_LARGE) {
				/* The guard keeps its static text; the
				 * close line gets the sizes. */
				snprintf(detail, sizeof(detail), "a %s of %zu "
				    "bytes, over [limits] max_packet_size "
				    "(%llu)", mqtt_type_name(f.type), f.total,
				    (unsigned long long)max);
				act.detail = detail;
			}
			goto close;
		}
		if (f.hdr_len == 0)
			break;                  /* the header is not all in */
		if (publish_too_large(c, &f)) {
			(void)guard_up_refuse_frame(&c->guard, MQTT_TOO_LARGE,
			    "PUBLISH over max_publish_size", &act);
			snprintf(detail, sizeof(detail), "a PUBLISH of %zu "
			    "bytes after its header, over max_publish_size "
			    "(%llu)", f.rem_len,
			    (unsigned long long)c->max_publish_size);
			act.detail = detail;
			goto close;
		}
		if (!must_judge(c, &f)) {
			n = (size_t)min_size(len - used, f.total);
			if (span_add(c, &sp, p + used, n) != 0)
				return (-1);
			c->pass_left = f.total - n;
			used += n;
			if (f.type == MQTT_PKT_PUBLISH)
				charge(c, f.rem_len);
			continue;
		}
		if (st == MQTT_INCOMPLETE)
			break;
		if (judge(c, &sp, &f, p + used) != 0)
			return (-1);
		used += f.total;
	}
	if (span_flush(c, &sp) != 0)
		return (-1);
	return ((ssize_t)used);

close:
	/* What came before the bad packet still goes to the broker. */
	if (span_flush(c, &sp) != 0)
		return (-1);
	return (up_close(c, &act));
}

/* Keep p[0..n) after what is held; room for the packet it starts. */
static int
hold(struct conn *c, const uint8_t *p, size_t n)
{
	/* At most one packet whole and the rest of one read: the framer
	 * refuses a larger packet from its header, and a throttled device
	 * is not read again until what is held has gone on. */
	size_t limit = c->snap->cfg->max_packet_size + c->w->scratch_len;
	size_t want = c->held_len + n, cap;
	struct mqtt_frame f;
	const char *why;
	uint8_t *b;

	if (want > limit) {
		conn_close(c, CONN_CLOSE_NO_MEMORY, "more device bytes to hold "
		    "than one packet and one read");
		return (-1);
	}
	if (c->held_off > 0 && c->held_len > 0)
		memmove(c->held, c->held + c->held_off, c->held_len);
	c->held_off = 0;
	if (want > c->held_cap) {
		cap = c->held_cap * 2 > want ? c->held_cap * 2 : want;
		if (cap > limit)
			cap = limit;
		/* The packet's own size, when its header is in. */
		if (c->held_len == 0 && mqtt_frame(p, n,
		    c->snap->cfg->max_packet_size, &f, &why) ==
		    MQTT_INCOMPLETE && f.hdr_len != 0 && f.total > cap)
			cap = f.total;
		if ((b = realloc(c->held, cap)) == NULL) {
			conn_close(c, CONN_CLOSE_NO_MEMORY, "holding a packet");
			return (-1);
		}
		c->held = b;
		c->held_cap = cap;
	}
	memcpy(c->held + c->held_len, p, n);
	c->held_len += n;
	return (0);
}

/* Go on with what is held. Returns 0 or -1 (closed). */
static int
up_held(struct conn *c)
{
	ssize_t r;

	if (c->held_len == 0)
		return (0);
	if ((r = up_packets(c, c->held + c->held_off, c->held_len)) < 0)
		return (-1);
	c->held_off += (size_t)r;
	c->held_len -= (size_t)r;
	if (c->held_len == 0) {
		/* Idle connections keep no buffer. */
		free(c->held);
		c->held = NULL;
		c->held_off = c->held_cap = 0;
	}
	return (0);
}

int
relay_up(struct conn *c, const uint8_t *data, size_t len)
{
	ssize_t r;

	if (c->held_len == 0) {
		if ((r = up_packets(c, data, len)) < 0)
			return (-1);
		return ((size_t)r < len ? hold(c, data + r, len -
		    (size_t)r) : 0);
	}
	if (hold(c, data, len) != 0)
		return (-1);
	return (up_held(c));
}

int
relay_may_read(const struct conn *c)
{
	return (c->throttle_until == 0 && c->inject_len <= INJECT_HIGH);
}

void
relay_throttle_over(struct conn *c)
{
	/* moat, not the device, was silent: the idle timer starts over. */
	c->throttle_until = 0;
	c->last_active = uv_now(c->w->loop);
	if (up_held(c) != 0 || c->st != CONN_ST_PROXYING)
		return;
	conn_resume_device(c);
}

/* --- the broker's packets ----------------------------------------------- */

static int
dev_write(struct conn *c, const uint8_t *p, size_t n)
{
	char e[128];

	if (n > 0 && tls_write(c->tls, p, n) != TLS_DONE) {
		conn_close(c, c->dev_dead ? CONN_CLOSE_DEVICE_RESET :
		    CONN_CLOSE_TLS_ERROR, tls_session_error(c->tls, e,
		    sizeof(e)));
		return (-1);
	}
	return (0);
}

/* Between two broker packets, past its CONNACK: moat may speak. */
static int
at_gap(const struct conn *c)
{
	return (c->down_mqtt.first_done &&
	    mqtt_tracker_at_boundary(&c->down_mqtt));
}

/* Does the guard wait for a SUBACK to merge? */
static int
merging(const struct conn *c)
{
	return (guard_wants_down(&c->guard, NULL, 0) != 0);
}

static void
inject_clear(struct conn *c)
{
	free(c->inject);
	c->inject = NULL;
	c->inject_len = 0;
}

int
relay_to_device(struct conn *c, const uint8_t *p, size_t n)
{
	uint8_t *b;

	if (c->down_mqtt.bad) {
		conn_close(c, CONN_CLOSE_BACKEND_ERROR, "the broker's stream "
		    "does not frame as MQTT, so moat cannot answer between "
		    "its packets");
		return (-1);
	}
	if (at_gap(c) && c->inject_len == 0 && c->collect_len == 0)
		return (dev_write(c, p, n));
	if (c->inject_len + n > INJECT_MAX) {
		conn_close(c, CONN_CLOSE_NO_MEMORY, "answers to the device "
		    "waiting for the broker");
		return (-1);
	}
	if ((b = realloc(c->inject, c->inject_len + n)) == NULL) {
		conn_close(c, CONN_CLOSE_NO_MEMORY, "an answer to the device");
		return (-1);
	}
	memcpy(b + c->inject_len, p, n);
	c->inject = b;
	c->inject_len += n;
	return (0);
}

/*
 * At a gap: moat's waiting answers first, then a DISCONNECT that waited
 * for a boundary. Returns 0, or -1 when the connection closed or ended.
 */
static int
gap(struct conn *c)
{
	int r;

	if (c->inject_len > 0 && at_gap(c)) {
		r = dev_write(c, c->inject, c->inject_len);
		inject_clear(c);
		if (r != 0)
			return (-1);
	}
	if (c->ending && at_gap(c)) {
		conn_end_now(c);
		return (-1);
	}
	return (0);
}

static int stream(struct conn *c, const uint8_t *data, size_t len);

/* Drop the first n collected bytes. */
static void
collect_shift(struct conn *c, size_t n)
{
	c->collect_len -= n;
	if (c->collect_len > 0)
		memmove(c->collect, c->collect + n, c->collect_len);
}

/* One whole SUBACK the guard waits for, at the start of collect. */
static int
merge_one(struct conn *c, size_t total)
{
	struct guard_action act;
	const uint8_t *out = c->collect;
	size_t n = total;

	switch (guard_down(&c->guard, c->collect, total, &act)) {
	case GUARD_FORWARD_REWRITTEN:
		out = act.out;
		n = act.out_len;
		break;
	case GUARD_CLOSE:
		conn_close(c, act.reason, act.detail);
		return (-1);
	default:
		break;
	}
	(void)mqtt_tracker_feed(&c->down_mqtt, c->collect, total, 1);
	if (dev_write(c, out, n) != 0)
		return (-1);
	collect_shift(c, total);
	return (0);
}

/* Work through what is collected. Returns 0 or -1 (closed or ended). */
static int
collect_run(struct conn *c)
{
	struct mqtt_frame f;
	enum mqtt_status st;
	const char *why = "";
	uint8_t *rest;
	size_t n;
	int w, r;

	while (c->collect_len > 0 && merging(c)) {
		w = guard_wants_down(&c->guard, c->collect,
		    min_size(c->collect_len, DOWN_HEAD_MAX));
		if (w < 0)
			return (0);             /* more of its head first */
		if (w == 0) {
			n = mqtt_tracker_feed(&c->down_mqtt, c->collect,
			    c->collect_len, 1);
			if (dev_write(c, c->collect, n) != 0)
				return (-1);
			collect_shift(c, n);
		} else {
			st = mqtt_frame(c->collect, c->collect_len,
			    c->snap->cfg->max_packet_size, &f, &why);
			if (st == MQTT_INCOMPLETE)
				return (0);
			if (st != MQTT_OK) {
				conn_close(c, CONN_CLOSE_BACKEND_ERROR, why);
				return (-1);
			}
			if (merge_one(c, f.total) != 0)
				return (-1);
		}
		if (!mqtt_tracker_at_boundary(&c->down_mqtt))
			break;          /* the rest of a packet streams */
		if (gap(c) != 0)
			return (-1);
	}
	if (c->collect_len == 0) {
		free(c->collect);
		c->collect = NULL;
		return (0);
	}
	/* Nothing more to merge: what is left streams as usual. */
	rest = c->collect;
	n = c->collect_len;
	c->collect = NULL;
	c->collect_len = 0;
	r = stream(c, rest, n);
	free(rest);
	return (r);
}

static int
collect(struct conn *c, const uint8_t *data, size_t len)
{
	uint8_t *b;

	if (c->collect_len + len > c->snap->cfg->max_packet_size +
	    c->w->scratch_len) {
		conn_close(c, CONN_CLOSE_BACKEND_ERROR, "a SUBACK from the "
		    "broker larger than [limits] max_packet_size");
		return (-1);
	}
	if ((b = realloc(c->collect, c->collect_len + len)) == NULL) {
		conn_close(c, CONN_CLOSE_NO_MEMORY, "a SUBACK to merge");
		return (-1);
	}
	memcpy(b + c->collect_len, data, len);
	c->collect = b;
	c->collect_len += len;
	return (collect_run(c));
}

/* Pass broker bytes to the device, stopping at the gaps moat needs. */
static int
stream(struct conn *c, const uint8_t *data, size_t len)
{
	size_t n;
	int stop;

	for (;;) {
		if (mqtt_tracker_at_boundary(&c->down_mqtt)) {
			if (gap(c) != 0)
				return (-1);
			if (len > 0 && at_gap(c) && merging(c))
				return (collect(c, data, len));
		}
		if (len == 0)
			return (0);
		stop = c->ending || c->inject_len > 0 || merging(c);
		n = mqtt_tracker_feed(&c->down_mqtt, data, len, stop);
		if (dev_write(c, data, n) != 0)
			return (-1);
		data += n;
		len -= n;
	}
}

int
relay_down(struct conn *c, const uint8_t *data, size_t len)
{
	int paused = c->up.paused && !relay_may_read(c);

	if (c->collect_len > 0) {
		if (collect(c, data, len) != 0)
			return (-1);
	} else if (stream(c, data, len) != 0) {
		return (-1);
	}
	/* Answers that stopped the device's reading have gone out. */
	if (paused && relay_may_read(c) && c->st == CONN_ST_PROXYING)
		conn_resume_device(c);
	return (c->st == CONN_ST_PROXYING ? 0 : -1);
}
