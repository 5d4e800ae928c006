/* url: parses the connection URLs a script gives (ws, wss, tcp, text, frame).
 * Pure string work: knows no sockets, DNS, libev or Lua. */
#include "url.h"
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;
    int scheme, tls;
    uint16_t port;      /* 0: an explicit port is required */
} schemes[] = {
    {"ws", MW_SCHEME_WS, 0, 80},
    {"wss", MW_SCHEME_WSS, 1, 443},
    {"tcp", MW_SCHEME_TCP, 0, 0},
    {"text", MW_SCHEME_TEXT, 0, 0},
    {"frame", MW_SCHEME_FRAME, 0, 0},
};
#define NSCHEMES (sizeof schemes / sizeof schemes[0])

const char *mw_url_scheme_name(int scheme)
{
    for (size_t i = 0; i < NSCHEMES; i++)
        if (schemes[i].scheme == scheme) return schemes[i].name;
    return "?";
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static int is_alpha(int c) { c = lower(c); return c >= 'a' && c <= 'z'; }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_ctl(int c) { return c < 0x20 || c == 0x7f; }

/* The URL as it may appear in a message: quoted, non-printables as \xNN,
 * long ones cut, so a message stays one readable line. */
static void quote(char *dst, size_t cap, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, max = 80;
    for (size_t i = 0; i < len && i < max && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
            dst[o++] = '\\';
            dst[o++] = 'x';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        } else {
            dst[o++] = (char)c;
        }
    }
    if (len > max && o + 4 < cap) { memcpy(dst + o, "...", 3); o += 3; }
    dst[o] = 0;
}

/* Sets err to `invalid URL "<s>": <detail>`. Always returns -1. */
static int fail(char *err, size_t errcap, const char *s, size_t len, const char *fmt, ...)
{
    if (!err || !errcap) return -1;
    char q[400], detail[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    quote(q, sizeof q, s, len);
    snprintf(err, errcap, "invalid URL \"%s\": %s", q, detail);
    return -1;
}

/* A short piece of the input (host, port, scheme) quoted for a message. */
static const char *piece(char *buf, size_t cap, const char *p, size_t n)
{
    quote(buf, cap, p, n);
    return buf;
}

/* A registered name: letters, digits, '-', '_', '.'; labels 1..63 bytes; a
 * single trailing dot is allowed. A name whose last label is all digits must
 * be a valid dotted quad: "1.2.3" or "256.0.0.1" is a typo, not a name. */
static int check_name(const char *h, size_t n, int *kind, char *why, size_t whycap)
{
    char tmp[256], q[128];
    size_t label = 0;
    int last_digits = 1;
    if (n > (size_t)(253 + (n && h[n - 1] == '.'))) {
        snprintf(why, whycap, "host name too long (%zu bytes, at most 253)", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c == '.') {
            if (label == 0) {
                snprintf(why, whycap, "empty label in host \"%s\"", piece(q, sizeof q, h, n));
                return -1;
            }
            label = 0;
            if (i + 1 < n) last_digits = 1;
            continue;
        }
        if (c == ' ') {
            snprintf(why, whycap, "space in host");
            return -1;
        }
        if (c >= 0x80) {
            snprintf(why, whycap, "non-ASCII host \"%s\": write it in punycode (xn--...)",
                     piece(q, sizeof q, h, n));
            return -1;
        }
        if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_') {
            snprintf(why, whycap, "invalid character '%c' in host \"%s\"", c,
                     piece(q, sizeof q, h, n));
            return -1;
        }
        if (!is_digit(c)) last_digits = 0;
        if (++label > 63) {
            snprintf(why, whycap, "label longer than 63 bytes in host");
            return -1;
        }
    }
    if (!last_digits) { *kind = MW_HOST_NAME; return 0; }
    /* all-digit last label: must be IPv4 (also catches a trailing dot) */
    struct in_addr a4;
    memcpy(tmp, h, n);
    tmp[n] = 0;
    if (inet_pton(AF_INET, tmp, &a4) == 1) { *kind = MW_HOST_IPV4; return 0; }
    snprintf(why, whycap, "invalid IPv4 address \"%s\"", piece(q, sizeof q, h, n));
    return -1;
}

