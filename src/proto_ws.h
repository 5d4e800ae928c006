/* proto_ws: what a ws:// connection has beyond a generic one: its options,
 * its events towards the owner and what its last handshake negotiated.
 * Knows nothing of Lua or sockets; the owner reaches them only from here. */
#ifndef MW_PROTO_WS_H
#define MW_PROTO_WS_H
#include "conn.h"
#include <stdint.h>

/* The WebSocket events, each given the owner's data (ud of mw_conn_new).
 * Each may run arbitrary user code, like mw_conn_events. */
typedef struct mw_ws_events {
    void (*on_connect)(void *ud, const char *head, size_t n);   /* the 101's head */
    void (*on_close)(void *ud, int code, const char *reason, size_t n);
    /* Returns nonzero to let the automatic pong go out. */
    int (*on_ping)(void *ud, const char *p, size_t n);
    void (*on_pong)(void *ud, const char *p, size_t n);
} mw_ws_events;

/* websocketCompression: permessage-deflate (RFC 7692), offered unless off.
 * 0 in a number means its default. */
typedef struct mw_ws_deflate {
    int off;                   /* 1: no offer (websocketCompression = false) */
    int client_max_window_bits;/* 0: offered without a value (the server may pick); 8..15; -1: not offered */
    int server_max_window_bits;/* 0: not asked (the server picks); 8..15 */
    int client_no_context_takeover;
    int server_no_context_takeover;
    int level;                 /* zlib level 1..9; 0: 6 */
    int mem_level;             /* zlib memLevel 1..9; 0: 4 (README: memory per connection) */
    size_t threshold;          /* smallest message compressed, bytes; 0: 32 */
} mw_ws_deflate;

/* The defaults each 0 of mw_ws_deflate stands for. */
#define MW_WS_DEFLATE_LEVEL 6
#define MW_WS_DEFLATE_MEM_LEVEL 4
#define MW_WS_DEFLATE_THRESHOLD 32

/* Whether d is usable; 0, or -1 with msg[0..cap) naming the field and why. */
int mw_ws_deflate_check(const mw_ws_deflate *d, char *msg, size_t cap);

/* The options, read when a handshake starts (ping ones when it completes,
 * binary at each send). Strings are owned: set them with the setters. */
typedef struct mw_ws_opts {
    double ping_interval;      /* websocketPingInterval; 0: no pings */
    double ping_timeout;       /* websocketPingTimeout */
    int binary;                /* websocketType: 0 text frames, 1 binary */
    char *origin;              /* websocketOrigin, NULL: no Origin */
    char *protocols;           /* websocketClientProtocol as offered, NULL: none */
    mw_ws_deflate deflate;     /* websocketCompression */
    int follow_redirects;      /* followRedirects: how many 3xx answers to follow */
} mw_ws_opts;

/* Set the events of c; nothing on a connection that is not ws://. 0, or -1
 * when out of memory. */
int mw_ws_set_events(mw_conn *c, const mw_ws_events *ev);
/* c's options for reading and writing the numbers (any connection may hold
 * them; only ws:// uses them). NULL when out of memory. */
mw_ws_opts *mw_ws_options(mw_conn *c);
/* The options for reading: the defaults when none was ever set. */
const mw_ws_opts *mw_ws_options_get(const mw_conn *c);
/* Copy s (NULL: none) into the origin or the offered subprotocols. 0, or -1
 * when out of memory (the old value is gone then). */
int mw_ws_set_origin(mw_conn *c, const char *s);
int mw_ws_set_protocols(mw_conn *c, const char *s);
/* The subprotocol the server chose in the last completed handshake ("" for
 * none); until one completes, the offer (NULL when none). */
const char *mw_ws_client_protocol(const mw_conn *c);
/* The extensions the server agreed to in the last completed handshake, as
 * a Sec-WebSocket-Extensions value with every parameter spelled out
 * ("permessage-deflate; server_max_window_bits=15; client_max_window_bits=15"),
 * "" for none; NULL until one completes. */
const char *mw_ws_extensions(const mw_conn *c);
/* The status of the last handshake's answer when it was not 101 (0: none,
 * or not a ws connection), its Retry-After seconds in *retry_after (-1 none). */
int mw_ws_refusal(const mw_conn *c, long *retry_after);
/* Send a ping with payload p[0..n) (n <= 125) on an open ws connection.
 * 0, or -1 with why in c->proto_err (not open, not ws, too long). */
int mw_ws_ping(mw_conn *c, const char *p, size_t n);
/* Bytes zlib holds now for c's compression (both directions), and the
 * number of its allocations so far; 0 for a connection without any. */
size_t mw_ws_zlib_bytes(const mw_conn *c, uint64_t *allocs);

#endif
