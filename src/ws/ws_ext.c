/* ws_ext: permessage-deflate negotiation (RFC 7692): the offer, the strict judge of the answer.
 * Knows no socket, loop, TLS or Lua, no zlib and no frame bits (ws_deflate.c compresses). */
#include "ws_ext.h"
#include "ws_http.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PMD "permessage-deflate"

enum { HAVE_SNCT = 1, HAVE_CNCT = 2, HAVE_SMWB = 4, HAVE_CMWB = 8 };

static int say(char *msg, size_t cap, int err, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int say(char *msg, size_t cap, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cap) vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return err;
}

/* ---- options and the offer ------------------------------------------------ */

static int bits_ok(int b) { return b == 0 || (b >= 8 && b <= 15); }

int ws_ext_check(const ws_deflate_opts *o, char *msg, size_t cap)
{
    if (!bits_ok(o->client_max_window_bits) && o->client_max_window_bits != -1)
        return say(msg, cap, WS_EXT_OPTION, "permessage-deflate client_max_window_bits=%d is not -1, 0 or 8..15",
                   o->client_max_window_bits);
    if (!bits_ok(o->server_max_window_bits))
        return say(msg, cap, WS_EXT_OPTION, "permessage-deflate server_max_window_bits=%d is not 0 or 8..15",
                   o->server_max_window_bits);
    if (o->level < -1 || o->level > 9)
        return say(msg, cap, WS_EXT_OPTION, "permessage-deflate level=%d is not -1..9", o->level);
    if (o->mem_level < 0 || o->mem_level > 9)
        return say(msg, cap, WS_EXT_OPTION, "permessage-deflate mem_level=%d is not 0..9", o->mem_level);
    return 0;
}

int ws_ext_offer(const ws_deflate_opts *o, char *out, size_t cap)
{
    char cm[48] = "", sm[48] = ""; /* room for any int: the options are checked, the compiler cannot know */
    if (o->client_max_window_bits > 0)
        snprintf(cm, sizeof cm, "; client_max_window_bits=%d", o->client_max_window_bits);
    else if (o->client_max_window_bits == 0)
        snprintf(cm, sizeof cm, "; client_max_window_bits");
    if (o->server_max_window_bits)
        snprintf(sm, sizeof sm, "; server_max_window_bits=%d", o->server_max_window_bits);
    int n = snprintf(out, cap, PMD "%s%s%s%s", cm, sm,
                     o->client_no_context_takeover ? "; client_no_context_takeover" : "",
                     o->server_no_context_takeover ? "; server_no_context_takeover" : "");
    return n < 0 || (size_t)n >= cap ? WS_EXT_SPACE : n;
}

/* ---- the answer ------------------------------------------------------------ */

void ws_ext_answer_init(ws_ext_answer *a, const ws_deflate_opts *offer)
{
    memset(a, 0, sizeof *a);
    a->offer = offer;
}

/* A window value: 1*DIGIT without a leading zero (RFC 7692 7.1.2.1), 8..15.
 * Returns it, -1 when not such a number, -2 when out of range. */
static int window_value(const char *v, size_t n)
{
    if (!n || v[0] == '0') return -1;
    int x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        if (x < 100) x = x * 10 + (v[i] - '0');
    }
    return x >= 8 && x <= 15 ? x : -2;
}

/* One parameter of the permessage-deflate answer: name[0..nn), its value
 * v[0..vn) when hasv (already unescaped). */
