/* SPDX-License-Identifier: MIT */
/*
 * Identity: the fields of a verified device certificate -> the broker
 * credentials moat writes into the device's CONNECT. One value is taken
 * from the certificate ([identity] source, cut down by an optional POSIX
 * extended regex), looked up in the map file (read here, parsed and
 * searched by idmap.c), and turned into a username
 * (map entry or template), a password (map entry, none, one password from
 * a file, or HMAC-SHA256(secret, username) in base64url) and a client id
 * (map entry or the client-id policy).
 *
 * Everything that reaches the broker as a username or client id passes
 * the name rules of text.c (TEXT_NAME): Mosquitto's pattern ACLs ("%u",
 * "%c") silently deny names with '+', '#' or '/' (the fix for
 * CVE-2017-7650), a name beginning with '$' would reach $SYS topics through
 * a pattern such as %u/#, and format or bidi characters make one name look
 * like another. Such a name is refused here, with a reason that names the
 * character and the certificate field it came from, instead of failing
 * mysteriously later. idmap.c applies the same rules to the names in the
 * map file.
 *
 * Pure: files are read only while the rules are built; identity_map() and
 * identity_for_name() touch no global state and may run on any thread on
 * shared rules. Secrets (the HMAC key, passwords) are wiped when freed and
 * never appear in a "why".
 */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/pwdbased.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/sha512.h>

#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/config.h"
#include "moat/identity.h"
#include "moat/idmap.h"
#include "moat/inifile.h"
#include "moat/policy.h"
#include "moat/text.h"

/* Secret and password files are small. */
#define SMALL_FILE_MAX (64 * 1024)
#define SECRET_MIN 16
/* MQTT 3.1 (protocol level 3) caps client ids at 23 bytes. */
#define MQTT31_CID_MAX 23
#define MSG_MAX 512

/* Mosquitto 2.0's password_file hash: "$7$", PBKDF2-SHA512. */
#define MOSQ_SALT_LEN 12
#define MOSQ_ITERATIONS 101
#define MOSQ_HASH_LEN 64

struct identity_rules {
	enum identity_source source;
	regex_t re;
	int has_re;
	char *username_tpl;      /* checked by tpl_check() */
	enum identity_password pw;
	uint8_t *secret;         /* password = hmac */
	size_t secret_len;
	char *password;          /* password = file:PATH */
	enum identity_client_id cid;
	int unknown_template;
	struct idmap *map;       /* NULL: no map = FILE */
	int policy_on;           /* [policy] has rules: policy is set */
	struct policy_rules policy; /* its lists (owned), checked by
	                          * config.c */
};

/* What a template's placeholders stand for. */
struct tpl_vals {
	const char *identity;
	const char *cn;
	const char *serial;
	const char *fingerprint;
	const char *label;       /* the field the identity came from */
	int from_cert;           /* 0: identity_for_name() */
};

static const char *const source_names[] = {
#define X(name, text) text,
	IDENTITY_SOURCES(X)
#undef X
};

static const char *const cid_names[] = {
#define X(name, text) text,
	IDENTITY_CLIENT_ID(X)
#undef X
};

/* How a source is named in messages. */
static const char *const source_labels[] = {
	[ID_SRC_CN] = "CN",
	[ID_SRC_DN] = "DN",
	[ID_SRC_SAN_DNS] = "DNS SAN",
	[ID_SRC_SAN_URI] = "URI SAN",
	[ID_SRC_SAN_EMAIL] = "email SAN",
	[ID_SRC_SERIAL] = "serial number",
	[ID_SRC_FINGERPRINT] = "fingerprint",
};

#define NSOURCES (sizeof(source_names) / sizeof(source_names[0]))
#define NCIDS (sizeof(cid_names) / sizeof(cid_names[0]))

static void
free_strv(char **v, size_t n)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void
cert_identity_clear(struct cert_identity *id)
{
	if (id == NULL)
		return;
	free(id->cn);
	free(id->dn);
	free(id->serial);
	free(id->fingerprint);
	free(id->issuer_cn);
	free_strv(id->san_dns, id->n_san_dns);
	free_strv(id->san_uri, id->n_san_uri);
	free_strv(id->san_email, id->n_san_email);
	free_strv(id->san_ip, id->n_san_ip);
	memset(id, 0, sizeof(*id));
}

/* A hostile certificate or map cannot garble a log line. */
const char *
identity_echo(const char *s, size_t len, char *buf, size_t buflen)
{
	return (text_quote(s, len, IDENTITY_ECHO_MAX, TEXT_QUOTE_ESCAPES, buf,
	    buflen));
}

int
identity_text_check(const char *s, size_t len, int acl, char *problem,
    size_t plen)
{
	return (text_check(s, len, acl ? TEXT_NAME : TEXT_VALUE, problem,
	    plen));
}

int
identity_name_ok(const char *s, size_t len)
{
	return (text_name_ok(s, len));
}

