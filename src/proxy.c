/* proxy: the proxy setting's syntax and the environment's choice (see
 * proxy.h). Pure string work. */
#include "proxy.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *mw_proxy_kind_name(int kind)
{
    switch (kind) {
    case MW_PROXY_HTTP: return "http proxy";
    case MW_PROXY_SOCKS5: return "socks5 proxy";
    case MW_PROXY_SOCKS5H: return "socks5h proxy";
    default: return "proxy";
    }
}

void mw_proxy_where(const mw_proxy *p, char *buf, size_t cap)
{
    snprintf(buf, cap, strchr(p->host, ':') ? "[%s]:%d" : "%s:%d", p->host, p->port);
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Percent-decode s[0..n) into out (cap bytes with the NUL); -1 when it
 * does not fit, has a bad escape or decodes to a NUL. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '%') {
            if (i + 2 >= n) return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0 || (h | l) == 0) return -1;
            ch = h * 16 + l;
            i += 2;
        }
        if (o + 1 >= cap) return -1;
        out[o++] = (char)ch;
    }
    out[o] = 0;
    return 0;
}

static int fail(char *err, size_t cap, const char *msg)
{
    snprintf(err, cap, "%s", msg);
    return -1;
}

/* host[:port] or [v6][:port] of s[0..n) into p. */
static int parse_hostport(const char *s, size_t n, mw_proxy *p, int need_port, char *err, size_t cap)
{
    const char *port = NULL, *h = s;
    size_t hn;
    if (n && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close) return fail(err, cap, "unclosed [ in the proxy address");
        h = s + 1;
        hn = (size_t)(close - h);
        if (close + 1 < s + n) {
            if (close[1] != ':') return fail(err, cap, "junk after ] in the proxy address");
            port = close + 2;
        }
        char tmp[64];
        unsigned char a[16];
        if (hn == 0 || hn >= sizeof tmp) return fail(err, cap, "bad IPv6 address in the proxy address");
        memcpy(tmp, h, hn);
        tmp[hn] = 0;
        if (inet_pton(AF_INET6, tmp, a) != 1) return fail(err, cap, "bad IPv6 address in the proxy address");
    } else {
        const char *colon = memchr(s, ':', n);
        hn = colon ? (size_t)(colon - s) : n;
        if (colon) port = colon + 1;
        for (size_t i = 0; i < hn; i++) {
            int ch = (unsigned char)s[i];
            if (!isalnum(ch) && ch != '-' && ch != '.' && ch != '_')
                return fail(err, cap, "bad character in the proxy host");
        }
    }
    if (hn == 0) return fail(err, cap, "no host in the proxy address");
    if (hn >= sizeof p->host) return fail(err, cap, "proxy host too long");
    memcpy(p->host, h, hn);
    p->host[hn] = 0;
    for (char *q = p->host; *q; q++) *q = (char)tolower((unsigned char)*q);
    if (port) {
        size_t pn = (size_t)(s + n - port);
        long v = 0;
        if (pn == 0 || pn > 5) return fail(err, cap, "bad port in the proxy address (expected 1..65535)");
        for (size_t i = 0; i < pn; i++) {
            if (!isdigit((unsigned char)port[i])) return fail(err, cap, "bad port in the proxy address (expected 1..65535)");
            v = v * 10 + (port[i] - '0');
        }
        if (v < 1 || v > 65535) return fail(err, cap, "bad port in the proxy address (expected 1..65535)");
        p->port = (int)v;
    } else if (need_port) {
        return fail(err, cap, "the proxy address needs a port (host:port)");
    }
    return 0;
}

int mw_proxy_parse(const char *s, int default_kind, mw_proxy *p, char *err, size_t cap)
{
    memset(p, 0, sizeof *p);
    size_t n = strlen(s);
    const char *sep = strstr(s, "://");
    size_t keep = sep ? (size_t)(sep - s) + 3 : 0;   /* a trailing "/" is stripped, never "://" */
    while (n > keep && s[n - 1] == '/') n--;   /* "http://host:3128/" as curl takes it */
    int kind = default_kind;
    if (sep) {
        size_t sn = (size_t)(sep - s);
        if (sn == 4 && strncasecmp(s, "http", 4) == 0) kind = MW_PROXY_HTTP;
        else if (sn == 6 && strncasecmp(s, "socks5", 6) == 0) kind = MW_PROXY_SOCKS5;
        else if ((sn == 7 && strncasecmp(s, "socks5h", 7) == 0) || (sn == 5 && strncasecmp(s, "socks", 5) == 0))
            kind = MW_PROXY_SOCKS5H;
        else if (sn == 5 && strncasecmp(s, "https", 5) == 0)
            return fail(err, cap, "https:// proxies (TLS to the proxy) are not supported: use http://");
        else if (sn == 6 && strncasecmp(s, "socks4", 6) == 0)
            return fail(err, cap, "SOCKS4 proxies are not supported: use socks5:// or socks5h://");
        else return fail(err, cap, "unknown proxy scheme (expected http://, socks5:// or socks5h://)");
        n -= sn + 3;
        s = sep + 3;
    } else if (!kind) {
        return fail(err, cap, "no proxy scheme (expected http://, socks5:// or socks5h://)");
    }
    if (memchr(s, '/', n) || memchr(s, '?', n) || memchr(s, '#', n))
        return fail(err, cap, "a proxy address has no path");
    const char *at = NULL;
    for (size_t i = 0; i < n; i++) if (s[i] == '@') at = s + i;   /* the last one */
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        size_t un = colon ? (size_t)(colon - s) : (size_t)(at - s);
        if (pct_decode(s, un, p->user, sizeof p->user) != 0) return fail(err, cap, "bad user name in the proxy address");
        if (colon && pct_decode(colon + 1, (size_t)(at - colon - 1), p->pass, sizeof p->pass) != 0)
            return fail(err, cap, "bad password in the proxy address");
        p->has_user = 1;
        n -= (size_t)(at + 1 - s);
        s = at + 1;
    }
    p->kind = kind;
    if (parse_hostport(s, n, p, !sep, err, cap) != 0) return -1;
    if (!p->port) p->port = kind == MW_PROXY_HTTP ? 3128 : 1080;
    return 0;
}

