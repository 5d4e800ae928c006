/* test_ws_deflate: permessage-deflate in the client engine against zlib itself as the
 * server: round trips at every window both ways, with and without context takeover,
 * fragmented and byte-split; limits (bombs), corrupt streams, RSV1 rules, allocations. */
#include "mwtest.h"
#include "ws/ws_client.h"
#include "ws/ws_deflate.h"
#include "ws/ws_frame.h"
#include <stdlib.h>
#include <zlib.h>

/* ---- deterministic randomness ------------------------------------------------ */

static uint64_t rng = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static size_t rndn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static int t_random(void *ud, void *out, size_t n)
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

static void server_init(server *s, int sbits, int cbits, int snct, int cnct)
{
    memset(s, 0, sizeof *s);
    s->sbits = sbits; s->cbits = cbits; s->snct = snct; s->cnct = cnct;
    /* zlib refuses a raw window of 8; a 9 window is what such a server sends. */
    MW_CHECK_EQ_INT(deflateInit2(&s->def, 6, Z_DEFLATED, -(sbits < 9 ? 9 : sbits), 8, Z_DEFAULT_STRATEGY), Z_OK);
    MW_CHECK_EQ_INT(inflateInit2(&s->inf, -cbits), Z_OK);
}

static void server_free(server *s)
{
    deflateEnd(&s->def);
    inflateEnd(&s->inf);
}

/* Compress a message as RFC 7692 7.2.1 says, into a malloc'd buffer. */
static unsigned char *server_compress(server *s, const void *p, size_t n, size_t *outn)
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
static unsigned char *server_inflate(server *s, const unsigned char *p, size_t n, size_t *outn)
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
static void put_frame(mw_buf *b, int fin, int rsv1, int op, const void *p, size_t n)
{
    unsigned char h[WS_FRAME_MAX_HEADER];
    size_t hn = ws_frame_encode(h, fin, op, n, NULL);
    if (rsv1) h[0] |= 0x40;
    mw_buf_append(b, h, hn);
    mw_buf_append(b, p, n);
}

/* A message as frames: split at random points into up to `parts` frames,
 * RSV1 on the first when compressed, pings between fragments at times. */
static void put_message(mw_buf *b, int op, int z, const unsigned char *p, size_t n, int parts)
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

static int on_msg(void *ud, int is_text, const char *p, size_t n)
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

static void on_fail(void *ud, int err, const char *msg)
{
    tc *t = ud;
    t->fails++;
    t->fail_err = err;
    snprintf(t->fail_msg, sizeof t->fail_msg, "%s", msg);
}

static void expect(tc *t, int text, const void *p, size_t n)
{
    t->want[t->nwant] = p;
    t->want_len[t->nwant] = n;
    t->want_text[t->nwant] = text;
    t->nwant++;
}

#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* Start a client offering o (with max_message, defer_max) and answer with the
 * extension field `ext` (NULL: none). Returns the feed result of the 101. */
static long tc_open(tc *t, const ws_deflate_opts *o, uint64_t max, uint64_t defer, const char *ext)
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

static void tc_free(tc *t)
{
    ws_client_free(&t->ws);
    mw_buf_free(&t->out);
    mw_buf_free(&t->in);
}

/* Feed bytes as a transport would: in pieces of random size (1 byte at times),
 * keeping what the engine left. Returns the last feed result. */
static long tc_feed(tc *t, const char *p, size_t n, size_t maxstep)
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
static int decode_sent(tc *t, server *s, unsigned char **msgs, size_t *lens, int max, int *compressed)
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
static unsigned char *make_payload(size_t n, int text)
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

static const size_t sizes[] = { 0, 1, 31, 32, 100, 1000, 5000, 70000, 262144 };
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* ---- round trips ------------------------------------------------------------------ */

