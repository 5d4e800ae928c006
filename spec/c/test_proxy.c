/* test_proxy: the proxy setting's syntax, the environment's choice with
 * no_proxy, and the handshakes' bytes (HTTP CONNECT, SOCKS5 with and without
 * user name and password), whole and split at every byte. */
#include "mwtest.h"
#include "proxy.h"
#include <stdio.h>
#include <string.h>

static void test_parse(void)
{
    mw_proxy p;
    char err[200];
    MW_CHECK_EQ_INT(mw_proxy_parse("127.0.0.1:3128", MW_PROXY_HTTP, &p, err, sizeof err), 0);
    MW_CHECK_EQ_INT(p.kind, MW_PROXY_HTTP);
    MW_CHECK(strcmp(p.host, "127.0.0.1") == 0 && p.port == 3128 && !p.has_user);
    MW_CHECK_EQ_INT(mw_proxy_parse("socks5h://bob:s%40cret@Proxy.Test", 0, &p, err, sizeof err), 0);
    MW_CHECK_EQ_INT(p.kind, MW_PROXY_SOCKS5H);
    MW_CHECK(strcmp(p.host, "proxy.test") == 0 && p.port == 1080);
    MW_CHECK(p.has_user && strcmp(p.user, "bob") == 0 && strcmp(p.pass, "s@cret") == 0);
    MW_CHECK_EQ_INT(mw_proxy_parse("http://[::1]:8080/", 0, &p, err, sizeof err), 0);
    MW_CHECK(strcmp(p.host, "::1") == 0 && p.port == 8080);
    char where[64];
    mw_proxy_where(&p, where, sizeof where);
    MW_CHECK(strcmp(where, "[::1]:8080") == 0);
    MW_CHECK_EQ_INT(mw_proxy_parse("socks://h:1", 0, &p, err, sizeof err), 0);
    MW_CHECK_EQ_INT(p.kind, MW_PROXY_SOCKS5H);
    MW_CHECK_EQ_INT(mw_proxy_parse("socks5://u@h", 0, &p, err, sizeof err), 0);
    MW_CHECK(p.has_user && strcmp(p.user, "u") == 0 && p.pass[0] == 0);
    const char *bad[][2] = {
        { "h", "the proxy address needs a port (host:port)" },
        { "ftp://h:1", "unknown proxy scheme (expected http://, socks5:// or socks5h://)" },
        { "https://h:1", "https:// proxies (TLS to the proxy) are not supported: use http://" },
        { "socks4://h:1", "SOCKS4 proxies are not supported: use socks5:// or socks5h://" },
        { "http://h:0", "bad port in the proxy address (expected 1..65535)" },
        { "http://h:65536", "bad port in the proxy address (expected 1..65535)" },
        { "http://h:1x", "bad port in the proxy address (expected 1..65535)" },
        { "http://h:1/x", "a proxy address has no path" },
        { "http://:1", "no host in the proxy address" },
        { "http://[::1", "unclosed [ in the proxy address" },
        { "http://[zz]:1", "bad IPv6 address in the proxy address" },
        { "http://h h:1", "bad character in the proxy host" },
        { "http://u:%zz@h:1", "bad password in the proxy address" },
        { "http://%00@h:1", "bad user name in the proxy address" },
        { "socks5h://", "no host in the proxy address" },           /* found by fuzz_proxy */
        { "socks5h:///", "no host in the proxy address" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = mw_proxy_parse(bad[i][0], MW_PROXY_HTTP, &p, err, sizeof err);
        MW_CHECK_EQ_INT(r, -1);
        if (strcmp(err, bad[i][1]) != 0) { printf("  %s: %s\n", bad[i][0], err); MW_CHECK(0); }
    }
    /* the password never shows in a message */
    mw_proxy_parse("http://bob:hunter2@h:99999", 0, &p, err, sizeof err);
    MW_CHECK(strstr(err, "hunter2") == NULL);
}

static const char *envv[16][2];
static const char *get(const char *name, void *ud)
{
    (void)ud;
    for (int i = 0; i < 16 && envv[i][0]; i++)
        if (strcmp(envv[i][0], name) == 0) return envv[i][1];
    return NULL;
}

static void setenvs(const char *const *kv)
{
    memset(envv, 0, sizeof envv);
    for (int i = 0; kv[2 * i]; i++) { envv[i][0] = kv[2 * i]; envv[i][1] = kv[2 * i + 1]; }
}

static void test_env(void)
{
    const char *var;
    const char *a[] = { "http_proxy", "H", "https_proxy", "S", "all_proxy", "A", NULL };
    setenvs(a);
    MW_CHECK(strcmp(mw_proxy_from_env(get, NULL, 0, "x.test", 80, &var), "H") == 0 && strcmp(var, "http_proxy") == 0);
    MW_CHECK(strcmp(mw_proxy_from_env(get, NULL, 1, "x.test", 443, &var), "S") == 0);
    const char *b[] = { "HTTP_PROXY", "H", "HTTPS_PROXY", "S", "ALL_PROXY", "A", NULL };
    setenvs(b);
    MW_CHECK(strcmp(mw_proxy_from_env(get, NULL, 0, "x.test", 80, &var), "H") == 0 && strcmp(var, "HTTP_PROXY") == 0);
    const char *b2[] = { "HTTP_PROXY", "H", "ALL_PROXY", "A", "REQUEST_METHOD", "GET", NULL };
    setenvs(b2);
    /* in a CGI program HTTP_PROXY is the request's: not read */
    MW_CHECK(strcmp(mw_proxy_from_env(get, NULL, 0, "x.test", 80, &var), "A") == 0 && strcmp(var, "ALL_PROXY") == 0);
    setenvs(b);
    MW_CHECK(strcmp(mw_proxy_from_env(get, NULL, 1, "x.test", 443, &var), "S") == 0 && strcmp(var, "HTTPS_PROXY") == 0);
    const char *c[] = { "all_proxy", "A", "no_proxy", "example.test", NULL };
    setenvs(c);
    MW_CHECK(mw_proxy_from_env(get, NULL, 0, "a.example.test", 80, &var) == NULL);
    MW_CHECK(mw_proxy_from_env(get, NULL, 0, "badexample.test", 80, &var) != NULL);
    const char *d[] = { NULL };
    setenvs(d);
    MW_CHECK(mw_proxy_from_env(get, NULL, 0, "x", 80, &var) == NULL);

    struct { const char *np, *host; int port, want; } m[] = {
        { "*", "anything", 1, 1 },
        { "example.test", "example.test", 80, 1 },
        { ".example.test", "example.test", 80, 1 },
        { ".example.test", "a.b.example.test", 80, 1 },
        { "example.test", "xexample.test", 80, 0 },
        { "EXAMPLE.test", "example.TEST", 80, 1 },
        { "example.test:8080", "example.test", 8080, 1 },
        { "example.test:8080", "example.test", 80, 0 },
        { "10.0.0.0/8", "10.1.2.3", 80, 1 },
        { "10.0.0.0/8", "11.1.2.3", 80, 0 },
        { "127.0.0.1", "127.0.0.1", 80, 1 },
        { "127.0.0.1:9", "127.0.0.1", 80, 0 },
        { "127.0.0.0/33", "127.0.0.1", 80, 0 },
        { "fd00::/8", "fd12::1", 80, 1 },
        { "fd00::/8", "fe80::1", 80, 0 },
        { "::1", "::1", 80, 1 },
        { "[::1]:80", "::1", 80, 1 },
        { "[::1]:81", "::1", 80, 0 },
        { "a.test, b.test ,c.test", "c.test", 80, 1 },
        { "a.test b.test", "b.test", 80, 1 },
        { "", "a.test", 80, 0 },
        { ",,", "a.test", 80, 0 },
        { "10.0.0.0/8", "ten.test", 80, 0 },
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        int r = mw_proxy_no_proxy_match(m[i].np, m[i].host, m[i].port);
        if (r != m[i].want) { printf("  no_proxy %s vs %s:%d: %d\n", m[i].np, m[i].host, m[i].port, r); MW_CHECK(0); }
    }
}

/* Feed reply to a started handshake split at `split` (0: whole); returns the verdict. */
static int feed(mw_proxy_hs *hs, const char *reply, size_t n, size_t split, size_t *used_total)
{
    size_t off = 0;
    *used_total = 0;
    while (off < n) {
        size_t chunk = split ? split : n;
        if (chunk > n - off) chunk = n - off;
        size_t used;
        int r = mw_proxy_hs_input(hs, reply + off, chunk, &used);
        *used_total += used;
        if (r != MW_PROXY_HS_MORE) return r;
        if (used < chunk) { off += used; continue; }
        off += chunk;
        if (off < n) hs->outlen = 0;   /* sent */
    }
    return MW_PROXY_HS_MORE;
}

static void test_http(void)
{
    mw_proxy p;
    char err[200];
    mw_proxy_parse("http://bob:s3cret@127.0.0.1:3128", 0, &p, err, sizeof err);
    mw_proxy_hs hs;
    MW_CHECK_EQ_INT(mw_proxy_hs_start(&hs, &p, "::1", 8080, NULL, NULL, 0), 0);
    const char *want = "CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n"
                       "Proxy-Authorization: Basic Ym9iOnMzY3JldA==\r\n\r\n";
    MW_CHECK(hs.outlen == strlen(want) && memcmp(hs.out, want, hs.outlen) == 0);
    MW_CHECK_EQ_INT(mw_proxy_hs_start(&hs, &p, "x.test", 80, "Bearer abc", NULL, 0), 0);
    MW_CHECK(strstr(hs.out, "Proxy-Authorization: Bearer abc\r\n") && !strstr(hs.out, "Basic"));
    MW_CHECK_EQ_INT(mw_proxy_hs_start(&hs, &p, "x.test", 80, "a\r\nb", NULL, 0), -1);

    const char *ok = "HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\nTUNNEL";
    for (size_t split = 0; split <= 7; split++) {
        mw_proxy_hs_start(&hs, &p, "x.test", 80, NULL, NULL, 0);
        size_t used;
        MW_CHECK_EQ_INT(feed(&hs, ok, strlen(ok), split, &used), MW_PROXY_HS_DONE);
        MW_CHECK_EQ_INT(used, strlen(ok) - 6);   /* the tunnel's bytes are left */
    }
    struct { const char *reply, *err; } f[] = {
        { "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", "proxy answered 407 Proxy Authentication Required" },
        { "HTTP/1.0 502\r\n\r\n", "proxy answered 502" },
        { "HTTP/1.1 100 Continue\r\n\r\n", "proxy answered 100 Continue" },
        { "SSH-2.0-x\r\n\r\n", "proxy answer is not HTTP (SSH-2.0-x)" },
        { "HTTP/1.1 200 OK\n\n", "proxy answer has a bare LF" },
        { "\r\n", "proxy answer starts with an empty line" },
        { "HTTP/1.1 2000 OK\r\n\r\n", "proxy answer is not HTTP (HTTP/1.1 2000 OK)" },
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        mw_proxy_hs_start(&hs, &p, "x.test", 80, NULL, NULL, 0);
        size_t used;
        MW_CHECK_EQ_INT(feed(&hs, f[i].reply, strlen(f[i].reply), 0, &used), MW_PROXY_HS_FAIL);
        if (strcmp(hs.err, f[i].err) != 0) { printf("  %s\n", hs.err); MW_CHECK(0); }
        MW_CHECK(strstr(hs.err, "s3cret") == NULL);
    }
    /* a head that never ends is bounded */
    mw_proxy_hs_start(&hs, &p, "x.test", 80, NULL, NULL, 0);
    char big[10000];
    memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(big + 20, 'a', sizeof big - 20);
    size_t used;
    MW_CHECK_EQ_INT(feed(&hs, big, sizeof big, 0, &used), MW_PROXY_HS_FAIL);
    MW_CHECK(strstr(hs.err, "longer than") != NULL);
    mw_proxy_hs_start(&hs, &p, "x.test", 80, NULL, NULL, 0);
    MW_CHECK_EQ_INT(mw_proxy_hs_eof(&hs), MW_PROXY_HS_FAIL);
    MW_CHECK(strcmp(hs.err, "proxy closed the connection while the answer to CONNECT was expected") == 0);
}

static void test_socks(void)
{
    mw_proxy p;
    char err[200];
    mw_proxy_hs hs;
    size_t used;
    /* no credentials, a name: greeting, method 0, request with the name */
    mw_proxy_parse("socks5h://127.0.0.1:1080", 0, &p, err, sizeof err);
    for (size_t split = 0; split <= 3; split++) {
        MW_CHECK_EQ_INT(mw_proxy_hs_start(&hs, &p, "ab.test", 443, NULL, NULL, 0), 0);
        MW_CHECK(hs.outlen == 3 && memcmp(hs.out, "\x05\x01\x00", 3) == 0);
        hs.outlen = 0;
        size_t u;
        MW_CHECK_EQ_INT(feed(&hs, "\x05\x00", 2, split, &u), MW_PROXY_HS_MORE);
        MW_CHECK(hs.outlen == 7 + 7 && memcmp(hs.out, "\x05\x01\x00\x03\x07" "ab.test" "\x01\xbb", 14) == 0);
        hs.outlen = 0;
        /* reply with a domain address, then tunnel bytes */
        const char rep[] = "\x05\x00\x00\x03\x03xyz\x00\x50" "DATA";
        MW_CHECK_EQ_INT(feed(&hs, rep, sizeof rep - 1, split, &used), MW_PROXY_HS_DONE);
        MW_CHECK_EQ_INT(used, sizeof rep - 1 - 4);
    }
    /* an address, with credentials */
    mw_proxy_parse("socks5://bob:pw@h:1", 0, &p, err, sizeof err);
    unsigned char ip[4] = { 127, 0, 0, 1 };
    mw_proxy_hs_start(&hs, &p, "ignored", 80, NULL, ip, 4);
    MW_CHECK(hs.outlen == 4 && memcmp(hs.out, "\x05\x02\x00\x02", 4) == 0);
    hs.outlen = 0;
    MW_CHECK_EQ_INT(feed(&hs, "\x05\x02", 2, 0, &used), MW_PROXY_HS_MORE);
    MW_CHECK(hs.outlen == 8 && memcmp(hs.out, "\x01\x03" "bob" "\x02" "pw", 8) == 0);
    hs.outlen = 0;
    MW_CHECK_EQ_INT(feed(&hs, "\x01\x00", 2, 0, &used), MW_PROXY_HS_MORE);
    MW_CHECK(hs.outlen == 10 && memcmp(hs.out, "\x05\x01\x00\x01\x7f\x00\x00\x01\x00\x50", 10) == 0);
    hs.outlen = 0;
    MW_CHECK_EQ_INT(feed(&hs, "\x05\x00\x00\x04" "0123456789abcdef" "\x00\x50", 22, 1, &used), MW_PROXY_HS_DONE);
    MW_CHECK_EQ_INT(used, 22);

    struct { const char *a, *b; size_t an, bn; const char *err; } f[] = {
        { "\x05\xff", NULL, 2, 0, "proxy accepts none of the offered authentication methods (none, username/password)" },
        { "\x04\x00", NULL, 2, 0, "proxy is not a SOCKS5 server (version 4)" },
        { "\x05\x01", NULL, 2, 0, "proxy chose authentication method 1, which was not offered" },
        { "\x05\x02", "\x01\x01", 2, 2, "proxy rejected the user name and password" },
        { "\x05\x00", "\x05\x02\x00\x01", 2, 4, "connection not allowed by ruleset (SOCKS5 reply 2)" },
        { "\x05\x00", "\x05\x05\x00\x01", 2, 4, "connection refused by destination host (SOCKS5 reply 5)" },
        { "\x05\x00", "\x05\x63\x00\x01", 2, 4, "unknown reply code (SOCKS5 reply 99)" },
        { "\x05\x00", "\x05\x00\x00\x09\x00", 2, 5, "proxy sent a bad SOCKS5 reply (address type 9)" },
        { "\x05\x00", "\x05\x00\x01\x01\x00", 2, 5, "proxy sent a bad SOCKS5 reply (reserved byte 1)" },
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        mw_proxy_hs_start(&hs, &p, "x.test", 80, NULL, NULL, 0);
        hs.outlen = 0;
        int r = feed(&hs, f[i].a, f[i].an, 0, &used);
        if (r == MW_PROXY_HS_MORE && f[i].b) { hs.outlen = 0; r = feed(&hs, f[i].b, f[i].bn, 0, &used); }
        MW_CHECK_EQ_INT(r, MW_PROXY_HS_FAIL);
        if (strcmp(hs.err, f[i].err) != 0) { printf("  %zu: %s\n", i, hs.err); MW_CHECK(0); }
    }
    /* without credentials the refusal says a user name may be wanted */
    mw_proxy_parse("socks5h://h:1", 0, &p, err, sizeof err);
    mw_proxy_hs_start(&hs, &p, "x.test", 80, NULL, NULL, 0);
    MW_CHECK_EQ_INT(feed(&hs, "\x05\xff", 2, 0, &used), MW_PROXY_HS_FAIL);
    MW_CHECK(strstr(hs.err, "it may want a username and password") != NULL);
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    MW_CHECK_EQ_INT(mw_proxy_hs_start(&hs, &p, longname, 80, NULL, NULL, 0), -1);
}

int main(void)
{
    MW_RUN(test_parse);
    MW_RUN(test_env);
    MW_RUN(test_http);
    MW_RUN(test_socks);
    return MW_DONE();
}
