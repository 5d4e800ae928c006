/* stage_proxy: the proxy stage (see stage_proxy.h). The handshake's bytes
 * come from proxy_hs.c; this file moves them over the socket, waits on its
 * readiness, resolves the target here for socks5://, and keeps what the
 * proxy sent after its answer for the layers above. */
#include "stage_proxy.h"
#include "conn_int.h"
#include "dns.h"
#include "proxy.h"
#include "tls.h"
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const mw_stage_vt mw_stage_proxy;

typedef struct px {
    mw_stage *s;
    /* the setting (kept across sessions) */
    int mode, default_kind;
    char *spec, *authorization, *user, *pass;
    /* this session's */
    mw_proxy p;
    char what[700];              /* "ws://host/ via http proxy 127.0.0.1:3128" */
    mw_proxy_hs *hs;             /* while the handshake runs */
    size_t outoff;               /* of hs->out, written so far */
    ev_io hio;
    mw_dns_req *dns;
    char *left;                  /* what the proxy sent after its answer */
    size_t leftlen, leftoff;
} px;

static void wipe_free(char *s)
{
    if (s) { memset(s, 0, strlen(s)); free(s); }
}

static px *state_of(mw_stage *s)
{
    if (!s->state) {
        px *st = calloc(1, sizeof *st);
        if (!st) return NULL;
        st->s = s;
        s->state = st;
    }
    return s->state;
}

static int set_str(char **slot, const char *v)
{
    char *n = v ? strdup(v) : NULL;
    if (v && !n) return -1;
    wipe_free(*slot);
    *slot = n;
    return 0;
}

static const char *const env_names[] = {
    "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
};

int mw_proxy_env_any(void)
{
    for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++) {
        const char *v = getenv(env_names[i]);
        if (v && *v) return 1;
    }
    return 0;
}

int mw_proxy_configure(mw_conn *c, const mw_proxy_setting *set)
{
    int needed = set->mode == MW_PROXY_SET || (set->mode == MW_PROXY_FROM_ENV && mw_proxy_env_any());
    mw_stage *s = mw_conn_stage(c, &mw_stage_proxy, needed);
    if (!s) return needed ? -1 : 0;
    s->enabled = needed;
    px *st = state_of(s);
    if (!st) return -1;
    st->mode = set->mode;
    st->default_kind = set->default_kind;
    if (set_str(&st->spec, set->spec) || set_str(&st->authorization, set->authorization) ||
        set_str(&st->user, set->user) || set_str(&st->pass, set->pass))
        return -1;
    return 0;
}

int mw_proxy_copy_opts(mw_conn *dst, const mw_conn *src)
{
    const mw_stage *s = mw_conn_stage((mw_conn *)src, &mw_stage_proxy, 0);
    const px *st = s ? s->state : NULL;
    mw_proxy_setting set = { MW_PROXY_OFF, NULL, 0, NULL, NULL, NULL };
    if (st && s->enabled)
        set = (mw_proxy_setting){ st->mode, st->spec, st->default_kind, st->authorization, st->user, st->pass };
    return mw_proxy_configure(dst, &set);
}

/* ---- a session ---- */

static const char *env_get(const char *name, void *ud)
{
    (void)ud;
    return getenv(name);
}

static int px_prepare(mw_stage *s, const mw_url *u, const char **host, int *port, const char **what,
                      char *msg, size_t cap)
{
    px *st = s->state;
    if (!st || st->mode == MW_PROXY_OFF) return 0;
    const char *spec = st->spec, *var = NULL;
    const char *url = s->c->url_str;   /* this connect's (a redirect's hop included) */
    if (st->mode == MW_PROXY_FROM_ENV) {
        int tls = u->tls || mw_tls_enabled(s->c);
        spec = mw_proxy_from_env(env_get, NULL, tls, u->host, u->port, &var);
        if (!spec) return 0;
    }
    char err[200];
    int kind = st->mode == MW_PROXY_FROM_ENV ? MW_PROXY_HTTP : st->default_kind; /* curl reads "host:port" so */
    if (!spec || mw_proxy_parse(spec, kind, &st->p, err, sizeof err) != 0) {
        snprintf(msg, cap, "connect %s: bad proxy setting%s%s: %s", url, var ? " in " : "", var ? var : "",
                 spec ? err : "none");
        return -1;
    }
    if (st->user) { snprintf(st->p.user, sizeof st->p.user, "%s", st->user); st->p.has_user = 1; }
    if (st->pass) { snprintf(st->p.pass, sizeof st->p.pass, "%s", st->pass); st->p.has_user = 1; }
    char where[300];
    mw_proxy_where(&st->p, where, sizeof where);
    snprintf(st->what, sizeof st->what, "%s via %s %s", url, mw_proxy_kind_name(st->p.kind), where);
    *host = st->p.host;
    *port = st->p.port;
    *what = st->what;
    return 1;
}

