/* SPDX-License-Identifier: MIT */
/*
 * The file-handling half of moat's INI files (moat.ini, the identity map),
 * shared by config.c and idmap.c: reading a whole file into memory with a
 * size cap, and feeding it to inih one physical line at a time, so that
 * line numbers are known, lines inih would cut are refused, and the raw
 * "[section]" lines are seen (inih cuts section names at 50 bytes and never
 * reports a section without keys). What the keys mean stays with the
 * callers. No global state.
 */
#ifndef MOAT_INIFILE_H
#define MOAT_INIFILE_H

#include <stddef.h>

/*
 * Reading one file in memory through inih. Set up by inifile_parse(); the
 * callers' handlers read lineno, continuation and err_line, and report
 * errors with inifile_fail().
 */
struct inifile {
	const char *buf;         /* the file's bytes, the caller's */
	size_t len;
	size_t pos;
	char *err;               /* the caller's buffer for the first error */
	size_t errlen;
	const char *hint;        /* ends the "line is too long" message */
	void (*on_section)(void *, const char *, size_t);
	int (*on_pair)(void *, const char *, const char *, const char *);
	void *user;
	int lineno;              /* the line being read, from 1 */
	int prev_key;            /* inih has a key a line could continue */
	int continuation;        /* the current line is such a continuation */
	int err_line;            /* line of the first error, or 0 */
};

/*
 * Read the whole file at path, refusing one over max bytes. Returns a
 * buffer of *lenp bytes plus a NUL terminator (the file may hold NUL bytes
 * itself), which the caller owns and frees; or NULL with "PATH: cannot
 * open: ...", "PATH: the file is larger than MAX bytes; ...", "PATH: cannot
 * read: ..." or "PATH: out of memory" in err. Buffers outgrown while
 * reading, and the buffer on failure, are wiped before they are freed, so
 * a secret file leaves no stray copy behind.
 */
char *inifile_read(const char *path, size_t max, size_t *lenp, char *err,
    size_t errlen);

/*
 * Run inih's ini_parse_stream() over the len bytes at buf (not owned, no
 * NUL terminator needed), one physical line per inih line. A line with a
 * NUL byte, or one longer than inih's buffer ("...; shorten it" followed
 * by hint, which may be ""), is an error and reaches inih as a blank line.
 * on_section(user, name, namelen) is called for every "[name]" line, with
 * the name uncut (name[namelen] is the ']'); on_pair is inih's handler.
 * Both get user and may call inifile_fail(f, ...). The first error is kept
 * in err (errlen bytes, the caller's) and its line in f->err_line. Returns
 * what ini_parse_stream() returns: 0, the first line inih found bad (or
 * whose handler returned 0), or -1 when out of memory.
 */
int inifile_parse(struct inifile *f, const char *buf, size_t len,
    char *err, size_t errlen, const char *hint,
    void (*on_section)(void *user, const char *name, size_t namelen),
    int (*on_pair)(void *user, const char *section, const char *name,
    const char *value), void *user);

/* Record an error at the current line, unless one came first. */
void inifile_fail(struct inifile *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * The earliest error of a parse that returned rc (not -1): inih's syntax
 * error, reported with the text syntax, or the one kept by inifile_fail().
 * Returns its line and points *msg at its text (f's or syntax), or 0 when
 * there was none.
 */
int inifile_error(const struct inifile *f, int rc, const char *syntax,
    const char **msg);

#endif
