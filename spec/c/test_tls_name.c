/* test_tls_name: the certificate identity check (RFC 9525): DNS names and
 * their wildcards, IP literals in any textual form against iPAddress SANs
 * only, the CN only when there is no subjectAltName. Certificates from
 * spec/servers/tls_certs.sh. */
#include "mwtest.h"
#include "mwtest_certs.h"
#include "../../src/tls_name.h"
#include <stdlib.h>
#include <unistd.h>

static char dir[64], certs[128];

static int dns(const char *p, const char *ref) { return mw_tls_dns_match(p, strlen(p), ref, strlen(ref)); }

static void test_dns_names_and_wildcards(void)
{
    MW_CHECK(dns("example.com", "example.com"));
    MW_CHECK(dns("EXAMPLE.com", "example.COM"));
    MW_CHECK(dns("example.com.", "example.com"));
    MW_CHECK(dns("example.com", "example.com."));
    MW_CHECK(!dns("example.com", "www.example.com"));
    MW_CHECK(!dns("www.example.com", "example.com"));
    MW_CHECK(!dns("example.co", "example.com"));
    MW_CHECK(!dns("", "example.com"));
    MW_CHECK(!dns("example.com", ""));
    /* the wildcard: the whole leftmost label, one non-empty label */
    MW_CHECK(dns("*.example.com", "www.example.com"));
    MW_CHECK(dns("*.EXAMPLE.com", "WWW.example.com"));
    MW_CHECK(dns("*.example.com", "xn--bcher-kva.example.com"));
    MW_CHECK(!dns("*.example.com", "example.com"));
    MW_CHECK(!dns("*.example.com", ".example.com"));
    MW_CHECK(!dns("*.example.com", "a.b.example.com"));
    MW_CHECK(!dns("*.example.com", "www.example.org"));
    /* no partial or inner wildcards, no wildcard over a top-level domain */
    MW_CHECK(!dns("w*.example.com", "www.example.com"));
    MW_CHECK(!dns("*w.example.com", "www.example.com"));
    MW_CHECK(!dns("www.*.com", "www.example.com"));
    MW_CHECK(!dns("*.*.com", "www.example.com"));
    MW_CHECK(!dns("*.com", "example.com"));
    MW_CHECK(!dns("*", "example"));
    MW_CHECK(!dns("*.", "example."));
    /* a '*' in the reference is no wildcard */
    MW_CHECK(!dns("*.example.com", "*.example.com"));
    /* an embedded NUL ends nothing */
    MW_CHECK(!mw_tls_dns_match("good.com\0.evil.com", 18, "good.com", 8));
    MW_CHECK(!mw_tls_dns_match("evil.com\0", 9, "evil.com", 8));
}

static void test_reference_kinds(void)
{
    static const unsigned char v6one[16] = { [15] = 1 };
    static const unsigned char v4[4] = { 127, 0, 0, 1 };
    const char *ones[] = { "::1", "[::1]", "0:0:0:0:0:0:0:1", "0000:0000:0000:0000:0000:0000:0000:0001",
                           "::0:1", "::1%lo", "[::1%25lo]" };
    for (size_t i = 0; i < sizeof ones / sizeof *ones; i++) {
        mw_tls_ref r;
        mw_tls_ref_parse(ones[i], &r);
        MW_CHECK_EQ_INT(r.kind, MW_REF_IPV6);
        MW_CHECK_MEM(r.ip, v6one, 16);
    }
    mw_tls_ref r;
    mw_tls_ref_parse("127.0.0.1", &r);
    MW_CHECK_EQ_INT(r.kind, MW_REF_IPV4);
    MW_CHECK_MEM(r.ip, v4, 4);
    mw_tls_ref_parse("localhost", &r);
    MW_CHECK_EQ_INT(r.kind, MW_REF_DNS);
    MW_CHECK(strcmp(r.name, "localhost") == 0 && r.len == 9);
    mw_tls_ref_parse("127.1", &r); /* not a dotted quad: a (strange) name */
    MW_CHECK_EQ_INT(r.kind, MW_REF_DNS);
    char big[400];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    mw_tls_ref_parse(big, &r);
    MW_CHECK_EQ_INT(r.len, 0); /* too long to check: matches nothing */
}

static WOLFSSL_X509 *cert(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s.pem", certs, name);
    WOLFSSL_X509 *x = wolfSSL_X509_load_certificate_file(path, WOLFSSL_FILETYPE_PEM);
    if (!x) fprintf(stderr, "cannot load %s\n", path);
    return x;
}

