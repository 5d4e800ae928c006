/* l_retry: the reconnect policy, conn.reconnect = { min, max, factor,
 * jitter, attempts, retry } (or true for the defaults). After a close the
 * script did not ask for, or a failed connect, the connection reconnects by
 * itself after an exponential backoff with proportional jitter, through
 * the connection's one reconnect timer (the one reConnect(delay) uses).
 * The table is the script's own field, read at each close, so a reload's
 * new policy applies from the next attempt. Knows no syscalls, no frame bits. */
#include "bind.h"
#include "conn.h"
#include "crypto.h"
#include "loop.h"
#include "proto_ws.h"
#include <math.h>
#include <stdio.h>
#include <string.h>

typedef struct policy {
    double min, max, factor, jitter;
    lua_Integer attempts;   /* 0: no limit */
} policy;

static const policy defaults = { 0.5, 30, 2, 0.2, 0 };

static const char *const keys[] = { "min", "max", "factor", "jitter", "attempts", "retry" };

/* Check the table at v; NULL, or why not (pushed). */
static const char *check_table(lua_State *L, int v, policy *p)
{
    *p = defaults;
    lua_pushnil(L);
    while (lua_next(L, v)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        size_t i = 0, n = sizeof keys / sizeof keys[0];
        while (k && i < n && strcmp(keys[i], k) != 0) i++;
        if (!k || i == n) {
            const char *m = lua_pushfstring(L, "reconnect: unknown field %s (expected min, max, factor, jitter, "
                                            "attempts or retry)", k ? k : luaL_typename(L, -2));
            return m;
        }
        int isnum;
        lua_Number x = lua_tonumberx(L, -1, &isnum);
        if (i == 5) {
            if (!lua_isfunction(L, -1)) return lua_pushfstring(L, "reconnect.retry must be a function");
        } else if (i == 4) {
            int isint;
            lua_Integer a = lua_tointegerx(L, -1, &isint);
            if (!isint || a < 1) return lua_pushfstring(L, "reconnect.attempts must be an integer >= 1 (nil: no limit)");
            p->attempts = a;
        } else if (!isnum || !isfinite(x)) {
            return lua_pushfstring(L, "reconnect.%s must be a number", k);
        } else if (i == 0) {
            if (!(x >= 0.01)) return lua_pushfstring(L, "reconnect.min must be >= 0.01 (seconds)");
            p->min = x;
        } else if (i == 1) {
            if (!(x > 0)) return lua_pushfstring(L, "reconnect.max must be > 0 (seconds)");
            p->max = x;
        } else if (i == 2) {
            if (!(x >= 1)) return lua_pushfstring(L, "reconnect.factor must be >= 1");
            p->factor = x;
        } else {
            if (!(x >= 0 && x <= 1)) return lua_pushfstring(L, "reconnect.jitter must be 0..1");
            p->jitter = x;
        }
        lua_pop(L, 1);
    }
    if (p->max < p->min) return lua_pushfstring(L, "reconnect.max must be >= reconnect.min");
    return NULL;
}

const char *l_retry_check(lua_State *L, int v)
{
    if (lua_isnoneornil(L, v) || lua_isboolean(L, v)) return NULL;
    if (!lua_istable(L, v))
        return lua_pushfstring(L, "reconnect must be true, false or a table (got %s)", luaL_typename(L, v));
    int top = lua_gettop(L);
    policy p;
    const char *m = check_table(L, v, &p);
    if (!m) { lua_settop(L, top); return NULL; }
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return m;
}

/* Push conn.reconnect of the userdata at ud; the policy in *p. 0 (nothing
 * pushed) when off. */
static int get_policy(lua_State *L, int ud, policy *p)
{
    lua_pushvalue(L, ud);
    lua_getiuservalue(L, -1, 1);
    lua_getfield(L, -1, "reconnect");
    lua_remove(L, -2);
    lua_remove(L, -2);
    if (lua_toboolean(L, -1) && !lua_istable(L, -1)) { *p = defaults; return 1; }
    if (!lua_istable(L, -1)) { lua_pop(L, 1); return 0; }
    int top = lua_gettop(L);
    if (check_table(L, top, p)) *p = defaults;  /* changed since it was assigned: the defaults */
    lua_settop(L, top);
    return 1;
}

void l_retry_opened(l_conn *lc)
{
    lc->retry.scheduled = 0;
    lc->retry.up_since = mw_monotonic();
}

void l_retry_error(l_conn *lc, int code, const char *msg)
{
    l_retry *r = &lc->retry;
    r->code = code;
    r->status = mw_ws_refusal(lc->c, &r->retry_after);
    snprintf(r->why, sizeof r->why, "%s", msg);
}

/* What the defaults retry: the network and time, and answers that say
 * "later" (5xx, 429, 408); not other 4xx, certificates, protocol
 * violations, a message over maxPackageSize. */
