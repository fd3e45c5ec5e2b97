/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the table of live connections by identity (idconns.h):
 * counting, refuse and replace at the limit, the per-worker queues and
 * their wake-ups, the newcomer's wait until those it replaced are gone,
 * leaving once, and that other identities are never touched.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "moat/idconns.h"

#define NW 3

static struct idconns *t;
static unsigned woken[NW];

static void
wake(void *arg, unsigned worker)
{
	cr_assert_eq(arg, (void *)&woken);
	cr_assert_lt(worker, NW);
	woken[worker]++;
}

static void
setup(void)
{
	memset(woken, 0, sizeof(woken));
	t = idconns_new(NW, wake, &woken);
	cr_assert_not_null(t);
}

static void
teardown(void)
{
	idconns_free(t);
}

TestSuite(idconns, .init = setup, .fini = teardown);

static void
node(struct idconns_node *n, uint64_t id, unsigned worker)
{
	memset(n, 0, sizeof(*n));
	n->id = id;
	n->worker = worker;
	n->owner = n;
}

static unsigned
queued(unsigned worker, struct idconns_node **first)
{
	struct idconns_node *l = idconns_take(t, worker), *n;
	unsigned k = 0;

	if (first != NULL)
		*first = l;
	for (n = l; n != NULL; n = n->taken_next)
		k++;
	return (k);
}

Test(idconns, no_limit_counts_but_never_refuses)
{
	struct idconns_node a[5];
	unsigned i, r;

	for (i = 0; i < 5; i++) {
		node(&a[i], i + 1, i % NW);
		cr_assert_eq(idconns_join(t, &a[i], "dev-1", 0, DUP_REFUSE,
		    "127.0.0.1:1", &r), IDCONNS_JOINED);
		cr_assert_eq(r, 0);
	}
	cr_assert_eq(idconns_identities(t), 1);
	for (i = 0; i < NW; i++)
		cr_assert_eq(woken[i], 0);
	for (i = 0; i < 5; i++)
		cr_assert_eq(idconns_leave(t, &a[i]), 0);
	cr_assert_eq(idconns_identities(t), 0);
}

Test(idconns, refuse_at_the_limit)
{
	struct idconns_node a, b, c;

	node(&a, 1, 0);
	node(&b, 2, 1);
	node(&c, 3, 1);
	cr_assert_eq(idconns_join(t, &a, "dev-1", 1, DUP_REFUSE, "p:1", NULL),
	    IDCONNS_JOINED);
	cr_assert_eq(idconns_join(t, &b, "dev-1", 1, DUP_REFUSE, "p:2", NULL),
	    IDCONNS_REFUSED);
	cr_assert_null(b.entry, "a refused node is not in the table");
	cr_assert_eq(idconns_leave(t, &b), 0);
	cr_assert_eq(queued(0, NULL), 0, "refuse ends no one");
	cr_assert_eq(woken[0] + woken[1], 0);
	/* Once the first is gone, the identity may connect again. */
	cr_assert_eq(idconns_leave(t, &a), 0);
	cr_assert_eq(idconns_join(t, &c, "dev-1", 1, DUP_REFUSE, "p:3", NULL),
	    IDCONNS_JOINED);
	cr_assert_eq(idconns_leave(t, &c), 0);
}

Test(idconns, refuse_above_one)
{
	struct idconns_node a[4];
	unsigned i;

	for (i = 0; i < 3; i++) {
		node(&a[i], i + 1, 0);
		cr_assert_eq(idconns_join(t, &a[i], "dev-1", 3, DUP_REFUSE,
		    "p", NULL), IDCONNS_JOINED);
	}
	node(&a[3], 4, 0);
	cr_assert_eq(idconns_join(t, &a[3], "dev-1", 3, DUP_REFUSE, "p",
	    NULL), IDCONNS_REFUSED);
	for (i = 0; i < 3; i++)
		idconns_leave(t, &a[i]);
}

