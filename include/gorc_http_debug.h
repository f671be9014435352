/*
 * gorc_http_debug.h - the debugging endpoints of a gorc HTTP server: Go's net/http/pprof
 * handlers and a Prometheus /metrics handler.
 *
 * Mount them where you like (gorc_http_pprof_register does the usual /debug/pprof/ set);
 * docs/observability.md shows how go tool pprof and Prometheus use them.
 */
#ifndef GORC_HTTP_DEBUG_H
#define GORC_HTTP_DEBUG_H

#include "gorc_debug.h"
#include "gorc_http.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Register the pprof handlers on m under prefix (NULL: "/debug/pprof"; no trailing slash):
 * prefix/ (an index), prefix/profile, prefix/goroutine, prefix/block, prefix/mutex, and
 * prefix/cmdline. Returns 0, -EINVAL (NULL m, a prefix that does not start with '/' or is too
 * long), or an error of gorc_http_mux_handle (-EEXIST, -ENOMEM). Go: import
 * _ "net/http/pprof". */
GORC_API int gorc_http_pprof_register(gorc_http_mux *m, const char *prefix);

/* The index page: a list of the profiles with links. Go: pprof.Index. */
GORC_API void gorc_http_pprof_index(gorc_http_rw *w, gorc_http_request *r, void *arg);

/* A CPU profile of ?seconds=N (default 30, at most 3600) as profile.proto: 400 for a bad
 * seconds value, 500 when a profile is already running; ends early, without a profile, if the
 * client goes away. Go: pprof.Profile. */
GORC_API void gorc_http_pprof_profile(gorc_http_rw *w, gorc_http_request *r, void *arg);

/* The profile named by arg (a const char *: "goroutine", "block", "mutex") with ?debug=0|1|2
 * as gorc_profile_write writes it: 404 for an unknown name, 400 for a bad debug value.
 * Go: pprof.Handler(name). */
GORC_API void gorc_http_pprof_named(gorc_http_rw *w, gorc_http_request *r, void *arg);

/* The program's command line, NUL-separated arguments as text. Go: pprof.Cmdline. */
GORC_API void gorc_http_pprof_cmdline(gorc_http_rw *w, gorc_http_request *r, void *arg);

/* The runtime metrics (gorc_metrics_read) and, when s is not NULL, server s's counters in
 * Prometheus' text format 0.0.4: requests by method and status class, a request duration
 * histogram, bytes in and out, open, active and accepted connections, rejected requests by
 * status, timeouts. *text is malloc'd and NUL-terminated (free it), *len its length. Returns
 * 0, -EINVAL (NULL text or len), -ENOMEM. */
GORC_API int gorc_http_metrics_text(gorc_http_server *s, char **text, size_t *len);

/* Serve gorc_http_metrics_text for the server given as arg (or NULL: runtime metrics only);
 * 500 when out of memory. Mount it as "GET /metrics" after gorc_http_server_new.
 * Go: promhttp.Handler. */
GORC_API void gorc_http_metrics_handler(gorc_http_rw *w, gorc_http_request *r, void *server);

#ifdef __cplusplus
}
#endif

#endif /* GORC_HTTP_DEBUG_H */
