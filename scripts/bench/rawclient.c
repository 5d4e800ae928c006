/* rawclient.c: the benchmark's ceiling. It speaks just enough WebSocket to be served
 * (the upgrade request, masked pre-built frames) and otherwise only moves bytes: it
 * never parses the frames it reads, so its rate is what this machine's loopback and
 * kernel allow. Also times process start (posix_spawn + wait) for the start case.
 *
 *   rawclient recv  PORT N SIZE OP    read N frames of SIZE from /flood (counting bytes)
 *   rawclient send  PORT N SIZE OP    write N pre-masked frames to /sink, wait for "done"
 *   rawclient echo  PORT N SIZE       N sequential round trips on /echo
 *   rawclient start RUNS CMD [ARG..]  spawn CMD RUNS times; median/min/max wall time
 *   rawclient exec FILE CMD [ARG..]   run CMD, write its CPU seconds and peak RSS to FILE
 * Prints "RESULT key=value ..." on stdout. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what) { perror(what); exit(1); }

static size_t hdr_len(uint64_t size, int masked)
{
    return (size < 126 ? 2 : size <= 0xffff ? 4 : 10) + (masked ? 4 : 0);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t r = write(fd, p, n);
        if (r < 0) { if (errno == EINTR) continue; die("write"); }
        p += r;
        n -= (size_t)r;
    }
}

/* Connect and upgrade; bytes read past the response head are left in *extra. */
static int ws_open(int port, const char *path, char *extra, size_t *nextra)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n", path, port);
    write_all(fd, req, (size_t)n);
    char buf[4096];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof buf - len);
        if (r <= 0) die("read handshake");
        len += (size_t)r;
        char *end = memmem(buf, len, "\r\n\r\n", 4);
        if (end) {
            if (strncmp(buf, "HTTP/1.1 101", 12) != 0) { fprintf(stderr, "handshake refused\n"); exit(1); }
            size_t head = (size_t)(end - buf) + 4;
            *nextra = len - head;
            memcpy(extra, buf + head, *nextra);
            return fd;
        }
        if (len == sizeof buf) { fprintf(stderr, "handshake too long\n"); exit(1); }
    }
}

static void ws_close(int fd)
{
    static const unsigned char fr[8] = {0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2};
    write_all(fd, (const char *)fr, sizeof fr);
    close(fd);
}

/* A frame (masked when from us) of `size` bytes of 'a'..'z'. Returns its length. */
static size_t build_frame(unsigned char *out, int op, uint64_t size, int masked)
{
    static const unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
    size_t i = 2;
    out[0] = (unsigned char)(0x80 | op);
    unsigned char m = masked ? 0x80 : 0;
    if (size < 126) out[1] = m | (unsigned char)size;
    else if (size <= 0xffff) { out[1] = m | 126; out[2] = (unsigned char)(size >> 8); out[3] = (unsigned char)size; i = 4; }
    else { out[1] = m | 127; for (int k = 0; k < 8; k++) out[2 + k] = (unsigned char)(size >> (56 - 8 * k)); i = 10; }
    if (masked) { memcpy(out + i, key, 4); i += 4; }
    for (uint64_t j = 0; j < size; j++) {
        unsigned char b = (unsigned char)('a' + j % 26);
        out[i + j] = masked ? b ^ key[j & 3] : b;
    }
    return i + (size_t)size;
}

static int op_of(const char *s) { return s && strcmp(s, "binary") == 0 ? 2 : 1; }

static int do_recv(int port, uint64_t n, uint64_t size, const char *op)
{
    char path[256], *buf = malloc(1 << 18);
    size_t got0;
    if (!buf) die("malloc");
    snprintf(path, sizeof path, "/flood?n=%llu&size=%llu&op=%s", (unsigned long long)n,
             (unsigned long long)size, op);
    int fd = ws_open(port, path, buf, &got0);
    uint64_t want = n * (hdr_len(size, 0) + size), got = got0;
    double t0 = now();
    while (got < want) {
        ssize_t r = read(fd, buf, 1 << 18);
        if (r <= 0) die("read");
        got += (uint64_t)r;
    }
    double t = now() - t0;
    ws_close(fd);
    printf("RESULT msgs=%llu bytes=%llu secs=%.6f\n", (unsigned long long)n,
           (unsigned long long)(n * size), t);
    return 0;
}

