/*
 * fuzz_ws_frame.c - libFuzzer target for src/websocket/frame.c (the WebSocket wire format).
 *
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc src/websocket/frame.c \
 *            tests/fuzz/fuzz_ws_frame.c -o fuzz_ws_frame
 *
 * Besides memory errors, it aborts when the parser breaks a promise:
 *  - a header is parsed the same from any prefix: each shorter prefix (copied to a heap block of
 *    exactly its size) asks for more, or fails with the same code;
 *  - an accepted header is at most 14 bytes, and writing it back from the parsed fields gives
 *    the same bytes (lengths are minimal, so the encoding is unique);
 *  - a failure is always a close code RFC 6455 names for it (1002);
 *  - UTF-8 validation does not depend on where the text is split;
 *  - masking twice from any key position restores the bytes;
 *  - close payloads are accepted only with a sendable code and a UTF-8 reason.
 * Input: byte 0 picks the side (mask expected or not) and the split point, the rest is the
 * frame or text.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "websocket/frame.h"

static int parse_copy(const uint8_t *p, size_t n, bool mask, gorc__ws_frame *f)
{
    uint8_t *c = malloc(n ? n : 1);
    memcpy(c, p, n);
    int h = gorc__ws_parse_header(c, n, mask, 0, f);
    free(c);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool mask = data[0] & 1;
    size_t split = data[0] >> 1;
    const uint8_t *p = data + 1;
    size_t n = size - 1;

    gorc__ws_frame f;
    int h = parse_copy(p, n, mask, &f);
    if (h < 0 && h != -1002)
        abort();
    if (h > 0) {
        if ((size_t)h > n || h > GORC__WS_MAX_HEADER)
            abort();
        uint8_t out[GORC__WS_MAX_HEADER];
        size_t k = gorc__ws_put_header(out, f.op, f.fin, f.len, f.masked ? f.key : NULL);
        if (k != (size_t)h || memcmp(out, p, k) != 0)
            abort();
        if (f.op >= 8 && (f.len > 125 || !f.fin))
            abort();
    }
    for (size_t i = 0; i < n && i < GORC__WS_MAX_HEADER; i++) {
        gorc__ws_frame g;
        int hp = parse_copy(p, i, mask, &g);
        if (hp > 0 && hp != h)
            abort(); /* a prefix cannot hold a different complete header */
        if (hp < 0 && hp != h)
            abort();
    }

    /* UTF-8: the answer is the same whole and split. */
    if (split > n)
        split = n;
    gorc__ws_utf8 a = {0}, b = {0};
    bool whole = gorc__ws_utf8_feed(&a, p, n) && gorc__ws_utf8_done(&a);
    bool parts = gorc__ws_utf8_feed(&b, p, split) && gorc__ws_utf8_feed(&b, p + split, n - split) &&
                 gorc__ws_utf8_done(&b);
    if (whole != parts)
        abort();

    /* Masking is an involution from any starting position. */
    if (n >= 4) {
        uint8_t *m = malloc(n);
        memcpy(m, p, n);
        uint8_t pos = (uint8_t)split, pos2 = (uint8_t)split;
        gorc__ws_mask(m + 4, n - 4, p, &pos);
        gorc__ws_mask(m + 4, n - 4, p, &pos2);
        if (memcmp(m, p, n) != 0 || pos != pos2)
            abort();
        free(m);
    }

    /* Close payloads. */
    int code = 0;
    int r = gorc__ws_parse_close(p, n > 125 ? 125 : n, &code);
    if (r == 0 && n >= 2 && !gorc__ws_close_code_ok(code))
        abort();
    if (r != 0 && r != -1002 && r != -1007)
        abort();
    return 0;
}
