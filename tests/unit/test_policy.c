/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for policy.c: topic and filter validity, the matcher
 * (wildcards at every position, empty levels, '$' topics, UTF-8), exact
 * coverage of SUBSCRIBE filters by a union of rules, shared
 * subscriptions, rule lists with placeholders as moat.ini and the map
 * give them, and expansion for one device. Each accepting case has
 * rejecting twins beside it.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/policy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t *
u(const char *s)
{
	return ((const uint8_t *)s);
}

static int
valid_topic(const char *s)
{
	return (policy_topic_valid(u(s), strlen(s)));
}

static int
valid_filter(const char *s)
{
	return (policy_filter_valid(u(s), strlen(s)));
}

static int
match(const char *f, const char *t)
{
	return (policy_match(u(f), strlen(f), u(t), strlen(t)));
}

static const struct policy_values dev = {
	.identity = "dev1",
	.cn = "Dev One",
	.serial = "0A1B",
	.fingerprint = "ab12cd",
};

/* A set with no placeholders to fill; fails the test on error. */
static struct policy_set *
set_of(const char *pub, const char *sub)
{
	struct policy_rules r = { .publish = pub, .subscribe = sub };
	struct policy_set *s;
	char err[512] = "";

	s = policy_expand(&r, &dev, err, sizeof(err));
	cr_assert_not_null(s, "policy_expand(%s | %s): %s", pub, sub, err);
	return (s);
}

static int
may_sub(const struct policy_set *s, const char *f)
{
	return (policy_may_subscribe(s, u(f), strlen(f)));
}

static int
may_pub(const struct policy_set *s, const char *t)
{
	return (policy_may_publish(s, u(t), strlen(t)));
}

/* --- validity ---------------------------------------------------------- */

Test(policy, topic_names)
{
	static const struct {
		const char *t;
		int ok;
	} cases[] = {
		{ "a", 1 }, { "a/b/c", 1 }, { "/", 1 }, { "//", 1 },
		{ "/a", 1 }, { "a/", 1 }, { "$SYS/x", 1 }, { " ", 1 },
		{ "caf\xc3\xa9/\xe2\x82\xac", 1 }, { "\xf0\x9f\x98\x80", 1 },
		{ "", 0 }, { "+", 0 }, { "#", 0 }, { "a/+", 0 },
		{ "a/#", 0 }, { "a+b", 0 }, { "a#", 0 },
		{ "\xc3", 0 },                  /* cut sequence */
		{ "\xc0\xaf", 0 },              /* overlong '/' */
		{ "\xed\xa0\x80", 0 },          /* surrogate */
		{ "\xff", 0 },
	};
	size_t i;

	for (i = 0; i < N(cases); i++)
		cr_expect_eq(valid_topic(cases[i].t), cases[i].ok,
		    "topic \"%s\"", cases[i].t);
	/* U+0000 inside */
	cr_expect_eq(policy_topic_valid(u("a\0b"), 3), 0);
	cr_expect_eq(policy_filter_valid(u("a\0b"), 3), 0);
}

Test(policy, filters)
{
	static const struct {
		const char *f;
		int ok;
	} cases[] = {
		{ "#", 1 }, { "+", 1 }, { "+/+", 1 }, { "+/#", 1 },
		{ "a/+/b", 1 }, { "a/#", 1 }, { "/#", 1 }, { "/+", 1 },
		{ "+/", 1 }, { "//#", 1 }, { "a//+//#", 1 }, { "$SYS/#", 1 },
		{ "a", 1 }, { "/", 1 },
		{ "", 0 }, { "a+", 0 }, { "+a", 0 }, { "a/b+", 0 },
		{ "a/+b/c", 0 }, { "++", 0 }, { "a#", 0 }, { "#a", 0 },
		{ "a/b#", 0 }, { "#/", 0 }, { "#/a", 0 }, { "a/#/b", 0 },
		{ "##", 0 }, { "a/#/#", 0 }, { "+#", 0 }, { "#+", 0 },
		{ "\xc3", 0 },
	};
	size_t i;

	for (i = 0; i < N(cases); i++)
		cr_expect_eq(valid_filter(cases[i].f), cases[i].ok,
		    "filter \"%s\"", cases[i].f);
}

