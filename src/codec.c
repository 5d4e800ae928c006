/* codec: text and frame decoders, sans-I/O.
 * Knows nothing of sockets, connections or Lua. */
#include "codec.h"
#include <string.h>

int mw_text_decode(const char *p, size_t n, size_t max, mw_decoded *out)
{
    memset(out, 0, sizeof *out);
    const char *nl = n ? memchr(p, '\n', n) : NULL;
    if (!nl) {
        out->len = n;
        out->need = n + 1;
        return n > max ? MW_DEC_TOO_LARGE : MW_DEC_NEED;
    }
    size_t total = (size_t)(nl - p) + 1, len = total - 1;
    out->len = len;
    if (len > max) return MW_DEC_TOO_LARGE;
    out->len = mw_text_trim(p, len);
    out->consumed = total;
    return MW_DEC_MESSAGE;
}

size_t mw_text_trim(const char *p, size_t n)
{
    while (n && (p[n - 1] == '\r' || p[n - 1] == '\n')) n--;
    return n;
}

int mw_frame_decode(const char *p, size_t n, size_t max, mw_decoded *out)
{
    memset(out, 0, sizeof *out);
    if (n < 4) { out->need = 4; return MW_DEC_NEED; }
    const unsigned char *h = (const unsigned char *)p;
    size_t total = ((size_t)h[0] << 24) | ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
    if (total < 4) { out->len = total; return MW_DEC_INVALID; }
    out->len = total - 4;
    if (total - 4 > max) return MW_DEC_TOO_LARGE;
    if (n < total) { out->need = total; return MW_DEC_NEED; }
    out->off = 4;
    out->consumed = total;
    return MW_DEC_MESSAGE;
}

int mw_frame_header(unsigned char hdr[4], size_t len)
{
    if (len > 0xFFFFFFFFu - 4) return -1;
    size_t total = len + 4;
    hdr[0] = (unsigned char)(total >> 24);
    hdr[1] = (unsigned char)(total >> 16);
    hdr[2] = (unsigned char)(total >> 8);
    hdr[3] = (unsigned char)total;
    return 0;
}
