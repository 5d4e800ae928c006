/* ws_client: the sans-I/O RFC 6455 client: opening handshake, frames in,
 * messages and control frames out, closing. Knows no socket, loop, TLS or Lua. */
#ifndef WS_CLIENT_H
#define WS_CLIENT_H
#include <stddef.h>
#include <stdint.h>
#include "../buf.h"
#include "ws_frame.h"
#include "ws_ext.h"
#include "ws_deflate.h"

/* ---- errors: negative, grouped by class -------------------------------- */
enum {
    WS_OK = 0,
    WS_E_NOMEM = -1,            /* allocation failed */
    WS_E_RANDOM = -2,           /* the random source failed */

    /* handshake failures (-100..-199): no WebSocket was established */
    WS_E_HS_STATUS = -100,      /* status other than 101 */
    WS_E_HS_MALFORMED = -101,   /* not a valid HTTP/1.1 response head */
    WS_E_HS_TOO_LARGE = -102,   /* head over WS_HTTP_MAX_HEAD bytes */
    WS_E_HS_UPGRADE = -103,     /* Upgrade missing or not "websocket" */
    WS_E_HS_CONNECTION = -104,  /* Connection lacks the "upgrade" token */
    WS_E_HS_ACCEPT = -105,      /* Sec-WebSocket-Accept missing or wrong */
    WS_E_HS_EXTENSION = -106,   /* an extension the client did not offer */
    WS_E_HS_PROTOCOL = -107,    /* a subprotocol the client did not offer */
    WS_E_HS_EXT_SYNTAX = -108,  /* Sec-WebSocket-Extensions is not an extension list */
    WS_E_HS_EXT_PARAM = -109,   /* a permessage-deflate parameter refused (the message names it) */
    WS_E_HS_EXT_DUPLICATE = -110, /* permessage-deflate answered more than once */

    /* protocol failures (-200..-299): the peer broke RFC 6455 */
    WS_E_RSV = -200,            /* 1002: RSV bits without an extension */
    WS_E_OPCODE = -201,         /* 1002: reserved opcode */
    WS_E_CONTROL_LEN = -202,    /* 1002: control frame over 125 bytes */
    WS_E_CONTROL_FRAG = -203,   /* 1002: control frame with FIN clear */
    WS_E_MASKED = -204,         /* 1002: masked frame from the server */
    WS_E_LENGTH = -205,         /* 1002: 64-bit length with the top bit set */
    WS_E_CONTINUATION = -206,   /* 1002: continuation with no message open */
    WS_E_FRAGMENT = -207,       /* 1002: new data frame inside a fragmented message */
    WS_E_UTF8 = -208,           /* 1007: text message not UTF-8 */
    WS_E_TOO_BIG = -209,        /* 1009: message over max_message */
    WS_E_CLOSE_CODE = -210,     /* 1002: close frame with an invalid code */
    WS_E_CLOSE_LEN = -211,      /* 1002: close frame with a 1-byte payload */
    WS_E_CLOSE_UTF8 = -212,     /* 1007: close reason not UTF-8 */
    /* 1007: a compressed message is not a valid DEFLATE stream. 1007, not
     * 1002: the frames were well formed, the data they carry is not what
     * the message type (permessage-deflate) says, as with bad UTF-8
     * (RFC 6455 7.4.1); RFC 7692 names no code. Node's ws does the same. */
    WS_E_INFLATE = -213,

    /* usage errors (-300..-399): the caller asked for something invalid;
     * the connection is unaffected */
    WS_E_STATE = -300,          /* not allowed in this state (e.g. before start) */
    WS_E_CLOSED = -301,         /* a close frame was already sent, or the connection failed */
    WS_E_HEADER = -302,         /* bad request field: CR/LF/NUL, bad token, bad path */
    WS_E_SEND_UTF8 = -303,      /* text to send is not UTF-8 */
    WS_E_SEND_CONTROL = -304,   /* control payload over 125 bytes */
    WS_E_BAD_OPCODE = -305,     /* opcode not TEXT/BINARY/PING/PONG */
    WS_E_BAD_CODE = -306,       /* close code not sendable */
    WS_E_BAD_REASON = -307,     /* close reason over 123 bytes or not UTF-8 */
    WS_E_BAD_OPTION = -308,     /* cfg.deflate out of range (ws_client_start) */
};

static inline int ws_err_is_handshake(int e) { return e <= -100 && e > -200; }
static inline int ws_err_is_protocol(int e) { return e <= -200 && e > -300; }
static inline int ws_err_is_usage(int e) { return e <= -300 && e > -400; }

/* A short fixed description of an error code (never NULL). */
const char *ws_strerror(int err);

