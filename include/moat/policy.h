/* SPDX-License-Identifier: MIT */
/*
 * Topic policy: which topics a device may publish to and which filters it
 * may subscribe to, from rule lists such as "devices/{identity}/#,
 * broadcast/#" in [policy] and in the identity map. MQTT topic semantics
 * (3.1.1 and 5, section 4.7): levels split on '/', empty levels count, '+'
 * is one level, '#' the parent level and everything below, and a topic
 * that begins with '$' is not matched by a filter whose first level is a
 * wildcard.
 *
 * A topic may be published when some publish rule matches it. A filter
 * may be subscribed to only when every topic it can match is matched by
 * some subscribe rule (several rules may share the work: "a" and "a/+/#"
 * together cover "a/#"). "$share/GROUP/FILTER" is judged on FILTER.
 *
 * Pure: topics and filters are (pointer, length) pairs, never
 * NUL-terminated; matching allocates nothing. A connection's rules are one
 * allocation, made when it connects (policy_expand()).
 */
#ifndef MOAT_POLICY_H
#define MOAT_POLICY_H

#include <stddef.h>
#include <stdint.h>

/* MQTT strings carry a 16-bit length. */
#define POLICY_TOPIC_MAX 65535

/* What moat says at start-up without [policy] rules. */
#define POLICY_OFF_NOTICE \
	"topic policy off: the broker's ACL is the only guard"

enum policy_kind {
	POLICY_PUBLISH,
	POLICY_SUBSCRIBE,
};

/*
 * 1 when t[0..len) is a valid topic name: 1 to POLICY_TOPIC_MAX bytes of
 * UTF-8 without U+0000 (mqtt_utf8_valid()) and without '+' or '#'; else 0.
 */
int policy_topic_valid(const uint8_t *t, size_t len);

/*
 * 1 when f[0..len) is a valid topic filter: as a topic name, except that
 * '+' may fill a whole level and '#' the whole last level; else 0.
 */
int policy_filter_valid(const uint8_t *f, size_t len);

/*
 * 1 when filter matches topic, else 0. Both should be valid (checked by
 * the functions above); for anything else the answer is 0 or 1, but
 * nothing outside the two spans is ever read.
 */
int policy_match(const uint8_t *filter, size_t flen, const uint8_t *topic,
    size_t tlen);

/*
 * Check a rule list as written after "publish =" or "subscribe =" in
 * moat.ini or the identity map: rules separated by commas (so a rule
 * cannot hold one), spaces around them ignored; "" (nothing allowed) is
 * a valid list. Each rule must be a
 * valid filter once its placeholders ({identity}, {cn}, {serial},
 * {fingerprint}) are filled; a placeholder may be part of a level
 * ("dev-{identity}/#"), since its value never holds '/', '+' or '#'. A
 * subscribe rule may not begin with "$share/": rules judge the filter
 * inside a shared subscription. Returns 0, or -1 with what is wrong and
 * how to fix it in err, which the caller prefixes with "FILE:LINE: ".
 */
int policy_list_check(enum policy_kind kind, const char *list, char *err,
    size_t errlen);

/*
 * The rule lists for one identity, both non-NULL; the strings are
 * borrowed. idmap_policy_rules() picks them from [policy] and the map.
 */
struct policy_rules {
	const char *publish;      /* checked by policy_list_check() */
	const char *subscribe;
};

/* What the placeholders stand for, for one device. NULL: not known. */
struct policy_values {
	const char *identity;
	const char *cn;
	const char *serial;
	const char *fingerprint;
};

/* A device's rules with the placeholders filled. */
struct policy_set;

/*
 * Fill the placeholders of rules for one device. A placeholder a rule
 * uses must have a value that is non-empty valid UTF-8 without '/', '+',
 * '#' (and without a leading '$' where it begins the rule), or the device
 * is refused: returns NULL with the reason in err ("the identity
 * \"a/b\" contains '/' ..."), as also when out of memory. The result is
 * one allocation that the caller owns and frees with policy_set_free();
 * it does not refer to rules or v.
 */
struct policy_set *policy_expand(const struct policy_rules *rules,
    const struct policy_values *v, char *err, size_t errlen);

/* Free a set; NULL does nothing. */
void policy_set_free(struct policy_set *s);

/*
 * 1 when the device may publish to topic (len bytes): a valid topic name
 * that some publish rule matches; else 0.
 */
int policy_may_publish(const struct policy_set *s, const uint8_t *topic,
    size_t len);

/*
 * 1 when the device may subscribe to filter (len bytes): a valid filter
 * (or a well-formed "$share/GROUP/FILTER", judged on FILTER) every topic
 * of which some subscribe rule matches; else 0.
 */
int policy_may_subscribe(const struct policy_set *s, const uint8_t *filter,
    size_t len);

/* The two above with ctx a const struct policy_set *, as callbacks. */
int policy_publish_cb(void *ctx, const uint8_t *topic, size_t len);
int policy_subscribe_cb(void *ctx, const uint8_t *filter, size_t len);

/*
 * The i-th rule of a kind in s, with its length in *len (no NUL), or NULL
 * past the last; for moat explain and logs. Belongs to s.
 */
const char *policy_set_rule(const struct policy_set *s,
    enum policy_kind kind, size_t i, size_t *len);

#endif
