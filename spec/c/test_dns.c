/* test_dns: mw_dns on a real libev loop. Offline by construction: main()
 * points MOONWIRE_DNS_SERVERS at a closed loopback port before any resolver
 * exists, and the other tests use a silent loopback UDP socket, so no query
 * ever leaves the machine (the host's resolv.conf may name a remote server). */
#include "mwtest.h"
#include "dns.h"
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct result {
    int called;
    int status;
    int naddrs;
    struct sockaddr_storage addrs[8];
    char msg[256];
    double at;
    /* optional actions run inside the callback */
    mw_dns_req *cancel_other;
    mw_dns_req **self;
    mw_dns *free_dns;
    struct ev_loop *loop;
} result;

static void on_result(void *ud, int status, const struct sockaddr_storage *addrs,
                      const socklen_t *lens, int naddrs, const char *errmsg)
{
    result *r = ud;
    r->called++;
    r->status = status;
    r->naddrs = naddrs;
    for (int i = 0; i < naddrs && i < 8; i++) {
        r->addrs[i] = addrs[i];
        if (addrs[i].ss_family == AF_INET) MW_CHECK_EQ_INT(lens[i], sizeof(struct sockaddr_in));
        else MW_CHECK_EQ_INT(lens[i], sizeof(struct sockaddr_in6));
    }
    snprintf(r->msg, sizeof r->msg, "%s", errmsg ? errmsg : "");
    if (status) MW_CHECK(errmsg != NULL);
    else MW_CHECK(errmsg == NULL && naddrs >= 1);
    if (r->loop) r->at = ev_time();
    if (r->self) mw_dns_cancel(*r->self);   /* no-op on the running request */
    if (r->cancel_other) mw_dns_cancel(r->cancel_other);
    if (r->free_dns) mw_dns_free(r->free_dns);
}

static const char *addr_str(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
    if (ss->ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, (socklen_t)cap);
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf, (socklen_t)cap);
    return buf;
}

static unsigned addr_port(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)ss)->sin_port)
                                    : ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static int has_addr(const result *r, const char *want)
{
    char b[64];
    for (int i = 0; i < r->naddrs && i < 8; i++)
        if (!strcmp(addr_str(&r->addrs[i], b, sizeof b), want)) return 1;
    return 0;
}

/* A loopback UDP socket that reads nothing back: a DNS server that never answers.
 * Its address goes to servers as "127.0.0.1:<port>" (MOONWIRE_DNS_SERVERS form). */
static int silent_server(char servers[64])
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &l) < 0) {
        perror("silent_server");
        exit(2);
    }
    snprintf(servers, 64, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    return fd;
}

static int packets_waiting(int fd)
{
    char b[1500];
    int n = 0;
    while (recv(fd, b, sizeof b, MSG_DONTWAIT) >= 0) n++;
    return n;
}

/* Does /etc/hosts (or $CARES_HOSTS) map localhost to ::1? */
static int hosts_has_v6_localhost(void)
{
    const char *path = getenv("CARES_HOSTS");
    FILE *f = fopen(path ? path : "/etc/hosts", "r");
    char line[512];
    int yes = 0;
    while (f && fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        char *tok = strtok(line, " \t\r\n");
        if (!tok || strcmp(tok, "::1")) continue;
        while ((tok = strtok(NULL, " \t\r\n")))
            if (!strcmp(tok, "localhost")) yes = 1;
    }
    if (f) fclose(f);
    return yes;
}

static mw_dns *new_dns(struct ev_loop *loop, const char *servers)
{
    char err[256];
    mw_dns_opts o = {300, 2, servers};
    mw_dns *d = mw_dns_new_opts(loop, &o, err, sizeof err);
    if (!d) fprintf(stderr, "mw_dns_new_opts: %s\n", err);
    return d;
}

