/* module_entry: `require "moonwire"` from a stock lua5.4, through the C module
 * build/lua/moonwire.so. Knows no syscalls and no frame bits. */
#include "bind.h"

int luaopen_moonwire(lua_State *L)
{
    mw_preload_embedded(L);
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_getfield(L, -1, "moonwire");
    lua_pushstring(L, "moonwire");
    lua_call(L, 1, 1);
    return 1;
}
