/* test_ws_inflate: the receiving side of permessage-deflate in the client engine, with
 * zlib as the server: RSV1 rules, corrupt streams, limits (bombs) on the inflated size,
 * UTF-8 judged while inflating, the deferred path, empty messages, final blocks. */
#include "ws_zpeer.h"

/* ---- failures on receive ----------------------------------------------------------- */

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
    MW_RUN(test_rsv_rules);
    MW_RUN(test_corrupt);
    MW_RUN(test_limits);
    MW_RUN(test_text_utf8);
    MW_RUN(test_defer);
    MW_RUN(test_empty);
    MW_RUN(test_bfinal);
    return MW_DONE();
}
