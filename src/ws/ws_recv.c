/* ws_recv: what the client reads after the 101: frames, messages, control frames, the close.
 * Knows no socket, loop, TLS or Lua, nor how frames are written or the response head judged. */
#include "ws_client_int.h"
#include "ws_utf8.h"
#include <string.h>

/* After a message larger than this, give the reassembly memory back. */
#define WS_MSG_KEEP (1u << 20)
/* Largest reassembly reservation made on a frame header's word alone. */
#define WS_PREALLOC_MAX (16u << 20)

static unsigned long long ull(uint64_t v) { return (unsigned long long)v; }

/* Check a received frame header against RFC 6455 5.2-5.5 and the message
 * in progress. Returns 0 or a failure (already reported). */
static int check_header(ws_client *ws, const ws_frame_hdr *h, mw_buf *out)
{
    if (h->rsv) {
        /* permessage-deflate owns RSV1 on the first frame of a data message
         * (RFC 7692 6); nothing owns RSV2 or RSV3. */
        if (!ws->pmd.agreed || (h->rsv & 3))
            return ws_fail(ws, out, WS_E_RSV, 1002,
                           "protocol error: reserved bits set without extension");
        if (h->opcode & 8)
            return ws_fail(ws, out, WS_E_RSV, 1002, "protocol error: RSV1 set on a control frame");
        if (h->opcode == WS_OP_CONT)
            return ws_fail(ws, out, WS_E_RSV, 1002, "protocol error: RSV1 set on a continuation frame");
    }
    if ((h->opcode >= 3 && h->opcode <= 7) || h->opcode >= 11)
        return ws_fail(ws, out, WS_E_OPCODE, 1002, "protocol error: reserved opcode %d",
                       (int)h->opcode);
    if (h->masked)
        return ws_fail(ws, out, WS_E_MASKED, 1002, "protocol error: masked frame from server");
    if (h->opcode & 8) {
        if (!h->fin)
            return ws_fail(ws, out, WS_E_CONTROL_FRAG, 1002,
                           "protocol error: fragmented control frame");
        if (h->len > WS_CONTROL_MAX)
            return ws_fail(ws, out, WS_E_CONTROL_LEN, 1002,
                           "protocol error: control frame payload of %llu bytes (max 125)",
                           ull(h->len));
        return 0;
    }
    if (h->opcode == WS_OP_CONT && !ws->msg_op)
        return ws_fail(ws, out, WS_E_CONTINUATION, 1002,
                       "protocol error: continuation frame without a message to continue");
    if (h->opcode != WS_OP_CONT && ws->msg_op)
        return ws_fail(ws, out, WS_E_FRAGMENT, 1002,
                       "protocol error: new data frame inside a fragmented message");
    /* A compressed message is judged on what it inflates to, as it inflates
     * (its compressed bytes are never held, so they are not limited). */
    if (h->opcode == WS_OP_CONT ? ws->msg_z : (h->rsv & 4) != 0) return 0;
    uint64_t so_far = h->opcode == WS_OP_CONT ? ws->msg_len : 0;
    uint64_t max = ws->cfg.max_message;
    if (max && (h->len > max || so_far > max - h->len))
        return ws_fail(ws, out, WS_E_TOO_BIG, 1009,
                       "message exceeds maxPackageSize (%llu bytes)", ull(max));
    return 0;
}

/* A text message is not UTF-8: at byte `at` (1-based, in the message), or
 * 0 when it ends inside a code point. Out of line: a failure path, kept out
 * of the receive loop the helpers below are inlined into. */
static __attribute__((noinline)) int bad_text(ws_client *ws, mw_buf *out, size_t at)
{
    if (!at) return ws_fail(ws, out, WS_E_UTF8, 1007, "invalid UTF-8 in text message (truncated at the end)");
    return ws_fail(ws, out, WS_E_UTF8, 1007, "invalid UTF-8 in text message (byte %zu)", at);
}

/* The one UTF-8 check of received text, whichever path the bytes take (whole
 * in the caller's bytes, deferred, reassembled), so the same bytes fail with
 * the same words however they were split. Judges p[0..n), which follow `at`
 * bytes of the same message already judged into *st; `end`: the message ends
 * with them, so it must not stop inside a code point. Inline: the whole-frame
 * path runs it once per text message. Returns 0 or the failure. */
