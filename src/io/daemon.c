/* SPDX-License-Identifier: MIT */
/*
 * The daemon: the control loop on the main thread, the workers it owns,
 * signals, reload and shutdown (see daemon.h for what is global and what
 * is per worker). The control loop never touches a connection: it talks to
 * the workers only through worker_post_snapshot() and worker_post_stop().
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "moat/admin.h"
#include "moat/config.h"
#include "moat/conn.h"
#include "moat/daemon.h"
#include "moat/idconns.h"
#include "moat/log.h"
#include "moat/mqtt.h"
#include "moat/notify.h"
#include "moat/policy.h"
#include "moat/privdrop.h"
#include "moat/snapshot.h"
#include "moat/tls.h"
#include "moat/watch.h"
#include "moat/worker.h"

#define NSIGNALS 3
#define DRAIN_TICK_MS 100               /* a graceful stop checks this often */
#define FAST_PATHS_TEXT_MAX 256         /* the fast-path list at start-up */

static const int signals[NSIGNALS] = { SIGTERM, SIGINT, SIGHUP };

/* One reload, built in libuv's thread pool. */
struct reload_job {
	uv_work_t req;
	struct daemon *d;
	struct snapshot *snap;          /* the result, or NULL with err */
	uint8_t digest[WATCH_DIGEST_LEN];       /* of the files it read */
	char err[1024];
};

struct daemon {
	uv_loop_t *loop;                /* control loop: signals, reload */
	const char *config_path;
	struct snapshot *snap;          /* newest snapshot, one reference */
	struct worker *workers;
	unsigned nworkers;
	unsigned nstarted, nspawned;
	struct worker_shared shared;
	uv_signal_t sig[NSIGNALS];
	unsigned nsig;
	struct reload_job job;
	struct watch *watch;            /* [process] watch_files */
	int reloading, reload_again, stopping;
	int stopped;                    /* every worker told to stop */
	int sig_closed;
	uv_timer_t drain_timer;         /* watches a graceful stop */
	int drain_timer_init;
	uint64_t drain_start;           /* uv_now() of the first signal */
	int drain_ended;                /* live connections told to end */
	uv_timer_t watchdog;            /* WATCHDOG=1 while workers beat */
	int watchdog_init;
	uint64_t watchdog_ns;           /* $WATCHDOG_USEC, in ns; 0: off */
	int watchdog_warned;
	struct daemon_stats final;      /* summed once the workers ended */
	struct admin *admin;            /* [admin] endpoint, or NULL */
	struct admin_view view;         /* what it reports */
	uv_async_t listed;              /* a worker answered /connections */
	int listed_init;
};

void
daemon_stats(const struct daemon *d, struct daemon_stats *out)
{
	const struct worker_counters *c;
	unsigned i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < d->nstarted; i++) {
		c = &d->workers[i].count;
		out->open += atomic_load_explicit(&c->open,
		    memory_order_relaxed);
		out->accepted += atomic_load_explicit(&c->accepted,
		    memory_order_relaxed);
		out->refused += atomic_load_explicit(&c->refused,
		    memory_order_relaxed);
	}
}

/* [process] workers: a number, or 0 for one per CPU. */
static unsigned
count_workers(const struct config *cfg)
{
	unsigned n = (unsigned)cfg->workers;

	if (n == 0)
		n = uv_available_parallelism();
	return (n > 0 ? n : 1);
}

/* Two configs listen on the same addresses, in the same order. */
static int
same_listeners(const struct config *a, const struct config *b)
{
	unsigned i;

	if (a->nlisten != b->nlisten)
		return (0);
	for (i = 0; i < a->nlisten; i++)
		if (strcmp(a->listen[i], b->listen[i]) != 0)
			return (0);
	return (1);
}

/* --- reload --------------------------------------------------------------- */

