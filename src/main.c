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
#include "moat/listener.h"
#include "moat/log.h"
#include "moat/snapshot.h"
#include "moat/tls.h"

#define DEFAULT_CONFIG MOAT_SYSCONFDIR "/moat/moat.ini"

static struct worker worker;
static uv_signal_t sig_term, sig_int, sig_hup;

static void
usage(FILE *out)
{
	fprintf(out,
"Usage: moat [-c FILE] [--check]\n"
"       moat --version | --help\n"
"\n"
"moat terminates mutual TLS from MQTT devices (each with a client\n"
"certificate) and forwards their MQTT stream in plaintext to a broker on\n"
"this host only (loopback or a Unix socket).\n"
"\n"
"Options:\n"
"  -c, --config FILE  configuration file (default: %s)\n"
"  -t, --check        load and validate the configuration, certificate,\n"
"                     key (must match the certificate), CA and CRL, then\n"
"                     exit: 0 when all is well, 1 with FILE:LINE: reason\n"
"  -V, --version      print the versions of moat, wolfSSL and libuv\n"
"  -h, --help         print this help and the configuration reference\n"
"\n"
"moat runs in the foreground and logs to stderr. SIGTERM or SIGINT close\n"
"every connection (close_notify to devices) and exit.\n",
	    DEFAULT_CONFIG);
}

static void
on_stop_closed(uv_handle_t *h)
{
	(void)h;
}

static void
on_signal(uv_signal_t *s, int signum)
{
	if (signum == SIGHUP) {
		log_warn("SIGHUP: live reload is not available in this "
		    "version; restart moat to apply a changed configuration");
		return;
	}
	log_info("%s: closing connections and exiting",
	    signum == SIGTERM ? "SIGTERM" : "SIGINT");
	uv_close((uv_handle_t *)&sig_term, on_stop_closed);
	uv_close((uv_handle_t *)&sig_int, on_stop_closed);
	uv_close((uv_handle_t *)&sig_hup, on_stop_closed);
	worker_stop(&worker);
	(void)s;
}

static int
run(struct snapshot *snap)
{
	uv_loop_t *loop = uv_default_loop();
	char err[1024];

	if (worker_start(&worker, loop, snap, err, sizeof(err)) != 0) {
		log_error("%s", err);
		snapshot_unref(snap);
		uv_run(loop, UV_RUN_DEFAULT);
		(void)uv_loop_close(loop);
		return (1);
	}
	uv_signal_init(loop, &sig_term);
	uv_signal_init(loop, &sig_int);
	uv_signal_init(loop, &sig_hup);
	uv_signal_start(&sig_term, on_signal, SIGTERM);
	uv_signal_start(&sig_int, on_signal, SIGINT);
	uv_signal_start(&sig_hup, on_signal, SIGHUP);

	log_info("moat %s ready (wolfSSL %s, libuv %s); backend %s",
	    PACKAGE_VERSION, tls_library_version(), uv_version_string(),
	    snap->backend.text);
	uv_run(loop, UV_RUN_DEFAULT);
	worker_free(&worker);
	if (uv_loop_close(loop) != 0) {
		log_error("internal error: handles left open at exit");
		return (1);
	}
	log_info("stopped");
	return (0);
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
	int ch, check = 0, rc;

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
	if (check) {
		printf("%s: configuration OK (backend %s)\n", path,
		    snap->backend.text);
		snapshot_unref(snap);
		tls_global_cleanup();
		return (0);
	}
	rc = run(snap);
	tls_global_cleanup();
	return (rc);
}
