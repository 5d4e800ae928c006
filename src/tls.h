/* tls: the TLS stage (wolfSSL, a mw_stage_vt in transport_tls.c), its
 * options and session resumption across reconnects; contexts come from
 * tls_ctx.h, which follows the CA and certificate files on disk. Knows
 * nothing of Lua, protocols or frame bits. */
#ifndef MW_TLS_H
#define MW_TLS_H
#include "conn.h"

/* The options of api.md's `ssl` context. Strings are borrowed by
 * mw_tls_configure, which copies them. */
typedef struct mw_tls_opts {
    int verify_peer;            /* chain against cafile/capath or the system store; default 1 */
    int verify_peer_name;       /* name against peer_name or the URL host; default 1 */
    int allow_self_signed;      /* accept a self-signed leaf when verifying; default 0 */
    const char *cafile, *capath;
    const char *peer_name;      /* SNI and the name to verify; NULL: the URL host */
    const char *local_cert;     /* client certificate chain (PEM) */
    const char *local_pk;       /* its key (PEM); NULL: taken from local_cert */
    const char *alpn;           /* comma-separated protocols to offer; NULL: none */
} mw_tls_opts;

/* What the last completed handshake negotiated. */
typedef struct mw_tls_info {
    char version[16];           /* "TLSv1.3" */
    char cipher[96];
    char alpn[64];              /* "" when none was agreed */
    int resumed;                /* 1 when the session was resumed */
} mw_tls_info;

/* Fill o with the defaults. */
void mw_tls_opts_init(mw_tls_opts *o);
/* Set the TLS options used by the next connect (the current connection, if
 * any, keeps its own). Files named in them are read at each handshake's
 * start when they changed on disk. Returns 0, or -1 when out of memory. */
int mw_tls_configure(mw_conn *c, const mw_tls_opts *o);
/* Give dst the TLS options src was configured with (the defaults when it
 * never was), for its next connect. Returns 0, or -1 when out of memory. */
int mw_tls_copy_opts(mw_conn *dst, const mw_conn *src);
/* Copy what the handshake of c's current (or, once closed, last) connection
 * negotiated into out. Returns 1, or 0 when that handshake has not completed. */
int mw_tls_get_info(const mw_conn *c, mw_tls_info *out);
/* TLS at the next connect (the `transport` option; a wss:// URL enables it
 * at creation). 0, or -1 when out of memory. */
int mw_tls_enable(mw_conn *c, int on);
int mw_tls_enabled(const mw_conn *c);
/* Free every cached context no connection uses, then wolfSSL's globals.
 * Registered with atexit on first use; safe to call more than once. */
void mw_tls_shutdown(void);

#endif
