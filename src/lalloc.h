/* lalloc: the Lua state's allocator, a lua_Alloc in plain C (knows nothing
 * of Lua itself): realloc and free, with a small cache of freed blocks by
 * exact size for the sizes glibc's thread cache does not keep (a Lua string
 * of a 1 KiB message is 1,049 bytes; tcache keeps at most 1,032). */
#ifndef MW_LALLOC_H
#define MW_LALLOC_H
#include <stddef.h>

void *mw_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize);
/* Give the cached blocks back (after lua_close). */
void mw_lua_alloc_release(void);
/* 1 when freed blocks are kept (not under ASan, where reuse would hide a use
 * after free); the bytes kept now. */
int mw_lua_alloc_caches(void);
size_t mw_lua_alloc_held(void);

#endif
