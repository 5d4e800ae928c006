/* ws_http: HTTP/1.x response head parsing over a caller-owned buffer; no
 * copies, no allocation. Knows nothing of WebSocket semantics or I/O. */
#include "ws_http.h"
#include <stdio.h>
#include <string.h>

int ws_http_tchar(unsigned char c)
{
    /* RFC 7230 token characters. */
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_ows(char c) { return c == ' ' || c == '\t'; }

int ws_http_ieq(const char *a, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)s[i];
        if (!y) return 0;
        if (x >= 'A' && x <= 'Z') x += 32;
        if (y >= 'A' && y <= 'Z') y += 32;
        if (x != y) return 0;
    }
    return s[n] == 0;
}

const char *ws_http_quote(char *buf, size_t cap, const char *p, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)p[i];
        if (i == 60) { o += (size_t)snprintf(buf + o, cap - o, "..."); break; }
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') buf[o++] = (char)c;
        else o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    buf[o < cap ? o : cap - 1] = 0;
    return buf;
}

int ws_http_list_has(const char *v, size_t n, const char *token)
{
    size_t i = 0;
    while (i < n) {
        size_t b = i;
        while (i < n && v[i] != ',') i++;
        size_t e = i;
        while (b < e && is_ows(v[b])) b++;
        while (e > b && is_ows(v[e - 1])) e--;
        if (ws_http_ieq(v + b, e - b, token)) return 1;
        i++; /* skip the comma */
    }
    return 0;
}

size_t ws_http_head_end(const char *buf, size_t len, size_t from)
{
    /* The blank line is LF followed by LF or CRLF; back up so a terminator
     * split across calls is still seen. */
    size_t i = from > 2 ? from - 2 : 0;
    for (; i < len; i++) {
        const char *lf = memchr(buf + i, '\n', len - i);
        if (!lf) return 0;
        i = (size_t)(lf - buf);
        if (i + 1 < len && buf[i + 1] == '\n') return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') return i + 3;
    }
    return 0;
}

/* The line starting at buf[0..len): sets *line_len (without CR/LF) and
 * returns the length with its terminator, or 0 if no LF yet. */
static size_t next_line(const char *buf, size_t len, size_t *line_len)
{
    const char *lf = memchr(buf, '\n', len);
    if (!lf) return 0;
    size_t n = (size_t)(lf - buf);
    *line_len = (n && buf[n - 1] == '\r') ? n - 1 : n;
    return n + 1;
}

long ws_http_parse_status(const char *buf, size_t len, size_t max_len, ws_http_response *r)
{
    size_t ll;
    size_t adv = next_line(buf, len, &ll);
    if (!adv) return len >= max_len ? WS_HTTP_ETOOLARGE : WS_HTTP_PARTIAL;
    if (adv > max_len) return WS_HTTP_ETOOLARGE;
    /* "HTTP/1.x SP 3DIGIT SP reason" (the reason may be empty, and some
     * servers omit the SP before an empty reason). */
    if (ll < 12 || memcmp(buf, "HTTP/1.", 7) != 0) return WS_HTTP_EMALFORMED;
    if (buf[7] < '0' || buf[7] > '9' || buf[8] != ' ') return WS_HTTP_EMALFORMED;
    for (int i = 9; i < 12; i++)
        if (buf[i] < '0' || buf[i] > '9') return WS_HTTP_EMALFORMED;
    if (ll > 12 && buf[12] != ' ') return WS_HTTP_EMALFORMED;
    if (buf[9] == '0') return WS_HTTP_EMALFORMED;
    for (size_t i = 0; i < ll; i++) {
        unsigned char c = (unsigned char)buf[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) return WS_HTTP_EMALFORMED;
    }
    r->minor_version = buf[7] - '0';
    r->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    r->status_line = buf;
    r->status_line_len = ll;
    r->reason = ll > 12 ? buf + 13 : buf + ll;
    r->reason_len = ll > 12 ? ll - 13 : 0;
    return (long)adv;
}

long ws_http_parse_response(const char *buf, size_t len, size_t max_len, ws_http_response *r)
{
    r->num_headers = 0;
    long st = ws_http_parse_status(buf, len, max_len, r);
    if (st <= 0) return st;
    size_t pos = (size_t)st;
    for (;;) {
        size_t ll;
        size_t adv = next_line(buf + pos, len - pos, &ll);
        if (!adv) return len >= max_len ? WS_HTTP_ETOOLARGE : WS_HTTP_PARTIAL;
        if (pos + adv > max_len) return WS_HTTP_ETOOLARGE;
        const char *line = buf + pos;
        pos += adv;
        if (ll == 0) return (long)pos;  /* blank line: end of head */
        if (r->num_headers == r->max_headers) return WS_HTTP_ETOOMANY;
        /* field-name ":" OWS field-value OWS; no whitespace before the
         * colon (RFC 7230 3.2.4), no folded continuation lines. */
        size_t c = 0;
        while (c < ll && ws_http_tchar((unsigned char)line[c])) c++;
        if (c == 0 || c == ll || line[c] != ':') return WS_HTTP_EMALFORMED;
        size_t vb = c + 1, ve = ll;
        while (vb < ve && is_ows(line[vb])) vb++;
        while (ve > vb && is_ows(line[ve - 1])) ve--;
        for (size_t i = vb; i < ve; i++) {
            unsigned char ch = (unsigned char)line[i];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return WS_HTTP_EMALFORMED;
        }
        ws_http_header *h = &r->headers[r->num_headers++];
        h->name = line;
        h->name_len = c;
        h->value = line + vb;
        h->value_len = ve - vb;
    }
}
