/* transport_tls: TLS 1.2/1.3 over the connection's socket with wolfSSL, driven
 * by libev readiness; verification, sessions (contexts: tls_ctx.c). Knows no
 * Lua or protocols. */
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfio.h>
#include "conn_int.h"
#include "tls.h"
#include "tls_ctx.h"
#include "tls_name.h"
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const mw_stage_vt mw_stage_tls;

typedef struct tls_conn {
    mw_conn *c;
    mw_stage *s;           /* ours in c: reads and writes go through the layer below */
    /* options, owned copies */
    int verify_peer, verify_peer_name, allow_self_signed;
    char *cafile, *capath, *peer_name, *local_cert, *local_pk, *alpn;

    /* the current connection; reset by tls_close */
    WOLFSSL *ssl;
    mw_tls_ctx *tc;        /* ssl's context, referenced while ssl lives */
    ev_io hio;             /* handshake readiness, later the read/write cross-waits */
    int handshaking;
    int opening;           /* inside tls_open: completion is its return value */
    int established;
    int name_checked;      /* the verify callback matched the name */
    /* What this handshake applies, fixed at open: a reload may configure
     * new options while it runs, and its session is saved as verified
     * under these. */
    mw_tls_ref ref;        /* the name to verify */
    int accept;            /* accept_flags() */
    int rd_term;           /* a read ended (1 EOF, 2 error) after returning data */
    int rd_err;
    int io_eof;            /* recv saw the peer's FIN */
    int io_errno;          /* the last socket error, 0 none */
    int peer_gone;         /* a send after the handshake found the peer gone */
    char vmsg[800];        /* the first verification failure, in words */

    /* survives reconnects; freed with the connection */
    WOLFSSL_SESSION *session;
    /* What the session was verified under: its context (trust anchors,
     * verify_peer, client certificate), the options that change what is
     * accepted, and the name. It is offered again only under all the same. */
    uint64_t session_ctx;
    int session_accept;    /* accept_flags() then */
    char *session_name;
    int have_info;
    mw_tls_info info;
} tls_conn;

void mw_tls_opts_init(mw_tls_opts *o)
{
    memset(o, 0, sizeof *o);
    o->verify_peer = 1;
    o->verify_peer_name = 1;
}

static tls_conn *state_of(mw_stage *s)
{
    if (s->state) return s->state;
    tls_conn *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->c = s->c;
    st->s = s;
    st->verify_peer = 1;
    st->verify_peer_name = 1;
    s->state = st;
    return st;
}

/* c's TLS state, NULL when it has none (never configured nor enabled). */
static const tls_conn *find_state(const mw_conn *c)
{
    const mw_stage *s = mw_conn_stage((mw_conn *)c, &mw_stage_tls, 0);
    return s ? s->state : NULL;
}

int mw_tls_enable(mw_conn *c, int on)
{
    mw_stage *s = mw_conn_stage(c, &mw_stage_tls, on);
    if (s) s->enabled = on;
    return on && !s ? -1 : 0;
}

int mw_tls_enabled(const mw_conn *c)
{
    const mw_stage *s = mw_conn_stage((mw_conn *)c, &mw_stage_tls, 0);
    return s && s->enabled;
}

int mw_tls_configure(mw_conn *c, const mw_tls_opts *o)
{
    /* A connection without TLS and without TLS options keeps no TLS state
     * (about 1 KiB each): every connect() configures again, so the one that
     * enables TLS sets them. Options given are kept (the stage disabled) for
     * a redirect to wss://. */
    int given = !o->verify_peer || !o->verify_peer_name || o->allow_self_signed || o->cafile || o->capath ||
                o->peer_name || o->local_cert || o->local_pk || o->alpn;
    mw_stage *s = mw_conn_stage(c, &mw_stage_tls, given);
    if (!s) return given ? -1 : 0;
    tls_conn *st = state_of(s);
    if (!st) return -1;
    st->verify_peer = o->verify_peer;
    st->verify_peer_name = o->verify_peer_name;
    st->allow_self_signed = o->allow_self_signed;
    mw_str_set(&st->cafile, o->cafile);
    mw_str_set(&st->capath, o->capath);
    mw_str_set(&st->peer_name, o->peer_name);
    mw_str_set(&st->local_cert, o->local_cert);
    mw_str_set(&st->local_pk, o->local_pk);
    mw_str_set(&st->alpn, o->alpn);
    if ((o->cafile && !st->cafile) || (o->capath && !st->capath) ||
        (o->peer_name && !st->peer_name) || (o->local_cert && !st->local_cert) ||
        (o->local_pk && !st->local_pk) || (o->alpn && !st->alpn))
        return -1;
    return 0;
}

