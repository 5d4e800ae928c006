/* test_tls_ctx: the TLS context cache follows its files (a stat per use, a
 * new context only when the contents changed) and frees a replaced context
 * with its last user. Certificates from spec/servers/tls_certs.sh. */
#include "mwtest.h"
#include "mwtest_certs.h"
#include "../../src/tls_ctx.h"
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[64], certs[128];

static char *p(const char *name)
{
    static char buf[4][256];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static char *slurp(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", certs, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[8][8192];
    static int i;
    i = (i + 1) % 8;
    *len = fread(buf[i], 1, sizeof buf[i], f);
    fclose(f);
    return buf[i];
}

static void write_at(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f) { fwrite(data, 1, len, f); fclose(f); }
}

/* Writes a file of certs() (NULL: garbage) at path, renamed over it or in
 * place. Times with 0 ns (one file in a few hundred where the clock ticks in
 * milliseconds) look like a whole-second filesystem, which the cache trusts
 * only after 2 s: such a write (of the file or its directory) is done again. */
static void put(const char *path, const char *cert, int in_place)
{
    size_t len = 17;
    const char *data = cert ? slurp(cert, &len) : "not a certificate";
    for (int tries = 0; tries < 10; tries++) {
        if (in_place) {
            write_at(path, data, len);
        } else {
            char tmp[300];
            snprintf(tmp, sizeof tmp, "%s.new", path);
            write_at(tmp, data, len);
            rename(tmp, path);
        }
        char parent[256];
        snprintf(parent, sizeof parent, "%s", path);
        *strrchr(parent, '/') = 0;
        struct stat s, d;
        if (stat(path, &s) != 0 || stat(parent, &d) != 0) return;
        if ((s.st_mtim.tv_nsec || s.st_ctim.tv_nsec) && (d.st_mtim.tv_nsec || d.st_ctim.tv_nsec)) return;
        struct timespec t = { 0, 5 * 1000 * 1000 };
        nanosleep(&t, NULL);
    }
}

static ino_t ino(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0 ? s.st_ino : 0;
}

/* The cache does not trust a stamp younger than 20 ms (a change within the
 * same clock tick keeps it): age the files so that only the stat decides. */
static void age(void)
{
    struct timespec t = { 0, 40 * 1000 * 1000 };
    nanosleep(&t, NULL);
}

static char err[1024];

static mw_tls_ctx *get_ca(const char *cafile, const char *capath)
{
    mw_tls_ctx_opts o = { 1, cafile, capath, NULL, NULL };
    err[0] = 0;
    return mw_tls_ctx_get(&o, err, sizeof err);
}

static void test_unchanged_files_cost_a_stat(void)
{
    put(p("a.pem"), "ca.pem", 0);
    age();
    mw_tls_ctx *t1 = get_ca(p("a.pem"), NULL);
    MW_CHECK(t1 != NULL);
    long reads = mw_tls_ctx_reads();
    mw_tls_ctx *t2 = get_ca(p("a.pem"), NULL);
    MW_CHECK(t2 == t1);
    MW_CHECK_EQ_INT(mw_tls_ctx_reads(), reads);
    mw_tls_ctx_release(t1);
    mw_tls_ctx_release(t2);
}

static void test_recent_files_are_read_again_same_context(void)
{
    put(p("b.pem"), "ca.pem", 0);
    mw_tls_ctx *t1 = get_ca(p("b.pem"), NULL);
    long reads = mw_tls_ctx_reads();
    mw_tls_ctx *t2 = get_ca(p("b.pem"), NULL); /* within 20 ms of the write */
    MW_CHECK(t2 == t1);
    MW_CHECK_EQ_INT(mw_tls_ctx_reads(), reads + 1);
    mw_tls_ctx_release(t1);
    mw_tls_ctx_release(t2);
}

static void test_rotation_frees_the_old_context_with_its_last_user(void)
{
    put(p("c.pem"), "ca.pem", 0);
    age();
    mw_tls_ctx *t1 = get_ca(p("c.pem"), NULL); /* a connection holds it */
    int live = mw_tls_ctx_live();
    ino_t before = ino(p("c.pem"));
    put(p("c.pem"), "rogue-ca.pem", 0);
    MW_CHECK(ino(p("c.pem")) != before);
    mw_tls_ctx *t2 = get_ca(p("c.pem"), NULL);
    MW_CHECK(t2 != NULL && t2 != t1);
    MW_CHECK(mw_tls_ctx_id(t2) != mw_tls_ctx_id(t1));
    MW_CHECK_EQ_INT(mw_tls_ctx_live(), live + 1);
    mw_tls_ctx_release(t2);
    MW_CHECK_EQ_INT(mw_tls_ctx_live(), live + 1); /* t2 stays cached */
    mw_tls_ctx_release(t1);
    MW_CHECK_EQ_INT(mw_tls_ctx_live(), live);     /* t1's last user is gone */
}

static void test_rewrite_in_place(void)
{
    put(p("d.pem"), "ca.pem", 0);
    age();
    mw_tls_ctx *t1 = get_ca(p("d.pem"), NULL);
    uint64_t id1 = mw_tls_ctx_id(t1);
    mw_tls_ctx_release(t1);
    ino_t before = ino(p("d.pem"));
    put(p("d.pem"), "rogue-ca.pem", 1);
    MW_CHECK(ino(p("d.pem")) == before);
    mw_tls_ctx *t2 = get_ca(p("d.pem"), NULL);
    MW_CHECK(t2 != NULL && mw_tls_ctx_id(t2) != id1);
    mw_tls_ctx_release(t2);
}

