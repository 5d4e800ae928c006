/* conn: the connection state machine over one transport (tcp, later tls)
 * with one protocol layer (tcp, text, frame, ws): connect with DNS and
 * address fallback, buffers, backpressure, deferred events, reconnect.
 * Knows nothing of Lua and no frame bits (those live in proto_ws and ws/). */
#ifndef MW_CONN_H
#define MW_CONN_H
#include <stdint.h>
#include <sys/socket.h>
#include "buf.h"
#include "loop.h"
#include "timer.h"
#include "url.h"

typedef struct mw_conn mw_conn;

enum mw_status { MW_ST_INITIAL, MW_ST_CONNECTING, MW_ST_ESTABLISHED, MW_ST_CLOSING, MW_ST_CLOSED };

/* Error codes passed to on_error (stable: exported to Lua as mw.errors). */
enum mw_err {
    MW_E_CONNECT_FAIL = 1, MW_E_SEND_FAIL = 2, MW_E_DNS_FAIL = 3, MW_E_TLS_FAIL = 4,
    MW_E_HANDSHAKE_FAIL = 5, MW_E_PROTOCOL_FAIL = 6, MW_E_PACKAGE_TOO_LARGE = 7,
    MW_E_TIMEOUT = 8, MW_E_READ_FAIL = 9,
};

/* What kind of message send() makes, and what kind a received one is. */
enum mw_kind { MW_KIND_NONE = 0, MW_KIND_TEXT = 1, MW_KIND_BINARY = 2, MW_KIND_RAW = 3 };

/* Close codes the connection layer itself asks for (ws close frames; other
 * protocols ignore the code): a script's close() without one, and the close
 * of every connection when the program stops or a reload drops one. */
#define MW_CLOSE_NORMAL 1000
#define MW_CLOSE_GOING_AWAY 1001

/* Events towards the owner (the Lua binding), each given the owner's data
 * (ud of mw_conn_new). Each may run arbitrary user code that closes,
 * destroys, reconnects or sends on the connection. */
typedef struct mw_conn_events {
    void (*on_connect)(void *ud);
    void (*on_message)(void *ud, const char *p, size_t n, int kind);
    void (*on_error)(void *ud, int code, const char *msg);
    void (*on_close)(void *ud);
    void (*on_buffer_full)(void *ud);
    void (*on_buffer_drain)(void *ud);
} mw_conn_events;

/* What a layer keeps for the connection's whole life beyond the generic
 * options (a protocol's own options and events, what its last session
 * negotiated): one slot, owned by the layer that fills it, which the
 * connection frees and copies without knowing what it holds. */
typedef struct mw_conn_conf_vt {
    void (*free)(void *conf);
    /* For a reload: dst's conf takes src's options (either conf may be
     * absent). 0, or -1 when out of memory. */
    int (*copy)(mw_conn *dst, const mw_conn *src);
} mw_conn_conf_vt;

/* The generic options, read at the next use (a connect, a send); the owner
 * reads and writes them through mw_conn_options. */
typedef struct mw_conn_opts {
    size_t max_send_buffer;    /* maxSendBufferSize */
    size_t max_package;        /* maxPackageSize */
    double connect_timeout;
    double handshake_timeout;
    double close_timeout;      /* closeTimeout: close handshake or final flush */
} mw_conn_opts;

/* I/O results of transport reads and writes. */
#define MW_IO_AGAIN (-1)
#define MW_IO_ERROR (-2)

typedef struct mw_transport_vt {
    const char *name;
    /* After the TCP connect: 0 ready now, 1 in progress (the transport calls
     * mw_conn_transport_ready later), -1 failed (error already reported). */
    int (*open)(mw_conn *c);
    /* > 0 bytes, 0 orderly EOF, MW_IO_AGAIN, MW_IO_ERROR (errno set, or the
     * transport already reported its own error with mw_conn_fail). */
    long (*read)(mw_conn *c, char *p, size_t cap);
    long (*write)(mw_conn *c, const char *p, size_t n);
    void (*close)(mw_conn *c);
    /* Optional: nonzero when a read would return bytes (or the end) that the
     * transport holds already, so the socket will not signal them (TLS). */
    int (*pending)(mw_conn *c);
} mw_transport_vt;

