/* fuzz_ws_http: the HTTP response head parser (ws_http_parse_response,
 * ws_http_head_end, ws_http_list_has) on arbitrary bytes. Checks the slices it
 * returns and that splitting or truncating the input never changes the verdict.
 * Knows only ws/ws_http.h. */
#include "ws/ws_http.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int inside(const char *buf, size_t len, const char *p, size_t n)
{
    return p >= buf && p <= buf + len && n <= (size_t)(buf + len - p);
}

/* Reference for ws_http_list_has: split at commas, trim SP/HT, compare
 * case-insensitively. */
static int ref_list_has(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), b = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && v[i] != ',') continue;
        size_t s = b, e = i;
        while (s < e && (v[s] == ' ' || v[s] == '\t')) s++;
        while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t')) e--;
        if (e - s == tl) {
            size_t k = 0;
            for (; k < tl; k++) {
                unsigned char x = (unsigned char)v[s + k], y = (unsigned char)tok[k];
                if (x >= 'A' && x <= 'Z') x += 32;
                if (y >= 'A' && y <= 'Z') y += 32;
                if (x != y) break;
            }
            if (k == tl) return 1;
        }
        b = i + 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    /* byte 0: header array size; byte 1: limit selector; byte 2: a split point */
    size_t maxh = data[0] % 40;
    size_t max_len = data[1] < 128 ? WS_HTTP_MAX_HEAD : 16 + (size_t)data[1] * 4;
    size_t split_sel = data[2];
    data += 3;
    size -= 3;
    /* a private copy, so reads past the end are caught exactly */
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);

    ws_http_header *hs = malloc(sizeof *hs * (maxh ? maxh : 1));
    ws_http_response r;
    memset(&r, 0, sizeof r);
    r.headers = hs;
    r.max_headers = maxh;
    long n = ws_http_parse_response(buf, size, max_len, &r);
    if (n > 0) {
        if ((size_t)n > size || (size_t)n > max_len) abort();
        if (r.status < 100 || r.status > 999 || r.minor_version < 0 || r.minor_version > 9) abort();
        if (!inside(buf, (size_t)n, r.status_line, r.status_line_len)) abort();
        if (!inside(buf, (size_t)n, r.reason, r.reason_len)) abort();
        if (r.num_headers > maxh) abort();
        for (size_t i = 0; i < r.num_headers; i++) {
            ws_http_header *h = &hs[i];
            if (!inside(buf, (size_t)n, h->name, h->name_len) || h->name_len == 0) abort();
            if (!inside(buf, (size_t)n, h->value, h->value_len)) abort();
            for (size_t k = 0; k < h->name_len; k++)
                if (!tchar((unsigned char)h->name[k])) abort();
            for (size_t k = 0; k < h->value_len; k++) {
                unsigned char c = (unsigned char)h->value[k];
                if ((c < 0x20 && c != '\t') || c == 0x7f) abort();
            }
            if (h->value_len && (h->value[0] == ' ' || h->value[0] == '\t' ||
                                 h->value[h->value_len - 1] == ' ' || h->value[h->value_len - 1] == '\t'))
                abort();
            if (h->name[h->name_len] != ':') abort();
            static const char *toks[] = {"websocket", "upgrade", "a"};  /* an empty token means nothing */
            for (int t = 0; t < 3; t++)
                if (ws_http_list_has(h->value, h->value_len, toks[t]) !=
                    ref_list_has(h->value, h->value_len, toks[t]))
                    abort();
        }
        /* the blank line the parser stopped at is the first one */
        if (ws_http_head_end(buf, size, 0) != (size_t)n) abort();
        /* every truncation of a good head is incomplete, never an error */
        size_t step = (size_t)n / 64 + 1;
        for (size_t k = 0; k < (size_t)n; k += step) {
            ws_http_response q;
            memset(&q, 0, sizeof q);
            q.headers = hs;
            q.max_headers = maxh;
            if (ws_http_parse_response(buf, k, max_len, &q) != WS_HTTP_PARTIAL) abort();
        }
    } else if (n == WS_HTTP_PARTIAL) {
        if (size >= max_len) abort();
    } else if (n != WS_HTTP_EMALFORMED && n != WS_HTTP_ETOOLARGE && n != WS_HTTP_ETOOMANY) {
        abort();
    }

    /* ws_http_head_end resumed from a split point finds what one scan finds */
    size_t whole = ws_http_head_end(buf, size, 0);
    if (whole > size) abort();
    size_t cut = size ? split_sel * size / 255 : 0;
    size_t first = ws_http_head_end(buf, cut, 0);
    if (first) {
        if (first != whole) abort();
    } else if (ws_http_head_end(buf, size, cut) != whole) {
        abort();
    }
    free(hs);
    free(buf);
    return 0;
}
