/* SPDX-License-Identifier: MIT */
/*
 * One worker: a thread with its own libuv loop, its listening sockets and
 * its connections (worker.h). Each socket is created by hand so that
 * SO_REUSEPORT can be set before bind (libuv 1.44 has no flag for it),
 * then handed to libuv with uv_tcp_open. The daemon posts snapshots and
 * the stop request through one uv_async per worker.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/filter.h>

#include "moat/admit.h"
#include "moat/backend.h"
#include "moat/config.h"
#include "moat/idconns.h"
#include "moat/worker.h"
#include "moat/log.h"
#include "moat/snapshot.h"
#include "moat/tls.h"

#define SECONDS_PER_DAY 86400

#define BACKLOG     511
#define SCRATCH_LEN 16384
/*
 * Connections re-checked per loop iteration after a reload: each check
 * maps an identity again (a regex and an HMAC at most, some
 * microseconds), so a slice stalls the loop for about a millisecond, and
 * 100,000 connections are through in well under the 2 s promised.
 */
#define SWEEP_SLICE 512

static void
on_connection(uv_stream_t *server, int status)
{
	struct worker *w = server->data;

	if (status < 0) {
		log_warn("accept: %s", uv_strerror(status));
		return;
	}
	if (w->stopping || w->drained != WORKER_DRAIN_NONE)
		return;
	w->shared->conn->accept(w, server);
}

static socklen_t
sa_len(const struct sockaddr_storage *sa)
{
	return (sa->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in));
}

/* A bound, non-blocking socket for sa; -1 with err on failure. */
static int
bind_socket(const struct sockaddr_storage *sa, char *err, size_t errlen,
    const char *spec, unsigned nworkers)
{
	int fd, one = 1;

	fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0) {
		snprintf(err, errlen, "listen %s: socket: %s", spec,
		    strerror(errno));
		return (-1);
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/*
	 * SO_REUSEPORT is for several worker loops of one moat sharing an
	 * address. With a single loop it would only let a second, stray moat
	 * bind the same port and silently take part of the connections, so
	 * it is set only when there is more than one worker.
	 */
#ifdef SO_REUSEPORT
	if (nworkers > 1)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
		    sizeof(one));
#endif
	if (sa->ss_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
		    sizeof(one));
	if (bind(fd, (const struct sockaddr *)sa, sa_len(sa)) != 0) {
		snprintf(err, errlen, "listen %s: bind: %s%s", spec,
		    strerror(errno), errno == EACCES ?
		    " (ports below 1024 need CAP_NET_BIND_SERVICE)" :
		    errno == EADDRINUSE ?
		    " (another program uses this port; stop it or pick another"
		    " [listen] address)" : "");
		close(fd);
		return (-1);
	}
	return (fd);
}

/*
 * With several workers, steer each connection by its source address (IPv4)
 * or /64 (IPv6) instead of by the kernel's 4-tuple hash, so that all the
 * connections of one peer land on one worker and the per-address handshake
 * budget (admit.h, kept per worker) holds for the peer as a whole. The
 * classic BPF program returns the index of the socket in the SO_REUSEPORT
 * group, which is the worker's index (workers listen in order). Returns 0,
 * or -1 when the kernel refuses it (connections are then spread by hash).
 */
static int
steer_by_peer(int fd, int family, unsigned nworkers)
{
#ifdef SO_ATTACH_REUSEPORT_CBPF
	/* Offsets of the source address in the IPv4 and IPv6 headers. */
	struct sock_filter v4[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12),
		BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 2654435761u),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, nworkers),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_filter v6[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 8),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, 2654435761u),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, nworkers),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	struct sock_fprog prog;

	if (family == AF_INET6) {
		prog.len = sizeof(v6) / sizeof(v6[0]);
		prog.filter = v6;
	} else {
		prog.len = sizeof(v4) / sizeof(v4[0]);
		prog.filter = v4;
	}
	return (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog,
	    sizeof(prog)) == 0 ? 0 : -1);
#else
	(void)fd;
	(void)family;
	(void)nworkers;
	return (-1);
#endif
}

static void
on_closed_quietly(uv_handle_t *h)
{
	(void)h;
}

