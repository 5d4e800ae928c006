/* metrics: a process's totals: merge, blob, Prometheus text (see metrics.h). */
#include "metrics.h"
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int mw_metrics_init(mw_metrics *m)
{
    memset(m, 0, sizeof *m);
    m->series = calloc(8, sizeof *m->series);
    if (!m->series) return -1;
    m->cap = 8;
    m->nseries = 1;                 /* the total, name "" */
    return 0;
}

void mw_metrics_free(mw_metrics *m)
{
    free(m->series);
    for (int i = 0; i < m->nhistos; i++) free(m->histos[i]);
    memset(m, 0, sizeof *m);
}

void mw_metrics_clear(mw_metrics *m)
{
    for (int i = 0; i < m->nhistos; i++) free(m->histos[i]);
    m->nhistos = 0;
    memset(m->series, 0, sizeof *m->series);
    m->nseries = 1;
}

static void set_name(char *dst, const char *src, size_t n)
{
    if (n >= MW_METRICS_NAME) n = MW_METRICS_NAME - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

static mw_mseries *series_n(mw_metrics *m, const char *name, size_t n)
{
    if (n >= MW_METRICS_NAME) n = MW_METRICS_NAME - 1;
    if (n == 0) return &m->series[0];
    for (int i = 1; i < m->nseries; i++)
        if (strlen(m->series[i].name) == n && memcmp(m->series[i].name, name, n) == 0) return &m->series[i];
    if (m->nseries > MW_METRICS_MAX_SERIES) {
        if (n == 6 && memcmp(name, "_other", 6) == 0) return NULL; /* cannot happen: found above */
        return series_n(m, "_other", 6);
    }
    if (m->nseries == m->cap) {
        mw_mseries *s = realloc(m->series, (size_t)m->cap * 2 * sizeof *s);
        if (!s) return NULL;
        m->series = s;
        m->cap *= 2;
    }
    mw_mseries *s = &m->series[m->nseries++];
    memset(s, 0, sizeof *s);
    set_name(s->name, name, n);
    return s;
}

mw_mseries *mw_metrics_series(mw_metrics *m, const char *name)
{
    return series_n(m, name ? name : "", name ? strlen(name) : 0);
}

static mw_histo *histo_n(mw_metrics *m, const char *name, size_t n)
{
    if (n >= MW_METRICS_NAME) n = MW_METRICS_NAME - 1;
    for (int i = 0; i < m->nhistos; i++)
        if (strlen(m->histos[i]->name) == n && memcmp(m->histos[i]->name, name, n) == 0) return &m->histos[i]->h;
    if (m->nhistos == MW_METRICS_MAX_HISTOS) return NULL;
    mw_mhisto *h = malloc(sizeof *h);
    if (!h) return NULL;
    set_name(h->name, name, n);
    mw_histo_init(&h->h);
    m->histos[m->nhistos++] = h;
    return &h->h;
}

mw_histo *mw_metrics_histo(mw_metrics *m, const char *name) { return histo_n(m, name, strlen(name)); }

void mw_mseries_add_code(mw_mseries *s, int code, uint64_t n)
{
    for (int i = 0; i < s->ncodes; i++)
        if (s->codes[i].code == code) { s->codes[i].n += n; return; }
    if (s->ncodes < MW_METRICS_CODES) {
        s->codes[s->ncodes].code = code;
        s->codes[s->ncodes++].n = n;
        return;
    }
    /* full: the count goes under code 0 ("other"); with no such slot yet the
     * last one becomes it (its count kept, its code lost) */
    for (int i = 0; i < s->ncodes; i++)
        if (s->codes[i].code == 0) { s->codes[i].n += n; return; }
    s->codes[MW_METRICS_CODES - 1].code = 0;
    s->codes[MW_METRICS_CODES - 1].n += n;
}

void mw_mseries_merge(mw_mseries *d, const mw_mseries *s)
{
    d->conns += s->conns;
    d->connects += s->connects;
    d->reconnects += s->reconnects;
    d->msgs_in += s->msgs_in;
    d->msgs_out += s->msgs_out;
    d->bytes_in += s->bytes_in;
    d->bytes_out += s->bytes_out;
    if (s->sendq_high > d->sendq_high) d->sendq_high = s->sendq_high;
    d->up_seconds += s->up_seconds;
    if (s->rtt > d->rtt) d->rtt = s->rtt;
    for (int i = 0; i < s->ncodes; i++) mw_mseries_add_code(d, s->codes[i].code, s->codes[i].n);
}

int mw_metrics_merge(mw_metrics *dst, const mw_metrics *src)
{
    for (int i = 0; i < src->nseries; i++) {
        mw_mseries *d = mw_metrics_series(dst, src->series[i].name);
        if (!d) return -1;
        mw_mseries_merge(d, &src->series[i]);
    }
    for (int i = 0; i < src->nhistos; i++) {
        mw_histo *d = mw_metrics_histo(dst, src->histos[i]->name);
        if (!d) return -1;
        mw_histo_merge(d, &src->histos[i]->h);
    }
    return 0;
}

/* ---- blob ---- */

static int put_varint(mw_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = mw_put_varint(tmp, sizeof tmp, 0, v);
    return mw_buf_append(b, tmp, n);
}

static int put_f64(mw_buf *b, double v)
{
    unsigned char tmp[8];
    mw_put_f64(tmp, 8, 0, v);
    return mw_buf_append(b, tmp, 8);
}

static int put_name(mw_buf *b, const char *s)
{
    size_t n = strlen(s);
    return put_varint(b, n) | mw_buf_append(b, s, n);
}

int mw_metrics_encode(const mw_metrics *m, mw_buf *out)
{
    int r = mw_buf_append(out, "MWM1", 4) | put_varint(out, (uint64_t)m->nseries);
    for (int i = 0; i < m->nseries && !r; i++) {
        const mw_mseries *s = &m->series[i];
        r |= put_name(out, s->name);
        uint64_t v[] = {s->conns, s->connects, s->reconnects, s->msgs_in, s->msgs_out,
                        s->bytes_in, s->bytes_out, s->sendq_high};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) r |= put_varint(out, v[k]);
        r |= put_f64(out, s->up_seconds) | put_f64(out, s->rtt) | put_varint(out, (uint64_t)s->ncodes);
        for (int k = 0; k < s->ncodes; k++)
            r |= put_varint(out, (uint64_t)(unsigned)s->codes[k].code) | put_varint(out, s->codes[k].n);
    }
    r |= put_varint(out, (uint64_t)m->nhistos);
    for (int i = 0; i < m->nhistos && !r; i++) {
        r |= put_name(out, m->histos[i]->name);
        size_t need = mw_histo_encode(&m->histos[i]->h, NULL, 0);
        r |= put_varint(out, need);
        unsigned char *p = (unsigned char *)mw_buf_reserve(out, need);
        if (!p) return -1;
        mw_histo_encode(&m->histos[i]->h, p, need);
        mw_buf_commit(out, need);
    }
    return r ? -1 : 0;
}

