/* l_stdin: standard input for mw.stdin: core.stdinOpen(fn) starts reading
 * fd 0 line by line (fn(line) per line, fn(nil, err) when reading failed,
 * fn(nil) at the end), core.stdinPause(on), core.stdinClose(). A script that
 * never calls them never touches fd 0. Knows no syscalls (src/stdin.c
 * reads), no frame bits. */
#include "bind.h"
#include "stdin.h"

#define MW_STDIN_MAX_LINE (1u << 20)

void l_stdin_close(mw_rt *rt)
{
    if (rt->stdin_src) { mw_stdin_close(rt->stdin_src); rt->stdin_src = NULL; }
    if (rt->stdin_ref) { luaL_unref(rt->L, LUA_REGISTRYINDEX, rt->stdin_ref); rt->stdin_ref = 0; }
}

static void on_line(void *ud, const char *line, size_t n, const char *err)
{
    mw_rt *rt = ud;
    lua_State *L = rt->L;
    if (!rt->stdin_ref) return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->stdin_ref);
    if (line) lua_pushlstring(L, line, n); else lua_pushnil(L);
    if (err) lua_pushstring(L, err); else lua_pushnil(L);
    int end = !line && !err;
    if (end) l_stdin_close(rt);   /* the end: nothing more comes; the loop may finish */
    mw_rt_call(rt, 2, 0, "stdin");
}

static int l_open(lua_State *L)
{
    mw_rt *rt = lua_touserdata(L, lua_upvalueindex(1));
    luaL_checktype(L, 1, LUA_TFUNCTION);
    if (rt->stopping || !rt->loop.ev) { lua_pushboolean(L, 0); return 1; }
    if (rt->stdin_src) return luaL_error(L, "stdin is open already");
    char err[256];
    lua_settop(L, 1);
    rt->stdin_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    rt->stdin_src = mw_stdin_open(&rt->loop, 0, MW_STDIN_MAX_LINE, on_line, rt, err, sizeof err);
    if (!rt->stdin_src) {
        l_stdin_close(rt);
        lua_pushnil(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_pause(lua_State *L)
{
    mw_rt *rt = lua_touserdata(L, lua_upvalueindex(1));
    mw_stdin_pause(rt->stdin_src, lua_toboolean(L, 1));
    return 0;
}

static int l_close(lua_State *L)
{
    l_stdin_close(lua_touserdata(L, lua_upvalueindex(1)));
    return 0;
}

void l_stdin_register(lua_State *L, mw_rt *rt)
{
    static const luaL_Reg fns[] = { {"stdinOpen", l_open}, {"stdinPause", l_pause}, {"stdinClose", l_close}, {NULL, NULL} };
    lua_pushlightuserdata(L, rt);
    luaL_setfuncs(L, fns, 1);
}
