/* proto_stream: the tcp (raw), text (newline-delimited) and frame (4-byte
 * big-endian length, header included, as Workerman's Frame) protocols.
 * Knows nothing of Lua or sockets. */
#include "codec.h"
#include "conn_int.h"
#include <stdio.h>
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

/* Decode messages from c->in with one of the codec.h decoders. */
static void decoded_input(mw_conn *c, int (*decode)(const char *, size_t, size_t, mw_decoded *),
                          const char *what)
{
    unsigned gen = c->gen;
    while (c->in.len) {
        const char *p = mw_buf_head(&c->in);
        mw_decoded d;
        int r = decode(p, c->in.len, c->opt.max_package, &d);
        if (r == MW_DEC_NEED) {
            if (d.need > c->in.len) mw_buf_reserve(&c->in, d.need - c->in.len); /* one allocation for the rest */
            return;
        }
        if (r == MW_DEC_TOO_LARGE) {
            mw_conn_fail(c, MW_E_PACKAGE_TOO_LARGE, "read %s: %s of %s%zu bytes exceeds maxPackageSize (%zu bytes)",
                         c->url_str, what, d.need ? "at least " : "", d.len, c->opt.max_package);
            return;
        }
        if (r == MW_DEC_INVALID) {
            mw_conn_fail(c, MW_E_PROTOCOL_FAIL, "read %s: invalid %s length %zu (less than its 4-byte header)",
                         c->url_str, what, d.len);
            return;
        }
        mw_buf_consume(&c->in, d.consumed);
        /* The message bytes stay valid: consume only moves the offset, and
         * nothing writes to c->in until the callback returns. */
        if (mw_conn_emit_message(c, p + d.off, d.len, MW_KIND_NONE) || c->gen != gen) return;
    }
}

static void text_input(mw_conn *c) { decoded_input(c, mw_text_decode, "line"); }
static void frame_input(mw_conn *c) { decoded_input(c, mw_frame_decode, "frame"); }

/* The server closed: a last line without its newline is still a line (as
 * readline gives it at EOF), delivered before onClose. */
static int text_eof(mw_conn *c)
{
    unsigned gen = c->gen;
    if (c->in.len) text_input(c);   /* whole lines first, should any still wait */
    if (c->gen != gen || c->status != MW_ST_ESTABLISHED || c->paused || !c->in.len) return 0;
    const char *p = mw_buf_head(&c->in);
    size_t n = c->in.len;
    mw_buf_consume(&c->in, n);
    mw_conn_emit_message(c, p, mw_text_trim(p, n), MW_KIND_NONE);
    return 0;
}

static int text_send(mw_conn *c, const char *p, size_t n, int kind)
{
    if (kind == MW_KIND_RAW) return raw_send(c, p, n, kind);
    const char *nl = memchr(p, '\n', n);
    if (nl) {
        /* One send is one line: a newline inside would make the peer read
         * two messages. send(data, true) writes such bytes as they are. */
        snprintf(c->proto_err, sizeof c->proto_err,
                 "message has a newline at byte %zu of %zu: text:// sends one line per message, "
                 "nothing sent (send(data, true) writes raw bytes)", (size_t)(nl - p) + 1, n);
        return -1;
    }
    char *dst = mw_buf_reserve(&c->out, n + 1);
    if (!dst) { strcpy(c->proto_err, "out of memory"); return -1; }
    memcpy(dst, p, n);
    dst[n] = '\n';
    mw_buf_commit(&c->out, n + 1);
    return 0;
}

static int frame_send(mw_conn *c, const char *p, size_t n, int kind)
{
    if (kind == MW_KIND_RAW) return raw_send(c, p, n, kind);
    unsigned char hdr[4];
    if (mw_frame_header(hdr, n) != 0) { strcpy(c->proto_err, "message too large for frame://"); return -1; }
    char *dst = mw_buf_reserve(&c->out, n + 4);
    if (!dst) { strcpy(c->proto_err, "out of memory"); return -1; }
    memcpy(dst, hdr, 4);
    memcpy(dst + 4, p, n);
    mw_buf_commit(&c->out, n + 4);
    return 0;
}

const mw_proto_vt mw_proto_tcp = {.name = "tcp", .input = raw_input, .send = raw_send};
const mw_proto_vt mw_proto_text = {.name = "text", .input = text_input, .send = text_send, .eof = text_eof};
const mw_proto_vt mw_proto_frame = {.name = "frame", .input = frame_input, .send = frame_send};
