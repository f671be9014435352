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
 *
 * Compaction (docs/stacks.md). A goroutine that stays parked through a whole scan period
 * gives its stack pages back: its live bytes (from the saved stack pointer to the top, a few
 * hundred usually) are copied to a malloc'd buffer and the stack range is sealed with guard
 * markers, which releases the pages and makes every access fault. The stack keeps its
 * address, so pointers into it stay valid. Whoever touches a sealed stack - a waker reading the
 * sudog or waiter record queued there, a sender copying a value into the receiver's variable,
 * user code holding a pointer into the parked goroutine's frame - takes a SIGSEGV that this
 * file's handler answers by restoring the stack (unseal, copy the bytes back) and returning,
 * so the access is retried and succeeds. The scheduler restores a goroutine's stack before
 * switching to it. g->cstk (GORC__CSTK_*) serialises compactor and restorers; g->crun tells
 * the compactor the scheduler has claimed the goroutine (see gorc__cstk_scan's handshake).
 */
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
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

/* Compaction settings, fixed at start-up (GORC_STACK_COMPACT: "off", or the scan period in
 * milliseconds; 0 compacts at every monitor round regardless of park age, for tests). */
bool gorc__cstk_on;
#define cstk_on gorc__cstk_on
static _Atomic int64_t cstk_period_ns = 500 * 1000000LL;
_Atomic uint32_t gorc__cstk_epoch = 1;
static _Atomic uint64_t st_compacted, st_restored, st_faults, st_refused;
static _Atomic int64_t st_restore_ns;
static int memfd = -1; /* /proc/self/mem: reads and fills ranges no thread may touch */

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

/* Every arena ever mapped, so that the fault handler can find the goroutine whose sealed stack
 * an address lies in. Appended under glock; read by the handler without a lock (an entry is
 * written before narenas is published and never changes or goes away). The table is one
 * MAP_NORESERVE mapping, not malloc'd: only the entries used become resident, and the
 * handler may read it at any time. owner[i] is the compacted goroutine whose stack is slot i,
 * set and cleared by the holder of its cstk BUSY state. */
#define MAX_ARENAS (1u << 16) /* 4M default-size stacks; later arenas are not compacted */
typedef struct arena_rec {
    char *base; /* slot 0's guard page */
    _Atomic(gorc__g *) owner[ARENA_STACKS];
} arena_rec;
static arena_rec *arenas;
static _Atomic uint32_t narenas;
static int32_t arena_cur_idx; /* index + 1 of the arena arena_cur carves from (glock) */

static size_t round_page(size_t n)
{
    return (n + page_size - 1) & ~(page_size - 1);
}

static void detect_guard_mode(void)
{
    guard_mode = gorc__os_guard_probe(page_size);
    /* Compaction seals stacks with guard markers: only where the kernel really has them. */
    cstk_on = guard_mode == GORC__GUARD_MADVISE;
    const char *env = getenv("GORC_STACK_GUARD");
    if (env && strcmp(env, "mprotect") == 0)
        guard_mode = GORC__GUARD_MPROTECT;
    else if (env && strcmp(env, "none") == 0)
        guard_mode = GORC__GUARD_NONE;
}

static void install_overflow_handler(void);

/* /proc/self/mem names the process that opened it: a child of fork() must not read and write
 * its parent's stacks. Same descriptor number, so a racing reader of memfd stays right. */
static void memfd_child(void)
{
    int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        dup3(fd, memfd, O_CLOEXEC);
        close(fd);
    }
}
static void on_fault(int sig, siginfo_t *si, void *uc);
static struct sigaction old_segv, old_bus;

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
    const char *c = getenv("GORC_STACK_COMPACT");
    if (c && strcmp(c, "off") == 0)
        cstk_on = false;
    else if (c && *c >= '0' && *c <= '9')
        cstk_period_ns = atoll(c) * 1000000LL;
    /* The scheduler's side of the compaction handshake has no barrier: the compactor runs
     * it for every thread with membarrier (see "The handshake with the scheduler"). */
    if (cstk_on && !gorc__os_membarrier_register())
        cstk_on = false;
    if (cstk_on) {
        void *a = mmap(NULL, MAX_ARENAS * sizeof(arena_rec), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        memfd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
        if (a == MAP_FAILED || memfd < 0 || pthread_atfork(NULL, NULL, memfd_child) != 0)
            cstk_on = false;
        else
            arenas = a;
    }
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
    s->arena = 0;
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

/* Record arena m (glock held) for the fault handler; its index + 1, or 0 if not recorded (its
 * stacks are then never compacted). */
static int32_t register_arena(char *m)
{
    uint32_t n = atomic_load_explicit(&narenas, memory_order_relaxed);
    if (!cstk_on || n >= MAX_ARENAS)
        return 0;
    arenas[n].base = m;
    atomic_store_explicit(&narenas, n + 1, memory_order_release);
    return (int32_t)n + 1;
}

static arena_rec *arena_of(const gorc__stack *s)
{
    return s->arena > 0 ? &arenas[s->arena - 1] : NULL;
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
        arena_cur_idx = register_arena(m);
    }
    int k = 0;
    while (k < n && arena_cur + span <= arena_end) {
        lo[k++] = arena_cur + page_size;
        arena_cur += span;
    }
    return k;
}

