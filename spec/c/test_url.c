/* test_url: mw_url_parse vectors, good and bad, plus truncated prefixes.
 * Knows only url.h. */
#include "mwtest.h"
#include "url.h"
#include <stdlib.h>

struct good {
    const char *in;
    int scheme, tls;
    const char *host;
    int kind;
    unsigned port;
    int port_given;
    const char *path;
};

static const struct good goods[] = {
    {"ws://127.0.0.1:1234", MW_SCHEME_WS, 0, "127.0.0.1", MW_HOST_IPV4, 1234, 1, "/"},
    {"ws://example.com", MW_SCHEME_WS, 0, "example.com", MW_HOST_NAME, 80, 0, "/"},
    {"ws://example.com/", MW_SCHEME_WS, 0, "example.com", MW_HOST_NAME, 80, 0, "/"},
    {"wss://example.com", MW_SCHEME_WSS, 1, "example.com", MW_HOST_NAME, 443, 0, "/"},
    {"wss://example.com:8443/a/b?x=1&y=2", MW_SCHEME_WSS, 1, "example.com", MW_HOST_NAME, 8443, 1,
     "/a/b?x=1&y=2"},
    {"WS://EXAMPLE.Com/Path", MW_SCHEME_WS, 0, "example.com", MW_HOST_NAME, 80, 0, "/Path"},
    {"Wss://h", MW_SCHEME_WSS, 1, "h", MW_HOST_NAME, 443, 0, "/"},
    {"tcp://127.0.0.1:9", MW_SCHEME_TCP, 0, "127.0.0.1", MW_HOST_IPV4, 9, 1, "/"},
    {"text://localhost:65535", MW_SCHEME_TEXT, 0, "localhost", MW_HOST_NAME, 65535, 1, "/"},
    {"frame://localhost:1", MW_SCHEME_FRAME, 0, "localhost", MW_HOST_NAME, 1, 1, "/"},
    {"TCP://h:80", MW_SCHEME_TCP, 0, "h", MW_HOST_NAME, 80, 1, "/"},
    {"ws://[::1]:9001/path", MW_SCHEME_WS, 0, "::1", MW_HOST_IPV6, 9001, 1, "/path"},
    {"ws://[::1]", MW_SCHEME_WS, 0, "::1", MW_HOST_IPV6, 80, 0, "/"},
    {"wss://[2001:db8::1]/x", MW_SCHEME_WSS, 1, "2001:db8::1", MW_HOST_IPV6, 443, 0, "/x"},
    {"ws://[::ffff:127.0.0.1]:80", MW_SCHEME_WS, 0, "::ffff:127.0.0.1", MW_HOST_IPV6, 80, 1, "/"},
    {"ws://[fe80::1%25eth0]:5/", MW_SCHEME_WS, 0, "fe80::1%eth0", MW_HOST_IPV6, 5, 1, "/"},
    {"ws://[fe80::1%lo]:5/", MW_SCHEME_WS, 0, "fe80::1%lo", MW_HOST_IPV6, 5, 1, "/"},
    {"ws://[FE80::AbC]", MW_SCHEME_WS, 0, "FE80::AbC", MW_HOST_IPV6, 80, 0, "/"},
    {"ws://h?x=1", MW_SCHEME_WS, 0, "h", MW_HOST_NAME, 80, 0, "/?x=1"},
    {"ws://h:81?x=1", MW_SCHEME_WS, 0, "h", MW_HOST_NAME, 81, 1, "/?x=1"},
    {"ws://h/p#frag", MW_SCHEME_WS, 0, "h", MW_HOST_NAME, 80, 0, "/p"},
    {"ws://h#frag", MW_SCHEME_WS, 0, "h", MW_HOST_NAME, 80, 0, "/"},
    {"ws://h/p?q#f?g", MW_SCHEME_WS, 0, "h", MW_HOST_NAME, 80, 0, "/p?q"},
    {"ws://h/a b", MW_SCHEME_WS, 0, "h", MW_HOST_NAME, 80, 0, "/a%20b"},
    {"ws://h/\xc3\xa9t\xc3\xa9", MW_SCHEME_WS, 0, "h", MW_HOST_NAME, 80, 0, "/%C3%A9t%C3%A9"},
    {"ws://h/<\">", MW_SCHEME_WS, 0, "h", MW_HOST_NAME, 80, 0, "/%3C%22%3E"},
    {"ws://h/%41%zz", MW_SCHEME_WS, 0, "h", MW_HOST_NAME, 80, 0, "/%41%zz"},
    {"ws://h//double//", MW_SCHEME_WS, 0, "h", MW_HOST_NAME, 80, 0, "//double//"},
    {"ws://my-host_1.example.org.:0080", MW_SCHEME_WS, 0, "my-host_1.example.org.", MW_HOST_NAME,
     80, 1, "/"},
    {"ws://1.2.3.4.example", MW_SCHEME_WS, 0, "1.2.3.4.example", MW_HOST_NAME, 80, 0, "/"},
    {"ws://123abc", MW_SCHEME_WS, 0, "123abc", MW_HOST_NAME, 80, 0, "/"},
    {"ws://0.0.0.0:1", MW_SCHEME_WS, 0, "0.0.0.0", MW_HOST_IPV4, 1, 1, "/"},
    {"ws://255.255.255.255", MW_SCHEME_WS, 0, "255.255.255.255", MW_HOST_IPV4, 80, 0, "/"},
    {"ws://h/path?a=%2F&b=c:d@e", MW_SCHEME_WS, 0, "h", MW_HOST_NAME, 80, 0, "/path?a=%2F&b=c:d@e"},
};