/*
 * Check a name against rules (TEXT_NAME, or TEXT_INNER for text that will
 * not begin the name); on failure why = "LABEL \"value\" PROBLEM".
 */
static int
name_check(const char *label, const char *s, size_t len, unsigned rules,
    char *why, size_t whylen)
{
	char problem[128], e[IDENTITY_ECHO_BUF];

	if (text_check(s, len, rules, problem, sizeof(problem)) == 0)
		return (0);
	snprintf(why, whylen, "%s \"%s\" %s", label,
	    identity_echo(s, len, e, sizeof(e)), problem);
	return (-1);
}

/* ------------------------------------------------------------------ */
/* Files                                                               */

/* The HMAC key: the file's bytes without trailing newlines. */
static int
load_secret(struct identity_rules *r, const char *path, char *err,
    size_t errlen)
{
	char *buf;
	size_t len;

	if ((buf = inifile_read(path, SMALL_FILE_MAX, &len, err,
	    errlen)) == NULL)
		return (-1);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	if (len < SECRET_MIN) {
		snprintf(err, errlen, "%s: the HMAC secret is %zu bytes long; "
		    "use at least %d random bytes, for example: head -c 32 "
		    "/dev/urandom | base64 > %s", path, len, SECRET_MIN, path);
		goto fail;
	}
	r->secret = (uint8_t *)buf;
	r->secret_len = len;
	return (0);

fail:
	text_wipe_free(buf, len);
	return (-1);
}

