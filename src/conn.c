/* conn: the connection state machine: drives the socket (net.c), the stack
 * of stages and the protocol; buffers, backpressure, deferred events,
 * graceful close and reconnect. Knows nothing of Lua, no frame bits, and no
 * stage or protocol by name (layers.c maps a URL to them). */
#include "conn_int.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { PEND_CLOSE = 1u, PEND_BUFFER_FULL = 2u, PEND_INPUT = 4u };

#define READ_CHUNK 65536
#define SHRINK_KEEP 65536
#define TRIM_AFTER 2.0     /* seconds a grown buffer stays empty before it is freed */

static unsigned long next_id = 1;

static void conn_task(mw_task *t);
static void read_cb(struct ev_loop *ev, ev_io *w, int revents);
static void write_cb(struct ev_loop *ev, ev_io *w, int revents);
static void deadline_cb(mw_timer *t, void *ud);
static void reconnect_cb(mw_timer *t, void *ud);
static void net_done(mw_net *n, int err, const char *msg);
static void trim_cb(mw_timer *t, void *ud);
static int can_flush(mw_conn *c);
static void flush(mw_conn *c);
static void go_home(mw_conn *c);
static void shut_io(mw_conn *c);

mw_conn *mw_conn_new(mw_loop *l, const char *url, const mw_layers *layers,
                     const mw_conn_events *ev, void *ud, char *err, size_t errcap)
{
    mw_conn *c = calloc(1, sizeof *c);
    if (!c) { snprintf(err, errcap, "out of memory"); return NULL; }
    if (mw_url_parse(url, strlen(url), &c->url, err, errcap) != 0) {
        mw_url_free(&c->url);
        free(c);
        return NULL;
    }
    c->url_str = strdup(url);
    c->loop = l;
    c->ev = ev;
    c->ud = ud;
    c->id = next_id++;
    c->status = MW_ST_INITIAL;
    mw_net_init(&c->net, l, net_done);
    c->proto = layers->proto_for_scheme(c->url.scheme);
    c->layers = layers;
    c->task.run = conn_task;
    mw_buf_init(&c->in);
    mw_buf_init(&c->out);
    ev_io_init(&c->rio, read_cb, -1, EV_READ);
    ev_io_init(&c->wio, write_cb, -1, EV_WRITE);
    mw_timer_init(&c->deadline, l, deadline_cb, c, 0);
    mw_timer_init(&c->reconnect_timer, l, reconnect_cb, c, 1);
    mw_timer_init(&c->trim, l, trim_cb, c, 0);
    c->errs_tail = &c->errs;
    c->opt.max_send_buffer = 1024 * 1024;
    c->opt.max_package = 10 * 1024 * 1024;
    c->opt.connect_timeout = 10;
    c->opt.handshake_timeout = 10;
    c->opt.close_timeout = 5;
    c->opt.attempt_delay = 0.25;
    const mw_stage_vt *sv = layers->stage_for_url(&c->url);
    mw_stage *st = sv ? mw_conn_stage(c, sv, 1) : NULL;
    if (sv && !st) { snprintf(err, errcap, "out of memory"); mw_conn_free(c); return NULL; }
    if (st) st->enabled = 1;
    return c;
}

int mw_conn_set_headers(mw_conn *c, const mw_header *h, int n)
{
    return mw_headers_copy(&c->headers, &c->nheaders, h, n);
}

int mw_conn_copy_options(mw_conn *dst, const mw_conn *src)
{
    dst->opt = src->opt;
    /* which stages take part: read at the next connect only */
    for (int i = 0; i < dst->nstages; i++) dst->stages[i]->enabled = 0;
    for (int i = 0; i < src->nstages; i++) {
        mw_stage *s = src->stages[i]->enabled ? mw_conn_stage(dst, src->stages[i]->vt, 1) : NULL;
        if (s) s->enabled = 1;
        else if (src->stages[i]->enabled) return -1;
    }
    const mw_conn_conf_vt *vt = src->conf_vt ? src->conf_vt : dst->conf_vt;
    if (vt && vt->copy(dst, src) != 0) return -1;
    return mw_conn_set_headers(dst, src->headers, src->nheaders);
}

static void drop_next_url(mw_conn *c)
{
    if (!c->next_url) return;
    free(c->next_url->str);
    mw_url_free(&c->next_url->url);
    free(c->next_url);
    c->next_url = NULL;
}

