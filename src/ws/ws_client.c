/* ws_client: the client's lifecycle (init, free, state queries), error words, random source.
 * Knows no socket, loop, TLS or Lua, and no wire bytes: ws_handshake/recv/send.c hold those. */
#include "ws_client_int.h"
#include "../crypto.h"
#include <stdlib.h>
#include <string.h>

const char *ws_strerror(int err)
{
    switch (err) {
    case WS_OK: return "success";
    case WS_E_NOMEM: return "out of memory";
    case WS_E_RANDOM: return "random source failed";
    case WS_E_HS_STATUS: return "handshake: status not 101";
    case WS_E_HS_MALFORMED: return "handshake: malformed HTTP response";
    case WS_E_HS_TOO_LARGE: return "handshake: response head too large";
    case WS_E_HS_UPGRADE: return "handshake: missing or wrong Upgrade";
    case WS_E_HS_CONNECTION: return "handshake: missing Connection: upgrade";
    case WS_E_HS_ACCEPT: return "handshake: invalid Sec-WebSocket-Accept";
    case WS_E_HS_EXTENSION: return "handshake: extension not offered";
    case WS_E_HS_PROTOCOL: return "handshake: subprotocol not offered";
    case WS_E_HS_EXT_SYNTAX: return "handshake: malformed Sec-WebSocket-Extensions";
    case WS_E_HS_EXT_PARAM: return "handshake: permessage-deflate parameter refused";
    case WS_E_HS_EXT_DUPLICATE: return "handshake: permessage-deflate answered twice";
    case WS_E_RSV: return "protocol: reserved bits set";
    case WS_E_OPCODE: return "protocol: reserved opcode";
    case WS_E_CONTROL_LEN: return "protocol: control frame too long";
    case WS_E_CONTROL_FRAG: return "protocol: fragmented control frame";
    case WS_E_MASKED: return "protocol: masked frame from server";
    case WS_E_LENGTH: return "protocol: invalid frame length";
    case WS_E_CONTINUATION: return "protocol: unexpected continuation frame";
    case WS_E_FRAGMENT: return "protocol: data frame inside fragmented message";
    case WS_E_UTF8: return "protocol: invalid UTF-8 in text message";
    case WS_E_TOO_BIG: return "protocol: message too big";
    case WS_E_CLOSE_CODE: return "protocol: invalid close code";
    case WS_E_CLOSE_LEN: return "protocol: invalid close payload";
    case WS_E_CLOSE_UTF8: return "protocol: invalid UTF-8 in close reason";
    case WS_E_INFLATE: return "protocol: invalid compressed data";
    case WS_E_STATE: return "usage: not allowed in this state";
    case WS_E_CLOSED: return "usage: connection closing or failed";
    case WS_E_HEADER: return "usage: invalid request header";
    case WS_E_SEND_UTF8: return "usage: text is not valid UTF-8";
    case WS_E_SEND_CONTROL: return "usage: control payload over 125 bytes";
    case WS_E_BAD_OPCODE: return "usage: invalid opcode";
    case WS_E_BAD_CODE: return "usage: invalid close code";
    case WS_E_BAD_REASON: return "usage: invalid close reason";
    case WS_E_BAD_OPTION: return "usage: invalid permessage-deflate option";
    }
    return "unknown error";
}

int ws_client_init(ws_client *ws, const ws_config *cfg)
{
    memset(ws, 0, sizeof *ws);
    if (cfg) ws->cfg = *cfg;
    mw_buf_init(&ws->pending);
    mw_buf_init(&ws->msg);
    mw_buf_init(&ws->ztx);
    ws->rnd_pos = sizeof ws->rnd;   /* pool empty */
    ws->state = WS_STATE_HANDSHAKE;
    return 0;
}

int ws_client_configure(ws_client *ws, const ws_config *cfg)
{
    if (ws->started) return WS_E_STATE;
    ws->cfg = *cfg;
    return 0;
}

void ws_client_free(ws_client *ws)
{
    mw_buf_free(&ws->pending);
    mw_buf_free(&ws->msg);
    ws_pmd_release(ws);
    free(ws->protocols);
    free(ws->location);
    ws_client_init(ws, NULL);
}

int ws_client_state(const ws_client *ws) { return ws->state; }
int ws_client_fail_code(const ws_client *ws) { return ws->fail_code; }
int ws_client_error(const ws_client *ws) { return ws->err; }
const char *ws_client_location(const ws_client *ws) { return ws->location; }
size_t ws_client_unsent(const ws_client *ws, const char **p)
{
    *p = mw_buf_head(&ws->pending);
    return ws->pending.len;
}
int ws_client_refusal(const ws_client *ws, long *retry_after)
{
    *retry_after = ws->refused_status ? ws->retry_after : -1;
    return ws->refused_status;
}
const char *ws_client_fail_message(const ws_client *ws) { return ws->errmsg; }
size_t ws_client_buffered(const ws_client *ws) { return ws->msg.len; }
size_t ws_client_queued(const ws_client *ws) { return ws->pending.len; }

size_t ws_client_want(const ws_client *ws) { return ws->want; }

/* ---- permessage-deflate state ----------------------------------------------- */

const ws_deflate_params *ws_client_deflate(const ws_client *ws)
{
    return ws->pmd.agreed ? &ws->pmd : NULL;
}

int ws_client_extensions(const ws_client *ws, char *out, size_t cap)
{
    return ws_ext_format(&ws->pmd, out, cap);
}

const ws_zcount *ws_client_zcount(const ws_client *ws) { return &ws->zc; }

void ws_pmd_release(ws_client *ws)
{
    ws_deflater_release(&ws->tx);
    ws_inflater_release(&ws->rx);
    mw_buf_free(&ws->ztx);
}

size_t ws_client_trim(ws_client *ws)
{
    /* Sends are whole messages, so the compressor is always between two. */
    if (ws->tx.no_takeover) ws_deflater_release(&ws->tx);
    if (ws->rx.no_takeover && !(ws->msg_op && ws->msg_z)) ws_inflater_release(&ws->rx);
    mw_buf_free(&ws->ztx);
    return ws->zc.bytes;
}

/* ---- randomness --------------------------------------------------------- */

int ws_random(ws_client *ws, void *out, size_t n)
{
    if (ws->cfg.random) return ws->cfg.random(ws->cfg.random_ud, out, n) ? -1 : 0;
    return mw_random(out, n);
}
