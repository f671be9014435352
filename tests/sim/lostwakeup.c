/*
 * lostwakeup.c - a planted lost wake-up between two goroutines, for the simulation's
 * exploration driver (tests/e2e/sim-e2e).
 *
 *   sim_lostwakeup buggy | fixed
 *
 * A one-shot event: a waiter waits until a setter has set `ready`. The buggy waiter checks the
 * flag under the lock, lets the lock go, and only then takes it again to wait: a set (and its
 * signal) that falls in between wakes nobody, and the waiter sleeps for good. The window is a
 * few instructions wide; plain runs practically never hit it. Under simulation with
 * GORC_SIM_PERTURB the mutex operations are preemption points, and some seed puts the setter
 * in the window: the run deadlocks, and the seed replays it. The fixed waiter checks and waits
 * under one hold of the lock (while (!ready) wait), as sync.Cond requires.
 * Exit status: 0 when the waiter was woken, 2 (the deadlock report) when it was not.
 */
#include <gorc.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static gorc_mutex mu;
static gorc_cond cv = {.l = &mu};
static bool ready, fixed;
static gorc_waitgroup wg;

static void waiter(void *arg)
{
    (void)arg;
    if (fixed) {
        gorc_mutex_lock(&mu);
        while (!ready)
            gorc_cond_wait(&cv);
        gorc_mutex_unlock(&mu);
    } else {
        gorc_mutex_lock(&mu);
        bool r = ready;
        gorc_mutex_unlock(&mu);
        if (!r) { /* BUG: ready may be set, and signalled, right here */
            gorc_mutex_lock(&mu);
            gorc_cond_wait(&cv);
            gorc_mutex_unlock(&mu);
        }
    }
    gorc_waitgroup_done(&wg);
}

static void setter(void *arg)
{
    (void)arg;
    gorc_mutex_lock(&mu);
    ready = true;
    gorc_cond_signal(&cv);
    gorc_mutex_unlock(&mu);
    gorc_waitgroup_done(&wg);
}

static void run(void *arg)
{
    (void)arg;
    gorc_waitgroup_add(&wg, 2);
    gorc_go(waiter, NULL);
    gorc_go(setter, NULL);
    gorc_waitgroup_wait(&wg);
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "buggy") != 0 && strcmp(argv[1], "fixed") != 0)) {
        fprintf(stderr, "usage: sim_lostwakeup buggy|fixed\n");
        return 64;
    }
    fixed = strcmp(argv[1], "fixed") == 0;
    return gorc_main(run, NULL) == 0 ? 0 : 1;
}
