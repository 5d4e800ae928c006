/* proto_ws: what a ws:// connection has beyond a generic one: its options,
 * its events towards the owner and what its last handshake negotiated.
 * Knows nothing of Lua or sockets; the owner reaches them only from here. */
#ifndef MW_PROTO_WS_H
#define MW_PROTO_WS_H
#include "conn.h"

/* The WebSocket events, each given the owner's data (ud of mw_conn_new).
 * Each may run arbitrary user code, like mw_conn_events. */
typedef struct mw_ws_events {
    void (*on_connect)(void *ud, const char *head, size_t n);   /* the 101's head */
    void (*on_close)(void *ud, int code, const char *reason, size_t n);
    /* Returns nonzero to let the automatic pong go out. */
    int (*on_ping)(void *ud, const char *p, size_t n);
    void (*on_pong)(void *ud, const char *p, size_t n);
} mw_ws_events;

/* The options, read when a handshake starts (ping ones when it completes,
 * binary at each send). Strings are owned: set them with the setters. */
typedef struct mw_ws_opts {
    double ping_interval;      /* websocketPingInterval; 0: no pings */
    double ping_timeout;       /* websocketPingTimeout */
    int binary;                /* websocketType: 0 text frames, 1 binary */
    char *origin;              /* websocketOrigin, NULL: no Origin */
    char *protocols;           /* websocketClientProtocol as offered, NULL: none */
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

#endif