/* The pending URL becomes the current one (not connected: nothing uses it). */
static void use_next_url(mw_conn *c)
{
    mw_url_free(&c->url);
    free(c->url_str);
    c->url = c->next_url->url;
    c->url_str = c->next_url->str;
    free(c->next_url);
    c->next_url = NULL;
}

int mw_conn_take_url(mw_conn *dst, mw_conn *src)
{
    if (src->proto != dst->proto) return -1;
    drop_next_url(dst);
    if (strcmp(src->url_str, dst->url_str) == 0) return 0; /* the current one: nothing pending */
    if (!(dst->next_url = malloc(sizeof *dst->next_url))) return -1;
    dst->next_url->url = src->url;
    dst->next_url->str = src->url_str;
    memset(&src->url, 0, sizeof src->url);
    src->url_str = NULL;
    if (dst->status == MW_ST_INITIAL || dst->status == MW_ST_CLOSED) use_next_url(dst);
    return 0;
}

/* Back to the URL before a redirect chain (not connected). */
static void go_home(mw_conn *c)
{
    if (c->home) {
        mw_url_free(&c->url);
        free(c->url_str);
        c->url = c->home->url;
        c->url_str = c->home->str;
        free(c->home);
        c->home = NULL;
    }
    if (c->redirect_tls) {
        const mw_stage_vt *sv = c->layers->stage_for_url(&(mw_url){ .tls = 1 });
        mw_stage *s = sv ? mw_conn_stage(c, sv, 0) : NULL;
        if (s) s->enabled = 0;
        c->redirect_tls = 0;
    }
    free(c->chain);
    c->chain = NULL;
    c->redirects = 0;
}

int mw_conn_redirect(mw_conn *c, const char *url, char *err, size_t cap)
{
    mw_url u;
    if (mw_url_parse(url, strlen(url), &u, err, cap) != 0) return -1;
    if (c->layers->proto_for_scheme(u.scheme) != c->proto) {
        snprintf(err, cap, "%s is not served by the same protocol", url);
        mw_url_free(&u);
        return -1;
    }
    size_t cl = c->chain ? strlen(c->chain) : strlen(c->url_str);
    char *s = strdup(url), *chain = malloc(cl + strlen(url) + 5);
    struct mw_next_url *home = c->home ? NULL : malloc(sizeof *home);
    if (!s || !chain || (!c->home && !home)) {
        free(s); free(chain); free(home); mw_url_free(&u);
        snprintf(err, cap, "out of memory");
        return -1;
    }
    sprintf(chain, "%s -> %s", c->chain ? c->chain : c->url_str, url);
    free(c->chain);
    c->chain = chain;
    if (home) {
        home->url = c->url;
        home->str = c->url_str;
        c->home = home;
    } else {
        mw_url_free(&c->url);
        free(c->url_str);
    }
    c->url = u;
    c->url_str = s;
    c->redirects++;
    const mw_stage_vt *sv = c->layers->stage_for_url(&u);
    mw_stage *st = sv ? mw_conn_stage(c, sv, 1) : NULL;
    if (st && !st->enabled) { st->enabled = 1; c->redirect_tls = 1; }
    /* the next session at once, quietly: no onClose between the hops */
    shut_io(c);
    mw_buf_clear(&c->in);
    mw_buf_clear(&c->out);
    c->gen++;
    c->status = MW_ST_CLOSED;
    c->redirecting = 1;
    mw_conn_connect(c);
    c->redirecting = 0;
    return 0;
}

/* Stop I/O and timers and close the socket; no events. */
static void shut_io(mw_conn *c)
{
    struct ev_loop *ev = c->loop->ev;
    if (ev_is_active(&c->rio)) ev_io_stop(ev, &c->rio);
    if (ev_is_active(&c->wio)) ev_io_stop(ev, &c->wio);
    mw_timer_stop(&c->deadline);
    for (int i = c->depth - 1; i >= 0; i--)
        if (c->stack[i]->vt->stop) c->stack[i]->vt->stop(c->stack[i]);
    c->depth = 0;
    mw_net_close(&c->net);
    if (c->proto->reset) c->proto->reset(c);
}

