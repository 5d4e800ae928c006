/* crypto: the few primitives moonwire needs (random bytes, SHA-1, Base64).
 * The only file that includes wolfSSL headers for hashing/RNG; callers see plain C. */
#ifndef MW_CRYPTO_H
#define MW_CRYPTO_H
#include <stddef.h>

/* Fill out[0..n) from the process-wide wolfCrypt RNG (lazily initialised,
 * kept for the process). Returns 0, or -1 if the RNG cannot be set up or fails. */
int mw_random(void *out, size_t n);
/* In a process just forked: forget the generator, so that the next
 * mw_random seeds a new one from the OS (a copy of the parent's state would
 * give every worker the same mask keys and handshake keys). */
void mw_random_after_fork(void);

/* SHA-1 of p[0..n) into out. */
void mw_sha1(const void *p, size_t n, unsigned char out[20]);

/* Base64 (standard alphabet, padded, no line breaks) of p[0..n) into out.
 * Returns the length written (out is NUL-terminated), or 0 if outcap is too
 * small (needs 4*ceil(n/3)+1) or encoding failed. */
size_t mw_base64_encode(const void *p, size_t n, char *out, size_t outcap);

#endif
