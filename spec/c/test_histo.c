/* test_histo: the log-linear histogram (src/histo.c) and the metrics blob,
 * merge and Prometheus renderer (src/metrics.c), on their own. */
#include "histo.h"
#include "metrics.h"
#include "mwtest.h"
#include <math.h>
#include <stdlib.h>

static int near(double got, double want, double rel) { return fabs(got - want) <= fabs(want) * rel; }

static mw_histo *new_h(void)
{
    mw_histo *h = malloc(sizeof *h);
    mw_histo_init(h);
    return h;
}

static void test_percentiles_of_1_to_10000(void)
{
    mw_histo *h = new_h();
    for (int i = 1; i <= 10000; i++) MW_CHECK(mw_histo_record(h, i) == 0);
    MW_CHECK_EQ_INT(h->count, 10000);
    MW_CHECK(h->min == 1 && h->max == 10000);
    MW_CHECK(near(mw_histo_mean(h), 5000.5, 1e-12));
    MW_CHECK(near(mw_histo_percentile(h, 50), 5000, 0.008));
    MW_CHECK(near(mw_histo_percentile(h, 99), 9900, 0.008));
    MW_CHECK(near(mw_histo_percentile(h, 99.9), 9990, 0.008));
    MW_CHECK(mw_histo_percentile(h, 100) == 10000);
    MW_CHECK(mw_histo_percentile(h, 0) == 1);
    free(h);
}

static void test_relative_error_across_the_range(void)
{
    /* every value's bucket midpoint is within 1/128 of it */
    for (double v = MW_HISTO_MIN; v < MW_HISTO_MAX; v *= 1.0137) {
        double mid = mw_histo_value(mw_histo_index(v));
        if (!near(mid, v, 1.0 / 128 + 1e-12)) { MW_CHECK(near(mid, v, 1.0 / 128 + 1e-12)); fprintf(stderr, "v=%g mid=%g\n", v, mid); break; }
    }
    MW_CHECK_EQ_INT(mw_histo_index(0), 0);
    MW_CHECK_EQ_INT(mw_histo_index(MW_HISTO_MIN / 2), 0);
    MW_CHECK_EQ_INT(mw_histo_index(1e300), MW_HISTO_BUCKETS - 1);
    MW_CHECK_EQ_INT(mw_histo_index(INFINITY), MW_HISTO_BUCKETS - 1);
    MW_CHECK(mw_histo_index(1.0) < mw_histo_index(1.02));
}

static void test_rejects_negative_and_nan(void)
{
    mw_histo *h = new_h();
    MW_CHECK(mw_histo_record(h, -1) == -1);
    MW_CHECK(mw_histo_record(h, NAN) == -1);
    MW_CHECK_EQ_INT(h->count, 0);
    MW_CHECK(mw_histo_percentile(h, 50) == 0);
    MW_CHECK(mw_histo_record(h, 0) == 0);
    MW_CHECK(mw_histo_percentile(h, 50) == 0);
    free(h);
}

static void test_merge_equals_recording_both(void)
{
    mw_histo *a = new_h(), *b = new_h(), *both = new_h();
    for (int i = 0; i < 1000; i++) {
        double x = 0.001 * (i + 1), y = 3.0 * (i + 7);
        mw_histo_record(a, x); mw_histo_record(both, x);
        mw_histo_record(b, y); mw_histo_record(both, y);
    }
    mw_histo_merge(a, b);
    MW_CHECK_EQ_INT(a->count, both->count);
    MW_CHECK(a->min == both->min && a->max == both->max);
    MW_CHECK_MEM(a->b, both->b, sizeof a->b);
    MW_CHECK(mw_histo_percentile(a, 99) == mw_histo_percentile(both, 99));
    free(a); free(b); free(both);
}

static void test_encode_decode_round_trip(void)
{
    mw_histo *h = new_h(), *d = new_h();
    for (int i = 0; i < 500; i++) mw_histo_record(h, i * i * 0.37);
    size_t need = mw_histo_encode(h, NULL, 0);
    unsigned char *p = malloc(need);
    MW_CHECK(mw_histo_encode(h, p, need) == need);
    MW_CHECK(need < 2000);                       /* sparse: not 32 KB */
    MW_CHECK(mw_histo_decode(d, p, need) == need);
    MW_CHECK_MEM(h, d, sizeof *h);
    /* every truncated prefix is refused */
    for (size_t n = 0; n < need; n++)
        if (mw_histo_decode(d, p, n) != 0) { MW_CHECK(!"a truncated blob decoded"); break; }
    MW_CHECK_EQ_INT(d->count, 0);
    p[need - 1] ^= 1;                            /* a count that no longer sums */
    MW_CHECK(mw_histo_decode(d, p, need) == 0);
    free(p); free(h); free(d);
}

static void fill(mw_metrics *m, const char *name, uint64_t k)
{
    mw_mseries *t = mw_metrics_series(m, NULL), *s = mw_metrics_series(m, name);
    for (int i = 0; i < 2; i++) {
        mw_mseries *x = i ? s : t;
        x->conns += k; x->connects += k; x->msgs_in += 10 * k; x->bytes_in += 100 * k;
        x->sendq_high = k * 1000; x->rtt = 0.001 * (double)k; x->up_seconds += 1.5;
        mw_mseries_add_code(x, 1000, k);
    }
    mw_histo *h = mw_metrics_histo(m, "latency");
    for (uint64_t i = 1; i <= 100 * k; i++) mw_histo_record(h, (double)i / 1000);
}