int mw_tls_copy_opts(mw_conn *dst, const mw_conn *src)
{
    const tls_conn *s = find_state(src);
    mw_tls_opts o;
    mw_tls_opts_init(&o);
    if (s) {
        o.verify_peer = s->verify_peer;
        o.verify_peer_name = s->verify_peer_name;
        o.allow_self_signed = s->allow_self_signed;
        o.cafile = s->cafile;
        o.capath = s->capath;
        o.peer_name = s->peer_name;
        o.local_cert = s->local_cert;
        o.local_pk = s->local_pk;
        o.alpn = s->alpn;
    }
    return mw_tls_configure(dst, &o);
}

int mw_tls_get_info(const mw_conn *c, mw_tls_info *out)
{
    const tls_conn *st = find_state(c);
    if (!st || !st->have_info) return 0;
    *out = st->info;
    return 1;
}

/* ---- contexts (tls_ctx.c) ---- */

void mw_tls_shutdown(void) { mw_tls_ctx_shutdown(); }

/* ---- verification ---- */

enum { ACCEPT_CHECK_NAME = 1, ACCEPT_SELF_SIGNED = 2 };

/* The options beside the context that change which certificates are accepted. */
static int accept_flags(const tls_conn *st)
{
    return (st->verify_peer_name ? ACCEPT_CHECK_NAME : 0) | (st->allow_self_signed ? ACCEPT_SELF_SIGNED : 0);
}

static const char *verify_name(const tls_conn *st)
{
    return st->peer_name ? st->peer_name : st->c->url.host;
}

static void name_mismatch(tls_conn *st, WOLFSSL_X509 *x)
{
    char names[300];
    mw_tls_cert_names(x, &st->ref, names, sizeof names);
    if (st->ref.kind == MW_REF_DNS)
        snprintf(st->vmsg, sizeof st->vmsg, "hostname mismatch: certificate is for %s, not %.255s",
                 names, verify_name(st));
    else
        snprintf(st->vmsg, sizeof st->vmsg, "hostname mismatch: certificate is for %s, not IP address %s "
                 "(an IP address matches only an IP address subjectAltName)", names, st->ref.name);
}

static int self_issued(WOLFSSL_X509 *x)
{
    WOLFSSL_X509_NAME *s = wolfSSL_X509_get_subject_name(x), *i = wolfSSL_X509_get_issuer_name(x);
    return s && i && wolfSSL_X509_NAME_cmp(s, i) == 0;
}

/* wolfSSL reports verification errors as its own codes, or as X509_V_ERR_*
 * ones in OpenSSL-compatible builds: accept both. */
static int is_no_issuer(int e)
{
    return e == ASN_NO_SIGNER_E || e == ASN_SELF_SIGNED_E ||
           e == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT || e == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
           e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
           e == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE;
}

static void cert_time(WOLFSSL_ASN1_TIME *t, char *buf, int cap)
{
    if (!t || !wolfSSL_ASN1_TIME_to_string(t, buf, cap)) snprintf(buf, (size_t)cap, "?");
}

