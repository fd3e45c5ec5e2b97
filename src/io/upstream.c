/* SPDX-License-Identifier: MIT */
/*
 * The broker side of a device connection: connecting to the broker
 * (loopback TCP or a Unix socket only, as the snapshot's backend says; over
 * TCP from the next [backend] source address when there are any) and
 * reading what it sends into the connection's down pipe. Writing to the
 * broker is the up pipe's queue (pipe.c); states and teardown are conn.c.
 */
#include "config.h"

#include <sys/socket.h>
#include <netinet/in.h>

#include <stdio.h>
#include <string.h>

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

/*
 * Bind the broker socket to the next [backend] source address, if there
 * are any, so that each address has its own source ports. With
 * IP_BIND_ADDRESS_NO_PORT the port is left to connect(2), which may reuse
 * one already bound to another destination; without it bind(2) would
 * take a port for this socket alone. Sets *src for the logs.
 */
static int
be_tcp_bind(struct conn *c, const struct backend_addr *b,
    struct sockaddr_storage *src)
{
	uv_os_fd_t fd;
	int on = 1;

	if (backend_source_sockaddr(b, c->w->index + c->w->source_next++,
	    src) == 0)
		return (0);
#ifdef IP_BIND_ADDRESS_NO_PORT
	/* Only an optimisation: bind(2) works without it. */
	if (uv_fileno(&c->be.h, &fd) == 0)
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on,
		    sizeof(on));
#else
	(void)fd;
	(void)on;
#endif
	return (uv_tcp_bind(&c->be.tcp, (const struct sockaddr *)src, 0));
}

void
upstream_connect(struct conn *c)
{
	const struct backend_addr *b = &c->snap->backend;
	uv_loop_t *loop = c->w->loop;
	struct sockaddr_storage src;
	char detail[256], from[64];
	int r;

	memset(&src, 0, sizeof(src));
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
		/* With a source, the socket exists now, to be bound. */
		r = uv_tcp_init_ex(loop, &c->be.tcp, b->source.count != 0 ?
		    b->sa.ss_family : AF_UNSPEC);
		if (r == 0) {
			c->be_init = 1;
			c->be.h.data = c;
			r = be_tcp_bind(c, b, &src);
		}
		if (r == 0)
			r = uv_tcp_connect(&c->be_req, &c->be.tcp,
			    (const struct sockaddr *)&b->sa, on_be_connect);
	}
	if (r != 0) {
		snprintf(detail, sizeof(detail), "broker %s%s%s: %s", b->text,
		    b->source.count != 0 ? " from " : "",
		    b->source.count != 0 ? backend_format((struct sockaddr *)
		    &src, from, sizeof(from)) : "", uv_strerror(r));
		conn_refuse_unavailable(c, CONN_CLOSE_BACKEND_ERROR, detail);
	}
}