Test(policy, length_limit)
{
	size_t n = POLICY_TOPIC_MAX + 1;
	uint8_t *b = malloc(n);

	cr_assert_not_null(b);
	memset(b, 'a', n);
	cr_expect_eq(policy_topic_valid(b, POLICY_TOPIC_MAX), 1);
	cr_expect_eq(policy_topic_valid(b, n), 0);
	cr_expect_eq(policy_filter_valid(b, POLICY_TOPIC_MAX), 1);
	cr_expect_eq(policy_filter_valid(b, n), 0);
	b[POLICY_TOPIC_MAX - 1] = '#';
	b[POLICY_TOPIC_MAX - 2] = '/';
	cr_expect_eq(policy_filter_valid(b, POLICY_TOPIC_MAX), 1);
	free(b);
}

/* --- matching ---------------------------------------------------------- */

Test(policy, match_table)
{
	static const struct {
		const char *f, *t;
		int m;
	} cases[] = {
		/* literals, empty levels are levels */
		{ "a", "a", 1 }, { "a", "b", 0 }, { "a", "a/", 0 },
		{ "a/", "a", 0 }, { "a/", "a/", 1 }, { "/a", "a", 0 },
		{ "/a", "/a", 1 }, { "a//b", "a/b", 0 }, { "a//b", "a//b", 1 },
		{ "a/b", "a/bc", 0 }, { "a/bc", "a/b", 0 }, { "ab", "a", 0 },
		/* '+' first, middle, last; matches an empty level */
		{ "+", "a", 1 }, { "+", "a/b", 0 }, { "+", "/", 0 },
		{ "+/b", "a/b", 1 }, { "+/b", "/b", 1 }, { "+/b", "a/c", 0 },
		{ "a/+/c", "a/b/c", 1 }, { "a/+/c", "a//c", 1 },
		{ "a/+/c", "a/c", 0 }, { "a/+/c", "a/b/b/c", 0 },
		{ "a/+", "a/b", 1 }, { "a/+", "a/", 1 }, { "a/+", "a", 0 },
		{ "a/+", "a/b/c", 0 }, { "+/+", "/", 1 }, { "+/+", "a", 0 },
		/* '#' alone, after levels, matches the parent */
		{ "#", "a", 1 }, { "#", "/", 1 }, { "#", "a/b/c", 1 },
		{ "a/#", "a", 1 }, { "a/#", "a/", 1 }, { "a/#", "a/b/c", 1 },
		{ "a/#", "b", 0 }, { "a/#", "ab", 0 }, { "a/#", "ab/c", 0 },
		{ "/#", "/", 1 }, { "/#", "a", 0 }, { "/#", "/a/b", 1 },
		{ "+/#", "a", 1 }, { "+/#", "a/b", 1 }, { "a/+/#", "a", 0 },
		{ "a/+/#", "a/b", 1 }, { "a//#", "a/", 1 }, { "a//#", "a", 0 },
		/* '$' topics and wildcards first */
		{ "#", "$SYS/x", 0 }, { "+/x", "$SYS/x", 0 }, { "+", "$a", 0 },
		{ "+/#", "$SYS", 0 }, { "$SYS/#", "$SYS/x", 1 },
		{ "$SYS/+", "$SYS/x", 1 }, { "$SYS/#", "$SYS", 1 },
		{ "a/#", "a/$x", 1 }, { "+/+", "a/$x", 1 },
		{ "#", "a$", 1 },
		/* UTF-8 levels compare as bytes */
		{ "caf\xc3\xa9/+", "caf\xc3\xa9/x", 1 },
		{ "caf\xc3\xa9/+", "cafe/x", 0 },
	};
	size_t i;

	for (i = 0; i < N(cases); i++)
		cr_expect_eq(match(cases[i].f, cases[i].t), cases[i].m,
		    "match(\"%s\", \"%s\")", cases[i].f, cases[i].t);
}

