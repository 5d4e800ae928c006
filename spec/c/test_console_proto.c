/* test_console_proto: the console's frames (console_proto.h): encode and parse
 * agree; every truncated prefix asks for more; a stream of frames parses the
 * same fed whole and a byte at a time; unknown kinds and lengths over 1 MiB
 * fail with why. */
#include "mwtest.h"
#include "console_proto.h"
#include <stdlib.h>
#include <string.h>

static void test_round_trip_and_prefixes(void)
{
    mw_buf b = MW_BUF_INIT;
    MW_CHECK_EQ_INT(mw_cp_encode(&b, 'e', "1 + 1", 5), 0);
    MW_CHECK_EQ_INT(b.len, 10);
    MW_CHECK_MEM(mw_buf_head(&b), "e\0\0\0\0051 + 1", 10);
    for (size_t n = 0; n < b.len; n++) {
        int k; const char *p; size_t len; const char *why = NULL;
        MW_CHECK_EQ_INT(mw_cp_parse(mw_buf_head(&b), n, &k, &p, &len, &why), 0);
    }
    int k; const char *p; size_t len; const char *why = NULL;
    MW_CHECK_EQ_INT(mw_cp_parse(mw_buf_head(&b), b.len, &k, &p, &len, &why), 10);
    MW_CHECK_EQ_INT(k, 'e');
    MW_CHECK_EQ_INT(len, 5);
    MW_CHECK_MEM(p, "1 + 1", 5);
    mw_buf_free(&b);
}

static void test_stream_byte_at_a_time(void)
{
    mw_buf b = MW_BUF_INIT;
    const char *kinds = "hoorxmin", *texts[] = { "1 bot", "a\n", "", "2\n", "boom", "", "", "no" };
    for (int i = 0; i < 8; i++) MW_CHECK_EQ_INT(mw_cp_encode(&b, kinds[i], texts[i], strlen(texts[i])), 0);
    size_t off = 0, have = 0;
    int got = 0;
    while (have < b.len) {
        have++;
        int k; const char *p; size_t len; const char *why = NULL;
        long r = mw_cp_parse(mw_buf_head(&b) + off, have - off, &k, &p, &len, &why);
        MW_CHECK(r >= 0);
        if (r > 0) {
            MW_CHECK_EQ_INT(k, kinds[got]);
            MW_CHECK_EQ_INT(len, strlen(texts[got]));
            MW_CHECK(len == 0 || memcmp(p, texts[got], len) == 0);
            off += (size_t)r;
            got++;
        }
    }
    MW_CHECK_EQ_INT(got, 8);
    MW_CHECK_EQ_INT(off, b.len);
    mw_buf_free(&b);
}

static void test_bad_frames(void)
{
    int k; const char *p; size_t len; const char *why = NULL;
    MW_CHECK_EQ_INT(mw_cp_parse("Z\0\0\0\0", 5, &k, &p, &len, &why), -1);
    MW_CHECK(why && strstr(why, "unknown"));
    MW_CHECK_EQ_INT(mw_cp_parse("Z", 1, &k, &p, &len, &why), -1);   /* known at once */
    why = NULL;
    MW_CHECK_EQ_INT(mw_cp_parse("e\0\x10\0\x01", 5, &k, &p, &len, &why), -1);
    MW_CHECK(why && strstr(why, "1 MiB"));
    mw_buf b = MW_BUF_INIT;
    char *big = calloc(1, MW_CP_MAX + 1);
    MW_CHECK_EQ_INT(mw_cp_encode(&b, 'o', big, MW_CP_MAX + 1), -1);
    MW_CHECK_EQ_INT(b.len, 0);
    MW_CHECK_EQ_INT(mw_cp_encode(&b, 'o', big, MW_CP_MAX), 0);
    MW_CHECK_EQ_INT(mw_cp_parse(mw_buf_head(&b), b.len, &k, &p, &len, &why), MW_CP_HEAD + MW_CP_MAX);
    MW_CHECK_EQ_INT(mw_cp_encode(&b, '?', "", 0), -1);
    free(big);
    mw_buf_free(&b);
}

int main(void)
{
    MW_RUN(test_round_trip_and_prefixes);
    MW_RUN(test_stream_byte_at_a_time);
    MW_RUN(test_bad_frames);
    return MW_DONE();
}
