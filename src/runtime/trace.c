/*
 * trace.c - the execution tracer and the flight recorder: per-thread event buffers, the trace
 * clock, user tasks, regions and logs. This is Go's runtime/trace.go (and, for the flight
 * recorder, Go 1.25's trace.FlightRecorder); trace_json.c turns what it records into a file
 * trace viewers open.
 *
 * Buffers. Every thread that records (each M, the monitor, foreign threads) owns one buffer
 * and writes its events there without a lock or an atomic read-modify-write: an event is four
 * plain stores and a release store of the chunk's count. Go's tracer since 1.22 keeps its
 * buffers per M rather than per P for the same reason as here: events happen where there is no
 * P (a blocking call, the poller, the monitor retaking a P), and an M's buffer has exactly one
 * writer at all times, while a P's owner changes under the monitor's hands. A buffer is a
 * chunk of CHUNK_EVENTS events; a full chunk goes, under the trace lock, to the list of full
 * chunks and the thread takes a fresh one (from the free list, else malloc). That lock is
 * taken once per 2,047 events.
 *
 * Sessions. gorc__trace_gen is 0 when nothing records, else the number of the session: a trace
 * (gorc_trace_start) or the flight recorder. A thread whose buffer belongs to an older session
 * empties its chunk (under the lock) before recording. Stopping never frees a chunk a thread
 * may be writing to: a thread that read gen just before it changed finishes its event into a
 * chunk that is emptied at the next session.
 *
 * Trace: a writer thread takes full chunks off the list and write(2)s them to the caller's
 * descriptor, so memory stays bounded while a long trace streams. It is woken once per 16
 * chunks, and otherwise looks every 100 ms: waking it for every chunk cost a futex call and a
 * thread switch per 2,047 events (trace-pingpong1 went from 1.72 to 1.46 without them). Flight
 * recorder: full chunks stay in the list, oldest first, and the oldest are recycled while the list
 * holds more than max_bytes or more than min_age of history beyond what a snapshot needs. A
 * snapshot copies the list and each thread's current chunk up to its published count, under the
 * lock; the recording threads go on meanwhile (they wait only if they need a new chunk then).
 *
 * The file (read by trace_json.c): the magic "GORCTRC1", then frames of a 16-byte header
 * {u32 kind, u32 thread, u64 bytes} and a payload: SYNC {u64 ticks, i64 ns} pairs that map the
 * trace clock to gorc_now's, EVENTS (records of trace.h's gorc__tev).
 *
 * The clock. Events are timestamped with the CPU's counter (x86-64 rdtsc where the kernel says
 * the TSC is constant and does not stop, AArch64's CNTVCT_EL0), 10 ns against 24 ns for
 * clock_gettime on the machine this was measured on; elsewhere with CLOCK_MONOTONIC. SYNC
 * frames at the start and the end give the conversion to nanoseconds, so nothing is
 * calibrated at start-up.
 */
#include "runtime/trace.h"
#include "gorc_trace.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#define CHUNK_EVENTS  2047
#define MAX_STRING    1024
#define FRAME_SYNC    1
#define FRAME_EVENTS  2
#define TRACE_MAGIC   "GORCTRC1"
#define DEFAULT_AGE   (10 * GORC_SECOND)
#define DEFAULT_BYTES ((size_t)16 << 20)
#define WRITE_BATCH   16         /* full chunks (1 MiB) that wake the writer thread */
#define WRITE_EVERY   100000000L /* ns: it writes what there is at least this often */

_Atomic uint32_t gorc__trace_gen;

typedef struct chunk {
    struct chunk *next;
    uint32_t tid;       /* the thread (buffer) that wrote it */
    _Atomic uint32_t n; /* events published; written only by the owner */
    uint64_t last;      /* ticks of its last event, set when it becomes full */
    /* 32-byte events at 32-byte offsets: each in one cache line; a chunk is 64 KiB. */
    _Alignas(32) gorc__tev ev[CHUNK_EVENTS];
} chunk;
_Static_assert(sizeof(chunk) == 65536, "a chunk is 64 KiB");

