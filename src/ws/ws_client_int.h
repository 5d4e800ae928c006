/* ws_client_int: what the ws_client files share behind ws_client.h (random, writer, failure).
 * Private to src/ws/; knows no socket, loop, TLS or Lua. */
#ifndef WS_CLIENT_INT_H
#define WS_CLIENT_INT_H
#include "ws_client.h"

/* The calls go one way, so no two files call each other:
 *   ws_recv.c -> ws_handshake.c -> ws_send.c -> ws_client.c
 * (ws_recv.c also calls ws_send.c and ws_client.c directly). The receive hot
 * path (frame header, UTF-8, delivery) stays inside ws_recv.c; only the
 * handshake, control-frame replies and failures cross a file. */

/* ws_client.c: n random bytes from cfg.random, else mw_random (wolfCrypt).
 * Returns 0, or -1 when the source failed. */
int ws_random(ws_client *ws, void *out, size_t n);

/* ws_client.c: free both directions' zlib state and the compression
 * scratch buffer (the agreement stays). */
void ws_pmd_release(ws_client *ws);

/* ws_put_frame: OR into opcode to set RSV1 (a compressed message). */
#define WS_PUT_RSV1 0x100

/* ws_send.c: one masked frame (fresh mask key) of payload a[0..an) followed
 * by b[0..bn) onto out. Returns 0, WS_E_RANDOM or WS_E_NOMEM; on error
 * nothing is written. */
int ws_put_frame(ws_client *ws, mw_buf *out, int opcode,
                 const void *a, size_t an, const void *b, size_t bn);

/* ws_send.c: a close frame onto out; code 0: no status and no reason.
 * Returns as ws_put_frame. */
int ws_put_close(ws_client *ws, mw_buf *out, int code, const char *reason, size_t n);

/* ws_send.c: fail the connection (RFC 6455 7.1.7): append a close frame with
 * `code` to out (if code and out are nonzero and no close was sent yet), enter
 * FAILED, drop the buffers, call on_fail with the formatted message. Returns
 * err for the caller to return. */
int ws_fail(ws_client *ws, mw_buf *out, int err, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ws_send.c: after the 101, append the frames queued before it to out and
 * free the queue. Returns 0, or WS_E_NOMEM with the queue kept. */
int ws_flush_pending(ws_client *ws, mw_buf *out);

/* ws_handshake.c: judge the response head in data[0..len). Returns the head
 * length when the 101 was accepted (the pending frames are then in out and
 * on_open has run, its result in *cb), 0 when more bytes are needed, or a
 * negative error (already reported through ws_fail). */
long ws_handshake_response(ws_client *ws, const char *data, size_t len, mw_buf *out, int *cb);
#endif
