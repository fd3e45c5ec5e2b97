/* SPDX-License-Identifier: MIT */
/*
 * sd_notify without libsystemd (see notify.h). The socket path may be a
 * file system path or, with a leading '@', an abstract socket name.
 */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "moat/notify.h"

int
notify_send(const char *state)
{
	struct sockaddr_un sa;
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len;
	ssize_t n;
	int fd;

	if (path == NULL || path[0] == '\0')
		return (0);
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return (-1);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return (-1);
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL,
	    (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un,
	    sun_path) + len));
	close(fd);
	return (n == (ssize_t)strlen(state) ? 0 : -1);
}

unsigned long long
notify_watchdog_usec(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	unsigned long long v;
	char *end;

	if (usec == NULL || *usec == '\0')
		return (0);
	if (pid != NULL && *pid != '\0' &&
	    strtoull(pid, &end, 10) != (unsigned long long)getpid())
		return (0);
	v = strtoull(usec, &end, 10);
	return (*end == '\0' ? v : 0);
}