static void test_literals(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    char servers[64];
    int sfd = silent_server(servers);
    mw_dns *d = new_dns(loop, servers);
    MW_CHECK(d != NULL);
    if (!d) return;

    result r4 = {0}, r6 = {0}, rz = {0};
    MW_CHECK(mw_dns_resolve(d, "127.0.0.1", 8080, on_result, &r4) != NULL);
    MW_CHECK(mw_dns_resolve(d, "::1", 9001, on_result, &r6) != NULL);
    MW_CHECK(mw_dns_resolve(d, "fe80::1%1", 7, on_result, &rz) != NULL);
    MW_CHECK_EQ_INT(r4.called + r6.called + rz.called, 0);   /* never synchronous */
    MW_CHECK_EQ_INT(mw_dns_pending(d), 3);

    double t0 = ev_time();
    ev_run(loop, 0);
    MW_CHECK(ev_time() - t0 < 0.1);
    MW_CHECK_EQ_INT(r4.called, 1);
    MW_CHECK_EQ_INT(r4.status, 0);
    MW_CHECK_EQ_INT(r4.naddrs, 1);
    MW_CHECK_EQ_INT(r4.addrs[0].ss_family, AF_INET);
    MW_CHECK(has_addr(&r4, "127.0.0.1"));
    MW_CHECK_EQ_INT(addr_port(&r4.addrs[0]), 8080);
    MW_CHECK_EQ_INT(r6.called, 1);
    MW_CHECK_EQ_INT(r6.status, 0);
    MW_CHECK_EQ_INT(r6.naddrs, 1);
    MW_CHECK_EQ_INT(r6.addrs[0].ss_family, AF_INET6);
    MW_CHECK(has_addr(&r6, "::1"));
    MW_CHECK_EQ_INT(addr_port(&r6.addrs[0]), 9001);
    MW_CHECK_EQ_INT(rz.status, 0);
    MW_CHECK_EQ_INT(((struct sockaddr_in6 *)&rz.addrs[0])->sin6_scope_id, 1);
    MW_CHECK_EQ_INT(mw_dns_pending(d), 0);
    MW_CHECK_EQ_INT(packets_waiting(sfd), 0);   /* no query was sent */

    mw_dns_free(d);
    close(sfd);
    ev_loop_destroy(loop);
}

static void test_localhost(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    mw_dns *d = mw_dns_new(loop, NULL, 0);   /* servers from MOONWIRE_DNS_SERVERS */
    MW_CHECK(d != NULL);
    if (!d) return;
    result r = {0};
    MW_CHECK(mw_dns_resolve(d, "localhost", 1234, on_result, &r) != NULL);
    MW_CHECK_EQ_INT(r.called, 0);   /* c-ares answered from the hosts file inside the call */
    ev_run(loop, 0);
    MW_CHECK_EQ_INT(r.called, 1);
    MW_CHECK_EQ_INT(r.status, 0);
    MW_CHECK(has_addr(&r, "127.0.0.1"));
    int v6 = hosts_has_v6_localhost();
    if (v6) MW_CHECK(has_addr(&r, "::1"));
    MW_CHECK_EQ_INT(r.naddrs, v6 ? 2 : 1);
    for (int i = 0; i < r.naddrs; i++) MW_CHECK_EQ_INT(addr_port(&r.addrs[i]), 1234);
    printf("localhost ->");
    for (int i = 0; i < r.naddrs; i++) {
        char b[64];
        printf(" %s", addr_str(&r.addrs[i], b, sizeof b));
    }
    printf("%s\n", v6 ? "" : " (this /etc/hosts has no ::1 localhost)");
    mw_dns_free(d);
    ev_loop_destroy(loop);
}

/* A hosts file with both families (and duplicates) through CARES_HOSTS:
 * both come back once each, families interleaved. */
static void test_both_families(void)
{
    char path[] = "/tmp/mw_test_hostsXXXXXX";
    int fd = mkstemp(path);
    MW_CHECK(fd >= 0);
    if (fd < 0) return;
    const char *txt = "127.0.0.1 both.test\n::1 both.test\n127.0.0.2 both.test\n"
                      "127.0.0.1 both.test\n::1 both.test # dup\n";
    MW_CHECK(write(fd, txt, strlen(txt)) == (ssize_t)strlen(txt));
    close(fd);
    setenv("CARES_HOSTS", path, 1);

    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    mw_dns *d = mw_dns_new(loop, NULL, 0);
    result r = {0};
    mw_dns_resolve(d, "both.test", 80, on_result, &r);
    MW_CHECK_EQ_INT(r.called, 0);
    ev_run(loop, 0);
    MW_CHECK_EQ_INT(r.called, 1);
    MW_CHECK_EQ_INT(r.status, 0);
    MW_CHECK_EQ_INT(r.naddrs, 3);
    MW_CHECK(has_addr(&r, "::1") && has_addr(&r, "127.0.0.1") && has_addr(&r, "127.0.0.2"));
    /* interleaved: the two IPv4 addresses are not adjacent to each other */
    MW_CHECK(r.addrs[0].ss_family != r.addrs[1].ss_family);
    MW_CHECK(r.addrs[1].ss_family != r.addrs[2].ss_family || r.addrs[0].ss_family == AF_INET6);
    mw_dns_free(d);
    ev_loop_destroy(loop);
    unsetenv("CARES_HOSTS");
    unlink(path);
}

