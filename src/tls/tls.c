/* SPDX-License-Identifier: MIT */
/*
 * Server-side mutual TLS with wolfSSL over caller-supplied memory I/O.
 *
 * Debian's wolfSSL is built with nearly everything enabled (anonymous and
 * NULL suites, RC4, TLS 1.0/1.1, verification off until asked), so every
 * knob that matters is set here explicitly and nothing is left to the
 * library's defaults: client certificate required and verified, minimum
 * protocol version, an AEAD-only cipher list, CRL checking when configured,
 * no session resumption (so every connection presents and verifies its
 * certificate), and the socket never handed to the library.
 */
#include "config.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/openssl/evp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/config.h"
#include "moat/tls.h"

struct tls_ctx {
	WOLFSSL_CTX *ctx;
};

struct tls_session {
	WOLFSSL *ssl;
	const struct tls_io *io;
	void *arg;
	int last_err;        /* wolfSSL_get_error() of the last failure */
	int io_closed;       /* recv reported end of stream */
	int shut;            /* close_notify sent */
};

int
tls_global_init(void)
{
	return (wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -1);
}

void
tls_global_cleanup(void)
{
	wolfSSL_Cleanup();
}

const char *
tls_library_version(void)
{
	return (wolfSSL_lib_version());
}

static int
io_recv(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct tls_session *s = arg;
	long n;

	(void)ssl;
	if (sz <= 0)
		return (0);
	n = s->io->recv(s->arg, buf, (size_t)sz);
	if (n > 0)
		return ((int)n);
	if (n == 0)
		return (WOLFSSL_CBIO_ERR_WANT_READ);
	s->io_closed = 1;
	return (WOLFSSL_CBIO_ERR_CONN_CLOSE);
}

static int
io_send(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct tls_session *s = arg;

	(void)ssl;
	if (sz <= 0)
		return (0);
	if (s->io->send(s->arg, buf, (size_t)sz) != sz)
		return (WOLFSSL_CBIO_ERR_CONN_CLOSE);
	return (sz);
}

/* "FILE:LINE: [tls] KEY = VALUE: what" into err. */
static void
ctx_error(const struct config *cfg, const char *key, const char *value,
    char *err, size_t errlen, const char *what)
{
	char where[512];

	snprintf(err, errlen, "%s: [tls] %s = %s: %s",
	    config_where(cfg, "tls", key, where, sizeof(where)), key,
	    value != NULL ? value : "(default)", what);
}

/* A file that cannot be opened gets the system's reason, not wolfSSL's. */
static int
check_readable(const struct config *cfg, const char *key, const char *path,
    char *err, size_t errlen)
{
	char what[256];
	FILE *f;

	if ((f = fopen(path, "r")) != NULL) {
		fclose(f);
		return (0);
	}
	snprintf(what, sizeof(what), "cannot open: %s; check the path and "
	    "that the user moat runs as can read it", strerror(errno));
	ctx_error(cfg, key, path, err, errlen, what);
	return (-1);
}

/*
 * Does the private key in keypath belong to the first certificate in
 * certpath? wolfSSL_CTX_check_private_key() of wolfSSL 5.5 accepts any ECC
 * key of the right curve, so prove it: sign with the key, verify with the
 * certificate's public key. Returns 1 yes, 0 no, -1 cannot tell.
 */
static int
key_matches_cert(const char *certpath, const char *keypath)
{
	static const char msg[] = "moat: does this key belong to the cert?";
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	WOLFSSL_X509 *x = NULL;
	WOLFSSL_EVP_PKEY *priv = NULL, *pub = NULL;
	WOLFSSL_EVP_MD_CTX *sign = NULL, *verify = NULL;
	FILE *f;
	int ok = -1;

	if ((f = fopen(keypath, "r")) == NULL)
		return (-1);
	priv = wolfSSL_PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	x = wolfSSL_X509_load_certificate_file(certpath, WOLFSSL_FILETYPE_PEM);
	if (priv == NULL || x == NULL || (pub = wolfSSL_X509_get_pubkey(x)) ==
	    NULL)
		goto out;
	if ((sign = wolfSSL_EVP_MD_CTX_new()) == NULL ||
	    (verify = wolfSSL_EVP_MD_CTX_new()) == NULL)
		goto out;
	if (wolfSSL_EVP_DigestSignInit(sign, NULL, wolfSSL_EVP_sha256(), NULL,
	    priv) != WOLFSSL_SUCCESS ||
	    wolfSSL_EVP_DigestSignUpdate(sign, msg, sizeof(msg)) !=
	    WOLFSSL_SUCCESS ||
	    wolfSSL_EVP_DigestSignFinal(sign, sig, &siglen) != WOLFSSL_SUCCESS)
		goto out;
	if (wolfSSL_EVP_DigestVerifyInit(verify, NULL, wolfSSL_EVP_sha256(),
	    NULL, pub) != WOLFSSL_SUCCESS ||
	    wolfSSL_EVP_DigestVerifyUpdate(verify, msg, sizeof(msg)) !=
	    WOLFSSL_SUCCESS)
		goto out;
	ok = wolfSSL_EVP_DigestVerifyFinal(verify, sig, siglen) ==
	    WOLFSSL_SUCCESS ? 1 : 0;
out:
	wolfSSL_EVP_MD_CTX_free(sign);
	wolfSSL_EVP_MD_CTX_free(verify);
	wolfSSL_EVP_PKEY_free(priv);
	wolfSSL_EVP_PKEY_free(pub);
	wolfSSL_X509_free(x);
	return (ok);
}

