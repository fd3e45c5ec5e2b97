/* SPDX-License-Identifier: MIT */
/*
 * The identity map: the file named by [identity] map = FILE, one INI
 * section per device identity with optional username, password, client_id
 * and deny keys, the topic rule lists publish and subscribe (policy.h),
 * and the [limits] keys max_connections_per_identity and on_duplicate.
 * idmap_parse() takes the file's bytes, checks every line the way inih
 * will read it, and returns the entries sorted by identity for
 * idmap_lookup()'s bsearch; a bad map yields "FILE:LINE: what is wrong" for
 * the earliest problem and no map. Pure: no files, no global state.
 */
#ifndef MOAT_IDMAP_H
#define MOAT_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct policy_rules;

/* A map bigger than this (about a million devices) is the wrong file. */
#define IDMAP_FILE_MAX (64 * 1024 * 1024)

/* One [section] of the map file. Absent keys are NULL (numbers: -1). */
struct idmap_entry {
	char *name;              /* the identity value */
	char *username;
	char *password;          /* secret */
	char *client_id;
	int deny;
	char *publish;           /* topic rule lists (policy.h): "" allows */
	char *subscribe;         /* nothing; NULL: the [policy] list */
	int policy_line;         /* line of the first of the two, or 0 */
	int64_t max_conns;       /* max_connections_per_identity; 0: none */
	int on_duplicate;        /* enum on_duplicate (config.h) */
	int line;                /* line of "[name]" */
};

struct idmap;

/*
 * Parse a map file held in memory: buf holds len bytes (no NUL terminator
 * needed); path names the file in messages. O(n log n). Returns the map,
 * which the caller owns and frees with idmap_free(), or NULL with
 * "PATH:LINE: message" in err. buf stays the caller's: it holds the
 * passwords, so wipe it before freeing it.
 */
struct idmap *idmap_parse(const char *path, const char *buf, size_t len,
    char *err, size_t errlen);

/*
 * The entry whose name is exactly identity, or NULL when there is none or
 * map is NULL. The entry belongs to map and lives as long as it.
 */
const struct idmap_entry *idmap_lookup(const struct idmap *map,
    const char *identity);

/*
 * The topic rules for an identity: each of entry's publish and subscribe
 * keys replaces the [policy] list in base. entry may be NULL (no entry,
 * or the template). Returns 1 with out filled (pointing into base and
 * entry, valid as long as they are), or 0 when base is NULL: topic policy
 * is off (no [policy] rules: the broker's ACL is the only guard).
 */
int idmap_policy_rules(const struct policy_rules *base,
    const struct idmap_entry *entry, struct policy_rules *out);

/*
 * Load-time check across the two files: an entry that sets publish or
 * subscribe while cfg has no [policy] rules would do nothing, so it is an
 * error. map may be NULL. Returns 0, or -1 with "MAP:LINE: what is wrong;
 * how to fix it" in err for the earliest such entry.
 */
int idmap_policy_check(const struct idmap *map, const struct config *cfg,
    char *err, size_t errlen);

/* Free the map, wiping its passwords; NULL does nothing. */
void idmap_free(struct idmap *map);

#endif
