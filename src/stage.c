/* stage: how a stage reaches the rest of its connection: reading and
 * writing through the layer below, the socket's readiness. Called by stages
 * only (conn.c calls nothing here). Knows nothing of Lua, of any stage by
 * name, or of protocols. */
#include "conn_int.h"

long mw_stage_read(mw_stage *s, char *p, size_t cap)
{
    return s->below ? s->below->vt->input(s->below, p, cap) : mw_net_read(&s->c->net, p, cap);
}

long mw_stage_write(mw_stage *s, const char *p, size_t n)
{
    return s->below ? s->below->vt->output(s->below, p, n) : mw_net_write(&s->c->net, p, n);
}

int mw_stage_fd(const mw_stage *s) { return s->c->net.fd; }

void mw_stage_wake(mw_stage *s)
{
    mw_conn *c = s->c;
    if (ev_is_active(&c->rio)) ev_feed_event(c->loop->ev, &c->rio, EV_READ);
    if (ev_is_active(&c->wio)) ev_feed_event(c->loop->ev, &c->wio, EV_WRITE);
}
