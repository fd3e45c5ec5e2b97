/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/core/addr.c, the address rules without sockets: the
 * IPv4 and IPv6 literal parsers (accepted and refused forms, boundaries,
 * and agreement with the C library's inet_pton(3) on a table of inputs, so
 * that writing them out by hand changed nothing), the loopback and "any
 * address" rules on bytes, and how backend and listen addresses are
 * classified without resolving anything.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "moat/addr.h"

static char err[1024];

TestSuite(addr);

static void
v4_is(const char *s, unsigned a, unsigned b, unsigned c, unsigned d)
{
	unsigned char ip[ADDR_IPV4_LEN];
	const unsigned char want[ADDR_IPV4_LEN] = {
		(unsigned char)a, (unsigned char)b, (unsigned char)c,
		(unsigned char)d
	};

	cr_assert_eq(addr_parse_ipv4(s, ip), 0, "refused %s", s);
	cr_assert_arr_eq(ip, want, sizeof(want), "%s", s);
}

static void
v6_is(const char *s, const char *hex)
{
	unsigned char ip[ADDR_IPV6_LEN], want[ADDR_IPV6_LEN];
	size_t i;
	unsigned byte;

	cr_assert_eq(strlen(hex), 2 * ADDR_IPV6_LEN);
	for (i = 0; i < ADDR_IPV6_LEN; i++) {
		cr_assert_eq(sscanf(hex + 2 * i, "%2x", &byte), 1);
		want[i] = (unsigned char)byte;
	}
	cr_assert_eq(addr_parse_ipv6(s, ip), 0, "refused %s", s);
	cr_assert_arr_eq(ip, want, sizeof(want), "%s", s);
}

/* --- IPv4 ------------------------------------------------------------- */

Test(addr, ipv4_accepted)
{
	v4_is("127.0.0.1", 127, 0, 0, 1);
	v4_is("0.0.0.0", 0, 0, 0, 0);
	v4_is("255.255.255.255", 255, 255, 255, 255);
	v4_is("1.2.3.4", 1, 2, 3, 4);
	v4_is("10.0.100.199", 10, 0, 100, 199);
	v4_is("192.168.1.10", 192, 168, 1, 10);
}

Test(addr, ipv4_refused)
{
	static const char *bad[] = {
		"", ".", "1", "1.2", "1.2.3", "1.2.3.4.5", "127.1",
		"256.0.0.1", "1.2.3.256", "999.1.1.1", "1000.1.1.1",
		"01.2.3.4", "1.2.3.04", "00.0.0.0", "0x7f.0.0.1", "0177.0.0.1",
		"1..2.3", ".1.2.3", "1.2.3.4.", "1.2.3.", " 1.2.3.4",
		"1.2.3.4 ", "1.2.3.4\n", "+1.2.3.4", "-1.2.3.4", "1.2.3.a",
		"3232235786", "1.2.3.4/8", "1.2.3.4:80", "::1", "localhost",
		"0000000001.2.3.4",
	};
	unsigned char ip[ADDR_IPV4_LEN] = { 9, 9, 9, 9 };
	const unsigned char untouched[ADDR_IPV4_LEN] = { 9, 9, 9, 9 };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(addr_parse_ipv4(bad[i], ip), -1, "accepted \"%s\"",
		    bad[i]);
		cr_assert_arr_eq(ip, untouched, sizeof(ip),
		    "\"%s\" wrote to out", bad[i]);
	}
}

/* --- IPv6 ------------------------------------------------------------- */

