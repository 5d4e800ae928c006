/* wolfaead.c: what wolfCrypt alone can decrypt on this machine (issue 17.3): open
 * (decrypt + verify) TLS-sized records of 16 KiB with one AEAD for a fixed byte count,
 * the same work a TLS 1.3 reader does per record, with no socket and no TLS layer.
 *   wolfaead CIPHER N SIZE    CIPHER: aes128gcm | aes256gcm | chacha20poly1305
 * opens N * SIZE bytes (what the wss case moves: N messages of SIZE) and prints
 * "RESULT msgs=N bytes=N*SIZE secs=T cipher=..." like a bench client. Links Debian's libwolfssl. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REC 16384
#define TAG 16

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 4) { fprintf(stderr, "usage: wolfaead aes128gcm|aes256gcm|chacha20poly1305 N SIZE\n"); return 2; }
    const char *cipher = argv[1];
    long long n = atoll(argv[2]), size = atoll(argv[3]), total = n * size;
    long recs = (long)((total + REC - 1) / REC);
    static unsigned char plain[REC], sealed[REC], out[REC], tag[TAG], key[32], iv[12], aad[13];
    for (int i = 0; i < REC; i++) plain[i] = (unsigned char)('a' + i % 26);
    for (int i = 0; i < 32; i++) key[i] = (unsigned char)(i * 7 + 1);
    for (int i = 0; i < 12; i++) iv[i] = (unsigned char)(i * 3 + 5);
    memset(aad, 0x17, sizeof aad);
    int chacha = strcmp(cipher, "chacha20poly1305") == 0;
    int klen = strcmp(cipher, "aes128gcm") == 0 ? 16 : 32;
    if (!chacha && strcmp(cipher, "aes128gcm") != 0 && strcmp(cipher, "aes256gcm") != 0) {
        fprintf(stderr, "wolfaead: unknown cipher %s\n", cipher);
        return 2;
    }
    Aes aes;
    double t0, t;
    if (chacha) {
        if (wc_ChaCha20Poly1305_Encrypt(key, iv, aad, sizeof aad, plain, REC, sealed, tag) != 0) {
            fprintf(stderr, "wolfaead: chacha20-poly1305 seal failed\n");
            return 1;
        }
        t0 = now();
        for (long r = 0; r < recs; r++)
            if (wc_ChaCha20Poly1305_Decrypt(key, iv, aad, sizeof aad, sealed, REC, tag, out) != 0) {
                fprintf(stderr, "wolfaead: chacha20-poly1305 open failed\n");
                return 1;
            }
        t = now() - t0;
    } else {
        if (wc_AesInit(&aes, NULL, INVALID_DEVID) != 0 || wc_AesGcmSetKey(&aes, key, (word32)klen) != 0 ||
            wc_AesGcmEncrypt(&aes, sealed, plain, REC, iv, sizeof iv, tag, TAG, aad, sizeof aad) != 0) {
            fprintf(stderr, "wolfaead: AES-GCM setup failed\n");
            return 1;
        }
        t0 = now();
        for (long r = 0; r < recs; r++)
            if (wc_AesGcmDecrypt(&aes, out, sealed, REC, iv, sizeof iv, tag, TAG, aad, sizeof aad) != 0) {
                fprintf(stderr, "wolfaead: AES-GCM open failed\n");
                return 1;
            }
        t = now() - t0;
        wc_AesFree(&aes);
    }
    if (memcmp(out, plain, REC) != 0) { fprintf(stderr, "wolfaead: wrong plaintext\n"); return 1; }
    printf("INFO cipher=%s\nRESULT msgs=%lld bytes=%lld secs=%.6f\n", cipher, n, total, t);
    return 0;
}
