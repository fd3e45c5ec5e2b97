/* SPDX-License-Identifier: MIT */
/*
 * moat.ini -> struct config. The parser is table-driven: one row per option
 * with its type, bounds, default and help text, used by the loader, the
 * validator and --help alike. Loading is all-or-nothing: a bad file yields
 * "FILE:LINE: what is wrong and how to fix it" and no config.
 */
#ifndef MOAT_CONFIG_H
#define MOAT_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "moat/log.h"

#define CONFIG_MAX_LISTEN 16
/* inih's line buffer: with the newline and the terminating NUL it holds,
 * a line may have at most CONFIG_MAX_LINE - 2 = 198 characters */
#define CONFIG_MAX_LINE 200

/*
 * The [identity] choices, here so that config.c and identity.c both read
 * them from the room that parses them. Each X-macro row is the enum
 * constant and the word written in moat.ini.
 */
#define IDENTITY_SOURCES(X)                     \
	X(CN, "cn")                             \
	X(DN, "dn")                             \
	X(SAN_DNS, "san-dns")                   \
	X(SAN_URI, "san-uri")                   \
	X(SAN_EMAIL, "san-email")               \
	X(SERIAL, "serial")                     \
	X(FINGERPRINT, "fingerprint")

#define IDENTITY_CLIENT_ID(X)                   \
	X(IDENTITY, "identity")                 \
	X(KEEP, "keep")                         \
	X(PREFIX, "prefix")                     \
	X(REQUIRE_EQUAL, "require-equal")       \
	X(REQUIRE_PREFIX, "require-prefix")

#define X(name, text) ID_SRC_##name,
enum identity_source { IDENTITY_SOURCES(X) };
#undef X
#define X(name, text) ID_CID_##name,
enum identity_client_id { IDENTITY_CLIENT_ID(X) };
#undef X

/*
 * [limits] on_duplicate (also a key of the identity map): what a new
 * connection does when its identity already has
 * max_connections_per_identity. Rows as above.
 */
#define LIMITS_ON_DUPLICATE(X)                  \
	X(REPLACE, "replace")                   \
	X(REFUSE, "refuse")

#define X(name, text) DUP_##name,
enum on_duplicate { LIMITS_ON_DUPLICATE(X) };
#undef X

/* The largest max_connections_per_identity, in moat.ini and the map. */
#define LIMITS_MAX_CONNS_PER_IDENTITY 1000000
#define LIMITS_PUBLISH_RATE_MAX 1000000       /* messages a second */
#define LIMITS_PUBLISH_BYTES_MAX 1000000000   /* bytes a second */

/*
 * [policy] on_denied_publish: what MQTT 3.1.1 devices, which cannot be told
 * no, get for a refused PUBLISH.
 */
#define POLICY_ON_DENIED(X)                     \
	X(DISCONNECT, "disconnect")             \
	X(DROP, "drop")

#define X(name, text) POLICY_DENIED_##name,
enum policy_on_denied { POLICY_ON_DENIED(X) };
#undef X

/* [identity] password, parsed by config_parse_password(). */
enum identity_password {
	ID_PW_NONE,                          /* none */
	ID_PW_HMAC,                          /* hmac */
	ID_PW_FILE,                          /* file:PATH */
};

struct config {
	char *path;                          /* file it was loaded from */

	char *listen[CONFIG_MAX_LISTEN];     /* [listen] address, repeatable */
	int listen_line[CONFIG_MAX_LISTEN];
	unsigned nlisten;

	char *tls_cert;                      /* [tls] cert: PEM chain */
	char *tls_key;                       /* [tls] key: PEM private key */
	char *tls_ca;                        /* [tls] ca: PEM CA bundle */
	char *tls_crl;                       /* [tls] crl: PEM CRL or NULL */
	char *tls_ciphers;                   /* [tls] ciphers or NULL: default */
	char *tls_groups;                    /* [tls] groups or NULL: default */
	int tls_min_version;                 /* 12 or 13 */
	uint64_t tls_min_rsa_bits;           /* [tls] floors for device */
	uint64_t tls_min_ecc_bits;           /* certificates (cert.h) */
	int tls_sha1_signatures;              /* 1: accept SHA-1 signatures */
	int tls_close_on_cert_expiry;        /* 1: close at notAfter */

	char *backend;                       /* [backend] address */
	char *backend_source;                /* [backend] source or NULL */

	uint64_t handshake_timeout_ms;       /* [limits] */
	uint64_t connect_timeout_ms;
	uint64_t idle_timeout_ms;            /* 0: no idle timeout */
	uint64_t max_lifetime_ms;            /* 0: connections live on */
	uint64_t drain_timeout_ms;           /* SIGTERM: 0 closes at once */
	uint64_t max_connections;            /* after the handshake */
	uint64_t max_handshakes_per_address; /* peers still in the handshake,
	                                      * per source address */
	uint64_t max_handshakes;             /* still in the handshake, all
	                                      * addresses */
	uint64_t max_conns_per_identity;     /* live with one identity, all
	                                      * workers; 0: no limit */
	enum on_duplicate on_duplicate;      /* over that: replace, refuse */

	uint64_t max_connect_size;           /* [limits] bytes */
	uint64_t max_packet_size;            /* [limits] bytes, after the
	                                      * CONNECT */
	uint64_t max_publish_size;           /* [limits] bytes; 0: none */
	uint64_t publish_rate;               /* [limits] per second; 0: off */
	uint64_t publish_burst;              /* 0: publish_rate */
	uint64_t publish_bytes_rate;         /* [limits] per second; 0: off */

