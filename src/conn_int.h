/* conn_int: the private state of a connection and the interface between
 * the connection and its layers (stages, protocols). Included by the
 * I/O layer only (conn.c, stages, protocols); never by the
 * binding, which sees conn.h. */
#ifndef MW_CONN_INT_H
#define MW_CONN_INT_H
#include "conn.h"
#include "net.h"

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

/* A stage sits between the socket and the protocol and transforms the byte
 * stream both ways (TLS; a proxy handshake; a test's counter). Stages stack:
 * each reads and writes through the one below it (mw_stage_read and
 * mw_stage_write), the lowest through the socket, and the protocol through
 * the highest. The connection drives the stack and knows no stage by name:
 * a stage attaches itself (mw_conn_stage), is enabled for the connects it
 * takes part in, and keeps its state across sessions (a TLS session for
 * resumption, its options). */
typedef struct mw_stage mw_stage;

typedef struct mw_stage_vt {
    const char *name;          /* in messages: "<name> handshake with <url>: timed out" */
    int level;                 /* stacking order: a lower level sits nearer the socket */
    /* The layers below are up: 0 ready now, 1 in progress (the stage calls
     * mw_stage_ready when done), -1 failed (reported with mw_conn_fail). */
    int (*start)(mw_stage *s);
    /* Bytes towards the protocol: > 0, 0 orderly EOF, MW_IO_AGAIN,
     * MW_IO_ERROR (errno set, or the stage reported its own error). */
    long (*input)(mw_stage *s, char *p, size_t cap);
    /* Bytes from the protocol towards the peer: how many were taken, or
     * MW_IO_AGAIN, MW_IO_ERROR as input. */
    long (*output)(mw_stage *s, const char *p, size_t n);
    /* Optional: nonzero when an input would return bytes (or the end) that
     * the stage holds already, so the socket will not signal them. */
    int (*pending)(mw_stage *s);
    /* Optional: the session ends (teardown): drop what belongs to it. */
    void (*stop)(mw_stage *s);
    /* Optional: the connection is freed: free s->state. */
    void (*free)(mw_stage *s);
    /* Optional, asked at each connect before anything is resolved: whether
     * the enabled stage takes part for the URL u (1, else 0: it sits this
     * session out), or -1 with a message in msg (the connect fails). A
     * stage that sets *dial_host and *dial_port (borrowed until the next
     * prepare) has the socket connect there instead of u's host (a
     * proxy), and *what names the target in the messages of the connect
     * ("ws://host/ via http proxy 127.0.0.1:3128"). */
    int (*prepare)(mw_stage *s, const mw_url *u, const char **dial_host, int *dial_port,
                   const char **what, char *msg, size_t cap);
    /* Optional: the stage's start ran out of time: it reports the failure
     * itself (mw_conn_fail). Without it the connection reports one. */
    void (*timeout)(mw_stage *s);
    /* Its start is part of connecting: timed by connectTimeout, not
     * handshakeTimeout. */
    int connect_phase;
} mw_stage_vt;

struct mw_stage {
    const mw_stage_vt *vt;
    void *state;               /* the stage's own, made and freed by it */
    mw_conn *c;
    mw_stage *below;           /* in the current session; NULL: the socket */
    int pos;                   /* its index in c->stack */
    int enabled;               /* takes part in the next connect */
    int skip;                  /* enabled, but its prepare left it out of this session */
};

#define MW_MAX_STAGES 4
/* Levels of the known stages: a proxy's handshake runs on the socket, TLS
 * over it (to the target, through the tunnel). */
enum { MW_STAGE_LEVEL_PROXY = 10, MW_STAGE_LEVEL_TLS = 20 };

/* c's stage of vt; when there is none, a disabled one is attached if create
 * is set. NULL when none (or out of memory, or MW_MAX_STAGES reached). */
mw_stage *mw_conn_stage(mw_conn *c, const mw_stage_vt *vt, int create);
/* Read and write through the layer below s (the socket under the lowest). */
long mw_stage_read(mw_stage *s, char *p, size_t cap);
long mw_stage_write(mw_stage *s, const char *p, size_t n);
/* A start that returned 1 has completed: the stages above start next. */
void mw_stage_ready(mw_stage *s);
/* Retry the connection's reads and writes (a stage's cross-wait, a read
 * that needed the socket writable, has ended). */
void mw_stage_wake(mw_stage *s);
/* The socket, for a stage that waits on its readiness during its start. */
int mw_stage_fd(const mw_stage *s);

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

#define MW_PEND_ERRORS 4

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
    /* A redirect chain under way: the URL before it (restored at the next
     * connect that is not a redirect's), the hops so far and their names. */
    struct mw_next_url *home;
    int redirects, redirecting, redirect_tls;
    char *chain;               /* "ws://a/ -> ws://b/" */
    const mw_layers *layers;
    mw_stage *stages[MW_MAX_STAGES]; /* attached, in attach order */
    int nstages;
    mw_stage *stack[MW_MAX_STAGES];  /* the current session's, lowest first */
    int depth;
    int starting;              /* stack index of the stage whose start runs */
    const mw_proto_vt *proto;
    void *proto_state;
    char proto_err[256];

    mw_net net;
    ev_io rio, wio;
    mw_timer deadline;         /* connect, then protocol handshake, then close wait */
    mw_timer reconnect_timer;

    mw_buf in, out;
    mw_task task;
    unsigned pending;          /* MW_PEND_* */
    unsigned spec_skip;        /* writes left before read_after_write tries again */
    unsigned spec_misses;      /* its reads in a row that found nothing */
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
    mw_conn_stats st;
};

/* Bytes waiting to be sent, in every queue a message can sit in: c->out and,
 * until the protocol is ready, the protocol's own queues. maxSendBufferSize,
 * bufferFull() and getSendBufferQueueSize() all judge by this one count. */
static inline size_t mw_conn_queued(const mw_conn *c)
{
    return c->out.len + (!c->proto_ready && c->proto->queued ? c->proto->queued(c) : 0);
}

/* For stages and protocols. */
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
/* Deliver the messages v[0..n) of one read. Returns how many were taken: n,
 * or fewer when one interrupted the connection (that one counted). */
size_t mw_conn_emit_messages(mw_conn *c, const mw_msg *v, size_t n);
/* Ensure queued output is flushed before the loop polls. */
void mw_conn_want_flush(mw_conn *c);
/* Close the socket now without an error (graceful end reached). */
void mw_conn_teardown(mw_conn *c);
/* The handshake was redirected to url (absolute, same protocol layer):
 * this session ends without an event and the next begins at url at once;
 * the URL before the chain comes back at the next connect the script or a
 * reconnect makes. 0, or -1 with why in err (then nothing changed). */
int mw_conn_redirect(mw_conn *c, const char *url, char *err, size_t cap);
/* The hops of the redirect chain under way (0: none), and its URLs
 * ("ws://a/ -> ws://b/", NULL: none). */
int mw_conn_redirects(const mw_conn *c);
const char *mw_conn_redirect_chain(const mw_conn *c);
/* Restart the deadline timer; after <= 0 stops it. */
void mw_conn_deadline(mw_conn *c, double after);

/* A registry (layers.c has the standard one): which protocol serves a
 * scheme (NULL: none), which stage a URL asks for by default (wss: TLS;
 * NULL: none). Called through the pointers, so conn.c links to no layer. */
struct mw_layers {
    const mw_proto_vt *(*proto_for_scheme)(int scheme);
    const mw_stage_vt *(*stage_for_url)(const mw_url *u);
};
#endif