/* In the thread pool: read the files and build the TLS context. */
static void
reload_work(uv_work_t *req)
{
	struct reload_job *job = req->data;
	struct config *cfg;

	job->snap = NULL;
	if ((cfg = watch_load(job->d->config_path, job->digest, job->err,
	    sizeof(job->err))) != NULL)
		job->snap = snapshot_new(cfg, job->err, sizeof(job->err));
	tls_thread_cleanup();
}

/* Hand snap (taking the reference) to every worker and keep it. */
static void
install(struct daemon *d, struct snapshot *snap)
{
	struct daemon_stats st;
	unsigned i;

	if (!same_listeners(d->snap->cfg, snap->cfg))
		log_warn("reload: [listen] changes take effect only after a "
		    "restart; still listening where moat started");
	if (strcmp(d->snap->cfg->admin_address, snap->cfg->admin_address) != 0)
		log_warn("reload: [admin] address changes take effect only "
		    "after a restart; still serving it where moat started");
	if (count_workers(snap->cfg) != d->nworkers)
		log_warn("reload: [process] workers changes take effect only "
		    "after a restart; still running %u", d->nworkers);
	if (snap->run_as.set != d->snap->run_as.set ||
	    snap->run_as.uid != d->snap->run_as.uid ||
	    snap->run_as.gid != d->snap->run_as.gid)
		log_warn("reload: [process] user and group changes take "
		    "effect only after a restart");
	log_setup(snap->cfg->log_level, snap->cfg->log_format);
	if (tls_ctx_warning(snap->tls) != NULL)
		log_warn("%s", tls_ctx_warning(snap->tls));
	for (i = 0; i < d->nspawned; i++)
		worker_post_snapshot(&d->workers[i], snapshot_ref(snap));
	snapshot_unref(d->snap);
	d->snap = snap;
	d->view.snap = snap;
	daemon_stats(d, &st);
	log_info("reloaded %s; new connections use it, %llu open ones are "
	    "checked against its CRL and identity map", d->config_path,
	    (unsigned long long)st.open);
}

static void start_reload(struct daemon *d);

/* Back on the control loop. A failure keeps the running snapshot. */
static void
reload_done(uv_work_t *req, int status)
{
	struct reload_job *job = req->data;
	struct daemon *d = job->d;

	d->reloading = 0;
	if (status != 0 || d->stopping) {
		snapshot_unref(job->snap);
		job->snap = NULL;
		return;
	}
	if (job->snap == NULL) {
		log_error("reload failed, still running the previous "
		    "configuration: %s", job->err);
		d->view.reloads_failed++;
		watch_seen(d->watch, job->digest);
	} else {
		install(d, job->snap);
		d->view.reloads_ok++;
		d->view.last_reload_ok = (int64_t)time(NULL);
		(void)watch_arm(d->watch, d->snap->cfg, job->digest);
	}
	job->snap = NULL;
	(void)notify_send("READY=1");
	if (d->reload_again) {
		d->reload_again = 0;
		start_reload(d);
	}
}

/*
 * SIGHUP: load and check the file again off every loop, then swap the new
 * snapshot in for new connections. Any error keeps the running
 * configuration: nothing falls back to defaults. A SIGHUP during a reload
 * runs one more reload after it, so the last file written wins.
 */
static void
start_reload(struct daemon *d)
{
	int r;

	if (d->reloading) {
		d->reload_again = 1;
		return;
	}
	(void)notify_send("RELOADING=1");
	d->job.d = d;
	d->job.req.data = &d->job;
	if ((r = uv_queue_work(d->loop, &d->job.req, reload_work,
	    reload_done)) != 0) {
		log_error("reload failed, still running the previous "
		    "configuration: cannot start the reload: %s",
		    uv_strerror(r));
		d->view.reloads_failed++;
		(void)notify_send("READY=1");
		return;
	}
	d->reloading = 1;
}

/* The watched files changed (watch.h): reload as SIGHUP does. */
static void
on_files_changed(void *arg)
{
	struct daemon *d = arg;

	if (d->stopping)
		return;
	log_info("files changed: reloading");
	start_reload(d);
}

