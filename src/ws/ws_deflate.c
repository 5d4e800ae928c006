/* ws_deflate: per-direction zlib raw-deflate streams for permessage-deflate, with counted memory.
 * Knows no socket, loop, TLS or Lua, no frames (RSV1 is ws_recv/ws_send.c's) and no negotiation. */
#include "ws_deflate.h"
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static ws_zcount g_count;

const ws_zcount *ws_zcount_global(void) { return &g_count; }

/* Each block carries its size in front so zfree can count it; 16 bytes
 * keep the caller's pointer as aligned as malloc's. */
#define ZHDR 16

static void count_add(ws_zcount *c, size_t n)
{
    c->allocs++;
    c->bytes += n;
    if (c->bytes > c->peak) c->peak = c->bytes;
}

static void count_sub(ws_zcount *c, size_t n)
{
    c->frees++;
    c->bytes -= n;
}

static void *counted_alloc(ws_zcount *c, size_t n)
{
    if (n > (size_t)-1 - ZHDR) return NULL;
    unsigned char *b = malloc(n + ZHDR);
    if (!b) return NULL;
    memcpy(b, &n, sizeof n);
    count_add(&g_count, n);
    if (c) count_add(c, n);
    return b + ZHDR;
}

static void counted_free(ws_zcount *c, void *p)
{
    if (!p) return;
    unsigned char *b = (unsigned char *)p - ZHDR;
    size_t n;
    memcpy(&n, b, sizeof n);
    count_sub(&g_count, n);
    if (c) count_sub(c, n);
    free(b);
}

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    if (size && items > (size_t)-1 / size) return Z_NULL;
    return counted_alloc(opaque, (size_t)items * size);
}

static void z_free(voidpf opaque, voidpf p) { counted_free(opaque, p); }

static z_stream *stream_new(ws_zcount *c)
{
    z_stream *z = counted_alloc(c, sizeof *z);
    if (!z) return NULL;
    memset(z, 0, sizeof *z);
    z->zalloc = z_alloc;
    z->zfree = z_free;
    z->opaque = c;
    return z;
}

/* ---- compress -------------------------------------------------------------- */

void ws_deflater_setup(ws_deflater *d, int wbits, int level, int mem_level, int no_takeover,
                       ws_zcount *count)
{
    ws_deflater_release(d);
    d->wbits = wbits;
    d->level = level;
    d->mem_level = mem_level;
    d->no_takeover = no_takeover;
    d->count = count;
}

void ws_deflater_release(ws_deflater *d)
{
    if (!d->z) return;
    deflateEnd(d->z);
    counted_free(d->count, d->z);
    d->z = NULL;
}

static int deflater_open(ws_deflater *d)
{
    d->z = stream_new(d->count);
    if (!d->z) return WS_Z_NOMEM;
    /* Negative windowBits: a raw stream, no zlib header or checksum. */
    if (deflateInit2(d->z, d->level, Z_DEFLATED, -d->wbits, d->mem_level, Z_DEFAULT_STRATEGY) != Z_OK) {
        counted_free(d->count, d->z);
        d->z = NULL;
        return WS_Z_NOMEM;
    }
    return 0;
}

int ws_deflater_message(ws_deflater *d, const void *p, size_t n, mw_buf *out)
{
    if (!d->z && deflater_open(d) != 0) return WS_Z_NOMEM;
    z_stream *z = d->z;
    size_t mark = out->len;
    /* zlib counts in uInt: a message over 4 GiB goes in slices. */
    const unsigned char *in = p;
    size_t left = n;
    size_t room = (size_t)deflateBound(z, n > 0xffff0000u ? 0xffff0000u : (uLong)n) + 16;
    for (;;) {
        uInt slice = left > 0xffff0000u ? 0xffff0000u : (uInt)left;
        z->next_in = (Bytef *)in;
        z->avail_in = slice;
        int flush = slice == left ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        do {
            if (room > 0xffff0000u) room = 0xffff0000u;
            char *dst = mw_buf_reserve(out, room);
            if (!dst) {
                out->len = mark;
                return WS_Z_NOMEM;
            }
            z->next_out = (Bytef *)dst;
            z->avail_out = (uInt)room;
            int r = deflate(z, flush);
            if (r != Z_OK && r != Z_BUF_ERROR) {   /* cannot happen with valid arguments */
                out->len = mark;
                return WS_Z_NOMEM;
            }
            mw_buf_commit(out, room - z->avail_out);
            room = 4096;
        } while (z->avail_out == 0);
        in += slice;
        left -= slice;
        if (!left) break;
    }
    /* A sync flush ends with the empty stored block 00 00 ff ff (unless
     * there was nothing to flush: an empty message right after another). */
    if (out->len - mark >= 4 && memcmp(mw_buf_head(out) + out->len - 4, "\0\0\xff\xff", 4) == 0)
        out->len -= 4;
    if (d->no_takeover) deflateReset(z);
    return 0;
}