typedef struct rd { const unsigned char *p; size_t n, at; int bad; } rd;

static uint64_t rd_varint(rd *r)
{
    uint64_t v = 0;
    if (r->bad) return 0;
    size_t at = mw_get_varint(r->p, r->n, r->at, &v);
    if (!at) { r->bad = 1; return 0; }
    r->at = at;
    return v;
}

static double rd_f64(rd *r)
{
    double v = 0;
    if (r->bad) return 0;
    size_t at = mw_get_f64(r->p, r->n, r->at, &v);
    if (!at) { r->bad = 1; return 0; }
    r->at = at;
    return v;
}

/* A name: its bytes in r->p[*off..*off+len); no NUL inside, < MW_METRICS_NAME. */
static size_t rd_name(rd *r, size_t *off)
{
    uint64_t len = rd_varint(r);
    if (r->bad || len >= MW_METRICS_NAME || len > r->n - r->at) { r->bad = 1; return 0; }
    if (memchr(r->p + r->at, 0, (size_t)len)) { r->bad = 1; return 0; }
    *off = r->at;
    r->at += (size_t)len;
    return (size_t)len;
}

int mw_metrics_decode(mw_metrics *m, const unsigned char *p, size_t n)
{
    mw_metrics_clear(m);
    if (n < 4 || memcmp(p, "MWM1", 4) != 0) return -1;
    rd r = {p, n, 4, 0};
    uint64_t ns = rd_varint(&r);
    if (r.bad || ns == 0 || ns > MW_METRICS_MAX_SERIES + 2) goto bad;
    for (uint64_t i = 0; i < ns; i++) {
        size_t off, len = rd_name(&r, &off);
        if (r.bad || (i == 0) != (len == 0)) goto bad; /* the total first, and only there */
        mw_mseries tmp;
        memset(&tmp, 0, sizeof tmp);
        uint64_t *v[] = {&tmp.conns, &tmp.connects, &tmp.reconnects, &tmp.msgs_in, &tmp.msgs_out,
                         &tmp.bytes_in, &tmp.bytes_out, &tmp.sendq_high};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) *v[k] = rd_varint(&r);
        tmp.up_seconds = rd_f64(&r);
        tmp.rtt = rd_f64(&r);
        if (!(tmp.up_seconds >= 0) || !(tmp.rtt >= 0) || isinf(tmp.up_seconds) || isinf(tmp.rtt)) goto bad;
        uint64_t nc = rd_varint(&r);
        if (r.bad || nc > MW_METRICS_CODES) goto bad;
        for (uint64_t k = 0; k < nc; k++) {
            uint64_t code = rd_varint(&r), cnt = rd_varint(&r);
            if (r.bad || code > 65535) goto bad;
            mw_mseries_add_code(&tmp, (int)code, cnt);
        }
        if (r.bad) goto bad;
        mw_mseries *s = series_n(m, (const char *)p + off, len);
        if (!s) goto oom;
        mw_mseries_merge(s, &tmp);
        if (isinf(s->up_seconds)) goto bad;  /* a repeated name summed past the range */
    }
    uint64_t nh = rd_varint(&r);
    if (r.bad || nh > MW_METRICS_MAX_HISTOS) goto bad;
    for (uint64_t i = 0; i < nh; i++) {
        size_t off, len = rd_name(&r, &off);
        uint64_t hl = rd_varint(&r);
        if (r.bad || len == 0 || hl > r.n - r.at) goto bad;
        mw_histo *h = histo_n(m, (const char *)p + off, len);
        if (!h) goto oom;
        mw_histo *tmp = malloc(sizeof *tmp);
        if (!tmp) goto oom;
        size_t used = mw_histo_decode(tmp, p + r.at, (size_t)hl);
        if (used != hl || tmp->count > UINT64_MAX - h->count) { free(tmp); goto bad; }
        mw_histo_merge(h, tmp);
        free(tmp);
        r.at += (size_t)hl;
    }
    if (r.at != n) goto bad;
    return 0;
