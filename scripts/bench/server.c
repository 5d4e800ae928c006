/* server.c: the benchmark's WebSocket server (RFC 6455 server side, epoll, one thread).
 * Used only by scripts/bench; it must never be the bottleneck, so it does as little as a
 * server can: floods are pre-framed once and written again and again.
 *
 * Modes by request path:
 *   /flood?n=N&size=S[&op=text|binary]  N messages of S bytes, then close 1000
 *   /sink?n=N                           read N messages, then answer a text "done"
 *   /echo                               send every data frame back (unmasked)
 *   /idle                               handshake, then nothing
 *   /flood?n=N&op=json                  N of the 200-byte JSON messages (--json FILE, line i % lines)
 *   /sink?n=N&op=json                   as /sink, every message checked against the JSON lines
 *   /zidle                              the memory case: sends one 1,207-byte message (six JSON
 *                                       lines as an array), waits for it back, checks it, sends
 *                                       "ok", then nothing
 * permessage-deflate (RFC 7692, zlib) is accepted only when the query says pmd=1: every
 * other case ignores an offer (moonwire offers by default) and stays uncompressed. The
 * answer follows the offer: server_no_context_takeover and server_max_window_bits=N are
 * honoured and echoed, client_no_context_takeover echoed; the server inflates with a
 * 32 KiB window, whatever the client compresses with. A compressed flood is compressed once
 * (per count, window and takeover rule) and the same frames go to every client: with the
 * same messages in the same order the stream is the same.
 * tag=T in the query: when that connection closes, a line goes to --stats FILE:
 *   tag=T in=B out=B msgs=N zmsgs=N bad=N ext="answer" offer="offer"
 * (bytes after the handshake each way, messages sunk or flooded, how many compressed, how
 * many failed the JSON check).
 * Options: --port P (default 0: any; the port is printed as "PORT p" on stdout),
 *          --tls CERT KEY (needs -DBENCH_TLS and -lssl -lcrypto: OpenSSL, AES-NI),
 *          --json FILE, --stats FILE.
 * The server runs until SIGINT/SIGTERM. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#ifdef BENCH_TLS
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

enum { M_HANDSHAKE, M_FLOOD, M_SINK, M_ECHO, M_IDLE, M_ZIDLE, M_CLOSING };
enum { IO_AGAIN = -1, IO_ERR = -2 };

typedef struct conn {
    int fd;
    int mode;
    int tls_done;
    char *in;                 /* bytes read, not yet parsed */
    size_t inlen, incap;
    char *out;                /* own bytes to write (handshake, echo, done, close) */
    size_t outoff, outlen, outcap;
    const char *flood;        /* shared pre-framed buffer: whole frames */
    size_t flood_len;
    uint64_t flood_total, flood_sent;   /* bytes */
    uint64_t sink_n, sink_got;
    int close_after_out;      /* close the socket once out is written */
    int want_out;             /* EPOLLOUT armed */
    /* permessage-deflate and the JSON cases */
    int pmd;                  /* agreed */
    int s_wbits, s_nocontext; /* how we compress (agreed) */
    int check_json;           /* sink: every message must be the next JSON line */
    int zmsg;                 /* the message being received is compressed (RSV1) */
    z_stream *inf;            /* sink: the client's stream, made at its first message */
    char *msg;                /* sink with a check or compression: the message so far */
    size_t msglen, msgcap;
    uint64_t zmsgs, bad;
    uint64_t rbytes, wbytes;  /* after the handshake */
    char tag[64];
    char ext[128];            /* our answer, "" when none */
    char offer[256];
#ifdef BENCH_TLS
    SSL *ssl;
#endif
} conn;

static int ep;
static volatile sig_atomic_t stop;
#ifdef BENCH_TLS
static SSL_CTX *tls_ctx;
#endif

/* One pre-framed flood buffer per (size, opcode) in use, kept for the process. */
typedef struct flood_buf { size_t size; int op; char *buf; size_t len; struct flood_buf *next; } flood_buf;
static flood_buf *floods;

static void die(const char *what) { perror(what); exit(1); }

/* ---- SHA-1 and Base64 for Sec-WebSocket-Accept: libcrypto's, not our own ---- */

static void sha1(const unsigned char *msg, size_t len, unsigned char out[20]) { SHA1(msg, len, out); }

