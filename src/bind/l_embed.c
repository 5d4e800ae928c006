/* l_embed: loads the lua/moonwire modules compiled into the binary.
 * Knows no syscalls and no frame bits. */
#include "bind.h"
#include <string.h>

struct mw_embedded { const char *name; const char *src; size_t len; };
extern const struct mw_embedded mw_embedded_lua[];

static int embedded_loader(lua_State *L)
{
    const struct mw_embedded *e = lua_touserdata(L, lua_upvalueindex(1));
    char chunk[128];
    snprintf(chunk, sizeof chunk, "=[moonwire %s]", e->name);
    if (luaL_loadbuffer(L, e->src, e->len, chunk) != LUA_OK) return lua_error(L);
    lua_pushstring(L, e->name);
    lua_call(L, 1, 1);
    return 1;
}

void mw_preload_embedded(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, luaopen_moonwire_core);
    lua_setfield(L, -2, "moonwire.core");
    for (const struct mw_embedded *e = mw_embedded_lua; e->name; e++) {
        lua_pushlightuserdata(L, (void *)e);
        lua_pushcclosure(L, embedded_loader, 1);
        lua_setfield(L, -2, e->name);
    }
    lua_pop(L, 1);
}