struct bad {
    const char *in;
    const char *msg;   /* must appear in the error */
};

static const struct bad bads[] = {
    {"", "missing \"://\""},
    {"ws//x", "invalid URL \"ws//x\": missing \"://\""},
    {"ws:/x", "missing \"://\""},
    {"ws:", "missing \"://\""},
    {"127.0.0.1:80", "missing \"://\""},
    {"://x", "missing scheme"},
    {"http://x", "invalid URL \"http://x\": unsupported scheme \"http\" (expected ws, wss, tcp, text, frame)"},
    {"https://x/", "unsupported scheme \"https\""},
    {"ssl://x:1", "TLS is the transport property"},
    {"TLS://x:1", "unsupported scheme \"TLS\""},
    {"udp://x:1", "unsupported scheme \"udp\""},
    {"1ws://x", "missing \"://\""},
    {"ws://", "missing host"},
    {"ws:///path", "missing host"},
    {"ws://:80/", "missing host"},
    {"ws://?x", "missing host"},
    {"ws://h:99999", "invalid URL \"ws://h:99999\": invalid port \"99999\" (expected 1..65535)"},
    {"ws://h:8a0/", "invalid port \"8a0\""},
    {"ws://h:655350", "invalid port \"655350\""},
    {"ws://h:65536", "invalid port \"65536\""},
    {"ws://h:0", "invalid port \"0\""},
    {"ws://h:80a", "invalid port \"80a\""},
    {"ws://h:-1", "invalid port \"-1\""},
    {"ws://h:+80", "invalid port \"+80\""},
    {"ws://h:99999999999999999999999", "invalid port"},
    {"ws://h:80:90", "invalid port \"80:90\""},
    {"ws://h:", "empty port"},
    {"ws://h:/x", "empty port"},
    {"tcp://h", "missing port (tcp:// needs one"},
    {"text://h/", "missing port (text://"},
    {"frame://[::1]", "missing port (frame://"},
    {"ws://[::1", "unterminated IPv6 literal"},
    {"ws://[::1/x]", "unterminated IPv6 literal"},
    {"ws://[]:80", "empty IPv6 literal"},
    {"ws://[::1]x", "unexpected \"x\" after IPv6 literal"},
    {"ws://[::1]:", "empty port"},
    {"ws://[::1]:0x50", "invalid port \"0x50\""},
    {"ws://[1.2.3.4]", "invalid IPv6 address"},
    {"ws://[::g]", "invalid IPv6 address"},
    {"ws://[fe80::1%]", "invalid IPv6 address"},
    {"ws://[fe80::1%25]", "invalid IPv6 address"},
    {"ws://[fe80::1%e/th]", "unterminated IPv6 literal"},
    {"ws://[fe80::1%e th]", "invalid IPv6 address"},
    {"ws://::1:80/", "must be in brackets"},
    {"ws://::1/", "must be in brackets"},
    {"ws://h]/", "unexpected ']'"},
    {"ws://a[b/", "unexpected '['"},
    {"ws://user@h/", "credentials (user@host) are not supported"},
    {"ws://user:pw@h:80/", "credentials"},
    {"ws://h st/", "space in host"},
    {" ws://h/", "missing \"://\""},
    {"ws://h/\n", "control character (byte 0x0a) at offset 7"},
    {"ws://h\r\n/", "control character (byte 0x0d)"},
    {"ws://h/\x7f", "control character (byte 0x7f)"},
    {"ws://h\tx/", "control character (byte 0x09)"},
    {"ws://ex%41mple.com/", "invalid character '%' in host"},
    {"ws://a!b/", "invalid character '!' in host"},
    {"ws://a..b/", "empty label"},
    {"ws://.a/", "empty label"},
    {"ws://a../", "empty label"},
    {"ws://\xc3\xa9t\xc3\xa9.fr/", "punycode"},
    {"ws://256.1.1.1/", "invalid IPv4 address \"256.1.1.1\""},
    {"ws://1.2.3/", "invalid IPv4 address"},
    {"ws://1.2.3.4.5/", "invalid IPv4 address"},
    {"ws://01.2.3.4/", "invalid IPv4 address"},
    {"ws://1.2.3.4./", "invalid IPv4 address"},
    {"ws://123/", "invalid IPv4 address"},
    {"ws://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com/", "label longer than 63"},
};

