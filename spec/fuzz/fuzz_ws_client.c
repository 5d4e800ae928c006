/* fuzz_ws_client: arbitrary bytes as a server's response and frames, fed in
 * chunks chosen by the input itself. Checks the engine's invariants, not output. */
#include "ws/ws_client.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int f_random(void *ud, void *out, size_t n)
{
    (void)ud;
    static const char nonce[16] = "the sample nonce";
    /* The key is always the RFC sample so a seed can carry a valid accept. */
    if (n == 16) memcpy(out, nonce, 16);
    else memset(out, 0x5a, n);
    return 0;
}

typedef struct { ws_client *ws; mw_buf *out; unsigned n; } fctx;

static int on_msg(void *ud, int t, const char *p, size_t n)
{
    fctx *f = ud;
    (void)t;
    volatile char sink = 0;
    for (size_t i = 0; i < n; i++) sink ^= p[i];   /* touch every byte */
    (void)sink;
    if (++f->n % 7 == 0) ws_client_send(f->ws, WS_OP_BINARY, p, n > 200 ? 200 : n, f->out);
    if (f->n % 11 == 0) ws_client_close(f->ws, 1000, "bye", 3, f->out);
    return f->n % 5 == 0 ? WS_CB_STOP : 0;
}
static int on_ping(void *ud, const char *p, size_t n) { (void)ud; (void)p; return n & 1 ? WS_CB_NO_PONG : 0; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t chunk = data[0] ? data[0] : 4096;
    data++; size--;
    ws_client ws;
    mw_buf out = MW_BUF_INIT, in = MW_BUF_INIT;
    fctx f = { &ws, &out, 0 };
    ws_config cfg = { .max_message = 1 << 16, .random = f_random,
                      .ev = { .ud = &f, .on_message = on_msg, .on_ping = on_ping },
                      /* offered; agreed when the input's head answers it */
                      .deflate = { .enabled = 1 } };
    ws_client_init(&ws, &cfg);
    ws_request req = { .host = "h", .host_len = 1, .protocols = "a,b", .protocols_len = 3 };
    if (ws_client_start(&ws, &req, &out) != 0) abort();
    for (size_t pos = 0; pos < size; pos += chunk) {
        size_t n = size - pos < chunk ? size - pos : chunk;
        mw_buf_append(&in, data + pos, n);
        long r;
        do {
            r = ws_client_feed(&ws, mw_buf_head(&in), in.len, &out);
            if (r < 0) break;
            if ((size_t)r > in.len) abort();
            mw_buf_consume(&in, (size_t)r);
        } while (r > 0 && in.len);
        if (r < 0) {
            if (ws_client_state(&ws) != WS_STATE_FAILED) abort();
            break;
        }
        if (in.len > 16384 + 14) abort();   /* only a head or a frame header waits */
    }
    ws_client_free(&ws);
    mw_buf_free(&out);
    mw_buf_free(&in);
    return 0;
}
