/* mutex: 100 goroutines each lock a shared gorc_mutex, increment a counter and unlock,
 * 100,000 times. Prints wall-clock ns per lock/unlock pair. Go counterpart: bench/go/mutex. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gorc.h"

enum { WORKERS = 100, ITERS = 100000 };

static gorc_mutex mu;
static gorc_waitgroup wg;
static long count; /* protected by mu */

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "mutex: %s: %s\n", what, strerror(-rc));
        exit(1);
    }
}

static void worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < ITERS; i++) {
        gorc_mutex_lock(&mu);
        count++;
        gorc_mutex_unlock(&mu);
    }
    gorc_waitgroup_done(&wg);
}

static void body(void *arg)
{
    (void)arg;
    int64_t start = gorc_now();
    for (int w = 0; w < WORKERS; w++) {
        gorc_waitgroup_add(&wg, 1);
        check(gorc_go(worker, NULL), "gorc_go");
    }
    gorc_waitgroup_wait(&wg);
    int64_t elapsed = gorc_now() - start;

    if (count != (long)WORKERS * ITERS) {
        fprintf(stderr, "mutex: count %ld, want %ld\n", count, (long)WORKERS * ITERS);
        exit(1);
    }
    printf("%.2f\n", (double)elapsed / ((double)WORKERS * ITERS));
}

int main(void)
{
    check(gorc_main(body, NULL), "gorc_main");
    return 0;
}
