/* workers: worker.count > 1: the parent forks the worker processes and
 * supervises them (restart with a backoff, signals passed on, the exit
 * status). Knows nothing of Lua, protocols or frame bits. */
#ifndef MW_WORKERS_H
#define MW_WORKERS_H
#include "loop.h"

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
/* In a worker: the write end of its pipe to the parent, else -1. Unused
 * today; metrics summed across workers will send a blob on it. */
int mw_workers_pipe(void);
#endif
