/* SPDX-License-Identifier: MIT */
/*
 * The address rules (see addr.h), on text and bytes only. moat decrypts
 * device traffic, rewrites the MQTT CONNECT with broker credentials and
 * forwards it unencrypted, so the broker must be reachable only on this
 * host. Here that rule is applied to what can be decided from the text:
 * the syntax, the ports, and literal addresses. The IP literal parsers are
 * written out rather than borrowed from inet_pton(3) so that this file
 * needs no socket headers; they accept exactly what inet_pton does
 * (tests/unit/test_addr.c compares them on a table of inputs).
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "moat/addr.h"
#include "moat/text.h"

#define PORT_MAX 65535
#define IPV4_OCTET_MAX 255
#define IPV4_DIGITS_MAX 3
#define IPV6_GROUP_DIGITS_MAX 4
#define UNIX_PREFIX "unix:"
/* Bytes of an IPv4-mapped IPv6 prefix ::ffff:0:0/96 before the IPv4. */
#define V4MAPPED_ZEROS 10
#define IPV4_LOOPBACK_NET 127
/* Longest text shown when quoting an address with odd bytes. */
#define SHOWN_MAX 96
/* Longest IPv6 text form, with its NUL (INET6_ADDRSTRLEN). */
#define INET6_TEXT_MAX 46

const char addr_loopback_advice[] =
	"moat sends plaintext MQTT to the broker, which must never "
	"leave this host. Bind the broker to 127.0.0.1 (Mosquitto: "
	"\"listener 1883 127.0.0.1\") and use address = "
	"127.0.0.1:1883, or a Unix socket: "
	"address = unix:/run/mosquitto/mosquitto.sock";

int
addr_parse_ipv4(const char *s, unsigned char out[ADDR_IPV4_LEN])
{
	unsigned char tmp[ADDR_IPV4_LEN];
	unsigned v;
	int i, nd;

	for (i = 0; i < ADDR_IPV4_LEN; i++) {
		if (i > 0 && *s++ != '.')
			return (-1);
		v = 0;
		for (nd = 0; nd <= IPV4_DIGITS_MAX && *s >= '0' && *s <= '9';
		    nd++, s++)
			v = v * 10 + (unsigned)(*s - '0');
		/* "01" is octal to inet_aton(3): refuse, as inet_pton does. */
		if (nd == 0 || nd > IPV4_DIGITS_MAX || v > IPV4_OCTET_MAX ||
		    (nd > 1 && s[-nd] == '0'))
			return (-1);
		tmp[i] = (unsigned char)v;
	}
	if (*s != '\0')
		return (-1);
	memcpy(out, tmp, sizeof(tmp));
	return (0);
}

/*
 * Place the n bytes parsed (with "::" at byte gap, or gap < 0 for none)
 * into out, the gap widened with zeros to fill 16 bytes. "::" must stand
 * for at least one group, as in inet_pton(3).
 */
static int
ipv6_expand(const unsigned char *tmp, size_t n, int gap,
    unsigned char out[ADDR_IPV6_LEN])
{
	size_t tail;

	if (gap < 0) {
		if (n != ADDR_IPV6_LEN)
			return (-1);
		memcpy(out, tmp, ADDR_IPV6_LEN);
		return (0);
	}
	if (n == ADDR_IPV6_LEN)
		return (-1);
	tail = n - (size_t)gap;
	memset(out, 0, ADDR_IPV6_LEN);
	memcpy(out, tmp, (size_t)gap);
	memcpy(out + ADDR_IPV6_LEN - tail, tmp + gap, tail);
	return (0);
}

/*
 * Each turn of the loop reads one group (adding 2 bytes) or the final
 * dotted quad, so it runs at most 8 times whatever the input.
 */
