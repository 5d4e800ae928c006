/* tls_ctx: wolfSSL client contexts cached per option set, checked against the
 * identity of their files at each handshake, reference counted. Knows no
 * connection, socket, loop or Lua. */
#include "tls_ctx.h"
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A bot runs for weeks while its CA bundle is rotated and its client
 * certificate renewed, so a cached context is only used while the files it
 * was made from are still the ones on disk: before each handshake every file
 * is stat()ed (a few microseconds) and compared with what it was when read.
 * When something differs the files are read again, and only when their
 * contents differ is a new context made; the old one serves the connections
 * that still use it and is freed with the last of them.
 *
 * The system CA store (used when neither cafile nor capath is set) is loaded
 * once per process: it is ~300 files, and checking each per handshake would
 * cost ~0.6 ms, a good part of the handshake itself; a context that also has
 * a client certificate loads it again when that certificate changes. A bot
 * that must follow ca-certificates updates sets cafile to the bundle
 * (/etc/ssl/certs/ca-certificates.crt): one stat per handshake. */

enum { SRC_CAFILE, SRC_CAPATH, SRC_CERT, SRC_KEY, SRC_MAX };

static const char *const src_what[SRC_MAX] = {
    "CA certificates from", "CA certificates from", "the client certificate", "the client key",
};
static const char *const src_opt[SRC_MAX] = {
    "ssl.cafile", "ssl.capath", "ssl.local_cert", "ssl.local_pk",
};

/* What identifies a version of a file: a rename puts another inode in its
 * place, a rewrite in place moves its times (ctime cannot be set back). */
typedef struct stamp {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim, ctim;
} stamp;

typedef struct src {
    int kind;
    char *path;          /* owned in a context, borrowed while loading */
    stamp id;            /* the file, or capath's directory */
    uint64_t files;      /* capath: its files' names and stamps, folded */
} src;

struct mw_tls_ctx {
    mw_tls_ctx *next;
    char *key;
    WOLFSSL_CTX *ctx;
    int refs;            /* one while cached, one per user */
    uint64_t id;
    int settled;         /* no stamp was too recent to vouch for its contents */
    int nsrc;
    src src[SRC_MAX];
    unsigned char digest[WC_SHA256_DIGEST_SIZE]; /* of every content read */
};

static mw_tls_ctx *g_ctxs;
static int g_inited, g_live;
static long g_reads;
static uint64_t g_next_id = 1;

/* Files a context is read from, as read for a handshake. */
typedef struct blob {
    unsigned char *data;
    size_t len;
} blob;

typedef struct load {
    int nsrc;
    src src[SRC_MAX];
    blob file[SRC_MAX];  /* cafile, local_cert, local_pk contents by kind */
    blob *dir;           /* capath's regular files that could be read */
    size_t ndir, dircap;
    int settled;
    struct timespec now;
    wc_Sha256 sha;
} load;

enum { E_NOT_REGULAR = -1, E_TOO_BIG = -2 };
#define MAX_FILE (16u << 20)

static const char *cause(int e)
{
    if (e == E_NOT_REGULAR) return "not a regular file";
    if (e == E_TOO_BIG) return "larger than 16 MiB";
    return strerror(e);
}

/* ---- stamps ---- */

static void stamp_of(const struct stat *s, stamp *o)
{
    o->dev = s->st_dev;
    o->ino = s->st_ino;
    o->size = s->st_size;
    o->mtim = s->st_mtim;
    o->ctim = s->st_ctim;
}

static int ts_eq(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static int stamp_eq(const stamp *a, const stamp *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           ts_eq(&a->mtim, &b->mtim) && ts_eq(&a->ctim, &b->ctim);
}

/* A file changed again within the timestamp tick in which it was read keeps
 * its stamp, so a stamp that recent vouches for nothing (git's "racy" rule):
 * the context is read again at the next handshake, until its files have aged.
 * The kernel stamps files from a clock that ticks every 1-10 ms; filesystems
 * keeping whole seconds (both nanosecond fields 0) need 2 s. */
static int recent(const stamp *s, const struct timespec *now)
{
    const struct timespec *t = s->ctim.tv_sec > s->mtim.tv_sec ||
        (s->ctim.tv_sec == s->mtim.tv_sec && s->ctim.tv_nsec > s->mtim.tv_nsec) ? &s->ctim : &s->mtim;
    long long margin = s->mtim.tv_nsec == 0 && s->ctim.tv_nsec == 0 ? 2000000000LL : 20000000LL;
    long long age = (long long)(now->tv_sec - t->tv_sec) * 1000000000LL + (now->tv_nsec - t->tv_nsec);
    return age < margin;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n--) { h ^= *b++; h *= 0x100000001b3ULL; }
    return h;
}

