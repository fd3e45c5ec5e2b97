/* SPDX-License-Identifier: MIT */
/*
 * Socket addresses for listeners and the backend, and the rule that keeps
 * plaintext on the host: the backend must be a loopback address
 * (127.0.0.0/8 or ::1) or a Unix socket. The I/O side of addr.h: it builds
 * sockaddrs and resolves host names (blocking, no event loop); the text
 * rules it applies are addr.c's.
 */
#ifndef MOAT_BACKEND_H
#define MOAT_BACKEND_H

#include <stddef.h>
#include <sys/socket.h>

#include "moat/addr.h"

struct backend_addr {
	int is_unix;                  /* 1: path is set; 0: sa is set */
	char path[108];               /* Unix socket path (sun_path size) */
	struct sockaddr_storage sa;   /* TCP address, port set */
	socklen_t salen;
	char text[128];               /* printable form for logs */
	struct addr_source source;    /* [backend] source; count 0: none */
};

/*
 * Parse a backend address: "host:port", "[v6addr]:port" or "unix:/path".
 * host may be a name; it is resolved now and every address it resolves to
 * must be loopback. Returns 0, or -1 with a message in err (no "file:line"
 * prefix) that says why plaintext must stay on the host and how to fix it.
 */
int backend_parse(const char *spec, struct backend_addr *out, char *err,
    size_t errlen);

/*
 * Parse a listen address: "ipv4:port" or "[ipv6]:port" (IP literals only;
 * "*:port" means 0.0.0.0). Port 0 asks the kernel for a free port. Returns 0
 * or -1 with a message in err.
 */
int backend_parse_listen(const char *spec, struct sockaddr_storage *out,
    char *err, size_t errlen);

/* 1 when sa is 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104; else 0. */
int backend_is_loopback(const struct sockaddr *sa);

/*
 * Set b->source from a [backend] source value, b being parsed already
 * (backend_parse): refused for a Unix socket, and unless its family is
 * the family of the address b resolved to. Returns 0, or -1 with why in
 * err (no "file:line").
 */
int backend_set_source(struct backend_addr *b, const char *spec, char *err,
    size_t errlen);

/*
 * The i-th source address of b (i modulo their number) as a sockaddr
 * with port 0, for bind(2) before connect. Returns its length, or 0 when
 * b has no source.
 */
socklen_t backend_source_sockaddr(const struct backend_addr *b, unsigned i,
    struct sockaddr_storage *out);

/* Room for the exposed addresses, ", "-separated, in one line. */
#define BACKEND_EXPOSURE_TEXT 512

enum backend_exposure_state {
	BACKEND_EXPOSURE_CLEAR = 0,   /* nothing found (or a Unix socket) */
	BACKEND_EXPOSURE_FOUND,       /* count and where are set */
	BACKEND_EXPOSURE_UNKNOWN,     /* the audit could not run: why */
};

/* What the exposure audit found; a plain value, owned by its holder. */
struct backend_exposure {
	enum backend_exposure_state state;
	unsigned long count;          /* distinct addresses on the port */
	char where[BACKEND_EXPOSURE_TEXT];    /* "0.0.0.0:1883, [::]:1883" */
	char why[BACKEND_EXPOSURE_TEXT];      /* UNKNOWN: what failed */
};

/*
 * The classic mistake of leaving the broker's plaintext port open next to
 * moat's: look in /proc/self/net/tcp and tcp6 for a socket listening on
 * the backend's TCP port on an address that is not loopback (0.0.0.0, ::
 * or a specific one). Reads files only: no socket, no connect, so it works
 * inside moat's systemd sandbox. Fills out; returns its state.
 */
enum backend_exposure_state backend_audit(const struct backend_addr *b,
    struct backend_exposure *out);

/* Format sa as "1.2.3.4:5" or "[::1]:5" into buf; returns buf. */
char *backend_format(const struct sockaddr *sa, char *buf, size_t len);

#endif
