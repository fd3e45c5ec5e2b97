/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/core/config.c: every way moat.ini can be wrong must stop
 * the load with "FILE:LINE: what is wrong", every default must be what the
 * reference says, and the duration and cipher rules must hold at their
 * edges. Config files are written to /tmp by the tests themselves, so
 * nothing is read from or written into the source tree except the shipped
 * example etc/moat.ini.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moat/config.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

/* Lines 1-4 of most test files: the three required settings. */
#define TLS                                                             \
	"[tls]\n"                                                       \
	"cert = /etc/moat/server.crt\n"                                 \
	"key = /etc/moat/server.key\n"                                  \
	"ca = /etc/moat/ca.crt\n"

static char path[64];
static char err[2048];
static struct config *cfg;

static void
setup(void)
{
	path[0] = '\0';
	err[0] = '\0';
	cfg = NULL;
}

static void
teardown(void)
{
	config_free(cfg);
	if (path[0] != '\0')
		unlink(path);
}

TestSuite(config, .init = setup, .fini = teardown);

/* Write len bytes of text to a fresh temporary file; sets path. */
static void
write_file(const char *text, size_t len)
{
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/moat-test-XXXXXX");
	fd = mkstemp(path);
	cr_assert(fd >= 0, "mkstemp: %s", strerror(errno));
	f = fdopen(fd, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(text, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

static struct config *
load(const char *text)
{
	write_file(text, strlen(text));
	cfg = config_load(path, err, sizeof(err));
	return (cfg);
}

static void
load_ok(const char *text)
{
	load(text);
	cr_assert_not_null(cfg, "config_load failed: %s", err);
}

/*
 * The load must fail, with "PATH:LINE: " (or "PATH: " for line 0) at the
 * start of the message and want somewhere in it.
 */
static void
load_fails(const char *text, int line, const char *want)
{
	char prefix[128];

	load(text);
	cr_assert_null(cfg, "config_load accepted:\n%s", text);
	if (line > 0)
		snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	else
		snprintf(prefix, sizeof(prefix), "%s: ", path);
	cr_assert(strncmp(err, prefix, strlen(prefix)) == 0,
	    "want prefix \"%s\", got \"%s\"", prefix, err);
	cr_assert(strstr(err, want) != NULL,
	    "want \"%s\" in \"%s\"", want, err);
}

/* The whole message must be exactly "PATH<suffix>". */
static void
assert_err_is(const char *suffix)
{
	char want[2048];

	snprintf(want, sizeof(want), "%s%s", path, suffix);
	cr_assert_str_eq(err, want);
}

/* --- defaults and good files ------------------------------------------ */

Test(config, defaults)
{
	char buf[128];

	load_ok(TLS);
	cr_assert_str_eq(cfg->path, path);
	cr_assert_eq(cfg->nlisten, 1);
	cr_assert_str_eq(cfg->listen[0], "0.0.0.0:8883");
	cr_assert_eq(cfg->listen_line[0], 0);
	cr_assert_str_eq(cfg->tls_cert, "/etc/moat/server.crt");
	cr_assert_str_eq(cfg->tls_key, "/etc/moat/server.key");
	cr_assert_str_eq(cfg->tls_ca, "/etc/moat/ca.crt");
	cr_assert_null(cfg->tls_crl);
	cr_assert_null(cfg->tls_ciphers);
	cr_assert_eq(cfg->tls_min_version, 12);
	cr_assert_str_eq(cfg->backend, "127.0.0.1:1883");
	cr_assert_eq(cfg->handshake_timeout_ms, 10000);
	cr_assert_eq(cfg->connect_timeout_ms, 10000);
	cr_assert_eq(cfg->idle_timeout_ms, 0);
	cr_assert_eq(cfg->max_connections, 10000);
	cr_assert_eq(cfg->log_level, LOG_LVL_INFO);
	cr_assert_eq(cfg->log_format, LOG_FMT_TEXT);

	config_where(cfg, "tls", "cert", buf, sizeof(buf));
	snprintf(err, sizeof(err), "%s:2", path);
	cr_assert_str_eq(buf, err);
	config_where(cfg, "tls", "ca", buf, sizeof(buf));
	snprintf(err, sizeof(err), "%s:4", path);
	cr_assert_str_eq(buf, err);
	config_where(cfg, "limits", "handshake_timeout", buf, sizeof(buf));
	cr_assert_str_eq(buf, path);
	config_where(cfg, "listen", "address", buf, sizeof(buf));
	cr_assert_str_eq(buf, path);
	config_where(cfg, "no", "such", buf, sizeof(buf));
	cr_assert_str_eq(buf, path);
}

Test(config, every_option_set)
{
	char buf[128];

	load_ok("[listen]\n"                                     /* 1 */
	    "address = 127.0.0.1:18883\n"
	    "[tls]\n"
	    "cert = server.crt\n"
	    "key = server.key\n"                                 /* 5 */
	    "ca = ca.crt\n"
	    "crl = ca.crl\n"
	    "min_version = 1.3\n"
	    "ciphers = TLS13-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256\n"
	    "[backend]\n"                                        /* 10 */
	    "address = unix:/run/mosquitto/mosquitto.sock\n"
	    "[limits]\n"
	    "handshake_timeout = 3s\n"
	    "connect_timeout = 2m\n"
	    "idle_timeout = 1h\n"                                /* 15 */
	    "max_connections = 42\n"
	    "[log]\n"
	    "level = debug\n"
	    "format = json\n");
	cr_assert_eq(cfg->nlisten, 1);
	cr_assert_str_eq(cfg->listen[0], "127.0.0.1:18883");
	cr_assert_eq(cfg->listen_line[0], 2);
	cr_assert_str_eq(cfg->tls_cert, "server.crt");
	cr_assert_str_eq(cfg->tls_crl, "ca.crl");
	cr_assert_eq(cfg->tls_min_version, 13);
	cr_assert_str_eq(cfg->tls_ciphers,
	    "TLS13-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256");
	cr_assert_str_eq(cfg->backend, "unix:/run/mosquitto/mosquitto.sock");
	cr_assert_eq(cfg->handshake_timeout_ms, 3000);
	cr_assert_eq(cfg->connect_timeout_ms, 120000);
	cr_assert_eq(cfg->idle_timeout_ms, 3600000);
	cr_assert_eq(cfg->max_connections, 42);
	cr_assert_eq(cfg->log_level, LOG_LVL_DEBUG);
	cr_assert_eq(cfg->log_format, LOG_FMT_JSON);

	config_where(cfg, "limits", "idle_timeout", buf, sizeof(buf));
	snprintf(err, sizeof(err), "%s:15", path);
	cr_assert_str_eq(buf, err);
	config_where(cfg, "listen", "address", buf, sizeof(buf));
	snprintf(err, sizeof(err), "%s:2", path);
	cr_assert_str_eq(buf, err);
	config_where(cfg, "backend", "address", buf, sizeof(buf));
	snprintf(err, sizeof(err), "%s:11", path);
	cr_assert_str_eq(buf, err);
}

Test(config, where_small_buffer)
{
	char buf[4];

	load_ok(TLS);
	config_where(cfg, "tls", "cert", buf, sizeof(buf));
	cr_assert_eq(strlen(buf), 3);
	cr_assert(strncmp(buf, path, 3) == 0);
}

Test(config, log_levels_and_formats)
{
	load_ok(TLS "[log]\nlevel = error\nformat = text\n");
	cr_assert_eq(cfg->log_level, LOG_LVL_ERROR);
	config_free(cfg);
	unlink(path);
	load_ok(TLS "[log]\nlevel = warn\n");
	cr_assert_eq(cfg->log_level, LOG_LVL_WARN);
}

Test(config, listen_repeatable)
{
	load_ok("[listen]\n"
	    "address = 0.0.0.0:8883\n"
	    "; a comment between\n"
	    "address = [::]:8883\n"
	    "address = *:9883\n" TLS);
	cr_assert_eq(cfg->nlisten, 3);
	cr_assert_str_eq(cfg->listen[0], "0.0.0.0:8883");
	cr_assert_str_eq(cfg->listen[1], "[::]:8883");
	cr_assert_str_eq(cfg->listen[2], "*:9883");
	cr_assert_eq(cfg->listen_line[0], 2);
	cr_assert_eq(cfg->listen_line[1], 4);
	cr_assert_eq(cfg->listen_line[2], 5);
}

Test(config, listen_at_most_max)
{
	char text[4096];
	size_t o;
	int i;

	o = (size_t)snprintf(text, sizeof(text), "[listen]\n");
	for (i = 0; i < CONFIG_MAX_LISTEN; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o,
		    "address = 127.0.0.1:%d\n", 10000 + i);
	snprintf(text + o, sizeof(text) - o, TLS);
	load_ok(text);
	cr_assert_eq(cfg->nlisten, CONFIG_MAX_LISTEN);
	cr_assert_str_eq(cfg->listen[CONFIG_MAX_LISTEN - 1],
	    "127.0.0.1:10015");
}

Test(config, listen_too_many)
{
	char text[4096];
	size_t o;
	int i;

	o = (size_t)snprintf(text, sizeof(text), "[listen]\n");
	for (i = 0; i < CONFIG_MAX_LISTEN + 1; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o,
		    "address = 127.0.0.1:%d\n", 10000 + i);
	snprintf(text + o, sizeof(text) - o, TLS);
	load_fails(text, CONFIG_MAX_LISTEN + 2,
	    "too many address lines in [listen]: at most 16");
}

Test(config, listen_bad)
{
	load_fails(TLS "[listen]\naddress = localhost:8883\n", 6,
	    "is not an IP address");
	config_free(cfg);
	unlink(path);
	load_fails(TLS "[listen]\naddress = 0.0.0.0:65536\n", 6,
	    "port \"65536\" must be a number from 0 to 65535");
}

Test(config, inline_comment_bom_crlf)
{
	load_ok("\xef\xbb\xbf" "[tls]\r\n"
	    "cert = /c ; the chain\r\n"
	    "key = /k\r\n"
	    "ca = /a\r\n"
	    "[limits]\r\n"
	    "handshake_timeout = 20s ; twenty seconds\r\n"
	    "# hash comments too\r\n");
	cr_assert_str_eq(cfg->tls_cert, "/c");
	cr_assert_eq(cfg->handshake_timeout_ms, 20000);
}

Test(config, shipped_example_loads)
{
	cfg = config_load(SRCDIR "/etc/moat.ini", err, sizeof(err));
	cr_assert_not_null(cfg, "%s", err);
	cr_assert_str_eq(cfg->tls_cert, "/etc/moat/server.crt");
	cr_assert_str_eq(cfg->tls_key, "/etc/moat/server.key");
	cr_assert_str_eq(cfg->tls_ca, "/etc/moat/ca.crt");
	cr_assert_str_eq(cfg->listen[0], "0.0.0.0:8883");
	cr_assert_str_eq(cfg->backend, "127.0.0.1:1883");
	cr_assert_eq(cfg->handshake_timeout_ms, 10000);
}

/*
 * Uncommenting every commented default in the shipped example must give
 * the same config as leaving them out: the example documents the defaults.
 */
Test(config, shipped_example_defaults_are_true)
{
	static const char *skip[] = {
		";address = [::]:8883",            /* a second example */
		";address = unix:",                /* an alternative */
		";crl",                            /* no default */
		";ciphers",                        /* an example list */
	};
	static char text[65536];
	char line[512];
	struct config *def;
	FILE *f;
	size_t o = 0, i;
	int sk;

	def = config_load(SRCDIR "/etc/moat.ini", err, sizeof(err));
	cr_assert_not_null(def, "%s", err);
	f = fopen(SRCDIR "/etc/moat.ini", "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		sk = 0;
		for (i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
			if (strncmp(line, skip[i], strlen(skip[i])) == 0)
				sk = 1;
		/* ";key = value" with no space after ';' is a setting. */
		if (!sk && line[0] == ';' && line[1] != ' ' &&
		    line[1] != '\n' && strchr(line, '=') != NULL)
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s",
			    line + 1);
		else
			o += (size_t)snprintf(text + o, sizeof(text) - o, "%s",
			    line);
		cr_assert_lt(o, sizeof(text));
	}
	fclose(f);
	load_ok(text);
	cr_assert_eq(cfg->nlisten, def->nlisten);
	cr_assert_str_eq(cfg->listen[0], def->listen[0]);
	cr_assert_eq(cfg->listen_line[0] > 0, 1, "address not uncommented");
	cr_assert_str_eq(cfg->backend, def->backend);
	cr_assert_eq(cfg->tls_min_version, def->tls_min_version);
	cr_assert_eq(cfg->handshake_timeout_ms, def->handshake_timeout_ms);
	cr_assert_eq(cfg->connect_timeout_ms, def->connect_timeout_ms);
	cr_assert_eq(cfg->idle_timeout_ms, def->idle_timeout_ms);
	cr_assert_eq(cfg->max_lifetime_ms, def->max_lifetime_ms);
	cr_assert_eq(cfg->drain_timeout_ms, def->drain_timeout_ms);
	cr_assert_eq(cfg->tls_close_on_cert_expiry,
	    def->tls_close_on_cert_expiry);
	cr_assert_eq(cfg->max_connections, def->max_connections);
	cr_assert_eq(cfg->log_level, def->log_level);
	cr_assert_eq(cfg->log_format, def->log_format);
	config_free(def);
}

/* --- structure errors ------------------------------------------------- */

Test(config, missing_file)
{
	snprintf(path, sizeof(path), "/tmp/moat-test-does-not-exist.ini");
	cfg = config_load(path, err, sizeof(err));
	cr_assert_null(cfg);
	assert_err_is(": cannot open: No such file or directory");
	path[0] = '\0';
}

Test(config, directory)
{
	cfg = config_load("/tmp", err, sizeof(err));
	cr_assert_null(cfg);
	cr_assert_str_eq(err, "/tmp: cannot open: Is a directory");
}

Test(config, null_path)
{
	cfg = config_load(NULL, err, sizeof(err));
	cr_assert_null(cfg);
	cr_assert_str_eq(err, "no configuration file given");
}

Test(config, empty_file_needs_cert)
{
	load("");
	cr_assert_null(cfg);
	assert_err_is(": [tls] cert is required: set it to the PEM file with "
	    "the server certificate chain");
}

Test(config, missing_key)
{
	load("[tls]\ncert = /c\nca = /a\n");
	cr_assert_null(cfg);
	assert_err_is(": [tls] key is required: set it to the PEM file with "
	    "the server's private key");
}

Test(config, missing_ca)
{
	load("[tls]\ncert = /c\nkey = /k\n");
	cr_assert_null(cfg);
	assert_err_is(": [tls] ca is required: set it to the PEM bundle of "
	    "the CAs that issue device certificates");
}

Test(config, unknown_section_with_keys)
{
	load(TLS "[tsl]\ncert = /x\n");
	cr_assert_null(cfg);
	assert_err_is(":5: unknown section [tsl]; known sections: [listen], "
	    "[tls], [backend], [limits], [identity], [policy], [log], "
	    "[process], [admin]");
}

Test(config, unknown_empty_section)
{
	load_fails(TLS "[limit]\n; nothing here\n", 5,
	    "unknown section [limit]");
}

Test(config, unknown_long_section)
{
	/* Longer than inih's 50-byte section buffer: still named in full. */
	load_fails(TLS "[" "abcdefghij" "abcdefghij" "abcdefghij" "abcdefghij"
	    "abcdefghij" "XYZ]\nkey = v\n", 5,
	    "unknown section [abcdefghijabcdefghijabcdefghijabcdefghij"
	    "abcdefghijXYZ]");
}

Test(config, unknown_key)
{
	load("[listen]\naddress = 0.0.0.0:8883\n" TLS "[listen]\n"
	    "adress = 0.0.0.0:8884\n");
	cr_assert_null(cfg);
	assert_err_is(":8: unknown key \"adress\" in [listen]; known keys: "
	    "address");
}

Test(config, unknown_key_lists_section_keys)
{
	load(TLS "certificate = /x\n");
	cr_assert_null(cfg);
	assert_err_is(":5: unknown key \"certificate\" in [tls]; known keys: "
	    "cert, key, ca, crl, min_version, ciphers, groups, min_rsa_bits, "
	    "min_ecc_bits, sha1_signatures, close_on_cert_expiry");
}

Test(config, key_in_wrong_section)
{
	load_fails("[listen]\ncert = /x\n" TLS, 2,
	    "unknown key \"cert\" in [listen]; known keys: address "
	    "(cert belongs in [tls])");
}

Test(config, key_outside_section)
{
	load("cert = /x\n" TLS);
	cr_assert_null(cfg);
	assert_err_is(":1: \"cert\" is outside any section; put it under "
	    "[tls]");
}

Test(config, ambiguous_key_outside_section)
{
	load_fails("; leading comment\naddress = 127.0.0.1:1883\n" TLS, 2,
	    "\"address\" is outside any section; put it under [listen] or "
	    "[backend]");
}

Test(config, unknown_key_outside_section)
{
	load_fails("frobnicate = 1\n" TLS, 1,
	    "\"frobnicate\" is outside any section and is not a known key");
}

Test(config, duplicate_key)
{
	load(TLS "[limits]\nmax_connections = 5\nmax_connections = 6\n");
	cr_assert_null(cfg);
	assert_err_is(":7: max_connections is already set on line 6; a key "
	    "may appear once in a section: keep only one");
}

Test(config, duplicate_key_across_sections)
{
	load_fails(TLS "[log]\nlevel = info\n[tls]\ncert = /other\n", 8,
	    "cert is already set on line 2");
}

Test(config, duplicate_key_same_value)
{
	load_fails(TLS "[tls]\nkey = /etc/moat/server.key\n", 6,
	    "key is already set on line 3");
}

Test(config, continuation_line)
{
	load_fails("[tls]\ncert = /etc/moat/a.crt\n    /etc/moat/b.crt\n"
	    "key = /k\nca = /a\n", 3,
	    "this line starts with whitespace, so it would continue the "
	    "value of \"cert\" above");
}

Test(config, continuation_of_repeatable)
{
	load_fails("[listen]\naddress = 0.0.0.0:8883\n\t[::]:8883\n" TLS, 3,
	    "continue the value of \"address\"");
}

Test(config, indented_key_after_section_is_fine)
{
	/* Nothing to continue right after a section line. */
	load_ok("[tls]\n  cert = /c\nkey = /k\nca = /a\n");
	cr_assert_str_eq(cfg->tls_cert, "/c");
}

Test(config, indented_key_after_key_is_continuation)
{
	load_fails("[tls]\ncert = /c\n  key = /k\nca = /a\n", 3,
	    "continue the value of \"cert\"");
}

Test(config, syntax_error_no_equals)
{
	load(TLS "[limits]\nhandshake_timeout 10s\n");
	cr_assert_null(cfg);
	assert_err_is(":6: syntax error: expected \"key = value\" or "
	    "\"[section]\"");
}

Test(config, syntax_error_unclosed_section)
{
	load_fails(TLS "[limits\nhandshake_timeout = 10s\n", 5,
	    "syntax error");
}

Test(config, first_error_wins_syntax_first)
{
	load_fails(TLS "oops\n[tls]\nadress = x\n", 5, "syntax error");
}

Test(config, first_error_wins_handler_first)
{
	load_fails(TLS "adress = x\noops\n", 5, "unknown key \"adress\"");
}

Test(config, first_error_wins_reader_first)
{
	load_fails("[nope]\n" TLS "oops\n", 1, "unknown section [nope]");
}

Test(config, line_limit_edge_ok)
{
	char text[1024], val[256];
	size_t n;

	/* "cert = " (7) + value (191) = 198 characters + newline = 199. */
	memset(val, 'c', 191);
	val[0] = '/';
	val[191] = '\0';
	snprintf(text, sizeof(text), "[tls]\ncert = %s\nkey = /k\nca = /a\n",
	    val);
	n = strlen("cert = ") + strlen(val);
	cr_assert_eq(n, CONFIG_MAX_LINE - 2);
	load_ok(text);
	cr_assert_str_eq(cfg->tls_cert, val);
}

Test(config, line_limit_edge_too_long)
{
	char text[1024], val[256];

	/* 199 characters + newline: inih would split it. */
	memset(val, 'c', 192);
	val[0] = '/';
	val[192] = '\0';
	snprintf(text, sizeof(text), "[tls]\ncert = %s\nkey = /k\nca = /a\n",
	    val);
	load(text);
	cr_assert_null(cfg);
	assert_err_is(":2: the line is too long: moat reads at most 198 "
	    "characters per line; shorten it, for example by using a "
	    "shorter path or a symbolic link");
}

Test(config, long_comment_line_is_an_error)
{
	char text[1024];
	size_t o;

	o = (size_t)snprintf(text, sizeof(text), TLS ";");
	memset(text + o, 'x', 300);
	snprintf(text + o + 300, sizeof(text) - o - 300, "\n");
	load_fails(text, 5, "the line is too long");
}

Test(config, long_last_line_without_newline)
{
	char text[1024];
	size_t o;

	o = (size_t)snprintf(text, sizeof(text), TLS "[log]\n;");
	memset(text + o, 'x', 250);
	text[o + 250] = '\0';
	load_fails(text, 6, "the line is too long");
}

Test(config, nul_byte)
{
	static const char text[] = TLS "[log]\nlevel = info\0junk\n";

	write_file(text, sizeof(text) - 1);
	cfg = config_load(path, err, sizeof(err));
	cr_assert_null(cfg);
	assert_err_is(":6: the line contains a NUL byte; is this a text "
	    "file?");
}

Test(config, file_too_large)
{
	char *text;
	size_t len = 1024 * 1024 + 100, i;

	text = malloc(len + 1);
	cr_assert_not_null(text);
	memset(text, '\n', len);
	memcpy(text, TLS, strlen(TLS));
	for (i = strlen(TLS); i + 100 <= len; i += 100) {
		memset(text + i, 'x', 100);
		text[i] = ';';
		text[i + 99] = '\n';
	}
	write_file(text, len);
	free(text);
	cfg = config_load(path, err, sizeof(err));
	cr_assert_null(cfg);
	assert_err_is(": the file is larger than 1048576 bytes; is it the "
	    "right file?");
}

Test(config, file_just_under_limit)
{
	char *text;
	size_t len = 1024 * 1024, i;

	text = malloc(len + 1);
	cr_assert_not_null(text);
	memset(text, '\n', len);
	memcpy(text, TLS, strlen(TLS));
	for (i = strlen(TLS); i + 100 <= len; i += 100) {
		memset(text + i, 'x', 100);
		text[i] = ';';
		text[i + 99] = '\n';
	}
	write_file(text, len);
	free(text);
	cfg = config_load(path, err, sizeof(err));
	cr_assert_not_null(cfg, "%s", err);
}

/* --- value errors ----------------------------------------------------- */

Test(config, empty_required)
{
	load("[tls]\ncert =\nkey = /k\nca = /a\n");
	cr_assert_null(cfg);
	assert_err_is(":2: cert is empty: set it to the PEM file with the "
	    "server certificate chain");
}

Test(config, empty_with_default)
{
	load(TLS "[limits]\nhandshake_timeout = ; forgot\n");
	cr_assert_null(cfg);
	assert_err_is(":6: handshake_timeout is empty: set it to a duration "
	    "such as 10s, or delete the line to use the default (10s)");
}

Test(config, empty_optional)
{
	load_fails(TLS "crl =\n", 5, "crl is empty: set it to the PEM "
	    "certificate revocation list of the device CA, or delete the line");
}

Test(config, empty_backend)
{
	load_fails(TLS "[backend]\naddress =\n", 6, "address is empty");
}

Test(config, duration_needs_unit)
{
	load("[tls]\ncert = /c\nkey = /k\nca = /a\n[limits]\n\n"
	    "handshake_timeout = 10\n");
	cr_assert_null(cfg);
	assert_err_is(":7: handshake_timeout = 10: a duration needs a unit, "
	    "for example 10s or 2m");
}

Test(config, duration_bad_unit)
{
	load_fails(TLS "[limits]\nconnect_timeout = 10sec\n", 6,
	    "connect_timeout = 10sec: unknown unit \"sec\"");
}

Test(config, min_version_12_13_only)
{
	static const char *bad[] = { "1.0", "1.1", "tls1.2", "TLSv1.3", "1",
	    "1.4", "12" };
	char text[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), TLS "min_version = %s\n", bad[i]);
		load(text);
		cr_assert_null(cfg, "accepted %s", bad[i]);
		snprintf(text, sizeof(text), ":5: min_version = %s: the "
		    "allowed values are 1.2 and 1.3; TLS 1.0 and 1.1 are "
		    "deprecated (RFC 8996): they lack modern AEAD cipher "
		    "suites and have known weaknesses", bad[i]);
		assert_err_is(text);
		unlink(path);
		path[0] = '\0';
	}
}

Test(config, log_level_bad)
{
	load(TLS "[log]\nlevel = verbose\n");
	cr_assert_null(cfg);
	assert_err_is(":6: level = verbose: the allowed values are error, "
	    "warn, info and debug");
}

Test(config, log_format_bad)
{
	load_fails(TLS "[log]\nformat = JSON\n", 6,
	    "format = JSON: the allowed values are text and json");
}

Test(config, value_with_control_chars_is_escaped)
{
	load_fails(TLS "[log]\nlevel = in\x1b[31mfo\n", 6,
	    "level = in\\x1b[31mfo: the allowed values");
}

/* Bounds: each row is "value", accepted?, stored ms. */
struct bound {
	const char *key;
	const char *value;
	int ok;
	uint64_t want;
};

static uint64_t
field_of(const struct config *c, const char *key)
{
	if (strcmp(key, "handshake_timeout") == 0)
		return (c->handshake_timeout_ms);
	if (strcmp(key, "connect_timeout") == 0)
		return (c->connect_timeout_ms);
	if (strcmp(key, "idle_timeout") == 0)
		return (c->idle_timeout_ms);
	return (c->max_connections);
}

Test(config, bounds)
{
	static const struct bound b[] = {
		{ "handshake_timeout", "999ms", 0, 0 },
		{ "handshake_timeout", "1000ms", 1, 1000 },
		{ "handshake_timeout", "1s", 1, 1000 },
		{ "handshake_timeout", "5m", 1, 300000 },
		{ "handshake_timeout", "300001ms", 0, 0 },
		{ "handshake_timeout", "0", 0, 0 },
		{ "connect_timeout", "0s", 0, 0 },
		{ "connect_timeout", "1s", 1, 1000 },
		{ "connect_timeout", "300s", 1, 300000 },
		{ "connect_timeout", "6m", 0, 0 },
		{ "idle_timeout", "0", 1, 0 },
		{ "idle_timeout", "0ms", 1, 0 },
		{ "idle_timeout", "999ms", 0, 0 },
		{ "idle_timeout", "1s", 1, 1000 },
		{ "idle_timeout", "24h", 1, 86400000 },
		{ "idle_timeout", "1441m", 0, 0 },
		{ "max_connections", "0", 0, 0 },
		{ "max_connections", "1", 1, 1 },
		{ "max_connections", "1000000", 1, 1000000 },
		{ "max_connections", "1000001", 0, 0 },
		{ "max_connections", "-1", 0, 0 },
		{ "max_connections", "10k", 0, 0 },
		{ "max_connections", "1e3", 0, 0 },
		{ "max_connections", "99999999999999999999999", 0, 0 },
	};
	char text[256];
	size_t i;

	for (i = 0; i < sizeof(b) / sizeof(b[0]); i++) {
		snprintf(text, sizeof(text), TLS "[limits]\n%s = %s\n",
		    b[i].key, b[i].value);
		load(text);
		if (b[i].ok) {
			cr_assert_not_null(cfg, "%s = %s: %s", b[i].key,
			    b[i].value, err);
			cr_assert_eq(field_of(cfg, b[i].key), b[i].want,
			    "%s = %s", b[i].key, b[i].value);
			config_free(cfg);
			cfg = NULL;
		} else {
			cr_assert_null(cfg, "%s = %s accepted", b[i].key,
			    b[i].value);
			snprintf(text, sizeof(text), "%s:6: %s = %s: ", path,
			    b[i].key, b[i].value);
			cr_assert(strncmp(err, text, strlen(text)) == 0,
			    "got \"%s\"", err);
		}
		unlink(path);
		path[0] = '\0';
	}
}

Test(config, bounds_messages)
{
	load(TLS "[limits]\nhandshake_timeout = 6m\n");
	cr_assert_null(cfg);
	assert_err_is(":6: handshake_timeout = 6m: must be from 1s to 5m");
	unlink(path);
	load(TLS "[limits]\nidle_timeout = 500ms\n");
	cr_assert_null(cfg);
	assert_err_is(":6: idle_timeout = 500ms: must be 0 (off) or from 1s "
	    "to 24h");
	unlink(path);
	load(TLS "[limits]\nmax_connections = 0\n");
	cr_assert_null(cfg);
	assert_err_is(":6: max_connections = 0: must be a whole number from "
	    "1 to 1000000");
}

/* --- backend rule at load time ---------------------------------------- */

Test(config, backend_off_host)
{
	load("[backend]\naddress = 192.168.1.10:1883\n" TLS);
	cr_assert_null(cfg);
	assert_err_is(":2: backend address 192.168.1.10:1883 is not a "
	    "loopback address: moat sends plaintext MQTT to the broker, which "
	    "must never leave this host. Bind the broker to 127.0.0.1 "
	    "(Mosquitto: \"listener 1883 127.0.0.1\") and use address = "
	    "127.0.0.1:1883, or a Unix socket: address = "
	    "unix:/run/mosquitto/mosquitto.sock");
}

Test(config, backend_any)
{
	load_fails(TLS "[backend]\naddress = 0.0.0.0:1883\n", 6,
	    "means \"any address\", not loopback");
}

Test(config, backend_unix_relative)
{
	load_fails(TLS "[backend]\naddress = unix:mosquitto.sock\n", 6,
	    "must be absolute");
}

Test(config, backend_loopback_ok)
{
	load_ok(TLS "[backend]\naddress = [::1]:1883\n");
	cr_assert_str_eq(cfg->backend, "[::1]:1883");
}

/* --- [backend] source ------------------------------------------------ */

Test(config, source_unset_by_default)
{
	load_ok(TLS);
	cr_assert_null(cfg->backend_source);
}

Test(config, source_range_ok)
{
	load_ok(TLS "[backend]\naddress = 127.0.0.1:1883\n"
	    "source = 127.0.0.2-127.0.0.9\n");
	cr_assert_str_eq(cfg->backend_source, "127.0.0.2-127.0.0.9");
	config_free(cfg);
	cfg = NULL;
	unlink(path);
	load_ok(TLS "[backend]\naddress = [::1]:1883\nsource = ::1\n");
	cr_assert_str_eq(cfg->backend_source, "::1");
	config_free(cfg);
	cfg = NULL;
	unlink(path);
	/* A host name: the family is checked when it is resolved. */
	load_ok(TLS "[backend]\naddress = localhost:1883\n"
	    "source = 127.0.0.2\n");
}

Test(config, source_refused_on_its_line)
{
	load_fails(TLS "[backend]\nsource = 10.0.0.2-10.0.0.9\n", 6,
	    "10.0.0.2 is not a loopback address");
	unlink(path);
	load_fails(TLS "[backend]\nsource = 127.0.0.9-127.0.0.2\n", 6,
	    "the first address comes after the last");
	unlink(path);
	load_fails(TLS "[backend]\nsource = 127.0.0.2-::1\n", 6,
	    "mixes IPv4 and IPv6");
	unlink(path);
	load_fails(TLS "[backend]\nsource = 127.0.0.1-127.0.2.1\n", 6,
	    "has 513 addresses, more than the 256 allowed");
	unlink(path);
	load_fails(TLS "[backend]\nsource =\n", 6, "source is empty: set "
	    "it to loopback addresses such as 127.0.0.2-127.0.0.9, or "
	    "delete the line to leave it unset");
}

Test(config, source_with_unix_backend)
{
	/* The source line is named, wherever the address line is. */
	load_fails(TLS "[backend]\nsource = 127.0.0.2-127.0.0.9\n"
	    "address = unix:/run/mosquitto/mosquitto.sock\n", 6,
	    "source is set but the backend is a Unix socket");
}

Test(config, source_family_differs_from_backend)
{
	load_fails(TLS "[backend]\naddress = [::1]:1883\n"
	    "source = 127.0.0.2-127.0.0.9\n", 7,
	    "source is IPv4 but the backend address ::1 is IPv6");
	unlink(path);
	load_fails(TLS "[backend]\nsource = ::1\n", 6,
	    "source is IPv6 but the backend address 127.0.0.1 is IPv4");
}

/* --- ciphers ---------------------------------------------------------- */

Test(config, default_ciphers_pass_own_check)
{
	cr_assert(strncmp(config_default_ciphers, "TLS13-", 6) == 0);
	cr_assert_not_null(strstr(config_default_ciphers,
	    "ECDHE-RSA-CHACHA20-POLY1305"));
	cr_assert_null(strstr(config_default_ciphers, "CBC"));
	cr_assert_eq(config_check_ciphers(config_default_ciphers, err,
	    sizeof(err)), 0, "%s", err);
}

Test(config, ciphers_good_list)
{
	load_ok(TLS "ciphers = TLS13-AES256-GCM-SHA384:TLS13-AES128-GCM-SHA256:"
	    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305\n");
	cr_assert_str_eq(cfg->tls_ciphers, "TLS13-AES256-GCM-SHA384:"
	    "TLS13-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
	    "ECDHE-ECDSA-CHACHA20-POLY1305");
}

Test(config, check_ciphers_direct)
{
	cr_assert_eq(config_check_ciphers("TLS13-AES128-GCM-SHA256", err,
	    sizeof(err)), 0);
	cr_assert_eq(config_check_ciphers("DES-CBC3-SHA", err, sizeof(err)),
	    -1);
	cr_assert_not_null(strstr(err, "\"DES-CBC3-SHA\" is refused"), "%s",
	    err);
	cr_assert_eq(config_check_ciphers("", err, sizeof(err)), -1);
	cr_assert_not_null(strstr(err, "empty cipher name"), "%s", err);
}

Test(config, ciphers_refused)
{
	static const struct {
		const char *list;
		const char *token;
		const char *why;
	} bad[] = {
		{ "ECDHE-RSA-NULL-SHA", "ECDHE-RSA-NULL-SHA",
		    "do not encrypt" },
		{ "TLS13-AES128-GCM-SHA256:ECDHE-ECDSA-NULL-SHA",
		    "ECDHE-ECDSA-NULL-SHA", "do not encrypt" },
		{ "ADH-AES128-SHA", "ADH-AES128-SHA", "anonymous" },
		{ "AECDH-AES128-SHA", "AECDH-AES128-SHA", "anonymous" },
		{ "ECDHE-anon-AES128-SHA", "ECDHE-anon-AES128-SHA",
		    "anonymous" },
		{ "ECDHE-RSA-RC4-SHA", "ECDHE-RSA-RC4-SHA", "RC4" },
		{ "ECDHE-RSA-DES-CBC3-SHA", "ECDHE-RSA-DES-CBC3-SHA", "3DES" },
		{ "ecdhe-rsa-des-cbc3-sha", "ecdhe-rsa-des-cbc3-sha", "3DES" },
		{ "DHE-RSA-3DES-EDE-CBC-SHA", "DHE-RSA-3DES-EDE-CBC-SHA",
		    "3DES" },
		{ "EXP-RC4-MD5", "EXP-RC4-MD5", "RC4" },
		{ "DHE-EXP-AES", "DHE-EXP-AES", "export" },
		{ "ECDHE-RSA-MD5", "ECDHE-RSA-MD5", "MD5" },
		{ "ECDHE-PSK-AES128-CBC-SHA256", "ECDHE-PSK-AES128-CBC-SHA256",
		    "pre-shared-key" },
		{ "AES128-GCM-SHA256", "AES128-GCM-SHA256",
		    "only TLS 1.3 suites" },
		{ "TLS13-AES128-GCM-SHA256:ALL", "ALL", "only TLS 1.3 suites" },
		{ "HIGH:!aNULL", "HIGH", "only TLS 1.3 suites" },
		{ "tls13-aes128-gcm-sha256", "tls13-aes128-gcm-sha256",
		    "only TLS 1.3 suites" },
	};
	char text[512], want[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), TLS "ciphers = %s\n", bad[i].list);
		load(text);
		cr_assert_null(cfg, "accepted %s", bad[i].list);
		snprintf(want, sizeof(want), "%s:5: ciphers: \"%s\" is "
		    "refused: ", path, bad[i].token);
		cr_assert(strncmp(err, want, strlen(want)) == 0,
		    "want \"%s\", got \"%s\"", want, err);
		cr_assert_not_null(strstr(err, bad[i].why), "%s", err);
		cr_assert_not_null(strstr(err, "delete the ciphers line"));
		unlink(path);
		path[0] = '\0';
	}
}

