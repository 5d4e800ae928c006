/* histo: log-linear histogram (see histo.h). Pure logic. */
#include "histo.h"
#include <math.h>
#include <string.h>

void mw_histo_init(mw_histo *h)
{
    memset(h, 0, sizeof *h);
}

int mw_histo_index(double v)
{
    if (v < MW_HISTO_MIN) return 0;
    if (v >= MW_HISTO_MAX) return MW_HISTO_BUCKETS - 1;
    int e;
    double m = frexp(v, &e);                 /* v = m * 2^e, m in [0.5, 1) */
    int sub = (int)((m - 0.5) * 2 * MW_HISTO_SUB);
    if (sub >= MW_HISTO_SUB) sub = MW_HISTO_SUB - 1;
    return 1 + (e - MW_HISTO_EMIN) * MW_HISTO_SUB + sub;
}

double mw_histo_value(int idx)
{
    if (idx <= 0) return 0;
    int k = idx - 1;
    int e = k / MW_HISTO_SUB + MW_HISTO_EMIN, sub = k % MW_HISTO_SUB;
    double lo = ldexp(0.5 + (double)sub / (2 * MW_HISTO_SUB), e);
    double width = ldexp(1.0 / (2 * MW_HISTO_SUB), e);
    return lo + width / 2;
}

int mw_histo_record_n(mw_histo *h, double v, uint64_t n)
{
    if (!(v >= 0)) return -1;                /* negative or NaN */
    if (n == 0) return 0;
    if (h->count == 0 || v < h->min) h->min = v;
    if (h->count == 0 || v > h->max) h->max = v;
    h->count += n;
    h->sum += v * (double)n;
    h->b[mw_histo_index(v)] += n;
    return 0;
}

int mw_histo_record(mw_histo *h, double v) { return mw_histo_record_n(h, v, 1); }

double mw_histo_mean(const mw_histo *h) { return h->count ? h->sum / (double)h->count : 0; }

double mw_histo_percentile(const mw_histo *h, double p)
{
    if (h->count == 0) return 0;
    if (p <= 0) return h->min;
    if (p >= 100) return h->max;
    /* the rank of the p-th percentile, 1-based: ceil(p/100 * count) */
    double want = ceil(p / 100.0 * (double)h->count);
    if (want < 1) want = 1;
    uint64_t seen = 0;
    for (int i = 0; i < MW_HISTO_BUCKETS; i++) {
        seen += h->b[i];
        if ((double)seen >= want) {
            double v = mw_histo_value(i);
            if (v < h->min) v = h->min;
            if (v > h->max) v = h->max;
            return v;
        }
    }
    return h->max;
}

void mw_histo_merge(mw_histo *dst, const mw_histo *src)
{
    if (src->count == 0) return;
    if (dst->count == 0 || src->min < dst->min) dst->min = src->min;
    if (dst->count == 0 || src->max > dst->max) dst->max = src->max;
    dst->count += src->count;
    dst->sum += src->sum;
    for (int i = 0; i < MW_HISTO_BUCKETS; i++) dst->b[i] += src->b[i];
}

/* ---- serialised form ---- */

size_t mw_put_varint(unsigned char *out, size_t cap, size_t at, uint64_t v)
{
    do {
        unsigned char byte = v & 0x7f;
        v >>= 7;
        if (v) byte |= 0x80;
        if (at < cap) out[at] = byte;
        at++;
    } while (v);
    return at;
}

size_t mw_get_varint(const unsigned char *p, size_t n, size_t at, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (at >= n) return 0;
        unsigned char byte = p[at++];
        if (shift == 63 && (byte & 0x7e)) return 0; /* past 64 bits */
        r |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) { *v = r; return at; }
    }
    return 0;
}

size_t mw_put_f64(unsigned char *out, size_t cap, size_t at, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    for (int i = 0; i < 8; i++, at++)
        if (at < cap) out[at] = (unsigned char)(u >> (8 * i));
    return at;
}

size_t mw_get_f64(const unsigned char *p, size_t n, size_t at, double *v)
{
    if (n < 8 || at > n - 8) return 0;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++) u |= (uint64_t)p[at + i] << (8 * i);
    memcpy(v, &u, 8);
    return at + 8;
}

size_t mw_histo_encode(const mw_histo *h, unsigned char *out, size_t cap)
{
    size_t at = 0;
    static const char magic[4] = {'M', 'W', 'H', '1'};
    for (int i = 0; i < 4; i++, at++) if (at < cap) out[at] = (unsigned char)magic[i];
    at = mw_put_varint(out, cap, at, h->count);
    at = mw_put_f64(out, cap, at, h->min);
    at = mw_put_f64(out, cap, at, h->max);
    at = mw_put_f64(out, cap, at, h->sum);
    uint64_t nz = 0;
    for (int i = 0; i < MW_HISTO_BUCKETS; i++) nz += h->b[i] != 0;
    at = mw_put_varint(out, cap, at, nz);
    int prev = 0;
    for (int i = 0; i < MW_HISTO_BUCKETS; i++) {
        if (!h->b[i]) continue;
        at = mw_put_varint(out, cap, at, (uint64_t)(i - prev));
        at = mw_put_varint(out, cap, at, h->b[i]);
        prev = i;
    }
    return at;
}

size_t mw_histo_decode(mw_histo *h, const unsigned char *p, size_t n)
{
    mw_histo_init(h);
    if (n < 4 || memcmp(p, "MWH1", 4) != 0) return 0;
    size_t at = 4;
    uint64_t count, nz, total = 0;
    if (!(at = mw_get_varint(p, n, at, &count))) goto bad;
    if (!(at = mw_get_f64(p, n, at, &h->min))) goto bad;
    if (!(at = mw_get_f64(p, n, at, &h->max))) goto bad;
    if (!(at = mw_get_f64(p, n, at, &h->sum))) goto bad;
    if (!(at = mw_get_varint(p, n, at, &nz)) || nz > MW_HISTO_BUCKETS) goto bad;
    if (!(h->min >= 0) || !(h->max >= h->min) || !(h->sum >= 0) || isinf(h->max)) goto bad;
    uint64_t idx = 0;
    for (uint64_t k = 0; k < nz; k++) {
        uint64_t d, c;
        if (!(at = mw_get_varint(p, n, at, &d))) goto bad;
        if (!(at = mw_get_varint(p, n, at, &c)) || c == 0) goto bad;
        if ((k > 0 && d == 0) || d >= MW_HISTO_BUCKETS || idx + d >= MW_HISTO_BUCKETS) goto bad;
        idx += d;
        if (c > UINT64_MAX - total) goto bad;
        total += c;
        h->b[idx] = c;
    }
    if (total != count) goto bad;
    if (count == 0 && (h->min != 0 || h->max != 0 || h->sum != 0)) goto bad;
    h->count = count;
    return at;
bad:
    mw_histo_init(h);
    return 0;
}
