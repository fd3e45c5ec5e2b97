/* SPDX-License-Identifier: MIT */
/*
 * Leveled logs, one line per event, as text or JSON. Much of what moat logs
 * comes from peers (certificate names, client ids), so every string is
 * escaped here rather than trusted: control characters, quotes and invalid
 * UTF-8 can neither forge a second line nor break a JSON parser. Each line
 * is built in a buffer on the caller's stack and written with one write(2),
 * so threads share nothing but three atomic settings and lines never mix.
 *
 * Text:  2026-11-25T12:00:00.123Z INFO: event k=v k2="v 2"
 *        (values are quoted when they hold spaces, '"', '=', '\', bytes
 *        outside printable ASCII, or are empty or "-"; inside quotes '"' and
 *        '\' are backslash-escaped; control characters and invalid UTF-8
 *        bytes become \xNN everywhere.)
 * JSON:  {"ts":"...","level":"info","event":"event","k":"v"}
 *        (control characters, DEL, C1 controls and each byte of invalid
 *        UTF-8 become \u00XX, so the output is always valid JSON.)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "moat/log.h"
#include "moat/text.h"

/* Room kept back for the closing quote, truncation mark and newline. */
#define RESERVE 32

struct line {
	char buf[LOG_LINE_MAX];
	size_t len;
	size_t lim;                  /* content stops here; RESERVE follows */
	int full;                    /* something did not fit: truncated */
	int inq;                     /* inside a quoted string */
	enum log_format fmt;
};

static atomic_int cur_level = LOG_LVL_INFO;
static atomic_int cur_format = LOG_FMT_TEXT;
static atomic_int cur_fd = 2;

static const char *const level_names[] = {
	"error", "warn", "info", "debug",
};
static const char *const level_upper[] = {
	"ERROR", "WARN", "INFO", "DEBUG",
};

void
log_setup(enum log_level level, enum log_format format)
{
	if ((int)level < LOG_LVL_ERROR)
		level = LOG_LVL_ERROR;
	if (level > LOG_LVL_DEBUG)
		level = LOG_LVL_DEBUG;
	atomic_store_explicit(&cur_level, (int)level, memory_order_relaxed);
	atomic_store_explicit(&cur_format,
	    format == LOG_FMT_JSON ? LOG_FMT_JSON : LOG_FMT_TEXT,
	    memory_order_relaxed);
}

int
log_set_fd(int fd)
{
	return (atomic_exchange_explicit(&cur_fd, fd, memory_order_relaxed));
}

int
log_enabled(enum log_level level)
{
	return ((int)level <=
	    atomic_load_explicit(&cur_level, memory_order_relaxed));
}

const char *
log_level_name(enum log_level level)
{
	if ((int)level < 0 || level > LOG_LVL_DEBUG)
		return ("?");
	return (level_names[level]);
}

/*
 * Append n bytes, all or nothing, so an escape sequence or a UTF-8
 * character is never cut in half. Once something did not fit, the line is
 * full and everything after is dropped.
 */
static void
put(struct line *l, const char *s, size_t n)
{
	if (l->full)
		return;
	if (n > l->lim - l->len) {
		l->full = 1;
		return;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void
puts0(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/*
 * Escape one byte as \xNN (text) or \u00NN (JSON). In JSON this is also how
 * control characters up to U+009F are written, by code point.
 */
static void
put_byte_escape(struct line *l, unsigned char c)
{
	char esc[8];

	if (l->fmt == LOG_FMT_JSON)
		snprintf(esc, sizeof(esc), "\\u%04x", c);
	else
		snprintf(esc, sizeof(esc), "\\x%02x", c);
	put(l, esc, strlen(esc));
}

/*
 * Append s escaped. quote: backslash-escape '"' and '\' (always in JSON;
 * in text only inside quoted values, where they would end or confuse the
 * value).
 */
static void
put_escaped(struct line *l, const char *str, int quote)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n = strlen(str), k, i;
	uint32_t cp;
	char esc[2], esc4[8];

	while (n > 0 && !l->full) {
		k = text_utf8_next(s, n, &cp);
		if (k == 0) {
			put_byte_escape(l, s[0]);
			k = 1;
		} else if (text_is_control(cp) && l->fmt == LOG_FMT_JSON) {
			put_byte_escape(l, (unsigned char)cp);
		} else if (text_is_format(cp) && l->fmt == LOG_FMT_JSON) {
			/* Bidi and zero-width characters: never raw, so a
			 * name cannot make a log line read differently. */
			snprintf(esc4, sizeof(esc4), "\\u%04x", (unsigned)cp);
			put(l, esc4, strlen(esc4));
		} else if (text_is_control(cp) || text_is_format(cp)) {
			for (i = 0; i < k; i++)
				put_byte_escape(l, s[i]);
		} else if (quote && (cp == '"' || cp == '\\')) {
			esc[0] = '\\';
			esc[1] = (char)cp;
			put(l, esc, 2);
		} else
			put(l, (const char *)s, k);
		s += k;
		n -= k;
	}
}

/* A JSON string, or a quoted text value: quotes, escaped content. */
static void
put_quoted(struct line *l, const char *s)
{
	put(l, "\"", 1);
	if (l->full)
		return;
	l->inq = 1;
	put_escaped(l, s, 1);
	put(l, "\"", 1);
	if (!l->full)
		l->inq = 0;           /* else finish() closes the quote */
}

/* Text values need quotes when a reader could not tell where they end. */
static int
needs_quotes(const char *v)
{
	const unsigned char *p;

	if (*v == '\0' || strcmp(v, "-") == 0)
		return (1);
	for (p = (const unsigned char *)v; *p != '\0'; p++) {
		if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '=' ||
		    *p == '\\')
			return (1);
	}
	return (0);
}

static void
timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03uZ",
	    (unsigned)(ts.tv_nsec / 1000000) % 1000);
}