Test(policy, match_long_and_deep)
{
	size_t n = POLICY_TOPIC_MAX, i;
	uint8_t *t = malloc(n), *f = malloc(n);

	cr_assert(t != NULL && f != NULL);
	for (i = 0; i < n; i++)
		t[i] = f[i] = (i % 2) ? '/' : 'a';
	t[n - 1] = f[n - 1] = 'a';
	cr_expect_eq(policy_match(f, n, t, n), 1);
	for (i = 0; i < n; i += 2)
		f[i] = '+';
	cr_expect_eq(policy_filter_valid(f, n), 1);
	cr_expect_eq(policy_match(f, n, t, n), 1);
	cr_expect_eq(policy_match(f, n - 2, t, n), 0);
	f[n - 1] = '#';
	cr_expect_eq(policy_match(f, n, t, n - 2), 1);
	free(t);
	free(f);
}

/* --- publish ----------------------------------------------------------- */

Test(policy, publish)
{
	struct policy_set *s = set_of("devices/{identity}/#, broadcast/+",
	    "");

	cr_expect_eq(may_pub(s, "devices/dev1"), 1);
	cr_expect_eq(may_pub(s, "devices/dev1/temp"), 1);
	cr_expect_eq(may_pub(s, "devices/dev1/a/b/c"), 1);
	cr_expect_eq(may_pub(s, "broadcast/x"), 1);
	cr_expect_eq(may_pub(s, "devices/dev2/temp"), 0);
	cr_expect_eq(may_pub(s, "devices/dev10/temp"), 0);
	cr_expect_eq(may_pub(s, "devices"), 0);
	cr_expect_eq(may_pub(s, "broadcast/x/y"), 0);
	cr_expect_eq(may_pub(s, "broadcast"), 0);
	cr_expect_eq(may_pub(s, "devices/dev1/+"), 0);   /* not a topic */
	cr_expect_eq(may_pub(s, "devices/dev1/#"), 0);
	cr_expect_eq(may_pub(s, ""), 0);
	cr_expect_eq(policy_may_publish(s, u("devices/dev1/\xff"), 14), 0);
	cr_expect_eq(policy_publish_cb(s, u("devices/dev1/x"), 14), 1);
	cr_expect_eq(policy_publish_cb(s, u("devices/dev2/x"), 14), 0);
	policy_set_free(s);
}

Test(policy, publish_empty_list_allows_nothing)
{
	struct policy_set *s = set_of("", "#");

	cr_expect_eq(may_pub(s, "a"), 0);
	cr_expect_eq(may_sub(s, "a"), 1);
	policy_set_free(s);
	s = set_of("   ", "");
	cr_expect_eq(may_pub(s, "a"), 0);
	cr_expect_eq(may_sub(s, "a"), 0);
	cr_expect_eq(may_sub(s, "#"), 0);
	policy_set_free(s);
}

Test(policy, publish_hash_and_dollar)
{
	struct policy_set *s = set_of("#", "");

	cr_expect_eq(may_pub(s, "a/b"), 1);
	cr_expect_eq(may_pub(s, "/"), 1);
	cr_expect_eq(may_pub(s, "$SYS/x"), 0);
	policy_set_free(s);
	s = set_of("#, $SYS/#", "");
	cr_expect_eq(may_pub(s, "$SYS/x"), 1);
	cr_expect_eq(may_pub(s, "$other"), 0);
	policy_set_free(s);
}

/* --- subscribe: coverage ----------------------------------------------- */

struct cov {
	const char *rules;
	const char *filter;
	int ok;
};

static void
run_cov(const struct cov *c, size_t n)
{
	struct policy_set *s;
	size_t i;

	for (i = 0; i < n; i++) {
		s = set_of("", c[i].rules);
		cr_expect_eq(may_sub(s, c[i].filter), c[i].ok,
		    "rules {%s} filter \"%s\": want %d", c[i].rules,
		    c[i].filter, c[i].ok);
		policy_set_free(s);
	}
}