static void describe_verify_error(tls_conn *st, int err, WOLFSSL_X509 *x, int depth)
{
    char what[300], when[64], who[200];
    const char *whose = depth > 0 ? "an issuing CA's " : "";
    if (is_no_issuer(err)) {
        if (x && depth == 0 && self_issued(x)) {
            snprintf(what, sizeof what, "self-signed certificate");
        } else {
            WOLFSSL_X509_NAME *iss = x ? wolfSSL_X509_get_issuer_name(x) : NULL;
            if (!iss || !wolfSSL_X509_NAME_oneline(iss, who, sizeof who)) snprintf(who, sizeof who, "?");
            snprintf(what, sizeof what, x && self_issued(x)
                     ? "self-signed certificate in the chain, not trusted (%s)"
                     : "unknown certificate authority (issuer %s)", who);
        }
    } else if (err == ASN_AFTER_DATE_E || err == X509_V_ERR_CERT_HAS_EXPIRED ||
               err == X509_V_ERR_ERROR_IN_CERT_NOT_AFTER_FIELD) {
        cert_time(x ? wolfSSL_X509_get_notAfter(x) : NULL, when, sizeof when);
        snprintf(what, sizeof what, "%scertificate expired (not valid after %s)", whose, when);
    } else if (err == ASN_BEFORE_DATE_E || err == X509_V_ERR_CERT_NOT_YET_VALID ||
               err == X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD) {
        cert_time(x ? wolfSSL_X509_get_notBefore(x) : NULL, when, sizeof when);
        snprintf(what, sizeof what, "%scertificate not yet valid (not before %s)", whose, when);
    } else if (err == ASN_SIG_CONFIRM_E || err == X509_V_ERR_CERT_SIGNATURE_FAILURE) {
        snprintf(what, sizeof what, "%scertificate has a bad signature", whose);
    } else {
        const char *s = err < 0 ? wc_GetErrorString(err) : wolfSSL_X509_verify_cert_error_string(err);
        snprintf(what, sizeof what, "%s (error %d at depth %d)", s ? s : "verification error", err, depth);
    }
    snprintf(st->vmsg, sizeof st->vmsg, "certificate verify failed for %.255s: %s", verify_name(st), what);
}

/* Called for every certificate of the chain (wolfSSL's ALWAYS_VERIFY_CB), the
 * leaf last at depth 0: applies allow_self_signed and matches the name there,
 * so a wrong certificate aborts the handshake with an alert. */
static int verify_cb(int ok, WOLFSSL_X509_STORE_CTX *store)
{
    tls_conn *st = store->userCtx;
    if (!st) return ok;
    int depth = store->error_depth;
    WOLFSSL_X509 *x = wolfSSL_X509_STORE_CTX_get_current_cert(store);
    if (!ok) {
        int err = store->error;
        if ((st->accept & ACCEPT_SELF_SIGNED) && depth == 0 && x && self_issued(x) && is_no_issuer(err)) {
            ok = 1;
        } else {
            if (!st->vmsg[0]) describe_verify_error(st, err, x, depth);
            return 0;
        }
    }
    if (depth == 0 && x && (st->accept & ACCEPT_CHECK_NAME)) {
        st->name_checked = 1;
        if (!mw_tls_cert_matches(x, &st->ref)) {
            if (!st->vmsg[0]) name_mismatch(st, x);
            return 0;
        }
    }
    return ok;
}

/* ---- errors in words ---- */

static const char *alert_name(int code)
{
    switch (code) {
    case 0: return "close_notify";
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 22: return "record_overflow";
    case 40: return "handshake_failure";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 47: return "illegal_parameter";
    case 48: return "unknown_ca";
    case 49: return "access_denied";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 70: return "protocol_version";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 86: return "inappropriate_fallback";
    case 90: return "user_canceled";
    case 109: return "missing_extension";
    case 110: return "unsupported_extension";
    case 112: return "unrecognized_name";
    case 116: return "certificate_required";
    case 120: return "no_application_protocol";
    default: return "unknown alert";
    }
}

static int peer_closed(int e)
{
    return e == SOCKET_PEER_CLOSED_E || e == WOLFSSL_ERROR_SYSCALL;
}

/* Describe the wolfSSL error e on st->ssl in words. */
static void describe_error(tls_conn *st, int e, char *buf, size_t cap)
{
    const char *when = st->handshaking ? " during the handshake" : "";
    WOLFSSL_ALERT_HISTORY h;
    memset(&h, 0, sizeof h);
    h.last_rx.code = -1;
    if (st->vmsg[0]) {
        snprintf(buf, cap, "%s", st->vmsg);
    } else if (e == FATAL_ERROR && wolfSSL_get_alert_history(st->ssl, &h) == WOLFSSL_SUCCESS &&
               h.last_rx.code >= 0) {
        snprintf(buf, cap, "the server sent alert %s (%d)%s", alert_name(h.last_rx.code), h.last_rx.code,
                 h.last_rx.code == 116 ? ": it requires a client certificate (set ssl.local_cert and ssl.local_pk)"
                                       : "");
    } else if (peer_closed(e) || e == SOCKET_ERROR_E) {
        int en = st->io_errno;
        if (en == 0 || en == EPIPE) snprintf(buf, cap, "the server closed the connection%s", when);
        else if (en == ECONNRESET) snprintf(buf, cap, "the server reset the connection%s", when);
        else snprintf(buf, cap, "socket error%s: %s", when, strerror(en));
    } else if (e == VERSION_ERROR) {
        snprintf(buf, cap, "no TLS version in common (TLS 1.2 or 1.3 is needed)");
    } else if (e == MATCH_SUITE_ERROR) {
        snprintf(buf, cap, "no cipher suite in common");
    } else if (e == DOMAIN_NAME_MISMATCH) {
        snprintf(buf, cap, "hostname mismatch: certificate is not for %s", verify_name(st));
    } else {
        char s[WOLFSSL_MAX_ERROR_SZ];
        wolfSSL_ERR_error_string_n((unsigned long)e, s, sizeof s);
        snprintf(buf, cap, "%s", s);
    }
}

