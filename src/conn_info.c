/* conn_info: what a connection says of itself and keeps for the next
 * connect: status names, a bindto checked on assignment, its URLs, message
 * delivery's checks, addresses, accessors and counters: what the protocols
 * and the binding read. The state machine (conn.c) needs none of it. */
#include "conn_int.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *mw_conn_status_name(int s)
{
    switch (s) {
    case MW_ST_INITIAL: return "INITIAL";
    case MW_ST_CONNECTING: return "CONNECTING";
    case MW_ST_ESTABLISHED: return "ESTABLISHED";
    case MW_ST_CLOSING: return "CLOSING";
    default: return "CLOSED";
    }
}

int mw_conn_check_bindto(const char *s, char *err, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (strlen(s) >= sizeof ((mw_conn_opts *)0)->bindto) { snprintf(err, cap, "too long"); return -1; }
    return mw_net_parse_bind(s, &ss, &len, err, cap);
}

int mw_conn_redirects(const mw_conn *c) { return c->redirects; }
const char *mw_conn_redirect_chain(const mw_conn *c) { return c->chain; }

/* A redirect chain's hops are this session's: the next connect starts from
 * the URL before it (a reload matches declarations by it, too). */
const char *mw_conn_url(const mw_conn *c)
{
    return c->next_url ? c->next_url->str : c->home ? c->home->str : c->url_str;
}

const mw_url *mw_conn_next_url(const mw_conn *c) { return c->next_url ? &c->next_url->url : &c->url; }

void mw_conn_mark_closed(mw_conn *c)
{
    if (c->status == MW_ST_INITIAL) c->status = MW_ST_CLOSED;
}

int mw_conn_interrupted(const mw_conn *c, unsigned gen)
{
    /* CLOSING goes on reading (a ws connection waits for the server's close
     * frame behind the messages in flight) but delivers no message: see
     * mw_conn_emit_message. A stream protocol's close pauses input. */
    return c->gen != gen || c->paused || c->status == MW_ST_CLOSED;
}

int mw_conn_emit_message(mw_conn *c, const char *p, size_t n, int kind)
{
    unsigned gen = c->gen;
    c->st.msgs_in++;
    /* after close() (ours or the server's) no message reaches the script, as
     * Workerman's close() stops receiving */
    if (c->ev->on_message && c->status != MW_ST_CLOSING) c->ev->on_message(c->ud, p, n, kind);
    return mw_conn_interrupted(c, gen);
}

unsigned mw_conn_session(const mw_conn *c) { return c->gen; }
int mw_conn_delivery_stopped(const mw_conn *c, unsigned session)
{
    return mw_conn_interrupted(c, session) || c->status == MW_ST_CLOSING;
}

size_t mw_conn_emit_messages(mw_conn *c, const mw_msg *v, size_t n)
{
    if (c->ev->on_messages) {
        /* those not taken stay in the input, to be counted when they are */
        size_t got = c->ev->on_messages(c->ud, v, n);
        c->st.msgs_in += got;
        return got;
    }
    for (size_t i = 0; i < n; i++)
        if (mw_conn_emit_message(c, v[i].p, v[i].n, v[i].kind)) return i + 1;
    return n;
}

/* ---- addresses ---- */

int mw_conn_remote(const mw_conn *c, char *ip, size_t cap, int *port) { return mw_net_remote(&c->net, ip, cap, port); }
int mw_conn_local(const mw_conn *c, char *ip, size_t cap, int *port) { return mw_net_local(&c->net, ip, cap, port); }
int mw_conn_family(const mw_conn *c) { return mw_net_family(&c->net); }

/* ---- accessors ---- */

unsigned long mw_conn_id(const mw_conn *c) { return c->id; }
void *mw_conn_ud(const mw_conn *c) { return c->ud; }
void mw_conn_set_ud(mw_conn *c, void *ud) { c->ud = ud; }
int mw_conn_status(const mw_conn *c) { return c->status; }
const char *mw_conn_proto_error(const mw_conn *c) { return c->proto_err; }
mw_conn_opts *mw_conn_options(mw_conn *c) { return &c->opt; }
size_t mw_conn_recv_queued(const mw_conn *c) { return c->in.len; }
size_t mw_conn_send_queued(const mw_conn *c) { return mw_conn_queued(c); }
int mw_conn_buffer_full(const mw_conn *c) { return mw_conn_queued(c) >= c->opt.max_send_buffer; }
int mw_conn_reconnect_pending(const mw_conn *c) { return mw_timer_active(&c->reconnect_timer); }
const char *mw_conn_current_url(const mw_conn *c) { return c->url_str; }
int mw_conn_current_scheme(const mw_conn *c) { return c->url.scheme; }

void mw_conn_bytes(const mw_conn *c, uint64_t *read, uint64_t *written)
{
    *read = c->bytes_read;
    *written = c->bytes_written;
}

int mw_conn_live(const mw_conn *c)
{
    return c->status == MW_ST_CONNECTING || c->status == MW_ST_ESTABLISHED ||
           mw_timer_active(&c->reconnect_timer);
}

/* ---- counters (conn:stats()) ---- */

void mw_conn_get_stats(const mw_conn *c, mw_conn_stats *st)
{
    *st = c->st;
    st->bytes_in = c->bytes_read;
    st->bytes_out = c->bytes_written;
    if (c->st.up_since > 0) st->up_total += mw_monotonic() - c->st.up_since;
}

void mw_conn_count_close(mw_conn *c, int code)
{
    for (int i = 0; i < c->st.ncodes; i++)
        if (c->st.codes[i].code == code) { c->st.codes[i].n++; return; }
    if (c->st.ncodes == MW_STATS_CODES) { c->st.codes_other++; return; }
    c->st.codes[c->st.ncodes].code = code;
    c->st.codes[c->st.ncodes++].n = 1;
}

void mw_conn_count_rtt(mw_conn *c, double rtt)
{
    c->st.rtt_last = rtt;
    /* smoothed as TCP's SRTT (RFC 6298): 7/8 old, 1/8 new */
    c->st.rtt_smooth = c->st.rtt_smooth > 0 ? c->st.rtt_smooth * 0.875 + rtt * 0.125 : rtt;
}
