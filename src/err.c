/* err: the table of every error code and kind, and mw_strerror over it.
 * Knows no I/O, no Lua and no engine (see err.h). */
#include "err.h"

#define K(n, text) { MW_E_##n, MW_E_##n, #n, text }
#define E(code, kind, text) { code, kind, #code, text }

const mw_err_info mw_err_table[] = {
    K(CONNECT_FAIL, "connect failed"),
    K(SEND_FAIL, "send failed"),
    K(DNS_FAIL, "name resolution failed"),
    K(TLS_FAIL, "TLS failed"),
    K(HANDSHAKE_FAIL, "handshake failed"),
    K(PROTOCOL_FAIL, "protocol error"),
    K(PACKAGE_TOO_LARGE, "package too large"),
    K(TIMEOUT, "timed out"),
    K(READ_FAIL, "read failed"),

    E(MW_IO_AGAIN, 0, "would block"),
    E(MW_IO_ERROR, 0, "I/O error"),

    /* dns.c puts these in its messages: "resolve <host>: host not found" */
    E(MW_DNS_EFAIL, MW_E_DNS_FAIL, "resolver failure"),
    E(MW_DNS_ENOTFOUND, MW_E_DNS_FAIL, "host not found"),
    E(MW_DNS_ETIMEOUT, MW_E_DNS_FAIL, "timed out waiting for a DNS server"),
    E(MW_DNS_ESERVER, MW_E_DNS_FAIL, "DNS server error"),
    E(MW_DNS_ENOMEM, MW_E_DNS_FAIL, "out of memory"),
    E(MW_DNS_EBADNAME, MW_E_DNS_FAIL, "invalid host name"),

    E(MW_DEC_TOO_LARGE, MW_E_PACKAGE_TOO_LARGE, "message over the size limit"),
    E(MW_DEC_INVALID, MW_E_PROTOCOL_FAIL, "invalid message length"),

    E(MW_WS_ENOMEM, MW_E_PROTOCOL_FAIL, "websocket engine out of memory"),
    E(MW_WS_ERANDOM, MW_E_PROTOCOL_FAIL, "websocket random source failed"),
    E(MW_WS_EHANDSHAKE, MW_E_HANDSHAKE_FAIL, "websocket handshake failed"),
    E(MW_WS_EPROTOCOL, MW_E_PROTOCOL_FAIL, "websocket protocol violation"),
    E(MW_WS_ETOOBIG, MW_E_PACKAGE_TOO_LARGE, "websocket message too large"),
    E(MW_WS_EUSAGE, MW_E_PROTOCOL_FAIL, "websocket call refused"),
};

const size_t mw_err_count = sizeof mw_err_table / sizeof mw_err_table[0];

static const mw_err_info *find(int code)
{
    for (size_t i = 0; i < mw_err_count; i++)
        if (mw_err_table[i].code == code) return &mw_err_table[i];
    return NULL;
}

const char *mw_strerror(int code)
{
    if (code == 0) return "no error";
    const mw_err_info *e = find(code);
    return e ? e->text : "unknown error";
}

int mw_err_class(int code)
{
    if (code > 0 && code < MW_ERR_CLASS_SPAN) return MW_ERRC_KIND;
    if (code >= 0) return -1;
    int k = (int)(-(long)code / MW_ERR_CLASS_SPAN);
    return k >= MW_ERRC_IO && k <= MW_ERRC_WS ? k : -1;
}

int mw_err_kind(int code)
{
    const mw_err_info *e = find(code);
    return e ? e->kind : 0;
}
