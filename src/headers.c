/* headers: the extra header fields of a connection (see headers.h). */
#include "headers.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void mw_headers_free(mw_header **h, int *n)
{
    for (int i = 0; i < *n; i++) { free((*h)[i].name); free((*h)[i].value); }
    free(*h);
    *h = NULL;
    *n = 0;
}

/* p[0..n), NUL included, plus a terminating NUL. */
static char *strndup_nul(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) { memcpy(s, p, n); s[n] = 0; }
    return s;
}

int mw_headers_copy(mw_header **dst, int *ndst, const mw_header *h, int n)
{
    mw_headers_free(dst, ndst);
    if (n <= 0) return 0;
    mw_header *d = *dst = calloc((size_t)n, sizeof *d);
    if (!d) return -1;
    for (int i = 0; i < n; i++) {
        d[i].name = strndup_nul(h[i].name, h[i].name_len);
        /* a NULL value (the script's `false`) stays NULL: send none of it */
        d[i].value = h[i].value ? strndup_nul(h[i].value, h[i].value_len) : NULL;
        d[i].name_len = h[i].name_len;
        d[i].value_len = h[i].value ? h[i].value_len : 0;
        *ndst = i + 1;
        if (!d[i].name || (h[i].value && !d[i].value)) return -1;
    }
    return 0;
}

/* Replace each occurrence of secret[0..n) in msg (NUL-terminated) with "***". */
static void redact_one(char *msg, const char *secret, size_t n)
{
    if (n < 4) return; /* too short to be a credential, too common to blank out */
    char *p = msg;
    while ((p = memmem(p, strlen(p), secret, n)) != NULL) {
        memmove(p + 3, p + n, strlen(p + n) + 1);
        memcpy(p, "***", 3);
        p += 3;
    }
}

void mw_headers_redact(const mw_header *h, int n, char *msg)
{
    for (int i = 0; i < n; i++) {
        const char *v = h[i].value;
        size_t vn = h[i].value_len;
        int cookie = strcasecmp(h[i].name, "Cookie") == 0;
        if (!v || (!cookie && strcasecmp(h[i].name, "Authorization") != 0 &&
                   strcasecmp(h[i].name, "Proxy-Authorization") != 0))
            continue;
        redact_one(msg, v, vn);
        /* and each part on its own: a cookie's values, a scheme's credentials */
        for (size_t a = 0; a < vn;) {
            size_t b = a;
            while (b < vn && v[b] != ';' && v[b] != ',') b++;
            const char *part = v + a;
            size_t pn = b - a;
            const char *sep = memchr(part, cookie ? '=' : ' ', pn);
            if (sep) { pn -= (size_t)(sep + 1 - part); part = sep + 1; }
            while (pn && *part == ' ') { part++; pn--; }
            redact_one(msg, part, pn);
            a = b + 1;
        }
    }
}
