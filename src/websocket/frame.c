/*
 * frame.c - the WebSocket wire format (RFC 6455) as pure functions: frame headers, masking,
 * close payloads, UTF-8 validation and the handshake's accept key.
 *
 * Nothing here does I/O or allocates, so the parser can be fuzzed alone (tests/fuzz) and the
 * connection code in websocket.c only decides what to do with the answers. Every check a
 * receiver must make on a header is made here, and each failure names the close code RFC
 * 6455 prescribes for it, so the two files cannot disagree about which violation gets which
 * code. UTF-8 is validated incrementally (a text message may be split anywhere across frames
 * and reads), with the byte ranges of RFC 3629's table: the state is three bytes.
 * SHA-1 is here only for the accept key (RFC 6455 §4.2.2), which is not a security use.
 */
#include "websocket/frame.h"

#include <string.h>

int gorc__ws_parse_header(const uint8_t *p, size_t n, bool expect_mask, uint8_t rsv_ok,
                          gorc__ws_frame *f)
{
    if (n < 2)
        return 0;
    uint8_t b0 = p[0], b1 = p[1];
    f->fin = (b0 & 0x80) != 0;
    f->rsv = b0 & 0x70;
    f->op = b0 & 0x0f;
    f->masked = (b1 & 0x80) != 0;
    if (f->rsv & ~rsv_ok)
        return -1002;
    switch (f->op) {
    case GORC__WS_OP_CONT:
    case GORC__WS_OP_TEXT:
    case GORC__WS_OP_BINARY:
        break;
    case GORC__WS_OP_CLOSE:
    case GORC__WS_OP_PING:
    case GORC__WS_OP_PONG:
        if (!f->fin || (b1 & 0x7f) > 125 || f->rsv)
            return -1002; /* control frames are short, whole, and never compressed */
        break;
    default:
        return -1002;
    }
    if (f->masked != expect_mask)
        return -1002;
    size_t h = 2;
    uint64_t len = b1 & 0x7f;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)p[2] << 8 | p[3];
        if (len < 126)
            return -1002;
        h = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        if (len >> 63 || len <= 0xffff)
            return -1002;
        h = 10;
    }
    if (f->masked) {
        if (n < h + 4)
            return 0;
        memcpy(f->key, p + h, 4);
        h += 4;
    }
    f->len = len;
    return (int)h;
}

size_t gorc__ws_put_header(uint8_t *h, int op, bool fin, uint64_t len, const uint8_t *key)
{
    size_t n = 2;
    h[0] = (uint8_t)((fin ? 0x80 : 0) | (op & 0x7f)); /* RSV bits may come with op */
    uint8_t m = key ? 0x80 : 0;
    if (len < 126) {
        h[1] = (uint8_t)(m | len);
    } else if (len <= 0xffff) {
        h[1] = m | 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        n = 4;
    } else {
        h[1] = m | 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (key) {
        memcpy(h + n, key, 4);
        n += 4;
    }
    return n;
}

void gorc__ws_mask(uint8_t *p, size_t n, const uint8_t key[4], uint8_t *pos)
{
    size_t i = 0;
    unsigned k = *pos & 3;
    /* Word at a time once the key is rotated to the current position. */
    uint8_t rot[8];
    for (int j = 0; j < 8; j++)
        rot[j] = key[(k + (unsigned)j) & 3];
    uint64_t w;
    memcpy(&w, rot, 8);
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= w;
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] ^= rot[i & 7];
    *pos = (uint8_t)((k + n) & 3);
}

bool gorc__ws_utf8_feed(gorc__ws_utf8 *u, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (u->need) {
            if (c < u->lo || c > u->hi)
                return false;
            u->need--;
            u->lo = 0x80;
            u->hi = 0xbf;
            i++;
            continue;
        }
        if (c < 0x80) {
            /* ASCII runs, eight bytes at a time. */
            while (i + 8 <= n) {
                uint64_t v;
                memcpy(&v, p + i, 8);
                if (v & 0x8080808080808080ull)
                    break;
                i += 8;
            }
            while (i < n && p[i] < 0x80)
                i++;
            continue;
        }
        u->lo = 0x80;
        u->hi = 0xbf;
        if (c >= 0xc2 && c <= 0xdf) {
            u->need = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            u->need = 2;
            if (c == 0xe0)
                u->lo = 0xa0; /* overlong */
            else if (c == 0xed)
                u->hi = 0x9f; /* surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            u->need = 3;
            if (c == 0xf0)
                u->lo = 0x90; /* overlong */
            else if (c == 0xf4)
                u->hi = 0x8f; /* past U+10FFFF */
        } else {
            return false; /* 0x80..0xc1 (continuation, overlong lead), 0xf5..0xff */
        }
        i++;
    }
    return true;
}

bool gorc__ws_close_code_ok(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

int gorc__ws_parse_close(const uint8_t *p, size_t n, int *code)
{
    if (n == 0) {
        *code = 1005;
        return 0;
    }
    if (n == 1)
        return -1002;
    int c = p[0] << 8 | p[1];
    if (!gorc__ws_close_code_ok(c))
        return -1002;
    gorc__ws_utf8 u = {0};
    if (!gorc__ws_utf8_feed(&u, p + 2, n - 2) || !gorc__ws_utf8_done(&u))
        return -1007;
    *code = c;
    return 0;
}

/* ---- SHA-1 (FIPS 180-4), just enough for the accept key ---- */

static uint32_t rol(uint32_t x, int s)
{
    return x << s | x >> (32 - s);
}

static void sha1_block(uint32_t h[5], const uint8_t *b)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
               (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (bb & c) | (~bb & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = bb ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (bb & c) | (bb & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = bb ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(bb, 30);
        bb = a;
        a = t;
    }
    h[0] += a;
    h[1] += bb;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static void sha1(const uint8_t *p, size_t n, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        sha1_block(h, p + i);
    uint8_t last[128] = {0};
    size_t rest = n - i;
    memcpy(last, p + i, rest);
    last[rest] = 0x80;
    size_t blocks = rest + 9 > 64 ? 2 : 1;
    uint64_t bits = (uint64_t)n * 8;
    for (int j = 0; j < 8; j++)
        last[blocks * 64 - 1 - (size_t)j] = (uint8_t)(bits >> (8 * j));
    for (size_t j = 0; j < blocks; j++)
        sha1_block(h, last + 64 * j);
    for (int j = 0; j < 5; j++) {
        out[4 * j] = (uint8_t)(h[j] >> 24);
        out[4 * j + 1] = (uint8_t)(h[j] >> 16);
        out[4 * j + 2] = (uint8_t)(h[j] >> 8);
        out[4 * j + 3] = (uint8_t)h[j];
    }
}

size_t gorc__ws_base64(const uint8_t *p, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = 0;
    return o;
}

void gorc__ws_accept_key(const char *key, size_t n, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t buf[128];
    uint8_t dig[20];
    if (n > sizeof buf - (sizeof guid - 1))
        n = sizeof buf - (sizeof guid - 1); /* callers check the key's length first */
    memcpy(buf, key, n);
    memcpy(buf + n, guid, sizeof guid - 1);
    sha1(buf, n + sizeof guid - 1, dig);
    gorc__ws_base64(dig, 20, out);
}
