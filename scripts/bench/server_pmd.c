/* server_pmd.c: the bench server's JSON messages and permessage-deflate (RFC 7692, zlib):
 * the offer judged and answered, floods compressed once, a sink that inflates and checks,
 * the per-connection stats line. Not a unit of its own: server.c includes it after its
 * conn struct and frame_header (one file to compile, as run.sh and alloc.sh do). */

/* ---- the JSON messages and permessage-deflate ---- */

static void out_append(conn *c, const void *p, size_t n);

enum { JSON_SIZE = 200, BIG_LINES = 6 };
static char *jlines;          /* jcount lines of JSON_SIZE bytes (--json FILE) */
static size_t jcount;
static char big[BIG_LINES * (JSON_SIZE + 1) + 2];   /* the memory case's message */
static size_t big_len;
static FILE *stats;           /* --stats FILE */

static void load_json(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) die(path);
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        size_t n = strcspn(line, "\n");
        if (n != JSON_SIZE) {
            fprintf(stderr, "server: %s: line %zu has %zu bytes, not %d\n", path, jcount + 1, n, JSON_SIZE);
            exit(1);
        }
        jlines = realloc(jlines, (jcount + 1) * JSON_SIZE);
        if (!jlines) die("realloc");
        memcpy(jlines + jcount++ * JSON_SIZE, line, JSON_SIZE);
    }
    fclose(f);
    if (jcount < BIG_LINES) { fprintf(stderr, "server: %s: fewer than %d lines\n", path, BIG_LINES); exit(1); }
    big[big_len++] = '[';
    for (int i = 0; i < BIG_LINES; i++) {
        if (i) big[big_len++] = ',';
        memcpy(big + big_len, jlines + i * JSON_SIZE, JSON_SIZE);
        big_len += JSON_SIZE;
    }
    big[big_len++] = ']';
}

static const char *jline(uint64_t i) { return jlines + (i % jcount) * JSON_SIZE; }

typedef struct gbuf { char *p; size_t len, cap; } gbuf;

static char *gbuf_room(gbuf *g, size_t n)
{
    if (g->cap - g->len < n) {
        size_t cap = g->cap ? g->cap : 4096;
        while (cap - g->len < n) cap *= 2;
        g->p = realloc(g->p, cap);
        if (!g->p) die("realloc");
        g->cap = cap;
    }
    return g->p + g->len;
}

