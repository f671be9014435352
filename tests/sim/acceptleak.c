/*
 * acceptleak.c - a planted goroutine leak on the error path of accept, for the simulation's
 * exploration driver (tests/e2e/sim-e2e).
 *
 *   sim_acceptleak buggy | fixed
 *
 * An accept loop starts a watchdog goroutine for the connection it is about to accept (it
 * would cut the connection off after a while) and stops it once the connection is done. The
 * buggy loop forgets the watchdog when accept fails: it stays blocked on its channel for good.
 * A real accept nearly never fails (gorc waits out EMFILE itself), so plain runs pass; under
 * simulation with GORC_SIM_FAULTS=accept some seed makes an accept return -EMFILE, a goroutine
 * is left behind when the server stops, and the seed replays it. The fixed loop stops the
 * watchdog on every path.
 * Exit status: 0 when no goroutine was left behind, 1 when one was.
 */
#include <gorc.h>
#include <gorc_net.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONNS 20

static bool fixed;
static gorc_waitgroup served;

static void watchdog(void *arg)
{
    gorc_chan *done = arg;
    gorc_case cs[1] = {{.chan = done, .dir = GORC_RECV}};
    gorc_select_timeout(cs, 1, 60 * GORC_SECOND); /* would close a stuck connection */
    gorc_chan_release(done);
}

static void serve(void *arg)
{
    gorc_listener *l = arg;
    for (;;) {
        gorc_chan *done;
        if (gorc_chan_new(&done, 0, 0) != 0)
            exit(3);
        gorc_go(watchdog, gorc_chan_retain(done));
        gorc_conn *c;
        int rc = gorc_listener_accept(l, &c);
        if (rc == GORC_ENETCLOSED) {
            gorc_chan_close(done);
            gorc_chan_release(done);
            break;
        }
        if (rc != 0) {
            if (fixed)
                gorc_chan_close(done);
            /* BUG when !fixed: the watchdog is never told, and waits for good */
            gorc_chan_release(done);
            gorc_sleep(GORC_MILLISECOND); /* back off */
            continue;
        }
        char b[8];
        if (gorc_conn_read_full(c, b, 4) == 4)
            gorc_conn_write_all(c, "ok\n", 3);
        gorc_conn_close(c);
        gorc_chan_close(done);
        gorc_chan_release(done);
        gorc_waitgroup_done(&served);
    }
    gorc_listener_release(l);
}

static void run(void *arg)
{
    (void)arg;
    gorc_listener *l;
    if (gorc_tcp_listen(&l, "127.0.0.1:0", NULL) != 0)
        exit(3);
    char addr[64];
    gorc_listener_addr(l, addr, sizeof addr);
    int64_t base = gorc_count();
    gorc_waitgroup_add(&served, CONNS);
    gorc_go(serve, gorc_listener_retain(l));
    for (int i = 0; i < CONNS; i++) {
        gorc_conn *c;
        if (gorc_tcp_dial(&c, addr, 5 * GORC_SECOND) != 0)
            exit(3);
        char b[4];
        gorc_conn_write_all(c, "ping", 4);
        gorc_conn_read_full(c, b, 3);
        gorc_conn_close(c);
    }
    gorc_waitgroup_wait(&served);
    gorc_listener_close(l);
    gorc_sleep(10 * GORC_MILLISECOND); /* the loop and its watchdogs wind down */
    int64_t left = gorc_count() - base;
    if (left > 0) {
        fprintf(stderr, "acceptleak: %lld goroutines left behind\n", (long long)left);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "buggy") != 0 && strcmp(argv[1], "fixed") != 0)) {
        fprintf(stderr, "usage: sim_acceptleak buggy|fixed\n");
        return 64;
    }
    fixed = strcmp(argv[1], "fixed") == 0;
    return gorc_main(run, NULL) == 0 ? 0 : 1;
}
