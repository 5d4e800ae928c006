/* wslay_recv.c: a peer for the receive cases: wslay (C, Debian's libwslay) reads N messages
 * from the bench server's /flood through its event API, counting them in its message
 * callback (no Lua). The upgrade is written by hand (wslay does frames only).
 *   wslay_recv recv URL N SIZE OP      (the URL's port and path are used; ws only)
 * Prints "RESULT msgs=N bytes=B secs=T" once the N-th message has arrived. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wslay/wslay.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what) { perror(what); exit(1); }

struct st {
    int fd;
    char pre[4096];          /* bytes read past the response head */
    size_t npre, offpre;
    uint64_t want, got, bytes;
    double t0;
};

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    struct st *s = ud;
    if (s->offpre < s->npre) {
        size_t k = s->npre - s->offpre < len ? s->npre - s->offpre : len;
        memcpy(buf, s->pre + s->offpre, k);
        s->offpre += k;
        return (ssize_t)k;
    }
    ssize_t r;
    do r = read(s->fd, buf, len); while (r < 0 && errno == EINTR);
    if (r <= 0) { wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE); return -1; }
    return r;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)ctx; (void)flags;
    struct st *s = ud;
    ssize_t r;
    do r = write(s->fd, data, len); while (r < 0 && errno == EINTR);
    return r;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
    (void)ctx; (void)ud;
    for (size_t i = 0; i < len; i++) buf[i] = (uint8_t)rand();
    return 0;
}

static void msg_cb(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a, void *ud)
{
    (void)ctx;
    struct st *s = ud;
    if (a->opcode != WSLAY_TEXT_FRAME && a->opcode != WSLAY_BINARY_FRAME) return;
    s->got++;
    s->bytes += a->msg_length;
}

int main(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[1], "recv") != 0) {
        fprintf(stderr, "usage: wslay_recv recv URL N [SIZE OP]\n");
        return 2;
    }
    const char *url = argv[2], *hp = strstr(url, "://");
    if (!hp || strncmp(url, "ws:", 3) != 0) { fprintf(stderr, "wslay_recv: ws:// URLs only\n"); return 2; }
    hp += 3;
    const char *colon = strchr(hp, ':'), *path = strchr(hp, '/');
    if (!colon || !path) { fprintf(stderr, "wslay_recv: URL needs host:port/path\n"); return 2; }
    int port = atoi(colon + 1);
    static struct st s;
    s.want = strtoull(argv[3], NULL, 10);

    s.fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s.fd < 0) die("socket");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(s.fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
    int one = 1;
    setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n", path, port);
    if (write(s.fd, req, (size_t)n) != n) die("write upgrade");
    size_t len = 0;
    for (;;) {
        ssize_t r = read(s.fd, s.pre + len, sizeof s.pre - len);
        if (r <= 0) die("read handshake");
        len += (size_t)r;
        char *end = memmem(s.pre, len, "\r\n\r\n", 4);
        if (end) {
            if (strncmp(s.pre, "HTTP/1.1 101", 12) != 0) { fprintf(stderr, "wslay_recv: refused\n"); return 1; }
            size_t head = (size_t)(end - s.pre) + 4;
            memmove(s.pre, s.pre + head, len - head);
            s.npre = len - head;
            break;
        }
        if (len == sizeof s.pre) { fprintf(stderr, "wslay_recv: handshake too long\n"); return 1; }
    }

    struct wslay_event_callbacks cb = {recv_cb, send_cb, genmask_cb, NULL, NULL, NULL, msg_cb};
    wslay_event_context_ptr ctx;
    if (wslay_event_context_client_init(&ctx, &cb, &s) != 0) { fprintf(stderr, "wslay_recv: init failed\n"); return 1; }
    wslay_event_config_set_max_recv_msg_length(ctx, 1u << 30);
    s.t0 = now();
    while (s.got < s.want) {
        if (wslay_event_recv(ctx) != 0) { fprintf(stderr, "wslay_recv: receive failed after %llu\n", (unsigned long long)s.got); return 1; }
    }
    double t = now() - s.t0;
    printf("RESULT msgs=%llu bytes=%llu secs=%.6f\n", (unsigned long long)s.got, (unsigned long long)s.bytes, t);
    fflush(stdout);
    struct wslay_event_msg bye = {WSLAY_CONNECTION_CLOSE, (const uint8_t *)"\x03\xe8", 2};
    wslay_event_queue_msg(ctx, &bye);
    wslay_event_send(ctx);
    wslay_event_context_free(ctx);
    close(s.fd);
    return 0;
}
