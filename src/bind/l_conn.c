/* l_conn: AsyncTcpConnection as Lua userdata: properties, methods, and the
 * events of the C connection turned into calls of the script's callbacks.
 * Knows no syscalls and no frame bits. */
#include "bind.h"
#include "conn.h"
#include "layers.h"
#include "proto_ws.h"
#include "tls.h"
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char BLOB[] = "\x81", ARRAYBUFFER[] = "\x82"; /* Workerman's Ws constants */

/* registry[CONNS_KEY][lightuserdata lc] = its userdata, weak: a hot reload
 * reaches declared connections that are not anchored (closed) through it. */
#define CONNS_KEY "moonwire.conns"

static l_conn *check_conn(lua_State *L, int i)
{
    l_conn *lc = luaL_checkudata(L, i, MW_CONN_MT);
    /* only a finalizer that resurrects a collected connection can see this */
    if (!lc->c) luaL_error(L, "AsyncTcpConnection used after it was garbage-collected");
    return lc;
}

/* ---- anchoring: an active connection keeps itself alive ---- */

/* Drop the anchor once nothing is pending: the script's references alone
 * decide the userdata's life from then on. */
static void sync_anchor(l_conn *lc)
{
    if (lc->ref != LUA_NOREF && !(lc->c && mw_conn_active(lc->c))) {
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

/* Anchor the userdata at stack index i. */
static void anchor(lua_State *L, int i, l_conn *lc)
{
    if (lc->ref == LUA_NOREF && !lc->alias && mw_conn_active(lc->c)) {
        lua_pushvalue(L, i);
        lc->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    sync_anchor(lc);
}

/* Push the script's callback `name` and the connection; 0 when none. */
static int push_cb(l_conn *lc, const char *name)
{
    lua_State *L = lc->rt->L;
    if (lc->ref == LUA_NOREF) return 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, lc->ref);
    /* raw, outside any protected call: debug.setmetatable can give the
     * field table an __index that raises (as cheap as lua_getfield) */
    lua_getiuservalue(L, -1, 1);
    lua_pushstring(L, name);
    if (lua_rawget(L, -2) != LUA_TFUNCTION) { lua_pop(L, 3); return 0; }
    /* ud uv fn -> fn ud, by copies (no rotation: this runs per message) */
    lua_copy(L, -1, -3);
    lua_pop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lc->ref);
    lua_replace(L, -2);
    return 1;
}

/* ---- events ---- */

static void ev_connect(void *ud)
{
    l_conn *lc = ud;
    if (push_cb(lc, "onConnect")) mw_rt_call(lc->rt, 1, 0, "onConnect");
}

static void ev_message(void *ud, const char *p, size_t n, int kind)
{
    l_conn *lc = ud;
    lua_State *L = lc->rt->L;
    if (!push_cb(lc, "onMessage")) return;
    lua_pushlstring(L, p, n);
    if (kind == MW_KIND_TEXT) lua_pushliteral(L, "text");
    else if (kind == MW_KIND_BINARY) lua_pushliteral(L, "binary");
    else lua_pushnil(L);
    mw_rt_call(lc->rt, 3, 0, "onMessage");
}

static void ev_error(void *ud, int code, const char *msg)
{
    l_conn *lc = ud;
    lua_State *L = lc->rt->L;
    if (!push_cb(lc, "onError")) {
        /* No handler: an error must still reach a person. */
        fprintf(stderr, "moonwire: %s\n", msg);
        return;
    }
    lua_pushinteger(L, code);
    lua_pushstring(L, msg);
    mw_rt_call(lc->rt, 3, 0, "onError");
}

static void ev_close(void *ud)
{
    l_conn *lc = ud;
    if (push_cb(lc, "onClose")) mw_rt_call(lc->rt, 1, 0, "onClose");
    sync_anchor(lc);
}

static void ev_simple(void *ud, const char *name)
{
    l_conn *lc = ud;
    if (push_cb(lc, name)) mw_rt_call(lc->rt, 1, 0, name);
}

static void ev_buffer_full(void *ud) { ev_simple(ud, "onBufferFull"); }
static void ev_buffer_drain(void *ud) { ev_simple(ud, "onBufferDrain"); }

static void ev_ws_connect(void *ud, const char *head, size_t n)
{
    l_conn *lc = ud;
    if (!push_cb(lc, "onWebSocketConnect")) return;
    lua_pushlstring(lc->rt->L, head, n);
    mw_rt_call(lc->rt, 2, 0, "onWebSocketConnect");
}

static void ev_ws_close(void *ud, int code, const char *reason, size_t n)
{
    l_conn *lc = ud;
    lua_State *L = lc->rt->L;
    if (!push_cb(lc, "onWebSocketClose")) return;
    lua_pushinteger(L, code);
    lua_pushlstring(L, reason, n);
    mw_rt_call(lc->rt, 3, 0, "onWebSocketClose");
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
    .on_connect = ev_connect, .on_message = ev_message, .on_error = ev_error,
    .on_close = ev_close, .on_buffer_full = ev_buffer_full, .on_buffer_drain = ev_buffer_drain,
};

static const mw_ws_events ws_events = {
    .on_connect = ev_ws_connect, .on_close = ev_ws_close, .on_ping = ev_ws_ping, .on_pong = ev_ws_pong,
};

/* ---- properties ---- */

enum prop {
    P_NONE, P_ID, P_URL, P_PROTOCOL, P_TRANSPORT, P_MAXSEND, P_MAXPKG, P_CONNTO, P_HSTO, P_CLOSETO,
    P_PINGINT, P_PINGTO, P_WSTYPE, P_ORIGIN, P_CLIENTPROTO, P_BYTESREAD, P_BYTESWRITTEN,
};

static const struct { const char *name; enum prop p; } props[] = {
    {"id", P_ID}, {"url", P_URL}, {"protocol", P_PROTOCOL}, {"transport", P_TRANSPORT},
    {"maxSendBufferSize", P_MAXSEND}, {"maxPackageSize", P_MAXPKG},
    {"connectTimeout", P_CONNTO}, {"handshakeTimeout", P_HSTO}, {"closeTimeout", P_CLOSETO},
    {"websocketPingInterval", P_PINGINT}, {"websocketPingTimeout", P_PINGTO},
    {"websocketType", P_WSTYPE}, {"websocketOrigin", P_ORIGIN},
    {"websocketClientProtocol", P_CLIENTPROTO}, {"bytesRead", P_BYTESREAD},
    {"bytesWritten", P_BYTESWRITTEN},
};

static enum prop find_prop(const char *k)
{
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
        if (strcmp(props[i].name, k) == 0) return props[i].p;
    return P_NONE;
}

static int conn_index(lua_State *L)
{
    l_conn *lc = check_conn(L, 1);
    /* methods first (upvalue 1) */
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    if (lua_type(L, 2) == LUA_TSTRING) {
        mw_conn *c = lc->c;
        const mw_conn_opts *o = mw_conn_options(c);
        enum prop pr = find_prop(lua_tostring(L, 2));
        switch (pr) {
        case P_ID: lua_pushinteger(L, (lua_Integer)mw_conn_id(c)); return 1;
        /* the URL of the next connect: a reload may have handed it a new one */
        case P_URL: lua_pushstring(L, mw_conn_url(c)); return 1;
        case P_PROTOCOL: lua_pushstring(L, mw_url_scheme_name(mw_conn_next_url(c)->scheme)); return 1;
        case P_TRANSPORT: lua_pushstring(L, mw_tls_enabled(c) ? "ssl" : "tcp"); return 1;
        case P_MAXSEND: lua_pushinteger(L, (lua_Integer)o->max_send_buffer); return 1;
        case P_MAXPKG: lua_pushinteger(L, (lua_Integer)o->max_package); return 1;
        case P_CONNTO: lua_pushnumber(L, o->connect_timeout); return 1;
        case P_HSTO: lua_pushnumber(L, o->handshake_timeout); return 1;
        case P_CLOSETO: lua_pushnumber(L, o->close_timeout); return 1;
        case P_PINGINT: lua_pushnumber(L, mw_ws_options_get(c)->ping_interval); return 1;
        case P_PINGTO: lua_pushnumber(L, mw_ws_options_get(c)->ping_timeout); return 1;
        case P_WSTYPE: lua_pushstring(L, mw_ws_options_get(c)->binary ? ARRAYBUFFER : BLOB); return 1;
        case P_ORIGIN: lua_pushstring(L, mw_ws_options_get(c)->origin); return 1;
        case P_CLIENTPROTO: lua_pushstring(L, mw_ws_client_protocol(c)); return 1;
        case P_BYTESREAD: case P_BYTESWRITTEN: {
            uint64_t r, w;
            mw_conn_bytes(c, &r, &w);
            lua_pushinteger(L, (lua_Integer)(pr == P_BYTESREAD ? r : w));
            return 1;
        }
        case P_NONE: break;
        }
    }
    lua_getiuservalue(L, 1, 1);
    lua_pushvalue(L, 2);
    lua_rawget(L, -2);
    return 1;
}

/* The callbacks the events look up (push_cb): a value that can never be
 * called is a mistake to report now, not an event silently skipped later. */
static const char *const callbacks[] = {
    "onConnect", "onWebSocketConnect", "onMessage", "onError", "onClose", "onBufferFull",
    "onBufferDrain", "onWebSocketClose", "onWebSocketPing", "onWebSocketPong",
};

static int is_callback(const char *k)
{
    if (k[0] != 'o' || k[1] != 'n') return 0;
    for (size_t i = 0; i < sizeof callbacks / sizeof callbacks[0]; i++)
        if (strcmp(callbacks[i], k) == 0) return 1;
    return 0;
}

static void push_names(lua_State *L, const char *const *names, size_t n, const char *const *more,
                       size_t nmore, const char *field)
{
    lua_createtable(L, (int)(n + nmore), 0);
    for (size_t i = 0; i < n + nmore; i++) {
        lua_pushstring(L, i < n ? names[i] : more[i - n]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, field);
}

/* core.connFields(): the names a script can set or read on a connection
 * (properties, callbacks, options of new() alone), from the tables the
 * binding itself uses, so that a spec can hold the README to all of them. */
static int l_conn_fields(lua_State *L)
{
    const char *prop_names[sizeof props / sizeof props[0]];
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++) prop_names[i] = props[i].name;
    static const char *const user_props[] = {"headers", "context"}; /* read at connect */
    static const char *const options[] = {"name", "ssl"};
    lua_createtable(L, 0, 3);
    push_names(L, prop_names, sizeof prop_names / sizeof prop_names[0], user_props, 2, "properties");
    push_names(L, callbacks, sizeof callbacks / sizeof callbacks[0], NULL, 0, "callbacks");
    push_names(L, options, 2, NULL, 0, "options");
    return 1;
}

/* Raise msg at the script's line: the nearest Lua function on the stack
 * (the assignment, or the AsyncTcpConnection.new call whose options table
 * is being applied), not the C function that runs __newindex. */
static int raise_at_script(lua_State *L, const char *fmt, ...)
{
    l_push_script_where(L, 1);
    va_list ap;
    va_start(ap, fmt);
    lua_pushvfstring(L, fmt, ap);
    va_end(ap);
    lua_concat(L, 2);
    return lua_error(L);
}

/* The type of the value at i as luaL_typeerror names it (__name: "FILE*"). */
static const char *type_name(lua_State *L, int i)
{
    if (luaL_getmetafield(L, i, "__name") == LUA_TSTRING) return lua_tostring(L, -1);
    return lua_type(L, i) == LUA_TLIGHTUSERDATA ? "light userdata" : luaL_typename(L, i);
}

/* The value assigned to property k, checked. */
static const char *check_str(lua_State *L, const char *k)
{
    if (!lua_isstring(L, 3)) raise_at_script(L, "%s must be a string (string expected, got %s)", k, type_name(L, 3));
    return lua_tostring(L, 3);
}

static size_t check_size(lua_State *L, const char *k)
{
    int ok;
    lua_Integer v = lua_tointegerx(L, 3, &ok);
    if (!ok && lua_type(L, 3) == LUA_TNUMBER) raise_at_script(L, "%s must be an integer >= 1, got %f", k, lua_tonumber(L, 3));
    if (!ok) raise_at_script(L, "%s must be an integer >= 1 (number expected, got %s)", k, type_name(L, 3));
    if (v < 1) raise_at_script(L, "%s must be >= 1", k);
    return (size_t)v;
}

static double check_nonneg(lua_State *L, const char *k)
{
    int ok;
    lua_Number v = lua_tonumberx(L, 3, &ok);
    if (!ok) raise_at_script(L, "%s must be a number >= 0 (number expected, got %s)", k, type_name(L, 3));
    if (!(v >= 0)) raise_at_script(L, "%s must be a number >= 0", k);
    return (double)v;
}

static mw_ws_opts *ws_opts(lua_State *L, mw_conn *c)
{
    mw_ws_opts *o = mw_ws_options(c);
    if (!o) luaL_error(L, "out of memory");
    return o;
}

static int conn_newindex(lua_State *L)
{
    l_conn *lc = check_conn(L, 1);
    mw_conn *c = lc->c;
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    if (lua_isnil(L, 2) || (lua_type(L, 2) == LUA_TNUMBER && lua_tonumber(L, 2) != lua_tonumber(L, 2)))
        return raise_at_script(L, "AsyncTcpConnection field name is %s", lua_isnil(L, 2) ? "nil" : "NaN");
    if (k && is_callback(k) && !lua_isnil(L, 3) && !lua_isfunction(L, 3))
        return raise_at_script(L, "%s must be a function or nil, got %s", k, type_name(L, 3));
    switch (k ? find_prop(k) : P_NONE) {
    case P_ID: case P_URL: case P_PROTOCOL: case P_BYTESREAD: case P_BYTESWRITTEN:
        return raise_at_script(L, "%s is read-only", k);
    case P_TRANSPORT: {
        const char *t = check_str(L, k);
        int on = strcmp(t, "tcp") == 0 ? mw_conn_next_url(c)->tls : strcmp(t, "ssl") == 0 || strcmp(t, "tls") == 0 ? 1 : -1;
        if (on >= 0) {
            if (mw_tls_enable(c, on) != 0) return luaL_error(L, "out of memory");
            return 0;
        }
        return raise_at_script(L, "unknown transport \"%s\" (expected \"tcp\" or \"ssl\")", t);
    }
    case P_MAXSEND: mw_conn_options(c)->max_send_buffer = check_size(L, k); return 0;
    case P_MAXPKG: mw_conn_options(c)->max_package = check_size(L, k); return 0;
    case P_CONNTO: mw_conn_options(c)->connect_timeout = check_nonneg(L, k); return 0;
    case P_HSTO: mw_conn_options(c)->handshake_timeout = check_nonneg(L, k); return 0;
    case P_CLOSETO: mw_conn_options(c)->close_timeout = check_nonneg(L, k); return 0;
    case P_PINGINT: ws_opts(L, c)->ping_interval = check_nonneg(L, k); return 0;
    case P_PINGTO: ws_opts(L, c)->ping_timeout = check_nonneg(L, k); return 0;
    case P_WSTYPE: {
        const char *t = check_str(L, k);
        if (strcmp(t, BLOB) == 0 || strcmp(t, "blob") == 0 || strcmp(t, "text") == 0) ws_opts(L, c)->binary = 0;
        else if (strcmp(t, ARRAYBUFFER) == 0 || strcmp(t, "arraybuffer") == 0 || strcmp(t, "binary") == 0)
            ws_opts(L, c)->binary = 1;
        else return raise_at_script(L, "websocketType must be Ws.BINARY_TYPE_BLOB or Ws.BINARY_TYPE_ARRAYBUFFER");
        return 0;
    }
    case P_ORIGIN: case P_CLIENTPROTO: {
        size_t n = 0;
        const char *v = lua_isnil(L, 3) ? NULL : check_str(L, k);
        if (v) lua_tolstring(L, 3, &n);
        /* kept as C strings: a NUL would silently cut the value short */
        if (v && strlen(v) != n) return raise_at_script(L, "%s must not contain a NUL byte", k);
        if ((find_prop(k) == P_ORIGIN ? mw_ws_set_origin(c, v) : mw_ws_set_protocols(c, v)) != 0)
            return luaL_error(L, "out of memory");
        return 0;
    }
    case P_NONE: break;
    }
    /* c.onMesage = f is kept as the script's field, but said once */
    if (k && !lua_isnil(L, 3)) l_typo_check(L, 1, k, callbacks, sizeof callbacks / sizeof callbacks[0]);
    lua_getiuservalue(L, 1, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, -3);
    return 0;
}

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

static int conn_new(lua_State *L)
{
    mw_rt *rt = lua_touserdata(L, lua_upvalueindex(1));
    size_t url_len;
    const char *url = luaL_checklstring(L, 1, &url_len);
    if (strlen(url) != url_len) return luaL_argerror(L, 1, "invalid URL: it contains a NUL byte");
    if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
    if (!rt->loop.ev) return luaL_error(L, "moonwire has shut down (called from a finalizer at exit)");
    /* A closed, valid userdata first; then the resource. */
    l_conn *lc = lua_newuserdatauv(L, sizeof *lc, 1);
    memset(lc, 0, sizeof *lc);
    lc->rt = rt;
    lc->ref = LUA_NOREF;
    luaL_setmetatable(L, MW_CONN_MT);
    lua_newtable(L);
    lua_setiuservalue(L, -2, 1);
    char err[256];
    lc->c = mw_conn_new(&rt->loop, url, &mw_layers_std, &events, lc, err, sizeof err);
    if (!lc->c) return luaL_error(L, "%s", err);
    if (mw_ws_set_events(lc->c, &ws_events) != 0) return luaL_error(L, "out of memory");
    lc->seq = ++rt->conn_seq;
    link_conn(rt, lc);
    lua_getfield(L, LUA_REGISTRYINDEX, CONNS_KEY);
    lua_pushvalue(L, -2);
    lua_rawsetp(L, -2, lc);
    lua_pop(L, 1);
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
            if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "name") == 0) {
                if (!lua_isstring(L, -1))
                    return luaL_error(L, "options.name must be a string, got %s", luaL_typename(L, -1));
                free(lc->name);
                lc->name = strdup(lua_tostring(L, -1));
            }
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, ud); /* goes through __newindex */
        }
    }
    if (rt->declaring && rt->conn_declared) rt->conn_declared(L, rt, lua_gettop(L), lc);
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
        if (lc->declared && lc->script_ended && !lc->alias && !lc->in_tx && lc->rt->conn_ended)
            lc->rt->conn_ended(lc->rt, lc);
        if (!lc->alias) mw_conn_free(lc->c);
        lc->c = NULL;
    }
    free(lc->name);
    lc->name = NULL;
    return 0;
}