static void end_handshake(px *st)
{
    if (st->hs) {
        memset(st->hs, 0, sizeof *st->hs);   /* it held the credentials */
        free(st->hs);
        st->hs = NULL;
    }
    if (ev_is_active(&st->hio)) ev_io_stop(st->s->c->loop->ev, &st->hio);
    if (st->dns) { mw_dns_cancel(st->dns); st->dns = NULL; }
}

static void px_fail(px *st, int code, const char *why)
{
    mw_conn *c = st->s->c;
    char msg[1024];
    snprintf(msg, sizeof msg, "connect %s: %s", st->what, why);
    end_handshake(st);
    mw_conn_fail(c, code, "%s", msg);
}

static void want(px *st, int events)
{
    struct ev_loop *ev = st->s->c->loop->ev;
    if (ev_is_active(&st->hio)) {
        if ((st->hio.events & (EV_READ | EV_WRITE)) == events) return;
        ev_io_stop(ev, &st->hio);
    }
    ev_io_set(&st->hio, mw_stage_fd(st->s), events);
    ev_io_start(ev, &st->hio);
}

static void io_failed(px *st, const char *doing)
{
    char why[300], e[128];
    mw_net_errno_text(errno, e, sizeof e);
    snprintf(why, sizeof why, "%s the proxy failed: %s", doing, e);
    px_fail(st, MW_E_CONNECT_FAIL, why);
}

/* Write what the handshake has to say; 0 when all of it went, 1 waiting,
 * -1 failed (reported). */
static int send_out(px *st)
{
    mw_proxy_hs *hs = st->hs;
    while (st->outoff < hs->outlen) {
        long n = mw_stage_write(st->s, hs->out + st->outoff, hs->outlen - st->outoff);
        if (n == MW_IO_AGAIN) { want(st, EV_WRITE); return 1; }
        if (n < 0) { io_failed(st, "writing to"); return -1; }
        st->outoff += (size_t)n;
    }
    memset(hs->out, 0, hs->outlen);
    hs->outlen = st->outoff = 0;
    want(st, EV_READ);
    return 0;
}

static void handshake_done(px *st, const char *rest, size_t n)
{
    end_handshake(st);
    if (n) {
        st->left = malloc(n);
        if (!st->left) { px_fail(st, MW_E_CONNECT_FAIL, "out of memory"); return; }
        memcpy(st->left, rest, n);
        st->leftlen = n;
        st->leftoff = 0;
    }
    mw_stage_ready(st->s);
}

static void read_reply(px *st)
{
    char buf[4096];
    for (;;) {
        long n = mw_stage_read(st->s, buf, sizeof buf);
        if (n == MW_IO_AGAIN) return;
        if (n < 0) { io_failed(st, "reading from"); return; }
        if (n == 0) { mw_proxy_hs_eof(st->hs); px_fail(st, st->hs->code, st->hs->err); return; }
        size_t off = 0;
        while (off < (size_t)n) {
            size_t used;
            int r = mw_proxy_hs_input(st->hs, buf + off, (size_t)n - off, &used);
            off += used;
            if (r == MW_PROXY_HS_FAIL) { px_fail(st, st->hs->code, st->hs->err); return; }
            if (r == MW_PROXY_HS_DONE) { handshake_done(st, buf + off, (size_t)n - off); return; }
            if (st->hs->outlen) {
                if (off < (size_t)n) {  /* the proxy spoke out of turn */
                    px_fail(st, MW_E_CONNECT_FAIL, "proxy sent more than its answer before the next request");
                    return;
                }
                if (send_out(st) != 0) return;
            }
        }
    }
}

static void hio_cb(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)ev; (void)revents;
    px *st = container_of(w, px, hio);
    if (!st->hs) return;
    if (st->hs->outlen) { send_out(st); return; }
    read_reply(st);
}

