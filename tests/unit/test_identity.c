/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/core/identity.c: every identity source, patterns,
 * templates, the three password kinds (HMAC against vectors computed with
 * openssl), every client-id policy with its refusals, the map file and
 * every way it can be wrong ("FILE:LINE: ..."), the name rules that keep
 * '+', '#', '/' and bad UTF-8 away from Mosquitto's ACLs, and Mosquitto's
 * password-file line. struct config and struct cert_identity are built by
 * hand; fixtures are written to mkstemp files in /tmp, never into the
 * source tree.
 */
#include <criterion/criterion.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "moat/config.h"
#include "moat/identity.h"

/* HMAC-SHA256 key used by the vectors below. */
#define SECRET "0123456789abcdef-moat-test-secret"

/*
 * printf %s USER | openssl dgst -sha256 -mac HMAC -macopt key:SECRET \
 *     -binary | base64 | tr '+/' '-_' | tr -d '='
 */
#define HMAC_SENSOR_42 "UWEZh2WNRoaBMpnXoB3P5fOyg07wBhvTHOi2xKmK1vA"
#define HMAC_DEV_SENSOR_42 "_aYYgsO-0PvnN7nnEgdMKu5AbrNYMg6weGT4U-5gMc8"
#define HMAC_MAPPED_USER "F8Poe_AiReeIyd3sDO2k2mOtK4TlEZaWsgRd1JOd_FM"

#define FP "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

#define MAX_TMP 8

static char tmp[MAX_TMP][64];
static int ntmp;
static char err[1024];
static struct config *cfg;
static struct cert_identity cid;
static struct identity_rules *rules;
static struct identity_creds cr;

static void
setup(void)
{
	ntmp = 0;
	err[0] = '\0';
	memset(&cid, 0, sizeof(cid));
	memset(&cr, 0, sizeof(cr));
	rules = NULL;
	cfg = calloc(1, sizeof(*cfg));
	cr_assert_not_null(cfg);
	/* What config.c gives an [identity] section that sets nothing but
	 * unknown = template (there is no map in most tests). */
	cfg->id_source = ID_SRC_CN;
	cfg->id_client_id = ID_CID_IDENTITY;
	cfg->id_unknown_template = 1;
}

static void
teardown(void)
{
	int i;

	identity_rules_free(rules);
	cert_identity_clear(&cid);
	if (cfg != NULL) {
		free(cfg->path);
		free(cfg->id_pattern);
		free(cfg->id_username);
		free(cfg->id_password);
		free(cfg->id_hmac_secret_file);
		free(cfg->id_map);
		free(cfg);
	}
	for (i = 0; i < ntmp; i++)
		unlink(tmp[i]);
}

TestSuite(identity, .init = setup, .fini = teardown);

/* Write len bytes to a fresh temporary file; returns its path. */
static const char *
write_tmp_len(const char *text, size_t len)
{
	FILE *f;
	int fd;

	cr_assert_lt(ntmp, MAX_TMP);
	snprintf(tmp[ntmp], sizeof(tmp[ntmp]), "/tmp/moat-identity-XXXXXX");
	fd = mkstemp(tmp[ntmp]);
	cr_assert_neq(fd, -1);
	f = fdopen(fd, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
	return (tmp[ntmp++]);
}

static const char *
write_tmp(const char *text)
{
	return (write_tmp_len(text, strlen(text)));
}

static void
set(char **field, const char *value)
{
	free(*field);
	*field = value != NULL ? strdup(value) : NULL;
}

/* Use text as the map file; unknown identities are refused. */
static void
set_map(const char *text)
{
	set(&cfg->id_map, write_tmp(text));
	cfg->id_unknown_template = 0;
}

static void
load(void)
{
	rules = identity_rules_new(cfg, err, sizeof(err));
	cr_assert_not_null(rules, "identity_rules_new failed: %s", err);
}

/* The load must fail with an error containing want. */
static void
load_fails(const char *want)
{
	rules = identity_rules_new(cfg, err, sizeof(err));
	cr_assert_null(rules, "the load should have failed with \"%s\"", want);
	cr_assert_not_null(strstr(err, want), "error \"%s\" lacks \"%s\"",
	    err, want);
}

/* The map load must fail at line with an error containing want. */
static void
map_fails(int line, const char *want)
{
	char prefix[128];

	snprintf(prefix, sizeof(prefix), "%s:%d: ", cfg->id_map, line);
	load_fails(want);
	cr_assert_eq(strncmp(err, prefix, strlen(prefix)), 0,
	    "error \"%s\" does not start with \"%s\"", err, prefix);
}

static enum identity_verdict
map_cid(const char *device_cid, int level)
{
	return (identity_map(rules, &cid, (const uint8_t *)device_cid,
	    strlen(device_cid), level, &cr));
}

static enum identity_verdict
map_dev(void)
{
	return (map_cid("device-cid", 4));
}

static void
expect_ok(const char *identity, const char *username, const char *client_id)
{
	enum identity_verdict v = map_dev();

	cr_assert_eq(v, ID_OK, "verdict %d: %s", v, cr.why);
	cr_assert_str_eq(cr.identity, identity);
	cr_assert_str_eq(cr.username, username);
	cr_assert_str_eq(cr.client_id, client_id);
}

/* The verdict must be want with a why containing what. */
static void
expect_refused(enum identity_verdict got, enum identity_verdict want,
    const char *what)
{
	cr_assert_eq(got, want, "verdict %d, want %d (why: %s)", got, want,
	    cr.why);
	cr_assert_not_null(strstr(cr.why, what), "why \"%s\" lacks \"%s\"",
	    cr.why, what);
	cr_assert_eq(cr.has_password, 0);
}

static char **
strv(size_t n, ...)
{
	va_list ap;
	char **v = calloc(n, sizeof(*v));
	size_t i;

	cr_assert_not_null(v);
	va_start(ap, n);
	for (i = 0; i < n; i++)
		v[i] = strdup(va_arg(ap, const char *));
	va_end(ap);
	return (v);
}

/* A certificate with every field set. */
static void
full_cert(void)
{
	cid.cn = strdup("sensor-42");
	cid.dn = strdup("CN=sensor-42,O=Acme");
	cid.serial = strdup("1A2B3C");
	cid.fingerprint = strdup(FP);
	cid.issuer_cn = strdup("Acme CA");
	cid.san_dns = strv(2, "a.example.com", "b.example.com");
	cid.n_san_dns = 2;
	cid.san_uri = strv(2, "https://x.example/a",
	    "spiffe://acme/device/sensor-7");
	cid.n_san_uri = 2;
	cid.san_email = strv(1, "sensor-42@example.com");
	cid.n_san_email = 1;
	cid.san_ip = strv(1, "192.0.2.1");
	cid.n_san_ip = 1;
}

/* ------------------------------------------------------------------ */
/* Sources and patterns                                                */

Test(identity, source_cn)
{
	full_cert();
	load();
	expect_ok("sensor-42", "sensor-42", "sensor-42");
	cr_assert_str_eq(cr.rule, "template");
	cr_assert_eq(cr.has_password, 0);
}

Test(identity, source_dn_with_commas_and_quotes)
{
	const char *dn = "CN=dev\\,1,O=Acme \"Inc\",C=DE";

	cid.dn = strdup(dn);
	cfg->id_source = ID_SRC_DN;
	load();
	/* Used as it is: ',' '"' '\' and ' ' are fine in names. */
	expect_ok(dn, dn, dn);
	/* ... but MQTT 3.1 cannot carry it as a client id. */
	expect_refused(map_cid("x", 3), ID_BAD_NAME, "23 bytes");
}

Test(identity, source_dn_with_slash_is_bad_name)
{
	cid.dn = strdup("CN=a/b,O=Acme");
	cfg->id_source = ID_SRC_DN;
	load();
	expect_refused(map_dev(), ID_BAD_NAME, "contains '/'");
	cr_assert_str_eq(cr.identity, "CN=a/b,O=Acme");
	cr_assert_not_null(strstr(cr.why, "DN \"CN=a/b,O=Acme\""), "%s",
	    cr.why);
}

Test(identity, source_serial_and_fingerprint)
{
	full_cert();
	cfg->id_source = ID_SRC_SERIAL;
	load();
	expect_ok("1A2B3C", "1A2B3C", "1A2B3C");
	identity_rules_free(rules);

	cfg->id_source = ID_SRC_FINGERPRINT;
	load();
	expect_ok(FP, FP, FP);
}

Test(identity, source_san_first_of_type)
{
	full_cert();
	cfg->id_source = ID_SRC_SAN_DNS;
	load();
	expect_ok("a.example.com", "a.example.com", "a.example.com");
	identity_rules_free(rules);

	cfg->id_source = ID_SRC_SAN_EMAIL;
	load();
	expect_ok("sensor-42@example.com", "sensor-42@example.com",
	    "sensor-42@example.com");
}

Test(identity, source_san_first_that_matches)
{
	full_cert();
	cfg->id_source = ID_SRC_SAN_URI;
	set(&cfg->id_pattern, "^spiffe://acme/device/([^/]+)$");
	load();
	/* The first URI SAN does not match; the second does. */
	expect_ok("sensor-7", "sensor-7", "sensor-7");
}

Test(identity, source_san_uri_without_pattern_has_slash)
{
	full_cert();
	cfg->id_source = ID_SRC_SAN_URI;
	load();
	expect_refused(map_dev(), ID_BAD_NAME, "contains '/'");
	cr_assert_str_eq(cr.identity, "https://x.example/a");
}

Test(identity, source_missing)
{
	static const struct {
		enum identity_source src;
		const char *why;
	} cases[] = {
		{ ID_SRC_CN, "has no CN" },
		{ ID_SRC_DN, "has no DN" },
		{ ID_SRC_SAN_DNS, "has no DNS SAN" },
		{ ID_SRC_SAN_URI, "has no URI SAN" },
		{ ID_SRC_SAN_EMAIL, "has no email SAN" },
		{ ID_SRC_SERIAL, "has no serial number" },
		{ ID_SRC_FINGERPRINT, "has no fingerprint" },
	};
	size_t i;

	cid.cn = strdup("");    /* empty counts as missing */
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cfg->id_source = (int)cases[i].src;
		load();
		expect_refused(map_dev(), ID_UNKNOWN, cases[i].why);
		cr_assert_str_eq(cr.identity, "");
		identity_rules_free(rules);
		rules = NULL;
	}
}