static inline int text_check(ws_client *ws, mw_buf *out, uint8_t *st, size_t at,
                             const char *p, size_t n, int end)
{
    size_t ok = ws_utf8_feed(st, p, n);
    /* One test on the way through; which failure it is only once it failed. */
    if (*st != WS_UTF8_ACCEPT && (end || *st == WS_UTF8_REJECT))
        return bad_text(ws, out, *st == WS_UTF8_REJECT ? at + ok + 1 : 0);
    return 0;
}

/* Text of an unfragmented frame in the caller's bytes p[0..n): resumed after
 * the bytes judged while the frame was deferred (a count above n is not about
 * these bytes). end: the whole frame is here; else it is deferred again and
 * the verdict so far is kept for the next call. */
static inline int frame_text(ws_client *ws, mw_buf *out, const char *p, size_t n, int end)
{
    size_t from = ws->defer_checked <= n ? ws->defer_checked : 0;
    uint8_t st = from ? ws->defer_utf8 : WS_UTF8_ACCEPT;
    int e = text_check(ws, out, &st, from, p + from, n - from, end);
    if (e) return e;
    if (!end) {
        ws->defer_utf8 = st;
        ws->defer_checked = n;
    }
    return 0;
}

/* ---- compressed messages -------------------------------------------------- */

typedef struct zcheck {
    ws_client *ws;
    size_t bad_at;      /* 1-based offset of the first bad byte, 0 if none */
} zcheck;

/* Inflated text is judged piece by piece as it comes out of zlib, so a
 * bad byte stops the inflating there. */
static int zcheck_text(void *ud, const char *p, size_t n)
{
    zcheck *c = ud;
    ws_client *ws = c->ws;
    size_t ok = ws_utf8_feed(&ws->msg_utf8, p, n);
    if (ws->msg_utf8 != WS_UTF8_REJECT) return 0;
    c->bad_at = ws->msg.len - n + ok + 1;
    return 1;
}

/* Inflate p[0..n) of the compressed message being received into ws->msg;
 * last: it ends with them (then the text must not stop inside a code point).
 * Returns 0 or the failure (reported). */
static int zfeed(ws_client *ws, mw_buf *out, const char *p, size_t n, int last)
{
    zcheck c = { ws, 0 };
    int text = ws->msg_op == WS_OP_TEXT;
    int e = ws_inflater_feed(&ws->rx, p, n, last, ws->cfg.max_message, &ws->msg,
                             text ? zcheck_text : NULL, &c);
    switch (e) {
    case WS_Z_OK:
        break;
    case WS_Z_STOPPED:
        return bad_text(ws, out, c.bad_at);
    case WS_Z_LIMIT:
        return ws_fail(ws, out, WS_E_TOO_BIG, 1009, "message exceeds maxPackageSize (%llu bytes) when inflated",
                       ull(ws->cfg.max_message));
    case WS_Z_CORRUPT:
        return ws_fail(ws, out, WS_E_INFLATE, 1007, "invalid compressed data in a message: %s", ws->rx.why);
    default:
        return ws_fail(ws, out, WS_E_NOMEM, 1011, "out of memory inflating a message");
    }
    if (last && text && ws->msg_utf8 != WS_UTF8_ACCEPT) return bad_text(ws, out, 0);
    return 0;
}

static int deliver(ws_client *ws, int op, const char *p, size_t n)
{
    if (!ws->cfg.ev.on_message) return 0;
    return ws->cfg.ev.on_message(ws->cfg.ev.ud, op == WS_OP_TEXT, p, n);
}

/* The message assembled (or inflated) in ws->msg is complete: deliver it
 * and make ready for the next. Returns the callback's flags. */
static int message_end(ws_client *ws)
{
    int op = ws->msg_op;
    ws->msg_op = 0;
    ws->msg_len = 0;
    ws->msg_z = 0;
    /* An empty message may never have allocated: no NULL + 0. */
    int rc = deliver(ws, op, ws->msg.data ? mw_buf_head(&ws->msg) : "", ws->msg.len);
    mw_buf_clear(&ws->msg);
    mw_buf_shrink(&ws->msg, WS_MSG_KEEP);
    return rc;
}

/* A complete control frame in ws->ctl. Returns callback flags (>= 0) or a
 * failure. */