Test(idconns, replace_marks_the_oldest_and_wakes_its_worker)
{
	struct idconns_node a, b, *l;
	unsigned r;

	node(&a, 7, 2);
	node(&b, 9, 0);
	cr_assert_eq(idconns_join(t, &a, "dev-1", 1, DUP_REPLACE,
	    "10.0.0.1:1000", &r), IDCONNS_JOINED);
	cr_assert_eq(r, 0);
	cr_assert_eq(idconns_join(t, &b, "dev-1", 1, DUP_REPLACE,
	    "10.0.0.2:2000", &r), IDCONNS_WAIT);
	cr_assert_eq(r, 1);
	cr_assert(b.waits);
	cr_assert_eq(woken[2], 1, "the old one's worker is woken");
	cr_assert_eq(woken[0] + woken[1], 0);
	cr_assert(a.replaced);
	cr_assert_eq(a.by_id, 9);
	cr_assert_str_eq(a.by_peer, "10.0.0.2:2000");
	cr_assert(!b.replaced);
	cr_assert_eq(queued(0, NULL), 0);
	cr_assert_eq(queued(2, &l), 1);
	cr_assert_eq(l, &a);
	cr_assert_eq(l->todo, IDCONNS_END);
	cr_assert_eq(queued(2, NULL), 0, "taken once");
	cr_assert_eq(idconns_leave(t, &a), 1, "a says it was replaced");
	cr_assert_eq(woken[0], 1, "b's worker is woken once a is gone");
	cr_assert_eq(queued(0, &l), 1);
	cr_assert_eq(l, &b);
	cr_assert_eq(l->todo, IDCONNS_RESUME, "b goes on to the broker");
	cr_assert_eq(idconns_leave(t, &a), 0, "a second leave does nothing");
	cr_assert_eq(queued(0, NULL), 0, "and wakes no one");
	cr_assert_eq(idconns_leave(t, &b), 0);
	cr_assert_eq(idconns_identities(t), 0);
}

Test(idconns, replaced_ones_no_longer_count)
{
	struct idconns_node a, b, c;
	unsigned r;

	node(&a, 1, 0);
	node(&b, 2, 0);
	node(&c, 3, 0);
	idconns_join(t, &a, "dev-1", 1, DUP_REPLACE, "p", NULL);
	idconns_join(t, &b, "dev-1", 1, DUP_REPLACE, "p", &r);
	cr_assert_eq(r, 1);
	/* a is still closing: c replaces b alone, not a again. */
	idconns_join(t, &c, "dev-1", 1, DUP_REPLACE, "p", &r);
	cr_assert_eq(r, 1);
	cr_assert(b.replaced);
	cr_assert_eq(b.by_id, 3);
	cr_assert_eq(a.by_id, 2);
	cr_assert(c.waits, "c waits for a and b alike");
	cr_assert_eq(woken[0], 1, "woken once while the queue was full");
	cr_assert_eq(queued(0, NULL), 2);
	cr_assert_eq(idconns_leave(t, &b), 1);
	cr_assert_eq(queued(0, NULL), 0, "a is still there: c waits on");
	cr_assert_eq(idconns_leave(t, &a), 1);
	cr_assert_eq(queued(0, NULL), 1, "c goes on");
	cr_assert_eq(idconns_leave(t, &c), 0);
}

Test(idconns, a_lowered_limit_replaces_the_excess)
{
	struct idconns_node a[4];
	unsigned i, r;

	for (i = 0; i < 3; i++) {
		node(&a[i], i + 1, i);
		idconns_join(t, &a[i], "dev-1", 0, DUP_REPLACE, "p", NULL);
	}
	node(&a[3], 4, 0);
	cr_assert_eq(idconns_join(t, &a[3], "dev-1", 2, DUP_REPLACE, "p",
	    &r), IDCONNS_WAIT);
	cr_assert_eq(r, 2, "three live, limit two: the two oldest go");
	cr_assert(a[0].replaced && a[1].replaced && !a[2].replaced);
	for (i = 0; i < 4; i++)
		idconns_leave(t, &a[i]);
}

