/* stage_proxy: the proxy stage (a mw_stage_vt): it has the socket connect
 * to the proxy, runs the proxy's handshake (proxy.h) over it, then passes
 * bytes through, so that TLS and the protocol run end to end to the target
 * through the tunnel. Knows nothing of Lua or frame bits. */
#ifndef MW_STAGE_PROXY_H
#define MW_STAGE_PROXY_H
#include "conn.h"

enum mw_proxy_mode {
    MW_PROXY_FROM_ENV = 0,  /* http_proxy, https_proxy, all_proxy, no_proxy at each connect */
    MW_PROXY_OFF,           /* none, whatever the environment says */
    MW_PROXY_SET,           /* the setting given */
};

/* How the next connects reach their target. Strings are borrowed (copied). */
typedef struct mw_proxy_setting {
    int mode;                   /* MW_PROXY_* mode */
    const char *spec;           /* SET: "http://[user:pass@]host:port", "socks5h://..." */
    int default_kind;           /* SET: the kind of a spec without a scheme (mw_proxy_kind) */
    const char *authorization;  /* HTTP: the whole Proxy-Authorization value; NULL: Basic from the user info */
    const char *user, *pass;    /* override the user info (NULL: keep it) */
} mw_proxy_setting;

/* Set how c's next connects go (the current connection keeps its way).
 * A connection that will never use a proxy keeps no proxy state. The
 * spec was checked by the caller (mw_proxy_parse); one from the
 * environment is checked at the connect, which fails naming the variable.
 * 0, or -1 when out of memory. */
int mw_proxy_configure(mw_conn *c, const mw_proxy_setting *s);
/* Give dst the proxy setting of src, for a reload. 0, or -1 (memory). */
int mw_proxy_copy_opts(mw_conn *dst, const mw_conn *src);
/* Whether the environment names any proxy at all (so a connection left
 * to it needs the stage). */
int mw_proxy_env_any(void);
#endif
