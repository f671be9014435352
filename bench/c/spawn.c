/* spawn: start and join 1,000,000 goroutines with a gorc_waitgroup.
 * Prints wall-clock ns per goroutine. Go counterpart: bench/go/spawn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gorc.h"

enum { N = 1000000 };

static gorc_waitgroup wg;

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "spawn: %s: %s\n", what, strerror(-rc));
        exit(1);
    }
}

static void worker(void *arg)
{
    (void)arg;
    gorc_waitgroup_done(&wg);
}

static void body(void *arg)
{
    (void)arg;
    int64_t start = gorc_now();
    for (int i = 0; i < N; i++) {
        gorc_waitgroup_add(&wg, 1);
        check(gorc_go(worker, NULL), "gorc_go");
    }
    gorc_waitgroup_wait(&wg);
    int64_t elapsed = gorc_now() - start;
    printf("%.1f\n", (double)elapsed / N);
}

int main(void)
{
    check(gorc_main(body, NULL), "gorc_main");
    return 0;
}
