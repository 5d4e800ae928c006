/* layers.h: the standard set of protocol layers and stages, for creators of
 * connections (the binding, the C tests). */
#ifndef MW_LAYERS_H
#define MW_LAYERS_H
#include "conn.h"

/* tcp, text, frame, ws and wss; TLS for wss:// and the other TLS schemes. */
extern const mw_layers mw_layers_std;

/* Whether URLs of schemes a and b are served by one protocol layer (ws and
 * wss are; tcp, text and frame each have their own). */
int mw_layers_same_proto(int scheme_a, int scheme_b);
#endif
