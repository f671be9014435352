/*
 * wsdeflate.c - permessage-deflate (RFC 7692) on zlib: libgorc_wsdeflate, outside the core.
 *
 * It uses only the core's public extension hook (gorc_ws_extension): the core negotiates
 * the extension by name, sets RSV1 on the messages this file encodes, checks that only a
 * message's first frame carries it, and hands whole messages here. So the core never links
 * zlib.
 *
 * A message is compressed with raw deflate and Z_SYNC_FLUSH, and the final empty stored
 * block's 00 00 FF FF is removed (RFC 7692 §7.2.1); the receiver appends it again before
 * inflating (§7.2.2). With context takeover a side's compressor keeps its window from
 * message to message, and so must the peer's decompressor; "no context takeover" makes a
 * side reset after each message. This side's compressor is made at its first message (an
 * idle connection that never sent a large message holds none) and, without context
 * takeover, freed after each message: a deflate state is about 256 KiB at window 15 and
 * zlib's default memory level, too much to keep for every idle connection. The inflater is
 * also made on first use and keeps its state (it must, unless the peer resets).
 *
 * zlib cannot make a raw deflate stream with an 8-bit window (it silently uses 9), so an
 * offer or response that limits this side's compressor to 8 bits is declined / refused.
 */
#include "gorc_wsdeflate.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef struct cfg {
    gorc_ws_extension x; /* first: a gorc_ws_extension * converts back */
    gorc_wsdeflate_opts o;
} cfg;

typedef struct state {
    const cfg *c;
    bool reset_out; /* reset our compressor after each message */
    int out_bits;   /* our compressor's window */
    z_stream d, i;
    bool d_on, i_on;
} state;

/* ---- negotiation ---- */

typedef struct params {
    bool server_nct, client_nct;
    int server_bits, client_bits; /* 0 absent, -1 present without a value, else 8..15 */
} params;

/* Parse "a; b=1; c" (RFC 7692 §7.1). False for an unknown or repeated parameter or a bad
 * value. allow_empty_client_bits: client_max_window_bits may come without a value (in an
 * offer only). */
static bool parse(const char *s, params *p, bool offer)
{
    memset(p, 0, sizeof *p);
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == ';')
            s++;
        if (*s == 0)
            break;
        size_t n = strcspn(s, "=; \t");
        const char *v = NULL;
        size_t vn = 0;
        const char *e = s + n;
        while (*e == ' ' || *e == '\t')
            e++;
        if (*e == '=') {
            v = e + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if (*v == '"')
                v++;
            vn = strspn(v, "0123456789");
            e = v + vn;
            if (*e == '"')
                e++;
        }
        int bits = -1;
        if (v) {
            if (vn == 0 || vn > 2)
                return false;
            bits = atoi(v);
            if (bits < 8 || bits > 15)
                return false;
        }
        if (n == 26 && strncmp(s, "server_no_context_takeover", n) == 0 && !v && !p->server_nct)
            p->server_nct = true;
        else if (n == 26 && strncmp(s, "client_no_context_takeover", n) == 0 && !v &&
                 !p->client_nct)
            p->client_nct = true;
        else if (n == 22 && strncmp(s, "server_max_window_bits", n) == 0 && v && !p->server_bits)
            p->server_bits = bits;
        else if (n == 22 && strncmp(s, "client_max_window_bits", n) == 0 && !p->client_bits &&
                 (v || offer))
            p->client_bits = bits;
        else
            return false;
        s = e;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s && *s != ';')
            return false;
    }
    return true;
}

static state *state_new(const cfg *c, bool reset_out, int out_bits)
{
    state *st = calloc(1, sizeof *st);
    if (st) {
        st->c = c;
        st->reset_out = reset_out;
        st->out_bits = out_bits;
    }
    return st;
}

static int my_bits(const cfg *c)
{
    return c->o.max_window_bits ? c->o.max_window_bits : 15;
}

