/* test_timer: mw_timer on a real mw_loop, against a model. Random sequences
 * of starts, stops and restarts (one-shot and repeating, keepalive or not,
 * deadlines a microsecond apart, from the top level and from inside
 * callbacks), each followed by a real loop iteration; after each, the
 * loop's reference count must be what the model says and no callback of a
 * stopped timer may have run.
 *
 * libev 4.33 has no call that reads the reference count, so the test
 * measures it: every change of the model's count of armed keepalive timers
 * is cancelled at once with ev_unref/ev_ref, so a correct loop holds zero
 * references after every iteration, and ev_run(loop, 0) then ends after
 * exactly one iteration. Any other count makes it start a second one,
 * which a prepare watcher sees (and ends, so a failure cannot hang).
 * An idle watcher keeps the iterations from blocking.
 *
 * Seeds: a few fixed ones, then random ones from wolfCrypt; each is printed.
 * MW_TIMER_SEED=<n> replays one seed; MW_TIMER_STEPS=<n> sets the steps. */
#include "mwtest.h"
#include "crypto.h"
#include "timer.h"
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>

#define NSLOT 8
#define TOL 1e-3      /* libev's clock against ev_now: a callback may not run earlier */
#define LOST 2.0      /* an armed timer this far past its deadline was lost */

typedef struct slot {
    mw_timer t;
    int idx;
    int armed;        /* model: its callback is still to come */
    int keepalive;
    double after, repeat;
    double due;       /* the earliest ev_now its next callback may see */
    double since;     /* ev_now at its start or its latest callback */
} slot;

static struct {
    mw_loop l;
    slot s[NSLOT];
    uint64_t rng;
    uint64_t seed;
    long step;
    int shift;        /* ev_unref calls cancelling the model's keepalive count */
    int iters;        /* iterations of the current ev_run */
    ev_prepare probe;
    ev_idle spin;
    long failures;    /* each kind is printed once per seed */
    const char *seen[8];
    long fires, cb_ops, pending_hits;   /* pending_hits: stops/restarts of a due expiry */
} P;

