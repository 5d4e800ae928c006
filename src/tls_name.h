/* tls_name: whether a server certificate is for the name a client asked for
 * (RFC 9525 / RFC 6125), and the names it is for, in words. Knows no
 * connection, socket, loop or Lua. */
#ifndef MW_TLS_NAME_H
#define MW_TLS_NAME_H
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <stddef.h>

enum { MW_REF_DNS = 1, MW_REF_IPV4, MW_REF_IPV6 };

/* A reference identity: what the client expects the certificate to name. */
typedef struct mw_tls_ref {
    int kind;                   /* MW_REF_* */
    unsigned char ip[16];       /* the address, 4 or 16 bytes, for an IP */
    char name[256];             /* as given (an IPv6 zone left out), for messages */
    size_t len;                 /* strlen(name); 0 for a name too long to check */
} mw_tls_ref;

/* Parses name (a URL host or ssl.peer_name) into r: an IPv4 or IPv6 literal
 * in any textual form (brackets and a zone, "[fe80::1%eth0]", allowed) is an
 * IP reference, anything else a DNS name. */
void mw_tls_ref_parse(const char *name, mw_tls_ref *r);

/* Whether the presented DNS identifier p[0..plen) matches the DNS name
 * ref[0..rlen): case-insensitive ASCII; one trailing dot on either is
 * ignored; a wildcard only as the whole leftmost label ("*.example.com"),
 * matching exactly one non-empty label, and only with two or more labels
 * after it. Returns 1 or 0. */
int mw_tls_dns_match(const char *p, size_t plen, const char *ref, size_t rlen);

/* Whether certificate x is for r. An IP reference matches iPAddress SANs
 * only, compared as binary addresses; a DNS reference matches dNSName SANs,
 * or the subject CN when the certificate has no subjectAltName extension at
 * all. Returns 1 or 0. */
int mw_tls_cert_matches(WOLFSSL_X509 *x, const mw_tls_ref *r);

/* The names x is valid for, for r's kind, as a list for a message:
 * "localhost, 127.0.0.1"; for an IP reference each says what it is
 * ("DNS name 127.0.0.1"). "no name" when there is none. */
void mw_tls_cert_names(WOLFSSL_X509 *x, const mw_tls_ref *r, char *buf, size_t cap);
#endif
