/* fuzz_ws_inflate: ws_inflater over arbitrary "compressed" messages fed in splits chosen by
 * the input, with a limit, against zlib run in one go per message; and ws_deflater on the
 * same bytes as plain messages, inflated back by zlib. Knows only ws/ws_deflate.h. */
#include "ws/ws_deflate.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* The reference: one inflate call sequence over the whole message with the
 * tail, output capped one byte past the limit. Returns a WS_Z_* code. */
static int ref_message(z_stream *z, const uint8_t *in, size_t n, uint64_t limit, mw_buf *out, int *ended)
{
    uint8_t *buf = malloc(n + 4);
    memcpy(buf, in, n);
    memcpy(buf + n, "\0\0\xff\xff", 4);
    size_t cap = limit ? (size_t)limit + 1 : (size_t)1 << 22;
    char *dst = mw_buf_reserve(out, cap);
    z->next_in = buf;
    z->avail_in = (uInt)(n + 4);
    z->next_out = (Bytef *)dst;
    z->avail_out = (uInt)cap;
    int r = Z_OK, code = WS_Z_OK;
    while (r == Z_OK && z->avail_in && z->avail_out) r = inflate(z, Z_SYNC_FLUSH);
    size_t got = cap - z->avail_out;
    mw_buf_commit(out, got);
    if (limit && got > limit) code = WS_Z_LIMIT;
    else if (r == Z_STREAM_END) *ended = 1;
    else if (r != Z_OK && r != Z_BUF_ERROR) code = WS_Z_CORRUPT;
    else if (!limit && z->avail_out == 0) code = -100;   /* the reference's own cap: skip */
    else if ((z->data_type & (128 | 64 | 7)) != 128) code = WS_Z_CORRUPT;
    free(buf);
    return code;
}

/* The same bytes as messages to compress: what zlib inflates back must be them. */
static void deflate_back(const uint8_t *data, size_t size, int nmsg, int wbits, int no_takeover)
{
    if (wbits < 9) wbits = 9;
    ws_zcount zc = { 0 };
    ws_deflater d = { 0 };
    ws_deflater_setup(&d, wbits, 1 + (int)(size % 9), 1 + (int)(size % 7 + 2) % 9, no_takeover, &zc);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -wbits) != Z_OK) abort();
    mw_buf c = MW_BUF_INIT, back = MW_BUF_INIT;
    size_t per = size / (size_t)nmsg;
    for (int m = 0; m < nmsg; m++) {
        const uint8_t *in = data + per * (size_t)m;
        size_t n = m == nmsg - 1 ? size - per * (size_t)m : per;
        mw_buf_clear(&c);
        mw_buf_clear(&back);
        if (!n) continue;   /* the engine never compresses an empty message */
        if (ws_deflater_message(&d, in, n, &c) != 0) abort();
        if (mw_buf_append(&c, "\0\0\xff\xff", 4)) abort();
        char *dst = mw_buf_reserve(&back, n + 1);
        z.next_in = (Bytef *)mw_buf_head(&c);
        z.avail_in = (uInt)c.len;
        z.next_out = (Bytef *)dst;
        z.avail_out = (uInt)(n + 1);
        int r = inflate(&z, Z_SYNC_FLUSH);
        if (r != Z_OK || z.avail_in != 0 || z.avail_out != 1 || memcmp(dst, in, n) != 0) abort();
        if (no_takeover) inflateReset(&z);
    }
    ws_deflater_release(&d);
    if (zc.bytes != 0 || zc.allocs != zc.frees) abort();
    inflateEnd(&z);
    mw_buf_free(&c);
    mw_buf_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4) return 0;
    int wbits = 8 + (data[0] & 7);
    int no_takeover = (data[0] >> 3) & 1;
    static const uint64_t limits[] = { 0, 1, 100, 1000, 16384, 16385, 100000, 1 << 20 };
    uint64_t limit = limits[(data[0] >> 4) & 7];
    unsigned step = data[1] ? data[1] : 1;   /* feed size, varied per piece */
    int nmsg = 1 + data[2] % 3;
    data += 3;
    size = 3 > size ? 0 : size - 3;

    deflate_back(data, size, nmsg, wbits, no_takeover);
    ws_zcount zc = { 0 };
    ws_inflater f = { 0 };
    ws_inflater_setup(&f, wbits, no_takeover, &zc);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK) abort();   /* as ws_inflater, whatever wbits says */
    mw_buf got = MW_BUF_INIT, want = MW_BUF_INIT;
    size_t per = size / (size_t)nmsg;
    for (int m = 0; m < nmsg; m++) {
        const uint8_t *in = data + per * (size_t)m;
        size_t n = m == nmsg - 1 ? size - per * (size_t)m : per;
        mw_buf_clear(&got);
        mw_buf_clear(&want);
        int e = 0;
        size_t pos = 0, k = step;
        while (!e) {
            size_t take = n - pos < k ? n - pos : k;
            int last = pos + take == n;
            e = ws_inflater_feed(&f, in + pos, take, last, limit, &got, NULL, NULL);
            pos += take;
            k = k * 7 % 251 + 1;
            if (last) break;
        }
        if (limit && got.len > limit) abort();
        if (zc.peak > ((size_t)1 << 15) + 16 * 1024) abort();
        int ended = 0;
        int r = ref_message(&z, in, n, limit, &want, &ended);
        if (r == -100) break;
        if (e != r) abort();
        if (e == WS_Z_CORRUPT && !f.why) abort();
        if (!e && (got.len != want.len || memcmp(mw_buf_head(&got), mw_buf_head(&want), got.len) != 0)) abort();
        if (e == WS_Z_LIMIT && memcmp(mw_buf_head(&got), mw_buf_head(&want), (size_t)limit) != 0) abort();
        if (e) break;
        if (no_takeover || ended) inflateReset(&z);
    }
    ws_inflater_release(&f);
    if (zc.bytes != 0 || zc.allocs != zc.frees) abort();
    inflateEnd(&z);
    mw_buf_free(&got);
    mw_buf_free(&want);
    return 0;
}
