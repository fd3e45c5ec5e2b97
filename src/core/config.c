/* SPDX-License-Identifier: MIT */
/*
 * moat.ini -> struct config. One table row per option (section, key, type,
 * where it is stored, bounds, default, help) drives the parser, the
 * validator, the defaults and the reference printed by --help, so they
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

#include "moat/addr.h"
#include "moat/config.h"
#include "moat/inifile.h"
#include "moat/mqtt.h"
#include "moat/policy.h"
#include "moat/text.h"

/* A config file bigger than this is surely the wrong file. */
#define FILE_MAX (1024 * 1024)
#define MSG_MAX 1024
/* Values are echoed in messages at most this long. */
#define ECHO_MAX 80

#define SEC 1000ULL
#define MINUTE (60 * SEC)
#define HOUR (60 * MINUTE)

#define DEFAULT_CIPHERS                                                 \
	"TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"                  \
	"TLS13-CHACHA20-POLY1305-SHA256:"                                   \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"        \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"        \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

const char config_default_ciphers[] = DEFAULT_CIPHERS;

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

static int check_listen(const char *, char *, size_t);
static int check_backend(const char *, char *, size_t);
static int check_password(const char *, char *, size_t);
static int check_user(const char *, char *, size_t);
static int check_group(const char *, char *, size_t);
static int check_admin(const char *, char *, size_t);
static int check_publish(const char *, char *, size_t);
static int check_subscribe(const char *, char *, size_t);

static const struct opt_value id_sources[] = {
#define X(name, text) { text, ID_SRC_##name },
	IDENTITY_SOURCES(X)
#undef X
	{ NULL, 0 },
};

static const struct opt_value id_client_ids[] = {
#define X(name, text) { text, ID_CID_##name },
	IDENTITY_CLIENT_ID(X)
#undef X
	{ NULL, 0 },
};

static const struct opt_value id_unknown[] = {
	{ "reject", 0 },
	{ "template", 1 },
	{ NULL, 0 },
};

static const struct opt_value tls_versions[] = {
	{ "1.2", 12 },
	{ "1.3", 13 },
	{ NULL, 0 },
};

static const struct opt_value refuse_accept[] = {
	{ "refuse", 0 },
	{ "accept", 1 },
	{ NULL, 0 },
};

static const struct opt_value false_true[] = {
	{ "false", 0 },
	{ "true", 1 },
	{ NULL, 0 },
};

static const struct opt_value policy_denied[] = {
#define X(name, text) { text, POLICY_DENIED_##name },
	POLICY_ON_DENIED(X)
#undef X
	{ NULL, 0 },
};

static const struct opt_value log_levels[] = {
	{ "error", LOG_LVL_ERROR },
	{ "warn", LOG_LVL_WARN },
	{ "info", LOG_LVL_INFO },
	{ "debug", LOG_LVL_DEBUG },
	{ NULL, 0 },
};

static const struct opt_value log_formats[] = {
	{ "text", LOG_FMT_TEXT },
	{ "json", LOG_FMT_JSON },
	{ NULL, 0 },
};

static const struct opt_value on_duplicates[] = {
#define X(name, text) { text, DUP_##name },
	LIMITS_ON_DUPLICATE(X)
#undef X
	{ NULL, 0 },
};

/* Enums are stored through an int *. */
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum identity_source) == sizeof(int), "enum size");
_Static_assert(sizeof(enum identity_client_id) == sizeof(int), "enum size");
_Static_assert(sizeof(enum log_format) == sizeof(int), "enum size");
_Static_assert(sizeof(enum on_duplicate) == sizeof(int), "enum size");
_Static_assert(sizeof(enum policy_on_denied) == sizeof(int), "enum size");

#define OFF(f) offsetof(struct config, f)

/*
 * The rows of a section stay together; their order is the order of the
 * reference (--help) and of etc/moat.ini.
 */
