/* workers: the parent of worker.count processes. It runs no Lua and no
 * connection after the first fork: it only waits, in poll(), for signals
 * (SIGCHLD, the stop and reload signals, through a signalfd) and for the
 * workers' blobs on their pipes, the backoff deadlines and the sink's ticks
 * as its timeout. Knows nothing of Lua, protocols or frame bits. */
#include "workers.h"
#include "crypto.h"
#include "tls_ctx.h"
#include "dns.h"
#include "buf.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BACKOFF_FIRST 0.1
#define BACKOFF_MAX 5.0
#define STABLE_UPTIME 10.0  /* a worker up this long starts its backoff over */
#define BLOB_MAX (16u << 20) /* a larger frame on a pipe: the pipe is dropped */

/* One slot per worker id. Each has a pipe (the parent holds the read end,
 * non-blocking; the worker the write end) on which the worker sends blobs,
 * each a 4-byte little-endian length and the bytes: the parent keeps the
 * latest, for the sink. */
typedef struct {
    pid_t pid;          /* 0: not running */
    int pipe_rd;        /* -1 none */
    mw_buf in;          /* bytes read from the pipe, not yet a whole blob */
    mw_buf latest;      /* the latest whole blob */
    int have;           /* latest holds one */
    double started;     /* mw_monotonic */
    double backoff;     /* the next restart's delay */
    double restart_at;  /* > 0: a restart is due then */
    int forks;          /* times this id was forked */
} slot;

static int g_pipe_wr = -1;
static int g_restarts;
static int g_sigfd = -1;
static mw_workers_sink g_sink;

void mw_workers_set_sink(const mw_workers_sink *sink)
{
    if (sink) g_sink = *sink; else memset(&g_sink, 0, sizeof g_sink);
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int mw_workers_send(const void *p, size_t n)
{
    if (g_pipe_wr < 0 || n > BLOB_MAX) return -1;
    unsigned char h[4] = { (unsigned char)n, (unsigned char)(n >> 8), (unsigned char)(n >> 16),
                           (unsigned char)(n >> 24) };
    /* blocking: the parent reads at once; a blob past the pipe's buffer waits for it */
    if (write_all(g_pipe_wr, h, 4) || write_all(g_pipe_wr, p, n)) {
        close(g_pipe_wr);
        g_pipe_wr = -1;
        return -1;
    }
    return 0;
}

int mw_workers_restarts(void) { return g_restarts; }

int mw_workers_pipe(void) { return g_pipe_wr; }

static sigset_t g_oldmask;

static void child_setup(int id, mw_loop *loop, int wr, pid_t parent)
{
    g_pipe_wr = wr;
    if (g_sigfd >= 0) { close(g_sigfd); g_sigfd = -1; }
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
    if (fds[0] >= 0) fcntl(fds[0], F_SETFL, O_NONBLOCK);
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

static void drop_pipe(slot *s)
{
    if (s->pipe_rd >= 0) { close(s->pipe_rd); s->pipe_rd = -1; }
    mw_buf_clear(&s->in);
}

/* Read what worker i's pipe holds; keep the latest whole blob. */
static void read_pipe(slot *s, int i)
{
    for (;;) {
        char *dst = mw_buf_reserve(&s->in, 65536);
        ssize_t r = dst ? read(s->pipe_rd, dst, 65536) : -1;
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) drop_pipe(s);
            break;
        }
        mw_buf_commit(&s->in, (size_t)r);
    }
    while (s->in.len >= 4) {
        const unsigned char *h = (const unsigned char *)mw_buf_head(&s->in);
        uint32_t n = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
        if (n > BLOB_MAX) {
            fprintf(stderr, "moonwire: worker %d sent a blob of %u bytes (at most %u): its pipe is dropped\n",
                    i, n, BLOB_MAX);
            drop_pipe(s);
            return;
        }
        if (s->in.len < 4 + (size_t)n) break;
        mw_buf_clear(&s->latest);
        if (mw_buf_append(&s->latest, h + 4, n) == 0) s->have = 1; else s->have = 0;
        mw_buf_consume(&s->in, 4 + (size_t)n);
    }
}

/* A worker ended: say why, and plan its restart unless it exited 0 or the
 * program stops. Returns 1 when it failed. */