Test(identity, pattern_with_group)
{
	cid.cn = strdup("acme-sensor-42.devices");
	set(&cfg->id_pattern, "^acme-([a-z0-9-]+)\\.devices$");
	load();
	expect_ok("sensor-42", "sensor-42", "sensor-42");
}

Test(identity, pattern_without_group_takes_whole_match)
{
	cid.cn = strdup("sensor-42");
	set(&cfg->id_pattern, "sensor-[0-9]+");
	load();
	expect_ok("sensor-42", "sensor-42", "sensor-42");
}

/* A pattern must match the whole value: no identity from a substring. */
Test(identity, pattern_matches_whole_value_only)
{
	cid.cn = strdup("guest-sensor-1-lab");
	set(&cfg->id_pattern, "sensor-[0-9]+");
	load();
	expect_refused(identity_map(rules, &cid, NULL, 0, 4, &cr),
	    ID_UNKNOWN, "does not match");
	identity_rules_free(rules);
	set(&cfg->id_pattern, "(sensor-[0-9]+)");
	load();
	expect_refused(identity_map(rules, &cid, NULL, 0, 4, &cr),
	    ID_UNKNOWN, "does not match");
}

Test(identity, pattern_no_match_is_unknown)
{
	cid.cn = strdup("other-7");
	set(&cfg->id_pattern, "^sensor-[0-9]+$");
	load();
	expect_refused(map_dev(), ID_UNKNOWN, "CN \"other-7\" does not match");
}

Test(identity, pattern_no_match_among_sans)
{
	full_cert();
	cfg->id_source = ID_SRC_SAN_DNS;
	set(&cfg->id_pattern, "\\.example\\.org$");
	load();
	expect_refused(map_dev(), ID_UNKNOWN, "none of the certificate's 2 "
	    "DNS SANs matches");
}

Test(identity, pattern_group_that_did_not_take_part)
{
	cid.cn = strdup("sensor");
	set(&cfg->id_pattern, "^sensor(-[0-9]+)?$");
	load();
	expect_refused(map_dev(), ID_UNKNOWN, "does not match");
}

Test(identity, pattern_invalid)
{
	set(&cfg->id_pattern, "([a-z]");
	cfg->path = strdup("/etc/moat/moat.ini");
	load_fails("[identity] pattern \"([a-z]\" is not a valid POSIX "
	    "extended regular expression");
	cr_assert_eq(strncmp(err, "/etc/moat/moat.ini: ", 20), 0, "%s", err);
}

/* ------------------------------------------------------------------ */
/* Templates                                                           */

Test(identity, template_all_placeholders)
{
	full_cert();
	cfg->id_source = ID_SRC_SAN_EMAIL;
	set(&cfg->id_pattern, "^([^@]+)@.*");
	set(&cfg->id_username, "u-{identity}.{cn}.{serial}.{fingerprint}");
	load();
	expect_ok("sensor-42", "u-sensor-42.sensor-42.1A2B3C." FP, "sensor-42");
}

Test(identity, template_field_missing)
{
	cid.dn = strdup("O=Acme,C=DE");
	cfg->id_source = ID_SRC_DN;
	set(&cfg->id_username, "dev-{cn}");
	load();
	expect_refused(map_dev(), ID_BAD_NAME, "uses {cn}, but the "
	    "certificate has no CN");
}

Test(identity, template_field_with_bad_char)
{
	full_cert();
	free(cid.cn);
	cid.cn = strdup("dev#1");
	cfg->id_source = ID_SRC_SERIAL;
	set(&cfg->id_username, "x-{cn}");
	load();
	expect_refused(map_dev(), ID_BAD_NAME, "CN \"dev#1\" contains '#', "
	    "which Mosquitto's ACL patterns cannot match (CVE-2017-7650)");
}

