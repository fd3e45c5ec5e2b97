/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for the subject rendering of src/tls/cert.c: RFC 4514 text
 * from a certificate's DER, with multi-valued RDNs joined by '+', values
 * escaped, BMPString converted, non-string values as #hex, unknown types
 * as dotted OIDs, the CN count, and a DN over the cap refused (never cut
 * short). The certificates are skeletons built here byte by byte: only
 * the fields before the subject matter to the renderer. Also the list of
 * revoked certificates read from PEM CRLs (cert_crl_*), on CRLs built the
 * same way: serials matched per issuer, leading zero bytes ignored.
 */
#include <criterion/criterion.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hash.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moat/cert.h"
#include "moat/identity.h"

#define BUF 8192

/* A growing DER buffer for one test. */
struct der {
	unsigned char b[BUF];
	size_t n;
};

/* tag + length + body into out (appended). */
static void
tlv(struct der *out, unsigned char tag, const void *body, size_t len)
{
	cr_assert_lt(out->n + len + 4, sizeof(out->b));
	out->b[out->n++] = tag;
	if (len < 0x80) {
		out->b[out->n++] = (unsigned char)len;
	} else if (len < 0x100) {
		out->b[out->n++] = 0x81;
		out->b[out->n++] = (unsigned char)len;
	} else {
		out->b[out->n++] = 0x82;
		out->b[out->n++] = (unsigned char)(len >> 8);
		out->b[out->n++] = (unsigned char)len;
	}
	memcpy(out->b + out->n, body, len);
	out->n += len;
}

static const unsigned char OID_CN[] = { 0x55, 0x04, 0x03 };
static const unsigned char OID_O[] = { 0x55, 0x04, 0x0a };
static const unsigned char OID_OU[] = { 0x55, 0x04, 0x0b };
static const unsigned char OID_PRIVATE[] = { 0x2b, 0x06, 0x01, 0x04, 0x01,
    0x82, 0x37, 0x15 };       /* 1.3.6.1.4.1.311.21 */

/* One AttributeTypeAndValue appended to an RDN set body. */
static void
atv(struct der *set, const unsigned char *oid, size_t oidlen,
    unsigned char tag, const void *val, size_t vlen)
{
	struct der a = { .n = 0 };

	tlv(&a, 0x06, oid, oidlen);
	tlv(&a, tag, val, vlen);
	tlv(set, 0x30, a.b, a.n);
}

/* Append an RDN (SET) holding the attributes already in set. */
static void
rdn(struct der *name, const struct der *set)
{
	tlv(name, 0x31, set->b, set->n);
}

/* An RDN of one UTF8String attribute. */
static void
rdn1(struct der *name, const unsigned char *oid, size_t oidlen,
    const char *val)
{
	struct der s = { .n = 0 };

	atv(&s, oid, oidlen, 0x0c, val, strlen(val));
	rdn(name, &s);
}

/* A certificate skeleton with subject name (the body of its SEQUENCE). */
static void
cert(struct der *out, const struct der *name)
{
	static const unsigned char ver[] = { 0x02, 0x01, 0x02 };
	static const unsigned char serial[] = { 0x01 };
	static const unsigned char sig[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d,
	    0x04, 0x03, 0x02 };       /* ecdsa-with-SHA256 */
	struct der tbs = { .n = 0 }, alg = { .n = 0 }, c = { .n = 0 };

	tlv(&alg, 0x06, sig, sizeof(sig));
	tlv(&tbs, 0xa0, ver, sizeof(ver));
	tlv(&tbs, 0x02, serial, sizeof(serial));
	tlv(&tbs, 0x30, alg.b, alg.n);
	tlv(&tbs, 0x30, "", 0);               /* issuer */
	tlv(&tbs, 0x30, "", 0);               /* validity, not read */
	tlv(&tbs, 0x30, name->b, name->n);
	tlv(&c, 0x30, tbs.b, tbs.n);
	tlv(&c, 0x30, alg.b, alg.n);
	tlv(&c, 0x03, "\0", 1);
	out->n = 0;
	tlv(out, 0x30, c.b, c.n);
}