/* "FILE:LINE: " prefix for listen address i, into buf. */
static const char *
listen_where(const struct config *cfg, unsigned i, char *buf, size_t len)
{
	if (cfg->listen_line[i] > 0)
		snprintf(buf, len, "%s:%d", cfg->path, cfg->listen_line[i]);
	else
		snprintf(buf, len, "%s", cfg->path);
	return (buf);
}

/*
 * Open listener i of w on addr (worker 0 parses it from the config first
 * and writes back what it bound). Returns 0 or -1 with err.
 */
static int
open_listener(struct worker *w, unsigned i, unsigned nworkers,
    struct sockaddr_storage *addr, char *err, size_t errlen)
{
	const struct config *cfg = w->snap->cfg;
	char where[512], msg[512], text[128];
	int fd, r, blen;

	if (w->index == 0 && backend_parse_listen(cfg->listen[i], addr, msg,
	    sizeof(msg)) != 0) {
		snprintf(err, errlen, "%s:%d: %s", cfg->path,
		    cfg->listen_line[i], msg);
		return (-1);
	}
	if ((fd = bind_socket(addr, msg, sizeof(msg), cfg->listen[i],
	    nworkers)) < 0) {
		snprintf(err, errlen, "%s: %s", listen_where(cfg, i, where,
		    sizeof(where)), msg);
		return (-1);
	}
	if ((r = uv_tcp_init(w->loop, &w->listeners[i])) != 0) {
		close(fd);
		snprintf(err, errlen, "listen %s: %s", cfg->listen[i],
		    uv_strerror(r));
		return (-1);
	}
	w->listeners[i].data = w;
	w->nlisteners++;
	if ((r = uv_tcp_open(&w->listeners[i], fd)) != 0)
		close(fd);      /* not taken over by the handle */
	else
		r = uv_listen((uv_stream_t *)&w->listeners[i], BACKLOG,
		    on_connection);
	if (r != 0) {
		snprintf(err, errlen, "listen %s: %s", cfg->listen[i],
		    uv_strerror(r));
		return (-1);
	}
	if (nworkers > 1 && w->index == 0 && steer_by_peer(fd,
	    addr->ss_family, nworkers) != 0)
		log_warn("listen %s: cannot steer connections by source "
		    "address (%s): one address's handshakes are counted per "
		    "worker", cfg->listen[i], strerror(errno));
	blen = sizeof(*addr);
	if (w->index == 0 && uv_tcp_getsockname(&w->listeners[i],
	    (struct sockaddr *)addr, &blen) == 0)
		log_info("listening on %s", backend_format(
		    (const struct sockaddr *)addr, text, sizeof(text)));
	return (0);
}

static void on_wake(uv_async_t *a);

/* Close the listening sockets: new connections are refused from now. */
static void
close_listeners(struct worker *w)
{
	unsigned i;

	for (i = 0; i < w->nlisteners; i++)
		uv_close((uv_handle_t *)&w->listeners[i], on_closed_quietly);
	w->nlisteners = 0;
}

/* The steps of a graceful stop posted so far and not yet taken. */
static void
drain(struct worker *w)
{
	enum worker_drain want = atomic_load(&w->drain_posted);

	if (w->stopping)
		return;
	if (want >= WORKER_DRAIN_START && w->drained < WORKER_DRAIN_START) {
		w->drained = WORKER_DRAIN_START;
		close_listeners(w);
		w->shared->conn->drain(w);
	}
	if (want >= WORKER_DRAIN_END && w->drained < WORKER_DRAIN_END) {
		w->drained = WORKER_DRAIN_END;
		w->shared->conn->end_all(w);
	}
}

/* Stop accepting and close every connection; the loop then runs out. */
static void
stop(struct worker *w)
{

	if (w->stopping)
		return;
	w->stopping = 1;
	close_listeners(w);
	/* No one may wake w once its wake-up handle closes. */
	idconns_retire(w->shared->idconns, w->index);
	if (w->wake_init)
		uv_close((uv_handle_t *)&w->wake, on_closed_quietly);
	if (w->sweep_init)
		uv_close((uv_handle_t *)&w->sweep_timer, on_closed_quietly);
	if (w->heart_init)
		uv_close((uv_handle_t *)&w->heart, on_closed_quietly);
	w->sweep = NULL;
	w->shared->conn->shutdown(w);
}

