/*
 * gorc_http_debug.h - the live runtime page and the trace downloads, for any gorc HTTP server
 * (Go: the pages of net/http/pprof and the execution trace endpoint; tokio-console's task
 * table).
 *
 * gorc_http_debug_mount registers, under a prefix such as "/debug/":
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
 * does) and of scheduling latency: a clock read per park and per wake-up.
 * docs/observability.md, "Live page", has the rest.
 */
#ifndef GORC_HTTP_DEBUG_H
#define GORC_HTTP_DEBUG_H

#include "gorc_http.h"

#ifdef __cplusplus
extern "C" {
#endif

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
