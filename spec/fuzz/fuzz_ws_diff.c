/* fuzz_ws_diff: the same server bytes through the engine with deferral off
 * (defer_max 0: every frame reassembled), at production's value (defer_max =
 * max_message, as proto_ws sets it) and at a small value (frames on both sides
 * of the bound), each fed whole, at every split point (short inputs) or at
 * splits derived from the input (long ones), and one byte at a time. Every run
 * must give the same events (kind, bytes, close code and reason, failure code
 * and message) and the same output bytes as the reference run: abort() if not.
 *
 * Input: byte 0 picks the limits and whether the 101 head is supplied here
 * (so most inputs are about frames); the rest is what the server sends. */
#include "ws/ws_client.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char HEAD[] =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

static int f_random(void *ud, void *out, size_t n)
{
    (void)ud;
    static const char nonce[16] = "the sample nonce";
    if (n == 16) memcpy(out, nonce, 16);   /* the key whose accept HEAD carries */
    else memset(out, 0x5a, n);
    return 0;
}

typedef struct dctx {
    ws_client *ws;
    mw_buf *out;
    mw_buf log;      /* one record per event: tag, 8-byte length, bytes */
    unsigned n;      /* events so far: the callbacks' actions depend on it alone */
} dctx;

static void rec(dctx *d, char tag, const void *p, size_t n)
{
    uint64_t len = n;
    if (mw_buf_append(&d->log, &tag, 1) || mw_buf_append(&d->log, &len, sizeof len) ||
        (n && mw_buf_append(&d->log, p, n)))
        abort();
}

static void rec_int(dctx *d, char tag, long v) { rec(d, tag, &v, sizeof v); }

/* The same actions in every run, picked by the event count: send, close,
 * stop the feed. */
static int act(dctx *d, const char *p, size_t n)
{
    d->n++;
    if (d->n % 7 == 0) ws_client_send(d->ws, WS_OP_BINARY, p, n > 200 ? 200 : n, d->out);
    if (d->n % 11 == 0) ws_client_close(d->ws, 1000, "bye", 3, d->out);
    return d->n % 5 == 0 ? WS_CB_STOP : 0;
}

static int on_open(void *ud, const char *head, size_t hn, const char *sp, size_t spn)
{
    dctx *d = ud;
    rec(d, 'O', head, hn);
    if (sp) rec(d, 'S', sp, spn);
    return act(d, "", 0);
}

static int on_message(void *ud, int is_text, const char *p, size_t n)
{
    dctx *d = ud;
    rec(d, is_text ? 'T' : 'B', p, n);
    return act(d, p, n);
}

static int on_ping(void *ud, const char *p, size_t n)
{
    dctx *d = ud;
    rec(d, 'P', p, n);
    return act(d, p, n) | (n & 1 ? WS_CB_NO_PONG : 0);
}

static int on_pong(void *ud, const char *p, size_t n)
{
    dctx *d = ud;
    rec(d, 'Q', p, n);
    return act(d, p, n);
}

static int on_close(void *ud, int code, const char *reason, size_t n)
{
    dctx *d = ud;
    rec_int(d, 'C', code);
    rec(d, 'R', reason, n);
    return act(d, reason, n);
}

static void on_fail(void *ud, int err, const char *msg)
{
    dctx *d = ud;
    rec_int(d, 'F', err);
    rec(d, 'M', msg, strlen(msg));
}

typedef struct result { mw_buf log, out; } result;

/* Feed data[0..len) cut at cuts[0..ncuts) (ascending; 0 and len implied), as
 * proto_ws does: unconsumed bytes stay at the buffer's head, the next piece is
 * appended, and room is reserved for a deferred frame. */
static void run(uint64_t max_message, uint64_t defer_max, const uint8_t *data, size_t len,
                const size_t *cuts, size_t ncuts, int bytewise, result *res)
{
    ws_client ws;
    mw_buf in = MW_BUF_INIT;
    mw_buf_init(&res->out);
    dctx d = { &ws, &res->out, MW_BUF_INIT, 0 };
    ws_config cfg = { .max_message = max_message, .defer_max = defer_max, .random = f_random,
                      .ev = { .ud = &d, .on_open = on_open, .on_message = on_message,
                              .on_ping = on_ping, .on_pong = on_pong, .on_close = on_close,
                              .on_fail = on_fail },
                      /* offered; agreed when the input's own head answers it */
                      .deflate = { .enabled = 1 } };
    ws_client_init(&ws, &cfg);
    ws_request req = { .host = "h", .host_len = 1, .protocols = "a,b", .protocols_len = 3 };
    if (ws_client_start(&ws, &req, &res->out) != 0) abort();
    size_t pos = 0, k = 0;
    long r = 0;
    while (pos < len) {
        size_t end = bytewise ? pos + 1 : k < ncuts ? cuts[k++] : len;
        if (end <= pos) continue;
        if (mw_buf_append(&in, data + pos, end - pos)) abort();
        pos = end;
        do {
            r = ws_client_feed(&ws, mw_buf_head(&in), in.len, &res->out);
            if (r < 0) break;
            if ((size_t)r > in.len) abort();
            mw_buf_consume(&in, (size_t)r);
        } while (r > 0 && in.len);
        if (r < 0) break;
        size_t want = ws_client_want(&ws);
        if (want > in.len && !mw_buf_reserve(&in, want - in.len)) abort();
    }
    rec_int(&d, 'Z', ws_client_state(&ws));
    rec_int(&d, 'E', ws_client_error(&ws));
    rec_int(&d, 'K', ws_client_fail_code(&ws));
    res->log = d.log;
    ws_client_free(&ws);
    mw_buf_free(&in);
}