static void test_cancel(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    char servers[64];
    int sfd = silent_server(servers);
    mw_dns *d = new_dns(loop, servers);
    if (!d) return;

    /* cancelled before the loop runs: literal, hosts-file and pending query */
    result a = {0}, b = {0}, c = {0}, keep = {0};
    mw_dns_req *ra = mw_dns_resolve(d, "127.0.0.1", 1, on_result, &a);
    mw_dns_req *rb = mw_dns_resolve(d, "localhost", 1, on_result, &b);
    mw_dns_req *rc = mw_dns_resolve(d, "pending.invalid", 1, on_result, &c);
    mw_dns_resolve(d, "::1", 1, on_result, &keep);
    mw_dns_cancel(ra);
    mw_dns_cancel(rb);
    mw_dns_cancel(rc);
    mw_dns_cancel(NULL);
    MW_CHECK_EQ_INT(mw_dns_pending(d), 1);
    double t0 = ev_time();
    ev_run(loop, 0);
    /* the cancelled query is still inside c-ares but must not hold the loop */
    MW_CHECK(ev_time() - t0 < 0.2);
    MW_CHECK_EQ_INT(a.called + b.called + c.called, 0);
    MW_CHECK_EQ_INT(keep.called, 1);

    /* from inside a callback: the first cancels the second (queued in the
     * same batch) and tries to cancel itself, which is a no-op */
    result first = {0}, second = {0}, third = {0};
    mw_dns_req *r1 = mw_dns_resolve(d, "127.0.0.1", 2, on_result, &first);
    mw_dns_req *r2 = mw_dns_resolve(d, "127.0.0.2", 2, on_result, &second);
    mw_dns_resolve(d, "127.0.0.3", 2, on_result, &third);
    first.cancel_other = r2;
    first.self = &r1;
    ev_run(loop, 0);
    MW_CHECK_EQ_INT(first.called, 1);
    MW_CHECK_EQ_INT(second.called, 0);
    MW_CHECK_EQ_INT(third.called, 1);

    /* a callback cancels a pending network query */
    result lit = {0}, net = {0};
    mw_dns_req *rn = mw_dns_resolve(d, "other.invalid", 3, on_result, &net);
    mw_dns_resolve(d, "127.0.0.1", 3, on_result, &lit);
    lit.cancel_other = rn;
    t0 = ev_time();
    ev_run(loop, 0);
    MW_CHECK(ev_time() - t0 < 0.2);
    MW_CHECK_EQ_INT(lit.called, 1);
    MW_CHECK_EQ_INT(net.called, 0);

    mw_dns_free(d);   /* the orphaned queries are destroyed here (ASan checks) */
    close(sfd);
    ev_loop_destroy(loop);
}

/* A callback that frees the resolver: the rest of its batch is dropped, the
 * pending query is destroyed, nothing leaks, nothing is called. */
static void test_free_in_callback(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    char servers[64];
    int sfd = silent_server(servers);
    mw_dns *d = new_dns(loop, servers);
    if (!d) return;
    result a = {0}, b = {0}, c = {0};
    mw_dns_resolve(d, "127.0.0.1", 1, on_result, &a);
    mw_dns_resolve(d, "::1", 1, on_result, &b);
    mw_dns_resolve(d, "pending.invalid", 1, on_result, &c);
    a.free_dns = d;
    double t0 = ev_time();
    ev_run(loop, 0);
    MW_CHECK(ev_time() - t0 < 0.2);
    MW_CHECK_EQ_INT(a.called, 1);
    MW_CHECK_EQ_INT(b.called + c.called, 0);

    /* freeing with requests pending and no loop run at all */
    d = new_dns(loop, servers);
    result e = {0}, f = {0};
    mw_dns_resolve(d, "pending.invalid", 1, on_result, &e);
    mw_dns_resolve(d, "127.0.0.1", 1, on_result, &f);
    mw_dns_free(d);
    mw_dns_free(NULL);
    ev_run(loop, 0);
    MW_CHECK_EQ_INT(e.called + f.called, 0);
    close(sfd);
    ev_loop_destroy(loop);
}

