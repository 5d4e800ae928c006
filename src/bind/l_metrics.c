/* l_metrics: conn:stats(), mw.stats(), mw.histogram(), the Prometheus text
 * of the process (mw.metricsText, and --metrics FILE every few seconds),
 * --stats N's line on stderr. Counting itself is the C connection's (plain
 * increments, conn.c); this file only reads the counters, at a script's
 * call or a timer's tick. Knows no syscalls and no frame bits. */
#include "bind.h"
#include "conn.h"
#include "histo.h"
#include "metrics.h"
#include "timer.h"
#include "workers.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MW_HISTO_MT "moonwire.Histogram"
#define HISTOS_KEY "moonwire.histograms"  /* registry: name -> histogram userdata */

typedef struct l_metrics {
    mw_metrics retired;     /* the counters of collected connections, by name */
    mw_metrics snap;        /* the last snapshot (scratch) */
    mw_metrics ended;       /* the parent of workers: ended workers' totals (a
                             * worker forked later inherits it, unused: its own
                             * totals are `retired` and its connections) */
    mw_timer file_timer, stats_timer;
    double last_at;         /* --stats: the previous line's time and totals */
    uint64_t last_in, last_out, last_bin;
} l_metrics;

/* Set by main before the script runs (--metrics, --metrics-interval, --stats). */
static const char *cfg_file;
static double cfg_interval = 5, cfg_stats;

void mw_rt_metrics_config(const char *file, double interval, double stats_every)
{
    cfg_file = file;
    if (interval > 0) cfg_interval = interval;
    cfg_stats = stats_every;
}

static l_metrics *get(mw_rt *rt)
{
    if (rt->metrics) return rt->metrics;
    l_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    if (mw_metrics_init(&m->retired) != 0 || mw_metrics_init(&m->snap) != 0 || mw_metrics_init(&m->ended) != 0) {
        mw_metrics_free(&m->retired);
        mw_metrics_free(&m->snap);
        free(m);
        return NULL;
    }
    rt->metrics = m;
    return m;
}

/* One connection's counters into series s (open: counts as a connection). */
static void add_conn(mw_mseries *s, const mw_conn_stats *st, int open)
{
    s->conns += open != 0;
    s->connects += st->connects;
    s->reconnects += st->reconnects;
    s->msgs_in += st->msgs_in;
    s->msgs_out += st->msgs_out;
    s->bytes_in += st->bytes_in;
    s->bytes_out += st->bytes_out;
    if (st->sendq_high > s->sendq_high) s->sendq_high = st->sendq_high;
    s->up_seconds += st->up_total;
    if (open && st->rtt_smooth > s->rtt) s->rtt = st->rtt_smooth;
    for (int i = 0; i < st->ncodes; i++) mw_mseries_add_code(s, st->codes[i].code, st->codes[i].n);
    if (st->codes_other) mw_mseries_add_code(s, 0, st->codes_other);
}

static void add_to(mw_metrics *m, const char *name, const mw_conn_stats *st, int open)
{
    mw_mseries *t = mw_metrics_series(m, NULL);
    add_conn(t, st, open);
    if (name && name[0]) {
        mw_mseries *s = mw_metrics_series(m, name);
        if (s) add_conn(s, st, open);
    }
}

void l_metrics_retire(mw_rt *rt, const char *name, const struct mw_conn *c)
{
    l_metrics *m = rt->metrics ? rt->metrics : get(rt);
    if (!m || !c) return;
    mw_conn_stats st;
    mw_conn_get_stats(c, &st);
    add_to(&m->retired, name, &st, 0);
}

typedef struct l_histo { mw_histo h; } l_histo;

/* The runtime, the module functions' upvalue (no call into l_rt: no cycle). */
static mw_rt *up_rt(lua_State *L) { return lua_touserdata(L, lua_upvalueindex(1)); }

