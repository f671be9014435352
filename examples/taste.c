/*
 * taste.c - the README's first example: a goroutine sends on a channel, main selects with a
 * timeout. The suite builds it against an installed gorc with the README's exact pkg-config
 * command and with CMake's find_package (tests/consumers/run).
 */
#include <gorc.h>
#include <stdio.h>

static void worker(void *arg)
{
    gorc_chan *results = arg;
    int v = 42;
    gorc_chan_send(results, &v);
}

static void body(void *arg)
{
    (void)arg;
    gorc_chan *results;
    gorc_chan_new(&results, sizeof(int), 0); /* make(chan int) */
    gorc_go(worker, results);                /* go worker(results) */

    int v;
    gorc_case cases[] = {{.chan = results, .dir = GORC_RECV, .elem = &v}};
    if (gorc_select_timeout(cases, 1, GORC_SECOND) == 0) /* select with time.After */
        printf("got %d\n", v);
    gorc_chan_release(results);
}

int main(void)
{
    return gorc_main(body, NULL);
}
