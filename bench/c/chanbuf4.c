/* chanbuf4: 4 producers send 20,000,000 ints in total through one channel of capacity 1024
 * to 4 consumers. Prints wall-clock ns per item. Go counterpart: bench/go/chanbuf4. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gorc.h"

enum { N = 20000000, PRODUCERS = 4, CONSUMERS = 4 };

static gorc_chan *ch;
static gorc_waitgroup prod, cons;
static _Atomic int64_t total;

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "chanbuf4: %s: %s\n", what, strerror(-rc));
        exit(1);
    }
}

static void consumer(void *arg)
{
    (void)arg;
    int64_t v, sum = 0;
    while (gorc_chan_recv(ch, &v) == 0)
        sum += v;
    atomic_fetch_add(&total, sum);
    gorc_waitgroup_done(&cons);
}

static void producer(void *arg)
{
    int64_t first = (int64_t)(intptr_t)arg;
    for (int64_t i = first; i < N; i += PRODUCERS)
        check(gorc_chan_send(ch, &i), "send");
    gorc_waitgroup_done(&prod);
}

static void body(void *arg)
{
    (void)arg;
    check(gorc_chan_new(&ch, sizeof(int64_t), 1024), "gorc_chan_new");

    int64_t start = gorc_now();
    for (int c = 0; c < CONSUMERS; c++) {
        gorc_waitgroup_add(&cons, 1);
        check(gorc_go(consumer, NULL), "gorc_go");
    }
    for (intptr_t p = 0; p < PRODUCERS; p++) {
        gorc_waitgroup_add(&prod, 1);
        check(gorc_go(producer, (void *)p), "gorc_go");
    }
    gorc_waitgroup_wait(&prod);
    check(gorc_chan_close(ch), "close");
    gorc_waitgroup_wait(&cons);
    int64_t elapsed = gorc_now() - start;

    gorc_chan_release(ch);
    int64_t want = (int64_t)N * (N - 1) / 2;
    if (atomic_load(&total) != want) {
        fprintf(stderr, "chanbuf4: sum %lld, want %lld\n", (long long)atomic_load(&total),
                (long long)want);
        exit(1);
    }
    printf("%.1f\n", (double)elapsed / N);
}

int main(void)
{
    check(gorc_main(body, NULL), "gorc_main");
    return 0;
}
