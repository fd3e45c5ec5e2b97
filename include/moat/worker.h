/* SPDX-License-Identifier: MIT */
/*
 * A worker: one thread running its own libuv loop, with its own listening
 * sockets and the list of its connections. All per-loop state lives here
 * and is passed down; workers share nothing mutable but the
 * reference-counted snapshot and the global admission counts of
 * struct worker_shared (see daemon.h for which limits are global).
 *
 * The daemon talks to a worker only through worker_post_snapshot() and
 * worker_post_stop(), which are safe from any thread; everything else runs
 * on the worker's own loop.
 */
#ifndef MOAT_WORKER_H
#define MOAT_WORKER_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

#include "moat/config.h"
#include "moat/guard.h"
#include "moat/reason.h"

struct admit;
struct conn;
struct idconns;
struct snapshot;
struct worker;

#define WORKER_NWARN  4       /* limits warned about apart (conn.c) */
/* Upper bounds, in days, of the buckets of days left on the certificates
 * of connected devices; one more bucket holds the rest (+Inf). */
#define WORKER_DAYS_BUCKETS(X) X(1) X(7) X(30) X(90) X(365)
#define WORKER_NDAYS  6

/*
 * What a worker does with its connections, given by the daemon (conn.h's
 * conn_accept, and conn_close_all with reason "shutdown"), so that the
 * worker and the connections do not include each other.
 */
struct worker_conn_ops {
	void (*accept)(struct worker *w, uv_stream_t *server);
	void (*shutdown)(struct worker *w);
	struct admit *(*admit_new)(struct worker *w);
	int (*recheck)(struct worker *w, unsigned max); /* conn_recheck */
	void (*drain)(struct worker *w);  /* close what is not yet live */
	void (*end_all)(struct worker *w); /* end the live ones (0x8B) */
	char *(*list)(struct worker *w, unsigned limit); /* conn_list_json */
	void (*replaced)(struct worker *w); /* conn_end_replaced */
};

/* Steps of a graceful stop, posted by the daemon (worker_post_drain). */
enum worker_drain {
	WORKER_DRAIN_NONE = 0,
	WORKER_DRAIN_START,           /* stop accepting, close handshakes */
	WORKER_DRAIN_END,             /* end the live connections too */
};

/* Admission state shared by every worker of a daemon (owned by it). */
struct worker_shared {
	const struct worker_conn_ops *conn; /* the same for every worker */
	atomic_uint_fast64_t next_id; /* last connection id given out */
	_Atomic uint64_t handshakes;  /* in their handshake, all workers */
	_Atomic uint64_t connected;   /* authenticated, all workers */
	uint64_t heartbeat_ms;        /* each loop beats this often; 0: off */
	uv_async_t *listed;           /* on the control loop: a worker
	                               * answered worker_post_list() */
	struct idconns *idconns;      /* live connections by identity, all
	                               * workers (idconns.h); NULL: none */
};

/* Counters of one worker: written by its loop only, read by anyone. */
struct worker_counters {
	atomic_uint_fast64_t open;
	atomic_uint_fast64_t state[CONN_NSTATES]; /* open, by state */
	atomic_uint_fast64_t accepted;
	atomic_uint_fast64_t refused;
	atomic_uint_fast64_t closed[CONN_NREASONS]; /* by close reason */
	atomic_uint_fast64_t bytes_up;      /* forwarded so far, counted */
	atomic_uint_fast64_t bytes_down;    /* by the pipes as they go */
	/* Authenticated connections open now, by the bucket their
	 * certificate's days left fell in when the handshake ended. */
	atomic_uint_fast64_t days_left[WORKER_NDAYS];
	atomic_uint_fast64_t days_sum;      /* their days left, summed */
	atomic_uint_fast64_t refused_packets[GUARD_NKINDS]; /* by the
	                                     * guard, by kind (guard.h) */
	atomic_uint_fast64_t throttled_ms;  /* devices not read: over a
	                                     * publish rate */
};

#define WORKER_DEV_IN_LEN 16384      /* bytes of worker.dev_in */

