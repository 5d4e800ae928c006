/* l_rt: the runtime of one Lua state: the one door into Lua, error reports,
 * stop and run, and the moonwire.core module table.
 * Knows no syscalls and no frame bits. */
#include "bind.h"
#include "conn.h"
#include "loop.h"
#include <lualib.h>
#include <signal.h>
#include <stdlib.h>
#include "watch.h"
#include <stdio.h>
#include <string.h>

int mw_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    if (strstr(msg, "\nstack traceback:")) { lua_pushstring(L, msg); return 1; } /* rethrown */
    lua_getfield(L, LUA_REGISTRYINDEX, MW_RT_KEY);
    mw_rt *rt = lua_touserdata(L, -1);
    lua_pop(L, 1);
    /* a flood: the report only counts this one, no traceback to build */
    if (rt && rt->errlog && l_errlog_repeat(rt, rt->what, msg, strlen(msg))) {
        lua_pushstring(L, msg);
        return 1;
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

void mw_rt_report(mw_rt *rt, const char *what) { l_errlog_report(rt, what); }

/* ---- interruption: SIGINT/SIGTERM stop a runaway callback or chunk ---- */

/* A callback that returns within this time after the signal is not
 * interrupted: the signal just stops the loop gracefully once it returns. */
#define INTERRUPT_GRACE 0.5

/* Put the script's own hook back (or none); before clearing `armed`, which
 * the signal handler sets only after saving that hook. */
static void disarm(mw_rt *rt)
{
    lua_sethook(rt->L, rt->saved_hook, rt->saved_mask, rt->saved_count);
    rt->armed = 0;
}

static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    lua_getfield(L, LUA_REGISTRYINDEX, MW_RT_KEY);
    mw_rt *rt = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!rt || !rt->armed) { lua_sethook(L, NULL, 0, 0); return; }
    if (mw_monotonic() - rt->irq_at < INTERRUPT_GRACE) return;
    disarm(rt);
    luaL_where(L, 0); /* the line the runaway code was at, when it is Lua */
    lua_pushliteral(L, "interrupted");
    lua_concat(L, 2);
    lua_error(L);
}

/* In the real signal handler: async-signal-safe (clock_gettime and
 * lua_sethook are). Lua runs a callback, or the host's own chunk, or (as a
 * module under lua(1)) the host's code around a finished loop: a hook every
 * 1000 instructions raises "interrupted" in it once the grace time has
 * passed, as lua(1) does at once; the loop's watcher then runs the graceful
 * stop. The loop itself between callbacks is never interrupted: its watcher
 * comes soon. */
static void on_interrupt(void *ud)
{
    mw_rt *rt = ud;
    if (rt->armed) return;
    if (!(rt->depth > 0 || rt->in_main || (!rt->hosted && !rt->loop_running))) return;
    lua_State *L = rt->L;
    rt->saved_hook = lua_gethook(L);
    rt->saved_mask = lua_gethookmask(L);
    rt->saved_count = lua_gethookcount(L);
    rt->irq_at = mw_monotonic();
    rt->armed = 1;
    lua_sethook(L, interrupt_hook, LUA_MASKCOUNT, 1000);
}

void mw_rt_host_chunk(lua_State *L, int on)
{
    lua_getfield(L, LUA_REGISTRYINDEX, MW_RT_KEY);
    mw_rt *rt = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!rt) return;
    rt->in_main = on;
    if (!on && rt->armed) disarm(rt); /* the chunk ended before the hook came */
}

/* The door on thread L. rt->msgh is an index in the frame where the loop was
 * started (a C frame at the bottom of the main thread); it is valid only for
 * calls made from that frame, that is from the loop itself (depth 0). A call
 * made from inside a callback (Worker.stopAll() runs the onWorkerStop hooks,
 * core.call) runs in a nested frame and brings its own handler. */
