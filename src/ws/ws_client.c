/* ws_client: RFC 6455 client state machine over ws_http, ws_frame, ws_utf8.
 * Knows no socket, loop, TLS or Lua: bytes in, events and bytes out. */
#include "ws_client.h"
#include "ws_http.h"
#include "ws_utf8.h"
#include "../crypto.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* After a message larger than this, give the reassembly memory back. */
#define WS_MSG_KEEP (1u << 20)
#define WS_MAX_HEADERS 100
/* Largest reassembly reservation made on a frame header's word alone. */
#define WS_PREALLOC_MAX (16u << 20)

const char *ws_strerror(int err)
{
    switch (err) {
    case WS_OK: return "success";
    case WS_E_NOMEM: return "out of memory";
    case WS_E_RANDOM: return "random source failed";
    case WS_E_HS_STATUS: return "handshake: status not 101";
    case WS_E_HS_MALFORMED: return "handshake: malformed HTTP response";
    case WS_E_HS_TOO_LARGE: return "handshake: response head too large";
    case WS_E_HS_UPGRADE: return "handshake: missing or wrong Upgrade";
    case WS_E_HS_CONNECTION: return "handshake: missing Connection: upgrade";
    case WS_E_HS_ACCEPT: return "handshake: invalid Sec-WebSocket-Accept";
    case WS_E_HS_EXTENSION: return "handshake: extension not offered";
    case WS_E_HS_PROTOCOL: return "handshake: subprotocol not offered";
    case WS_E_RSV: return "protocol: reserved bits set";
    case WS_E_OPCODE: return "protocol: reserved opcode";
    case WS_E_CONTROL_LEN: return "protocol: control frame too long";
    case WS_E_CONTROL_FRAG: return "protocol: fragmented control frame";
    case WS_E_MASKED: return "protocol: masked frame from server";
    case WS_E_LENGTH: return "protocol: invalid frame length";
    case WS_E_CONTINUATION: return "protocol: unexpected continuation frame";
    case WS_E_FRAGMENT: return "protocol: data frame inside fragmented message";
    case WS_E_UTF8: return "protocol: invalid UTF-8 in text message";
    case WS_E_TOO_BIG: return "protocol: message too big";
    case WS_E_CLOSE_CODE: return "protocol: invalid close code";
    case WS_E_CLOSE_LEN: return "protocol: invalid close payload";
    case WS_E_CLOSE_UTF8: return "protocol: invalid UTF-8 in close reason";
    case WS_E_STATE: return "usage: not allowed in this state";
    case WS_E_CLOSED: return "usage: connection closing or failed";
    case WS_E_HEADER: return "usage: invalid request header";
    case WS_E_SEND_UTF8: return "usage: text is not valid UTF-8";
    case WS_E_SEND_CONTROL: return "usage: control payload over 125 bytes";
    case WS_E_BAD_OPCODE: return "usage: invalid opcode";
    case WS_E_BAD_CODE: return "usage: invalid close code";
    case WS_E_BAD_REASON: return "usage: invalid close reason";
    }
    return "unknown error";
}

int ws_client_init(ws_client *ws, const ws_config *cfg)
{
    memset(ws, 0, sizeof *ws);
    if (cfg) ws->cfg = *cfg;
    mw_buf_init(&ws->pending);
    mw_buf_init(&ws->msg);
    ws->rnd_pos = sizeof ws->rnd;   /* pool empty */
    ws->state = WS_STATE_HANDSHAKE;
    return 0;
}

void ws_client_free(ws_client *ws)
{
    mw_buf_free(&ws->pending);
    mw_buf_free(&ws->msg);
    free(ws->protocols);
    ws_client_init(ws, NULL);
}

int ws_client_state(const ws_client *ws) { return ws->state; }
int ws_client_fail_code(const ws_client *ws) { return ws->fail_code; }
int ws_client_error(const ws_client *ws) { return ws->err; }
const char *ws_client_fail_message(const ws_client *ws) { return ws->errmsg; }
size_t ws_client_buffered(const ws_client *ws) { return ws->msg.len; }
size_t ws_client_queued(const ws_client *ws) { return ws->pending.len; }

