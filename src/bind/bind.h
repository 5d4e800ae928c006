/* bind: the Lua binding's shared runtime: the loop it drives, the registry
 * of live connections; the one door into Lua is the host's (host.h).
 * Knows no syscalls and no frame bits. */
#ifndef MW_BIND_H
#define MW_BIND_H
#include <lua.h>
#include <lauxlib.h>
#include <signal.h>
#include "buf.h"
#include "host.h"
#include "loop.h"

typedef struct l_conn l_conn;
struct mw_conn;
struct mw_watch;
struct mw_rt;

/* What hot reload keeps of a connection. Written by l_reload.c (through the
 * runtime's hooks), read by l_conn.c; script_ended is l_conn's to set. */
typedef struct l_decl {
    unsigned long seq;      /* creation order, for matching on reload */
    int declared;           /* made by the script's top level or onWorkerStart */
    int in_tx;              /* a declaration of the reload under way */
    int want_connect;       /* connect() called on it during that reload */
    int matched;            /* held by a declaration of that reload (live ones: taken by one) */
    int from_record;        /* new declaration that matched an ended, collected one */
    int script_ended;       /* the script ended it (close, finish, destroy, cancelReconnect):
                             * a reload does not connect it again */
    /* While a reload's declaration is matched to this live connection, the
     * userdata's C connection and field table are the declaration's own
     * (staged: what the new script sets goes there); the live ones wait here
     * and take the staged options and fields at commit. */
    struct mw_conn *live_c;
    int live_fields;        /* registry ref of the live field table */
} l_decl;

/* What the reconnect policy (l_retry.c) keeps between attempts. */
typedef struct l_retry {
    int attempt;            /* reconnects since the last connection that stayed up */
    int code;               /* the last error's kind since the last connect, 0 none */
    int status;             /* its HTTP status (a refused handshake), 0 none */
    long retry_after;       /* the refusal's Retry-After seconds, -1 none */
    double up_since;        /* when the current connection opened, 0 not open */
    int scheduled;          /* the pending reconnect is the policy's (close() cancels it) */
    char why[320];          /* the last error's message */
} l_retry;

/* The messages a coroutine reads with conn:receive() (l_conn.c): records of
 * a 4-byte length, a kind byte and the bytes, appended by the message event
 * without calling Lua and taken by receive in C. */
typedef struct l_rxq {
    mw_buf buf;
    size_t count, bytes;      /* queued */
    size_t max_count, max_bytes;
    int on;                   /* co.lua uses the queue (else no onMessage: dropped) */
    int waiting;              /* a coroutine waits: the hook hears of each new message */
    int paused;               /* reading paused by the queue's limits */
} l_rxq;

/* A connection userdata: one for the connection's whole life, reloads
 * included (a reload's matching declaration returns the same userdata). */
struct l_conn {
    const l_conn *self;     /* its own address: check_conn's proof that a userdata is one */
    struct mw_conn *c;
    struct mw_rt *rt;
    int ref;                /* registry anchor while the connection is active */
    l_conn *next, *prev;    /* rt->conns */
    char *name;             /* options.name */
    l_decl decl;
    l_retry retry;
    l_rxq rxq;
};

/* A declared connection the script ended, whose userdata was collected: a
 * reload matches its declaration to this record (which then holds the
 * place) and does not connect it. A commit drops every record. */
typedef struct l_ended {
    struct l_ended *next;
    unsigned long seq;
    int scheme;             /* of the URL it would connect to */
    char *name;             /* options.name, or NULL */
    char *url;
    int claimed;            /* matched by the reload under way */
} l_ended;

