/* Unit tests of the text and frame decoders: whole, split at every point,
 * limits, invalid lengths. */
#include "codec.h"
#include "mwtest.h"
#include <stdlib.h>

static void test_text_basic(void)
{
    mw_decoded d;
    MW_CHECK_EQ_INT(mw_text_decode("abc\r\nrest", 9, 100, &d), MW_DEC_MESSAGE);
    MW_CHECK_EQ_INT(d.off, 0);
    MW_CHECK_EQ_INT(d.len, 3);
    MW_CHECK_EQ_INT(d.consumed, 5);
    MW_CHECK_EQ_INT(mw_text_decode("\n", 1, 100, &d), MW_DEC_MESSAGE);
    MW_CHECK_EQ_INT(d.len, 0);
    MW_CHECK_EQ_INT(d.consumed, 1);
    MW_CHECK_EQ_INT(mw_text_decode("abc", 3, 100, &d), MW_DEC_NEED);
    MW_CHECK_EQ_INT(mw_text_decode("", 0, 100, &d), MW_DEC_NEED);
}

static void test_text_limits(void)
{
    mw_decoded d;
    /* exactly max bytes of content is fine; one more is not, newline or not */
    MW_CHECK_EQ_INT(mw_text_decode("abcd\n", 5, 4, &d), MW_DEC_MESSAGE);
    MW_CHECK_EQ_INT(mw_text_decode("abcde\n", 6, 4, &d), MW_DEC_TOO_LARGE);
    MW_CHECK_EQ_INT(d.len, 5);
    MW_CHECK_EQ_INT(mw_text_decode("abcd", 4, 4, &d), MW_DEC_NEED);
    MW_CHECK_EQ_INT(mw_text_decode("abcde", 5, 4, &d), MW_DEC_TOO_LARGE);
}

/* A last line that the peer ended without its newline (text:// at EOF). */
static void test_text_trim(void)
{
    MW_CHECK_EQ_INT(mw_text_trim("last", 4), 4);
    MW_CHECK_EQ_INT(mw_text_trim("last\r", 5), 4);
    MW_CHECK_EQ_INT(mw_text_trim("a\rb", 3), 3);   /* only trailing ones go */
    MW_CHECK_EQ_INT(mw_text_trim("\r\r", 2), 0);
    MW_CHECK_EQ_INT(mw_text_trim("", 0), 0);
}

static void test_text_every_split(void)
{
    const char *stream = "one\ntwo\r\n\nfour\n";
    const char *want[] = {"one", "two", "", "four"};
    size_t n = strlen(stream);
    for (size_t cut = 0; cut <= n; cut++) {
        /* feed stream[0..cut), then the rest appended, as a connection does */
        char buf[64];
        size_t have = 0, fed = 0;
        int got = 0;
        for (int step = 0; step < 2; step++) {
            size_t upto = step == 0 ? cut : n;
            memcpy(buf + have, stream + fed, upto - fed);
            have += upto - fed;
            fed = upto;
            mw_decoded d;
            while (mw_text_decode(buf, have, 100, &d) == MW_DEC_MESSAGE) {
                MW_CHECK(got < 4);
                if (got < 4) {
                    MW_CHECK_EQ_INT(d.len, strlen(want[got]));
                    MW_CHECK_MEM(buf + d.off, want[got], d.len);
                }
                got++;
                memmove(buf, buf + d.consumed, have - d.consumed);
                have -= d.consumed;
            }
        }
        MW_CHECK_EQ_INT(got, 4);
        MW_CHECK_EQ_INT(have, 0);
    }
}

static void test_frame(void)
{
    mw_decoded d;
    unsigned char f[16];
    MW_CHECK_EQ_INT(mw_frame_header(f, 3), 0);
    memcpy(f + 4, "xyz", 3);
    MW_CHECK_EQ_INT(f[3], 7);
    MW_CHECK_EQ_INT(mw_frame_decode((char *)f, 7, 100, &d), MW_DEC_MESSAGE);
    MW_CHECK_EQ_INT(d.off, 4);
    MW_CHECK_EQ_INT(d.len, 3);
    MW_CHECK_EQ_INT(d.consumed, 7);
    for (size_t i = 0; i < 7; i++) {
        MW_CHECK_EQ_INT(mw_frame_decode((char *)f, i, 100, &d), MW_DEC_NEED);
        MW_CHECK_EQ_INT(d.need, i < 4 ? 4 : 7);
    }
    /* the limit applies as soon as the header is in */
    MW_CHECK_EQ_INT(mw_frame_decode((char *)f, 4, 2, &d), MW_DEC_TOO_LARGE);
    MW_CHECK_EQ_INT(d.len, 3);
    /* total under 4 is invalid; exactly 4 is an empty message */
    for (unsigned t = 0; t < 4; t++) {
        unsigned char h[4] = {0, 0, 0, (unsigned char)t};
        MW_CHECK_EQ_INT(mw_frame_decode((char *)h, 4, 100, &d), MW_DEC_INVALID);
    }
    unsigned char e[4] = {0, 0, 0, 4};
    MW_CHECK_EQ_INT(mw_frame_decode((char *)e, 4, 100, &d), MW_DEC_MESSAGE);
    MW_CHECK_EQ_INT(d.len, 0);
    /* the largest length a header can carry */
    unsigned char big[4] = {0xff, 0xff, 0xff, 0xff};
    MW_CHECK_EQ_INT(mw_frame_decode((char *)big, 4, (size_t)1 << 40, &d), MW_DEC_NEED);
    MW_CHECK_EQ_INT(d.need, 0xffffffffu);
    MW_CHECK_EQ_INT(mw_frame_header(f, 0xfffffffcu), -1);
}

int main(void)
{
    MW_RUN(test_text_basic);
    MW_RUN(test_text_limits);
    MW_RUN(test_text_trim);
    MW_RUN(test_text_every_split);
    MW_RUN(test_frame);
    return MW_DONE();
}
