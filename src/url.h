/* url: parses the connection URLs a script gives (ws, wss, tcp, text, frame).
 * Pure string work: knows no sockets, DNS, libev or Lua. */
#ifndef MW_URL_H
#define MW_URL_H
#include <stddef.h>
#include <stdint.h>

enum {
    MW_SCHEME_WS = 1,
    MW_SCHEME_WSS,
    MW_SCHEME_TCP,
    MW_SCHEME_TEXT,
    MW_SCHEME_FRAME
};

enum {
    MW_HOST_NAME = 1,   /* a DNS name, ASCII, lowercased */
    MW_HOST_IPV4,       /* dotted quad */
    MW_HOST_IPV6        /* without brackets; a zone is kept as "fe80::1%eth0" */
};

typedef struct mw_url {
    int scheme;         /* MW_SCHEME_* */
    int tls;            /* 1 for wss; the `transport` property may add TLS to others */
    char host[256];     /* NUL-terminated, no brackets */
    int host_kind;      /* MW_HOST_* */
    uint16_t port;      /* 1..65535; 80 for ws, 443 for wss when not given */
    int port_given;     /* 1 when the URL spelled a port */
    char *path;         /* malloc'd: path + "?" + query, "/" when empty; no fragment */
} mw_url;

/* Parses s[0..len). Scheme names are case-insensitive; tcp, text and frame need
 * an explicit port. Userinfo ("user:pw@host") is rejected, not ignored: a
 * credential silently dropped would be a surprise. Control characters are
 * rejected anywhere; in the path, space, '"', '<', '>' and bytes >= 0x80 are
 * percent-encoded. Returns 0 and fills *out (release with mw_url_free), or -1
 * with *out zeroed (mw_url_free is still safe) and a one-line message in err
 * (truncated to errcap; err may be NULL when errcap is 0). */
int mw_url_parse(const char *s, size_t len, mw_url *out, char *err, size_t errcap);

/* Frees out->path; idempotent. */
void mw_url_free(mw_url *u);

/* "ws", "wss", "tcp", "text", "frame", or "?" for an unknown value. */
const char *mw_url_scheme_name(int scheme);

/* Writes the authority as a Host header wants it: "host", "host:port" when the
 * port is not the scheme's default, "[v6]" / "[v6]:port" for IPv6 (a zone is
 * left out, as RFC 6874 says it must not be sent). Returns the length it
 * needed (excluding NUL), as snprintf does. */
int mw_url_authority(const mw_url *u, char *buf, size_t cap);

/* A redirect's Location against the URL base (a ws or wss URL), as an
 * absolute ws:// or wss:// URL in out: absolute ws://, wss://, http:// (read
 * as ws://) and https:// (as wss://), scheme-relative "//host/path",
 * absolute paths "/path?q" and relative paths "x/y" (against the
 * directory of base's path; dot segments are kept as they are). 0, or -1
 * with why in err (another scheme, too long). */
int mw_url_resolve(const mw_url *base, const char *ref, char *out, size_t cap, char *err, size_t errcap);

#endif