/* --- signals and shutdown --------------------------------------------------- */

static void
on_closed_quietly(uv_handle_t *h)
{
	(void)h;
}

/* Close the signal handles (once). */
static void
close_signals(struct daemon *d)
{
	unsigned i;

	if (d->sig_closed)
		return;
	d->sig_closed = 1;
	for (i = 0; i < d->nsig; i++)
		uv_close((uv_handle_t *)&d->sig[i], on_closed_quietly);
}

/* --- watchdog ------------------------------------------------------------ */

static void
close_watchdog(struct daemon *d)
{
	if (!d->watchdog_init)
		return;
	d->watchdog_init = 0;
	uv_close((uv_handle_t *)&d->watchdog, on_closed_quietly);
}

/*
 * WATCHDOG=1 only while every worker's loop has beaten within the
 * interval: a stuck worker stops the pings, and systemd restarts moat.
 */
static void
on_watchdog(uv_timer_t *t)
{
	struct daemon *d = t->data;
	uint64_t now = uv_hrtime(), beat;
	unsigned i;

	for (i = 0; i < d->nspawned; i++) {
		beat = atomic_load(&d->workers[i].beat);
		if (now - beat < d->watchdog_ns)
			continue;
		if (!d->watchdog_warned)
			log_error("worker %u has not run its loop for %llu ms: "
			    "no longer telling the service manager that moat "
			    "is alive", i, (unsigned long long)((now - beat) /
			    1000000));
		d->watchdog_warned = 1;
		return;
	}
	(void)notify_send("WATCHDOG=1");
}

/* With $WATCHDOG_USEC: ping at half the interval (worker heartbeats at a
 * quarter, set in init_shared). 0 or -1 (logged). */
static int
start_watchdog(struct daemon *d)
{
	int r;

	if (d->watchdog_ns == 0)
		return (0);
	if ((r = uv_timer_init(d->loop, &d->watchdog)) != 0) {
		log_error("cannot start the watchdog timer: %s",
		    uv_strerror(r));
		return (-1);
	}
	d->watchdog.data = d;
	d->watchdog_init = 1;
	(void)uv_timer_start(&d->watchdog, on_watchdog, 0,
	    d->watchdog_ns / 2000000 > 0 ? d->watchdog_ns / 2000000 : 1);
	return (0);
}

/* Tell every worker to close what it has and end; the control loop
 * then runs out and daemon_run() joins the threads. */
static void
stop_now(struct daemon *d)
{
	unsigned i;

	if (d->stopped)
		return;
	d->stopped = 1;
	close_signals(d);
	if (d->drain_timer_init) {
		d->drain_timer_init = 0;
		uv_close((uv_handle_t *)&d->drain_timer, on_closed_quietly);
	}
	close_watchdog(d);
	admin_close(d->admin);
	d->admin = NULL;
	for (i = 0; i < d->nspawned; i++)
		worker_post_stop(&d->workers[i]);
}

/*
 * Every DRAIN_TICK_MS of a graceful stop: once no connection is left the
 * workers stop; once drain_timeout has passed the live connections are
 * told to end (MQTT 5: DISCONNECT 0x8B), which takes them at most a
 * linger more.
 */
static void
on_drain_tick(uv_timer_t *t)
{
	struct daemon *d = t->data;
	struct daemon_stats st;
	unsigned i;

	daemon_stats(d, &st);
	if (st.open == 0) {
		stop_now(d);
		return;
	}
	if (!d->drain_ended && uv_now(d->loop) - d->drain_start >=
	    d->snap->cfg->drain_timeout_ms) {
		d->drain_ended = 1;
		log_info("drain_timeout reached: ending %llu connections",
		    (unsigned long long)st.open);
		for (i = 0; i < d->nspawned; i++)
			worker_post_drain(&d->workers[i], WORKER_DRAIN_END);
	}
}

