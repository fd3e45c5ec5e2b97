/* SPDX-License-Identifier: MIT */
/*
 * Reading moat's INI files: a whole file into memory with a size cap, then
 * through inih one physical line at a time. inih's handler is not told
 * line numbers and inih silently cuts long lines and long section names,
 * so our reader counts lines, refuses lines inih would cut, and looks at
 * each line the way inih will: a "[section]" line is handed whole to the
 * caller, and an indented line after a key is flagged as a continuation
 * (inih would join it to the value above). config.c and idmap.c give the
 * keys their meaning.
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "moat/inifile.h"
#include "moat/text.h"

char *
inifile_read(const char *path, size_t max, size_t *lenp, char *err,
    size_t errlen)
{
	struct stat st;
	char *buf = NULL, *nbuf;
	size_t len = 0, cap = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		    strerror(errno));
		return (NULL);
	}
	if (fstat(fd, &st) == -1) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		    strerror(errno));
		goto fail;
	}
	if (S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		    strerror(EISDIR));
		goto fail;
	}
	for (;;) {
		if (len == cap) {
			if (cap > max)
				goto toobig;
			cap = cap == 0 ? 4096 : cap * 2;
			if ((nbuf = malloc(cap + 1)) == NULL) {
				snprintf(err, errlen, "%s: out of memory",
				    path);
				goto fail;
			}
			/* Copied, not realloc'd, so no stray copy of a
			 * secret is left in freed memory. */
			if (buf != NULL)
				memcpy(nbuf, buf, len);
			text_wipe_free(buf, len);
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - len);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			snprintf(err, errlen, "%s: cannot read: %s", path,
			    strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max)
		goto toobig;
	close(fd);
	buf[len] = '\0';
	*lenp = len;
	return (buf);

toobig:
	snprintf(err, errlen, "%s: the file is larger than %zu bytes; is it "
	    "the right file?", path, max);
fail:
	text_wipe_free(buf, len);
	close(fd);
	return (NULL);
}

void
inifile_fail(struct inifile *f, const char *fmt, ...)
{
	va_list ap;

	if (f->err_line != 0)
		return;
	f->err_line = f->lineno;
	va_start(ap, fmt);
	vsnprintf(f->err, f->errlen, fmt, ap);
	va_end(ap);
}

/*
 * inih's find_chars_or_comment(): the first of chars, or an inline ';'
 * comment that follows whitespace, or the end.
 */
static const char *
find_chars_or_comment(const char *s, const char *chars)
{
	int was_space = 0;

	while (*s != '\0' && (chars == NULL || strchr(chars, *s) == NULL) &&
	    !(was_space && *s == ';')) {
		was_space = isspace((unsigned char)*s);
		s++;
	}
	return (s);
}

/*
 * Look at a line the way inih will: a continuation of the previous key
 * (leading whitespace after a key), or a "[section]" line, whose name goes
 * to the caller uncut, because inih cuts it and says nothing about a
 * section without keys.
 */
static void
classify(struct inifile *f, const char *line)
{
	const char *s = line, *end;

	f->continuation = 0;
	if (f->lineno == 1 && (unsigned char)s[0] == 0xef &&
	    (unsigned char)s[1] == 0xbb && (unsigned char)s[2] == 0xbf)
		s += 3;
	line = s;
	while (*s != '\0' && isspace((unsigned char)*s))
		s++;
	if (*s == '\0' || *s == ';' || *s == '#')
		return;
	if (f->prev_key && s > line) {
		f->continuation = 1;
		return;
	}
	if (*s != '[')
		return;
	end = find_chars_or_comment(s + 1, "]");
	if (*end != ']')
		return;                 /* inih reports the syntax error */
	f->prev_key = 0;
	f->on_section(f->user, s + 1, (size_t)(end - (s + 1)));
}

/*
 * inih's line reader, over the file in memory. One call per physical line,
 * so inih's line count and ours agree. A line inih could not hold whole
 * (fgets would split it) is an error, handed to inih as a blank line.
 */
static char *
reader(char *str, int num, void *stream)
{
	struct inifile *f = stream;
	const char *p, *nl;
	size_t left, n;

	if (f->pos >= f->len || num < 2)
		return (NULL);
	p = f->buf + f->pos;
	left = f->len - f->pos;
	nl = memchr(p, '\n', left);
	n = nl != NULL ? (size_t)(nl - p) + 1 : left;
	f->pos += n;
	f->lineno++;
	f->continuation = 0;

	if (memchr(p, '\0', n) != NULL) {
		inifile_fail(f, "the line contains a NUL byte; is this a text "
		    "file?");
		goto blank;
	}
	if (n > (size_t)num - 1) {
		inifile_fail(f, "the line is too long: moat reads at most %d "
		    "characters per line; shorten it%s", num - 2, f->hint);
		goto blank;
	}
	memcpy(str, p, n);
	str[n] = '\0';
	classify(f, str);
	return (str);

blank:
	str[0] = '\n';
	str[1] = '\0';
	return (str);
}

/* inih's handler: after a key, an indented line would continue it. */
static int
pair(void *user, const char *section, const char *name, const char *value)
{
	struct inifile *f = user;

	f->prev_key = 1;
	return (f->on_pair(f->user, section, name, value));
}

int
inifile_parse(struct inifile *f, const char *buf, size_t len, char *err,
    size_t errlen, const char *hint,
    void (*on_section)(void *, const char *, size_t),
    int (*on_pair)(void *, const char *, const char *, const char *),
    void *user)
{
	memset(f, 0, sizeof(*f));
	f->buf = buf;
	f->len = len;
	f->err = err;
	f->errlen = errlen;
	f->hint = hint;
	f->on_section = on_section;
	f->on_pair = on_pair;
	f->user = user;
	return (ini_parse_stream(reader, f, pair, f));
}

int
inifile_error(const struct inifile *f, int rc, const char *syntax,
    const char **msg)
{
	if (rc > 0 && (f->err_line == 0 || rc < f->err_line)) {
		*msg = syntax;
		return (rc);
	}
	*msg = f->err;
	return (f->err_line);
}
