/* main: the moonwire command line: options, exit codes, and the order of
 * things: the chunks, the script, the loop. Calls no Lua API (the host runs
 * the chunks), knows no sockets and no frame bits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "bind/bind.h"
#include "host.h"

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
    "  -i [script.lua]    a Lua prompt on the running loop (after the script, if any)\n"
    "  --console script.lua  also listen for `moonwire attach` on a Unix socket\n"
    "                     ($XDG_RUNTIME_DIR/moonwire/ or /tmp/moonwire-<uid>/, 0700)\n"
    "  attach [PID|PATH]  a Lua prompt inside a running bot that has a console\n"
    "                     (moonwire attach --help)\n"
    "  -c URL [options]   a client at the terminal, as wscat: lines read are sent,\n"
    "                     messages received are printed (moonwire -c --help)\n"
    "  --metrics FILE     write the Prometheus text format of the counters to FILE\n"
    "                     (atomically: a temporary file renamed over it) every\n"
    "                     --metrics-interval seconds (default 5) and at exit\n"
    "  --metrics-interval S  seconds between --metrics writes\n"
    "  --stats N          print a one-line summary to stderr every N seconds\n"
    "  --version          print the version and exit\n"
    "  --help             print this help and exit\n"
    "\n"
    "SIGINT/SIGTERM close every connection and exit 0 (a callback still running\n"
    "0.5 s later is interrupted; a second signal exits at once); SIGHUP reloads.\n"
    "With worker.count = N > 1 the script runs in N worker processes, which this\n"
    "one supervises: it restarts a failed one and passes these signals on.\n";

static const char *progname = "moonwire";

/* A positive number of seconds from argv[i + 1] (option a), or -1 after a message. */
static double seconds_arg(int argc, char **argv, int i, const char *a)
{
    if (i + 1 >= argc) { fprintf(stderr, "%s: %s needs a number of seconds\n", progname, a); return -1; }
    char *end;
    double v = strtod(argv[i + 1], &end);
    if (end == argv[i + 1] || *end || !(v > 0) || v > 1e6) {
        fprintf(stderr, "%s: %s needs a number of seconds > 0, got '%s'\n", progname, a, argv[i + 1]);
        return -1;
    }
    return v;
}

int main(int argc, char **argv)
{
    const char *chunks[64];
    const char *metrics_file = NULL;
    double metrics_interval = 0, stats_every = 0;
    int nchunks = 0, check = 0, watch = 0, script_idx = -1, client = 0, interactive = 0, console = 0;
    if (argc > 1 && strcmp(argv[1], "attach") == 0) {
        /* the rest is the attacher's: `arg` holds it, arg[0] "attach" */
        mw_host *h = mw_host_new(argc, argv, 1, mw_preload_embedded);
        if (!h) return 1;
        int status = mw_host_do_string(h, "require('moonwire.attach')(arg)") != 0 ? 1 : 0;
        if (status == 0) status = mw_rt_run_hosted(mw_host_lua(h));
        mw_host_close(h);
        return status;
    }
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
        } else if (strcmp(a, "-i") == 0 || strcmp(a, "--interactive") == 0) {
            interactive = 1;
        } else if (strcmp(a, "--console") == 0) {
            console = 1;
        } else if (strcmp(a, "--watch") == 0) {
            watch = 1;
        } else if (strcmp(a, "--metrics") == 0) {
            if (i + 1 >= argc || !argv[i + 1][0]) { fprintf(stderr, "%s: --metrics needs a file name\n", progname); return 2; }
            metrics_file = argv[++i];
        } else if (strcmp(a, "--metrics-interval") == 0) {
            if ((metrics_interval = seconds_arg(argc, argv, i++, a)) < 0) return 2;
        } else if (strcmp(a, "--stats") == 0) {
            if ((stats_every = seconds_arg(argc, argv, i++, a)) < 0) return 2;
        } else if (strcmp(a, "-e") == 0) {
            if (i + 1 >= argc) { fprintf(stderr, "%s: -e needs an argument\n%s", progname, usage); return 2; }
            if (nchunks < 64) chunks[nchunks++] = argv[++i];
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--connect") == 0) {
            /* the rest is the client's: `arg` holds it, arg[0] the option */
            client = 1;
            script_idx = i;
            break;
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
    if (script_idx < 0 && nchunks == 0 && !interactive) { fputs(usage, stderr); return 2; }
    if (console && check) { fprintf(stderr, "%s: --console and --check do not go together\n", progname); return 2; }

    mw_rt_metrics_config(metrics_file, metrics_interval, stats_every);
    mw_host *h = mw_host_new(argc, argv, script_idx, mw_preload_embedded);
    if (!h) return 1;
    if (client) {
        int status = mw_host_do_string(h, "require('moonwire.client')(arg)") != 0 ? 1 : 0;
        if (status == 0) status = mw_rt_run_hosted(mw_host_lua(h));
        mw_host_close(h);
        return status;
    }
    const char *script = script_idx >= 0 ? argv[script_idx] : NULL;
    int status = 0;
    if (check) {
        status = mw_host_check(h, script) == 0 ? 0 : 1;
        mw_host_close(h);
        return status;
    }
    for (int i = 0; i < nchunks && status == 0; i++)
        if (mw_host_do_string(h, chunks[i]) != 0) status = 1;
    if (status == 0 && script) {
        int n = argc - script_idx - 1;
        if (mw_host_do_file(h, script, argv + script_idx + 1, n) != 0) status = 1;
        else mw_rt_script_ran(mw_host_lua(h), script, argv + script_idx + 1, n, watch);
    }
    if (status == 0 && console &&
        mw_host_do_string(h, "local p, e = require('moonwire').console() if not p then error(e, 0) end") != 0)
        status = 1;
    if (status == 0 && interactive && mw_host_do_string(h, "require('moonwire.repl')()") != 0) status = 1;
    if (status == 0) status = mw_rt_run_hosted(mw_host_lua(h)); /* a graceful end is exit 0 */
    mw_host_close(h);
    return status;
}