static int add(char *buf, size_t n, size_t *len, const char *s)
{
    size_t k = strlen(s);
    if (*len + k + 3 > n)
        return -1;
    if (*len) {
        memcpy(buf + *len, "; ", 2);
        *len += 2;
    }
    memcpy(buf + *len, s, k + 1);
    *len += k;
    return 0;
}

static int accept_offer(void *arg, const char *prm, char *resp, size_t n, void **out)
{
    const cfg *c = arg;
    params p;
    if (!parse(prm, &p, true))
        return 0; /* an offer we do not understand: the next one, or none */
    int bits = my_bits(c);
    if (p.server_bits > 0 && p.server_bits < bits)
        bits = p.server_bits;
    if (bits < 9)
        return 0;
    bool reset = c->o.no_context_takeover || p.server_nct;
    size_t len = 0;
    resp[0] = 0;
    if (reset && add(resp, n, &len, "server_no_context_takeover") < 0)
        return -ENOMEM;
    if (c->o.peer_no_context_takeover || p.client_nct)
        if (add(resp, n, &len, "client_no_context_takeover") < 0)
            return -ENOMEM;
    if (bits < 15 || p.server_bits > 0) {
        char b[32] = "server_max_window_bits=15";
        b[23] = (char)('0' + bits / 10);
        b[24] = (char)('0' + bits % 10);
        if (add(resp, n, &len, b) < 0)
            return -ENOMEM;
    }
    state *st = state_new(c, reset, bits);
    if (st == NULL)
        return -ENOMEM;
    *out = st;
    return 1;
}

static int make_offer(void *arg, char *buf, size_t n)
{
    const cfg *c = arg;
    size_t len = 0;
    buf[0] = 0;
    if (add(buf, n, &len, "client_max_window_bits") < 0)
        return -ENOMEM;
    if (c->o.no_context_takeover && add(buf, n, &len, "client_no_context_takeover") < 0)
        return -ENOMEM;
    if (c->o.peer_no_context_takeover && add(buf, n, &len, "server_no_context_takeover") < 0)
        return -ENOMEM;
    return 0;
}

static int confirm(void *arg, const char *prm, void **out)
{
    const cfg *c = arg;
    params p;
    if (!parse(prm, &p, false))
        return -EINVAL;
    int bits = my_bits(c);
    if (p.client_bits > 0 && p.client_bits < bits)
        bits = p.client_bits;
    if (bits < 9)
        return -EINVAL;
    state *st = state_new(c, c->o.no_context_takeover || p.client_nct, bits);
    if (st == NULL)
        return -ENOMEM;
    *out = st;
    return 0;
}

/* ---- messages ---- */

