/* crypto: wolfCrypt behind plain functions: RNG, SHA-1, Base64.
 * Knows nothing of sockets, Lua or WebSocket framing. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <string.h>
#include "crypto.h"

/* One generator for the process; the host is single-threaded (one loop per
 * process), so lazy initialisation needs no lock. */
static WC_RNG g_rng;
static int g_rng_ok;

int mw_random(void *out, size_t n)
{
    if (!g_rng_ok) {
        if (wc_InitRng(&g_rng) != 0) return -1;
        g_rng_ok = 1;
    }
    unsigned char *p = out;
    while (n) {
        /* wc_RNG_GenerateBlock caps one request (RNG_MAX_BLOCK_LEN). */
        word32 chunk = n > 0x10000 ? 0x10000 : (word32)n;
        if (wc_RNG_GenerateBlock(&g_rng, p, chunk) != 0) return -1;
        p += chunk;
        n -= chunk;
    }
    return 0;
}

void mw_random_after_fork(void)
{
    if (g_rng_ok) wc_FreeRng(&g_rng);
    g_rng_ok = 0;
}

void mw_sha1(const void *p, size_t n, unsigned char out[20])
{
    wc_Sha sha;
    wc_InitSha(&sha);
    const unsigned char *b = p;
    while (n) {
        word32 chunk = n > 0x40000000 ? 0x40000000 : (word32)n;
        wc_ShaUpdate(&sha, b, chunk);
        b += chunk;
        n -= chunk;
    }
    wc_ShaFinal(&sha, out);
    wc_ShaFree(&sha);
}

size_t mw_base64_encode(const void *p, size_t n, char *out, size_t outcap)
{
    size_t need = (n + 2) / 3 * 4;
    if (outcap < need + 1 || n > 0x3fffffff) return 0;
    word32 olen = (word32)outcap;
    if (n == 0) { out[0] = 0; return 0; }
    if (Base64_Encode_NoNl(p, (word32)n, (byte *)out, &olen) != 0) return 0;
    out[olen] = 0;
    return olen;
}
