/* sleepers: 100,000 goroutines each sleep 10 ms, 20 times. Prints the CPU time (user +
 * system, from getrusage) the whole process spent, in microseconds per sleep.
 * Go counterpart: bench/go/sleepers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "gorc.h"

enum { GOROUTINES = 100000, SLEEPS = 20 };
#define NAP (10 * GORC_MILLISECOND)

static gorc_waitgroup wg;

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "sleepers: %s: %s\n", what, strerror(-rc));
        exit(1);
    }
}

/* User + system CPU time of the whole process, in ns. */
static int64_t cpu_time(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        perror("sleepers: getrusage");
        exit(1);
    }
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * GORC_SECOND +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * GORC_MICROSECOND;
}

static void sleeper(void *arg)
{
    (void)arg;
    for (int j = 0; j < SLEEPS; j++)
        gorc_sleep(NAP);
    gorc_waitgroup_done(&wg);
}

static void body(void *arg)
{
    (void)arg;
    int64_t wall_start = gorc_now();
    int64_t cpu_start = cpu_time();
    for (int i = 0; i < GOROUTINES; i++) {
        gorc_waitgroup_add(&wg, 1);
        check(gorc_go(sleeper, NULL), "gorc_go");
    }
    gorc_waitgroup_wait(&wg);
    int64_t cpu = cpu_time() - cpu_start;
    fprintf(stderr, "sleepers: wall %.3fs, cpu %.3fs\n",
            (double)(gorc_now() - wall_start) / GORC_SECOND, (double)cpu / GORC_SECOND);
    printf("%.3f\n", (double)cpu / 1e3 / ((double)GOROUTINES * SLEEPS));
}

int main(void)
{
    check(gorc_main(body, NULL), "gorc_main");
    return 0;
}
