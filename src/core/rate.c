/* SPDX-License-Identifier: MIT */
/*
 * The generic cell rate algorithm (see rate.h).
 */
#include "config.h"

#include "moat/rate.h"

#define RATE_MAX_PER_SEC RATE_NS_PER_SEC

/* a + b, or UINT64_MAX when it would overflow. */
static uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return (a > UINT64_MAX - b ? UINT64_MAX : a + b);
}

/* a * b, or UINT64_MAX when it would overflow. */
static uint64_t
sat_mul(uint64_t a, uint64_t b)
{
	return (b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b);
}

int
rate_init(struct rate *r, uint64_t per_second, uint64_t burst)
{
	r->unit_ns = 0;
	r->tolerance_ns = 0;
	if (per_second > RATE_MAX_PER_SEC)
		return (-1);
	if (per_second == 0)
		return (0);
	if (burst == 0)
		burst = 1;
	r->unit_ns = RATE_NS_PER_SEC / per_second;
	r->tolerance_ns = sat_mul(burst, r->unit_ns);
	return (0);
}

int
rate_on(const struct rate *r)
{
	return (r->unit_ns != 0);
}

/* The state after charging cost at now, from the state tat. */
static uint64_t
next_tat(const struct rate *r, uint64_t tat, uint64_t now_ns, uint64_t cost)
{
	return (sat_add(tat > now_ns ? tat : now_ns, sat_mul(cost, r->unit_ns)));
}

uint64_t
rate_wait(const struct rate *r, uint64_t tat, uint64_t now_ns)
{
	uint64_t ahead;

	if (!rate_on(r) || tat <= now_ns)
		return (0);
	ahead = tat - now_ns;
	return (ahead > r->tolerance_ns ? ahead - r->tolerance_ns : 0);
}

uint64_t
rate_charge(const struct rate *r, uint64_t *tat, uint64_t now_ns,
    uint64_t cost)
{
	if (!rate_on(r))
		return (0);
	*tat = next_tat(r, *tat, now_ns, cost);
	return (rate_wait(r, *tat, now_ns));
}

uint64_t
rate_charge_shared(const struct rate *r, _Atomic uint64_t *tat,
    uint64_t now_ns, uint64_t cost)
{
	uint64_t old, new;

	if (!rate_on(r))
		return (0);
	old = atomic_load_explicit(tat, memory_order_relaxed);
	do {
		new = next_tat(r, old, now_ns, cost);
	} while (!atomic_compare_exchange_weak_explicit(tat, &old, new,
	    memory_order_relaxed, memory_order_relaxed));
	return (rate_wait(r, new, now_ns));
}
