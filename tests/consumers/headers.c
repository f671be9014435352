/*
 * headers.c - every public header in one translation unit, compiled by scripts/lint as C11
 * (-pedantic) and as C++17 and C++20 with g++ and clang++. It also uses the embeddable types
 * the way a program would (zero-initialised members of a struct or class), so a header change
 * that breaks C++ users - an _Atomic, a designated initialiser, a missing extern "C" - fails
 * the lint step rather than a user's build.
 */
#include <gorc.h>
#include <gorc_bufio.h>
#include <gorc_context.h>
#include <gorc_debug.h>
#include <gorc_http.h>
#include <gorc_http2.h>
#include <gorc_http_debug.h>
#include <gorc_net.h>
#include <gorc_restart.h>
#include <gorc_signal.h>
#include <gorc_sim.h>
#include <gorc_tls.h>
#include <gorc_symbolize.h>
#include <gorc_trace.h>
#include <gorc_version.h>
#include <gorc_websocket.h>
#include <gorc_wsdeflate.h>

#ifdef __cplusplus
struct service {
    gorc_mutex mu{};
    gorc_rwmutex rw{};
    gorc_waitgroup wg{};
    gorc_once once{};
    gorc_cond cond{};
    gorc_sema sema{};
};
static_assert(GORC_VERSION_NUMBER > 0, "version number");
#else
struct service {
    gorc_mutex mu;
    gorc_rwmutex rw;
    gorc_waitgroup wg;
    gorc_once once;
    gorc_cond cond;
    gorc_sema sema;
};
_Static_assert(GORC_VERSION_NUMBER > 0, "version number");
#endif

/* Taking the address of a few functions of each header checks that the declarations are
 * usable as written (linkage, attributes), without running anything. */
typedef void (*headers_fnptr)(void);
headers_fnptr headers_used[] = {
    (headers_fnptr)&gorc_main,
    (headers_fnptr)&gorc_strerror,
    (headers_fnptr)&gorc_tcp_dial,
    (headers_fnptr)&gorc_http_rw_write,
    (headers_fnptr)&gorc_http_client_get,
    (headers_fnptr)&gorc_ctx_with_cancel,
    (headers_fnptr)&gorc_ws_upgrade,
    (headers_fnptr)&gorc_sim_run,
};

int headers_service_size(void)
{
    struct service s;
    (void)s;
    return (int)sizeof s;
}
