/* SPDX-License-Identifier: MIT */
/*
 * Socket addresses for the listeners and the backend, and the rule that
 * keeps plaintext on the host. moat decrypts device traffic, rewrites the
 * MQTT CONNECT with broker credentials and forwards it unencrypted, so the
 * broker it forwards to must be reachable only on this host: a loopback
 * address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104) or a Unix socket. The
 * rule is checked here, once, for every address a backend name resolves to;
 * nothing else in moat decides what counts as "local".
 *
 * Pure: parsing and getaddrinfo(3), no event loop.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "moat/backend.h"
#include "moat/text.h"

/* Longest host name we accept (RFC 1035 limit on a full domain name). */
#define HOST_MAX 253

/* The advice every refusal of an off-host backend ends with. */
#define LOOPBACK_ADVICE                                                 \
	"moat sends plaintext MQTT to the broker, which must never "    \
	"leave this host. Bind the broker to 127.0.0.1 (Mosquitto: "    \
	"\"listener 1883 127.0.0.1\") and use address = "               \
	"127.0.0.1:1883, or a Unix socket: "                            \
	"address = unix:/run/mosquitto/mosquitto.sock"

_Static_assert(sizeof(((struct backend_addr *)0)->path) ==
    sizeof(((struct sockaddr_un *)0)->sun_path),
    "backend_addr.path must match sun_path");

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
		if (v > 65535)
			return (-1);
	}
	if (v < min)
		return (-1);
	*port = (unsigned)v;
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
	const char *colon, *end;
	size_t n;

	*bracketed = 0;
	if (spec[0] == '[') {
		end = strchr(spec, ']');
		if (end == NULL) {
			snprintf(err, errlen, "address \"%s\" has \"[\" "
			    "without \"]\"; write IPv6 addresses as "
			    "[::1]:1883", spec);
			return (-1);
		}
		if (end[1] != ':') {
			snprintf(err, errlen, "address \"%s\" has no port "
			    "after \"]\"; write it as [::1]:1883", spec);
			return (-1);
		}
		n = (size_t)(end - (spec + 1));
		if (n >= hostlen) {
			snprintf(err, errlen, "address \"%s\": the part in "
			    "brackets is too long for an IPv6 address", spec);
			return (-1);
		}
		memcpy(host, spec + 1, n);
		host[n] = '\0';
		*port = end + 2;
		*bracketed = 1;
		return (0);
	}

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

/* Fill out with an IP literal, or return -1 when host is not one. */
static int
ip_literal(const char *host, int bracketed, unsigned port,
    struct sockaddr_storage *out, socklen_t *outlen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)out;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;

	memset(out, 0, sizeof(*out));
	if (bracketed) {
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return (-1);
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*outlen = sizeof(*sin6);
		return (0);
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return (-1);
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	*outlen = sizeof(*sin);
	return (0);
}

/* 1 for 0.0.0.0 and ::, which mean "any address" when binding. */
static int
is_unspecified(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (((const struct sockaddr_in *)sa)->sin_addr.s_addr ==
		    htonl(INADDR_ANY));
	if (sa->sa_family == AF_INET6)
		return (IN6_IS_ADDR_UNSPECIFIED(
		    &((const struct sockaddr_in6 *)sa)->sin6_addr));
	return (0);
}

/* Only what a DNS name can hold: keeps odd bytes away from getaddrinfo. */
static int
hostname_ok(const char *host)
{
	const char *p;

	if (*host == '\0' || strlen(host) > HOST_MAX)
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
	char shown[96];
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
parse_unix(const char *spec, struct backend_addr *out, char *err,
    size_t errlen)
{
	const char *path = spec + strlen("unix:");
	struct sockaddr_un *sun = (struct sockaddr_un *)&out->sa;
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
	out->is_unix = 1;
	memcpy(out->path, path, n + 1);
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n + 1);
	out->salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    n + 1);
	snprintf(out->text, sizeof(out->text), "unix:%s", path);
	return (0);
}

/*
 * Resolve a host name; every address must be loopback. The IPv4 loopback
 * is preferred over ::1 when a name has both, because brokers are most
 * often bound to 127.0.0.1 and "localhost" may list ::1 first.
 */
