/* err: the one error convention of the C core: the failure kinds a script
 * sees in onError (mw.errors) and the negative codes of every class, each in
 * its own range, with one text each (mw_strerror).
 * Knows no I/O, no Lua and no engine: src/ws/ keeps its own WS_E_* codes,
 * which proto_ws.c (the one glue to it) maps into the MW_WS_* class. */
#ifndef MW_ERR_H
#define MW_ERR_H
#include <stddef.h>

/* Failure kinds passed to on_error: positive, stable (exported to Lua as
 * mw.errors under the names of mw_err_table). */
enum mw_err {
    MW_E_CONNECT_FAIL = 1, MW_E_SEND_FAIL = 2, MW_E_DNS_FAIL = 3, MW_E_TLS_FAIL = 4,
    MW_E_HANDSHAKE_FAIL = 5, MW_E_PROTOCOL_FAIL = 6, MW_E_PACKAGE_TOO_LARGE = 7,
    MW_E_TIMEOUT = 8, MW_E_READ_FAIL = 9,
};

/* Classes. Class k > 0 owns the negative codes -(k * 100) .. -(k * 100 + 99);
 * the kinds above are class 0. A new class takes the next hundred. */
enum mw_err_class {
    MW_ERRC_KIND = 0,   /* the positive kinds above */
    MW_ERRC_IO = 1,     /* transport reads and writes */
    MW_ERRC_DNS = 2,    /* name resolution (dns.c) */
    MW_ERRC_DEC = 3,    /* the text and frame decoders (codec.c) */
    MW_ERRC_WS = 4,     /* the ws engine's codes, mapped (mw_err_from_ws) */
};
#define MW_ERR_CLASS_SPAN 100

/* I/O: what a transport read or write returns instead of a byte count. */
enum {
    MW_IO_AGAIN = -100,       /* nothing now: wait until the socket (or TLS) is ready */
    MW_IO_ERROR = -101,       /* failed: errno says why, or the transport reported its own error */
};

/* DNS: the status of a resolution that failed. */
enum {
    MW_DNS_EFAIL = -200,      /* internal failure (c-ares refused the request) */
    MW_DNS_ENOTFOUND = -201,  /* the name does not exist or has no address */
    MW_DNS_ETIMEOUT = -202,   /* no DNS server answered in time */
    MW_DNS_ESERVER = -203,    /* servers unreachable, refused, failed, or answered garbage */
    MW_DNS_ENOMEM = -204,     /* out of memory */
    MW_DNS_EBADNAME = -205,   /* empty, too long, or malformed host name */
};

/* Decoders: the failures (codec.h has the two results that are none). */
enum {
    MW_DEC_TOO_LARGE = -300,  /* the message is (or will be) over the limit */
    MW_DEC_INVALID = -301,    /* not a valid encoding (frame length under 4) */
};

/* The ws engine: one code per class of its WS_E_* codes; the engine's own
 * code and text stay in the message that reports the failure. */
enum {
    MW_WS_ENOMEM = -400,      /* the engine ran out of memory */
    MW_WS_ERANDOM = -401,     /* its random source failed */
    MW_WS_EHANDSHAKE = -402,  /* the opening handshake failed: no WebSocket */
    MW_WS_EPROTOCOL = -403,   /* the peer broke RFC 6455 */
    MW_WS_ETOOBIG = -404,     /* a message over the size limit */
    MW_WS_EUSAGE = -405,      /* a call the engine refused; the connection is unaffected */
};

/* One entry per code of every class, kinds included. */
typedef struct mw_err_info {
    int code;
    int kind;           /* the MW_E_* kind it reports as; 0: the caller picks (I/O: read or send) */
    const char *name;   /* kinds: the mw.errors key ("CONNECT_FAIL"); others: the C name */
    const char *text;   /* what mw_strerror returns */
} mw_err_info;

extern const mw_err_info mw_err_table[];
extern const size_t mw_err_count;

/* A short fixed text for any code of the table; "unknown error" for
 * another, "no error" for 0. Never NULL. */
const char *mw_strerror(int code);
/* The class (MW_ERRC_*) whose range holds code, or -1 (0, or out of every range). */
int mw_err_class(int code);
/* The kind (MW_E_*) a failure with this code reports as; a kind is its own;
 * 0 for an unknown code and where the caller picks. */
int mw_err_kind(int code);
/* The MW_WS_* code for a ws engine code (WS_E_*, negative); 0 for 0.
 * Defined in proto_ws.c, the one file that includes the engine's header. */
int mw_err_from_ws(int ws_code);
#endif
