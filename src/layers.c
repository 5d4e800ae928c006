/* layers: the standard registry, which maps a URL's scheme to the protocol
 * layer that serves it and the stage it asks for by default; the one place
 * that names them. The connection's creator hands it to mw_conn_new, so
 * conn.c names none and calls nothing here. Knows nothing of Lua or sockets. */
#include "layers.h"
#include "conn_int.h"

extern const mw_proto_vt mw_proto_tcp, mw_proto_text, mw_proto_frame, mw_proto_ws;
extern const mw_stage_vt mw_stage_tls;

static const mw_proto_vt *proto_for_scheme(int scheme)
{
    switch (scheme) {
    case MW_SCHEME_TCP: return &mw_proto_tcp;
    case MW_SCHEME_TEXT: return &mw_proto_text;
    case MW_SCHEME_FRAME: return &mw_proto_frame;
    case MW_SCHEME_WS: case MW_SCHEME_WSS: return &mw_proto_ws;
    default: return NULL;
    }
}

static const mw_stage_vt *stage_for_url(const mw_url *u)
{
    return u->tls ? &mw_stage_tls : NULL;
}

const mw_layers mw_layers_std = { proto_for_scheme, stage_for_url };

int mw_layers_same_proto(int a, int b) { return proto_for_scheme(a) == proto_for_scheme(b); }
