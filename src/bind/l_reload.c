/* l_reload: hot reload as a transaction: the script runs again, its
 * connections and timers are matched to the live ones, and only if all of
 * that succeeds are live objects handed the new code; --watch and SIGHUP.
 * Knows no syscalls and no frame bits. */
#include "bind.h"
#include "conn.h"
#include "layers.h"
#include "tls.h"
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

static void conn_declared(lua_State *L, mw_rt *rt, int idx, l_conn *lc)
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

static void remember_ended(mw_rt *rt, const l_conn *lc)
{
    if (rt->stopping || !rt->loop.ev) return; /* at exit: nothing will reload */
    l_ended *e = calloc(1, sizeof *e);
    if (!e) return; /* then a reload connects it again: the lesser harm */
    e->seq = lc->seq;
    e->scheme = mw_conn_next_url(lc->c)->scheme;
    e->url = strdup(mw_conn_url(lc->c));
    e->name = lc->name ? strdup(lc->name) : NULL;
    if (!e->url || (lc->name && !e->name)) { free(e->url); free(e->name); free(e); return; }
    e->next = rt->ended;
    rt->ended = e;
}

static void forget_ended(mw_rt *rt)
{
    while (rt->ended) {
        l_ended *e = rt->ended;
        rt->ended = e->next;
        free(e->name);
        free(e->url);
        free(e);
    }
}

/* What a reload's declarations are matched to: a live declared connection,
 * in any state (open, closing, reconnecting, closed), or the record of one
 * the script ended whose userdata was collected. */
typedef struct cand {
    l_conn *lc;             /* or NULL for a record */
    const l_ended *rec;
    unsigned long seq;
    int used;
} cand;

/* By name when either has one (and then the same protocol layer: a
 * connection cannot change from ws to tcp under a socket), else by URL. */
static int cand_matches(const cand *k, const l_conn *d)
{
    const char *name = k->lc ? k->lc->name : k->rec->name;
    const char *url = k->lc ? mw_conn_url(k->lc->c) : k->rec->url;
    int scheme = k->lc ? mw_conn_next_url(k->lc->c)->scheme : k->rec->scheme;
    if (name || d->name)
        return name && d->name && strcmp(name, d->name) == 0 &&
               mw_layers_same_proto(scheme, mw_conn_current_scheme(d->c));
    return strcmp(url, mw_conn_current_url(d->c)) == 0;
}

static int by_seq(const void *x, const void *y)
{
    const cand *a = x, *b = y;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* d, the declaration at index di, takes over match's C connection, its
 * events and its anchor; the unconnected declaration is dropped. The old
 * userdata (on the stack top) stays an alias of the same connection, for
 * old code that still holds it (a heartbeat timer made in onConnect): its
 * sends go out on the live socket instead of piling up in a connection that
 * never connects. It keeps the new one alive (the owner of the C
 * connection) from its user-value table. Pops the old userdata. */
static void take_over(lua_State *L, int di, l_conn *d, l_conn *match)
{
    mw_conn *running = match->c, *fresh = d->c;
    mw_conn_copy_options(running, fresh);
    mw_conn_take_url(running, fresh); /* the same protocol layer: cand_matches */
    /* TLS options, for the next handshake: those connect() on the
     * declaration read into its own connection. Not read again from the
     * script's tables here, outside any protected call, where a metamethod
     * (an __index on context.ssl) could raise. */
    if (d->want_connect) mw_tls_copy_opts(running, fresh);
    d->c = running;
    mw_conn_set_ud(running, d);
    d->script_ended = match->script_ended;
    match->declared = 0;
    lua_getiuservalue(L, -1, 1);
    lua_pushlightuserdata(L, (void *)&successor_key);
    lua_pushvalue(L, di);
    lua_rawset(L, -3);
    lua_pop(L, 2);
    if (match->ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, match->ref);
        match->ref = LUA_NOREF;
    }
    match->alias = 1;
    mw_conn_free(fresh);
}

/* Hand each live declared connection to the declaration that matches it;
 * start the unmatched declarations; close the live ones no longer declared.
 * A matched one that is closed and not reconnecting is connected again
 * when the declaration connects, unless the script itself ended it. */
