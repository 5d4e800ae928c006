/* codec: the text (newline-delimited) and frame (4-byte big-endian length,
 * header included, as Workerman's Frame) decoders, sans-I/O: bytes in, one
 * message boundary out. Knows nothing of sockets, connections or Lua. */
#ifndef MW_CODEC_H
#define MW_CODEC_H
#include <stddef.h>
#include "err.h"

/* A decoder returns one of these, or a failure of err.h: MW_DEC_TOO_LARGE
 * (`len` says how large) or MW_DEC_INVALID. */
enum {
    MW_DEC_NEED = 0,        /* not a whole message yet; `need` bytes in all would help */
    MW_DEC_MESSAGE = 1,     /* p[off .. off+len) is a message; drop `consumed` bytes */
};

typedef struct mw_decoded {
    size_t off, len, consumed, need;
} mw_decoded;

/* One line ending in "\n"; trailing "\r" and "\n" are not part of it. A line
 * (or, without its newline yet, the bytes so far) longer than max is
 * MW_DEC_TOO_LARGE. */
int mw_text_decode(const char *p, size_t n, size_t max, mw_decoded *out);

/* The length of p[0..n) without its trailing "\r" and "\n" bytes: a line's
 * text, also of a last line that ends without a newline. */
size_t mw_text_trim(const char *p, size_t n);

/* One frame: 4-byte big-endian total length (header included), then the
 * payload. A payload over max is MW_DEC_TOO_LARGE as soon as the header is
 * in; a total under 4 is MW_DEC_INVALID. */
int mw_frame_decode(const char *p, size_t n, size_t max, mw_decoded *out);

/* Write the 4-byte header for a payload of len bytes; -1 if len does not fit. */
int mw_frame_header(unsigned char hdr[4], size_t len);
#endif