static void test_good(void)
{
    for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
        const struct good *g = &goods[i];
        mw_url u;
        char err[256];
        int r = mw_url_parse(g->in, strlen(g->in), &u, err, sizeof err);
        if (r != 0) {
            fprintf(stderr, "vector %zu \"%s\": %s\n", i, g->in, err);
            MW_CHECK(0);
            continue;
        }
        int bad = u.scheme != g->scheme || u.tls != g->tls || strcmp(u.host, g->host) ||
                  u.host_kind != g->kind || u.port != g->port || u.port_given != g->port_given ||
                  !u.path || strcmp(u.path, g->path);
        if (bad) {
            fprintf(stderr, "vector %zu \"%s\": got scheme %d tls %d host \"%s\" kind %d port %u/%d path \"%s\"\n",
                    i, g->in, u.scheme, u.tls, u.host, u.host_kind, u.port, u.port_given,
                    u.path ? u.path : "(null)");
            MW_CHECK(0);
        }
        mw_url_free(&u);
        MW_CHECK(u.path == NULL);
        mw_url_free(&u);   /* idempotent */
    }
}

static void test_bad(void)
{
    for (size_t i = 0; i < sizeof bads / sizeof bads[0]; i++) {
        const struct bad *b = &bads[i];
        mw_url u;
        char err[256];
        memset(&u, 0x5a, sizeof u);
        int r = mw_url_parse(b->in, strlen(b->in), &u, err, sizeof err);
        if (r != -1) {
            fprintf(stderr, "vector %zu \"%s\": accepted (host \"%s\")\n", i, b->in, u.host);
            MW_CHECK(0);
            mw_url_free(&u);
            continue;
        }
        if (!strstr(err, b->msg)) {
            fprintf(stderr, "vector %zu: error \"%s\" lacks \"%s\"\n", i, err, b->msg);
            MW_CHECK(0);
        }
        MW_CHECK(u.path == NULL && u.host[0] == 0 && u.scheme == 0 && u.port == 0);
        MW_CHECK(strchr(err, '\n') == NULL && strchr(err, '\r') == NULL);
        mw_url_free(&u);
    }
}

