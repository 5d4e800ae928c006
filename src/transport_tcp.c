/* transport_tcp: plain TCP reads and writes on the connection's socket.
 * Knows nothing of Lua or protocols. */
#include "conn_int.h"
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

static long tcp_read(mw_conn *c, char *p, size_t cap)
{
    for (;;) {
        ssize_t n = recv(c->fd, p, cap, 0);
        if (n >= 0) return (long)n;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return MW_IO_AGAIN;
        return MW_IO_ERROR;
    }
}

static long tcp_write(mw_conn *c, const char *p, size_t n)
{
    for (;;) {
        ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
        if (r >= 0) return (long)r;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return MW_IO_AGAIN;
        return MW_IO_ERROR;
    }
}

const mw_transport_vt mw_transport_tcp = {
    .name = "tcp",
    .open = NULL,
    .read = tcp_read,
    .write = tcp_write,
    .close = NULL,
};