Test(identity, template_too_long_result)
{
	char cn[200];

	memset(cn, 'a', sizeof(cn) - 1);
	cn[sizeof(cn) - 1] = '\0';
	cid.cn = strdup(cn);
	set(&cfg->id_username, "{identity}{cn}");
	load();
	expect_refused(map_dev(), ID_BAD_NAME, "longer than 255 bytes");
}

Test(identity, template_bad_at_load)
{
	static const struct {
		const char *tpl;
		const char *err;
	} cases[] = {
		{ "", "the template is empty" },
		{ "dev-{name}", "unknown placeholder {name}" },
		{ "dev-{CN}", "unknown placeholder {CN}" },
		{ "dev-{}", "unknown placeholder {}" },
		{ "dev-{cn", "\"{\" at position 5 is not closed" },
		{ "dev-{c{cn}}", "\"{\" at position 5 is not closed" },
		{ "dev-cn}", "\"}\" at position 7 has no \"{\"" },
		{ "dev/{cn}", "contains '/'" },
		{ "{cn}#", "contains '#'" },
		{ "+{cn}", "contains '+'" },
		{ "a\tb{cn}", "control character U+0009" },
		{ "\xff{cn}", "not valid UTF-8" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		set(&cfg->id_username, cases[i].tpl);
		load_fails(cases[i].err);
		cr_assert_not_null(strstr(err, "[identity] username"), "%s",
		    err);
	}
}

Test(identity, template_constant_is_allowed)
{
	cid.cn = strdup("sensor-42");
	set(&cfg->id_username, "guest");
	load();
	expect_ok("sensor-42", "guest", "sensor-42");
}

/* ------------------------------------------------------------------ */
/* Passwords                                                           */

Test(identity, hmac_known_answer)
{
	cid.cn = strdup("sensor-42");
	set(&cfg->id_password, "hmac");
	set(&cfg->id_hmac_secret_file, write_tmp(SECRET));
	load();
	expect_ok("sensor-42", "sensor-42", "sensor-42");
	cr_assert_eq(cr.has_password, 1);
	cr_assert_eq(strlen(cr.password), 43);
	cr_assert_str_eq(cr.password, HMAC_SENSOR_42);
}

Test(identity, hmac_over_templated_username_base64url)
{
	cid.cn = strdup("sensor-42");
	set(&cfg->id_username, "dev-{cn}");
	set(&cfg->id_password, "hmac");
	/* Trailing newlines are not part of the secret. */
	set(&cfg->id_hmac_secret_file, write_tmp(SECRET "\n\n"));
	load();
	expect_ok("sensor-42", "dev-sensor-42", "sensor-42");
	cr_assert_str_eq(cr.password, HMAC_DEV_SENSOR_42);
}

Test(identity, hmac_over_mapped_username)
{
	cid.cn = strdup("sensor-42");
	set(&cfg->id_password, "hmac");
	set(&cfg->id_hmac_secret_file, write_tmp(SECRET "\r\n"));
	set_map("[sensor-42]\nusername = mapped-user\n");
	load();
	expect_ok("sensor-42", "mapped-user", "sensor-42");
	cr_assert_str_eq(cr.password, HMAC_MAPPED_USER);
}

Test(identity, hmac_secret_problems)
{
	set(&cfg->id_password, "hmac");
	load_fails("password = hmac needs hmac_secret_file");

	set(&cfg->id_hmac_secret_file, write_tmp("fifteen-bytes!!\n"));
	load_fails("the HMAC secret is 15 bytes long; use at least 16");

	set(&cfg->id_hmac_secret_file, "/nonexistent/moat-secret");
	load_fails("[identity] hmac_secret_file: /nonexistent/moat-secret: "
	    "cannot open");

	set(&cfg->id_password, "none");
	set(&cfg->id_hmac_secret_file, write_tmp(SECRET));
	load_fails("hmac_secret_file is set but password = none");
}

Test(identity, password_file)
{
	char spec[128];

	cid.cn = strdup("sensor-42");
	snprintf(spec, sizeof(spec), "file:%s",
	    write_tmp("s3cret pass\r\nsecond line\n"));
	set(&cfg->id_password, spec);
	load();
	expect_ok("sensor-42", "sensor-42", "sensor-42");
	cr_assert_eq(cr.has_password, 1);
	cr_assert_str_eq(cr.password, "s3cret pass");
}

Test(identity, password_file_problems)
{
	char spec[128];

	snprintf(spec, sizeof(spec), "file:%s", write_tmp("\nlater\n"));
	set(&cfg->id_password, spec);
	load_fails("the first line is empty");

	snprintf(spec, sizeof(spec), "file:%s", write_tmp(""));
	set(&cfg->id_password, spec);
	load_fails("the first line is empty");

	set(&cfg->id_password, "file:/nonexistent/moat-pw");
	load_fails("/nonexistent/moat-pw: cannot open");

	set(&cfg->id_password, "file:");
	load_fails("use none, hmac (with hmac_secret_file) or file:PATH");
	set(&cfg->id_password, "plain");
	load_fails("password = \"plain\": use none, hmac");
}

Test(identity, refusal_never_carries_password)
{
	char spec[128];
	size_t i;

	cid.cn = strdup("sensor-42");
	snprintf(spec, sizeof(spec), "file:%s", write_tmp("topsecret\n"));
	set(&cfg->id_password, spec);
	cfg->id_client_id = ID_CID_REQUIRE_EQUAL;
	load();
	expect_refused(map_cid("sensor-43", 4), ID_CLIENT_ID_REFUSED,
	    "does not equal");
	cr_assert_null(strstr(cr.why, "topsecret"));
	for (i = 0; i < sizeof(cr.password); i++)
		cr_assert_eq(cr.password[i], '\0');
}

/* ------------------------------------------------------------------ */
/* Client-id policies                                                  */

Test(identity, cid_identity_replaces_device_cid)
{
	cid.cn = strdup("sensor-42");
	load();
	/* Even a device client id with '#' is simply dropped. */
	cr_assert_eq(map_cid("evil#", 4), ID_OK, "%s", cr.why);
	cr_assert_str_eq(cr.client_id, "sensor-42");
}

Test(identity, cid_keep)
{
	cid.cn = strdup("sensor-42");
	cfg->id_client_id = ID_CID_KEEP;
	load();
	cr_assert_eq(map_cid("my-device", 4), ID_OK, "%s", cr.why);
	cr_assert_str_eq(cr.client_id, "my-device");
	/* Empty stays empty: the broker assigns one (3.1.1, 5). */
	cr_assert_eq(map_cid("", 4), ID_OK, "%s", cr.why);
	cr_assert_str_eq(cr.client_id, "");
	cr_assert_eq(identity_map(rules, &cid, NULL, 0, 4, &cr), ID_OK);
	cr_assert_str_eq(cr.client_id, "");
}

Test(identity, cid_keep_checks_device_cid)
{
	static const char *const bad[] = { "a+b", "a#b", "a/b", "a\x01",
	    "a\x7f", "a\xc2\x85", "a\xff" };
	static const char *const why[] = { "'+'", "'#'", "'/'", "U+0001",
	    "U+007F", "U+0085", "not valid UTF-8" };
	size_t i;

	cid.cn = strdup("sensor-42");
	cfg->id_client_id = ID_CID_KEEP;
	load();
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_refused(map_cid(bad[i], 4), ID_BAD_NAME, why[i]);
		cr_assert_not_null(strstr(cr.why, "the device's client id"),
		    "%s", cr.why);
	}
	/* A NUL inside the client id (MQTT strings may carry one). */
	expect_refused(identity_map(rules, &cid, (const uint8_t *)"ab\0c", 4,
	    4, &cr), ID_BAD_NAME, "NUL");
	/* The device's 24-byte id under MQTT 3.1. */
	expect_refused(map_cid("abcdefghijklmnopqrstuvwx", 3), ID_BAD_NAME,
	    "MQTT 3.1 limits client ids to 23 bytes");
}

