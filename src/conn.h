/* conn: a connection as its owner (the Lua binding) sees it: create,
 * connect, send, close, options and accessors; the state is private
 * (conn_int.h, for the I/O layer only). Knows nothing of Lua and no frame
 * bits (those live in proto_ws and ws/). */
#ifndef MW_CONN_H
#define MW_CONN_H
#include <stdint.h>
#include "buf.h"
#include "err.h"
#include "headers.h"
#include "loop.h"
#include "timer.h"
#include "url.h"

typedef struct mw_conn mw_conn;

enum mw_status { MW_ST_INITIAL, MW_ST_CONNECTING, MW_ST_ESTABLISHED, MW_ST_CLOSING, MW_ST_CLOSED };

/* What kind of message send() makes, and what kind a received one is. */
enum mw_kind { MW_KIND_NONE = 0, MW_KIND_TEXT = 1, MW_KIND_BINARY = 2, MW_KIND_RAW = 3 };

/* Close codes the connection layer itself asks for (ws close frames; other
 * protocols ignore the code): a script's close() without one, and the close
 * of every connection when the program stops or a reload drops one. */
#define MW_CLOSE_NORMAL 1000
#define MW_CLOSE_GOING_AWAY 1001

/* One received message: a slice valid during the event that gives it. */
typedef struct mw_msg {
    const char *p;
    size_t n;
    int kind;
} mw_msg;

/* Events towards the owner (the Lua binding), each given the owner's data
 * (ud of mw_conn_new). Each may run arbitrary user code that closes,
 * destroys, reconnects or sends on the connection. */
typedef struct mw_conn_events {
    void (*on_connect)(void *ud);
    void (*on_message)(void *ud, const char *p, size_t n, int kind);
    /* Optional: the messages v[0..n) of one read, in order, as n on_message
     * would give them; it stops after the message whose callback interrupted
     * the connection (mw_conn_interrupted) and returns how many it took
     * (that one included); the rest come again later, or never when the
     * session ended. */
    size_t (*on_messages)(void *ud, const mw_msg *v, size_t n);
    void (*on_error)(void *ud, int code, const char *msg);
    void (*on_close)(void *ud);
    void (*on_buffer_full)(void *ud);
    void (*on_buffer_drain)(void *ud);
} mw_conn_events;

/* The generic options, read at the next use (a connect, a send); the owner
 * reads and writes them through mw_conn_options. */
typedef struct mw_conn_opts {
    size_t max_send_buffer;    /* maxSendBufferSize */
    size_t max_package;        /* maxPackageSize */
    double connect_timeout;
    double handshake_timeout;
    double close_timeout;      /* closeTimeout: close handshake or final flush */
    double attempt_delay;      /* happyEyeballsDelay: between connect attempts (RFC 8305) */
    char bindto[64];           /* the source address ("" none), checked by mw_conn_check_bindto */
} mw_conn_opts;

/* Whether s is a source address bindto can take ("127.0.0.2", "127.0.0.2:0",
 * "[::1]:40000"): 0, or -1 with why in err. */
int mw_conn_check_bindto(const char *s, char *err, size_t cap);


/* Which protocol layer serves a URL and which stages it asks for: given by
 * the connection's creator (layers.h has the standard set), so the
 * connection names no protocol or stage. */
/* What a connection counted over its whole life (every session; conn:stats()).
 * Plain increments on the paths they count: no allocation, no call out. */
#define MW_STATS_CODES 8
typedef struct mw_conn_stats {
    uint64_t connects;         /* sessions that opened (protocol ready) */
    uint64_t reconnects;       /* connect attempts after the first */
    uint64_t attempts;         /* connect attempts */
    uint64_t msgs_in, msgs_out;
    uint64_t bytes_in, bytes_out;  /* on the wire (filled in by mw_conn_get_stats) */
    uint64_t sendq_high;       /* the most bytes ever queued to send */
    double rtt_last, rtt_smooth;   /* seconds, WebSocket ping to pong; 0 none yet */
    double ping_at;            /* when the timed ping was sent (0 none outstanding) */
    double up_since;           /* when the open session opened (0 none) */
    double up_total;           /* seconds open in ended sessions */
    int ncodes;                /* close codes seen (the peer's, else ours) */
    struct { int code; uint64_t n; } codes[MW_STATS_CODES];
    uint64_t codes_other;      /* codes past the table */
} mw_conn_stats;

/* Copy c's counters into *st; up_total includes the open session so far. */
void mw_conn_get_stats(const mw_conn *c, mw_conn_stats *st);
/* Count a close code (the protocol calls it for the close frame it saw). */
void mw_conn_count_close(mw_conn *c, int code);
/* A protocol timed a ping round trip of rtt seconds. */
void mw_conn_count_rtt(mw_conn *c, double rtt);

typedef struct mw_layers mw_layers;

/* Create a connection for url (not yet connected). Returns NULL with a
 * message in err (malformed URL, unknown scheme, out of memory). */