static void round_trip(int sbits, int cbits, int snct, int cnct, int takeover_check)
{
    char ext[200];
    snprintf(ext, sizeof ext, "permessage-deflate; server_max_window_bits=%d; client_max_window_bits=%d%s%s",
             sbits, cbits, snct ? "; server_no_context_takeover" : "", cnct ? "; client_no_context_takeover" : "");
    ws_deflate_opts o = { .enabled = 1, .server_max_window_bits = sbits, .server_no_context_takeover = snct };
    tc t;
    long r = tc_open(&t, &o, 1 << 20, 0, ext);
    MW_CHECK(r > 0);
    const ws_deflate_params *p = ws_client_deflate(&t.ws);
    MW_CHECK(p != NULL);
    if (!p) { tc_free(&t); return; }
    MW_CHECK_EQ_INT(p->server_max_window_bits, sbits);
    MW_CHECK_EQ_INT(p->client_max_window_bits, cbits);
    server s;
    server_init(&s, sbits, cbits, snct, cnct);

    /* server -> client: every size, compressed or not, fragmented, byte-split */
    unsigned char *pay[NSIZES * 2];
    mw_buf wire = MW_BUF_INIT;
    for (size_t i = 0; i < NSIZES * 2; i++) {
        size_t n = sizes[i % NSIZES];
        int text = (int)(i & 1);
        pay[i] = make_payload(n, text);
        expect(&t, text, pay[i], n);
        int z = i != 3;   /* one plain message among the compressed */
        if (z) {
            size_t zn;
            unsigned char *zp = server_compress(&s, pay[i], n, &zn);
            put_message(&wire, text ? WS_OP_TEXT : WS_OP_BINARY, 1, zp, zn, 1 + (int)rndn(5));
            free(zp);
        } else {
            put_message(&wire, text ? WS_OP_TEXT : WS_OP_BINARY, 0, pay[i], n, 1 + (int)rndn(3));
        }
    }
    r = tc_feed(&t, mw_buf_head(&wire), wire.len, 3000);
    MW_CHECK(r >= 0);
    if (t.fails) fprintf(stderr, "  s%d c%d: %s\n", sbits, cbits, t.fail_msg);
    MW_CHECK_EQ_INT(t.got, (int)(NSIZES * 2));
    MW_CHECK_EQ_INT(t.bad, 0);
    mw_buf_free(&wire);

    /* client -> server: the same payloads; the pongs go first */
    mw_buf_clear(&t.out);
    for (size_t i = 0; i < NSIZES * 2; i++)
        MW_CHECK_EQ_INT(ws_client_send(&t.ws, i & 1 ? WS_OP_TEXT : WS_OP_BINARY, (const char *)pay[i],
                                       sizes[i % NSIZES], &t.out), 0);
    unsigned char *got[NSIZES * 2];
    size_t gl[NSIZES * 2];
    int comp = 0;
    int n = decode_sent(&t, &s, got, gl, (int)(NSIZES * 2), &comp);
    MW_CHECK_EQ_INT(n, (int)(NSIZES * 2));
    for (int i = 0; i < n; i++) {
        MW_CHECK_EQ_INT(gl[i], sizes[i % NSIZES]);
        if (gl[i] == sizes[i % NSIZES]) MW_CHECK(gl[i] == 0 || memcmp(got[i], pay[i], gl[i]) == 0);
        free(got[i]);
    }
    /* below the threshold (0, 1, 31) never compressed; the rest are,
     * unless (no takeover) compressing did not pay */
    MW_CHECK(comp <= (int)(NSIZES - 3) * 2);
    if (!cnct) MW_CHECK_EQ_INT(comp, (int)(NSIZES - 3) * 2);
    MW_CHECK(comp >= (int)(NSIZES - 3));

    /* the steady state: another round allocates nothing in zlib */
    if (takeover_check) {
        uint64_t before = ws_client_zcount(&t.ws)->allocs;
        for (int k = 0; k < 3; k++) {
            for (size_t i = 4; i < NSIZES * 2; i++)
                MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_BINARY, (const char *)pay[i], sizes[i % NSIZES], &t.out), 0);
            n = decode_sent(&t, &s, got, gl, (int)(NSIZES * 2), &comp);
            for (int i = 0; i < n; i++) free(got[i]);
            mw_buf wire2 = MW_BUF_INIT;
            t.got = t.nwant = 0;
            for (size_t i = 4; i < NSIZES * 2; i++) {
                size_t zn;
                unsigned char *zp = server_compress(&s, pay[i], sizes[i % NSIZES], &zn);
                expect(&t, 0, pay[i], sizes[i % NSIZES]);
                put_message(&wire2, WS_OP_BINARY, 1, zp, zn, 1 + (int)rndn(3));
                free(zp);
            }
            MW_CHECK(tc_feed(&t, mw_buf_head(&wire2), wire2.len, 65536) >= 0);
            MW_CHECK_EQ_INT(t.got, t.nwant);
            MW_CHECK_EQ_INT(t.bad, 0);
            mw_buf_free(&wire2);
        }
        MW_CHECK_EQ_INT(ws_client_zcount(&t.ws)->allocs, before);
        /* what zlib holds is what the header comment says, give or take its state */
        size_t want = ((size_t)1 << (cbits + 2)) + ((size_t)1 << (8 + 9)) + ((size_t)1 << 15);
        size_t held = ws_client_zcount(&t.ws)->bytes;
        MW_CHECK(held >= want && held <= want + 16 * 1024);
        if (!(held >= want && held <= want + 16 * 1024))
            fprintf(stderr, "  s%d c%d: zlib holds %zu, formula %zu\n", sbits, cbits, held, want);
    }
    for (size_t i = 0; i < NSIZES * 2; i++) free(pay[i]);
    server_free(&s);
    tc_free(&t);
}

static void test_round_trips(void)
{
    for (int bits = 9; bits <= 15; bits++) {
        round_trip(bits, bits, 0, 0, 1);
        round_trip(bits, 24 - bits, 1, 1, 1);
        round_trip(bits, bits, 1, 0, 0);
        round_trip(bits, bits, 0, 1, 0);
    }
    round_trip(8, 15, 0, 0, 1);   /* the server made it with 9, as zlib does */
}