Test(identity, cid_prefix)
{
	cid.cn = strdup("sensor-42");
	cfg->id_client_id = ID_CID_PREFIX;
	load();
	cr_assert_eq(map_cid("app", 4), ID_OK, "%s", cr.why);
	cr_assert_str_eq(cr.client_id, "sensor-42:app");
	cr_assert_eq(map_cid("", 4), ID_OK, "%s", cr.why);
	cr_assert_str_eq(cr.client_id, "sensor-42");
	expect_refused(map_cid("a/b", 4), ID_BAD_NAME, "'/'");
}

/*
 * "plant" + "2" must not collide with identity "plant-2" (nor
 * "plant:2"): the separator cannot occur in an identity.
 */
Test(identity, cid_prefix_cannot_collide)
{
	cid.cn = strdup("plant");
	cfg->id_client_id = ID_CID_PREFIX;
	load();
	cr_assert_eq(map_cid("2", 4), ID_OK, "%s", cr.why);
	cr_assert_str_eq(cr.client_id, "plant:2");
	identity_rules_free(rules);
	cert_identity_clear(&cid);
	cid.cn = strdup("plant-2");
	load();
	cr_assert_eq(map_cid("", 4), ID_OK, "%s", cr.why);
	cr_assert_str_neq(cr.client_id, "plant:2");
	identity_rules_free(rules);
	cert_identity_clear(&cid);
	cid.cn = strdup("plant:2");
	load();
	expect_refused(map_cid("", 4), ID_BAD_NAME, "contains ':'");
}

Test(identity, cid_require_equal)
{
	cid.cn = strdup("sensor-42");
	cfg->id_client_id = ID_CID_REQUIRE_EQUAL;
	load();
	cr_assert_eq(map_cid("sensor-42", 4), ID_OK, "%s", cr.why);
	cr_assert_str_eq(cr.client_id, "sensor-42");
	expect_refused(map_cid("sensor-43", 4), ID_CLIENT_ID_REFUSED,
	    "client_id = require-equal: the device's client id \"sensor-43\" "
	    "does not equal its identity \"sensor-42\"");
	expect_refused(map_cid("sensor-42x", 4), ID_CLIENT_ID_REFUSED,
	    "does not equal");
	expect_refused(map_cid("sensor-4", 4), ID_CLIENT_ID_REFUSED,
	    "does not equal");
	expect_refused(map_cid("", 4), ID_CLIENT_ID_REFUSED,
	    "does not equal");
}

Test(identity, cid_require_prefix)
{
	cid.cn = strdup("sensor-42");
	cfg->id_client_id = ID_CID_REQUIRE_PREFIX;
	load();
	cr_assert_eq(map_cid("sensor-42", 4), ID_OK, "%s", cr.why);
	cr_assert_str_eq(cr.client_id, "sensor-42");
	cr_assert_eq(map_cid("sensor-42:app", 4), ID_OK, "%s", cr.why);
	cr_assert_str_eq(cr.client_id, "sensor-42:app");
	expect_refused(map_cid("sensor-4", 4), ID_CLIENT_ID_REFUSED,
	    "does not start with its identity \"sensor-42\"");
	/* sensor-42 must not take sensor-420's (or sensor-42-x's) id. */
	expect_refused(map_cid("sensor-420", 4), ID_CLIENT_ID_REFUSED,
	    "does not start with");
	expect_refused(map_cid("sensor-42-x", 4), ID_CLIENT_ID_REFUSED,
	    "does not start with");
	expect_refused(map_cid("x-sensor-42", 4), ID_CLIENT_ID_REFUSED,
	    "does not start with");
	expect_refused(map_cid("sensor-42#", 4), ID_BAD_NAME, "'#'");
}

Test(identity, cid_mqtt31_limit)
{
	/* 23 bytes: allowed under 3.1; 24: refused under 3.1 only. */
	cid.cn = strdup("abcdefghijklmnopqrstuvw");
	load();
	cr_assert_eq(map_cid("", 3), ID_OK, "%s", cr.why);
	cert_identity_clear(&cid);
	cid.cn = strdup("abcdefghijklmnopqrstuvwx");
	expect_refused(map_cid("", 3), ID_BAD_NAME,
	    "MQTT 3.1 limits client ids to 23 bytes");
	cr_assert_eq(map_cid("", 4), ID_OK, "%s", cr.why);
	cr_assert_eq(map_cid("", 5), ID_OK, "%s", cr.why);
}

Test(identity, cid_mqtt31_limit_prefix)
{
	cid.cn = strdup("sensor-42");
	cfg->id_client_id = ID_CID_PREFIX;
	load();
	/* "sensor-42-" + 13 = 23 bytes; + 14 = 24. */
	cr_assert_eq(map_cid("abcdefghijklm", 3), ID_OK, "%s", cr.why);
	expect_refused(map_cid("abcdefghijklmn", 3), ID_BAD_NAME,
	    "is 24 bytes long; MQTT 3.1 limits");
}

/* ------------------------------------------------------------------ */
/* Name rules                                                          */

Test(identity, cn_forbidden_characters)
{
	static const struct {
		const char *cn;
		const char *why;
	} cases[] = {
		{ "dev#1", "CN \"dev#1\" contains '#', which Mosquitto's ACL "
		    "patterns cannot match (CVE-2017-7650)" },
		{ "dev+1", "contains '+'" },
		{ "dev/1", "contains '/'" },
		{ "dev\x01", "control character U+0001" },
		{ "dev\x1f", "control character U+001F" },
		{ "dev\x7f", "control character U+007F" },
		{ "dev\xc2\x80", "control character U+0080" },
		{ "dev\xc2\x9f", "control character U+009F" },
		{ "dev\xff", "not valid UTF-8 (byte 0xff at offset 3)" },
		{ "dev\xc0\xaf", "not valid UTF-8" },          /* overlong */
		{ "dev\xe0\x80\xaf", "not valid UTF-8" },      /* overlong */
		{ "dev\xed\xa0\x80", "not valid UTF-8" },      /* surrogate */
		{ "dev\xf4\x90\x80\x80", "not valid UTF-8" },  /* > 10FFFF */
		{ "dev\xe2\x82", "not valid UTF-8" },          /* truncated */
	};
	size_t i;

	load();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cert_identity_clear(&cid);
		cid.cn = strdup(cases[i].cn);
		expect_refused(map_dev(), ID_BAD_NAME, cases[i].why);
		cr_assert_str_eq(cr.identity, cases[i].cn);
	}
}

