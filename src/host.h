/* host: the Lua host: the Lua state, the one door from C into Lua (every
 * callback, timer, reload and the host's own chunks: -e, the main script),
 * SIGINT/SIGTERM interruption of running Lua code, and the reporter.
 * Knows no connection, no binding (src/bind/ builds on it) and no frame bits. */
#ifndef MW_HOST_H
#define MW_HOST_H

typedef struct lua_State lua_State;
typedef struct mw_host mw_host;
struct mw_loop;

/* ---- the program's state (the moonwire binary) ---- */

/* A new Lua state with the standard libraries, marked hosted (the host runs
 * the loop), open(L) called (it preloads the library), package.path and
 * cpath led by the script's directory, and `arg` as lua(1) sets it:
 * argv[script_idx] is arg[0] (script_idx < 0: no script, only -e chunks;
 * then the directory is "." and arg[0] the program). Raises the process's descriptor limit to its
 * hard limit. NULL when out of memory (printed). */
mw_host *mw_host_new(int argc, char **argv, int script_idx, void (*open)(lua_State *L));
/* lua_close(): every finalizer runs; h is gone. */
void mw_host_close(mw_host *h);
lua_State *mw_host_lua(mw_host *h);

/* The host's own chunks, through the door: 0, or -1 once the error (a
 * syntax error, a missing file, a runtime error with its traceback) was
 * printed as "moonwire: <message>". SIGINT/SIGTERM interrupt them (once
 * they have loaded moonwire, which watches the signals). */
int mw_host_do_string(mw_host *h, const char *chunk);
/* path "-" is stdin; args[0..n) are the chunk's arguments (`...`). */
int mw_host_do_file(mw_host *h, const char *path, char **args, int n);
/* Load and compile only. */
int mw_host_check(mw_host *h, const char *path);

/* ---- for the binding ---- */

/* The host of this state (its main thread's); made on first use for a
 * state that no moonwire binary made (a stock lua5.4 with the C module):
 * that host is not hosted. Raises only when out of memory. */
mw_host *mw_host_get(lua_State *L);
/* The moonwire binary made this state (and runs the loop). */
int mw_host_hosted(const mw_host *h);

/* The one door: calls the function below nargs arguments on thread L (the
 * main thread for every callback; a caller's thread for a call it makes)
 * with a traceback handler. An error is reported, `what` naming the
 * callback ("onMessage", "timer", "reload": "moonwire: error in <what>: "),
 * and swallowed; what == NULL is a chunk of the host's own ("moonwire: ").
 * Leaves nresults values (nil-filled on error). Returns 0, or -1 when the
 * function raised. */
int mw_host_call(mw_host *h, lua_State *L, int nargs, int nresults, const char *what);
/* Report the error value on top of L (popped) as the door does. An error
 * of a callback (what != NULL) that repeats one printed less than a second
 * ago is only counted, and a line once a second sums the count up. */
void mw_host_report(mw_host *h, lua_State *L, const char *what);

/* The loop runs callbacks: one traceback handler (pushed now on the main
 * thread's stack, in the caller's frame) serves every call the loop makes
 * through the door. _end pops it; call it from the same frame. */
void mw_host_loop_begin(mw_host *h);
/* Also prints the pending counts of a flood: no tick will come. */
void mw_host_loop_end(mw_host *h);
int mw_host_in_loop(const mw_host *h);
/* The reporter's flood window runs on this loop; NULL (before the loop is
 * closed) prints the pending counts and frees the reporter's state. Until a
 * loop is set every error is printed in full. */
void mw_host_set_loop(mw_host *h, struct mw_loop *loop);
/* Print the pending counts now and forget every error seen: after a
 * reload, the new code's errors are new even when their text is the old one's. */
void mw_host_errors_reset(mw_host *h);
/* From the real SIGINT/SIGTERM handler (async-signal-safe): Lua code that
 * is running (a callback, a chunk of the host's, or, without the binary,
 * the script's code around a finished loop) raises "interrupted" once it
 * has run on for half a second. The loop between callbacks is left alone. */
void mw_host_interrupt(mw_host *h);
#endif
