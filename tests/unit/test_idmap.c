/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/core/idmap.c, driven on bytes in memory: lookups in the
 * sorted map, what inih's line rules do to sections and values (BOM, CRLF,
 * comments, names longer than inih's 50 bytes), and that parsing never
 * reads past the length it is given. Every way a map can be wrong, seen
 * through [identity] map = FILE, is covered by test_identity's map_* tests.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/config.h"
#include "moat/identity.h"
#include "moat/idmap.h"
#include "moat/policy.h"

static char err[1024];
static struct idmap *map;

static void
teardown(void)
{
	idmap_free(map);
	map = NULL;
}

TestSuite(idmap, .fini = teardown);

/* Parse text (without its NUL) as the map "m.ini"; it must load. */
static void
parse(const char *text)
{
	err[0] = '\0';
	map = idmap_parse("m.ini", text, strlen(text), err, sizeof(err));
	cr_assert_not_null(map, "%s", err);
}

static const struct idmap_entry *
get(const char *identity)
{
	return (idmap_lookup(map, identity));
}

Test(idmap, lookup_exact_names_in_any_order)
{
	const struct idmap_entry *e;

	parse("[c]\nusername = uc\n[a]\nclient_id = ca\n[b]\n"
	    "password = pb\ndeny = true\n");
	cr_assert_null(get(""));
	cr_assert_null(get("ab"));
	cr_assert_null(get("A"));
	e = get("a");
	cr_assert_not_null(e);
	cr_assert_str_eq(e->name, "a");
	cr_assert_null(e->username);
	cr_assert_str_eq(e->client_id, "ca");
	cr_assert_eq(e->line, 3);
	e = get("b");
	cr_assert_not_null(e);
	cr_assert_str_eq(e->password, "pb");
	cr_assert_eq(e->deny, 1);
	cr_assert_eq(e->line, 5);
	e = get("c");
	cr_assert_not_null(e);
	cr_assert_str_eq(e->username, "uc");
	cr_assert_eq(e->deny, 0);
}

Test(idmap, empty_and_absent_maps)
{
	parse("; nothing but a comment\n\n");
	cr_assert_null(get("a"));
	cr_assert_null(idmap_lookup(NULL, "a"));
	idmap_free(NULL);
}

Test(idmap, inih_line_rules)
{
	char text[256], name[65];
	const struct idmap_entry *e;

	memset(name, 'f', 64);
	name[64] = '\0';
	snprintf(text, sizeof(text), "\xef\xbb\xbf[a] ; BOM, comment\r\n"
	    "username = u1 ; cut\r\n# comment\r\n[%s]\r\n[with/slash]\r\n"
	    "deny = false", name);
	parse(text);
	cr_assert_str_eq(get("a")->username, "u1");
	e = get(name);
	cr_assert_not_null(e, "a 64-byte section name is kept whole");
	cr_assert_null(e->username);
	cr_assert_eq(e->line, 4);
	cr_assert_not_null(get("with/slash"));
}

Test(idmap, reads_no_further_than_len)
{
	static const char text[] = "[a]\n[b]\nfoo = 1\n";

	/* Only "[a]\n[b]" is the map; the bad key after it is not. */
	map = idmap_parse("m.ini", text, 7, err, sizeof(err));
	cr_assert_not_null(map, "%s", err);
	cr_assert_not_null(get("a"));
	cr_assert_not_null(get("b"));
}

Test(idmap, error_is_path_line_message)
{
	static const char text[] = "[a]\n[b]\n[a]\n";

	strcpy(err, "unchanged");
	map = idmap_parse("dir/m.ini", text, strlen(text), err, sizeof(err));
	cr_assert_null(map);
	cr_assert_str_eq(err, "dir/m.ini:3: [a] is already defined on line "
	    "1; an identity may have one section: merge them");
}