Test(addr, ipv6_accepted)
{
	v6_is("::", "00000000000000000000000000000000");
	v6_is("::1", "00000000000000000000000000000001");
	v6_is("1::", "00010000000000000000000000000000");
	v6_is("2001:db8::7", "20010db8000000000000000000000007");
	v6_is("2001:DB8::A:b", "20010db80000000000000000000a000b");
	v6_is("1:2:3:4:5:6:7:8", "00010002000300040005000600070008");
	v6_is("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
	    "ffffffffffffffffffffffffffffffff");
	v6_is("0000:0000:0000:0000:0000:0000:0000:0001",
	    "00000000000000000000000000000001");
	v6_is("1:2:3:4:5:6:7::", "00010002000300040005000600070000");
	v6_is("::2:3:4:5:6:7:8", "00000002000300040005000600070008");
	v6_is("1:2:3::6:7:8", "00010002000300000000000600070008");
	v6_is("fe80::1", "fe800000000000000000000000000001");
	v6_is("::ffff:127.0.0.1", "00000000000000000000ffff7f000001");
	v6_is("::ffff:10.0.0.1", "00000000000000000000ffff0a000001");
	v6_is("::127.0.0.1", "0000000000000000000000007f000001");
	v6_is("1:2:3:4:5:6:1.2.3.4", "00010002000300040005000601020304");
	v6_is("1::1.2.3.4", "00010000000000000000000001020304");
	v6_is("::1.2.3.4", "00000000000000000000000001020304");
}

Test(addr, ipv6_refused)
{
	static const char *bad[] = {
		"", ":", ":::", ":1", "1:", "1::2::3", "::1::", "1:::2",
		"1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::",
		"::1:2:3:4:5:6:7:8", "1::2:3:4:5:6:7:8", "12345::",
		"::12345", "1:2:3:4:5:6:7:g", "g::", "[::1]", "::1%lo",
		"::1/128", " ::1", "::1 ", "::1\n", "1.2.3.4", "::1.2.3",
		"::1.2.3.4.5", "::01.2.3.4", "::256.1.1.1", "::1.2.3.4:5",
		"1.2.3.4::", "1:2:3:4:5:6:7:1.2.3.4", "::1:2:3:4:5:6:1.2.3.4",
		"::ab.1.2.3", "::ffff:127.1", ":::1", "1:2:3:4:5:6:7:8:",
		"fe80:::1", "0x1::", "-1::", "+1::",
	};
	unsigned char ip[ADDR_IPV6_LEN], untouched[ADDR_IPV6_LEN];
	size_t i;

	memset(ip, 0x5a, sizeof(ip));
	memset(untouched, 0x5a, sizeof(untouched));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(addr_parse_ipv6(bad[i], ip), -1, "accepted \"%s\"",
		    bad[i]);
		cr_assert_arr_eq(ip, untouched, sizeof(ip),
		    "\"%s\" wrote to out", bad[i]);
	}
}

/* Long inputs are refused without reading past the first wrong byte. */
Test(addr, long_inputs)
{
	char s[4096];
	unsigned char ip[ADDR_IPV6_LEN];
	size_t i;

	for (i = 0; i + 2 < sizeof(s); i += 2)
		memcpy(s + i, "1:", 2);
	s[i] = '\0';
	cr_assert_eq(addr_parse_ipv6(s, ip), -1);
	memset(s, '1', sizeof(s) - 1);
	s[sizeof(s) - 1] = '\0';
	cr_assert_eq(addr_parse_ipv6(s, ip), -1);
	cr_assert_eq(addr_parse_ipv4(s, ip), -1);
	memset(s, ':', sizeof(s) - 1);
	cr_assert_eq(addr_parse_ipv6(s, ip), -1);
	memset(s, '0', sizeof(s) - 1);
	cr_assert_eq(addr_parse_ipv4(s, ip), -1);
}

/* --- agreement with inet_pton(3) -------------------------------------- */

