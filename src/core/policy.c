/* SPDX-License-Identifier: MIT */
/*
 * Topic policy: MQTT topic and filter rules (section 4.7 of MQTT 3.1.1 and
 * 5), the matcher, and the coverage test that decides whether every topic
 * a SUBSCRIBE filter can match is allowed. Rule lists are checked when
 * moat.ini and the identity map load (policy_list_check()); when a device
 * connects its placeholders are filled into one allocation
 * (policy_expand()), which the packet guard then asks per PUBLISH and per
 * SUBSCRIBE filter.
 *
 * Coverage is exact, not "one rule contains the filter": the topics of a
 * filter F are walked level by level together with every rule. A rule
 * ending in '#' whose levels before it fit F's covers everything below
 * that depth; below F's last literal or '+' level, a rule can only keep
 * up with a wildcard level of F by having '+' there, because a level has
 * infinitely many values and literal rules name only some. So F = p/# is
 * covered when a '#' rule fits at some depth H and, at every depth from
 * |p| to H, a rule of exactly that depth fits too (for the parent-level
 * topics '#' also matches); F without '#' is covered by a '#' rule that
 * fits or by a rule of F's own depth that fits at every level. Each rule
 * is walked once, plus once per depth below |p| to H: no recursion, no
 * allocation.
 *
 * Pure: no I/O, no global state.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/mqtt.h"
#include "moat/policy.h"
#include "moat/text.h"

#define SHARE_PREFIX "$share/"
#define SHARE_LEN (sizeof(SHARE_PREFIX) - 1)
/* No rule ending in '#' fits: the depth at which coverage is total. */
#define NO_DEPTH SIZE_MAX
/* Longest rule checked at load, placeholders filled (a moat.ini line is
 * at most 198 bytes). */
#define RULE_MAX 1024
/* What a placeholder becomes when a rule list is checked at load. */
#define SAMPLE_VALUE "x"

/* One expanded rule inside a policy_set's text. */
struct span {
	uint32_t off;
	uint32_t len;
	uint32_t levels;         /* '/' count + 1 */
	uint32_t hash;           /* 1: the last level is '#' */
};

struct policy_set {
	uint32_t n[2];           /* rules per enum policy_kind */
	struct span span[];      /* n[0] publish, n[1] subscribe; then text */
};

/* ------------------------------------------------------------------ */
/* Topics and filters                                                  */

/* End of the level that starts at i: the next '/' or len. */
static size_t
level_end(const uint8_t *s, size_t len, size_t i)
{
	const uint8_t *p = i < len ? memchr(s + i, '/', len - i) : NULL;

	return (p != NULL ? (size_t)(p - s) : len);
}

/* 1 when s[i..e) is the single character c. */
static int
level_is(const uint8_t *s, size_t i, size_t e, uint8_t c)
{
	return (e == i + 1 && s[i] == c);
}

/*
 * NULL when s is a valid filter (wild) or topic name (!wild), else what
 * is wrong with it, to follow the quoted value in a message.
 */
static const char *
topic_problem(const uint8_t *s, size_t len, int wild)
{
	size_t i, start = 0;

	if (len == 0)
		return ("is empty");
	if (len > POLICY_TOPIC_MAX)
		return ("is longer than 65535 bytes, the most MQTT allows");
	if (!mqtt_utf8_valid(s, len))
		return ("is not valid UTF-8 or holds U+0000");
	for (i = 0; i < len; i++) {
		if (s[i] == '/') {
			start = i + 1;
			continue;
		}
		if (s[i] != '+' && s[i] != '#')
			continue;
		if (!wild)
			return ("holds '+' or '#', which a topic name never "
			    "does");
		if (s[i] == '+' && !level_is(s, start, level_end(s, len,
		    start), '+'))
			return ("has '+' inside a level; '+' stands for a "
			    "whole level, such as a/+/b");
		if (s[i] == '#' && (i != start || i + 1 != len))
			return ("has '#' that is not the whole last level; "
			    "'#' stands for the last level and all below, "
			    "such as a/#");
	}
	return (NULL);
}

int
policy_topic_valid(const uint8_t *t, size_t len)
{
	return (topic_problem(t, len, 0) == NULL);
}

int
policy_filter_valid(const uint8_t *f, size_t len)
{
	return (topic_problem(f, len, 1) == NULL);
}