static int conn_tostring(lua_State *L)
{
    l_conn *lc = check_conn(L, 1);
    lua_pushfstring(L, "AsyncTcpConnection(%s, %s)", mw_conn_url(lc->c), mw_conn_status_name(mw_conn_status(lc->c)));
    return 1;
}

/* Copy conn.headers (a table name -> value) into the C connection. */
static void apply_headers(lua_State *L, l_conn *lc)
{
    lua_getiuservalue(L, 1, 1);
    lua_getfield(L, -1, "headers");
    if (lua_isnil(L, -1)) { lua_pop(L, 2); mw_conn_set_headers(lc->c, NULL, 0); return; }
    if (!lua_istable(L, -1)) luaL_error(L, "headers must be a table of name = value");
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) { n++; lua_pop(L, 1); }
    mw_header *h = lua_newuserdatauv(L, sizeof *h * (size_t)(n ? n : 1), 0);
    /* A number value becomes a new string, referenced by nothing but the
     * stack slot lua_next gave it: kept here until the copy below, or the
     * next conversion's allocation could collect it. Names and string
     * values are the headers table's own, which the stack holds. */
    lua_createtable(L, 0, 0);
    int i = 0;
    lua_pushnil(L);
    while (lua_next(L, -4)) {
        int off = lua_isboolean(L, -1) && !lua_toboolean(L, -1);   /* false: send none of it */
        if (lua_type(L, -2) != LUA_TSTRING ||
            !(off || lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER))
            luaL_error(L, "headers must map string names to string values (or false to send none)");
        int converted = lua_type(L, -1) == LUA_TNUMBER;
        h[i].name = (char *)lua_tolstring(L, -2, &h[i].name_len);
        h[i].value = off ? NULL : (char *)lua_tolstring(L, -1, &h[i].value_len);
        if (off) h[i].value_len = 0;
        if (converted) lua_rawseti(L, -3, i + 1); /* pops it into the anchor */
        else lua_pop(L, 1);
        i++;
    }
    /* A stable order: by name. */
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && strcmp(h[b - 1].name, h[b].name) > 0; b--) {
            mw_header t = h[b]; h[b] = h[b - 1]; h[b - 1] = t;
        }
    if (mw_conn_set_headers(lc->c, h, n) != 0) luaL_error(L, "out of memory");
    lua_pop(L, 4);
}

