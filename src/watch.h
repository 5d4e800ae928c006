/* watch: tells when any of a set of files is written or replaced (inotify on
 * their directories, so editors that save by rename are seen). Knows nothing
 * of Lua or protocols. */
#ifndef MW_WATCH_H
#define MW_WATCH_H
#include "loop.h"
#include "timer.h"

typedef struct mw_watch mw_watch;

/* cb runs from the loop once changes settle (50 ms without another event).
 * Returns NULL with err filled when inotify is unavailable. */
mw_watch *mw_watch_new(mw_loop *l, void (*cb)(void *ud), void *ud, char *err, size_t errcap);
/* Replace the watched set. Returns 0, or -1 when a directory cannot be
 * watched (err says which). */
int mw_watch_set(mw_watch *w, const char *const *paths, int n, char *err, size_t errcap);
void mw_watch_free(mw_watch *w);
#endif
