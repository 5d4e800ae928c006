/* proto_ws: the ws:// protocol layer, the only glue between a connection and
 * the sans-I/O engine in ws/. Knows nothing of Lua or sockets. */
#include "conn_int.h"
#include "proto_ws.h"
#include "crypto.h"
#include "ws/ws_client.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The connection's ws conf (see mw_conn_conf_vt): made on first use. */
typedef struct ws_conf {
    mw_ws_opts o;
    const mw_ws_events *ev;   /* NULL: none */
    char *chosen;             /* the last handshake's subprotocol, NULL until one completes */
    char *agreed;             /* and its extensions ("" none) */
    int refused;              /* the last handshake's status other than 101, 0 none */
    long retry_after;         /* and its Retry-After in seconds, -1 none */
} ws_conf;

static const mw_ws_opts no_opts;

static void conf_free(void *p)
{
    ws_conf *f = p;
    if (!f) return;
    free(f->o.origin);
    free(f->o.protocols);
    free(f->chosen);
    free(f->agreed);
    free(f);
}

static int conf_copy(mw_conn *dst, const mw_conn *src);

static const mw_conn_conf_vt ws_conf_vt = {.free = conf_free, .copy = conf_copy};

static ws_conf *conf(mw_conn *c)
{
    if (c->conf) return c->conf;
    ws_conf *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    c->conf = f;
    c->conf_vt = &ws_conf_vt;
    return f;
}

extern const mw_proto_vt mw_proto_ws;

static const ws_conf *conf_get(const mw_conn *c) { return c->conf; }

static const mw_ws_events *events(const mw_conn *c)
{
    const ws_conf *f = conf_get(c);
    return f ? f->ev : NULL;
}

const mw_ws_opts *mw_ws_options_get(const mw_conn *c)
{
    const ws_conf *f = conf_get(c);
    return f ? &f->o : &no_opts;
}

mw_ws_opts *mw_ws_options(mw_conn *c)
{
    ws_conf *f = conf(c);
    return f ? &f->o : NULL;
}

int mw_ws_set_events(mw_conn *c, const mw_ws_events *ev)
{
    if (c->proto != &mw_proto_ws) return 0;
    ws_conf *f = conf(c);
    if (!f) return -1;
    f->ev = ev;
    return 0;
}

int mw_ws_set_origin(mw_conn *c, const char *s)
{
    ws_conf *f = conf(c);
    return f ? mw_str_set(&f->o.origin, s) : -1;
}

int mw_ws_set_protocols(mw_conn *c, const char *s)
{
    ws_conf *f = conf(c);
    return f ? mw_str_set(&f->o.protocols, s) : -1;
}

const char *mw_ws_client_protocol(const mw_conn *c)
{
    const ws_conf *f = conf_get(c);
    if (!f) return NULL;
    return f->chosen ? f->chosen : f->o.protocols;
}

int mw_ws_refusal(const mw_conn *c, long *retry_after)
{
    const ws_conf *f = c->proto == &mw_proto_ws ? conf_get(c) : NULL;
    *retry_after = f && f->refused ? f->retry_after : -1;
    return f ? f->refused : 0;
}

const char *mw_ws_extensions(const mw_conn *c)
{
    const ws_conf *f = conf_get(c);
    return f ? f->agreed : NULL;
}

/* The engine's offer for d. */
static ws_deflate_opts deflate_opts(const mw_ws_deflate *d)
{
    return (ws_deflate_opts){
        .enabled = !d->off,
        .client_max_window_bits = d->client_max_window_bits,
        .server_max_window_bits = d->server_max_window_bits,
        .client_no_context_takeover = d->client_no_context_takeover,
        .server_no_context_takeover = d->server_no_context_takeover,
        .level = d->level, .mem_level = d->mem_level, .threshold = d->threshold,
    };
}

extern const mw_proto_vt mw_proto_ws;

int mw_ws_deflate_check(const mw_ws_deflate *d, char *msg, size_t cap)
{
    ws_deflate_opts o = deflate_opts(d);
    return ws_ext_check(&o, msg, cap) == 0 ? 0 : -1;
}

