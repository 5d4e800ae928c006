/* ws_utf8: a byte-class DFA over RFC 3629's table of well-formed sequences,
 * with an ASCII fast path of 32 then 8 bytes a step. Knows nothing of frames. */
#include "ws_utf8.h"
#include <string.h>

/* Byte classes:
 *  0 00..7F   1 80..8F   2 90..9F   3 A0..BF   4 C0,C1,F5..FF (never valid)
 *  5 C2..DF   6 E0       7 E1..EC,EE,EF        8 ED   9 F0   10 F1..F3   11 F4 */
static const uint8_t utf8_class[256] = {
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
    3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3, 3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,3,
    4,4,5,5,5,5,5,5,5,5,5,5,5,5,5,5, 5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,5,
    6,7,7,7,7,7,7,7,7,7,7,7,7,8,7,7, 9,10,10,10,11,4,4,4,4,4,4,4,4,4,4,4,
};

/* States: 0 accept, 1 reject, 2 need 1 tail byte, 3 need 2, 4 need 3,
 * 5 after E0 (next A0..BF), 6 after ED (next 80..9F: no surrogates),
 * 7 after F0 (next 90..BF: no overlongs), 8 after F4 (next 80..8F: <= U+10FFFF). */
#define R 1
static const uint8_t utf8_next[9][12] = {
    /*        00 80 90 A0 xx C2 E0 E1 ED F0 F1 F4 */
    /* 0 */ { 0, R, R, R, R, 2, 5, 3, 6, 7, 4, 8 },
    /* 1 */ { R, R, R, R, R, R, R, R, R, R, R, R },
    /* 2 */ { R, 0, 0, 0, R, R, R, R, R, R, R, R },
    /* 3 */ { R, 2, 2, 2, R, R, R, R, R, R, R, R },
    /* 4 */ { R, 3, 3, 3, R, R, R, R, R, R, R, R },
    /* 5 */ { R, R, R, 2, R, R, R, R, R, R, R, R },
    /* 6 */ { R, 2, 2, R, R, R, R, R, R, R, R, R },
    /* 7 */ { R, R, 3, 3, R, R, R, R, R, R, R, R },
    /* 8 */ { R, 3, R, R, R, R, R, R, R, R, R, R },
};
#undef R

size_t ws_utf8_feed(uint8_t *state, const void *p, size_t n)
{
    const unsigned char *s = p;
    uint8_t st = *state;
    size_t i = 0;
    if (st == WS_UTF8_REJECT) return 0;
    while (i < n) {
        if (st == WS_UTF8_ACCEPT) {
            /* ASCII runs dominate real text: test 32 bytes per step (four
             * independent loads, one branch), then 8. */
            while (n - i >= 32) {
                uint64_t a, b, c, d;
                memcpy(&a, s + i, 8);
                memcpy(&b, s + i + 8, 8);
                memcpy(&c, s + i + 16, 8);
                memcpy(&d, s + i + 24, 8);
                if ((a | b | c | d) & 0x8080808080808080ull) break;
                i += 32;
            }
            while (n - i >= 8) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (w & 0x8080808080808080ull) break;
                i += 8;
            }
            if (i == n) break;
        }
        st = utf8_next[st][utf8_class[s[i]]];
        if (st == WS_UTF8_REJECT) { *state = st; return i; }
        i++;
    }
    *state = st;
    return n;
}

int ws_utf8_valid(const void *p, size_t n)
{
    uint8_t st = WS_UTF8_ACCEPT;
    ws_utf8_feed(&st, p, n);
    return st == WS_UTF8_ACCEPT;
}
