/* lalloc: the Lua state's allocator (see lalloc.h). Knows nothing of Lua's
 * types, sockets or protocols. */
#include "lalloc.h"
#include <stdlib.h>

/* Blocks from LALLOC_MIN to LALLOC_MAX bytes are kept when freed, in one of
 * LALLOC_SLOTS lists, each holding blocks of one exact size (so a block is
 * only ever handed out for the size it was made for: any block Lua frees,
 * whoever allocated it, is safe to reuse), at most LALLOC_SLOT_BYTES a list
 * and LALLOC_TOTAL in all. A block of another size than its list's takes the
 * list over (the old blocks are freed): the sizes in use now win. A message
 * stream of one size then allocates and frees without glibc's bins (the
 * garbage collector frees a cycle's strings together, so a list must hold
 * about a cycle's worth); a stream of many sizes does no worse than malloc. */
#define LALLOC_MIN 1033
#define LALLOC_MAX (64 * 1024 + 64)   /* a 64 KiB message with Lua's string header */
#define LALLOC_SLOTS 16
#define LALLOC_SLOT_BYTES (256 * 1024)
#define LALLOC_TOTAL (1024 * 1024)

typedef struct slot {
    void *head;        /* a freed block's first word links to the next */
    size_t size;       /* the size of every block here (0: none yet) */
    size_t bytes;      /* held */
} slot;

static slot slots[LALLOC_SLOTS];
static size_t total;   /* bytes held in all lists */

static void drain(slot *s)
{
    while (s->head) {
        void *p = s->head;
        s->head = *(void **)p;
        free(p);
    }
    total -= s->bytes;
    s->bytes = 0;
}

static slot *slot_for(size_t n)
{
    return &slots[(n ^ (n >> 4) ^ (n >> 8)) % LALLOC_SLOTS];
}

/* Under ASan a reused block would hide a use after free: no cache there. */
#if defined(__SANITIZE_ADDRESS__)
#define LALLOC_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LALLOC_CACHE 0
#endif
#endif
#ifndef LALLOC_CACHE
#define LALLOC_CACHE 1
#endif

void *mw_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    if (nsize == 0) {
        /* ptr NULL: osize is a type tag, and there is nothing to free */
        if (LALLOC_CACHE && ptr && osize >= LALLOC_MIN && osize <= LALLOC_MAX) {
            slot *s = slot_for(osize);
            if (s->size != osize) { drain(s); s->size = osize; }
            if (s->bytes + osize <= LALLOC_SLOT_BYTES && total + osize <= LALLOC_TOTAL) {
                *(void **)ptr = s->head;
                s->head = ptr;
                s->bytes += osize;
                total += osize;
                return NULL;
            }
        }
        free(ptr);
        return NULL;
    }
    if (LALLOC_CACHE && ptr == NULL && nsize >= LALLOC_MIN && nsize <= LALLOC_MAX) {
        slot *s = slot_for(nsize);
        if (s->head && s->size == nsize) {
            void *p = s->head;
            s->head = *(void **)p;
            s->bytes -= nsize;
            total -= nsize;
            return p;
        }
        return malloc(nsize);
    }
    return realloc(ptr, nsize);
}

void mw_lua_alloc_release(void)
{
    for (int i = 0; i < LALLOC_SLOTS; i++) {
        drain(&slots[i]);
        slots[i].size = 0;
    }
}

int mw_lua_alloc_caches(void) { return LALLOC_CACHE; }
size_t mw_lua_alloc_held(void) { return total; }
