/* SPDX-License-Identifier: MIT */
/*
 * Leveled logging to stderr, as plain text or one JSON object per line.
 * Every line is written with a single write(2) so that lines from several
 * threads never interleave. Callers never pass secrets (keys, passwords,
 * HMAC secrets) to these functions: logs are read by many people.
 */
#ifndef MOAT_LOG_H
#define MOAT_LOG_H

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

enum log_format {
	LOG_FMT_TEXT = 0,
	LOG_FMT_JSON,
};

/*
 * Longest line written, newline included; longer lines are cut and marked
 * ("..." in text, "truncated":true in JSON). At most PIPE_BUF, so that a
 * line written to a pipe arrives in one piece.
 */
#define LOG_LINE_MAX 4096

/* Set the threshold and format. Until called: info, text. */
void log_setup(enum log_level level, enum log_format format);

/*
 * Send lines to fd instead of 2 (stderr); returns the previous fd. The fd
 * stays owned by the caller. For tests and for tools that log elsewhere.
 */
int log_set_fd(int fd);

/* Nonzero when a message of this level would be written. */
int log_enabled(enum log_level level);

/* Name of a level ("error", "warn", "info", "debug"). */
const char *log_level_name(enum log_level level);

/*
 * Write one line: text "TIMESTAMP LEVEL: message" or JSON
 * {"ts":"...","level":"...","msg":"..."}. Over-long messages are truncated.
 */
void log_msg(enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Write one structured line: an event name followed by key/value string pairs,
 * ending with a NULL key. Text: "TIMESTAMP LEVEL: event k=v k2=\"v 2\"";
 * JSON: {"ts":...,"level":...,"event":"event","k":"v",...}. A NULL value is
 * written as "-" (text) or null (JSON). Values are escaped, never trusted.
 */
void log_kv(enum log_level level, const char *event, ...);

/*
 * For configuration-time errors printed to stderr before logging is set up
 * and for the command-line tools: always writes, in text form.
 */
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                          \
	do {                                                    \
		if (log_enabled(LOG_LVL_DEBUG))                 \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__);    \
	} while (0)

#endif
