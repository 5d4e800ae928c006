/* metrics: a process's counters and histograms as one value that can be
 * serialised into a compact blob, decoded, merged with another process's
 * (worker processes: counters summed, gauges summed or maxed, histograms
 * merged) and rendered in the Prometheus text format. Pure: no I/O, except
 * mw_metrics_write_file (the atomic write of --metrics FILE).
 *
 * How a supervising parent uses it (worker.count = N; l_metrics.c, workers.c): each
 * worker encodes its own totals (mw_metrics_encode) every interval and
 * writes the blob, length-prefixed (4 bytes, little endian), to a pipe its
 * parent gave it; the parent keeps the latest blob per worker, and at its
 * own interval decodes each (mw_metrics_decode: a malformed one is dropped
 * with a message), merges them into an empty mw_metrics (mw_metrics_merge)
 * and renders the sum (mw_metrics_render) into --metrics FILE. */
#ifndef MW_METRICS_H
#define MW_METRICS_H
#include <stddef.h>
#include <stdint.h>
#include "buf.h"
#include "histo.h"

#define MW_METRICS_NAME 64       /* a series' or histogram's name, with its NUL */
#define MW_METRICS_MAX_SERIES 256 /* names past this are counted under "_other" */
#define MW_METRICS_MAX_HISTOS 32
#define MW_METRICS_CODES 16

/* One series: the process total (name "") or the connections of one name. */
typedef struct mw_mseries {
    char name[MW_METRICS_NAME];
    uint64_t conns;              /* gauge: open connections (merge: sum) */
    uint64_t connects, reconnects, msgs_in, msgs_out, bytes_in, bytes_out; /* counters (sum) */
    uint64_t sendq_high;         /* gauge: send queue high-water bytes (merge: max) */
    double up_seconds;           /* counter: seconds connected (sum) */
    double rtt;                  /* gauge: smoothed ping RTT seconds, 0 none (merge: max) */
    int ncodes;
    struct { int code; uint64_t n; } codes[MW_METRICS_CODES]; /* close codes seen (sum) */
} mw_mseries;

typedef struct mw_mhisto {
    char name[MW_METRICS_NAME];
    mw_histo h;
} mw_mhisto;

typedef struct mw_metrics {
    mw_mseries *series;          /* [0] is always the process total */
    int nseries, cap;
    mw_mhisto *histos[MW_METRICS_MAX_HISTOS];
    int nhistos;
} mw_metrics;

/* 0, or -1 when out of memory. */
int mw_metrics_init(mw_metrics *m);
void mw_metrics_free(mw_metrics *m);
/* Forget every value (keeps the memory). */
void mw_metrics_clear(mw_metrics *m);
/* The series of name (NULL or "": the total), added when new; past
 * MW_METRICS_MAX_SERIES the "_other" series. NULL when out of memory. */
mw_mseries *mw_metrics_series(mw_metrics *m, const char *name);
/* The histogram of name, added (empty) when new. NULL when out of memory or
 * past MW_METRICS_MAX_HISTOS. */
mw_histo *mw_metrics_histo(mw_metrics *m, const char *name);
/* Count n close frames with code (codes past the table go under code 0). */
void mw_mseries_add_code(mw_mseries *s, int code, uint64_t n);
/* dst += src series-wise (the rules above). */
void mw_mseries_merge(mw_mseries *dst, const mw_mseries *src);
/* dst += src: series matched by name, histograms by name. 0 or -1 (OOM). */
int mw_metrics_merge(mw_metrics *dst, const mw_metrics *src);

/* Blob: "MWM1", the series count and each series (name length + bytes,
 * the counters as varints, the doubles as 8 bytes, the codes), then the
 * histogram count and each (name, then mw_histo_encode's bytes with their
 * length). Appends to out: 0, or -1 when out of memory. */
int mw_metrics_encode(const mw_metrics *m, mw_buf *out);
/* Decode p[0..n) into m (cleared first): 0, or -1 when malformed (m is
 * then cleared) or out of memory. */
int mw_metrics_decode(mw_metrics *m, const unsigned char *p, size_t n);

/* The Prometheus text format (version 0.0.4) of m, appended to out: HELP
 * and TYPE per family; the total without labels, each named series with
 * name="..."; histograms as one summary family, moonwire_histogram, with
 * histogram="..." and quantiles 0.5, 0.9, 0.99, 0.999. 0 or -1 (OOM). */
int mw_metrics_render(const mw_metrics *m, mw_buf *out);

/* Write data to path atomically: a temporary file in path's directory,
 * then rename over path (node_exporter's textfile convention). 0, or -1
 * with why in err. */
int mw_metrics_write_file(const char *path, const char *data, size_t n, char *err, size_t cap);
#endif