/* The snapshot of this process: retired + live connections + named histograms. */
static mw_metrics *snapshot(lua_State *L, mw_rt *rt)
{
    l_metrics *m = get(rt);
    if (!m) return NULL;
    mw_metrics_clear(&m->snap);
    if (mw_metrics_merge(&m->snap, &m->retired) != 0) return NULL;
    for (l_conn *lc = rt->conns; lc; lc = lc->next) {
        if (!lc->c) continue;
        mw_conn_stats st;
        mw_conn_get_stats(lc->c, &st);
        add_to(&m->snap, lc->name, &st, mw_conn_status(lc->c) == MW_ST_ESTABLISHED);
    }
    if (lua_getfield(L, LUA_REGISTRYINDEX, HISTOS_KEY) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            l_histo *h = luaL_testudata(L, -1, MW_HISTO_MT);
            mw_histo *dst = h && lua_type(L, -2) == LUA_TSTRING ? mw_metrics_histo(&m->snap, lua_tostring(L, -2)) : NULL;
            if (dst) mw_histo_merge(dst, &h->h);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
    return &m->snap;
}

/* ---- Lua tables ---- */

static void set_int(lua_State *L, const char *k, uint64_t v) { lua_pushinteger(L, (lua_Integer)v); lua_setfield(L, -2, k); }
static void set_num(lua_State *L, const char *k, double v) { lua_pushnumber(L, v); lua_setfield(L, -2, k); }

static void push_codes(lua_State *L, const mw_mseries *s)
{
    lua_createtable(L, 0, s->ncodes);
    for (int i = 0; i < s->ncodes; i++) {
        lua_pushinteger(L, (lua_Integer)s->codes[i].n);
        lua_rawseti(L, -2, s->codes[i].code);
    }
    lua_setfield(L, -2, "closeCodes");
}

static void push_series(lua_State *L, const mw_mseries *s)
{
    lua_createtable(L, 0, 12);
    set_int(L, "connections", s->conns);
    set_int(L, "connects", s->connects);
    set_int(L, "reconnects", s->reconnects);
    set_int(L, "messagesReceived", s->msgs_in);
    set_int(L, "messagesSent", s->msgs_out);
    set_int(L, "bytesReceived", s->bytes_in);
    set_int(L, "bytesSent", s->bytes_out);
    set_int(L, "sendQueueHighWater", s->sendq_high);
    set_num(L, "connectedSeconds", s->up_seconds);
    if (s->rtt > 0) set_num(L, "pingRtt", s->rtt);
    push_codes(L, s);
}

/* conn:stats() (a method of connections, l_conn.c registers it) */
int l_metrics_conn_stats(lua_State *L, const struct mw_conn *c)
{
    mw_conn_stats st;
    mw_conn_get_stats(c, &st);
    mw_mseries s;
    memset(&s, 0, sizeof s);
    add_conn(&s, &st, 1);
    push_series(L, &s);
    lua_pushnil(L);
    lua_setfield(L, -2, "connections");
    lua_pushnil(L);
    lua_setfield(L, -2, "pingRtt");
    if (st.rtt_last > 0) set_num(L, "pingRtt", st.rtt_last);
    if (st.rtt_smooth > 0) set_num(L, "pingRttSmoothed", st.rtt_smooth);
    return 1;
}

/* mw.stats(): the process totals, and byName[name] for each options.name */
static int l_stats(lua_State *L)
{
    mw_metrics *m = snapshot(L, up_rt(L));
    if (!m) return luaL_error(L, "mw.stats: out of memory");
    push_series(L, &m->series[0]);
    lua_createtable(L, 0, m->nseries - 1);
    for (int i = 1; i < m->nseries; i++) {
        push_series(L, &m->series[i]);
        lua_setfield(L, -2, m->series[i].name);
    }
    lua_setfield(L, -2, "byName");
    return 1;
}

static int push_buf(lua_State *L, mw_buf *b, int r)
{
    if (r != 0) { mw_buf_free(b); return luaL_error(L, "metrics: out of memory"); }
    lua_pushlstring(L, mw_buf_head(b), b->len);
    mw_buf_free(b);
    return 1;
}

/* mw.metricsText(): this process's Prometheus text */
static int l_metrics_text(lua_State *L)
{
    mw_metrics *m = snapshot(L, up_rt(L));
    if (!m) return luaL_error(L, "metrics: out of memory");
    mw_buf b;
    mw_buf_init(&b);
    return push_buf(L, &b, mw_metrics_render(m, &b));
}

/* mw.metricsBlob(): this process's totals as a blob (what a worker sends its parent) */
static int l_metrics_blob(lua_State *L)
{
    mw_metrics *m = snapshot(L, up_rt(L));
    if (!m) return luaL_error(L, "metrics: out of memory");
    mw_buf b;
    mw_buf_init(&b);
    return push_buf(L, &b, mw_metrics_encode(m, &b));
}

/* mw.metricsRender(blob, ...): the Prometheus text of the blobs' sum */
static int l_metrics_render(lua_State *L)
{
    int n = lua_gettop(L);
    mw_metrics sum, one;
    if (mw_metrics_init(&sum) != 0) return luaL_error(L, "metrics: out of memory");
    if (mw_metrics_init(&one) != 0) { mw_metrics_free(&sum); return luaL_error(L, "metrics: out of memory"); }
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *p = lua_tolstring(L, i, &len);
        if (!p || mw_metrics_decode(&one, (const unsigned char *)p, len) != 0 || mw_metrics_merge(&sum, &one) != 0) {
            mw_metrics_free(&sum);
            mw_metrics_free(&one);
            return luaL_argerror(L, i, "not a metrics blob (mw.metricsBlob)");
        }
    }
    mw_buf b;
    mw_buf_init(&b);
    int r = mw_metrics_render(&sum, &b);
    mw_metrics_free(&sum);
    mw_metrics_free(&one);
    return push_buf(L, &b, r);
}

