/* ws_utf8: incremental UTF-8 validation (RFC 3629 well-formed sequences only).
 * Knows nothing of frames, sockets or Lua; bytes in, verdict out. */
#ifndef WS_UTF8_H
#define WS_UTF8_H
#include <stddef.h>
#include <stdint.h>

/* The validator state is one small integer: WS_UTF8_ACCEPT between code
 * points, WS_UTF8_REJECT once invalid (sticky), anything else mid-sequence. */
enum { WS_UTF8_ACCEPT = 0, WS_UTF8_REJECT = 1 };

/* Advance *state over p[0..n). Returns the number of bytes that were
 * consumed before the state became WS_UTF8_REJECT (that is, the offset of the
 * first invalid byte), or n if no invalid byte was seen. A state that is
 * neither ACCEPT nor REJECT afterwards means a code point is still open. */
size_t ws_utf8_feed(uint8_t *state, const void *p, size_t n);

/* Whole-buffer check. Returns 1 if p[0..n) is complete, valid UTF-8, else 0. */
int ws_utf8_valid(const void *p, size_t n);
#endif