static int retryable(int code, int status)
{
    if (status) return status >= 500 || status == 429 || status == 408;
    switch (code) {
    case 0: case MW_E_CONNECT_FAIL: case MW_E_DNS_FAIL: case MW_E_TIMEOUT: case MW_E_READ_FAIL: case MW_E_SEND_FAIL:
        return 1;
    default:
        return 0;
    }
}

static double backoff(const policy *p, int attempt)
{
    double d = p->min * pow(p->factor, attempt > 1 ? attempt - 1 : 0);
    if (!(d <= p->max)) d = p->max;
    /* proportional jitter: up to `jitter` of the delay taken off, never past max */
    uint32_t u = 0;
    if (p->jitter > 0 && mw_random(&u, sizeof u) == 0) d *= 1 - p->jitter * (u / 4294967296.0);
    return d;
}

/* The policy stops: onError says why (stderr without one); onClose follows. */
static void stop_error(l_conn *lc, int ud, int code, const char *msg)
{
    lua_State *L = lc->rt->L;
    lua_pushvalue(L, ud);
    lua_getiuservalue(L, -1, 1);
    if (lua_getfield(L, -1, "onError") != LUA_TFUNCTION) {
        lua_pop(L, 3);
        fprintf(stderr, "moonwire: %s\n", msg);
        return;
    }
    lua_rotate(L, -3, 1);   /* fn ud uv */
    lua_pop(L, 1);
    lua_pushinteger(L, code ? code : MW_E_CONNECT_FAIL);
    lua_pushstring(L, msg);
    mw_rt_call(lc->rt, 3, 0, "onError");
}

int l_retry_plan(l_conn *lc, int ud, double *delay)
{
    lua_State *L = lc->rt->L;
    l_retry *r = &lc->retry;
    mw_conn *c = lc->c;
    policy p;
    int top = lua_gettop(L);
    r->scheduled = 0;
    if (lc->decl.script_ended || lc->rt->stopping || mw_conn_reconnect_pending(c) || !get_policy(L, ud, &p)) {
        r->code = r->status = 0;
        r->up_since = 0;
        return 0;
    }
    int t = lua_gettop(L);
    /* a connection that stayed up for max seconds starts the backoff afresh */
    if (r->up_since > 0 && mw_monotonic() - r->up_since >= p.max) r->attempt = 0;
    r->up_since = 0;
    int code = r->code, status = r->status, go;
    const char *why = code ? r->why : "the connection was closed by the peer";
    if (lua_istable(L, t) && lua_getfield(L, t, "retry") == LUA_TFUNCTION) {
        lua_pushinteger(L, code);
        lua_pushstring(L, why);
        if (status) lua_pushinteger(L, status); else lua_pushnil(L);
        go = mw_rt_call(lc->rt, 3, 1, "reconnect.retry") == 0 && lua_toboolean(L, -1);
    } else {
        go = retryable(code, status);
    }
    lua_settop(L, top);
    r->code = r->status = 0;
    char msg[sizeof r->why + 200];
    if (!go) {
        snprintf(msg, sizeof msg, "reconnect %s: stopped: not retried after: %s", mw_conn_url(c), why);
        stop_error(lc, ud, code, msg);
        return -1;
    }
    if (p.attempts && r->attempt >= p.attempts) {
        snprintf(msg, sizeof msg, "reconnect %s: stopped after %lld attempts; the last: %s", mw_conn_url(c),
                 (long long)p.attempts, why);
        stop_error(lc, ud, code, msg);
        return -1;
    }
    r->attempt++;
    *delay = backoff(&p, r->attempt);
    if (status && r->retry_after >= 0) *delay = r->retry_after < p.max ? (double)r->retry_after : p.max;
    if (why != r->why) snprintf(r->why, sizeof r->why, "%s", why);
    return 1;
}

void l_retry_schedule(l_conn *lc, int ud, double delay)
{
    lua_State *L = lc->rt->L;
    mw_conn *c = lc->c;
    if (lc->decl.script_ended || lc->rt->stopping || mw_conn_reconnect_pending(c) ||
        mw_conn_status(c) != MW_ST_CLOSED)
        return;
    /* the wait starts first, so that onReconnect can cancel it
     * (cancelReconnect, close, destroy) or replace it (reConnect) */
    mw_conn_reconnect(c, delay);
    lc->retry.scheduled = 1;
    lua_pushvalue(L, ud);
    lua_getiuservalue(L, -1, 1);
    if (lua_getfield(L, -1, "onReconnect") != LUA_TFUNCTION) { lua_pop(L, 3); return; }
    lua_rotate(L, -3, 1);
    lua_pop(L, 1);
    lua_pushinteger(L, lc->retry.attempt);
    lua_pushnumber(L, delay);
    lua_pushstring(L, lc->retry.why);
    mw_rt_call(lc->rt, 4, 0, "onReconnect");
}

int l_retry_cancel(l_conn *lc)
{
    mw_conn *c = lc->c;
    if (!lc->retry.scheduled || !mw_conn_reconnect_pending(c) || mw_conn_status(c) != MW_ST_CLOSED) return 0;
    mw_conn_cancel_reconnect(c);
    lc->retry.scheduled = 0;
    return 1;
}
