/* l_conn: AsyncTcpConnection as Lua userdata: properties, methods, and the
 * events of the C connection turned into calls of the script's callbacks.
 * Knows no syscalls and no frame bits. */
#include "bind.h"
#include "l_fields.h"
#include "conn.h"
#include "layers.h"
#include "proto_ws.h"
#include "tls.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>


/* registry[CONNS_KEY][lightuserdata lc] = its userdata, weak: a hot reload
 * reaches declared connections that are not anchored (closed) through it. */
#define CONNS_KEY "moonwire.conns"

/* ---- anchoring: an active connection keeps itself alive ---- */

/* The connection the socket is on: while a reload stages a declaration in
 * the userdata, the live one waits in decl. */
static mw_conn *live_conn(const l_conn *lc) { return lc->decl.live_c ? lc->decl.live_c : lc->c; }

/* Drop the anchor once nothing is pending: the script's references alone
 * decide the userdata's life from then on. */
static void sync_anchor(l_conn *lc)
{
    if (lc->ref != LUA_NOREF && !(lc->c && mw_conn_active(live_conn(lc)))) {
        luaL_unref(lc->rt->L, LUA_REGISTRYINDEX, lc->ref);
        lc->ref = LUA_NOREF;
    }
}

static void anchor(lua_State *L, int i, l_conn *lc);
void l_conn_release(l_conn *lc) { sync_anchor(lc); }
void l_conn_anchor(lua_State *L, int i, l_conn *lc) { anchor(L, i, lc); }

int l_conn_push(lua_State *L, l_conn *lc)
{
    if (lc->ref != LUA_NOREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, lc->ref);
        return 1;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, CONNS_KEY);
    if (lua_rawgetp(L, -1, lc) == LUA_TUSERDATA) {
        lua_remove(L, -2);
        return 1;
    }
    lua_pop(L, 2);
    return 0;
}

/* Anchor the userdata at stack index i while its connection is active;
 * drop the anchor once it is not (one look at the connection). */
