/* loop: the libev loop, deferred tasks, the pre-poll flush and signals.
 * Knows nothing of Lua, protocols or frame bits. */
#include "loop.h"
#include "dns.h"
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

/* SIGINT/SIGTERM taken by the real handler and not yet run by the loop's
 * watcher: a second one then finds the process stuck (a callback that
 * catches the interruption, or blocks in C) and takes the default action. */
static volatile sig_atomic_t stop_signal_unhandled;
static mw_loop *volatile stop_signal_loop;
static void install_stop_handler(int signum);

static void run_tasks(mw_loop *l)
{
    /* Run only what is queued now; work queued by these tasks runs on the
     * next iteration, which the idle watcher makes non-blocking. This bounds
     * a task that keeps re-queueing itself. */
    mw_task *last = l->tail;
    while (l->head) {
        mw_task *t = l->head;
        mw_loop_unschedule(l, t);
        t->run(t);
        if (t == last) break;
    }
    if (!l->head && ev_is_active(&l->idle)) ev_idle_stop(l->ev, &l->idle);
}

static void prepare_cb(struct ev_loop *ev, ev_prepare *w, int revents)
{
    (void)ev; (void)revents;
    run_tasks(container_of(w, mw_loop, prepare));
}

static void idle_cb(struct ev_loop *ev, ev_idle *w, int revents)
{
    (void)ev; (void)revents;
    run_tasks(container_of(w, mw_loop, idle));
}

int mw_loop_init(mw_loop *l)
{
    memset(l, 0, sizeof *l);
    signal(SIGPIPE, SIG_IGN);
    l->ev = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (!l->ev) return -1;
    ev_set_userdata(l->ev, l);
    ev_prepare_init(&l->prepare, prepare_cb);
    ev_prepare_start(l->ev, &l->prepare);
    ev_unref(l->ev); /* the flush hook alone must not keep the loop alive */
    ev_idle_init(&l->idle, idle_cb);
    return 0;
}

void mw_loop_close(mw_loop *l)
{
    if (!l->ev) return;
    if (l->dns) { mw_dns_free(l->dns); l->dns = NULL; }
    mw_buf_free(&l->scratch);
    ev_ref(l->ev);
    ev_prepare_stop(l->ev, &l->prepare);
    if (ev_is_active(&l->idle)) ev_idle_stop(l->ev, &l->idle);
    if (stop_signal_loop == l) stop_signal_loop = NULL;
    int had_stop_signals = ev_is_active(&l->sig[1]);
    for (int i = 0; i < 3; i++)
        if (ev_is_active(&l->sig[i])) { ev_ref(l->ev); ev_signal_stop(l->ev, &l->sig[i]); }
    /* The process is ending (the loop closes from lua_close): libev put back
     * the default action, and a SIGINT/SIGTERM sent now (a supervisor that
     * stops a bot which has just finished by itself) would kill it with the
     * signal instead of letting it exit 0. Keep the handler: with no loop,
     * the first one is absorbed, a second takes the default action. */
    if (had_stop_signals) {
        stop_signal_unhandled = 0;
        install_stop_handler(SIGINT);
        install_stop_handler(SIGTERM);
    }
    ev_loop_destroy(l->ev);
    l->ev = NULL;
}

void mw_loop_schedule(mw_loop *l, mw_task *t)
{
    if (t->queued) return;
    t->queued = 1;
    t->next = NULL;
    t->prev = l->tail;
    if (l->tail) l->tail->next = t; else l->head = t;
    l->tail = t;
    if (!ev_is_active(&l->idle)) ev_idle_start(l->ev, &l->idle);
}

void mw_loop_unschedule(mw_loop *l, mw_task *t)
{
    if (!t->queued) return;
    if (t->prev) t->prev->next = t->next; else l->head = t->next;
    if (t->next) t->next->prev = t->prev; else l->tail = t->prev;
    t->next = t->prev = NULL;
    t->queued = 0;
}

int mw_loop_run(mw_loop *l)
{
    ev_run(l->ev, 0);
    return 0;
}

void mw_loop_stop(mw_loop *l)
{
    ev_break(l->ev, EVBREAK_ALL);
}

static void signal_cb(struct ev_loop *ev, ev_signal *w, int revents)
{
    (void)revents;
    mw_loop *l = ev_userdata(ev);
    if (w->signum != SIGHUP) stop_signal_unhandled = 0;
    if (l->on_signal) l->on_signal(l, w->signum, l->signal_ud);
}

/* The real handler of SIGINT and SIGTERM, in place of libev's: the loop's
 * watcher only runs once the running callback returns to the loop, and a
 * runaway one never does. Async-signal-safe: a flag, the owner's interrupt
 * (which only arms a Lua hook), then libev's own path (ev_feed_signal is
 * safe from a handler). */
static void stop_signal_handler(int signum)
{
    int saved = errno;
    if (stop_signal_unhandled) {
        signal(signum, SIG_DFL);
        raise(signum);      /* blocked while this handler runs: delivered on return */
        errno = saved;
        return;
    }
    stop_signal_unhandled = 1;
    mw_loop *l = stop_signal_loop;
    if (l) {
        if (l->on_interrupt) l->on_interrupt(l->signal_ud);
        ev_feed_signal(signum);
    }
    errno = saved;
}

static void install_stop_handler(int signum)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = stop_signal_handler;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(signum, &sa, NULL);
}

void mw_loop_watch_signals(mw_loop *l, void (*fn)(mw_loop *, int, void *),
                           void (*interrupt)(void *), void *ud)
{
    static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    l->on_signal = fn;
    l->on_interrupt = interrupt;
    l->signal_ud = ud;
    stop_signal_loop = l;
    for (int i = 0; i < 3; i++) {
        if (ev_is_active(&l->sig[i])) continue;
        ev_signal_init(&l->sig[i], signal_cb, sigs[i]);
        ev_signal_start(l->ev, &l->sig[i]);
        ev_unref(l->ev);
        if (sigs[i] == SIGHUP) continue; /* a reload interrupts nothing */
        install_stop_handler(sigs[i]);
    }
}

struct mw_dns *mw_loop_dns(mw_loop *l, char *err, size_t errcap)
{
    if (!l->dns) l->dns = mw_dns_new(l->ev, err, errcap);
    return l->dns;
}

double mw_monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