/* ---- states ------------------------------------------------------------ */
enum {
    WS_STATE_HANDSHAKE = 0, /* request sent (or not yet), waiting for the 101 */
    WS_STATE_OPEN,          /* messages flow both ways */
    WS_STATE_CLOSING,       /* we sent a close frame; waiting for the peer's */
    WS_STATE_CLOSED,        /* close frames exchanged both ways: close TCP
                               (after briefly waiting for the server to) */
    WS_STATE_FAILED,        /* handshake or protocol failure; see fail_code */
};

/* ---- callbacks ---------------------------------------------------------- */
/* Return flags of the int callbacks. 0 means "go on". */
#define WS_CB_STOP    1  /* stop feeding now: feed returns what it consumed */
#define WS_CB_NO_PONG 2  /* on_ping only: do not send the automatic pong */

/* Every pointer handed to a callback is valid only during the call. A
 * callback may call ws_client_send/ws_client_close on the same client (the
 * engine re-checks its state afterwards) but must not free it: return
 * WS_CB_STOP and tear down after feed returns. */
typedef struct ws_events {
    void *ud;
    /* After a valid 101. head: the raw header block (status line through the
     * blank line); sp: the chosen subprotocol or NULL. */
    int (*on_open)(void *ud, const char *head, size_t head_len,
                   const char *sp, size_t sp_len);
    /* One whole message. */
    int (*on_message)(void *ud, int is_text, const char *data, size_t len);
    /* A ping; the engine then pongs the same payload unless the result has
     * WS_CB_NO_PONG (or a close frame was sent meanwhile). NULL: always pong. */
    int (*on_ping)(void *ud, const char *payload, size_t n);
    int (*on_pong)(void *ud, const char *payload, size_t n);
    /* The peer's close frame arrived (and was valid); code 1005 when it had
     * no status. The reply close frame is already in the output buffer. */
    int (*on_close)(void *ud, int code, const char *reason, size_t n);
    /* The handshake or the protocol failed; msg says why in words. The
     * client is FAILED; nothing more is parsed, so there is nothing to stop. */
    void (*on_fail)(void *ud, int err, const char *msg);
} ws_events;

typedef struct ws_config {
    uint64_t max_message;   /* bytes per received message; 0 = unlimited */
    /* An unfragmented data frame of up to this many payload bytes that has
     * not fully arrived is left unconsumed (see ws_client_want) so that it
     * is delivered from the caller's buffer in one piece, without a copy
     * into the reassembly buffer. 0: always consume and reassemble. */
    uint64_t defer_max;
    /* Source of the Sec-WebSocket-Key and mask keys: fill out[0..n), return 0
     * or nonzero on failure. NULL: mw_random (wolfCrypt). */
    int (*random)(void *ud, void *out, size_t n);
    void *random_ud;
    ws_events ev;
    /* permessage-deflate (RFC 7692); enabled = 0: not offered, and any
     * extension in the answer fails the handshake (WS_E_HS_EXTENSION).
     * When agreed, max_message applies to the inflated size; compressed
     * frames are always consumed and inflated as they come, never
     * deferred (defer_max is for uncompressed ones). */
    ws_deflate_opts deflate;
} ws_config;

/* ---- the opening request ------------------------------------------------ */
/* value NULL: send no field of that name (it turns off a default the
 * engine would write, such as the User-Agent). */
typedef struct ws_header {
    const char *name;  size_t name_len;
    const char *value; size_t value_len;
} ws_header;

typedef struct ws_request {
    const char *host; size_t host_len;   /* name or IP literal, no brackets needed */
    int port;                            /* 0: the scheme's default */
    int secure;                          /* wss: default port 443, else 80 */
    const char *path; size_t path_len;   /* "/path?query"; empty means "/" */
    const char *origin; size_t origin_len;       /* NULL: no Origin */
    const char *protocols; size_t protocols_len; /* comma-separated; NULL: none */
    const char *user_agent; size_t user_agent_len; /* unless a header names it; NULL: none */
    const ws_header *headers; size_t nheaders;   /* user headers, sent last */
} ws_request;