struct tls_ctx *
tls_ctx_new(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_ctx *t;
	WOLFSSL_CTX *ctx;
	const char *ciphers;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	if ((ctx = wolfSSL_CTX_new(wolfSSLv23_server_method())) == NULL) {
		snprintf(err, errlen, "cannot create a wolfSSL context");
		goto fail;
	}
	t->ctx = ctx;

	if (wolfSSL_CTX_SetMinVersion(ctx, cfg->tls_min_version == 13 ?
	    WOLFSSL_TLSV1_3 : WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
		ctx_error(cfg, "min_version", cfg->tls_min_version == 13 ?
		    "1.3" : "1.2", err, errlen,
		    "this wolfSSL build cannot enforce that minimum version");
		goto fail;
	}

	ciphers = cfg->tls_ciphers != NULL ? cfg->tls_ciphers :
	    config_default_ciphers;
	if (wolfSSL_CTX_set_cipher_list(ctx, ciphers) != WOLFSSL_SUCCESS) {
		ctx_error(cfg, "ciphers", ciphers, err, errlen,
		    "wolfSSL accepts none of these cipher suites; use wolfSSL "
		    "names such as TLS13-AES128-GCM-SHA256 or "
		    "ECDHE-ECDSA-AES128-GCM-SHA256");
		goto fail;
	}

	if (check_readable(cfg, "cert", cfg->tls_cert, err, errlen) != 0)
		goto fail;
	if (wolfSSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) !=
	    WOLFSSL_SUCCESS) {
		ctx_error(cfg, "cert", cfg->tls_cert, err, errlen,
		    "not a PEM certificate chain; the file must hold the "
		    "server certificate first, then any intermediates");
		goto fail;
	}
	if (check_readable(cfg, "key", cfg->tls_key, err, errlen) != 0)
		goto fail;
	if (wolfSSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key,
	    WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
		ctx_error(cfg, "key", cfg->tls_key, err, errlen,
		    "not an unencrypted PEM private key");
		goto fail;
	}
	if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS ||
	    key_matches_cert(cfg->tls_cert, cfg->tls_key) != 1) {
		ctx_error(cfg, "key", cfg->tls_key, err, errlen,
		    "this key does not belong to the certificate in [tls] cert; "
		    "give the key the certificate was issued for");
		goto fail;
	}

	if (check_readable(cfg, "ca", cfg->tls_ca, err, errlen) != 0)
		goto fail;
	if (wolfSSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) !=
	    WOLFSSL_SUCCESS) {
		ctx_error(cfg, "ca", cfg->tls_ca, err, errlen,
		    "no usable CA certificate in this file; it must hold the "
		    "PEM certificate(s) of the CA that issues device "
		    "certificates");
		goto fail;
	}
	/*
	 * A client certificate is required and verified: without
	 * FAIL_IF_NO_PEER_CERT a client that sends none is let in.
	 */
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER |
	    WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	wolfSSL_CTX_set_verify_depth(ctx, 8);

	if (cfg->tls_crl != NULL) {
		if (check_readable(cfg, "crl", cfg->tls_crl, err, errlen) != 0)
			goto fail;
		/* Check every certificate the device sends, not just the
		 * leaf; a certificate without a CRL from its issuer fails. */
		if (wolfSSL_CTX_EnableCRL(ctx, WOLFSSL_CRL_CHECKALL) !=
		    WOLFSSL_SUCCESS ||
		    wolfSSL_CTX_LoadCRLFile(ctx, cfg->tls_crl,
		    WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
			ctx_error(cfg, "crl", cfg->tls_crl, err, errlen,
			    "not a PEM CRL signed by the CA in [tls] ca");
			goto fail;
		}
	}

	/*
	 * No resumption yet: every connection does a full handshake and
	 * presents its certificate. (Rotating session tickets come with
	 * their own key management.)
	 */
	wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
	wolfSSL_CTX_NoTicketTLSv12(ctx);
	wolfSSL_CTX_no_ticket_TLSv13(ctx);

	wolfSSL_CTX_SetIORecv(ctx, io_recv);
	wolfSSL_CTX_SetIOSend(ctx, io_send);
	return (t);

fail:
	tls_ctx_free(t);
	return (NULL);
}