void mw_conn_free(mw_conn *c)
{
    if (!c) return;
    shut_io(c);
    go_home(c);   /* before the stages go: it may disable the TLS stage a redirect enabled */
    for (int i = 0; i < c->nstages; i++) {
        if (c->stages[i]->vt->free) c->stages[i]->vt->free(c->stages[i]);
        free(c->stages[i]);
    }
    mw_timer_stop(&c->reconnect_timer);
    mw_timer_stop(&c->trim);
    mw_loop_unschedule(c->loop, &c->task);
    while (c->errs) { mw_err_ev *e = c->errs; c->errs = e->next; free(e); }
    mw_buf_free(&c->in);
    mw_buf_free(&c->out);
    mw_url_free(&c->url);
    free(c->url_str);
    drop_next_url(c);
    if (c->conf_vt) c->conf_vt->free(c->conf);
    mw_headers_free(&c->headers, &c->nheaders);
    free(c);
}

int mw_conn_active(const mw_conn *c)
{
    return c->status == MW_ST_CONNECTING || c->status == MW_ST_ESTABLISHED ||
           c->status == MW_ST_CLOSING || mw_timer_active(&c->reconnect_timer) ||
           c->pending || c->nerr;
}

static void vqueue_error(mw_conn *c, int code, const char *fmt, va_list ap)
{
    if (c->nerr >= MW_PEND_ERRORS) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    mw_headers_redact(c->headers, c->nheaders, msg); /* a server may reflect them */
    size_t len = strlen(msg);
    mw_err_ev *e = malloc(sizeof *e + len + 1);
    if (!e) return;
    e->next = NULL;
    e->code = code;
    memcpy(e->msg, msg, len);
    e->msg[len] = 0;
    *c->errs_tail = e;
    c->errs_tail = &e->next;
    c->nerr++;
    mw_loop_schedule(c->loop, &c->task);
}

void mw_conn_error(mw_conn *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vqueue_error(c, code, fmt, ap);
    va_end(ap);
}

void mw_conn_teardown(mw_conn *c)
{
    if (c->status == MW_ST_CLOSED || c->status == MW_ST_INITIAL) return;
    shut_io(c);
    mw_buf_clear(&c->in);
    mw_buf_clear(&c->out);
    if (c->st.up_since > 0) c->st.up_total += mw_monotonic() - c->st.up_since;
    c->st.up_since = 0;
    c->st.ping_at = 0;
    c->status = MW_ST_CLOSED;
    c->gen++;
    c->paused = 0;
    c->buffer_full = 0;
    c->flush_then_close = 0;
    c->close_error = 0;
    c->want_drained = 0;
    c->proto_ready = 0;
    c->pending &= ~(PEND_BUFFER_FULL | PEND_INPUT);
    c->pending |= PEND_CLOSE;
    mw_loop_schedule(c->loop, &c->task);
}

void mw_conn_fail(mw_conn *c, int code, const char *fmt, ...)
{
    if (c->status == MW_ST_CLOSED || c->status == MW_ST_INITIAL) return;
    va_list ap;
    va_start(ap, fmt);
    vqueue_error(c, code, fmt, ap);
    va_end(ap);
    mw_conn_teardown(c);
}

void mw_conn_deadline(mw_conn *c, double after)
{
    if (after > 0) mw_timer_start(&c->deadline, after, 0);
    else mw_timer_stop(&c->deadline);
}

/* ---- stages ---- */

mw_stage *mw_conn_stage(mw_conn *c, const mw_stage_vt *vt, int create)
{
    for (int i = 0; i < c->nstages; i++)
        if (c->stages[i]->vt == vt) return c->stages[i];
    if (!create || c->nstages == MW_MAX_STAGES) return NULL;
    mw_stage *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->vt = vt;
    s->c = c;
    c->stages[c->nstages++] = s;
    return s;
}

/* The session's stack: the enabled stages by level, attach order within one. */
static void build_stack(mw_conn *c)
{
    c->depth = 0;
    for (int i = 0; i < c->nstages; i++) {
        mw_stage *s = c->stages[i];
        if (!s->enabled || s->skip) continue;
        int j = c->depth++;
        while (j > 0 && c->stack[j - 1]->vt->level > s->vt->level) { c->stack[j] = c->stack[j - 1]; j--; }
        c->stack[j] = s;
    }
    for (int i = 0; i < c->depth; i++) {
        c->stack[i]->pos = i;
        c->stack[i]->below = i ? c->stack[i - 1] : NULL;
    }
}

/* The protocol's view of the stream: the top of the stack, else the socket. */
static long conn_input(mw_conn *c, char *p, size_t cap)
{
    mw_stage *top = c->depth ? c->stack[c->depth - 1] : NULL;
    return top ? top->vt->input(top, p, cap) : mw_net_read(&c->net, p, cap);
}

