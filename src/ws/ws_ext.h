/* ws_ext: permessage-deflate (RFC 7692) negotiation: the offer written, the server's answer judged.
 * Knows no socket, loop, TLS or Lua, no zlib and no frame bits: text in, agreed parameters out.
 *
 * Decisions (RFC 7692 sections 5 and 7, RFC 6455 9.1):
 * - The answer is parsed strictly. Each Sec-WebSocket-Extensions field is a
 *   comma list (empty elements are skipped, RFC 7230 7; a field with no
 *   element at all is malformed) of `name *(; param[=token|quoted-string])`
 *   with optional spaces/tabs around ";", "=" and ",". A quoted value is
 *   unescaped, then judged like a token. Names compare case-insensitively.
 * - Refused (the connection fails, the message names the parameter and why):
 *   an extension that was not offered (any other name), permessage-deflate
 *   twice, an unknown or repeated parameter, a *_max_window_bits value that
 *   is not a decimal integer without leading zeros in 8..15, a value for a
 *   *_no_context_takeover, client_max_window_bits with no value or when it
 *   was not offered, either *_max_window_bits above the offered value, and
 *   a parameter the offer asked the server for (server_max_window_bits=N,
 *   server_no_context_takeover) missing from the answer: RFC 7692 7.1.1.1
 *   and 7.1.2.1 say the server accepts such an offer only by including it.
 * - Window 8: zlib's raw deflate cannot make a 256-byte window (1.2.9 and
 *   later refuse windowBits 8 for raw streams; older ones silently used 9).
 *   Today's zlib never reaches back further than the window less 262 bytes
 *   (250 at 9 bits), so its 9-bit streams would decode in 256 bytes, but
 *   that is an implementation detail zlib does not promise. So when
 *   client_max_window_bits=8 is agreed the client sends every message
 *   uncompressed (RSV1 clear is always allowed, RFC 7692 6). server_max_window_bits=8 needs nothing
 *   special: the client inflates with a 32 KiB window whatever was agreed
 *   (ws_deflate.h says why), so a zlib-based server bumped to 9 as above
 *   decodes too. */
#ifndef WS_EXT_H
#define WS_EXT_H
#include <stddef.h>

/* What the client offers and how it compresses. A zeroed struct is
 * "disabled"; with enabled = 1 and every other field 0 it is the default
 * offer "permessage-deflate; client_max_window_bits" with the defaults below. */
typedef struct ws_deflate_opts {
    int enabled;
    /* 0: offer the parameter with no value (the server may then pick our
     * window); 8..15: offer that value (we never compress with more);
     * -1: do not offer it (the answer must then not name it). */
    int client_max_window_bits;
    /* 0: not offered (the server picks, up to 15); 8..15: ask the server to
     * compress with at most that window (costs us 1 << N bytes to inflate). */
    int server_max_window_bits;
    int client_no_context_takeover;   /* offered as a hint, and then honoured */
    int server_no_context_takeover;   /* asked of the server */
    /* zlib level 1..9; 0 or -1: the default, 6 (zlib's Z_DEFAULT_COMPRESSION).
     * Level 0 (stored blocks) is never better than an uncompressed frame,
     * so 0 means the default here. */
    int level;
    int mem_level;                    /* zlib memLevel 1..9; 0: 4 (see WS_DEFLATE_MEM_DEFAULT) */
    /* Smallest payload compressed; 0: 32 bytes. Below that the deflate
     * block framing eats most of any gain. */
    size_t threshold;
} ws_deflate_opts;

#define WS_DEFLATE_LEVEL_DEFAULT 6
/* memLevel 4, not zlib's 8: the hash table and symbol buffer are 8 KiB instead of
 * 128 KiB, which is most of what one connection keeps resident after a few messages
 * (scripts/bench zidle_10k: about 47 KiB a connection instead of 112), at the same
 * bytes on the wire for small messages (200-byte JSON: 44.2 bytes a message against
 * 44.1 at memLevel 8; the window, not memLevel, is what matters there: 47 at 14). */
#define WS_DEFLATE_MEM_DEFAULT 4
#define WS_DEFLATE_THRESHOLD_DEFAULT 32

/* What was agreed (when `agreed` is 1): the windows each side compresses
 * with, 8..15 (15 when the answer said nothing), and the reset rules. */
typedef struct ws_deflate_params {
    int agreed;
    int server_max_window_bits;
    int client_max_window_bits;
    int server_no_context_takeover;
    int client_no_context_takeover;
} ws_deflate_params;

enum {
    WS_EXT_OK = 0,
    WS_EXT_SYNTAX = -1,      /* the field is not an extension list */
    WS_EXT_UNKNOWN = -2,     /* an extension that was not offered */
    WS_EXT_DUPLICATE = -3,   /* permessage-deflate answered twice */
    WS_EXT_PARAM = -4,       /* a parameter refused (unknown, repeated, bad value, not offered) */
    WS_EXT_OPTION = -5,      /* ws_deflate_opts out of range (ws_ext_check) */
    WS_EXT_SPACE = -6,       /* the output does not fit */
};

/* Whether opts is usable: window bits 0 or 8..15 (client: also -1), level -1..9, mem_level
 * 0..9. Returns 0, or WS_EXT_OPTION with msg[0..cap) naming the field. */
int ws_ext_check(const ws_deflate_opts *opts, char *msg, size_t cap);

/* The Sec-WebSocket-Extensions value offering opts (valid, enabled) into
 * out[0..cap), NUL-terminated. Returns its length, or WS_EXT_SPACE (cap
 * under 160 always fits). */
int ws_ext_offer(const ws_deflate_opts *opts, char *out, size_t cap);

/* Judging an answer: ws_ext_answer_init, one ws_ext_answer_field per
 * Sec-WebSocket-Extensions field in the order received, then
 * ws_ext_answer_finish. */
typedef struct ws_ext_answer {
    const ws_deflate_opts *offer;
    int fields;              /* fields seen */
    int seen;                /* permessage-deflate seen */
    unsigned have;           /* parameters seen, a bit each */
    ws_deflate_params p;
} ws_ext_answer;

void ws_ext_answer_init(ws_ext_answer *a, const ws_deflate_opts *offer);

/* One field value v[0..n). Returns 0 or a negative WS_EXT_* with
 * msg[0..cap) saying what and why ("permessage-deflate: server_max_window_bits=16
 * is out of 8..15"); server text in it is quoted and clipped. */
int ws_ext_answer_field(ws_ext_answer *a, const char *v, size_t n, char *msg, size_t cap);

/* After the last field: fill *out (agreed = 0 when no field named
 * permessage-deflate). Returns 0, or WS_EXT_PARAM when an asked-for
 * parameter is missing (msg as above). */
int ws_ext_answer_finish(ws_ext_answer *a, ws_deflate_params *out, char *msg, size_t cap);

/* The agreed parameters as an extension value, every window spelled out
 * ("permessage-deflate; server_max_window_bits=15; client_max_window_bits=15"),
 * into out[0..cap). Returns its length, 0 when nothing was agreed, or
 * WS_EXT_SPACE. */
int ws_ext_format(const ws_deflate_params *p, char *out, size_t cap);
#endif
