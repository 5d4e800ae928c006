/* l_reload: hot reload as a transaction: the script runs again, its
 * connections and timers are matched to the live ones, and only if all of
 * that succeeds are live objects handed the new code; --watch and SIGHUP.
 * Knows no syscalls and no frame bits. */
#include "bind.h"
#include "conn.h"
#include "watch.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RELOAD_HOOK "moonwire.reloadhook"

void mw_rt_set_script(mw_rt *rt, const char *path, int nargs)
{
    lua_State *L = rt->L;
    free(rt->script);
    rt->script = strdup(path);
    lua_createtable(L, nargs, 0);
    for (int i = 1; i <= nargs; i++) {
        lua_pushvalue(L, -1 - nargs);
        lua_rawseti(L, -2, i);
    }
    if (rt->args_ref) luaL_unref(L, LUA_REGISTRYINDEX, rt->args_ref);
    rt->args_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

/* Calls the Lua side's hook for a phase; returns its result count (0 or 1)
 * or -1 when it raised (reported). */
static int hook(mw_rt *rt, const char *phase, int nresults)
{
    lua_State *L = rt->L;
    if (lua_getfield(L, LUA_REGISTRYINDEX, RELOAD_HOOK) != LUA_TFUNCTION) {
        lua_pop(L, 1);
        for (int i = 0; i < nresults; i++) lua_pushnil(L);
        return 0;
    }
    lua_pushstring(L, phase);
    /* "start" runs the new onWorkerStart, "done" the onWorkerReload callbacks */
    return mw_rt_call(rt, 1, nresults, strcmp(phase, "done") == 0 ? "onWorkerReload" : "reload");
}

void l_reload_conn_declared(lua_State *L, mw_rt *rt, int idx, l_conn *lc)
{
    lc->declared = 1;
    if (!rt->reloading) return;
    lc->in_tx = 1;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->tx_ref);
    lua_getfield(L, -1, "conns");
    lua_pushvalue(L, idx);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 2);
}

static const char successor_key = 0; /* old userdata's user values: [&successor_key] = new one */

static int same_key(const l_conn *a, const l_conn *b)
{
    if (a->name || b->name) return a->name && b->name && strcmp(a->name, b->name) == 0;
    return strcmp(a->c->url_str, b->c->url_str) == 0;
}