/* The loop is alive: the daemon's watchdog reads this. */
static void
on_heart(uv_timer_t *t)
{
	struct worker *w = t->data;

	atomic_store(&w->beat, uv_hrtime());
}

/* Beat every heartbeat_ms from the loop. 0 or -1 with err. */
static int
start_heart(struct worker *w, char *err, size_t errlen)
{
	int r;

	atomic_store(&w->beat, uv_hrtime());
	if ((r = uv_timer_init(w->loop, &w->heart)) != 0) {
		snprintf(err, errlen, "worker %u: timer: %s", w->index,
		    uv_strerror(r));
		return (-1);
	}
	w->heart.data = w;
	w->heart_init = 1;
	(void)uv_timer_start(&w->heart, on_heart, w->shared->heartbeat_ms,
	    w->shared->heartbeat_ms);
	return (0);
}

/* The loop, the wake-up handle and the scratch buffer. 0 or -1 + err. */
static int
init_loop(struct worker *w, char *err, size_t errlen)
{
	int r;

	if ((w->scratch = malloc(w->scratch_len)) == NULL ||
	    (w->dev_in = malloc(WORKER_DEV_IN_LEN)) == NULL ||
	    (w->admit = w->shared->conn->admit_new(w)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	admit_share(w->admit, &w->shared->handshakes, &w->shared->connected);
	if ((r = uv_loop_init(&w->loop_storage)) != 0) {
		snprintf(err, errlen, "worker %u: event loop: %s", w->index,
		    uv_strerror(r));
		return (-1);
	}
	w->loop = &w->loop_storage;
	w->loop_init = 1;
	if ((r = uv_async_init(w->loop, &w->wake, on_wake)) != 0) {
		snprintf(err, errlen, "worker %u: async: %s", w->index,
		    uv_strerror(r));
		return (-1);
	}
	w->wake.data = w;
	w->wake_init = 1;
	if ((r = uv_timer_init(w->loop, &w->sweep_timer)) != 0) {
		snprintf(err, errlen, "worker %u: timer: %s", w->index,
		    uv_strerror(r));
		return (-1);
	}
	w->sweep_timer.data = w;
	w->sweep_init = 1;
	if (w->shared->heartbeat_ms > 0 && start_heart(w, err, errlen) != 0)
		return (-1);
	return (0);
}

int
worker_start(struct worker *w, unsigned index, unsigned nworkers,
    struct worker_shared *shared, struct snapshot *snap,
    struct sockaddr_storage *addrs, char *err, size_t errlen)
{
	unsigned i;

	memset(w, 0, sizeof(*w));
	w->index = index;
	w->shared = shared;
	w->snap = snap;
	atomic_init(&w->posted, NULL);
	atomic_init(&w->stop_posted, 0);
	atomic_init(&w->drain_posted, WORKER_DRAIN_NONE);
	atomic_init(&w->beat, 0);
	atomic_init(&w->list_posted, 0);
	atomic_init(&w->list_reply, NULL);
	atomic_init(&w->list_done, 0);
	atomic_init(&w->replaced_posted, 0);
	w->scratch_len = SCRATCH_LEN;
	if (init_loop(w, err, errlen) != 0)
		goto fail;
	for (i = 0; i < snap->cfg->nlisten; i++)
		if (open_listener(w, i, nworkers, &addrs[i], err,
		    errlen) != 0)
			goto fail;
	return (0);

fail:
	w->snap = NULL;         /* the caller keeps its reference */
	(void)worker_free(w);
	return (-1);
}

/* One slice of the re-check; the timer runs again while some are left. */
static void
on_sweep(uv_timer_t *t)
{
	struct worker *w = t->data;

	if (w->stopping || !w->shared->conn->recheck(w, SWEEP_SLICE))
		(void)uv_timer_stop(t);
}

/* A connection list was asked for (worker_post_list): answer it. */
static void
answer_list(struct worker *w)
{
	unsigned want = atomic_exchange(&w->list_posted, 0);

	if (want == 0)
		return;
	atomic_store(&w->list_reply, w->shared->conn->list(w, want - 1));
	atomic_store(&w->list_done, 1);
	(void)uv_async_send(w->shared->listed);
}

static void
on_wake(uv_async_t *a)
{
	struct worker *w = a->data;
	struct snapshot *snap, *old;

	snap = atomic_exchange(&w->posted, NULL);
	if (snap != NULL) {
		old = w->snap;
		w->snap = snap;
		snapshot_unref(old);
		/* Every live connection is checked against it, from the
		 * newest; those accepted from now on use it already. */
		w->sweep = w->conns;
		if (w->sweep != NULL && !w->stopping)
			(void)uv_timer_start(&w->sweep_timer, on_sweep, 0, 1);
	}
	answer_list(w);
	if (atomic_exchange(&w->replaced_posted, 0) && !w->stopping)
		w->shared->conn->replaced(w);
	drain(w);
	if (atomic_load(&w->stop_posted))
		stop(w);
}

static void
run(void *arg)
{
	struct worker *w = arg;

	(void)uv_run(w->loop, UV_RUN_DEFAULT);
	tls_thread_cleanup();
}

int
worker_spawn(struct worker *w)
{
	return (uv_thread_create(&w->thread, run, w));
}

void
worker_post_snapshot(struct worker *w, struct snapshot *snap)
{
	snapshot_unref(atomic_exchange(&w->posted, snap));
	(void)uv_async_send(&w->wake);
}

void
worker_post_drain(struct worker *w, enum worker_drain step)
{
	atomic_store(&w->drain_posted, step);
	(void)uv_async_send(&w->wake);
}

void
worker_post_replaced(struct worker *w)
{
	atomic_store(&w->replaced_posted, 1);
	(void)uv_async_send(&w->wake);
}

void
worker_post_stop(struct worker *w)
{
	atomic_store(&w->stop_posted, 1);
	(void)uv_async_send(&w->wake);
}

int
worker_free(struct worker *w)
{
	int rc = 0;

	if (w->loop_init) {
		/* Never spawned, or start-up failed: close what is open. */
		stop(w);
		(void)uv_run(w->loop, UV_RUN_DEFAULT);
		if (uv_loop_close(w->loop) != 0)
			rc = -1;
		w->loop_init = 0;
	}
	free(w->scratch);
	w->scratch = NULL;
	free(w->dev_in);
	w->dev_in = NULL;
	admit_free(w->admit);
	w->admit = NULL;
	snapshot_unref(atomic_exchange(&w->posted, NULL));
	snapshot_unref(w->snap);
	w->snap = NULL;
	free(atomic_exchange(&w->list_reply, NULL));
	return (rc);
}

void
worker_post_list(struct worker *w, unsigned limit)
{
	atomic_store(&w->list_done, 0);
	free(atomic_exchange(&w->list_reply, NULL));
	atomic_store(&w->list_posted, limit + 1);
	(void)uv_async_send(&w->wake);
}

int
worker_take_list(struct worker *w, char **json)
{
	if (!atomic_load(&w->list_done))
		return (0);
	atomic_store(&w->list_done, 0);
	*json = atomic_exchange(&w->list_reply, NULL);
	return (1);
}

uint64_t
worker_conn_id(struct worker *w)
{
	return (atomic_fetch_add_explicit(&w->shared->next_id, 1,
	    memory_order_relaxed) + 1);
}

void
worker_count_close(struct worker *w, enum conn_reason why, int64_t days)
{
	if ((unsigned)why < CONN_NREASONS)
		WORKER_COUNT(w, closed[why], 1);
	if (days < 0)
		return;
	WORKER_COUNT(w, days_left[worker_days_bucket(days)], -1);
	WORKER_COUNT(w, days_sum, -(uint64_t)days);
}

int64_t
worker_count_cert(struct worker *w, int64_t not_after)
{
	int64_t days = (not_after - (int64_t)time(NULL)) / SECONDS_PER_DAY;

	if (days < 0)
		days = 0;
	WORKER_COUNT(w, days_left[worker_days_bucket(days)], 1);
	WORKER_COUNT(w, days_sum, days);
	return (days);
}

int
worker_days_bucket(int64_t days)
{
	static const int64_t le[] = {
#define X(n) n,
		WORKER_DAYS_BUCKETS(X)
#undef X
	};
	int i;

	for (i = 0; i < WORKER_NDAYS - 1; i++)
		if (days <= le[i])
			return (i);
	return (WORKER_NDAYS - 1);
}
