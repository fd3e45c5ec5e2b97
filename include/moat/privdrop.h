/* SPDX-License-Identifier: MIT */
/*
 * Privileges: [process] user and group. config.c only checks how the names
 * are spelt; this room asks the system who they are (getpwnam_r,
 * getgrnam_r), drops the process to them for good once the listening
 * sockets are bound and the first snapshot is read, and tells which files
 * a reload would need that the account cannot open.
 *
 * The drop must happen while the process has one thread: the daemon calls
 * privdrop_apply() after binding every worker's sockets and before it
 * starts the worker threads and before libuv's thread pool exists (the
 * pool is created by the first uv_queue_work(), the first reload).
 */
#ifndef MOAT_PRIVDROP_H
#define MOAT_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

struct config;

/* Longest user or group name kept, with its NUL. */
#define PRIVDROP_NAME_MAX 64

/* The account of [process] user and group, as the system knows it. */
struct privdrop_ids {
	int set;                        /* 0: user unset, stay as started */
	uid_t uid;
	gid_t gid;                      /* group, or the user's primary */
	char user[PRIVDROP_NAME_MAX];
	char group[PRIVDROP_NAME_MAX];  /* its name, or its number */
};

/*
 * Look up cfg's [process] user and group into ids (ids->set = 0 when user
 * is unset). Returns 0, or -1 with "FILE:LINE: ..." in err when an
 * account does not exist, cannot be looked up, or is root.
 */
int privdrop_resolve(const struct config *cfg, struct privdrop_ids *ids,
    char *err, size_t errlen);

/*
 * Whether this process can become ids: always as root; otherwise only
 * when it already runs as that user and group. Returns 0, or -1 with
 * "FILE:LINE: ..." in err.
 */
int privdrop_allowed(const struct config *cfg, const struct privdrop_ids *ids,
    char *err, size_t errlen);

/*
 * Become ids for good: supplementary groups cleared, then real, effective,
 * saved and file-system group and user IDs set; then prove that root
 * cannot be regained (setuid(0) must fail), and keep the process out of
 * core dumps and ptrace (it holds the private key). Nothing to do when
 * ids->set is 0 or the process already is ids. Call it while the process
 * has a single thread. Returns 0, or -1 with "FILE:LINE: ..." in err.
 */
int privdrop_apply(const struct config *cfg, const struct privdrop_ids *ids,
    char *err, size_t errlen);

/* "USER:GROUP" of the effective IDs (numbers when they have no name),
 * into the caller's buf. Returns buf. */
const char *privdrop_current(char *buf, size_t len);

/*
 * Try to open, as ids, every file a reload of cfg reads again (moat.ini,
 * [tls] cert, key, ca, crl, [identity] map, hmac_secret_file and a
 * password file). As root it forks a child that drops to ids and opens
 * them; as ids itself it opens them directly; otherwise, or when user is
 * unset, it checks nothing. Calls warn(arg, where, message) for each file
 * that cannot be opened, where being "FILE:LINE" of its setting. Returns
 * the number of such files, or -1 when the check could not run (also
 * reported through warn).
 */
int privdrop_check_files(const struct config *cfg,
    const struct privdrop_ids *ids,
    void (*warn)(void *arg, const char *where, const char *msg), void *arg);

#endif
