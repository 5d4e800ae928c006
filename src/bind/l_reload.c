/* l_reload: hot reload as a transaction: the script runs again, its
 * connections and timers are matched to the live ones, and only if all of
 * that succeeds are live objects handed the new code; --watch and SIGHUP.
 * Knows no syscalls and no frame bits. */
#include "bind.h"
#include "conn.h"
#include "layers.h"
#include "stage_proxy.h"
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

/* Append the userdata at idx to this reload's declarations. */
static void tx_add(lua_State *L, mw_rt *rt, int idx)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->tx_ref);
    lua_getfield(L, -1, "conns");
    lua_pushvalue(L, idx);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
    lua_pop(L, 2);
}

static void conn_declared(lua_State *L, mw_rt *rt, int idx, l_conn *lc, int ended)
{
    lc->decl.declared = 1;
    if (!rt->reloading) return;
    lc->decl.in_tx = 1;
    lc->decl.from_record = ended;
    tx_add(L, rt, idx);
}

static void remember_ended(mw_rt *rt, const l_conn *lc)
{
    if (rt->stopping || !rt->loop.ev) return; /* at exit: nothing will reload */
    l_ended *e = calloc(1, sizeof *e);
    if (!e) return; /* then a reload connects it again: the lesser harm */
    e->seq = lc->decl.seq;
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

/* Whether a live connection or record (name, URL, scheme of its next
 * connect) matches a declaration (d: its own C connection; dname): by name
 * when either has one (and then the same protocol layer: a connection cannot
 * change from ws to tcp under a socket), else by URL. */
static int matches(const char *name, const char *url, int scheme, const mw_conn *d, const char *dname)
{
    if (name || dname)
        return name && dname && strcmp(name, dname) == 0 &&
               mw_layers_same_proto(scheme, mw_conn_current_scheme(d));
    return strcmp(url, mw_conn_current_url(d)) == 0;
}

/* A live declared connection a declaration can take: not taken yet. */
static int candidate(const l_conn *lc) { return lc->decl.declared && !lc->decl.in_tx; }

/* A declaration of the reload under way is matched, in the order the
 * script makes them, to the oldest (by creation) live declared connection
 * (in any state: open, closing, reconnecting, closed) or record of one the
 * script ended whose userdata was collected, that no earlier declaration
 * took. A live one is staged: its userdata is returned as the declaration,
 * with the declaration's own C connection and field table until the commit
 * hands their options and fields to the live ones. */
static l_conn *conn_match(lua_State *L, mw_rt *rt, const char *url, const char *name, int *ended)
{
    *ended = 0;
    if (!rt->reloading) return NULL;
    lua_newtable(L); /* the staged field table, made before the C connection */
    int fields = lua_gettop(L);
    mw_conn *d = l_conn_new_c(L, rt, NULL, url);
    /* No finalizer may run meanwhile: it would unlink a connection from
     * rt->conns, or turn one into a record, under the walk. */
    int gc_was = lua_gc(L, LUA_GCISRUNNING);
    if (gc_was) lua_gc(L, LUA_GCSTOP);
    l_conn *best = NULL;
    l_ended *rec = NULL;
    for (l_conn *lc = rt->conns; lc; lc = lc->next) {
        if (!candidate(lc)) continue;
        if (!l_conn_push(L, lc)) {
            /* unreachable, its finalizer not run yet: as if it had run */
            if (lc->decl.script_ended) remember_ended(rt, lc);
            lc->decl.declared = 0;
            continue;
        }
        lua_pop(L, 1);
        if ((!best || lc->decl.seq < best->decl.seq) &&
            matches(lc->name, mw_conn_url(lc->c), mw_conn_next_url(lc->c)->scheme, d, name))
            best = lc;
    }
    for (l_ended *e = rt->ended; e; e = e->next)
        if (!e->claimed && (!rec || e->seq < rec->seq) && matches(e->name, e->url, e->scheme, d, name))
            rec = e;
    if (rec && best && best->decl.seq < rec->seq) rec = NULL;
    if (gc_was) lua_gc(L, LUA_GCRESTART);
    if (rec) {
        /* ended by the script and collected: the declaration holds the
         * place now, ended too */
        rec->claimed = 1;
        *ended = 1;
        best = NULL;
    }
    if (!best) {
        mw_conn_free(d);
        lua_settop(L, fields - 1);
        return NULL;
    }
    l_conn_push(L, best);
    int ud = lua_gettop(L);
    lua_getiuservalue(L, ud, 1);
    best->decl.live_fields = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, fields);
    lua_setiuservalue(L, ud, 1);
    mw_conn_set_ud(d, best);
    best->decl.live_c = best->c;
    best->c = d;
    best->decl.in_tx = 1;
    best->decl.matched = 1;
    tx_add(L, rt, ud);
    lua_remove(L, fields);
    return best;
}