Test(config, ciphers_empty_token)
{
	static const char *bad[] = {
		"TLS13-AES128-GCM-SHA256::ECDHE-RSA-AES128-GCM-SHA256",
		":TLS13-AES128-GCM-SHA256",
		"TLS13-AES128-GCM-SHA256:",
	};
	char text[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), TLS "ciphers = %s\n", bad[i]);
		load_fails(text, 5, "empty cipher name");
		unlink(path);
		path[0] = '\0';
	}
}

Test(config, ciphers_dhe_allowed)
{
	load_ok(TLS "ciphers = DHE-RSA-AES128-GCM-SHA256\n");
	cr_assert_str_eq(cfg->tls_ciphers, "DHE-RSA-AES128-GCM-SHA256");
}

/* Refused as name, with why in the message and the allowed suites listed. */
static void
cipher_refused(const char *name, const char *why)
{
	char text[512], want[256];

	snprintf(text, sizeof(text), TLS "ciphers = TLS13-AES128-GCM-SHA256:"
	    "%s\n", name);
	load(text);
	cr_assert_null(cfg, "accepted %s", name);
	snprintf(want, sizeof(want), "%s:5: ciphers: \"%s\" is refused: ",
	    path, name);
	cr_assert(strncmp(err, want, strlen(want)) == 0,
	    "want \"%s\", got \"%s\"", want, err);
	cr_assert_not_null(strstr(err, why), "want \"%s\" in \"%s\"", why, err);
	cr_assert_not_null(strstr(err, "Allowed (AEAD, forward-secret): "
	    "TLS13-AES128-GCM-SHA256:"), "%s", err);
	cr_assert_not_null(strstr(err, "ECDHE-RSA-CHACHA20-POLY1305"), "%s",
	    err);
	cr_assert_eq(config_cipher_allowed(name), 0, "%s", name);
	unlink(path);
	path[0] = '\0';
}