/* One password for every device: the first line of the file. */
static int
load_password(struct identity_rules *r, const char *path, char *err,
    size_t errlen)
{
	char *buf;
	size_t len, n;

	if ((buf = inifile_read(path, SMALL_FILE_MAX, &len, err,
	    errlen)) == NULL)
		return (-1);
	n = strcspn(buf, "\n");
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (memchr(buf, '\0', n) != NULL) {
		snprintf(err, errlen, "%s: the password contains a NUL byte; "
		    "is this a text file?", path);
		goto fail;
	}
	if (n == 0) {
		snprintf(err, errlen, "%s: the first line is empty; put the "
		    "password for every device on the first line", path);
		goto fail;
	}
	if (n >= IDENTITY_MAX) {
		snprintf(err, errlen, "%s: the password is %zu bytes long; "
		    "moat allows at most %d", path, n, IDENTITY_MAX - 1);
		goto fail;
	}
	if ((r->password = malloc(n + 1)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	memcpy(r->password, buf, n);
	r->password[n] = '\0';
	text_wipe_free(buf, len);
	return (0);

fail:
	text_wipe_free(buf, len);
	return (-1);
}

/* The map file, parsed by idmap.c. */
static int
load_map(struct identity_rules *r, const char *path, char *err,
    size_t errlen)
{
	char *buf;
	size_t len;

	if ((buf = inifile_read(path, IDMAP_FILE_MAX, &len, err,
	    errlen)) == NULL)
		return (-1);
	r->map = idmap_parse(path, buf, len, err, errlen);
	/* The file holds the map's passwords. */
	text_wipe_free(buf, len);
	return (r->map != NULL ? 0 : -1);
}

/* ------------------------------------------------------------------ */
/* Templates                                                           */

/*
 * A template is checked once, at load: known placeholders, balanced
 * braces, and literal text that is itself a valid name.
 */
static int
tpl_check(const char *tpl, char *msg, size_t msglen)
{
	char lit[IDENTITY_MAX], problem[128], e[IDENTITY_ECHO_BUF];
	const char *p, *close, *open;
	size_t n, nlit = 0;

	if (*tpl == '\0') {
		snprintf(msg, msglen, "the template is empty; the default is "
		    "{identity}");
		return (-1);
	}
	for (p = tpl; *p != '\0';) {
		if (*p == '}') {
			snprintf(msg, msglen, "\"}\" at position %zu has no "
			    "\"{\" before it; placeholders are written "
			    "{identity}, {cn}, {serial} or {fingerprint}",
			    (size_t)(p - tpl) + 1);
			return (-1);
		}
		if (*p != '{') {
			if (nlit + 1 < sizeof(lit))
				lit[nlit++] = *p;
			p++;
			continue;
		}
		close = strchr(p, '}');
		open = strchr(p + 1, '{');
		if (close == NULL || (open != NULL && open < close)) {
			snprintf(msg, msglen, "\"{\" at position %zu is not "
			    "closed by \"}\"; placeholders are written "
			    "{identity}, {cn}, {serial} or {fingerprint}",
			    (size_t)(p - tpl) + 1);
			return (-1);
		}
		if (text_placeholder(p, strlen(p), &n) == -1) {
			snprintf(msg, msglen, "unknown placeholder %s; use "
			    "{identity}, {cn}, {serial} or {fingerprint}",
			    identity_echo(p, (size_t)(close - p) + 1, e,
			    sizeof(e)));
			return (-1);
		}
		p += n;
	}
	if (strlen(tpl) >= IDENTITY_MAX) {
		snprintf(msg, msglen, "the template is %zu bytes long; moat "
		    "allows at most %d", strlen(tpl), IDENTITY_MAX - 1);
		return (-1);
	}
	/* Literal text is checked as a whole name, without the "empty" and
	 * length rules (placeholders fill those in); '$' matters only when
	 * the template begins with it. */
	if (nlit > 0 && text_check(lit, nlit, tpl[0] == '{' ? TEXT_INNER :
	    TEXT_NAME, problem, sizeof(problem)) == -1) {
		snprintf(msg, msglen, "the text around the placeholders %s",
		    problem);
		return (-1);
	}
	return (0);
}

/*
 * Expand the username template. A placeholder's value must be a valid name
 * itself, so the refusal names the certificate field at fault; a field the
 * certificate lacks is refused rather than left empty, which would give
 * every such device the same username.
 */
static enum identity_verdict
tpl_expand(const char *tpl, const struct tpl_vals *v, char *out,
    size_t outlen, char *why, size_t whylen)
{
	const char *p, *val, *label;
	size_t o = 0, n, vlen;
	int f;

	for (p = tpl; *p != '\0';) {
		if (*p != '{') {
			if (o + 1 >= outlen)
				goto toolong;
			out[o++] = *p++;
			continue;
		}
		f = text_placeholder(p, strlen(p), &n);
		p += n;
		switch (f) {
		case TEXT_PH_IDENTITY:
			val = v->identity;
			label = v->label;
			break;
		case TEXT_PH_CN:
			val = v->cn;
			label = "CN";
			break;
		case TEXT_PH_SERIAL:
			val = v->serial;
			label = "serial number";
			break;
		default:
			val = v->fingerprint;
			label = "fingerprint";
			break;
		}
		if (val == NULL && !v->from_cert) {
			/* moat passwd: only the identity is known. */
			snprintf(why, whylen, "[identity] username uses {%s}, "
			    "which moat passwd cannot know from the identity "
			    "alone; run moat explain on the device's "
			    "certificate instead", text_placeholder_name(f));
			return (ID_BAD_NAME);
		}
		if (val == NULL || (v->from_cert && *val == '\0')) {
			snprintf(why, whylen, "[identity] username uses {%s}, "
			    "but the certificate has no %s", text_placeholder_name(f),
			    label);
			return (ID_BAD_NAME);
		}
		vlen = strlen(val);
		if (vlen > 0 && name_check(label, val, vlen, o == 0 ?
		    TEXT_NAME : TEXT_INNER, why, whylen) == -1)
			return (ID_BAD_NAME);
		if (o + vlen >= outlen)
			goto toolong;
		memcpy(out + o, val, vlen);
		o += vlen;
	}
	out[o] = '\0';
	if (name_check("username", out, o, TEXT_NAME, why, whylen) == -1)
		return (ID_BAD_NAME);
	return (ID_OK);

toolong:
	snprintf(why, whylen, "the username made by [identity] username "
	    "would be longer than %d bytes", IDENTITY_MAX - 1);
	return (ID_BAD_NAME);
}

/* ------------------------------------------------------------------ */
/* Building and freeing the rules                                      */

static void cfg_err(const struct config *, const char *, char *, size_t,
    const char *, ...) __attribute__((format(printf, 5, 6)));

/* An error in [identity] key, prefixed with "FILE:LINE" of that key. */
static void
cfg_err(const struct config *cfg, const char *key, char *err, size_t errlen,
    const char *fmt, ...)
{
	char msg[MSG_MAX], where[MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(err, errlen, "%s: %s", config_where(cfg, "identity", key,
	    where, sizeof(where)), msg);
}

struct identity_rules *
identity_rules_new(const struct config *cfg, char *err, size_t errlen)
{
	struct identity_rules *r;
	const char *tpl, *pw, *pw_file;
	char msg[MSG_MAX], e1[IDENTITY_ECHO_BUF], sub[MSG_MAX];
	int rc;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	if ((int)cfg->id_source < 0 || (size_t)cfg->id_source >= NSOURCES) {
		cfg_err(cfg, "source", err, errlen, "[identity] source has no valid "
		    "value (%d; a bug in moat)", cfg->id_source);
		goto fail;
	}
	r->source = (enum identity_source)cfg->id_source;
	if ((int)cfg->id_client_id < 0 ||
	    (size_t)cfg->id_client_id >= NCIDS) {
		cfg_err(cfg, "client_id", err, errlen, "[identity] client_id has no valid "
		    "value (%d; a bug in moat)", cfg->id_client_id);
		goto fail;
	}
	r->cid = (enum identity_client_id)cfg->id_client_id;
	r->unknown_template = cfg->id_unknown_template != 0;

	if (cfg->id_pattern != NULL && cfg->id_pattern[0] != '\0') {
		rc = regcomp(&r->re, cfg->id_pattern, REG_EXTENDED);
		if (rc != 0) {
			regerror(rc, &r->re, msg, sizeof(msg));
			cfg_err(cfg, "pattern", err, errlen, "[identity] pattern \"%s\" "
			    "is not a valid POSIX extended regular "
			    "expression: %s", identity_echo(cfg->id_pattern,
			    strlen(cfg->id_pattern), e1, sizeof(e1)), msg);
			goto fail;
		}
		r->has_re = 1;
	}

	tpl = cfg->id_username != NULL ? cfg->id_username : "{identity}";
	if (tpl_check(tpl, msg, sizeof(msg)) == -1) {
		cfg_err(cfg, "username", err, errlen, "[identity] username = \"%s\": %s",
		    identity_echo(tpl, strlen(tpl), e1, sizeof(e1)), msg);
		goto fail;
	}
	if ((r->username_tpl = strdup(tpl)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}

	pw = cfg->id_password != NULL ? cfg->id_password : "none";
	if (config_parse_password(pw, &r->pw, &pw_file) == -1) {
		cfg_err(cfg, "password", err, errlen, "[identity] password = \"%s\": use "
		    "none, hmac (with hmac_secret_file) or file:PATH",
		    identity_echo(pw, strlen(pw), e1, sizeof(e1)));
		goto fail;
	}
	if (r->pw == ID_PW_HMAC && (cfg->id_hmac_secret_file == NULL ||
	    cfg->id_hmac_secret_file[0] == '\0')) {
		cfg_err(cfg, "password", err, errlen, "[identity] password = hmac needs "
		    "hmac_secret_file = PATH, a file of at least %d random "
		    "bytes", SECRET_MIN);
		goto fail;
	}
	if (r->pw != ID_PW_HMAC && cfg->id_hmac_secret_file != NULL) {
		cfg_err(cfg, "hmac_secret_file", err, errlen, "[identity] hmac_secret_file is set "
		    "but password = %s does not use it; set password = hmac "
		    "or delete hmac_secret_file", r->pw == ID_PW_NONE ? "none" :
		    "file:...");
		goto fail;
	}
	if (r->pw == ID_PW_HMAC && load_secret(r, cfg->id_hmac_secret_file,
	    sub, sizeof(sub)) == -1) {
		cfg_err(cfg, "hmac_secret_file", err, errlen, "[identity] hmac_secret_file: %s",
		    sub);
		goto fail;
	}
	if (r->pw == ID_PW_FILE && load_password(r, pw_file, sub,
	    sizeof(sub)) == -1) {
		cfg_err(cfg, "password", err, errlen, "[identity] password = file: %s",
		    sub);
		goto fail;
	}

	if (cfg->id_map != NULL && cfg->id_map[0] != '\0') {
		if (load_map(r, cfg->id_map, err, errlen) == -1)
			goto fail;
	} else if (!r->unknown_template) {
		cfg_err(cfg, "unknown", err, errlen, "[identity] unknown = reject refuses "
		    "every device whose identity has no entry in the map, "
		    "but no map is set: set map = FILE to list the devices, "
		    "or unknown = template to give every certificate the CA "
		    "verified the template credentials");
		goto fail;
	}
	if (idmap_policy_check(r->map, cfg, err, errlen) != 0)
		goto fail;
	if ((r->policy_on = cfg->policy_on) != 0 &&
	    ((r->policy.publish = strdup(cfg->policy_publish)) == NULL ||
	    (r->policy.subscribe = strdup(cfg->policy_subscribe)) == NULL)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	return (r);

fail:
	identity_rules_free(r);
	return (NULL);
}

void
identity_rules_free(struct identity_rules *r)
{
	if (r == NULL)
		return;
	if (r->has_re)
		regfree(&r->re);
	free(r->username_tpl);
	text_wipe_free(r->secret, r->secret_len);
	text_free_secret(r->password);
	idmap_free(r->map);
	free((char *)r->policy.publish);
	free((char *)r->policy.subscribe);
	text_wipe_free(r, sizeof(*r));
}

int
identity_policy_rules(const struct identity_rules *r, const char *identity,
    struct policy_rules *out)
{
	return (idmap_policy_rules(r->policy_on ? &r->policy : NULL,
	    idmap_lookup(r->map, identity), out));
}

/* ------------------------------------------------------------------ */
/* Mapping                                                             */

/* base64url without padding of HMAC-SHA256(secret, username): 43 chars. */
static int
hmac_password(const struct identity_rules *r, const char *username,
    char *out, size_t outlen)
{
	Hmac h;
	byte mac[WC_SHA256_DIGEST_SIZE];
	byte b64[64];
	word32 n = sizeof(b64);
	size_t i, o;
	int ret = -1;

	if (wc_HmacInit(&h, NULL, INVALID_DEVID) != 0)
		return (-1);
	if (wc_HmacSetKey(&h, WC_SHA256, r->secret, (word32)r->secret_len)
	    != 0 ||
	    wc_HmacUpdate(&h, (const byte *)username,
	    (word32)strlen(username)) != 0 ||
	    wc_HmacFinal(&h, mac) != 0)
		goto out;
	if (Base64_Encode_NoNl(mac, sizeof(mac), b64, &n) != 0)
		goto out;
	for (i = 0, o = 0; i < n && b64[i] != '='; i++) {
		if (o + 1 >= outlen)
			goto out;
		out[o++] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' :
		    (char)b64[i];
	}
	out[o] = '\0';
	ret = 0;
out:
	wc_HmacFree(&h);
	explicit_bzero(&h, sizeof(h));
	explicit_bzero(mac, sizeof(mac));
	explicit_bzero(b64, sizeof(b64));
	return (ret);
}

/* The MQTT 3.1 limit, and the name rules, on the final client id. */
static enum identity_verdict
cid_final(struct identity_creds *out, int level)
{
	char e[IDENTITY_ECHO_BUF];
	size_t n = strlen(out->client_id);

	if (level == 3 && n > MQTT31_CID_MAX) {
		snprintf(out->why, sizeof(out->why), "client id \"%s\" is %zu "
		    "bytes long; MQTT 3.1 limits client ids to %d bytes",
		    identity_echo(out->client_id, n, e, sizeof(e)), n,
		    MQTT31_CID_MAX);
		return (ID_BAD_NAME);
	}
	return (ID_OK);
}

/*
 * client_id = prefix and require-prefix join the identity and the device's
 * own client id with CID_SEP. An identity that contains it could collide
 * with another ("plant" + "2" against "plant-2" with a dash), letting one
 * device take over another's session, so such identities are refused.
 */
#define CID_SEP ':'

static int
sep_in_identity(const char *id, size_t idlen, struct identity_creds *out)
{
	char e1[IDENTITY_ECHO_BUF];

	if (memchr(id, CID_SEP, idlen) == NULL)
		return (0);
	snprintf(out->why, sizeof(out->why), "identity \"%s\" contains "
	    "'%c', which client_id = prefix and require-prefix use to join "
	    "the identity and the device's client id; use client_id = "
	    "identity, or a pattern that leaves it out",
	    identity_echo(id, idlen, e1, sizeof(e1)), CID_SEP);
	return (-1);
}

/*
 * The client id, by map entry or policy. device is NULL for
 * identity_for_name(), which has no device: then policies that would use
 * the device's client id yield the identity (keep: empty).
 */
static enum identity_verdict
client_id(const struct identity_rules *r, const struct idmap_entry *e,
    const struct tpl_vals *v, const uint8_t *device, size_t dlen, int level,
    struct identity_creds *out)
{
	const char *id = v->identity;
	size_t idlen = strlen(id);
	char e1[IDENTITY_ECHO_BUF], e2[IDENTITY_ECHO_BUF];
	const char *dc = (const char *)device;

	if (e != NULL && e->client_id != NULL) {
		snprintf(out->client_id, sizeof(out->client_id), "%s",
		    e->client_id);
		return (cid_final(out, level));
	}
	if (device == NULL)
		dlen = 0;
	/* The device's own client id, wherever it is used: all the rules
	 * when it is the whole client id, those for inner text after
	 * "identity:" (prefix). */
	if (r->cid != ID_CID_IDENTITY && dlen > 0 && name_check("the "
	    "device's client id", dc, dlen, r->cid == ID_CID_PREFIX ?
	    TEXT_INNER : TEXT_NAME, out->why, sizeof(out->why)) == -1)
		return (ID_BAD_NAME);

	switch (r->cid) {
	case ID_CID_KEEP:
		/* Empty stays empty: MQTT 3.1.1 and 5 let the broker assign
		 * one (clean session); for 3.1 the broker refuses it. */
		if (dlen > 0)
			memcpy(out->client_id, dc, dlen);
		out->client_id[dlen] = '\0';
		break;
	case ID_CID_REQUIRE_EQUAL:
	case ID_CID_REQUIRE_PREFIX:
		if (r->cid == ID_CID_REQUIRE_PREFIX &&
		    sep_in_identity(id, idlen, out) != 0)
			return (ID_BAD_NAME);
		/* require-prefix: the identity alone, or it and CID_SEP. */
		if (device != NULL && (dlen < idlen ||
		    memcmp(dc, id, idlen) != 0 ||
		    (r->cid == ID_CID_REQUIRE_EQUAL && dlen != idlen) ||
		    (dlen > idlen && dc[idlen] != CID_SEP))) {
			snprintf(out->why, sizeof(out->why), "[identity] "
			    "client_id = %s: the device's client id \"%s\" "
			    "does not %s its identity \"%s\"%s",
			    cid_names[r->cid],
			    identity_echo(dc, dlen, e1, sizeof(e1)),
			    r->cid == ID_CID_REQUIRE_EQUAL ? "equal" :
			    "start with",
			    identity_echo(id, idlen, e2, sizeof(e2)),
			    r->cid == ID_CID_REQUIRE_EQUAL ? "" :
			    " followed by ':' (or equal it)");
			return (ID_CLIENT_ID_REFUSED);
		}
		if (device == NULL) {
			memcpy(out->client_id, id, idlen + 1);
			if (name_check(v->label, id, idlen, TEXT_NAME,
			    out->why, sizeof(out->why)) == -1)
				return (ID_BAD_NAME);
		} else {
			memcpy(out->client_id, dc, dlen);
			out->client_id[dlen] = '\0';
		}
		break;
	case ID_CID_PREFIX:
	case ID_CID_IDENTITY:
	default:
		if (name_check(v->label, id, idlen, TEXT_NAME, out->why,
		    sizeof(out->why)) == -1)
			return (ID_BAD_NAME);
		if (r->cid == ID_CID_PREFIX &&
		    sep_in_identity(id, idlen, out) != 0)
			return (ID_BAD_NAME);
		if (r->cid == ID_CID_PREFIX && dlen > 0) {
			if (idlen + 1 + dlen >= sizeof(out->client_id)) {
				snprintf(out->why, sizeof(out->why), "[identity] "
				    "client_id = prefix: \"%s\" + \":\" + the "
				    "device's client id would be longer than "
				    "%d bytes", identity_echo(id, idlen, e1,
				    sizeof(e1)), IDENTITY_MAX - 1);
				return (ID_BAD_NAME);
			}
			memcpy(out->client_id, id, idlen);
			out->client_id[idlen] = CID_SEP;
			memcpy(out->client_id + idlen + 1, dc, dlen);
			out->client_id[idlen + 1 + dlen] = '\0';
		} else
			memcpy(out->client_id, id, idlen + 1);
		break;
	}
	return (cid_final(out, level));
}

/* Credentials for a known identity value (in out->identity). */
static enum identity_verdict
resolve(const struct identity_rules *r, const struct tpl_vals *v,
    const uint8_t *device, size_t dlen, int level,
    struct identity_creds *out)
{
	const struct idmap_entry *e = idmap_lookup(r->map, v->identity);
	char e1[IDENTITY_ECHO_BUF];
	enum identity_verdict verdict;

	out->rule_kind = e != NULL ? ID_RULE_MAP_ENTRY : r->unknown_template ?
	    ID_RULE_TEMPLATE : ID_RULE_UNKNOWN;
	if (e != NULL)
		snprintf(out->rule, sizeof(out->rule), "map entry [%s]",
		    identity_echo(e->name, strlen(e->name), e1, sizeof(e1)));
	else if (r->unknown_template)
		snprintf(out->rule, sizeof(out->rule), "template");
	else {
		snprintf(out->rule, sizeof(out->rule), "unknown = reject");
		snprintf(out->why, sizeof(out->why), "%s \"%s\" has no entry "
		    "in the map and [identity] unknown = reject", v->label,
		    identity_echo(v->identity, strlen(v->identity), e1,
		    sizeof(e1)));
		return (ID_UNKNOWN);
	}
	if (e != NULL && e->deny) {
		snprintf(out->why, sizeof(out->why), "map entry [%s] (line %d "
		    "of the map) says deny = true", identity_echo(e->name,
		    strlen(e->name), e1, sizeof(e1)), e->line);
		return (ID_DENIED);
	}

	if (e != NULL && e->username != NULL)
		snprintf(out->username, sizeof(out->username), "%s",
		    e->username);
	else if ((verdict = tpl_expand(r->username_tpl, v, out->username,
	    sizeof(out->username), out->why, sizeof(out->why))) != ID_OK)
		return (verdict);

	if ((verdict = client_id(r, e, v, device, dlen, level, out)) != ID_OK)
		return (verdict);

	if (e != NULL && e->password != NULL) {
		snprintf(out->password, sizeof(out->password), "%s",
		    e->password);
		out->has_password = 1;
	} else if (r->pw == ID_PW_FILE) {
		snprintf(out->password, sizeof(out->password), "%s",
		    r->password);
		out->has_password = 1;
	} else if (r->pw == ID_PW_HMAC) {
		if (hmac_password(r, out->username, out->password,
		    sizeof(out->password)) == -1) {
			snprintf(out->why, sizeof(out->why), "HMAC-SHA256 "
			    "failed in wolfCrypt");
			return (ID_BAD_NAME);
		}
		out->has_password = 1;
	}
	return (ID_OK);
}

/* Wipe the password of a refusal, so no caller can send or log it. */
static enum identity_verdict
finish(enum identity_verdict verdict, struct identity_creds *out)
{
	if (verdict != ID_OK) {
		explicit_bzero(out->password, sizeof(out->password));
		out->has_password = 0;
	}
	return (verdict);
}

/*
 * Does s match the pattern? Sets the identity part (group 1, or the whole
 * match) in *start and *len; an empty identity is no match.
 */
static int
extract(const struct identity_rules *r, const char *s, const char **start,
    size_t *len)
{
	regmatch_t m[2];
	const regmatch_t *g;

	if (!r->has_re) {
		*start = s;
		*len = strlen(s);
		return (*len > 0 ? 0 : -1);
	}
	/*
	 * The pattern must match the whole value, as if written ^...$: an
	 * unanchored "sensor-[0-9]+" would give CN "guest-sensor-1-lab" the
	 * identity sensor-1.
	 */
	if (regexec(&r->re, s, 2, m, 0) != 0 || m[0].rm_so != 0 ||
	    (size_t)m[0].rm_eo != strlen(s))
		return (-1);
	g = r->re.re_nsub >= 1 ? &m[1] : &m[0];
	if (g->rm_so < 0 || g->rm_eo <= g->rm_so)
		return (-1);
	*start = s + g->rm_so;
	*len = (size_t)(g->rm_eo - g->rm_so);
	return (0);
}

/* The identity value from the certificate into out->identity. */
static enum identity_verdict
pick_identity(const struct identity_rules *r, const struct cert_identity *id,
    struct identity_creds *out)
{
	const char *label = source_labels[r->source];
	const char *single = NULL, *start = NULL;
	char *const *list = NULL;
	char e1[IDENTITY_ECHO_BUF];
	size_t n = 0, i, len = 0;

	switch (r->source) {
	case ID_SRC_CN:
		single = id->cn;
		break;
	case ID_SRC_DN:
		single = id->dn;
		break;
	case ID_SRC_SERIAL:
		single = id->serial;
		break;
	case ID_SRC_FINGERPRINT:
		single = id->fingerprint;
		break;
	case ID_SRC_SAN_DNS:
		list = id->san_dns;
		n = id->n_san_dns;
		break;
	case ID_SRC_SAN_URI:
		list = id->san_uri;
		n = id->n_san_uri;
		break;
	case ID_SRC_SAN_EMAIL:
		list = id->san_email;
		n = id->n_san_email;
		break;
	}
	if (list == NULL) {
		list = (char *const *)&single;
		n = single != NULL && single[0] != '\0';
	}
	if (n == 0) {
		snprintf(out->why, sizeof(out->why), "the certificate has no "
		    "%s, which [identity] source = %s uses", label,
		    source_names[r->source]);
		return (ID_UNKNOWN);
	}
	for (i = 0; i < n; i++)
		if (list[i] != NULL && extract(r, list[i], &start, &len) == 0)
			break;
	if (i == n) {
		if (n == 1)
			snprintf(out->why, sizeof(out->why), "%s \"%s\" does "
			    "not match [identity] pattern", label,
			    list[0] == NULL ? "" : identity_echo(list[0],
			    strlen(list[0]), e1, sizeof(e1)));
		else
			snprintf(out->why, sizeof(out->why), "none of the "
			    "certificate's %zu %ss matches [identity] pattern",
			    n, label);
		return (ID_UNKNOWN);
	}
	if (len >= sizeof(out->identity)) {
		memcpy(out->identity, start, sizeof(out->identity) - 1);
		out->identity[sizeof(out->identity) - 1] = '\0';
		snprintf(out->why, sizeof(out->why), "the identity from the "
		    "%s is %zu bytes long; moat takes identities of at most "
		    "%d bytes", label, len, IDENTITY_MAX - 1);
		return (ID_BAD_NAME);
	}
	memcpy(out->identity, start, len);
	out->identity[len] = '\0';
	return (ID_OK);
}

enum identity_verdict
identity_map(const struct identity_rules *r, const struct cert_identity *id,
    const uint8_t *device_cid, size_t cid_len, int level,
    struct identity_creds *out)
{
	struct tpl_vals v;
	char label[64];
	enum identity_verdict verdict;

	memset(out, 0, sizeof(*out));
	if (r == NULL || id == NULL) {
		snprintf(out->why, sizeof(out->why), "no certificate");
		return (ID_UNKNOWN);
	}
	if (device_cid == NULL)
		cid_len = 0;
	if ((verdict = pick_identity(r, id, out)) != ID_OK)
		return (finish(verdict, out));
	if (r->has_re)
		snprintf(label, sizeof(label), "identity from the %s",
		    source_labels[r->source]);
	else
		snprintf(label, sizeof(label), "%s", source_labels[r->source]);
	v.identity = out->identity;
	v.cn = id->cn;
	v.serial = id->serial;
	v.fingerprint = id->fingerprint;
	v.label = label;
	v.from_cert = 1;
	return (finish(resolve(r, &v, device_cid != NULL ? device_cid :
	    (const uint8_t *)"", cid_len, level, out), out));
}

enum identity_verdict
identity_for_name(const struct identity_rules *r, const char *identity,
    struct identity_creds *out)
{
	struct tpl_vals v;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (r == NULL || identity == NULL || identity[0] == '\0') {
		snprintf(out->why, sizeof(out->why), "no identity given");
		return (ID_UNKNOWN);
	}
	len = strlen(identity);
	if (len >= sizeof(out->identity)) {
		memcpy(out->identity, identity, sizeof(out->identity) - 1);
		snprintf(out->why, sizeof(out->why), "the identity is %zu "
		    "bytes long; moat takes identities of at most %d bytes",
		    len, IDENTITY_MAX - 1);
		return (ID_BAD_NAME);
	}
	memcpy(out->identity, identity, len + 1);
	v.identity = out->identity;
	/* {cn} is the identity only when the identity is the whole CN. */
	v.cn = r->source == ID_SRC_CN && !r->has_re ? out->identity : NULL;
	v.serial = NULL;
	v.fingerprint = NULL;
	v.label = "identity";
	v.from_cert = 0;
	return (finish(resolve(r, &v, NULL, 0, 4, out), out));
}

/* ------------------------------------------------------------------ */
/* Mosquitto's password file                                           */

int
identity_mosquitto_line(const char *username, const char *password,
    char *out, size_t outlen)
{
	WC_RNG rng;
	byte salt[MOSQ_SALT_LEN], hash[MOSQ_HASH_LEN];
	byte salt64[32], hash64[128];
	word32 ns = sizeof(salt64) - 1, nh = sizeof(hash64) - 1;
	int n, ret = -1;

	if (username == NULL || password == NULL || username[0] == '\0' ||
	    strpbrk(username, ":\r\n") != NULL)
		return (-1);
	if (wc_InitRng(&rng) != 0)
		return (-1);
	if (wc_RNG_GenerateBlock(&rng, salt, sizeof(salt)) != 0)
		goto out;
	if (wc_PBKDF2(hash, (const byte *)password, (int)strlen(password),
	    salt, sizeof(salt), MOSQ_ITERATIONS, sizeof(hash),
	    WC_SHA512) != 0)
		goto out;
	if (Base64_Encode_NoNl(salt, sizeof(salt), salt64, &ns) != 0 ||
	    Base64_Encode_NoNl(hash, sizeof(hash), hash64, &nh) != 0)
		goto out;
	salt64[ns] = '\0';
	hash64[nh] = '\0';
	n = snprintf(out, outlen, "%s:$7$%d$%s$%s", username,
	    MOSQ_ITERATIONS, (char *)salt64, (char *)hash64);
	if (n < 0 || (size_t)n >= outlen)
		goto out;
	ret = 0;
out:
	if (ret == -1 && outlen > 0)
		out[0] = '\0';
	wc_FreeRng(&rng);
	explicit_bzero(hash, sizeof(hash));
	return (ret);
}

int
identity_creds_digest(const struct identity_creds *cr,
    uint8_t out[IDENTITY_DIGEST_LEN])
{
	static const uint8_t sep = 0;
	const uint8_t has = cr->has_password ? 1 : 0;
	wc_Sha256 h;
	int rc = -1;

	if (wc_InitSha256(&h) != 0)
		return (-1);
	if (wc_Sha256Update(&h, (const byte *)cr->username,
	    (word32)strlen(cr->username) + 1) == 0 &&
	    wc_Sha256Update(&h, &has, 1) == 0 &&
	    wc_Sha256Update(&h, (const byte *)cr->password, has ?
	    (word32)strlen(cr->password) + 1 : 0) == 0 &&
	    wc_Sha256Update(&h, &sep, 1) == 0 &&
	    wc_Sha256Update(&h, (const byte *)cr->client_id,
	    (word32)strlen(cr->client_id) + 1) == 0 &&
	    wc_Sha256Final(&h, out) == 0)
		rc = 0;
	wc_Sha256Free(&h);
	return (rc);
}

void
identity_conn_limit(const struct identity_rules *r, const struct config *cfg,
    const char *identity, uint64_t *max, enum on_duplicate *dup)
{
	const struct idmap_entry *e = r != NULL ? idmap_lookup(r->map,
	    identity) : NULL;

	*max = e != NULL && e->max_conns >= 0 ? (uint64_t)e->max_conns :
	    cfg->max_conns_per_identity;
	*dup = e != NULL && e->on_duplicate >= 0 ?
	    (enum on_duplicate)e->on_duplicate : cfg->on_duplicate;
}

/* An entry's number where it sets one (>= 0), else the default. */
static uint64_t
entry_or(int64_t v, uint64_t def)
{
	return (v >= 0 ? (uint64_t)v : def);
}

void
identity_publish_limits(const struct identity_rules *r,
    const struct config *cfg, const char *identity,
    struct identity_publish_limits *out)
{
	const struct idmap_entry *e = r != NULL && identity != NULL ?
	    idmap_lookup(r->map, identity) : NULL;

	out->rate = entry_or(e != NULL ? e->publish_rate : -1,
	    cfg->publish_rate);
	out->burst = entry_or(e != NULL ? e->publish_burst : -1,
	    cfg->publish_burst);
	out->bytes_rate = entry_or(e != NULL ? e->publish_bytes_rate : -1,
	    cfg->publish_bytes_rate);
	out->max_size = entry_or(e != NULL ? e->max_publish_size : -1,
	    cfg->max_publish_size);
}