/* ---- the client --------------------------------------------------------- */
/* Embed it by value; the fields are private to the client's files in src/ws/. */
typedef struct ws_client {
    ws_config cfg;
    int state;
    int started;
    int err;                   /* the failure's error code, 0 if none */
    int fail_code;             /* close code the failure sent, 0 if none */
    int refused_status;        /* the status of an answer other than 101, 0 if none */
    long retry_after;          /* its Retry-After in seconds, -1 when none (or a date) */
    char *location;            /* its Location (a redirect), NULL when none */
    unsigned close_sent : 1, close_rcvd : 1, in_payload : 1, hs_status_ok : 1;
    size_t hs_scan;            /* bytes of the head already scanned */
    char accept[32];           /* expected Sec-WebSocket-Accept */
    char *protocols;           /* offered subprotocols (copy), or NULL */
    size_t protocols_len;
    mw_buf pending;            /* frames sent before the 101, flushed after it */
    ws_frame_hdr hdr;          /* frame being received */
    uint64_t remaining;        /* its payload bytes still to come */
    int msg_op;                /* TEXT/BINARY of the message being assembled, 0 if none */
    uint8_t msg_utf8;          /* validator state over that message */
    uint64_t msg_len;          /* its bytes so far, frames announced included */
    size_t want;               /* bytes a deferred frame needs from the buffer's head */
    size_t defer_checked;      /* payload bytes of the deferred frame already UTF-8 checked */
    uint8_t defer_utf8;        /* validator state after them */
    mw_buf msg;                /* reassembly buffer, reused across messages */
    size_t ctl_len;
    unsigned char ctl[WS_CONTROL_MAX];
    size_t rnd_pos;
    unsigned char rnd[64];     /* random bytes pooled for mask keys */
    char errmsg[256];
    /* permessage-deflate */
    ws_deflate_params pmd;     /* what was agreed (pmd.agreed) */
    ws_deflater tx;            /* our messages, when pmd.client_max_window_bits > 8 */
    ws_inflater rx;            /* the server's */
    ws_zcount zc;              /* zlib memory of both */
    int msg_z;                 /* the message being received is compressed */
    mw_buf ztx;                /* a compressed message before it is framed */
} ws_client;

/* Set up a client in HANDSHAKE state (nothing sent yet); cfg is copied.
 * Returns 0. */
int ws_client_init(ws_client *ws, const ws_config *cfg);

/* Before ws_client_start: replace the config (cfg is copied); what was
 * sent meanwhile stays queued. Returns 0, or WS_E_STATE once started. */
int ws_client_configure(ws_client *ws, const ws_config *cfg);

/* Release everything the client holds; it is then as after init with an
 * empty config. Idempotent. */
void ws_client_free(ws_client *ws);

/* Validate every field of an opening request, as ws_client_start does
 * (the one implementation), without a client: a caller checks a request
 * before it connects. Returns 0, or WS_E_HEADER with msg[0..cap) naming the
 * refused field and why ("header \"X-A\" has a CR, LF or NUL in its value":
 * header values and the origin are never quoted, they may hold secrets). */
int ws_request_check(const ws_request *req, char *msg, size_t cap);

/* Append the opening handshake request to out (with the
 * permessage-deflate offer when cfg.deflate.enabled). Every field is
 * validated first (ws_request_check); on error nothing is written. Returns 0,
 * WS_E_BAD_OPTION (cfg.deflate out of range, ws_client_fail_message says which),
 * WS_E_HEADER (CR/LF/NUL in a name or value, a name that is not a token, a
 * reserved name, an empty host, a path not starting with '/'), WS_E_STATE
 * (already started), WS_E_RANDOM or WS_E_NOMEM. */
int ws_client_start(ws_client *ws, const ws_request *req, mw_buf *out);

/* Consume received bytes data[0..len), firing events and appending any
 * replies (pongs, close frames) to out. Returns the bytes consumed (>= 0):
 * the caller keeps the rest and presents it again, with more appended, on
 * the next call (an incomplete response head or frame header is left
 * unconsumed; payload is always consumed). It returns early when a callback
 * asked to stop. Returns a negative WS_E_* once the connection has failed
 * (on_fail was called, and a close frame may have been appended), and the
 * same error on every later call. After the peer's close frame, all further
 * bytes are consumed and ignored. WS_E_STATE before ws_client_start. */
long ws_client_feed(ws_client *ws, const char *data, size_t len, mw_buf *out);

/* The next message when it is a whole unfragmented, uncompressed TEXT/BINARY
 * frame in data[0..len) that the engine would accept as it is (within
 * max_message, text valid UTF-8), the engine between frames with no message
 * in progress (open, or our close sent). Returns the frame's length with the
 * message in *p, *n, *is_text (a slice of data), or 0 when the next frame is
 * anything else: the caller gives it to ws_client_feed. Changes nothing but
 * dropping the partial UTF-8 check of a deferred frame (the frame taken is
 * checked whole), so a caller may take several in a row and hand back (feed
 * again later) those it did not deliver. Lets a caller deliver the messages of one read together. */
long ws_client_take(ws_client *ws, const char *data, size_t len,
                    const char **p, size_t *n, int *is_text);