Test(config, ciphers_integrity_only_refused)
{
	cipher_refused("TLS13-SHA256-SHA256", "does not encrypt");
	cipher_refused("TLS13-SHA384-SHA384", "integrity-only");
}

Test(config, ciphers_cbc_refused)
{
	cipher_refused("ECDHE-ECDSA-AES128-SHA256", "CBC mode");
	cipher_refused("DHE-RSA-AES256-SHA256", "not authenticated "
	    "encryption (AEAD)");
}

Test(config, ciphers_sha1_refused)
{
	cipher_refused("ECDHE-RSA-AES128-SHA", "SHA-1");
	cipher_refused("ECDHE-ECDSA-AES256-SHA", "SHA-1");
}

Test(config, ciphers_unknown_refused)
{
	cipher_refused("TLS13-AES128-GCM-SHA512", "not a suite moat knows");
	cipher_refused("ECDHE-RSA-FOO", "not a suite moat knows");
}

Test(config, ciphers_weak_aead_refused)
{
	cipher_refused("TLS13-AES128-CCM-8-SHA256", "8-byte");
	cipher_refused("ECDHE-ECDSA-AES128-CCM", "only in TLS 1.3");
	cipher_refused("ECDHE-RSA-CHACHA20-POLY1305-OLD", "draft");
}

