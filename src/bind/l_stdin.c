/* l_stdin: standard input for mw.stdin: core.stdinOpen(fn) starts reading
 * fd 0 line by line (fn(line) per line, fn(nil, err) when reading failed,
 * fn(nil) at the end), core.stdinPause(on), core.stdinClose(). A script that
 * never calls them never touches fd 0. Knows no syscalls (src/stdin.c
 * reads), no frame bits. */
#include "bind.h"
#include "stdin.h"
#include "tty.h"

#define MW_STDIN_MAX_LINE (1u << 20)

static void tty_close(mw_rt *rt)
{
    if (rt->tty) { mw_tty_close(rt->tty); rt->tty = NULL; }
    if (rt->tty_ref) { luaL_unref(rt->L, LUA_REGISTRYINDEX, rt->tty_ref); rt->tty_ref = 0; }
}

void l_stdin_close(mw_rt *rt)
{
    if (rt->stdin_src) { mw_stdin_close(rt->stdin_src); rt->stdin_src = NULL; }
    if (rt->stdin_ref) { luaL_unref(rt->L, LUA_REGISTRYINDEX, rt->stdin_ref); rt->stdin_ref = 0; }
    tty_close(rt);
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

/* ---- a prompt on a terminal: core.ttyOpen(prompt, fn): fn(line), fn(nil) at ^D ---- */

static void on_tty_line(void *ud, const char *line)
{
    mw_rt *rt = ud;
    lua_State *L = rt->L;
    if (!rt->tty_ref) return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->tty_ref);
    if (line) lua_pushstring(L, line); else lua_pushnil(L);
    if (!line) tty_close(rt);
    mw_rt_call(rt, 1, 0, "prompt");
}

static int l_tty_open(lua_State *L)
{
    mw_rt *rt = lua_touserdata(L, lua_upvalueindex(1));
    const char *prompt = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (rt->stopping || !rt->loop.ev) { lua_pushboolean(L, 0); return 1; }
    if (rt->tty || rt->stdin_src) return luaL_error(L, "stdin is read already");
    char err[160];
    lua_settop(L, 2);
    rt->tty_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    rt->tty = mw_tty_open(&rt->loop, prompt, on_tty_line, rt, err, sizeof err);
    if (!rt->tty) { tty_close(rt); lua_pushnil(L); lua_pushstring(L, err); return 2; }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_tty_print(lua_State *L)
{
    mw_rt *rt = lua_touserdata(L, lua_upvalueindex(1));
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    mw_tty_print(rt->tty, s, n);
    return 0;
}

static int l_tty_prompt(lua_State *L)
{
    mw_rt *rt = lua_touserdata(L, lua_upvalueindex(1));
    mw_tty_set_prompt(rt->tty, luaL_checkstring(L, 1));
    return 0;
}

static int l_tty_clear(lua_State *L)
{
    mw_tty_clear_line(((mw_rt *)lua_touserdata(L, lua_upvalueindex(1)))->tty);
    return 0;
}

static int l_tty_close(lua_State *L)
{
    tty_close(lua_touserdata(L, lua_upvalueindex(1)));
    return 0;
}

void l_tty_interrupt(mw_rt *rt)
{
    mw_tty_clear_line(rt->tty);
    if (!rt->tty_ref) return;
    lua_rawgeti(rt->L, LUA_REGISTRYINDEX, rt->tty_ref);
    lua_pushboolean(rt->L, 0);
    mw_rt_call(rt, 1, 0, "prompt");
}

/* core.ttyCatchInterrupt(on): SIGINT clears the prompt's line (-i) */
static int l_tty_catch(lua_State *L)
{
    ((mw_rt *)lua_touserdata(L, lua_upvalueindex(1)))->tty_sigint = lua_toboolean(L, 1);
    return 0;
}

static int l_isatty(lua_State *L)
{
    lua_pushboolean(L, mw_tty_is((int)luaL_checkinteger(L, 1)));
    return 1;
}

void l_stdin_register(lua_State *L, mw_rt *rt)
{
    static const luaL_Reg fns[] = {
        {"stdinOpen", l_open}, {"stdinPause", l_pause}, {"stdinClose", l_close},
        {"ttyOpen", l_tty_open}, {"ttyPrint", l_tty_print}, {"ttySetPrompt", l_tty_prompt},
        {"ttyClearLine", l_tty_clear}, {"ttyClose", l_tty_close}, {"ttyCatchInterrupt", l_tty_catch}, {"isatty", l_isatty}, {NULL, NULL},
    };
    lua_pushlightuserdata(L, rt);
    luaL_setfuncs(L, fns, 1);
}
