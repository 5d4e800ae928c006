/* net: the socket under a connection: resolve, connect with address
 * fallback, socket options, reads and writes, addresses. Knows nothing of
 * connections, stages, protocols or Lua: it reports through one callback. */
#ifndef MW_NET_H
#define MW_NET_H
#include <sys/socket.h>
#include "loop.h"

#define MW_NET_MAX_ADDRS 16

typedef struct mw_net mw_net;

/* The connect finished: err 0 (the socket is up, n->fd is set), or an
 * MW_E_* code (CONNECT_FAIL, DNS_FAIL) with a message naming the target. */
typedef void (*mw_net_done)(mw_net *n, int err, const char *msg);

/* Addresses being tried while connecting (RFC 8305: the next one starts
 * `stagger` seconds after the last while earlier ones are still pending,
 * or at once when one fails; the first to connect wins, the others are
 * closed); freed once connected. */
typedef struct mw_net_addrs {
    struct sockaddr_storage a[MW_NET_MAX_ADDRS];
    socklen_t len[MW_NET_MAX_ADDRS];
    int fd[MW_NET_MAX_ADDRS];
    ev_io w[MW_NET_MAX_ADDRS];
    ev_timer stagger;
    int n, idx;                /* idx: the next address to start */
    int live;                  /* attempts in flight */
} mw_net_addrs;

/* How a connect goes (the connection's options, read at each connect). */
typedef struct mw_net_opts {
    double stagger;            /* seconds between attempts (Happy Eyeballs); <= 0: 0.25 */
    struct sockaddr_storage bind; /* the source address (bindto); family 0: none */
    socklen_t bind_len;
} mw_net_opts;

struct mw_net {
    mw_loop *loop;
    mw_net_done done;
    const char *what;          /* the target as messages name it (borrowed: the URL) */
    int fd;                    /* -1 when none */
    int up;                    /* connected: fd may be read and written */
    mw_net_opts opt;
    struct mw_dns_req *dns_req;
    mw_net_addrs *addrs;       /* while connecting */
    char last_err[128];
    struct sockaddr_storage peer;
    socklen_t peerlen;         /* 0 until a connect succeeded */
};

void mw_net_init(mw_net *n, mw_loop *l, mw_net_done done);
/* Resolve host, then connect to each address in turn; done follows from
 * the loop, never before this returns. Returns 0, or an MW_E_* code with
 * a message in msg[0..cap) when it could not even start (done will not be
 * called). what is borrowed until done. */
int mw_net_connect(mw_net *n, const char *what, const char *host, int port, char *msg, size_t cap);
/* Parse a source address for mw_net_opts.bind: "127.0.0.2", "127.0.0.2:0",
 * "[::1]:40000", "::1". 0, or -1 with the reason in err. */
int mw_net_parse_bind(const char *s, struct sockaddr_storage *out, socklen_t *len, char *err, size_t cap);
/* Stop a connect under way and close the socket; no callback. */
void mw_net_close(mw_net *n);
/* > 0 bytes, 0 orderly EOF, MW_IO_AGAIN, MW_IO_ERROR (errno set). */
long mw_net_read(mw_net *n, char *p, size_t cap);
long mw_net_write(mw_net *n, const char *p, size_t len);
/* Address strings of the peer and the local end; 0, or -1 when not connected. */
int mw_net_remote(const mw_net *n, char *ip, size_t cap, int *port);
int mw_net_local(const mw_net *n, char *ip, size_t cap, int *port);
/* 4 or 6 for the last peer reached, 0 none. */
int mw_net_family(const mw_net *n);
/* "Connection refused" -> "connection refused": messages read as one sentence. */
void mw_net_errno_text(int e, char *buf, size_t cap);
#endif
