/*
 * pprof.c - profiles in pprof's profile.proto: CPU, goroutine, block and mutex (Go's
 * runtime/pprof).
 *
 * CPU: each M gets a POSIX timer on its own thread's CPU clock (timer_create with
 * SIGEV_THREAD_ID), so a thread is sampled only while it uses CPU, at the rate asked for
 * (100 Hz by default, Go's). The SIGPROF handler (traceback.c) walks the interrupted stack and
 * calls gorc__prof_sample, which only copies the pcs and the goroutine id into the M's own
 * preallocated ring (single producer: the handler on that thread; single consumer: the
 * draining thread). A thread started while the profile runs arms its timer itself
 * (gorc__prof_thread_start). A draining thread moves the rings' samples into one growable
 * array every 50 ms; a full ring counts its losses instead of blocking. Rings are never freed
 * (a late signal may still write into one after the timers are deleted) and are reused by the
 * next profile.
 *
 * Block and mutex: off by default; the scheduler's park then costs one relaxed load of
 * gorc__blockprof. When on, gorc__park reads the clock before and after parking and hands the
 * wait to gorc__block_event, which samples as Go does (every wait at least `rate` ns long, a
 * shorter one with probability wait/rate; mutex waits one in `fraction`) and adds the
 * goroutine's stack to a fixed-size table under a runtime lock.
 *
 * The encoder writes protobuf by hand (varints and length-delimited fields: profile.proto
 * needs nothing else), uncompressed, which go tool pprof reads as it is. Locations carry
 * their function name and file:line when the symbolisers know them; every location also
 * names its mapping (from /proc/self/maps), so pprof can symbolise the rest (static functions)
 * from the binary itself.
 *
 * Locking: prof_mu (pthread) guards starting, stopping and the timers; samples and the
 * drain state belong to the draining thread until it is joined. block_lock guards the block
 * and mutex tables.
 */
#include "runtime/runtime.h"

#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROF_DEPTH 48
#define RING       512

typedef struct sample {
    uint64_t goid;
    uint32_t n;
    uintptr_t pcs[PROF_DEPTH];
} sample;

struct gorc__profbuf {
    _Atomic uint32_t head; /* written by the handler */
    _Atomic uint32_t tail; /* written by the drainer */
    _Atomic uint64_t lost;
    timer_t timer;
    bool armed;
    sample ring[RING];
};

static pthread_mutex_t prof_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int prof_on;
static int prof_hz;
static int64_t prof_start;
static pthread_t drainer;
static _Atomic int drain_stop;
static sample *samples; /* drained so far (drainer's until joined) */
static size_t nsamples, capsamples;
static uint64_t prof_lost;
static bool samples_oom;

void gorc__prof_sample(gorc__m *m, const uintptr_t *pcs, int n, uint64_t goid)
{
    struct gorc__profbuf *b = atomic_load_explicit(&m->prof, memory_order_acquire);
    if (b == NULL || !atomic_load_explicit(&prof_on, memory_order_relaxed) || n <= 0)
        return;
    uint32_t h = atomic_load_explicit(&b->head, memory_order_relaxed);
    if (h - atomic_load_explicit(&b->tail, memory_order_acquire) >= RING) {
        atomic_fetch_add_explicit(&b->lost, 1, memory_order_relaxed);
        return;
    }
    sample *s = &b->ring[h % RING];
    s->goid = goid;
    s->n = (uint32_t)(n < PROF_DEPTH ? n : PROF_DEPTH);
    memcpy(s->pcs, pcs, s->n * sizeof pcs[0]);
    atomic_store_explicit(&b->head, h + 1, memory_order_release);
}

static void drain_one(struct gorc__profbuf *b)
{
    uint32_t t = atomic_load_explicit(&b->tail, memory_order_relaxed);
    uint32_t h = atomic_load_explicit(&b->head, memory_order_acquire);
    for (; t != h; t++) {
        if (nsamples == capsamples) {
            size_t nc = capsamples ? capsamples * 2 : 1024;
            sample *ns = realloc(samples, nc * sizeof *ns);
            if (ns == NULL) {
                samples_oom = true;
                prof_lost += h - t;
                t = h;
                break;
            }
            samples = ns;
            capsamples = nc;
        }
        samples[nsamples++] = b->ring[t % RING];
    }
    atomic_store_explicit(&b->tail, t, memory_order_release);
}

