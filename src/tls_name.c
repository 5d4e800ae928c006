/* tls_name: the identity check of a server certificate against the name the
 * client asked for, done here rather than by wolfSSL's check_host/check_ip_asc
 * (which compare IPs as text and take a dNSName or CN for an IP). Knows no
 * connection, socket, loop or Lua. */
#include "tls_name.h"
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

/* GeneralName choices of RFC 5280 (wolfSSL's GEN_* live in its OpenSSL shim). */
enum { SAN_DNS = 2, SAN_IP = 7 };

void mw_tls_ref_parse(const char *name, mw_tls_ref *r)
{
    memset(r, 0, sizeof *r);
    size_t n = strlen(name);
    r->kind = MW_REF_DNS;
    if (n >= sizeof r->name) return; /* len 0: matches nothing, rather than a truncation */
    const char *s = name;
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') { s++; n -= 2; }
    char a[sizeof r->name];
    memcpy(a, s, n);
    a[n] = 0;
    char *zone = strchr(a, '%');
    if (zone && strchr(a, ':')) *zone = 0; /* a zone names the link, not the host */
    if (inet_pton(AF_INET, a, r->ip) == 1) r->kind = MW_REF_IPV4;
    else if (inet_pton(AF_INET6, a, r->ip) == 1) r->kind = MW_REF_IPV6;
    snprintf(r->name, sizeof r->name, "%s", r->kind == MW_REF_DNS ? name : a);
    r->len = strlen(r->name);
}

static int lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

static int ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return 0;
    return 1;
}

int mw_tls_dns_match(const char *p, size_t plen, const char *ref, size_t rlen)
{
    if (plen && p[plen - 1] == '.') plen--;
    if (rlen && ref[rlen - 1] == '.') rlen--;
    /* a NUL inside a presented name is the old "evil.com\0.good.com" trick */
    if (!plen || !rlen || memchr(p, 0, plen) || memchr(ref, 0, rlen) || memchr(ref, '*', rlen)) return 0;
    if (plen > 2 && p[0] == '*' && p[1] == '.') {
        const char *suffix = p + 1; /* ".example.com" */
        size_t slen = plen - 1;
        /* "*.com" would be a whole top-level domain; "f*.example.com" and a
         * second '*' are partial wildcards, which RFC 9525 leaves out */
        if (memchr(suffix, '*', slen) || !memchr(suffix + 1, '.', slen - 1)) return 0;
        const char *dot = memchr(ref, '.', rlen);
        if (!dot || dot == ref) return 0;
        size_t rest = rlen - (size_t)(dot - ref);
        return rest == slen && ieq(dot, suffix, slen);
    }
    if (memchr(p, '*', plen)) return 0;
    return plen == rlen && ieq(p, ref, plen);
}

static int has_san(WOLFSSL_X509 *x)
{
    return wolfSSL_X509_get_ext_by_NID(x, NID_subject_alt_name, -1) >= 0;
}

static int ip_len(const mw_tls_ref *r) { return r->kind == MW_REF_IPV4 ? 4 : 16; }

static int san_matches(WOLFSSL_GENERAL_NAME *g, const mw_tls_ref *r)
{
    if (r->kind == MW_REF_DNS) {
        if (g->type != SAN_DNS || !g->d.dNSName) return 0;
        return mw_tls_dns_match((const char *)wolfSSL_ASN1_STRING_data(g->d.dNSName),
                                (size_t)wolfSSL_ASN1_STRING_length(g->d.dNSName), r->name, r->len);
    }
    if (g->type != SAN_IP || !g->d.iPAddress) return 0;
    return wolfSSL_ASN1_STRING_length(g->d.iPAddress) == ip_len(r) &&
           memcmp(wolfSSL_ASN1_STRING_data(g->d.iPAddress), r->ip, (size_t)ip_len(r)) == 0;
}