typedef struct mw_rt {
    lua_State *L;          /* the main thread: every callback runs on it */
    mw_host *host;         /* its door, reporter and interruption */
    mw_loop loop;
    int stopping;          /* stopAll or a signal: no new connects or reconnects */
    int exit_code;         /* core.setExitCode */
    int worker_id;         /* this process's worker id: 0, or 0..count-1 with worker.count > 1 */
    int send_waiter;       /* registry ref of co.lua's wait for a drained send queue, 0 none */
    int receiver;          /* registry ref of co.lua's waiting receive, 0 none */
    /* strings the per-message paths push, by registry ref: lua_pushstring
     * of a literal costs a strcmp in Lua's string cache each time */
    int s_onmessage, s_text, s_binary;
    int timers_ref;        /* registry: id -> timer userdata */
    lua_Integer next_timer_id;
    l_conn *conns;         /* every connection userdata alive */
    int declaring;         /* running the script's top level or onWorkerStart */
    int reloading;         /* a reload transaction is under way */
    unsigned long conn_seq;
    l_ended *ended;        /* records of collected declared connections the script ended */
    int tx_ref;            /* registry: this reload's declarations {conns = {}, timers = {}} */
    int spent_ref;         /* registry: id -> interval of declared one-shot timers that fired
                            * or were deleted; a reload does not start them again */
    char *script;          /* path of the main script, for reload */
    int args_ref;          /* registry: its arguments */
    struct mw_watch *watch;
    struct mw_stdin *stdin_src; /* mw.stdin, once a script reads it */
    int stdin_ref;             /* its Lua function (registry), 0 none */
    struct mw_tty *tty;        /* the -c / -i prompt on a terminal */
    int tty_ref;               /* its Lua function (registry), 0 none */
    int sigint_ref;            /* core.onInterrupt's function (registry), 0 none */
    int tty_sigint;            /* SIGINT clears the prompt's line instead of stopping (-i) */
    struct l_metrics *metrics; /* l_metrics.c: counters of collected connections, reports */
    mw_task reload_task;   /* mw.reload() and SIGHUP run the reload from the loop */
    /* Set by l_reload_register, which sits above connections and the runtime
     * (they call up through these, never by name). conn_match: a declaration
     * of url (options.name `name`, or NULL) is being made during a reload:
     * push and return the live userdata it matches, now staged, or return
     * NULL (nothing pushed; *ended set when it matched the record of an
     * ended one). conn_declared: a new connection was made while declaring.
     * conn_ended: lc, a declared connection the script ended, is collected
     * (keep its record). at_close: the runtime closes. */
    l_conn *(*conn_match)(lua_State *L, struct mw_rt *rt, const char *url, const char *name, int *ended);
    void (*conn_declared)(lua_State *L, struct mw_rt *rt, int idx, l_conn *lc, int ended);
    void (*conn_ended)(struct mw_rt *rt, const l_conn *lc);
    void (*at_close)(struct mw_rt *rt);
} mw_rt;

#define MW_RT_KEY "moonwire.rt"
#define MW_CONN_MT "moonwire.AsyncTcpConnection"
#define MW_TIMER_MT "moonwire.Timer"

/* The runtime of this Lua state (created by luaopen_moonwire_core). */
mw_rt *mw_rt_get(lua_State *L);
/* The door (mw_host_call) on the main thread, for a callback named `what`:
 * 0, or -1 once the error was reported; nresults values either way. */
static inline int mw_rt_call(mw_rt *rt, int nargs, int nresults, const char *what)
{
    return mw_host_call(rt->host, rt->L, nargs, nresults, what);
}
/* Graceful stop: onWorkerStop hook, timers deleted, reconnects cancelled,
 * connections closed (ws with 1001), then the loop ends once they are. */
void mw_rt_stop(mw_rt *rt);
/* Run the loop until nothing is active or stop; a loop that ended by itself
 * still runs the stop (onWorkerStop runs on every way out, once). */
void mw_rt_run(mw_rt *rt);
/* The moonwire binary: the main script has run (its top level declared
 * what it declares): remember it and its args[0..n) for reloads, and with
 * watch watch it. A script that did not load moonwire has nothing to reload. */
void mw_rt_script_ran(lua_State *L, const char *script, char **args, int n, int watch);
/* The moonwire binary: run the loop, when the script loaded moonwire; the
 * exit status a script asked for (core.setExitCode), else 0. */
