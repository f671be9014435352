/*
 * sim.c - deterministic simulation runs: one thread, one private P, every choice from a seed,
 * virtual time.
 *
 * A run is the calling thread made into an M (gorc__sim_m_attach) that holds a P of its own,
 * `simp`, outside the scheduler's allp: no other M steals from it, the monitor never looks at
 * it (so never preempts or retakes it), and the poller never readies anything onto it. The
 * thread's own stack is the run's g0, and this file's loop runs there. Every goroutine the
 * run starts is marked with the run (g->sim, inherited at spawn from the M), and the
 * scheduler's hooks (src/runtime/proc.c, each behind gorc__sim_on()) send all of them here:
 * readying one puts it in the run's runnable set instead of a run queue, and one that parks,
 * yields or exits always switches back to g0. The loop then picks the next goroutine at
 * random from the set, from the run's random state, which is the M's own (gorc__rand), seeded
 * from the seed: select's poll order, the runtime's other random choices and the tests' own
 * (gorc_sim_rand) draw from the same stream. There is no stealing, no global queue, no
 * fairness tick and no other thread, so the schedule is a function of the seed and the
 * program.
 *
 * Time. gorc__nanotime returns the run's clock on the run's thread. The run's timers (sleeps,
 * timeouts, tickers, deadlines) are in simp's heap; when the runnable set is empty the loop
 * first releases a goroutine in gorc_sim_wait (every other one is now durably blocked), then
 * jumps the clock to the earliest timer and runs it. The clock starts at 2000-01-01 00:00:00
 * UTC in nanoseconds, as Go's synctest's does.
 *
 * Outside the run. A goroutine of the run parked on a real descriptor (W_IO) is not durably
 * blocked: while any is, the clock stands still and the loop waits in real time, polling the
 * descriptors itself, for wake-ups that come from other threads (the poller, a foreign
 * thread) through a locked queue. A call declared blocking (gorc_blocking) simply blocks the
 * run's thread. With nothing runnable, no timer and nobody waiting outside, the run is
 * deadlocked, reported as the scheduler's detector reports it, with the seed, and the process
 * exits with status 2; while foreign threads exist the loop first waits a second of real time
 * for one of them to wake a goroutine of the run.
 *
 * Shared fields: everything in gorc__sim belongs to the run's thread, except the outside
 * queue (extlock) and its futex word.
 */
#include "sim/sim.h"

#include "runtime/netpoll.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Atomic int gorc__sim_nactive;

/* 2000-01-01 00:00:00 UTC, as nanoseconds since 1970: where Go's synctest clock starts. */
#define VSTART ((int64_t)946684800 * GORC_SECOND)

struct gorc__sim {
    uint64_t seed;
    gorc__m *m;
    gorc__p *p;
    int64_t now;
    gorc__g **run; /* the runnable set */
    int nrun, caprun;
    gorc__g *waiter;  /* in gorc_sim_wait */
    int next;         /* goroutines parked on real descriptors (g->simext) */
    uint64_t goid0;   /* trace ids are relative to the last id before the run */
    uint64_t steps;   /* goroutine switches so far */
    bool root_done;   /* fn returned */
    bool end_at_root; /* gorc_main's run: over when fn returns, as a program is */
    gorc_fn fn;
    void *arg;
    gorc__lock extlock; /* guards exthead, exttail */
    gorc__g *exthead, *exttail;
    _Atomic uint32_t extfutex; /* 1: something may be on the outside queue */
    double perturb;
    int64_t step_ns;
    uint32_t faults;
    double fault_rate;
    uint32_t fault_at;
    uint32_t fault_calls[GORC_SIM_FAULT_COUNT];
    FILE *trace;
    int rc;
    gorc__pd **pds; /* the run's descriptors (pd->simidx), in the order they were made */
    int npds, cappds;
    struct pollfd *pfd;
    gorc__pd **ppd;
    void (*on_end)(void); /* gorc__sim_on_end */
};

/* Goroutines the run's P spawned that have not ended (only the run's thread writes them). */
static int64_t p_live(gorc__p *p)
{
    return (int64_t)(atomic_load_explicit(&p->nspawned, memory_order_relaxed) -
                     atomic_load_explicit(&p->nended, memory_order_relaxed));
}

