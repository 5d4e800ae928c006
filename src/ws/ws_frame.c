/* ws_frame: bit-level framing (RFC 6455 5.2) and word-wide masking.
 * Knows nothing of message assembly, handshakes or I/O. */
#include "ws_frame.h"
#include <string.h>

int ws_frame_parse(const void *p, size_t n, ws_frame_hdr *h)
{
    const unsigned char *b = p;
    if (n < 2) return 0;
    h->fin = b[0] >> 7;
    h->rsv = (b[0] >> 4) & 7;
    h->opcode = b[0] & 15;
    h->masked = b[1] >> 7;
    size_t need = 2 + (h->masked ? 4 : 0);
    unsigned l7 = b[1] & 127;
    if (l7 == 126) need += 2;
    else if (l7 == 127) need += 8;
    if (n < need) return 0;
    size_t i = 2;
    if (l7 < 126) {
        h->len = l7;
    } else if (l7 == 126) {
        h->len = (uint64_t)b[2] << 8 | b[3];
        i = 4;
    } else {
        if (b[2] & 0x80) return -1;
        uint64_t v = 0;
        for (i = 2; i < 10; i++) v = v << 8 | b[i];
        h->len = v;
    }
    if (h->masked) memcpy(h->mask, b + i, 4);
    return (int)need;
}

size_t ws_frame_encode(unsigned char *out, int fin, int opcode, uint64_t len,
                       const uint8_t *mask)
{
    size_t i = 2;
    out[0] = (unsigned char)((fin ? 0x80 : 0) | (opcode & 15));
    unsigned char m = mask ? 0x80 : 0;
    if (len < 126) {
        out[1] = m | (unsigned char)len;
    } else if (len <= 0xffff) {
        out[1] = m | 126;
        out[2] = (unsigned char)(len >> 8);
        out[3] = (unsigned char)len;
        i = 4;
    } else {
        out[1] = m | 127;
        for (int k = 0; k < 8; k++) out[2 + k] = (unsigned char)(len >> (56 - 8 * k));
        i = 10;
    }
    if (mask) { memcpy(out + i, mask, 4); i += 4; }
    return i;
}

void ws_mask(void *p, size_t n, const uint8_t key[4], size_t offset)
{
    unsigned char *b = p;
    size_t ph = offset & 3;
    /* Bytes until b is 8-aligned, so the word loop does aligned accesses. */
    while (n && ((uintptr_t)b & 7)) {
        *b++ ^= key[ph];
        ph = (ph + 1) & 3;
        n--;
    }
    if (n >= 8) {
        /* The key laid out in memory order from the current phase; as bytes,
         * so it is right on either endianness. */
        unsigned char kb[8];
        for (int k = 0; k < 8; k++) kb[k] = key[(ph + k) & 3];
        uint64_t kw;
        memcpy(&kw, kb, 8);
        for (; n >= 8; n -= 8, b += 8) {
            uint64_t w;
            memcpy(&w, b, 8);
            w ^= kw;
            memcpy(b, &w, 8);
        }
    }
    while (n--) {
        *b++ ^= key[ph];
        ph = (ph + 1) & 3;
    }
}

int ws_close_code_valid(unsigned code)
{
    /* RFC 6455 7.4: 1004-1006 and 1015 are reserved, never on the wire.
     * 1012-1014 (service restart, try again later, bad gateway) are in the
     * IANA registry and real servers send them when they restart, so they
     * are accepted; the current Autobahn TestSuite does not test them. */
    if (code >= 1000 && code <= 1003) return 1;
    if (code >= 1007 && code <= 1014) return 1;
    if (code >= 3000 && code <= 4999) return 1;
    return 0;
}