static void anchor(lua_State *L, int i, l_conn *lc)
{
    int active = mw_conn_active(live_conn(lc));
    if (active && lc->ref == LUA_NOREF) {
        lua_pushvalue(L, i);
        lc->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else if (!active && lc->ref != LUA_NOREF) {
        luaL_unref(L, LUA_REGISTRYINDEX, lc->ref);
        lc->ref = LUA_NOREF;
    }
}

static int push_cb(l_conn *lc, const char *name) { return l_conn_push_cb_at(lc, name, 0); }

/* ---- events ---- */

static void ev_connect(void *ud)
{
    l_conn *lc = ud;
    l_retry_opened(lc);
    lc->rxq.paused = 0;   /* a new session reads (the connect cleared any pause) */
    if (push_cb(lc, "onConnect")) mw_rt_call(lc->rt, 1, 0, "onConnect");
    int s = mw_conn_current_scheme(lc->c);
    /* a WebSocket is open once its handshake is done (ev_ws_connect) */
    if (s != MW_SCHEME_WS && s != MW_SCHEME_WSS && mw_conn_status(lc->c) == MW_ST_ESTABLISHED && l_conn_push_hook(lc, "open"))
        mw_rt_call(lc->rt, 2, 0, "coroutine");
}

static void ev_error(void *ud, int code, const char *msg)
{
    l_conn *lc = ud;
    lua_State *L = lc->rt->L;
    l_retry_error(lc, code, msg);
    int told = 0;
    if (l_conn_push_hook(lc, "err")) {
        /* a coroutine waiting on it gets the error as its result (told: 1) */
        lua_pushinteger(L, code);
        lua_pushstring(L, msg);
        mw_rt_call(lc->rt, 4, 1, "coroutine");
        told = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    if (!push_cb(lc, "onError")) {
        /* No handler: an error must still reach a person. */
        if (!told) fprintf(stderr, "moonwire: %s\n", msg);
        return;
    }
    lua_pushinteger(L, code);
    lua_pushstring(L, msg);
    mw_rt_call(lc->rt, 3, 0, "onError");
}

static void ev_close(void *ud)
{
    l_conn *lc = ud;
    lua_State *L = lc->rt->L;
    double delay = 0;
    int plan = 0, top = lua_gettop(L), self = lc->ref != LUA_NOREF && l_conn_push(L, lc) ? top + 1 : 0;
    if (self) plan = l_retry_plan(lc, self, &delay);   /* a stop says why before onClose */
    if (push_cb(lc, "onClose")) mw_rt_call(lc->rt, 1, 0, "onClose");
    if (plan > 0) l_retry_schedule(lc, self, delay);
    if (l_conn_push_hook(lc, "close")) mw_rt_call(lc->rt, 2, 0, "coroutine");
    lua_settop(L, top);
    sync_anchor(lc);
}

static void ev_simple(void *ud, const char *name)
{
    l_conn *lc = ud;
    if (push_cb(lc, name)) mw_rt_call(lc->rt, 1, 0, name);
}

static void ev_buffer_full(void *ud) { ev_simple(ud, "onBufferFull"); }
static void ev_buffer_drain(void *ud)
{
    l_conn *lc = ud;
    ev_simple(ud, "onBufferDrain");
    if (l_conn_push_hook(lc, "drain")) mw_rt_call(lc->rt, 2, 0, "coroutine");
}

static void ev_ws_connect(void *ud, const char *head, size_t n)
{
    l_conn *lc = ud;
    l_retry_opened(lc);
    if (push_cb(lc, "onWebSocketConnect")) {
        lua_pushlstring(lc->rt->L, head, n);
        mw_rt_call(lc->rt, 2, 0, "onWebSocketConnect");
    }
    if (mw_conn_status(lc->c) == MW_ST_ESTABLISHED && l_conn_push_hook(lc, "open")) mw_rt_call(lc->rt, 2, 0, "coroutine");
}

static void ev_ws_close(void *ud, int code, const char *reason, size_t n)
{
    l_conn *lc = ud;
    lua_State *L = lc->rt->L;
    if (push_cb(lc, "onWebSocketClose")) {
        lua_pushinteger(L, code);
        lua_pushlstring(L, reason, n);
        mw_rt_call(lc->rt, 3, 0, "onWebSocketClose");
    }
    if (l_conn_push_hook(lc, "wsclose")) {
        lua_pushinteger(L, code);
        lua_pushlstring(L, reason, n);
        mw_rt_call(lc->rt, 4, 0, "coroutine");
    }
}

static int ev_ws_ping(void *ud, const char *p, size_t n)
{
    l_conn *lc = ud;
    lua_State *L = lc->rt->L;
    if (!push_cb(lc, "onWebSocketPing")) return 1;
    lua_pushlstring(L, p, n);
    mw_rt_call(lc->rt, 2, 1, "onWebSocketPing");
    int pong = !(lua_isboolean(L, -1) && !lua_toboolean(L, -1));
    lua_pop(L, 1);
    return pong;
}

static void ev_ws_pong(void *ud, const char *p, size_t n)
{
    l_conn *lc = ud;
    if (!push_cb(lc, "onWebSocketPong")) return;
    lua_pushlstring(lc->rt->L, p, n);
    mw_rt_call(lc->rt, 2, 0, "onWebSocketPong");
}

static const mw_conn_events events = {
    .on_connect = ev_connect, .on_message = l_conn_ev_message, .on_messages = l_conn_ev_messages, .on_error = ev_error,
    .on_close = ev_close, .on_buffer_full = ev_buffer_full, .on_buffer_drain = ev_buffer_drain,
};

static const mw_ws_events ws_events = {
    .on_connect = ev_ws_connect, .on_close = ev_ws_close, .on_ping = ev_ws_ping, .on_pong = ev_ws_pong,
};

/* ---- construction and lifetime ---- */

static void link_conn(mw_rt *rt, l_conn *lc)
{
    lc->prev = NULL;
    lc->next = rt->conns;
    if (rt->conns) rt->conns->prev = lc;
    rt->conns = lc;
}

static void unlink_conn(mw_rt *rt, l_conn *lc)
{
    if (lc->prev) lc->prev->next = lc->next; else if (rt->conns == lc) rt->conns = lc->next;
    if (lc->next) lc->next->prev = lc->prev;
    lc->next = lc->prev = NULL;
}

mw_conn *l_conn_new_c(lua_State *L, mw_rt *rt, l_conn *lc, const char *url)
{
    char err[256];
    mw_conn *c = mw_conn_new(&rt->loop, url, &mw_layers_std, &events, lc, err, sizeof err);
    if (!c) luaL_error(L, "%s", err);
    if (mw_ws_set_events(c, &ws_events) != 0) {
        mw_conn_free(c);
        luaL_error(L, "out of memory");
    }
    return c;
}

/* A new userdata (closed, valid; then the resource) for url, pushed. */
static l_conn *push_new(lua_State *L, mw_rt *rt, const char *url)
{
    l_conn *lc = lua_newuserdatauv(L, sizeof *lc, 1);
    memset(lc, 0, sizeof *lc);
    lc->self = lc;
    lc->rt = rt;
    lc->ref = LUA_NOREF;
    luaL_setmetatable(L, MW_CONN_MT);
    lua_newtable(L);
    lua_setiuservalue(L, -2, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, CONNS_KEY);
    lc->c = l_conn_new_c(L, rt, lc, url);
    lc->decl.seq = ++rt->conn_seq;
    link_conn(rt, lc);
    lua_pushvalue(L, -2);
    lua_rawsetp(L, -2, lc);
    lua_pop(L, 1);
    return lc;
}

static int conn_new(lua_State *L)
{
    mw_rt *rt = lua_touserdata(L, lua_upvalueindex(1));
    size_t url_len;
    const char *url = luaL_checklstring(L, 1, &url_len);
    if (strlen(url) != url_len) return luaL_argerror(L, 1, "invalid URL: it contains a NUL byte");
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    if (!rt->loop.ev) return luaL_error(L, "moonwire has shut down (called from a finalizer at exit)");
    const char *name = NULL;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "name");
        if (!lua_isnil(L, -1) && !lua_isstring(L, -1))
            return luaL_error(L, "options.name must be a string, got %s", luaL_typename(L, -1));
        name = lua_tostring(L, -1); /* held by the stack slot */
    }
    int ended = 0;
    l_conn *lc = NULL;
    /* a reload's declaration: the live connection it matches, if any */
    if (rt->declaring && rt->conn_match) lc = rt->conn_match(L, rt, url, name, &ended);
    int fresh = !lc;
    if (fresh) lc = push_new(L, rt, url);
    if (lua_istable(L, 2)) {
        int ud = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, 2)) {
            if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "ssl") == 0) {
                /* options.ssl is the TLS context, as conn.context.ssl */
                lua_getiuservalue(L, ud, 1);
                lua_createtable(L, 0, 1);
                lua_pushvalue(L, -3);
                lua_setfield(L, -2, "ssl");
                lua_setfield(L, -2, "context");
                lua_pop(L, 2);
                continue;
            }
            if (fresh && name && lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "name") == 0) {
                free(lc->name);
                lc->name = strdup(name);
            }
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, ud); /* goes through __newindex */
        }
    }
    if (fresh && rt->declaring && rt->conn_declared) rt->conn_declared(L, rt, lua_gettop(L), lc, ended);
    return 1;
}