static void
start(struct line *l, enum log_level level)
{
	char ts[48];

	l->len = 0;
	l->lim = sizeof(l->buf) - RESERVE;
	l->full = 0;
	l->inq = 0;
	l->fmt = atomic_load_explicit(&cur_format, memory_order_relaxed) ==
	    LOG_FMT_JSON ? LOG_FMT_JSON : LOG_FMT_TEXT;
	timestamp(ts, sizeof(ts));
	if (l->fmt == LOG_FMT_JSON) {
		puts0(l, "{\"ts\":\"");
		puts0(l, ts);
		puts0(l, "\",\"level\":\"");
		puts0(l, log_level_name(level));
		puts0(l, "\"");
	} else {
		puts0(l, ts);
		puts0(l, " ");
		puts0(l, level_upper[level]);
		puts0(l, ":");
	}
}

/*
 * One field: JSON ,"key":"value" or text " value" / " key=value". A field
 * whose key does not fit is dropped whole, so a cut line still parses.
 */
static void
field(struct line *l, const char *key, const char *value)
{
	size_t mark = l->len, vmark;

	if (l->full)
		return;
	if (l->fmt == LOG_FMT_JSON) {
		put(l, ",", 1);
		put_quoted(l, key);
		put(l, ":", 1);
	} else {
		put(l, " ", 1);
		if (key != NULL) {
			put_escaped(l, key, 0);
			put(l, "=", 1);
		}
	}
	vmark = l->len;
	if (value == NULL)
		put(l, l->fmt == LOG_FMT_JSON ? "null" : "-",
		    l->fmt == LOG_FMT_JSON ? 4 : 1);
	else if (l->fmt == LOG_FMT_JSON ||
	    (key != NULL && needs_quotes(value)))
		put_quoted(l, value);
	else
		put_escaped(l, value, 0);
	if (l->full && l->len == vmark) {
		l->len = mark;
		l->inq = 0;
	}
}

/* Close the line (and a string cut open), then write it in one go. */
static void
finish(struct line *l)
{
	static const char jtrunc[] = ",\"truncated\":true";
	int fd = atomic_load_explicit(&cur_fd, memory_order_relaxed);
	const char *p;
	size_t left;
	ssize_t n;
	int cut;

	/* From here on the RESERVE bytes are ours. */
	cut = l->full;
	l->lim = sizeof(l->buf);
	l->full = 0;
	if (l->fmt == LOG_FMT_JSON) {
		if (l->inq)
			put(l, "\"", 1);
		if (cut)
			put(l, jtrunc, sizeof(jtrunc) - 1);
		put(l, "}\n", 2);
	} else {
		if (cut)
			put(l, "...", 3);
		if (l->inq)
			put(l, "\"", 1);
		put(l, "\n", 1);
	}

	p = l->buf;
	left = l->len;
	while (left > 0) {
		n = write(fd, p, left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		p += n;
		left -= (size_t)n;
	}
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX];
	struct line l;
	va_list ap;
	int saved = errno;

	if (!log_enabled(level) || (int)level < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	start(&l, level);
	field(&l, l.fmt == LOG_FMT_JSON ? "msg" : NULL, msg);
	finish(&l);
	errno = saved;
}

void
log_kv(enum log_level level, const char *event, ...)
{
	struct line l;
	const char *key, *value;
	va_list ap;
	int saved = errno;

	if (!log_enabled(level) || (int)level < 0)
		return;
	start(&l, level);
	if (l.fmt == LOG_FMT_JSON)
		field(&l, "event", event != NULL ? event : "-");
	else
		field(&l, NULL, event != NULL ? event : "-");
	va_start(ap, event);
	while (!l.full && (key = va_arg(ap, const char *)) != NULL) {
		value = va_arg(ap, const char *);
		field(&l, key, value);
	}
	va_end(ap);
	finish(&l);
	errno = saved;
}
