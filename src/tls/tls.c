/* SPDX-License-Identifier: MIT */
/*
 * Server-side mutual TLS with wolfSSL over caller-supplied memory I/O.
 *
 * Debian's wolfSSL is built with nearly everything enabled (anonymous and
 * NULL suites, RC4, TLS 1.0/1.1, verification off until asked), so every
 * knob that matters is set here explicitly and nothing is left to the
 * library's defaults: client certificate required and verified, minimum
 * protocol version, an AEAD-only cipher list, trust anchors that are CAs,
 * CRL checking when configured (an expired CRL is an error),
 * no session resumption (so every connection presents and verifies its
 * certificate), and the socket never handed to the library.
 */
#include "config.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/openssl/evp.h>
#include <wolfssl/openssl/pem.h>
#include <wolfssl/wolfcrypt/ecc.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "moat/config.h"
#include "moat/log.h"
#include "moat/tls.h"

struct tls_ctx {
	WOLFSSL_CTX *ctx;
	char *crl_path;              /* [tls] crl, for the expiry line */
	time_t crl_next_update;      /* earliest nextUpdate; 0: none */
	atomic_int crl_expired_logged; /* the expiry was logged */
	char warning[1024];          /* for tls_ctx_warning(), or "" */
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

/* The assembly fast paths this wolfSSL was built with, from its options. */
static const char *const tls_fast_paths[] = {
#if defined(WOLFSSL_SP_X86_64_ASM)
	"SP math in x86_64 assembly",
#elif defined(WOLFSSL_SP_ARM64_ASM)
	"SP math in AArch64 assembly",
#elif defined(WOLFSSL_SP_ASM)
	"SP math in assembly",
#endif
#if defined(WOLFSSL_AESNI)
	"AES-NI",
#endif
#if defined(USE_INTEL_SPEEDUP)
	"AVX/AVX2 for SHA-2 and ChaCha20-Poly1305",
#endif
#if defined(WOLFSSL_ARMASM)
	"ARMv8 crypto instructions",
#endif
	NULL
};

int
tls_library_features(char *buf, size_t len)
{
	size_t i, off = 0;

	if (len > 0)
		buf[0] = '\0';
	for (i = 0; tls_fast_paths[i] != NULL; i++) {
		int n;

		if (off >= len)
			continue;
		n = snprintf(buf + off, len - off, "%s%s", i > 0 ? ", " : "",
		    tls_fast_paths[i]);
		if (n < 0 || (size_t)n >= len - off) {
			buf[off] = '\0';       /* no half entry */
			off = len;
		} else
			off += (size_t)n;
	}
	return ((int)i);
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

/* --- trust anchors and CRL dates --------------------------------------- */

/* A CRL whose nextUpdate is closer than this draws a warning. */
#define CRL_WARN_SECONDS (7 * 24 * 60 * 60)
/* Largest CRL file read for its dates; wolfSSL loads it again itself. */
#define CRL_FILE_MAX (64 * 1024 * 1024)

/* "2026-01-31 12:00:00 UTC" */
static void
utc_text(time_t when, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&when, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, len, "(unknown date)");
}

/* The subject of x in one line; quotes and non-printable bytes as '?'. */
static void
subject_text(WOLFSSL_X509 *x, char *buf, size_t len)
{
	char *p;

	if (wolfSSL_X509_NAME_oneline(wolfSSL_X509_get_subject_name(x), buf,
	    (int)len) == NULL) {
		snprintf(buf, len, "(no subject)");
		return;
	}
	for (p = buf; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f ||
		    *p == '"')
			*p = '?';
}

/*
 * Why x cannot be a trust anchor, or NULL when it is a CA certificate. A
 * non-CA key in [tls] ca could sign a certificate for any device.
 */
static const char *
not_a_ca(WOLFSSL_X509 *x)
{
	if (wolfSSL_X509_get_version(x) < 2)
		return ("it is an X.509 v1 certificate, which cannot say it "
		    "is a CA");
	if (!wolfSSL_X509_ext_isSet_by_NID(x, NID_basic_constraints))
		return ("it has no basicConstraints extension, so it is not "
		    "marked as a CA");
	if (!wolfSSL_X509_get_isCA(x))
		return ("it has basicConstraints CA:FALSE: it is an end-entity "
		    "certificate");
	if (wolfSSL_X509_ext_isSet_by_NID(x, NID_key_usage) &&
	    (wolfSSL_X509_get_keyUsage(x) & KEYUSE_KEY_CERT_SIGN) == 0)
		return ("its keyUsage lacks keyCertSign");
	return (NULL);
}

static int read_capped_file(const char *path, char **buf);

/* How many PEM certificate blocks path holds (0 when unreadable). */
static int
pem_certificates(const char *path)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	char *buf, *p;
	int n = 0;

