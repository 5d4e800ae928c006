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
 * the free space, or NULL on allocation failure (buffer unchanged). */
char *mw_buf_reserve(mw_buf *b, size_t extra);
/* Mark `n` bytes written into the space returned by mw_buf_reserve. */
void mw_buf_commit(mw_buf *b, size_t n);
/* Append bytes. Returns 0, or -1 on allocation failure (buffer unchanged). */
int mw_buf_append(mw_buf *b, const void *p, size_t n);
/* Drop n bytes from the front (n <= len). */
void mw_buf_consume(mw_buf *b, size_t n);
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
