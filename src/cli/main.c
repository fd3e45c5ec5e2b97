/* SPDX-License-Identifier: MIT */
/*
 * moat: a mutual-TLS front door for MQTT brokers that speak only plaintext.
 * Command line, start-up, signals and shutdown. moat runs in the foreground
 * and logs to stderr, as systemd and Kubernetes expect; it never daemonises.
 */
#include "config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "moat/config.h"
#include "moat/daemon.h"
#include "moat/identity.h"
#include "moat/log.h"
#include "moat/notify.h"
#include "moat/snapshot.h"
#include "moat/tls.h"

#define DEFAULT_CONFIG MOAT_SYSCONFDIR "/moat/moat.ini"

static void
usage(FILE *out)
{
	fprintf(out,
"Usage: moat [-c FILE] [--check]\n"
"       moat explain [-c FILE] [--client-id ID] [--mqtt 3|4|5] CERT.pem\n"
"       moat passwd [-c FILE] [--mosquitto] IDENTITY...\n"
"       moat --version | --help\n"
"\n"
"moat terminates mutual TLS from MQTT devices (each with a client\n"
"certificate), replaces the credentials in each device's MQTT CONNECT\n"
"with ones mapped from its certificate, and forwards the stream in\n"
"plaintext to a broker on this host only (loopback or a Unix socket).\n"
"\n"
"Commands:\n"
"  explain            show the identity fields of a device certificate,\n"
"                     whether it verifies, the rule or map entry that\n"
"                     matches, and the username and client id moat would\n"
"                     send (the password redacted), or why it refuses\n"
"  passwd             print \"username password\" for each identity, as\n"
"                     moat will send them; with --mosquitto, lines for\n"
"                     Mosquitto's password_file (PBKDF2-SHA512, $7$)\n"
"\n"
"Options:\n"
"  -c, --config FILE  configuration file (default: %s)\n"
"  -t, --check        load and validate the configuration, certificate,\n"
"                     key (must match the certificate), CA and CRL, then\n"
"                     exit: 0 when all is well, 1 with FILE:LINE: reason\n"
"  -V, --version      print the versions of moat, wolfSSL and libuv\n"
"  -h, --help         print this help and the configuration reference\n"
"\n"
"moat runs in the foreground and logs to stderr; under systemd it reports\n"
"readiness over $NOTIFY_SOCKET (Type=notify). SIGHUP reloads the\n"
"configuration, certificates, CRL and identity map for new connections\n"
"(a file with errors is refused and the running one kept). SIGTERM or\n"
"SIGINT close every connection (close_notify to devices) and exit.\n",
	    DEFAULT_CONFIG);
}

static const char *
verdict_name(enum identity_verdict v)
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

static void
print_list(const char *label, char **v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		printf("  %-12s %s\n", label, v[i]);
}

/* Load the config and the identity rules for explain and passwd. */
static int
load_rules(const char *path, struct config **cfg, struct identity_rules **r)
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