static void dump(const char *what, const mw_buf *b)
{
    fprintf(stderr, "%s (%zu bytes):", what, b->len);
    const unsigned char *p = (const unsigned char *)mw_buf_head(b);
    for (size_t i = 0; i < b->len; i++) {
        if (i % 32 == 0) fprintf(stderr, "\n  ");
        fprintf(stderr, (p[i] >= 0x20 && p[i] < 0x7f) ? "%c" : "\\x%02x", p[i]);
    }
    fprintf(stderr, "\n");
}

static int same(const mw_buf *a, const mw_buf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(mw_buf_head(a), mw_buf_head(b), a->len) == 0);
}

static void check(const result *ref, uint64_t max, uint64_t defer, const uint8_t *data, size_t len,
                  const size_t *cuts, size_t ncuts, int bytewise)
{
    result r;
    run(max, defer, data, len, cuts, ncuts, bytewise, &r);
    if (!same(&ref->log, &r.log) || !same(&ref->out, &r.out)) {
        fprintf(stderr, "fuzz_ws_diff: max_message %llu, defer_max %llu, %s", (unsigned long long)max,
                (unsigned long long)defer, bytewise ? "byte at a time" : "cut at");
        for (size_t i = 0; !bytewise && i < ncuts; i++) fprintf(stderr, " %zu", cuts[i]);
        fprintf(stderr, " differs from defer_max 0 fed whole\n");
        dump("reference events", &ref->log);
        dump("these events", &r.log);
        dump("reference output", &ref->out);
        dump("this output", &r.out);
        abort();
    }
    mw_buf_free(&r.log);
    mw_buf_free(&r.out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    static const uint64_t maxes[] = { 1 << 16, 1000, 126, 3 };
    uint8_t flags = data[0];
    uint64_t max = maxes[flags & 3];
    uint64_t small = 1 + ((flags >> 3) & 31);   /* a deferral bound frames fall on both sides of */
    data++; size--;
    uint8_t *buf = NULL;
    if (flags & 4) {   /* supply the 101 head: the input is frames only */
        buf = malloc(sizeof HEAD - 1 + size + 1);
        if (!buf) abort();
        memcpy(buf, HEAD, sizeof HEAD - 1);
        if (size) memcpy(buf + sizeof HEAD - 1, data, size);
        data = buf;
        size += sizeof HEAD - 1;
    }
    /* Cuts inside a head supplied here teach nothing about frames. */
    size_t from = flags & 4 ? sizeof HEAD - 1 : 0, span = size - from;
    const uint64_t defers[] = { 0, max, small };
    result ref;
    run(max, 0, data, size, NULL, 0, 0, &ref);
    for (size_t c = 0; c < 3; c++) {
        uint64_t defer = defers[c];
        if (c) check(&ref, max, defer, data, size, NULL, 0, 0);
        if (size <= 1024) check(&ref, max, defer, data, size, NULL, 0, 1);
        if (span <= 256) {
            for (size_t i = from + 1; i < size; i++) check(&ref, max, defer, data, size, &i, 1, 0);
        } else {
            /* cuts from the input's own bytes: ascending, up to 16 of them */
            size_t cuts[16], n = 0, at = from;
            for (size_t i = 0; i < 16; i++) {
                at += 1 + (size_t)data[from + (i * 977) % span] * (span / 256 + 1);
                if (at >= size) break;
                cuts[n++] = at;
            }
            check(&ref, max, defer, data, size, cuts, n, 0);
            for (size_t i = 0; i < n; i++) check(&ref, max, defer, data, size, &cuts[i], 1, 0);
        }
    }
    mw_buf_free(&ref.log);
    mw_buf_free(&ref.out);
    free(buf);
    return 0;
}