/* Append one masked frame (fresh mask key) to out; before the handshake
 * completes (ws_client_start not called yet included) the frame is queued
 * inside the client and goes out right after the 101, moved into out
 * without a copy when out is empty then. When permessage-deflate was agreed, a TEXT/BINARY message of at
 * least cfg.deflate.threshold bytes is compressed (RSV1 set); never a
 * control frame, nor what is queued before the 101 (nothing is agreed yet),
 * nor anything when the agreed client window is 8 (see ws_ext.h). Returns 0, WS_E_BAD_OPCODE, WS_E_SEND_UTF8 (text not UTF-8),
 * WS_E_SEND_CONTROL (ping/pong over 125 bytes), WS_E_CLOSED (a close frame
 * was sent, or the connection failed), WS_E_RANDOM or WS_E_NOMEM; on
 * error nothing is written. */
int ws_client_send(ws_client *ws, int opcode, const char *data, size_t len, mw_buf *out);

/* Append bytes exactly as given (the caller's own frames), in order with the
 * frames ws_client_send makes: before the handshake completes they are
 * queued inside the client too. Returns 0, WS_E_CLOSED (a close frame was
 * sent, or the connection failed) or WS_E_NOMEM; on error nothing is
 * written. */
int ws_client_send_raw(ws_client *ws, const char *data, size_t len, mw_buf *out);

/* Append a close frame (code 0: no status and no reason) and enter CLOSING
 * (CLOSED if the peer's close already arrived). Returns 0, WS_E_BAD_CODE
 * (not 1000-1003, 1007-1011, 3000-4999, or a reason without a code),
 * WS_E_BAD_REASON (over 123 bytes or not UTF-8), WS_E_CLOSED (already sent
 * or failed), WS_E_STATE (handshake not complete: just drop the TCP
 * connection), WS_E_RANDOM or WS_E_NOMEM. */
int ws_client_close(ws_client *ws, int code, const char *reason, size_t n, mw_buf *out);

/* The WS_STATE_* the client is in. */
int ws_client_state(const ws_client *ws);

/* The close code the failure sent (1002, 1007, 1009, ...), or 0 if the
 * client has not failed or the failure sent no close frame (handshake
 * failures, or a close frame had already been sent). */
int ws_client_fail_code(const ws_client *ws);
/* After WS_E_HS_STATUS: the answer's status (0 for any other outcome), and
 * in *retry_after its Retry-After in seconds when it gave one as a number
 * (-1 otherwise: none, or an HTTP-date, which needs a clock). */
int ws_client_refusal(const ws_client *ws, long *retry_after);
/* After WS_E_HS_STATUS: the answer's Location header as sent, NULL when it
 * had none (or its head was not whole in one read). */
const char *ws_client_location(const ws_client *ws);
/* The frames sent before the 101 and not yet moved to the output (*p,
 * the count returned): what a redirect's next session must send again. */
size_t ws_client_unsent(const ws_client *ws, const char **p);

/* The failure's WS_E_* code (0 if none) and its human message ("" if none).
 * After ws_client_start returned WS_E_HEADER, the message names the refused
 * field and why ("header \"X-A\" has a CR, LF or NUL in its value"). */
int ws_client_error(const ws_client *ws);
const char *ws_client_fail_message(const ws_client *ws);

/* After a feed that stopped at a deferred frame (cfg.defer_max): how many
 * bytes, counted from the first unconsumed one, complete that frame; 0 when
 * the last feed deferred nothing. Reserve that much in the buffer so the
 * next reads complete the frame in place. */
size_t ws_client_want(const ws_client *ws);

/* Bytes of frames sent before the handshake completed, held until the 101. */
size_t ws_client_queued(const ws_client *ws);

/* Bytes of a partly received message held in the reassembly buffer. */
size_t ws_client_buffered(const ws_client *ws);

/* What permessage-deflate agreed, or NULL when it was not (or not yet). */
const ws_deflate_params *ws_client_deflate(const ws_client *ws);

/* The agreed extensions as a Sec-WebSocket-Extensions value with every
 * parameter spelled out (ws_ext_format) into out[0..cap). Returns its
 * length, 0 when none was agreed, or WS_EXT_SPACE (160 bytes always fit). */
int ws_client_extensions(const ws_client *ws, char *out, size_t cap);

/* zlib's allocations for this client (both directions). */
const ws_zcount *ws_client_zcount(const ws_client *ws);

/* Give back what an idle client need not hold: the compression state of a
 * direction without context takeover that is between messages (it is
 * allocated again by the next compressed message), and the scratch buffer
 * of compressed output. The caller (the I/O layer, which knows time) calls
 * it when the connection has been quiet. Returns zlib's bytes still held. */
size_t ws_client_trim(ws_client *ws);
#endif
