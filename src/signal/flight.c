/*
 * flight.c - a flight-recorder snapshot on a signal (gorc_flight_recorder_dump_on_signal):
 * `kill -USR2 <pid>` on a misbehaving server leaves the last seconds of its execution trace in
 * a file, without an HTTP endpoint and without stopping it.
 *
 * One goroutine per call (a system one, as the signal package's own) receives the signal from a
 * channel (gorc_signal_notify, so the handler itself does nothing but record) and writes a
 * snapshot, converted to Chrome JSON in this process so that function names resolve, to
 * DIR/gorc-flight-PID-N.json, N counting from 1. The file is written with the P handed off
 * (gorc_blocking_enter), created with O_EXCL and renamed into place, so a reader never sees half a
 * snapshot. When the recorder is not running the signal is ignored and a line says so on stderr.
 */
#include "gorc_signal.h"
#include "gorc_trace.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct dumper {
    gorc_chan *c;
    char dir[PATH_MAX - 64];
} dumper;

static _Atomic unsigned dumps;

static int write_file(const char *dir, const char *json, size_t len, char *path, size_t n)
{
    unsigned k = atomic_fetch_add(&dumps, 1) + 1;
    char tmp[PATH_MAX + 8];
    snprintf(path, n, "%s/gorc-flight-%d-%u.json", dir, (int)getpid(), k);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    gorc_blocking_enter();
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
    } else {
        for (size_t off = 0; off < len && rc == 0;) {
            ssize_t w = write(fd, json + off, len - off);
            if (w < 0 && errno != EINTR)
                rc = -errno;
            else if (w > 0)
                off += (size_t)w;
        }
        if (close(fd) != 0 && rc == 0)
            rc = -errno;
        if (rc == 0 && rename(tmp, path) != 0)
            rc = -errno;
        if (rc != 0)
            unlink(tmp);
    }
    gorc_blocking_exit();
    return rc;
}

static void dump_loop(void *arg)
{
    dumper *d = arg;
    int sig;
    while (gorc_chan_recv(d->c, &sig) == 0) {
        void *bin;
        size_t n;
        int rc = gorc_flight_recorder_snapshot(&bin, &n);
        if (rc != 0) {
            fprintf(stderr, "gorc: signal %d: no flight-recorder snapshot: %s\n", sig,
                    gorc_strerror(rc));
            continue;
        }
        char *json;
        size_t len;
        rc = gorc_trace_json(bin, n, &json, &len);
        free(bin);
        char path[PATH_MAX];
        if (rc == 0) {
            rc = write_file(d->dir, json, len, path, sizeof path);
            free(json);
        }
        if (rc != 0)
            fprintf(stderr, "gorc: signal %d: flight-recorder snapshot not written: %s\n", sig,
                    gorc_strerror(rc));
        else
            fprintf(stderr, "gorc: signal %d: flight-recorder snapshot in %s\n", sig, path);
    }
}

int gorc_flight_recorder_dump_on_signal(int sig, const char *dir)
{
    if (dir == NULL || *dir == 0 || strlen(dir) >= sizeof((dumper *)0)->dir)
        return -EINVAL;
    dumper *d = calloc(1, sizeof *d);
    if (d == NULL)
        return -ENOMEM;
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    int rc = gorc_chan_new(&d->c, sizeof(int), 1);
    if (rc == 0 && (rc = gorc_signal_notify(d->c, &sig, 1)) != 0)
        gorc_chan_release(d->c);
    /* The runtime's own goroutine: leak checks and gorc_count's waiters need not know it. */
    if (rc == 0 &&
        (rc = gorc__go_from(dump_loop, d, (uintptr_t)__builtin_return_address(0), true)) != 0) {
        gorc_signal_stop(d->c);
        gorc_chan_release(d->c);
    }
    if (rc != 0)
        free(d);
    return rc;
}