static void test_metrics_blob_merge(void)
{
    mw_metrics a, b, sum, d;
    mw_metrics_init(&a); mw_metrics_init(&b); mw_metrics_init(&sum); mw_metrics_init(&d);
    fill(&a, "bots", 1);
    fill(&b, "bots", 3);
    mw_metrics_series(&b, "feed")->msgs_in = 7;
    mw_buf ba, bb;
    mw_buf_init(&ba); mw_buf_init(&bb);
    MW_CHECK(mw_metrics_encode(&a, &ba) == 0);
    MW_CHECK(mw_metrics_encode(&b, &bb) == 0);
    /* the parent's side: decode each worker's blob, merge into an empty total */
    MW_CHECK(mw_metrics_decode(&d, (unsigned char *)mw_buf_head(&ba), ba.len) == 0);
    MW_CHECK(mw_metrics_merge(&sum, &d) == 0);
    MW_CHECK(mw_metrics_decode(&d, (unsigned char *)mw_buf_head(&bb), bb.len) == 0);
    MW_CHECK(mw_metrics_merge(&sum, &d) == 0);
    mw_mseries *t = mw_metrics_series(&sum, NULL), *bots = mw_metrics_series(&sum, "bots");
    MW_CHECK_EQ_INT(sum.nseries, 3);
    MW_CHECK_EQ_INT(t->conns, 4);                /* gauge: summed */
    MW_CHECK_EQ_INT(t->msgs_in, 40);
    MW_CHECK_EQ_INT(bots->bytes_in, 400);
    MW_CHECK_EQ_INT(t->sendq_high, 3000);        /* gauge: maxed */
    MW_CHECK(t->rtt == 0.003);
    MW_CHECK(t->up_seconds == 3.0);
    MW_CHECK_EQ_INT(t->ncodes, 1);
    MW_CHECK_EQ_INT(t->codes[0].n, 4);
    MW_CHECK_EQ_INT(mw_metrics_series(&sum, "feed")->msgs_in, 7);
    MW_CHECK_EQ_INT(mw_metrics_histo(&sum, "latency")->count, 400);
    /* malformed blobs: every prefix, and a flipped magic */
    for (size_t n = 0; n < ba.len; n++)
        if (mw_metrics_decode(&d, (unsigned char *)mw_buf_head(&ba), n) == 0) { MW_CHECK(!"prefix decoded"); break; }
    mw_buf_head(&ba)[0] = 'X';
    MW_CHECK(mw_metrics_decode(&d, (unsigned char *)mw_buf_head(&ba), ba.len) == -1);
    MW_CHECK_EQ_INT(d.nseries, 1);
    mw_buf_free(&ba); mw_buf_free(&bb);
    mw_metrics_free(&a); mw_metrics_free(&b); mw_metrics_free(&sum); mw_metrics_free(&d);
}

static void test_close_code_table_overflows_into_0(void)
{
    mw_mseries s;
    memset(&s, 0, sizeof s);
    for (int c = 0; c < 40; c++) mw_mseries_add_code(&s, 3000 + c, 1);
    uint64_t total = 0;
    for (int i = 0; i < s.ncodes; i++) total += s.codes[i].n;
    MW_CHECK_EQ_INT(total, 40);
    MW_CHECK_EQ_INT(s.ncodes, MW_METRICS_CODES);
}

static void test_render(void)
{
    mw_metrics m;
    mw_metrics_init(&m);
    fill(&m, "we\"ird\\na\nme", 2);
    mw_buf out;
    mw_buf_init(&out);
    MW_CHECK(mw_metrics_render(&m, &out) == 0);
    MW_CHECK(mw_buf_append(&out, "", 1) == 0);
    const char *t = mw_buf_head(&out);
    MW_CHECK(strstr(t, "# TYPE moonwire_connections gauge\n"));
    MW_CHECK(strstr(t, "# TYPE moonwire_messages_received_total counter\n"));
    MW_CHECK(strstr(t, "\nmoonwire_messages_received_total 20\n"));
    MW_CHECK(strstr(t, "\nmoonwire_messages_received_total{name=\"we\\\"ird\\\\na\\nme\"} 20\n"));
    MW_CHECK(strstr(t, "\nmoonwire_close_codes_total{code=\"1000\"} 2\n"));
    MW_CHECK(strstr(t, "# TYPE moonwire_histogram summary\n"));
    MW_CHECK(strstr(t, "moonwire_histogram_count{histogram=\"latency\"} 200\n"));
    MW_CHECK(strstr(t, "moonwire_histogram{histogram=\"latency\",quantile=\"0.5\"} 0.1"));
    mw_buf_free(&out);
    mw_metrics_free(&m);
}

int main(void)
{
    MW_RUN(test_percentiles_of_1_to_10000);
    MW_RUN(test_relative_error_across_the_range);
    MW_RUN(test_rejects_negative_and_nan);
    MW_RUN(test_merge_equals_recording_both);
    MW_RUN(test_encode_decode_round_trip);
    MW_RUN(test_metrics_blob_merge);
    MW_RUN(test_close_code_table_overflows_into_0);
    MW_RUN(test_render);
    return MW_DONE();
}
