/* SPDX-License-Identifier: MIT */
/*
 * The running configuration: an immutable, reference-counted snapshot of the
 * parsed config, the TLS context built from it and the resolved backend.
 * Each connection holds a reference from accept to close, so a later reload
 * can build a new snapshot and swap it in while old connections finish on
 * the one they started with.
 */
#ifndef MOAT_SNAPSHOT_H
#define MOAT_SNAPSHOT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "moat/backend.h"
#include "moat/privdrop.h"

struct cert_crl;
struct config;
struct identity_rules;
struct tls_ctx;

struct snapshot {
	atomic_uint refs;
	const struct config *cfg;
	struct tls_ctx *tls;
	struct identity_rules *ident;
	struct backend_addr backend;
	struct privdrop_ids run_as;     /* [process] user and group */
	/*
	 * The exposure audit of backend when this snapshot was built (at
	 * start-up and every reload): exposure.count is the number of
	 * addresses off loopback where the broker's port listens.
	 */
	struct backend_exposure exposure;
	int64_t cert_not_after;         /* the server certificate's notAfter,
	                                 * seconds since the epoch; 0: unknown */
	struct cert_crl *crl;           /* [tls] crl's revoked certificates,
	                                 * to re-check live connections; NULL
	                                 * without a crl */
};

/*
 * Build a snapshot from cfg (takes ownership of cfg, also on failure):
 * builds the TLS context and the identity rules and resolves the backend
 * and the [process] user and group. Returns a snapshot with
 * one reference, or NULL with "FILE:LINE: message" in err.
 */
struct snapshot *snapshot_new(struct config *cfg, char *err, size_t errlen);

/* Take one more reference; returns snap. */
struct snapshot *snapshot_ref(struct snapshot *snap);

/* Drop a reference; the last one frees everything. NULL does nothing. */
void snapshot_unref(struct snapshot *snap);

#endif
