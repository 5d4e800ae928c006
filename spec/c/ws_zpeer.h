/* ws_zpeer: what the permessage-deflate tests share: zlib as the server (compressing
 * with the agreed parameters, inflating what the client sent), frames, and a client
 * under test that checks each message against the expected ones. Static, one copy per test. */
#ifndef WS_ZPEER_H
#define WS_ZPEER_H
#include "mwtest.h"
#include "ws/ws_client.h"
#include "ws/ws_deflate.h"
#include "ws/ws_frame.h"
#include <stdlib.h>
#include <zlib.h>

#define MWZ_UNUSED __attribute__((unused))

/* ---- deterministic randomness ------------------------------------------------ */

MWZ_UNUSED static uint64_t rng = 88172645463325252ull;
MWZ_UNUSED static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
MWZ_UNUSED static size_t rndn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

MWZ_UNUSED static int t_random(void *ud, void *out, size_t n)
{
    int *calls = ud;
    unsigned char *p = out;
    if ((*calls)++ == 0 && n == 16) { memcpy(p, "the sample nonce", 16); return 0; }
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)rnd();
    return 0;
}

/* ---- the server: zlib with the agreed parameters ------------------------------ */

typedef struct server {
    z_stream def, inf;
    int sbits, cbits, snct, cnct;
} server;

MWZ_UNUSED static void server_init(server *s, int sbits, int cbits, int snct, int cnct)
{
    memset(s, 0, sizeof *s);
    s->sbits = sbits; s->cbits = cbits; s->snct = snct; s->cnct = cnct;
    /* zlib refuses a raw window of 8; a 9 window is what such a server sends. */
    MW_CHECK_EQ_INT(deflateInit2(&s->def, 6, Z_DEFLATED, -(sbits < 9 ? 9 : sbits), 8, Z_DEFAULT_STRATEGY), Z_OK);
    MW_CHECK_EQ_INT(inflateInit2(&s->inf, -cbits), Z_OK);
}

MWZ_UNUSED static void server_free(server *s)
{
    deflateEnd(&s->def);
    inflateEnd(&s->inf);
}

/* Compress a message as RFC 7692 7.2.1 says, into a malloc'd buffer. */
MWZ_UNUSED static unsigned char *server_compress(server *s, const void *p, size_t n, size_t *outn)
{
    size_t cap = deflateBound(&s->def, n) + 64;
    unsigned char *o = malloc(cap);
    s->def.next_in = (Bytef *)p;
    s->def.avail_in = (uInt)n;
    s->def.next_out = o;
    s->def.avail_out = (uInt)cap;
    int r = deflate(&s->def, Z_SYNC_FLUSH);
    MW_CHECK_EQ_INT(s->def.avail_in, 0);
    size_t len = cap - s->def.avail_out;
    if (r == Z_BUF_ERROR && n == 0 && len == 0) {
        /* Nothing new since the last flush: zlib writes nothing, and the
         * RFC's empty stored block (7.2.1 step 2) is written by hand. */
        memcpy(o, "\0\0\0\xff\xff", 5);
        len = 5;
    } else {
        MW_CHECK_EQ_INT(r, Z_OK);
    }
    MW_CHECK(len >= 4 && memcmp(o + len - 4, "\0\0\xff\xff", 4) == 0);
    *outn = len - 4;
    if (s->snct) deflateReset(&s->def);
    return o;
}

/* Inflate what the client compressed (tail appended). */
MWZ_UNUSED static unsigned char *server_inflate(server *s, const unsigned char *p, size_t n, size_t *outn)
{
    size_t cap = 1024, len = 0;
    unsigned char *o = malloc(cap);
    unsigned char *in = malloc(n + 4);
    memcpy(in, p, n);
    memcpy(in + n, "\0\0\xff\xff", 4);
    s->inf.next_in = in;
    s->inf.avail_in = (uInt)(n + 4);
    for (;;) {
        if (cap - len < 4096) { cap *= 2; o = realloc(o, cap); }
        s->inf.next_out = o + len;
        s->inf.avail_out = (uInt)(cap - len);
        int r = inflate(&s->inf, Z_SYNC_FLUSH);
        len = cap - s->inf.avail_out;
        MW_CHECK(r == Z_OK || r == Z_BUF_ERROR);
        if (r != Z_OK && r != Z_BUF_ERROR) break;
        if (s->inf.avail_in == 0 && s->inf.avail_out) break;
    }
    free(in);
    if (s->cnct) inflateReset(&s->inf);
    *outn = len;
    return o;
}

