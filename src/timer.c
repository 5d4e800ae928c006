/* timer: one-shot and repeating timers on the loop.
 * Knows nothing of Lua or protocols. */
#include "timer.h"
#include <stddef.h>

/* A timer that does not keep the loop alive holds one ev_unref from its
 * start until its stop or, for a one-shot, until its expiry is delivered;
 * `unref` says whether it holds it, so every ev_unref is paired with
 * exactly one ev_ref whatever the order of expiry, stop and restart.
 * (libev stops an expired one-shot itself, before its callback runs: the
 * watcher is then inactive but pending, and ev_is_active cannot tell.) */

static void timer_cb(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)revents;
    mw_timer *t = (mw_timer *)((char *)w - offsetof(mw_timer, w));
    /* Balance the unref before the callback, which may free or re-arm it. */
    if (t->unref && !ev_is_active(w)) { ev_ref(ev); t->unref = 0; }
    t->fn(t, t->ud);
}

void mw_timer_init(mw_timer *t, mw_loop *l, mw_timer_fn fn, void *ud, int keepalive)
{
    ev_timer_init(&t->w, timer_cb, 0., 0.);
    t->loop = l;
    t->fn = fn;
    t->ud = ud;
    t->keepalive = keepalive;
    t->unref = 0;
}

void mw_timer_start(mw_timer *t, double after, double repeat)
{
    mw_timer_stop(t);
    if (after < 0) after = 0;
    /* libev counts from the time cached at the start of this loop
     * iteration; a slow script before this call must not shorten the wait. */
    ev_now_update(t->loop->ev);
    ev_timer_set(&t->w, after, repeat);
    ev_timer_start(t->loop->ev, &t->w);
    if (!t->keepalive) { ev_unref(t->loop->ev); t->unref = 1; }
}

void mw_timer_stop(mw_timer *t)
{
    if (!t->loop) return;   /* zeroed, never initialised: nothing to stop */
    /* Also for an inactive watcher: ev_timer_stop clears a pending expiry,
     * so a stopped timer's callback never runs. */
    ev_timer_stop(t->loop->ev, &t->w);
    if (t->unref) { ev_ref(t->loop->ev); t->unref = 0; }
}

int mw_timer_active(const mw_timer *t) { return ev_is_active(&t->w) || ev_is_pending(&t->w); }
