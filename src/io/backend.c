/* SPDX-License-Identifier: MIT */
/*
 * Socket addresses for the listeners and the backend, on the I/O side of
 * the address rules. The text forms, the ports and the loopback rule on
 * literals live in src/core/addr.c; here a parsed address becomes a
 * sockaddr, a backend host name is resolved (once, when a snapshot is
 * built) and every address it resolves to must pass the same loopback
 * rule, addresses are formatted for logs, and --check probes for a broker
 * port left open on the host's other addresses.
 *
 * Blocking: getaddrinfo(3) and the connect probe; no event loop.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "moat/addr.h"
#include "moat/backend.h"

_Static_assert(sizeof(((struct backend_addr *)0)->path) ==
    sizeof(((struct sockaddr_un *)0)->sun_path),
    "backend_addr.path must match sun_path");
_Static_assert(sizeof(((struct backend_addr *)0)->path) == ADDR_UNIX_PATH_MAX,
    "backend_addr.path must match ADDR_UNIX_PATH_MAX");

/* An IP literal parsed by addr.c as a sockaddr with port set. */
static void
ip_sockaddr(const struct addr *a, struct sockaddr_storage *out,
    socklen_t *outlen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)out;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;

	memset(out, 0, sizeof(*out));
	if (a->kind == ADDR_IPV6) {
		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, a->ip, ADDR_IPV6_LEN);
		sin6->sin6_port = htons((uint16_t)a->port);
		*outlen = sizeof(*sin6);
		return;
	}
	sin->sin_family = AF_INET;
	memcpy(&sin->sin_addr, a->ip, ADDR_IPV4_LEN);
	sin->sin_port = htons((uint16_t)a->port);
	*outlen = sizeof(*sin);
}

/* A Unix socket path checked by addr.c as a backend_addr. */
static void
unix_sockaddr(const struct addr *a, struct backend_addr *out)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&out->sa;
	size_t n = strlen(a->path);

	out->is_unix = 1;
	memcpy(out->path, a->path, n + 1);
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, a->path, n + 1);
	out->salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    n + 1);
	snprintf(out->text, sizeof(out->text), "unix:%s", a->path);
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
			    spec, addr, addr_loopback_advice);
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
	struct addr a;

	memset(out, 0, sizeof(*out));
	if (addr_parse_backend(spec, &a, err, errlen) == -1)
		return (-1);
	switch (a.kind) {
	case ADDR_UNIX:
		unix_sockaddr(&a, out);
		return (0);
	case ADDR_NAME:
		if (resolve(spec, a.host, a.port, out, err, errlen) == -1)
			return (-1);
		break;
	default:
		ip_sockaddr(&a, &out->sa, &out->salen);
		break;
	}
	backend_format((struct sockaddr *)&out->sa, out->text,
	    sizeof(out->text));
	return (0);
}

int
backend_parse_listen(const char *spec, struct sockaddr_storage *out,
    char *err, size_t errlen)
{
	struct addr a;
	socklen_t len;

	memset(out, 0, sizeof(*out));
	if (addr_parse_listen(spec, &a, err, errlen) == -1)
		return (-1);
	ip_sockaddr(&a, out, &len);
	return (0);
}

int
backend_is_loopback(const struct sockaddr *sa)
{
	if (sa == NULL)
		return (0);
	if (sa->sa_family == AF_INET)
		return (addr_is_loopback(ADDR_IPV4, (const unsigned char *)
		    &((const struct sockaddr_in *)sa)->sin_addr));
	if (sa->sa_family == AF_INET6)
		return (addr_is_loopback(ADDR_IPV6, (const unsigned char *)
		    &((const struct sockaddr_in6 *)sa)->sin6_addr));
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
