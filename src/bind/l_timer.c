/* l_timer: Timer.add / Timer.del / Timer.delAll over loop timers, and their
 * part in hot reload. Knows no syscalls and no frame bits. */
#include "bind.h"
#include "timer.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>

typedef struct l_timer {
    mw_timer t;
    mw_rt *rt;
    lua_Integer id;
    int persistent;
    int deleted;
    int declared;      /* made by the script's top level or onWorkerStart */
    int spent;         /* a reload's declaration of a one-shot that already fired
                        * or was deleted: it does not start again */
    int withdrawn;     /* a reload's declaration that Timer.del deleted during the
                        * reload: it does not start, the live timer it matched stops */
    double interval;
} l_timer;

/* registry[rt->timers_ref][id] = userdata; its user values: fn, args.
 * registry[rt->spent_ref][id] = interval: the declared one-shots of the
 * current generation that fired or were deleted. They keep their place in
 * the order of declaration, so that a reload matches the declaration to the
 * spent record and does not run it again; a commit keeps only the records
 * its own declarations matched. */

static void mark_spent(lua_State *L, mw_rt *rt, const l_timer *lt)
{
    if (!lt->declared || lt->persistent) return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->spent_ref);
    lua_pushnumber(L, lt->interval);
    lua_rawseti(L, -2, lt->id);
    lua_pop(L, 1);
}

/* args -> table.unpack(args), for a timer's function: run through the door,
 * since a script's args table may carry a metatable (a __len that raises, or
 * returns a float or a count too big for the stack) at any time after add. */
static int unpack_args(lua_State *L)
{
    lua_Integer n = luaL_len(L, 1);
    if (n <= 0) return 0;
    /* one slot more: the door's traceback handler, pushed over them */
    if (n >= INT_MAX || !lua_checkstack(L, (int)n + 1))
        return luaL_error(L, "too many timer arguments to unpack (#args is %I)", (LUAI_UACINT)n);
    for (lua_Integer i = 1; i <= n; i++) lua_geti(L, 1, i);
    return (int)n;
}

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
        mark_spent(L, rt, lt);
    }
    lua_getiuservalue(L, ud_idx, 1);
    int fn = lua_gettop(L);
    if (lua_getiuservalue(L, ud_idx, 2) == LUA_TTABLE) {
        /* the unpacking runs the table's __len and __index: through the door */
        lua_pushcfunction(L, unpack_args);
        lua_insert(L, -2);
        if (mw_rt_call(rt, 1, LUA_MULTRET, "timer") != 0) {
            lua_settop(L, ud_idx - 2); /* reported; below it the timers table */
            return;
        }
    } else {
        lua_pop(L, 1);
    }
    mw_rt_call(rt, lua_gettop(L) - fn, 0, "timer");
    lua_pop(L, 2); /* ud, timers table */
}

static void delete_timer(lua_State *L, mw_rt *rt, l_timer *lt, int timers);

static int timer_gc(lua_State *L)
{
    l_timer *lt = luaL_testudata(L, 1, MW_TIMER_MT);   /* a table may carry this metatable */
    if (!lt || !lt->rt || !lt->rt->loop.ev) return 0;
    mw_rt *rt = lt->rt;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->timers_ref);
    if (lua_rawgeti(L, -1, lt->id) == LUA_TUSERDATA && lua_touserdata(L, -1) == lt &&
        mw_gc_called_by_script(L)) {
        /* by hand (the table holds it, so not the collector): deleted, as
         * Timer.del deletes it, also from inside its own function */
        delete_timer(L, rt, lt, lua_gettop(L) - 1);
    }
    mw_timer_stop(&lt->t);
    lua_settop(L, 1);
    return 0;
}

static l_timer *new_timer(lua_State *L, mw_rt *rt, lua_Integer id, double interval, int persistent,
                          int fn, int args);
static void start_timer(lua_State *L, mw_rt *rt, l_timer *lt);

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
    if (rt->reloading) return l_timer_declare(L, rt, interval, persistent, 2, args);
    l_timer *lt = new_timer(L, rt, ++rt->next_timer_id, interval, persistent, 2, args);
    lt->declared = rt->declaring;
    start_timer(L, rt, lt);
    lua_pushinteger(L, lt->id);
    return 1;
}