	if (read_capped_file(path, &buf) != 0)
		return (0);
	for (p = buf; (p = strstr(p, begin)) != NULL; p += sizeof(begin) - 1)
		n++;
	free(buf);
	return (n);
}

/*
 * Every certificate in [tls] ca must be a CA. A file wolfSSL cannot read
 * is left to wolfSSL_CTX_load_verify_locations() to report.
 */
static int
check_ca_file(const struct config *cfg, char *err, size_t errlen)
{
	WOLFSSL_BIO *bio;
	WOLFSSL_X509 *x;
	const char *why = NULL;
	char what[768], subject[256];
	int n = 0;

	if ((bio = wolfSSL_BIO_new_file(cfg->tls_ca, "r")) == NULL)
		return (0);
	while (why == NULL && (x = wolfSSL_PEM_read_bio_X509(bio, NULL, NULL,
	    NULL)) != NULL) {
		n++;
		if ((why = not_a_ca(x)) != NULL)
			subject_text(x, subject, sizeof(subject));
		wolfSSL_X509_free(x);
	}
	wolfSSL_BIO_free(bio);
	if (why == NULL && n < pem_certificates(cfg->tls_ca)) {
		/* A newer wolfSSL refuses to parse some non-CA anchors (a
		 * keyCertSign without CA:TRUE): say so, do not skip it. */
		snprintf(what, sizeof(what), "certificate %d in this file "
		    "cannot be read (wolfSSL refuses its encoding or its "
		    "extensions, as it does for keyCertSign without "
		    "basicConstraints CA:TRUE), so moat cannot check that it "
		    "is a CA; remove it or replace it with a proper CA "
		    "certificate", n + 1);
		ctx_error(cfg, "ca", cfg->tls_ca, err, errlen, what);
		return (-1);
	}
	if (why == NULL)
		return (0);
	snprintf(what, sizeof(what), "certificate %d in this file (subject "
	    "\"%s\") is not a CA: %s. Every key in [tls] ca can vouch for any "
	    "device, so the file must hold only CA certificates "
	    "(basicConstraints CA:TRUE); remove this one", n, subject, why);
	ctx_error(cfg, "ca", cfg->tls_ca, err, errlen, what);
	return (-1);
}

/* The file at path, NUL-terminated, in *buf (caller frees); or -1. */
static int
read_capped_file(const char *path, char **buf)
{
	FILE *f;
	char *b = NULL;
	long size;

	if ((f = fopen(path, "rb")) == NULL)
		return (-1);
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    size > CRL_FILE_MAX || fseek(f, 0, SEEK_SET) != 0 ||
	    (b = malloc((size_t)size + 1)) == NULL ||
	    fread(b, 1, (size_t)size, f) != (size_t)size) {
		free(b);
		fclose(f);
		return (-1);
	}
	fclose(f);
	b[size] = '\0';
	*buf = b;
	return (0);
}

/* nextUpdate of one PEM CRL at pem as a time_t; 0 when it has none. */
static int
crl_next_update(const char *pem, size_t len, time_t *next)
{
	WOLFSSL_BIO *bio;
	WOLFSSL_X509_CRL *crl;
	WOLFSSL_ASN1_TIME *t;
	struct tm tm;
	int rc = -1;

	if ((bio = wolfSSL_BIO_new_mem_buf(pem, (int)len)) == NULL)
		return (-1);
	if ((crl = wolfSSL_PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) !=
	    NULL) {
		memset(&tm, 0, sizeof(tm));
		*next = 0;
		if ((t = wolfSSL_X509_CRL_get_nextUpdate(crl)) == NULL)
			rc = 0;
		else if (wolfSSL_ASN1_TIME_to_tm(t, &tm) == WOLFSSL_SUCCESS &&
		    (*next = timegm(&tm)) != (time_t)-1)
			rc = 0;
		wolfSSL_X509_CRL_free(crl);
	}
	wolfSSL_BIO_free(bio);
	return (rc);
}

/*
 * The earliest nextUpdate of the CRLs in the file at path (0: none has
 * one). Returns -1 when the file cannot be read as PEM CRLs; wolfSSL then
 * says so when it loads the file.
 */