Test(config, ciphers_allow_list)
{
	static const char *good[] = {
		"TLS13-AES128-GCM-SHA256", "TLS13-AES256-GCM-SHA384",
		"TLS13-CHACHA20-POLY1305-SHA256", "TLS13-AES128-CCM-SHA256",
		"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384",
		"ECDHE-ECDSA-CHACHA20-POLY1305", "DHE-RSA-AES256-GCM-SHA384",
		"DHE-RSA-CHACHA20-POLY1305",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		cr_assert(config_cipher_allowed(good[i]), "%s", good[i]);
		cr_assert_eq(config_check_ciphers(good[i], err, sizeof(err)),
		    0, "%s: %s", good[i], err);
	}
	/* Whole names only, never a prefix or a longer name. */
	cr_assert_not(config_cipher_allowed("TLS13-AES128-GCM"));
	cr_assert_not(config_cipher_allowed("TLS13-AES128-GCM-SHA2566"));
	cr_assert_not(config_cipher_allowed(""));
}

/* --- durations -------------------------------------------------------- */

Test(config, durations_good)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} good[] = {
		{ "0", 0 }, { "0s", 0 }, { "500ms", 500 }, { "10s", 10000 },
		{ "2m", 120000 }, { "1h", 3600000 }, { "010s", 10000 },
		{ "18446744073709551615ms", UINT64_MAX },
	};
	uint64_t ms;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ms = 12345;
		cr_assert_eq(config_parse_duration(good[i].s, &ms, err,
		    sizeof(err)), 0, "%s: %s", good[i].s, err);
		cr_assert_eq(ms, good[i].ms, "%s", good[i].s);
	}
}