static gorc__p simp; /* the runs' P, one run at a time, reused (caches, heap) */
static gorc__sim *cur;

static const char *const fault_names[GORC_SIM_FAULT_COUNT] = {
    "spawn", "chan", "accept", "dial", "reset", "short", "slow",
};

static gorc__sim *sim_of_caller(void)
{
    gorc__m *m = gorc__getm();
    if (m == NULL || m->sim == NULL || m->curg == &m->g0)
        return NULL;
    return m->sim;
}

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * GORC_SECOND + ts.tv_nsec;
}

/* A uniform double in [0, 1) from the run's stream. */
static double rand01(void)
{
    return (double)(gorc__rand() >> 11) * 0x1.0p-53;
}

/* ---- the runnable set ---- */

static void push(gorc__sim *s, gorc__g *g)
{
    if (g->simext) {
        g->simext = false;
        s->next--;
    }
    if (s->nrun == s->caprun) {
        int nc = s->caprun ? s->caprun * 2 : 64;
        gorc__g **r = realloc(s->run, (size_t)nc * sizeof *r);
        if (r == NULL)
            gorc__fatal("out of memory in a simulation run's runnable set");
        s->run = r;
        s->caprun = nc;
    }
    s->run[s->nrun++] = g;
}

void gorc__sim_ready(gorc__g *g)
{
    gorc__sim *s = g->sim;
    g->waitreason = GORC__W_NONE;
    atomic_store_explicit(&g->status, GORC__G_RUNNABLE, memory_order_relaxed);
    if (gorc__getm() == s->m) {
        push(s, g);
        return;
    }
    gorc__lock_acquire(&s->extlock);
    g->schedlink = NULL;
    if (s->exttail)
        s->exttail->schedlink = g;
    else
        s->exthead = g;
    s->exttail = g;
    gorc__lock_release(&s->extlock);
    atomic_store(&s->extfutex, 1);
    gorc__futex_wake(&s->extfutex, 1);
}

static void drain_outside(gorc__sim *s)
{
    gorc__lock_acquire(&s->extlock);
    gorc__g *g = s->exthead;
    s->exthead = s->exttail = NULL;
    atomic_store(&s->extfutex, 0);
    gorc__lock_release(&s->extlock);
    while (g) {
        gorc__g *next = g->schedlink;
        push(s, g);
        g = next;
    }
}

/* Wait in real time for a wake-up from outside the run, at most max ns (-1: no limit): poll
 * the real descriptors (nobody else may be: a program may have no other M), then sleep a
 * millisecond on the outside queue. True if something became runnable. */
static int poll_run_fds(gorc__sim *s);

static bool wait_outside(gorc__sim *s, int64_t max)
{
    int64_t start = realtime_ns();
    for (;;) {
        poll_run_fds(s);
        if (gorc__netpoll_waiters() > 0) {
            gorc__g *tail;
            int n = 0;
            gorc__g *head = gorc__netpoll(0, &tail, &n);
            if (n > 0)
                gorc__inject(head, tail, n); /* ours come back through gorc__sim_ready */
        }
        if (atomic_load(&s->extfutex))
            drain_outside(s);
        if (s->nrun > 0)
            return true;
        if (max >= 0 && realtime_ns() - start >= max)
            return false;
        gorc__futex_wait(&s->extfutex, 0, GORC_MILLISECOND);
    }
}

/* ---- the run's descriptors ---- */

bool gorc__sim_io_adopt(gorc__pd *pd)
{
    gorc__m *m = gorc__getm();
    if (m == NULL || m->sim == NULL)
        return false;
    gorc__sim *s = m->sim;
    if (s->npds == s->cappds) {
        int nc = s->cappds ? s->cappds * 2 : 16;
        gorc__pd **a = realloc(s->pds, (size_t)nc * sizeof *a);
        struct pollfd *f = realloc(s->pfd, (size_t)nc * sizeof *f);
        if (f)
            s->pfd = f;
        gorc__pd **b = realloc(s->ppd, (size_t)nc * sizeof *b);
        if (b)
            s->ppd = b;
        if (a)
            s->pds = a;
        if (a == NULL || f == NULL || b == NULL)
            return false; /* the backend watches it instead: correct, less deterministic */
        s->cappds = nc;
    }
    pd->sim = s;
    pd->simidx = s->npds;
    s->pds[s->npds++] = pd;
    return true;
}

