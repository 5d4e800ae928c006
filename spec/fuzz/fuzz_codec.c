/* fuzz_codec: the text and frame decoders (codec.h) on arbitrary streams.
 * Checks each result's slices against the bytes given, and that a stream fed
 * in pieces (as a connection appends reads) yields the same messages and the
 * same final verdict as the whole stream at once. Knows only codec.h. */
#include "codec.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int (*decode_fn)(const char *, size_t, size_t, mw_decoded *);

/* A digest of the messages seen, in order, and how the stream ended. */
typedef struct { uint64_t hash; size_t count; int last; size_t left; } outcome;

static void mix(outcome *o, const char *p, size_t n)
{
    uint64_t h = o->hash ^ (n * 0x9e3779b97f4a7c15ull);
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    o->hash = h;
    o->count++;
}

/* Decode everything buf[0..*len) holds; checks invariants; shifts the rest
 * down. Returns the last result (NEED, or an error that ends the stream). */
static int drain(decode_fn dec, int is_text, char *buf, size_t *len, size_t max, outcome *o)
{
    for (;;) {
        mw_decoded d;
        memset(&d, 0xA5, sizeof d);   /* every field must be set */
        int r = dec(buf, *len, max, &d);
        if (r == MW_DEC_MESSAGE) {
            if (d.consumed == 0 || d.consumed > *len) abort();
            if (d.off > d.consumed || d.len > d.consumed - d.off) abort();
            if (d.len > max) abort();
            if (is_text) {
                if (d.off != 0 || buf[d.consumed - 1] != '\n') abort();
                if (memchr(buf, '\n', d.consumed - 1)) abort();
                if (d.len && (buf[d.len - 1] == '\r' || buf[d.len - 1] == '\n')) abort();
            } else {
                if (d.off != 4 || d.consumed != d.len + 4) abort();
            }
            mix(o, buf + d.off, d.len);
            memmove(buf, buf + d.consumed, *len - d.consumed);
            *len -= d.consumed;
            continue;
        }
        if (r == MW_DEC_NEED) {
            if (d.need <= *len) abort();
            if (is_text && memchr(buf, '\n', *len)) abort();
        } else if (r == MW_DEC_TOO_LARGE) {
            if (d.len <= max) abort();
        } else if (r == MW_DEC_INVALID) {
            if (is_text || d.len >= 4) abort();
        } else {
            abort();
        }
        return r;
    }
}

static void run(decode_fn dec, int is_text, const uint8_t *data, size_t size, size_t max, unsigned seed)
{
    char *whole = malloc(size + 1), *piece = malloc(size + 1);
    outcome a = {0}, b = {0};

    size_t len = size;
    memcpy(whole, data, size);
    a.last = drain(dec, is_text, whole, &len, max, &a);
    a.left = len;

    size_t have = 0, pos = 0;
    unsigned x = seed * 2654435761u + 7;
    b.last = MW_DEC_NEED;
    while (pos < size && b.last == MW_DEC_NEED) {
        x = x * 1103515245u + 12345u;
        size_t n = 1 + (x >> 16) % 29;
        if (n > size - pos) n = size - pos;
        memcpy(piece + have, data + pos, n);
        have += n;
        pos += n;
        b.last = drain(dec, is_text, piece, &have, max, &b);
    }
    if (b.last == MW_DEC_NEED) b.left = have;
    else b.left = have + (size - pos);   /* the bytes never fed count as left */
    if (a.last != b.last || a.count != b.count || a.hash != b.hash || a.left != b.left) abort();
    free(whole);
    free(piece);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    /* byte 0: the message size limit; byte 1: split seed */
    size_t max = data[0] < 200 ? data[0] : (size_t)-1 / 2;
    unsigned seed = data[1];
    data += 2;
    size -= 2;
    run(mw_text_decode, 1, data, size, max, seed);
    run(mw_frame_decode, 0, data, size, max, seed);
    unsigned char hdr[4];
    if (mw_frame_header(hdr, size) != 0) abort();
    mw_decoded d;
    if (mw_frame_decode((const char *)hdr, 4, (size_t)-1, &d) != (size ? MW_DEC_NEED : MW_DEC_MESSAGE)) abort();
    if (d.len != size) abort();
    return 0;
}
