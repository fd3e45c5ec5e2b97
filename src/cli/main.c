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

#include "moat/addr.h"
#include "moat/cli.h"
#include "moat/config.h"
#include "moat/daemon.h"
#include "moat/identity.h"
#include "moat/log.h"
#include "moat/notify.h"
#include "moat/privdrop.h"
#include "moat/snapshot.h"
#include "moat/tls.h"

#define DEFAULT_CONFIG CLI_DEFAULT_CONFIG
/* --check's exit status when the broker's port listens off loopback. */
#define CHECK_EXPOSED 2


void
main_usage(FILE *out)
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
"                     exit: 0 when all is well, 1 with FILE:LINE: reason,\n"
"                     2 when the broker's port also listens on an address\n"
"                     other than loopback (named, with the fix)\n"
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

/* privdrop_check_files() warnings: to stderr (arg set) or the log. */
static void
warn_file(void *arg, const char *where, const char *msg)
{
	if (arg != NULL)
		fprintf(stderr, "%s: warning: %s\n", where, msg);
	else
		log_warn("%s: %s", where, msg);
}

/*
 * The exposure audit's finding (made when snap was built): on stderr for
 * --check, else in the log. Returns 1 when the broker's port listens off
 * loopback, else 0.
 */
static int
exposure_warning(const char *path, const struct snapshot *snap, int check)
{
#define EXPOSED "the broker's plaintext port is also reachable at %s: " \
	"anyone who can reach this host there can talk to the broker " \
	"without a certificate, bypassing moat. Bind the broker to loopback " \
	"only (Mosquitto: listener %s 127.0.0.1), or firewall the port"
#define UNKNOWN "cannot tell whether the broker's port is reachable off " \
	"loopback: %s"
	const struct backend_exposure *x = &snap->exposure;
	const char *port = strrchr(snap->backend.text, ':');

	port = port != NULL ? port + 1 : "1883";
	if (x->state == BACKEND_EXPOSURE_FOUND && check)
		fprintf(stderr, "%s: warning: " EXPOSED "\n", path, x->where,
		    port);
	else if (x->state == BACKEND_EXPOSURE_FOUND)
		log_warn("%s: " EXPOSED, path, x->where, port);
	else if (x->state == BACKEND_EXPOSURE_UNKNOWN && check)
		fprintf(stderr, "%s: warning: " UNKNOWN "\n", path, x->why);
	else if (x->state == BACKEND_EXPOSURE_UNKNOWN)
		log_warn("%s: " UNKNOWN, path, x->why);
#undef EXPOSED
#undef UNKNOWN
	return (x->state == BACKEND_EXPOSURE_FOUND);
}

/* [admin] address off loopback: anyone who reaches it reads /metrics. */
static void
admin_warning(const struct config *cfg, int check)
{
	char where[512], err[256];
	struct addr a;

	if (cfg->admin_address == NULL ||
	    strcmp(cfg->admin_address, "off") == 0 ||
	    addr_parse_listen(cfg->admin_address, &a, err, sizeof(err)) != 0 ||
	    addr_is_loopback(a.kind, a.ip))
		return;
	config_where(cfg, "admin", "address", where, sizeof(where));
	if (check)
		fprintf(stderr, "%s: warning: the admin endpoint %s is "
		    "reachable from outside this host, without "
		    "authentication; bind it to 127.0.0.1 unless a firewall "
		    "guards it\n", where, cfg->admin_address);
	else
		log_warn("%s: the admin endpoint %s is reachable from outside "
		    "this host, without authentication", where,
		    cfg->admin_address);
}

/*
 * Say what is allowed but unsafe in snap: on stderr for --check, else in
 * the log. Returns 1 when the broker's port is exposed, else 0.
 */
static int
startup_warnings(const char *path, const struct snapshot *snap, int check)
{
	char where[512];
	int exposed = exposure_warning(path, snap, check);

	admin_warning(snap->cfg, check);

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
	if (tls_ctx_warning(snap->tls) != NULL) {
		if (check)
			fprintf(stderr, "%s\n", tls_ctx_warning(snap->tls));
		else
			log_warn("%s", tls_ctx_warning(snap->tls));
	}
	/* Reloads run as [process] user: can it read what they read? */
	(void)privdrop_check_files(snap->cfg, &snap->run_as, warn_file,
	    check ? stderr : NULL);
	return (exposed);
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
	char err[1024];
	int ch, check = 0, exposed, rc;

	if (argc > 1 && strcmp(argv[1], "explain") == 0)
		return (explain_main(argc - 1, argv + 1));
	if (argc > 1 && strcmp(argv[1], "passwd") == 0)
		return (passwd_main(argc - 1, argv + 1));
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
			main_usage(stdout);
			printf("\nConfiguration reference (moat.ini):\n\n");
			config_print_reference(stdout);
			return (0);
		default:
			main_usage(stderr);
			return (2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "moat: unexpected argument \"%s\"\n",
		    argv[optind]);
		main_usage(stderr);
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
	if (privdrop_allowed(snap->cfg, &snap->run_as, err,
	    sizeof(err)) != 0) {
		if (check)
			fprintf(stderr, "%s\n", err);
		else
			log_error("%s", err);
		snapshot_unref(snap);
		tls_global_cleanup();
		return (1);
	}
	exposed = startup_warnings(path, snap, check);
	if (check) {
		printf("%s: configuration OK (backend %s)%s\n", path,
		    snap->backend.text, exposed ? ", but the broker's port is "
		    "exposed" : "");
		snapshot_unref(snap);
		tls_global_cleanup();
		return (exposed ? CHECK_EXPOSED : 0);
	}
	rc = daemon_run(path, snap);
	tls_global_cleanup();
	return (rc);
}
