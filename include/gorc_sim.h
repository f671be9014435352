/*
 * gorc_sim.h - deterministic simulation: run a concurrent program under a 64-bit seed, on
 * virtual time, with injected faults, and replay any failure exactly.
 *
 * A simulation run executes a function and every goroutine it starts on one thread, picking
 * the next goroutine to run - and every other random choice of the runtime - from the seed.
 * The same seed and the same program give the same schedule, the same output and the same
 * failure. Time inside the run is virtual (Go's testing/synctest semantics): gorc_now, sleeps,
 * timers, tickers, deadlines and timeouts read a clock that jumps to the next timer only when
 * every goroutine of the run is durably blocked. docs/simulation.md is the whole story: what
 * is deterministic and what is not, what counts as durably blocked, how to explore and replay.
 *
 * Whole programs run under simulation without changes: gorc_main runs its function with
 * gorc_sim_run when GORC_SIM_SEED is set (GORC_SIM_PERTURB, GORC_SIM_FAULTS and
 * GORC_SIM_TRACE set the options; docs/simulation.md lists them). scripts/sim-explore runs a
 * program under many seeds and prints the command that replays a failure.
 */
#ifndef GORC_SIM_H
#define GORC_SIM_H

#include "gorc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where faults can be injected (bit numbers of gorc_sim_opts.faults). */
enum {
    GORC_SIM_FAULT_SPAWN = 0, /* gorc_go and gorc_go_ex return -ENOMEM */
    GORC_SIM_FAULT_CHAN,      /* gorc_chan_new returns -ENOMEM */
    GORC_SIM_FAULT_ACCEPT,    /* gorc_listener_accept returns -EMFILE */
    GORC_SIM_FAULT_DIAL,      /* gorc_dial and its variants return -EMFILE */
    GORC_SIM_FAULT_RESET,     /* a simulated connection's read or write: -ECONNRESET */
    GORC_SIM_FAULT_SHORT,     /* a simulated connection's write takes part of its buffer */
    GORC_SIM_FAULT_SLOW,      /* a simulated connection's read or write first waits <= 100 ms */
    GORC_SIM_FAULT_COUNT
};

/* Options of a run. Zero-initialise and set what you need; NULL means all zero. */
typedef struct gorc_sim_opts {
    /* Probability (0..1) that a goroutine is preempted - another runnable goroutine, chosen
     * from the seed, runs first - at each channel operation, select, mutex lock and unlock,
     * and I/O wait. 0: goroutines switch only where they block, yield or exit. */
    double perturb;
    /* Faults: a mask of 1u << GORC_SIM_FAULT_*. Each such call fails with probability
     * fault_rate, drawn from the seed; or, when fault_at is not 0, exactly at its fault_at-th
     * call in the run (counting each kind separately) and never otherwise. */
    uint32_t faults;
    double fault_rate;
    uint32_t fault_at;
    /* If not NULL, the schedule is written to this file: one line per goroutine switch
     * ("<step> <virtual ns> run <goroutine id>"), per jump of the clock and per injected
     * fault. Two runs with the same seed write identical files. */
    const char *trace;
    /* Virtual nanoseconds each goroutine switch costs (0: none). With 0 the clock moves only
     * when every goroutine is blocked, as in Go's synctest, so a goroutine that sleeps while
     * others keep busy (polling until they have done enough) never wakes; a cost per switch
     * lets time pass under load, and timers fall due between switches. */
    int64_t step_ns;
} gorc_sim_opts;

/* Run fn(arg) and every goroutine it starts, directly or not, as one deterministic
 * simulation under seed, and return when all of them have finished. Callable from a thread
 * that is not a goroutine (the caller's thread runs the simulation) and from a goroutine (a
 * new thread runs it while the goroutine waits, as in gorc_blocking). One run at a time per
 * process. When every goroutine of the run is durably blocked and no timer is pending, the run
 * is deadlocked: gorc prints "fatal error: all goroutines are asleep - deadlock!" with the
 * seed, the goroutines of the run and the command that replays it, and exits with status 2,
 * as Go's runtime does. Returns 0; -EINVAL if fn is NULL, or opts' perturb or fault_rate is
 * outside 0..1; -EBUSY if a run is already in progress; -ENOMEM if the run's state could not
 * be allocated; -EAGAIN if the runtime failed to start or no thread could be created for the
 * run; the errno of opening opts->trace. Go: testing/synctest.Test, plus what Go lacks. */
