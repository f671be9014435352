/*
 * cancelpool.c - a planted missed-cancel race in a worker pool, for the simulation's
 * exploration driver (tests/e2e/sim-e2e).
 *
 *   sim_cancelpool buggy | fixed
 *
 * A pool of workers takes jobs from an unbuffered channel until its context is cancelled;
 * the producer hands out its jobs, cancels, and waits for the workers. The buggy worker checks
 * the context and then blocks in a plain receive on the job channel: a cancel that lands
 * between its check and its receive is never seen, and the pool's wait hangs. The producer
 * cancels right after its last hand-off, so the worker that took the last job must finish it
 * and loop round first - an interleaving a plain run practically never takes. Under
 * simulation with GORC_SIM_PERTURB the channel operations are preemption points, and some seed
 * runs the worker ahead: the run deadlocks and the seed replays it. The fixed worker selects on
 * the job channel and the context's done channel together.
 * Exit status: 0 when every worker stopped, 2 (the deadlock report) when one did not.
 */
#include <gorc.h>
#include <gorc_context.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORKERS 3
#define JOBS    20

static bool fixed;
static gorc_chan *jobs;
static gorc_ctx *ctx;
static gorc_waitgroup wg;
static gorc_mutex mu;
static long done_sum;

static void work(int job)
{
    gorc_mutex_lock(&mu); /* the "work": a critical section */
    done_sum += job;
    gorc_mutex_unlock(&mu);
}

static void worker(void *arg)
{
    (void)arg;
    for (;;) {
        int job;
        if (fixed) {
            gorc_case cs[2] = {{.chan = jobs, .dir = GORC_RECV, .elem = &job},
                               {.chan = gorc_ctx_done(ctx), .dir = GORC_RECV}};
            if (gorc_select(cs, 2) == 1)
                break;
        } else {
            if (gorc_ctx_err(ctx) != 0)
                break;
            /* BUG: a cancel from here on is not seen; the receive waits for a job forever. */
            if (gorc_chan_recv(jobs, &job) != 0)
                break;
        }
        work(job);
    }
    gorc_waitgroup_done(&wg);
}

static void run(void *arg)
{
    (void)arg;
    gorc_chan_new(&jobs, sizeof(int), 0);
    gorc_ctx_with_cancel(&ctx, gorc_ctx_background());
    gorc_waitgroup_add(&wg, WORKERS);
    for (int i = 0; i < WORKERS; i++)
        gorc_go(worker, NULL);
    for (int j = 1; j <= JOBS; j++)
        gorc_chan_send(jobs, &j);
    gorc_ctx_cancel(ctx);
    gorc_waitgroup_wait(&wg);
    if (done_sum != JOBS * (JOBS + 1) / 2) {
        fprintf(stderr, "cancelpool: jobs lost: sum %ld\n", done_sum);
        fflush(stderr);
        exit(1);
    }
    gorc_ctx_release(ctx);
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "buggy") != 0 && strcmp(argv[1], "fixed") != 0)) {
        fprintf(stderr, "usage: sim_cancelpool buggy|fixed\n");
        return 64;
    }
    fixed = strcmp(argv[1], "fixed") == 0;
    return gorc_main(run, NULL) == 0 ? 0 : 1;
}
