/*
 * trace_json.c - gorc's binary trace (trace.c) as Chrome trace-event JSON, the format
 * chrome://tracing, Perfetto's UI (ui.perfetto.dev, which runs offline once loaded) and
 * Catapult's trace2html open. Go's equivalent is `go tool trace`'s parser and viewer data.
 *
 * The events of all threads are merged by timestamp (ties keep each thread's own order), then
 * replayed through a state machine per goroutine, per P and per thread that turns pairs of
 * events into slices ("X" events with a duration):
 *
 *   process 1 "Procs"       one track per P: the goroutines it ran
 *   process 2 "Goroutines"  one track per goroutine: running, runnable, blocked (with the wait
 *                           reason, the object and the waker), in a blocking call; instants
 *                           for creation, end and user logs
 *   process 3 "Threads"     one track per thread: which P it holds, poller waits, timers,
 *                           the monitor's retakes
 *   process 4 "User"        user regions per goroutine, tasks as async spans
 *
 * Flows ("s"/"f" pairs with "bp":"e") go from the event that made a goroutine runnable - an
 * unblock, its creation - to the start of its next run: from the waker goroutine's track when
 * a goroutine woke it, else from a "wake" mark on the waking thread's track (the poller, a
 * timer). The output is sorted per track by start time.
 *
 * A trace may begin in the middle of things (a flight-recorder window): a goroutine first seen
 * running, blocked or runnable is given that state from the window's start. An event that
 * contradicts the state (a start while blocked, from clocks of two CPUs that disagree) is
 * applied anyway and counted in the metadata as "repairs".
 */
#include "runtime/trace.h"
#include "gorc_trace.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rec {
    const gorc__tev *e;
    uint32_t tid;
    uint64_t ord; /* position in the file: ties keep each thread's order */
} rec;

/* ---- growable output ---- */

typedef struct out {
    char *s;
    size_t len, cap;
    bool oom;
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->oom)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 1 << 16;
        while (nc < o->len + n + 1)
            nc *= 2;
        char *ns = realloc(o->s, nc);
        if (ns == NULL) {
            o->oom = true;
            return;
        }
        o->s = ns;
        o->cap = nc;
    }
    memcpy(o->s + o->len, s, n);
    o->len += n;
    o->s[o->len] = 0;
}