/* A callback that starts another resolution: answered on a later iteration. */
static result chain_second;
static mw_dns *chain_dns;
static void on_chain(void *ud, int status, const struct sockaddr_storage *addrs,
                     const socklen_t *lens, int naddrs, const char *errmsg)
{
    on_result(ud, status, addrs, lens, naddrs, errmsg);
    mw_dns_resolve(chain_dns, "::1", 5, on_result, &chain_second);
    MW_CHECK_EQ_INT(chain_second.called, 0);
}

static void test_resolve_in_callback(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    chain_dns = mw_dns_new(loop, NULL, 0);
    result first = {0};
    mw_dns_resolve(chain_dns, "127.0.0.1", 5, on_chain, &first);
    ev_run(loop, 0);
    MW_CHECK_EQ_INT(first.called, 1);
    MW_CHECK_EQ_INT(chain_second.called, 1);
    MW_CHECK(has_addr(&chain_second, "::1"));
    mw_dns_free(chain_dns);
    ev_loop_destroy(loop);
}

static void test_bad_names(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    mw_dns *d = mw_dns_new(loop, NULL, 0);
    result e = {0}, l = {0}, z = {0};
    char longname[400];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    mw_dns_resolve(d, "", 1, on_result, &e);
    mw_dns_resolve(d, longname, 1, on_result, &l);
    mw_dns_resolve(d, "fe80::1%nosuchif0", 1, on_result, &z);
    MW_CHECK_EQ_INT(e.called + l.called + z.called, 0);
    ev_run(loop, 0);
    MW_CHECK_EQ_INT(e.status, MW_DNS_EBADNAME);
    MW_CHECK(strstr(e.msg, "empty host name") != NULL);
    MW_CHECK_EQ_INT(l.status, MW_DNS_EBADNAME);
    MW_CHECK(strstr(l.msg, "resolve aaaa") != NULL && strstr(l.msg, "...") != NULL);
    MW_CHECK(strlen(l.msg) < 250);
    MW_CHECK_EQ_INT(z.status, MW_DNS_EBADNAME);
    MW_CHECK(strstr(z.msg, "resolve fe80::1%nosuchif0: invalid host name") != NULL);
    mw_dns_free(d);

    char err[256];
    mw_dns_opts o = {0, 0, "not a server list"};
    MW_CHECK(mw_dns_new_opts(loop, &o, err, sizeof err) == NULL);
    MW_CHECK(strstr(err, "invalid server list \"not a server list\"") != NULL);
    ev_loop_destroy(loop);
}

/* A name that cannot resolve offline: servers are a closed loopback port. */
static void test_unresolvable(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    mw_dns_opts o = {200, 2, NULL};   /* servers from MOONWIRE_DNS_SERVERS */
    char err[256];
    mw_dns *d = mw_dns_new_opts(loop, &o, err, sizeof err);
    MW_CHECK(d != NULL);
    if (!d) return;
    result r = {0};
    r.loop = loop;
    mw_dns_resolve(d, "nosuch.invalid", 80, on_result, &r);
    MW_CHECK_EQ_INT(r.called, 0);
    double t0 = ev_time();
    ev_run(loop, 0);
    MW_CHECK_EQ_INT(r.called, 1);
    MW_CHECK(r.status < 0);
    MW_CHECK_EQ_INT(r.naddrs, 0);
    MW_CHECK(strncmp(r.msg, "resolve nosuch.invalid: ", 24) == 0);
    printf("unresolvable: status %d \"%s\" after %.3f s\n", r.status, r.msg, ev_time() - t0);
    mw_dns_free(d);
    ev_loop_destroy(loop);
}

struct ticker {
    ev_timer w;
    int ticks;
    double last, max_gap;
};

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop; (void)revents;
    struct ticker *t = (struct ticker *)w;
    double now = ev_time();
    if (t->ticks && now - t->last > t->max_gap) t->max_gap = now - t->last;
    t->last = now;
    t->ticks++;
}

static result *timeout_result;
static struct ticker *timeout_ticker;
static void on_timeout_result(void *ud, int status, const struct sockaddr_storage *addrs,
                              const socklen_t *lens, int naddrs, const char *errmsg)
{
    on_result(ud, status, addrs, lens, naddrs, errmsg);
    ev_timer_stop(timeout_result->loop, &timeout_ticker->w);
}

