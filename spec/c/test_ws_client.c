/* test_ws_client: the client engine end to end: request bytes, response
 * checks, framing rules and their close codes, fragmentation, UTF-8,
 * closing, limits, masking, and whole / byte-at-a-time / every-split feeds. */
#include "mwtest.h"
#include "ws/ws_client.h"
#include "ws/ws_frame.h"
#include <stdarg.h>
#include <stdlib.h>

/* mw_buf_head without NULL + 0 on a buffer that never allocated. */
static char *bh(const mw_buf *b) { return b->data ? b->data + b->off : (char *)""; }

/* ---- harness ------------------------------------------------------------ */

/* Deterministic randomness: the RFC 6455 sample nonce first (so the accept
 * value is the RFC's), then a counter. */
typedef struct { int calls; unsigned char next; } trand;
static int t_random(void *ud, void *out, size_t n)
{
    trand *r = ud;
    unsigned char *p = out;
    if (r->calls++ == 0 && n == 16) { memcpy(p, "the sample nonce", 16); return 0; }
    for (size_t i = 0; i < n; i++) p[i] = r->next++;
    return 0;
}

typedef struct tctx {
    ws_client ws;
    trand rnd;
    mw_buf out, in;
    char log[1 << 16];
    size_t loglen;
    int stop_on_message;     /* return WS_CB_STOP from on_message */
    int ping_flags;          /* what on_ping returns */
    int close_on_message;    /* call ws_client_close from on_message */
    int send_on_open;        /* send "hi" from on_open */
    const char *cur_data; size_t cur_len;  /* the bytes being fed */
    int zero_copy;           /* messages delivered from inside cur_data */
    int messages, fails;
} tctx;

static void logf_(tctx *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->log + t->loglen, sizeof t->log - t->loglen, fmt, ap);
    va_end(ap);
    if (n > 0) t->loglen += (size_t)n;
    if (t->loglen >= sizeof t->log) t->loglen = sizeof t->log - 1;
}

/* Payloads are logged printable, or as length + checksum when long. */
static void logp(tctx *t, const char *p, size_t n)
{
    if (n > 40) {
        unsigned long h = 5381;
        for (size_t i = 0; i < n; i++) h = h * 33 + (unsigned char)p[i];
        logf_(t, "<%zu:%lx>", n, h);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') logf_(t, "%c", c);
        else logf_(t, "\\x%02x", c);
    }
}

static int ev_open(void *ud, const char *head, size_t hl, const char *sp, size_t spl)
{
    tctx *t = ud;
    (void)head;
    logf_(t, "open(%zu", hl);
    if (sp) { logf_(t, ","); logp(t, sp, spl); }
    logf_(t, ");");
    if (t->send_on_open) MW_CHECK_EQ_INT(ws_client_send(&t->ws, WS_OP_TEXT, "hi", 2, &t->out), 0);
    return 0;
}
static int ev_message(void *ud, int is_text, const char *p, size_t n)
{
    tctx *t = ud;
    t->messages++;
    if (t->cur_data && p >= t->cur_data && p + n <= t->cur_data + t->cur_len) t->zero_copy++;
    logf_(t, "%s(", is_text ? "text" : "bin");
    logp(t, p, n);
    logf_(t, ");");
    if (t->close_on_message) MW_CHECK_EQ_INT(ws_client_close(&t->ws, 1000, "done", 4, &t->out), 0);
    return t->stop_on_message ? WS_CB_STOP : 0;
}
static int ev_ping(void *ud, const char *p, size_t n)
{
    tctx *t = ud;
    logf_(t, "ping(");
    logp(t, p, n);
    logf_(t, ");");
    return t->ping_flags;
}
static int ev_pong(void *ud, const char *p, size_t n)
{
    tctx *t = ud;
    logf_(t, "pong(");
    logp(t, p, n);
    logf_(t, ");");
    return 0;
}
static int ev_close(void *ud, int code, const char *r, size_t n)
{
    tctx *t = ud;
    logf_(t, "close(%d,", code);
    logp(t, r, n);
    logf_(t, ");");
    return 0;
}
static void ev_fail(void *ud, int err, const char *msg)
{
    tctx *t = ud;
    t->fails++;
    logf_(t, "fail(%d,%s);", err, msg);
}

static const ws_request default_req = {
    .host = "example.com", .host_len = 11, .port = 9001,
    .path = "/chat", .path_len = 5,
};

/* defer: cfg.defer_max (0: every frame reassembled, as t_init). */
static void t_init_defer(tctx *t, uint64_t max, uint64_t defer, const ws_request *req)
{
    memset(t, 0, sizeof *t);
    ws_config cfg = {
        .max_message = max, .defer_max = defer, .random = t_random, .random_ud = &t->rnd,
        .ev = { .ud = t, .on_open = ev_open, .on_message = ev_message, .on_ping = ev_ping,
                .on_pong = ev_pong, .on_close = ev_close, .on_fail = ev_fail },
    };
    ws_client_init(&t->ws, &cfg);
    mw_buf_init(&t->out);
    mw_buf_init(&t->in);
    MW_CHECK_EQ_INT(ws_client_start(&t->ws, req ? req : &default_req, &t->out), 0);
    mw_buf_clear(&t->out);
}

static void t_init(tctx *t, uint64_t max, const ws_request *req) { t_init_defer(t, max, 0, req); }

static void t_free(tctx *t)
{
    ws_client_free(&t->ws);
    mw_buf_free(&t->out);
    mw_buf_free(&t->in);
}

/* The caller's side of feed: keep what was not consumed, present it again
 * with the next bytes. Returns the last feed result. */
static long push(tctx *t, const char *p, size_t n)
{
    long r = 0;
    mw_buf_append(&t->in, p, n);
    do {
        t->cur_data = bh(&t->in);
        t->cur_len = t->in.len;
        r = ws_client_feed(&t->ws, t->cur_data, t->in.len, &t->out);
        t->cur_data = NULL;
        if (r < 0) { mw_buf_clear(&t->in); return r; }
        mw_buf_consume(&t->in, (size_t)r);
    } while (r > 0 && t->in.len);
    return r;
}

/* Feed in pieces of `step` bytes (0: all at once). */
static long push_steps(tctx *t, const char *p, size_t n, size_t step)
{
    long r = 0;
    if (!step) return push(t, p, n);
    for (size_t i = 0; i < n; i += step) {
        r = push(t, p + i, n - i < step ? n - i : step);
        if (r < 0) return r;
    }
    return r;
}

/* Decode what the client wrote: every frame must be masked; log it unmasked
 * with a bytewise reference. */
static void decode_out(tctx *t, char *dst, size_t cap)
{
    size_t pos = 0, dl = 0;
    const unsigned char *b = (const unsigned char *)bh(&t->out);
    dst[0] = 0;
    while (pos < t->out.len) {
        ws_frame_hdr h;
        int hn = ws_frame_parse(b + pos, t->out.len - pos, &h);
        MW_CHECK(hn > 0);
        if (hn <= 0) return;
        MW_CHECK_EQ_INT(h.masked, 1);
        MW_CHECK_EQ_INT(h.rsv, 0);
        pos += (size_t)hn;
        MW_CHECK(pos + h.len <= t->out.len);
        if (pos + h.len > t->out.len) return;
        tctx tmp;
        tmp.loglen = 0;
        tmp.log[0] = 0;
        char *pl = malloc(h.len + 1);
        for (size_t i = 0; i < h.len; i++) pl[i] = (char)(b[pos + i] ^ h.mask[i & 3]);
        if (h.opcode == WS_OP_CLOSE && h.len >= 2) {
            logf_(&tmp, "%d", (unsigned char)pl[0] << 8 | (unsigned char)pl[1]);
            if (h.len > 2) { logf_(&tmp, ","); logp(&tmp, pl + 2, h.len - 2); }
        } else {
            logp(&tmp, pl, h.len);
        }
        free(pl);
        dl += (size_t)snprintf(dst + dl, cap - dl, "%s%d(%s);", h.fin ? "" : "~", (int)h.opcode, tmp.log);
        pos += h.len;
    }
}

