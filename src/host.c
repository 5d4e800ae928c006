/* host: the Lua state, the one door into Lua, interruption and the reporter
 * (each error in full with its traceback; floods counted, summed up once a
 * second). Knows no connection, no binding and no frame bits. */
#include "host.h"
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "lalloc.h"
#include "loop.h"
#include "timer.h"

#define HOST_KEY "moonwire.host"

struct errlog;

struct mw_host {
    lua_State *L;               /* the main thread: every callback runs on it */
    int hosted;                 /* made by the moonwire binary, which runs the loop */
    int msgh;                   /* stack index of the loop's traceback handler, else 0 */
    volatile sig_atomic_t depth;    /* callbacks under way: msgh serves depth 1 only */
    volatile sig_atomic_t in_main;  /* a chunk of the host's own runs (the main script, -e) */
    volatile sig_atomic_t in_loop;  /* between mw_host_loop_begin and _end */
    const char *what;           /* the callback the door runs now, for the flood check, or NULL */
    mw_loop *loop;              /* the reporter's timer runs on it */
    struct errlog *errlog;      /* made at the first error once a loop is set */
    /* SIGINT/SIGTERM interrupt running Lua code through a hook (as lua(1)):
     * the signal handler reads these and sets the hook, nothing else. */
    volatile sig_atomic_t armed;    /* the interrupt hook is set */
    volatile double irq_at;         /* when the signal came (mw_monotonic) */
    lua_Hook saved_hook;            /* the script's own hook (debug.sethook), put back */
    int saved_mask, saved_count;
};

static mw_host *host_of(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, HOST_KEY);
    mw_host *h = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return h;
}