static void drain_all(void)
{
    for (gorc__m *m = gorc__allm(); m; m = m->allnext) {
        struct gorc__profbuf *b = atomic_load(&m->prof);
        if (b)
            drain_one(b);
    }
}

static void *drain_loop(void *arg)
{
    (void)arg;
    while (!atomic_load(&drain_stop)) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        drain_all();
    }
    return NULL;
}

/* Give m a ring and a running timer. Caller holds prof_mu. */
static void attach(gorc__m *m)
{
    struct gorc__profbuf *b = atomic_load(&m->prof);
    if (b == NULL) {
        b = calloc(1, sizeof *b);
        if (b == NULL)
            return; /* this thread goes unsampled */
        atomic_store_explicit(&m->prof, b, memory_order_release);
    }
    if (b->armed)
        return;
    atomic_store(&b->tail, atomic_load(&b->head)); /* forget a previous profile's leftovers */
    clockid_t clk;
    int tid = atomic_load(&m->tid);
    if (tid == 0 || pthread_getcpuclockid(m->thread, &clk) != 0)
        return;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = SIGPROF;
    sev._sigev_un._tid = tid;
    if (timer_create(clk, &sev, &b->timer) != 0)
        return;
    long ns = 1000000000L / prof_hz;
    struct itimerspec its = {{ns / 1000000000L, ns % 1000000000L},
                             {ns / 1000000000L, ns % 1000000000L}};
    if (timer_settime(b->timer, 0, &its, NULL) != 0) {
        timer_delete(b->timer);
        return;
    }
    b->armed = true;
}

void gorc__prof_thread_start(gorc__m *m)
{
    if (!atomic_load(&prof_on))
        return;
    pthread_mutex_lock(&prof_mu);
    if (atomic_load(&prof_on))
        attach(m);
    pthread_mutex_unlock(&prof_mu);
}

int gorc_cpu_profile_start(int hz)
{
    if (hz == 0)
        hz = 100;
    if (hz < 0 || hz > 1000)
        return -EINVAL;
    int rc = gorc__ensure_init();
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&prof_mu);
    if (atomic_load(&prof_on)) {
        pthread_mutex_unlock(&prof_mu);
        return -EBUSY;
    }
    prof_hz = hz;
    nsamples = 0;
    prof_lost = 0;
    samples_oom = false;
    atomic_store(&drain_stop, 0);
    if (pthread_create(&drainer, NULL, drain_loop, NULL) != 0) {
        pthread_mutex_unlock(&prof_mu);
        return -EAGAIN;
    }
    prof_start = gorc__nanotime();
    atomic_store(&prof_on, 1);
    for (gorc__m *m = gorc__allm(); m; m = m->allnext)
        attach(m);
    pthread_mutex_unlock(&prof_mu);
    return 0;
}

static int encode_cpu(char **out, size_t *len, int64_t duration);