/*
 * The first SIGTERM or SIGINT: stop accepting, close the connections not
 * yet past their CONNECT, and give the live ones up to drain_timeout.
 */
static void
start_drain(struct daemon *d, const char *name)
{
	unsigned i;
	int r;

	log_info("%s: no longer accepting; draining live connections for up "
	    "to %llu ms (send it again to stop at once)", name,
	    (unsigned long long)d->snap->cfg->drain_timeout_ms);
	(void)notify_send("STOPPING=1");
	d->stopping = 1;
	d->view.stopping = 1;
	if (d->reloading)
		(void)uv_cancel((uv_req_t *)&d->job.req);
	d->drain_start = uv_now(d->loop);
	for (i = 0; i < d->nspawned; i++)
		worker_post_drain(&d->workers[i], WORKER_DRAIN_START);
	if ((r = uv_timer_init(d->loop, &d->drain_timer)) != 0) {
		log_error("cannot drain (timer: %s): stopping at once",
		    uv_strerror(r));
		stop_now(d);
		return;
	}
	d->drain_timer.data = d;
	d->drain_timer_init = 1;
	(void)uv_timer_start(&d->drain_timer, on_drain_tick, DRAIN_TICK_MS,
	    DRAIN_TICK_MS);
	on_drain_tick(&d->drain_timer);     /* nothing open, or no drain */
}

static void
on_signal(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;
	const char *name = signum == SIGTERM ? "SIGTERM" : "SIGINT";

	if (signum == SIGHUP) {
		if (!d->stopping)
			start_reload(d);
		return;
	}
	if (!d->stopping) {
		start_drain(d, name);
		return;
	}
	log_info("%s again: closing every connection now", name);
	stop_now(d);
}

/* Stop and join the spawned workers, free every started one. Returns 0,
 * or -1 when a loop had handles left open. */
static int
reap_workers(struct daemon *d)
{
	unsigned i;
	int rc = 0;

	/* After a signal every worker has its stop already: a worker may
	 * have closed its async handle since, so post nothing more. */
	for (i = 0; i < d->nspawned && !d->stopping; i++)
		worker_post_stop(&d->workers[i]);
	for (i = 0; i < d->nspawned; i++)
		(void)uv_thread_join(&d->workers[i].thread);
	daemon_stats(d, &d->final);
	for (i = 0; i < d->nstarted; i++)
		if (worker_free(&d->workers[i]) != 0)
			rc = -1;
	d->nspawned = d->nstarted = 0;
	return (rc);
}

/* --- start-up ----------------------------------------------------------------- */

/*
 * [process] user: become that user for good. Called between binding and
 * the first thread: the sockets are bound and the first snapshot (keys,
 * CA, map, secrets) was read as root, while no worker thread and no libuv
 * thread pool exist yet (the pool starts with the first uv_queue_work(),
 * a reload), so every thread moat will ever have is born unprivileged.
 */
static int
drop_privileges(struct daemon *d)
{
	char err[1024], who[2 * PRIVDROP_NAME_MAX + 2];

	if (privdrop_apply(d->snap->cfg, &d->snap->run_as, err,
	    sizeof(err)) != 0) {
		log_error("%s", err);
		return (-1);
	}
	log_info("running as %s", privdrop_current(who, sizeof(who)));
	return (0);
}

/* Bind every worker's sockets, drop to [process] user, then start the
 * workers' threads. 0 or -1 (logged). */
static int
start_workers(struct daemon *d)
{
	struct sockaddr_storage addrs[CONFIG_MAX_LISTEN];
	char err[1024];
	unsigned i;
	int r;

	memset(addrs, 0, sizeof(addrs));
	for (i = 0; i < d->nworkers; i++) {
		if (worker_start(&d->workers[i], i, d->nworkers, &d->shared,
		    snapshot_ref(d->snap), addrs, err, sizeof(err)) != 0) {
			snapshot_unref(d->snap);
			log_error("%s", err);
			return (-1);
		}
		d->nstarted++;
	}
	if (drop_privileges(d) != 0)
		return (-1);
	for (i = 0; i < d->nworkers; i++) {
		if ((r = worker_spawn(&d->workers[i])) != 0) {
			log_error("cannot start worker thread %u: %s", i,
			    uv_strerror(r));
			return (-1);
		}
		d->nspawned++;
	}
	return (0);
}

