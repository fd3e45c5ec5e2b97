/* SPDX-License-Identifier: MIT */
/*
 * Listening sockets and the worker they belong to. Each socket is created by
 * hand so that SO_REUSEPORT can be set before bind (libuv 1.44 has no flag
 * for it), then handed to libuv with uv_tcp_open.
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "moat/admit.h"
#include "moat/backend.h"
#include "moat/config.h"
#include "moat/conn.h"
#include "moat/worker.h"
#include "moat/log.h"
#include "moat/snapshot.h"

#define BACKLOG     511
#define SCRATCH_LEN 16384

static void
on_connection(uv_stream_t *server, int status)
{
	struct worker *w = server->data;

	if (status < 0) {
		log_warn("accept: %s", uv_strerror(status));
		return;
	}
	if (w->stopping)
		return;
	conn_accept(w, server);
}

/* A bound, non-blocking socket for sa; -1 with err on failure. */
static int
bind_socket(const struct sockaddr_storage *sa, char *err, size_t errlen,
    const char *spec, unsigned nworkers)
{
	socklen_t len = sa->ss_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
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
	if (bind(fd, (const struct sockaddr *)sa, len) != 0) {
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

static void
on_listener_closed(uv_handle_t *h)
{
	(void)h;
}

int
worker_start(struct worker *w, uv_loop_t *loop, struct snapshot *snap,
    char *err, size_t errlen)
{
	const struct config *cfg = snap->cfg;
	struct sockaddr_storage sa, bound;
	char where[512], msg[512], text[128];
	unsigned i;
	int fd, r, blen;

	memset(w, 0, sizeof(*w));
	w->loop = loop;
	w->snap = snap;
	w->scratch_len = SCRATCH_LEN;
	if ((w->scratch = malloc(w->scratch_len)) == NULL ||
	    (w->admit = conn_admit_new(w)) == NULL) {
		free(w->scratch);
		w->scratch = NULL;
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	for (i = 0; i < cfg->nlisten; i++) {
		if (backend_parse_listen(cfg->listen[i], &sa, msg,
		    sizeof(msg)) != 0) {
			snprintf(err, errlen, "%s:%d: %s", cfg->path,
			    cfg->listen_line[i], msg);
			goto fail;
		}
		if ((fd = bind_socket(&sa, msg, sizeof(msg),
		    cfg->listen[i], 1)) < 0) {
			snprintf(where, sizeof(where), "%s:%d", cfg->path,
			    cfg->listen_line[i]);
			snprintf(err, errlen, "%s: %s", cfg->listen_line[i] > 0 ?
			    where : cfg->path, msg);
			goto fail;
		}
		uv_tcp_init(loop, &w->listeners[i]);
		w->listeners[i].data = w;
		w->nlisteners++;
		if ((r = uv_tcp_open(&w->listeners[i], fd)) != 0)
			close(fd);      /* not taken over by the handle */
		else
			r = uv_listen((uv_stream_t *)&w->listeners[i],
			    BACKLOG, on_connection);
		if (r != 0) {
			snprintf(err, errlen, "listen %s: %s", cfg->listen[i],
			    uv_strerror(r));
			goto fail;
		}
		blen = sizeof(bound);
		if (uv_tcp_getsockname(&w->listeners[i],
		    (struct sockaddr *)&bound, &blen) == 0)
			log_info("listening on %s", backend_format(
			    (struct sockaddr *)&bound, text, sizeof(text)));
	}
	return (0);

fail:
	for (i = 0; i < w->nlisteners; i++)
		uv_close((uv_handle_t *)&w->listeners[i], on_listener_closed);
	w->nlisteners = 0;
	free(w->scratch);
	w->scratch = NULL;
	admit_free(w->admit);
	w->admit = NULL;
	w->snap = NULL;
	return (-1);
}

void
worker_swap(struct worker *w, struct snapshot *snap)
{
	struct snapshot *old = w->snap;

	w->snap = snap;
	snapshot_unref(old);
}

void
worker_free(struct worker *w)
{
	free(w->scratch);
	w->scratch = NULL;
	admit_free(w->admit);
	w->admit = NULL;
	snapshot_unref(w->snap);
	w->snap = NULL;
}

void
worker_stop(struct worker *w)
{
	unsigned i;

	if (w->stopping)
		return;
	w->stopping = 1;
	for (i = 0; i < w->nlisteners; i++)
		uv_close((uv_handle_t *)&w->listeners[i], on_listener_closed);
	w->nlisteners = 0;
	conn_close_all(w, CONN_CLOSE_SHUTDOWN);
}