static void destroy(lua_State *L, int i, l_conn *lc);

/* Whether the userdata at i is still reachable: the collector clears the
 * weak CONNS_KEY entry of a userdata before it runs its finalizer (Lua 5.4
 * manual, 2.5.4), lua_close() clears nothing. */
static int registered(lua_State *L, int i, const l_conn *lc)
{
    lua_getfield(L, LUA_REGISTRYINDEX, CONNS_KEY);
    int r = lua_rawgetp(L, -1, lc) == LUA_TUSERDATA && lua_touserdata(L, -1) == lua_touserdata(L, i);
    lua_pop(L, 2);
    return r;
}

static int conn_gc(lua_State *L)
{
    /* not lua_touserdata: __gc also runs for a table given this metatable */
    l_conn *lc = luaL_testudata(L, 1, MW_CONN_MT);
    if (!lc) return 0;
    if (lc->c && registered(L, 1, lc) && mw_gc_called_by_script(L)) {
        /* debug.getmetatable(c).__gc(c), maybe from inside one of c's own
         * callbacks with the C connection's frames still on the stack:
         * ended as destroy() ends it, freed by the collector later. */
        destroy(L, 1, lc);
        return 0;
    }
    if (lc->c) {
        unlink_conn(lc->rt, lc);
        if (lc->decl.declared && lc->decl.script_ended && !lc->decl.in_tx && lc->rt->conn_ended)
            lc->rt->conn_ended(lc->rt, lc);
        l_metrics_retire(lc->rt, lc->name, lc->c);
        mw_conn_free(lc->c);
        lc->c = NULL;
        mw_conn_free(lc->decl.live_c); /* lua_close() during a reload */
        lc->decl.live_c = NULL;
    }
    free(lc->name);
    lc->name = NULL;
    mw_buf_free(&lc->rxq.buf);
    return 0;
}