static int encode(void *arg, const void *p, size_t n, void **out, size_t *outn)
{
    state *st = arg;
    size_t min = st->c->o.min_size ? st->c->o.min_size : 64;
    if (n < min)
        return 0;
    if (!st->d_on) {
        int lvl = st->c->o.level ? st->c->o.level : Z_DEFAULT_COMPRESSION;
        if (deflateInit2(&st->d, lvl, Z_DEFLATED, -st->out_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return -ENOMEM;
        st->d_on = true;
    }
    size_t cap = deflateBound(&st->d, (uLong)n) + 16;
    unsigned char *b = malloc(cap);
    if (b == NULL)
        return -ENOMEM;
    st->d.next_in = (Bytef *)p;
    st->d.avail_in = (uInt)n;
    st->d.next_out = b;
    st->d.avail_out = (uInt)cap;
    int zr = deflate(&st->d, Z_SYNC_FLUSH);
    size_t len = cap - st->d.avail_out;
    if (zr != Z_OK || st->d.avail_in != 0 || len < 4 || memcmp(b + len - 4, "\0\0\xff\xff", 4)) {
        free(b);
        deflateEnd(&st->d);
        st->d_on = false;
        return -ENOMEM; /* cannot happen with deflateBound's room */
    }
    len -= 4;
    if (st->reset_out) {
        deflateEnd(&st->d); /* no window to keep: keep no state either */
        st->d_on = false;
        if (len >= n) { /* it did not shrink, and nothing depends on it: send it plain */
            free(b);
            return 0;
        }
    }
    *out = b;
    *outn = len;
    return 1;
}

/* Double the inflate output buffer *b of *cap bytes, to at most max + 1 (one byte past the
 * limit tells an over-long message). On failure *b is freed: GORC_WS_ETOOBIG past max,
 * -ENOMEM. */
static int grow_out(unsigned char **b, size_t *cap, size_t max)
{
    if (*cap > max) {
        free(*b);
        return GORC_WS_ETOOBIG;
    }
    size_t ncap = *cap * 2 > max + 1 ? max + 1 : *cap * 2;
    unsigned char *nb = realloc(*b, ncap);
    if (nb == NULL) {
        free(*b);
        return -ENOMEM;
    }
    *b = nb;
    *cap = ncap;
    return 0;
}

static int decode(void *arg, const void *p, size_t n, size_t max, void **out, size_t *outn)
{
    state *st = arg;
    if (!st->i_on) {
        if (inflateInit2(&st->i, -15) != Z_OK)
            return -ENOMEM;
        st->i_on = true;
    }
    size_t cap = n * 4 + 64, len = 0;
    if (cap > max + 1)
        cap = max + 1;
    unsigned char *b = malloc(cap);
    if (b == NULL)
        return -ENOMEM;
    static const unsigned char tail[4] = {0, 0, 0xff, 0xff};
    for (int part = 0; part < 2; part++) {
        st->i.next_in = part ? (Bytef *)tail : (Bytef *)p;
        st->i.avail_in = part ? 4 : (uInt)n;
        while (st->i.avail_in > 0) {
            int gr = len == cap ? grow_out(&b, &cap, max) : 0;
            if (gr < 0)
                return gr;
            st->i.next_out = b + len;
            st->i.avail_out = (uInt)(cap - len);
            int zr = inflate(&st->i, Z_SYNC_FLUSH);
            len = cap - st->i.avail_out;
            if (zr == Z_BUF_ERROR && st->i.avail_out > 0)
                break;
            if (zr != Z_OK && zr != Z_BUF_ERROR) {
                free(b);
                return GORC_WS_EBADDATA; /* also Z_STREAM_END: a final block is not allowed */
            }
        }
    }
    /* Output that filled the buffer exactly may have more behind it. */
    while (len == cap) {
        int gr = grow_out(&b, &cap, max);
        if (gr < 0)
            return gr;
        st->i.next_out = b + len;
        st->i.avail_out = (uInt)(cap - len);
        int zr = inflate(&st->i, Z_SYNC_FLUSH);
        len = cap - st->i.avail_out;
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            free(b);
            return GORC_WS_EBADDATA;
        }
    }
    if (len > max) {
        free(b);
        return GORC_WS_ETOOBIG;
    }
    *out = b;
    *outn = len;
    return 0;
}

static void state_free(void *arg)
{
    state *st = arg;
    if (st->d_on)
        deflateEnd(&st->d);
    if (st->i_on)
        inflateEnd(&st->i);
    free(st);
}

int gorc_wsdeflate_new(gorc_ws_extension **out, const gorc_wsdeflate_opts *o)
{
    static const gorc_wsdeflate_opts none;
    if (o == NULL)
        o = &none;
    if (out == NULL || o->level < 0 || o->level > 9 ||
        (o->max_window_bits != 0 && (o->max_window_bits < 9 || o->max_window_bits > 15)))
        return -EINVAL;
    cfg *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    c->o = *o;
    c->x.name = "permessage-deflate";
    c->x.arg = c;
    c->x.accept = accept_offer;
    c->x.offer = make_offer;
    c->x.confirm = confirm;
    c->x.encode = encode;
    c->x.decode = decode;
    c->x.free = state_free;
    *out = &c->x;
    return 0;
}

void gorc_wsdeflate_free(gorc_ws_extension *x)
{
    free(x); /* the cfg starts with it */
}