int
addr_parse_ipv6(const char *s, unsigned char out[ADDR_IPV6_LEN])
{
	unsigned char tmp[ADDR_IPV6_LEN] = { 0 };
	const char *tok;
	size_t n = 0;
	unsigned v;
	int gap = -1, nd;

	if (s[0] == ':') {
		if (s[1] != ':')
			return (-1);
		gap = 0;
		s += 2;
		if (*s == '\0')
			return (ipv6_expand(tmp, n, gap, out));
	}
	for (;;) {
		tok = s;
		v = 0;
		for (nd = 0; nd <= IPV6_GROUP_DIGITS_MAX && text_hexval(*s) >= 0;
		    nd++, s++)
			v = v * 16 + (unsigned)text_hexval(*s);
		if (*s == '.') {
			/* A dotted quad ends the address: the last 4 bytes. */
			if (n + ADDR_IPV4_LEN > ADDR_IPV6_LEN ||
			    addr_parse_ipv4(tok, tmp + n) == -1)
				return (-1);
			n += ADDR_IPV4_LEN;
			break;
		}
		if (nd == 0 || nd > IPV6_GROUP_DIGITS_MAX ||
		    n + 2 > ADDR_IPV6_LEN)
			return (-1);
		tmp[n++] = (unsigned char)(v >> 8);
		tmp[n++] = (unsigned char)(v & 0xff);
		if (*s == '\0')
			break;
		if (*s++ != ':' || *s == '\0')
			return (-1);
		if (*s == ':') {
			if (gap >= 0)
				return (-1);
			gap = (int)n;
			if (*++s == '\0')
				break;
		}
	}
	return (ipv6_expand(tmp, n, gap, out));
}

int
addr_is_loopback(enum addr_kind kind, const unsigned char *ip)
{
	static const unsigned char v6_loopback[ADDR_IPV6_LEN] = {
		[ADDR_IPV6_LEN - 1] = 1
	};
	static const unsigned char v4mapped[V4MAPPED_ZEROS + 2] = {
		[V4MAPPED_ZEROS] = 0xff, [V4MAPPED_ZEROS + 1] = 0xff
	};

	if (ip == NULL)
		return (0);
	if (kind == ADDR_IPV4)
		return (ip[0] == IPV4_LOOPBACK_NET);
	if (kind != ADDR_IPV6)
		return (0);
	if (memcmp(ip, v6_loopback, ADDR_IPV6_LEN) == 0)
		return (1);
	return (memcmp(ip, v4mapped, sizeof(v4mapped)) == 0 &&
	    ip[sizeof(v4mapped)] == IPV4_LOOPBACK_NET);
}

int
addr_is_unspecified(enum addr_kind kind, const unsigned char *ip)
{
	static const unsigned char zero[ADDR_IPV6_LEN];

	if (ip == NULL)
		return (0);
	if (kind == ADDR_IPV4)
		return (memcmp(ip, zero, ADDR_IPV4_LEN) == 0);
	if (kind == ADDR_IPV6)
		return (memcmp(ip, zero, ADDR_IPV6_LEN) == 0);
	return (0);
}

/*
 * Parse a decimal port. Only digits (no sign, no spaces, no hex) so that
 * "1883 " or "+1883" are refused instead of silently meaning something.
 */
static int
parse_port(const char *s, unsigned min, unsigned *port)
{
	unsigned long v = 0;
	const char *p;

	if (*s == '\0')
		return (-1);
	for (p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return (-1);
		v = v * 10 + (unsigned long)(*p - '0');
		if (v > PORT_MAX)
			return (-1);
	}
	if (v < min)
		return (-1);
	*port = (unsigned)v;
	return (0);
}

/* "[v6]:port": the part in brackets into host, the port after "]:". */
static int
split_bracketed(const char *spec, char *host, size_t hostlen,
    const char **port, char *err, size_t errlen)
{
	const char *end = strchr(spec, ']');
	size_t n;

	if (end == NULL) {
		snprintf(err, errlen, "address \"%s\" has \"[\" without "
		    "\"]\"; write IPv6 addresses as [::1]:1883", spec);
		return (-1);
	}
	if (end[1] != ':') {
		snprintf(err, errlen, "address \"%s\" has no port after "
		    "\"]\"; write it as [::1]:1883", spec);
		return (-1);
	}
	n = (size_t)(end - (spec + 1));
	if (n >= hostlen) {
		snprintf(err, errlen, "address \"%s\": the part in brackets "
		    "is too long for an IPv6 address", spec);
		return (-1);
	}
	memcpy(host, spec + 1, n);
	host[n] = '\0';
	*port = end + 2;
	return (0);
}

/*
 * Split "host:port" or "[v6]:port" into host and port strings. Sets
 * *bracketed when the host was written in brackets. A bare IPv6 address
 * ("::1:1883") is ambiguous and refused with advice to add brackets.
 */