/* Bracket contents: an IPv6 address, optionally "%25zone" (RFC 6874) or the
 * common "%zone". Stored as "addr%zone". */
static int check_ipv6(const char *h, size_t n, char *out, char *why, size_t whycap)
{
    char tmp[256];
    size_t alen = n, zstart = n;
    for (size_t i = 0; i < n; i++)
        if (h[i] == '%') {
            alen = i;
            zstart = i + 1;
            if (n - zstart >= 2 && h[zstart] == '2' && h[zstart + 1] == '5') zstart += 2;
            break;
        }
    if (alen == 0 || alen >= 64) goto bad;
    struct in6_addr a6;
    char addr[64];
    memcpy(addr, h, alen);
    addr[alen] = 0;
    if (inet_pton(AF_INET6, addr, &a6) != 1) goto bad;
    if (alen < n) {
        size_t zl = n - zstart;
        if (zl == 0 || zl > 64) goto bad;
        for (size_t i = zstart; i < n; i++) {
            int c = (unsigned char)h[i];
            if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_' && c != '.' && c != '~')
                goto bad;
        }
        snprintf(out, 256, "%s%%%.*s", addr, (int)zl, h + zstart);
    } else {
        memcpy(out, addr, alen + 1);
    }
    return 0;
bad:
    snprintf(why, whycap, "invalid IPv6 address \"%s\"", piece(tmp, sizeof tmp, h, n));
    return -1;
}

static int needs_escape(unsigned char c)
{
    return c == ' ' || c == '"' || c == '<' || c == '>' || c >= 0x80;
}

