/* SPDX-License-Identifier: MIT */
/*
 * Device certificates: moat's own checks and the identity fields.
 *
 * wolfSSL verifies the chain (CA, CRL, dates, extendedKeyUsage); this room
 * adds what wolfSSL does not check or checks only in the handshake, and
 * reads the fields the identity map uses. One function, cert_accept(),
 * holds every such rule; the handshake (cert_peer_identity) and `moat
 * explain` (cert_verify_file) both go through it, and explain verifies the
 * chain the way the handshake does, with the intermediates from the file.
 *
 * The subject and issuer are read from the certificate's DER, not through
 * wolfSSL's X509_NAME: that keeps every attribute (wolfSSL keeps a fixed
 * number), keeps the grouping of multi-valued RDNs, and names attribute
 * types by their exact OID (wolfSSL maps OIDs through byte sums, which
 * collide).
 */
#include "config.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/evp.h>
#include <wolfssl/openssl/x509v3.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/hash.h>

#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moat/cert.h"
#include "moat/config.h"
#include "moat/identity.h"
#include "moat/inifile.h"
#include "moat/text.h"
#include "moat/tls.h"

/* DER tags used in certificates' names. */
#define DER_INTEGER      0x02
#define DER_OID          0x06
#define DER_UTF8         0x0c
#define DER_NUMERIC      0x12
#define DER_PRINTABLE    0x13
#define DER_T61          0x14
#define DER_IA5          0x16
#define DER_VISIBLE      0x1a
#define DER_UNIVERSAL    0x1c
#define DER_BMP          0x1e
#define DER_SEQUENCE     0x30
#define DER_SET          0x31
#define DER_VERSION      0xa0     /* [0] EXPLICIT in TBSCertificate */

/* Default floors when no config is given (they match config.c's). */
#define CERT_MIN_RSA_BITS 2048
#define CERT_MIN_ECC_BITS 256

/* A bounds-checked view of DER bytes. */
struct der {
	const unsigned char *p;
	size_t n;
};

/* The parts of a certificate this room reads. */
struct cert_parts {
	struct der issuer;      /* Name: SEQUENCE OF RDN, bodies */
	struct der subject;
	struct der sig_oid;     /* outer signatureAlgorithm OID body */
	struct der validity;    /* Validity: notBefore, notAfter */
};

/*
 * Take the next TLV off d: tag, and the body in *body. Lengths up to four
 * bytes, never beyond what is left. Returns 0 or -1.
 */
static int
der_take(struct der *d, unsigned *tag, struct der *body)
{
	size_t len, hdr = 2, nb, i;

	if (d->n < 2 || (d->p[0] & 0x1f) == 0x1f)
		return (-1);
	*tag = d->p[0];
	len = d->p[1];
	if (len & 0x80) {
		nb = len & 0x7f;
		if (nb == 0 || nb > 4 || d->n < 2 + nb)
			return (-1);
		for (len = 0, i = 0; i < nb; i++)
			len = (len << 8) | d->p[2 + i];
		hdr += nb;
	}
	if (len > d->n - hdr)
		return (-1);
	body->p = d->p + hdr;
	body->n = len;
	d->p += hdr + len;
	d->n -= hdr + len;
	return (0);
}

/* Take a TLV that must have tag want. */
static int
der_expect(struct der *d, unsigned want, struct der *body)
{
	unsigned tag;

	return (der_take(d, &tag, body) != 0 || tag != want ? -1 : 0);
}

static int
cert_split(const unsigned char *der, size_t len, struct cert_parts *cp)
{
	struct der d = { der, len }, cert, tbs, alg, skip;

	if (der_expect(&d, DER_SEQUENCE, &cert) != 0 ||
	    der_expect(&cert, DER_SEQUENCE, &tbs) != 0 ||
	    der_expect(&cert, DER_SEQUENCE, &alg) != 0 ||
	    der_expect(&alg, DER_OID, &cp->sig_oid) != 0)
		return (-1);
	if (tbs.n > 0 && tbs.p[0] == DER_VERSION &&
	    der_expect(&tbs, DER_VERSION, &skip) != 0)
		return (-1);
	if (der_expect(&tbs, DER_INTEGER, &skip) != 0 ||
	    der_expect(&tbs, DER_SEQUENCE, &skip) != 0 ||
	    der_expect(&tbs, DER_SEQUENCE, &cp->issuer) != 0 ||
	    der_expect(&tbs, DER_SEQUENCE, &cp->validity) != 0 ||
	    der_expect(&tbs, DER_SEQUENCE, &cp->subject) != 0)
		return (-1);
	return (0);
}

/* --- attribute types and values ---------------------------------------- */

static const unsigned char oid_cn[] = { 0x55, 0x04, 0x03 };

