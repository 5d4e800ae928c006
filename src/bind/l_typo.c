/* l_typo: a warning when a script assigns a field that looks like a callback
 * but is none (c.onMesage = f), naming the nearest real one. Knows no
 * syscalls and no frame bits. */
#include "bind.h"
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define WARNED_KEY "moonwire.misnamed" /* registry: name -> true, warned once per process */
#define NAME_MAX_LEN 64                /* longer names get no suggestion */

void l_push_script_where(lua_State *L, int level)
{
    lua_Debug ar;
    for (; lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "Sl", &ar);
        if (ar.currentline > 0) {
            lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
            return;
        }
    }
    lua_pushliteral(L, "");
}

/* Edit distance of a and b with case folded (onWebsocketClose is a typo of
 * onWebSocketClose too), or -1 when a name is too long to bother. */
static int distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na > NAME_MAX_LEN || nb > NAME_MAX_LEN) return -1;
    int row[NAME_MAX_LEN + 1];
    for (size_t j = 0; j <= nb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= na; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= nb; j++) {
            int up = row[j];
            int sub = diag + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            int best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
            row[j] = sub < best ? sub : best;
            diag = up;
        }
    }
    return row[nb];
}

/* "on" then an uppercase letter (onMesage), or a known name in the wrong
 * case (onmessage, OnMessage): what a script means as a callback. */
static int looks_like_callback(const char *k, const char *const *known, size_t n)
{
    if (tolower((unsigned char)k[0]) != 'o' || tolower((unsigned char)k[1]) != 'n') return 0;
    if (isupper((unsigned char)k[2])) return 1;
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(k, known[i]) == 0) return 1;
    return 0;
}

void l_typo_check(lua_State *L, int level, const char *k, const char *const *known, size_t n)
{
    if (!looks_like_callback(k, known, n)) return; /* first: most fields fail at k[0] */
    for (size_t i = 0; i < n; i++)
        if (strcmp(k, known[i]) == 0) return;
    if (lua_getfield(L, LUA_REGISTRYINDEX, WARNED_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, WARNED_KEY);
    }
    lua_pushstring(L, k);
    if (lua_rawget(L, -2) != LUA_TNIL) { lua_pop(L, 2); return; }
    lua_pop(L, 1);
    lua_pushstring(L, k);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    const char *best = NULL;
    int bd = -1;
    for (size_t i = 0; i < n; i++) {
        int d = distance(k, known[i]);
        if (d >= 0 && (bd < 0 || d < bd)) { bd = d; best = known[i]; }
    }
    /* a suggestion only when it is near: onTick is no typo of onClose */
    if (best && !(bd <= 2 || 4 * (size_t)bd <= strlen(best))) best = NULL;
    l_push_script_where(L, level);
    if (best)
        fprintf(stderr, "moonwire: warning: %s%s is not a moonwire callback; did you mean %s?\n",
                lua_tostring(L, -1), k, best);
    else
        fprintf(stderr, "moonwire: warning: %s%s is not a moonwire callback (kept as the script's own field)\n",
                lua_tostring(L, -1), k);
    fflush(stderr);
    lua_pop(L, 1);
}

/* core.checkCallbackName(name, known...): the same check for the Lua side's
 * objects (a Worker's fields), called from their __newindex: the line is
 * that of its caller. */
static int l_check_name(lua_State *L)
{
    const char *known[16];
    size_t n = 0;
    if (lua_type(L, 1) != LUA_TSTRING) return 0;
    for (int i = 2; i <= lua_gettop(L) && n < sizeof known / sizeof known[0]; i++)
        known[n++] = luaL_checkstring(L, i);
    l_typo_check(L, 2, lua_tostring(L, 1), known, n);
    return 0;
}

void l_typo_register(lua_State *L)
{
    lua_pushcfunction(L, l_check_name);
    lua_setfield(L, -2, "checkCallbackName");
}