Test(config, durations_bad)
{
	static const struct {
		const char *s;
		const char *why;
	} bad[] = {
		{ "", "empty" },
		{ "10", "needs a unit" },
		{ "10x", "unknown unit \"x\"" },
		{ "10S", "unknown unit \"S\"" },
		{ "10sms", "unknown unit" },
		{ "-1s", "cannot be negative" },
		{ "+1s", "starts with a number" },
		{ "s", "starts with a number" },
		{ "1.5s", "whole number" },
		{ "99999999999999999999s", "too large" },
		{ "18446744073709551616ms", "too large" },
		{ "5124095576030432h", "too large" },
		{ " 10s", "no spaces" },
		{ "10 s", "no spaces" },
		{ "10s ", "no spaces" },
	};
	uint64_t ms;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ms = 777;
		err[0] = '\0';
		cr_assert_eq(config_parse_duration(bad[i].s, &ms, err,
		    sizeof(err)), -1, "accepted \"%s\"", bad[i].s);
		cr_assert_eq(ms, 777, "\"%s\" wrote a result", bad[i].s);
		cr_assert_not_null(strstr(err, bad[i].why),
		    "\"%s\": want \"%s\" in \"%s\"", bad[i].s, bad[i].why, err);
	}
	cr_assert_eq(config_parse_duration(NULL, &ms, err, sizeof(err)), -1);
}