static mw_host *make(lua_State *L, int hosted)
{
    mw_host *h = lua_newuserdatauv(L, sizeof *h, 0);
    memset(h, 0, sizeof *h);
    lua_setfield(L, LUA_REGISTRYINDEX, HOST_KEY);
    /* The main thread, never the caller's: a require from inside a coroutine
     * must not leave callbacks running on a thread that ends (and is
     * collected) when the coroutine does. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    h->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    h->hosted = hosted;
    return h;
}

mw_host *mw_host_get(lua_State *L)
{
    mw_host *h = host_of(L);
    return h ? h : make(L, 0);
}

int mw_host_hosted(const mw_host *h) { return h->hosted; }

lua_State *mw_host_lua(mw_host *h) { return h->L; }

/* ---- the reporter ---- */

/* An error is "the same" as an earlier one when both its message (the text
 * before any traceback, which holds error()'s file:line) and the callback
 * kind (`what`: onMessage, timer...) match, and the earlier one happened
 * less than WINDOW seconds ago: a flood. After a quiet second the next one
 * is printed in full again. A few distinct errors are tracked at once, so
 * that two failures alternating in a flood are each limited. */
#define SLOTS 8
#define WINDOW 1.0

typedef struct {
    char *key;              /* message without traceback; NULL: free slot */
    size_t len;
    char what[32];
    unsigned long count;    /* suppressed since this error was last printed or summed up */
    double last_seen;
} errslot;

struct errlog {
    errslot slot[SLOTS];
    mw_timer tick;          /* ends the window; never keeps the loop alive */
    int open;               /* a window is under way: counts are pending */
    double window_start;
};

static const char tb_mark[] = "\nstack traceback:";

static size_t key_len(const char *msg, size_t len)
{
    const char *tb = strstr(msg, tb_mark);
    return tb ? (size_t)(tb - msg) : len;
}

static errslot *find(struct errlog *e, const char *what, const char *msg, size_t len)
{
    for (int i = 0; i < SLOTS; i++) {
        errslot *s = &e->slot[i];
        if (s->key && s->len == len && strncmp(s->what, what, sizeof s->what - 1) == 0
            && memcmp(s->key, msg, len) == 0)
            return s;
    }
    return NULL;
}

/* 1234567 -> "1,234,567" */
static void thousands(char *out, size_t cap, unsigned long n)
{
    char digits[32];
    int nd = snprintf(digits, sizeof digits, "%lu", n);
    size_t o = 0;
    for (int i = 0; i < nd && o + 2 < cap; i++) {
        if (i > 0 && (nd - i) % 3 == 0) out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

static void summary(errslot *s, double secs)
{
    if (!s->count) return;
    char num[40];
    thousands(num, sizeof num, s->count);
    secs = (double)(long)(secs * 10 + 0.5) / 10; /* 0.1 s steps: "1s", "0.4s" */
    if (secs < 0.1) secs = 0.1;
    /* the first line of the message, to tell floods of different errors apart */
    size_t first = strcspn(s->key, "\n");
    if (first > s->len) first = s->len;
    fprintf(stderr, "moonwire: ... %s more of the same error in the last %gs (error in %s: %.*s%s)\n",
            num, secs, s->what, (int)(first > 120 ? 120 : first), s->key,
            first > 120 ? "..." : "");
    fflush(stderr);
    s->count = 0;
}

static void flush_all(struct errlog *e)
{
    double secs = mw_monotonic() - e->window_start;
    for (int i = 0; i < SLOTS; i++) summary(&e->slot[i], secs);
    e->open = 0;
    mw_timer_stop(&e->tick);
}

static void tick_cb(mw_timer *t, void *ud)
{
    struct errlog *e = ud;
    /* A tick that expired in the loop iteration where a callback had
     * already ended its window and opened the next runs late: it must not
     * end the new window early. */
    double left = e->window_start + WINDOW - mw_monotonic();
    if (e->open && left > 0.01) { mw_timer_start(t, left, 0); return; }
    flush_all(e);
}

static struct errlog *errlog(mw_host *h)
{
    if (!h->errlog && h->loop) {
        h->errlog = calloc(1, sizeof *h->errlog);
        if (h->errlog) mw_timer_init(&h->errlog->tick, h->loop, tick_cb, h->errlog, 0);
    }
    return h->errlog;
}

/* Would this message (within the callback `what`) only be counted? */
static int repeats(mw_host *h, const char *what, const char *msg, size_t len)
{
    struct errlog *e = h->errlog;
    if (!e || !what) return 0;
    errslot *s = find(e, what, msg, key_len(msg, len));
    return s && mw_monotonic() - s->last_seen < WINDOW;
}

static void print_error(const char *what, const char *msg)
{
    if (what) fprintf(stderr, "moonwire: error in %s: %s\n", what, msg);
    else fprintf(stderr, "moonwire: %s\n", msg);
    fflush(stderr);
}

/* Count msg when it repeats; else remember it. 1: counted, do not print. */
static int count_flood(struct errlog *e, const char *what, const char *msg, size_t len)
{
    double now = mw_monotonic();
    size_t klen = key_len(msg, len);
    errslot *s = find(e, what, msg, klen);
    if (s && now - s->last_seen < WINDOW) {
        s->last_seen = now;
        s->count++;
        if (!e->open) {
            e->open = 1;
            e->window_start = now;
            mw_timer_start(&e->tick, WINDOW, 0);
        } else if (now - e->window_start >= WINDOW) {
            flush_all(e); /* the loop is starved: sum up from here */
        }
        return 1;
    }
    if (!s) { /* a free slot, or the one seen longest ago */
        s = &e->slot[0];
        for (int i = 0; i < SLOTS && s->key; i++)
            if (!e->slot[i].key || e->slot[i].last_seen < s->last_seen) s = &e->slot[i];
        summary(s, now - e->window_start);
        char *key = malloc(klen + 1);
        if (key) {
            memcpy(key, msg, klen);
            key[klen] = '\0';
        }
        free(s->key);
        s->key = key;
        s->len = klen;
        snprintf(s->what, sizeof s->what, "%s", what);
    } else {
        summary(s, now - e->window_start);
    }
    s->last_seen = now;
    return 0;
}

void mw_host_report(mw_host *h, lua_State *L, const char *what)
{
    size_t len = 0;
    const char *msg = lua_tolstring(L, -1, &len);
    if (!msg) { msg = "(error object is not a string)"; len = strlen(msg); }
    /* the host's own chunks fail once, and end the program: no flood to limit */
    struct errlog *e = what ? errlog(h) : NULL;
    if (!e || !count_flood(e, what, msg, len)) print_error(what, msg);
    lua_pop(L, 1);
}

static void errlog_forget(struct errlog *e)
{
    flush_all(e);
    for (int i = 0; i < SLOTS; i++) { free(e->slot[i].key); e->slot[i].key = NULL; }
}

void mw_host_errors_reset(mw_host *h)
{
    if (h->errlog) errlog_forget(h->errlog);
}

void mw_host_set_loop(mw_host *h, mw_loop *loop)
{
    if (h->errlog) {
        errlog_forget(h->errlog);
        free(h->errlog);
        h->errlog = NULL;
    }
    h->loop = loop;
}

/* The message handler: appends a traceback, except to an error the reporter
 * will only count. */
static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    if (strstr(msg, tb_mark)) { lua_pushstring(L, msg); return 1; } /* rethrown */
    mw_host *h = host_of(L);
    /* a flood: the report only counts this one, no traceback to build */
    if (h && repeats(h, h->what, msg, strlen(msg))) {
        lua_pushstring(L, msg);
        return 1;
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* ---- interruption: SIGINT/SIGTERM stop a runaway callback or chunk ---- */

/* Code that returns within this time after the signal is not interrupted:
 * the signal just stops the loop gracefully once it returns. */
#define INTERRUPT_GRACE 0.5

/* Put the script's own hook back (or none); before clearing `armed`, which
 * the signal handler sets only after saving that hook. */
static void disarm(mw_host *h)
{
    lua_sethook(h->L, h->saved_hook, h->saved_mask, h->saved_count);
    h->armed = 0;
}

static void interrupt_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    mw_host *h = host_of(L);
    if (!h || !h->armed) { lua_sethook(L, NULL, 0, 0); return; }
    if (mw_monotonic() - h->irq_at < INTERRUPT_GRACE) return;
    disarm(h);
    luaL_where(L, 0); /* the line the runaway code was at, when it is Lua */
    lua_pushliteral(L, "interrupted");
    lua_concat(L, 2);
    lua_error(L);
}

/* In the real signal handler: async-signal-safe (clock_gettime and
 * lua_sethook are). Lua runs a callback, or the host's own chunk, or (as a
 * module under lua(1)) the script's code around a finished loop: a hook
 * every 1000 instructions raises "interrupted" in it once the grace time
 * has passed, as lua(1) does at once; the loop's watcher then runs the
 * graceful stop. The loop itself between callbacks is never interrupted:
 * its watcher comes soon. */
void mw_host_interrupt(mw_host *h)
{
    if (h->armed) return;
    if (!(h->depth > 0 || h->in_main || (!h->hosted && !h->in_loop))) return;
    lua_State *L = h->L;
    h->saved_hook = lua_gethook(L);
    h->saved_mask = lua_gethookmask(L);
    h->saved_count = lua_gethookcount(L);
    h->irq_at = mw_monotonic();
    h->armed = 1;
    lua_sethook(L, interrupt_hook, LUA_MASKCOUNT, 1000);
}

/* ---- the door ---- */

/* h->msgh is an index in the frame where the loop was started (a C frame
 * at the bottom of the main thread); it is valid only for calls made from
 * that frame, that is from the loop itself (depth 1 once counted). A call
 * made from inside a callback (Worker.stopAll() runs the onWorkerStop
 * hooks, core.call) runs in a nested frame and brings its own handler, as
 * does a chunk of the host's (which runs before any loop). */
int mw_host_call(mw_host *h, lua_State *L, int nargs, int nresults, const char *what)
{
    int st;
    const char *outer = h->what;
    h->what = what;
    if (what) h->depth++;
    else h->in_main = 1;
    if (what && h->msgh && h->depth == 1 && L == h->L) {
        st = lua_pcall(L, nargs, nresults, h->msgh);
    } else {
        int base = lua_gettop(L) - nargs; /* index of the function */
        lua_pushcfunction(L, traceback);
        lua_insert(L, base);
        st = lua_pcall(L, nargs, nresults, base);
        lua_remove(L, base);
    }
    if (what) h->depth--;
    else h->in_main = 0;
    h->what = outer;
    /* an interruption that came as the code returned is not for the next one */
    if (h->armed && h->depth == 0 && !h->in_main) disarm(h);
    if (st == LUA_OK) return 0;
    mw_host_report(h, L, what);
    for (int i = 0; i < nresults; i++) lua_pushnil(L);
    return -1;
}

void mw_host_loop_begin(mw_host *h)
{
    lua_pushcfunction(h->L, traceback);
    h->msgh = lua_gettop(h->L);
    h->in_loop = 1;
}

void mw_host_loop_end(mw_host *h)
{
    lua_settop(h->L, h->msgh - 1);
    h->msgh = 0;
    h->in_loop = 0;
    if (h->errlog) flush_all(h->errlog); /* no tick will come to sum them up */
}

int mw_host_in_loop(const mw_host *h) { return h->in_loop; }

/* ---- the program's state and chunks ---- */

/* A bot host may hold thousands of connections: take every descriptor the
 * hard limit allows (the soft limit is often 1024). Failure is harmless. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && rl.rlim_max == RLIM_INFINITY) {
        rl.rlim_cur = 1 << 20;   /* the kernel's usual nr_open */
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* package.path/cpath: the script's directory first, then the system's. */
static void set_paths(lua_State *L, const char *script)
{
    char dir[4096] = ".";
    if (script) {
        const char *slash = strrchr(script, '/');
        if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - script), script);
        if (slash == script) strcpy(dir, "/");
    }
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "path");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "path");
    lua_pop(L, 1);
    lua_getfield(L, -1, "cpath");
    lua_pushfstring(L, "%s/?.so;%s", dir, lua_tostring(L, -1));
    lua_setfield(L, -3, "cpath");
    lua_pop(L, 2);
}

