/* SPDX-License-Identifier: MIT */
/*
 * The admin endpoint's /connections, the part that runs on a worker's
 * loop: one JSON object per live connection of that worker, written from
 * the connection's fields (conn_int.h) without changing anything. Strings
 * from certificates and devices are escaped, so any byte is safe here.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "moat/conn.h"
#include "moat/text.h"
#include "moat/worker.h"

#include "conn_int.h"

/* A growing string; failed after an allocation failure. */
struct out {
	char *p;
	size_t len, cap;
	int failed;
};

static void
out_grow(struct out *o, size_t more)
{
	size_t cap;
	char *np;

	if (o->failed || o->len + more < o->cap)
		return;
	cap = (o->len + more + 1) * 2;
	if ((np = realloc(o->p, cap)) == NULL) {
		o->failed = 1;
		return;
	}
	o->p = np;
	o->cap = cap;
}

static void
out_add(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		o->failed = 1;
		return;
	}
	out_grow(o, (size_t)n);
	if (o->failed)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	o->len += (size_t)n;
}

/*
 * "key":"value" with JSON escapes, or "key":null for NULL. Escaped as the
 * JSON log escapes (text.h's rules): control and format characters as
 * \uNNNN, and each byte of invalid UTF-8 as \u00NN, so the output is
 * always valid JSON and never reorders a terminal line.
 */
static void
out_str(struct out *o, const char *key, const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n, k;
	uint32_t cp;

	out_add(o, ",\"%s\":", key);
	if (s == NULL) {
		out_add(o, "null");
		return;
	}
	out_add(o, "\"");
	for (n = strlen(s); n > 0 && !o->failed; p += k, n -= k) {
		if ((k = text_utf8_next(p, n, &cp)) == 0) {
			out_add(o, "\\u%04x", p[0]);
			k = 1;
		} else if (text_is_control(cp) || text_is_format(cp))
			out_add(o, "\\u%04x", (unsigned)cp);
		else if (cp == '"' || cp == '\\')
			out_add(o, "\\%c", (int)cp);
		else
			out_add(o, "%.*s", (int)k, (const char *)p);
	}
	out_add(o, "\"");
}

static void
one(struct out *o, const struct conn *c, uint64_t now_ms, time_t now)
{
	out_add(o, "{\"id\":%llu,\"worker\":%u", (unsigned long long)c->id,
	    c->w->index);
	out_str(o, "state", conn_state_name(c->st));
	out_str(o, "peer", c->peer);
	out_str(o, "subject", c->cert.dn);
	out_str(o, "identity", c->identity);
	out_str(o, "username", c->username);
	out_str(o, "client_id", c->client_id);
	out_add(o, ",\"since\":%lld,\"up\":%llu,\"down\":%llu,"
	    "\"not_after\":%lld}\n",
	    (long long)now - (long long)((now_ms - c->t_start) / 1000),
	    (unsigned long long)c->up.bytes,
	    (unsigned long long)c->down.bytes, (long long)c->cert.not_after);
}

char *
conn_list_json(struct worker *w, unsigned limit)
{
	struct out o = { NULL, 0, 0, 0 };
	const struct conn *c;
	uint64_t now_ms = uv_now(w->loop);
	time_t now = time(NULL);
	unsigned n = 0;

	out_grow(&o, 1);
	for (c = w->conns; c != NULL && n < limit && !o.failed; c = c->next) {
		if (!c->tls_up || c->cert.dn == NULL || c->st == CONN_ST_CLOSED)
			continue;
		one(&o, c, now_ms, now);
		n++;
	}
	if (o.failed) {
		free(o.p);
		return (NULL);
	}
	o.p[o.len] = '\0';
	return (o.p);
}