static int
split_host_port(const char *spec, char *host, size_t hostlen,
    const char **port, int *bracketed, char *err, size_t errlen)
{
	const char *colon;
	size_t n;

	*bracketed = spec[0] == '[';
	if (*bracketed)
		return (split_bracketed(spec, host, hostlen, port, err,
		    errlen));
	colon = strrchr(spec, ':');
	if (colon == NULL) {
		snprintf(err, errlen, "address \"%s\" has no port; write it "
		    "as host:port, for example 127.0.0.1:1883", spec);
		return (-1);
	}
	if (memchr(spec, ':', (size_t)(colon - spec)) != NULL) {
		snprintf(err, errlen, "address \"%s\" looks like an IPv6 "
		    "address without brackets; write it as [::1]:1883", spec);
		return (-1);
	}
	n = (size_t)(colon - spec);
	if (n >= hostlen) {
		snprintf(err, errlen, "address \"%.64s...\": host name is "
		    "too long", spec);
		return (-1);
	}
	memcpy(host, spec, n);
	host[n] = '\0';
	*port = colon + 1;
	return (0);
}

/* Fill out->ip and out->kind from an IP literal; -1 when host is none. */
static int
ip_literal(const char *host, int bracketed, struct addr *out)
{
	if (bracketed) {
		if (addr_parse_ipv6(host, out->ip) == -1)
			return (-1);
		out->kind = ADDR_IPV6;
		return (0);
	}
	if (addr_parse_ipv4(host, out->ip) == -1)
		return (-1);
	out->kind = ADDR_IPV4;
	return (0);
}

/* Only what a DNS name can hold: keeps odd bytes away from the resolver. */
static int
hostname_ok(const char *host)
{
	const char *p;

	if (*host == '\0' || strlen(host) > ADDR_HOST_MAX)
		return (0);
	for (p = host; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' &&
		    *p != '_')
			return (0);
	}
	return (1);
}

/*
 * Refuse control characters and non-ASCII bytes up front, showing them as
 * \xNN, so that every later message can quote the address as it is.
 */
static int
printable(const char *what, const char *spec, char *err, size_t errlen)
{
	char shown[SHOWN_MAX];
	const unsigned char *p;

	for (p = (const unsigned char *)spec; *p != '\0'; p++)
		if (*p < 0x20 || *p >= 0x7f)
			break;
	if (*p == '\0')
		return (0);
	snprintf(err, errlen, "%s address \"%s\" contains control or "
	    "non-ASCII characters", what, text_quote(spec, strlen(spec),
	    sizeof(shown), TEXT_QUOTE_ASCII, shown, sizeof(shown)));
	return (-1);
}

static int
parse_unix(const char *spec, struct addr *out, char *err, size_t errlen)
{
	const char *path = spec + strlen(UNIX_PREFIX);
	size_t n = strlen(path);

	if (path[0] != '/') {
		snprintf(err, errlen, "backend address \"%s\": the Unix "
		    "socket path must be absolute (start with /), so that it "
		    "does not depend on the directory moat starts in; for "
		    "example unix:/run/mosquitto/mosquitto.sock", spec);
		return (-1);
	}
	if (n >= sizeof(out->path)) {
		snprintf(err, errlen, "backend address \"unix:%.40s...\": "
		    "the Unix socket path is %zu bytes, longer than the %zu "
		    "the system allows; move the socket to a shorter path",
		    path, n, sizeof(out->path) - 1);
		return (-1);
	}
	out->kind = ADDR_UNIX;
	memcpy(out->path, path, n + 1);
	return (0);
}

/* The loopback rule on a literal, or the spelling of a host name. */
static int
backend_host(const char *spec, int bracketed, struct addr *out, char *err,
    size_t errlen)
{
	if (ip_literal(out->host, bracketed, out) == 0) {
		if (addr_is_unspecified(out->kind, out->ip)) {
			snprintf(err, errlen, "backend address %s means \"any "
			    "address\", not loopback, and cannot be connected "
			    "to safely: %s", spec, addr_loopback_advice);
			return (-1);
		}
		if (!addr_is_loopback(out->kind, out->ip)) {
			snprintf(err, errlen, "backend address %s is not a "
			    "loopback address: %s", spec, addr_loopback_advice);
			return (-1);
		}
		return (0);
	}
	if (bracketed) {
		snprintf(err, errlen, "backend address %s: \"%s\" is not an "
		    "IPv6 address", spec, out->host);
		return (-1);
	}
	if (!hostname_ok(out->host)) {
		snprintf(err, errlen, "backend address %s: \"%s\" is not an "
		    "IPv4 address or a host name", spec, out->host);
		return (-1);
	}
	out->kind = ADDR_NAME;
	return (0);
}

