/* SPDX-License-Identifier: MIT */
/*
 * moat explain: what moat would do with a device certificate. It prints the
 * certificate's identity fields, verifies it exactly as the handshake does
 * (one function in the certificate room, cert.h, serves both: moat's own
 * rules on the leaf, then the chain from the file against [tls] ca and
 * crl), and shows the identity map's answer with the username and client
 * id moat would send (never the password), the topic rules with their
 * placeholders filled, and the limits that hold for it.
 *
 * Every string that comes from the certificate is printed escaped: a name
 * holding a newline or a terminal escape sequence must not be able to
 * print lines of its own, such as a fake "result: accepted".
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/cert.h"
#include "moat/cli.h"
#include "moat/config.h"
#include "moat/identity.h"
#include "moat/policy.h"
#include "moat/text.h"
#include "moat/tls.h"

/* Options of one explain run. */
struct explain_args {
	const char *config;
	const char *client_id;
	const char *cert;
	int level;
};

/*
 * Print s with every control character (C0, DEL, C1), format or bidi
 * character and invalid UTF-8 byte as \xNN, one per byte (text.h). Other
 * text, backslashes included, is printed as it is, so RFC 4514 DNs keep
 * their own escapes.
 */
static void
put_text(const char *s)
{
	size_t len = strlen(s), buflen = len * 4 + 16;
	char *buf;

	if ((buf = malloc(buflen)) == NULL) {
		fputs("(out of memory)", stdout);
		return;
	}
	fputs(text_quote(s, len, len, 0, buf, buflen), stdout);
	free(buf);
}

/* "  label        value" with the value escaped. */
static void
put_field(const char *label, const char *value)
{
	printf("  %-12s ", label);
	put_text(value != NULL ? value : "(none)");
	putchar('\n');
}

/* "label: value" with the value escaped. */
static void
put_line(const char *label, const char *value)
{
	printf("%s: ", label);
	put_text(value);
	putchar('\n');
}

static void
put_list(const char *label, char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		put_field(label, v[i]);
}

const char *
explain_verdict(enum identity_verdict v)
{
	switch (v) {
	case ID_OK:
		return ("accepted");
	case ID_UNKNOWN:
		return ("refused: unknown identity");
	case ID_DENIED:
		return ("refused: denied by the map");
	case ID_BAD_NAME:
		return ("refused: forbidden name");
	case ID_CLIENT_ID_REFUSED:
		return ("refused: client id");
	}
	return ("?");
}

int
explain_load_rules(const char *path, struct config **cfg,
    struct identity_rules **r)
{
	char err[1024];