static uint64_t fold_stamp(uint64_t h, const stamp *s)
{
    long long f[7] = { (long long)s->dev, (long long)s->ino, (long long)s->size,
                       (long long)s->mtim.tv_sec, s->mtim.tv_nsec, (long long)s->ctim.tv_sec, s->ctim.tv_nsec };
    return fnv(h, f, sizeof f);
}

/* ---- reading ---- */

static void digest_add(load *ld, const void *p, size_t n)
{
    wc_Sha256Update(&ld->sha, p, (word32)n);
}

static void digest_blob(load *ld, int tag, const char *name, const blob *b, int err)
{
    uint64_t len = b ? b->len : 0;
    unsigned char t = (unsigned char)tag;
    digest_add(ld, &t, 1);
    if (name) digest_add(ld, name, strlen(name) + 1);
    digest_add(ld, &err, sizeof err);
    digest_add(ld, &len, sizeof len);
    if (b && b->len) digest_add(ld, b->data, b->len);
}

static void blob_free(blob *b, int secret)
{
    if (b->data && secret) explicit_bzero(b->data, b->len);
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

/* Reads the regular file path (at most MAX_FILE) into b and its identity,
 * as opened, into id. Returns 0, an errno, or E_NOT_REGULAR / E_TOO_BIG. */
static int read_file(const char *path, blob *b, stamp *id)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK); /* a FIFO must not block */
    if (fd < 0) return errno;
    struct stat s;
    int e = 0;
    if (fstat(fd, &s) != 0) e = errno;
    else if (!S_ISREG(s.st_mode)) e = E_NOT_REGULAR;
    else if ((unsigned long long)s.st_size > MAX_FILE) e = E_TOO_BIG;
    size_t cap = e ? 0 : (size_t)s.st_size + 1, len = 0;
    unsigned char *data = e ? NULL : malloc(cap);
    if (!e && !data) e = ENOMEM;
    while (!e) {
        if (len == cap) { /* it grew since fstat */
            if (cap > MAX_FILE) { e = E_TOO_BIG; break; }
            size_t nc = cap * 2 > MAX_FILE + 1 ? MAX_FILE + 1 : cap * 2;
            unsigned char *p = realloc(data, nc);
            if (!p) { e = ENOMEM; break; }
            data = p;
            cap = nc;
        }
        ssize_t n = read(fd, data + len, cap - len);
        if (n == 0) break;
        if (n < 0) { if (errno != EINTR) e = errno; continue; }
        len += (size_t)n;
    }
    close(fd);
    if (e) { free(data); return e; }
    stamp_of(&s, id);
    b->data = data;
    b->len = len;
    return 0;
}

/* Folds capath's entries (symbolic links followed; regular files only, as
 * wolfSSL's own directory loader takes them) into *fold; with ld, also reads
 * each regular file into ld->dir and the digest. Returns 0 or an errno. */
static int walk_dir(const char *dir, uint64_t *fold, load *ld)
{
    DIR *d = opendir(dir);
    if (!d) return errno;
    uint64_t h = 0xcbf29ce484222325ULL;
    char path[4096];
    struct dirent *de;
    int e = 0;
    while (!e && (errno = 0, de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= sizeof path) continue;
        struct stat s;
        stamp id;
        h = fnv(h, de->d_name, strlen(de->d_name) + 1);
        if (stat(path, &s) != 0) {
            int se = errno;
            h = fnv(h, &se, sizeof se);
            continue;
        }
        if (!S_ISREG(s.st_mode)) continue;
        stamp_of(&s, &id);
        h = fold_stamp(h, &id);
        if (!ld) continue;
        if (recent(&id, &ld->now)) ld->settled = 0;
        blob b = { NULL, 0 };
        stamp opened;
        int re = read_file(path, &b, &opened);
        /* a file that cannot be read is skipped, as wolfSSL's loader does */
        digest_blob(ld, SRC_CAPATH, de->d_name, re ? NULL : &b, re);
        if (re) continue;
        if (ld->ndir == ld->dircap) {
            size_t nc = ld->dircap ? ld->dircap * 2 : 16;
            blob *p = realloc(ld->dir, nc * sizeof *p);
            if (!p) { blob_free(&b, 0); e = ENOMEM; break; }
            ld->dir = p;
            ld->dircap = nc;
        }
        ld->dir[ld->ndir++] = b;
    }
    if (!e && errno) e = errno;
    closedir(d);
    *fold = h;
    return e;
}