/* Push a new timer userdata (not yet in the table, not started) with its
 * function and arguments as user values. */
static l_timer *new_timer(lua_State *L, mw_rt *rt, lua_Integer id, double interval, int persistent,
                          int fn, int args)
{
    fn = lua_absindex(L, fn);
    if (args) args = lua_absindex(L, args);
    l_timer *lt = lua_newuserdatauv(L, sizeof *lt, 2);
    memset(lt, 0, sizeof *lt);
    lt->rt = rt;
    lt->id = id;
    lt->persistent = persistent;
    lt->interval = interval;
    luaL_setmetatable(L, MW_TIMER_MT);
    lua_pushvalue(L, fn);
    lua_setiuservalue(L, -2, 1);
    if (args) {
        lua_pushvalue(L, args);
        lua_setiuservalue(L, -2, 2);
    }
    mw_timer_init(&lt->t, &rt->loop, timer_fire, lt, 1);
    return lt;
}

/* Register the timer on top of the stack under its id and start it; pops it. */
static void start_timer(lua_State *L, mw_rt *rt, l_timer *lt)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->timers_ref);
    lua_pushvalue(L, -2);
    lua_rawseti(L, -2, lt->id);
    lua_pop(L, 2);
    mw_timer_start(&lt->t, lt->interval, lt->persistent ? lt->interval : 0);
}

static int by_id(const void *x, const void *y)
{
    lua_Integer a = *(const lua_Integer *)x, b = *(const lua_Integer *)y;
    return a < b ? -1 : a > b;
}

/* The ids a reload's declarations of (interval, kind) are matched to, in
 * order: the live declared timers and, for one-shots, the spent records.
 * Ids grow with the order of declaration within one (interval, kind), since
 * the k-th declaration takes the k-th id and new ones take fresh ids.
 * Returns the k-th (from 0), or 0 when there are not that many. */
static lua_Integer kth_slot(lua_State *L, mw_rt *rt, double interval, int persistent, lua_Integer k)
{
    int nsrc = persistent ? 1 : 2;
    int refs[2] = {rt->timers_ref, rt->spent_ref};
    size_t n = 0, cap = 0;
    lua_Integer *ids = NULL;
    for (int pass = 0; pass < 2; pass++) { /* count, then fill */
        for (int s = 0; s < nsrc; s++) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, refs[s]);
            lua_pushnil(L);
            while (lua_next(L, -2)) {
                int match;
                if (s == 0) {
                    const l_timer *lt = lua_touserdata(L, -1);
                    match = lt->declared && !lt->deleted && lt->interval == interval &&
                            lt->persistent == persistent;
                } else {
                    match = lua_tonumber(L, -1) == interval;
                }
                if (match) {
                    if (pass == 0) cap++;
                    else if (n < cap) ids[n++] = lua_tointeger(L, -2);
                }
                lua_pop(L, 1);
            }
            lua_pop(L, 1);
        }
        if (pass == 0) {
            if ((lua_Integer)cap <= k) return 0;
            ids = lua_newuserdatauv(L, cap * sizeof *ids, 0); /* Lua owns it: nothing to free */
        }
    }
    qsort(ids, n, sizeof *ids, by_id);
    lua_Integer id = (lua_Integer)n > k ? ids[k] : 0;
    lua_pop(L, 1);
    return id;
}

