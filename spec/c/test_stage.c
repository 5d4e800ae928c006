/* test_stage: the stage interface from outside the TLS and ws code, as the
 * proxy stage of the next issue will use it: a handshake stage that waits
 * on the socket and says when it is ready, and a transforming stage above
 * it, plugged into a real connection over a real loopback socket. */
#include "mwtest.h"
#include "conn_int.h"
#include "layers.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the peer: a server on the same loop that wants "CONNECT\n", answers
 * "OK\n", then echoes every byte, recording what arrived after the
 * handshake (what the stages put on the wire) ---- */

typedef struct peer {
    int lfd, fd;
    ev_io accept_w, io_w;
    char got[256];
    size_t ngot;
    int handshaken;
    char hs[16];
    size_t nhs;
} peer;

static void peer_io(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)revents;
    peer *p = w->data;
    char buf[256];
    ssize_t n = recv(p->fd, buf, sizeof buf, 0);
    if (n <= 0) { ev_io_stop(ev, w); close(p->fd); p->fd = -1; return; }
    size_t off = 0;
    if (!p->handshaken) {
        while (off < (size_t)n && p->nhs < sizeof p->hs - 1) {
            char ch = buf[off++];
            p->hs[p->nhs++] = ch;
            if (ch == '\n') { p->handshaken = 1; break; }
        }
        if (!p->handshaken) return;
        if (send(p->fd, "OK\n", 3, MSG_NOSIGNAL) != 3) abort();
    }
    size_t rest = (size_t)n - off;
    if (rest > sizeof p->got - p->ngot) rest = sizeof p->got - p->ngot;
    memcpy(p->got + p->ngot, buf + off, rest);
    p->ngot += rest;
    if (rest && send(p->fd, buf + off, rest, MSG_NOSIGNAL) != (ssize_t)rest) abort();
}

static void peer_accept(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)revents;
    peer *p = w->data;
    p->fd = accept(p->lfd, NULL, NULL);
    if (p->fd < 0) abort();
    ev_io_stop(ev, w);
    ev_io_init(&p->io_w, peer_io, p->fd, EV_READ);
    p->io_w.data = p;
    ev_io_start(ev, &p->io_w);
}

static int peer_listen(peer *p, struct ev_loop *ev)
{
    memset(p, 0, sizeof *p);
    p->fd = -1;
    p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(p->lfd, 4) != 0 ||
        getsockname(p->lfd, (struct sockaddr *)&a, &len) != 0)
        abort();
    ev_io_init(&p->accept_w, peer_accept, p->lfd, EV_READ);
    p->accept_w.data = p;
    ev_io_start(ev, &p->accept_w);
    return ntohs(a.sin_port);
}

static void peer_close(peer *p, struct ev_loop *ev)
{
    if (ev_is_active(&p->accept_w)) ev_io_stop(ev, &p->accept_w);
    if (ev_is_active(&p->io_w)) ev_io_stop(ev, &p->io_w);
    if (p->fd >= 0) close(p->fd);
    close(p->lfd);
}

/* ---- a proxy-like stage: at start it writes "CONNECT\n" through the layer
 * below and waits on the socket for "OK\n"; then it passes bytes through,
 * counting them ---- */

typedef struct hs_state {
    ev_io w;
    mw_stage *s;
    char reply[8];
    size_t nreply;
    size_t in, out;        /* bytes passed each way after the handshake */
    int started, stopped, freed_ok;
} hs_state;

static int hs_frees;

static void hs_wait_cb(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)revents;
    hs_state *st = w->data;
    /* byte by byte: nothing of the echoed stream may be taken with the reply */
    while (st->nreply < 3) {
        long n = mw_stage_read(st->s, st->reply + st->nreply, 1);
        if (n == MW_IO_AGAIN) return;
        if (n <= 0) { ev_io_stop(ev, w); mw_conn_fail(st->s->c, MW_E_CONNECT_FAIL, "proxy: no reply"); return; }
        st->nreply++;
    }
    ev_io_stop(ev, w);
    if (memcmp(st->reply, "OK\n", 3) != 0) { mw_conn_fail(st->s->c, MW_E_CONNECT_FAIL, "proxy: refused"); return; }
    mw_stage_ready(st->s);
}