typedef struct mw_proto_vt {
    const char *name;
    /* Optional: mw_conn_connect asks it before resolving: 0 to go on, or an
     * MW_E_* code with the message in msg[0..cap) (the options can never
     * make a valid start: nothing is resolved, connected or sent). */
    int (*check)(mw_conn *c, char *msg, size_t cap);
    /* Transport is up: a protocol with its own handshake starts it and calls
     * mw_conn_proto_ready when done; returns 0, or -1 after mw_conn_fail. */
    int (*start)(mw_conn *c);
    /* Parse c->in, emit messages, consume what was used. */
    void (*input)(mw_conn *c);
    /* Encode one message into c->out (or a pre-handshake queue): 0 or -1
     * (with a message in c->proto_err). */
    int (*send)(mw_conn *c, const char *p, size_t n, int kind);
    /* Begin a graceful close; returns 1 when the protocol drives the rest
     * (close handshake), 0 to have the connection flush and close. */
    int (*close)(mw_conn *c, int code, const char *reason, size_t n);
    /* The peer closed the stream (EOF). Returns the error to report, 0 none. */
    int (*eof)(mw_conn *c);
    /* Drop per-connection state (teardown) and free it (final). */
    void (*reset)(mw_conn *c);
    /* Optional: called once c->out is below maxSendBufferSize again after
     * the protocol set c->want_drained; it may append what it held back. */
    void (*drained)(mw_conn *c);
    /* Optional: the close wait (closeTimeout) of a close the script asked
     * for ran out. Returns the error to report, with the message in
     * msg[0..cap), or 0 to close quietly (the close handshake did complete,
     * or a failure was reported already). Without it: an error when queued
     * bytes could not be written. */
    int (*close_expired)(mw_conn *c, char *msg, size_t cap);
    /* Optional: bytes the protocol holds outside c->out until its handshake
     * completes (messages sent before it, the handshake's own queue). */
    size_t (*queued)(const mw_conn *c);
} mw_proto_vt;

/* Lengths, not strlen: a NUL inside a name or value must reach the ws
 * layer's check instead of cutting the header short. value NULL: send no
 * field of that name (a script's `false`: no default User-Agent). */
typedef struct mw_header { char *name, *value; size_t name_len, value_len; } mw_header;

#define MW_MAX_ADDRS 16
#define MW_PEND_ERRORS 4

/* Addresses being tried while connecting; freed once connected. */
typedef struct mw_addrs {
    struct sockaddr_storage a[MW_MAX_ADDRS];
    socklen_t len[MW_MAX_ADDRS];
    int n, idx;
} mw_addrs;

/* An error waiting to be delivered (errors are rare: allocated). */
typedef struct mw_err_ev {
    struct mw_err_ev *next;
    int code;
    char msg[];
} mw_err_ev;

struct mw_conn {
    mw_loop *loop;
    const mw_conn_events *ev;
    void *ud;                  /* the owner's (binding's) data */
    unsigned long id;
    int status;
    char *url_str;             /* the URL of the current (or last) connect */
    mw_url url;
    /* A hot reload's new URL, taken at the next connect while the current
     * socket stays on url (NULL: none); same protocol layer as url. */
    struct mw_next_url { char *str; mw_url url; } *next_url; /* heap: rare, and an mw_url is ~280 B */
    int use_tls;               /* TLS at the next connect */
    const mw_transport_vt *tp;
    void *tp_state;
    const mw_proto_vt *proto;
    void *proto_state;
    char proto_err[256];