static int control(ws_client *ws, mw_buf *out)
{
    const char *p = (const char *)ws->ctl;
    size_t n = ws->ctl_len;
    void *ud = ws->cfg.ev.ud;
    int rc = 0;
    switch (ws->hdr.opcode) {
    case WS_OP_PING:
        if (ws->cfg.ev.on_ping) rc = ws->cfg.ev.on_ping(ud, p, n);
        /* The callback may have sent a close (or failed nothing: failing is
         * ours alone), so look again before answering. */
        if (!(rc & WS_CB_NO_PONG) && !ws->close_sent && ws->state == WS_STATE_OPEN) {
            int e = ws_put_frame(ws, out, WS_OP_PONG, p, n, NULL, 0);
            if (e) return ws_fail(ws, NULL, e, 0, "cannot queue pong: %s", ws_strerror(e));
        }
        return rc & WS_CB_STOP;
    case WS_OP_PONG:
        return ws->cfg.ev.on_pong ? ws->cfg.ev.on_pong(ud, p, n) : 0;
    default: { /* WS_OP_CLOSE */
        int code = 1005;
        if (n == 1)
            return ws_fail(ws, out, WS_E_CLOSE_LEN, 1002,
                           "protocol error: close frame with a 1-byte payload");
        if (n >= 2) {
            code = (unsigned char)p[0] << 8 | (unsigned char)p[1];
            if (!ws_close_code_valid((unsigned)code))
                return ws_fail(ws, out, WS_E_CLOSE_CODE, 1002,
                               "protocol error: invalid close code %d", code);
            if (!ws_utf8_valid(p + 2, n - 2))
                return ws_fail(ws, out, WS_E_CLOSE_UTF8, 1007,
                               "invalid UTF-8 in close reason");
        }
        ws->close_rcvd = 1;
        if (!ws->close_sent) {
            /* Echo the status code (RFC 6455 5.5.1); no status, no body. */
            int e = ws_put_close(ws, out, n >= 2 ? code : 0, NULL, 0);
            if (e) return ws_fail(ws, NULL, e, 0, "cannot queue close: %s", ws_strerror(e));
            ws->close_sent = 1;
        }
        ws->state = WS_STATE_CLOSED;
        mw_buf_free(&ws->msg);
        ws_pmd_release(ws);
        if (ws->cfg.ev.on_close)
            ws->cfg.ev.on_close(ud, code, n > 2 ? p + 2 : "", n > 2 ? n - 2 : 0);
        return 0;
    }
    }
}

long ws_client_take(ws_client *ws, const char *data, size_t len,
                    const char **p, size_t *n, int *is_text)
{
    if (!ws->started || (ws->state != WS_STATE_OPEN && ws->state != WS_STATE_CLOSING)) return 0;
    if (ws->close_rcvd || ws->in_payload || ws->msg_op) return 0;
    ws_frame_hdr h;
    int hn = ws_frame_parse(data, len, &h);
    if (hn <= 0 || !h.fin || h.rsv || h.masked) return 0;
    if (h.opcode != WS_OP_TEXT && h.opcode != WS_OP_BINARY) return 0;
    if (h.len > len - (size_t)hn || (ws->cfg.max_message && h.len > ws->cfg.max_message)) return 0;
    const char *q = data + hn;
    if (h.opcode == WS_OP_TEXT && !ws_utf8_valid(q, (size_t)h.len)) return 0;
    ws->defer_checked = 0;   /* that was this frame's: it is checked whole above */
    *p = q;
    *n = (size_t)h.len;
    *is_text = h.opcode == WS_OP_TEXT;
    return (long)hn + (long)h.len;
}

