/*
 * traceback.c - goroutine stacks: unwinding, symbolising, dumps, SIGQUIT, GORC_TRACEBACK.
 *
 * Unwinding walks frame pointers. The library, its tests and examples are built with
 * -fno-omit-frame-pointer (and keep them in leaf functions), so every frame starts with the
 * record {caller's frame pointer, return address}: [fp] and [fp + 8] on x86-64 (rbp), the same
 * on AArch64 (x29). Where the walk starts depends on the goroutine:
 *   - parked or runnable: gorc__ctx_switch pushed its frame on the goroutine's stack and the
 *     G keeps only that stack pointer (src/arch/ctx_<arch>.S documents the layout): the saved
 *     frame pointer and the return address into the code that switched are at fixed offsets
 *     from g->sp ([48] and [56] on x86-64, [80] and [88] on AArch64);
 *   - the caller itself: its own frame;
 *   - running on another thread: that thread gets SIGPROF with a request flag set in its M
 *     (m->sigreq); the handler unwinds from the interrupted registers into m->sigpcs and
 *     answers through m->sigdone. The requester waits at most REQ_WAIT for the answer.
 * Every step is checked before the load: the frame pointer must be aligned, lie inside the
 * stack the walk started on (the goroutine's, or the M's own thread stack), and grow towards
 * the stack's top, so a frame of code built without frame pointers, or a stack changing under
 * a snapshot, ends the walk instead of faulting. The loads are not instrumented by the
 * sanitizers: reading another goroutine's stack is the point.
 *
 * Symbolising: the core has dladdr(3): the module and exported symbol an address falls in,
 * enough for addr2line. A richer symboliser (libgorc_symbolize, on elfutils' libdw: static
 * functions, file:line) registers itself through gorc_set_symbolizer.
 *
 * GORC_TRACEBACK (Go's GOTRACEBACK) is read once at start-up: none, single (default), all,
 * crash. SIGQUIT's handler only posts a semaphore; a thread started for it prints every
 * goroutine and exits with status 2, as Go does (crash: abort() for a core dump). A program
 * that gorc_signal_notify()s SIGQUIT replaces the handler, as in Go.
 *
 * Locking: tb_mu (a pthread mutex: requests are rare and may come from any thread) serialises
 * stack requests, so one M's request fields have one requester. The symboliser hook is set
 * once, before use (documented), and read without a lock.
 */
#include "runtime/runtime.h"

#include <dlfcn.h>
#include <errno.h>
#include <semaphore.h>
#include <stdarg.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define REQ_WAIT (100 * GORC_MILLISECOND)

static int tb_level = 1;
static pthread_mutex_t tb_mu = PTHREAD_MUTEX_INITIALIZER;
static gorc_symbolizer_fn sym_fn;
static void *sym_arg;
static sem_t quit_sem;

int gorc__traceback_level(void)
{
    return tb_level;
}

/* ---- unwinding ---- */

__attribute__((no_sanitize_address, no_sanitize_thread)) int
gorc__unwind(uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *pcs, int max)
{
    int n = 0;
    if (pc != 0 && n < max)
        pcs[n++] = pc;
    while (n < max) {
        if ((fp & (sizeof(uintptr_t) - 1)) != 0 || fp < lo || hi < 2 * sizeof(uintptr_t) ||
            fp > hi - 2 * sizeof(uintptr_t))
            break;
        const volatile uintptr_t *f = (const volatile uintptr_t *)fp;
        uintptr_t next = f[0], ret = f[1];
        if (ret == 0)
            break;
        pcs[n++] = ret;
        if (next <= fp)
            break;
        fp = next;
    }
    return n;
}

static bool in_stack(uintptr_t a, uintptr_t lo, uintptr_t hi)
{
    return a >= lo && a < hi;
}

/* The walk from a thread's interrupted or current registers: on the goroutine's stack if
 * sp is there, else on the M's thread stack (g0). */
GORC__RACY static int unwind_regs(gorc__m *m, uintptr_t pc, uintptr_t fp, uintptr_t sp,
                                  uintptr_t *pcs, int max, uint64_t *goid)
{
    gorc__g *g = m ? m->curg : NULL;
    *goid = 0;
    if (g && g != &m->g0 && g->stk.lo) {
        uintptr_t lo = (uintptr_t)g->stk.lo, hi = lo + g->stk.size;
        if (in_stack(sp, lo, hi)) {
            *goid = g->id;
            return gorc__unwind(pc, fp, sp, hi, pcs, max);
        }
    }
    if (m && m->g0_lo) {
        uintptr_t lo = (uintptr_t)m->g0_lo, hi = lo + m->g0_size;
        if (in_stack(sp, lo, hi))
            return gorc__unwind(pc, fp, sp, hi, pcs, max);
    }
    return gorc__unwind(pc, 0, 0, 0, pcs, max);
}

