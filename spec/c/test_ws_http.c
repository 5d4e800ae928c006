/* test_ws_http: the response head parser on whole heads, every truncated
 * prefix (partial), and malformed input. */
#include "mwtest.h"
#include "ws/ws_http.h"

#define S(lit) lit, sizeof(lit) - 1

static void test_basic(void)
{
    const char head[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Connection:Upgrade\r\nX-Empty:\r\nSec-WebSocket-Accept:  abc  \r\n\r\nFRAMES";
    size_t hl = sizeof head - 1 - 6;
    ws_http_header hv[8];
    ws_http_response r = { .headers = hv, .max_headers = 8 };
    MW_CHECK_EQ_INT(ws_http_parse_response(head, sizeof head - 1, 16384, &r), (long)hl);
    MW_CHECK_EQ_INT(r.status, 101);
    MW_CHECK_EQ_INT(r.minor_version, 1);
    MW_CHECK_EQ_INT(r.status_line_len, 32);
    MW_CHECK(r.reason_len == 19 && memcmp(r.reason, "Switching Protocols", 19) == 0);
    MW_CHECK_EQ_INT(r.num_headers, 4);
    MW_CHECK(hv[1].name_len == 10 && memcmp(hv[1].value, "Upgrade", 7) == 0 && hv[1].value_len == 7);
    MW_CHECK_EQ_INT(hv[2].value_len, 0);
    MW_CHECK(hv[3].value_len == 3 && memcmp(hv[3].value, "abc", 3) == 0);
    /* Every truncated prefix is partial, for the parser and the end finder. */
    for (size_t k = 0; k < hl; k++) {
        MW_CHECK_EQ_INT(ws_http_parse_response(head, k, 16384, &r), WS_HTTP_PARTIAL);
        MW_CHECK_EQ_INT(ws_http_head_end(head, k, 0), 0);
    }
    MW_CHECK_EQ_INT(ws_http_head_end(head, sizeof head - 1, 0), hl);
    /* Resumed scans find the same end, byte by byte. */
    size_t from = 0, end = 0;
    for (size_t k = 1; k <= sizeof head - 1 && !end; k++) {
        end = ws_http_head_end(head, k, from);
        from = k;
    }
    MW_CHECK_EQ_INT(end, hl);
}

static void test_bare_lf(void)
{
    const char head[] = "HTTP/1.1 200\nA: b\n\n";
    ws_http_header hv[2];
    ws_http_response r = { .headers = hv, .max_headers = 2 };
    MW_CHECK_EQ_INT(ws_http_parse_response(S(head), 16384, &r), (long)(sizeof head - 1));
    MW_CHECK_EQ_INT(r.status, 200);
    MW_CHECK_EQ_INT(r.reason_len, 0);
    MW_CHECK_EQ_INT(ws_http_head_end(S(head), 0), sizeof head - 1);
}

static void test_malformed(void)
{
    static const char *bad[] = {
        "HTTP/2 101 x\r\n\r\n", "HTTP/1.1 10 x\r\n\r\n", "HTTP/1.1 1011x\r\n\r\n",
        "FTP/1.1 101 x\r\n\r\n", "HTTP/1.1 101 x\r\nNo colon\r\n\r\n",
        "HTTP/1.1 101 x\r\nSpace : v\r\n\r\n", "HTTP/1.1 101 x\r\nA: b\r\n folded\r\n\r\n",
        "HTTP/1.1 101 x\r\n: empty\r\n\r\n", "HTTP/1.1 101 x\r\nA: b\x01\r\n\r\n",
        "HTTP/1.1 099 x\r\n\r\n",
    };
    ws_http_header hv[4];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ws_http_response r = { .headers = hv, .max_headers = 4 };
        long n = ws_http_parse_response(bad[i], strlen(bad[i]), 16384, &r);
        if (n != WS_HTTP_EMALFORMED) fprintf(stderr, "vector %zu: %ld\n", i, n);
        MW_CHECK_EQ_INT(n, WS_HTTP_EMALFORMED);
    }
    ws_http_response r = { .headers = hv, .max_headers = 1 };
    MW_CHECK_EQ_INT(ws_http_parse_response(S("HTTP/1.1 101 x\r\nA: 1\r\nB: 2\r\n\r\n"), 16384, &r),
                    WS_HTTP_ETOOMANY);
    MW_CHECK_EQ_INT(ws_http_parse_response(S("HTTP/1.1 101 x\r\nA: 1\r\n\r\n"), 20, &r),
                    WS_HTTP_ETOOLARGE);
    MW_CHECK_EQ_INT(ws_http_parse_response(S("HTTP/1.1 101 xxxxxxxxxxxxxxxxxxxx"), 20, &r),
                    WS_HTTP_ETOOLARGE);
}

static void test_lists(void)
{
    MW_CHECK(ws_http_list_has(S("keep-alive, Upgrade"), "upgrade"));
    MW_CHECK(ws_http_list_has(S("UPGRADE"), "upgrade"));
    MW_CHECK(ws_http_list_has(S(" a ,\tupgrade\t"), "upgrade"));
    MW_CHECK(!ws_http_list_has(S("upgraded, keep-alive"), "upgrade"));
    MW_CHECK(!ws_http_list_has(S(""), "upgrade"));
    MW_CHECK(ws_http_ieq(S("WebSocket"), "websocket"));
    MW_CHECK(!ws_http_ieq(S("websockets"), "websocket"));
    MW_CHECK(!ws_http_ieq(S("websocke"), "websocket"));
}

int main(void)
{
    MW_RUN(test_basic);
    MW_RUN(test_bare_lf);
    MW_RUN(test_malformed);
    MW_RUN(test_lists);
    return MW_DONE();
}
