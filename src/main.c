/* main: the moonwire command line: runs a script (or a chunk), then the loop.
 * Knows no sockets and no frame bits; everything else is behind bind/. */
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "bind/bind.h"

static const char usage[] =
    "usage: moonwire [options] [script.lua [args...]]\n"
    "Runs a Lua 5.4 script that opens WebSocket and TCP client connections,\n"
    "then runs the event loop until nothing is active.\n"
    "\n"
    "  script.lua [args]  run a script; `arg` holds args as in lua(1)\n"
    "  --watch script.lua run, and reload the script when it (or a module it\n"
    "                     loaded from its directory) changes, keeping connections\n"
    "  --check script.lua load and compile only; exit 0, or 1 with the error\n"
    "  -e 'code'          run a chunk (may be given more than once)\n"
    "  --version          print the version and exit\n"
    "  --help             print this help and exit\n"
    "\n"
    "SIGINT/SIGTERM close every connection and exit 0 (a callback still running\n"
    "0.5 s later is interrupted; a second signal exits at once); SIGHUP reloads.\n";

static const char *progname = "moonwire";

static void print_error(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "%s: %s\n", progname, msg ? msg : "(error object is not a string)");
    fflush(stderr);
    lua_pop(L, 1);
}

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

/* Run the function on top with a traceback handler; 0 or -1 (reported). */
static int docall(lua_State *L, int nargs)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, mw_traceback);
    lua_insert(L, base);
    mw_rt_host_chunk(L, 1);   /* SIGINT/SIGTERM interrupt it, once it loaded moonwire */
    int st = lua_pcall(L, nargs, 0, base);
    mw_rt_host_chunk(L, 0);
    lua_remove(L, base);
    if (st != LUA_OK) { print_error(L); return -1; }
    return 0;
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

/* The main chunk has declared what it declares; remember it for reloads. */
static void after_script(lua_State *L, const char *script, char **args, int n, int watch)
{
    lua_getfield(L, LUA_REGISTRYINDEX, MW_RT_KEY);
    mw_rt *rt = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!rt) {
        if (watch) fprintf(stderr, "%s: --watch: the script does not use moonwire; nothing to reload\n", progname);
        return;
    }
    rt->declaring = 0;
    for (int i = 0; i < n; i++) lua_pushstring(L, args[i]);
    mw_rt_set_script(rt, script, n);
    lua_pop(L, n);
    if (watch) mw_rt_watch(rt);
}

/* Run the loop if the script loaded moonwire; a graceful end is exit 0. */
static int run_loop(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, MW_RT_KEY);
    mw_rt *rt = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (rt) mw_rt_run(rt);
    return 0;
}

int main(int argc, char **argv)
{
    const char *chunks[64];
    int nchunks = 0, check = 0, watch = 0, script_idx = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0) {
            printf("moonwire %s (%s)\n", MW_VERSION, LUA_RELEASE);
            return 0;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--check") == 0) {
            check = 1;
        } else if (strcmp(a, "--watch") == 0) {
            watch = 1;
        } else if (strcmp(a, "-e") == 0) {
            if (i + 1 >= argc) { fprintf(stderr, "%s: -e needs an argument\n%s", progname, usage); return 2; }
            if (nchunks < 64) chunks[nchunks++] = argv[++i];
        } else if (strcmp(a, "--") == 0) {
            if (i + 1 < argc) script_idx = i + 1;
            break;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "%s: unknown option '%s'\n%s", progname, a, usage);
            return 2;
        } else {
            script_idx = i;
            break;
        }
    }
    if (check && script_idx < 0) { fprintf(stderr, "%s: --check needs a script\n", progname); return 2; }
    if (watch && (script_idx < 0 || strcmp(argv[script_idx], "-") == 0)) {
        fprintf(stderr, "%s: --watch needs a script file\n", progname);
        return 2;
    }
    if (script_idx < 0 && nchunks == 0) { fputs(usage, stderr); return 2; }

    raise_nofile();
    lua_State *L = luaL_newstate();
    if (!L) { fprintf(stderr, "%s: cannot create the Lua state: out of memory\n", progname); return 1; }
    luaL_openlibs(L);
    lua_pushboolean(L, 1);
    lua_setfield(L, LUA_REGISTRYINDEX, "moonwire.hosted");
    mw_preload_embedded(L);
    const char *script = script_idx >= 0 ? argv[script_idx] : NULL;
    set_paths(L, script);
    /* as lua(1): with no script, arg[0] is the interpreter and options count up */
    set_arg(L, argc, argv, script_idx >= 0 ? script_idx : 0);

    int status = 0;
    if (check) {
        if (luaL_loadfile(L, script) != LUA_OK) { print_error(L); status = 1; }
        lua_close(L);
        return status;
    }
    for (int i = 0; i < nchunks && status == 0; i++) {
        if (luaL_loadbuffer(L, chunks[i], strlen(chunks[i]), "=(command line)") != LUA_OK || docall(L, 0) != 0) {
            if (lua_gettop(L) > 0 && lua_isstring(L, -1)) print_error(L);
            status = 1;
        }
    }
    if (status == 0 && script) {
        if (luaL_loadfile(L, strcmp(script, "-") == 0 ? NULL : script) != LUA_OK) {
            print_error(L);
            status = 1;
        } else {
            int n = argc - script_idx - 1;
            luaL_checkstack(L, n, "too many arguments");
            for (int i = 1; i <= n; i++) lua_pushstring(L, argv[script_idx + i]);
            if (docall(L, n) != 0) status = 1;
            else after_script(L, script, argv + script_idx + 1, n, watch);
        }
    }
    if (status == 0) status = run_loop(L);
    lua_close(L);
    return status;
}