static int door(mw_rt *rt, lua_State *L, int nargs, int nresults, const char *what)
{
    int st;
    const char *outer = rt->what;
    rt->what = what;
    rt->depth++;
    if (rt->msgh && rt->depth == 1 && L == rt->L) {
        st = lua_pcall(L, nargs, nresults, rt->msgh);
    } else {
        int base = lua_gettop(L) - nargs; /* index of the function */
        lua_pushcfunction(L, mw_traceback);
        lua_insert(L, base);
        st = lua_pcall(L, nargs, nresults, base);
        lua_remove(L, base);
    }
    rt->depth--;
    rt->what = outer;
    /* an interruption that came as the callback returned is not for the next one */
    if (rt->armed && rt->depth == 0 && !rt->in_main) disarm(rt);
    if (st == LUA_OK) return 0;
    l_errlog_report(rt, what);
    for (int i = 0; i < nresults; i++) lua_pushnil(L);
    return -1;
}

int mw_rt_call(mw_rt *rt, int nargs, int nresults, const char *what)
{
    return door(rt, rt->L, nargs, nresults, what);
}

mw_rt *mw_rt_get(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, MW_RT_KEY);
    mw_rt *rt = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!rt) luaL_error(L, "moonwire runtime not initialised");
    if (!rt->loop.ev) luaL_error(L, "moonwire has shut down (called from a finalizer at exit)");
    return rt;
}

static void stop_deadline(mw_timer *t, void *ud)
{
    (void)t;
    mw_rt *rt = ud;
    mw_loop_stop(&rt->loop);
}

static mw_timer stop_timer;

void mw_rt_stop(mw_rt *rt)
{
    if (rt->stopping) return;
    rt->stopping = 1;
    lua_State *L = rt->L;
    lua_getfield(L, LUA_REGISTRYINDEX, "moonwire.stophook");
    if (lua_isfunction(L, -1)) mw_rt_call(rt, 0, 0, "onWorkerStop");
    else lua_pop(L, 1);
    if (rt->watch) { mw_watch_free(rt->watch); rt->watch = NULL; }
    l_timer_del_all(rt);
    l_conn_stop_all(rt);
    /* Close handshakes get a bounded time; the loop ends earlier when all
     * connections are closed, since nothing else is active. */
    mw_timer_init(&stop_timer, &rt->loop, stop_deadline, rt, 0);
    mw_timer_start(&stop_timer, 3.0, 0);
}

static void on_signal(mw_loop *l, int signum, void *ud)
{
    (void)l;
    mw_rt *rt = ud;
    if (signum == SIGHUP) { mw_rt_schedule_reload(rt); return; }
    if (rt->stopping) { mw_loop_stop(&rt->loop); return; } /* second signal: now */
    mw_rt_stop(rt);
}

void mw_rt_run(mw_rt *rt)
{
    if (rt->loop_running) return;
    rt->loop_running = 1;
    mw_loop_watch_signals(&rt->loop, on_signal, on_interrupt, rt);
    /* One traceback handler for every callback of this run, below them all
     * on the main thread's stack: no shuffling of the stack per call. */
    lua_pushcfunction(rt->L, mw_traceback);
    rt->msgh = lua_gettop(rt->L);
    mw_loop_run(&rt->loop);
    if (!rt->stopping) {
        /* It ended by itself (nothing left active): the stop still runs,
         * so that onWorkerStop runs on every way out, once; what the hook
         * starts (a close) gets the stop deadline. */
        mw_rt_stop(rt);
        mw_loop_run(&rt->loop);
    }
    lua_settop(rt->L, rt->msgh - 1);
    rt->msgh = 0;
    rt->loop_running = 0;
    mw_timer_stop(&stop_timer);
    l_errlog_flush(rt);
}

static int rt_gc(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, MW_RT_KEY);
    mw_rt *rt = lua_touserdata(L, -1);
    lua_pop(L, 1);
    /* Only for the runtime itself (a script that calls this by hand may pass
     * anything), and only from lua_close(): the registry holds it, so a call
     * with a caller on the stack is by hand, perhaps from a callback of the
     * loop it would close. */
    if (!rt || rt != lua_touserdata(L, 1) || mw_gc_called_by_script(L)) return 0;
    /* finalizers that run after this one (at exit) may still call in:
     * Timer.add and connect() then return false, others raise */
    rt->stopping = 1;
    if (rt->watch) { mw_watch_free(rt->watch); rt->watch = NULL; }
    if (rt->loop.ev) l_errlog_free(rt);
    if (rt->loop.ev) mw_loop_close(&rt->loop);
    free(rt->script);
    rt->script = NULL;
    l_reload_forget_ended(rt);
    return 0;
}

