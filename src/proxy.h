/* proxy: what a proxy is and how to talk to it, without I/O: the proxy
 * setting's syntax, the choice from the environment (http_proxy,
 * https_proxy, all_proxy, no_proxy) and the handshakes of HTTP CONNECT
 * (RFC 9110 9.3.6) and SOCKS5 (RFC 1928, username/password RFC 1929) as
 * bytes in, bytes out. Knows no sockets, libev, connections or Lua; the
 * stage that drives it over a socket is stage_proxy.c. */
#ifndef MW_PROXY_H
#define MW_PROXY_H
#include <stddef.h>

enum mw_proxy_kind {
    MW_PROXY_NONE = 0,
    MW_PROXY_HTTP,      /* HTTP CONNECT */
    MW_PROXY_SOCKS5,    /* SOCKS5, the target's name resolved here */
    MW_PROXY_SOCKS5H,   /* SOCKS5, the target's name resolved by the proxy */
};

typedef struct mw_proxy {
    int kind;                   /* MW_PROXY_* */
    char host[256];             /* no brackets */
    int port;
    char user[256], pass[256];  /* from the URL's user info (percent-decoded); "" none */
    int has_user;
} mw_proxy;

/* "http proxy", "socks5 proxy": how messages name a kind. */
const char *mw_proxy_kind_name(int kind);

/* Parse a proxy setting: "host:port" (of kind default_kind), or a URL
 * "http://[user:pass@]host[:port]", "socks5://...", "socks5h://..."
 * ("socks://" reads as socks5h, as curl does; the default ports are 1080
 * for SOCKS and 3128 for HTTP when the URL has none). 0, or -1 with the
 * reason in err; the message never repeats the credentials. */
int mw_proxy_parse(const char *s, int default_kind, mw_proxy *out, char *err, size_t cap);

/* "host:port" of p, IPv6 in brackets (never the credentials). */
void mw_proxy_where(const mw_proxy *p, char *buf, size_t cap);

/* The environment's proxy for a target, as curl reads it: tls targets
 * (wss://, transport "ssl") take https_proxy, others http_proxy, then
 * all_proxy for either; the lower-case name first, then the upper-case
 * (HTTP_PROXY is not read when REQUEST_METHOD is set: in a CGI program a
 * request's "Proxy:" header sets it). no_proxy lists names (a domain matches
 * itself and its subdomains, a leading dot is ignored), IP addresses,
 * CIDR ranges (v4 and v6), each with an optional ":port", or "*" for
 * every target. getenv_fn reads one variable (getenv in the program; a
 * table in the tests). Returns the setting string to parse (borrowed from
 * the environment) with the variable's name in *var, or NULL when no proxy
 * applies. */
const char *mw_proxy_from_env(const char *(*getenv_fn)(const char *name, void *ud), void *ud,
                              int tls, const char *host, int port, const char **var);
/* Whether no_proxy (the value itself) exempts host:port. */
int mw_proxy_no_proxy_match(const char *no_proxy, const char *host, int port);

/* ---- the handshake ---- */

enum { MW_PROXY_HS_MORE = 0, MW_PROXY_HS_DONE = 1, MW_PROXY_HS_FAIL = -1 };

typedef struct mw_proxy_hs {
    int kind, step;
    char out[1024];             /* bytes to send to the proxy now */
    size_t outlen;
    unsigned char in[8192];     /* the reply so far */
    size_t inlen;
    size_t need;                /* SOCKS5: the bytes the current reply needs */
    unsigned char addr[262];    /* SOCKS5: the request's ATYP, address and port */
    size_t addrlen;
    int code;                   /* after FAIL: an MW_E_* kind */
    char err[256];              /* after FAIL: why, naming no credentials */
    const mw_proxy *p;
} mw_proxy_hs;

/* Begin the handshake with proxy p towards target host:port. For HTTP,
 * authorization is the whole Proxy-Authorization value (NULL: Basic from
 * p's user info, or none). For SOCKS5, target_ip, when not NULL, is the
 * target's address resolved here (4 or 16 bytes, ip_len), else the name is
 * sent. The first bytes to send are in hs->out. 0, or -1 with hs->err set
 * (a name or credential too long for the protocol). p must outlive hs. */
int mw_proxy_hs_start(mw_proxy_hs *hs, const mw_proxy *p, const char *host, int port,
                      const char *authorization, const unsigned char *target_ip, int ip_len);
/* Bytes from the proxy. *used is how many were taken; what follows a
 * finished handshake belongs to the tunnel. MORE: send hs->out (when
 * hs->outlen > 0, then set it to 0) and read on; DONE: the tunnel is up;
 * FAIL: hs->err says why. */
int mw_proxy_hs_input(mw_proxy_hs *hs, const char *p, size_t n, size_t *used);
/* The proxy closed the connection in the middle: FAIL with a message. */
int mw_proxy_hs_eof(mw_proxy_hs *hs);
/* What the handshake waits for now, for a timeout's message. */
const char *mw_proxy_hs_waiting(const mw_proxy_hs *hs);
#endif
