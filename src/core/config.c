/* SPDX-License-Identifier: MIT */
/*
 * moat.ini -> struct config. One table row per option (options.c: section,
 * key, type, where it is stored, bounds, default, help) drives the parser,
 * the validator, the defaults and the reference printed by --help, so they
 * cannot drift apart. Defaults are written as text and go through the same
 * parsing code as the file.
 *
 * inih does the INI syntax; its handler is not told line numbers, so the
 * file is read into memory and fed to inih by inifile.c, which counts
 * lines, refuses lines inih would cut, and hands us the raw "[section]"
 * lines (inih never reports an empty section). Every mistake is an error,
 * never a warning: a typo in a security setting must not quietly leave the
 * default in place. Only the first error is reported, as
 * "FILE:LINE: what is wrong; how to fix it".
 */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "moat/addr.h"
#include "moat/config.h"
#include "moat/inifile.h"
#include "moat/policy.h"
#include "moat/text.h"

#include "config_opts.h"

/* A config file bigger than this is surely the wrong file. */
#define FILE_MAX (1024 * 1024)
#define MSG_MAX 1024
/* Values are echoed in messages at most this long. */
#define ECHO_MAX 80

const char config_default_ciphers[] = DEFAULT_CIPHERS;
const char config_default_groups[] = DEFAULT_GROUPS;

struct load {
	struct config *cfg;
	struct inifile ini;
	char err[MSG_MAX];       /* ini's first error */
};

/* Record an error at the current line, unless one came first. */
#define ini_fail(ld, ...) inifile_fail(&(ld)->ini, __VA_ARGS__)

/* Field of cfg at a row's offset. */
#define AT(cfg, off, type) ((type)(void *)((char *)(cfg) + (off)))

/*
 * Copy s for an error message: non-printable bytes as \xNN, long values
 * cut, so a hostile or binary file cannot garble the terminal.
 */
static const char *
echo(const char *s, char *buf, size_t len)
{
	return (text_quote(s, strlen(s), ECHO_MAX, 0, buf, len));
}

static const struct opt *
find_opt(const char *section, const char *key)
{
	size_t i;

	for (i = 0; i < config_nopts; i++)
		if (strcmp(config_opts[i].section, section) == 0 &&
		    strcmp(config_opts[i].key, key) == 0)
			return (&config_opts[i]);
	return (NULL);
}

static int
section_known(const char *section)
{
	size_t i;

	for (i = 0; i < config_nopts; i++)
		if (strcmp(config_opts[i].section, section) == 0)
			return (1);
	return (0);
}

/* Append to buf, never past len; for building lists in messages. */
static void
append(char *buf, size_t len, const char *s)
{
	size_t o = strlen(buf);

	if (o < len)
		snprintf(buf + o, len - o, "%s", s);
}

/* "[listen], [tls], ..." in table order. */
static void
list_sections(char *buf, size_t len)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < config_nopts; i++) {
		if (i > 0 && strcmp(config_opts[i].section, config_opts[i - 1].section) == 0)
			continue;
		if (i > 0)
			append(buf, len, ", ");
		append(buf, len, "[");
		append(buf, len, config_opts[i].section);
		append(buf, len, "]");
	}
}

/* "cert, key, ca" for one section. */
static void
list_keys(const char *section, char *buf, size_t len)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < config_nopts; i++) {
		if (strcmp(config_opts[i].section, section) != 0)
			continue;
		if (buf[0] != '\0')
			append(buf, len, ", ");
		append(buf, len, config_opts[i].key);
	}
}

/* "[tls]" or "[listen] or [backend]": the sections that have key. */
static int
sections_of(const char *key, char *buf, size_t len)
{
	size_t i;
	int n = 0;

	buf[0] = '\0';
	for (i = 0; i < config_nopts; i++) {
		if (strcmp(config_opts[i].key, key) != 0)
			continue;
		if (n++ > 0)
			append(buf, len, " or ");
		append(buf, len, "[");
		append(buf, len, config_opts[i].section);
		append(buf, len, "]");
	}
	return (n);
}

/* Durations in messages, in the largest unit that is exact. */
static const char *
fmt_duration(uint64_t ms, char *buf, size_t len)
{
	if (ms == 0)
		snprintf(buf, len, "0");
	else if (ms % HOUR == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / HOUR));
	else if (ms % MINUTE == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / MINUTE));
	else if (ms % SEC == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / SEC));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	return (buf);
}