/* ---- module functions ---- */

static int l_now(lua_State *L) { lua_pushnumber(L, mw_monotonic()); return 1; }

static int l_run(lua_State *L) { mw_rt_run(mw_rt_get(L)); return 0; }

static int l_stop(lua_State *L) { mw_rt_stop(mw_rt_get(L)); return 0; }

static int l_set_stop_hook(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "moonwire.stophook");
    return 0;
}

/* core.call(what, fn, ...): fn(...) through the door, for the Lua side's own
 * hooks (one worker's callback after another): true, or false once the error
 * was printed with its traceback as `error in <what>`. */
static int l_call(lua_State *L)
{
    mw_rt *rt = mw_rt_get(L);
    const char *what = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION); /* `what` stays anchored at index 1 */
    lua_pushboolean(L, door(rt, L, lua_gettop(L) - 2, 0, what) == 0);
    return 1;
}

static int l_hosted(lua_State *L) { lua_pushboolean(L, mw_rt_get(L)->hosted); return 1; }

int luaopen_moonwire_core(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, MW_RT_KEY);
    mw_rt *rt = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!rt) {
        rt = lua_newuserdatauv(L, sizeof *rt, 0);
        memset(rt, 0, sizeof *rt);
        if (mw_loop_init(&rt->loop) != 0) return luaL_error(L, "moonwire: cannot create the event loop");
        /* The main thread, never the caller's: a require from inside a
         * coroutine must not leave callbacks running on a thread that ends
         * (and is collected) when the coroutine does. */
        lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
        rt->L = lua_tothread(L, -1);
        lua_pop(L, 1);
        lua_getfield(L, LUA_REGISTRYINDEX, "moonwire.hosted");
        rt->hosted = lua_toboolean(L, -1);
        rt->declaring = rt->hosted; /* required from the main chunk, which declares */
        /* The host owns the process: catch SIGINT/SIGTERM/SIGHUP from now on,
         * so one that arrives while the script's top level runs is handled
         * when the loop starts instead of killing the process. */
        if (rt->hosted) mw_loop_watch_signals(&rt->loop, on_signal, on_interrupt, rt);
        rt->in_main = rt->hosted; /* the first require runs in a chunk of the host */
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushcfunction(L, rt_gc);
        lua_setfield(L, -2, "__gc");
        lua_setmetatable(L, -2);
        lua_setfield(L, LUA_REGISTRYINDEX, MW_RT_KEY);
        lua_newtable(L);
        rt->timers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    static const luaL_Reg fns[] = {
        {"now", l_now}, {"run", l_run}, {"stop", l_stop},
        {"setStopHook", l_set_stop_hook}, {"hosted", l_hosted}, {"call", l_call},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
    l_reload_register(L, rt);
    lua_pushstring(L, MW_VERSION);
    lua_setfield(L, -2, "version");
    static const struct { const char *name; int code; } errs[] = {
        {"CONNECT_FAIL", MW_E_CONNECT_FAIL}, {"SEND_FAIL", MW_E_SEND_FAIL},
        {"DNS_FAIL", MW_E_DNS_FAIL}, {"TLS_FAIL", MW_E_TLS_FAIL},
        {"HANDSHAKE_FAIL", MW_E_HANDSHAKE_FAIL}, {"PROTOCOL_FAIL", MW_E_PROTOCOL_FAIL},
        {"PACKAGE_TOO_LARGE", MW_E_PACKAGE_TOO_LARGE}, {"TIMEOUT", MW_E_TIMEOUT},
        {"READ_FAIL", MW_E_READ_FAIL},
    };
    lua_createtable(L, 0, (int)(sizeof errs / sizeof errs[0]));
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        lua_pushinteger(L, errs[i].code);
        lua_setfield(L, -2, errs[i].name);
    }
    lua_setfield(L, -2, "errors");
    l_conn_register(L, rt);   /* sets AsyncTcpConnection and connMethods */
    l_timer_register(L, rt);  /* sets Timer */
    return 1;
}
