/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for src/core/log.c. Lines go to a pipe (log_set_fd) and are checked
 * byte for byte: the timestamp's form, the escaping of everything a peer
 * could put into a log (control characters, quotes, invalid UTF-8), clean
 * truncation of over-long lines (JSON stays valid), and whole lines from
 * several threads at once.
 */
#include <criterion/criterion.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "moat/log.h"

static int rfd = -1, wfd = -1, oldfd = -1;
static char out[2 * LOG_LINE_MAX + 1];

static void
setup(void)
{
	int p[2];

	cr_assert_eq(pipe(p), 0);
	rfd = p[0];
	wfd = p[1];
	cr_assert_eq(fcntl(rfd, F_SETFL, O_NONBLOCK), 0);
	oldfd = log_set_fd(wfd);
	log_setup(LOG_LVL_INFO, LOG_FMT_TEXT);
}

static void
teardown(void)
{
	log_set_fd(oldfd);
	close(rfd);
	close(wfd);
}

TestSuite(log, .init = setup, .fini = teardown);

/* Everything written so far; returns its length. */
static size_t
drain(void)
{
	size_t len = 0;
	ssize_t n;

	for (;;) {
		n = read(rfd, out + len, sizeof(out) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	out[len] = '\0';
	return (len);
}

/* "2026-11-25T12:00:00.123Z", within a minute of now. */
static void
check_ts(const char *ts)
{
	static const char form[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	struct tm tm;
	time_t t;
	size_t i;

	for (i = 0; i < sizeof(form) - 1; i++) {
		if (form[i] == 'd')
			cr_assert(isdigit((unsigned char)ts[i]),
			    "timestamp \"%.24s\"", ts);
		else
			cr_assert_eq(ts[i], form[i], "timestamp \"%.24s\"", ts);
	}
	memset(&tm, 0, sizeof(tm));
	cr_assert_eq(sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year,
	    &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec), 6);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	cr_assert_lt(labs((long)(t - time(NULL))), 60, "timestamp %.24s", ts);
}

/* One text line: check the timestamp, return what follows "TS ". */
static const char *
text_line(void)
{
	drain();
	cr_assert_gt(strlen(out), 25, "no line written");
	check_ts(out);
	cr_assert_eq(out[24], ' ');
	return (out + 25);
}

/* One JSON line: check the ts member, return what follows it. */
static const char *
json_line(void)
{
	drain();
	cr_assert(strncmp(out, "{\"ts\":\"", 7) == 0, "got %s", out);
	check_ts(out + 7);
	cr_assert(strncmp(out + 31, "\",", 2) == 0, "got %s", out);
	return (out + 33);
}

/* Length of a well-formed UTF-8 sequence at s, or 0 (independent check). */
static size_t
utf8_ok(const unsigned char *s)
{
	if (s[0] < 0x80)
		return (1);
	if (s[0] >= 0xc2 && s[0] <= 0xdf && (s[1] & 0xc0) == 0x80)
		return (2);
	if (s[0] >= 0xe0 && s[0] <= 0xef && (s[1] & 0xc0) == 0x80 &&
	    (s[2] & 0xc0) == 0x80) {
		if (s[0] == 0xe0 && s[1] < 0xa0)
			return (0);
		if (s[0] == 0xed && s[1] >= 0xa0)
			return (0);
		return (3);
	}
	if (s[0] >= 0xf0 && s[0] <= 0xf4 && (s[1] & 0xc0) == 0x80 &&
	    (s[2] & 0xc0) == 0x80 && (s[3] & 0xc0) == 0x80) {
		if (s[0] == 0xf0 && s[1] < 0x90)
			return (0);
		if (s[0] == 0xf4 && s[1] >= 0x90)
			return (0);
		return (4);
	}
	return (0);
}

static int
utf8_valid(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n;

	while (*s != '\0') {
		if ((n = utf8_ok(s)) == 0)
			return (0);
		s += n;
	}
	return (1);
}

/* A JSON string at p; returns what follows it, or NULL. */
static const char *
j_string(const char *p)
{
	int i;

	if (*p++ != '"')
		return (NULL);
	while (*p != '"') {
		if (*p == '\0' || (unsigned char)*p < 0x20)
			return (NULL);
		if (*p == '\\') {
			p++;
			if (*p != '\0' && strchr("\"\\/bfnrt", *p) != NULL) {
				p++;
				continue;
			}
			if (*p != 'u')
				return (NULL);
			for (i = 1; i <= 4; i++)
				if (!isxdigit((unsigned char)p[i]))
					return (NULL);
			p += 5;
			continue;
		}
		p++;
	}
	return (p + 1);
}

/*
 * The line is one flat JSON object of string, null or true members,
 * valid UTF-8, ending in one newline.
 */
static int
json_valid(const char *line)
{
	const char *p = line;

	if (!utf8_valid(line) || *p++ != '{')
		return (0);
	for (;;) {
		if ((p = j_string(p)) == NULL || *p++ != ':')
			return (0);
		if (strncmp(p, "null", 4) == 0)
			p += 4;
		else if (strncmp(p, "true", 4) == 0)
			p += 4;
		else if ((p = j_string(p)) == NULL)
			return (0);
		if (*p == ',') {
			p++;
			continue;
		}
		break;
	}
	return (strcmp(p, "}\n") == 0);
}

static size_t
count_char(const char *s, char c)
{
	size_t n = 0;

	for (; *s != '\0'; s++)
		n += *s == c;
	return (n);
}

/* --- settings --------------------------------------------------------- */

Test(log, default_fd_is_stderr)
{
	cr_assert_eq(oldfd, 2);
	cr_assert_eq(log_set_fd(wfd), wfd);
}

Test(log, level_names)
{
	cr_assert_str_eq(log_level_name(LOG_LVL_ERROR), "error");
	cr_assert_str_eq(log_level_name(LOG_LVL_WARN), "warn");
	cr_assert_str_eq(log_level_name(LOG_LVL_INFO), "info");
	cr_assert_str_eq(log_level_name(LOG_LVL_DEBUG), "debug");
	cr_assert_str_eq(log_level_name((enum log_level)17), "?");
	cr_assert_str_eq(log_level_name((enum log_level)-1), "?");
}

Test(log, threshold)
{
	cr_assert(log_enabled(LOG_LVL_INFO));
	cr_assert_not(log_enabled(LOG_LVL_DEBUG));
	log_debug("not written %d", 1);
	cr_assert_eq(drain(), 0);

	log_setup(LOG_LVL_WARN, LOG_FMT_TEXT);
	cr_assert(log_enabled(LOG_LVL_ERROR));
	cr_assert(log_enabled(LOG_LVL_WARN));
	cr_assert_not(log_enabled(LOG_LVL_INFO));
	log_info("not written");
	log_kv(LOG_LVL_INFO, "nor", "this", "one", NULL);
	cr_assert_eq(drain(), 0);
	log_warn("w");
	cr_assert_str_eq(text_line(), "WARN: w\n");
	log_error("e%d", 2);
	cr_assert_str_eq(text_line(), "ERROR: e2\n");

	log_setup(LOG_LVL_DEBUG, LOG_FMT_TEXT);
	log_debug("d");
	cr_assert_str_eq(text_line(), "DEBUG: d\n");
}

Test(log, errno_preserved)
{
	errno = 42;
	log_info("x");
	cr_assert_eq(errno, 42);
	errno = 43;
	log_setup(LOG_LVL_INFO, LOG_FMT_JSON);
	log_kv(LOG_LVL_INFO, "y", "k", "v", NULL);
	cr_assert_eq(errno, 43);
	cr_assert_gt(drain(), 0);
}

/* --- text ------------------------------------------------------------- */

Test(log, text_msg)
{
	log_info("hello %s %d", "world", 7);
	cr_assert_str_eq(text_line(), "INFO: hello world 7\n");
}

Test(log, text_msg_escapes_controls)
{
	log_info("a\nb\rc\x1b[31m\x7f\td \"q\" \\");
	cr_assert_str_eq(text_line(),
	    "INFO: a\\x0ab\\x0dc\\x1b[31m\\x7f\\x09d \"q\" \\\n");
	cr_assert_eq(count_char(out, '\n'), 1);
}

Test(log, text_utf8)
{
	log_info("caf\xc3\xa9 \xff \xc2\x85 \xc0\xaf \xed\xa0\x80 "
	    "\xf0\x9f\x98\x80 \xe2\x82");
	cr_assert_str_eq(text_line(), "INFO: caf\xc3\xa9 \\xff \\xc2\\x85 "
	    "\\xc0\\xaf \\xed\\xa0\\x80 \xf0\x9f\x98\x80 \\xe2\\x82\n");
	cr_assert(utf8_valid(out));
}

Test(log, text_kv)
{
	log_kv(LOG_LVL_INFO, "accept", "peer", "1.2.3.4:5", "cn", "dev one",
	    "q", "a\"b", "eq", "a=b", "empty", "", "none", NULL, "dash", "-",
	    "bs", "a\\b", "plain", "dev-7_x.y/z", NULL);
	cr_assert_str_eq(text_line(), "INFO: accept peer=1.2.3.4:5 "
	    "cn=\"dev one\" q=\"a\\\"b\" eq=\"a=b\" empty=\"\" none=- "
	    "dash=\"-\" bs=\"a\\\\b\" plain=dev-7_x.y/z\n");
}

Test(log, text_kv_hostile_values)
{
	log_kv(LOG_LVL_WARN, "reject", "cn", "x\ny=1 INFO: forged",
	    "name", "caf\xc3\xa9", "bin", "\xff\x01", "tab", "a\tb", NULL);
	cr_assert_str_eq(text_line(), "WARN: reject "
	    "cn=\"x\\x0ay=1 INFO: forged\" name=\"caf\xc3\xa9\" "
	    "bin=\"\\xff\\x01\" tab=\"a\\x09b\"\n");
	cr_assert_eq(count_char(out, '\n'), 1);
}

Test(log, text_kv_null_event)
{
	log_kv(LOG_LVL_INFO, NULL, "k", "v", NULL);
	cr_assert_str_eq(text_line(), "INFO: - k=v\n");
	log_kv(LOG_LVL_INFO, "only", NULL);
	cr_assert_str_eq(text_line(), "INFO: only\n");
}

Test(log, text_truncated)
{
	char big[5001];
	const char *rest;
	size_t len;

	memset(big, 'a', 5000);
	big[5000] = '\0';
	log_info("%s", big);
	rest = text_line();
	len = strlen(out);
	cr_assert_leq(len, LOG_LINE_MAX);
	cr_assert_gt(len, LOG_LINE_MAX - 64, "cut too early: %zu", len);
	cr_assert(strncmp(rest, "INFO: aaaa", 10) == 0);
	cr_assert_str_eq(out + len - 4, "...\n");
	cr_assert_eq(count_char(out, '\n'), 1);
	cr_assert_eq(count_char(out, 'a'), len - 25 - 6 - 4);
}

Test(log, text_not_truncated_below_limit)
{
	char big[4001];

	memset(big, 'b', 4000);
	big[4000] = '\0';
	log_info("%s", big);
	text_line();
	cr_assert_eq(strlen(out), 25 + 6 + 4000 + 1);
	cr_assert_eq(out[strlen(out) - 2], 'b');
}

Test(log, text_truncated_in_quoted_value)
{
	char big[5001];
	size_t len;

	memset(big, ' ', 5000);
	big[5000] = '\0';
	log_kv(LOG_LVL_INFO, "ev", "k", big, "never", "seen", NULL);
	text_line();
	len = strlen(out);
	cr_assert_leq(len, LOG_LINE_MAX);
	cr_assert_str_eq(out + len - 5, "...\"\n");
	cr_assert_null(strstr(out, "never"));
}

Test(log, text_truncated_never_splits_escape)
{
	char big[3001];
	size_t len;

	memset(big, '\x01', 3000);
	big[3000] = '\0';
	log_info("%s", big);
	text_line();
	len = strlen(out);
	cr_assert_leq(len, LOG_LINE_MAX);
	/* "INFO: " then whole "\x01" escapes, then "...". */
	cr_assert_eq((len - 25 - 6 - 4) % 4, 0, "len %zu", len);
	cr_assert(strncmp(out + len - 8, "\\x01...\n", 8) == 0);
}

/* --- JSON ------------------------------------------------------------- */

Test(log, json_msg)
{
	log_setup(LOG_LVL_INFO, LOG_FMT_JSON);
	log_info("say \"hi\" \\ \n\t\x01/");
	cr_assert_str_eq(json_line(), "\"level\":\"info\","
	    "\"msg\":\"say \\\"hi\\\" \\\\ \\u000a\\u0009\\u0001/\"}\n");
	cr_assert(json_valid(out), "%s", out);
}

Test(log, json_levels)
{
	log_setup(LOG_LVL_DEBUG, LOG_FMT_JSON);
	log_debug("x");
	cr_assert_str_eq(json_line(), "\"level\":\"debug\",\"msg\":\"x\"}\n");
	log_error("x");
	cr_assert_str_eq(json_line(), "\"level\":\"error\",\"msg\":\"x\"}\n");
	log_warn("x");
	cr_assert_str_eq(json_line(), "\"level\":\"warn\",\"msg\":\"x\"}\n");
}

Test(log, json_utf8)
{
	log_setup(LOG_LVL_INFO, LOG_FMT_JSON);
	/* Invalid bytes become \u00XX of the byte; C1 and DEL by code point. */
	log_info("caf\xc3\xa9 \xff \xc2\x85 \x7f \xc0\xaf \xed\xa0\x80 "
	    "\xf0\x9f\x98\x80 \xf4\x90\x80\x80 \xe2\x82");
	cr_assert_str_eq(json_line(), "\"level\":\"info\",\"msg\":\"caf\xc3\xa9 "
	    "\\u00ff \\u0085 \\u007f \\u00c0\\u00af \\u00ed\\u00a0\\u0080 "
	    "\xf0\x9f\x98\x80 \\u00f4\\u0090\\u0080\\u0080 "
	    "\\u00e2\\u0082\"}\n");
	cr_assert(json_valid(out), "%s", out);
}

Test(log, json_kv)
{
	log_setup(LOG_LVL_INFO, LOG_FMT_JSON);
	log_kv(LOG_LVL_WARN, "reject", "peer", "1.2.3.4:5", "cn", NULL,
	    "q", "a\"b\n", "empty", "", NULL);
	cr_assert_str_eq(json_line(), "\"level\":\"warn\",\"event\":\"reject\","
	    "\"peer\":\"1.2.3.4:5\",\"cn\":null,\"q\":\"a\\\"b\\u000a\","
	    "\"empty\":\"\"}\n");
	cr_assert(json_valid(out), "%s", out);
}

Test(log, json_kv_null_event)
{
	log_setup(LOG_LVL_INFO, LOG_FMT_JSON);
	log_kv(LOG_LVL_INFO, NULL, NULL);
	cr_assert_str_eq(json_line(), "\"level\":\"info\",\"event\":\"-\"}\n");
}

Test(log, json_truncated)
{
	char big[5001];
	size_t len;

	log_setup(LOG_LVL_INFO, LOG_FMT_JSON);
	memset(big, 'a', 5000);
	big[5000] = '\0';
	log_info("%s", big);
	json_line();
	len = strlen(out);
	cr_assert_leq(len, LOG_LINE_MAX);
	cr_assert_gt(len, LOG_LINE_MAX - 64);
	cr_assert(json_valid(out), "%s", out);
	cr_assert_str_eq(out + len - 21, "a\",\"truncated\":true}\n");
}

Test(log, json_truncated_never_splits_escape)
{
	char big[3001];

	log_setup(LOG_LVL_INFO, LOG_FMT_JSON);
	memset(big, '\x01', 3000);
	big[3000] = '\0';
	log_info("%s", big);
	json_line();
	cr_assert_leq(strlen(out), LOG_LINE_MAX);
	cr_assert(json_valid(out), "%s", out);
	cr_assert_not_null(strstr(out, "\\u0001\",\"truncated\":true}\n"));
}

Test(log, json_truncated_never_splits_utf8)
{
	char big[6001];
	size_t i;

	log_setup(LOG_LVL_INFO, LOG_FMT_JSON);
	for (i = 0; i < 6000; i += 3)
		memcpy(big + i, "\xe2\x82\xac", 3);     /* euro sign */
	big[6000] = '\0';
	log_info("%s", big);
	json_line();
	cr_assert_leq(strlen(out), LOG_LINE_MAX);
	cr_assert(json_valid(out), "not valid: %s", out);

	log_setup(LOG_LVL_INFO, LOG_FMT_TEXT);
	log_info("%s", big);
	text_line();
	cr_assert_leq(strlen(out), LOG_LINE_MAX);
	cr_assert(utf8_valid(out));
	cr_assert_str_eq(out + strlen(out) - 7, "\xe2\x82\xac...\n");
}

Test(log, json_truncated_many_fields)
{
	const char *k[8];
	char v[1001];
	size_t len;

	log_setup(LOG_LVL_INFO, LOG_FMT_JSON);
	memset(v, 'v', 1000);
	v[1000] = '\0';
	k[0] = "k0";
	k[1] = "k1";
	k[2] = "k2";
	k[3] = "k3";
	k[4] = "k4";
	k[5] = "k5";
	log_kv(LOG_LVL_INFO, "many", k[0], v, k[1], v, k[2], v, k[3], v,
	    k[4], v, k[5], v, NULL);
	json_line();
	len = strlen(out);
	cr_assert_leq(len, LOG_LINE_MAX);
	cr_assert(json_valid(out), "%s", out);
	cr_assert_not_null(strstr(out, "\"k3\":\"vvv"));
	cr_assert_null(strstr(out, "\"k4\""));
	cr_assert_str_eq(out + len - 19, ",\"truncated\":true}\n");
}

Test(log, json_truncated_at_key)
{
	char v[5001];
	size_t n;

	/* Fill the line so that the next key cannot fit: no dangling key. */
	log_setup(LOG_LVL_INFO, LOG_FMT_JSON);
	for (n = 3900; n < 4070; n++) {
		memset(v, 'v', n);
		v[n] = '\0';
		log_kv(LOG_LVL_INFO, "e", "a", v, "second_key_that_is_long",
		    "x", NULL);
		json_line();
		cr_assert_leq(strlen(out), LOG_LINE_MAX);
		cr_assert(json_valid(out), "n=%zu: %s", n, out);
	}
}

/* --- threads ---------------------------------------------------------- */

#define NTHREADS 8
#define NLINES 300

static void *
writer(void *arg)
{
	char pad[1500];
	int t = (int)(long)arg, i;

	memset(pad, 'a' + t, sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (i = 0; i < NLINES; i++)
		log_msg(LOG_LVL_INFO, "t%d i%d %s", t, i, pad);
	return (NULL);
}

Test(log, threads_write_whole_lines)
{
	char tmpl[] = "/tmp/moat-log-XXXXXX", *buf, *line, *save;
	pthread_t th[NTHREADS];
	int fd, t, i, n = 0, seen[NTHREADS] = { 0 };
	FILE *f;
	long size;

	fd = mkstemp(tmpl);
	cr_assert(fd >= 0);
	unlink(tmpl);
	cr_assert_eq(fcntl(fd, F_SETFL, O_APPEND), 0);
	log_setup(LOG_LVL_INFO, LOG_FMT_JSON);
	log_set_fd(fd);
	for (t = 0; t < NTHREADS; t++)
		cr_assert_eq(pthread_create(&th[t], NULL, writer,
		    (void *)(long)t), 0);
	for (t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	log_set_fd(wfd);

	f = fdopen(fd, "r");
	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	buf = malloc((size_t)size + 1);
	cr_assert_not_null(buf);
	cr_assert_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
	buf[size] = '\0';
	fclose(f);

	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char copy[LOG_LINE_MAX + 2], *m;
		size_t len = strlen(line);

		cr_assert_lt(len, sizeof(copy) - 1);
		memcpy(copy, line, len);
		memcpy(copy + len, "\n", 2);
		cr_assert(json_valid(copy), "mixed line: %.200s", line);
		m = strstr(line, "\"msg\":\"t");
		cr_assert_not_null(m);
		cr_assert_eq(sscanf(m, "\"msg\":\"t%d i%d", &t, &i), 2);
		cr_assert(t >= 0 && t < NTHREADS);
		cr_assert_eq(i, seen[t], "thread %d: line %d after %d", t, i,
		    seen[t]);
		seen[t]++;
		/* The padding is this thread's letter throughout. */
		cr_assert_eq(count_char(m + 7, (char)('a' + t)), 1499);
		n++;
	}
	free(buf);
	cr_assert_eq(n, NTHREADS * NLINES);
}

/* Bidi and zero-width characters never reach a log raw: a certificate
 * name holding U+202E could otherwise make a line read backwards. */
Test(log, format_characters_escaped)
{
	log_info("sensor-\xe2\x80\xaegnp.exe \xe2\x80\x8b");
	cr_assert_str_eq(text_line(),
	    "INFO: sensor-\\xe2\\x80\\xaegnp.exe \\xe2\\x80\\x8b\n");
	log_setup(LOG_LVL_INFO, LOG_FMT_JSON);
	log_info("a\xe2\x80\xae" "b\xef\xbb\xbf");
	cr_assert_str_eq(json_line(), "\"level\":\"info\","
	    "\"msg\":\"a\\u202eb\\ufeff\"}\n");
}
