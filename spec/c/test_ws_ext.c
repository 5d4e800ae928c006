/* test_ws_ext: permessage-deflate negotiation: the offers written, and every way the
 * server's answer can be accepted or refused, with the words of each refusal. */
#include "mwtest.h"
#include "ws/ws_ext.h"

static ws_deflate_opts on(void)
{
    ws_deflate_opts o = { .enabled = 1 };
    return o;
}

static int offer_is(const ws_deflate_opts *o, const char *want)
{
    char got[200];
    int n = ws_ext_offer(o, got, sizeof got);
    if (n >= 0 && strcmp(got, want) == 0 && (size_t)n == strlen(want)) return 1;
    fprintf(stderr, "  offer: %s\n  want:  %s\n", n >= 0 ? got : "(error)", want);
    return 0;
}

static void test_offers(void)
{
    ws_deflate_opts o = on();
    MW_CHECK(offer_is(&o, "permessage-deflate; client_max_window_bits"));
    o.client_max_window_bits = 10;
    MW_CHECK(offer_is(&o, "permessage-deflate; client_max_window_bits=10"));
    o.client_max_window_bits = -1;
    MW_CHECK(offer_is(&o, "permessage-deflate"));
    o.client_max_window_bits = 12;
    o.server_max_window_bits = 9;
    o.client_no_context_takeover = 1;
    o.server_no_context_takeover = 1;
    MW_CHECK(offer_is(&o, "permessage-deflate; client_max_window_bits=12; server_max_window_bits=9; "
                          "client_no_context_takeover; server_no_context_takeover"));
    char small[20];
    MW_CHECK_EQ_INT(ws_ext_offer(&o, small, sizeof small), WS_EXT_SPACE);
}