void gorc__sim_io_forget(gorc__pd *pd)
{
    gorc__sim *s = pd->sim;
    /* Keep the order of the rest: it is the order in which readiness is handed out. */
    memmove(&s->pds[pd->simidx], &s->pds[pd->simidx + 1],
            (size_t)(s->npds - pd->simidx - 1) * sizeof s->pds[0]);
    s->npds--;
    for (int i = pd->simidx; i < s->npds; i++)
        s->pds[i]->simidx = i;
    pd->sim = NULL;
}

void gorc__sim_io_wait(gorc__g *g, gorc__pd *pd)
{
    if (g->sim == NULL || pd->sim != NULL || pd->simvirt)
        return;       /* not a goroutine of a run, or a descriptor the run itself drives */
    g->simext = true; /* until push() takes it back */
    g->sim->next++;
}

/* poll(2) the run's descriptors that have a waiter, without blocking, and hand readiness to
 * their waiters in the order the descriptors were made. Returns how many were readied. */
static int poll_run_fds(gorc__sim *s)
{
    int n = 0;
    for (int i = 0; i < s->npds; i++) {
        gorc__pd *pd = s->pds[i];
        short ev = 0;
        if (atomic_load_explicit(&pd->rg, memory_order_acquire) > GORC__PD_WAIT)
            ev |= POLLIN | POLLRDHUP | POLLPRI;
        if (atomic_load_explicit(&pd->wg, memory_order_acquire) > GORC__PD_WAIT)
            ev |= POLLOUT;
        if (ev == 0)
            continue;
        s->pfd[n] = (struct pollfd){.fd = pd->fd, .events = ev};
        s->ppd[n++] = pd;
    }
    if (n == 0 || poll(s->pfd, (nfds_t)n, 0) <= 0)
        return 0;
    int readied = 0;
    for (int i = 0; i < n; i++) {
        short re = s->pfd[i].revents;
        if (re == 0)
            continue;
        int mode = 0;
        if (re & (POLLIN | POLLRDHUP | POLLPRI | POLLHUP | POLLERR))
            mode += 'r';
        if (re & (POLLOUT | POLLHUP | POLLERR))
            mode += 'w';
        if (re & (POLLPRI | POLLRDHUP | POLLHUP | POLLERR))
            gorc__pd_unusual(s->ppd[i]);
        gorc__glist l = {0};
        gorc__netpoll_ready(s->ppd[i], mode, &l);
        for (gorc__g *g = l.head, *next; g; g = next) {
            next = g->schedlink;
            gorc__ready(g);
            readied++;
        }
    }
    return readied;
}

/* The run is over: descriptors it made that are still open go to the backend. */
static void release_fds(gorc__sim *s)
{
    for (int i = 0; i < s->npds; i++) {
        gorc__pd *pd = s->pds[i];
        pd->sim = NULL;
        (void)gorc__netpoll_open(pd->fd, pd);
    }
    s->npds = 0;
    free(s->pds);
    free(s->pfd);
    free(s->ppd);
}

/* ---- reports ---- */

/* The command line of this process, shell-quoted, for the replay hint. */
static void print_cmdline(FILE *f)
{
    char buf[4096];
    FILE *c = fopen("/proc/self/cmdline", "r");
    size_t n = c ? fread(buf, 1, sizeof buf - 1, c) : 0;
    if (c)
        fclose(c);
    buf[n] = 0;
    for (size_t i = 0; i < n; i += strlen(buf + i) + 1) {
        fputs(i ? " '" : "'", f);
        for (const char *q = buf + i; *q; q++)
            if (*q == '\'')
                fputs("'\\''", f);
            else
                fputc(*q, f);
        fputc('\'', f);
    }
}

/* x as the shortest text that reads back as x. */
static void print_double(FILE *f, const char *name, double x)
{
    char buf[40];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            break;
    }
    fprintf(f, "%s=%s ", name, buf);
}

