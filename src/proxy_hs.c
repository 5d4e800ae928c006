/* proxy_hs: the proxy handshakes as bytes in, bytes out (see proxy.h):
 * HTTP CONNECT (RFC 9110 9.3.6) and SOCKS5 (RFC 1928) with
 * username/password authentication (RFC 1929). */
#include "proxy.h"
#include "crypto.h"
#include "err.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { S_HTTP_REPLY, S_SOCKS_METHOD, S_SOCKS_AUTH, S_SOCKS_REPLY_HEAD, S_SOCKS_REPLY, S_DONE, S_FAILED };

static int hs_fail(mw_proxy_hs *hs, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int hs_fail(mw_proxy_hs *hs, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(hs->err, sizeof hs->err, fmt, ap);
    va_end(ap);
    hs->code = code;
    hs->step = S_FAILED;
    return MW_PROXY_HS_FAIL;
}

static int http_start(mw_proxy_hs *hs, const char *host, int port, const char *authorization)
{
    const char *fmt = strchr(host, ':') ? "[%s]:%d" : "%s:%d";
    char target[300];
    snprintf(target, sizeof target, fmt, host, port);
    char auth[900] = "";
    if (!authorization && hs->p->has_user) {
        char cred[520], b64[720];
        int n = snprintf(cred, sizeof cred, "%s:%s", hs->p->user, hs->p->pass);
        if (n < 0 || (size_t)n >= sizeof cred || !mw_base64_encode(cred, (size_t)n, b64, sizeof b64))
            return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy credentials too long");
        snprintf(auth, sizeof auth, "Proxy-Authorization: Basic %s\r\n", b64);
        memset(cred, 0, sizeof cred);
    } else if (authorization) {
        if (strpbrk(authorization, "\r\n"))
            return hs_fail(hs, MW_E_CONNECT_FAIL, "proxyAuthorization must not contain CR or LF");
        int n = snprintf(auth, sizeof auth, "Proxy-Authorization: %s\r\n", authorization);
        if (n < 0 || (size_t)n >= sizeof auth) return hs_fail(hs, MW_E_CONNECT_FAIL, "proxyAuthorization too long");
    }
    int n = snprintf(hs->out, sizeof hs->out, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, target, auth);
    memset(auth, 0, sizeof auth);
    if (n < 0 || (size_t)n >= sizeof hs->out) return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy request too long");
    hs->outlen = (size_t)n;
    hs->step = S_HTTP_REPLY;
    return 0;
}

/* The SOCKS5 request: CONNECT to an address or a name. */
static int socks_request(mw_proxy_hs *hs)
{
    unsigned char *o = (unsigned char *)hs->out;
    size_t n = 0;
    o[n++] = 5; o[n++] = 1; o[n++] = 0;
    memcpy(o + n, hs->addr, hs->addrlen);
    n += hs->addrlen;
    hs->outlen = n;
    hs->need = 2;
    hs->step = S_SOCKS_REPLY_HEAD;
    return 0;
}

static int socks_start(mw_proxy_hs *hs, const char *host, int port, const unsigned char *ip, int ip_len)
{
    /* the request's address part (ATYP, address, port), sent once the
     * method is agreed */
    unsigned char *a = hs->addr;
    size_t n = 0;
    if (ip && (ip_len == 4 || ip_len == 16)) {
        a[n++] = ip_len == 4 ? 1 : 4;
        memcpy(a + n, ip, (size_t)ip_len);
        n += (size_t)ip_len;
    } else {
        size_t hn = strlen(host);
        if (hn == 0 || hn > 255) return hs_fail(hs, MW_E_CONNECT_FAIL, "target name too long for SOCKS5 (255 bytes at most)");
        a[n++] = 3;
        a[n++] = (unsigned char)hn;
        memcpy(a + n, host, hn);
        n += hn;
    }
    a[n++] = (unsigned char)(port >> 8);
    a[n++] = (unsigned char)port;
    hs->addrlen = n;
    hs->need = 2;
    if (hs->p->has_user && (strlen(hs->p->user) > 255 || strlen(hs->p->pass) > 255 || !hs->p->user[0]))
        return hs_fail(hs, MW_E_CONNECT_FAIL, "SOCKS5 user name and password must be 1..255 and 0..255 bytes");
    unsigned char *o = (unsigned char *)hs->out;
    o[0] = 5;
    if (hs->p->has_user) { o[1] = 2; o[2] = 0; o[3] = 2; hs->outlen = 4; }
    else { o[1] = 1; o[2] = 0; hs->outlen = 3; }
    hs->step = S_SOCKS_METHOD;
    return 0;
}

int mw_proxy_hs_start(mw_proxy_hs *hs, const mw_proxy *p, const char *host, int port,
                      const char *authorization, const unsigned char *ip, int ip_len)
{
    memset(hs, 0, sizeof *hs);
    hs->p = p;
    hs->kind = p->kind;
    int r = p->kind == MW_PROXY_HTTP ? http_start(hs, host, port, authorization)
                                     : socks_start(hs, host, port, ip, ip_len);
    return r == 0 ? 0 : -1;
}

/* ---- HTTP ---- */

/* The reply's head is whole in hs->in[0..end): judge its status line. */
static int http_status(mw_proxy_hs *hs, size_t end)
{
    const char *s = (const char *)hs->in;
    const char *eol = memchr(s, '\r', end);
    size_t ln = (size_t)(eol - s);
    if (ln < 12 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') || s[8] != ' ' ||
        s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' || s[11] > '9' ||
        (ln > 12 && s[12] != ' '))
        return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy answer is not HTTP (%.*s)", (int)(ln < 40 ? ln : 40), s);
    int status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (status >= 200 && status < 300) return MW_PROXY_HS_DONE;
    char reason[80] = "";
    size_t rn = ln > 13 ? ln - 13 : 0;
    if (rn >= sizeof reason) rn = sizeof reason - 1;
    for (size_t i = 0; i < rn; i++) {
        unsigned char ch = (unsigned char)s[13 + i];
        reason[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    reason[rn] = 0;
    return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy answered %d%s%s", status, rn ? " " : "", reason);
}

static int http_input(mw_proxy_hs *hs, const char *p, size_t n, size_t *used)
{
    /* take bytes up to the end of the head, never past it: what follows is
     * the tunnel's */
    size_t i = 0;
    while (i < n) {
        if (hs->inlen == sizeof hs->in)
            return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy answer head longer than %zu bytes", sizeof hs->in);
        unsigned char ch = (unsigned char)p[i++];
        hs->in[hs->inlen++] = ch;
        if (ch == 0) return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy answer has a NUL byte");
        if (ch == '\n') {
            if (hs->inlen < 2 || hs->in[hs->inlen - 2] != '\r')
                return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy answer has a bare LF");
            if (hs->inlen == 2) return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy answer starts with an empty line");
            if (hs->inlen >= 4 && hs->in[hs->inlen - 3] == '\n') {
                *used = i;
                int r = http_status(hs, hs->inlen);
                if (r == MW_PROXY_HS_DONE) hs->step = S_DONE;
                return r;
            }
        }
    }
    *used = i;
    return MW_PROXY_HS_MORE;
}

/* ---- SOCKS5 ---- */

static const char *socks_reply_text(int rep)
{
    switch (rep) {
    case 1: return "general SOCKS server failure";
    case 2: return "connection not allowed by ruleset";
    case 3: return "network unreachable";
    case 4: return "host unreachable";
    case 5: return "connection refused by destination host";
    case 6: return "TTL expired";
    case 7: return "command not supported";
    case 8: return "address type not supported";
    default: return "unknown reply code";
    }
}

/* A whole piece of the SOCKS5 exchange is in hs->in[0..inlen). */
static int socks_step(mw_proxy_hs *hs)
{
    const unsigned char *r = hs->in;
    switch (hs->step) {
    case S_SOCKS_METHOD:
        if (r[0] != 5) return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy is not a SOCKS5 server (version %d)", r[0]);
        if (r[1] == 0xff)
            return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy accepts none of the offered authentication methods (%s)",
                           hs->p->has_user ? "none, username/password" : "none; it may want a username and password");
        if (r[1] == 2 && hs->p->has_user) {
            unsigned char *o = (unsigned char *)hs->out;
            size_t un = strlen(hs->p->user), pn = strlen(hs->p->pass), n = 0;
            o[n++] = 1;
            o[n++] = (unsigned char)un; memcpy(o + n, hs->p->user, un); n += un;
            o[n++] = (unsigned char)pn; memcpy(o + n, hs->p->pass, pn); n += pn;
            hs->outlen = n;
            hs->step = S_SOCKS_AUTH;
            hs->inlen = 0;
            hs->need = 2;
            return MW_PROXY_HS_MORE;
        }
        if (r[1] != 0)
            return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy chose authentication method %d, which was not offered", r[1]);
        hs->inlen = 0;
        socks_request(hs);
        return MW_PROXY_HS_MORE;
    case S_SOCKS_AUTH:
        if (r[0] != 1) return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy sent a bad authentication reply (version %d)", r[0]);
        if (r[1] != 0) return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy rejected the user name and password");
        hs->inlen = 0;
        socks_request(hs);
        return MW_PROXY_HS_MORE;
    case S_SOCKS_REPLY_HEAD:
        if (hs->inlen == 2) {
            if (r[0] != 5) return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy sent a bad SOCKS5 reply (version %d)", r[0]);
            if (r[1] != 0) return hs_fail(hs, MW_E_CONNECT_FAIL, "%s (SOCKS5 reply %d)", socks_reply_text(r[1]), r[1]);
            hs->need = 5;   /* RSV, ATYP and the first address byte */
            return MW_PROXY_HS_MORE;
        }
        if (r[2] != 0) return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy sent a bad SOCKS5 reply (reserved byte %d)", r[2]);
        switch (r[3]) {
        case 1: hs->need = 4 + 4 + 2; break;
        case 4: hs->need = 4 + 16 + 2; break;
        case 3: hs->need = 4 + 1 + (size_t)r[4] + 2; break;
        default: return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy sent a bad SOCKS5 reply (address type %d)", r[3]);
        }
        hs->step = S_SOCKS_REPLY;
        return hs->inlen >= hs->need ? (hs->step = S_DONE, MW_PROXY_HS_DONE) : MW_PROXY_HS_MORE;
    case S_SOCKS_REPLY:
        hs->step = S_DONE;
        return MW_PROXY_HS_DONE;
    }
    return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy handshake in a bad state");
}

static int socks_input(mw_proxy_hs *hs, const char *p, size_t n, size_t *used)
{
    size_t i = 0;
    while (i < n) {
        size_t want = hs->need - hs->inlen, take = n - i < want ? n - i : want;
        memcpy(hs->in + hs->inlen, p + i, take);
        hs->inlen += take;
        i += take;
        if (hs->inlen < hs->need) break;
        int r = socks_step(hs);
        if (r != MW_PROXY_HS_MORE) { *used = i; return r; }
        if (hs->outlen) break;   /* send first: the proxy answers only then */
    }
    *used = i;
    return MW_PROXY_HS_MORE;
}

int mw_proxy_hs_input(mw_proxy_hs *hs, const char *p, size_t n, size_t *used)
{
    *used = 0;
    if (hs->step == S_FAILED) return MW_PROXY_HS_FAIL;
    if (hs->step == S_DONE) return MW_PROXY_HS_DONE;
    return hs->kind == MW_PROXY_HTTP ? http_input(hs, p, n, used) : socks_input(hs, p, n, used);
}

int mw_proxy_hs_eof(mw_proxy_hs *hs)
{
    return hs_fail(hs, MW_E_CONNECT_FAIL, "proxy closed the connection while %s", mw_proxy_hs_waiting(hs));
}

const char *mw_proxy_hs_waiting(const mw_proxy_hs *hs)
{
    switch (hs->step) {
    case S_HTTP_REPLY: return "the answer to CONNECT was expected";
    case S_SOCKS_METHOD: return "the SOCKS5 method choice was expected";
    case S_SOCKS_AUTH: return "the SOCKS5 authentication reply was expected";
    case S_SOCKS_REPLY_HEAD: case S_SOCKS_REPLY: return "the SOCKS5 reply was expected";
    default: return "in the handshake";
    }
}
