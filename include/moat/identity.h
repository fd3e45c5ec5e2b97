/* SPDX-License-Identifier: MIT */
/*
 * Identity: turn the fields of a verified device certificate into the
 * broker credentials moat puts into the device's CONNECT (username,
 * password, client id), following the [identity] section and its map file.
 * Pure C plus wolfCrypt hashes: no sockets, no TLS sessions.
 *
 * A mapped username or client id never contains '+', '#', '/', NUL, a
 * control character or invalid UTF-8: Mosquitto's ACL patterns silently
 * deny such names, and they were the root of CVE-2017-7650. Nor does it
 * begin with '$' or hold a format or bidi character (text.h, TEXT_NAME).
 */
#ifndef MOAT_IDENTITY_H
#define MOAT_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "moat/config.h"
#include "moat/text.h"

/* The [identity] enums (source, client_id, password) live in config.h. */
struct config;

/* Fields read once from a device certificate; every string is malloc'd. */
struct cert_identity {
	char *cn;             /* subject CN, or NULL */
	char *dn;             /* subject DN as an RFC 4514 string */
	char *serial;         /* serial number, upper-case hex */
	char *fingerprint;    /* SHA-256 of the DER certificate, lower hex */
	char *issuer_cn;      /* issuer CN, or NULL */
	unsigned char issuer_hash[32]; /* SHA-256 of the issuer Name's DER
	                       * body, to match a CRL's issuer */
	int64_t not_after;    /* notAfter, seconds since the epoch (UTC) */
	char **san_dns;
	size_t n_san_dns;
	char **san_uri;
	size_t n_san_uri;
	char **san_email;
	size_t n_san_email;
	char **san_ip;        /* printable addresses */
	size_t n_san_ip;
};

/* Free the strings of id and zero it; NULL does nothing. */
void cert_identity_clear(struct cert_identity *id);

enum identity_verdict {
	ID_OK = 0,
	ID_UNKNOWN,           /* no map entry (and unknown = reject) or no
	                       * identity in the certificate */
	ID_DENIED,            /* map entry with deny = true */
	ID_BAD_NAME,          /* would yield a forbidden username/client id */
	ID_CLIENT_ID_REFUSED, /* the device's client id breaks the policy */
};

#define IDENTITY_MAX TEXT_NAME_MAX

/* Which rule decided, as data (rule below is its text for people). */
enum identity_rule {
	ID_RULE_NONE = 0,     /* none reached: no usable identity */
	ID_RULE_MAP_ENTRY,    /* an entry of the map file */
	ID_RULE_TEMPLATE,     /* no entry; unknown = template */
	ID_RULE_UNKNOWN,      /* no entry; unknown = reject */
};

struct identity_creds {
	char identity[IDENTITY_MAX];   /* the identity value that matched */
	char username[IDENTITY_MAX];
	char password[IDENTITY_MAX];   /* secret: never log */
	int has_password;
	char client_id[IDENTITY_MAX];
	char rule[IDENTITY_MAX];       /* "map entry [x]" or "template", for
	                                * logs and moat explain */
	enum identity_rule rule_kind;  /* the same, to decide on */
	char why[IDENTITY_MAX];        /* reason for a refusal */
};

struct identity_rules;

/*
 * Build the rules from cfg's [identity] section: compiles the pattern,
 * reads the HMAC secret and password files, loads the map file. Returns
 * NULL with "FILE:LINE: message" in err.
 */
struct identity_rules *identity_rules_new(const struct config *cfg,
    char *err, size_t errlen);

/* Free the rules (wiping secrets); NULL does nothing. */
void identity_rules_free(struct identity_rules *r);

struct policy_rules;

/*
 * The topic rules for identity (a value identity_map() accepted): its map
 * entry's publish and subscribe lists where it sets them, else [policy]'s.
 * Returns 1 with out filled (strings borrowed from r), or 0 when topic
 * policy is off.
 */
int identity_policy_rules(const struct identity_rules *r,
    const char *identity, struct policy_rules *out);

/*
 * Map a certificate to credentials. device_cid is the client id the device
 * sent (len may be 0); level is its MQTT protocol level (3 limits client
 * ids to 23 bytes). Returns the verdict; out is filled (why on refusal).
 */
enum identity_verdict identity_map(const struct identity_rules *r,
    const struct cert_identity *id, const uint8_t *device_cid,
    size_t cid_len, int level, struct identity_creds *out);

#define IDENTITY_DIGEST_LEN 32

/*
 * A SHA-256 digest of the broker credentials in cr (username, whether
 * there is a password and which, client id), so that a connection can
 * later tell whether a new map still gives it the same credentials
 * without keeping the password. Returns 0 or -1.
 */
int identity_creds_digest(const struct identity_creds *cr,
    uint8_t out[IDENTITY_DIGEST_LEN]);

/*
 * Credentials for an identity value given directly (moat passwd):
 * {cn} stands for the identity, {serial} and {fingerprint} are empty.
 */
enum identity_verdict identity_for_name(const struct identity_rules *r,
    const char *identity, struct identity_creds *out);

/*
 * A Mosquitto password-file line "username:$7$..." (PBKDF2-SHA512, 101
 * iterations, 12-byte random salt, as mosquitto_passwd writes). Returns 0 or
 * -1.
 */
int identity_mosquitto_line(const char *username, const char *password,
    char *out, size_t outlen);

/* 1 when s is acceptable as a broker username or client id, else 0:
 * text_name_ok(), the rules of text.h. */
int identity_name_ok(const char *s, size_t len);

/*
 * The rules for text that names something to the broker, for messages that
 * say what is wrong: s (len bytes, need not be NUL-terminated) must be
 * non-empty, shorter than IDENTITY_MAX, valid UTF-8 without NUL or control
 * characters, and with acl set obey every rule for a username or client
 * id (TEXT_NAME: no '+', '#', '/', no format or bidi characters, no
 * leading '$'; identity values such as URIs may contain '/'). Returns
 * 0, or -1 with what is wrong written into the caller's problem
 * ("contains '#', which ..."), to follow the quoted value.
 */
int identity_text_check(const char *s, size_t len, int acl, char *problem,
    size_t plen);

/* Bytes of a value identity_echo() quotes before it cuts with "...". */
#define IDENTITY_ECHO_MAX TEXT_QUOTE_MAX
/* A buffer for identity_echo() that holds any such quote. */
#define IDENTITY_ECHO_BUF TEXT_QUOTE_BUF

/*
 * Quote s (len bytes) for a message: printable text as it is, '"' and '\'
 * escaped, anything else (control, format and bidi characters, invalid
 * UTF-8) as \xNN, cut after IDENTITY_ECHO_MAX bytes; text_quote() with
 * TEXT_QUOTE_ESCAPES. Writes into the caller's buf (buflen,
 * normally IDENTITY_ECHO_BUF) and returns buf.
 */
const char *identity_echo(const char *s, size_t len, char *buf,
    size_t buflen);

/*
 * The [limits] max_connections_per_identity (0: none) and on_duplicate
 * that hold for the identity value identity: those of its entry in the
 * map where it sets them, else cfg's. r may be NULL (cfg's then).
 */
void identity_conn_limit(const struct identity_rules *r,
    const struct config *cfg, const char *identity, uint64_t *max,
    enum on_duplicate *dup);

#endif
