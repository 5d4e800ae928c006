/* dns: asynchronous name resolution, c-ares driven by a libev loop.
 * Knows no Lua, no connection, no protocol: a host in, addresses out. */
#include "dns.h"
#include <ares.h>
#include <arpa/inet.h>
#include <ev.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ADDRS 64
#define MAX_HOST 254   /* 253 plus an optional trailing dot */

/* Where a request is. Callbacks run only from on_deliver, never from inside
 * c-ares or mw_dns_resolve, so the user may do anything in them. */
enum { REQ_INFLIGHT, REQ_READY, REQ_BATCH, REQ_RUNNING };

struct mw_dns_req {
    mw_dns *d;
    mw_dns_req *prev, *next;     /* in d->ready or d->batch */
    int state;
    int cancelled;               /* INFLIGHT only: c-ares still owns the query */
    mw_dns_cb cb;
    void *ud;
    uint16_t port;
    int status;
    int naddrs;
    struct sockaddr_storage *addrs;
    socklen_t *lens;
    char *errmsg;
    char host[];
};

typedef struct req_list { mw_dns_req *head, *tail; } req_list;

/* One per socket c-ares has open. Always ev_unref'd: the timeout timer is
 * what keeps the loop alive while a live query is pending. */
typedef struct dns_io {
    ev_io w;
    mw_dns *d;
    struct dns_io *next;
} dns_io;

struct mw_dns {
    struct ev_loop *loop;
    ares_channel ch;
    int ch_ok;
    ev_timer tmo;                /* c-ares timeouts; active iff c-ares has queries */
    int tmo_unref;               /* 1 while tmo is ev_unref'd (no live request) */
    ev_timer deliver;            /* at 0: runs completed requests' callbacks */
    dns_io *ios;
    req_list ready, batch;       /* completed; batch is the one being delivered */
    int inflight;                /* requests inside c-ares, cancelled or not */
    int live;                    /* of those, not cancelled */
    int queued;                  /* in ready + batch */
    int delivering;              /* inside on_deliver */
    int dead;                    /* mw_dns_free was called */
};

static int map_ares(int st)
{
    switch (st) {
    case ARES_ENOTFOUND: case ARES_ENODATA: case ARES_ENONAME:
        return MW_DNS_ENOTFOUND;
    case ARES_ETIMEOUT:
        return MW_DNS_ETIMEOUT;
    case ARES_ECONNREFUSED: case ARES_ESERVFAIL: case ARES_EREFUSED: case ARES_EFORMERR:
    case ARES_EBADRESP: case ARES_ENOTIMP: case ARES_EOF:
        return MW_DNS_ESERVER;
    case ARES_ENOMEM:
        return MW_DNS_ENOMEM;
    case ARES_EBADNAME:
        return MW_DNS_EBADNAME;
    default:
        return MW_DNS_EFAIL;
    }
}

/* ---- lists ---- */

static void list_push(req_list *l, mw_dns_req *r)
{
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail) l->tail->next = r; else l->head = r;
    l->tail = r;
}

static void list_unlink(req_list *l, mw_dns_req *r)
{
    if (r->prev) r->prev->next = r->next; else l->head = r->next;
    if (r->next) r->next->prev = r->prev; else l->tail = r->prev;
    r->prev = r->next = NULL;
}

static void req_free(mw_dns_req *r)
{
    free(r->addrs);
    free(r->lens);
    free(r->errmsg);
    free(r);
}

/* ---- c-ares timeout timer and socket watchers ---- */

static void tmo_ref_sync(mw_dns *d)
{
    if (!ev_is_active(&d->tmo)) return;
    int want_unref = d->live == 0;
    if (want_unref && !d->tmo_unref) { ev_unref(d->loop); d->tmo_unref = 1; }
    else if (!want_unref && d->tmo_unref) { ev_ref(d->loop); d->tmo_unref = 0; }
}