static int
resolve(const char *spec, const char *host, unsigned port,
    struct backend_addr *out, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *ai, *pick = NULL;
	char addr[INET6_ADDRSTRLEN];
	const void *ip;
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve backend host \"%s\": "
		    "%s; use an address such as 127.0.0.1:1883",
		    host, rc == EAI_SYSTEM ? strerror(errno) :
		    gai_strerror(rc));
		return (-1);
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
			continue;
		if (!backend_is_loopback(ai->ai_addr)) {
			ip = ai->ai_family == AF_INET ?
			    (const void *)&((struct sockaddr_in *)
			    ai->ai_addr)->sin_addr :
			    (const void *)&((struct sockaddr_in6 *)
			    ai->ai_addr)->sin6_addr;
			if (inet_ntop(ai->ai_family, ip, addr,
			    sizeof(addr)) == NULL)
				snprintf(addr, sizeof(addr), "?");
			snprintf(err, errlen, "backend address %s resolves to "
			    "%s, which is not a loopback address: %s",
			    spec, addr, LOOPBACK_ADVICE);
			goto fail;
		}
		if (pick == NULL || (pick->ai_family == AF_INET6 &&
		    ai->ai_family == AF_INET))
			pick = ai;
	}
	if (pick == NULL) {
		snprintf(err, errlen, "backend host \"%s\" has no IPv4 or "
		    "IPv6 address", host);
		goto fail;
	}
	memset(&out->sa, 0, sizeof(out->sa));
	memcpy(&out->sa, pick->ai_addr, pick->ai_addrlen);
	out->salen = pick->ai_addrlen;
	if (pick->ai_family == AF_INET)
		((struct sockaddr_in *)&out->sa)->sin_port =
		    htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)&out->sa)->sin6_port =
		    htons((uint16_t)port);
	freeaddrinfo(res);
	return (0);

fail:
	freeaddrinfo(res);
	return (-1);
}

int
backend_parse(const char *spec, struct backend_addr *out, char *err,
    size_t errlen)
{
	char host[HOST_MAX + 1];
	const char *portstr;
	unsigned port;
	int bracketed;

	memset(out, 0, sizeof(*out));
	if (spec == NULL || *spec == '\0') {
		snprintf(err, errlen, "backend address is empty; use "
		    "127.0.0.1:1883 or unix:/run/mosquitto/mosquitto.sock");
		return (-1);
	}
	if (printable("backend", spec, err, errlen) == -1)
		return (-1);
	if (strncmp(spec, "unix:", 5) == 0)
		return (parse_unix(spec, out, err, errlen));

	if (split_host_port(spec, host, sizeof(host), &portstr, &bracketed,
	    err, errlen) == -1)
		return (-1);
	if (parse_port(portstr, 1, &port) == -1) {
		snprintf(err, errlen, "backend address %s: port \"%s\" must be "
		    "a number from 1 to 65535", spec, portstr);
		return (-1);
	}

	if (ip_literal(host, bracketed, port, &out->sa, &out->salen) == 0) {
		if (is_unspecified((struct sockaddr *)&out->sa)) {
			snprintf(err, errlen, "backend address %s means \"any "
			    "address\", not loopback, and cannot be connected "
			    "to safely: %s", spec, LOOPBACK_ADVICE);
			return (-1);
		}
		if (!backend_is_loopback((struct sockaddr *)&out->sa)) {
			snprintf(err, errlen, "backend address %s is not a "
			    "loopback address: %s", spec, LOOPBACK_ADVICE);
			return (-1);
		}
	} else if (bracketed) {
		snprintf(err, errlen, "backend address %s: \"%s\" is not an "
		    "IPv6 address", spec, host);
		return (-1);
	} else if (!hostname_ok(host)) {
		snprintf(err, errlen, "backend address %s: \"%s\" is not an "
		    "IPv4 address or a host name", spec, host);
		return (-1);
	} else if (resolve(spec, host, port, out, err, errlen) == -1)
		return (-1);

	backend_format((struct sockaddr *)&out->sa, out->text,
	    sizeof(out->text));
	return (0);
}

