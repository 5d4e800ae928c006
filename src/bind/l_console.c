/* l_console: the console's binding (`moonwire --console`, mw.console(),
 * `moonwire attach`; the Lua half is lua/moonwire/console.lua and attach.lua):
 *   core.consoleDir(create)             the directory of consoles, or nil, why
 *   core.consoleListen(path, onPeer, onRefused)  a listener, or nil, why
 *   core.consoleConnect(path, fn)       a peer (the attacher's end), or nil, why
 *   peer:setHandler(fn)                 fn(peer, kind, payload) per frame, fn(peer, nil, why) at the end
 *   peer:send(kind, s), peer:close(), listener:close()
 *   core.consoleEval(peer, fn, ...)     true, results... or false, message with traceback;
 *                                       an interrupt frame from peer stops fn ("interrupted")
 *   core.consoleProbe(path), core.consoleList(dir), core.pid(), core.pidAlive(pid)
 *   core.onInterrupt(fn|nil)            SIGINT calls fn instead of stopping (attach over a pipe)
 *   core.connections()                  mw.connections()
 * Knows no syscalls (src/console.c does them), no frame bits. */
#include "bind.h"
#include "conn.h"
#include "console.h"
#include <errno.h>
#include <string.h>

#define PEER_MT "moonwire.ConsolePeer"
#define SRV_MT "moonwire.Console"

typedef struct l_csrv l_csrv;
typedef struct l_cpeer {
    mw_cpeer *p;        /* NULL once closed */
    mw_rt *rt;
    int ref;            /* anchor while open */
    int fn;             /* registry ref of its handler, 0 none */
    l_csrv *srv;
    struct l_cpeer *next;   /* srv->peers */
} l_cpeer;

struct l_csrv {
    mw_csrv *s;
    mw_rt *rt;
    int ref, on_peer, on_refused;
    l_cpeer *peers;
};

static void unref(lua_State *L, int *r) { if (*r) { luaL_unref(L, LUA_REGISTRYINDEX, *r); *r = 0; } }

static void peer_forget(l_cpeer *lp)
{
    lp->p = NULL;
    if (lp->srv) {
        for (l_cpeer **q = &lp->srv->peers; *q; q = &(*q)->next)
            if (*q == lp) { *q = lp->next; break; }
        lp->srv = NULL;
    }
    unref(lp->rt->L, &lp->fn);
    unref(lp->rt->L, &lp->ref);
}

static void on_frame(void *ud, mw_cpeer *p, int kind, const char *s, size_t n, const char *why)
{
    (void)p;
    l_cpeer *lp = ud;
    lua_State *L = lp->rt->L;
    if (!lp->ref) return;
    if (!kind) {   /* the end: unanchored, the handler told once */
        int fn = lp->fn, ref = lp->ref;
        lp->fn = lp->ref = 0;
        peer_forget(lp);
        if (!fn) { luaL_unref(L, LUA_REGISTRYINDEX, ref); return; }
        lua_rawgeti(L, LUA_REGISTRYINDEX, fn);
        lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
        lua_pushnil(L);
        if (why) lua_pushstring(L, why); else lua_pushnil(L);
        luaL_unref(L, LUA_REGISTRYINDEX, fn);
        luaL_unref(L, LUA_REGISTRYINDEX, ref);
        mw_rt_call(lp->rt, 3, 0, "console");
        return;
    }
    if (!lp->fn) return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, lp->fn);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lp->ref);
    char k = (char)kind;
    lua_pushlstring(L, &k, 1);
    lua_pushlstring(L, s, n);
    mw_rt_call(lp->rt, 3, 0, "console");
}

static l_cpeer *new_peer(lua_State *L, mw_rt *rt, mw_cpeer *p)
{
    l_cpeer *lp = lua_newuserdatauv(L, sizeof *lp, 0);
    memset(lp, 0, sizeof *lp);
    lp->p = p;
    lp->rt = rt;
    luaL_setmetatable(L, PEER_MT);
    lua_pushvalue(L, -1);
    lp->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    mw_cpeer_set_cb(p, on_frame, lp);
    return lp;
}

static l_cpeer *check_peer(lua_State *L, int i) { return luaL_checkudata(L, i, PEER_MT); }

