/* l_rt: the runtime of one Lua state: stop and run, signals, and the
 * moonwire.core module table (the door and the reporter are the host's).
 * Knows no syscalls and no frame bits. */
#include "bind.h"
#include "conn.h"
#include "err.h"
#include "host.h"
#include "loop.h"
#include <lualib.h>
#include <signal.h>
#include <stdlib.h>
#include "watch.h"
#include "workers.h"
#include <stdio.h>
#include <string.h>

static mw_rt *rt_of(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, MW_RT_KEY);
    mw_rt *rt = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return rt;
}

/* From the real SIGINT/SIGTERM handler: the host interrupts running Lua code. */
static void on_interrupt(void *ud)
{
    mw_rt *rt = ud;
    mw_host_interrupt(rt->host);
}

mw_rt *mw_rt_get(lua_State *L)
{
    mw_rt *rt = rt_of(L);
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
    l_stdin_close(rt);
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
    /* -i: ^C at the prompt (or after interrupting the chunk it ran) clears
     * the line; the program goes on */
    if (signum == SIGINT && rt->tty && rt->tty_sigint && !rt->stopping) { l_tty_interrupt(rt); return; }
    if (signum == SIGINT && rt->sigint_ref && !rt->stopping) { l_console_sigint(rt); return; }
    if (rt->stopping) { mw_loop_stop(&rt->loop); return; } /* second signal: now */
    mw_rt_stop(rt);
}

void mw_rt_run(mw_rt *rt)
{
    if (mw_host_in_loop(rt->host)) return;
    mw_loop_watch_signals(&rt->loop, on_signal, on_interrupt, rt);
    /* One traceback handler for every callback of this run, below them all
     * on the main thread's stack: no shuffling of the stack per call. */
    mw_host_loop_begin(rt->host);
    mw_loop_run(&rt->loop);
    if (!rt->stopping) {
        /* It ended by itself (nothing left active): the stop still runs,
         * so that onWorkerStop runs on every way out, once; what the hook
         * starts (a close) gets the stop deadline. */
        mw_rt_stop(rt);
        mw_loop_run(&rt->loop);
    }
    mw_timer_stop(&stop_timer);
    mw_host_loop_end(rt->host);
}

/* ---- the moonwire binary's main script ---- */

void mw_rt_script_ran(lua_State *L, const char *script, char **args, int n, int watch)
{
    mw_rt *rt = rt_of(L);
    if (!rt) {
        if (watch) fprintf(stderr, "moonwire: --watch: the script does not use moonwire; nothing to reload\n");
        return;
    }
    rt->declaring = 0;
    for (int i = 0; i < n; i++) lua_pushstring(L, args[i]);
    mw_rt_set_script(rt, script, n);
    lua_pop(L, n);
    if (watch) mw_rt_watch(rt);
}

/* The number of worker processes the script asks for (the largest
 * worker.count, from worker.lua's hook): 1 when none; -1 once an error
 * (a bad count) was reported. */
static int worker_count(mw_rt *rt)
{
    lua_State *L = rt->L;
    lua_getfield(L, LUA_REGISTRYINDEX, "moonwire.counthook");
    if (!lua_isfunction(L, -1)) { lua_pop(L, 1); return 1; }
    if (mw_rt_call(rt, 0, 1, "worker.count") != 0) { lua_pop(L, 1); return -1; }
    int n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    return n < 1 ? 1 : n;
}

/* A connection the top level opened would be shared by every worker (one
 * socket, several processes writing to it): refused, with a message. */
static int shared_conns(mw_rt *rt, int n)
{
    for (l_conn *lc = rt->conns; lc; lc = lc->next) {
        int st = lc->c ? mw_conn_status(lc->c) : MW_ST_CLOSED;
        if (st == MW_ST_INITIAL || st == MW_ST_CLOSED) continue;
        fprintf(stderr, "moonwire: worker.count = %d: the script's top level connected %s, which "
                "%d processes would share; connect in onWorkerStart (each worker its own)\n",
                n, mw_conn_url(lc->c), n);
        return 1;
    }
    return 0;
}

/* worker.count > 1: fork the workers here, after the script has loaded and
 * before the loop runs. The parent runs no Lua from now on: it supervises,
 * and its own loop never runs (what the top level scheduled, onWorkerStart
 * among it, runs in each worker). */
static int fork_workers(mw_rt *rt, int n)
{
    if (shared_conns(rt, n)) return 1;
    /* --watch: each worker watches (a watch of its own: one inotify
     * descriptor read by several processes would lose events) */
    int watching = rt->watch != NULL;
    if (rt->watch) { mw_watch_free(rt->watch); rt->watch = NULL; }
    int status = 0;
    l_metrics_workers_begin(rt);   /* --metrics: the parent writes the sum */
    int id = mw_workers_run(n, &rt->loop, &status);
    if (id < 0) return status;
    rt->worker_id = id;
    if (watching) mw_rt_watch(rt);
    return -1;
}