static int conn_tostring(lua_State *L)
{
    l_conn *lc = check_conn(L, 1);
    lua_pushfstring(L, "AsyncTcpConnection(%s, %s)", mw_conn_url(lc->c), mw_conn_status_name(mw_conn_status(lc->c)));
    return 1;
}

/* ---- methods ---- */

/* Whether the script ended the connection itself (a reload then leaves it
 * ended) or wants it connected. */
static void set_ended(l_conn *lc, int ended) { lc->decl.script_ended = ended; }

static int m_connect(lua_State *L)
{
    l_conn *lc = check_conn(L, 1);
    if (lc->rt->stopping) { lua_pushboolean(L, 0); return 1; }
    l_conn_apply_headers(L, lc);
    l_tls_apply(L, 1, lc->c);
    l_proxy_apply(L, 1, lc->c);
    l_conn_apply_socket(L, lc);
    if (lc->decl.in_tx) {
        /* a declaration of the reload under way: connected (or matched to a
         * live connection) when the reload commits */
        lc->decl.want_connect = 1;
        lua_pushboolean(L, 1);
        return 1;
    }
    if (mw_conn_connect(lc->c) != 0) { lua_pushboolean(L, 0); return 1; }
    set_ended(lc, 0);
    anchor(L, 1, lc);
    lua_pushboolean(L, 1);
    return 1;
}

#define SEND_WAITED 0x100   /* in the continuation's context: a coroutine waited */

static int send_k(lua_State *L, int status, lua_KContext ctx);

/* send, sendText, sendBinary. From a coroutine of mw.spawn a send waits
 * while the send queue is full (co.lua's waiter yields until onBufferDrain
 * or the close) instead of dropping; anywhere else, Workerman's
 * drop-and-report. */
static int do_send_ctx(lua_State *L, lua_KContext ctx)
{
    l_conn *lc = check_conn(L, 1);
    size_t n;
    const char *p = luaL_checklstring(L, 2, &n);
    if (lc->rt->send_waiter && mw_conn_buffer_full(lc->c) && mw_conn_live(lc->c) && lua_isyieldable(L)) {
        lua_settop(L, 3);
        lua_rawgeti(L, LUA_REGISTRYINDEX, lc->rt->send_waiter);
        lua_pushvalue(L, 1);
        lua_callk(L, 1, 1, ctx, send_k);
        return send_k(L, LUA_OK, ctx);
    }
    int r = mw_conn_send(lc->c, p, n, (int)(ctx & 0xff));
    /* anchored: a send does not end the connection by itself (a failure
     * ends it through onClose, which drops the anchor), so nothing to
     * recompute on the per-message path */
    if (lc->ref == LUA_NOREF) anchor(L, 1, lc);
    if (r != 1 && (ctx & SEND_WAITED)) {
        lua_pushnil(L);
        lua_pushfstring(L, "send %s: not sent: the connection is %s", mw_conn_url(lc->c),
                        mw_conn_status_name(mw_conn_status(lc->c)));
        return 2;
    }
    lua_pushboolean(L, r == 1);
    return 1;
}

