/*
 * gorc_trace.h - the execution tracer, the flight recorder and user annotations (Go's
 * runtime/trace and Go 1.25's trace.FlightRecorder).
 *
 * While a trace or the flight recorder records, every scheduling event - goroutine creation,
 * start, stop, block (with its wait reason and object), unblock (with its waker), end; a thread
 * taking or giving up a P; declared blocking calls; poller waits; timers; the monitor's retakes;
 * user tasks, regions and logs - goes to the recording thread's own buffer. The recorded bytes
 * are gorc's binary trace; gorc_trace_json turns them into Chrome trace-event JSON, which
 * Perfetto (ui.perfetto.dev) and chrome://tracing open. docs/observability.md describes the
 * tracks, the costs and the file format.
 *
 * Only one of the two records at a time.
 */
#ifndef GORC_TRACE_H
#define GORC_TRACE_H

#include "gorc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Start tracing into fd (a file, a pipe): a thread of the tracer writes the binary trace as
 * buffers fill, until gorc_trace_stop. The descriptor stays the caller's. Returns 0, -EBADF
 * (negative fd), -EBUSY (a trace or the flight recorder is recording), -EAGAIN (no thread for
 * the writer), or the error of writing the header (-EPIPE, -ENOSPC, ...). Go: trace.Start. */
GORC_API int gorc_trace_start(int fd);

/* Stop the trace and write what is left; returns when everything is written. Returns 0, the
 * first write error seen since gorc_trace_start (-EPIPE, -ENOSPC, ...), or -EINVAL if no
 * trace is running. Go: trace.Stop. */
GORC_API int gorc_trace_stop(void);

/* Whether events are being recorded now (a trace or the flight recorder). Go:
 * trace.IsEnabled. */
GORC_API bool gorc_trace_enabled(void);

/* Flight recorder settings. Zero fields mean the defaults. */
typedef struct gorc_flight_recorder_opts {
    int64_t min_age;  /* keep at least this much history, ns (default 10 s). Go: MinAge */
    size_t max_bytes; /* but never more than this (default 16 MiB); wins over min_age. Go:
                       * MaxBytes */
} gorc_flight_recorder_opts;

/* Start recording into memory, keeping the last min_age of events within max_bytes. Returns
 * 0, -EINVAL (negative min_age, max_bytes under 128 KiB), -EBUSY (already recording).
 * Go: trace.NewFlightRecorder + FlightRecorder.Start. */
GORC_API int gorc_flight_recorder_start(const gorc_flight_recorder_opts *opts);

/* Stop it and free its history. Returns 0 or -EINVAL if it is not running.
 * Go: FlightRecorder.Stop. */
GORC_API int gorc_flight_recorder_stop(void);

/* Whether the flight recorder is running. Go: FlightRecorder.Enabled. */
GORC_API bool gorc_flight_recorder_enabled(void);

/* A snapshot of the recorder's window as a binary trace in a malloc'd buffer (free it); the
 * recorder goes on. Returns 0, -EINVAL (NULL argument, recorder not running), -ENOMEM.
 * Go: FlightRecorder.WriteTo into a buffer. */
GORC_API int gorc_flight_recorder_snapshot(void **out, size_t *len);

/* The same written to fd (the P is handed off while writing). Returns 0, -EBADF, -EINVAL
 * (recorder not running), -ENOMEM, or write(2)'s error (-EPIPE, -ENOSPC, ...).
 * Go: FlightRecorder.WriteTo. */
GORC_API int gorc_flight_recorder_write_to(int fd);

/* On each arrival of signal sig (one of those gorc_signal_notify accepts, e.g. SIGUSR2), write
 * a snapshot of the running flight recorder as Chrome JSON to dir/gorc-flight-PID-N.json and
 * say so on stderr. The goroutine that does it lives as long as the process. Returns 0,
 * -EINVAL (NULL or over-long dir, a signal gorc_signal_notify refuses), -ENOMEM, -EMFILE,
 * -ENFILE, -EAGAIN (as gorc_signal_notify). Go: a SIGUSR handler calling
 * FlightRecorder.WriteTo. */
GORC_API int gorc_flight_recorder_dump_on_signal(int sig, const char *dir);

/* Convert a binary trace (from gorc_trace_start's descriptor or a snapshot) to Chrome
 * trace-event JSON in a malloc'd, NUL-terminated buffer. Function names are looked up in this
 * process, so convert in the process that recorded. Returns 0, -EINVAL (NULL argument, not a
 * gorc trace or a damaged one), -ENOMEM. Go: what `go tool trace` shows. */
GORC_API int gorc_trace_json(const void *trace, size_t n, char **json, size_t *len);

/* User annotations; each costs one branch while nothing records.
 *
 * A task is a logical operation (a request) that regions and logs refer to by its id; parent
 * 0 for none. Returns the task's id (unique, also while nothing records). Go: trace.NewTask. */
GORC_API uint64_t gorc_trace_task_new(uint64_t parent, const char *type);
/* Go: Task.End. */
GORC_API void gorc_trace_task_end(uint64_t task);
/* A region of the calling goroutine's time, nested as calls are; begin and end on the same
 * goroutine with the same type. task 0 for none. Go: trace.StartRegion, Region.End. */
GORC_API void gorc_trace_region_begin(uint64_t task, const char *type);
GORC_API void gorc_trace_region_end(uint64_t task, const char *type);
/* A message with a category, attached to the goroutine and the task. Go: trace.Log. */
GORC_API void gorc_trace_log(uint64_t task, const char *category, const char *message);

#ifdef __cplusplus
}
#endif

#endif /* GORC_TRACE_H */
