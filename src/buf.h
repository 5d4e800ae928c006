/* buf: the growable byte buffer every layer uses (read side and write side).
 * Knows nothing of sockets, Lua or protocols. */
#ifndef MW_BUF_H
#define MW_BUF_H
#include <stddef.h>

/* Bytes live in data[off .. off+len). Consuming from the front advances off;
 * space is reclaimed lazily (compaction happens only when growing would
 * otherwise be needed), so a steady stream reuses one allocation. */
typedef struct mw_buf {
    char *data;
    size_t off;
    size_t len;
    size_t cap;
} mw_buf;

#define MW_BUF_INIT {NULL, 0, 0, 0}

void mw_buf_init(mw_buf *b);
void mw_buf_free(mw_buf *b);
/* Ensure room for `extra` more bytes after the content. Returns a pointer to
 * the free space, or NULL on allocation failure (buffer unchanged). The
 * check that there is room already is inline: it runs per message. */
char *mw_buf_reserve_slow(mw_buf *b, size_t extra);
static inline char *mw_buf_reserve(mw_buf *b, size_t extra)
{
    if (b->cap - b->off - b->len >= extra) return b->data + b->off + b->len;
    return mw_buf_reserve_slow(b, extra);
}
/* Mark `n` bytes written into the space returned by mw_buf_reserve. */
static inline void mw_buf_commit(mw_buf *b, size_t n) { b->len += n; }
/* Append bytes. Returns 0, or -1 on allocation failure (buffer unchanged). */
int mw_buf_append(mw_buf *b, const void *p, size_t n);
/* Drop n bytes from the front (n <= len). */
static inline void mw_buf_consume(mw_buf *b, size_t n)
{
    if (n >= b->len) { b->off = 0; b->len = 0; return; }
    b->off += n;
    b->len -= n;
}
/* Empty the buffer, keeping its allocation. */
void mw_buf_clear(mw_buf *b);
/* Release the allocation if it is larger than `keep` bytes and empty;
 * bounds the memory an idle connection holds after a burst. */
void mw_buf_shrink(mw_buf *b, size_t keep);

/* Never NULL + 0: an unallocated buffer yields a pointer to an empty string. */
static inline char *mw_buf_head(const mw_buf *b) { return b->data ? b->data + b->off : (char *)""; }
/* Replace the owned string *slot with a copy of s (NULL: none). 0, or -1
 * when out of memory (*slot is NULL then). */
int mw_str_set(char **slot, const char *s);
#endif