/* ---- mw.histogram ---- */

static l_histo *check_h(lua_State *L, int i) { return luaL_checkudata(L, i, MW_HISTO_MT); }

/* mw.histogram([{name = "latency"}]): a named one is exported with the
 * metrics, and asking again for the name returns the same histogram (a
 * reload keeps its counts). */
static int l_histogram(lua_State *L)
{
    const char *name = NULL;
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        if (lua_getfield(L, 1, "name") != LUA_TNIL) {
            if (lua_type(L, -1) != LUA_TSTRING) return luaL_error(L, "mw.histogram: name must be a string, got %s", luaL_typename(L, -1));
            name = lua_tostring(L, -1);
            if (!name[0] || strlen(name) >= MW_METRICS_NAME)
                return luaL_error(L, "mw.histogram: name must be 1 to %d bytes", MW_METRICS_NAME - 1);
        }
        lua_pop(L, 1);
    }
    if (name) {
        lua_getfield(L, LUA_REGISTRYINDEX, HISTOS_KEY);
        if (lua_getfield(L, -1, name) != LUA_TNIL) return 1;
        lua_pop(L, 1);
        lua_pushnil(L);
        int count = 0;
        while (lua_next(L, -2)) { count++; lua_pop(L, 1); }
        if (count >= MW_METRICS_MAX_HISTOS)
            return luaL_error(L, "mw.histogram: at most %d named histograms", MW_METRICS_MAX_HISTOS);
    }
    l_histo *h = lua_newuserdatauv(L, sizeof *h, 0);
    mw_histo_init(&h->h);
    luaL_setmetatable(L, MW_HISTO_MT);
    if (name) {
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, name);
    }
    return 1;
}

static int h_record(lua_State *L)
{
    l_histo *h = check_h(L, 1);
    double v = luaL_checknumber(L, 2);
    lua_Integer n = luaL_optinteger(L, 3, 1);
    if (n < 0) return luaL_argerror(L, 3, "a count must not be negative");
    if (mw_histo_record_n(&h->h, v, (uint64_t)n) != 0)
        return luaL_argerror(L, 2, "a histogram records numbers >= 0");
    return 0;
}

static int h_percentile(lua_State *L)
{
    l_histo *h = check_h(L, 1);
    double p = luaL_checknumber(L, 2);
    luaL_argcheck(L, p >= 0 && p <= 100, 2, "a percentile is 0 to 100");
    if (h->h.count == 0) { lua_pushnil(L); return 1; }
    lua_pushnumber(L, mw_histo_percentile(&h->h, p));
    return 1;
}

