/* fuzz_ws_frame: the frame header parser and encoder and the word-wide mask,
 * alone (fuzz_ws_client drives them through the engine). Checks that a parse
 * needs exactly the bytes it says, that encode/parse round-trip, and that
 * masking in pieces at any alignment equals a byte-at-a-time XOR.
 * Knows only ws/ws_frame.h. */
#include "ws/ws_frame.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rd64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* 1. parse arbitrary bytes */
    ws_frame_hdr h;
    memset(&h, 0, sizeof h);
    int r = ws_frame_parse(data, size, &h);
    if (r < -1 || r == 1 || r > WS_FRAME_MAX_HEADER) abort();
    if (r > 0) {
        if ((size_t)r > size) abort();
        if (h.fin != data[0] >> 7 || h.opcode != (data[0] & 15) || h.rsv != ((data[0] >> 4) & 7)) abort();
        if (h.masked != data[1] >> 7) abort();
        if (h.len >> 63) abort();
        if (h.masked && memcmp(h.mask, data + r - 4, 4) != 0) abort();
        /* one byte fewer is never enough */
        ws_frame_hdr g;
        if (ws_frame_parse(data, (size_t)r - 1, &g) != 0) abort();
        /* the shortest form parses back to the same fields */
        unsigned char enc[WS_FRAME_MAX_HEADER];
        size_t el = ws_frame_encode(enc, h.fin, h.opcode, h.len, h.masked ? h.mask : NULL);
        if (el > (size_t)r) abort();
        if (ws_frame_parse(enc, el, &g) != (int)el) abort();
        if (g.fin != h.fin || g.opcode != h.opcode || g.len != h.len || g.masked != h.masked || g.rsv)
            abort();
        if (g.masked && memcmp(g.mask, h.mask, 4) != 0) abort();
    } else if (r == -1) {
        if (size < 10 || (data[1] & 127) != 127 || !(data[2] & 0x80)) abort();
    }

    /* 2. encode a header from the input, parse it back */
    if (size >= 13) {
        uint64_t len = rd64(data + 1) >> (data[0] & 63);
        len &= 0x7fffffffffffffffull;
        int op = data[0] & 15, fin = data[0] >> 7, masked = (data[0] >> 6) & 1;
        unsigned char enc[WS_FRAME_MAX_HEADER];
        size_t el = ws_frame_encode(enc, fin, op, len, masked ? data + 9 : NULL);
        size_t want = 2 + (len < 126 ? 0 : len <= 0xffff ? 2 : 8) + (masked ? 4 : 0);
        if (el != want) abort();
        ws_frame_hdr g;
        if (ws_frame_parse(enc, el, &g) != (int)el) abort();
        if (g.len != len || g.opcode != op || g.fin != fin || g.masked != masked) abort();
        for (size_t k = 0; k < el; k++)
            if (ws_frame_parse(enc, k, &g) != 0) abort();
    }

    /* 3. mask in pieces at every alignment vs a byte-at-a-time reference */
    if (size >= 6) {
        const uint8_t *key = data;
        size_t lead = data[4] & 7;          /* misalign the buffer */
        size_t n = size - 5;
        unsigned char *buf = malloc(n + 8), *ref = malloc(n ? n : 1);
        unsigned char *p = buf + lead;
        memcpy(p, data + 5, n);
        for (size_t i = 0; i < n; i++) ref[i] = data[5 + i] ^ key[i & 3];
        size_t pos = 0;
        unsigned x = data[4];
        while (pos < n) {
            x = x * 1103515245u + 12345u;
            size_t piece = 1 + (x >> 16) % 37;
            if (piece > n - pos) piece = n - pos;
            ws_mask(p + pos, piece, key, pos);
            pos += piece;
        }
        if (memcmp(p, ref, n) != 0) abort();
        ws_mask(p, n, key, 0);               /* twice is the identity */
        if (memcmp(p, data + 5, n) != 0) abort();
        free(buf);
        free(ref);
    }
    if (size >= 2) {
        unsigned code = (unsigned)data[0] << 8 | data[1];
        int ok = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
                 (code >= 3000 && code <= 4999);
        if (ws_close_code_valid(code) != ok) abort();
    }
    return 0;
}