/* ---- methods ---- */

/* Whether the script ended the connection itself (a reload then leaves it
 * ended) or wants it connected. The owner (mw_conn_ud) keeps the mark: old code
 * may call through an alias a reload left it. */
static void set_ended(l_conn *lc, int ended)
{
    ((l_conn *)mw_conn_ud(lc->c))->script_ended = ended;
}

static int m_connect(lua_State *L)
{
    l_conn *lc = check_conn(L, 1);
    if (lc->rt->stopping) { lua_pushboolean(L, 0); return 1; }
    apply_headers(L, lc);
    l_tls_apply(L, 1, lc->c);
    if (lc->in_tx) {
        /* a declaration of the reload under way: connected (or matched to a
         * live connection) when the reload commits */
        lc->want_connect = 1;
        lua_pushboolean(L, 1);
        return 1;
    }
    if (mw_conn_connect(lc->c) != 0) { lua_pushboolean(L, 0); return 1; }
    set_ended(lc, 0);
    anchor(L, 1, lc);
    lua_pushboolean(L, 1);
    return 1;
}

static int do_send(lua_State *L, int kind)
{
    l_conn *lc = check_conn(L, 1);
    size_t n;
    const char *p = luaL_checklstring(L, 2, &n);
    int r = mw_conn_send(lc->c, p, n, kind);
    anchor(L, 1, lc);
    lua_pushboolean(L, r == 1);
    return 1;
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
    int was = mw_conn_status(lc->c), live = mw_conn_live(lc->c);
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
    apply_headers(L, lc);
    l_tls_apply(L, 1, lc->c);
    if (lc->in_tx) { lc->want_connect = 1; lua_pushboolean(L, 1); return 1; }
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
        {"tlsInfo", m_tls_info}, {NULL, NULL},
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
    luaL_newmetatable(L, MW_CONN_MT);
    luaL_newlib(L, methods);
    lua_pushvalue(L, -1);
    lua_setfield(L, -4, "connMethods"); /* the Lua side adds pipe() here */
    lua_pushcclosure(L, conn_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, conn_newindex);
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
    lua_createtable(L, 0, 2); /* Workerman's Ws constants, as websocketType reads them */
    lua_pushstring(L, BLOB);
    lua_setfield(L, -2, "BINARY_TYPE_BLOB");
    lua_pushstring(L, ARRAYBUFFER);
    lua_setfield(L, -2, "BINARY_TYPE_ARRAYBUFFER");
    lua_setfield(L, -2, "Ws");
    l_typo_register(L); /* the Worker's fields get the same check */
}