/* After the waiter: true when the coroutine waited (try again), false when
 * the caller is no coroutine of mw.spawn (send as from a callback). */
static int send_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    int waited = lua_toboolean(L, -1);
    lua_settop(L, 3);
    if (!waited) {
        /* not one of ours: drop-and-report, as from a callback */
        l_conn *lc = check_conn(L, 1);
        size_t n;
        const char *p = luaL_checklstring(L, 2, &n);
        lua_pushboolean(L, mw_conn_send(lc->c, p, n, (int)(ctx & 0xff)) == 1);
        return 1;
    }
    return do_send_ctx(L, ctx | SEND_WAITED);
}

static int do_send(lua_State *L, int kind) { return do_send_ctx(L, kind); }

/* core.setSendWaiter(fn): co.lua's wait, fn(conn) -> waited */
static int l_set_send_waiter(lua_State *L)
{
    return l_set_fn_ref(L, &((mw_rt *)lua_touserdata(L, lua_upvalueindex(1)))->send_waiter);
}

static int m_send(lua_State *L) { return do_send(L, lua_toboolean(L, 3) ? MW_KIND_RAW : MW_KIND_NONE); }
static int m_send_text(lua_State *L) { return do_send(L, MW_KIND_TEXT); }
static int m_send_binary(lua_State *L) { return do_send(L, MW_KIND_BINARY); }

/* close(), finish() and <close>: the data at index data first (0: none),
 * then the close; true when the connection was open or opening. */
static int end_conn(lua_State *L, l_conn *lc, int data, int code, const char *reason, size_t rn)
{
    if (data) {
        size_t n;
        const char *p = luaL_checklstring(L, data, &n);
        mw_conn_send(lc->c, p, n, MW_KIND_NONE);
    }
    int was = mw_conn_status(lc->c);
    if (l_retry_cancel(lc)) set_ended(lc, 1);  /* the policy's wait: close() ends it */
    int live = mw_conn_live(lc->c);
    mw_conn_close(lc->c, code, reason, rn);
    if (live && !mw_conn_reconnect_pending(lc->c)) set_ended(lc, 1);
    anchor(L, 1, lc);
    lua_pushboolean(L, was == MW_ST_ESTABLISHED || was == MW_ST_CONNECTING);
    return 1;
}

/* close([code [, reason]]) or close(data) */
static int m_close(lua_State *L)
{
    l_conn *lc = check_conn(L, 1);
    size_t rn = 0;
    if (lua_type(L, 2) == LUA_TNUMBER) {
        int code = (int)luaL_checkinteger(L, 2);
        const char *reason = luaL_optlstring(L, 3, NULL, &rn);
        return end_conn(L, lc, 0, code, reason, rn);
    }
    return end_conn(L, lc, lua_isnoneornil(L, 2) ? 0 : 2, MW_CLOSE_NORMAL, NULL, 0);
}

/* finish([data]): data is never a code */
static int m_finish(lua_State *L)
{
    l_conn *lc = check_conn(L, 1);
    return end_conn(L, lc, lua_isnoneornil(L, 2) ? 0 : 2, MW_CLOSE_NORMAL, NULL, 0);
}

/* `local c <close> = AsyncTcpConnection.new(...)`: close() as at the end of
 * the scope; the second argument is the error leaving it, never data. */
static int conn_close_mm(lua_State *L)
{
    return end_conn(L, check_conn(L, 1), 0, MW_CLOSE_NORMAL, NULL, 0);
}

static void destroy(lua_State *L, int i, l_conn *lc)
{
    if (mw_conn_live(lc->c)) set_ended(lc, 1);
    mw_conn_destroy(lc->c);
    anchor(L, i, lc);
}