static void note(const gorc__sim *s, FILE *f)
{
    int64_t t = s->now - VSTART;
    fprintf(f,
            "simulation seed %" PRIu64 " (0x%" PRIx64 "), step %" PRIu64 ", virtual time %" PRId64
            ".%09" PRId64 "s\nreplay: GORC_SIM_SEED=%" PRIu64 " ",
            s->seed, s->seed, s->steps, t / GORC_SECOND, t % GORC_SECOND, s->seed);
    /* The run's options, as the variables that set them. */
    if (s->step_ns > 0)
        fprintf(f, "GORC_SIM_STEP_NS=%" PRId64 " ", s->step_ns);
    if (s->perturb > 0)
        print_double(f, "GORC_SIM_PERTURB", s->perturb);
    if (s->faults) {
        const char *sep = "GORC_SIM_FAULTS=";
        for (int k = 0; k < GORC_SIM_FAULT_COUNT; k++)
            if (s->faults & (1u << k)) {
                fprintf(f, "%s%s", sep, fault_names[k]);
                sep = ",";
            }
        fputc(' ', f);
        if (s->fault_at)
            fprintf(f, "GORC_SIM_FAULT_AT=%u ", s->fault_at);
        else
            print_double(f, "GORC_SIM_FAULT_RATE", s->fault_rate);
    }
    print_cmdline(f);
    fputc('\n', f);
}

void gorc__sim_fatal_note(void)
{
    gorc__m *m = gorc__getm();
    if (m && m->sim) {
        note(m->sim, stderr);
        if (m->sim->trace)
            fflush(m->sim->trace);
    }
}

/* cppcheck-suppress constParameter ; gorc__each_g's callback type */
static void dump_one(gorc__g *g, void *arg)
{
    if (g->sim != arg)
        return;
    uint32_t st = atomic_load(&g->status);
    fprintf(stderr, "goroutine %llu [%s]:\n\tstarted at %p(%p)\n", (unsigned long long)g->id,
            st == GORC__G_WAITING ? gorc__waitreason_str(g->waitreason) : "runnable",
            (void *)(uintptr_t)g->fn, g->arg);
    if (g->spawnpc)
        fprintf(stderr, "\tcreated at %p by goroutine %llu\n", (void *)g->spawnpc,
                (unsigned long long)g->parent);
    fputc('\n', stderr);
}

__attribute__((noreturn)) static void deadlock(gorc__sim *s)
{
    if (s->root_done)
        fprintf(stderr, "fatal error: all goroutines are asleep - deadlock! (the run's main "
                        "goroutine returned; blocked goroutines remain)\n\n");
    else
        fprintf(stderr, "fatal error: all goroutines are asleep - deadlock!\n\n");
    note(s, stderr);
    fputc('\n', stderr);
    gorc__each_g(dump_one, s);
    fflush(stderr);
    if (s->trace)
        fflush(s->trace);
    _exit(2);
}

/* ---- the loop ---- */

static void trace(gorc__sim *s, const char *what, uint64_t a, const char *b)
{
    fprintf(s->trace, "%" PRIu64 " %" PRId64 " %s %" PRIu64 "%s%s\n", s->steps, s->now - VSTART,
            what, a, b ? " " : "", b ? b : "");
}

static void sim_loop(gorc__sim *s)
{
    gorc__m *m = s->m;
    for (;;) {
        /* Wake-ups from outside and the run's own descriptors are looked at when nothing else
         * can run (and every 1024 switches, for programs that spin), never in between: the
         * schedule must not depend on when another thread got round to something. */
        if (s->nrun == 0 || s->steps % 1024 == 0) {
            if (atomic_load_explicit(&s->extfutex, memory_order_acquire))
                drain_outside(s);
            poll_run_fds(s);
        }
        if (s->step_ns > 0) { /* time passes with work too: due timers run between switches */
            s->now += s->step_ns;
            int64_t t0 = atomic_load_explicit(&s->p->timer0, memory_order_relaxed);
            if (t0 != 0 && t0 <= s->now)
                gorc__timers_run(s->p, s->now);
        }
        if (s->nrun > 0) {
            int i = s->nrun > 1 ? (int)(gorc__rand() % (uint64_t)s->nrun) : 0;
            gorc__g *g = s->run[i];
            s->run[i] = s->run[--s->nrun];
            s->steps++;
            if (s->trace)
                trace(s, "run", g->id - s->goid0, NULL);
            gorc__sim_exec(m, g);
            gorc__sim_after(m);
            continue;
        }
        if (p_live(s->p) == 0 || (s->end_at_root && s->root_done))
            return;
        if (s->next > 0) {
            wait_outside(s, -1);
            continue;
        }
        if (s->waiter) {
            gorc__g *w = s->waiter;
            s->waiter = NULL;
            gorc__ready(w);
            continue;
        }
        int64_t t0 = atomic_load(&s->p->timer0);
        if (t0 != 0) {
            if (t0 > s->now) {
                s->now = t0;
                if (s->trace)
                    trace(s, "time", 0, NULL);
            }
            gorc__timers_run(s->p, s->now);
            continue;
        }
        /* Before calling it a deadlock, give the kernel (the run's sockets) and foreign threads
         * a moment of real time. */
        if ((s->npds > 0 || gorc__nforeign() > 0) && wait_outside(s, GORC_SECOND / 5))
            continue;
        deadlock(s);
    }
}

