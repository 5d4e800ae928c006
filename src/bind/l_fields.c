/* l_fields: a connection's fields as the script sees them: the properties
 * backed by the C connection (checked as they are assigned), the callbacks,
 * the script's own fields, and the headers read at connect.
 * Knows no syscalls and no frame bits. */
#include "l_fields.h"
#include "conn.h"
#include "headers.h"
#include "proto_ws.h"
#include "tls.h"
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum prop {
    P_NONE, P_ID, P_URL, P_PROTOCOL, P_TRANSPORT, P_MAXSEND, P_MAXPKG, P_CONNTO, P_HSTO, P_CLOSETO,
    P_PINGINT, P_PINGTO, P_WSTYPE, P_ORIGIN, P_CLIENTPROTO, P_BYTESREAD, P_BYTESWRITTEN,
    P_COMPRESSION, P_EXTENSIONS, P_ZLIB, P_HEDELAY, P_BINDTO, P_FOLLOW,
};

static const struct { const char *name; enum prop p; } props[] = {
    {"id", P_ID}, {"url", P_URL}, {"protocol", P_PROTOCOL}, {"transport", P_TRANSPORT},
    {"maxSendBufferSize", P_MAXSEND}, {"maxPackageSize", P_MAXPKG},
    {"connectTimeout", P_CONNTO}, {"handshakeTimeout", P_HSTO}, {"closeTimeout", P_CLOSETO},
    {"websocketPingInterval", P_PINGINT}, {"websocketPingTimeout", P_PINGTO},
    {"websocketType", P_WSTYPE}, {"websocketOrigin", P_ORIGIN},
    {"websocketClientProtocol", P_CLIENTPROTO}, {"bytesRead", P_BYTESREAD},
    {"bytesWritten", P_BYTESWRITTEN}, {"websocketCompression", P_COMPRESSION},
    {"websocketExtensions", P_EXTENSIONS}, {"websocketCompressionMemory", P_ZLIB},
    {"happyEyeballsDelay", P_HEDELAY}, {"bindto", P_BINDTO}, {"followRedirects", P_FOLLOW},
};

/* websocketCompression's table, and how each field reads and writes the
 * C option (window bits: a number 8..15; client_max_window_bits also true,
 * offered without a value, or false, not offered). */
enum dkind { D_CLIENT_BITS, D_SERVER_BITS, D_BOOL, D_INT, D_SIZE };
static const struct { const char *name; enum dkind k; size_t off; } dfields[] = {
    {"client_max_window_bits", D_CLIENT_BITS, offsetof(mw_ws_deflate, client_max_window_bits)},
    {"server_max_window_bits", D_SERVER_BITS, offsetof(mw_ws_deflate, server_max_window_bits)},
    {"client_no_context_takeover", D_BOOL, offsetof(mw_ws_deflate, client_no_context_takeover)},
    {"server_no_context_takeover", D_BOOL, offsetof(mw_ws_deflate, server_no_context_takeover)},
    {"level", D_INT, offsetof(mw_ws_deflate, level)},
    {"memLevel", D_INT, offsetof(mw_ws_deflate, mem_level)},
    {"threshold", D_SIZE, offsetof(mw_ws_deflate, threshold)},
};

/* Push conn.websocketCompression: false when off, else a table of what is
 * offered, defaults filled in. */
static void push_deflate(lua_State *L, const mw_ws_deflate *d)
{
    if (d->off) { lua_pushboolean(L, 0); return; }
    lua_createtable(L, 0, 7);
    if (d->client_max_window_bits > 0) lua_pushinteger(L, d->client_max_window_bits);
    else lua_pushboolean(L, d->client_max_window_bits == 0);
    lua_setfield(L, -2, "client_max_window_bits");
    if (d->server_max_window_bits > 0) {
        lua_pushinteger(L, d->server_max_window_bits);
        lua_setfield(L, -2, "server_max_window_bits");
    }
    lua_pushboolean(L, d->client_no_context_takeover);
    lua_setfield(L, -2, "client_no_context_takeover");
    lua_pushboolean(L, d->server_no_context_takeover);
    lua_setfield(L, -2, "server_no_context_takeover");
    lua_pushinteger(L, d->level ? d->level : MW_WS_DEFLATE_LEVEL);
    lua_setfield(L, -2, "level");
    lua_pushinteger(L, d->mem_level ? d->mem_level : MW_WS_DEFLATE_MEM_LEVEL);
    lua_setfield(L, -2, "memLevel");
    lua_pushinteger(L, (lua_Integer)(d->threshold ? d->threshold : MW_WS_DEFLATE_THRESHOLD));
    lua_setfield(L, -2, "threshold");
}

