/* fuzz_ws_ext: the permessage-deflate answer judge on arbitrary Sec-WebSocket-Extensions
 * fields against an offer chosen by the input. Checks invariants, not words. Knows only ws/ws_ext.h. */
#include "ws/ws_ext.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const int cbits[] = { -1, 0, 8, 9, 10, 11, 12, 15 };
static const int sbits[] = { 0, 0, 8, 9, 10, 12, 14, 15 };

/* Fields are the input split at '\n'. Returns the verdict; *p filled. */
static int judge(const ws_deflate_opts *o, const char *d, size_t n, ws_deflate_params *p, char *msg, size_t cap)
{
    ws_ext_answer a;
    ws_ext_answer_init(&a, o);
    size_t i = 0;
    for (;;) {
        size_t b = i;
        while (i < n && d[i] != '\n') i++;
        int e = ws_ext_answer_field(&a, d + b, i - b, msg, cap);
        if (e) return e;
        if (i == n) break;
        i++;
    }
    return ws_ext_answer_finish(&a, p, msg, cap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t c = data[0];
    ws_deflate_opts o = { .enabled = 1, .client_max_window_bits = cbits[c & 7],
                          .server_max_window_bits = sbits[(c >> 3) & 7],
                          .client_no_context_takeover = (c >> 6) & 1, .server_no_context_takeover = c >> 7 };
    const char *d = (const char *)data + 1;
    size_t n = size - 1;
    ws_deflate_params p, q;
    char msg[256] = "", msg2[256] = "";
    int e = judge(&o, d, n, &p, msg, sizeof msg);
    /* deterministic, and every refusal says something */
    if (judge(&o, d, n, &q, msg2, sizeof msg2) != e || strcmp(msg, msg2) != 0) abort();
    if (e && (e < WS_EXT_PARAM || !msg[0])) abort();
    if (e) return 0;
    if (!p.agreed) abort();   /* a field that parsed named permessage-deflate */
    if (p.server_max_window_bits < 8 || p.server_max_window_bits > 15) abort();
    if (p.client_max_window_bits < 8 || p.client_max_window_bits > 15) abort();
    if (o.server_max_window_bits && p.server_max_window_bits > o.server_max_window_bits) abort();
    if (o.client_max_window_bits > 0 && p.client_max_window_bits > o.client_max_window_bits) abort();
    if (o.server_no_context_takeover && !p.server_no_context_takeover) abort();
    if (o.client_no_context_takeover && !p.client_no_context_takeover) abort();
    /* what was agreed, written out, is agreed again the same */
    if (o.client_max_window_bits >= 0) {
        char s[200];
        if (ws_ext_format(&p, s, sizeof s) <= 0) abort();
        if (judge(&o, s, strlen(s), &q, msg2, sizeof msg2) != 0) abort();
        if (memcmp(&p, &q, sizeof p) != 0) abort();
    }
    return 0;
}
