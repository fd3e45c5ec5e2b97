/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/io/backend.c: the loopback-only rule for the backend
 * (security invariant 1: plaintext never leaves the host), listen address
 * parsing, and the helpers. Off-host host names are covered here with a
 * numeric name that getaddrinfo(3) resolves without DNS ("3232235786" is
 * 192.168.1.10); the integration tests cover real names.
 */
#include <criterion/criterion.h>

#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include "moat/backend.h"

static struct backend_addr ba;
static char err[1024];

static void
setup(void)
{
	memset(&ba, 0x55, sizeof(ba));
	memset(err, 0, sizeof(err));
}

TestSuite(backend, .init = setup);

static void
parse_ok(const char *spec)
{
	cr_assert_eq(backend_parse(spec, &ba, err, sizeof(err)), 0,
	    "%s refused: %s", spec, err);
}

static void
parse_fails(const char *spec, const char *want)
{
	cr_assert_eq(backend_parse(spec, &ba, err, sizeof(err)), -1,
	    "%s accepted", spec);
	cr_assert_not_null(strstr(err, want), "%s: want \"%s\" in \"%s\"",
	    spec, want, err);
}

static unsigned
port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohs(((const struct sockaddr_in *)ss)->sin_port));
	return (ntohs(((const struct sockaddr_in6 *)ss)->sin6_port));
}

/* --- backend: accepted ------------------------------------------------ */

Test(backend, ipv4_loopback)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&ba.sa;

	parse_ok("127.0.0.1:1883");
	cr_assert_eq(ba.is_unix, 0);
	cr_assert_eq(sin->sin_family, AF_INET);
	cr_assert_eq(ntohl(sin->sin_addr.s_addr), 0x7f000001);
	cr_assert_eq(ntohs(sin->sin_port), 1883);
	cr_assert_eq(ba.salen, sizeof(struct sockaddr_in));
	cr_assert_str_eq(ba.text, "127.0.0.1:1883");
}

Test(backend, ipv4_loopback_net)
{
	parse_ok("127.0.0.2:1883");
	cr_assert_str_eq(ba.text, "127.0.0.2:1883");
	parse_ok("127.255.255.254:65535");
	cr_assert_str_eq(ba.text, "127.255.255.254:65535");
	parse_ok("127.0.0.1:1");
	cr_assert_eq(port_of(&ba.sa), 1);
}

Test(backend, ipv6_loopback)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ba.sa;

	parse_ok("[::1]:1883");
	cr_assert_eq(ba.is_unix, 0);
	cr_assert_eq(sin6->sin6_family, AF_INET6);
	cr_assert(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
	cr_assert_eq(ntohs(sin6->sin6_port), 1883);
	cr_assert_eq(ba.salen, sizeof(struct sockaddr_in6));
	cr_assert_str_eq(ba.text, "[::1]:1883");
}

Test(backend, ipv4_mapped_loopback)
{
	parse_ok("[::ffff:127.0.0.1]:1883");
	cr_assert_str_eq(ba.text, "[::ffff:127.0.0.1]:1883");
}

Test(backend, localhost)
{
	parse_ok("localhost:1883");
	cr_assert_eq(ba.is_unix, 0);
	cr_assert(backend_is_loopback((struct sockaddr *)&ba.sa));
	cr_assert_eq(port_of(&ba.sa), 1883);
	/* IPv4 is preferred when the name has both. */
	cr_assert_str_eq(ba.text, "127.0.0.1:1883");
}

Test(backend, numeric_name_resolving_to_loopback)
{
	/* inet_aton forms go through getaddrinfo, which knows them. */
	parse_ok("127.1:1883");
	cr_assert_str_eq(ba.text, "127.0.0.1:1883");
}

Test(backend, unix_socket)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&ba.sa;

	parse_ok("unix:/run/mosquitto/mosquitto.sock");
	cr_assert_eq(ba.is_unix, 1);
	cr_assert_str_eq(ba.path, "/run/mosquitto/mosquitto.sock");
	cr_assert_str_eq(ba.text, "unix:/run/mosquitto/mosquitto.sock");
	cr_assert_eq(sun->sun_family, AF_UNIX);
	cr_assert_str_eq(sun->sun_path, "/run/mosquitto/mosquitto.sock");
}