static int param(ws_ext_answer *a, const char *name, size_t nn, int hasv, const char *v, size_t vn,
                 char *msg, size_t cap)
{
    char qn[200], qv[200];
    static const struct { const char *name; unsigned bit; } names[] = {
        { "server_no_context_takeover", HAVE_SNCT }, { "client_no_context_takeover", HAVE_CNCT },
        { "server_max_window_bits", HAVE_SMWB }, { "client_max_window_bits", HAVE_CMWB },
    };
    unsigned bit = 0;
    const char *pn = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (ws_http_ieq(name, nn, names[i].name)) { bit = names[i].bit; pn = names[i].name; }
    if (!bit)
        return say(msg, cap, WS_EXT_PARAM, PMD ": unknown parameter \"%s\"", ws_http_quote(qn, sizeof qn, name, nn));
    if (a->have & bit)
        return say(msg, cap, WS_EXT_PARAM, PMD ": parameter %s appears twice", pn);
    a->have |= bit;
    if (bit == HAVE_SNCT || bit == HAVE_CNCT) {
        if (hasv)
            return say(msg, cap, WS_EXT_PARAM, PMD ": %s takes no value (got \"%s\")", pn,
                       ws_http_quote(qv, sizeof qv, v, vn));
        if (bit == HAVE_SNCT) a->p.server_no_context_takeover = 1;
        else a->p.client_no_context_takeover = 1;
        return 0;
    }
    int offered = bit == HAVE_SMWB ? a->offer->server_max_window_bits : a->offer->client_max_window_bits;
    if (bit == HAVE_CMWB && offered < 0)
        return say(msg, cap, WS_EXT_PARAM, PMD ": client_max_window_bits in the answer, but it was not offered");
    if (!hasv)
        return say(msg, cap, WS_EXT_PARAM, PMD ": %s needs a value in an answer", pn);
    int w = window_value(v, vn);
    if (w == -1)
        return say(msg, cap, WS_EXT_PARAM, PMD ": %s=\"%s\" is not a decimal number without leading zeros",
                   pn, ws_http_quote(qv, sizeof qv, v, vn));
    if (w == -2)
        return say(msg, cap, WS_EXT_PARAM, PMD ": %s=%s is out of 8..15", pn, ws_http_quote(qv, sizeof qv, v, vn));
    if (offered > 0 && w > offered)
        return say(msg, cap, WS_EXT_PARAM, PMD ": %s=%d is larger than the %d offered", pn, w, offered);
    if (bit == HAVE_SMWB) a->p.server_max_window_bits = w;
    else a->p.client_max_window_bits = w;
    return 0;
}

typedef struct cursor { const char *p; size_t n, i; } cursor;

static void ows(cursor *c)
{
    while (c->i < c->n && (c->p[c->i] == ' ' || c->p[c->i] == '\t')) c->i++;
}

static size_t token(cursor *c)
{
    size_t b = c->i;
    while (c->i < c->n && ws_http_tchar((unsigned char)c->p[c->i])) c->i++;
    return c->i - b;
}

static int syntax(cursor *c, char *msg, size_t cap, const char *what)
{
    char qv[200];
    return say(msg, cap, WS_EXT_SYNTAX, "Sec-WebSocket-Extensions \"%s\" is malformed at byte %zu: %s",
               ws_http_quote(qv, sizeof qv, c->p, c->n), c->i + 1, what);
}

/* A quoted-string at c (on its DQUOTE), unescaped into out[0..cap).
 * Returns its unescaped length, or -1 when malformed. A value longer than
 * cap keeps its first cap bytes: a window value is judged on those. */
static long quoted_string(cursor *c, char *out, size_t cap)
{
    size_t o = 0;
    c->i++;
    while (c->i < c->n) {
        unsigned char ch = (unsigned char)c->p[c->i];
        if (ch == '"') { c->i++; return (long)o; }
        if (ch == '\\') {
            if (++c->i == c->n) return -1;
            ch = (unsigned char)c->p[c->i];
            if (ch != '\t' && (ch < 0x20 || ch == 0x7f)) return -1;
        } else if (ch != '\t' && (ch < 0x20 || ch == 0x7f)) {
            return -1;
        }
        if (o < cap) out[o] = (char)ch;
        o++;
        c->i++;
    }
    return -1;
}

