/* test_ws_deflate: permessage-deflate in the client engine against zlib itself as the
 * server: the handshake, round trips at every window both ways with and without context
 * takeover (fragmented, byte-split), window 8, memory and allocations. */
#include "ws_zpeer.h"

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
        size_t want = ((size_t)1 << (cbits + 2)) + ((size_t)1 << (WS_DEFLATE_MEM_DEFAULT + 9)) + ((size_t)1 << 15);
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
    /* what is sent before the 101 goes out as it is: nothing was agreed yet */
    memset(&t, 0, sizeof t);
    ws_config c2 = { .random = t_random, .random_ud = &t.rcalls, .deflate = { .enabled = 1 } };
    ws_client_init(&t.ws, &c2);
    MW_CHECK_EQ_INT(ws_client_start(&t.ws, &req, &t.out), 0);
    mw_buf_clear(&t.out);
    unsigned char *p = make_payload(1000, 1);
    MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_TEXT, (const char *)p, 1000, &t.out), 0);
    static const char head[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: " ACCEPT "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
    MW_CHECK_EQ_INT(ws_client_feed(&t.ws, head, sizeof head - 1, &t.out), (long)(sizeof head - 1));
    MW_CHECK(ws_client_deflate(&t.ws) != NULL);
    ws_frame_hdr fh;
    MW_CHECK(ws_frame_parse(mw_buf_head(&t.out), t.out.len, &fh) > 0);
    MW_CHECK(fh.rsv == 0 && fh.len == 1000);
    /* and after it, compressed */
    mw_buf_clear(&t.out);
    MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_TEXT, (const char *)p, 1000, &t.out), 0);
    MW_CHECK(ws_frame_parse(mw_buf_head(&t.out), t.out.len, &fh) > 0);
    MW_CHECK(fh.rsv == 4 && fh.len < 1000);
    /* control frames never */
    mw_buf_clear(&t.out);
    MW_CHECK_EQ_INT(ws_client_send(&t.ws, WS_OP_PING, (const char *)p, 100, &t.out), 0);
    MW_CHECK(ws_frame_parse(mw_buf_head(&t.out), t.out.len, &fh) > 0);
    MW_CHECK(fh.rsv == 0 && fh.len == 100);
    free(p);
    tc_free(&t);
    /* not enabled: any extension answer is WS_E_HS_EXTENSION, as before */
    MW_CHECK_EQ_INT(tc_open(&t, NULL, 0, 0, "permessage-deflate"), WS_E_HS_EXTENSION);
    tc_free(&t);
}

/* ---- memory ------------------------------------------------------------------------ */

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
    /* window 15 and the default memLevel: 2^17 + 2^(mem+9) to deflate, 32 KiB + state to inflate */
    MW_CHECK(ws_client_zcount(&t.ws)->bytes > ((size_t)1 << 17) + ((size_t)1 << (WS_DEFLATE_MEM_DEFAULT + 9)) + 32 * 1024);
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

int main(void)
{
    MW_RUN(test_handshake);
    MW_RUN(test_round_trips);
    MW_RUN(test_client_window_8);
    MW_RUN(test_trim);
    MW_RUN(test_steady);
    return MW_DONE();
}