/* Calls fn for each subject CN of x until it returns nonzero; returns that. */
static int each_cn(WOLFSSL_X509 *x, int (*fn)(const char *, size_t, void *), void *arg)
{
    WOLFSSL_X509_NAME *subj = wolfSSL_X509_get_subject_name(x);
    for (int i = -1; subj && (i = wolfSSL_X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0;) {
        WOLFSSL_X509_NAME_ENTRY *e = wolfSSL_X509_NAME_get_entry(subj, i);
        WOLFSSL_ASN1_STRING *s = e ? wolfSSL_X509_NAME_ENTRY_get_data(e) : NULL;
        if (!s) continue;
        int r = fn((const char *)wolfSSL_ASN1_STRING_data(s), (size_t)wolfSSL_ASN1_STRING_length(s), arg);
        if (r) return r;
    }
    return 0;
}

static int cn_matches(const char *cn, size_t n, void *arg)
{
    const mw_tls_ref *r = arg;
    return mw_tls_dns_match(cn, n, r->name, r->len);
}

int mw_tls_cert_matches(WOLFSSL_X509 *x, const mw_tls_ref *r)
{
    int found = 0;
    WOLFSSL_STACK *sk = wolfSSL_X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int san = sk != NULL, n = sk ? wolfSSL_sk_GENERAL_NAME_num(sk) : 0;
    for (int i = 0; i < n && !found; i++) {
        WOLFSSL_GENERAL_NAME *g = wolfSSL_sk_GENERAL_NAME_value(sk, i);
        found = g && san_matches(g, r);
    }
    if (sk) wolfSSL_GENERAL_NAMES_free(sk);
    /* The CN is a legacy place for a host name: used only for a DNS name
     * and only when the certificate names nothing in a subjectAltName (then
     * its CN is no identity a CA vouched for); never for an IP address. */
    if (found || r->kind != MW_REF_DNS || san || has_san(x)) return found;
    return each_cn(x, cn_matches, (void *)r);
}

/* ---- the names, for messages ---- */

typedef struct list {
    char *buf;
    size_t cap;
    int tagged;      /* say what each name is (for an IP reference) */
} list;

static void list_add(list *l, const char *tag, const char *s, size_t n)
{
    size_t len = strlen(l->buf), tl = l->tagged ? strlen(tag) + 1 : 0;
    if (n > 255) n = 255;
    if (len + tl + n + 3 >= l->cap) return;
    if (len) { memcpy(l->buf + len, ", ", 2); len += 2; }
    if (tl) { memcpy(l->buf + len, tag, tl - 1); l->buf[len + tl - 1] = ' '; len += tl; }
    for (size_t i = 0; i < n; i++) /* a name is the peer's bytes: no control characters in a message */
        l->buf[len + i] = (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f ? '?' : s[i];
    l->buf[len + n] = 0;
}

static int cn_add(const char *cn, size_t n, void *arg)
{
    list_add(arg, "common name", cn, n);
    return 0;
}

void mw_tls_cert_names(WOLFSSL_X509 *x, const mw_tls_ref *r, char *buf, size_t cap)
{
    list l = { buf, cap, r->kind != MW_REF_DNS };
    buf[0] = 0;
    WOLFSSL_STACK *sk = wolfSSL_X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int san = sk != NULL, n = sk ? wolfSSL_sk_GENERAL_NAME_num(sk) : 0;
    for (int i = 0; i < n; i++) {
        WOLFSSL_GENERAL_NAME *g = wolfSSL_sk_GENERAL_NAME_value(sk, i);
        if (!g) continue;
        if (g->type == SAN_DNS && g->d.dNSName) {
            list_add(&l, "DNS name", (const char *)wolfSSL_ASN1_STRING_data(g->d.dNSName),
                     (size_t)wolfSSL_ASN1_STRING_length(g->d.dNSName));
        } else if (g->type == SAN_IP && g->d.iPAddress) {
            int len = wolfSSL_ASN1_STRING_length(g->d.iPAddress);
            char s[64];
            if ((len == 4 || len == 16) &&
                inet_ntop(len == 4 ? AF_INET : AF_INET6, wolfSSL_ASN1_STRING_data(g->d.iPAddress), s, sizeof s))
                list_add(&l, "IP address", s, strlen(s));
        }
    }
    if (sk) wolfSSL_GENERAL_NAMES_free(sk);
    if (!buf[0] && !san && !has_san(x)) each_cn(x, cn_add, &l);
    if (!buf[0]) snprintf(buf, cap, "no name");
}
