/* SPDX-License-Identifier: MIT */
/*
 * The admin endpoint's request head reader (src/core/http.c): what it
 * accepts, what it refuses and when it asks for more bytes.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "moat/http.h"

#define CAP 4096

static enum http_parse
parse(const char *s, struct http_request *r)
{
	return (http_parse_request(s, strlen(s), CAP, r));
}

Test(http, simple_get)
{
	struct http_request r;
	const char *s = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";

	cr_assert_eq(parse(s, &r), HTTP_DONE);
	cr_assert_str_eq(r.method, "GET");
	cr_assert_str_eq(r.path, "/metrics");
	cr_assert_str_eq(r.query, "");
	cr_assert_eq(r.head_len, strlen(s));
}

Test(http, query_and_no_headers)
{
	struct http_request r;

	cr_assert_eq(parse("GET /connections?limit=5 HTTP/1.0\r\n\r\n", &r),
	    HTTP_DONE);
	cr_assert_str_eq(r.path, "/connections");
	cr_assert_str_eq(r.query, "limit=5");
}

Test(http, other_method_is_read)
{
	struct http_request r;

	cr_assert_eq(parse("POST / HTTP/1.1\r\n\r\n", &r), HTTP_DONE);
	cr_assert_str_eq(r.method, "POST");
}

Test(http, incomplete_asks_for_more)
{
	struct http_request r;

	cr_assert_eq(parse("", &r), HTTP_MORE);
	cr_assert_eq(parse("GET /hea", &r), HTTP_MORE);
	cr_assert_eq(parse("GET /healthz HTTP/1.1\r\n", &r), HTTP_MORE);
	cr_assert_eq(parse("GET /healthz HTTP/1.1\r\nHost: a\r\n", &r),
	    HTTP_MORE);
	cr_assert_eq(parse("GET /healthz HTTP/1.1\r\nHost: a\r\n\r", &r),
	    HTTP_MORE);
}

Test(http, bad_request_line_is_refused_early)
{
	struct http_request r;

	cr_assert_eq(parse("GET  /x HTTP/1.1\r\n", &r), HTTP_BAD);
	cr_assert_eq(parse("GET x HTTP/1.1\r\n", &r), HTTP_BAD);
	cr_assert_eq(parse("GET /x HTTP/1.1 \r\n", &r), HTTP_BAD);
	cr_assert_eq(parse("GET /x\r\n", &r), HTTP_BAD);
	cr_assert_eq(parse("G(T /x HTTP/1.1\r\n", &r), HTTP_BAD);
	cr_assert_eq(parse("GET /x HTTP/1\r\n", &r), HTTP_BAD);
	cr_assert_eq(parse("GET /x http/1.1\r\n", &r), HTTP_BAD);
	cr_assert_eq(parse("\r\n", &r), HTTP_BAD);
}

Test(http, other_versions)
{
	struct http_request r;

	cr_assert_eq(parse("GET / HTTP/2.0\r\n\r\n", &r), HTTP_BAD_VERSION);
	cr_assert_eq(parse("GET / HTTP/1.9\r\n\r\n", &r), HTTP_DONE);
}

Test(http, bad_headers)
{
	struct http_request r;

	cr_assert_eq(parse("GET / HTTP/1.1\r\nHost x\r\n\r\n", &r), HTTP_BAD);
	cr_assert_eq(parse("GET / HTTP/1.1\r\n: x\r\n\r\n", &r), HTTP_BAD);
	cr_assert_eq(parse("GET / HTTP/1.1\r\n folded\r\n\r\n", &r),
	    HTTP_BAD);
	cr_assert_eq(parse("GET / HTTP/1.1\r\nA: b\nc\r\n\r\n", &r),
	    HTTP_BAD);
	cr_assert_eq(parse("GET / HTTP/1.1\r\nA: b\001\r\n\r\n", &r),
	    HTTP_BAD);
}

Test(http, nul_byte_is_refused)
{
	struct http_request r;
	const char s[] = "GET /a\0b HTTP/1.1\r\n\r\n";

	cr_assert_eq(http_parse_request(s, sizeof(s) - 1, CAP, &r), HTTP_BAD);
}

Test(http, long_target_is_refused)
{
	struct http_request r;
	char s[600];

	memset(s, 'a', sizeof(s));
	memcpy(s, "GET /", 5);
	memcpy(s + 5 + HTTP_TARGET_MAX, " HTTP/1.1\r\n\r\n", 14);
	cr_assert_eq(parse(s, &r), HTTP_BAD);
}

Test(http, cap_is_enforced)
{
	struct http_request r;
	char s[64];

	strcpy(s, "GET / HTTP/1.1\r\nX: aaaaaaaaaaaaaaaaaaaa\r\n\r\n");
	cr_assert_eq(http_parse_request(s, strlen(s), 30, &r),
	    HTTP_TOO_LARGE);
	cr_assert_eq(http_parse_request(s, 20, 30, &r), HTTP_MORE);
	cr_assert_eq(http_parse_request(s, strlen(s), strlen(s), &r),
	    HTTP_DONE);
	cr_assert_eq(http_parse_request(s, strlen(s), strlen(s) - 1, &r),
	    HTTP_TOO_LARGE);
}