/* ---- socket I/O for wolfSSL ---- */

/* Our own callbacks rather than wolfSSL's: they record why the socket failed
 * (EOF, reset) for the messages, and keep a send to a vanished peer from
 * putting wolfSSL in an error state in which it would no longer read the
 * alert that explains it. */
static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    tls_conn *st = ctx;
    long n = mw_stage_read(st->s, buf, (size_t)sz);
    if (n > 0) return (int)n;
    if (n == 0) { st->io_eof = 1; return WOLFSSL_CBIO_ERR_CONN_CLOSE; }
    if (n == MW_IO_AGAIN) return WOLFSSL_CBIO_ERR_WANT_READ;
    st->io_errno = errno;
    return errno == ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST : WOLFSSL_CBIO_ERR_GENERAL;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *ctx)
{
    (void)ssl;
    tls_conn *st = ctx;
    long n = mw_stage_write(st->s, buf, (size_t)sz);
    if (n >= 0) return (int)n;
    if (n == MW_IO_AGAIN) return WOLFSSL_CBIO_ERR_WANT_WRITE;
    st->io_errno = errno;
    if ((errno == EPIPE || errno == ECONNRESET) && st->established) {
        st->peer_gone = errno; /* tls_output reports it, after looking for an alert */
        return WOLFSSL_CBIO_ERR_WANT_WRITE;
    }
    return errno == ECONNRESET ? WOLFSSL_CBIO_ERR_CONN_RST
           : errno == EPIPE    ? WOLFSSL_CBIO_ERR_CONN_CLOSE
                               : WOLFSSL_CBIO_ERR_GENERAL;
}

/* ---- the handshake ---- */

static void hio_want(tls_conn *st, int events)
{
    struct ev_loop *ev = st->c->loop->ev;
    if (ev_is_active(&st->hio)) {
        if ((st->hio.events & (EV_READ | EV_WRITE)) == events) return;
        ev_io_stop(ev, &st->hio);
    }
    ev_io_set(&st->hio, mw_stage_fd(st->s), events);
    ev_io_start(ev, &st->hio);
}

static void hio_stop(tls_conn *st)
{
    if (ev_is_active(&st->hio)) ev_io_stop(st->c->loop->ev, &st->hio);
}

static void snapshot_info(tls_conn *st)
{
    mw_tls_info *i = &st->info;
    memset(i, 0, sizeof *i);
    int cs = wolfSSL_get_current_cipher_suite(st->ssl);
    const char *v = wolfSSL_get_version(st->ssl);
    const char *ci = wolfSSL_get_cipher_name_iana_from_suite((unsigned char)(cs >> 8), (unsigned char)cs);
    if (!ci || !ci[0] || strcmp(ci, "None") == 0) ci = wolfSSL_get_cipher_name(st->ssl);
    snprintf(i->version, sizeof i->version, "%s", v ? v : "?");
    snprintf(i->cipher, sizeof i->cipher, "%s", ci ? ci : "?");
    char *proto = NULL;
    unsigned short plen = 0;
    if (wolfSSL_ALPN_GetProtocol(st->ssl, &proto, &plen) == WOLFSSL_SUCCESS && proto)
        snprintf(i->alpn, sizeof i->alpn, "%.*s", (int)plen, proto);
    i->resumed = wolfSSL_session_reused(st->ssl) == 1;
    st->have_info = 1;
}

