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
    int unrefd;     /* this timer holds one ev_unref, to give back */
};

void mw_timer_init(mw_timer *t, mw_loop *l, mw_timer_fn fn, void *ud, int keepalive);
/* (Re)arm: first expiry after `after` seconds, then every `repeat` (0: once). */
void mw_timer_start(mw_timer *t, double after, double repeat);
void mw_timer_stop(mw_timer *t);
int mw_timer_active(const mw_timer *t);
#endif
