/* tls_ctx: the per-process cache of wolfSSL client contexts, one per set of
 * trust anchors and client certificate, kept in step with the files on disk.
 * Knows no connection, socket, loop or Lua. */
#ifndef MW_TLS_CTX_H
#define MW_TLS_CTX_H
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

/* What a context is made of. Strings are borrowed for the call. */
typedef struct mw_tls_ctx_opts {
    int verify_peer;               /* 0: no trust anchors are loaded (cafile/capath unused) */
    const char *cafile, *capath;   /* both NULL: the system CA store */
    const char *local_cert;        /* client certificate chain (PEM), or NULL */
    const char *local_pk;          /* its key (PEM); NULL: taken from local_cert */
} mw_tls_ctx_opts;

typedef struct mw_tls_ctx mw_tls_ctx;

/* The context for o, with a reference taken for the caller. Costs a stat()
 * of each file (and of each file in capath) when the cached context is still
 * current; reads the files again when one changed, and makes a new context
 * when their contents did. Returns NULL with a message naming the file and
 * the cause in err (e.g. "cannot load CA certificates from /x/ca.pem
 * (ssl.cafile): No such file or directory"). */
mw_tls_ctx *mw_tls_ctx_get(const mw_tls_ctx_opts *o, char *err, size_t errcap);
/* Drop a reference from mw_tls_ctx_get; the last one frees the context
 * (the cache holds one while the context is current). NULL is ignored. */
void mw_tls_ctx_release(mw_tls_ctx *t);
WOLFSSL_CTX *mw_tls_ctx_ssl(const mw_tls_ctx *t);
/* A number no other context of this process had: sessions are resumed only
 * under the context (the trust and identity) they were made with. */
uint64_t mw_tls_ctx_id(const mw_tls_ctx *t);
/* For tests: contexts made and not yet freed; times files were read. */
int mw_tls_ctx_live(void);
long mw_tls_ctx_reads(void);
/* Drop the cache's references and, once no context is left, wolfSSL's
 * globals. Registered with atexit when wolfSSL is first initialised. */
void mw_tls_ctx_shutdown(void);
#endif