static z_stream *deflater_new(int wbits)
{
    z_stream *z = calloc(1, sizeof *z);
    if (!z || deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        die("deflateInit2");
    return z;
}

/* One message as a frame onto g: compressed when z (RFC 7692 7.2.1: a sync flush, its
 * 00 00 ff ff dropped, RSV1 on), else as it is. */
static void frame_msg(gbuf *g, z_stream *z, int nocontext, int op, const char *p, size_t n)
{
    static unsigned char zout[65536];
    if (z) {
        z->next_in = (Bytef *)p;
        z->avail_in = (uInt)n;
        z->next_out = zout;
        z->avail_out = sizeof zout;
        if (deflate(z, Z_SYNC_FLUSH) != Z_OK || z->avail_in || z->avail_out < 16) die("deflate");
        n = sizeof zout - z->avail_out - 4;
        p = (const char *)zout;
        if (nocontext) deflateReset(z);
    }
    unsigned char h[10];
    size_t hl = frame_header(h, op, n);
    if (z) h[0] |= 0x40;
    memcpy(gbuf_room(g, hl + n), h, hl);
    memcpy(g->p + g->len + hl, p, n);
    g->len += hl + n;
}

/* N JSON messages framed (compressed with window wbits, 0: not compressed), made once per
 * (n, wbits, nocontext) and kept for the process. */
typedef struct jflood { uint64_t n; int wbits, nocontext; gbuf g; struct jflood *next; } jflood;
static jflood *jfloods;

static jflood *jflood_for(uint64_t n, int wbits, int nocontext)
{
    for (jflood *f = jfloods; f; f = f->next)
        if (f->n == n && f->wbits == wbits && f->nocontext == nocontext) return f;
    jflood *f = calloc(1, sizeof *f);
    if (!f) die("calloc");
    f->n = n;
    f->wbits = wbits;
    f->nocontext = nocontext;
    z_stream *z = wbits ? deflater_new(wbits) : NULL;
    for (uint64_t i = 0; i < n; i++) frame_msg(&f->g, z, nocontext, 1, jline(i), JSON_SIZE);
    if (z) { deflateEnd(z); free(z); }
    f->next = jfloods;
    jfloods = f;
    return f;
}

/* The memory case's message as a frame: the first of a stream, so the same for every
 * connection with the same window. */
static const gbuf *big_frame(int wbits)
{
    static gbuf frames[16];
    gbuf *g = &frames[wbits];
    if (!g->len) {
        z_stream *z = wbits ? deflater_new(wbits) : NULL;
        frame_msg(g, z, 0, 1, big, big_len);
        if (z) { deflateEnd(z); free(z); }
    }
    return g;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
    return s;
}

/* One offer "permessage-deflate; p; p=v": when we can take it, c's answer and settings. */
static int take_offer(conn *c, char *el)
{
    char *save, *name = strtok_r(el, ";", &save);
    if (!name || strcasecmp(trim(name), "permessage-deflate") != 0) return 0;
    int snct = 0, cnct = 0, swb = 0;
    for (char *p; (p = strtok_r(NULL, ";", &save));) {
        char *v = strchr(p, '=');
        if (v) {
            *v++ = 0;
            v = trim(v);
            if (*v == '"') { v++; v[strcspn(v, "\"")] = 0; }
        }
        p = trim(p);
        if (strcasecmp(p, "server_no_context_takeover") == 0 && !v) snct = 1;
        else if (strcasecmp(p, "client_no_context_takeover") == 0 && !v) cnct = 1;
        else if (strcasecmp(p, "server_max_window_bits") == 0 && v) {
            swb = atoi(v);
            if (swb < 9 || swb > 15) return 0;   /* 8: zlib's raw deflate cannot: decline */
        } else if (strcasecmp(p, "client_max_window_bits") == 0) {
            if (v && (atoi(v) < 8 || atoi(v) > 15)) return 0;
        } else {
            return 0;
        }
    }
    c->pmd = 1;
    c->s_wbits = swb ? swb : 15;
    c->s_nocontext = snct;
    snprintf(c->ext, sizeof c->ext, "permessage-deflate%s%s", snct ? "; server_no_context_takeover" : "",
             cnct ? "; client_no_context_takeover" : "");
    if (swb) {
        size_t l = strlen(c->ext);
        snprintf(c->ext + l, sizeof c->ext - l, "; server_max_window_bits=%d", swb);
    }
    return 1;
}

static void negotiate(conn *c)
{
    char copy[sizeof c->offer];
    memcpy(copy, c->offer, sizeof copy);
    char *save;
    for (char *el = strtok_r(copy, ",", &save); el; el = strtok_r(NULL, ",", &save)) {
        char one[sizeof copy];
        snprintf(one, sizeof one, "%s", el);
        if (take_offer(c, one)) return;
    }
}

static void msg_append(conn *c, const void *p, size_t n)
{
    if (c->msgcap - c->msglen < n) {
        size_t cap = c->msgcap ? c->msgcap : 1024;
        while (cap - c->msglen < n) cap *= 2;
        c->msg = realloc(c->msg, cap);
        if (!c->msg) die("realloc");
        c->msgcap = cap;
    }
    memcpy(c->msg + c->msglen, p, n);
    c->msglen += n;
}

/* Inflate p[0..n) onto c->msg with the client's stream (a 32 KiB window: any client window). */
static int inflate_into(conn *c, const unsigned char *p, size_t n)
{
    if (!c->inf) {
        c->inf = calloc(1, sizeof *c->inf);
        if (!c->inf || inflateInit2(c->inf, -15) != Z_OK) die("inflateInit2");
    }
    z_stream *z = c->inf;
    z->next_in = (Bytef *)p;
    z->avail_in = (uInt)n;
    for (;;) {
        if (c->msgcap - c->msglen < 4096) {
            size_t cap = c->msgcap ? c->msgcap * 2 : 4096;
            c->msg = realloc(c->msg, cap);
            if (!c->msg) die("realloc");
            c->msgcap = cap;
        }
        z->next_out = (Bytef *)c->msg + c->msglen;
        z->avail_out = (uInt)(c->msgcap - c->msglen);
        int r = inflate(z, Z_SYNC_FLUSH);
        c->msglen = c->msgcap - z->avail_out;
        if (r == Z_STREAM_END) { inflateReset(z); if (!z->avail_in) return 0; continue; }
        if (r != Z_OK && r != Z_BUF_ERROR) return -1;
        if (z->avail_out != 0 && (z->avail_in == 0 || r == Z_BUF_ERROR)) return 0;
    }
}

static void drop_inflater(conn *c)
{
    if (c->inf) { inflateEnd(c->inf); free(c->inf); c->inf = NULL; }
}

static int message_done(conn *c)
{
    if (c->zmsg) c->zmsgs++;
    if (c->mode == M_ZIDLE) {
        int good = c->msglen == big_len && memcmp(c->msg, big, big_len) == 0;
        if (!good) c->bad++;
        static const unsigned char ok[4] = {0x81, 2, 'o', 'k'}, bad[5] = {0x81, 3, 'b', 'a', 'd'};
        out_append(c, good ? ok : bad, good ? sizeof ok : sizeof bad);
        drop_inflater(c);   /* one message only: 10,000 idle connections keep no zlib state */
        free(c->msg);
        c->msg = NULL;
        c->msglen = c->msgcap = 0;
        c->mode = M_IDLE;
        return 0;
    }
    c->sink_got++;
    if (c->check_json && (c->msglen != JSON_SIZE || memcmp(c->msg, jline(c->sink_got - 1), JSON_SIZE) != 0))
        c->bad++;
    if (c->sink_got == c->sink_n) {
        static const unsigned char done[6] = {0x81, 4, 'd', 'o', 'n', 'e'};
        out_append(c, done, sizeof done);
    }
    return 0;
}

/* A data frame of a sink that looks at its messages (JSON check, compression) or of /zidle:
 * payload already unmasked. Returns -1 on a protocol or DEFLATE error. */
static int message_part(conn *c, int op, int rsv1, int fin, const unsigned char *p, size_t n)
{
    static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
    if (op != 0) { c->zmsg = rsv1 != 0; c->msglen = 0; }
    else if (rsv1) return -1;
    if (c->zmsg && !c->pmd) return -1;
    if (c->zmsg) {
        if (inflate_into(c, p, n) < 0) return -1;
        if (fin && inflate_into(c, tail, sizeof tail) < 0) return -1;
    } else {
        msg_append(c, p, n);
    }
    return fin ? message_done(c) : 0;
}

static void write_stats(conn *c)
{
    if (!stats || !c->tag[0]) return;
    uint64_t msgs = c->flood_total ? c->sink_n : c->sink_got;
    fprintf(stats, "tag=%s in=%llu out=%llu msgs=%llu zmsgs=%llu bad=%llu ext=\"%s\" offer=\"%s\"\n", c->tag,
            (unsigned long long)c->rbytes, (unsigned long long)c->wbytes, (unsigned long long)msgs,
            (unsigned long long)(c->flood_total && c->pmd ? c->sink_n : c->zmsgs), (unsigned long long)c->bad,
            c->ext, c->offer);
    fflush(stats);
}
