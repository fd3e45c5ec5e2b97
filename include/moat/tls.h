/* SPDX-License-Identifier: MIT */
/*
 * The TLS room. A tls_ctx is the server side of mutual TLS built from the
 * [tls] section: certificate chain, key, the CA that device certificates must
 * chain to, an optional CRL, versions and ciphers, with every security knob
 * set explicitly (Debian's wolfSSL is permissive by default). A tls_session is
 * one connection's TLS state, driven purely through memory I/O callbacks: the
 * caller owns the socket and hands ciphertext in and out, so wolfSSL never
 * touches a file descriptor. Nothing here knows about libuv.
 */
#ifndef MOAT_TLS_H
#define MOAT_TLS_H

#include <stddef.h>
#include <stdint.h>

struct config;
struct tls_ctx;
struct tls_session;

/* Results of the session calls. */
enum tls_result {
	TLS_ERR = -1,    /* fatal: see tls_session_error() */
	TLS_DONE = 0,    /* handshake finished / data produced / written */
	TLS_WANT = 1,    /* needs more ciphertext from the peer */
	TLS_CLOSED = 2,  /* peer sent close_notify */
};

/*
 * Ciphertext I/O supplied by the caller. recv copies up to len bytes into
 * buf and returns the count, 0 when nothing is buffered yet, or -1 when the
 * peer has closed its side. send takes all len bytes (queueing them) and
 * returns len, or -1 when the connection can no longer carry data.
 */
struct tls_io {
	long (*recv)(void *arg, char *buf, size_t len);
	long (*send)(void *arg, const char *buf, size_t len);
};

/* Process-wide init/cleanup of wolfSSL. tls_global_init returns 0 or -1. */
int tls_global_init(void);
void tls_global_cleanup(void);

/* Free what wolfSSL keeps per thread (the ECC fixed-point cache); call it
 * at the end of every thread other than the main one that ran TLS. */
void tls_thread_cleanup(void);

/* Versions of the wolfSSL library in use ("5.5.4"). */
const char *tls_library_version(void);

/*
 * The assembly fast paths of the wolfSSL moat was built against ("SP math
 * in x86_64 assembly, AES-NI, ..."), written into buf (caller's, always
 * terminated, cut at len). Returns how many there are: 0 means none, and
 * full handshakes cost several times more.
 */
int tls_library_features(char *buf, size_t len);

/*
 * Build a server context from cfg: loads and checks every file (the key must
 * match the certificate, the CA bundle must hold at least one certificate
 * and only CA certificates, the CRL must parse and not be past its
 * nextUpdate), and allows only allow-listed cipher suites. Returns NULL
 * with "FILE:LINE: message" in err. Once the CRL expires, the first
 * refused device makes the context log that once (devices stay refused).
 */
struct tls_ctx *tls_ctx_new(const struct config *cfg, char *err,
    size_t errlen);

/*
 * A warning for the operator about ctx ("FILE:LINE: ... the CRL expires
 * in less than 7 days"), or NULL. Owned by ctx.
 */
const char *tls_ctx_warning(const struct tls_ctx *ctx);

/* The CRL's earliest nextUpdate, seconds since the epoch; 0 without a
 * CRL. */
int64_t tls_ctx_crl_next_update(const struct tls_ctx *ctx);

/* Free a context; tls_ctx_free(NULL) does nothing. Sessions must be gone. */
void tls_ctx_free(struct tls_ctx *ctx);

/* New session on ctx using io with arg; NULL on allocation failure. */
struct tls_session *tls_session_new(struct tls_ctx *ctx,
    const struct tls_io *io, void *arg);

/* Free a session; tls_session_free(NULL) does nothing. */
void tls_session_free(struct tls_session *s);

/* Advance the server handshake: TLS_DONE, TLS_WANT or TLS_ERR. */
enum tls_result tls_handshake(struct tls_session *s);

/*
 * Decrypt application data into buf. TLS_DONE with *n > 0, TLS_WANT when a
 * whole record is not yet there, TLS_CLOSED on close_notify, TLS_ERR.
 */
enum tls_result tls_read(struct tls_session *s, void *buf, size_t len,
    size_t *n);

/* Encrypt and send all len bytes: TLS_DONE or TLS_ERR. */
enum tls_result tls_write(struct tls_session *s, const void *buf,
    size_t len);

/* Send close_notify (once). */
void tls_close_notify(struct tls_session *s);

/*
 * Text of the last error on s ("certificate has expired", ...), for logs.
 * Returns buf.
 */
const char *tls_session_error(struct tls_session *s, char *buf, size_t len);

/*
 * The device's certificate after the handshake, for the certificate room
 * (cert.h); the caller frees it with wolfSSL_X509_free(). NULL when there
 * is none.
 */
struct WOLFSSL_X509 *tls_session_peer_cert(struct tls_session *s);

/*
 * Once the handshake is done and the device's identity read: let go of
 * what the session no longer needs (handshake state), so that an idle
 * connection costs little. Records, KeyUpdate and close_notify still
 * work. Does nothing before the handshake is done.
 */
void tls_session_trim(struct tls_session *s);

/* Negotiated protocol ("TLSv1.3") and cipher suite names, for logs. */
const char *tls_session_version(struct tls_session *s);
const char *tls_session_cipher(struct tls_session *s);

#endif