int
policy_match(const uint8_t *f, size_t flen, const uint8_t *t, size_t tlen)
{
	size_t fi = 0, ti = 0, fe, te;
	int tmore = 1;

	/* '+' and '#' first do not reach the broker's '$' topics. */
	if (tlen > 0 && t[0] == '$' && flen > 0 &&
	    (f[0] == '+' || f[0] == '#'))
		return (0);
	for (;;) {
		fe = level_end(f, flen, fi);
		if (level_is(f, fi, fe, '#'))
			return (1);     /* this level (or none) and below */
		if (!tmore)
			return (0);
		te = level_end(t, tlen, ti);
		if (!level_is(f, fi, fe, '+') && (fe - fi != te - ti ||
		    memcmp(f + fi, t + ti, fe - fi) != 0))
			return (0);
		tmore = te < tlen;
		if (fe >= flen)
			return (!tmore);
		fi = fe + 1;
		ti = te + 1;
	}
}

/* ------------------------------------------------------------------ */
/* Coverage                                                            */

/* The filter being judged, as the walk sees it. */
struct cover {
	const uint8_t *f;
	size_t len;
	size_t m;                /* levels before a final '#' (all, if none) */
	int hash;                /* 1: F ends in '#' */
	int dollar;              /* 1: F's first level is literal "$..." */
};

static void
cover_init(struct cover *c, const uint8_t *f, size_t len)
{
	size_t i, levels = 1;

	for (i = 0; i < len; i++)
		levels += f[i] == '/';
	c->f = f;
	c->len = len;
	c->hash = len > 0 && f[len - 1] == '#';
	c->m = levels - (size_t)c->hash;
	c->dollar = c->m > 0 && f[0] == '$';
}

/*
 * Walk rule r against F. *hash_at: the depth of r's '#' when every level
 * before it fits F's, so that r matches every topic of F (NO_DEPTH
 * otherwise). Returns the depth of r when r has no '#' and every level
 * fits (r then matches exactly F's topics of that depth), else 0.
 */
static size_t
rule_walk(const struct cover *c, const uint8_t *r, size_t rlen,
    size_t *hash_at)
{
	size_t ri = 0, fi = 0, d = 0, re, fe = 0;
	int fwild;

	*hash_at = NO_DEPTH;
	for (;;) {
		re = level_end(r, rlen, ri);
		if (level_is(r, ri, re, '#')) {
			if (d > 0 || !c->dollar)
				*hash_at = d;
			return (0);
		}
		if (d < c->m) {
			fe = level_end(c->f, c->len, fi);
			fwild = level_is(c->f, fi, fe, '+');
		} else if (c->hash)
			fwild = 1;
		else
			return (0);     /* r is deeper than F */
		if (level_is(r, ri, re, '+')) {
			if (!fwild && d == 0 && c->dollar)
				return (0);
		} else if (fwild || re - ri != fe - fi ||
		    memcmp(r + ri, c->f + fi, re - ri) != 0)
			return (0);
		d++;
		if (re >= rlen)
			return (d);
		ri = re + 1;
		fi = fe + 1;
	}
}

static const uint8_t *
set_text(const struct policy_set *s)
{
	return ((const uint8_t *)(s->span + s->n[0] + s->n[1]));
}

/* 1 when some rule of depth d without '#' matches F's topics of depth d. */
static int
fits_at(const struct policy_set *s, const struct cover *c, size_t d)
{
	const struct span *sp = s->span + s->n[0];
	const uint8_t *text = set_text(s);
	size_t i, h;

	for (i = 0; i < s->n[1]; i++)
		if (!sp[i].hash && sp[i].levels == d &&
		    rule_walk(c, text + sp[i].off, sp[i].len, &h) == d)
			return (1);
	return (0);
}

/* 1 when the subscribe rules of s match every topic of valid filter f. */
static int
covers(const struct policy_set *s, const uint8_t *f, size_t len)
{
	const struct span *sp = s->span + s->n[0];
	const uint8_t *text = set_text(s);
	struct cover c;
	size_t i, d, h, top = NO_DEPTH;

	cover_init(&c, f, len);
	for (i = 0; i < s->n[1]; i++) {
		d = rule_walk(&c, text + sp[i].off, sp[i].len, &h);
		if (h < top)
			top = h;
		if (!c.hash && d == c.m && d > 0)
			return (1);
	}
	if (top <= c.m)
		return (1);
	if (c.hash == 0 || top == NO_DEPTH)
		return (0);
	/* p/#: the topics of depth |p| .. top-1 need rules of their own. */
	for (d = c.m > 0 ? c.m : 1; d < top; d++)
		if (!fits_at(s, &c, d))
			return (0);
	return (1);
}

