/* workers: the parent of worker.count processes. It runs no Lua and no
 * connection after the first fork: it only waits for signals (SIGCHLD, the
 * stop and reload signals) with sigtimedwait, the backoff deadlines as its
 * timeout. Knows nothing of Lua, protocols or frame bits. */
#include "workers.h"
#include "crypto.h"
#include "tls_ctx.h"
#include "dns.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_FIRST 0.1
#define BACKOFF_MAX 5.0
#define STABLE_UPTIME 10.0  /* a worker up this long starts its backoff over */

/* One slot per worker id. Each has a pipe (the parent holds the read end,
 * the worker the write end) so that the parent can later collect a small
 * blob from each worker (metrics summed across workers): read it when the
 * worker ends, or on request (a signal, a line) while it runs. */
typedef struct {
    pid_t pid;          /* 0: not running */
    int pipe_rd;        /* -1 none */
    double started;     /* mw_monotonic */
    double backoff;     /* the next restart's delay */
    double restart_at;  /* > 0: a restart is due then */
    int forks;          /* times this id was forked */
} slot;

static int g_pipe_wr = -1;
static int g_restarts;

int mw_workers_restarts(void) { return g_restarts; }

int mw_workers_pipe(void) { return g_pipe_wr; }

static sigset_t g_oldmask;

static void child_setup(int id, mw_loop *loop, int wr, pid_t parent)
{
    g_pipe_wr = wr;
    /* the parent passes on SIGINT/SIGTERM itself: a ^C at the terminal must
     * not reach a worker twice (a second signal stops it at once) */
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* the parent killed: stop, do not linger */
    if (getppid() != parent) raise(SIGTERM);
    ev_loop_fork(loop->ev);
    if (loop->dns) { mw_dns_free(loop->dns); loop->dns = NULL; } /* c-ares: sockets and ids of its own */
    mw_random_after_fork();  /* mask and handshake keys differ per worker */
    mw_tls_ctx_shutdown();   /* contexts are built again in the worker; each
                              * TLS session seeds its own RNG when made */
    (void)id;
    sigprocmask(SIG_SETMASK, &g_oldmask, NULL);
}

/* Fork worker i: 0 in the child (set up), 1 in the parent, -1 on failure. */
static int spawn(slot *s, int i, mw_loop *loop)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) fds[0] = fds[1] = -1;
    fflush(stdout);
    fflush(stderr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "moonwire: cannot fork worker %d: %s\n", i, strerror(errno));
        if (fds[0] >= 0) { close(fds[0]); close(fds[1]); }
        return -1;
    }
    if (pid == 0) {
        g_restarts = s->forks;
        if (fds[0] >= 0) close(fds[0]);
        child_setup(i, loop, fds[1], parent);
        return 0;
    }
    if (fds[1] >= 0) close(fds[1]);
    s->forks++;
    s->pid = pid;
    s->pipe_rd = fds[0];
    s->started = mw_monotonic();
    s->restart_at = 0;
    return 1;
}

static void signal_all(slot *w, int n, int sig)
{
    for (int i = 0; i < n; i++)
        if (w[i].pid > 0) kill(w[i].pid, sig);
}

/* A worker ended: say why, and plan its restart unless it exited 0 or the
 * program stops. Returns 1 when it failed. */
static int ended(slot *s, int i, int wstatus, int stopping)
{
    pid_t pid = s->pid;
    s->pid = 0;
    if (s->pipe_rd >= 0) { close(s->pipe_rd); s->pipe_rd = -1; }
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) return 0;
    char why[64];
    if (WIFSIGNALED(wstatus)) snprintf(why, sizeof why, "killed by signal %d", WTERMSIG(wstatus));
    else snprintf(why, sizeof why, "exited with status %d", WEXITSTATUS(wstatus));
    if (stopping) {
        fprintf(stderr, "moonwire: worker %d (pid %ld) %s while stopping\n", i, (long)pid, why);
    } else {
        double now = mw_monotonic();
        if (now - s->started >= STABLE_UPTIME) s->backoff = BACKOFF_FIRST;
        fprintf(stderr, "moonwire: worker %d (pid %ld) %s; restarting in %gs\n", i, (long)pid, why, s->backoff);
        s->restart_at = now + s->backoff;
        s->backoff = s->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : s->backoff * 2;
    }
    fflush(stderr);
    return 1;
}

int mw_workers_run(int count, mw_loop *loop, int *status)
{
    slot *w = calloc((size_t)count, sizeof *w);
    if (!w) { fputs("moonwire: cannot start the workers: out of memory\n", stderr); *status = 1; return -2; }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &g_oldmask);
    int failed = 0, stopping = 0;
    for (int i = 0; i < count; i++) {
        w[i].pipe_rd = -1;
        w[i].backoff = BACKOFF_FIRST;
        int r = spawn(&w[i], i, loop);
        if (r == 0) { free(w); return i; }
        if (r < 0) {
            if (i == 0) { sigprocmask(SIG_SETMASK, &g_oldmask, NULL); free(w); *status = 1; return -2; }
            failed = 1; /* the others run; this one is retried */
            w[i].restart_at = mw_monotonic() + w[i].backoff;
        }
    }
    for (;;) {
        int live = 0;
        double next = 0, now = mw_monotonic();
        for (int i = 0; i < count; i++) {
            if (w[i].restart_at > 0 && !stopping && w[i].restart_at <= now) {
                int r = spawn(&w[i], i, loop);
                if (r == 0) { free(w); return i; }
                if (r < 0) w[i].restart_at = now + w[i].backoff;
            }
            if (w[i].pid > 0) live++;
            if (w[i].restart_at > 0 && !stopping && (next == 0 || w[i].restart_at < next)) next = w[i].restart_at;
        }
        if (!live && (stopping || next == 0)) break;
        siginfo_t info;
        int sig;
        if (next > 0) {
            double d = next - now;
            if (d < 0) d = 0;
            struct timespec ts = { (time_t)d, (long)((d - (double)(time_t)d) * 1e9) };
            sig = sigtimedwait(&set, &info, &ts);
        } else {
            sig = sigwaitinfo(&set, &info);
        }
        if (sig < 0) continue; /* the timeout (a restart is due), or EINTR */
        if (sig == SIGCHLD) {
            int ws;
            pid_t pid;
            while ((pid = waitpid(-1, &ws, WNOHANG)) > 0)
                for (int i = 0; i < count; i++)
                    if (w[i].pid == pid) failed |= ended(&w[i], i, ws, stopping);
        } else if (sig == SIGHUP) {
            signal_all(w, count, SIGHUP);
        } else { /* SIGINT, SIGTERM: stop gracefully; a second: at once */
            stopping = 1;
            signal_all(w, count, SIGTERM);
        }
    }
    sigprocmask(SIG_SETMASK, &g_oldmask, NULL);
    free(w);
    *status = failed ? 1 : 0;
    return -1;
}
