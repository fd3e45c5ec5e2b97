/* SPDX-License-Identifier: MIT */
/*
 * The live connections of each identity, across every worker, for
 * [limits] max_connections_per_identity: a hash table from the identity
 * value to its connections, oldest first, behind one mutex (taken once
 * when a connection joins and once when it leaves, never per packet).
 * The nodes live inside the caller's connections; the table allocates one
 * entry per identity that has a connection, and frees it with the last
 * one, so its size is bounded by the connections counted.
 *
 * When a newcomer finds its identity at the limit with on_duplicate =
 * replace, the oldest connections beyond the limit are marked replaced
 * (from then on they no longer count) and queued for the worker that owns
 * them, which is woken through the wake function given to idconns_new()
 * and takes its queue with idconns_take(). The newcomer waits: once the
 * last replaced connection of its identity has left, it is queued in turn
 * (IDCONNS_RESUME) for its own worker, so that the broker never sees the
 * old and the new session at once. No event loop inside.
 */
#ifndef MOAT_IDCONNS_H
#define MOAT_IDCONNS_H

#include <stdint.h>

#include "moat/config.h"

struct idconns;
struct idconns_entry;

#define IDCONNS_PEER_MAX 64     /* the newcomer's peer, for the detail */

/* One connection in the table; embedded in the caller's connection and
 * zeroed before idconns_join(). Fields are the table's, under its lock. */
struct idconns_node {
	struct idconns_node *prev, *next;  /* same identity, oldest first */
	struct idconns_node *queued_next;  /* in its worker's queue */
	struct idconns_node *taken_next;   /* in what idconns_take() gave */
	struct idconns_entry *entry;       /* NULL: not in the table */
	void *owner;                       /* the caller's connection */
	uint64_t id;                       /* the connection id */
	unsigned worker;                   /* the worker that owns it */
	int replaced;                      /* a newer one took its place */
	int queued;                        /* in its worker's queue */
	int waits;                         /* for older replaced ones */
	uint64_t by_id;                    /* replaced: the newer one's id */
	char by_peer[IDCONNS_PEER_MAX];    /* and its peer */
	int todo;                          /* enum idconns_todo, set by
	                                    * idconns_take() */
};

/* What a worker does with a node idconns_take() gave it. */
enum idconns_todo {
	IDCONNS_END = 1,        /* replaced: end its connection */
	IDCONNS_RESUME,         /* the ones it replaced are gone: go on */
};

enum idconns_verdict {
	IDCONNS_JOINED = 0,     /* counted */
	IDCONNS_WAIT,           /* counted, replaced older ones: wait for
	                         * IDCONNS_RESUME */
	IDCONNS_REFUSED,        /* at the limit with refuse: not counted */
	IDCONNS_NO_MEMORY,      /* no entry for a new identity: not counted */
};

/*
 * Called with the table's lock held, from the thread of idconns_join():
 * worker's queue went from empty to not empty. It must only post a
 * wake-up (an atomic store and a uv_async_send), never call back in.
 */
typedef void (*idconns_wake_fn)(void *arg, unsigned worker);

/* A new, empty table for nworkers workers, or NULL when out of memory. */
struct idconns *idconns_new(unsigned nworkers, idconns_wake_fn wake,
    void *arg);

/* Free the table, which must hold no node; NULL does nothing. */
void idconns_free(struct idconns *t);

/*
 * Count node (zeroed; owner, id and worker set by the caller) under
 * identity, a connection from peer. max is the limit for the identity, 0
 * for none (the node is counted all the same, so that a limit set by a
 * later reload finds it). When the identity already has max connections
 * that count: with DUP_REFUSE nothing changes and IDCONNS_REFUSED is
 * returned; with DUP_REPLACE the oldest of them beyond max - 1 are
 * marked replaced and queued for their workers (woken through wake) and
 * node joins and waits: IDCONNS_WAIT is returned, and node is queued for
 * its worker with todo IDCONNS_RESUME once no replaced connection of the
 * identity older than node is left. *nreplaced (may be NULL) is set to how many were replaced.
 */
enum idconns_verdict idconns_join(struct idconns *t, struct idconns_node *n,
    const char *identity, uint64_t max, enum on_duplicate dup,
    const char *peer, unsigned *nreplaced);

/*
 * Take node out of the table (and out of its worker's queue). Returns 1
 * when a newer connection had replaced it (its by_id and by_peer say
 * which), else 0; also 0 for a node not in the table, so a second call
 * does nothing. A replaced node that leaves may let waiters resume.
 */
int idconns_leave(struct idconns *t, struct idconns_node *n);

/*
 * The nodes queued for worker, taken off its queue: a list linked by
 * taken_next, each with its todo, or NULL. Only worker's own thread may
 * call this; the nodes stay in the table until their connection leaves,
 * which only that thread does, so they remain valid while it runs.
 */
struct idconns_node *idconns_take(struct idconns *t, unsigned worker);

/*
 * worker stops: never wake it again (it is about to close its wake-up
 * handle). Its queued nodes stay until their connections leave.
 */
void idconns_retire(struct idconns *t, unsigned worker);

/* How many identities have a connection (for tests). */
uint64_t idconns_identities(struct idconns *t);

#endif