static int hs_start(mw_stage *s)
{
    hs_state *st = s->state;
    if (!st) {
        st = s->state = calloc(1, sizeof *st);
        if (!st) return -1;
        st->s = s;
    }
    st->started++;
    st->nreply = 0;
    if (mw_stage_write(s, "CONNECT\n", 8) != 8) return -1;
    ev_io_init(&st->w, hs_wait_cb, mw_stage_fd(s), EV_READ);
    st->w.data = st;
    ev_io_start(s->c->loop->ev, &st->w);
    return 1;
}

static long hs_input(mw_stage *s, char *p, size_t cap)
{
    hs_state *st = s->state;
    long n = mw_stage_read(s, p, cap);
    if (n > 0) st->in += (size_t)n;
    return n;
}

static long hs_output(mw_stage *s, const char *p, size_t n)
{
    hs_state *st = s->state;
    long r = mw_stage_write(s, p, n);
    if (r > 0) st->out += (size_t)r;
    return r;
}

static void hs_stop(mw_stage *s)
{
    hs_state *st = s->state;
    if (ev_is_active(&st->w)) ev_io_stop(s->c->loop->ev, &st->w);
    st->stopped++;
}

static void hs_free(mw_stage *s)
{
    free(s->state);
    hs_frees++;
}

static const mw_stage_vt hs_stage = {
    .name = "proxy", .level = MW_STAGE_LEVEL_PROXY,
    .start = hs_start, .input = hs_input, .output = hs_output, .stop = hs_stop, .free = hs_free,
};

/* ---- a transforming stage (XOR 0x20) with no state and no handshake:
 * what the peer sees and echoes is transformed, the script's bytes are not ---- */

static long x_input(mw_stage *s, char *p, size_t cap)
{
    long n = mw_stage_read(s, p, cap);
    for (long i = 0; i < n; i++) p[i] ^= 0x20;
    return n;
}

static long x_output(mw_stage *s, const char *p, size_t n)
{
    char tmp[256];
    if (n > sizeof tmp) n = sizeof tmp;
    for (size_t i = 0; i < n; i++) tmp[i] = (char)(p[i] ^ 0x20);
    return mw_stage_write(s, tmp, n);
}

static const mw_stage_vt x_stage = {.name = "xor", .level = 30, .input = x_input, .output = x_output};

/* ---- the owner ---- */

typedef struct owner {
    mw_conn *c;
    int connects, closes, errors;
    char msg[256];
    size_t nmsg;
    char err[256];
} owner;

static void on_connect(void *ud)
{
    owner *o = ud;
    o->connects++;
    MW_CHECK_EQ_INT(mw_conn_send(o->c, "hello, stages", 13, MW_KIND_NONE), 1);
}

static void on_message(void *ud, const char *p, size_t n, int kind)
{
    (void)kind;
    owner *o = ud;
    if (n > sizeof o->msg - o->nmsg) n = sizeof o->msg - o->nmsg;
    memcpy(o->msg + o->nmsg, p, n);
    o->nmsg += n;
    if (o->nmsg >= 13) mw_conn_close(o->c, MW_CLOSE_NORMAL, NULL, 0);
}

static void on_error(void *ud, int code, const char *msg)
{
    owner *o = ud;
    o->errors++;
    snprintf(o->err, sizeof o->err, "%d %s", code, msg);
}

static void on_close(void *ud) { ((owner *)ud)->closes++; }

static const mw_conn_events events = {
    .on_connect = on_connect, .on_message = on_message, .on_error = on_error, .on_close = on_close,
};

static void guard_cb(struct ev_loop *ev, ev_timer *t, int revents)
{
    (void)t; (void)revents;
    fprintf(stderr, "test_stage: the connection did not finish within 5s\n");
    ev_break(ev, EVBREAK_ALL);
}

/* A loop, a listening peer and a tcp:// connection to it (not connected). */
static int setup(mw_loop *loop, peer *p, owner *o)
{
    MW_CHECK_EQ_INT(mw_loop_init(loop), 0);
    int port = peer_listen(p, loop->ev);
    char url[64], err[256];
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
    o->c = mw_conn_new(loop, url, &mw_layers_std, &events, o, err, sizeof err);
    MW_CHECK(o->c != NULL);
    return o->c != NULL;
}

