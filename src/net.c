/* net: resolve, connect with address fallback, socket options, reads and
 * writes of the socket under a connection. Knows nothing of connections,
 * stages, protocols or Lua. */
#include "net.h"
#include "err.h"
#include "dns.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void try_next_addr(mw_net *n);

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24   /* Linux 4.2's, not in glibc's netinet/in.h */
#endif

void mw_net_errno_text(int e, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", strerror(e));
    if (buf[0] && isupper((unsigned char)buf[0]) && !(buf[1] && isupper((unsigned char)buf[1])))
        buf[0] = (char)tolower((unsigned char)buf[0]);
}

static void fail(mw_net *n, int code, const char *fmt, const char *why)
{
    char msg[512];
    snprintf(msg, sizeof msg, fmt, n->what, why);
    n->done(n, code, msg);
}

/* Stop and close every attempt but `keep` (-1: all). */
static void drop_attempts(mw_net *n, int keep)
{
    mw_net_addrs *ad = n->addrs;
    if (!ad) return;
    struct ev_loop *ev = n->loop->ev;
    if (ev_is_active(&ad->stagger)) ev_timer_stop(ev, &ad->stagger);
    for (int i = 0; i < ad->idx; i++) {
        if (i == keep || ad->fd[i] < 0) continue;
        if (ev_is_active(&ad->w[i])) ev_io_stop(ev, &ad->w[i]);
        close(ad->fd[i]);
        ad->fd[i] = -1;
    }
}

static void connected(mw_net *n, int i)
{
    mw_net_addrs *ad = n->addrs;
    drop_attempts(n, i);
    if (ev_is_active(&ad->w[i])) ev_io_stop(n->loop->ev, &ad->w[i]);
    n->fd = ad->fd[i];
    n->peerlen = ad->len[i];
    memcpy(&n->peer, &ad->a[i], n->peerlen);
    free(ad);
    n->addrs = NULL;
    int one = 1;
    setsockopt(n->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    n->up = 1;
    n->done(n, 0, NULL);
}

static void attempt_cb(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)revents;
    mw_net *n = w->data;
    mw_net_addrs *ad = n->addrs;
    int i = (int)(w - ad->w), err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(ad->fd[i], SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err == 0) { connected(n, i); return; }
    ev_io_stop(ev, w);
    close(ad->fd[i]);
    ad->fd[i] = -1;
    ad->live--;
    mw_net_errno_text(err, n->last_err, sizeof n->last_err);
    try_next_addr(n);   /* a failure starts the next address at once */
}

static void stagger_cb(struct ev_loop *ev, ev_timer *t, int revents)
{
    (void)ev; (void)revents;
    try_next_addr(t->data);
}

/* The socket for address i, bound to the source address when one is set. */
static int open_socket(mw_net *n, const struct sockaddr *sa)
{
    const mw_net_opts *o = &n->opt;
    if (o->bind_len && o->bind.ss_family != sa->sa_family) {
        snprintf(n->last_err, sizeof n->last_err, "bindto is an IPv%d address, the target IPv%d",
                 o->bind.ss_family == AF_INET6 ? 6 : 4, sa->sa_family == AF_INET6 ? 6 : 4);
        return -1;
    }
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { mw_net_errno_text(errno, n->last_err, sizeof n->last_err); return -1; }
    if (o->bind_len) {
        int one = 1;
        /* a fixed source port may be reused at once by the next connect; any
         * port: chosen at connect() by the whole 4-tuple (Linux 4.2), so each
         * source address has the ephemeral range to itself per destination */
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (o->bind.ss_family == AF_INET && ((const struct sockaddr_in *)&o->bind)->sin_port == 0)
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (o->bind.ss_family == AF_INET6 && ((const struct sockaddr_in6 *)&o->bind)->sin6_port == 0)
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (const struct sockaddr *)&o->bind, o->bind_len) != 0) {
            char e[96], ip[INET6_ADDRSTRLEN] = "?";
            int port = 0;
            mw_net_errno_text(errno, e, sizeof e);
            const struct sockaddr_storage *b = &o->bind;
            if (b->ss_family == AF_INET) {
                inet_ntop(AF_INET, &((const struct sockaddr_in *)b)->sin_addr, ip, sizeof ip);
                port = ntohs(((const struct sockaddr_in *)b)->sin_port);
            } else {
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)b)->sin6_addr, ip, sizeof ip);
                port = ntohs(((const struct sockaddr_in6 *)b)->sin6_port);
            }
            snprintf(n->last_err, sizeof n->last_err, "bindto %s%s%s:%d: %s", b->ss_family == AF_INET6 ? "[" : "",
                     ip, b->ss_family == AF_INET6 ? "]" : "", port, e);
            close(fd);
            return -1;
        }
    }
    return fd;
}

