/* SPDX-License-Identifier: MIT */
/*
 * Immutable, reference-counted running configuration (see snapshot.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "moat/backend.h"
#include "moat/cert.h"
#include "moat/config.h"
#include "moat/identity.h"
#include "moat/privdrop.h"
#include "moat/snapshot.h"
#include "moat/tls.h"

struct snapshot *
snapshot_new(struct config *cfg, char *err, size_t errlen)
{
	struct snapshot *snap;
	char where[512];

	if ((snap = calloc(1, sizeof(*snap))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail0;
	}
	atomic_init(&snap->refs, 1);

	/*
	 * The one place a backend host name is resolved: config_load only
	 * checked its spelling (addr.c), so every resolved address meets the
	 * loopback rule here, once per load.
	 */
	if (backend_parse(cfg->backend, &snap->backend, err, errlen) != 0) {
		/* Point the message at the line that set the address. */
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", err);
		snprintf(err, errlen, "%s: %s",
		    config_where(cfg, "backend", "address", where,
		    sizeof(where)), msg);
		goto fail1;
	}
	if (cfg->backend_source != NULL && backend_set_source(&snap->backend,
	    cfg->backend_source, err, errlen) != 0) {
		char msg[1024];

		snprintf(msg, sizeof(msg), "%s", err);
		snprintf(err, errlen, "%s: %s",
		    config_where(cfg, "backend", "source", where,
		    sizeof(where)), msg);
		goto fail1;
	}
	if (privdrop_resolve(cfg, &snap->run_as, err, errlen) != 0)
		goto fail1;
	backend_audit(&snap->backend, &snap->exposure);
	snap->cert_not_after = cert_file_not_after(cfg->tls_cert);
	if ((snap->tls = tls_ctx_new(cfg, err, errlen)) == NULL)
		goto fail1;
	if ((snap->ident = identity_rules_new(cfg, err, errlen)) == NULL)
		goto fail2;
	if (cfg->tls_crl != NULL && (snap->crl = cert_crl_load(cfg->tls_crl,
	    err, errlen)) == NULL)
		goto fail3;
	snap->cfg = cfg;
	return (snap);

fail3:
	identity_rules_free(snap->ident);
fail2:
	tls_ctx_free(snap->tls);
fail1:
	free(snap);
fail0:
	config_free(cfg);
	return (NULL);
}

struct snapshot *
snapshot_ref(struct snapshot *snap)
{
	atomic_fetch_add_explicit(&snap->refs, 1, memory_order_relaxed);
	return (snap);
}

void
snapshot_unref(struct snapshot *snap)
{
	if (snap == NULL)
		return;
	if (atomic_fetch_sub_explicit(&snap->refs, 1,
	    memory_order_acq_rel) != 1)
		return;
	cert_crl_free(snap->crl);
	identity_rules_free(snap->ident);
	tls_ctx_free(snap->tls);
	config_free((struct config *)snap->cfg);
	free(snap);
}
