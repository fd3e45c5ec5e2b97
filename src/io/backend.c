/* SPDX-License-Identifier: MIT */
/*
 * Socket addresses for the listeners and the backend, on the I/O side of
 * the address rules. The text forms, the ports and the loopback rule on
 * literals live in src/core/addr.c; here a parsed address becomes a
 * sockaddr, a backend host name is resolved (once, when a snapshot is
 * built) and every address it resolves to must pass the same loopback
 * rule, addresses are formatted for logs, and the exposure audit reads
 * /proc for a broker port left listening off loopback (the decision is
 * netstat.c's).
 *
 * Blocking: getaddrinfo(3) and reading /proc; no event loop.
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moat/addr.h"
#include "moat/backend.h"
#include "moat/netstat.h"

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
backend_set_source(struct backend_addr *b, const char *spec, char *err,
    size_t errlen)
{
	struct addr be;

	memset(&b->source, 0, sizeof(b->source));
	memset(&be, 0, sizeof(be));
	if (addr_parse_source(spec, &b->source, err, errlen) == -1)
		goto fail;
	/* The family of what the backend resolved to, as addr.c knows it. */
	be.kind = b->is_unix ? ADDR_UNIX : b->sa.ss_family == AF_INET6 ?
	    ADDR_IPV6 : ADDR_IPV4;
	snprintf(be.host, sizeof(be.host), "%s", b->text);
	if (addr_source_fits(&b->source, &be, err, errlen) == -1)
		goto fail;
	return (0);

fail:
	memset(&b->source, 0, sizeof(b->source));
	return (-1);
}

socklen_t
backend_source_sockaddr(const struct backend_addr *b, unsigned i,
    struct sockaddr_storage *out)
{
	struct addr a;
	socklen_t len;

	if (b->source.count == 0)
		return (0);
	memset(&a, 0, sizeof(a));
	a.kind = b->source.kind;
	addr_source_nth(&b->source, i, a.ip);
	ip_sockaddr(&a, out, &len);
	return (len);
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

/*
 * /proc/self/net rather than /proc/net: the same files (/proc/net is a
 * link to it), but still there under systemd's ProcSubset=pid, which
 * hides /proc/net.
 */
#define PROC_TCP4 "/proc/self/net/tcp"
#define PROC_TCP6 "/proc/self/net/tcp6"
#define READ_CHUNK 4096

/*
 * Feed one /proc file to the scan. Returns 0, or -1 with errno set when it
 * cannot be opened or read.
 */
static int
scan_file(struct netstat_scan *scan, const char *path,
    enum netstat_family family)
{
	char buf[READ_CHUNK];
	ssize_t n;
	int fd, e;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return (-1);
	netstat_begin(scan, family);
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			close(fd);
			errno = e;
			return (-1);
		}
		netstat_feed(scan, buf, (size_t)n);
	}
	netstat_end(scan);
	close(fd);
	return (0);
}

/* "a, b, c (and N more)" from the findings, bounded by out's size. */
static void
list_findings(const struct netstat_scan *scan, struct backend_exposure *out)
{
	size_t i, n = 0;

	out->where[0] = '\0';
	for (i = 0; i < scan->nfound && n < sizeof(out->where); i++)
		n += (size_t)snprintf(out->where + n, sizeof(out->where) - n,
		    "%s%s", i > 0 ? ", " : "", scan->found[i].text);
	if (scan->exposed > scan->nfound && n < sizeof(out->where))
		snprintf(out->where + n, sizeof(out->where) - n,
		    " (and %lu more)", scan->exposed - scan->nfound);
}

enum backend_exposure_state
backend_audit(const struct backend_addr *b, struct backend_exposure *out)
{
	struct netstat_scan *scan;
	const char *failed = NULL;
	unsigned port;

	memset(out, 0, sizeof(*out));
	if (b->is_unix)
		return (out->state = BACKEND_EXPOSURE_CLEAR);
	port = ntohs(b->sa.ss_family == AF_INET6 ?
	    ((const struct sockaddr_in6 *)&b->sa)->sin6_port :
	    ((const struct sockaddr_in *)&b->sa)->sin_port);
	/* About 5 KiB: not on the stack of a worker's caller. */
	if ((scan = malloc(sizeof(*scan))) == NULL) {
		snprintf(out->why, sizeof(out->why), "out of memory");
		return (out->state = BACKEND_EXPOSURE_UNKNOWN);
	}
	netstat_init(scan, port, netstat_host_order());
	/* No tcp6 file means a kernel without IPv6: nothing listens there. */
	if (scan_file(scan, PROC_TCP4, NETSTAT_TCP4) == -1)
		failed = PROC_TCP4;
	else if (scan_file(scan, PROC_TCP6, NETSTAT_TCP6) == -1 &&
	    errno != ENOENT)
		failed = PROC_TCP6;
	if (failed != NULL) {
		snprintf(out->why, sizeof(out->why), "cannot read %s: %s",
		    failed, strerror(errno));
		out->state = BACKEND_EXPOSURE_UNKNOWN;
	} else if (scan->exposed > 0) {
		out->count = scan->exposed;
		list_findings(scan, out);
		out->state = BACKEND_EXPOSURE_FOUND;
	} else if (scan->malformed > 0) {
		/* A format this reader does not know could hide a listener. */
		snprintf(out->why, sizeof(out->why), "%lu line(s) of %s and "
		    "%s are not in the expected format", scan->malformed,
		    PROC_TCP4, PROC_TCP6);
		out->state = BACKEND_EXPOSURE_UNKNOWN;
	}
	free(scan);
	return (out->state);
}
