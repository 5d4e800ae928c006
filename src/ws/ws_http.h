/* ws_http: stateless HTTP/1.1 response head parser (status line + headers).
 * Knows nothing of sockets or WebSocket rules; returns slices into the caller's buffer. */
#ifndef WS_HTTP_H
#define WS_HTTP_H
#include <stddef.h>

/* The handshake refuses response heads larger than this (status line,
 * headers and the blank line). */
#define WS_HTTP_MAX_HEAD 16384

enum {
    WS_HTTP_PARTIAL   = 0,   /* need more bytes */
    WS_HTTP_EMALFORMED = -1, /* not an HTTP/1.x response head */
    WS_HTTP_ETOOLARGE = -2,  /* head longer than the limit given */
    WS_HTTP_ETOOMANY  = -3,  /* more headers than the caller's array holds */
};

typedef struct ws_http_header {
    const char *name;  size_t name_len;
    const char *value; size_t value_len;   /* surrounding whitespace trimmed */
} ws_http_header;

typedef struct ws_http_response {
    int minor_version;                     /* the x of HTTP/1.x */
    int status;                            /* 100..999 */
    const char *status_line; size_t status_line_len; /* without CR/LF */
    const char *reason; size_t reason_len;
    ws_http_header *headers;               /* caller's array ... */
    size_t max_headers;                    /* ... and its size */
    size_t num_headers;                    /* out */
} ws_http_response;

/* Parse the status line at buf[0..len) into r (status fields only).
 * Returns the bytes of the line including its LF (> 0), WS_HTTP_PARTIAL if
 * no LF yet (and fewer than max_len bytes), or a negative WS_HTTP_E*. */
long ws_http_parse_status(const char *buf, size_t len, size_t max_len, ws_http_response *r);

/* Parse a whole response head at buf[0..len): status line, header fields,
 * blank line. Lines may end in CRLF or bare LF. Obsolete line folding is
 * refused. Returns the head length including the blank line (> 0),
 * WS_HTTP_PARTIAL if the head is not complete yet (and fewer than max_len
 * bytes were given), or a negative WS_HTTP_E*. On success r->headers holds
 * r->num_headers slices into buf. */
long ws_http_parse_response(const char *buf, size_t len, size_t max_len, ws_http_response *r);

/* Find the end of a head: scans buf[from..len) for the blank line. Returns
 * the head length, or 0 if not found. `from` lets a caller resume a scan
 * without rescanning (pass the previous len). */
size_t ws_http_head_end(const char *buf, size_t len, size_t from);

/* Case-insensitive ASCII comparison of a[0..n) with the NUL-terminated s.
 * Returns 1 if equal. */
int ws_http_ieq(const char *a, size_t n, const char *s);
/* Whether c is an RFC 7230 token character. */
int ws_http_tchar(unsigned char c);
/* p[0..n) quoted for an error message into buf[0..cap): at most 60 bytes
 * (then "..."), anything unprintable, a backslash or a quote as \xHH. */
const char *ws_http_quote(char *buf, size_t cap, const char *p, size_t n);

/* Whether the comma-separated list v[0..n) contains `token`
 * (case-insensitive, optional whitespace around elements). Returns 1 or 0. */
int ws_http_list_has(const char *v, size_t n, const char *token);
#endif
