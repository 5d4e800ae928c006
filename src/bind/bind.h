/* bind: the Lua binding's shared runtime: the one door from C into Lua,
 * error reporting, the loop it drives, the registry of live connections.
 * Knows no syscalls and no frame bits. */
#ifndef MW_BIND_H
#define MW_BIND_H
#include <lua.h>
#include <lauxlib.h>
#include "loop.h"

typedef struct l_conn l_conn;

typedef struct mw_rt {
    lua_State *L;          /* the main thread: every callback runs on it */
    mw_loop loop;
    int hosted;            /* run by the moonwire binary (which runs the loop) */
    int stopping;          /* stopAll or a signal: no new connects or reconnects */
    int timers_ref;        /* registry: id -> timer userdata */
    lua_Integer next_timer_id;
    l_conn *conns;         /* every connection userdata alive */
    int exit_code;
    int loop_running;
    int nerrors;           /* callback errors reported so far */
} mw_rt;

#define MW_RT_KEY "moonwire.rt"
#define MW_CONN_MT "moonwire.AsyncTcpConnection"
#define MW_TIMER_MT "moonwire.Timer"

/* The runtime of this Lua state (created by luaopen_moonwire_core). */
mw_rt *mw_rt_get(lua_State *L);
/* The one door: calls the function below nargs arguments on rt->L with a
 * traceback handler; an error is printed to stderr (with `what` naming the
 * callback) and swallowed. Leaves nresults values (nil-filled on error).
 * Returns 0 on success, -1 when the callback raised. */
int mw_rt_call(mw_rt *rt, int nargs, int nresults, const char *what);
/* Report an error value on top of the stack (pops it). */
void mw_rt_report(mw_rt *rt, const char *what);
/* Message handler that appends a traceback: for lua_pcall in the host too. */
int mw_traceback(lua_State *L);
/* Graceful stop: onWorkerStop hook, timers deleted, reconnects cancelled,
 * connections closed (ws with 1001), then the loop ends once they are. */
void mw_rt_stop(mw_rt *rt);
/* Run the loop until nothing is active or stop. */
void mw_rt_run(mw_rt *rt);

/* l_conn.c */
void l_conn_register(lua_State *L, mw_rt *rt);
void l_conn_stop_all(mw_rt *rt);
/* l_timer.c */
void l_timer_register(lua_State *L, mw_rt *rt);
void l_timer_del_all(mw_rt *rt);

int luaopen_moonwire_core(lua_State *L);
/* Put the embedded lua/moonwire modules into package.preload. */
void mw_preload_embedded(lua_State *L);
#endif
