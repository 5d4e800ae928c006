/* l_timer: Timer.add / Timer.del / Timer.delAll over loop timers.
 * Knows no syscalls and no frame bits. */
#include "bind.h"
#include "timer.h"
#include <string.h>

typedef struct l_timer {
    mw_timer t;
    mw_rt *rt;
    lua_Integer id;
    int persistent;
    int deleted;
} l_timer;

/* registry[rt->timers_ref][id] = userdata; its user values: fn, args */

static void timer_fire(mw_timer *t, void *ud)
{
    l_timer *lt = ud;
    mw_rt *rt = lt->rt;
    lua_State *L = rt->L;
    (void)t;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->timers_ref);
    if (lua_rawgeti(L, -1, lt->id) != LUA_TUSERDATA) { lua_pop(L, 2); return; }
    int ud_idx = lua_gettop(L);
    if (!lt->persistent) {
        /* one-shot: gone before it runs (the stack keeps it alive meanwhile) */
        lua_pushnil(L);
        lua_rawseti(L, -3, lt->id);
        lt->deleted = 1;
    }
    lua_getiuservalue(L, ud_idx, 1);
    int nargs = 0;
    if (lua_getiuservalue(L, ud_idx, 2) == LUA_TTABLE) {
        int args = lua_gettop(L);
        lua_Integer n = luaL_len(L, args);
        luaL_checkstack(L, (int)n, "too many timer arguments");
        for (lua_Integer i = 1; i <= n; i++) lua_rawgeti(L, args, i);
        lua_remove(L, args);
        nargs = (int)n;
    } else {
        lua_pop(L, 1);
    }
    mw_rt_call(rt, nargs, 0, "timer");
    lua_pop(L, 2); /* ud, timers table */
}

static int timer_gc(lua_State *L)
{
    l_timer *lt = lua_touserdata(L, 1);
    if (lt->rt && lt->rt->loop.ev) mw_timer_stop(&lt->t);
    return 0;
}

static int l_add(lua_State *L)
{
    mw_rt *rt = lua_touserdata(L, lua_upvalueindex(1));
    lua_Number interval = luaL_checknumber(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    int persistent = 1;
    int args = 0;
    /* Timer.add(interval, fn [, args] [, persistent]) */
    if (lua_istable(L, 3)) {
        args = 3;
        if (!lua_isnoneornil(L, 4)) persistent = lua_toboolean(L, 4);
    } else if (lua_isboolean(L, 3)) {
        persistent = lua_toboolean(L, 3);
    } else if (!lua_isnoneornil(L, 3)) {
        return luaL_argerror(L, 3, "expected a table of arguments or a boolean");
    } else if (!lua_isnoneornil(L, 4)) {
        persistent = lua_toboolean(L, 4);
    }
    if (!(interval >= 0)) return luaL_argerror(L, 1, "interval must be a number >= 0");
    if (persistent && interval <= 0) return luaL_argerror(L, 1, "a persistent timer needs an interval > 0");
    if (rt->stopping) { lua_pushboolean(L, 0); return 1; }
    l_timer *lt = lua_newuserdatauv(L, sizeof *lt, 2);
    memset(lt, 0, sizeof *lt);
    lt->rt = rt;
    lt->id = ++rt->next_timer_id;
    lt->persistent = persistent;
    luaL_setmetatable(L, MW_TIMER_MT);
    lua_pushvalue(L, 2);
    lua_setiuservalue(L, -2, 1);
    if (args) {
        lua_pushvalue(L, args);
        lua_setiuservalue(L, -2, 2);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->timers_ref);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, lt->id);
    lua_pop(L, 2);
    mw_timer_init(&lt->t, &rt->loop, timer_fire, lt, 1);
    mw_timer_start(&lt->t, interval, persistent ? interval : 0);
    lua_pushinteger(L, lt->id);
    return 1;
}

static int l_del(lua_State *L)
{
    mw_rt *rt = lua_touserdata(L, lua_upvalueindex(1));
    lua_Integer id = luaL_checkinteger(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->timers_ref);
    l_timer *lt = lua_rawgeti(L, -1, id) == LUA_TUSERDATA ? lua_touserdata(L, -1) : NULL;
    if (!lt) { lua_pushboolean(L, 0); return 1; }
    mw_timer_stop(&lt->t);
    lt->deleted = 1;
    lua_pushnil(L);
    lua_rawseti(L, -3, id);
    lua_pushboolean(L, 1);
    return 1;
}

void l_timer_del_all(mw_rt *rt)
{
    lua_State *L = rt->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->timers_ref);
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        l_timer *lt = lua_touserdata(L, -1);
        mw_timer_stop(&lt->t);
        lt->deleted = 1;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_newtable(L);
    lua_rawseti(L, LUA_REGISTRYINDEX, rt->timers_ref);
}

static int l_del_all(lua_State *L)
{
    l_timer_del_all(lua_touserdata(L, lua_upvalueindex(1)));
    return 0;
}

void l_timer_register(lua_State *L, mw_rt *rt)
{
    luaL_newmetatable(L, MW_TIMER_MT);
    lua_pushcfunction(L, timer_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {{"add", l_add}, {"del", l_del}, {"delAll", l_del_all}, {NULL, NULL}};
    luaL_newlibtable(L, fns);
    lua_pushlightuserdata(L, rt);
    luaL_setfuncs(L, fns, 1);
    lua_setfield(L, -2, "Timer");
}
