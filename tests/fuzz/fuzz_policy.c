/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for src/core/policy.c, the topic rules. The first byte
 * picks one of two modes.
 *
 * Raw (even first byte): the rest is one string, held in a buffer of
 * exactly its size so that ASan sees any read past the length. Checks:
 *   - a valid topic name is a valid filter and matches itself;
 *   - policy_may_subscribe() and policy_may_publish() agree with the
 *     validity functions on it ($share aside);
 *   - split at the first newline into a rule list and an identity: a
 *     list that policy_list_check() accepts expands for that identity
 *     either into valid filters only, or is refused with a reason.
 *
 * Structured (odd first byte): the bytes choose up to four rules and a
 * filter of up to four levels each, from the levels "a", "b", "",
 * "$a", "+" and "#". The answer of policy_may_subscribe() is compared
 * with brute force over every topic of up to one level deeper than the
 * deepest of them, made of those literal levels and one value ("z")
 * that no rule names: as every value no rule names behaves alike, that
 * finite set decides exactly. The matcher is compared with a separate
 * level-array matcher on every such topic, publish with "some rule
 * matches", and "$share/g/FILTER" with FILTER.
 *
 * Any broken promise calls abort(). tests/fuzz/run.sh style:
 *   clang -fsanitize=fuzzer,address,undefined -I include \
 *       src/core/policy.c src/core/mqtt.c src/core/text.c \
 *       tests/fuzz/fuzz_policy.c
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/policy.h"

#define MAX_RULES 4
#define MAX_LEVELS 4
#define MAX_DEPTH (MAX_LEVELS + 1)
#define STR_MAX 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int ok)
{
	if (!ok)
		abort();
}

/* Level tokens; L_Z appears only in topics. */
enum lv { L_A, L_B, L_E, L_D, L_P, L_H, L_Z };

static const char *const lv_text[] = {
	[L_A] = "a", [L_B] = "b", [L_E] = "", [L_D] = "$a",
	[L_P] = "+", [L_H] = "#", [L_Z] = "z",
};

#define NLIT 5                   /* L_A, L_B, L_E, L_D, L_Z in topics */
static const enum lv topic_lv[NLIT] = { L_A, L_B, L_E, L_D, L_Z };

struct lvs {
	enum lv v[MAX_DEPTH];
	size_t n;
};

/* The reference matcher, on level arrays. */
static int
ref_match(const struct lvs *f, const struct lvs *t)
{
	size_t i;

	if (t->v[0] == L_D && (f->v[0] == L_P || f->v[0] == L_H))
		return (0);
	for (i = 0; i < f->n; i++) {
		if (f->v[i] == L_H)
			return (1);
		if (i == t->n)
			return (0);
		if (f->v[i] != L_P && f->v[i] != t->v[i])
			return (0);
	}
	return (f->n == t->n);
}

static size_t
to_text(const struct lvs *l, char *out)
{
	size_t i, o = 0, n;

	for (i = 0; i < l->n; i++) {
		if (i > 0)
			out[o++] = '/';
		n = strlen(lv_text[l->v[i]]);
		memcpy(out + o, lv_text[l->v[i]], n);
		o += n;
	}
	out[o] = '\0';
	return (o);
}

/* A filter or rule from the input: '#' only last. */
static void
take(const uint8_t **p, const uint8_t *end, struct lvs *l)
{
	size_t i;

	l->n = *p < end ? (size_t)(*(*p)++ % MAX_LEVELS) + 1 : 1;
	for (i = 0; i < l->n; i++) {
		l->v[i] = *p < end ? (enum lv)(*(*p)++ % 6) : L_A;
		if (l->v[i] == L_H && i + 1 < l->n)
			l->v[i] = L_P;
	}
	/* a lone empty level is the empty string, not a filter */
	if (l->n == 1 && l->v[0] == L_E)
		l->v[0] = L_A;
}

struct world {
	struct lvs f;
	struct lvs r[MAX_RULES];
	size_t nr;
	const struct policy_set *s;
	char ftext[STR_MAX];
	size_t flen;
	int covered;             /* brute force so far */
};

/* Visit every topic of depth d..MAX_DEPTH below prefix t. */
static void
visit(struct world *w, struct lvs *t, size_t depth)
{
	char text[STR_MAX];
	size_t i, k, tlen;
	int fm, any = 0;

	if (t->n > 0 && !(t->n == 1 && t->v[0] == L_E)) {
		tlen = to_text(t, text);
		fm = ref_match(&w->f, t);
		check(policy_match((const uint8_t *)w->ftext, w->flen,
		    (const uint8_t *)text, tlen) == fm);
		for (k = 0; k < w->nr; k++)
			any |= ref_match(&w->r[k], t);
		if (fm && !any)
			w->covered = 0;
		check(policy_may_publish(w->s, (const uint8_t *)text,
		    tlen) == any);
	}
	if (t->n == depth)
		return;
	for (i = 0; i < NLIT; i++) {
		t->v[t->n++] = topic_lv[i];
		visit(w, t, depth);
		t->n--;
	}
}