/* --- reference -------------------------------------------------------- */

Test(config, reference_lists_every_option)
{
	static const char *want[] = {
		"[listen]\n  address = ADDRESS:PORT  (default: 0.0.0.0:8883)"
		    "  (repeatable)\n",
		"[tls]\n  cert = PATH  (required)\n",
		"  key = PATH  (required)\n",
		"  ca = PATH  (required)\n",
		"  crl = PATH  (optional)\n",
		"  min_version = 1.2 | 1.3  (default: 1.2)\n",
		"  ciphers = SUITE:SUITE:...  (optional)\n",
		"[backend]\n  address = HOST:PORT | unix:/PATH  "
		    "(default: 127.0.0.1:1883)\n",
		"[limits]\n  handshake_timeout = DURATION  (default: 10s)\n",
		"  connect_timeout = DURATION  (default: 10s)\n",
		"  idle_timeout = DURATION  (default: 0)\n",
		"  max_connections = NUMBER  (default: 10000)\n",
		"[log]\n  level = error | warn | info | debug  "
		    "(default: info)\n",
		"  format = text | json  (default: text)\n",
		"ECDHE-RSA-CHACHA20-POLY1305",
	};
	static char buf[65536];
	char *line;
	size_t n, i;
	FILE *f;

	f = tmpfile();
	cr_assert_not_null(f);
	config_print_reference(f);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	cr_assert_lt(n, sizeof(buf) - 1);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert_not_null(strstr(buf, want[i]),
		    "missing \"%s\" in:\n%s", want[i], buf);
	/* Wrapped for a terminal. */
	for (line = strtok(buf, "\n"); line != NULL; line = strtok(NULL, "\n"))
		cr_assert_leq(strlen(line), 78, "long line: %s", line);
}