Test(identity, cn_too_long)
{
	char cn[300];

	memset(cn, 'a', sizeof(cn) - 1);
	cn[sizeof(cn) - 1] = '\0';
	cid.cn = strdup(cn);
	load();
	expect_refused(map_dev(), ID_BAD_NAME, "299 bytes long");
	cr_assert_eq(strlen(cr.identity), IDENTITY_MAX - 1);
}

Test(identity, why_escapes_hostile_bytes)
{
	cid.cn = strdup("a\"b\x1b[31m#");
	load();
	expect_refused(map_dev(), ID_BAD_NAME, "CN \"a\\\"b\\x1b[31m#\"");
}

Test(identity, name_ok_rules)
{
	char s[IDENTITY_MAX + 1];

	cr_assert(identity_name_ok("sensor-42", 9));
	cr_assert(identity_name_ok("K\xc3\xbc" "che", 6));          /* ü */
	cr_assert(identity_name_ok("\xe2\x82\xac", 3));             /* € */
	cr_assert(identity_name_ok("\xf0\x9f\x98\x80", 4));         /* 😀 */
	cr_assert(identity_name_ok("CN=a\\,b,O=\"x y\"", 15));
	cr_assert(identity_name_ok("a@b.c:d;e", 9));
	cr_assert_not(identity_name_ok("", 0));
	cr_assert_not(identity_name_ok(NULL, 0));
	cr_assert_not(identity_name_ok("a\0b", 3));
	cr_assert_not(identity_name_ok("+", 1));
	cr_assert_not(identity_name_ok("#", 1));
	cr_assert_not(identity_name_ok("/", 1));
	cr_assert_not(identity_name_ok("\n", 1));
	cr_assert_not(identity_name_ok("\xc2\x85", 2));             /* NEL */
	cr_assert_not(identity_name_ok("\xc1\xbf", 2));
	cr_assert_not(identity_name_ok("\xed\xbf\xbf", 3));
	cr_assert_not(identity_name_ok("\xf8\x88\x80\x80\x80", 5));
	cr_assert_not(identity_name_ok("\x80", 1));
	memset(s, 'a', sizeof(s));
	cr_assert(identity_name_ok(s, IDENTITY_MAX - 1));
	cr_assert_not(identity_name_ok(s, IDENTITY_MAX));
}

/* ------------------------------------------------------------------ */
/* The map                                                             */

Test(identity, map_entries_override)
{
	char spec[128];

	snprintf(spec, sizeof(spec), "file:%s", write_tmp("shared\n"));
	set(&cfg->id_password, spec);
	set(&cfg->id_username, "dev-{identity}");
	set_map(
	    "; devices\n"
	    "[sensor-1]\n"
	    "username = alice\n"
	    "password = pw-1\n"
	    "client_id = fixed-1\n"
	    "\n"
	    "[sensor-2]\n"
	    "password = pw-2\n"
	    "[sensor-3]\n"
	    "client_id = fixed-3\n"
	    "[sensor-4]\n"
	    "deny = false\n"
	    "[sensor-5]\n"
	    "deny = true\n");
	load();

	cid.cn = strdup("sensor-1");
	expect_ok("sensor-1", "alice", "fixed-1");
	cr_assert_str_eq(cr.password, "pw-1");
	cr_assert_str_eq(cr.rule, "map entry [sensor-1]");

	cert_identity_clear(&cid);
	cid.cn = strdup("sensor-2");
	expect_ok("sensor-2", "dev-sensor-2", "sensor-2");
	cr_assert_str_eq(cr.password, "pw-2");

	cert_identity_clear(&cid);
	cid.cn = strdup("sensor-3");
	expect_ok("sensor-3", "dev-sensor-3", "fixed-3");
	cr_assert_str_eq(cr.password, "shared");
	cr_assert_str_eq(cr.rule, "map entry [sensor-3]");

	cert_identity_clear(&cid);
	cid.cn = strdup("sensor-4");
	expect_ok("sensor-4", "dev-sensor-4", "sensor-4");

	cert_identity_clear(&cid);
	cid.cn = strdup("sensor-5");
	expect_refused(map_dev(), ID_DENIED, "map entry [sensor-5] (line 13 "
	    "of the map) says deny = true");
	cr_assert_str_eq(cr.identity, "sensor-5");

	cert_identity_clear(&cid);
	cid.cn = strdup("sensor-6");
	expect_refused(map_dev(), ID_UNKNOWN, "CN \"sensor-6\" has no entry "
	    "in the map and [identity] unknown = reject");
	cr_assert_str_eq(cr.identity, "sensor-6");
}

Test(identity, map_client_id_overrides_policy)
{
	cfg->id_client_id = ID_CID_REQUIRE_EQUAL;
	set_map("[sensor-1]\nclient_id = fixed-1\n");
	load();
	cid.cn = strdup("sensor-1");
	cr_assert_eq(map_cid("anything", 4), ID_OK, "%s", cr.why);
	cr_assert_str_eq(cr.client_id, "fixed-1");
	/* ... but not the MQTT 3.1 limit. */
	cert_identity_clear(&cid);
	identity_rules_free(rules);
	set_map("[sensor-1]\nclient_id = abcdefghijklmnopqrstuvwxyz\n");
	load();
	cid.cn = strdup("sensor-1");
	expect_refused(map_cid("x", 3), ID_BAD_NAME, "23 bytes");
}

Test(identity, map_unknown_template)
{
	set_map("[sensor-1]\nusername = alice\n");
	cfg->id_unknown_template = 1;
	load();
	cid.cn = strdup("sensor-9");
	expect_ok("sensor-9", "sensor-9", "sensor-9");
	cr_assert_str_eq(cr.rule, "template");
}

Test(identity, map_empty_section_is_known)
{
	set_map("[sensor-1]\n[sensor-2] ; no keys: template credentials\n");
	load();
	cid.cn = strdup("sensor-2");
	expect_ok("sensor-2", "sensor-2", "sensor-2");
	cr_assert_str_eq(cr.rule, "map entry [sensor-2]");
	cert_identity_clear(&cid);
	cid.cn = strdup("sensor-1");
	expect_ok("sensor-1", "sensor-1", "sensor-1");
}

Test(identity, map_long_section_names)
{
	/* Longer than inih's 50-byte section buffer. */
	cfg->id_source = ID_SRC_FINGERPRINT;
	set_map("[" FP "]\nusername = by-fingerprint\n"
	    "[" FP "x]\nusername = other\n");
	load();
	full_cert();
	expect_ok(FP, "by-fingerprint", FP);
}

Test(identity, map_dn_section)
{
	cfg->id_source = ID_SRC_DN;
	set_map("[CN=dev\\,1,O=Acme \"Inc\"]\nusername = dev1\n"
	    "client_id = dev1\n");
	load();
	cid.dn = strdup("CN=dev\\,1,O=Acme \"Inc\"");
	expect_ok("CN=dev\\,1,O=Acme \"Inc\"", "dev1", "dev1");
}