/* The length argument rules, not the NUL: bytes past len are never read, and
 * an embedded NUL is a control character. */
static void test_length_and_nul(void)
{
    mw_url u;
    char err[200];
    MW_CHECK_EQ_INT(mw_url_parse("ws://h:80/xyz", 9, &u, err, sizeof err), 0);
    MW_CHECK_EQ_INT(u.port, 80);
    MW_CHECK(strcmp(u.path, "/") == 0);
    mw_url_free(&u);
    MW_CHECK_EQ_INT(mw_url_parse("ws://h:8080", 8, &u, err, sizeof err), 0);
    MW_CHECK_EQ_INT(u.port, 8);
    mw_url_free(&u);
    MW_CHECK_EQ_INT(mw_url_parse("ws://h\0evil/", 12, &u, err, sizeof err), -1);
    MW_CHECK(strstr(err, "byte 0x00") != NULL);
    MW_CHECK(strstr(err, "\\x00") != NULL);   /* shown escaped in the message */
    MW_CHECK_EQ_INT(mw_url_parse(NULL, 0, &u, err, sizeof err), -1);
    /* no error buffer is fine */
    MW_CHECK_EQ_INT(mw_url_parse("ws//x", 5, &u, NULL, 0), -1);
}

/* Small error buffers truncate, never overflow; a long URL is cut in the message. */
static void test_error_buffers(void)
{
    mw_url u;
    char err[16];
    memset(err, 'Z', sizeof err);
    MW_CHECK_EQ_INT(mw_url_parse("ws//x", 5, &u, err, 8), -1);
    MW_CHECK_EQ_INT(strlen(err), 7);
    MW_CHECK(err[8] == 'Z');
    char big[4000];
    memset(big, 'a', sizeof big);
    memcpy(big, "ws:/", 4);
    char msg[300];
    MW_CHECK_EQ_INT(mw_url_parse(big, sizeof big, &u, msg, sizeof msg), -1);
    MW_CHECK(strstr(msg, "...\"") != NULL);
    MW_CHECK(strlen(msg) < 200);
    /* an overlong host is refused with a reason, not truncated into host[] */
    char h[600] = "ws://";
    memset(h + 5, 'a', 300);
    for (int i = 0; i < 300; i += 50) h[5 + i] = '.';
    h[5] = 'a';
    strcpy(h + 305, "/x");
    MW_CHECK_EQ_INT(mw_url_parse(h, strlen(h), &u, msg, sizeof msg), -1);
    MW_CHECK(strstr(msg, "host name too long") != NULL);
    /* 253 bytes is the DNS limit and fits */
    char ok[300] = "ws://";
    size_t o = 5;
    for (int i = 0; i < 4; i++) { memset(ok + o, 'b', 62); o += 62; ok[o++] = '.'; }
    memset(ok + o, 'c', 5); o += 5;   /* 4*63 + 5 = 257 > 253 */
    ok[o] = 0;
    MW_CHECK_EQ_INT(mw_url_parse(ok, o, &u, msg, sizeof msg), -1);
    o -= 4;   /* 253 */
    ok[o] = 0;
    MW_CHECK_EQ_INT(mw_url_parse(ok, o, &u, msg, sizeof msg), 0);
    MW_CHECK_EQ_INT(strlen(u.host), 253);
    mw_url_free(&u);
}

/* Every prefix of every vector parses or fails cleanly (ASan watches). */
static void test_prefixes(void)
{
    for (size_t i = 0; i < sizeof goods / sizeof goods[0]; i++) {
        size_t n = strlen(goods[i].in);
        for (size_t k = 0; k <= n; k++) {
            char *copy = malloc(k ? k : 1);   /* exact size: ASan catches overreads */
            memcpy(copy, goods[i].in, k);
            mw_url u;
            char err[128];
            if (mw_url_parse(copy, k, &u, err, sizeof err) == 0) {
                MW_CHECK(u.path && u.path[0] == '/');
                MW_CHECK(u.host[0] != 0 && u.port != 0);
                mw_url_free(&u);
            } else {
                MW_CHECK(err[0] != 0);
            }
            free(copy);
        }
    }
}