Test(policy, cover_single_rule)
{
	static const struct cov c[] = {
		{ "a/#", "a/#", 1 }, { "a/#", "a", 1 }, { "a/#", "a/b", 1 },
		{ "a/#", "a/+", 1 }, { "a/#", "a/+/c/#", 1 },
		{ "a/#", "+/b", 0 }, { "a/#", "#", 0 }, { "a/#", "b/#", 0 },
		{ "a/#", "ab", 0 },
		{ "a/+", "a/+", 1 }, { "a/+", "a/x", 1 }, { "a/+", "a/", 1 },
		{ "a/+", "a/#", 0 }, { "a/+", "a", 0 }, { "a/+", "a/x/y", 0 },
		{ "a/x", "a/+", 0 }, { "a/x", "a/x", 1 }, { "a/x", "a/#", 0 },
		{ "+/x", "a/x", 1 }, { "+/x", "+/x", 1 }, { "a/x", "+/x", 0 },
		{ "+/x", "#", 0 }, { "+/x", "+/+", 0 },
		{ "#", "#", 1 }, { "#", "+", 1 }, { "#", "a/b/c", 1 },
		{ "#", "+/+/#", 1 }, { "#", "/", 1 },
		{ "#", "$SYS/#", 0 }, { "#", "$SYS", 0 }, { "#", "$SYS/+", 0 },
		{ "+/#", "$SYS/#", 0 }, { "+/#", "#", 1 }, { "+/#", "+", 1 },
		{ "+", "$x", 0 }, { "+", "+", 1 }, { "+", "#", 0 },
		{ "$SYS/#", "$SYS/#", 1 }, { "$SYS/#", "$SYS/broker/x", 1 },
		{ "$SYS/#", "#", 0 }, { "$SYS/#", "+/broker", 0 },
		{ "$SYS/+", "$SYS/#", 0 },
		/* empty levels */
		{ "a//#", "a//x", 1 }, { "a//#", "a/x", 0 }, { "a//#", "a/", 1 },
		{ "a/+/#", "a//x", 1 }, { "a/+/#", "a/#", 0 },
		{ "/#", "/+", 1 }, { "/#", "+", 0 }, { "+/#", "/", 1 },
		{ "a/", "a/+", 0 }, { "a/", "a/", 1 },
	};

	run_cov(c, N(c));
}

Test(policy, cover_union)
{
	static const struct cov c[] = {
		/* the parent level and one more '+' level with '#' */
		{ "a, a/+/#", "a/#", 1 },
		{ "a/+/#", "a/#", 0 },         /* "a" itself uncovered */
		{ "a", "a/#", 0 },
		{ "a, a/+, a/+/+/#", "a/#", 1 },  /* a/x/y: parent of # */
		{ "a, a/+/+/#", "a/#", 0 },       /* a/x uncovered */
		{ "a, a/+, a/+/+/+/#", "a/#", 0 }, /* a/x/y uncovered */
		{ "a, a/+, a/+/+, a/+/+/+/#", "a/#", 1 },
		{ "a, a/+, a/+/+/#", "a/+/#", 1 },
		{ "a/+, a/+/+/#", "a/+/#", 1 },
		{ "a/+, a/+/+/+/#", "a/+/#", 0 }, /* a/x/y uncovered */
		{ "a/+/+/#", "a/+/#", 0 },        /* a/x uncovered */
		{ "a/+, a/+/+, a/+/+/+/#", "a/+/#", 1 },
		{ "+, +/+/#", "#", 1 },
		{ "+, +/+/+/#", "#", 0 },         /* x/y uncovered */
		{ "+/+/#", "#", 0 },              /* x uncovered */
		{ "+/#", "#", 1 },
		{ "+, +/+, +/+/+/#", "#", 1 },
		{ "a/x, a/y", "a/+", 0 },         /* literals never cover '+' */
		{ "a/x, a/+", "a/+", 1 },
		{ "a/x, b/x", "+/x", 0 },
		{ "#, $SYS/#", "$SYS/#", 1 },
		{ "#, $SYS/#", "#", 1 },
		{ "#, $SYS", "$SYS/#", 0 },
		{ "$SYS, $SYS/+/#", "$SYS/#", 1 },
		{ "a/b/#, a/+/c", "a/+/c", 1 },
		{ "a/b/#, a/c/#", "a/+/#", 0 },
		{ "x/#, a/+/c", "a/b/c", 1 },
		{ "+/+/c, a/#", "a/+/c", 1 },
		{ "+/+/c", "$a/b/c", 0 },
		{ "$a/+/c", "$a/b/c", 1 },
	};

	run_cov(c, N(c));
}

