/* console: Unix sockets of the console (see console.h). */
#include "console.h"
#include "buf.h"
#include "console_proto.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define OUT_MAX (8u << 20)   /* an attacher that does not read is dropped past this */

struct mw_cpeer {
    mw_loop *loop;
    mw_csrv *srv;            /* its listener (bot side), NULL for the attacher */
    mw_cpeer *next, *prev;   /* srv->peers */
    int fd;
    ev_io rio, wio;
    mw_buf in, out;
    size_t scan;             /* bytes of `in` already handed over */
    mw_cpeer_cb cb;
    void *ud;
    int in_cb, closing, dead;
    int unrefd;              /* its read watcher does not keep the loop alive */
};

struct mw_csrv {
    mw_loop *loop;
    int fd;
    ev_io io;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    mw_csrv_cb cb;
    void (*refused)(void *ud, unsigned uid, int pid);
    void *ud;
    mw_cpeer *peers;
};

int mw_console_dir(char *out, size_t cap, int create, char *err, size_t ecap)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n = xdg && *xdg ? snprintf(out, cap, "%s/moonwire", xdg)
                        : snprintf(out, cap, "/tmp/moonwire-%u", (unsigned)getuid());
    if (n < 0 || (size_t)n >= cap) { snprintf(err, ecap, "console directory path too long"); return -1; }
    if (!create) return 0;
    if (mkdir(out, 0700) != 0 && errno != EEXIST) {
        snprintf(err, ecap, "cannot create %s: %s", out, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(out, &st) != 0) { snprintf(err, ecap, "%s: %s", out, strerror(errno)); return -1; }
    if (!S_ISDIR(st.st_mode) || st.st_uid != getuid()) {
        snprintf(err, ecap, "%s is not a directory of uid %u", out, (unsigned)getuid());
        return -1;
    }
    if ((st.st_mode & 077) && chmod(out, 0700) != 0) {
        snprintf(err, ecap, "cannot make %s mode 0700: %s", out, strerror(errno));
        return -1;
    }
    return 0;
}

static int fill_addr(struct sockaddr_un *a, const char *path, char *err, size_t ecap)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a->sun_path) {
        snprintf(err, ecap, "socket path too long (%zu bytes, at most %zu): %s",
                 strlen(path), sizeof a->sun_path - 1, path);
        return -1;
    }
    strcpy(a->sun_path, path);
    return 0;
}

int mw_console_probe(const char *path)
{
    struct sockaddr_un a;
    char err[64];
    if (fill_addr(&a, path, err, sizeof err) != 0) { errno = ENAMETOOLONG; return -1; }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int r = connect(fd, (struct sockaddr *)&a, sizeof a);
    int e = errno;
    close(fd);
    if (r == 0) return 1;
    if (e == ECONNREFUSED || e == ENOENT) return 0;
    errno = e;
    return -1;
}

/* ---- peers ---- */

static void stop_read(mw_cpeer *p)
{
    if (!ev_is_active(&p->rio)) return;
    if (p->unrefd) ev_ref(p->loop->ev);
    ev_io_stop(p->loop->ev, &p->rio);
}

static void peer_free(mw_cpeer *p)
{
    stop_read(p);
    if (ev_is_active(&p->wio)) ev_io_stop(p->loop->ev, &p->wio);
    if (p->srv) {
        if (p->prev) p->prev->next = p->next; else p->srv->peers = p->next;
        if (p->next) p->next->prev = p->prev;
    }
    if (p->fd >= 0) close(p->fd);
    mw_buf_free(&p->in);
    mw_buf_free(&p->out);
    free(p);
}

/* the end: tell the callback once, then free (later when inside it) */
static void peer_end(mw_cpeer *p, const char *why)
{
    if (p->closing) return;
    p->closing = 1;
    if (p->cb) { p->in_cb++; p->cb(p->ud, p, 0, NULL, 0, why); p->in_cb--; }
    if (p->in_cb) p->dead = 1; else peer_free(p);
}

