/* SPDX-License-Identifier: MIT */
/*
 * A strict reader of one HTTP/1.1 request head (request line and header
 * lines, up to the empty line), for the admin endpoint. Pure: it reads
 * bytes already received and never allocates; the input is untrusted, so
 * every step is bounded by the length given and by HTTP_TARGET_MAX.
 *
 * Accepted: "METHOD SP /target SP HTTP/1.x CRLF", then header lines
 * "name: value CRLF" (name a token, value visible bytes, spaces and tabs;
 * no obsolete line folding), then CRLF. Anything else is malformed.
 */
#ifndef MOAT_HTTP_H
#define MOAT_HTTP_H

#include <stddef.h>

#define HTTP_METHOD_MAX 16    /* longest method read */
#define HTTP_TARGET_MAX 256   /* longest request target read */

enum http_parse {
	HTTP_MORE = 0,        /* no complete head yet, nothing wrong so far */
	HTTP_DONE,            /* a complete, well-formed head: req is set */
	HTTP_BAD,             /* malformed: answer 400 */
	HTTP_TOO_LARGE,       /* no head within the cap: answer 431 */
	HTTP_BAD_VERSION,     /* not HTTP/1.x: answer 505 */
};

struct http_request {
	char method[HTTP_METHOD_MAX + 1];
	char path[HTTP_TARGET_MAX + 1];   /* the target up to '?' */
	char query[HTTP_TARGET_MAX + 1];  /* after '?', or "" */
	size_t head_len;                  /* bytes of the head, final CRLF
	                                   * included */
};

/*
 * Read the request head from buf[0..len). cap is the most a head may
 * take: without a complete head in the first cap bytes the answer is
 * HTTP_TOO_LARGE. The request line is checked as soon as it is complete,
 * so garbage is refused before the rest arrives. Fills req (caller-owned)
 * only with HTTP_DONE.
 */
enum http_parse http_parse_request(const char *buf, size_t len, size_t cap,
    struct http_request *req);

#endif
