/* SPDX-License-Identifier: MIT */
/*
 * Reload when the files change. On the control loop only (never on a
 * worker's), moat watches the directories that hold moat.ini and every file
 * a reload reads: [tls] cert, key, ca and crl, [identity] map,
 * hmac_secret_file and the password file. Watching the directories rather
 * than the files sees an edit in place, a new file renamed over the old one,
 * and a Kubernetes Secret or ConfigMap update, where name -> ..data/name,
 * ..data -> a timestamped directory, and kubelet writes a new timestamped
 * directory and renames a new ..data symlink over the old one. The
 * directory a symlinked file finally resolves to is watched too.
 *
 * An event starts a quiet period (WATCH_DEBOUNCE_MS after the last event,
 * at most WATCH_MAX_WAIT_MS after the first). Then the bytes of every file
 * are hashed in libuv's thread pool and compared with the digest of the
 * last reload; only a difference asks for a reload. So a busy log file in
 * the same directory costs one hash every WATCH_MAX_WAIT_MS at most and
 * never a reload, and a failed reload is not retried until a file changes
 * again.
 */
#ifndef MOAT_WATCH_H
#define MOAT_WATCH_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define WATCH_DIGEST_LEN 32     /* SHA-256 */
#define WATCH_DEBOUNCE_MS 500
#define WATCH_MAX_WAIT_MS 2000
#define WATCH_MAX_DIRS 16       /* each file's directory and its target's */

struct config;
struct watch;

/*
 * Load path with config_load() as a reload does, and fill digest with the
 * SHA-256 of the bytes of path and of every file the config names. path is
 * hashed before it is parsed and the other files before the caller reads
 * them (snapshot_new), so a file that changes while a reload reads it
 * leaves a digest that differs from the next one. A file that cannot be
 * read counts as its errno. Blocking: call it in the thread pool or at
 * start-up. Returns a new config (the caller frees it), or NULL with
 * "FILE:LINE: message" in err; digest is filled in either case.
 */
struct config *watch_load(const char *path, uint8_t digest[WATCH_DIGEST_LEN],
    char *err, size_t errlen);

/*
 * Start watching on loop, which must be the control loop: the directories
 * of the files cfg names (the running configuration; only read), unless its
 * [process] watch_files is false. Reads the files once, now, for the digest
 * of what is in force. config_path is kept (not copied) and must outlive
 * the watcher. When the contents of the watched files differ from the
 * digest last given to watch_arm() or watch_seen(), on_change(arg) is
 * called on loop. The handles do not keep loop alive. Returns NULL when
 * out of memory (logged); a directory that cannot be watched is logged
 * and left out.
 */
struct watch *watch_start(uv_loop_t *loop, const char *config_path,
    const struct config *cfg, void (*on_change)(void *arg), void *arg);

/*
 * After every reload that succeeded: remember digest as the contents in
 * force, and watch the directories of the files cfg names
 * (cfg is only read), replacing the directories watched so far; with
 * [process] watch_files = false, watch nothing. Returns 0, or -1 when a
 * directory cannot be watched (logged; the others are watched).
 */
int watch_arm(struct watch *w, const struct config *cfg,
    const uint8_t digest[WATCH_DIGEST_LEN]);

/*
 * After a reload that failed: remember digest as the contents last read,
 * so the same files are not reloaded again until one of them changes.
 * The directories stay as they are.
 */
void watch_seen(struct watch *w, const uint8_t digest[WATCH_DIGEST_LEN]);

/*
 * Stop watching: close every handle and cancel a hash not yet started.
 * NULL and a second call do nothing. Run the loop afterwards so that the
 * close callbacks run before watch_free().
 */
void watch_close(struct watch *w);

/* Free w after watch_close() and a run of its loop; NULL does nothing. */
void watch_free(struct watch *w);

#endif