static long conn_output(mw_conn *c, const char *p, size_t n)
{
    mw_stage *top = c->depth ? c->stack[c->depth - 1] : NULL;
    return top ? top->vt->output(top, p, n) : mw_net_write(&c->net, p, n);
}

/* Whether a stage holds input the socket will not signal. */
static int conn_pending(mw_conn *c)
{
    for (int i = 0; i < c->depth; i++)
        if (c->stack[i]->vt->pending && c->stack[i]->vt->pending(c->stack[i])) return 1;
    return 0;
}

static void stack_ready(mw_conn *c);

/* Start the stages from index i up; when the last is ready the connection
 * is ESTABLISHED and the protocol starts. */
static void start_stages(mw_conn *c, int i)
{
    unsigned gen = c->gen;
    for (; i < c->depth; i++) {
        mw_stage *s = c->stack[i];
        c->starting = i;
        int r = s->vt->start ? s->vt->start(s) : 0;
        if (r < 0 || c->gen != gen) return;
        if (r > 0) {
            mw_conn_deadline(c, s->vt->connect_phase ? c->opt.connect_timeout : c->opt.handshake_timeout);
            return;
        }
    }
    c->starting = c->depth;
    mw_conn_deadline(c, 0);
    stack_ready(c);
}

void mw_stage_ready(mw_stage *s)
{
    mw_conn *c = s->c;
    if (c->status != MW_ST_CONNECTING || s->pos >= c->depth || c->stack[s->pos] != s) return;
    start_stages(c, s->pos + 1);
}

/* ---- connecting ---- */

static void net_done(mw_net *n, int err, const char *msg)
{
    mw_conn *c = container_of(n, mw_conn, net);
    if (err) { mw_conn_fail(c, err, "%s", msg); return; }
    ev_io_set(&c->rio, n->fd, EV_READ);
    ev_io_set(&c->wio, n->fd, EV_WRITE);
    mw_conn_deadline(c, 0);
    start_stages(c, 0);
}

static void stack_ready(mw_conn *c)
{
    unsigned gen = c->gen;
    c->status = MW_ST_ESTABLISHED;
    c->st.connects++;
    c->st.up_since = mw_monotonic();
    if (!c->paused) ev_io_start(c->loop->ev, &c->rio);
    if (c->ev->on_connect) {
        c->ev->on_connect(c->ud);
        if (c->gen != gen || c->status != MW_ST_ESTABLISHED) return;
    }
    if (c->proto->start) {
        if (c->proto->start(c) != 0) return;
    } else {
        mw_conn_proto_ready(c);
    }
    mw_conn_want_flush(c);
}

void mw_conn_proto_ready(mw_conn *c)
{
    c->proto_ready = 1;
    mw_conn_want_flush(c);
}

int mw_conn_connect(mw_conn *c)
{
    if (c->status != MW_ST_INITIAL && c->status != MW_ST_CLOSED) return -1;
    if (c->status == MW_ST_CLOSED) {
        /* Nothing of an ended session goes to the next peer: send() refuses
         * while CLOSED, so whatever a layer left behind is stale. */
        mw_buf_clear(&c->out);
        if (c->proto->reset) c->proto->reset(c);
    }
    mw_timer_stop(&c->reconnect_timer);
    if (!c->redirecting && c->st.attempts++ > 0) c->st.reconnects++;
    if (!c->redirecting && (c->home || c->redirects)) go_home(c);
    if (c->next_url) use_next_url(c); /* a reload's new URL, from this connect on */
    /* the stages are chosen per connect: `transport` may change between,
     * and a stage may take part for some URLs only (a proxy's no_proxy) */
    const char *host = c->url.host, *what = c->url_str;
    int port = c->url.port;
    char msg[512];
    int bad = 0;
    for (int i = 0; i < c->nstages; i++) {
        mw_stage *s = c->stages[i];
        s->skip = 0;
        if (!s->enabled || !s->vt->prepare || bad) continue;
        int r = s->vt->prepare(s, &c->url, &host, &port, &what, msg, sizeof msg);
        if (r < 0) bad = MW_E_CONNECT_FAIL;
        s->skip = r <= 0;
    }
    build_stack(c);
    c->status = MW_ST_CONNECTING;
    c->proto_ready = 0;
    c->paused = 0;
    mw_buf_clear(&c->in);
    /* Options that can never make a valid start fail here, through the
     * deferred path like any connect failure: no DNS query, no TCP connect. */
    if (!bad && c->proto->check) bad = c->proto->check(c, msg, sizeof msg);
    if (bad) { mw_conn_fail(c, bad, "%s", msg); return 0; }
    /* data sent before connect stays queued in c->out (Workerman does the same) */
    if (c->opt.connect_timeout > 0) mw_conn_deadline(c, c->opt.connect_timeout);
    c->net.opt.stagger = c->opt.attempt_delay;
    c->net.opt.bind_len = 0;
    if (c->opt.bindto[0]) {
        char err[160];
        if (mw_net_parse_bind(c->opt.bindto, &c->net.opt.bind, &c->net.opt.bind_len, err, sizeof err) != 0) {
            mw_conn_fail(c, MW_E_CONNECT_FAIL, "connect %s: bindto %s: %s", what, c->opt.bindto, err);
            return 0;
        }
    }
    int code = mw_net_connect(&c->net, what, host, port, msg, sizeof msg);
    if (code) mw_conn_fail(c, code, "%s", msg);
    return 0;
}

