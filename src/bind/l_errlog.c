/* l_errlog: how callback errors reach stderr: each in full with its
 * traceback, except floods of the same error, which are counted and summed
 * up once a second. Knows no syscalls and no frame bits. */
#include "bind.h"
#include "timer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An error is "the same" as an earlier one when both its message (the text
 * before any traceback, which holds error()'s file:line) and the callback
 * kind (`what`: onMessage, timer...) match, and the earlier one happened
 * less than WINDOW seconds ago: a flood. After a quiet second the next one
 * is printed in full again. A few distinct errors are tracked at once, so
 * that two failures alternating in a flood are each limited. */
#define SLOTS 8
#define WINDOW 1.0

typedef struct {
    char *key;              /* message without traceback; NULL: free slot */
    size_t len;
    char what[32];
    unsigned long count;    /* suppressed since this error was last printed or summed up */
    double last_seen;
} errslot;

struct l_errlog {
    errslot slot[SLOTS];
    mw_timer tick;          /* ends the window; never keeps the loop alive */
    int open;               /* a window is under way: counts are pending */
    double window_start;
};

static const char tb_mark[] = "\nstack traceback:";

static size_t key_len(const char *msg, size_t len)
{
    const char *tb = strstr(msg, tb_mark);
    return tb ? (size_t)(tb - msg) : len;
}

static errslot *find(struct l_errlog *e, const char *what, const char *msg, size_t len)
{
    for (int i = 0; i < SLOTS; i++) {
        errslot *s = &e->slot[i];
        if (s->key && s->len == len && strncmp(s->what, what, sizeof s->what - 1) == 0
            && memcmp(s->key, msg, len) == 0)
            return s;
    }
    return NULL;
}

/* 1234567 -> "1,234,567" */
static void thousands(char *out, size_t cap, unsigned long n)
{
    char digits[32];
    int nd = snprintf(digits, sizeof digits, "%lu", n);
    size_t o = 0;
    for (int i = 0; i < nd && o + 2 < cap; i++) {
        if (i > 0 && (nd - i) % 3 == 0) out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

static void summary(errslot *s, double secs)
{
    if (!s->count) return;
    char num[40];
    thousands(num, sizeof num, s->count);
    secs = (double)(long)(secs * 10 + 0.5) / 10; /* 0.1 s steps: "1s", "0.4s" */
    if (secs < 0.1) secs = 0.1;
    /* the first line of the message, to tell floods of different errors apart */
    size_t first = strcspn(s->key, "\n");
    if (first > s->len) first = s->len;
    fprintf(stderr, "moonwire: ... %s more of the same error in the last %gs (error in %s: %.*s%s)\n",
            num, secs, s->what, (int)(first > 120 ? 120 : first), s->key,
            first > 120 ? "..." : "");
    fflush(stderr);
    s->count = 0;
}

static void flush_all(struct l_errlog *e)
{
    double secs = mw_monotonic() - e->window_start;
    for (int i = 0; i < SLOTS; i++) summary(&e->slot[i], secs);
    e->open = 0;
    mw_timer_stop(&e->tick);
}

static void tick_cb(mw_timer *t, void *ud)
{
    struct l_errlog *e = ud;
    /* A tick that expired in the loop iteration where a callback had
     * already ended its window and opened the next runs late: it must not
     * end the new window early. */
    double left = e->window_start + WINDOW - mw_monotonic();
    if (e->open && left > 0.01) { mw_timer_start(t, left, 0); return; }
    flush_all(e);
}

static struct l_errlog *errlog(mw_rt *rt)
{
    if (!rt->errlog) {
        rt->errlog = calloc(1, sizeof *rt->errlog);
        if (rt->errlog) mw_timer_init(&rt->errlog->tick, &rt->loop, tick_cb, rt->errlog, 0);
    }
    return rt->errlog;
}

int l_errlog_repeat(mw_rt *rt, const char *what, const char *msg, size_t len)
{
    struct l_errlog *e = rt->errlog;
    if (!e || !what) return 0;
    errslot *s = find(e, what, msg, key_len(msg, len));
    return s && mw_monotonic() - s->last_seen < WINDOW;
}

void l_errlog_report(mw_rt *rt, const char *what)
{
    lua_State *L = rt->L;
    size_t len = 0;
    const char *msg = lua_tolstring(L, -1, &len);
    if (!msg) { msg = "(non-string error)"; len = strlen(msg); }
    struct l_errlog *e = errlog(rt);
    if (!e) { /* out of memory: print them all */
        fprintf(stderr, "moonwire: error in %s: %s\n", what, msg);
        fflush(stderr);
        lua_pop(L, 1);
        return;
    }
    double now = mw_monotonic();
    size_t klen = key_len(msg, len);
    errslot *s = find(e, what, msg, klen);
    if (s && now - s->last_seen < WINDOW) {
        s->last_seen = now;
        s->count++;
        if (!e->open) {
            e->open = 1;
            e->window_start = now;
            mw_timer_start(&e->tick, WINDOW, 0);
        } else if (now - e->window_start >= WINDOW) {
            flush_all(e); /* the loop is starved: sum up from here */
        }
        lua_pop(L, 1);
        return;
    }
    if (!s) { /* a free slot, or the one seen longest ago */
        s = &e->slot[0];
        for (int i = 0; i < SLOTS && s->key; i++)
            if (!e->slot[i].key || e->slot[i].last_seen < s->last_seen) s = &e->slot[i];
        summary(s, now - e->window_start);
        char *key = malloc(klen + 1);
        if (key) {
            memcpy(key, msg, klen);
            key[klen] = '\0';
        }
        free(s->key);
        s->key = key;
        s->len = klen;
        snprintf(s->what, sizeof s->what, "%s", what);
    } else {
        summary(s, now - e->window_start);
    }
    s->last_seen = now;
    fprintf(stderr, "moonwire: error in %s: %s\n", what, msg);
    fflush(stderr);
    lua_pop(L, 1);
}

void l_errlog_flush(mw_rt *rt)
{
    if (rt->errlog) flush_all(rt->errlog);
}

void l_errlog_reset(mw_rt *rt)
{
    struct l_errlog *e = rt->errlog;
    if (!e) return;
    flush_all(e);
    for (int i = 0; i < SLOTS; i++) { free(e->slot[i].key); e->slot[i].key = NULL; }
}

void l_errlog_free(mw_rt *rt)
{
    struct l_errlog *e = rt->errlog;
    if (!e) return;
    flush_all(e);
    for (int i = 0; i < SLOTS; i++) free(e->slot[i].key);
    free(e);
    rt->errlog = NULL;
}