	if ((*cfg = config_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return (-1);
	}
	if ((*r = identity_rules_new(*cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		config_free(*cfg);
		return (-1);
	}
	return (0);
}

static void
put_identity(const struct cert_identity *id)
{
	put_field("subject", id->dn);
	put_field("cn", id->cn);
	put_list("san-dns", id->san_dns, id->n_san_dns);
	put_list("san-uri", id->san_uri, id->n_san_uri);
	put_list("san-email", id->san_email, id->n_san_email);
	put_list("san-ip", id->san_ip, id->n_san_ip);
	put_field("serial", id->serial);
	put_field("fingerprint", id->fingerprint);
	put_field("issuer cn", id->issuer_cn);
}

/* Each rule of one kind, placeholders filled, one line each. */
static void
put_rules(const struct policy_set *set, enum policy_kind kind,
    const char *label)
{
	const char *r;
	char *buf;
	size_t i, len;

	for (i = 0; (r = policy_set_rule(set, kind, i, &len)) != NULL; i++) {
		/* Rules are not NUL-terminated: copy len bytes. */
		if ((buf = malloc(len + 1)) == NULL)
			return;
		memcpy(buf, r, len);
		buf[len] = '\0';
		put_field(label, buf);
		free(buf);
	}
	if (i == 0)
		printf("  %-12s (nothing)\n", label);
}

/*
 * The device's topic rules, as the gate fills them when it connects.
 * Returns 0, or -1 when they cannot be filled (the device is refused).
 */
static int
put_topic_rules(const struct identity_rules *rules,
    const struct cert_identity *id, const char *identity)
{
	struct policy_rules pr;
	struct policy_values pv = { identity, id->cn, id->serial,
	    id->fingerprint };
	struct policy_set *set;
	char err[512];

	if (!identity_policy_rules(rules, identity, &pr)) {
		printf("topic rules: off (%s)\n", POLICY_OFF_NOTICE);
		return (0);
	}
	if ((set = policy_expand(&pr, &pv, err, sizeof(err))) == NULL) {
		printf("topic rules: cannot be filled for this device\n");
		put_field("why", err);
		return (-1);
	}
	printf("topic rules:\n");
	put_rules(set, POLICY_PUBLISH, "publish");
	put_rules(set, POLICY_SUBSCRIBE, "subscribe");
	policy_set_free(set);
	return (0);
}

/* "  label        N unit" or "none". */
static void
put_limit(const char *label, uint64_t v, const char *unit)
{
	if (v == 0)
		printf("  %-12s none\n", label);
	else
		printf("  %-12s %llu%s\n", label, (unsigned long long)v, unit);
}

/* The [limits] that hold for this identity, the map's where it sets them. */
static void
put_limits(const struct identity_rules *rules, const struct config *cfg,
    const char *identity)
{
	struct identity_publish_limits pl;
	enum on_duplicate dup;
	uint64_t max;

	identity_conn_limit(rules, cfg, identity, &max, &dup);
	identity_publish_limits(rules, cfg, identity, &pl);
	printf("limits:\n");
	if (max == 0)
		printf("  %-12s no limit\n", "connections");
	else
		printf("  %-12s %llu at once, a newer one %s\n", "connections",
		    (unsigned long long)max, dup == DUP_REFUSE ?
		    "is refused" : "replaces the oldest");
	put_limit("rate", pl.rate, " messages/s");
	if (pl.rate != 0)
		put_limit("burst", pl.burst != 0 ? pl.burst : pl.rate,
		    " messages");
	put_limit("bytes rate", pl.bytes_rate, " bytes/s");
	put_limit("max publish", pl.max_size, " bytes");
}

/* The identity map's answer. Returns the exit status. */
static int
put_mapping(const struct identity_rules *rules, const struct config *cfg,
    const struct cert_identity *id, const struct explain_args *a,
    int verified)
{
	struct identity_creds cr;
	enum identity_verdict v;
	int rc = 1;

	memset(&cr, 0, sizeof(cr));
	v = identity_map(rules, id, (const uint8_t *)a->client_id,
	    strlen(a->client_id), a->level, &cr);
	put_line("identity", cr.identity[0] != '\0' ? cr.identity : "(none)");
	put_line("rule", cr.rule[0] != '\0' ? cr.rule : "(none)");
	if (v == ID_OK && put_topic_rules(rules, id, cr.identity) != 0) {
		printf("result: refused: topic rules\n");
	} else if (v == ID_OK) {
		put_limits(rules, cfg, cr.identity);
		printf("result: %s\n", explain_verdict(v));
		put_field("username", cr.username);
		printf("  %-12s %s\n", "password",
		    cr.has_password ? "(set, not shown)" : "(none)");
		put_field("client id", cr.client_id);
		/* Exit 0 only when this device would get in. */
		rc = verified ? 0 : 1;
	} else {
		printf("result: %s\n", explain_verdict(v));
		put_field("why", cr.why);
	}
	explicit_bzero(&cr, sizeof(cr));
	return (rc);
}

static int
explain_run(const struct explain_args *a)
{
	struct config *cfg;
	struct identity_rules *rules;
	struct cert_identity id;
	enum cert_verdict cv;
	char why[1024];
	int rc = 1;

	if (tls_global_init() != 0 || explain_load_rules(a->config, &cfg,
	    &rules) != 0)
		return (1);
	cv = cert_verify_file(cfg, a->cert, &id, why, sizeof(why));
	if (cv == CERT_ERROR) {
		fprintf(stderr, "moat explain: %s\n", why);
		goto out;
	}
	printf("certificate ");
	put_text(a->cert);
	putchar('\n');
	if (cv == CERT_REFUSED) {
		printf("verification: FAILS: ");
		put_text(why);
		printf(" (moat refuses this certificate in the TLS handshake, "
		    "before any mapping)\nresult: refused: certificate\n");
		goto out;
	}
	put_identity(&id);
	if (cv == CERT_OK) {
		printf("verification: passes [tls] ca%s\n",
		    cfg->tls_crl != NULL ? " and crl" : "");
	} else {
		printf("verification: FAILS: ");
		put_text(why);
		printf(" (the TLS handshake would refuse it before any "
		    "mapping)\n");
	}
	rc = put_mapping(rules, cfg, &id, a, cv == CERT_OK);
	cert_identity_clear(&id);
out:
	identity_rules_free(rules);
	config_free(cfg);
	tls_global_cleanup();
	return (rc);
}

int
explain_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "client-id", required_argument, NULL, 'i' },
		{ "mqtt", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	struct explain_args a = { CLI_DEFAULT_CONFIG, "", NULL, 4 };
	int ch;

	while ((ch = getopt_long(argc, argv, "c:i:m:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			a.config = optarg;
			break;
		case 'i':
			a.client_id = optarg;
			break;
		case 'm':
			a.level = atoi(optarg);
			if (a.level < 3 || a.level > 5) {
				fprintf(stderr, "moat explain: --mqtt takes 3 "
				    "(MQTT 3.1), 4 (3.1.1) or 5\n");
				return (2);
			}
			break;
		default:
			main_usage(stderr);
			return (2);
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "moat explain: give one certificate file\n");
		main_usage(stderr);
		return (2);
	}
	a.cert = argv[optind];
	return (explain_run(&a));
}