size_t ws_client_want(const ws_client *ws) { return ws->want; }

/* ---- randomness --------------------------------------------------------- */

static int get_random(ws_client *ws, void *out, size_t n)
{
    if (ws->cfg.random) return ws->cfg.random(ws->cfg.random_ud, out, n) ? -1 : 0;
    return mw_random(out, n);
}

/* Mask keys come from a pooled block so a stream of small frames does not
 * call into the RNG once per frame. */
static int mask_key(ws_client *ws, uint8_t key[4])
{
    if (ws->rnd_pos + 4 > sizeof ws->rnd) {
        if (get_random(ws, ws->rnd, sizeof ws->rnd) != 0) return -1;
        ws->rnd_pos = 0;
    }
    memcpy(key, ws->rnd + ws->rnd_pos, 4);
    ws->rnd_pos += 4;
    return 0;
}

/* One masked frame of payload a[0..an) followed by b[0..bn) onto out. */
static int put_frame(ws_client *ws, mw_buf *out, int opcode,
                     const void *a, size_t an, const void *b, size_t bn)
{
    uint8_t key[4];
    unsigned char hdr[WS_FRAME_MAX_HEADER];
    if (mask_key(ws, key) != 0) return WS_E_RANDOM;
    size_t n = an + bn;
    size_t hn = ws_frame_encode(hdr, 1, opcode, n, key);
    if (n > (size_t)-1 - hn) return WS_E_NOMEM;
    char *dst = mw_buf_reserve(out, hn + n);
    if (!dst) return WS_E_NOMEM;
    memcpy(dst, hdr, hn);
    if (an) memcpy(dst + hn, a, an);
    if (bn) memcpy(dst + hn + an, b, bn);
    ws_mask(dst + hn, n, key, 0);
    mw_buf_commit(out, hn + n);
    return 0;
}

static int put_close(ws_client *ws, mw_buf *out, int code, const char *reason, size_t n)
{
    unsigned char c[2] = { (unsigned char)(code >> 8), (unsigned char)code };
    return code ? put_frame(ws, out, WS_OP_CLOSE, c, 2, reason, n)
                : put_frame(ws, out, WS_OP_CLOSE, NULL, 0, NULL, 0);
}

/* Fail the connection: send `code` (if nonzero and no close was sent yet),
 * enter FAILED, tell the user. Returns err for the caller to return. */
static int fail(ws_client *ws, mw_buf *out, int err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ws->errmsg, sizeof ws->errmsg, fmt, ap);
    va_end(ap);
    ws->fail_code = 0;
    if (code && !ws->close_sent && out && put_close(ws, out, code, NULL, 0) == 0) {
        ws->close_sent = 1;
        ws->fail_code = code;
    }
    ws->state = WS_STATE_FAILED;
    ws->err = err;
    mw_buf_free(&ws->msg);
    mw_buf_free(&ws->pending);
    if (ws->cfg.ev.on_fail) ws->cfg.ev.on_fail(ws->cfg.ev.ud, err, ws->errmsg);
    return err;
}

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
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || (c && strchr("!#$%&'*+-.^_`|~", c));
        if (!ok) return 0;
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