/* The options only: dst keeps its events and what it negotiated. */
static int conf_copy(mw_conn *dst, const mw_conn *src)
{
    const mw_ws_opts *so = mw_ws_options_get(src);
    ws_conf *f = conf(dst);
    if (!f) return -1;
    f->o.ping_interval = so->ping_interval;
    f->o.ping_timeout = so->ping_timeout;
    f->o.binary = so->binary;
    f->o.deflate = so->deflate;
    f->o.follow_redirects = so->follow_redirects;
    if (mw_str_set(&f->o.origin, so->origin) != 0) return -1;
    return mw_str_set(&f->o.protocols, so->protocols);
}

typedef struct ws_state {
    ws_client ws;
    mw_conn *c;
    int started;
    int feeding;       /* inside ws_client_feed: a teardown must not free us */
    int dead;          /* torn down while feeding: free after feed returns */
    mw_timer ping;     /* websocketPingInterval */
    mw_timer pong_wait;/* websocketPingTimeout */
    uint64_t read_at_ping, written_at_ping;
    /* permessage-deflate without context takeover: once a second, when
     * nothing moved since the last look, the idle direction's zlib state is
     * given back (no cost per message) */
    mw_timer trim;
    uint64_t read_at_trim, written_at_trim;
    int ping_skipped;  /* the ping pong_wait waits after was not sent (queue full) */
    char *redirect;    /* the handshake was redirected here: the next hop */
    /* The latest ping whose pong was held back past maxSendBufferSize (RFC
     * 6455 5.5.3: only the most recent ping needs its pong): answered once
     * the queue drains below the limit, or just before our close frame. */
    int pong_owed;
    size_t owed_len;
    char owed[WS_CONTROL_MAX];
} ws_state;

static void ws_state_free(ws_state *st)
{
    mw_timer_stop(&st->ping);
    mw_timer_stop(&st->pong_wait);
    mw_timer_stop(&st->trim);
    ws_client_free(&st->ws);
    free(st->redirect);
    free(st);
}

size_t mw_ws_zlib_bytes(const mw_conn *c, uint64_t *allocs)
{
    const ws_state *st = c->proto == &mw_proto_ws ? c->proto_state : NULL;
    const ws_zcount *z = st ? ws_client_zcount(&st->ws) : NULL;
    if (allocs) *allocs = z ? z->allocs : 0;
    return z ? z->bytes : 0;
}

int mw_ws_ping(mw_conn *c, const char *p, size_t n)
{
    ws_state *st = c->proto == &mw_proto_ws ? c->proto_state : NULL;
    if (!st || !c->proto_ready || mw_conn_status(c) != MW_ST_ESTABLISHED) {
        snprintf(c->proto_err, sizeof c->proto_err, "ping %s: the WebSocket is not open", c->url_str);
        return -1;
    }
    if (n > 125) {
        snprintf(c->proto_err, sizeof c->proto_err, "ping %s: a ping carries at most 125 bytes (got %zu)", c->url_str, n);
        return -1;
    }
    if (ws_client_send(&st->ws, WS_OP_PING, p, n, &c->out) != 0) {
        snprintf(c->proto_err, sizeof c->proto_err, "ping %s: not sent", c->url_str);
        return -1;
    }
    mw_conn_want_flush(c);
    return 0;
}

/* The one mapping of the engine's codes into err.h's convention. */
int mw_err_from_ws(int err)
{
    if (err == 0) return 0;
    if (err == WS_E_NOMEM) return MW_WS_ENOMEM;
    if (err == WS_E_RANDOM) return MW_WS_ERANDOM;
    if (err == WS_E_TOO_BIG) return MW_WS_ETOOBIG;
    if (ws_err_is_handshake(err)) return MW_WS_EHANDSHAKE;
    if (ws_err_is_usage(err)) return MW_WS_EUSAGE;
    return MW_WS_EPROTOCOL;
}

/* ---- engine events ---- */

static int stop_flag(mw_conn *c, unsigned gen)
{
    return mw_conn_interrupted(c, gen) ? WS_CB_STOP : 0;
}

static void ping_cb(mw_timer *t, void *ud);
static void pong_wait_cb(mw_timer *t, void *ud);

#define MW_WS_TRIM_AFTER 1.0  /* seconds of quiet before zlib state is given back */