static void commit_conns(mw_rt *rt, int conns)
{
    lua_State *L = rt->L;
    /* No finalizer may run meanwhile: it would unlink a connection from
     * rt->conns, or turn one into a record, under the matching. */
    int gc_was = lua_gc(L, LUA_GCISRUNNING);
    if (gc_was) lua_gc(L, LUA_GCSTOP);
    size_t ncand = 0;
    for (l_conn *lc = rt->conns; lc; lc = lc->next)
        if (lc->declared && !lc->in_tx) ncand++;
    for (l_ended *e = rt->ended; e; e = e->next) ncand++;
    cand *cands = calloc(ncand ? ncand : 1, sizeof *cands);
    lua_newtable(L); /* lc -> its userdata, held for the commit */
    int hold = lua_gettop(L);
    size_t n = 0;
    for (l_conn *lc = rt->conns; lc && cands; lc = lc->next) {
        if (!lc->declared || lc->in_tx) continue;
        if (!l_conn_push(L, lc)) {
            /* unreachable, its finalizer not run yet: as if it had run */
            if (lc->script_ended && !lc->alias) remember_ended(rt, lc);
            lc->declared = 0;
            continue;
        }
        lua_rawsetp(L, hold, lc);
        cands[n++] = (cand){.lc = lc, .seq = lc->seq};
    }
    for (l_ended *e = rt->ended; e && cands && n < ncand; e = e->next)
        cands[n++] = (cand){.rec = e, .seq = e->seq};
    if (cands) qsort(cands, n, sizeof *cands, by_seq);

    lua_Integer ndecl = (lua_Integer)lua_rawlen(L, conns);
    for (lua_Integer i = 1; i <= ndecl; i++) {
        lua_rawgeti(L, conns, i);
        int di = lua_gettop(L);
        l_conn *d = lua_touserdata(L, di);
        d->in_tx = 0;
        cand *m = NULL;
        for (size_t j = 0; j < n && !m; j++)
            if (!cands[j].used && cand_matches(&cands[j], d)) { m = &cands[j]; m->used = 1; }
        if (m && m->rec) {
            /* ended by the script and collected: the declaration holds the
             * place now, ended too */
            d->script_ended = 1;
            mw_conn_mark_closed(d->c);
        } else if (m) {
            lua_rawgetp(L, hold, m->lc);
            take_over(L, di, d, m->lc);
            if (d->want_connect && !d->script_ended && !mw_conn_active(d->c))
                mw_conn_connect(d->c); /* failed, or closed by the peer: revived */
            l_conn_anchor(L, di, d);
        } else if (d->want_connect) {
            mw_conn_connect(d->c);
            l_conn_anchor(L, di, d);
        }
        d->want_connect = 0;
        lua_pop(L, 1);
    }
    for (size_t j = 0; j < n; j++) {
        l_conn *lc = cands[j].lc;
        if (cands[j].used || !lc) continue;
        lc->declared = 0;
        mw_conn_going_away(lc->c);
        l_conn_release(lc);
    }
    /* the declarations that matched records hold them now; the others are
     * no longer declared: forgotten, as a spent one-shot timer's record */
    if (cands) forget_ended(rt);
    free(cands);
    lua_pop(L, 1); /* hold */
    if (gc_was) lua_gc(L, LUA_GCRESTART);
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
        mw_host_report(rt->host, rt->L, "reload");
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
    mw_host_errors_reset(rt->host);
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

/* The runtime, an upvalue of these functions (not mw_rt_get: the runtime's
 * file calls into this one, never the other way), while it lives. */
static mw_rt *live_rt(lua_State *L)
{
    mw_rt *rt = lua_touserdata(L, lua_upvalueindex(1));
    if (!rt->loop.ev) luaL_error(L, "moonwire has shut down (called from a finalizer at exit)");
    return rt;
}

static int l_reload(lua_State *L)
{
    mw_rt *rt = live_rt(L);
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
    mw_rt *rt = live_rt(L);
    lua_pushboolean(L, rt->declaring);
    rt->declaring = lua_toboolean(L, 1);
    return 1;
}

static int l_script_path(lua_State *L)
{
    lua_pushstring(L, live_rt(L)->script);
    return 1;
}

static int l_reloading(lua_State *L)
{
    lua_pushboolean(L, live_rt(L)->reloading);
    return 1;
}

void l_reload_register(lua_State *L, mw_rt *rt)
{
    /* what connections and the runtime tell reload (hooks: they are below it) */
    rt->conn_declared = conn_declared;
    rt->conn_ended = remember_ended;
    rt->at_close = forget_ended;
    static const luaL_Reg fns[] = {
        {"reload", l_reload}, {"setReloadHook", l_set_reload_hook},
        {"setDeclaring", l_set_declaring}, {"scriptPath", l_script_path},
        {"reloading", l_reloading}, {NULL, NULL},
    };
    lua_pushlightuserdata(L, rt);
    luaL_setfuncs(L, fns, 1);
}