/* p[0..n) quoted for a message: at most 60 bytes, anything unprintable as \xHH. */
static const char *quoted(char *buf, size_t cap, const char *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)p[i];
        if (i == 60) { o += (size_t)snprintf(buf + o, cap - o, "..."); break; }
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') buf[o++] = (char)c;
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o < cap ? o : cap - 1] = 0;
    return buf;
}

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
                         req->host ? quoted(q, sizeof q, req->host, req->host_len) : "");
    if (req->port < 0 || req->port > 65535) return bad_field(msg, cap, "port %d is out of range", req->port);
    if (req->path_len) {
        if (req->path[0] != '/')
            return bad_field(msg, cap, "path \"%s\" does not start with /", quoted(q, sizeof q, req->path, req->path_len));
        for (size_t i = 0; i < req->path_len; i++) {
            unsigned char c = (unsigned char)req->path[i];
            if (c <= 0x20 || c == 0x7f)
                return bad_field(msg, cap, "path \"%s\" has a space or control character",
                                 quoted(q, sizeof q, req->path, req->path_len));
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
                                 quoted(q, sizeof q, p, n));
            i++;
        }
    }
    for (size_t i = 0; i < req->nheaders; i++) {
        const ws_header *h = &req->headers[i];
        if (!h->name || !is_token(h->name, h->name_len))
            return bad_field(msg, cap, "header \"%s\" is not a valid header name",
                             h->name ? quoted(q, sizeof q, h->name, h->name_len) : "");
        if (reserved_header(h->name, h->name_len))
            return bad_field(msg, cap, "header \"%s\" is set by the WebSocket handshake itself",
                             quoted(q, sizeof q, h->name, h->name_len));
        if (h->value_len && (!h->value || has_ctl(h->value, h->value_len)))
            return bad_field(msg, cap, "header \"%s\" has a CR, LF or NUL in its value",
                             quoted(q, sizeof q, h->name, h->name_len));
        if (!h->value && ws_http_ieq(h->name, h->name_len, "Host"))
            return bad_field(msg, cap, "header \"%s\" cannot be left out: the handshake needs a Host",
                             quoted(q, sizeof q, h->name, h->name_len));
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

    unsigned char key[16];
    char key64[32], cat[64];
    unsigned char sha[20];
    if (get_random(ws, key, sizeof key) != 0) return WS_E_RANDOM;
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
    size_t end = ws_http_head_end(data, len, 0);
    if (end && end <= WS_HTTP_MAX_HEAD && ws_http_parse_response(data, end, WS_HTTP_MAX_HEAD, &r) == (long)end)
        for (size_t i = 0; i < r.num_headers; i++)
            if (ws_http_ieq(hv[i].name, hv[i].name_len, "Retry-After") &&
                retry_after_ok(hv[i].value, hv[i].value_len))
                snprintf(extra, sizeof extra, " (Retry-After: %.*s)", (int)hv[i].value_len, hv[i].value);
    return fail(ws, NULL, WS_E_HS_STATUS, 0, "handshake failed: %.*s%s",
                clip(st->status_line_len), st->status_line, extra);
}

/* Returns the head length when the 101 was accepted (on_open has run; its
 * result in *cb), 0 when more bytes are needed, or a negative error. */
