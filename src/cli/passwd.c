/* SPDX-License-Identifier: MIT */
/*
 * moat passwd: print the credentials moat will send for identities given on
 * the command line, as "username password" lines or, with --mosquitto, as
 * lines for Mosquitto's password_file, so that the broker can be set up
 * without a per-device table.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "moat/cli.h"
#include "moat/config.h"
#include "moat/identity.h"

/* One identity: print its line, or say on stderr why not. 0 or 1. */
static int
passwd_one(const struct identity_rules *rules, const char *name, int mosq)
{
	struct identity_creds cr;
	enum identity_verdict v;
	char line[1024];
	int rc = 0;

	memset(&cr, 0, sizeof(cr));
	v = identity_for_name(rules, name, &cr);
	if (v != ID_OK) {
		fprintf(stderr, "moat passwd: %s: %s: %s\n", name,
		    explain_verdict(v), cr.why);
		rc = 1;
	} else if (!cr.has_password) {
		fprintf(stderr, "moat passwd: %s: [identity] password = none: "
		    "moat sends no password for %s\n", name, cr.username);
		rc = 1;
	} else if (mosq) {
		if (identity_mosquitto_line(cr.username, cr.password, line,
		    sizeof(line)) != 0) {
			fprintf(stderr, "moat passwd: %s: cannot hash the "
			    "password\n", name);
			rc = 1;
		} else {
			printf("%s\n", line);
		}
		explicit_bzero(line, sizeof(line));
	} else {
		printf("%s %s\n", cr.username, cr.password);
	}
	explicit_bzero(&cr, sizeof(cr));
	return (rc);
}

int
passwd_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "mosquitto", no_argument, NULL, 'M' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = CLI_DEFAULT_CONFIG;
	struct config *cfg;
	struct identity_rules *rules;
	int ch, i, mosq = 0, rc = 0;

	while ((ch = getopt_long(argc, argv, "c:M", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'M':
			mosq = 1;
			break;
		default:
			main_usage(stderr);
			return (2);
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "moat passwd: give at least one identity\n");
		main_usage(stderr);
		return (2);
	}
	if (explain_load_rules(path, &cfg, &rules) != 0)
		return (1);
	for (i = optind; i < argc; i++)
		rc |= passwd_one(rules, argv[i], mosq);
	identity_rules_free(rules);
	config_free(cfg);
	return (rc);
}