static const char *const pton_table[] = {
	/* IPv4 */
	"0.0.0.0", "127.0.0.1", "255.255.255.255", "1.2.3.4", "01.2.3.4",
	"1.02.3.4", "1.2.3.004", "0.0.0.00", "256.1.1.1", "1.1.1.256",
	"1.1.1", "1.1.1.1.1", "127.1", "0x7f.0.0.1", "1.1.1.1.", ".1.1.1.1",
	"1..1.1", "1.1.1.1 ", "3232235786", "", "1", ".",
	/* IPv6 */
	"::", "::1", "1::", ":::", ":", "::1::", "1::2::3", "2001:db8::7",
	"2001:DB8::a:B", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9",
	"1:2:3:4:5:6:7", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
	"1:2:3:4:5:6:7::8", "1::2:3:4:5:6:7:8", "::1:2:3:4:5:6:7:8",
	"00000::", "0000::", "fffff::", "ffff::", "1:", ":1", "1:::2",
	"fe80::1", "fe80::1%eth0", "::ffff:127.0.0.1", "::ffff:127.1",
	"::ffff:1.2.3.04", "::1.2.3.4", "::1.2.3", "::1.2.3.4.5",
	"1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4",
	"::1:2:3:4:5:6:1.2.3.4", "::1:2:3:4:5:1.2.3.4", "1.2.3.4::",
	"::1.2.3.4:1", "::ab.1.2.3", "::a1.2.3.4", "::1.2.3.4 ",
	"1:2:3:4:5:6:7:8:", "[::1]", "::1/64", "0:0:0:0:0:0:0:0",
	"::ffff:255.255.255.255", "::ffff:256.0.0.0", "1::1.2.3.4",
	"a:b:c:d:e:f:0:1", "A:B:C:D:E:F:0:1", "g::1", "::g",
};

Test(addr, agrees_with_inet_pton)
{
	unsigned char mine[ADDR_IPV6_LEN], libc[ADDR_IPV6_LEN];
	size_t i;
	int ok_mine, ok_libc;

	for (i = 0; i < sizeof(pton_table) / sizeof(pton_table[0]); i++) {
		const char *s = pton_table[i];

		ok_mine = addr_parse_ipv4(s, mine) == 0;
		ok_libc = inet_pton(AF_INET, s, libc) == 1;
		cr_assert_eq(ok_mine, ok_libc, "IPv4 \"%s\": addr %d, "
		    "inet_pton %d", s, ok_mine, ok_libc);
		if (ok_mine)
			cr_assert_arr_eq(mine, libc, ADDR_IPV4_LEN, "\"%s\"",
			    s);

		ok_mine = addr_parse_ipv6(s, mine) == 0;
		ok_libc = inet_pton(AF_INET6, s, libc) == 1;
		cr_assert_eq(ok_mine, ok_libc, "IPv6 \"%s\": addr %d, "
		    "inet_pton %d", s, ok_mine, ok_libc);
		if (ok_mine)
			cr_assert_arr_eq(mine, libc, ADDR_IPV6_LEN, "\"%s\"",
			    s);
	}
}

/* Every one-byte change of a few valid addresses: same verdict as libc. */
Test(addr, agrees_with_inet_pton_mutations)
{
	static const char *const seeds[] = {
		"127.0.0.1", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "fe80::1",
	};
	static const char alphabet[] = "0159afAFg:.x %";
	unsigned char mine[ADDR_IPV6_LEN], libc[ADDR_IPV6_LEN];
	char s[64];
	size_t i, pos, k;

	for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		for (pos = 0; pos < strlen(seeds[i]); pos++) {
			for (k = 0; k < sizeof(alphabet) - 1; k++) {
				snprintf(s, sizeof(s), "%s", seeds[i]);
				s[pos] = alphabet[k];
				cr_assert_eq(addr_parse_ipv4(s, mine) == 0,
				    inet_pton(AF_INET, s, libc) == 1,
				    "IPv4 \"%s\"", s);
				cr_assert_eq(addr_parse_ipv6(s, mine) == 0,
				    inet_pton(AF_INET6, s, libc) == 1,
				    "IPv6 \"%s\"", s);
			}
		}
	}
}

/* --- loopback and "any address" --------------------------------------- */

static int
loop4(const char *s)
{
	unsigned char ip[ADDR_IPV4_LEN];

	cr_assert_eq(addr_parse_ipv4(s, ip), 0, "%s", s);
	return (addr_is_loopback(ADDR_IPV4, ip));
}

static int
loop6(const char *s)
{
	unsigned char ip[ADDR_IPV6_LEN];

	cr_assert_eq(addr_parse_ipv6(s, ip), 0, "%s", s);
	return (addr_is_loopback(ADDR_IPV6, ip));
}