int gorc_cpu_profile_stop(char **out, size_t *len)
{
    if (out == NULL || len == NULL)
        return -EINVAL;
    pthread_mutex_lock(&prof_mu);
    if (!atomic_load(&prof_on)) {
        pthread_mutex_unlock(&prof_mu);
        return -ESRCH;
    }
    for (gorc__m *m = gorc__allm(); m; m = m->allnext) {
        struct gorc__profbuf *b = atomic_load(&m->prof);
        if (b && b->armed) {
            timer_delete(b->timer);
            b->armed = false;
        }
    }
    atomic_store(&prof_on, 0);
    atomic_store(&drain_stop, 1);
    pthread_join(drainer, NULL);
    drain_all();
    for (gorc__m *m = gorc__allm(); m; m = m->allnext) {
        struct gorc__profbuf *b = atomic_load(&m->prof);
        if (b)
            prof_lost += atomic_exchange(&b->lost, 0);
    }
    int rc = encode_cpu(out, len, gorc__nanotime() - prof_start);
    free(samples);
    samples = NULL;
    nsamples = capsamples = 0;
    pthread_mutex_unlock(&prof_mu);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * profile.proto
 * ---------------------------------------------------------------------------------------- */

typedef struct pbuf {
    unsigned char *b;
    size_t n, cap;
    bool oom;
} pbuf;

static void pb_put(pbuf *p, const void *d, size_t n)
{
    if (p->oom)
        return;
    if (p->n + n > p->cap) {
        size_t nc = p->cap ? p->cap : 4096;
        while (nc < p->n + n)
            nc *= 2;
        unsigned char *nb = realloc(p->b, nc);
        if (nb == NULL) {
            p->oom = true;
            return;
        }
        p->b = nb;
        p->cap = nc;
    }
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

static void pb_varint(pbuf *p, uint64_t v)
{
    unsigned char t[10];
    int k = 0;
    do {
        t[k] = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v)
            t[k] |= 0x80;
        k++;
    } while (v);
    pb_put(p, t, (size_t)k);
}

static void pb_int(pbuf *p, int field, uint64_t v)
{
    pb_varint(p, (uint64_t)field << 3);
    pb_varint(p, v);
}

static void pb_bytes(pbuf *p, int field, const void *d, size_t n)
{
    pb_varint(p, (uint64_t)field << 3 | 2);
    pb_varint(p, n);
    pb_put(p, d, n);
}

static void pb_msg(pbuf *p, int field, pbuf *sub)
{
    if (sub->oom)
        p->oom = true;
    pb_bytes(p, field, sub->b, sub->n);
    sub->n = 0;
}

static void pb_packed(pbuf *p, int field, const uint64_t *v, size_t n)
{
    pbuf t = {0};
    for (size_t i = 0; i < n; i++)
        pb_varint(&t, v[i]);
    if (t.oom)
        p->oom = true;
    pb_bytes(p, field, t.b, t.n);
    free(t.b);
}

/* Open-addressing map from a 64-bit key to an index (0 = empty slot). */
typedef struct umap {
    uint64_t *keys;
    uint32_t *vals;
    size_t cap, n;
} umap;

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

/* The value for key, or 0; with add, key gets value next (returned) when it is new. */
static uint32_t umap_get(umap *m, uint64_t key, uint32_t next, bool *oom)
{
    if (m->n * 2 >= m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 256;
        uint64_t *nk = calloc(nc, sizeof *nk);
        uint32_t *nv = calloc(nc, sizeof *nv);
        if (nk == NULL || nv == NULL) {
            free(nk);
            free(nv);
            *oom = true;
            return 0;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (m->vals[i] == 0)
                continue;
            size_t j = mix(m->keys[i]) & (nc - 1);
            while (nv[j])
                j = (j + 1) & (nc - 1);
            nk[j] = m->keys[i];
            nv[j] = m->vals[i];
        }
        free(m->keys);
        free(m->vals);
        m->keys = nk;
        m->vals = nv;
        m->cap = nc;
    }
    size_t j = mix(key) & (m->cap - 1);
    while (m->vals[j]) {
        if (m->keys[j] == key)
            return m->vals[j];
        j = (j + 1) & (m->cap - 1);
    }
    if (next == 0)
        return 0;
    m->keys[j] = key;
    m->vals[j] = next;
    m->n++;
    return next;
}

static void umap_free(umap *m)
{
    free(m->keys);
    free(m->vals);
}

typedef struct mapping {
    uintptr_t lo, hi, off;
    char *file;
} mapping;

/* What the profile under construction holds besides its samples. */
typedef struct prof {
    pbuf out, tmp;
    umap strs; /* string hash -> index + 1 (collisions checked against strtab) */
    const char **strtab;
    size_t nstr, capstr;
    umap locs;  /* adjusted pc -> location id */
    umap funcs; /* string index of name << 32 | string index of file -> function id */
    uint32_t nloc, nfunc;
    mapping *maps;
    size_t nmaps;
    bool oom;
} prof;

static uint64_t strhash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static int64_t str_id(prof *pr, const char *s)
{
    if (s == NULL || *s == 0)
        return 0;
    uint64_t h = strhash(s);
    for (;; h++) { /* linear probing on the hash itself resolves collisions */
        uint32_t v = umap_get(&pr->strs, h, 0, &pr->oom);
        if (v == 0)
            break;
        if (strcmp(pr->strtab[v - 1], s) == 0)
            return v - 1;
    }
    if (pr->nstr == pr->capstr) {
        size_t nc = pr->capstr ? pr->capstr * 2 : 64;
        const char **ns = realloc(pr->strtab, nc * sizeof *ns);
        if (ns == NULL) {
            pr->oom = true;
            return 0;
        }
        pr->strtab = ns;
        pr->capstr = nc;
    }
    char *copy = strdup(s);
    if (copy == NULL) {
        pr->oom = true;
        return 0;
    }
    pr->strtab[pr->nstr++] = copy;
    umap_get(&pr->strs, h, (uint32_t)pr->nstr, &pr->oom);
    return (int64_t)pr->nstr - 1;
}

static void read_maps(prof *pr)
{
    FILE *f = fopen("/proc/self/maps", "re");
    if (f == NULL)
        return;
    char line[4096];
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, off;
        char perm[8], path[4096];
        path[0] = 0;
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %4095s", &lo, &hi, perm, &off, path) < 4)
            continue;
        if (perm[2] != 'x' || path[0] != '/')
            continue;
        if (pr->nmaps == cap) {
            size_t nc = cap ? cap * 2 : 16;
            mapping *nm = realloc(pr->maps, nc * sizeof *nm);
            if (nm == NULL)
                break;
            pr->maps = nm;
            cap = nc;
        }
        char *file = strdup(path);
        if (file == NULL)
            break;
        pr->maps[pr->nmaps++] = (mapping){lo, hi, off, file};
    }
    fclose(f);
}