GORC_API int gorc_sim_run(uint64_t seed, gorc_fn fn, void *arg, const gorc_sim_opts *opts);

/* Whether the caller is a goroutine of a simulation run. */
GORC_API bool gorc_sim_active(void);

/* The seed of the caller's run; 0 outside a run. */
GORC_API uint64_t gorc_sim_seed(void);

/* A random number drawn from the run's seed (so that a test's own choices replay too); outside
 * a run, from the runtime's random source. */
GORC_API uint64_t gorc_sim_rand(void);

/* Block until every other goroutine of the caller's run is durably blocked; time does not
 * advance meanwhile. At most one goroutine of a run may wait at a time. Returns 0; -EINVAL
 * outside a run; -EBUSY if another goroutine of the run is already waiting. Go:
 * testing/synctest.Wait. */
GORC_API int gorc_sim_wait(void);

/* ------------------------------------------------------------------------------------------
 * The simulated network. Inside a run, every TCP, UDP and Unix socket a goroutine of the run
 * makes (gorc_tcp_listen, gorc_tcp_dial, gorc_udp_listen, gorc_unix_dial, ...) is simulated:
 * it connects through an in-memory network of hosts, never the kernel's, on the run's virtual
 * time, and the HTTP server and client, WebSocket and TLS run on it unchanged. Host 0, "main"
 * (10.0.0.1), is where the run's goroutines are unless started with gorc_sim_go_on;
 * 127.0.0.1, ::1 and "localhost" are each host's own loopback. docs/simulation.md, "The network".
 * These calls configure the network of the caller's run and are valid only inside one.
 * ---------------------------------------------------------------------------------------- */

/* A link between two hosts (both directions), or the default of every pair. */
typedef struct gorc_sim_link {
    int64_t latency;   /* one-way delay in ns (the default link: 50 us) */
    int64_t jitter;    /* plus a uniform extra delay in [0, jitter), drawn from the seed */
    int64_t bandwidth; /* bytes per second; 0: unlimited */
    double loss;       /* 0..1: probability that a UDP datagram is lost */
    double reorder;    /* 0..1: probability that a UDP datagram is held back one latency */
} gorc_sim_link;

/* Add a host named name with the IPv4 address ip (not loopback, not 0.0.0.0); dialing either
 * reaches it. Returns its number (>= 1), -EINVAL (outside a run, NULL or empty name, a name of
 * 64 bytes or more, a bad address), -EEXIST (the name or the address is taken), -ENOSPC (64
 * hosts already). Go: none (turmoil's Sim::host). */
GORC_API int gorc_sim_host(const char *name, const char *ip);

/* Start fn(arg) as a goroutine on host (a name or its address); the goroutines it starts run
 * there too. Returns 0, -EINVAL (outside a run, NULL host or fn), GORC_ENOHOST (no such host),
 * or an error of gorc_go (-ENOMEM, -EAGAIN). Go: none (turmoil's Sim::client). */
GORC_API int gorc_sim_go_on(const char *host, gorc_fn fn, void *arg);

/* Set the link between hosts a and b (names or addresses; NULL for one of them: every host;
 * both NULL: the default link). Returns 0, -EINVAL (outside a run, NULL l, a negative time
 * or bandwidth, loss or reorder outside 0..1), GORC_ENOHOST. Go: none. */
GORC_API int gorc_sim_link_set(const char *a, const char *b, const gorc_sim_link *l);

/* Cut (on) or heal (!on) the network between a and b (NULL: every other host). While cut, TCP
 * segments and SYNs wait and are sent again (every 200 ms, a second for SYNs) until it heals;
 * UDP datagrams are lost. Returns 0, -EINVAL (outside a run), GORC_ENOHOST. Go: none
 * (turmoil's partition / repair). */
GORC_API int gorc_sim_partition(const char *a, const char *b, bool on);

/* Reset every TCP connection between a and b (NULL: any host), both ends at once: their
 * reads and writes return -ECONNRESET. Returns how many ends were reset, -EINVAL (outside a
 * run), GORC_ENOHOST. Go: none. */
GORC_API int gorc_sim_reset(const char *a, const char *b);

#ifdef __cplusplus
}
#endif

#endif /* GORC_SIM_H */