static enum prop find_prop(const char *k)
{
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++)
        if (strcmp(props[i].name, k) == 0) return props[i].p;
    return P_NONE;
}

int l_conn_index(lua_State *L)
{
    /* methods first (upvalue 1): this __index belongs to the connections'
     * metatable alone, and each method checks its own argument, so a method
     * call (once per message for receive) skips the check here */
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    lua_pop(L, 1);
    l_conn *lc = check_conn(L, 1);
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
        case P_HEDELAY: lua_pushnumber(L, o->attempt_delay); return 1;
        case P_FOLLOW: lua_pushinteger(L, mw_ws_options_get(c)->follow_redirects); return 1;
        case P_BINDTO: if (o->bindto[0]) lua_pushstring(L, o->bindto); else lua_pushnil(L); return 1;
        case P_PINGINT: lua_pushnumber(L, mw_ws_options_get(c)->ping_interval); return 1;
        case P_PINGTO: lua_pushnumber(L, mw_ws_options_get(c)->ping_timeout); return 1;
        case P_WSTYPE: lua_pushstring(L, mw_ws_options_get(c)->binary ? MW_WS_ARRAYBUFFER : MW_WS_BLOB); return 1;
        case P_ORIGIN: lua_pushstring(L, mw_ws_options_get(c)->origin); return 1;
        case P_CLIENTPROTO: lua_pushstring(L, mw_ws_client_protocol(c)); return 1;
        case P_COMPRESSION: push_deflate(L, &mw_ws_options_get(c)->deflate); return 1;
        case P_EXTENSIONS: lua_pushstring(L, mw_ws_extensions(c)); return 1;
        case P_ZLIB: lua_pushinteger(L, (lua_Integer)mw_ws_zlib_bytes(c, NULL)); return 1;
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
    "onBufferDrain", "onWebSocketClose", "onWebSocketPing", "onWebSocketPong", "onReconnect",
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
int l_conn_fields(lua_State *L)
{
    const char *prop_names[sizeof props / sizeof props[0]];
    for (size_t i = 0; i < sizeof props / sizeof props[0]; i++) prop_names[i] = props[i].name;
    /* read at connect */
    const char *user_props[3 + sizeof l_proxy_fields / sizeof l_proxy_fields[0]] = {"headers", "context", "reconnect"};
    for (size_t i = 0; i < sizeof l_proxy_fields / sizeof l_proxy_fields[0]; i++) user_props[3 + i] = l_proxy_fields[i];
    static const char *const options[] = {"name", "ssl"};
    lua_createtable(L, 0, 3);
    push_names(L, prop_names, sizeof prop_names / sizeof prop_names[0], user_props,
               sizeof user_props / sizeof user_props[0], "properties");
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

/* conn.websocketCompression = true | false | {field = value, ...}: the
 * whole setting at once (fields not named take their defaults). */
static void set_deflate(lua_State *L, mw_conn *c)
{
    mw_ws_deflate d = {0};
    if (lua_isboolean(L, 3)) d.off = !lua_toboolean(L, 3);
    else if (!lua_istable(L, 3))
        raise_at_script(L, "websocketCompression must be true, false or a table (got %s)", type_name(L, 3));
    else {
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            size_t i = 0, n = sizeof dfields / sizeof dfields[0];
            while (k && i < n && strcmp(dfields[i].name, k) != 0) i++;
            if (!k || i == n)
                raise_at_script(L, "websocketCompression: unknown field %s (expected client_max_window_bits, "
                    "server_max_window_bits, client_no_context_takeover, server_no_context_takeover, level, "
                    "memLevel or threshold)", k ? k : luaL_typename(L, -2));
            char *at = (char *)&d + dfields[i].off;
            int isint, t = lua_type(L, -1);
            lua_Integer v = lua_tointegerx(L, -1, &isint);
            if (dfields[i].k == D_BOOL || (dfields[i].k == D_CLIENT_BITS && t == LUA_TBOOLEAN)) {
                if (t != LUA_TBOOLEAN) raise_at_script(L, "websocketCompression.%s must be a boolean", k);
                int b = lua_toboolean(L, -1);
                *(int *)at = dfields[i].k == D_BOOL ? b : b ? 0 : -1;
            } else if (!isint || v < 0 || v > 1 << 30) {
                raise_at_script(L, "websocketCompression.%s must be %s", k,
                    dfields[i].k == D_SIZE ? "an integer >= 0" : dfields[i].k == D_INT ? "an integer 1..9"
                    : "an integer 8..15");
            } else if (dfields[i].k == D_SIZE) {
                *(size_t *)at = v ? (size_t)v : 1; /* 0 in the C option is the default */
            } else {
                if (v == 0) raise_at_script(L, "websocketCompression.%s must be %s", k,
                    dfields[i].k == D_INT ? "an integer 1..9" : "an integer 8..15");
                *(int *)at = (int)v;
            }
            lua_pop(L, 1);
        }
    }
    char msg[160];
    if (mw_ws_deflate_check(&d, msg, sizeof msg) != 0) raise_at_script(L, "websocketCompression: %s", msg);
    mw_ws_opts *o = mw_ws_options(c);
    if (!o) luaL_error(L, "out of memory");
    o->deflate = d;
}

int l_conn_newindex(lua_State *L)
{
    l_conn *lc = check_conn(L, 1);
    mw_conn *c = lc->c;
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    if (lua_isnil(L, 2) || (lua_type(L, 2) == LUA_TNUMBER && lua_tonumber(L, 2) != lua_tonumber(L, 2)))
        return raise_at_script(L, "AsyncTcpConnection field name is %s", lua_isnil(L, 2) ? "nil" : "NaN");
    if (k && is_callback(k) && !lua_isnil(L, 3) && !lua_isfunction(L, 3))
        return raise_at_script(L, "%s must be a function or nil, got %s", k, type_name(L, 3));
    switch (k ? find_prop(k) : P_NONE) {
    case P_ID: case P_URL: case P_PROTOCOL: case P_BYTESREAD: case P_BYTESWRITTEN: case P_EXTENSIONS: case P_ZLIB:
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
    case P_HEDELAY: {
        double d = check_nonneg(L, k);
        if (d < 0.01 || d > 2) return raise_at_script(L, "happyEyeballsDelay must be 0.01..2 seconds (RFC 8305: 0.25)");
        mw_conn_options(c)->attempt_delay = d;
        return 0;
    }
    case P_FOLLOW: {
        int ok;
        lua_Integer v = lua_tointegerx(L, 3, &ok);
        if (!ok || v < 0 || v > 20) return raise_at_script(L, "followRedirects must be an integer 0..20");
        ws_opts(L, c)->follow_redirects = (int)v;
        return 0;
    }
    case P_BINDTO: {
        char err[160];
        if (!lua_isnil(L, 3) && lua_type(L, 3) != LUA_TSTRING)
            return raise_at_script(L, "bindto must be a string (string expected, got %s)", type_name(L, 3));
        const char *v = lua_isnil(L, 3) ? "" : lua_tostring(L, 3);
        if (*v && mw_conn_check_bindto(v, err, sizeof err) != 0) return raise_at_script(L, "bindto: %s", err);
        snprintf(mw_conn_options(c)->bindto, sizeof mw_conn_options(c)->bindto, "%s", v);
        return 0;
    }
    case P_PINGINT: ws_opts(L, c)->ping_interval = check_nonneg(L, k); return 0;
    case P_PINGTO: ws_opts(L, c)->ping_timeout = check_nonneg(L, k); return 0;
    case P_WSTYPE: {
        const char *t = check_str(L, k);
        if (strcmp(t, MW_WS_BLOB) == 0 || strcmp(t, "blob") == 0 || strcmp(t, "text") == 0) ws_opts(L, c)->binary = 0;
        else if (strcmp(t, MW_WS_ARRAYBUFFER) == 0 || strcmp(t, "arraybuffer") == 0 || strcmp(t, "binary") == 0)
            ws_opts(L, c)->binary = 1;
        else return raise_at_script(L, "websocketType must be Ws.BINARY_TYPE_MW_WS_BLOB or Ws.BINARY_TYPE_MW_WS_ARRAYBUFFER");
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
    case P_COMPRESSION: set_deflate(L, c); return 0;
    case P_NONE: break;
    }
    int is_proxy = 0;
    const char *bad = k ? l_proxy_check(L, k, 3, &is_proxy) : NULL;
    if (!bad && k && strcmp(k, "reconnect") == 0) bad = l_retry_check(L, 3);
    if (bad) return raise_at_script(L, "%s", bad);
    /* c.onMesage = f is kept as the script's field, but said once */
    if (k && !is_proxy && !lua_isnil(L, 3)) l_typo_check(L, 1, k, callbacks, sizeof callbacks / sizeof callbacks[0]);
    lua_getiuservalue(L, 1, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_rawset(L, -3);
    return 0;
}

/* Workerman's socket context option: context.socket.bindto, read at connect
 * (over the bindto field when both are set). */
void l_conn_apply_socket(lua_State *L, l_conn *lc)
{
    int top = lua_gettop(L);
    lua_getiuservalue(L, 1, 1);
    if (lua_getfield(L, -1, "context") == LUA_TTABLE && lua_getfield(L, -1, "socket") == LUA_TTABLE &&
        lua_getfield(L, -1, "bindto") != LUA_TNIL) {
        char err[160];
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "context.socket.bindto must be a string");
        const char *v = lua_tostring(L, -1);
        if (mw_conn_check_bindto(v, err, sizeof err) != 0) luaL_error(L, "context.socket.bindto: %s", err);
        snprintf(mw_conn_options(lc->c)->bindto, sizeof mw_conn_options(lc->c)->bindto, "%s", v);
    }
    lua_settop(L, top);
}

/* Copy conn.headers (a table name -> value) into the C connection. */
void l_conn_apply_headers(lua_State *L, l_conn *lc)
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

/* ---- callbacks, as the events look them up ---- */

/* Push the script's callback `name` and the connection; 0 when none. */
int l_conn_push_cb_at(l_conn *lc, const char *name, int ref)
{
    lua_State *L = lc->rt->L;
    if (lc->ref == LUA_NOREF) return 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, lc->ref);
    /* raw, outside any protected call: debug.setmetatable can give the
     * field table an __index that raises (as cheap as lua_getfield) */
    lua_getiuservalue(L, -1, 1);
    if (ref) lua_rawgeti(L, LUA_REGISTRYINDEX, ref); else lua_pushstring(L, name);
    if (lua_rawget(L, -2) != LUA_TFUNCTION) { lua_pop(L, 3); return 0; }
    /* ud uv fn -> fn ud, by copies (no rotation: this runs per message) */
    lua_copy(L, -1, -3);
    lua_pop(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, lc->ref);
    lua_replace(L, -2);
    return 1;
}

/* The coroutine layer's hook (lua/moonwire/co.lua), a hidden field set on a
 * connection that a coroutine waits on: hook(conn, event, a, b) after the
 * script's own callback; for messages only when there is no onMessage. */
#define CO_HOOK "\1co"

int l_conn_push_hook(l_conn *lc, const char *event)
{
    if (!l_conn_push_cb_at(lc, CO_HOOK, 0)) return 0;
    lua_pushstring(lc->rt->L, event);
    return 1;
}

/* The function at index 1 into the registry slot *ref (the old one let go). */
int l_set_fn_ref(lua_State *L, int *ref)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    if (*ref) luaL_unref(L, LUA_REGISTRYINDEX, *ref);
    lua_settop(L, 1);
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}
