/* SPDX-License-Identifier: MIT */
/*
 * The daemon: one control loop (the main thread) and N workers, each a
 * thread with its own libuv loop and its own listening sockets (worker.h).
 *
 * The control loop handles the signals. SIGHUP builds a new snapshot in
 * libuv's thread pool, never on a worker loop (reading a large identity
 * map or building the TLS context must not stall devices), then hands it to
 * every worker through its uv_async; each worker holds its own reference,
 * and re-checks its live connections against it (conn_recheck). SIGTERM
 * and SIGINT drain: every worker closes its listening sockets and the
 * connections not yet past their CONNECT; live ones run on for up to
 * [limits] drain_timeout and are then ended (MQTT 5: DISCONNECT 0x8B);
 * once none is left, or at a second signal, every worker is asked to
 * stop (uv_async), the threads are joined, and every loop is closed with
 * no handle left open.
 *
 * Which limits hold where (admit.h does the counting):
 *   global (atomic counts in struct worker_shared, no lock):
 *     max_connections             authenticated devices, all workers,
 *                                 checked when a handshake completes
 *     max_handshakes              connections in their handshake, all
 *                                 workers; when it is full a worker closes
 *                                 its own oldest handshake, so the total
 *                                 may pass it by one per worker
 *   global (a table behind one mutex, idconns.h, taken when a connection
 *   is accepted at its CONNECT and when it closes, never per packet):
 *     max_connections_per_identity  live connections of one identity, all
 *                                 workers; with on_duplicate = replace the
 *                                 workers holding the older ones are woken
 *                                 (uv_async) to end them
 *   per worker (each loop alone):
 *     max_handshakes_per_address  per IPv4 address or IPv6 /64, per worker:
 *                                 SO_REUSEPORT spreads one address's
 *                                 connections over the workers, so with N
 *                                 workers one address may hold up to N
 *                                 times this many handshakes
 *     handshake_timeout, connect_timeout, idle_timeout, max_connect_size
 *                                 (per connection, from its snapshot)
 *     counters (open, accepted, refused): written by their worker only,
 *                                 summed by daemon_stats() on demand
 */
#ifndef MOAT_DAEMON_H
#define MOAT_DAEMON_H

#include <stdint.h>

struct daemon;
struct snapshot;

/* Counters summed over every worker. */
struct daemon_stats {
	uint64_t open;          /* connections open now */
	uint64_t accepted;      /* accepted since start */
	uint64_t refused;       /* turned away at accept (over a limit) */
};

/*
 * Run moat: bind every worker's sockets, start the workers, serve until
 * SIGTERM or SIGINT, then stop, join and free everything. Takes snap's
 * reference (also on failure). config_path is read again on SIGHUP.
 * Returns the process exit code: 0 after a clean stop, 1 when start-up
 * failed or a loop had handles left open at exit.
 */
int daemon_run(const char *config_path, struct snapshot *snap);

/* Sum the workers' counters into out. Takes no lock; safe from any
 * thread while d runs (each counter is read atomically). */
void daemon_stats(const struct daemon *d, struct daemon_stats *out);

#endif