static int begin(px *st, const unsigned char *ip, int iplen)
{
    mw_conn *c = st->s->c;
    const mw_url *u = &c->url;
    if (mw_proxy_hs_start(st->hs, &st->p, u->host, u->port, st->authorization, ip, iplen) != 0) {
        px_fail(st, st->hs->code, st->hs->err);
        return -1;
    }
    return send_out(st) < 0 ? -1 : 1;
}

static void resolved(void *ud, int status, const struct sockaddr_storage *a, const socklen_t *len, int n,
                     const char *errmsg)
{
    (void)len;
    px *st = ud;
    st->dns = NULL;
    if (status != 0 || n < 1) { px_fail(st, MW_E_DNS_FAIL, errmsg ? errmsg : "resolve failed"); return; }
    if (a[0].ss_family == AF_INET6)
        begin(st, ((const struct sockaddr_in6 *)&a[0])->sin6_addr.s6_addr, 16);
    else
        begin(st, (const unsigned char *)&((const struct sockaddr_in *)&a[0])->sin_addr.s_addr, 4);
}

static int px_start(mw_stage *s)
{
    px *st = s->state;
    mw_conn *c = s->c;
    st->hs = calloc(1, sizeof *st->hs);
    if (!st->hs) { px_fail(st, MW_E_CONNECT_FAIL, "out of memory"); return -1; }
    ev_io_init(&st->hio, hio_cb, mw_stage_fd(s), EV_READ);
    st->outoff = 0;
    if (st->p.kind == MW_PROXY_SOCKS5 && c->url.host_kind == MW_HOST_NAME) {
        /* socks5://: the name is resolved here, the proxy gets an address */
        char err[256];
        struct mw_dns *d = mw_loop_dns(c->loop, err, sizeof err);
        st->dns = d ? mw_dns_resolve(d, c->url.host, c->url.port, resolved, st) : NULL;
        if (!st->dns) { px_fail(st, MW_E_DNS_FAIL, d ? "cannot start resolving the target" : err); return -1; }
        return 1;
    }
    /* an address in the URL goes as an address, whoever resolves names */
    unsigned char ip[16];
    if (c->url.host_kind == MW_HOST_IPV4 && inet_pton(AF_INET, c->url.host, ip) == 1) return begin(st, ip, 4);
    if (c->url.host_kind == MW_HOST_IPV6 && !strchr(c->url.host, '%') && inet_pton(AF_INET6, c->url.host, ip) == 1)
        return begin(st, ip, 16);
    return begin(st, NULL, 0);
}

static void px_timeout(mw_stage *s)
{
    px *st = s->state;
    char why[300];
    snprintf(why, sizeof why, "proxy handshake timed out after %gs while %s", s->c->opt.connect_timeout,
             st->dns ? "resolving the target" : st->hs ? mw_proxy_hs_waiting(st->hs) : "connecting");
    px_fail(st, MW_E_TIMEOUT, why);
}

static long px_input(mw_stage *s, char *p, size_t cap)
{
    px *st = s->state;
    if (st->left) {
        size_t n = st->leftlen - st->leftoff;
        if (n > cap) n = cap;
        memcpy(p, st->left + st->leftoff, n);
        st->leftoff += n;
        if (st->leftoff == st->leftlen) { free(st->left); st->left = NULL; }
        return (long)n;
    }
    return mw_stage_read(s, p, cap);
}

static long px_output(mw_stage *s, const char *p, size_t n) { return mw_stage_write(s, p, n); }

static int px_pending(mw_stage *s)
{
    const px *st = s->state;
    return st && st->left != NULL;
}

static void px_stop(mw_stage *s)
{
    px *st = s->state;
    if (!st) return;
    end_handshake(st);
    free(st->left);
    st->left = NULL;
}

static void px_free(mw_stage *s)
{
    px *st = s->state;
    if (!st) return;
    px_stop(s);
    wipe_free(st->spec);
    wipe_free(st->authorization);
    wipe_free(st->user);
    wipe_free(st->pass);
    memset(&st->p, 0, sizeof st->p);
    free(st);
    s->state = NULL;
}

const mw_stage_vt mw_stage_proxy = {
    .name = "proxy",
    .level = MW_STAGE_LEVEL_PROXY,
    .start = px_start,
    .input = px_input,
    .output = px_output,
    .pending = px_pending,
    .stop = px_stop,
    .free = px_free,
    .prepare = px_prepare,
    .timeout = px_timeout,
    .connect_phase = 1,
};
