/* SPDX-License-Identifier: MIT */
/*
 * Admission of device connections: who may wait in the TLS handshake, and
 * how many authenticated devices may be connected.
 *
 * Unauthenticated connections have a budget of their own (max_handshakes),
 * apart from the max_connections slots of devices that completed the
 * handshake, and each peer (an IPv4 address or an IPv6 /64, peercount.h)
 * may hold at most max_handshakes_per_address of it. A newcomer is never
 * refused for a full budget: the oldest handshake of its peer, or the
 * oldest of all, is closed instead, so that a flood of silent connections
 * only ever pushes out its own stale ones and a real device, even behind
 * the attacker's NAT, gets its turn.
 *
 * The connection embeds a struct admit_entry; the module keeps the entries
 * of connections in their handshake in two age-ordered lists (all of them,
 * and per peer) and closes one through the callback given to admit_new(),
 * so it knows nothing of the connection itself. Every operation is O(1).
 *
 * One struct admit per event loop, used from that loop's thread only. The
 * two totals (handshakes, authenticated connections) are atomic counters
 * that several loops may share through admit_share(); each loop then
 * closes its own oldest handshake, so the shared handshake total may
 * exceed max_handshakes by at most one per loop. Per-peer counts stay per
 * loop.
 */
#ifndef MOAT_ADMIT_H
#define MOAT_ADMIT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

enum admit_state {
	ADMIT_NONE = 0,               /* counted nowhere */
	ADMIT_HANDSHAKE,              /* in the handshake lists */
	ADMIT_CONNECTED               /* holds a max_connections slot */
};

/* Embedded in the connection, zeroed before first use. */
struct admit_entry {
	struct admit_entry *older, *newer;      /* all handshakes */
	struct admit_entry *prev, *next;        /* its peer's, circular */
	const struct sockaddr *sa;              /* the caller's, see below */
	enum admit_state state;
	int in_peer;                            /* on its peer's list */
};

/* Which budget made the module close a handshake. */
enum admit_cause {
	ADMIT_PER_ADDRESS,            /* its peer's, max_handshakes_per_address */
	ADMIT_TOTAL                   /* everyone's, max_handshakes */
};

struct admit_limits {
	uint64_t max_handshakes;
	uint64_t max_handshakes_per_address;
};

/*
 * Close e, a connection in its handshake that the module has already
 * taken off its lists (admit_leave(e) is then a no-op): why says which
 * budget was full. Called from admit_handshake() only.
 */
typedef void admit_close_fn(struct admit_entry *e, enum admit_cause why,
    void *arg);

struct admit;

/* A new admission state calling close(e, why, arg), or NULL (no memory). */
struct admit *admit_new(admit_close_fn *close, void *arg);

/* Free a; its entries must all have left. admit_free(NULL) does nothing. */
void admit_free(struct admit *a);

/*
 * Count handshakes and connections in the given counters (shared by
 * several loops, owned by the caller, outliving a) instead of a's own.
 * Call before the first entry is counted; NULL keeps a's own.
 */
void admit_share(struct admit *a, _Atomic uint64_t *handshakes,
    _Atomic uint64_t *connected);

/*
 * The newcomer e, a connection from sa that has just been accepted, enters
 * its handshake. First its peer's oldest handshakes are closed while the
 * peer would hold more than lim->max_handshakes_per_address, then the
 * oldest of all while the total is above lim->max_handshakes (never e
 * itself). sa must stay valid while e is counted. Returns 0, or -1 when
 * out of memory (e is counted nowhere: refuse it).
 */
int admit_handshake(struct admit *a, struct admit_entry *e,
    const struct sockaddr *sa, const struct admit_limits *lim);

/*
 * e completed its handshake: it leaves the handshake lists and takes one
 * of max_connections slots. Returns 0, or -1 when all are taken (e is
 * then counted nowhere: close it).
 */
int admit_connected(struct admit *a, struct admit_entry *e,
    uint64_t max_connections);

/* e closes: give back what it holds. Safe on an entry counted nowhere. */
void admit_leave(struct admit *a, struct admit_entry *e);

/* Handshakes and connected devices counted now (the shared totals). */
uint64_t admit_handshakes(const struct admit *a);
uint64_t admit_connections(const struct admit *a);

#endif
