/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/core/netstat.c, the exposure audit's pure half: the
 * kernel's /proc/net/tcp and tcp6 lines (samples taken from a real
 * little-endian host, and the same sockets as a big-endian host prints
 * them), what counts as exposed, strictness on malformed and huge lines,
 * any split of the input, and the address text.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/addr.h"
#include "moat/netstat.h"

#define HDR4 "  sl  local_address rem_address   st tx_queue rx_queue tr " \
	"tm->when retrnsmt   uid  timeout inode\n"
#define HDR6 "  sl  local_address                         remote_address" \
	"                        st tx_queue rx_queue tr tm->when retrnsmt" \
	"   uid  timeout inode\n"
#define TAIL " 00000000:00000000 00:00000000 00000000     0        0 " \
	"657 1 00000000e1575efc 100 0 0 10 0"

/* Port 1883 is 075B. */
static const char tcp4_le[] = HDR4
	"   0: 0100007F:075B 00000000:0000 0A" TAIL "\n"       /* 127.0.0.1 */
	"   1: 0200007F:075B 00000000:0000 0A" TAIL "\n"       /* 127.0.0.2 */
	"   2: 0100007F:9A6A 0100007F:075B 01" TAIL "\n"       /* a client */
	"   3: 00000000:07E8 00000000:0000 0A" TAIL "\n"       /* other port */
	"   4: 0200000A:075B 0300000A:D431 01" TAIL "\n";      /* established */

static const char tcp4_any_le[] = HDR4
	"   0: 00000000:075B 00000000:0000 0A" TAIL "\n";

static const char tcp4_host_le[] = HDR4
	"   0: 020200C0:075B 00000000:0000 0A" TAIL "\n";      /* 192.0.2.2 */

static const char tcp6_le[] = HDR6
	"   0: 0000000000000000FFFF00000100007F:075B "
	"00000000000000000000000000000000:0000 0A" TAIL "\n"   /* mapped lo */
	"   1: 00000000000000000000000001000000:075B "
	"00000000000000000000000000000000:0000 0A" TAIL "\n";  /* ::1 */

static const char tcp6_any_le[] = HDR6
	"   0: 00000000000000000000000000000000:075B "
	"00000000000000000000000000000000:0000 0A" TAIL "\n";

/* fd00::2 and ::ffff:0.0.0.0 */
static const char tcp6_host_le[] = HDR6
	"   0: 000000FD000000000000000002000000:075B "
	"00000000000000000000000000000000:0000 0A" TAIL "\n"
	"   1: 0000000000000000FFFF000000000000:075B "
	"00000000000000000000000000000000:0000 0A" TAIL "\n";

/* The same two sockets on a big-endian host. */
static const char tcp6_host_be[] = HDR6
	"   0: FD000000000000000000000000000002:075B "
	"00000000000000000000000000000000:0000 0A" TAIL "\n"
	"   1: 00000000000000000000FFFFC0000202:075B "
	"00000000000000000000000000000000:0000 0A" TAIL "\n";

static struct netstat_scan scan;

static void
run(const char *text, enum netstat_family fam, enum netstat_order order,
    unsigned port)
{
	netstat_init(&scan, port, order);
	netstat_begin(&scan, fam);
	netstat_feed(&scan, text, strlen(text));
	netstat_end(&scan);
}

TestSuite(netstat);

Test(netstat, loopback_only_is_clear)
{
	run(tcp4_le, NETSTAT_TCP4, NETSTAT_LITTLE_ENDIAN, 1883);
	cr_assert_eq(scan.sockets, 5);
	cr_assert_eq(scan.malformed, 0);
	cr_assert_eq(scan.exposed, 0);
	run(tcp6_le, NETSTAT_TCP6, NETSTAT_LITTLE_ENDIAN, 1883);
	cr_assert_eq(scan.sockets, 2);
	cr_assert_eq(scan.malformed, 0);
	cr_assert_eq(scan.exposed, 0, "::1 and ::ffff:127.0.0.1 are loopback");
}

Test(netstat, any_address_is_exposed)
{
	run(tcp4_any_le, NETSTAT_TCP4, NETSTAT_LITTLE_ENDIAN, 1883);
	cr_assert_eq(scan.exposed, 1);
	cr_assert_str_eq(scan.found[0].text, "0.0.0.0:1883");
	cr_assert(scan.found[0].any);
	run(tcp6_any_le, NETSTAT_TCP6, NETSTAT_LITTLE_ENDIAN, 1883);
	cr_assert_eq(scan.exposed, 1);
	cr_assert_str_eq(scan.found[0].text, "[::]:1883");
	cr_assert(scan.found[0].any);
}

