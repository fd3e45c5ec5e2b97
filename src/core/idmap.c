/* SPDX-License-Identifier: MIT */
/*
 * The identity map file ([identity] map = FILE): bytes -> entries sorted by
 * identity. inih does the INI syntax; inifile.c feeds it lines and looks
 * at each line the way inih will, because inih cuts section names at 50
 * bytes (a fingerprint has 64), never reports a section without keys, and
 * silently joins indented lines to the value above. map_section() and
 * map_pair() check every section name, key and value, with the name rules
 * of text.c, so a bad map is refused at start-up with "FILE:LINE: what
 * is wrong" for the earliest problem, rather than misbehaving for one
 * device later. Loading is one pass and one sort; lookups are a bsearch.
 *
 * Pure: the caller reads the file; no global state. Passwords are wiped
 * when the map is freed and never appear in a message.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/config.h"
#include "moat/idmap.h"
#include "moat/inifile.h"
#include "moat/policy.h"
#include "moat/text.h"

#define MSG_MAX 512

struct idmap {
	char *path;              /* the file it was read from */
	struct idmap_entry *v;   /* sorted by name, then line */
	size_t n;
};

enum map_key {
	MK_USERNAME,
	MK_PASSWORD,
	MK_CLIENT_ID,
	MK_DENY,
	MK_PUBLISH,
	MK_SUBSCRIBE,
	MK_MAX_CONNS,
	MK_ON_DUPLICATE,
	MK_NKEYS
};

struct mapload {
	struct inifile ini;
	char err[MSG_MAX];       /* ini's first error */
	struct idmap_entry *v;
	size_t n;
	size_t cap;
	struct idmap_entry *cur; /* the section being read, or NULL */
	int key_line[MK_NKEYS];  /* where cur's keys were set */
};

/* Quote a value from the map for a message. */
static const char *
quote(const char *s, size_t len, char *buf, size_t buflen)
{
	return (text_quote(s, len, TEXT_QUOTE_MAX, TEXT_QUOTE_ESCAPES, buf,
	    buflen));
}

/* Record an error at the current line, unless one came first. */
#define ini_fail(ld, ...) inifile_fail(&(ld)->ini, __VA_ARGS__)

static void
free_map(struct idmap_entry *v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].username);
		text_free_secret(v[i].password);
		free(v[i].client_id);
		free(v[i].publish);
		free(v[i].subscribe);
	}
	free(v);
}

/*
 * A "[identity]" line starts a map entry. The name is taken here, from the
 * raw line, because inih cuts section names at 50 bytes (a fingerprint has
 * 64) and never reports a section without keys (which is an entry with
 * template credentials).
 */
static void
map_section(void *user, const char *s, size_t n)
{
	struct mapload *ld = user;
	struct idmap_entry *nv, *e;
	char problem[128], ebuf[TEXT_QUOTE_BUF];
	const char *rest;
	size_t ncap;

	ld->cur = NULL;
	for (rest = s + n + 1; isspace((unsigned char)*rest); rest++)
		;
	if (*rest != '\0' && *rest != ';') {
		ini_fail(ld, "text after \"]\": a section line holds only "
		    "[identity]; move the rest to its own line");
		return;
	}
	if (n > 0 && (isspace((unsigned char)s[0]) ||
	    isspace((unsigned char)s[n - 1]))) {
		ini_fail(ld, "section [%s] has spaces inside the brackets; "
		    "identities never start or end with one: remove them",
		    quote(s, n, ebuf, sizeof(ebuf)));
		return;
	}
	if (text_check(s, n, TEXT_VALUE, problem, sizeof(problem)) == -1) {
		ini_fail(ld, "the section name [%s] %s; write the identity "
		    "value exactly as the certificate yields it",
		    quote(s, n, ebuf, sizeof(ebuf)), problem);
		return;
	}
	if (ld->n == ld->cap) {
		ncap = ld->cap == 0 ? 64 : ld->cap * 2;
		if ((nv = realloc(ld->v, ncap * sizeof(*nv))) == NULL) {
			ini_fail(ld, "out of memory");
			return;
		}
		ld->v = nv;
		ld->cap = ncap;
	}
	e = &ld->v[ld->n];
	memset(e, 0, sizeof(*e));
	if ((e->name = strndup(s, n)) == NULL) {
		ini_fail(ld, "out of memory");
		return;
	}
	e->line = ld->ini.lineno;
	e->max_conns = -1;
	e->on_duplicate = -1;
	ld->n++;
	ld->cur = e;
	memset(ld->key_line, 0, sizeof(ld->key_line));
}