static int m_destroy(lua_State *L)
{
    destroy(L, 1, check_conn(L, 1));
    return 0;
}

static int m_reconnect(lua_State *L)
{
    l_conn *lc = check_conn(L, 1);
    double delay = luaL_optnumber(L, 2, 0);
    if (!(delay >= 0)) return luaL_argerror(L, 2, "delay must be >= 0");
    if (lc->rt->stopping) { lua_pushboolean(L, 0); return 1; }
    l_conn_apply_headers(L, lc);
    l_tls_apply(L, 1, lc->c);
    l_proxy_apply(L, 1, lc->c);
    l_conn_apply_socket(L, lc);
    if (lc->decl.in_tx) { lc->decl.want_connect = 1; lua_pushboolean(L, 1); return 1; }
    mw_conn_reconnect(lc->c, delay);
    set_ended(lc, 0);
    anchor(L, 1, lc);
    lua_pushboolean(L, 1);
    return 1;
}

static int m_cancel_reconnect(lua_State *L)
{
    l_conn *lc = check_conn(L, 1);
    mw_conn *c = lc->c;
    /* a reconnect pending after a close: cancelling it ends the connection */
    if (mw_conn_reconnect_pending(c) && (mw_conn_status(c) == MW_ST_CLOSED || mw_conn_status(c) == MW_ST_INITIAL))
        set_ended(lc, 1);
    mw_conn_cancel_reconnect(c);
    sync_anchor(lc);
    return 0;
}

