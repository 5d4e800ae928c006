/* l_proxy: a connection's proxy fields: checked as they are assigned,
 * handed to the proxy stage at each connect(). The fields are the script's
 * own (the table holds them: a reload's new declaration brings its own),
 * so this file only reads them. Knows no syscalls and no frame bits. */
#include "bind.h"
#include "proxy.h"
#include "stage_proxy.h"
#include <string.h>

enum { F_PROXY, F_HTTP, F_SOCKS, F_AUTH, F_USER, F_PASS };

const char *const l_proxy_fields[6] = {
    "proxy", "proxyHttp", "proxySocks5", "proxyAuthorization", "proxySocks5Username", "proxySocks5Password",
};

static int field_of(const char *k)
{
    if (strncmp(k, "proxy", 5) != 0) return -1;
    for (int i = 0; i < 6; i++)
        if (strcmp(k, l_proxy_fields[i]) == 0) return i;
    return -1;
}

/* the kind of a setting without a scheme: SOCKS5 for proxySocks5 (the
 * proxy resolves the name, as socks5h://), else HTTP (as curl reads it) */
static int default_kind(int f) { return f == F_SOCKS ? MW_PROXY_SOCKS5H : MW_PROXY_HTTP; }

const char *l_proxy_check(lua_State *L, const char *k, int v, int *is_proxy)
{
    int f = field_of(k);
    *is_proxy = f >= 0;
    if (f < 0 || lua_isnil(L, v)) return NULL;
    if (f == F_PROXY && lua_isboolean(L, v)) return NULL;   /* false: none; true: the environment */
    if (lua_type(L, v) != LUA_TSTRING)
        return lua_pushfstring(L, "%s must be a string%s, got %s", k, f == F_PROXY ? " or false" : "",
                               luaL_typename(L, v));
    size_t n;
    const char *s = lua_tolstring(L, v, &n);
    if (strlen(s) != n) return lua_pushfstring(L, "%s must not contain a NUL byte", k);
    if (f == F_AUTH) return strpbrk(s, "\r\n") ? lua_pushfstring(L, "%s must not contain CR or LF", k) : NULL;
    if (f == F_USER || f == F_PASS) return n > 255 ? lua_pushfstring(L, "%s is longer than 255 bytes", k) : NULL;
    mw_proxy p;
    char err[200];
    if (mw_proxy_parse(s, default_kind(f), &p, err, sizeof err) != 0) return lua_pushfstring(L, "%s: %s", k, err);
    if (f == F_HTTP && p.kind != MW_PROXY_HTTP)
        return lua_pushfstring(L, "%s takes an http:// proxy (use proxySocks5 or proxy for SOCKS)", k);
    if (f == F_SOCKS && p.kind == MW_PROXY_HTTP)
        return lua_pushfstring(L, "%s takes a socks5:// or socks5h:// proxy (use proxyHttp or proxy for HTTP)", k);
    return NULL;
}

/* The field's string (NULL when not a string); the value stays pushed. */
static const char *get(lua_State *L, int t, int f, int *type)
{
    *type = lua_getfield(L, t, l_proxy_fields[f]);
    return *type == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
}

void l_proxy_apply(lua_State *L, int ud, struct mw_conn *c)
{
    int top = lua_gettop(L);
    lua_getiuservalue(L, ud, 1);
    int t = lua_gettop(L), ty;
    mw_proxy_setting set = { MW_PROXY_FROM_ENV, NULL, 0, NULL, NULL, NULL };
    /* precedence: proxy, then proxyHttp, then proxySocks5, then the environment */
    const char *v = get(L, t, F_PROXY, &ty);
    if (ty == LUA_TBOOLEAN && !lua_toboolean(L, -1)) set.mode = MW_PROXY_OFF;
    for (int f = F_PROXY; f <= F_SOCKS && set.mode == MW_PROXY_FROM_ENV; f++) {
        if (f != F_PROXY) v = get(L, t, f, &ty);
        if (v) { set.mode = MW_PROXY_SET; set.spec = v; set.default_kind = default_kind(f); }
    }
    set.authorization = get(L, t, F_AUTH, &ty);
    set.user = get(L, t, F_USER, &ty);
    set.pass = get(L, t, F_PASS, &ty);
    if (mw_proxy_configure(c, &set) != 0) luaL_error(L, "out of memory");
    lua_settop(L, top);
}