static void tmo_stop(mw_dns *d)
{
    if (!ev_is_active(&d->tmo)) return;
    if (d->tmo_unref) { ev_ref(d->loop); d->tmo_unref = 0; }
    ev_timer_stop(d->loop, &d->tmo);
}

/* Re-arms the one timeout timer to c-ares' next deadline; called after every
 * call into c-ares. repeat stays > 0 so ev_timer_again never stops it. */
static void tmo_update(mw_dns *d)
{
    struct timeval tv, *tp = ares_timeout(d->ch, NULL, &tv);
    if (!tp) { tmo_stop(d); return; }
    double at = (double)tp->tv_sec + (double)tp->tv_usec * 1e-6;
    if (at < 0.001) at = 0.001;
    int was_active = ev_is_active(&d->tmo);
    d->tmo.repeat = at;
    ev_timer_again(d->loop, &d->tmo);
    if (!was_active) d->tmo_unref = 0;
    tmo_ref_sync(d);
}

static void on_tmo(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    mw_dns *d = w->data;
    ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    tmo_update(d);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    dns_io *io = (dns_io *)w;
    mw_dns *d = io->d;
    ares_socket_t fd = w->fd;   /* io may be freed inside ares_process_fd */
    ares_process_fd(d->ch, (revents & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (revents & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    tmo_update(d);
}

static void io_stop(mw_dns *d, dns_io *io)
{
    if (!ev_is_active(&io->w)) return;
    ev_ref(d->loop);
    ev_io_stop(d->loop, &io->w);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    mw_dns *d = data;
    dns_io **pp = &d->ios, *io;
    while ((io = *pp) && io->w.fd != fd) pp = &io->next;
    if (!readable && !writable) {
        if (io) {
            *pp = io->next;
            io_stop(d, io);
            free(io);
        }
        return;
    }
    int events = (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);
    if (!io) {
        io = calloc(1, sizeof *io);
        if (!io) return;   /* the query times out instead */
        io->d = d;
        io->next = d->ios;
        d->ios = io;
        ev_io_init(&io->w, on_io, fd, events);
    } else {
        if ((io->w.events & (EV_READ | EV_WRITE)) == events && ev_is_active(&io->w)) return;
        io_stop(d, io);
        ev_io_set(&io->w, fd, events);
    }
    ev_io_start(d->loop, &io->w);
    ev_unref(d->loop);
}

/* ---- delivery ---- */

static void schedule(mw_dns *d)
{
    if (ev_is_active(&d->deliver)) return;
    ev_timer_set(&d->deliver, 0., 0.);
    ev_timer_start(d->loop, &d->deliver);
}

static void enqueue(mw_dns *d, mw_dns_req *r)
{
    r->state = REQ_READY;
    list_push(&d->ready, r);
    d->queued++;
    schedule(d);
}

static void teardown(mw_dns *d);

static void on_deliver(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    mw_dns *d = w->data;
    /* Only what was ready when this pass began: a callback that resolves a
     * literal again gets its answer on the next iteration, not in a spin. */
    for (mw_dns_req *r = d->ready.head; r; r = r->next) r->state = REQ_BATCH;
    d->batch = d->ready;
    d->ready.head = d->ready.tail = NULL;
    d->delivering = 1;
    mw_dns_req *r;
    while (!d->dead && (r = d->batch.head)) {
        list_unlink(&d->batch, r);
        d->queued--;
        r->state = REQ_RUNNING;
        r->cb(r->ud, r->status, r->addrs, r->lens, r->naddrs, r->errmsg);
        req_free(r);
    }
    d->delivering = 0;
    if (d->dead) { free(d); return; }
    if (d->ready.head) schedule(d);
}

/* ---- results ---- */

static void set_error(mw_dns_req *r, int code, const char *detail)
{
    char host[112];
    size_t n = 0;
    for (const char *p = r->host; *p && n < 100; p++)
        host[n++] = ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) ? '?' : *p;
    if (r->host[n]) { memcpy(host + n, "...", 3); n += 3; }
    host[n] = 0;
    if (!n) memcpy(host, "\"\"", 3);
    r->status = code;
    r->naddrs = 0;
    size_t cap = strlen(host) + 200 + (detail ? strlen(detail) : 0);
    r->errmsg = malloc(cap);
    if (!r->errmsg) return;   /* the callback gets a NULL message; nothing better to do */
    if (detail)
        snprintf(r->errmsg, cap, "resolve %s: %s (%s)", host, mw_strerror(code), detail);
    else
        snprintf(r->errmsg, cap, "resolve %s: %s", host, mw_strerror(code));
}

static int alloc_addrs(mw_dns_req *r, int n)
{
    r->addrs = calloc((size_t)n, sizeof *r->addrs);
    r->lens = calloc((size_t)n, sizeof *r->lens);
    if (r->addrs && r->lens) return 0;
    free(r->addrs);
    free(r->lens);
    r->addrs = NULL;
    r->lens = NULL;
    set_error(r, MW_DNS_ENOMEM, NULL);
    return -1;
}

static int same_addr(const struct sockaddr *a, const struct sockaddr_storage *b)
{
    if (a->sa_family != b->ss_family) return 0;
    if (a->sa_family == AF_INET)
        return !memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                       &((const struct sockaddr_in *)b)->sin_addr, sizeof(struct in_addr));
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
    return !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) &&
           x->sin6_scope_id == y->sin6_scope_id;
}