Test(netstat, other_port_is_not_ours)
{
	run(tcp4_any_le, NETSTAT_TCP4, NETSTAT_LITTLE_ENDIAN, 1884);
	cr_assert_eq(scan.sockets, 1);
	cr_assert_eq(scan.exposed, 0);
}

Test(netstat, specific_addresses)
{
	run(tcp4_host_le, NETSTAT_TCP4, NETSTAT_LITTLE_ENDIAN, 1883);
	cr_assert_eq(scan.exposed, 1);
	cr_assert_str_eq(scan.found[0].text, "192.0.2.2:1883");
	cr_assert_not(scan.found[0].any);
	run(tcp6_host_le, NETSTAT_TCP6, NETSTAT_LITTLE_ENDIAN, 1883);
	cr_assert_eq(scan.exposed, 2);
	cr_assert_str_eq(scan.found[0].text, "[fd00::2]:1883");
	cr_assert_not(scan.found[0].any);
	cr_assert_str_eq(scan.found[1].text, "[::ffff:0.0.0.0]:1883");
	cr_assert(scan.found[1].any, "::ffff:0.0.0.0 means any IPv4 address");
}

Test(netstat, big_endian_words)
{
	static const char tcp4_be[] = HDR4
	    "   0: C0000202:075B 00000000:0000 0A" TAIL "\n"
	    "   1: 7F000001:075B 00000000:0000 0A" TAIL "\n";

	run(tcp4_be, NETSTAT_TCP4, NETSTAT_BIG_ENDIAN, 1883);
	cr_assert_eq(scan.exposed, 1);
	cr_assert_str_eq(scan.found[0].text, "192.0.2.2:1883");
	run(tcp6_host_be, NETSTAT_TCP6, NETSTAT_BIG_ENDIAN, 1883);
	cr_assert_eq(scan.exposed, 2);
	cr_assert_str_eq(scan.found[0].text, "[fd00::2]:1883");
	cr_assert_str_eq(scan.found[1].text, "[::ffff:192.0.2.2]:1883");
	/* Read in the wrong order, the little-endian sample is another host. */
	run(tcp4_host_le, NETSTAT_TCP4, NETSTAT_BIG_ENDIAN, 1883);
	cr_assert_str_eq(scan.found[0].text, "2.2.0.192:1883");
}

Test(netstat, host_order_is_known)
{
	const unsigned one = 1;
	unsigned char b;

	memcpy(&b, &one, 1);
	cr_assert_eq(netstat_host_order(), b == 1 ? NETSTAT_LITTLE_ENDIAN :
	    NETSTAT_BIG_ENDIAN);
}

Test(netstat, parse_line_fields)
{
	struct netstat_entry e;
	static const char l[] = "  12: 0100007F:075B 00000000:0000 06" TAIL;
	static const unsigned char lo[ADDR_IPV4_LEN] = { 127, 0, 0, 1 };

	cr_assert_eq(netstat_parse_line(l, strlen(l), NETSTAT_TCP4,
	    NETSTAT_LITTLE_ENDIAN, &e), 0);
	cr_assert_eq(e.kind, ADDR_IPV4);
	cr_assert_arr_eq(e.ip, lo, sizeof(lo));
	cr_assert_eq(e.port, 1883);
	cr_assert_eq(e.state, 6);
}

