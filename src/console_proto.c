/* console_proto: frame codec of the console (see console_proto.h). */
#include "console_proto.h"
#include <string.h>

int mw_cp_kind_known(int k)
{
    return k && strchr("eihnorxm", k) != NULL;
}

int mw_cp_encode(mw_buf *out, int kind, const char *p, size_t n)
{
    if (!mw_cp_kind_known(kind) || n > MW_CP_MAX) return -1;
    char *w = mw_buf_reserve(out, MW_CP_HEAD + n);
    if (!w) return -1;
    w[0] = (char)kind;
    w[1] = (char)(n >> 24); w[2] = (char)(n >> 16); w[3] = (char)(n >> 8); w[4] = (char)n;
    if (n) memcpy(w + MW_CP_HEAD, p, n);
    mw_buf_commit(out, MW_CP_HEAD + n);
    return 0;
}

long mw_cp_parse(const char *p, size_t n, int *kind, const char **payload, size_t *plen, const char **why)
{
    if (n < 1) return 0;
    const unsigned char *u = (const unsigned char *)p;
    if (!mw_cp_kind_known(u[0])) { *why = "unknown frame kind"; return -1; }
    if (n < MW_CP_HEAD) return 0;
    size_t len = ((size_t)u[1] << 24) | ((size_t)u[2] << 16) | ((size_t)u[3] << 8) | u[4];
    if (len > MW_CP_MAX) { *why = "frame longer than 1 MiB"; return -1; }
    if (n - MW_CP_HEAD < len) return 0;
    *kind = u[0];
    *payload = p + MW_CP_HEAD;
    *plen = len;
    return (long)(MW_CP_HEAD + len);
}