static const char *const map_keys[] = {
	[MK_USERNAME] = "username",
	[MK_PASSWORD] = "password",
	[MK_CLIENT_ID] = "client_id",
	[MK_DENY] = "deny",
	[MK_PUBLISH] = "publish",
	[MK_SUBSCRIBE] = "subscribe",
	[MK_MAX_CONNS] = "max_connections_per_identity",
	[MK_ON_DUPLICATE] = "on_duplicate",
};

_Static_assert(sizeof(map_keys) / sizeof(map_keys[0]) <=
    sizeof(((struct mapload *)0)->key_line) / sizeof(int), "key_line");

/* Store one string value in *slot; 0 or -1 (error recorded). */
static int
map_store(struct mapload *ld, char **slot, const char *value)
{
	if ((*slot = strdup(value)) == NULL) {
		ini_fail(ld, "out of memory");
		return (-1);
	}
	return (0);
}

/* max_connections_per_identity = N: 0 (no limit) up to what [limits]
 * allows, digits only. 0 or -1 (error recorded). */
static int
map_max_conns(struct mapload *ld, struct idmap_entry *e, const char *value)
{
	char e1[TEXT_QUOTE_BUF];
	const char *p;
	int64_t v = 0;

	for (p = value; *p != '\0'; p++) {
		if (!isdigit((unsigned char)*p) ||
		    v > LIMITS_MAX_CONNS_PER_IDENTITY)
			break;
		v = v * 10 + (*p - '0');
	}
	if (*p != '\0' || v > LIMITS_MAX_CONNS_PER_IDENTITY) {
		ini_fail(ld, "max_connections_per_identity = \"%s\": write a "
		    "number from 1 to %d, or 0 for no limit on this identity",
		    quote(value, strlen(value), e1, sizeof(e1)),
		    LIMITS_MAX_CONNS_PER_IDENTITY);
		return (-1);
	}
	e->max_conns = v;
	return (0);
}

/* on_duplicate = replace | refuse, the words of [limits]. 0 or -1. */
static int
map_on_duplicate(struct mapload *ld, struct idmap_entry *e,
    const char *value)
{
	static const char *const names[] = {
#define X(name, text) [DUP_##name] = text,
		LIMITS_ON_DUPLICATE(X)
#undef X
	};
	char e1[TEXT_QUOTE_BUF];
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(value, names[i]) == 0) {
			e->on_duplicate = (int)i;
			return (0);
		}
	ini_fail(ld, "on_duplicate = \"%s\": write on_duplicate = replace or "
	    "on_duplicate = refuse", quote(value, strlen(value), e1,
	    sizeof(e1)));
	return (-1);
}

/*
 * publish or subscribe: a topic rule list, checked as [policy] checks
 * its own; empty allows nothing. 1, or 0 with the error recorded.
 */
static int
map_rules(struct mapload *ld, struct idmap_entry *e, enum map_key k,
    const char *value)
{
	char msg[MSG_MAX];

	if (policy_list_check(k == MK_PUBLISH ? POLICY_PUBLISH :
	    POLICY_SUBSCRIBE, value, msg, sizeof(msg)) == -1) {
		ini_fail(ld, "%s", msg);
		return (0);
	}
	if (e->policy_line == 0)
		e->policy_line = ld->ini.lineno;
	return (map_store(ld, k == MK_PUBLISH ? &e->publish :
	    &e->subscribe, value) == 0);
}

