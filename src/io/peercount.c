/* SPDX-License-Identifier: MIT */
/*
 * Per-address connection counters (see peercount.h): chained hashing over
 * a fixed number of buckets, keyed by the raw address bytes.
 */
#include "config.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moat/peercount.h"

#define NBUCKETS 1024

struct entry {
	struct entry *next;
	unsigned count;
	uint8_t len;                  /* 4 or 16 */
	uint8_t addr[16];
};

struct peercount {
	struct entry *bucket[NBUCKETS];
	uint32_t seed;                /* per table, against chosen collisions */
};

/* The address bytes of sa; IPv4-mapped IPv6 as IPv4. Returns 0 or -1. */
static int
key(const struct sockaddr *sa, uint8_t out[16], uint8_t *len)
{
	const struct sockaddr_in6 *s6;

	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		*len = 4;
		return (0);
	}
	if (sa->sa_family != AF_INET6)
		return (-1);
	s6 = (const struct sockaddr_in6 *)sa;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		memcpy(out, s6->sin6_addr.s6_addr + 12, 4);
		*len = 4;
	} else {
		memcpy(out, s6->sin6_addr.s6_addr, 16);
		*len = 16;
	}
	return (0);
}

/* FNV-1a over the address, mixed with the table's seed. */
static unsigned
hash(const struct peercount *pc, const uint8_t *a, uint8_t len)
{
	uint32_t h = 2166136261u ^ pc->seed;
	uint8_t i;

	for (i = 0; i < len; i++) {
		h ^= a[i];
		h *= 16777619u;
	}
	return (h % NBUCKETS);
}

struct peercount *
peercount_new(void)
{
	struct peercount *pc;

	if ((pc = calloc(1, sizeof(*pc))) == NULL)
		return (NULL);
	pc->seed = (uint32_t)random();
	return (pc);
}

void
peercount_free(struct peercount *pc)
{
	struct entry *e, *next;
	unsigned i;

	if (pc == NULL)
		return;
	for (i = 0; i < NBUCKETS; i++)
		for (e = pc->bucket[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(pc);
}

static struct entry **
find(struct peercount *pc, const uint8_t *a, uint8_t len)
{
	struct entry **p = &pc->bucket[hash(pc, a, len)];

	while (*p != NULL && ((*p)->len != len || memcmp((*p)->addr, a,
	    len) != 0))
		p = &(*p)->next;
	return (p);
}

unsigned
peercount_add(struct peercount *pc, const struct sockaddr *sa)
{
	struct entry **p, *e;
	uint8_t a[16], len;

	if (key(sa, a, &len) != 0)
		return (1);     /* not an IP address: nothing to count */
	p = find(pc, a, len);
	if ((e = *p) == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return (0);
		e->len = len;
		memcpy(e->addr, a, len);
		*p = e;
	}
	return (++e->count);
}

void
peercount_del(struct peercount *pc, const struct sockaddr *sa)
{
	struct entry **p, *e;
	uint8_t a[16], len;

	if (key(sa, a, &len) != 0)
		return;
	p = find(pc, a, len);
	if ((e = *p) == NULL)
		return;
	if (--e->count == 0) {
		*p = e->next;
		free(e);
	}
}