Test(backend, unix_longest_path)
{
	char spec[256], path[128];

	memset(path, 'p', sizeof(ba.path) - 1);
	path[0] = '/';
	path[sizeof(ba.path) - 1] = '\0';
	snprintf(spec, sizeof(spec), "unix:%s", path);
	parse_ok(spec);
	cr_assert_str_eq(ba.path, path);
	cr_assert_eq(strlen(ba.text), strlen(spec));
}

/* --- backend: refused ------------------------------------------------- */

Test(backend, off_host_ipv4)
{
	cr_assert_eq(backend_parse("192.168.1.10:1883", &ba, err,
	    sizeof(err)), -1);
	cr_assert_str_eq(err, "backend address 192.168.1.10:1883 is not a "
	    "loopback address: moat sends plaintext MQTT to the broker, which "
	    "must never leave this host. Bind the broker to 127.0.0.1 "
	    "(Mosquitto: \"listener 1883 127.0.0.1\") and use address = "
	    "127.0.0.1:1883, or a Unix socket: address = "
	    "unix:/run/mosquitto/mosquitto.sock");
}

Test(backend, off_host_near_loopback)
{
	parse_fails("126.255.255.255:1883", "is not a loopback address");
	parse_fails("128.0.0.1:1883", "is not a loopback address");
	parse_fails("10.0.0.1:1883", "is not a loopback address");
}

Test(backend, off_host_ipv6)
{
	parse_fails("[2001:db8::1]:1883", "is not a loopback address");
	parse_fails("[::2]:1883", "is not a loopback address");
	parse_fails("[::ffff:10.0.0.1]:1883", "is not a loopback address");
	parse_fails("[fe80::1]:1883", "must never leave this host");
}

Test(backend, any_address)
{
	parse_fails("0.0.0.0:1883", "backend address 0.0.0.0:1883 means "
	    "\"any address\", not loopback");
	cr_assert_not_null(strstr(err, "must never leave this host"));
	parse_fails("[::]:1883", "backend address [::]:1883 means \"any "
	    "address\", not loopback");
}

Test(backend, name_resolving_off_host)
{
	/* 3232235786 == 192.168.1.10, resolved by getaddrinfo, not DNS. */
	parse_fails("3232235786:1883", "backend address 3232235786:1883 "
	    "resolves to 192.168.1.10, which is not a loopback address: moat "
	    "sends plaintext MQTT");
}

Test(backend, unresolvable)
{
	parse_fails("no-such-host.invalid:1883",
	    "cannot resolve backend host \"no-such-host.invalid\"");
}

Test(backend, unix_relative)
{
	parse_fails("unix:mosquitto.sock", "must be absolute");
	parse_fails("unix:./mosquitto.sock", "must be absolute");
	parse_fails("unix:", "must be absolute");
}

Test(backend, unix_too_long)
{
	char spec[256];

	memset(spec, 'p', sizeof(spec));
	memcpy(spec, "unix:/", 6);
	spec[5 + sizeof(ba.path)] = '\0';     /* path of 108 bytes */
	parse_fails(spec, "longer than the 107 the system allows");
}

Test(backend, bad_ports)
{
	parse_fails("127.0.0.1:0", "port \"0\" must be a number from 1 to "
	    "65535");
	parse_fails("127.0.0.1:65536", "port \"65536\"");
	parse_fails("127.0.0.1:abc", "port \"abc\"");
	parse_fails("127.0.0.1:", "port \"\"");
	parse_fails("127.0.0.1:-1", "port \"-1\"");
	parse_fails("127.0.0.1:+1883", "port \"+1883\"");
	parse_fails("127.0.0.1:1883 ", "port \"1883 \"");
	parse_fails("127.0.0.1:0x10", "port \"0x10\"");
	parse_fails("127.0.0.1:99999999999999999999", "must be a number");
	parse_fails("[::1]:0", "port \"0\"");
}