/* c-ares' order (RFC 6724 sorted) within each family, families interleaved
 * starting with the first one, so a dead family costs one attempt, not all
 * (RFC 8305 section 4). */
static void take_results(mw_dns_req *r, const struct ares_addrinfo *res)
{
    const struct sockaddr *fam[2][MAX_ADDRS];
    socklen_t flen[2][MAX_ADDRS];
    int nf[2] = {0, 0}, first = -1;
    for (const struct ares_addrinfo_node *n = res ? res->nodes : NULL; n; n = n->ai_next) {
        int f;
        if (n->ai_family == AF_INET && n->ai_addrlen >= (socklen_t)sizeof(struct sockaddr_in)) f = 0;
        else if (n->ai_family == AF_INET6 && n->ai_addrlen >= (socklen_t)sizeof(struct sockaddr_in6)) f = 1;
        else continue;
        if (nf[f] == MAX_ADDRS) continue;
        int dup = 0;
        for (int i = 0; i < nf[f] && !dup; i++) {
            struct sockaddr_storage ss;
            memcpy(&ss, fam[f][i], flen[f][i]);
            dup = same_addr(n->ai_addr, &ss);
        }
        if (dup) continue;
        if (first < 0) first = f;
        fam[f][nf[f]] = n->ai_addr;
        flen[f][nf[f]++] = n->ai_addrlen;
    }
    int total = nf[0] + nf[1];
    if (total == 0) { set_error(r, MW_DNS_ENOTFOUND, NULL); return; }
    if (alloc_addrs(r, total) < 0) return;
    int idx[2] = {0, 0}, f = first, o = 0;
    while (o < total) {
        if (idx[f] < nf[f]) {
            socklen_t l = flen[f][idx[f]];
            if (l > (socklen_t)sizeof r->addrs[o]) l = (socklen_t)sizeof r->addrs[o];
            memcpy(&r->addrs[o], fam[f][idx[f]], l);
            if (f == 0) ((struct sockaddr_in *)&r->addrs[o])->sin_port = htons(r->port);
            else ((struct sockaddr_in6 *)&r->addrs[o])->sin6_port = htons(r->port);
            r->lens[o++] = f == 0 ? (socklen_t)sizeof(struct sockaddr_in)
                                  : (socklen_t)sizeof(struct sockaddr_in6);
            idx[f]++;
        }
        f ^= 1;
    }
    r->naddrs = total;
    r->status = 0;
}

