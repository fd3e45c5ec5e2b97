/* SPDX-License-Identifier: MIT */
/*
 * A worker: one libuv loop with its listening sockets and the list of its
 * connections. All per-loop state lives here and is passed down, so that
 * several workers (one per thread) can run side by side sharing nothing
 * mutable but the reference-counted snapshot.
 */
#ifndef MOAT_WORKER_H
#define MOAT_WORKER_H

#include <stdint.h>

#include <uv.h>

#include "moat/config.h"

struct conn;
struct snapshot;

#define WORKER_NWARN  4       /* limits warned about apart */

struct worker {
	uv_loop_t *loop;
	struct snapshot *snap;        /* current snapshot (one reference) */
	uv_tcp_t listeners[CONFIG_MAX_LISTEN];
	unsigned nlisteners;
	struct conn *conns;           /* every live connection */
	uint64_t nconns;
	uint64_t next_id;
	struct admit *admit;          /* handshake and connection budgets */
	uint64_t refused;             /* closed by a limit */
	uint64_t refused_logged_at[WORKER_NWARN]; /* uv_now() of the last
	                               * warning, per limit (conn.c) */
	char *scratch;                /* one read's worth of bytes, reused
	                               * by every connection of this loop */
	size_t scratch_len;
	int stopping;
};

/*
 * Initialise w on loop with snap and open one listening socket per
 * [listen] address (with SO_REUSEPORT once there are several workers, so
 * that each can bind the same addresses). Logs "listening on ADDR" for each. Returns 0, w then owning
 * the snapshot reference, or -1 with a message in err (everything opened so
 * far is closed; the caller keeps its reference).
 */
int worker_start(struct worker *w, uv_loop_t *loop, struct snapshot *snap,
    char *err, size_t errlen);

/*
 * Stop accepting, close every connection with reason "shutdown" and drop
 * the snapshot once the last connection is gone. The loop then runs out.
 */
void worker_stop(struct worker *w);

/*
 * Put snap (taking the reference) in place of w's snapshot for the
 * connections accepted from now on; live ones keep the one they hold.
 */
void worker_swap(struct worker *w, struct snapshot *snap);

/* After the loop has run out: free what w owns. */
void worker_free(struct worker *w);

#endif