int
config_parse_duration(const char *s, uint64_t *ms, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		uint64_t ms;
	} units[] = {
		{ "ms", 1 }, { "s", SEC }, { "m", MINUTE }, { "h", HOUR },
	};
	const char *p;
	uint64_t v = 0;
	size_t i;

	if (s == NULL || *s == '\0') {
		snprintf(err, errlen, "the duration is empty; write a number "
		    "and a unit, for example 10s");
		return (-1);
	}
	for (p = s; *p != '\0'; p++) {
		if (isspace((unsigned char)*p)) {
			snprintf(err, errlen, "a duration has no spaces; write "
			    "the number and unit together, for example 10s");
			return (-1);
		}
	}
	if (*s == '-') {
		snprintf(err, errlen, "a duration cannot be negative");
		return (-1);
	}
	if (!isdigit((unsigned char)*s)) {
		snprintf(err, errlen, "a duration starts with a number, for "
		    "example 10s or 2m");
		return (-1);
	}
	for (p = s; isdigit((unsigned char)*p); p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			goto toobig;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.' || *p == ',') {
		snprintf(err, errlen, "a duration is a whole number; use a "
		    "smaller unit instead of a fraction, for example 1500ms "
		    "rather than 1.5s");
		return (-1);
	}
	if (*p == '\0') {
		if (v == 0) {
			*ms = 0;
			return (0);
		}
		snprintf(err, errlen, "a duration needs a unit, for example "
		    "10s or 2m");
		return (-1);
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].name) != 0)
			continue;
		if (v > UINT64_MAX / units[i].ms)
			goto toobig;
		*ms = v * units[i].ms;
		return (0);
	}
	snprintf(err, errlen, "unknown unit \"%.16s\": use ms, s, m or h, "
	    "for example 10s", p);
	return (-1);

toobig:
	snprintf(err, errlen, "the duration is too large");
	return (-1);
}

/* A decimal count: digits only, no sign, no overflow. */
static int
parse_count(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return (-1);
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s) ||
		    v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return (-1);
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return (0);
}

int
config_check_listen(const char *value, char *err, size_t errlen)
{
	struct addr a;

	return (addr_parse_listen(value, &a, err, errlen));
}

int
config_parse_password(const char *value, enum identity_password *kind,
    const char **file)
{
	static const char file_prefix[] = "file:";
	const size_t nprefix = sizeof(file_prefix) - 1;

	*file = NULL;
	if (strcmp(value, "none") == 0)
		*kind = ID_PW_NONE;
	else if (strcmp(value, "hmac") == 0)
		*kind = ID_PW_HMAC;
	else if (strncmp(value, file_prefix, nprefix) == 0 &&
	    value[nprefix] != '\0') {
		*kind = ID_PW_FILE;
		*file = value + nprefix;
	} else
		return (-1);
	return (0);
}

int
config_check_password(const char *value, char *err, size_t errlen)
{
	enum identity_password kind;
	const char *file;

	if (config_parse_password(value, &kind, &file) == 0)
		return (0);
	snprintf(err, errlen, "use none, hmac, or file: followed by the "
	    "path of a file that holds the password");
	return (-1);
}

/* Longest account name: what useradd and most NSS sources allow. */
#define ACCOUNT_MAX 32

/*
 * [process] user and group: the spelling of an account name only (letters,
 * digits, '.', '_', '-' not first, an optional final '$'). Whether the
 * account exists is asked of the system later, outside this file.
 */
static int
check_account(const char *key, const char *value, char *err, size_t errlen)
{
	char e[ECHO_MAX * 4 + 8];
	size_t i, n = strlen(value);
	int digits = 1;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];

		if (!isdigit(c))
			digits = 0;
		if (isalnum(c) || c == '.' || c == '_' ||
		    (c == '-' && i > 0) || (c == '$' && i == n - 1 && i > 0))
			continue;
		snprintf(err, errlen, "%s = %s: not an account name; a name "
		    "has letters, digits, '.', '_' and '-' (not first), such "
		    "as moat", key, echo(value, e, sizeof(e)));
		return (-1);
	}
	if (n > ACCOUNT_MAX) {
		snprintf(err, errlen, "%s = %s: an account name has at most "
		    "%d characters", key, echo(value, e, sizeof(e)),
		    ACCOUNT_MAX);
		return (-1);
	}
	if (digits) {
		snprintf(err, errlen, "%s = %s: write the account's name, not "
		    "its number", key, echo(value, e, sizeof(e)));
		return (-1);
	}
	return (0);
}