mw_conn *mw_conn_new(mw_loop *l, const char *url, const mw_layers *layers,
                     const mw_conn_events *ev, void *ud, char *err, size_t errcap);
/* Stop everything and free the connection; calls no event. */
void mw_conn_free(mw_conn *c);
/* Start connecting (INITIAL or CLOSED). Returns 0, or -1 when the status
 * does not allow it. Failures are reported later through on_error/on_close. */
int mw_conn_connect(mw_conn *c);
/* Queue a message. Returns 1 accepted, 0 dropped (closed, or send buffer full:
 * on_error SEND_FAIL follows), -1 refused (c->proto_err says why; on_error too). */
int mw_conn_send(mw_conn *c, const char *p, size_t n, int kind);
/* Graceful close (code/reason only for ws; for others data, if any, is sent first). */
void mw_conn_close(mw_conn *c, int code, const char *reason, size_t n);
/* Immediate close; on_close follows from the loop. Idempotent. */
void mw_conn_destroy(mw_conn *c);
/* The current session's number (it changes at each teardown), and whether
 * delivery must stop now for the session numbered `session`: it ended, or
 * input was paused or closed (what on_messages asks after each message). */
unsigned mw_conn_session(const mw_conn *c);
int mw_conn_delivery_stopped(const mw_conn *c, unsigned session);
/* Close now if open, connect again after delay seconds. */
void mw_conn_reconnect(mw_conn *c, double delay);
void mw_conn_cancel_reconnect(mw_conn *c);
void mw_conn_pause(mw_conn *c);
void mw_conn_resume(mw_conn *c);
/* True while the connection needs the loop: connecting, open, closing, a
 * reconnect pending, or events not yet delivered. */
int mw_conn_active(const mw_conn *c);
const char *mw_conn_status_name(int status);
/* Address strings of the peer and the local end; 0 or -1 when not connected. */
int mw_conn_remote(const mw_conn *c, char *ip, size_t cap, int *port);
int mw_conn_local(const mw_conn *c, char *ip, size_t cap, int *port);
/* 4 or 6: the address family of the peer of the current (or last) connect;
 * 0 when none was reached. */
int mw_conn_family(const mw_conn *c);
/* Accessors for the owner: the connection's state is private. */
unsigned long mw_conn_id(const mw_conn *c);
/* The owner's data given to mw_conn_new. */
void *mw_conn_ud(const mw_conn *c);
/* A reload hands the connection to a new owner (events go to it from now). */
void mw_conn_set_ud(mw_conn *c, void *ud);
int mw_conn_status(const mw_conn *c);
/* Why the last refused send or ping was refused. */
const char *mw_conn_proto_error(const mw_conn *c);
mw_conn_opts *mw_conn_options(mw_conn *c);
void mw_conn_bytes(const mw_conn *c, uint64_t *read, uint64_t *written);
/* Received bytes not yet consumed by the protocol (a partial message). */
size_t mw_conn_recv_queued(const mw_conn *c);
/* Bytes waiting to be sent in every queue (see mw_conn_queued). */
size_t mw_conn_send_queued(const mw_conn *c);
/* Queued bytes at or past maxSendBufferSize. */
int mw_conn_buffer_full(const mw_conn *c);
/* A reconnect timer is running. */
int mw_conn_reconnect_pending(const mw_conn *c);
/* Connecting, open, or a reconnect pending (not: closing, closed). */
int mw_conn_live(const mw_conn *c);
/* The URL of the current (or last) connect, where mw_conn_url gives the
 * next one. */
const char *mw_conn_current_url(const mw_conn *c);
int mw_conn_current_scheme(const mw_conn *c);
/* The program stops or a reload drops c: cancel a reconnect, close an open
 * connection with MW_CLOSE_GOING_AWAY, drop one still connecting. */
void mw_conn_going_away(mw_conn *c);
int mw_conn_set_headers(mw_conn *c, const mw_header *h, int n);
/* Take src's options (sizes, timeouts, the layer's conf, headers, transport)
 * into dst, for a hot reload that hands a live connection new settings.
 * 0 or -1 (memory). */
int mw_conn_copy_options(mw_conn *dst, const mw_conn *src);
/* A hot reload hands dst the URL of src, a declaration about to be freed
 * (src is left without one): dst connects to it from its next connect on,
 * while a current socket stays where it is; at once when dst is not
 * connected. Returns 0, or -1 changing nothing when the two URLs need
 * different protocol layers (ws and wss share one; tcp, text, frame each
 * have their own), which cannot be swapped under a connection. */
int mw_conn_take_url(mw_conn *dst, mw_conn *src);
/* The URL the next connect uses (a reload's new one, else the current; the
 * one before a redirect chain, not its hop). */
const char *mw_conn_url(const mw_conn *c);
const mw_url *mw_conn_next_url(const mw_conn *c);
/* A connection that never connected reads as CLOSED from now on (a reload's
 * declaration of a connection the script had ended); no event. */
void mw_conn_mark_closed(mw_conn *c);

#endif