static void trim_cb(mw_timer *t, void *ud)
{
    (void)t;
    mw_conn *c = ud;
    ws_state *st = c->proto_state;
    if (!st) return;
    if (c->bytes_read == st->read_at_trim && c->bytes_written == st->written_at_trim)
        ws_client_trim(&st->ws);
    st->read_at_trim = c->bytes_read;
    st->written_at_trim = c->bytes_written;
}

static int on_open(void *ud, const char *head, size_t n, const char *sp, size_t spn)
{
    mw_conn *c = ud;
    ws_state *st = c->proto_state;
    unsigned gen = c->gen;
    ws_conf *f = c->conf;     /* made by ws_start */
    /* "" when the server chose none: websocketClientProtocol then reads as
     * no subprotocol, not as the list that was offered. */
    free(f->chosen);
    f->chosen = strndup(sp ? sp : "", sp ? spn : 0);
    char ext[160];
    int en = ws_client_extensions(&st->ws, ext, sizeof ext);
    free(f->agreed);
    f->agreed = strndup(ext, en > 0 ? (size_t)en : 0);
    mw_conn_deadline(c, 0);
    if (f->o.ping_interval > 0) mw_timer_start(&st->ping, f->o.ping_interval, f->o.ping_interval);
    const ws_deflate_params *pmd = ws_client_deflate(&st->ws);
    if (pmd && (pmd->server_no_context_takeover || pmd->client_no_context_takeover))
        mw_timer_start(&st->trim, MW_WS_TRIM_AFTER, MW_WS_TRIM_AFTER);
    mw_conn_proto_ready(c);
    if (f->ev && f->ev->on_connect) f->ev->on_connect(c->ud, head, n);
    return stop_flag(c, gen);
}

static int on_message(void *ud, int is_text, const char *p, size_t n)
{
    mw_conn *c = ud;
    if (c->status != MW_ST_ESTABLISHED && c->status != MW_ST_CLOSING) return WS_CB_STOP;
    return mw_conn_emit_message(c, p, n, is_text ? MW_KIND_TEXT : MW_KIND_BINARY) ? WS_CB_STOP : 0;
}

static int on_ping(void *ud, const char *p, size_t n)
{
    mw_conn *c = ud;
    unsigned gen = c->gen;
    int pong = 1;
    const mw_ws_events *ev = events(c);
    if (ev && ev->on_ping) pong = ev->on_ping(c->ud, p, n);
    if (c->gen != gen) {
        /* The callback tore the session down (reConnect, destroy): the pong
         * would land in the buffer the next connection starts from. */
        return WS_CB_STOP | WS_CB_NO_PONG;
    }
    if (pong) {
        ws_state *st = c->proto_state;
        if (mw_conn_queued(c) >= c->opt.max_send_buffer) {
            /* A peer that pings faster than it reads must not grow the send
             * queue without bound: past maxSendBufferSize the pong waits,
             * replacing any older one still owed, until the queue drains. */
            memcpy(st->owed, p, n);   /* n <= 125: the engine checked */
            st->owed_len = n;
            st->pong_owed = 1;
            c->want_drained = 1;
            pong = 0;
        } else {
            st->pong_owed = 0;        /* this newer pong answers for it */
        }
    }
    return stop_flag(c, gen) | (pong ? 0 : WS_CB_NO_PONG);
}

/* Append the owed pong, if any (the engine refuses it once our close frame
 * is out, and the peer's close ends the exchange anyway). */
static void send_owed_pong(mw_conn *c, ws_state *st)
{
    if (!st->pong_owed) return;
    st->pong_owed = 0;
    if (ws_client_state(&st->ws) == WS_STATE_OPEN)
        ws_client_send(&st->ws, WS_OP_PONG, st->owed, st->owed_len, &c->out);
}

static void ws_drained(mw_conn *c)
{
    ws_state *st = c->proto_state;
    if (st) send_owed_pong(c, st);
}

static int on_pong(void *ud, const char *p, size_t n)
{
    mw_conn *c = ud;
    unsigned gen = c->gen;
    const mw_ws_events *ev = events(c);
    /* the keepalive's ping carries no payload: time its pong (the first
     * empty pong after it; a script's own ping with a payload is not timed) */
    if (n == 0 && c->st.ping_at > 0) {
        mw_conn_count_rtt(c, mw_monotonic() - c->st.ping_at);
        c->st.ping_at = 0;
    }
    if (ev && ev->on_pong) ev->on_pong(c->ud, p, n);
    return stop_flag(c, gen);
}