static int ended(slot *s, int i, int wstatus, int stopping)
{
    pid_t pid = s->pid;
    s->pid = 0;
    if (s->pipe_rd >= 0) read_pipe(s, i);   /* its last words */
    drop_pipe(s);
    if (s->have && g_sink.retire) g_sink.retire(g_sink.ud, (const unsigned char *)mw_buf_head(&s->latest), s->latest.len);
    s->have = 0;
    mw_buf_clear(&s->latest);
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

/* The sink's tick: the latest blob of each running worker. */
static void tick(slot *w, int count)
{
    const unsigned char **p = calloc((size_t)count, sizeof *p);
    size_t *n = calloc((size_t)count, sizeof *n);
    int k = 0;
    if (p && n)
        for (int i = 0; i < count; i++)
            if (w[i].pid > 0 && w[i].have) {
                p[k] = (const unsigned char *)mw_buf_head(&w[i].latest);
                n[k++] = w[i].latest.len;
            }
    if (p && n) g_sink.tick(g_sink.ud, p, n, k);
    free(p);
    free(n);
}

static void free_slots(slot *w, int count)
{
    for (int i = 0; i < count; i++) {
        drop_pipe(&w[i]);
        mw_buf_free(&w[i].in);
        mw_buf_free(&w[i].latest);
    }
    free(w);
}

int mw_workers_run(int count, mw_loop *loop, int *status)
{
    slot *w = calloc((size_t)count, sizeof *w);
    struct pollfd *pf = calloc((size_t)count + 1, sizeof *pf);
    int *who = calloc((size_t)count + 1, sizeof *who);
    if (!w || !pf || !who) {
        fputs("moonwire: cannot start the workers: out of memory\n", stderr);
        free(w); free(pf); free(who);
        *status = 1;
        return -2;
    }
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
        mw_buf_init(&w[i].in);
        mw_buf_init(&w[i].latest);
    }
    for (int i = 0; i < count; i++) {
        w[i].backoff = BACKOFF_FIRST;
        int r = spawn(&w[i], i, loop);
        if (r == 0) { free_slots(w, count); free(pf); free(who); return i; }
        if (r < 0) {
            if (i == 0) {
                sigprocmask(SIG_SETMASK, &g_oldmask, NULL);
                free_slots(w, count); free(pf); free(who);
                *status = 1;
                return -2;
            }
            failed = 1; /* the others run; this one is retried */
            w[i].restart_at = mw_monotonic() + w[i].backoff;
        }
    }
    /* after the first forks (a restarted worker closes it in child_setup):
     * the signals stay blocked and pending until read here */
    g_sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (g_sigfd < 0) {
        fprintf(stderr, "moonwire: cannot supervise the workers: signalfd: %s; stopping them\n", strerror(errno));
        signal_all(w, count, SIGTERM);
        stopping = failed = 1;
    }
    double next_tick = g_sink.tick && g_sink.interval > 0 ? mw_monotonic() + g_sink.interval : 0;
    for (;;) {
        int live = 0;
        double next = 0, now = mw_monotonic();
        for (int i = 0; i < count; i++) {
            if (w[i].restart_at > 0 && !stopping && w[i].restart_at <= now) {
                int r = spawn(&w[i], i, loop);
                if (r == 0) { free_slots(w, count); free(pf); free(who); return i; }
                if (r < 0) w[i].restart_at = now + w[i].backoff;
            }
            if (w[i].pid > 0) live++;
            if (w[i].restart_at > 0 && !stopping && (next == 0 || w[i].restart_at < next)) next = w[i].restart_at;
        }
        if (!live && (stopping || next == 0)) break;
        double due = next;
        if (next_tick > 0 && (due == 0 || next_tick < due)) due = next_tick;
        int timeout = -1;
        if (due > 0) timeout = due <= now ? 0 : (int)((due - now) * 1000) + 1;
        nfds_t np = 0;
        if (g_sigfd >= 0) { pf[np].fd = g_sigfd; pf[np].events = POLLIN; who[np++] = -1; }
        for (int i = 0; i < count; i++)
            if (w[i].pipe_rd >= 0) { pf[np].fd = w[i].pipe_rd; pf[np].events = POLLIN; who[np++] = i; }
        if (np == 0) { /* no signalfd: wait for the workers as they stop */
            int ws;
            pid_t pid = wait(&ws);
            for (int i = 0; i < count && pid > 0; i++)
                if (w[i].pid == pid) failed |= ended(&w[i], i, ws, stopping);
            continue;
        }
        for (nfds_t k = 0; k < np; k++) pf[k].revents = 0;
        if (poll(pf, np, timeout) < 0 && errno != EINTR) continue;
        for (nfds_t k = 0; k < np; k++)
            if (who[k] >= 0 && pf[k].revents) read_pipe(&w[who[k]], who[k]);
        if (next_tick > 0 && mw_monotonic() >= next_tick) {
            tick(w, count);
            next_tick = mw_monotonic() + g_sink.interval;
        }
        struct signalfd_siginfo si;
        while (g_sigfd >= 0 && read(g_sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
            int sig = (int)si.ssi_signo;
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
    }
    if (g_sink.tick) tick(w, count);   /* the last: every worker has ended */
    if (g_sigfd >= 0) { close(g_sigfd); g_sigfd = -1; }
    sigprocmask(SIG_SETMASK, &g_oldmask, NULL);
    free_slots(w, count);
    free(pf);
    free(who);
    *status = failed ? 1 : 0;
    return -1;
}