/* One unmasked frame onto b. */
MWZ_UNUSED static void put_frame(mw_buf *b, int fin, int rsv1, int op, const void *p, size_t n)
{
    unsigned char h[WS_FRAME_MAX_HEADER];
    size_t hn = ws_frame_encode(h, fin, op, n, NULL);
    if (rsv1) h[0] |= 0x40;
    mw_buf_append(b, h, hn);
    mw_buf_append(b, p, n);
}

/* A message as frames: split at random points into up to `parts` frames,
 * RSV1 on the first when compressed, pings between fragments at times. */
MWZ_UNUSED static void put_message(mw_buf *b, int op, int z, const unsigned char *p, size_t n, int parts)
{
    size_t pos = 0;
    int first = 1;
    while (parts > 1 && pos < n) {
        size_t k = rndn(n - pos + 1);
        put_frame(b, 0, first && z, first ? op : WS_OP_CONT, p + pos, k);
        pos += k;
        first = 0;
        parts--;
        if (rndn(4) == 0) put_frame(b, 1, 0, WS_OP_PING, "p", 1);
    }
    put_frame(b, 1, first && z, first ? op : WS_OP_CONT, p + pos, n - pos);
}

/* ---- the client under test ------------------------------------------------------ */

typedef struct tc {
    ws_client ws;
    int rcalls;
    mw_buf out, in;
    /* expected messages, in order */
    const unsigned char *want[64];
    size_t want_len[64];
    int want_text[64];
    int nwant, got, bad;
    int fails, fail_err;
    char fail_msg[256];
} tc;

MWZ_UNUSED static int on_msg(void *ud, int is_text, const char *p, size_t n)
{
    tc *t = ud;
    if (t->got >= t->nwant || n != t->want_len[t->got] || is_text != t->want_text[t->got] ||
        (n && memcmp(p, t->want[t->got], n) != 0)) {
        fprintf(stderr, "  message %d differs (%zu bytes, want %zu)\n", t->got, n,
                t->got < t->nwant ? t->want_len[t->got] : 0);
        t->bad++;
    }
    t->got++;
    return 0;
}

MWZ_UNUSED static void on_fail(void *ud, int err, const char *msg)
{
    tc *t = ud;
    t->fails++;
    t->fail_err = err;
    snprintf(t->fail_msg, sizeof t->fail_msg, "%s", msg);
}

MWZ_UNUSED static void expect(tc *t, int text, const void *p, size_t n)
{
    t->want[t->nwant] = p;
    t->want_len[t->nwant] = n;
    t->want_text[t->nwant] = text;
    t->nwant++;
}

#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* Start a client offering o (with max_message, defer_max) and answer with the
 * extension field `ext` (NULL: none). Returns the feed result of the 101. */
MWZ_UNUSED static long tc_open(tc *t, const ws_deflate_opts *o, uint64_t max, uint64_t defer, const char *ext)
{
    memset(t, 0, sizeof *t);
    ws_config cfg = { .max_message = max, .defer_max = defer, .random = t_random, .random_ud = &t->rcalls,
                      .ev = { .ud = t, .on_message = on_msg, .on_fail = on_fail } };
    if (o) cfg.deflate = *o;
    ws_client_init(&t->ws, &cfg);
    static const ws_request req = { .host = "example.com", .host_len = 11, .path = "/", .path_len = 1 };
    MW_CHECK_EQ_INT(ws_client_start(&t->ws, &req, &t->out), 0);
    mw_buf_clear(&t->out);
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: " ACCEPT "\r\n%s%s%s\r\n",
                     ext ? "Sec-WebSocket-Extensions: " : "", ext ? ext : "", ext ? "\r\n" : "");
    return ws_client_feed(&t->ws, head, (size_t)n, &t->out);
}