#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define RESP101 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" \
                "Connection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n\r\n"
#define S(lit) lit, sizeof(lit) - 1

static void open_ok(tctx *t)
{
    MW_CHECK_EQ_INT(push(t, S(RESP101)), (long)(sizeof RESP101 - 1));
    MW_CHECK_EQ_INT(ws_client_state(&t->ws), WS_STATE_OPEN);
    t->loglen = 0;
    t->log[0] = 0;
}

static int log_is(tctx *t, const char *want)
{
    if (strcmp(t->log, want) == 0) return 1;
    fprintf(stderr, "  log:  %s\n  want: %s\n", t->log, want);
    return 0;
}

static int out_is(tctx *t, const char *want)
{
    char got[8192];
    decode_out(t, got, sizeof got);
    if (strcmp(got, want) == 0) return 1;
    fprintf(stderr, "  out:  %s\n  want: %s\n", got, want);
    return 0;
}

/* ---- the opening request ------------------------------------------------ */

static void test_request_bytes(void)
{
    tctx t;
    ws_header hs[] = { { S("Cookie"), S("PHPSID=82u98; token=2hf") }, { S("OtherKey"), S("values") } };
    ws_request req = {
        .host = "example.com", .host_len = 11, .port = 9001, .path = "/chat?x=1&y=2", .path_len = 13,
        .origin = "http://example.com", .origin_len = 18, .protocols = "chat, superchat",
        .protocols_len = 15, .headers = hs, .nheaders = 2,
    };
    memset(&t, 0, sizeof t);
    ws_config cfg = { .random = t_random, .random_ud = &t.rnd };
    ws_client_init(&t.ws, &cfg);
    mw_buf_init(&t.out);
    MW_CHECK_EQ_INT(ws_client_start(&t.ws, &req, &t.out), 0);
    const char want[] =
        "GET /chat?x=1&y=2 HTTP/1.1\r\nHost: example.com:9001\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\nOrigin: http://example.com\r\n"
        "Sec-WebSocket-Protocol: chat, superchat\r\nCookie: PHPSID=82u98; token=2hf\r\n"
        "OtherKey: values\r\n\r\n";
    MW_CHECK_EQ_INT(t.out.len, sizeof want - 1);
    MW_CHECK_MEM(bh(&t.out), want, sizeof want - 1);
    MW_CHECK_EQ_INT(ws_client_start(&t.ws, &req, &t.out), WS_E_STATE);
    t_free(&t);
}

static const char *request_for(const ws_request *req, char *buf, size_t cap)
{
    tctx t;
    memset(&t, 0, sizeof t);
    ws_config cfg = { .random = t_random, .random_ud = &t.rnd };
    ws_client_init(&t.ws, &cfg);
    mw_buf_init(&t.out);
    int r = ws_client_start(&t.ws, req, &t.out);
    snprintf(buf, cap, "%.*s", r == 0 ? (int)t.out.len : 0, bh(&t.out));
    t_free(&t);
    return buf;
}

static void test_request_host(void)
{
    char b[1024];
    ws_request r = { .host = "::1", .host_len = 3, .port = 80 };
    request_for(&r, b, sizeof b);
    MW_CHECK(strncmp(b, "GET / HTTP/1.1\r\nHost: [::1]\r\n", 29) == 0);
    r.port = 9001;
    request_for(&r, b, sizeof b);
    MW_CHECK(strstr(b, "\r\nHost: [::1]:9001\r\n") != NULL);
    ws_request s = { .host = "h.io", .host_len = 4, .port = 443, .secure = 1, .path = "/", .path_len = 1 };
    request_for(&s, b, sizeof b);
    MW_CHECK(strstr(b, "\r\nHost: h.io\r\n") != NULL);
    s.secure = 0;          /* ws:// on 443 is not the default port */
    request_for(&s, b, sizeof b);
    MW_CHECK(strstr(b, "\r\nHost: h.io:443\r\n") != NULL);
    s.port = 0;
    request_for(&s, b, sizeof b);
    MW_CHECK(strstr(b, "\r\nHost: h.io\r\n") != NULL);
    /* A user Host header replaces ours. */
    ws_header hh = { S("Host"), S("virtual.example") };
    s.headers = &hh;
    s.nheaders = 1;
    request_for(&s, b, sizeof b);
    MW_CHECK(strstr(b, "Host: h.io") == NULL && strstr(b, "\r\nHost: virtual.example\r\n") != NULL);
}

/* The default User-Agent: written unless a header names one (any case);
 * a header with a NULL value sends no field of that name. */
static void test_request_user_agent(void)
{
    char b[1024];
    ws_request r = { .host = "h", .host_len = 1, .user_agent = "moonwire/1.2", .user_agent_len = 12 };
    request_for(&r, b, sizeof b);
    MW_CHECK(strstr(b, "\r\nUser-Agent: moonwire/1.2\r\n") != NULL);
    ws_header mine = { S("user-agent"), S("mine/2") };
    r.headers = &mine;
    r.nheaders = 1;
    request_for(&r, b, sizeof b);
    MW_CHECK(strstr(b, "moonwire/1.2") == NULL && strstr(b, "\r\nuser-agent: mine/2\r\n") != NULL);
    ws_header none[] = { { S("User-Agent"), NULL, 0 }, { S("Origin"), NULL, 0 }, { S("X-Off"), NULL, 0 } };
    r.headers = none;
    r.nheaders = 3;
    r.origin = "http://o";
    r.origin_len = 8;
    request_for(&r, b, sizeof b);
    MW_CHECK(b[0] != 0);
    MW_CHECK(strstr(b, "User-Agent") == NULL && strstr(b, "Origin") == NULL && strstr(b, "X-Off") == NULL);
    /* no default asked for, none given */
    ws_request plain = { .host = "h", .host_len = 1 };
    request_for(&plain, b, sizeof b);
    MW_CHECK(b[0] != 0 && strstr(b, "User-Agent") == NULL);
    /* a Host cannot be left out: RFC 6455 4.1 requires it */
    ws_header nohost = { S("host"), NULL, 0 };
    plain.headers = &nohost;
    plain.nheaders = 1;
    char why[256] = "";
    MW_CHECK_EQ_INT(ws_request_check(&plain, why, sizeof why), WS_E_HEADER);
    MW_CHECK(strcmp(why, "header \"host\" cannot be left out: the handshake needs a Host") == 0);
}

