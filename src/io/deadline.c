/* SPDX-License-Identifier: MIT */
/*
 * The deadlines of a device connection. Each connection has one timer, and
 * what it means depends on the state: handshake_timeout in HANDSHAKE,
 * connect_timeout for the CONNECT and the broker connection, idle_timeout
 * while PROXYING, and the linger while DRAINING (see conn.c).
 */
#include "config.h"

#include <stdio.h>

#include "moat/config.h"
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

static void
on_timer(uv_timer_t *t)
{
	struct conn *c = t->data;
	const struct config *cfg = c->snap->cfg;
	char detail[256];
	uint64_t now, idle;

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
		snprintf(detail, sizeof(detail),
		    "broker %s did not accept within %llu ms",
		    c->snap->backend.text,
		    (unsigned long long)cfg->connect_timeout_ms);
		conn_refuse_unavailable(c, CONN_CLOSE_CONNECT_TIMEOUT,
		    detail);
		break;
	case CONN_ST_PROXYING:
		if (c->ending) {
			conn_end_overdue(c);
			break;
		}
		now = uv_now(c->w->loop);
		idle = now - c->last_active;
		if (idle >= cfg->idle_timeout_ms)
			conn_close(c, CONN_CLOSE_IDLE_TIMEOUT, NULL);
		else
			conn_arm_timer(c, cfg->idle_timeout_ms - idle);
		break;
	case CONN_ST_DRAINING:
		conn_linger_over(c);
		break;
	case CONN_ST_CLOSED:
		break;
	}
}
