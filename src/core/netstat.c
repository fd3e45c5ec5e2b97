/* SPDX-License-Identifier: MIT */
/*
 * The exposure audit on the text of /proc/net/tcp and /proc/net/tcp6 (see
 * netstat.h). A data line begins, in the kernel's own format,
 *
 *   "%4d: %08X:%04X %08X:%04X %02X ..."            (tcp)
 *   "%4d: %08X%08X%08X%08X:%04X %08X...:%04X %02X ..." (tcp6)
 *
 * the local address and port, the remote ones and the state; each %08X is
 * a 32-bit word of the address in network order printed as a number in
 * the host's order. Only those fields are decoded; the rest of the line
 * must be printable text. Addresses are formatted here, without
 * inet_ntop(3), so that this file needs no socket headers.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "moat/addr.h"
#include "moat/netstat.h"
#include "moat/text.h"

#define WORD_DIGITS 8
#define WORD_BYTES 4
#define PORT_DIGITS 4
#define STATE_DIGITS 2
#define SLOT_DIGITS_MAX 10
#define IPV6_GROUPS 8
/* Bytes of ::ffff:0:0/96 before the IPv4 address. */
#define V4MAPPED_ZEROS 10
#define V4MAPPED_LEN 12
/* The longest IPv6 text, "ffff:...:255.255.255.255", and its NUL. */
#define IPV6_TEXT_MAX 46
#define PRINTABLE_FIRST 0x20
#define PRINTABLE_LAST 0x7e

enum netstat_order
netstat_host_order(void)
{
	const uint32_t one = 1;
	unsigned char b[sizeof(one)];

	memcpy(b, &one, sizeof(one));
	return (b[0] == 1 ? NETSTAT_LITTLE_ENDIAN : NETSTAT_BIG_ENDIAN);
}

/* Exactly n hex digits at *p (n <= 8); advances *p. Returns 0 or -1. */
static int
hex_field(const char **p, const char *end, size_t n, uint32_t *out)
{
	uint32_t v = 0;
	size_t i;
	int d;

	if ((size_t)(end - *p) < n)
		return (-1);
	for (i = 0; i < n; i++) {
		if ((d = text_hexval((*p)[i])) < 0)
			return (-1);
		v = v << 4 | (uint32_t)d;
	}
	*p += n;
	*out = v;
	return (0);
}

static int
expect(const char **p, const char *end, char c)
{
	if (*p >= end || **p != c)
		return (-1);
	(*p)++;
	return (0);
}

/* One 32-bit word as the kernel printed it -> 4 bytes in network order. */
static void
word_bytes(uint32_t v, enum netstat_order order, unsigned char *out)
{
	int i;

	for (i = 0; i < WORD_BYTES; i++) {
		if (order == NETSTAT_LITTLE_ENDIAN)
			out[i] = (unsigned char)(v >> (8 * i));
		else
			out[i] = (unsigned char)(v >> (8 * (WORD_BYTES - 1 - i)));
	}
}

/* "ADDR:PORT" of a family; ip may be NULL (the remote one is not kept). */
static int
addr_port(const char **p, const char *end, enum netstat_family family,
    enum netstat_order order, unsigned char *ip, unsigned *port)
{
	size_t words = family == NETSTAT_TCP6 ? ADDR_IPV6_LEN / WORD_BYTES : 1;
	uint32_t v;
	size_t i;

	for (i = 0; i < words; i++) {
		if (hex_field(p, end, WORD_DIGITS, &v) == -1)
			return (-1);
		if (ip != NULL)
			word_bytes(v, order, ip + i * WORD_BYTES);
	}
	if (expect(p, end, ':') == -1 ||
	    hex_field(p, end, PORT_DIGITS, &v) == -1)
		return (-1);
	if (port != NULL)
		*port = v;
	return (0);
}

/* Leading spaces, the slot number and its colon. */
static int
slot(const char **p, const char *end)
{
	size_t n = 0;

	while (*p < end && **p == ' ')
		(*p)++;
	while (*p < end && **p >= '0' && **p <= '9' && n <= SLOT_DIGITS_MAX) {
		(*p)++;
		n++;
	}
	if (n == 0 || n > SLOT_DIGITS_MAX)
		return (-1);
	return (expect(p, end, ':'));
}

int
netstat_parse_line(const char *line, size_t len, enum netstat_family family,
    enum netstat_order order, struct netstat_entry *out)
{
	const char *p = line, *end = line + len;
	struct netstat_entry e;
	uint32_t st;

	if ((family != NETSTAT_TCP4 && family != NETSTAT_TCP6) ||
	    (order != NETSTAT_LITTLE_ENDIAN && order != NETSTAT_BIG_ENDIAN) ||
	    len >= NETSTAT_LINE_MAX)
		return (-1);
	memset(&e, 0, sizeof(e));
	e.kind = family == NETSTAT_TCP6 ? ADDR_IPV6 : ADDR_IPV4;
	if (slot(&p, end) == -1 || expect(&p, end, ' ') == -1 ||
	    addr_port(&p, end, family, order, e.ip, &e.port) == -1 ||
	    expect(&p, end, ' ') == -1 ||
	    addr_port(&p, end, family, order, NULL, NULL) == -1 ||
	    expect(&p, end, ' ') == -1 ||
	    hex_field(&p, end, STATE_DIGITS, &st) == -1 ||
	    expect(&p, end, ' ') == -1)
		return (-1);
	for (; p < end; p++)
		if ((unsigned char)*p < PRINTABLE_FIRST ||
		    (unsigned char)*p > PRINTABLE_LAST)
			return (-1);
	e.state = st;
	*out = e;
	return (0);
}