int mw_rt_run_hosted(lua_State *L);

/* In a __gc: whether the script called it (debug.getmetatable(x).__gc(x)),
 * with a caller on the stack, rather than lua_close(), which runs the
 * finalizers with the call stack unwound. The collector's own cycles are
 * told apart by the object's registration (a weak entry is cleared before
 * its finalizer runs; a strong one keeps it from being collected). */
static inline int mw_gc_called_by_script(lua_State *L)
{
    lua_Debug ar;
    return lua_getstack(L, 1, &ar) != 0;
}

/* l_conn.c */
void l_conn_register(lua_State *L, mw_rt *rt);
void l_conn_stop_all(mw_rt *rt);
void l_conn_anchor(lua_State *L, int idx, l_conn *lc);
void l_conn_release(l_conn *lc);
/* A new C connection to url with the binding's events for lc (set later
 * with mw_conn_set_ud when NULL); raises on a malformed URL or no memory. */
struct mw_conn *l_conn_new_c(lua_State *L, struct mw_rt *rt, l_conn *lc, const char *url);
/* Push lc's userdata and return 1, or return 0 (nothing pushed) when it is
 * unreachable (being collected). */
int l_conn_push(lua_State *L, l_conn *lc);
/* l_fields.c: lc's field name (ref: a registry reference to the name's string, or 0),
 * pushed with the connection under it as fn, conn, when it is a function; 0
 * (nothing pushed) otherwise. */
int l_conn_push_cb_at(l_conn *lc, const char *name, int ref);
/* The coroutine layer's hook and the event's name, pushed; 0 without one. */
int l_conn_push_hook(l_conn *lc, const char *event);
/* The function at index 1 into the registry slot *ref (the old one let go). */
int l_set_fn_ref(lua_State *L, int *ref);
/* l_recv.c: the message events, conn:receive(), and core's rx* functions. */
struct mw_msg;
void l_conn_ev_message(void *ud, const char *p, size_t n, int kind);
size_t l_conn_ev_messages(void *ud, const struct mw_msg *v, size_t n);
int l_conn_receive(lua_State *L);
void l_recv_register(lua_State *L, mw_rt *rt);
/* l_typo.c */
/* Push "src:line: " of the nearest Lua function with a line from stack
 * level `level` up (the script's assignment, or its AsyncTcpConnection.new
 * call), or "". */
void l_push_script_where(lua_State *L, int level);
/* k is assigned as a field of an object whose callbacks are known[0..n): when
 * k is none of them yet looks like one ("on" and an uppercase letter, or one
 * in the wrong case), print a warning with the nearest, once per name; the
 * line is found from stack level `level` up. */
void l_typo_check(lua_State *L, int level, const char *k, const char *const *known, size_t n);
/* Set core.checkCallbackName (the same, for the Lua side) in the table on top. */
void l_typo_register(lua_State *L);
/* l_tls.c */
struct mw_conn;
/* Copy the userdata's (at index ud) context.ssl options into the C
 * connection for its next connect; raises on a malformed option. */
void l_tls_apply(lua_State *L, int ud, struct mw_conn *c);
/* Push conn:tlsInfo(): {version=, cipher=, resumed=, alpn=} of the current
 * (once closed, the last) connection's TLS handshake, or nil before it completes. */
int l_tls_push_info(lua_State *L, struct mw_conn *c);
/* l_proxy.c */
/* When k is one of the proxy fields (proxy, proxyHttp, proxySocks5,
 * proxyAuthorization, proxySocks5Username, proxySocks5Password): NULL when
 * the value at index v is valid for it, else why not (pushed on the
 * stack). Sets *is_proxy. */
const char *l_proxy_check(lua_State *L, const char *k, int v, int *is_proxy);
/* The proxy fields of the userdata at index ud, into the C connection for
 * its next connect (the environment when none is set). */
