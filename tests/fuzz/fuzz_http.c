/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for src/core/http.c, the admin endpoint's request head
 * reader. Beyond "no crash, no overread", it checks:
 *
 *   - a complete head ends within the input and the cap, and its method
 *     and path are terminated strings, the path starting with '/';
 *   - feeding a prefix never gives HTTP_DONE with a longer head, and a
 *     verdict other than HTTP_MORE on a prefix stays the same on the
 *     whole input (the reader decides on what it has seen).
 *
 * Any broken promise calls abort(). tests/fuzz/run.sh style:
 *   clang -fsanitize=fuzzer,address,undefined -I include \
 *       src/core/http.c tests/fuzz/fuzz_http.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moat/http.h"

#define CAP 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int ok)
{
	if (!ok)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request r, rp;
	enum http_parse all, part;
	char *copy;
	size_t cut;

	/* An exact-size heap copy, so that ASan sees any overread. */
	if ((copy = malloc(size > 0 ? size : 1)) == NULL)
		return (0);
	memcpy(copy, data, size);
	all = http_parse_request(copy, size, CAP, &r);
	if (all == HTTP_DONE) {
		check(r.head_len <= size && r.head_len <= CAP);
		check(memchr(r.method, '\0', sizeof(r.method)) != NULL);
		check(memchr(r.path, '\0', sizeof(r.path)) != NULL);
		check(memchr(r.query, '\0', sizeof(r.query)) != NULL);
		check(r.path[0] == '/');
	}
	cut = size / 2;
	part = http_parse_request(copy, cut, CAP, &rp);
	if (part == HTTP_DONE)
		check(all == HTTP_DONE && rp.head_len == r.head_len);
	else if (part != HTTP_MORE)
		check(part == all);
	free(copy);
	return (0);
}
