/* SPDX-License-Identifier: MIT */
/*
 * Inside the configuration room: the option table (options.c) and what
 * its rows refer to, shared with the loader (config.c). Not for use
 * outside those two.
 */
#ifndef MOAT_CONFIG_OPTS_H
#define MOAT_CONFIG_OPTS_H

#include <stddef.h>
#include <stdint.h>

#define SEC 1000ULL
#define MINUTE (60 * SEC)
#define HOUR (60 * MINUTE)

#define DEFAULT_CIPHERS                                                 \
	"TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"                  \
	"TLS13-CHACHA20-POLY1305-SHA256:"                                   \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"        \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"        \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/*
 * Every suite [tls] ciphers may name: authenticated encryption (AES-GCM,
 * ChaCha20-Poly1305, and AES-CCM in TLS 1.3) with a forward-secret key
 * exchange (TLS 1.3, ECDHE, DHE).
 */
#define ALLOWED_CIPHERS                                                 \
	"TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"                  \
	"TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-CCM-SHA256:"           \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"      \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256:"        \
	"ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305:"          \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"              \
	"DHE-RSA-CHACHA20-POLY1305"

#define DEFAULT_GROUPS "X25519:P-256"

/* Every name [tls] groups may use (and secp256r1, prime256v1, ...). */
#define ALLOWED_GROUPS                                                  \
	"X25519, X448, P-256, P-384, P-521, ffdhe2048, ffdhe3072, "         \
	"ffdhe4096, ffdhe6144, ffdhe8192"

enum opt_type {
	OPT_PATH,
	OPT_STRING,
	OPT_ENUM,
	OPT_DURATION,
	OPT_COUNT,
};

#define OPT_REQUIRED 0x1          /* no default: the file must set it */
#define OPT_REPEAT   0x2          /* may appear up to max_repeat times */
#define OPT_ZERO_OK  0x4          /* 0 allowed besides min..max ("off") */
#define OPT_AUTO     0x8          /* OPT_COUNT: "auto" allowed, stored as 0 */
#define OPT_EMPTY_OK 0x10         /* an empty value is a value ("none") */

struct opt_value {
	const char *name;
	int value;
};

struct opt {
	const char *section;
	const char *key;
	enum opt_type type;
	size_t offset;                /* char *, int, uint64_t in config */
	size_t count_offset;          /* OPT_REPEAT: unsigned count */
	size_t lines_offset;          /* OPT_REPEAT: int line per value */
	unsigned max_repeat;
	uint64_t min, max;            /* OPT_DURATION (ms), OPT_COUNT */
	const char *def;              /* default as written in moat.ini */
	unsigned flags;
	const struct opt_value *values;   /* OPT_ENUM, NULL-terminated */
	const char *why;              /* OPT_ENUM: why others are refused */
	/* Full check of a string value; messages name the value. */
	int (*check)(const char *value, char *err, size_t errlen);
	const char *arg;              /* placeholder in the reference */
	const char *what;             /* "the PEM file with ..." */
	const char *help;
};

/* The rows, one per option, grouped by section in the order of the
 * reference (--help) and of etc/moat.ini (options.c). */
extern const struct opt config_opts[];
extern const size_t config_nopts;

/* The .check functions of the rows (config.c): 0, or -1 with what is
 * wrong in err. */
int config_check_listen(const char *value, char *err, size_t errlen);
int config_check_backend(const char *value, char *err, size_t errlen);
int config_check_source(const char *value, char *err, size_t errlen);
int config_check_password(const char *value, char *err, size_t errlen);
int config_check_user(const char *value, char *err, size_t errlen);
int config_check_group(const char *value, char *err, size_t errlen);
int config_check_admin(const char *value, char *err, size_t errlen);
int config_check_publish(const char *value, char *err, size_t errlen);
int config_check_subscribe(const char *value, char *err, size_t errlen);

#endif