bad:
oom:
    mw_metrics_clear(m);
    return -1;
}

/* ---- Prometheus text ---- */

static int put(mw_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int put(mw_buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    return mw_buf_append(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A label value, escaped as the format asks (\\, \", \n); bytes that are not
 * printable ASCII become '_' so the file stays valid UTF-8. */
static void label_value(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 3 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '\\' || ch == '"') { dst[o++] = '\\'; dst[o++] = (char)ch; }
        else if (ch == '\n') { dst[o++] = '\\'; dst[o++] = 'n'; }
        else dst[o++] = ch < 0x20 || ch >= 0x7f ? '_' : (char)ch;
    }
    dst[o] = 0;
}

static int family(mw_buf *b, const char *name, const char *type, const char *help)
{
    return put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* labels: "" for the total, else {name="..."} (with extra appended inside). */
static void labels(char *dst, size_t cap, const mw_mseries *s, const char *extra)
{
    char v[MW_METRICS_NAME * 2 + 4];
    label_value(v, sizeof v, s->name);
    if (!s->name[0] && !extra[0]) dst[0] = 0;
    else if (!s->name[0]) snprintf(dst, cap, "{%s}", extra);
    else snprintf(dst, cap, "{name=\"%s\"%s%s}", v, extra[0] ? "," : "", extra);
}

enum { F_U64, F_DBL };
typedef struct fam {
    const char *name, *type, *help;
    size_t off;
    int kind;
} fam;

#define OFF(f) offsetof(mw_mseries, f)
static const fam fams[] = {
    {"moonwire_connections", "gauge", "Open connections.", OFF(conns), F_U64},
    {"moonwire_connects_total", "counter", "Sessions that opened.", OFF(connects), F_U64},
    {"moonwire_reconnects_total", "counter", "Connect attempts after a connection's first.", OFF(reconnects), F_U64},
    {"moonwire_messages_received_total", "counter", "Messages received.", OFF(msgs_in), F_U64},
    {"moonwire_messages_sent_total", "counter", "Messages sent.", OFF(msgs_out), F_U64},
    {"moonwire_bytes_received_total", "counter", "Bytes read from the sockets.", OFF(bytes_in), F_U64},
    {"moonwire_bytes_sent_total", "counter", "Bytes written to the sockets.", OFF(bytes_out), F_U64},
    {"moonwire_send_queue_high_water_bytes", "gauge", "The most bytes a connection ever had queued to send.", OFF(sendq_high), F_U64},
    {"moonwire_connected_seconds_total", "counter", "Seconds connections were open, summed.", OFF(up_seconds), F_DBL},
    {"moonwire_ping_rtt_seconds", "gauge", "Smoothed WebSocket ping round trip (the worst connection's).", OFF(rtt), F_DBL},
};

int mw_metrics_render(const mw_metrics *m, mw_buf *out)
{
    int r = 0;
    char lab[MW_METRICS_NAME * 2 + 64];
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        r |= family(out, fams[f].name, fams[f].type, fams[f].help);
        for (int i = 0; i < m->nseries; i++) {
            const mw_mseries *s = &m->series[i];
            const char *field = (const char *)s + fams[f].off;
            labels(lab, sizeof lab, s, "");
            if (fams[f].kind == F_U64) r |= put(out, "%s%s %llu\n", fams[f].name, lab, (unsigned long long)*(const uint64_t *)field);
            else r |= put(out, "%s%s %.9g\n", fams[f].name, lab, *(const double *)field);
        }
    }
    r |= family(out, "moonwire_close_codes_total", "counter", "Close codes seen (the peer's close frame; code 0: codes past the table).");
    for (int i = 0; i < m->nseries; i++) {
        const mw_mseries *s = &m->series[i];
        for (int k = 0; k < s->ncodes; k++) {
            char extra[32];
            snprintf(extra, sizeof extra, "code=\"%d\"", s->codes[k].code);
            labels(lab, sizeof lab, s, extra);
            r |= put(out, "moonwire_close_codes_total%s %llu\n", lab, (unsigned long long)s->codes[k].n);
        }
    }
    if (m->nhistos) {
        static const double qs[] = {0.5, 0.9, 0.99, 0.999};
        r |= family(out, "moonwire_histogram", "summary", "Histograms a script made with mw.histogram{name=...}.");
        for (int i = 0; i < m->nhistos; i++) {
            const mw_histo *h = &m->histos[i]->h;
            char v[MW_METRICS_NAME * 2 + 4];
            label_value(v, sizeof v, m->histos[i]->name);
            for (size_t q = 0; q < sizeof qs / sizeof qs[0]; q++)
                r |= put(out, "moonwire_histogram{histogram=\"%s\",quantile=\"%g\"} %.9g\n", v, qs[q],
                         mw_histo_percentile(h, qs[q] * 100));
            r |= put(out, "moonwire_histogram_sum{histogram=\"%s\"} %.9g\n", v, h->sum);
            r |= put(out, "moonwire_histogram_count{histogram=\"%s\"} %llu\n", v, (unsigned long long)h->count);
        }
    }
    return r ? -1 : 0;
}

int mw_metrics_write_file(const char *path, const char *data, size_t n, char *err, size_t cap)
{
    /* in path's directory, so the rename stays on one filesystem; a name
     * node_exporter's textfile collector skips (it reads *.prom only) */
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof tmp) {
        snprintf(err, cap, "metrics file %s: path too long", path);
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) { snprintf(err, cap, "metrics file %s: cannot create %s: %s", path, tmp, strerror(errno)); return -1; }
    size_t w = fwrite(data, 1, n, f);
    int e = (w != n || fflush(f) != 0) ? errno : 0;
    if (fclose(f) != 0 && !e) e = errno;
    if (e || w != n) {
        snprintf(err, cap, "metrics file %s: cannot write %s: %s", path, tmp, strerror(e ? e : EIO));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        snprintf(err, cap, "metrics file %s: cannot rename %s over it: %s", path, tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}