static int matches(const char *certname, const char *name)
{
    WOLFSSL_X509 *x = cert(certname);
    if (!x) return -1;
    mw_tls_ref r;
    mw_tls_ref_parse(name, &r);
    int m = mw_tls_cert_matches(x, &r);
    wolfSSL_X509_free(x);
    return m;
}

static void names(const char *certname, const char *name, char *buf, size_t cap)
{
    WOLFSSL_X509 *x = cert(certname);
    snprintf(buf, cap, "?");
    if (!x) return;
    mw_tls_ref r;
    mw_tls_ref_parse(name, &r);
    mw_tls_cert_names(x, &r, buf, cap);
    wolfSSL_X509_free(x);
}

static void test_certificates(void)
{
    /* server: DNS:localhost, IP:127.0.0.1, IP:::1 */
    MW_CHECK_EQ_INT(matches("server", "localhost"), 1);
    MW_CHECK_EQ_INT(matches("server", "LOCALHOST."), 1);
    MW_CHECK_EQ_INT(matches("server", "127.0.0.1"), 1);
    MW_CHECK_EQ_INT(matches("server", "::1"), 1);
    MW_CHECK_EQ_INT(matches("server", "127.0.0.2"), 0);
    MW_CHECK_EQ_INT(matches("server", "::2"), 0);
    MW_CHECK_EQ_INT(matches("server", "::ffff:127.0.0.1"), 0); /* 16 bytes, not 4 */
    /* IP:::1 in any textual form */
    MW_CHECK_EQ_INT(matches("ip6", "::1"), 1);
    MW_CHECK_EQ_INT(matches("ip6", "[::1]"), 1);
    MW_CHECK_EQ_INT(matches("ip6", "0:0:0:0:0:0:0:1"), 1);
    MW_CHECK_EQ_INT(matches("ip6", "::1%lo"), 1);
    MW_CHECK_EQ_INT(matches("ip6", "127.0.0.1"), 0);
    MW_CHECK_EQ_INT(matches("ip6", "localhost"), 0);
    /* an IP is matched by an iPAddress SAN only */
    MW_CHECK_EQ_INT(matches("dnsip", "127.0.0.1"), 0);
    MW_CHECK_EQ_INT(matches("wildip", "127.0.0.1"), 0);
    MW_CHECK_EQ_INT(matches("cnip", "127.0.0.1"), 0);
    /* the CN only without any SAN, and only for a DNS name */
    MW_CHECK_EQ_INT(matches("cnhost", "localhost"), 1);
    MW_CHECK_EQ_INT(matches("cnhost", "other.test"), 0);
    MW_CHECK_EQ_INT(matches("ipcn", "localhost"), 0);
    MW_CHECK_EQ_INT(matches("ipcn", "127.0.0.2"), 1);
    MW_CHECK_EQ_INT(matches("wild", "a.wild.test"), 1);
    MW_CHECK_EQ_INT(matches("wild", "wild.test"), 0);
    MW_CHECK_EQ_INT(matches("wild", "a.b.wild.test"), 0);

    char buf[300];
    names("server", "localhost", buf, sizeof buf); /* in wolfSSL's order (5.5: reversed) */
    MW_CHECK(strstr(buf, "localhost") && strstr(buf, "127.0.0.1") && strstr(buf, "::1") && strlen(buf) == 25);
    names("dnsip", "127.0.0.1", buf, sizeof buf);
    MW_CHECK(strcmp(buf, "DNS name 127.0.0.1") == 0);
    names("cnip", "127.0.0.1", buf, sizeof buf);
    MW_CHECK(strcmp(buf, "common name 127.0.0.1") == 0);
    names("cnhost", "other.test", buf, sizeof buf);
    MW_CHECK(strcmp(buf, "localhost") == 0);
    names("ipcn", "localhost", buf, sizeof buf); /* the CN is not listed: it does not count */
    MW_CHECK(strcmp(buf, "127.0.0.2") == 0);
    names("ip6", "127.0.0.1", buf, sizeof buf);
    MW_CHECK(strcmp(buf, "IP address ::1") == 0);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/mw-tls-name-XXXXXX");
    if (mwt_make_certs(dir, certs, sizeof certs, __FILE__) != 0) return 1;
    wolfSSL_Init();

    MW_RUN(test_dns_names_and_wildcards);
    MW_RUN(test_reference_kinds);
    MW_RUN(test_certificates);

    wolfSSL_Cleanup();
    mwt_remove_dir(dir);
    return MW_DONE();
}