static void load_free(load *ld)
{
    for (int k = 0; k < SRC_MAX; k++) blob_free(&ld->file[k], k == SRC_KEY || k == SRC_CERT);
    for (size_t i = 0; i < ld->ndir; i++) blob_free(&ld->dir[i], 0);
    free(ld->dir);
    wc_Sha256Free(&ld->sha);
}

static void load_error(int kind, const char *path, const char *why, char *err, size_t cap)
{
    snprintf(err, cap, "cannot load %s %s (%s): %s", src_what[kind], path, src_opt[kind], why);
}

/* Reads every file o is made of into ld (initialised here), with stamps taken
 * before or as the contents were read. Returns 0, or -1 with err set. */
static int load_sources(const mw_tls_ctx_opts *o, load *ld, unsigned char *digest, char *err, size_t cap)
{
    memset(ld, 0, sizeof *ld);
    ld->settled = 1;
    g_reads++;
    clock_gettime(CLOCK_REALTIME, &ld->now);
    if (wc_InitSha256(&ld->sha) != 0) { snprintf(err, cap, "cannot initialise SHA-256"); return -1; }
    const char *paths[SRC_MAX] = {
        o->verify_peer ? o->cafile : NULL, o->verify_peer ? o->capath : NULL, o->local_cert, o->local_pk,
    };
    for (int k = 0; k < SRC_MAX; k++) {
        if (!paths[k]) continue;
        src *s = &ld->src[ld->nsrc++];
        s->kind = k;
        s->path = (char *)paths[k];
        int e;
        if (k == SRC_CAPATH) {
            struct stat st;
            e = stat(paths[k], &st) != 0 ? errno : 0;
            if (!e) stamp_of(&st, &s->id);
            if (!e) e = walk_dir(paths[k], &s->files, ld);
        } else {
            e = read_file(paths[k], &ld->file[k], &s->id);
            if (!e) digest_blob(ld, k, NULL, &ld->file[k], 0);
        }
        if (e) { load_error(k, paths[k], cause(e), err, cap); return -1; }
        if (recent(&s->id, &ld->now)) ld->settled = 0;
    }
    if (wc_Sha256Final(&ld->sha, digest) != 0) { snprintf(err, cap, "SHA-256 failed"); return -1; }
    return 0;
}

/* ---- making a context ---- */

/* Why wolfSSL refused the PEM contents of a file, in words. */
static void pem_error(int kind, const char *path, int r, size_t len, char *err, size_t cap)
{
    char s[WOLFSSL_MAX_ERROR_SZ];
    const char *why = s;
    if (len == 0) why = "the file is empty";
    else if (r == ASN_NO_PEM_HEADER) why = kind == SRC_KEY ? "no PEM private key in it" : "no PEM certificate in it";
    else if (r == WOLFSSL_FAILURE || r == 0) why = "not a valid PEM file";
    else wolfSSL_ERR_error_string_n((unsigned long)r, s, sizeof s);
    load_error(kind, path, why, err, cap);
}

static int init_wolfssl(char *err, size_t cap)
{
    if (g_inited) return 0;
    if (wolfSSL_Init() != WOLFSSL_SUCCESS) { snprintf(err, cap, "cannot initialise wolfSSL"); return -1; }
    g_inited = 1;
    atexit(mw_tls_ctx_shutdown);
    return 0;
}

static WOLFSSL_CTX *build(const mw_tls_ctx_opts *o, load *ld, char *err, size_t cap)
{
    WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfSSLv23_client_method());
    if (!ctx) { snprintf(err, cap, "cannot create a TLS context (out of memory)"); return NULL; }
    wolfSSL_CTX_SetMinVersion(ctx, WOLFSSL_TLSV1_2);
    /* Each wolfSSL_write then sends one record and reports it only once it
     * is on the socket, so conn's byte accounting and backpressure see what
     * the kernel took, as with plain TCP. */
    wolfSSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