static void base64(const unsigned char *p, size_t n, char *out) { EVP_EncodeBlock((unsigned char *)out, p, (int)n); }

/* ---- framing ---- */

static size_t frame_header(unsigned char *h, int op, uint64_t len)
{
    h[0] = (unsigned char)(0x80 | op);
    if (len < 126) { h[1] = (unsigned char)len; return 2; }
    if (len <= 0xffff) { h[1] = 126; h[2] = (unsigned char)(len >> 8); h[3] = (unsigned char)len; return 4; }
    h[1] = 127;
    for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)(len >> (56 - 8 * i));
    return 10;
}

/* Whole frames of `size` bytes, about 4 MiB in all (at least one frame): written
 * again and again, so the server's cost per message is a share of one write(). */
static flood_buf *flood_for(size_t size, int op)
{
    for (flood_buf *f = floods; f; f = f->next)
        if (f->size == size && f->op == op) return f;
    unsigned char h[10];
    size_t hl = frame_header(h, op, size);
    size_t flen = hl + size;
    size_t count = (4u << 20) / flen;
    if (count == 0) count = 1;
    flood_buf *f = calloc(1, sizeof *f);
    if (!f) die("calloc");
    f->size = size;
    f->op = op;
    f->len = count * flen;
    f->buf = malloc(f->len);
    if (!f->buf) die("malloc");
    for (size_t i = 0; i < count; i++) {
        memcpy(f->buf + i * flen, h, hl);
        /* printable ASCII: valid UTF-8 for text frames */
        for (size_t j = 0; j < size; j++) f->buf[i * flen + hl + j] = (char)('a' + (j % 26));
    }
    f->next = floods;
    floods = f;
    return f;
}

/* JSON, permessage-deflate, stats (uses conn, frame_header, die; out_append comes later) */
#include "server_pmd.c"

/* ---- I/O (plain or TLS) ---- */

static long io_read(conn *c, char *p, size_t n)
{
#ifdef BENCH_TLS
    if (c->ssl) {
        int r = SSL_read(c->ssl, p, (int)(n > 1u << 30 ? 1u << 30 : n));
        if (r > 0) return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return IO_AGAIN;
        if (e == SSL_ERROR_ZERO_RETURN) return 0;
        return IO_ERR;
    }
#endif
    ssize_t r = read(c->fd, p, n);
    if (r >= 0) return r;
    return errno == EAGAIN || errno == EINTR ? IO_AGAIN : IO_ERR;
}

static long io_write(conn *c, const char *p, size_t n)
{
#ifdef BENCH_TLS
    if (c->ssl) {
        int r = SSL_write(c->ssl, p, (int)(n > 1u << 30 ? 1u << 30 : n));
        if (r > 0) return r;
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return IO_AGAIN;
        return IO_ERR;
    }
#endif
    ssize_t r = send(c->fd, p, n, MSG_NOSIGNAL);
    if (r >= 0) return r;
    return errno == EAGAIN || errno == EINTR ? IO_AGAIN : IO_ERR;
}

static void conn_close(conn *c)
{
    write_stats(c);
    drop_inflater(c);
    free(c->msg);
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
#ifdef BENCH_TLS
    if (c->ssl) SSL_free(c->ssl);
#endif
    close(c->fd);
    free(c->in);
    free(c->out);
    free(c);
}

