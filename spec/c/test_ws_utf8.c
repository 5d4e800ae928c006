/* test_ws_utf8: the incremental UTF-8 validator, whole and split at every point. */
#include "mwtest.h"
#include "ws/ws_utf8.h"
#include <stdint.h>
#include <string.h>

typedef struct { const char *s; size_t n; int valid; } vec;
#define V(lit, ok) { lit, sizeof(lit) - 1, ok }

static const vec vecs[] = {
    V("", 1), V("hello", 1), V("\x7f", 1), V("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!", 1),
    V("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 1),             /* κόσμε */
    V("\xc2\x80", 1), V("\xdf\xbf", 1), V("\xe0\xa0\x80", 1), V("\xef\xbf\xbf", 1),
    V("\xf0\x90\x80\x80", 1), V("\xf4\x8f\xbf\xbf", 1), V("\xed\x9f\xbf", 1), V("\xee\x80\x80", 1),
    V("\xef\xbf\xbe", 1),                                              /* U+FFFE is allowed */
    V("\x80", 0), V("\xbf", 0), V("\xc0\x80", 0), V("\xc1\xbf", 0),   /* overlong 2-byte */
    V("\xe0\x80\xaf", 0), V("\xe0\x9f\xbf", 0),                       /* overlong 3-byte */
    V("\xf0\x80\x80\xaf", 0), V("\xf0\x8f\xbf\xbf", 0),               /* overlong 4-byte */
    V("\xed\xa0\x80", 0), V("\xed\xbf\xbf", 0),                       /* surrogates */
    V("\xf4\x90\x80\x80", 0), V("\xf5\x80\x80\x80", 0), V("\xff", 0), V("\xfe", 0),
    V("\xc2", 0), V("\xe2\x82", 0), V("\xf0\x9f\x98", 0),             /* truncated */
    V("\xe2\x28\xa1", 0), V("abc\xc2\x41", 0), V("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" "edited", 0),
    V("0123456789abcdef0123456789abcdef\x80", 0),                     /* past the fast path */
    V("0123456789abcdef\xc3\xa9" "0123456789abcdef", 1),
};

static void test_whole(void)
{
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        int got = ws_utf8_valid(vecs[i].s, vecs[i].n);
        if (got != vecs[i].valid) fprintf(stderr, "vector %zu\n", i);
        MW_CHECK_EQ_INT(got, vecs[i].valid);
    }
}

/* Split at every point (and byte by byte): the verdict does not change, and
 * the reject happens exactly at the first invalid byte. */
static void test_splits(void)
{
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) {
        const vec *v = &vecs[i];
        /* first invalid byte, found byte by byte */
        uint8_t st = WS_UTF8_ACCEPT;
        size_t bad = v->n;
        for (size_t k = 0; k < v->n; k++) {
            size_t r = ws_utf8_feed(&st, v->s + k, 1);
            if (st == WS_UTF8_REJECT) { MW_CHECK_EQ_INT(r, 0); bad = k; break; }
            MW_CHECK_EQ_INT(r, 1);
        }
        MW_CHECK_EQ_INT((st == WS_UTF8_ACCEPT), v->valid);
        for (size_t cut = 0; cut <= v->n; cut++) {
            uint8_t s2 = WS_UTF8_ACCEPT;
            size_t a = ws_utf8_feed(&s2, v->s, cut);
            if (s2 == WS_UTF8_REJECT) {
                MW_CHECK_EQ_INT(a, bad);
                continue;
            }
            MW_CHECK_EQ_INT(a, cut);
            size_t b = ws_utf8_feed(&s2, v->s + cut, v->n - cut);
            if (s2 == WS_UTF8_REJECT) MW_CHECK_EQ_INT(cut + b, bad);
            MW_CHECK_EQ_INT((s2 == WS_UTF8_ACCEPT), v->valid);
        }
    }
}

/* Every code point's canonical encoding is valid; a bit-exhaustive check of
 * the table against a straightforward decoder for all 1-3 byte strings. */
static int ref_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len; unsigned cp, min;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xe0) == 0xc0) { len = 2; cp = c & 0x1f; min = 0x80; }
        else if ((c & 0xf0) == 0xe0) { len = 3; cp = c & 0x0f; min = 0x800; }
        else if ((c & 0xf8) == 0xf0) { len = 4; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
        i += len;
    }
    return 1;
}

static void test_exhaustive(void)
{
    unsigned char b[4];
    int bad = 0;
    for (unsigned x = 0; x < 256; x++) {
        b[0] = (unsigned char)x;
        if (ws_utf8_valid(b, 1) != ref_valid(b, 1)) bad++;
        for (unsigned y = 0; y < 256; y++) {
            b[1] = (unsigned char)y;
            if (ws_utf8_valid(b, 2) != ref_valid(b, 2)) bad++;
            for (unsigned z = 0; z < 256; z++) {
                b[2] = (unsigned char)z;
                if (ws_utf8_valid(b, 3) != ref_valid(b, 3)) bad++;
            }
        }
    }
    /* 4-byte sequences: every lead F0..F4 with the second byte's full range. */
    for (unsigned x = 0xf0; x <= 0xf7; x++)
        for (unsigned y = 0x80; y < 0xc0; y++) {
            b[0] = (unsigned char)x; b[1] = (unsigned char)y; b[2] = 0x80; b[3] = 0xbf;
            if (ws_utf8_valid(b, 4) != ref_valid(b, 4)) bad++;
        }
    MW_CHECK_EQ_INT(bad, 0);
}

/* The ASCII fast path takes 32, then 8 bytes a step: a non-ASCII byte at
 * every offset of every length across those strides is still seen, a valid
 * sequence accepted, a bad byte reported at its index. */
static void test_fast_path_offsets(void)
{
    unsigned char buf[100];
    int bad = 0;
    for (size_t len = 1; len <= sizeof buf; len++) {
        for (size_t at = 0; at < len; at++) {
            memset(buf, 'a', len);
            buf[at] = 0xff;
            uint8_t st = WS_UTF8_ACCEPT;
            size_t got = ws_utf8_feed(&st, buf, len);
            if (st != WS_UTF8_REJECT || got != at) bad++;
            if (at + 2 <= len) {
                buf[at] = 0xc3, buf[at + 1] = 0xa9;   /* U+00E9 */
                if (!ws_utf8_valid(buf, len)) bad++;
                if (at + 2 < len) {
                    buf[at + 1] = 'a';                  /* a lead byte without its tail */
                    if (ws_utf8_valid(buf, len)) bad++;
                }
            }
        }
    }
    MW_CHECK_EQ_INT(bad, 0);
}

int main(void)
{
    MW_RUN(test_whole);
    MW_RUN(test_splits);
    MW_RUN(test_exhaustive);
    MW_RUN(test_fast_path_offsets);
    return MW_DONE();
}