static int parse(const char *s, size_t len, mw_url *out, char *err, size_t errcap)
{
    char why[300], tmp[128];

    for (size_t i = 0; i < len; i++)
        if (is_ctl((unsigned char)s[i]))
            return fail(err, errcap, s, len, "control character (byte 0x%02x) at offset %zu",
                        (unsigned char)s[i], i);

    /* scheme "://" */
    size_t i = 0;
    while (i < len && (is_alpha(s[i]) || (i > 0 && (is_digit(s[i]) || s[i] == '+' ||
                                                    s[i] == '-' || s[i] == '.'))))
        i++;
    if (i + 3 > len || memcmp(s + i, "://", 3) != 0)
        return fail(err, errcap, s, len, "missing \"://\"");
    if (i == 0) return fail(err, errcap, s, len, "missing scheme before \"://\"");
    size_t slen = i;
    const char *scheme = s;
    int si = -1;
    for (size_t k = 0; k < NSCHEMES; k++) {
        if (strlen(schemes[k].name) != slen) continue;
        size_t j = 0;
        while (j < slen && lower(scheme[j]) == schemes[k].name[j]) j++;
        if (j == slen) { si = (int)k; break; }
    }
    if (si < 0) {
        char lo[32];
        size_t n = slen < sizeof lo - 1 ? slen : sizeof lo - 1;
        for (size_t j = 0; j < n; j++) lo[j] = (char)lower(scheme[j]);
        lo[n] = 0;
        int tls_word = !strcmp(lo, "ssl") || !strcmp(lo, "tls");
        return fail(err, errcap, s, len, "unsupported scheme \"%s\" (expected ws, wss, tcp, text, frame%s)",
                    piece(tmp, sizeof tmp, scheme, slen),
                    tls_word ? "; TLS is the transport property: conn.transport = \"ssl\"" : "");
    }
    i += 3;

    /* authority: up to the first '/', '?' or '#' */
    size_t a0 = i;
    while (i < len && s[i] != '/' && s[i] != '?' && s[i] != '#') i++;
    size_t a1 = i;
    for (size_t k = a0; k < a1; k++)
        if (s[k] == '@')
            return fail(err, errcap, s, len,
                        "credentials (user@host) are not supported; send them in a header");
    if (a0 == a1) return fail(err, errcap, s, len, "missing host");

    size_t h0 = a0, h1, p0 = 0;   /* p0: index of the port's first digit, 0 = no ':' */
    int have_colon = 0;
    if (s[a0] == '[') {
        size_t k = a0 + 1;
        while (k < a1 && s[k] != ']') k++;
        if (k == a1) return fail(err, errcap, s, len, "unterminated IPv6 literal (missing ']')");
        h0 = a0 + 1;
        h1 = k;
        if (h0 == h1) return fail(err, errcap, s, len, "empty IPv6 literal \"[]\"");
        if (check_ipv6(s + h0, h1 - h0, out->host, why, sizeof why) < 0)
            return fail(err, errcap, s, len, "%s", why);
        out->host_kind = MW_HOST_IPV6;
        k++;
        if (k < a1) {
            if (s[k] != ':')
                return fail(err, errcap, s, len, "unexpected \"%s\" after IPv6 literal",
                            piece(tmp, sizeof tmp, s + k, a1 - k));
            have_colon = 1;
            p0 = k + 1;
        }
    } else {
        size_t k = a0, colons = 0, first = a1;
        for (; k < a1; k++)
            if (s[k] == ':') { if (!colons++) first = k; }
        if (colons > 1) {
            int v6ish = 1;
            for (size_t j = a0; j < a1; j++) {
                int c = lower(s[j]);
                if (!is_digit(c) && !(c >= 'a' && c <= 'f') && c != ':' && c != '.') v6ish = 0;
            }
            if (v6ish)
                return fail(err, errcap, s, len,
                            "an IPv6 address must be in brackets, e.g. ws://[::1]:9001/");
            /* "host:80:90": the port check below reports "80:90" */
        }
        if (s[a0] == ']')
            return fail(err, errcap, s, len, "unexpected ']' in host");
        h1 = first;
        if (h0 == h1) return fail(err, errcap, s, len, "missing host");
        if (colons) { have_colon = 1; p0 = first + 1; }
        for (size_t j = h0; j < h1; j++)
            if (s[j] == '[' || s[j] == ']')
                return fail(err, errcap, s, len, "unexpected '%c' in host", s[j]);
        if (check_name(s + h0, h1 - h0, &out->host_kind, why, sizeof why) < 0)
            return fail(err, errcap, s, len, "%s", why);
        for (size_t j = h0; j < h1; j++) out->host[j - h0] = (char)lower(s[j]);
        out->host[h1 - h0] = 0;
    }

    if (have_colon) {
        if (p0 == a1) return fail(err, errcap, s, len, "empty port after ':'");
        unsigned long v = 0;
        size_t j = p0;
        while (j < a1 && is_digit(s[j]) && v <= 65535) v = v * 10 + (unsigned long)(s[j++] - '0');
        if (j != a1 || v == 0 || v > 65535)
            return fail(err, errcap, s, len, "invalid port \"%s\" (expected 1..65535)",
                        piece(tmp, sizeof tmp, s + p0, a1 - p0));
        out->port = (uint16_t)v;
        out->port_given = 1;
    } else if (schemes[si].port) {
        out->port = schemes[si].port;
    } else {
        return fail(err, errcap, s, len, "missing port (%s:// needs one, e.g. %s://host:1234)",
                    schemes[si].name, schemes[si].name);
    }

    /* path and query, fragment dropped */
    size_t q0 = a1, q1 = a1;
    while (q1 < len && s[q1] != '#') q1++;
    size_t need = 1 + 1;   /* a leading '/' we may add, NUL */
    for (size_t j = q0; j < q1; j++) need += needs_escape((unsigned char)s[j]) ? 3 : 1;
    char *p = malloc(need);
    if (!p) {
        if (err && errcap) snprintf(err, errcap, "out of memory");
        return -1;
    }
    size_t o = 0;
    if (q0 == q1 || s[q0] != '/') p[o++] = '/';
    for (size_t j = q0; j < q1; j++) {
        unsigned char c = (unsigned char)s[j];
        if (needs_escape(c)) {
            static const char hex[] = "0123456789ABCDEF";
            p[o++] = '%';
            p[o++] = hex[c >> 4];
            p[o++] = hex[c & 15];
        } else {
            p[o++] = (char)c;
        }
    }
    p[o] = 0;

    out->scheme = schemes[si].scheme;
    out->tls = schemes[si].tls;
    out->path = p;
    return 0;
}

