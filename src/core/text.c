/* SPDX-License-Identifier: MIT */
/*
 * Text rules shared by every room that judges or shows text from outside:
 * certificate fields, the identity map, moat.ini, device client ids. One
 * UTF-8 decoder (RFC 3629), one notion of a control or format character,
 * one quoting function so a hostile value cannot garble a message or a
 * terminal, and the rules a name must obey before it reaches the broker:
 * Mosquitto's ACL patterns ("%u", "%c") silently deny names with '+', '#'
 * or '/' (CVE-2017-7650), put a name beginning with '$' next to its $SYS
 * topics (pattern readwrite %u/# gives CN "$SYS" all of $SYS/#), and a
 * right-to-left override or a zero-width space makes one name display as
 * another in logs and ACL files.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/text.h"

#define ACL_ADVICE "which Mosquitto's ACL patterns cannot match " \
	"(CVE-2017-7650)"

/* Room an escape ("\xNN" or "...") and the NUL need at the end of buf. */
#define QUOTE_SLACK 8

size_t
text_utf8_next(const uint8_t *s, size_t n, uint32_t *cp)
{
	uint32_t v, min;
	size_t k, need;

	if (s[0] < 0x80) {
		*cp = s[0];
		return (1);
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		need = 1;
		v = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		need = 2;
		v = s[0] & 0x0f;
		min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		need = 3;
		v = s[0] & 0x07;
		min = 0x10000;
	} else
		return (0);
	if (n <= need)
		return (0);
	for (k = 1; k <= need; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return (0);
		v = (v << 6) | (s[k] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return (0);
	*cp = v;
	return (need + 1);
}

int
text_is_control(uint32_t cp)
{
	return (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f));
}

int
text_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return (c - '0');
	if (c >= 'a' && c <= 'f')
		return (c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (c - 'A' + 10);
	return (-1);
}

int
text_is_format(uint32_t cp)
{
	return ((cp >= 0x200b && cp <= 0x200f) ||
	    (cp >= 0x202a && cp <= 0x202e) ||
	    (cp >= 0x2066 && cp <= 0x2069) || cp == 0xfeff ||
	    cp == 0x061c || cp == 0x2028 || cp == 0x2029);
}

/* Length of the character at p[0] that may be written as it is, or 0. */
static size_t
shown_raw(const uint8_t *p, size_t n, unsigned flags)
{
	uint32_t cp;
	size_t k = text_utf8_next(p, n, &cp);

	if (k == 0 || text_is_control(cp) || text_is_format(cp))
		return (0);
	if ((flags & TEXT_QUOTE_ASCII) && cp >= 0x80)
		return (0);
	return (k);
}

const char *
text_quote(const char *s, size_t len, size_t max, unsigned flags, char *buf,
    size_t buflen)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, o = 0, k;

	while (i < len && o + QUOTE_SLACK < buflen) {
		if (i >= max) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if ((flags & TEXT_QUOTE_ESCAPES) &&
		    (p[i] == '"' || p[i] == '\\')) {
			buf[o++] = '\\';
			buf[o++] = (char)p[i++];
			continue;
		}
		if ((k = shown_raw(p + i, len - i, flags)) > 0) {
			memcpy(buf + o, p + i, k);
			o += k;
			i += k;
			continue;
		}
		o += (size_t)snprintf(buf + o, buflen - o, "\\x%02x", p[i]);
		i++;
	}
	buf[o] = '\0';
	return (buf);
}

/* The rules for one character at p[0] (n bytes left); its length in *k. */
static int
check_char(const uint8_t *p, size_t n, size_t off, unsigned rules,
    size_t *k, char *problem, size_t plen)
{
	uint32_t cp;

	if (p[0] == '\0') {
		snprintf(problem, plen, "contains a NUL byte");
		return (-1);
	}
	if ((rules & TEXT_NO_ACL) && (p[0] == '+' || p[0] == '#' ||
	    p[0] == '/')) {
		snprintf(problem, plen, "contains '%c', " ACL_ADVICE, p[0]);
		return (-1);
	}
	if ((*k = text_utf8_next(p, n, &cp)) == 0) {
		snprintf(problem, plen, "is not valid UTF-8 (byte 0x%02x at "
		    "offset %zu)", p[0], off);
		return (-1);
	}
	if (text_is_control(cp)) {
		snprintf(problem, plen, "contains the control character "
		    "U+%04X", (unsigned)cp);
		return (-1);
	}
	if ((rules & TEXT_NO_FORMAT) && text_is_format(cp)) {
		snprintf(problem, plen, "contains the invisible format "
		    "character U+%04X, which can make one name look like "
		    "another", (unsigned)cp);
		return (-1);
	}
	return (0);
}

int
text_check(const char *s, size_t len, unsigned rules, char *problem,
    size_t plen)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i, k;

	if (len == 0) {
		snprintf(problem, plen, "is empty");
		return (-1);
	}
	if (len >= TEXT_NAME_MAX) {
		snprintf(problem, plen, "is %zu bytes long; moat allows at "
		    "most %d", len, TEXT_NAME_MAX - 1);
		return (-1);
	}
	if ((rules & TEXT_NO_DOLLAR) && p[0] == '$') {
		snprintf(problem, plen, "begins with '$', which Mosquitto "
		    "reserves for $SYS topics");
		return (-1);
	}
	for (i = 0; i < len; i += k)
		if (check_char(p + i, len - i, i, rules, &k, problem,
		    plen) == -1)
			return (-1);
	return (0);
}

int
text_name_ok(const char *s, size_t len)
{
	char problem[128];

	if (s == NULL)
		return (0);
	return (text_check(s, len, TEXT_NAME, problem, sizeof(problem)) == 0);
}

void
text_wipe_free(void *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

void
text_free_secret(char *s)
{
	if (s != NULL)
		text_wipe_free(s, strlen(s));
}

static const char *const placeholder_names[] = {
#define X(name, text) text,
	TEXT_PLACEHOLDERS(X)
#undef X
};

int
text_placeholder(const char *s, size_t n, size_t *len)
{
	const char *end = memchr(s, '}', n);
	size_t i, k;

	if (end == NULL)
		return (-1);
	k = (size_t)(end - s) - 1;
	for (i = 0; i < TEXT_NPH; i++)
		if (strlen(placeholder_names[i]) == k &&
		    memcmp(s + 1, placeholder_names[i], k) == 0) {
			*len = k + 2;
			return ((int)i);
		}
	return (-1);
}

const char *
text_placeholder_name(int ph)
{
	return (ph >= 0 && ph < TEXT_NPH ? placeholder_names[ph] : "?");
}
