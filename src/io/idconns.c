/* SPDX-License-Identifier: MIT */
/*
 * The live connections of each identity, shared by the workers (see
 * idconns.h): chained hashing on the identity value, seeded from
 * getrandom(2) and doubled when there are more identities than buckets;
 * each entry holds its identity's nodes oldest first; one queue per worker
 * of the nodes it must end or let go on. One mutex guards it all: it is
 * taken when an authenticated connection opens or closes, never on the
 * data path.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "moat/idconns.h"

#define NBUCKETS_MIN    256             /* power of two */
#define NBUCKETS_MAX    (1u << 22)      /* stop doubling here */

struct idconns_entry {
	struct idconns_entry *next;   /* same bucket */
	struct idconns_node *oldest, *newest;
	uint64_t live;                /* nodes not replaced */
	char name[];                  /* the identity value */
};

struct queue {
	struct idconns_node *head;
	int retired;                  /* idconns_retire(): no more wakes */
};

struct idconns {
	pthread_mutex_t lock;
	struct idconns_entry **bucket;
	size_t nbuckets;              /* power of two */
	uint64_t nentries;
	uint64_t seed[2];
	struct queue *queue;          /* one per worker */
	unsigned nworkers;
	idconns_wake_fn wake;
	void *arg;
};

/* A keyed hash of s: FNV-1a over the seed, then splitmix64's finaliser. */
static size_t
hash(const struct idconns *t, const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull ^ t->seed[0];

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	h ^= t->seed[1];
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return ((size_t)h & (t->nbuckets - 1));
}

static void
seed(struct idconns *t)
{
	struct timespec ts;

	if (getrandom(t->seed, sizeof(t->seed), GRND_NONBLOCK) ==
	    (ssize_t)sizeof(t->seed))
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t->seed[0] = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull;
	t->seed[1] = (uint64_t)(uintptr_t)t ^ (uint64_t)ts.tv_sec;
}

struct idconns *
idconns_new(unsigned nworkers, idconns_wake_fn wake, void *arg)
{
	struct idconns *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return (NULL);
	t->nbuckets = NBUCKETS_MIN;
	t->nworkers = nworkers;
	t->wake = wake;
	t->arg = arg;
	if ((t->bucket = calloc(t->nbuckets, sizeof(*t->bucket))) == NULL ||
	    (t->queue = calloc(nworkers > 0 ? nworkers : 1,
	    sizeof(*t->queue))) == NULL)
		goto fail;
	if (pthread_mutex_init(&t->lock, NULL) != 0)
		goto fail;
	seed(t);
	return (t);

fail:
	free(t->queue);
	free(t->bucket);
	free(t);
	return (NULL);
}

