/* test_ws_crypto: SHA-1, Base64 and the RNG wrappers the handshake relies on. */
#include "mwtest.h"
#include "crypto.h"

static void test_sha1(void)
{
    unsigned char h[20];
    static const unsigned char abc[20] = {
        0xa9,0x99,0x3e,0x36,0x47,0x06,0x81,0x6a,0xba,0x3e,0x25,0x71,0x78,0x50,0xc2,0x6c,0x9c,0xd0,0xd8,0x9d };
    mw_sha1("abc", 3, h);
    MW_CHECK_MEM(h, abc, 20);
}

static void test_base64(void)
{
    static const struct { const char *in, *out; } v[] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    char out[32];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t n = mw_base64_encode(v[i].in, strlen(v[i].in), out, sizeof out);
        MW_CHECK_EQ_INT(n, strlen(v[i].out));
        MW_CHECK(strcmp(out, v[i].out) == 0);
    }
    MW_CHECK_EQ_INT(mw_base64_encode("foo", 3, out, 4), 0);   /* no room for NUL */
}

/* RFC 6455 1.3: the sample nonce and its accept value. */
static void test_accept_sample(void)
{
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    char cat[64], acc[32];
    unsigned char h[20];
    snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    mw_sha1(cat, strlen(cat), h);
    mw_base64_encode(h, 20, acc, sizeof acc);
    MW_CHECK(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
}

static void test_random(void)
{
    unsigned char a[32], b[32];
    MW_CHECK_EQ_INT(mw_random(a, sizeof a), 0);
    MW_CHECK_EQ_INT(mw_random(b, sizeof b), 0);
    MW_CHECK(memcmp(a, b, sizeof a) != 0);
    static unsigned char big[200000];
    MW_CHECK_EQ_INT(mw_random(big, sizeof big), 0);
}

int main(void)
{
    MW_RUN(test_sha1);
    MW_RUN(test_base64);
    MW_RUN(test_accept_sample);
    MW_RUN(test_random);
    return MW_DONE();
}
