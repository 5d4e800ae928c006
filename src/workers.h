/* workers: worker.count > 1: the parent forks the worker processes and
 * supervises them (restart with a backoff, signals passed on, the exit
 * status). Knows nothing of Lua, protocols or frame bits. */
#ifndef MW_WORKERS_H
#define MW_WORKERS_H
#include "loop.h"
#include <stddef.h>

/* Fork `count` workers from this process, whose script has loaded and whose
 * loop has not run. In a worker: returns its id (0..count-1) with the loop
 * made ready for the child (ev_loop_fork, a new resolver and RNG, the signal
 * mask back); the caller runs the loop and exits with its status. In the
 * parent: supervises until every worker has ended and returns -1 with
 * *status the program's exit status (1 when any worker ever crashed or
 * exited non-zero, else 0). A worker that crashes or exits non-zero is
 * forked again (from the parent's state: the script as loaded at start)
 * after a backoff; one that exits 0 is done. SIGINT/SIGTERM are passed on
 * to every worker as SIGTERM (a second one as well: they stop at once),
 * SIGHUP as SIGHUP. Returns -2 with *status 1 when the first fork fails
 * (printed). */
int mw_workers_run(int count, mw_loop *loop, int *status);
/* In a worker: how many times its id was forked before this one (0: the
 * first; more: a restart after a crash or a non-zero exit). */
int mw_workers_restarts(void);
/* In a worker: the write end of its pipe to the parent, else -1. */
int mw_workers_pipe(void);
/* In a worker: send a blob (--metrics: the worker's totals) to the parent,
 * which keeps the latest of each worker. 0, or -1 (not a worker, or the
 * parent is gone). */
int mw_workers_send(const void *p, size_t n);

/* The parent's side of the blobs (set before mw_workers_run; tick NULL:
 * none). Every `interval` seconds, and once when every worker has ended,
 * tick gets the latest blob of each running worker (count of them); when a
 * worker ends, retire gets its last blob, once. The blobs are opaque here. */
typedef struct mw_workers_sink {
    double interval;
    void (*tick)(void *ud, const unsigned char *const *p, const size_t *n, int count);
    void (*retire)(void *ud, const unsigned char *p, size_t n);
    void *ud;
} mw_workers_sink;
void mw_workers_set_sink(const mw_workers_sink *sink);
#endif
