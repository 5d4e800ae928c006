/* dns: asynchronous name resolution, c-ares driven by a libev loop.
 * Knows no Lua, no connection, no protocol: a host in, addresses out. */
#ifndef MW_DNS_H
#define MW_DNS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "err.h"   /* the status codes: MW_DNS_E*, texts by mw_strerror */

struct ev_loop;

typedef struct mw_dns mw_dns;
typedef struct mw_dns_req mw_dns_req;

/* Called once per request from the loop, never from inside mw_dns_resolve.
 * status 0: addrs[0..naddrs) (naddrs >= 1) with their lengths, each carrying
 * the requested port, duplicates removed, families interleaved starting with
 * the resolver's preferred one (e.g. ::1, 127.0.0.1); try them in turn.
 * status < 0: an MW_DNS_* code, naddrs 0, and errmsg names host and cause,
 * e.g. "resolve nosuch.invalid: host not found". errmsg is NULL on success.
 * The arrays and errmsg are valid only during the call. The request handle
 * is freed when the callback returns. The callback may resolve, cancel other
 * requests, or free the resolver. */
typedef void (*mw_dns_cb)(void *ud, int status, const struct sockaddr_storage *addrs,
                          const socklen_t *addrlens, int naddrs, const char *errmsg);

typedef struct mw_dns_opts {
    int timeout_ms;        /* per-try query timeout; <= 0: 2000 */
    int tries;             /* tries per server; <= 0: 2 */
    const char *servers;   /* c-ares CSV, e.g. "127.0.0.1:5353,[::1]:53"; NULL: see below */
} mw_dns_opts;

/* Creates a resolver on loop. Servers come from opts->servers, else from the
 * environment variable MOONWIRE_DNS_SERVERS (same CSV syntax; tests set it to
 * a loopback port so no query ever leaves the machine), else from
 * /etc/resolv.conf. Hosts-file lookups read /etc/hosts, or the file named by
 * CARES_HOSTS when that is set. Returns NULL with a message in err on failure
 * (bad server list, c-ares init failure, out of memory). opts may be NULL. */
mw_dns *mw_dns_new_opts(struct ev_loop *loop, const mw_dns_opts *opts, char *err, size_t errcap);
mw_dns *mw_dns_new(struct ev_loop *loop, char *err, size_t errcap);

/* Cancels every pending request without calling its callback, stops all
 * watchers and frees everything. Safe from inside a callback (the rest of
 * that callback batch is dropped). NULL is fine. */
void mw_dns_free(mw_dns *d);

/* Starts resolving host (a name, or an IPv4/IPv6 literal without brackets,
 * which resolves without any query) for port. Any failure, even an
 * immediate one, is reported through cb from the loop. Returns the request,
 * valid until its callback returns or it is cancelled; NULL (cb will not be
 * called) when out of memory or when d was freed from inside a callback. */
mw_dns_req *mw_dns_resolve(mw_dns *d, const char *host, uint16_t port, mw_dns_cb cb, void *ud);

/* Cancels a request: its callback will not be called. Safe from inside any
 * callback of this resolver; a no-op on the request whose callback is
 * running. NULL is fine. */
void mw_dns_cancel(mw_dns_req *r);

/* Number of requests not yet delivered or cancelled. */
int mw_dns_pending(const mw_dns *d);

#endif