static uint32_t map_of(prof *pr, uintptr_t pc)
{
    for (size_t i = 0; i < pr->nmaps; i++)
        if (pc >= pr->maps[i].lo && pc < pr->maps[i].hi)
            return (uint32_t)i + 1;
    return 0;
}

static void prof_init(prof *pr)
{
    memset(pr, 0, sizeof *pr);
    str_id(pr, "x"); /* placeholder, replaced: index 0 must be "" */
    char *empty = pr->nstr == 1 ? strdup("") : NULL;
    if (empty) {
        free((void *)pr->strtab[0]); /* the placeholder's copy */
        pr->strtab[0] = empty;
    } else {
        pr->oom = true;
    }
    read_maps(pr);
}

/* The location id of pc (adjusted: a return address minus one, inside its call). */
static uint64_t loc_id(prof *pr, uintptr_t pc)
{
    uint32_t id = umap_get(&pr->locs, pc, 0, &pr->oom);
    if (id)
        return id;
    id = umap_get(&pr->locs, pc, pr->nloc + 1, &pr->oom);
    if (id == 0)
        return 0;
    pr->nloc++;
    gorc_symbol s;
    gorc_symbolize(pc, &s);
    pbuf *t = &pr->tmp;
    pbuf loc = {0};
    pb_int(&loc, 1, id);
    uint32_t mid = map_of(pr, pc);
    if (mid)
        pb_int(&loc, 2, mid);
    pb_int(&loc, 3, pc);
    if (s.function) {
        int64_t name = str_id(pr, s.function), file = str_id(pr, s.file);
        uint64_t fkey = (uint64_t)name << 32 | (uint64_t)file;
        uint32_t fid = umap_get(&pr->funcs, fkey, 0, &pr->oom);
        if (fid == 0) {
            fid = umap_get(&pr->funcs, fkey, pr->nfunc + 1, &pr->oom);
            pr->nfunc++;
            pb_int(t, 1, fid);
            pb_int(t, 2, (uint64_t)name);
            pb_int(t, 3, (uint64_t)name);
            if (file)
                pb_int(t, 4, (uint64_t)file);
            pb_msg(&pr->out, 5, t);
        }
        pbuf line = {0};
        pb_int(&line, 1, fid);
        if (s.line > 0)
            pb_int(&line, 2, (uint64_t)s.line);
        pb_msg(&loc, 4, &line);
        free(line.b);
    }
    pb_msg(&pr->out, 4, &loc);
    free(loc.b);
    return id;
}