static void drop_session(tls_conn *st)
{
    if (st->session) wolfSSL_SESSION_free(st->session);
    st->session = NULL;
    st->session_ctx = 0;
    st->session_accept = 0;
    free(st->session_name);
    st->session_name = NULL;
}

/* One step of the handshake. Returns 0 when done (outside tls_open the
 * connection is told), 1 in progress, -1 failed (reported). */
static int handshake_step(tls_conn *st)
{
    mw_conn *c = st->c;
    int r = wolfSSL_connect(st->ssl);
    if (r != WOLFSSL_SUCCESS) {
        int e = wolfSSL_get_error(st->ssl, r);
        if (e == WOLFSSL_ERROR_WANT_READ) { hio_want(st, EV_READ); return 1; }
        if (e == WOLFSSL_ERROR_WANT_WRITE) { hio_want(st, EV_WRITE); return 1; }
        char why[sizeof ((tls_conn *)0)->vmsg + 64];
        describe_error(st, e, why, sizeof why);
        drop_session(st);
        mw_conn_fail(c, MW_E_TLS_FAIL, "tls handshake with %s: %s", c->url_str, why);
        return -1;
    }
    hio_stop(st);
    st->handshaking = 0;
    /* verify_peer = false leaves the name to check here (as PHP does, the two
     * options are independent), and so does a resumed session, which brings
     * no Certificate message: wolfSSL keeps the peer's chain in the session
     * (SESSION_CERTS), so its certificate is checked against the name of
     * now, not trusted for having been checked once. */
    if ((st->accept & ACCEPT_CHECK_NAME) && !st->name_checked) {
        WOLFSSL_X509 *x = wolfSSL_get_peer_certificate(st->ssl);
        int ok = x && mw_tls_cert_matches(x, &st->ref);
        if (!ok) {
            if (x) name_mismatch(st, x);
            else snprintf(st->vmsg, sizeof st->vmsg, "the server sent no certificate to check %s against",
                          verify_name(st));
        }
        if (x) wolfSSL_X509_free(x);
        if (!ok) {
            drop_session(st);
            mw_conn_fail(c, MW_E_TLS_FAIL, "tls handshake with %s: %s", c->url_str, st->vmsg);
            return -1;
        }
    }
    st->established = 1;
    snapshot_info(st);
    if (st->opening) return 0;
    mw_stage_ready(st->s);
    return 0;
}

static void hio_cb(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)revents;
    tls_conn *st = container_of(w, tls_conn, hio);
    if (st->handshaking) { handshake_step(st); return; }
    /* A read that needed the socket writable (or a write that needed it
     * readable) is retried through conn's own watchers. */
    ev_io_stop(ev, w);
    mw_stage_wake(st->s);
}

