/* Unit tests of the loop's timers: the keepalive accounting of deadlines
 * (timers that never keep the loop alive) when one is stopped or re-armed
 * by another callback of the loop iteration in which it expired. */
#include "timer.h"
#include "mwtest.h"
#include <time.h>

static int deadline_calls, tick_calls;
static mw_timer deadline, tick;

static void on_deadline(mw_timer *t, void *ud) { (void)t; (void)ud; deadline_calls++; }

/* Runs first (it expired first); the deadline expired too and waits. */
static void on_tick(mw_timer *t, void *ud)
{
    (void)ud;
    tick_calls++;
    if (tick_calls == 1) mw_timer_start(&deadline, 10.0, 0); /* pushed back: must not fire now */
    if (tick_calls == 3) mw_timer_stop(t);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_rearm_expired_deadline(void)
{
    mw_loop l;
    MW_CHECK_EQ_INT(mw_loop_init(&l), 0);
    mw_timer_init(&tick, &l, on_tick, NULL, 1);
    mw_timer_init(&deadline, &l, on_deadline, NULL, 0);
    mw_timer_start(&tick, 0.001, 0.01);
    mw_timer_start(&deadline, 0.002, 0);
    sleep_ms(20); /* both are due before the loop first looks */
    ev_run(l.ev, 0);
    /* the loop ran until the tick stopped (a lost unref ended it after the
     * first tick), and the re-armed deadline did not fire for its old time */
    MW_CHECK_EQ_INT(tick_calls, 3);
    MW_CHECK_EQ_INT(deadline_calls, 0);
    MW_CHECK(mw_timer_active(&deadline));
    mw_timer_stop(&deadline);
    mw_loop_close(&l);
}

int main(void)
{
    MW_RUN(test_rearm_expired_deadline);
    return MW_DONE();
}