static void test_request_injection(void)
{
    static const struct { const char *n; size_t nl; const char *v; size_t vl; } bad[] = {
        { S("X-A\r\nEvil"), S("v") }, { S("X-A"), S("v\r\nEvil: 1") }, { S("X-A"), S("v\nx") },
        { S("X-A"), S("v\rx") }, { S("X-A"), "v\0x", 3 }, { "", 0, S("v") },
        { S("X A"), S("v") }, { S("X:A"), S("v") }, { "X\0", 2, S("v") },
        { S("Upgrade"), S("h2c") }, { S("sec-websocket-key"), S("x") },
        { S("Sec-WebSocket-Extensions"), S("permessage-deflate") },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tctx t;
        memset(&t, 0, sizeof t);
        ws_config cfg = { .random = t_random, .random_ud = &t.rnd };
        ws_client_init(&t.ws, &cfg);
        mw_buf_init(&t.out);
        mw_buf_append(&t.out, "prev", 4);
        ws_header h = { bad[i].n, bad[i].nl, bad[i].v, bad[i].vl };
        ws_request req = default_req;
        req.headers = &h;
        req.nheaders = 1;
        /* the check alone (no client: before connecting) gives the same verdict
         * and the same words as the start */
        char why[256] = "";
        MW_CHECK_EQ_INT(ws_request_check(&req, why, sizeof why), WS_E_HEADER);
        int r = ws_client_start(&t.ws, &req, &t.out);
        if (r != WS_E_HEADER) fprintf(stderr, "  vector %zu: %d\n", i, r);
        MW_CHECK_EQ_INT(r, WS_E_HEADER);
        MW_CHECK_EQ_INT(t.out.len, 4);
        MW_CHECK(why[0] && strcmp(why, ws_client_fail_message(&t.ws)) == 0);
        t_free(&t);
    }
    char why[256] = "untouched";
    MW_CHECK_EQ_INT(ws_request_check(&default_req, why, sizeof why), 0);
    MW_CHECK(strcmp(why, "untouched") == 0);
    /* Host, path, origin and subprotocols are checked too. */
    ws_request variants[6];
    for (int i = 0; i < 6; i++) variants[i] = default_req;
    variants[0].host = "a\r\nb"; variants[0].host_len = 4;
    variants[1].host_len = 0;
    variants[2].path = "/a b"; variants[2].path_len = 4;
    variants[3].path = "a"; variants[3].path_len = 1;
    variants[4].origin = "http://x\r\n"; variants[4].origin_len = 10;
    variants[5].protocols = "chat,,x"; variants[5].protocols_len = 7;
    for (int i = 0; i < 6; i++) {
        char b[64];
        MW_CHECK(request_for(&variants[i], b, sizeof b)[0] == 0);
        MW_CHECK_EQ_INT(ws_request_check(&variants[i], b, sizeof b), WS_E_HEADER);
    }
}

/* ---- the response ------------------------------------------------------- */

static void expect_hs_fail(const char *resp, int err, const char *msg, const ws_request *req)
{
    for (size_t step = 0; step <= 1; step++) {
        tctx t;
        t_init(&t, 0, req);
        long r = push_steps(&t, resp, strlen(resp), step);
        MW_CHECK_EQ_INT(r, err);
        MW_CHECK_EQ_INT(ws_client_state(&t.ws), WS_STATE_FAILED);
        MW_CHECK_EQ_INT(ws_client_fail_code(&t.ws), 0);
        MW_CHECK_EQ_INT(t.out.len, 0);          /* no close frame without a WebSocket */
        MW_CHECK_EQ_INT(t.fails, 1);
        MW_CHECK_EQ_INT(t.messages, 0);
        if (strstr(t.log, msg) == NULL) {
            fprintf(stderr, "  resp: %s\n  log: %s\n  want: %s\n", resp, t.log, msg);
            MW_CHECK(0);
        }
        /* Failed stays failed. */
        MW_CHECK_EQ_INT(ws_client_feed(&t.ws, "x", 1, &t.out), err);
        MW_CHECK_EQ_INT(t.fails, 1);
        t_free(&t);
    }
}

static void test_response_failures(void)
{
    expect_hs_fail("HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\n\x81\x01x", WS_E_HS_STATUS,
                   "fail(-100,handshake failed: HTTP/1.1 403 Forbidden);", NULL);
    expect_hs_fail("HTTP/1.1 200 OK\r\n\r\n", WS_E_HS_STATUS, "handshake failed: HTTP/1.1 200 OK", NULL);
    expect_hs_fail("HTTP/1.0 101 Switching\r\n\r\n", WS_E_HS_MALFORMED, "not HTTP/1.1", NULL);
    expect_hs_fail("SSH-2.0-OpenSSH_9.2\r\n", WS_E_HS_MALFORMED, "malformed HTTP response", NULL);
    expect_hs_fail("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n", WS_E_HS_UPGRADE, "missing Upgrade", NULL);
    expect_hs_fail("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n", WS_E_HS_UPGRADE, "Upgrade is \"h2c\"", NULL);
    expect_hs_fail("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n", WS_E_HS_CONNECTION, "Connection", NULL);
    expect_hs_fail("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
                   "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n", WS_E_HS_CONNECTION, "Connection", NULL);
    expect_hs_fail("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOp=\r\n\r\n", WS_E_HS_ACCEPT,
                   "invalid Sec-WebSocket-Accept", NULL);
    expect_hs_fail("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: s3pplmbitxaq9kyggzzhzrbk+xoo=\r\n\r\n", WS_E_HS_ACCEPT,
                   "invalid Sec-WebSocket-Accept", NULL);
    expect_hs_fail("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
                   WS_E_HS_ACCEPT, "missing Sec-WebSocket-Accept", NULL);
    expect_hs_fail("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: " ACCEPT "\r\nSec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
                   WS_E_HS_ACCEPT, "invalid Sec-WebSocket-Accept", NULL);
    expect_hs_fail("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: " ACCEPT "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
                   WS_E_HS_EXTENSION, "extension \"permessage-deflate\" that was not offered", NULL);
    expect_hs_fail("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: " ACCEPT "\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
                   WS_E_HS_PROTOCOL, "subprotocol \"chat\" that was not offered", NULL);
    ws_request req = default_req;
    req.protocols = "chat, superchat";
    req.protocols_len = 15;
    expect_hs_fail("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: " ACCEPT "\r\nSec-WebSocket-Protocol: Chat\r\n\r\n",
                   WS_E_HS_PROTOCOL, "not offered", &req);
    expect_hs_fail("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: " ACCEPT "\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n",
                   WS_E_HS_PROTOCOL, "not offered", &req);
    expect_hs_fail("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n folded\r\n\r\n",
                   WS_E_HS_MALFORMED, "malformed", NULL);
    /* Over 16 KiB of headers. */
    size_t big = 17000;
    char *resp = malloc(big + 64);
    strcpy(resp, "HTTP/1.1 101 Switching Protocols\r\nX-Pad: ");
    size_t l = strlen(resp);
    memset(resp + l, 'a', big - l);
    strcpy(resp + big, "\r\n\r\n");
    expect_hs_fail(resp, WS_E_HS_TOO_LARGE, "exceeds 16384 bytes", NULL);
    free(resp);
}

/* A refusal is reported as soon as the status line is complete. */
static void test_status_early(void)
{
    tctx t;
    t_init(&t, 0, NULL);
    MW_CHECK_EQ_INT(push(&t, S("HTTP/1.1 404 Not Fou")), 0);
    MW_CHECK_EQ_INT(t.fails, 0);
    MW_CHECK_EQ_INT(push(&t, S("nd\r\n")), WS_E_HS_STATUS);
    MW_CHECK(log_is(&t, "fail(-100,handshake failed: HTTP/1.1 404 Not Found);"));
    t_free(&t);
}