static int
crl_file_next_update(const char *path, time_t *earliest)
{
	static const char begin[] = "-----BEGIN X509 CRL-----";
	char *buf, *p;
	time_t next;
	int n = 0, rc = 0;

	*earliest = 0;
	if (read_capped_file(path, &buf) != 0)
		return (-1);
	for (p = strstr(buf, begin); p != NULL && rc == 0;
	    p = strstr(p + 1, begin)) {
		n++;
		if ((rc = crl_next_update(p, strlen(p), &next)) == 0 &&
		    next != 0 && (*earliest == 0 || next < *earliest))
			*earliest = next;
	}
	free(buf);
	return (n > 0 ? rc : -1);
}

/*
 * Refuse an expired CRL: wolfSSL would only say it cannot load it, and
 * every device would be refused. Remember the date for the verify path,
 * and a warning when it is near.
 */
static int
check_crl_dates(struct tls_ctx *t, const struct config *cfg, char *err,
    size_t errlen)
{
	char what[512], date[64], where[512];
	time_t now = time(NULL);

	if (crl_file_next_update(cfg->tls_crl, &t->crl_next_update) != 0 ||
	    t->crl_next_update == 0)
		return (0);
	utc_text(t->crl_next_update, date, sizeof(date));
	if (t->crl_next_update <= now) {
		snprintf(what, sizeof(what), "this CRL expired on %s (its "
		    "nextUpdate), so every device would be refused; install "
		    "the CA's current CRL", date);
		ctx_error(cfg, "crl", cfg->tls_crl, err, errlen, what);
		return (-1);
	}
	if ((t->crl_path = strdup(cfg->tls_crl)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	if (t->crl_next_update - now < CRL_WARN_SECONDS)
		snprintf(t->warning, sizeof(t->warning), "%s: warning: "
		    "[tls] crl = %s: "
		    "this CRL expires on %s, in less than 7 days; then every "
		    "device is refused. Install the CA's next CRL and reload "
		    "moat before that", config_where(cfg, "tls", "crl", where,
		    sizeof(where)), cfg->tls_crl, date);
	return (0);
}

/*
 * Verify callback: it never changes the verdict. When a device fails
 * verification after the CRL's nextUpdate, wolfSSL says only "CRL
 * missing"; say once why every device is refused now.
 */
static int
verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
	struct tls_ctx *t = store != NULL ? store->userCtx : NULL;
	char date[64];

	if (preverify || t == NULL || t->crl_next_update == 0 ||
	    time(NULL) < t->crl_next_update)
		return (preverify);
	if (atomic_exchange(&t->crl_expired_logged, 1) == 0) {
		utc_text(t->crl_next_update, date, sizeof(date));
		log_error("[tls] crl = %s: the CRL expired on %s; every device "
		    "is refused until the CA's current CRL is installed and "
		    "moat reloaded", t->crl_path, date);
	}
	return (preverify);
}

/* Versions and ciphers: TLS 1.2 at least, allow-listed suites only. */
static int
set_protocol(WOLFSSL_CTX *ctx, const struct config *cfg, char *err,
    size_t errlen)
{
	const char *ciphers;
	char why[1024];

	if (wolfSSL_CTX_SetMinVersion(ctx, cfg->tls_min_version == 13 ?
	    WOLFSSL_TLSV1_3 : WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS) {
		ctx_error(cfg, "min_version", cfg->tls_min_version == 13 ?
		    "1.3" : "1.2", err, errlen,
		    "this wolfSSL build cannot enforce that minimum version");
		return (-1);
	}
	ciphers = cfg->tls_ciphers != NULL ? cfg->tls_ciphers :
	    config_default_ciphers;
	/* config_load checked the list; a cfg made elsewhere is not. */
	if (config_check_ciphers(ciphers, why, sizeof(why)) != 0) {
		ctx_error(cfg, "ciphers", ciphers, err, errlen, why);
		return (-1);
	}
	if (wolfSSL_CTX_set_cipher_list(ctx, ciphers) != WOLFSSL_SUCCESS) {
		ctx_error(cfg, "ciphers", ciphers, err, errlen,
		    "wolfSSL accepts none of these cipher suites; use wolfSSL "
		    "names such as TLS13-AES128-GCM-SHA256 or "
		    "ECDHE-ECDSA-AES128-GCM-SHA256");
		return (-1);
	}
	return (0);
}

/* --- key exchange groups ------------------------------------------------ */

/* Whether this wolfSSL build can do key exchange with group code. */
static int
group_built(int code)
{
	switch (code) {
#if defined(HAVE_ECC)
	case TLS_GROUP_P256:
		return ((int)WOLFSSL_ECC_SECP256R1 == (int)TLS_GROUP_P256);
	case TLS_GROUP_P384:
		return ((int)WOLFSSL_ECC_SECP384R1 == (int)TLS_GROUP_P384);
	case TLS_GROUP_P521:
		return ((int)WOLFSSL_ECC_SECP521R1 == (int)TLS_GROUP_P521);
#endif
#if defined(HAVE_CURVE25519)
	case TLS_GROUP_X25519:
		return ((int)WOLFSSL_ECC_X25519 == (int)TLS_GROUP_X25519);
#endif
#if defined(HAVE_CURVE448)
	case TLS_GROUP_X448:
		return ((int)WOLFSSL_ECC_X448 == (int)TLS_GROUP_X448);
#endif
#if defined(HAVE_FFDHE_2048)
	case TLS_GROUP_FFDHE2048:
		return (1);
#endif
#if defined(HAVE_FFDHE_3072)
	case TLS_GROUP_FFDHE3072:
		return (1);
#endif
#if defined(HAVE_FFDHE_4096)
	case TLS_GROUP_FFDHE4096:
		return (1);
#endif
#if defined(HAVE_FFDHE_6144)
	case TLS_GROUP_FFDHE6144:
		return (1);
#endif
#if defined(HAVE_FFDHE_8192)
	case TLS_GROUP_FFDHE8192:
		return (1);
#endif
	default:
		return (0);
	}
}

/*
 * [tls] groups, most preferred first: the TLS 1.3 key share order
 * (wolfSSL_CTX_set_groups) and the supported groups a TLS 1.2 ECDHE or a
 * TLS 1.3 handshake may use (wolfSSL_CTX_UseSupportedCurve); a device
 * offering none of them is refused.
 */
static int
set_groups(WOLFSSL_CTX *ctx, const struct config *cfg, char *err,
    size_t errlen)
{
	const char *list = cfg->tls_groups != NULL ? cfg->tls_groups :
	    config_default_groups;
	int codes[CONFIG_MAX_GROUPS];
	unsigned i, n;
	char why[1024];

	if (config_parse_groups(list, codes, &n, why, sizeof(why)) != 0) {
		ctx_error(cfg, "groups", list, err, errlen, why);
		return (-1);
	}
	for (i = 0; i < n; i++) {
		if (!group_built(codes[i])) {
			snprintf(why, sizeof(why), "this wolfSSL build has no "
			    "%s key exchange; remove it from the list, or use "
			    "a wolfSSL built with it", config_group_name(
			    codes[i]));
			ctx_error(cfg, "groups", list, err, errlen, why);
			return (-1);
		}
		if (wolfSSL_CTX_UseSupportedCurve(ctx, (word16)codes[i]) !=
		    WOLFSSL_SUCCESS) {
			snprintf(why, sizeof(why), "wolfSSL refuses the %s "
			    "group; remove it from the list",
			    config_group_name(codes[i]));
			ctx_error(cfg, "groups", list, err, errlen, why);
			return (-1);
		}
	}
	if (wolfSSL_CTX_set_groups(ctx, codes, (int)n) != WOLFSSL_SUCCESS) {
		ctx_error(cfg, "groups", list, err, errlen, "wolfSSL refuses "
		    "this list of groups; name fewer, or only groups this "
		    "build supports");
		return (-1);
	}
	return (0);
}

/* The server's certificate chain and the key that belongs to it. */
static int
load_server_cert(WOLFSSL_CTX *ctx, const struct config *cfg, char *err,
    size_t errlen)
{
	if (check_readable(cfg, "cert", cfg->tls_cert, err, errlen) != 0)
		return (-1);
	if (wolfSSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) !=
	    WOLFSSL_SUCCESS) {
		ctx_error(cfg, "cert", cfg->tls_cert, err, errlen,
		    "not a PEM certificate chain; the file must hold the "
		    "server certificate first, then any intermediates");
		return (-1);
	}
	if (check_readable(cfg, "key", cfg->tls_key, err, errlen) != 0)
		return (-1);
	if (wolfSSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key,
	    WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
		ctx_error(cfg, "key", cfg->tls_key, err, errlen,
		    "not an unencrypted PEM private key");
		return (-1);
	}
	if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS ||
	    key_matches_cert(cfg->tls_cert, cfg->tls_key) != 1) {
		ctx_error(cfg, "key", cfg->tls_key, err, errlen,
		    "this key does not belong to the certificate in [tls] cert; "
		    "give the key the certificate was issued for");
		return (-1);
	}
	return (0);
}