static void test_same_bytes_keep_the_context(void)
{
    put(p("e.pem"), "ca.pem", 0);
    age();
    mw_tls_ctx *t1 = get_ca(p("e.pem"), NULL);
    long reads = mw_tls_ctx_reads();
    put(p("e.pem"), "ca.pem", 0); /* a new inode, the same bytes */
    mw_tls_ctx *t2 = get_ca(p("e.pem"), NULL);
    MW_CHECK(t2 == t1);
    MW_CHECK_EQ_INT(mw_tls_ctx_reads(), reads + 1);
    mw_tls_ctx_release(t1);
    mw_tls_ctx_release(t2);
}

static void test_missing_or_broken_files_in_words(void)
{
    char want[1024];
    put(p("f.pem"), "ca.pem", 0);
    mw_tls_ctx *t1 = get_ca(p("f.pem"), NULL);
    uint64_t id1 = mw_tls_ctx_id(t1);
    mw_tls_ctx_release(t1);
    unlink(p("f.pem"));
    MW_CHECK(get_ca(p("f.pem"), NULL) == NULL);
    snprintf(want, sizeof want, "cannot load CA certificates from %s (ssl.cafile): No such file or directory",
             p("f.pem"));
    MW_CHECK(strcmp(err, want) == 0);
    put(p("f.pem"), NULL, 0);
    MW_CHECK(get_ca(p("f.pem"), NULL) == NULL);
    snprintf(want, sizeof want, "cannot load CA certificates from %s (ssl.cafile): no PEM certificate in it",
             p("f.pem"));
    MW_CHECK(strcmp(err, want) == 0);
    MW_CHECK(get_ca(dir, NULL) == NULL);
    snprintf(want, sizeof want, "cannot load CA certificates from %s (ssl.cafile): not a regular file", dir);
    MW_CHECK(strcmp(err, want) == 0);
    put(p("f.pem"), "ca.pem", 0); /* back as it was: the cached context again */
    mw_tls_ctx *t2 = get_ca(p("f.pem"), NULL);
    MW_CHECK(t2 != NULL && mw_tls_ctx_id(t2) == id1);
    mw_tls_ctx_release(t2);
    if (!t2) fprintf(stderr, "  %s\n", err);
}

static void test_capath_file_rewritten_in_place(void)
{
    char d[256];
    snprintf(d, sizeof d, "%s", p("cas"));
    mkdir(d, 0755);
    char f[300];
    snprintf(f, sizeof f, "%s/x.pem", d);
    put(f, "ca.pem", 0);
    age();
    mw_tls_ctx *t1 = get_ca(NULL, d);
    MW_CHECK(t1 != NULL);
    long reads = mw_tls_ctx_reads();
    mw_tls_ctx *t2 = get_ca(NULL, d);
    MW_CHECK(t2 == t1);
    MW_CHECK_EQ_INT(mw_tls_ctx_reads(), reads);
    mw_tls_ctx_release(t2);
    put(f, "rogue-ca.pem", 1); /* the directory's own stat does not move */
    t2 = get_ca(NULL, d);
    MW_CHECK(t2 != NULL && t2 != t1);
    mw_tls_ctx_release(t1);
    mw_tls_ctx_release(t2);
    unlink(f);
    MW_CHECK(get_ca(NULL, d) == NULL);
    char want[1024];
    snprintf(want, sizeof want, "cannot load CA certificates from %s (ssl.capath): no readable file in it", d);
    MW_CHECK(strcmp(err, want) == 0);
    rmdir(d);
}

static void test_client_certificate_renewal(void)
{
    put(p("me.pem"), "client.pem", 0);
    put(p("me.key"), "client.key", 0);
    age();
    char pem[256], key[256];
    snprintf(pem, sizeof pem, "%s", p("me.pem"));
    snprintf(key, sizeof key, "%s", p("me.key"));
    mw_tls_ctx_opts o = { 0, NULL, NULL, pem, key };
    mw_tls_ctx *t1 = mw_tls_ctx_get(&o, err, sizeof err);
    MW_CHECK(t1 != NULL);
    put(p("me.pem"), "client2.pem", 0);
    put(p("me.key"), "client2.key", 0);
    mw_tls_ctx *t2 = mw_tls_ctx_get(&o, err, sizeof err);
    MW_CHECK(t2 != NULL && t2 != t1);
    mw_tls_ctx_release(t1);
    mw_tls_ctx_release(t2);
    unlink(key);
    MW_CHECK(mw_tls_ctx_get(&o, err, sizeof err) == NULL);
    char want[1024];
    snprintf(want, sizeof want, "cannot load the client key %s (ssl.local_pk): No such file or directory", key);
    MW_CHECK(strcmp(err, want) == 0);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/mw-tls-ctx-XXXXXX");
    if (mwt_make_certs(dir, certs, sizeof certs, __FILE__) != 0) return 1;

    MW_RUN(test_unchanged_files_cost_a_stat);
    MW_RUN(test_recent_files_are_read_again_same_context);
    MW_RUN(test_rotation_frees_the_old_context_with_its_last_user);
    MW_RUN(test_rewrite_in_place);
    MW_RUN(test_same_bytes_keep_the_context);
    MW_RUN(test_missing_or_broken_files_in_words);
    MW_RUN(test_capath_file_rewritten_in_place);
    MW_RUN(test_client_certificate_renewal);

    mw_tls_ctx_shutdown(); /* nothing holds a context now: all are freed */
    mwt_cur_failed = 0;
    MW_CHECK_EQ_INT(mw_tls_ctx_live(), 0);
    if (mwt_cur_failed) mwt_failed++;

    mwt_remove_dir(dir);
    return MW_DONE();
}
