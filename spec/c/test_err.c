/* test_err: the one error convention (err.h): every code sits in its class's
 * range, no two classes share a code, every code has its own text, and the
 * ws engine's codes all map into the ws class. */
#include "mwtest.h"
#include "err.h"
#include "codec.h"
#include "ws/ws_client.h"

/* Every code of the table lies in the range of one class, kinds in 1..99. */
static void test_classes_are_ranges(void)
{
    MW_CHECK(mw_err_count > 20);
    for (size_t i = 0; i < mw_err_count; i++) {
        const mw_err_info *e = &mw_err_table[i];
        int k = mw_err_class(e->code);
        if (k < 0) fprintf(stderr, "  %s (%d) is in no class\n", e->name, e->code);
        MW_CHECK(k >= 0);
        if (k == MW_ERRC_KIND) {
            MW_CHECK(e->code > 0 && e->code < MW_ERR_CLASS_SPAN);
        } else {
            MW_CHECK(e->code <= -k * MW_ERR_CLASS_SPAN);
            MW_CHECK(e->code > -(k + 1) * MW_ERR_CLASS_SPAN);
        }
    }
    MW_CHECK_EQ_INT(mw_err_class(0), -1);
    MW_CHECK_EQ_INT(mw_err_class(-1), -1);     /* the old MW_IO_AGAIN, MW_DEC_TOO_LARGE, WS_E_NOMEM */
    MW_CHECK_EQ_INT(mw_err_class(-99), -1);
    MW_CHECK_EQ_INT(mw_err_class(-100), MW_ERRC_IO);
    MW_CHECK_EQ_INT(mw_err_class(-200), MW_ERRC_DNS);
    MW_CHECK_EQ_INT(mw_err_class(-300), MW_ERRC_DEC);
    MW_CHECK_EQ_INT(mw_err_class(-499), MW_ERRC_WS);
    MW_CHECK_EQ_INT(mw_err_class(-500), -1);
}

/* No code twice (so no two classes overlap), each name and text its own. */
static void test_codes_and_texts_distinct(void)
{
    for (size_t i = 0; i < mw_err_count; i++) {
        const mw_err_info *a = &mw_err_table[i];
        MW_CHECK(a->name && a->name[0]);
        MW_CHECK(a->text && a->text[0]);
        MW_CHECK(mw_strerror(a->code) == a->text);
        for (size_t j = i + 1; j < mw_err_count; j++) {
            const mw_err_info *b = &mw_err_table[j];
            if (a->code == b->code) fprintf(stderr, "  %s and %s are both %d\n", a->name, b->name, a->code);
            MW_CHECK(a->code != b->code);
            MW_CHECK(strcmp(a->name, b->name) != 0);
            if (strcmp(a->text, b->text) == 0) fprintf(stderr, "  %s and %s share \"%s\"\n", a->name, b->name, a->text);
            MW_CHECK(strcmp(a->text, b->text) != 0);
        }
    }
    MW_CHECK(strcmp(mw_strerror(0), "no error") == 0);
    MW_CHECK(strcmp(mw_strerror(-1), "unknown error") == 0);
    MW_CHECK(strcmp(mw_strerror(12345), "unknown error") == 0);
}

/* The kinds are the stable mw.errors values, each reporting as itself; every
 * negative code reports as a kind, except I/O, whose caller knows the direction. */
