/* SPDX-License-Identifier: MIT */
/*
 * The admin endpoint ([admin] address): a small HTTP/1.1 server on the
 * daemon's control loop, never on a worker loop, serving /healthz,
 * /readyz, /metrics and /connections (which asks every worker for its
 * list through worker_post_list() and answers once all have replied). Bounded on every side: at most ADMIN_MAX_CLIENTS
 * clients at a time (more are closed at once), ADMIN_MAX_REQUEST bytes per
 * request head, ADMIN_DEADLINE_MS per request, GET only, and every
 * response closes its connection.
 *
 * It reads the workers' counters (worker.h: atomics written by their own
 * loop, summed here when /metrics is read) and struct admin_view, which
 * the daemon owns and updates on the same control loop.
 */
#ifndef MOAT_ADMIN_H
#define MOAT_ADMIN_H

#include <stdint.h>

#include <uv.h>

struct admin;
struct snapshot;
struct worker;

#define ADMIN_MAX_CLIENTS  8
#define ADMIN_MAX_REQUEST  4096     /* bytes of a request head */
#define ADMIN_DEADLINE_MS  5000     /* per request, first byte to answer */
#define ADMIN_PROBE_MS     1000     /* /readyz: the broker must answer */
#define ADMIN_STALE_MS     5000     /* /healthz: a worker that has not
                                     * beaten for this long is stuck */
#define ADMIN_HEARTBEAT_MS 1000     /* how often workers beat at least */
#define ADMIN_LIST_DEFAULT 1000     /* /connections without ?limit= */
#define ADMIN_LIST_MAX     100000   /* the largest ?limit= */

/* What the endpoint reports: owned by the daemon, which updates it on the
 * control loop; the endpoint only reads it. */
struct admin_view {
	struct worker *workers;
	unsigned nworkers;              /* running */
	struct snapshot *snap;          /* the newest, held by the daemon */
	int stopping;                   /* draining: not ready */
	uint64_t reloads_ok, reloads_failed;
	int64_t last_reload_ok;         /* seconds since the epoch; start-up
	                                 * counts as one */
};

/*
 * Listen on address ("off" or a listen address, checked by config.c) on
 * loop, serving view (which must outlive the endpoint). Returns the
 * endpoint, or NULL: with "off" (err empty) or with a message in err.
 */
struct admin *admin_start(uv_loop_t *loop, const char *address,
    const struct admin_view *view, char *err, size_t errlen);

/* On the control loop, when a worker has answered worker_post_list():
 * collect the answers of /connections. admin_listed(NULL) does nothing. */
void admin_listed(struct admin *a);

/* Close the listening socket and every client; the memory is freed once
 * loop has run their close callbacks. admin_close(NULL) does nothing. */
void admin_close(struct admin *a);

#endif