int
config_check_user(const char *value, char *err, size_t errlen)
{
	return (check_account("user", value, err, errlen));
}

int
config_check_group(const char *value, char *err, size_t errlen)
{
	return (check_account("group", value, err, errlen));
}

/*
 * Syntax and the loopback rule on literals only: a host name is resolved
 * once, when the snapshot is built (snapshot.c), never while loading.
 */
/* [admin] address: off, or a listen address with a real port. */
int
config_check_admin(const char *value, char *err, size_t errlen)
{
	struct addr a;
	char e[ECHO_MAX * 4 + 8];

	if (strcmp(value, "off") == 0)
		return (0);
	if (addr_parse_listen(value, &a, err, errlen) != 0)
		return (-1);
	if (a.port == 0) {
		snprintf(err, errlen, "\"%s\" needs a fixed port, such as "
		    "127.0.0.1:9883: probes and scrapers must know where to "
		    "connect", echo(value, e, sizeof(e)));
		return (-1);
	}
	return (0);
}

int
config_check_publish(const char *value, char *err, size_t errlen)
{
	return (policy_list_check(POLICY_PUBLISH, value, err, errlen));
}

int
config_check_subscribe(const char *value, char *err, size_t errlen)
{
	return (policy_list_check(POLICY_SUBSCRIBE, value, err, errlen));
}

int
config_check_backend(const char *value, char *err, size_t errlen)
{
	struct addr a;

	return (addr_parse_backend(value, &a, err, errlen));
}

int
config_check_source(const char *value, char *err, size_t errlen)
{
	struct addr_source src;

	return (addr_parse_source(value, &src, err, errlen));
}

static int
ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), m = strlen(tail);

	return (n >= m && strcmp(s + n - m, tail) == 0);
}

/*
 * Name the flaw of one suite: NULL if it is on the allow-list, otherwise
 * why it is refused. The deny rules come first so that a suite that is
 * broken says how, rather than only "not allowed".
 */
static const char *
cipher_refusal(const char *tok)
{
	static const char anon[] = "anonymous suites do not authenticate "
	    "the server, so anyone on the path can impersonate it";
	static const char cbc[] = "CBC mode with a separate MAC is not "
	    "authenticated encryption (AEAD) and is open to padding-oracle "
	    "attacks such as Lucky13";
	static const struct {
		const char *bad;
		const char *why;
	} weak[] = {
		{ "NULL", "NULL suites do not encrypt at all" },
		{ "ANON", anon },
		{ "ADH", anon },
		{ "AECDH", anon },
		{ "RC4", "RC4 is broken (RFC 7465)" },
		{ "DES", "DES and 3DES are broken (64-bit blocks, Sweet32)" },
		{ "EXP", "export suites use deliberately weakened keys" },
		{ "MD5", "MD5 is broken" },
		{ "PSK", "pre-shared-key suites skip certificates, and moat "
		    "identifies devices by their certificate" },
	};
	char up[128];
	size_t i, n = strlen(tok);

	for (i = 0; i <= n; i++)
		up[i] = (char)toupper((unsigned char)tok[i]);
	for (i = 0; i < sizeof(weak) / sizeof(weak[0]); i++)
		if (strstr(up, weak[i].bad) != NULL)
			return (weak[i].why);
	if (strncmp(tok, "TLS13-", 6) != 0 &&
	    strncmp(tok, "ECDHE-", 6) != 0 &&
	    strncmp(tok, "DHE-", 4) != 0)
		return ("only TLS 1.3 suites (TLS13-...) and forward-secret "
		    "suites (ECDHE-..., DHE-...) are allowed, named as wolfSSL "
		    "names them");
	if (config_cipher_allowed(tok))
		return (NULL);
	if (strncmp(tok, "TLS13-SHA", 9) == 0)
		return ("an integrity-only suite: it authenticates records "
		    "but does not encrypt them (RFC 9150)");
	if (strstr(tok, "CCM-8") != NULL || strstr(tok, "CCM8") != NULL)
		return ("AES-CCM-8 has a truncated 8-byte authentication tag");
	if (strstr(tok, "CCM") != NULL)
		return ("moat accepts AES-CCM only in TLS 1.3 suites");
	if (strstr(tok, "-OLD") != NULL)
		return ("a pre-standard draft of ChaCha20-Poly1305");
	if (ends_with(tok, "-SHA"))
		return ("SHA-1 is deprecated for TLS, and its CBC mode with a "
		    "separate MAC is not authenticated encryption (AEAD)");
	if (strstr(tok, "CBC") != NULL || (strstr(tok, "GCM") == NULL &&
	    strstr(tok, "POLY1305") == NULL && (ends_with(tok, "-SHA256") ||
	    ends_with(tok, "-SHA384"))))
		return (cbc);
	return ("not a suite moat knows; check the spelling against the "
	    "list below");
}