static void try_next_addr(mw_net *n)
{
    mw_net_addrs *ad = n->addrs;
    for (; ad->idx < ad->n; ad->idx++) {
        int i = ad->idx;
        struct sockaddr *sa = (struct sockaddr *)&ad->a[i];
        int fd = open_socket(n, sa);
        if (fd < 0) continue;
        ad->fd[i] = fd;
        if (connect(fd, sa, ad->len[i]) == 0) { ad->idx++; connected(n, i); return; }
        if (errno == EINPROGRESS) {
            ev_io_init(&ad->w[i], attempt_cb, fd, EV_WRITE);
            ad->w[i].data = n;
            ev_io_start(n->loop->ev, &ad->w[i]);
            ad->live++;
            ad->idx++;
            /* the next address starts after the stagger unless this one ends first */
            if (ad->idx < ad->n) {
                if (ev_is_active(&ad->stagger)) ev_timer_stop(n->loop->ev, &ad->stagger);
                ev_timer_set(&ad->stagger, n->opt.stagger > 0 ? n->opt.stagger : 0.25, 0);
                ev_timer_start(n->loop->ev, &ad->stagger);
            }
            return;
        }
        mw_net_errno_text(errno, n->last_err, sizeof n->last_err);
        close(fd);
        ad->fd[i] = -1;
    }
    if (ad->live) return;   /* the last ones are still pending */
    drop_attempts(n, -1);
    fail(n, MW_E_CONNECT_FAIL, "connect %s: %s", n->last_err[0] ? n->last_err : "no address to connect to");
}

static void dns_done(void *ud, int status, const struct sockaddr_storage *addrs,
                     const socklen_t *lens, int cnt, const char *msg)
{
    mw_net *n = ud;
    n->dns_req = NULL;
    if (status != 0) { fail(n, MW_E_DNS_FAIL, "connect %s: %s", msg ? msg : "resolve failed"); return; }
    free(n->addrs);
    n->addrs = calloc(1, sizeof *n->addrs);
    if (!n->addrs) { fail(n, MW_E_CONNECT_FAIL, "connect %s: %s", "out of memory"); return; }
    mw_net_addrs *ad = n->addrs;
    ad->n = cnt < MW_NET_MAX_ADDRS ? cnt : MW_NET_MAX_ADDRS;
    for (int i = 0; i < ad->n; i++) { ad->a[i] = addrs[i]; ad->len[i] = lens[i]; ad->fd[i] = -1; }
    ev_timer_init(&ad->stagger, stagger_cb, 0.25, 0);
    ad->stagger.data = n;
    try_next_addr(n);
}

