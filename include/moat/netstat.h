/* SPDX-License-Identifier: MIT */
/*
 * The exposure audit's pure half: reads the text of Linux's
 * /proc/net/tcp and /proc/net/tcp6 (fed in pieces, as read) and finds the
 * sockets listening on one TCP port on an address other than loopback:
 * 0.0.0.0, ::, or a specific address of the host. Those are the ways a
 * broker's plaintext port stays reachable from the network next to moat.
 * Lines are parsed strictly (fixed-width hex fields, one space between
 * them, a length cap); a line that does not parse is counted and skipped.
 * Memory is fixed: the scanner holds one line and a few findings.
 */
#ifndef MOAT_NETSTAT_H
#define MOAT_NETSTAT_H

#include <stddef.h>

#include "moat/addr.h"

/* Longest line accepted; the kernel pads its lines to 150 (tcp) or 178. */
#define NETSTAT_LINE_MAX 512
/* Findings kept (more are counted in exposed, not stored). */
#define NETSTAT_FINDINGS_MAX 8
/* Room for "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535". */
#define NETSTAT_TEXT_MAX 56
/* The kernel's TCP_LISTEN, as the "st" column prints it. */
#define NETSTAT_STATE_LISTEN 0x0A

enum netstat_family {
	NETSTAT_TCP4 = 1,             /* /proc/net/tcp: 8 hex digits */
	NETSTAT_TCP6,                 /* /proc/net/tcp6: 32 hex digits */
};

/*
 * The kernel prints each 32-bit word of an address as a number in the
 * host's byte order; decoding it needs that order.
 */
enum netstat_order {
	NETSTAT_LITTLE_ENDIAN = 1,
	NETSTAT_BIG_ENDIAN,
};

/* One socket line, decoded. */
struct netstat_entry {
	enum addr_kind kind;          /* ADDR_IPV4 or ADDR_IPV6 */
	unsigned char ip[ADDR_IPV6_LEN];      /* local address, network order */
	unsigned port;                /* local port */
	unsigned state;               /* the "st" column */
};

/* A socket listening on the port on a non-loopback address. */
struct netstat_finding {
	enum addr_kind kind;
	unsigned char ip[ADDR_IPV6_LEN];
	unsigned port;
	int any;                      /* 0.0.0.0, :: or ::ffff:0.0.0.0 */
	char text[NETSTAT_TEXT_MAX];  /* "0.0.0.0:1883", "[::]:1883" */
};

/* Caller-owned scanner; netstat_init sets every field. */
struct netstat_scan {
	unsigned port;
	enum netstat_order order;
	enum netstat_family family;   /* of the file being fed */
	char line[NETSTAT_LINE_MAX];
	size_t len;
	int overlong;                 /* the current line passed the cap */
	unsigned long lineno;         /* in the current file */
	unsigned long sockets;        /* lines decoded, all files */
	unsigned long malformed;      /* lines skipped, all files */
	unsigned long exposed;        /* distinct findings, also past the cap */
	size_t nfound;
	struct netstat_finding found[NETSTAT_FINDINGS_MAX];
};

/* The byte order of this host. */
enum netstat_order netstat_host_order(void);

/* Start an audit of TCP port port (1..65535); clears everything. */
void netstat_init(struct netstat_scan *s, unsigned port,
    enum netstat_order order);

/* Start one file; findings and counters carry on across files. */
void netstat_begin(struct netstat_scan *s, enum netstat_family family);

/* Feed the next len bytes of the current file (any split). */
void netstat_feed(struct netstat_scan *s, const char *buf, size_t len);

/* End the current file (a last line without a newline still counts). */
void netstat_end(struct netstat_scan *s);

/*
 * Decode one data line (without its newline) of a family file. Returns 0
 * and fills out, or -1 when the line is not exactly the kernel's format.
 */
int netstat_parse_line(const char *line, size_t len,
    enum netstat_family family, enum netstat_order order,
    struct netstat_entry *out);

/*
 * Print an address and port as "1.2.3.4:5" or "[v6]:5" (RFC 5952: lower
 * case, the longest run of zero groups as "::", ::ffff:a.b.c.d for an
 * IPv4-mapped address) into buf. Returns buf.
 */
char *netstat_format(enum addr_kind kind, const unsigned char *ip,
    unsigned port, char *buf, size_t len);

#endif