static void
structured(const uint8_t *p, const uint8_t *end)
{
	struct world w;
	struct policy_rules rules;
	struct policy_set *s;
	struct lvs t;
	char list[MAX_RULES * (STR_MAX + 2)], err[512], rt[STR_MAX];
	char shared[STR_MAX + 16];
	size_t k, o = 0, depth;
	int got;

	memset(&w, 0, sizeof(w));
	take(&p, end, &w.f);
	w.flen = to_text(&w.f, w.ftext);
	depth = w.f.n;
	w.nr = p < end ? *p++ % (MAX_RULES + 1) : 0;
	for (k = 0; k < w.nr; k++) {
		take(&p, end, &w.r[k]);
		if (w.r[k].n > depth)
			depth = w.r[k].n;
		to_text(&w.r[k], rt);
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
		    k > 0 ? ", " : "", rt);
	}
	list[o] = '\0';
	check(policy_filter_valid((const uint8_t *)w.ftext, w.flen));
	check(policy_list_check(POLICY_PUBLISH, list, err,
	    sizeof(err)) == 0);
	rules.publish = list;
	rules.subscribe = list;
	s = policy_expand(&rules, NULL, err, sizeof(err));
	check(s != NULL);
	w.s = s;
	w.covered = 1;
	t.n = 0;
	visit(&w, &t, depth + 1);
	got = policy_may_subscribe(s, (const uint8_t *)w.ftext, w.flen);
	if (got != w.covered) {
		fprintf(stderr, "rules {%s} filter %s: moat says %d, brute "
		    "force %d\n", list, w.ftext, got, w.covered);
		abort();
	}
	o = (size_t)snprintf(shared, sizeof(shared), "$share/g/%s", w.ftext);
	check(policy_may_subscribe(s, (const uint8_t *)shared, o) == got);
	policy_set_free(s);
}

/* The rule list before '\n' expanded for the identity after it. */
static void
raw_list(const uint8_t *d, size_t n)
{
	static const char dummy[] = "0A";
	struct policy_values v = { .cn = dummy, .serial = dummy,
	    .fingerprint = dummy };
	struct policy_rules rules;
	struct policy_set *s;
	const uint8_t *nl = memchr(d, '\n', n);
	char *list, *id, err[512];
	const char *r;
	size_t ln = nl != NULL ? (size_t)(nl - d) : n, i, len;

	list = strndup((const char *)d, ln);
	id = nl != NULL ? strndup((const char *)nl + 1, n - ln - 1) :
	    strdup("dev");
	check(list != NULL && id != NULL);
	if (policy_list_check(POLICY_SUBSCRIBE, list, err,
	    sizeof(err)) == 0) {
		v.identity = id;
		rules.publish = list;
		rules.subscribe = list;
		err[0] = '\0';
		s = policy_expand(&rules, &v, err, sizeof(err));
		check(s != NULL || err[0] != '\0');
		for (i = 0; (r = policy_set_rule(s, POLICY_SUBSCRIBE, i,
		    &len)) != NULL; i++) {
			check(policy_filter_valid((const uint8_t *)r, len));
			/* a topic-like rule matches itself */
			if (policy_topic_valid((const uint8_t *)r, len))
				check(policy_may_publish(s,
				    (const uint8_t *)r, len));
		}
		policy_set_free(s);
	}
	free(id);
	free(list);
}

static void
raw(const uint8_t *d, size_t n)
{
	static const struct policy_rules all = { .publish = "#, $SYS/#",
	    .subscribe = "#, $SYS/#, $a/#" };
	uint8_t *b = malloc(n > 0 ? n : 1);
	struct policy_set *s;
	char err[256];
	int tv, fv, sys, fa;

	check(b != NULL);
	memcpy(b, d, n);
	tv = policy_topic_valid(b, n);
	fv = policy_filter_valid(b, n);
	if (tv)
		check(fv && policy_match(b, n, b, n));
	s = policy_expand(&all, NULL, err, sizeof(err));
	check(s != NULL);
	/* "#, $SYS/#": everything but '$' topics other than $SYS's */
	sys = n >= 4 && memcmp(b, "$SYS", 4) == 0 && (n == 4 || b[4] == '/');
	check(policy_may_publish(s, b, n) == (tv && (b[0] != '$' || sys)));
	/* "#, $SYS/#, $a/#": likewise, plus $a's */
	if (!(n >= 7 && memcmp(b, "$share/", 7) == 0)) {
		fa = n >= 2 && memcmp(b, "$a", 2) == 0 && (n == 2 ||
		    b[2] == '/');
		check(policy_may_subscribe(s, b, n) == (fv && (b[0] != '$' ||
		    sys || fa)));
	} else
		(void)policy_may_subscribe(s, b, n);
	policy_set_free(s);
	raw_list(b, n);
	free(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return (0);
	if (data[0] & 1)
		structured(data + 1, data + size);
	else
		raw(data + 1, size - 1);
	return (0);
}