static uint64_t rnd(void)
{
    /* splitmix64: tiny, and every seed gives a full-period stream */
    uint64_t z = (P.rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static unsigned below(unsigned n) { return (unsigned)(rnd() % n); }

static void fail(const char *what, int idx, int got, int want)
{
    mwt_cur_failed = 1;
    P.failures++;
    size_t i = 0;
    while (i < sizeof P.seen / sizeof P.seen[0] && P.seen[i] && P.seen[i] != what) i++;
    if (i == sizeof P.seen / sizeof P.seen[0] || P.seen[i]) return;
    P.seen[i] = what;
    fprintf(stderr, "seed %" PRIu64 " step %ld, timer %d: %s (got %d, want %d)\n", P.seed, P.step,
            idx, what, got, want);
}

/* The model's count changes: cancel the change in the loop's count. */
static void set_armed(slot *s, int armed)
{
    if (s->armed == armed) return;
    s->armed = armed;
    if (!s->keepalive) return;
    if (armed) { ev_unref(P.l.ev); P.shift++; }
    else { ev_ref(P.l.ev); P.shift--; }
}

static void fire(mw_timer *t, void *ud);

static void op_start(slot *s, double after, double repeat)
{
    P.pending_hits += ev_is_pending(&s->t.w) != 0;
    mw_timer_start(&s->t, after, repeat);
    s->after = after;
    s->repeat = repeat;
    s->since = ev_now(P.l.ev);           /* mw_timer_start updated ev_now */
    s->due = s->since + after;
    set_armed(s, 1);
}

static void op_stop(slot *s)
{
    P.pending_hits += ev_is_pending(&s->t.w) != 0;
    mw_timer_stop(&s->t);
    set_armed(s, 0);
}

/* Re-arm with the same schedule, from now (an armed one's due expiry is dropped). */
static void op_again(slot *s)
{
    if (s->armed) op_start(s, s->after, s->repeat);
}

/* Stop, and make it another timer in the same memory (as when an owner is
 * freed and another allocated in its place): a pending expiry of the old
 * one must not reach the new one. */
static void op_reinit(slot *s)
{
    op_stop(s);
    s->keepalive = !s->keepalive;
    mw_timer_init(&s->t, &P.l, fire, s, s->keepalive);
}

static const double AFTERS[] = {0, 0, 0, 2e-5, 5e-5, 1e-4, 2e-4, 1e-3};
static const double REPEATS[] = {2e-5, 5e-5, 1e-4, 3e-4, 1e-3};
#define PICK(a) (a[below(sizeof a / sizeof a[0])])

/* One random operation; `self` is the timer whose callback runs (NULL at the top level). */
static void random_op(slot *self)
{
    slot *s = &P.s[below(NSLOT)];
    switch (below(self ? 8 : 7)) {
    case 0: op_start(s, PICK(AFTERS), 0); break;
    case 1: op_start(s, PICK(AFTERS), PICK(REPEATS)); break;
    case 2: op_stop(s); break;
    case 3: op_again(s); break;
    case 4: op_reinit(s); break;
    case 5: { /* several deadlines that coincide to the microsecond */
        double after = PICK(AFTERS);
        int n = 2 + (int)below(4);
        for (int i = 0; i < n; i++) {
            slot *o = &P.s[below(NSLOT)];
            op_start(o, after, below(3) ? 0 : PICK(REPEATS));
        }
        break;
    }
    case 6: { /* stop every timer with an expiry due in this iteration */
        for (int i = 0; i < NSLOT; i++)
            if (ev_is_pending(&P.s[i].t.w)) op_stop(&P.s[i]);
        break;
    }
    default: /* the running timer acts on itself */
        if (below(2)) op_stop(self);
        else op_start(self, PICK(AFTERS), below(2) ? 0 : PICK(REPEATS));
        break;
    }
}

static void check_active(const char *what)
{
    for (int i = 0; i < NSLOT; i++)
        if (!!mw_timer_active(&P.s[i].t) != P.s[i].armed) fail(what, i, !!mw_timer_active(&P.s[i].t), P.s[i].armed);
}

static void fire(mw_timer *t, void *ud)
{
    slot *s = ud;
    P.fires++;
    if (&s->t != t) fail("callback got another timer", s->idx, 0, 0);
    if (!s->armed) { fail("the callback of a stopped timer ran", s->idx, 1, 0); return; }
    if (ev_now(P.l.ev) < s->due - TOL) fail("a callback ran before its deadline", s->idx, 1, 0);
    s->since = ev_now(P.l.ev);
    if (s->repeat > 0) s->due += s->repeat;
    else set_armed(s, 0);
    /* Within this iteration, others may be expired and still to run: they
     * count as active until then. */
    check_active("mw_timer_active in a callback differs from the model");
    int n = (int)below(4);
    for (int i = 0; i < n; i++) { random_op(s); P.cb_ops++; }
}

static void probe_cb(struct ev_loop *ev, ev_prepare *w, int revents)
{
    (void)w; (void)revents;
    if (++P.iters >= 2) ev_break(ev, EVBREAK_ONE);
}

static void spin_cb(struct ev_loop *ev, ev_idle *w, int revents) { (void)ev; (void)w; (void)revents; }

/* One loop iteration, then the checks. */
static void iterate(void)
{
    P.iters = 0;
    ev_run(P.l.ev, 0);
    if (P.iters != 1) fail("the loop's reference count is not the model's", -1, P.iters, 1);
    check_active("mw_timer_active after an iteration differs from the model");
    double now = ev_now(P.l.ev);
    for (int i = 0; i < NSLOT; i++) {
        const slot *s = &P.s[i];
        if (ev_is_pending(&s->t.w)) fail("an expiry is still pending after the iteration", i, 1, 0);
        if (s->armed && now > s->since + (s->after > s->repeat ? s->after : s->repeat) + LOST)
            fail("an armed timer never ran", i, 0, 1);
    }
}

static void run_seed(uint64_t seed, long steps)
{
    memset(&P, 0, sizeof P);
    P.seed = P.rng = seed;
    MW_CHECK(mw_loop_init(&P.l) == 0);
    ev_prepare_init(&P.probe, probe_cb);
    ev_prepare_start(P.l.ev, &P.probe);
    ev_unref(P.l.ev);
    ev_idle_init(&P.spin, spin_cb);
    ev_idle_start(P.l.ev, &P.spin);
    ev_unref(P.l.ev);
    for (int i = 0; i < NSLOT; i++) {
        P.s[i].idx = i;
        P.s[i].keepalive = (int)below(2);
        mw_timer_init(&P.s[i].t, &P.l, fire, &P.s[i], P.s[i].keepalive);
    }
    iterate();   /* the baseline: no timer, no reference */
    for (P.step = 1; P.step <= steps; P.step++) {
        unsigned n = below(3);   /* 0, 1 or 2 operations before the iteration */
        for (unsigned i = 0; i < n; i++) random_op(NULL);
        if (!below(8)) {
            /* let time pass: iterate until the next deadline is behind us */
            double next = 0;
            for (int i = 0; i < NSLOT; i++)
                if (P.s[i].armed && (next == 0 || P.s[i].due < next)) next = P.s[i].due;
            while (next && ev_time() < next + 1e-5) iterate();
        }
        iterate();
    }
    /* Drain: repeating timers stop, every one-shot still armed must run. */
    for (int i = 0; i < NSLOT; i++) if (P.s[i].repeat > 0) op_stop(&P.s[i]);
    double until = ev_time() + LOST;
    for (;;) {
        int armed = 0;
        for (int i = 0; i < NSLOT; i++) armed += P.s[i].armed;
        if (!armed || ev_time() > until) {
            if (armed) fail("a one-shot never ran", -1, armed, 0);
            break;
        }
        for (int i = 0; i < NSLOT; i++) if (P.s[i].repeat > 0) op_stop(&P.s[i]);
        iterate();
    }
    for (int i = 0; i < NSLOT; i++) op_stop(&P.s[i]);
    iterate();
    MW_CHECK_EQ_INT(P.shift, 0);
    printf("seed %" PRIu64 ": %ld steps, %ld callbacks, %ld operations from callbacks, %ld on a due "
           "expiry, %ld failures\n", seed, P.step - 1, P.fires, P.cb_ops, P.pending_hits, P.failures);
    MW_CHECK(P.pending_hits > 0);   /* the case this test is for did occur */
    ev_ref(P.l.ev);
    ev_idle_stop(P.l.ev, &P.spin);
    ev_ref(P.l.ev);
    ev_prepare_stop(P.l.ev, &P.probe);
    mw_loop_close(&P.l);
}

static long steps_wanted(void)
{
    const char *e = getenv("MW_TIMER_STEPS");
    return e && atol(e) > 0 ? atol(e) : 20000;
}

static void test_random_sequences(void)
{
    const char *e = getenv("MW_TIMER_SEED");
    long steps = steps_wanted();
    if (e) { run_seed(strtoull(e, NULL, 0), steps); return; }
    static const uint64_t fixed[] = {1, 2, 3, 0x5eed, 20261202};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) run_seed(fixed[i], steps);
    for (int i = 0; i < 3; i++) {
        uint64_t seed;
        MW_CHECK(mw_random(&seed, sizeof seed) == 0);
        run_seed(seed, steps);
    }
}

/* The keepalive pattern of proto_ws, at 1/250 scale: a repeating "ping"
 * every 2 ms arms a one-shot "wait" of 4 ms when none is armed, so the
 * wait's deadline and every second ping fall into one iteration, the ping
 * first. Neither keeps the loop alive; a one-shot keepalive timer at 40 ms
 * does. The wait must never run early (a stale expiry of the one the ping
 * just restarted), and the loop must not end before the 40 ms timer ran. */
static struct {
    mw_timer ping, wait, keep;
    double wait_started;
    int pings, waits, early, kept;
} K;

static void k_ping(mw_timer *t, void *ud)
{
    (void)t; (void)ud;
    K.pings++;
    if (!mw_timer_active(&K.wait)) {
        mw_timer_start(&K.wait, 0.004, 0);
        K.wait_started = ev_now(K.wait.loop->ev);
    }
}

static void k_wait(mw_timer *t, void *ud)
{
    (void)ud;
    K.waits++;
    if (ev_now(t->loop->ev) - K.wait_started < 0.004 - TOL) K.early++;
}

static void k_keep(mw_timer *t, void *ud)
{
    (void)t; (void)ud;
    K.kept++;
    mw_timer_stop(&K.ping);
    mw_timer_stop(&K.wait);
}

static void test_ping_and_wait_coincide(void)
{
    mw_loop l;
    memset(&K, 0, sizeof K);
    MW_CHECK(mw_loop_init(&l) == 0);
    mw_timer_init(&K.ping, &l, k_ping, NULL, 0);
    mw_timer_init(&K.wait, &l, k_wait, NULL, 0);
    mw_timer_init(&K.keep, &l, k_keep, NULL, 1);
    mw_timer_start(&K.ping, 0.002, 0.002);
    mw_timer_start(&K.keep, 0.040, 0);
    double t0 = ev_time();
    ev_run(l.ev, 0);
    MW_CHECK_EQ_INT(K.kept, 1);                /* the loop did not end early */
    MW_CHECK(ev_time() - t0 >= 0.040 - TOL);
    MW_CHECK_EQ_INT(K.early, 0);               /* no stale expiry of a restarted wait */
    MW_CHECK(K.pings >= 10);
    MW_CHECK(K.waits >= 3);
    MW_CHECK(!mw_timer_active(&K.ping) && !mw_timer_active(&K.wait) && !mw_timer_active(&K.keep));
    printf("ping/wait: %d pings, %d waits, %d early\n", K.pings, K.waits, K.early);
    mw_loop_close(&l);
}

int main(void)
{
    MW_RUN(test_ping_and_wait_coincide);
    MW_RUN(test_random_sequences);
    return MW_DONE();
}