Test(policy, cover_deep_filters)
{
	char f[256];
	struct policy_set *s = set_of("", "devices/{identity}/#");
	size_t o, i;

	o = (size_t)snprintf(f, sizeof(f), "devices/dev1");
	for (i = 0; i < 60; i++)
		o += (size_t)snprintf(f + o, sizeof(f) - o, "/+");
	cr_expect_eq(may_sub(s, f), 1);
	memcpy(f, "devices/dev2", 12);
	cr_expect_eq(may_sub(s, f), 0);
	policy_set_free(s);
}

Test(policy, cover_long_filter)
{
	size_t n = POLICY_TOPIC_MAX, i;
	uint8_t *f = malloc(n);
	struct policy_set *s = set_of("", "+/+/#, +, +/+");

	cr_assert_not_null(f);
	for (i = 0; i < n; i++)
		f[i] = (i % 2) ? '/' : '+';
	f[n - 1] = '#';
	cr_expect_eq(policy_filter_valid(f, n), 1);
	cr_expect_eq(policy_may_subscribe(s, f, n), 1);
	f[0] = 'a';
	cr_expect_eq(policy_may_subscribe(s, f, n), 1);
	policy_set_free(s);
	s = set_of("", "+/+/#");
	cr_expect_eq(policy_may_subscribe(s, f, n), 1);
	f[0] = '$';
	cr_expect_eq(policy_may_subscribe(s, f, n), 0);
	cr_expect_eq(policy_may_subscribe(s, f, n + 0) ==
	    policy_subscribe_cb(s, f, n), 1);
	policy_set_free(s);
	free(f);
}

Test(policy, subscribe_invalid_filters_refused)
{
	struct policy_set *s = set_of("", "#, $SYS/#");

	cr_expect_eq(may_sub(s, "a+"), 0);
	cr_expect_eq(may_sub(s, "a/#/b"), 0);
	cr_expect_eq(may_sub(s, ""), 0);
	cr_expect_eq(may_sub(s, "\xff"), 0);
	cr_expect_eq(may_sub(s, "a/b"), 1);
	policy_set_free(s);
}

/* --- shared subscriptions ---------------------------------------------- */

Test(policy, shared_subscriptions)
{
	struct policy_set *s = set_of("", "devices/{identity}/#");

	cr_expect_eq(may_sub(s, "$share/g/devices/dev1/#"), 1);
	cr_expect_eq(may_sub(s, "$share/g/devices/dev1/+/x"), 1);
	cr_expect_eq(may_sub(s, "$share/group-1/devices/dev1"), 1);
	cr_expect_eq(may_sub(s, "$share/g/devices/dev2/#"), 0);
	cr_expect_eq(may_sub(s, "$share/g/#"), 0);
	cr_expect_eq(may_sub(s, "$share/devices/dev1/#"), 0);  /* group
	                                           "devices", filter dev1/# */
	/* malformed */
	cr_expect_eq(may_sub(s, "$share/"), 0);
	cr_expect_eq(may_sub(s, "$share//devices/dev1/#"), 0);
	cr_expect_eq(may_sub(s, "$share/g"), 0);
	cr_expect_eq(may_sub(s, "$share/g/"), 0);
	cr_expect_eq(may_sub(s, "$share/+/devices/dev1/#"), 0);
	cr_expect_eq(may_sub(s, "$share/#/devices/dev1/#"), 0);
	cr_expect_eq(may_sub(s, "$share/g+/devices/dev1/#"), 0);
	cr_expect_eq(may_sub(s, "$share/g/devices/dev1/#/x"), 0);
	cr_expect_eq(may_sub(s, "$share/\xff/devices/dev1/#"), 0);
	policy_set_free(s);

	/* "$share" as an ordinary first level, and "$sharex/..." */
	s = set_of("", "#, $share, $sharex/#");
	cr_expect_eq(may_sub(s, "$share"), 1);
	cr_expect_eq(may_sub(s, "$sharex/a"), 1);
	cr_expect_eq(may_sub(s, "$share/g/a"), 1);
	cr_expect_eq(may_sub(s, "$share/g/$SYS/#"), 0);
	policy_set_free(s);
}

/* --- rule lists -------------------------------------------------------- */