Test(idconns, leaving_takes_a_node_off_its_queue)
{
	struct idconns_node a, b, c, *l;

	node(&a, 1, 1);
	node(&b, 2, 1);
	node(&c, 3, 1);
	idconns_join(t, &a, "x", 0, DUP_REPLACE, "p", NULL);
	idconns_join(t, &b, "y", 1, DUP_REPLACE, "p", NULL);
	idconns_join(t, &c, "y", 1, DUP_REPLACE, "p", NULL);
	cr_assert(b.replaced);
	cr_assert_eq(idconns_leave(t, &b), 1);
	cr_assert_eq(queued(1, &l), 1, "b left before its worker took it");
	cr_assert_eq(l, &c, "only c is queued, to go on");
	cr_assert_eq(l->todo, IDCONNS_RESUME);
	idconns_leave(t, &a);
	idconns_leave(t, &c);
}

Test(idconns, other_identities_are_untouched)
{
	struct idconns_node a, b, c;
	unsigned r;

	node(&a, 1, 0);
	node(&b, 2, 0);
	node(&c, 3, 0);
	cr_assert_eq(idconns_join(t, &a, "dev-1", 1, DUP_REFUSE, "p", NULL),
	    IDCONNS_JOINED);
	cr_assert_eq(idconns_join(t, &b, "dev-2", 1, DUP_REFUSE, "p", NULL),
	    IDCONNS_JOINED, "dev-2 is not dev-1");
	cr_assert_eq(idconns_join(t, &c, "dev-10", 1, DUP_REPLACE, "p", &r),
	    IDCONNS_JOINED);
	cr_assert_eq(r, 0);
	cr_assert(!a.replaced && !b.replaced);
	cr_assert_eq(idconns_identities(t), 3);
	idconns_leave(t, &a);
	idconns_leave(t, &b);
	idconns_leave(t, &c);
}

Test(idconns, retired_workers_are_not_woken)
{
	struct idconns_node a, b;

	node(&a, 1, 1);
	node(&b, 2, 0);
	idconns_retire(t, 1);
	idconns_join(t, &a, "dev-1", 1, DUP_REPLACE, "p", NULL);
	idconns_join(t, &b, "dev-1", 1, DUP_REPLACE, "p", NULL);
	cr_assert(a.replaced);
	cr_assert_eq(woken[1], 0);
	cr_assert_eq(idconns_leave(t, &a), 1);
	idconns_leave(t, &b);
}

Test(idconns, many_identities_grow_the_table)
{
	static struct idconns_node n[3000];
	char name[32];
	unsigned i;

	for (i = 0; i < 3000; i++) {
		node(&n[i], i + 1, i % NW);
		snprintf(name, sizeof(name), "dev-%u", i);
		cr_assert_eq(idconns_join(t, &n[i], name, 1, DUP_REFUSE, "p",
		    NULL), IDCONNS_JOINED);
	}
	cr_assert_eq(idconns_identities(t), 3000);
	/* Each is still found after the buckets doubled. */
	for (i = 1; i < 3000; i++) {
		struct idconns_node x;

		node(&x, 5000 + i, 0);
		snprintf(name, sizeof(name), "dev-%u", i);
		cr_assert_eq(idconns_join(t, &x, name, 1, DUP_REFUSE, "p",
		    NULL), IDCONNS_REFUSED, "%s", name);
	}
	for (i = 0; i < 3000; i++)
		idconns_leave(t, &n[i]);
	cr_assert_eq(idconns_identities(t), 0);
}

