/* SPDX-License-Identifier: MIT */
/*
 * Per-address counters: how many connections one peer address has in a
 * given phase (moat counts those still in the TLS handshake, so that one
 * address cannot fill max_connections with peers that never authenticate).
 * A small hash table; an entry lives only while its count is above zero,
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
 * Count one more connection from sa's address (the port is ignored;
 * IPv4-mapped IPv6 counts as IPv4). Returns the new count, or 0 when out
 * of memory (nothing counted).
 */
unsigned peercount_add(struct peercount *pc, const struct sockaddr *sa);

/* Count one less for sa's address; the entry goes at zero. */
void peercount_del(struct peercount *pc, const struct sockaddr *sa);

#endif