Test(netstat, malformed_lines_are_skipped)
{
	static const char *bad[] = {
		"",
		"   0:",
		"   0: 0100007F:075B 00000000:0000 0A",        /* no tail */
		"   0: 0100007F:075B 00000000:0000 0AX",
		"   0: 100007F:075B 00000000:0000 0A" TAIL,    /* 7 digits */
		"   0: 00100007F:075B 00000000:0000 0A" TAIL,  /* 9 digits */
		"   0: 0100007G:075B 00000000:0000 0A" TAIL,
		"   0: 0100007F:75B 00000000:0000 0A" TAIL,
		"   0: 0100007F:0075B 00000000:0000 0A" TAIL,
		"   0: 0100007F-075B 00000000:0000 0A" TAIL,
		"   0:  0100007F:075B 00000000:0000 0A" TAIL,  /* two spaces */
		"   0: 0100007F:075B  00000000:0000 0A" TAIL,
		"   0: 0100007F:075B 00000000:0000  0A" TAIL,
		"   0: 0100007F:075B 00000000:0000 A" TAIL,
		"   0: 0100007F:075B 00000000:0000 0A0" TAIL,
		"   0: 0100007F:075B 00000000:0000 0A\t00000000:00000000",
		"   0: 0100007F:075B 00000000:0000 0A 00\x01",
		"   0: 0100007F:075B 00000000:0000 0A 00\xff",
		"    : 0100007F:075B 00000000:0000 0A" TAIL,
		"  -1: 0100007F:075B 00000000:0000 0A" TAIL,
		"  0x: 0100007F:075B 00000000:0000 0A" TAIL,
		"12345678901: 0100007F:075B 00000000:0000 0A" TAIL,
		"   0 0100007F:075B 00000000:0000 0A" TAIL,
		"   0: 00000000000000000000000000000000:075B "
		    "00000000000000000000000000000000:0000 0A" TAIL,
	};
	static const char nul[] = "   0: 00000000:075B 00000000:0000 0A 0\0";
	struct netstat_entry e;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(netstat_parse_line(bad[i], strlen(bad[i]),
		    NETSTAT_TCP4, NETSTAT_LITTLE_ENDIAN, &e), -1,
		    "accepted \"%s\"", bad[i]);
	/* A tcp line in the tcp6 file, and the reverse. */
	cr_assert_eq(netstat_parse_line(tcp4_any_le + strlen(HDR4),
	    strlen(tcp4_any_le) - strlen(HDR4) - 1, NETSTAT_TCP6,
	    NETSTAT_LITTLE_ENDIAN, &e), -1);
	/* A NUL inside the line. */
	cr_assert_eq(netstat_parse_line(nul, sizeof(nul) - 1, NETSTAT_TCP4,
	    NETSTAT_LITTLE_ENDIAN, &e), -1);
}

/* Bad lines around a good one: counted, skipped, the good one found. */
Test(netstat, malformed_lines_in_a_file)
{
	static const char text[] = HDR4
	    "garbage\n"
	    "   0: 0000000:075B 00000000:0000 0A" TAIL "\n"
	    "   1: 00000000:075B 00000000:0000 0A" TAIL "\n"
	    "\n"
	    "  sl  local_address\n";

	run(text, NETSTAT_TCP4, NETSTAT_LITTLE_ENDIAN, 1883);
	cr_assert_eq(scan.sockets, 1);
	cr_assert_eq(scan.malformed, 4, "a header past line 1 is malformed");
	cr_assert_eq(scan.exposed, 1);
	/* No header: the first line is data, and malformed. */
	run(tcp4_any_le + strlen(HDR4), NETSTAT_TCP4, NETSTAT_LITTLE_ENDIAN,
	    1883);
	cr_assert_eq(scan.exposed, 1);
	cr_assert_eq(scan.malformed, 0);
}

/* A line past the cap is skipped whole, however long; the next counts. */
Test(netstat, huge_lines)
{
	static const char good[] = "   1: 00000000:075B 00000000:0000 0A"
	    TAIL "\n";
	size_t big = 1 << 20, total = big + sizeof(good), i, n;
	char *text = malloc(total + 64);

	cr_assert_not_null(text);
	/* A listening 0.0.0.0:1883 line padded far past the cap. */
	snprintf(text, 64, "   0: 00000000:075B 00000000:0000 0A");
	memset(text + strlen(text), ' ', big);
	text[big] = '\n';
	memcpy(text + big + 1, good, sizeof(good));
	netstat_init(&scan, 1883, NETSTAT_LITTLE_ENDIAN);
	netstat_begin(&scan, NETSTAT_TCP4);
	/* Fed in odd pieces, as reads return them. */
	for (i = 0; i < total; i += n) {
		n = total - i < 4093 ? total - i : 4093;
		netstat_feed(&scan, text + i, n);
	}
	netstat_end(&scan);
	cr_assert_eq(scan.malformed, 1);
	cr_assert_eq(scan.sockets, 1);
	cr_assert_eq(scan.exposed, 1);
	/* Exactly at the cap is too long; one less is accepted. */
	memset(text, 0, big);
	snprintf(text, 64, "   0: 00000000:075B 00000000:0000 0A ");
	memset(text + strlen(text), '0', NETSTAT_LINE_MAX - strlen(text));
	text[NETSTAT_LINE_MAX] = '\0';
	cr_assert_eq(netstat_parse_line(text, NETSTAT_LINE_MAX, NETSTAT_TCP4,
	    NETSTAT_LITTLE_ENDIAN, &(struct netstat_entry){ 0 }), -1);
	cr_assert_eq(netstat_parse_line(text, NETSTAT_LINE_MAX - 1,
	    NETSTAT_TCP4, NETSTAT_LITTLE_ENDIAN,
	    &(struct netstat_entry){ 0 }), 0);
	run(text, NETSTAT_TCP4, NETSTAT_LITTLE_ENDIAN, 1883);
	cr_assert_eq(scan.malformed, 1, "no newline at the end still counts");
	text[NETSTAT_LINE_MAX - 1] = '\0';
	run(text, NETSTAT_TCP4, NETSTAT_LITTLE_ENDIAN, 1883);
	cr_assert_eq(scan.malformed, 0);
	cr_assert_eq(scan.exposed, 1);
	free(text);
}

