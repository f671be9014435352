/*
 * gorc_http_debug.h - the debugging endpoints of a gorc HTTP server: Go's net/http/pprof
 * handlers, a Prometheus /metrics handler, and the live runtime page with the execution-trace
 * downloads (Go: the pages of net/http/pprof and the execution trace endpoint; tokio-console's
 * task table). Mount each set where you like; docs/observability.md shows how go tool pprof,
 * Prometheus and a browser use them.
 *
 * gorc_http_pprof_register does the usual /debug/pprof/ set. gorc_http_debug_mount registers,
 * under a prefix such as "/debug/" (it does not register the pprof set; mount that too, as
 * make demo does, for the page's profile links):
 *
 *   GET {prefix}                  the live page: charts of requests/s, latency percentiles,
 *                                 goroutines and scheduling latency drawn in the page (no
 *                                 external scripts), a goroutine table with each one's details
 *                                 on click, and download links
 *   GET {prefix}runtime.json      the figures the charts draw (cumulative counters and
 *                                 histograms; the page takes differences between polls)
 *   GET {prefix}goroutines.json   the goroutine table
 *   GET {prefix}goroutine?id=N    one goroutine in words, as gorc_dump prints it
 *   GET {prefix}trace?seconds=N   an execution trace of the next N seconds (default 1, at most
 *                                 60) as Chrome trace-event JSON, for Perfetto
 *   GET {prefix}flight            a snapshot of the running flight recorder, the same way;
 *                                 ?saved=1 the one kept at the last request slower than the
 *                                 server's flight_slow_request
 *
 * Request rates and latencies are those of every gorc HTTP server in the process, counted from
 * the first mount on. Mounting also turns on the bookkeeping of time in state (as a leak mark
 * does) and feeds the page's scheduling-latency histogram from the runtime's sampled
 * measurement (one readying in 32; docs/observability.md, "Metrics").
 * docs/observability.md, "Live page", has the rest.
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

/* Register the debug handlers on m under prefix, which must start and end with '/'. Returns
 * 0, -EINVAL (NULL m or prefix, a prefix not of the form "/.../"), -ENOMEM, or -EEXIST (as
 * gorc_http_mux_handle: a pattern is taken). Go: importing net/http/pprof. */
GORC_API int gorc_http_debug_mount(gorc_http_mux *m, const char *prefix);

/* The handlers, to register by hand (arg is unused). Each answers 405 to anything but GET and
 * HEAD. gorc_http_debug_trace answers 500 when a trace or the flight recorder already
 * records, gorc_http_debug_flight 404 when the recorder is not running (or nothing was saved).
 * Go: pprof.Index, pprof.Trace. */
GORC_API void gorc_http_debug_page(gorc_http_rw *w, gorc_http_request *r, void *arg);
GORC_API void gorc_http_debug_runtime(gorc_http_rw *w, gorc_http_request *r, void *arg);
GORC_API void gorc_http_debug_goroutines(gorc_http_rw *w, gorc_http_request *r, void *arg);
GORC_API void gorc_http_debug_goroutine(gorc_http_rw *w, gorc_http_request *r, void *arg);
GORC_API void gorc_http_debug_trace(gorc_http_rw *w, gorc_http_request *r, void *arg);
GORC_API void gorc_http_debug_flight(gorc_http_rw *w, gorc_http_request *r, void *arg);

#ifdef __cplusplus
}
#endif

#endif /* GORC_HTTP_DEBUG_H */
