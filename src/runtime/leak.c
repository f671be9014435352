/*
 * leak.c - leak checks: which goroutines started after a mark are still alive, and why.
 *
 * Goroutine ids only grow, so a mark is just the last id handed out; a survivor is any
 * goroutine, other than the caller and the runtime's own, with a larger id that is not free
 * or dead. The check polls (parking between looks) until none is left or the timeout passes,
 * then reports each survivor. What can be proved, is: a goroutine parked on a nil channel or
 * in an empty select can never be woken, and is reported as a certain leak. Proving more (a
 * channel nobody else can reach) needs to know who holds pointers to it, which a C runtime
 * without a garbage collector cannot; the report gives what a person needs to decide instead:
 * the wait reason, for how long, on which object, the start function and the spawn site.
 *
 * Symbols: gorc_symbolize names what dladdr finds in the dynamic symbol table, and with
 * libgorc_symbolize installed static functions too; module+offset is printed for
 * `addr2line -e` in any case. Below the spawn site come the goroutine's frames, as a dump
 * prints them.
 *
 * Reading other goroutines' records: status is read with acquire, and a goroutine seen alive
 * has its start fields (function, argument, spawn site, parent) fixed until it ends; the wait
 * fields are read only for one seen parked. Records are never freed, so the worst a goroutine
 * that ends meanwhile can do is make its own lines stale: the report is advisory.
 */
#include "runtime/runtime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

_Atomic bool gorc__leak_on;

uint64_t gorc_leak_mark(void)
{
    atomic_store_explicit(&gorc__leak_on, true, memory_order_relaxed);
    gorc__park_hook(GORC__PH_LEAK, true);
    /* The id the next goroutine gets, minus one: ids start at 1. */
    return gorc__last_goid();
}

typedef struct scan {
    uint64_t mark, self;
    int n;
    bool print;
    int64_t now;
} scan;

static bool survivor(const gorc__g *g, const scan *sc)
{
    return g->id > sc->mark && g->id != sc->self && !g->system && !g->foreign;
}

static void where(FILE *f, const char *what, uintptr_t pc)
{
    gorc_symbol sym;
    if (pc && gorc_symbolize(pc, &sym) && sym.module) {
        if (sym.function)
            fprintf(f, "\t%s %s+0x%" PRIxPTR " (%s+0x%" PRIxPTR ")\n", what, sym.function,
                    sym.offset, sym.module, sym.module_offset);
        else
            fprintf(f, "\t%s %#" PRIxPTR " (%s+0x%" PRIxPTR ")\n", what, pc, sym.module,
                    sym.module_offset);
    } else {
        fprintf(f, "\t%s %#" PRIxPTR "\n", what, pc);
    }
}

static bool certain(int reason)
{
    return reason == GORC__W_CHAN_SEND_NIL || reason == GORC__W_CHAN_RECV_NIL ||
           reason == GORC__W_SELECT_NO_CASES;
}

/* Reads a goroutine that a waker may be readying meanwhile (its wait reason, what it waits on):
 * a diagnostic, as dumps are. */
GORC__RACY static void report(const gorc__g *g, const scan *sc)
{
    FILE *f = stderr;
    uint32_t st = atomic_load_explicit(&g->status, memory_order_acquire);
    if (st == GORC__G_WAITING) {
        fprintf(f, "gorc: leaked goroutine %" PRIu64 " [%s", g->id,
                gorc__waitreason_str(g->waitreason));
        int64_t since = gorc__parked_since(g);
        if (since)
            fprintf(f, ", %" PRId64 " ms", (sc->now - since) / GORC_MILLISECOND);
        fputc(']', f);
        if (g->waiton)
            fprintf(f, " on %p", g->waiton);
        if (certain(g->waitreason))
            fputs(" (certain leak: nothing can ever wake it)", f);
    } else {
        /* Alive and busy (a ticker keeps waking it, say): still outliving the mark. */
        fprintf(f, "gorc: leaked goroutine %" PRIu64 " [%s]", g->id,
                st == GORC__G_RUNNING ? "running" : "runnable");
    }
    fputs(":\n", f);
    where(f, "started at", (uintptr_t)g->fn);
    fprintf(f, "\targument %p\n", g->arg);
    char by[48];
    snprintf(by, sizeof by, "created by goroutine %" PRIu64 " at", g->parent);
    where(f, g->parent ? by : "created by a thread at", g->spawnpc);
    gorc__print_frames(f, (gorc__g *)g);
    fputc('\n', f);
}

static void visit(gorc__g *g, void *arg)
{
    scan *sc = arg;
    if (!survivor(g, sc))
        return;
    sc->n++;
    if (sc->print)
        report(g, sc);
}

static int count(uint64_t mark, bool print)
{
    scan sc = {.mark = mark, .self = gorc_id(), .print = print, .now = gorc__nanotime()};
    gorc__each_g(visit, &sc);
    return sc.n;
}

int gorc_leak_check(uint64_t mark, int64_t timeout_ns)
{
    atomic_store_explicit(&gorc__leak_on, true, memory_order_relaxed);
    gorc__park_hook(GORC__PH_LEAK, true);
    int64_t deadline = gorc__deadline(timeout_ns);
    for (int64_t pause = 100 * GORC_MICROSECOND; count(mark, false) > 0; pause *= 2) {
        int64_t now = gorc__nanotime();
        if (now >= deadline)
            break;
        if (pause > 20 * GORC_MILLISECOND)
            pause = 20 * GORC_MILLISECOND;
        gorc_sleep(pause < deadline - now ? pause : deadline - now);
    }
    int n = count(mark, false);
    if (n > 0) {
        fprintf(stderr, "gorc: %d goroutine%s started after the mark still running:\n\n", n,
                n == 1 ? "" : "s");
        n = count(mark, true);
        fflush(stderr);
    }
    return n;
}

bool gorc__leak_main_wanted(void)
{
    const char *on = getenv("GORC_LEAKCHECK");
    if (on == NULL || on[0] == 0 || (on[0] == '0' && on[1] == 0))
        return false;
    atomic_store_explicit(&gorc__leak_on, true, memory_order_relaxed);
    gorc__park_hook(GORC__PH_LEAK, true);
    return true;
}

void gorc__leak_check_main(uint64_t mark)
{
    const char *ms = getenv("GORC_LEAKCHECK_MS");
    long long t = ms ? atoll(ms) : 1000;
    if (gorc_leak_check(mark, (t > 0 ? t : 0) * GORC_MILLISECOND) > 0) {
        fputs("gorc: goroutines leaked (GORC_LEAKCHECK=1)\n", stderr);
        exit(2);
    }
}