int
backend_parse_listen(const char *spec, struct sockaddr_storage *out,
    char *err, size_t errlen)
{
	char host[HOST_MAX + 1];
	const char *portstr;
	unsigned port;
	int bracketed;
	socklen_t len;

	memset(out, 0, sizeof(*out));
	if (spec == NULL || *spec == '\0') {
		snprintf(err, errlen, "listen address is empty; use for "
		    "example 0.0.0.0:8883 or [::]:8883");
		return (-1);
	}
	if (printable("listen", spec, err, errlen) == -1)
		return (-1);
	if (split_host_port(spec, host, sizeof(host), &portstr, &bracketed,
	    err, errlen) == -1)
		return (-1);
	if (parse_port(portstr, 0, &port) == -1) {
		snprintf(err, errlen, "listen address %s: port \"%s\" must be "
		    "a number from 0 to 65535", spec, portstr);
		return (-1);
	}
	if (!bracketed && strcmp(host, "*") == 0)
		snprintf(host, sizeof(host), "0.0.0.0");
	if (ip_literal(host, bracketed, port, out, &len) == -1) {
		snprintf(err, errlen, "listen address %s: \"%s\" is not an IP "
		    "address; listen on an address of this host such as "
		    "0.0.0.0:8883 (all IPv4), [::]:8883 (all IPv6) or "
		    "192.0.2.7:8883; host names are not accepted, so that "
		    "what moat binds never depends on DNS", spec, host);
		return (-1);
	}
	return (0);
}

int
backend_is_loopback(const struct sockaddr *sa)
{
	const struct in6_addr *a6;
	uint32_t a4;

	if (sa == NULL)
		return (0);
	if (sa->sa_family == AF_INET) {
		a4 = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
		return ((a4 >> 24) == 127);
	}
	if (sa->sa_family == AF_INET6) {
		a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a6))
			return (1);
		if (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127)
			return (1);
	}
	return (0);
}

char *
backend_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;

	if (len == 0)
		return (buf);
	if (sa == NULL) {
		snprintf(buf, len, "?");
		return (buf);
	}
	switch (sa->sa_family) {
	case AF_INET:
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(sin->sin_port));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(sin6->sin6_port));
		break;
	case AF_UNIX:
		snprintf(buf, len, "unix:%.*s",
		    (int)sizeof(((struct sockaddr_un *)0)->sun_path),
		    ((const struct sockaddr_un *)sa)->sun_path);
		break;
	default:
		snprintf(buf, len, "(address family %d)", sa->sa_family);
		break;
	}
	return (buf);
}

/* Does a TCP connect to sa succeed within timeout_ms? */
static int
port_open(const struct sockaddr *sa, socklen_t salen, int timeout_ms)
{
	struct pollfd pfd;
	socklen_t elen = sizeof(int);
	int fd, e = 0, open_ = 0;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0);
	if (fd < 0)
		return (0);
	if (connect(fd, sa, salen) == 0) {
		open_ = 1;
	} else if (errno == EINPROGRESS) {
		pfd.fd = fd;
		pfd.events = POLLOUT;
		if (poll(&pfd, 1, timeout_ms) == 1 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) == 0 &&
		    e == 0)
			open_ = 1;
	}
	close(fd);
	return (open_);
}

int
backend_exposed(const struct backend_addr *b, int timeout_ms, char *where,
    size_t len)
{
	struct ifaddrs *ifs, *i;
	struct sockaddr_storage ss;
	socklen_t salen;
	in_port_t port;
	int found = 0;

	if (b->is_unix)
		return (0);
	port = b->sa.ss_family == AF_INET6 ?
	    ((const struct sockaddr_in6 *)&b->sa)->sin6_port :
	    ((const struct sockaddr_in *)&b->sa)->sin_port;
	if (getifaddrs(&ifs) != 0)
		return (0);
	for (i = ifs; i != NULL && !found; i = i->ifa_next) {
		if (i->ifa_addr == NULL || (i->ifa_addr->sa_family != AF_INET &&
		    i->ifa_addr->sa_family != AF_INET6) ||
		    backend_is_loopback(i->ifa_addr))
			continue;
		memset(&ss, 0, sizeof(ss));
		if (i->ifa_addr->sa_family == AF_INET) {
			salen = sizeof(struct sockaddr_in);
			memcpy(&ss, i->ifa_addr, salen);
			((struct sockaddr_in *)&ss)->sin_port = port;
		} else {
			salen = sizeof(struct sockaddr_in6);
			memcpy(&ss, i->ifa_addr, salen);
			((struct sockaddr_in6 *)&ss)->sin6_port = port;
		}
		if (port_open((struct sockaddr *)&ss, salen, timeout_ms)) {
			backend_format((struct sockaddr *)&ss, where, len);
			found = 1;
		}
	}
	freeifaddrs(ifs);
	return (found);
}
