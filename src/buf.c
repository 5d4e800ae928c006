/* buf: growable byte buffer with a consumable front.
 * Knows nothing of sockets, Lua or protocols. */
#include "buf.h"
#include <stdlib.h>
#include <string.h>

void mw_buf_init(mw_buf *b) { b->data = NULL; b->off = b->len = b->cap = 0; }

void mw_buf_free(mw_buf *b) { free(b->data); mw_buf_init(b); }

char *mw_buf_reserve_slow(mw_buf *b, size_t extra)
{
    /* Compact first: a consumed front is free space. */
    if (b->off && b->cap - b->len >= extra) {
        memmove(b->data, b->data + b->off, b->len);
        b->off = 0;
        return b->data + b->len;
    }
    size_t need = b->len + extra;
    if (need < b->len) return NULL; /* overflow */
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > ((size_t)-1) / 2) { cap = need; break; }
        cap *= 2;
    }
    char *nd = malloc(cap);
    if (!nd) return NULL;
    if (b->len) memcpy(nd, b->data + b->off, b->len);
    free(b->data);
    b->data = nd;
    b->off = 0;
    b->cap = cap;
    return b->data + b->len;
}

int mw_buf_append(mw_buf *b, const void *p, size_t n)
{
    if (!n) return 0;
    char *dst = mw_buf_reserve(b, n);
    if (!dst) return -1;
    memcpy(dst, p, n);
    b->len += n;
    return 0;
}

void mw_buf_clear(mw_buf *b) { b->off = 0; b->len = 0; }

void mw_buf_shrink(mw_buf *b, size_t keep)
{
    if (b->len == 0 && b->cap > keep) mw_buf_free(b);
}

int mw_str_set(char **slot, const char *s)
{
    free(*slot);
    *slot = s ? strdup(s) : NULL;
    return s && !*slot ? -1 : 0;
}
