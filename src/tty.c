/* tty: a line editor on the loop (see tty.h), on GNU readline's callback
 * interface: rl_callback_read_char() when fd 0 is readable. */
#include "tty.h"
#include <stdio.h>
#include <readline/readline.h>
#include <readline/history.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct mw_tty {
    mw_loop *loop;
    ev_io io;
    mw_tty_cb cb;
    void *ud;
    char *prompt;
    int in_cb, closing;
};

static mw_tty *the_tty;   /* readline's state is the process's */

int mw_tty_is(int fd) { return isatty(fd); }

static void free_tty(mw_tty *t)
{
    free(t->prompt);
    free(t);
}

static void on_line(char *line)
{
    mw_tty *t = the_tty;
    if (!t) { free(line); return; }
    if (line && *line) add_history(line);
    t->in_cb = 1;
    t->cb(t->ud, line);
    t->in_cb = 0;
    free(line);
    if (t->closing) { the_tty = NULL; free_tty(t); }
}

static void io_cb(struct ev_loop *ev, ev_io *w, int revents)
{
    (void)ev; (void)w; (void)revents;
    rl_callback_read_char();
}

mw_tty *mw_tty_open(mw_loop *l, const char *prompt, mw_tty_cb cb, void *ud, char *err, size_t cap)
{
    if (the_tty) { snprintf(err, cap, "a terminal prompt is open already"); return NULL; }
    if (!isatty(0)) { snprintf(err, cap, "stdin is not a terminal"); return NULL; }
    mw_tty *t = calloc(1, sizeof *t);
    if (!t || !(t->prompt = strdup(prompt))) { free(t); snprintf(err, cap, "out of memory"); return NULL; }
    t->loop = l;
    t->cb = cb;
    t->ud = ud;
    the_tty = t;
    rl_instream = stdin;
    rl_outstream = stdout;
    rl_catch_signals = 0;      /* moonwire's own handlers stay */
    rl_catch_sigwinch = 1;
    using_history();
    rl_callback_handler_install(t->prompt, on_line);
    ev_io_init(&t->io, io_cb, 0, EV_READ);
    ev_io_start(l->ev, &t->io);
    return t;
}

void mw_tty_print(mw_tty *t, const char *s, size_t n)
{
    /* from the line handler (the prompt's own output): the entered line is
     * still readline's until the handler returns, and the next prompt comes
     * after it: a plain write */
    if (!t || t->closing || t->in_cb) { fwrite(s, 1, n, stdout); fflush(stdout); return; }
    char *typed = rl_copy_text(0, rl_end);
    int point = rl_point;
    /* take the prompt and the typed line off the screen, print, put them back */
    rl_set_prompt("");
    rl_replace_line("", 0);
    rl_redisplay();
    fputs("\r\033[K", stdout);
    fwrite(s, 1, n, stdout);
    if (n && s[n - 1] != '\n') fputc('\n', stdout);
    fflush(stdout);
    rl_set_prompt(t->prompt);
    rl_replace_line(typed ? typed : "", 0);
    rl_point = point;
    rl_forced_update_display();
    free(typed);
}

void mw_tty_set_prompt(mw_tty *t, const char *prompt)
{
    if (!t) return;
    if (strcmp(prompt, t->prompt) == 0) return;
    char *p = strdup(prompt);
    if (!p) return;
    free(t->prompt);
    t->prompt = p;
    rl_set_prompt(t->prompt);
    /* from outside the line handler (an answer that came later: attach), the
     * line on the screen is drawn again with it; from inside it, readline
     * draws the prompt next */
    if (!t->in_cb && !t->closing) {
        fputs("\r\033[K", stdout);
        rl_forced_update_display();
    }
}

void mw_tty_clear_line(mw_tty *t)
{
    if (!t || t->closing) return;
    rl_replace_line("", 0);
    fputs("^C\n", stdout);
    fflush(stdout);
    rl_forced_update_display();
}

void mw_tty_close(mw_tty *t)
{
    if (!t || t->closing) return;
    t->closing = 1;
    if (ev_is_active(&t->io)) ev_io_stop(t->loop->ev, &t->io);
    rl_callback_handler_remove();
    if (t->in_cb) return;   /* freed when the callback returns */
    the_tty = NULL;
    free_tty(t);
}
