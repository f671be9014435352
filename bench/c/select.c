/* select: one consumer selects over 4 unbuffered channels, each fed by its own producer
 * (5,000,000 ints in total). Prints wall-clock ns per item. Go counterpart: bench/go/select. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gorc.h"

enum { N = 5000000, NCHAN = 4 };

static gorc_chan *chans[NCHAN];
static gorc_waitgroup producers;

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "select: %s: %s\n", what, strerror(-rc));
        exit(1);
    }
}

static void produce(void *arg)
{
    intptr_t first = (intptr_t)arg;
    gorc_chan *ch = chans[first];
    for (int64_t i = first; i < N; i += NCHAN)
        check(gorc_chan_send(ch, &i), "send");
    gorc_chan_close(ch);
    gorc_waitgroup_done(&producers);
}

static void body(void *arg)
{
    (void)arg;
    int64_t vals[NCHAN];
    gorc_case cases[NCHAN];
    for (int i = 0; i < NCHAN; i++) {
        check(gorc_chan_new(&chans[i], sizeof(int64_t), 0), "gorc_chan_new");
        cases[i] = (gorc_case){.chan = chans[i], .dir = GORC_RECV, .elem = &vals[i]};
    }

    int64_t start = gorc_now();
    for (intptr_t i = 0; i < NCHAN; i++) {
        gorc_waitgroup_add(&producers, 1);
        check(gorc_go(produce, (void *)i), "gorc_go");
    }

    int64_t sum = 0, items = 0;
    for (int open = NCHAN; open > 0;) {
        int i = gorc_select(cases, NCHAN);
        check(i, "gorc_select");
        if (cases[i].closed) {
            cases[i].chan = NULL;
            open--;
            continue;
        }
        sum += vals[i];
        items++;
    }
    int64_t elapsed = gorc_now() - start;

    gorc_waitgroup_wait(&producers);
    for (int i = 0; i < NCHAN; i++)
        gorc_chan_release(chans[i]);
    int64_t want = (int64_t)N * (N - 1) / 2;
    if (sum != want || items != N) {
        fprintf(stderr, "select: %lld items sum %lld, want %d items sum %lld\n", (long long)items,
                (long long)sum, N, (long long)want);
        exit(1);
    }
    printf("%.1f\n", (double)elapsed / N);
}

int main(void)
{
    check(gorc_main(body, NULL), "gorc_main");
    return 0;
}