/* The parameters after the name, up to the end of this list element. */
static int params(ws_ext_answer *a, cursor *c, char *msg, size_t cap)
{
    for (;;) {
        ows(c);
        if (c->i == c->n) return 0;
        if (c->p[c->i] == ',') { c->i++; return 0; }
        if (c->p[c->i] != ';') return syntax(c, msg, cap, "expected \";\" or \",\"");
        c->i++;
        ows(c);
        const char *name = c->p + c->i;
        size_t nn = token(c);
        if (!nn) return syntax(c, msg, cap, "expected a parameter name");
        ows(c);
        int hasv = 0;
        char buf[64];
        const char *v = NULL;
        size_t vn = 0;
        if (c->i < c->n && c->p[c->i] == '=') {
            c->i++;
            ows(c);
            hasv = 1;
            if (c->i < c->n && c->p[c->i] == '"') {
                long qn = quoted_string(c, buf, sizeof buf);
                if (qn < 0) return syntax(c, msg, cap, "unterminated or invalid quoted value");
                v = buf;
                vn = (size_t)qn < sizeof buf ? (size_t)qn : sizeof buf;
                /* RFC 6455 9.1: the unescaped value must be a token. */
                for (size_t i = 0; i < vn; i++)
                    if (!ws_http_tchar((unsigned char)v[i])) vn = 0;
                if (!vn) return syntax(c, msg, cap, "a quoted value that is not a token");
            } else {
                v = c->p + c->i;
                vn = token(c);
                if (!vn) return syntax(c, msg, cap, "expected a parameter value");
            }
        }
        int e = param(a, name, nn, hasv, v, vn, msg, cap);
        if (e) return e;
    }
}

int ws_ext_answer_field(ws_ext_answer *a, const char *v, size_t n, char *msg, size_t cap)
{
    cursor c = { v, n, 0 };
    int elements = 0;
    a->fields++;
    for (;;) {
        ows(&c);
        if (c.i == c.n) break;
        if (v[c.i] == ',') { c.i++; continue; }   /* an empty element */
        const char *name = v + c.i;
        size_t nn = token(&c);
        if (!nn) return syntax(&c, msg, cap, "expected an extension name");
        elements++;
        if (!ws_http_ieq(name, nn, PMD)) {
            char qn[200];
            return say(msg, cap, WS_EXT_UNKNOWN, "server chose extension \"%s\" that was not offered",
                       ws_http_quote(qn, sizeof qn, name, nn));
        }
        if (a->seen)
            return say(msg, cap, WS_EXT_DUPLICATE, PMD " appears more than once in the answer");
        a->seen = 1;
        int e = params(a, &c, msg, cap);
        if (e) return e;
    }
    if (!elements) return syntax(&c, msg, cap, "no extension in the field");
    return 0;
}

int ws_ext_answer_finish(ws_ext_answer *a, ws_deflate_params *out, char *msg, size_t cap)
{
    memset(out, 0, sizeof *out);
    if (!a->seen) return 0;
    const ws_deflate_opts *o = a->offer;
    if (o->server_no_context_takeover && !(a->have & HAVE_SNCT))
        return say(msg, cap, WS_EXT_PARAM, PMD ": server_no_context_takeover was offered, the answer lacks it");
    if (o->server_max_window_bits && !(a->have & HAVE_SMWB))
        return say(msg, cap, WS_EXT_PARAM, PMD ": server_max_window_bits=%d was offered, the answer lacks it",
                   o->server_max_window_bits);
    *out = a->p;
    out->agreed = 1;
    if (!(a->have & HAVE_SMWB)) out->server_max_window_bits = 15;
    /* Silent: we may use up to 15, but never more than we offered. */
    if (!(a->have & HAVE_CMWB))
        out->client_max_window_bits = o->client_max_window_bits > 0 ? o->client_max_window_bits : 15;
    out->client_no_context_takeover |= o->client_no_context_takeover ? 1 : 0;
    return 0;
}

int ws_ext_format(const ws_deflate_params *p, char *out, size_t cap)
{
    if (!p->agreed) {
        if (cap) out[0] = 0;
        return 0;
    }
    int n = snprintf(out, cap, PMD "; server_max_window_bits=%d; client_max_window_bits=%d%s%s",
                     p->server_max_window_bits, p->client_max_window_bits,
                     p->server_no_context_takeover ? "; server_no_context_takeover" : "",
                     p->client_no_context_takeover ? "; client_no_context_takeover" : "");
    return n < 0 || (size_t)n >= cap ? WS_EXT_SPACE : n;
}
