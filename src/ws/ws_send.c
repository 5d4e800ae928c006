/* ws_send: what the client writes after its request: masked frames, the queue before the 101.
 * Knows no socket, loop, TLS or Lua, and nothing of received bytes or of the handshake. */
#include "ws_client_int.h"
#include "ws_utf8.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Mask keys come from a pooled block so a stream of small frames does not
 * call into the RNG once per frame. */
static int mask_key(ws_client *ws, uint8_t key[4])
{
    if (ws->rnd_pos + 4 > sizeof ws->rnd) {
        if (ws_random(ws, ws->rnd, sizeof ws->rnd) != 0) return -1;
        ws->rnd_pos = 0;
    }
    memcpy(key, ws->rnd + ws->rnd_pos, 4);
    ws->rnd_pos += 4;
    return 0;
}

int ws_put_frame(ws_client *ws, mw_buf *out, int opcode,
                 const void *a, size_t an, const void *b, size_t bn)
{
    uint8_t key[4];
    unsigned char hdr[WS_FRAME_MAX_HEADER];
    if (mask_key(ws, key) != 0) return WS_E_RANDOM;
    size_t n = an + bn;
    size_t hn = ws_frame_encode(hdr, 1, opcode & 0xf, n, key);
    if (opcode & WS_PUT_RSV1) hdr[0] |= 0x40;
    if (n > (size_t)-1 - hn) return WS_E_NOMEM;
    char *dst = mw_buf_reserve(out, hn + n);
    if (!dst) return WS_E_NOMEM;
    memcpy(dst, hdr, hn);
    if (an) memcpy(dst + hn, a, an);
    if (bn) memcpy(dst + hn + an, b, bn);
    ws_mask(dst + hn, n, key, 0);
    mw_buf_commit(out, hn + n);
    return 0;
}

int ws_put_close(ws_client *ws, mw_buf *out, int code, const char *reason, size_t n)
{
    unsigned char c[2] = { (unsigned char)(code >> 8), (unsigned char)code };
    return code ? ws_put_frame(ws, out, WS_OP_CLOSE, c, 2, reason, n)
                : ws_put_frame(ws, out, WS_OP_CLOSE, NULL, 0, NULL, 0);
}

/* Failing is on this side because its one effect on the wire is a close frame. */
int ws_fail(ws_client *ws, mw_buf *out, int err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ws->errmsg, sizeof ws->errmsg, fmt, ap);
    va_end(ap);
    ws->fail_code = 0;
    if (code && !ws->close_sent && out && ws_put_close(ws, out, code, NULL, 0) == 0) {
        ws->close_sent = 1;
        ws->fail_code = code;
    }
    ws->state = WS_STATE_FAILED;
    ws->err = err;
    mw_buf_free(&ws->msg);
    /* a refusal keeps what waited for the 101: a redirect sends it again */
    if (err != WS_E_HS_STATUS) mw_buf_free(&ws->pending);
    ws_pmd_release(ws);
    if (ws->cfg.ev.on_fail) ws->cfg.ev.on_fail(ws->cfg.ev.ud, err, ws->errmsg);
    return err;
}

/* The 101 arrived: what was sent before it goes out first, in order, and
 * the queue's memory is given back. */
int ws_flush_pending(ws_client *ws, mw_buf *out)
{
    if (ws->pending.len && !out->len) {
        /* the usual case: nothing else waits, so the queue becomes the output */
        mw_buf t = *out;
        *out = ws->pending;
        ws->pending = t;
    } else if (ws->pending.len &&
        mw_buf_append(out, mw_buf_head(&ws->pending), ws->pending.len) != 0)
        return WS_E_NOMEM;
    mw_buf_free(&ws->pending);
    return 0;
}

/* ---- the public send calls ----------------------------------------------- */

/* After a compressed message, a scratch buffer larger than this is given back. */
#define WS_ZTX_KEEP (1u << 20)

/* A data message compressed into one RSV1 frame. Returns 0, 1 when it is
 * better sent as it is, or an error (nothing written). */
static int send_compressed(ws_client *ws, int opcode, const char *data, size_t len, mw_buf *out)
{
    mw_buf_clear(&ws->ztx);
    int e = ws_deflater_message(&ws->tx, data, len, &ws->ztx) ? WS_E_NOMEM : 0;
    /* Without context takeover each message is its own stream: one that
     * grew can go out uncompressed instead. */
    if (!e && ws->tx.no_takeover && ws->ztx.len >= len) e = 1;
    if (!e) e = ws_put_frame(ws, out, opcode | WS_PUT_RSV1, mw_buf_head(&ws->ztx), ws->ztx.len, NULL, 0);
    if (e < 0) {
        /* The compressor took a message the server will not see: a fresh
         * stream never refers back to it, so the server's context stays right. */
        ws_deflater_release(&ws->tx);
    }
    mw_buf_clear(&ws->ztx);
    mw_buf_shrink(&ws->ztx, WS_ZTX_KEEP);
    return e;
}

int ws_client_send(ws_client *ws, int opcode, const char *data, size_t len, mw_buf *out)
{
    if (ws->close_sent || ws->state == WS_STATE_FAILED) return WS_E_CLOSED;
    if (opcode != WS_OP_TEXT && opcode != WS_OP_BINARY &&
        opcode != WS_OP_PING && opcode != WS_OP_PONG)
        return WS_E_BAD_OPCODE;
    if ((opcode & 8) && len > WS_CONTROL_MAX) return WS_E_SEND_CONTROL;
    if (opcode == WS_OP_TEXT && !ws_utf8_valid(data, len)) return WS_E_SEND_UTF8;
    mw_buf *dst = ws->state == WS_STATE_HANDSHAKE ? &ws->pending : out;
    if (ws->pmd.agreed && dst == out && !(opcode & 8) && ws->pmd.client_max_window_bits > 8 &&
        len && len >= (ws->cfg.deflate.threshold ? ws->cfg.deflate.threshold : WS_DEFLATE_THRESHOLD_DEFAULT)) {
        int e = send_compressed(ws, opcode, data, len, out);
        if (e <= 0) return e;
    }
    return ws_put_frame(ws, dst, opcode, data, len, NULL, 0);
}

int ws_client_send_raw(ws_client *ws, const char *data, size_t len, mw_buf *out)
{
    if (ws->close_sent || ws->state == WS_STATE_FAILED) return WS_E_CLOSED;
    mw_buf *dst = ws->state == WS_STATE_HANDSHAKE ? &ws->pending : out;
    return mw_buf_append(dst, data, len) ? WS_E_NOMEM : 0;
}

int ws_client_close(ws_client *ws, int code, const char *reason, size_t n, mw_buf *out)
{
    if (!ws->started || ws->state == WS_STATE_HANDSHAKE) return WS_E_STATE;
    if (ws->close_sent || ws->state == WS_STATE_FAILED) return WS_E_CLOSED;
    if (code == 0 ? n != 0 : !ws_close_code_valid((unsigned)code)) return WS_E_BAD_CODE;
    if (n > WS_CONTROL_MAX - 2 || !ws_utf8_valid(reason, n)) return WS_E_BAD_REASON;
    int e = ws_put_close(ws, out, code, reason, n);
    if (e) return e;
    ws->close_sent = 1;
    ws->state = ws->close_rcvd ? WS_STATE_CLOSED : WS_STATE_CLOSING;
    return 0;
}