int
policy_may_publish(const struct policy_set *s, const uint8_t *topic,
    size_t len)
{
	const uint8_t *text = set_text(s);
	uint32_t i;

	if (!policy_topic_valid(topic, len))
		return (0);
	for (i = 0; i < s->n[0]; i++)
		if (policy_match(text + s->span[i].off, s->span[i].len, topic,
		    len))
			return (1);
	return (0);
}

int
policy_may_subscribe(const struct policy_set *s, const uint8_t *filter,
    size_t len)
{
	size_t g;

	if (len > POLICY_TOPIC_MAX)
		return (0);
	if (len > SHARE_LEN && memcmp(filter, SHARE_PREFIX, SHARE_LEN) == 0) {
		/* $share/GROUP/FILTER: GROUP one level, no wildcards. */
		for (g = SHARE_LEN; g < len && filter[g] != '/'; g++)
			if (filter[g] == '+' || filter[g] == '#')
				return (0);
		if (g == SHARE_LEN || g + 1 >= len ||
		    !mqtt_utf8_valid(filter, g))
			return (0);
		filter += g + 1;
		len -= g + 1;
	} else if (len == SHARE_LEN && memcmp(filter, SHARE_PREFIX,
	    SHARE_LEN) == 0)
		return (0);
	if (!policy_filter_valid(filter, len))
		return (0);
	return (covers(s, filter, len));
}

int
policy_publish_cb(void *ctx, const uint8_t *topic, size_t len)
{
	return (policy_may_publish(ctx, topic, len));
}

int
policy_subscribe_cb(void *ctx, const uint8_t *filter, size_t len)
{
	return (policy_may_subscribe(ctx, filter, len));
}

const char *
policy_set_rule(const struct policy_set *s, enum policy_kind kind, size_t i,
    size_t *len)
{
	const struct span *sp;

	if (s == NULL || i >= s->n[kind])
		return (NULL);
	sp = s->span + (kind == POLICY_SUBSCRIBE ? s->n[0] : 0) + i;
	*len = sp->len;
	return ((const char *)set_text(s) + sp->off);
}

void
policy_set_free(struct policy_set *s)
{
	free(s);
}

/* ------------------------------------------------------------------ */
/* Rule lists and placeholders                                         */

/* How each value is named in a refusal. */
static const char *const ph_labels[] = {
	[TEXT_PH_IDENTITY] = "identity",
	[TEXT_PH_CN] = "CN",
	[TEXT_PH_SERIAL] = "serial number",
	[TEXT_PH_FINGERPRINT] = "fingerprint",
};

#define PH_HINT "placeholders are written {identity}, {cn}, {serial} " \
	"or {fingerprint}"

static const char *const kind_names[] = {
	[POLICY_PUBLISH] = "publish",
	[POLICY_SUBSCRIBE] = "subscribe",
};