#if !defined(WOLFSSL_AESNI) && defined(HAVE_CHACHA) && defined(HAVE_POLY1305)
    /* Without AES-NI (Debian's wolfSSL) software AES-GCM runs at ~0.2 GB/s
     * and ChaCha20-Poly1305 about 2.6x faster: offer it first. A server
     * still picks by its own preference when it has one. */
    wolfSSL_CTX_set_cipher_list(ctx,
        "TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:"
        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
        "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384");
#endif
    if (o->verify_peer) {
        blob *f = &ld->file[SRC_CAFILE];
        if (o->cafile) {
            int r = wolfSSL_CTX_load_verify_buffer_ex(ctx, f->data, (long)f->len, WOLFSSL_FILETYPE_PEM, 0,
                                                      WOLFSSL_LOAD_VERIFY_DEFAULT_FLAGS);
            if (r != WOLFSSL_SUCCESS) { pem_error(SRC_CAFILE, o->cafile, r, f->len, err, cap); goto fail; }
        }
        if (o->capath) {
            /* as wolfSSL's directory loader: files that are no PEM
             * certificates are skipped; none at all is an error */
            size_t ok = 0;
            for (size_t i = 0; i < ld->ndir; i++)
                ok += wolfSSL_CTX_load_verify_buffer_ex(ctx, ld->dir[i].data, (long)ld->dir[i].len,
                                                        WOLFSSL_FILETYPE_PEM, 0,
                                                        WOLFSSL_LOAD_VERIFY_DEFAULT_FLAGS) == WOLFSSL_SUCCESS;
            if (!ok) {
                load_error(SRC_CAPATH, o->capath, ld->ndir ? "no PEM certificate in any of its files"
                                                           : "no readable file in it", err, cap);
                goto fail;
            }
        }
        if (!o->cafile && !o->capath && wolfSSL_CTX_load_system_CA_certs(ctx) != WOLFSSL_SUCCESS) {
            snprintf(err, cap, "no system CA certificates found (install ca-certificates, or set ssl.cafile)");
            goto fail;
        }
    }
    if (o->local_cert) {
        blob *c = &ld->file[SRC_CERT], *k = o->local_pk ? &ld->file[SRC_KEY] : c;
        int r = wolfSSL_CTX_use_certificate_chain_buffer(ctx, c->data, (long)c->len);
        if (r != WOLFSSL_SUCCESS) { pem_error(SRC_CERT, o->local_cert, r, c->len, err, cap); goto fail; }
        r = wolfSSL_CTX_use_PrivateKey_buffer(ctx, k->data, (long)k->len, WOLFSSL_FILETYPE_PEM);
        if (r != WOLFSSL_SUCCESS) {
            if (o->local_pk) pem_error(SRC_KEY, o->local_pk, r, k->len, err, cap);
            else snprintf(err, cap, "cannot load the client key from %s (ssl.local_cert; ssl.local_pk is not set): %s",
                          o->local_cert, r == ASN_NO_PEM_HEADER ? "no PEM private key in it" : "not a valid PEM key");
            goto fail;
        }
        if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS) {
            snprintf(err, cap, "the client key %s does not match the certificate %s",
                     o->local_pk ? o->local_pk : o->local_cert, o->local_cert);
            goto fail;
        }
    }
    wolfSSL_ERR_clear_error(); /* what parsing queued; the result says it all */
    return ctx;
fail:
    wolfSSL_ERR_clear_error();
    wolfSSL_CTX_free(ctx);
    return NULL;
}

/* ---- the cache ---- */

static void ctx_free(mw_tls_ctx *t)
{
    wolfSSL_CTX_free(t->ctx);
    for (int i = 0; i < t->nsrc; i++) free(t->src[i].path);
    free(t->key);
    free(t);
    g_live--;
}

void mw_tls_ctx_release(mw_tls_ctx *t)
{
    if (t && --t->refs == 0) ctx_free(t);
}

/* Takes t out of the cache: new handshakes no longer find it. */
static void detach(mw_tls_ctx *t)
{
    for (mw_tls_ctx **p = &g_ctxs; *p; p = &(*p)->next)
        if (*p == t) { *p = t->next; break; }
    t->next = NULL;
    mw_tls_ctx_release(t);
}