static int on_close(void *ud, int code, const char *reason, size_t n)
{
    mw_conn *c = ud;
    unsigned gen = c->gen;
    /* Our reply is in c->out; the server closes TCP first, within a bound. */
    if (c->status == MW_ST_ESTABLISHED) c->status = MW_ST_CLOSING;
    mw_conn_count_close(c, code);
    mw_conn_deadline(c, c->opt.close_timeout);
    const mw_ws_events *ev = events(c);
    if (ev && ev->on_close) ev->on_close(c->ud, code, reason, n);
    return stop_flag(c, gen);
}

/* A 3xx answer: 1 when the handshake goes on at its Location (the next hop
 * is in st->redirect), else 0 with why[0] set when following it was refused
 * (why[0] == 0: not a redirect to follow, the answer is the error). */
static int redirect_or_why(mw_conn *c, const ws_conf *f, ws_state *st, char *why, size_t cap)
{
    why[0] = 0;
    int s = f->refused;
    if (s != 301 && s != 302 && s != 303 && s != 307 && s != 308) return 0;
    if (f->o.follow_redirects <= 0) return 0;
    const char *loc = ws_client_location(&st->ws);
    char to[2048], err[160];
    if (!loc) {
        snprintf(why, cap, "answer %d has no Location to follow", s);
        return 0;
    }
    if (mw_url_resolve(&c->url, loc, to, sizeof to, err, sizeof err) != 0) {
        snprintf(why, cap, "answer %d to Location %.200s: %s", s, loc, err);
        return 0;
    }
    if (c->url.scheme == MW_SCHEME_WSS && strncmp(to, "wss://", 6) != 0) {
        snprintf(why, cap, "answer %d to %.300s refused: a redirect from wss:// to ws:// would drop TLS", s, to);
        return 0;
    }
    if (mw_conn_redirects(c) >= f->o.follow_redirects) {
        snprintf(why, cap, "answer %d to %.300s: too many redirects (followRedirects = %d)", s, to,
                 f->o.follow_redirects);
        return 0;
    }
    free(st->redirect);
    st->redirect = strdup(to);
    return st->redirect != NULL;
}

static void on_fail(void *ud, int err, const char *msg)
{
    mw_conn *c = ud;
    static const char prefix[] = "handshake failed: ";  /* the engine's; ours says it */
    if (!ws_err_is_handshake(err)) {
        mw_conn_error(c, mw_err_kind(mw_err_from_ws(err)), "websocket %s: %s", c->url_str, msg);
        return;
    }
    if (strncmp(msg, prefix, sizeof prefix - 1) == 0) msg += sizeof prefix - 1;
    ws_conf *f = conf(c);
    ws_state *st = c->proto_state;
    if (f && st) f->refused = ws_client_refusal(&st->ws, &f->retry_after);
    char why[512] = "";
    if (f && st && err == WS_E_HS_STATUS && redirect_or_why(c, f, st, why, sizeof why)) return;
    const char *chain = mw_conn_redirect_chain(c);
    if (why[0]) msg = why;
    mw_conn_error(c, mw_err_kind(mw_err_from_ws(err)), "websocket handshake with %s failed: %s%s%s%s", c->url_str, msg,
                  chain ? " (redirects: " : "", chain ? chain : "", chain ? ")" : "");
}

/* ---- protocol hooks ---- */

/* The engine's config from the connection's options as they are now. */
static ws_config engine_config(mw_conn *c)
{
    ws_config cfg = {0};
    cfg.max_message = c->opt.max_package;
    /* Large frames complete in the connection's read buffer (bounded by
     * maxPackageSize, as reassembly would be) and go to Lua from there. */
    cfg.defer_max = c->opt.max_package;
    cfg.ev.ud = c;
    cfg.ev.on_open = on_open;
    cfg.ev.on_message = on_message;
    cfg.ev.on_ping = on_ping;
    cfg.ev.on_pong = on_pong;
    cfg.ev.on_close = on_close;
    cfg.ev.on_fail = on_fail;
    cfg.deflate = deflate_opts(&mw_ws_options_get(c)->deflate);
    return cfg;
}

