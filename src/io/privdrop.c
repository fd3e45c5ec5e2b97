/* SPDX-License-Identifier: MIT */
/*
 * Privileges (privdrop.h): who [process] user and group are, the drop from
 * root to them once the sockets are bound and the keys read, and the check
 * that the account can open every file a later reload reads again.
 *
 * After the drop the process is not dumpable (PR_SET_DUMPABLE 0), whatever
 * the kernel's suid_dumpable setting: moat holds the server's private key
 * and the broker credentials in memory, and a dumpable process could be
 * read by ptrace or a core file by any other process of the same,
 * often shared, account (nobody, say). It also sets PR_SET_NO_NEW_PRIVS,
 * so no program it could ever run regains privileges.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "moat/config.h"
#include "moat/privdrop.h"

/* getpwnam_r and friends: first buffer, and the most we grow it to. */
#define LOOKUP_BUF_START 1024
#define LOOKUP_BUF_MAX   (1024 * 1024)

/* moat.ini, cert, key, ca, crl, map, hmac secret, password file. */
#define NEEDED_MAX 8

#define WHERE_MAX 512

enum lookup_kind { BY_USER_NAME, BY_GROUP_NAME, BY_UID, BY_GID };

struct account {
	unsigned id;                    /* uid or gid */
	unsigned gid;                   /* a user's primary group */
	char name[PRIVDROP_NAME_MAX];
};

/* A file a reload reads again, and the setting that names it. */
struct needed {
	const char *section, *key;      /* NULL, NULL: moat.ini itself */
	const char *path;
};

/*
 * One account lookup. Returns 1 found (in out), 0 no such account, -1
 * with errno when the lookup itself failed.
 */
static int
lookup(enum lookup_kind kind, const char *name, unsigned id,
    struct account *out)
{
	struct passwd pw, *pres = NULL;
	struct group gr, *gres = NULL;
	size_t len = LOOKUP_BUF_START;
	char *buf;
	int rc;

	for (;;) {
		if ((buf = malloc(len)) == NULL)
			return (-1);
		if (kind == BY_USER_NAME)
			rc = getpwnam_r(name, &pw, buf, len, &pres);
		else if (kind == BY_UID)
			rc = getpwuid_r((uid_t)id, &pw, buf, len, &pres);
		else if (kind == BY_GROUP_NAME)
			rc = getgrnam_r(name, &gr, buf, len, &gres);
		else
			rc = getgrgid_r((gid_t)id, &gr, buf, len, &gres);
		if (rc != ERANGE || len >= LOOKUP_BUF_MAX)
			break;
		free(buf);
		len *= 2;
	}
	if (pres != NULL) {
		out->id = (unsigned)pw.pw_uid;
		out->gid = (unsigned)pw.pw_gid;
		snprintf(out->name, sizeof(out->name), "%s", pw.pw_name);
	} else if (gres != NULL) {
		out->id = out->gid = (unsigned)gr.gr_gid;
		snprintf(out->name, sizeof(out->name), "%s", gr.gr_name);
	}
	free(buf);
	if (pres != NULL || gres != NULL)
		return (1);
	/* The "not found" codes getpwnam(3) lists besides 0. */
	if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF ||
	    rc == EPERM)
		return (0);
	errno = rc;
	return (-1);
}

