/* SPDX-License-Identifier: MIT */
/*
 * One direction of a connection: read, deliver through a hook, and queue
 * writes with water marks (see pipe.h).
 */
#include "config.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "moat/pipe.h"

struct pipe_wreq {
	uv_write_t req;
	struct pipe *p;
	char data[];
};

void
pipe_init(struct pipe *p, const struct pipe_ops *ops, void *owner,
    uv_stream_t *source, uv_stream_t *sink)
{
	memset(p, 0, sizeof(*p));
	p->ops = ops;
	p->owner = owner;
	p->source = source;
	p->sink = sink;
}

int
pipe_read(struct pipe *p, int on)
{
	int r;

	assert(p->source != NULL);
	if (on && !p->reading) {
		if ((r = uv_read_start(p->source, p->ops->alloc,
		    p->ops->read)) != 0)
			return (r);
		p->reading = 1;
	} else if (!on && p->reading) {
		(void)uv_read_stop(p->source);
		p->reading = 0;
	}
	return (0);
}

int
pipe_deliver(struct pipe *p, const char *data, size_t len)
{
	p->bytes += len;
	if (p->total != NULL)
		atomic_store_explicit(p->total, atomic_load_explicit(p->total,
		    memory_order_relaxed) + len, memory_order_relaxed);
	return (p->ops->deliver(p, data, len));
}

static void
on_written(uv_write_t *req, int status)
{
	struct pipe_wreq *wr = (struct pipe_wreq *)req;
	struct pipe *p = wr->p;

	free(wr);
	if (status < 0) {
		if (status != UV_ECANCELED)
			p->ops->failed(p, status);
		return;
	}
	if (p->ops->progress != NULL)
		p->ops->progress(p);
	if (p->sink->write_queue_size <= PIPE_LOW_WATER)
		p->ops->drained(p);
}

int
pipe_write(struct pipe *p, const char *data, size_t len)
{
	struct pipe_wreq *wr;
	uv_buf_t b;
	int n;

	assert(p->sink != NULL);
	if (p->sink->write_queue_size == 0) {
		b = uv_buf_init((char *)data, (unsigned)len);
		n = uv_try_write(p->sink, &b, 1);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		} else if (n != UV_EAGAIN && n != UV_ENOSYS) {
			return (-1);
		}
		if (len == 0)
			return (0);
	}
	if ((wr = malloc(sizeof(*wr) + len)) == NULL)
		return (-1);
	wr->p = p;
	memcpy(wr->data, data, len);
	b = uv_buf_init(wr->data, (unsigned)len);
	if (uv_write(&wr->req, p->sink, &b, 1, on_written) != 0) {
		free(wr);
		return (-1);
	}
	return (0);
}

size_t
pipe_queued(const struct pipe *p)
{
	return (p->sink != NULL ? p->sink->write_queue_size : 0);
}

int
pipe_full(const struct pipe *p)
{
	return (pipe_queued(p) > PIPE_HIGH_WATER);
}