static int by_seq(const void *x, const void *y)
{
    const l_conn *a = *(l_conn *const *)x, *b = *(l_conn *const *)y;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Hand each live declared connection to the declaration that matches it;
 * start the unmatched declarations; close the live ones no longer declared. */
static void commit_conns(mw_rt *rt, int conns)
{
    lua_State *L = rt->L;
    int nlive = 0;
    for (l_conn *lc = rt->conns; lc; lc = lc->next)
        if (lc->declared && !lc->in_tx && mw_conn_active(lc->c)) nlive++;
    l_conn **live = calloc((size_t)(nlive ? nlive : 1), sizeof *live);
    int n = 0;
    for (l_conn *lc = rt->conns; lc && live; lc = lc->next)
        if (lc->declared && !lc->in_tx && mw_conn_active(lc->c)) live[n++] = lc;
    if (live) qsort(live, (size_t)n, sizeof *live, by_seq);

    lua_Integer ndecl = (lua_Integer)lua_rawlen(L, conns);
    for (lua_Integer i = 1; i <= ndecl; i++) {
        lua_rawgeti(L, conns, i);
        l_conn *d = lua_touserdata(L, -1);
        d->in_tx = 0;
        l_conn *match = NULL;
        for (int j = 0; j < n && !match; j++)
            if (live[j] && same_key(live[j], d)) { match = live[j]; live[j] = NULL; }
        if (match) {
            /* The new userdata takes over the live C connection, its events
             * and the anchor; the unconnected declaration is dropped. The old
             * userdata stays an alias of the same connection, for old code
             * that still holds it (a heartbeat timer made in onConnect): its
             * sends go out on the live socket instead of piling up in a
             * connection that never connects. It keeps the new one alive
             * (the owner of the C connection) from its user-value table. */
            mw_conn *running = match->c, *fresh = d->c;
            mw_conn_copy_options(running, fresh);
            /* TLS options, for the next handshake; connect() on the
             * declaration already validated them (so this cannot raise) */
            if (d->want_connect) l_tls_apply(L, lua_gettop(L), running);
            d->c = running;
            running->ud = d;
            match->declared = 0;
            if (match->ref != LUA_NOREF) { /* always so: active connections are anchored */
                lua_rawgeti(L, LUA_REGISTRYINDEX, match->ref);
                lua_getiuservalue(L, -1, 1);
                lua_pushlightuserdata(L, (void *)&successor_key);
                lua_pushvalue(L, -4); /* d */
                lua_rawset(L, -3);
                lua_pop(L, 2);
                luaL_unref(L, LUA_REGISTRYINDEX, match->ref);
                match->ref = LUA_NOREF;
                match->alias = 1;
                mw_conn_free(fresh);
            } else {
                /* cannot link it to its successor: it keeps the unconnected declaration */
                match->c = fresh;
                fresh->ud = match;
            }
            l_conn_anchor(L, lua_gettop(L), d);
        } else if (d->want_connect) {
            mw_conn_connect(d->c);
            l_conn_anchor(L, lua_gettop(L), d);
        }
        d->want_connect = 0;
        lua_pop(L, 1);
    }
    for (int j = 0; j < n; j++) {
        l_conn *lc = live[j];
        if (!lc) continue;
        lc->declared = 0;
        mw_conn_cancel_reconnect(lc->c);
        if (lc->c->status == MW_ST_ESTABLISHED) mw_conn_close(lc->c, 1001, "going away", 10);
        else if (lc->c->status == MW_ST_CONNECTING) mw_conn_destroy(lc->c);
        l_conn_release(lc);
    }
    free(live);
}

/* The declarations are handed over or dropped: let go of the ones that were
 * not (a spent one-shot's function, an unconnected declaration). */
static void release_tx(mw_rt *rt)
{
    luaL_unref(rt->L, LUA_REGISTRYINDEX, rt->tx_ref);
    rt->tx_ref = 0;
}

static void discard_tx(mw_rt *rt)
{
    lua_State *L = rt->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->tx_ref);
    lua_getfield(L, -1, "conns");
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        l_conn *d = lua_touserdata(L, -1);
        d->in_tx = 0;
        d->declared = 0;
        d->want_connect = 0;
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
}

int mw_rt_reload(mw_rt *rt)
{
    lua_State *L = rt->L;
    if (rt->reloading || rt->stopping || !rt->script) return -1;
    int top = lua_gettop(L);
    if (hook(rt, "begin", 0) != 0) goto fail_early;
    rt->reloading = 1;
    rt->declaring = 1;
    lua_createtable(L, 0, 2);
    lua_newtable(L);
    lua_setfield(L, -2, "conns");
    lua_newtable(L);
    lua_setfield(L, -2, "timers");
    if (rt->tx_ref) luaL_unref(L, LUA_REGISTRYINDEX, rt->tx_ref);
    rt->tx_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    if (luaL_loadfile(L, rt->script) != LUA_OK) {
        mw_rt_report(rt, "reload");
        goto fail;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->args_ref);
    int nargs = (int)lua_rawlen(L, -1);
    luaL_checkstack(L, nargs, "too many arguments");
    for (int i = 1; i <= nargs; i++) lua_rawgeti(L, -1 - (i - 1), i);
    lua_remove(L, -1 - nargs);
    if (mw_rt_call(rt, nargs, 0, "reload") != 0) goto fail;
    if (hook(rt, "start", 0) != 0) goto fail;

    /* Everything ran: commit. */
    rt->declaring = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->tx_ref);
    lua_getfield(L, -1, "conns");
    commit_conns(rt, lua_gettop(L));
    lua_pop(L, 1);
    lua_getfield(L, -1, "timers");
    l_timer_commit(L, rt, lua_gettop(L));
    lua_pop(L, 2);
    release_tx(rt);
    rt->reloading = 0;
    hook(rt, "commit", 0);
    fprintf(stderr, "moonwire: reloaded %s\n", rt->script);
    fflush(stderr);
    hook(rt, "done", 0);
    if (rt->watch) mw_rt_watch(rt);
    lua_settop(L, top);
    return 0;