/* While a query is pending (the server never answers), a 10 ms timer keeps
 * its rate; then the query times out with a message naming the host. */
static void test_timer_keeps_rate(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    char servers[64];
    int sfd = silent_server(servers);
    mw_dns_opts o = {250, 2, servers};
    char err[256];
    mw_dns *d = mw_dns_new_opts(loop, &o, err, sizeof err);
    MW_CHECK(d != NULL);
    if (!d) return;

    struct ticker t = {0};
    ev_timer_init(&t.w, on_tick, 0.010, 0.010);
    ev_timer_start(loop, &t.w);
    result r = {0};
    r.loop = loop;
    timeout_result = &r;
    timeout_ticker = &t;
    double t0 = ev_time();
    ev_now_update(loop);
    mw_dns_resolve(d, "nosuch.invalid", 443, on_timeout_result, &r);
    ev_run(loop, 0);
    double took = r.at - t0;
    MW_CHECK_EQ_INT(r.called, 1);
    MW_CHECK_EQ_INT(r.status, MW_DNS_ETIMEOUT);
    MW_CHECK(strstr(r.msg, "resolve nosuch.invalid: timed out") == r.msg);
    MW_CHECK(took >= 0.4);                       /* pending for a while ... */
    MW_CHECK(t.ticks >= (int)(took / 0.010 * 0.6));   /* ... and the timer kept its rate */
    MW_CHECK(t.max_gap < 0.2);                   /* a blocking lookup would stall 0.25 s per try */
    MW_CHECK(packets_waiting(sfd) >= 1);         /* the query went to the loopback server */
    printf("pending %.3f s: %d ticks of 10 ms, max gap %.1f ms; \"%s\"\n", took, t.ticks,
           t.max_gap * 1000, r.msg);
    mw_dns_free(d);
    close(sfd);
    ev_loop_destroy(loop);
}

/* A pending query alone keeps the loop alive until its answer is delivered. */
static void test_pending_keeps_loop(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    char servers[64];
    int sfd = silent_server(servers);
    mw_dns_opts o = {100, 1, servers};
    mw_dns *d = mw_dns_new_opts(loop, &o, NULL, 0);
    result r = {0};
    double t0 = ev_time();
    mw_dns_resolve(d, "slow.invalid", 1, on_result, &r);
    ev_run(loop, 0);
    MW_CHECK_EQ_INT(r.called, 1);
    MW_CHECK_EQ_INT(r.status, MW_DNS_ETIMEOUT);
    MW_CHECK(ev_time() - t0 >= 0.09);
    MW_CHECK_EQ_INT(mw_dns_pending(d), 0);
    /* and once answered, nothing of the resolver is left holding the loop */
    t0 = ev_time();
    ev_run(loop, 0);
    MW_CHECK(ev_time() - t0 < 0.05);
    mw_dns_free(d);
    close(sfd);
    ev_loop_destroy(loop);
}

/* An idle resolver does not keep the loop alive. */
static void test_idle_loop_ends(void)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    mw_dns *d = mw_dns_new(loop, NULL, 0);
    double t0 = ev_time();
    ev_run(loop, 0);
    MW_CHECK(ev_time() - t0 < 0.05);
    MW_CHECK_EQ_INT(mw_dns_pending(d), 0);
    mw_dns_free(d);
    ev_loop_destroy(loop);
    MW_CHECK(strcmp(mw_strerror(MW_DNS_ENOTFOUND), "host not found") == 0);
    MW_CHECK(strcmp(mw_strerror(12345), "unknown error") == 0);
}

int main(void)
{
    /* No test may send a packet off loopback: every resolver created without
     * explicit servers gets a closed loopback port. */
    char servers[64];
    close(silent_server(servers));
    setenv("MOONWIRE_DNS_SERVERS", servers, 1);
    unsetenv("CARES_HOSTS");
    unsetenv("LOCALDOMAIN");
    unsetenv("RES_OPTIONS");

    MW_RUN(test_literals);
    MW_RUN(test_localhost);
    MW_RUN(test_both_families);
    MW_RUN(test_cancel);
    MW_RUN(test_free_in_callback);
    MW_RUN(test_resolve_in_callback);
    MW_RUN(test_bad_names);
    MW_RUN(test_unresolvable);
    MW_RUN(test_timer_keeps_rate);
    MW_RUN(test_pending_keeps_loop);
    MW_RUN(test_idle_loop_ends);
    return MW_DONE();
}
