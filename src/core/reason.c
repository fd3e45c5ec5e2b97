/* SPDX-License-Identifier: MIT */
/*
 * Names of the close reasons and connection states (reason.h).
 */
#include "config.h"

#include "moat/reason.h"

static const char *const reason_names[] = {
#define X(name, text) text,
	CONN_REASONS(X)
#undef X
};

const char *
conn_reason_name(enum conn_reason why)
{
	return ((unsigned)why < CONN_NREASONS ? reason_names[why] : "?");
}

static const char *const state_names[] = {
#define X(name, text) text,
	CONN_STATES(X)
#undef X
};

const char *
conn_state_name(enum conn_state st)
{
	return ((unsigned)st < CONN_NSTATES ? state_names[st] : "?");
}
