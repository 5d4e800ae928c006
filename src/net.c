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

static void connected(mw_net *n)
{
    n->peerlen = n->addrs->len[n->addrs->idx];
    memcpy(&n->peer, &n->addrs->a[n->addrs->idx], n->peerlen);
    free(n->addrs);
    n->addrs = NULL;
    int one = 1;
    setsockopt(n->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    n->up = 1;
    n->done(n, 0, NULL);
}

static void connect_wait_cb(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)revents;
    mw_net *n = container_of(w, mw_net, cw);
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(n->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    ev_io_stop(ev, &n->cw);
    if (err == 0) { connected(n); return; }
    mw_net_errno_text(err, n->last_err, sizeof n->last_err);
    close(n->fd);
    n->fd = -1;
    n->addrs->idx++;
    try_next_addr(n);
}

static void try_next_addr(mw_net *n)
{
    mw_net_addrs *ad = n->addrs;
    for (; ad && ad->idx < ad->n; ad->idx++) {
        struct sockaddr *sa = (struct sockaddr *)&ad->a[ad->idx];
        int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) { mw_net_errno_text(errno, n->last_err, sizeof n->last_err); continue; }
        if (connect(fd, sa, ad->len[ad->idx]) == 0 || errno == EINPROGRESS) {
            n->fd = fd;
            ev_io_set(&n->cw, fd, EV_WRITE);
            ev_io_start(n->loop->ev, &n->cw);
            return;
        }
        mw_net_errno_text(errno, n->last_err, sizeof n->last_err);
        close(fd);
    }
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
    n->addrs->n = cnt < MW_NET_MAX_ADDRS ? cnt : MW_NET_MAX_ADDRS;
    for (int i = 0; i < n->addrs->n; i++) { n->addrs->a[i] = addrs[i]; n->addrs->len[i] = lens[i]; }
    try_next_addr(n);
}

void mw_net_init(mw_net *n, mw_loop *l, mw_net_done done)
{
    memset(n, 0, sizeof *n);
    n->loop = l;
    n->done = done;
    n->fd = -1;
    ev_io_init(&n->cw, connect_wait_cb, -1, EV_WRITE);
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
    if (ev_is_active(&n->cw)) ev_io_stop(n->loop->ev, &n->cw);
    if (n->dns_req) { mw_dns_cancel(n->dns_req); n->dns_req = NULL; }
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