/* Agreed client window 8: everything goes out uncompressed. */
static void test_client_window_8(void)
{
    ws_deflate_opts o = { .enabled = 1 };
    tc t;
    MW_CHECK(tc_open(&t, &o, 0, 0, "permessage-deflate; client_max_window_bits=8") > 0);
    unsigned char *p = make_payload(5000, 1);
    MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_TEXT, (const char *)p, 5000, &t.out), 0);
    ws_frame_hdr h;
    MW_CHECK(ws_frame_parse(mw_buf_head(&t.out), t.out.len, &h) > 0);
    MW_CHECK_EQ_INT(h.rsv, 0);
    MW_CHECK_EQ_INT(h.len, 5000);
    MW_CHECK_EQ_INT(ws_client_zcount(&t.ws)->allocs, 0);
    free(p);
    tc_free(&t);
}

/* ---- the handshake ---------------------------------------------------------------- */

static void test_handshake(void)
{
    tc t;
    ws_deflate_opts o = { .enabled = 1 };
    /* the offer is in the request */
    memset(&t, 0, sizeof t);
    ws_config cfg = { .random = t_random, .random_ud = &t.rcalls, .deflate = o };
    ws_client_init(&t.ws, &cfg);
    static const ws_request req = { .host = "h", .host_len = 1 };
    MW_CHECK_EQ_INT(ws_client_start(&t.ws, &req, &t.out), 0);
    t.out.data[t.out.off + t.out.len - 1] = 0;
    MW_CHECK(strstr(mw_buf_head(&t.out), "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"));
    tc_free(&t);

    /* a refused option */
    memset(&t, 0, sizeof t);
    cfg.deflate.server_max_window_bits = 7;
    ws_client_init(&t.ws, &cfg);
    MW_CHECK_EQ_INT(ws_client_start(&t.ws, &req, &t.out), WS_E_BAD_OPTION);
    MW_CHECK_EQ_INT(t.out.len, 0);
    MW_CHECK(strcmp(ws_client_fail_message(&t.ws), "permessage-deflate server_max_window_bits=7 is not 0 or 8..15") == 0);
    tc_free(&t);

    /* answered and agreed */
    MW_CHECK(tc_open(&t, &o, 0, 0, "permessage-deflate; server_no_context_takeover") > 0);
    char s[200];
    MW_CHECK(ws_client_extensions(&t.ws, s, sizeof s) > 0);
    MW_CHECK(strcmp(s, "permessage-deflate; server_max_window_bits=15; client_max_window_bits=15; "
                       "server_no_context_takeover") == 0);
    tc_free(&t);

    /* the server declines: nothing agreed, plain frames only */
    MW_CHECK(tc_open(&t, &o, 0, 0, NULL) > 0);
    MW_CHECK(ws_client_deflate(&t.ws) == NULL);
    MW_CHECK_EQ_INT(ws_client_extensions(&t.ws, s, sizeof s), 0);
    tc_free(&t);

    /* refusals name the parameter */
    const struct { const char *ext; int err; const char *msg; } bad[] = {
        { "permessage-deflate; server_max_window_bits=16", WS_E_HS_EXT_PARAM,
          "handshake failed: permessage-deflate: server_max_window_bits=16 is out of 8..15" },
        { "permessage-deflate, permessage-deflate", WS_E_HS_EXT_DUPLICATE,
          "handshake failed: permessage-deflate appears more than once in the answer" },
        { "x-foo", WS_E_HS_EXTENSION, "handshake failed: server chose extension \"x-foo\" that was not offered" },
        { "permessage-deflate;", WS_E_HS_EXT_SYNTAX,
          "handshake failed: Sec-WebSocket-Extensions \"permessage-deflate;\" is malformed at byte 20: expected a parameter name" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        MW_CHECK_EQ_INT(tc_open(&t, &o, 0, 0, bad[i].ext), bad[i].err);
        MW_CHECK_EQ_INT(ws_client_error(&t.ws), bad[i].err);
        MW_CHECK(strcmp(t.fail_msg, bad[i].msg) == 0);
        if (strcmp(t.fail_msg, bad[i].msg) != 0) fprintf(stderr, "  got: %s\n", t.fail_msg);
        MW_CHECK_EQ_INT(t.out.len, 0);   /* a handshake failure sends no close frame */
        tc_free(&t);
    }
    /* two fields: the second one repeats the extension */
    memset(&t, 0, sizeof t);
    MW_CHECK_EQ_INT(tc_open(&t, &o, 0, 0, "permessage-deflate\r\nSec-WebSocket-Extensions: permessage-deflate"),
                    WS_E_HS_EXT_DUPLICATE);
    tc_free(&t);
    /* an offer lacking: server_no_context_takeover asked, not granted */
    o.server_no_context_takeover = 1;
    MW_CHECK_EQ_INT(tc_open(&t, &o, 0, 0, "permessage-deflate"), WS_E_HS_EXT_PARAM);
    MW_CHECK(strcmp(t.fail_msg, "handshake failed: permessage-deflate: server_no_context_takeover was offered, "
                                "the answer lacks it") == 0);
    tc_free(&t);
    /* not enabled: any extension answer is WS_E_HS_EXTENSION, as before */
    MW_CHECK_EQ_INT(tc_open(&t, NULL, 0, 0, "permessage-deflate"), WS_E_HS_EXTENSION);
    tc_free(&t);
}

/* ---- failures on receive ----------------------------------------------------------- */

static tc *open_agreed(tc *t, uint64_t max, uint64_t defer)
{
    ws_deflate_opts o = { .enabled = 1 };
    MW_CHECK(tc_open(t, &o, max, defer, "permessage-deflate") > 0);
    return t;
}

/* The close frame the failure sent: its code. */
static int sent_close(tc *t)
{
    ws_frame_hdr h;
    const unsigned char *b = (const unsigned char *)mw_buf_head(&t->out);
    int hn = ws_frame_parse(b, t->out.len, &h);
    if (hn <= 0 || h.opcode != WS_OP_CLOSE || h.len < 2) return -1;
    return (b[hn] ^ h.mask[0]) << 8 | (b[hn + 1] ^ h.mask[1]);
}

static void test_rsv_rules(void)
{
    tc t;
    mw_buf w = MW_BUF_INIT;
    server s;
    server_init(&s, 15, 15, 0, 0);
    size_t zn;
    unsigned char *zp = server_compress(&s, "hello hello hello", 17, &zn);

    /* RSV1 on a continuation */
    open_agreed(&t, 0, 0);
    put_frame(&w, 0, 1, WS_OP_TEXT, zp, 2);
    put_frame(&w, 1, 1, WS_OP_CONT, zp + 2, zn - 2);
    MW_CHECK_EQ_INT(tc_feed(&t, mw_buf_head(&w), w.len, 5), WS_E_RSV);
    MW_CHECK(strcmp(t.fail_msg, "protocol error: RSV1 set on a continuation frame") == 0);
    MW_CHECK_EQ_INT(ws_client_fail_code(&t.ws), 1002);
    MW_CHECK_EQ_INT(sent_close(&t), 1002);
    tc_free(&t);
    mw_buf_clear(&w);

    /* RSV1 on a control frame */
    open_agreed(&t, 0, 0);
    put_frame(&w, 1, 1, WS_OP_PING, "x", 1);
    MW_CHECK_EQ_INT(tc_feed(&t, mw_buf_head(&w), w.len, 5), WS_E_RSV);
    MW_CHECK(strcmp(t.fail_msg, "protocol error: RSV1 set on a control frame") == 0);
    tc_free(&t);
    mw_buf_clear(&w);

    /* RSV1 when nothing was agreed (offered, declined) */
    ws_deflate_opts o = { .enabled = 1 };
    MW_CHECK(tc_open(&t, &o, 0, 0, NULL) > 0);
    put_frame(&w, 1, 1, WS_OP_TEXT, zp, zn);
    MW_CHECK_EQ_INT(tc_feed(&t, mw_buf_head(&w), w.len, 5), WS_E_RSV);
    MW_CHECK(strcmp(t.fail_msg, "protocol error: reserved bits set without extension") == 0);
    MW_CHECK_EQ_INT(sent_close(&t), 1002);
    tc_free(&t);
    mw_buf_clear(&w);

    /* RSV2 even when agreed */
    open_agreed(&t, 0, 0);
    unsigned char f[] = { 0x80 | 0x20 | WS_OP_TEXT, 1, 'a' };
    MW_CHECK_EQ_INT(tc_feed(&t, (const char *)f, sizeof f, 5), WS_E_RSV);
    tc_free(&t);

    free(zp);
    server_free(&s);
    mw_buf_free(&w);
}

static void test_corrupt(void)
{
    tc t;
    mw_buf w = MW_BUF_INIT;
    /* not DEFLATE at all (BTYPE 11 is reserved) */
    open_agreed(&t, 0, 0);
    put_frame(&w, 1, 1, WS_OP_BINARY, "\xff\xff\xff\xff", 4);
    MW_CHECK_EQ_INT(tc_feed(&t, mw_buf_head(&w), w.len, 100), WS_E_INFLATE);
    MW_CHECK_EQ_INT(ws_client_fail_code(&t.ws), 1007);
    MW_CHECK_EQ_INT(sent_close(&t), 1007);
    MW_CHECK(strncmp(t.fail_msg, "invalid compressed data in a message: ", 38) == 0);
    MW_CHECK_EQ_INT(ws_client_zcount(&t.ws)->bytes, 0);   /* released at the failure */
    tc_free(&t);
    mw_buf_clear(&w);

    /* a stream cut in the middle of a block */
    server s;
    server_init(&s, 15, 15, 0, 0);
    unsigned char *p = make_payload(3000, 0);
    size_t zn;
    unsigned char *zp = server_compress(&s, p, 3000, &zn);
    open_agreed(&t, 0, 0);
    put_frame(&w, 1, 1, WS_OP_BINARY, zp, zn / 2);
    MW_CHECK_EQ_INT(tc_feed(&t, mw_buf_head(&w), w.len, 100), WS_E_INFLATE);
    MW_CHECK_EQ_INT(sent_close(&t), 1007);
    MW_CHECK_EQ_INT(t.got, 0);
    tc_free(&t);
    mw_buf_clear(&w);

    /* a distance further back than the agreed window (9 agreed, the stream
     * made with 15 refers 2000 bytes back, into the previous message): the
     * client inflates with 15 whatever was agreed, so this decodes, and the
     * same however it is split (ws_deflate.h) */
    ws_deflate_opts o = { .enabled = 1, .server_max_window_bits = 9 };
    MW_CHECK(tc_open(&t, &o, 0, 0, "permessage-deflate; server_max_window_bits=9") > 0);
    unsigned char big[2000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)rnd();
    server s15;
    server_init(&s15, 15, 15, 0, 0);
    free(zp);
    zp = server_compress(&s15, big, sizeof big, &zn);
    put_frame(&w, 1, 1, WS_OP_BINARY, zp, zn);
    free(zp);
    zp = server_compress(&s15, big, sizeof big, &zn);   /* 2000 bytes back: beyond 512 */
    put_frame(&w, 1, 1, WS_OP_BINARY, zp, zn);
    expect(&t, 0, big, sizeof big);
    expect(&t, 0, big, sizeof big);
    MW_CHECK(tc_feed(&t, mw_buf_head(&w), w.len, 7) >= 0);
    MW_CHECK_EQ_INT(t.got, 2);
    MW_CHECK_EQ_INT(t.bad, 0);
    tc_free(&t);
    /* a distance before the start of the stream is wrong however it comes */
    open_agreed(&t, 0, 0);
    mw_buf_clear(&w);
    put_frame(&w, 1, 1, WS_OP_BINARY, zp, zn);   /* the second message alone */
    MW_CHECK_EQ_INT(tc_feed(&t, mw_buf_head(&w), w.len, 7), WS_E_INFLATE);
    MW_CHECK(strstr(t.fail_msg, "too far back") != NULL);
    tc_free(&t);
    server_free(&s15);
    free(zp);
    free(p);
    server_free(&s);
    mw_buf_free(&w);
}

/* max_message counts inflated bytes, as they inflate. */
static void test_limits(void)
{
    tc t;
    mw_buf w = MW_BUF_INIT;
    server s;
    server_init(&s, 15, 15, 0, 0);
    /* 1000 random bytes compress to more than 1000: still within a 1000 limit */
    unsigned char p[2001];
    for (size_t i = 0; i < sizeof p; i++) p[i] = (unsigned char)rnd();
    size_t zn;
    unsigned char *zp = server_compress(&s, p, 1000, &zn);
    MW_CHECK(zn > 1000);
    open_agreed(&t, 1000, 0);
    expect(&t, 0, p, 1000);
    put_frame(&w, 1, 1, WS_OP_BINARY, zp, zn);
    MW_CHECK(tc_feed(&t, mw_buf_head(&w), w.len, 100) >= 0);
    MW_CHECK_EQ_INT(t.got, 1);
    MW_CHECK_EQ_INT(t.bad, 0);
    free(zp);
    mw_buf_clear(&w);
    /* 1001 bytes of zeros compress to a handful: over the limit */
    memset(p, 0, sizeof p);
    zp = server_compress(&s, p, 1001, &zn);
    MW_CHECK(zn < 50);
    put_frame(&w, 1, 1, WS_OP_BINARY, zp, zn);
    MW_CHECK_EQ_INT(tc_feed(&t, mw_buf_head(&w), w.len, 100), WS_E_TOO_BIG);
    MW_CHECK_EQ_INT(sent_close(&t), 1009);
    MW_CHECK(strcmp(t.fail_msg, "message exceeds maxPackageSize (1000 bytes) when inflated") == 0);
    free(zp);
    tc_free(&t);
    mw_buf_clear(&w);
    server_free(&s);

    /* a bomb: 64 MiB of zeros in ~64 KiB, limit 1 MiB, fed 1 KiB at a time.
     * It stops within the first few KiB of input, and zlib never holds more
     * than its window and state. */
    server_init(&s, 15, 15, 0, 0);
    size_t big = 64u << 20;
    unsigned char *zeros = calloc(1, big);
    zp = server_compress(&s, zeros, big, &zn);
    free(zeros);
    MW_CHECK(zn < 128 * 1024);
    open_agreed(&t, 1 << 20, 0);
    put_frame(&w, 1, 1, WS_OP_BINARY, zp, zn);
    size_t fed = 0;
    long r = 0;
    while (fed < w.len && r >= 0) {
        size_t k = w.len - fed < 1024 ? w.len - fed : 1024;
        r = ws_client_feed(&t.ws, mw_buf_head(&w) + fed, k, &t.out);
        if (r > 0) fed += (size_t)r;
    }
    MW_CHECK_EQ_INT(r, WS_E_TOO_BIG);
    MW_CHECK(fed < 4 * 1024);
    MW_CHECK(ws_client_zcount(&t.ws)->peak <= (32u << 10) + (16u << 10));
    MW_CHECK_EQ_INT(sent_close(&t), 1009);
    tc_free(&t);

    /* the same through ws_inflater directly: the output stops at the
     * limit, and its buffer stays near it */
    ws_inflater f = { 0 };
    ws_zcount zc = { 0 };
    ws_inflater_setup(&f, 15, 0, &zc);
    mw_buf o = MW_BUF_INIT;
    MW_CHECK_EQ_INT(ws_inflater_feed(&f, zp, zn, 1, 1 << 20, &o, NULL, NULL), WS_Z_LIMIT);
    MW_CHECK_EQ_INT(o.len, 1 << 20);
    MW_CHECK(o.cap <= (2u << 20) + WS_Z_CHUNK);
    MW_CHECK(zc.peak <= (32u << 10) + (16u << 10));
    ws_inflater_release(&f);
    MW_CHECK_EQ_INT(zc.bytes, 0);
    MW_CHECK_EQ_INT(zc.allocs, zc.frees);
    mw_buf_free(&o);
    free(zp);
    server_free(&s);
    mw_buf_free(&w);
}

/* Inflated text is validated as it inflates: a bad byte early in a large
 * message fails at once, at its place. */
static void test_text_utf8(void)
{
    tc t;
    mw_buf w = MW_BUF_INIT;
    server s;
    server_init(&s, 15, 15, 0, 0);
    size_t n = 1 << 20;
    unsigned char *p = make_payload(n, 1);
    p[10] = 0xff;
    size_t zn;
    unsigned char *zp = server_compress(&s, p, n, &zn);
    open_agreed(&t, 0, 0);
    put_frame(&w, 1, 1, WS_OP_TEXT, zp, zn);
    /* header and the first 100 bytes of payload: enough to fail */
    long r = ws_client_feed(&t.ws, mw_buf_head(&w), 110, &t.out);
    MW_CHECK_EQ_INT(r, WS_E_UTF8);
    MW_CHECK(strcmp(t.fail_msg, "invalid UTF-8 in text message (byte 11)") == 0);
    MW_CHECK_EQ_INT(sent_close(&t), 1007);
    tc_free(&t);
    free(zp);
    mw_buf_clear(&w);
    /* a bad byte before the limit in a message over it: the bad byte is
     * reported, however the bytes come */
    memset(p, 'a', 3000);
    p[999] = 0xff;
    server_free(&s);   /* each client below is new: so is the server's stream */
    server_init(&s, 15, 15, 0, 0);
    zp = server_compress(&s, p, 3000, &zn);
    for (size_t step = 1; step <= 4096; step *= 8) {
        open_agreed(&t, 1000, 0);
        mw_buf_clear(&w);
        put_frame(&w, 1, 1, WS_OP_TEXT, zp, zn);
        MW_CHECK_EQ_INT(tc_feed(&t, mw_buf_head(&w), w.len, step), WS_E_UTF8);
        MW_CHECK(strcmp(t.fail_msg, "invalid UTF-8 in text message (byte 1000)") == 0);
        tc_free(&t);
    }
    free(zp);
    mw_buf_clear(&w);
    /* a message that ends inside a code point */
    server_free(&s);
    server_init(&s, 15, 15, 0, 0);
    zp = server_compress(&s, "ab\xc3", 3, &zn);
    open_agreed(&t, 0, 0);
    put_frame(&w, 1, 1, WS_OP_TEXT, zp, zn);
    MW_CHECK_EQ_INT(tc_feed(&t, mw_buf_head(&w), w.len, 2), WS_E_UTF8);
    MW_CHECK(strcmp(t.fail_msg, "invalid UTF-8 in text message (truncated at the end)") == 0);
    tc_free(&t);
    free(zp);
    free(p);
    server_free(&s);
    mw_buf_free(&w);
}

/* Compressed frames never take the zero-copy deferred path; plain ones still do. */
static void test_defer(void)
{
    tc t;
    mw_buf w = MW_BUF_INIT;
    server s;
    server_init(&s, 15, 15, 0, 0);
    unsigned char *p = make_payload(20000, 1);
    size_t zn;
    unsigned char *zp = server_compress(&s, p, 20000, &zn);
    open_agreed(&t, 1 << 20, 1 << 20);
    expect(&t, 1, p, 20000);
    expect(&t, 1, p, 20000);
    put_frame(&w, 1, 1, WS_OP_TEXT, zp, zn);
    /* a compressed frame in pieces is consumed as it comes */
    long r = ws_client_feed(&t.ws, mw_buf_head(&w), 20, &t.out);
    MW_CHECK_EQ_INT(r, 20);
    MW_CHECK_EQ_INT(ws_client_want(&t.ws), 0);
    MW_CHECK(tc_feed(&t, mw_buf_head(&w) + 20, w.len - 20, 700) >= 0);
    MW_CHECK_EQ_INT(t.got, 1);
    mw_buf_clear(&w);
    put_frame(&w, 1, 0, WS_OP_TEXT, p, 20000);
    r = ws_client_feed(&t.ws, mw_buf_head(&w), 100, &t.out);
    MW_CHECK_EQ_INT(r, 0);                        /* deferred: left to the caller */
    MW_CHECK_EQ_INT(ws_client_want(&t.ws), w.len);
    MW_CHECK_EQ_INT(ws_client_feed(&t.ws, mw_buf_head(&w), w.len, &t.out), (long)w.len);
    MW_CHECK_EQ_INT(t.got, 2);
    MW_CHECK_EQ_INT(t.bad, 0);
    tc_free(&t);
    free(zp);
    free(p);
    server_free(&s);
    mw_buf_free(&w);
}

/* No context takeover: reset per message (no allocation), released by trim. */
static void test_trim(void)
{
    tc t;
    ws_deflate_opts o = { .enabled = 1, .client_no_context_takeover = 1, .server_no_context_takeover = 1 };
    MW_CHECK(tc_open(&t, &o, 0, 0, "permessage-deflate; server_no_context_takeover; client_no_context_takeover") > 0);
    server s;
    server_init(&s, 15, 15, 1, 1);
    unsigned char *p = make_payload(4000, 1);
    mw_buf w = MW_BUF_INIT;
    uint64_t allocs = 0;
    for (int k = 0; k < 5; k++) {
        size_t zn;
        unsigned char *zp = server_compress(&s, p, 4000, &zn);
        t.nwant = t.got = 0;
        expect(&t, 1, p, 4000);
        mw_buf_clear(&w);
        put_frame(&w, 1, 1, WS_OP_TEXT, zp, zn);
        MW_CHECK(tc_feed(&t, mw_buf_head(&w), w.len, 500) >= 0);
        MW_CHECK_EQ_INT(t.got, 1);
        MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_TEXT, (const char *)p, 4000, &t.out), 0);
        unsigned char *got[1];
        size_t gl[1];
        int comp;
        MW_CHECK_EQ_INT(decode_sent(&t, &s, got, gl, 1, &comp), 1);
        MW_CHECK_EQ_INT(comp, 1);
        MW_CHECK(gl[0] == 4000 && memcmp(got[0], p, 4000) == 0);
        free(got[0]);
        free(zp);
        if (k == 0) allocs = ws_client_zcount(&t.ws)->allocs;
    }
    MW_CHECK_EQ_INT(ws_client_zcount(&t.ws)->allocs, allocs);
    MW_CHECK(ws_client_zcount(&t.ws)->bytes > 256 * 1024);
    MW_CHECK_EQ_INT(ws_client_trim(&t.ws), 0);
    MW_CHECK_EQ_INT(ws_client_zcount(&t.ws)->bytes, 0);
    /* and it works again afterwards */
    MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_TEXT, (const char *)p, 4000, &t.out), 0);
    unsigned char *got[1];
    size_t gl[1];
    int comp;
    MW_CHECK_EQ_INT(decode_sent(&t, &s, got, gl, 1, &comp), 1);
    MW_CHECK(gl[0] == 4000 && memcmp(got[0], p, 4000) == 0);
    free(got[0]);
    MW_CHECK(ws_client_zcount(&t.ws)->allocs > allocs);
    /* with context takeover, trim keeps the state: it is the context */
    tc_free(&t);
    open_agreed(&t, 0, 0);
    MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_TEXT, (const char *)p, 4000, &t.out), 0);
    size_t held = ws_client_zcount(&t.ws)->bytes;
    MW_CHECK(held > 0);
    MW_CHECK_EQ_INT(ws_client_trim(&t.ws), held);
    tc_free(&t);
    MW_CHECK_EQ_INT(ws_zcount_global()->bytes, 0);
    free(p);
    server_free(&s);
    mw_buf_free(&w);
}