static void uc_regs(const void *ucv, uintptr_t *pc, uintptr_t *fp, uintptr_t *sp)
{
    const ucontext_t *uc = ucv;
#if defined(__x86_64__)
    *pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    *fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
    *sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    *pc = (uintptr_t)uc->uc_mcontext.pc;
    *fp = (uintptr_t)uc->uc_mcontext.regs[29];
    *sp = (uintptr_t)uc->uc_mcontext.sp;
#endif
}

/* SIGPROF: a stack request, a CPU-profile tick, or both. Only loads, stores and the walk:
 * nothing here takes a lock or allocates. */
static void on_prof(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    int saved_errno = errno;
    gorc__m *m = gorc__tls_m;
    if (m) {
        uintptr_t pc, fp, sp, pcs[GORC__MAXFRAMES];
        uint64_t goid;
        uc_regs(uc, &pc, &fp, &sp);
        int n = unwind_regs(m, pc, fp, sp, pcs, GORC__MAXFRAMES, &goid);
        uint32_t req = atomic_load_explicit(&m->sigreq, memory_order_acquire);
        if (req != atomic_load_explicit(&m->sigdone, memory_order_relaxed)) {
            memcpy(m->sigpcs, pcs, (size_t)n * sizeof pcs[0]);
            m->nsigpcs = n;
            m->siggoid = goid;
            atomic_store_explicit(&m->sigdone, req, memory_order_release);
        }
        if (si->si_code == SI_TIMER)
            gorc__prof_sample(m, pcs, n, goid);
    }
    errno = saved_errno;
}

/* The frame pointer saved by the switch of a switched-out goroutine (the return address into
 * the switch sits beside it: [56] on x86-64, [88] on AArch64). */
__attribute__((no_sanitize_address, no_sanitize_thread)) static uintptr_t saved_fp(const void *sp)
{
    const volatile uintptr_t *f = sp;
#if defined(__x86_64__)
    return f[6];
#elif defined(__aarch64__)
    return f[10];
#endif
}

GORC__RACY static gorc__m *m_running(const gorc__g *g)
{
    for (gorc__m *m = gorc__allm(); m; m = m->allnext)
        if (m->curg == g)
            return m;
    return NULL;
}

/* Ask m's thread for the stack of the goroutine it runs. Caller holds tb_mu. */
static int ask_thread(gorc__m *m, gorc__g *g, uintptr_t *pcs, int max)
{
    int tid = atomic_load(&m->tid);
    if (tid == 0)
        return -1;
    uint32_t req = atomic_load(&m->sigreq) + 1;
    atomic_store_explicit(&m->sigreq, req, memory_order_release);
    if (syscall(SYS_tgkill, getpid(), tid, SIGPROF) != 0)
        return -1;
    int64_t until = gorc__nanotime() + REQ_WAIT;
    while (atomic_load_explicit(&m->sigdone, memory_order_acquire) != req) {
        if (gorc__nanotime() > until)
            return -1;
        struct timespec ts = {0, 50 * 1000};
        nanosleep(&ts, NULL);
    }
    if (m->siggoid != g->id)
        return -1; /* it moved on meanwhile */
    int n = m->nsigpcs < max ? m->nsigpcs : max;
    memcpy(pcs, m->sigpcs, (size_t)n * sizeof pcs[0]);
    return n;
}

__attribute__((noinline)) static int own_stack(gorc__g *g, uintptr_t *pcs, int max)
{
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0);
    uintptr_t lo = (uintptr_t)g->stk.lo, hi = lo + g->stk.size;
    return gorc__unwind(0, fp, fp, hi, pcs, max);
}