/* closeTimeout ran out while CLOSING. A close the script asked for that
 * could not finish is an error (the peer never answered, or never read);
 * a close after a reported failure, or after a completed close handshake
 * waiting only for the peer's TCP close, ends quietly. */
static void close_expired(mw_conn *c)
{
    int code = 0;
    char msg[512];
    if (c->close_error) {
        if (c->proto->close_expired) {
            code = c->proto->close_expired(c, msg, sizeof msg);
        } else if (c->out.len) {
            code = MW_E_TIMEOUT;
            snprintf(msg, sizeof msg, "close %s: %zu bytes still unsent after %gs",
                     c->url_str, c->out.len, c->opt.close_timeout);
        }
    }
    if (code) mw_conn_fail(c, code, "%s", msg);
    else mw_conn_teardown(c);
}

static void deadline_cb(mw_timer *t, void *ud)
{
    (void)t;
    mw_conn *c = ud;
    if (c->status == MW_ST_CONNECTING && c->net.up && c->starting < c->depth) {
        /* TCP is up: a stage's handshake (TLS, a proxy's) is late */
        mw_stage *s = c->stack[c->starting];
        if (s->vt->timeout) { s->vt->timeout(s); return; }
        mw_conn_fail(c, MW_E_TIMEOUT, "%s handshake with %s: timed out after %gs",
                     c->stack[c->starting]->vt->name, c->url_str, c->opt.handshake_timeout);
    } else if (c->status == MW_ST_CONNECTING) {
        mw_conn_fail(c, MW_E_CONNECT_FAIL, "connect %s: timed out after %gs", c->url_str, c->opt.connect_timeout);
    } else if (c->status == MW_ST_ESTABLISHED && !c->proto_ready) {
        mw_conn_fail(c, MW_E_TIMEOUT, "%s handshake with %s: timed out after %gs",
                     c->proto->name, c->url_str, c->opt.handshake_timeout);
    } else if (c->status == MW_ST_CLOSING) {
        close_expired(c);
    }
}

/* ---- reading ---- */

static void process_input(mw_conn *c)
{
    if (c->in.len && c->proto->input) c->proto->input(c);
}

/* Give back the loop's scratch block that c->in was reading into, keeping
 * a partial message (if any) in the connection's own buffer `own`. */
static int return_scratch(mw_conn *c, mw_buf *own)
{
    mw_loop *l = c->loop;
    mw_buf used = c->in;
    l->scratch_busy = 0;
    if (used.len && used.cap > READ_CHUNK) {
        /* The protocol made room for a large message: the connection keeps
         * the block (no copy) and the loop gets a new one when it next needs it. */
        mw_buf_free(own);
        c->in = used;
        mw_buf_init(&l->scratch);
        return 0;
    }
    c->in = *own;
    l->scratch = used;
    l->scratch.off = l->scratch.len = 0;
    if (used.len && mw_buf_append(&c->in, mw_buf_head(&used), used.len) != 0) return -1;
    return 0;
}

static void trim_later(mw_conn *c)
{
    if (!mw_timer_active(&c->trim)) mw_timer_start(&c->trim, TRIM_AFTER, 0);
}

/* Buffers that a burst or a large message grew are freed once they have
 * stayed empty for a while: steady traffic reuses them, idle connections
 * hold none. */
static void trim_cb(mw_timer *t, void *ud)
{
    (void)t;
    mw_conn *c = ud;
    if (c->in.len == 0) mw_buf_free(&c->in);
    if (c->out.len == 0) mw_buf_free(&c->out);
    if (c->in.cap || c->out.cap > SHRINK_KEEP) trim_later(c);
}

