/* fuzz_url: libFuzzer target for mw_url_parse; checks the invariants a caller
 * relies on after a successful parse. Knows only url.h. */
#include "url.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mw_url u;
    char err[256];
    if (mw_url_parse((const char *)data, size, &u, err, sizeof err) != 0) {
        if (err[0] == 0 || strlen(err) >= sizeof err) abort();
        if (u.path || u.host[0] || u.port) abort();
        return 0;
    }
    size_t hl = strnlen(u.host, sizeof u.host);
    if (hl == 0 || hl >= sizeof u.host) abort();
    for (size_t i = 0; i < hl; i++)
        if ((unsigned char)u.host[i] <= 0x20 || (unsigned char)u.host[i] >= 0x7f) abort();
    if (u.port == 0 || !u.path || u.path[0] != '/') abort();
    for (const char *p = u.path; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == '#') abort();
    if (u.scheme < MW_SCHEME_WS || u.scheme > MW_SCHEME_FRAME) abort();
    if (u.tls != (u.scheme == MW_SCHEME_WSS)) abort();
    if (u.host_kind < MW_HOST_NAME || u.host_kind > MW_HOST_IPV6) abort();
    char auth[300];
    int n = mw_url_authority(&u, auth, sizeof auth);
    if (n <= 0 || (size_t)n >= sizeof auth) abort();
    /* the authority of a parsed URL parses back to the same host and port
     * (not for a zone, which the authority leaves out on purpose) */
    char again[400];
    int m = snprintf(again, sizeof again, "%s://%s", mw_url_scheme_name(u.scheme), auth);
    mw_url v;
    if (u.host_kind != MW_HOST_IPV6 || !strchr(u.host, '%')) {
        if (mw_url_parse(again, (size_t)m, &v, err, sizeof err) != 0) abort();
        if (strcmp(v.host, u.host) || v.port != u.port) abort();
        mw_url_free(&v);
    }
    /* a redirect's Location against it: an absolute ws/wss URL, or an error */
    if (u.scheme == MW_SCHEME_WS || u.scheme == MW_SCHEME_WSS) {
        static const char *const refs[] = { "x", "/y?z", "//h.test/p", "https://h.test:1/q", "a:b" };
        char out[1024];
        for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++) {
            if (mw_url_resolve(&u, refs[i], out, sizeof out, err, sizeof err) == 0) {
                if (strncmp(out, "ws://", 5) != 0 && strncmp(out, "wss://", 6) != 0) abort();
            } else if (!err[0]) {
                abort();
            }
        }
    }
    mw_url_free(&u);
    return 0;
}
