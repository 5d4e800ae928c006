/* loop: the libev loop, deferred tasks, the pre-poll flush and signals.
 * Knows nothing of Lua, protocols or frame bits. */
#ifndef MW_LOOP_H
#define MW_LOOP_H
#include <ev.h>
#include <stddef.h>
#include "buf.h"

/* The struct of type T whose member m is at p: watchers and tasks are
 * embedded in their owners' structs, as libev's manual does it. */
#define container_of(p, T, m) ((T *)((char *)(p) - offsetof(T, m)))

typedef struct mw_loop mw_loop;
typedef struct mw_task mw_task;

/* A unit of deferred work, embedded in its owner's struct. Tasks run from
 * the loop's ev_prepare, i.e. after every callback of this iteration has
 * returned and before the loop polls: that is how "never call back before
 * returning" and "coalesce writes into one syscall" are both achieved. */
struct mw_task {
    mw_task *next, *prev;
    void (*run)(mw_task *);
    int queued;
};

struct mw_dns;

struct mw_loop {
    struct ev_loop *ev;
    ev_prepare prepare;
    ev_idle idle;          /* active while tasks are queued: keeps the poll from blocking */
    mw_task *head, *tail;
    struct mw_dns *dns;    /* created on first use */
    ev_signal sig[3];      /* SIGINT, SIGTERM, SIGHUP */
    void (*on_signal)(mw_loop *, int signum, void *ud);
    void (*on_interrupt)(void *ud); /* from the signal handler itself */
    void *signal_ud;
    /* Every connection reads into this block while it has no partial
     * message of its own, so an idle connection holds no read buffer. */
    mw_buf scratch;
    int scratch_busy;
};

/* Returns 0, or -1 when libev cannot create a loop. */
int mw_loop_init(mw_loop *l);
/* Frees the loop and the resolver; every watcher must already be stopped. */
void mw_loop_close(mw_loop *l);
/* Queue a task (no-op when already queued). */
void mw_loop_schedule(mw_loop *l, mw_task *t);
/* Remove a queued task (no-op when not queued). */
void mw_loop_unschedule(mw_loop *l, mw_task *t);
/* Run until nothing is active or mw_loop_stop; returns 0. */
int mw_loop_run(mw_loop *l);
void mw_loop_stop(mw_loop *l);
/* Watch SIGINT, SIGTERM and SIGHUP; the watchers do not keep the loop alive.
 * fn(l, signum, ud) runs from the loop. interrupt(ud) runs inside the real
 * handler of SIGINT and SIGTERM, at once, whatever is running: it must be
 * async-signal-safe. A second SIGINT/SIGTERM that arrives before the loop
 * has run fn for the first takes the signal's default action (the process
 * is stuck: kill it). One loop per process owns these signals. */
void mw_loop_watch_signals(mw_loop *l, void (*fn)(mw_loop *, int, void *),
                           void (*interrupt)(void *), void *ud);
/* The resolver, created on first use; NULL (with err filled) on failure. */
struct mw_dns *mw_loop_dns(mw_loop *l, char *err, size_t errcap);
/* Monotonic clock in seconds. */
double mw_monotonic(void);
#endif