Test(identity, map_needed_with_reject)
{
	cfg->id_unknown_template = 0;
	load_fails("unknown = reject refuses every device whose identity has "
	    "no entry in the map, but no map is set");
}

Test(identity, map_errors)
{
	static const struct {
		const char *text;
		int line;
		const char *err;
	} cases[] = {
		{ "[a]\nusername = x\nfoo = 1\n", 3,
		    "unknown key \"foo\" in [a]; known keys: username, "
		    "password, client_id, deny" },
		{ "[a]\n[b]\n[a]\nusername = x\n", 3,
		    "[a] is already defined on line 1" },
		{ "[a]\nusername = x\nusername = y\n", 3,
		    "username is already set on line 2" },
		{ "[a]\ndeny = yes\n", 2,
		    "deny = \"yes\": write deny = true or deny = false" },
		{ "[a]\ndeny = 1\n", 2, "write deny = true" },
		{ "username = x\n[a]\n", 1, "\"username\" is outside any "
		    "section" },
		{ "[a]\nusername = x\n  y\n", 3, "would continue the value "
		    "of \"username\"" },
		{ "[a]\nusername = a#b\n", 2, "username \"a#b\" contains '#'" },
		{ "[a]\nusername = a+b\n", 2, "username \"a+b\" contains '+'" },
		{ "[a]\nusername = a/b\n", 2, "username \"a/b\" contains '/'" },
		{ "[a]\nclient_id = a/b\n", 2, "client_id \"a/b\" contains "
		    "'/'" },
		{ "[a]\nusername = \xc0\x80\n", 2, "not valid UTF-8" },
		{ "[a]\npassword =\n", 2, "password is empty" },
		{ "[a]\nusername\n", 2, "syntax error" },
		{ "[a\nusername = x\n", 1, "syntax error" },
		{ "[a] x\n", 1, "text after \"]\"" },
		{ "[]\n", 1, "the section name [] is empty" },
		{ "[ a]\n", 1, "spaces inside the brackets" },
		{ "[a\x01]\n", 1, "control character U+0001" },
		{ "[a]\nusername = x\0y\n", 2, "NUL byte" },
		/* The earliest error wins, whichever kind it is. */
		{ "[a]\n[a]\nfoo = 1\n", 2, "already defined on line 1" },
		{ "[a]\nfoo = 1\n[a]\n", 2, "unknown key" },
		{ "[a]\nbad line\n[a]\n", 2, "syntax error" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ntmp = 0;
		set(&cfg->id_map, write_tmp_len(cases[i].text,
		    strlen(cases[i].text) + (strstr(cases[i].err, "NUL") !=
		    NULL ? 3 : 0)));
		map_fails(cases[i].line, cases[i].err);
		unlink(tmp[0]);
		ntmp = 0;
	}
}

Test(identity, map_long_line)
{
	char text[400];

	snprintf(text, sizeof(text), "[a]\nusername = %0300d\n", 7);
	set_map(text);
	map_fails(2, "the line is too long");
}

Test(identity, map_missing_file)
{
	set(&cfg->id_map, "/nonexistent/moat-map.ini");
	cfg->id_unknown_template = 0;
	load_fails("/nonexistent/moat-map.ini: cannot open");
}

Test(identity, map_large)
{
	const size_t n = 100000;
	size_t i, len = 0, cap = n * 64;
	char *text = malloc(cap), name[32];
	struct timespec t0, t1;
	double secs;

	cr_assert_not_null(text);
	/* Written in descending order so the loader must sort. */
	for (i = n; i > 0; i--)
		len += (size_t)snprintf(text + len, cap - len,
		    "[dev-%zu]\nusername = u%zu\n", i, i);
	set(&cfg->id_map, write_tmp_len(text, len));
	free(text);
	cfg->id_unknown_template = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	load();
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	/* O(n log n) is well under a second natively; valgrind is slow. */
	cr_assert_lt(secs, 30.0, "loading took %.1f s", secs);
	for (i = 1; i <= n; i += 9973) {
		snprintf(name, sizeof(name), "dev-%zu", i);
		cr_assert_eq(identity_for_name(rules, name, &cr), ID_OK, "%s",
		    cr.why);
		cr_assert_eq(strcmp(cr.username + 1, name + 4), 0);
	}
	cr_assert_eq(identity_for_name(rules, "dev-0", &cr), ID_UNKNOWN);
	cr_assert_eq(identity_for_name(rules, "dev-100001", &cr), ID_UNKNOWN);
}

/* ------------------------------------------------------------------ */
/* identity_for_name                                                   */

Test(identity, for_name_templates)
{
	set(&cfg->id_username, "d-{identity}-{cn}");
	set(&cfg->id_password, "hmac");
	set(&cfg->id_hmac_secret_file, write_tmp(SECRET));
	load();
	cr_assert_eq(identity_for_name(rules, "sensor-42", &cr), ID_OK, "%s",
	    cr.why);
	cr_assert_str_eq(cr.identity, "sensor-42");
	cr_assert_str_eq(cr.username, "d-sensor-42-sensor-42");
	cr_assert_str_eq(cr.client_id, "sensor-42");
	cr_assert_eq(strlen(cr.password), 43);
	cr_assert_str_eq(cr.rule, "template");
	identity_rules_free(rules);

	/*
	 * {serial} and {fingerprint} are not in the identity: moat passwd
	 * must refuse rather than print a password for the wrong username.
	 */
	set(&cfg->id_username, "d-{serial}");
	load();
	cr_assert_eq(identity_for_name(rules, "sensor-42", &cr), ID_BAD_NAME);
	cr_assert(strstr(cr.why, "{serial}") != NULL, "%s", cr.why);
	identity_rules_free(rules);
	set(&cfg->id_username, "d-{fingerprint}");
	load();
	cr_assert_eq(identity_for_name(rules, "sensor-42", &cr), ID_BAD_NAME);
	identity_rules_free(rules);
	/* With a pattern the identity is only part of the CN. */
	set(&cfg->id_username, "{cn}");
	set(&cfg->id_pattern, "^sensor-(.*)$");
	load();
	cr_assert_eq(identity_for_name(rules, "42", &cr), ID_BAD_NAME);
	cr_assert(strstr(cr.why, "{cn}") != NULL, "%s", cr.why);
	identity_rules_free(rules);
	set(&cfg->id_pattern, NULL);

	set(&cfg->id_username, "dev-{cn}");
	load();
	cr_assert_eq(identity_for_name(rules, "sensor-42", &cr), ID_OK);
	cr_assert_str_eq(cr.username, "dev-sensor-42");
	cr_assert_str_eq(cr.password, HMAC_DEV_SENSOR_42);
}

Test(identity, for_name_map_and_unknown)
{
	set_map("[sensor-1]\nusername = alice\npassword = pw\n"
	    "[sensor-2]\ndeny = true\n");
	load();
	cr_assert_eq(identity_for_name(rules, "sensor-1", &cr), ID_OK);
	cr_assert_str_eq(cr.username, "alice");
	cr_assert_str_eq(cr.password, "pw");
	cr_assert_str_eq(cr.rule, "map entry [sensor-1]");
	cr_assert_eq(identity_for_name(rules, "sensor-2", &cr), ID_DENIED);
	expect_refused(identity_for_name(rules, "sensor-3", &cr), ID_UNKNOWN,
	    "identity \"sensor-3\" has no entry in the map");
	expect_refused(identity_for_name(rules, "", &cr), ID_UNKNOWN,
	    "no identity");
}

Test(identity, for_name_bad_name)
{
	load();
	expect_refused(identity_for_name(rules, "a#b", &cr), ID_BAD_NAME,
	    "identity \"a#b\" contains '#'");
}

Test(identity, for_name_client_id_policies)
{
	cfg->id_client_id = ID_CID_KEEP;
	load();
	cr_assert_eq(identity_for_name(rules, "s1", &cr), ID_OK);
	cr_assert_str_eq(cr.client_id, "");
	identity_rules_free(rules);
	cfg->id_client_id = ID_CID_REQUIRE_PREFIX;
	load();
	cr_assert_eq(identity_for_name(rules, "s1", &cr), ID_OK);
	cr_assert_str_eq(cr.client_id, "s1");
}

/* ------------------------------------------------------------------ */
/* Mosquitto's password file, cert_identity_clear                      */

/* Length of standard base64 text at s (up to end), or -1 if not base64. */
static int
b64_len(const char *s, const char *end)
{
	const char *p;

	for (p = s; p < end; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '+' || *p == '/' ||
		    *p == '='))
			return (-1);
	return ((int)(end - s));
}

