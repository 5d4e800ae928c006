/* console_proto: the frames between `moonwire attach` and a bot's console
 * (sans-I/O: bytes in, frames out; no socket, loop or Lua). A frame is one
 * kind byte, a 4-byte big-endian payload length, then the payload:
 *
 *   attacher -> bot   'e' eval: a line (of a chunk) to evaluate
 *                     'i' interrupt: stop the chunk running (or drop a pending one)
 *   bot -> attacher   'h' hello: "<pid> <script>" once accepted
 *                     'n' refused: why (then the bot closes)
 *                     'o' output: what the chunk printed (print, io.write)
 *                     'r' result: the chunk ran; its values as text (may be empty)
 *                     'x' error: the chunk failed to compile or raised; the message
 *                     'm' more: the chunk is incomplete, the next 'e' goes on with it
 *
 * Every 'e' gets exactly one of 'r', 'x', 'm' back, in order ('o' before it).
 * A payload is at most MW_CP_MAX bytes. */
#ifndef MW_CONSOLE_PROTO_H
#define MW_CONSOLE_PROTO_H
#include <stddef.h>
#include "buf.h"

#define MW_CP_MAX (1u << 20)
#define MW_CP_HEAD 5

/* Whether k is one of the kinds above. */
int mw_cp_kind_known(int k);
/* Append a frame to out: 0, or -1 (unknown kind, payload over MW_CP_MAX,
 * out of memory; out unchanged). */
int mw_cp_encode(mw_buf *out, int kind, const char *p, size_t n);
/* One frame at p[0..n): its size (> 0) with *kind, *payload (into p) and *plen
 * set; 0 when more bytes are needed; -1 when the bytes are no frame (*why
 * says why: an unknown kind, a length over MW_CP_MAX). */
long mw_cp_parse(const char *p, size_t n, int *kind, const char **payload, size_t *plen, const char **why);
#endif