static void test_authority(void)
{
    static const struct { const char *in, *auth; } v[] = {
        {"ws://h", "h"},
        {"ws://h:80", "h"},
        {"ws://h:81", "h:81"},
        {"wss://h:443/x", "h"},
        {"wss://h:80", "h:80"},
        {"ws://[::1]:9001/p", "[::1]:9001"},
        {"ws://[::1]", "[::1]"},
        {"ws://[fe80::1%25eth0]:5", "[fe80::1]:5"},
        {"tcp://h:80", "h:80"},
        {"frame://1.2.3.4:5", "1.2.3.4:5"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        mw_url u;
        char err[128], buf[300];
        MW_CHECK_EQ_INT(mw_url_parse(v[i].in, strlen(v[i].in), &u, err, sizeof err), 0);
        int n = mw_url_authority(&u, buf, sizeof buf);
        MW_CHECK_EQ_INT(n, strlen(v[i].auth));
        if (strcmp(buf, v[i].auth)) {
            fprintf(stderr, "authority of %s: \"%s\", expected \"%s\"\n", v[i].in, buf, v[i].auth);
            MW_CHECK(0);
        }
        mw_url_free(&u);
    }
    MW_CHECK(strcmp(mw_url_scheme_name(MW_SCHEME_FRAME), "frame") == 0);
    MW_CHECK(strcmp(mw_url_scheme_name(99), "?") == 0);
}

static void test_resolve(void)
{
    mw_url base;
    char err[128], out[512];
    MW_CHECK_EQ_INT(mw_url_parse("ws://h.test:8080/a/b?q=1", 24, &base, err, sizeof err), 0);
    struct { const char *ref, *want; } ok[] = {
        { "ws://x.test/p", "ws://x.test/p" },
        { "WSS://x.test/p", "wss://x.test/p" },
        { "http://x.test:81/p", "ws://x.test:81/p" },
        { "https://x.test/p", "wss://x.test/p" },
        { "//y.test/z", "ws://y.test/z" },
        { "/root?x", "ws://h.test:8080/root?x" },
        { "c", "ws://h.test:8080/a/c" },
        { "c/d?e=f", "ws://h.test:8080/a/c/d?e=f" },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int r = mw_url_resolve(&base, ok[i].ref, out, sizeof out, err, sizeof err);
        if (r != 0 || strcmp(out, ok[i].want) != 0) { printf("  %s -> %s (%s)\n", ok[i].ref, out, err); MW_CHECK(0); }
    }
    MW_CHECK_EQ_INT(mw_url_resolve(&base, "ftp://x/", out, sizeof out, err, sizeof err), -1);
    MW_CHECK(strcmp(err, "it is not a ws, wss, http or https URL") == 0);
    MW_CHECK_EQ_INT(mw_url_resolve(&base, "mailto:a@b", out, sizeof out, err, sizeof err), -1);
    char small[16];
    MW_CHECK_EQ_INT(mw_url_resolve(&base, "/a-long-path-here", small, sizeof small, err, sizeof err), -1);
    MW_CHECK(strcmp(err, "the URL is too long") == 0);
    mw_url_free(&base);
    MW_CHECK_EQ_INT(mw_url_parse("wss://[::1]/x", 13, &base, err, sizeof err), 0);
    MW_CHECK_EQ_INT(mw_url_resolve(&base, "y", out, sizeof out, err, sizeof err), 0);
    MW_CHECK(strcmp(out, "wss://[::1]/y") == 0);
    mw_url_free(&base);
}

int main(void)
{
    MW_RUN(test_resolve);
    MW_RUN(test_good);
    MW_RUN(test_bad);
    MW_RUN(test_length_and_nul);
    MW_RUN(test_error_buffers);
    MW_RUN(test_prefixes);
    MW_RUN(test_authority);
    return MW_DONE();
}
