/* layers: the registry that maps a URL's scheme to the protocol layer that
 * serves it and the stage it asks for by default; the one place that names
 * them, so conn.c knows none. Knows nothing of Lua or sockets. */
#include "conn_int.h"

extern const mw_proto_vt mw_proto_tcp, mw_proto_text, mw_proto_frame, mw_proto_ws;
extern const mw_stage_vt mw_stage_tls;

const mw_proto_vt *mw_proto_for_scheme(int scheme)
{
    switch (scheme) {
    case MW_SCHEME_TCP: return &mw_proto_tcp;
    case MW_SCHEME_TEXT: return &mw_proto_text;
    case MW_SCHEME_FRAME: return &mw_proto_frame;
    case MW_SCHEME_WS: case MW_SCHEME_WSS: return &mw_proto_ws;
    default: return NULL;
    }
}

const mw_stage_vt *mw_stage_for_url(const mw_url *u)
{
    return u->tls ? &mw_stage_tls : NULL;
}