int
config_cipher_allowed(const char *name)
{
	const char *p = ALLOWED_CIPHERS, *end;
	size_t n = strlen(name);

	for (;;) {
		end = strchr(p, ':');
		if ((size_t)((end != NULL ? end : p + strlen(p)) - p) == n &&
		    strncmp(p, name, n) == 0)
			return (1);
		if (end == NULL)
			return (0);
		p = end + 1;
	}
}

/*
 * Accept only allow-listed suites. wolfSSL would quietly skip names it
 * does not know and accept "ALL"-style keywords, so moat checks each name
 * itself.
 */
int
config_check_ciphers(const char *list, char *err, size_t errlen)
{
	static const char fix[] = "; remove it, or delete the ciphers line "
	    "to use moat's default list. Allowed (AEAD, forward-secret): "
	    ALLOWED_CIPHERS;
	char tok[128], e[ECHO_MAX * 4 + 8];
	const char *p = list, *end, *why;
	size_t n;

	for (;;) {
		end = strchr(p, ':');
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n == 0) {
			snprintf(err, errlen, "ciphers = %s: empty cipher name "
			    "(a colon at the start or end, or two in a row)",
			    echo(list, e, sizeof(e)));
			return (-1);
		}
		if (n >= sizeof(tok)) {
			snprintf(err, errlen, "ciphers: a cipher name is "
			    "longer than %zu characters", sizeof(tok) - 1);
			return (-1);
		}
		memcpy(tok, p, n);
		tok[n] = '\0';
		if ((why = cipher_refusal(tok)) != NULL) {
			snprintf(err, errlen, "ciphers: \"%s\" is refused: "
			    "%s%s", echo(tok, e, sizeof(e)), why, fix);
			return (-1);
		}
		if (end == NULL)
			return (0);
		p = end + 1;
	}
}

/* --- [tls] groups ------------------------------------------------------ */

static const struct {
	const char *name;
	int code;
} group_names[] = {
#define X(sym, name, code) { name, code },
	TLS_GROUPS(X)
#undef X
	{ "secp256r1", TLS_GROUP_P256 },
	{ "prime256v1", TLS_GROUP_P256 },
	{ "secp384r1", TLS_GROUP_P384 },
	{ "secp521r1", TLS_GROUP_P521 },
};

#define NGROUP_NAMES (sizeof(group_names) / sizeof(group_names[0]))

/* The code of group name tok, or -1. */
static int
group_code(const char *tok)
{
	size_t i;

	for (i = 0; i < NGROUP_NAMES; i++)
		if (strcasecmp(tok, group_names[i].name) == 0)
			return (group_names[i].code);
	return (-1);
}

const char *
config_group_name(int code)
{
	size_t i;

	for (i = 0; i < NGROUP_NAMES; i++)
		if (group_names[i].code == code)
			return (group_names[i].name);
	return (NULL);
}

/* One token of a groups list into codes; -1 with err. */
static int
group_add(const char *list, const char *tok, int *codes, unsigned *n,
    char *err, size_t errlen)
{
	static const char fix[] = ". Allowed: " ALLOWED_GROUPS;
	char e[ECHO_MAX * 4 + 8];
	int code;
	unsigned i;

	if (tok[0] == '\0') {
		snprintf(err, errlen, "groups = %s: empty group name (a colon "
		    "at the start or end, or two in a row)",
		    echo(list, e, sizeof(e)));
		return (-1);
	}
	if ((code = group_code(tok)) < 0) {
		snprintf(err, errlen, "groups: \"%s\" is refused: not a key "
		    "exchange group moat allows (elliptic curves of at least "
		    "256 bits, X25519, X448, RFC 7919 ffdhe groups)%s",
		    echo(tok, e, sizeof(e)), fix);
		return (-1);
	}
	for (i = 0; i < *n; i++)
		if (codes[i] == code) {
			snprintf(err, errlen, "groups: \"%s\" is named twice; "
			    "list each group once, most preferred first",
			    echo(tok, e, sizeof(e)));
			return (-1);
		}
	codes[(*n)++] = code;
	return (0);
}

