/* ws_handshake: the opening handshake: the request (validated, written), the 101 judged.
 * Knows no socket, loop, TLS or Lua, and no frame bits (the queued frames are ws_send.c's). */
#include "ws_client_int.h"
#include "ws_http.h"
#include "../crypto.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_HEADERS 100

/* ---- opening handshake request ------------------------------------------ */

static int has_ctl(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\r' || p[i] == '\n' || p[i] == 0) return 1;
    return 0;
}

static int is_token(const char *p, size_t n)
{
    if (!n) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!ws_http_tchar(c)) return 0;
    }
    return 1;
}

/* Headers the engine owns: a user copy would contradict the handshake. */
static int reserved_header(const char *p, size_t n)
{
    static const char *const names[] = {
        "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version",
        "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (ws_http_ieq(p, n, names[i])) return 1;
    return 0;
}

static int user_has(const ws_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (ws_http_ieq(req->headers[i].name, req->headers[i].name_len, name)) return 1;
    return 0;
}

static int add(mw_buf *b, const char *p, size_t n) { return mw_buf_append(b, p, n); }
static int adds(mw_buf *b, const char *s) { return mw_buf_append(b, s, strlen(s)); }

/* A request field was refused: say which in msg. Returns WS_E_HEADER. */
static int bad_field(char *msg, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad_field(char *msg, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return WS_E_HEADER;
}

int ws_request_check(const ws_request *req, char *msg, size_t cap)
{
    char q[256];
    if (!req->host || !req->host_len || has_ctl(req->host, req->host_len) ||
        memchr(req->host, ' ', req->host_len) || memchr(req->host, '/', req->host_len))
        return bad_field(msg, cap, "host \"%s\" is empty or has a CR, LF, NUL, space or slash",
                         req->host ? ws_http_quote(q, sizeof q, req->host, req->host_len) : "");
    if (req->port < 0 || req->port > 65535) return bad_field(msg, cap, "port %d is out of range", req->port);
    if (req->path_len) {
        if (req->path[0] != '/')
            return bad_field(msg, cap, "path \"%s\" does not start with /", ws_http_quote(q, sizeof q, req->path, req->path_len));
        for (size_t i = 0; i < req->path_len; i++) {
            unsigned char c = (unsigned char)req->path[i];
            if (c <= 0x20 || c == 0x7f)
                return bad_field(msg, cap, "path \"%s\" has a space or control character",
                                 ws_http_quote(q, sizeof q, req->path, req->path_len));
        }
    }
    if (req->origin && has_ctl(req->origin, req->origin_len))
        return bad_field(msg, cap, "websocketOrigin has a CR, LF or NUL");
    if (req->protocols) {
        /* A comma-separated list of tokens. */
        const char *p = req->protocols;
        size_t n = req->protocols_len, i = 0;
        if (!n) return bad_field(msg, cap, "websocketClientProtocol is empty");
        while (i <= n) {
            size_t b = i;
            while (i < n && p[i] != ',') i++;
            size_t e = i;
            while (b < e && (p[b] == ' ' || p[b] == '\t')) b++;
            while (e > b && (p[e - 1] == ' ' || p[e - 1] == '\t')) e--;
            if (!is_token(p + b, e - b))
                return bad_field(msg, cap, "websocketClientProtocol \"%s\" is not a comma-separated list of tokens",
                                 ws_http_quote(q, sizeof q, p, n));
            i++;
        }
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        const ws_header *h = &req->headers[i];
        if (!h->name || !is_token(h->name, h->name_len))
            return bad_field(msg, cap, "header \"%s\" is not a valid header name",
                             h->name ? ws_http_quote(q, sizeof q, h->name, h->name_len) : "");
        if (reserved_header(h->name, h->name_len))
            return bad_field(msg, cap, "header \"%s\" is set by the WebSocket handshake itself",
                             ws_http_quote(q, sizeof q, h->name, h->name_len));
        if (h->value_len && (!h->value || has_ctl(h->value, h->value_len)))
            return bad_field(msg, cap, "header \"%s\" has a CR, LF or NUL in its value",
                             ws_http_quote(q, sizeof q, h->name, h->name_len));
        if (!h->value && ws_http_ieq(h->name, h->name_len, "Host"))
            return bad_field(msg, cap, "header \"%s\" cannot be left out: the handshake needs a Host",
                             ws_http_quote(q, sizeof q, h->name, h->name_len));
    }
    if (req->user_agent && has_ctl(req->user_agent, req->user_agent_len))
        return bad_field(msg, cap, "the User-Agent has a CR, LF or NUL");
    return 0;
}

int ws_client_start(ws_client *ws, const ws_request *req, mw_buf *out)
{
    if (ws->started) return WS_E_STATE;
    /* Validate everything before writing anything. */
    int e = ws_request_check(req, ws->errmsg, sizeof ws->errmsg);
    if (e) return e;
    char offer[160] = "";
    if (ws->cfg.deflate.enabled) {
        if (ws_ext_check(&ws->cfg.deflate, ws->errmsg, sizeof ws->errmsg)) return WS_E_BAD_OPTION;
        if (ws_ext_offer(&ws->cfg.deflate, offer, sizeof offer) < 0) return WS_E_BAD_OPTION;
    }

    unsigned char key[16];
    char key64[32], cat[64];
    unsigned char sha[20];
    if (ws_random(ws, key, sizeof key) != 0) return WS_E_RANDOM;
    mw_base64_encode(key, sizeof key, key64, sizeof key64);      /* 24 chars */
    memcpy(cat, key64, 24);
    memcpy(cat + 24, WS_GUID, 36);
    mw_sha1(cat, 60, sha);
    mw_base64_encode(sha, sizeof sha, ws->accept, sizeof ws->accept); /* 28 chars */

    if (req->protocols) {
        ws->protocols = malloc(req->protocols_len);
        if (!ws->protocols) return WS_E_NOMEM;
        memcpy(ws->protocols, req->protocols, req->protocols_len);
        ws->protocols_len = req->protocols_len;
    }

    size_t mark = out->len;
    int r = 0;
    char port[16];
    int defport = req->secure ? 443 : 80;
    int v6 = memchr(req->host, ':', req->host_len) && req->host[0] != '[';
    r |= adds(out, "GET ");
    r |= req->path_len ? add(out, req->path, req->path_len) : adds(out, "/");
    r |= adds(out, " HTTP/1.1\r\n");
    if (!user_has(req, "Host")) {
        r |= adds(out, v6 ? "Host: [" : "Host: ");
        r |= add(out, req->host, req->host_len);
        if (v6) r |= adds(out, "]");
        if (req->port && req->port != defport) {
            snprintf(port, sizeof port, ":%d", req->port);
            r |= adds(out, port);
        }
        r |= adds(out, "\r\n");
    }
    r |= adds(out, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    r |= add(out, key64, 24);
    r |= adds(out, "\r\nSec-WebSocket-Version: 13\r\n");
    if (req->origin && !user_has(req, "Origin")) {
        r |= adds(out, "Origin: ");
        r |= add(out, req->origin, req->origin_len);
        r |= adds(out, "\r\n");
    }
    if (req->protocols) {
        r |= adds(out, "Sec-WebSocket-Protocol: ");
        r |= add(out, req->protocols, req->protocols_len);
        r |= adds(out, "\r\n");
    }
    if (offer[0]) {
        r |= adds(out, "Sec-WebSocket-Extensions: ");
        r |= adds(out, offer);
        r |= adds(out, "\r\n");
    }
    if (req->user_agent && !user_has(req, "User-Agent")) {
        r |= adds(out, "User-Agent: ");
        r |= add(out, req->user_agent, req->user_agent_len);
        r |= adds(out, "\r\n");
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        const ws_header *h = &req->headers[i];
        if (!h->value) continue;   /* "send none of it" */
        r |= add(out, h->name, h->name_len);
        r |= adds(out, ": ");
        r |= add(out, h->value, h->value_len);
        r |= adds(out, "\r\n");
    }
    r |= adds(out, "\r\n");
    if (r) {
        out->len = mark;   /* content before mark is untouched by appends */
        free(ws->protocols);
        ws->protocols = NULL;
        return WS_E_NOMEM;
    }
    ws->started = 1;
    return 0;
}

/* ---- opening handshake response ----------------------------------------- */

/* Whether v[0..n) is exactly one of the offered subprotocols. */
static int offered(const ws_client *ws, const char *v, size_t n)
{
    const char *p = ws->protocols;
    size_t len = ws->protocols_len, i = 0;
    if (!p || !n) return 0;
    while (i < len) {
        size_t b = i;
        while (i < len && p[i] != ',') i++;
        size_t e = i;
        while (b < e && (p[b] == ' ' || p[b] == '\t')) b++;
        while (e > b && (p[e - 1] == ' ' || p[e - 1] == '\t')) e--;
        if (e - b == n && memcmp(p + b, v, n) == 0) return 1;  /* case-sensitive */
        i++;
    }
    return 0;
}

static int clip(size_t n) { return n > 200 ? 200 : (int)n; }

/* A Retry-After value worth repeating: delay-seconds, or an HTTP-date
 * ("Wed, 21 Oct 2015 07:28:00 GMT"). Anything else is not echoed: a
 * hostile server could reflect the request's secrets into it. */
static int retry_after_ok(const char *v, size_t n)
{
    size_t digits = 0;
    while (digits < n && v[digits] >= '0' && v[digits] <= '9') digits++;
    if (n && n <= 10 && digits == n) return 1;
    if (n != 29 || memcmp(v + 25, " GMT", 4) != 0) return 0;
    for (size_t i = 0; i < 25; i++) {
        unsigned char c = (unsigned char)v[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              c == ' ' || c == ',' || c == ':'))
            return 0;
    }
    return 1;
}

/* A status other than 101: fail naming the status line, plus Retry-After
 * when the whole head is already at hand (a server writes it in one go);
 * the refusal is not held back waiting for it. */
static long refused(ws_client *ws, const char *data, size_t len, const ws_http_response *st)
{
    char extra[64] = "";
    ws_http_header hv[WS_MAX_HEADERS];
    ws_http_response r;
    memset(&r, 0, sizeof r);
    r.headers = hv;
    r.max_headers = WS_MAX_HEADERS;
    ws->refused_status = st->status;
    ws->retry_after = -1;
    size_t end = ws_http_head_end(data, len, 0);
    if (end && end <= WS_HTTP_MAX_HEAD && ws_http_parse_response(data, end, WS_HTTP_MAX_HEAD, &r) == (long)end)
        for (size_t i = 0; i < r.num_headers; i++) {
            if (ws_http_ieq(hv[i].name, hv[i].name_len, "Location") && !ws->location && hv[i].value_len &&
                !memchr(hv[i].value, 0, hv[i].value_len))
                ws->location = strndup(hv[i].value, hv[i].value_len);
            if (ws_http_ieq(hv[i].name, hv[i].name_len, "Retry-After") &&
                retry_after_ok(hv[i].value, hv[i].value_len)) {
                snprintf(extra, sizeof extra, " (Retry-After: %.*s)", (int)hv[i].value_len, hv[i].value);
                if (hv[i].value[0] >= '0' && hv[i].value[0] <= '9') ws->retry_after = strtol(hv[i].value, NULL, 10);
            }
        }
    return ws_fail(ws, NULL, WS_E_HS_STATUS, 0, "handshake failed: %.*s%s",
                   clip(st->status_line_len), st->status_line, extra);
}

/* The answer's Sec-WebSocket-Extensions was refused (WS_EXT_*, msg: why). */
static long ext_failed(ws_client *ws, int e, const char *msg)
{
    int err = e == WS_EXT_UNKNOWN ? WS_E_HS_EXTENSION
            : e == WS_EXT_SYNTAX ? WS_E_HS_EXT_SYNTAX
            : e == WS_EXT_DUPLICATE ? WS_E_HS_EXT_DUPLICATE : WS_E_HS_EXT_PARAM;
    return ws_fail(ws, NULL, err, 0, "handshake failed: %s", msg);
}

/* Both directions' streams from what was agreed; nothing is allocated
 * until a compressed message needs it. */
static void pmd_setup(ws_client *ws)
{
    const ws_deflate_opts *o = &ws->cfg.deflate;
    int level = o->level > 0 ? o->level : WS_DEFLATE_LEVEL_DEFAULT;
    int mem = o->mem_level ? o->mem_level : WS_DEFLATE_MEM_DEFAULT;
    /* An agreed window of 8 is never compressed with (ws_ext.h); the
     * deflater is set up with 9 only so that its fields stay valid. */
    int cw = ws->pmd.client_max_window_bits < 9 ? 9 : ws->pmd.client_max_window_bits;
    ws_deflater_setup(&ws->tx, cw, level, mem, ws->pmd.client_no_context_takeover, &ws->zc);
    ws_inflater_setup(&ws->rx, ws->pmd.server_max_window_bits, ws->pmd.server_no_context_takeover,
                      &ws->zc);
}

long ws_handshake_response(ws_client *ws, const char *data, size_t len, mw_buf *out, int *cb)
{
    ws_http_response r;
    memset(&r, 0, sizeof r);
    if (!ws->hs_status_ok) {
        /* Judge the status line as soon as it is complete: a refusal is
         * reported without waiting for (or reading) the rest. */
        long st = ws_http_parse_status(data, len, WS_HTTP_MAX_HEAD, &r);
        if (st == WS_HTTP_ETOOLARGE)
            return ws_fail(ws, NULL, WS_E_HS_TOO_LARGE, 0,
                           "handshake failed: response head exceeds %d bytes", WS_HTTP_MAX_HEAD);
        if (st < 0)
            return ws_fail(ws, NULL, WS_E_HS_MALFORMED, 0,
                           "handshake failed: malformed HTTP response");
        if (st == 0) {
            ws->hs_scan = len;
            return 0;
        }
        if (r.status != 101) return refused(ws, data, len, &r);
        if (r.minor_version != 1)
            return ws_fail(ws, NULL, WS_E_HS_MALFORMED, 0,
                           "handshake failed: 101 response is not HTTP/1.1");
        ws->hs_status_ok = 1;
    }
    size_t end = ws_http_head_end(data, len, ws->hs_scan);
    if (!end || end > WS_HTTP_MAX_HEAD) {
        if (len >= WS_HTTP_MAX_HEAD)
            return ws_fail(ws, NULL, WS_E_HS_TOO_LARGE, 0,
                           "handshake failed: response head exceeds %d bytes", WS_HTTP_MAX_HEAD);
        ws->hs_scan = len;
        return 0;
    }
    ws_http_header hv[WS_MAX_HEADERS];
    r.headers = hv;
    r.max_headers = WS_MAX_HEADERS;
    long n = ws_http_parse_response(data, end, WS_HTTP_MAX_HEAD, &r);
    if (n == WS_HTTP_ETOOMANY)
        return ws_fail(ws, NULL, WS_E_HS_TOO_LARGE, 0,
                       "handshake failed: more than %d header fields", WS_MAX_HEADERS);
    if (n != (long)end)
        return ws_fail(ws, NULL, WS_E_HS_MALFORMED, 0, "handshake failed: malformed HTTP response");

    int upgrade = 0, connection = 0, accept = 0;
    const char *sp = NULL;
    size_t sp_len = 0;
    ws_ext_answer ext;
    ws_ext_answer_init(&ext, &ws->cfg.deflate);
    for (size_t i = 0; i < r.num_headers; i++) {
        const ws_http_header *h = &hv[i];
        if (ws_http_ieq(h->name, h->name_len, "Upgrade")) {
            if (!ws_http_ieq(h->value, h->value_len, "websocket"))
                return ws_fail(ws, NULL, WS_E_HS_UPGRADE, 0,
                               "handshake failed: Upgrade is \"%.*s\", not websocket",
                               clip(h->value_len), h->value);
            upgrade = 1;
        } else if (ws_http_ieq(h->name, h->name_len, "Connection")) {
            if (ws_http_list_has(h->value, h->value_len, "upgrade")) connection = 1;
        } else if (ws_http_ieq(h->name, h->name_len, "Sec-WebSocket-Accept")) {
            if (accept || h->value_len != 28 || memcmp(h->value, ws->accept, 28) != 0)
                return ws_fail(ws, NULL, WS_E_HS_ACCEPT, 0,
                               "handshake failed: invalid Sec-WebSocket-Accept");
            accept = 1;
        } else if (ws_http_ieq(h->name, h->name_len, "Sec-WebSocket-Extensions")) {
            if (!ws->cfg.deflate.enabled)
                return ws_fail(ws, NULL, WS_E_HS_EXTENSION, 0,
                               "handshake failed: server chose extension \"%.*s\" that was not offered",
                               clip(h->value_len), h->value);
            char m[256];
            int e = ws_ext_answer_field(&ext, h->value, h->value_len, m, sizeof m);
            if (e) return ext_failed(ws, e, m);
        } else if (ws_http_ieq(h->name, h->name_len, "Sec-WebSocket-Protocol")) {
            if (sp || !offered(ws, h->value, h->value_len))
                return ws_fail(ws, NULL, WS_E_HS_PROTOCOL, 0,
                               "handshake failed: server chose subprotocol \"%.*s\" that was not offered",
                               clip(h->value_len), h->value);
            sp = h->value;
            sp_len = h->value_len;
        }
    }
    if (!upgrade)
        return ws_fail(ws, NULL, WS_E_HS_UPGRADE, 0, "handshake failed: missing Upgrade: websocket");
    if (!connection)
        return ws_fail(ws, NULL, WS_E_HS_CONNECTION, 0,
                       "handshake failed: Connection header lacks \"upgrade\"");
    if (!accept)
        return ws_fail(ws, NULL, WS_E_HS_ACCEPT, 0, "handshake failed: missing Sec-WebSocket-Accept");
    char m[256];
    int e = ws_ext_answer_finish(&ext, &ws->pmd, m, sizeof m);
    if (e) return ext_failed(ws, e, m);
    if (ws->pmd.agreed) pmd_setup(ws);

    ws->state = WS_STATE_OPEN;
    if (ws_flush_pending(ws, out) != 0)
        return ws_fail(ws, NULL, WS_E_NOMEM, 0, "out of memory");
    *cb = ws->cfg.ev.on_open ? ws->cfg.ev.on_open(ws->cfg.ev.ud, data, end, sp, sp_len) : 0;
    return (long)end;
}

