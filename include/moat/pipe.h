/* SPDX-License-Identifier: MIT */
/*
 * One direction of a device connection: device to broker ("up") or broker
 * to device ("down"). A connection owns two pipes. A pipe
 *
 *   reads its source stream (start and stop, with the owner's buffers),
 *   hands what it reads to its delivery hook, which sees the plaintext on
 *     its way (up: the CONNECT rewrite until the CONNECT is done; down:
 *     pass-through into TLS), counts the bytes, and
 *   queues writes to its sink stream: as much as the kernel takes at once,
 *     the rest copied into a request. Above PIPE_HIGH_WATER queued bytes
 *     the owner stops reading whatever feeds this pipe; once a write
 *     brings the queue down to PIPE_LOW_WATER the pipe calls the owner's
 *     drained callback to resume it.
 *
 * The pipe knows nothing of TLS, MQTT or the connection's states: those
 * stay with the owner (conn.c), which passes them in through pipe_ops.
 */
#ifndef MOAT_PIPE_H
#define MOAT_PIPE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define PIPE_HIGH_WATER (256 * 1024)    /* pause the feeding side above */
#define PIPE_LOW_WATER  (64 * 1024)     /* and resume at or below this */

struct pipe;

struct pipe_ops {
	/* The delivery hook: plaintext read from this direction's source,
	 * on its way to the sink. Returns 0, or -1 when the owner closed. */
	int (*deliver)(struct pipe *p, const char *data, size_t len);
	/* A queued write finished (any queue size). May be NULL. */
	void (*progress)(struct pipe *p);
	/* A queued write finished and the queue is at or below LOW_WATER. */
	void (*drained)(struct pipe *p);
	/* A queued write failed with status (never UV_ECANCELED). */
	void (*failed)(struct pipe *p, int status);
	/* Buffers and data for reading the source (uv_read_start). */
	uv_alloc_cb alloc;
	uv_read_cb read;
};

struct pipe {
	const struct pipe_ops *ops;
	void *owner;                    /* the connection; not owned */
	uv_stream_t *source;            /* read from; NULL until set */
	uv_stream_t *sink;              /* written to; NULL until set */
	uint64_t bytes;                 /* delivered through the hook */
	atomic_uint_fast64_t *total;    /* counted here too (a counter
	                                 * written by this loop only), or
	                                 * NULL; set by the owner */
	int reading;                    /* source is being read */
	int paused;                     /* by backpressure on the way */
};

/* Set p up for owner with ops; source and sink may be NULL for now. */
void pipe_init(struct pipe *p, const struct pipe_ops *ops, void *owner,
    uv_stream_t *source, uv_stream_t *sink);

/* Start (on) or stop reading the source. Returns 0 or a libuv error;
 * starting what reads already, or stopping what does not, is 0. */
int pipe_read(struct pipe *p, int on);

/* Count len bytes and hand them to the delivery hook; its result. */
int pipe_deliver(struct pipe *p, const char *data, size_t len);

/* Queue len bytes (copied as needed) for the sink. Returns 0 or -1. */
int pipe_write(struct pipe *p, const char *data, size_t len);

/* Bytes waiting in the sink's write queue (0 without a sink). */
size_t pipe_queued(const struct pipe *p);

/* The sink's queue is above PIPE_HIGH_WATER. */
int pipe_full(const struct pipe *p);

#endif