int
config_parse_groups(const char *list, int *codes, unsigned *n, char *err,
    size_t errlen)
{
	char tok[32];
	const char *p = list, *end;
	size_t len;

	*n = 0;
	for (;;) {
		end = strchr(p, ':');
		len = end != NULL ? (size_t)(end - p) : strlen(p);
		if (len >= sizeof(tok))
			len = sizeof(tok) - 1;  /* too long: no name matches */
		memcpy(tok, p, len);
		tok[len] = '\0';
		/* Each name at most once, so a full list cannot grow. */
		if (group_add(list, tok, codes, n, err, errlen) != 0)
			return (-1);
		if (end == NULL)
			return (0);
		p = end + 1;
	}
}

int
config_check_groups(const char *list, char *err, size_t errlen)
{
	int codes[CONFIG_MAX_GROUPS];
	unsigned n;

	return (config_parse_groups(list, codes, &n, err, errlen));
}

/*
 * Parse value for row o and store it in cfg; line is where it came from
 * (0 for a default). On error, a complete message is left in err.
 */
static int
store(struct config *cfg, const struct opt *o, const char *value, int line,
    char *err, size_t errlen)
{
	const struct opt_value *v;
	char e[ECHO_MAX * 4 + 8], d1[32], d2[32], list[128];
	char **slot, *dup;
	unsigned *count;
	uint64_t n;

	if (o->check != NULL && o->check(value, err, errlen) == -1)
		return (-1);

	switch (o->type) {
	case OPT_PATH:
	case OPT_STRING:
		if ((dup = strdup(value)) == NULL)
			goto nomem;
		if (o->flags & OPT_REPEAT) {
			count = AT(cfg, o->count_offset, unsigned *);
			if (*count >= o->max_repeat) {
				free(dup);
				snprintf(err, errlen, "too many %s lines in "
				    "[%s]: at most %u are allowed", o->key,
				    o->section, o->max_repeat);
				return (-1);
			}
			AT(cfg, o->offset, char **)[*count] = dup;
			AT(cfg, o->lines_offset, int *)[*count] = line;
			(*count)++;
		} else {
			slot = AT(cfg, o->offset, char **);
			free(*slot);
			*slot = dup;
		}
		return (0);

	case OPT_ENUM:
		for (v = o->values; v->name != NULL; v++) {
			if (strcmp(v->name, value) == 0) {
				*AT(cfg, o->offset, int *) = v->value;
				return (0);
			}
		}
		list[0] = '\0';
		for (v = o->values; v->name != NULL; v++) {
			if (v != o->values)
				append(list, sizeof(list),
				    v[1].name == NULL ? " and " : ", ");
			append(list, sizeof(list), v->name);
		}
		snprintf(err, errlen, "%s = %s: the allowed values are %s%s%s",
		    o->key, echo(value, e, sizeof(e)), list,
		    o->why != NULL ? "; " : "", o->why != NULL ? o->why : "");
		return (-1);

	case OPT_DURATION:
		if (config_parse_duration(value, &n, list,
		    sizeof(list)) == -1) {
			snprintf(err, errlen, "%s = %s: %s", o->key,
			    echo(value, e, sizeof(e)), list);
			return (-1);
		}
		if ((n < o->min || n > o->max) &&
		    !(n == 0 && (o->flags & OPT_ZERO_OK))) {
			snprintf(err, errlen, "%s = %s: must be %sfrom %s "
			    "to %s", o->key, echo(value, e, sizeof(e)),
			    (o->flags & OPT_ZERO_OK) ? "0 (off) or " : "",
			    fmt_duration(o->min, d1, sizeof(d1)),
			    fmt_duration(o->max, d2, sizeof(d2)));
			return (-1);
		}
		*AT(cfg, o->offset, uint64_t *) = n;
		return (0);

	case OPT_COUNT:
		if ((o->flags & OPT_AUTO) && strcmp(value, "auto") == 0) {
			*AT(cfg, o->offset, uint64_t *) = 0;
			return (0);
		}
		if (parse_count(value, &n) == -1 || n < o->min || n > o->max) {
			snprintf(err, errlen, "%s = %s: must be %sa whole number "
			    "from %llu to %llu", o->key,
			    echo(value, e, sizeof(e)),
			    (o->flags & OPT_AUTO) ? "auto or " : "",
			    (unsigned long long)o->min,
			    (unsigned long long)o->max);
			return (-1);
		}
		*AT(cfg, o->offset, uint64_t *) = n;
		return (0);
	}
	snprintf(err, errlen, "%s: unknown option type", o->key);
	return (-1);

nomem:
	snprintf(err, errlen, "out of memory");
	return (-1);
}