Test(addr, loopback_boundaries)
{
	cr_assert_eq(loop4("127.0.0.0"), 1);
	cr_assert_eq(loop4("127.0.0.1"), 1);
	cr_assert_eq(loop4("127.255.255.255"), 1);
	cr_assert_eq(loop4("126.255.255.255"), 0);
	cr_assert_eq(loop4("128.0.0.0"), 0);
	cr_assert_eq(loop4("0.0.0.0"), 0);
	cr_assert_eq(loop6("::1"), 1);
	cr_assert_eq(loop6("::ffff:127.0.0.0"), 1);
	cr_assert_eq(loop6("::ffff:127.255.255.255"), 1);
	cr_assert_eq(loop6("::ffff:126.255.255.255"), 0);
	cr_assert_eq(loop6("::ffff:128.0.0.0"), 0);
	cr_assert_eq(loop6("::fffe:127.0.0.1"), 0);
	cr_assert_eq(loop6("1::ffff:127.0.0.1"), 0);
	cr_assert_eq(loop6("::127.0.0.1"), 0);     /* v4-compatible: no */
	cr_assert_eq(loop6("::"), 0);
	cr_assert_eq(loop6("::2"), 0);
	cr_assert_eq(loop6("1::1"), 0);
	cr_assert_eq(loop6("fe80::1"), 0);
	cr_assert_eq(addr_is_loopback(ADDR_NAME,
	    (const unsigned char *)"\x7f\0\0\1"), 0);
	cr_assert_eq(addr_is_loopback(ADDR_IPV4, NULL), 0);
}

Test(addr, unspecified)
{
	unsigned char ip[ADDR_IPV6_LEN];

	cr_assert_eq(addr_parse_ipv4("0.0.0.0", ip), 0);
	cr_assert_eq(addr_is_unspecified(ADDR_IPV4, ip), 1);
	cr_assert_eq(addr_parse_ipv4("0.0.0.1", ip), 0);
	cr_assert_eq(addr_is_unspecified(ADDR_IPV4, ip), 0);
	cr_assert_eq(addr_parse_ipv6("::", ip), 0);
	cr_assert_eq(addr_is_unspecified(ADDR_IPV6, ip), 1);
	cr_assert_eq(addr_parse_ipv6("::1", ip), 0);
	cr_assert_eq(addr_is_unspecified(ADDR_IPV6, ip), 0);
	cr_assert_eq(addr_is_unspecified(ADDR_IPV6, NULL), 0);
}

/* --- backend and listen addresses, nothing resolved ------------------- */