void mw_tls_ctx_shutdown(void)
{
    while (g_ctxs) detach(g_ctxs);
    /* a context still in use (a connection not freed before exit) keeps
     * wolfSSL's globals too */
    if (g_inited && g_live == 0) {
        wolfSSL_Cleanup();
        g_inited = 0;
    }
}

/* Is every file t was made from still the one that was read? */
static int current(const mw_tls_ctx *t)
{
    if (!t->settled) return 0;
    for (int i = 0; i < t->nsrc; i++) {
        const src *s = &t->src[i];
        struct stat st;
        stamp now;
        if (stat(s->path, &st) != 0) return 0;
        stamp_of(&st, &now);
        if (!stamp_eq(&now, &s->id)) return 0;
        uint64_t files;
        if (s->kind == SRC_CAPATH && (walk_dir(s->path, &files, NULL) != 0 || files != s->files)) return 0;
    }
    return 1;
}

static void restamp(mw_tls_ctx *t, const load *ld)
{
    for (int i = 0; i < t->nsrc && i < ld->nsrc; i++) {
        t->src[i].id = ld->src[i].id;
        t->src[i].files = ld->src[i].files;
    }
    t->settled = ld->settled;
}

static void key_add(char *buf, size_t cap, size_t *len, const char *s)
{
    /* \x1f separates fields; \x1e stands for "not set" */
    int n = snprintf(buf + *len, cap - *len, "%s\x1f", s ? s : "\x1e");
    if (n > 0) *len += (size_t)n < cap - *len ? (size_t)n : cap - *len - 1;
}

mw_tls_ctx *mw_tls_ctx_get(const mw_tls_ctx_opts *o, char *err, size_t errcap)
{
    if (o->local_pk && !o->local_cert) {
        snprintf(err, errcap, "ssl.local_pk is set without ssl.local_cert");
        return NULL;
    }
    char key[4 * 4096 + 16];
    size_t kl = 0;
    key_add(key, sizeof key, &kl, o->verify_peer ? "v" : "n");
    key_add(key, sizeof key, &kl, o->cafile);
    key_add(key, sizeof key, &kl, o->capath);
    key_add(key, sizeof key, &kl, o->local_cert);
    key_add(key, sizeof key, &kl, o->local_pk);
    mw_tls_ctx *old = g_ctxs;
    while (old && strcmp(old->key, key) != 0) old = old->next;
    if (old && current(old)) { old->refs++; return old; }

    if (init_wolfssl(err, errcap) != 0) return NULL;
    load ld;
    unsigned char digest[WC_SHA256_DIGEST_SIZE];
    if (load_sources(o, &ld, digest, err, errcap) != 0) { load_free(&ld); return NULL; }
    if (old && memcmp(old->digest, digest, sizeof digest) == 0) {
        /* touched, copied over with the same bytes, or just too recent */
        restamp(old, &ld);
        load_free(&ld);
        old->refs++;
        return old;
    }
    WOLFSSL_CTX *ctx = build(o, &ld, err, errcap);
    mw_tls_ctx *t = ctx ? calloc(1, sizeof *t) : NULL;
    int ok = t && (t->key = strdup(key)) != NULL;
    for (int i = 0; ok && i < ld.nsrc; i++) {
        t->src[i] = ld.src[i];
        ok = (t->src[i].path = strdup(ld.src[i].path)) != NULL;
        t->nsrc = i + 1;
    }
    load_free(&ld);
    if (!ok) {
        if (ctx) snprintf(err, errcap, "out of memory");
        if (t) {
            for (int i = 0; i < t->nsrc; i++) free(t->src[i].path);
            free(t->key);
            free(t);
        }
        if (ctx) wolfSSL_CTX_free(ctx);
        return NULL;
    }
    t->ctx = ctx;
    t->id = g_next_id++;
    t->settled = ld.settled;
    memcpy(t->digest, digest, sizeof digest);
    t->refs = 2; /* the cache's and the caller's */
    g_live++;
    if (old) detach(old); /* freed when its last connection closes */
    t->next = g_ctxs;
    g_ctxs = t;
    return t;
}

WOLFSSL_CTX *mw_tls_ctx_ssl(const mw_tls_ctx *t) { return t->ctx; }
uint64_t mw_tls_ctx_id(const mw_tls_ctx *t) { return t->id; }
int mw_tls_ctx_live(void) { return g_live; }
long mw_tls_ctx_reads(void) { return g_reads; }