static int
resolve_user(const struct config *cfg, struct privdrop_ids *ids,
    char *err, size_t errlen)
{
	char where[WHERE_MAX];
	struct account a;
	int r;

	config_where(cfg, "process", "user", where, sizeof(where));
	if ((r = lookup(BY_USER_NAME, cfg->user, 0, &a)) < 0) {
		snprintf(err, errlen, "%s: user = %s: cannot look the account "
		    "up: %s", where, cfg->user, strerror(errno));
		return (-1);
	}
	if (r == 0) {
		snprintf(err, errlen, "%s: user = %s: no such user on this "
		    "host; create it (for example adduser --system --group "
		    "%s) or name an existing account", where, cfg->user,
		    cfg->user);
		return (-1);
	}
	if (a.id == 0) {
		snprintf(err, errlen, "%s: user = %s: that account is root "
		    "(uid 0), so nothing would be dropped; name an "
		    "unprivileged account, or delete user to stay the user "
		    "moat is started as", where, cfg->user);
		return (-1);
	}
	ids->uid = (uid_t)a.id;
	ids->gid = (gid_t)a.gid;
	snprintf(ids->user, sizeof(ids->user), "%s", a.name);
	return (0);
}

static int
resolve_group(const struct config *cfg, struct privdrop_ids *ids,
    char *err, size_t errlen)
{
	char where[WHERE_MAX];
	struct account a;
	int r;

	if (cfg->group == NULL) {
		if (lookup(BY_GID, NULL, (unsigned)ids->gid, &a) == 1)
			snprintf(ids->group, sizeof(ids->group), "%s", a.name);
		else
			snprintf(ids->group, sizeof(ids->group), "%u",
			    (unsigned)ids->gid);
		return (0);
	}
	config_where(cfg, "process", "group", where, sizeof(where));
	if ((r = lookup(BY_GROUP_NAME, cfg->group, 0, &a)) < 0) {
		snprintf(err, errlen, "%s: group = %s: cannot look the group "
		    "up: %s", where, cfg->group, strerror(errno));
		return (-1);
	}
	if (r == 0) {
		snprintf(err, errlen, "%s: group = %s: no such group on this "
		    "host; create it (addgroup --system %s), name an existing "
		    "group, or delete group to use the primary group of %s",
		    where, cfg->group, cfg->group, cfg->user);
		return (-1);
	}
	ids->gid = (gid_t)a.id;
	snprintf(ids->group, sizeof(ids->group), "%s", a.name);
	return (0);
}

int
privdrop_resolve(const struct config *cfg, struct privdrop_ids *ids,
    char *err, size_t errlen)
{
	char where[WHERE_MAX];

	memset(ids, 0, sizeof(*ids));
	if (cfg->user == NULL)
		return (0);
	if (resolve_user(cfg, ids, err, errlen) != 0 ||
	    resolve_group(cfg, ids, err, errlen) != 0)
		return (-1);
	if (ids->gid == 0) {
		/* Group root opens files meant for root alone. */
		config_where(cfg, "process", cfg->group != NULL ? "group" :
		    "user", where, sizeof(where));
		snprintf(err, errlen, "%s: %s is root's group (gid 0), which "
		    "keeps access to files of group root; %s", where,
		    cfg->group != NULL ? "that group" : "the user's primary "
		    "group", cfg->group != NULL ? "name another group" :
		    "set [process] group to another group");
		return (-1);
	}
	ids->set = 1;
	return (0);
}

/* The process runs as ids already: real and effective, user and group. */
static int
is_already(const struct privdrop_ids *ids)
{
	return (getuid() == ids->uid && geteuid() == ids->uid &&
	    getgid() == ids->gid && getegid() == ids->gid);
}

int
privdrop_allowed(const struct config *cfg, const struct privdrop_ids *ids,
    char *err, size_t errlen)
{
	char where[WHERE_MAX], who[2 * PRIVDROP_NAME_MAX + 2];
	int user_differs;

	if (!ids->set || geteuid() == 0 || is_already(ids))
		return (0);
	user_differs = getuid() != ids->uid || geteuid() != ids->uid;
	config_where(cfg, "process", user_differs || cfg->group == NULL ?
	    "user" : "group", where, sizeof(where));
	snprintf(err, errlen, "%s: moat runs as %s, not as root, so it "
	    "cannot switch to %s:%s; start it as root (it drops to %s once "
	    "its sockets are bound), or as that user and group, or delete "
	    "[process] user", where, privdrop_current(who, sizeof(who)),
	    ids->user, ids->group, ids->user);
	return (-1);
}