/* One read into c->in and the protocol's look at it: the bytes read,
 * MW_IO_AGAIN, 0 at the end of input, an MW_IO_* error, or READ_FAILED once
 * the connection has failed (out of memory). */
#define READ_FAILED (-1000)
static long read_once(mw_conn *c)
{
    mw_buf own;
    int borrowed = 0;
    if (c->in.len == 0 && c->in.cap <= READ_CHUNK && !c->loop->scratch_busy) {
        /* Nothing pending here: read into the loop's block, so a read
         * whose messages are all consumed allocates nothing. */
        own = c->in;
        c->in = c->loop->scratch;
        c->in.off = c->in.len = 0;
        c->loop->scratch_busy = borrowed = 1;
    }
    char *p = mw_buf_reserve(&c->in, READ_CHUNK);
    long n = p ? conn_input(c, p, c->in.cap - c->in.off - c->in.len) : MW_IO_ERROR;
    if (n > 0) {
        mw_buf_commit(&c->in, (size_t)n);
        c->bytes_read += (uint64_t)n;
        process_input(c);
    }
    if (borrowed && return_scratch(c, &own) != 0) p = NULL;
    if (!p) { mw_conn_fail(c, MW_E_READ_FAIL, "read %s: out of memory", c->url_str); return READ_FAILED; }
    return n;
}

/* What a read that got no bytes (n <= 0, not MW_IO_AGAIN) means. */
static void read_ended(mw_conn *c, unsigned gen, long n)
{
    if (n == 0) {
        int code = c->proto->eof ? c->proto->eof(c) : 0;
        if (c->gen != gen) return;
        if (code) mw_conn_fail(c, code, "%s", c->proto_err);
        else mw_conn_teardown(c);
        return;
    }
    char e[128];
    mw_net_errno_text(errno, e, sizeof e);
    mw_conn_fail(c, MW_E_READ_FAIL, "read %s: %s", c->url_str, e);
}

/* The errors queued so far, to onError; those its callbacks queue wait for
 * the next pass. */
static void tell_errors(mw_conn *c)
{
    mw_err_ev *batch = c->errs;
    c->errs = NULL;
    c->errs_tail = &c->errs;
    while (batch) {
        mw_err_ev *e = batch;
        batch = e->next;
        c->nerr--;
        if (c->ev->on_error) {
            c->ev->on_error(c->ud, e->code, e->msg);
        }
        free(e);
    }
}

static void read_cb(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)ev; (void)revents;
    mw_conn *c = container_of(w, mw_conn, rio);
    unsigned gen = c->gen;
    long n;
    /* Errors queued before (a refused send) are told before anything read
     * now: the deferred pass that would tell them runs only when no watcher
     * is due. */
    if (c->errs) {
        tell_errors(c);
        if (c->gen != gen || !ev_is_active(&c->rio)) return;
    }
    /* A TLS transport may hold decrypted bytes once the socket is drained:
     * read on while it has some and input is still wanted (rio active: not
     * paused, not torn down by a callback). */
    do {
        n = read_once(c);
        if (n == READ_FAILED) return;
        if (n <= 0) break;
        if (c->gen != gen) return;
        if (c->in.len == 0 && c->in.cap) trim_later(c);
    } while (ev_is_active(&c->rio) && conn_pending(c));
    if (n > 0 || n == MW_IO_AGAIN) return;
    read_ended(c, gen, n);
}

/* After a write, the answer may be in already: a peer on the same core runs
 * while we are in send(), and a read now finds its reply without a poll
 * (epoll_wait) and a loop pass in between. A request-reply exchange then
 * costs two system calls a round trip, as a blocking client's does. A read
 * that finds nothing (the peer is elsewhere, or sends no reply, or was not
 * scheduled in time) turns this off for the next 1, 3, 7 ... 63 writes as
 * such reads follow one another (SPEC_MISSES_MAX), and a read that finds an
 * answer starts the count again: one wasted read per 64 writes when it never
 * pays, and a round trip that missed costs one more when it mostly does.
 * SPEC_BUDGET exchanges at most per pass, so timers and other connections
 * wait no longer than that. */
