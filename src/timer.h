/* timer: one-shot and repeating timers on the loop, for Timer and for
 * per-connection deadlines. Knows nothing of Lua or protocols. */
#ifndef MW_TIMER_H
#define MW_TIMER_H
#include "loop.h"

typedef struct mw_timer mw_timer;
typedef void (*mw_timer_fn)(mw_timer *t, void *ud);

/* Embedded in its owner. `keepalive` 0 means the timer never keeps the loop
 * running by itself (deadlines do not, script timers do). */
struct mw_timer {
    ev_timer w;
    mw_loop *loop;
    mw_timer_fn fn;
    void *ud;
    int keepalive;
    int unref;      /* holds one ev_unref of the loop (keepalive 0, armed) */
};

void mw_timer_init(mw_timer *t, mw_loop *l, mw_timer_fn fn, void *ud, int keepalive);
/* (Re)arm: first expiry after `after` seconds, then every `repeat` (0: once).
 * An expiry due but not yet delivered is dropped. */
void mw_timer_start(mw_timer *t, double after, double repeat);
/* Disarm (idempotent; a no-op on a zeroed timer never initialised): the
 * callback does not run after this returns, even when the timer expired in
 * this loop iteration and its turn is still to come. */
void mw_timer_stop(mw_timer *t);
/* 1 while the callback is still to come: armed, or expired in this loop
 * iteration and not yet run. 0 inside a one-shot's own callback. */
int mw_timer_active(const mw_timer *t);
#endif
