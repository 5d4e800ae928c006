/* headers.h: the extra header fields a script gives a connection: owned
 * copies, and their credentials kept out of error messages. Knows nothing of
 * connections or protocols. */
#ifndef MW_HEADERS_H
#define MW_HEADERS_H
#include <stddef.h>

/* Lengths, not strlen: a NUL inside a name or value must reach the ws
 * layer's check instead of cutting the header short. value NULL: send no
 * field of that name (a script's `false`: no default User-Agent). */
typedef struct mw_header { char *name, *value; size_t name_len, value_len; } mw_header;

/* Replace *dst (*ndst fields) with copies of src[0..n). -1 out of memory
 * (what was copied stays, counted in *ndst). */
int mw_headers_copy(mw_header **dst, int *ndst, const mw_header *src, int n);
void mw_headers_free(mw_header **h, int *n);

/* Error messages quote what a server sent (a status line, a header value),
 * and a hostile server can reflect the request's credentials into those:
 * in msg (NUL-terminated, edited in place, never longer), replace each
 * occurrence of the value of a Cookie, Authorization or Proxy-Authorization
 * field (any case), and of each of its parts (a cookie's values, a scheme's
 * credentials), with "***". Parts under 4 bytes are left. */
void mw_headers_redact(const mw_header *h, int n, char *msg);
#endif