/* The map must not load; err must be exactly want (path "m.ini"). */
static void
parse_fails(const char *text, const char *want)
{
	map = idmap_parse("m.ini", text, strlen(text), err, sizeof(err));
	cr_assert_null(map, "accepted:\n%s", text);
	cr_assert_str_eq(err, want);
}

Test(idmap, per_identity_limits)
{
	const struct idmap_entry *e;

	parse("[a]\nmax_connections_per_identity = 2\n"
	    "[b]\non_duplicate = refuse\n"
	    "[c]\nmax_connections_per_identity = 0\non_duplicate = replace\n"
	    "[d]\nusername = ud\n"
	    "[e]\nmax_connections_per_identity = 1000000\n");
	e = get("a");
	cr_assert_eq(e->max_conns, 2);
	cr_assert_eq(e->on_duplicate, -1, "unset");
	e = get("b");
	cr_assert_eq(e->max_conns, -1, "unset");
	cr_assert_eq(e->on_duplicate, DUP_REFUSE);
	e = get("c");
	cr_assert_eq(e->max_conns, 0, "0: no limit for this identity");
	cr_assert_eq(e->on_duplicate, DUP_REPLACE);
	e = get("d");
	cr_assert_eq(e->max_conns, -1);
	cr_assert_eq(e->on_duplicate, -1);
	cr_assert_eq(get("e")->max_conns, 1000000);
}

Test(idmap, per_identity_limits_refused)
{
	static const char *bad[] = { "1000001", "-1", "+1", "one", "1.5",
	    "2 conns", "99999999999999999999999" };
	char text[256], want[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[a]\n[b]\n"
		    "max_connections_per_identity = %s\n", bad[i]);
		snprintf(want, sizeof(want), "m.ini:3: "
		    "max_connections_per_identity = \"%s\": write a number "
		    "from 1 to 1000000, or 0 for no limit on this identity",
		    bad[i]);
		parse_fails(text, want);
	}
	parse_fails("[a]\non_duplicate = kick\n", "m.ini:2: on_duplicate = "
	    "\"kick\": write on_duplicate = replace or on_duplicate = "
	    "refuse");
	parse_fails("[a]\non_duplicate = REFUSE\n", "m.ini:2: on_duplicate = "
	    "\"REFUSE\": write on_duplicate = replace or on_duplicate = "
	    "refuse");
	parse_fails("[a]\non_duplicate = refuse\non_duplicate = replace\n",
	    "m.ini:3: on_duplicate is already set on line 2; a key may "
	    "appear once in a section: keep only one");
	parse_fails("[a]\nmax_connections = 1\n", "m.ini:2: unknown key "
	    "\"max_connections\" in [a]; known keys: username, password, "
	    "client_id, deny, publish, subscribe, max_connections_per_identity, "
	    "on_duplicate");
}

Test(idmap, topic_rule_keys)
{
	const struct idmap_entry *e;

	parse("[a]\nusername = ua\n[b]\npublish = b/#, x/{identity}\n"
	    "subscribe =\n[c]\nsubscribe = c/+\n");
	e = get("a");
	cr_assert_null(e->publish);
	cr_assert_null(e->subscribe);
	cr_assert_eq(e->policy_line, 0);
	e = get("b");
	cr_assert_str_eq(e->publish, "b/#, x/{identity}");
	cr_assert_str_eq(e->subscribe, "");
	cr_assert_eq(e->policy_line, 4);
	e = get("c");
	cr_assert_null(e->publish);
	cr_assert_str_eq(e->subscribe, "c/+");
	cr_assert_eq(e->policy_line, 7);
}