/* A refusal names Retry-After when the head is all there, and only a value
 * shaped like one (a server could reflect the request's secrets into it). */
static void test_status_retry_after(void)
{
    static const struct { const char *resp, *want; } cases[] = {
        { "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 120\r\n\r\n",
          "fail(-100,handshake failed: HTTP/1.1 503 Service Unavailable (Retry-After: 120));" },
        { "HTTP/1.1 429 Too Many Requests\r\nretry-after: Wed, 21 Oct 2015 07:28:00 GMT\r\n\r\n",
          "fail(-100,handshake failed: HTTP/1.1 429 Too Many Requests (Retry-After: Wed, 21 Oct 2015 07:28:00 GMT));" },
        { "HTTP/1.1 503 Service Unavailable\r\nRetry-After: sid=82u98; token=2hf9\r\n\r\n",
          "fail(-100,handshake failed: HTTP/1.1 503 Service Unavailable);" },
        /* the head not complete yet: the refusal is not held back for it */
        { "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 120\r\n",
          "fail(-100,handshake failed: HTTP/1.1 503 Service Unavailable);" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tctx t;
        t_init(&t, 0, NULL);
        MW_CHECK_EQ_INT(push(&t, cases[i].resp, strlen(cases[i].resp)), WS_E_HS_STATUS);
        MW_CHECK(log_is(&t, cases[i].want));
        t_free(&t);
    }
}

static void test_response_ok_variants(void)
{
    static const char *ok[] = {
        RESP101,
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\n"
        "sec-websocket-accept:" ACCEPT "\r\nServer: x\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\nConnection: Upgrade\n"
        "Sec-WebSocket-Accept: " ACCEPT "\n\n",
        "HTTP/1.1 101\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        for (size_t step = 0; step <= 1; step++) {
            tctx t;
            t_init(&t, 0, NULL);
            MW_CHECK(push_steps(&t, ok[i], strlen(ok[i]), step) >= 0);
            MW_CHECK_EQ_INT(ws_client_state(&t.ws), WS_STATE_OPEN);
            char want[64];
            snprintf(want, sizeof want, "open(%zu);", strlen(ok[i]));
            MW_CHECK(log_is(&t, want));
            MW_CHECK_EQ_INT(t.in.len, 0);
            t_free(&t);
        }
}

static void test_subprotocol(void)
{
    tctx t;
    ws_request req = default_req;
    req.protocols = "chat, superchat";
    req.protocols_len = 15;
    t_init(&t, 0, &req);
    const char resp[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: " ACCEPT "\r\nSec-WebSocket-Protocol: superchat\r\n\r\n";
    MW_CHECK_EQ_INT(push(&t, S(resp)), (long)(sizeof resp - 1));
    char want[64];
    snprintf(want, sizeof want, "open(%zu,superchat);", sizeof resp - 1);
    MW_CHECK(log_is(&t, want));
    t_free(&t);
}

/* Frames in the same read as the head are not lost; sends made before the
 * 101 go out right after it, before on_open's own. */
static void test_leftover_and_pending(void)
{
    tctx t;
    t_init(&t, 0, NULL);
    MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_TEXT, "early", 5, &t.out), 0);
    MW_CHECK_EQ_INT(t.out.len, 0);
    MW_CHECK_EQ_INT(ws_client_close(&t.ws, 1000, NULL, 0, &t.out), WS_E_STATE);
    t.send_on_open = 1;
    const char in[] = RESP101 "\x81\x05hello\x89\x01p\x82\x00";
    MW_CHECK_EQ_INT(push(&t, S(in)), (long)(sizeof in - 1));
    char want[128];
    snprintf(want, sizeof want, "open(%zu);text(hello);ping(p);bin();", sizeof RESP101 - 1);
    MW_CHECK(log_is(&t, want));
    MW_CHECK(out_is(&t, "1(early);1(hi);10(p);"));
    MW_CHECK_EQ_INT(t.zero_copy, 2);
    t_free(&t);

    /* Raw bytes keep their place among queued frames, before and after the 101. */
    t_init(&t, 0, NULL);
    MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_TEXT, "a", 1, &t.out), 0);
    MW_CHECK_EQ_INT(ws_client_send_raw(&t.ws, "\x82\x80\0\0\0\0", 6, &t.out), 0);
    MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_TEXT, "b", 1, &t.out), 0);
    MW_CHECK_EQ_INT(t.out.len, 0);
    MW_CHECK_EQ_INT(push(&t, S(RESP101)), (long)(sizeof RESP101 - 1));
    MW_CHECK_EQ_INT(ws_client_send_raw(&t.ws, "\x81\x80\0\0\0\0", 6, &t.out), 0);
    MW_CHECK(out_is(&t, "1(a);2();1(b);1();"));
    MW_CHECK_EQ_INT(ws_client_close(&t.ws, 1000, NULL, 0, &t.out), 0);
    MW_CHECK_EQ_INT(ws_client_send_raw(&t.ws, "x", 1, &t.out), WS_E_CLOSED);
    t_free(&t);
}

/* ---- framing rules ------------------------------------------------------ */

typedef struct { const char *name; const char *frames; size_t n; int err; int code; const char *log; } frule;
#define F(name, lit, err, code, log) { name, lit, sizeof(lit) - 1, err, code, log }