static int h_count(lua_State *L) { lua_pushinteger(L, (lua_Integer)check_h(L, 1)->h.count); return 1; }
static int h_sum(lua_State *L) { lua_pushnumber(L, check_h(L, 1)->h.sum); return 1; }
static int h_none_or(lua_State *L, const l_histo *h, double v)
{
    if (h->h.count == 0) lua_pushnil(L); else lua_pushnumber(L, v);
    return 1;
}
static int h_min(lua_State *L) { l_histo *h = check_h(L, 1); return h_none_or(L, h, h->h.min); }
static int h_max(lua_State *L) { l_histo *h = check_h(L, 1); return h_none_or(L, h, h->h.max); }
static int h_mean(lua_State *L) { l_histo *h = check_h(L, 1); return h_none_or(L, h, mw_histo_mean(&h->h)); }
static int h_merge(lua_State *L) { mw_histo_merge(&check_h(L, 1)->h, &check_h(L, 2)->h); lua_settop(L, 1); return 1; }
static int h_reset(lua_State *L) { mw_histo_init(&check_h(L, 1)->h); return 0; }
static int h_tostring(lua_State *L)
{
    l_histo *h = check_h(L, 1);
    lua_pushfstring(L, "Histogram (%I values)", (lua_Integer)h->h.count);
    return 1;
}

/* ---- --metrics FILE and --stats N ---- */

static void render_to_file(const mw_metrics *m)
{
    mw_buf b;
    mw_buf_init(&b);
    char err[512];
    if (mw_metrics_render(m, &b) != 0) fprintf(stderr, "moonwire: --metrics %s: out of memory\n", cfg_file);
    else if (mw_metrics_write_file(cfg_file, mw_buf_head(&b), b.len, err, sizeof err) != 0)
        fprintf(stderr, "moonwire: --metrics: %s\n", err);
    mw_buf_free(&b);
}

/* A worker (worker.count > 1) sends its totals to the parent, which sums
 * every worker's into the file; one process writes the file itself. */
static void write_file(mw_rt *rt)
{
    mw_metrics *m = snapshot(rt->L, rt);
    if (!m) return;
    if (mw_workers_pipe() < 0) { render_to_file(m); return; }
    mw_buf b;
    mw_buf_init(&b);
    if (mw_metrics_encode(m, &b) == 0) mw_workers_send(mw_buf_head(&b), b.len);
    mw_buf_free(&b);
}

/* ---- the parent of worker processes: the sum of theirs ---- */

/* Decode a worker's blob into t: 0, or -1 (said) when it is malformed. */
static int decode_worker(mw_metrics *t, const unsigned char *p, size_t n)
{
    if (mw_metrics_decode(t, p, n) == 0) return 0;
    fprintf(stderr, "moonwire: --metrics: a worker's totals were malformed; left out\n");
    return -1;
}

/* An ended worker's counters count on; its gauges (open connections, RTT) do not. */
static void parent_retire(void *ud, const unsigned char *p, size_t n)
{
    l_metrics *lm = ud;
    mw_metrics t;
    if (mw_metrics_init(&t) != 0) return;
    if (decode_worker(&t, p, n) == 0) {
        for (int i = 0; i < t.nseries; i++) { t.series[i].conns = 0; t.series[i].rtt = 0; }
        mw_metrics_merge(&lm->ended, &t);
    }
    mw_metrics_free(&t);
}

static void parent_tick(void *ud, const unsigned char *const *p, const size_t *n, int count)
{
    l_metrics *lm = ud;
    mw_metrics t;
    mw_metrics_clear(&lm->snap);
    if (mw_metrics_merge(&lm->snap, &lm->ended) != 0 || mw_metrics_init(&t) != 0) return;
    for (int i = 0; i < count; i++) {
        if (decode_worker(&t, p[i], n[i]) == 0) mw_metrics_merge(&lm->snap, &t);
    }
    mw_metrics_free(&t);
    render_to_file(&lm->snap);
}

void l_metrics_workers_begin(mw_rt *rt)
{
    l_metrics *m = cfg_file ? get(rt) : NULL;
    if (!m) { mw_workers_set_sink(NULL); return; }
    mw_workers_sink sink = { cfg_interval, parent_tick, parent_retire, m };
    mw_workers_set_sink(&sink);
}