static void arm(conn *c, int want_out)
{
    if (c->want_out == want_out) return;
    c->want_out = want_out;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void out_append(conn *c, const void *p, size_t n)
{
    if (c->outoff && c->outoff == c->outlen) c->outoff = c->outlen = 0;
    if (c->outlen + n > c->outcap) {
        size_t cap = c->outcap ? c->outcap : 256;
        while (cap < c->outlen + n) cap *= 2;
        c->out = realloc(c->out, cap);
        if (!c->out) die("realloc");
        c->outcap = cap;
    }
    memcpy(c->out + c->outlen, p, n);
    c->outlen += n;
}

static void send_close(conn *c)
{
    static const unsigned char fr[4] = {0x88, 2, 0x03, 0xe8};
    out_append(c, fr, sizeof fr);
    c->mode = M_CLOSING;
}

/* Write what is pending: own bytes first, then the flood. Returns -1 when closed. */
static int flush_out(conn *c)
{
    for (;;) {
        const char *p;
        size_t n;
        int own = c->outoff < c->outlen;
        if (own) {
            p = c->out + c->outoff;
            n = c->outlen - c->outoff;
        } else if (c->mode == M_FLOOD && c->flood_sent < c->flood_total) {
            size_t pos = (size_t)(c->flood_sent % c->flood_len);
            n = c->flood_len - pos;
            if (n > c->flood_total - c->flood_sent) n = (size_t)(c->flood_total - c->flood_sent);
            p = c->flood + pos;
        } else {
            break;
        }
        long r = io_write(c, p, n);
        if (r == IO_AGAIN) { arm(c, 1); return 0; }
        if (r < 0) { conn_close(c); return -1; }
        c->wbytes += (uint64_t)r;
        if (own) c->outoff += (size_t)r;
        else {
            c->flood_sent += (uint64_t)r;
            if (c->flood_sent == c->flood_total) send_close(c);
        }
    }
    c->outoff = c->outlen = 0;
    if (c->close_after_out) { conn_close(c); return -1; }
    arm(c, 0);
    return 0;
}

/* ---- handshake ---- */

static uint64_t query_num(const char *path, const char *key, uint64_t dflt)
{
    const char *q = strchr(path, '?');
    size_t kl = strlen(key);
    while (q) {
        q++;
        if (strncmp(q, key, kl) == 0 && q[kl] == '=') return strtoull(q + kl + 1, NULL, 10);
        q = strchr(q, '&');
    }
    return dflt;
}

static int query_has(const char *path, const char *kv)
{
    const char *q = strchr(path, '?');
    size_t l = strlen(kv);
    while (q) {
        q++;
        if (strncmp(q, kv, l) == 0 && (q[l] == '&' || q[l] == 0)) return 1;
        q = strchr(q, '&');
    }
    return 0;
}

static void query_str(const char *path, const char *key, char *out, size_t cap)
{
    const char *q = strchr(path, '?');
    size_t kl = strlen(key);
    out[0] = 0;
    while (q) {
        q++;
        if (strncmp(q, key, kl) == 0 && q[kl] == '=') {
            size_t n = strcspn(q + kl + 1, "&");
            if (n >= cap) n = cap - 1;
            memcpy(out, q + kl + 1, n);
            out[n] = 0;
            return;
        }
        q = strchr(q, '&');
    }
}

/* Every Sec-WebSocket-Extensions field of the request, comma-joined, into c->offer. */
static void collect_offer(conn *c)
{
    size_t l = 0;
    for (char *line = strstr(c->in, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Sec-WebSocket-Extensions:", 25) != 0) continue;
        const char *v = line + 27;
        size_t n = strcspn(v, "\r\n");
        if (l + n + 3 >= sizeof c->offer) break;
        if (l) { memcpy(c->offer + l, ", ", 2); l += 2; }
        memcpy(c->offer + l, v, n);
        l += n;
    }
    c->offer[l] = 0;
    char *t = trim(c->offer);
    memmove(c->offer, t, strlen(t) + 1);
}

static void start_flood(conn *c, const char *path)
{
    uint64_t n = query_num(path, "n", 1000), size = query_num(path, "size", 16);
    const char *op = strstr(path, "op=");
    c->sink_n = n;
    c->mode = M_FLOOD;
    if (op && strncmp(op + 3, "json", 4) == 0) {
        jflood *f = jflood_for(n, c->pmd ? c->s_wbits : 0, c->s_nocontext);
        c->flood = f->g.p;
        c->flood_len = c->flood_total = f->g.len;
    } else {
        int opcode = op ? (strncmp(op + 3, "binary", 6) == 0 ? 2 : 1) : (size >= 65536 ? 2 : 1);
        flood_buf *f = flood_for((size_t)size, opcode);
        c->flood = f->buf;
        c->flood_len = f->len;
        c->flood_total = n * (uint64_t)(size + (size < 126 ? 2 : size <= 0xffff ? 4 : 10));
    }
    c->flood_sent = 0;
    if (n == 0) send_close(c);
}

static int handshake(conn *c)
{
    char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
    if (!end) return c->inlen > 16384 ? -1 : 0;
    size_t headlen = (size_t)(end - c->in) + 4;
    *end = 0;
    char path[1024];
    if (sscanf(c->in, "GET %1023s HTTP/1.1", path) != 1) return -1;
    const char *k = NULL;
    for (char *line = strstr(c->in, "\r\n"); line; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "Sec-WebSocket-Key:", 18) == 0) { k = line + 20; break; }
    }
    if (!k) return -1;
    while (*k == ' ') k++;
    size_t kl = strcspn(k, "\r\n ");
    char buf[128];
    if (kl > 60) return -1;
    memcpy(buf, k, kl);
    memcpy(buf + kl, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    unsigned char dig[20];
    sha1((unsigned char *)buf, kl + 36, dig);
    char acc[32];
    base64(dig, 20, acc);
    query_str(path, "tag", c->tag, sizeof c->tag);
    collect_offer(c);
    /* Only a case that asks for it compresses: every other one ignores the offer. */
    if (query_has(path, "pmd=1")) negotiate(c);
    int json = query_has(path, "op=json") || strncmp(path, "/zidle", 6) == 0;
    if (json && !jcount) return -1;   /* started without --json */
    char resp[512];
    int rl = snprintf(resp, sizeof resp,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s%s\r\n", acc,
                      c->pmd ? "Sec-WebSocket-Extensions: " : "", c->ext, c->pmd ? "\r\n" : "");
    out_append(c, resp, (size_t)rl);
    c->wbytes -= (uint64_t)rl;
    c->rbytes -= (uint64_t)headlen;
    if (strncmp(path, "/flood", 6) == 0) {
        start_flood(c, path);
    } else if (strncmp(path, "/sink", 5) == 0) {
        c->sink_n = query_num(path, "n", 1000);
        c->check_json = json;
        c->mode = M_SINK;
    } else if (strncmp(path, "/echo", 5) == 0) {
        c->mode = M_ECHO;
    } else if (strncmp(path, "/zidle", 6) == 0) {
        const gbuf *g = big_frame(c->pmd ? c->s_wbits : 0);
        out_append(c, g->p, g->len);
        c->mode = M_ZIDLE;
    } else {
        c->mode = M_IDLE;
    }
    memmove(c->in, c->in + headlen, c->inlen - headlen);
    c->inlen -= headlen;
    if (c->mode == M_IDLE && c->inlen == 0) { free(c->in); c->in = NULL; c->incap = 0; }
    return 1;
}

/* ---- frames from the client ---- */

/* Parse whole frames in c->in. Returns -1 when the connection was closed. */
static int frames(conn *c)
{
    size_t pos = 0;
    while (c->inlen - pos >= 2) {
        unsigned char *b = (unsigned char *)c->in + pos;
        size_t avail = c->inlen - pos;
        int fin = b[0] >> 7, op = b[0] & 15, masked = b[1] >> 7;
        uint64_t len = b[1] & 127;
        size_t hl = 2;
        if (len == 126) { if (avail < 4) break; len = (uint64_t)b[2] << 8 | b[3]; hl = 4; }
        else if (len == 127) {
            if (avail < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = len << 8 | b[2 + i];
            hl = 10;
        }
        size_t mk = hl;
        if (masked) hl += 4;
        if (avail < hl || avail - hl < len) break;
        unsigned char *payload = b + hl;
        if (op == 8) {              /* close: answer (unless we began), then drop */
            if (c->mode != M_CLOSING) {
                static const unsigned char fr[4] = {0x88, 2, 0x03, 0xe8};
                out_append(c, fr, sizeof fr);
            }
            c->close_after_out = 1;
            c->inlen = 0;
            return flush_out(c);
        }
        if (op == 9) {              /* ping: pong */
            unsigned char h[10];
            if (masked) for (uint64_t i = 0; i < len; i++) payload[i] ^= b[mk + (i & 3)];
            size_t n = frame_header(h, 10, len);
            out_append(c, h, n);
            out_append(c, payload, (size_t)len);
        } else if (op == 0 || op == 1 || op == 2) {
            if ((c->mode == M_SINK && (c->check_json || c->pmd)) || c->mode == M_ZIDLE) {
                if (masked) for (uint64_t i = 0; i < len; i++) payload[i] ^= b[mk + (i & 3)];
                if (message_part(c, op, b[0] & 0x40, fin, payload, (size_t)len) < 0) {
                    conn_close(c);
                    return -1;
                }
            } else if (c->mode == M_SINK) {
                if (fin && ++c->sink_got == c->sink_n) {
                    static const unsigned char done[6] = {0x81, 4, 'd', 'o', 'n', 'e'};
                    out_append(c, done, sizeof done);
                }
            } else if (c->mode == M_ECHO) {
                if (masked) for (uint64_t i = 0; i < len; i++) payload[i] ^= b[mk + (i & 3)];
                unsigned char h[10];
                size_t n = frame_header(h, op, len);
                h[0] = (unsigned char)((fin ? 0x80 : 0) | op);
                out_append(c, h, n);
                out_append(c, payload, (size_t)len);
            }
        }
        pos += hl + (size_t)len;
    }
    if (pos) {
        memmove(c->in, c->in + pos, c->inlen - pos);
        c->inlen -= pos;
    }
    return 0;
}

static void on_readable(conn *c)
{
    for (;;) {
        if (c->incap - c->inlen < 65536) {
            size_t cap = c->incap ? c->incap * 2 : 65536;
            while (cap - c->inlen < 65536) cap *= 2;
            c->in = realloc(c->in, cap);
            if (!c->in) die("realloc");
            c->incap = cap;
        }
        long r = io_read(c, c->in + c->inlen, c->incap - c->inlen);
        if (r == IO_AGAIN) break;
        if (r <= 0) { conn_close(c); return; }
        c->inlen += (size_t)r;
        c->rbytes += (uint64_t)r;
        if (c->mode == M_HANDSHAKE) {
            int h = handshake(c);
            if (h < 0) { conn_close(c); return; }
            if (h == 0) continue;
        }
        if (frames(c) < 0) return;
    }
    /* an idle connection keeps no buffer */
    if (c->mode == M_IDLE && c->inlen == 0 && c->in) { free(c->in); c->in = NULL; c->incap = 0; }
    flush_out(c);
}

static void on_event(conn *c, uint32_t events)
{
#ifdef BENCH_TLS
    if (c->ssl && !c->tls_done) {
        int r = SSL_accept(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) { arm(c, 0); return; }
            if (e == SSL_ERROR_WANT_WRITE) { arm(c, 1); return; }
            conn_close(c);
            return;
        }
        c->tls_done = 1;
    }
#endif
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        on_readable(c);
        return;     /* on_readable flushes (and may have closed c) */
    }
    if (events & EPOLLOUT) flush_out(c);
}