Test(policy, list_check_accepts)
{
	static const char *ok[] = {
		"", "   ", "#", "a", "devices/{identity}/#",
		"devices/{identity}/#, broadcast/#",
		"dev-{identity}/#", "{identity}", "{identity}/{cn}/x",
		"a/{serial}-{fingerprint}/+", "$SYS/#", " a , b ",
		"caf\xc3\xa9/#", "a/+/b, +/#, //#",
	};
	char err[512];
	size_t i;

	for (i = 0; i < N(ok); i++) {
		cr_expect_eq(policy_list_check(POLICY_PUBLISH, ok[i], err,
		    sizeof(err)), 0, "\"%s\": %s", ok[i], err);
		cr_expect_eq(policy_list_check(POLICY_SUBSCRIBE, ok[i], err,
		    sizeof(err)), 0, "\"%s\": %s", ok[i], err);
	}
	cr_expect_eq(policy_list_check(POLICY_PUBLISH, "$share/g/a", err,
	    sizeof(err)), 0);
}

Test(policy, list_check_refuses)
{
	static const struct {
		enum policy_kind kind;
		const char *list;
		const char *want;
	} bad[] = {
		{ POLICY_PUBLISH, "a,", "publish: rule 2 is empty" },
		{ POLICY_PUBLISH, ",a", "rule 1 is empty" },
		{ POLICY_SUBSCRIBE, "a,,b", "subscribe: rule 2 is empty" },
		{ POLICY_PUBLISH, "a+", "'+' inside a level" },
		{ POLICY_PUBLISH, "a/b#", "'#' that is not the whole last" },
		{ POLICY_PUBLISH, "#/a", "'#' that is not the whole last" },
		{ POLICY_PUBLISH, "{identity}+/x", "'+' inside a level" },
		{ POLICY_PUBLISH, "a/{id}/#", "unknown placeholder {id}" },
		{ POLICY_PUBLISH, "a/{identity/#", "\"{\" at position 3 is "
		    "not closed" },
		{ POLICY_PUBLISH, "a/{iden{tity}", "not closed" },
		{ POLICY_PUBLISH, "a/}x", "\"}\" at position 3 has no" },
		{ POLICY_PUBLISH, "ok/#, \xff", "not valid UTF-8" },
		{ POLICY_SUBSCRIBE, "$share/g/a", "begins with $share/" },
		{ POLICY_SUBSCRIBE, "a/#, {identity}/+, x#", "rule \"x#\"" },
	};
	char err[512];
	size_t i;

	for (i = 0; i < N(bad); i++) {
		err[0] = '\0';
		cr_expect_eq(policy_list_check(bad[i].kind, bad[i].list, err,
		    sizeof(err)), -1, "accepted \"%s\"", bad[i].list);
		cr_expect_not_null(strstr(err, bad[i].want),
		    "\"%s\": want \"%s\" in \"%s\"", bad[i].list,
		    bad[i].want, err);
	}
}

/* --- expansion --------------------------------------------------------- */