int mw_rt_run_hosted(lua_State *L)
{
    mw_rt *rt = rt_of(L);
    if (!rt) return 0;
    int n = rt->tty ? 1 : worker_count(rt); /* -c, -i: one process */
    if (n < 0) return 1;
    if (n > 1) {
        int st = fork_workers(rt, n);
        if (st >= 0) return st; /* the parent, done */
    }
    l_metrics_run_begin(rt);
    mw_rt_run(rt);
    l_metrics_run_end(rt);
    return rt->exit_code;
}

/* core.setExitCode(n): the program's exit status once the loop ends (the
 * -c client: 1 after a failed connect) */
static int l_set_exit_code(lua_State *L)
{
    mw_rt *rt = mw_rt_get(L);
    rt->exit_code = (int)luaL_checkinteger(L, 1) & 0xff;
    return 0;
}

static int rt_gc(lua_State *L)
{
    mw_rt *rt = rt_of(L);
    /* Only for the runtime itself (a script that calls this by hand may pass
     * anything), and only from lua_close(): the registry holds it, so a call
     * with a caller on the stack is by hand, perhaps from a callback of the
     * loop it would close. */
    if (!rt || rt != lua_touserdata(L, 1) || mw_gc_called_by_script(L)) return 0;
    /* finalizers that run after this one (at exit) may still call in:
     * Timer.add and connect() then return false, others raise */
    rt->stopping = 1;
    if (rt->watch) { mw_watch_free(rt->watch); rt->watch = NULL; }
    l_stdin_close(rt);
    if (rt->loop.ev) mw_host_set_loop(rt->host, NULL); /* its timer goes with the loop */
    if (rt->loop.ev) mw_loop_close(&rt->loop);
    free(rt->script);
    rt->script = NULL;
    if (rt->at_close) rt->at_close(rt);
    l_metrics_free(rt);
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
    lua_pushboolean(L, mw_host_call(rt->host, L, lua_gettop(L) - 2, 0, what) == 0);
    return 1;
}

/* core.report(what, err): an error as the door reports it (a coroutine's,
 * with its own traceback in err). */
static int l_report(lua_State *L)
{
    mw_rt *rt = mw_rt_get(L);
    luaL_checkstring(L, 1);
    lua_settop(L, 2);
    mw_host_report(rt->host, L, lua_tostring(L, 1));
    return 0;
}

static int l_set_count_hook(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "moonwire.counthook");
    return 0;
}

static int l_worker_id(lua_State *L) { lua_pushinteger(L, mw_rt_get(L)->worker_id); return 1; }

/* core.workerRestarted(): this worker is a restart (its copy of the script is
 * the parent's, as loaded at start: worker.lua reloads it at once) */
static int l_worker_restarted(lua_State *L) { mw_rt_get(L); lua_pushboolean(L, mw_workers_restarts() > 0); return 1; }

static int l_hosted(lua_State *L) { lua_pushboolean(L, mw_host_hosted(mw_rt_get(L)->host)); return 1; }

int luaopen_moonwire_core(lua_State *L)
{
    mw_rt *rt = rt_of(L);
    if (!rt) {
        mw_host *host = mw_host_get(L);
        rt = lua_newuserdatauv(L, sizeof *rt, 0);
        memset(rt, 0, sizeof *rt);
        if (mw_loop_init(&rt->loop) != 0) return luaL_error(L, "moonwire: cannot create the event loop");
        rt->host = host;
        rt->L = mw_host_lua(host); /* the main thread, never the caller's */
        rt->declaring = mw_host_hosted(host); /* required from the main chunk, which declares */
        mw_host_set_loop(host, &rt->loop);
        /* The host owns the process: catch SIGINT/SIGTERM/SIGHUP from now on,
         * so one that arrives while the script's top level runs is handled
         * when the loop starts instead of killing the process. */
        if (mw_host_hosted(host)) mw_loop_watch_signals(&rt->loop, on_signal, on_interrupt, rt);
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
        {"setStopHook", l_set_stop_hook}, {"hosted", l_hosted}, {"call", l_call}, {"report", l_report}, {"setExitCode", l_set_exit_code},
        {"setCountHook", l_set_count_hook}, {"workerId", l_worker_id},
        {"workerRestarted", l_worker_restarted},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
    l_reload_register(L, rt);
    lua_pushstring(L, MW_VERSION);
    lua_setfield(L, -2, "version");
    lua_newtable(L); /* mw.errors: the kinds of err.h under their names */
    for (size_t i = 0; i < mw_err_count; i++) {
        if (mw_err_class(mw_err_table[i].code) != MW_ERRC_KIND) continue;
        lua_pushinteger(L, mw_err_table[i].code);
        lua_setfield(L, -2, mw_err_table[i].name);
    }
    lua_setfield(L, -2, "errors");
    l_conn_register(L, rt);   /* sets AsyncTcpConnection and connMethods */
    l_timer_register(L, rt);  /* sets Timer */
    l_stdin_register(L, rt);  /* core.stdinOpen, stdinPause, stdinClose */
    l_console_register(L, rt); /* core.console*, core.connections */
    l_metrics_register(L, rt); /* core.stats, histogram, metricsText, metricsBlob, metricsRender */
    return 1;
}