/* The device CA (CAs only), client certificates required, the CRL. */
static int
load_trust(struct tls_ctx *t, const struct config *cfg, char *err,
    size_t errlen)
{
	WOLFSSL_CTX *ctx = t->ctx;

	if (check_readable(cfg, "ca", cfg->tls_ca, err, errlen) != 0 ||
	    check_ca_file(cfg, err, errlen) != 0)
		return (-1);
	if (wolfSSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) !=
	    WOLFSSL_SUCCESS) {
		ctx_error(cfg, "ca", cfg->tls_ca, err, errlen,
		    "no usable CA certificate in this file; it must hold the "
		    "PEM certificate(s) of the CA that issues device "
		    "certificates");
		return (-1);
	}
	/*
	 * A client certificate is required and verified: without
	 * FAIL_IF_NO_PEER_CERT a client that sends none is let in.
	 */
	wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER |
	    WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
	wolfSSL_CTX_SetCertCbCtx(ctx, t);
	wolfSSL_CTX_set_verify_depth(ctx, 8);

	if (cfg->tls_crl == NULL)
		return (0);
	if (check_readable(cfg, "crl", cfg->tls_crl, err, errlen) != 0 ||
	    check_crl_dates(t, cfg, err, errlen) != 0)
		return (-1);
	/* Check every certificate the device sends, not just the leaf; a
	 * certificate without a CRL from its issuer fails. */
	if (wolfSSL_CTX_EnableCRL(ctx, WOLFSSL_CRL_CHECKALL) !=
	    WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_LoadCRLFile(ctx, cfg->tls_crl,
	    WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS) {
		ctx_error(cfg, "crl", cfg->tls_crl, err, errlen,
		    "not a PEM CRL signed by the CA in [tls] ca");
		return (-1);
	}
	return (0);
}

