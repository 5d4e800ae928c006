/* ws_deflate: permessage-deflate's compression state, one object per direction, over zlib.
 * Knows no socket, loop, TLS or Lua, no frames and no negotiation (ws_ext.c agrees the parameters).
 *
 * Memory (zlib's own formulas, zlib.h/zconf.h): a compressor holds
 * (1 << (wbits + 2)) + (1 << (mem_level + 9)) bytes plus ~6 KiB of state:
 * 136 KiB + 6 KiB at 15/4 (the default: WS_DEFLATE_MEM_DEFAULT in ws_ext.h),
 * 256 KiB at 15/8 (zlib's own default), 10 KiB at 9/1. Only what zlib has
 * touched is resident: the hash head (2^(mem_level+8) bytes) is cleared at
 * the first message, the window and its chains fill as history grows.
 * A decompressor holds a 32 KiB window (allocated by its first output) plus
 * ~7 KiB of state, whatever server_max_window_bits was agreed: zlib checks
 * a distance against its window only for history from an earlier call, and
 * accepts any distance within the output of the current call, so with a
 * smaller window a server that broke the agreed window would see its
 * message pass or fail (1007) depending on how its bytes were split into
 * frames and reads. With the deflate format's largest window a message
 * decodes the same however it arrives, and a conforming server's messages
 * decode exactly (a smaller agreed window still saves the server's
 * memory, not ours). Both are
 * allocated lazily, on the first compressed message of their direction,
 * through counting hooks (ws_zcount), so a caller can see what each client
 * and the whole process hold and how often zlib allocates.
 *
 * Steady state: with context takeover the state lives as long as the
 * connection (its window is the context) and a message makes no zlib
 * allocation after the first. Without context takeover a message ends with
 * deflateReset/inflateReset, which keep the memory (no allocation per
 * message either); ws_*_release gives it back while the direction is idle
 * (ws_client_trim calls it), and the next message allocates it again. */
#ifndef WS_DEFLATE_H
#define WS_DEFLATE_H
#include <stddef.h>
#include <stdint.h>
#include "../buf.h"

enum {
    WS_Z_OK = 0,
    WS_Z_NOMEM = -1,     /* zlib or the output buffer could not allocate */
    WS_Z_CORRUPT = -2,   /* not a valid DEFLATE stream (see ws_inflater.why) */
    WS_Z_LIMIT = -3,     /* the message inflates to more than the limit */
    WS_Z_STOPPED = -4,   /* the output check refused a piece */
};

/* Output is produced this many bytes at a time at most: the working memory
 * of an inflate is bounded by it, however much the input expands. */
#define WS_Z_CHUNK 16384

/* zlib's allocations through the hooks (the z_stream structs included). */
typedef struct ws_zcount {
    uint64_t allocs, frees;   /* calls */
    size_t bytes;             /* held now */
    size_t peak;              /* most held at once */
} ws_zcount;

/* The whole process's totals (every ws_zcount adds into them too). */
const ws_zcount *ws_zcount_global(void);

struct z_stream_s;

typedef struct ws_deflater {
    struct z_stream_s *z;     /* NULL until the first message, and after release */
    ws_zcount *count;
    int wbits, level, mem_level, no_takeover;
} ws_deflater;

typedef struct ws_inflater {
    struct z_stream_s *z;
    ws_zcount *count;
    int wbits, no_takeover;
    int ended;                /* this message's stream had a final block */
    uint64_t total;           /* bytes inflated in this message so far */
    const char *why;          /* after WS_Z_CORRUPT: what was wrong */
} ws_inflater;

/* Set the parameters (nothing is allocated): wbits 9..15, level 1..9,
 * mem_level 1..9; count may be NULL. */
void ws_deflater_setup(ws_deflater *d, int wbits, int level, int mem_level, int no_takeover,
                       ws_zcount *count);

/* Compress a whole message p[0..n) onto out, as RFC 7692 7.2.1 says: a
 * sync flush, its trailing 00 00 ff ff removed. Resets the stream after it
 * when no_takeover. Returns 0 or WS_Z_NOMEM (out is then as before; the
 * stream's context is lost, so fail the connection). */
int ws_deflater_message(ws_deflater *d, const void *p, size_t n, mw_buf *out);

/* Free the state (idempotent); the next message allocates it again. */
void ws_deflater_release(ws_deflater *d);

/* Called with each piece of output as it is appended; nonzero stops. */
typedef int (*ws_inflate_check)(void *ud, const char *p, size_t n);

/* Set the parameters: wbits 8..15, the server's agreed window (kept for
 * the record: the stream inflates with 15, see above). */
void ws_inflater_setup(ws_inflater *f, int wbits, int no_takeover, ws_zcount *count);

/* Inflate in[0..n), the next compressed bytes of the current message (any
 * split), appending the output to out WS_Z_CHUNK bytes at most at a time.
 * last: the message ends with them (the 00 00 ff ff tail is then added and
 * the stream must end on a block boundary). limit: most bytes the message
 * may inflate to (0: no limit), enforced while inflating: zlib is never
 * asked for more than one byte past it, and that byte is not appended.
 * check, if not NULL, sees every piece appended (before the limit is
 * reported, so the first failure is the same however the input is split).
 * Returns 0, WS_Z_LIMIT, WS_Z_CORRUPT (why says what), WS_Z_STOPPED or
 * WS_Z_NOMEM; after an error the stream is unusable (release it). */
int ws_inflater_feed(ws_inflater *f, const void *in, size_t n, int last, uint64_t limit,
                     mw_buf *out, ws_inflate_check check, void *ud);

/* Free the state (idempotent). */
void ws_inflater_release(ws_inflater *f);
#endif