int mw_url_parse(const char *s, size_t len, mw_url *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    if (err && errcap) err[0] = 0;
    if (!s) { s = ""; len = 0; }
    if (parse(s, len, out, err, errcap) == 0) return 0;
    mw_url_free(out);
    memset(out, 0, sizeof *out);
    return -1;
}

void mw_url_free(mw_url *u)
{
    if (!u) return;
    free(u->path);
    u->path = NULL;
}

int mw_url_authority(const mw_url *u, char *buf, size_t cap)
{
    uint16_t def = 0;
    for (size_t i = 0; i < NSCHEMES; i++)
        if (schemes[i].scheme == u->scheme) def = schemes[i].port;
    int show_port = u->port != def;
    if (u->host_kind == MW_HOST_IPV6) {
        const char *z = strchr(u->host, '%');
        int n = z ? (int)(z - u->host) : (int)strlen(u->host);
        return show_port ? snprintf(buf, cap, "[%.*s]:%u", n, u->host, u->port)
                         : snprintf(buf, cap, "[%.*s]", n, u->host);
    }
    return show_port ? snprintf(buf, cap, "%s:%u", u->host, u->port)
                     : snprintf(buf, cap, "%s", u->host);
}

int mw_url_resolve(const mw_url *base, const char *ref, char *out, size_t cap, char *err, size_t errcap)
{
    static const struct { const char *pre; const char *as; } abs[] = {
        { "ws://", "ws://" }, { "wss://", "wss://" }, { "http://", "ws://" }, { "https://", "wss://" },
    };
    const char *scheme = base->scheme == MW_SCHEME_WSS ? "wss://" : "ws://";
    int n;
    for (size_t i = 0; i < sizeof abs / sizeof abs[0]; i++) {
        size_t pl = strlen(abs[i].pre);
        if (strncasecmp(ref, abs[i].pre, pl) == 0) {
            n = snprintf(out, cap, "%s%s", abs[i].as, ref + pl);
            goto done;
        }
    }
    const char *colon = strchr(ref, ':'), *slash = strchr(ref, '/');
    if (colon && (!slash || colon < slash) && colon > ref) {
        snprintf(err, errcap, "it is not a ws, wss, http or https URL");
        return -1;
    }
    if (ref[0] == '/' && ref[1] == '/') {
        n = snprintf(out, cap, "%s%s", scheme, ref + 2);
        goto done;
    }
    char auth[300];
    mw_url_authority(base, auth, sizeof auth);
    if (ref[0] == '/') {
        n = snprintf(out, cap, "%s%s%s", scheme, auth, ref);
    } else {
        /* the directory of base's path (without its query) */
        const char *p = base->path && base->path[0] == '/' ? base->path : "/";
        size_t pn = strcspn(p, "?");
        while (pn > 1 && p[pn - 1] != '/') pn--;   /* p[0] is '/' */
        n = snprintf(out, cap, "%s%s%.*s%s", scheme, auth, (int)pn, p, ref);
    }
done:
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, errcap, "the URL is too long");
        return -1;
    }
    return 0;
}