static void on_ares(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    mw_dns_req *r = arg;
    mw_dns *d = r->d;
    d->inflight--;
    if (!r->cancelled) d->live--;
    if (d->dead || r->cancelled) {
        if (res) ares_freeaddrinfo(res);
        req_free(r);
        tmo_ref_sync(d);
        return;
    }
    if (status == ARES_SUCCESS) {
        take_results(r, res);
    } else {
        int code = map_ares(status);
        set_error(r, code, code == MW_DNS_ESERVER || code == MW_DNS_EFAIL ? ares_strerror(status)
                                                                          : NULL);
    }
    if (res) ares_freeaddrinfo(res);
    enqueue(d, r);
    tmo_ref_sync(d);
}

/* An IPv4 or IPv6 literal (with an optional %zone): answered without c-ares.
 * Returns 1 when host was a literal (result or error set), 0 when not. */
static int try_literal(mw_dns_req *r)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, r->host, &a4) == 1) {
        if (alloc_addrs(r, 1) < 0) return 1;
        struct sockaddr_in *s = (struct sockaddr_in *)&r->addrs[0];
        s->sin_family = AF_INET;
        s->sin_port = htons(r->port);
        s->sin_addr = a4;
        r->lens[0] = sizeof *s;
        r->naddrs = 1;
        return 1;
    }
    if (!strchr(r->host, ':')) return 0;
    char addr[INET6_ADDRSTRLEN + 1];
    const char *zone = strchr(r->host, '%');
    size_t alen = zone ? (size_t)(zone - r->host) : strlen(r->host);
    if (alen >= sizeof addr) return 0;
    memcpy(addr, r->host, alen);
    addr[alen] = 0;
    if (inet_pton(AF_INET6, addr, &a6) != 1) return 0;
    unsigned scope = 0;
    if (zone) {
        zone++;
        char *end;
        unsigned long v = strtoul(zone, &end, 10);
        if (*zone && !*end && v <= 0xffffffffUL) scope = (unsigned)v;
        else if (!(scope = if_nametoindex(zone))) {
            set_error(r, MW_DNS_EBADNAME, "unknown network interface in IPv6 zone");
            return 1;
        }
    }
    if (alloc_addrs(r, 1) < 0) return 1;
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)&r->addrs[0];
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(r->port);
    s->sin6_addr = a6;
    s->sin6_scope_id = scope;
    r->lens[0] = sizeof *s;
    r->naddrs = 1;
    return 1;
}

mw_dns_req *mw_dns_resolve(mw_dns *d, const char *host, uint16_t port, mw_dns_cb cb, void *ud)
{
    if (!d || d->dead) return NULL;   /* freed from inside a callback */
    if (!host) host = "";
    size_t hl = strlen(host);
    mw_dns_req *r = calloc(1, sizeof *r + hl + 1);
    if (!r) return NULL;
    memcpy(r->host, host, hl + 1);
    r->d = d;
    r->cb = cb;
    r->ud = ud;
    r->port = port;

    if (hl == 0) {
        set_error(r, MW_DNS_EBADNAME, "empty host name");
    } else if (hl > MAX_HOST) {
        set_error(r, MW_DNS_EBADNAME, "longer than 253 bytes");
    } else if (!try_literal(r)) {
        struct ares_addrinfo_hints hints;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = ARES_AI_ENVHOSTS;   /* honour CARES_HOSTS when set */
        r->state = REQ_INFLIGHT;
        d->inflight++;
        d->live++;
        /* may complete synchronously (hosts file): on_ares only queues */
        ares_getaddrinfo(d->ch, host, NULL, &hints, on_ares, r);
        tmo_update(d);
        return r;
    }
    enqueue(d, r);
    return r;
}