static int
render(const struct der *name, char *out, size_t cap, int *ncn)
{
	static struct der c;

	cert(&c, name);
	return (cert_subject_dn(c.b, c.n, out, cap, ncn));
}

Test(cert_dn, two_rdns_and_one_multivalued_rdn_differ)
{
	struct der two = { .n = 0 }, one = { .n = 0 }, set = { .n = 0 };
	char a[256], b[256];
	int ncn;

	rdn1(&two, OID_O, sizeof(OID_O), "b");
	rdn1(&two, OID_CN, sizeof(OID_CN), "a");
	cr_assert_eq(render(&two, a, sizeof(a), &ncn), 0);
	cr_assert_str_eq(a, "CN=a,O=b");
	cr_assert_eq(ncn, 1);

	atv(&set, OID_CN, sizeof(OID_CN), 0x0c, "a", 1);
	atv(&set, OID_O, sizeof(OID_O), 0x0c, "b", 1);
	rdn(&one, &set);
	cr_assert_eq(render(&one, b, sizeof(b), &ncn), 0);
	cr_assert_str_eq(b, "CN=a+O=b");
	cr_assert_eq(ncn, 1);
}

Test(cert_dn, a_plus_in_a_value_is_escaped)
{
	struct der name = { .n = 0 };
	char out[256];
	int ncn;

	rdn1(&name, OID_CN, sizeof(OID_CN), "a+O=b");
	cr_assert_eq(render(&name, out, sizeof(out), &ncn), 0);
	cr_assert_str_eq(out, "CN=a\\+O=b");
}

Test(cert_dn, rfc4514_escapes)
{
	struct der name = { .n = 0 };
	char out[256];
	int ncn;

	rdn1(&name, OID_O, sizeof(OID_O), "Acme, Inc.");
	rdn1(&name, OID_OU, sizeof(OID_OU), "#lead;<x>\\ ");
	rdn1(&name, OID_CN, sizeof(OID_CN), "dev \"1\"\n\x1b");
	cr_assert_eq(render(&name, out, sizeof(out), &ncn), 0);
	cr_assert_str_eq(out, "CN=dev \\\"1\\\"\\0A\\1B,"
	    "OU=\\#lead\\;\\<x\\>\\\\\\ ,O=Acme\\, Inc.");
}

Test(cert_dn, bmpstring_is_converted_to_utf8)
{
	static const unsigned char bmp[] = { 0x00, 'd', 0x00, 0xe9, 0x20,
	    0xac };                    /* "dé€" */
	struct der name = { .n = 0 }, set = { .n = 0 };
	char out[256];
	int ncn;

	atv(&set, OID_CN, sizeof(OID_CN), 0x1e, bmp, sizeof(bmp));
	rdn(&name, &set);
	cr_assert_eq(render(&name, out, sizeof(out), &ncn), 0);
	cr_assert_str_eq(out, "CN=d\xc3\xa9\xe2\x82\xac");
}

Test(cert_dn, surrogates_in_a_bmpstring_do_not_parse)
{
	static const unsigned char bmp[] = { 0xd8, 0x00, 0xdc, 0x00 };
	struct der name = { .n = 0 }, set = { .n = 0 };
	char out[256];
	int ncn;

	atv(&set, OID_CN, sizeof(OID_CN), 0x1e, bmp, sizeof(bmp));
	rdn(&name, &set);
	cr_assert_eq(render(&name, out, sizeof(out), &ncn), -1);
	cr_assert_str_eq(out, "");
}

