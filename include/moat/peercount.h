/* SPDX-License-Identifier: MIT */
/*
 * Per-address counters: how many connections one peer has in a given phase
 * (moat counts those still in the TLS handshake, see admit.h). A peer is
 * an IPv4 address (IPv4-mapped IPv6 counts as IPv4) or an IPv6 /64, the
 * block one host or subscriber line usually gets. A hash table seeded
 * from getrandom(2); an entry lives only while its count is above zero,
 * so its size is bounded by the connections being counted. Pure: no I/O.
 */
#ifndef MOAT_PEERCOUNT_H
#define MOAT_PEERCOUNT_H

#include <sys/socket.h>

struct peercount;

/* A new, empty table, or NULL when out of memory. */
struct peercount *peercount_new(void);

/* Free the table; peercount_free(NULL) does nothing. */
void peercount_free(struct peercount *pc);

/*
 * Count one more connection from sa's peer (the port is ignored). Returns
 * the new count, or 0 when out of memory (nothing counted).
 */
unsigned peercount_add(struct peercount *pc, const struct sockaddr *sa);

/* Count one less for sa's peer; the entry goes at zero. */
void peercount_del(struct peercount *pc, const struct sockaddr *sa);

/*
 * The caller's pointer kept with sa's peer while its count is above zero
 * (NULL when the entry is made; the table never reads it), or NULL when
 * sa's peer is not counted. It stays put while the count is above zero.
 */
void **peercount_slot(struct peercount *pc, const struct sockaddr *sa);

#endif