void mw_dns_cancel(mw_dns_req *r)
{
    if (!r) return;
    mw_dns *d = r->d;
    switch (r->state) {
    case REQ_INFLIGHT:
        if (!r->cancelled) {
            r->cancelled = 1;
            d->live--;
            tmo_ref_sync(d);   /* the orphaned query must not hold the loop */
        }
        return;
    case REQ_READY:
        list_unlink(&d->ready, r);
        d->queued--;
        req_free(r);
        if (!d->ready.head) ev_timer_stop(d->loop, &d->deliver);
        return;
    case REQ_BATCH:
        list_unlink(&d->batch, r);
        d->queued--;
        req_free(r);
        return;
    default:   /* REQ_RUNNING: freed when its callback returns */
        return;
    }
}

int mw_dns_pending(const mw_dns *d)
{
    return d ? d->live + d->queued : 0;
}

/* ---- lifetime ---- */

mw_dns *mw_dns_new_opts(struct ev_loop *loop, const mw_dns_opts *opts, char *err, size_t errcap)
{
    char dummy[1];
    if (!err || !errcap) { err = dummy; errcap = sizeof dummy; }
    err[0] = 0;
    mw_dns *d = calloc(1, sizeof *d);
    if (!d) { snprintf(err, errcap, "DNS resolver: out of memory"); return NULL; }
    d->loop = loop;
    ev_timer_init(&d->tmo, on_tmo, 0., 0.);
    d->tmo.data = d;
    ev_timer_init(&d->deliver, on_deliver, 0., 0.);
    d->deliver.data = d;

    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errcap, "DNS resolver: %s", ares_strerror(rc));
        free(d);
        return NULL;
    }
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.timeout = opts && opts->timeout_ms > 0 ? opts->timeout_ms : 2000;
    o.tries = opts && opts->tries > 0 ? opts->tries : 2;
    o.sock_state_cb = on_sock_state;
    o.sock_state_cb_data = d;
    rc = ares_init_options(&d->ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errcap, "DNS resolver: %s", ares_strerror(rc));
        ares_library_cleanup();
        free(d);
        return NULL;
    }
    d->ch_ok = 1;

    const char *servers = opts ? opts->servers : NULL, *origin = "servers";
    if (!servers) {
        servers = getenv("MOONWIRE_DNS_SERVERS");
        origin = "MOONWIRE_DNS_SERVERS";
        if (servers && !*servers) servers = NULL;
    }
    if (servers) {
        rc = ares_set_servers_ports_csv(d->ch, servers);
        if (rc != ARES_SUCCESS) {
            snprintf(err, errcap, "DNS resolver: invalid server list \"%.100s\" (%s): %s",
                     servers, origin, ares_strerror(rc));
            mw_dns_free(d);
            return NULL;
        }
    }
    return d;
}

mw_dns *mw_dns_new(struct ev_loop *loop, char *err, size_t errcap)
{
    return mw_dns_new_opts(loop, NULL, err, errcap);
}

static void free_list(mw_dns *d, req_list *l)
{
    mw_dns_req *r;
    while ((r = l->head)) {
        list_unlink(l, r);
        d->queued--;
        req_free(r);
    }
}

/* Everything but the struct itself, which on_deliver may still be using. */
static void teardown(mw_dns *d)
{
    ev_timer_stop(d->loop, &d->deliver);
    tmo_stop(d);
    if (d->ch_ok) {
        /* ends each query with ARES_EDESTRUCTION (on_ares frees it, as d->dead
         * is set) and closes the sockets through on_sock_state */
        ares_destroy(d->ch);
        d->ch_ok = 0;
        ares_library_cleanup();
    }
    while (d->ios) {
        dns_io *io = d->ios;
        d->ios = io->next;
        io_stop(d, io);
        free(io);
    }
    free_list(d, &d->ready);
    free_list(d, &d->batch);
}

void mw_dns_free(mw_dns *d)
{
    if (!d || d->dead) return;
    d->dead = 1;
    teardown(d);
    if (!d->delivering) free(d);
}
