/*
 * demo.c - a tour of gorc: goroutines, channels, select and timers, with timings.
 *
 *   1. The concurrent prime sieve from Go's documentation: a chain of goroutines, one per
 *      prime found, each filtering multiples of its prime out of the stream it passes on.
 *   2. A fan-out / fan-in pipeline: one generator, eight workers, one collector, all joined
 *      by channels; the workers' results are merged with a select that also watches a ticker.
 *   3. A quarter of a million goroutines started, parked and released.
 *
 * Run it with `make demo`.
 */
#include <gorc.h>
#include <stdio.h>
#include <stdlib.h>

#define NPRIMES     2000
#define NWORKERS    8
#define NJOBS       200000
#define NGOROUTINES 250000

static double ms_since(int64_t t0)
{
    return (double)(gorc_now() - t0) / 1e6;
}

/* ---- 1. prime sieve ---- */

static void generate(void *arg)
{
    gorc_chan *out = arg;
    for (int i = 2; gorc_chan_send(out, &i) == 0; i++)
        ;
}

typedef struct filter {
    gorc_chan *in, *out;
    int prime;
} filter;

static void run_filter(void *arg)
{
    filter *f = arg;
    int v;
    while (gorc_chan_recv(f->in, &v) == 0)
        if (v % f->prime != 0 && gorc_chan_send(f->out, &v) != 0)
            break;
    gorc_chan_close(f->out); /* the next stage stops too */
}

static void sieve(void)
{
    int64_t t0 = gorc_now();
    gorc_chan *head, *ch;
    gorc_chan_new(&head, sizeof(int), 0);
    gorc_go(generate, head);
    ch = head;
    filter *fs = calloc(NPRIMES, sizeof *fs);
    int last = 0;
    for (int i = 0; i < NPRIMES; i++) {
        gorc_chan_recv(ch, &last);
        fs[i] = (filter){.in = ch, .prime = last};
        gorc_chan_new(&fs[i].out, sizeof(int), 0);
        gorc_go(run_filter, &fs[i]);
        ch = fs[i].out;
    }
    printf("sieve:    the %dth prime is %d, found by a chain of %d goroutines in %.1f ms\n",
           NPRIMES, last, NPRIMES, ms_since(t0));
    /* Shut the chain down from the front: each stage closes the next. */
    gorc_chan_close(head);
    int v;
    while (gorc_chan_recv(ch, &v) == 0)
        ;
    /* Every filter has now returned; the generator may still be about to notice the close. */
    gorc_sleep(GORC_MILLISECOND);
    free(fs);
}

/* ---- 2. fan-out / fan-in ---- */

typedef struct pipeline {
    gorc_chan *jobs, *results;
    gorc_waitgroup wg;
} pipeline;

static void producer(void *arg)
{
    pipeline *p = arg;
    for (long i = 1; i <= NJOBS; i++)
        gorc_chan_send(p->jobs, &i);
    gorc_chan_close(p->jobs);
}

/* The work: length of the Collatz sequence of n. */
static long collatz(long n)
{
    long steps = 0;
    while (n != 1) {
        n = (n & 1) ? 3 * n + 1 : n / 2;
        steps++;
    }
    return steps;
}

static void worker(void *arg)
{
    pipeline *p = arg;
    long n;
    while (gorc_chan_recv(p->jobs, &n) == 0) {
        long r[2] = {n, collatz(n)};
        gorc_chan_send(p->results, r);
    }
    gorc_waitgroup_done(&p->wg);
}

static void closer(void *arg)
{
    pipeline *p = arg;
    gorc_waitgroup_wait(&p->wg);
    gorc_chan_close(p->results);
}

static void fan_out_fan_in(void)
{
    int64_t t0 = gorc_now();
    pipeline p = {0};
    gorc_chan_new(&p.jobs, sizeof(long), 64);
    gorc_chan_new(&p.results, 2 * sizeof(long), 64);
    gorc_waitgroup_add(&p.wg, NWORKERS);
    gorc_go(producer, &p);
    for (int i = 0; i < NWORKERS; i++)
        gorc_go(worker, &p);
    gorc_go(closer, &p);

    gorc_ticker *tk;
    gorc_ticker_new(&tk, 20 * GORC_MILLISECOND);
    long r[2], best[2] = {0, 0}, count = 0, ticks = 0;
    int64_t now;
    for (;;) {
        gorc_case cases[2] = {{.chan = p.results, .dir = GORC_RECV, .elem = r},
                              {.chan = gorc_ticker_chan(tk), .dir = GORC_RECV, .elem = &now}};
        int i = gorc_select(cases, 2);
        if (i == 1) {
            ticks++;
            continue;
        }
        if (cases[0].closed)
            break;
        count++;
        if (r[1] > best[1]) {
            best[0] = r[0];
            best[1] = r[1];
        }
    }
    gorc_ticker_free(tk);
    printf("pipeline: %ld jobs through %d workers in %.1f ms (%ld ticker ticks seen meanwhile);"
           " longest Collatz chain below %d starts at %ld (%ld steps)\n",
           count, NWORKERS, ms_since(t0), ticks, NJOBS + 1, best[0], best[1]);
    gorc_chan_release(p.jobs);
    gorc_chan_release(p.results);
}

/* ---- 3. a crowd of parked goroutines ---- */

typedef struct crowd {
    gorc_chan *gate;
    gorc_waitgroup started, done;
} crowd;

static void member(void *arg)
{
    crowd *c = arg;
    gorc_waitgroup_done(&c->started);
    gorc_chan_recv(c->gate, NULL); /* parked until the gate closes */
    gorc_waitgroup_done(&c->done);
}

static void crowd_demo(void)
{
    crowd c = {0};
    gorc_chan_new(&c.gate, 0, 0);
    gorc_waitgroup_add(&c.started, NGOROUTINES);
    gorc_waitgroup_add(&c.done, NGOROUTINES);
    int64_t t0 = gorc_now();
    for (int i = 0; i < NGOROUTINES; i++) {
        if (gorc_go(member, &c) != 0) {
            printf("crowd:    spawn failed at %d\n", i);
            exit(1);
        }
    }
    gorc_waitgroup_wait(&c.started);
    double t_spawn = ms_since(t0);
    long live = (long)gorc_count();
    t0 = gorc_now();
    gorc_chan_close(c.gate);
    gorc_waitgroup_wait(&c.done);
    printf("crowd:    %ld goroutines live and parked after %.0f ms; all released and finished "
           "in %.0f ms\n",
           live, t_spawn, ms_since(t0));
    gorc_chan_release(c.gate);
}

static void demo(void *arg)
{
    (void)arg;
    printf("gorc %d.%d.%d demo on %d Ps\n", GORC_VERSION_MAJOR, GORC_VERSION_MINOR,
           GORC_VERSION_PATCH, gorc_maxprocs());
    sieve();
    fan_out_fan_in();
    crowd_demo();
}

int main(void)
{
    return gorc_main(demo, NULL) == 0 ? 0 : 1;
}