/* Names of attribute types, by their exact OID (DER body). */
static const struct {
	const char *name;
	unsigned char len;
	unsigned char oid[10];
} attr_names[] = {
	{ "CN", 3, { 0x55, 0x04, 0x03 } },
	{ "SN", 3, { 0x55, 0x04, 0x04 } },
	{ "serialNumber", 3, { 0x55, 0x04, 0x05 } },
	{ "C", 3, { 0x55, 0x04, 0x06 } },
	{ "L", 3, { 0x55, 0x04, 0x07 } },
	{ "ST", 3, { 0x55, 0x04, 0x08 } },
	{ "street", 3, { 0x55, 0x04, 0x09 } },
	{ "O", 3, { 0x55, 0x04, 0x0a } },
	{ "OU", 3, { 0x55, 0x04, 0x0b } },
	{ "title", 3, { 0x55, 0x04, 0x0c } },
	{ "businessCategory", 3, { 0x55, 0x04, 0x0f } },
	{ "postalCode", 3, { 0x55, 0x04, 0x11 } },
	{ "name", 3, { 0x55, 0x04, 0x29 } },
	{ "GN", 3, { 0x55, 0x04, 0x2a } },
	{ "initials", 3, { 0x55, 0x04, 0x2b } },
	{ "generationQualifier", 3, { 0x55, 0x04, 0x2c } },
	{ "dnQualifier", 3, { 0x55, 0x04, 0x2e } },
	{ "pseudonym", 3, { 0x55, 0x04, 0x41 } },
	{ "emailAddress", 9,
	    { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01 } },
	{ "UID", 10,
	    { 0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01 } },
	{ "DC", 10,
	    { 0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19 } },
};

static int
oid_is(const struct der *oid, const unsigned char *want, size_t len)
{
	return (oid->n == len && memcmp(oid->p, want, len) == 0);
}

/* The type's name, or its dotted OID in buf. NULL when the OID is bad. */
static const char *
attr_type(const struct der *oid, char *buf, size_t cap)
{
	size_t i, o = 0;
	unsigned long arc = 0;

	for (i = 0; i < sizeof(attr_names) / sizeof(attr_names[0]); i++)
		if (oid_is(oid, attr_names[i].oid, attr_names[i].len))
			return (attr_names[i].name);
	if (oid->n == 0 || (oid->p[oid->n - 1] & 0x80))
		return (NULL);
	for (i = 0; i < oid->n; i++) {
		if (arc > (~0UL >> 8))
			return (NULL);
		arc = (arc << 7) | (oid->p[i] & 0x7f);
		if (oid->p[i] & 0x80)
			continue;
		if (o == 0)
			o = (size_t)snprintf(buf, cap, "%lu.%lu", arc < 80 ?
			    arc / 40 : 2, arc < 80 ? arc % 40 : arc - 80);
		else
			o += (size_t)snprintf(buf + o, cap - o, ".%lu", arc);
		if (o >= cap)
			return (NULL);
		arc = 0;
	}
	return (buf);
}

/* Append code point cp as UTF-8. */
static size_t
utf8_put(unsigned char *out, unsigned long cp)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return (1);
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | cp >> 6);
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return (2);
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | cp >> 12);
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return (3);
	}
	out[0] = (unsigned char)(0xf0 | cp >> 18);
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return (4);
}

/*
 * A string value as UTF-8 bytes, malloc'd (NUL-terminated, *len without
 * it). BMPString and UniversalString are converted; the other string
 * types are taken as they are. Returns 0, 1 when tag is not a string type
 * (nothing allocated), or -1 (bad value, out of memory).
 */
static int
value_utf8(unsigned tag, const struct der *v, unsigned char **out,
    size_t *len)
{
	size_t unit, i, o = 0;
	unsigned long cp;
	unsigned char *b;

	switch (tag) {
	case DER_UTF8: case DER_NUMERIC: case DER_PRINTABLE: case DER_T61:
	case DER_IA5: case DER_VISIBLE:
		unit = 1;
		break;
	case DER_BMP:
		unit = 2;
		break;
	case DER_UNIVERSAL:
		unit = 4;
		break;
	default:
		return (1);
	}
	if (v->n % unit != 0 || (b = malloc(v->n * 2 + 1)) == NULL)
		return (-1);
	if (unit == 1) {
		memcpy(b, v->p, v->n);
		o = v->n;
	}
	for (i = 0; unit > 1 && i < v->n; i += unit) {
		cp = unit == 2 ? (unsigned long)v->p[i] << 8 | v->p[i + 1] :
		    (unsigned long)v->p[i] << 24 | (unsigned long)v->p[i + 1] <<
		    16 | (unsigned long)v->p[i + 2] << 8 | v->p[i + 3];
		if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
			free(b);
			return (-1);
		}
		o += utf8_put(b + o, cp);
	}
	b[o] = '\0';
	*out = b;
	*len = o;
	return (0);
}

/* --- RFC 4514 rendering ------------------------------------------------- */

/* Output with a hard cap: once something does not fit, *full is set. */
struct dn_out {
	char *buf;
	size_t cap, len;
	int full;
};