/* The steady state with context takeover: no zlib allocation and no buffer
 * growth per message, either way. */
static void test_steady(void)
{
    tc t;
    open_agreed(&t, 0, 0);
    server s;
    server_init(&s, 15, 15, 0, 0);
    unsigned char *p = make_payload(4000, 1);
    mw_buf w = MW_BUF_INIT;
    uint64_t allocs = 0;
    char *msg = NULL, *ztx = NULL;
    size_t msg_cap = 0, ztx_cap = 0;
    for (int k = 0; k < 100; k++) {
        size_t zn;
        unsigned char *zp = server_compress(&s, p, 4000, &zn);
        t.nwant = t.got = 0;
        expect(&t, 1, p, 4000);
        mw_buf_clear(&w);
        put_frame(&w, 0, 1, WS_OP_TEXT, zp, zn / 2);
        put_frame(&w, 1, 0, WS_OP_CONT, zp + zn / 2, zn - zn / 2);
        MW_CHECK(tc_feed(&t, mw_buf_head(&w), w.len, 1000) >= 0);
        MW_CHECK_EQ_INT(t.got, 1);
        MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_TEXT, (const char *)p, 4000, &t.out), 0);
        unsigned char *got[1];
        size_t gl[1];
        int comp;
        MW_CHECK_EQ_INT(decode_sent(&t, &s, got, gl, 1, &comp), 1);
        MW_CHECK(comp == 1 && gl[0] == 4000 && memcmp(got[0], p, 4000) == 0);
        free(got[0]);
        free(zp);
        if (k == 0) {
            allocs = ws_client_zcount(&t.ws)->allocs;
            msg = t.ws.msg.data; msg_cap = t.ws.msg.cap;
            ztx = t.ws.ztx.data; ztx_cap = t.ws.ztx.cap;
        }
    }
    MW_CHECK_EQ_INT(ws_client_zcount(&t.ws)->allocs, allocs);
    MW_CHECK(t.ws.msg.data == msg && t.ws.msg.cap == msg_cap);
    MW_CHECK(t.ws.ztx.data == ztx && t.ws.ztx.cap == ztx_cap);
    MW_CHECK(msg_cap < 16384);   /* a 4000-byte message reserves no whole chunk */
    free(p);
    server_free(&s);
    tc_free(&t);
    mw_buf_free(&w);
}

