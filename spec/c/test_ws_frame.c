/* test_ws_frame: header parse/encode at every truncation, and word-wide masking
 * against a byte-at-a-time reference at every length, phase and alignment. */
#include "mwtest.h"
#include "ws/ws_frame.h"
#include <stdint.h>
#include <stdlib.h>

static void test_roundtrip(void)
{
    static const uint64_t lens[] = { 0, 1, 125, 126, 127, 65535, 65536, 0x7fffffffffffffffull };
    static const int hlen[] = { 2, 2, 2, 4, 4, 4, 10, 10 };
    const uint8_t key[4] = { 0x12, 0x34, 0x56, 0x78 };
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        for (int masked = 0; masked < 2; masked++) {
            unsigned char b[WS_FRAME_MAX_HEADER];
            size_t n = ws_frame_encode(b, i & 1, WS_OP_BINARY, lens[i], masked ? key : NULL);
            MW_CHECK_EQ_INT(n, hlen[i] + (masked ? 4 : 0));
            ws_frame_hdr h;
            for (size_t k = 0; k < n; k++) MW_CHECK_EQ_INT(ws_frame_parse(b, k, &h), 0);
            MW_CHECK_EQ_INT(ws_frame_parse(b, n, &h), (int)n);
            MW_CHECK(h.len == lens[i]);
            MW_CHECK_EQ_INT(h.fin, i & 1);
            MW_CHECK_EQ_INT(h.opcode, WS_OP_BINARY);
            MW_CHECK_EQ_INT(h.masked, masked);
            MW_CHECK_EQ_INT(h.rsv, 0);
            if (masked) MW_CHECK_MEM(h.mask, key, 4);
        }
    }
}

static void test_parse_bits(void)
{
    ws_frame_hdr h;
    const unsigned char a[] = { 0xf5, 0x00 };   /* FIN, RSV1-3, opcode 5 */
    MW_CHECK_EQ_INT(ws_frame_parse(a, 2, &h), 2);
    MW_CHECK_EQ_INT(h.fin, 1);
    MW_CHECK_EQ_INT(h.rsv, 7);
    MW_CHECK_EQ_INT(h.opcode, 5);
    const unsigned char big[] = { 0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0 };
    MW_CHECK_EQ_INT(ws_frame_parse(big, 9, &h), 0);
    MW_CHECK_EQ_INT(ws_frame_parse(big, 10, &h), -1);
    const unsigned char len16[] = { 0x81, 0x7e, 0x01, 0x00 };
    MW_CHECK_EQ_INT(ws_frame_parse(len16, 4, &h), 4);
    MW_CHECK(h.len == 256);
}

static void ref_mask(unsigned char *p, size_t n, const uint8_t key[4], size_t off)
{
    for (size_t i = 0; i < n; i++) p[i] ^= key[(off + i) & 3];
}

static void test_mask(void)
{
    const uint8_t key[4] = { 0xa1, 0x02, 0xf3, 0x4c };
    enum { MAX = 300 };
    unsigned char *src = malloc(MAX + 16), *a = malloc(MAX + 16), *b = malloc(MAX + 16);
    for (size_t i = 0; i < MAX + 16; i++) src[i] = (unsigned char)(i * 131 + 7);
    int bad = 0;
    for (size_t align = 0; align < 8; align++)
        for (size_t off = 0; off < 4; off++)
            for (size_t n = 0; n <= MAX; n++) {
                memcpy(a, src, MAX + 16);
                memcpy(b, src, MAX + 16);
                ws_mask(a + align, n, key, off);
                ref_mask(b + align, n, key, off);
                if (memcmp(a, b, MAX + 16) != 0) bad++;
            }
    MW_CHECK_EQ_INT(bad, 0);
    /* Masking a stream in arbitrary pieces equals masking it whole. */
    memcpy(a, src, MAX);
    memcpy(b, src, MAX);
    ref_mask(b, MAX, key, 0);
    size_t pos = 0, step = 1;
    while (pos < MAX) {
        size_t n = step < MAX - pos ? step : MAX - pos;
        ws_mask(a + pos, n, key, pos);
        pos += n;
        step = step * 3 % 17 + 1;
    }
    MW_CHECK_MEM(a, b, MAX);
    free(src); free(a); free(b);
}

static void test_close_codes(void)
{
    static const unsigned ok[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                                   3000, 3999, 4000, 4999 };
    static const unsigned bad[] = { 0, 999, 1004, 1005, 1006, 1015, 1016,
                                    1100, 2000, 2999, 5000, 65535 };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) MW_CHECK_EQ_INT(ws_close_code_valid(ok[i]), 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) MW_CHECK_EQ_INT(ws_close_code_valid(bad[i]), 0);
}

int main(void)
{
    MW_RUN(test_roundtrip);
    MW_RUN(test_parse_bits);
    MW_RUN(test_mask);
    MW_RUN(test_close_codes);
    return MW_DONE();
}
