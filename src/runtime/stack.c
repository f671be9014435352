/*
 * stack.c - goroutine stacks: where they come from, how overflow is caught, where they go.
 *
 * A C goroutine cannot have Go's growable stacks (C code keeps raw pointers into its stack, so a
 * stack can never move). Each goroutine therefore gets a fixed-size stack (64 KiB by default,
 * GORC_STACK_SIZE or gorc_go_opts to change it) of which only the pages actually touched
 * become resident: a goroutine parked in a channel receive costs one or two pages.
 *
 * Address space. One mmap per stack would cost a VMA each, and a guard page made with
 * mprotect splits a VMA in two: with vm.max_map_count at its default of 65530 that caps a
 * process near 32k goroutines. So default-size stacks are carved from arenas of 64 stacks per
 * mmap (adjacent arenas with identical flags even merge into one VMA), and guards are made
 * with madvise(MADV_GUARD_INSTALL) (Linux 6.13+), which marks pages as faulting without
 * creating a VMA. On kernels without it, the first GUARD_BUDGET stacks get mprotect guards
 * and later ones get none (the VMA budget is spent); those stacks are checked for a canary
 * word at their lowest address and for the saved stack pointer at every switch instead.
 * docs/design.md states exactly what is guaranteed in each case.
 *
 * Overflow. Touching a guard page raises SIGSEGV; the handler runs on a per-thread alternate
 * signal stack, recognises the running goroutine's guard and prints a fatal error naming the
 * goroutine. Faults elsewhere go to whatever handler was installed before.
 *
 * Reuse. Finished goroutines' stacks go to a per-P cache (no lock), overflow to a global one.
 * The monitor thread calls gorc__stack_trim about once a second: stacks that sat in the
 * global cache for a whole period get their pages returned with MADV_DONTNEED (the address
 * range and its guard stay, so reuse needs no system call).
 */
#include "runtime/runtime.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define GORC__VALGRIND 1
#endif
#endif
#ifdef GORC__ASAN
#include <sanitizer/asan_interface.h>
#endif

enum {
    STK_GUARD = 1,  /* has a guard page below lo */
    STK_CUSTOM = 2, /* own mapping: unmapped when freed */
    STK_CLEAN = 4,  /* pages returned to the OS */
};

#define ARENA_STACKS 64
#define GUARD_BUDGET 16384 /* mprotect guards cost 2 VMAs each; leave room for the rest */
#define CANARY       0x60c0ffee5ca1ab1eULL

static size_t page_size;
static size_t default_size;
static int guard_mode;
static _Atomic int guarded; /* mprotect guards made so far */

static gorc__lock glock; /* arena cursor, pending arenas and the global cache */
static char *arena_cur, *arena_end;
static char **pending; /* arenas mapped to back promises, not yet carved from */
static size_t npending, cappending;
/* Default-size stacks obtainable without a new mapping (cached, or uncarved arena slots),
 * minus those promised to goroutines that have not run yet. See gorc__stack_promise. */
static _Atomic long slack;
static gorc__stack *gcache;
static size_t ngcache, capgcache, lowwater;

static size_t round_page(size_t n)
{
    return (n + page_size - 1) & ~(page_size - 1);
}

static void detect_guard_mode(void)
{
    guard_mode = gorc__os_guard_probe(page_size);
    const char *env = getenv("GORC_STACK_GUARD");
    if (env && strcmp(env, "mprotect") == 0)
        guard_mode = GORC__GUARD_MPROTECT;
    else if (env && strcmp(env, "none") == 0)
        guard_mode = GORC__GUARD_NONE;
}

static void install_overflow_handler(void);

void gorc__stack_init(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    default_size = 64 * 1024;
    const char *env = getenv("GORC_STACK_SIZE");
    if (env) {
        long long v = atoll(env);
        if (v >= 16 * 1024 && v <= (1LL << 30))
            default_size = (size_t)v;
    }
    default_size = round_page(default_size);
    detect_guard_mode();
    install_overflow_handler();
}