/* After the switch: every ID is ids, no supplementary group is left, and
 * root cannot be had back. 0, or -1 naming what is wrong in *what. */
static int
verify(const struct privdrop_ids *ids, const char **what)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	*what = "the user or group IDs did not all change";
	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 ||
	    ru != ids->uid || eu != ids->uid || su != ids->uid ||
	    rg != ids->gid || eg != ids->gid || sg != ids->gid ||
	    (uid_t)setfsuid((uid_t)-1) != ids->uid ||
	    (gid_t)setfsgid((gid_t)-1) != ids->gid)
		return (-1);
	*what = "supplementary groups are left";
	if (getgroups(0, NULL) != 0)
		return (-1);
	*what = "root can still be regained";
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0 ||
	    setegid(0) == 0)
		return (-1);
	return (0);
}

int
privdrop_apply(const struct config *cfg, const struct privdrop_ids *ids,
    char *err, size_t errlen)
{
	char where[WHERE_MAX];
	const char *what;

	if (!ids->set)
		return (0);
	if (privdrop_allowed(cfg, ids, err, errlen) != 0)
		return (-1);
	if (geteuid() != 0)
		return (0);     /* already ids (privdrop_allowed) */
	config_where(cfg, "process", "user", where, sizeof(where));
	/* Groups first: once the user ID changes, they cannot. */
	what = "setgroups";
	if (setgroups(0, NULL) != 0)
		goto fail;
	what = "setresgid";
	if (setresgid(ids->gid, ids->gid, ids->gid) != 0)
		goto fail;
	what = "setresuid";
	if (setresuid(ids->uid, ids->uid, ids->uid) != 0)
		goto fail;
	if (verify(ids, &what) != 0) {
		snprintf(err, errlen, "%s: after switching to %s:%s, %s; "
		    "refusing to run", where, ids->user, ids->group, what);
		return (-1);
	}
	what = "prctl";
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		goto fail;
	return (0);

fail:
	snprintf(err, errlen, "%s: cannot switch to user %s and group %s: "
	    "%s: %s", where, ids->user, ids->group, what, strerror(errno));
	return (-1);
}

const char *
privdrop_current(char *buf, size_t len)
{
	struct account u, g;
	uid_t uid = geteuid();
	gid_t gid = getegid();

	if (lookup(BY_UID, NULL, (unsigned)uid, &u) != 1)
		snprintf(u.name, sizeof(u.name), "%u", (unsigned)uid);
	if (lookup(BY_GID, NULL, (unsigned)gid, &g) != 1)
		snprintf(g.name, sizeof(g.name), "%u", (unsigned)gid);
	snprintf(buf, len, "%s:%s", u.name, g.name);
	return (buf);
}

/* --- files a reload reads --------------------------------------------------- */

static size_t
add_needed(struct needed *out, size_t n, const char *section,
    const char *key, const char *path)
{
	if (path == NULL || *path == '\0' || n >= NEEDED_MAX)
		return (n);
	out[n].section = section;
	out[n].key = key;
	out[n].path = path;
	return (n + 1);
}

/* Every file a reload of cfg opens, into out (NEEDED_MAX rows). */
static size_t
needed_files(const struct config *cfg, struct needed *out)
{
	enum identity_password kind;
	const char *pwfile = NULL;
	size_t n = 0;

	if (cfg->id_password == NULL ||
	    config_parse_password(cfg->id_password, &kind, &pwfile) != 0)
		pwfile = NULL;
	n = add_needed(out, n, NULL, NULL, cfg->path);
	n = add_needed(out, n, "tls", "cert", cfg->tls_cert);
	n = add_needed(out, n, "tls", "key", cfg->tls_key);
	n = add_needed(out, n, "tls", "ca", cfg->tls_ca);
	n = add_needed(out, n, "tls", "crl", cfg->tls_crl);
	n = add_needed(out, n, "identity", "map", cfg->id_map);
	n = add_needed(out, n, "identity", "hmac_secret_file",
	    cfg->id_hmac_secret_file);
	n = add_needed(out, n, "identity", "password", pwfile);
	return (n);
}

