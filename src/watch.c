/* watch: tells when any of a set of files is written or replaced (inotify on
 * their directories). Knows nothing of Lua or protocols. */
#include "watch.h"
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

typedef struct watched { int wd; char *dir; char *base; } watched;

struct mw_watch {
    mw_loop *loop;
    int fd;
    ev_io io;
    mw_timer settle;
    void (*cb)(void *);
    void *ud;
    watched *files;
    int nfiles;
    int writing;         /* a watched file was modified and not yet closed */
    double since;        /* when the first change of this batch was seen */
};

/* A change is reported once 50 ms pass without another. A file written in
 * place (truncated, then written) is waited for until its writer closes it,
 * for up to a second, so a reload never reads it half-written or empty. */
#define SETTLE 0.05
#define WRITE_WAIT 1.0

static void settle_cb(mw_timer *t, void *ud)
{
    (void)t;
    mw_watch *w = ud;
    if (w->writing && mw_monotonic() - w->since < WRITE_WAIT) {
        mw_timer_start(&w->settle, SETTLE, 0);
        return;
    }
    w->writing = 0;
    w->cb(w->ud);
}

static void io_cb(struct ev_loop *ev, ev_io *io, int revents)
{
    (void)ev; (void)revents;
    mw_watch *w = (mw_watch *)((char *)io - offsetof(mw_watch, io));
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    int hit = 0;
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof buf);
        if (n <= 0) break;
        for (char *p = buf; p < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)p;
            int mine = 0;
            for (int i = 0; i < w->nfiles && e->len && !mine; i++)
                if (w->files[i].wd == e->wd && strcmp(w->files[i].base, e->name) == 0) mine = 1;
            if (mine) {
                if (!hit && !mw_timer_active(&w->settle)) w->since = mw_monotonic();
                hit = 1;
                if (e->mask & IN_MODIFY) w->writing = 1;
                if (e->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)) w->writing = 0;
            }
            p += sizeof *e + e->len;
        }
    }
    if (hit) mw_timer_start(&w->settle, SETTLE, 0);
}

mw_watch *mw_watch_new(mw_loop *l, void (*cb)(void *ud), void *ud, char *err, size_t errcap)
{
    mw_watch *w = calloc(1, sizeof *w);
    if (!w) { snprintf(err, errcap, "out of memory"); return NULL; }
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (w->fd < 0) {
        snprintf(err, errcap, "inotify: %s", strerror(errno));
        free(w);
        return NULL;
    }
    w->loop = l;
    w->cb = cb;
    w->ud = ud;
    mw_timer_init(&w->settle, l, settle_cb, w, 1);
    ev_io_init(&w->io, io_cb, w->fd, EV_READ);
    ev_io_start(l->ev, &w->io); /* watching keeps the process alive: it waits for edits */
    return w;
}

/* Free the set; a directory's watch is removed only when no entry of `keep`
 * (the new set, NULL for none) still uses it. */
static void clear_files(mw_watch *w, const watched *keep, int nkeep)
{
    for (int i = 0; i < w->nfiles; i++) {
        int used = 0;
        for (int j = 0; j < i; j++) if (w->files[j].wd == w->files[i].wd) used = 1; /* removed already */
        for (int j = 0; j < nkeep; j++) if (keep[j].wd == w->files[i].wd) used = 1;
        if (!used && w->files[i].wd >= 0) inotify_rm_watch(w->fd, w->files[i].wd);
        free(w->files[i].dir);
        free(w->files[i].base);
    }
    free(w->files);
    w->files = NULL;
    w->nfiles = 0;
}

int mw_watch_set(mw_watch *w, const char *const *paths, int n, char *err, size_t errcap)
{
    /* The new set is built before the old one goes: inotify_add_watch on a
     * directory watched already returns its wd, so the directories of both
     * sets are watched without a gap, and an edit made while a reload
     * re-sets the watches (right after "reloaded") is not lost. */
    watched *files = calloc((size_t)(n ? n : 1), sizeof *files);
    if (!files) { snprintf(err, errcap, "out of memory"); return -1; }
    int nf = 0, r = 0;
    for (int i = 0; i < n && r == 0; i++) {
        char full[PATH_MAX];
        if (!realpath(paths[i], full)) snprintf(full, sizeof full, "%s", paths[i]);
        char *slash = strrchr(full, '/');
        watched *f = &files[nf];
        f->dir = slash ? strndup(full, (size_t)(slash == full ? 1 : slash - full)) : strdup(".");
        f->base = strdup(slash ? slash + 1 : full);
        if (!f->dir || !f->base) {
            free(f->dir); free(f->base);
            snprintf(err, errcap, "out of memory");
            r = -1;
            break;
        }
        f->wd = inotify_add_watch(w->fd, f->dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY);
        nf++;
        if (f->wd < 0) {
            snprintf(err, errcap, "watch %s: %s", f->dir, strerror(errno));
            r = -1;
        }
    }
    clear_files(w, files, nf);
    w->files = files;
    w->nfiles = nf;
    return r;
}

void mw_watch_free(mw_watch *w)
{
    if (!w) return;
    clear_files(w, NULL, 0);
    mw_timer_stop(&w->settle);
    ev_io_stop(w->loop->ev, &w->io);
    close(w->fd);
    free(w);
}