static int tls_start(mw_stage *s)
{
    mw_conn *c = s->c;
    tls_conn *st = state_of(s);
    if (!st) { mw_conn_fail(c, MW_E_TLS_FAIL, "tls %s: out of memory", c->url_str); return -1; }
    /* a stat() per file: a rotated CA bundle or a renewed client
     * certificate is used from the next handshake on */
    char err[1024];
    mw_tls_ctx_opts co = { st->verify_peer, st->cafile, st->capath, st->local_cert, st->local_pk };
    mw_tls_ctx *tc = mw_tls_ctx_get(&co, err, sizeof err);
    if (!tc) { mw_conn_fail(c, MW_E_TLS_FAIL, "tls %s: %s", c->url_str, err); return -1; }
    st->ssl = wolfSSL_new(mw_tls_ctx_ssl(tc));
    if (!st->ssl) {
        mw_tls_ctx_release(tc);
        mw_conn_fail(c, MW_E_TLS_FAIL, "tls %s: out of memory", c->url_str);
        return -1;
    }
    st->tc = tc;
    st->vmsg[0] = 0;
    st->name_checked = st->established = st->rd_term = st->have_info = 0;
    st->io_eof = st->io_errno = st->peer_gone = 0;
    wolfSSL_SSLSetIORecv(st->ssl, io_recv);
    wolfSSL_SSLSetIOSend(st->ssl, io_send);
    wolfSSL_SetIOReadCtx(st->ssl, st);
    wolfSSL_SetIOWriteCtx(st->ssl, st);
    const char *name = verify_name(st);
    mw_tls_ref_parse(name, &st->ref);
    /* RFC 6066: no IP literal in SNI, and a name without its trailing dot */
    size_t sni = st->ref.kind == MW_REF_DNS ? st->ref.len - (st->ref.len && name[st->ref.len - 1] == '.') : 0;
    if (sni) wolfSSL_UseSNI(st->ssl, WOLFSSL_SNI_HOST_NAME, name, (unsigned short)sni);
    if (st->alpn && st->alpn[0]) {
        char *list = strdup(st->alpn);  /* wolfSSL_UseALPN takes a mutable list */
        int ok = list && wolfSSL_UseALPN(st->ssl, list, (unsigned)strlen(list),
                                         WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) == WOLFSSL_SUCCESS;
        free(list);
        if (!ok) { mw_conn_fail(c, MW_E_TLS_FAIL, "tls %s: invalid ssl.alpn \"%s\"", c->url_str, st->alpn); return -1; }
    }
    wolfSSL_UseSessionTicket(st->ssl);
    wolfSSL_SetCertCbCtx(st->ssl, st);
    wolfSSL_set_verify(st->ssl, st->verify_peer ? WOLFSSL_VERIFY_PEER : WOLFSSL_VERIFY_NONE,
                       st->verify_peer ? verify_cb : NULL);
    /* A session made under other trust anchors, another client certificate
     * or looser options is not resumed: resuming skips the chain check,
     * which would then never see what changed. Not "stricter or equal"
     * either: options change rarely, and one full handshake after a change
     * costs less than reasoning about which option sets imply which. */
    uint64_t id = mw_tls_ctx_id(tc);
    st->accept = accept_flags(st);
    if (st->session && st->session_ctx == id && st->session_accept == st->accept && st->session_name &&
        strcmp(st->session_name, name) == 0 &&
        (!(st->accept & ACCEPT_CHECK_NAME) || wolfSSL_SESSION_get0_peer(st->session)))
        wolfSSL_set_session(st->ssl, st->session);
    else
        drop_session(st);
    st->session_ctx = id;
    st->session_accept = st->accept;
    if (!st->session_name || strcmp(st->session_name, name) != 0) mw_str_set(&st->session_name, name);
    ev_io_init(&st->hio, hio_cb, mw_stage_fd(s), EV_READ);
    st->handshaking = 1;
    st->opening = 1;
    int r = handshake_step(st);
    st->opening = 0;
    return r;
}

/* ---- data ---- */

static long read_end(tls_conn *st, int term, int e)
{
    if (term == 1) return 0;
    mw_conn *c = st->c;
    char why[sizeof ((tls_conn *)0)->vmsg + 64];
    describe_error(st, e, why, sizeof why);
    mw_conn_fail(c, MW_E_TLS_FAIL, "tls read %s: %s", c->url_str, why);
    return MW_IO_ERROR;
}

static long tls_input(mw_stage *s, char *p, size_t cap)
{
    tls_conn *st = s->state;
    if (!st || !st->ssl) { errno = EBADF; return MW_IO_ERROR; }
    if (st->rd_term) return read_end(st, st->rd_term, st->rd_err);
    size_t got = 0;
    /* Several records per call: wolfSSL hands out one record per read. */
    while (got < cap) {
        size_t want = cap - got > (1u << 30) ? (1u << 30) : cap - got;
        int r = wolfSSL_read(st->ssl, p + got, (int)want);
        if (r > 0) { got += (size_t)r; continue; }
        int e = wolfSSL_get_error(st->ssl, r);
        if (e == WOLFSSL_ERROR_WANT_READ) break;
        if (e == WOLFSSL_ERROR_WANT_WRITE) { hio_want(st, EV_WRITE); break; }
        /* a close without close_notify is an end too, as most servers do it */
        int term = e == WOLFSSL_ERROR_ZERO_RETURN || (e != FATAL_ERROR && st->io_eof) ? 1 : 2;
        if (got) { st->rd_term = term; st->rd_err = e; break; } /* data first, the end next call */
        return read_end(st, term, e);
    }
    return got ? (long)got : MW_IO_AGAIN;
}

static int tls_pending(mw_stage *s)
{
    tls_conn *st = s->state;
    return st && st->ssl && (st->rd_term || wolfSSL_pending(st->ssl) > 0);
}

