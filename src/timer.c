/* timer: one-shot and repeating timers on the loop.
 * Knows nothing of Lua or protocols. */
#include "timer.h"
#include <stddef.h>

static void timer_cb(struct ev_loop *ev, ev_timer *w, int revents)
{
    (void)revents;
    mw_timer *t = (mw_timer *)((char *)w - offsetof(mw_timer, w));
    /* A one-shot timer is inactive now: balance the unref before the
     * callback, which may free or re-arm it. */
    if (t->unrefd && !ev_is_active(w)) { ev_ref(ev); t->unrefd = 0; }
    t->fn(t, t->ud);
}

void mw_timer_init(mw_timer *t, mw_loop *l, mw_timer_fn fn, void *ud, int keepalive)
{
    ev_timer_init(&t->w, timer_cb, 0., 0.);
    t->loop = l;
    t->fn = fn;
    t->ud = ud;
    t->keepalive = keepalive;
    t->unrefd = 0;
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
    if (!t->keepalive) { ev_unref(t->loop->ev); t->unrefd = 1; }
}

/* A one-shot timer that expired in this loop iteration is inactive with its
 * callback still pending (another callback of the iteration runs first and
 * may stop or re-arm it): the unref is given back by the flag, not by
 * ev_is_active, and ev_timer_stop, even on an inactive watcher, drops the
 * pending callback, which would otherwise run for the new deadline. */
void mw_timer_stop(mw_timer *t)
{
    if (t->unrefd) { ev_ref(t->loop->ev); t->unrefd = 0; }
    ev_timer_stop(t->loop->ev, &t->w);
}

int mw_timer_active(const mw_timer *t) { return ev_is_active(&t->w); }
