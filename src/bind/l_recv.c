/* l_recv: the way messages reach the script: onMessage (one protected call
 * per read's batch), or the receive queue that conn:receive() reads in a
 * coroutine (moonwire/co.lua). Knows no syscalls and no frame bits. */
#include "bind.h"
#include "l_fields.h"
#include "conn.h"
#include <string.h>

/* A message's kind as its callback and receive() give it: "text", "binary", nil. */
static void push_kind(lua_State *L, const mw_rt *rt, int kind)
{
    if (kind == MW_KIND_TEXT) lua_rawgeti(L, LUA_REGISTRYINDEX, rt->s_text);
    else if (kind == MW_KIND_BINARY) lua_rawgeti(L, LUA_REGISTRYINDEX, rt->s_binary);
    else lua_pushnil(L);
}

/* ---- the receive queue ---- */

/* Queue a message: 1 when that ran Lua (the waiting coroutine's hook, which
 * may change the connection's callbacks), else 0. */
static int rxq_push(l_conn *lc, const char *p, size_t n, int kind)
{
    l_rxq *q = &lc->rxq;
    unsigned char *h = n <= 0xffffffffu ? (unsigned char *)mw_buf_reserve(&q->buf, n + 5) : NULL;
    if (!h) {
        /* nothing else to do in an event: say so, and stop reading (what is
         * not read is not lost) */
        fprintf(stderr, "moonwire: receive %s: out of memory queueing a message; reading paused\n", mw_conn_url(lc->c));
        q->paused = 1;
        mw_conn_pause(lc->c);
        return 0;
    }
    h[0] = (unsigned char)(n >> 24), h[1] = (unsigned char)(n >> 16), h[2] = (unsigned char)(n >> 8);
    h[3] = (unsigned char)n, h[4] = (unsigned char)kind;
    if (n) memcpy(h + 5, p, n);
    mw_buf_commit(&q->buf, n + 5);
    q->count++;
    q->bytes += n;
    if (!q->paused && (q->count >= q->max_count || q->bytes >= q->max_bytes)) {
        /* backpressure: the kernel holds the rest, nothing is dropped */
        q->paused = 1;
        mw_conn_pause(lc->c);
    }
    if (q->waiting) {
        /* once per wait: the coroutine takes the rest from the queue when it runs */
        q->waiting = 0;
        if (l_conn_push_hook(lc, "msg")) { mw_rt_call(lc->rt, 2, 0, "coroutine"); return 1; }
    }
    return 0;
}

/* Push the oldest queued message (data, kind); 0 when there is none. */
static int rxq_pop(lua_State *L, l_conn *lc)
{
    l_rxq *q = &lc->rxq;
    if (!q->count) return 0;
    const unsigned char *h = (const unsigned char *)mw_buf_head(&q->buf);
    size_t n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    int kind = h[4];
    lua_pushlstring(L, (const char *)h + 5, n);
    push_kind(L, lc->rt, kind);
    mw_buf_consume(&q->buf, n + 5);
    q->count--;
    q->bytes -= n;
    if (q->paused && q->count <= q->max_count / 2 && q->bytes <= q->max_bytes / 2) {
        q->paused = 0;
        mw_conn_resume(lc->c);
    }
    return 1;
}

void l_conn_ev_message(void *ud, const char *p, size_t n, int kind)
{
    l_conn *lc = ud;
    lua_State *L = lc->rt->L;
    if (!l_conn_push_cb_at(lc, "onMessage", lc->rt->s_onmessage)) {
        /* no callback: the queue conn:receive() reads, when a coroutine uses it */
        if (lc->rxq.on) rxq_push(lc, p, n, kind);
        return;
    }
    lua_pushlstring(L, p, n);
    push_kind(L, lc->rt, kind);
    mw_rt_call(lc->rt, 3, 0, "onMessage");
}

/* The messages of one read, delivered in one protected call (batch_run)
 * instead of one per message; a callback's error ends that call and the
 * next one goes on from the message after it. */
typedef struct l_batch {
    l_conn *lc;
    const mw_msg *v;
    size_t n, i;      /* i: the next message to deliver */
    unsigned session;
    int stop;         /* delivery stopped: interrupted, or no onMessage now */
} l_batch;

/* batch_run(b): onMessage(conn, data, kind) for b->v[b->i..n), the
 * callback read from the connection's fields before each message (a callback
 * that replaces onMessage, or a reload, takes effect at the next one), the
 * connection and its fields looked up once per call. */
static int batch_run(lua_State *L)
{
    l_batch *b = lua_touserdata(L, 1);
    l_conn *lc = b->lc;
    const mw_rt *rt = lc->rt;
    lua_rawgeti(L, LUA_REGISTRYINDEX, lc->ref);   /* 2: the connection */
    lua_getiuservalue(L, 2, 1);                    /* 3: its fields */
    lua_rawgeti(L, LUA_REGISTRYINDEX, rt->s_onmessage); /* 4: "onMessage" */
    while (b->i < b->n) {
        const mw_msg *m = &b->v[b->i];
        lua_pushvalue(L, 4);
        if (lua_rawget(L, 3) != LUA_TFUNCTION) { b->stop = 1; return 0; } /* ev_messages goes on */
        b->i++;   /* taken, whatever happens below */
        lua_pushvalue(L, 2);
        lua_pushlstring(L, m->p, m->n);
        push_kind(L, rt, m->kind);
        lua_call(L, 3, 0);
        if (mw_conn_delivery_stopped(lc->c, b->session) || lc->ref == LUA_NOREF) {
            b->stop = 1;
            return 0;
        }
    }
    return 0;
}

