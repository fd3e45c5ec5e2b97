/* SPDX-License-Identifier: MIT */
/*
 * The broker side of a device connection: connecting to the broker
 * (loopback TCP or a Unix socket only, as the snapshot's backend says) and
 * reading what it sends into the connection's down pipe. Writing to the
 * broker is the up pipe's queue (pipe.c); states and teardown are conn.c.
 */
#include "config.h"

#include <stdio.h>

#include "moat/backend.h"
#include "moat/snapshot.h"
#include "moat/worker.h"

#include "conn_int.h"

void
upstream_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)suggested;
	/* Consumed before upstream_read returns, so one buffer per loop. */
	*buf = uv_buf_init(c->w->scratch, (unsigned)c->w->scratch_len);
}

void
upstream_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	if (c->st != CONN_ST_PROXYING)
		return;
	if (nread > 0) {
		c->last_active = uv_now(c->w->loop);
		(void)pipe_deliver(&c->down, buf->base, (size_t)nread);
	} else if (nread == UV_EOF) {
		conn_close(c, CONN_CLOSE_BACKEND_CLOSED, NULL);
	} else if (nread < 0) {
		conn_close(c, CONN_CLOSE_BACKEND_ERROR,
		    uv_strerror((int)nread));
	}
}

static void
on_be_connect(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	char detail[256];

	if (status == UV_ECANCELED || c->st != CONN_ST_CONNECTING)
		return;
	if (status < 0) {
		snprintf(detail, sizeof(detail), "broker %s: %s",
		    c->snap->backend.text, uv_strerror(status));
		conn_refuse_unavailable(c, CONN_CLOSE_BACKEND_REFUSED, detail);
		return;
	}
	c->be_connected = 1;
	if (!c->snap->backend.is_unix)
		(void)uv_tcp_nodelay(&c->be.tcp, 1);
	conn_broker_up(c);
}

void
upstream_connect(struct conn *c)
{
	const struct backend_addr *b = &c->snap->backend;
	uv_loop_t *loop = c->w->loop;
	char detail[256];
	int r;

	c->be_req.data = c;
	if (b->is_unix) {
		r = uv_pipe_init(loop, &c->be.pipe, 0);
		if (r == 0) {
			c->be_init = 1;
			c->be.h.data = c;
			uv_pipe_connect(&c->be_req, &c->be.pipe, b->path,
			    on_be_connect);
		}
	} else {
		r = uv_tcp_init(loop, &c->be.tcp);
		if (r == 0) {
			c->be_init = 1;
			c->be.h.data = c;
			r = uv_tcp_connect(&c->be_req, &c->be.tcp,
			    (const struct sockaddr *)&b->sa, on_be_connect);
		}
	}
	if (r != 0) {
		snprintf(detail, sizeof(detail), "broker %s: %s", b->text,
		    uv_strerror(r));
		conn_refuse_unavailable(c, CONN_CLOSE_BACKEND_ERROR, detail);
	}
}

