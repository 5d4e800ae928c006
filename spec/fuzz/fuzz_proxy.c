/* fuzz_proxy: the proxy handshakes (HTTP CONNECT, SOCKS5 with and without
 * credentials) on arbitrary replies split at points chosen by the input, and
 * the setting parser and no_proxy matcher on arbitrary strings. Checks
 * invariants: bytes taken never exceed bytes given, a verdict is final,
 * messages are terminated and never carry the password. Knows only proxy.h. */
#include "proxy.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PASS "pw-must-not-leak"

/* A message may quote the proxy's answer, never our own credentials. */
static void check_msg(const char *m, const char *in, size_t n)
{
    if (!memchr(m, 0, 256)) abort();
    if (strstr(m, PASS) && !memmem(in, n, PASS, strlen(PASS))) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    int mode = data[0] % 4, step = data[1] % 17 + 1;
    const char *d = (const char *)data + 2;
    size_t n = size - 2;

    /* the setting and no_proxy on the input as a string */
    char *s = malloc(n + 1);
    if (!s) return 0;
    memcpy(s, d, n);
    s[n] = 0;
    mw_proxy p;
    char err[200];
    if (mw_proxy_parse(s, mode & 1 ? MW_PROXY_HTTP : 0, &p, err, sizeof err) == 0) {
        if (p.port < 1 || p.port > 65535 || !p.host[0]) abort();
    } else if (!memchr(err, 0, sizeof err)) {
        abort();
    }
    (void)mw_proxy_no_proxy_match(s, "a.example.test", 80);
    (void)mw_proxy_no_proxy_match(s, "10.1.2.3", 443);
    (void)mw_proxy_no_proxy_match(s, "fd00::1", 443);
    free(s);

    static const char *const specs[] = { "http://127.0.0.1:3128", "http://bob:" PASS "@h:1",
                                         "socks5h://h:1", "socks5://bob:" PASS "@h:1" };
    if (mw_proxy_parse(specs[mode], 0, &p, err, sizeof err) != 0) abort();
    mw_proxy_hs *hs = malloc(sizeof *hs);
    if (!hs) return 0;
    if (mw_proxy_hs_start(hs, &p, "target.test", 443, NULL, NULL, 0) != 0) abort();
    size_t off = 0;
    int r = MW_PROXY_HS_MORE;
    while (off < n && r == MW_PROXY_HS_MORE) {
        size_t chunk = n - off < (size_t)step ? n - off : (size_t)step, used = 0;
        hs->outlen = 0;
        r = mw_proxy_hs_input(hs, d + off, chunk, &used);
        if (used > chunk) abort();
        if (r == MW_PROXY_HS_MORE && used == 0 && !hs->outlen) abort();  /* no progress */
        off += used;
    }
    if (r == MW_PROXY_HS_FAIL) check_msg(hs->err, d, n);
    if (r == MW_PROXY_HS_MORE) {
        if (mw_proxy_hs_eof(hs) != MW_PROXY_HS_FAIL) abort();
        check_msg(hs->err, d, n);
    }
    size_t used;
    int again = mw_proxy_hs_input(hs, "x", 1, &used);
    if ((r != MW_PROXY_HS_MORE && again != r) || used) abort();
    free(hs);
    return 0;
}
