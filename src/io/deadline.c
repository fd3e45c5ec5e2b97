/* SPDX-License-Identifier: MIT */
/*
 * The deadlines of a device connection. Each connection has one timer, and
 * what it means depends on the state: handshake_timeout in HANDSHAKE,
 * connect_timeout for the CONNECT and the broker connection, while
 * PROXYING the earliest of idle_timeout, max_connection_lifetime, the
 * device certificate's notAfter (close_on_cert_expiry) and the end of a
 * publish-rate pause (relay.c), and the linger
 * while DRAINING (see conn.c). No connection has a second timer.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "moat/config.h"
#include "moat/mqtt.h"
#include "moat/snapshot.h"
#include "moat/worker.h"

#include "conn_int.h"

static void on_timer(uv_timer_t *t);

void
conn_arm_timer(struct conn *c, uint64_t ms)
{
	/* Cannot fail on a timer that is not closing. */
	(void)uv_timer_start(&c->timer, on_timer, ms, 0);
}

#define NO_DEADLINE UINT64_MAX

/* ms from now until at (0 when past); at and now in the same clock. */
static uint64_t
until(uint64_t at, uint64_t now)
{
	return (at > now ? at - now : 0);
}

/*
 * ms until the device certificate expires: RFC 5280 counts the notAfter
 * second itself as valid, so the end is the second after it.
 */
static uint64_t
until_expiry(const struct conn *c)
{
	struct timespec ts;
	uint64_t now, end;

	if (!c->snap->cfg->tls_close_on_cert_expiry ||
	    c->cert.not_after <= 0 || clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return (NO_DEADLINE);
	now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	end = ((uint64_t)c->cert.not_after + 1) * 1000;
	return (until(end, now));
}

/* The next PROXYING deadline from now, NO_DEADLINE when there is none. */
static uint64_t
proxying_next(const struct conn *c, uint64_t now)
{
	const struct config *cfg = c->snap->cfg;
	uint64_t next = until_expiry(c), d;

	if (cfg->idle_timeout_ms > 0 && (d = until(c->last_active +
	    cfg->idle_timeout_ms, now)) < next)
		next = d;
	if (cfg->max_lifetime_ms > 0 && (d = until(c->t_start +
	    cfg->max_lifetime_ms, now)) < next)
		next = d;
	if (c->throttle_until != 0 && (d = until(c->throttle_until, now)) <
	    next)
		next = d;
	return (next);
}

void
conn_arm_proxying(struct conn *c)
{
	uint64_t next = proxying_next(c, uv_now(c->w->loop));

	if (next == NO_DEADLINE)
		(void)uv_timer_stop(&c->timer);
	else
		conn_arm_timer(c, next);
}

/* A PROXYING deadline: whichever has passed ends the connection. */
static void
proxying_timer(struct conn *c)
{
	const struct config *cfg = c->snap->cfg;
	uint64_t now = uv_now(c->w->loop);
	char detail[160];

	if (c->ending) {
		conn_end_overdue(c);
		return;
	}
	if (c->throttle_until != 0 && until(c->throttle_until, now) == 0) {
		relay_throttle_over(c);
		if (c->st != CONN_ST_PROXYING || c->ending)
			return;
	}
	if (until_expiry(c) == 0) {
		snprintf(detail, sizeof(detail), "the device certificate "
		    "(serial %s) expired", c->cert.serial);
		conn_end(c, MQTT_RC_ADMINISTRATIVE_ACTION,
		    CONN_CLOSE_CERT_EXPIRED, detail);
	} else if (cfg->max_lifetime_ms > 0 &&
	    until(c->t_start + cfg->max_lifetime_ms, now) == 0) {
		snprintf(detail, sizeof(detail), "open for %llu ms, "
		    "max_connection_lifetime", (unsigned long long)(now -
		    c->t_start));
		conn_end(c, MQTT_RC_ADMINISTRATIVE_ACTION,
		    CONN_CLOSE_LIFETIME, detail);
	} else if (cfg->idle_timeout_ms > 0 &&
	    until(c->last_active + cfg->idle_timeout_ms, now) == 0) {
		conn_close(c, CONN_CLOSE_IDLE_TIMEOUT, NULL);
	} else {
		conn_arm_proxying(c);
	}
}

static void
on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	const struct config *cfg = c->snap->cfg;
	char detail[256];

	switch (c->st) {
	case CONN_ST_HANDSHAKE:
		conn_close(c, CONN_CLOSE_HANDSHAKE_TIMEOUT, NULL);
		break;
	case CONN_ST_AWAIT_CONNECT:
		snprintf(detail, sizeof(detail),
		    "no whole MQTT CONNECT within %llu ms",
		    (unsigned long long)cfg->connect_timeout_ms);
		conn_close(c, CONN_CLOSE_CONNECT_TIMEOUT, detail);
		break;
	case CONN_ST_CONNECTING:
		if (c->dup_wait)
			snprintf(detail, sizeof(detail), "the connections of "
			    "its identity that it replaces did not close "
			    "within %llu ms",
			    (unsigned long long)cfg->connect_timeout_ms);
		else
			snprintf(detail, sizeof(detail),
			    "broker %s did not accept within %llu ms",
			    c->snap->backend.text,
			    (unsigned long long)cfg->connect_timeout_ms);
		conn_refuse_unavailable(c, CONN_CLOSE_CONNECT_TIMEOUT,
		    detail);
		break;
	case CONN_ST_PROXYING:
		proxying_timer(c);
		break;
	case CONN_ST_DRAINING:
		conn_linger_over(c);
		break;
	case CONN_ST_CLOSED:
	case CONN_NSTATES:
		break;
	}
}