Test(idconns, a_waiter_that_leaves_first_wakes_no_one)
{
	struct idconns_node a, b, c;

	node(&a, 1, 0);
	node(&b, 2, 1);
	node(&c, 3, 1);
	idconns_join(t, &a, "dev-1", 1, DUP_REPLACE, "p", NULL);
	cr_assert_eq(idconns_join(t, &b, "dev-1", 1, DUP_REPLACE, "p",
	    NULL), IDCONNS_WAIT);
	cr_assert_eq(queued(0, NULL), 1);
	/* b gives up (its deadline) before a is gone. */
	cr_assert_eq(idconns_leave(t, &b), 0);
	cr_assert_eq(idconns_leave(t, &a), 1);
	cr_assert_eq(queued(1, NULL), 0, "no resume for a node that left");
	/* A limit of two: a third connection replaces nothing, waits not. */
	node(&a, 4, 0);
	node(&b, 5, 0);
	cr_assert_eq(idconns_join(t, &a, "dev-1", 2, DUP_REPLACE, "p",
	    NULL), IDCONNS_JOINED);
	cr_assert_eq(idconns_join(t, &b, "dev-1", 2, DUP_REPLACE, "p",
	    NULL), IDCONNS_JOINED);
	cr_assert_eq(idconns_join(t, &c, "dev-1", 2, DUP_REPLACE, "p",
	    NULL), IDCONNS_WAIT);
	cr_assert(a.replaced && !b.replaced);
	idconns_leave(t, &a);
	idconns_leave(t, &b);
	idconns_leave(t, &c);
}

Test(idconns, a_replaced_waiter_is_ended_not_resumed)
{
	struct idconns_node a, b, c, *l;

	node(&a, 1, 0);
	node(&b, 2, 1);
	node(&c, 3, 2);
	idconns_join(t, &a, "dev-1", 1, DUP_REPLACE, "p", NULL);
	idconns_join(t, &b, "dev-1", 1, DUP_REPLACE, "p", NULL);
	/* c comes while b still waits for a: b is replaced too, and c
	 * waits for both. */
	cr_assert_eq(idconns_join(t, &c, "dev-1", 1, DUP_REPLACE, "p",
	    NULL), IDCONNS_WAIT);
	cr_assert(b.replaced);
	cr_assert(c.waits);
	cr_assert_eq(queued(1, &l), 1);
	cr_assert_eq(l->todo, IDCONNS_END);
	cr_assert_eq(idconns_leave(t, &a), 1);
	cr_assert_eq(queued(1, NULL), 0, "b is not resumed");
	cr_assert_eq(queued(2, NULL), 0, "b is still there");
	cr_assert_eq(idconns_leave(t, &b), 1);
	cr_assert_eq(queued(2, &l), 1);
	cr_assert_eq(l, &c);
	cr_assert_eq(l->todo, IDCONNS_RESUME);
	idconns_leave(t, &c);
}

/* A waiter is let go only once every older replaced node has left, even
 * when a newer connection replaced some of them meanwhile. */
Test(idconns, two_waiters_at_a_limit_of_two)
{
	struct idconns_node a, b, c, d, *l;

	node(&a, 1, 0);
	node(&b, 2, 0);
	node(&c, 3, 1);
	node(&d, 4, 2);
	idconns_join(t, &a, "dev-1", 2, DUP_REPLACE, "p", NULL);
	idconns_join(t, &b, "dev-1", 2, DUP_REPLACE, "p", NULL);
	cr_assert_eq(idconns_join(t, &c, "dev-1", 2, DUP_REPLACE, "p",
	    NULL), IDCONNS_WAIT, "c replaces a");
	cr_assert_eq(idconns_join(t, &d, "dev-1", 2, DUP_REPLACE, "p",
	    NULL), IDCONNS_WAIT, "d replaces b");
	cr_assert(a.replaced && b.replaced && !c.replaced && !d.replaced);
	cr_assert_eq(queued(0, NULL), 2);
	cr_assert_eq(idconns_leave(t, &a), 1);
	cr_assert_eq(queued(1, NULL), 0, "b, older than c, is still there");
	cr_assert_eq(queued(2, NULL), 0);
	cr_assert_eq(idconns_leave(t, &b), 1);
	cr_assert_eq(queued(1, &l), 1, "c goes on");
	cr_assert_eq(l->todo, IDCONNS_RESUME);
	cr_assert_eq(queued(2, &l), 1, "d goes on");
	cr_assert_eq(l->todo, IDCONNS_RESUME);
	cr_assert(!c.waits && !d.waits);
	idconns_leave(t, &c);
	idconns_leave(t, &d);
	cr_assert_eq(idconns_identities(t), 0);
}