GORC__RACY int gorc__g_stack(gorc__g *g, uintptr_t *pcs, int max, bool interrupt)
{
    gorc__m *self = gorc__getm();
    if (self && self->curg == g && g != &self->g0)
        return own_stack(g, pcs, max);
    for (int tries = 0; tries < 3; tries++) {
        uint32_t s = atomic_load(&g->status);
        uint32_t nrun = g->nrun;
        if (s == GORC__G_WAITING || s == GORC__G_RUNNABLE) {
            void *sp = g->sp;
            if (sp == NULL || g->stk.lo == NULL)
                return 0; /* never ran: no frames yet */
            uintptr_t lo = (uintptr_t)g->stk.lo, hi = lo + g->stk.size;
            if (!in_stack((uintptr_t)sp, lo, hi))
                return -1;
            /* Parked: from gorc__park's own frame (Go's gopark), so the first frame is the
             * operation that parked and equal waits group together. Otherwise (a yield) from
             * the frame the switch saved. */
            uintptr_t fp = (uintptr_t)g->parkfp;
            if (fp == 0 || !in_stack(fp, lo, hi))
                fp = saved_fp(sp);
            int n = gorc__unwind(0, fp, (uintptr_t)sp, hi, pcs, max);
            if (atomic_load(&g->status) == s && g->nrun == nrun)
                return n;
            continue; /* it ran meanwhile: the frames may be torn */
        }
        if (s != GORC__G_RUNNING)
            return -1;
        if (g->waitreason == GORC__W_BLOCKING && !interrupt)
            return -1;
        gorc__m *m = m_running(g);
        if (m == NULL)
            continue;
        pthread_mutex_lock(&tb_mu);
        int n = ask_thread(m, g, pcs, max);
        pthread_mutex_unlock(&tb_mu);
        if (n >= 0)
            return n;
    }
    return -1;
}

/* ---- symbolising ---- */

void gorc_set_symbolizer(gorc_symbolizer_fn fn, void *arg)
{
    sym_arg = arg;
    sym_fn = fn;
}

bool gorc_symbolize(uintptr_t pc, gorc_symbol *out)
{
    if (out == NULL)
        return false;
    memset(out, 0, sizeof *out);
    Dl_info di;
    bool found = false;
    if (pc != 0 && dladdr((void *)pc, &di) != 0) {
        out->module = di.dli_fname;
        out->module_offset = pc - (uintptr_t)di.dli_fbase;
        if (di.dli_sname) {
            out->function = di.dli_sname;
            out->offset = pc - (uintptr_t)di.dli_saddr;
        }
        found = true;
    }
    if (sym_fn && pc != 0 && sym_fn(pc, out, sym_arg))
        found = true;
    return found;
}

/* ---- text ---- */

/* A place to print: a FILE, or a caller's buffer filled snprintf-style (len counts what
 * would have been written). */
typedef struct tbw {
    FILE *f;
    char *buf;
    size_t cap, len;
} tbw;

__attribute__((format(printf, 2, 3))) static void wr(tbw *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (w->f) {
        vfprintf(w->f, fmt, ap);
    } else {
        size_t room = w->len < w->cap ? w->cap - w->len : 0;
        int k = vsnprintf(room ? w->buf + w->len : NULL, room, fmt, ap);
        if (k > 0)
            w->len += (size_t)k;
    }
    va_end(ap);
}

/* One frame as Go prints it: the function, then its place. pc is a return address except for
 * the first frame of an interrupted thread; looking up pc - 1 keeps a call at the very end of
 * a function in that function. */
static void wr_frame(tbw *w, uintptr_t pc, bool is_ret)
{
    gorc_symbol s;
    gorc_symbolize(is_ret ? pc - 1 : pc, &s);
    if (is_ret) {
        s.offset++;
        s.module_offset++;
    }
    wr(w, "%s(...)\n", s.function ? s.function : "?");
    if (s.file)
        wr(w, "\t%s:%d +0x%zx\n", s.file, s.line, (size_t)s.offset);
    else if (s.module)
        wr(w, "\t%s+0x%zx\n", s.module, (size_t)s.module_offset);
    else
        wr(w, "\t?:0 pc=%p\n", (void *)pc);
}

GORC__RACY static const char *state_str(gorc__g *g, uint32_t s)
{
    if (s == GORC__G_WAITING || (s == GORC__G_RUNNING && g->waitreason == GORC__W_BLOCKING))
        return gorc__waitreason_str(g->waitreason);
    switch (s) {
    case GORC__G_RUNNABLE:
        return "runnable";
    case GORC__G_RUNNING:
        return "running";
    case GORC__G_WAITING:
        return "waiting";
    default:
        return "dead";
    }
}

/* When g entered its present state, as far as anyone can tell: exact while leak tracking
 * records park times, else the first time an observer saw it so (the scheduler never reads
 * the clock for this). */
static uint32_t obs_key(const gorc__g *g, uint32_t s)
{
    return atomic_load_explicit(&g->nrun, memory_order_relaxed) << 8 | s;
}

void gorc__stamp_park(gorc__g *g)
{
    atomic_store(&g->obs_since, gorc__nanotime());
    atomic_store(&g->obs_key, obs_key(g, GORC__G_WAITING));
}