/* arg as lua(1): arg[0] the script, arg[1..] its args, negatives before. */
static void set_arg(lua_State *L, int argc, char **argv, int script_idx)
{
    lua_createtable(L, argc - script_idx, script_idx + 1);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - script_idx);
    }
    lua_setglobal(L, "arg");
}

struct setup { int argc; char **argv; int script_idx; void (*open)(lua_State *); mw_host *h; };

static int setup(lua_State *L)
{
    struct setup *s = lua_touserdata(L, 1);
    luaL_openlibs(L);
    s->h = make(L, 1);
    s->open(L);
    /* with no script (only -e), the directory is "." and arg[0] the program */
    set_paths(L, s->script_idx > 0 ? s->argv[s->script_idx] : NULL);
    set_arg(L, s->argc, s->argv, s->script_idx > 0 ? s->script_idx : 0);
    return 0;
}

mw_host *mw_host_new(int argc, char **argv, int script_idx, void (*open)(lua_State *L))
{
    raise_nofile();
    lua_State *L = luaL_newstate();
    if (!L) { fputs("moonwire: cannot create the Lua state: out of memory\n", stderr); return NULL; }
    /* Lua 5.4's generational collector: a bot's garbage is mostly message
     * strings that die within their callback, which a minor collection frees
     * while their memory is still in cache (1 KiB messages arrive 1.3x faster
     * than under the incremental default). A script may switch back with
     * collectgarbage("incremental"). */
    lua_gc(L, LUA_GCGEN, 0, 0);
    /* lauxlib's allocator made the state; ours takes over from here (its
     * cache reuses a freed block for its own size only, whoever made it) */
    lua_setallocf(L, mw_lua_alloc, NULL);
    struct setup s = { argc, argv, script_idx, open, NULL };
    lua_pushcfunction(L, setup);
    lua_pushlightuserdata(L, &s);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "moonwire: cannot create the Lua state: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    return s.h;
}

void mw_host_close(mw_host *h)
{
    lua_close(h->L);
    mw_lua_alloc_release();
}

int mw_host_check(mw_host *h, const char *path)
{
    if (luaL_loadfile(h->L, path) != LUA_OK) { mw_host_report(h, h->L, NULL); return -1; }
    lua_pop(h->L, 1);
    return 0;
}

int mw_host_do_string(mw_host *h, const char *chunk)
{
    if (luaL_loadbuffer(h->L, chunk, strlen(chunk), "=(command line)") != LUA_OK) {
        mw_host_report(h, h->L, NULL);
        return -1;
    }
    return mw_host_call(h, h->L, 0, 0, NULL);
}

int mw_host_do_file(mw_host *h, const char *path, char **args, int n)
{
    lua_State *L = h->L;
    if (luaL_loadfile(L, strcmp(path, "-") == 0 ? NULL : path) != LUA_OK) {
        mw_host_report(h, L, NULL);
        return -1;
    }
    luaL_checkstack(L, n, "too many arguments");
    for (int i = 0; i < n; i++) lua_pushstring(L, args[i]);
    return mw_host_call(h, L, n, 0, NULL);
}