static void test_option_check(void)
{
    char msg[200];
    ws_deflate_opts o = on();
    MW_CHECK_EQ_INT(ws_ext_check(&o, msg, sizeof msg), 0);
    o.level = -1; o.mem_level = 9; o.client_max_window_bits = 8; o.server_max_window_bits = 15;
    MW_CHECK_EQ_INT(ws_ext_check(&o, msg, sizeof msg), 0);
    static const struct { int c, s, level, mem; const char *msg; } bad[] = {
        { 7, 0, 0, 0, "permessage-deflate client_max_window_bits=7 is not -1, 0 or 8..15" },
        { 16, 0, 0, 0, "permessage-deflate client_max_window_bits=16 is not -1, 0 or 8..15" },
        { 0, -1, 0, 0, "permessage-deflate server_max_window_bits=-1 is not 0 or 8..15" },
        { 0, 16, 0, 0, "permessage-deflate server_max_window_bits=16 is not 0 or 8..15" },
        { 0, 0, 10, 0, "permessage-deflate level=10 is not -1..9" },
        { 0, 0, -2, 0, "permessage-deflate level=-2 is not -1..9" },
        { 0, 0, 0, 10, "permessage-deflate mem_level=10 is not 0..9" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ws_deflate_opts b = on();
        b.client_max_window_bits = bad[i].c;
        b.server_max_window_bits = bad[i].s;
        b.level = bad[i].level;
        b.mem_level = bad[i].mem;
        msg[0] = 0;
        MW_CHECK_EQ_INT(ws_ext_check(&b, msg, sizeof msg), WS_EXT_OPTION);
        if (strcmp(msg, bad[i].msg) != 0) {
            fprintf(stderr, "  got:  %s\n  want: %s\n", msg, bad[i].msg);
            mwt_cur_failed = 1;
        }
    }
}

/* Judge the fields (NULL-terminated) against the offer. Returns the result;
 * *p and msg are filled. */
static int judge(const ws_deflate_opts *o, const char *const *fields, ws_deflate_params *p,
                 char *msg, size_t cap)
{
    ws_ext_answer a;
    ws_ext_answer_init(&a, o);
    msg[0] = 0;
    for (size_t i = 0; fields[i]; i++) {
        int e = ws_ext_answer_field(&a, fields[i], strlen(fields[i]), msg, cap);
        if (e) return e;
    }
    return ws_ext_answer_finish(&a, p, msg, cap);
}

typedef struct { int c, s, cnct, snct; } offer_t;
#define F(...) ((const char *const[]){ __VA_ARGS__, NULL })

static ws_deflate_opts mk(offer_t x)
{
    ws_deflate_opts o = on();
    o.client_max_window_bits = x.c;
    o.server_max_window_bits = x.s;
    o.client_no_context_takeover = x.cnct;
    o.server_no_context_takeover = x.snct;
    return o;
}

static void test_answers_ok(void)
{
    const struct {
        offer_t offer;
        const char *const *fields;
        int sbits, cbits, snct, cnct;
    } ok[] = {
        { { 0, 0, 0, 0 }, F("permessage-deflate"), 15, 15, 0, 0 },
        { { 0, 0, 0, 0 }, F("permessage-deflate; client_max_window_bits=10"), 15, 10, 0, 0 },
        { { 0, 0, 0, 0 }, F("PerMessage-Deflate ;Server_No_Context_Takeover;\tclient_no_context_takeover"), 15, 15, 1, 1 },
        { { 0, 0, 0, 0 }, F("permessage-deflate; server_max_window_bits=\"12\""), 12, 15, 0, 0 },
        { { 0, 0, 0, 0 }, F("permessage-deflate; server_max_window_bits=\"1\\2\""), 12, 15, 0, 0 },
        { { 0, 0, 0, 0 }, F("permessage-deflate; server_max_window_bits = 9 ; client_max_window_bits= 8"), 9, 8, 0, 0 },
        { { 0, 0, 0, 0 }, F(" , permessage-deflate; server_max_window_bits=8 ,, "), 8, 15, 0, 0 },
        { { 0, 10, 0, 0 }, F("permessage-deflate; server_max_window_bits=10"), 10, 15, 0, 0 },
        { { 0, 10, 0, 0 }, F("permessage-deflate;server_max_window_bits=9"), 9, 15, 0, 0 },
        { { 12, 0, 0, 0 }, F("permessage-deflate"), 15, 12, 0, 0 },
        { { 12, 0, 0, 0 }, F("permessage-deflate; client_max_window_bits=12"), 15, 12, 0, 0 },
        { { -1, 0, 0, 0 }, F("permessage-deflate"), 15, 15, 0, 0 },
        /* a hint we gave is honoured even when the server says nothing */
        { { 0, 0, 1, 0 }, F("permessage-deflate"), 15, 15, 0, 1 },
        { { 0, 11, 0, 1 }, F("permessage-deflate; server_no_context_takeover; server_max_window_bits=11"), 11, 15, 1, 0 },
        { { 0, 0, 0, 0 }, F("", "permessage-deflate"), -1, 0, 0, 0 },  /* an empty field: malformed */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ws_deflate_opts o = mk(ok[i].offer);
        ws_deflate_params p;
        char msg[256];
        int e = judge(&o, ok[i].fields, &p, msg, sizeof msg);
        if (ok[i].sbits < 0) { MW_CHECK_EQ_INT(e, WS_EXT_SYNTAX); continue; }
        if (e) fprintf(stderr, "  case %zu: %s\n", i, msg);
        MW_CHECK_EQ_INT(e, 0);
        MW_CHECK_EQ_INT(p.agreed, 1);
        MW_CHECK_EQ_INT(p.server_max_window_bits, ok[i].sbits);
        MW_CHECK_EQ_INT(p.client_max_window_bits, ok[i].cbits);
        MW_CHECK_EQ_INT(p.server_no_context_takeover, ok[i].snct);
        MW_CHECK_EQ_INT(p.client_no_context_takeover, ok[i].cnct);
    }
    /* No field at all: nothing agreed, no error. */
    ws_deflate_opts o = on();
    ws_deflate_params p;
    char msg[64];
    MW_CHECK_EQ_INT(judge(&o, (const char *const[]){ NULL }, &p, msg, sizeof msg), 0);
    MW_CHECK_EQ_INT(p.agreed, 0);
}

static void test_answers_refused(void)
{
    const struct {
        offer_t offer;
        const char *const *fields;
        int err;
        const char *msg;
    } bad[] = {
        { { 0, 0, 0, 0 }, F("x-webkit-deflate-frame"), WS_EXT_UNKNOWN,
          "server chose extension \"x-webkit-deflate-frame\" that was not offered" },
        { { 0, 0, 0, 0 }, F("permessage-deflate, foo; a=1"), WS_EXT_UNKNOWN,
          "server chose extension \"foo\" that was not offered" },
        { { 0, 0, 0, 0 }, F("permessage-deflate", "bar"), WS_EXT_UNKNOWN,
          "server chose extension \"bar\" that was not offered" },
        { { 0, 0, 0, 0 }, F("permessage-deflate, permessage-deflate"), WS_EXT_DUPLICATE,
          "permessage-deflate appears more than once in the answer" },
        { { 0, 0, 0, 0 }, F("permessage-deflate", "permessage-deflate; server_max_window_bits=9"), WS_EXT_DUPLICATE,
          "permessage-deflate appears more than once in the answer" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; foo"), WS_EXT_PARAM,
          "permessage-deflate: unknown parameter \"foo\"" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; server_no_context_takeover; server_no_context_takeover"), WS_EXT_PARAM,
          "permessage-deflate: parameter server_no_context_takeover appears twice" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; client_max_window_bits=9; Client_Max_Window_Bits=9"), WS_EXT_PARAM,
          "permessage-deflate: parameter client_max_window_bits appears twice" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; server_max_window_bits=16"), WS_EXT_PARAM,
          "permessage-deflate: server_max_window_bits=16 is out of 8..15" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; server_max_window_bits=7"), WS_EXT_PARAM,
          "permessage-deflate: server_max_window_bits=7 is out of 8..15" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; client_max_window_bits=99999999999999999999"), WS_EXT_PARAM,
          "permessage-deflate: client_max_window_bits=99999999999999999999 is out of 8..15" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; server_max_window_bits=08"), WS_EXT_PARAM,
          "permessage-deflate: server_max_window_bits=\"08\" is not a decimal number without leading zeros" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; server_max_window_bits=\"0x9\""), WS_EXT_PARAM,
          "permessage-deflate: server_max_window_bits=\"0x9\" is not a decimal number without leading zeros" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; client_max_window_bits=1a"), WS_EXT_PARAM,
          "permessage-deflate: client_max_window_bits=\"1a\" is not a decimal number without leading zeros" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; server_max_window_bits"), WS_EXT_PARAM,
          "permessage-deflate: server_max_window_bits needs a value in an answer" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; client_max_window_bits"), WS_EXT_PARAM,
          "permessage-deflate: client_max_window_bits needs a value in an answer" },
        { { -1, 0, 0, 0 }, F("permessage-deflate; client_max_window_bits=10"), WS_EXT_PARAM,
          "permessage-deflate: client_max_window_bits in the answer, but it was not offered" },
        { { 0, 10, 0, 0 }, F("permessage-deflate; server_max_window_bits=11"), WS_EXT_PARAM,
          "permessage-deflate: server_max_window_bits=11 is larger than the 10 offered" },
        { { 10, 0, 0, 0 }, F("permessage-deflate; client_max_window_bits=11"), WS_EXT_PARAM,
          "permessage-deflate: client_max_window_bits=11 is larger than the 10 offered" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; server_no_context_takeover=1"), WS_EXT_PARAM,
          "permessage-deflate: server_no_context_takeover takes no value (got \"1\")" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; client_no_context_takeover=\"x\""), WS_EXT_PARAM,
          "permessage-deflate: client_no_context_takeover takes no value (got \"x\")" },
        { { 0, 0, 0, 1 }, F("permessage-deflate"), WS_EXT_PARAM,
          "permessage-deflate: server_no_context_takeover was offered, the answer lacks it" },
        { { 0, 12, 0, 0 }, F("permessage-deflate; client_max_window_bits=9"), WS_EXT_PARAM,
          "permessage-deflate: server_max_window_bits=12 was offered, the answer lacks it" },
        /* syntax */
        { { 0, 0, 0, 0 }, F(""), WS_EXT_SYNTAX,
          "Sec-WebSocket-Extensions \"\" is malformed at byte 1: no extension in the field" },
        { { 0, 0, 0, 0 }, F(" , "), WS_EXT_SYNTAX,
          "Sec-WebSocket-Extensions \" , \" is malformed at byte 4: no extension in the field" },
        { { 0, 0, 0, 0 }, F("permessage-deflate;"), WS_EXT_SYNTAX,
          "Sec-WebSocket-Extensions \"permessage-deflate;\" is malformed at byte 20: expected a parameter name" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; ;a"), WS_EXT_SYNTAX,
          "Sec-WebSocket-Extensions \"permessage-deflate; ;a\" is malformed at byte 21: expected a parameter name" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; a="), WS_EXT_SYNTAX,
          "Sec-WebSocket-Extensions \"permessage-deflate; a=\" is malformed at byte 23: expected a parameter value" },
        { { 0, 0, 0, 0 }, F("permessage-deflate x"), WS_EXT_SYNTAX,
          "Sec-WebSocket-Extensions \"permessage-deflate x\" is malformed at byte 20: expected \";\" or \",\"" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; server_max_window_bits=10 0"), WS_EXT_SYNTAX,
          "Sec-WebSocket-Extensions \"permessage-deflate; server_max_window_bits=10 0\" is malformed at byte 47: expected \";\" or \",\"" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; server_max_window_bits=\"10"), WS_EXT_SYNTAX,
          "Sec-WebSocket-Extensions \"permessage-deflate; server_max_window_bits=\\x2210\" is malformed at byte 47: unterminated or invalid quoted value" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; server_max_window_bits=\"\""), WS_EXT_SYNTAX,
          "Sec-WebSocket-Extensions \"permessage-deflate; server_max_window_bits=\\x22\\x22\" is malformed at byte 46: a quoted value that is not a token" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; server_max_window_bits=\"1 0\""), WS_EXT_SYNTAX,
          "Sec-WebSocket-Extensions \"permessage-deflate; server_max_window_bits=\\x221 0\\x22\" is malformed at byte 49: a quoted value that is not a token" },
        { { 0, 0, 0, 0 }, F("@"), WS_EXT_SYNTAX,
          "Sec-WebSocket-Extensions \"@\" is malformed at byte 1: expected an extension name" },
        { { 0, 0, 0, 0 }, F("permessage-deflate; =5"), WS_EXT_SYNTAX,
          "Sec-WebSocket-Extensions \"permessage-deflate; =5\" is malformed at byte 21: expected a parameter name" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ws_deflate_opts o = mk(bad[i].offer);
        ws_deflate_params p;
        char msg[256];
        int e = judge(&o, bad[i].fields, &p, msg, sizeof msg);
        if (e != bad[i].err || strcmp(msg, bad[i].msg) != 0) {
            fprintf(stderr, "  case %zu (%s): got %d \"%s\"\n  want %d \"%s\"\n", i, bad[i].fields[0], e, msg,
                    bad[i].err, bad[i].msg);
            mwt_cur_failed = 1;
        }
    }
}

static void test_format(void)
{
    char s[200];
    ws_deflate_params p = { 0 };
    MW_CHECK_EQ_INT(ws_ext_format(&p, s, sizeof s), 0);
    MW_CHECK_EQ_INT(s[0], 0);
    p = (ws_deflate_params){ 1, 10, 12, 1, 0 };
    MW_CHECK(ws_ext_format(&p, s, sizeof s) > 0);
    MW_CHECK(strcmp(s, "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12; "
                       "server_no_context_takeover") == 0);
    MW_CHECK_EQ_INT(ws_ext_format(&p, s, 10), WS_EXT_SPACE);
}

int main(void)
{
    MW_RUN(test_offers);
    MW_RUN(test_option_check);
    MW_RUN(test_answers_ok);
    MW_RUN(test_answers_refused);
    MW_RUN(test_format);
    return MW_DONE();
}
