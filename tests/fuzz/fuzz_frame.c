/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for mqtt_frame() in src/core/mqtt.c, the framer that
 * cuts a device's stream into packets. The first input byte picks the cap
 * (0: none, else a multiple of 64 bytes); the rest is the stream. Beyond
 * "no crash, no overread", it checks the framer's promises:
 *
 *   - it never claims more bytes than it was given, and walking the
 *     stream packet by packet ends exactly where the accepted bytes end;
 *   - an accepted packet re-reads identically from a buffer of exactly
 *     its size, its header is the shortest encoding of what was read, and
 *     every prefix of it is only MQTT_INCOMPLETE;
 *   - the cap only ever turns an answer into MQTT_TOO_LARGE, with the
 *     same header, and the CONNECT parser's fixed-header reader agrees
 *     with the framer.
 *
 * Any broken promise calls abort(), which libFuzzer reports as a crash.
 * Build and run with tests/fuzz/run.sh.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moat/mqtt.h"

#define CAP_UNIT 64
#define PREFIXES_MAX 64     /* prefixes of a packet checked one by one */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int ok)
{
	if (!ok)
		abort();
}

static int
same_frame(const struct mqtt_frame *a, const struct mqtt_frame *b)
{
	return (a->type == b->type && a->flags == b->flags &&
	    a->hdr_len == b->hdr_len && a->rem_len == b->rem_len &&
	    a->total == b->total);
}

/* mqtt_frame() on a copy of p[0..n) in a buffer of exactly n bytes. */
static enum mqtt_status
frame_exact(const uint8_t *p, size_t n, size_t max, struct mqtt_frame *f)
{
	const char *why = NULL;
	enum mqtt_status st;
	uint8_t *copy;

	copy = malloc(n > 0 ? n : 1);
	check(copy != NULL);
	if (n > 0)
		memcpy(copy, p, n);
	st = mqtt_frame(copy, n, max, f, &why);
	check(why != NULL && why[0] != '\0');
	free(copy);
	return (st);
}

/* The fields must fit what the status says. */
static void
check_shape(enum mqtt_status st, const struct mqtt_frame *f, size_t len,
    size_t max)
{
	struct mqtt_frame zero;

	memset(&zero, 0, sizeof(zero));
	switch (st) {
	case MQTT_OK:
		check(f->total <= len && f->total <= max);
		/* FALLTHROUGH */
	case MQTT_TOO_LARGE:
		check(f->type >= MQTT_PKT_CONNECT && f->type <= MQTT_PKT_AUTH);
		check(f->hdr_len >= 2 && f->hdr_len <= 5);
		check(f->rem_len <= MQTT_REMAINING_MAX);
		check(f->total == f->hdr_len + f->rem_len);
		check(st != MQTT_TOO_LARGE || f->total > max);
		break;
	case MQTT_INCOMPLETE:
		check(f->hdr_len == 0 ? same_frame(f, &zero) :
		    f->total > len && f->hdr_len <= len && f->total <= max);
		break;
	case MQTT_MALFORMED:
		check(same_frame(f, &zero));
		break;
	default:
		check(0);
	}
}

/* The header is the shortest encoding of what the framer read. */
static void
check_header(const uint8_t *p, const struct mqtt_frame *f)
{
	uint8_t hdr[5];
	size_t n = 0, v = f->rem_len;

	hdr[n++] = (uint8_t)(f->type << 4 | f->flags);
	do {
		hdr[n] = (uint8_t)(v & 0x7f);
		v >>= 7;
		if (v != 0)
			hdr[n] |= 0x80;
		n++;
	} while (v != 0);
	check(n == f->hdr_len);
	check(memcmp(hdr, p, n) == 0);
}

/* An accepted packet, read again on its own and cut short. */
static void
check_packet(const uint8_t *p, const struct mqtt_frame *f, size_t max)
{
	struct mqtt_frame g;
	size_t n, step;

	check_header(p, f);
	check(frame_exact(p, f->total, max, &g) == MQTT_OK);
	check(same_frame(f, &g));
	check(frame_exact(p, f->total, f->total, &g) == MQTT_OK);
	if (f->total > 0)
		check(frame_exact(p, f->total, f->total - 1, &g) ==
		    MQTT_TOO_LARGE && same_frame(f, &g));
	step = f->total > PREFIXES_MAX ? f->total / PREFIXES_MAX : 1;
	for (n = 0; n < f->total; n += step)
		check(frame_exact(p, n, max, &g) == MQTT_INCOMPLETE);
	check(frame_exact(p, f->total - 1, max, &g) == MQTT_INCOMPLETE);
}

/* With and without the cap, and through the CONNECT header reader. */
static void
check_cap(const uint8_t *p, size_t len, enum mqtt_status st,
    const struct mqtt_frame *f)
{
	struct mqtt_frame g;
	const char *why = NULL;
	enum mqtt_status open, need;
	size_t total = 0;

	/* p ends where libFuzzer's exactly sized input ends: no copy. */
	open = mqtt_frame(p, len, SIZE_MAX, &g, &why);
	check(why != NULL && why[0] != '\0');
	check_shape(open, &g, len, SIZE_MAX);
	check(open != MQTT_TOO_LARGE);
	if (st == MQTT_TOO_LARGE)
		check((open == MQTT_OK || open == MQTT_INCOMPLETE) &&
		    same_frame(f, &g));
	else
		check(open == st && same_frame(f, &g));

	if (len == 0 || p[0] >> 4 != MQTT_PKT_CONNECT)
		return;
	need = mqtt_connect_need(p, len, &total, &why);
	check(why != NULL);
	if (open == MQTT_OK || (open == MQTT_INCOMPLETE && g.hdr_len != 0))
		check(need == MQTT_OK && total == g.total);
	else
		check(need == open && total == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mqtt_frame f;
	const char *why = NULL;
	enum mqtt_status st;
	size_t max, off = 0;

	if (size < 1)
		return (0);
	max = data[0] == 0 ? SIZE_MAX : (size_t)data[0] * CAP_UNIT;
	data++;
	size--;

	/* Walk the stream as a connection would. */
	for (;;) {
		st = mqtt_frame(data + off, size - off, max, &f, &why);
		check(why != NULL && why[0] != '\0');
		check_shape(st, &f, size - off, max);
		check_cap(data + off, size - off, st, &f);
		if (st != MQTT_OK)
			break;
		check(f.total <= size - off);
		check_packet(data + off, &f, max);
		off += f.total;
	}
	check(off <= size);
	return (0);
}