Test(config, free_null)
{
	config_free(NULL);
	cr_assert(1);
}

Test(config, certificate_floors_default_and_set)
{
	load_ok(TLS);
	cr_assert_eq(cfg->tls_min_rsa_bits, 2048);
	cr_assert_eq(cfg->tls_min_ecc_bits, 256);
	cr_assert_eq(cfg->tls_sha1_signatures, 0);
	config_free(cfg);
	cfg = NULL;
	unlink(path);
	load_ok(TLS "min_rsa_bits = 3072\nmin_ecc_bits = 384\n"
	    "sha1_signatures = accept\n");
	cr_assert_eq(cfg->tls_min_rsa_bits, 3072);
	cr_assert_eq(cfg->tls_min_ecc_bits, 384);
	cr_assert_eq(cfg->tls_sha1_signatures, 1);
}

Test(config, certificate_floors_bounds)
{
	load(TLS "min_rsa_bits = 512\n");
	cr_assert_null(cfg);
	assert_err_is(":5: min_rsa_bits = 512: must be a whole number from "
	    "1024 to 16384");
	unlink(path);
	load(TLS "min_ecc_bits = 128\n");
	cr_assert_null(cfg);
	assert_err_is(":5: min_ecc_bits = 128: must be a whole number from "
	    "160 to 521");
	unlink(path);
	load(TLS "sha1_signatures = yes\n");
	cr_assert_null(cfg);
	cr_assert(strstr(err, "refuse") != NULL && strstr(err, "accept") !=
	    NULL, "%s", err);
}

/* --- [process] -------------------------------------------------------- */

Test(config, workers_default_is_auto)
{
	load_ok(TLS);
	cr_assert_eq(cfg->workers, 0, "auto is stored as 0");
}

Test(config, workers_auto)
{
	load_ok(TLS "[process]\nworkers = auto\n");
	cr_assert_eq(cfg->workers, 0);
}

Test(config, workers_number)
{
	load_ok(TLS "[process]\nworkers = 256\n");
	cr_assert_eq(cfg->workers, 256);
}

Test(config, workers_zero)
{
	load_fails(TLS "[process]\nworkers = 0\n", 6,
	    "workers = 0: must be auto or a whole number from 1 to 256");
}

Test(config, workers_too_many)
{
	load_fails(TLS "[process]\nworkers = 257\n", 6,
	    "must be auto or a whole number from 1 to 256");
}

Test(config, workers_not_a_number)
{
	load_fails(TLS "[process]\nworkers = Auto\n", 6,
	    "must be auto or a whole number");
}

Test(config, auto_only_where_allowed)
{
	load_fails(TLS "[limits]\nmax_connections = auto\n", 6,
	    "max_connections = auto: must be a whole number from 1 to");
}

/* --- [process] user and group ----------------------------------------- */

Test(config, process_user_group)
{
	char buf[128];

	load_ok(TLS);
	cr_assert_null(cfg->user);
	cr_assert_null(cfg->group);
	config_free(cfg);
	cfg = NULL;
	unlink(path);
	load_ok(TLS "[process]\nuser = moat\ngroup = moat-ssl\n");
	cr_assert_str_eq(cfg->user, "moat");
	cr_assert_str_eq(cfg->group, "moat-ssl");
	config_where(cfg, "process", "group", buf, sizeof(buf));
	snprintf(err, sizeof(err), "%s:7", path);
	cr_assert_str_eq(buf, err);
	config_free(cfg);
	cfg = NULL;
	unlink(path);
	/* Names the system may have; whether they exist is not asked here. */
	load_ok(TLS "[process]\nuser = _svc.moat-2\ngroup = host$\n");
	cr_assert_str_eq(cfg->user, "_svc.moat-2");
}

Test(config, process_user_spelling)
{
	static const struct {
		const char *line, *want;
	} bad[] = {
		{ "user = -moat", "user = -moat: not an account name" },
		{ "user = mo at", "user = mo at: not an account name" },
		{ "user = moat/x", "not an account name" },
		{ "user = $moat", "not an account name" },
		{ "user = mo$at", "not an account name" },
		{ "user = 65534", "user = 65534: write the account's name, "
		    "not its number" },
		{ "user = a23456789012345678901234567890123",
		    "an account name has at most 32 characters" },
		{ "group = -moat", "group = -moat: not an account name" },
		{ "group = 0", "group = 0: write the account's name" },
	};
	char text[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* A group line comes after a good user line. */
		snprintf(text, sizeof(text), TLS "[process]\n%s%s\n",
		    strncmp(bad[i].line, "group", 5) == 0 ? "user = moat\n" :
		    "", bad[i].line);
		load(text);
		cr_assert_null(cfg, "accepted: %s", bad[i].line);
		cr_assert(strstr(err, bad[i].want) != NULL,
		    "%s: want \"%s\" in \"%s\"", bad[i].line, bad[i].want,
		    err);
		unlink(path);
	}
}

Test(config, process_group_needs_user)
{
	load_fails(TLS "[process]\nworkers = 1\ngroup = moat\n", 7,
	    "[process] group is set but user is not; set user too");
}

/* --- [admin] -------------------------------------------------------------- */

Test(config, admin_default_off)
{
	load_ok(TLS);
	cr_assert_str_eq(cfg->admin_address, "off");
}

Test(config, admin_address)
{
	load_ok(TLS "[admin]\naddress = 127.0.0.1:9883\n");
	cr_assert_str_eq(cfg->admin_address, "127.0.0.1:9883");
}

Test(config, admin_address_any_is_allowed_when_explicit)
{
	load_ok(TLS "[admin]\naddress = 0.0.0.0:9883\n");
	cr_assert_str_eq(cfg->admin_address, "0.0.0.0:9883");
}

Test(config, admin_address_needs_a_fixed_port)
{
	load_fails(TLS "[admin]\naddress = 127.0.0.1:0\n", 6,
	    "needs a fixed port");
}

Test(config, admin_address_refuses_names_and_junk)
{
	load_fails(TLS "[admin]\naddress = localhost:9883\n", 6, "address");
	teardown();
	setup();
	load_fails(TLS "[admin]\naddress = on\n", 6, "address");
}