static void
out_bytes(struct dn_out *o, const char *s, size_t n)
{
	if (o->full || n >= o->cap - o->len) {
		o->full = 1;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

/* One attribute value, escaped as RFC 4514 section 2.4 says. */
static void
out_value(struct dn_out *o, const unsigned char *v, size_t n)
{
	char hex[4];
	size_t i;

	for (i = 0; i < n && !o->full; i++) {
		unsigned char ch = v[i];

		if (ch == '"' || ch == '+' || ch == ',' || ch == ';' ||
		    ch == '<' || ch == '>' || ch == '\\' ||
		    (i == 0 && (ch == '#' || ch == ' ')) ||
		    (i == n - 1 && ch == ' ')) {
			out_bytes(o, "\\", 1);
			out_bytes(o, (const char *)&v[i], 1);
		} else if (ch < 0x20 || ch == 0x7f) {
			snprintf(hex, sizeof(hex), "\\%02X", ch);
			out_bytes(o, hex, 3);
		} else {
			out_bytes(o, (const char *)&v[i], 1);
		}
	}
}

/* A value of a type that is not a string: '#' and the hex of its DER. */
static void
out_hexvalue(struct dn_out *o, const unsigned char *p, size_t n)
{
	static const char digits[] = "0123456789ABCDEF";
	char two[2];
	size_t i;

	out_bytes(o, "#", 1);
	for (i = 0; i < n && !o->full; i++) {
		two[0] = digits[p[i] >> 4];
		two[1] = digits[p[i] & 15];
		out_bytes(o, two, 2);
	}
}

/* One AttributeTypeAndValue (body of its SEQUENCE). Returns 0 or -1. */
static int
out_attr(struct dn_out *o, struct der atv, int *ncn)
{
	struct der oid, val, whole;
	unsigned char *text;
	char dotted[128];
	const char *type;
	unsigned tag;
	size_t len;
	int r;

	if (der_expect(&atv, DER_OID, &oid) != 0)
		return (-1);
	whole = atv;
	if (der_take(&atv, &tag, &val) != 0 || atv.n != 0 ||
	    (type = attr_type(&oid, dotted, sizeof(dotted))) == NULL)
		return (-1);
	if (oid_is(&oid, oid_cn, sizeof(oid_cn)))
		(*ncn)++;
	out_bytes(o, type, strlen(type));
	out_bytes(o, "=", 1);
	if ((r = value_utf8(tag, &val, &text, &len)) < 0)
		return (-1);
	if (r == 1) {
		out_hexvalue(o, whole.p, whole.n);
		return (0);
	}
	out_value(o, text, len);
	free(text);
	return (0);
}

/* One RDN (body of its SET): its attributes joined by '+'. */
static int
out_rdn(struct dn_out *o, struct der set, int *ncn)
{
	struct der atv;
	int first = 1;

	if (set.n == 0)
		return (-1);
	while (set.n > 0) {
		if (der_expect(&set, DER_SEQUENCE, &atv) != 0)
			return (-1);
		if (!first)
			out_bytes(o, "+", 1);
		if (out_attr(o, atv, ncn) != 0)
			return (-1);
		first = 0;
	}
	return (0);
}

/* Render the Name body name; last RDN first. Returns 0 or -1. */
static int
render_name(struct der name, struct dn_out *o, int *ncn)
{
	struct der walk = name, set, *rdns;
	size_t count = 0, i;
	int rc = -1;

	while (walk.n > 0) {
		if (der_expect(&walk, DER_SET, &set) != 0)
			return (-1);
		count++;
	}
	if (count == 0)
		return (0);
	if ((rdns = calloc(count, sizeof(*rdns))) == NULL)
		return (-1);
	for (walk = name, i = 0; i < count; i++)
		(void)der_expect(&walk, DER_SET, &rdns[i]);
	for (i = count; i-- > 0;) {
		if (i + 1 < count)
			out_bytes(o, ",", 1);
		if (out_rdn(o, rdns[i], ncn) != 0)
			goto out;
	}
	rc = o->full ? -1 : 0;
out:
	free(rdns);
	return (rc);
}

int
cert_subject_dn(const unsigned char *der, size_t len, char *out, size_t cap,
    int *ncn)
{
	struct cert_parts cp;
	struct dn_out o = { out, cap, 0, 0 };

	*ncn = 0;
	if (cap == 0)
		return (-1);
	out[0] = '\0';
	if (cert_split(der, len, &cp) != 0 || render_name(cp.subject, &o,
	    ncn) != 0) {
		out[0] = '\0';
		return (o.full ? -2 : -1);
	}
	return (0);
}

/*
 * The value of the first CN in the Name body name, malloc'd, or NULL with
 * *err set when it cannot be read; NULL without it when there is no CN.
 * A NUL inside sets *bad.
 */
static char *
name_cn(struct der name, int *bad, int *err)
{
	struct der set, atv, oid, val;
	unsigned char *text;
	unsigned tag;
	size_t len;

	while (name.n > 0) {
		if (der_expect(&name, DER_SET, &set) != 0)
			goto fail;
		while (set.n > 0) {
			if (der_expect(&set, DER_SEQUENCE, &atv) != 0 ||
			    der_expect(&atv, DER_OID, &oid) != 0 ||
			    der_take(&atv, &tag, &val) != 0)
				goto fail;
			if (!oid_is(&oid, oid_cn, sizeof(oid_cn)))
				continue;
			if (value_utf8(tag, &val, &text, &len) != 0)
				goto fail;
			if (memchr(text, 0, len) != NULL)
				*bad = 1;
			return ((char *)text);
		}
	}
	return (NULL);
fail:
	*err = 1;
	return (NULL);
}

/* --- fields wolfSSL reads well ------------------------------------------ */

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

/* Copy an ASN.1 string; an embedded NUL sets *bad (it would read as a
 * shorter name, the classic way to pose as another certificate). */
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
san_one(WOLFSSL_GENERAL_NAME *g, struct cert_identity *id, int *bad)
{
	char ip[INET6_ADDRSTRLEN];
	const unsigned char *p;
	int len;

	switch (g->type) {
	case GEN_DNS:
		return (push(&id->san_dns, &id->n_san_dns,
		    asn1_strdup(g->d.dNSName, bad)));
	case GEN_URI:
		return (push(&id->san_uri, &id->n_san_uri,
		    asn1_strdup(g->d.uniformResourceIdentifier, bad)));
	case GEN_EMAIL:
		return (push(&id->san_email, &id->n_san_email,
		    asn1_strdup(g->d.rfc822Name, bad)));
	case GEN_IPADD:
		p = wolfSSL_ASN1_STRING_get0_data(g->d.iPAddress);
		len = wolfSSL_ASN1_STRING_length(g->d.iPAddress);
		if (p == NULL || (len != 4 && len != 16) ||
		    inet_ntop(len == 4 ? AF_INET : AF_INET6, p, ip,
		    sizeof(ip)) == NULL)
			return (0);
		return (push(&id->san_ip, &id->n_san_ip, strdup(ip)));
	default:
		return (0);
	}
}

static int
san_read(WOLFSSL_X509 *x, struct cert_identity *id, int *bad)
{
	WOLFSSL_STACK *sk;
	int i, rc = 0;

	sk = wolfSSL_X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	if (sk == NULL)
		return (0);
	/*
	 * wolfSSL 5.5 stacks the names in reverse: walk from the end so
	 * that "the first SAN of a type" is the certificate's first.
	 */
	for (i = wolfSSL_sk_GENERAL_NAME_num(sk) - 1; i >= 0 && rc == 0; i--) {
		WOLFSSL_GENERAL_NAME *g = wolfSSL_sk_GENERAL_NAME_value(sk, i);

		if (g != NULL)
			rc = san_one(g, id, bad);
	}
	wolfSSL_sk_GENERAL_NAME_pop_free(sk, wolfSSL_GENERAL_NAME_free);
	return (rc);
}

/* --- the rules ------------------------------------------------------------ */

/* Signature algorithms moat never accepts (MD2/MD4/MD5) or only when
 * [tls] sha1_signatures = accept (SHA-1), by OID body. */
static const struct {
	const char *name;
	int sha1;
	unsigned char len;
	unsigned char oid[9];
} weak_sigs[] = {
	{ "md2WithRSAEncryption", 0, 9,
	    { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x02 } },
	{ "md4WithRSAEncryption", 0, 9,
	    { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x03 } },
	{ "md5WithRSAEncryption", 0, 9,
	    { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04 } },
	{ "sha1WithRSAEncryption", 1, 9,
	    { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05 } },
	{ "ecdsa-with-SHA1", 1, 7,
	    { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01 } },
	{ "dsaWithSHA1", 1, 7, { 0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x03 } },
	{ "sha1WithRSA (OIW)", 1, 5, { 0x2b, 0x0e, 0x03, 0x02, 0x1d } },
};

/* Floors from cfg, or the defaults without one. */
static void
floors(const struct config *cfg, unsigned *rsa, unsigned *ecc, int *sha1)
{
	*rsa = cfg != NULL ? (unsigned)cfg->tls_min_rsa_bits :
	    CERT_MIN_RSA_BITS;
	*ecc = cfg != NULL ? (unsigned)cfg->tls_min_ecc_bits :
	    CERT_MIN_ECC_BITS;
	*sha1 = cfg != NULL ? cfg->tls_sha1_signatures : 0;
}

static int
check_signature(const struct cert_parts *cp, const struct config *cfg,
    char *why, size_t whylen)
{
	unsigned rsa, ecc;
	int sha1_ok;
	size_t i;

	floors(cfg, &rsa, &ecc, &sha1_ok);

	for (i = 0; i < sizeof(weak_sigs) / sizeof(weak_sigs[0]); i++) {
		if (!oid_is(&cp->sig_oid, weak_sigs[i].oid, weak_sigs[i].len))
			continue;
		if (weak_sigs[i].sha1 && sha1_ok)
			return (0);
		snprintf(why, whylen, "the certificate is signed with %s; "
		    "moat refuses %s signatures%s", weak_sigs[i].name,
		    weak_sigs[i].sha1 ? "SHA-1" : "MD2, MD4 and MD5",
		    weak_sigs[i].sha1 ? " unless [tls] sha1_signatures = "
		    "accept" : "");
		return (-1);
	}
	return (0);
}

static int
check_key(WOLFSSL_X509 *x, const struct config *cfg, char *why,
    size_t whylen)
{
	WOLFSSL_EVP_PKEY *k;
	unsigned rsa, ecc;
	int type, bits, sha1, rc = 0;

	floors(cfg, &rsa, &ecc, &sha1);
	if ((k = wolfSSL_X509_get_pubkey(x)) == NULL) {
		snprintf(why, whylen, "the certificate's public key cannot be "
		    "read");
		return (-1);
	}
	type = wolfSSL_EVP_PKEY_base_id(k);
	bits = wolfSSL_EVP_PKEY_bits(k);
	if (type == EVP_PKEY_RSA && (bits <= 0 || (unsigned)bits < rsa)) {
		snprintf(why, whylen, "the certificate's RSA key has %d bits, "
		    "below [tls] min_rsa_bits = %u", bits, rsa);
		rc = -1;
	} else if (type == EVP_PKEY_EC && (bits <= 0 ||
	    (unsigned)bits < ecc)) {
		snprintf(why, whylen, "the certificate's ECC key has %d bits, "
		    "below [tls] min_ecc_bits = %u", bits, ecc);
		rc = -1;
	} else if (type == EVP_PKEY_DSA) {
		/* DSA keys are 1024 bits in practice and signed with SHA-1. */
		snprintf(why, whylen, "the certificate has a DSA key; moat "
		    "accepts RSA and ECC keys");
		rc = -1;
	}
	wolfSSL_EVP_PKEY_free(k);
	return (rc);
}

/* extendedKeyUsage and keyUsage: was this certificate issued for a
 * client that proves its key by signing? */
static int
check_usage(WOLFSSL_X509 *x, char *why, size_t whylen)
{
	if (wolfSSL_X509_ext_isSet_by_NID(x, NID_ext_key_usage) &&
	    (wolfSSL_X509_get_extended_key_usage(x) &
	    (XKU_SSL_CLIENT | XKU_ANYEKU)) == 0) {
		snprintf(why, whylen, "the certificate's extendedKeyUsage "
		    "lacks clientAuth");
		return (-1);
	}
	if (wolfSSL_X509_ext_isSet_by_NID(x, NID_key_usage) &&
	    (wolfSSL_X509_get_keyUsage(x) & KEYUSE_DIGITAL_SIG) == 0) {
		snprintf(why, whylen, "the certificate's keyUsage lacks "
		    "digitalSignature");
		return (-1);
	}
	return (0);
}

/* --- times ---------------------------------------------------------------- */

#define DER_UTCTIME      0x17
#define DER_GENTIME      0x18

/* Two decimal digits at p. */
static int
two_digits(const unsigned char *p)
{
	if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
		return (-1);
	return ((p[0] - '0') * 10 + (p[1] - '0'));
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (era * 146097 + doe - 719468);
}

/*
 * A UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ), as
 * RFC 5280 requires them, into seconds since the epoch. 0 or -1.
 */
static int
der_time(unsigned tag, struct der v, int64_t *out)
{
	int f[6], i, y;
	size_t o;

	if ((tag != DER_UTCTIME || v.n != 13) &&
	    (tag != DER_GENTIME || v.n != 15))
		return (-1);
	if (v.p[v.n - 1] != 'Z')
		return (-1);
	o = tag == DER_GENTIME ? 2 : 0;
	for (i = 0; i < 6; i++)
		if ((f[i] = two_digits(v.p + o + 2 * i)) < 0)
			return (-1);
	if (tag == DER_GENTIME) {
		if ((y = two_digits(v.p)) < 0)
			return (-1);
		y = y * 100 + f[0];
	} else {
		y = f[0] < 50 ? 2000 + f[0] : 1900 + f[0];
	}
	if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 ||
	    f[4] > 59 || f[5] > 60)
		return (-1);
	*out = days_from_civil(y, f[1], f[2]) * 86400 + f[3] * 3600 +
	    f[4] * 60 + f[5];
	return (0);
}

/* notAfter out of the Validity body. 0 or -1. */
static int
der_not_after(struct der validity, int64_t *out)
{
	struct der t;
	unsigned tag;

	if (der_take(&validity, &tag, &t) != 0 ||
	    der_take(&validity, &tag, &t) != 0)
		return (-1);
	return (der_time(tag, t, out));
}

int64_t
cert_file_not_after(const char *path)
{
	WOLFSSL_X509 *x;
	const unsigned char *der;
	int64_t when = 0;
	int n = 0;

	if ((x = wolfSSL_X509_load_certificate_file(path,
	    WOLFSSL_FILETYPE_PEM)) == NULL)
		return (0);
	if ((der = wolfSSL_X509_get_der(x, &n)) == NULL || n <= 0 ||
	    cert_der_not_after(der, (size_t)n, &when) != 0)
		when = 0;
	wolfSSL_X509_free(x);
	return (when);
}

int
cert_der_not_after(const unsigned char *der, size_t len, int64_t *out)
{
	struct cert_parts cp;

	if (cert_split(der, len, &cp) != 0)
		return (-1);
	return (der_not_after(cp.validity, out));
}

/* Subject, issuer CN, serial and fingerprint from the DER. */
static enum cert_verdict
read_names(WOLFSSL_X509 *x, const unsigned char *der, size_t dersz,
    struct cert_identity *id, int *bad, char *why, size_t whylen)
{
	unsigned char serial[64], hash[32];
	struct cert_parts cp;
	char *dn, *p;
	int n = sizeof(serial), ncn = 0, err = 0, rc = -1;

	if ((dn = malloc(CERT_DN_MAX + 1)) == NULL)
		return (CERT_ERROR);
	if (cert_split(der, dersz, &cp) != 0 ||
	    (rc = cert_subject_dn(der, dersz, dn, CERT_DN_MAX + 1,
	    &ncn)) != 0) {
		free(dn);
		if (rc == -2)
			snprintf(why, whylen, "the certificate's subject DN "
			    "is longer than %d characters", CERT_DN_MAX);
		else
			snprintf(why, whylen, "the certificate's subject "
			    "cannot be read");
		return (CERT_REFUSED);
	}
	/* It lives as long as the connection: keep only its length. */
	if ((p = realloc(dn, strlen(dn) + 1)) != NULL)
		dn = p;
	id->dn = dn;
	if (ncn > 1) {
		snprintf(why, whylen, "the certificate's subject has %d CNs; "
		    "moat accepts at most one, so that the CN names one "
		    "device", ncn);
		return (CERT_REFUSED);
	}
	id->cn = name_cn(cp.subject, bad, &err);
	id->issuer_cn = name_cn(cp.issuer, bad, &err);
	if (err) {
		snprintf(why, whylen, "a CN in the certificate cannot be read");
		return (CERT_REFUSED);
	}
	if (der_not_after(cp.validity, &id->not_after) != 0) {
		snprintf(why, whylen, "the certificate's validity cannot be "
		    "read");
		return (CERT_REFUSED);
	}
	if (wc_Sha256Hash(cp.issuer.p, (word32)cp.issuer.n,
	    id->issuer_hash) != 0)
		return (CERT_ERROR);
	if (wolfSSL_X509_get_serial_number(x, serial, &n) != WOLFSSL_SUCCESS)
		n = 0;
	if ((id->serial = hex_string(serial, (size_t)n, 1)) == NULL ||
	    wc_Sha256Hash(der, (word32)dersz, hash) != 0 ||
	    (id->fingerprint = hex_string(hash, sizeof(hash), 0)) == NULL)
		return (CERT_ERROR);
	return (CERT_OK);
}

/*
 * Every rule moat applies to a device certificate x, and its identity
 * fields into id. The one function behind the handshake and explain.
 */
static enum cert_verdict
cert_accept(WOLFSSL_X509 *x, const struct config *cfg,
    struct cert_identity *id, char *why, size_t whylen)
{
	const unsigned char *der;
	struct cert_parts cp;
	enum cert_verdict v;
	int dersz = 0, bad = 0;

	memset(id, 0, sizeof(*id));
	if ((der = wolfSSL_X509_get_der(x, &dersz)) == NULL || dersz <= 0 ||
	    cert_split(der, (size_t)dersz, &cp) != 0) {
		snprintf(why, whylen, "the certificate cannot be parsed");
		return (CERT_REFUSED);
	}
	if (check_usage(x, why, whylen) != 0 ||
	    check_signature(&cp, cfg, why, whylen) != 0 ||
	    check_key(x, cfg, why, whylen) != 0)
		return (CERT_REFUSED);
	if ((v = read_names(x, der, (size_t)dersz, id, &bad, why,
	    whylen)) != CERT_OK)
		goto fail;
	v = CERT_ERROR;
	if (san_read(x, id, &bad) != 0)
		goto fail;
	if (bad) {
		snprintf(why, whylen, "a name in the certificate contains a "
		    "NUL byte");
		v = CERT_REFUSED;
		goto fail;
	}
	return (CERT_OK);
fail:
	if (v == CERT_ERROR)
		snprintf(why, whylen, "out of memory");
	cert_identity_clear(id);
	return (v);
}

enum cert_verdict
cert_peer_identity(struct tls_session *s, const struct config *cfg,
    struct cert_identity *id, char *why, size_t whylen)
{
	WOLFSSL_X509 *x;
	enum cert_verdict v;

	if ((x = tls_session_peer_cert(s)) == NULL) {
		memset(id, 0, sizeof(*id));
		snprintf(why, whylen, "no peer certificate");
		return (CERT_ERROR);
	}
	v = cert_accept(x, cfg, id, why, whylen);
	wolfSSL_X509_free(x);
	return (v);
}

/* --- moat explain: the chain from a file ------------------------------- */

#define PEM_BEGIN "-----BEGIN CERTIFICATE-----"
#define PEM_END "-----END CERTIFICATE-----"
/* A device's chain file is small; a bigger one is not a chain. */
#define CHAIN_FILE_MAX (256 * 1024)

/*
 * The certificates of the PEM file at path, leaf first, into chain; *n
 * receives how many. CERT_ERROR when the file cannot be read or holds no
 * certificate, CERT_REFUSED when wolfSSL cannot parse one of them (the
 * handshake would refuse it too: an unsupported key or curve, a bad
 * encoding). why says which.
 */
static enum cert_verdict
read_chain(const char *path, WOLFSSL_X509 **chain, int *n, char *why,
    size_t whylen)
{
	char *buf, *b, *e;
	size_t len;

	*n = 0;
	if ((buf = inifile_read(path, CHAIN_FILE_MAX, &len, why,
	    whylen)) == NULL)
		return (CERT_ERROR);
	for (b = buf; *n < CERT_CHAIN_MAX && (b = strstr(b, PEM_BEGIN)) !=
	    NULL; b = e) {
		if ((e = strstr(b, PEM_END)) == NULL)
			break;
		e += strlen(PEM_END);
		if ((chain[*n] = wolfSSL_X509_load_certificate_buffer(
		    (const unsigned char *)b, (int)(e - b),
		    WOLFSSL_FILETYPE_PEM)) == NULL) {
			snprintf(why, whylen, "certificate %d of the file "
			    "cannot be parsed (an unsupported key type or "
			    "curve, or a bad encoding)", *n + 1);
			free(buf);
			return (CERT_REFUSED);
		}
		(*n)++;
	}
	free(buf);
	if (*n == 0) {
		snprintf(why, whylen, "%s: not a PEM certificate", path);
		return (CERT_ERROR);
	}
	return (CERT_OK);
}

static WOLFSSL_CERT_MANAGER *
trust_store(const struct config *cfg)
{
	WOLFSSL_CERT_MANAGER *cm;

	if ((cm = wolfSSL_CertManagerNew()) == NULL)
		return (NULL);
	if (wolfSSL_CertManagerLoadCA(cm, cfg->tls_ca, NULL) !=
	    WOLFSSL_SUCCESS)
		goto fail;
	/* As the handshake: every certificate of the chain is checked. */
	if (cfg->tls_crl != NULL &&
	    (wolfSSL_CertManagerEnableCRL(cm, WOLFSSL_CRL_CHECKALL) !=
	    WOLFSSL_SUCCESS || wolfSSL_CertManagerLoadCRLFile(cm,
	    cfg->tls_crl, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS))
		goto fail;
	return (cm);
fail:
	wolfSSL_CertManagerFree(cm);
	return (NULL);
}

/*
 * Verify one certificate with cm and, for an intermediate, trust it for
 * the certificates below it (as the handshake does with the chain a
 * device sends). Returns 0, or -1 with the reason in why.
 */
static int
verify_one(WOLFSSL_CERT_MANAGER *cm, WOLFSSL_X509 *x, int intermediate,
    char *why, size_t whylen)
{
	char tmp[WOLFSSL_MAX_ERROR_SZ];
	const unsigned char *der;
	int dersz = 0, r;

	if ((der = wolfSSL_X509_get_der(x, &dersz)) == NULL || dersz <= 0) {
		snprintf(why, whylen, "a certificate cannot be parsed");
		return (-1);
	}
	r = wolfSSL_CertManagerVerifyBuffer(cm, der, dersz,
	    WOLFSSL_FILETYPE_ASN1);
	if (r == WOLFSSL_SUCCESS && intermediate)
		r = wolfSSL_CertManagerLoadCABuffer(cm, der, dersz,
		    WOLFSSL_FILETYPE_ASN1);
	if (r == WOLFSSL_SUCCESS)
		return (0);
	wolfSSL_ERR_error_string_n((unsigned long)r, tmp, sizeof(tmp));
	snprintf(why, whylen, "%s%s", intermediate ? "intermediate: " : "",
	    tmp);
	return (-1);
}

static int
verify_chain(const struct config *cfg, WOLFSSL_X509 **chain, int n,
    char *why, size_t whylen)
{
	WOLFSSL_CERT_MANAGER *cm;
	int i, rc = 0;

	if ((cm = trust_store(cfg)) == NULL) {
		snprintf(why, whylen, "cannot load [tls] ca or crl");
		return (-1);
	}
	for (i = n - 1; i >= 0 && rc == 0; i--)
		rc = verify_one(cm, chain[i], i > 0, why, whylen);
	wolfSSL_CertManagerFree(cm);
	return (rc);
}

enum cert_verdict
cert_verify_file(const struct config *cfg, const char *path,
    struct cert_identity *id, char *why, size_t whylen)
{
	WOLFSSL_X509 *chain[CERT_CHAIN_MAX];
	enum cert_verdict v;
	int n, i;

	memset(id, 0, sizeof(*id));
	if ((v = read_chain(path, chain, &n, why, whylen)) != CERT_OK) {
		for (i = 0; i < n; i++)
			wolfSSL_X509_free(chain[i]);
		return (v);
	}
	if ((v = cert_accept(chain[0], cfg, id, why, whylen)) == CERT_OK &&
	    verify_chain(cfg, chain, n, why, whylen) != 0)
		v = CERT_UNTRUSTED;
	for (i = 0; i < n; i++)
		wolfSSL_X509_free(chain[i]);
	return (v);
}

/* --- revoked certificates for live connections --------------------------- */

#define CRL_SERIAL_MAX   32      /* RFC 5280 says 20 octets; some more */
#define PEM_CRL_BEGIN    "-----BEGIN X509 CRL-----"
#define PEM_CRL_END      "-----END X509 CRL-----"

struct crl_entry {
	unsigned char issuer[32];       /* SHA-256 of the issuer Name body */
	unsigned char len;              /* serial bytes, leading zeros cut */
	unsigned char serial[CRL_SERIAL_MAX];
};

struct cert_crl {
	struct crl_entry *e;
	size_t n, cap;
};

static int
entry_cmp(const void *a, const void *b)
{
	const struct crl_entry *x = a, *y = b;
	int r;

	if ((r = memcmp(x->issuer, y->issuer, sizeof(x->issuer))) != 0)
		return (r);
	if (x->len != y->len)
		return (x->len < y->len ? -1 : 1);
	return (memcmp(x->serial, y->serial, x->len));
}

/* A serial's bytes without leading zeros into e. 0, or -1 when too long. */
static int
entry_serial(struct crl_entry *e, const unsigned char *p, size_t n)
{
	while (n > 0 && p[0] == 0) {
		p++;
		n--;
	}
	if (n > CRL_SERIAL_MAX)
		return (-1);
	e->len = (unsigned char)n;
	memcpy(e->serial, p, n);
	return (0);
}

static int
crl_add(struct cert_crl *crl, const unsigned char *issuer, struct der serial)
{
	struct crl_entry *e;
	size_t cap;

	if (crl->n == CERT_CRL_MAX_ENTRIES)
		return (-1);
	if (crl->n == crl->cap) {
		cap = crl->cap > 0 ? crl->cap * 2 : 64;
		if ((e = realloc(crl->e, cap * sizeof(*e))) == NULL)
			return (-1);
		crl->e = e;
		crl->cap = cap;
	}
	e = &crl->e[crl->n];
	memcpy(e->issuer, issuer, sizeof(e->issuer));
	if (entry_serial(e, serial.p, serial.n) != 0)
		return (-1);
	crl->n++;
	return (0);
}

/* One DER CertificateList: its issuer and every revoked serial. */
static int
crl_parse(struct cert_crl *crl, const unsigned char *der, size_t len)
{
	struct der d = { der, len }, list, tbs, issuer, item, revoked, entry,
	    serial;
	unsigned char hash[32];
	unsigned tag;

	if (der_expect(&d, DER_SEQUENCE, &list) != 0 ||
	    der_expect(&list, DER_SEQUENCE, &tbs) != 0)
		return (-1);
	if (tbs.n > 0 && tbs.p[0] == DER_INTEGER &&
	    der_expect(&tbs, DER_INTEGER, &item) != 0)
		return (-1);
	if (der_expect(&tbs, DER_SEQUENCE, &item) != 0 ||     /* signature */
	    der_expect(&tbs, DER_SEQUENCE, &issuer) != 0 ||
	    der_take(&tbs, &tag, &item) != 0)                  /* thisUpdate */
		return (-1);
	if (wc_Sha256Hash(issuer.p, (word32)issuer.n, hash) != 0)
		return (-1);
	/* nextUpdate (a time), then revokedCertificates, both optional. */
	if (tbs.n > 0 && (tbs.p[0] == DER_UTCTIME || tbs.p[0] == DER_GENTIME) &&
	    der_take(&tbs, &tag, &item) != 0)
		return (-1);
	if (tbs.n == 0 || tbs.p[0] != DER_SEQUENCE)
		return (0);
	if (der_expect(&tbs, DER_SEQUENCE, &revoked) != 0)
		return (-1);
	while (revoked.n > 0) {
		if (der_expect(&revoked, DER_SEQUENCE, &entry) != 0 ||
		    der_expect(&entry, DER_INTEGER, &serial) != 0 ||
		    crl_add(crl, hash, serial) != 0)
			return (-1);
	}
	return (0);
}

/* One PEM block's base64 between b and e (whitespace dropped), parsed. */
static int
crl_pem_block(struct cert_crl *crl, const char *b, const char *e)
{
	unsigned char *text, *der;
	word32 dlen;
	size_t n = 0;
	int rc = -1;

	if ((text = malloc((size_t)(e - b) + 1)) == NULL)
		return (-1);
	for (; b < e; b++)
		if (*b != ' ' && *b != '\t' && *b != '\r' && *b != '\n')
			text[n++] = (unsigned char)*b;
	dlen = (word32)n;
	if ((der = malloc(n + 1)) != NULL &&
	    Base64_Decode(text, (word32)n, der, &dlen) == 0)
		rc = crl_parse(crl, der, dlen);
	free(der);
	free(text);
	return (rc);
}

struct cert_crl *
cert_crl_load(const char *path, char *why, size_t whylen)
{
	struct cert_crl *crl;
	char *buf, *b, *e;
	size_t len;
	int blocks = 0;

	if ((buf = inifile_read(path, CERT_CRL_FILE_MAX, &len, why,
	    whylen)) == NULL)
		return (NULL);
	if ((crl = calloc(1, sizeof(*crl))) == NULL)
		goto fail;
	for (b = buf; (b = strstr(b, PEM_CRL_BEGIN)) != NULL; b = e) {
		b += strlen(PEM_CRL_BEGIN);
		if ((e = strstr(b, PEM_CRL_END)) == NULL ||
		    crl_pem_block(crl, b, e) != 0)
			goto fail;
		blocks++;
	}
	if (blocks == 0)
		goto fail;
	free(buf);
	if (crl->n > 0)
		qsort(crl->e, crl->n, sizeof(*crl->e), entry_cmp);
	return (crl);
fail:
	snprintf(why, whylen, "%s: cannot read its CRLs (PEM, at most %d "
	    "revoked certificates)", path, CERT_CRL_MAX_ENTRIES);
	free(buf);
	cert_crl_free(crl);
	return (NULL);
}

void
cert_crl_free(struct cert_crl *crl)
{
	if (crl == NULL)
		return;
	free(crl->e);
	free(crl);
}

int
cert_crl_revoked(const struct cert_crl *crl, const struct cert_identity *id)
{
	unsigned char raw[CRL_SERIAL_MAX * 2];
	struct crl_entry key;
	size_t n, i;
	int hi, lo;

	if (crl == NULL || crl->n == 0 || id->serial == NULL ||
	    (n = strlen(id->serial)) % 2 != 0 || n / 2 > sizeof(raw))
		return (0);
	for (i = 0; i < n / 2; i++) {
		if ((hi = text_hexval(id->serial[2 * i])) < 0 ||
		    (lo = text_hexval(id->serial[2 * i + 1])) < 0)
			return (0);
		raw[i] = (unsigned char)(hi << 4 | lo);
	}
	memcpy(key.issuer, id->issuer_hash, sizeof(key.issuer));
	if (entry_serial(&key, raw, n / 2) != 0)
		return (0);
	return (bsearch(&key, crl->e, crl->n, sizeof(*crl->e),
	    entry_cmp) != NULL);
}
