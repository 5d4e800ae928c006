/* l_fields: a connection userdata's fields (properties, callbacks, the
 * script's own) and the checks made as they are assigned. */
#ifndef MW_L_FIELDS_H
#define MW_L_FIELDS_H
#include "bind.h"

/* Workerman's Ws constants, as websocketType reads them */
#define MW_WS_BLOB "\x81"
#define MW_WS_ARRAYBUFFER "\x82"

/* A connection userdata, else the standard error. Checked by its size and
 * the address it holds of itself (set by its constructor alone: a script
 * cannot write a userdata's bytes): two API calls on the path of every
 * method call, where comparing metatables takes four and luaL_checkudata's
 * lookup by name a strcmp in Lua's string cache. */
static inline l_conn *check_conn(lua_State *L, int i)
{
    l_conn *lc = lua_touserdata(L, i);
    if (!lc || lua_rawlen(L, i) != sizeof *lc || lc->self != lc)
        lc = luaL_checkudata(L, i, MW_CONN_MT);   /* raises: the standard message */
    /* only a finalizer that resurrects a collected connection can see this */
    if (!lc->c) luaL_error(L, "AsyncTcpConnection used after it was garbage-collected");
    return lc;
}

/* The metatable's __index (the method table is its upvalue 1) and
 * __newindex. */
int l_conn_index(lua_State *L);
int l_conn_newindex(lua_State *L);
/* core.connFields(): the names a script can set or read on a connection
 * (properties, callbacks, options of new() alone), from the tables the
 * binding itself uses, so that a spec can hold the README to all of them. */
int l_conn_fields(lua_State *L);
/* Copy conn.headers (the userdata at index 1) into lc's C connection;
 * raises on a malformed table. */
void l_conn_apply_headers(lua_State *L, l_conn *lc);
/* context.socket.bindto of the userdata at index 1, when set; raises when bad. */
void l_conn_apply_socket(lua_State *L, l_conn *lc);
#endif