/* Make the page below lo fault on access, by whichever means this kernel allows. */
/* cppcheck-suppress constParameter ; the guard page below lo is changed through it */
static bool make_guard(char *lo)
{
    char *g = lo - page_size;
    if (guard_mode == GORC__GUARD_MPROTECT && atomic_fetch_add(&guarded, 1) >= GUARD_BUDGET)
        return false;
    return gorc__os_guard_install(g, page_size, guard_mode);
}

static void finish_new(gorc__stack *s, char *lo, size_t size, uint32_t flags)
{
    s->lo = lo;
    s->size = size;
    s->flags = flags;
    s->vg_id = 0;
#ifdef GORC__VALGRIND
    s->vg_id = VALGRIND_STACK_REGISTER(lo, lo + size);
#endif
    if (!(flags & STK_GUARD))
        memcpy(lo, &(uint64_t){CANARY}, sizeof(uint64_t));
}

/* Reserve up to n fresh default-size stacks from the arena (glock held); returns their lowest
 * usable addresses in lo[] and how many. Guards are installed later, outside the lock. */
static char *map_arena(void)
{
    size_t len = (default_size + page_size) * ARENA_STACKS;
    char *m =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    /* With transparent huge pages, touching one stack would fault in (and zero) 2 MiB: the
     * pages of some 30 neighbours. Stacks must cost only what they touch. */
    madvise(m, len, MADV_NOHUGEPAGE);
    return m;
}

static int reserve(char **lo, int n)
{
    size_t span = default_size + page_size;
    if (arena_cur == NULL || arena_cur + span > arena_end) {
        char *m = npending > 0 ? pending[--npending] : map_arena();
        if (m == NULL)
            return 0;
        arena_cur = m;
        arena_end = m + span * ARENA_STACKS;
    }
    int k = 0;
    while (k < n && arena_cur + span <= arena_end) {
        lo[k++] = arena_cur + page_size;
        arena_cur += span;
    }
    return k;
}

static void init_fresh(gorc__stack *s, char *lo)
{
    finish_new(s, lo, default_size, make_guard(lo) ? STK_GUARD : 0);
}

