/* SPDX-License-Identifier: MIT */
/*
 * Address rules, without sockets: the text forms moat accepts for listen
 * and backend addresses ("host:port", "[v6]:port", "*:port",
 * "unix:/path"), strict IPv4 and IPv6 literals, the port ranges, and the
 * rule that keeps plaintext on the host, applied to literals (127.0.0.0/8,
 * ::1, ::ffff:127.0.0.0/104). Config checking uses these alone; a host name
 * is only checked for its spelling here and is resolved later, on the I/O
 * side (backend.c), which applies the same loopback rule to every address
 * the name resolves to. Also the [backend] source addresses and ranges.
 * Addresses are bytes in network order.
 */
#ifndef MOAT_ADDR_H
#define MOAT_ADDR_H

#include <stddef.h>

#define ADDR_IPV4_LEN 4
#define ADDR_IPV6_LEN 16
/* Longest host name accepted (RFC 1035 limit on a full domain name). */
#define ADDR_HOST_MAX 253
/* Room for a Unix socket path with its NUL (Linux sun_path). */
#define ADDR_UNIX_PATH_MAX 108

enum addr_kind {
	ADDR_IPV4 = 1,                /* ip[0..3] and port are set */
	ADDR_IPV6,                    /* ip[0..15] and port are set */
	ADDR_NAME,                    /* host and port are set */
	ADDR_UNIX,                    /* path is set */
};

struct addr {
	enum addr_kind kind;
	unsigned char ip[ADDR_IPV6_LEN];      /* network order */
	unsigned port;
	char host[ADDR_HOST_MAX + 1];         /* the host part as written */
	char path[ADDR_UNIX_PATH_MAX];        /* without "unix:" */
};

/*
 * The advice every refusal of an off-host backend ends with: why plaintext
 * must stay on the host and how to configure the broker.
 */
extern const char addr_loopback_advice[];

/*
 * Parse a dotted quad "a.b.c.d": four decimal numbers 0..255 with no
 * leading zeros, nothing else (the forms inet_pton(3) accepts, not the
 * shorter or octal ones of inet_aton). Writes 4 bytes to out only on
 * success. Returns 0 or -1.
 */
int addr_parse_ipv4(const char *s, unsigned char out[ADDR_IPV4_LEN]);

/*
 * Parse an IPv6 literal: eight groups of 1-4 hex digits, at most one "::"
 * standing for one or more zero groups, and optionally a dotted quad as
 * the last 32 bits. No brackets, zone or prefix. Writes 16 bytes to out
 * only on success. Returns 0 or -1.
 */
int addr_parse_ipv6(const char *s, unsigned char out[ADDR_IPV6_LEN]);

/*
 * 1 when ip (4 bytes for ADDR_IPV4, 16 for ADDR_IPV6) is 127.0.0.0/8, ::1
 * or ::ffff:127.0.0.0/104; else 0 (also for any other kind).
 */
int addr_is_loopback(enum addr_kind kind, const unsigned char *ip);

/* 1 when ip is 0.0.0.0 or ::, "any address" when binding; else 0. */
int addr_is_unspecified(enum addr_kind kind, const unsigned char *ip);

/*
 * Check a backend address: "host:port" (port 1..65535), "[v6]:port" or
 * "unix:/absolute/path". An IP literal must be loopback; a host name must
 * be spelled like a DNS name and is not resolved (out->kind ADDR_NAME).
 * Fills out (caller-owned). Returns 0, or -1 with a message in err (no
 * "file:line" prefix) that says what is wrong and how to fix it.
 */
int addr_parse_backend(const char *spec, struct addr *out, char *err,
    size_t errlen);

/*
 * Check a listen address: "ipv4:port", "[ipv6]:port" or "*:port" (meaning
 * 0.0.0.0), port 0..65535 (0 asks the kernel for one). IP literals only,
 * so what moat binds never depends on DNS. Fills out (caller-owned).
 * Returns 0, or -1 with a message in err.
 */
int addr_parse_listen(const char *spec, struct addr *out, char *err,
    size_t errlen);

/*
 * [backend] source: the loopback addresses moat's connections to the
 * broker come from. Linux picks a TCP source port per (source address,
 * destination) from about 28,000 ephemeral ports, so connections to one
 * broker port from one address run out near that; each further source
 * address adds as many again.
 */
#define ADDR_SOURCE_MAX 256

struct addr_source {
	enum addr_kind kind;                  /* ADDR_IPV4 or ADDR_IPV6 */
	unsigned char first[ADDR_IPV6_LEN];   /* network order */
	unsigned count;                       /* 1..ADDR_SOURCE_MAX */
};

/*
 * Parse a source: one address ("127.0.0.2", "::1") or an IPv4 range
 * "FIRST-LAST" ("127.0.0.2-127.0.0.9"), loopback only (127.0.0.0/8
 * without its first and last address, or ::1), first <= last, at most
 * ADDR_SOURCE_MAX addresses. Fills out (caller-owned). Returns 0, or -1
 * with what is wrong and how to fix it in err (no "file:line").
 */
int addr_parse_source(const char *spec, struct addr_source *out, char *err,
    size_t errlen);

/*
 * Whether a parsed source can be used with a parsed backend: not with a
 * Unix socket, and of the same family as an IP literal (a host name is
 * checked once resolved, in backend.c). Returns 0, or -1 with why in err.
 */
int addr_source_fits(const struct addr_source *src, const struct addr *be,
    char *err, size_t errlen);

/*
 * The i-th address of src (i is taken modulo src->count) into ip: 4 bytes
 * for ADDR_IPV4, 16 for ADDR_IPV6, network order.
 */
void addr_source_nth(const struct addr_source *src, unsigned i,
    unsigned char ip[ADDR_IPV6_LEN]);

#endif