static void root(void *arg)
{
    gorc__sim *s = arg;
    s->fn(s->arg);
    s->root_done = true;
}

static uint64_t splitmix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* The run, on the calling thread. */
static void run_here(gorc__sim *s)
{
    simp.id = -1;
    gorc__m *m = gorc__sim_m_attach(&simp);
    if (m == NULL) {
        s->rc = -ENOMEM;
        return;
    }
    m->sim = s;
    s->m = m;
    s->p = &simp;
    m->rnd = splitmix(s->seed) | 1; /* xorshift's state must not be 0 */
    if (s->perturb > 0)             /* every gorc__may_block then calls gorc__sim_point */
        atomic_store(&m->preempt, GORC__PREEMPT_ASKED);
    s->now = VSTART;
    s->goid0 = gorc__last_goid();
    cur = s;
    s->rc = gorc__go_from(root, s, (uintptr_t)s->fn, false);
    if (s->rc == 0)
        sim_loop(s);
    if (s->on_end)
        s->on_end();
    gorc__timers_clear(&simp);
    release_fds(s);
    cur = NULL;
    m->sim = NULL;
    gorc__sim_m_detach(m);
}

static void *run_thread(void *arg)
{
    run_here(arg);
    return NULL;
}

static void *join_thread(void *arg)
{
    pthread_join(*(pthread_t *)arg, NULL);
    return NULL;
}

static int sim_run(uint64_t seed, gorc_fn fn, void *arg, const gorc_sim_opts *opts, bool prog)
{
    if (fn == NULL)
        return -EINVAL;
    gorc_sim_opts o = opts ? *opts : (gorc_sim_opts){0};
    if (!(o.perturb >= 0 && o.perturb <= 1) || !(o.fault_rate >= 0 && o.fault_rate <= 1) ||
        o.step_ns < 0)
        return -EINVAL;
    int rc = gorc__ensure_init();
    if (rc != 0)
        return rc;
    int zero = 0;
    if (!atomic_compare_exchange_strong(&gorc__sim_nactive, &zero, 1))
        return -EBUSY;
    gorc__sim *s = calloc(1, sizeof *s);
    if (s == NULL) {
        atomic_store(&gorc__sim_nactive, 0);
        return -ENOMEM;
    }
    s->seed = seed;
    s->fn = fn;
    s->arg = arg;
    s->end_at_root = prog;
    s->perturb = o.perturb;
    s->step_ns = o.step_ns;
    s->faults = o.faults;
    s->fault_rate = o.fault_rate;
    s->fault_at = o.fault_at;
    if (o.trace && (s->trace = fopen(o.trace, "w")) == NULL) {
        rc = -errno;
        free(s);
        atomic_store(&gorc__sim_nactive, 0);
        return rc;
    }
    if (s->trace) /* a run that ends in abort() leaves a whole trace behind */
        setvbuf(s->trace, NULL, _IOLBF, 0);
    gorc__m *m = gorc__getm();
    if (m == NULL) {
        run_here(s);
    } else {
        /* A goroutine: the run needs a thread of its own; wait for it as a blocking call. */
        pthread_t t;
        if (pthread_create(&t, NULL, run_thread, s) != 0)
            s->rc = -EAGAIN;
        else
            gorc_blocking(join_thread, &t);
    }
    rc = s->rc;
    if (s->trace)
        fclose(s->trace);
    free(s->run);
    free(s);
    atomic_store(&gorc__sim_nactive, 0);
    return rc;
}