/* End the staging of lc (a matched declaration): the userdata's C
 * connection and fields are the live ones again; with commit, after taking
 * the staged options (TLS ones too when the declaration connects: those its
 * connect() read), URL and fields. */
static void unstage(lua_State *L, int ud, l_conn *lc, int commit)
{
    mw_conn *live = lc->decl.live_c, *staged = lc->c;
    lua_rawgeti(L, LUA_REGISTRYINDEX, lc->decl.live_fields);
    if (commit) {
        mw_conn_copy_options(live, staged);
        mw_conn_take_url(live, staged); /* the same protocol layer: matches() */
        if (lc->decl.want_connect) { mw_tls_copy_opts(live, staged); mw_proxy_copy_opts(live, staged); }
        /* the new callbacks and fields, assigned into the live table */
        int t = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, t)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushnil(L);
            lua_rawset(L, t);
        }
        lua_getiuservalue(L, ud, 1);
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, t);
        }
        lua_pop(L, 1);
    }
    lua_setiuservalue(L, ud, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, lc->decl.live_fields);
    lc->decl.live_fields = LUA_NOREF;
    lc->c = live;
    lc->decl.live_c = NULL;
    mw_conn_free(staged);
}

/* Hand each staged declaration's options and callbacks to its live
 * connection; start the new declarations; close the live ones no longer
 * declared. A matched one that is closed and not reconnecting is connected
 * again when the declaration connects, unless the script itself ended it. */
static void commit_conns(mw_rt *rt, int conns)
{
    lua_State *L = rt->L;
    lua_Integer ndecl = (lua_Integer)lua_rawlen(L, conns);
    for (lua_Integer i = 1; i <= ndecl; i++) {
        lua_rawgeti(L, conns, i);
        int di = lua_gettop(L);
        l_conn *d = lua_touserdata(L, di);
        d->decl.in_tx = 0;
        d->decl.matched = 1; /* declared: not closed below */
        if (d->decl.live_c) {
            unstage(L, di, d, 1);
            if (d->decl.want_connect && !d->decl.script_ended && !mw_conn_active(d->c))
                mw_conn_connect(d->c); /* failed, or closed by the peer: revived */
            l_conn_anchor(L, di, d);
        } else if (d->decl.from_record) {
            d->decl.script_ended = 1;
            mw_conn_mark_closed(d->c);
        } else if (d->decl.want_connect) {
            mw_conn_connect(d->c);
            l_conn_anchor(L, di, d);
        }
        d->decl.want_connect = 0;
        d->decl.from_record = 0;
        lua_pop(L, 1);
    }
    /* oldest first (rt->conns is newest first); no finalizer may unlink
     * one under the walk */
    int gc_was = lua_gc(L, LUA_GCISRUNNING);
    if (gc_was) lua_gc(L, LUA_GCSTOP);
    l_conn *last = rt->conns;
    while (last && last->next) last = last->next;
    for (l_conn *lc = last; lc; lc = lc->prev) {
        if (lc->decl.matched || !candidate(lc)) { lc->decl.matched = 0; continue; }
        lc->decl.declared = 0;
        mw_conn_going_away(lc->c);
        l_conn_release(lc);
    }
    if (gc_was) lua_gc(L, LUA_GCRESTART);
    /* the declarations that matched records hold them now; the others are
     * no longer declared: forgotten, as a spent one-shot timer's record */
    forget_ended(rt);
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
        if (d->decl.live_c) unstage(L, lua_gettop(L), d, 0); /* live, declared as before */
        else d->decl.declared = 0;
        d->decl.in_tx = d->decl.want_connect = d->decl.matched = d->decl.from_record = 0;
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    for (l_ended *e = rt->ended; e; e = e->next) e->claimed = 0;
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

/* core.declaring(): whether what is made now is a declaration (the main
 * chunk, a reload's run of the script, onWorkerStart). */
static int l_declaring(lua_State *L)
{
    lua_pushboolean(L, live_rt(L)->declaring);
    return 1;
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
    rt->conn_match = conn_match;
    rt->conn_declared = conn_declared;
    rt->conn_ended = remember_ended;
    rt->at_close = forget_ended;
    static const luaL_Reg fns[] = {
        {"reload", l_reload}, {"setReloadHook", l_set_reload_hook},
        {"setDeclaring", l_set_declaring}, {"declaring", l_declaring}, {"scriptPath", l_script_path},
        {"reloading", l_reloading}, {NULL, NULL},
    };
    lua_pushlightuserdata(L, rt);
    luaL_setfuncs(L, fns, 1);
}