static long handshake(ws_client *ws, const char *data, size_t len, mw_buf *out, int *cb)
{
    ws_http_response r;
    memset(&r, 0, sizeof r);
    if (!ws->hs_status_ok) {
        /* Judge the status line as soon as it is complete: a refusal is
         * reported without waiting for (or reading) the rest. */
        long st = ws_http_parse_status(data, len, WS_HTTP_MAX_HEAD, &r);
        if (st == WS_HTTP_ETOOLARGE)
            return fail(ws, NULL, WS_E_HS_TOO_LARGE, 0,
                        "handshake failed: response head exceeds %d bytes", WS_HTTP_MAX_HEAD);
        if (st < 0)
            return fail(ws, NULL, WS_E_HS_MALFORMED, 0,
                        "handshake failed: malformed HTTP response");
        if (st == 0) {
            ws->hs_scan = len;
            return 0;
        }
        if (r.status != 101) return refused(ws, data, len, &r);
        if (r.minor_version != 1)
            return fail(ws, NULL, WS_E_HS_MALFORMED, 0,
                        "handshake failed: 101 response is not HTTP/1.1");
        ws->hs_status_ok = 1;
    }
    size_t end = ws_http_head_end(data, len, ws->hs_scan);
    if (!end || end > WS_HTTP_MAX_HEAD) {
        if (len >= WS_HTTP_MAX_HEAD)
            return fail(ws, NULL, WS_E_HS_TOO_LARGE, 0,
                        "handshake failed: response head exceeds %d bytes", WS_HTTP_MAX_HEAD);
        ws->hs_scan = len;
        return 0;
    }
    ws_http_header hv[WS_MAX_HEADERS];
    r.headers = hv;
    r.max_headers = WS_MAX_HEADERS;
    long n = ws_http_parse_response(data, end, WS_HTTP_MAX_HEAD, &r);
    if (n == WS_HTTP_ETOOMANY)
        return fail(ws, NULL, WS_E_HS_TOO_LARGE, 0,
                    "handshake failed: more than %d header fields", WS_MAX_HEADERS);
    if (n != (long)end)
        return fail(ws, NULL, WS_E_HS_MALFORMED, 0, "handshake failed: malformed HTTP response");

    int upgrade = 0, connection = 0, accept = 0;
    const char *sp = NULL;
    size_t sp_len = 0;
    for (size_t i = 0; i < r.num_headers; i++) {
        const ws_http_header *h = &hv[i];
        if (ws_http_ieq(h->name, h->name_len, "Upgrade")) {
            if (!ws_http_ieq(h->value, h->value_len, "websocket"))
                return fail(ws, NULL, WS_E_HS_UPGRADE, 0,
                            "handshake failed: Upgrade is \"%.*s\", not websocket",
                            clip(h->value_len), h->value);
            upgrade = 1;
        } else if (ws_http_ieq(h->name, h->name_len, "Connection")) {
            if (ws_http_list_has(h->value, h->value_len, "upgrade")) connection = 1;
        } else if (ws_http_ieq(h->name, h->name_len, "Sec-WebSocket-Accept")) {
            if (accept || h->value_len != 28 || memcmp(h->value, ws->accept, 28) != 0)
                return fail(ws, NULL, WS_E_HS_ACCEPT, 0,
                            "handshake failed: invalid Sec-WebSocket-Accept");
            accept = 1;
        } else if (ws_http_ieq(h->name, h->name_len, "Sec-WebSocket-Extensions")) {
            return fail(ws, NULL, WS_E_HS_EXTENSION, 0,
                        "handshake failed: server chose extension \"%.*s\" that was not offered",
                        clip(h->value_len), h->value);
        } else if (ws_http_ieq(h->name, h->name_len, "Sec-WebSocket-Protocol")) {
            if (sp || !offered(ws, h->value, h->value_len))
                return fail(ws, NULL, WS_E_HS_PROTOCOL, 0,
                            "handshake failed: server chose subprotocol \"%.*s\" that was not offered",
                            clip(h->value_len), h->value);
            sp = h->value;
            sp_len = h->value_len;
        }
    }
    if (!upgrade)
        return fail(ws, NULL, WS_E_HS_UPGRADE, 0, "handshake failed: missing Upgrade: websocket");
    if (!connection)
        return fail(ws, NULL, WS_E_HS_CONNECTION, 0,
                    "handshake failed: Connection header lacks \"upgrade\"");
    if (!accept)
        return fail(ws, NULL, WS_E_HS_ACCEPT, 0, "handshake failed: missing Sec-WebSocket-Accept");

    ws->state = WS_STATE_OPEN;
    if (ws->pending.len) {
        if (mw_buf_append(out, mw_buf_head(&ws->pending), ws->pending.len) != 0)
            return fail(ws, NULL, WS_E_NOMEM, 0, "out of memory");
    }
    mw_buf_free(&ws->pending);
    *cb = ws->cfg.ev.on_open ? ws->cfg.ev.on_open(ws->cfg.ev.ud, data, end, sp, sp_len) : 0;
    return (long)end;
}

/* ---- frames ------------------------------------------------------------- */

static unsigned long long ull(uint64_t v) { return (unsigned long long)v; }

/* Check a received frame header against RFC 6455 5.2-5.5 and the message
 * in progress. Returns 0 or a failure (already reported). */