/* ---- decompress -------------------------------------------------------------- */

void ws_inflater_setup(ws_inflater *f, int wbits, int no_takeover, ws_zcount *count)
{
    ws_inflater_release(f);
    f->wbits = wbits;   /* what the server compresses with; we inflate with 15 (ws_deflate.h) */
    f->no_takeover = no_takeover;
    f->count = count;
    f->ended = 0;
    f->total = 0;
    f->why = NULL;
}

void ws_inflater_release(ws_inflater *f)
{
    if (f->z) {
        inflateEnd(f->z);
        counted_free(f->count, f->z);
        f->z = NULL;
    }
    f->ended = 0;
    f->total = 0;
}

static int inflater_open(ws_inflater *f)
{
    f->z = stream_new(f->count);
    if (!f->z) return WS_Z_NOMEM;
    if (inflateInit2(f->z, -15) != Z_OK) {
        counted_free(f->count, f->z);
        f->z = NULL;
        return WS_Z_NOMEM;
    }
    return 0;
}

static int corrupt(ws_inflater *f, const char *why)
{
    f->why = why;
    return WS_Z_CORRUPT;
}

/* Run the stream over in[0..n) until it is all taken and the output drained. */
static int inflate_some(ws_inflater *f, const unsigned char *in, size_t n, uint64_t limit,
                        mw_buf *out, ws_inflate_check check, void *ud)
{
    z_stream *z = f->z;
    /* The first step's room follows the input and later ones double up to a
     * chunk, so a small message does not make its buffer reserve a whole one. */
    size_t step = n < WS_Z_CHUNK / 4 ? n * 4 + 64 : WS_Z_CHUNK;
    while (n && !f->ended) {
        uInt slice = n > 0xffff0000u ? 0xffff0000u : (uInt)n;
        z->next_in = (Bytef *)in;
        z->avail_in = slice;
        for (;;) {
            size_t room = step;
            step = step < WS_Z_CHUNK / 2 ? step * 2 : WS_Z_CHUNK;
            /* One byte past the limit is enough to know it was passed. */
            if (limit && limit - f->total < room) room = (size_t)(limit - f->total) + 1;
            char *dst = mw_buf_reserve(out, room);
            if (!dst) return WS_Z_NOMEM;
            z->next_out = (Bytef *)dst;
            z->avail_out = (uInt)room;
            int r = inflate(z, Z_SYNC_FLUSH);
            size_t got = room - z->avail_out;
            int over = limit && f->total + got > limit;
            if (over) got = (size_t)(limit - f->total);   /* the byte past it is dropped */
            mw_buf_commit(out, got);
            f->total += got;
            /* The bytes up to the limit are judged first, so which failure
             * comes first depends on the output alone, never on the splits. */
            if (got && check && check(ud, dst, got)) return WS_Z_STOPPED;
            if (over) return WS_Z_LIMIT;
            if (r == Z_STREAM_END) {
                /* A final block (RFC 7692 7.2.3.4 allows it): what follows in
                 * this message is the remains of the flush; it is dropped. */
                f->ended = 1;
                break;
            }
            if (r == Z_MEM_ERROR) return WS_Z_NOMEM;
            if (r == Z_NEED_DICT || r == Z_DATA_ERROR || r == Z_STREAM_ERROR)
                return corrupt(f, z->msg ? z->msg : "invalid compressed data");
            if (z->avail_in == 0 && z->avail_out != 0) break;
            if (r == Z_BUF_ERROR && z->avail_out != 0) break;   /* no progress possible */
        }
        in += slice - z->avail_in;
        n -= slice - z->avail_in;
        if (f->ended) break;
    }
    return 0;
}

int ws_inflater_feed(ws_inflater *f, const void *in, size_t n, int last, uint64_t limit,
                     mw_buf *out, ws_inflate_check check, void *ud)
{
    static const unsigned char tail[4] = { 0x00, 0x00, 0xff, 0xff };
    if (!f->z && inflater_open(f) != 0) return WS_Z_NOMEM;
    int e = inflate_some(f, in, n, limit, out, check, ud);
    if (e || !last) return e;
    e = inflate_some(f, tail, sizeof tail, limit, out, check, ud);
    if (e) return e;
    /* The tail completes an empty stored block: the stream must now wait for
     * a block header with no bits pending (128: at a block boundary). */
    if (!f->ended && (f->z->data_type & (128 | 64 | 7)) != 128)
        return corrupt(f, "the message does not end on a DEFLATE block boundary");
    if (f->no_takeover || f->ended) inflateReset(f->z);
    f->ended = 0;
    f->total = 0;
    return 0;
}
