/* SPDX-License-Identifier: MIT */
/*
 * One identity, several connections: [limits] max_connections_per_identity
 * and on_duplicate, for a connection whose CONNECT the gate accepted. The
 * connection joins the table of live connections by identity shared by
 * the workers (idconns.h) before it connects to the broker, and leaves it
 * when it closes.
 *
 * refuse: the newcomer gets the CONNACK refusal and nothing reaches the
 * broker. replace: the oldest connections of its identity are marked
 * replaced under the table's lock and their workers are woken to end
 * them (MQTT 5: DISCONNECT 0x8E); the newcomer waits in CONNECTING, its
 * CONNECT held, until the last of them has closed, and only then
 * connects to the broker. So the broker never holds the old and the new
 * session at once: with one client id it never takes the old session
 * over itself (which would send the device its own DISCONNECT 0x8E and
 * close the old connection from the broker's side first), the device
 * gets exactly one DISCONNECT, moat's, and the old connection's will and
 * session end before the new one starts. The wait is short (a wake-up of
 * another worker; at most END_WAIT_MS when the broker is half through a
 * packet to the old device) and bounded by connect_timeout. The mark,
 * not the wake-up, decides the close reason: whatever ends a replaced
 * connection first, it closes as session_taken_over.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "moat/config.h"
#include "moat/conn.h"
#include "moat/gate.h"
#include "moat/idconns.h"
#include "moat/identity.h"
#include "moat/mqtt.h"
#include "moat/snapshot.h"
#include "moat/worker.h"

#include "conn_int.h"

static const char *const dup_names[] = {
#define X(name, text) [DUP_##name] = text,
	LIMITS_ON_DUPLICATE(X)
#undef X
};

/* The refusal's detail: the limit and the identity. */
static void
refused_detail(const struct conn *c, uint64_t max, char *buf, size_t len)
{
	char e1[IDENTITY_ECHO_BUF];

	snprintf(buf, len, "identity \"%s\" already has its "
	    "max_connections_per_identity (%llu) open, and on_duplicate = %s",
	    identity_echo(c->identity, strlen(c->identity), e1, sizeof(e1)),
	    (unsigned long long)max, dup_names[DUP_REFUSE]);
}

int
conn_dup_join(struct conn *c)
{
	struct idconns *t = c->w->shared->idconns;
	char detail[GATE_DETAIL_MAX];
	enum on_duplicate dup;
	unsigned n = 0;
	uint64_t max;

	if (t == NULL || c->identity == NULL)
		return (0);
	identity_conn_limit(c->snap->ident, c->snap->cfg, c->identity, &max,
	    &dup);
	memset(&c->idn, 0, sizeof(c->idn));
	c->idn.owner = c;
	c->idn.id = c->id;
	c->idn.worker = c->w->index;
	switch (idconns_join(t, &c->idn, c->identity, max, dup, c->peer,
	    &n)) {
	case IDCONNS_JOINED:
		return (0);
	case IDCONNS_WAIT:
		c->dup_wait = 1;
		return (1);
	case IDCONNS_REFUSED:
		refused_detail(c, max, detail, sizeof(detail));
		conn_refuse(c, MQTT_CONNACK_V3_SERVER_UNAVAILABLE,
		    MQTT_RC_QUOTA_EXCEEDED, CONN_CLOSE_TOO_MANY_PER_IDENTITY,
		    detail);
		return (-1);
	case IDCONNS_NO_MEMORY:
	default:
		/* Without a limit nothing depends on the count. */
		if (max == 0)
			return (0);
		conn_refuse(c, MQTT_CONNACK_V3_SERVER_UNAVAILABLE,
		    MQTT_RC_SERVER_UNAVAILABLE, CONN_CLOSE_NO_MEMORY,
		    "counting the connections of its identity");
		return (-1);
	}
}

/* The detail of a replaced connection: which one took its place. */
static void
taken_detail(const struct idconns_node *n, char *buf, size_t len)
{
	snprintf(buf, len, "replaced by connection %llu from %s of the same "
	    "identity (max_connections_per_identity, on_duplicate = %s)",
	    (unsigned long long)n->by_id, n->by_peer,
	    dup_names[DUP_REPLACE]);
}

int
conn_dup_leave(struct conn *c, char *detail, size_t len)
{
	/* Only c's own thread sets or clears idn.entry: no lock to read. */
	if (c->idn.entry == NULL)
		return (0);
	if (idconns_leave(c->w->shared->idconns, &c->idn) == 0)
		return (0);
	if (detail != NULL)
		taken_detail(&c->idn, detail, len);
	return (1);
}

void
conn_end_replaced(struct worker *w)
{
	struct idconns_node *n, *next;
	char detail[GATE_DETAIL_MAX];
	struct conn *c;

	/* Each stays valid until it leaves, which only this loop does. */
	for (n = idconns_take(w->shared->idconns, w->index); n != NULL;
	    n = next) {
		next = n->taken_next;
		c = n->owner;
		if (n->todo == IDCONNS_END) {
			taken_detail(n, detail, sizeof(detail));
			conn_end(c, MQTT_RC_SESSION_TAKEN_OVER,
			    CONN_CLOSE_SESSION_TAKEN_OVER, detail);
		} else if (c->dup_wait && c->st == CONN_ST_CONNECTING) {
			/* The ones it replaced are gone: to the broker. */
			c->dup_wait = 0;
			upstream_connect(c);
		}
	}
}