static int
start_signals(struct daemon *d)
{
	int r;

	for (d->nsig = 0; d->nsig < NSIGNALS; d->nsig++) {
		if ((r = uv_signal_init(d->loop, &d->sig[d->nsig])) != 0)
			goto fail;
		d->sig[d->nsig].data = d;
		if ((r = uv_signal_start(&d->sig[d->nsig], on_signal,
		    signals[d->nsig])) != 0) {
			d->nsig++;
			goto fail;
		}
	}
	return (0);

fail:
	log_error("cannot handle signal %d: %s", signals[d->nsig],
	    uv_strerror(r));
	return (-1);
}

/* Close every connection of w: the worker is stopping. */
static void
shutdown_conns(struct worker *w)
{
	conn_close_all(w, CONN_CLOSE_SHUTDOWN);
}

/* A graceful stop: close the connections of w not yet live. */
static void
drain_conns(struct worker *w)
{
	conn_close_unauthenticated(w, CONN_CLOSE_SHUTDOWN);
}

/* drain_timeout passed: end the live ones, server shutting down. */
static void
end_conns(struct worker *w)
{
	conn_end_all(w, MQTT_RC_SERVER_SHUTTING_DOWN, CONN_CLOSE_SHUTDOWN);
}

static const struct worker_conn_ops conn_ops = {
	.accept = conn_accept,
	.shutdown = shutdown_conns,
	.admit_new = conn_admit_new,
	.recheck = conn_recheck,
	.drain = drain_conns,
	.end_all = end_conns,
	.list = conn_list_json,
	.replaced = conn_end_replaced,
};

/* A worker's connections were replaced (idconns.h): it ends them. */
static void
wake_replaced(void *arg, unsigned worker)
{
	struct daemon *d = arg;

	worker_post_replaced(&d->workers[worker]);
}

static int
init_shared(struct daemon *d)
{
	d->shared.conn = &conn_ops;
	atomic_init(&d->shared.next_id, 0);
	atomic_init(&d->shared.handshakes, 0);
	atomic_init(&d->shared.connected, 0);
	if ((d->shared.idconns = idconns_new(d->nworkers, wake_replaced,
	    d)) == NULL) {
		log_error("out of memory");
		return (-1);
	}
	d->watchdog_ns = (uint64_t)notify_watchdog_usec() * 1000;
	d->shared.heartbeat_ms = d->watchdog_ns / 4000000;
	if (d->watchdog_ns > 0 && d->shared.heartbeat_ms == 0)
		d->shared.heartbeat_ms = 1;
	/* /healthz reads the beats too: always beat, at least this often. */
	if (d->shared.heartbeat_ms == 0 ||
	    d->shared.heartbeat_ms > ADMIN_HEARTBEAT_MS)
		d->shared.heartbeat_ms = ADMIN_HEARTBEAT_MS;
	return (0);
}

/* [admin] address: bind it before privileges are dropped; it serves once
 * the control loop runs. 0 or -1 (logged). */
static void
on_listed(uv_async_t *h)
{
	struct daemon *d = h->data;

	admin_listed(d->admin);
}