/* Both stages, attached top first: the levels, not the attach order, put
 * the handshake stage on the socket. */
static void test_stack_over_loopback(void)
{
    mw_loop loop;
    peer p;
    owner o = {0};
    if (!setup(&loop, &p, &o)) return;
    mw_stage *x = mw_conn_stage(o.c, &x_stage, 1);
    mw_stage *hs = mw_conn_stage(o.c, &hs_stage, 1);
    MW_CHECK(x && hs);
    MW_CHECK(mw_conn_stage(o.c, &hs_stage, 0) == hs);
    x->enabled = hs->enabled = 1;
    ev_timer guard;
    ev_timer_init(&guard, guard_cb, 5, 0);
    ev_timer_start(loop.ev, &guard);
    ev_unref(loop.ev);
    MW_CHECK_EQ_INT(mw_conn_connect(o.c), 0);
    mw_loop_run(&loop);
    ev_ref(loop.ev);
    ev_timer_stop(loop.ev, &guard);

    if (o.errors) fprintf(stderr, "test_stage: on_error: %s\n", o.err);
    MW_CHECK_EQ_INT(o.errors, 0);
    MW_CHECK_EQ_INT(o.connects, 1);
    MW_CHECK_EQ_INT(o.closes, 1);
    /* the handshake ran on the socket, below the transforming stage */
    MW_CHECK_EQ_INT(p.nhs, 8);
    MW_CHECK_MEM(p.hs, "CONNECT\n", 8);
    /* the script's bytes came back as sent, through both stages both ways */
    MW_CHECK_EQ_INT(o.nmsg, 13);
    MW_CHECK_MEM(o.msg, "hello, stages", 13);
    /* on the wire they were transformed: the XOR stage sits above */
    MW_CHECK_EQ_INT(p.ngot, 13);
    char wire[13];
    for (int i = 0; i < 13; i++) wire[i] = (char)("hello, stages"[i] ^ 0x20);
    MW_CHECK_MEM(p.got, wire, 13);
    hs_state *st = hs->state;
    MW_CHECK_EQ_INT(st->started, 1);
    MW_CHECK_EQ_INT(st->stopped, 1);
    /* counted after the handshake only: the reply was the stage's own */
    MW_CHECK_EQ_INT(st->out, 13);
    MW_CHECK_EQ_INT(st->in, 13);
    uint64_t r, w;
    mw_conn_bytes(o.c, &r, &w);
    MW_CHECK_EQ_INT(r, 13);
    MW_CHECK_EQ_INT(w, 13);

    hs_frees = 0;
    mw_conn_free(o.c);
    MW_CHECK_EQ_INT(hs_frees, 1);
    peer_close(&p, loop.ev);
    mw_loop_close(&loop);
}

/* A stage that is attached but not enabled takes no part. */
static void test_disabled_stage_is_skipped(void)
{
    mw_loop loop;
    peer p;
    owner o = {0};
    if (!setup(&loop, &p, &o)) return;
    p.handshaken = 1;   /* no CONNECT expected */
    mw_stage *x = mw_conn_stage(o.c, &x_stage, 1);
    MW_CHECK(x && !x->enabled);
    MW_CHECK_EQ_INT(mw_conn_connect(o.c), 0);
    mw_loop_run(&loop);
    MW_CHECK_EQ_INT(o.errors, 0);
    MW_CHECK_EQ_INT(o.nmsg, 13);
    MW_CHECK_MEM(o.msg, "hello, stages", 13);
    MW_CHECK_EQ_INT(p.ngot, 13);
    MW_CHECK_MEM(p.got, "hello, stages", 13);   /* untransformed */
    mw_conn_free(o.c);
    peer_close(&p, loop.ev);
    mw_loop_close(&loop);
}

int main(void)
{
    MW_RUN(test_stack_over_loopback);
    MW_RUN(test_disabled_stage_is_skipped);
    return MW_DONE();
}