Test(backend, malformed)
{
	parse_fails("", "backend address is empty");
	parse_fails(NULL, "backend address is empty");
	parse_fails("127.0.0.1", "has no port");
	parse_fails("::1:1883", "without brackets");
	parse_fails("[::1]1883", "no port after \"]\"");
	parse_fails("[::1:1883", "without \"]\"");
	parse_fails("[127.0.0.1]:1883", "is not an IPv6 address");
	parse_fails("[localhost]:1883", "is not an IPv6 address");
	parse_fails("local host:1883", "is not an IPv4 address or a host name");
	parse_fails(":1883", "is not an IPv4 address or a host name");
	parse_fails("127.0.0.1\n:1883",
	    "backend address \"127.0.0.1\\x0a:1883\" contains control or "
	    "non-ASCII characters");
	parse_fails("unix:/run/\x1b[2J.sock", "\"unix:/run/\\x1b[2J.sock\"");
	parse_fails("caf\xc3\xa9:1883", "\"caf\\xc3\\xa9:1883\"");
}

/* --- listen ----------------------------------------------------------- */

Test(backend, listen_ok)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	cr_assert_eq(backend_parse_listen("1.2.3.4:8883", &ss, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(ss.ss_family, AF_INET);
	cr_assert_eq(ntohl(sin->sin_addr.s_addr), 0x01020304);
	cr_assert_eq(ntohs(sin->sin_port), 8883);

	cr_assert_eq(backend_parse_listen("[::]:8883", &ss, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(ss.ss_family, AF_INET6);
	cr_assert(IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr));
	cr_assert_eq(ntohs(sin6->sin6_port), 8883);

	cr_assert_eq(backend_parse_listen("*:9000", &ss, err, sizeof(err)),
	    0, "%s", err);
	cr_assert_eq(ss.ss_family, AF_INET);
	cr_assert_eq(sin->sin_addr.s_addr, htonl(INADDR_ANY));
	cr_assert_eq(ntohs(sin->sin_port), 9000);

	cr_assert_eq(backend_parse_listen("0.0.0.0:0", &ss, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(ntohs(sin->sin_port), 0);

	cr_assert_eq(backend_parse_listen("[::1]:65535", &ss, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(ntohs(sin6->sin6_port), 65535);
}

Test(backend, listen_refused)
{
	static const struct {
		const char *spec;
		const char *why;
	} bad[] = {
		{ "localhost:8883", "is not an IP address" },
		{ "example.com:8883", "host names are not accepted" },
		{ "[*]:8883", "is not an IP address" },
		{ "1.2.3.4:65536", "must be a number from 0 to 65535" },
		{ "1.2.3.4:-1", "must be a number from 0 to 65535" },
		{ "1.2.3.4:", "must be a number" },
		{ "1.2.3.4", "has no port" },
		{ "::8883", "without brackets" },
		{ "", "empty" },
		{ "1.2.3.4.5:8883", "is not an IP address" },
		{ "1.2.3.4:88\t83", "\"1.2.3.4:88\\x0983\" contains control" },
	};
	struct sockaddr_storage ss;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		cr_assert_eq(backend_parse_listen(bad[i].spec, &ss, err,
		    sizeof(err)), -1, "accepted %s", bad[i].spec);
		cr_assert_not_null(strstr(err, bad[i].why), "%s: %s",
		    bad[i].spec, err);
	}
	cr_assert_eq(backend_parse_listen(NULL, &ss, err, sizeof(err)), -1);
}

/* --- helpers ---------------------------------------------------------- */

static int
loop4(const char *ip)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	cr_assert_eq(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
	return (backend_is_loopback((struct sockaddr *)&sin));
}

static int
loop6(const char *ip)
{
	struct sockaddr_in6 sin6;

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	cr_assert_eq(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
	return (backend_is_loopback((struct sockaddr *)&sin6));
}

Test(backend, is_loopback)
{
	struct sockaddr_un sun;

	cr_assert_eq(loop4("127.0.0.1"), 1);
	cr_assert_eq(loop4("127.0.0.0"), 1);
	cr_assert_eq(loop4("127.255.255.255"), 1);
	cr_assert_eq(loop4("126.255.255.255"), 0);
	cr_assert_eq(loop4("128.0.0.0"), 0);
	cr_assert_eq(loop4("0.0.0.0"), 0);
	cr_assert_eq(loop4("192.168.1.10"), 0);
	cr_assert_eq(loop6("::1"), 1);
	cr_assert_eq(loop6("::ffff:127.0.0.1"), 1);
	cr_assert_eq(loop6("::ffff:127.9.9.9"), 1);
	cr_assert_eq(loop6("::ffff:10.0.0.1"), 0);
	cr_assert_eq(loop6("::"), 0);
	cr_assert_eq(loop6("::2"), 0);
	cr_assert_eq(loop6("::127.0.0.1"), 0);     /* v4-compatible: no */
	cr_assert_eq(loop6("fe80::1"), 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	cr_assert_eq(backend_is_loopback((struct sockaddr *)&sun), 0);
	cr_assert_eq(backend_is_loopback(NULL), 0);
}

Test(backend, format)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	char buf[64], small[6];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(8883);
	inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
	cr_assert_eq(backend_format((struct sockaddr *)&sin, buf,
	    sizeof(buf)), buf);
	cr_assert_str_eq(buf, "10.1.2.3:8883");

	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(1);
	inet_pton(AF_INET6, "2001:db8::7", &sin6.sin6_addr);
	backend_format((struct sockaddr *)&sin6, buf, sizeof(buf));
	cr_assert_str_eq(buf, "[2001:db8::7]:1");

	backend_format((struct sockaddr *)&sin, small, sizeof(small));
	cr_assert_str_eq(small, "10.1.");

	memset(buf, 'x', sizeof(buf));
	backend_format((struct sockaddr *)&sin, buf, 0);
	cr_assert_eq(buf[0], 'x');
}

/* --- [backend] source ------------------------------------------------- */

Test(backend, source_round_robin)
{
	struct sockaddr_storage ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
	char buf[64];
	unsigned i;

	parse_ok("127.0.0.1:1883");
	cr_assert_eq(backend_source_sockaddr(&ba, 0, &ss), 0, "no source");
	cr_assert_eq(backend_set_source(&ba, "127.0.0.2-127.0.0.5", err,
	    sizeof(err)), 0, "%s", err);
	for (i = 0; i < 8; i++) {
		cr_assert_eq(backend_source_sockaddr(&ba, i, &ss),
		    sizeof(struct sockaddr_in));
		cr_assert_eq(ss.ss_family, AF_INET);
		cr_assert_eq(sin->sin_port, 0, "the kernel picks the port");
		snprintf(buf, sizeof(buf), "127.0.0.%u:0", 2 + i % 4);
		cr_assert_str_eq(backend_format((struct sockaddr *)&ss, err,
		    sizeof(err)), buf);
	}
}

Test(backend, source_ipv6)
{
	struct sockaddr_storage ss;

	parse_ok("[::1]:1883");
	cr_assert_eq(backend_set_source(&ba, "::1", err, sizeof(err)), 0,
	    "%s", err);
	cr_assert_eq(backend_source_sockaddr(&ba, 3, &ss),
	    sizeof(struct sockaddr_in6));
	cr_assert_str_eq(backend_format((struct sockaddr *)&ss, err,
	    sizeof(err)), "[::1]:0");
}

Test(backend, source_refused)
{
	struct sockaddr_storage ss;

	/* A name is checked on what it resolves to: 127.0.0.1, IPv4. */
	parse_ok("2130706433:1883");
	cr_assert_eq(backend_set_source(&ba, "::1", err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "source is IPv6 but the backend "
	    "address 127.0.0.1:1883 is IPv4"), "%s", err);
	cr_assert_eq(backend_source_sockaddr(&ba, 0, &ss), 0);

	parse_ok("unix:/run/mosquitto/mosquitto.sock");
	cr_assert_eq(backend_set_source(&ba, "127.0.0.2", err, sizeof(err)),
	    -1);
	cr_assert_not_null(strstr(err, "Unix socket"), "%s", err);

	parse_ok("127.0.0.1:1883");
	cr_assert_eq(backend_set_source(&ba, "10.0.0.2", err, sizeof(err)),
	    -1);
	cr_assert_not_null(strstr(err, "not a loopback"), "%s", err);
	cr_assert_eq(backend_source_sockaddr(&ba, 0, &ss), 0);
}