Test(cert_dn, unknown_types_as_dotted_oids_and_hex_values)
{
	static const unsigned char octets[] = { 0x01, 0xab };
	struct der name = { .n = 0 }, set = { .n = 0 };
	char out[256];
	int ncn;

	atv(&set, OID_PRIVATE, sizeof(OID_PRIVATE), 0x04, octets,
	    sizeof(octets));
	rdn(&name, &set);
	cr_assert_eq(render(&name, out, sizeof(out), &ncn), 0);
	cr_assert_str_eq(out, "1.3.6.1.4.1.311.21=#040201AB");
	cr_assert_eq(ncn, 0);
}

Test(cert_dn, every_cn_is_counted)
{
	struct der name = { .n = 0 }, set = { .n = 0 };
	char out[256];
	int ncn;

	rdn1(&name, OID_CN, sizeof(OID_CN), "sensor-a");
	atv(&set, OID_CN, sizeof(OID_CN), 0x0c, "admin", 5);
	atv(&set, OID_O, sizeof(OID_O), 0x0c, "x", 1);
	rdn(&name, &set);
	cr_assert_eq(render(&name, out, sizeof(out), &ncn), 0);
	cr_assert_eq(ncn, 2);
}

Test(cert_dn, over_the_cap_is_refused_not_cut)
{
	struct der name = { .n = 0 };
	char val[200], fits[203], short_by_one[202];
	int ncn;

	memset(val, 'v', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	rdn1(&name, OID_CN, sizeof(OID_CN), val);
	/* "CN=" and 199 characters and the NUL: 203 bytes */
	cr_assert_eq(render(&name, fits, sizeof(fits), &ncn), 0);
	cr_assert_eq(strlen(fits), 202);
	cr_assert_eq(render(&name, short_by_one, sizeof(short_by_one), &ncn),
	    -2);
	cr_assert_str_eq(short_by_one, "");
}

Test(cert_dn, truncated_der_does_not_parse)
{
	struct der name = { .n = 0 }, c = { .n = 0 };
	char out[256];
	int ncn;
	size_t cut;

	rdn1(&name, OID_CN, sizeof(OID_CN), "sensor-a");
	cert(&c, &name);
	for (cut = 0; cut < c.n; cut++)
		cr_assert_eq(cert_subject_dn(c.b, cut, out, sizeof(out), &ncn),
		    -1, "cut at %zu", cut);
	cr_assert_eq(cert_subject_dn(c.b, c.n, out, sizeof(out), &ncn), 0);
	cr_assert_str_eq(out, "CN=sensor-a");
}

/* --- revoked certificates (cert_crl_*) ---------------------------------- */

/* A CRL of issuer name (Name body) listing serials (DER INTEGER bodies). */
static void
crl_der(struct der *out, const struct der *name,
    const unsigned char *const *serials, const size_t *lens, size_t n)
{
	static const unsigned char ver[] = { 0x01 };
	static const unsigned char sig[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d,
	    0x04, 0x03, 0x02 };
	static const char when[] = "260101000000Z";
	struct der tbs = { .n = 0 }, alg = { .n = 0 }, list = { .n = 0 },
	    entry, c = { .n = 0 };
	size_t i;

	tlv(&alg, 0x06, sig, sizeof(sig));
	tlv(&tbs, 0x02, ver, sizeof(ver));
	tlv(&tbs, 0x30, alg.b, alg.n);
	tlv(&tbs, 0x30, name->b, name->n);
	tlv(&tbs, 0x17, when, 13);
	tlv(&tbs, 0x17, when, 13);
	for (i = 0; i < n; i++) {
		entry.n = 0;
		tlv(&entry, 0x02, serials[i], lens[i]);
		tlv(&entry, 0x17, when, 13);
		tlv(&list, 0x30, entry.b, entry.n);
	}
	if (n > 0)
		tlv(&tbs, 0x30, list.b, list.n);
	tlv(&c, 0x30, tbs.b, tbs.n);
	tlv(&c, 0x30, alg.b, alg.n);
	tlv(&c, 0x03, "\0", 1);
	out->n = 0;
	tlv(out, 0x30, c.b, c.n);
}

/* Append d as a PEM CRL block to f. */
static void
pem_crl(FILE *f, const struct der *d)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
	    "qrstuvwxyz0123456789+/";
	size_t i, col = 0;
	unsigned long v;

	fputs("-----BEGIN X509 CRL-----\n", f);
	for (i = 0; i < d->n; i += 3) {
		v = (unsigned long)d->b[i] << 16;
		if (i + 1 < d->n)
			v |= (unsigned long)d->b[i + 1] << 8;
		if (i + 2 < d->n)
			v |= d->b[i + 2];
		fputc(b64[v >> 18 & 63], f);
		fputc(b64[v >> 12 & 63], f);
		fputc(i + 1 < d->n ? b64[v >> 6 & 63] : '=', f);
		fputc(i + 2 < d->n ? b64[v & 63] : '=', f);
		if ((col += 4) == 64) {
			fputc('\n', f);
			col = 0;
		}
	}
	fputs("\n-----END X509 CRL-----\n", f);
}