int gorc_sim_run(uint64_t seed, gorc_fn fn, void *arg, const gorc_sim_opts *opts)
{
    return sim_run(seed, fn, arg, opts, false);
}

/* ---- inside a run ---- */

int64_t gorc__sim_now(const gorc__m *m)
{
    return m->sim->now;
}

bool gorc__sim_clock(int64_t *ns)
{
    gorc__m *m = gorc__getm();
    if (m == NULL || m->sim == NULL)
        return false;
    *ns = m->sim->now;
    return true;
}

void gorc__sim_on_end(void (*fn)(void))
{
    gorc__m *m = gorc__getm();
    if (m && m->sim)
        m->sim->on_end = fn;
}

int64_t gorc__sim_count(void)
{
    return cur ? p_live(&simp) : 0;
}

void gorc__sim_point(void)
{
    gorc__sim *s = sim_of_caller();
    if (s && s->perturb > 0 && rand01() < s->perturb)
        gorc_yield();
}

bool gorc__sim_fault(int kind)
{
    gorc__m *m = gorc__getm();
    if (m == NULL || m->sim == NULL || !(m->sim->faults & (1u << kind)))
        return false;
    gorc__sim *s = m->sim;
    uint32_t n = ++s->fault_calls[kind];
    bool hit = s->fault_at ? n == s->fault_at : rand01() < s->fault_rate;
    if (hit && s->trace)
        trace(s, "fault", n, fault_names[kind]);
    return hit;
}

bool gorc_sim_active(void)
{
    return sim_of_caller() != NULL;
}

uint64_t gorc_sim_seed(void)
{
    gorc__sim *s = sim_of_caller();
    return s ? s->seed : 0;
}

uint64_t gorc_sim_rand(void)
{
    return gorc__rand(); /* in a run, the M's state is the run's */
}

int gorc_sim_wait(void)
{
    gorc__sim *s = sim_of_caller();
    if (s == NULL)
        return -EINVAL;
    if (s->waiter)
        return -EBUSY;
    s->waiter = gorc__getg();
    gorc__park(GORC__W_SIM_WAIT, NULL, NULL);
    return 0;
}

/* ---- whole programs: gorc_main under GORC_SIM_SEED ---- */

static bool env_double(const char *name, double *out)
{
    const char *e = getenv(name);
    if (e == NULL || *e == 0)
        return true;
    char *end;
    *out = strtod(e, &end);
    return *end == 0;
}

bool gorc__sim_main(gorc_fn fn, void *arg, int *rc)
{
    const char *e = getenv("GORC_SIM_SEED");
    if (e == NULL || *e == 0)
        return false;
    char *end;
    gorc_sim_opts o = {0};
    uint64_t seed = strtoull(e, &end, 0);
    bool ok = *end == 0 && env_double("GORC_SIM_PERTURB", &o.perturb) &&
              env_double("GORC_SIM_FAULT_RATE", &o.fault_rate);
    const char *step = getenv("GORC_SIM_STEP_NS");
    if (ok && step && *step) {
        o.step_ns = strtoll(step, &end, 10);
        ok = *end == 0;
    }
    const char *at = getenv("GORC_SIM_FAULT_AT");
    if (ok && at && *at) {
        o.fault_at = (uint32_t)strtoul(at, &end, 10);
        ok = *end == 0;
    }
    const char *fl = getenv("GORC_SIM_FAULTS");
    for (const char *q = fl; ok && q && *q;) {
        size_t n = strcspn(q, ",");
        int k = 0;
        while (k < GORC_SIM_FAULT_COUNT &&
               !(strlen(fault_names[k]) == n && strncmp(q, fault_names[k], n) == 0))
            k++;
        if (k == GORC_SIM_FAULT_COUNT)
            ok = false;
        else
            o.faults |= 1u << k;
        q += n + (q[n] == ',');
    }
    const char *tr = getenv("GORC_SIM_TRACE");
    o.trace = tr && *tr ? tr : NULL;
    *rc = ok ? sim_run(seed, fn, arg, &o, true) : -EINVAL;
    if (*rc != 0)
        fprintf(stderr, "gorc: simulation (GORC_SIM_SEED=%s): %s\n", e, gorc_strerror(*rc));
    return true;
}