static int do_send(int port, uint64_t n, uint64_t size, const char *op)
{
    char path[256], extra[4096];
    size_t nextra;
    snprintf(path, sizeof path, "/sink?n=%llu", (unsigned long long)n);
    size_t flen = hdr_len(size, 1) + (size_t)size;
    size_t count = (1u << 20) / flen;
    if (count == 0) count = 1;
    if (count > n) count = (size_t)n;
    unsigned char *fb = malloc(count * flen);
    if (!fb) die("malloc");
    for (size_t i = 0; i < count; i++) build_frame(fb + i * flen, op_of(op), size, 1);
    int fd = ws_open(port, path, extra, &nextra);
    double t0 = now();
    for (uint64_t left = n; left;) {
        size_t k = left < count ? (size_t)left : count;
        write_all(fd, (const char *)fb, k * flen);
        left -= k;
    }
    /* the reply: a 6-byte text frame "done" */
    size_t have = nextra;
    while (have < 6) {
        ssize_t r = read(fd, extra + have, sizeof extra - have);
        if (r <= 0) die("read done");
        have += (size_t)r;
    }
    double t = now() - t0;
    if (memcmp(extra, "\x81\x04" "done", 6) != 0) { fprintf(stderr, "unexpected reply\n"); return 1; }
    ws_close(fd);
    printf("RESULT msgs=%llu bytes=%llu secs=%.6f\n", (unsigned long long)n,
           (unsigned long long)(n * size), t);
    return 0;
}

static int do_echo(int port, uint64_t n, uint64_t size)
{
    char extra[4096];
    size_t nextra;
    unsigned char fr[256];
    if (size > 125) { fprintf(stderr, "echo: size <= 125\n"); return 2; }
    size_t flen = build_frame(fr, 1, size, 1);
    int fd = ws_open(port, "/echo", extra, &nextra);
    size_t want = 2 + (size_t)size;
    double t0 = now();
    for (uint64_t i = 0; i < n; i++) {
        write_all(fd, (const char *)fr, flen);
        size_t have = 0;
        while (have < want) {
            ssize_t r = read(fd, extra + have, want - have);
            if (r <= 0) die("read echo");
            have += (size_t)r;
        }
    }
    double t = now() - t0;
    ws_close(fd);
    printf("RESULT msgs=%llu bytes=%llu secs=%.6f\n", (unsigned long long)n,
           (unsigned long long)(n * size), t);
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int do_start(int runs, char **cmd)
{
    double *t = calloc((size_t)runs, sizeof *t);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    for (int i = 0; i < runs; i++) {
        pid_t pid;
        double t0 = now();
        if (posix_spawnp(&pid, cmd[0], &fa, NULL, cmd, environ) != 0) die("posix_spawnp");
        int st;
        if (waitpid(pid, &st, 0) < 0) die("waitpid");
        t[i] = now() - t0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { fprintf(stderr, "start: %s failed\n", cmd[0]); return 1; }
    }
    qsort(t, (size_t)runs, sizeof *t, cmp_d);
    printf("RESULT msgs=%d bytes=0 secs=%.6f min=%.6f max=%.6f\n", runs, t[runs / 2], t[0], t[runs - 1]);
    return 0;
}

/* Peak RSS of a child: Linux carries the RSS high-water mark of the process that forked
 * across exec, so a client started straight from the (large) driver would report the
 * driver's size. Started from this small process, it reports its own. */
static int do_exec(const char *file, char **cmd)
{
    pid_t pid;
    if (posix_spawnp(&pid, cmd[0], NULL, NULL, cmd, environ) != 0) die("posix_spawnp");
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0) die("wait4");
    FILE *f = fopen(file, "w");
    if (f) {
        fprintf(f, "%.6f %.6f %ld\n", ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6,
                ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6, ru.ru_maxrss);
        fclose(f);
    }
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "start") == 0) return do_start(atoi(argv[2]), argv + 3);
    if (argc >= 4 && strcmp(argv[1], "exec") == 0) return do_exec(argv[2], argv + 3);
    if (argc < 5) {
        fprintf(stderr, "usage: rawclient recv|send|echo PORT N SIZE [OP] | start RUNS CMD...\n");
        return 2;
    }
    int port = atoi(argv[2]);
    uint64_t n = strtoull(argv[3], NULL, 10), size = strtoull(argv[4], NULL, 10);
    const char *op = argc > 5 ? argv[5] : "text";
    if (strcmp(argv[1], "recv") == 0) return do_recv(port, n, size, op);
    if (strcmp(argv[1], "send") == 0) return do_send(port, n, size, op);
    if (strcmp(argv[1], "echo") == 0) return do_echo(port, n, size);
    fprintf(stderr, "rawclient: unknown mode %s\n", argv[1]);
    return 2;
}