/* 0 when path opens for reading, else the errno. */
static int
open_errno(const char *path)
{
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return (errno);
	(void)close(fd);
	return (0);
}

/* In the child: drop to ids, open each file; res[0] is the drop's errno,
 * res[1 + i] file i's. Never returns. */
static void
probe_child(const struct privdrop_ids *ids, const struct needed *f, size_t n,
    int fd)
{
	int res[1 + NEEDED_MAX];
	size_t i;

	memset(res, 0, sizeof(res));
	if (setgroups(0, NULL) != 0 ||
	    setresgid(ids->gid, ids->gid, ids->gid) != 0 ||
	    setresuid(ids->uid, ids->uid, ids->uid) != 0)
		res[0] = errno != 0 ? errno : EPERM;
	for (i = 0; i < n && res[0] == 0; i++)
		res[1 + i] = open_errno(f[i].path);
	_exit(write(fd, res, sizeof(res)) == (ssize_t)sizeof(res) ? 0 : 1);
}

/* Fill res as probe_child() does, from a child process. 0 or -1. */
static int
probe_forked(const struct privdrop_ids *ids, const struct needed *f,
    size_t n, int *res, size_t reslen)
{
	int p[2], status;
	size_t got = 0;
	ssize_t r;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0)
		return (-1);
	if ((pid = fork()) < 0) {
		(void)close(p[0]);
		(void)close(p[1]);
		return (-1);
	}
	if (pid == 0) {
		(void)close(p[0]);
		probe_child(ids, f, n, p[1]);
	}
	(void)close(p[1]);
	while (got < reslen) {
		r = read(p[0], (char *)res + got, reslen - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	(void)close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (got != reslen) {
		errno = EPROTO;
		return (-1);
	}
	return (0);
}

int
privdrop_check_files(const struct config *cfg,
    const struct privdrop_ids *ids,
    void (*warn)(void *arg, const char *where, const char *msg), void *arg)
{
	struct needed f[NEEDED_MAX];
	int res[1 + NEEDED_MAX];
	char where[WHERE_MAX], msg[1024];
	size_t i, n;
	int bad = 0;

	if (!ids->set)
		return (0);
	n = needed_files(cfg, f);
	memset(res, 0, sizeof(res));
	if (geteuid() == 0 && !is_already(ids)) {
		if (probe_forked(ids, f, n, res, sizeof(res)) != 0 ||
		    res[0] != 0) {
			snprintf(msg, sizeof(msg), "cannot check which files "
			    "user %s can read: %s", ids->user,
			    strerror(res[0] != 0 ? res[0] : errno));
			warn(arg, config_where(cfg, "process", "user", where,
			    sizeof(where)), msg);
			return (-1);
		}
	} else if (is_already(ids)) {
		for (i = 0; i < n; i++)
			res[1 + i] = open_errno(f[i].path);
	} else
		return (0);     /* cannot become ids: privdrop_allowed says */
	for (i = 0; i < n; i++) {
		if (res[1 + i] == 0)
			continue;
		bad++;
		snprintf(msg, sizeof(msg), "user %s cannot read %s (%s), and "
		    "a reload reads it again as that user, so every reload "
		    "would fail; let user %s or group %s read it and search "
		    "the directories above it (for a key or secret: chgrp %s "
		    "FILE; chmod 0640 FILE)", ids->user, f[i].path,
		    strerror(res[1 + i]), ids->user, ids->group, ids->group);
		warn(arg, config_where(cfg, f[i].section, f[i].key, where,
		    sizeof(where)), msg);
	}
	return (bad);
}