Test(identity, mosquitto_line_format)
{
	char line[512], line2[512];
	const char *salt, *hash, *dollar;

	cr_assert_eq(identity_mosquitto_line("sensor-42", HMAC_SENSOR_42,
	    line, sizeof(line)), 0);
	cr_assert_eq(strncmp(line, "sensor-42:$7$101$", 17), 0, "%s", line);
	cr_assert_null(strchr(line, '\n'));
	salt = line + 17;
	dollar = strchr(salt, '$');
	cr_assert_not_null(dollar, "%s", line);
	hash = dollar + 1;
	cr_assert_eq(b64_len(salt, dollar), 16, "%s", line);
	cr_assert_eq(b64_len(hash, hash + strlen(hash)), 88, "%s", line);
	cr_assert_eq(hash[86], '=');
	cr_assert_eq(hash[87], '=');
	cr_assert_eq(strlen(line), 17 + 16 + 1 + 88);

	/* A fresh salt every time. */
	cr_assert_eq(identity_mosquitto_line("sensor-42", HMAC_SENSOR_42,
	    line2, sizeof(line2)), 0);
	cr_assert_str_neq(line, line2);

	cr_assert_eq(identity_mosquitto_line("a:b", "pw", line,
	    sizeof(line)), -1);
	cr_assert_eq(identity_mosquitto_line("a\nb", "pw", line,
	    sizeof(line)), -1);
	cr_assert_eq(identity_mosquitto_line("", "pw", line, sizeof(line)),
	    -1);
	cr_assert_eq(identity_mosquitto_line("sensor-42", "pw", line, 100),
	    -1);
	cr_assert_str_eq(line, "");
}

Test(identity, cert_identity_clear_zeroes)
{
	struct cert_identity zero;

	full_cert();
	cert_identity_clear(&cid);
	memset(&zero, 0, sizeof(zero));
	cr_assert_eq(memcmp(&cid, &zero, sizeof(zero)), 0);
	cert_identity_clear(&cid);      /* twice is fine */
	cert_identity_clear(NULL);
	identity_rules_free(NULL);
}

/* ------------------------------------------------------------------ */
/* Names that cannot mislead: a leading '$', format and bidi characters */

/* pattern readwrite %u/# would give CN "$SYS" all of $SYS/#. */
Test(identity, cn_beginning_with_dollar_refused)
{
	cid.cn = strdup("$SYS");
	load();
	expect_refused(map_dev(), ID_BAD_NAME, "CN \"$SYS\" begins with '$', "
	    "which Mosquitto reserves for $SYS topics");
	cr_assert_str_eq(cr.identity, "$SYS");
	cr_assert_str_eq(cr.username, "");
	cr_assert_str_eq(cr.client_id, "");
}

Test(identity, cn_format_characters_refused)
{
	static const struct {
		const char *cn;
		const char *why;
	} cases[] = {
		{ "dev\xe2\x80\x8b" "1", "U+200B" },    /* zero width space */
		{ "dev\xe2\x80\x8f" "1", "U+200F" },    /* right-to-left mark */
		{ "dev\xe2\x80\xaa" "1", "U+202A" },    /* LTR embedding */
		{ "dev\xe2\x80\xae" "1", "U+202E" },    /* RTL override */
		{ "dev\xe2\x81\xa6" "1", "U+2066" },    /* LTR isolate */
		{ "dev\xe2\x81\xa9" "1", "U+2069" },    /* pop isolate */
		{ "\xef\xbb\xbf" "dev1", "U+FEFF" },    /* BOM */
	};
	size_t i;

	load();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cert_identity_clear(&cid);
		cid.cn = strdup(cases[i].cn);
		expect_refused(map_dev(), ID_BAD_NAME, cases[i].why);
		cr_assert_not_null(strstr(cr.why, "invisible format character"),
		    "%s", cr.why);
		cr_assert_str_eq(cr.client_id, "");
	}
	/* The refusal quotes the value with the character escaped. */
	cert_identity_clear(&cid);
	cid.cn = strdup("admin\xe2\x80\xae" "txt");
	expect_refused(map_dev(), ID_BAD_NAME,
	    "CN \"admin\\xe2\\x80\\xaetxt\" contains");
}

Test(identity, name_ok_refuses_dollar_and_format)
{
	char problem[128];

	cr_assert_not(identity_name_ok("$SYS", 4));
	cr_assert_not(identity_name_ok("$", 1));
	cr_assert_not(identity_name_ok("a\xe2\x80\x8b", 4));
	cr_assert_not(identity_name_ok("a\xe2\x80\x8e", 4));
	cr_assert_not(identity_name_ok("a\xe2\x80\xac", 4));
	cr_assert_not(identity_name_ok("a\xe2\x81\xa7", 4));
	cr_assert_not(identity_name_ok("\xef\xbb\xbf", 3));
	/* Line and paragraph separators, the Arabic letter mark. */
	cr_assert_not(identity_name_ok("a\xe2\x80\xa8", 4));
	cr_assert_not(identity_name_ok("a\xe2\x80\xa9", 4));
	cr_assert_not(identity_name_ok("a\xd8\x9c", 3));
	/* Neighbours of the ranges, and '$' further in, are fine. */
	cr_assert(identity_name_ok("a$b", 3));
	cr_assert(identity_name_ok("a$", 2));
	cr_assert(identity_name_ok("a\xe2\x80\x8a", 4));            /* U+200A */
	cr_assert(identity_name_ok("a\xe2\x80\x90", 4));            /* U+2010 */
	cr_assert(identity_name_ok("a\xe2\x80\xa7", 4));            /* U+2027 */
	cr_assert(identity_name_ok("a\xe2\x80\xaf", 4));            /* U+202F */
	cr_assert(identity_name_ok("a\xe2\x81\xa5", 4));            /* U+2065 */
	cr_assert(identity_name_ok("a\xe2\x81\xaa", 4));            /* U+206A */
	cr_assert(identity_name_ok("a\xef\xbb\xbe", 4));            /* U+FEFE */
	cr_assert_eq(identity_text_check("$SYS", 4, 1, problem,
	    sizeof(problem)), -1);
	cr_assert_str_eq(problem, "begins with '$', which Mosquitto reserves "
	    "for $SYS topics");
	/* Identity values (not sent as names) may begin with '$'. */
	cr_assert_eq(identity_text_check("$SYS", 4, 0, problem,
	    sizeof(problem)), 0);
}