static void on_accept(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c) die("calloc");
        c->fd = fd;
        c->mode = M_HANDSHAKE;
#ifdef BENCH_TLS
        if (tls_ctx) {
            c->ssl = SSL_new(tls_ctx);
            SSL_set_fd(c->ssl, fd);
            SSL_set_accept_state(c->ssl);
        }
#endif
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) { close(fd); free(c); continue; }
    }
}

static void on_signal(int s) { (void)s; stop = 1; }

int main(int argc, char **argv)
{
    int port = 0;
    const char *cert = NULL, *key = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) port = atoi(argv[++i]);
        else if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) { cert = argv[++i]; key = argv[++i]; }
        else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) load_json(argv[++i]);
        else if (strcmp(argv[i], "--stats") == 0 && i + 1 < argc) {
            if (!(stats = fopen(argv[++i], "a"))) die(argv[i]);
        } else { fprintf(stderr, "usage: %s [--port P] [--tls CERT KEY] [--json FILE] [--stats FILE]\n", argv[0]); return 2; }
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
    if (cert) {
#ifdef BENCH_TLS
        tls_ctx = SSL_CTX_new(TLS_server_method());
        if (!tls_ctx || SSL_CTX_use_certificate_chain_file(tls_ctx, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(tls_ctx, key, SSL_FILETYPE_PEM) != 1) {
            ERR_print_errors_fp(stderr);
            return 1;
        }
        SSL_CTX_set_mode(tls_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                      SSL_MODE_RELEASE_BUFFERS);
#else
        (void)key;
        fprintf(stderr, "server: built without TLS (-DBENCH_TLS)\n");
        return 1;
#endif
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(lfd, 65535) < 0) die("listen");
    socklen_t al = sizeof a;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    printf("PORT %d\n", ntohs(a.sin_port));
    fflush(stdout);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    static int lmark;
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &lmark};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
    struct epoll_event evs[256];
    while (!stop) {
        int n = epoll_wait(ep, evs, 256, 1000);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &lmark) on_accept(lfd);
            else on_event(evs[i].data.ptr, evs[i].events);
        }
    }
    return 0;
}