#define SPEC_BUDGET 16
#define SPEC_MISSES_MAX 6
static void read_after_write(mw_conn *c, unsigned gen)
{
    if (c->spec_skip) { c->spec_skip--; return; }
    int got = 0;
    for (int i = 0; i < SPEC_BUDGET; i++) {
        /* errors or an end a callback queued are told before anything read next */
        if (c->out.len || c->errs || c->pending || !ev_is_active(&c->rio) || c->status != MW_ST_ESTABLISHED) break;
        long n = read_once(c);
        if (n == READ_FAILED || c->gen != gen) return;
        if (n == MW_IO_AGAIN) {
            if (c->spec_misses < SPEC_MISSES_MAX) c->spec_misses++;
            c->spec_skip = (1u << c->spec_misses) - 1;
            break;
        }
        if (n <= 0) { read_ended(c, gen, n); return; }
        got = 1;
        c->spec_misses = 0;
        if (c->in.len == 0 && c->in.cap) trim_later(c);
        if (!c->out.len || !can_flush(c)) break;   /* no answer to that: nothing to wait for */
        ev_now_update(c->loop->ev);   /* timers set by those callbacks count from now */
        flush(c);
        if (c->gen != gen) return;
    }
    /* what a transport holds already decrypted wakes no socket watcher: read_cb
     * reads on while there is some, and gets it next */
    if (got && ev_is_active(&c->rio) && conn_pending(c)) ev_feed_event(c->loop->ev, &c->rio, EV_READ);
}

void mw_conn_pause(mw_conn *c)
{
    c->paused = 1;
    if (ev_is_active(&c->rio)) ev_io_stop(c->loop->ev, &c->rio);
}

void mw_conn_resume(mw_conn *c)
{
    if (!c->paused) return;
    c->paused = 0;
    if (c->net.fd >= 0 && c->status == MW_ST_ESTABLISHED) {
        ev_io_start(c->loop->ev, &c->rio);
        if (c->in.len) { c->pending |= PEND_INPUT; mw_loop_schedule(c->loop, &c->task); }
        /* bytes the transport holds will not wake the socket watcher */
        if (conn_pending(c)) ev_feed_event(c->loop->ev, &c->rio, EV_READ);
    }
}

/* ---- writing ---- */

void mw_conn_want_flush(mw_conn *c)
{
    if (c->out.len) mw_loop_schedule(c->loop, &c->task);
}

static void flush(mw_conn *c)
{
    unsigned gen = c->gen;
    while (c->out.len) {
        long n = conn_output(c, mw_buf_head(&c->out), c->out.len);
        if (n > 0) {
            mw_buf_consume(&c->out, (size_t)n);
            c->bytes_written += (uint64_t)n;
            if (c->want_drained && mw_conn_queued(c) < c->opt.max_send_buffer) {
                /* below the limit again: the protocol appends what it held back */
                c->want_drained = 0;
                c->proto->drained(c);
            }
            continue;
        }
        if (n == MW_IO_AGAIN) {
            if (!ev_is_active(&c->wio)) ev_io_start(c->loop->ev, &c->wio);
            return;
        }
        char e[128];
        int err = errno;
        mw_net_errno_text(err, e, sizeof e);
        /* A reset (or a peer gone) is one event whether a read or a write
         * notices it first: report it with the read side's code. */
        mw_conn_fail(c, err == ECONNRESET || err == EPIPE ? MW_E_READ_FAIL : MW_E_SEND_FAIL,
                     "send %s: %s", c->url_str, e);
        return;
    }
    if (ev_is_active(&c->wio)) ev_io_stop(c->loop->ev, &c->wio);
    if (c->out.cap > SHRINK_KEEP) trim_later(c); /* kept while bursts go on */
    /* drained means every queue: before the 101 the protocol may hold more */
    if (c->buffer_full && !mw_conn_queued(c)) {
        c->buffer_full = 0;
        if (c->ev->on_buffer_drain) {
            c->ev->on_buffer_drain(c->ud);
            if (c->gen != gen) return;
        }
    }
    if (c->flush_then_close && !c->out.len && c->status == MW_ST_CLOSING) mw_conn_teardown(c);
}

static int can_flush(mw_conn *c)
{
    return c->net.up && (c->status == MW_ST_ESTABLISHED || c->status == MW_ST_CLOSING);
}

static void write_cb(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)ev; (void)revents;
    flush(container_of(w, mw_conn, wio));
}