/* pcs[0] is exact when first_exact, every other pc a return address. */
static void add_sample(prof *pr, const uintptr_t *pcs, int n, bool first_exact,
                       const uint64_t *vals, int nvals, const char *label, uint64_t labelnum)
{
    uint64_t ids[GORC__MAXFRAMES];
    int k = 0;
    for (int i = 0; i < n && i < GORC__MAXFRAMES; i++) {
        uintptr_t pc = (i == 0 && first_exact) ? pcs[i] : pcs[i] - 1;
        uint64_t id = loc_id(pr, pc);
        if (id)
            ids[k++] = id;
    }
    pbuf s = {0};
    pb_packed(&s, 1, ids, (size_t)k);
    pb_packed(&s, 2, vals, (size_t)nvals);
    if (label) {
        pbuf l = {0};
        pb_int(&l, 1, (uint64_t)str_id(pr, label));
        pb_int(&l, 3, labelnum);
        pb_msg(&s, 3, &l);
        free(l.b);
    }
    if (s.oom)
        pr->oom = true;
    pb_bytes(&pr->out, 2, s.b, s.n);
    free(s.b);
}

static void value_type(prof *pr, int field, const char *type, const char *unit)
{
    pbuf v = {0};
    pb_int(&v, 1, (uint64_t)str_id(pr, type));
    pb_int(&v, 2, (uint64_t)str_id(pr, unit));
    pb_msg(&pr->out, field, &v);
    free(v.b);
}

/* Finish: mappings, string table, times; hand the bytes over. */
static int prof_finish(prof *pr, int64_t duration, char **out, size_t *len)
{
    pbuf m = {0};
    for (size_t i = 0; i < pr->nmaps; i++) {
        pb_int(&m, 1, i + 1);
        pb_int(&m, 2, pr->maps[i].lo);
        pb_int(&m, 3, pr->maps[i].hi);
        pb_int(&m, 4, pr->maps[i].off);
        pb_int(&m, 5, (uint64_t)str_id(pr, pr->maps[i].file));
        pb_msg(&pr->out, 3, &m);
    }
    free(m.b);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    pb_int(&pr->out, 9, (uint64_t)now.tv_sec * 1000000000ULL + (uint64_t)now.tv_nsec);
    if (duration > 0)
        pb_int(&pr->out, 10, (uint64_t)duration);
    for (size_t i = 0; i < pr->nstr; i++)
        pb_bytes(&pr->out, 6, pr->strtab[i], strlen(pr->strtab[i]));
    bool oom = pr->oom || pr->out.oom || pr->tmp.oom;
    for (size_t i = 0; i < pr->nstr; i++)
        free((void *)pr->strtab[i]);
    free(pr->strtab);
    for (size_t i = 0; i < pr->nmaps; i++)
        free(pr->maps[i].file);
    free(pr->maps);
    umap_free(&pr->strs);
    umap_free(&pr->locs);
    umap_free(&pr->funcs);
    free(pr->tmp.b);
    if (oom) {
        free(pr->out.b);
        return -ENOMEM;
    }
    *out = (char *)pr->out.b;
    *len = pr->out.n;
    if (*out == NULL && (*out = malloc(1)) == NULL)
        return -ENOMEM;
    return 0;
}

static int encode_cpu(char **out, size_t *len, int64_t duration)
{
    prof pr;
    prof_init(&pr);
    value_type(&pr, 1, "samples", "count");
    value_type(&pr, 1, "cpu", "nanoseconds");
    value_type(&pr, 11, "cpu", "nanoseconds");
    int64_t period = 1000000000LL / prof_hz;
    pb_int(&pr.out, 12, (uint64_t)period);
    for (size_t i = 0; i < nsamples; i++) {
        uint64_t vals[2] = {1, (uint64_t)period};
        add_sample(&pr, samples[i].pcs, (int)samples[i].n, true, vals, 2,
                   samples[i].goid ? "goroutine" : NULL, samples[i].goid);
    }
    return prof_finish(&pr, duration, out, len);
}

/* ------------------------------------------------------------------------------------------
 * Goroutine profile
 * ---------------------------------------------------------------------------------------- */