static void test_kinds(void)
{
    static const struct { const char *name; int code; } want[] = {
        {"CONNECT_FAIL", 1}, {"SEND_FAIL", 2}, {"DNS_FAIL", 3}, {"TLS_FAIL", 4},
        {"HANDSHAKE_FAIL", 5}, {"PROTOCOL_FAIL", 6}, {"PACKAGE_TOO_LARGE", 7},
        {"TIMEOUT", 8}, {"READ_FAIL", 9},
    };
    size_t kinds = 0;
    for (size_t i = 0; i < mw_err_count; i++) {
        const mw_err_info *e = &mw_err_table[i];
        if (mw_err_class(e->code) == MW_ERRC_KIND) {
            kinds++;
            MW_CHECK_EQ_INT(e->kind, e->code);
            continue;
        }
        if (mw_err_class(e->code) == MW_ERRC_IO) MW_CHECK_EQ_INT(e->kind, 0);
        else MW_CHECK(mw_err_class(e->kind) == MW_ERRC_KIND);
    }
    MW_CHECK_EQ_INT(kinds, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        MW_CHECK_EQ_INT(mw_err_kind(want[i].code), want[i].code);
        int found = 0;
        for (size_t j = 0; j < mw_err_count; j++)
            if (mw_err_table[j].code == want[i].code) found = strcmp(mw_err_table[j].name, want[i].name) == 0;
        MW_CHECK(found);
    }
    MW_CHECK_EQ_INT(mw_err_kind(MW_DNS_ETIMEOUT), MW_E_DNS_FAIL);
    MW_CHECK_EQ_INT(mw_err_kind(MW_DEC_TOO_LARGE), MW_E_PACKAGE_TOO_LARGE);
    MW_CHECK_EQ_INT(mw_err_kind(12345), 0);
}

/* Every code the engine knows (ws_strerror has a text for it) maps into the
 * ws class, and the kinds the mapping yields are the ones onError reported
 * before the mapping existed. The engine's own ranges are walked whole. */
static void test_ws_mapping(void)
{
    const char *unknown = ws_strerror(-999);
    int known = 0;
    for (int e = -1; e > -400; e--) {
        if (strcmp(ws_strerror(e), unknown) == 0) continue;
        known++;
        int m = mw_err_from_ws(e);
        if (mw_err_class(m) != MW_ERRC_WS) fprintf(stderr, "  ws %d -> %d\n", e, m);
        MW_CHECK_EQ_INT(mw_err_class(m), MW_ERRC_WS);
        int kind = mw_err_kind(m);
        int before = e == WS_E_TOO_BIG ? MW_E_PACKAGE_TOO_LARGE
                   : ws_err_is_handshake(e) ? MW_E_HANDSHAKE_FAIL : MW_E_PROTOCOL_FAIL;
        MW_CHECK_EQ_INT(kind, before);
    }
    MW_CHECK(known >= 30);
    MW_CHECK_EQ_INT(mw_err_from_ws(0), 0);
    MW_CHECK_EQ_INT(mw_err_from_ws(WS_E_NOMEM), MW_WS_ENOMEM);
    MW_CHECK_EQ_INT(mw_err_from_ws(WS_E_HS_ACCEPT), MW_WS_EHANDSHAKE);
    MW_CHECK_EQ_INT(mw_err_from_ws(WS_E_RSV), MW_WS_EPROTOCOL);  /* -200, as MW_DNS_EFAIL was */
    MW_CHECK(mw_err_from_ws(WS_E_RSV) != MW_DNS_EFAIL);
    MW_CHECK_EQ_INT(mw_err_from_ws(WS_E_UTF8), MW_WS_EPROTOCOL);
    MW_CHECK_EQ_INT(mw_err_from_ws(WS_E_TOO_BIG), MW_WS_ETOOBIG);
    MW_CHECK_EQ_INT(mw_err_from_ws(WS_E_SEND_UTF8), MW_WS_EUSAGE);
}

/* The I/O results and the decoders' results share no value with the decoders'
 * non-failure results or with a byte count. */
static void test_results_apart(void)
{
    const int fails[] = {MW_IO_AGAIN, MW_IO_ERROR, MW_DEC_TOO_LARGE, MW_DEC_INVALID};
    const int results[] = {MW_DEC_NEED, MW_DEC_MESSAGE};
    for (size_t i = 0; i < 4; i++) {
        MW_CHECK(fails[i] < 0);
        for (size_t j = 0; j < 2; j++) MW_CHECK(fails[i] != results[j]);
        for (size_t j = i + 1; j < 4; j++) MW_CHECK(fails[i] != fails[j]);
    }
}

int main(void)
{
    MW_RUN(test_classes_are_ranges);
    MW_RUN(test_codes_and_texts_distinct);
    MW_RUN(test_kinds);
    MW_RUN(test_ws_mapping);
    MW_RUN(test_results_apart);
    return MW_DONE();
}