int l_timer_declare(lua_State *L, mw_rt *rt, double interval, int persistent, int fn, int args)
{
    /* The k-th declaration of (interval, kind) in this reload matches the
     * k-th slot of the same (interval, kind): a live declared timer, which
     * goes on with the new function, or a spent one-shot, which stays spent. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->tx_ref);
    lua_getfield(L, -1, "timers");
    int decls = lua_gettop(L);
    lua_Integer ndecl = (lua_Integer)lua_rawlen(L, decls), k = 0;
    for (lua_Integer i = 1; i <= ndecl; i++) {
        lua_rawgeti(L, decls, i);
        l_timer *d = lua_touserdata(L, -1);
        if (d->interval == interval && d->persistent == persistent) k++;
        lua_pop(L, 1);
    }
    lua_Integer id = kth_slot(L, rt, interval, persistent, k);
    int spent = 0;
    if (id) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, rt->timers_ref);
        spent = lua_rawgeti(L, -1, id) != LUA_TUSERDATA;
        lua_pop(L, 2);
    } else {
        id = ++rt->next_timer_id;
    }
    l_timer *d = new_timer(L, rt, id, interval, persistent, fn, args);
    d->declared = 1;
    d->spent = spent;
    lua_rawseti(L, decls, ndecl + 1);
    lua_pop(L, 2);
    lua_pushinteger(L, id);
    return 1;
}

void l_timer_commit(lua_State *L, mw_rt *rt, int decls)
{
    /* what Timer.delAll and Timer.del did to live timers during the reload */
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->tx_ref);
    int tx = lua_gettop(L);
    int delall = lua_getfield(L, tx, "timer_delall") != LUA_TNIL;
    lua_pop(L, 1);
    if (lua_getfield(L, tx, "timer_dels") != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    lua_remove(L, tx);
    int dels = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->timers_ref);
    int timers = lua_gettop(L);
    /* Live declared timers that no declaration took are deleted, and so
     * are the live timers Timer.del or Timer.delAll deleted during the
     * reload, unless a declaration after that took them. */
    lua_newtable(L);
    int keep = lua_gettop(L);
    lua_Integer ndecl = (lua_Integer)lua_rawlen(L, decls);
    for (lua_Integer i = 1; i <= ndecl; i++) {
        lua_rawgeti(L, decls, i);
        l_timer *d = lua_touserdata(L, -1);
        lua_pushboolean(L, 1);
        lua_rawseti(L, keep, d->id);
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, timers)) {
        l_timer *lt = lua_touserdata(L, -1);
        lua_pop(L, 1);
        int kept = lua_rawgeti(L, keep, lt->id) != LUA_TNIL;
        int deleted = lua_rawgeti(L, dels, lt->id) != LUA_TNIL;
        lua_pop(L, 2);
        if ((lt->declared || delall || deleted) && !kept) {
            mw_timer_stop(&lt->t);
            lt->deleted = 1;
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, timers); /* clearing an existing field is allowed during next */
        }
    }
    /* The spent records of this generation: those its declarations matched,
     * and those they withdrew; a record no declaration matched is dropped. */
    lua_newtable(L);
    int spent = lua_gettop(L);
    for (lua_Integer i = 1; i <= ndecl; i++) {
        lua_rawgeti(L, decls, i);
        l_timer *d = lua_touserdata(L, -1);
        int live = lua_rawgeti(L, timers, d->id) == LUA_TUSERDATA;
        if (d->spent || d->withdrawn) {
            if (live) { /* withdrawn by Timer.del during the reload */
                l_timer *lt = lua_touserdata(L, -1);
                mw_timer_stop(&lt->t);
                lt->deleted = 1;
                lua_pushnil(L);
                lua_rawseti(L, timers, d->id);
            }
            if (!d->persistent) {
                lua_pushnumber(L, d->interval);
                lua_rawseti(L, spent, d->id);
            }
            lua_pop(L, 2);
        } else if (live) {
            /* keeps its schedule, takes the new function and arguments */
            lua_getiuservalue(L, -2, 1);
            lua_setiuservalue(L, -2, 1);
            lua_getiuservalue(L, -2, 2);
            lua_setiuservalue(L, -2, 2);
            lua_pop(L, 2);
        } else {
            lua_pop(L, 1);
            start_timer(L, rt, d); /* pops d */
        }
    }
    lua_rawseti(L, LUA_REGISTRYINDEX, rt->spent_ref);
    lua_pop(L, 3);
}

/* Timer.del(id) during a reload, on an id one of its declarations returned:
 * the declaration is withdrawn (it will not start; the live timer it matched
 * stops at commit), so that a failed reload changes nothing. Pushes the
 * result and returns 1, or returns 0 when id is no declaration of it. */