static int check_header(ws_client *ws, const ws_frame_hdr *h, mw_buf *out)
{
    if (h->rsv)
        return fail(ws, out, WS_E_RSV, 1002,
                    "protocol error: reserved bits set without extension");
    if ((h->opcode >= 3 && h->opcode <= 7) || h->opcode >= 11)
        return fail(ws, out, WS_E_OPCODE, 1002, "protocol error: reserved opcode %d",
                    (int)h->opcode);
    if (h->masked)
        return fail(ws, out, WS_E_MASKED, 1002, "protocol error: masked frame from server");
    if (h->opcode & 8) {
        if (!h->fin)
            return fail(ws, out, WS_E_CONTROL_FRAG, 1002,
                        "protocol error: fragmented control frame");
        if (h->len > WS_CONTROL_MAX)
            return fail(ws, out, WS_E_CONTROL_LEN, 1002,
                        "protocol error: control frame payload of %llu bytes (max 125)",
                        ull(h->len));
        return 0;
    }
    if (h->opcode == WS_OP_CONT && !ws->msg_op)
        return fail(ws, out, WS_E_CONTINUATION, 1002,
                    "protocol error: continuation frame without a message to continue");
    if (h->opcode != WS_OP_CONT && ws->msg_op)
        return fail(ws, out, WS_E_FRAGMENT, 1002,
                    "protocol error: new data frame inside a fragmented message");
    uint64_t so_far = h->opcode == WS_OP_CONT ? ws->msg_len : 0;
    uint64_t max = ws->cfg.max_message;
    if (max && (h->len > max || so_far > max - h->len))
        return fail(ws, out, WS_E_TOO_BIG, 1009,
                    "message exceeds maxPackageSize (%llu bytes)", ull(max));
    return 0;
}

/* A text message is not UTF-8: at byte `at` (1-based, in the message), or
 * 0 when it ends inside a code point. One wording whichever path found it
 * (whole in the caller's bytes, deferred, reassembled), so the same bytes
 * fail with the same words however they were split. */
static int bad_text(ws_client *ws, mw_buf *out, size_t at)
{
    if (!at) return fail(ws, out, WS_E_UTF8, 1007, "invalid UTF-8 in text message (truncated at the end)");
    return fail(ws, out, WS_E_UTF8, 1007, "invalid UTF-8 in text message (byte %zu)", at);
}

static int deliver(ws_client *ws, int op, const char *p, size_t n)
{
    if (!ws->cfg.ev.on_message) return 0;
    return ws->cfg.ev.on_message(ws->cfg.ev.ud, op == WS_OP_TEXT, p, n);
}

/* A complete control frame in ws->ctl. Returns callback flags (>= 0) or a
 * failure. */
static int control(ws_client *ws, mw_buf *out)
{
    const char *p = (const char *)ws->ctl;
    size_t n = ws->ctl_len;
    void *ud = ws->cfg.ev.ud;
    int rc = 0;
    switch (ws->hdr.opcode) {
    case WS_OP_PING:
        if (ws->cfg.ev.on_ping) rc = ws->cfg.ev.on_ping(ud, p, n);
        /* The callback may have sent a close (or failed nothing: failing is
         * ours alone), so look again before answering. */
        if (!(rc & WS_CB_NO_PONG) && !ws->close_sent && ws->state == WS_STATE_OPEN) {
            int e = put_frame(ws, out, WS_OP_PONG, p, n, NULL, 0);
            if (e) return fail(ws, NULL, e, 0, "cannot queue pong: %s", ws_strerror(e));
        }
        return rc & WS_CB_STOP;
    case WS_OP_PONG:
        return ws->cfg.ev.on_pong ? ws->cfg.ev.on_pong(ud, p, n) : 0;
    default: { /* WS_OP_CLOSE */
        int code = 1005;
        if (n == 1)
            return fail(ws, out, WS_E_CLOSE_LEN, 1002,
                        "protocol error: close frame with a 1-byte payload");
        if (n >= 2) {
            code = (unsigned char)p[0] << 8 | (unsigned char)p[1];
            if (!ws_close_code_valid((unsigned)code))
                return fail(ws, out, WS_E_CLOSE_CODE, 1002,
                            "protocol error: invalid close code %d", code);
            if (!ws_utf8_valid(p + 2, n - 2))
                return fail(ws, out, WS_E_CLOSE_UTF8, 1007,
                            "invalid UTF-8 in close reason");
        }
        ws->close_rcvd = 1;
        if (!ws->close_sent) {
            /* Echo the status code (RFC 6455 5.5.1); no status, no body. */
            int e = put_close(ws, out, n >= 2 ? code : 0, NULL, 0);
            if (e) return fail(ws, NULL, e, 0, "cannot queue close: %s", ws_strerror(e));
            ws->close_sent = 1;
        }
        ws->state = WS_STATE_CLOSED;
        mw_buf_free(&ws->msg);
        if (ws->cfg.ev.on_close)
            ws->cfg.ev.on_close(ud, code, n > 2 ? p + 2 : "", n > 2 ? n - 2 : 0);
        return 0;
    }
    }
}