int
addr_parse_backend(const char *spec, struct addr *out, char *err,
    size_t errlen)
{
	const char *portstr;
	int bracketed;

	memset(out, 0, sizeof(*out));
	if (spec == NULL || *spec == '\0') {
		snprintf(err, errlen, "backend address is empty; use "
		    "127.0.0.1:1883 or unix:/run/mosquitto/mosquitto.sock");
		return (-1);
	}
	if (printable("backend", spec, err, errlen) == -1)
		return (-1);
	if (strncmp(spec, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0)
		return (parse_unix(spec, out, err, errlen));
	if (split_host_port(spec, out->host, sizeof(out->host), &portstr,
	    &bracketed, err, errlen) == -1)
		return (-1);
	if (parse_port(portstr, 1, &out->port) == -1) {
		snprintf(err, errlen, "backend address %s: port \"%s\" must be "
		    "a number from 1 to 65535", spec, portstr);
		return (-1);
	}
	return (backend_host(spec, bracketed, out, err, errlen));
}

int
addr_parse_listen(const char *spec, struct addr *out, char *err,
    size_t errlen)
{
	const char *portstr;
	int bracketed;

	memset(out, 0, sizeof(*out));
	if (spec == NULL || *spec == '\0') {
		snprintf(err, errlen, "listen address is empty; use for "
		    "example 0.0.0.0:8883 or [::]:8883");
		return (-1);
	}
	if (printable("listen", spec, err, errlen) == -1)
		return (-1);
	if (split_host_port(spec, out->host, sizeof(out->host), &portstr,
	    &bracketed, err, errlen) == -1)
		return (-1);
	if (parse_port(portstr, 0, &out->port) == -1) {
		snprintf(err, errlen, "listen address %s: port \"%s\" must be "
		    "a number from 0 to 65535", spec, portstr);
		return (-1);
	}
	if (!bracketed && strcmp(out->host, "*") == 0)
		snprintf(out->host, sizeof(out->host), "0.0.0.0");
	if (ip_literal(out->host, bracketed, out) == -1) {
		snprintf(err, errlen, "listen address %s: \"%s\" is not an IP "
		    "address; listen on an address of this host such as "
		    "0.0.0.0:8883 (all IPv4), [::]:8883 (all IPv6) or "
		    "192.0.2.7:8883; host names are not accepted, so that "
		    "what moat binds never depends on DNS", spec, out->host);
		return (-1);
	}
	return (0);
}

/* The advice every refusal of a source ends with. */
static const char source_advice[] =
	"write one loopback address or an IPv4 range of them, for example "
	"source = 127.0.0.2-127.0.0.9 (or ::1 for an IPv6 backend)";

static uint32_t
ipv4_value(const unsigned char ip[ADDR_IPV4_LEN])
{
	return ((uint32_t)ip[0] << 24 | (uint32_t)ip[1] << 16 |
	    (uint32_t)ip[2] << 8 | (uint32_t)ip[3]);
}

/*
 * One end of a source: an IPv4 or IPv6 literal that is loopback and can
 * be bound as a host's address (not 127.0.0.0 or 127.255.255.255, the
 * network's own and its broadcast address).
 */
static int
source_one(const char *spec, const char *s, enum addr_kind *kind,
    unsigned char ip[ADDR_IPV6_LEN], char *err, size_t errlen)
{
	static const unsigned char v6_loopback[ADDR_IPV6_LEN] = {
		[ADDR_IPV6_LEN - 1] = 1
	};
	uint32_t v;

	memset(ip, 0, ADDR_IPV6_LEN);
	if (addr_parse_ipv4(s, ip) == 0)
		*kind = ADDR_IPV4;
	else if (addr_parse_ipv6(s, ip) == 0)
		*kind = ADDR_IPV6;
	else {
		snprintf(err, errlen, "source %s: \"%s\" is not an IP "
		    "address; %s", spec, s, source_advice);
		return (-1);
	}
	if (!addr_is_loopback(*kind, ip)) {
		snprintf(err, errlen, "source %s: %s is not a loopback "
		    "address; the broker is on loopback and moat's plaintext "
		    "traffic to it must stay there, so %s", spec, s,
		    source_advice);
		return (-1);
	}
	if (*kind == ADDR_IPV6 &&
	    memcmp(ip, v6_loopback, ADDR_IPV6_LEN) != 0) {
		snprintf(err, errlen, "source %s: %s is an IPv4 address "
		    "written as IPv6; write it as IPv4 (127.x.y.z)", spec, s);
		return (-1);
	}
	v = *kind == ADDR_IPV4 ? ipv4_value(ip) & 0xffffff : 1;
	if (v == 0 || v == 0xffffff) {
		snprintf(err, errlen, "source %s: %s is the %s address of "
		    "127.0.0.0/8, not one a connection can come from; %s",
		    spec, s, v == 0 ? "network" : "broadcast", source_advice);
		return (-1);
	}
	return (0);
}

/* "FIRST-LAST", both checked by source_one, into out. */
static int
source_range(const char *spec, const char *dash, struct addr_source *out,
    char *err, size_t errlen)
{
	char first[INET6_TEXT_MAX];
	unsigned char last[ADDR_IPV6_LEN];
	enum addr_kind lkind;
	size_t n = (size_t)(dash - spec);
	uint32_t a, b;

	if (n >= sizeof(first)) {
		snprintf(err, errlen, "source %.64s...: the first address is "
		    "too long; %s", spec, source_advice);
		return (-1);
	}
	memcpy(first, spec, n);
	first[n] = '\0';
	if (source_one(spec, first, &out->kind, out->first, err,
	    errlen) == -1 || source_one(spec, dash + 1, &lkind, last, err,
	    errlen) == -1)
		return (-1);
	if (out->kind != lkind) {
		snprintf(err, errlen, "source %s mixes IPv4 and IPv6; a range "
		    "is of IPv4 addresses, and IPv6 has one loopback address, "
		    "::1; %s", spec, source_advice);
		return (-1);
	}
	if (out->kind == ADDR_IPV6) {
		snprintf(err, errlen, "source %s: IPv6 has one loopback "
		    "address, so there is no range of them; write source = "
		    "::1, or use IPv4 addresses for a range", spec);
		return (-1);
	}
	a = ipv4_value(out->first);
	b = ipv4_value(last);
	if (a > b) {
		snprintf(err, errlen, "source %s: the first address comes "
		    "after the last; write it as %s-%s", spec, dash + 1,
		    first);
		return (-1);
	}
	if (b - a >= ADDR_SOURCE_MAX) {
		snprintf(err, errlen, "source %s has %lu addresses, more than "
		    "the %d allowed (each gives about 28,000 connections to "
		    "one broker port); use a shorter range, or a Unix socket "
		    "backend, which has no such limit", spec,
		    (unsigned long)(b - a) + 1, ADDR_SOURCE_MAX);
		return (-1);
	}
	out->count = (unsigned)(b - a) + 1;
	return (0);
}

int
addr_parse_source(const char *spec, struct addr_source *out, char *err,
    size_t errlen)
{
	const char *dash;

	memset(out, 0, sizeof(*out));
	if (spec == NULL || *spec == '\0') {
		snprintf(err, errlen, "source is empty; %s", source_advice);
		return (-1);
	}
	if (printable("source", spec, err, errlen) == -1)
		return (-1);
	if ((dash = strchr(spec, '-')) != NULL)
		return (source_range(spec, dash, out, err, errlen));
	if (source_one(spec, spec, &out->kind, out->first, err,
	    errlen) == -1)
		return (-1);
	out->count = 1;
	return (0);
}

int
addr_source_fits(const struct addr_source *src, const struct addr *be,
    char *err, size_t errlen)
{
	if (be->kind == ADDR_UNIX) {
		snprintf(err, errlen, "source is set but the backend is a "
		    "Unix socket, which has no source address and no limit "
		    "of ports; delete source");
		return (-1);
	}
	if ((be->kind == ADDR_IPV4 || be->kind == ADDR_IPV6) &&
	    be->kind != src->kind) {
		snprintf(err, errlen, "source is %s but the backend address "
		    "%s is %s; a connection comes from an address of the "
		    "family it goes to: use %s", src->kind == ADDR_IPV4 ?
		    "IPv4" : "IPv6", be->host, be->kind == ADDR_IPV4 ?
		    "IPv4" : "IPv6", be->kind == ADDR_IPV4 ?
		    "127.0.0.x addresses" : "source = ::1");
		return (-1);
	}
	return (0);
}

void
addr_source_nth(const struct addr_source *src, unsigned i,
    unsigned char ip[ADDR_IPV6_LEN])
{
	uint32_t v;

	memcpy(ip, src->first, ADDR_IPV6_LEN);
	if (src->kind != ADDR_IPV4 || src->count <= 1)
		return;
	v = ipv4_value(src->first) + i % src->count;
	ip[0] = (unsigned char)(v >> 24);
	ip[1] = (unsigned char)(v >> 16);
	ip[2] = (unsigned char)(v >> 8);
	ip[3] = (unsigned char)v;
}
