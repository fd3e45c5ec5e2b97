/* SPDX-License-Identifier: MIT */
/*
 * The systemd notification protocol, spoken directly: one datagram to the
 * Unix socket named by $NOTIFY_SOCKET ("READY=1", "RELOADING=1",
 * "STOPPING=1"). A few lines instead of a libsystemd dependency; without
 * $NOTIFY_SOCKET (not run by systemd) nothing is sent.
 */
#ifndef MOAT_NOTIFY_H
#define MOAT_NOTIFY_H

/* Send state to the service manager, if there is one. Returns 0 when sent
 * or not asked for, -1 when sending failed (worth a warning, not fatal). */
int notify_send(const char *state);

/*
 * The service manager's watchdog interval in microseconds ($WATCHDOG_USEC,
 * for this process when $WATCHDOG_PID is set), or 0 when there is none:
 * then "WATCHDOG=1" must come more often than that.
 */
unsigned long long notify_watchdog_usec(void);

#endif