long ws_client_feed(ws_client *ws, const char *data, size_t len, mw_buf *out)
{
    if (!ws->started) return WS_E_STATE;
    if (ws->state == WS_STATE_FAILED) return ws->err;
    if (ws->close_rcvd) return (long)len;
    ws->want = 0;
    if (len == 0) return 0;
    size_t pos = 0;
    if (ws->state == WS_STATE_HANDSHAKE) {
        int cb = 0;
        long r = handshake(ws, data, len, out, &cb);
        if (r <= 0) return r;
        pos = (size_t)r;
        if (cb) return (long)pos;
    }
    for (;;) {
        int rc = 0;
        if (!ws->in_payload) {
            if (pos == len) break;
            ws_frame_hdr h;
            int hn = ws_frame_parse(data + pos, len - pos, &h);
            if (hn == 0) break;
            if (hn < 0)
                return fail(ws, out, WS_E_LENGTH, 1002,
                            "protocol error: 64-bit frame length with the top bit set");
            int e = check_header(ws, &h, out);
            if (e) return e;
            pos += (size_t)hn;
            ws->hdr = h;
            ws->remaining = h.len;
            if (h.opcode & 8) {
                ws->ctl_len = 0;
            } else if (h.opcode != WS_OP_CONT && h.fin && len - pos >= h.len) {
                /* Whole unfragmented message in the caller's bytes: no copy.
                 * A frame deferred earlier is checked on from where it was. */
                const char *p = data + pos;
                size_t n = (size_t)h.len;
                if (h.opcode == WS_OP_TEXT) {
                    size_t from = ws->defer_checked <= n ? ws->defer_checked : 0;
                    uint8_t st = from ? ws->defer_utf8 : WS_UTF8_ACCEPT;
                    size_t ok = from + ws_utf8_feed(&st, p + from, n - from);
                    if (st != WS_UTF8_ACCEPT)
                        return bad_text(ws, out, st == WS_UTF8_REJECT ? ok + 1 : 0);
                }
                ws->defer_checked = 0;
                pos += n;
                rc = deliver(ws, h.opcode, p, n);
                goto after_callback;
            } else if (h.opcode != WS_OP_CONT && h.fin && h.len <= ws->cfg.defer_max) {
                /* Not all here yet: leave the frame to the caller, who makes
                 * room for it, and judge the text that has come so far. */
                const char *p = data + pos;
                size_t avail = len - pos;
                if (h.opcode == WS_OP_TEXT) {
                    if (ws->defer_checked > avail) ws->defer_checked = 0; /* not the same bytes */
                    if (!ws->defer_checked) ws->defer_utf8 = WS_UTF8_ACCEPT;
                    size_t ok = ws_utf8_feed(&ws->defer_utf8, p + ws->defer_checked,
                                             avail - ws->defer_checked);
                    if (ws->defer_utf8 == WS_UTF8_REJECT)
                        return bad_text(ws, out, ws->defer_checked + ok + 1);
                    ws->defer_checked = avail;
                }
                ws->want = (size_t)hn + (size_t)h.len;
                return (long)(pos - (size_t)hn);
            } else {
                if (h.opcode != WS_OP_CONT) {
                    ws->msg_op = h.opcode;
                    ws->msg_len = 0;
                    ws->msg_utf8 = WS_UTF8_ACCEPT;
                }
                ws->msg_len += h.len;
                /* Room for the announced frame in one step, bounded so a
                 * header alone cannot make us reserve much. */
                uint64_t want = ws->msg.len + h.len;
                if (h.len > ws->msg.cap - ws->msg.off - ws->msg.len && want <= WS_PREALLOC_MAX)
                    mw_buf_reserve(&ws->msg, (size_t)h.len);
            }
            ws->in_payload = 1;
        }
        /* Payload of ws->hdr: take what is here. */
        size_t avail = len - pos;
        size_t take = ws->remaining < avail ? (size_t)ws->remaining : avail;
        if (take) {
            const char *p = data + pos;
            if (ws->hdr.opcode & 8) {
                memcpy(ws->ctl + ws->ctl_len, p, take);
                ws->ctl_len += take;
            } else {
                if (ws->msg_op == WS_OP_TEXT) {
                    /* Judge each byte as it arrives, not at the end. */
                    size_t ok = ws_utf8_feed(&ws->msg_utf8, p, take);
                    if (ws->msg_utf8 == WS_UTF8_REJECT)
                        return bad_text(ws, out, ws->msg.len + ok + 1);
                }
                if (mw_buf_append(&ws->msg, p, take) != 0)
                    return fail(ws, out, WS_E_NOMEM, 1011, "out of memory assembling a message");
            }
            pos += take;
            ws->remaining -= take;
        }
        if (ws->remaining) break;   /* all of data consumed */
        ws->in_payload = 0;
        if (ws->hdr.opcode & 8) {
            rc = control(ws, out);
            if (rc < 0) return rc;
            if (ws->close_rcvd) return (long)len;  /* nothing after a close is read */
        } else if (ws->hdr.fin) {
            if (ws->msg_op == WS_OP_TEXT && ws->msg_utf8 != WS_UTF8_ACCEPT)
                return bad_text(ws, out, 0);
            int op = ws->msg_op;
            ws->msg_op = 0;
            ws->msg_len = 0;
            /* An empty message may never have allocated: no NULL + 0. */
            rc = deliver(ws, op, ws->msg.data ? mw_buf_head(&ws->msg) : "", ws->msg.len);
            mw_buf_clear(&ws->msg);
            mw_buf_shrink(&ws->msg, WS_MSG_KEEP);
        }
    after_callback:
        if (ws->state == WS_STATE_FAILED) return ws->err;
        if (rc) break;
    }
    return (long)pos;
}