static int
start_admin(struct daemon *d)
{
	char err[512];
	int r;

	d->view.workers = d->workers;
	d->view.snap = d->snap;
	d->view.last_reload_ok = (int64_t)time(NULL);
	d->admin = admin_start(d->loop, d->snap->cfg->admin_address, &d->view,
	    err, sizeof(err));
	if (d->admin == NULL && err[0] != '\0') {
		log_error("%s", err);
		return (-1);
	}
	if (d->admin == NULL)
		return (0);
	/* Workers send it until they are joined: closed in destroy(). */
	if ((r = uv_async_init(d->loop, &d->listed, on_listed)) != 0) {
		log_error("[admin]: cannot make an async handle: %s",
		    uv_strerror(r));
		return (-1);
	}
	d->listed.data = d;
	d->listed_init = 1;
	uv_unref((uv_handle_t *)&d->listed);
	d->shared.listed = &d->listed;
	return (0);
}

/* Free d after its loop has run out. Returns 0 or -1 (handles open). */
static int
destroy(struct daemon *d, struct daemon_stats *st)
{
	int rc;

	rc = reap_workers(d);
	idconns_free(d->shared.idconns);
	d->shared.idconns = NULL;
	if (d->listed_init) {
		d->listed_init = 0;
		uv_close((uv_handle_t *)&d->listed, on_closed_quietly);
	}
	close_signals(d);
	close_watchdog(d);
	admin_close(d->admin);
	d->admin = NULL;
	watch_close(d->watch);
	if (d->drain_timer_init) {
		d->drain_timer_init = 0;
		uv_close((uv_handle_t *)&d->drain_timer, on_closed_quietly);
	}
	(void)uv_run(d->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(d->loop) != 0)
		rc = -1;
	watch_free(d->watch);
	snapshot_unref(d->snap);
	if (st != NULL)
		*st = d->final;
	free(d->workers);
	free(d);
	return (rc);
}

/*
 * Which assembly fast paths the wolfSSL in use has: without them a full
 * handshake costs several times more CPU (README, "A wolfSSL built for
 * moat").
 */
static void
log_fast_paths(void)
{
	char paths[FAST_PATHS_TEXT_MAX];

	if (tls_library_features(paths, sizeof(paths)) > 0)
		log_info("wolfSSL %s with %s", tls_library_version(), paths);
	else
		log_warn("wolfSSL %s without assembly fast paths: handshakes "
		    "cost several times more; see README, \"A wolfSSL built "
		    "for moat\"", tls_library_version());
}

int
daemon_run(const char *config_path, struct snapshot *snap)
{
	struct daemon_stats st;
	struct daemon *d;
	int rc;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		log_error("out of memory");
		snapshot_unref(snap);
		return (1);
	}
	d->loop = uv_default_loop();
	d->config_path = config_path;
	d->snap = snap;
	d->nworkers = count_workers(snap->cfg);
	if ((d->workers = calloc(d->nworkers, sizeof(*d->workers))) == NULL) {
		log_error("out of memory");
		(void)destroy(d, NULL);
		return (1);
	}
	if (init_shared(d) != 0 || start_admin(d) != 0 ||
	    start_workers(d) != 0 ||
	    start_signals(d) != 0 || start_watchdog(d) != 0 ||
	    (d->watch = watch_start(d->loop, config_path, snap->cfg,
	    on_files_changed, d)) == NULL) {
		(void)destroy(d, NULL);
		return (1);
	}
	d->view.nworkers = d->nspawned;
	if (!snap->cfg->policy_on)
		log_info("%s", POLICY_OFF_NOTICE);
	log_fast_paths();
	log_info("moat %s ready (wolfSSL %s, libuv %s); backend %s; "
	    "%u worker%s", PACKAGE_VERSION, tls_library_version(),
	    uv_version_string(), snap->backend.text, d->nworkers,
	    d->nworkers == 1 ? "" : "s");
	if (notify_send("READY=1") != 0)
		log_warn("cannot notify the service manager at $NOTIFY_SOCKET");
	(void)uv_run(d->loop, UV_RUN_DEFAULT);
	if ((rc = destroy(d, &st)) != 0) {
		log_error("internal error: handles left open at exit");
		return (1);
	}
	log_info("stopped; %llu connections accepted, %llu turned away",
	    (unsigned long long)st.accepted, (unsigned long long)st.refused);
	return (0);
}