/* Byte by byte gives what one piece gives. */
Test(netstat, any_split)
{
	size_t i, n = strlen(tcp6_host_le);

	netstat_init(&scan, 1883, NETSTAT_LITTLE_ENDIAN);
	netstat_begin(&scan, NETSTAT_TCP6);
	for (i = 0; i < n; i++)
		netstat_feed(&scan, tcp6_host_le + i, 1);
	netstat_end(&scan);
	cr_assert_eq(scan.sockets, 2);
	cr_assert_eq(scan.exposed, 2);
	cr_assert_str_eq(scan.found[0].text, "[fd00::2]:1883");
}

/* Both files into one scan; the same address twice is one finding. */
Test(netstat, two_files_and_duplicates)
{
	netstat_init(&scan, 1883, NETSTAT_LITTLE_ENDIAN);
	netstat_begin(&scan, NETSTAT_TCP4);
	netstat_feed(&scan, tcp4_any_le, strlen(tcp4_any_le));
	netstat_feed(&scan, tcp4_any_le + strlen(HDR4),
	    strlen(tcp4_any_le) - strlen(HDR4));
	netstat_end(&scan);
	netstat_begin(&scan, NETSTAT_TCP6);
	netstat_feed(&scan, tcp6_any_le, strlen(tcp6_any_le));
	netstat_end(&scan);
	cr_assert_eq(scan.sockets, 3);
	cr_assert_eq(scan.malformed, 0);
	cr_assert_eq(scan.exposed, 2);
	cr_assert_str_eq(scan.found[0].text, "0.0.0.0:1883");
	cr_assert_str_eq(scan.found[1].text, "[::]:1883");
}

/* More findings than are kept: all counted, the first ones stored. */
Test(netstat, findings_cap)
{
	char line[256];
	unsigned i;

	netstat_init(&scan, 1883, NETSTAT_LITTLE_ENDIAN);
	netstat_begin(&scan, NETSTAT_TCP4);
	netstat_feed(&scan, HDR4, strlen(HDR4));
	for (i = 1; i <= NETSTAT_FINDINGS_MAX + 5; i++) {
		snprintf(line, sizeof(line), "%4u: %08X:075B 00000000:0000 0A"
		    TAIL "\n", i, i << 24 | 0x0A);
		netstat_feed(&scan, line, strlen(line));
	}
	netstat_end(&scan);
	cr_assert_eq(scan.exposed, NETSTAT_FINDINGS_MAX + 5);
	cr_assert_eq(scan.nfound, NETSTAT_FINDINGS_MAX);
	cr_assert_str_eq(scan.found[0].text, "10.0.0.1:1883");
}

/* The text of an address matches what addr.c parses back. */
Test(netstat, format_round_trip)
{
	static const char *v6[] = {
		"::", "::1", "1::", "fd00::2", "fe80::fc:ff:fe00:1",
		"2001:db8::7", "1:2:3:4:5:6:7:8", "1:0:0:2::3", "1::2:0:0:3",
		"1:0:3:4:5:6:7:8", "::ffff:127.0.0.1", "::ffff:0.0.0.0",
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "0:1::", "::2:3:4",
	};
	unsigned char ip[ADDR_IPV6_LEN];
	char buf[NETSTAT_TEXT_MAX], want[NETSTAT_TEXT_MAX];
	size_t i;

	for (i = 0; i < sizeof(v6) / sizeof(v6[0]); i++) {
		cr_assert_eq(addr_parse_ipv6(v6[i], ip), 0, "%s", v6[i]);
		snprintf(want, sizeof(want), "[%s]:65535", v6[i]);
		netstat_format(ADDR_IPV6, ip, 65535, buf, sizeof(buf));
		cr_assert_str_eq(buf, want);
	}
	cr_assert_eq(addr_parse_ipv4("255.255.255.255", ip), 0);
	cr_assert_str_eq(netstat_format(ADDR_IPV4, ip, 1, buf, sizeof(buf)),
	    "255.255.255.255:1");
	cr_assert_str_eq(netstat_format(ADDR_IPV4, ip, 1, buf, 4), "255");
}