    int fd;
    ev_io rio, wio;
    mw_timer deadline;         /* connect, then protocol handshake, then close wait */
    mw_timer reconnect_timer;
    struct mw_dns_req *dns_req;
    mw_addrs *addrs;           /* while connecting */
    char last_err[128];
    struct sockaddr_storage peer;
    socklen_t peerlen;

    mw_buf in, out;
    mw_task task;
    unsigned pending;          /* MW_PEND_* */
    int nerr;
    mw_err_ev *errs, **errs_tail;  /* queued on_error events, oldest first */
    mw_timer trim;             /* gives back buffers a burst grew, once idle */
    unsigned gen;              /* bumped on every teardown */
    int paused;
    int buffer_full;
    int flush_then_close;
    int close_error;           /* a close wait that runs out is an error (mw_conn_close) */
    int want_drained;          /* call proto->drained when c->out is below the limit */
    int proto_ready;           /* application data may flow */

    mw_conn_opts opt;
    mw_header *headers;
    int nheaders;
    void *conf;                /* see mw_conn_conf_vt */
    const mw_conn_conf_vt *conf_vt;

    uint64_t bytes_read, bytes_written;
};

/* Bytes waiting to be sent, in every queue a message can sit in: c->out and,
 * until the protocol is ready, the protocol's own queues. maxSendBufferSize,
 * bufferFull() and getSendBufferQueueSize() all judge by this one count. */
static inline size_t mw_conn_queued(const mw_conn *c)
{
    return c->out.len + (!c->proto_ready && c->proto->queued ? c->proto->queued(c) : 0);
}

/* Create a connection for url (not yet connected). Returns NULL with a
 * message in err (malformed URL, unknown scheme, out of memory). */
mw_conn *mw_conn_new(mw_loop *l, const char *url, const mw_conn_events *ev, void *ud,
                     char *err, size_t errcap);
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
/* Flush what is queued, then close. */
void mw_conn_finish(mw_conn *c);
/* Immediate close; on_close follows from the loop. Idempotent. */
void mw_conn_destroy(mw_conn *c);
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
int mw_conn_status(const mw_conn *c);
mw_conn_opts *mw_conn_options(mw_conn *c);
/* TLS at the next connect (the `transport` option; wss:// sets it). */
int mw_conn_tls(const mw_conn *c);
void mw_conn_set_tls(mw_conn *c, int on);
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
/* The URL the next connect uses (a reload's new one, else the current). */
const char *mw_conn_url(const mw_conn *c);
const mw_url *mw_conn_next_url(const mw_conn *c);
/* A connection that never connected reads as CLOSED from now on (a reload's
 * declaration of a connection the script had ended); no event. */
void mw_conn_mark_closed(mw_conn *c);

/* For transports and protocols. */
void mw_conn_transport_ready(mw_conn *c);
void mw_conn_proto_ready(mw_conn *c);
/* Report an error, then tear down (on_error then on_close, from the loop). */
void mw_conn_fail(mw_conn *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Queue an on_error without closing. */
void mw_conn_error(mw_conn *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The one re-entry check, after any call into the owner made while the
 * session of generation gen (c->gen before the call) was taking input:
 * nonzero when parsing must stop (the owner paused, destroyed or
 * reconnected the connection meanwhile). */
int mw_conn_interrupted(const mw_conn *c, unsigned gen);
/* Deliver one message. Returns mw_conn_interrupted after it. */
int mw_conn_emit_message(mw_conn *c, const char *p, size_t n, int kind);
/* Ensure queued output is flushed before the loop polls. */
void mw_conn_want_flush(mw_conn *c);
/* Close the socket now without an error (graceful end reached). */
void mw_conn_teardown(mw_conn *c);
/* Restart the deadline timer; after <= 0 stops it. */
void mw_conn_deadline(mw_conn *c, double after);

extern const mw_transport_vt mw_transport_tcp;
const mw_proto_vt *mw_proto_for_scheme(int scheme);
#endif