static const frule rules[] = {
    F("rsv1", "\xc1\x01x", WS_E_RSV, 1002, "fail(-200,protocol error: reserved bits set without extension);"),
    F("rsv2", "\xa1\x01x", WS_E_RSV, 1002, NULL),
    F("rsv3 on ping", "\x99\x00", WS_E_RSV, 1002, NULL),
    F("rsv after good", "\x81\x02ok\xf2\x00", WS_E_RSV, 1002, "text(ok);fail(-200,protocol error: reserved bits set without extension);"),
    F("opcode 3", "\x83\x00", WS_E_OPCODE, 1002, "fail(-201,protocol error: reserved opcode 3);"),
    F("opcode 4", "\x84\x01x", WS_E_OPCODE, 1002, NULL),
    F("opcode 5", "\x85\x00", WS_E_OPCODE, 1002, NULL),
    F("opcode 6", "\x86\x00", WS_E_OPCODE, 1002, NULL),
    F("opcode 7", "\x87\x00", WS_E_OPCODE, 1002, NULL),
    F("opcode 11", "\x8b\x00", WS_E_OPCODE, 1002, NULL),
    F("opcode 12", "\x8c\x00", WS_E_OPCODE, 1002, NULL),
    F("opcode 13", "\x8d\x00", WS_E_OPCODE, 1002, NULL),
    F("opcode 14", "\x8e\x00", WS_E_OPCODE, 1002, NULL),
    F("opcode 15", "\x8f\x00", WS_E_OPCODE, 1002, NULL),
    F("masked", "\x81\x81\x01\x02\x03\x04y", WS_E_MASKED, 1002, "fail(-204,protocol error: masked frame from server);"),
    F("ping 126", "\x89\x7e\x00\x7e", WS_E_CONTROL_LEN, 1002, "fail(-202,protocol error: control frame payload of 126 bytes (max 125));"),
    F("close 126", "\x88\x7e\x00\x7e", WS_E_CONTROL_LEN, 1002, NULL),
    F("pong 64-bit", "\x8a\x7f\x00\x00\x00\x00\x00\x00\x00\x7e", WS_E_CONTROL_LEN, 1002, NULL),
    F("ping fin=0", "\x09\x00", WS_E_CONTROL_FRAG, 1002, "fail(-203,protocol error: fragmented control frame);"),
    F("len top bit", "\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", WS_E_LENGTH, 1002, NULL),
    F("cont alone", "\x80\x01x", WS_E_CONTINUATION, 1002, "fail(-206,protocol error: continuation frame without a message to continue);"),
    F("cont after end", "\x01\x01" "a" "\x80\x01" "b" "\x80\x01" "c", WS_E_CONTINUATION, 1002, "text(ab);fail(-206,protocol error: continuation frame without a message to continue);"),
    F("text in frag", "\x01\x01" "a" "\x81\x01" "b", WS_E_FRAGMENT, 1002, "fail(-207,protocol error: new data frame inside a fragmented message);"),
    F("bin in frag", "\x02\x01" "a" "\x02\x01" "b", WS_E_FRAGMENT, 1002, NULL),
    F("bad utf8", "\x81\x02\xc0\x80", WS_E_UTF8, 1007, NULL),
    F("bad utf8 frag", "\x01\x02\xce\xba\x00\x01\xed\x80\x01\xa0", WS_E_UTF8, 1007, NULL),
    F("truncated utf8 at end", "\x01\x02\xce\xba\x80\x01\xe1", WS_E_UTF8, 1007,
      "fail(-208,invalid UTF-8 in text message (truncated at the end));"),
    F("close 1 byte", "\x88\x01\x03", WS_E_CLOSE_LEN, 1002, "fail(-211,protocol error: close frame with a 1-byte payload);"),
    F("close bad utf8", "\x88\x04\x03\xe8\xc0\x80", WS_E_CLOSE_UTF8, 1007, "fail(-212,invalid UTF-8 in close reason);"),
};

static void test_framing_rules(void)
{
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
        for (size_t step = 0; step <= 1; step++) {
            const frule *f = &rules[i];
            tctx t;
            t_init(&t, 0, NULL);
            open_ok(&t);
            long r = push_steps(&t, f->frames, f->n, step);
            int ok = r == f->err && ws_client_state(&t.ws) == WS_STATE_FAILED &&
                     ws_client_fail_code(&t.ws) == f->code && t.fails == 1;
            if (!ok) fprintf(stderr, "  rule %s step %zu: r=%ld code=%d log=%s\n", f->name, step, r,
                             ws_client_fail_code(&t.ws), t.log);
            MW_CHECK(ok);
            if (f->log) MW_CHECK(log_is(&t, f->log));
            char want[32];
            snprintf(want, sizeof want, "8(%d);", f->code);
            MW_CHECK(out_is(&t, want));
            /* Nothing more is parsed or sent. */
            MW_CHECK_EQ_INT(ws_client_feed(&t.ws, "\x81\x01x", 3, &t.out), f->err);
            MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_TEXT, "x", 1, &t.out), WS_E_CLOSED);
            MW_CHECK_EQ_INT(ws_client_close(&t.ws, 1000, NULL, 0, &t.out), WS_E_CLOSED);
            MW_CHECK(out_is(&t, want));
            t_free(&t);
        }
}

/* Fragmentation with control frames in between, zero-length fragments. */
static void test_fragmentation(void)
{
    const char in[] =
        "\x01\x03" "Hel" "\x89\x02p1" "\x00\x00" "\x8a\x02q1" "\x00\x02lo" "\x89\x00" "\x80\x01!"
        "\x02\x00" "\x00\x00" "\x80\x00"              /* empty binary in three fragments */
        "\x02\x02\x01\x02" "\x89\x7d" "PPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPPP"
        "\x80\x01\x03";
    char p125[125], h[64], wlog[256], wout[256];
    memset(p125, 'P', sizeof p125);
    tctx *tmp = calloc(1, sizeof *tmp);
    logp(tmp, p125, sizeof p125);
    snprintf(h, sizeof h, "%.60s", tmp->log);
    free(tmp);
    snprintf(wlog, sizeof wlog, "ping(p1);pong(q1);ping();text(Hello!);bin();ping(%s);bin(\\x01\\x02\\x03);", h);
    snprintf(wout, sizeof wout, "10(p1);10();10(%s);", h);
    for (size_t step = 0; step <= 1; step++) {
        tctx t;
        t_init(&t, 0, NULL);
        open_ok(&t);
        MW_CHECK(push_steps(&t, S(in), step) >= 0);
        MW_CHECK(log_is(&t, wlog));
        MW_CHECK(out_is(&t, wout));
        MW_CHECK_EQ_INT(ws_client_buffered(&t.ws), 0);
        t_free(&t);
    }
}

/* Text that is not UTF-8 fails with the same words whichever path finds it:
 * the whole frame in the caller's bytes, a deferred frame (defer_max), or
 * reassembly (found by fuzz_ws_diff: "byte 3 of 6" against "byte 3", "byte 2
 * of 2" against "truncated at the end"). */