static ws_state *state(mw_conn *c)
{
    ws_state *st = c->proto_state;
    if (st) return st;
    st = calloc(1, sizeof *st);
    if (!st) return NULL;
    st->c = c;
    mw_timer_init(&st->ping, c->loop, ping_cb, c, 0);
    mw_timer_init(&st->pong_wait, c->loop, pong_wait_cb, c, 0);
    mw_timer_init(&st->trim, c->loop, trim_cb, c, 0);
    ws_config cfg = engine_config(c);
    ws_client_init(&st->ws, &cfg);
    c->proto_state = st;
    return st;
}

static int opcode_for(mw_conn *c, int kind)
{
    if (kind == MW_KIND_TEXT) return WS_OP_TEXT;
    if (kind == MW_KIND_BINARY) return WS_OP_BINARY;
    return mw_ws_options_get(c)->binary ? WS_OP_BINARY : WS_OP_TEXT;
}

static int ws_send_now(mw_conn *c, ws_state *st, const char *p, size_t n, int kind)
{
    int r = kind == MW_KIND_RAW ? ws_client_send_raw(&st->ws, p, n, &c->out)
                                : ws_client_send(&st->ws, opcode_for(c, kind), p, n, &c->out);
    if (r == 0) return 0;
    if (r == WS_E_SEND_UTF8) snprintf(c->proto_err, sizeof c->proto_err, "text message is not valid UTF-8, nothing sent");
    else snprintf(c->proto_err, sizeof c->proto_err, "%s", ws_strerror(r));
    return -1;
}

/* Sent unless the script's headers name a User-Agent (false: none at all). */
#define MW_USER_AGENT "moonwire/" MW_VERSION

/* The opening request from the connection's options as they are now; the
 * header array (*hs, freed by the caller) points into c->headers. -1: out
 * of memory. */
static int make_request(mw_conn *c, ws_request *req, ws_header **hs)
{
    const mw_ws_opts *o = mw_ws_options_get(c);
    *hs = NULL;
    if (c->nheaders) {
        *hs = calloc((size_t)c->nheaders, sizeof **hs);
        if (!*hs) return -1;
        for (int i = 0; i < c->nheaders; i++) {
            (*hs)[i].name = c->headers[i].name;
            (*hs)[i].name_len = c->headers[i].name_len;
            (*hs)[i].value = c->headers[i].value;
            (*hs)[i].value_len = c->headers[i].value_len;
        }
    }
    *req = (ws_request){
        .host = c->url.host, .host_len = strlen(c->url.host),
        .port = c->url.port_given ? c->url.port : 0,
        .secure = c->url.tls,
        .path = c->url.path, .path_len = strlen(c->url.path),
        .origin = o->origin, .origin_len = o->origin ? strlen(o->origin) : 0,
        .protocols = o->protocols, .protocols_len = o->protocols ? strlen(o->protocols) : 0,
        .user_agent = MW_USER_AGENT, .user_agent_len = sizeof MW_USER_AGENT - 1,
        .headers = *hs, .nheaders = (size_t)c->nheaders,
    };
    return 0;
}

#define REFUSED "websocket handshake with %s refused: %s; nothing was sent"

/* Before connecting: a request the engine would refuse is refused now,
 * with the engine's own check, so no connection is made for it. */
static int ws_check(mw_conn *c, char *msg, size_t cap)
{
    ws_request req;
    ws_header *hs;
    char why[256];
    if (make_request(c, &req, &hs) != 0) {
        snprintf(msg, cap, "websocket %s: out of memory", c->url_str);
        return MW_E_HANDSHAKE_FAIL;
    }
    int r = ws_request_check(&req, why, sizeof why);
    free(hs);
    if (r == 0) return 0;
    snprintf(msg, cap, REFUSED, c->url_str, why);
    return MW_E_HANDSHAKE_FAIL;
}

