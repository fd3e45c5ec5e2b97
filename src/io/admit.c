/* SPDX-License-Identifier: MIT */
/*
 * Admission of device connections (see admit.h): the handshake budgets
 * with oldest-first eviction, and the max_connections slots. The per-peer
 * table is a peercount whose slot holds the oldest entry of that peer's
 * circular list; the global list runs from a->oldest to a->newest.
 */
#include "config.h"

#include <assert.h>
#include <stdlib.h>

#include "moat/admit.h"
#include "moat/peercount.h"

struct admit {
	struct peercount *peers;
	struct admit_entry *oldest, *newest;    /* handshakes, by age */
	admit_close_fn *close;
	void *arg;
	_Atomic uint64_t own_handshakes, own_connected;
	_Atomic uint64_t *handshakes, *connected;       /* own or shared */
};

struct admit *
admit_new(admit_close_fn *close, void *arg)
{
	struct admit *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return (NULL);
	if ((a->peers = peercount_new()) == NULL) {
		free(a);
		return (NULL);
	}
	a->close = close;
	a->arg = arg;
	a->handshakes = &a->own_handshakes;
	a->connected = &a->own_connected;
	return (a);
}

void
admit_free(struct admit *a)
{
	if (a == NULL)
		return;
	assert(a->oldest == NULL);
	peercount_free(a->peers);
	free(a);
}

void
admit_share(struct admit *a, _Atomic uint64_t *handshakes,
    _Atomic uint64_t *connected)
{
	a->handshakes = handshakes != NULL ? handshakes : &a->own_handshakes;
	a->connected = connected != NULL ? connected : &a->own_connected;
}

/*
 * Put e last on its peer's list. Returns how many the peer now has, or 0
 * when out of memory (e is on no list).
 */
static unsigned
peer_link(struct admit *a, struct admit_entry *e)
{
	void **slot;
	struct admit_entry *head;
	unsigned n;

	if ((n = peercount_add(a->peers, e->sa)) == 0)
		return (0);
	if ((slot = peercount_slot(a->peers, e->sa)) == NULL)
		return (n);     /* not an IP address: no list */
	if ((head = *slot) == NULL) {
		e->prev = e->next = e;
		*slot = e;
	} else {
		e->prev = head->prev;
		e->next = head;
		head->prev->next = e;
		head->prev = e;
	}
	e->in_peer = 1;
	return (n);
}

static void
peer_unlink(struct admit *a, struct admit_entry *e)
{
	void **slot;

	if (e->in_peer && (slot = peercount_slot(a->peers, e->sa)) != NULL) {
		if (e->next == e) {
			*slot = NULL;
		} else {
			e->prev->next = e->next;
			e->next->prev = e->prev;
			if (*slot == e)
				*slot = e->next;
		}
	}
	e->prev = e->next = NULL;
	e->in_peer = 0;
	peercount_del(a->peers, e->sa);
}

/* Take e off both handshake lists and out of the total. */
static void
unlink_handshake(struct admit *a, struct admit_entry *e)
{
	assert(e->state == ADMIT_HANDSHAKE);
	peer_unlink(a, e);
	if (e->older != NULL)
		e->older->newer = e->newer;
	else
		a->oldest = e->newer;
	if (e->newer != NULL)
		e->newer->older = e->older;
	else
		a->newest = e->older;
	e->older = e->newer = NULL;
	e->state = ADMIT_NONE;
	atomic_fetch_sub(a->handshakes, 1);
}

static void
evict(struct admit *a, struct admit_entry *victim, enum admit_cause why)
{
	unlink_handshake(a, victim);
	a->close(victim, why, a->arg);
}

/* The oldest handshake of e's peer, or NULL when it has no list. */
static struct admit_entry *
peer_oldest(struct admit *a, const struct admit_entry *e)
{
	void **slot;

	if (!e->in_peer || (slot = peercount_slot(a->peers, e->sa)) == NULL)
		return (NULL);
	return (*slot);
}

int
admit_handshake(struct admit *a, struct admit_entry *e,
    const struct sockaddr *sa, const struct admit_limits *lim)
{
	struct admit_entry *v;
	unsigned n;

	assert(e->state == ADMIT_NONE);
	e->sa = sa;
	if ((n = peer_link(a, e)) == 0)
		return (-1);
	e->state = ADMIT_HANDSHAKE;
	e->older = a->newest;
	e->newer = NULL;
	if (a->newest != NULL)
		a->newest->newer = e;
	else
		a->oldest = e;
	a->newest = e;
	atomic_fetch_add(a->handshakes, 1);

	/* e is the newest, so never the first one closed. */
	for (; n > lim->max_handshakes_per_address &&
	    (v = peer_oldest(a, e)) != NULL && v != e; n--)
		evict(a, v, ADMIT_PER_ADDRESS);
	while (atomic_load(a->handshakes) > lim->max_handshakes &&
	    (v = a->oldest) != NULL && v != e)
		evict(a, v, ADMIT_TOTAL);
	return (0);
}

int
admit_connected(struct admit *a, struct admit_entry *e,
    uint64_t max_connections)
{
	if (e->state == ADMIT_HANDSHAKE)
		unlink_handshake(a, e);
	if (e->state == ADMIT_CONNECTED)
		return (0);
	if (atomic_fetch_add(a->connected, 1) >= max_connections) {
		atomic_fetch_sub(a->connected, 1);
		return (-1);
	}
	e->state = ADMIT_CONNECTED;
	return (0);
}

void
admit_leave(struct admit *a, struct admit_entry *e)
{
	if (e->state == ADMIT_HANDSHAKE)
		unlink_handshake(a, e);
	else if (e->state == ADMIT_CONNECTED) {
		atomic_fetch_sub(a->connected, 1);
		e->state = ADMIT_NONE;
	}
}

uint64_t
admit_handshakes(const struct admit *a)
{
	return (atomic_load(a->handshakes));
}

uint64_t
admit_connections(const struct admit *a)
{
	return (atomic_load(a->connected));
}
