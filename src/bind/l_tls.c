/* l_tls: the binding's TLS side: `context.ssl` options copied into the C
 * connection at connect, and conn:tlsInfo(). Knows no syscalls and no wolfSSL. */
#include "bind.h"
#include "tls.h"
#include <string.h>

static int opt_bool(lua_State *L, int t, const char *k, int dflt)
{
    int ty = lua_getfield(L, t, k);
    int v = dflt;
    if (ty == LUA_TBOOLEAN) v = lua_toboolean(L, -1);
    else if (ty != LUA_TNIL) luaL_error(L, "context.ssl.%s must be a boolean", k);
    lua_pop(L, 1);
    return v;
}

/* Pushes the option and returns it. It stays on the stack until the caller
 * has copied it: the table need not hold it (an __index may make a fresh
 * string each time), and the next option's lookup may run the collector. */
static const char *opt_str(lua_State *L, int t, const char *k)
{
    int ty = lua_getfield(L, t, k);
    if (ty == LUA_TSTRING) return lua_tostring(L, -1);
    if (ty != LUA_TNIL) luaL_error(L, "context.ssl.%s must be a string", k);
    return NULL;
}

static void check_alpn_name(lua_State *L, const char *s, size_t n)
{
    if (n == 0 || n > 255 || memchr(s, ',', n))
        luaL_error(L, "context.ssl.alpn: protocol names are 1 to 255 bytes without commas");
}

/* alpn as "h2,http/1.1" or {"h2", "http/1.1"}: pushes the comma-separated
 * list (or nil) and returns it. */
static const char *opt_alpn(lua_State *L, int t)
{
    int ty = lua_getfield(L, t, "alpn");
    if (ty == LUA_TNIL) return NULL;
    if (ty == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        for (const char *p = s, *e; p <= s + n; p = e + 1) {
            e = memchr(p, ',', (size_t)(s + n - p));
            if (!e) e = s + n;
            check_alpn_name(L, p, (size_t)(e - p));
        }
        return s;
    }
    if (ty != LUA_TTABLE) luaL_error(L, "context.ssl.alpn must be a string or a list of strings");
    luaL_Buffer b;
    int list = lua_gettop(L);
    luaL_buffinit(L, &b);
    lua_Integer n = luaL_len(L, list);
    for (lua_Integer i = 1; i <= n; i++) {
        size_t len;
        /* a string, so the list (on the stack) keeps it while it is copied
         * after the pop (a number would be converted into a string that
         * nothing holds) */
        if (lua_rawgeti(L, list, i) != LUA_TSTRING) luaL_error(L, "context.ssl.alpn must be a list of strings");
        const char *s = lua_tolstring(L, -1, &len);
        check_alpn_name(L, s, len);
        lua_pop(L, 1);
        if (i > 1) luaL_addchar(&b, ',');
        luaL_addlstring(&b, s, len);
    }
    luaL_pushresult(&b);
    lua_replace(L, list);
    return n > 0 ? lua_tostring(L, list) : NULL;
}

void l_tls_apply(lua_State *L, int ud, struct mw_conn *c)
{
    int top = lua_gettop(L);
    mw_tls_opts o;
    mw_tls_opts_init(&o);
    lua_getiuservalue(L, ud, 1);
    int ty = lua_getfield(L, -1, "context");
    if (ty != LUA_TNIL && ty != LUA_TTABLE) luaL_error(L, "context must be a table");
    if (ty == LUA_TTABLE && (ty = lua_getfield(L, -1, "ssl")) != LUA_TNIL) {
        if (ty != LUA_TTABLE) luaL_error(L, "context.ssl must be a table of TLS options");
        int t = lua_gettop(L);
        luaL_checkstack(L, 8, "context.ssl");   /* the string options stay pushed */
        o.verify_peer = opt_bool(L, t, "verify_peer", 1);
        o.verify_peer_name = opt_bool(L, t, "verify_peer_name", 1);
        o.allow_self_signed = opt_bool(L, t, "allow_self_signed", 0);
        o.cafile = opt_str(L, t, "cafile");
        o.capath = opt_str(L, t, "capath");
        o.peer_name = opt_str(L, t, "peer_name");
        o.local_cert = opt_str(L, t, "local_cert");
        o.local_pk = opt_str(L, t, "local_pk");
        o.alpn = opt_alpn(L, t);
    }
    if (mw_tls_configure(c, &o) != 0) luaL_error(L, "out of memory");
    lua_settop(L, top);
}

int l_tls_push_info(lua_State *L, struct mw_conn *c)
{
    mw_tls_info i;
    if (!mw_tls_get_info(c, &i)) { lua_pushnil(L); return 1; }
    lua_createtable(L, 0, 4);
    lua_pushstring(L, i.version);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, i.cipher);
    lua_setfield(L, -2, "cipher");
    lua_pushboolean(L, i.resumed);
    lua_setfield(L, -2, "resumed");
    if (i.alpn[0]) {
        lua_pushstring(L, i.alpn);
        lua_setfield(L, -2, "alpn");
    }
    return 1;
}