__attribute__((format(printf, 2, 3))) static void putf(out *o, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    put(o, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* ---- output events, sorted before writing ---- */

typedef struct oev {
    int pid;
    uint64_t tid;
    int64_t ts, dur; /* ns from the trace's start; dur -1 for non-slices */
    uint64_t seq;
    char *json; /* the event without its braces' pid/tid/ts/dur */
} oev;

typedef struct conv {
    rec *r;
    size_t nr, capr;
    oev *o;
    size_t no, capo;
    bool oom;
    uint64_t seq;
    double per; /* ns per tick */
    uint64_t t0;
    int64_t ns_t0;
    uint64_t flowid;
    int repairs;
} conv;

static int64_t ns_of(const conv *c, uint64_t ticks)
{
    return (int64_t)((double)(int64_t)(ticks - c->t0) * c->per);
}

__attribute__((format(printf, 6, 7))) static void emit(conv *c, int pid, uint64_t tid, int64_t ts,
                                                       int64_t dur, const char *fmt, ...)
{
    if (c->oom)
        return;
    char buf[1536];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if (c->no == c->capo) {
        size_t nc = c->capo ? c->capo * 2 : 4096;
        oev *no = realloc(c->o, nc * sizeof *no);
        if (no == NULL) {
            c->oom = true;
            return;
        }
        c->o = no;
        c->capo = nc;
    }
    char *j = strdup(buf);
    if (j == NULL) {
        c->oom = true;
        return;
    }
    oev *v = &c->o[c->no++];
    v->pid = pid;
    v->tid = tid;
    v->ts = ts;
    v->dur = dur;
    v->seq = c->seq++;
    v->json = j;
}

/* A string as a JSON literal into buf (for the formats above). */
static const char *jstr(char *buf, size_t cap, const char *s, size_t n)
{
    size_t k = 0;
    buf[k++] = '"';
    for (size_t i = 0; i < n && k + 8 < cap; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            buf[k++] = '\\';
            buf[k++] = (char)ch;
        } else if (ch < 0x20 || ch >= 0x7f) {
            k += (size_t)snprintf(buf + k, cap - k, "\\u%04x", ch);
        } else {
            buf[k++] = (char)ch;
        }
    }
    buf[k++] = '"';
    buf[k] = 0;
    return buf;
}

static void fn_name(char *buf, size_t cap, uint64_t fn)
{
    Dl_info di;
    if (fn && dladdr((void *)(uintptr_t)fn, &di) && di.dli_sname)
        snprintf(buf, cap, "%s", di.dli_sname);
    else
        snprintf(buf, cap, "%#" PRIx64, fn);
}

/* ---- replay state ---- */

enum { S_UNKNOWN = 0, S_RUNNABLE, S_RUNNING, S_WAITING, S_DEAD };

typedef struct gst {
    uint64_t id;
    int st;
    int64_t since;
    int p;
    int reason;
    uint64_t obj, waker;
    bool syscall;
    int64_t sys_since;
    int64_t p_since; /* since when it runs on p (it may go on without a P) */
    bool named;
    uint64_t fn;
    /* A flow to its next start, from (pid, tid) at ts. */
    bool flow;
    int flow_pid;
    uint64_t flow_tid;
    int64_t flow_ts;
    /* open user regions (a small stack) */
    int nreg;
    int64_t reg_since[16];
    char reg_name[16][64];
} gst;

typedef struct pst {
    bool held;
    uint32_t tid;
    int64_t since;
    uint64_t curg; /* the goroutine running on it, 0 for none */
} pst;

typedef struct replay replay;
static void p_cut(struct conv *c, replay *r, struct gst *g, int64_t ts);

typedef struct tst {
    uint32_t id;
    uint64_t curg; /* the goroutine it last started */
    bool polling;
    int64_t poll_since;
    uint64_t poll_timeout;
} tst;

struct replay {
    gst *g;
    size_t ng, capg;
    pst p[1024];
    tst *t;
    size_t nt;
    int64_t end;
};

static gst *gfind(conv *c, replay *r, uint64_t id)
{
    /* Open addressing on id. */
    if (r->ng * 2 >= r->capg) {
        size_t nc = r->capg ? r->capg * 2 : 1024;
        gst *ng = calloc(nc, sizeof *ng);
        if (ng == NULL) {
            c->oom = true;
            return NULL;
        }
        for (size_t i = 0; i < r->capg; i++) {
            if (r->g[i].id == 0)
                continue;
            size_t j = r->g[i].id * 0x9e3779b97f4a7c15ull >> 20 & (nc - 1);
            while (ng[j].id)
                j = (j + 1) & (nc - 1);
            ng[j] = r->g[i];
        }
        free(r->g);
        r->g = ng;
        r->capg = nc;
    }
    size_t j = id * 0x9e3779b97f4a7c15ull >> 20 & (r->capg - 1);
    while (r->g[j].id && r->g[j].id != id)
        j = (j + 1) & (r->capg - 1);
    if (r->g[j].id == 0) {
        r->g[j].id = id;
        r->g[j].p = -1;
        r->ng++;
    }
    return &r->g[j];
}

static tst *tfind(replay *r, uint32_t id)
{
    for (size_t i = 0; i < r->nt; i++)
        if (r->t[i].id == id)
            return &r->t[i];
    return NULL;
}

static void name_g(conv *c, gst *g)
{
    if (g->named)
        return;
    g->named = true;
    char fn[256], js[600];
    fn_name(fn, sizeof fn, g->fn);
    char nm[300];
    snprintf(nm, sizeof nm, "G%" PRIu64 " %s", g->id, g->fn ? fn : "");
    emit(c, 2, g->id, -1, -1, "\"ph\":\"M\",\"name\":\"thread_name\",\"args\":{\"name\":%s}",
         jstr(js, sizeof js, nm, strlen(nm)));
    emit(c, 2, g->id, -1, -1,
         "\"ph\":\"M\",\"name\":\"thread_sort_index\",\"args\":"
         "{\"sort_index\":%" PRIu64 "}",
         g->id);
}

/* Close g's current state at ts with a slice on its track (and its P's). */
static void close_state(conv *c, gst *g, int64_t ts, const char *why)
{
    if (g->st == S_UNKNOWN || g->st == S_DEAD)
        return;
    int64_t d = ts - g->since;
    if (d < 0)
        d = 0;
    if (g->st == S_RUNNING) {
        emit(c, 2, g->id, g->since, d,
             "\"ph\":\"X\",\"name\":\"running\",\"cat\":\"state\",\"args\":{\"p\":%d,\"end\":\"%"
             "s\"}",
             g->p, why);
        p_cut(c, NULL, g, ts);
    } else if (g->st == S_RUNNABLE) {
        emit(c, 2, g->id, g->since, d,
             "\"ph\":\"X\",\"name\":\"runnable\",\"cat\":\"state\",\"args\":{\"end\":\"%s\"}", why);
    } else if (g->st == S_WAITING) {
        emit(c, 2, g->id, g->since, d,
             "\"ph\":\"X\",\"name\":\"blocked: %s\",\"cat\":\"state\",\"args\":{\"reason\":\"%s\","
             "\"object\":\"%#" PRIx64 "\",\"waker\":%" PRIu64 ",\"end\":\"%s\"}",
             gorc__waitreason_str(g->reason), gorc__waitreason_str(g->reason), g->obj, g->waker,
             why);
    }
}

/* g stops running on its P at ts (it blocks, or goes on without the P). */
static void p_cut(conv *c, replay *r, gst *g, int64_t ts)
{
    (void)r;
    if (g->p < 0)
        return;
    int64_t d = ts - g->p_since;
    emit(c, 1, (uint64_t)g->p, g->p_since, d < 0 ? 0 : d,
         "\"ph\":\"X\",\"name\":\"G%" PRIu64 "\",\"cat\":\"run\",\"args\":{\"goroutine\":%" PRIu64
         "}",
         g->id, g->id);
    g->p = -1;
}

static void set_state(gst *g, int st, int64_t ts)
{
    g->st = st;
    g->since = ts;
}

static void flow_from(conv *c, gst *wakee, int pid, uint64_t tid, int64_t ts)
{
    (void)c;
    wakee->flow = true;
    wakee->flow_pid = pid;
    wakee->flow_tid = tid;
    wakee->flow_ts = ts;
}

/* The waker of an unblock: its goroutine's track if it runs, else a mark on the thread's. */
static void waker_flow(conv *c, replay *r, gst *wakee, uint64_t waker, uint32_t tid, int64_t ts)
{
    if (waker) {
        gst *w = gfind(c, r, waker);
        if (w && w->st == S_RUNNING) {
            flow_from(c, wakee, 2, waker, ts);
            return;
        }
    }
    emit(c, 3, tid, ts, 1, "\"ph\":\"X\",\"name\":\"wake G%" PRIu64 "\",\"cat\":\"wake\"",
         wakee->id);
    flow_from(c, wakee, 3, tid, ts);
}

static void start_flow(conv *c, gst *g, int64_t ts)
{
    if (!g->flow)
        return;
    g->flow = false;
    uint64_t id = ++c->flowid;
    emit(c, g->flow_pid, g->flow_tid, g->flow_ts, -1,
         "\"ph\":\"s\",\"name\":\"wakeup\",\"cat\":\"flow\",\"id\":%" PRIu64, id);
    emit(c, 2, g->id, ts, -1,
         "\"ph\":\"f\",\"bp\":\"e\",\"name\":\"wakeup\",\"cat\":\"flow\",\"id\":%" PRIu64, id);
}

static const char *str_of(const rec *x, size_t *len)
{
    *len = x->e->aux;
    return (const char *)(x->e + 1);
}

static void replay_one(conv *c, replay *r, const rec *x)
{
    const gorc__tev *e = x->e;
    int type = (int)(e->kind & 0xff);
    int reason = (int)(e->kind >> 8 & 0xff);
    int p = (int)(e->kind >> 16) - 1;
    int64_t ts = ns_of(c, e->ts);
    if (ts > r->end)
        r->end = ts;
    gst *g = NULL;
    char js[1200];
    switch (type) {
    case GORC__EV_GO_CREATE:
        if ((g = gfind(c, r, e->g)) == NULL)
            return;
        g->fn = e->arg;
        name_g(c, g);
        if (g->st != S_UNKNOWN)
            c->repairs++;
        set_state(g, S_RUNNABLE, ts);
        emit(c, 2, g->id, ts, -1,
             "\"ph\":\"i\",\"s\":\"t\",\"name\":\"create\",\"args\":{\"parent\":%u}", e->aux);
        waker_flow(c, r, g, e->aux, x->tid, ts);
        return;
    case GORC__EV_GO_STATUS:
        if ((g = gfind(c, r, e->g)) == NULL)
            return;
        g->fn = e->arg;
        name_g(c, g);
        if (g->st != S_UNKNOWN)
            return; /* already seen since the trace began */
        set_state(g,
                  reason == GORC__G_RUNNING   ? S_RUNNING
                  : reason == GORC__G_WAITING ? S_WAITING
                                              : S_RUNNABLE,
                  ts);
        g->reason = (int)e->aux;
        return;
    case GORC__EV_GO_START:
        if ((g = gfind(c, r, e->g)) == NULL)
            return;
        name_g(c, g);
        if (g->st == S_RUNNING || g->st == S_WAITING || g->st == S_DEAD)
            c->repairs++;
        close_state(c, g, ts, "start");
        set_state(g, S_RUNNING, ts);
        g->p = p;
        g->p_since = ts;
        if (p >= 0 && p < 1024) {
            gst *o = r->p[p].curg && r->p[p].curg != g->id ? gfind(c, r, r->p[p].curg) : NULL;
            if (o && o->st == S_RUNNING && o->p == p)
                p_cut(c, r, o, ts); /* it went on without the P, unnoticed */
            r->p[p].curg = g->id;
        }
        {
            tst *t = tfind(r, x->tid);
            if (t)
                t->curg = g->id;
        }
        start_flow(c, g, ts);
        return;
    case GORC__EV_GO_STOP:
    case GORC__EV_GO_BLOCK:
    case GORC__EV_GO_END:
        if ((g = gfind(c, r, e->g)) == NULL)
            return;
        name_g(c, g);
        if (g->st != S_RUNNING && g->st != S_UNKNOWN)
            c->repairs++;
        if (g->st == S_UNKNOWN) {
            g->st = S_RUNNING; /* it ran since before the window */
            g->since = 0;
        }
        if (g->syscall) {
            g->syscall = false;
            emit(c, 2, g->id, g->sys_since, ts - g->sys_since,
                 "\"ph\":\"X\",\"name\":\"blocking call\",\"cat\":\"syscall\"");
        }
        close_state(c, g, ts,
                    type == GORC__EV_GO_STOP  ? "stop"
                    : type == GORC__EV_GO_END ? "end"
                                              : "block");
        if (type == GORC__EV_GO_STOP) {
            set_state(g, S_RUNNABLE, ts);
        } else if (type == GORC__EV_GO_BLOCK) {
            set_state(g, S_WAITING, ts);
            g->reason = reason;
            g->obj = e->arg;
        } else {
            set_state(g, S_DEAD, ts);
            emit(c, 2, g->id, ts, -1, "\"ph\":\"i\",\"s\":\"t\",\"name\":\"end\"");
        }
        return;
    case GORC__EV_GO_UNBLOCK:
        if ((g = gfind(c, r, e->g)) == NULL)
            return;
        name_g(c, g);
        if (g->st != S_WAITING && g->st != S_UNKNOWN)
            c->repairs++;
        if (g->st == S_UNKNOWN)
            set_state(g, S_WAITING, 0);
        g->waker = e->arg;
        close_state(c, g, ts, "unblock");
        set_state(g, S_RUNNABLE, ts);
        waker_flow(c, r, g, e->arg, x->tid, ts);
        return;
    case GORC__EV_SYSCALL_BEGIN:
        if ((g = gfind(c, r, e->g)) == NULL)
            return;
        g->syscall = true;
        g->sys_since = ts;
        if (g->st == S_RUNNING)
            p_cut(c, r, g, ts); /* the P is handed off for the call */
        return;
    case GORC__EV_SYSCALL_END:
        if ((g = gfind(c, r, e->g)) == NULL)
            return;
        if (g->syscall)
            emit(c, 2, g->id, g->sys_since, ts - g->sys_since,
                 "\"ph\":\"X\",\"name\":\"blocking call\",\"cat\":\"syscall\"");
        g->syscall = false;
        return;
    case GORC__EV_PROC_START:
    case GORC__EV_PROC_STOP:
    case GORC__EV_RETAKE: {
        if (p < 0 || p >= 1024)
            return;
        pst *ps = &r->p[p];
        if (ps->held && (type != GORC__EV_PROC_STOP || ps->tid == x->tid)) {
            emit(c, 3, ps->tid, ps->since, ts - ps->since,
                 "\"ph\":\"X\",\"name\":\"P%d\",\"cat\":\"proc\",\"args\":{\"end\":\"%s\"}", p,
                 type == GORC__EV_RETAKE      ? "retaken"
                 : type == GORC__EV_PROC_STOP ? "released"
                                              : "moved");
            ps->held = false;
        }
        if (type == GORC__EV_PROC_START) {
            ps->held = true;
            ps->tid = x->tid;
            ps->since = ts;
            /* A goroutine back from a blocking call goes on on this P. */
            tst *t = tfind(r, x->tid);
            gst *cg = t && t->curg ? gfind(c, r, t->curg) : NULL;
            if (cg && cg->st == S_RUNNING && cg->p < 0) {
                cg->p = p;
                cg->p_since = ts;
                ps->curg = cg->id;
            }
        } else if (type == GORC__EV_RETAKE) {
            gst *cg = ps->curg ? gfind(c, r, ps->curg) : NULL;
            if (cg && cg->st == S_RUNNING && cg->p == p)
                p_cut(c, r, cg, ts);
            emit(c, 3, x->tid, ts, -1,
                 "\"ph\":\"i\",\"s\":\"t\",\"name\":\"retake P%d\",\"args\":{\"from_m\":%" PRIu64
                 "}",
                 p, e->arg);
            emit(c, 1, (uint64_t)p, ts, -1, "\"ph\":\"i\",\"s\":\"t\",\"name\":\"retaken\"");
        }
        return;
    }
    case GORC__EV_POLL_BEGIN: {
        tst *t = tfind(r, x->tid);
        if (t) {
            t->polling = true;
            t->poll_since = ts;
            t->poll_timeout = e->arg;
        }
        return;
    }
    case GORC__EV_POLL_END: {
        tst *t = tfind(r, x->tid);
        if (t && t->polling) {
            emit(c, 3, x->tid, t->poll_since, ts - t->poll_since,
                 "\"ph\":\"X\",\"name\":\"netpoll wait\",\"cat\":\"poll\",\"args\":{\"ready\":%u,"
                 "\"timeout_ns\":%" PRId64 "}",
                 e->aux, (int64_t)t->poll_timeout);
            t->polling = false;
        }
        return;
    }
    case GORC__EV_TIMER:
        emit(c, 3, x->tid, ts, -1,
             "\"ph\":\"i\",\"s\":\"t\",\"name\":\"timer\",\"args\":{\"timer\":\"%#" PRIx64 "\"}",
             e->arg);
        return;
    case GORC__EV_TASK_BEGIN: {
        size_t n;
        const char *s = str_of(x, &n);
        emit(c, 4, 0, ts, -1,
             "\"ph\":\"b\",\"cat\":\"task\",\"name\":%s,\"id\":%" PRIu64
             ",\"args\":{\"parent\":%" PRIu64 "}",
             jstr(js, sizeof js, s, n), e->arg, e->g);
        return;
    }
    case GORC__EV_TASK_END:
        emit(c, 4, 0, ts, -1, "\"ph\":\"e\",\"cat\":\"task\",\"name\":\"task\",\"id\":%" PRIu64,
             e->arg);
        return;
    case GORC__EV_REGION_BEGIN:
    case GORC__EV_REGION_END: {
        if ((g = gfind(c, r, e->g)) == NULL)
            return;
        size_t n;
        const char *s = str_of(x, &n);
        if (type == GORC__EV_REGION_BEGIN) {
            if (g->nreg < 16) {
                g->reg_since[g->nreg] = ts;
                snprintf(g->reg_name[g->nreg], sizeof g->reg_name[0], "%.*s", (int)n, s);
            }
            g->nreg++;
        } else if (g->nreg > 0) {
            g->nreg--;
            if (g->nreg < 16)
                emit(c, 4, g->id, g->reg_since[g->nreg], ts - g->reg_since[g->nreg],
                     "\"ph\":\"X\",\"cat\":\"region\",\"name\":%s,\"args\":{\"task\":%" PRIu64 "}",
                     jstr(js, sizeof js, g->reg_name[g->nreg], strlen(g->reg_name[g->nreg])),
                     e->arg);
        }
        return;
    }
    case GORC__EV_LOG: {
        size_t n;
        const char *s = str_of(x, &n);
        size_t k = strnlen(s, n);
        const char *msg = k < n ? s + k + 1 : "";
        size_t mn = k < n ? n - k - 1 : 0;
        char js2[1200];
        emit(c, 2, e->g, ts, -1,
             "\"ph\":\"i\",\"s\":\"t\",\"name\":\"log\",\"cat\":\"log\",\"args\":{\"task\":%" PRIu64
             ",\"category\":%s,\"message\":%s}",
             e->arg, jstr(js, sizeof js, s, k), jstr(js2, sizeof js2, msg, mn));
        return;
    }
    default:
        return;
    }
}

static int cmp_rec(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    if (x->e->ts != y->e->ts)
        return x->e->ts < y->e->ts ? -1 : 1;
    return x->ord < y->ord ? -1 : x->ord > y->ord;
}

static int cmp_oev(const void *a, const void *b)
{
    const oev *x = a, *y = b;
    if (x->pid != y->pid)
        return x->pid - y->pid;
    if (x->tid != y->tid)
        return x->tid < y->tid ? -1 : 1;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->dur != y->dur)
        return x->dur > y->dur ? -1 : 1; /* enclosing slices first */
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Read the frames into c->r; -EINVAL if the data is not a gorc trace. */
static int parse(conv *c, const unsigned char *d, size_t n, replay *r)
{
    if (n < 8 || memcmp(d, "GORCTRC1", 8) != 0)
        return -EINVAL;
    size_t off = 8;
    bool have_sync = false;
    uint64_t s0t = 0, s1t = 0;
    int64_t s0n = 0, s1n = 0;
    while (off < n) {
        if (n - off < 16)
            return -EINVAL;
        uint32_t h[4];
        memcpy(h, d + off, 16);
        uint64_t len = (uint64_t)h[2] | (uint64_t)h[3] << 32;
        off += 16;
        if (len > n - off)
            return -EINVAL;
        if (h[0] == 1) {
            if (len != 16)
                return -EINVAL;
            int64_t v[2];
            memcpy(v, d + off, 16);
            if (!have_sync) {
                s0t = (uint64_t)v[0];
                s0n = v[1];
                have_sync = true;
            }
            s1t = (uint64_t)v[0];
            s1n = v[1];
        } else if (h[0] == 2) {
            if (len % sizeof(gorc__tev) != 0 || ((uintptr_t)(d + off) % 8) != 0)
                return -EINVAL;
            if (tfind(r, h[1]) == NULL) {
                tst *nt = realloc(r->t, (r->nt + 1) * sizeof *nt);
                if (nt == NULL)
                    return -ENOMEM;
                r->t = nt;
                r->t[r->nt++] = (tst){.id = h[1]};
            }
            const gorc__tev *e = (const gorc__tev *)(const void *)(d + off);
            size_t k = (size_t)(len / sizeof(gorc__tev));
            for (size_t i = 0; i < k; i++) {
                int type = (int)(e[i].kind & 0xff);
                uint32_t slots = 0;
                if (type == GORC__EV_TASK_BEGIN || type == GORC__EV_REGION_BEGIN ||
                    type == GORC__EV_REGION_END || type == GORC__EV_LOG)
                    slots =
                        (e[i].aux + (uint32_t)sizeof(gorc__tev) - 1) / (uint32_t)sizeof(gorc__tev);
                if (slots > k - i - 1)
                    return -EINVAL;
                if (type != GORC__EV_NONE && type != GORC__EV_STRING && type < GORC__EV_COUNT) {
                    if (c->nr == c->capr) {
                        size_t nc = c->capr ? c->capr * 2 : 1 << 14;
                        rec *nr = realloc(c->r, nc * sizeof *nr);
                        if (nr == NULL)
                            return -ENOMEM;
                        c->r = nr;
                        c->capr = nc;
                    }
                    c->r[c->nr] = (rec){&e[i], h[1], c->nr};
                    c->nr++;
                }
                i += slots;
            }
        } else {
            return -EINVAL;
        }
        off += (size_t)len;
    }
    if (!have_sync)
        return -EINVAL;
    c->per = s1t > s0t && s1n > s0n ? (double)(s1n - s0n) / (double)(s1t - s0t) : 1.0;
    c->t0 = s0t;
    c->ns_t0 = s0n;
    return 0;
}

int gorc_trace_json(const void *trace, size_t n, char **json, size_t *len)
{
    if (trace == NULL || json == NULL || len == NULL)
        return -EINVAL;
    conv c = {0};
    replay *r = calloc(1, sizeof *r);
    if (r == NULL)
        return -ENOMEM;
    /* The events are read in place: an unaligned buffer is copied first. */
    const unsigned char *d = trace;
    unsigned char *copy = NULL;
    if ((uintptr_t)d % 8 != 0) {
        if ((copy = malloc(n + 8)) == NULL) {
            free(r);
            return -ENOMEM;
        }
        memcpy(copy, d, n);
        d = copy;
    }
    /* Frames start 8 + 16 bytes into the file and are multiples of 8 long: aligned. */
    int rc = parse(&c, d, n, r);
    if (rc == 0) {
        qsort(c.r, c.nr, sizeof *c.r, cmp_rec);
        /* The earliest event is time 0. */
        if (c.nr > 0 && c.r[0].e->ts < c.t0)
            c.t0 = c.r[0].e->ts;
        for (size_t i = 0; i < c.nr && !c.oom; i++)
            replay_one(&c, r, &c.r[i]);
        /* Close what is still open at the end of the trace. */
        for (size_t i = 0; i < r->capg; i++)
            if (r->g[i].id)
                close_state(&c, &r->g[i], r->end, "trace end");
        for (int p = 0; p < 1024; p++)
            if (r->p[p].held)
                emit(&c, 3, r->p[p].tid, r->p[p].since, r->end - r->p[p].since,
                     "\"ph\":\"X\",\"name\":\"P%d\",\"cat\":\"proc\",\"args\":{\"end\":\"trace "
                     "end\"}",
                     p);
        rc = c.oom ? -ENOMEM : 0;
    }
    out o = {0};
    if (rc == 0) {
        qsort(c.o, c.no, sizeof *c.o, cmp_oev);
        putf(&o, "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"producer\":\"gorc\",");
        putf(&o, "\"events\":%zu,\"goroutines\":%zu,\"repairs\":%d,\"start_ns\":%" PRId64 "},\n",
             c.nr, r->ng, c.repairs, c.ns_t0);
        putf(&o, "\"traceEvents\":[\n");
        static const char *const pname[] = {"", "Procs", "Goroutines", "Threads", "User"};
        for (int pid = 1; pid <= 4; pid++)
            putf(&o,
                 "{\"ph\":\"M\",\"pid\":%d,\"tid\":0,\"name\":\"process_name\",\"args\":{\"name\":"
                 "\"%s\"}},\n{\"ph\":\"M\",\"pid\":%d,\"tid\":0,\"name\":\"process_sort_index\","
                 "\"args\":{\"sort_index\":%d}},\n",
                 pid, pname[pid], pid, pid);
        for (int p = 0; p < 1024; p++)
            if (r->p[p].since || r->p[p].held)
                putf(&o,
                     "{\"ph\":\"M\",\"pid\":1,\"tid\":%d,\"name\":\"thread_name\",\"args\":{"
                     "\"name\":\"P%d\"}},\n",
                     p, p);
        for (size_t i = 0; i < r->nt; i++)
            putf(&o,
                 "{\"ph\":\"M\",\"pid\":3,\"tid\":%u,\"name\":\"thread_name\",\"args\":{\"name\":"
                 "\"thread %u\"}},\n",
                 r->t[i].id, r->t[i].id);
        for (size_t i = 0; i < c.no; i++) {
            oev *v = &c.o[i];
            putf(&o, "{\"pid\":%d,\"tid\":%" PRIu64 ",", v->pid, v->tid);
            if (v->ts >= 0)
                putf(&o, "\"ts\":%" PRId64 ".%03d,", v->ts / 1000, (int)(v->ts % 1000));
            if (v->dur >= 0)
                putf(&o, "\"dur\":%" PRId64 ".%03d,", v->dur / 1000, (int)(v->dur % 1000));
            put(&o, v->json, strlen(v->json));
            put(&o, i + 1 < c.no ? "},\n" : "}\n", i + 1 < c.no ? 3 : 2);
        }
        put(&o, "]}\n", 3);
        if (o.oom)
            rc = -ENOMEM;
    }
    for (size_t i = 0; i < c.no; i++)
        free(c.o[i].json);
    free(c.o);
    free(c.r);
    free(r->g);
    free(r->t);
    free(r);
    free(copy);
    if (rc != 0) {
        free(o.s);
        return rc;
    }
    *json = o.s;
    *len = o.len;
    return 0;
}