GORC__RACY int64_t gorc__parked_since(const gorc__g *g)
{
    if (!atomic_load_explicit(&gorc__leak_on, memory_order_relaxed) ||
        atomic_load(&g->obs_key) != obs_key(g, GORC__G_WAITING))
        return 0;
    return atomic_load(&g->obs_since);
}

GORC__RACY static int64_t state_since(gorc__g *g, uint32_t s, int64_t now)
{
    uint32_t key = obs_key(g, s);
    if (atomic_load(&g->obs_key) != key) {
        atomic_store(&g->obs_since, now);
        atomic_store(&g->obs_key, key);
        return now;
    }
    return atomic_load(&g->obs_since);
}

GORC__RACY static void wr_g(tbw *w, gorc__g *g, bool interrupt)
{
    uint32_t s = atomic_load(&g->status);
    uintptr_t pcs[GORC__MAXFRAMES];
    int n = gorc__g_stack(g, pcs, GORC__MAXFRAMES, interrupt);
    int64_t now = gorc__nanotime();
    int64_t mins = (now - state_since(g, s, now)) / (60 * GORC_SECOND);
    wr(w, "goroutine %llu [%s", (unsigned long long)g->id, state_str(g, s));
    if (mins > 0)
        wr(w, ", %lld minutes", (long long)mins);
    wr(w, "]:\n");
    gorc__m *self = gorc__getm();
    bool own = self && self->curg == g;
    if (n < 0) {
        wr(w, "\tgoroutine running on other thread; stack unavailable\n");
    } else if (n == 0 && g->sp == NULL && !own) {
        gorc_symbol fs;
        gorc_symbolize((uintptr_t)g->fn, &fs);
        wr(w, "\tnot started yet: %s(%p)\n", fs.function ? fs.function : "?", g->arg);
    }
    for (int i = 0; i < n; i++)
        wr_frame(w, pcs[i], i > 0 || s != GORC__G_RUNNING || own);
    if (g->spawnpc && !g->is_main) {
        gorc_symbol c;
        gorc_symbolize(g->spawnpc - 1, &c);
        wr(w, "created by %s in goroutine %llu\n", c.function ? c.function : "?",
           (unsigned long long)g->parent);
        if (c.file)
            wr(w, "\t%s:%d +0x%zx\n", c.file, c.line, (size_t)c.offset + 1);
        else if (c.module)
            wr(w, "\t%s+0x%zx\n", c.module, (size_t)c.module_offset + 1);
    }
    wr(w, "\n");
}

GORC__RACY void gorc__print_frames(FILE *f, gorc__g *g)
{
    tbw w = {.f = f};
    uintptr_t pcs[GORC__MAXFRAMES];
    uint32_t s = atomic_load(&g->status);
    int n = gorc__g_stack(g, pcs, GORC__MAXFRAMES, false);
    gorc__m *self = gorc__getm();
    bool own = self && self->curg == g;
    for (int i = 0; i < n; i++)
        wr_frame(&w, pcs[i], i > 0 || s != GORC__G_RUNNING || own);
}

static bool listed(gorc__g *g)
{
    uint32_t s = atomic_load(&g->status);
    return s != GORC__G_FREE && s != GORC__G_DEAD;
}

void gorc__dump_all(FILE *f, bool interrupt)
{
    tbw w = {.f = f};
    for (gorc__g *g = gorc__allg(); g; g = g->allnext)
        if (listed(g))
            wr_g(&w, g, interrupt);
}

GORC__RACY static gorc__g *find_g(uint64_t id)
{
    for (gorc__g *g = gorc__allg(); g; g = g->allnext)
        if (g->id == id && listed(g))
            return g;
    return NULL;
}

ssize_t gorc_goroutine_stack(uint64_t id, char *buf, size_t n)
{
    if (buf == NULL && n > 0)
        return -EINVAL;
    if (gorc__ensure_init() != 0)
        return -ESRCH;
    gorc__g *g = find_g(id);
    if (g == NULL)
        return -ESRCH;
    tbw w = {.buf = buf, .cap = n};
    wr_g(&w, g, false);
    if (n > 0)
        buf[w.len < n ? w.len : n - 1] = 0;
    return (ssize_t)w.len;
}

ssize_t gorc_stack_all(char *buf, size_t n)
{
    if (buf == NULL && n > 0)
        return -EINVAL;
    if (gorc__ensure_init() != 0)
        return 0;
    tbw w = {.buf = buf, .cap = n};
    for (gorc__g *g = gorc__allg(); g; g = g->allnext)
        if (listed(g))
            wr_g(&w, g, false);
    if (n > 0)
        buf[w.len < n ? w.len : n - 1] = 0;
    return (ssize_t)w.len;
}

