/* tty: a line editor on the loop for a terminal (GNU readline's callback
 * interface): a prompt with editing and history, lines
 * handed over as they are entered, and output printed above the line being
 * typed without garbling it. One at a time per process (readline's state is
 * global). Knows no Lua, no connection. */
#ifndef MW_TTY_H
#define MW_TTY_H
#include <stddef.h>
#include "loop.h"

typedef struct mw_tty mw_tty;

/* A line entered (without its newline), or NULL at the end (^D on an empty
 * line). The callback may print, change the prompt or close. */
typedef void (*mw_tty_cb)(void *ud, const char *line);

/* Whether fd is a terminal. */
int mw_tty_is(int fd);
/* Start editing on fd 0 with this prompt. NULL with why in err (another one
 * is open; stdin is no terminal). */
mw_tty *mw_tty_open(mw_loop *l, const char *prompt, mw_tty_cb cb, void *ud, char *err, size_t cap);
/* Print s[0..n) above the line being typed, then draw the prompt and that
 * line again. */
void mw_tty_print(mw_tty *t, const char *s, size_t n);
void mw_tty_set_prompt(mw_tty *t, const char *prompt);
/* The line being typed is dropped, a new prompt drawn (^C at the prompt). */
void mw_tty_clear_line(mw_tty *t);
/* Stop, the terminal as it was; NULL is fine; safe from the callback. */
void mw_tty_close(mw_tty *t);
#endif