static int ws_start(mw_conn *c)
{
    ws_state *st = state(c);
    ws_conf *f = conf(c);
    if (!st || !f) { mw_conn_fail(c, MW_E_HANDSHAKE_FAIL, "websocket %s: out of memory", c->url_str); return -1; }
    /* until this handshake completes, websocketClientProtocol reads as the offer */
    free(f->chosen);
    f->chosen = NULL;
    free(f->agreed);
    f->agreed = NULL;
    f->refused = 0;
    f->retry_after = -1;
    /* Options set after an early send() (which made st) count: the engine has
     * not started, and keeps what was sent meanwhile. */
    ws_config cfg = engine_config(c);
    ws_client_configure(&st->ws, &cfg);
    ws_request req;
    ws_header *hs;
    if (make_request(c, &req, &hs) != 0) {
        mw_conn_fail(c, MW_E_HANDSHAKE_FAIL, "websocket %s: out of memory", c->url_str);
        return -1;
    }
    int r = ws_client_start(&st->ws, &req, &c->out);
    free(hs);
    if (r == WS_E_HEADER) {
        /* ws_check passed at connect: only an option changed since gets here */
        mw_conn_fail(c, MW_E_HANDSHAKE_FAIL, REFUSED, c->url_str, ws_client_fail_message(&st->ws));
        return -1;
    }
    if (r != 0) {
        mw_conn_fail(c, MW_E_HANDSHAKE_FAIL, "websocket handshake with %s: %s", c->url_str, ws_strerror(r));
        return -1;
    }
    st->started = 1;
    mw_conn_deadline(c, c->opt.handshake_timeout);
    return 0;
}

/* The next hop of a redirect: a new session at st->redirect, which keeps
 * the messages sent before the handshake (in the engine's queue). */
static void follow(mw_conn *c, ws_state *st)
{
    char *to = st->redirect, err[256];
    st->redirect = NULL;
    mw_buf carry;
    mw_buf_init(&carry);
    const char *q;
    size_t qn = ws_client_unsent(&st->ws, &q);
    int ok = mw_buf_append(&carry, q, qn) == 0;
    if (!ok || mw_conn_redirect(c, to, err, sizeof err) != 0) {
        mw_conn_fail(c, MW_E_HANDSHAKE_FAIL, "websocket handshake with %s: redirect to %s failed: %s", c->url_str, to,
                     ok ? err : "out of memory");
    } else if (carry.len) {
        ws_state *next = state(c);
        if (!next || ws_client_send_raw(&next->ws, mw_buf_head(&carry), carry.len, &c->out) != 0)
            mw_conn_fail(c, MW_E_HANDSHAKE_FAIL, "websocket %s: out of memory", c->url_str);
    }
    free(to);
    mw_buf_free(&carry);
}

/* Most messages of one read, delivered together (one protected call into
 * Lua for all of them): bounds the slices held on the stack. */
#define WS_BATCH 64

/* Deliver the whole simple messages at the head of c->in together, batch
 * after batch (ws_client_take: the engine is not fed them, so those a
 * callback's interruption leaves undelivered simply stay in c->in). Returns
 * the bytes of c->in they took, or -1 when delivery must stop (interrupted:
 * what is left is consumed up to the last message taken). */
static long take_batches(mw_conn *c, ws_state *st, unsigned gen)
{
    const char *data = mw_buf_head(&c->in);
    size_t len = c->in.len, off = 0;
    mw_msg v[WS_BATCH];
    size_t end[WS_BATCH];
    for (;;) {
        size_t k = 0, base = off;
        while (k < WS_BATCH && off < len) {
            int text;
            long fl = ws_client_take(&st->ws, data + off, len - off, &v[k].p, &v[k].n, &text);
            if (fl <= 0) break;
            v[k].kind = text ? MW_KIND_TEXT : MW_KIND_BINARY;
            off += (size_t)fl;
            end[k++] = off;
        }
        if (k == 0) return (long)off;
        if (c->status != MW_ST_ESTABLISHED) return c->status == MW_ST_CLOSING ? (long)base : -1;
        size_t got = mw_conn_emit_messages(c, v, k);
        if (got < k || mw_conn_interrupted(c, gen)) {
            size_t used = got ? end[got - 1] : base;
            /* close() in a callback: the rest goes through the engine, which
             * delivers no more messages but still finds the server's close */
            if (c->gen == gen && !st->dead && !mw_conn_interrupted(c, gen) && c->status == MW_ST_CLOSING)
                return (long)used;
            if (c->gen == gen && !st->dead) mw_buf_consume(&c->in, used);
            return -1;
        }
        if (k < WS_BATCH) return (long)off;
    }
}

