/*
 * frame.h - the WebSocket wire format (RFC 6455), without I/O: frame headers, close payloads,
 * incremental UTF-8 validation, masking, and the handshake's accept key (SHA-1, base64).
 * Used by websocket.c and compiled alone by the fuzz target (tests/fuzz/fuzz_ws_frame.c).
 */
#ifndef GORC_WS_FRAME_H
#define GORC_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    GORC__WS_OP_CONT = 0,
    GORC__WS_OP_TEXT = 1,
    GORC__WS_OP_BINARY = 2,
    GORC__WS_OP_CLOSE = 8,
    GORC__WS_OP_PING = 9,
    GORC__WS_OP_PONG = 10,
};

#define GORC__WS_MAX_HEADER 14 /* 2 + 8 (64-bit length) + 4 (mask key) */

/* One parsed frame header. */
typedef struct gorc__ws_frame {
    uint64_t len; /* payload length */
    uint8_t op;   /* GORC__WS_OP_* */
    uint8_t rsv;  /* RSV1..3 as bits 0x40, 0x20, 0x10 */
    bool fin;
    bool masked;
    uint8_t key[4]; /* mask key when masked */
} gorc__ws_frame;

/* Parse a frame header from p[0..n). expect_mask: the frame must be masked (a server reading
 * a client) or must not be (a client reading a server); rsv_ok: the RSV bits an extension
 * negotiated. Returns the header length (2..14), 0 when more bytes are needed, or the
 * negated close code the receiver must fail the connection with: -1002 for reserved bits or
 * opcodes, a fragmented or oversized (> 125) control frame, a mask bit against expect_mask,
 * a length not in its minimal encoding or with the top bit of the 64-bit form set. */
int gorc__ws_parse_header(const uint8_t *p, size_t n, bool expect_mask, uint8_t rsv_ok,
                          gorc__ws_frame *f);

/* Write a frame header for op (with RSV bits 0x40, 0x20, 0x10 ORed in), fin and len (masked
 * with key when key is not NULL) into h
 * (GORC__WS_MAX_HEADER bytes). Returns its length. */
size_t gorc__ws_put_header(uint8_t *h, int op, bool fin, uint64_t len, const uint8_t *key);

/* XOR p[0..n) with key, starting at key position *pos (advanced, mod 4). */
void gorc__ws_mask(uint8_t *p, size_t n, const uint8_t key[4], uint8_t *pos);

/* Incremental UTF-8 validation (RFC 3629: no overlongs, surrogates or values past
 * U+10FFFF), across any split of the input. Zero-initialise. */
typedef struct gorc__ws_utf8 {
    uint8_t need;   /* continuation bytes still expected */
    uint8_t lo, hi; /* the range the next continuation byte must be in */
} gorc__ws_utf8;

/* Feed p[0..n): false when the bytes so far cannot be valid UTF-8. */
bool gorc__ws_utf8_feed(gorc__ws_utf8 *u, const uint8_t *p, size_t n);
/* At the end of the text: true when no sequence is left incomplete. */
static inline bool gorc__ws_utf8_done(const gorc__ws_utf8 *u)
{
    return u->need == 0;
}

/* May a close frame carry code (RFC 6455 §7.4: 1000-1003, 1007-1014, 3000-4999)? */
bool gorc__ws_close_code_ok(int code);

/* Check a received close payload p[0..n): 0 (*code is the code, 1005 when the payload is
 * empty; the reason is p + 2, n - 2 bytes), or the negated close code to fail with: -1002
 * (one byte, a code that may not be sent), -1007 (a reason that is not UTF-8). */
int gorc__ws_parse_close(const uint8_t *p, size_t n, int *code);

/* The Sec-WebSocket-Accept value for key[0..n) (28 characters and a NUL into out[29]). */
void gorc__ws_accept_key(const char *key, size_t n, char out[29]);

/* Standard base64 of p[0..n) with padding into out (4 * ((n + 2) / 3) + 1 bytes), NUL
 * included; returns the length. */
size_t gorc__ws_base64(const uint8_t *p, size_t n, char *out);

#endif
