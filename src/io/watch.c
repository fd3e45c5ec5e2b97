/* SPDX-License-Identifier: MIT */
/*
 * Reload when the files change (see watch.h): one uv_fs_event per distinct
 * directory on the control loop, a timer for the quiet period, and a hash
 * of every file's bytes in the thread pool, so that only a real change of
 * contents asks the daemon for a reload. The daemon does the reload itself,
 * exactly as for SIGHUP, and tells the watcher what it read afterwards.
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "moat/config.h"
#include "moat/log.h"
#include "moat/text.h"
#include "moat/watch.h"

/* moat.ini, cert, key, ca, crl, map, hmac secret, password file */
#define WATCH_MAX_FILES 8
#define READ_CHUNK 65536

/* One watched directory; freed in its close callback. */
struct dirwatch {
	uv_fs_event_t ev;
	char path[];
};

/* One hash of the files, in the thread pool. */
struct check_job {
	uv_work_t req;
	uint8_t digest[WATCH_DIGEST_LEN];
	char err[1024];
};

struct watch {
	uv_loop_t *loop;
	const char *config_path;
	void (*on_change)(void *arg);
	void *arg;
	uv_timer_t quiet;               /* the debounce */
	uint64_t first;                 /* uv_now() of the period's first event */
	int waiting;                    /* quiet is running */
	struct dirwatch *dirs[WATCH_MAX_DIRS];
	unsigned ndirs;
	char names[WATCH_MAX_DIRS][NAME_MAX + 1]; /* file names that matter */
	unsigned nnames;
	uint8_t seen[WATCH_DIGEST_LEN]; /* the files last read by a reload */
	struct check_job job;
	int on;                         /* [process] watch_files */
	int checking, check_again, closed;
};

/* --- the digest --------------------------------------------------------- */

/* The files a reload reads besides moat.ini, in cfg, into files (room for
 * WATCH_MAX_FILES - 1); returns how many. */
static unsigned
named_files(const struct config *cfg, const char **files)
{
	enum identity_password kind;
	const char *pw_file = NULL;
	unsigned n = 0;

	files[n++] = cfg->tls_cert;
	files[n++] = cfg->tls_key;
	files[n++] = cfg->tls_ca;
	if (cfg->tls_crl != NULL)
		files[n++] = cfg->tls_crl;
	if (cfg->id_map != NULL)
		files[n++] = cfg->id_map;
	if (cfg->id_hmac_secret_file != NULL)
		files[n++] = cfg->id_hmac_secret_file;
	if (cfg->id_password != NULL &&
	    config_parse_password(cfg->id_password, &kind, &pw_file) == 0 &&
	    kind == ID_PW_FILE)
		files[n++] = pw_file;
	return (n);
}

/*
 * Add path, its bytes and their count to sha; a file that cannot be read
 * adds its errno instead. buf (READ_CHUNK bytes) is scratch space.
 */
static void
hash_file(wc_Sha256 *sha, const char *path, uint8_t *buf)
{
	uint64_t total = 0;
	int32_t code = 0;
	size_t n;
	FILE *f;

	(void)wc_Sha256Update(sha, (const byte *)path,
	    (word32)strlen(path) + 1);
	if ((f = fopen(path, "rb")) == NULL) {
		code = errno;
	} else {
		while ((n = fread(buf, 1, READ_CHUNK, f)) > 0) {
			(void)wc_Sha256Update(sha, buf, (word32)n);
			total += n;
		}
		if (ferror(f))
			code = EIO;
		(void)fclose(f);
	}
	(void)wc_Sha256Update(sha, (const byte *)&total, sizeof(total));
	(void)wc_Sha256Update(sha, (const byte *)&code, sizeof(code));
}