/* The longest run of two or more zero groups: start and length (0: none). */
static void
zero_run(const unsigned g[IPV6_GROUPS], int *start, int *len)
{
	int i, j;

	*start = -1;
	*len = 0;
	for (i = 0; i < IPV6_GROUPS; i = j + 1) {
		for (j = i; j < IPV6_GROUPS && g[j] == 0; j++)
			;
		if (j - i >= 2 && j - i > *len) {
			*start = i;
			*len = j - i;
		}
	}
}

static void
format_ipv6(const unsigned char *ip, char *buf, size_t len)
{
	static const unsigned char v4mapped[V4MAPPED_LEN] = {
		[V4MAPPED_ZEROS] = 0xff, [V4MAPPED_ZEROS + 1] = 0xff
	};
	unsigned g[IPV6_GROUPS];
	size_t n = 0;
	int i, zs, zl;

	if (memcmp(ip, v4mapped, V4MAPPED_LEN) == 0) {
		snprintf(buf, len, "::ffff:%u.%u.%u.%u", ip[12], ip[13],
		    ip[14], ip[15]);
		return;
	}
	for (i = 0; i < IPV6_GROUPS; i++)
		g[i] = (unsigned)ip[2 * i] << 8 | ip[2 * i + 1];
	zero_run(g, &zs, &zl);
	buf[0] = '\0';
	for (i = 0; i < IPV6_GROUPS && n < len; i++) {
		if (i == zs) {
			n += (size_t)snprintf(buf + n, len - n, "::");
			i += zl - 1;
			continue;
		}
		n += (size_t)snprintf(buf + n, len - n, "%s%x",
		    i > 0 && i != zs + zl ? ":" : "", g[i]);
	}
}

char *
netstat_format(enum addr_kind kind, const unsigned char *ip, unsigned port,
    char *buf, size_t len)
{
	char host[IPV6_TEXT_MAX];

	if (len == 0)
		return (buf);
	if (kind == ADDR_IPV4) {
		snprintf(buf, len, "%u.%u.%u.%u:%u", ip[0], ip[1], ip[2], ip[3],
		    port);
	} else if (kind == ADDR_IPV6) {
		format_ipv6(ip, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, port);
	} else {
		snprintf(buf, len, "?");
	}
	return (buf);
}

/* 0.0.0.0, :: or ::ffff:0.0.0.0. */
static int
is_any(const struct netstat_entry *e)
{
	static const unsigned char v4mapped_any[ADDR_IPV6_LEN] = {
		[V4MAPPED_ZEROS] = 0xff, [V4MAPPED_ZEROS + 1] = 0xff
	};

	return (addr_is_unspecified(e->kind, e->ip) || (e->kind == ADDR_IPV6 &&
	    memcmp(e->ip, v4mapped_any, ADDR_IPV6_LEN) == 0));
}

static void
record(struct netstat_scan *s, const struct netstat_entry *e)
{
	struct netstat_finding *f;
	size_t iplen = e->kind == ADDR_IPV6 ? ADDR_IPV6_LEN : ADDR_IPV4_LEN;
	size_t i;

	for (i = 0; i < s->nfound; i++)
		if (s->found[i].kind == e->kind &&
		    memcmp(s->found[i].ip, e->ip, iplen) == 0)
			return;
	s->exposed++;
	if (s->nfound == NETSTAT_FINDINGS_MAX)
		return;
	f = &s->found[s->nfound++];
	memset(f, 0, sizeof(*f));
	f->kind = e->kind;
	memcpy(f->ip, e->ip, iplen);
	f->port = e->port;
	f->any = is_any(e);
	netstat_format(f->kind, f->ip, f->port, f->text, sizeof(f->text));
}

/* The first line of each file is the kernel's column header. */
static int
is_header(const char *line, size_t len)
{
	size_t i = 0;

	while (i < len && line[i] == ' ')
		i++;
	return (len - i >= 3 && memcmp(line + i, "sl ", 3) == 0);
}

static void
take_line(struct netstat_scan *s)
{
	struct netstat_entry e;

	s->lineno++;
	if (s->overlong) {
		s->malformed++;
		return;
	}
	if (s->lineno == 1 && is_header(s->line, s->len))
		return;
	if (netstat_parse_line(s->line, s->len, s->family, s->order,
	    &e) == -1) {
		s->malformed++;
		return;
	}
	s->sockets++;
	if (e.state == NETSTAT_STATE_LISTEN && e.port == s->port &&
	    !addr_is_loopback(e.kind, e.ip))
		record(s, &e);
}

void
netstat_init(struct netstat_scan *s, unsigned port, enum netstat_order order)
{
	memset(s, 0, sizeof(*s));
	s->port = port;
	s->order = order;
	s->family = NETSTAT_TCP4;
}

void
netstat_begin(struct netstat_scan *s, enum netstat_family family)
{
	s->family = family;
	s->len = 0;
	s->overlong = 0;
	s->lineno = 0;
}

void
netstat_feed(struct netstat_scan *s, const char *buf, size_t len)
{
	const char *nl;
	size_t n;

	while (len > 0) {
		nl = memchr(buf, '\n', len);
		n = nl != NULL ? (size_t)(nl - buf) : len;
		if (!s->overlong && n < sizeof(s->line) - s->len) {
			memcpy(s->line + s->len, buf, n);
			s->len += n;
		} else {
			s->overlong = 1;
		}
		if (nl == NULL)
			return;
		take_line(s);
		s->len = 0;
		s->overlong = 0;
		buf += n + 1;
		len -= n + 1;
	}
}

void
netstat_end(struct netstat_scan *s)
{
	if (s->len > 0 || s->overlong)
		take_line(s);
	s->len = 0;
	s->overlong = 0;
}