static int alloc_custom(gorc__stack *s, size_t size)
{
    size = round_page(size);
    char *m = mmap(NULL, size + page_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return -ENOMEM;
    madvise(m, size + page_size, MADV_NOHUGEPAGE);
    char *lo = m + page_size;
    finish_new(s, lo, size, STK_CUSTOM | (make_guard(lo) ? STK_GUARD : 0));
    return 0;
}

static void prepare_reuse(gorc__stack *s)
{
    s->flags &= ~(uint32_t)STK_CLEAN;
#ifdef GORC__ASAN
    /* Frames of the previous owner died without returning; their redzones are still
     * poisoned in the shadow. */
    __asan_unpoison_memory_region(s->lo, s->size);
#endif
    if (!(s->flags & STK_GUARD))
        memcpy(s->lo, &(uint64_t){CANARY}, sizeof(uint64_t));
}

#define PCACHE 32
#define BATCH  8

static bool pcache_ready(gorc__p *p)
{
    if (p->stkcache == NULL)
        p->stkcache = calloc(PCACHE, sizeof(gorc__stack));
    return p->stkcache != NULL;
}

/* p is the caller's P (in the scheduler) or NULL. Stacks come from p's cache, else a batch from
 * the global cache, else a batch carved from the arena; batches refill p's cache so that the
 * global lock is taken once per BATCH stacks. */
/* Promises a P takes from `slack` at a time, and the most it keeps. */
#define CREDIT_BATCH 32

/* Take n from slack, mapping arenas if that leaves less than margin. */
static bool slack_take(long n)
{
    /* Stacks in other Ps' caches count as available but only their owner can take them: keep
     * that many in reserve so the goroutine finds one whichever P first runs it. */
    long margin = (long)gorc__nprocs() * PCACHE;
    if (atomic_fetch_sub(&slack, n) - n >= margin)
        return true;
    gorc__lock_acquire(&glock);
    while (atomic_load(&slack) < margin) {
        if (npending == cappending) {
            size_t nc = cappending ? cappending * 2 : 16;
            char **np = realloc(pending, nc * sizeof *np);
            if (np == NULL)
                break;
            pending = np;
            cappending = nc;
        }
        char *m = map_arena();
        if (m == NULL)
            break;
        pending[npending++] = m;
        atomic_fetch_add(&slack, ARENA_STACKS);
    }
    bool ok = atomic_load(&slack) >= margin;
    gorc__lock_release(&glock);
    if (!ok)
        atomic_fetch_add(&slack, n);
    return ok;
}

/* Promise a default-size stack to a goroutine being spawned, so that its first run, when the
 * stack is actually taken, cannot fail: when promises would exceed what is cached or carvable,
 * a new arena is mapped now, and failure is reported to the spawner as -ENOMEM. The count
 * (`slack`) goes down on a promise and up when a stack is freed; taking a stack changes
 * nothing (the promise is used up as the stack leaves the pool). A P takes promises from it
 * CREDIT_BATCH at a time and counts the stacks freed on it the same way (p->stkcredit), so
 * that a spawner and the goroutines ending on another CPU do not update one shared counter
 * each time. Credits are stacks already taken off `slack`: the count only underestimates,
 * which maps an arena early, never late. */
int gorc__stack_promise(gorc__p *p)
{
    if (p && p->stkcredit > 0) {
        p->stkcredit--;
        return 0;
    }
    if (p && slack_take(CREDIT_BATCH)) {
        p->stkcredit = CREDIT_BATCH - 1;
        return 0;
    }
    return slack_take(1) ? 0 : -ENOMEM;
}

/* Give back a promise whose goroutine was never created. */
void gorc__stack_unpromise(gorc__p *p)
{
    if (p)
        p->stkcredit++;
    else
        atomic_fetch_add(&slack, 1);
}

/* A default-size stack went back to a cache: one more promise can be made. */
static void slack_give(gorc__p *p)
{
    if (p == NULL) {
        atomic_fetch_add(&slack, 1);
        return;
    }
    if (++p->stkcredit > 2 * CREDIT_BATCH) {
        atomic_fetch_add(&slack, CREDIT_BATCH);
        p->stkcredit -= CREDIT_BATCH;
    }
}

bool gorc__stack_custom(size_t size)
{
    return size != 0 && round_page(size) != default_size;
}

int gorc__stack_alloc(gorc__p *p, gorc__stack *s, size_t size)
{
    if (gorc__stack_custom(size))
        return alloc_custom(s, size);
    if (p && p->nstkcache > 0) {
        *s = p->stkcache[--p->nstkcache];
        prepare_reuse(s);
        return 0;
    }
    int want = p && pcache_ready(p) ? BATCH : 1;
    gorc__lock_acquire(&glock);
    if (ngcache > 0) {
        *s = gcache[--ngcache];
        for (int i = 1; i < want && ngcache > 0; i++)
            p->stkcache[p->nstkcache++] = gcache[--ngcache];
        if (ngcache < lowwater)
            lowwater = ngcache;
        gorc__lock_release(&glock);
        prepare_reuse(s);
        return 0;
    }
    char *lo[BATCH];
    int n = reserve(lo, want);
    gorc__lock_release(&glock);
    if (n == 0)
        return -ENOMEM;
    init_fresh(s, lo[0]);
    for (int i = 1; i < n; i++)
        init_fresh(&p->stkcache[p->nstkcache++], lo[i]);
    return 0;
}

static void global_put(const gorc__stack *s, int n)
{
    gorc__lock_acquire(&glock);
    if (ngcache + (size_t)n > capgcache) {
        size_t nc = capgcache ? capgcache * 2 : 256;
        while (nc < ngcache + (size_t)n)
            nc *= 2;
        gorc__stack *g = realloc(gcache, nc * sizeof *g);
        if (g == NULL) {
            /* Keeping the stacks is not worth failing for: drop them (address space only). */
            gorc__lock_release(&glock);
            atomic_fetch_sub(&slack, n);
            return;
        }
        gcache = g;
        capgcache = nc;
    }
    memcpy(gcache + ngcache, s, (size_t)n * sizeof *s);
    ngcache += (size_t)n;
    gorc__lock_release(&glock);
}

void gorc__stack_free(gorc__p *p, gorc__stack *s)
{
    if (s->lo == NULL)
        return;
    if (s->flags & STK_CUSTOM) {
#ifdef GORC__VALGRIND
        VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
        munmap(s->lo - page_size, s->size + page_size);
    } else if (p && pcache_ready(p)) {
        slack_give(p);
        if (p->nstkcache == PCACHE) {
            global_put(p->stkcache + PCACHE / 2, PCACHE / 2);
            p->nstkcache = PCACHE / 2;
        }
        p->stkcache[p->nstkcache++] = *s;
    } else {
        slack_give(NULL);
        global_put(s, 1);
    }
    s->lo = NULL;
}

bool gorc__stack_trim(void)
{
    gorc__lock_acquire(&glock);
    for (size_t i = 0; i < lowwater && i < ngcache; i++) {
        gorc__stack *s = &gcache[i];
        if (!(s->flags & STK_CLEAN)) {
            madvise(s->lo, s->size, MADV_DONTNEED);
            s->flags |= STK_CLEAN;
        }
    }
    lowwater = ngcache;
    /* Stacks not returned yet: the ones put back during this period, returned by the next
     * call if they stay unused. */
    bool dirty = false;
    for (size_t i = 0; i < ngcache && !dirty; i++)
        dirty = !(gcache[i].flags & STK_CLEAN);
    gorc__lock_release(&glock);
    return dirty;
}

_Noreturn static void overflow(const gorc__g *g, const char *how)
{
    gorc__fatal("stack overflow\n\nruntime: goroutine %llu stack exceeds %zu-byte limit (%s)",
                (unsigned long long)g->id, g->stk.size, how);
}

/* The canary sits in memory ASan considers out of any frame; reading it is the point. */
__attribute__((no_sanitize_address)) void gorc__stack_check(gorc__g *g, void *sp)
{
    if (g->stk.lo == NULL || (g->stk.flags & STK_GUARD))
        return;
    uint64_t c;
    c = *(const volatile uint64_t *)(const void *)g->stk.lo; /* page-aligned */
    if (c != CANARY || (char *)sp < g->stk.lo)
        overflow(g, "canary overwritten: memory below the stack may be corrupt");
}

/* ---- SIGSEGV on a guard page ---- */

static struct sigaction old_segv, old_bus;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    gorc__m *m = gorc__getm();
    gorc__g *g = m ? m->curg : NULL;
    char *a = si->si_addr;
    if (g && g->stk.lo && a < g->stk.lo && a >= g->stk.lo - page_size * 16) {
        m->faultuc = uc;
        overflow(g, "guard page hit");
    }
    /* Not ours: hand over to the previous disposition. */
    struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) {
            old->sa_sigaction(sig, si, uc);
            return;
        }
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    sigaction(sig, old, NULL);
    /* Returning re-executes the faulting access under the old disposition. */
}

static void install_overflow_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

/* Each M runs the fault handler on an alternate stack: the goroutine's is exhausted. */
void gorc__stack_thread_init(void)
{
    /* A thread that already has one (a simulation run's thread, once per run) keeps it. */
    stack_t old;
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE))
        return;
    size_t sz = 64 * 1024;
    void *p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return;
    stack_t ss = {.ss_sp = p, .ss_size = sz, .ss_flags = 0};
    sigaltstack(&ss, NULL);
}

size_t gorc__stack_cached_bytes(void)
{
    gorc__lock_acquire(&glock);
    size_t n = ngcache;
    gorc__lock_release(&glock);
    return n * default_size;
}