long ws_client_feed(ws_client *ws, const char *data, size_t len, mw_buf *out)
{
    if (!ws->started) return WS_E_STATE;
    if (ws->state == WS_STATE_FAILED) return ws->err;
    if (ws->close_rcvd) return (long)len;
    ws->want = 0;
    if (len == 0) return 0;
    size_t pos = 0;
    if (ws->state == WS_STATE_HANDSHAKE) {
        int cb = 0;
        long r = ws_handshake_response(ws, data, len, out, &cb);
        if (r <= 0) return r;
        pos = (size_t)r;
        if (cb) return (long)pos;
    }
    for (;;) {
        int rc = 0;
        if (!ws->in_payload) {
            if (pos == len) break;
            ws_frame_hdr h;
            int hn = ws_frame_parse(data + pos, len - pos, &h);
            if (hn == 0) break;
            if (hn < 0)
                return ws_fail(ws, out, WS_E_LENGTH, 1002,
                               "protocol error: 64-bit frame length with the top bit set");
            int e = check_header(ws, &h, out);
            if (e) return e;
            pos += (size_t)hn;
            ws->hdr = h;
            ws->remaining = h.len;
            if (h.opcode & 8) {
                ws->ctl_len = 0;
            } else if ((h.rsv & 4) && h.fin && len - pos >= h.len) {
                /* A whole compressed message: inflated in one go. */
                ws->msg_op = h.opcode;
                ws->msg_z = 1;
                ws->msg_utf8 = WS_UTF8_ACCEPT;
                size_t n = (size_t)h.len;
                /* An empty payload: an empty message (RFC 7692 writes it
                 * as 00); the stream is not touched. */
                int e = n ? zfeed(ws, out, data + pos, n, 1) : 0;
                if (e) return e;
                pos += n;
                rc = message_end(ws);
                goto after_callback;
            } else if (h.opcode != WS_OP_CONT && h.fin && len - pos >= h.len) {
                /* Whole unfragmented message in the caller's bytes: no copy.
                 * A frame deferred earlier is checked on from where it was. */
                const char *p = data + pos;
                size_t n = (size_t)h.len;
                if (h.opcode == WS_OP_TEXT) {
                    int e = frame_text(ws, out, p, n, 1);
                    if (e) return e;
                }
                ws->defer_checked = 0;
                pos += n;
                rc = deliver(ws, h.opcode, p, n);
                goto after_callback;
            } else if (h.opcode != WS_OP_CONT && h.fin && h.len <= ws->cfg.defer_max && !(h.rsv & 4)) {
                /* Not all here yet: leave the frame to the caller, who makes
                 * room for it, and judge the text that has come so far. */
                const char *p = data + pos;
                size_t avail = len - pos;
                if (h.opcode == WS_OP_TEXT) {
                    int e = frame_text(ws, out, p, avail, 0);
                    if (e) return e;
                }
                ws->want = (size_t)hn + (size_t)h.len;
                return (long)(pos - (size_t)hn);
            } else {
                if (h.opcode != WS_OP_CONT) {
                    ws->msg_op = h.opcode;
                    ws->msg_len = 0;
                    ws->msg_utf8 = WS_UTF8_ACCEPT;
                    ws->msg_z = (h.rsv & 4) != 0;
                }
                ws->msg_len += h.len;   /* compressed: counted, not limited */
                if (!ws->msg_z) {
                    /* Room for the announced frame in one step, bounded so a
                     * header alone cannot make us reserve much. */
                    uint64_t want = ws->msg.len + h.len;
                    if (h.len > ws->msg.cap - ws->msg.off - ws->msg.len && want <= WS_PREALLOC_MAX)
                        mw_buf_reserve(&ws->msg, (size_t)h.len);
                }
            }
            ws->in_payload = 1;
        }
        /* Payload of ws->hdr: take what is here. */
        size_t avail = len - pos;
        size_t take = ws->remaining < avail ? (size_t)ws->remaining : avail;
        if (take) {
            const char *p = data + pos;
            if (ws->hdr.opcode & 8) {
                memcpy(ws->ctl + ws->ctl_len, p, take);
                ws->ctl_len += take;
            } else if (ws->msg_z) {
                int e = zfeed(ws, out, p, take, 0);
                if (e) return e;
            } else {
                if (ws->msg_op == WS_OP_TEXT) {
                    /* Judge each byte as it arrives, not at the end. */
                    int e = text_check(ws, out, &ws->msg_utf8, ws->msg.len, p, take, 0);
                    if (e) return e;
                }
                if (mw_buf_append(&ws->msg, p, take) != 0)
                    return ws_fail(ws, out, WS_E_NOMEM, 1011, "out of memory assembling a message");
            }
            pos += take;
            ws->remaining -= take;
        }
        if (ws->remaining) break;   /* all of data consumed */
        ws->in_payload = 0;
        if (ws->hdr.opcode & 8) {
            rc = control(ws, out);
            if (rc < 0) return rc;
            if (ws->close_rcvd) return (long)len;  /* nothing after a close is read */
        } else if (ws->hdr.fin) {
            if (ws->msg_z) {
                int e = ws->msg_len ? zfeed(ws, out, NULL, 0, 1) : 0;
                if (e) return e;
            } else if (ws->msg_op == WS_OP_TEXT) {
                int e = text_check(ws, out, &ws->msg_utf8, ws->msg.len, "", 0, 1);
                if (e) return e;
            }
            rc = message_end(ws);
        }
    after_callback:
        if (ws->state == WS_STATE_FAILED) return ws->err;
        if (rc) break;
    }
    return (long)pos;
}

