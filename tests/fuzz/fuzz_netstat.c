/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for src/core/netstat.c, the reader of /proc/net/tcp
 * and tcp6 text. The first input byte picks the file's family and byte
 * order, the second the piece size the text is fed in (0: one piece); the
 * rest is the file. Beyond "no crash, no overread", it checks:
 *
 *   - feeding in pieces gives exactly what one piece gives;
 *   - every finding is on the audited port, not loopback, its text is a
 *     terminated string, and no more are stored than the cap;
 *   - every line counts once: sockets + malformed never exceeds the
 *     number of lines.
 *
 * Any broken promise calls abort(). Links src/core/netstat.c and
 * src/core/addr.c and src/core/text.c; tests/fuzz/run.sh style:
 *   clang -fsanitize=fuzzer,address,undefined -I include \
 *       src/core/netstat.c src/core/addr.c src/core/text.c \
 *       tests/fuzz/fuzz_netstat.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "moat/addr.h"
#include "moat/netstat.h"

#define PORT 1883

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int ok)
{
	if (!ok)
		abort();
}

static void
scan_all(struct netstat_scan *s, enum netstat_family fam,
    enum netstat_order order, const char *p, size_t n, size_t piece)
{
	size_t i, k;

	netstat_init(s, PORT, order);
	netstat_begin(s, fam);
	for (i = 0; i < n; i += k) {
		k = piece == 0 || n - i < piece ? n - i : piece;
		netstat_feed(s, p + i, k);
	}
	netstat_end(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct netstat_scan one, many;
	enum netstat_family fam;
	enum netstat_order order;
	const char *p;
	size_t n, i, lines = 1;

	if (size < 2)
		return (0);
	fam = data[0] & 1 ? NETSTAT_TCP6 : NETSTAT_TCP4;
	order = data[0] & 2 ? NETSTAT_BIG_ENDIAN : NETSTAT_LITTLE_ENDIAN;
	p = (const char *)data + 2;
	n = size - 2;
	scan_all(&one, fam, order, p, n, 0);
	scan_all(&many, fam, order, p, n, data[1]);
	check(one.sockets == many.sockets && one.malformed == many.malformed &&
	    one.exposed == many.exposed && one.nfound == many.nfound);
	check(one.nfound <= NETSTAT_FINDINGS_MAX && one.exposed >= one.nfound);
	for (i = 0; i < one.nfound; i++) {
		check(one.found[i].port == PORT);
		check(!addr_is_loopback(one.found[i].kind, one.found[i].ip));
		check(memchr(one.found[i].text, '\0',
		    sizeof(one.found[i].text)) != NULL);
		check(strcmp(one.found[i].text, many.found[i].text) == 0);
	}
	for (i = 0; i < n; i++)
		if (p[i] == '\n')
			lines++;
	check(one.sockets + one.malformed <= lines);
	return (0);
}
