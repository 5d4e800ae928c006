/* console: the Unix sockets of the console (`moonwire --console`, `moonwire
 * attach`) on the loop: a bot's listener (its directory 0700, the socket
 * 0600, peers of another uid than the bot's, root aside, refused by
 * SO_PEERCRED) and the framed streams on both ends (console_proto.h), all
 * non-blocking. Knows no Lua. */
#ifndef MW_CONSOLE_H
#define MW_CONSOLE_H
#include <stddef.h>
#include "loop.h"

typedef struct mw_csrv mw_csrv;
typedef struct mw_cpeer mw_cpeer;

/* A frame arrived (kind, payload); NULL kind 0 at the end, why = NULL for a
 * plain close by the other side. The callback may send or close. */
typedef void (*mw_cpeer_cb)(void *ud, mw_cpeer *p, int kind, const char *s, size_t n, const char *why);
/* A peer of the bot's uid (or root) was accepted: set its callback. */
typedef void (*mw_csrv_cb)(void *ud, mw_cpeer *p);

/* The directory of consoles: $XDG_RUNTIME_DIR/moonwire, else /tmp/moonwire-<uid>;
 * with create, made 0700 (an existing one must be ours and not reachable by
 * others). 0, or -1 with why in err. */
int mw_console_dir(char *out, size_t cap, int create, char *err, size_t ecap);
/* Listen at path (a stale socket there is replaced; a live one is an error).
 * The listener does not keep the loop alive. refused(ud, uid, pid) is told
 * of a peer of another uid (refused with an 'n' frame). NULL with why in err. */
mw_csrv *mw_csrv_listen(mw_loop *l, const char *path, mw_csrv_cb cb,
                        void (*refused)(void *ud, unsigned uid, int pid), void *ud,
                        char *err, size_t ecap);
/* Stop listening, close every peer it accepted, unlink the socket; NULL is fine. */
void mw_csrv_close(mw_csrv *s);
/* 1 when a console listens at path, 0 when the socket is stale (nobody
 * listens: connection refused) or missing, -1 otherwise (errno). */
int mw_console_probe(const char *path);

/* Connect to a console (the attacher's end; it keeps the loop alive). NULL
 * with why in err. */
mw_cpeer *mw_cpeer_connect(mw_loop *l, const char *path, char *err, size_t ecap);
void mw_cpeer_set_cb(mw_cpeer *p, mw_cpeer_cb cb, void *ud);
/* Queue a frame (written as the socket takes it): 0, or -1 (too long, out of
 * memory, closed). */
int mw_cpeer_send(mw_cpeer *p, int kind, const char *s, size_t n);
/* Read what the socket has now without waiting (while a chunk runs in the
 * bot) and tell whether an interrupt frame is among the frames not yet
 * handed over: 1 yes (it is handed over later as usual), 0 no. */
int mw_cpeer_poll_interrupt(mw_cpeer *p);
/* Close (what is queued is written first, for a moment, when the socket takes
 * it); the callback is not called again. Safe from the callback. */
void mw_cpeer_close(mw_cpeer *p);

/* This process's id; whether process pid exists (for a stale socket's bot). */
int mw_console_pid(void);
int mw_console_pid_alive(int pid);
/* fn(ud, name) for each entry of dir whose name ends in ".sock": 0, or -1 (errno). */
int mw_console_list(const char *dir, void (*fn)(void *ud, const char *name), void *ud);
#endif