static void
ident(struct cert_identity *id, const struct der *issuer, const char *serial)
{
	memset(id, 0, sizeof(*id));
	id->serial = strdup(serial);
	cr_assert_eq(wc_Sha256Hash(issuer->b, (word32)issuer->n,
	    id->issuer_hash), 0);
}

Test(cert_crl, revoked_serials_per_issuer)
{
	static const unsigned char s1[] = { 0x00, 0x90, 0x01 };
	static const unsigned char s2[] = { 0x10, 0x00 };
	static const unsigned char *const serials[] = { s1, s2 };
	static const size_t lens[] = { sizeof(s1), sizeof(s2) };
	static struct der ca = { .n = 0 }, other = { .n = 0 }, d;
	char path[] = "/tmp/moat-test-crl-XXXXXX", why[512];
	struct cert_identity id;
	struct cert_crl *crl;
	FILE *f;
	int fd;

	rdn1(&ca, OID_CN, sizeof(OID_CN), "Test CA");
	rdn1(&other, OID_CN, sizeof(OID_CN), "Other CA");
	cr_assert_geq(fd = mkstemp(path), 0);
	cr_assert_not_null(f = fdopen(fd, "w"));
	crl_der(&d, &other, NULL, NULL, 0);     /* no revokedCertificates */
	pem_crl(f, &d);
	crl_der(&d, &ca, serials, lens, 2);
	pem_crl(f, &d);
	fclose(f);
	crl = cert_crl_load(path, why, sizeof(why));
	unlink(path);
	cr_assert_not_null(crl, "%s", why);

	ident(&id, &ca, "9001");                /* the CRL's 00 90 01 */
	cr_assert(cert_crl_revoked(crl, &id));
	cert_identity_clear(&id);
	ident(&id, &ca, "009001");
	cr_assert(cert_crl_revoked(crl, &id));
	cert_identity_clear(&id);
	ident(&id, &ca, "1000");
	cr_assert(cert_crl_revoked(crl, &id));
	cert_identity_clear(&id);
	ident(&id, &ca, "1001");
	cr_assert_not(cert_crl_revoked(crl, &id));
	cert_identity_clear(&id);
	ident(&id, &other, "1000");             /* same serial, other CA */
	cr_assert_not(cert_crl_revoked(crl, &id));
	cert_identity_clear(&id);
	cr_assert_not(cert_crl_revoked(NULL, &id));
	cert_crl_free(crl);
	cert_crl_free(NULL);
}

Test(cert_crl, not_a_crl_is_an_error)
{
	char path[] = "/tmp/moat-test-crl-XXXXXX", why[512];
	FILE *f;
	int fd;

	cr_assert_geq(fd = mkstemp(path), 0);
	cr_assert_not_null(f = fdopen(fd, "w"));
	fputs("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", f);
	fclose(f);
	cr_assert_null(cert_crl_load(path, why, sizeof(why)));
	cr_assert_not_null(strstr(why, "cannot read its CRLs"), "%s", why);
	unlink(path);
}