/* An empty message: the RFC's encoding is one 0x00 byte (7.2.3.6); an
 * empty RSV1 payload is taken to mean the same, without touching the stream. */
static void test_empty(void)
{
    tc t;
    open_agreed(&t, 0, 0);
    server s;
    server_init(&s, 15, 15, 0, 0);
    mw_buf w = MW_BUF_INIT;
    size_t zn;
    unsigned char *zp = server_compress(&s, "abcabcabc", 9, &zn);
    put_frame(&w, 1, 1, WS_OP_TEXT, "\0", 1);
    put_frame(&w, 1, 1, WS_OP_TEXT, "", 0);
    put_frame(&w, 0, 1, WS_OP_BINARY, "", 0);
    put_frame(&w, 1, 0, WS_OP_CONT, "", 0);
    put_frame(&w, 1, 1, WS_OP_TEXT, zp, zn);
    expect(&t, 1, "", 0);
    expect(&t, 1, "", 0);
    expect(&t, 0, "", 0);
    expect(&t, 1, "abcabcabc", 9);
    MW_CHECK(tc_feed(&t, mw_buf_head(&w), w.len, 3) >= 0);
    MW_CHECK_EQ_INT(t.got, 4);
    MW_CHECK_EQ_INT(t.bad, 0);
    free(zp);
    server_free(&s);
    tc_free(&t);
    mw_buf_free(&w);
}