MWZ_UNUSED static void tc_free(tc *t)
{
    ws_client_free(&t->ws);
    mw_buf_free(&t->out);
    mw_buf_free(&t->in);
}

/* Feed bytes as a transport would: in pieces of random size (1 byte at times),
 * keeping what the engine left. Returns the last feed result. */
MWZ_UNUSED static long tc_feed(tc *t, const char *p, size_t n, size_t maxstep)
{
    long r = 0;
    size_t pos = 0;
    while (pos < n) {
        size_t k = rndn(3) == 0 ? 1 : 1 + rndn(maxstep);
        if (k > n - pos) k = n - pos;
        mw_buf_append(&t->in, p + pos, k);
        pos += k;
        do {
            r = ws_client_feed(&t->ws, mw_buf_head(&t->in), t->in.len, &t->out);
            if (r < 0) { mw_buf_clear(&t->in); return r; }
            mw_buf_consume(&t->in, (size_t)r);
        } while (r > 0 && t->in.len);
    }
    return r;
}

/* What the client sent, decoded by the server: frames unmasked, RSV1
 * messages inflated. Calls back per message; counts compressed ones. */
MWZ_UNUSED static int decode_sent(tc *t, server *s, unsigned char **msgs, size_t *lens, int max, int *compressed)
{
    const unsigned char *b = (const unsigned char *)mw_buf_head(&t->out);
    size_t pos = 0;
    int n = 0;
    *compressed = 0;
    while (pos < t->out.len && n < max) {
        ws_frame_hdr h;
        int hn = ws_frame_parse(b + pos, t->out.len - pos, &h);
        MW_CHECK(hn > 0 && h.masked && h.fin);
        if (hn <= 0) break;
        pos += (size_t)hn;
        unsigned char *pl = malloc(h.len + 1);
        for (size_t i = 0; i < h.len; i++) pl[i] = b[pos + i] ^ h.mask[i & 3];
        pos += h.len;
        if (h.rsv == 4) {
            MW_CHECK(h.opcode == WS_OP_TEXT || h.opcode == WS_OP_BINARY);
            (*compressed)++;
            msgs[n] = server_inflate(s, pl, h.len, &lens[n]);
            free(pl);
        } else {
            MW_CHECK_EQ_INT(h.rsv, 0);
            msgs[n] = pl;
            lens[n] = h.len;
        }
        n++;
    }
    mw_buf_clear(&t->out);
    return n;
}

/* Messages to send: compressible text, random bytes, sizes up to 256 KiB. */
MWZ_UNUSED static unsigned char *make_payload(size_t n, int text)
{
    static const char *words[] = { "alpha ", "beta ", "gamma ", "\xc3\xa9t\xc3\xa9 ", "{\"k\":1}, ", "moonwire " };
    unsigned char *p = malloc(n + 16);
    size_t i = 0;
    if (!text && rndn(2)) {
        for (; i < n; i++) p[i] = (unsigned char)rnd();
        return p;
    }
    while (i < n) {
        const char *w = words[rndn(6)];
        size_t k = strlen(w);
        if (i + k > n) {
            /* pad with ASCII so a code point is never cut */
            while (i < n) p[i++] = 'x';
            break;
        }
        memcpy(p + i, w, k);
        i += k;
    }
    return p;
}

MWZ_UNUSED static const size_t sizes[] = { 0, 1, 31, 32, 100, 1000, 5000, 70000, 262144 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* ---- a client with the default agreement, and the close it sent ------------------ */

MWZ_UNUSED static tc *open_agreed(tc *t, uint64_t max, uint64_t defer)
{
    ws_deflate_opts o = { .enabled = 1 };
    MW_CHECK(tc_open(t, &o, max, defer, "permessage-deflate") > 0);
    return t;
}

/* The close frame the failure sent: its code. */
MWZ_UNUSED static int sent_close(tc *t)
{
    ws_frame_hdr h;
    const unsigned char *b = (const unsigned char *)mw_buf_head(&t->out);
    int hn = ws_frame_parse(b, t->out.len, &h);
    if (hn <= 0 || h.opcode != WS_OP_CLOSE || h.len < 2) return -1;
    return (b[hn] ^ h.mask[0]) << 8 | (b[hn + 1] ^ h.mask[1]);
}
#endif
