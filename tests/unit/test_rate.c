/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the rate limiter (GCRA): bursts, the steady rate, bytes,
 * the shared form, overflow and the off switch.
 */
#include <stdint.h>

#include <criterion/criterion.h>

#include "moat/rate.h"

#define MS 1000000ULL

Test(rate, off_never_waits)
{
	struct rate r;
	uint64_t tat = 0;
	int i;

	cr_assert_eq(rate_init(&r, 0, 5), 0);
	cr_assert_not(rate_on(&r));
	for (i = 0; i < 1000; i++)
		cr_assert_eq(rate_charge(&r, &tat, 0, 1000000), 0);
	cr_assert_eq(tat, 0);
}

Test(rate, refuses_above_a_billion)
{
	struct rate r;

	cr_assert_eq(rate_init(&r, RATE_NS_PER_SEC, 1), 0);
	cr_assert_eq(rate_init(&r, RATE_NS_PER_SEC + 1, 1), -1);
	cr_assert_not(rate_on(&r));
}

Test(rate, burst_then_wait)
{
	struct rate r;
	uint64_t tat = 0, now = 5000 * MS;
	int i;

	cr_assert_eq(rate_init(&r, 100, 10), 0);   /* 10 ms a message */
	for (i = 0; i < 10; i++)
		cr_assert_eq(rate_charge(&r, &tat, now, 1), 0,
		    "message %d of the burst waits", i + 1);
	/* The eleventh is over: wait one unit. */
	cr_assert_eq(rate_charge(&r, &tat, now, 1), 10 * MS);
	cr_assert_eq(rate_wait(&r, tat, now), 10 * MS);
	cr_assert_eq(rate_wait(&r, tat, now + 10 * MS), 0);
}

Test(rate, burst_zero_is_one)
{
	struct rate r;
	uint64_t tat = 0;

	cr_assert_eq(rate_init(&r, 2, 0), 0);
	cr_assert_eq(rate_charge(&r, &tat, MS, 1), 0);
	cr_assert_eq(rate_charge(&r, &tat, MS, 1), 500 * MS);
}

/* A device that sends whenever it may gets rate * t + burst through. */
Test(rate, steady_rate_over_ten_seconds)
{
	struct rate r;
	uint64_t tat = 0, now = 0, end = 10000 * MS, wait;
	unsigned sent = 0;

	cr_assert_eq(rate_init(&r, 100, 20), 0);
	while (now <= end) {
		sent++;
		wait = rate_charge(&r, &tat, now, 1);
		now += wait;
	}
	/* 100/s for 10 s, plus the burst of 20, plus the one that arrived
	 * at the end (charged, then waited for). */
	cr_assert(sent >= 1000 + 20 && sent <= 1000 + 20 + 1,
	    "sent %u in 10 s", sent);
}

Test(rate, idle_time_refills_at_most_the_burst)
{
	struct rate r;
	uint64_t tat = 0;
	unsigned n = 0;

	cr_assert_eq(rate_init(&r, 10, 3), 0);
	(void)rate_charge(&r, &tat, 0, 1);
	/* An hour later, only the burst is there again. */
	while (rate_charge(&r, &tat, 3600000 * MS, 1) == 0)
		n++;
	cr_assert_eq(n, 3, "%u went at once, not the burst of 3", n);
}

Test(rate, bytes_as_cost)
{
	struct rate r;
	uint64_t tat = 0;

	/* 1000 bytes a second, 1000 at once. */
	cr_assert_eq(rate_init(&r, 1000, 1000), 0);
	cr_assert_eq(rate_charge(&r, &tat, 0, 600), 0);
	cr_assert_eq(rate_charge(&r, &tat, 0, 400), 0);
	/* 1500 bytes over: 1.5 s to wait, the packet already went. */
	cr_assert_eq(rate_charge(&r, &tat, 0, 1500), 1500 * MS);
}

Test(rate, huge_cost_saturates)
{
	struct rate r;
	uint64_t tat = 0, w;

	cr_assert_eq(rate_init(&r, 1, UINT64_MAX), 0);
	cr_assert_eq(r.tolerance_ns, UINT64_MAX);
	w = rate_charge(&r, &tat, UINT64_MAX - 5, UINT64_MAX);
	cr_assert_eq(tat, UINT64_MAX);
	cr_assert_eq(w, 0);
	cr_assert_eq(rate_init(&r, 1, 1), 0);
	tat = 0;
	w = rate_charge(&r, &tat, 0, UINT64_MAX);
	cr_assert_eq(tat, UINT64_MAX);
	cr_assert_eq(w, UINT64_MAX - RATE_NS_PER_SEC);
}

Test(rate, shared_equals_plain)
{
	struct rate r;
	uint64_t tat = 0, now = 0, a, b;
	_Atomic uint64_t shared = 0;
	int i;

	cr_assert_eq(rate_init(&r, 50, 5), 0);
	for (i = 0; i < 200; i++) {
		now += (uint64_t)(i % 7) * 3 * MS;
		a = rate_charge(&r, &tat, now, 1 + (uint64_t)(i % 3));
		b = rate_charge_shared(&r, &shared, now, 1 +
		    (uint64_t)(i % 3));
		cr_assert_eq(a, b, "step %d", i);
		cr_assert_eq(tat, atomic_load(&shared));
	}
}
