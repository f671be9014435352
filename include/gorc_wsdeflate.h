/*
 * gorc_wsdeflate.h - permessage-deflate (RFC 7692) for gorc's WebSocket connections, on zlib.
 *
 * Its own library, libgorc_wsdeflate (pkg-config gorc_wsdeflate; it links zlib), so a program
 * that does not compress does not link zlib. It plugs into the core through the documented
 * extension hook (gorc_ws_extension in gorc_websocket.h):
 *
 *     gorc_ws_extension *deflate;
 *     gorc_wsdeflate_new(&deflate, NULL);
 *     gorc_ws_opts o = {.extension = deflate};   // offered (client) or accepted (server)
 *
 * Context takeover (each direction's compressor keeping its window across messages) is
 * negotiated as RFC 7692 §7.1 says: server_no_context_takeover, client_no_context_takeover,
 * server_max_window_bits, client_max_window_bits. See docs/websocket.md.
 */
#ifndef GORC_WSDEFLATE_H
#define GORC_WSDEFLATE_H

#include "gorc_websocket.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gorc_wsdeflate_opts {
    int level;       /* zlib level 1..9 (0: zlib's default, 6) */
    size_t min_size; /* messages shorter than this go out uncompressed (0: 64 bytes) */
    /* Reset this side's compressor after every message (and say so in the handshake): no
     * 256 KiB compressor kept per idle connection, at some cost in ratio. */
    bool no_context_takeover;
    /* Ask the peer to reset its compressor after every message too. */
    bool peer_no_context_takeover;
    int max_window_bits; /* this side's compressor window, 9..15 (0: 15) */
} gorc_wsdeflate_opts;

/* Make the permessage-deflate extension with opts (NULL: defaults), to put in
 * gorc_ws_opts.extension; it must outlive every connection using it. Returns 0 and *out,
 * -EINVAL (NULL out, a level outside 0..9, a window outside 9..15), -ENOMEM.
 * Go: gorilla/websocket's EnableCompression (which has no context takeover at all). */
GORC_API int gorc_wsdeflate_new(gorc_ws_extension **out, const gorc_wsdeflate_opts *opts);

/* Free it (NULL is ignored) once no connection uses it. */
GORC_API void gorc_wsdeflate_free(gorc_ws_extension *x);

#ifdef __cplusplus
}
#endif
#endif /* GORC_WSDEFLATE_H */
