/* proto_stream: the tcp (raw), text (newline-delimited) and frame (4-byte
 * big-endian length, header included, as Workerman's Frame) protocols.
 * Knows nothing of Lua or sockets. */
#include "conn.h"
#include <string.h>

/* Raw TCP: every read is one message. */
static void raw_input(mw_conn *c)
{
    size_t n = c->in.len;
    /* Consume before emitting: the callback may append to or clear c->in. */
    const char *p = mw_buf_head(&c->in);
    c->in.len = 0;
    c->in.off = 0;
    mw_conn_emit_message(c, p, n, MW_KIND_NONE);
}

static int raw_send(mw_conn *c, const char *p, size_t n, int kind)
{
    (void)kind;
    if (mw_buf_append(&c->out, p, n)) { strcpy(c->proto_err, "out of memory"); return -1; }
    return 0;
}

static void text_input(mw_conn *c)
{
    unsigned gen = c->gen;
    while (c->in.len) {
        const char *p = mw_buf_head(&c->in);
        const char *nl = memchr(p, '\n', c->in.len);
        if (!nl) {
            if (c->in.len >= c->max_package) {
                mw_conn_fail(c, MW_E_PACKAGE_TOO_LARGE,
                             "read %s: line exceeds maxPackageSize (%zu bytes) without a newline",
                             c->url_str, c->max_package);
            }
            return;
        }
        size_t total = (size_t)(nl - p) + 1, n = total - 1;
        if (n > c->max_package) {
            mw_conn_fail(c, MW_E_PACKAGE_TOO_LARGE, "read %s: line of %zu bytes exceeds maxPackageSize (%zu bytes)",
                         c->url_str, n, c->max_package);
            return;
        }
        while (n && (p[n - 1] == '\r' || p[n - 1] == '\n')) n--;
        mw_buf_consume(&c->in, total);
        /* The message bytes stay valid: consume only moves the offset, and
         * nothing writes to c->in until this callback returns. */
        if (mw_conn_emit_message(c, p, n, MW_KIND_NONE) || c->gen != gen) return;
    }
}

static int text_send(mw_conn *c, const char *p, size_t n, int kind)
{
    (void)kind;
    char *dst = mw_buf_reserve(&c->out, n + 1);
    if (!dst) { strcpy(c->proto_err, "out of memory"); return -1; }
    memcpy(dst, p, n);
    dst[n] = '\n';
    mw_buf_commit(&c->out, n + 1);
    return 0;
}

static void frame_input(mw_conn *c)
{
    unsigned gen = c->gen;
    while (c->in.len >= 4) {
        const unsigned char *h = (const unsigned char *)mw_buf_head(&c->in);
        size_t total = ((size_t)h[0] << 24) | ((size_t)h[1] << 16) | ((size_t)h[2] << 8) | h[3];
        if (total < 4) {
            mw_conn_fail(c, MW_E_PROTOCOL_FAIL, "read %s: invalid frame length %zu (less than its 4-byte header)",
                         c->url_str, total);
            return;
        }
        if (total - 4 > c->max_package) {
            mw_conn_fail(c, MW_E_PACKAGE_TOO_LARGE, "read %s: frame of %zu bytes exceeds maxPackageSize (%zu bytes)",
                         c->url_str, total - 4, c->max_package);
            return;
        }
        if (c->in.len < total) {
            mw_buf_reserve(&c->in, total - c->in.len); /* one allocation for the rest */
            return;
        }
        mw_buf_consume(&c->in, total);
        if (mw_conn_emit_message(c, (const char *)h + 4, total - 4, MW_KIND_NONE) || c->gen != gen) return;
    }
}

static int frame_send(mw_conn *c, const char *p, size_t n, int kind)
{
    (void)kind;
    if (n > 0xFFFFFFFFu - 4) { strcpy(c->proto_err, "message too large for frame://"); return -1; }
    unsigned char *dst = (unsigned char *)mw_buf_reserve(&c->out, n + 4);
    if (!dst) { strcpy(c->proto_err, "out of memory"); return -1; }
    size_t total = n + 4;
    dst[0] = (unsigned char)(total >> 24);
    dst[1] = (unsigned char)(total >> 16);
    dst[2] = (unsigned char)(total >> 8);
    dst[3] = (unsigned char)total;
    memcpy(dst + 4, p, n);
    mw_buf_commit(&c->out, n + 4);
    return 0;
}

static const mw_proto_vt proto_tcp = {.name = "tcp", .input = raw_input, .send = raw_send};
static const mw_proto_vt proto_text = {.name = "text", .input = text_input, .send = text_send};
static const mw_proto_vt proto_frame = {.name = "frame", .input = frame_input, .send = frame_send};

extern const mw_proto_vt mw_proto_ws;

const mw_proto_vt *mw_proto_for_scheme(int scheme)
{
    switch (scheme) {
    case MW_SCHEME_TCP: return &proto_tcp;
    case MW_SCHEME_TEXT: return &proto_text;
    case MW_SCHEME_FRAME: return &proto_frame;
    case MW_SCHEME_WS: case MW_SCHEME_WSS: return &mw_proto_ws;
    default: return NULL;
    }
}