typedef struct gorc__tbuf {
    struct gorc__tbuf *next; /* every buffer, under T.mu */
    _Atomic(chunk *) cur;    /* replaced by the owner under T.mu */
    uint32_t id;             /* fixed */
    uint32_t gen;            /* session of cur's contents; the owner's, under T.mu */
    uint64_t last;           /* the owner's: timestamp of its last event */
} tbuf;

enum { MODE_OFF = 0, MODE_TRACE, MODE_FLIGHT };

/* The trace lock guards every field here and the chunk lists. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the writer thread waits here for full chunks */
    int mode;
    uint32_t lastgen;
    tbuf *bufs;
    uint32_t nbufs;
    chunk *full, *full_tail; /* oldest first */
    size_t nfull;
    chunk *free;
    size_t nfree;
    /* trace */
    int fd, err;
    bool stopping;
    pthread_t writer;
    /* flight recorder */
    int64_t min_age;
    size_t max_chunks;
    uint64_t ticks0;
    int64_t ns0;
} T = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .fd = -1};

static _Thread_local tbuf *tls_buf;
static _Atomic uint64_t taskgen;

/* ---- clock ---- */

static int clock_kind = -1; /* 0 CLOCK_MONOTONIC, 1 counter; set once before recording */

static bool tsc_usable(void)
{
#if defined(__x86_64__)
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return false;
    char line[4096];
    bool ok = false;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "flags", 5) == 0) {
            ok = strstr(line, " constant_tsc") && strstr(line, " nonstop_tsc");
            break;
        }
    }
    fclose(f);
    return ok;
#elif defined(__aarch64__)
    return true;
#else
    return false;
#endif
}

