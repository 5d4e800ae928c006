/* fuzz_metrics: libFuzzer target for the blobs a worker process would send
 * its parent (mw_metrics_decode, and mw_histo_decode inside it) and for
 * mw_histo_decode alone. A blob that decodes re-encodes to one that decodes
 * to the same values, and renders. Knows only metrics.h and histo.h. */
#include "histo.h"
#include "metrics.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check_histo(const uint8_t *data, size_t size)
{
    static mw_histo h, again;
    size_t used = mw_histo_decode(&h, data, size);
    if (!used) {
        if (h.count) abort();
        return;
    }
    if (used > size) abort();
    static unsigned char out[MW_HISTO_ENCODED_MAX];
    size_t n = mw_histo_encode(&h, out, sizeof out);
    if (n > sizeof out || mw_histo_decode(&again, out, n) != n) abort();
    if (memcmp(&h, &again, sizeof h) != 0) abort();
    double p50 = mw_histo_percentile(&h, 50), p99 = mw_histo_percentile(&h, 99);
    if (h.count && (p50 < h.min || p99 > h.max || p50 > p99)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_histo(data, size);
    mw_metrics m, again;
    if (mw_metrics_init(&m) != 0 || mw_metrics_init(&again) != 0) abort();
    if (mw_metrics_decode(&m, data, size) == 0) {
        mw_buf b, text;
        mw_buf_init(&b);
        mw_buf_init(&text);
        if (mw_metrics_encode(&m, &b) != 0) abort();
        if (mw_metrics_decode(&again, (const unsigned char *)mw_buf_head(&b), b.len) != 0) abort();
        if (again.nseries != m.nseries || again.nhistos != m.nhistos) abort();
        if (memcmp(again.series, m.series, (size_t)m.nseries * sizeof *m.series) != 0) abort();
        if (mw_metrics_render(&m, &text) != 0) abort();
        mw_buf_free(&b);
        mw_buf_free(&text);
    } else if (m.nseries != 1 || m.nhistos != 0) {
        abort();
    }
    mw_metrics_free(&m);
    mw_metrics_free(&again);
    return 0;
}
