/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for src/core/mqtt.c, the parser of the first bytes an
 * unauthenticated device sends. Beyond "no crash, no overread", it checks
 * the codec's promises on every CONNECT the parser accepts:
 *
 *   - the encoding of the parsed struct is exactly the accepted bytes
 *     (variable byte integers must be minimal, so there is one encoding);
 *   - it parses again to identical fields;
 *   - an output buffer one byte short makes the encoder return 0;
 *   - every prefix of it is only MQTT_INCOMPLETE (checked one byte short);
 *   - replacing the credentials (username := client id, no password)
 *     yields a CONNECT that parses to the new values.
 *
 * Any broken promise calls abort(), which libFuzzer reports as a crash.
 * Buffers are allocated at their exact sizes so that AddressSanitizer sees
 * any access past them. Build and run with tests/fuzz/run.sh.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moat/mqtt.h"

#define MAX MQTT_CONNECT_MAX_DEFAULT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int ok)
{
	if (!ok)
		abort();
}

static void
same_view(const struct mqtt_str *a, const struct mqtt_str *b)
{
	check((a->p == NULL) == (b->p == NULL));
	check(a->len == b->len);
	if (a->len > 0)
		check(memcmp(a->p, b->p, a->len) == 0);
}

static void
same_connect(const struct mqtt_connect *a, const struct mqtt_connect *b)
{
	check(a->level == b->level);
	check(a->flags == b->flags);
	check(a->keepalive == b->keepalive);
	check(a->has_auth == b->has_auth);
	same_view(&a->props, &b->props);
	same_view(&a->client_id, &b->client_id);
	same_view(&a->will_props, &b->will_props);
	same_view(&a->will_topic, &b->will_topic);
	same_view(&a->will_payload, &b->will_payload);
	same_view(&a->username, &b->username);
	same_view(&a->password, &b->password);
}

/* Parse a copy of p[0..n) in a buffer of exactly n bytes. */
static enum mqtt_status
parse_exact(const uint8_t *p, size_t n, uint8_t **copy,
    struct mqtt_connect *c, size_t *used)
{
	const char *why = NULL;
	enum mqtt_status st;

	*copy = malloc(n > 0 ? n : 1);
	check(*copy != NULL);
	if (n > 0)
		memcpy(*copy, p, n);
	st = mqtt_connect_parse(*copy, n, MAX, c, used, &why);
	check(why != NULL && why[0] != '\0');
	return (st);
}

/* Encode c into a buffer of exactly its size; checks the size promises. */
static uint8_t *
encode_exact(const struct mqtt_connect *c, size_t *n)
{
	uint8_t *out;

	*n = mqtt_connect_size(c);
	check(*n >= 2);
	out = malloc(*n);
	check(out != NULL);
	check(mqtt_connect_encode(c, out, *n - 1) == 0);
	check(mqtt_connect_encode(c, out, *n) == *n);
	return (out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mqtt_connect c, d, r;
	const char *why = NULL;
	enum mqtt_status st;
	uint8_t *out, *copy, *prefix;
	size_t used, n, used2;
	uint8_t flags;

	st = mqtt_connect_parse(data, size, MAX, &c, &used, &why);
	check(why != NULL && why[0] != '\0');
	check(st >= MQTT_OK && st <= MQTT_TOO_LARGE);
	if (st != MQTT_OK) {
		check(used == 0);
		check(c.client_id.p == NULL && c.username.p == NULL);
		return (0);
	}
	check(used >= 2 && used <= size && used <= MAX);
	check(c.level >= 3 && c.level <= 5);

	/* Flags as the encoder derives them are the flags received. */
	flags = c.flags & (MQTT_CF_WILL | MQTT_CF_WILL_QOS |
	    MQTT_CF_WILL_RETAIN | MQTT_CF_CLEAN);
	if (c.username.p != NULL)
		flags |= MQTT_CF_USERNAME;
	if (c.password.p != NULL)
		flags |= MQTT_CF_PASSWORD;
	check(flags == c.flags);

	/* Encode: the very same bytes, which parse to the same fields. */
	out = encode_exact(&c, &n);
	check(n == used);
	check(memcmp(out, data, n) == 0);
	st = mqtt_connect_parse(out, n, MAX, &d, &used2, &why);
	check(st == MQTT_OK && used2 == n);
	same_connect(&c, &d);
	free(out);

	/* One byte short is a valid prefix. */
	st = parse_exact(data, used - 1, &prefix, &d, &used2);
	check(st == MQTT_INCOMPLETE && used2 == 0);
	free(prefix);

	/* Replace the credentials as the identity layer would. */
	r = c;
	r.username = c.client_id;
	r.password.p = NULL;
	r.password.len = 0;
	out = encode_exact(&r, &n);
	st = parse_exact(out, n, &copy, &d, &used2);
	check(st == MQTT_OK && used2 == n);
	same_view(&d.username, &c.client_id);
	check(d.password.p == NULL);
	check(d.flags == ((c.flags & ~MQTT_CF_PASSWORD) | MQTT_CF_USERNAME));
	same_view(&d.client_id, &c.client_id);
	same_view(&d.props, &c.props);
	same_view(&d.will_props, &c.will_props);
	same_view(&d.will_topic, &c.will_topic);
	same_view(&d.will_payload, &c.will_payload);
	check(d.has_auth == c.has_auth && d.keepalive == c.keepalive);
	free(copy);
	free(out);
	return (0);
}