int gorc_goroutine_pcs(uint64_t id, uintptr_t *pcs, int max)
{
    if (max < 0 || (pcs == NULL && max > 0))
        return -EINVAL;
    if (gorc__ensure_init() != 0)
        return -ESRCH;
    gorc__g *g = find_g(id);
    if (g == NULL)
        return -ESRCH;
    int n = gorc__g_stack(g, pcs, max, false);
    return n < 0 ? -EAGAIN : n;
}

GORC__RACY size_t gorc_goroutines(gorc_goroutine_info *out, size_t n)
{
    if (gorc__ensure_init() != 0)
        return 0;
    size_t k = 0;
    int64_t now = gorc__nanotime();
    for (gorc__g *g = gorc__allg(); g; g = g->allnext) {
        uint32_t s = atomic_load(&g->status);
        if (s == GORC__G_FREE || s == GORC__G_DEAD)
            continue;
        if (k < n && out) {
            gorc_goroutine_info *i = &out[k];
            memset(i, 0, sizeof *i);
            i->id = g->id;
            i->parent = g->parent;
            i->state = state_str(g, s);
            i->waiting = s == GORC__G_WAITING;
            i->since = state_since(g, s, now);
            i->start_fn = (uintptr_t)g->fn;
            i->spawn_pc = g->spawnpc;
            i->system = g->system;
        }
        k++;
    }
    return k;
}

/* ---- fatal errors and SIGQUIT ---- */

/* After "fatal error: ...": the stacks GORC_TRACEBACK asks for. */
GORC__RACY void gorc__traceback_fatal(void)
{
    if (tb_level == 0)
        return;
    gorc__m *m = gorc__getm();
    gorc__g *cur = m && m->curg != &m->g0 ? m->curg : NULL;
    tbw w = {.f = stderr};
    fputc('\n', stderr);
    if (cur && m->faultuc) {
        uintptr_t pc, fp, sp, pcs[GORC__MAXFRAMES];
        uint64_t goid;
        uc_regs(m->faultuc, &pc, &fp, &sp);
        /* An overflowing goroutine's sp is below its stack: walk from its frame pointer. */
        int n = unwind_regs(m, pc, fp, fp, pcs, GORC__MAXFRAMES, &goid);
        wr(&w, "goroutine %llu [running]:\n", (unsigned long long)cur->id);
        for (int i = 0; i < n; i++)
            wr_frame(&w, pcs[i], i > 0);
        wr(&w, "\n");
    } else if (cur) {
        wr_g(&w, cur, true);
    }
    if (tb_level >= 2)
        for (gorc__g *g = gorc__allg(); g; g = g->allnext)
            if (g != cur && listed(g))
                wr_g(&w, g, true);
    fflush(stderr);
    if (tb_level >= 3) {
        signal(SIGABRT, SIG_DFL);
        abort();
    }
}

static void on_quit(int sig)
{
    (void)sig;
    sem_post(&quit_sem);
}

static void *quitter(void *arg)
{
    (void)arg;
    while (sem_wait(&quit_sem) != 0)
        ;
    fprintf(stderr, "SIGQUIT: quit\n");
    if (tb_level > 0) {
        fputc('\n', stderr);
        gorc__dump_all(stderr, true);
    }
    fflush(stderr);
    if (tb_level >= 3) {
        signal(SIGABRT, SIG_DFL);
        abort();
    }
    _exit(2);
}

static void install_quit(void)
{
    struct sigaction old;
    if (sigaction(SIGQUIT, NULL, &old) != 0 || old.sa_handler != SIG_DFL ||
        (old.sa_flags & SA_SIGINFO))
        return; /* ignored or handled by the program: leave it be */
    if (sem_init(&quit_sem, 0, 0) != 0)
        return;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(&t, &attr, quitter, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_quit;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGQUIT, &sa, NULL);
}

void gorc__traceback_init(void)
{
    const char *e = getenv("GORC_TRACEBACK");
    if (e && *e) {
        if (!strcmp(e, "none") || !strcmp(e, "0"))
            tb_level = 0;
        else if (!strcmp(e, "single") || !strcmp(e, "1"))
            tb_level = 1;
        else if (!strcmp(e, "all") || !strcmp(e, "system") || !strcmp(e, "2"))
            tb_level = 2;
        else if (!strcmp(e, "crash"))
            tb_level = 3;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_prof;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPROF, &sa, NULL);
    install_quit();
}