static int del_declaration(lua_State *L, mw_rt *rt, lua_Integer id)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->tx_ref);
    lua_getfield(L, -1, "timers");
    lua_Integer ndecl = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= ndecl; i++) {
        lua_rawgeti(L, -1, i);
        l_timer *d = lua_touserdata(L, -1);
        lua_pop(L, 1);
        if (d->id != id) continue;
        lua_pop(L, 2);
        lua_pushboolean(L, !d->withdrawn); /* as on the first run, spent or not */
        d->withdrawn = 1;
        return 1;
    }
    lua_pop(L, 2);
    return 0;
}

/* Timer.del(id) during a reload, on a live timer that is no declaration of
 * it: deleted at commit (unless a declaration after this takes it), so that
 * a failed reload changes nothing. Pushes the result. */
static int del_at_commit(lua_State *L, mw_rt *rt, lua_Integer id)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->tx_ref);
    int tx = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->timers_ref);
    int live = lua_rawgeti(L, -1, id) == LUA_TUSERDATA;
    lua_pop(L, 2);
    int gone = lua_getfield(L, tx, "timer_delall") != LUA_TNIL;
    lua_pop(L, 1);
    if (lua_getfield(L, tx, "timer_dels") != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, tx, "timer_dels");
    }
    gone = gone || lua_rawgeti(L, -1, id) != LUA_TNIL;
    lua_pop(L, 1);
    if (live && !gone) {
        lua_pushboolean(L, 1);
        lua_rawseti(L, -2, id);
    }
    lua_pop(L, 2);
    lua_pushboolean(L, live && !gone);
    return 1;
}

/* Timer.delAll() during a reload: the declarations made so far in it are
 * withdrawn, and every live timer is deleted at commit, but for those a
 * declaration after this takes (they keep their schedule), so that a failed
 * reload changes nothing. */
static void del_all_at_commit(lua_State *L, mw_rt *rt)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->tx_ref);
    lua_getfield(L, -1, "timers");
    lua_Integer ndecl = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= ndecl; i++) {
        lua_rawgeti(L, -1, i);
        ((l_timer *)lua_touserdata(L, -1))->withdrawn = 1;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "timer_delall");
    lua_pop(L, 1);
}

static int l_del(lua_State *L)
{
    mw_rt *rt = lua_touserdata(L, lua_upvalueindex(1));
    lua_Integer id = luaL_checkinteger(L, 1);
    if (!rt->loop.ev) { lua_pushboolean(L, 0); return 1; }   /* shut down: every timer is gone */
    if (rt->reloading) return del_declaration(L, rt, id) ? 1 : del_at_commit(L, rt, id);
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->timers_ref);
    l_timer *lt = lua_rawgeti(L, -1, id) == LUA_TUSERDATA ? lua_touserdata(L, -1) : NULL;
    if (!lt) { lua_pushboolean(L, 0); return 1; }
    delete_timer(L, rt, lt, lua_gettop(L) - 1);
    lua_pushboolean(L, 1);
    return 1;
}

/* Stop lt and drop it from the live timers (the table at index timers). */
static void delete_timer(lua_State *L, mw_rt *rt, l_timer *lt, int timers)
{
    mw_timer_stop(&lt->t);
    lt->deleted = 1;
    mark_spent(L, rt, lt);
    lua_pushnil(L);
    lua_rawseti(L, timers, lt->id);
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
        mark_spent(L, rt, lt);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_newtable(L);
    lua_rawseti(L, LUA_REGISTRYINDEX, rt->timers_ref);
}

static int l_del_all(lua_State *L)
{
    mw_rt *rt = lua_touserdata(L, lua_upvalueindex(1));
    if (!rt->loop.ev) return 0;
    if (rt->reloading) del_all_at_commit(L, rt);
    else l_timer_del_all(rt);
    return 0;
}

void l_timer_register(lua_State *L, mw_rt *rt)
{
    if (!rt->spent_ref) {
        lua_newtable(L);
        rt->spent_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
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