static int flush_out(mw_cpeer *p)
{
    while (p->out.len) {
        ssize_t w = send(p->fd, mw_buf_head(&p->out), p->out.len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (w < 0) return -1;
        mw_buf_consume(&p->out, (size_t)w);
    }
    if (p->out.len && !ev_is_active(&p->wio)) ev_io_start(p->loop->ev, &p->wio);
    if (!p->out.len && ev_is_active(&p->wio)) ev_io_stop(p->loop->ev, &p->wio);
    return 0;
}

/* read what is there into p->in: 1 more bytes, 0 nothing now, -1 end or error (why) */
static int read_some(mw_cpeer *p, const char **why)
{
    int got = 0;
    for (;;) {
        char *w = mw_buf_reserve(&p->in, 16384);
        if (!w) { *why = "out of memory"; return -1; }
        ssize_t r = recv(p->fd, w, 16384, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return got;
        if (r < 0) { *why = strerror(errno); return -1; }
        if (r == 0) { *why = NULL; return -1; }
        mw_buf_commit(&p->in, (size_t)r);
        got = 1;
        if (r < 16384) return 1;
    }
}

static void on_read(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)ev; (void)revents;
    mw_cpeer *p = container_of(w, mw_cpeer, rio);
    const char *why = NULL;
    int r = read_some(p, &why);
    p->in_cb++;
    /* hand over every whole frame; the callback may read more in (the hook
     * of a running chunk), so the position is taken from the buffer again */
    const char *bad = NULL;
    while (!p->closing) {
        int kind; const char *pl; size_t n;
        long f = mw_cp_parse(mw_buf_head(&p->in) + p->scan, p->in.len - p->scan, &kind, &pl, &n, &bad);
        if (f <= 0) break;
        p->scan += (size_t)f;
        if (p->cb) p->cb(p->ud, p, kind, pl, n, NULL);
    }
    p->in_cb--;
    if (p->dead) { if (!p->in_cb) peer_free(p); return; }
    if (p->closing) return;
    mw_buf_consume(&p->in, p->scan);
    p->scan = 0;
    if (bad) peer_end(p, bad);
    else if (r < 0) peer_end(p, why);
}

static void on_write(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)ev; (void)revents;
    mw_cpeer *p = container_of(w, mw_cpeer, wio);
    if (flush_out(p) != 0) { if (p->closing) peer_free(p); else peer_end(p, strerror(errno)); return; }
    if (p->closing && !p->out.len) peer_free(p);   /* closed with bytes to write: now written */
}

static mw_cpeer *peer_new(mw_loop *l, int fd, int keep_alive)
{
    mw_cpeer *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->loop = l;
    p->fd = fd;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    ev_io_init(&p->rio, on_read, fd, EV_READ);
    ev_io_init(&p->wio, on_write, fd, EV_WRITE);
    ev_io_start(l->ev, &p->rio);
    if (!keep_alive) { ev_unref(l->ev); p->unrefd = 1; }
    return p;
}

void mw_cpeer_set_cb(mw_cpeer *p, mw_cpeer_cb cb, void *ud) { p->cb = cb; p->ud = ud; }

int mw_cpeer_send(mw_cpeer *p, int kind, const char *s, size_t n)
{
    if (!p || p->closing) return -1;
    if (p->out.len > OUT_MAX) return -1;
    if (mw_cp_encode(&p->out, kind, s, n) != 0) return -1;
    if (!ev_is_active(&p->wio)) return flush_out(p) == 0 ? 0 : -1;
    return 0;
}

int mw_cpeer_poll_interrupt(mw_cpeer *p)
{
    if (!p || p->closing) return 0;
    const char *why;
    if (read_some(p, &why) < 0) return 1;   /* gone: stop the chunk too */
    size_t off = p->scan;
    for (;;) {
        int kind; const char *pl; size_t n; const char *bad;
        long f = mw_cp_parse(mw_buf_head(&p->in) + off, p->in.len - off, &kind, &pl, &n, &bad);
        if (f <= 0) return 0;
        if (kind == 'i') return 1;
        off += (size_t)f;
    }
}

void mw_cpeer_close(mw_cpeer *p)
{
    if (!p || p->closing) return;
    p->closing = 1;
    p->cb = NULL;
    if (p->in_cb) { p->dead = 1; return; }
    if (p->srv && !p->out.len) { peer_free(p); return; }
    /* write what is queued first (the loop's own watchers are not the peer's) */
    stop_read(p);
    if (flush_out(p) != 0 || !p->out.len) peer_free(p);
}