typedef struct gstack {
    int n;
    bool exact; /* pcs[0] was sampled, not a return address */
    uint64_t count;
    uintptr_t pcs[GORC__MAXFRAMES];
} gstack;

static uint64_t stack_hash(const uintptr_t *pcs, int n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n;
    for (int i = 0; i < n; i++)
        h = mix(h ^ pcs[i]);
    return h ? h : 1;
}

/* Every goroutine's stack, grouped by identical stacks (*nout groups). */
GORC__RACY static gstack *goroutine_stacks(size_t *nout, uint64_t *total)
{
    size_t cap = 64, n = 0;
    gstack *gs = malloc(cap * sizeof *gs);
    umap idx = {0};
    bool oom = gs == NULL;
    *total = 0;
    for (gorc__g *g = gorc__allg(); g && !oom; g = g->allnext) {
        uint32_t st = atomic_load(&g->status);
        if (st == GORC__G_FREE || st == GORC__G_DEAD)
            continue;
        gstack one;
        one.n = gorc__g_stack(g, one.pcs, GORC__MAXFRAMES, false);
        if (one.n < 0)
            one.n = 0;
        gorc__m *self = gorc__getm();
        one.exact = st == GORC__G_RUNNING && !(self && self->curg == g);
        if (one.n == 0 && g->fn) { /* not yet started: its start function stands in */
            one.pcs[0] = (uintptr_t)g->fn;
            one.n = 1;
            one.exact = true;
        }
        (*total)++;
        uint64_t h = stack_hash(one.pcs, one.n);
        uint32_t i = umap_get(&idx, h, 0, &oom);
        if (i && gs[i - 1].n == one.n && !memcmp(gs[i - 1].pcs, one.pcs, (size_t)one.n * 8)) {
            gs[i - 1].count++;
            continue;
        }
        if (n == cap) {
            gstack *ng = realloc(gs, cap * 2 * sizeof *ng);
            if (ng == NULL) {
                oom = true;
                break;
            }
            gs = ng;
            cap *= 2;
        }
        one.count = 1;
        gs[n++] = one;
        if (i == 0)
            umap_get(&idx, h, (uint32_t)n, &oom);
    }
    umap_free(&idx);
    if (oom) {
        free(gs);
        return NULL;
    }
    *nout = n;
    return gs;
}