/* inih's handler: one "key = value" (or continuation) line. */
static int
on_pair(void *user, const char *section, const char *name,
    const char *value)
{
	struct load *ld = user;
	struct config *cfg = ld->cfg;
	const struct opt *o;
	char e1[ECHO_MAX * 4 + 8], list[256];
	char msg[MSG_MAX];
	size_t row;

	if (ld->ini.err_line != 0)
		return (0);

	if (ld->ini.continuation) {
		ini_fail(ld, "this line starts with whitespace, so it would "
		    "continue the value of \"%s\" above, and moat does not "
		    "accept multi-line values; remove the indentation",
		    echo(name, e1, sizeof(e1)));
		return (0);
	}
	if (*section == '\0') {
		if (sections_of(name, list, sizeof(list)) > 0)
			ini_fail(ld, "\"%s\" is outside any section; put it under "
			    "%s", echo(name, e1, sizeof(e1)), list);
		else {
			list_sections(list, sizeof(list));
			ini_fail(ld, "\"%s\" is outside any section and is not a "
			    "known key; keys go under one of %s",
			    echo(name, e1, sizeof(e1)), list);
		}
		return (0);
	}
	if (!section_known(section)) {
		/* The reader reports these; inih may have cut the name. */
		list_sections(list, sizeof(list));
		ini_fail(ld, "unknown section [%s]; known sections: %s",
		    echo(section, e1, sizeof(e1)), list);
		return (0);
	}
	if ((o = find_opt(section, name)) == NULL) {
		list_keys(section, list, sizeof(list));
		ini_fail(ld, "unknown key \"%s\" in [%s]; known keys: %s",
		    echo(name, e1, sizeof(e1)), section, list);
		if (sections_of(name, list, sizeof(list)) > 0) {
			/* A key put in the wrong section. */
			size_t o2 = strlen(ld->err);

			snprintf(ld->err + o2, sizeof(ld->err) - o2,
			    " (%s belongs in %s)", e1, list);
		}
		return (0);
	}
	row = (size_t)(o - config_opts);
	if (!(o->flags & OPT_REPEAT) && cfg->lines[row] != 0) {
		ini_fail(ld, "%s is already set on line %d; a key may appear once "
		    "in a section: keep only one", o->key, cfg->lines[row]);
		return (0);
	}
	if (*value == '\0' && !(o->flags & OPT_EMPTY_OK)) {
		if (o->flags & OPT_REQUIRED)
			ini_fail(ld, "%s is empty: set it to %s", o->key, o->what);
		else if (o->def != NULL)
			ini_fail(ld, "%s is empty: set it to %s, or delete the "
			    "line to use the default (%s)", o->key, o->what,
			    o->def);
		else
			ini_fail(ld, "%s is empty: set it to %s, or delete the "
			    "line to leave it unset", o->key, o->what);
		return (0);
	}
	if (store(cfg, o, value, ld->ini.lineno, msg, sizeof(msg)) == -1) {
		ini_fail(ld, "%s", msg);
		return (0);
	}
	if (cfg->lines[row] == 0)
		cfg->lines[row] = ld->ini.lineno;
	return (1);
}

/*
 * A "[section]" line, whose name we check here because inih says nothing
 * about a section without keys.
 */
