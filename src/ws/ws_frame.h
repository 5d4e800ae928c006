/* ws_frame: RFC 6455 frame header parse/encode and payload masking.
 * Knows nothing of messages, handshakes, sockets or Lua. */
#ifndef WS_FRAME_H
#define WS_FRAME_H
#include <stddef.h>
#include <stdint.h>

enum {
    WS_OP_CONT = 0x0, WS_OP_TEXT = 0x1, WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8, WS_OP_PING = 0x9, WS_OP_PONG = 0xA,
};

#define WS_FRAME_MAX_HEADER 14   /* 2 + 8 (64-bit length) + 4 (mask key) */
#define WS_CONTROL_MAX 125

typedef struct ws_frame_hdr {
    unsigned fin : 1;
    unsigned rsv : 3;       /* RSV1..RSV3 as bits 2..0 */
    unsigned opcode : 4;
    unsigned masked : 1;
    uint64_t len;           /* payload length */
    uint8_t mask[4];        /* valid when masked */
} ws_frame_hdr;

/* Parse a frame header from p[0..n). Returns the header length (2..14) when
 * complete, 0 if more bytes are needed, or -1 if the 64-bit length has its
 * most significant bit set (RFC 6455 5.2). Semantic checks (opcode, RSV,
 * control-frame rules) are the caller's. */
int ws_frame_parse(const void *p, size_t n, ws_frame_hdr *h);

/* Encode a header into out (room for WS_FRAME_MAX_HEADER bytes) using the
 * shortest length form. mask may be NULL for an unmasked frame. Returns the
 * header length. */
size_t ws_frame_encode(unsigned char *out, int fin, int opcode, uint64_t len,
                       const uint8_t *mask);

/* XOR p[0..n) in place with the mask key, starting at key phase `offset`
 * (the payload offset of p[0] within its frame, mod 4 is all that matters).
 * Works a 64-bit word at a time. */
void ws_mask(void *p, size_t n, const uint8_t key[4], size_t offset);

/* Returns 1 if code may appear in a received close frame, else 0. */
int ws_close_code_valid(unsigned code);
#endif
