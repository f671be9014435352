/* idle: resident memory per goroutine parked on a channel receive, 100,000 of them.
 * Prints (VmRSS after - VmRSS before) / 100,000 in bytes. Go counterpart: bench/go/idle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gorc.h"

enum { N = 100000 };

static gorc_chan *block;
static gorc_waitgroup parked, exited;

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "idle: %s: %s\n", what, strerror(-rc));
        exit(1);
    }
}

/* The resident set size from /proc/self/status, in bytes. */
static long long vm_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) {
        perror("idle: /proc/self/status");
        exit(1);
    }
    char line[256];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
            break;
    fclose(f);
    if (kb < 0) {
        fprintf(stderr, "idle: no VmRSS in /proc/self/status\n");
        exit(1);
    }
    return kb * 1024;
}

static void waiter(void *arg)
{
    (void)arg;
    gorc_waitgroup_done(&parked);
    gorc_chan_recv(block, NULL);
    gorc_waitgroup_done(&exited);
}

static void body(void *arg)
{
    (void)arg;
    check(gorc_chan_new(&block, 0, 0), "gorc_chan_new");

    long long before = vm_rss();
    for (int i = 0; i < N; i++) {
        gorc_waitgroup_add(&parked, 1);
        gorc_waitgroup_add(&exited, 1);
        check(gorc_go(waiter, NULL), "gorc_go");
    }
    gorc_waitgroup_wait(&parked);
    /* Idle means parked for a while: gorc compacts a parked goroutine's stack after 0.5-1 s
     * (docs/stacks.md). Both sides wait the same 5 s. */
    gorc_sleep(5 * GORC_SECOND);
    long long after = vm_rss();

    check(gorc_chan_close(block), "close");
    gorc_waitgroup_wait(&exited);
    gorc_chan_release(block);
    fprintf(stderr, "idle: VmRSS before %lld after %lld\n", before, after);
    printf("%.1f\n", (double)(after - before) / N);
}

int main(void)
{
    check(gorc_main(body, NULL), "gorc_main");
    return 0;
}
