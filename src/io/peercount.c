/* SPDX-License-Identifier: MIT */
/*
 * Per-address connection counters (see peercount.h): chained hashing keyed
 * by the address bytes that name one peer (an IPv4 address, an IPv6 /64),
 * seeded from getrandom(2) so that a peer cannot choose colliding keys, and
 * doubled when there are more entries than buckets, so that chains stay
 * short whatever the limits are set to.
 */
#include "config.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "moat/peercount.h"

#define NBUCKETS_MIN    1024            /* power of two */
#define NBUCKETS_MAX    (1u << 22)      /* stop doubling here */
#define KEY_V4          4               /* bytes of an IPv4 key */
#define KEY_V6          8               /* bytes of an IPv6 key: the /64 */

struct entry {
	struct entry *next;
	void *slot;                   /* the caller's, see peercount_slot */
	unsigned count;
	uint8_t len;                  /* KEY_V4 or KEY_V6 */
	uint8_t addr[KEY_V6];
};

struct peercount {
	struct entry **bucket;
	size_t nbuckets;              /* power of two */
	size_t nentries;
	uint64_t seed[2];             /* per table, against chosen collisions */
};

/* The key of sa: IPv4 (also IPv4-mapped IPv6) whole, IPv6 its /64. */
static int
key(const struct sockaddr *sa, uint8_t out[KEY_V6], uint8_t *len)
{
	const struct sockaddr_in6 *s6;

	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, KEY_V4);
		*len = KEY_V4;
		return (0);
	}
	if (sa->sa_family != AF_INET6)
		return (-1);
	s6 = (const struct sockaddr_in6 *)sa;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		memcpy(out, s6->sin6_addr.s6_addr + 12, KEY_V4);
		*len = KEY_V4;
	} else {
		/* One host or subscriber usually gets a whole /64. */
		memcpy(out, s6->sin6_addr.s6_addr, KEY_V6);
		*len = KEY_V6;
	}
	return (0);
}

/* A keyed mix of the key (splitmix64 finaliser over seed and bytes). */
static size_t
hash(const struct peercount *pc, const uint8_t *a, uint8_t len)
{
	uint64_t h = pc->seed[0] ^ len, k = 0;

	memcpy(&k, a, len);
	h ^= k + pc->seed[1];
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return ((size_t)h & (pc->nbuckets - 1));
}

/* The seed: from getrandom(2); the clock only if that fails. */
static void
seed(struct peercount *pc)
{
	struct timespec ts;

	if (getrandom(pc->seed, sizeof(pc->seed), GRND_NONBLOCK) ==
	    (ssize_t)sizeof(pc->seed))
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	pc->seed[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull;
	pc->seed[1] = (uint64_t)(uintptr_t)pc ^ (uint64_t)ts.tv_sec;
}

struct peercount *
peercount_new(void)
{
	struct peercount *pc;

	if ((pc = calloc(1, sizeof(*pc))) == NULL)
		return (NULL);
	pc->nbuckets = NBUCKETS_MIN;
	if ((pc->bucket = calloc(pc->nbuckets, sizeof(*pc->bucket))) ==
	    NULL) {
		free(pc);
		return (NULL);
	}
	seed(pc);
	return (pc);
}

void
peercount_free(struct peercount *pc)
{
	struct entry *e, *next;
	size_t i;

	if (pc == NULL)
		return;
	for (i = 0; i < pc->nbuckets; i++)
		for (e = pc->bucket[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(pc->bucket);
	free(pc);
}

/* Twice the buckets; on failure keep the old ones (chains just grow). */
static void
grow(struct peercount *pc)
{
	struct entry **old = pc->bucket, *e, *next, **b;
	size_t i, n = pc->nbuckets;

	if (n >= NBUCKETS_MAX || (b = calloc(2 * n, sizeof(*b))) == NULL)
		return;
	pc->bucket = b;
	pc->nbuckets = 2 * n;
	for (i = 0; i < n; i++)
		for (e = old[i]; e != NULL; e = next) {
			next = e->next;
			b = &pc->bucket[hash(pc, e->addr, e->len)];
			e->next = *b;
			*b = e;
		}
	free(old);
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
	uint8_t a[KEY_V6], len;

	if (key(sa, a, &len) != 0)
		return (1);     /* not an IP address: nothing to count */
	p = find(pc, a, len);
	if ((e = *p) == NULL) {
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return (0);
		e->len = len;
		memcpy(e->addr, a, len);
		*p = e;
		if (++pc->nentries > pc->nbuckets)
			grow(pc);
	}
	return (++e->count);
}

void
peercount_del(struct peercount *pc, const struct sockaddr *sa)
{
	struct entry **p, *e;
	uint8_t a[KEY_V6], len;

	if (key(sa, a, &len) != 0)
		return;
	p = find(pc, a, len);
	if ((e = *p) == NULL)
		return;
	if (--e->count == 0) {
		*p = e->next;
		free(e);
		pc->nentries--;
	}
}

void **
peercount_slot(struct peercount *pc, const struct sockaddr *sa)
{
	struct entry *e;
	uint8_t a[KEY_V6], len;

	if (key(sa, a, &len) != 0 || (e = *find(pc, a, len)) == NULL)
		return (NULL);
	return (&e->slot);
}