struct worker {
	unsigned index;               /* 0..N-1, "worker" in the logs */
	uv_loop_t loop_storage;
	uv_loop_t *loop;
	uv_thread_t thread;
	uv_async_t wake;              /* a snapshot or stop was posted */
	_Atomic(struct snapshot *) posted; /* next snapshot, one reference */
	atomic_int stop_posted;
	atomic_int drain_posted;      /* enum worker_drain */
	atomic_uint list_posted;      /* limit + 1 of a connection list
	                               * asked for; 0: none */
	_Atomic(char *) list_reply;   /* its answer, taken by
	                               * worker_take_list() */
	atomic_int list_done;         /* list_reply is set (maybe NULL) */
	atomic_int replaced_posted;   /* connections of w were replaced */
	enum worker_drain drained;    /* the steps taken (own loop only) */
	struct worker_shared *shared;
	struct snapshot *snap;        /* current snapshot (one reference) */
	uv_tcp_t listeners[CONFIG_MAX_LISTEN];
	unsigned nlisteners;
	struct conn *conns;           /* every live connection */
	struct conn *sweep;           /* next to re-check after a reload;
	                               * conn.c moves it past a freed conn */
	uv_timer_t sweep_timer;       /* re-checks a slice per tick */
	int sweep_init;
	uv_timer_t heart;             /* beats while the watchdog is on */
	int heart_init;
	atomic_uint_fast64_t beat;    /* uv_hrtime() of the last beat */
	uint64_t nconns;              /* of this worker */
	unsigned source_next;         /* [backend] source: the next address
	                               * to bind, round robin (upstream.c) */
	struct worker_counters count;
	struct admit *admit;          /* handshake and connection budgets,
	                               * totals shared (admit.h) */
	uint64_t refused_logged_at[WORKER_NWARN]; /* uv_now() of the last
	                               * warning, per limit */
	char *scratch;                /* one read's worth of bytes, reused
	                               * by every connection of this loop */
	size_t scratch_len;
	char *dev_in;                 /* ciphertext of one device read
	                               * (WORKER_DEV_IN_LEN), taken by TLS or kept
	                               * by its connection before the next */
	int stopping;
	int wake_init, loop_init;
};

/*
 * Initialise w (index of nworkers) with its own loop and snap, and open
 * one listening socket per [listen] address. addrs[i] is the address to
 * bind for cfg->listen[i]: worker 0 binds what the config says and writes
 * back the address it got (so that port 0 becomes a real port); the other
 * workers bind that same address. SO_REUSEPORT is set when nworkers > 1.
 * Worker 0 logs "listening on ADDR" for each. Returns 0, w then owning the
 * snapshot reference, or -1 with a message in err (everything opened so
 * far is closed and the loop freed; the caller keeps its reference).
 * Runs on the caller's thread, before worker_spawn().
 */
int worker_start(struct worker *w, unsigned index, unsigned nworkers,
    struct worker_shared *shared, struct snapshot *snap,
    struct sockaddr_storage *addrs, char *err, size_t errlen);

/* Start w's thread, which runs its loop until it stops. Returns 0 or a
 * libuv error code. */
int worker_spawn(struct worker *w);

/*
 * From any thread: hand snap (taking the reference) to w for the
 * connections it accepts from then on; live ones keep the one they hold.
 * A snapshot posted before w took the previous one replaces it.
 */
void worker_post_snapshot(struct worker *w, struct snapshot *snap);

/* From any thread: ask w to stop accepting, close every connection with
 * reason "shutdown" and let its loop run out. */
void worker_post_stop(struct worker *w);

/*
 * From any thread: take the graceful stop to step (enum worker_drain):
 * WORKER_DRAIN_START closes w's listening sockets and the connections
 * not yet past their CONNECT, WORKER_DRAIN_END ends the others with
 * DISCONNECT 0x8B (conn_end). w's loop keeps running until
 * worker_post_stop(): the daemon posts that once no connection is left.
 */
void worker_post_drain(struct worker *w, enum worker_drain step);

/*
 * From any thread: ask w for the JSON of at most limit of its live
 * connections (conn_list_json). w answers on its loop, then sends
 * shared->listed; worker_take_list() then returns the answer. One request
 * at a time per worker.
 */
void worker_post_list(struct worker *w, unsigned limit);

/*
 * From any thread: some of w's connections were replaced by newer ones of
 * their identity (idconns.h); w ends them on its loop (the op replaced).
 */
void worker_post_replaced(struct worker *w);

/* w's answer: 1 with *json (the caller frees it; NULL when w ran out of
 * memory), or 0 when w has not answered yet. */
int worker_take_list(struct worker *w, char **json);

/*
 * After the thread has been joined (or was never spawned): free what w
 * owns and close its loop. Returns 0, or -1 when the loop still had
 * handles open.
 */
int worker_free(struct worker *w);

/* A connection id unique across the workers: 1, 2, 3, ... */
uint64_t worker_conn_id(struct worker *w);

/*
 * Count a connection's end (only from w's loop): its reason and, when
 * days >= 0 (worker_count_cert), its place in days_left. Its bytes were
 * counted as they went (pipe.total).
 */
void worker_count_close(struct worker *w, enum conn_reason why,
    int64_t days);

/*
 * Count an authenticated connection whose certificate is valid until
 * not_after (seconds since the epoch) in days_left (only from w's loop).
 * Returns its whole days left, which worker_count_close() takes back.
 */
int64_t worker_count_cert(struct worker *w, int64_t not_after);

/* The days_left bucket of a certificate with days whole days left. */
int worker_days_bucket(int64_t days);

/* Bump one of w's counters (only from w's loop). */
#define WORKER_COUNT(w, field, delta)                                   \
	atomic_store_explicit(&(w)->count.field,                        \
	    atomic_load_explicit(&(w)->count.field, memory_order_relaxed) \
	    + (uint64_t)(delta), memory_order_relaxed)

#endif
