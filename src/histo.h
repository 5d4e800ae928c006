/* histo: a fixed-memory, log-linear histogram of non-negative doubles
 * (HDR-like), and its compact serialised form. Pure: no I/O, no Lua.
 *
 * Layout: a value v in [MW_HISTO_MIN, MW_HISTO_MAX) falls in one of
 * MW_HISTO_SUB linear sub-buckets of its power of two (v = m * 2^e with m in
 * [0.5, 1)), so a bucket spans 1/64 of its octave: a percentile answers the
 * bucket's midpoint, within 0.8% of a value in the bucket (about two
 * significant digits). Values below MW_HISTO_MIN (zero included) count in a
 * zero bucket and answer 0; values at or above MW_HISTO_MAX count in the
 * last bucket. min, max, sum and mean are exact. record is O(1); percentile
 * walks the buckets. */
#ifndef MW_HISTO_H
#define MW_HISTO_H
#include <stddef.h>
#include <stdint.h>

#define MW_HISTO_SUB 64          /* sub-buckets per power of two */
#define MW_HISTO_EMIN (-19)      /* the lowest octave, [2^-20, 2^-19): 2^-20 ~ 9.5e-7 is the smallest value told from 0 */
#define MW_HISTO_EMAX 45         /* the highest, [2^44, 2^45): 2^45 ~ 3.5e13 and above share the last bucket */
#define MW_HISTO_OCTAVES (MW_HISTO_EMAX - MW_HISTO_EMIN + 1)
#define MW_HISTO_BUCKETS (1 + MW_HISTO_OCTAVES * MW_HISTO_SUB) /* [0]: the zero bucket */
#define MW_HISTO_MIN 9.5367431640625e-07  /* 2^-20 */
#define MW_HISTO_MAX 3.5184372088832e13   /* 2^45 */

typedef struct mw_histo {
    uint64_t count;
    double min, max, sum;
    uint64_t b[MW_HISTO_BUCKETS];
} mw_histo;

void mw_histo_init(mw_histo *h);
/* Count v once. 0, or -1 (nothing counted) when v is negative or NaN. */
int mw_histo_record(mw_histo *h, double v);
/* Count v n times (same rules). */
int mw_histo_record_n(mw_histo *h, double v, uint64_t n);
/* The value at percentile p (0..100): the midpoint of the bucket where the
 * cumulative count reaches p% of count (clamped to [min, max]); 0 when empty. */
double mw_histo_percentile(const mw_histo *h, double p);
double mw_histo_mean(const mw_histo *h);
/* dst += src (the layout is fixed, so any two merge). */
void mw_histo_merge(mw_histo *dst, const mw_histo *src);
/* Bucket index of v (v >= 0), and a bucket's representative value. */
int mw_histo_index(double v);
double mw_histo_value(int idx);

/* Serialised form: "MWH1", count, min, max, sum (8 bytes each, little
 * endian), the number of non-empty buckets (varint), then per bucket the
 * index delta from the previous one (varint) and its count (varint).
 * mw_histo_encode appends to out[0..cap): the bytes written, or the size
 * needed when cap is too small (call again with enough). */
size_t mw_histo_encode(const mw_histo *h, unsigned char *out, size_t cap);
/* Decode p[0..n) into h: the bytes used, or 0 when malformed (truncated,
 * bad magic, an index out of range, counts that do not sum to count, a
 * negative or NaN min/max/sum); h is then empty. */
size_t mw_histo_decode(mw_histo *h, const unsigned char *p, size_t n);
#define MW_HISTO_ENCODED_MAX (4 + 32 + 10 + MW_HISTO_BUCKETS * 20)

/* Varints and doubles, shared with metrics.c. */
size_t mw_put_varint(unsigned char *out, size_t cap, size_t at, uint64_t v);
size_t mw_get_varint(const unsigned char *p, size_t n, size_t at, uint64_t *v); /* 0: malformed */
size_t mw_put_f64(unsigned char *out, size_t cap, size_t at, double v);
size_t mw_get_f64(const unsigned char *p, size_t n, size_t at, double *v);      /* 0: truncated */
#endif