Test(idmap, topic_rule_errors)
{
	static const struct {
		const char *text;
		const char *err;
	} cases[] = {
		{ "[a]\nusername = u\npublish = a/b#\n", "m.ini:3: publish "
		    "rule \"a/b#\" has '#' that is not the whole last level" },
		{ "[a]\nsubscribe = {nope}\n", "m.ini:2: subscribe rule "
		    "\"{nope}\": unknown placeholder {nope}" },
		{ "[a]\nsubscribe = a\nsubscribe = b\n", "m.ini:3: subscribe "
		    "is already set on line 2" },
		{ "[a]\npublish = ,\n", "m.ini:2: publish: rule 1 is empty" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = '\0';
		map = idmap_parse("m.ini", cases[i].text,
		    strlen(cases[i].text), err, sizeof(err));
		cr_expect_null(map, "accepted: %s", cases[i].text);
		cr_expect(strncmp(err, cases[i].err,
		    strlen(cases[i].err)) == 0, "want \"%s\", got \"%s\"",
		    cases[i].err, err);
		idmap_free(map);
		map = NULL;
	}
}

/* --- choosing the rules for an identity -------------------------------- */

static const char map_text[] =
    "[plain]\nusername = p\n"
    "[own-pub]\npublish = own/#\n"
    "[both]\nsubscribe =\npublish = b/#\n";

static struct idmap *
test_map(void)
{
	struct idmap *m;

	m = idmap_parse("map.ini", map_text, strlen(map_text), err,
	    sizeof(err));
	cr_assert_not_null(m, "%s", err);
	return (m);
}

Test(idmap, policy_rules)
{
	struct config cfg = { .path = "moat.ini", .policy_on = 1,
	    .policy_publish = "devices/{identity}/#",
	    .policy_subscribe = "devices/{identity}/#, broadcast/#" };
	struct idmap *m = test_map();
	struct policy_rules r, base = { cfg.policy_publish,
	    cfg.policy_subscribe };

	cr_assert_eq(idmap_policy_rules(&base, NULL, &r), 1);
	cr_expect_str_eq(r.publish, cfg.policy_publish);
	cr_expect_str_eq(r.subscribe, cfg.policy_subscribe);
	cr_assert_eq(idmap_policy_rules(&base, idmap_lookup(m, "plain"), &r), 1);
	cr_expect_str_eq(r.publish, cfg.policy_publish);
	cr_assert_eq(idmap_policy_rules(&base, idmap_lookup(m, "own-pub"),
	    &r), 1);
	cr_expect_str_eq(r.publish, "own/#");
	cr_expect_str_eq(r.subscribe, cfg.policy_subscribe);
	cr_assert_eq(idmap_policy_rules(&base, idmap_lookup(m, "both"), &r), 1);
	cr_expect_str_eq(r.publish, "b/#");
	cr_expect_str_eq(r.subscribe, "");
	cr_expect_eq(idmap_policy_check(m, &cfg, NULL, 0), 0);

	/* policy off (no base): nothing picked, whatever the entry */
	cfg.policy_on = 0;
	cfg.policy_publish = cfg.policy_subscribe = NULL;
	cr_expect_eq(idmap_policy_rules(NULL, NULL, &r), 0);
	cr_expect_eq(idmap_policy_rules(NULL, idmap_lookup(m, "both"), &r), 0);
	idmap_free(m);
}

Test(idmap, policy_keys_need_policy_on)
{
	struct config cfg = { .path = "moat.ini" };
	struct idmap *m = test_map(), *plain;
	static const char plain_text[] = "[a]\nusername = u\n";
	static const char want[] = "map.ini:4: [own-pub] sets topic rules, "
	    "but moat.ini has no [policy] rules";

	cr_expect_eq(idmap_policy_check(m, &cfg, err, sizeof(err)), -1);
	/* the earliest in the file, though [both] sorts first */
	cr_expect(strncmp(err, want, strlen(want)) == 0, "%s", err);
	cr_expect_eq(idmap_policy_check(NULL, &cfg, err, sizeof(err)), 0);
	plain = idmap_parse("p.ini", plain_text, strlen(plain_text), err,
	    sizeof(err));
	cr_assert_not_null(plain);
	cr_expect_eq(idmap_policy_check(plain, &cfg, err, sizeof(err)), 0);
	idmap_free(plain);
	idmap_free(m);
}