/* ---- sending ------------------------------------------------------------ */

int ws_client_send(ws_client *ws, int opcode, const char *data, size_t len, mw_buf *out)
{
    if (!ws->started) return WS_E_STATE;
    if (ws->close_sent || ws->state == WS_STATE_FAILED) return WS_E_CLOSED;
    if (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY &&
        opcode != WS_OP_PING && opcode != WS_OP_PONG)
        return WS_E_BAD_OPCODE;
    if ((opcode & 8) && len > WS_CONTROL_MAX) return WS_E_SEND_CONTROL;
    if (opcode == WS_OP_TEXT && !ws_utf8_valid(data, len)) return WS_E_SEND_UTF8;
    mw_buf *dst = ws->state == WS_STATE_HANDSHAKE ? &ws->pending : out;
    return put_frame(ws, dst, opcode, data, len, NULL, 0);
}

int ws_client_send_raw(ws_client *ws, const char *data, size_t len, mw_buf *out)
{
    if (!ws->started) return WS_E_STATE;
    if (ws->close_sent || ws->state == WS_STATE_FAILED) return WS_E_CLOSED;
    mw_buf *dst = ws->state == WS_STATE_HANDSHAKE ? &ws->pending : out;
    return mw_buf_append(dst, data, len) ? WS_E_NOMEM : 0;
}

int ws_client_close(ws_client *ws, int code, const char *reason, size_t n, mw_buf *out)
{
    if (!ws->started || ws->state == WS_STATE_HANDSHAKE) return WS_E_STATE;
    if (ws->close_sent || ws->state == WS_STATE_FAILED) return WS_E_CLOSED;
    if (code == 0 ? n != 0 : !ws_close_code_valid((unsigned)code)) return WS_E_BAD_CODE;
    if (n > WS_CONTROL_MAX - 2 || !ws_utf8_valid(reason, n)) return WS_E_BAD_REASON;
    int e = put_close(ws, out, code, reason, n);
    if (e) return e;
    ws->close_sent = 1;
    ws->state = ws->close_rcvd ? WS_STATE_CLOSED : WS_STATE_CLOSING;
    return 0;
}