int mw_conn_send(mw_conn *c, const char *p, size_t n, int kind)
{
    if (c->status == MW_ST_CLOSING || c->status == MW_ST_CLOSED) return 0;
    if (c->flush_then_close) return 0;
    /* before the handshake too: what waits for it is queued like the rest */
    if (mw_conn_queued(c) >= c->opt.max_send_buffer) {
        mw_conn_error(c, MW_E_SEND_FAIL, "send %s: send buffer full (%zu bytes), message dropped",
                      c->url_str, c->opt.max_send_buffer);
        return 0;
    }
    c->proto_err[0] = 0;
    if (c->proto->send(c, p, n, kind) != 0) {
        mw_conn_error(c, MW_E_SEND_FAIL, "send %s: %s", c->url_str, c->proto_err);
        return -1;
    }
    c->st.msgs_out++;
    size_t q = mw_conn_queued(c);
    if (q > c->st.sendq_high) c->st.sendq_high = q;
    if (mw_conn_queued(c) >= c->opt.max_send_buffer && !c->buffer_full) {
        c->buffer_full = 1;
        c->pending |= PEND_BUFFER_FULL;
    }
    mw_loop_schedule(c->loop, &c->task);
    return 1;
}

/* ---- closing ---- */

void mw_conn_close(mw_conn *c, int code, const char *reason, size_t n)
{
    if (c->status == MW_ST_CONNECTING && !c->proto_ready) { mw_conn_destroy(c); return; }
    if (c->status != MW_ST_ESTABLISHED) {
        if (c->status == MW_ST_INITIAL) mw_timer_stop(&c->reconnect_timer);
        return;
    }
    c->status = MW_ST_CLOSING;
    c->close_error = 1;
    if (c->proto->close && c->proto->close(c, code, reason, n)) {
        mw_conn_deadline(c, c->opt.close_timeout);
        mw_conn_want_flush(c);
        return;
    }
    mw_conn_pause(c);
    c->flush_then_close = 1;
    if (!c->out.len) { mw_conn_teardown(c); return; }
    mw_conn_deadline(c, c->opt.close_timeout);
    mw_loop_schedule(c->loop, &c->task);
}


void mw_conn_going_away(mw_conn *c)
{
    static const char reason[] = "going away";
    mw_conn_cancel_reconnect(c);
    if (c->status == MW_ST_ESTABLISHED) mw_conn_close(c, MW_CLOSE_GOING_AWAY, reason, sizeof reason - 1);
    else if (c->status == MW_ST_CONNECTING) mw_conn_destroy(c);
}

void mw_conn_destroy(mw_conn *c)
{
    mw_timer_stop(&c->reconnect_timer);
    if (c->status == MW_ST_INITIAL) return;
    mw_conn_teardown(c);
}

static void reconnect_cb(mw_timer *t, void *ud)
{
    (void)t;
    mw_conn *c = ud;
    if (c->status == MW_ST_CLOSED || c->status == MW_ST_INITIAL) mw_conn_connect(c);
}

void mw_conn_reconnect(mw_conn *c, double delay)
{
    if (c->status != MW_ST_CLOSED && c->status != MW_ST_INITIAL) mw_conn_teardown(c);
    mw_timer_start(&c->reconnect_timer, delay > 0 ? delay : 0, 0);
}

void mw_conn_cancel_reconnect(mw_conn *c) { mw_timer_stop(&c->reconnect_timer); }

/* ---- deferred events ---- */

static void conn_task(mw_task *t)
{
    mw_conn *c = container_of(t, mw_conn, task);
    unsigned gen = c->gen;
    /* Errors first, then onClose, each at most once per lifetime. The
     * callbacks may do anything, so state is re-read after each. Only the
     * errors queued before this pass are delivered now: one that an onError
     * causes (a send refused again) waits for the next pass (the task is
     * queued again), so the loop polls, runs timers and sees signals in
     * between however long the chain goes on. */
    tell_errors(c);
    if (c->pending & PEND_CLOSE) {
        if (c->errs) return;  /* onClose comes after them, next pass */
        c->pending &= ~PEND_CLOSE;
        mw_buf_shrink(&c->in, 0);
        mw_buf_shrink(&c->out, 0);
        if (c->ev->on_close) {
            c->ev->on_close(c->ud);
        }
        return;
    }
    if (c->gen != gen) return;
    if (c->pending & PEND_BUFFER_FULL) {
        c->pending &= ~PEND_BUFFER_FULL;
        if (c->ev->on_buffer_full) {
            c->ev->on_buffer_full(c->ud);
            if (c->gen != gen) return;
        }
    }
    if (c->pending & PEND_INPUT) {
        c->pending &= ~PEND_INPUT;
        if (!c->paused) process_input(c);
        if (c->gen != gen) return;
    }
    if (c->out.len && can_flush(c)) {
        flush(c);
        if (c->gen == gen) read_after_write(c, gen);
    }
}