/* A growable text buffer for the debug=1 forms. */
static void tx(pbuf *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tx(pbuf *p, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (k > 0)
        pb_put(p, line, (size_t)k < sizeof line ? (size_t)k : sizeof line - 1);
}

/* Go's debug=1 stack listing: "@ pcs" then one "#" line per frame. */
static void tx_stack(pbuf *p, const uintptr_t *pcs, int n, bool exact)
{
    tx(p, " @");
    for (int i = 0; i < n; i++)
        tx(p, " %#zx", (size_t)pcs[i]);
    tx(p, "\n");
    for (int i = 0; i < n; i++) {
        uintptr_t pc = (i == 0 && exact) ? pcs[i] : pcs[i] - 1;
        gorc_symbol s;
        gorc_symbolize(pc, &s);
        tx(p, "#\t%#zx\t%s+%#zx", (size_t)pc, s.function ? s.function : "?", (size_t)s.offset);
        if (s.file)
            tx(p, "\t%s:%d\n", s.file, s.line);
        else
            tx(p, "\t%s+%#zx\n", s.module ? s.module : "?", (size_t)s.module_offset);
    }
    tx(p, "\n");
}

static int text_done(pbuf *p, char **out, size_t *len)
{
    if (p->oom) {
        free(p->b);
        return -ENOMEM;
    }
    pb_put(p, "", 1); /* NUL, not counted */
    if (p->oom) {
        free(p->b);
        return -ENOMEM;
    }
    *out = (char *)p->b;
    *len = p->n - 1;
    return 0;
}

static int goroutine_profile(int debug, char **out, size_t *len)
{
    if (debug >= 2) {
        ssize_t need = gorc_stack_all(NULL, 0);
        for (int tries = 0; tries < 4; tries++) {
            size_t cap = (size_t)need + 4096;
            char *b = malloc(cap);
            if (b == NULL)
                return -ENOMEM;
            need = gorc_stack_all(b, cap);
            if ((size_t)need < cap) {
                *out = b;
                *len = (size_t)need;
                return 0;
            }
            free(b);
        }
        return -EAGAIN;
    }
    size_t n;
    uint64_t total;
    gstack *gs = goroutine_stacks(&n, &total);
    if (gs == NULL)
        return -ENOMEM;
    if (debug == 1) {
        pbuf p = {0};
        tx(&p, "goroutine profile: total %llu\n", (unsigned long long)total);
        for (size_t i = 0; i < n; i++) {
            tx(&p, "%llu", (unsigned long long)gs[i].count);
            tx_stack(&p, gs[i].pcs, gs[i].n, gs[i].exact);
        }
        free(gs);
        return text_done(&p, out, len);
    }
    prof pr;
    prof_init(&pr);
    value_type(&pr, 1, "goroutine", "count");
    value_type(&pr, 11, "goroutine", "count");
    pb_int(&pr.out, 12, 1);
    for (size_t i = 0; i < n; i++) {
        uint64_t v = gs[i].count;
        add_sample(&pr, gs[i].pcs, gs[i].n, gs[i].exact, &v, 1, NULL, 0);
    }
    free(gs);
    return prof_finish(&pr, 0, out, len);
}

/* ------------------------------------------------------------------------------------------
 * Block and mutex profiles
 * ---------------------------------------------------------------------------------------- */

#define BLOCK_TABLE 4096 /* distinct stacks per profile; more are counted as dropped */

typedef struct bentry {
    uint64_t hash;
    uint64_t count;
    int64_t delay;
    int n;
    uintptr_t pcs[PROF_DEPTH];
} bentry;

typedef struct btable {
    bentry *e; /* BLOCK_TABLE slots, open addressing on hash; made at first use */
    size_t used;
    uint64_t dropped;
} btable;

_Atomic int gorc__blockprof;       /* bit 0: block profile on, bit 1: mutex profile on */
static _Atomic int64_t block_rate; /* Go's SetBlockProfileRate: ns */
static _Atomic int mutex_frac;     /* Go's SetMutexProfileFraction */
static gorc__lock block_lock;
static btable tables[2];

void gorc_set_block_profile_rate(int64_t rate)
{
    atomic_store(&block_rate, rate > 0 ? rate : 0);
    gorc__lock_acquire(&block_lock); /* the flag and gorc__park's hook bit change together */
    if (rate > 0)
        atomic_fetch_or(&gorc__blockprof, 1);
    else
        atomic_fetch_and(&gorc__blockprof, ~1);
    gorc__park_hook(GORC__PH_BLOCKPROF, atomic_load(&gorc__blockprof) != 0);
    gorc__lock_release(&block_lock);
}

int gorc_set_mutex_profile_fraction(int rate)
{
    if (rate < 0)
        return atomic_load(&mutex_frac);
    int old = atomic_exchange(&mutex_frac, rate);
    gorc__lock_acquire(&block_lock);
    if (rate > 0)
        atomic_fetch_or(&gorc__blockprof, 2);
    else
        atomic_fetch_and(&gorc__blockprof, ~2);
    gorc__park_hook(GORC__PH_BLOCKPROF, atomic_load(&gorc__blockprof) != 0);
    gorc__lock_release(&block_lock);
    return old;
}

static bool is_mutex_wait(int reason)
{
    return reason == GORC__W_MUTEX || reason == GORC__W_RWMUTEX_R || reason == GORC__W_RWMUTEX_W;
}

/* Waits the block profile covers: Go's (channels, select, sync); not sleeps or I/O. */
static bool is_block_wait(int reason)
{
    return reason != GORC__W_SLEEP && reason != GORC__W_IO && reason != GORC__W_BLOCKING &&
           reason != GORC__W_NONE;
}

__attribute__((noinline)) void gorc__block_event(int reason, int64_t waited)
{
    int on = atomic_load_explicit(&gorc__blockprof, memory_order_relaxed);
    int which;
    if ((on & 2) && is_mutex_wait(reason)) {
        int frac = atomic_load(&mutex_frac);
        if (frac <= 0 || (frac > 1 && gorc__rand() % (uint64_t)frac != 0))
            return;
        which = 1;
    } else if ((on & 1) && is_block_wait(reason)) {
        int64_t rate = atomic_load(&block_rate);
        if (rate <= 0 || waited <= 0)
            return;
        if (waited < rate && (int64_t)(gorc__rand() % (uint64_t)rate) > waited)
            return;
        which = 0;
    } else {
        return;
    }
    gorc__g *g = gorc__getg();
    uintptr_t pcs[PROF_DEPTH];
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    int n;
    if (g && g->stk.lo)
        n = gorc__unwind(0, fp, fp, (uintptr_t)g->stk.lo + g->stk.size, pcs, PROF_DEPTH);
    else
        n = 0;
    if (n <= 0)
        return;
    uint64_t h = stack_hash(pcs, n);
    btable *t = &tables[which];
    gorc__lock_acquire(&block_lock);
    if (t->e == NULL)
        t->e = calloc(BLOCK_TABLE, sizeof *t->e);
    if (t->e == NULL) {
        gorc__lock_release(&block_lock);
        return;
    }
    size_t j = h & (BLOCK_TABLE - 1);
    for (size_t probes = 0;; probes++, j = (j + 1) & (BLOCK_TABLE - 1)) {
        bentry *e = &t->e[j];
        if (e->hash == 0) {
            if (t->used * 4 >= BLOCK_TABLE * 3) {
                t->dropped++;
                break;
            }
            e->hash = h;
            e->n = n;
            memcpy(e->pcs, pcs, (size_t)n * sizeof pcs[0]);
            t->used++;
        }
        if (e->hash == h && e->n == n && !memcmp(e->pcs, pcs, (size_t)n * sizeof pcs[0])) {
            e->count++;
            e->delay += waited;
            break;
        }
    }
    gorc__lock_release(&block_lock);
}

static int contention_profile(int which, int debug, char **out, size_t *len)
{
    btable *t = &tables[which];
    gorc__lock_acquire(&block_lock);
    size_t n = 0;
    bentry *copy = NULL;
    if (t->e) {
        copy = malloc(t->used * sizeof *copy + 1);
        if (copy == NULL) {
            gorc__lock_release(&block_lock);
            return -ENOMEM;
        }
        for (size_t j = 0; j < BLOCK_TABLE; j++)
            if (t->e[j].hash)
                copy[n++] = t->e[j];
    }
    gorc__lock_release(&block_lock);
    int rc;
    if (debug >= 1) {
        pbuf p = {0};
        tx(&p, "--- %s:\ncycles/second=1000000000\n", which ? "mutex" : "contention");
        if (which)
            tx(&p, "sampling period=%d\n", atomic_load(&mutex_frac));
        for (size_t i = 0; i < n; i++) {
            tx(&p, "%lld %llu", (long long)copy[i].delay, (unsigned long long)copy[i].count);
            tx_stack(&p, copy[i].pcs, copy[i].n, false);
        }
        rc = text_done(&p, out, len);
    } else {
        prof pr;
        prof_init(&pr);
        value_type(&pr, 1, "contentions", "count");
        value_type(&pr, 1, "delay", "nanoseconds");
        value_type(&pr, 11, "contentions", "count");
        pb_int(&pr.out, 12, 1);
        for (size_t i = 0; i < n; i++) {
            uint64_t v[2] = {copy[i].count, (uint64_t)copy[i].delay};
            add_sample(&pr, copy[i].pcs, copy[i].n, false, v, 2, NULL, 0);
        }
        rc = prof_finish(&pr, 0, out, len);
    }
    free(copy);
    return rc;
}

int gorc_profile_write(const char *name, int debug, char **out, size_t *len)
{
    if (name == NULL || out == NULL || len == NULL || debug < 0)
        return -EINVAL;
    *out = NULL;
    *len = 0;
    int rc = gorc__ensure_init();
    if (rc != 0)
        return rc;
    if (strcmp(name, "goroutine") == 0)
        return goroutine_profile(debug, out, len);
    if (strcmp(name, "block") == 0)
        return contention_profile(0, debug, out, len);
    if (strcmp(name, "mutex") == 0)
        return contention_profile(1, debug, out, len);
    return -ENOENT;
}