static const struct opt opts[] = {
	{
		.section = "listen", .key = "address", .type = OPT_STRING,
		.offset = OFF(listen), .count_offset = OFF(nlisten),
		.lines_offset = OFF(listen_line),
		.max_repeat = CONFIG_MAX_LISTEN, .flags = OPT_REPEAT,
		.def = "0.0.0.0:8883", .check = check_listen,
		.arg = "ADDRESS:PORT",
		.what = "an address and port such as 0.0.0.0:8883",
		.help = "Address and port on which moat accepts TLS "
		    "connections from devices: an IPv4 address, an IPv6 "
		    "address in brackets ([::]:8883), or * for every IPv4 "
		    "address. Host names are not accepted. 8883 is the "
		    "registered port for MQTT over TLS. Repeat the line to "
		    "listen on several addresses (at most 16).",
	}, {
		.section = "tls", .key = "cert", .type = OPT_PATH,
		.offset = OFF(tls_cert), .flags = OPT_REQUIRED,
		.arg = "PATH",
		.what = "the PEM file with the server certificate chain",
		.help = "PEM file with the server certificate, followed by "
		    "the intermediate CA certificates that devices need to "
		    "verify it, leaf first.",
	}, {
		.section = "tls", .key = "key", .type = OPT_PATH,
		.offset = OFF(tls_key), .flags = OPT_REQUIRED,
		.arg = "PATH",
		.what = "the PEM file with the server's private key",
		.help = "PEM file with the private key of the server "
		    "certificate. Make it readable by the moat user only "
		    "(mode 0600); moat never logs it.",
	}, {
		.section = "tls", .key = "ca", .type = OPT_PATH,
		.offset = OFF(tls_ca), .flags = OPT_REQUIRED,
		.arg = "PATH",
		.what = "the PEM bundle of the CAs that issue device "
		    "certificates",
		.help = "PEM bundle of the CA certificates that device "
		    "certificates must chain to. Every device needs a valid "
		    "certificate from one of these CAs. Use a private CA "
		    "for devices, never a public web CA: anyone can get a "
		    "certificate from those. Each certificate in it must be "
		    "a CA (v3, basicConstraints CA:TRUE).",
	}, {
		.section = "tls", .key = "crl", .type = OPT_PATH,
		.offset = OFF(tls_crl), .arg = "PATH",
		.what = "the PEM certificate revocation list of the device CA",
		.help = "PEM certificate revocation list (CRL) of the device "
		    "CA. When set, revoked device certificates are refused. "
		    "Unset by default: then a stolen device certificate "
		    "stays usable until it expires. Replace the file and "
		    "reload moat when the CA publishes a new CRL. A CRL past "
		    "its nextUpdate is refused; --check warns 7 days "
		    "before.",
	}, {
		.section = "tls", .key = "min_version", .type = OPT_ENUM,
		.offset = OFF(tls_min_version), .def = "1.2",
		.values = tls_versions,
		.why = "TLS 1.0 and 1.1 are deprecated (RFC 8996): they lack "
		    "modern AEAD cipher suites and have known weaknesses",
		.arg = "1.2 | 1.3",
		.what = "1.2 or 1.3",
		.help = "Lowest TLS version devices may use. 1.2 (the "
		    "default) still admits older device TLS stacks; choose "
		    "1.3 when every device supports it. TLS 1.0 and 1.1 are "
		    "never accepted.",
	}, {
		.section = "tls", .key = "ciphers", .type = OPT_STRING,
		.offset = OFF(tls_ciphers), .check = config_check_ciphers,
		.arg = "SUITE:SUITE:...",
		.what = "a colon-separated list of wolfSSL cipher suite names",
		.help = "Colon-separated wolfSSL cipher suite names, most "
		    "preferred first. Unset means moat's list, which has "
		    "only forward-secret, authenticated-encryption suites: "
		    DEFAULT_CIPHERS ". Only these AEAD, forward-secret "
		    "suites are accepted: " ALLOWED_CIPHERS "; NULL, "
		    "integrity-only, anonymous, CBC, SHA-1, export, RC4, DES, "
		    "3DES, MD5 and PSK suites are refused.",
	}, {
		.section = "tls", .key = "min_rsa_bits", .type = OPT_COUNT,
		.offset = OFF(tls_min_rsa_bits), .min = 1024, .max = 16384,
		.def = "2048", .arg = "BITS", .what = "a key size such as 2048",
		.help = "Smallest RSA key a device certificate may have, in "
		    "bits (1024 to 16384). Smaller keys are refused in the "
		    "handshake and by moat explain, with a reason naming "
		    "this option. Lower it only for old devices that cannot "
		    "be reissued; wolfSSL itself never accepts fewer than "
		    "1024 bits.",
	}, {
		.section = "tls", .key = "min_ecc_bits", .type = OPT_COUNT,
		.offset = OFF(tls_min_ecc_bits), .min = 160, .max = 521,
		.def = "256", .arg = "BITS", .what = "a key size such as 256",
		.help = "Smallest ECC key (curve size) a device certificate "
		    "may have, in bits (160 to 521); P-256 has 256. Smaller "
		    "curves are refused in the handshake and by moat "
		    "explain. wolfSSL may refuse small curves on its own.",
	}, {
		.section = "tls", .key = "sha1_signatures", .type = OPT_ENUM,
		.offset = OFF(tls_sha1_signatures), .def = "refuse",
		.values = refuse_accept, .arg = "refuse | accept",
		.what = "refuse or accept",
		.help = "Whether a device certificate signed with SHA-1 "
		    "(sha1WithRSAEncryption, ecdsa-with-SHA1) is accepted. "
		    "refuse (the default) refuses it in the handshake and in "
		    "moat explain. MD5 and older signatures are always "
		    "refused.",
	}, {
		.section = "tls", .key = "close_on_cert_expiry",
		.type = OPT_ENUM, .offset = OFF(tls_close_on_cert_expiry),
		.def = "true", .values = false_true, .arg = "true | false",
		.what = "true or false",
		.help = "Close a device's connection when its certificate's "
		    "notAfter passes (MQTT 5 devices first receive "
		    "DISCONNECT 0x98). true (the default): a certificate "
		    "admits a device only while it is valid, also for a "
		    "session that outlives it.",
	}, {
		.section = "backend", .key = "address", .type = OPT_STRING,
		.offset = OFF(backend), .def = "127.0.0.1:1883",
		.check = check_backend, .arg = "HOST:PORT | unix:/PATH",
		.what = "the broker's loopback address, such as 127.0.0.1:1883",
		.help = "The broker that moat forwards decrypted MQTT to: "
		    "host:port, [::1]:port or unix:/absolute/path. The "
		    "traffic is plaintext and carries the broker "
		    "credentials, so only loopback addresses (127.0.0.0/8, "
		    "::1) and Unix sockets are accepted; a host name must "
		    "resolve to loopback only. Bind the broker to 127.0.0.1 "
		    "so it cannot be reached from outside.",
	}, {
		.section = "limits", .key = "handshake_timeout",
		.type = OPT_DURATION, .offset = OFF(handshake_timeout_ms),
		.min = 1 * SEC, .max = 5 * MINUTE, .def = "10s",
		.arg = "DURATION", .what = "a duration such as 10s",
		.help = "Time a device has to complete the TLS handshake "
		    "after connecting. Unauthenticated peers cost memory "
		    "while they wait, so keep it short (1s to 5m).",
	}, {
		.section = "limits", .key = "connect_timeout",
		.type = OPT_DURATION, .offset = OFF(connect_timeout_ms),
		.min = 1 * SEC, .max = 5 * MINUTE, .def = "10s",
		.arg = "DURATION", .what = "a duration such as 10s",
		.help = "Time from the end of the TLS handshake until the "
		    "broker connection is up and the device's MQTT CONNECT "
		    "has arrived (1s to 5m).",
	}, {
		.section = "limits", .key = "idle_timeout",
		.type = OPT_DURATION, .offset = OFF(idle_timeout_ms),
		.min = 1 * SEC, .max = 24 * HOUR, .flags = OPT_ZERO_OK,
		.def = "0", .arg = "DURATION",
		.what = "a duration such as 10m, or 0 for none",
		.help = "Close a connection after this long with no traffic "
		    "either way. 0 (the default) means never: MQTT "
		    "keep-alive already lets the broker drop silent "
		    "devices, and a timeout shorter than the devices' "
		    "keep-alive interval would cut healthy connections. "
		    "Otherwise 1s to 24h.",
	}, {
		.section = "limits", .key = "max_connection_lifetime",
		.type = OPT_DURATION, .offset = OFF(max_lifetime_ms),
		.min = 1 * SEC, .max = 365 * 24 * HOUR, .flags = OPT_ZERO_OK,
		.def = "0", .arg = "DURATION",
		.what = "a duration such as 24h, or 0 for none",
		.help = "Close a connection this long after it was accepted "
		    "(MQTT 5 devices first receive DISCONNECT 0x98), so that "
		    "devices reconnect now and then and meet the current "
		    "configuration in full. 0 (the default) means never. "
		    "Otherwise 1s to 365 days.",
	}, {
		.section = "limits", .key = "drain_timeout",
		.type = OPT_DURATION, .offset = OFF(drain_timeout_ms),
		.min = 1 * SEC, .max = HOUR, .flags = OPT_ZERO_OK,
		.def = "20s", .arg = "DURATION",
		.what = "a duration such as 20s, or 0 for none",
		.help = "On SIGTERM or SIGINT moat stops accepting and lets "
		    "live connections run for up to this long before it "
		    "closes them (MQTT 5 devices first receive DISCONNECT "
		    "0x8B, server shutting down). The default, 20s, ends "
		    "within Kubernetes' default grace period of 30 s with "
		    "time to spare for those last packets. 0 closes them at "
		    "once; otherwise 1s to 1h. A second signal stops at "
		    "once.",
	}, {
		.section = "limits", .key = "max_connections",
		.type = OPT_COUNT, .offset = OFF(max_connections),
		.min = 1, .max = 1000000, .def = "10000",
		.arg = "NUMBER", .what = "a number such as 10000",
		.help = "Most devices connected at once after a completed "
		    "TLS handshake; a device that completes its handshake "
		    "beyond this is closed then, and moat logs why. Each one "
		    "holds buffers and a broker connection, so this bounds "
		    "memory and shields the broker (1 to 1000000). "
		    "Connections still in the handshake count against "
		    "max_handshakes instead. moat needs two file descriptors "
		    "per connection: raise the open-file limit to match.",
	}, {
		.section = "limits", .key = "max_handshakes_per_address",
		.type = OPT_COUNT, .offset = OFF(max_handshakes_per_address),
		.min = 1, .max = 1000000, .def = "64",
		.arg = "NUMBER", .what = "a number such as 64",
		.help = "Most connections one source address (an IPv6 /64 "
		    "counts as one address) may have in the TLS handshake "
		    "at once; when another arrives, the oldest of them is "
		    "closed. So one host that opens connections and never "
		    "finishes the handshake can take at most this much of "
		    "max_handshakes, and a device behind the same NAT still "
		    "gets its turn. Devices behind one NAT that reconnect "
		    "all at once share this budget: raise it for such "
		    "fleets (1 to 1000000).",
	}, {
		.section = "limits", .key = "max_handshakes",
		.type = OPT_COUNT, .offset = OFF(max_handshakes),
		.min = 1, .max = 1000000, .def = "1024",
		.arg = "NUMBER", .what = "a number such as 1024",
		.help = "Most connections in the TLS handshake at once, from "
		    "all addresses, apart from the max_connections slots of "
		    "authenticated devices; when another arrives, the "
		    "oldest handshake is closed. Each one costs memory and "
		    "a file descriptor until handshake_timeout. 1024 lets "
		    "a thousand devices reconnect at once, while a flood "
		    "must open 1024 connections within one device's "
		    "handshake to push it out (1 to 1000000).",
	}, {
		.section = "limits", .key = "max_connections_per_identity",
		.type = OPT_COUNT, .offset = OFF(max_conns_per_identity),
		.min = 0, .max = LIMITS_MAX_CONNS_PER_IDENTITY, .def = "0",
		.arg = "NUMBER | 0",
		.what = "a number such as 1, or 0 for no limit",
		.help = "Most connections one identity may have open at once "
		    "after its CONNECT, across all workers; on_duplicate says "
		    "what a connection beyond it does. One device usually "
		    "needs one: a second is a stolen certificate, a clone, or "
		    "a device reconnecting before its old connection timed "
		    "out. 0 (the default) means no limit. Otherwise 1 to "
		    "1000000. An identity's entry in the map may set its own "
		    "(max_connections_per_identity = N there). A reload "
		    "applies a changed limit to new connections; open ones "
		    "stay, but count.",
	}, {
		.section = "limits", .key = "on_duplicate", .type = OPT_ENUM,
		.offset = OFF(on_duplicate), .def = "replace",
		.values = on_duplicates, .arg = "replace | refuse",
		.what = "replace or refuse",
		.help = "What happens when a connection would exceed "
		    "max_connections_per_identity. replace (the default): the "
		    "new connection goes on to the broker and the oldest of "
		    "that identity is closed (reason=session_taken_over; MQTT "
		    "5 devices first receive DISCONNECT 0x8E, session taken "
		    "over), so a device that reconnects after a network "
		    "change is never locked out by its own stale connection. "
		    "refuse: the new connection gets CONNACK 0x03 (server "
		    "unavailable; MQTT 5: 0x97, quota exceeded) and is closed "
		    "(reason=too_many_per_identity), so a cloned certificate "
		    "cannot push the device off. An identity's entry in the "
		    "map may set its own.",
	}, {
		.section = "limits", .key = "max_connect_size",
		.type = OPT_COUNT, .offset = OFF(max_connect_size),
		.min = 256, .max = 16 * 1024 * 1024, .def = "65536",
		.arg = "BYTES", .what = "a size in bytes such as 65536",
		.help = "Largest MQTT CONNECT packet a device may send, in "
		    "bytes (256 to 16777216). moat holds the CONNECT in "
		    "memory until it is whole, before the device is "
		    "authorised to the broker, so this bounds what an "
		    "unauthorised peer can make moat allocate. Larger "
		    "CONNECTs get CONNACK 0x95 (MQTT 5) or are closed.",
	}, {
		.section = "limits", .key = "max_packet_size",
		.type = OPT_COUNT, .offset = OFF(max_packet_size),
		.min = 1024, .max = MQTT_REMAINING_MAX + 5, .def = "1048576",
		.arg = "BYTES", .what = "a size in bytes such as 1048576",
		.help = "Largest MQTT packet a device may send after its "
		    "CONNECT, in bytes, fixed header included (1024 to "
		    "268435460, MQTT's own limit). moat reads every packet "
		    "a device sends; one it must judge whole (a PUBLISH "
		    "under topic policy, a SUBSCRIBE) is held in memory "
		    "until it is, so this bounds what one device can make "
		    "moat hold. A larger packet closes the connection "
		    "(MQTT 5: DISCONNECT 0x95, packet too large). The "
		    "default, 1 MiB, fits telemetry and small firmware "
		    "chunks.",
	}, {
		.section = "limits", .key = "max_publish_size",
		.type = OPT_COUNT, .offset = OFF(max_publish_size),
		.max = MQTT_REMAINING_MAX, .flags = OPT_ZERO_OK,
		.def = "0", .arg = "BYTES",
		.what = "a size in bytes such as 65536, or 0 for none",
		.help = "Largest PUBLISH a device may send, in bytes after "
		    "the fixed header (topic, properties and payload); a "
		    "larger one closes the connection (MQTT 5: DISCONNECT "
		    "0x95). 0 (the default) leaves only max_packet_size.",
	}, {
		.section = "limits", .key = "publish_rate",
		.type = OPT_COUNT, .offset = OFF(publish_rate),
		.max = LIMITS_PUBLISH_RATE_MAX, .flags = OPT_ZERO_OK, .def = "0",
		.arg = "NUMBER", .what = "messages per second, or 0 for none",
		.help = "PUBLISH packets an identity may send per second, "
		    "on average, all its connections on every worker "
		    "together. Over it, moat stops reading from the "
		    "device until the rate allows more, so TCP slows it "
		    "down: nothing is dropped and nothing disconnected. 0 "
		    "(the default) means no limit; otherwise 1 to 1000000.",
	}, {
		.section = "limits", .key = "publish_burst",
		.type = OPT_COUNT, .offset = OFF(publish_burst),
		.max = LIMITS_PUBLISH_RATE_MAX, .flags = OPT_ZERO_OK, .def = "0",
		.arg = "NUMBER", .what = "a number of messages, or 0",
		.help = "PUBLISH packets an identity may send at once, above "
		    "publish_rate, after it has been quiet. 0 (the default) "
		    "allows one second's worth, publish_rate messages.",
	}, {
		.section = "limits", .key = "publish_bytes_rate",
		.type = OPT_COUNT, .offset = OFF(publish_bytes_rate),
		.max = LIMITS_PUBLISH_BYTES_MAX, .flags = OPT_ZERO_OK, .def = "0",
		.arg = "BYTES", .what = "bytes per second, or 0 for none",
		.help = "PUBLISH bytes an identity may send per second "
		    "(one second's worth at once), slowed like "
		    "publish_rate. 0 (the default) means no limit.",
	}, {
		.section = "identity", .key = "source", .type = OPT_ENUM,
		.offset = OFF(id_source), .def = "cn", .values = id_sources,
		.arg = "FIELD",
		.what = "cn, dn, san-dns, san-uri, san-email, serial or "
		    "fingerprint",
		.help = "Which field of the verified device certificate names "
		    "the device: the subject CN, the whole subject DN "
		    "(RFC 4514), the first SAN of a type (DNS, URI such as "
		    "a SPIFFE ID, email), the serial number (upper-case "
		    "hex) or the SHA-256 fingerprint (lower-case hex).",
	}, {
		.section = "identity", .key = "pattern", .type = OPT_STRING,
		.offset = OFF(id_pattern), .arg = "REGEX",
		.what = "a POSIX extended regular expression",
		.help = "Optional POSIX extended regular expression that "
		    "must match the whole source value (as if written "
		    "^...$). The identity is its first group when it has "
		    "one, else the whole value. A value that does not "
		    "match is an unknown identity.",
	}, {
		.section = "identity", .key = "username", .type = OPT_STRING,
		.offset = OFF(id_username), .def = "{identity}",
		.arg = "TEMPLATE", .what = "a template such as dev-{identity}",
		.help = "Broker username moat puts into the CONNECT. "
		    "Placeholders: {identity} {cn} {serial} {fingerprint}. "
		    "The device's own username never reaches the broker.",
	}, {
		.section = "identity", .key = "password", .type = OPT_STRING,
		.offset = OFF(id_password), .def = "none",
		.check = check_password,
		.arg = "none | hmac | file:PATH",
		.what = "none, hmac or file:PATH",
		.help = "Broker password moat puts into the CONNECT: none; "
		    "hmac, the base64url HMAC-SHA256 of the username keyed "
		    "with hmac_secret_file, so the broker's password file "
		    "can be made offline with moat passwd; or file:PATH, "
		    "one password read from a file. The device's own "
		    "password never reaches the broker.",
	}, {
		.section = "identity", .key = "hmac_secret_file",
		.type = OPT_PATH, .offset = OFF(id_hmac_secret_file),
		.arg = "PATH", .what = "the file with the HMAC secret",
		.help = "File with the secret for password = hmac (at least "
		    "16 bytes; trailing newlines are ignored). Keep it "
		    "readable by moat only.",
	}, {
		.section = "identity", .key = "client_id", .type = OPT_ENUM,
		.offset = OFF(id_client_id), .def = "identity",
		.values = id_client_ids,
		.arg = "POLICY",
		.what = "identity, keep, prefix, require-equal or "
		    "require-prefix",
		.help = "MQTT client id policy. identity (the default) "
		    "replaces the device's client id with its identity, so "
		    "no device can take over another's session; keep "
		    "passes the device's own (so a device can take over "
		    "another's session); prefix puts the identity and ':' "
		    "in front of it; require-equal and require-prefix "
		    "refuse (CONNACK 0x02 / 0x85) a device whose client id "
		    "is not its identity, or not its identity alone or "
		    "followed by ':'. With the prefix policies an identity "
		    "that contains ':' is refused, so that no two devices "
		    "can end up with the same client id.",
	}, {
		.section = "identity", .key = "unknown", .type = OPT_ENUM,
		.offset = OFF(id_unknown_template), .def = "reject",
		.values = id_unknown, .arg = "reject | template",
		.what = "reject or template",
		.help = "What happens to a verified certificate whose "
		    "identity has no entry in the map: reject (the "
		    "default) answers CONNACK not-authorised; template "
		    "lets the username and password templates apply to "
		    "any certificate from the CA.",
	}, {
		.section = "identity", .key = "map", .type = OPT_PATH,
		.offset = OFF(id_map), .arg = "PATH",
		.what = "the identity map file",
		.help = "INI file with one section per identity value, "
		    "such as [sensor-42], with optional username, "
		    "password, client_id and deny = true (a quick way to "
		    "revoke one device).",
	}, {
		.section = "policy", .key = "publish", .type = OPT_STRING,
		.offset = OFF(policy_publish), .flags = OPT_EMPTY_OK,
		.check = check_publish, .arg = "RULE, RULE, ...",
		.what = "topic rules such as devices/{identity}/#",
		.help = "Topics a device may publish to: MQTT filters, "
		    "comma-separated, with the placeholders {identity} {cn} "
		    "{serial} {fingerprint}, such as devices/{identity}/#. "
		    "Empty: none. Setting publish or subscribe turns the "
		    "topic policy on and requires both. No [policy] section "
		    "(or one without them) means \"topic policy off: the "
		    "broker's ACL is the only guard\". A device whose "
		    "placeholder values hold '/', '+' or '#' is refused. Map "
		    "entries may set their own publish and subscribe.",
	}, {
		.section = "policy", .key = "subscribe", .type = OPT_STRING,
		.offset = OFF(policy_subscribe), .flags = OPT_EMPTY_OK,
		.check = check_subscribe, .arg = "RULE, RULE, ...",
		.what = "topic rules such as devices/{identity}/#",
		.help = "Filters a device may subscribe to, written as for "
		    "publish. A filter is allowed only when the rules "
		    "together match every topic it can match, so #, +/... "
		    "and $SYS/# are refused unless rules cover them. "
		    "$share/GROUP/FILTER is judged on FILTER. Empty: none.",
	}, {
		.section = "policy", .key = "on_denied_publish",
		.type = OPT_ENUM, .offset = OFF(policy_on_denied),
		.def = "disconnect", .values = policy_denied,
		.arg = "disconnect | drop", .what = "disconnect or drop",
		.help = "A refused PUBLISH from an MQTT 3.1.1 device, which "
		    "cannot be told no: disconnect (the default) closes the "
		    "connection; drop discards it, acknowledging QoS 1 and 2 "
		    "so the device does not resend it forever. MQTT 5 "
		    "devices get reason 0x87.",
	}, {
		.section = "log", .key = "level", .type = OPT_ENUM,
		.offset = OFF(log_level), .def = "info", .values = log_levels,
		.arg = "error | warn | info | debug",
		.what = "error, warn, info or debug",
		.help = "Least severe messages that are written. info logs "
		    "each connection's outcome; debug adds per-connection "
		    "detail such as resets and is noisy.",
	}, {
		.section = "log", .key = "format", .type = OPT_ENUM,
		.offset = OFF(log_format), .def = "text", .values = log_formats,
		.arg = "text | json", .what = "text or json",
		.help = "text writes one readable line per event; json writes "
		    "one JSON object per line for log collectors. Logs go "
		    "to standard error.",
	}, {
		.section = "process", .key = "workers", .type = OPT_COUNT,
		.offset = OFF(workers), .min = 1, .max = 256, .def = "auto",
		.flags = OPT_AUTO, .arg = "auto | NUMBER",
		.what = "auto or a number such as 2",
		.help = "Worker threads, each with its own event loop and its "
		    "own listening sockets on every [listen] address "
		    "(SO_REUSEPORT; moat steers each source address, or "
		    "IPv6 /64, to one worker). auto starts one per CPU; 1 "
		    "to 256 sets the number. max_connections, "
		    "max_handshakes and max_handshakes_per_address hold for "
		    "moat as a whole, not per worker. A reload keeps the "
		    "running number; changing it takes a restart.",
	}, {
		.section = "process", .key = "user", .type = OPT_STRING,
		.offset = OFF(user), .check = check_user, .arg = "NAME",
		.what = "the name of an account, such as moat",
		.help = "Account moat runs as once it has bound its listening "
		    "sockets and read its certificate, key and files. "
		    "Started as root, moat then drops to this user and its "
		    "group for good (supplementary groups cleared, no way "
		    "back) before it serves any device; reloads read files "
		    "as this user, and --check warns about each file this "
		    "user cannot read. Started as any other user, moat can "
		    "only run as itself: a different user is an error. "
		    "Unset (the default): moat stays the user it was started "
		    "as. Changing it takes a restart.",
	}, {
		.section = "process", .key = "group", .type = OPT_STRING,
		.offset = OFF(group), .check = check_group, .arg = "NAME",
		.what = "the name of a group, such as moat",
		.help = "Group moat runs as with user; unset (the default) "
		    "means the user's primary group. Needs user.",
	}, {
		.section = "process", .key = "watch_files", .type = OPT_ENUM,
		.offset = OFF(watch_files), .def = "true",
		.values = false_true, .arg = "true | false",
		.what = "true or false",
		.help = "Reload by itself when moat.ini or a file it names "
		    "([tls] cert, key, ca, crl; [identity] map, "
		    "hmac_secret_file, password file) changes, as SIGHUP "
		    "does: moat watches the directories that hold them, so "
		    "a file edited in place, one renamed over the old one "
		    "and a Kubernetes Secret or ConfigMap update are all "
		    "seen. It waits until the files have been quiet for "
		    "half a second and reloads only when their contents "
		    "differ from what it last read. false: reload only on "
		    "SIGHUP.",
	}, {
		.section = "admin", .key = "address", .type = OPT_STRING,
		.offset = OFF(admin_address), .def = "off",
		.check = check_admin, .arg = "off | ADDRESS:PORT",
		.what = "off or a loopback address such as 127.0.0.1:9883",
		.help = "Plain HTTP endpoint for probes and monitoring: "
		    "/healthz (every worker loop is alive), /readyz "
		    "(listening, the broker answers, not draining), "
		    "/metrics (Prometheus text) and /connections (JSON). "
		    "It has no authentication, "
		    "so keep it on loopback, such as 127.0.0.1:9883; any "
		    "other address must be set explicitly and --check "
		    "warns that it is reachable from outside. off (the "
		    "default): no endpoint, no port opened.",
	},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

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

	for (i = 0; i < NOPTS; i++)
		if (strcmp(opts[i].section, section) == 0 &&
		    strcmp(opts[i].key, key) == 0)
			return (&opts[i]);
	return (NULL);
}