static void
on_section(void *user, const char *s, size_t n)
{
	struct load *ld = user;
	char name[CONFIG_MAX_LINE], list[256], e[ECHO_MAX * 4 + 8];

	if (n >= sizeof(name))
		n = sizeof(name) - 1;
	memcpy(name, s, n);
	name[n] = '\0';
	if (!section_known(name)) {
		list_sections(list, sizeof(list));
		ini_fail(ld, "unknown section [%s]; known sections: %s",
		    echo(name, e, sizeof(e)), list);
	}
}

/* Defaults for what the file left out; required options must be there. */
static int
finish(struct config *cfg, char *err, size_t errlen)
{
	const struct opt *o;
	char msg[MSG_MAX];
	size_t i;

	for (i = 0; i < config_nopts; i++) {
		o = &config_opts[i];
		if (cfg->lines[i] != 0)
			continue;
		if (o->flags & OPT_REQUIRED) {
			snprintf(err, errlen, "%s: [%s] %s is required: set it "
			    "to %s", cfg->path, o->section, o->key, o->what);
			return (-1);
		}
		if (o->def == NULL)
			continue;
		if (store(cfg, o, o->def, 0, msg, sizeof(msg)) == -1) {
			snprintf(err, errlen, "%s: the default of [%s] %s is "
			    "invalid (a bug in moat): %s", cfg->path,
			    o->section, o->key, msg);
			return (-1);
		}
	}
	return (0);
}

/*
 * [policy] is on when publish or subscribe is set, and then both must be:
 * a list left out would either allow everything or nothing, and neither
 * should happen by omission.
 */
static int
check_policy(struct config *cfg, char *err, size_t errlen)
{
	char where[512];
	int pub = cfg->policy_publish != NULL;
	int sub = cfg->policy_subscribe != NULL;
	const char *set = pub ? "publish" : "subscribe";
	const char *unset = pub ? "subscribe" : "publish";

	cfg->policy_on = pub || sub;
	if (pub != sub) {
		snprintf(err, errlen, "%s: [policy] %s is set but %s is not; "
		    "set %s too (\"%s =\" with nothing after it allows none, "
		    "\"%s = #\" every topic not beginning with '$')",
		    config_where(cfg, "policy", set, where, sizeof(where)),
		    set, unset, unset, unset, unset);
		return (-1);
	}
	if (!cfg->policy_on && cfg->lines[find_opt("policy",
	    "on_denied_publish") - config_opts] != 0) {
		snprintf(err, errlen, "%s: [policy] on_denied_publish is set "
		    "but there are no publish and subscribe rules, so topic "
		    "policy is off; add them, or delete on_denied_publish",
		    config_where(cfg, "policy", "on_denied_publish", where,
		    sizeof(where)));
		return (-1);
	}
	return (0);
}

/*
 * [backend] source must suit the backend: TCP, and of the family of an IP
 * literal. Each value was checked on its own line already, so a parse
 * failure here cannot happen and is left to those checks.
 */
static int
check_source(const struct config *cfg, char *err, size_t errlen)
{
	struct addr_source src;
	struct addr be;
	char where[512], msg[MSG_MAX];

	if (cfg->backend_source == NULL ||
	    addr_parse_source(cfg->backend_source, &src, msg,
	    sizeof(msg)) == -1 ||
	    addr_parse_backend(cfg->backend, &be, msg, sizeof(msg)) == -1 ||
	    addr_source_fits(&src, &be, msg, sizeof(msg)) == 0)
		return (0);
	snprintf(err, errlen, "%s: %s", config_where(cfg, "backend",
	    "source", where, sizeof(where)), msg);
	return (-1);
}