struct tls_ctx *
tls_ctx_new(const struct config *cfg, char *err, size_t errlen)
{
	struct tls_ctx *t;
	WOLFSSL_CTX *ctx;

	if ((t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	atomic_init(&t->crl_expired_logged, 0);
	if ((ctx = wolfSSL_CTX_new(wolfSSLv23_server_method())) == NULL) {
		snprintf(err, errlen, "cannot create a wolfSSL context");
		goto fail;
	}
	t->ctx = ctx;
	if (set_protocol(ctx, cfg, err, errlen) != 0 ||
	    set_groups(ctx, cfg, err, errlen) != 0 ||
	    load_server_cert(ctx, cfg, err, errlen) != 0 ||
	    load_trust(t, cfg, err, errlen) != 0)
		goto fail;

	/*
	 * No resumption yet: every connection does a full handshake and
	 * presents its certificate. (Rotating session tickets come with
	 * their own key management.) In wolfSSL 5.5 a resumed handshake
	 * carries no device certificate: after a TLS 1.3 resumption the peer
	 * certificate comes only from wolfSSL's process-wide session cache
	 * (when the entry is still there, never checked against the CRL
	 * again), after a TLS 1.2 one there is none; a ticket (108 bytes,
	 * 32 spare) cannot hold it.
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

int64_t
tls_ctx_crl_next_update(const struct tls_ctx *t)
{
	return ((int64_t)t->crl_next_update);
}

const char *
tls_ctx_warning(const struct tls_ctx *t)
{
	return (t->warning[0] != '\0' ? t->warning : NULL);
}

void
tls_ctx_free(struct tls_ctx *t)
{
	if (t == NULL)
		return;
	if (t->ctx != NULL)
		wolfSSL_CTX_free(t->ctx);
	free(t->crl_path);
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

/*
 * An established session keeps only what records need. wolfSSL's accept
 * already frees most of the handshake state (this makes sure, whatever the
 * build's defaults); in TLS 1.3 it keeps its handshake arrays (for
 * post-handshake authentication, which moat never asks for), about 5 KiB.
 * Up to wolfSSL 5.5.4 the traffic secrets that KeyUpdate derives from live
 * outside those arrays, so they can go (t_keyupdate_data.py checks
 * KeyUpdates both ways after this); later versions keep the secrets in
 * them, so there they stay. Renegotiation is refused, so nothing here is
 * needed again.
 */
#define TRIM_ARRAYS_MAX_VERSION 0x05005004

void
tls_session_trim(struct tls_session *s)
{
	if (s == NULL || !wolfSSL_is_init_finished(s->ssl))
		return;
	(void)wolfSSL_FreeHandshakeResources(s->ssl);
#if LIBWOLFSSL_VERSION_HEX <= TRIM_ARRAYS_MAX_VERSION
	wolfSSL_FreeArrays(s->ssl);
#endif
}
