/*
 * sim.h - what the runtime and the net layer call of the simulator (src/sim/sim.c).
 *
 * Every hook sits behind gorc__sim_on(), one relaxed load of a global that is 0 unless a
 * simulation run is in progress, so code outside a run pays one predictable branch. Inside a
 * run, the scheduler asks the M (m->sim) or the goroutine (g->sim) whether it belongs to the
 * run: goroutines of other, real, threads keep running as usual beside it.
 */
#ifndef GORC_SIM_INTERNAL_H
#define GORC_SIM_INTERNAL_H

#include "gorc_sim.h"
#include "runtime/runtime.h"

typedef struct gorc__pd gorc__pd;

/* Runs in progress (0 or 1). */
extern _Atomic int gorc__sim_nactive;

static inline bool gorc__sim_on(void)
{
    return GORC__UNLIKELY(atomic_load_explicit(&gorc__sim_nactive, memory_order_relaxed) != 0);
}

/* g, a goroutine of a run, is runnable: into the run's runnable set (from the run's thread),
 * or onto its queue of outside wake-ups (from any other thread: the poller, a foreign one). */
void gorc__sim_ready(gorc__g *g);
/* The virtual clock of m's run. */
int64_t gorc__sim_now(const gorc__m *m);
/* If the caller runs in a simulation run: true, and *ns = the run's clock, which counts
 * nanoseconds since 1970 from 2000-01-01 on (so it serves as the wall clock too). */
bool gorc__sim_clock(int64_t *ns);
/* A preemption point (channel, select, mutex, I/O wait): under GORC_SIM_PERTURB, perhaps
 * let another goroutine of the run go first. No-op outside a run. */
void gorc__sim_point(void);
/* Whether the call the caller is making fails now (GORC_SIM_FAULT_*); false outside a run. */
bool gorc__sim_fault(int kind);
/* Descriptors (runtime/netpoll.c). adopt: pd is being opened; if the caller is in a run, the
 * run takes it (polls it itself, deterministically) and true is returned. forget: pd, the run's, is
 * being closed. wait: g is about to park on pd; a descriptor that is not the run's is outside it,
 * so g is not durably blocked. */
bool gorc__sim_io_adopt(gorc__pd *pd);
void gorc__sim_io_forget(gorc__pd *pd);
void gorc__sim_io_wait(gorc__g *g, gorc__pd *pd);
/* Call fn when the caller's run ends (after its last goroutine; the simulated network frees
 * its state so). One hook per run; set again for the next. */
void gorc__sim_on_end(void (*fn)(void));
/* The goroutines the run's P counts (gorc_count includes them). */
int64_t gorc__sim_count(void);
/* Called by gorc__fatal: name the seed of the run the fatal error happened in. */
void gorc__sim_fatal_note(void);
/* gorc_main's hook: if GORC_SIM_SEED is set, run fn under simulation with the options of the
 * environment and return true with *rc set. */
bool gorc__sim_main(gorc_fn fn, void *arg, int *rc);

/* Provided by proc.c for the simulator's loop (which runs on the run's thread as its g0). */
/* Make the calling thread an M holding p (a P outside the scheduler's allp, which nobody else
 * sees, steals from or retakes), or undo that. */
gorc__m *gorc__sim_m_attach(gorc__p *p);
void gorc__sim_m_detach(gorc__m *m);
/* Run g on m until it switches back to g0 (it parked, yielded or exited); m->after and
 * m->after_g say which. gorc__sim_after then performs that after-action. */
void gorc__sim_exec(gorc__m *m, gorc__g *g);
void gorc__sim_after(gorc__m *m);
/* Foreign threads that could wake goroutines. */
int gorc__nforeign(void);
/* Drop every timer left in p's heap (the run is over; none of them may fire). */
void gorc__timers_clear(gorc__p *p);

#endif /* GORC_SIM_INTERNAL_H */