fail:
    discard_tx(rt);
    release_tx(rt);
    rt->declaring = 0;
    rt->reloading = 0;
    hook(rt, "abort", 0);
fail_early:
    fprintf(stderr, "moonwire: reload of %s failed; the running version stays\n", rt->script);
    fflush(stderr);
    if (rt->watch) mw_rt_watch(rt); /* keep watching what the old version loaded, and the script */
    lua_settop(L, top);
    return -1;
}

static void reload_task(mw_task *t)
{
    mw_rt *rt = (mw_rt *)((char *)t - offsetof(mw_rt, reload_task));
    mw_rt_reload(rt);
}

void mw_rt_schedule_reload(mw_rt *rt)
{
    rt->reload_task.run = reload_task;
    mw_loop_schedule(&rt->loop, &rt->reload_task);
}

static void watch_cb(void *ud) { mw_rt_schedule_reload(ud); }

int mw_rt_watch(mw_rt *rt)
{
    lua_State *L = rt->L;
    char err[256];
    if (!rt->watch) {
        rt->watch = mw_watch_new(&rt->loop, watch_cb, rt, err, sizeof err);
        if (!rt->watch) { fprintf(stderr, "moonwire: --watch: %s\n", err); return -1; }
    }
    int top = lua_gettop(L);
    hook(rt, "files", 1);
    int nfiles = lua_istable(L, -1) ? (int)lua_rawlen(L, -1) : 0;
    /* the path strings stay on the stack (anchored) while they are used */
    if (!lua_checkstack(L, nfiles + 1)) nfiles = 0;
    const char **paths = calloc((size_t)nfiles + 1, sizeof *paths);
    if (!paths) { lua_settop(L, top); return -1; }
    int n = 0;
    paths[n++] = rt->script;
    for (int i = 1; i <= nfiles; i++) {
        lua_rawgeti(L, -1 - (i - 1), i);
        if (lua_isstring(L, -1)) paths[n++] = lua_tostring(L, -1);
    }
    int r = mw_watch_set(rt->watch, paths, n, err, sizeof err);
    if (r != 0) fprintf(stderr, "moonwire: --watch: %s\n", err);
    free(paths);
    lua_settop(L, top);
    return r;
}

static int l_reload(lua_State *L)
{
    mw_rt *rt = mw_rt_get(L);
    if (!rt->script) return luaL_error(L, "mw.reload: no script to reload (moonwire runs a chunk)");
    mw_rt_schedule_reload(rt);
    return 0;
}

static int l_set_reload_hook(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, RELOAD_HOOK);
    return 0;
}

/* core.setDeclaring(on): returns the previous setting, to put it back. */
static int l_set_declaring(lua_State *L)
{
    mw_rt *rt = mw_rt_get(L);
    lua_pushboolean(L, rt->declaring);
    rt->declaring = lua_toboolean(L, 1);
    return 1;
}

static int l_script_path(lua_State *L)
{
    lua_pushstring(L, mw_rt_get(L)->script);
    return 1;
}

static int l_reloading(lua_State *L)
{
    lua_pushboolean(L, mw_rt_get(L)->reloading);
    return 1;
}

void l_reload_register(lua_State *L, mw_rt *rt)
{
    (void)rt;
    static const luaL_Reg fns[] = {
        {"reload", l_reload}, {"setReloadHook", l_set_reload_hook},
        {"setDeclaring", l_set_declaring}, {"scriptPath", l_script_path},
        {"reloading", l_reloading}, {NULL, NULL},
    };
    luaL_setfuncs(L, fns, 0);
}
