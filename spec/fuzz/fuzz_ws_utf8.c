/* fuzz_ws_utf8: the incremental UTF-8 validator fed in splits chosen by the
 * input, against a plain code-point-at-a-time reference written here from
 * RFC 3629's table. Knows only ws/ws_utf8.h. */
#include "ws/ws_utf8.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Reference: returns the offset of the first byte that cannot continue a
 * well-formed prefix (n if none); *open is set when the text ends inside a
 * code point. */
static size_t ref_check(const unsigned char *s, size_t n, int *open)
{
    size_t i = 0;
    *open = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t more;
        unsigned lo = 0x80, hi = 0xBF;   /* allowed range of the second byte */
        if (c < 0x80) { i++; continue; }
        else if (c >= 0xC2 && c <= 0xDF) more = 1;
        else if (c == 0xE0) { more = 2; lo = 0xA0; }
        else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) more = 2;
        else if (c == 0xED) { more = 2; hi = 0x9F; }          /* no surrogates */
        else if (c == 0xF0) { more = 3; lo = 0x90; }          /* no overlongs */
        else if (c >= 0xF1 && c <= 0xF3) more = 3;
        else if (c == 0xF4) { more = 3; hi = 0x8F; }          /* <= U+10FFFF */
        else return i;                                         /* 80..C1, F5..FF */
        for (size_t k = 1; k <= more; k++) {
            if (i + k >= n) { *open = 1; return n; }
            unsigned t = s[i + k];
            unsigned l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
            if (t < l || t > h) return i + k;
        }
        i += more + 1;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    /* byte 0: a seed for the split sizes */
    unsigned seed = data[0];
    data++;
    size--;
    unsigned char *text = malloc(size ? size : 1);
    memcpy(text, data, size);

    int open;
    size_t bad = ref_check(text, size, &open);

    /* whole buffer */
    int whole_ok = ws_utf8_valid(text, size);
    if (whole_ok != (bad == size && !open)) abort();

    /* fed in pieces: sizes from a small LCG so every input tries many splits */
    uint8_t st = WS_UTF8_ACCEPT;
    size_t pos = 0, seen_bad = size;
    unsigned x = seed * 2654435761u + 1;
    while (pos < size) {
        x = x * 1103515245u + 12345u;
        size_t piece = 1 + (x >> 16) % 17;
        if ((x >> 8) % 4 == 0) piece = 1;
        if (piece > size - pos) piece = size - pos;
        uint8_t before = st;
        size_t r = ws_utf8_feed(&st, text + pos, piece);
        if (before == WS_UTF8_REJECT) {
            if (r != 0 || st != WS_UTF8_REJECT) abort();   /* sticky */
        } else if (st == WS_UTF8_REJECT) {
            if (r >= piece) abort();
            if (seen_bad == size) seen_bad = pos + r;
        } else if (r != piece) {
            abort();
        }
        pos += piece;
    }
    if (seen_bad != bad) abort();
    if (bad < size) {
        if (st != WS_UTF8_REJECT) abort();
    } else if (open) {
        if (st == WS_UTF8_ACCEPT || st == WS_UTF8_REJECT) abort();
    } else if (st != WS_UTF8_ACCEPT) {
        abort();
    }
    free(text);
    return 0;
}
