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
#include <wolfssl/openssl/x509v3.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/hash.h>

#include <arpa/inet.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/config.h"
#include "moat/identity.h"
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

void
tls_thread_cleanup(void)
{
#if defined(HAVE_ECC) && defined(FP_ECC)
	/* The fixed-point ECC cache is per thread: free this thread's. */
	wc_ecc_fp_free();
#endif
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

/* --- identity fields of a certificate ---------------------------------- */

static char *asn1_strdup(WOLFSSL_ASN1_STRING *a, int *bad);

static char *
hex_string(const unsigned char *p, size_t n, int upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char *out;
	size_t i;

	if ((out = malloc(n * 2 + 1)) == NULL)
		return (NULL);
	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
	return (out);
}

/*
 * The value of the first entry with nid in name, or NULL. A value with an
 * embedded NUL sets *bad: as a C string it would read as a shorter name,
 * the classic way to pose as another certificate's subject.
 */
static char *
name_text(WOLFSSL_X509_NAME *name, int nid, int *bad)
{
	WOLFSSL_X509_NAME_ENTRY *e;
	WOLFSSL_ASN1_STRING *d;
	int i;

	if (name == NULL ||
	    (i = wolfSSL_X509_NAME_get_index_by_NID(name, nid, -1)) < 0 ||
	    (e = wolfSSL_X509_NAME_get_entry(name, i)) == NULL ||
	    (d = wolfSSL_X509_NAME_ENTRY_get_data(e)) == NULL)
		return (NULL);
	return (asn1_strdup(d, bad));
}

/* Append one RFC 4514 attribute value, escaped, to buf. */
static void
dn_append_value(char *buf, size_t cap, size_t *len, const unsigned char *v,
    size_t n)
{
	size_t i;

	for (i = 0; i < n && *len + 4 < cap; i++) {
		unsigned char ch = v[i];

		if (ch == '"' || ch == '+' || ch == ',' || ch == ';' ||
		    ch == '<' || ch == '>' || ch == '\\' ||
		    (i == 0 && (ch == '#' || ch == ' ')) ||
		    (i == n - 1 && ch == ' ')) {
			buf[(*len)++] = '\\';
			buf[(*len)++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			*len += (size_t)snprintf(buf + *len, cap - *len, "\\%02X",
			    ch);
		} else {
			buf[(*len)++] = (char)ch;
		}
	}
	buf[*len] = '\0';
}

/* The subject as an RFC 4514 string: last RDN first, escaped values. */
static char *
dn_string(WOLFSSL_X509_NAME *name)
{
	char buf[4096], oid[128];
	size_t len = 0;
	int i, count;

	buf[0] = '\0';
	if (name == NULL)
		return (strdup(""));
	count = wolfSSL_X509_NAME_entry_count(name);
	for (i = count - 1; i >= 0; i--) {
		WOLFSSL_X509_NAME_ENTRY *e = wolfSSL_X509_NAME_get_entry(name, i);
		WOLFSSL_ASN1_OBJECT *o;
		WOLFSSL_ASN1_STRING *d;
		const char *type;

		if (e == NULL || (o = wolfSSL_X509_NAME_ENTRY_get_object(e)) ==
		    NULL || (d = wolfSSL_X509_NAME_ENTRY_get_data(e)) == NULL)
			continue;
		type = wolfSSL_OBJ_nid2sn(wolfSSL_OBJ_obj2nid(o));
		if (type == NULL || strcmp(type, "UNDEF") == 0) {
			if (wolfSSL_OBJ_obj2txt(oid, sizeof(oid), o, 1) <= 0)
				continue;
			type = oid;
		}
		if (len + strlen(type) + 4 >= sizeof(buf))
			break;
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s=",
		    len > 0 ? "," : "", type);
		dn_append_value(buf, sizeof(buf), &len,
		    wolfSSL_ASN1_STRING_get0_data(d),
		    (size_t)wolfSSL_ASN1_STRING_length(d));
	}
	return (strdup(buf));
}

static int
push(char ***list, size_t *n, char *s)
{
	char **l;

	if (s == NULL)
		return (-1);
	if ((l = realloc(*list, (*n + 1) * sizeof(*l))) == NULL) {
		free(s);
		return (-1);
	}
	l[(*n)++] = s;
	*list = l;
	return (0);
}

/* Copy an ASN.1 string; an embedded NUL sets *bad (see name_text). */
static char *
asn1_strdup(WOLFSSL_ASN1_STRING *a, int *bad)
{
	const unsigned char *p;
	char *out;
	int n;

	if (a == NULL || (n = wolfSSL_ASN1_STRING_length(a)) < 0 ||
	    (p = wolfSSL_ASN1_STRING_get0_data(a)) == NULL)
		return (strdup(""));
	if (memchr(p, 0, (size_t)n) != NULL)
		*bad = 1;
	if ((out = malloc((size_t)n + 1)) == NULL)
		return (NULL);
	memcpy(out, p, (size_t)n);
	out[n] = '\0';
	return (out);
}

static int
san_read(WOLFSSL_X509 *x, struct cert_identity *id, int *bad)
{
	WOLFSSL_STACK *sk;
	int i, n, rc = 0;

	sk = wolfSSL_X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	if (sk == NULL)
		return (0);
	/*
	 * wolfSSL 5.5 stacks the names in reverse: walk from the end so
	 * that "the first SAN of a type" is the certificate's first.
	 */
	n = wolfSSL_sk_GENERAL_NAME_num(sk);
	for (i = n - 1; i >= 0 && rc == 0; i--) {
		WOLFSSL_GENERAL_NAME *g = wolfSSL_sk_GENERAL_NAME_value(sk, i);
		char ip[INET6_ADDRSTRLEN];
		const unsigned char *p;
		int len;

		if (g == NULL)
			continue;
		switch (g->type) {
		case GEN_DNS:
			rc = push(&id->san_dns, &id->n_san_dns,
			    asn1_strdup(g->d.dNSName, bad));
			break;
		case GEN_URI:
			rc = push(&id->san_uri, &id->n_san_uri,
			    asn1_strdup(g->d.uniformResourceIdentifier,
			    bad));
			break;
		case GEN_EMAIL:
			rc = push(&id->san_email, &id->n_san_email,
			    asn1_strdup(g->d.rfc822Name, bad));
			break;
		case GEN_IPADD:
			p = wolfSSL_ASN1_STRING_get0_data(g->d.iPAddress);
			len = wolfSSL_ASN1_STRING_length(g->d.iPAddress);
			if (p == NULL || (len != 4 && len != 16) ||
			    inet_ntop(len == 4 ? AF_INET : AF_INET6, p, ip,
			    sizeof(ip)) == NULL)
				break;
			rc = push(&id->san_ip, &id->n_san_ip, strdup(ip));
			break;
		default:
			break;
		}
	}
	wolfSSL_sk_GENERAL_NAME_pop_free(sk, wolfSSL_GENERAL_NAME_free);
	return (rc);
}

/*
 * Fill id from x. Returns 0, -1 (out of memory) or -2 with *why when the
 * certificate must be refused: a NUL byte in a name, or a keyUsage that
 * does not allow signing (a client proves its key by signing, so such a
 * certificate was not issued for this use).
 */
static int
x509_identity(WOLFSSL_X509 *x, struct cert_identity *id, const char **why)
{
	unsigned char serial[64], hash[32];
	const unsigned char *der;
	int n = sizeof(serial), dersz = 0, bad = 0;

	memset(id, 0, sizeof(*id));
	id->cn = name_text(wolfSSL_X509_get_subject_name(x), NID_commonName,
	    &bad);
	id->issuer_cn = name_text(wolfSSL_X509_get_issuer_name(x),
	    NID_commonName, &bad);
	if ((id->dn = dn_string(wolfSSL_X509_get_subject_name(x))) == NULL)
		goto fail;
	if (wolfSSL_X509_get_serial_number(x, serial, &n) != WOLFSSL_SUCCESS)
		n = 0;
	if ((id->serial = hex_string(serial, (size_t)n, 1)) == NULL)
		goto fail;
	if ((der = wolfSSL_X509_get_der(x, &dersz)) == NULL || dersz <= 0 ||
	    wc_Sha256Hash(der, (word32)dersz, hash) != 0 ||
	    (id->fingerprint = hex_string(hash, sizeof(hash), 0)) == NULL)
		goto fail;
	if (san_read(x, id, &bad) != 0)
		goto fail;
	if (bad) {
		*why = "a name in the certificate contains a NUL byte";
		cert_identity_clear(id);
		return (-2);
	}
	if (wolfSSL_X509_ext_isSet_by_NID(x, NID_key_usage) &&
	    (wolfSSL_X509_get_keyUsage(x) & KEYUSE_DIGITAL_SIG) == 0) {
		*why = "the certificate's keyUsage lacks digitalSignature";
		cert_identity_clear(id);
		return (-2);
	}
	return (0);
fail:
	cert_identity_clear(id);
	return (-1);
}

int
tls_peer_identity(struct tls_session *s, struct cert_identity *id,
    const char **why)
{
	WOLFSSL_X509 *x;
	int rc;

	*why = "out of memory";
	if ((x = wolfSSL_get_peer_certificate(s->ssl)) == NULL) {
		memset(id, 0, sizeof(*id));
		return (-1);
	}
	rc = x509_identity(x, id, why);
	wolfSSL_X509_free(x);
	return (rc);
}

int
tls_cert_file_identity(const char *path, struct cert_identity *id,
    char *err, size_t errlen)
{
	WOLFSSL_X509 *x;
	const char *why = "out of memory";
	int rc;

	memset(id, 0, sizeof(*id));
	if ((x = wolfSSL_X509_load_certificate_file(path,
	    WOLFSSL_FILETYPE_PEM)) == NULL) {
		snprintf(err, errlen, "%s: not a readable PEM certificate",
		    path);
		return (-1);
	}
	if ((rc = x509_identity(x, id, &why)) != 0)
		snprintf(err, errlen, "%s: %s%s", path, why, rc == -2 ?
		    "; moat refuses such certificates" : "");
	wolfSSL_X509_free(x);
	return (rc);
}

int
tls_verify_file(const struct config *cfg, const char *path, char *why,
    size_t whylen)
{
	WOLFSSL_CERT_MANAGER *cm;
	char tmp[WOLFSSL_MAX_ERROR_SZ];
	int r;

	if ((cm = wolfSSL_CertManagerNew()) == NULL) {
		snprintf(why, whylen, "out of memory");
		return (-1);
	}
	r = wolfSSL_CertManagerLoadCA(cm, cfg->tls_ca, NULL);
	if (r == WOLFSSL_SUCCESS && cfg->tls_crl != NULL) {
		r = wolfSSL_CertManagerEnableCRL(cm, WOLFSSL_CRL_CHECKALL);
		if (r == WOLFSSL_SUCCESS)
			r = wolfSSL_CertManagerLoadCRLFile(cm, cfg->tls_crl,
			    WOLFSSL_FILETYPE_PEM);
	}
	if (r != WOLFSSL_SUCCESS) {
		snprintf(why, whylen, "cannot load [tls] ca or crl");
		wolfSSL_CertManagerFree(cm);
		return (-1);
	}
	r = wolfSSL_CertManagerVerify(cm, path, WOLFSSL_FILETYPE_PEM);
	wolfSSL_CertManagerFree(cm);
	if (r == WOLFSSL_SUCCESS)
		return (0);
	wolfSSL_ERR_error_string_n((unsigned long)r, tmp, sizeof(tmp));
	snprintf(why, whylen, "%s", tmp);
	return (-1);
}