static void test_utf8_fail_same_words(void)
{
    static const struct { const char *in; size_t n; const char *log; } cases[] = {
        { S("\x81\x06" "ab\xc0\x80" "cd"), "fail(-208,invalid UTF-8 in text message (byte 3));" },
        { S("\x81\x02" "a\xe2"), "fail(-208,invalid UTF-8 in text message (truncated at the end));" },
        { S("\x01\x02" "a\xce" "\x80\x03" "\xba\xed\xa0"),
          "fail(-208,invalid UTF-8 in text message (byte 5));" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (uint64_t defer = 0; defer <= 1 << 16; defer += 1 << 16)
            for (size_t step = 0; step <= 1; step++) {
                tctx t;
                t_init_defer(&t, 1 << 16, defer, NULL);
                open_ok(&t);
                MW_CHECK_EQ_INT(push_steps(&t, cases[i].in, cases[i].n, step), WS_E_UTF8);
                if (!log_is(&t, cases[i].log))
                    fprintf(stderr, "  case %zu defer %llu step %zu: %s\n", i, (unsigned long long)defer, step, t.log);
                MW_CHECK(log_is(&t, cases[i].log));
                MW_CHECK(out_is(&t, "8(1007);"));
                t_free(&t);
            }
}

/* The invalid byte is caught the moment it arrives, mid-frame. */
static void test_utf8_fail_fast(void)
{
    /* Frame announces 20 bytes; the 6th payload byte (0xF8) is invalid. */
    const char in[] = "\x81\x14" "abcde\xf8" "ghijklmnopqrst";
    tctx t;
    t_init(&t, 0, NULL);
    open_ok(&t);
    size_t fed = 0;
    long r = 0;
    while (fed < sizeof in - 1) {
        r = push(&t, in + fed, 1);
        fed++;
        if (r < 0) break;
    }
    MW_CHECK_EQ_INT(r, WS_E_UTF8);
    MW_CHECK_EQ_INT(fed, 2 + 6);
    MW_CHECK(log_is(&t, "fail(-208,invalid UTF-8 in text message (byte 6));"));
    MW_CHECK(out_is(&t, "8(1007);"));
    t_free(&t);

    /* Across fragments: a code point may straddle fragments (fine) ... */
    const char ok[] = "\x01\x02" "a\xe2" "\x00\x01\x82" "\x80\x01\xac";
    t_init(&t, 0, NULL);
    open_ok(&t);
    MW_CHECK(push_steps(&t, S(ok), 1) >= 0);
    MW_CHECK(log_is(&t, "text(a\\xe2\\x82\\xac);"));
    t_free(&t);
    /* ... but an impossible continuation in the 2nd fragment fails there,
     * before the final fragment arrives. */
    const char bad[] = "\x01\x02" "a\xe2" "\x00\x02\x82\x41" "\x80\x01!";
    t_init(&t, 0, NULL);
    open_ok(&t);
    fed = 0;
    while (fed < sizeof bad - 1) {
        r = push(&t, bad + fed, 1);
        fed++;
        if (r < 0) break;
    }
    MW_CHECK_EQ_INT(r, WS_E_UTF8);
    MW_CHECK_EQ_INT(fed, 4 + 4);
    t_free(&t);
}

/* ---- closing ------------------------------------------------------------ */

static void close_case(unsigned code, int with_code, const char *reason, int want_err,
                       int want_reply, const char *want_log)
{
    char frame[200];
    size_t n = 0, rl = strlen(reason);
    frame[n++] = (char)0x88;
    frame[n++] = (char)(with_code ? 2 + rl : 0);
    if (with_code) { frame[n++] = (char)(code >> 8); frame[n++] = (char)code; }
    memcpy(frame + n, reason, rl);
    n += rl;
    tctx t;
    t_init(&t, 0, NULL);
    open_ok(&t);
    long r = push(&t, frame, n);
    char want[64];
    if (want_err) {
        MW_CHECK_EQ_INT(r, want_err);
        MW_CHECK_EQ_INT(ws_client_state(&t.ws), WS_STATE_FAILED);
        MW_CHECK_EQ_INT(ws_client_fail_code(&t.ws), want_reply);
        snprintf(want, sizeof want, "8(%d);", want_reply);
    } else {
        MW_CHECK_EQ_INT(r, (long)n);
        MW_CHECK_EQ_INT(ws_client_state(&t.ws), WS_STATE_CLOSED);
        if (want_reply) snprintf(want, sizeof want, "8(%d);", want_reply);
        else snprintf(want, sizeof want, "8();");
        /* After the close, bytes are ignored and nothing can be sent. */
        MW_CHECK_EQ_INT(push(&t, S("\x81\x01x\x89\x00")), 5);
        MW_CHECK_EQ_INT(t.messages, 0);
        MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_PING, "", 0, &t.out), WS_E_CLOSED);
    }
    if (!out_is(&t, want) || (want_log && !log_is(&t, want_log)))
        fprintf(stderr, "  close code %u\n", code);
    t_free(&t);
}

static void test_close_codes(void)
{
    static const unsigned valid[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                                      3000, 3999, 4000, 4999 };
    static const unsigned invalid[] = { 0, 999, 1004, 1005, 1006, 1015, 1016,
                                        1100, 2000, 2999, 5000, 65535 };
    for (size_t i = 0; i < sizeof valid / sizeof valid[0]; i++) {
        char log[64];
        snprintf(log, sizeof log, "close(%u,);", valid[i]);
        close_case(valid[i], 1, "", 0, (int)valid[i], log);
    }
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++)
        close_case(invalid[i], 1, "", WS_E_CLOSE_CODE, 1002, NULL);
    close_case(0, 0, "", 0, 0, "close(1005,);");
    close_case(1000, 1, "Hello \xe2\x82\xac", 0, 1000, "close(1000,Hello \\xe2\\x82\\xac);");
    close_case(1000, 1, "bad \xed\xa0\x80", WS_E_CLOSE_UTF8, 1007, NULL);
    char r123[124];
    memset(r123, 'r', 123);
    r123[123] = 0;
    close_case(1001, 1, r123, 0, 1001, NULL);
}

/* We close first: CLOSING until the server's close, which is not answered. */
static void test_close_initiated(void)
{
    tctx t;
    t_init(&t, 0, NULL);
    open_ok(&t);
    char r124[124];
    memset(r124, 'r', sizeof r124);
    MW_CHECK_EQ_INT(ws_client_close(&t.ws, 1000, r124, 124, &t.out), WS_E_BAD_REASON);
    MW_CHECK_EQ_INT(ws_client_close(&t.ws, 1000, "\xff", 1, &t.out), WS_E_BAD_REASON);
    MW_CHECK_EQ_INT(ws_client_close(&t.ws, 1005, NULL, 0, &t.out), WS_E_BAD_CODE);
    MW_CHECK_EQ_INT(ws_client_close(&t.ws, 999, NULL, 0, &t.out), WS_E_BAD_CODE);
    MW_CHECK_EQ_INT(ws_client_close(&t.ws, 0, "x", 1, &t.out), WS_E_BAD_CODE);
    MW_CHECK_EQ_INT(t.out.len, 0);
    MW_CHECK_EQ_INT(ws_client_close(&t.ws, 1000, r124, 123, &t.out), 0);
    MW_CHECK_EQ_INT(ws_client_state(&t.ws), WS_STATE_CLOSING);
    MW_CHECK_EQ_INT(ws_client_close(&t.ws, 1000, NULL, 0, &t.out), WS_E_CLOSED);
    MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_TEXT, "x", 1, &t.out), WS_E_CLOSED);
    mw_buf_clear(&t.out);
    /* Data and pings still arrive while closing; pings are not answered. */
    MW_CHECK_EQ_INT(push(&t, S("\x81\x01x\x89\x00\x88\x02\x03\xe8")), 9);
    MW_CHECK(log_is(&t, "text(x);ping();close(1000,);"));
    MW_CHECK_EQ_INT(t.out.len, 0);
    MW_CHECK_EQ_INT(ws_client_state(&t.ws), WS_STATE_CLOSED);
    t_free(&t);

    /* close without status */
    t_init(&t, 0, NULL);
    open_ok(&t);
    MW_CHECK_EQ_INT(ws_client_close(&t.ws, 0, NULL, 0, &t.out), 0);
    MW_CHECK(out_is(&t, "8();"));
    t_free(&t);
}

/* ---- callbacks re-entering the engine ----------------------------------- */