int mw_net_parse_bind(const char *s, struct sockaddr_storage *out, socklen_t *len, char *err, size_t cap)
{
    char host[64];
    const char *port = NULL;
    size_t hn;
    memset(out, 0, sizeof *out);
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close) { snprintf(err, cap, "unclosed ["); return -1; }
        hn = (size_t)(close - s - 1);
        if (close[1] == ':') port = close + 2;
        else if (close[1]) { snprintf(err, cap, "junk after ]"); return -1; }
        s++;
    } else {
        const char *c1 = strchr(s, ':');
        if (c1 && !strchr(c1 + 1, ':')) { port = c1 + 1; hn = (size_t)(c1 - s); }
        else hn = strlen(s);
    }
    if (hn == 0 || hn >= sizeof host) { snprintf(err, cap, "expected an IP address, [v6] or either with :port"); return -1; }
    memcpy(host, s, hn);
    host[hn] = 0;
    long p = 0;
    if (port) {
        char *end;
        p = strtol(port, &end, 10);
        if (!*port || *end || p < 0 || p > 65535) { snprintf(err, cap, "bad port (expected 0..65535)"); return -1; }
    }
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
        *len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
        *len = sizeof *v6;
        return 0;
    }
    snprintf(err, cap, "%s is not an IP address (bindto takes an address, not a name)", host);
    return -1;
}

void mw_net_init(mw_net *n, mw_loop *l, mw_net_done done)
{
    memset(n, 0, sizeof *n);
    n->loop = l;
    n->done = done;
    n->fd = -1;
}

int mw_net_connect(mw_net *n, const char *what, const char *host, int port, char *msg, size_t cap)
{
    mw_net_close(n);
    n->what = what;
    n->last_err[0] = 0;
    char err[256] = "";
    struct mw_dns *dns = mw_loop_dns(n->loop, err, sizeof err);
    if (!dns) {
        snprintf(msg, cap, "connect %s: resolver unavailable: %s", what, err);
        return MW_E_DNS_FAIL;
    }
    n->dns_req = mw_dns_resolve(dns, host, (uint16_t)port, dns_done, n);
    if (!n->dns_req) {
        snprintf(msg, cap, "connect %s: cannot start resolving %s", what, host);
        return MW_E_DNS_FAIL;
    }
    return 0;
}

void mw_net_close(mw_net *n)
{
    if (n->dns_req) { mw_dns_cancel(n->dns_req); n->dns_req = NULL; }
    drop_attempts(n, -1);
    free(n->addrs);
    n->addrs = NULL;
    if (n->fd >= 0) { close(n->fd); n->fd = -1; }
    n->up = 0;
}

long mw_net_read(mw_net *n, char *p, size_t cap)
{
    for (;;) {
        ssize_t r = recv(n->fd, p, cap, 0);
        if (r >= 0) return (long)r;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return MW_IO_AGAIN;
        return MW_IO_ERROR;
    }
}

long mw_net_write(mw_net *n, const char *p, size_t len)
{
    for (;;) {
        ssize_t r = send(n->fd, p, len, MSG_NOSIGNAL);
        if (r >= 0) return (long)r;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return MW_IO_AGAIN;
        return MW_IO_ERROR;
    }
}

static int addr_str(const struct sockaddr_storage *ss, char *ip, size_t cap, int *port)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)ss;
        inet_ntop(AF_INET, &s->sin_addr, ip, (socklen_t)cap);
        if (port) *port = ntohs(s->sin_port);
        return 0;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const void *)ss;
        inet_ntop(AF_INET6, &s->sin6_addr, ip, (socklen_t)cap);
        if (port) *port = ntohs(s->sin6_port);
        return 0;
    }
    return -1;
}

int mw_net_remote(const mw_net *n, char *ip, size_t cap, int *port)
{
    if (n->fd < 0 || !n->peerlen) return -1;
    return addr_str(&n->peer, ip, cap, port);
}

int mw_net_local(const mw_net *n, char *ip, size_t cap, int *port)
{
    if (n->fd < 0) return -1;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(n->fd, (struct sockaddr *)&ss, &len) < 0) return -1;
    return addr_str(&ss, ip, cap, port);
}

int mw_net_family(const mw_net *n)
{
    if (!n->peerlen) return 0;
    return n->peer.ss_family == AF_INET6 ? 6 : n->peer.ss_family == AF_INET ? 4 : 0;
}
