/* stdin: standard input as an event source (see stdin.h). */
#include "stdin.h"
#include "buf.h"
#include "codec.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct mw_stdin {
    mw_loop *loop;
    int fd, file, paused, closing, in_cb, ended;
    size_t max_line;
    ev_io io;          /* pipes, sockets, terminals */
    ev_idle idle;      /* a regular file: a chunk per loop pass */
    mw_buf line;
    mw_stdin_cb cb;
    void *ud;
};

static void watch(mw_stdin *s)
{
    struct ev_loop *ev = s->loop->ev;
    int on = !s->paused && !s->ended && !s->closing;
    ev_watcher *w = s->file ? (ev_watcher *)&s->idle : (ev_watcher *)&s->io;
    if (on && !ev_is_active(w)) {
        if (s->file) ev_idle_start(ev, &s->idle); else ev_io_start(ev, &s->io);
    } else if (!on && ev_is_active(w)) {
        if (s->file) ev_idle_stop(ev, &s->idle); else ev_io_stop(ev, &s->io);
    }
}

static void end(mw_stdin *s, const char *err)
{
    s->ended = 1;
    watch(s);
    if (s->line.len && !err) {
        /* a last line without its newline is still a line */
        const char *p = mw_buf_head(&s->line);
        s->cb(s->ud, p, mw_text_trim(p, s->line.len), NULL);
        if (s->closing) return;
        mw_buf_clear(&s->line);
    }
    if (err) s->cb(s->ud, NULL, 0, err);
    if (s->closing) return;
    s->cb(s->ud, NULL, 0, NULL);
}

/* Deliver the whole lines s->line holds, as text:// splits them (codec.h),
 * until the callback pauses or closes; the rest waits there. */
static void deliver(mw_stdin *s)
{
    while (s->line.len && !s->paused && !s->closing) {
        mw_decoded d;
        const char *p = mw_buf_head(&s->line);
        int r = mw_text_decode(p, s->line.len, s->max_line, &d);
        if (r == MW_DEC_NEED) return;
        if (r != MW_DEC_MESSAGE) {
            char e[96];
            snprintf(e, sizeof e, "stdin: a line longer than %zu bytes", s->max_line);
            mw_buf_clear(&s->line);
            end(s, e);
            return;
        }
        s->cb(s->ud, p + d.off, d.len, NULL);
        if (s->closing) return;
        mw_buf_consume(&s->line, d.consumed);
    }
}

static void read_some(mw_stdin *s)
{
    enum { CHUNK = 65536 };
    char *dst = mw_buf_reserve(&s->line, CHUNK);
    ssize_t r = dst ? read(s->fd, dst, CHUNK) : -1;
    if (r < 0 && dst && (errno == EINTR || errno == EAGAIN)) return;
    s->in_cb = 1;
    if (r < 0) {
        char e[128];
        snprintf(e, sizeof e, "stdin: %s", dst ? strerror(errno) : "out of memory");
        mw_buf_clear(&s->line);
        end(s, e);
    } else if (r == 0) {
        end(s, NULL);
    } else {
        mw_buf_commit(&s->line, (size_t)r);
        deliver(s);
    }
    s->in_cb = 0;
    if (s->closing) { mw_stdin_close(s); return; }
}

static void io_cb(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)ev; (void)revents;
    read_some(container_of(w, mw_stdin, io));
}

static void idle_cb(struct ev_loop *ev, ev_idle *w, int revents)
{
    (void)ev; (void)revents;
    read_some(container_of(w, mw_stdin, idle));
}

mw_stdin *mw_stdin_open(mw_loop *l, int fd, size_t max_line, mw_stdin_cb cb, void *ud, char *err, size_t cap)
{
    struct stat st;
    if (fstat(fd, &st) != 0) { snprintf(err, cap, "stdin: %s", strerror(errno)); return NULL; }
    mw_stdin *s = calloc(1, sizeof *s);
    if (!s) { snprintf(err, cap, "stdin: out of memory"); return NULL; }
    s->loop = l;
    s->fd = fd;
    s->file = S_ISREG(st.st_mode) || S_ISDIR(st.st_mode);
    s->max_line = max_line;
    s->cb = cb;
    s->ud = ud;
    mw_buf_init(&s->line);
    ev_io_init(&s->io, io_cb, fd, EV_READ);
    ev_idle_init(&s->idle, idle_cb);
    watch(s);
    return s;
}

void mw_stdin_pause(mw_stdin *s, int paused)
{
    if (!s || s->closing) return;
    s->paused = paused;
    watch(s);
    if (!paused && s->line.len && !s->in_cb) {
        /* whole lines kept back by the pause go first */
        s->in_cb = 1;
        deliver(s);
        s->in_cb = 0;
        if (s->closing) mw_stdin_close(s);
    }
}

void mw_stdin_close(mw_stdin *s)
{
    if (!s) return;
    s->closing = 1;
    watch(s);
    if (s->in_cb) return;   /* freed when the callback returns */
    mw_buf_free(&s->line);
    free(s);
}