/* --- [limits] max_connections_per_identity, on_duplicate --------------- */

Test(config, per_identity_limit_is_off_by_default)
{
	load_ok(TLS);
	cr_assert_eq(cfg->max_conns_per_identity, 0);
	cr_assert_eq(cfg->on_duplicate, DUP_REPLACE);
}

Test(config, per_identity_limit_values)
{
	static const struct {
		const char *value;
		uint64_t want;
	} ok[] = { { "0", 0 }, { "1", 1 }, { "3", 3 }, { "1000000", 1000000 } };
	char text[512];
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		snprintf(text, sizeof(text), TLS "[limits]\n"
		    "max_connections_per_identity = %s\non_duplicate = %s\n",
		    ok[i].value, i % 2 ? "refuse" : "replace");
		load_ok(text);
		cr_assert_eq(cfg->max_conns_per_identity, ok[i].want);
		cr_assert_eq(cfg->on_duplicate, i % 2 ? DUP_REFUSE :
		    DUP_REPLACE);
		teardown();
		setup();
	}
}

Test(config, per_identity_limit_refuses_bad_values)
{
	static const char *bad[] = { "1000001", "-1", "one", "1.5", "",
	    "2 connections", "0x10" };
	char text[512];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), TLS "[limits]\n"
		    "max_connections_per_identity = %s\n", bad[i]);
		load_fails(text, 6, "max_connections_per_identity");
		teardown();
		setup();
	}
	load_fails(TLS "[limits]\nmax_connections_per_identity = 7\n"
	    "max_connections_per_identity = 8\n", 7, "already set on line 6");
}

Test(config, on_duplicate_refuses_other_words)
{
	load_fails(TLS "[limits]\non_duplicate = kick\n", 6,
	    "on_duplicate = kick: the allowed values are replace and refuse");
	teardown();
	setup();
	load_fails(TLS "[limits]\non_duplicate = Refuse\n", 6,
	    "the allowed values are replace and refuse");
}

/* --- [policy] ---------------------------------------------------------- */

Test(config, policy_off_by_default)
{
	load_ok(TLS);
	cr_assert_eq(cfg->policy_on, 0);
	cr_assert_null(cfg->policy_publish);
	cr_assert_null(cfg->policy_subscribe);
	cr_assert_eq(cfg->policy_on_denied, POLICY_DENIED_DISCONNECT);
	teardown();
	setup();
	/* a [policy] line alone sets nothing */
	load_ok(TLS "[policy]\n; no rules\n");
	cr_assert_eq(cfg->policy_on, 0);
}

Test(config, policy_rules_set)
{
	char buf[256];

	load_ok(TLS "[policy]\npublish = devices/{identity}/#, broadcast/#\n"
	    "subscribe = #\non_denied_publish = drop\n");
	cr_assert_eq(cfg->policy_on, 1);
	cr_assert_str_eq(cfg->policy_publish,
	    "devices/{identity}/#, broadcast/#");
	cr_assert_str_eq(cfg->policy_subscribe, "#");
	cr_assert_eq(cfg->policy_on_denied, POLICY_DENIED_DROP);
	cr_assert_str_eq(config_where(cfg, "policy", "subscribe", buf,
	    sizeof(buf)) + strlen(path), ":7");
}

Test(config, policy_empty_list_allows_nothing)
{
	load_ok(TLS "[policy]\npublish = devices/{identity}/#\nsubscribe =\n");
	cr_assert_eq(cfg->policy_on, 1);
	cr_assert_str_eq(cfg->policy_subscribe, "");
	teardown();
	setup();
	load_ok(TLS "[policy]\npublish =\nsubscribe =\n");
	cr_assert_eq(cfg->policy_on, 1);
	cr_assert_str_eq(cfg->policy_publish, "");
}

Test(config, policy_other_keys_still_refuse_empty)
{
	load_fails(TLS "[backend]\naddress =\n", 6, "address is empty");
}

Test(config, policy_needs_both_lists)
{
	load_fails(TLS "[policy]\npublish = a/#\n", 6,
	    "[policy] publish is set but subscribe is not; set subscribe "
	    "too (\"subscribe =\" with nothing after it allows none");
	teardown();
	setup();
	load_fails(TLS "[policy]\nsubscribe =\n", 6,
	    "[policy] subscribe is set but publish is not");
}

Test(config, policy_on_denied_needs_rules)
{
	load_fails(TLS "[policy]\non_denied_publish = drop\n", 6,
	    "on_denied_publish is set but there are no publish and "
	    "subscribe rules");
	teardown();
	setup();
	load_fails(TLS "[policy]\npublish = a\nsubscribe = a\n"
	    "on_denied_publish = close\n", 8,
	    "on_denied_publish = close: the allowed values are disconnect "
	    "and drop");
}

Test(config, policy_bad_rules_name_the_line)
{
	load_fails(TLS "[policy]\npublish = a/#\nsubscribe = a/#, b+\n", 7,
	    "subscribe rule \"b+\" has '+' inside a level");
	teardown();
	setup();
	load_fails(TLS "[policy]\npublish = a/{id}/#\nsubscribe = a\n", 6,
	    "unknown placeholder {id}");
	teardown();
	setup();
	load_fails(TLS "[policy]\npublish = a,\nsubscribe = a\n", 6,
	    "publish: rule 2 is empty");
	teardown();
	setup();
	load_fails(TLS "[policy]\npublish = a\nsubscribe = $share/g/a\n", 7,
	    "begins with $share/");
}

Test(config, groups_default_and_parse)
{
	int codes[CONFIG_MAX_GROUPS];
	unsigned n;

	load_ok(TLS);
	cr_assert_str_eq(cfg->tls_groups, "X25519:P-256");
	cr_assert_eq(config_parse_groups(config_default_groups, codes, &n, err,
	    sizeof(err)), 0, "%s", err);
	cr_assert_eq(n, 2);
	cr_assert_eq(codes[0], TLS_GROUP_X25519);
	cr_assert_eq(codes[1], TLS_GROUP_P256);
	cr_assert_eq(config_parse_groups("prime256v1:x448:FFDHE3072", codes,
	    &n, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(n, 3);
	cr_assert_eq(codes[0], TLS_GROUP_P256);
	cr_assert_eq(codes[1], TLS_GROUP_X448);
	cr_assert_eq(codes[2], TLS_GROUP_FFDHE3072);
	cr_assert_str_eq(config_group_name(TLS_GROUP_P521), "P-521");
}

Test(config, groups_refused)
{
	static const struct {
		const char *list;
		const char *why;
	} bad[] = {
		{ "P-224", "\"P-224\" is refused" },
		{ "X25519:secp192r1", "\"secp192r1\" is refused" },
		{ "X25519:P-256:x25519", "named twice" },
		{ "", "empty group name" },
		{ "X25519:", "empty group name" },
		{ "X25519:P-256-and-a-name-much-longer-than-any-group",
		    "is refused" },
	};
	int codes[CONFIG_MAX_GROUPS];
	unsigned i, n;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(config_parse_groups(bad[i].list, codes, &n, err,
		    sizeof(err)), -1, "%s", bad[i].list);
		cr_assert_not_null(strstr(err, bad[i].why), "%s: %s",
		    bad[i].list, err);
	}
	load_fails(TLS "groups = X25519:P-192\n", 5, "\"P-192\" is refused");
}