Test(addr, backend_kinds)
{
	struct addr a;

	cr_assert_eq(addr_parse_backend("127.0.0.2:1883", &a, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(a.kind, ADDR_IPV4);
	cr_assert_eq(a.port, 1883);
	cr_assert_eq(a.ip[0], 127);
	cr_assert_eq(a.ip[3], 2);

	cr_assert_eq(addr_parse_backend("[::1]:65535", &a, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(a.kind, ADDR_IPV6);
	cr_assert_eq(a.port, 65535);
	cr_assert_eq(a.ip[15], 1);

	/* A name is only spelled right here; snapshot.c resolves it. */
	cr_assert_eq(addr_parse_backend("broker.example:1883", &a, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(a.kind, ADDR_NAME);
	cr_assert_str_eq(a.host, "broker.example");
	cr_assert_eq(a.port, 1883);
	cr_assert_eq(addr_parse_backend("no-such-host.invalid:1", &a, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(a.kind, ADDR_NAME);
	/* Not a strict literal, so a name: resolved and checked later. */
	cr_assert_eq(addr_parse_backend("127.1:1883", &a, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(a.kind, ADDR_NAME);

	cr_assert_eq(addr_parse_backend("unix:/run/m.sock", &a, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(a.kind, ADDR_UNIX);
	cr_assert_str_eq(a.path, "/run/m.sock");
}

Test(addr, backend_refused)
{
	static const struct {
		const char *spec;
		const char *why;
	} bad[] = {
		{ "192.168.1.10:1883", "is not a loopback address: moat sends "
		    "plaintext MQTT to the broker, which must never leave "
		    "this host" },
		{ "[::ffff:10.0.0.1]:1883", "is not a loopback address" },
		{ "[::127.0.0.1]:1883", "is not a loopback address" },
		{ "0.0.0.0:1883", "means \"any address\", not loopback" },
		{ "[::]:1883", "means \"any address\"" },
		{ "127.0.0.1:0", "from 1 to 65535" },
		{ "127.0.0.1:65536", "from 1 to 65535" },
		{ "[127.0.0.1]:1883", "is not an IPv6 address" },
		{ "[::1%lo]:1883", "is not an IPv6 address" },
		{ "local host:1", "is not an IPv4 address or a host name" },
		{ "unix:sock", "must be absolute" },
		{ "::1:1883", "without brackets" },
		{ "", "empty" },
	};
	struct addr a;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_assert_eq(addr_parse_backend(bad[i].spec, &a, err,
		    sizeof(err)), -1, "accepted %s", bad[i].spec);
		cr_assert_not_null(strstr(err, bad[i].why), "%s: %s",
		    bad[i].spec, err);
	}
	cr_assert_eq(addr_parse_backend(NULL, &a, err, sizeof(err)), -1);
}

Test(addr, listen_forms)
{
	struct addr a;

	cr_assert_eq(addr_parse_listen("*:8883", &a, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(a.kind, ADDR_IPV4);
	cr_assert(addr_is_unspecified(a.kind, a.ip));
	cr_assert_eq(a.port, 8883);
	cr_assert_eq(addr_parse_listen("[::]:0", &a, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(a.kind, ADDR_IPV6);
	cr_assert_eq(a.port, 0);
	cr_assert_eq(addr_parse_listen("192.0.2.7:65535", &a, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(a.ip[3], 7);
	cr_assert_eq(addr_parse_listen("localhost:8883", &a, err,
	    sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "host names are not accepted"));
	cr_assert_eq(addr_parse_listen("127.1:8883", &a, err, sizeof(err)),
	    -1);
	cr_assert_eq(addr_parse_listen("1.2.3.4:65536", &a, err,
	    sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "from 0 to 65535"));
}

/* --- [backend] source ------------------------------------------------- */

Test(addr, source_accepted)
{
	struct addr_source s;
	unsigned char ip[ADDR_IPV6_LEN];

	cr_assert_eq(addr_parse_source("127.0.0.2-127.0.0.9", &s, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(s.kind, ADDR_IPV4);
	cr_assert_eq(s.count, 8);
	cr_assert_eq(s.first[3], 2);

	cr_assert_eq(addr_parse_source("127.0.0.5", &s, err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(s.count, 1);
	cr_assert_eq(addr_parse_source("127.0.0.5-127.0.0.5", &s, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(s.count, 1);

	cr_assert_eq(addr_parse_source("::1", &s, err, sizeof(err)), 0, "%s",
	    err);
	cr_assert_eq(s.kind, ADDR_IPV6);
	cr_assert_eq(s.count, 1);

	/* Across an octet, and the largest range allowed. */
	cr_assert_eq(addr_parse_source("127.0.0.250-127.0.1.5", &s, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(s.count, 12);
	addr_source_nth(&s, 7, ip);
	cr_assert(ip[0] == 127 && ip[1] == 0 && ip[2] == 1 && ip[3] == 1);
	cr_assert_eq(addr_parse_source("127.1.0.1-127.1.1.0", &s, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(s.count, ADDR_SOURCE_MAX);
}

Test(addr, source_nth_round_robin)
{
	struct addr_source s;
	unsigned char ip[ADDR_IPV6_LEN];
	unsigned i;

	cr_assert_eq(addr_parse_source("127.0.0.2-127.0.0.5", &s, err,
	    sizeof(err)), 0, "%s", err);
	for (i = 0; i < 12; i++) {
		addr_source_nth(&s, i, ip);
		cr_assert(ip[0] == 127 && ip[1] == 0 && ip[2] == 0);
		cr_assert_eq(ip[3], 2 + i % 4, "address %u", i);
	}
	cr_assert_eq(addr_parse_source("::1", &s, err, sizeof(err)), 0);
	addr_source_nth(&s, 5, ip);
	cr_assert_eq(ip[15], 1);
	cr_assert_eq(ip[0], 0);
}

Test(addr, source_refused)
{
	static const struct {
		const char *spec;
		const char *why;
	} bad[] = {
		{ "", "source is empty" },
		{ "10.0.0.2", "10.0.0.2 is not a loopback address" },
		{ "127.0.0.2-10.0.0.9", "10.0.0.9 is not a loopback" },
		{ "192.168.1.10-192.168.1.20", "not a loopback address; the "
		    "broker is on loopback" },
		{ "0.0.0.0", "not a loopback" },
		{ "::", "not a loopback" },
		{ "2001:db8::1", "not a loopback" },
		{ "127.0.0.9-127.0.0.2", "the first address comes after the "
		    "last; write it as 127.0.0.2-127.0.0.9" },
		{ "127.0.0.2-::1", "mixes IPv4 and IPv6" },
		{ "::1-127.0.0.2", "mixes IPv4 and IPv6" },
		{ "::1-::1", "IPv6 has one loopback address" },
		{ "::ffff:127.0.0.2", "an IPv4 address written as IPv6" },
		{ "127.0.0.1-127.0.1.1", "has 257 addresses, more than the "
		    "256 allowed" },
		{ "127.0.0.1-127.255.255.254", "more than the 256 allowed" },
		{ "127.0.0.0-127.0.0.9", "the network address" },
		{ "127.255.255.255", "the broadcast address" },
		{ "localhost", "\"localhost\" is not an IP address" },
		{ "127.0.0.2-", "\"\" is not an IP address" },
		{ "-127.0.0.2", "\"\" is not an IP address" },
		{ "127.0.0.2 - 127.0.0.9", "is not an IP address" },
		{ "127.0.0.2-127.0.0.3-127.0.0.4", "is not an IP address" },
		{ "127.0.0.2\x01", "control or non-ASCII" },
		{ "[::1]", "is not an IP address" },
	};
	struct addr_source s;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_assert_eq(addr_parse_source(bad[i].spec, &s, err,
		    sizeof(err)), -1, "accepted %s", bad[i].spec);
		cr_assert_not_null(strstr(err, bad[i].why), "%s: %s",
		    bad[i].spec, err);
	}
	cr_assert_eq(addr_parse_source(NULL, &s, err, sizeof(err)), -1);
}

Test(addr, source_fits_backend)
{
	struct addr_source v4, v6;
	struct addr be;

	cr_assert_eq(addr_parse_source("127.0.0.2-127.0.0.9", &v4, err,
	    sizeof(err)), 0);
	cr_assert_eq(addr_parse_source("::1", &v6, err, sizeof(err)), 0);

	cr_assert_eq(addr_parse_backend("127.0.0.1:1883", &be, err,
	    sizeof(err)), 0);
	cr_assert_eq(addr_source_fits(&v4, &be, err, sizeof(err)), 0, "%s",
	    err);
	cr_assert_eq(addr_source_fits(&v6, &be, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "source is IPv6 but the backend "
	    "address 127.0.0.1 is IPv4"), "%s", err);

	cr_assert_eq(addr_parse_backend("[::1]:1883", &be, err,
	    sizeof(err)), 0);
	cr_assert_eq(addr_source_fits(&v6, &be, err, sizeof(err)), 0, "%s",
	    err);
	cr_assert_eq(addr_source_fits(&v4, &be, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "use source = ::1"), "%s", err);

	/* A host name is checked once resolved (backend.c). */
	cr_assert_eq(addr_parse_backend("localhost:1883", &be, err,
	    sizeof(err)), 0);
	cr_assert_eq(addr_source_fits(&v4, &be, err, sizeof(err)), 0);

	cr_assert_eq(addr_parse_backend("unix:/run/m.sock", &be, err,
	    sizeof(err)), 0);
	cr_assert_eq(addr_source_fits(&v4, &be, err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "the backend is a Unix socket"), "%s",
	    err);
	cr_assert_eq(addr_source_fits(&v6, &be, err, sizeof(err)), -1);
}