/* inih's handler: one "key = value" line of the map. */
static int
map_pair(void *user, const char *section, const char *name,
    const char *value)
{
	struct mapload *ld = user;
	struct idmap_entry *e = ld->cur;
	char problem[128], e1[TEXT_QUOTE_BUF];
	size_t k, vlen = strlen(value);

	(void)section;          /* inih's copy may be cut; ours is whole */
	if (ld->ini.err_line != 0)
		return (0);
	if (ld->ini.continuation) {
		ini_fail(ld, "this line starts with whitespace, so it would "
		    "continue the value of \"%s\" above, and moat does not "
		    "accept multi-line values; remove the indentation",
		    quote(name, strlen(name), e1, sizeof(e1)));
		return (0);
	}
	if (e == NULL) {
		ini_fail(ld, "\"%s\" is outside any section; put it under the "
		    "[identity] it belongs to",
		    quote(name, strlen(name), e1, sizeof(e1)));
		return (0);
	}
	for (k = 0; k < sizeof(map_keys) / sizeof(map_keys[0]); k++)
		if (strcmp(name, map_keys[k]) == 0)
			break;
	if (k == sizeof(map_keys) / sizeof(map_keys[0])) {
		ini_fail(ld, "unknown key \"%s\" in [%s]; known keys: username, "
		    "password, client_id, deny, publish, subscribe, "
		    "max_connections_per_identity, on_duplicate",
		    quote(name, strlen(name), e1, sizeof(e1)), e->name);
		return (0);
	}
	if (ld->key_line[k] != 0) {
		ini_fail(ld, "%s is already set on line %d; a key may appear once "
		    "in a section: keep only one", map_keys[k],
		    ld->key_line[k]);
		return (0);
	}
	ld->key_line[k] = ld->ini.lineno;
	if (k == MK_PUBLISH || k == MK_SUBSCRIBE)
		return (map_rules(ld, e, k, value));
	if (vlen == 0) {
		ini_fail(ld, "%s is empty: give it a value, or delete the line to "
		    "use the [identity] settings", map_keys[k]);
		return (0);
	}
	switch (k) {
	case MK_USERNAME:
	case MK_CLIENT_ID:
		if (text_check(value, vlen, TEXT_NAME, problem,
		    sizeof(problem)) == -1) {
			ini_fail(ld, "%s \"%s\" %s", map_keys[k],
			    quote(value, vlen, e1, sizeof(e1)),
			    problem);
			return (0);
		}
		return (map_store(ld, k == MK_USERNAME ? &e->username :
		    &e->client_id, value) == 0);
	case MK_PASSWORD:
		/* Never echo a password, not even a bad one. */
		if (vlen >= TEXT_NAME_MAX) {
			ini_fail(ld, "password is %zu bytes long; moat allows at "
			    "most %d", vlen, TEXT_NAME_MAX - 1);
			return (0);
		}
		return (map_store(ld, &e->password, value) == 0);
	case MK_MAX_CONNS:
		return (map_max_conns(ld, e, value) == 0);
	case MK_ON_DUPLICATE:
		return (map_on_duplicate(ld, e, value) == 0);
	default:
		if (strcmp(value, "true") == 0)
			e->deny = 1;
		else if (strcmp(value, "false") == 0)
			e->deny = 0;
		else {
			ini_fail(ld, "deny = \"%s\": write deny = true or deny = "
			    "false",
			    quote(value, vlen, e1, sizeof(e1)));
			return (0);
		}
		return (1);
	}
}

/* Order by name, then by line, so a duplicate follows its first. */
static int
entry_cmp(const void *a, const void *b)
{
	const struct idmap_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return (c);
	return ((x->line > y->line) - (x->line < y->line));
}

static int
entry_key_cmp(const void *key, const void *elem)
{
	const struct idmap_entry *e = elem;

	return (strcmp(key, e->name));
}

/*
 * One pass through inih, one sort. The first error in file order is
 * reported and nothing is kept. Values follow inih's rules: surrounding
 * whitespace and a " ;comment" are cut, so a password cannot start or end
 * with a space or contain " ;".
 */