struct config *
watch_load(const char *path, uint8_t digest[WATCH_DIGEST_LEN], char *err,
    size_t errlen)
{
	const char *files[WATCH_MAX_FILES];
	struct config *cfg = NULL;
	wc_Sha256 sha;
	unsigned i, n;
	uint8_t *buf;

	memset(digest, 0, WATCH_DIGEST_LEN);
	if ((buf = malloc(READ_CHUNK)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	if (wc_InitSha256(&sha) != 0) {
		snprintf(err, errlen, "cannot start SHA-256");
		goto done;
	}
	/* moat.ini before it is parsed, the others before they are read. */
	hash_file(&sha, path, buf);
	if ((cfg = config_load(path, err, errlen)) != NULL) {
		n = named_files(cfg, files);
		for (i = 0; i < n; i++)
			hash_file(&sha, files[i], buf);
	}
	(void)wc_Sha256Final(&sha, digest);
	wc_Sha256Free(&sha);
done:
	/* The buffer held the key and secrets. */
	text_wipe_free(buf, READ_CHUNK);
	return (cfg);
}

/* --- the check, in the thread pool -------------------------------------- */

static void start_check(struct watch *w);

static void
check_work(uv_work_t *req)
{
	struct watch *w = req->data;

	config_free(watch_load(w->config_path, w->job.digest, w->job.err,
	    sizeof(w->job.err)));
}

static void
check_done(uv_work_t *req, int status)
{
	struct watch *w = req->data;

	w->checking = 0;
	if (status != 0 || w->closed || !w->on)
		return;
	if (memcmp(w->job.digest, w->seen, WATCH_DIGEST_LEN) != 0) {
		/* Asked once: the reload's own digest replaces it. */
		memcpy(w->seen, w->job.digest, WATCH_DIGEST_LEN);
		w->check_again = 0;
		w->on_change(w->arg);
		return;
	}
	if (w->check_again) {
		w->check_again = 0;
		start_check(w);
	}
}

static void
start_check(struct watch *w)
{
	int r;

	if (w->checking) {
		w->check_again = 1;
		return;
	}
	w->job.req.data = w;
	if ((r = uv_queue_work(w->loop, &w->job.req, check_work,
	    check_done)) != 0) {
		log_warn("cannot check the watched files for changes: %s; "
		    "reload with SIGHUP", uv_strerror(r));
		return;
	}
	w->checking = 1;
}

/* --- events and the quiet period ------------------------------------------ */

static int name_matters(const struct watch *w, const char *name);

static void
on_quiet(uv_timer_t *t)
{
	struct watch *w = t->data;

	w->waiting = 0;
	start_check(w);
}

/* Wait DEBOUNCE after this event, but no longer than MAX_WAIT after the
 * period's first one, so a directory that never goes quiet is still
 * checked. */
static void
on_event(uv_fs_event_t *ev, const char *name, int events, int status)
{
	struct watch *w = ev->data;
	uint64_t now, due;

	(void)events;
	/* No log line per event: moat's own log may live in a watched
	 * directory, and each line would bring another event. */
	if (status < 0 || !name_matters(w, name))
		return;
	now = uv_now(w->loop);
	if (!w->waiting) {
		w->first = now;
		w->waiting = 1;
	}
	due = now + WATCH_DEBOUNCE_MS;
	if (due > w->first + WATCH_MAX_WAIT_MS)
		due = w->first + WATCH_MAX_WAIT_MS;
	(void)uv_timer_start(&w->quiet, on_quiet, due > now ? due - now : 0,
	    0);
}

/* --- the directories -------------------------------------------------- */

static void
on_dir_closed(uv_handle_t *h)
{
	free(h);
}

/* Close the first n of dirs. */
static void
close_dirs(struct dirwatch **dirs, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		uv_close((uv_handle_t *)&dirs[i]->ev, on_dir_closed);
}

/* Add the last component of path to w's names (without duplicates). */
static void
add_name(struct watch *w, const char *path)
{
	const char *slash = strrchr(path, '/'), *base;
	unsigned i;

	base = slash != NULL ? slash + 1 : path;
	if (*base == '\0' || strlen(base) > NAME_MAX)
		return;
	for (i = 0; i < w->nnames; i++)
		if (strcmp(w->names[i], base) == 0)
			return;
	if (w->nnames < WATCH_MAX_DIRS)
		snprintf(w->names[w->nnames++], NAME_MAX + 1, "%s", base);
}

/*
 * Does an event on name concern a file a reload reads? Its own name, or
 * one beginning with ".." (Kubernetes swaps a "..data" link), or no name
 * at all. Anything else in those directories, a log file say, is ignored,
 * so that it never costs a read of every file.
 */
static int
name_matters(const struct watch *w, const char *name)
{
	unsigned i;

	if (name == NULL || strncmp(name, "..", 2) == 0 ||
	    w->nnames >= WATCH_MAX_DIRS)
		return (1);
	for (i = 0; i < w->nnames; i++)
		if (strcmp(w->names[i], name) == 0)
			return (1);
	return (0);
}

/* Add the directory part of path to list (without duplicates). */
static void
add_dir(char list[][PATH_MAX], unsigned *n, const char *path)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	unsigned i;

	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	for (i = 0; i < *n; i++)
		if (strcmp(list[i], dir) == 0)
			return;
	if (*n < WATCH_MAX_DIRS)
		memcpy(list[(*n)++], dir, sizeof(dir));
}

/* The directory of each file and, for a symlink, of what it resolves to. */
static unsigned
collect_dirs(struct watch *w, const char *config_path,
    const struct config *cfg, char list[][PATH_MAX])
{
	const char *files[WATCH_MAX_FILES];
	char real[PATH_MAX];
	unsigned i, n, ndirs = 0;

	files[0] = config_path;
	n = 1 + named_files(cfg, files + 1);
	w->nnames = 0;
	for (i = 0; i < n; i++) {
		add_dir(list, &ndirs, files[i]);
		add_name(w, files[i]);
		if (realpath(files[i], real) != NULL) {
			add_dir(list, &ndirs, real);
			add_name(w, real);
		}
	}
	return (ndirs);
}

/* Watch one directory, into *out; 0 or -1 (logged). */
static int
watch_dir(struct watch *w, const char *path, struct dirwatch **out)
{
	struct dirwatch *dw;
	size_t len = strlen(path) + 1;
	int r;

	if ((dw = malloc(sizeof(*dw) + len)) == NULL) {
		log_warn("cannot watch %s for changes: out of memory", path);
		return (-1);
	}
	memcpy(dw->path, path, len);
	if ((r = uv_fs_event_init(w->loop, &dw->ev)) != 0) {
		free(dw);
		goto fail;
	}
	dw->ev.data = w;
	uv_unref((uv_handle_t *)&dw->ev);
	if ((r = uv_fs_event_start(&dw->ev, on_event, dw->path, 0)) != 0) {
		uv_close((uv_handle_t *)&dw->ev, on_dir_closed);
		goto fail;
	}
	*out = dw;
	return (0);

fail:
	log_warn("cannot watch %s for changes: %s; reload with SIGHUP after "
	    "changing files there", path, uv_strerror(r));
	return (-1);
}

/*
 * The new watches start before the old ones close: libuv shares one inotify
 * watch per directory between handles, so a directory in both sets keeps
 * its watch, and events queued while the reload ran are not lost.
 */
int
watch_arm(struct watch *w, const struct config *cfg,
    const uint8_t digest[WATCH_DIGEST_LEN])
{
	struct dirwatch *fresh[WATCH_MAX_DIRS];
	char (*list)[PATH_MAX] = NULL;
	unsigned i, n = 0, nfresh = 0;
	int rc = 0;

	memcpy(w->seen, digest, WATCH_DIGEST_LEN);
	w->on = cfg->watch_files;
	if (w->on && (list = calloc(WATCH_MAX_DIRS, sizeof(*list))) == NULL) {
		log_warn("cannot watch the configuration's files: out of "
		    "memory; reload with SIGHUP");
		rc = -1;
	}
	if (list != NULL)
		n = collect_dirs(w, w->config_path, cfg, list);
	for (i = 0; i < n; i++) {
		if (watch_dir(w, list[i], &fresh[nfresh]) == 0)
			nfresh++;
		else
			rc = -1;
	}
	free(list);
	close_dirs(w->dirs, w->ndirs);
	memcpy(w->dirs, fresh, nfresh * sizeof(fresh[0]));
	w->ndirs = nfresh;
	if (!w->on) {
		(void)uv_timer_stop(&w->quiet);
		w->waiting = 0;
	}
	return (rc);
}

void
watch_seen(struct watch *w, const uint8_t digest[WATCH_DIGEST_LEN])
{
	memcpy(w->seen, digest, WATCH_DIGEST_LEN);
}

/* --- life --------------------------------------------------------------- */

struct watch *
watch_start(uv_loop_t *loop, const char *config_path,
    const struct config *cfg, void (*on_change)(void *arg), void *arg)
{
	uint8_t digest[WATCH_DIGEST_LEN];
	struct watch *w;
	char err[1024];
	int r;

	if ((w = calloc(1, sizeof(*w))) == NULL) {
		log_error("out of memory");
		return (NULL);
	}
	w->loop = loop;
	w->config_path = config_path;
	w->on_change = on_change;
	w->arg = arg;
	if ((r = uv_timer_init(loop, &w->quiet)) != 0) {
		log_error("cannot watch the configuration's files: %s",
		    uv_strerror(r));
		free(w);
		return (NULL);
	}
	w->quiet.data = w;
	uv_unref((uv_handle_t *)&w->quiet);
	/* The files as they are now: start-up read them a moment ago. */
	config_free(watch_load(config_path, digest, err, sizeof(err)));
	(void)watch_arm(w, cfg, digest);
	return (w);
}

void
watch_close(struct watch *w)
{
	if (w == NULL || w->closed)
		return;
	w->closed = 1;
	close_dirs(w->dirs, w->ndirs);
	w->ndirs = 0;
	uv_close((uv_handle_t *)&w->quiet, NULL);
	if (w->checking)
		(void)uv_cancel((uv_req_t *)&w->job.req);
}

void
watch_free(struct watch *w)
{
	free(w);
}