static void test_callbacks(void)
{
    const char in[] = "\x81\x01" "a" "\x81\x01" "b" "\x89\x01" "c";
    tctx t;
    /* stop: feed returns after each message; the caller resumes. */
    t_init(&t, 0, NULL);
    open_ok(&t);
    t.stop_on_message = 1;
    MW_CHECK_EQ_INT(ws_client_feed(&t.ws, in, sizeof in - 1, &t.out), 3);
    MW_CHECK_EQ_INT(ws_client_feed(&t.ws, in + 3, sizeof in - 4, &t.out), 3);
    MW_CHECK_EQ_INT(ws_client_feed(&t.ws, in + 6, sizeof in - 7, &t.out), 3);
    MW_CHECK(log_is(&t, "text(a);text(b);ping(c);"));
    t_free(&t);
    /* close from inside on_message: the later ping is not answered. */
    t_init(&t, 0, NULL);
    open_ok(&t);
    t.close_on_message = 1;
    t.messages = 0;
    MW_CHECK_EQ_INT(push(&t, S("\x81\x01" "a" "\x89\x01" "c")), 6);
    MW_CHECK(out_is(&t, "8(1000,done);"));
    MW_CHECK_EQ_INT(ws_client_state(&t.ws), WS_STATE_CLOSING);
    t_free(&t);
    /* on_ping declines the automatic pong. */
    t_init(&t, 0, NULL);
    open_ok(&t);
    t.ping_flags = WS_CB_NO_PONG;
    MW_CHECK_EQ_INT(push(&t, S("\x89\x01" "c" "\x89\x01" "d")), 6);
    MW_CHECK_EQ_INT(t.out.len, 0);
    MW_CHECK(log_is(&t, "ping(c);ping(d);"));
    t_free(&t);
    /* feed before start: refused; a send before start is queued (once, as the
     * frame it is) and nothing is written until the 101 */
    ws_client ws;
    ws_client_init(&ws, NULL);
    mw_buf out = MW_BUF_INIT;
    MW_CHECK_EQ_INT(ws_client_feed(&ws, "x", 1, &out), WS_E_STATE);
    MW_CHECK_EQ_INT(ws_client_send(&ws, WS_OP_TEXT, "x", 1, &out), 0);
    MW_CHECK_EQ_INT(ws_client_send_raw(&ws, "raw", 3, &out), 0);
    MW_CHECK_EQ_INT(out.len, 0);
    MW_CHECK_EQ_INT(ws_client_queued(&ws), 7 + 3);
    MW_CHECK_EQ_INT(ws_client_send(&ws, WS_OP_TEXT, "\xff", 1, &out), WS_E_SEND_UTF8);
    ws_config cfg = {.max_message = 5};
    MW_CHECK_EQ_INT(ws_client_configure(&ws, &cfg), 0);
    MW_CHECK_EQ_INT(ws_client_queued(&ws), 10);
    mw_buf_free(&out);
    ws_client_free(&ws);
    ws_client_free(&ws);
}

/* ---- limits ------------------------------------------------------------- */

static void test_max_message(void)
{
    tctx t;
    /* The header alone announces too much: fail before any payload. */
    t_init(&t, 100, NULL);
    open_ok(&t);
    MW_CHECK_EQ_INT(push(&t, S("\x82\x65")), WS_E_TOO_BIG);
    MW_CHECK(log_is(&t, "fail(-209,message exceeds maxPackageSize (100 bytes));"));
    MW_CHECK(out_is(&t, "8(1009);"));
    t_free(&t);
    /* 64-bit length far over the limit. */
    t_init(&t, 100, NULL);
    open_ok(&t);
    MW_CHECK_EQ_INT(push(&t, S("\x81\x7f\x00\x00\x00\x01\x00\x00\x00\x00")), WS_E_TOO_BIG);
    t_free(&t);
    /* Fragments adding up past the limit fail at the frame that crosses it. */
    t_init(&t, 100, NULL);
    open_ok(&t);
    char in[300];
    size_t n = 0;
    in[n++] = 0x01; in[n++] = 60; memset(in + n, 'a', 60); n += 60;
    in[n++] = 0x00; in[n++] = 40; memset(in + n, 'b', 40); n += 40;   /* exactly 100: fine */
    in[n++] = (char)0x80; in[n++] = 1; in[n++] = 'c';
    MW_CHECK_EQ_INT(push(&t, in, n), WS_E_TOO_BIG);
    MW_CHECK_EQ_INT(t.messages, 0);
    t_free(&t);
    /* Exactly the limit is allowed. */
    t_init(&t, 100, NULL);
    open_ok(&t);
    in[0] = (char)0x82; in[1] = 100;
    MW_CHECK_EQ_INT(push(&t, in, 102), 102);
    MW_CHECK_EQ_INT(t.messages, 1);
    t_free(&t);
}

/* ws_client_take: whole simple messages only, and no state changed. */
static void test_take(void)
{
    tctx t;
    const char *p;
    size_t n;
    int text;
    t_init(&t, 100, NULL);
    MW_CHECK_EQ_INT(ws_client_take(&t.ws, S("\x81\x02hi"), &p, &n, &text), 0);   /* not open yet */
    open_ok(&t);
    MW_CHECK_EQ_INT(ws_client_take(&t.ws, S("\x81\x02hi\x82\x01x"), &p, &n, &text), 4);
    MW_CHECK(n == 2 && memcmp(p, "hi", 2) == 0 && text == 1);
    MW_CHECK_EQ_INT(ws_client_take(&t.ws, S("\x82\x01x"), &p, &n, &text), 3);
    MW_CHECK(n == 1 && text == 0);
    MW_CHECK_EQ_INT(ws_client_take(&t.ws, S("\x81\x02h"), &p, &n, &text), 0);        /* partial */
    MW_CHECK_EQ_INT(ws_client_take(&t.ws, S("\x81\x02\xc3("), &p, &n, &text), 0);   /* bad UTF-8 */
    MW_CHECK_EQ_INT(ws_client_take(&t.ws, S("\x01\x02hi"), &p, &n, &text), 0);       /* no FIN */
    MW_CHECK_EQ_INT(ws_client_take(&t.ws, S("\x89\x00"), &p, &n, &text), 0);         /* ping */
    MW_CHECK_EQ_INT(ws_client_take(&t.ws, S("\xc1\x02hi"), &p, &n, &text), 0);       /* RSV1 */
    MW_CHECK_EQ_INT(ws_client_take(&t.ws, S("\x81\x82\0\0\0\0hi"), &p, &n, &text), 0); /* masked */
    MW_CHECK_EQ_INT(ws_client_take(&t.ws, S("\x82\x65"), &p, &n, &text), 0);         /* over max */
    /* nothing taken changed the engine: feeding the same bytes delivers them */
    MW_CHECK_EQ_INT(push(&t, S("\x81\x02hi\x82\x01x")), 7);
    MW_CHECK_EQ_INT(t.messages, 2);
    /* a fragmented message in progress: nothing is taken until it ends */
    MW_CHECK_EQ_INT(push(&t, S("\x01\x01" "a")), 3);
    MW_CHECK_EQ_INT(ws_client_take(&t.ws, S("\x81\x02hi"), &p, &n, &text), 0);
    t_free(&t);
}

/* ---- sending and masking ------------------------------------------------ */