Test(policy, expand_fills_placeholders)
{
	struct policy_rules r = {
		.publish = "devices/{identity}/#, x/{cn}/{serial}",
		.subscribe = "f/{fingerprint}-{identity}/+",
	};
	struct policy_set *s;
	char err[512];
	const char *p;
	size_t len;

	s = policy_expand(&r, &dev, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	p = policy_set_rule(s, POLICY_PUBLISH, 0, &len);
	cr_assert_not_null(p);
	cr_expect_eq(len, strlen("devices/dev1/#"));
	cr_expect(memcmp(p, "devices/dev1/#", len) == 0);
	p = policy_set_rule(s, POLICY_PUBLISH, 1, &len);
	cr_assert_not_null(p);
	cr_expect(len == 14 && memcmp(p, "x/Dev One/0A1B", 14) == 0,
	    "got %.*s", (int)len, p);
	cr_expect_null(policy_set_rule(s, POLICY_PUBLISH, 2, &len));
	p = policy_set_rule(s, POLICY_SUBSCRIBE, 0, &len);
	cr_assert_not_null(p);
	cr_expect(len == strlen("f/ab12cd-dev1/+") &&
	    memcmp(p, "f/ab12cd-dev1/+", len) == 0);
	cr_expect_null(policy_set_rule(s, POLICY_SUBSCRIBE, 1, &len));
	cr_expect_eq(may_pub(s, "x/Dev One/0A1B"), 1);
	cr_expect_eq(may_sub(s, "f/ab12cd-dev1/x"), 1);
	cr_expect_eq(may_sub(s, "f/ab12cd-dev2/x"), 0);
	policy_set_free(s);
	policy_set_free(NULL);
	cr_expect_null(policy_set_rule(NULL, POLICY_PUBLISH, 0, &len));
}

Test(policy, expand_refuses_unsafe_values)
{
	static const struct {
		struct policy_values v;
		const char *rules;
		const char *want;
	} bad[] = {
		{ { .identity = "a/b" }, "d/{identity}/#", "contains '/'" },
		{ { .identity = "a+" }, "d/{identity}/#", "contains '/', '+'" },
		{ { .identity = "#" }, "d/{identity}/#", "contains" },
		{ { .identity = "" }, "d/{identity}/#", "has no identity" },
		{ { .identity = NULL }, "d/{identity}/#", "has no identity" },
		{ { .identity = "x" }, "d/{cn}/#", "has no CN" },
		{ { .identity = "x", .cn = "" }, "d/{cn}/#", "has no CN" },
		{ { .identity = "x" }, "d/{serial}", "has no serial number" },
		{ { .identity = "x" }, "{fingerprint}", "has no fingerprint" },
		{ { .identity = "\xff" }, "d/{identity}", "not valid UTF-8" },
		{ { .identity = "$SYS" }, "{identity}/#", "begins with '$'" },
	};
	struct policy_rules r;
	char err[512];
	size_t i;

	for (i = 0; i < N(bad); i++) {
		r.publish = bad[i].rules;
		r.subscribe = "";
		err[0] = '\0';
		cr_expect_null(policy_expand(&r, &bad[i].v, err, sizeof(err)),
		    "case %zu expanded", i);
		cr_expect_not_null(strstr(err, bad[i].want),
		    "case %zu: want \"%s\" in \"%s\"", i, bad[i].want, err);
		/* the same rule in the subscribe list */
		r.publish = "";
		r.subscribe = bad[i].rules;
		cr_expect_null(policy_expand(&r, &bad[i].v, err, sizeof(err)));
	}
}

Test(policy, expand_unused_placeholders_need_no_value)
{
	static const struct policy_values v = { .identity = "ok" };
	struct policy_rules r = { .publish = "d/{identity}/#",
	    .subscribe = "d/{identity}/#" };
	struct policy_set *s;
	char err[512];

	s = policy_expand(&r, &v, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	cr_expect_eq(may_pub(s, "d/ok/x"), 1);
	policy_set_free(s);
}

/* '$' is fine where it does not begin the rule. */
Test(policy, expand_dollar_inside)
{
	static const struct policy_values v = { .identity = "$x" };
	struct policy_rules r = { .publish = "d/{identity}, a-{identity}",
	    .subscribe = "" };
	struct policy_set *s;
	char err[512];

	s = policy_expand(&r, &v, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	cr_expect_eq(may_pub(s, "d/$x"), 1);
	cr_expect_eq(may_pub(s, "a-$x"), 1);
	policy_set_free(s);
}

Test(policy, expand_refuses_bad_rules)
{
	struct policy_rules r = { .publish = "a+", .subscribe = "" };
	char err[512];

	cr_expect_null(policy_expand(&r, &dev, err, sizeof(err)));
	cr_expect_not_null(strstr(err, "'+' inside a level"), "%s", err);
}

Test(policy, expand_values_may_hold_commas)
{
	static const struct policy_values v = { .identity = "a,b" };
	struct policy_rules r = { .publish = "d/{identity}, e",
	    .subscribe = "" };
	struct policy_set *s;
	char err[512];

	s = policy_expand(&r, &v, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	cr_expect_eq(may_pub(s, "d/a,b"), 1);
	cr_expect_eq(may_pub(s, "e"), 1);
	cr_expect_eq(may_pub(s, "d/a"), 0);
	policy_set_free(s);
}

/* --- coverage against brute force -------------------------------------- */

/*
 * Every filter of up to three levels and every pair of rules of up to two
 * levels, over the levels "a", "$a", "", "+" and "#": moat's answer must
 * equal the brute-force one over every topic of up to four levels made of
 * "a", "$a", "" and "z", a value no rule names (all such values behave
 * alike, so this finite set decides exactly).
 */
enum { BF_A, BF_D, BF_E, BF_P, BF_H, BF_Z };
static const char *const bf_text[] = { "a", "$a", "", "+", "#", "z" };

struct bf {
	int v[4];
	int n;
};

static int
bf_match(const struct bf *f, const struct bf *t)
{
	int i;

	if (t->v[0] == BF_D && (f->v[0] == BF_P || f->v[0] == BF_H))
		return (0);
	for (i = 0; i < f->n; i++) {
		if (f->v[i] == BF_H)
			return (1);
		if (i == t->n || (f->v[i] != BF_P && f->v[i] != t->v[i]))
			return (0);
	}
	return (f->n == t->n);
}

static void
bf_str(const struct bf *l, char *out, size_t len)
{
	size_t o = 0;
	int i;

	out[0] = '\0';
	for (i = 0; i < l->n; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? "/" : "",
		    bf_text[l->v[i]]);
}

/* Every filter of 1..max levels ('#' last only, not the empty string). */
static size_t
bf_filters(int max, struct bf *out)
{
	struct bf f;
	size_t n = 0;
	int k, code, total, i, ok;

	for (k = 1; k <= max; k++) {
		total = 1;
		for (i = 0; i < k; i++)
			total *= 5;
		for (code = 0; code < total; code++) {
			f.n = k;
			for (i = 0, ok = 1; i < k; i++) {
				f.v[i] = (code / (i == 0 ? 1 : i == 1 ? 5 :
				    25)) % 5;
				if (f.v[i] == BF_H && i + 1 < k)
					ok = 0;
			}
			if (ok && !(k == 1 && f.v[0] == BF_E))
				out[n++] = f;
		}
	}
	return (n);
}

/* Every topic of 1..4 levels over a, $a, "" and z. */
static size_t
bf_topics(struct bf *out)
{
	static const int lv[] = { BF_A, BF_D, BF_E, BF_Z };
	struct bf t;
	size_t n = 0;
	int k, code, total, i;

	for (k = 1; k <= 4; k++) {
		total = 1 << (2 * k);
		for (code = 0; code < total; code++) {
			t.n = k;
			for (i = 0; i < k; i++)
				t.v[i] = lv[(code >> (2 * i)) & 3];
			if (!(k == 1 && t.v[0] == BF_E))
				out[n++] = t;
		}
	}
	return (n);
}

Test(policy, cover_equals_brute_force, .timeout = 60)
{
	static struct bf filters[200], rules[40], topics[400];
	struct policy_rules pr;
	struct policy_set *s;
	char list[64], r1[16], r2[16], fs[16], err[256];
	size_t nf, nr, nt, i, j, k, t, checked = 0;
	int want, m1, m2;

	nf = bf_filters(3, filters);
	nr = bf_filters(2, rules);
	nt = bf_topics(topics);
	for (i = 0; i < nr; i++) {
		for (j = i; j < nr; j++) {
			bf_str(&rules[i], r1, sizeof(r1));
			bf_str(&rules[j], r2, sizeof(r2));
			snprintf(list, sizeof(list), "%s, %s", r1, r2);
			pr.publish = list;
			pr.subscribe = list;
			s = policy_expand(&pr, NULL, err, sizeof(err));
			cr_assert_not_null(s, "%s: %s", list, err);
			for (k = 0; k < nf; k++) {
				want = 1;
				for (t = 0; t < nt && want; t++) {
					m1 = bf_match(&rules[i], &topics[t]);
					m2 = bf_match(&rules[j], &topics[t]);
					if (bf_match(&filters[k], &topics[t]) &&
					    !m1 && !m2)
						want = 0;
				}
				bf_str(&filters[k], fs, sizeof(fs));
				cr_assert_eq(may_sub(s, fs), want,
				    "rules {%s} filter %s: want %d", list, fs,
				    want);
				checked++;
			}
			policy_set_free(s);
		}
	}
	cr_assert_gt(checked, 10000);
}