static void init_fresh(gorc__stack *s, char *lo, int32_t arena)
{
    finish_new(s, lo, default_size, make_guard(lo) ? STK_GUARD : 0);
    s->arena = arena;
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
    int32_t arena = arena_cur_idx; /* reserve carves from one arena per call */
    gorc__lock_release(&glock);
    if (n == 0)
        return -ENOMEM;
    init_fresh(s, lo[0], arena);
    for (int i = 1; i < n; i++)
        init_fresh(&p->stkcache[p->nstkcache++], lo[i], arena);
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

/* ---- compaction ---- */

bool gorc__cstk_enabled(void)
{
    return cstk_on;
}

int64_t gorc__cstk_period(void)
{
    return atomic_load_explicit(&cstk_period_ns, memory_order_relaxed);
}

void gorc__cstk_set_period(int64_t ns)
{
    atomic_store(&cstk_period_ns, ns);
}

void gorc__cstk_get_stats(gorc__cstk_stats *st)
{
    st->compacted = atomic_load(&st_compacted);
    st->restored = atomic_load(&st_restored);
    st->faults = atomic_load(&st_faults);
    st->refused = atomic_load(&st_refused);
    st->restore_ns = atomic_load(&st_restore_ns);
}

/* Word copies neither sanitizer may instrument: a parked stack holds ASan's poisoned redzones,
 * and the copying thread is not the goroutine's fiber (ordering with the goroutine comes from
 * g->cstk's acquire/release). volatile keeps the compiler from making them memcpy calls,
 * which the sanitizers intercept. */
__attribute__((no_sanitize("address", "thread"))) static void copy_words(void *dst, const void *src,
                                                                         size_t n)
{
    volatile uint64_t *d = dst;
    const volatile uint64_t *s = src;
    for (size_t i = 0; i < n / 8; i++)
        d[i] = s[i];
}

static _Atomic(gorc__g *) *owner_slot(const gorc__stack *s)
{
    arena_rec *a = arena_of(s);
    size_t slot = (size_t)(s->lo - page_size - a->base) / (default_size + page_size);
    return &a->owner[slot];
}

/* Seal g's stack (cstk BUSY, held by the caller). The range is made inaccessible before the
 * live bytes are read (through /proc/self/mem) and sealed, and opened again only once the
 * guard markers are in: installing them zaps the pages first, and a thread reading the range
 * at that moment would otherwise map a zero page and see zeros. A thread touching it
 * meanwhile faults and waits for BUSY to end. */
static bool compact(gorc__g *g)
{
    const gorc__stack *st = &g->stk;
    char *lo = st->lo, *top = st->lo + st->size;
    char *sp = (char *)((uintptr_t)g->sp & ~(uintptr_t)7);
    if (arena_of(st) == NULL || sp < lo || sp >= top)
        return false;
    size_t len = (size_t)(top - sp);
    free(g->cbuf); /* a stale buffer from a restore in the fault handler */
    g->cbuf = NULL;
    gorc__cbuf *buf = malloc(sizeof *buf + len);
    if (buf == NULL)
        return false;
    _Atomic(gorc__g *) *own = owner_slot(st);
    atomic_store(own, g); /* before any fault can happen: the handler waits on g */
    if (mprotect(lo, st->size, PROT_NONE) != 0) {
        atomic_store(own, NULL);
        free(buf);
        atomic_fetch_add(&st_refused, 1); /* out of mappings: try again next scan */
        return false;
    }
    int rc = -EIO;
    if (pread(memfd, buf->data, len, (off_t)(uintptr_t)sp) == (ssize_t)len)
        rc = gorc__os_pages_seal(lo, st->size);
    /* Back to read-write: the range merges into its mapping again; the guard markers stay. */
    if (mprotect(lo, st->size, PROT_READ | PROT_WRITE) != 0)
        gorc__fatal("runtime: cannot unprotect stack of goroutine %llu", (unsigned long long)g->id);
    if (rc != 0) {
        atomic_store(own, NULL);
        free(buf);
        atomic_fetch_add(&st_refused, 1);
        return false;
    }
    buf->len = (uint32_t)len;
    buf->epoch = atomic_load_explicit(&gorc__cstk_epoch, memory_order_relaxed);
    g->cbuf = buf;
    if (g->ncompact < UINT8_MAX)
        g->ncompact++;
    atomic_fetch_add(&st_compacted, 1);
    return true;
}

/* Put g's live bytes back and unseal its stack (cstk BUSY, held by the caller). No other
 * thread may see the pages between unsealing and the copy (a second waker reading a select
 * case's sudog would find zeros), so the range is made inaccessible first, unsealed, filled
 * through /proc/self/mem (which may write where the process may not) and only then opened
 * again; a thread touching it meanwhile faults and waits for BUSY to end. Safe in the fault
 * handler: system calls and copies only; the buffer is freed later, by the scheduler. */
static void restore(gorc__g *g)
{
    int64_t t0 = gorc__nanotime();
    gorc__stack *st = &g->stk;
    const gorc__cbuf *cb = g->cbuf;
    char *sp = st->lo + st->size - cb->len;
    bool hidden = mprotect(st->lo, st->size, PROT_NONE) == 0;
    if (gorc__os_pages_unseal(st->lo, st->size) != 0)
        gorc__fatal("runtime: cannot restore stack of goroutine %llu", (unsigned long long)g->id);
    if (hidden && pwrite(memfd, cb->data, cb->len, (off_t)(uintptr_t)sp) == (ssize_t)cb->len) {
        if (mprotect(st->lo, st->size, PROT_READ | PROT_WRITE) != 0)
            gorc__fatal("runtime: cannot unprotect stack of goroutine %llu",
                        (unsigned long long)g->id);
    } else {
        /* Out of mappings for the split (or no /proc): open and copy, leaving a window. */
        if (hidden)
            mprotect(st->lo, st->size, PROT_READ | PROT_WRITE);
        copy_words(sp, cb->data, cb->len);
    }
    if (!(st->flags & STK_GUARD))
        *(volatile uint64_t *)(void *)st->lo = CANARY;
    atomic_store(owner_slot(st), NULL);
    atomic_fetch_add(&st_restored, 1);
    atomic_fetch_add(&st_restore_ns, gorc__nanotime() - t0);
}

void gorc__cstk_resume_slow(gorc__g *g)
{
    bool was = false;
    uint32_t epoch = 0;
    for (;;) {
        uint8_t c = atomic_load_explicit(&g->cstk, memory_order_acquire);
        if (c == GORC__CSTK_PRESENT)
            break;
        if (c == GORC__CSTK_BUSY) {
            sched_yield(); /* BUSY lasts a few system calls */
            continue;
        }
        if (!atomic_compare_exchange_weak_explicit(&g->cstk, &c, GORC__CSTK_BUSY,
                                                   memory_order_acquire, memory_order_relaxed))
            continue;
        if (c == GORC__CSTK_COMPACTED)
            restore(g);
        /* A stale buffer (left by a restore in the fault handler, which must not call free)
         * goes too. */
        if (g->cbuf) {
            epoch = g->cbuf->epoch;
            free(g->cbuf);
            g->cbuf = NULL;
            was = true;
        }
        atomic_store_explicit(&g->cstk, GORC__CSTK_PRESENT, memory_order_release);
        break;
    }
    /* A goroutine woken soon after it was compacted waits longer before the next time, so one
     * that wakes often is left alone. */
    if (was) {
        uint32_t now = atomic_load_explicit(&gorc__cstk_epoch, memory_order_relaxed);
        uint32_t b = atomic_load_explicit(&g->cbackoff, memory_order_relaxed);
        if (now - epoch <= 2)
            b = b * 2 + 1 > 64 ? 64 : b * 2 + 1;
        else
            b /= 2;
        atomic_store_explicit(&g->cbackoff, (uint8_t)b, memory_order_relaxed);
    }
}

/* A scan stops after SCAN_BUDGET compactions or a twentieth of the period (at most 25 ms;
 * the whole period, at most 500 ms, while every P is idle), whichever comes first: each compaction
 * costs four system calls that take the address space's lock and shoot down TLB entries (some 10-25
 * us), and a program that parks a million goroutines and wakes them all at once must not find the
 * monitor competing for that lock all the while. At the default period 100,000 parked goroutines
 * are compacted in a few seconds.
 *
 * The handshake with the scheduler. A resumer stores crun = 1 and then loads cstk; the scan
 * moves cstk to BUSY and then loads crun. That is Dekker's pattern, and each side needs a full
 * barrier between its store and its load; the resumer's side runs on every switch, so the scan
 * executes both with one membarrier per batch of candidates: after it, either the scan sees
 * crun = 1 (and leaves the goroutine), or the resumer's load sees BUSY (and waits for the
 * compaction, then restores). A goroutine that ran and parked again before the scan looked is
 * simply parked: its crun = 0 store is ordered after its switch-out by release. While the
 * batch is held, a resumer of one of its goroutines waits at most for the batch's compactions
 * (SCAN_BATCH x 10-25 us). */
#define SCAN_BUDGET 50000
#define SCAN_BATCH  16

typedef struct scanstate {
    int n;  /* compacted */
    int nb; /* held BUSY in batch, not yet compacted */
    bool stopped;
    int64_t stop; /* nanotime at which to stop compacting */
    gorc__g *batch[SCAN_BATCH];
} scanstate;

static bool compactable(const gorc__g *g)
{
    return atomic_load_explicit(&g->crun, memory_order_acquire) == 0 &&
           atomic_load_explicit(&g->status, memory_order_relaxed) == GORC__G_WAITING && !g->foreign;
}

static void scan_flush(scanstate *ss)
{
    bool fenced = ss->nb > 0 && gorc__os_membarrier();
    for (int i = 0; i < ss->nb; i++) {
        gorc__g *g = ss->batch[i];
        bool ok = fenced && compactable(g) && compact(g);
        uint8_t c = ok ? GORC__CSTK_COMPACTED : g->cbuf ? GORC__CSTK_STALE : GORC__CSTK_PRESENT;
        atomic_store_explicit(&g->cstk, c, memory_order_release);
        ss->n += ok;
    }
    ss->nb = 0;
}

/* g->cscans when a fault restored the stack: the count starts again. */
#define CSCANS_AGAIN 255

/* Parked through a whole scan period (and its back-off): nrun has not moved since the scan
 * before, and no fault restored the stack meanwhile. */
static bool parked_long(gorc__g *g)
{
    uint32_t nr = atomic_load_explicit(&g->nrun, memory_order_relaxed);
    uint32_t s = atomic_load_explicit(&g->cscans, memory_order_relaxed);
    if (nr != g->cscan_nrun || s == CSCANS_AGAIN) {
        g->cscan_nrun = nr;
        atomic_store_explicit(&g->cscans, 0, memory_order_relaxed);
        return gorc__cstk_period() == 0;
    }
    if (s + 1 < CSCANS_AGAIN)
        atomic_store_explicit(&g->cscans, (uint8_t)(s + 1), memory_order_relaxed);
    return gorc__cstk_period() == 0 ||
           s + 1 >= 1u + atomic_load_explicit(&g->cbackoff, memory_order_relaxed);
}

static void scan_one(gorc__g *g, void *arg)
{
    scanstate *ss = arg;
    if (ss->stopped || ss->n + ss->nb >= SCAN_BUDGET)
        return;
    uint8_t c = atomic_load_explicit(&g->cstk, memory_order_relaxed);
    if ((c != GORC__CSTK_PRESENT && c != GORC__CSTK_STALE) || !compactable(g) || !parked_long(g))
        return;
    if (((ss->n + ss->nb) & 63) == 63 && gorc__nanotime() > ss->stop) {
        ss->stopped = true; /* out of time: the rest wait for the next scan */
        return;
    }
    if (!atomic_compare_exchange_strong_explicit(&g->cstk, &c, GORC__CSTK_BUSY,
                                                 memory_order_acquire, memory_order_relaxed))
        return;
    ss->batch[ss->nb++] = g;
    if (ss->nb == SCAN_BATCH)
        scan_flush(ss);
}

int gorc__cstk_scan(void)
{
    if (!cstk_on)
        return 0;
    gorc__stack_handler_check();
    atomic_fetch_add(&gorc__cstk_epoch, 1);
    /* While every P is idle no one competes for the address space's lock: compact faster. */
    bool idle = gorc__nprocs_idle() == gorc__nprocs();
    int64_t budget = gorc__cstk_period() / (idle ? 1 : 20);
    if (budget > (idle ? 500 : 25) * 1000000LL)
        budget = (idle ? 500 : 25) * 1000000LL;
    if (budget < 500000)
        budget = 500000;
    scanstate ss = {.n = 0, .nb = 0, .stopped = false, .stop = gorc__nanotime() + budget};
    gorc__each_g(scan_one, &ss);
    scan_flush(&ss);
    return ss.n;
}

/* A fault at a, in the fault handler: if a lies in a compacted stack, restore it and return
 * true (the access is retried). Also true, a bounded number of times in a row, for a fault in
 * an arena stack with no owner: a concurrent restore finished between the fault and here. */
static bool restore_on_fault(const char *a)
{
    static _Thread_local const char *last;
    static _Thread_local int repeats;
    if (!cstk_on)
        return false;
    size_t span = default_size + page_size;
    uint32_t n = atomic_load_explicit(&narenas, memory_order_acquire);
    for (uint32_t i = n; i-- > 0;) {
        const arena_rec *r = &arenas[i];
        if (a < r->base || a >= r->base + span * ARENA_STACKS)
            continue;
        size_t slot = (size_t)(a - r->base) / span;
        if ((size_t)(a - r->base) % span < page_size)
            return false; /* a guard page */
        gorc__g *g = atomic_load(&r->owner[slot]);
        if (g == NULL) {
            repeats = a == last ? repeats + 1 : 0;
            last = a;
            return repeats < 100;
        }
        last = NULL;
        gorc__m *m = gorc__getm();
        if (m && m->curg == g) /* an invariant: a goroutine runs only once restored */
            gorc__fatal("runtime: goroutine %llu runs on its own compacted stack",
                        (unsigned long long)g->id);
        for (;;) {
            uint8_t c = atomic_load_explicit(&g->cstk, memory_order_acquire);
            if (c == GORC__CSTK_BUSY) {
                sched_yield(); /* BUSY lasts a few system calls */
                continue;
            }
            if (c != GORC__CSTK_COMPACTED)
                return true; /* restored by someone else */
            if (atomic_compare_exchange_weak_explicit(&g->cstk, &c, GORC__CSTK_BUSY,
                                                      memory_order_acquire, memory_order_relaxed)) {
                restore(g);
                atomic_fetch_add(&st_faults, 1);
                /* Touched while parked: it is probably about to be woken (a waker reads its
                 * record first). Its park age starts again, so it is not compacted afresh in
                 * the moment before it runs; the buffer is freed by the scheduler (STALE). */
                atomic_store_explicit(&g->cscans, CSCANS_AGAIN, memory_order_relaxed);
                atomic_store_explicit(&g->cstk, GORC__CSTK_STALE, memory_order_release);
                return true;
            }
        }
    }
    return false;
}

/* ---- SIGSEGV on a guard page ---- */

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    gorc__m *m = gorc__getm();
    gorc__g *g = m ? m->curg : NULL;
    char *a = si->si_addr;
    /* First: a sealed stack may be the one just below the running goroutine's. */
    if (restore_on_fault(a))
        return;
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

/* A handler installed after ours that does not chain to it (a test framework's, say) would
 * turn the first touch of a sealed stack into a crash. Take the signal back, chaining to that
 * handler for faults that are not ours. */
void gorc__stack_handler_check(void)
{
    struct sigaction cur;
    if (sigaction(SIGSEGV, NULL, &cur) == 0 &&
        !((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_fault)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &old_segv);
    }
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