size_t l_conn_ev_messages(void *ud, const mw_msg *v, size_t n)
{
    l_conn *lc = ud;
    lua_State *L = lc->rt->L;
    l_batch b = { lc, v, n, 0, mw_conn_session(lc->c), 0 };
    while (b.i < n) {
        if (!l_conn_push_cb_at(lc, "onMessage", lc->rt->s_onmessage)) {
            /* no callback (now): to the receive queue, as ev_message does;
             * looked up again only once Lua has run (the waiter's hook) */
            int ran = 0;
            while (b.i < n && !ran) {
                ran = lc->rxq.on && rxq_push(lc, v[b.i].p, v[b.i].n, v[b.i].kind);
                b.i++;
                /* only Lua, or the queue's own pause when full, can stop it here */
                if ((ran || lc->rxq.paused) && mw_conn_delivery_stopped(lc->c, b.session)) return b.i;
            }
            continue;
        }
        if (n - b.i == 1) {
            /* the last (or only: a request-reply exchange) message: the
             * callback just found is called as it is, without a batch */
            const mw_msg *m = &v[b.i++];
            lua_pushlstring(L, m->p, m->n);
            push_kind(L, lc->rt, m->kind);
            mw_rt_call(lc->rt, 3, 0, "onMessage");
            break;
        }
        lua_pop(L, 2);
        b.stop = 0;
        lua_pushcfunction(L, batch_run);
        lua_pushlightuserdata(L, &b);
        mw_rt_call(lc->rt, 1, 0, "onMessage");
        /* stopped, or a callback failed (reported): go on after it unless
         * it also interrupted the connection */
        if (mw_conn_delivery_stopped(lc->c, b.session) || lc->ref == LUA_NOREF) break;
    }
    return b.i;
}

static int receive_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status; (void)ctx;
    return lua_gettop(L);
}

/* conn:receive([timeout]): a queued message at once, in C (the per-message
 * path); otherwise co.lua's receive, which waits in the coroutine. */
int l_conn_receive(lua_State *L)
{
    l_conn *lc = check_conn(L, 1);
    /* what is queued came while there was no onMessage: it is receive's even
     * if a callback was set since (the slow path refuses to wait then) */
    if (lc->rxq.count && lua_isyieldable(L)) return rxq_pop(L, lc) ? 2 : 0;
    lua_settop(L, 2);
    if (!lc->rt->receiver) return luaL_error(L, "receive: moonwire.co is not loaded");
    lua_rawgeti(L, LUA_REGISTRYINDEX, lc->rt->receiver);
    lua_insert(L, 1);
    lua_callk(L, 2, LUA_MULTRET, 0, receive_k);
    return receive_k(L, LUA_OK, 0);
}

/* core.rxQueue(conn, max_messages, max_bytes): conn's messages without an
 * onMessage go to its receive queue from now on */
static int l_rx_queue(lua_State *L)
{
    l_conn *lc = check_conn(L, 1);
    lc->rxq.max_count = (size_t)luaL_checkinteger(L, 2);
    lc->rxq.max_bytes = (size_t)luaL_checkinteger(L, 3);
    lc->rxq.on = 1;
    return 0;
}

/* core.rxWaiting(conn, on): a coroutine waits on conn (the hook hears "msg") */
static int l_rx_waiting(lua_State *L)
{
    check_conn(L, 1)->rxq.waiting = lua_toboolean(L, 2);
    return 0;
}

/* core.rxCount(conn): how many messages are queued */
static int l_rx_count(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)check_conn(L, 1)->rxq.count);
    return 1;
}

/* core.rxPop(conn): data, kind of the oldest queued message, or nothing */
static int l_rx_pop(lua_State *L) { return rxq_pop(L, check_conn(L, 1)) ? 2 : 0; }

/* core.setReceiver(fn): co.lua's receive that waits */
static int l_set_receiver(lua_State *L)
{
    return l_set_fn_ref(L, &((mw_rt *)lua_touserdata(L, lua_upvalueindex(1)))->receiver);
}

void l_recv_register(lua_State *L, mw_rt *rt)
{
    lua_pushlightuserdata(L, rt);
    lua_pushcclosure(L, l_set_receiver, 1);
    lua_setfield(L, -2, "setReceiver");
    static const luaL_Reg rx[] = { {"rxQueue", l_rx_queue}, {"rxWaiting", l_rx_waiting}, {"rxPop", l_rx_pop}, {"rxCount", l_rx_count}, {NULL, NULL} };
    luaL_setfuncs(L, rx, 0);
}
