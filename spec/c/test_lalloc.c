/* test_lalloc: the Lua allocator's cache (src/lalloc.c) through its lua_Alloc
 * calls, as Lua makes them: a freed block comes back for its own size only,
 * a list changes hands to the size in use, the caps hold, contents survive a
 * realloc, and release gives everything back. */
#include "mwtest.h"
#include "lalloc.h"
#include <stdint.h>
#include <stdlib.h>

#define TAG 4   /* LUA_TSTRING: what Lua passes as osize with a NULL block */

static void *alloc(size_t n) { return mw_lua_alloc(NULL, NULL, TAG, n); }
static void release(void *p, size_t n) { mw_lua_alloc(NULL, p, n, 0); }

static void test_reuse_same_size(void)
{
    mw_lua_alloc_release();
    void *a = alloc(1049);
    MW_CHECK(a != NULL);
    memset(a, 'x', 1049);
    release(a, 1049);
    void *b = alloc(1049);
    if (mw_lua_alloc_caches()) MW_CHECK(b == a);   /* the block freed last */
    MW_CHECK_EQ_INT(mw_lua_alloc_held(), 0);
    release(b, 1049);
    mw_lua_alloc_release();
    MW_CHECK_EQ_INT(mw_lua_alloc_held(), 0);
}

static void test_other_size_not_reused(void)
{
    /* a larger size sharing a list (some of 2001..2200 do) must never get
     * the 2000-byte block: writing it whole would overrun that block */
    int reused = 0;
    for (size_t m = 2001; m <= 2200; m++) {
        mw_lua_alloc_release();
        void *a = alloc(2000);
        release(a, 2000);
        void *b = alloc(m);
        MW_CHECK(b != NULL);
        if (b == a) reused++;
        memset(b, 'y', m);
        release(b, m);
    }
    MW_CHECK_EQ_INT(reused, 0);
    mw_lua_alloc_release();
}

static void test_small_and_huge_pass_through(void)
{
    mw_lua_alloc_release();
    void *s = alloc(100), *h = alloc(1 << 20);
    MW_CHECK(s && h);
    release(s, 100);
    release(h, 1 << 20);
    MW_CHECK_EQ_INT(mw_lua_alloc_held(), 0);   /* neither is kept */
    MW_CHECK(mw_lua_alloc(NULL, NULL, TAG, 0) == NULL);   /* free of nothing */
}

static void test_caps(void)
{
    mw_lua_alloc_release();
    enum { N = 400 };
    static void *v[N];
    for (int i = 0; i < N; i++) v[i] = alloc(1049);
    for (int i = 0; i < N; i++) release(v[i], 1049);
    size_t held = mw_lua_alloc_held();
    MW_CHECK(held <= 256 * 1024);
    if (mw_lua_alloc_caches()) MW_CHECK(held >= 200 * 1049);
    /* sizes taking the lists over: the total never passes 1 MiB */
    for (size_t sz = 4000; sz < 64 * 1024; sz += 997) {
        void *w[64];
        for (int i = 0; i < 64; i++) w[i] = alloc(sz);
        for (int i = 0; i < 64; i++) release(w[i], sz);
        MW_CHECK(mw_lua_alloc_held() <= 1024 * 1024);
    }
    mw_lua_alloc_release();
    MW_CHECK_EQ_INT(mw_lua_alloc_held(), 0);
}

static void test_realloc_keeps_contents(void)
{
    mw_lua_alloc_release();
    unsigned char *p = alloc(1500);
    for (int i = 0; i < 1500; i++) p[i] = (unsigned char)i;
    p = mw_lua_alloc(NULL, p, 1500, 5000);
    MW_CHECK(p != NULL);
    int same = 1;
    for (int i = 0; i < 1500; i++) same &= p[i] == (unsigned char)i;
    MW_CHECK(same);
    release(p, 5000);
    /* a block made by someone else (lauxlib's realloc) is reused for its size */
    void *q = malloc(3000);
    release(q, 3000);
    void *r = alloc(3000);
    if (mw_lua_alloc_caches()) MW_CHECK(r == q);
    release(r, 3000);
    mw_lua_alloc_release();
}

int main(void)
{
    MW_RUN(test_reuse_same_size);
    MW_RUN(test_other_size_not_reused);
    MW_RUN(test_small_and_huge_pass_through);
    MW_RUN(test_caps);
    MW_RUN(test_realloc_keeps_contents);
    return MW_DONE();
}
