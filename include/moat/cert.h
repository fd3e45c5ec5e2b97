/* SPDX-License-Identifier: MIT */
/*
 * The certificate room: reading a device certificate into the identity
 * fields moat maps (CN, SANs, RFC 4514 DN, serial, SHA-256 fingerprint,
 * issuer CN), and the one check that decides whether moat accepts such a
 * certificate. The TLS handshake and `moat explain` call the same
 * functions, so both always give the same answer.
 *
 * What moat checks itself, on top of wolfSSL's chain verification:
 *   - extendedKeyUsage, when present, allows clientAuth (or any use);
 *   - keyUsage, when present, allows digitalSignature;
 *   - no name holds a NUL byte (it would read as a shorter name);
 *   - strength floors from [tls]: RSA and ECC key sizes, no MD5 (ever) and
 *     no SHA-1 (unless allowed) in the certificate's signature;
 *   - an unambiguous subject: at most one CN, and a DN that fits in
 *     CERT_DN_MAX characters (refused, never cut short).
 */
#ifndef MOAT_CERT_H
#define MOAT_CERT_H

#include <stddef.h>
#include <stdint.h>

struct cert_crl;
struct cert_identity;
struct config;
struct tls_session;

/* Longest subject DN (RFC 4514 text, bytes) moat reads; longer: refused. */
#define CERT_DN_MAX 4096

/* Most certificates in a device's chain: the leaf and its intermediates,
 * as the handshake allows them (verify depth 8 below the leaf). */
#define CERT_CHAIN_MAX 9

/* Answers of the checks below. */
enum cert_verdict {
	CERT_OK = 0,
	CERT_ERROR = -1,      /* out of memory, or the file cannot be read */
	CERT_REFUSED = -2,    /* moat's own checks refuse the certificate */
	CERT_UNTRUSTED = -3,  /* the chain does not verify ([tls] ca, crl) */
};

/*
 * After the handshake (wolfSSL has verified the chain): run moat's checks
 * on the device certificate of s with cfg's floors and read its identity
 * fields into id (the caller frees them with cert_identity_clear).
 * Returns CERT_OK, CERT_ERROR, or CERT_REFUSED with the reason in why. id
 * is cleared on failure.
 */
enum cert_verdict cert_peer_identity(struct tls_session *s,
    const struct config *cfg, struct cert_identity *id, char *why,
    size_t whylen);

/*
 * moat explain: the PEM file at path holds a device certificate followed
 * by the intermediates a device would send. Verify it as the handshake
 * would: moat's checks on the leaf, then the chain against cfg's [tls] ca
 * and crl (dates against the current time). Returns CERT_OK with id
 * filled; CERT_UNTRUSTED with id filled and the chain's failure in why;
 * CERT_REFUSED (id cleared) or CERT_ERROR (id cleared) with why.
 */
enum cert_verdict cert_verify_file(const struct config *cfg,
    const char *path, struct cert_identity *id, char *why, size_t whylen);

/* notAfter of a DER certificate, seconds since the epoch, into *out.
 * 0, or -1 when it cannot be read. */
int cert_der_not_after(const unsigned char *der, size_t len, int64_t *out);

/* notAfter of the first certificate of the PEM file at path (the server
 * certificate of a chain), seconds since the epoch; 0 when unreadable. */
int64_t cert_file_not_after(const char *path);

/*
 * The subject of the DER certificate der (len bytes) as an RFC 4514 string
 * into out (cap bytes): last RDN first, RDNs joined by ',', the attributes
 * of one multi-valued RDN by '+', values escaped. *ncn receives the number
 * of CN attributes in the subject. Returns 0, -1 when the certificate
 * does not parse, or -2 when the string would not fit in cap bytes with
 * its NUL (out is empty on failure: a DN is never cut short).
 */
int cert_subject_dn(const unsigned char *der, size_t len, char *out,
    size_t cap, int *ncn);

/* Most revoked certificates moat keeps from a [tls] crl file, and the
 * largest such file it reads. */
#define CERT_CRL_MAX_ENTRIES 1000000
#define CERT_CRL_FILE_MAX    (64 * 1024 * 1024)

/*
 * The revoked certificates of the PEM CRLs in the file at path, as a
 * sorted list of (issuer, serial) pairs, for re-checking live connections
 * after a reload (the handshake uses wolfSSL's own CRL check). The
 * signatures are wolfSSL's to check, when it loads the same file into the
 * TLS context. Returns the list, or NULL with why (a file that cannot be
 * read or parsed, more than CERT_CRL_MAX_ENTRIES entries). Free with
 * cert_crl_free().
 */
struct cert_crl *cert_crl_load(const char *path, char *why, size_t whylen);

/* Free a list; NULL does nothing. */
void cert_crl_free(struct cert_crl *crl);

/* 1 when the certificate id was read from (its issuer and serial) is on
 * crl, else 0 (also for a NULL crl). */
int cert_crl_revoked(const struct cert_crl *crl,
    const struct cert_identity *id);

#endif