void l_proxy_apply(lua_State *L, int ud, struct mw_conn *c);
/* The proxy fields' names, for core.connFields(). */
extern const char *const l_proxy_fields[6];
/* l_retry.c: the reconnect policy, conn.reconnect */
/* NULL when the value at index v is a valid conn.reconnect, else why not (pushed). */
const char *l_retry_check(lua_State *L, int v);
/* The connection opened (onConnect, onWebSocketConnect). */
void l_retry_opened(l_conn *lc);
/* An error is about to reach onError. */
void l_retry_error(l_conn *lc, int code, const char *msg);
/* The connection (its userdata at index ud) closed; before onClose: what
 * the policy will do. 1: a reconnect after *delay (l_retry_schedule, after
 * onClose); 0 nothing; -1 it stops (onError said why). */
int l_retry_plan(l_conn *lc, int ud, double *delay);
/* After onClose: the reconnect l_retry_plan planned, unless the script
 * ended the connection or reconnected it itself meanwhile. */
void l_retry_schedule(l_conn *lc, int ud, double delay);
/* close() or finish() while the policy's reconnect waits: cancel it (1). */
int l_retry_cancel(l_conn *lc);
/* l_stdin.c: standard input for mw.stdin (lua/moonwire/co.lua) */
void l_stdin_register(lua_State *L, mw_rt *rt);
/* ^C at the -i prompt: the line is dropped, the prompt's function hears
 * false (its pending chunk goes too). */
void l_tty_interrupt(mw_rt *rt);
/* l_console.c: core.console*, core.connections, core.onInterrupt */
void l_console_register(lua_State *L, mw_rt *rt);
/* SIGINT while core.onInterrupt holds a function: call it */
void l_console_sigint(mw_rt *rt);
/* Stop reading stdin (the program stops); nothing when it was never read. */
void l_stdin_close(mw_rt *rt);
/* l_timer.c */
void l_timer_register(lua_State *L, mw_rt *rt);
void l_timer_del_all(mw_rt *rt);

/* Timer.add during a reload: match to a live declared timer or queue a new one. */
int l_timer_declare(lua_State *L, mw_rt *rt, double interval, int persistent, int fn, int args);
void l_timer_commit(lua_State *L, mw_rt *rt, int decls);

/* l_metrics.c: conn:stats(), mw.stats(), mw.histogram(), --metrics, --stats */
void l_metrics_register(lua_State *L, mw_rt *rt);
/* Push conn:stats() of c. */
int l_metrics_conn_stats(lua_State *L, const struct mw_conn *c);
/* A connection (options.name `name`, or NULL) is freed: keep its counters in the totals. */
void l_metrics_retire(mw_rt *rt, const char *name, const struct mw_conn *c);
/* Around the hosted loop: start the reports, and write the last one. */
void l_metrics_run_begin(mw_rt *rt);
/* Before the workers are forked: with --metrics the parent writes the sum
 * of the totals each worker sends it. */
void l_metrics_workers_begin(mw_rt *rt);
void l_metrics_run_end(mw_rt *rt);
void l_metrics_free(mw_rt *rt);
/* The moonwire binary's --metrics FILE (NULL: none), --metrics-interval S
 * (<= 0: the default, 5) and --stats N (<= 0: none); before the script runs. */
void mw_rt_metrics_config(const char *file, double interval, double stats_every);

/* l_reload.c */
/* Remember the main script (path and the arguments on the stack top..). */
void mw_rt_set_script(mw_rt *rt, const char *path, int nargs);
/* Reload now: the script runs again in reconcile mode; on any error nothing
 * live changes. Returns 0 or -1 (reported). */
int mw_rt_reload(mw_rt *rt);
void mw_rt_schedule_reload(mw_rt *rt);
/* --watch: watch the script and the modules it loaded from its directory. */
int mw_rt_watch(mw_rt *rt);
void l_reload_register(lua_State *L, mw_rt *rt);

int luaopen_moonwire_core(lua_State *L);
/* Put the embedded lua/moonwire modules into package.preload. */
void mw_preload_embedded(lua_State *L);
#endif
