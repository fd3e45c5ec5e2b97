/* SPDX-License-Identifier: MIT */
/*
 * Rate limits for the per-identity flood guard: a generic cell rate
 * algorithm (GCRA, a token bucket kept as one number). The state of one
 * limited thing is a single 64-bit time, the moment at which it will have
 * paid for everything it sent, so it fits in an atomic and several
 * workers can share it without a lock.
 *
 * The caller charges what has already arrived (a PUBLISH, its bytes) and
 * is told how long to wait before reading more: nothing is dropped, the
 * device is slowed by TCP. Over any window of t seconds a thing gets
 * through at most rate * t + burst units. Pure: no clock of its own, the
 * caller passes the time.
 */
#ifndef MOAT_RATE_H
#define MOAT_RATE_H

#include <stdatomic.h>
#include <stdint.h>

#define RATE_NS_PER_SEC 1000000000ULL

struct rate {
	uint64_t unit_ns;       /* the time one unit earns: 1 s / rate;
	                         * 0: no limit */
	uint64_t tolerance_ns;  /* how far ahead a burst may run */
};

/*
 * A limit of per_second units per second (1 to 1e9; 0 turns the limit
 * off) with burst units allowed at once (at least 1; 0 is taken as 1).
 * Returns 0, or -1 when per_second is above 1e9.
 */
int rate_init(struct rate *r, uint64_t per_second, uint64_t burst);

/* 1 when r limits anything. */
int rate_on(const struct rate *r);

/*
 * Charge cost units that arrived at now_ns to the state *tat (0 for a
 * thing never seen). Always charges: the units are already here. Returns
 * 0 when more may be read at once, else the nanoseconds to wait first.
 * With r off it returns 0 and leaves *tat alone.
 */
uint64_t rate_charge(const struct rate *r, uint64_t *tat, uint64_t now_ns,
    uint64_t cost);

/* rate_charge() on a state shared between threads (compare and swap). */
uint64_t rate_charge_shared(const struct rate *r, _Atomic uint64_t *tat,
    uint64_t now_ns, uint64_t cost);

/*
 * Nanoseconds from now_ns until the state *tat lets the next unit through
 * at once (0: now). For a reader that paused and wants to know whether it
 * may resume.
 */
uint64_t rate_wait(const struct rate *r, uint64_t tat, uint64_t now_ns);

#endif
