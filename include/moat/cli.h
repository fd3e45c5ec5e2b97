/* SPDX-License-Identifier: MIT */
/*
 * The command line: main.c dispatches to the subcommands in explain.c and
 * passwd.c and prints the usage they share. Nothing here runs the daemon.
 */
#ifndef MOAT_CLI_H
#define MOAT_CLI_H

#include <stdio.h>

#include "moat/identity.h"

struct config;

#define CLI_DEFAULT_CONFIG MOAT_SYSCONFDIR "/moat/moat.ini"

/* Print the usage text (main.c) to out. */
void main_usage(FILE *out);

/* moat explain ARGS (argv[0] is "explain"): exit status 0, 1 or 2. */
int explain_main(int argc, char **argv);

/* moat passwd ARGS (argv[0] is "passwd"): exit status 0, 1 or 2. */
int passwd_main(int argc, char **argv);

/* Words for a mapping verdict ("refused: unknown identity"). */
const char *explain_verdict(enum identity_verdict v);

/*
 * Load the config at path and its identity rules for explain and passwd.
 * Returns 0 with both set (the caller frees them), or -1 after printing the
 * error on stderr.
 */
int explain_load_rules(const char *path, struct config **cfg,
    struct identity_rules **r);

#endif