static void test_send_masking(void)
{
    static const size_t sizes[] = { 0, 1, 3, 7, 8, 9, 125, 126, 127, 1000, 65535, 65536, 70001 };
    tctx t;
    t_init(&t, 0, NULL);
    open_ok(&t);
    char *p = malloc(70001);
    for (size_t i = 0; i < 70001; i++) p[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        mw_buf_clear(&t.out);
        /* misalign the output to exercise the word loop's prologue */
        mw_buf_append(&t.out, "xyz", i % 4);
        mw_buf_consume(&t.out, i % 4);
        MW_CHECK_EQ_INT(ws_client_send(&t.ws, i & 1 ? WS_OP_BINARY : WS_OP_TEXT, p, sizes[i], &t.out), 0);
        const unsigned char *b = (const unsigned char *)bh(&t.out);
        ws_frame_hdr h;
        int hn = ws_frame_parse(b, t.out.len, &h);
        MW_CHECK(hn > 0 && h.masked && h.fin && h.len == sizes[i]);
        MW_CHECK_EQ_INT(t.out.len, (size_t)hn + sizes[i]);
        int bad = 0;
        for (size_t k = 0; k < sizes[i]; k++)
            if ((char)(b[hn + k] ^ h.mask[k & 3]) != p[k]) bad++;
        MW_CHECK_EQ_INT(bad, 0);
    }
    /* Fresh key per frame. */
    mw_buf_clear(&t.out);
    ws_client_send(&t.ws, WS_OP_BINARY, "x", 1, &t.out);
    ws_client_send(&t.ws, WS_OP_BINARY, "x", 1, &t.out);
    MW_CHECK_EQ_INT(t.out.len, 14);
    if (t.out.len == 14) MW_CHECK(memcmp(t.out.data + t.out.off + 2, t.out.data + t.out.off + 9, 4) != 0);
    /* Refusals write nothing. */
    mw_buf_clear(&t.out);
    MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_TEXT, "ab\xc0", 3, &t.out), WS_E_SEND_UTF8);
    MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_PING, p, 126, &t.out), WS_E_SEND_CONTROL);
    MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_PONG, p, 126, &t.out), WS_E_SEND_CONTROL);
    MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_CLOSE, "", 0, &t.out), WS_E_BAD_OPCODE);
    MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_CONT, "", 0, &t.out), WS_E_BAD_OPCODE);
    MW_CHECK_EQ_INT(t.out.len, 0);
    MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_PING, p, 125, &t.out), 0);
    free(p);
    t_free(&t);
}

/* ---- streams: whole, byte at a time, every split ------------------------ */

static size_t build_stream(char *b, int big)
{
    size_t n = 0;
    memcpy(b + n, RESP101, sizeof RESP101 - 1); n += sizeof RESP101 - 1;
    memcpy(b + n, "\x81\x05hello", 7); n += 7;
    b[n++] = (char)0x82; b[n++] = 126; b[n++] = 0; b[n++] = (char)200;
    for (int i = 0; i < 200; i++) b[n++] = (char)i;
    memcpy(b + n, "\x01\x03\xce\xba\xe1" "\x89\x02hi" "\x00\x00" "\x80\x08\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 21); n += 21;
    memcpy(b + n, "\x8a\x00" "\x81\x00", 4); n += 4;
    memcpy(b + n, "\x81\x02\xce\xb5", 4); n += 4;
    if (big) {
        b[n++] = (char)0x82; b[n++] = 127;
        for (int i = 0; i < 8; i++) b[n++] = (char)(i == 5 ? 1 : i == 6 ? 0x11 : i == 7 ? 0x71 : 0);
        for (int i = 0; i < 70001; i++) b[n++] = (char)(i * 7);
    }
    memcpy(b + n, "\x88\x05\x03\xe8" "bye", 7); n += 7;
    memcpy(b + n, "\x81\x01z", 3); n += 3;   /* after the close: ignored */
    return n;
}

static void run_stream(const char *in, size_t n, size_t step, size_t cut, char *log, char *out)
{
    tctx *t = malloc(sizeof *t);
    t_init(t, 0, NULL);
    if (cut) { push(t, in, cut); push(t, in + cut, n - cut); }
    else push_steps(t, in, n, step);
    strcpy(log, t->log);
    decode_out(t, out, 4096);
    MW_CHECK_EQ_INT(ws_client_state(&t->ws), WS_STATE_CLOSED);
    t_free(t);
    free(t);
}

static void test_streams(void)
{
    static char in[80000];
    static char log0[1 << 16], out0[4096], log1[1 << 16], out1[4096];
    size_t n = build_stream(in, 0);
    run_stream(in, n, 0, 0, log0, out0);
    char want[512];
    snprintf(want, sizeof want, "open(%zu);text(hello);bin(<200:%s>);ping(hi);text(\\xce\\xba\\xe1\\xbd\\xb9\\xcf\\x83\\xce\\xbc\\xce\\xb5);"
             "pong();text();text(\\xce\\xb5);close(1000,bye);", sizeof RESP101 - 1, "");
    /* the 200-byte checksum is whatever it is; compare the rest */
    MW_CHECK(strncmp(log0, want, strlen("open(000);text(hello);bin(<200:")) == 0);
    MW_CHECK(strstr(log0, ">);ping(hi);text(\\xce\\xba\\xe1\\xbd\\xb9\\xcf\\x83\\xce\\xbc\\xce\\xb5);pong();text();text(\\xce\\xb5);close(1000,bye);") != NULL);
    MW_CHECK(strcmp(out0, "10(hi);8(1000);") == 0);
    run_stream(in, n, 1, 0, log1, out1);
    MW_CHECK(strcmp(log0, log1) == 0 && strcmp(out0, out1) == 0);
    int diff = 0;
    for (size_t cut = 1; cut < n; cut++) {
        run_stream(in, n, 0, cut, log1, out1);
        if (strcmp(log0, log1) != 0 || strcmp(out0, out1) != 0) {
            if (!diff) fprintf(stderr, "  cut %zu:\n  %s\n  %s\n", cut, log0, log1);
            diff++;
        }
    }
    MW_CHECK_EQ_INT(diff, 0);
    /* With a 70001-byte binary: whole vs byte at a time vs a few splits. */
    n = build_stream(in, 1);
    run_stream(in, n, 0, 0, log0, out0);
    MW_CHECK(strstr(log0, "bin(<70001:") != NULL);
    run_stream(in, n, 1, 0, log1, out1);
    MW_CHECK(strcmp(log0, log1) == 0 && strcmp(out0, out1) == 0);
    static const size_t steps[] = { 2, 3, 7, 13, 100, 4096, 65536 };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        run_stream(in, n, steps[i], 0, log1, out1);
        MW_CHECK(strcmp(log0, log1) == 0 && strcmp(out0, out1) == 0);
    }
}

/* Steady state: fragmented messages reuse the reassembly buffer. */
static void test_no_alloc_steady(void)
{
    tctx t;
    t_init(&t, 0, NULL);
    open_ok(&t);
    const char m[] = "\x01\x03" "abc" "\x80\x03" "def";
    push(&t, S(m));
    char *first = t.ws.msg.data;
    size_t cap = t.ws.msg.cap;
    MW_CHECK(first != NULL);
    for (int i = 0; i < 100; i++) push(&t, S(m));
    MW_CHECK(t.ws.msg.data == first && t.ws.msg.cap == cap);
    MW_CHECK_EQ_INT(t.messages, 101);
    t_free(&t);
}

int main(void)
{
    MW_RUN(test_request_bytes);
    MW_RUN(test_take);
    MW_RUN(test_request_host);
    MW_RUN(test_request_user_agent);
    MW_RUN(test_request_injection);
    MW_RUN(test_response_failures);
    MW_RUN(test_status_early);
    MW_RUN(test_status_retry_after);
    MW_RUN(test_response_ok_variants);
    MW_RUN(test_subprotocol);
    MW_RUN(test_leftover_and_pending);
    MW_RUN(test_framing_rules);
    MW_RUN(test_fragmentation);
    MW_RUN(test_utf8_fail_fast);
    MW_RUN(test_utf8_fail_same_words);
    MW_RUN(test_close_codes);
    MW_RUN(test_close_initiated);
    MW_RUN(test_callbacks);
    MW_RUN(test_max_message);
    MW_RUN(test_send_masking);
    MW_RUN(test_streams);
    MW_RUN(test_no_alloc_steady);
    return MW_DONE();
}
