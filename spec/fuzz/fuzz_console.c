/* fuzz_console: libFuzzer target for the console's frame parser: the input
 * is parsed frame by frame, whole and one byte at a time, and both must give
 * the same frames; each frame re-encodes to the bytes it came from. Knows
 * only console_proto.h. */
#include "console_proto.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* frames of p[0..n) fed with at most `step` new bytes at a time; returns how
 * many, and their kinds and lengths summed into *sum */
static size_t run(const char *p, size_t n, size_t step, unsigned long *sum, int *failed)
{
    size_t have = 0, off = 0, count = 0;
    *sum = 0; *failed = 0;
    while (off < n) {
        have = have + step > n ? n : have + step;
        for (;;) {
            int kind; const char *pl; size_t len; const char *why = NULL;
            long r = mw_cp_parse(p + off, have - off, &kind, &pl, &len, &why);
            if (r < 0) { if (!why || !*why) abort(); *failed = 1; return count; }
            if (r == 0) break;
            if ((size_t)r != MW_CP_HEAD + len || pl != p + off + MW_CP_HEAD || len > MW_CP_MAX) abort();
            mw_buf b = MW_BUF_INIT;
            if (mw_cp_encode(&b, kind, pl, len) != 0) abort();
            if (b.len != (size_t)r || memcmp(mw_buf_head(&b), p + off, b.len) != 0) abort();
            mw_buf_free(&b);
            *sum = *sum * 31 + (unsigned long)kind + len;
            off += (size_t)r;
            count++;
        }
        if (have == n) break;
    }
    return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned long s1, s2;
    int f1, f2;
    size_t c1 = run((const char *)data, size, size ? size : 1, &s1, &f1);
    size_t c2 = run((const char *)data, size, 1, &s2, &f2);
    if (c1 != c2 || s1 != s2 || f1 != f2) abort();
    return 0;
}