/* [process] group alone would change nothing that matters: say so. */
static int
check_process(const struct config *cfg, char *err, size_t errlen)
{
	char where[512];

	if (cfg->group == NULL || cfg->user != NULL)
		return (0);
	snprintf(err, errlen, "%s: [process] group is set but user is not; "
	    "set user too (group is the group moat runs as with that user), "
	    "or delete group", config_where(cfg, "process", "group", where,
	    sizeof(where)));
	return (-1);
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct config *cfg = NULL;
	struct load *ld = NULL;
	char *buf = NULL;
	const char *msg;
	size_t len = 0;
	int rc, line;

	if (path == NULL || *path == '\0') {
		snprintf(err, errlen, "no configuration file given");
		return (NULL);
	}
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL ||
	    (cfg->path = strdup(path)) == NULL ||
	    (cfg->lines = calloc(config_nopts, sizeof(*cfg->lines))) == NULL ||
	    (ld = calloc(1, sizeof(*ld))) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	if ((buf = inifile_read(path, FILE_MAX, &len, err, errlen)) == NULL)
		goto fail;

	ld->cfg = cfg;
	rc = inifile_parse(&ld->ini, buf, len, ld->err, sizeof(ld->err),
	    ", for example by using a shorter path or a symbolic link",
	    on_section, on_pair, ld);
	if (rc < 0) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	line = inifile_error(&ld->ini, rc, "syntax error: expected \"key = "
	    "value\" or \"[section]\"", &msg);
	if (line != 0) {
		snprintf(err, errlen, "%s:%d: %s", path, line, msg);
		goto fail;
	}
	if (finish(cfg, err, errlen) == -1 ||
	    check_process(cfg, err, errlen) == -1 ||
	    check_source(cfg, err, errlen) == -1 ||
	    check_policy(cfg, err, errlen) == -1)
		goto fail;

	free(buf);
	free(ld);
	return (cfg);

fail:
	free(buf);
	free(ld);
	config_free(cfg);
	return (NULL);
}

void
config_free(struct config *cfg)
{
	const struct opt *o;
	unsigned i, n;

	if (cfg == NULL)
		return;
	/* Strings are owned by their table rows, so new rows free themselves. */
	for (o = config_opts; o < config_opts + config_nopts; o++) {
		if (o->type != OPT_PATH && o->type != OPT_STRING)
			continue;
		if (o->flags & OPT_REPEAT) {
			n = *AT(cfg, o->count_offset, unsigned *);
			for (i = 0; i < n; i++)
				free(AT(cfg, o->offset, char **)[i]);
		} else
			free(*AT(cfg, o->offset, char **));
	}
	free(cfg->lines);
	free(cfg->path);
	free(cfg);
}

const char *
config_where(const struct config *cfg, const char *section, const char *key,
    char *buf, size_t len)
{
	const struct opt *o;
	int line = 0;

	if (len == 0)
		return (buf);
	if (cfg == NULL) {
		buf[0] = '\0';
		return (buf);
	}
	if (section != NULL && key != NULL &&
	    (o = find_opt(section, key)) != NULL && cfg->lines != NULL)
		line = cfg->lines[o - config_opts];
	if (line > 0)
		snprintf(buf, len, "%s:%d", cfg->path != NULL ? cfg->path :
		    "moat.ini", line);
	else
		snprintf(buf, len, "%s", cfg->path != NULL ? cfg->path :
		    "moat.ini");
	return (buf);
}

/*
 * Print text wrapped at 78 columns, each line indented by indent. Lines
 * break at spaces, and after the colons of a cipher list.
 */
static void
wrap(FILE *out, const char *text, int indent)
{
	const char *p = text, *word;
	int col = 0, n, glued;

	while (*p != '\0') {
		glued = *p != ' ' && p != text;
		while (*p == ' ')
			p++;
		word = p;
		while (*p != '\0' && *p != ' ' && *p != ':')
			p++;
		if (*p == ':')
			p++;
		n = (int)(p - word);
		if (n == 0)
			break;
		if (col > 0 && col + !glued + n > 78) {
			fputc('\n', out);
			col = 0;
		}
		if (col == 0)
			col = fprintf(out, "%*s%.*s", indent, "", n, word);
		else
			col += fprintf(out, "%s%.*s", glued ? "" : " ", n,
			    word);
	}
	if (col > 0)
		fputc('\n', out);
}

void
config_print_reference(FILE *out)
{
	const struct opt *o;
	size_t i;

	for (i = 0; i < config_nopts; i++) {
		o = &config_opts[i];
		if (i == 0 || strcmp(o->section, config_opts[i - 1].section) != 0)
			fprintf(out, "%s[%s]\n", i == 0 ? "" : "\n",
			    o->section);
		fprintf(out, "  %s = %s", o->key, o->arg);
		if (o->flags & OPT_REQUIRED)
			fprintf(out, "  (required)");
		else if (o->def != NULL)
			fprintf(out, "  (default: %s)", o->def);
		else
			fprintf(out, "  (optional)");
		if (o->flags & OPT_REPEAT)
			fprintf(out, "  (repeatable)");
		fputc('\n', out);
		wrap(out, o->help, 6);
	}
}
