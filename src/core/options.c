/* SPDX-License-Identifier: MIT */
/*
 * The option table of moat.ini: one row per option (section, key, type,
 * where it is stored, bounds, default, help), which the loader
 * (config.c), the defaults and the reference printed by --help all read,
 * so they cannot drift apart.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include "moat/config.h"
#include "moat/mqtt.h"

#include "config_opts.h"

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
const struct opt config_opts[] = {
	{
		.section = "listen", .key = "address", .type = OPT_STRING,
		.offset = OFF(listen), .count_offset = OFF(nlisten),
		.lines_offset = OFF(listen_line),
		.max_repeat = CONFIG_MAX_LISTEN, .flags = OPT_REPEAT,
		.def = "0.0.0.0:8883", .check = config_check_listen,
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
		.section = "tls", .key = "groups", .type = OPT_STRING,
		.offset = OFF(tls_groups), .check = config_check_groups,
		.def = DEFAULT_GROUPS, .arg = "GROUP:GROUP:...",
		.what = "a colon-separated list of key exchange groups",
		.help = "Key exchange groups (ECDHE curves, X25519, X448, "
		    "finite-field groups) moat offers, most preferred first. "
		    "A device that supports none of them is refused. X25519 "
		    "costs the least CPU per handshake, so it comes first; "
		    "P-256 serves devices without it. Allowed: "
		    ALLOWED_GROUPS "; groups below 256 bits are refused, and "
		    "a group this wolfSSL build lacks is an error at start."
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
		.check = config_check_backend, .arg = "HOST:PORT | unix:/PATH",
		.what = "the broker's loopback address, such as 127.0.0.1:1883",
		.help = "The broker that moat forwards decrypted MQTT to: "
		    "host:port, [::1]:port or unix:/absolute/path. The "
		    "traffic is plaintext and carries the broker "
		    "credentials, so only loopback addresses (127.0.0.0/8, "
		    "::1) and Unix sockets are accepted; a host name must "
		    "resolve to loopback only. Bind the broker to 127.0.0.1 "
		    "so it cannot be reached from outside.",
	}, {
		.section = "backend", .key = "source", .type = OPT_STRING,
		.offset = OFF(backend_source), .check = config_check_source,
		.arg = "ADDRESS | FIRST-LAST",
		.what = "loopback addresses such as 127.0.0.2-127.0.0.9",
		.help = "The loopback addresses moat's connections to a TCP "
		    "broker come from, taken in turn: one address, or an "
		    "IPv4 range such as 127.0.0.2-127.0.0.9 (at most 256; "
		    "::1 for an IPv6 broker). Each address gives about "
		    "28,000 connections to one broker port. Unset by "
		    "default: the system picks, and connections stop near "
		    "28,000. A Unix socket backend has no such limit and "
		    "takes no source.",
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
		.check = config_check_password,
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
		.check = config_check_publish, .arg = "RULE, RULE, ...",
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
		.check = config_check_subscribe, .arg = "RULE, RULE, ...",
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
		.offset = OFF(user), .check = config_check_user, .arg = "NAME",
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
		.offset = OFF(group), .check = config_check_group, .arg = "NAME",
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
		.check = config_check_admin, .arg = "off | ADDRESS:PORT",
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

const size_t config_nopts = sizeof(config_opts) / sizeof(config_opts[0]);
