/* stdin: standard input as an event source on the loop, line by line. Pipes,
 * sockets and terminals are watched for readiness (fd 0 stays blocking, so
 * the terminal or pipe shared with the parent is left as it was); a regular
 * file, which cannot be polled, is read a chunk per loop pass. Knows no Lua,
 * no connection. */
#ifndef MW_STDIN_H
#define MW_STDIN_H
#include <stddef.h>
#include "loop.h"

typedef struct mw_stdin mw_stdin;

/* One line without its "\n" (and a "\r" before it), or eof = 1 (line NULL)
 * once at the end; err (not NULL) when reading failed or a line grew past
 * the limit, followed by the end. The callback may pause or close. */
typedef void (*mw_stdin_cb)(void *ud, const char *line, size_t n, const char *err);

/* Start reading fd (0). NULL with a message in err when it cannot. */
mw_stdin *mw_stdin_open(mw_loop *l, int fd, size_t max_line, mw_stdin_cb cb, void *ud, char *err, size_t cap);
/* Stop reading until resumed (the kernel or the file keeps the rest). */
void mw_stdin_pause(mw_stdin *s, int paused);
/* Stop for good and free; NULL is fine. Safe from inside the callback. */
void mw_stdin_close(mw_stdin *s);
#endif
