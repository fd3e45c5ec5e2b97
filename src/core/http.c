/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 request head reader of the admin endpoint (http.h): a
 * cursor over the received bytes that never goes past their end, one
 * function per piece of the grammar (RFC 9112 sections 3 and 5, without
 * obsolete forms).
 */
#include <stddef.h>
#include <string.h>

#include "moat/http.h"

struct cursor {
	const char *p;
	const char *end;
};

/* RFC 9110 tchar. */
static int
is_tchar(unsigned char ch)
{
	if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9'))
		return (1);
	return (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Visible ASCII, as allowed in a request target. */
static int
is_vchar(unsigned char ch)
{
	return (ch > 0x20 && ch < 0x7f);
}

/* Position of the first CRLF at or after c->p, or NULL. */
static const char *
find_crlf(const struct cursor *c)
{
	const char *q;

	for (q = c->p; q + 1 < c->end; q++)
		if (q[0] == '\r' && q[1] == '\n')
			return (q);
	return (NULL);
}

/* Take a run of bytes accepted by ok, 1..max long, into out (NUL ended),
 * stopping at the first byte ok refuses. 0 or -1. */
static int
take_run(struct cursor *c, int (*ok)(unsigned char), char *out, size_t max)
{
	size_t n = 0;

	while (c->p < c->end && ok((unsigned char)*c->p)) {
		if (n == max)
			return (-1);
		out[n++] = *c->p++;
	}
	out[n] = '\0';
	return (n > 0 ? 0 : -1);
}

/* Take the single byte ch. 0 or -1. */
static int
take_byte(struct cursor *c, char ch)
{
	if (c->p >= c->end || *c->p != ch)
		return (-1);
	c->p++;
	return (0);
}

/* "HTTP/1.x": HTTP_DONE, HTTP_BAD_VERSION for another version, HTTP_BAD. */
static enum http_parse
take_version(struct cursor *c)
{
	static const char prefix[] = "HTTP/";
	const size_t n = sizeof(prefix) - 1;

	if ((size_t)(c->end - c->p) != n + 3 || memcmp(c->p, prefix, n) != 0)
		return (HTTP_BAD);
	c->p += n;
	if (c->p[0] < '0' || c->p[0] > '9' || c->p[1] != '.' ||
	    c->p[2] < '0' || c->p[2] > '9')
		return (HTTP_BAD);
	return (c->p[0] == '1' ? HTTP_DONE : HTTP_BAD_VERSION);
}

/* The request line, c spanning it without its CRLF. */
static enum http_parse
request_line(struct cursor c, struct http_request *req)
{
	char target[HTTP_TARGET_MAX + 1], *q;

	if (take_run(&c, is_tchar, req->method, HTTP_METHOD_MAX) != 0 ||
	    take_byte(&c, ' ') != 0 ||
	    take_run(&c, is_vchar, target, HTTP_TARGET_MAX) != 0 ||
	    target[0] != '/' || take_byte(&c, ' ') != 0)
		return (HTTP_BAD);
	if ((q = strchr(target, '?')) != NULL) {
		*q = '\0';
		memcpy(req->query, q + 1, strlen(q + 1) + 1);
	} else
		req->query[0] = '\0';
	memcpy(req->path, target, strlen(target) + 1);
	return (take_version(&c));
}

/* One header line, c spanning it without its CRLF. 0 or -1. */
static int
header_line(struct cursor c)
{
	unsigned char ch;

	if (c.p >= c.end || !is_tchar((unsigned char)*c.p))
		return (-1);
	while (c.p < c.end && is_tchar((unsigned char)*c.p))
		c.p++;
	if (take_byte(&c, ':') != 0)
		return (-1);
	for (; c.p < c.end; c.p++) {
		ch = (unsigned char)*c.p;
		if (ch != ' ' && ch != '\t' && (ch < 0x21 || ch == 0x7f))
			return (-1);
	}
	return (0);
}

enum http_parse
http_parse_request(const char *buf, size_t len, size_t cap,
    struct http_request *req)
{
	struct http_request r;
	struct cursor c = { buf, buf + (len < cap ? len : cap) }, line;
	const char *eol;
	enum http_parse rc;

	if ((eol = find_crlf(&c)) == NULL)
		return (len >= cap ? HTTP_TOO_LARGE : HTTP_MORE);
	line.p = c.p;
	line.end = eol;
	if ((rc = request_line(line, &r)) != HTTP_DONE)
		return (rc);
	c.p = eol + 2;
	for (;;) {
		if ((eol = find_crlf(&c)) == NULL)
			return (len >= cap ? HTTP_TOO_LARGE : HTTP_MORE);
		if (eol == c.p)
			break;
		line.p = c.p;
		line.end = eol;
		if (header_line(line) != 0)
			return (HTTP_BAD);
		c.p = eol + 2;
	}
	r.head_len = (size_t)(eol + 2 - buf);
	*req = r;
	return (HTTP_DONE);
}