void
idconns_free(struct idconns *t)
{
	struct idconns_entry *e, *next;
	size_t i;

	if (t == NULL)
		return;
	/* Connections leave before the table goes; free what is left. */
	for (i = 0; i < t->nbuckets; i++)
		for (e = t->bucket[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	pthread_mutex_destroy(&t->lock);
	free(t->queue);
	free(t->bucket);
	free(t);
}

/* Twice the buckets; on failure keep the old ones (chains just grow). */
static void
grow(struct idconns *t)
{
	struct idconns_entry **old = t->bucket, *e, *next, **b;
	size_t i, n = t->nbuckets;

	if (n >= NBUCKETS_MAX || (b = calloc(2 * n, sizeof(*b))) == NULL)
		return;
	t->bucket = b;
	t->nbuckets = 2 * n;
	for (i = 0; i < n; i++)
		for (e = old[i]; e != NULL; e = next) {
			next = e->next;
			b = &t->bucket[hash(t, e->name)];
			e->next = *b;
			*b = e;
		}
	free(old);
}

static struct idconns_entry **
find(struct idconns *t, const char *identity)
{
	struct idconns_entry **p = &t->bucket[hash(t, identity)];

	while (*p != NULL && strcmp((*p)->name, identity) != 0)
		p = &(*p)->next;
	return (p);
}

/* The entry of identity, made when it has none; NULL: out of memory. */
static struct idconns_entry *
entry_get(struct idconns *t, const char *identity)
{
	struct idconns_entry **p = find(t, identity), *e;
	size_t len;

	if (*p != NULL)
		return (*p);
	len = strlen(identity);
	if ((e = calloc(1, sizeof(*e) + len + 1)) == NULL)
		return (NULL);
	memcpy(e->name, identity, len + 1);
	*p = e;
	if (++t->nentries > t->nbuckets)
		grow(t);
	return (e);
}

/* Queue n for its worker, waking the worker when its queue was empty. */
static void
enqueue(struct idconns *t, struct idconns_node *n)
{
	struct queue *q = &t->queue[n->worker < t->nworkers ? n->worker : 0];
	int was_empty = q->head == NULL;

	n->queued_next = q->head;
	q->head = n;
	n->queued = 1;
	if (was_empty && !q->retired && t->wake != NULL)
		t->wake(t->arg, n->worker);
}

/*
 * Let go on the waiting nodes of e that no replaced node older than they
 * holds back any more. A waiter waits for every replaced node that joined
 * before it, not only those it replaced itself: each of them is being
 * ended, so the wait always ends, and the broker never sees an older
 * session of the identity after a newer one.
 */
static void
release_waiters(struct idconns *t, struct idconns_entry *e)
{
	struct idconns_node *o;
	int held = 0;

	for (o = e->oldest; o != NULL; o = o->next) {
		if (o->replaced)
			held = 1;
		else if (o->waits && !held) {
			o->waits = 0;
			if (!o->queued)
				enqueue(t, o);
		}
	}
}

/* Mark the oldest live nodes of e replaced by n until e has keep. */
static unsigned
replace_oldest(struct idconns *t, struct idconns_entry *e, uint64_t keep,
    const struct idconns_node *n)
{
	struct idconns_node *o;
	unsigned count = 0;

	for (o = e->oldest; o != NULL && e->live > keep; o = o->next) {
		if (o->replaced)
			continue;
		o->replaced = 1;
		o->by_id = n->id;
		memcpy(o->by_peer, n->by_peer, sizeof(o->by_peer));
		e->live--;
		count++;
		enqueue(t, o);
	}
	return (count);
}

enum idconns_verdict
idconns_join(struct idconns *t, struct idconns_node *n, const char *identity,
    uint64_t max, enum on_duplicate dup, const char *peer,
    unsigned *nreplaced)
{
	struct idconns_entry *e;
	unsigned count = 0;
	int wait;

	snprintf(n->by_peer, sizeof(n->by_peer), "%s", peer);
	pthread_mutex_lock(&t->lock);
	if ((e = entry_get(t, identity)) == NULL) {
		pthread_mutex_unlock(&t->lock);
		return (IDCONNS_NO_MEMORY);
	}
	if (max > 0 && e->live >= max) {
		if (dup == DUP_REFUSE) {
			pthread_mutex_unlock(&t->lock);
			return (IDCONNS_REFUSED);
		}
		count = replace_oldest(t, e, max - 1, n);
	}
	n->entry = e;
	n->prev = e->newest;
	n->next = NULL;
	if (e->newest != NULL)
		e->newest->next = n;
	else
		e->oldest = n;
	e->newest = n;
	e->live++;
	/* What it replaced is older and still there: it waits. */
	wait = n->waits = count > 0;
	/* by_peer is the replacer's field: it held peer only to be copied. */
	n->by_peer[0] = '\0';
	pthread_mutex_unlock(&t->lock);
	if (nreplaced != NULL)
		*nreplaced = count;
	return (wait ? IDCONNS_WAIT : IDCONNS_JOINED);
}

/* Take n off its worker's queue. */
static void
dequeue(struct idconns *t, struct idconns_node *n)
{
	struct queue *q = &t->queue[n->worker < t->nworkers ? n->worker : 0];
	struct idconns_node **p;

	for (p = &q->head; *p != NULL; p = &(*p)->queued_next)
		if (*p == n) {
			*p = n->queued_next;
			break;
		}
	n->queued = 0;
	n->queued_next = NULL;
}

int
idconns_leave(struct idconns *t, struct idconns_node *n)
{
	struct idconns_entry *e, **p;
	int replaced;

	if (t == NULL)
		return (0);
	pthread_mutex_lock(&t->lock);
	if ((e = n->entry) == NULL) {
		pthread_mutex_unlock(&t->lock);
		return (0);
	}
	if (n->queued)
		dequeue(t, n);
	if (n->prev != NULL)
		n->prev->next = n->next;
	else
		e->oldest = n->next;
	if (n->next != NULL)
		n->next->prev = n->prev;
	else
		e->newest = n->prev;
	if (!n->replaced)
		e->live--;
	n->entry = NULL;
	n->prev = n->next = NULL;
	replaced = n->replaced;
	if (replaced)
		release_waiters(t, e);
	if (e->oldest == NULL) {
		p = find(t, e->name);
		*p = e->next;
		free(e);
		t->nentries--;
	}
	pthread_mutex_unlock(&t->lock);
	return (replaced);
}

struct idconns_node *
idconns_take(struct idconns *t, unsigned worker)
{
	struct idconns_node *list, *n;

	if (t == NULL || worker >= t->nworkers)
		return (NULL);
	pthread_mutex_lock(&t->lock);
	list = t->queue[worker].head;
	t->queue[worker].head = NULL;
	for (n = list; n != NULL; n = n->queued_next) {
		/* queued_next is the table's again once n may be queued anew;
		 * taken_next is the worker's alone. */
		n->taken_next = n->queued_next;
		n->todo = n->replaced ? IDCONNS_END : IDCONNS_RESUME;
		n->queued = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return (list);
}

void
idconns_retire(struct idconns *t, unsigned worker)
{
	if (t == NULL || worker >= t->nworkers)
		return;
	pthread_mutex_lock(&t->lock);
	t->queue[worker].retired = 1;
	pthread_mutex_unlock(&t->lock);
}

uint64_t
idconns_identities(struct idconns *t)
{
	uint64_t n;

	pthread_mutex_lock(&t->lock);
	n = t->nentries;
	pthread_mutex_unlock(&t->lock);
	return (n);
}