	uint64_t workers;                    /* [process] threads; 0: auto,
	                                      * one per CPU */
	char *user;                          /* [process] user to run as
	                                      * after start-up, or NULL */
	char *group;                         /* [process] group, or NULL:
	                                      * the user's primary group */
	int watch_files;                     /* [process] 1: reload when the
	                                      * files change (watch.h) */
	char *admin_address;                 /* [admin] address, "off" to
	                                      * disable (admin.h) */

	/* [identity]: certificate -> broker credentials (identity.h) */
	enum identity_source id_source;
	char *id_pattern;                    /* POSIX ERE or NULL */
	char *id_username;                   /* template, "{identity}" */
	char *id_password;                   /* "none", "hmac", "file:PATH" */
	char *id_hmac_secret_file;           /* for password = hmac */
	enum identity_client_id id_client_id;
	int id_unknown_template;             /* unknown = template (1) or
	                                      * reject (0, the default) */
	char *id_map;                        /* map file or NULL */

	/* [policy]: topic rules (policy.h); off unless a rule key is set */
	int policy_on;                       /* 1: publish and subscribe set */
	char *policy_publish;                /* rule lists, "" allows none; */
	char *policy_subscribe;              /* NULL when policy_on is 0 */
	enum policy_on_denied policy_on_denied;

	enum log_level log_level;            /* [log] level */
	enum log_format log_format;          /* [log] format */

	int *lines;                          /* line of each option, by row */
};

/* The default cipher list: TLS 1.3 suites and ECDHE AEAD suites only. */
extern const char config_default_ciphers[];

/*
 * Load and validate path. Returns a new config, or NULL with
 * "path:line: message" in err. Relative file names in [tls] are taken as
 * they are (relative to the working directory).
 */
struct config *config_load(const char *path, char *err, size_t errlen);

/* Free a config; config_free(NULL) does nothing. */
void config_free(struct config *cfg);

/*
 * "path:LINE" of where section.key was set, or "path" when it was left at
 * its default. Used to point errors found later (an unreadable certificate,
 * a key that does not match) at the right line. Returns buf.
 */
const char *config_where(const struct config *cfg, const char *section,
    const char *key, char *buf, size_t len);

/*
 * Parse a duration: a number followed by ms, s, m or h ("10s", "2m",
 * "500ms"); "0" alone means zero. Returns 0 or -1 with a reason in err.
 */
int config_parse_duration(const char *s, uint64_t *ms, char *err,
    size_t errlen);

/*
 * Check a colon-separated cipher list as [tls] ciphers is checked: every
 * name must be on moat's allow-list of AEAD, forward-secret suites (TLS 1.3
 * AES-GCM, ChaCha20-Poly1305 and AES-CCM; ECDHE and DHE with AES-GCM or
 * ChaCha20-Poly1305). Returns 0, or -1 with a message naming the refused
 * suite, why, and the allowed suites in err.
 */
int config_check_ciphers(const char *list, char *err, size_t errlen);

/* Nonzero when name (a wolfSSL suite name) is on that allow-list. */
int config_cipher_allowed(const char *name);

/*
 * The key exchange groups [tls] groups may name: X(enum suffix, name,
 * TLS NamedGroup code point). Only elliptic curves of at least 256 bits,
 * X25519, X448 and the RFC 7919 finite-field groups.
 */
#define TLS_GROUPS(X)                                                   \
	X(X25519, "X25519", 29)                                         \
	X(X448, "X448", 30)                                             \
	X(P256, "P-256", 23)                                            \
	X(P384, "P-384", 24)                                            \
	X(P521, "P-521", 25)                                            \
	X(FFDHE2048, "ffdhe2048", 256)                                  \
	X(FFDHE3072, "ffdhe3072", 257)                                  \
	X(FFDHE4096, "ffdhe4096", 258)                                  \
	X(FFDHE6144, "ffdhe6144", 259)                                  \
	X(FFDHE8192, "ffdhe8192", 260)

enum tls_group {
#define X(sym, name, code) TLS_GROUP_##sym = code,
	TLS_GROUPS(X)
#undef X
};

/* At most this many groups in [tls] groups (each may appear once). */
#define CONFIG_MAX_GROUPS 10

/* The default of [tls] groups. */
extern const char config_default_groups[];

/*
 * Parse a colon-separated [tls] groups list ("X25519:P-256") into TLS
 * NamedGroup codes, most preferred first: codes has room for
 * CONFIG_MAX_GROUPS, *n gets the count. Names are matched without regard
 * to case; secp256r1, prime256v1, secp384r1 and secp521r1 are taken as
 * P-256, P-384 and P-521. Returns 0, or -1 with a message naming the
 * refused group and the allowed ones in err.
 */
int config_parse_groups(const char *list, int *codes, unsigned *n,
    char *err, size_t errlen);

/* config_parse_groups() as an option check: 0 or -1 with err. */
int config_check_groups(const char *list, char *err, size_t errlen);

/* The name moat uses for a TLS NamedGroup code, or NULL. */
const char *config_group_name(int code);

/*
 * Parse an [identity] password value: "none", "hmac" or "file:PATH" with a
 * non-empty PATH. Returns 0 with the kind in *kind and, for file:, *file
 * pointing at PATH inside value (else NULL); -1 when value is none of
 * these. The one parser of the setting: config_load() checks with it and
 * identity_rules_new() takes the kind and the path from it.
 */
int config_parse_password(const char *value, enum identity_password *kind,
    const char **file);

/* Print every section and option with its default and help text. */
void config_print_reference(FILE *out);

#endif
