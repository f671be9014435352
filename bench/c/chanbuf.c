/* chanbuf: one producer sends 20,000,000 ints through a channel of capacity 1024 to one
 * consumer. Prints wall-clock ns per item. Go counterpart: bench/go/chanbuf. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gorc.h"

enum { N = 20000000 };

static gorc_chan *ch;

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "chanbuf: %s: %s\n", what, strerror(-rc));
        exit(1);
    }
}

static void producer(void *arg)
{
    (void)arg;
    for (int64_t i = 0; i < N; i++)
        check(gorc_chan_send(ch, &i), "send");
    gorc_chan_close(ch);
    gorc_chan_release(ch);
}

static void body(void *arg)
{
    (void)arg;
    check(gorc_chan_new(&ch, sizeof(int64_t), 1024), "gorc_chan_new");
    gorc_chan_retain(ch); /* the producer's reference */

    int64_t start = gorc_now();
    check(gorc_go(producer, NULL), "gorc_go");
    int64_t v, sum = 0;
    while (gorc_chan_recv(ch, &v) == 0)
        sum += v;
    int64_t elapsed = gorc_now() - start;

    gorc_chan_release(ch);
    int64_t want = (int64_t)N * (N - 1) / 2;
    if (sum != want) {
        fprintf(stderr, "chanbuf: sum %lld, want %lld\n", (long long)sum, (long long)want);
        exit(1);
    }
    printf("%.1f\n", (double)elapsed / N);
}

int main(void)
{
    check(gorc_main(body, NULL), "gorc_main");
    return 0;
}