void
tls_ctx_free(struct tls_ctx *t)
{
	if (t == NULL)
		return;
	if (t->ctx != NULL)
		wolfSSL_CTX_free(t->ctx);
	free(t);
}

struct tls_session *
tls_session_new(struct tls_ctx *t, const struct tls_io *io, void *arg)
{
	struct tls_session *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return (NULL);
	if ((s->ssl = wolfSSL_new(t->ctx)) == NULL) {
		free(s);
		return (NULL);
	}
	s->io = io;
	s->arg = arg;
	wolfSSL_SetIOReadCtx(s->ssl, s);
	wolfSSL_SetIOWriteCtx(s->ssl, s);
	return (s);
}

void
tls_session_free(struct tls_session *s)
{
	if (s == NULL)
		return;
	wolfSSL_free(s->ssl);
	free(s);
}

enum tls_result
tls_handshake(struct tls_session *s)
{
	int r;

	if ((r = wolfSSL_accept(s->ssl)) == WOLFSSL_SUCCESS)
		return (TLS_DONE);
	s->last_err = wolfSSL_get_error(s->ssl, r);
	if (s->last_err == WOLFSSL_ERROR_WANT_READ && !s->io_closed)
		return (TLS_WANT);
	return (TLS_ERR);
}

enum tls_result
tls_read(struct tls_session *s, void *buf, size_t len, size_t *n)
{
	int r;

	*n = 0;
	if (len > 16384)
		len = 16384;
	if ((r = wolfSSL_read(s->ssl, buf, (int)len)) > 0) {
		*n = (size_t)r;
		return (TLS_DONE);
	}
	s->last_err = wolfSSL_get_error(s->ssl, r);
	if (s->last_err == WOLFSSL_ERROR_WANT_READ && !s->io_closed)
		return (TLS_WANT);
	if (s->last_err == WOLFSSL_ERROR_ZERO_RETURN)
		return (TLS_CLOSED);
	return (TLS_ERR);
}

enum tls_result
tls_write(struct tls_session *s, const void *buf, size_t len)
{
	const char *p = buf;
	int r;

	while (len > 0) {
		int chunk = len > 16384 ? 16384 : (int)len;

		if ((r = wolfSSL_write(s->ssl, p, chunk)) <= 0) {
			s->last_err = wolfSSL_get_error(s->ssl, r);
			return (TLS_ERR);
		}
		p += r;
		len -= (size_t)r;
	}
	return (TLS_DONE);
}

void
tls_close_notify(struct tls_session *s)
{
	if (s->shut)
		return;
	s->shut = 1;
	(void)wolfSSL_shutdown(s->ssl);
}

/* OpenSSL-style verify results that wolfSSL has no text for. */
static const char *
verify_reason(long vr)
{
	switch (vr) {
	case 2: case 20: case 21:
		return ("not issued by a CA in [tls] ca");
	case 9:
		return ("certificate is not yet valid");
	case 10:
		return ("certificate has expired");
	case 23:
		return ("certificate is revoked");
	default:
		return (wolfSSL_X509_verify_cert_error_string(vr));
	}
}

const char *
tls_session_error(struct tls_session *s, char *buf, size_t len)
{
	char tmp[WOLFSSL_MAX_ERROR_SZ];
	long vr;

	if (s->io_closed && (s->last_err == WOLFSSL_ERROR_WANT_READ ||
	    s->last_err == SOCKET_PEER_CLOSED_E || s->last_err == 0)) {
		snprintf(buf, len, "peer closed the connection");
		return (buf);
	}
	wolfSSL_ERR_error_string_n((unsigned long)s->last_err, tmp,
	    sizeof(tmp));
	/*
	 * A failed verification is reported as "verify failed"; the
	 * verify result says why (no signer, expired, revoked). This build
	 * keeps wolfSSL's own (negative) codes there.
	 */
	vr = wolfSSL_get_verify_result(s->ssl);
	if (vr < 0 && vr != s->last_err) {
		char why[WOLFSSL_MAX_ERROR_SZ];

		wolfSSL_ERR_error_string_n((unsigned long)vr, why, sizeof(why));
		snprintf(buf, len, "%s: %s", tmp, why);
	} else if (vr > 0) {
		snprintf(buf, len, "%s: %s", tmp, verify_reason(vr));
	} else {
		snprintf(buf, len, "%s", tmp);
	}
	return (buf);
}

const char *
tls_session_version(struct tls_session *s)
{
	return (wolfSSL_get_version(s->ssl));
}

const char *
tls_session_cipher(struct tls_session *s)
{
	return (wolfSSL_get_cipher_name(s->ssl));
}

WOLFSSL_X509 *
tls_session_peer_cert(struct tls_session *s)
{
	return (wolfSSL_get_peer_certificate(s->ssl));
}