struct idmap *
idmap_parse(const char *path, const char *buf, size_t len, char *err,
    size_t errlen)
{
	struct mapload ld;
	struct idmap *map = NULL;
	char e1[TEXT_QUOTE_BUF];
	size_t i;
	int rc, dup = 0, dup_first = 0, line;
	const char *msg;

	memset(&ld, 0, sizeof(ld));
	rc = inifile_parse(&ld.ini, buf, len, ld.err, sizeof(ld.err), "",
	    map_section, map_pair, &ld);
	if (rc < 0)
		goto nomem;
	if (ld.n > 0)
		qsort(ld.v, ld.n, sizeof(*ld.v), entry_cmp);
	for (i = 1; i < ld.n; i++)
		if (strcmp(ld.v[i - 1].name, ld.v[i].name) == 0 &&
		    (dup == 0 || ld.v[i].line < ld.v[dup].line)) {
			dup = (int)i;
			dup_first = ld.v[i - 1].line;
		}
	/* The earliest of: inih's syntax error, ours, a duplicate. */
	line = inifile_error(&ld.ini, rc, "syntax error: expected \"key = "
	    "value\" or \"[identity]\"", &msg);
	if (dup != 0 && (line == 0 || ld.v[dup].line < line)) {
		snprintf(err, errlen, "%s:%d: [%s] is already defined on line "
		    "%d; an identity may have one section: merge them", path,
		    ld.v[dup].line, quote(ld.v[dup].name,
		    strlen(ld.v[dup].name), e1, sizeof(e1)), dup_first);
		goto fail;
	}
	if (line != 0) {
		snprintf(err, errlen, "%s:%d: %s", path, line, msg);
		goto fail;
	}
	if ((map = calloc(1, sizeof(*map))) == NULL)
		goto nomem;
	if ((map->path = strdup(path)) == NULL)
		goto nomem;
	map->v = ld.v;
	map->n = ld.n;
	return (map);

nomem:
	snprintf(err, errlen, "%s: out of memory", path);
fail:
	free(map);
	free_map(ld.v, ld.n);
	return (NULL);
}

const struct idmap_entry *
idmap_lookup(const struct idmap *map, const char *identity)
{
	if (map == NULL || map->n == 0)
		return (NULL);
	return (bsearch(identity, map->v, map->n, sizeof(*map->v),
	    entry_key_cmp));
}

/* The entry that sets publish or subscribe earliest in the file. */
static const struct idmap_entry *
first_policy(const struct idmap *map)
{
	const struct idmap_entry *best = NULL;
	size_t i;

	for (i = 0; i < map->n; i++)
		if (map->v[i].policy_line != 0 && (best == NULL ||
		    map->v[i].policy_line < best->policy_line))
			best = &map->v[i];
	return (best);
}

int
idmap_policy_rules(const struct policy_rules *base,
    const struct idmap_entry *entry, struct policy_rules *out)
{
	if (base == NULL)
		return (0);
	out->publish = entry != NULL && entry->publish != NULL ?
	    entry->publish : base->publish;
	out->subscribe = entry != NULL && entry->subscribe != NULL ?
	    entry->subscribe : base->subscribe;
	return (1);
}

int
idmap_policy_check(const struct idmap *map, const struct config *cfg,
    char *err, size_t errlen)
{
	const struct idmap_entry *e;
	char q[TEXT_QUOTE_BUF];

	if (map == NULL || cfg->policy_on || (e = first_policy(map)) == NULL)
		return (0);
	snprintf(err, errlen, "%s:%d: [%s] sets topic rules, but %s has no "
	    "[policy] rules, so topic policy is off and these would do "
	    "nothing; add [policy] with publish and subscribe for every other "
	    "device (\"publish = #\" and \"subscribe = #\" allow every topic "
	    "not beginning with '$'), or remove the map's publish and "
	    "subscribe keys", map->path, e->policy_line,
	    quote(e->name, strlen(e->name), q, sizeof(q)), cfg->path);
	return (-1);
}

void
idmap_free(struct idmap *map)
{
	if (map == NULL)
		return;
	free_map(map->v, map->n);
	free(map->path);
	free(map);
}