mw_cpeer *mw_cpeer_connect(mw_loop *l, const char *path, char *err, size_t ecap)
{
    struct sockaddr_un a;
    if (fill_addr(&a, path, err, ecap) != 0) return NULL;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) { snprintf(err, ecap, "socket: %s", strerror(errno)); return NULL; }
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(fd);
        if (e == ENOENT || e == ECONNREFUSED)
            snprintf(err, ecap, "no console at %s (is the bot running with --console?)", path);
        else if (e == EACCES || e == EPERM)
            snprintf(err, ecap, "cannot connect to %s: permission denied (a console is only for the bot's own uid)", path);
        else
            snprintf(err, ecap, "cannot connect to %s: %s", path, strerror(e));
        return NULL;
    }
    mw_cpeer *p = peer_new(l, fd, 1);
    if (!p) { close(fd); snprintf(err, ecap, "out of memory"); }
    return p;
}

/* ---- the listener ---- */

static void on_accept(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)ev; (void)revents;
    mw_csrv *s = container_of(w, mw_csrv, io);
    for (;;) {
        int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) return;   /* EAGAIN, or a peer gone already */
        struct ucred cr;
        socklen_t cl = sizeof cr;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) != 0) { close(fd); continue; }
        if (cr.uid != getuid() && cr.uid != 0) {
            char why[160];
            int n = snprintf(why, sizeof why, "permission refused: uid %u is not the bot's uid %u (nor root)",
                             (unsigned)cr.uid, (unsigned)getuid());
            mw_buf b = MW_BUF_INIT;
            if (mw_cp_encode(&b, 'n', why, (size_t)n) == 0)
                (void)!send(fd, mw_buf_head(&b), b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
            mw_buf_free(&b);
            close(fd);
            if (s->refused) s->refused(s->ud, (unsigned)cr.uid, (int)cr.pid);
            continue;
        }
        mw_cpeer *p = peer_new(s->loop, fd, 0);
        if (!p) { close(fd); continue; }
        p->srv = s;
        p->next = s->peers;
        if (s->peers) s->peers->prev = p;
        s->peers = p;
        s->cb(s->ud, p);
    }
}

mw_csrv *mw_csrv_listen(mw_loop *l, const char *path, mw_csrv_cb cb,
                        void (*refused)(void *ud, unsigned uid, int pid), void *ud,
                        char *err, size_t ecap)
{
    struct sockaddr_un a;
    if (fill_addr(&a, path, err, ecap) != 0) return NULL;
    int live = mw_console_probe(path);
    if (live == 1) { snprintf(err, ecap, "a console listens at %s already", path); return NULL; }
    unlink(path);   /* a stale socket (its bot was killed) */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) { snprintf(err, ecap, "socket: %s", strerror(errno)); return NULL; }
    mode_t old = umask(0177);   /* the socket is born 0600 */
    int r = bind(fd, (struct sockaddr *)&a, sizeof a);
    umask(old);
    if (r != 0 || chmod(path, 0600) != 0 || listen(fd, 16) != 0) {
        snprintf(err, ecap, "cannot listen at %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    mw_csrv *s = calloc(1, sizeof *s);
    if (!s) { close(fd); unlink(path); snprintf(err, ecap, "out of memory"); return NULL; }
    s->loop = l;
    s->fd = fd;
    strcpy(s->path, path);
    s->cb = cb;
    s->refused = refused;
    s->ud = ud;
    ev_io_init(&s->io, on_accept, fd, EV_READ);
    ev_io_start(l->ev, &s->io);
    ev_unref(l->ev);
    return s;
}

void mw_csrv_close(mw_csrv *s)
{
    if (!s) return;
    while (s->peers) {
        mw_cpeer *p = s->peers;
        p->cb = NULL;
        p->closing = 1;
        if (p->in_cb) {   /* inside its own callback: unlink it, freed there */
            s->peers = p->next;
            if (p->next) p->next->prev = NULL;
            p->srv = NULL; p->next = p->prev = NULL;
            p->dead = 1;
            continue;
        }
        peer_free(p);
    }
    ev_ref(s->loop->ev);
    ev_io_stop(s->loop->ev, &s->io);
    close(s->fd);
    unlink(s->path);
    free(s);
}

int mw_console_pid(void) { return (int)getpid(); }

int mw_console_pid_alive(int pid)
{
    return pid > 0 && (kill(pid, 0) == 0 || errno != ESRCH);
}

int mw_console_list(const char *dir, void (*fn)(void *ud, const char *name), void *ud)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".sock") == 0) fn(ud, e->d_name);
    }
    closedir(d);
    return 0;
}