static int
section_known(const char *section)
{
	size_t i;

	for (i = 0; i < NOPTS; i++)
		if (strcmp(opts[i].section, section) == 0)
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
	for (i = 0; i < NOPTS; i++) {
		if (i > 0 && strcmp(opts[i].section, opts[i - 1].section) == 0)
			continue;
		if (i > 0)
			append(buf, len, ", ");
		append(buf, len, "[");
		append(buf, len, opts[i].section);
		append(buf, len, "]");
	}
}

/* "cert, key, ca" for one section. */
static void
list_keys(const char *section, char *buf, size_t len)
{
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < NOPTS; i++) {
		if (strcmp(opts[i].section, section) != 0)
			continue;
		if (buf[0] != '\0')
			append(buf, len, ", ");
		append(buf, len, opts[i].key);
	}
}

/* "[tls]" or "[listen] or [backend]": the sections that have key. */
static int
sections_of(const char *key, char *buf, size_t len)
{
	size_t i;
	int n = 0;

	buf[0] = '\0';
	for (i = 0; i < NOPTS; i++) {
		if (strcmp(opts[i].key, key) != 0)
			continue;
		if (n++ > 0)
			append(buf, len, " or ");
		append(buf, len, "[");
		append(buf, len, opts[i].section);
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

static int
check_listen(const char *value, char *err, size_t errlen)
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

static int
check_password(const char *value, char *err, size_t errlen)
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

static int
check_user(const char *value, char *err, size_t errlen)
{
	return (check_account("user", value, err, errlen));
}

static int
check_group(const char *value, char *err, size_t errlen)
{
	return (check_account("group", value, err, errlen));
}

/*
 * Syntax and the loopback rule on literals only: a host name is resolved
 * once, when the snapshot is built (snapshot.c), never while loading.
 */
/* [admin] address: off, or a listen address with a real port. */
static int
check_admin(const char *value, char *err, size_t errlen)
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

static int
check_publish(const char *value, char *err, size_t errlen)
{
	return (policy_list_check(POLICY_PUBLISH, value, err, errlen));
}

static int
check_subscribe(const char *value, char *err, size_t errlen)
{
	return (policy_list_check(POLICY_SUBSCRIBE, value, err, errlen));
}

static int
check_backend(const char *value, char *err, size_t errlen)
{
	struct addr a;

	return (addr_parse_backend(value, &a, err, errlen));
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
	row = (size_t)(o - opts);
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

	for (i = 0; i < NOPTS; i++) {
		o = &opts[i];
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
	    "on_denied_publish") - opts] != 0) {
		snprintf(err, errlen, "%s: [policy] on_denied_publish is set "
		    "but there are no publish and subscribe rules, so topic "
		    "policy is off; add them, or delete on_denied_publish",
		    config_where(cfg, "policy", "on_denied_publish", where,
		    sizeof(where)));
		return (-1);
	}
	return (0);
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
	    (cfg->lines = calloc(NOPTS, sizeof(*cfg->lines))) == NULL ||
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
	for (o = opts; o < opts + NOPTS; o++) {
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
		line = cfg->lines[o - opts];
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

	for (i = 0; i < NOPTS; i++) {
		o = &opts[i];
		if (i == 0 || strcmp(o->section, opts[i - 1].section) != 0)
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