uint64_t gorc__trace_ticks(void)
{
#if defined(__x86_64__)
    if (GORC__LIKELY(clock_kind == 1))
        return __rdtsc();
#elif defined(__aarch64__)
    if (GORC__LIKELY(clock_kind == 1)) {
        uint64_t v;
        __asm__ __volatile__("isb; mrs %0, cntvct_el0" : "=r"(v));
        return v;
    }
#endif
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void clock_init(void)
{
    if (clock_kind < 0)
        clock_kind = tsc_usable() ? 1 : 0;
}

/* ---- chunks (under T.mu) ---- */

static chunk *chunk_get(uint32_t tid)
{
    chunk *c = T.free;
    if (c) {
        T.free = c->next;
        T.nfree--;
    } else if ((c = aligned_alloc(64, sizeof *c)) == NULL) {
        return NULL;
    }
    c->next = NULL;
    c->tid = tid;
    c->last = 0;
    atomic_store_explicit(&c->n, 0, memory_order_relaxed);
    return c;
}

static void chunk_put(chunk *c)
{
    if (T.nfree >= 64) {
        free(c);
        return;
    }
    c->next = T.free;
    T.free = c;
    T.nfree++;
}

static void trim_flight(void)
{
    int64_t now = gorc__nanotime();
    uint64_t nowt = gorc__trace_ticks();
    while (T.full && T.full->next) {
        bool too_many = T.nfull > T.max_chunks;
        /* Ticks to ns: the ratio measured since the recorder started (1 before any time). */
        double per = 1.0;
        if (nowt > T.ticks0 && now > T.ns0)
            per = (double)(now - T.ns0) / (double)(nowt - T.ticks0);
        /* The second-oldest chunk ends before the window: the oldest is not needed. */
        bool too_old = (double)(nowt - T.full->next->last) * per > (double)T.min_age;
        if (!too_many && !too_old)
            break;
        chunk *c = T.full;
        T.full = c->next;
        T.nfull--;
        chunk_put(c);
    }
}

/* The calling thread's buffer, emptied if it holds another session's events; NULL when the
 * trace is off or memory ran out (the event is dropped). */
static __attribute__((noinline)) tbuf *buf_slow(gorc__m *m, uint32_t gen)
{
    pthread_mutex_lock(&T.mu);
    tbuf *b = m ? m->tbuf : tls_buf;
    if (b == NULL) {
        b = calloc(1, sizeof *b);
        if (b == NULL) {
            pthread_mutex_unlock(&T.mu);
            return NULL;
        }
        b->id = ++T.nbufs;
        b->next = T.bufs;
        T.bufs = b;
        if (m)
            m->tbuf = b;
        else
            tls_buf = b;
    }
    if (atomic_load(&b->cur) == NULL)
        atomic_store(&b->cur, chunk_get(b->id));
    chunk *c = atomic_load(&b->cur);
    if (c)
        atomic_store_explicit(&c->n, 0, memory_order_release);
    b->gen = gen;
    b->last = 0;
    pthread_mutex_unlock(&T.mu);
    return c ? b : NULL;
}

/* b's chunk is full: hand it over and take a new one. */
static __attribute__((noinline)) chunk *chunk_full(tbuf *b, chunk *c)
{
    pthread_mutex_lock(&T.mu);
    chunk *nc = chunk_get(b->id);
    if (nc == NULL) {
        /* Out of memory: reuse the chunk, losing its events. */
        atomic_store_explicit(&c->n, 0, memory_order_release);
        pthread_mutex_unlock(&T.mu);
        return c;
    }
    c->last = c->ev[CHUNK_EVENTS - 1].ts;
    if (T.mode != MODE_OFF && b->gen == T.lastgen) {
        if (T.full_tail)
            T.full_tail->next = c;
        else
            T.full = c;
        T.full_tail = c;
        T.nfull++;
        if (T.mode == MODE_FLIGHT)
            trim_flight();
        else if (T.nfull == WRITE_BATCH)
            pthread_cond_signal(&T.cv); /* not for every chunk: a wake-up is a system call */
    } else {
        chunk_put(c);
    }
    if (T.full == NULL)
        T.full_tail = NULL;
    atomic_store(&b->cur, nc);
    pthread_mutex_unlock(&T.mu);
    return nc;
}

/* Room for k consecutive slots in the thread's chunk, or NULL. */
static inline gorc__tev *reserve(gorc__m *m, uint32_t k, tbuf **bp, chunk **cp, uint32_t *np)
{
    uint32_t gen = atomic_load_explicit(&gorc__trace_gen, memory_order_relaxed);
    if (gen == 0)
        return NULL;
    tbuf *b = m ? m->tbuf : tls_buf;
    if (GORC__UNLIKELY(b == NULL || b->gen != gen) && (b = buf_slow(m, gen)) == NULL)
        return NULL;
    *bp = b;
    chunk *c = atomic_load_explicit(&b->cur, memory_order_relaxed);
    uint32_t n = atomic_load_explicit(&c->n, memory_order_relaxed);
    if (GORC__UNLIKELY(n + k > CHUNK_EVENTS)) {
        if (n < CHUNK_EVENTS) {
            /* Pad so that the chunk's last slot is an event of its own (c->last). */
            gorc__tev *e = &c->ev[n];
            uint64_t ts = n ? c->ev[n - 1].ts : gorc__trace_ticks();
            for (uint32_t i = n; i < CHUNK_EVENTS; i++, e++)
                *e = (gorc__tev){.ts = ts, .kind = GORC__EV_NONE};
        }
        c = chunk_full(b, c);
        n = atomic_load_explicit(&c->n, memory_order_relaxed);
    }
    *cp = c;
    *np = n;
    return &c->ev[n];
}

/* The counter read where clock_kind is 1 (see gorc__trace_ticks). */
static inline uint64_t ticks_hw(void)
{
#if defined(__x86_64__)
    return __rdtsc();
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ __volatile__("isb; mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    return 0; /* not reached: clock_kind is never 1 here */
#endif
}

/* Everything but the common case: no buffer yet or one of an older session, a full chunk, a
 * thread without an M, the CLOCK_MONOTONIC clock. reuse: a GO_START that may take the
 * thread's last timestamp (gorc__trace_start_now). */
__attribute__((noinline)) static void ev_slow(gorc__m *m, uint32_t kind, uint64_t g, uint64_t arg,
                                              uint32_t aux, bool reuse)
{
    tbuf *b;
    chunk *c;
    uint32_t n;
    gorc__tev *e = reserve(m, 1, &b, &c, &n);
    if (e == NULL)
        return;
    if (reuse && b->last)
        e->ts = b->last;
    else
        e->ts = b->last = gorc__trace_ticks();
    e->kind = kind;
    e->aux = aux;
    e->g = g;
    e->arg = arg;
    atomic_store_explicit(&c->n, n + 1, memory_order_release);
}

/* The common case is a leaf without a frame (no call but the tail call to ev_slow): about 25
 * instructions, one counter read, five stores into the thread's own chunk and the release
 * store that publishes them. It costed 60 with the slow paths inline (their calls made the
 * compiler save six registers on every event). */
void gorc__trace_ev1(gorc__m *m, uint32_t kind, uint64_t g, uint64_t arg, uint32_t aux)
{
    uint32_t gen = atomic_load_explicit(&gorc__trace_gen, memory_order_relaxed);
    tbuf *b = m ? m->tbuf : NULL;
    if (GORC__LIKELY(b != NULL && b->gen == gen && gen != 0 && clock_kind == 1)) {
        chunk *c = atomic_load_explicit(&b->cur, memory_order_relaxed);
        uint32_t n = atomic_load_explicit(&c->n, memory_order_relaxed);
        if (GORC__LIKELY(n < CHUNK_EVENTS)) {
            gorc__tev *e = &c->ev[n];
            e->ts = b->last = ticks_hw();
            e->kind = kind;
            e->aux = aux;
            e->g = g;
            e->arg = arg;
            atomic_store_explicit(&c->n, n + 1, memory_order_release);
            return;
        }
    }
    if (gen != 0)
        ev_slow(m, kind, g, arg, aux, false);
}

void gorc__trace_start_now(gorc__m *m, int p, uint64_t g)
{
    uint32_t kind = (uint32_t)GORC__EV_GO_START | (uint32_t)(p + 1) << 16;
    uint32_t gen = atomic_load_explicit(&gorc__trace_gen, memory_order_relaxed);
    tbuf *b = m ? m->tbuf : NULL;
    if (GORC__LIKELY(b != NULL && b->gen == gen && gen != 0 && b->last != 0)) {
        chunk *c = atomic_load_explicit(&b->cur, memory_order_relaxed);
        uint32_t n = atomic_load_explicit(&c->n, memory_order_relaxed);
        if (GORC__LIKELY(n < CHUNK_EVENTS)) {
            /* The event before was this thread's own block, stop or end, a switch ago. */
            gorc__tev *e = &c->ev[n];
            e->ts = b->last;
            e->kind = kind;
            e->aux = 0;
            e->g = g;
            e->arg = 0;
            atomic_store_explicit(&c->n, n + 1, memory_order_release);
            return;
        }
    }
    if (gen != 0)
        ev_slow(m, kind, g, 0, 0, true);
}

/* An event followed by a string of len bytes in continuation slots. */
static void trace_str(int type, uint64_t g, uint64_t arg, const char *s, size_t len)
{
    if (len > MAX_STRING)
        len = MAX_STRING;
    uint32_t k = 1 + (uint32_t)((len + sizeof(gorc__tev) - 1) / sizeof(gorc__tev));
    tbuf *b;
    chunk *c;
    uint32_t n;
    gorc__tev *e = reserve(gorc__getm(), k, &b, &c, &n);
    if (e == NULL)
        return;
    e->ts = b->last = gorc__trace_ticks();
    e->kind = (uint32_t)type;
    e->aux = (uint32_t)len;
    e->g = g;
    e->arg = arg;
    memset(e + 1, 0, (k - 1) * sizeof *e);
    memcpy(e + 1, s, len);
    atomic_store_explicit(&c->n, n + k, memory_order_release);
}

/* ---- writing frames ---- */

static int write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

typedef struct sink {
    int fd;    /* write here, or */
    char *buf; /* append here */
    size_t len, cap;
    int err;
} sink;

static void sink_put(sink *k, const void *p, size_t n)
{
    if (k->err)
        return;
    if (k->fd >= 0) {
        k->err = write_all(k->fd, p, n);
        return;
    }
    if (k->len + n > k->cap) {
        size_t nc = k->cap ? k->cap * 2 : 1 << 16;
        while (nc < k->len + n)
            nc *= 2;
        char *nb = realloc(k->buf, nc);
        if (nb == NULL) {
            k->err = -ENOMEM;
            return;
        }
        k->buf = nb;
        k->cap = nc;
    }
    memcpy(k->buf + k->len, p, n);
    k->len += n;
}

static void frame(sink *k, uint32_t kind, uint32_t tid, const void *p, size_t n)
{
    uint32_t h[4] = {kind, tid, (uint32_t)n, (uint32_t)((uint64_t)n >> 32)};
    sink_put(k, h, sizeof h);
    sink_put(k, p, n);
}

static void sync_frame(sink *k)
{
    int64_t v[2];
    v[0] = (int64_t)gorc__trace_ticks();
    v[1] = gorc__nanotime();
    frame(k, FRAME_SYNC, 0, v, sizeof v);
}

static void chunk_frame(sink *k, const chunk *c, uint32_t n)
{
    if (n > 0)
        frame(k, FRAME_EVENTS, c->tid, c->ev, n * sizeof(gorc__tev));
}

/* Every thread's current chunk up to its published count; under T.mu. */
static void current_chunks(sink *k)
{
    for (tbuf *b = T.bufs; b; b = b->next) {
        chunk *c = atomic_load(&b->cur);
        if (c && b->gen == T.lastgen)
            chunk_frame(k, c, atomic_load_explicit(&c->n, memory_order_acquire));
    }
}

/* ---- sessions ---- */

static void status_one(gorc__g *g, void *arg)
{
    (void)arg;
    uint32_t st = atomic_load_explicit(&g->status, memory_order_acquire);
    if (st == GORC__G_FREE || st == GORC__G_DEAD || g->foreign)
        return;
    gorc__trace_ev(gorc__getm(), GORC__EV_GO_STATUS, (int)st, -1, g->id, (uint64_t)(uintptr_t)g->fn,
                   g->waitreason);
}

/* Under T.mu: begin a session of the given mode. */
static void session_begin(int mode)
{
    clock_init();
    T.mode = mode;
    T.lastgen = T.lastgen + 1 ? T.lastgen + 1 : 1;
    T.ticks0 = gorc__trace_ticks();
    T.ns0 = gorc__nanotime();
    atomic_store(&gorc__trace_gen, T.lastgen);
    gorc__park_hook(GORC__PH_TRACE, true);
}

/* Under T.mu: recycle the full list. */
static void drop_full(void)
{
    while (T.full) {
        chunk *c = T.full;
        T.full = c->next;
        chunk_put(c);
    }
    T.full_tail = NULL;
    T.nfull = 0;
}

static void *writer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&T.mu);
    for (;;) {
        while (T.nfull < WRITE_BATCH && !T.stopping) {
            /* A batch of chunks, or whatever there is every WRITE_EVERY. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += WRITE_EVERY;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            if (pthread_cond_timedwait(&T.cv, &T.mu, &ts) != 0 && T.full != NULL)
                break;
        }
        if (T.full == NULL && T.stopping)
            break;
        chunk *list = T.full;
        T.full = T.full_tail = NULL;
        T.nfull = 0;
        int fd = T.fd;
        pthread_mutex_unlock(&T.mu);
        sink k = {.fd = fd};
        for (chunk *c = list; c; c = c->next)
            chunk_frame(&k, c, CHUNK_EVENTS);
        sync_frame(&k);
        pthread_mutex_lock(&T.mu);
        if (k.err && T.err == 0)
            T.err = k.err;
        while (list) {
            chunk *c = list;
            list = c->next;
            chunk_put(c);
        }
    }
    pthread_mutex_unlock(&T.mu);
    return NULL;
}

int gorc_trace_start(int fd)
{
    if (fd < 0)
        return -EBADF;
    int rc = gorc__ensure_init();
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&T.mu);
    if (T.mode != MODE_OFF) {
        pthread_mutex_unlock(&T.mu);
        return -EBUSY;
    }
    clock_init();
    sink k = {.fd = fd};
    sink_put(&k, TRACE_MAGIC, 8);
    sync_frame(&k);
    if (k.err) {
        pthread_mutex_unlock(&T.mu);
        return k.err;
    }
    T.fd = fd;
    T.err = 0;
    T.stopping = false;
    drop_full();
    if (pthread_create(&T.writer, NULL, writer_main, NULL) != 0) {
        pthread_mutex_unlock(&T.mu);
        return -EAGAIN;
    }
    session_begin(MODE_TRACE);
    pthread_mutex_unlock(&T.mu);
    gorc__each_g(status_one, NULL);
    return 0;
}

int gorc_trace_stop(void)
{
    pthread_mutex_lock(&T.mu);
    if (T.mode != MODE_TRACE) {
        pthread_mutex_unlock(&T.mu);
        return -EINVAL;
    }
    atomic_store(&gorc__trace_gen, 0);
    gorc__park_hook(GORC__PH_TRACE, false);
    T.stopping = true;
    pthread_cond_signal(&T.cv);
    pthread_mutex_unlock(&T.mu);
    pthread_join(T.writer, NULL);
    pthread_mutex_lock(&T.mu);
    sink k = {.fd = T.fd};
    /* Chunks a thread handed over after the writer's last look (it read gen just before it
     * changed), then what every thread holds. */
    for (chunk *c = T.full; c; c = c->next)
        chunk_frame(&k, c, CHUNK_EVENTS);
    drop_full();
    current_chunks(&k);
    sync_frame(&k);
    int err = T.err ? T.err : k.err;
    T.mode = MODE_OFF;
    T.fd = -1;
    pthread_mutex_unlock(&T.mu);
    return err;
}

bool gorc_trace_enabled(void)
{
    return atomic_load_explicit(&gorc__trace_gen, memory_order_relaxed) != 0;
}

int gorc_flight_recorder_start(const gorc_flight_recorder_opts *o)
{
    int64_t age = o && o->min_age ? o->min_age : DEFAULT_AGE;
    size_t bytes = o && o->max_bytes ? o->max_bytes : DEFAULT_BYTES;
    if (age < 0 || bytes < sizeof(chunk) * 2)
        return -EINVAL;
    int rc = gorc__ensure_init();
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&T.mu);
    if (T.mode != MODE_OFF) {
        pthread_mutex_unlock(&T.mu);
        return -EBUSY;
    }
    T.min_age = age;
    T.max_chunks = bytes / sizeof(chunk);
    drop_full();
    session_begin(MODE_FLIGHT);
    pthread_mutex_unlock(&T.mu);
    gorc__each_g(status_one, NULL);
    return 0;
}

int gorc_flight_recorder_stop(void)
{
    pthread_mutex_lock(&T.mu);
    if (T.mode != MODE_FLIGHT) {
        pthread_mutex_unlock(&T.mu);
        return -EINVAL;
    }
    atomic_store(&gorc__trace_gen, 0);
    gorc__park_hook(GORC__PH_TRACE, false);
    T.mode = MODE_OFF;
    drop_full();
    pthread_mutex_unlock(&T.mu);
    return 0;
}

bool gorc_flight_recorder_enabled(void)
{
    pthread_mutex_lock(&T.mu);
    bool on = T.mode == MODE_FLIGHT;
    pthread_mutex_unlock(&T.mu);
    return on;
}

/* The recorder's window, as a trace file, into k. */
static int flight_snapshot(sink *k)
{
    pthread_mutex_lock(&T.mu);
    if (T.mode != MODE_FLIGHT) {
        pthread_mutex_unlock(&T.mu);
        return -EINVAL;
    }
    sink_put(k, TRACE_MAGIC, 8);
    int64_t v[2] = {(int64_t)T.ticks0, T.ns0};
    frame(k, FRAME_SYNC, 0, v, sizeof v);
    for (chunk *c = T.full; c; c = c->next)
        chunk_frame(k, c, CHUNK_EVENTS);
    current_chunks(k);
    sync_frame(k);
    pthread_mutex_unlock(&T.mu);
    return k->err;
}

int gorc_flight_recorder_snapshot(void **out, size_t *len)
{
    if (out == NULL || len == NULL)
        return -EINVAL;
    sink k = {.fd = -1};
    int rc = flight_snapshot(&k);
    if (rc != 0) {
        free(k.buf);
        return rc;
    }
    *out = k.buf;
    *len = k.len;
    return 0;
}

int gorc_flight_recorder_write_to(int fd)
{
    if (fd < 0)
        return -EBADF;
    void *p;
    size_t n;
    int rc = gorc_flight_recorder_snapshot(&p, &n);
    if (rc != 0)
        return rc;
    gorc_blocking_enter(); /* a pipe or a slow disk must not hold the P */
    rc = write_all(fd, p, n);
    gorc_blocking_exit();
    free(p);
    return rc;
}

/* ---- user annotations (Go's runtime/trace tasks, regions and logs) ---- */

static uint64_t cur_gid(void)
{
    return gorc_id();
}

uint64_t gorc_trace_task_new(uint64_t parent, const char *type)
{
    uint64_t id = atomic_fetch_add_explicit(&taskgen, 1, memory_order_relaxed) + 1;
    if (gorc_trace_enabled()) {
        const char *t = type ? type : "";
        trace_str(GORC__EV_TASK_BEGIN, parent, id, t, strlen(t));
    }
    return id;
}

void gorc_trace_task_end(uint64_t task)
{
    GORC__TRACE(gorc__getm(), GORC__EV_TASK_END, 0, -1, cur_gid(), task, 0);
}

void gorc_trace_region_begin(uint64_t task, const char *type)
{
    if (gorc_trace_enabled()) {
        const char *t = type ? type : "";
        trace_str(GORC__EV_REGION_BEGIN, cur_gid(), task, t, strlen(t));
    }
}

void gorc_trace_region_end(uint64_t task, const char *type)
{
    if (gorc_trace_enabled()) {
        const char *t = type ? type : "";
        trace_str(GORC__EV_REGION_END, cur_gid(), task, t, strlen(t));
    }
}

void gorc_trace_log(uint64_t task, const char *category, const char *message)
{
    if (!gorc_trace_enabled())
        return;
    char buf[MAX_STRING];
    int n =
        snprintf(buf, sizeof buf, "%s%c%s", category ? category : "", 0, message ? message : "");
    if (n < 0)
        return;
    trace_str(GORC__EV_LOG, cur_gid(), task, buf,
              (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* ---- scheduling latency ---- */

_Atomic bool gorc__schedlat_on;

typedef struct {
    _Atomic uint64_t b[GORC__LHIST_BUCKETS];
} __attribute__((aligned(64))) schedlat;

static schedlat *slat; /* one per P, written by the P's owner only */
static pthread_once_t slat_once = PTHREAD_ONCE_INIT;

static void slat_init(void)
{
    int n = gorc__nprocs();
    slat = aligned_alloc(64, sizeof(schedlat) * (size_t)(n > 0 ? n : 1));
    if (slat)
        memset(slat, 0, sizeof(schedlat) * (size_t)(n > 0 ? n : 1));
}

void gorc__schedlat_enable(void)
{
    if (gorc__ensure_init() != 0)
        return;
    pthread_once(&slat_once, slat_init);
    if (slat)
        atomic_store(&gorc__schedlat_on, true);
}

void gorc__schedlat_note(int p, int64_t ns)
{
    if (slat == NULL || p < 0 || ns < 0)
        return;
    _Atomic uint64_t *c = &slat[p].b[gorc__lhist_index(ns)];
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void gorc__schedlat_read(uint64_t out[GORC__LHIST_BUCKETS])
{
    memset(out, 0, sizeof(uint64_t) * GORC__LHIST_BUCKETS);
    if (slat == NULL)
        return;
    for (int p = 0; p < gorc__nprocs(); p++)
        for (int i = 0; i < GORC__LHIST_BUCKETS; i++)
            out[i] += atomic_load_explicit(&slat[p].b[i], memory_order_relaxed);
}