static void ws_input(mw_conn *c)
{
    ws_state *st = c->proto_state;
    if (!st || !st->started) return;
    unsigned gen = c->gen;
    st->feeding = 1;
    long took = take_batches(c, st, gen);
    long n = 0;
    if (took >= 0 && !st->dead && c->gen == gen) {
        mw_buf_consume(&c->in, (size_t)took);
        n = ws_client_feed(&st->ws, mw_buf_head(&c->in), c->in.len, &c->out);
    }
    st->feeding = 0;
    if (took < 0 && !st->dead) {
        if (c->gen == gen) mw_conn_want_flush(c);
        return;
    }
    if (st->dead) {
        /* Torn down by a callback: whatever the engine appended since is for
         * a session that is gone. A new session (a connect() in the callback)
         * writes c->out only from ws_start, which runs from the loop once its
         * TCP connect completes, never inside this feed. */
        mw_buf_clear(&c->out);
        ws_state_free(st);
        return;
    }
    if (c->gen != gen) return;
    if (n < 0 && st->redirect) { follow(c, st); return; }
    if (n < 0) {
        mw_buf_clear(&c->in);
        if (c->status == MW_ST_CONNECTING || ws_err_is_handshake((int)n) || !c->out.len) {
            /* nothing worth flushing: the error is queued, drop the TCP connection */
            mw_conn_teardown(c);
            return;
        }
        /* Send our close frame, then drop the TCP connection. */
        c->status = MW_ST_CLOSING;
        mw_conn_pause(c);
        c->flush_then_close = 1;
        mw_conn_deadline(c, c->opt.close_timeout);
        mw_conn_want_flush(c);
        return;
    }
    mw_buf_consume(&c->in, (size_t)n);
    size_t want = ws_client_want(&st->ws);
    if (want > c->in.len) mw_buf_reserve(&c->in, want - c->in.len);
    mw_conn_want_flush(c);
}

static int ws_send(mw_conn *c, const char *p, size_t n, int kind)
{
    ws_state *st = state(c);
    if (!st) { strcpy(c->proto_err, "out of memory"); return -1; }
    /* before the transport is up too: the engine queues the frame (its type
     * fixed now, text judged now) until the 101 */
    return ws_send_now(c, st, p, n, kind);
}

static int ws_close(mw_conn *c, int code, const char *reason, size_t n)
{
    ws_state *st = c->proto_state;
    if (!st || !st->started || ws_client_state(&st->ws) == WS_STATE_HANDSHAKE) return 0;
    int s = ws_client_state(&st->ws);
    if (s != WS_STATE_OPEN) return 1; /* a close is already under way */
    send_owed_pong(c, st);   /* the last ping is answered before our close frame */
    int r = ws_client_close(&st->ws, code, reason, n, &c->out);
    if (r == WS_E_BAD_CODE || r == WS_E_BAD_REASON) {
        mw_conn_error(c, MW_E_SEND_FAIL, "close %s: %s (%d); closing with 1000 instead", c->url_str,
                      ws_strerror(r), code);
        r = ws_client_close(&st->ws, MW_CLOSE_NORMAL, NULL, 0, &c->out);
    }
    mw_timer_stop(&st->ping);
    return r == 0 ? 1 : 0;
}

static int ws_eof(mw_conn *c)
{
    ws_state *st = c->proto_state;
    int s = st ? ws_client_state(&st->ws) : WS_STATE_HANDSHAKE;
    if (s == WS_STATE_CLOSED || s == WS_STATE_FAILED) return 0;
    if (s == WS_STATE_HANDSHAKE) {
        snprintf(c->proto_err, sizeof c->proto_err,
                 "websocket handshake with %s failed: connection closed by the server", c->url_str);
        return MW_E_HANDSHAKE_FAIL;
    }
    snprintf(c->proto_err, sizeof c->proto_err,
             "websocket %s: connection closed by the server without a close frame (1006)", c->url_str);
    return MW_E_READ_FAIL;
}