static void file_tick(mw_timer *t, void *ud) { (void)t; write_file(ud); }

static void human_bytes(char *out, size_t cap, double v)
{
    if (v >= 1e9) snprintf(out, cap, "%.1f GB", v / 1e9);
    else if (v >= 1e6) snprintf(out, cap, "%.1f MB", v / 1e6);
    else if (v >= 1e3) snprintf(out, cap, "%.1f kB", v / 1e3);
    else snprintf(out, cap, "%.0f B", v);
}

static void stats_tick(mw_timer *t, void *ud)
{
    (void)t;
    mw_rt *rt = ud;
    l_metrics *lm = get(rt);
    mw_metrics *m = snapshot(rt->L, rt);
    if (!lm || !m) return;
    const mw_mseries *s = &m->series[0];
    double now = mw_monotonic(), dt = now - lm->last_at;
    if (dt <= 0) dt = 1e-9;
    char bin[32], rtt[32] = "";
    human_bytes(bin, sizeof bin, (double)(s->bytes_in - lm->last_bin) / dt);
    if (s->rtt > 0) snprintf(rtt, sizeof rtt, ", rtt %.1f ms", s->rtt * 1e3);
    fprintf(stderr, "moonwire: %llu conns, %.0f msg/s in, %.0f msg/s out, %s/s in%s\n",
            (unsigned long long)s->conns, (double)(s->msgs_in - lm->last_in) / dt,
            (double)(s->msgs_out - lm->last_out) / dt, bin, rtt);
    lm->last_at = now;
    lm->last_in = s->msgs_in;
    lm->last_out = s->msgs_out;
    lm->last_bin = s->bytes_in;
}

void l_metrics_run_begin(mw_rt *rt)
{
    if (!cfg_file && cfg_stats <= 0) return;
    l_metrics *m = get(rt);
    if (!m) return;
    /* keepalive 0: the reports never keep the loop running */
    if (cfg_file) {
        mw_timer_init(&m->file_timer, &rt->loop, file_tick, rt, 0);
        write_file(rt);
        mw_timer_start(&m->file_timer, cfg_interval, cfg_interval);
    }
    if (cfg_stats > 0) {
        mw_timer_init(&m->stats_timer, &rt->loop, stats_tick, rt, 0);
        m->last_at = mw_monotonic();
        mw_timer_start(&m->stats_timer, cfg_stats, cfg_stats);
    }
}

void l_metrics_run_end(mw_rt *rt)
{
    l_metrics *m = rt->metrics;
    if (!m) return;
    if (cfg_file) { mw_timer_stop(&m->file_timer); write_file(rt); }
    if (cfg_stats > 0) mw_timer_stop(&m->stats_timer);
}

void l_metrics_free(mw_rt *rt)
{
    l_metrics *m = rt->metrics;
    if (!m) return;
    rt->metrics = NULL;
    mw_metrics_free(&m->retired);
    mw_metrics_free(&m->snap);
    mw_metrics_free(&m->ended);
    free(m);
}

void l_metrics_register(lua_State *L, mw_rt *rt)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, HISTOS_KEY) != LUA_TTABLE) {
        lua_newtable(L);
        lua_setfield(L, LUA_REGISTRYINDEX, HISTOS_KEY);
    }
    lua_pop(L, 1);
    static const luaL_Reg hm[] = {
        {"record", h_record}, {"percentile", h_percentile}, {"count", h_count}, {"sum", h_sum},
        {"min", h_min}, {"max", h_max}, {"mean", h_mean}, {"merge", h_merge}, {"reset", h_reset},
        {NULL, NULL},
    };
    if (luaL_newmetatable(L, MW_HISTO_MT)) {
        luaL_newlib(L, hm);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, h_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "Histogram");
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
    static const luaL_Reg fns[] = {
        {"stats", l_stats}, {"histogram", l_histogram}, {"metricsText", l_metrics_text},
        {"metricsBlob", l_metrics_blob}, {"metricsRender", l_metrics_render}, {NULL, NULL},
    };
    lua_pushlightuserdata(L, rt);
    luaL_setfuncs(L, fns, 1);
}