Test(identity, echo_escapes_format_characters)
{
	char e[IDENTITY_ECHO_BUF];

	cr_assert_str_eq(identity_echo("a\xe2\x80\xae" "b", 5, e, sizeof(e)),
	    "a\\xe2\\x80\\xaeb");
	cr_assert_str_eq(identity_echo("\xef\xbb\xbfx", 4, e, sizeof(e)),
	    "\\xef\\xbb\\xbfx");
	cr_assert_str_eq(identity_echo("$\xe2\x82\xac", 4, e, sizeof(e)),
	    "$\xe2\x82\xac");
}

/* '$' matters only where the name begins. */
Test(identity, dollar_inside_username_is_fine)
{
	cid.cn = strdup("$SYS");
	set(&cfg->id_username, "dev-{cn}");
	cfg->id_client_id = ID_CID_KEEP;
	load();
	cr_assert_eq(map_cid("my-device", 4), ID_OK, "%s", cr.why);
	cr_assert_str_eq(cr.username, "dev-$SYS");
	cr_assert_str_eq(cr.client_id, "my-device");
	/* Under the default policy the identity is the client id. */
	identity_rules_free(rules);
	cfg->id_client_id = ID_CID_IDENTITY;
	load();
	expect_refused(map_dev(), ID_BAD_NAME, "begins with '$'");
}

Test(identity, template_beginning_with_dollar_refused)
{
	cid.cn = strdup("sensor-42");
	set(&cfg->id_username, "${cn}");
	load_fails("[identity] username = \"${cn}\": the text around the "
	    "placeholders begins with '$'");
	set(&cfg->id_username, "a\xe2\x80\x8b{cn}");
	load_fails("U+200B");
	set(&cfg->id_username, "{cn}$");
	load();
	expect_ok("sensor-42", "sensor-42$", "sensor-42");
}

Test(identity, map_refuses_dollar_and_format_names)
{
	set_map("[sensor-1]\nusername = $SYS\n");
	map_fails(2, "begins with '$'");
	set_map("[sensor-1]\nclient_id = $SYS\n");
	map_fails(2, "begins with '$'");
	set_map("[sensor-1]\n\nusername = ok\nclient_id = a\xe2\x80\xae" "b\n");
	map_fails(4, "U+202E");
	set_map("[sensor-1]\nusername = a\xef\xbb\xbf\n");
	map_fails(2, "U+FEFF");
	/* The identity itself (a section name) may begin with '$' when the
	 * names it maps to do not. */
	set_map("[$SYS]\nusername = plain\nclient_id = plain-1\n");
	load();
	cid.cn = strdup("$SYS");
	expect_ok("$SYS", "plain", "plain-1");
}

/* Client ids the device chose obey the same rules where they are kept. */
Test(identity, device_cid_dollar_and_format_refused)
{
	cid.cn = strdup("sensor-42");
	cfg->id_client_id = ID_CID_KEEP;
	load();
	expect_refused(map_cid("$SYS", 4), ID_BAD_NAME, "the device's client "
	    "id \"$SYS\" begins with '$'");
	expect_refused(map_cid("a\xef\xbb\xbf", 4), ID_BAD_NAME, "U+FEFF");
	expect_refused(map_cid("a\xe2\x80\xae", 4), ID_BAD_NAME, "U+202E");

	identity_rules_free(rules);
	cfg->id_client_id = ID_CID_REQUIRE_PREFIX;
	load();
	expect_refused(map_cid("sensor-42:\xe2\x81\xa6x", 4), ID_BAD_NAME,
	    "U+2066");
	cr_assert_eq(map_cid("sensor-42:$x", 4), ID_OK, "%s", cr.why);

	/* prefix: the device's id follows "identity:", so '$' is harmless
	 * there, but a format character is not. */
	identity_rules_free(rules);
	cfg->id_client_id = ID_CID_PREFIX;
	load();
	cr_assert_eq(map_cid("$x", 4), ID_OK, "%s", cr.why);
	cr_assert_str_eq(cr.client_id, "sensor-42:$x");
	expect_refused(map_cid("x\xe2\x80\x8b", 4), ID_BAD_NAME, "U+200B");
}

Test(identity, for_name_refuses_dollar)
{
	load();
	expect_refused(identity_for_name(rules, "$SYS", &cr), ID_BAD_NAME,
	    "identity \"$SYS\" begins with '$'");
}

/* [limits] max_connections_per_identity and on_duplicate: the map entry's
 * own where it sets them, else moat.ini's; identities without an entry
 * (unknown = template) get moat.ini's. */
Test(identity, conn_limit_map_overrides_limits)
{
	enum on_duplicate dup;
	uint64_t max;

	set_map("[a]\nmax_connections_per_identity = 3\n"
	    "[b]\non_duplicate = refuse\n"
	    "[c]\nmax_connections_per_identity = 0\n"
	    "[d]\n");
	cfg->id_unknown_template = 1;
	cfg->max_conns_per_identity = 1;
	cfg->on_duplicate = DUP_REPLACE;
	load();
	identity_conn_limit(rules, cfg, "a", &max, &dup);
	cr_assert_eq(max, 3);
	cr_assert_eq(dup, DUP_REPLACE);
	identity_conn_limit(rules, cfg, "b", &max, &dup);
	cr_assert_eq(max, 1);
	cr_assert_eq(dup, DUP_REFUSE);
	identity_conn_limit(rules, cfg, "c", &max, &dup);
	cr_assert_eq(max, 0, "0 in the map lifts the limit for c");
	identity_conn_limit(rules, cfg, "d", &max, &dup);
	cr_assert_eq(max, 1);
	cr_assert_eq(dup, DUP_REPLACE);
	identity_conn_limit(rules, cfg, "not-in-map", &max, &dup);
	cr_assert_eq(max, 1);
	cr_assert_eq(dup, DUP_REPLACE);
	cfg->on_duplicate = DUP_REFUSE;
	identity_conn_limit(NULL, cfg, "a", &max, &dup);
	cr_assert_eq(max, 1);
	cr_assert_eq(dup, DUP_REFUSE);
}