/* A send found the peer gone: before it closed it may have said why (TLS 1.3
 * judges a client certificate after the client's handshake ended), so read
 * what it sent for a fatal alert. The connection fails either way. */
static void report_peer_gone(tls_conn *st)
{
    mw_conn *c = st->c;
    char scratch[4096], why[sizeof ((tls_conn *)0)->vmsg + 64];
    for (int i = 0; i < 64; i++)
        if (wolfSSL_read(st->ssl, scratch, sizeof scratch) <= 0) break;
    WOLFSSL_ALERT_HISTORY h;
    memset(&h, 0, sizeof h);
    h.last_rx.code = -1;
    if (wolfSSL_get_alert_history(st->ssl, &h) == WOLFSSL_SUCCESS && h.last_rx.code > 0 && h.last_rx.level == 2) {
        describe_error(st, FATAL_ERROR, why, sizeof why);
        mw_conn_fail(c, MW_E_TLS_FAIL, "tls read %s: %s", c->url_str, why);
        return;
    }
    st->io_errno = st->peer_gone;
    describe_error(st, SOCKET_ERROR_E, why, sizeof why);
    mw_conn_fail(c, MW_E_TLS_FAIL, "tls write %s: %s", c->url_str, why);
}

static long tls_output(mw_stage *s, const char *p, size_t n)
{
    tls_conn *st = s->state;
    if (!st || !st->ssl) { errno = EBADF; return MW_IO_ERROR; }
    size_t done = 0;
    /* After WANT_WRITE wolfSSL must be called again with the same bytes: conn
     * does not move the head of its output buffer until bytes are reported. */
    while (done < n) {
        size_t chunk = n - done > (1u << 20) ? (1u << 20) : n - done;
        int r = wolfSSL_write(st->ssl, p + done, (int)chunk);
        if (r > 0) { done += (size_t)r; continue; }
        int e = wolfSSL_get_error(st->ssl, r);
        if (e == WOLFSSL_ERROR_WANT_WRITE && st->peer_gone) {
            if (done) break; /* report those bytes; the next call fails */
            report_peer_gone(st);
            return MW_IO_ERROR;
        }
        if (e == WOLFSSL_ERROR_WANT_WRITE) break;
        if (e == WOLFSSL_ERROR_WANT_READ) { hio_want(st, EV_READ); break; }
        if (done) break; /* wolfSSL keeps the error: the next call reports it */
        char why[sizeof ((tls_conn *)0)->vmsg + 64];
        describe_error(st, e, why, sizeof why);
        mw_conn_fail(s->c, MW_E_TLS_FAIL, "tls write %s: %s", s->c->url_str, why);
        return MW_IO_ERROR;
    }
    return done ? (long)done : MW_IO_AGAIN;
}

static void tls_stop(mw_stage *s)
{
    tls_conn *st = s->state;
    if (!st) return;
    hio_stop(st);
    if (st->ssl) {
        if (st->established) {
            /* Keep the newest resumable session: TLS 1.3 tickets arrive after
             * the handshake, so this is the moment that has them. */
            WOLFSSL_SESSION *s = wolfSSL_get1_session(st->ssl);
            if (s && wolfSSL_SESSION_is_resumable(s)) {
                if (st->session) wolfSSL_SESSION_free(st->session);
                st->session = s;
            } else if (s) {
                wolfSSL_SESSION_free(s);
            }
            wolfSSL_shutdown(st->ssl); /* close_notify, best effort: never waits */
        }
        wolfSSL_free(st->ssl);
        st->ssl = NULL;
        mw_tls_ctx_release(st->tc); /* the last user of a replaced context frees it */
        st->tc = NULL;
    }
    st->handshaking = st->opening = st->established = st->rd_term = 0;
}

static void tls_free(mw_stage *s)
{
    tls_conn *st = s->state;
    if (!st) return;
    tls_stop(s);
    drop_session(st);
    free(st->cafile);
    free(st->capath);
    free(st->peer_name);
    free(st->local_cert);
    free(st->local_pk);
    free(st->alpn);
    free(st);
    s->state = NULL;
}

const mw_stage_vt mw_stage_tls = {
    .name = "tls",
    .level = MW_STAGE_LEVEL_TLS,
    .start = tls_start,
    .input = tls_input,
    .output = tls_output,
    .pending = tls_pending,
    .stop = tls_stop,
    .free = tls_free,
};