/* ---- the environment ---- */

/* e[0..en), an address or addr/bits, against the target host (an IP literal). */
static int cidr_match(const char *e, size_t en, const char *host)
{
    char tmp[64];
    const char *slash = memchr(e, '/', en);
    size_t an = slash ? (size_t)(slash - e) : en;
    if (an == 0 || an >= sizeof tmp) return 0;
    memcpy(tmp, e, an);
    tmp[an] = 0;
    unsigned char a[16], t[16];
    int af = strchr(tmp, ':') ? AF_INET6 : AF_INET, len = af == AF_INET6 ? 16 : 4;
    if (inet_pton(af, tmp, a) != 1 || inet_pton(af, host, t) != 1) return 0;
    long bits = len * 8;
    if (slash) {
        char *end;
        bits = strtol(slash + 1, &end, 10);
        if (end != e + en || slash + 1 == end || bits < 0 || bits > len * 8) return 0;
    }
    for (int i = 0; bits > 0; i++, bits -= 8) {
        unsigned char m = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));
        if ((a[i] & m) != (t[i] & m)) return 0;
    }
    return 1;
}

/* One no_proxy entry e[0..en) against host:port. */
static int entry_match(const char *e, size_t en, const char *host, int port)
{
    if (en == 1 && e[0] == '*') return 1;
    /* a port: "host:port", "[v6]:port", "1.2.3.4:port" (a bare v6 has no port) */
    const char *colon = NULL;
    if (e[0] == '[') {
        const char *close = memchr(e, ']', en);
        if (!close) return 0;
        if (close + 1 < e + en && close[1] == ':') colon = close + 1;
        else if (close + 1 != e + en) return 0;
        if (colon && atoi(colon + 1) != port) return 0;
        return cidr_match(e + 1, (size_t)(close - e - 1), host);
    }
    const char *c1 = memchr(e, ':', en);
    if (c1 && !memchr(c1 + 1, ':', (size_t)(e + en - c1 - 1))) colon = c1;
    if (colon) {
        if (atoi(colon + 1) != port) return 0;
        en = (size_t)(colon - e);
    }
    if (en == 0) return 0;
    if (cidr_match(e, en, host)) return 1;
    if (e[0] == '.') { e++; en--; }
    if (e[0] == '*' && en > 1 && e[1] == '.') { e += 2; en -= 2; }
    size_t hn = strlen(host);
    if (hn == en) return strncasecmp(host, e, en) == 0;
    return hn > en && host[hn - en - 1] == '.' && strncasecmp(host + hn - en, e, en) == 0;
}

int mw_proxy_no_proxy_match(const char *np, const char *host, int port)
{
    const char *s = np;
    while (*s) {
        while (*s == ',' || *s == ' ' || *s == '\t') s++;
        const char *e = s;
        while (*s && *s != ',' && *s != ' ' && *s != '\t') s++;
        if (s > e && entry_match(e, (size_t)(s - e), host, port)) return 1;
    }
    return 0;
}

static const char *env2(const char *(*g)(const char *, void *), void *ud, const char *lower,
                        const char *upper, const char **var)
{
    const char *v = g(lower, ud);
    *var = lower;
    if ((!v || !*v) && upper) { v = g(upper, ud); *var = upper; }
    return v && *v ? v : NULL;
}

const char *mw_proxy_from_env(const char *(*g)(const char *, void *), void *ud, int tls,
                              const char *host, int port, const char **var)
{
    const char *np = env2(g, ud, "no_proxy", "NO_PROXY", var);
    if (np && mw_proxy_no_proxy_match(np, host, port)) return NULL;
    /* HTTP_PROXY is not read in a CGI program (REQUEST_METHOD set), where a
     * request's "Proxy:" header sets it (httpoxy), as Python's urllib does */
    const char *cgi = g("REQUEST_METHOD", ud);
    const char *v = tls ? env2(g, ud, "https_proxy", "HTTPS_PROXY", var)
                        : env2(g, ud, "http_proxy", cgi && *cgi ? NULL : "HTTP_PROXY", var);
    if (!v) v = env2(g, ud, "all_proxy", "ALL_PROXY", var);
    return v;
}