/* A final block (BFINAL) ends the stream: what follows in the message is dropped. */
static void test_bfinal(void)
{
    tc t;
    open_agreed(&t, 0, 0);
    z_stream z;
    memset(&z, 0, sizeof z);
    MW_CHECK_EQ_INT(deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    unsigned char zb[256];
    z.next_in = (Bytef *)"final block";
    z.avail_in = 11;
    z.next_out = zb;
    z.avail_out = sizeof zb;
    MW_CHECK_EQ_INT(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t zn = sizeof zb - z.avail_out;
    deflateEnd(&z);
    zb[zn++] = 0x00;   /* the remains of an empty stored block after it (RFC 7692 7.2.3.4) */
    mw_buf w = MW_BUF_INIT;
    put_frame(&w, 1, 1, WS_OP_TEXT, zb, zn);
    put_frame(&w, 1, 1, WS_OP_TEXT, zb, zn - 1);
    expect(&t, 1, "final block", 11);
    expect(&t, 1, "final block", 11);
    MW_CHECK(tc_feed(&t, mw_buf_head(&w), w.len, 3) >= 0);
    MW_CHECK_EQ_INT(t.got, 2);
    MW_CHECK_EQ_INT(t.bad, 0);
    tc_free(&t);
    mw_buf_free(&w);
}

int main(void)
{
    MW_RUN(test_handshake);
    MW_RUN(test_round_trips);
    MW_RUN(test_client_window_8);
    MW_RUN(test_rsv_rules);
    MW_RUN(test_corrupt);
    MW_RUN(test_limits);
    MW_RUN(test_text_utf8);
    MW_RUN(test_defer);
    MW_RUN(test_trim);
    MW_RUN(test_steady);
    MW_RUN(test_empty);
    MW_RUN(test_bfinal);
    return MW_DONE();
}