static int
cmd_explain(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "client-id", required_argument, NULL, 'i' },
		{ "mqtt", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = DEFAULT_CONFIG, *cid = "";
	struct config *cfg;
	struct identity_rules *rules;
	struct cert_identity id;
	struct identity_creds cr;
	enum identity_verdict v;
	char err[1024];
	int ch, level = 4, rc = 1, verified;

	while ((ch = getopt_long(argc, argv, "c:i:m:", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'i':
			cid = optarg;
			break;
		case 'm':
			level = atoi(optarg);
			if (level < 3 || level > 5) {
				fprintf(stderr, "moat explain: --mqtt takes 3 "
				    "(MQTT 3.1), 4 (3.1.1) or 5\n");
				return (2);
			}
			break;
		default:
			usage(stderr);
			return (2);
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "moat explain: give one certificate file\n");
		usage(stderr);
		return (2);
	}
	if (tls_global_init() != 0 || load_rules(path, &cfg, &rules) != 0)
		return (1);
	if (tls_cert_file_identity(argv[optind], &id, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	printf("certificate %s\n", argv[optind]);
	printf("  %-12s %s\n", "subject", id.dn);
	printf("  %-12s %s\n", "cn", id.cn != NULL ? id.cn : "(none)");
	print_list("san-dns", id.san_dns, id.n_san_dns);
	print_list("san-uri", id.san_uri, id.n_san_uri);
	print_list("san-email", id.san_email, id.n_san_email);
	print_list("san-ip", id.san_ip, id.n_san_ip);
	printf("  %-12s %s\n", "serial", id.serial);
	printf("  %-12s %s\n", "fingerprint", id.fingerprint);
	printf("  %-12s %s\n", "issuer cn",
	    id.issuer_cn != NULL ? id.issuer_cn : "(none)");
	if ((verified = tls_verify_file(cfg, argv[optind], err,
	    sizeof(err)) == 0))
		printf("verification: passes [tls] ca%s\n",
		    cfg->tls_crl != NULL ? " and crl" : "");
	else
		printf("verification: FAILS: %s (the TLS handshake would "
		    "refuse it before any mapping)\n", err);

	memset(&cr, 0, sizeof(cr));
	v = identity_map(rules, &id, (const uint8_t *)cid, strlen(cid), level,
	    &cr);
	printf("identity: %s\n", cr.identity[0] != '\0' ? cr.identity :
	    "(none)");
	printf("rule: %s\n", cr.rule[0] != '\0' ? cr.rule : "(none)");
	printf("result: %s\n", verdict_name(v));
	if (v == ID_OK) {
		printf("  %-12s %s\n", "username", cr.username);
		printf("  %-12s %s\n", "password",
		    cr.has_password ? "(set, not shown)" : "(none)");
		printf("  %-12s %s\n", "client id", cr.client_id);
		/* Exit 0 only when this device would get in. */
		rc = verified ? 0 : 1;
	} else {
		printf("  %-12s %s\n", "why", cr.why);
	}
	explicit_bzero(&cr, sizeof(cr));
	cert_identity_clear(&id);
out:
	identity_rules_free(rules);
	config_free(cfg);
	tls_global_cleanup();
	return (rc);
}

static int
cmd_passwd(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "mosquitto", no_argument, NULL, 'M' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = DEFAULT_CONFIG;
	struct config *cfg;
	struct identity_rules *rules;
	struct identity_creds cr;
	char line[1024];
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
			usage(stderr);
			return (2);
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "moat passwd: give at least one identity\n");
		usage(stderr);
		return (2);
	}
	if (load_rules(path, &cfg, &rules) != 0)
		return (1);
	for (i = optind; i < argc; i++) {
		enum identity_verdict v;

		memset(&cr, 0, sizeof(cr));
		v = identity_for_name(rules, argv[i], &cr);
		if (v != ID_OK) {
			fprintf(stderr, "moat passwd: %s: %s: %s\n", argv[i],
			    verdict_name(v), cr.why);
			rc = 1;
		} else if (!cr.has_password) {
			fprintf(stderr, "moat passwd: %s: [identity] password "
			    "= none: moat sends no password for %s\n",
			    argv[i], cr.username);
			rc = 1;
		} else if (mosq) {
			if (identity_mosquitto_line(cr.username, cr.password,
			    line, sizeof(line)) != 0) {
				fprintf(stderr, "moat passwd: %s: cannot "
				    "hash the password\n", argv[i]);
				rc = 1;
			} else {
				printf("%s\n", line);
			}
			explicit_bzero(line, sizeof(line));
		} else {
			printf("%s %s\n", cr.username, cr.password);
		}
		explicit_bzero(&cr, sizeof(cr));
	}
	identity_rules_free(rules);
	config_free(cfg);
	return (rc);
}

/* Serve until SIGTERM or SIGINT: the daemon owns the running state. */
static int
run(const char *path, struct snapshot *snap)
{
	return (daemon_run(path, snap));
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = DEFAULT_CONFIG;
	struct config *cfg;
	struct snapshot *snap;
	char err[1024], where[512];
	int ch, check = 0, rc;

	if (argc > 1 && strcmp(argv[1], "explain") == 0)
		return (cmd_explain(argc - 1, argv + 1));
	if (argc > 1 && strcmp(argv[1], "passwd") == 0)
		return (cmd_passwd(argc - 1, argv + 1));
	while ((ch = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'V':
			printf("moat %s\nwolfSSL %s\nlibuv %s\n",
			    PACKAGE_VERSION, tls_library_version(),
			    uv_version_string());
			return (0);
		case 'h':
			usage(stdout);
			printf("\nConfiguration reference (moat.ini):\n\n");
			config_print_reference(stdout);
			return (0);
		default:
			usage(stderr);
			return (2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "moat: unexpected argument \"%s\"\n",
		    argv[optind]);
		usage(stderr);
		return (2);
	}
	signal(SIGPIPE, SIG_IGN);

	if ((cfg = config_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return (1);
	}
	if (!check)
		log_setup(cfg->log_level, cfg->log_format);
	if (tls_global_init() != 0) {
		fprintf(stderr, "moat: cannot initialise wolfSSL\n");
		config_free(cfg);
		return (1);
	}
	if ((snap = snapshot_new(cfg, err, sizeof(err))) == NULL) {
		if (check)
			fprintf(stderr, "%s\n", err);
		else
			log_error("%s", err);
		tls_global_cleanup();
		return (1);
	}
	/*
	 * DESIGN invariant 1: plaintext must not be reachable. Only --check
	 * probes: listing the host's addresses takes a netlink socket,
	 * which the systemd unit's sandbox (rightly) does not allow moat.
	 */
	if (check && backend_exposed(&snap->backend, 300, where,
	    sizeof(where))) {
#define EXPOSED "the broker's plaintext port is also reachable at %s: " \
	"anyone on the network can bypass moat there. Bind the broker to " \
	"loopback only (Mosquitto: listener %s 127.0.0.1), or firewall it"
		const char *port = strrchr(snap->backend.text, ':');

		port = port != NULL ? port + 1 : "1883";
		fprintf(stderr, "%s: warning: " EXPOSED "\n", path, where,
		    port);
#undef EXPOSED
	}
	if (snap->cfg->id_client_id == ID_CID_KEEP) {
		/* Allowed, but it gives up invariant 3: say so every time. */
		config_where(snap->cfg, "identity", "client_id", where,
		    sizeof(where));
		if (check)
			fprintf(stderr, "%s: warning: client_id = keep lets a "
			    "device take over another device's session by "
			    "sending its client id; prefer identity\n", where);
		else
			log_warn("%s: client_id = keep lets a device take over "
			    "another device's session by sending its client "
			    "id; prefer identity", where);
	}
	if (check) {
		printf("%s: configuration OK (backend %s)\n", path,
		    snap->backend.text);
		snapshot_unref(snap);
		tls_global_cleanup();
		return (0);
	}
	rc = run(path, snap);
	tls_global_cleanup();
	return (rc);
}
