/* mwtest: the few macros the C unit tests share. Each test file is its own
 * executable; main() calls MW_RUN(fn) per test and returns MW_DONE(). */
#ifndef MWTEST_H
#define MWTEST_H
#include <stdio.h>
#include <string.h>

static int mwt_failed, mwt_passed, mwt_cur_failed;

#define MW_CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    mwt_cur_failed = 1; } } while (0)
#define MW_CHECK_EQ_INT(a, b) do { long long _a = (long long)(a), _b = (long long)(b); \
    if (_a != _b) { fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", \
        __FILE__, __LINE__, #a, _a, #b, _b); mwt_cur_failed = 1; } } while (0)
#define MW_CHECK_MEM(p, q, n) do { if (memcmp((p), (q), (n)) != 0) { \
    fprintf(stderr, "%s:%d: bytes differ: %s vs %s\n", __FILE__, __LINE__, #p, #q); \
    mwt_cur_failed = 1; } } while (0)
#define MW_RUN(fn) do { mwt_cur_failed = 0; fn(); \
    if (mwt_cur_failed) { mwt_failed++; fprintf(stderr, "FAIL %s\n", #fn); } \
    else { mwt_passed++; } } while (0)
#define MW_DONE() (printf("%d passed, %d failed\n", mwt_passed, mwt_failed), mwt_failed ? 1 : 0)
#endif
