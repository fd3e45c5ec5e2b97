/* SPDX-License-Identifier: MIT */
/*
 * Text rules: the one UTF-8 decoder, the control- and format-character
 * checks, the one quoting function for messages, the rules for a name
 * that reaches the broker (username, client id), and the one wipe-and-free
 * for secrets. Identity, the identity map, config, the log and the
 * backend address parser all use these, so a name or a byte is judged the
 * same way everywhere. Pure: no allocation except in what it frees, no
 * global state.
 */
#ifndef MOAT_TEXT_H
#define MOAT_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Longest name plus its NUL: a name has at most TEXT_NAME_MAX - 1 bytes. */
#define TEXT_NAME_MAX 256

/*
 * Length of the well-formed UTF-8 sequence at s (n > 0 bytes available),
 * with its code point in *cp; 0 when s starts with an invalid or truncated
 * sequence (overlong forms, surrogates and code points above U+10FFFF are
 * invalid, as RFC 3629 says).
 */
size_t text_utf8_next(const uint8_t *s, size_t n, uint32_t *cp);

/* 1 for C0 controls, DEL and C1 controls, else 0. */
int text_is_control(uint32_t cp);

/*
 * 1 for the invisible format and bidi characters that make one name look
 * like another: U+200B-U+200F, U+202A-U+202E, U+2066-U+2069, U+FEFF, and
 * the Arabic letter mark and line and paragraph separators (U+061C,
 * U+2028, U+2029), which break or reorder a line where they are shown.
 */
int text_is_format(uint32_t cp);

/* The value of the hex digit c (0-9, a-f, A-F), or -1. */
int text_hexval(int c);

/*
 * The placeholders that identity templates and topic rules share, each
 * written {name}: TEXT_PH_IDENTITY, TEXT_PH_CN, TEXT_PH_SERIAL and
 * TEXT_PH_FINGERPRINT, in that order.
 */
#define TEXT_PLACEHOLDERS(X)                                    \
	X(IDENTITY, "identity")                                 \
	X(CN, "cn")                                             \
	X(SERIAL, "serial")                                     \
	X(FINGERPRINT, "fingerprint")

#define X(name, text) TEXT_PH_##name,
enum text_placeholder { TEXT_PLACEHOLDERS(X) TEXT_NPH };
#undef X

/*
 * The placeholder at s[0] == '{' within the n bytes of s: its index, with
 * its whole length ("{cn}": 4) in *len; -1 when no known name is closed
 * by '}' there.
 */
int text_placeholder(const char *s, size_t n, size_t *len);

/* A placeholder's name ("cn"), "?" out of range. */
const char *text_placeholder_name(int ph);

/* text_quote() flags. */
#define TEXT_QUOTE_ESCAPES 0x1    /* write '"' and '\' as \" and \\ */
#define TEXT_QUOTE_ASCII   0x2    /* escape every byte outside printable
                                   * ASCII, even valid UTF-8 */

/* Bytes of a value messages quote before they cut it with "...". */
#define TEXT_QUOTE_MAX 48
/* A buffer that holds any text_quote() of at most TEXT_QUOTE_MAX bytes. */
#define TEXT_QUOTE_BUF (TEXT_QUOTE_MAX * 4 + 8)

/*
 * Quote s (len bytes, need not be NUL-terminated) for a message or a
 * terminal: printable UTF-8 as it is; control characters, format and bidi
 * characters and invalid UTF-8 as \xNN per byte; cut with "..." after max
 * bytes, or silently when buf is full. Writes into the caller's buf
 * (buflen > 8) and returns buf.
 */
const char *text_quote(const char *s, size_t len, size_t max, unsigned flags,
    char *buf, size_t buflen);

/* text_check() rules, on top of "non-empty, shorter than TEXT_NAME_MAX,
 * valid UTF-8 without NUL or control characters". */
#define TEXT_NO_ACL      0x1      /* no '+', '#', '/' (Mosquitto's ACL
                                   * patterns cannot match them) */
#define TEXT_NO_FORMAT   0x2      /* no format or bidi characters */
#define TEXT_NO_DOLLAR   0x4      /* does not begin with '$' */
/* What a broker username or client id must obey. */
#define TEXT_NAME (TEXT_NO_ACL | TEXT_NO_FORMAT | TEXT_NO_DOLLAR)
/* What text that will not begin a name must obey ('$' matters first). */
#define TEXT_INNER (TEXT_NAME & ~TEXT_NO_DOLLAR)
/* What an identity value (a DN, a URI) must obey. */
#define TEXT_VALUE 0

/*
 * Check s (len bytes) against rules. Returns 0, or -1 with what is wrong
 * written into the caller's problem ("contains '#', which ..."), worded to
 * follow the quoted value.
 */
int text_check(const char *s, size_t len, unsigned rules, char *problem,
    size_t plen);

/* 1 when s (len bytes, may be NULL) obeys TEXT_NAME, else 0. */
int text_name_ok(const char *s, size_t len);

/* Wipe len bytes at p and free p; NULL does nothing. */
void text_wipe_free(void *p, size_t len);

/* Wipe and free a NUL-terminated secret; NULL does nothing. */
void text_free_secret(char *s);

#endif