/* conn:ping([data]): a WebSocket ping; true, or nil and why */
static int m_ping(lua_State *L)
{
    l_conn *lc = check_conn(L, 1);
    size_t n = 0;
    const char *p = luaL_optlstring(L, 2, "", &n);
    if (mw_ws_ping(lc->c, p, n) != 0) {
        lua_pushnil(L);
        lua_pushstring(L, mw_conn_proto_error(lc->c));
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int m_pause(lua_State *L) { mw_conn_pause(check_conn(L, 1)->c); return 0; }
static int m_resume(lua_State *L) { mw_conn_resume(check_conn(L, 1)->c); return 0; }

static int push_addr(lua_State *L, int local, int what /* 0 ip, 1 port, 2 both */)
{
    l_conn *lc = check_conn(L, 1);
    char ip[64];
    int port = 0;
    int r = local ? mw_conn_local(lc->c, ip, sizeof ip, &port) : mw_conn_remote(lc->c, ip, sizeof ip, &port);
    if (r != 0) { lua_pushnil(L); return 1; }
    if (what == 0) lua_pushstring(L, ip);
    else if (what == 1) lua_pushinteger(L, port);
    else if (strchr(ip, ':')) lua_pushfstring(L, "[%s]:%d", ip, port);
    else lua_pushfstring(L, "%s:%d", ip, port);
    return 1;
}

static int m_remote_ip(lua_State *L) { return push_addr(L, 0, 0); }
static int m_remote_port(lua_State *L) { return push_addr(L, 0, 1); }
static int m_remote_addr(lua_State *L) { return push_addr(L, 0, 2); }
static int m_local_ip(lua_State *L) { return push_addr(L, 1, 0); }
static int m_local_port(lua_State *L) { return push_addr(L, 1, 1); }

static int m_is_v4(lua_State *L) { lua_pushboolean(L, mw_conn_family(check_conn(L, 1)->c) == 4); return 1; }
static int m_is_v6(lua_State *L) { lua_pushboolean(L, mw_conn_family(check_conn(L, 1)->c) == 6); return 1; }

static int m_buffer_full(lua_State *L)
{
    lua_pushboolean(L, mw_conn_buffer_full(check_conn(L, 1)->c));
    return 1;
}

static int m_send_queue(lua_State *L) { lua_pushinteger(L, (lua_Integer)mw_conn_send_queued(check_conn(L, 1)->c)); return 1; }
static int m_recv_queue(lua_State *L) { lua_pushinteger(L, (lua_Integer)mw_conn_recv_queued(check_conn(L, 1)->c)); return 1; }
static int m_tls_info(lua_State *L) { return l_tls_push_info(L, check_conn(L, 1)->c); }
static int m_stats(lua_State *L) { return l_metrics_conn_stats(L, check_conn(L, 1)->c); }
static int m_status(lua_State *L) { lua_pushstring(L, mw_conn_status_name(mw_conn_status(check_conn(L, 1)->c))); return 1; }

void l_conn_stop_all(mw_rt *rt)
{
    for (l_conn *lc = rt->conns; lc; lc = lc->next) {
        mw_conn_going_away(lc->c);
        sync_anchor(lc);
    }
}

void l_conn_register(lua_State *L, mw_rt *rt)
{
    static const luaL_Reg methods[] = {
        {"connect", m_connect}, {"send", m_send}, {"sendText", m_send_text},
        {"sendBinary", m_send_binary}, {"close", m_close}, {"finish", m_finish},
        {"destroy", m_destroy}, {"reConnect", m_reconnect}, {"cancelReconnect", m_cancel_reconnect},
        {"pauseRecv", m_pause}, {"resumeRecv", m_resume},
        {"getRemoteIp", m_remote_ip}, {"getRemotePort", m_remote_port},
        {"getRemoteAddress", m_remote_addr}, {"getLocalIp", m_local_ip},
        {"getLocalPort", m_local_port}, {"isIpV4", m_is_v4}, {"isIpV6", m_is_v6},
        {"bufferFull", m_buffer_full}, {"getSendBufferQueueSize", m_send_queue},
        {"getRecvBufferQueueSize", m_recv_queue}, {"getStatus", m_status},
        {"tlsInfo", m_tls_info}, {"ping", m_ping}, {"receive", l_conn_receive},
        {"stats", m_stats}, {NULL, NULL},
    };
    /* module table is on top */
    if (lua_getfield(L, LUA_REGISTRYINDEX, CONNS_KEY) != LUA_TTABLE) {
        lua_newtable(L);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "v");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_setfield(L, LUA_REGISTRYINDEX, CONNS_KEY);
    }
    lua_pop(L, 1);
    lua_pushliteral(L, "onMessage");
    rt->s_onmessage = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushliteral(L, "text");
    rt->s_text = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushliteral(L, "binary");
    rt->s_binary = luaL_ref(L, LUA_REGISTRYINDEX);
    luaL_newmetatable(L, MW_CONN_MT);
    luaL_newlib(L, methods);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "connMethods"); /* the Lua side adds pipe() here */
    lua_pushcclosure(L, l_conn_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_conn_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, conn_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, conn_close_mm);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, conn_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "AsyncTcpConnection");
    lua_setfield(L, -2, "__name");
    /* hidden from getmetatable: a script calling __gc itself would free a
     * live connection under the loop */
    lua_pushliteral(L, "AsyncTcpConnection");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);

    lua_createtable(L, 0, 1);
    lua_pushlightuserdata(L, rt);
    lua_pushcclosure(L, conn_new, 1);
    lua_setfield(L, -2, "new");
    lua_setfield(L, -2, "AsyncTcpConnection");
    lua_pushcfunction(L, l_conn_fields);
    lua_setfield(L, -2, "connFields");
    lua_pushlightuserdata(L, rt);
    lua_pushcclosure(L, l_set_send_waiter, 1);
    lua_setfield(L, -2, "setSendWaiter");
    l_recv_register(L, rt);
    lua_createtable(L, 0, 2); /* Workerman's Ws constants, as websocketType reads them */
    lua_pushstring(L, MW_WS_BLOB);
    lua_setfield(L, -2, "BINARY_TYPE_BLOB");
    lua_pushstring(L, MW_WS_ARRAYBUFFER);
    lua_setfield(L, -2, "BINARY_TYPE_ARRAYBUFFER");
    lua_setfield(L, -2, "Ws");
    l_typo_register(L); /* the Worker's fields get the same check */
}