static int p_set_handler(lua_State *L)
{
    l_cpeer *lp = check_peer(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    if (!lp->p) return 0;
    unref(L, &lp->fn);
    lua_pushvalue(L, 2);
    lp->fn = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

static int p_send(lua_State *L)
{
    l_cpeer *lp = check_peer(L, 1);
    size_t kn, n;
    const char *k = luaL_checklstring(L, 2, &kn);
    const char *s = luaL_optlstring(L, 3, "", &n);
    luaL_argcheck(L, kn == 1, 2, "a frame kind (one letter) expected");
    lua_pushboolean(L, lp->p && mw_cpeer_send(lp->p, k[0], s, n) == 0);
    return 1;
}

static int p_close(lua_State *L)
{
    l_cpeer *lp = check_peer(L, 1);
    if (!lp->p) return 0;
    mw_cpeer *p = lp->p;
    peer_forget(lp);
    mw_cpeer_close(p);
    return 0;
}

static int p_gc(lua_State *L)
{
    l_cpeer *lp = check_peer(L, 1);
    /* collected only once unanchored: closed, or the state is closing */
    if (lp->p) { mw_cpeer *p = lp->p; lp->p = NULL; mw_cpeer_set_cb(p, NULL, NULL); mw_cpeer_close(p); }
    return 0;
}

/* ---- the listener ---- */

static void on_peer(void *ud, mw_cpeer *p)
{
    l_csrv *ls = ud;
    lua_State *L = ls->rt->L;
    if (!ls->on_peer) { mw_cpeer_close(p); return; }
    lua_rawgeti(L, LUA_REGISTRYINDEX, ls->on_peer);
    l_cpeer *lp = new_peer(L, ls->rt, p);
    lp->srv = ls;
    lp->next = ls->peers;
    ls->peers = lp;
    mw_rt_call(ls->rt, 1, 0, "console");
}

static void on_refused(void *ud, unsigned uid, int pid)
{
    l_csrv *ls = ud;
    lua_State *L = ls->rt->L;
    if (!ls->on_refused) return;
    lua_rawgeti(L, LUA_REGISTRYINDEX, ls->on_refused);
    lua_pushinteger(L, uid);
    lua_pushinteger(L, pid);
    mw_rt_call(ls->rt, 2, 0, "console");
}

static void srv_close(lua_State *L, l_csrv *ls)
{
    if (!ls->s) return;
    while (ls->peers) {
        l_cpeer *lp = ls->peers;
        ls->peers = lp->next;
        lp->srv = NULL;
        lp->p = NULL;   /* freed by mw_csrv_close */
        unref(L, &lp->fn);
        unref(L, &lp->ref);
    }
    mw_csrv_close(ls->s);
    ls->s = NULL;
    unref(L, &ls->on_peer);
    unref(L, &ls->on_refused);
    unref(L, &ls->ref);
}

static int s_close(lua_State *L) { srv_close(L, luaL_checkudata(L, 1, SRV_MT)); return 0; }

static int l_listen(lua_State *L)
{
    mw_rt *rt = lua_touserdata(L, lua_upvalueindex(1));
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    l_csrv *ls = lua_newuserdatauv(L, sizeof *ls, 0);
    memset(ls, 0, sizeof *ls);
    ls->rt = rt;
    luaL_setmetatable(L, SRV_MT);
    char err[300];
    ls->s = mw_csrv_listen(&rt->loop, path, on_peer, on_refused, ls, err, sizeof err);
    if (!ls->s) { lua_pushnil(L); lua_pushstring(L, err); return 2; }
    lua_pushvalue(L, 2); ls->on_peer = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 3); ls->on_refused = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, -1); ls->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

static int l_connect(lua_State *L)
{
    mw_rt *rt = lua_touserdata(L, lua_upvalueindex(1));
    const char *path = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    char err[300];
    mw_cpeer *p = mw_cpeer_connect(&rt->loop, path, err, sizeof err);
    if (!p) { lua_pushnil(L); lua_pushstring(L, err); return 2; }
    l_cpeer *lp = new_peer(L, rt, p);
    lua_pushvalue(L, 2);
    lp->fn = luaL_ref(L, LUA_REGISTRYINDEX);
    return 1;
}

/* ---- evaluation with an ear for interrupts ---- */

static l_cpeer *eval_peer;
static double eval_polled;

static void eval_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    if (!eval_peer || !eval_peer->p) return;
    double now = mw_monotonic();
    if (now - eval_polled < 0.02) return;
    eval_polled = now;
    if (mw_cpeer_poll_interrupt(eval_peer->p)) {
        luaL_where(L, 0);   /* the line the runaway chunk was at */
        lua_pushliteral(L, "interrupted");
        lua_concat(L, 2);
        lua_error(L);
    }
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

static int l_eval(lua_State *L)
{
    l_cpeer *lp = check_peer(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_Hook old = lua_gethook(L);
    int mask = lua_gethookmask(L), count = lua_gethookcount(L);
    l_cpeer *prev = eval_peer;
    eval_peer = lp;
    eval_polled = mw_monotonic();
    if (!old) lua_sethook(L, eval_hook, LUA_MASKCOUNT, 1000);
    lua_pushcfunction(L, traceback);
    lua_insert(L, 2);
    int st = lua_pcall(L, lua_gettop(L) - 3, LUA_MULTRET, 2);
    if (!old && lua_gethook(L) == eval_hook) lua_sethook(L, NULL, 0, 0);
    else if (old) lua_sethook(L, old, mask, count);
    eval_peer = prev;
    int nres = lua_gettop(L) - 2;
    lua_pushboolean(L, st == LUA_OK);
    lua_replace(L, 2);   /* the handler's slot */
    return nres + 1;
}

/* ---- the rest ---- */

static int l_dir(lua_State *L)
{
    char dir[256], err[300];
    if (mw_console_dir(dir, sizeof dir, lua_toboolean(L, 1), err, sizeof err) != 0) {
        lua_pushnil(L); lua_pushstring(L, err); return 2;
    }
    lua_pushstring(L, dir);
    return 1;
}

static int l_probe(lua_State *L)
{
    int r = mw_console_probe(luaL_checkstring(L, 1));
    if (r < 0) { lua_pushnil(L); lua_pushstring(L, strerror(errno)); return 2; }
    lua_pushboolean(L, r);
    return 1;
}

static void add_name(void *ud, const char *name)
{
    lua_State *L = ud;
    lua_pushstring(L, name);
    lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
}

static int l_list(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    lua_newtable(L);
    if (mw_console_list(dir, add_name, L) != 0) { lua_pushnil(L); lua_pushfstring(L, "cannot read %s", dir); return 2; }
    return 1;
}

static int l_pid(lua_State *L) { lua_pushinteger(L, mw_console_pid()); return 1; }

static int l_pid_alive(lua_State *L)
{
    lua_pushboolean(L, mw_console_pid_alive((int)luaL_checkinteger(L, 1)));
    return 1;
}

static int l_on_interrupt(lua_State *L)
{
    mw_rt *rt = lua_touserdata(L, lua_upvalueindex(1));
    unref(L, &rt->sigint_ref);
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TFUNCTION);
        lua_pushvalue(L, 1);
        rt->sigint_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    return 0;
}

void l_console_sigint(mw_rt *rt)
{
    lua_rawgeti(rt->L, LUA_REGISTRYINDEX, rt->sigint_ref);
    mw_rt_call(rt, 0, 0, "interrupt");
}

/* mw.connections(): {id, url, status, bytesIn, bytesOut, age, name, conn} of
 * every connection object alive, by id */
static int l_connections(lua_State *L)
{
    mw_rt *rt = lua_touserdata(L, lua_upvalueindex(1));
    lua_newtable(L);
    double now = mw_monotonic();
    lua_Integer i = 0;
    for (l_conn *lc = rt->conns; lc; lc = lc->next) {
        if (!lc->c || !l_conn_push(L, lc)) continue;
        lua_createtable(L, 0, 8);
        lua_insert(L, -2);
        lua_setfield(L, -2, "conn");
        uint64_t in, out;
        mw_conn_bytes(lc->c, &in, &out);
        lua_pushinteger(L, (lua_Integer)mw_conn_id(lc->c)); lua_setfield(L, -2, "id");
        lua_pushstring(L, mw_conn_url(lc->c)); lua_setfield(L, -2, "url");
        lua_pushstring(L, mw_conn_status_name(mw_conn_status(lc->c))); lua_setfield(L, -2, "status");
        lua_pushinteger(L, (lua_Integer)in); lua_setfield(L, -2, "bytesIn");
        lua_pushinteger(L, (lua_Integer)out); lua_setfield(L, -2, "bytesOut");
        if (lc->retry.up_since > 0) { lua_pushnumber(L, now - lc->retry.up_since); lua_setfield(L, -2, "age"); }
        if (lc->name) { lua_pushstring(L, lc->name); lua_setfield(L, -2, "name"); }
        lua_rawseti(L, -2, ++i);
    }
    /* by id: the list is newest first */
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_remove(L, -2);
    lua_pushvalue(L, -2);
    luaL_dostring(L, "return function(a, b) return a.id < b.id end");
    lua_call(L, 2, 0);
    return 1;
}

void l_console_register(lua_State *L, mw_rt *rt)
{
    static const luaL_Reg peer_m[] = {
        {"setHandler", p_set_handler}, {"send", p_send}, {"close", p_close}, {NULL, NULL},
    };
    luaL_newmetatable(L, PEER_MT);
    luaL_newlib(L, peer_m);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, p_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newmetatable(L, SRV_MT);
    lua_newtable(L);
    lua_pushcfunction(L, s_close);
    lua_setfield(L, -2, "close");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, s_close);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {
        {"consoleDir", l_dir}, {"consoleListen", l_listen}, {"consoleConnect", l_connect},
        {"consoleEval", l_eval}, {"consoleProbe", l_probe}, {"consoleList", l_list},
        {"pid", l_pid}, {"pidAlive", l_pid_alive}, {"onInterrupt", l_on_interrupt},
        {"connections", l_connections}, {NULL, NULL},
    };
    lua_pushlightuserdata(L, rt);
    luaL_setfuncs(L, fns, 1);
}