static void say(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

static void
say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Quote len bytes of s for a message. */
static const char *
quote(const char *s, size_t len, char *buf, size_t buflen)
{
	return (text_quote(s, len, TEXT_QUOTE_MAX, TEXT_QUOTE_ESCAPES, buf,
	    buflen));
}

/*
 * The next rule of a list at *p, spaces around it cut: 1 with the rule
 * in *r and *rlen and *p moved past its comma, 0 at the end of the list.
 * An empty rule (",," or a comma at either end) has *rlen 0.
 */
static int
next_rule(const char **p, int *done, const char **r, size_t *rlen)
{
	const char *s = *p, *e, *comma;

	if (*done)
		return (0);
	comma = strchr(s, ',');
	e = comma != NULL ? comma : s + strlen(s);
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	*r = s;
	while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*rlen = (size_t)(e - s);
	if (comma != NULL)
		*p = comma + 1;
	else
		*done = 1;
	return (1);
}

/* An empty list (nothing but spaces) allows nothing. */
static int
list_empty(const char *list)
{
	return (list[strspn(list, " \t")] == '\0');
}

/*
 * Braces of rule r (n bytes) well formed and every placeholder known;
 * 0 or -1 with the problem in err.
 */
static int
ph_check(const char *r, size_t n, char *err, size_t errlen)
{
	char e[TEXT_QUOTE_BUF];
	const char *close, *open;
	size_t i, k;

	for (i = 0; i < n; i++) {
		if (r[i] == '}') {
			say(err, errlen, "\"}\" at position %zu has no \"{\" "
			    "before it; " PH_HINT, i + 1);
			return (-1);
		}
		if (r[i] != '{')
			continue;
		close = memchr(r + i, '}', n - i);
		open = memchr(r + i + 1, '{', n - i - 1);
		if (close == NULL || (open != NULL && open < close)) {
			say(err, errlen, "\"{\" at position %zu is not closed "
			    "by \"}\"; " PH_HINT, i + 1);
			return (-1);
		}
		if (text_placeholder(r + i, n - i, &k) == -1) {
			say(err, errlen, "unknown placeholder %s; use "
			    "{identity}, {cn}, {serial} or {fingerprint}",
			    quote(r + i, (size_t)(close - (r + i)) + 1, e,
			    sizeof(e)));
			return (-1);
		}
		i += k - 1;
	}
	return (0);
}

/* One value fit for a rule: 0, or -1 with the reason in err. */
static int
value_check(int ph, const char *val, int first, const char *r, size_t n,
    char *err, size_t errlen)
{
	char e1[TEXT_QUOTE_BUF], e2[TEXT_QUOTE_BUF];
	const char *why = NULL;
	size_t vlen = val != NULL ? strlen(val) : 0;

	if (vlen == 0) {
		say(err, errlen, "the topic rule \"%s\" uses {%s}, but the device "
		    "has no %s", quote(r, n, e1, sizeof(e1)),
		    text_placeholder_name(ph), ph_labels[ph]);
		return (-1);
	}
	if (!mqtt_utf8_valid((const uint8_t *)val, vlen))
		why = "is not valid UTF-8 or holds U+0000";
	else if (strpbrk(val, "/+#") != NULL)
		why = "contains '/', '+' or '#', which would reach other "
		    "topic levels";
	else if (first && val[0] == '$')
		why = "begins with '$', which would put the rule among the "
		    "broker's '$' topics";
	if (why == NULL)
		return (0);
	say(err, errlen, "the %s \"%s\" %s, so it cannot fill {%s} in the "
	    "topic rule \"%s\"", ph_labels[ph], quote(val, vlen, e1,
	    sizeof(e1)), why, text_placeholder_name(ph), quote(r, n, e2,
	    sizeof(e2)));
	return (-1);
}

/*
 * Expand rule r (n bytes, placeholders checked) into out (NULL: only
 * measure) with v's values, or SAMPLE_VALUE for each when v is NULL. The
 * length is returned in *outlen. 0, or -1 with the reason in err.
 */
static int
rule_expand(const char *r, size_t n, const struct policy_values *v,
    uint8_t *out, size_t *outlen, char *err, size_t errlen)
{
	const char *val;
	size_t i = 0, o = 0, k, vlen;
	int ph;

	while (i < n) {
		if (r[i] != '{' ||
		    (ph = text_placeholder(r + i, n - i, &k)) == -1) {
			if (out != NULL)
				out[o] = (uint8_t)r[i];
			o++;
			i++;
			continue;
		}
		if (v == NULL)
			val = SAMPLE_VALUE;
		else {
			val = ph == TEXT_PH_IDENTITY ? v->identity : ph == TEXT_PH_CN ?
			    v->cn : ph == TEXT_PH_SERIAL ? v->serial :
			    v->fingerprint;
			if (value_check(ph, val, o == 0, r, n, err,
			    errlen) == -1)
				return (-1);
		}
		vlen = strlen(val);
		if (out != NULL)
			memcpy(out + o, val, vlen);
		o += vlen;
		i += k;
		if (o > POLICY_TOPIC_MAX)
			break;
	}
	*outlen = o;
	return (0);
}

/* Check one rule of a list; 0 or -1 with the message in err. */
static int
rule_check(enum policy_kind kind, const char *r, size_t n, char *err,
    size_t errlen)
{
	char e[TEXT_QUOTE_BUF], msg[256];
	uint8_t buf[RULE_MAX];
	const char *why;
	size_t len;

	if (ph_check(r, n, msg, sizeof(msg)) == -1) {
		say(err, errlen, "%s rule \"%s\": %s", kind_names[kind],
		    quote(r, n, e, sizeof(e)), msg);
		return (-1);
	}
	if (rule_expand(r, n, NULL, NULL, &len, msg, sizeof(msg)) == -1 ||
	    len > sizeof(buf)) {
		say(err, errlen, "%s rule \"%s\" is too long", kind_names[kind],
		    quote(r, n, e, sizeof(e)));
		return (-1);
	}
	rule_expand(r, n, NULL, buf, &len, msg, sizeof(msg));
	if ((why = topic_problem(buf, len, 1)) != NULL) {
		say(err, errlen, "%s rule \"%s\" %s", kind_names[kind],
		    quote(r, n, e, sizeof(e)), why);
		return (-1);
	}
	if (kind == POLICY_SUBSCRIBE && len >= SHARE_LEN &&
	    memcmp(buf, SHARE_PREFIX, SHARE_LEN) == 0) {
		say(err, errlen, "subscribe rule \"%s\" begins with $share/; a "
		    "shared subscription is judged on the filter after "
		    "$share/GROUP/, so write that filter alone",
		    quote(r, n, e, sizeof(e)));
		return (-1);
	}
	return (0);
}

int
policy_list_check(enum policy_kind kind, const char *list, char *err,
    size_t errlen)
{
	const char *p = list, *r;
	size_t n;
	int done = 0, i = 0;

	if (list_empty(list))
		return (0);
	while (next_rule(&p, &done, &r, &n)) {
		i++;
		if (n == 0) {
			say(err, errlen, "%s: rule %d is empty (a comma at "
			    "the start or end, or two in a row); remove the "
			    "extra comma, or write \"%s =\" with nothing after "
			    "it to allow no topic at all", kind_names[kind], i,
			    kind_names[kind]);
			return (-1);
		}
		if (rule_check(kind, r, n, err, errlen) == -1)
			return (-1);
	}
	return (0);
}

/* ------------------------------------------------------------------ */
/* A device's set                                                      */

/* Count one list's rules and their expanded bytes; 0 or -1 (err). */
static int
list_measure(const char *list, const struct policy_values *v,
    uint32_t *count, size_t *bytes, char *err, size_t errlen)
{
	const char *p = list, *r;
	size_t n, len;
	int done = list_empty(list);

	*count = 0;
	while (next_rule(&p, &done, &r, &n)) {
		if (rule_expand(r, n, v, NULL, &len, err, errlen) == -1)
			return (-1);
		(*count)++;
		*bytes += len;
	}
	return (0);
}

/* Fill one list's spans and text, checking each expanded filter again. */
static int
list_fill(struct policy_set *s, enum policy_kind kind, const char *list,
    const struct policy_values *v, size_t *o, char *err, size_t errlen)
{
	uint8_t *text = (uint8_t *)set_text(s);
	struct span *sp = s->span + (kind == POLICY_SUBSCRIBE ? s->n[0] : 0);
	char e[TEXT_QUOTE_BUF];
	const char *p = list, *r, *why;
	size_t n, len, i;
	int done = list_empty(list);

	while (next_rule(&p, &done, &r, &n)) {
		if (rule_expand(r, n, v, text + *o, &len, err, errlen) == -1)
			return (-1);
		if ((why = topic_problem(text + *o, len, 1)) != NULL) {
			say(err, errlen, "the %s rule \"%s\", filled in for this "
			    "device, %s", kind_names[kind],
			    quote(r, n, e, sizeof(e)), why);
			return (-1);
		}
		sp->off = (uint32_t)*o;
		sp->len = (uint32_t)len;
		sp->levels = 1;
		for (i = 0; i < len; i++)
			sp->levels += text[*o + i] == '/';
		sp->hash = text[*o + len - 1] == '#';
		sp++;
		*o += len;
	}
	return (0);
}

struct policy_set *
policy_expand(const struct policy_rules *rules,
    const struct policy_values *v, char *err, size_t errlen)
{
	static const struct policy_values none;
	struct policy_set *s;
	uint32_t n[2];
	size_t bytes = 0, o = 0;

	if (v == NULL)
		v = &none;
	if (list_measure(rules->publish, v, &n[0], &bytes, err,
	    errlen) == -1 ||
	    list_measure(rules->subscribe, v, &n[1], &bytes, err,
	    errlen) == -1)
		return (NULL);
	if (bytes > UINT32_MAX / 2) {
		say(err, errlen, "the topic rules are too long");
		return (NULL);
	}
	s = malloc(sizeof(*s) + ((size_t)n[0] + n[1]) * sizeof(s->span[0]) +
	    bytes);
	if (s == NULL) {
		say(err, errlen, "out of memory");
		return (NULL);
	}
	s->n[0] = n[0];
	s->n[1] = n[1];
	if (list_fill(s, POLICY_PUBLISH, rules->publish, v, &o, err,
	    errlen) == -1 ||
	    list_fill(s, POLICY_SUBSCRIBE, rules->subscribe, v, &o, err,
	    errlen) == -1) {
		free(s);
		return (NULL);
	}
	return (s);
}