static int ws_close_expired(mw_conn *c, char *msg, size_t cap)
{
    ws_state *st = c->proto_state;
    int s = st ? ws_client_state(&st->ws) : WS_STATE_FAILED;
    if (s == WS_STATE_CLOSING && c->out.len) {
        snprintf(msg, cap, "close %s: %zu bytes still unsent after %gs, our close frame among them",
                 c->url_str, c->out.len, c->opt.close_timeout);
        return MW_E_TIMEOUT;
    }
    if (s == WS_STATE_CLOSING) {
        snprintf(msg, cap, "close %s: no close frame from the server within %gs",
                 c->url_str, c->opt.close_timeout);
        return MW_E_TIMEOUT;
    }
    if (s == WS_STATE_HANDSHAKE && c->out.len) {
        snprintf(msg, cap, "close %s: %zu bytes still unsent after %gs", c->url_str, c->out.len,
                 c->opt.close_timeout);
        return MW_E_TIMEOUT;
    }
    return 0;   /* close frames exchanged (the server kept TCP open), or failed already */
}

static void ws_reset(mw_conn *c)
{
    ws_state *st = c->proto_state;
    if (!st) return;
    c->proto_state = NULL;
    mw_timer_stop(&st->ping);
    mw_timer_stop(&st->pong_wait);
    mw_timer_stop(&st->trim);
    if (st->feeding) st->dead = 1;
    else ws_state_free(st);
}

/* ---- keepalive ---- */

/* A ping counts against maxSendBufferSize like any message: at or past the
 * limit it is skipped (the next interval tries again), so a peer that does
 * not read cannot grow the queue by pings. The wait for an answer starts
 * either way: after a ping sent, nothing read within websocketPingTimeout
 * means dead; after a ping skipped (nothing to answer yet), nothing read and
 * none of the queue written does. */
static void ping_cb(mw_timer *t, void *ud)
{
    (void)t;
    mw_conn *c = ud;
    ws_state *st = c->proto_state;
    if (!st || ws_client_state(&st->ws) != WS_STATE_OPEN) return;
    int skipped = mw_conn_queued(c) >= c->opt.max_send_buffer;
    if (!skipped && ws_client_send(&st->ws, WS_OP_PING, "", 0, &c->out) == 0) {
        if (c->st.ping_at == 0) c->st.ping_at = mw_monotonic();
        mw_conn_want_flush(c);
    }
    /* The wait runs from the first ping after the last byte read: a ping
     * that follows new data starts it again (dropping an expiry due now,
     * which would find that data), so a peer that goes quiet is failed
     * within interval + timeout. A wait due now with nothing read since
     * its ping is left to fail. */
    double timeout = mw_ws_options_get(c)->ping_timeout;
    if (timeout > 0 && (!mw_timer_active(&st->pong_wait) || c->bytes_read != st->read_at_ping)) {
        st->read_at_ping = c->bytes_read;
        st->written_at_ping = c->bytes_written;
        st->ping_skipped = skipped;
        mw_timer_start(&st->pong_wait, timeout, 0);
    }
}

static void pong_wait_cb(mw_timer *t, void *ud)
{
    (void)t;
    mw_conn *c = ud;
    ws_state *st = c->proto_state;
    if (!st || c->bytes_read != st->read_at_ping) return;
    double timeout = mw_ws_options_get(c)->ping_timeout;
    if (!st->ping_skipped)
        mw_conn_fail(c, MW_E_TIMEOUT, "websocket %s: no pong or data within %gs after a ping", c->url_str,
                     timeout);
    else if (c->bytes_written == st->written_at_ping)
        mw_conn_fail(c, MW_E_TIMEOUT, "websocket %s: the server neither sent nor read anything within %gs "
                     "(send buffer full, ping not sent)", c->url_str, timeout);
}

/* What waits for the 101: the frames the engine holds. */
static size_t ws_queued(const mw_conn *c)
{
    const ws_state *st = c->proto_state;
    return st ? ws_client_queued(&st->ws) : 0;
}

const mw_proto_vt mw_proto_ws = {
    .name = "websocket",
    .check = ws_check,
    .start = ws_start,
    .input = ws_input,
    .send = ws_send,
    .close = ws_close,
    .eof = ws_eof,
    .reset = ws_reset,
    .drained = ws_drained,
    .close_expired = ws_close_expired,
    .queued = ws_queued,
};
